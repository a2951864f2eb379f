//! What the service's middleware adds to a request: the api's own router
//! driven in-process on `GET /`, bare, inside `with_middleware`, and inside
//! the tower-http stack that `with_middleware` replaced, so that the
//! differences between ids are each stack's cost per request.
//!
//! The tower-http stack is rebuilt here as far as the request context
//! replaced it (request id from a UUID, trace layer, request id
//! propagation, panic catching, and one conversion back to axum's body), to
//! keep the reason for the hand-written middleware measurable. It lacks the
//! load shedding and the timeout that `with_middleware` also has, so the
//! comparison leans in tower-http's favour. These three run without a
//! tracing subscriber, so spans and events cost only their disabled checks;
//! two more run `with_middleware` under the service's own subscriber, at its
//! default level to price the logging as deployed, and with the per-request
//! debug lines on.

#![allow(missing_docs)]

use std::time::Duration;

use api::{
    config::LogFormat,
    extract::BodyLimit,
    http::{HttpLimits, with_middleware},
    routes,
    state::{AppState, Readiness},
    storage::SqliteStore,
    telemetry,
};
use axum::{
    Router,
    body::Body,
    http::Request,
    response::{IntoResponse, Response},
};
use criterion::{Criterion, criterion_group, criterion_main};
use tower::{ServiceBuilder, ServiceExt};
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};

/// The limits of the default configuration.
const LIMITS: HttpLimits = HttpLimits {
    request_timeout: Duration::from_secs(10),
    max_in_flight: 512,
};

fn per_request(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let folder = tempfile::tempdir().expect("temporary folder");
    let store = SqliteStore::open(&folder.path().join("api.db"), 1).expect("store opens");
    let router = routes::router(
        AppState {
            store,
            readiness: Readiness::default(),
            body_limit: BodyLimit(64 * 1024),
        },
        None,
        None,
    );
    let middleware = with_middleware(router.clone(), LIMITS);
    let tower_http = tower_http_stack(router.clone());
    let mut group = c.benchmark_group("static");

    group.bench_function("router", |b| {
        b.to_async(&runtime)
            .iter(|| router.clone().oneshot(request()));
    });
    group.bench_function("with_middleware", |b| {
        b.to_async(&runtime)
            .iter(|| middleware.clone().oneshot(request()));
    });
    group.bench_function("tower_http_stack", |b| {
        b.to_async(&runtime)
            .iter(|| tower_http.clone().oneshot(request()));
    });
    // The service's own subscriber writing nowhere, at its default filter
    // (what every request pays for logging as deployed) and with the
    // request lines on.
    for (name, filter) in [
        ("with_middleware_logging_at_info", "info"),
        ("with_middleware_logging_requests", "info,api::http=debug"),
    ] {
        let subscriber = telemetry::subscriber(LogFormat::Json, filter, std::io::sink)
            .expect("the filter parses");
        tracing::subscriber::with_default(subscriber, || {
            group.bench_function(name, |b| {
                b.to_async(&runtime)
                    .iter(|| middleware.clone().oneshot(request()));
            });
        });
    }
    group.finish();
}

/// The router inside the tower-http layers the service used before its
/// request context was written by hand.
fn tower_http_stack(
    router: Router,
) -> impl tower::Service<
    Request<Body>,
    Response = Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone {
    ServiceBuilder::new()
        .map_response(IntoResponse::into_response)
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(TraceLayer::new_for_http())
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(CatchPanicLayer::new())
        .service(router)
}

fn request() -> Request<Body> {
    Request::get("/").body(Body::empty()).expect("request")
}

criterion_group!(benches, per_request);
criterion_main!(benches);
