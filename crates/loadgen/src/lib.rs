//! A traffic generator for the users API: a realistic mix of requests, sent
//! in closed or open loop, summarised by route, status and latency.
//!
//! The binary `loadgen` is a thin shell over [`run`]; tests call the same
//! function against a server on a free port. The modules, in the order a
//! run goes through them:
//!
//! - [`config`]: flags and environment variables, parsed and checked;
//! - [`client`]: the start-up probe and one keep-alive connection per
//!   worker;
//! - [`runner`]: the workers, the schedule, and when the run stops;
//! - [`scenario`]: the mix of operations and the requests that carry them;
//! - [`progress`]: the bar on stderr while the run lasts;
//! - [`stats`]: the measurements and the summary.

pub mod client;
pub mod config;
pub mod progress;
pub mod runner;
pub mod scenario;
pub mod stats;

use std::process::ExitCode;

pub use crate::{client::Unreachable, config::Config, stats::Summary};

/// The exit code of a run that went as asked.
pub const EXIT_SUCCESS: u8 = 0;

/// The exit code of a run that fell short: transport errors, or an open
/// loop below 95% of its rate.
pub const EXIT_SHORTFALL: u8 = 1;

/// The exit code when the target cannot be reached at start. (Bad
/// arguments exit 2, clap's code.)
pub const EXIT_UNREACHABLE: u8 = 3;

/// Probes the target, runs the load described by `config`, and summarises.
///
/// # Errors
///
/// Fails, before any load is sent, when the target's `/health` cannot be
/// reached or does not answer 200.
pub async fn run(config: &Config) -> Result<Summary, Unreachable> {
    let address = client::probe(&config.target, config.timeout).await?;

    let measured = runner::drive(config, address).await;

    Ok(Summary::new(
        config,
        &measured.recorder,
        measured.elapsed,
        measured.interrupted,
    ))
}

/// The process's exit code for a run's result.
pub fn exit_code(result: &Result<Summary, Unreachable>) -> ExitCode {
    match result {
        Ok(summary) if summary.succeeded() => ExitCode::from(EXIT_SUCCESS),
        Ok(_) => ExitCode::from(EXIT_SHORTFALL),
        Err(_) => ExitCode::from(EXIT_UNREACHABLE),
    }
}
