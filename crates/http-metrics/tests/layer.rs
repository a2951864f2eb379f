//! The layer on a real axum router, driven in-process: what it records, what
//! it refuses to record, and how it answers scrapes.

use std::{collections::BTreeSet, io::Read, time::Duration};

use axum::{
    Router,
    body::{Body, to_bytes},
    http::{Method, Request, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use http_metrics::{BuildInfo, Format, HttpMetrics, OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE};
use tower::ServiceExt;

/// A small service: a fast route, a slow one, one that fails, one that
/// panics and one that outlasts the timeout.
fn app(metrics: &HttpMetrics) -> Router {
    Router::new()
        .route("/fast", get(|| async { "fast" }))
        .route(
            "/slow/{id}",
            get(slow).delete(|| async { StatusCode::NO_CONTENT }),
        )
        .route("/fail", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route("/panic", get(panics))
        .route("/stuck", get(stuck))
        .layer(middleware::from_fn(answer_503_after_a_second))
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .layer(metrics.layer())
}

fn metrics() -> HttpMetrics {
    HttpMetrics::builder()
        .namespace("shop")
        .route("/fast", [(Method::GET, 200)])
        .route("/slow/{id}", [(Method::GET, 200), (Method::DELETE, 204)])
        .route("/fail", [])
        .route("/panic", [])
        .route("/stuck", [])
        .buckets(&[0.01, 0.05, 0.1])
        .build_info(BuildInfo {
            version: "1.2.3".into(),
            revision: "abc123".into(),
            rustc: "1.95.0".into(),
        })
        .process_metrics(false)
        .serve_at("/metrics")
        .build()
        .expect("valid metrics")
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_millis(30)).await;
    "slow"
}

async fn panics() -> &'static str {
    panic!("deliberate panic in a test handler")
}

async fn stuck() -> &'static str {
    tokio::time::sleep(Duration::from_secs(60)).await;
    "too late"
}

