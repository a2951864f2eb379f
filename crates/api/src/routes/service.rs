//! Routes about the service itself rather than its data.

use axum::{
    Json, Router,
    extract::State,
    http::{Method, header},
    response::IntoResponse,
    routing::get,
};

use super::RouteSeries;
use crate::{
    build_info::{BUILD_INFO, BuildInfo},
    error::ApiError,
    state::AppState,
    storage::UserStore,
};

/// The greeting on `/`, built at compile time so the route allocates nothing.
const GREETING: &str = concat!(
    "Hello from ",
    env!("CARGO_PKG_NAME"),
    " ",
    env!("CARGO_PKG_VERSION"),
    "! <3\n"
);

const ROOT: &str = "/";
const HEALTH: &str = "/health";
const READY: &str = "/ready";
const VERSION: &str = "/version";

/// The probes orchestrators call, which must answer even under overload.
pub(super) const PROBE_PATHS: [&str; 2] = [HEALTH, READY];

/// The routes below with the status each answers on success.
pub(super) const ROUTE_SERIES: [RouteSeries; 4] = [
    (ROOT, &[(Method::GET, 200)]),
    (HEALTH, &[(Method::GET, 200)]),
    (READY, &[(Method::GET, 200)]),
    (VERSION, &[(Method::GET, 200)]),
];

pub(super) fn router<S: UserStore>() -> Router<AppState<S>> {
    Router::new()
        .route(ROOT, get(greet))
        .route(HEALTH, get(health))
        .route(READY, get(ready::<S>))
        .route(VERSION, get(version))
}

async fn greet() -> &'static str {
    GREETING
}

/// Liveness: the process answers, whatever the state of its dependencies.
async fn health() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
}

/// Readiness: the server takes new work and the database answers.
async fn ready<S: UserStore>(
    State(state): State<AppState<S>>,
) -> Result<impl IntoResponse, ApiError> {
    if state.readiness.is_draining() {
        return Err(ApiError::Unavailable("the server is shutting down"));
    }
    if let Err(error) = state.store.ping().await {
        tracing::warn!(error = format!("{error:#}"), "database does not answer");
        return Err(ApiError::Unavailable("the database does not answer"));
    }
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ready"}"#,
    ))
}

async fn version() -> Json<BuildInfo> {
    Json(BUILD_INFO)
}
