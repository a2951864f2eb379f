//! What the layer adds to a request: the same axum router driven in-process
//! with and without it, so the difference between ids is the layer's cost
//! per request.
//!
//! Two placements are measured. `wrapping_router` puts the layer around the
//! router as one tower service, which adds only the layer's own work.
//! `router_layer` uses axum's `Router::layer`, which boxes a copy of the
//! layer around every route and clones it per request: the difference
//! between the two is axum's boxing, not the metrics.

#![allow(missing_docs)]

use axum::{Router, body::Body, http::Request, routing::get};
use criterion::{Criterion, criterion_group, criterion_main};
use http::Method;
use http_metrics::HttpMetrics;
use tower::Layer;
use tower::ServiceExt;

fn router() -> Router {
    Router::new()
        .route("/", get(|| async { "hello" }))
        .route("/items/{id}", get(|| async { "an item" }))
}

fn metrics() -> HttpMetrics {
    HttpMetrics::builder()
        .route("/", [(Method::GET, 200)])
        .route("/items/{id}", [(Method::GET, 200)])
        .build()
        .expect("valid metrics")
}

fn per_request(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let metrics = metrics();
    let bare = router();
    let wrapped = metrics.layer().layer(router());
    let router_layer = router().layer(metrics.layer());
    let mut group = c.benchmark_group("request");

    for (variant, path) in [
        ("static", "/"),
        ("templated", "/items/42"),
        ("unmatched", "/no/such"),
    ] {
        group.bench_function(format!("without_layer/{variant}"), |b| {
            b.to_async(&runtime)
                .iter(|| bare.clone().oneshot(request(path)));
        });
        group.bench_function(format!("wrapping_router/{variant}"), |b| {
            b.to_async(&runtime)
                .iter(|| wrapped.clone().oneshot(request(path)));
        });
        group.bench_function(format!("router_layer/{variant}"), |b| {
            b.to_async(&runtime)
                .iter(|| router_layer.clone().oneshot(request(path)));
        });
    }
    group.finish();
}

fn request(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).expect("request")
}

criterion_group!(benches, per_request);
criterion_main!(benches);
