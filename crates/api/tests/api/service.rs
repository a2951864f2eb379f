//! The routes about the service itself.

use api::http::MAX_REQUEST_ID_LEN;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestApp;

#[tokio::test]
async fn the_root_greets_with_the_service_name_and_version() {
    let app = TestApp::spawn().await;

    let response = app.get("/").await;

    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.expect("text");
    assert_eq!(
        text,
        format!("Hello from api {}! <3\n", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test]
async fn health_answers_ok() {
    let app = TestApp::spawn().await;

    let response = app.get("/health").await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.expect("JSON"),
        json!({ "status": "ok" })
    );
}

#[tokio::test]
async fn ready_answers_200_while_the_database_answers() {
    let app = TestApp::spawn().await;

    let response = app.get("/ready").await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.expect("JSON"),
        json!({ "status": "ready" })
    );
}

#[tokio::test]
async fn version_names_the_build() {
    let app = TestApp::spawn().await;

    let body: Value = app.get("/version").await.json().await.expect("JSON");

    assert_eq!(body["name"], "api");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["profile"], "debug");
    for field in ["revision", "rustc"] {
        assert!(
            body[field].as_str().is_some_and(|value| !value.is_empty()),
            "{field}: {body}"
        );
    }
}

#[tokio::test]
async fn every_answer_carries_a_generated_request_id() {
    let app = TestApp::spawn().await;

    let first = app.get("/").await.headers()["x-request-id"].clone();
    let second = app.get("/nowhere").await.headers()["x-request-id"].clone();

    assert_eq!(first.len(), 36, "a UUID: {first:?}");
    assert_ne!(first, second);
}

#[tokio::test]
async fn a_request_id_sent_by_the_client_is_echoed() {
    let app = TestApp::spawn().await;

    let response = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "trace-42")
        .send()
        .await;

    let response = response.expect("request sent");
    assert_eq!(response.headers()["x-request-id"], "trace-42");
}

#[tokio::test]
async fn a_client_request_id_too_long_or_not_plain_ascii_is_replaced() {
    let app = TestApp::spawn().await;
    let too_long = "r".repeat(MAX_REQUEST_ID_LEN + 1);

    for given in [too_long.as_str(), "two words"] {
        let response = app
            .client
            .get(app.url("/health"))
            .header("x-request-id", given)
            .send()
            .await
            .expect("request sent");

        let echoed = response.headers()["x-request-id"].to_str().expect("ASCII");
        assert_eq!(echoed.len(), 36, "{given:?} replaced by a UUID: {echoed}");
    }
}
