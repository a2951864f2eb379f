//! What every handler can reach: the store, and whether the server is
//! draining.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

/// The state handed to handlers; cheap to clone.
#[derive(Clone)]
pub struct AppState<S> {
    /// Where users are kept.
    pub store: S,
    /// Whether the server still takes new work.
    pub readiness: Readiness,
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
