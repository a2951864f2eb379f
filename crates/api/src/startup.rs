//! Building the server from its configuration, and running it until it is
//! told to stop.
//!
//! Shutdown runs in this order: `/ready` turns 503, the listener stops
//! accepting, requests in flight finish (or the grace period runs out), and
//! the database is checkpointed and closed.

use std::{future::Future, net::SocketAddr, time::Duration};

use anyhow::Context;
use tokio::{net::TcpListener, sync::oneshot};

use crate::{
    config::{DatabaseUrl, ServeConfig},
    http::{self, HttpLimits},
    routes,
    state::{AppState, Readiness},
    storage::{SqliteStore, UserStore},
};

/// A bound, ready-to-run server.
pub struct Server {
    listener: TcpListener,
    app: axum::Router,
    store: SqliteStore,
    readiness: Readiness,
    grace_period: Duration,
}

impl Server {
    /// Opens the database and binds the listener.
    ///
    /// # Errors
    ///
    /// Fails when the database cannot be opened or migrated, or the address
    /// cannot be bound; the message names which.
    pub async fn build(config: &ServeConfig) -> anyhow::Result<Self> {
        let DatabaseUrl::Sqlite(path) = &config.database_url;
        let readers = std::thread::available_parallelism().map_or(2, |cores| cores.get());
        let store = SqliteStore::open(path, readers)
            .with_context(|| format!("failed to open database at {}", path.display()))?;

        let address = SocketAddr::new(config.bind_address, config.port);
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("failed to listen on {address}"))?;

        let readiness = Readiness::default();
        let state = AppState {
            store: store.clone(),
            readiness: readiness.clone(),
        };
        let limits = HttpLimits {
            request_timeout: config.request_timeout,
            body_limit: config.body_limit,
        };
        let app = http::with_middleware(routes::router(state), limits);

        Ok(Self {
            listener,
            app,
            store,
            readiness,
            grace_period: config.shutdown_grace_period,
        })
    }

    /// The address the listener is bound to (useful after binding port 0).
    ///
    /// # Errors
    ///
    /// Fails only if the operating system cannot report the address.
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Serves until `shutdown` completes, then drains and closes.
    ///
    /// # Errors
    ///
    /// Fails when the listener fails or the database cannot be closed
    /// cleanly.
    pub async fn run_until<F>(self, shutdown: F) -> anyhow::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Self {
            listener,
            app,
            store,
            readiness,
            grace_period,
        } = self;
        let address = listener.local_addr()?;
        tracing::info!(%address, database = %store.path().display(), "listening");

        // The grace period starts when draining does, not when serving does.
        let (drain_started, drain_start) = oneshot::channel();
        let drain = async move {
            shutdown.await;
            readiness.start_draining();
            tracing::info!(grace_period = ?grace_period, "draining");
            let _ = drain_started.send(());
        };
        let deadline = async move {
            match drain_start.await {
                Ok(()) => tokio::time::sleep(grace_period).await,
                Err(_) => std::future::pending().await,
            }
        };

        let serve = axum::serve(listener, app).with_graceful_shutdown(drain);
        tokio::select! {
            served = serve => served.context("the server failed")?,
            () = deadline => tracing::warn!("grace period over with requests still in flight"),
        }

        store
            .close()
            .await
            .context("failed to close the database")?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };

    tokio::select! {
        () = interrupt => tracing::info!(signal = "SIGINT", "shutdown requested"),
        () = terminate => tracing::info!(signal = "SIGTERM", "shutdown requested"),
    }
}
