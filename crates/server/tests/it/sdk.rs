//! The visitor SDK on a customer's own page (another origin) in headless Chromium: the example
//! page starts a chat, shows the agent's messages as text, sends, survives a reload without a
//! lost or repeated entry, and shows field errors with their paths.

use crate::support::{browser_available, js, screenshot, text_of};
use parley_testkit::host::HostPage;
use parley_testkit::webdriver::{Browser, Chromedriver};
use parley_testkit::{TestServer, fixtures};
use serde_json::json;

/// JS: how many log lines the example page shows with exactly this text.
fn lines_with(text: &str) -> String {
    format!("[...document.querySelectorAll('#log li')].filter(li => li.textContent.includes({})).length", js(text))
}

async fn fill(page: &Browser, name: &str, email: &str, message: &str) {
    for (id, value) in [("#name", name), ("#email", email), ("#first", message)] {
        let field = page.find(id).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }
}

#[tokio::test]
async fn the_sdk_example_chats_from_another_website_and_resumes_after_a_reload() {
    if !browser_available() {
        return;
    }
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "sdk", 1).await.unwrap();
    let html = parley_server::pages::sdk_example_page(&server.base, &t.contact_id, &t.widget_key);
    let host = HostPage::serve(html).await.unwrap();
    assert!(!host.url.starts_with(&server.base), "the page is on another origin");
    let (mut agent, _) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();

    let driver = Chromedriver::start().await.unwrap();
    let page = driver.new_session(1024, 800).await.unwrap();
    page.goto(&host.url).await.unwrap();

    // A bad e-mail comes back with its field path and nothing starts.
    fill(&page, "Sam", "not-an-address", "Hi from the shop").await;
    page.find("#consent").await.unwrap().click().await.unwrap();
    page.find("#start").await.unwrap().click().await.unwrap();
    page.wait_for(&format!("{}.includes('/email')", text_of("#form-error")), 10_000).await.unwrap();

    fill(&page, "Sam", "sam@example.com", "Hi from the shop").await;
    page.find("#start").await.unwrap().click().await.unwrap();
    let offer = agent.until("offer", |f| f["type"] == "offer").await.unwrap();
    let conv = offer["offer"]["conversation_id"].as_str().unwrap().to_owned();
    assert_eq!(offer["offer"]["first_message"], "Hi from the shop");
    page.wait_for(&format!("{} === 'Connected'", text_of("#state")), 10_000).await.unwrap();
    agent.send(&json!({"type": "accept", "conversation_id": conv})).await.unwrap();
    page.wait_for(&format!("{} === 1", lines_with("Agent 1 joined")), 10_000).await.unwrap();

    // The agent's text stays text, however it looks.
    let trap = "<img src=x onerror=document.title=1> see you";
    agent.send(&json!({"type": "send", "conversation_id": conv, "client_msg_id": "a1", "text": trap})).await.unwrap();
    page.wait_for(&format!("{} === 1", lines_with(trap)), 10_000).await.unwrap();
    assert_eq!(page.execute("return document.querySelectorAll('#log img').length;", vec![]).await.unwrap(), 0);
    agent.send(&json!({"type": "typing", "conversation_id": conv})).await.unwrap();
    page.wait_for(&format!("{} === 'Agent 1 is typing…'", text_of("#typing")), 10_000).await.unwrap();

    // The page's message reaches the agent, acknowledged once.
    page.find("#text").await.unwrap().send_keys("Thanks, bye for now").await.unwrap();
    page.find("#send").await.unwrap().click().await.unwrap();
    let got = agent
        .until("customer message", |f| {
            f["entry"]["sender"]["role"] == "customer" && f["entry"]["text"] == "Thanks, bye for now"
        })
        .await
        .unwrap();
    assert_eq!(got["entry"]["sender"]["name"], "Sam");

    // A reload resumes: every entry once, none lost, none twice.
    let before = page.execute("return document.querySelectorAll('#log li').length;", vec![]).await.unwrap();
    page.refresh().await.unwrap();
    page.wait_for(&format!("document.querySelectorAll('#log li').length === {before}"), 10_000).await.unwrap();
    assert_eq!(page.execute(&format!("return {};", lines_with("Thanks, bye for now")), vec![]).await.unwrap(), 1);
    assert_eq!(page.execute(&format!("return {};", lines_with(trap)), vec![]).await.unwrap(), 1);
    page.wait_for(&format!("{} === 'Connected'", text_of("#state")), 10_000).await.unwrap();
    assert!(!page.find("#start-form").await.unwrap().is_displayed().await.unwrap(), "the chat, not the form");
    screenshot(&page, "sdk-example-desktop").await;

    page.find("#end").await.unwrap().click().await.unwrap();
    agent.until("ended", |f| f["entry"]["event"]["type"] == "ended").await.unwrap();
    page.wait_for(&format!("{} === 'Ended'", text_of("#state")), 10_000).await.unwrap();
    assert_ne!(page.title().await.unwrap(), "1");
    // Script errors only: the refused start (422) and the shop's missing favicon are network lines.
    let errors: Vec<serde_json::Value> = page
        .browser_log()
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e["level"] == "SEVERE" && e["source"] != "network")
        .collect();
    assert!(errors.is_empty(), "page errors: {errors:?}");
    page.quit().await.unwrap();
    server.shutdown().await.unwrap();
}
