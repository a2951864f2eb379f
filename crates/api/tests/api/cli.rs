//! The `api` binary as a process: configuration errors, signals, crashes,
//! and the health check command.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::{io::AsyncWriteExt, net::TcpStream};

use crate::helpers::{Process, api, read_response, serve_command};

#[tokio::test]
async fn an_invalid_flag_exits_2_with_one_line_naming_it() {
    let cases = [
        (["--port", "eighty"], "--port <PORT>"),
        (
            ["--bind-address", "localhost"],
            "--bind-address <BIND_ADDRESS>",
        ),
        (
            ["--shutdown-grace-period", "soon"],
            "--shutdown-grace-period <SHUTDOWN_GRACE_PERIOD>",
        ),
    ];

    for (args, named) in cases {
        let output = api().args(args).output().await.expect("api runs");

        assert_one_line_error(&output, named);
    }
}

#[tokio::test]
async fn an_invalid_variable_exits_2_with_one_line_naming_it() {
    let cases = [
        ("PORT", "70000"),
        ("DATABASE_URL", "postgres://db/api"),
        ("REQUEST_TIMEOUT", "0s"),
        ("BODY_LIMIT", "lots"),
        ("LOG_FORMAT", "xml"),
        ("FAULT_ERROR_RATIO", "2"),
        ("FAULT_ERROR_STATUS", "404"),
    ];

    for (variable, value) in cases {
        let output = api().env(variable, value).output().await.expect("api runs");

        assert_one_line_error(&output, &format!("<{variable}>"));
    }
}

/// Exit code 2 and a single `error:` line on stderr that contains `named`.
fn assert_one_line_error(output: &std::process::Output, named: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{named}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains(named),
        "{named}: {stderr}"
    );
}

#[tokio::test]
async fn a_database_that_cannot_be_opened_exits_1_naming_the_file() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let not_a_database = folder.path().join("notes.txt");
    std::fs::write(&not_a_database, "this is not a SQLite file, not at all").expect("write");

    let output = api()
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", not_a_database.display()),
        )
        .env("PORT", "0")
        .env("LOG_FORMAT", "json")
        .output()
        .await
        .expect("api runs");

    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let expected = format!("failed to open database at {}", not_a_database.display());
    assert!(stdout.contains(&expected), "{stdout}");
}

#[tokio::test]
async fn sigterm_drains_and_exits_0_leaving_a_complete_database() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let database = folder.path().join("api.db");
    let process = Process::start(&database).await;
    let client = reqwest::Client::new();
    let body = json!({ "name": "Ada", "email": "ada@example.com" });
    let created = client
        .post(process.url("/v1/users"))
        .json(&body)
        .send()
        .await
        .expect("sent");
    assert_eq!(created.status(), StatusCode::CREATED);

    process.signal("TERM");
    let (status, _) = process.wait().await;

    assert_eq!(status.code(), Some(0));
    assert!(
        !database.with_file_name("api.db-wal").exists(),
        "the WAL is folded in on exit"
    );
}

#[tokio::test]
async fn acknowledged_creates_survive_kill_9() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let database = folder.path().join("api.db");
    let process = Process::start(&database).await;
    let client = reqwest::Client::new();
    let mut acknowledged = Vec::new();
    for n in 0..100 {
        let body = json!({ "name": "Durable", "email": format!("durable{n}@example.com") });
        let response = client
            .post(process.url("/v1/users"))
            .json(&body)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), StatusCode::CREATED);
        let user: Value = response.json().await.expect("JSON");
        acknowledged.push(user["id"].as_i64().expect("id"));
    }

    process.signal("KILL");
    let (status, _) = process.wait().await;
    let restarted = Process::start(&database).await;
    let page: Value = client
        .get(restarted.url("/v1/users?limit=500"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");

    assert_eq!(status.code(), None, "killed by a signal");
    let mut stored: Vec<i64> = page["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["id"].as_i64().expect("id"))
        .collect();
    stored.sort_unstable();
    assert_eq!(stored, acknowledged);
}

#[tokio::test]
async fn every_log_line_of_a_request_names_its_request_id() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let process = Process::start_logging(&folder.path().join("api.db"), "debug").await;
    let client = reqwest::Client::new();

    let response = client
        .get(process.url("/v1/users/4242"))
        .header("x-request-id", "trace-me-4242")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    process.signal("TERM");
    let (_, log) = process.wait().await;

    let of_request: Vec<&Value> = log
        .iter()
        .filter(|entry| entry["span"]["path"] == "/v1/users/4242")
        .collect();
    assert!(
        of_request.len() >= 3,
        "start, refusal and finish: {of_request:#?}"
    );
    for entry in of_request {
        assert_eq!(entry["span"]["request_id"], "trace-me-4242", "{entry}");
    }
    let refused = log
        .iter()
        .find(|entry| entry["message"] == "request refused");
    assert!(refused.is_some_and(|entry| entry["span"]["request_id"] == "trace-me-4242"));
}

#[tokio::test]
async fn at_the_default_level_only_a_failed_request_is_logged_with_its_id_method_and_path() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let mut command = serve_command(api(), &folder.path().join("api.db"));
    command.env("REQUEST_TIMEOUT", "200ms");
    let process = Process::spawn(command).await;

    let served = reqwest::Client::new()
        .get(process.url("/v1/users"))
        .header("x-request-id", "served-1")
        .send()
        .await
        .expect("sent");
    assert_eq!(served.status(), StatusCode::OK);
    // A create whose body never arrives outlives the timeout.
    let mut stream = TcpStream::connect(process.address).await.expect("connect");
    let head = "POST /v1/users HTTP/1.1\r\nhost: test\r\nx-request-id: stalled-1\r\n\
                content-type: application/json\r\ncontent-length: 40\r\n\r\n{\"name\"";
    stream.write_all(head.as_bytes()).await.expect("write");
    let answer = read_response(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    process.signal("TERM");
    let (_, log) = process.wait().await;

    let naming = |id: &str| -> Vec<&Value> {
        log.iter()
            .filter(|entry| entry.to_string().contains(id))
            .collect()
    };
    assert_eq!(naming("served-1"), Vec::<&Value>::new());
    let stalled = naming("stalled-1");
    assert_eq!(stalled.len(), 1, "{stalled:#?}");
    let line = stalled[0];
    assert_eq!(line["message"], "request timed out", "{line}");
    assert_eq!(line["level"], "WARN", "{line}");
    assert_eq!(line["request_id"], "stalled-1", "{line}");
    assert_eq!(line["method"], "POST", "{line}");
    assert_eq!(line["path"], "/v1/users", "{line}");
}

#[tokio::test]
async fn healthcheck_exits_0_for_a_healthy_server() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let process = Process::start(&folder.path().join("api.db")).await;

    let output = api()
        .args(["healthcheck", "--url", &process.url("/health")])
        .output()
        .await
        .expect("runs");

    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn healthcheck_exits_1_when_nothing_answers_200() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let process = Process::start(&folder.path().join("api.db")).await;
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let cases = [
        (
            format!("http://127.0.0.1:{closed_port}/health"),
            "cannot reach",
        ),
        (process.url("/missing"), "answered 404"),
        ("https://127.0.0.1/health".to_owned(), "not an http:// URL"),
    ];

    for (url, reason) in cases {
        let output = api()
            .args(["healthcheck", "--url", &url])
            .output()
            .await
            .expect("runs");

        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{url}");
        assert!(
            stderr.starts_with("unhealthy: ") && stderr.contains(reason),
            "{url}: {stderr}"
        );
    }
}
