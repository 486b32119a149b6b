//! Helpers the integration tests share: a connected chat over real sockets, and driving the
//! real pages in headless Chromium.

use parley_server::clock::Clock;
use parley_testkit::webdriver::{Browser, Chromedriver};
use parley_testkit::{TestServer, Ws, fixtures};
use serde_json::{Value, json};
use std::path::PathBuf;

/// The smallest PNG: one transparent pixel.
pub const PNG_1X1: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00,
    0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// A connected chat: an agent socket that accepted it and the visitor's socket.
pub struct Chat {
    pub t: fixtures::Tenant,
    pub conv: String,
    pub token: String,
    pub agent: Ws,
    pub visitor: Ws,
}

/// Tenant `slug` with `agents` agents; agent 1 (index 0) accepts a chat from "Tess".
pub async fn connected_chat(server: &TestServer, slug: &str, agents: usize) -> Chat {
    let t = fixtures::tenant(&server.base, slug, agents).await.unwrap();
    let (mut agent, _) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    let (conv, token) = t.start_chat(&server.base, "Tess", None).await.unwrap();
    let mut visitor = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    agent.until("offer", |f| f["type"] == "offer").await.unwrap();
    agent.send(&json!({"type": "accept", "conversation_id": conv})).await.unwrap();
    agent.until("chat", |f| f["type"] == "chat").await.unwrap();
    visitor.until("connected", |f| f["entry"]["event"]["type"] == "connected").await.unwrap();
    Chat { t, conv, token, agent, visitor }
}

