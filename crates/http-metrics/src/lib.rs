//! RED metrics (rate, errors, duration) for axum and tower HTTP services,
//! with label values that no client can multiply, and a recording path that
//! costs a few atomic additions.
//!
//! # What is exported
//!
//! | family | type | labels |
//! |---|---|---|
//! | `{ns}_http_request_total` | counter | `path`, `status`: answers below 400 |
//! | `{ns}_http_request_error_total` | counter | `path`, `status`: answers from 400 up |
//! | `http_server_request_duration_seconds` | histogram | method, route, status (below) |
//! | `http_server_active_requests` | gauge | none: requests in flight |
//! | `{ns}_build_info` | gauge, always 1 | `version`, `revision`, `rustc` |
//! | `process_*` | as Prometheus' process collector | none (Linux only) |
//!
//! The histogram's labels are `http_request_method`, `http_route` and
//! `http_response_status_code`. `{ns}` is the namespace given to the
//! builder. The two counters keep the
//! names and meaning of the classic Go tutorial's, so its dashboards work
//! unchanged, except that `path` is the route template (`/users/{id}`),
//! never the raw URL. The histogram uses the OpenTelemetry HTTP server names.
//!
//! # Bounded labels
//!
//! No label value is taken from the request as sent. A path is either one
//! of the declared route templates or the fixed value `unmatched`; a method
//! is one of the nine standard ones or `_OTHER`; a status is what the service
//! answered. A scanner sending a million random paths with invented methods
//! adds no series at all.
//!
//! # Cost
//!
//! Routes are declared to the builder, which puts their templates in a
//! `matchit` radix tree (the matcher axum uses, so both agree on every
//! path) and lays out the histograms beneath them. Per request, the layer
//! walks the tree, indexes the method's row, and on completion adds to one
//! bucket and the sum: no allocation, no lock, no string hashing. The first
//! request of each route, method and status initialises its histogram once.
//! The guide's counters are not stored: they are the histogram's counts,
//! summed when a scrape renders them. Declaring routes also means their
//! series exist at zero from start-up, so dashboards have data before
//! traffic does.
//!
//! The cost of deriving the route from axum's `MatchedPath` instead would
//! be a string hash per request, and the layer would have to sit inside the
//! router, where it cannot see timeouts or panics handled by outer layers.
//!
//! # Placement
//!
//! Put the layer outermost, so that it times everything the service does and
//! counts the answers of inner layers (a timeout's 503, a caught panic's
//! 500). A handler panic that nothing catches is still counted as a 500. A
//! request whose client disconnects before the answer is not counted.
//!
//! Wrap the finished router as one service (`metrics.layer().layer(router)`,
//! served with `axum::ServiceExt::into_make_service`) rather than calling
//! `Router::layer`: axum boxes a copy of a router layer around every route
//! and clones it per request, which costs more than the metrics do.
//!
//! # Example
//!
//! ```
//! use axum::{Router, body::Body, routing::get};
//! use http::{Method, Request};
//! use http_metrics::{Format, HttpMetrics};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let metrics = HttpMetrics::builder()
//!     .namespace("shop")
//!     .route("/items/{id}", [(Method::GET, 200)])
//!     .process_metrics(false)
//!     .serve_at("/metrics")
//!     .build()?;
//!
//! let app = Router::new()
//!     .route("/items/{id}", get(|| async { "an item" }))
//!     .layer(metrics.layer());
//!
//! let request = Request::get("/items/7").body(Body::empty())?;
//! app.clone().oneshot(request).await?;
//!
//! let text = metrics.render(Format::Text);
//! assert!(text.contains(r#"shop_http_request_total{path="/items/{id}",status="200"} 1"#));
//!
//! // The layer answers scrapes itself, without counting them.
//! let scrape = Request::get("/metrics").body(Body::empty())?;
//! assert_eq!(app.oneshot(scrape).await?.status(), 200);
//! # Ok(())
//! # }
//! ```

mod exposition;
mod layer;
mod process;
mod registry;

use std::{convert::Infallible, future::Ready, sync::Arc, task::Poll};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::Full;

use crate::{
    exposition::Exposition,
    registry::{Buckets, Registry, RouteDeclaration, RouteIndex},
};
pub use crate::{
    exposition::{Format, OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE},
    layer::{MetricsLayer, MetricsService, Recording, ResponseFuture},
};

/// Upper bounds of the duration buckets, in seconds, unless configured.
pub const DEFAULT_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// The `path` and `http_route` value of requests that match no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The labels of `{namespace}_build_info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    /// Version of the service.
    pub version: String,
    /// Source revision it was built from.
    pub revision: String,
    /// Compiler version.
    pub rustc: String,
}

/// The metrics of one HTTP service; cheap to clone.
#[derive(Debug, Clone)]
pub struct HttpMetrics {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    registry: Registry,
    namespace: String,
    build_info: Option<BuildInfo>,
    process_metrics: bool,
    /// The route the layer answers with the exposition, if any.
    exposition_route: Option<RouteIndex>,
}

impl Shared {
    fn exposition(&self) -> Exposition<'_> {
        Exposition {
            registry: &self.registry,
            namespace: &self.namespace,
            build_info: self.build_info.as_ref(),
            process_metrics: self.process_metrics,
        }
    }
}

impl HttpMetrics {
    /// Starts describing the metrics of a service.
    pub fn builder() -> HttpMetricsBuilder {
        HttpMetricsBuilder::default()
    }

    /// The layer that records requests (and answers scrapes, if
    /// [`HttpMetricsBuilder::serve_at`] was set).
    pub fn layer(&self) -> MetricsLayer {
        MetricsLayer {
            shared: Arc::clone(&self.shared),
        }
    }

