//! What this binary is and what it was built from.

use serde::Serialize;

/// Identity of the running build, as served on `/version`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct BuildInfo {
    /// Package name.
    pub name: &'static str,
    /// Package version.
    pub version: &'static str,
    /// Short git commit hash, or `unknown` when built outside a checkout.
    pub revision: &'static str,
    /// Cargo profile: `debug` or `release`.
    pub profile: &'static str,
    /// Version of the compiler that built it.
    pub rustc: &'static str,
}

/// The build of this binary.
pub const BUILD_INFO: BuildInfo = BuildInfo {
    name: env!("CARGO_PKG_NAME"),
    version: env!("CARGO_PKG_VERSION"),
    revision: env!("API_GIT_REVISION"),
    profile: env!("API_BUILD_PROFILE"),
    rustc: env!("API_RUSTC_VERSION"),
};
