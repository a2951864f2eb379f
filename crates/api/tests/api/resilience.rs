//! The `api` binary in the situations production brings and in-process tests
//! cannot: killed while many clients write, stopped while busy, pushed to
//! ten times its in-flight limit, out of disk space, and run as an
//! unprivileged user.
//!
//! Every test runs the real binary as a child process and judges it only by
//! what its clients, its log and its database file show. Starting and
//! signalling the process is left to [`crate::helpers::Process`].

use std::{
    collections::HashSet,
    os::unix::{
        fs::{MetadataExt, PermissionsExt},
        process::ExitStatusExt,
    },
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::{io::AsyncWriteExt, net::TcpStream};

use crate::{
    helpers::{
        Process, api, api_at, read_response, serve_command, wait_for_continue,
        wait_until_refusing_connections,
    },
    tools,
};

/// Clients creating users at once in the crash test.
const CRASH_WRITERS: usize = 16;

/// Creates acknowledged before the crash test kills the process.
const CREATES_BEFORE_KILL: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_create_survives_kill_9_amid_concurrent_writers() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let database = folder.path().join("api.db");
    let process = Process::start(&database).await;
    let seen = Arc::new(CrashLog::default());
    let writers: Vec<_> = (0..CRASH_WRITERS)
        .map(|writer| {
            let url = process.url("/v1/users");
            tokio::spawn(create_until_killed(url, writer, Arc::clone(&seen)))
        })
        .collect();

    wait_until("creates acknowledged before the kill", || {
        seen.acknowledged().len() >= CREATES_BEFORE_KILL
    })
    .await;
    seen.killed.store(true, Ordering::SeqCst);
    process.signal("KILL");
    let (killed, _) = process.wait().await;
    for writer in writers {
        writer.await.expect("writer task");
    }
    let acknowledged = seen.acknowledged();
    let restarted = Process::start(&database).await;
    let client = reqwest::Client::new();

    assert_eq!(killed.signal(), Some(9), "killed by SIGKILL: {killed}");
    for (id, email) in &acknowledged {
        let response = client
            .get(restarted.url(&format!("/v1/users/{id}")))
            .send()
            .await
            .expect("sent");
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "user {id} <{email}> was acknowledged, then lost"
        );
        let user: Value = response.json().await.expect("user JSON");
        assert_eq!(user["email"], email.as_str(), "user {id}");
    }

    // A create in flight at the kill may have committed without its answer
    // reaching the client, so each writer may leave one user it never saw.
    let stored = stored_ids(&client, &restarted).await;
    let unacknowledged = stored.len() - acknowledged.len();
    assert!(
        unacknowledged <= CRASH_WRITERS,
        "{} users stored, {} acknowledged by {CRASH_WRITERS} writers",
        stored.len(),
        acknowledged.len()
    );

    restarted.signal("TERM");
    let (stopped, _) = restarted.wait().await;
    assert_eq!(
        stopped.code(),
        Some(0),
        "the restarted server stops cleanly"
    );
    assert_eq!(integrity_check(&database), "ok");
}

/// What the writers of the crash test saw.
#[derive(Default)]
struct CrashLog {
    /// The id and email of every user whose 201 answer arrived whole.
    acknowledged: Mutex<Vec<(i64, String)>>,
    /// Set just before the kill: from then on a failed request is expected;
    /// before it, a failure is a defect.
    killed: AtomicBool,
}

impl CrashLog {
    fn acknowledged(&self) -> Vec<(i64, String)> {
        self.acknowledged.lock().expect("log lock").clone()
    }
}

