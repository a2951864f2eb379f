//! The api exactly as `api::startup` builds it, minus the metrics layer:
//! the baseline that prices that layer.
//!
//! It reads the same configuration as `api` (the same flags and variables,
//! with the same defaults), opens the same
//! SQLite store with one reader per core, wraps the same routes in the same
//! middleware, and serves them with `api::serve` on the same runtime
//! (`tokio::runtime::Runtime::new()`, one worker per core). What differs:
//!
//! - no `HttpMetrics` layer around the router, so `/metrics` answers 404;
//! - no separate metrics listener and no fault injection: `METRICS_PORT`
//!   and `FAULT_INJECTION` are refused rather than silently ignored, so the
//!   comparison never runs against a differently shaped server;
//! - no connect-info wrapper (the api adds it only for the fault admin
//!   endpoint, which is off here too);
//! - shutdown stops accepting and closes the store, without the api's
//!   shutdown delay and grace deadline: the benchmark stops it only when it
//!   is idle.

use std::{net::SocketAddr, process::ExitCode};

use anyhow::{Context, bail};
use api::{
    config::{Cli, Command, DatabaseUrl, ServeConfig},
    extract::BodyLimit,
    http::{self, HttpLimits},
    routes,
    serve::ConnectionLimits,
    startup::shutdown_signal,
    state::{AppState, Readiness},
    storage::{SqliteStore, UserStore as _},
    telemetry,
};
use clap::Parser as _;

fn main() -> ExitCode {
    let config = match Cli::parse().into_command() {
        Command::Serve(config) => config,
        Command::Healthcheck(_) => {
            eprintln!("error: only serving is supported by this benchmark binary");
            return ExitCode::from(2);
        }
    };
    if let Err(error) = telemetry::init(config.log_format, &config.log_filter) {
        eprintln!("error: cannot set up logging: {error:#}");
        return ExitCode::FAILURE;
    }

    // The same runtime as the api's `main`: multi-threaded, defaults.
    let result = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(serve(&config)));

    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Builds the service as `api::startup::Server::build` does, minus the
/// metrics layer, and serves it until SIGTERM or SIGINT.
async fn serve(config: &ServeConfig) -> anyhow::Result<()> {
    if config.metrics_port.is_some() || config.fault_injection {
        bail!("METRICS_PORT and FAULT_INJECTION are not supported here");
    }

    let DatabaseUrl::Sqlite(path) = &config.database_url;
    let readers = std::thread::available_parallelism().map_or(2, |cores| cores.get());
    let store = SqliteStore::open(path, readers)
        .with_context(|| format!("failed to open database at {}", path.display()))?;

    let state = AppState {
        store: store.clone(),
        readiness: Readiness::default(),
        body_limit: BodyLimit(config.body_limit),
    };
    let limits = HttpLimits::from_config(config);
    let app = http::with_middleware(routes::router(state, None, None), limits);

    let address = SocketAddr::new(config.bind_address, config.port);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("failed to listen on {address}"))?;
    let connections = ConnectionLimits::from_config(config);
    api::serve::serve(listener, app, connections, false, shutdown_signal()).await;

    store.close().await.context("failed to close the database")
}
