//! What every handler can reach: the store, whether the server is
//! draining, and the body limit.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use axum::extract::FromRef;

use crate::extract::BodyLimit;

/// The state handed to handlers; cheap to clone.
#[derive(Clone)]
pub struct AppState<S> {
    /// Where users are kept.
    pub store: S,
    /// Whether the server still takes new work.
    pub readiness: Readiness,
    /// The largest request body the routes accept.
    pub body_limit: BodyLimit,
}

impl<S> FromRef<AppState<S>> for BodyLimit {
    fn from_ref(state: &AppState<S>) -> Self {
        state.body_limit
    }
}

/// A flag that turns `/ready` to 503 once shutdown has begun, so that load
/// balancers stop sending traffic while requests in flight finish.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    draining: Arc<AtomicBool>,
}

impl Readiness {
    /// Marks the server as shutting down; there is no way back.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Whether shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}
