//! A real server on a free port with its own SQLite file, and typed requests
//! against it.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use api::{
    config::{DatabaseUrl, ServeConfig},
    startup::{RunningServer, Server},
};
use reqwest::{Response, StatusCode, header};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
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
