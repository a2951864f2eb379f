//! Command line and environment configuration.
//!
//! Every option is declared once here, with its flag, its environment
//! variable and its default, so that `api --help` is the complete reference.
//! Values are checked while they are parsed: a bad one stops the process
//! before anything starts, with a message naming the flag and, as its
//! placeholder, the variable (`--port <PORT>`).

use std::{fmt, net::IpAddr, path::PathBuf, str::FromStr, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum, builder::TypedValueParser as _};

/// The `api` command line.
#[derive(Debug, Parser)]
#[command(
    name = "api",
    version,
    about = "A users API on SQLite, instrumented for Prometheus and Grafana.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to run; `serve` when omitted.
    #[command(subcommand)]
    command: Option<Command>,

    /// The options of `serve`, also accepted without the subcommand.
    #[command(flatten)]
    serve: ServeConfig,
}

impl Cli {
    /// The command to run, with `serve` standing in for none.
    pub fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Serve(self.serve))
    }
}

/// The commands of the `api` binary.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default command).
    Serve(ServeConfig),

    /// Exit 0 if the service's /health answers 200 within the timeout.
    ///
    /// Container health checks run this, because the runtime image has no
    /// curl or shell.
    Healthcheck(HealthcheckConfig),
}

/// Everything the server needs to start.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// TCP port to listen on.
    #[arg(long, env = "PORT", default_value_t = 8000)]
    pub port: u16,

    /// Serve /metrics on this port (same address) instead of the public
    /// one, where it then answers 404.
    #[arg(long, env = "METRICS_PORT")]
    pub metrics_port: Option<u16>,

    /// Address to listen on; 0.0.0.0 listens on every IPv4 interface.
    #[arg(long, env = "BIND_ADDRESS", default_value = "0.0.0.0")]
    pub bind_address: IpAddr,

    /// Where the data lives: `sqlite://PATH` (a relative PATH starts from
    /// the working directory; missing folders and file are created).
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://data/api.db")]
    pub database_url: DatabaseUrl,

    /// Log line format: `text` for people, `json` for collectors, `auto`
    /// for text on a terminal and JSON lines otherwise.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,

    /// Which log lines to keep, as a tracing filter (`info`,
    /// `info,api::http=debug`, ...).
    #[arg(long, env = "RUST_LOG", default_value = "info", value_parser = parse_log_filter)]
    pub log_filter: String,

    /// Longest time a request may take before it is answered 503 and its
    /// work dropped (`10s`, `500ms`, ...).
    #[arg(
        long,
        env = "REQUEST_TIMEOUT",
        default_value = "10s",
        value_parser = parse_positive_duration
    )]
    pub request_timeout: Duration,

    /// Largest request body accepted (`64KiB`, `1MB`, or bytes); larger
    /// bodies are answered 413.
    #[arg(long, env = "BODY_LIMIT", default_value = "64KiB", value_parser = parse_body_limit)]
    pub body_limit: usize,

    /// Most requests handled at once; beyond it requests are answered 503
    /// with Retry-After at once rather than queued. Health, readiness and
    /// metrics requests are never refused.
    #[arg(
        long,
        env = "MAX_IN_FLIGHT",
        default_value_t = 512,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub max_in_flight: u32,

    /// Most connections open at once; further clients wait in the
    /// listen queue until one closes.
    #[arg(
        long,
        env = "MAX_CONNECTIONS",
        default_value_t = 1024,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub max_connections: u32,

    /// Longest a client may take to send a request's headers, counted from
    /// the connection's start or the end of the previous response; so also
    /// how long an idle keep-alive connection stays open.
    #[arg(
        long,
        env = "HEADER_READ_TIMEOUT",
        default_value = "10s",
        value_parser = parse_positive_duration
    )]
    pub header_read_timeout: Duration,

    /// Longest a response may wait for the client to read it before the
    /// connection is closed; a slow client that keeps reading is not cut
    /// off.
    #[arg(
        long,
        env = "WRITE_TIMEOUT",
        default_value = "10s",
        value_parser = parse_positive_duration
    )]
    pub write_timeout: Duration,

    /// Largest request head (request line and headers) accepted; a larger
    /// one is answered 431.
    #[arg(long, env = "MAX_HEADER_SIZE", default_value = "16KiB", value_parser = parse_header_size)]
    pub max_header_size: usize,

    /// After SIGTERM or SIGINT, how long /ready answers 503 while the
    /// service still accepts connections, so that a load balancer stops
    /// sending traffic before the listener closes.
    #[arg(
        long,
        env = "SHUTDOWN_DELAY",
        default_value = "1s",
        value_parser = parse_duration
    )]
    pub shutdown_delay: Duration,

    /// How long requests in flight may run on after the listener closes,
    /// before the process exits anyway.
    #[arg(
        long,
        env = "SHUTDOWN_GRACE_PERIOD",
        default_value = "20s",
        value_parser = parse_duration
    )]
    pub shutdown_grace_period: Duration,

    /// Enable fault injection on /v1 requests, and the /admin/faults
    /// endpoint that changes it at run time (served on METRICS_PORT, or to
    /// loopback clients on the public port).
    #[arg(long, env = "FAULT_INJECTION")]
    pub fault_injection: bool,

    /// With fault injection (ignored without): latency added to every /v1 request (`300ms`).
    #[arg(
        long,
        env = "FAULT_LATENCY",
        default_value = "0s",
        value_parser = parse_duration
    )]
    pub fault_latency: Duration,

    /// With fault injection (ignored without): share of /v1 requests answered with an error,
    /// from 0 to 1.
    #[arg(
        long,
        env = "FAULT_ERROR_RATIO",
        default_value_t = 0.0,
        value_parser = parse_ratio
    )]
    pub fault_error_ratio: f64,

    /// With fault injection (ignored without): the status of injected errors, 500 or 503.
    #[arg(
        long,
        env = "FAULT_ERROR_STATUS",
        default_value_t = 500,
        value_parser = clap::builder::PossibleValuesParser::new(["500", "503"])
            .map(|status| status.parse::<u16>().unwrap_or(500))
    )]
    pub fault_error_status: u16,
}

