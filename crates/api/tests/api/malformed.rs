//! A corpus of malformed requests, generated and written by hand, each of
//! which the service must refuse with a 4xx problem document while the
//! stored users stay exactly as they were.
//!
//! Every request goes over its own raw socket, so the server reads exactly
//! the bytes written here: an HTTP client would fold `..` segments, tidy
//! header values and refuse invalid UTF-8 in a path. The generated part
//! draws from proptest strategies with a fixed seed into a plain list,
//! rather than running a property per case, because one server and one
//! seeded database serve the whole corpus and are checked once at the end.
//! Each generator is invalid by construction (a field that could be valid
//! is paired with one that cannot be), so every case knows its status.
//!
//! `errors.rs` checks each error status with its exact detail; this file is
//! about breadth. Requests that the HTTP/1 parser refuses before the service
//! sees them cannot get a problem body and are checked apart, at the end.

use std::path::Path;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use proptest::{
    collection::vec,
    prelude::*,
    sample::{Index, select},
    strategy::ValueTree,
    test_runner::TestRunner,
};
use reqwest::StatusCode;
use rusqlite::{Connection, OpenFlags, types::Value as SqlValue};
use serde_json::{Value, json};

use crate::helpers::{TestApp, raw_exchange};

/// The smallest corpus accepted, so that a generator quietly yielding
/// nothing fails the test instead of weakening it.
const MIN_CORPUS: usize = 200;

/// Cases drawn from each generator.
const PER_GENERATOR: usize = 20;

/// The default body limit, which the server under test keeps.
const BODY_LIMIT: usize = 64 * 1024;

const USERS: &str = "/v1/users";

/// The users stored before the corpus is sent.
const SEEDED: [(&str, &str); 5] = [
    ("Ada Lovelace", "ada@example.com"),
    ("Grace Hopper", "grace@example.com"),
    ("Zoë Ångström", "zoe@example.org"),
    ("李小龍", "bruce@example.io"),
    ("Robert'); DROP TABLE users;--", "bobby@example.com"),
];

/// Strings that have broken other services when they reached a query, a
/// file path or a format call.
const INJECTIONS: [&str; 20] = [
    "' OR '1'='1",
    "1; DROP TABLE users; --",
    "1 UNION SELECT name, email FROM users",
    "\"; DELETE FROM users WHERE \"\"=\"",
    "1) OR (1=1",
    "admin'--",
    "../../../../etc/passwd",
    "..\\..\\windows\\win.ini",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/etc/passwd\0.json",
    "%s%s%s%n",
    "{0}{1}{:?}{name}",
    "%x%x%x%x",
    "${jndi:ldap:x}",
    "<script>alert(1)</script>",
    "$(rm -rf /)",
    "`id`",
    "\r\nx-injected: 1",
    "{{7*7}}",
    "\u{202e}gnp.exe",
];

#[tokio::test]
async fn every_malformed_request_is_refused_with_a_problem_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let ids = seed(&app).await;
    let before = stored_rows(&app.database);
    let corpus = corpus(&ids);

    let mut failures = Vec::new();
    for case in &corpus {
        let answer = raw_exchange(&app, &case.request).await;
        if let Err(why) = check_refusal(case, &answer) {
            failures.push(format!("{}: {why}", case.label));
        }
    }

    assert!(
        corpus.len() >= MIN_CORPUS,
        "the corpus shrank to {} cases",
        corpus.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases were not refused properly:\n{}",
        failures.len(),
        corpus.len(),
        failures.join("\n")
    );
    assert_eq!(
        stored_rows(&app.database),
        before,
        "the corpus changed stored data"
    );
    assert_eq!(app.get("/health").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn requests_the_http_parser_refuses_get_a_4xx_and_change_nothing() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let before = stored_rows(&app.database);

    let mut failures = Vec::new();
    for (label, request) in unparsable_requests() {
        let answer = raw_exchange(&app, &request).await;
        match final_response(&answer).map(|(head, _)| status_of(head)) {
            Some(Ok(status)) if status.is_client_error() => {}
            other => failures.push(format!("{label}: {other:?} in {answer:?}")),
        }
    }

    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(stored_rows(&app.database), before);
    assert_eq!(app.get("/health").await.status(), StatusCode::OK);
}

/// One request and the status it must be refused with.
#[derive(Debug)]
struct Case {
    /// What the request tries and how it starts, for failure messages.
    label: String,
    /// The request exactly as written to the socket.
    request: Vec<u8>,
    /// The status the service documents for it.
    expected: StatusCode,
}

impl Case {
    fn new(kind: &str, request: Vec<u8>, expected: StatusCode) -> Self {
        Self {
            label: format!("{kind}: {}", preview(&request)),
            request,
            expected,
        }
    }
}

