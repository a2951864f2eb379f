//! Command line and environment configuration.
//!
//! Every option is declared once here, with its flag, its environment
//! variable and its default, so that `loadgen --help` is the complete
//! reference. Values are checked while they are parsed, so a bad one stops
//! the process with clap's usage error (exit code 2) before any request is
//! sent. What the options mean for a run is left to [`crate::runner`].

use std::{fmt, num::NonZeroU32, str::FromStr, time::Duration};

use clap::{ArgGroup, Parser};
use http::uri::{Authority, Uri};

use crate::scenario::Mix;

/// How long a run lasts when neither `--duration` nor `--requests` is given.
const DEFAULT_DURATION: Duration = Duration::from_secs(10);

/// The `loadgen` command line.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "loadgen",
    version,
    about = "Sends a realistic mix of requests to the users API and reports what came back.",
    long_about = "Sends a realistic mix of requests to the users API and reports what came \
                  back.\n\nClosed loop (the default): --connections workers send as fast as \
                  the service answers. Open loop (--rate N): requests are scheduled at fixed \
                  intervals and latency is measured from the scheduled time, so a slow \
                  service cannot hide its latency by slowing the sender down.\n\nExit codes: \
                  0 the run went as asked; 1 it ran but fell short (transport errors, or \
                  below 95% of --rate); 2 bad arguments; 3 the target was unreachable.",
    group(ArgGroup::new("length").args(["duration", "requests"]))
)]
pub struct Config {
    /// Base URL of the service (http only); its /health is probed first.
    #[arg(long, env = "LOADGEN_TARGET", default_value = "http://127.0.0.1:8000")]
    pub target: Target,

    /// Relative weights of the operations, as name=weight pairs; an
    /// operation left out gets no requests. Names: list, get, create,
    /// update, delete, bad (malformed or invalid input, unknown ids and
    /// paths).
    #[arg(
        long,
        env = "LOADGEN_MIX",
        default_value = "list=30,get=35,create=15,update=10,delete=5,bad=5"
    )]
    pub mix: Mix,

    /// Open loop: send this many requests per second, on a fixed schedule.
    /// Without it, the run is a closed loop as fast as the service answers.
    #[arg(long, env = "LOADGEN_RATE")]
    pub rate: Option<NonZeroU32>,

    /// Keep-alive connections, one worker each. In open loop they share
    /// the schedule, so they bound how many requests can be in flight.
    #[arg(long, env = "LOADGEN_CONNECTIONS", default_value = "8")]
    pub connections: NonZeroU32,

    /// How long to send (`30s`, `2m`, ...); 10s when --requests is not
    /// given either.
    #[arg(long, env = "LOADGEN_DURATION", value_parser = parse_positive_duration)]
    pub duration: Option<Duration>,

    /// Send exactly this many requests, then stop.
    #[arg(long, env = "LOADGEN_REQUESTS")]
    pub requests: Option<NonZeroU32>,

    /// Longest wait for one answer; a request that takes longer counts as a
    /// transport error and its connection is replaced.
    #[arg(
        long,
        env = "LOADGEN_TIMEOUT",
        default_value = "10s",
        value_parser = parse_positive_duration
    )]
    pub timeout: Duration,

    /// Print the summary as one JSON object on stdout instead of text.
    #[arg(long, env = "LOADGEN_JSON")]
    pub json: bool,

    /// Runtime threads that drive the connections; one is enough for tens
    /// of thousands of requests per second and leaves the other cores to
    /// the service.
    #[arg(long, env = "LOADGEN_THREADS", default_value = "1")]
    pub threads: NonZeroU32,

    /// Seed of the random choices, to repeat a run's sequence of
    /// operations; random when not given.
    #[arg(long, env = "LOADGEN_SEED")]
    pub seed: Option<u64>,
}

impl Config {
    /// When the run ends: after a time or after a number of requests.
    pub fn length(&self) -> RunLength {
        match (self.requests, self.duration) {
            (Some(requests), _) => RunLength::Requests(u64::from(requests.get())),
            (None, Some(duration)) => RunLength::Duration(duration),
            (None, None) => RunLength::Duration(DEFAULT_DURATION),
        }
    }
}

/// When a run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunLength {
    /// After this long; requests in flight then are still awaited.
    Duration(Duration),
    /// After exactly this many requests have been sent and answered (or
    /// have failed).
    Requests(u64),
}

/// A validated `--target`: an `http://host[:port]` base URL.
///
/// Only plain HTTP is supported: the generator measures the service, and a
/// TLS handshake per connection would be measured with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    authority: Authority,
}

impl Target {
    /// The host as written, without brackets around an IPv6 address.
    pub fn host(&self) -> &str {
        self.authority.host().trim_matches(['[', ']'])
    }

    /// The port, 80 when the URL names none.
    pub fn port(&self) -> u16 {
        self.authority.port_u16().unwrap_or(80)
    }

    /// `host:port` as sent in the `Host` header.
    pub fn authority(&self) -> &str {
        self.authority.as_str()
    }
}

impl FromStr for Target {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let uri: Uri = raw
            .parse()
            .map_err(|error| format!("not a URL ({error}); try http://127.0.0.1:8000"))?;
        if uri.scheme_str() != Some("http") {
            return Err("only http:// URLs are supported".to_owned());
        }
        let Some(authority) = uri.authority().cloned() else {
            return Err("the URL names no host".to_owned());
        };
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err("give the service's base URL, without a path or query".to_owned());
        }
        Ok(Self { authority })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}", self.authority)
    }
}

fn parse_positive_duration(value: &str) -> Result<Duration, String> {
    let duration =
        humantime::parse_duration(value).map_err(|error| format!("{error} (try `30s`)"))?;
    if duration.is_zero() {
        return Err("must be longer than zero".to_owned());
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_definition_is_consistent() {
        use clap::CommandFactory;
        Config::command().debug_assert();
    }

    #[test]
    fn no_arguments_mean_a_ten_second_closed_loop_on_the_local_service() {
        let config = Config::try_parse_from(["loadgen"]).expect("defaults parse");

        assert_eq!(config.target.to_string(), "http://127.0.0.1:8000");
        assert_eq!(config.rate, None);
        assert_eq!(config.connections.get(), 8);
        assert_eq!(
            config.length(),
            RunLength::Duration(Duration::from_secs(10))
        );
    }

    #[test]
    fn duration_and_requests_exclude_each_other() {
        let both = ["loadgen", "--duration", "5s", "--requests", "10"];

        let result = Config::try_parse_from(both);

        assert!(result.is_err(), "both lengths were accepted");
    }

    #[test]
    fn targets_are_plain_http_base_urls() {
        let cases = [
            ("http://127.0.0.1:8000", true),
            ("http://localhost:8000/", true),
            ("http://[::1]:9000", true),
            ("https://example.com", false),
            ("http://example.com/api", false),
            ("127.0.0.1:8000", false),
            ("not a url", false),
        ];
        for (raw, accepted) in cases {
            assert_eq!(raw.parse::<Target>().is_ok(), accepted, "{raw}");
        }
    }

    #[test]
    fn targets_default_to_port_80_and_unbracket_ipv6_hosts() {
        let plain: Target = "http://example.com".parse().expect("valid");
        let ipv6: Target = "http://[::1]:9000".parse().expect("valid");

        assert_eq!((plain.host(), plain.port()), ("example.com", 80));
        assert_eq!((ipv6.host(), ipv6.port()), ("::1", 9000));
    }
}
