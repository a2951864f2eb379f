//! What one client may hold: the header-read timeout for slow and idle
//! connections, the size of a request head, the number of connections,
//! and the number of requests in flight.

use std::time::{Duration, Instant};

use reqwest::{StatusCode, header};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::{TestApp, assert_problem, read_response};

const HEADER_READ_TIMEOUT: Duration = Duration::from_millis(300);

/// Whether the server has closed `stream`: a read returns end of file or a
/// reset within `wait`, with no bytes of an answer before it.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buffer = [0; 1024];
    match tokio::time::timeout(wait, stream.read(&mut buffer)).await {
        Ok(Ok(0) | Err(_)) => true,
        Ok(Ok(read)) => panic!(
            "expected no answer, got {:?}",
            String::from_utf8_lossy(&buffer[..read])
        ),
        Err(_still_open) => false,
    }
}

#[tokio::test]
async fn a_client_sending_its_headers_a_byte_at_a_time_is_cut_off() {
    let app = TestApp::spawn_with(|config| config.header_read_timeout = HEADER_READ_TIMEOUT).await;
    let mut stream = TcpStream::connect(app.address).await.expect("connect");
    let head = b"GET /v1/users HTTP/1.1\r\nhost: test\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";

    // At a byte every 50 ms the head would take over 3 s to arrive.
    let started = Instant::now();
    let mut cut_off = false;
    for byte in head {
        if stream.write_all(&[*byte]).await.is_err() {
            cut_off = true;
            break;
        }
        if closed_within(&mut stream, Duration::from_millis(50)).await {
            cut_off = true;
            break;
        }
    }

    assert!(cut_off, "the whole head was accepted at a byte every 50 ms");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "cut off after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    let app = TestApp::spawn_with(|config| config.header_read_timeout = HEADER_READ_TIMEOUT).await;
    let mut stream = TcpStream::connect(app.address).await.expect("connect");
    stream
        .write_all(b"GET /health HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .expect("write");
    let answer = read_response(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let closed = closed_within(&mut stream, Duration::from_secs(3)).await;

    assert!(closed, "the idle connection was still open after 3 s");
}

#[tokio::test]
async fn a_request_head_over_the_limit_is_answered_431() {
    let app = TestApp::spawn_with(|config| config.max_header_size = 2048).await;
    let request = |filler: usize| {
        format!(
            "GET /health HTTP/1.1\r\nhost: test\r\nx-filler: {}\r\nconnection: close\r\n\r\n",
            "f".repeat(filler)
        )
    };

    let small = crate::helpers::raw_exchange(&app, request(1500).as_bytes()).await;
    let large = crate::helpers::raw_exchange(&app, request(4000).as_bytes()).await;

    assert!(small.starts_with("HTTP/1.1 200"), "{small}");
    assert!(large.starts_with("HTTP/1.1 431"), "{large}");
}

#[tokio::test]
async fn connections_past_the_cap_wait_until_one_closes() {
    let app = TestApp::spawn_with(|config| config.max_connections = 2).await;
    let request = b"GET /health HTTP/1.1\r\nhost: test\r\n\r\n";
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(app.address).await.expect("connect");
        stream.write_all(request).await.expect("write");
        let answer = read_response(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        open.push(stream);
    }

    // The kernel completes the handshake, but the server does not take
    // the connection while two are open.
    let mut third = TcpStream::connect(app.address).await.expect("connect");
    third.write_all(request).await.expect("write");
    let mut buffer = [0; 64];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buffer)).await;
    assert!(
        early.is_err(),
        "a third connection was served while two were open"
    );

    drop(open.pop());
    let answer = read_response(&mut third).await;

    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn requests_past_the_in_flight_limit_are_refused_at_once_with_503() {
    // Injected latency keeps the first two requests in flight.
    let app = TestApp::spawn_with(|config| {
        config.max_in_flight = 2;
        config.fault_injection = true;
        config.fault_latency = Duration::from_millis(800);
    })
    .await;
    let slow = || app.client.get(app.url("/v1/users")).send();
    let (first, second) = (tokio::spawn(slow()), tokio::spawn(slow()));
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started = Instant::now();
    let refused = app.get("/v1/users").await;
    let refused_after = started.elapsed();
    let retry_after = refused.headers().get(header::RETRY_AFTER).cloned();
    assert_problem(refused, StatusCode::SERVICE_UNAVAILABLE, "overloaded").await;
    let probe = app.get("/health").await;

    assert!(
        refused_after < Duration::from_millis(400),
        "refused only after {refused_after:?}, as if it had queued"
    );
    assert_eq!(
        retry_after.as_ref().map(|value| value.as_bytes()),
        Some(&b"1"[..])
    );
    assert_eq!(probe.status(), StatusCode::OK, "probes are never refused");
    for admitted in [first, second] {
        let response = admitted.await.expect("task").expect("answered");
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(
        app.get("/v1/users").await.status(),
        StatusCode::OK,
        "capacity came back"
    );
}
