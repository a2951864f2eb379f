//! A peer to measure the api against: the same hello as `bare-axum`,
//! instrumented with the `axum-prometheus` crate the way its README shows
//! (its layer on the router, `/metrics` rendered by its handle).
//!
//! Same listener settings and runtime as `bare-axum` (`PORT`, default
//! 8000, `BIND_ADDRESS`, default 127.0.0.1, `Runtime::new()`), so that the
//! gap between the two is what that crate's instrumentation costs, beside
//! the gap between `api-without-metrics` and `api` for ours.

use std::net::SocketAddr;

use anyhow::Context;
use axum::{Router, routing::get};
use axum_prometheus::PrometheusMetricLayer;

/// The answer to `GET /`, as long as `bare-axum`'s.
const GREETING: &str = "Hello from bare axum\n";

fn main() -> anyhow::Result<()> {
    let address = bench::listen_address()?;
    tokio::runtime::Runtime::new()?.block_on(serve(address))
}

/// Serves the hello and `/metrics` until SIGTERM or SIGINT.
async fn serve(address: SocketAddr) -> anyhow::Result<()> {
    let (metrics, handle) = PrometheusMetricLayer::pair();
    let app = Router::new()
        .route("/", get(|| async { GREETING }))
        .route("/metrics", get(move || async move { handle.render() }))
        .layer(metrics);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("failed to listen on {address}"))?;

    axum::serve(listener, app)
        .with_graceful_shutdown(api::startup::shutdown_signal())
        .await
        .context("the server failed")
}
