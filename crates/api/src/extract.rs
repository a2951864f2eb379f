//! Request extractors whose every rejection is an [`ApiError`].
//!
//! axum's own extractors answer bad input with plain-text bodies and, for
//! some JSON errors, statuses this API does not use. These wrap the same
//! parsing and sort each failure into the status the API promises: 415 for a
//! body not declared as JSON, 413 over the limit, 400 for JSON that does not
//! parse, 422 for JSON of the wrong shape.

use axum::{
    body::{Body, HttpBody as _},
    extract::{FromRef, FromRequest, FromRequestParts, Path, Request},
    http::{HeaderMap, header, request::Parts},
};
use bytes::Bytes;
use http_body_util::LengthLimitError;
use serde::de::DeserializeOwned;

use crate::{
    error::{ApiError, InvalidField},
    users::UserId,
};

/// A JSON request body, deserialized into `T`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    BodyLimit: FromRef<S>,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !declares_json(request.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }

        let BodyLimit(limit) = BodyLimit::from_ref(state);
        let body = read_body(request.into_body(), limit).await?;
        parse_json(&body).map(JsonBody)
    }
}

/// The largest request body a router accepts, in bytes, taken from its
/// state so that 413 answers can name it.
///
/// From the state rather than a request extension, which would cost every
/// request an insertion into its extension map, bodiless ones included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimit(pub usize);

/// The whole body, refused as 413 once it passes `limit` bytes, whether or
/// not it announced its length.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    // A body announced as too long is refused before any of it is read, so
    // that a client cannot hold a request open by promising one and sending
    // it slowly.
    let announced = body.size_hint().lower();
    if usize::try_from(announced).map_or(true, |announced| announced > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }

    axum::body::to_bytes(body, limit).await.map_err(|error| {
        let over_limit = error
            .into_inner()
            .downcast_ref::<LengthLimitError>()
            .is_some();
        if over_limit {
            ApiError::PayloadTooLarge { limit }
        } else {
            ApiError::UnreadableBody
        }
    })
}

/// `application/json`, or any `application/*+json`, with any parameters.
fn declares_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|subtype| subtype.ends_with("+json"))
}

/// Parses a whole body as one JSON object of type `T`.
fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // serde's derived structs also accept an array of their fields in
    // order; the API's bodies are objects only.
    if body.iter().find(|byte| !byte.is_ascii_whitespace()) != Some(&b'{') {
        return Err(not_an_object(body));
    }

    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let pointer = json_pointer(error.path());
        let inner = error.into_inner();
        if inner.is_data() {
            ApiError::Validation(vec![InvalidField {
                pointer,
                detail: data_error_detail(&inner),
            }])
        } else {
            ApiError::MalformedJson(inner.to_string())
        }
    })?;

    // Anything after the value, such as a second object, is malformed too.
    deserializer
        .end()
        .map_err(|error| ApiError::MalformedJson(error.to_string()))?;
    Ok(value)
}

/// The error for a body that does not start with `{`: malformed if it is not
/// JSON at all, of the wrong shape if it is.
fn not_an_object(body: &[u8]) -> ApiError {
    match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
        Err(error) => ApiError::MalformedJson(error.to_string()),
        Ok(_) => ApiError::Validation(vec![InvalidField {
            pointer: "#".to_owned(),
            detail: "the body must be a JSON object".to_owned(),
        }]),
    }
}

/// serde's message without its `at line 1 column 9` suffix, which the
/// pointer replaces.
fn data_error_detail(error: &serde_json::Error) -> String {
    let message = error.to_string();
    match message.rfind(" at line ") {
        Some(end) => message[..end].to_owned(),
        None => message,
    }
}

/// `#/a/b` for the path `a.b`; `#` for the whole document.
fn json_pointer(path: &serde_path_to_error::Path) -> String {
    let mut pointer = String::from("#");
    for segment in path {
        let segment = match segment {
            serde_path_to_error::Segment::Seq { index } => index.to_string(),
            serde_path_to_error::Segment::Map { key } => key.clone(),
            serde_path_to_error::Segment::Enum { variant } => variant.clone(),
            serde_path_to_error::Segment::Unknown => continue,
        };
        pointer.push('/');
        pointer.push_str(&segment.replace('~', "~0").replace('/', "~1"));
    }
    pointer
}

/// The `{id}` segment of a user's path, parsed.
#[derive(Debug, Clone, Copy)]
pub struct UserIdParam(pub UserId);

impl<S: Send + Sync> FromRequestParts<S> for UserIdParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::InvalidParameter("the user id is not valid text".to_owned()))?;
        let id = raw
            .parse()
            .map_err(|reason: &str| ApiError::InvalidParameter(reason.to_owned()))?;
        Ok(Self(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "only deserialization is under test")]
    struct Body {
        name: Option<String>,
    }

    #[test]
    fn syntax_errors_are_malformed_json() {
        for body in [
            "",
            "{",
            "{\"name\": }",
            "{} {}",
            "\u{0}",
            "{\"name\": \"\\ud800\"}",
        ] {
            let result = parse_json::<Body>(body.as_bytes());
            assert!(
                matches!(result, Err(ApiError::MalformedJson(_))),
                "{body:?}: {result:?}"
            );
        }
    }

    #[test]
    fn shape_errors_point_at_the_field() {
        let cases = [
            ("{\"name\": 5}", "#/name"),
            ("[]", "#"),
            ("[\"Ada\"]", "#"),
            ("  \"Ada\"", "#"),
            ("{\"other\": 1}", "#/other"),
        ];
        for (body, expected) in cases {
            let Err(ApiError::Validation(fields)) = parse_json::<Body>(body.as_bytes()) else {
                panic!("{body}: expected a validation error");
            };
            assert_eq!(fields[0].pointer, expected, "{body}");
            assert!(
                !fields[0].detail.contains("line 1"),
                "{body}: {}",
                fields[0].detail
            );
        }
    }

    #[test]
    fn json_content_types_are_recognised() {
        let cases = [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("application/merge-patch+json", true),
            ("text/plain", false),
            ("application/jsonx", false),
            ("", false),
        ];
        for (value, expected) in cases {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().expect("header value"));
            assert_eq!(declares_json(&headers), expected, "{value:?}");
        }
    }
}
