//! Fuzzes the service's request handling end to end, in process: requests
//! built from fuzz input go through the real router and middleware to a
//! real SQLite file.
//!
//! The input chooses a method, a path (a route, a user id, or free text), a
//! query, a content type and a body (free bytes, or a user object whose
//! fields hold free values), so that the fuzzer reaches past JSON parsing
//! into validation and the store. For every request that `http` can
//! represent (others never get past the connection's parser), it checks:
//!
//! - the answer is never a 5xx (a panic in a handler would show as a 500);
//! - every 4xx is a problem document whose `status` is the response's;
//! - every user in a successful answer has a trimmed name of 1 to 100
//!   characters without control characters, and an address of at most 254
//!   bytes.
//!
//! The database is shared by all inputs, so users created by one input are
//! seen by later ones: that is how lists, changes and duplicates get
//! exercised.

#![no_main]

use std::{convert::Infallible, path::PathBuf, sync::LazyLock, time::Duration};

use api::{
    config::ServeConfig,
    extract::BodyLimit,
    http::{HttpLimits, with_middleware},
    routes,
    state::{AppState, Readiness},
    storage::SqliteStore,
};
use arbitrary::Arbitrary;
use axum::{
    body::Body,
    extract::Request,
    http::{HeaderValue, Method, StatusCode, header},
    response::Response,
};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use tempfile::TempDir;
use tokio::runtime::Runtime;
use tower::{ServiceExt, util::BoxCloneSyncService};

/// The body limit of the service under test: lower than the default of
/// 64 KiB, so that inputs reach it without megabytes of input.
const BODY_LIMIT: usize = 4096;

/// The service built once, and the runtime that drives it.
struct Harness {
    runtime: Runtime,
    /// The router inside the middleware, boxed so that this harness names
    /// no type of the service's own.
    service: BoxCloneSyncService<Request, Response, Infallible>,
    /// Keeps the database folder for as long as the process runs.
    _folder: TempDir,
}

static HARNESS: LazyLock<Harness> = LazyLock::new(|| {
    // Under the fuzz crate's own, git-ignored target folder rather than the
    // system's: libFuzzer exits without running destructors, so the folder
    // outlives the run, and there `cargo clean` removes it.
    let parent = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/databases");
    std::fs::create_dir_all(&parent).expect("the databases folder can be created");
    let folder = tempfile::Builder::new()
        .prefix("user_input-")
        .tempdir_in(&parent)
        .expect("a database folder");
    let database = folder.path().join("api.db");
    let store = SqliteStore::open(&database, 2).expect("the database opens");

    let state = AppState {
        store,
        readiness: Readiness::default(),
        body_limit: BodyLimit(BODY_LIMIT),
    };
    // The service's own limits but two: a smaller body limit, and a timeout
    // far past any input's time, so that a 503 can only be a fault.
    let config = ServeConfig {
        body_limit: BODY_LIMIT,
        request_timeout: Duration::from_secs(60),
        ..ServeConfig::ephemeral(&database)
    };
    let limits = HttpLimits::from_config(&config);
    let service = with_middleware(routes::router(state, None, None), limits);

    Harness {
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime"),
        service: BoxCloneSyncService::new(service),
        _folder: folder,
    }
});

/// One request, as the fuzzer describes it.
#[derive(Arbitrary, Debug)]
struct Input {
    method: MethodInput,
    path: PathInput,
    query: QueryInput,
    content_type: ContentTypeInput,
    body: BodyInput,
}

