//! The service's /metrics as Prometheus would scrape it: what traffic does to
//! it, what it must not do, and whether promtool finds fault with it.

use std::{collections::BTreeSet, io::Write, process::Stdio};

use reqwest::{Method, StatusCode, header};
use serde_json::json;

use crate::{
    helpers::{TestApp, assert_problem},
    tools::find_tool,
};

/// The value of the sample line `series` (labels included), if present.
fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().expect("numeric sample"))
    })
}

/// The set of series in an exposition, without values.
fn series(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' ').map(|(series, _)| series.to_owned()))
        .collect()
}

fn guide_counter(path: &str, status: u16) -> String {
    let family = if status < 400 {
        "api_http_request_total"
    } else {
        "api_http_request_error_total"
    };
    format!(r#"{family}{{path="{path}",status="{status}"}}"#)
}

#[tokio::test]
async fn the_exposition_is_served_as_text_with_its_exact_content_type() {
    let app = TestApp::spawn().await;

    let response = app.get("/metrics").await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = response.text().await.expect("text");
    for family in [
        "api_http_request_total",
        "api_http_request_error_total",
        "http_server_request_duration_seconds",
        "http_server_active_requests",
        "api_build_info",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
        "process_threads",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} is missing"
        );
    }
}

#[tokio::test]
async fn build_info_names_this_build() {
    let app = TestApp::spawn().await;
    let version: serde_json::Value = app.get("/version").await.json().await.expect("JSON");

    let text = app.scrape().await;

    let expected = format!(
        r#"api_build_info{{version="{}",revision="{}",rustc="{}"}}"#,
        version["version"].as_str().expect("version"),
        version["revision"].as_str().expect("revision"),
        version["rustc"].as_str().expect("rustc"),
    );
    assert_eq!(sample(&text, &expected), Some(1.0));
}

#[tokio::test]
async fn every_route_has_series_at_zero_from_start_up() {
    let app = TestApp::spawn().await;

    let text = app.scrape().await;

    for (path, status) in [
        ("/", 200),
        ("/health", 200),
        ("/ready", 200),
        ("/version", 200),
        ("/v1/users", 200),
        ("/v1/users", 201),
        ("/v1/users/{id}", 200),
        ("/v1/users/{id}", 204),
        ("unmatched", 404),
    ] {
        assert_eq!(
            sample(&text, &guide_counter(path, status)),
            Some(0.0),
            "{path} {status}"
        );
    }
}

#[tokio::test]
async fn requests_are_counted_by_route_template_and_status() {
    let app = TestApp::spawn().await;
    let user = app.created_user("Ada", "ada@example.com").await;
    app.get_user(&user["id"]).await;
    app.get_user(&user["id"]).await;
    app.get_user(&json!(999)).await;
    app.patch_user(&user["id"], &json!({ "name": "" })).await;
    app.create_user("Ada again", "ADA@example.com").await;

    let text = app.scrape().await;

    let expected = [
        ("/v1/users", 201, 1.0),
        ("/v1/users", 409, 1.0),
        ("/v1/users/{id}", 200, 2.0),
        ("/v1/users/{id}", 404, 1.0),
        ("/v1/users/{id}", 422, 1.0),
    ];
    for (path, status, count) in expected {
        assert_eq!(
            sample(&text, &guide_counter(path, status)),
            Some(count),
            "{path} {status}"
        );
    }
    let histogram_count = concat!(
        "http_server_request_duration_seconds_count{http_request_method=\"GET\",",
        "http_route=\"/v1/users/{id}\",http_response_status_code=\"200\"}"
    );
    assert_eq!(sample(&text, histogram_count), Some(2.0));
    assert!(
        !text.contains("/v1/users/1\""),
        "a raw path leaked into a label"
    );
}

#[tokio::test]
async fn every_route_the_router_serves_is_known_to_the_metrics() {
    let app = TestApp::spawn().await;
    let user = app.created_user("Ada", "ada@example.com").await;
    let id = user["id"].to_string();

    for path in [
        "/",
        "/health",
        "/ready",
        "/version",
        "/v1/users",
        &format!("/v1/users/{id}"),
    ] {
        assert_eq!(app.get(path).await.status(), StatusCode::OK, "{path}");
    }
    app.patch_user(&user["id"], &json!({ "name": "Ada King" }))
        .await;
    app.delete_user(&user["id"]).await;

    let text = app.scrape().await;
    assert_eq!(
        sample(&text, &guide_counter("unmatched", 404)),
        Some(0.0),
        "a route fell through"
    );
    assert_eq!(
        sample(&text, &guide_counter("/v1/users/{id}", 204)),
        Some(1.0)
    );
}

