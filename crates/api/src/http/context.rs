//! The outermost middleware of the service: every request gets an id, an
//! answer even when its handler panics, and a log line when the service
//! fails it; with debug logging on, also a tracing span that carries the id
//! and a line when it starts and ends.
//!
//! tower-http has a layer for each of these (`SetRequestId`, `Trace`,
//! `PropagateRequestId`, `CatchPanic`), and the service used them. Stacked,
//! they cost the static route about a fifth of its throughput: each wraps
//! the response body in a type of its own (which axum then boxes again),
//! the trace layer reads the clock twice per request even when nothing is
//! logged, and the request id is written into the request's headers only to
//! be read back by the span. This one service does the same work with none
//! of that: the body passes through untouched, the clock is read only when
//! the end-of-request line will be written, and the id goes straight to the
//! span and the response.
//!
//! The span is at debug level, as tower-http's is by default: an enabled
//! span costs about a microsecond a request (the subscriber stores it and
//! formats its fields), a sixth of what the whole service spends on a
//! static request. At the default level the lines that matter inside a
//! request are its failures, and those are written here, where the id,
//! method and path are at hand: whoever answers a request with a server
//! fault puts a [`Failure`] on the response instead of logging it.
//!
//! The id is the client's `x-request-id` when it is a reasonable one (see
//! [`MAX_REQUEST_ID_LEN`]), otherwise a new UUID, so that a client cannot
//! fill the logs with a header of many kilobytes.

use std::{
    any::Any,
    convert::Infallible,
    future::Future,
    panic::{AssertUnwindSafe, catch_unwind},
    pin::Pin,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::{
    extract::Request,
    http::{HeaderName, HeaderValue, Method, Uri},
    response::{IntoResponse, Response},
};
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use tracing::{Level, Span};
use uuid::Uuid;

use crate::error::ApiError;

/// The header a request id is read from and echoed in.
pub(crate) const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The longest client-supplied request id that is kept; a longer one, or
/// one with characters other than visible ASCII, is replaced by a new id.
///
/// Long enough for any id scheme in use (a UUID is 36, a W3C trace parent
/// 55), short enough that a log line stays a line.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// Why the service failed a request, carried on its response to
/// [`RequestContext`], which logs it with the request's id, method and path
/// and takes it off before the response leaves.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    /// A server fault, logged as an error with its cause chain.
    Fault(String),
    /// The request outlived its time limit, logged as a warning.
    TimedOut(Duration),
}

/// Wraps a service in [`RequestContext`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RequestContextLayer;

impl<S> Layer<S> for RequestContextLayer {
    type Service = RequestContext<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestContext { inner }
    }
}

/// A service that gives each request an id (and a span, at debug level),
/// logs the failures its responses carry, and turns a panic of the inner
/// service into a 500 answer.
#[derive(Debug, Clone)]
pub struct RequestContext<S> {
    inner: S,
}

impl<S> Service<Request> for RequestContext<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ContextFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let request_id = request_id(&request);
        // Kept for the failure line; for the methods and paths hyper parses,
        // both clones are a copy and a reference count, not an allocation.
        let (method, uri) = (request.method().clone(), request.uri().clone());
        let span = tracing::debug_span!(
            "request",
            method = %request.method(),
            path = request.uri().path(),
            // Visible ASCII by construction, so never the empty fallback.
            request_id = request_id.to_str().unwrap_or_default(),
        );

        let entered = span.enter();
        tracing::debug!("request started");
        let started = tracing::enabled!(Level::DEBUG).then(Instant::now);
        // A handler may panic before its future exists, in the call itself.
        let state = match catch_unwind(AssertUnwindSafe(|| self.inner.call(request))) {
            Ok(inner) => State::Running { inner },
            Err(payload) => State::Panicked {
                payload: Some(payload),
            },
        };
        drop(entered);

        ContextFuture {
            state,
            span,
            request_id: Some(request_id),
            started,
            method,
            uri,
        }
    }
}

/// The client's request id if it is acceptable, otherwise a new one.
fn request_id(request: &Request) -> HeaderValue {
    if let Some(given) = request.headers().get(REQUEST_ID_HEADER)
        && is_acceptable_request_id(given.as_bytes())
    {
        return given.clone();
    }

    // Encoded on the stack, so the header value is the only allocation.
    let mut buffer = [0; uuid::fmt::Hyphenated::LENGTH];
    let text = Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
    HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static("unknown"))
}

/// Whether a client's request id is short and plain enough to keep.
fn is_acceptable_request_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len()) && id.iter().all(u8::is_ascii_graphic)
}

pin_project! {
    /// The answer of [`RequestContext`]: the inner answer with the request
    /// id added, or a 500 when the inner service panicked.
    pub struct ContextFuture<F> {
        #[pin]
        state: State<F>,
        span: Span,
        // Taken when the answer is ready.
        request_id: Option<HeaderValue>,
        // Set only when the end-of-request line is logged.
        started: Option<Instant>,
        method: Method,
        uri: Uri,
    }
}

pin_project! {
    #[project = StateProjection]
    enum State<F> {
        Running { #[pin] inner: F },
        Panicked { payload: Option<Box<dyn Any + Send + 'static>> },
    }
}

impl<F> Future for ContextFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();

        let mut response = match this.state.project() {
            StateProjection::Running { inner } => {
                match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
                    Ok(Poll::Pending) => return Poll::Pending,
                    Ok(Poll::Ready(Ok(response))) => response,
                    Err(payload) => answer_panic(payload.as_ref()),
                }
            }
            StateProjection::Panicked { payload } => match payload.take() {
                Some(payload) => answer_panic(payload.as_ref()),
                None => ApiError::Panic("polled after a panic".to_owned()).into_response(),
            },
        };

        if let Some(request_id) = this.request_id.take() {
            if let Some(failure) = response.extensions_mut().remove::<Failure>() {
                log_failure(&failure, &request_id, this.method, this.uri);
            }
            response.headers_mut().insert(REQUEST_ID_HEADER, request_id);
        }
        if let Some(started) = this.started {
            let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            tracing::debug!(
                status = response.status().as_u16(),
                latency_us,
                "request finished"
            );
        }
        Poll::Ready(Ok(response))
    }
}

