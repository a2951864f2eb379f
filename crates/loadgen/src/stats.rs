//! What a run measured, and the summary printed at its end.
//!
//! Each worker records into a [`Recorder`] of its own, so that recording
//! takes no lock; the runner merges them once the workers are done. The
//! [`Summary`] is the one description of a run: it prints as text for
//! people and serializes as JSON for scripts, and it says whether the run
//! went as asked.

use std::{collections::HashMap, fmt, time::Duration};

use hdrhistogram::Histogram;
use http::Method;
use serde::Serialize;

use crate::{
    client::TransportError,
    config::{Config, RunLength},
    scenario::Route,
};

/// The share of the requested rate an open-loop run must achieve.
pub const MIN_RATE_SHARE: f64 = 0.95;

/// Significant decimal digits the latency histogram keeps: three gives a
/// resolution of 0.1% at any magnitude.
const HISTOGRAM_PRECISION: u8 = 3;

/// The longest latency the histogram tells apart, in microseconds (an
/// hour); longer ones are recorded as this.
const MAX_LATENCY_MICROS: u64 = 3_600_000_000;

/// One worker's measurements.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// Latency of answered requests, in microseconds.
    latencies: Histogram<u64>,
    /// Answers by method, route and status.
    answers: HashMap<(Method, Route, u16), u64>,
    /// Requests without an answer, by kind.
    transport_errors: HashMap<TransportError, u64>,
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self {
            latencies: Histogram::new_with_bounds(1, MAX_LATENCY_MICROS, HISTOGRAM_PRECISION)
                .unwrap_or_else(|_| unreachable!("the bounds and precision are valid")),
            answers: HashMap::new(),
            transport_errors: HashMap::new(),
        }
    }

    /// Records an answer and its latency.
    pub fn answer(&mut self, method: &Method, route: Route, status: u16, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latencies.saturating_record(micros.max(1));

        let key = (method.clone(), route, status);
        *self.answers.entry(key).or_default() += 1;
    }

    /// Records a request that got no answer.
    pub fn transport_error(&mut self, error: TransportError) {
        *self.transport_errors.entry(error).or_default() += 1;
    }

    /// Adds another worker's measurements to these.
    pub fn merge(&mut self, other: &Self) {
        // Adding fails only for values out of range, and both histograms
        // have the same range.
        let _ = self.latencies.add(&other.latencies);
        for (key, count) in &other.answers {
            *self.answers.entry(key.clone()).or_default() += count;
        }
        for (error, count) in &other.transport_errors {
            *self.transport_errors.entry(*error).or_default() += count;
        }
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

/// How the run was driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Each connection sends its next request when the last is answered.
    Closed,
    /// Requests are sent on a fixed schedule.
    Open,
}

/// The answers of one method, route and status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnswerCount {
    /// The HTTP method.
    pub method: String,
    /// The route template, or `unmatched`.
    pub route: Route,
    /// The status code.
    pub status: u16,
    /// How many answers.
    pub count: u64,
}

/// Latency percentiles of the answered requests, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

/// Requests without an answer, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TransportErrors {
    /// All kinds together.
    pub total: u64,
    /// No connection could be opened.
    pub connect: u64,
    /// No answer within the timeout.
    pub timeout: u64,
    /// The connection broke.
    pub io: u64,
}

/// Everything a run measured, and whether it went as asked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The base URL the run was sent to.
    pub target: String,
    /// Closed or open loop.
    pub mode: Mode,
    /// Connections (workers) used.
    pub connections: u32,
    /// The requested rate per second, in open loop.
    pub requested_rate: Option<u32>,
    /// From the first request to the last answer, in seconds.
    pub elapsed_seconds: f64,
    /// Requests sent, answered or not.
    pub requests: u64,
    /// Requests per second achieved.
    pub rate: f64,
    /// Answers by method, route and status, in that order.
    pub answers: Vec<AnswerCount>,
    /// Latency of the answered requests; from the scheduled send time in
    /// open loop.
    pub latency_ms: Latency,
    /// Requests that got no answer.
    pub transport_errors: TransportErrors,
    /// Whether the run was stopped by Ctrl-C.
    pub interrupted: bool,
    /// Why the run fell short of what was asked; empty when it did not.
    pub shortfalls: Vec<String>,
}

impl Summary {
    /// Describes a run of `config` that measured `recorder` over `elapsed`.
    pub fn new(config: &Config, recorder: &Recorder, elapsed: Duration, interrupted: bool) -> Self {
        let transport_errors = transport_errors(recorder);
        let answered: u64 = recorder.answers.values().sum();
        let requests = answered + transport_errors.total;
        let seconds = elapsed.as_secs_f64();
        let rate = if seconds > 0.0 {
            requests as f64 / seconds
        } else {
            0.0
        };

        let mut summary = Self {
            target: config.target.to_string(),
            mode: if config.rate.is_some() {
                Mode::Open
            } else {
                Mode::Closed
            },
            connections: config.connections.get(),
            requested_rate: config.rate.map(|rate| rate.get()),
            elapsed_seconds: seconds,
            requests,
            rate,
            answers: answer_counts(recorder),
            latency_ms: latency(&recorder.latencies),
            transport_errors,
            interrupted,
            shortfalls: Vec::new(),
        };
        summary.shortfalls = shortfalls(&summary, config.length());
        summary
    }

