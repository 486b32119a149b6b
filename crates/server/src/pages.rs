//! Server-rendered pages and the embedded browser assets (widget loader, widget frame, preview
//! page, agent sign-in and workspace). Everything is compiled into the binary; nothing is
//! fetched from elsewhere. Pages send a strict Content-Security-Policy: scripts only from here.

use crate::api::widget::resolve_snippet;
use crate::auth::Agent;
use crate::state::AppState;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::{HeaderValue, StatusCode, header, request::Parts};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

const WIDGET_JS: &str = include_str!("../assets/widget.js");
const FRAME_HTML: &str = include_str!("../assets/frame.html");
const FRAME_JS: &str = include_str!("../assets/frame.js");
const FRAME_CSS: &str = include_str!("../assets/frame.css");
const PREVIEW_HTML: &str = include_str!("../assets/preview.html");
const LOGIN_HTML: &str = include_str!("../assets/agent-login.html");
const LOGIN_JS: &str = include_str!("../assets/agent-login.js");
const AGENT_HTML: &str = include_str!("../assets/agent.html");
const AGENT_JS: &str = include_str!("../assets/agent.js");
const AGENT_CSS: &str = include_str!("../assets/agent.css");
const TEXT_JS: &str = include_str!("../assets/text.js");
const I18N_JS: &str = include_str!("../assets/i18n.js");
const SDK_JS: &str = include_str!("../assets/parley-chat.js");
const SDK_EXAMPLE_HTML: &str = include_str!("../assets/sdk-example.html");
const SDK_EXAMPLE_JS: &str = include_str!("../assets/sdk-example.js");
const SDK_EXAMPLE_CSS: &str = include_str!("../assets/sdk-example.css");

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    res
}

/// A page with the CSP; `frame_ancestors` is `*` for the widget frame (domain templates narrow
/// it later), `'none'` for the agent pages.
fn page(body: String, frame_ancestors: &str) -> Response {
    let mut res = Html(body).into_response();
    let csp = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self' blob: ws: wss:; \
         frame-ancestors {frame_ancestors}; base-uri 'none'; form-action 'self'"
    );
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Escapes text for HTML element content and double- or single-quoted attributes.
#[must_use]
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

pub async fn widget_js() -> Response {
    asset(WIDGET_JS, "text/javascript; charset=utf-8")
}
pub async fn frame_js() -> Response {
    asset(FRAME_JS, "text/javascript; charset=utf-8")
}
pub async fn frame_css() -> Response {
    asset(FRAME_CSS, "text/css; charset=utf-8")
}
pub async fn login_js() -> Response {
    asset(LOGIN_JS, "text/javascript; charset=utf-8")
}
pub async fn agent_js() -> Response {
    asset(AGENT_JS, "text/javascript; charset=utf-8")
}
/// The message text renderer both pages share (plain text and safe links).
pub async fn i18n_js() -> Response {
    asset(I18N_JS, "text/javascript; charset=utf-8")
}
pub async fn text_js() -> Response {
    asset(TEXT_JS, "text/javascript; charset=utf-8")
}
pub async fn agent_css() -> Response {
    asset(AGENT_CSS, "text/css; charset=utf-8")
}

/// The visitor SDK, loaded by customers' own pages (docs/sdk.md).
pub async fn sdk_js() -> Response {
    cross_origin(asset(SDK_JS, "text/javascript; charset=utf-8"))
}
pub async fn sdk_example_js() -> Response {
    cross_origin(asset(SDK_EXAMPLE_JS, "text/javascript; charset=utf-8"))
}
pub async fn sdk_example_css() -> Response {
    cross_origin(asset(SDK_EXAMPLE_CSS, "text/css; charset=utf-8"))
}

/// Scripts and styles meant for other websites say so, for pages that load them with CORS
/// (`crossorigin`, module scripts).
fn cross_origin(mut res: Response) -> Response {
    res.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    res
}

