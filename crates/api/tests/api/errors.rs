//! Every error status the API promises, each with its problem body, and
//! proof that bad input never changes stored data.

use std::time::Duration;

use api::http::{HttpLimits, with_middleware};
use axum::{ServiceExt, extract::Request, routing::get};
use reqwest::{Method, StatusCode, header};
use serde_json::json;
use tokio::{io::AsyncWriteExt, net::TcpStream};

use crate::helpers::{TestApp, assert_problem, raw_exchange, read_response};

const JSON: Option<&str> = Some("application/json");

#[tokio::test]
async fn malformed_json_returns_400() {
    let app = TestApp::spawn().await;
    let bodies: [&[u8]; 7] = [
        b"",
        b"{",
        b"{\"name\": \"Ada\",}",
        b"{\"name\": 'Ada'}",
        b"{} {}",
        b"{\"name\": \"\xff\xfe\", \"email\": \"a@b.cd\"}",
        b"\x00",
    ];

    for body in bodies {
        let response = app
            .send_raw(Method::POST, "/v1/users", JSON, body.to_vec())
            .await;

        let problem = assert_problem(response, StatusCode::BAD_REQUEST, "malformed_json").await;
        assert!(
            problem["detail"]
                .as_str()
                .expect("detail")
                .starts_with("the body is not valid JSON")
        );
    }
}