async fn answer_503_after_a_second(request: Request<Body>, next: Next) -> Response {
    match tokio::time::timeout(Duration::from_secs(1), next.run(request)).await {
        Ok(response) => response,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

async fn send(app: &Router, method: Method, uri: &str) -> Response {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .expect("request");
    app.clone().oneshot(request).await.expect("infallible")
}

/// The exposition's sample lines, without values: the set of series.
fn series(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            line.rsplit_once(' ')
                .map_or(line, |(series, _)| series)
                .to_owned()
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_exposition_is_exact_after_a_known_sequence_of_requests() {
    let metrics = metrics();
    let app = app(&metrics);

    send(&app, Method::GET, "/fast").await;
    send(&app, Method::GET, "/slow/1").await;
    send(&app, Method::GET, "/slow/2").await;
    send(&app, Method::POST, "/fast").await;
    send(&app, Method::GET, "/fail").await;
    send(&app, Method::GET, "/nowhere").await;

    // The rows of the unmatched route stand in the fixture as {unmatched}.
    let expected = include_str!("fixtures/exposition-after-known-requests.txt");
    let expected = expected.replace("{unmatched}", &unmatched_rows(&[("GET", 1)]));
    assert_eq!(metrics.render(Format::Text), expected);
}

/// The labels of a duration histogram series.
fn histogram_labels(method: &str, route: &str, status: u16) -> String {
    let method = format!(r#"http_request_method="{method}""#);
    format!(r#"{method},http_route="{route}",http_response_status_code="{status}""#)
}

/// One `_sum` or `_count` line of the duration histogram.
fn histogram_line(suffix: &str, method: &str, route: &str, status: u16, value: &str) -> String {
    let labels = histogram_labels(method, route, status);
    format!("http_server_request_duration_seconds_{suffix}{{{labels}}} {value}")
}

/// The rows of the unmatched route, which exist at 404 for every method
/// from start-up: `counts` gives the requests of the methods that have
/// some, each of which took no time (the clock is paused).
fn unmatched_rows(counts: &[(&str, u64)]) -> String {
    let methods = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "_OTHER",
    ];
    let mut rows = String::new();
    for method in methods {
        let count = counts
            .iter()
            .find(|(counted, _)| *counted == method)
            .map_or(0, |(_, n)| *n);
        let labels = histogram_labels(method, "unmatched", 404);
        for le in ["0.01", "0.05", "0.1", "+Inf"] {
            rows.push_str(&format!(
                "http_server_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {count}\n"
            ));
        }
        rows.push_str(&format!(
            "http_server_request_duration_seconds_sum{{{labels}}} 0\n"
        ));
        rows.push_str(&format!(
            "http_server_request_duration_seconds_count{{{labels}}} {count}\n"
        ));
    }
    rows
}

#[tokio::test]
async fn declared_routes_have_series_at_zero_before_any_request() {
    let metrics = metrics();

    let text = metrics.render(Format::Text);

    for line in [
        r#"shop_http_request_total{path="/fast",status="200"} 0"#,
        r#"shop_http_request_total{path="/slow/{id}",status="204"} 0"#,
        &histogram_line("count", "GET", "/fast", 200, "0"),
    ] {
        assert!(text.lines().any(|sample| sample == line), "missing {line}");
    }
}

#[tokio::test]
async fn a_flood_of_random_paths_and_methods_adds_no_series() {
    let metrics = metrics();
    let app = app(&metrics);
    let before = series(&metrics.render(Format::Text));

    // A fixed-seed generator: the flood is the same on every run.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let methods = [
        &b"GET"[..],
        b"HEAD",
        b"PROPFIND",
        b"BREW",
        b"X-SCAN",
        b"DELETE",
        b"OPTIONS",
    ];
    for _ in 0..20_000 {
        let method = Method::from_bytes(methods[next() as usize % methods.len()]).expect("token");
        let path = format!("/{:x}/{:x}?q={:x}", next(), next(), next());
        send(&app, method, &path).await;
    }

    let after = metrics.render(Format::Text);
    assert_eq!(series(&after), before);
    assert!(
        after.contains(r#"shop_http_request_error_total{path="unmatched",status="404"} 20000"#)
    );
}

#[tokio::test]
async fn an_unknown_method_is_recorded_as_other() {
    let metrics = metrics();
    let app = app(&metrics);

    send(&app, Method::from_bytes(b"BREW").expect("token"), "/fast").await;

    let text = metrics.render(Format::Text);
    assert!(text.contains(&histogram_line("count", "_OTHER", "/fast", 405, "1")));
    assert!(!text.contains("BREW"));
}

#[tokio::test]
async fn a_caught_panic_is_counted_as_500() {
    let metrics = metrics();
    let app = app(&metrics);

    let response = send(&app, Method::GET, "/panic").await;

    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let text = metrics.render(Format::Text);
    assert!(
        text.contains(r#"shop_http_request_error_total{path="/panic",status="500"} 1"#),
        "{text}"
    );
    assert!(text.contains("http_server_active_requests 0"));
}

#[tokio::test]
async fn an_uncaught_panic_is_counted_as_500_and_ends_the_request() {
    let metrics = metrics();
    let bare = Router::new()
        .route("/panic", get(panics))
        .layer(metrics.layer());

    let outcome = tokio::spawn(send_owned(bare, "/panic")).await;

    assert!(outcome.is_err_and(|error| error.is_panic()));
    let text = metrics.render(Format::Text);
    assert!(
        text.contains(r#"shop_http_request_error_total{path="/panic",status="500"} 1"#),
        "{text}"
    );
    assert!(text.contains("http_server_active_requests 0"));
}

async fn send_owned(app: Router, uri: &'static str) -> Response {
    send(&app, Method::GET, uri).await
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_request_is_counted_with_its_status() {
    let metrics = metrics();
    let app = app(&metrics);

    let response = send(&app, Method::GET, "/stuck").await;

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let text = metrics.render(Format::Text);
    assert!(
        text.contains(r#"shop_http_request_error_total{path="/stuck",status="503"} 1"#),
        "{text}"
    );
    assert!(text.contains(&histogram_line("sum", "GET", "/stuck", 503, "1")));
}

#[tokio::test]
async fn a_request_dropped_before_its_answer_is_not_counted_but_leaves_the_gauge() {
    let metrics = metrics();
    let app = app(&metrics);

    let request = Request::get("/stuck").body(Body::empty()).expect("request");
    let abandoned = tokio::time::timeout(Duration::from_millis(20), app.clone().oneshot(request));
    assert!(abandoned.await.is_err(), "the client gave up first");

    let text = metrics.render(Format::Text);
    assert!(text.contains("http_server_active_requests 0"), "{text}");
    assert!(!text.contains(r#"path="/stuck""#), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_from_many_tasks_sum_exactly() {
    const TASKS: u64 = 32;
    const REQUESTS_PER_TASK: u64 = 500;
    let metrics = metrics();
    let app = app(&metrics);

    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let app = app.clone();
            tokio::spawn(async move {
                for n in 0..REQUESTS_PER_TASK {
                    let uri = if (task + n) % 2 == 0 {
                        "/fast"
                    } else {
                        "/fail"
                    };
                    send(&app, Method::GET, uri).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }

    let half = TASKS * REQUESTS_PER_TASK / 2;
    let text = metrics.render(Format::Text);
    assert!(text.contains(&format!(
        r#"shop_http_request_total{{path="/fast",status="200"}} {half}"#
    )));
    assert!(text.contains(&format!(
        r#"shop_http_request_error_total{{path="/fail",status="500"}} {half}"#
    )));
}

#[tokio::test]
async fn scrapes_are_answered_by_the_layer_and_not_counted() {
    let metrics = metrics();
    let app = app(&metrics);

    for _ in 0..3 {
        assert_eq!(
            send(&app, Method::GET, "/metrics").await.status(),
            StatusCode::OK
        );
    }

    let text = metrics.render(Format::Text);
    assert!(!text.contains("/metrics"), "{text}");
    assert!(text.contains(r#"shop_http_request_error_total{path="unmatched",status="404"} 0"#));
}

#[tokio::test]
async fn scrapes_with_other_methods_are_refused_with_405() {
    let metrics = metrics();
    let app = app(&metrics);

    let response = send(&app, Method::POST, "/metrics").await;

    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()[header::ALLOW], "GET, HEAD");
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let body = to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    let problem: serde_json::Value = serde_json::from_slice(&body).expect("a JSON problem");
    assert_eq!(problem["status"], 405, "{problem}");
    assert_eq!(problem["code"], "method_not_allowed", "{problem}");
    assert!(
        metrics
            .render(Format::Text)
            .contains("http_server_active_requests 0")
    );
}

#[tokio::test]
async fn scrapes_get_text_by_default_with_its_exact_content_type() {
    let metrics = metrics();
    let app = app(&metrics);

    let response = send(&app, Method::GET, "/metrics").await;

    assert_eq!(response.headers()[header::CONTENT_TYPE], TEXT_CONTENT_TYPE);
    assert!(response.headers().get(header::CONTENT_ENCODING).is_none());
    let body = to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    let text = String::from_utf8(body.to_vec()).expect("UTF-8");
    assert!(text.contains("# TYPE shop_http_request_total counter"));
    assert!(!text.contains("# EOF"));
}

#[tokio::test]
async fn scrapes_asking_for_openmetrics_get_it() {
    let metrics = metrics();
    let app = app(&metrics);
    let accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
    let request = Request::get("/metrics")
        .header(header::ACCEPT, accept)
        .body(Body::empty());

    let response = app
        .oneshot(request.expect("request"))
        .await
        .expect("infallible");

    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        OPENMETRICS_CONTENT_TYPE
    );
    let body = to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    let text = String::from_utf8(body.to_vec()).expect("UTF-8");
    assert!(
        text.contains("# TYPE shop_http_request counter\n"),
        "{text}"
    );
    assert!(text.contains("# TYPE shop_build info\n"), "{text}");
    assert!(
        text.contains(r#"shop_build_info{version="1.2.3""#),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
}

#[tokio::test]
async fn scrapes_accepting_gzip_get_the_same_text_compressed() {
    let metrics = metrics();
    let app = app(&metrics);
    let request = Request::get("/metrics")
        .header(header::ACCEPT_ENCODING, "gzip")
        .body(Body::empty());

    let response = app
        .oneshot(request.expect("request"))
        .await
        .expect("infallible");

    assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
    let body = to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut text)
        .expect("valid gzip");
    assert_eq!(text, metrics.render(Format::Text));
}

#[tokio::test]
async fn the_endpoint_serves_the_exposition_on_any_router() {
    let metrics = metrics();
    let private = Router::new().route_service("/metrics", metrics.endpoint());

    let response = send(&private, Method::GET, "/metrics").await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], TEXT_CONTENT_TYPE);
}

#[tokio::test]
async fn without_serve_at_the_layer_passes_metrics_requests_through() {
    let metrics = HttpMetrics::builder()
        .route("/fast", [])
        .process_metrics(false)
        .build()
        .expect("valid");
    let app = Router::new()
        .route("/fast", get(|| async { "fast" }))
        .layer(metrics.layer());

    let response = send(&app, Method::GET, "/metrics").await;

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(
        metrics
            .render(Format::Text)
            .contains(r#"api_http_request_error_total{path="unmatched",status="404"} 1"#)
    );
}
