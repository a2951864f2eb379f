//! Log output: where lines go, in which format, and which are kept.
//!
//! Lines go to standard output, as a container runtime expects. Request
//! spans (opened by the HTTP layer) carry the request id, so every line
//! logged while a request is handled names it.

use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, fmt, layer::SubscriberExt, util::SubscriberInitExt};

use crate::config::LogFormat;

/// Installs the global subscriber.
///
/// # Errors
///
/// Fails when the filter does not parse or a subscriber is already
/// installed.
pub fn init(format: LogFormat, filter: &str) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(filter)?;
    let terminal = std::io::stdout().is_terminal();
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !terminal,
    };

    let registry = tracing_subscriber::registry().with(filter);
    if json {
        let layer = fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false);
        registry.with(layer).try_init()?;
    } else {
        // Colours only where a person reads them, not in a file or a pipe.
        registry.with(fmt::layer().with_ansi(terminal)).try_init()?;
    }
    Ok(())
}
