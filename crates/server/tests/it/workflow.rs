//! Workflows on a real server with the injected clock: time only moves when the test says so.

use parley_domain::WorkflowDefinition;
use parley_testkit::{TestServer, Ws, fixtures};
use serde_json::{Value, json};

async fn entry(ws: &mut Ws, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    ws.until(what, |f| f["type"] == "entry" && pred(&f["entry"])).await.unwrap()
}

/// A tenant whose service runs the recommended workflow (limit `limit` s, position every `every` s).
async fn tenant_with_recommended(server: &TestServer, slug: &str, limit: u32, every: u32) -> fixtures::Tenant {
    let t = fixtures::tenant(&server.base, slug, 1).await.unwrap();
    let def = WorkflowDefinition::recommended("Welcome!", limit, every);
    let wf = t
        .admin
        .post("/api/v1/workflows", &json!({"name": "Recommended", "kind": "instant_messaging", "definition": def}))
        .await
        .unwrap();
    assert_eq!(wf.status, 201, "{}", wf.body);
    let members = json!([{"user_id": t.agents[0].id}]);
    let s = t
        .admin
        .post("/api/v1/services", &json!({"name": "Queue", "workflow_id": wf.body["id"], "members": members}))
        .await
        .unwrap();
    fixtures::Tenant {
        contact_id: s.body["contact_id"].as_str().unwrap().into(),
        widget_key: s.body["widget_key"].as_str().unwrap().into(),
        service_id: s.body["id"].as_str().unwrap().into(),
        ..t
    }
}

