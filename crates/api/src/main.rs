//! The `api` binary: parse the configuration, set up logging, then serve
//! until a signal arrives, or probe a running server's health.

use std::process::ExitCode;

use api::{
    config::{Cli, Command, HealthcheckConfig, ServeConfig},
    healthcheck,
    startup::{self, Server},
    telemetry,
};
use clap::{Parser, error::ErrorKind};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return configuration_error(&error),
    };

    match cli.into_command() {
        Command::Serve(config) => serve(config),
        Command::Healthcheck(config) => check_health(&config),
    }
}

/// Prints help and version as clap does, and any real error as one line.
fn configuration_error(error: &clap::Error) -> ExitCode {
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        let _ = error.print();
        return ExitCode::SUCCESS;
    }

    // clap's first line names the flag with the variable as its
    // placeholder (`--port <PORT>`); the rest only suggests --help.
    let rendered = error.render().to_string();
    eprintln!(
        "{}",
        rendered
            .lines()
            .next()
            .unwrap_or("error: invalid arguments")
    );
    ExitCode::from(2)
}

fn serve(config: ServeConfig) -> ExitCode {
    if let Err(error) = telemetry::init(config.log_format, &config.log_filter) {
        eprintln!("error: cannot set up logging: {error:#}");
        return ExitCode::FAILURE;
    }

    let result = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| {
            runtime.block_on(async {
                let server = Server::build(&config).await?;
                server.run_until(startup::shutdown_signal()).await
            })
        });

    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "api stopped on an error");
            ExitCode::FAILURE
        }
    }
}

fn check_health(config: &HealthcheckConfig) -> ExitCode {
    let url = config.url();
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(healthcheck::probe(&url, config.timeout)));

    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("unhealthy: {error:#}");
            ExitCode::FAILURE
        }
    }
}
