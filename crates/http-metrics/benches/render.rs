//! How long a scrape takes to render: the series of the users API as it
//! starts, and a large service of 100 routes answering 10 statuses each.

#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use http::Method;
use http_metrics::{BuildInfo, Format, HttpMetrics};

/// The routes the users API declares, with its build info and the process
/// figures, as `api` renders them.
fn users_api() -> HttpMetrics {
    HttpMetrics::builder()
        .route("/", [(Method::GET, 200)])
        .route("/health", [(Method::GET, 200)])
        .route("/ready", [(Method::GET, 200)])
        .route("/version", [(Method::GET, 200)])
        .route("/v1/users", [(Method::GET, 200), (Method::POST, 201)])
        .route(
            "/v1/users/{id}",
            [
                (Method::GET, 200),
                (Method::PATCH, 200),
                (Method::DELETE, 204),
            ],
        )
        .build_info(BuildInfo {
            version: "0.1.0".into(),
            revision: "0123456789ab".into(),
            rustc: "1.95.0".into(),
        })
        .build()
        .expect("valid metrics")
}

/// 100 routes, each with GET answered in 10 statuses.
fn large_service() -> HttpMetrics {
    const STATUSES: [u16; 10] = [200, 201, 204, 400, 401, 403, 404, 409, 422, 500];
    (0..100)
        .fold(
            HttpMetrics::builder().process_metrics(false),
            |builder, route| {
                builder.route(
                    format!("/resource{route}/{{id}}"),
                    STATUSES.map(|s| (Method::GET, s)),
                )
            },
        )
        .build()
        .expect("valid metrics")
}

fn render(c: &mut Criterion) {
    let mut group = c.benchmark_group("render");
    let users_api = users_api();
    let large = large_service();

    group.bench_function("users_api_default_series/text", |b| {
        b.iter(|| users_api.render(Format::Text))
    });
    group.bench_function("users_api_default_series/openmetrics", |b| {
        b.iter(|| users_api.render(Format::OpenMetrics))
    });
    group.bench_function("100_routes_x_10_statuses/text", |b| {
        b.iter(|| large.render(Format::Text))
    });
    group.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
