//! A real server on a free port with its own SQLite file, and typed requests
//! against it; the `api` binary run as a process; and the raw socket steps
//! that tests of connection handling share.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use api::{
    config::{DatabaseUrl, ServeConfig},
    startup::{RunningServer, Server},
};
use reqwest::{Response, StatusCode, header};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
    process::{Child, Command},
    sync::oneshot,
    task::JoinHandle,
};

/// A running server and a client for it.
pub(crate) struct TestApp {
    pub(crate) address: SocketAddr,
    /// The separate metrics listener, when `METRICS_PORT` is configured.
    pub(crate) metrics_address: Option<SocketAddr>,
    pub(crate) client: reqwest::Client,
    pub(crate) database: PathBuf,
    server: Option<RunningServer>,
    /// Keeps the database folder alive as long as the app; `None` when the
    /// test owns the folder.
    _folder: Option<TempDir>,
}

/// The configuration tests start from: loopback, port 0, logging off, and
/// a short grace period so that stopping never waits long.
pub(crate) fn test_config(database: &Path) -> ServeConfig {
    ServeConfig {
        shutdown_grace_period: Duration::from_secs(5),
        ..ServeConfig::ephemeral(database)
    }
}

impl TestApp {
    /// A server with the test configuration and a fresh database.
    pub(crate) async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// A server with a fresh database and the test configuration as changed
    /// by `adjust`.
    pub(crate) async fn spawn_with(adjust: impl FnOnce(&mut ServeConfig)) -> Self {
        let folder = tempfile::tempdir().expect("temporary folder");
        let mut config = test_config(&folder.path().join("api.db"));
        adjust(&mut config);
        Self::start(config, Some(folder)).await
    }

    /// A server on an existing database file, which the caller keeps.
    pub(crate) async fn spawn_on(database: &Path) -> Self {
        Self::start(test_config(database), None).await
    }

    async fn start(config: ServeConfig, folder: Option<TempDir>) -> Self {
        let DatabaseUrl::Sqlite(database) = config.database_url.clone();
        let server = Server::build(&config).await.expect("server builds");
        let address = server.local_addr().expect("bound address");
        let metrics_address = server.metrics_addr().expect("metrics address");

        Self {
            address,
            metrics_address,
            client: reqwest::Client::new(),
            database,
            server: Some(server.spawn()),
            _folder: folder,
        }
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Starts the shutdown sequence without waiting for it.
    pub(crate) fn begin_shutdown(&mut self) {
        if let Some(server) = self.server.as_mut() {
            server.begin_shutdown();
        }
    }

    /// Shuts the server down and waits until it has closed the database.
    pub(crate) async fn stop(mut self) {
        let server = self.server.take().expect("server still running");
        tokio::time::timeout(Duration::from_secs(10), server.stop())
            .await
            .expect("server stops within 10 s")
            .expect("server stops cleanly");
    }

    pub(crate) async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    /// The text exposition from the public port's /metrics.
    pub(crate) async fn scrape(&self) -> String {
        let response = self.get("/metrics").await;
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.expect("exposition text")
    }

    pub(crate) async fn create_user(&self, name: &str, email: &str) -> Response {
        self.post_json("/v1/users", &json!({ "name": name, "email": email }))
            .await
    }

    /// Creates a user and returns its JSON, failing the test on any other
    /// answer than 201.
    pub(crate) async fn created_user(&self, name: &str, email: &str) -> Value {
        let response = self.create_user(name, email).await;
        assert_eq!(response.status(), StatusCode::CREATED, "creating {email}");
        response.json().await.expect("user JSON")
    }

    pub(crate) async fn get_user(&self, id: &Value) -> Response {
        self.get(&format!("/v1/users/{id}")).await
    }

    pub(crate) async fn patch_user(&self, id: &Value, changes: &Value) -> Response {
        self.client
            .patch(self.url(&format!("/v1/users/{id}")))
            .json(changes)
            .send()
            .await
            .expect("request sent")
    }

    pub(crate) async fn delete_user(&self, id: &Value) -> Response {
        self.client
            .delete(self.url(&format!("/v1/users/{id}")))
            .send()
            .await
            .expect("request sent")
    }

    /// One page of the list; `query` is appended as is.
    pub(crate) async fn list_users(&self, query: &str) -> Response {
        self.get(&format!("/v1/users{query}")).await
    }

    /// Every stored user, read page by page.
    pub(crate) async fn all_users(&self) -> Vec<Value> {
        let mut users = Vec::new();
        let mut query = "?limit=500".to_owned();
        loop {
            let page: Value = self
                .list_users(&query)
                .await
                .json()
                .await
                .expect("page JSON");
            users.extend(
                page["users"]
                    .as_array()
                    .expect("users array")
                    .iter()
                    .cloned(),
            );
            match page["next_cursor"].as_str() {
                Some(cursor) => query = format!("?limit=500&cursor={cursor}"),
                None => return users,
            }
        }
    }

    pub(crate) async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// A request with a raw body and, if given, a content type.
    pub(crate) async fn send_raw(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Response {
        let mut request = self.client.request(method, self.url(path)).body(body);
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        request.send().await.expect("request sent")
    }
}

/// Checks that `response` is a problem document with `status` and `code`,
/// and returns its body.
pub(crate) async fn assert_problem(response: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status, "status for {}", response.url());
    let content_type = response.headers()[header::CONTENT_TYPE]
        .to_str()
        .expect("ASCII");
    assert_eq!(content_type, "application/problem+json");

    let body: Value = response.json().await.expect("problem JSON");
    assert_eq!(body["status"], status.as_u16(), "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["type"], "about:blank", "{body}");
    assert_eq!(
        body["title"],
        status.canonical_reason().expect("known status"),
        "{body}"
    );
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|detail| !detail.is_empty()),
        "{body}"
    );
    body
}

