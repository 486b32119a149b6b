//! The walking skeleton in real headless Chromium: the widget iframe on a customer's page (another
//! origin) and the agent workspace in a second browser, against a real server.

use crate::support::{browser_available, screenshot, sign_in};
use parley_testkit::host::HostPage;
use parley_testkit::webdriver::Chromedriver;
use parley_testkit::{TestServer, fixtures};

/// JS: the texts of the log entries, in document order, with their seq (without the receipt
/// line under one's own messages, which moves on by itself).
const LOG_TEXTS: &str = "Array.from(document.querySelectorAll('li[data-seq]')).map(li => [Number(li.dataset.seq), \
     Array.from(li.childNodes).filter(n => !(n.classList && n.classList.contains('state'))).map(n => n.textContent).join('')])";

fn ascending(v: &serde_json::Value) -> bool {
    let seqs: Vec<i64> = v.as_array().unwrap().iter().map(|p| p[0].as_i64().unwrap()).collect();
    seqs.windows(2).all(|w| w[0] < w[1])
}

#[tokio::test]
async fn visitor_and_agent_chat_through_the_real_pages() {
    if !browser_available() {
        return;
    }
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "browser", 1).await.unwrap();
    let host = HostPage::serve(format!(
        "<!doctype html><html><head><meta charset=utf-8><title>Customer site</title></head><body><h1>Acme shop</h1>\
         <script src=\"{}/widget.js\" data-contact-id=\"{}\" data-widget-key=\"{}\" async></script></body></html>",
        server.base, t.contact_id, t.widget_key
    ))
    .await
    .unwrap();
    let driver = Chromedriver::start().await.unwrap();
    let agent = driver.new_session(1280, 800).await.unwrap();
    let visitor = driver.new_session(1280, 800).await.unwrap();

    // The agent signs in and goes available.
    sign_in(&agent, &server, &t, 0).await;

    // The visitor opens the customer's page, the launcher and the pre-chat form in the iframe.
    visitor.goto(&host.url).await.unwrap();
    visitor.find("#parley-launcher").await.unwrap().click().await.unwrap();
    let frame = visitor.find("#parley-widget-frame").await.unwrap();
    visitor.switch_to_frame(&frame).await.unwrap();
    visitor
        .find("#display_name")
        .await
        .unwrap()
        .send_keys("Vera <img src=x onerror=\"window.pwned=1\">")
        .await
        .unwrap();
    visitor.find("#email").await.unwrap().send_keys("vera@example.com").await.unwrap();
    visitor.find("#first_message").await.unwrap().send_keys("Where is my order?").await.unwrap();
    visitor.find("#privacy_consent").await.unwrap().click().await.unwrap();
    visitor.find("#start").await.unwrap().click().await.unwrap();
    visitor.wait_for_text("#log", fixtures::WELCOME).await.unwrap();
    screenshot(&visitor, "widget-queued-desktop").await;

    // The offer reaches the workspace; the agent accepts.
    agent.wait_for_text("#offers .offer", "Where is my order?").await.unwrap();
    screenshot(&agent, "workspace-offer-desktop").await;
    agent.find("#offers .offer .accept").await.unwrap().click().await.unwrap();
    agent.wait_for_text("#chat-pane", "Where is my order?").await.unwrap();
    visitor.wait_for_text("#log", "Agent 1").await.unwrap();

    // Messages both ways, in order, rendered inert.
    let composer = visitor.find("#composer").await.unwrap();
    composer.send_keys("<script>window.pwned=1</script>Hello from the widget").await.unwrap();
    visitor.find("#send").await.unwrap().click().await.unwrap();
    agent.wait_for_text("#chat-pane .log", "Hello from the widget").await.unwrap();
    agent.find("#chat-pane .composer").await.unwrap().send_keys("Hello Vera, let me check.").await.unwrap();
    agent.find("#chat-pane .send").await.unwrap().click().await.unwrap();
    visitor.wait_for_text("#log", "Hello Vera, let me check.").await.unwrap();

    let vlog = visitor.execute(&format!("return {LOG_TEXTS};"), vec![]).await.unwrap();
    let alog = agent.execute(&format!("return {LOG_TEXTS};"), vec![]).await.unwrap();
    assert!(ascending(&vlog), "visitor log out of order: {vlog}");
    assert!(ascending(&alog), "agent log out of order: {alog}");
    assert!(
        vlog.to_string().contains("<script>window.pwned=1</script>Hello from the widget"),
        "shown literally: {vlog}"
    );
    assert_eq!(visitor.execute("return window.pwned === undefined;", vec![]).await.unwrap(), true);
    assert_eq!(agent.execute("return window.pwned === undefined;", vec![]).await.unwrap(), true);
    screenshot(&visitor, "widget-chat-desktop").await;
    screenshot(&agent, "workspace-chat-desktop").await;

    // The visitor reloads mid-chat: the transcript is intact, nothing repeated.
    visitor.switch_to_parent().await.unwrap();
    visitor.refresh().await.unwrap();
    visitor.find("#parley-launcher").await.unwrap().click().await.unwrap();
    let frame = visitor.find("#parley-widget-frame").await.unwrap();
    visitor.switch_to_frame(&frame).await.unwrap();
    visitor.wait_for_text("#log", "Hello Vera, let me check.").await.unwrap();
    let after = visitor.execute(&format!("return {LOG_TEXTS};"), vec![]).await.unwrap();
    assert_eq!(after, vlog, "transcript after reload");

    // The agent ends; both sides show it.
    agent.find("#chat-pane .end").await.unwrap().click().await.unwrap();
    visitor.wait_for_text("#status", "ended").await.unwrap();
    agent.wait_for_text("#chat-pane", "ended").await.unwrap();
    screenshot(&visitor, "widget-ended-desktop").await;

    // Mobile widths.
    visitor.set_window_size(390, 844).await.unwrap();
    agent.set_window_size(390, 844).await.unwrap();
    screenshot(&visitor, "widget-ended-mobile").await;
    screenshot(&agent, "workspace-mobile").await;

    agent.quit().await.unwrap();
    visitor.quit().await.unwrap();
    server.shutdown().await.unwrap();
}
