//! Load shedding: past a number of requests in flight, further requests
//! are answered 503 with `Retry-After` at once.
//!
//! Without a bound, a service pushed beyond its capacity queues the excess
//! (in the writer's queue, the blocking pool, the runtime), and every
//! request waits longer, until all of them time out. Refusing the excess
//! straight away keeps the latency of the admitted requests bounded by the
//! limit over the throughput, and the memory they hold by the limit over
//! the body size; clients and load balancers know to retry a 503 elsewhere
//! or later.
//!
//! Health and readiness probes are always admitted: an overloaded instance
//! is alive, and an orchestrator must not restart it for being busy.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
};

use axum::{
    extract::Request,
    response::{IntoResponse, Response},
};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::{error::ApiError, routes::PROBE_PATHS};

/// Wraps a service in [`InFlightLimit`].
#[derive(Debug, Clone)]
pub(crate) struct InFlightLimitLayer {
    in_flight: Arc<AtomicUsize>,
    max: usize,
}

impl InFlightLimitLayer {
    /// A layer that admits at most `max` requests at once.
    pub(crate) fn new(max: usize) -> Self {
        Self {
            in_flight: Arc::default(),
            max,
        }
    }
}

impl<S> Layer<S> for InFlightLimitLayer {
    type Service = InFlightLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InFlightLimit {
            inner,
            in_flight: Arc::clone(&self.in_flight),
            max: self.max,
        }
    }
}

/// A service that refuses requests beyond a number in flight.
#[derive(Debug, Clone)]
pub struct InFlightLimit<S> {
    inner: S,
    /// Shared by every clone, so that the limit holds for the whole server.
    in_flight: Arc<AtomicUsize>,
    max: usize,
}

impl<S> Service<Request> for InFlightLimit<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = InFlightFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if PROBE_PATHS.contains(&request.uri().path()) {
            return InFlightFuture::Admitted {
                inner: self.inner.call(request),
                slot: None,
            };
        }

        let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(Arc::clone(&self.in_flight));
        if before >= self.max {
            drop(slot);
            return InFlightFuture::Refused {
                answer: Some(ApiError::Overloaded.into_response()),
            };
        }
        InFlightFuture::Admitted {
            inner: self.inner.call(request),
            slot: Some(slot),
        }
    }
}

/// One place among the requests in flight, given back when the request's
/// future is done or dropped.
#[derive(Debug)]
pub struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

pin_project! {
    /// The answer of [`InFlightLimit`].
    #[project = InFlightProjection]
    pub enum InFlightFuture<F> {
        /// Handled by the inner service, holding its slot (a probe holds
        /// none).
        Admitted { #[pin] inner: F, slot: Option<Slot> },
        /// Refused; the answer is taken on the first poll.
        Refused { answer: Option<Response> },
    }
}

impl<F> Future for InFlightFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            InFlightProjection::Admitted { inner, .. } => inner.poll(cx),
            InFlightProjection::Refused { answer } => Poll::Ready(Ok(answer
                .take()
                .unwrap_or_else(|| ApiError::Overloaded.into_response()))),
        }
    }
}