/// The start of a request, escaped, short enough for one line of a report.
fn preview(request: &[u8]) -> String {
    const SHOWN: usize = 160;
    let text = String::from_utf8_lossy(&request[..request.len().min(SHOWN)]).into_owned();
    let more = if request.len() > SHOWN { "..." } else { "" };
    format!("{text:?}{more}")
}

/// The whole corpus: every generator's draws, then the hand-written cases.
fn corpus(ids: &[i64]) -> Vec<Case> {
    let mut runner = TestRunner::deterministic();
    let mut cases = Vec::new();
    for generator in generators(ids) {
        for _ in 0..PER_GENERATOR {
            let tree = generator.new_tree(&mut runner).expect("a generated case");
            cases.push(tree.current());
        }
    }
    cases.extend(hand_written(ids));
    cases
}

/// Reads the answer to `case` and says why it is not the refusal expected.
fn check_refusal(case: &Case, answer: &str) -> Result<(), String> {
    let (head, body) = final_response(answer).ok_or("no complete HTTP answer")?;
    let status = status_of(head)?;
    if !status.is_client_error() {
        return Err(format!("answered {status}, not a client error"));
    }
    if status != case.expected {
        return Err(format!("answered {status}, expected {}", case.expected));
    }

    let content_type = header_value(head, "content-type");
    if content_type != Some("application/problem+json") {
        return Err(format!("content type {content_type:?}"));
    }
    let problem: Value =
        serde_json::from_str(body).map_err(|error| format!("body is not JSON ({error})"))?;
    if problem["status"] != status.as_u16() {
        return Err(format!("problem status differs: {problem}"));
    }
    if problem["code"].as_str().is_none_or(str::is_empty) {
        return Err(format!("problem has no code: {problem}"));
    }
    Ok(())
}

/// The head and body of the last response in `answer`, past any interim
/// `1xx` responses (a `100 Continue`).
fn final_response(answer: &str) -> Option<(&str, &str)> {
    let mut rest = answer;
    loop {
        let (head, body) = rest.split_once("\r\n\r\n")?;
        if !head.starts_with("HTTP/1.1 1") {
            return Some((head, body));
        }
        rest = body;
    }
}

fn status_of(head: &str) -> Result<StatusCode, String> {
    head.split(' ')
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| format!("no status line in {head:?}"))
}

fn header_value<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// Creates the users every case could touch, and returns their ids.
async fn seed(app: &TestApp) -> Vec<i64> {
    let mut ids = Vec::new();
    for (name, email) in SEEDED {
        let user = app.created_user(name, email).await;
        ids.push(user["id"].as_i64().expect("a numeric id"));
    }
    ids
}

/// Every row of the users table and of SQLite's id counter, read from the
/// file, so that a write of any kind, even one a later write undid, shows.
fn stored_rows(database: &Path) -> Vec<Vec<SqlValue>> {
    let connection = Connection::open_with_flags(database, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("the database opens read-only");
    let mut rows = Vec::new();
    for query in [
        "SELECT * FROM users ORDER BY id",
        "SELECT name, seq FROM sqlite_sequence ORDER BY name",
    ] {
        let mut statement = connection.prepare(query).expect("a valid query");
        let columns = statement.column_count();
        let found = statement
            .query_map([], |row| (0..columns).map(|i| row.get(i)).collect())
            .expect("the query runs");
        rows.extend(found.map(|row| row.expect("a readable row")));
    }
    rows
}

// Building requests.

/// A request with `headers` (whole lines without their CRLF), then `host`,
/// `content-length` and `connection: close`.
fn request(method: &str, target: &str, headers: &[&[u8]], body: &[u8]) -> Vec<u8> {
    let mut bytes = format!("{method} {target} HTTP/1.1\r\nhost: test\r\n").into_bytes();
    for header in headers {
        bytes.extend_from_slice(header);
        bytes.extend_from_slice(b"\r\n");
    }
    let framing = format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    bytes.extend_from_slice(framing.as_bytes());
    bytes.extend_from_slice(body);
    bytes
}

/// A request whose body is declared as JSON.
fn json_request(method: &str, target: &str, body: &[u8]) -> Vec<u8> {
    request(method, target, &[b"content-type: application/json"], body)
}

fn get(target: &str) -> Vec<u8> {
    request("GET", target, &[], b"")
}

/// Every byte but ASCII letters and digits as `%XX`, so the server decodes
/// exactly `raw`; dots too, so that no client or server could read a `..`
/// segment into it.
fn percent_encode(raw: &str) -> String {
    raw.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

/// A JSON string literal.
fn quoted(text: &str) -> String {
    Value::from(text).to_string()
}

/// A body with both fields, each given as JSON text.
fn user_object(name: &str, email: &str) -> String {
    format!("{{\"name\":{name},\"email\":{email}}}")
}

/// A body with both fields, valid if `name` and `email` are.
fn user_body(name: &str, email: &str) -> String {
    user_object(&quoted(name), &quoted(email))
}

/// Where a body goes: a create, or a change of one of the seeded users.
#[derive(Debug, Clone)]
struct Target {
    method: &'static str,
    path: String,
}

impl Target {
    fn json(&self, body: &[u8]) -> Vec<u8> {
        json_request(self.method, &self.path, body)
    }

    fn with_content_type(&self, content_type: &str, body: &[u8]) -> Vec<u8> {
        let header = format!("content-type: {content_type}");
        request(self.method, &self.path, &[header.as_bytes()], body)
    }
}

fn body_target(ids: &[i64]) -> impl Strategy<Value = Target> + use<> {
    prop_oneof![
        Just(Target {
            method: "POST",
            path: USERS.to_owned(),
        }),
        select(ids.to_vec()).prop_map(|id| Target {
            method: "PATCH",
            path: format!("{USERS}/{id}"),
        }),
    ]
}

// Generators. Each yields requests that cannot be valid, whatever it draws.

fn generators(ids: &[i64]) -> Vec<BoxedStrategy<Case>> {
    vec![
        truncated_json(ids),
        trailing_garbage(ids),
        wrong_types(ids),
        missing_fields(ids),
        unknown_fields(ids),
        huge_strings(ids),
        invalid_utf8(ids),
        control_characters(ids),
        injections(ids),
        invalid_ids(),
        invalid_limits(),
        invalid_cursors(),
        wrong_methods(ids),
        foreign_content_types(ids),
        bodies_over_the_limit(ids),
    ]
}

fn valid_name() -> impl Strategy<Value = String> {
    "[A-Z][a-z]{1,10}( [A-Z][a-z]{1,10})?"
}

fn valid_email() -> impl Strategy<Value = String> {
    "[a-z]{1,8}(\\.[a-z]{1,8})?@[a-z]{2,8}\\.(com|org|io)"
}

/// A JSON value that is not a string (nor null, which reads as absent).
fn non_string() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        (-1e12..1e12_f64).prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        vec(any::<i32>(), 0..4).prop_map(Value::from),
        valid_name().prop_map(|name| json!({ "first": name })),
    ]
}

