//! CORS for the widget API, so customers' own pages can call it (the visitor SDK, docs/sdk.md).
//! Only `/api/v1/widget/…` is shared: the admin and agent APIs stay same-origin.
//!
//! Which websites may use a chat is decided by the widget's Restrict Access rules (ADR 7), in
//! the handlers, per request. This layer only lets the browser show a page the answer: a
//! preflight is granted to any origin (it carries no data and the real request is checked), and
//! an answer is shared with its origin unless that origin was refused (403), so a website a
//! service does not allow cannot read anything from it.

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

const WIDGET_API: &str = "/api/v1/widget/";
/// How long a browser may reuse a preflight's answer.
const PREFLIGHT_MAX_AGE_SECS: &str = "600";

pub async fn widget_cors(req: Request, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let Some(origin) = origin.filter(|_| req.uri().path().starts_with(WIDGET_API)) else {
        return next.run(req).await;
    };
    if req.method() == Method::OPTIONS {
        let mut res = StatusCode::NO_CONTENT.into_response();
        let h = res.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST"));
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("authorization, content-type"));
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(PREFLIGHT_MAX_AGE_SECS));
        h.insert(
            header::VARY,
            HeaderValue::from_static("Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
        );
        return res;
    }
    let mut res = next.run(req).await;
    let refused = res.status() == StatusCode::FORBIDDEN;
    let h = res.headers_mut();
    // The access check answers cross-origin itself, refusals included (the loader explains them).
    if !refused && !h.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("content-disposition"));
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    res
}
