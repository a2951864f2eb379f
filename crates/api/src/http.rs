//! The middleware every request passes through, outermost first:
//!
//! 1. the request context: an id, taken from `x-request-id` or generated
//!    and echoed on the response; a log line naming it for every request
//!    the service fails, and at debug level a tracing span named `request`
//!    that carries it, so every line of the request names it; and panic
//!    recovery, so a panicking handler is answered 500 and the server keeps
//!    serving;
//! 2. load shedding: past a number of requests in flight, more are answered
//!    503 at once;
//! 3. the request timeout: a slower request is answered 503 and its future
//!    dropped.
//!
//! The body limit is not a layer: the body extractors read it from the
//! router's state.
//!
//! The layers wrap the finished router as one service rather than going
//! through `Router::layer`, which would box a copy of the stack around every
//! route and clone it on each request. Each is written here rather than
//! taken from tower-http, because the stack of tower-http layers cost a
//! measurable share of the throughput (each module says what it saves).
//!
//! Routing and handlers live in [`crate::routes`].

mod context;
mod in_flight;
mod timeout;

use std::time::Duration;

use axum::Router;
use tower::{Layer, ServiceBuilder};

pub(crate) use self::context::Failure;
use self::{
    context::RequestContextLayer, in_flight::InFlightLimitLayer, timeout::RequestTimeoutLayer,
};
pub use self::{
    context::{MAX_REQUEST_ID_LEN, RequestContext},
    in_flight::InFlightLimit,
    timeout::RequestTimeout,
};
use crate::config::ServeConfig;

/// The router inside the middleware, as one service.
///
/// Named rather than boxed: the server clones its service for every
/// request, and cloning this costs two reference counts where a box would
/// cost an allocation, and another for every response future.
pub type HttpService = RequestContext<InFlightLimit<RequestTimeout<Router>>>;

/// Limits applied to every request.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Longest a request may take before it is answered 503.
    pub request_timeout: Duration,
    /// Most requests handled at once; more are answered 503.
    pub max_in_flight: usize,
}

impl HttpLimits {
    /// The limits the configuration sets.
    pub fn from_config(config: &ServeConfig) -> Self {
        Self {
            request_timeout: config.request_timeout,
            max_in_flight: usize::try_from(config.max_in_flight).unwrap_or(usize::MAX),
        }
    }
}

/// Wraps a router in the service's middleware.
pub fn with_middleware(router: Router, limits: HttpLimits) -> HttpService {
    ServiceBuilder::new()
        .layer(RequestContextLayer)
        .layer(InFlightLimitLayer::new(limits.max_in_flight))
        .layer(RequestTimeoutLayer::new(limits.request_timeout))
        .service(router)
}

/// Wraps a router in the request context alone: ids, panic recovery and
/// failure lines, without load shedding or a timeout. For the metrics
/// listener, whose few clients are Prometheus and operators.
pub fn with_request_context(router: Router) -> RequestContext<Router> {
    RequestContextLayer.layer(router)
}
