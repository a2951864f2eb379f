//! A connection's byte stream that fails a write making no progress for too
//! long, so that a client which sends requests but never reads the answers
//! cannot hold its connection open for ever.
//!
//! hyper times the reading of a request head but not the writing of a
//! response: once the socket's send buffer is full, a write waits for the
//! client to read, however long that takes. This wrapper arms a timer when
//! a write has to wait and disarms it as soon as one goes through, so the
//! limit is on a stall, not on the length of a response: a slow client that
//! keeps reading keeps its connection. A write that never waits, which is
//! nearly every write, never touches the timer.

use std::{
    future::Future,
    io,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use pin_project_lite::pin_project;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::Sleep,
};

pin_project! {
    /// `inner`, whose writes fail with [`io::ErrorKind::TimedOut`] after
    /// waiting `limit` without progress.
    pub(super) struct WriteTimeout<T> {
        #[pin]
        inner: T,
        limit: Duration,
        // Armed while a write waits; boxed, as it is rarely needed.
        stalled: Option<Pin<Box<Sleep>>>,
    }
}

impl<T> WriteTimeout<T> {
    pub(super) fn new(inner: T, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            stalled: None,
        }
    }
}

/// Passes a write's outcome on, timing it while it waits.
fn timed<R>(
    outcome: Poll<io::Result<R>>,
    stalled: &mut Option<Pin<Box<Sleep>>>,
    limit: Duration,
    cx: &mut Context<'_>,
) -> Poll<io::Result<R>> {
    if outcome.is_ready() {
        *stalled = None;
        return outcome;
    }

    let timer = stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
    match timer.as_mut().poll(cx) {
        Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client read nothing for the write timeout",
        ))),
        Poll::Pending => Poll::Pending,
    }
}

impl<T: AsyncRead> AsyncRead for WriteTimeout<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.project().inner.poll_read(cx, buf)
    }
}

impl<T: AsyncWrite> AsyncWrite for WriteTimeout<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let outcome = this.inner.poll_write(cx, buf);
        timed(outcome, this.stalled, *this.limit, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let outcome = this.inner.poll_write_vectored(cx, bufs);
        timed(outcome, this.stalled, *this.limit, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        let outcome = this.inner.poll_flush(cx);
        timed(outcome, this.stalled, *this.limit, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        let outcome = this.inner.poll_shutdown(cx);
        timed(outcome, this.stalled, *this.limit, cx)
    }
}
