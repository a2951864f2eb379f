//! Accepting connections and serving HTTP/1.1 on them, with the limits a
//! service facing unknown clients needs.
//!
//! `axum::serve` would do the accepting, but it sets no limit on what a
//! client may hold: a connection sending its headers a byte a minute, an
//! idle keep-alive connection, a head of a megabyte and ten thousand open
//! sockets are all kept. This loop gives hyper a header-read timeout (which
//! in hyper also closes keep-alive connections left idle that long), a cap
//! on the size of a request head (answered 431) and a cap on open
//! connections, beyond which clients wait in the kernel's listen queue; and
//! it closes a connection whose client stops reading its answers (see
//! [`write_timeout`]).
//!
//! Stopping is graceful: the loop stops accepting, each connection finishes
//! the request it is serving and closes, and [`serve`] returns when the
//! last one has. Bounding that wait is the caller's business.

mod write_timeout;

use std::{convert::Infallible, future::Future, io, net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    body::Body,
    extract::{ConnectInfo, Request},
    response::Response,
};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
};
use tokio::{net::TcpListener, sync::Semaphore};
use tower::{Service, ServiceExt as _, util::Oneshot};

use self::write_timeout::WriteTimeout;
use crate::config::ServeConfig;

/// What a connection may hold, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Longest wait for a request's head, from the connection's start or
    /// the end of the previous response.
    pub header_read_timeout: Duration,
    /// Longest a response write may wait for the client to read before
    /// the connection is closed.
    pub write_timeout: Duration,
    /// Largest request head, in bytes.
    pub max_header_size: usize,
    /// Most connections open at once.
    pub max_connections: usize,
}

impl ConnectionLimits {
    /// The limits the configuration sets.
    pub fn from_config(config: &ServeConfig) -> Self {
        Self {
            header_read_timeout: config.header_read_timeout,
            write_timeout: config.write_timeout,
            max_header_size: config.max_header_size,
            max_connections: usize::try_from(config.max_connections).unwrap_or(usize::MAX),
        }
    }
}

/// Serves `service` on every connection `listener` accepts, until `stop`
/// completes and the open connections have finished.
///
/// With `connect_info`, each request carries the client's address as
/// [`ConnectInfo<SocketAddr>`].
pub async fn serve<S>(
    listener: TcpListener,
    service: S,
    limits: ConnectionLimits,
    connect_info: bool,
    stop: impl Future<Output = ()>,
) where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_size);
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let connections = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);

    loop {
        // The permit comes before the accept, so that past the cap new
        // clients wait in the listen queue instead of being accepted and
        // starved.
        let accepted = tokio::select! {
            () = &mut stop => break,
            accepted = accept(&listener, &open) => accepted,
        };
        let Some((stream, address, permit)) = accepted else {
            continue;
        };

        // Answers go out as soon as they are written, not held back to be
        // merged with a later one that never comes.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot disable Nagle's algorithm");
        }
        let connection = ConnectionService {
            service: service.clone(),
            client: connect_info.then_some(address),
        };
        let stream = WriteTimeout::new(stream, limits.write_timeout);
        let served = connections.watch(http.serve_connection(TokioIo::new(stream), connection));
        tokio::spawn(async move {
            // Timeouts, resets and malformed requests end here; hyper has
            // already answered whatever could be answered.
            if let Err(error) = served.await {
                tracing::debug!(%error, client = %address, "connection closed with an error");
            }
            drop(permit);
        });
    }

    drop(listener);
    connections.shutdown().await;
}

/// The next connection, with the permit it holds while open; `None` after
/// an error that only concerned one client.
async fn accept(
    listener: &TcpListener,
    open: &Arc<Semaphore>,
) -> Option<(
    tokio::net::TcpStream,
    SocketAddr,
    tokio::sync::OwnedSemaphorePermit,
)> {
    // The semaphore is never closed, so this cannot fail.
    let permit = Arc::clone(open).acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, address)) => Some((stream, address, permit)),
        Err(error) if is_per_connection(&error) => None,
        Err(error) => {
            // Out of file descriptors or memory: retrying at once would
            // spin, and the condition usually passes as connections close.
            tracing::error!(%error, "cannot accept connections; retrying in 100 ms");
            tokio::time::sleep(Duration::from_millis(100)).await;
            None
        }
    }
}

/// Errors that end one half-opened connection and leave the listener fine.
fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// The service as hyper calls it on one connection.
#[derive(Clone)]
struct ConnectionService<S> {
    service: S,
    /// The client's address, when requests are to carry it.
    client: Option<SocketAddr>,
}

impl<S> hyper::service::Service<hyper::Request<Incoming>> for ConnectionService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Oneshot<S, Request>;

    fn call(&self, request: hyper::Request<Incoming>) -> Self::Future {
        let mut request = request.map(Body::new);
        if let Some(client) = self.client {
            request.extensions_mut().insert(ConnectInfo(client));
        }
        // hyper calls through a shared reference, tower through an
        // exclusive one: each request gets its own handle to the service.
        self.service.clone().oneshot(request)
    }
}