impl ServeConfig {
    /// A server for embedding in tests and tools: a free port on loopback,
    /// logging off, the database at `database`, no shutdown delay, and every
    /// other setting at its command-line default. Not read from the environment, so the
    /// caller's variables cannot change it.
    pub fn ephemeral(database: &std::path::Path) -> Self {
        Self {
            port: 0,
            metrics_port: None,
            bind_address: std::net::Ipv4Addr::LOCALHOST.into(),
            database_url: DatabaseUrl::Sqlite(database.to_owned()),
            log_format: LogFormat::Text,
            log_filter: "off".to_owned(),
            request_timeout: Duration::from_secs(10),
            body_limit: 64 * 1024,
            max_in_flight: 512,
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            max_header_size: 16 * 1024,
            shutdown_delay: Duration::ZERO,
            shutdown_grace_period: Duration::from_secs(20),
            fault_injection: false,
            fault_latency: Duration::ZERO,
            fault_error_ratio: 0.0,
            fault_error_status: 500,
        }
    }
}

/// Options of `api healthcheck`.
#[derive(Debug, Clone, Args)]
pub struct HealthcheckConfig {
    /// URL to probe; defaults to the local service's /health on PORT.
    #[arg(long, env = "HEALTHCHECK_URL")]
    pub url: Option<String>,

    /// Port of the local service, used when no URL is given.
    #[arg(long, env = "PORT", default_value_t = 8000)]
    pub port: u16,

    /// How long to wait for the answer.
    #[arg(long, default_value = "2s", value_parser = parse_positive_duration)]
    pub timeout: Duration,
}

impl HealthcheckConfig {
    /// The URL to probe.
    pub fn url(&self) -> String {
        match &self.url {
            Some(url) => url.clone(),
            None => format!("http://127.0.0.1:{}/health", self.port),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Text on a terminal, JSON lines otherwise.
    Auto,
    /// One JSON object a line.
    Json,
    /// Human-readable text.
    Text,
}

/// A validated `DATABASE_URL`.
///
/// Only SQLite is built in; the scheme is kept explicit so that another
/// store can be added without changing how the location is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A SQLite database file.
    Sqlite(PathBuf),
}

impl FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let Some((scheme, rest)) = url.split_once(':') else {
            return Err("expected sqlite://PATH".to_owned());
        };
        if scheme != "sqlite" {
            return Err(format!(
                "unsupported scheme `{scheme}`: only sqlite://PATH is built in"
            ));
        }

        // `sqlite://data/api.db` and `sqlite:data/api.db` name the same
        // relative file; `sqlite:///var/lib/api.db` is absolute.
        let path = rest.strip_prefix("//").unwrap_or(rest);
        if path.is_empty() {
            return Err("the sqlite URL names no file".to_owned());
        }
        if path.contains('?') {
            return Err("query parameters are not supported in the sqlite URL".to_owned());
        }
        if path == ":memory:" {
            return Err("an in-memory database would lose every write; name a file".to_owned());
        }
        Ok(Self::Sqlite(PathBuf::from(path)))
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
        }
    }
}

