//! Sending requests: one HTTP/1.1 keep-alive connection per worker, and the
//! probe that checks the target before a run.
//!
//! hyper's connection-level client is used rather than a pooled client
//! (reqwest, hyper-util's legacy client): a worker owns exactly one
//! connection, so there is no pool to lock, no per-request URL parsing and
//! no connection chosen behind the generator's back. What to send is
//! decided by [`crate::scenario`]; when, by [`crate::runner`].

use std::{fmt, io, net::SocketAddr, time::Duration};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Uri, header};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;

use crate::{config::Target, scenario::PlannedRequest};

/// Sent with every request, so that the service's logs can tell generated
/// traffic apart.
const USER_AGENT: &str = concat!("loadgen/", env!("CARGO_PKG_VERSION"));

/// Why a request got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportError {
    /// No connection could be opened.
    Connect,
    /// No complete answer within `--timeout`.
    Timeout,
    /// The connection failed while the request was sent or answered.
    Io,
}

impl TransportError {
    /// Every kind, in the order the summary lists them.
    pub const ALL: [Self; 3] = [Self::Connect, Self::Timeout, Self::Io];

    /// The kind's name in the summary.
    pub fn name(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Io => "io",
        }
    }
}

/// A complete answer.
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The whole body.
    pub body: Bytes,
}

/// One worker's connection, opened on first use and replaced after a
/// failure.
pub struct Connection {
    address: SocketAddr,
    host: HeaderValue,
    timeout: Duration,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    /// A connection to `address`, sending `target`'s authority as `Host`.
    ///
    /// Nothing is opened until the first request.
    pub fn new(address: SocketAddr, target: &Target, timeout: Duration) -> Self {
        Self {
            address,
            host: host_header(target),
            timeout,
            sender: None,
        }
    }

    /// Sends `planned` and reads the whole answer.
    ///
    /// # Errors
    ///
    /// Fails when no connection can be opened, the answer takes longer than
    /// the timeout, or the connection breaks; the connection is then dropped
    /// and the next request opens a new one.
    pub async fn send(&mut self, planned: &PlannedRequest) -> Result<Answer, TransportError> {
        let request = build_request(
            planned.method.clone(),
            planned.path.clone(),
            &self.host,
            planned.body.clone(),
        );
        self.round_trip(request).await
    }

