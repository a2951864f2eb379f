//! Fault injection: added latency and a share of 500 or 503 answers on the
//! `/v1` routes, so that error and latency panels and alerts can be made to
//! move on purpose.
//!
//! Off by default; when off, none of this is installed. When on, the
//! settings live in atomics that the `/admin/faults` endpoint changes at run
//! time. That endpoint is served on the metrics listener when there is one,
//! otherwise on the public port to loopback clients only. Injected answers
//! are ordinary problem documents and are counted like any other.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU16, AtomicU32, AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    Json, Router,
    extract::{ConnectInfo, FromRef, Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
use serde::{Deserialize, Serialize};

use crate::{
    error::{ApiError, InvalidField},
    extract::{BodyLimit, JsonBody},
};

/// The path of the admin endpoint.
pub const ADMIN_PATH: &str = "/admin/faults";

/// The largest body the admin endpoint accepts: its three settings fit in
/// far less.
const ADMIN_BODY_LIMIT: BodyLimit = BodyLimit(1024);

impl FromRef<Arc<Faults>> for BodyLimit {
    fn from_ref(_: &Arc<Faults>) -> Self {
        ADMIN_BODY_LIMIT
    }
}

/// Parts per million, the resolution of the error ratio.
const PPM: u32 = 1_000_000;

/// The statuses an injected error may have.
const ERROR_STATUSES: [u16; 2] = [500, 503];

/// Fault settings shared by the injecting middleware and the admin endpoint.
#[derive(Debug)]
pub struct Faults {
    latency_micros: AtomicU64,
    error_ppm: AtomicU32,
    error_status: AtomicU16,
}

/// The settings as the admin endpoint shows and takes them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSettings {
    /// Added to every `/v1` request, in milliseconds.
    pub latency_ms: u64,
    /// Share of `/v1` requests answered with `error_status`, from 0 to 1.
    pub error_ratio: f64,
    /// 500 or 503.
    pub error_status: u16,
}

/// A change to the settings: the fields given replace the current ones.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultChange {
    latency_ms: Option<u64>,
    error_ratio: Option<f64>,
    error_status: Option<u16>,
}

impl Faults {
    /// Faults with these settings.
    ///
    /// # Errors
    ///
    /// Fails when the ratio is outside 0..=1 or the status is not 500 or
    /// 503; the message says which.
    pub fn new(settings: FaultSettings) -> Result<Arc<Self>, String> {
        let faults = Arc::new(Self {
            latency_micros: AtomicU64::new(0),
            error_ppm: AtomicU32::new(0),
            error_status: AtomicU16::new(500),
        });
        faults.apply(settings).map_err(|invalid| {
            format!(
                "{} {}",
                invalid.pointer.trim_start_matches("#/"),
                invalid.detail
            )
        })?;
        Ok(faults)
    }

    /// The current settings.
    pub fn settings(&self) -> FaultSettings {
        FaultSettings {
            latency_ms: self.latency_micros.load(Ordering::Relaxed) / 1_000,
            error_ratio: f64::from(self.error_ppm.load(Ordering::Relaxed)) / f64::from(PPM),
            error_status: self.error_status.load(Ordering::Relaxed),
        }
    }

    fn apply(&self, settings: FaultSettings) -> Result<(), InvalidField> {
        if !(0.0..=1.0).contains(&settings.error_ratio) {
            return Err(InvalidField::new(
                "error_ratio",
                "must be a number from 0 to 1",
            ));
        }
        if !ERROR_STATUSES.contains(&settings.error_status) {
            return Err(InvalidField::new("error_status", "must be 500 or 503"));
        }
        let micros = settings.latency_ms.saturating_mul(1_000);
        self.latency_micros.store(micros, Ordering::Relaxed);
        self.error_ppm.store(
            (settings.error_ratio * f64::from(PPM)).round() as u32,
            Ordering::Relaxed,
        );
        self.error_status
            .store(settings.error_status, Ordering::Relaxed);
        Ok(())
    }
}