fn parse_log_filter(filter: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(filter)
        .map(|_| filter.to_owned())
        .map_err(|error| error.to_string())
}

fn parse_duration(value: &str) -> Result<Duration, String> {
    humantime::parse_duration(value).map_err(|error| format!("{error} (try `10s` or `500ms`)"))
}

fn parse_positive_duration(value: &str) -> Result<Duration, String> {
    let duration = parse_duration(value)?;
    if duration.is_zero() {
        return Err("must be longer than zero".to_owned());
    }
    Ok(duration)
}

fn parse_ratio(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
        _ => Err("must be a number from 0 to 1".to_owned()),
    }
}

/// Body limits below this would refuse even a small valid user.
const MIN_BODY_LIMIT: usize = 256;

/// Head limits below this would refuse ordinary browser requests.
const MIN_HEADER_SIZE: usize = 1024;

fn parse_body_limit(value: &str) -> Result<usize, String> {
    parse_size_at_least(value, MIN_BODY_LIMIT)
}

fn parse_header_size(value: &str) -> Result<usize, String> {
    parse_size_at_least(value, MIN_HEADER_SIZE)
}

fn parse_size_at_least(value: &str, minimum: usize) -> Result<usize, String> {
    let size: bytesize::ByteSize = value.parse()?;
    let bytes = usize::try_from(size.as_u64()).map_err(|_| "too large".to_owned())?;
    if bytes < minimum {
        return Err(format!("must be at least {minimum} bytes"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_name_relative_and_absolute_files() {
        let cases = [
            ("sqlite://data/api.db", "data/api.db"),
            ("sqlite:data/api.db", "data/api.db"),
            ("sqlite:///var/lib/api/api.db", "/var/lib/api/api.db"),
        ];
        for (url, path) in cases {
            assert_eq!(
                url.parse::<DatabaseUrl>(),
                Ok(DatabaseUrl::Sqlite(PathBuf::from(path))),
                "{url}"
            );
        }
    }

    #[test]
    fn database_urls_other_than_sqlite_files_are_refused() {
        for url in [
            "postgres://localhost/api",
            "sqlite://",
            "sqlite::memory:",
            "data.db",
        ] {
            assert!(url.parse::<DatabaseUrl>().is_err(), "{url} was accepted");
        }
    }

    #[test]
    fn body_limits_accept_units_and_refuse_tiny_values() {
        assert_eq!(parse_body_limit("64KiB"), Ok(65_536));
        assert_eq!(parse_body_limit("1000"), Ok(1000));
        assert!(parse_body_limit("10").is_err());
        assert!(parse_body_limit("lots").is_err());
    }

    #[test]
    fn zero_timeouts_are_refused() {
        assert!(parse_positive_duration("0s").is_err());
        assert_eq!(
            parse_positive_duration("250ms"),
            Ok(Duration::from_millis(250))
        );
    }

    #[test]
    fn no_arguments_means_serve_with_defaults() {
        let cli = Cli::try_parse_from(["api"]).expect("defaults parse");

        let Command::Serve(config) = cli.into_command() else {
            panic!("expected the serve command");
        };

        assert_eq!(config.port, 8000);
        assert_eq!(config.body_limit, 65_536);
        assert_eq!(config.request_timeout, Duration::from_secs(10));
        assert_eq!(config.shutdown_grace_period, Duration::from_secs(20));
    }

    #[test]
    fn the_ephemeral_configuration_matches_the_command_line_defaults() {
        let ephemeral = ServeConfig::ephemeral(std::path::Path::new("data/api.db"));
        let parsed = Cli::try_parse_from(["api", "--port", "0", "--bind-address", "127.0.0.1"])
            .expect("defaults parse");
        let Command::Serve(defaults) = parsed.into_command() else {
            panic!("expected the serve command");
        };

        assert_eq!(ephemeral.request_timeout, defaults.request_timeout);
        assert_eq!(ephemeral.body_limit, defaults.body_limit);
        assert_eq!(
            ephemeral.shutdown_grace_period,
            defaults.shutdown_grace_period
        );
        assert_eq!(ephemeral.database_url, defaults.database_url);
        assert_eq!(
            (ephemeral.port, ephemeral.bind_address),
            (0, defaults.bind_address)
        );
    }

    #[test]
    fn the_command_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
