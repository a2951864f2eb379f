//! Every error the HTTP API answers, and the one body it answers them with.
//!
//! Each [`ApiError`] variant maps to one status in [`ApiError::status`], and
//! every answer is an RFC 9457 problem document (`application/problem+json`).
//! Client faults are answered precisely and logged at debug level only; server
//! faults are answered with a generic detail, so internals never reach a
//! client, and carry their whole cause chain on the response for the request
//! context to log.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::{http::Failure, storage::StoreError, users::UserId};

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A failed request, as the client will see it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body is not well-formed JSON.
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),

    /// 400: the body could not be read (the client broke it off, or sent a
    /// malformed chunked encoding).
    #[error("the request body could not be read")]
    UnreadableBody,

    /// 400: a path or query parameter does not parse.
    #[error("{0}")]
    InvalidParameter(String),

    /// 404: no user has this id.
    #[error("there is no user with id {0}")]
    UserNotFound(UserId),

    /// 404: no route matches the path.
    #[error("there is no resource at this path")]
    RouteNotFound,

    /// 405: the path exists but not with this method; the router adds the
    /// `Allow` header.
    #[error("this resource does not support the method")]
    MethodNotAllowed,

    /// 409: another user already has the email address.
    #[error("another user already has this email address")]
    DuplicateEmail,

    /// 413: the body is longer than the configured limit.
    #[error("the body is larger than the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },

    /// 415: the body is not declared as JSON.
    #[error("the body must be sent with content type application/json")]
    UnsupportedMediaType,

    /// 422: the body is JSON but its values are not acceptable.
    #[error("the body has invalid fields")]
    Validation(Vec<InvalidField>),

    /// 503: the request took longer than the configured timeout; its work
    /// was dropped.
    #[error("the request took too long and was abandoned")]
    Timeout,

    /// 503: more requests are in flight than the service admits at once;
    /// this one was refused before any work.
    #[error("the service is at capacity; retry shortly")]
    Overloaded,

    /// 503: the service cannot take traffic now (draining, or the database
    /// does not answer).
    #[error("{0}")]
    Unavailable(&'static str),

    /// 500 or 503, as configured: fault injection chose to fail this
    /// request.
    #[error("fault injection answered this request with an error")]
    InjectedFault(u16),

    /// 500: a handler panicked.
    #[error("a handler panicked: {0}")]
    Panic(String),

    /// 500: a server fault; the cause chain is logged, never sent.
    #[error(transparent)]
    Internal(anyhow::Error),
}

/// One field that failed validation, located by a JSON pointer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvalidField {
    /// Where the field is in the body, as an RFC 6901 pointer fragment
    /// (`#/email`).
    pub pointer: String,
    /// What is wrong with it.
    pub detail: String,
}

impl InvalidField {
    /// A problem with a top-level field of the body.
    pub fn new(field: &str, detail: impl Into<String>) -> Self {
        Self {
            pointer: format!("#/{field}"),
            detail: detail.into(),
        }
    }
}

/// The RFC 9457 body of every error answer.
#[derive(Debug, Serialize)]
struct Problem<'a> {
    /// Always `about:blank`: the status and `code` say what happened.
    r#type: &'static str,
    title: &'static str,
    status: u16,
    detail: String,
    /// A stable, machine-readable name for the problem.
    code: &'static str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [InvalidField],
}

impl ApiError {
    /// The status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MalformedJson(_) | Self::UnreadableBody | Self::InvalidParameter(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::UserNotFound(_) | Self::RouteNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::DuplicateEmail => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Timeout | Self::Overloaded | Self::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::InjectedFault(status) => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            Self::Panic(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable name clients can branch on.
    fn code(&self) -> &'static str {
        match self {
            Self::MalformedJson(_) => "malformed_json",
            Self::UnreadableBody => "unreadable_body",
            Self::InvalidParameter(_) => "invalid_parameter",
            Self::UserNotFound(_) => "user_not_found",
            Self::RouteNotFound => "route_not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::DuplicateEmail => "duplicate_email",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Validation(_) => "validation_failed",
            Self::Timeout => "request_timeout",
            Self::Overloaded => "overloaded",
            Self::Unavailable(_) => "unavailable",
            Self::InjectedFault(_) => "injected_fault",
            Self::Panic(_) | Self::Internal(_) => "internal_error",
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::DuplicateEmail => Self::DuplicateEmail,
            StoreError::Database(cause) => Self::Internal(cause),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();

        // A server fault's cause goes to the log, with the request id, by
        // way of the response; the client gets no internals. An injected
        // fault is the service doing what it was asked to.
        let real_fault = !matches!(self, Self::InjectedFault(_))
            && status.is_server_error()
            && status != StatusCode::SERVICE_UNAVAILABLE;
        let failure = real_fault.then(|| Failure::Fault(format!("{self:#}")));
        let detail = if real_fault {
            "the server failed to handle the request; it has been logged".to_owned()
        } else {
            tracing::debug!(status = status.as_u16(), detail = %self, "request refused");
            self.to_string()
        };

        let errors = match &self {
            Self::Validation(fields) => fields.as_slice(),
            _ => &[],
        };
        let problem = Problem {
            r#type: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail,
            code: self.code(),
            errors,
        };

        let mut response = (status, Json(problem)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let Some(failure) = failure {
            response.extensions_mut().insert(failure);
        }
        response
    }
}
