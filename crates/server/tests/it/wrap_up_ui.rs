//! Codes, tags and the history in the real workspace page (headless Chromium): the agent sums
//! up a chat with a click and a typed tag, the history shows how each chat ended in its colour,
//! and nothing typed becomes markup.

use crate::support::{browser_available, js, screenshot, sign_in, text_of};
use parley_testkit::webdriver::Chromedriver;
use parley_testkit::{Api, TestServer, fixtures};
use serde_json::json;

#[tokio::test]
async fn the_agent_codes_and_tags_a_chat_and_the_history_shows_each_outcome_in_its_colour() {
    if !browser_available() {
        return;
    }
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "wrap-ui", 1).await.unwrap();
    let mut ids = Vec::new();
    for name in ["Resolved", "Refund", "Escalated"] {
        let r = t.admin.post("/api/v1/codes", &json!({"name": name})).await.unwrap();
        ids.push(r.body["id"].as_str().unwrap().to_owned());
    }
    let lists = json!({"codes": {"primary": [ids[0], ids[1]], "secondary": [ids[2]]}});
    let r = t.admin.send("PATCH", &format!("/api/v1/services/{}", t.service_id), &lists).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    // A personal widget too, for a chat the agent will miss.
    let user = &t.agents[0].id;
    let r = t
        .admin
        .send("PUT", &format!("/api/v1/users/{user}/direct-chat"), &json!({"enabled": true, "invite_secs": 30}))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);

    let driver = Chromedriver::start().await.unwrap();
    let agent = driver.new_session(1280, 900).await.unwrap();
    sign_in(&agent, &server, &t, 0).await;
    let (conv, _) = t.start_chat(&server.base, "Olga", Some("Where is my refund?")).await.unwrap();
    let offer = format!("#offers .offer[data-conversation-id='{conv}']");
    agent.wait_for_text(&offer, "Where is my refund?").await.unwrap();
    agent.find(&format!("{offer} .accept")).await.unwrap().click().await.unwrap();
    agent.wait_for("!document.querySelector('#agent-composer').disabled", 5_000).await.unwrap();

    // The service's codes, primary first and the rest behind "More codes".
    agent.find(".wrap-up > summary").await.unwrap().click().await.unwrap();
    agent.wait_for("document.querySelectorAll('.codes-primary .code').length === 2", 5_000).await.unwrap();
    let names = agent
        .execute("return [...document.querySelectorAll('.wrap-up .code')].map(b => b.textContent);", vec![])
        .await
        .unwrap();
    assert_eq!(names, json!(["Resolved", "Refund", "Escalated"]));
    agent.find(&format!(".codes-primary .code[data-code-id='{}']", ids[1])).await.unwrap().click().await.unwrap();
    agent.wait_for_text(".wrap-up-status", "Saved").await.unwrap();
    let pressed = agent.find(&format!(".code[data-code-id='{}']", ids[1])).await.unwrap();
    assert_eq!(pressed.attr("aria-pressed").await.unwrap().as_deref(), Some("true"));

    // A tag typed with markup stays text.
    let tag = "<img src=x onerror=document.title=1>";
    agent.find("#tag-input").await.unwrap().send_keys(tag).await.unwrap();
    agent.find("#tag-input").await.unwrap().send_keys(parley_testkit::webdriver::keys::ENTER).await.unwrap();
    agent.wait_for(&format!("{} === {}", text_of(".tags .tag-text"), js(tag)), 5_000).await.unwrap();
    agent.wait_for_text(".wrap-up-status", "Saved").await.unwrap();
    agent.wait_for_text(".wrap-up-summary", "1 code, 1 tag").await.unwrap();
    screenshot(&agent, "workspace-codes-desktop").await;
    let me = Api::new(&server.base).cookie(&t.login(&server.base, 0).await.unwrap());
    let saved = me.get(&format!("/api/v1/agent/chats/{conv}/wrap-up")).await.unwrap();
    assert_eq!(saved.body["wrap_up"]["codes"], json!([ids[1]]));
    assert_eq!(saved.body["wrap_up"]["tags"], json!([tag]));

    // Ended, it is in the history in green, with its code and tag.
    agent.find("#chat-pane .end").await.unwrap().click().await.unwrap();
    let item = format!("#history .history-item[data-conversation-id='{conv}']");
    agent.wait_for_text(&item, "Handled").await.unwrap();
    // The list is drawn anew as chats change: ask the page, not an element that may be gone.
    let coloured = format!("!!document.querySelector({})", crate::support::js(&format!("{item}.outcome-good")));
    agent.wait_for(&coloured, 5_000).await.unwrap();
    agent.wait_for_text(&item, "Refund").await.unwrap();

    // A personal chat the agent lets run out shows as missed, in red.
    let snippet = t.admin.get(&format!("/api/v1/users/{user}/snippet")).await.unwrap().body;
    let form = json!({"contact_id": snippet["contact_id"], "widget_key": snippet["widget_key"],
                      "display_name": "Pia", "email": "pia@example.com", "privacy_consent": true});
    let r = Api::new(&server.base).post("/api/v1/widget/conversations", &form).await.unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let missed = r.body["conversation_id"].as_str().unwrap().to_owned();
    agent.wait_for_text(&format!("#offers .offer[data-conversation-id='{missed}']"), "Pia").await.unwrap();
    server.clock.advance(time::Duration::seconds(30));
    let item = format!("#history .history-item[data-conversation-id='{missed}']");
    agent.wait_for_text(&item, "Missed").await.unwrap();
    // The list is drawn anew as chats change: ask the page, not an element that may be gone.
    let coloured = format!("!!document.querySelector({})", crate::support::js(&format!("{item}.outcome-bad")));
    agent.wait_for(&coloured, 5_000).await.unwrap();
    agent.wait_for_text(&item, "Personal chat").await.unwrap();

    let images = agent.execute("return document.querySelectorAll('.wrap-up img, #history img').length;", vec![]);
    assert_eq!(images.await.unwrap(), json!(0), "no markup from a tag");
    assert_ne!(agent.title().await.unwrap(), "1");
    screenshot(&agent, "workspace-history-desktop").await;
    agent.set_window_size(390, 844).await.unwrap();
    screenshot(&agent, "workspace-history-mobile").await;
    agent.quit().await.unwrap();
    server.shutdown().await.unwrap();
}
