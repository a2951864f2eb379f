//! The `loadgen` binary: parse the configuration, build the runtime, run,
//! report. Everything else lives in the library.

use std::{io::Write as _, process::ExitCode};

use clap::Parser as _;
use loadgen::{Config, Summary};

fn main() -> ExitCode {
    let config = Config::parse();

    let runtime = match runtime(&config) {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(loadgen::run(&config));

    match &result {
        Ok(summary) => report(summary, config.json),
        Err(unreachable) => eprintln!("error: {unreachable}"),
    }
    loadgen::exit_code(&result)
}

/// A single-threaded runtime for one thread, a multi-threaded one for more.
fn runtime(config: &Config) -> std::io::Result<tokio::runtime::Runtime> {
    let threads = config.threads.get() as usize;
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads);
        builder
    };
    builder.enable_all().build()
}

/// Prints the summary on stdout and, when the run fell short, why on
/// stderr, where a script that only reads stdout still sees it.
fn report(summary: &Summary, json: bool) {
    let mut stdout = std::io::stdout().lock();
    let written = if json {
        serde_json::to_writer(&mut stdout, summary)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(stdout))
    } else {
        write!(stdout, "{summary}")
    };
    if let Err(error) = written {
        eprintln!("error: cannot print the summary: {error}");
    }

    if !summary.succeeded() {
        eprintln!("loadgen: fell short: {}", summary.shortfalls.join("; "));
    }
}