/// Creates users one after another, as fast as the server answers, until a
/// request fails, which must not happen before the kill.
async fn create_until_killed(url: String, writer: usize, seen: Arc<CrashLog>) {
    let client = reqwest::Client::new();

    for n in 0_u64.. {
        let email = format!("writer{writer}.n{n}@example.com");
        let body = json!({ "name": "Crash", "email": email });
        let answer = whole_answer(client.post(&url).json(&body)).await;

        // The flag is read after the failure, so a failure seen with the
        // flag still down certainly came before the kill.
        let (status, body) = match answer {
            Ok(answer) => answer,
            Err(error) => {
                let killed = seen.killed.load(Ordering::SeqCst);
                assert!(killed, "creating {email} failed before the kill: {error}");
                return;
            }
        };
        let user: Value = serde_json::from_slice(&body).expect("user JSON");
        assert_eq!(status, StatusCode::CREATED, "creating {email}: {user}");
        let id = user["id"].as_i64().expect("id");
        seen.acknowledged
            .lock()
            .expect("log lock")
            .push((id, email));
    }
}

/// The id of every stored user, read page by page.
async fn stored_ids(client: &reqwest::Client, process: &Process) -> HashSet<i64> {
    let mut ids = HashSet::new();
    let mut query = "?limit=500".to_owned();
    loop {
        let page: Value = client
            .get(process.url(&format!("/v1/users{query}")))
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("page JSON");
        let users = page["users"].as_array().expect("users array");
        ids.extend(users.iter().map(|user| user["id"].as_i64().expect("id")));
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=500&cursor={cursor}"),
            None => return ids,
        }
    }
}

/// SQLite's own verdict on the file: `ok`, or a list of what is broken.
fn integrity_check(database: &Path) -> String {
    let connection =
        rusqlite::Connection::open_with_flags(database, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("database opens");
    connection
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("integrity check runs")
}

/// How long requests in flight may run on after SIGTERM in the shutdown
/// test.
const GRACE_PERIOD: Duration = Duration::from_secs(5);

/// How long `/ready` should answer 503 while the listener still accepts, so
/// that a load balancer polling it stops sending traffic before connections
/// are refused; given to the service as `SHUTDOWN_DELAY`.
const READINESS_DELAY: Duration = Duration::from_secs(1);

/// Clients sending requests without pause in the shutdown test.
const BUSY_CLIENTS: usize = 8;

/// Requests the clients finish before the shutdown test sends SIGTERM, so
/// that the server is under steady load when it arrives.
const REQUESTS_BEFORE_SIGTERM: usize = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_finishes_every_accepted_request_and_exits_0() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let mut command = serve_command(api(), &folder.path().join("api.db"));
    // The debug line that opens each request marks the requests the server
    // has taken up; the test checks that each of those was answered.
    command
        .env("RUST_LOG", "info,api::http=debug")
        .env(
            "SHUTDOWN_GRACE_PERIOD",
            humantime::format_duration(GRACE_PERIOD).to_string(),
        )
        .env(
            "SHUTDOWN_DELAY",
            humantime::format_duration(READINESS_DELAY).to_string(),
        );
    let process = Process::spawn(command).await;
    let sigterm = Arc::new(Sigterm::default());
    let finished = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..BUSY_CLIENTS)
        .map(|client| {
            let busy = Busy {
                client,
                base: process.url(""),
                sigterm: Arc::clone(&sigterm),
                finished: Arc::clone(&finished),
            };
            tokio::spawn(busy.run())
        })
        .collect();
    let poller = tokio::spawn(poll_readiness(process.url("/ready"), Arc::clone(&sigterm)));

    wait_until("requests finished before SIGTERM", || {
        finished.load(Ordering::SeqCst) >= REQUESTS_BEFORE_SIGTERM
    })
    .await;
    let mut in_flight = start_a_create_held_open(process.address).await;
    sigterm.mark_sent();
    process.signal("TERM");
    let ready_polls = poller.await.expect("poller task");

    // The held create is finished only once the listener refuses new
    // connections: it is then certainly a request the drain must wait for.
    wait_until_refusing_connections(process.address).await;
    in_flight
        .write_all(HELD_BODY.as_bytes())
        .await
        .expect("write the body");
    let held_response = read_response(&mut in_flight).await;

    let (status, log) = process.wait().await;
    let exited_after = sigterm.at().elapsed();
    sigterm.over.store(true, Ordering::SeqCst);
    let mut exchanges = Vec::new();
    for client in clients {
        exchanges.extend(client.await.expect("client task"));
    }

    assert!(
        held_response.starts_with("HTTP/1.1 201"),
        "a create in flight at SIGTERM is answered: {held_response}"
    );
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(
        exited_after < READINESS_DELAY + GRACE_PERIOD,
        "exited {exited_after:?} after SIGTERM"
    );
    assert_every_accepted_request_answered(&exchanges, &log, sigterm.at());
    ready_polls.assert_turned_503_before_refusing(sigterm.at());
}

