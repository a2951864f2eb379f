//! What the layer adds to a request: the same axum router driven in-process
//! with and without it, so the difference between the two ids is the
//! layer's cost per request.

#![allow(missing_docs)]

use axum::{Router, body::Body, http::Request, routing::get};
use criterion::{Criterion, criterion_group, criterion_main};
use http::Method;
use http_metrics::HttpMetrics;
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
    let bare = router();
    let instrumented = router().layer(metrics().layer());
    let mut group = c.benchmark_group("request");

    for (id, app, path) in [
        ("without_layer/static", &bare, "/"),
        ("with_layer/static", &instrumented, "/"),
        ("without_layer/templated", &bare, "/items/42"),
        ("with_layer/templated", &instrumented, "/items/42"),
        ("with_layer/unmatched", &instrumented, "/no/such/page"),
    ] {
        group.bench_function(id, |b| {
            b.to_async(&runtime).iter(|| async {
                let request = Request::get(path).body(Body::empty()).expect("request");
                app.clone().oneshot(request).await.expect("infallible")
            });
        });
    }
    group.finish();
}

criterion_group!(benches, per_request);
criterion_main!(benches);
