//! The processes of an end-to-end run and a client for Prometheus' HTTP API.
//!
//! Both processes are real binaries: `api` as cargo built it, `prometheus`
//! from PATH (Debian's package in CI). Each is killed by pid when its handle
//! drops, so a failing assertion leaves nothing running.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use tempfile::TempDir;

/// The repository root, where the stack's files live.
pub(crate) fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A port that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("address").port()
}

/// Polls `check` every 200 ms until it returns `Some`, or fails the test
/// with `what` once `deadline` has passed.
pub(crate) async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let give_up = Instant::now() + deadline;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < give_up,
            "gave up after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A child process killed when dropped.
struct Guarded(Child);

impl Drop for Guarded {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `api` binary, with fault injection on (no faults until asked) so the
/// suite can provoke errors and latency.
pub(crate) struct Api {
    process: Option<Guarded>,
    pub(crate) port: u16,
    _data: TempDir,
}

impl Api {
    pub(crate) async fn start() -> Self {
        let data = tempfile::tempdir().expect("temporary folder");
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_api"))
            .env("PORT", port.to_string())
            .env("BIND_ADDRESS", "127.0.0.1")
            .env(
                "DATABASE_URL",
                format!("sqlite://{}", data.path().join("api.db").display()),
            )
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "warn")
            .env("FAULT_INJECTION", "true")
            .env_remove("METRICS_PORT")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("api starts");
        let api = Self {
            process: Some(Guarded(child)),
            port,
            _data: data,
        };

        // Waiting for the port to accept connections rather than asking
        // /ready keeps the traffic the test counts exactly its own.
        let address = format!("127.0.0.1:{port}");
        eventually("the api to listen", Duration::from_secs(10), || async {
            tokio::net::TcpStream::connect(&address)
                .await
                .ok()
                .map(drop)
        })
        .await;
        api
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Kills the process, as a crash or an outage would.
    pub(crate) fn stop(&mut self) {
        self.process.take();
    }
}

/// A Prometheus server running the project's own configuration and rules,
/// changed only in target addresses and intervals.
pub(crate) struct Prometheus {
    _process: Guarded,
    pub(crate) base: String,
    client: reqwest::Client,
    _workspace: TempDir,
}

impl Prometheus {
    /// Starts `binary` scraping and evaluating every second, with the api
    /// on `api_port`.
    pub(crate) async fn start(binary: &Path, api_port: u16) -> Self {
        let workspace = tempfile::tempdir().expect("temporary folder");
        let port = free_port();
        let project = repository().join("prometheus");
        let original =
            std::fs::read_to_string(project.join("prometheus.yml")).expect("read prometheus.yml");
        let config = rewrite_config(&original, api_port, port);
        std::fs::write(workspace.path().join("prometheus.yml"), config).expect("write config");

        // The rule files are named relative to the configuration; a link
        // beside the copy keeps those names as they are.
        std::os::unix::fs::symlink(project.join("rules"), workspace.path().join("rules"))
            .expect("link the rules");

        let child = Command::new(binary)
            .arg(format!(
                "--config.file={}",
                workspace.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                workspace.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts");
        let prometheus = Self {
            _process: Guarded(child),
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
            _workspace: workspace,
        };

        eventually(
            "prometheus to be ready",
            Duration::from_secs(15),
            || async {
                let response = prometheus
                    .client
                    .get(prometheus.url("/-/ready"))
                    .send()
                    .await
                    .ok()?;
                response.status().is_success().then_some(())
            },
        )
        .await;
        prometheus
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET /api/v1/{endpoint}`: the `data` of a successful answer.
    pub(crate) async fn api(&self, endpoint: &str, query: &[(&str, &str)]) -> Value {
        let response = self
            .client
            .get(self.url(&format!("/api/v1/{endpoint}")))
            .query(query)
            .send()
            .await
            .expect("prometheus answers");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["status"], "success", "{endpoint} {query:?}: {body}");
        body["data"].clone()
    }

    /// The instant vector or scalar a query returns now, as result rows.
    pub(crate) async fn query(&self, promql: &str) -> Vec<Value> {
        let data = self.api("query", &[("query", promql)]).await;
        match data["resultType"].as_str() {
            Some("vector" | "matrix") => data["result"].as_array().cloned().unwrap_or_default(),
            Some("scalar" | "string") => vec![data["result"].clone()],
            other => panic!("unexpected result type {other:?} for {promql}"),
        }
    }

    /// Polls `promql` until it returns the single value `expected`; fails
    /// the test with the last value seen once `deadline` has passed.
    pub(crate) async fn wait_for_value(&self, promql: &str, expected: f64, deadline: Duration) {
        let give_up = Instant::now() + deadline;
        loop {
            let seen = self.value(promql).await;
            if seen == Some(expected) {
                return;
            }
            assert!(
                Instant::now() < give_up,
                "`{promql}` is {seen:?} after {deadline:?}, not {expected}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The single value of a query that must return exactly one series.
    pub(crate) async fn value(&self, promql: &str) -> Option<f64> {
        let rows = self.query(promql).await;
        match rows.as_slice() {
            [row] => row["value"][1]
                .as_str()
                .and_then(|value| value.parse().ok()),
            _ => None,
        }
    }
}

/// The project's configuration with every target pointed at this run and
/// every interval shortened to one second. Each replacement must happen:
/// a configuration that no longer has the expected shape fails the test
/// rather than silently testing something else.
fn rewrite_config(original: &str, api_port: u16, prometheus_port: u16) -> String {
    let mut config = original.to_owned();
    for (from, to) in [
        ("api:8000", format!("127.0.0.1:{api_port}")),
        ("localhost:9090", format!("127.0.0.1:{prometheus_port}")),
        // Nothing listens there: alerts are read from Prometheus itself.
        ("alertmanager:9093", format!("127.0.0.1:{}", free_port())),
    ] {
        assert!(
            config.contains(from),
            "prometheus.yml no longer mentions {from}"
        );
        config = config.replace(from, &to);
    }

    let intervals = set_values(&config, &["scrape_interval:", "evaluation_interval:"], "1s");
    assert!(
        intervals.1 >= 2,
        "prometheus.yml sets no scrape and evaluation interval"
    );
    intervals.0
}

/// Replaces the value after each `key` (up to the end of the line or a
/// comment) with `value`; returns the text and how many were replaced.
fn set_values(text: &str, keys: &[&str], value: &str) -> (String, usize) {
    let mut replaced = 0;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            match keys.iter().find(|key| trimmed.starts_with(**key)) {
                Some(key) => {
                    replaced += 1;
                    let indent = &line[..line.len() - trimmed.len()];
                    format!("{indent}{key} {value}")
                }
                None => line.to_owned(),
            }
        })
        .collect();
    (lines.join("\n") + "\n", replaced)
}
