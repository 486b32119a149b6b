//! A strict JSON body extractor: wrong content type, malformed JSON, unknown fields, wrong types
//! and over-large bodies all become problem+json with a stable code and the field path, before a
//! handler runs (so nothing changes).

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

/// Largest JSON body the API accepts.
pub const MAX_JSON_BYTES: usize = 256 * 1024;

/// `Json<T>` with Parley's errors.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json =
            req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| {
                ct.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("the body exceeds {MAX_JSON_BYTES} bytes"),
                )
            } else {
                ApiError::bad_request("unreadable_body", "the request body could not be read")
            }
        })?;
        parse(&bytes).map(ApiJson)
    }
}

/// `Path<T>` with Parley's errors (`400 invalid_path`).
#[derive(Debug, Clone, Copy, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// `Query<T>` with Parley's errors (`400 invalid_query`).
#[derive(Debug, Clone, Copy, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::bad_request("invalid_path", r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::bad_request("invalid_query", r.body_text())
    }
}

/// Parses JSON, naming the failing path.
///
/// # Errors
/// `malformed_json` for syntax, `unknown_field` for an unexpected key, `invalid_field` for a
/// missing or wrongly typed value.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = json_pointer(&e.path().to_string());
        let inner = e.into_inner();
        let msg = inner.to_string();
        let (status, code) = if inner.is_syntax() || inner.is_eof() {
            (StatusCode::BAD_REQUEST, "malformed_json")
        } else if msg.starts_with("unknown field") {
            (StatusCode::BAD_REQUEST, "unknown_field")
        } else {
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")
        };
        let mut err = ApiError::new(status, code, msg.clone());
        if code != "malformed_json" {
            err.errors.push(parley_domain::FieldError { path, code, message: msg, node: None });
        }
        err
    })
}

/// `a.b[0].c` → `/a/b/0/c`; the root `.` → ``.
fn json_pointer(p: &str) -> String {
    if p == "." {
        return String::new();
    }
    let mut out = String::new();
    for part in p.split('.') {
        for seg in part.split('[') {
            let seg = seg.trim_end_matches(']');
            if !seg.is_empty() {
                out.push('/');
                out.push_str(seg);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use parley_domain::NewUser;

    #[test]
    fn unknown_fields_are_refused_with_their_path() {
        let e = parse::<NewUser>(br#"{"display_name":"a","email":"a@b.co","colour":"red"}"#).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (400, "unknown_field"));
    }

    #[test]
    fn malformed_json_is_a_400() {
        let e = parse::<NewUser>(b"{\"display_name\":").unwrap_err();
        assert_eq!(e.code, "malformed_json");
    }

    #[test]
    fn a_wrong_type_names_the_field() {
        let e = parse::<NewUser>(br#"{"display_name":"a","email":"a@b.co","max_chats":"many"}"#).unwrap_err();
        assert_eq!((e.code, e.errors[0].path.as_str()), ("invalid_field", "/max_chats"));
    }

    #[test]
    fn json_pointer_conversion() {
        assert_eq!(json_pointer("members[1].user_id"), "/members/1/user_id");
        assert_eq!(json_pointer("."), "");
    }
}