/// When the shutdown test sent SIGTERM, and whether its clients must stop.
#[derive(Default)]
struct Sigterm {
    sent_at: Mutex<Option<Instant>>,
    /// Set once the process has exited and nothing more can be learnt.
    over: AtomicBool,
}

impl Sigterm {
    /// Records that SIGTERM is being sent now.
    fn mark_sent(&self) {
        *self.sent_at.lock().expect("signal lock") = Some(Instant::now());
    }

    /// When SIGTERM was sent, or `None` before.
    fn sent_at(&self) -> Option<Instant> {
        *self.sent_at.lock().expect("signal lock")
    }

    fn at(&self) -> Instant {
        self.sent_at().expect("SIGTERM sent")
    }
}

/// One client of the shutdown test: creates a user, reads it back, lists a
/// page, and again, on one keep-alive connection while the server keeps it.
struct Busy {
    client: usize,
    /// `http://ADDRESS`, without a path.
    base: String,
    sigterm: Arc<Sigterm>,
    /// Exchanges finished so far by all clients together.
    finished: Arc<AtomicUsize>,
}

/// One request of the shutdown test and what became of it.
struct Exchange {
    /// The `x-request-id` it was sent with, which the server logs.
    request_id: String,
    /// Method and path, for messages.
    asked: String,
    /// Whether the outcome arrived after SIGTERM was sent.
    after_sigterm: bool,
    /// The status of a whole answer, or the error that cut the exchange.
    outcome: Result<StatusCode, String>,
}