#[tokio::test]
async fn scrapes_are_not_counted() {
    let app = TestApp::spawn().await;

    for _ in 0..3 {
        app.scrape().await;
    }

    let text = app.scrape().await;
    assert!(!text.contains(r#"path="/metrics""#));
    assert_eq!(sample(&text, &guide_counter("unmatched", 404)), Some(0.0));
    assert_eq!(sample(&text, "http_server_active_requests"), Some(0.0));
}

#[tokio::test]
async fn a_request_that_times_out_is_counted_as_503() {
    let app = TestApp::spawn_with(|config| {
        config.request_timeout = std::time::Duration::from_millis(200)
    })
    .await;

    // Announces a body it never sends, so the handler waits past the limit.
    let response = app
        .client
        .post(app.url("/v1/users"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(reqwest::Body::wrap_stream(futures_never_ending()))
        .send()
        .await
        .expect("answered");

    assert_problem(response, StatusCode::SERVICE_UNAVAILABLE, "request_timeout").await;
    let text = app.scrape().await;
    assert_eq!(sample(&text, &guide_counter("/v1/users", 503)), Some(1.0));
}

/// A request body stream that yields nothing, ever.
fn futures_never_ending() -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::pending()
}

#[tokio::test]
async fn a_flood_of_random_paths_and_methods_adds_no_series() {
    const REQUESTS: usize = 20_000;
    const TASKS: usize = 8;
    let app = TestApp::spawn().await;
    let before = series(&app.scrape().await);

    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let client = app.client.clone();
            let base = app.url("");
            tokio::spawn(async move {
                let methods = ["GET", "POST", "PROPFIND", "BREW", "DELETE", "X-SCANNER"];
                for n in (task..REQUESTS).step_by(TASKS) {
                    let method =
                        Method::from_bytes(methods[n % methods.len()].as_bytes()).expect("token");
                    let url = format!("{base}/scan/{n:x}/{}.php?id={n}", n * 7919);
                    let status = client
                        .request(method, url)
                        .send()
                        .await
                        .expect("answered")
                        .status();
                    assert_eq!(status, StatusCode::NOT_FOUND);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("flood task");
    }

    let after = app.scrape().await;
    assert_eq!(
        series(&after),
        before,
        "the flood changed the set of series"
    );
    assert_eq!(
        sample(&after, &guide_counter("unmatched", 404)),
        Some(REQUESTS as f64)
    );
}

#[tokio::test]
async fn a_metrics_port_moves_the_exposition_off_the_public_port() {
    let app = TestApp::spawn_with(|config| config.metrics_port = Some(0)).await;
    let metrics_address = app.metrics_address.expect("a metrics listener");

    let public = app.get("/metrics").await;
    let private = app
        .client
        .get(format!("http://{metrics_address}/metrics"))
        .send()
        .await;

    assert_problem(public, StatusCode::NOT_FOUND, "route_not_found").await;
    let private = private.expect("answered");
    assert_eq!(private.status(), StatusCode::OK);
    let text = private.text().await.expect("text");
    assert_eq!(
        sample(&text, &guide_counter("unmatched", 404)),
        Some(1.0),
        "the public miss"
    );
}

#[tokio::test]
async fn promtool_finds_nothing_to_fault_in_the_exposition() {
    let test = "promtool_finds_nothing_to_fault_in_the_exposition";
    let Some(promtool) = find_tool("promtool", test) else {
        return;
    };
    let app = TestApp::spawn().await;
    let user = app.created_user("Ada", "ada@example.com").await;
    app.get_user(&user["id"]).await;
    app.get("/nowhere").await;
    app.send_raw(Method::from_bytes(b"BREW").expect("token"), "/", None, "")
        .await;
    let exposition = app.scrape().await;

    let mut check = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    check
        .stdin
        .take()
        .expect("stdin")
        .write_all(exposition.as_bytes())
        .expect("write");
    let output = check.wait_with_output().expect("promtool finishes");

    let findings = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && findings.trim().is_empty(),
        "promtool: {findings}"
    );
}
