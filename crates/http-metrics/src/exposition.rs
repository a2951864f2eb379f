//! Rendering the registry for a scraper: Prometheus text format 0.0.4 by
//! default, OpenMetrics 1.0 when the scraper's `Accept` asks for it, gzip
//! when its `Accept-Encoding` allows.
//!
//! The two formats differ in three ways that matter here: OpenMetrics names
//! a counter family without its `_total` suffix, types build metadata as
//! `info`, and ends with `# EOF`. Each answer carries the exact content type
//! of its format, which Prometheus 3 requires.

use std::{fmt::Write as _, io::Write as _};

use bytes::Bytes;
use flate2::{Compression, write::GzEncoder};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};

use crate::{BuildInfo, registry::Registry};

/// Content type of the Prometheus text format.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Content type of OpenMetrics 1.0.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The body of the 405 answer to a scrape with another method than GET or
/// HEAD: an RFC 9457 problem document, the error format HTTP APIs commonly
/// answer in, with a `code` a client can match on.
const METHOD_NOT_ALLOWED_PROBLEM: &str = concat!(
    r#"{"type":"about:blank","title":"Method Not Allowed","status":405,"#,
    r#""detail":"the metrics endpoint answers GET and HEAD only","#,
    r#""code":"method_not_allowed"}"#,
);

/// The formats a scrape can be answered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0.
    OpenMetrics,
}

impl Format {
    /// OpenMetrics when `Accept` lists it with a non-zero quality, text
    /// otherwise (including when there is no `Accept`).
    pub fn negotiate(headers: &HeaderMap) -> Self {
        let asks_for_openmetrics = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|range| {
                media_type(range) == "application/openmetrics-text" && quality(range) > 0.0
            });
        if asks_for_openmetrics {
            Self::OpenMetrics
        } else {
            Self::Text
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Text => TEXT_CONTENT_TYPE,
            Self::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }
}

/// Whether `Accept-Encoding` allows gzip.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let name = media_type(coding);
            (name == "gzip" || name == "x-gzip") && quality(coding) > 0.0
        })
}

/// The part of a header element before its parameters, lower-cased.
fn media_type(element: &str) -> String {
    element
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The `q` parameter of a header element; 1 when absent or unreadable.
fn quality(element: &str) -> f32 {
    element
        .split(';')
        .skip(1)
        .filter_map(|parameter| parameter.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(1.0)
}

/// What the renderer needs besides the registry.
pub(crate) struct Exposition<'a> {
    pub(crate) registry: &'a Registry,
    pub(crate) namespace: &'a str,
    pub(crate) build_info: Option<&'a BuildInfo>,
    pub(crate) process_metrics: bool,
}

impl Exposition<'_> {
    /// The answer to a scrape: the exposition for GET and HEAD, in the
    /// format and encoding the headers ask for; 405 for any other method.
    pub(crate) fn response<B: From<Bytes>>(
        &self,
        method: &Method,
        request_headers: &HeaderMap,
    ) -> Response<B> {
        if method != Method::GET && method != Method::HEAD {
            let mut response = Response::new(B::from(Bytes::from_static(
                METHOD_NOT_ALLOWED_PROBLEM.as_bytes(),
            )));
            *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            let headers = response.headers_mut();
            headers.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/problem+json"),
            );
            return response;
        }

        let format = Format::negotiate(request_headers);
        let text = self.render(format);

        let (body, gzipped) = if accepts_gzip(request_headers) {
            match gzip(text.as_bytes()) {
                Ok(compressed) => (Bytes::from(compressed), true),
                Err(_) => (Bytes::from(text), false),
            }
        } else {
            (Bytes::from(text), false)
        };

        let mut response = Response::new(B::from(body));
        *response.status_mut() = StatusCode::OK;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        );
        headers.insert(
            header::VARY,
            HeaderValue::from_static("accept, accept-encoding"),
        );
        if gzipped {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        response
    }

    /// Every family, in the given format.
    pub(crate) fn render(&self, format: Format) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let ns = self.namespace;

        self.render_guide_counter(&mut out, format, &format!("{ns}_http_request"), false);
        self.render_guide_counter(&mut out, format, &format!("{ns}_http_request_error"), true);
        self.render_duration(&mut out);

        family(
            &mut out,
            "http_server_active_requests",
            "gauge",
            "Requests being handled right now.",
        );
        let _ = writeln!(
            out,
            "http_server_active_requests {}",
            self.registry.active()
        );

        if let Some(info) = self.build_info {
            render_build_info(&mut out, format, ns, info);
        }
        if self.process_metrics {
            crate::process::render(&mut out, format);
        }
        if format == Format::OpenMetrics {
            out.push_str("# EOF\n");
        }
        out
    }

    /// One of the guide's two counters: requests by route template and
    /// status, below 400 or from 400 up, summed over methods.
    fn render_guide_counter(&self, out: &mut String, format: Format, base: &str, errors: bool) {
        let help = if errors {
            "Requests answered with a status of 400 or more, by route template and status."
        } else {
            "Requests answered with a status below 400, by route template and status."
        };
        counter_family(out, format, base, help);

        let mut totals: Vec<(u16, u64)> = Vec::new();
        for route in self.registry.routes.iter() {
            totals.clear();
            for (_, row) in route.rows() {
                row.for_each(|status, histogram| {
                    if (status >= 400) == errors {
                        match totals.iter_mut().find(|(seen, _)| *seen == status) {
                            Some((_, total)) => *total += histogram.count(),
                            None => totals.push((status, histogram.count())),
                        }
                    }
                });
            }
            totals.sort_unstable();
            for (status, total) in &totals {
                let _ = writeln!(
                    out,
                    "{base}_total{{path=\"{}\",status=\"{status}\"}} {total}",
                    route.label
                );
            }
        }
    }

    fn render_duration(&self, out: &mut String) {
        const NAME: &str = "http_server_request_duration_seconds";
        family(
            out,
            NAME,
            "histogram",
            "Time from receiving a request to having its response headers ready, in seconds.",
        );

        let le = &self.registry.buckets.labels;
        for route in self.registry.routes.iter() {
            for (method, row) in route.rows() {
                row.for_each(|status, histogram| {
                    let labels = format!(
                        "http_request_method=\"{method}\",http_route=\"{}\",\
                         http_response_status_code=\"{status}\"",
                        route.label
                    );
                    for (bound, count) in le.iter().zip(histogram.cumulative()) {
                        let _ = writeln!(out, "{NAME}_bucket{{{labels},le=\"{bound}\"}} {count}");
                    }
                    let _ = writeln!(
                        out,
                        "{NAME}_sum{{{labels}}} {}",
                        float(histogram.sum_seconds())
                    );
                    let _ = writeln!(out, "{NAME}_count{{{labels}}} {}", histogram.count());
                });
            }
        }
    }
}