impl Busy {
    /// Sends requests one after another until the test is over, and returns
    /// what became of each.
    async fn run(self) -> Vec<Exchange> {
        let client = reqwest::Client::new();
        let mut exchanges = Vec::new();
        let mut last_created = 1;

        for n in 0_u64.. {
            if self.sigterm.over.load(Ordering::SeqCst) {
                break;
            }
            let request_id = format!("client{}-{n}", self.client);
            let (asked, request) = self.request(&client, n, last_created);
            let answer = whole_answer(request.header("x-request-id", &request_id)).await;

            if let Ok((StatusCode::CREATED, body)) = &answer {
                let user: Value = serde_json::from_slice(body).expect("user JSON");
                last_created = user["id"].as_i64().expect("id");
            }
            let outcome = answer.map(|(status, _)| status);
            let failed = outcome.is_err();
            exchanges.push(Exchange {
                request_id,
                asked,
                after_sigterm: self.sigterm.sent_at().is_some(),
                outcome,
            });
            self.finished.fetch_add(1, Ordering::SeqCst);

            // Once the listener has closed every attempt fails at once; a
            // pause keeps the client from starving the server of CPU.
            if failed {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        exchanges
    }

    /// The `n`th request in the cycle, and how to name it in messages.
    fn request(
        &self,
        client: &reqwest::Client,
        n: u64,
        last_created: i64,
    ) -> (String, reqwest::RequestBuilder) {
        let path = match n % 3 {
            0 => {
                let email = format!("client{}.n{n}@example.com", self.client);
                let body = json!({ "name": "Busy", "email": email });
                let request = client.post(format!("{}/v1/users", self.base));
                return ("POST /v1/users".to_owned(), request.json(&body));
            }
            1 => format!("/v1/users/{last_created}"),
            _ => "/v1/users?limit=20".to_owned(),
        };
        let request = client.get(format!("{}{path}", self.base));
        (format!("GET {path}"), request)
    }
}

/// Sends `request` and reads its answer to the end: an answer counts only
/// once its body has arrived whole.
async fn whole_answer(request: reqwest::RequestBuilder) -> Result<(StatusCode, Bytes), String> {
    let response = request.send().await.map_err(|error| format!("{error:?}"))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|error| format!("reading the body: {error:?}"))?;
    Ok((status, body))
}

/// Checks the contract of a graceful stop against what the clients saw
/// and what the server logged: every request the server took up was
/// answered, none with a server fault, and nothing failed before SIGTERM.
///
/// A request that failed without the server having taken it up was lost
/// with its connection: a keep-alive connection idle at the moment of the
/// stop is closed, and a request written into it just then is never read.
/// HTTP/1.1 leaves that race to the client, which may retry.
fn assert_every_accepted_request_answered(exchanges: &[Exchange], log: &[Value], sigterm: Instant) {
    let taken_up: HashSet<&str> = log
        .iter()
        .filter(|entry| entry["message"] == "request started")
        .filter_map(|entry| entry["span"]["request_id"].as_str())
        .collect();
    let after = exchanges.iter().filter(|e| e.after_sigterm).count();
    let summary = format!(
        "{} exchanges, {after} ended after SIGTERM, {} taken up by the server",
        exchanges.len(),
        taken_up.len()
    );

    for exchange in exchanges {
        let Exchange {
            request_id,
            asked,
            after_sigterm,
            outcome,
        } = exchange;
        match outcome {
            Ok(status) => assert!(
                !status.is_server_error(),
                "{asked} ({request_id}) answered {status}; {summary}"
            ),
            Err(error) => {
                assert!(
                    *after_sigterm,
                    "{asked} ({request_id}) failed before SIGTERM: {error}; {summary}"
                );
                assert!(
                    !taken_up.contains(request_id.as_str()),
                    "{asked} ({request_id}) was taken up, then failed: {error}; {summary}"
                );
            }
        }
    }
    assert!(
        exchanges
            .iter()
            .any(|e| e.after_sigterm && e.outcome.is_ok()),
        "some requests must be answered after SIGTERM for the test to mean anything; \
         {summary}, SIGTERM {:?} ago",
        sigterm.elapsed()
    );
}

/// The body of the create the shutdown test keeps in flight.
const HELD_BODY: &str = r#"{"name":"Held","email":"held@example.com"}"#;

/// Opens a connection and sends the head of a create whose body waits for
/// `100 Continue`: once that arrives, the handler is running and the
/// request is in flight until the test sends the body.
async fn start_a_create_held_open(address: std::net::SocketAddr) -> TcpStream {
    let head = format!(
        "POST /v1/users HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nexpect: 100-continue\r\nx-request-id: held\r\n\r\n",
        HELD_BODY.len()
    );
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("write head");
    wait_for_continue(&mut stream).await;
    stream
}

/// What `/ready` answered, each time on a new connection, until a
/// connection failed.
struct ReadyPolls {
    /// Each answer and when it arrived.
    answers: Vec<(Instant, StatusCode)>,
    /// When the first connection failed, and how.
    failed: (Instant, String),
}

impl ReadyPolls {
    /// Checks that `/ready` answered 200 until SIGTERM, then 503 at least
    /// once while connections were still accepted, and nothing else.
    fn assert_turned_503_before_refusing(&self, sigterm: Instant) {
        let (failed_at, error) = &self.failed;
        assert!(
            *failed_at > sigterm,
            "/ready failed before SIGTERM: {error}"
        );

        let before = self.answers.iter().filter(|(at, _)| *at < sigterm);
        let after: Vec<_> = self
            .answers
            .iter()
            .filter(|(at, _)| *at >= sigterm)
            .map(|(_, status)| status.as_u16())
            .collect();
        assert!(
            before.clone().count() > 0,
            "/ready was polled before SIGTERM"
        );
        for (_, status) in before {
            assert_eq!(*status, StatusCode::OK, "/ready before SIGTERM");
        }
        assert!(
            after.iter().all(|&status| status == 200 || status == 503),
            "/ready after SIGTERM: {after:?}"
        );
        assert!(
            after.contains(&503),
            "the listener stopped accepting {:?} after SIGTERM without /ready ever \
             answering 503 (it answered {after:?}, then: {error})",
            failed_at.duration_since(sigterm)
        );
    }
}

/// Asks `/ready` every few milliseconds, on a new connection each time, as
/// a load balancer would, until a connection fails.
async fn poll_readiness(url: String, sigterm: Arc<Sigterm>) -> ReadyPolls {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let mut answers = Vec::new();

    loop {
        let failure = match client.get(&url).send().await {
            Ok(response) => {
                answers.push((Instant::now(), response.status()));
                None
            }
            Err(error) => Some(format!("{error:?}")),
        };
        // A failure before SIGTERM ends the poll too; the caller reports it.
        if let Some(error) = failure {
            return ReadyPolls {
                answers,
                failed: (Instant::now(), error),
            };
        }

        // Slow until SIGTERM, to leave the CPU to the clients; fast after,
        // to catch a short window of 503s.
        let interval = if sigterm.sent_at().is_some() { 5 } else { 20 };
        tokio::time::sleep(Duration::from_millis(interval)).await;
    }
}

/// The user and group the least-privilege tests run the binary as: nobody
/// and nogroup on Debian.
const NOBODY: u32 = 65534;

#[tokio::test]
async fn as_nobody_it_serves_from_a_data_folder_it_owns() {
    if !running_as_root("as_nobody_it_serves_from_a_data_folder_it_owns") {
        return;
    }
    let sandbox = Sandbox::new(NOBODY);
    let database = sandbox.data.join("api.db");
    let client = reqwest::Client::new();

    let process = Process::spawn(sandbox.serve_as_nobody(&database)).await;
    let created = client
        .post(process.url("/v1/users"))
        .json(&json!({ "name": "Nobody", "email": "nobody@example.com" }))
        .send()
        .await
        .expect("sent");
    let created_status = created.status();
    let user: Value = created.json().await.expect("user JSON");
    let fetched = client
        .get(process.url(&format!("/v1/users/{}", user["id"])))
        .send()
        .await
        .expect("sent");
    let credentials = process_credentials(process.id());
    process.signal("TERM");
    let (status, _) = process.wait().await;

    assert_eq!(created_status, StatusCode::CREATED, "{user}");
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(
        credentials,
        Credentials {
            uids: vec![NOBODY; 4],
            gids: vec![NOBODY; 4],
            groups: Vec::new(),
        },
        "real, effective, saved and file-system ids, and no supplementary groups"
    );
    assert_eq!(status.code(), Some(0), "{status}");
    let owner = std::fs::metadata(&database).expect("database file").uid();
    assert_eq!(owner, NOBODY, "the database file was created by nobody");
    assert_eq!(
        sandbox.entries(),
        ["api", "data"],
        "nothing is written outside the data folder"
    );
}

#[tokio::test]
async fn as_nobody_it_refuses_to_start_when_the_data_folder_is_not_writable() {
    if !running_as_root("as_nobody_it_refuses_to_start_when_the_data_folder_is_not_writable") {
        return;
    }
    // With the file in place SQLite still needs the folder, to create the
    // WAL and shared-memory files beside it.
    let cases = [
        ("no database file yet", false),
        ("a database file nobody owns", true),
    ];

    for (situation, file_exists) in cases {
        let sandbox = Sandbox::new(0);
        let database = sandbox.data.join("api.db");
        if file_exists {
            std::fs::File::create(&database).expect("empty database file");
            std::os::unix::fs::chown(&database, Some(NOBODY), Some(NOBODY)).expect("chown");
        }

        let output = tokio::time::timeout(
            Duration::from_secs(10),
            sandbox.serve_as_nobody(&database).output(),
        )
        .await
        .expect("api exits within 10 s")
        .expect("api runs");

        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(1), "{situation}: {stdout}");
        let error: Value = stdout
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|entry| entry["level"] == "ERROR")
            .expect("an error line");
        let expected = format!("failed to open database at {}", database.display());
        let reason = format!("folder {} is not writable", sandbox.data.display());
        assert!(
            error["error"]
                .as_str()
                .is_some_and(|text| text.starts_with(&expected) && text.contains(&reason)),
            "{situation}: {error}"
        );
        assert_eq!(database.exists(), file_exists, "{situation}");
    }
}

