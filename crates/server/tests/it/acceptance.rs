//! The whole visit, as people do it, in two headless Chromium browsers against a real server:
//! a customer's page on an allowed website embeds the widget; the visitor fills the pre-chat
//! form and sees their place in the queue; the agent signs in to My Sessions and accepts;
//! messages, typing and read receipts go both ways; a file is sent and opened; the visitor
//! reloads mid-chat with the transcript intact; the agent ends, does after-chat work with codes
//! and ends it; the history shows the outcome. The same snippet on another website refuses.

use crate::support::{
    PNG_1X1, align_clock, assert_no_page_errors, browser_available, gone, screenshot, shown, sign_in, text_of,
};
use parley_testkit::host::HostPage;
use parley_testkit::webdriver::Chromedriver;
use parley_testkit::{TestServer, fixtures};
use serde_json::json;

/// JS: the receipt under the last own message in `log`.
fn last_receipt(log: &str, own: &str) -> String {
    text_of(&format!("{log} li.{own}[data-seq]:last-of-type .state"))
}

/// JS: the log's entries as `[seq, text]`, without the receipt line that moves on by itself.
const LOG_TEXTS: &str = "Array.from(document.querySelectorAll('li[data-seq]')).map(li => [Number(li.dataset.seq), \
     Array.from(li.childNodes).filter(n => !(n.classList && n.classList.contains('state'))).map(n => n.textContent).join('')])";

fn origin_of(url: &str) -> String {
    url.trim_end_matches('/').to_owned()
}