    /// Whether the run went as asked.
    pub fn succeeded(&self) -> bool {
        self.shortfalls.is_empty()
    }
}

fn transport_errors(recorder: &Recorder) -> TransportErrors {
    let count = |kind| recorder.transport_errors.get(&kind).copied().unwrap_or(0);
    let (connect, timeout, io) = (
        count(TransportError::Connect),
        count(TransportError::Timeout),
        count(TransportError::Io),
    );
    TransportErrors {
        total: connect + timeout + io,
        connect,
        timeout,
        io,
    }
}

fn answer_counts(recorder: &Recorder) -> Vec<AnswerCount> {
    let mut counts: Vec<AnswerCount> = recorder
        .answers
        .iter()
        .map(|((method, route, status), count)| AnswerCount {
            method: method.to_string(),
            route: *route,
            status: *status,
            count: *count,
        })
        .collect();
    counts.sort_by(|a, b| (a.route, &a.method, a.status).cmp(&(b.route, &b.method, b.status)));
    counts
}

fn latency(histogram: &Histogram<u64>) -> Latency {
    let millis = |micros: u64| micros as f64 / 1000.0;
    Latency {
        p50: millis(histogram.value_at_quantile(0.50)),
        p90: millis(histogram.value_at_quantile(0.90)),
        p99: millis(histogram.value_at_quantile(0.99)),
        max: millis(histogram.max()),
        mean: histogram.mean() / 1000.0,
    }
}

/// The reasons, in sentences, why a run did not go as asked.
fn shortfalls(summary: &Summary, length: RunLength) -> Vec<String> {
    let mut reasons = Vec::new();
    if summary.interrupted {
        reasons.push("the run was interrupted".to_owned());
    }

    let errors = summary.transport_errors.total;
    if errors > 0 {
        reasons.push(format!(
            "{errors} of {} requests got no answer",
            summary.requests
        ));
    }

    // Only a run that had its whole time is held to the rate: one that
    // stopped at a number of requests ends on the last answer's latency.
    let timed = matches!(length, RunLength::Duration(_));
    if let (Some(requested), true) = (summary.requested_rate, timed) {
        let wanted = f64::from(requested) * MIN_RATE_SHARE;
        if summary.rate < wanted {
            reasons.push(format!(
                "achieved {:.1} requests/s, below 95% of the requested {requested}/s",
                summary.rate
            ));
        }
    }
    reasons
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.requested_rate {
            Some(rate) => format!("open loop at {rate}/s"),
            None => "closed loop".to_owned(),
        };
        writeln!(
            f,
            "{} requests to {} in {:.2} s ({mode}, {} connections)",
            self.requests, self.target, self.elapsed_seconds, self.connections
        )?;
        writeln!(f, "rate       {:.1} requests/s", self.rate)?;

        let l = &self.latency_ms;
        writeln!(
            f,
            "latency    p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            l.p50, l.p90, l.p99, l.max
        )?;

        let e = &self.transport_errors;
        writeln!(
            f,
            "no answer  {} (connect {}, timeout {}, io {})",
            e.total, e.connect, e.timeout, e.io
        )?;

        writeln!(
            f,
            "\n{:<16} {:<7} {:>6} {:>10}",
            "route", "method", "status", "count"
        )?;
        for answer in &self.answers {
            writeln!(
                f,
                "{:<16} {:<7} {:>6} {:>10}",
                answer.route.template(),
                answer.method,
                answer.status,
                answer.count
            )?;
        }

        if !self.shortfalls.is_empty() {
            writeln!(f, "\nfell short: {}", self.shortfalls.join("; "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    fn config(arguments: &[&str]) -> Config {
        let all = ["loadgen"].iter().chain(arguments);
        Config::try_parse_from(all).expect("valid arguments")
    }

    #[test]
    fn merged_recorders_add_their_counts() {
        let mut first = Recorder::new();
        let mut second = Recorder::new();
        let latency = Duration::from_millis(2);
        first.answer(&Method::GET, Route::User, 200, latency);
        second.answer(&Method::GET, Route::User, 200, latency);
        second.transport_error(TransportError::Timeout);

        first.merge(&second);
        let summary = Summary::new(&config(&[]), &first, Duration::from_secs(1), false);

        assert_eq!(summary.requests, 3);
        assert_eq!(summary.answers[0].count, 2);
        assert_eq!(summary.transport_errors.timeout, 1);
        assert_eq!(summary.latency_ms.max, 2.0);
    }

    #[test]
    fn an_open_loop_below_95_percent_of_its_rate_falls_short() {
        let mut recorder = Recorder::new();
        for _ in 0..90 {
            recorder.answer(&Method::GET, Route::Users, 200, Duration::from_millis(1));
        }

        let summary = Summary::new(
            &config(&["--rate", "100", "--duration", "1s"]),
            &recorder,
            Duration::from_secs(1),
            false,
        );

        assert!(!summary.succeeded());
        assert!(
            summary.shortfalls[0].contains("below 95%"),
            "{:?}",
            summary.shortfalls
        );
    }

    #[test]
    fn a_closed_loop_without_transport_errors_succeeds() {
        let mut recorder = Recorder::new();
        recorder.answer(&Method::POST, Route::Users, 422, Duration::from_millis(1));

        let summary = Summary::new(&config(&[]), &recorder, Duration::from_secs(1), false);

        assert!(summary.succeeded(), "{:?}", summary.shortfalls);
    }
}
