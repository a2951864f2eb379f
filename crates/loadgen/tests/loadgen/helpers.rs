//! The users API on a free port with a fresh database, and what the tests
//! read from it.

use std::{collections::BTreeMap, net::SocketAddr, time::Duration};

use api::{
    config::ServeConfig,
    startup::{RunningServer, Server},
};
use clap::Parser as _;
use loadgen::{Config, Summary};
use tempfile::TempDir;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};

/// Answers counted by route (or `unmatched`) and status.
pub(crate) type Counts = BTreeMap<(String, u16), u64>;

/// A running service; stopped when dropped with the test's runtime.
pub(crate) struct Service {
    pub(crate) address: SocketAddr,
    server: Option<RunningServer>,
    /// Holds the database folder for as long as the service.
    _folder: TempDir,
}

impl Service {
    /// Starts the service on loopback, port 0, with an empty database.
    pub(crate) async fn start() -> Self {
        let folder = tempfile::tempdir().expect("temporary folder");
        let config = ServeConfig::ephemeral(&folder.path().join("api.db"));
        let server = Server::build(&config).await.expect("server builds");
        let address = server.local_addr().expect("bound address");

        Self {
            address,
            server: Some(server.spawn()),
            _folder: folder,
        }
    }

    /// The base URL, as `--target` takes it.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Runs `loadgen` as a library call against this service with
    /// `arguments` after `--target`.
    pub(crate) async fn load(&self, arguments: &[&str]) -> Summary {
        let target = self.url();
        let all = ["loadgen", "--target", &target]
            .into_iter()
            .chain(arguments.iter().copied());
        let config = Config::try_parse_from(all).expect("valid arguments");

        loadgen::run(&config)
            .await
            .expect("the service is reachable")
    }

    /// The service's request counters, success and error families
    /// together, without `/health` (the probe's) and without series still
    /// at zero.
    pub(crate) async fn counted(&self) -> Counts {
        let exposition = self.get("/metrics").await;
        let mut counts = Counts::new();
        for line in exposition.lines() {
            let Some((path, status, value)) = request_counter(line) else {
                continue;
            };
            if path != "/health" && value > 0 {
                *counts.entry((path.to_owned(), status)).or_default() += value;
            }
        }
        counts
    }

    /// Shuts the service down and waits until it has closed its database.
    pub(crate) async fn stop(mut self) {
        let server = self.server.take().expect("server still running");
        tokio::time::timeout(Duration::from_secs(10), server.stop())
            .await
            .expect("server stops within 10 s")
            .expect("server stops cleanly");
    }

    /// The body of a GET, on a connection of its own.
    async fn get(&self, path: &str) -> String {
        let mut stream = TcpStream::connect(self.address).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");

        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read");
        let (_, body) = response.split_once("\r\n\r\n").expect("a complete answer");
        body.to_owned()
    }
}

/// The summary's answers by route and status, methods added together as
/// the service's counters add them.
pub(crate) fn summarised(summary: &Summary) -> Counts {
    let mut counts = Counts::new();
    for answer in &summary.answers {
        let key = (answer.route.template().to_owned(), answer.status);
        *counts.entry(key).or_default() += answer.count;
    }
    counts
}

/// `path`, `status` and value of an `api_http_request_total` or
/// `api_http_request_error_total` sample.
fn request_counter(line: &str) -> Option<(&str, u16, u64)> {
    let labels = line
        .strip_prefix("api_http_request_total{")
        .or_else(|| line.strip_prefix("api_http_request_error_total{"))?;
    let (labels, value) = labels.split_once("} ")?;

    let path = labels.strip_prefix("path=\"")?.split('"').next()?;
    let status = labels.split("status=\"").nth(1)?.split('"').next()?;
    Some((path, status.parse().ok()?, value.trim().parse().ok()?))
}