/// The conversation's log as the tenant admin reads it.
pub async fn log_of(t: &fixtures::Tenant, conv: &str) -> Value {
    let r = t.admin.get(&format!("/api/v1/conversations/{conv}/log")).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

/// The agent sends `text` and waits for its ack; returns its `seq`.
pub async fn agent_says(agent: &mut Ws, conv: &str, id: &str, text: &str) -> i64 {
    agent.send(&json!({"type": "send", "conversation_id": conv, "client_msg_id": id, "text": text})).await.unwrap();
    let ack = agent.until("ack", |f| f["type"] == "ack" && f["client_msg_id"] == id).await.unwrap();
    ack["seq"].as_i64().unwrap()
}

/// The visitor sends `text` and waits for its ack; returns its `seq`.
pub async fn visitor_says(visitor: &mut Ws, id: &str, text: &str) -> i64 {
    visitor.send(&json!({"type": "send", "client_msg_id": id, "text": text})).await.unwrap();
    let ack = visitor.until("ack", |f| f["type"] == "ack" && f["client_msg_id"] == id).await.unwrap();
    ack["seq"].as_i64().unwrap()
}

/// `false` (test skipped) when Chromium is missing, unless the run requires it.
pub fn browser_available() -> bool {
    if Chromedriver::available() {
        return true;
    }
    assert!(std::env::var_os("PARLEY_REQUIRE_BROWSER").is_none(), "chromium and chromedriver are required");
    eprintln!("skipped: chromium/chromedriver not installed");
    false
}

/// Where screenshots go (`PARLEY_ARTIFACTS`, else `artifacts/` at the workspace root).
pub fn artifacts() -> PathBuf {
    let dir = std::env::var_os("PARLEY_ARTIFACTS")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../artifacts"), PathBuf::from);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub async fn screenshot(b: &Browser, name: &str) {
    let png = b.screenshot_png().await.unwrap();
    std::fs::write(artifacts().join(format!("{name}.png")), png).unwrap();
}

/// A JavaScript string literal.
pub fn js(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// JS: the trimmed text of the element matching `css`, or `''`.
pub fn text_of(css: &str) -> String {
    format!("((document.querySelector({}) || {{}}).textContent || '').trim()", js(css))
}

/// Signs agent `n` in through the sign-in page and sets them Available with the selector.
pub async fn sign_in(b: &Browser, server: &TestServer, t: &fixtures::Tenant, n: usize) {
    b.goto(&format!("{}/agent/login?tenant={}", server.base, t.slug)).await.unwrap();
    b.find("#email").await.unwrap().send_keys(&t.agents[n].email).await.unwrap();
    b.find("#password").await.unwrap().send_keys(&t.agents[n].password).await.unwrap();
    b.find("#sign-in").await.unwrap().click().await.unwrap();
    // A script running while the page navigates dies with it, so first let the browser arrive
    // (WebDriver's URL command waits for a navigation in progress), then wait in the new page.
    // Each check is a WebDriver round trip (no sleeping); the password check may take a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !b.current_url().await.is_ok_and(|u| u.ends_with("/agent")) {
        assert!(std::time::Instant::now() < deadline, "the sign-in did not lead to the workspace");
    }
    b.wait_for("!document.querySelector('#presence').disabled", 10_000).await.unwrap();
    choose_presence(b, "available").await;
}

pub async fn choose_presence(b: &Browser, presence: &str) {
    b.execute(
        "const s = document.querySelector('#presence'); s.value = arguments[0]; \
         s.dispatchEvent(new Event('change', {bubbles: true}));",
        vec![json!(presence)],
    )
    .await
    .unwrap();
    b.wait_for(&format!("document.querySelector('.presence').dataset.presence === '{presence}'"), 5_000).await.unwrap();
}

/// Two desktop-sized pages of one connected chat: agent 1 signed in and Available in the
/// workspace, and the widget frame where "Tess" started a chat that agent accepted.
pub async fn connected_pages(driver: &Chromedriver, server: &TestServer, t: &fixtures::Tenant) -> (Browser, Browser) {
    let agent = driver.new_session(1280, 800).await.unwrap();
    let visitor = driver.new_session(1280, 800).await.unwrap();
    sign_in(&agent, server, t, 0).await;
    visitor
        .goto(&format!("{}/widget/frame?contact_id={}&widget_key={}", server.base, t.contact_id, t.widget_key))
        .await
        .unwrap();
    visitor.find("#display_name").await.unwrap().send_keys("Tess").await.unwrap();
    visitor.find("#email").await.unwrap().send_keys("tess@example.com").await.unwrap();
    visitor.find("#privacy_consent").await.unwrap().click().await.unwrap();
    visitor.find("#start").await.unwrap().click().await.unwrap();
    agent.find("#offers .offer .accept").await.unwrap().click().await.unwrap();
    visitor.wait_for_text("#status", "Connected with Agent 1").await.unwrap();
    agent.wait_for("!document.querySelector('#agent-composer').disabled", 5_000).await.unwrap();
    (agent, visitor)
}

/// A further workspace tab of agent `n`, read up to its `hello` only (its replay follows).
pub async fn agent_tab(server: &TestServer, t: &fixtures::Tenant, n: usize) -> Ws {
    let cookie = t.login(&server.base, n).await.unwrap();
    let mut ws = Ws::connect(&format!("{}/ws/v1/agent", server.ws_base()), Some(&cookie)).await.unwrap();
    ws.until("hello", |f| f["type"] == "hello").await.unwrap();
    ws
}

/// Moves the server's clock forward to the wall clock the browser uses.
#[allow(clippy::disallowed_methods)] // the browser's clock is the wall clock
pub fn align_clock(server: &TestServer) {
    let behind = time::OffsetDateTime::now_utc() - server.clock.now();
    if behind > time::Duration::ZERO {
        server.clock.advance(behind);
    }
}

/// JS: whether the element matching `css` exists and is rendered.
pub fn shown(css: &str) -> String {
    let css = js(css);
    format!("(() => {{ const e = document.querySelector({css}); return !!e && e.getClientRects().length > 0; }})()")
}

/// JS: whether nothing matching `css` is rendered.
pub fn gone(css: &str) -> String {
    let css = js(css);
    format!("(() => {{ const e = document.querySelector({css}); return !e || e.getClientRects().length === 0; }})()")
}

/// Fails on uncaught script errors and Content-Security-Policy violations in the page.
pub async fn assert_no_page_errors(b: &Browser) {
    let errors: Vec<Value> = b
        .browser_log()
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e["level"] == "SEVERE")
        .filter(|e| !e["message"].as_str().unwrap_or_default().contains("favicon.ico"))
        .collect();
    assert!(errors.is_empty(), "page errors: {errors:?}");
}