/// Whether the test process is root, which the least-privilege tests need
/// to start the binary as another user; if not, `test` is reported as
/// unable to run.
fn running_as_root(test: &str) -> bool {
    running_as_root_to(test, "only root can start the binary as another user")
}

/// Whether this test process is root, which `why` needs; says so when not.
fn running_as_root_to(test: &str, why: &str) -> bool {
    let root = process_credentials(std::process::id()).uids[1] == 0;
    if !root {
        tools::cannot_run(test, why, "CI runs the tests as root");
    }
    root
}

/// The user and group ids a process runs with.
#[derive(Debug, PartialEq, Eq)]
struct Credentials {
    /// Real, effective, saved and file-system user ids.
    uids: Vec<u32>,
    /// Real, effective, saved and file-system group ids.
    gids: Vec<u32>,
    /// Supplementary groups.
    groups: Vec<u32>,
}

/// Reads the credentials of process `pid` from `/proc`, which needs no
/// unsafe call into libc.
fn process_credentials(pid: u32) -> Credentials {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process status");
    let ids = |field: &str| -> Vec<u32> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .expect("field present")
            .split_whitespace()
            .map(|id| id.parse().expect("numeric id"))
            .collect()
    };
    Credentials {
        uids: ids("Uid:"),
        gids: ids("Gid:"),
        groups: ids("Groups:"),
    }
}

