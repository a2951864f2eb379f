//! The tower layer that records every request, and answers scrapes when it
//! is asked to serve the exposition itself.
//!
//! Per request, `call` finds the route in the matchit table and the method's
//! row index, counts the request as in flight and notes the time; when the
//! inner future yields a response, its status and duration go into the
//! route's histogram. Nothing is allocated, locked or hashed on the way,
//! apart from the first request of a route, method and status, which
//! initialises its histogram.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use http::{Request, Response};
use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower_layer::Layer;
use tower_service::Service;

use crate::{
    Shared,
    registry::{RouteIndex, method_index},
};

/// Applies [`MetricsService`] to a service; made by
/// [`HttpMetrics::layer`](crate::HttpMetrics::layer).
#[derive(Debug, Clone)]
pub struct MetricsLayer {
    pub(crate) shared: Arc<Shared>,
}

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// A service that records the requests it passes to `S`.
#[derive(Debug, Clone)]
pub struct MetricsService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S, RequestBody, ResponseBody> Service<Request<RequestBody>> for MetricsService<S>
where
    S: Service<Request<RequestBody>, Response = Response<ResponseBody>>,
    ResponseBody: From<Bytes>,
{
    type Response = Response<ResponseBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResponseBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<RequestBody>) -> Self::Future {
        let registry = &self.shared.registry;
        let route = registry.route_of(request.uri().path());

        // Scrapes are answered here and not counted, so that watching the
        // service does not change what is watched.
        if Some(route) == self.shared.exposition_route {
            let response = self
                .shared
                .exposition()
                .response(request.method(), request.headers());
            return ResponseFuture {
                kind: Kind::Exposition {
                    response: Some(response),
                },
            };
        }

        let recording = Recording {
            shared: Arc::clone(&self.shared),
            route,
            method: method_index(request.method()),
            start: Instant::now(),
            finished: false,
        };
        registry.begin();
        ResponseFuture {
            kind: Kind::Recorded {
                inner: self.inner.call(request),
                recording,
            },
        }
    }
}

pin_project! {
    /// The response future of [`MetricsService`].
    pub struct ResponseFuture<F, B> {
        #[pin]
        kind: Kind<F, B>,
    }
}

pin_project! {
    #[project = Projected]
    enum Kind<F, B> {
        // A request on its way through the inner service.
        Recorded {
            #[pin]
            inner: F,
            recording: Recording,
        },
        // A scrape, already answered.
        Exposition {
            response: Option<Response<B>>,
        },
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            Projected::Recorded { inner, recording } => {
                let result = ready!(inner.poll(cx));

                // An inner error means no response will be written: to the
                // client that is a server fault.
                let status = result
                    .as_ref()
                    .map_or(500, |response| response.status().as_u16());
                recording.finish(status);
                Poll::Ready(result)
            }
            Projected::Exposition { response } => Poll::Ready(Ok(response
                .take()
                .expect("ResponseFuture polled after completion"))),
        }
    }
}

/// One request being timed. Dropping it ends the request in the in-flight
/// gauge whatever happened; a request whose handler panicked is recorded
/// as a 500, one whose client went away before an answer is not recorded.
#[derive(Debug)]
pub struct Recording {
    shared: Arc<Shared>,
    route: RouteIndex,
    method: usize,
    start: Instant,
    finished: bool,
}

impl Recording {
    fn finish(&mut self, status: u16) {
        if self.finished {
            return;
        }
        self.finished = true;
        let nanos = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.shared
            .registry
            .record(self.route, self.method, status, nanos);
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.finish(500);
        }
        self.shared.registry.end();
    }
}
