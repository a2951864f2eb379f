//! The floor under every figure: axum answering `GET /` with a static
//! string, with nothing else in the way.
//!
//! It listens where the api would (`PORT`, default 8000, and
//! `BIND_ADDRESS`, default 127.0.0.1) on the api's runtime
//! (`tokio::runtime::Runtime::new()`), so that the gap between this and the
//! api on `/` is what the api's middleware, routing and metrics cost. It
//! has no configuration parser, logging or store, because those are part of
//! what is being priced.

use std::net::SocketAddr;

use anyhow::Context;
use axum::{Router, routing::get};

/// The answer to `GET /`, about as long as the api's greeting.
const GREETING: &str = "Hello from bare axum\n";

fn main() -> anyhow::Result<()> {
    let address = bench::listen_address()?;
    tokio::runtime::Runtime::new()?.block_on(serve(address))
}

/// Serves the one route until SIGTERM or SIGINT.
async fn serve(address: SocketAddr) -> anyhow::Result<()> {
    let app = Router::new().route("/", get(|| async { GREETING }));
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("failed to listen on {address}"))?;

    axum::serve(listener, app)
        .with_graceful_shutdown(api::startup::shutdown_signal())
        .await
        .context("the server failed")
}
