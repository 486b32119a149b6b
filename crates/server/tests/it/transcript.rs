//! The customer's transcript: the whole chat as plain text in their time zone, for their own
//! conversation only; and the widget's "Download transcript" at the end (headless Chromium).

use crate::support::{Chat, agent_says, browser_available, connected_chat, connected_pages, visitor_says};
use parley_testkit::webdriver::Chromedriver;
use parley_testkit::{Api, TestServer, fixtures};
use serde_json::json;

#[tokio::test]
async fn the_transcript_tells_who_wrote_what_and_when_in_the_customers_time_zone() {
    let server = TestServer::sqlite().await;
    let Chat { t, conv, token, mut agent, mut visitor } = connected_chat(&server, "transcript", 1).await;
    visitor_says(&mut visitor, "v-1", "Where is <b>my</b> order?").await;
    agent_says(&mut agent, &conv, "a-1", "On its way.").await;
    agent.send(&json!({"type": "end", "conversation_id": conv})).await.unwrap();
    visitor.until("ended", |f| f["entry"]["event"]["type"] == "ended").await.unwrap();

    let api = Api::new(&server.base).bearer(&token);
    let path = format!("/api/v1/widget/conversations/{conv}/transcript");
    let d = api.download(&format!("{path}?tz=Asia/Kolkata")).await.unwrap();
    assert_eq!(d.status, 200);
    assert_eq!(d.header("content-type"), "text/plain; charset=utf-8");
    assert!(d.header("content-disposition").starts_with("attachment; filename=\"chat-"), "{:?}", d.headers);
    let text = String::from_utf8(d.bytes).unwrap();
    // The test clock starts at a whole UTC hour; Kolkata is UTC+05:30.
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Chat with Support");
    assert!(lines[1].starts_with("Started ") && lines[1].ends_with(":30 (Asia/Kolkata)"), "{text}");
    for want in [
        format!("Support: {}", fixtures::WELCOME),
        "-- Agent 1 joined --".to_owned(),
        "Tess: Where is <b>my</b> order?".to_owned(),
        "Agent 1: On its way.".to_owned(),
        "-- the agent ended the chat --".to_owned(),
    ] {
        assert!(lines.iter().any(|l| l.ends_with(&want) && l.contains(":30] ")), "missing {want:?} in\n{text}");
    }
    let utc = String::from_utf8(api.download(&path).await.unwrap().bytes).unwrap();
    assert!(utc.lines().nth(1).unwrap().ends_with(":00 (UTC)"), "{utc}");

    // Bad zones are refused by field; other conversations' tokens get nothing.
    let bad = api.get(&format!("{path}?tz=Mars/Olympus")).await.unwrap();
    assert_eq!((bad.status.as_u16(), bad.body["errors"][0]["path"].as_str()), (422, Some("/tz")));
    let (_, other) = t.start_chat(&server.base, "Olga", None).await.unwrap();
    assert_eq!(Api::new(&server.base).bearer(&other).get(&path).await.unwrap().status, 403);
    assert_eq!(Api::new(&server.base).get(&path).await.unwrap().status, 401);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_widget_offers_the_transcript_when_the_chat_ends() {
    if !browser_available() {
        return;
    }
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "transcript-ui", 1).await.unwrap();
    let driver = Chromedriver::start().await.unwrap();
    let (agent, visitor) = connected_pages(&driver, &server, &t).await;
    visitor.find("#composer").await.unwrap().send_keys("Thanks for the help").await.unwrap();
    visitor.find("#send").await.unwrap().click().await.unwrap();
    agent.wait_for_text("#pane-chat .log", "Thanks for the help").await.unwrap();
    agent.find("#chat-pane .end").await.unwrap().click().await.unwrap();
    visitor.wait_for_text("#ended", "Download transcript").await.unwrap();
    visitor.find("#transcript").await.unwrap().click().await.unwrap();
    visitor.wait_for("document.querySelector('#transcript-link').href.startsWith('blob:')", 10_000).await.unwrap();
    let text = visitor
        .execute_async(
            "const done = arguments[arguments.length - 1]; \
             fetch(document.querySelector('#transcript-link').href).then(r => r.text()).then(done, e => done(String(e)));",
            vec![],
        )
        .await
        .unwrap();
    let text = text.as_str().unwrap();
    assert!(text.starts_with("Chat with Support\n"), "{text}");
    assert!(text.contains("] Tess: Thanks for the help\n"), "{text}");
    assert!(text.contains("-- the agent ended the chat --"), "{text}");
    agent.quit().await.unwrap();
    visitor.quit().await.unwrap();
    server.shutdown().await.unwrap();
}