    async fn round_trip(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> Result<Answer, TransportError> {
        let timeout = self.timeout;
        let sender = self.ready_sender().await?;

        let answer = tokio::time::timeout(timeout, exchange(sender, request)).await;

        match answer {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(self.drop_connection(TransportError::Io)),
            Err(_) => Err(self.drop_connection(TransportError::Timeout)),
        }
    }

    /// The open connection, ready for a request, or a new one if the
    /// service closed the old one while it was idle (which is not an error
    /// of any request).
    async fn ready_sender(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, TransportError> {
        if let Some(sender) = &mut self.sender
            && sender.ready().await.is_err()
        {
            self.sender = None;
        }
        if self.sender.is_none() {
            let connecting = tokio::time::timeout(self.timeout, connect(self.address)).await;
            let sender = connecting
                .map_err(|_| TransportError::Connect)?
                .map_err(|_| TransportError::Connect)?;
            self.sender = Some(sender);
        }
        self.sender.as_mut().ok_or(TransportError::Connect)
    }

    fn drop_connection(&mut self, error: TransportError) -> TransportError {
        self.sender = None;
        error
    }
}

/// The target could not be used at start.
#[derive(Debug, thiserror::Error)]
#[error("cannot reach {target}: {reason}")]
pub struct Unreachable {
    /// The base URL, as given.
    pub target: String,
    /// What went wrong, in a few words.
    pub reason: String,
}

/// Resolves the target, opens a connection and checks that its `/health`
/// answers 200; returns the address that answered, for the workers.
///
/// # Errors
///
/// Fails when the host does not resolve, nothing accepts the connection,
/// the answer does not come within `timeout`, or it is not a 200.
pub async fn probe(target: &Target, timeout: Duration) -> Result<SocketAddr, Unreachable> {
    let unreachable = |reason: String| Unreachable {
        target: target.to_string(),
        reason,
    };

    let address = resolve(target).await.map_err(unreachable)?;
    let mut connection = Connection::new(address, target, timeout);
    let health = build_request(
        Method::GET,
        Uri::from_static("/health"),
        &connection.host,
        None,
    );

    match connection.round_trip(health).await {
        Ok(Answer { status: 200, .. }) => Ok(address),
        Ok(Answer { status, .. }) => Err(unreachable(format!("/health answered {status}"))),
        Err(TransportError::Connect) => Err(unreachable(connect_reason(address, timeout).await)),
        Err(TransportError::Timeout) => Err(unreachable("no answer from /health".to_owned())),
        Err(TransportError::Io) => Err(unreachable("the connection broke".to_owned())),
    }
}

/// The first address the target's host resolves to.
async fn resolve(target: &Target) -> Result<SocketAddr, String> {
    let mut addresses = tokio::net::lookup_host((target.host(), target.port()))
        .await
        .map_err(|error| format!("cannot resolve {}: {error}", target.host()))?;
    addresses
        .next()
        .ok_or_else(|| format!("{} resolves to no address", target.host()))
}

/// Why a connection to `address` fails, found by trying once more; the
/// workers' path keeps only the error's kind.
async fn connect_reason(address: SocketAddr, timeout: Duration) -> String {
    match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
        Err(_) => "connection timed out".to_owned(),
        Ok(Ok(_)) => "the connection was closed at once".to_owned(),
        Ok(Err(error)) => describe_io(&error),
    }
}

/// An I/O error in a few lower-case words, without the OS error number.
fn describe_io(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        io::ErrorKind::ConnectionReset => "connection reset".to_owned(),
        io::ErrorKind::TimedOut => "connection timed out".to_owned(),
        io::ErrorKind::HostUnreachable => "host unreachable".to_owned(),
        io::ErrorKind::NetworkUnreachable => "network unreachable".to_owned(),
        _ => error.to_string(),
    }
}

/// Opens a TCP connection and runs HTTP/1.1 over it in a task of its own.
async fn connect(address: SocketAddr) -> io::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(address).await?;
    // Requests are small and sent whole; waiting to coalesce them would
    // only add latency.
    stream.set_nodelay(true)?;

    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(io::Error::other)?;
    // The connection's own errors surface on the next send, so the task's
    // result carries nothing new.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<Answer, hyper::Error> {
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();

    // Reading the body to its end is what frees the connection for the
    // next request.
    let body = response.into_body().collect().await?.to_bytes();
    Ok(Answer { status, body })
}

fn build_request(
    method: Method,
    path: Uri,
    host: &HeaderValue,
    body: Option<(&'static str, Bytes)>,
) -> Request<Full<Bytes>> {
    let (content_type, body) = match body {
        Some((content_type, body)) => (Some(content_type), body),
        None => (None, Bytes::new()),
    };

    let mut request = Request::new(Full::new(body));
    *request.method_mut() = method;
    *request.uri_mut() = path;

    let headers = request.headers_mut();
    headers.insert(header::HOST, host.clone());
    headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
    if let Some(content_type) = content_type {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    request
}

fn host_header(target: &Target) -> HeaderValue {
    // An authority that parsed as part of a URI is a valid header value;
    // the fallback only keeps this total.
    HeaderValue::from_str(target.authority()).unwrap_or(HeaderValue::from_static("localhost"))
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("address", &self.address)
            .field("open", &self.sender.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_connections_are_described_without_the_os_error_number() {
        let error = io::Error::from(io::ErrorKind::ConnectionRefused);

        assert_eq!(describe_io(&error), "connection refused");
    }

    #[test]
    fn requests_carry_host_user_agent_and_content_type() {
        let host = HeaderValue::from_static("127.0.0.1:8000");
        let body = Some(("application/json", Bytes::from_static(b"{}")));

        let request = build_request(Method::POST, Uri::from_static("/v1/users"), &host, body);

        let headers = request.headers();
        assert_eq!(headers[header::HOST], "127.0.0.1:8000");
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        assert!(headers.contains_key(header::USER_AGENT));
    }
}
