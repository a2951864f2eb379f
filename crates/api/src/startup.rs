//! Building the server from its configuration, and running it until it is
//! told to stop.
//!
//! The metrics layer wraps everything else, so it times the whole request
//! and counts the answers of the inner layers (a timeout's 503, a caught
//! panic's 500). `/metrics` is answered by that layer on the public port,
//! or, when `METRICS_PORT` is set, by a second listener of its own.
//!
//! Shutdown runs in this order: `/ready` turns 503 while the listeners
//! still accept (for the shutdown delay, so that load balancers see it and
//! stop sending), the listeners stop accepting, requests in flight finish
//! (or the grace period runs out), and the database is checkpointed and
//! closed.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use axum::{Router, http::Method};
use http_metrics::{BuildInfo, HttpMetrics, MetricsService};
use tokio::{
    net::TcpListener,
    sync::{oneshot, watch},
    task::JoinHandle,
};
use tower::Layer as _;

use crate::{
    build_info::BUILD_INFO,
    config::{DatabaseUrl, ServeConfig},
    extract::BodyLimit,
    faults::{self, AdminAccess, FaultSettings, Faults},
    http::{self, HttpLimits, HttpService, RequestContext},
    routes,
    serve::{ConnectionLimits, serve},
    state::{AppState, Readiness},
    storage::{SqliteStore, UserStore},
};

/// Where scrapes are answered, on whichever port serves them.
pub const METRICS_PATH: &str = "/metrics";

/// The prefix of the service's own metric names (`api_http_request_total`).
const METRICS_NAMESPACE: &str = "api";

/// A bound, ready-to-run server.
pub struct Server {
    listener: TcpListener,
    /// The whole service: routes and middleware, inside the metrics layer.
    app: MetricsService<HttpService>,
    /// The separate metrics listener and its router, when configured.
    metrics_listener: Option<(TcpListener, RequestContext<Router>)>,
    /// Whether the public listener must record client addresses (for the
    /// loopback-only admin endpoint); it costs a little per request.
    public_connect_info: bool,
    connection_limits: ConnectionLimits,
    store: SqliteStore,
    readiness: Readiness,
    shutdown_delay: Duration,
    grace_period: Duration,
}

impl Server {
    /// Opens the database, describes the metrics and binds the listeners.
    ///
    /// # Errors
    ///
    /// Fails when the database cannot be opened or migrated, or an address
    /// cannot be bound; the message names which.
    pub async fn build(config: &ServeConfig) -> anyhow::Result<Self> {
        let DatabaseUrl::Sqlite(path) = &config.database_url;
        let readers = std::thread::available_parallelism().map_or(2, |cores| cores.get());
        let store = SqliteStore::open(path, readers)
            .with_context(|| format!("failed to open database at {}", path.display()))?;

        let faults = fault_injection(config)?;
        let separate_metrics = config.metrics_port.is_some();
        let public_admin = faults.is_some() && !separate_metrics;
        let metrics = describe_metrics(!separate_metrics, public_admin)?;

        let readiness = Readiness::default();
        let state = AppState {
            store: store.clone(),
            readiness: readiness.clone(),
            body_limit: BodyLimit(config.body_limit),
        };
        let admin = |access| {
            faults
                .clone()
                .map(|faults| faults::admin_router(faults, access))
        };
        let public_extra = if separate_metrics {
            None
        } else {
            admin(AdminAccess::LoopbackOnly)
        };
        let limits = HttpLimits::from_config(config);
        // Around the finished service rather than through `Router::layer`,
        // for the reason `with_middleware` gives.
        let routes = routes::router(state, faults.clone(), public_extra);
        let app = metrics.layer().layer(http::with_middleware(routes, limits));

        let listener = bind(SocketAddr::new(config.bind_address, config.port)).await?;
        let metrics_listener = match config.metrics_port {
            Some(port) => {
                let listener = bind(SocketAddr::new(config.bind_address, port)).await?;
                let router = Router::new()
                    .route_service(METRICS_PATH, metrics.endpoint())
                    .merge(admin(AdminAccess::Listener).unwrap_or_default())
                    .fallback(routes::route_not_found);
                Some((listener, http::with_request_context(router)))
            }
            None => None,
        };

        Ok(Self {
            listener,
            app,
            metrics_listener,
            public_connect_info: public_admin,
            connection_limits: ConnectionLimits::from_config(config),
            store,
            readiness,
            shutdown_delay: config.shutdown_delay,
            grace_period: config.shutdown_grace_period,
        })
    }

    /// The address the public listener is bound to (useful after binding
    /// port 0).
    ///
    /// # Errors
    ///
    /// Fails only if the operating system cannot report the address.
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// The address of the separate metrics listener, when there is one.
    ///
    /// # Errors
    ///
    /// Fails only if the operating system cannot report the address.
    pub fn metrics_addr(&self) -> anyhow::Result<Option<SocketAddr>> {
        match &self.metrics_listener {
            Some((listener, _)) => Ok(Some(listener.local_addr()?)),
            None => Ok(None),
        }
    }