/// The SDK's example page for a snippet: a chat drawn by the page itself.
pub async fn sdk_example(State(state): State<AppState>, Query(q): Query<SnippetQuery>) -> Response {
    if let Err(e) = resolve_snippet(&state, &q.contact_id, &q.widget_key).await {
        let body = format!("<!doctype html><meta charset=utf-8><title>Parley</title><p>{}</p>", escape_html(&e.detail));
        return (StatusCode::NOT_FOUND, page(body, "'none'")).into_response();
    }
    page(sdk_example_page(&state.config.public_url, &q.contact_id, &q.widget_key), "'none'")
}

/// The example page with its placeholders filled (escaped), as served or as a test's host page.
#[must_use]
pub fn sdk_example_page(base_url: &str, contact_id: &str, widget_key: &str) -> String {
    SDK_EXAMPLE_HTML
        .replace("{{BASE_URL}}", &escape_html(base_url))
        .replace("{{CONTACT_ID}}", &escape_html(contact_id))
        .replace("{{WIDGET_KEY}}", &escape_html(widget_key))
}

/// The widget frame page (inside the customer's site).
/// The chat frame. For a service with Restrict Access, browsers may only show it inside pages of
/// the allowed origins (`frame-ancestors`), whatever page tries to embed it.
pub async fn frame(State(state): State<AppState>, Query(q): Query<SnippetQuery>) -> Response {
    let snippet = resolve_snippet(&state, &q.contact_id, &q.widget_key).await.ok();
    let allowed = match &snippet {
        Some(s) => crate::api::access::allowed_origins(&state, s.tenant_id, &s.access).await.ok().flatten(),
        None => None,
    };
    // Parley's own pages (the preview) may always show it; a restricted chat with no origin
    // listed is shown nowhere else rather than anywhere.
    let ancestors = match allowed {
        Some(origins) => std::iter::once("'self'".to_owned()).chain(origins).collect::<Vec<_>>().join(" "),
        None => "*".to_owned(),
    };
    page(FRAME_HTML.to_owned(), &ancestors)
}

/// Query of the preview page.
#[derive(Debug, Deserialize)]
pub struct SnippetQuery {
    #[serde(default)]
    pub contact_id: String,
    #[serde(default)]
    pub widget_key: String,
}

/// A host page that embeds a snippet, for trying it out.
pub async fn preview(State(state): State<AppState>, Query(q): Query<SnippetQuery>) -> Response {
    if let Err(e) = resolve_snippet(&state, &q.contact_id, &q.widget_key).await {
        let body = format!("<!doctype html><meta charset=utf-8><title>Parley</title><p>{}</p>", escape_html(&e.detail));
        return (StatusCode::NOT_FOUND, page(body, "'none'")).into_response();
    }
    let body = PREVIEW_HTML
        .replace("{{BASE_URL}}", &escape_html(&state.config.public_url))
        .replace("{{CONTACT_ID}}", &escape_html(&q.contact_id))
        .replace("{{WIDGET_KEY}}", &escape_html(&q.widget_key));
    page(body, "'none'")
}

pub async fn login() -> Response {
    page(LOGIN_HTML.to_owned(), "'none'")
}

/// The workspace, for signed-in agents; others go to the sign-in page.
pub async fn workspace(State(state): State<AppState>, mut parts: Parts) -> Response {
    match Agent::from_request_parts(&mut parts, &state).await {
        Ok(_) => page(AGENT_HTML.to_owned(), "'none'"),
        Err(_) => Redirect::to("/agent/login").into_response(),
    }
}

/// The landing page: where to go.
pub async fn index(State(state): State<AppState>) -> Response {
    let base = escape_html(&state.config.public_url);
    page(
        format!(
            "<!doctype html><html lang=en><meta charset=utf-8><title>Parley</title>\
             <h1>Parley</h1><ul><li><a href=\"{base}/agent/login\">Agent workspace</a></li>\
             <li><a href=\"{base}/api/v1/openapi.json\">API (OpenAPI)</a></li></ul></html>"
        ),
        "'none'",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_html_neutralises_markup_and_quotes() {
        assert_eq!(
            escape_html(r#"<script>"x"&'y'</script>"#),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;"
        );
    }
}
