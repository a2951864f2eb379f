//! The routes of the service, and the answers for requests that match none.
//!
//! - [`service`]: the greeting, liveness, readiness and version;
//! - [`users`]: the `/v1/users` resource.

mod service;
mod users;

use axum::Router;

use crate::{error::ApiError, state::AppState, storage::UserStore};

/// Every route of the service, with its state, without middleware.
pub fn router<S: UserStore>(state: AppState<S>) -> Router {
    Router::new()
        .merge(service::router())
        .merge(users::router())
        .fallback(route_not_found)
        // Applies to the routes registered above, so it comes last.
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn route_not_found() -> ApiError {
    ApiError::RouteNotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
