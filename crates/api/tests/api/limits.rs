//! What one client may hold: the header-read timeout for slow and idle
//! connections, the write timeout for clients that stop reading, the size
//! of a request head, the number of connections, and the number of
//! requests in flight.

use std::time::{Duration, Instant};

use reqwest::{StatusCode, header};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
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

const WRITE_TIMEOUT: Duration = Duration::from_millis(300);

/// Answers a client that stops reading may leave unread: far more bytes
/// than the socket buffers of a loopback connection hold.
const UNREAD_BYTES: usize = 32 * 1024 * 1024;

/// A connection whose client reads at most a few kilobytes at a time.
async fn connect_with_small_buffer(app: &TestApp) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .set_recv_buffer_size(4096)
        .expect("receive buffer size");
    socket.connect(app.address).await.expect("connect")
}

/// Sends `count` scrapes on `stream` at once, without reading.
async fn pipeline_scrapes(stream: &mut TcpStream, count: usize) {
    let requests = "GET /metrics HTTP/1.1\r\nhost: test\r\n\r\n".repeat(count);
    stream
        .write_all(requests.as_bytes())
        .await
        .expect("write requests");
}

/// How many bytes a scrape's answer takes, head included, on a connection
/// kept alive.
async fn scrape_size(app: &TestApp) -> usize {
    let mut stream = TcpStream::connect(app.address).await.expect("connect");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .expect("write");
    read_response(&mut stream).await.len()
}

#[tokio::test]
async fn a_client_that_stops_reading_its_answers_is_cut_off() {
    let app = TestApp::spawn_with(|config| config.write_timeout = WRITE_TIMEOUT).await;
    let scrapes = UNREAD_BYTES / scrape_size(&app).await;
    let mut stream = connect_with_small_buffer(&app).await;

    pipeline_scrapes(&mut stream, scrapes).await;
    tokio::time::sleep(WRITE_TIMEOUT * 4).await;
    let mut received = 0;
    let mut buffer = vec![0; 64 * 1024];
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => received += read,
            }
        }
    })
    .await;

    assert!(
        ended.is_ok(),
        "the connection was still open after {received} bytes"
    );
    assert!(
        received < UNREAD_BYTES / 2,
        "{received} bytes arrived: the answers were not held back"
    );
    assert_eq!(app.get("/health").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_slow_client_that_keeps_reading_gets_every_answer() {
    let app = TestApp::spawn_with(|config| config.write_timeout = WRITE_TIMEOUT).await;
    let size = scrape_size(&app).await;
    let scrapes = 8;
    let mut stream = connect_with_small_buffer(&app).await;

    // Reading a few kilobytes every 25 ms takes well over the write timeout
    // in all, but no write waits that long.
    pipeline_scrapes(&mut stream, scrapes).await;
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = vec![0; 16 * 1024];
    while received.len() < scrapes * size {
        tokio::time::sleep(Duration::from_millis(25)).await;
        let read = stream.read(&mut buffer).await.expect("read");
        assert_ne!(read, 0, "closed after {} bytes", received.len());
        received.extend_from_slice(&buffer[..read]);
    }

    assert!(started.elapsed() > WRITE_TIMEOUT, "{:?}", started.elapsed());
    let answers = String::from_utf8_lossy(&received)
        .matches("HTTP/1.1 200 OK")
        .count();
    assert_eq!(answers, scrapes);
}
