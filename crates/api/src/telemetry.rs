//! Log output: where lines go, in which format, and which are kept.
//!
//! Lines go to standard output, as a container runtime expects. A failed
//! request's line names its request id; with debug lines on, so does every
//! line logged while a request is handled, through the request's span
//! (both written by the HTTP layer).

use std::io::IsTerminal;

use tracing::Subscriber;
use tracing_subscriber::{
    EnvFilter, fmt, fmt::MakeWriter, layer::SubscriberExt, util::SubscriberInitExt,
};

use crate::config::LogFormat;

/// Installs the global subscriber, writing to standard output.
///
/// # Errors
///
/// Fails when the filter does not parse or a subscriber is already
/// installed.
pub fn init(format: LogFormat, filter: &str) -> anyhow::Result<()> {
    subscriber(format, filter, std::io::stdout)?.try_init()?;
    Ok(())
}

/// The subscriber [`init`] installs, writing to `writer` instead; the
/// benchmarks measure requests under it.
///
/// # Errors
///
/// Fails when the filter does not parse.
pub fn subscriber<W>(
    format: LogFormat,
    filter: &str,
    writer: W,
) -> anyhow::Result<Box<dyn Subscriber + Send + Sync>>
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(filter)?;
    let terminal = std::io::stdout().is_terminal();
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !terminal,
    };

    let registry = tracing_subscriber::registry().with(filter);
    Ok(if json {
        let layer = fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(writer);
        Box::new(registry.with(layer))
    } else {
        // Colours only where a person reads them, not in a file or a pipe.
        Box::new(registry.with(fmt::layer().with_ansi(terminal).with_writer(writer)))
    })
}