/// A folder only root may write, holding the binary and a data folder.
struct Sandbox {
    folder: TempDir,
    /// The `api` binary, reachable by any user.
    program: PathBuf,
    /// The data folder, writable only by its owner.
    data: PathBuf,
}

impl Sandbox {
    /// A sandbox whose data folder belongs to `data_owner` (user and group).
    fn new(data_owner: u32) -> Self {
        let folder = tempfile::tempdir().expect("temporary folder");
        // A temporary folder is private (0700): nobody could not even reach
        // the data folder inside it.
        let readable = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(folder.path(), readable.clone()).expect("chmod");

        // The build's binary may lie below a folder that nobody cannot
        // enter (a clone under /root); a link, or a copy across file
        // systems, puts it where nobody can run it.
        let built = Path::new(env!("CARGO_BIN_EXE_api"));
        let program = folder.path().join("api");
        std::fs::hard_link(built, &program)
            .or_else(|_| std::fs::copy(built, &program).map(drop))
            .expect("binary linked or copied");

        let data = folder.path().join("data");
        std::fs::create_dir(&data).expect("data folder");
        std::fs::set_permissions(&data, readable).expect("chmod");
        std::os::unix::fs::chown(&data, Some(data_owner), Some(data_owner)).expect("chown");
        Self {
            folder,
            program,
            data,
        }
    }

    /// The command that serves from `database` as nobody.
    fn serve_as_nobody(&self, database: &Path) -> tokio::process::Command {
        let mut command = serve_command(api_at(&self.program), database);
        command
            .uid(NOBODY)
            .gid(NOBODY)
            .current_dir(self.folder.path());
        command
    }