/// A strict prefix of a valid body: never a whole JSON value.
fn truncated_json(ids: &[i64]) -> BoxedStrategy<Case> {
    (
        body_target(ids),
        valid_name(),
        valid_email(),
        any::<Index>(),
    )
        .prop_map(|(target, name, email, cut)| {
            let body = user_body(&name, &email);
            let body = &body.as_bytes()[..cut.index(body.len())];
            Case::new(
                "a body cut short",
                target.json(body),
                StatusCode::BAD_REQUEST,
            )
        })
        .boxed()
}

/// A valid body followed by something other than whitespace.
fn trailing_garbage(ids: &[i64]) -> BoxedStrategy<Case> {
    let garbage = select(vec![
        " x",
        "}",
        "{}",
        ",",
        "]",
        "\"",
        " 1",
        " null",
        "\0",
        " {\"name\":\"Eve\"}",
    ]);
    (body_target(ids), valid_name(), valid_email(), garbage)
        .prop_map(|(target, name, email, garbage)| {
            let body = user_body(&name, &email) + garbage;
            let request = target.json(body.as_bytes());
            Case::new(
                "a body with trailing bytes",
                request,
                StatusCode::BAD_REQUEST,
            )
        })
        .boxed()
}

/// One field holding a number, boolean, array or object.
fn wrong_types(ids: &[i64]) -> BoxedStrategy<Case> {
    let fields = (valid_name(), valid_email(), non_string(), any::<bool>());
    (body_target(ids), fields)
        .prop_map(|(target, (name, email, wrong, in_name))| {
            let body = if in_name {
                json!({ "name": wrong, "email": email })
            } else {
                json!({ "name": name, "email": wrong })
            };
            let request = target.json(body.to_string().as_bytes());
            Case::new(
                "a field of the wrong type",
                request,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        })
        .boxed()
}

/// A create without one of its fields, or a change without any (absent or
/// null).
fn missing_fields(ids: &[i64]) -> BoxedStrategy<Case> {
    let create = (valid_name(), valid_email(), any::<bool>()).prop_map(|(name, email, keep)| {
        let body = if keep {
            json!({ "name": name })
        } else {
            json!({ "email": email, "name": null })
        };
        json_request("POST", USERS, body.to_string().as_bytes())
    });
    let change = (select(ids.to_vec()), any::<bool>()).prop_map(|(id, nulls)| {
        let body = if nulls {
            json!({ "name": null, "email": null })
        } else {
            json!({})
        };
        json_request(
            "PATCH",
            &format!("{USERS}/{id}"),
            body.to_string().as_bytes(),
        )
    });
    prop_oneof![create, change]
        .prop_map(|request| Case::new("a missing field", request, StatusCode::UNPROCESSABLE_ENTITY))
        .boxed()
}

/// A field the resource does not have, first or last, beside valid ones.
fn unknown_fields(ids: &[i64]) -> BoxedStrategy<Case> {
    let key = "[A-Za-z_$][A-Za-z0-9_$-]{0,15}".prop_filter("a field the body has", |key| {
        key != "name" && key != "email"
    });
    let value = prop_oneof![
        non_string(),
        valid_name().prop_map(Value::from),
        Just(Value::Null)
    ];
    let fields = (valid_name(), valid_email(), key, value, any::<bool>());
    (body_target(ids), fields)
        .prop_map(|(target, (name, email, key, value, first))| {
            let known = format!("\"name\":{},\"email\":{}", quoted(&name), quoted(&email));
            let unknown = format!("{}:{value}", quoted(&key));
            let body = if first {
                format!("{{{unknown},{known}}}")
            } else {
                format!("{{{known},{unknown}}}")
            };
            let request = target.json(body.as_bytes());
            Case::new(
                "an unknown field",
                request,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        })
        .boxed()
}

/// A name of 101 or more characters (of one to four bytes each, none of
/// them whitespace, which trimming would remove), or an address whose local
/// part or domain label is too long.
fn huge_strings(ids: &[i64]) -> BoxedStrategy<Case> {
    let characters = select(vec!['x', 'é', '字', '😀']);
    let long_name = vec(characters, 101..4000).prop_map(String::from_iter);
    let long_email = prop_oneof![
        (65..20_000_usize).prop_map(|n| format!("{}@example.com", "a".repeat(n))),
        (64..20_000_usize).prop_map(|n| format!("ada@{}.com", "b".repeat(n))),
    ];
    let bodies = prop_oneof![
        (long_name, valid_email()).prop_map(|(name, email)| user_body(&name, &email)),
        (valid_name(), long_email).prop_map(|(name, email)| user_body(&name, &email)),
    ];
    (body_target(ids), bodies)
        .prop_map(|(target, body)| {
            let request = target.json(body.as_bytes());
            Case::new("a huge string", request, StatusCode::UNPROCESSABLE_ENTITY)
        })
        .boxed()
}

/// A valid ASCII body with one byte inserted that no UTF-8 text can hold
/// there: a continuation byte with no lead, or a byte never used.
fn invalid_utf8(ids: &[i64]) -> BoxedStrategy<Case> {
    let byte = prop_oneof![0x80_u8..=0xBF, 0xC0_u8..=0xC1, 0xF5_u8..=0xFF];
    (
        body_target(ids),
        valid_name(),
        valid_email(),
        byte,
        any::<Index>(),
    )
        .prop_map(|(target, name, email, byte, at)| {
            let mut body = user_body(&name, &email).into_bytes();
            body.insert(at.index(body.len() + 1), byte);
            Case::new("invalid UTF-8", target.json(&body), StatusCode::BAD_REQUEST)
        })
        .boxed()
}

/// A control character inside the name or the address, escaped or raw.
/// Raw characters below U+0020 are not valid JSON (400); escaped, or from
/// U+007F to U+009F, they are JSON the fields refuse (422).
fn control_characters(ids: &[i64]) -> BoxedStrategy<Case> {
    let control = prop_oneof![0_u32..0x20, 0x7F_u32..=0x9F];
    let fields = (
        valid_name(),
        valid_email(),
        control,
        any::<bool>(),
        any::<bool>(),
    );
    (body_target(ids), fields)
        .prop_map(|(target, (name, email, control, escaped, in_name))| {
            let character = char::from_u32(control).expect("a control character");
            let inside = if escaped {
                format!("\\u{control:04x}")
            } else {
                character.to_string()
            };
            let body = if in_name {
                user_object(&format!("\"A{inside}da\""), &quoted(&email))
            } else {
                user_object(&quoted(&name), &format!("\"ad{inside}a@example.com\""))
            };
            let expected = if !escaped && control < 0x20 {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            Case::new(
                "a control character",
                target.json(body.as_bytes()),
                expected,
            )
        })
        .boxed()
}

/// An injection string where the service reads input: the id, the list's
/// parameters, a field beside an invalid one, a field name.
fn injections(ids: &[i64]) -> BoxedStrategy<Case> {
    let payload = || select(INJECTIONS.to_vec());
    let method = select(vec!["GET", "PATCH", "DELETE"]);
    let invalid_field = StatusCode::UNPROCESSABLE_ENTITY;
    let spots = prop_oneof![
        (payload(), method).prop_map(|(payload, method)| {
            let path = format!("{USERS}/{}", percent_encode(payload));
            (
                json_request(method, &path, b"{\"name\":\"Changed\"}"),
                StatusCode::BAD_REQUEST,
            )
        }),
        payload().prop_map(|payload| {
            let path = format!("{USERS}?limit={}", percent_encode(payload));
            (get(&path), StatusCode::BAD_REQUEST)
        }),
        payload().prop_map(|payload| {
            let path = format!("{USERS}?cursor={}", percent_encode(payload));
            (get(&path), StatusCode::BAD_REQUEST)
        }),
        (body_target(ids), payload()).prop_map(move |(target, payload)| {
            let body = user_body(payload, "not an address");
            (target.json(body.as_bytes()), invalid_field)
        }),
        payload().prop_map(move |payload| {
            let body = json!({ "email": payload }).to_string();
            (json_request("POST", USERS, body.as_bytes()), invalid_field)
        }),
        (body_target(ids), payload()).prop_map(move |(target, payload)| {
            let body = format!("{{{}:1,\"name\":\"Eve\"}}", quoted(payload));
            (target.json(body.as_bytes()), invalid_field)
        }),
    ];
    spots
        .prop_map(|(request, expected)| Case::new("an injection string", request, expected))
        .boxed()
}

/// Text that `UserId` refuses: anything holding a character other than an
/// ASCII digit, zeros, and numbers past `i64::MAX`.
fn invalid_id() -> impl Strategy<Value = String> {
    let past_max =
        |extra: u64| (u128::from(i64::MAX.unsigned_abs()) + u128::from(extra)).to_string();
    prop_oneof![
        "[0-9]{0,4}[^0-9][^/]{0,4}",
        "0{1,6}",
        (1_u64..).prop_map(past_max),
        (1_u64..).prop_map(|n| format!("-{n}")),
    ]
}

fn invalid_ids() -> BoxedStrategy<Case> {
    let method = select(vec!["GET", "PATCH", "DELETE"]);
    (invalid_id(), method)
        .prop_map(|(id, method)| {
            let path = format!("{USERS}/{}", percent_encode(&id));
            let request = json_request(method, &path, b"{\"name\":\"Changed\"}");
            Case::new("an invalid id", request, StatusCode::BAD_REQUEST)
        })
        .boxed()
}

/// Text that is not an integer from 1 to 500 as `u32` parses it.
fn invalid_limits() -> BoxedStrategy<Case> {
    prop_oneof![
        Just("0".to_owned()),
        (501_u64..).prop_map(|n| n.to_string()),
        "-[0-9]{1,5}",
        "[0-9]{1,3}[^0-9]{1,2}",
        "[^0-9+][0-9]{0,3}",
    ]
    .prop_map(|limit| {
        let request = get(&format!("{USERS}?limit={}", percent_encode(&limit)));
        Case::new("an invalid limit", request, StatusCode::BAD_REQUEST)
    })
    .boxed()
}

/// Tokens the service cannot have issued: a length no unpadded base64 text
/// has, a character outside its alphabet, or well-encoded text that is not a
/// version 1 cursor on a valid id.
fn invalid_cursors() -> BoxedStrategy<Case> {
    let cursor = prop_oneof![
        "([A-Za-z0-9_-]{4}){0,6}[A-Za-z0-9_-]",
        "[A-Za-z0-9_-]{0,8}[^A-Za-z0-9_-][A-Za-z0-9_-]{0,8}",
        invalid_id().prop_map(|id| URL_SAFE_NO_PAD.encode(format!("v1:{id}"))),
        (1_u32..).prop_map(|n| URL_SAFE_NO_PAD.encode(format!("v2:{n}"))),
    ];
    let limit = proptest::option::of(1_u32..=500);
    (cursor, limit)
        .prop_map(|(cursor, limit)| {
            let mut target = format!("{USERS}?cursor={}", percent_encode(&cursor));
            if let Some(limit) = limit {
                target.push_str(&format!("&limit={limit}"));
            }
            Case::new("an invalid cursor", get(&target), StatusCode::BAD_REQUEST)
        })
        .boxed()
}

/// A method the route does not serve: standard, lower case, or made up.
fn wrong_methods(ids: &[i64]) -> BoxedStrategy<Case> {
    let method = prop_oneof![
        select(vec![
            "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"
        ])
        .prop_map(str::to_owned),
        select(vec![
            "get", "post", "Patch", "delete", "M-SEARCH", "PROPFIND"
        ])
        .prop_map(str::to_owned),
        "[A-Z]{3,9}",
    ];
    let path = prop_oneof![
        Just(USERS.to_owned()),
        select(ids.to_vec()).prop_map(|id| format!("{USERS}/{id}")),
    ];
    (method, path, valid_name(), valid_email())
        .prop_filter("a method the route serves", |(method, path, ..)| {
            let served: &[&str] = if path == USERS {
                &["GET", "HEAD", "POST", "CONNECT"]
            } else {
                &["GET", "HEAD", "PATCH", "DELETE", "CONNECT"]
            };
            !served.contains(&method.as_str())
        })
        .prop_map(|(method, path, name, email)| {
            let body = user_body(&name, &email);
            let request = json_request(&method, &path, body.as_bytes());
            Case::new(
                "a method the route lacks",
                request,
                StatusCode::METHOD_NOT_ALLOWED,
            )
        })
        .boxed()
}

/// A valid body declared as something other than `application/json` or
/// `application/*+json`.
fn foreign_content_types(ids: &[i64]) -> BoxedStrategy<Case> {
    let essence = prop_oneof![
        "(text|image|audio|multipart|font)/[a-z0-9.+-]{1,12}",
        "application/[a-z0-9.-]{1,12}".prop_filter("JSON", |essence| essence != "application/json"),
        "[a-z]{1,11}/json".prop_filter("JSON", |essence| essence != "application/json"),
        "application/[a-z.-]{0,4}json[a-z0-9.-]{1,4}",
    ];
    let parameters = proptest::option::of("; ?charset=(utf-8|latin1|utf-16)");
    (
        body_target(ids),
        essence,
        parameters,
        valid_name(),
        valid_email(),
    )
        .prop_map(|(target, essence, parameters, name, email)| {
            let content_type = essence + parameters.as_deref().unwrap_or_default();
            let body = user_body(&name, &email);
            let request = target.with_content_type(&content_type, body.as_bytes());
            Case::new(
                "a foreign content type",
                request,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            )
        })
        .boxed()
}

/// A body of a valid shape, up to 16 KiB over the limit.
fn bodies_over_the_limit(ids: &[i64]) -> BoxedStrategy<Case> {
    (
        body_target(ids),
        (BODY_LIMIT + 1)..=(BODY_LIMIT + 16 * 1024),
    )
        .prop_map(|(target, size)| {
            let request = target.json(body_of_size(size).as_bytes());
            Case::new(
                "a body over the limit",
                request,
                StatusCode::PAYLOAD_TOO_LARGE,
            )
        })
        .boxed()
}

/// A user body of exactly `size` bytes, its name padded out.
fn body_of_size(size: usize) -> String {
    let frame = user_body("", "big@example.com");
    user_body(&"x".repeat(size - frame.len()), "big@example.com")
}

// Hand-written cases: the shapes generators would rarely hit.

fn hand_written(ids: &[i64]) -> Vec<Case> {
    let mut cases = Vec::new();
    cases.extend(syntax_errors());
    cases.extend(shape_errors(ids));
    cases.extend(content_type_oddities(ids));
    cases.extend(header_oddities());
    cases.extend(path_and_query_oddities(ids));
    cases
}

fn syntax_errors() -> Vec<Case> {
    let deep = "[".repeat(10_000);
    let bodies: [&[u8]; 16] = [
        b"{\"name\": \"Ada\" \"email\": \"ada@example.com\"}",
        b"{name: \"Ada\", email: \"ada@example.com\"}",
        b"{\"name\": \"Ada\", \"email\": \"ada@example.com\"",
        b"{\"name\": \"Ada\", \"email\": \"ada@example.com\"}}",
        b"{\"name\": \"Ada\", \"email\": \"ada@example.com\", }",
        b"{\"name\": NaN, \"email\": \"ada@example.com\"}",
        b"{\"name\": \"Ada\\x\", \"email\": \"ada@example.com\"}",
        b"{\"name\": \"\\ud800\", \"email\": \"ada@example.com\"}",
        b"{\"name\": \"Ada\n\", \"email\": \"ada@example.com\"}",
        b"{\"na\xffme\": \"Ada\", \"email\": \"ada@example.com\"}",
        b"\xef\xbb\xbf{\"name\": \"Ada\", \"email\": \"ada@example.com\"}",
        b"/* a comment */ {\"name\": \"Ada\", \"email\": \"ada@example.com\"}",
        b"{\"name\": 1e999999, \"email\": \"ada@example.com\"}",
        b"   ",
        b"\x00\x00\x00\x00",
        deep.as_bytes(),
    ];
    bodies
        .into_iter()
        .map(|body| {
            let request = json_request("POST", USERS, body);
            Case::new("a JSON syntax error", request, StatusCode::BAD_REQUEST)
        })
        .collect()
}

fn shape_errors(ids: &[i64]) -> Vec<Case> {
    let user = format!("{USERS}/{}", ids[0]);
    let deep = format!("{{\"name\":{}", "[".repeat(1000));
    let cases: [(&str, String); 10] = [
        (
            "POST",
            r#"{"name":"Ada","name":"Bob","email":"bob@example.com"}"#.into(),
        ),
        (
            "POST",
            r#"{"name":"Eve","email":"eve@example.com","created_at":"2000-01-01T00:00:00Z"}"#
                .into(),
        ),
        (
            "POST",
            r#"{"name":123456789012345678901234567890,"email":"big@example.com"}"#.into(),
        ),
        (
            "POST",
            r#"{"na\u0000me":"Eve","email":"eve@example.com"}"#.into(),
        ),
        ("POST", "123".into()),
        ("POST", "true".into()),
        ("PATCH", "null".into()),
        ("PATCH", "[]".into()),
        ("PATCH", r#"{"email":"ADA@EXAMPLE.COM","name":""}"#.into()),
        ("POST", deep),
    ];
    cases
        .into_iter()
        .map(|(method, body)| {
            let path = if method == "POST" { USERS } else { &user };
            let request = json_request(method, path, body.as_bytes());
            Case::new(
                "JSON of the wrong shape",
                request,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        })
        .collect()
}

/// Content types that are not JSON however close they come, and JSON ones
/// with odd spellings or parameters, which the service reads as JSON.
fn content_type_oddities(ids: &[i64]) -> Vec<Case> {
    let user = format!("{USERS}/{}", ids[1]);
    let post = |headers: &[&[u8]], body: &[u8]| request("POST", USERS, headers, body);
    let valid = br#"{"name":"Eve","email":"eve@example.com"}"#;
    let truncated = b"{\"name\"";
    let long_parameter = format!("content-type: application/json; x={}", "y".repeat(8192));

    let unsupported = [
        request("PATCH", &user, &[], valid),
        post(&[b"content-type: application/json\xff"], valid),
        post(&[b"content-type: "], valid),
        post(&[b"content-type: application/json, text/plain"], valid),
        post(
            &[
                b"content-type: text/plain",
                b"content-type: application/json",
            ],
            valid,
        ),
    ];
    let unprocessable = [
        post(
            &[b"content-type: application/json; charset=utf-16"],
            b"{\"name\":1}",
        ),
        request(
            "PATCH",
            &user,
            &[b"content-type: APPLICATION/JSON"],
            b"{\"email\":\"x\"}",
        ),
        post(
            &[b"content-type: application/json;;;"],
            b"{\"name\":\"Eve\"}",
        ),
        post(&[b"content-type: application/problem+json"], b"{}"),
    ];
    let malformed = [
        post(
            &[
                b"content-type: application/json",
                b"content-type: text/plain",
            ],
            truncated,
        ),
        post(&[long_parameter.as_bytes()], truncated),
    ];

    let kind = "an odd content type";
    let mut cases = Vec::new();
    cases.extend(unsupported.map(|r| Case::new(kind, r, StatusCode::UNSUPPORTED_MEDIA_TYPE)));
    cases.extend(unprocessable.map(|r| Case::new(kind, r, StatusCode::UNPROCESSABLE_ENTITY)));
    cases.extend(malformed.map(|r| Case::new(kind, r, StatusCode::BAD_REQUEST)));
    cases
}

fn header_oddities() -> Vec<Case> {
    let truncated = b"{\"name\":\"Eve\",\"email\":";
    // Large, but well under the limit on a whole request head, past which
    // the connection answers 431 before the service sees the request.
    let filler = format!("x-filler: {}", "f".repeat(8 * 1024));
    let request_id = format!("x-request-id: {}", "r".repeat(4 * 1024));
    let many: Vec<String> = (0..90).map(|i| format!("x-header-{i}: {i}")).collect();
    let mut headers: Vec<Vec<&[u8]>> = vec![
        vec![filler.as_bytes()],
        vec![request_id.as_bytes()],
        many.iter().map(|line| line.as_bytes()).collect(),
        vec![b"x-note: caf\xe9 \x80\xff"],
        vec![b"accept: application/xml"],
        vec![b"content-encoding: gzip"],
        vec![b"expect: 100-continue"],
    ];
    for lines in &mut headers {
        lines.insert(0, b"content-type: application/json");
    }
    let mut cases: Vec<Case> = headers
        .iter()
        .map(|lines| {
            let request = request("POST", USERS, lines, truncated);
            Case::new("an odd header", request, StatusCode::BAD_REQUEST)
        })
        .collect();

    let chunk = "a".repeat(0x8000);
    let head = "POST /v1/users HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
                transfer-encoding: chunked\r\nconnection: close\r\n\r\n";
    let framed: [(&str, String, StatusCode); 5] = [
        (
            "a bad chunk size",
            format!("{head}zz\r\n{{}}\r\n0\r\n\r\n"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "chunks of broken JSON",
            format!("{head}5\r\n{{\"nam\r\n0\r\n\r\n"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "chunks over the limit",
            format!("{head}8000\r\n{chunk}\r\n8000\r\n{chunk}\r\n1\r\na\r\n0\r\n\r\n"),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "a content length shorter than the body",
            "POST /v1/users HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
             content-length: 5\r\nconnection: close\r\n\r\n\
             {\"name\":\"Eve\",\"email\":\"eve@example.com\"}"
                .to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "an HTTP/1.0 request",
            "POST /v1/users HTTP/1.0\r\ncontent-type: application/json\r\n\
             content-length: 7\r\n\r\n{\"name\""
                .to_owned(),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (kind, request, expected) in framed {
        cases.push(Case::new(kind, request.into_bytes(), expected));
    }
    cases.push(Case::new(
        "an absolute-form target",
        json_request("POST", "http://test/v1/users", truncated),
        StatusCode::BAD_REQUEST,
    ));
    cases
}

fn path_and_query_oddities(ids: &[i64]) -> Vec<Case> {
    let bad = StatusCode::BAD_REQUEST;
    let not_found = StatusCode::NOT_FOUND;
    let not_allowed = StatusCode::METHOD_NOT_ALLOWED;
    let zero = URL_SAFE_NO_PAD.encode("v1:0");
    let past_max = URL_SAFE_NO_PAD.encode("v1:9223372036854775808");
    let user = format!("{USERS}/{}", ids[0]);
    let targets: Vec<(&str, String, StatusCode)> = vec![
        ("GET", "/v1/users/../../etc/passwd".into(), not_found),
        ("GET", "/v1/users/..".into(), bad),
        (
            "GET",
            "/v1/users/%2e%2e%2f%2e%2e%2fetc%2fpasswd".into(),
            bad,
        ),
        ("GET", "/v1/users/1%00".into(), bad),
        ("GET", "/v1/users/%FF".into(), bad),
        ("GET", "/v1/users/%".into(), bad),
        ("GET", "/v1/users/+1".into(), bad),
        ("GET", "/v1/users/0x1".into(), bad),
        ("GET", "/v1/users/1e3".into(), bad),
        ("DELETE", "/v1/users/%D9%A1".into(), bad),
        ("DELETE", "/v1/users/9223372036854775807".into(), not_found),
        ("GET", "/v1/users/".into(), not_found),
        ("GET", "/v1/users//1".into(), not_found),
        ("GET", "/V1/USERS".into(), not_found),
        ("GET", format!("{user}/"), not_found),
        ("GET", "/v1/users?limit=5&limit=6".into(), bad),
        ("GET", "/v1/users?cursor=a&cursor=b".into(), bad),
        ("GET", "/v1/users?limit=%FF".into(), bad),
        ("GET", "/v1/users?limit=".into(), bad),
        ("GET", "/v1/users?limit=1e3".into(), bad),
        ("GET", "/v1/users?limit=5%00".into(), bad),
        ("GET", "/v1/users?limit=4294967296".into(), bad),
        ("GET", format!("/v1/users?limit=500&cursor={zero}"), bad),
        ("GET", format!("/v1/users?cursor={past_max}"), bad),
        ("PUT", USERS.into(), not_allowed),
        ("TRACE", user.clone(), not_allowed),
        ("OPTIONS", USERS.into(), not_allowed),
        ("get", USERS.into(), not_allowed),
        ("POST", "/metrics".into(), not_allowed),
        ("DELETE", "/metrics".into(), not_allowed),
    ];
    targets
        .into_iter()
        .map(|(method, target, expected)| {
            let request = json_request(method, &target, b"{\"name\":\"Changed\"}");
            Case::new("an odd path or query", request, expected)
        })
        .collect()
}

/// Requests broken at the HTTP/1 level, which the connection's parser
/// answers itself before any of the service's code runs.
fn unparsable_requests() -> Vec<(&'static str, Vec<u8>)> {
    let body = "{\"name\":\"Eve\",\"email\":\"eve@example.com\"}";
    let post = |framing: &str| {
        format!(
            "POST /v1/users HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
             {framing}connection: close\r\n\r\n{body}"
        )
        .into_bytes()
    };
    let too_many: String = (0..150).map(|i| format!("x-header-{i}: {i}\r\n")).collect();
    let too_large = format!("x-filler: {}\r\n", "f".repeat(512 * 1024));
    vec![
        (
            "a content length that is not a number",
            post("content-length: abc\r\n"),
        ),
        ("a negative content length", post("content-length: -1\r\n")),
        (
            "two content lengths",
            post(&format!(
                "content-length: 3\r\ncontent-length: {}\r\n",
                body.len()
            )),
        ),
        (
            "a NUL in a header value",
            post(&format!(
                "content-length: {}\r\nx-note: a\0b\r\n",
                body.len()
            )),
        ),
        (
            "a space in a header name",
            post(&format!("content-length: {}\r\nx note: a\r\n", body.len())),
        ),
        (
            "too many headers",
            post(&format!("content-length: {}\r\n{too_many}", body.len())),
        ),
        (
            "a header section too large",
            post(&format!("content-length: {}\r\n{too_large}", body.len())),
        ),
        (
            "a space in the target",
            b"GET /v1/users/1 2 HTTP/1.1\r\nhost: test\r\n\r\n".to_vec(),
        ),
        (
            "a raw byte 0xFF in the target",
            b"GET /v1/users/\xff HTTP/1.1\r\nhost: test\r\n\r\n".to_vec(),
        ),
        (
            "an unknown HTTP version",
            b"GET /v1/users HTTP/1.7\r\nhost: test\r\n\r\n".to_vec(),
        ),
        (
            "a request line without a target",
            b"GET HTTP/1.1\r\nhost: test\r\n\r\n".to_vec(),
        ),
        (
            "not HTTP at all",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(),
        ),
    ]
}