#[tokio::test]
async fn invalid_ids_return_400_on_every_method() {
    let app = TestApp::spawn().await;

    for id in ["abc", "0", "-1", "1.5", "99999999999999999999", "%20"] {
        let path = format!("/v1/users/{id}");
        for method in [Method::GET, Method::PATCH, Method::DELETE] {
            let response = app
                .send_raw(method.clone(), &path, JSON, r#"{"name":"X"}"#)
                .await;

            let problem =
                assert_problem(response, StatusCode::BAD_REQUEST, "invalid_parameter").await;
            assert_eq!(
                problem["detail"], "a user id is a positive integer",
                "{method} {path}"
            );
        }
    }
}

#[tokio::test]
async fn bad_query_parameters_return_400() {
    let app = TestApp::spawn().await;

    for query in [
        "?limit=0",
        "?limit=501",
        "?limit=abc",
        "?limit=-5",
        "?cursor=nonsense",
        "?cursor=",
    ] {
        let response = app.list_users(query).await;

        assert_problem(response, StatusCode::BAD_REQUEST, "invalid_parameter").await;
    }
}

#[tokio::test]
async fn the_largest_page_size_is_accepted() {
    let app = TestApp::spawn().await;

    let response = app.list_users("?limit=500").await;

    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_unknown_user_returns_404_on_every_method() {
    let app = TestApp::spawn().await;
    let missing = json!(4242);

    let responses = [
        app.get_user(&missing).await,
        app.patch_user(&missing, &json!({ "name": "Nobody" })).await,
        app.delete_user(&missing).await,
    ];

    for response in responses {
        let problem = assert_problem(response, StatusCode::NOT_FOUND, "user_not_found").await;
        assert_eq!(problem["detail"], "there is no user with id 4242");
    }
}

#[tokio::test]
async fn an_unknown_route_returns_404() {
    let app = TestApp::spawn().await;

    for path in ["/nowhere", "/v1", "/v1/users/1/friends", "/v2/users"] {
        assert_problem(
            app.get(path).await,
            StatusCode::NOT_FOUND,
            "route_not_found",
        )
        .await;
    }
}

#[tokio::test]
async fn a_method_a_route_lacks_returns_405_with_allow() {
    let app = TestApp::spawn().await;
    let cases = [
        (Method::PUT, "/v1/users/1", "GET,HEAD,PATCH,DELETE"),
        (Method::DELETE, "/v1/users", "GET,HEAD,POST"),
        (Method::POST, "/health", "GET,HEAD"),
    ];

    for (method, path, allowed) in cases {
        let response = app.send_raw(method.clone(), path, JSON, "{}").await;

        let allow = response.headers()[header::ALLOW]
            .to_str()
            .expect("ASCII")
            .to_owned();
        assert_eq!(allow, allowed, "{method} {path}");
        assert_problem(
            response,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        )
        .await;
    }
}

#[tokio::test]
async fn a_body_over_the_limit_returns_413() {
    let app = TestApp::spawn_with(|config| config.body_limit = 1024).await;
    let name = "x".repeat(2000);
    let body = json!({ "name": name, "email": "big@example.com" }).to_string();

    let response = app.send_raw(Method::POST, "/v1/users", JSON, body).await;

    let problem =
        assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert_eq!(
        problem["detail"],
        "the body is larger than the limit of 1024 bytes"
    );
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_returns_413() {
    let app = TestApp::spawn_with(|config| config.body_limit = 1024).await;
    let chunk = "a".repeat(600);
    let request = format!(
        "POST /v1/users HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n\
         258\r\n{chunk}\r\n258\r\n{chunk}\r\n0\r\n\r\n"
    );

    let response = raw_exchange(&app, request.as_bytes()).await;

    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains("application/problem+json"), "{response}");
}

#[tokio::test]
async fn a_missing_or_foreign_content_type_returns_415() {
    let app = TestApp::spawn().await;
    let body = r#"{"name":"Ada","email":"ada@example.com"}"#;

    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let response = app
            .send_raw(Method::POST, "/v1/users", content_type, body)
            .await;

        assert_problem(
            response,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        )
        .await;
    }
}

#[tokio::test]
async fn a_json_content_type_with_parameters_is_accepted() {
    let app = TestApp::spawn().await;
    let body = r#"{"name":"Ada","email":"ada@example.com"}"#;

    let response = app
        .send_raw(
            Method::POST,
            "/v1/users",
            Some("application/json; charset=utf-8"),
            body,
        )
        .await;

    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn invalid_fields_return_422_listing_every_one() {
    let app = TestApp::spawn().await;
    let long_name = "n".repeat(101);
    let cases = [
        (
            json!({}),
            vec![("#/name", "is required"), ("#/email", "is required")],
        ),
        (
            json!({ "name": "  ", "email": "nope" }),
            vec![
                ("#/name", "must not be empty"),
                (
                    "#/email",
                    "must be an email address such as name@example.com",
                ),
            ],
        ),
        (
            json!({ "name": long_name, "email": "a@b.cd" }),
            vec![("#/name", "must be at most 100 characters")],
        ),
        (
            json!({ "name": "A\u{7}B", "email": "a@b.cd" }),
            vec![("#/name", "must not contain control characters")],
        ),
        (
            json!({ "name": "Ada", "email": 7 }),
            vec![("#/email", "invalid type: integer `7`, expected a string")],
        ),
        (
            json!({ "name": "Ada", "email": "a@b.cd", "admin": true }),
            vec![(
                "#/admin",
                "unknown field `admin`, expected `name` or `email`",
            )],
        ),
        (
            json!(["Ada", "ada@example.com"]),
            vec![("#", "the body must be a JSON object")],
        ),
        (json!("Ada"), vec![("#", "the body must be a JSON object")]),
        (json!(null), vec![("#", "the body must be a JSON object")]),
    ];

    for (body, expected) in cases {
        let response = app.post_json("/v1/users", &body).await;

        let problem = assert_problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        let fields: Vec<(String, String)> = problem["errors"]
            .as_array()
            .expect("errors array")
            .iter()
            .map(|e| {
                (
                    e["pointer"].as_str().unwrap_or_default().into(),
                    e["detail"].as_str().unwrap_or_default().into(),
                )
            })
            .collect();
        let expected: Vec<(String, String)> = expected
            .into_iter()
            .map(|(p, d)| (p.to_owned(), d.to_owned()))
            .collect();
        assert_eq!(fields, expected, "body {body}");
    }
}

#[tokio::test]
async fn an_empty_patch_returns_422() {
    let app = TestApp::spawn().await;
    let user = app.created_user("Ada", "ada@example.com").await;

    let response = app.patch_user(&user["id"], &json!({})).await;

    let problem = assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(
        problem["errors"][0]["detail"],
        "give at least one of name and email"
    );
}

#[tokio::test]
async fn bad_input_changes_no_stored_data() {
    let app = TestApp::spawn().await;
    let ada = app.created_user("Ada", "ada@example.com").await;
    app.created_user("Grace", "grace@example.com").await;
    let before = app.all_users().await;
    let id = ada["id"].to_string();
    let user_path = format!("/v1/users/{id}");
    let cases: Vec<(Method, &str, Option<&str>, String)> = vec![
        (
            Method::POST,
            "/v1/users",
            JSON,
            r#"{"name":"","email":"x@y.zz"}"#.into(),
        ),
        (
            Method::POST,
            "/v1/users",
            JSON,
            r#"{"name":"Ada","email":"ADA@example.com"}"#.into(),
        ),
        (Method::POST, "/v1/users", JSON, r#"{"name":"Bob"#.into()),
        (
            Method::POST,
            "/v1/users",
            None,
            r#"{"name":"Bob","email":"bob@example.com"}"#.into(),
        ),
        (
            Method::PATCH,
            &user_path,
            JSON,
            r#"{"email":"grace@example.com"}"#.into(),
        ),
        (
            Method::PATCH,
            &user_path,
            JSON,
            r#"{"name":"Ada","email":"bad"}"#.into(),
        ),
        (
            Method::PATCH,
            &user_path,
            JSON,
            r#"{"name":"Ada\u0000"}"#.into(),
        ),
        (
            Method::PATCH,
            &user_path,
            JSON,
            r#"{"name":"Ada", "id": 99}"#.into(),
        ),
        (Method::PUT, &user_path, JSON, r#"{"name":"Ada"}"#.into()),
        (Method::DELETE, "/v1/users/0", None, String::new()),
        (Method::DELETE, "/v1/users", None, String::new()),
    ];

    for (method, path, content_type, body) in cases {
        let response = app
            .send_raw(method.clone(), path, content_type, body.clone())
            .await;

        assert!(
            response.status().is_client_error(),
            "{method} {path} {body}: {}",
            response.status()
        );
    }
    assert_eq!(app.all_users().await, before);
}

#[tokio::test]
async fn a_panicking_handler_answers_500_and_the_server_keeps_serving() {
    let router = axum::Router::new()
        .route("/panic", get(panicking_handler))
        .route("/fine", get(|| async { "fine" }));
    let limits = HttpLimits {
        request_timeout: Duration::from_secs(5),
        max_in_flight: 16,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let service = ServiceExt::<Request>::into_make_service(with_middleware(router, limits));
    tokio::spawn(async move { axum::serve(listener, service).await });
    let client = reqwest::Client::new();

    let panicked = client
        .get(format!("http://{address}/panic"))
        .send()
        .await
        .expect("sent");
    let after = client
        .get(format!("http://{address}/fine"))
        .send()
        .await
        .expect("sent");

    let problem = assert_problem(
        panicked,
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
    )
    .await;
    let detail = problem["detail"].as_str().expect("detail");
    assert!(
        !detail.contains("deliberate"),
        "the panic message must not leak: {detail}"
    );
    assert_eq!(after.status(), StatusCode::OK);
}

async fn panicking_handler() -> &'static str {
    panic!("deliberate panic in a test handler")
}

#[tokio::test]
async fn a_body_announced_over_the_limit_is_refused_before_it_arrives() {
    let app = TestApp::spawn().await;
    let head = "POST /v1/users HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
                content-length: 10000000\r\n\r\n{\"name\"";

    // Only the head and a few bytes are sent; the answer must not wait for
    // the rest, nor for the request timeout.
    let mut stream = TcpStream::connect(app.address).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("write head");
    let response = read_response(&mut stream).await;

    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(
        response.contains("\"code\":\"payload_too_large\""),
        "{response}"
    );
    assert!(app.all_users().await.is_empty());
}

#[tokio::test]
async fn a_request_over_the_timeout_answers_503_and_creates_nothing() {
    let app =
        TestApp::spawn_with(|config| config.request_timeout = Duration::from_millis(300)).await;
    let body = r#"{"name":"Slow","email":"slow@example.com"}"#;
    let head = format!(
        "POST /v1/users HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n",
        body.len()
    );

    // The body arrives only after the timeout has passed.
    let mut stream = TcpStream::connect(app.address).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream
        .write_all(&body.as_bytes()[..10])
        .await
        .expect("write part of the body");
    let response = read_response(&mut stream).await;

    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(
        response.contains("\"code\":\"request_timeout\""),
        "{response}"
    );
    assert!(
        response.to_ascii_lowercase().contains("retry-after: 1"),
        "{response}"
    );
    assert!(app.all_users().await.is_empty());
}