#[derive(Arbitrary, Debug)]
enum MethodInput {
    Get,
    Head,
    Post,
    Patch,
    Delete,
    Put,
    Options,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum PathInput {
    Users,
    /// `/v1/users/{id}` for a small number, which may name a stored user.
    User(u16),
    /// `/v1/users/{text}`, percent-encoded.
    UserText(String),
    Root,
    Health,
    Ready,
    Version,
    /// Any path, as written.
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum QueryInput {
    None,
    /// `limit=`, percent-encoded.
    Limit(String),
    /// `cursor=`, percent-encoded.
    Cursor(String),
    /// Any query, as written.
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum ContentTypeInput {
    None,
    Json,
    /// `application/json` followed by free text, such as parameters.
    JsonThen(String),
    /// Any header value.
    Other(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum BodyInput {
    Empty,
    Raw(Vec<u8>),
    /// A JSON object with the resource's fields, or without them, and
    /// perhaps one more.
    User {
        name: Option<FieldInput>,
        email: Option<FieldInput>,
        extra: Option<(String, FieldInput)>,
    },
    /// A valid-looking body padded past the limit by `extra` bytes.
    Oversized {
        extra: u16,
    },
}

#[derive(Arbitrary, Debug)]
enum FieldInput {
    /// `user{n}@example.com`, valid both as a name and as an address, so
    /// that users get created, changed, listed and collide.
    Known(u8),
    Text(String),
    /// `local@domain`, to reach the address rules past the `@`.
    Address {
        local: String,
        domain: String,
    },
    Number(i64),
    Bool(bool),
    Null,
    List(Vec<String>),
}

fuzz_target!(|input: Input| {
    let Some(request) = build_request(&input) else {
        return;
    };
    let method = request.method().clone();
    let harness = &*HARNESS;

    let (status, content_type, body) = harness.runtime.block_on(async {
        let response = harness
            .service
            .clone()
            .oneshot(request)
            .await
            .expect("the service is infallible");
        let status = response.status();
        let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("the response body can be read");
        (status, content_type, body)
    });

    let body = String::from_utf8_lossy(&body);
    assert!(
        status.is_success() || status.is_client_error(),
        "{input:?} answered {status}: {body}"
    );
    if status.is_client_error() {
        check_problem(status, content_type.as_ref(), &method, &body, &input);
    } else if method != Method::HEAD {
        check_users(&body, &input);
    }
});

/// The request `input` describes, if `http` can represent it.
fn build_request(input: &Input) -> Option<Request> {
    let method = match &input.method {
        MethodInput::Get => Method::GET,
        MethodInput::Head => Method::HEAD,
        MethodInput::Post => Method::POST,
        MethodInput::Patch => Method::PATCH,
        MethodInput::Delete => Method::DELETE,
        MethodInput::Put => Method::PUT,
        MethodInput::Options => Method::OPTIONS,
        MethodInput::Other(name) => Method::from_bytes(name.as_bytes()).ok()?,
    };

    let mut uri = match &input.path {
        PathInput::Users => "/v1/users".to_owned(),
        PathInput::User(id) => format!("/v1/users/{id}"),
        PathInput::UserText(text) => format!("/v1/users/{}", percent_encode(text)),
        PathInput::Root => "/".to_owned(),
        PathInput::Health => "/health".to_owned(),
        PathInput::Ready => "/ready".to_owned(),
        PathInput::Version => "/version".to_owned(),
        PathInput::Raw(path) => format!("/{path}"),
    };
    match &input.query {
        QueryInput::None => {}
        QueryInput::Limit(limit) => uri += &format!("?limit={}", percent_encode(limit)),
        QueryInput::Cursor(cursor) => uri += &format!("?cursor={}", percent_encode(cursor)),
        QueryInput::Raw(query) => uri += &format!("?{query}"),
    }

    let mut request = Request::builder().method(method).uri(uri);
    let content_type = match &input.content_type {
        ContentTypeInput::None => None,
        ContentTypeInput::Json => Some(b"application/json".to_vec()),
        ContentTypeInput::JsonThen(rest) => Some(format!("application/json{rest}").into_bytes()),
        ContentTypeInput::Other(value) => Some(value.clone()),
    };
    if let Some(value) = content_type {
        request = request.header(header::CONTENT_TYPE, HeaderValue::from_bytes(&value).ok()?);
    }
    request.body(Body::from(body_bytes(&input.body))).ok()
}

fn body_bytes(body: &BodyInput) -> Vec<u8> {
    match body {
        BodyInput::Empty => Vec::new(),
        BodyInput::Raw(bytes) => bytes.clone(),
        BodyInput::User { name, email, extra } => {
            let mut object = Map::new();
            if let Some(name) = name {
                object.insert("name".to_owned(), field_value(name));
            }
            if let Some(email) = email {
                object.insert("email".to_owned(), field_value(email));
            }
            if let Some((key, value)) = extra {
                object.insert(key.clone(), field_value(value));
            }
            Value::Object(object).to_string().into_bytes()
        }
        BodyInput::Oversized { extra } => {
            let name = "x".repeat(BODY_LIMIT + usize::from(*extra));
            format!(r#"{{"name":"{name}","email":"big@example.com"}}"#).into_bytes()
        }
    }
}

fn field_value(field: &FieldInput) -> Value {
    match field {
        FieldInput::Known(n) => Value::from(format!("user{n}@example.com")),
        FieldInput::Text(text) => Value::from(text.as_str()),
        FieldInput::Address { local, domain } => Value::from(format!("{local}@{domain}")),
        FieldInput::Number(number) => Value::from(*number),
        FieldInput::Bool(flag) => Value::from(*flag),
        FieldInput::Null => Value::Null,
        FieldInput::List(items) => Value::from(items.clone()),
    }
}

/// Every byte but ASCII letters and digits as `%XX`.
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

/// A 4xx must be a problem document; an answer to `HEAD` has its headers
/// but no body.
fn check_problem(
    status: StatusCode,
    content_type: Option<&HeaderValue>,
    method: &Method,
    body: &str,
    input: &Input,
) {
    assert_eq!(
        content_type.and_then(|value| value.to_str().ok()),
        Some("application/problem+json"),
        "{input:?} answered {status} without a problem document: {body}"
    );
    if method == Method::HEAD {
        return;
    }

    let problem: Value = serde_json::from_str(body)
        .unwrap_or_else(|error| panic!("{input:?}: the problem is not JSON ({error}): {body}"));
    assert_eq!(problem["status"], status.as_u16(), "{input:?}: {problem}");
    assert!(
        problem["code"]
            .as_str()
            .is_some_and(|code| !code.is_empty()),
        "{input:?}: {problem}"
    );
}

/// Every user in a successful JSON answer, alone or in a page, must have
/// passed validation.
fn check_users(body: &str, input: &Input) {
    let Ok(answer) = serde_json::from_str::<Value>(body) else {
        return;
    };
    let users = match answer.get("users") {
        Some(Value::Array(users)) => users.iter().collect(),
        _ if answer.get("email").is_some() => vec![&answer],
        _ => Vec::new(),
    };

    for user in users {
        let name = user["name"].as_str().expect("a name");
        let email = user["email"].as_str().expect("an email");
        assert_eq!(name, name.trim(), "{input:?}: {user}");
        assert!(
            (1..=100).contains(&name.chars().count()),
            "{input:?}: {user}"
        );
        assert!(!name.chars().any(char::is_control), "{input:?}: {user}");
        assert_eq!(email, email.trim(), "{input:?}: {user}");
        assert!(email.len() <= 254, "{input:?}: {user}");
    }
}