    /// A service that answers every request with the exposition, for a
    /// listener of its own; see [`MetricsEndpoint`].
    pub fn endpoint(&self) -> MetricsEndpoint {
        MetricsEndpoint {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Every family, rendered in `format`.
    pub fn render(&self, format: Format) -> String {
        self.shared.exposition().render(format)
    }
}

/// Answers every request with the exposition, negotiating format and
/// compression from its headers.
///
/// Mount it where scrapes should be served, for instance on a separate
/// port so a public API need not expose its internals:
/// `Router::new().route_service("/metrics", metrics.endpoint())`.
#[derive(Debug, Clone)]
pub struct MetricsEndpoint {
    shared: Arc<Shared>,
}

impl<B> tower_service::Service<Request<B>> for MetricsEndpoint {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut std::task::Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        std::future::ready(Ok(self
            .shared
            .exposition()
            .response(request.method(), request.headers())))
    }
}

/// Why metrics could not be built.
#[derive(Debug)]
pub struct BuildError(String);

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BuildError {}

/// Describes the metrics of a service; made by [`HttpMetrics::builder`].
#[derive(Debug)]
pub struct HttpMetricsBuilder {
    namespace: String,
    routes: Vec<RouteDeclaration>,
    buckets: Vec<f64>,
    build_info: Option<BuildInfo>,
    process_metrics: bool,
    serve_at: Option<String>,
}

impl std::fmt::Debug for RouteDeclaration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteDeclaration")
            .field("template", &self.template)
            .field("expected", &self.expected)
            .finish()
    }
}

impl Default for HttpMetricsBuilder {
    fn default() -> Self {
        Self {
            namespace: "api".to_owned(),
            routes: Vec::new(),
            buckets: DEFAULT_BUCKETS.to_vec(),
            build_info: None,
            process_metrics: true,
            serve_at: None,
        }
    }
}

impl HttpMetricsBuilder {
    /// The prefix of the guide's counters and of `_build_info` (default
    /// `api`).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Declares a route template, in axum's syntax (`/users/{id}`), with the
    /// method and status pairs whose series should exist from start-up, at
    /// zero (typically each method with its success status).
    ///
    /// A request whose path matches no declared template is recorded under
    /// [`UNMATCHED_ROUTE`], so every route of the service must be declared.
    pub fn route(
        mut self,
        template: impl Into<String>,
        expected: impl IntoIterator<Item = (Method, u16)>,
    ) -> Self {
        self.routes.push(RouteDeclaration {
            template: template.into(),
            expected: expected.into_iter().collect(),
        });
        self
    }

    /// Upper bounds of the duration buckets, in seconds, ascending (default
    /// [`DEFAULT_BUCKETS`]).
    pub fn buckets(mut self, bounds: &[f64]) -> Self {
        self.buckets = bounds.to_vec();
        self
    }

    /// Exports `{namespace}_build_info` with these labels.
    pub fn build_info(mut self, info: BuildInfo) -> Self {
        self.build_info = Some(info);
        self
    }

    /// Whether to export the `process_*` families (default yes).
    pub fn process_metrics(mut self, enabled: bool) -> Self {
        self.process_metrics = enabled;
        self
    }

    /// Has the layer answer scrapes on this path itself, uncounted. Without
    /// it, serve [`HttpMetrics::endpoint`] wherever suits.
    pub fn serve_at(mut self, path: impl Into<String>) -> Self {
        self.serve_at = Some(path.into());
        self
    }

    /// Checks the description and lays out the registry.
    ///
    /// # Errors
    ///
    /// Fails when the namespace is not a valid metric name prefix, a route
    /// template is invalid or declared twice, or the buckets are not
    /// positive and strictly increasing.
    pub fn build(mut self) -> Result<HttpMetrics, BuildError> {
        if !is_metric_name(&self.namespace) {
            return Err(BuildError(format!(
                "namespace `{}` is not a valid metric name prefix",
                self.namespace
            )));
        }
        let buckets = Buckets::new(&self.buckets).map_err(BuildError)?;

        let exposition_route = self.serve_at.take().map(|path| {
            self.routes.push(RouteDeclaration {
                template: path,
                expected: Vec::new(),
            });
            self.routes.len() - 1
        });
        let registry = Registry::new(&self.routes, UNMATCHED_ROUTE, buckets)
            .map_err(|error| BuildError(format!("invalid route template: {error}")))?;

        Ok(HttpMetrics {
            shared: Arc::new(Shared {
                registry,
                namespace: self.namespace,
                build_info: self.build_info,
                process_metrics: self.process_metrics,
                exposition_route,
            }),
        })
    }
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, the metric names every Prometheus accepts.
fn is_metric_name(name: &str) -> bool {
    let mut characters = name.chars();
    characters
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && characters.all(|rest| rest.is_ascii_alphanumeric() || rest == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_descriptions_are_refused_with_a_reason() {
        let cases = [
            (HttpMetrics::builder().namespace("my-api"), "namespace"),
            (HttpMetrics::builder().namespace(""), "namespace"),
            (
                HttpMetrics::builder().route("/a", []).route("/a", []),
                "route",
            ),
            (HttpMetrics::builder().route("/a/{", []), "route"),
            (HttpMetrics::builder().buckets(&[]), "bucket"),
            (HttpMetrics::builder().buckets(&[1.0, 0.5]), "bucket"),
            (HttpMetrics::builder().buckets(&[-1.0]), "bucket"),
            (HttpMetrics::builder().buckets(&[f64::NAN]), "bucket"),
        ];
        for (builder, about) in cases {
            let error = builder.build().expect_err("refused").to_string();
            assert!(error.contains(about), "{error}");
        }
    }
}