/// Sends raw bytes on a new connection and returns the response.
pub(crate) async fn raw_exchange(app: &TestApp, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(app.address).await.expect("connect");
    stream.write_all(request).await.expect("write");
    read_response(&mut stream).await
}

/// Reads one response: up to the end of the body its headers announce, or
/// until the server closes the connection.
pub(crate) async fn read_response(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buffer = [0; 4096];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
            .await
            .expect("an answer within 5 s")
            .expect("read");
        received.extend_from_slice(&buffer[..read]);
        if read == 0 || response_is_complete(&received) {
            return String::from_utf8_lossy(&received).into_owned();
        }
    }
}

fn response_is_complete(received: &[u8]) -> bool {
    let text = String::from_utf8_lossy(received);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    });
    length.is_some_and(|length| body.len() >= length)
}

/// Waits for the interim `100 Continue` answer, which the server sends only
/// once the handler has started to read the body: from then on the request
/// is certainly in flight.
pub(crate) async fn wait_for_continue(stream: &mut TcpStream) {
    let mut received = Vec::new();
    let mut byte = [0; 1];
    while !received.ends_with(b"\r\n\r\n") {
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte))
            .await
            .expect("100 Continue within 5 s")
            .expect("read");
        assert_eq!(read, 1, "the connection closed before 100 Continue");
        received.push(byte[0]);
    }
    assert!(
        received.starts_with(b"HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&received)
    );
}