    /// Serves until `shutdown` completes, then drains and closes.
    ///
    /// # Errors
    ///
    /// Fails when a listener fails or the database cannot be closed cleanly.
    pub async fn run_until<F>(self, shutdown: F) -> anyhow::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Self {
            listener,
            app,
            metrics_listener,
            public_connect_info,
            connection_limits,
            store,
            readiness,
            shutdown_delay,
            grace_period,
        } = self;
        let address = listener.local_addr()?;
        tracing::info!(%address, database = %store.path().display(), "listening");

        // Every listener and the grace period start draining together,
        // once the delay for `/ready` to be seen has passed.
        let (start_draining, draining) = watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            readiness.start_draining();
            tracing::info!(
                delay = ?shutdown_delay,
                "not ready; closing the listeners after the delay"
            );
            tokio::time::sleep(shutdown_delay).await;
            tracing::info!(grace_period = ?grace_period, "draining");
            start_draining.send_replace(true);
        });

        let metrics_server = match metrics_listener {
            Some((listener, router)) => {
                tracing::info!(address = %listener.local_addr()?, "serving metrics");
                let stop = drained(draining.clone());
                Some(tokio::spawn(serve(
                    listener,
                    router,
                    connection_limits,
                    false,
                    stop,
                )))
            }
            None => None,
        };
        let serve_all = async {
            let stop = drained(draining.clone());
            serve(listener, app, connection_limits, public_connect_info, stop).await;
            if let Some(metrics_server) = metrics_server {
                metrics_server
                    .await
                    .context("the metrics listener task failed")?;
            }
            anyhow::Ok(())
        };
        let deadline = async {
            drained(draining.clone()).await;
            tokio::time::sleep(grace_period).await;
        };

        tokio::select! {
            served = serve_all => served.context("the server failed")?,
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

/// A server serving on a task of its own, for embedding in tests and
/// tools; made by [`Server::spawn`].
pub struct RunningServer {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Server {
    /// Serves on a new task until [`RunningServer::stop`] (or
    /// [`RunningServer::begin_shutdown`]) is called.
    pub fn spawn(self) -> RunningServer {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(self.run_until(async move {
            let _ = stopped.await;
        }));
        RunningServer {
            stop: Some(stop),
            task,
        }
    }
}

impl RunningServer {
    /// Starts the shutdown sequence without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Shuts the server down and waits until it has closed the database.
    ///
    /// # Errors
    ///
    /// Fails when the server failed or its task panicked.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.begin_shutdown();
        self.task.await.context("the server task panicked")?
    }
}

async fn bind(address: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("failed to listen on {address}"))
}

/// The fault injection the configuration asks for, if any.
fn fault_injection(config: &ServeConfig) -> anyhow::Result<Option<Arc<Faults>>> {
    if !config.fault_injection {
        let asked = !config.fault_latency.is_zero() || config.fault_error_ratio > 0.0;
        if asked {
            tracing::warn!("fault settings are ignored: FAULT_INJECTION is off");
        }
        return Ok(None);
    }
    let settings = FaultSettings {
        latency_ms: u64::try_from(config.fault_latency.as_millis()).unwrap_or(u64::MAX),
        error_ratio: config.fault_error_ratio,
        error_status: config.fault_error_status,
    };
    let faults = Faults::new(settings).map_err(anyhow::Error::msg)?;
    tracing::warn!(?settings, "fault injection is on");
    Ok(Some(faults))
}

/// The service's metrics: every route, its build, `/metrics` answered by
/// the layer itself when `serve_publicly`, and the fault admin route when
/// it is on the public port.
fn describe_metrics(serve_publicly: bool, public_admin: bool) -> anyhow::Result<HttpMetrics> {
    let build = BuildInfo {
        version: BUILD_INFO.version.to_owned(),
        revision: BUILD_INFO.revision.to_owned(),
        rustc: BUILD_INFO.rustc.to_owned(),
    };
    let mut builder = HttpMetrics::builder()
        .namespace(METRICS_NAMESPACE)
        .build_info(build);
    for (template, expected) in routes::route_series() {
        builder = builder.route(*template, expected.iter().cloned());
    }
    if serve_publicly {
        builder = builder.serve_at(METRICS_PATH);
    }
    if public_admin {
        builder = builder.route(faults::ADMIN_PATH, [(Method::GET, 200), (Method::PUT, 200)]);
    }
    builder.build().context("failed to describe the metrics")
}

/// Completes once draining has begun; never, if it cannot begin any more.
async fn drained(mut draining: watch::Receiver<bool>) {
    if draining.wait_for(|draining| *draining).await.is_err() {
        std::future::pending::<()>().await;
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
