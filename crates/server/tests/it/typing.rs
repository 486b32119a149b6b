//! Typing indicators over real WebSockets: the customer's reach the agent following the chat,
//! the agent's reach the visitor, only for the agent's own chats, rate-limited, and never
//! written to the conversation log nor replayed; and in the real pages (headless Chromium).

use crate::support::{Chat, agent_says, browser_available, connected_chat, connected_pages, log_of, text_of};
use parley_testkit::webdriver::{Browser, Chromedriver};
use parley_testkit::{TestServer, Ws, fixtures};
use serde_json::{Value, json};

/// The next frame that is a typing signal or a message entry with `text`.
async fn typing_or_message(ws: &mut Ws, text: &str) -> Value {
    ws.until("typing or message", |f| f["type"] == "typing" || (f["type"] == "entry" && f["entry"]["text"] == text))
        .await
        .unwrap()
}

#[tokio::test]
async fn typing_reaches_the_other_side_and_is_never_stored() {
    let server = TestServer::sqlite().await;
    let Chat { t, conv, token, mut agent, mut visitor } = connected_chat(&server, "typing", 1).await;
    let before = log_of(&t, &conv).await;

    visitor.send(&json!({"type": "typing"})).await.unwrap();
    let got = agent.until("customer typing", |f| f["type"] == "typing").await.unwrap();
    assert_eq!(got, json!({"type": "typing", "conversation_id": conv, "who": "customer"}));

    agent.send(&json!({"type": "typing", "conversation_id": conv})).await.unwrap();
    let got = visitor.until("agent typing", |f| f["type"] == "typing").await.unwrap();
    assert_eq!(got, json!({"type": "typing", "who": "agent", "name": "Agent 1"}));

    let after = log_of(&t, &conv).await;
    assert_eq!(after, before, "typing writes nothing to the log");
    assert!(!after.to_string().contains("typing"), "{after}");

    // Nor is it replayed: a fresh visitor socket and a second workspace tab replay the log, and
    // the first thing after it that is typing or the next message is that message.
    let mut again = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    agent_says(&mut agent, &conv, "a-1", "Hello Tess").await;
    assert_eq!(typing_or_message(&mut again, "Hello Tess").await["type"], "entry");
    let (mut tab, _) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    visitor.send(&json!({"type": "send", "client_msg_id": "v-1", "text": "Hi there"})).await.unwrap();
    assert_eq!(typing_or_message(&mut tab, "Hi there").await["type"], "entry");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_agent_cannot_signal_typing_in_someone_elses_chat() {
    let server = TestServer::sqlite().await;
    let Chat { t, conv, mut agent, mut visitor, .. } = connected_chat(&server, "typing-other", 2).await;
    // Online only now, so the chat was never offered to the second agent.
    let (mut other, _) = t.agent_online(&server.base, &server.ws_base(), 1).await.unwrap();

    other.send(&json!({"type": "typing", "conversation_id": conv})).await.unwrap();
    let refused = other.until("error", |f| f["type"] == "error").await.unwrap();
    assert_eq!((refused["code"].as_str(), refused["conversation_id"].as_str()), (Some("not_your_chat"), Some(&*conv)));

    // Had the refused typing gone out, it would reach the visitor before this message.
    agent_says(&mut agent, &conv, "a-1", "Still here").await;
    let next = typing_or_message(&mut visitor, "Still here").await;
    assert_eq!((next["type"].as_str(), next["entry"]["sender"]["name"].as_str()), (Some("entry"), Some("Agent 1")));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_customer_typing_more_than_once_a_second_is_passed_on_once() {
    let server = TestServer::sqlite().await;
    let Chat { conv, mut agent, mut visitor, .. } = connected_chat(&server, "typing-rate", 1).await;

    visitor.send(&json!({"type": "typing"})).await.unwrap();
    visitor.send(&json!({"type": "typing"})).await.unwrap();
    visitor.send(&json!({"type": "send", "client_msg_id": "v-1", "text": "one"})).await.unwrap();
    assert_eq!(typing_or_message(&mut agent, "one").await["type"], "typing");
    assert_eq!(typing_or_message(&mut agent, "one").await["type"], "entry", "the second typing is dropped");

    server.clock.advance(time::Duration::seconds(1));
    visitor.send(&json!({"type": "typing"})).await.unwrap();
    let got = agent.until("typing a second later", |f| f["type"] == "typing").await.unwrap();
    assert_eq!(got["conversation_id"], conv.as_str());
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn malformed_typing_frames_are_refused_with_the_usual_codes() {
    let server = TestServer::sqlite().await;
    let Chat { conv, mut agent, mut visitor, .. } = connected_chat(&server, "typing-bad", 1).await;

    visitor.send(&json!({"type": "typing", "text": "hel"})).await.unwrap();
    assert_eq!(visitor.until("error", |f| f["type"] == "error").await.unwrap()["code"], "unknown_field");

    let bad = [
        (json!({"type": "typing", "conversation_id": conv, "who": "agent"}), "unknown_field"),
        (json!({"type": "typing"}), "invalid_field"),
        (json!({"type": "typing", "conversation_id": "not-a-uuid"}), "invalid_field"),
    ];
    for (frame, code) in bad {
        agent.send(&frame).await.unwrap();
        let e = agent.until("error", |f| f["type"] == "error").await.unwrap();
        assert_eq!(e["code"], code, "{frame}");
    }
    // None of them went through: the customer's next typing-or-message is the agent's message.
    agent_says(&mut agent, &conv, "a-1", "All good").await;
    assert_eq!(typing_or_message(&mut visitor, "All good").await["type"], "entry");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn typing_in_an_ended_chat_is_refused_to_the_agent() {
    let server = TestServer::sqlite().await;
    let Chat { conv, mut agent, .. } = connected_chat(&server, "typing-ended", 1).await;
    agent.send(&json!({"type": "end", "conversation_id": conv})).await.unwrap();
    agent.until("ended", |f| f["type"] == "entry" && f["entry"]["event"]["type"] == "ended").await.unwrap();
    agent.send(&json!({"type": "typing", "conversation_id": conv})).await.unwrap();
    let e = agent.until("error", |f| f["type"] == "error").await.unwrap();
    assert_eq!(e["code"], "conversation_ended");
    server.shutdown().await.unwrap();
}

/// JS for `wait_for`: `"typing: <text of typing>"` once `log` shows `message` (`false` before).
fn typing_once_logged(log: &str, typing: &str, message: &str) -> String {
    format!(
        "({}.includes({})) ? 'typing: ' + {} : false",
        text_of(log),
        Value::String(message.to_owned()),
        text_of(typing)
    )
}

async fn assert_polite_live_region(b: &Browser, css: &str) {
    let e = b.find(css).await.unwrap();
    assert_eq!(e.attr("role").await.unwrap().as_deref(), Some("status"), "{css}");
    assert_eq!(e.attr("aria-live").await.unwrap().as_deref(), Some("polite"), "{css}");
}

#[tokio::test]
async fn both_pages_show_the_other_side_typing_until_their_message_arrives() {
    if !browser_available() {
        return;
    }
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "typing-ui", 1).await.unwrap();
    let driver = Chromedriver::start().await.unwrap();
    let (agent, visitor) = connected_pages(&driver, &server, &t).await;

    // The agent types: the widget says so, politely, and stops when the message arrives.
    assert_polite_live_region(&visitor, "#typing").await;
    assert_eq!(visitor.execute(&format!("return {};", text_of("#typing")), vec![]).await.unwrap(), "");
    agent.find("#agent-composer").await.unwrap().send_keys("Hello Te").await.unwrap();
    visitor.wait_for_text("#typing", "Agent 1 is typing…").await.unwrap();
    agent.find("#agent-composer").await.unwrap().send_keys("ss").await.unwrap();
    agent.find("#pane-chat .send").await.unwrap().click().await.unwrap();
    let left = visitor.wait_for(&typing_once_logged("#log", "#typing", "Hello Tess"), 10_000).await.unwrap();
    assert_eq!(left, "typing: ", "the agent's message clears the indicator");

    // The customer types: the workspace says so in that chat, likewise.
    assert_polite_live_region(&agent, "#pane-chat .typing").await;
    visitor.find("#composer").await.unwrap().send_keys("Hi, my ord").await.unwrap();
    agent.wait_for_text("#pane-chat .typing", "Customer is typing…").await.unwrap();
    visitor.find("#composer").await.unwrap().send_keys("er").await.unwrap();
    visitor.find("#send").await.unwrap().click().await.unwrap();
    let left = agent
        .wait_for(&typing_once_logged("#pane-chat .log", "#pane-chat .typing", "Hi, my order"), 10_000)
        .await
        .unwrap();
    assert_eq!(left, "typing: ", "the customer's message clears the indicator");

    let conv =
        agent.execute("return document.querySelector('#pane-chat').dataset.conversationId;", vec![]).await.unwrap();
    let log = log_of(&t, conv.as_str().unwrap()).await;
    assert!(!log.to_string().contains("typing"), "{log}");
    agent.quit().await.unwrap();
    visitor.quit().await.unwrap();
    server.shutdown().await.unwrap();
}