fn render_build_info(out: &mut String, format: Format, namespace: &str, info: &BuildInfo) {
    let help = "Build of the running service; the value is always 1.";
    match format {
        Format::Text => family(out, &format!("{namespace}_build_info"), "gauge", help),
        Format::OpenMetrics => family(out, &format!("{namespace}_build"), "info", help),
    }
    let _ = writeln!(
        out,
        "{namespace}_build_info{{version=\"{}\",revision=\"{}\",rustc=\"{}\"}} 1",
        crate::registry::escape_label_value(&info.version),
        crate::registry::escape_label_value(&info.revision),
        crate::registry::escape_label_value(&info.rustc),
    );
}

/// `# HELP` and `# TYPE` lines of a family.
pub(crate) fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The header of a counter family whose samples are `{base}_total`:
/// OpenMetrics names the family `base`, the text format `base_total`.
pub(crate) fn counter_family(out: &mut String, format: Format, base: &str, help: &str) {
    match format {
        Format::Text => family(out, &format!("{base}_total"), "counter", help),
        Format::OpenMetrics => family(out, base, "counter", help),
    }
}

/// A sample value. Rust's shortest round-trip form is valid in both
/// formats, except for the spellings of infinity and NaN.
pub(crate) fn float(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 {
            "+Inf".to_owned()
        } else {
            "-Inf".to_owned()
        }
    } else {
        value.to_string()
    }
}

fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(data.len() / 4), Compression::fast());
    encoder.write_all(data)?;
    encoder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(value).expect("header value"));
        headers
    }

    #[test]
    fn prometheus_default_accept_gets_openmetrics() {
        let accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                      version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

        assert_eq!(
            Format::negotiate(&headers(header::ACCEPT, accept)),
            Format::OpenMetrics
        );
    }

    #[test]
    fn plain_or_missing_accept_gets_text() {
        assert_eq!(Format::negotiate(&HeaderMap::new()), Format::Text);
        assert_eq!(
            Format::negotiate(&headers(header::ACCEPT, "text/plain")),
            Format::Text
        );
        let refused = "application/openmetrics-text;q=0, text/plain";
        assert_eq!(
            Format::negotiate(&headers(header::ACCEPT, refused)),
            Format::Text
        );
    }

    #[test]
    fn gzip_is_used_only_when_allowed() {
        assert!(accepts_gzip(&headers(
            header::ACCEPT_ENCODING,
            "deflate, gzip;q=0.8"
        )));
        assert!(!accepts_gzip(&headers(
            header::ACCEPT_ENCODING,
            "gzip;q=0, identity"
        )));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn special_floats_use_the_exposition_spelling() {
        assert_eq!(float(f64::INFINITY), "+Inf");
        assert_eq!(float(f64::NAN), "NaN");
        assert_eq!(float(0.03), "0.03");
        assert_eq!(float(2.0), "2");
    }
}