/// Middleware for the `/v1` routes: waits the configured latency, then
/// answers an injected error with the configured probability, or passes the
/// request on.
pub async fn inject(State(faults): State<Arc<Faults>>, request: Request, next: Next) -> Response {
    let latency = faults.latency_micros.load(Ordering::Relaxed);
    if latency > 0 {
        tokio::time::sleep(Duration::from_micros(latency)).await;
    }

    let error_ppm = faults.error_ppm.load(Ordering::Relaxed);
    if error_ppm > 0 && fastrand::u32(0..PPM) < error_ppm {
        let status = faults.error_status.load(Ordering::Relaxed);
        return ApiError::InjectedFault(status).into_response();
    }
    next.run(request).await
}

/// Where the admin endpoint may be reached from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminAccess {
    /// From anywhere that reaches its listener (the metrics listener).
    Listener,
    /// From loopback addresses only (the public listener).
    LoopbackOnly,
}

/// The admin endpoint: `GET` shows the settings, `PUT` changes them.
pub fn admin_router(faults: Arc<Faults>, access: AdminAccess) -> Router {
    Router::new()
        .route(ADMIN_PATH, get(show_faults).put(change_faults))
        .layer(axum::middleware::from_fn_with_state(access, guard_admin))
        .with_state(faults)
}

/// Answers 404, as if there were no such route, to clients the endpoint is
/// not for.
async fn guard_admin(State(access): State<AdminAccess>, request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let allowed = match access {
        AdminAccess::Listener => true,
        AdminAccess::LoopbackOnly => peer.is_some_and(|ip| ip.is_loopback()),
    };
    if allowed {
        next.run(request).await
    } else {
        ApiError::RouteNotFound.into_response()
    }
}

async fn show_faults(State(faults): State<Arc<Faults>>) -> Json<FaultSettings> {
    Json(faults.settings())
}

async fn change_faults(
    State(faults): State<Arc<Faults>>,
    JsonBody(change): JsonBody<FaultChange>,
) -> Result<Json<FaultSettings>, ApiError> {
    let current = faults.settings();
    let wanted = FaultSettings {
        latency_ms: change.latency_ms.unwrap_or(current.latency_ms),
        error_ratio: change.error_ratio.unwrap_or(current.error_ratio),
        error_status: change.error_status.unwrap_or(current.error_status),
    };

    faults
        .apply(wanted)
        .map_err(|invalid| ApiError::Validation(vec![invalid]))?;

    tracing::info!(?wanted, "fault injection changed");
    Ok(Json(faults.settings()))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use tower::ServiceExt;

    use super::*;

    fn settings(latency_ms: u64, error_ratio: f64, error_status: u16) -> FaultSettings {
        FaultSettings {
            latency_ms,
            error_ratio,
            error_status,
        }
    }

    #[test]
    fn settings_round_trip_through_the_atomics() {
        let faults = Faults::new(settings(300, 0.25, 503)).expect("valid");

        assert_eq!(faults.settings(), settings(300, 0.25, 503));
    }

    #[test]
    fn out_of_range_settings_are_refused() {
        for (bad, why) in [
            (settings(0, 1.5, 500), "error_ratio"),
            (settings(0, -0.1, 500), "error_ratio"),
            (settings(0, f64::NAN, 500), "error_ratio"),
            (settings(0, 0.5, 404), "error_status"),
        ] {
            assert!(
                Faults::new(bad).is_err_and(|error| error.contains("must")),
                "{why}"
            );
        }
    }

    /// A request as the public listener hands it over, from `peer`.
    fn from_peer(peer: &str) -> Request {
        let mut request = Request::get(ADMIN_PATH)
            .body(Body::empty())
            .expect("request");
        let address: SocketAddr = peer.parse().expect("socket address");
        request.extensions_mut().insert(ConnectInfo(address));
        request
    }

    #[tokio::test]
    async fn on_the_public_port_only_loopback_clients_reach_the_endpoint() {
        let faults = Faults::new(settings(0, 0.0, 500)).expect("valid");
        let router = admin_router(faults, AdminAccess::LoopbackOnly);

        for (peer, expected) in [
            ("127.0.0.1:40000", 200),
            ("[::1]:40000", 200),
            ("192.0.2.7:40000", 404),
            ("[2001:db8::7]:40000", 404),
        ] {
            let response = router
                .clone()
                .oneshot(from_peer(peer))
                .await
                .expect("infallible");
            assert_eq!(response.status().as_u16(), expected, "{peer}");
        }
    }
}