#[tokio::test]
async fn queued_customer_hears_their_position_then_the_limit_apology_and_is_disconnected() {
    let server = TestServer::sqlite().await;
    let t = tenant_with_recommended(&server, "limits", 60, 20).await;
    let (conv, token) = t.start_chat(&server.base, "Quinn", None).await.unwrap();
    let mut v = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    entry(&mut v, "welcome", |e| e["text"] == "Welcome!").await;
    entry(&mut v, "queued", |e| e["event"]["type"] == "queued").await;

    for _ in 0..2 {
        server.clock.advance(time::Duration::seconds(20));
        let p = entry(&mut v, "position", |e| e["sender"]["role"] == "system").await;
        assert_eq!(p["entry"]["text"], "You are number 1 in the queue. Thank you for waiting.");
    }
    server.clock.advance(time::Duration::seconds(20));
    let sorry = entry(&mut v, "apology", |e| e["sender"]["role"] == "system").await;
    assert!(sorry["entry"]["text"].as_str().unwrap().starts_with("We are sorry"), "{sorry}");
    let ended = entry(&mut v, "ended", |e| e["event"]["type"] == "ended").await;
    assert_eq!(ended["entry"]["event"]["by"], "system");
    let c = t.admin.get(&format!("/api/v1/conversations/{conv}")).await.unwrap();
    assert_eq!(c.body["status"], "ended");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_connected_chat_is_never_cut_by_its_workflow() {
    let server = TestServer::sqlite().await;
    let t = tenant_with_recommended(&server, "keeps", 60, 20).await;
    let (mut agent, _) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    let (conv, token) = t.start_chat(&server.base, "Kai", None).await.unwrap();
    let mut v = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    agent.until("offer", |f| f["type"] == "offer").await.unwrap();
    agent.send(&json!({"type": "accept", "conversation_id": conv})).await.unwrap();
    entry(&mut v, "connected", |e| e["event"]["type"] == "connected").await;
    // The position loop wakes, sees the chat connected and ends itself, past the queue limit too.
    for _ in 0..4 {
        server.clock.advance(time::Duration::seconds(20));
    }
    // The engine serves this only after the timers now due have run.
    let run = t.admin.get(&format!("/api/v1/conversations/{conv}/workflow")).await.unwrap();
    assert_eq!(run.body["state"], "finished", "{}", run.body);
    let trace: Vec<(&str, Option<&str>)> = run.body["trace"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["node"].as_str().unwrap(), s["exit"].as_str()))
        .collect();
    assert_eq!(&trace[..3], [("accept", Some("next")), ("welcome", Some("next")), ("queue", Some("next"))]);
    assert!(trace.contains(&("check", Some("connected"))), "{trace:?}");
    assert_eq!(trace.last(), Some(&("done", None)));
    v.send(&json!({"type": "send", "client_msg_id": "still-here", "text": "still chatting"})).await.unwrap();
    let ack = v.until("ack", |f| f["type"] == "ack").await.unwrap();
    assert_eq!(ack["duplicate"], false);
    let log = t.admin.get(&format!("/api/v1/conversations/{conv}/log")).await.unwrap();
    let entries = log.body["entries"].as_array().unwrap();
    assert!(entries.iter().all(|e| e["event"]["type"] != "ended"), "the chat was cut: {entries:?}");
    assert!(entries.iter().all(|e| !e["text"].as_str().unwrap_or_default().starts_with("We are sorry")));
    assert_eq!(t.admin.get(&format!("/api/v1/conversations/{conv}")).await.unwrap().body["status"], "connected");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_question_stores_the_answer_and_branches_on_it() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "questions", 1).await.unwrap();
    let def = json!({"start": "accept", "nodes": [
        {"id": "accept", "activity": {"kind": "accept"}, "exits": {"next": "ask"}},
        {"id": "ask", "activity": {"kind": "input_customer", "prompt": "1 for sales, 2 for support",
            "options": [{"key": "1", "label": "Sales"}, {"key": "2", "label": "Support"}], "timeout_secs": 60, "parameter": "Choice"},
         "exits": {"option_1": "sales", "option_2": "support", "timeout": "bye", "invalid": "bye"}},
        {"id": "sales", "activity": {"kind": "message", "text": "Sales it is ($(CustomContextParameters.Choice))."}, "exits": {"next": "queue"}},
        {"id": "support", "activity": {"kind": "message", "text": "Support it is."}, "exits": {"next": "queue"}},
        {"id": "queue", "activity": {"kind": "queue_task"}},
        {"id": "bye", "activity": {"kind": "disconnect", "text": "Goodbye $(Customer.DisplayName)."}}
    ]});
    let wf = t
        .admin
        .post("/api/v1/workflows", &json!({"name": "Menu", "kind": "instant_messaging", "definition": def}))
        .await
        .unwrap();
    assert_eq!(wf.status, 201, "{}", wf.body);
    let s = t.admin.post("/api/v1/services", &json!({"name": "Menu", "workflow_id": wf.body["id"]})).await.unwrap();
    let t = fixtures::Tenant {
        contact_id: s.body["contact_id"].as_str().unwrap().into(),
        widget_key: s.body["widget_key"].as_str().unwrap().into(),
        ..t
    };
    let (_, token) = t.start_chat(&server.base, "Mo", None).await.unwrap();
    let mut v = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    entry(&mut v, "menu", |e| e["text"] == "1 for sales, 2 for support").await;
    v.send(&json!({"type": "send", "client_msg_id": "c1", "text": "1"})).await.unwrap();
    entry(&mut v, "branch", |e| e["text"] == "Sales it is (1).").await;
    entry(&mut v, "queued", |e| e["event"]["type"] == "queued").await;

    // A second customer stays silent: the timeout exit says goodbye by name.
    let (_, token) = t.start_chat(&server.base, "Silent Sam", None).await.unwrap();
    let mut v = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    entry(&mut v, "menu", |e| e["text"] == "1 for sales, 2 for support").await;
    server.clock.advance(time::Duration::seconds(60));
    entry(&mut v, "goodbye", |e| e["text"] == "Goodbye Silent Sam.").await;
    entry(&mut v, "ended", |e| e["event"]["type"] == "ended").await;
    server.shutdown().await.unwrap();
}
