//! The built binary: its exit codes, its messages and its JSON output.

use std::{net::Ipv4Addr, process::Output};

use serde_json::Value;
use tokio::process::Command;

use crate::helpers::Service;

/// Runs the binary with `arguments` and no inherited `LOADGEN_*` setting.
async fn loadgen(arguments: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_loadgen"));
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("LOADGEN_")) {
        command.env_remove(name);
    }
    command
        .args(arguments)
        .output()
        .await
        .expect("loadgen runs")
}

/// A loopback port that nothing listens on: bound, then released.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    listener.local_addr().expect("address").port()
}

#[tokio::test]
async fn an_unreachable_target_exits_3_with_a_one_line_message() {
    let target = format!("http://127.0.0.1:{}", closed_port().await);

    let output = loadgen(&["--target", &target, "--requests", "10"]).await;

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert_eq!(
        stderr,
        format!("error: cannot reach {target}: connection refused\n")
    );
    assert!(output.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_parses_and_has_the_documented_fields() {
    let service = Service::start().await;

    let output = loadgen(&["--target", &service.url(), "--requests", "50", "--json"]).await;

    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let summary: Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    for field in [
        "target",
        "mode",
        "connections",
        "requested_rate",
        "elapsed_seconds",
        "requests",
        "rate",
        "answers",
        "latency_ms",
        "transport_errors",
        "interrupted",
        "shortfalls",
    ] {
        assert!(summary.get(field).is_some(), "no {field} in {summary}");
    }
    assert_eq!(summary["requests"], 50);
    assert_eq!(summary["mode"], "closed");
    for percentile in ["p50", "p90", "p99", "max", "mean"] {
        assert!(
            summary["latency_ms"][percentile].is_f64(),
            "{percentile}: {summary}"
        );
    }
    let answer = &summary["answers"][0];
    for field in ["method", "route", "status", "count"] {
        assert!(answer.get(field).is_some(), "no {field} in {answer}");
    }
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_human_summary_lists_routes_and_latency_percentiles() {
    let service = Service::start().await;

    let output = loadgen(&["--target", &service.url(), "--requests", "50"]).await;

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(stdout.starts_with("50 requests to "), "{stdout}");
    assert!(stdout.contains("p99"), "{stdout}");
    assert!(stdout.contains("/v1/users/{id}"), "{stdout}");
    service.stop().await;
}

#[tokio::test]
async fn bad_arguments_exit_2() {
    let cases: [&[&str]; 4] = [
        &["--mix", "fetch=1"],
        &["--rate", "0"],
        &["--duration", "5s", "--requests", "5"],
        &["--target", "https://example.com"],
    ];
    for arguments in cases {
        let output = loadgen(arguments).await;

        assert_eq!(output.status.code(), Some(2), "{arguments:?}");
    }
}

#[tokio::test]
async fn the_help_names_every_environment_variable() {
    let output = loadgen(&["--help"]).await;

    let help = String::from_utf8_lossy(&output.stdout);
    for variable in [
        "LOADGEN_TARGET",
        "LOADGEN_MIX",
        "LOADGEN_RATE",
        "LOADGEN_CONNECTIONS",
        "LOADGEN_DURATION",
        "LOADGEN_REQUESTS",
        "LOADGEN_TIMEOUT",
        "LOADGEN_JSON",
        "LOADGEN_THREADS",
        "LOADGEN_SEED",
    ] {
        assert!(help.contains(variable), "{variable} missing from --help");
    }
}