    /// The names in the sandbox's top folder, sorted.
    fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.folder.path())
            .expect("sandbox listing")
            .map(|entry| {
                let entry = entry.expect("entry");
                entry.file_name().to_string_lossy().into_owned()
            })
            .collect();
        names.sort();
        names
    }
}

/// Waits, up to 10 s, until `done` holds; `what` names it in the failure.
async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "not within 10 s: {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The in-flight limit the overload test sets; its clients are ten times
/// as many.
const OVERLOAD_LIMIT: usize = 8;

/// How long the overload test keeps its clients busy.
const OVERLOAD_FOR: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_ten_times_its_limit_it_sheds_at_once_and_stays_bounded() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let mut command = serve_command(api(), &folder.path().join("api.db"));
    command.env("MAX_IN_FLIGHT", OVERLOAD_LIMIT.to_string());
    let process = Process::spawn(command).await;
    let rss_before = resident_bytes(process.id());

    // Each client writes on its own connection as fast as it is answered,
    // so that writes queue behind the writer's commits and the number in
    // flight is what the clients make it, well past the limit.
    let clients: Vec<_> = (0..OVERLOAD_LIMIT * 10)
        .map(|client| tokio::spawn(create_for(process.url("/v1/users"), client, OVERLOAD_FOR)))
        .collect();
    let mut answers = Vec::new();
    for client in clients {
        answers.extend(client.await.expect("client task"));
    }
    let rss_after = resident_bytes(process.id());

    let shed: Vec<_> = answers
        .iter()
        .filter(|answer| answer.status == 503)
        .collect();
    let created = answers.iter().filter(|answer| answer.status == 201).count();
    assert!(
        !shed.is_empty(),
        "no request was shed out of {}",
        answers.len()
    );
    assert!(created > 0, "no request was admitted");
    for answer in &answers {
        assert!(
            matches!(answer.status, 201 | 503),
            "an answer other than created or shed: {answer:?}"
        );
        assert!(
            answer.took < Duration::from_secs(1),
            "an answer took {:?}: requests queued instead of being shed",
            answer.took
        );
    }
    assert!(
        shed.iter().all(|answer| answer.overloaded),
        "every 503 is the overload answer, with Retry-After"
    );
    let grown = rss_after.saturating_sub(rss_before);
    assert!(
        grown < 32 * 1024 * 1024,
        "resident memory grew by {grown} bytes under overload"
    );
    process.signal("TERM");
    let (status, _) = process.wait().await;
    assert!(status.success(), "exit after the overload: {status}");
}

/// One answer of the overload test.
#[derive(Debug)]
struct OverloadAnswer {
    status: u16,
    took: Duration,
    /// A 503 with `Retry-After` and the `overloaded` problem code.
    overloaded: bool,
}

/// Creates users one after another on one connection for `period`.
async fn create_for(url: String, client: usize, period: Duration) -> Vec<OverloadAnswer> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .expect("client");
    let started = Instant::now();
    let mut answers = Vec::new();
    while started.elapsed() < period {
        let body = json!({
            "name": "Overload",
            "email": format!("overload-{client}-{}@example.com", answers.len()),
        });
        let sent = Instant::now();
        let response = http.post(&url).json(&body).send().await.expect("answered");
        let status = response.status().as_u16();
        let retry_after = response.headers().contains_key("retry-after");
        let problem: Option<Value> = response.json().await.ok();
        answers.push(OverloadAnswer {
            status,
            took: sent.elapsed(),
            overloaded: retry_after
                && problem.is_some_and(|problem| problem["code"] == "overloaded"),
        });
    }
    answers
}

/// The resident memory of a process, from `/proc`.
fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

/// Creates the disk-full test tries before it gives up on filling the disk.
const MAX_CREATES_TO_FILL: usize = 5_000;

