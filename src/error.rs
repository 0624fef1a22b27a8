//! The one error type of the HTTP surface, rendered as the API's
//! `{"error": {"code", "message"}}` body with a fitting status.

use std::time::Duration;

use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::InvalidField;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    /// A field that is present but invalid; the message names it.
    #[error("{0}")]
    Invalid(String),
    /// A field that is invalid for a reason of its own, with its own code (`422`).
    #[error("{message}")]
    InvalidAs { code: &'static str, message: String },
    #[error("sign in first")]
    Unauthorized,
    /// The right password of an agent an admin disabled: said only to who knows it.
    #[error("This account is disabled; ask an admin to enable it again.")]
    AccountDisabled,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A request refused for what it asks, with a code of its own (`422`).
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    #[error("the request body is larger than 256 KiB")]
    PayloadTooLarge,
    #[error("the picture is larger than 5 MB")]
    FileTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Too many failed attempts; the message and `Retry-After` give the same wait.
    #[error("too many failed attempts: try again in {}", describe_wait(*retry_after).1)]
    TooManyRequests { retry_after: Duration },
    #[error("the database is not answering; try again shortly")]
    Unavailable,
    /// The server has more of this work than it takes at once (`503` with `Retry-After: 1`).
    #[error("{0}")]
    Busy(&'static str),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl AppError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::Unprocessable {
            code,
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
            Self::InvalidAs { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::AccountDisabled => (StatusCode::UNAUTHORIZED, "account_disabled"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            Self::Unprocessable { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            Self::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::FileTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "file_too_large"),
            Self::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
            Self::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

/// The API's error body (docs/api.md, "Errors"): `{"error": {"code", "message"}}`.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        match &self {
            Self::Internal(e) => tracing::error!(error = %format!("{e:#}"), "request failed"),
            Self::Unavailable => tracing::warn!("request refused: database unavailable"),
            _ => {}
        }
        let message = self.to_string();
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message: &message,
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        let retry_after = match &self {
            Self::TooManyRequests { retry_after } => Some(describe_wait(*retry_after).0),
            Self::Busy(_) => Some(1),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<InvalidField> for AppError {
    fn from(e: InvalidField) -> Self {
        Self::Invalid(e.to_string())
    }
}

/// What a client hears when too many passwords are already being checked.
pub const PASSWORDS_BUSY: &str = "too many sign-ins are being checked; try again in a second";

impl From<JsonRejection> for AppError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonDataError(e) => Self::Invalid(e.body_text()),
            JsonRejection::JsonSyntaxError(e) => Self::BadRequest(e.body_text()),
            JsonRejection::MissingJsonContentType(_) => {
                Self::UnsupportedMediaType("send the body as application/json".into())
            }
            JsonRejection::BytesRejection(b) => b.into(),
            other => Self::BadRequest(other.body_text()),
        }
    }
}

impl From<BytesRejection> for AppError {
    fn from(r: BytesRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::PayloadTooLarge
        } else {
            Self::BadRequest(r.body_text())
        }
    }
}

impl From<QueryRejection> for AppError {
    fn from(r: QueryRejection) -> Self {
        Self::BadRequest(r.body_text())
    }
}

/// Query-string extractor whose rejections use our error shape.
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct Query<T>(pub T);

/// JSON body extractor whose rejections use our error shape.
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

pub type AppResult<T> = Result<T, AppError>;

/// A wait as `Retry-After` gives it (whole seconds, at least 1) and in words: seconds under a
/// minute, else minutes rounded up (and the seconds rounded up to match them).
pub fn describe_wait(wait: Duration) -> (u64, String) {
    let seconds = wait.as_secs().max(1);
    if seconds < 60 {
        let unit = if seconds == 1 { "second" } else { "seconds" };
        (seconds, format!("{seconds} {unit}"))
    } else {
        let minutes = seconds.div_ceil(60);
        let unit = if minutes == 1 { "minute" } else { "minutes" };
        (minutes * 60, format!("{minutes} {unit}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_read_the_same_in_words_and_seconds() {
        for (seconds, told) in [
            (0, (1, "1 second")),
            (42, (42, "42 seconds")),
            (60, (60, "1 minute")),
            (61, (120, "2 minutes")),
            (900, (900, "15 minutes")),
        ] {
            let (retry_after, words) = describe_wait(Duration::from_secs(seconds));
            assert_eq!((retry_after, words.as_str()), told, "{seconds} s");
        }
    }
}
