//! Start, stop and restart: what survives, what finishes, what stays
//! bounded.

use api::{
    extract::BodyLimit,
    routes,
    state::{AppState, Readiness},
    storage::SqliteStore,
};
use axum::{body::Body, http::Request};
use reqwest::StatusCode;
use tokio::{io::AsyncWriteExt, net::TcpStream};
use tower::ServiceExt;

use crate::helpers::{TestApp, read_response, wait_for_continue, wait_until_refusing_connections};

#[tokio::test]
async fn data_is_kept_across_a_restart_on_the_same_file() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let database = folder.path().join("api.db");
    let app = TestApp::spawn_on(&database).await;
    let ada = app.created_user("Ada", "ada@example.com").await;
    let grace = app.created_user("Grace", "grace@example.com").await;
    app.delete_user(&ada["id"]).await;
    app.stop().await;

    let restarted = TestApp::spawn_on(&database).await;

    assert_eq!(restarted.all_users().await, [grace]);
    let next = restarted.created_user("Ada", "ada@example.com").await;
    assert!(
        next["id"].as_i64() > ada["id"].as_i64(),
        "ids are not reused after a restart"
    );
}

#[tokio::test]
async fn a_clean_stop_folds_the_wal_into_the_database_file() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let database = folder.path().join("api.db");
    let app = TestApp::spawn_on(&database).await;
    app.created_user("Ada", "ada@example.com").await;
    assert!(
        database.with_file_name("api.db-wal").exists(),
        "writes go to the WAL first"
    );

    app.stop().await;

    assert!(
        !database.with_file_name("api.db-wal").exists(),
        "the WAL is removed on close"
    );
    let reopened = TestApp::spawn_on(&database).await;
    assert_eq!(reopened.all_users().await.len(), 1);
}

#[tokio::test]
async fn graceful_shutdown_lets_an_in_flight_request_finish() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let database = folder.path().join("api.db");
    let mut app = TestApp::spawn_on(&database).await;
    let body = r#"{"name":"Late","email":"late@example.com"}"#;
    let head = format!(
        "POST /v1/users HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nexpect: 100-continue\r\n\r\n",
        body.len()
    );
    let mut in_flight = TcpStream::connect(app.address).await.expect("connect");
    in_flight
        .write_all(head.as_bytes())
        .await
        .expect("write head");
    wait_for_continue(&mut in_flight).await;

    app.begin_shutdown();
    wait_until_refusing_connections(app.address).await;
    in_flight
        .write_all(body.as_bytes())
        .await
        .expect("write the body");
    let response = read_response(&mut in_flight).await;
    app.stop().await;

    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    let users = TestApp::spawn_on(&database).await.all_users().await;
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["email"], "late@example.com");
}

#[tokio::test]
async fn ready_answers_503_once_the_server_is_draining() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let store = SqliteStore::open(&folder.path().join("api.db"), 1).expect("store opens");
    let readiness = Readiness::default();
    let state = AppState {
        store,
        readiness: readiness.clone(),
        body_limit: BodyLimit(65_536),
    };
    let router = routes::router(state, None, None);
    let ready = || Request::get("/ready").body(Body::empty()).expect("request");

    let before = router.clone().oneshot(ready()).await.expect("answer");
    readiness.start_draining();
    let after = router.oneshot(ready()).await.expect("answer");

    assert_eq!(before.status(), StatusCode::OK);
    assert_eq!(after.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(after.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn the_wal_stays_bounded_under_sustained_writes() {
    // Without checkpoints every commit appends at least two 4 KiB pages, so
    // 4,000 creates would leave a WAL of 32 MiB or more.
    const WRITERS: usize = 8;
    const CREATES_PER_WRITER: usize = 500;
    const WAL_BOUND_BYTES: u64 = 12 * 1024 * 1024;
    let app = TestApp::spawn().await;
    let wal = app.database.with_file_name("api.db-wal");

    let writers = (0..WRITERS).map(|writer| {
        let client = app.client.clone();
        let url = app.url("/v1/users");
        let wal = wal.clone();
        tokio::spawn(async move {
            let mut largest = 0;
            for n in 0..CREATES_PER_WRITER {
                let email = format!("writer{writer}.n{n}@example.com");
                let body = serde_json::json!({ "name": "Writer", "email": email });
                let status = client
                    .post(&url)
                    .json(&body)
                    .send()
                    .await
                    .expect("sent")
                    .status();
                assert_eq!(status, StatusCode::CREATED);
                largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
            }
            largest
        })
    });
    let mut largest_wal = 0;
    for writer in writers {
        largest_wal = largest_wal.max(writer.await.expect("writer task"));
    }

    assert!(largest_wal > 0, "the WAL was observed");
    assert!(
        largest_wal <= WAL_BOUND_BYTES,
        "the WAL reached {largest_wal} bytes"
    );
    assert_eq!(app.all_users().await.len(), WRITERS * CREATES_PER_WRITER);
}
