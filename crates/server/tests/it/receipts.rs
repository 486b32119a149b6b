//! Delivered and read receipts over real WebSockets: each side reports how far it has received
//! and read, the other side is told when that moves, the marks are stored (a new socket hears
//! them after its replay) and never go back; and in the real pages (headless Chromium).

use crate::support::{
    Chat, agent_says, agent_tab, browser_available, connected_chat, connected_pages, log_of, text_of, visitor_says,
};
use parley_testkit::webdriver::Chromedriver;
use parley_testkit::{TestServer, Ws, fixtures};
use serde_json::{Value, json};

/// The next frame that is a receipt or a message entry with `text`.
async fn receipt_or_message(ws: &mut Ws, text: &str) -> Value {
    ws.until("receipt or message", |f| f["type"] == "receipt" || (f["type"] == "entry" && f["entry"]["text"] == text))
        .await
        .unwrap()
}

#[tokio::test]
async fn each_side_hears_how_far_the_other_has_received_and_read() {
    let server = TestServer::sqlite().await;
    let Chat { t, conv, token, mut agent, mut visitor } = connected_chat(&server, "receipts", 1).await;
    let before = log_of(&t, &conv).await;

    let hello = agent_says(&mut agent, &conv, "a-1", "Hello Tess").await;
    visitor.send(&json!({"type": "delivered", "seq": hello})).await.unwrap();
    let got = agent.until("delivered", |f| f["type"] == "receipt").await.unwrap();
    assert_eq!(
        got,
        json!({"type": "receipt", "conversation_id": conv, "reader": "customer", "delivered_seq": hello, "read_seq": 0})
    );
    visitor.send(&json!({"type": "read", "seq": hello})).await.unwrap();
    let got = agent.until("read", |f| f["type"] == "receipt").await.unwrap();
    assert_eq!((got["delivered_seq"].as_i64(), got["read_seq"].as_i64()), (Some(hello), Some(hello)));

    let question = visitor_says(&mut visitor, "v-1", "Where is my order?").await;
    agent.send(&json!({"type": "read", "conversation_id": conv, "seq": question})).await.unwrap();
    let got = visitor.until("agent read", |f| f["type"] == "receipt").await.unwrap();
    assert_eq!(got, json!({"type": "receipt", "reader": "agent", "delivered_seq": question, "read_seq": question}));

    // Receipts are not log entries.
    let after = log_of(&t, &conv).await;
    assert_eq!(after["entries"].as_array().unwrap().len(), before["entries"].as_array().unwrap().len() + 2);

    // Stored: a visitor socket opened now, and a second workspace tab, hear the marks after
    // their replay.
    let mut again = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    let got = again.until("stored agent receipt", |f| f["type"] == "receipt").await.unwrap();
    assert_eq!((got["reader"].as_str(), got["read_seq"].as_i64()), (Some("agent"), Some(question)));
    let mut tab = agent_tab(&server, &t, 0).await;
    let got = tab.until("stored customer receipt", |f| f["type"] == "receipt").await.unwrap();
    assert_eq!((got["conversation_id"].as_str(), got["read_seq"].as_i64()), (Some(&*conv), Some(hello)));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_receipt_that_moves_nothing_tells_nobody_and_marks_never_pass_the_log() {
    let server = TestServer::sqlite().await;
    let Chat { conv, mut agent, mut visitor, .. } = connected_chat(&server, "receipts-repeat", 1).await;
    let first = agent_says(&mut agent, &conv, "a-1", "One").await;
    let second = agent_says(&mut agent, &conv, "a-2", "Two").await;

    visitor.send(&json!({"type": "read", "seq": second})).await.unwrap();
    assert_eq!(agent.until("read", |f| f["type"] == "receipt").await.unwrap()["read_seq"], second);
    // The same again, an older one, a delivery below the read mark: no news, nothing sent on.
    visitor.send(&json!({"type": "read", "seq": second})).await.unwrap();
    visitor.send(&json!({"type": "read", "seq": first})).await.unwrap();
    visitor.send(&json!({"type": "delivered", "seq": first})).await.unwrap();
    visitor_says(&mut visitor, "v-1", "ok").await;
    assert_eq!(receipt_or_message(&mut agent, "ok").await["type"], "entry", "no receipt before the message");

    // A mark beyond the log stops at its last entry.
    visitor.send(&json!({"type": "read", "seq": 9_999})).await.unwrap();
    let got = agent.until("clamped", |f| f["type"] == "receipt").await.unwrap();
    let last = visitor_says(&mut visitor, "v-2", "probe").await - 1;
    assert_eq!((got["delivered_seq"].as_i64(), got["read_seq"].as_i64()), (Some(last), Some(last)));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_receipts_are_refused_and_move_nothing() {
    let server = TestServer::sqlite().await;
    let Chat { t, conv, token, mut agent, mut visitor } = connected_chat(&server, "receipts-bad", 2).await;
    agent_says(&mut agent, &conv, "a-1", "Hi").await;

    let bad = [
        (json!({"type": "read", "seq": 0}), "validation_failed"),
        (json!({"type": "read", "seq": -3}), "validation_failed"),
        (json!({"type": "read"}), "invalid_field"),
        (json!({"type": "read", "seq": 1, "conversation_id": conv}), "unknown_field"),
    ];
    for (frame, code) in bad {
        visitor.send(&frame).await.unwrap();
        assert_eq!(visitor.until("error", |f| f["type"] == "error").await.unwrap()["code"], code, "{frame}");
    }
    // An agent who does not hold the chat cannot mark it, nor can one of another tenant.
    let (mut other, _) = t.agent_online(&server.base, &server.ws_base(), 1).await.unwrap();
    other.send(&json!({"type": "read", "conversation_id": conv, "seq": 1})).await.unwrap();
    assert_eq!(other.until("error", |f| f["type"] == "error").await.unwrap()["code"], "not_your_chat");
    let b = fixtures::tenant(&server.base, "receipts-other", 1).await.unwrap();
    let (mut stranger, _) = b.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    stranger.send(&json!({"type": "delivered", "conversation_id": conv, "seq": 1})).await.unwrap();
    assert_eq!(stranger.until("error", |f| f["type"] == "error").await.unwrap()["code"], "not_your_chat");
    agent.send(&json!({"type": "read", "conversation_id": conv, "seq": 0})).await.unwrap();
    assert_eq!(agent.until("error", |f| f["type"] == "error").await.unwrap()["code"], "validation_failed");

    // None of it moved a mark: the visitor's next receipt-or-message is the agent's message, and
    // fresh sockets on both sides hear no stored receipt before the next message either.
    agent_says(&mut agent, &conv, "a-2", "Still here").await;
    assert_eq!(receipt_or_message(&mut visitor, "Still here").await["type"], "entry");
    let mut fresh = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    let mut tab = agent_tab(&server, &t, 0).await;
    tab.until("replayed", |f| f["entry"]["text"] == "Still here").await.unwrap();
    agent_says(&mut agent, &conv, "a-3", "Probe").await;
    assert_eq!(receipt_or_message(&mut fresh, "Probe").await["type"], "entry");
    visitor_says(&mut visitor, "v-1", "Answer").await;
    assert_eq!(receipt_or_message(&mut tab, "Answer").await["type"], "entry");
    server.shutdown().await.unwrap();
}

/// JS: the receipt shown under the last own message in `log` (`''` while there is none).
fn last_receipt(log: &str, own: &str) -> String {
    text_of(&format!("{log} li.{own}[data-seq]:last-of-type .state"))
}

#[tokio::test]
async fn both_pages_mark_their_own_messages_read_once_the_other_side_has_seen_them() {
    if !browser_available() {
        return;
    }
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "receipts-ui", 1).await.unwrap();
    let driver = Chromedriver::start().await.unwrap();
    let (agent, visitor) = connected_pages(&driver, &server, &t).await;

    // The widget is on screen, so the agent's message is read as soon as it arrives.
    agent.find("#agent-composer").await.unwrap().send_keys("Hello Tess").await.unwrap();
    agent.find("#pane-chat .send").await.unwrap().click().await.unwrap();
    visitor.wait_for_text("#log", "Hello Tess").await.unwrap();
    let mine = last_receipt("#pane-chat .log", "mine");
    agent.wait_for(&format!("{mine} === 'Read'"), 10_000).await.unwrap();

    // With the widget closed on the host page, the next one is delivered but not read until
    // the visitor opens it again.
    visitor.execute("window.postMessage({type: 'parley:hidden'}, '*');", vec![]).await.unwrap();
    agent.find("#agent-composer").await.unwrap().send_keys("Are you there?").await.unwrap();
    agent.find("#pane-chat .send").await.unwrap().click().await.unwrap();
    visitor.wait_for_text("#log", "Are you there?").await.unwrap();
    agent.wait_for(&format!("{mine} === 'Delivered'"), 10_000).await.unwrap();
    visitor.execute("window.postMessage({type: 'parley:shown'}, '*');", vec![]).await.unwrap();
    agent.wait_for(&format!("{mine} === 'Read'"), 10_000).await.unwrap();

    // The chat is selected in the workspace, so the customer's message is read there too.
    visitor.find("#composer").await.unwrap().send_keys("Hi, my order").await.unwrap();
    visitor.find("#send").await.unwrap().click().await.unwrap();
    let theirs = last_receipt("#log", "msg-customer");
    visitor.wait_for(&format!("{theirs} === 'Read'"), 10_000).await.unwrap();

    // After a reload the widget shows the stored marks again.
    visitor.refresh().await.unwrap();
    visitor.wait_for(&format!("{theirs} === 'Read'"), 10_000).await.unwrap();

    let conv =
        agent.execute("return document.querySelector('#pane-chat').dataset.conversationId;", vec![]).await.unwrap();
    let log = log_of(&t, conv.as_str().unwrap()).await;
    assert!(!log.to_string().contains("receipt"), "{log}");
    agent.quit().await.unwrap();
    visitor.quit().await.unwrap();
    server.shutdown().await.unwrap();
}
