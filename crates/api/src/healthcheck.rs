//! `api healthcheck`: a one-request HTTP client for container health checks.
//!
//! The runtime image has no curl or shell, so the binary probes itself. It
//! speaks plain HTTP/1.1 through hyper, which the server already links.

use std::time::Duration;

use anyhow::{Context, bail};
use axum::http::{Request, StatusCode, Uri, header};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Succeeds when `url` answers 200 within `timeout`.
///
/// # Errors
///
/// Fails when the URL is not a plain `http://` URL, the connection fails,
/// the answer is not 200, or no answer comes in time.
pub async fn probe(url: &str, timeout: Duration) -> anyhow::Result<()> {
    let uri: Uri = url
        .parse()
        .with_context(|| format!("`{url}` is not a URL"))?;
    if uri.scheme_str() != Some("http") {
        bail!("`{url}` is not an http:// URL");
    }
    let Some(authority) = uri.authority().cloned() else {
        bail!("`{url}` names no host");
    };

    let status = tokio::time::timeout(timeout, async {
        let port = authority.port_u16().unwrap_or(80);
        let stream = TcpStream::connect((authority.host(), port)).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);

        let path = uri.path_and_query().map_or("/", |path| path.as_str());
        let request = Request::get(path)
            .header(header::HOST, authority.as_str())
            .body(Empty::<bytes::Bytes>::new())?;
        anyhow::Ok(sender.send_request(request).await?.status())
    })
    .await
    .with_context(|| format!("no answer from {url} within {timeout:?}"))?
    .with_context(|| format!("cannot reach {url}"))?;

    if status != StatusCode::OK {
        bail!("{url} answered {status}");
    }
    Ok(())
}