#[tokio::test]
async fn a_visitor_and_an_agent_go_through_a_whole_chat_on_the_real_pages() {
    if !browser_available() {
        return;
    }
    let server = TestServer::sqlite().await;
    align_clock(&server);
    let t = fixtures::tenant(&server.base, "acceptance", 1).await.unwrap();
    let snippet = format!(
        "<script src=\"{}/widget.js\" data-contact-id=\"{}\" data-widget-key=\"{}\" async></script>",
        server.base, t.contact_id, t.widget_key
    );
    let page = |shop: &str| {
        format!(
            "<!doctype html><html><head><meta charset=utf-8><title>{shop}</title></head><body><h1>{shop}</h1>{snippet}</body></html>"
        )
    };
    let shop = HostPage::serve(page("Acme shop")).await.unwrap();
    let elsewhere = HostPage::serve(page("Someone else's site")).await.unwrap();

    // Only the shop's website may use the chat; after-chat work lasts a minute; two codes.
    let tpl =
        t.admin.post("/api/v1/domain-templates", &json!({"name": "Shop", "origins": [origin_of(&shop.url)]})).await;
    let tpl = tpl.unwrap();
    assert_eq!(tpl.status, 201, "{}", tpl.body);
    let resolved = t.admin.post("/api/v1/codes", &json!({"name": "Resolved"})).await.unwrap().body["id"].clone();
    let settings = json!({
        "access": {"restrict_access": true, "domain_template_ids": [tpl.body["id"]]},
        "routing": {"acw_secs": 60},
        "codes": {"primary": [resolved]}
    });
    let r = t.admin.send("PATCH", &format!("/api/v1/services/{}", t.service_id), &settings).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);

    let driver = Chromedriver::start().await.unwrap();
    let visitor = driver.new_session(1280, 800).await.unwrap();
    let agent = driver.new_session(1280, 900).await.unwrap();

    // On another website the same snippet says so and shows no chat.
    visitor.goto(&elsewhere.url).await.unwrap();
    visitor.wait_for_text("#parley-widget-refused", "Chat is not available on this website.").await.unwrap();
    assert_eq!(visitor.wait_for(&gone("#parley-launcher"), 1_000).await.unwrap(), true);

    // On the shop: the pre-chat form, then the queue while nobody is there yet.
    visitor.goto(&shop.url).await.unwrap();
    visitor.find("#parley-launcher").await.unwrap().click().await.unwrap();
    let frame = visitor.find("#parley-widget-frame").await.unwrap();
    visitor.switch_to_frame(&frame).await.unwrap();
    visitor.find("#display_name").await.unwrap().send_keys("Vera").await.unwrap();
    visitor.find("#email").await.unwrap().send_keys("vera@example.com").await.unwrap();
    visitor.find("#first_message").await.unwrap().send_keys("Where is my order 1042?").await.unwrap();
    visitor.find("#privacy_consent").await.unwrap().click().await.unwrap();
    visitor.find("#start").await.unwrap().click().await.unwrap();
    visitor.wait_for_text("#queue", "You are number 1 in the queue").await.unwrap();
    screenshot(&visitor, "acceptance-widget-queue-desktop").await;

    // The agent signs in to My Sessions, gets the offer and accepts it.
    sign_in(&agent, &server, &t, 0).await;
    agent.wait_for_text("#offers .offer", "Where is my order 1042?").await.unwrap();
    agent.find("#offers .offer .accept").await.unwrap().click().await.unwrap();
    agent.wait_for("!document.querySelector('#agent-composer').disabled", 10_000).await.unwrap();
    visitor.wait_for_text("#status", "Connected with Agent 1").await.unwrap();
    visitor.wait_for(&format!("{} === ''", text_of("#queue")), 5_000).await.unwrap();

    // Typing and messages both ways, each read by the other side.
    visitor.find("#composer").await.unwrap().send_keys("Hello, any news?").await.unwrap();
    agent.wait_for_text("#pane-chat .typing", "Customer is typing…").await.unwrap();
    visitor.find("#send").await.unwrap().click().await.unwrap();
    agent.wait_for_text("#pane-chat .log", "Hello, any news?").await.unwrap();
    visitor.wait_for(&format!("{} === 'Read'", last_receipt("#log", "msg-customer")), 10_000).await.unwrap();
    agent.find("#agent-composer").await.unwrap().send_keys("Hi Vera, it ships today.").await.unwrap();
    visitor.wait_for_text("#typing", "Agent 1 is typing…").await.unwrap();
    agent.find("#pane-chat .send").await.unwrap().click().await.unwrap();
    visitor.wait_for_text("#log", "Hi Vera, it ships today.").await.unwrap();
    agent.wait_for(&format!("{} === 'Read'", last_receipt("#pane-chat .log", "mine")), 10_000).await.unwrap();

    // A picture from the visitor, shown and opened on both pages.
    let dir = tempfile::tempdir().unwrap();
    let picture = dir.path().join("parcel.png");
    std::fs::write(&picture, PNG_1X1).unwrap();
    visitor.find("#file").await.unwrap().send_keys(picture.to_str().unwrap()).await.unwrap();
    let loaded = |log: &str| {
        format!(
            "Array.from(document.querySelectorAll('{log} a.file-image img')).some(i => i.complete && i.naturalWidth > 0)"
        )
    };
    agent.wait_for(&loaded("#pane-chat .log"), 10_000).await.unwrap();
    visitor.wait_for(&loaded("#log"), 10_000).await.unwrap();
    let href = agent.execute("return document.querySelector('#pane-chat .log a.file-image').href;", vec![]).await;
    let href = href.unwrap();
    assert!(href.as_str().unwrap().contains("/api/v1/agent/chats/"), "opened with the agent's session: {href}");
    screenshot(&visitor, "acceptance-widget-chat-desktop").await;
    screenshot(&agent, "acceptance-workspace-chat-desktop").await;

    // The visitor reloads mid-chat: every entry again, once, in order.
    let before = visitor.execute(&format!("return {LOG_TEXTS};"), vec![]).await.unwrap();
    visitor.switch_to_parent().await.unwrap();
    visitor.refresh().await.unwrap();
    let frame = visitor.find("#parley-widget-frame").await.unwrap();
    visitor.switch_to_frame(&frame).await.unwrap();
    visitor.wait_for_text("#log", "Hi Vera, it ships today.").await.unwrap();
    visitor.wait_for(&loaded("#log"), 10_000).await.unwrap();
    let after = visitor.execute(&format!("return {LOG_TEXTS};"), vec![]).await.unwrap();
    assert_eq!(after, before, "the transcript after the reload");

    // The agent ends: after-chat work shows; codes are set; the agent ends it early.
    agent.find("#chat-pane .end").await.unwrap().click().await.unwrap();
    visitor.wait_for_text("#status", "Chat ended").await.unwrap();
    agent.wait_for(&shown("#acw-banner"), 10_000).await.unwrap();
    agent.find(".wrap-up > summary").await.unwrap().click().await.unwrap();
    agent.find(".codes-primary .code").await.unwrap().click().await.unwrap();
    agent.wait_for_text(".wrap-up-status", "Saved").await.unwrap();
    screenshot(&agent, "acceptance-workspace-acw-desktop").await;
    agent.find("#acw-end").await.unwrap().click().await.unwrap();
    agent.wait_for(&gone("#acw-banner"), 10_000).await.unwrap();

    // The history shows how it went.
    let item = "#history .history-item";
    agent.wait_for_text(item, "Handled").await.unwrap();
    agent.wait_for_text(item, "Vera").await.unwrap();
    agent.wait_for_text(item, "Resolved").await.unwrap();
    // The list is drawn anew as chats change: ask the page, not an element that may be gone.
    let coloured = format!("!!document.querySelector({})", crate::support::js(&format!("{item}.outcome-good")));
    agent.wait_for(&coloured, 5_000).await.unwrap();
    screenshot(&agent, "acceptance-workspace-history-desktop").await;
    visitor.set_window_size(390, 844).await.unwrap();
    agent.set_window_size(390, 844).await.unwrap();
    screenshot(&visitor, "acceptance-widget-ended-mobile").await;
    screenshot(&agent, "acceptance-workspace-mobile").await;

    assert_no_page_errors(&agent).await;
    agent.quit().await.unwrap();
    visitor.quit().await.unwrap();
    server.shutdown().await.unwrap();
}