/// Waits until the listener at `address` has closed: a new connection is
/// refused.
pub(crate) async fn wait_until_refusing_connections(address: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(address).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "the listener is still open 5 s after shutdown began"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every variable the service reads, so the environment of the test run
/// cannot leak into the process under test.
const SERVICE_VARIABLES: [&str; 19] = [
    "PORT",
    "METRICS_PORT",
    "BIND_ADDRESS",
    "DATABASE_URL",
    "LOG_FORMAT",
    "RUST_LOG",
    "REQUEST_TIMEOUT",
    "BODY_LIMIT",
    "MAX_IN_FLIGHT",
    "MAX_CONNECTIONS",
    "HEADER_READ_TIMEOUT",
    "MAX_HEADER_SIZE",
    "SHUTDOWN_DELAY",
    "SHUTDOWN_GRACE_PERIOD",
    "FAULT_INJECTION",
    "FAULT_LATENCY",
    "FAULT_ERROR_RATIO",
    "FAULT_ERROR_STATUS",
    "HEALTHCHECK_URL",
];

/// The `api` binary Cargo built for these tests, with none of the service's
/// variables inherited, killed if the test drops it.
pub(crate) fn api() -> Command {
    api_at(Path::new(env!("CARGO_BIN_EXE_api")))
}

/// Like [`api`], for a copy of the binary at `program`.
pub(crate) fn api_at(program: &Path) -> Command {
    let mut command = Command::new(program);
    for variable in SERVICE_VARIABLES {
        command.env_remove(variable);
    }
    command.kill_on_drop(true);
    command
}

/// `command` set up to serve on a free loopback port from `database`,
/// logging JSON lines at `info`, and closing its listener as soon as it is
/// told to stop (a test of the shutdown delay sets its own).
pub(crate) fn serve_command(mut command: Command, database: &Path) -> Command {
    command
        .env("RUST_LOG", "info")
        .env("PORT", "0")
        .env("BIND_ADDRESS", "127.0.0.1")
        .env("DATABASE_URL", format!("sqlite://{}", database.display()))
        .env("LOG_FORMAT", "json")
        .env("SHUTDOWN_DELAY", "0s");
    command
}

/// A running `api serve` process, the address it reported, and every line it
/// has logged.
pub(crate) struct Process {
    child: Child,
    pub(crate) address: SocketAddr,
    log: Arc<Mutex<Vec<Value>>>,
    reader: JoinHandle<()>,
}

impl Process {
    /// Starts the binary on a free loopback port with `database`, and waits
    /// for its `listening` log line.
    pub(crate) async fn start(database: &Path) -> Self {
        Self::spawn(serve_command(api(), database)).await
    }

    /// Like `start`, keeping log lines down to `level`.
    pub(crate) async fn start_logging(database: &Path, level: &str) -> Self {
        let mut command = serve_command(api(), database);
        command.env("RUST_LOG", level);
        Self::spawn(command).await
    }

    /// Runs `command`, which must serve and log JSON lines, and waits for
    /// its `listening` log line.
    pub(crate) async fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("api starts");

        // Read stdout to the end, so the process never blocks on a full
        // pipe, and keep each line for the test to inspect.
        let log = Arc::new(Mutex::new(Vec::new()));
        let (listening, address) = oneshot::channel();
        let mut lines = BufReader::new(child.stdout.take().expect("stdout piped")).lines();
        let kept = Arc::clone(&log);
        let reader = tokio::spawn(async move {
            let mut listening = Some(listening);
            while let Ok(Some(line)) = lines.next_line().await {
                let entry: Value = serde_json::from_str(&line).expect("JSON log line");
                if entry["message"] == "listening" {
                    let address = entry["address"].as_str().expect("address").to_owned();
                    listening.take().map(|listening| listening.send(address));
                }
                kept.lock().expect("log lock").push(entry);
            }
        });

        let address = tokio::time::timeout(Duration::from_secs(10), address)
            .await
            .expect("api listens within 10 s")
            .expect("api exited without listening");
        Self {
            child,
            address: address.parse().expect("a socket address"),
            log,
            reader,
        }
    }

    /// `http://ADDRESS` followed by `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// The process id, while the process runs.
    pub(crate) fn id(&self) -> u32 {
        self.child.id().expect("process running")
    }

    /// Sends the signal `name` (`TERM`, `KILL`, ...) with kill(1), since
    /// the tests forbid the unsafe code a direct call would take.
    pub(crate) fn signal(&self, name: &str) {
        let pid = self.id().to_string();
        let status = std::process::Command::new("kill")
            .args(["-s", name, &pid])
            .status();
        assert!(status.expect("kill runs").success(), "kill -s {name} {pid}");
    }

    /// Waits for the process to exit; returns how it exited and everything
    /// it logged.
    pub(crate) async fn wait(mut self) -> (ExitStatus, Vec<Value>) {
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("api exits within 10 s")
            .expect("exit status");
        self.reader.await.expect("stdout fully read");
        let log = self.log.lock().expect("log lock").clone();
        (status, log)
    }
}