#[tokio::test]
async fn a_full_disk_fails_creates_with_500_and_loses_nothing_stored() {
    let test = "a_full_disk_fails_creates_with_500_and_loses_nothing_stored";
    if !running_as_root_to(test, "only root can mount the small file system it fills") {
        return;
    }
    let Some(disk) = SmallDisk::mount("512k") else {
        tools::cannot_run(
            test,
            "mount refused a tmpfs (a container build lacks the capability)",
            "CI runs the tests as root on a machine that can mount",
        );
        return;
    };
    let database = disk.path().join("api.db");
    let process = Process::start(&database).await;
    let client = reqwest::Client::new();
    let create = |n: usize| {
        client
            .post(process.url("/v1/users"))
            .json(&json!({ "name": "n".repeat(100), "email": format!("full{n}@example.com") }))
            .send()
    };

    let mut acknowledged = HashSet::new();
    let mut refusal = None;
    for n in 0..MAX_CREATES_TO_FILL {
        let response = create(n).await.expect("sent");
        match response.status() {
            StatusCode::CREATED => {
                let user: Value = response.json().await.expect("user JSON");
                acknowledged.insert(user["id"].as_i64().expect("id"));
            }
            status => {
                refusal = Some((status, response.json::<Value>().await.expect("problem")));
                break;
            }
        }
    }
    let stored_when_full = stored_ids(&client, &process).await;
    disk.grow("16m");
    let after_growing = create(MAX_CREATES_TO_FILL).await.expect("sent").status();
    process.signal("TERM");
    let (stopped, log) = process.wait().await;

    let (status, problem) = refusal.expect("the disk filled up");
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{problem}");
    assert_eq!(problem["code"], "internal_error", "{problem}");
    assert!(!acknowledged.is_empty(), "some creates fit on the disk");
    assert_eq!(
        stored_when_full, acknowledged,
        "every acknowledged user, and no other"
    );
    assert_eq!(
        after_growing,
        StatusCode::CREATED,
        "creates work again once there is room"
    );
    assert_eq!(stopped.code(), Some(0), "{stopped}");
    assert!(
        log.iter().any(|line| line["message"] == "request failed"
            && line["error"]
                .as_str()
                .is_some_and(|error| error.contains("full"))),
        "the fault is logged with its cause"
    );
    assert_eq!(integrity_check(&database), "ok");
}

/// A tmpfs of a fixed size mounted on a temporary folder, unmounted when
/// dropped: a disk that fills up after a few hundred kilobytes.
struct SmallDisk {
    folder: TempDir,
}

impl SmallDisk {
    /// Mounts a disk of `size`; `None` when this machine will not mount.
    fn mount(size: &str) -> Option<Self> {
        let folder = tempfile::tempdir().expect("temporary folder");
        let options = format!("size={size},mode=0700");
        let path = path_text(folder.path());
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &options, "tmpfs", &path])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        // Built only once mounted, so that a failed mount is never unmounted.
        if mounted { Some(Self { folder }) } else { None }
    }

    fn path(&self) -> &Path {
        self.folder.path()
    }

    /// Makes the disk `size` large, keeping what is on it.
    fn grow(&self, size: &str) {
        let options = format!("remount,size={size}");
        run("mount", &["-o", &options, &path_text(self.path())]);
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily, so that a failed test still leaves no mount behind.
        let _ = std::process::Command::new("umount")
            .args(["-l", &path_text(self.path())])
            .status();
    }
}

fn path_text(path: &Path) -> String {
    path.to_str().expect("temporary paths are UTF-8").to_owned()
}

/// Runs `program` with `args`, which must succeed.
fn run(program: &str, args: &[&str]) {
    let status = std::process::Command::new(program)
        .args(args)
        .status()
        .unwrap_or_else(|error| panic!("{program} runs: {error}"));
    assert!(status.success(), "{program} {args:?}: {status}");
}
