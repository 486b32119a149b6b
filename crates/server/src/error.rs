//! The one mapping from every failure to an HTTP answer: RFC 9457 problem+json with a stable
//! `code` and, for bad input, the path of each offending field. Internal details are logged,
//! never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use parley_domain::{FieldError, ValidationErrors};
use parley_store::StoreError;
use serde::Serialize;

/// An error on its way to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
}

/// The problem document, as sent.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `about:blank`-style type URI naming the code.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable code, e.g. `validation_failed`.
    pub code: String,
    /// Each broken rule with its field path (may be empty).
    pub errors: Vec<FieldError>,
}

impl ApiError {
    /// An error with no field list.
    #[must_use]
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self { status, code, detail: detail.into(), errors: Vec::new() }
    }
    #[must_use]
    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }
    #[must_use]
    pub fn unauthorized(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, detail)
    }
    #[must_use]
    pub fn forbidden(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, detail)
    }
    #[must_use]
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }
    #[must_use]
    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }
    /// A reference to something that does not exist for this tenant, as a field error.
    #[must_use]
    pub fn unknown_reference(path: impl Into<String>, what: &str) -> Self {
        ValidationErrors::single(path, "unknown_reference", format!("no such {what} in this tenant")).into()
    }
    /// Logs the cause and hides it from the client.
    #[must_use]
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "an unexpected error occurred")
    }

    fn title(&self) -> &'static str {
        self.status.canonical_reason().unwrap_or("Error")
    }

    /// The problem document.
    #[must_use]
    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("https://parley.dev/problems/{}", self.code),
            title: self.title().to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_owned(),
            errors: self.errors.clone(),
        }
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(e: ValidationErrors) -> Self {
        let detail = e.0.first().map_or_else(String::new, |f| format!("{}: {}", f.path, f.message));
        Self { status: StatusCode::UNPROCESSABLE_ENTITY, code: "validation_failed", detail, errors: e.0 }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::not_found("resource"),
            StoreError::Conflict(what) => Self::conflict("conflict", format!("{what} is already taken")),
            StoreError::Unavailable(m) => {
                tracing::warn!(error = %m, "store unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the database is unavailable, retry later",
                )
            }
            StoreError::Other(m) | StoreError::InUse(m) => Self::internal(&m),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut res = (self.status, body).into_response();
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if matches!(self.status, StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS) {
            // A refusal that will pass soon says when to come back.
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        res
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_errors_become_422_with_paths() {
        let e: ApiError = ValidationErrors::single("/email", "invalid_email", "bad").into();
        let p = e.problem();
        assert_eq!((p.status, p.code.as_str()), (422, "validation_failed"));
        assert_eq!(p.errors[0].path, "/email");
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let e = ApiError::internal(&"password=secret in query");
        assert!(!e.problem().detail.contains("secret"));
    }
}
