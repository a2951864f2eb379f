//! The routes of the service, and the answers for requests that match none.
//!
//! - [`service`]: the greeting, liveness, readiness and version;
//! - [`users`]: the `/v1/users` resource.

mod service;
mod users;

use std::sync::Arc;

use axum::{Router, http::Method, middleware};

use crate::{
    error::ApiError,
    faults::{self, Faults},
    state::AppState,
    storage::UserStore,
};

/// A route template with the methods it serves and the status each answers
/// on success.
pub type RouteSeries = (&'static str, &'static [(Method, u16)]);

/// The health and readiness probes, which load shedding never refuses.
pub const PROBE_PATHS: [&str; 2] = service::PROBE_PATHS;

/// Every route of the service, for the metrics layer: it matches requests
/// against these templates (a route missing here would be counted as
/// unmatched) and creates their success series at zero.
pub fn route_series() -> impl Iterator<Item = &'static RouteSeries> {
    service::ROUTE_SERIES
        .iter()
        .chain(users::ROUTE_SERIES.iter())
}

/// Every route of the service, with its state, without middleware.
///
/// With `faults`, the `/v1` routes pass through fault injection. `extra`
/// routes (the fault admin endpoint) are merged before the fallbacks, so
/// they answer unknown methods and paths the same way.
pub fn router<S: UserStore>(
    state: AppState<S>,
    faults: Option<Arc<Faults>>,
    extra: Option<Router>,
) -> Router {
    let mut users = users::router();
    if let Some(faults) = faults {
        users = users.route_layer(middleware::from_fn_with_state(faults, faults::inject));
    }

    Router::new()
        .merge(service::router())
        .merge(users)
        .with_state(state)
        .merge(extra.unwrap_or_default())
        .fallback(route_not_found)
        // Applies to the routes registered above, so it comes last.
        .method_not_allowed_fallback(method_not_allowed)
}

/// The answer of every listener to a path it does not serve.
pub async fn route_not_found() -> ApiError {
    ApiError::RouteNotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
