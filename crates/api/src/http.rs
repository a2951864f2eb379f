//! The middleware every request passes through, outermost first:
//!
//! 1. a request id, taken from `x-request-id` or generated, and echoed on
//!    the response;
//! 2. a tracing span named `request` that carries that id, so every log line
//!    of the request names it;
//! 3. panic recovery: a panicking handler is answered 500 and the server
//!    keeps serving;
//! 4. load shedding: past a number of requests in flight, more are answered
//!    503 at once;
//! 5. the request timeout: a slower request is answered 503 and its future
//!    dropped;
//! 6. the body limit, enforced by the body extractors.
//!
//! The layers wrap the finished router as one service rather than going
//! through `Router::layer`, which would box a copy of the stack around every
//! route and clone it on each request.
//!
//! Routing and handlers live in [`crate::routes`].

mod in_flight;
mod timeout;

use std::{any::Any, convert::Infallible, time::Duration};

use axum::{
    Extension, Router,
    extract::{DefaultBodyLimit, Request},
    response::{IntoResponse, Response},
};
use tower::{ServiceBuilder, util::BoxCloneSyncService};
use tower_http::{
    LatencyUnit,
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::{DefaultOnResponse, TraceLayer},
};

use self::{in_flight::InFlightLimitLayer, timeout::RequestTimeoutLayer};
use crate::{config::ServeConfig, error::ApiError, extract::BodyLimit};

/// The router inside the middleware, as one service.
///
/// Boxed once, so that the server and the benchmarks can name it; the box
/// costs one allocation per request, against the several that a layer per
/// route would.
pub type HttpService = BoxCloneSyncService<Request, Response, Infallible>;

/// Limits applied to every request.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Longest a request may take before it is answered 503.
    pub request_timeout: Duration,
    /// Largest body accepted, in bytes.
    pub body_limit: usize,
    /// Most requests handled at once; more are answered 503.
    pub max_in_flight: usize,
}

impl HttpLimits {
    /// The limits the configuration sets.
    pub fn from_config(config: &ServeConfig) -> Self {
        Self {
            request_timeout: config.request_timeout,
            body_limit: config.body_limit,
            max_in_flight: usize::try_from(config.max_in_flight).unwrap_or(usize::MAX),
        }
    }
}

/// Wraps a router in the service's middleware.
pub fn with_middleware(router: Router, limits: HttpLimits) -> HttpService {
    let service = ServiceBuilder::new()
        // The tracing and panic layers change the body type; one
        // conversion back to axum's body, outermost, serves them both.
        .map_response(IntoResponse::into_response)
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().latency_unit(LatencyUnit::Micros))
                // Server faults are logged where they happen, with
                // their cause; a second line per fault adds only noise.
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(CatchPanicLayer::custom(answer_panic))
        .layer(InFlightLimitLayer::new(limits.max_in_flight))
        .layer(RequestTimeoutLayer::new(limits.request_timeout))
        .layer(DefaultBodyLimit::max(limits.body_limit))
        .layer(Extension(BodyLimit(limits.body_limit)))
        .service(router);
    BoxCloneSyncService::new(service)
}

/// The span every log line of a request is written in.
fn request_span(request: &Request) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = request.uri().path(),
        request_id,
    )
}

fn answer_panic(payload: Box<dyn Any + Send + 'static>) -> Response {
    let message = if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic with no message".to_owned()
    };
    ApiError::Panic(message).into_response()
}