/// Writes the line for a failed request.
fn log_failure(failure: &Failure, request_id: &HeaderValue, method: &Method, uri: &Uri) {
    let request_id = request_id.to_str().unwrap_or_default();
    let path = uri.path();
    match failure {
        Failure::Fault(cause) => {
            tracing::error!(request_id, %method, path, error = cause, "request failed");
        }
        Failure::TimedOut(limit) => {
            tracing::warn!(request_id, %method, path, timeout = ?limit, "request timed out");
        }
    }
}

/// The 500 answer for a panic, whose message the failure line carries.
fn answer_panic(payload: &(dyn Any + Send + 'static)) -> Response {
    let message = if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic with no message".to_owned()
    };
    ApiError::Panic(message).into_response()
}

#[cfg(test)]
mod tests {
    use std::{
        io::Write,
        sync::{Arc, Mutex},
    };

    use axum::{Router, body::Body, routing::get};
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;
    use crate::{config::LogFormat, telemetry};

    /// What a service logs at the default level, one JSON value a line.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("log lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn lines(&self) -> Vec<Value> {
            let bytes = self.0.lock().expect("log lock");
            String::from_utf8_lossy(&bytes)
                .lines()
                .map(|line| serde_json::from_str(line).expect("a JSON line"))
                .collect()
        }
    }

    /// Sends `GET path` with request id `id` through `router` in the
    /// request context, logging at info; returns the answer and the lines.
    fn answer_logged(router: Router, path: &str, id: &str) -> (Response, Vec<Value>) {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = telemetry::subscriber(LogFormat::Json, "info", move || writer.clone())
            .expect("the filter parses");
        let request = Request::get(path)
            .header(REQUEST_ID_HEADER, id)
            .body(Body::empty())
            .expect("request");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let response = tracing::subscriber::with_default(subscriber, || {
            runtime.block_on(RequestContextLayer.layer(router).oneshot(request))
        });
        (response.expect("infallible"), captured.lines())
    }

    #[test]
    fn a_server_fault_is_logged_once_with_its_cause_and_the_request() {
        async fn failing() -> ApiError {
            ApiError::Internal(anyhow::anyhow!("disk on fire").context("reading user 7"))
        }
        let router = Router::new().route("/v1/users/7", get(failing));

        let (response, lines) = answer_logged(router, "/v1/users/7", "fault-1");

        assert_eq!(response.status(), 500);
        assert!(response.extensions().get::<Failure>().is_none());
        assert_eq!(lines.len(), 1, "{lines:#?}");
        let line = &lines[0];
        assert_eq!(line["level"], "ERROR", "{line}");
        assert_eq!(line["message"], "request failed", "{line}");
        assert_eq!(line["error"], "reading user 7: disk on fire", "{line}");
        assert_eq!(line["request_id"], "fault-1", "{line}");
        assert_eq!(line["method"], "GET", "{line}");
        assert_eq!(line["path"], "/v1/users/7", "{line}");
    }

    #[test]
    fn a_panic_is_answered_500_and_logged_with_its_message() {
        async fn panicking() -> &'static str {
            panic!("deliberate panic in a unit test")
        }
        let router = Router::new().route("/boom", get(panicking));

        let (response, lines) = answer_logged(router, "/boom", "panic-1");

        assert_eq!(response.status(), 500);
        let failed: Vec<&Value> = lines
            .iter()
            .filter(|line| line["message"] == "request failed")
            .collect();
        assert_eq!(failed.len(), 1, "{lines:#?}");
        assert_eq!(
            failed[0]["error"], "a handler panicked: deliberate panic in a unit test",
            "{lines:#?}"
        );
        assert_eq!(failed[0]["request_id"], "panic-1", "{lines:#?}");
    }

    #[test]
    fn client_errors_and_answered_requests_log_nothing_at_info() {
        async fn missing() -> ApiError {
            ApiError::UserNotFound(crate::users::UserId::from_stored(3))
        }
        let router = Router::new()
            .route("/v1/users/3", get(missing))
            .route("/", get(|| async { "hello" }));

        let (not_found, refused) = answer_logged(router.clone(), "/v1/users/3", "quiet-1");
        let (ok, answered) = answer_logged(router, "/", "quiet-2");

        assert_eq!(not_found.status(), 404);
        assert_eq!(ok.status(), 200);
        assert_eq!(refused, Vec::<Value>::new());
        assert_eq!(answered, Vec::<Value>::new());
    }

    #[test]
    fn client_request_ids_are_kept_only_when_short_and_visible_ascii() {
        let cases: [(&[u8], bool); 7] = [
            (b"trace-42", true),
            (
                b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                true,
            ),
            (&[b'r'; MAX_REQUEST_ID_LEN], true),
            (&[b'r'; MAX_REQUEST_ID_LEN + 1], false),
            (b"", false),
            (b"with space", false),
            (b"caf\xc3\xa9", false),
        ];
        for (id, expected) in cases {
            assert_eq!(
                is_acceptable_request_id(id),
                expected,
                "{:?}",
                String::from_utf8_lossy(id)
            );
        }
    }
}
