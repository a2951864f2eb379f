//! Fault injection: off unless asked for, and when on, errors and latency
//! on the `/v1` routes only, counted like any other answer, and changeable
//! at run time through the admin endpoint.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem};

/// A server with fault injection on, with these settings.
async fn with_faults(latency_ms: u64, error_ratio: f64, error_status: u16) -> TestApp {
    TestApp::spawn_with(|config| {
        config.fault_injection = true;
        config.fault_latency = Duration::from_millis(latency_ms);
        config.fault_error_ratio = error_ratio;
        config.fault_error_status = error_status;
    })
    .await
}

async fn put_faults(app: &TestApp, base: &str, change: &Value) -> reqwest::Response {
    app.client
        .put(format!("{base}/admin/faults"))
        .json(change)
        .send()
        .await
        .expect("answered")
}

#[tokio::test]
async fn without_fault_injection_there_is_no_admin_endpoint() {
    let app = TestApp::spawn().await;

    let response = app.get("/admin/faults").await;

    assert_problem(response, StatusCode::NOT_FOUND, "route_not_found").await;
}

#[tokio::test]
async fn injected_errors_are_problems_with_the_chosen_status_on_v1_only() {
    let app = with_faults(0, 1.0, 503).await;

    let injected = app.list_users("").await;
    let untouched = app.get("/health").await;

    assert_problem(injected, StatusCode::SERVICE_UNAVAILABLE, "injected_fault").await;
    assert_eq!(untouched.status(), StatusCode::OK);
}

#[tokio::test]
async fn injected_errors_are_counted_like_any_other_answer() {
    let app = with_faults(0, 1.0, 500).await;

    for _ in 0..3 {
        app.create_user("Ada", "ada@example.com").await;
    }

    let text = app.scrape().await;
    let line = r#"api_http_request_error_total{path="/v1/users",status="500"} 3"#;
    assert!(
        text.lines().any(|sample| sample == line),
        "{line} is missing"
    );
    let admin = app.url("/admin/faults");
    app.client
        .put(admin)
        .json(&json!({ "error_ratio": 0 }))
        .send()
        .await
        .expect("answered");
    assert!(
        app.all_users().await.is_empty(),
        "failed requests created nobody"
    );
}

#[tokio::test]
async fn injected_latency_delays_v1_requests_into_a_higher_bucket() {
    let app = with_faults(300, 0.0, 500).await;

    let started = Instant::now();
    let response = app.list_users("").await;
    let took = started.elapsed();

    assert_eq!(response.status(), StatusCode::OK);
    assert!(took >= Duration::from_millis(300), "took {took:?}");
    let text = app.scrape().await;
    let bucket = |le: &str| {
        format!(
            "http_server_request_duration_seconds_bucket{{http_request_method=\"GET\",\
             http_route=\"/v1/users\",http_response_status_code=\"200\",le=\"{le}\"}} "
        )
    };
    assert!(
        text.contains(&format!("{}0", bucket("0.25"))),
        "not at or under 0.25 s"
    );
    assert!(
        text.contains(&format!("{}1", bucket("0.5"))),
        "within 0.5 s"
    );
}

#[tokio::test]
async fn the_admin_endpoint_changes_faults_at_run_time_from_loopback() {
    let app = with_faults(0, 0.0, 500).await;
    let base = app.url("");

    let shown: Value = app.get("/admin/faults").await.json().await.expect("JSON");
    let changed = put_faults(
        &app,
        &base,
        &json!({ "error_ratio": 1.0, "error_status": 503 }),
    )
    .await;
    let faulted = app.list_users("").await.status();
    let restored = put_faults(&app, &base, &json!({ "error_ratio": 0 })).await;
    let healthy = app.list_users("").await.status();

    assert_eq!(
        shown,
        json!({ "latency_ms": 0, "error_ratio": 0.0, "error_status": 500 })
    );
    assert_eq!(changed.status(), StatusCode::OK);
    let changed: Value = changed.json().await.expect("JSON");
    assert_eq!(
        changed,
        json!({ "latency_ms": 0, "error_ratio": 1.0, "error_status": 503 })
    );
    assert_eq!(faulted, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(restored.status(), StatusCode::OK);
    assert_eq!(healthy, StatusCode::OK);
}

#[tokio::test]
async fn invalid_fault_settings_are_refused_with_422_and_change_nothing() {
    let app = with_faults(0, 0.0, 500).await;
    let base = app.url("");

    for change in [
        json!({ "error_ratio": 2 }),
        json!({ "error_status": 404 }),
        json!({ "latency_ms": -1 }),
        json!({ "jitter": 5 }),
    ] {
        let response = put_faults(&app, &base, &change).await;

        assert_problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
    }
    let shown: Value = app.get("/admin/faults").await.json().await.expect("JSON");
    assert_eq!(
        shown,
        json!({ "latency_ms": 0, "error_ratio": 0.0, "error_status": 500 })
    );
}

#[tokio::test]
async fn with_a_metrics_port_the_admin_endpoint_moves_there() {
    let app = TestApp::spawn_with(|config| {
        config.fault_injection = true;
        config.metrics_port = Some(0);
    })
    .await;
    let private = format!("http://{}", app.metrics_address.expect("metrics listener"));

    let public = app.get("/admin/faults").await;
    let moved = app
        .client
        .get(format!("{private}/admin/faults"))
        .send()
        .await
        .expect("answered");

    assert_problem(public, StatusCode::NOT_FOUND, "route_not_found").await;
    assert_eq!(moved.status(), StatusCode::OK);
}
