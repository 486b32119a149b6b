//! kill -9 with chats in every state: the server is stopped dead (every task dropped, nothing
//! flushed) and started again on the same database and clock. Each chat continues where it was,
//! and each timer fires once.

use parley_testkit::{Api, TestServer, Ws, fixtures};
use serde_json::{Value, json};

async fn entry(ws: &mut Ws, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    ws.until(what, |f| f["type"] == "entry" && pred(&f["entry"])).await.unwrap()
}

async fn routing(t: &fixtures::Tenant, routing: Value) {
    let r = t.admin.send("PATCH", &format!("/api/v1/services/{}", t.service_id), &json!({"routing": routing})).await;
    assert_eq!(r.unwrap().status, 200);
}

async fn log_texts(t: &fixtures::Tenant, conv: &str) -> Vec<String> {
    let log = t.admin.get(&format!("/api/v1/conversations/{conv}/log")).await.unwrap();
    assert_eq!(log.status, 200, "{}", log.body);
    log.body["entries"].as_array().unwrap().iter().filter_map(|e| e["text"].as_str().map(str::to_owned)).collect()
}

async fn status(t: &fixtures::Tenant, conv: &str) -> Value {
    t.admin.get(&format!("/api/v1/conversations/{conv}")).await.unwrap().body["status"].clone()
}

async fn state_of(server: &TestServer, t: &fixtures::Tenant, agent: usize) -> Value {
    let me = Api::new(&server.base).cookie(&t.login(&server.base, agent).await.unwrap());
    me.get("/api/v1/agent/state").await.unwrap().body
}

fn ask() -> Value {
    json!({"start": "accept", "nodes": [
        {"id": "accept", "activity": {"kind": "accept"}, "exits": {"next": "ask"}},
        {"id": "ask", "activity": {"kind": "collect_information", "prompt": "Your order number?", "parameter": "Order",
            "rule": {"kind": "regex", "pattern": "[0-9]+"}, "timeout_secs": 60, "retries": 0},
         "exits": {"answered": "thanks", "timeout": "late", "invalid": "late"}},
        {"id": "thanks", "activity": {"kind": "message", "text": "Thanks, order $(CustomContextParameters.Order)."}, "exits": {"next": "queue"}},
        {"id": "late", "activity": {"kind": "message", "text": "No number, no problem."}, "exits": {"next": "queue"}},
        {"id": "queue", "activity": {"kind": "queue_task", "max_queue_secs": 3600}, "exits": {"next": "wait"}},
        {"id": "wait", "activity": {"kind": "delay", "secs": 3600}, "exits": {}}
    ]})
}

async fn asking_tenant(server: &TestServer, slug: &str) -> fixtures::Tenant {
    let t = fixtures::tenant(&server.base, slug, 1).await.unwrap();
    let p = t.admin.post("/api/v1/parameters", &json!({"id": "Order", "name": "Order"})).await.unwrap();
    assert_eq!(p.status, 201, "{}", p.body);
    t.use_workflow("Ask", &ask()).await.unwrap();
    t
}

#[tokio::test]
async fn a_chat_in_the_middle_of_a_question_takes_the_answer_after_a_restart() {
    let server = TestServer::crashable(parley_testkit::Db::Sqlite).await;
    let t = asking_tenant(&server, "mid-question").await;
    let (conv, token) = t.start_chat(&server.base, "Quinn", None).await.unwrap();
    let mut v = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    entry(&mut v, "question", |e| e["text"] == "Your order number?").await;
    server.clock.advance(time::Duration::seconds(30));

    let server = server.crash().await;
    let t = t.on(&server.base);
    let mut v = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    v.send(&json!({"type": "send", "client_msg_id": "a1", "text": "4711"})).await.unwrap();
    entry(&mut v, "thanks", |e| e["text"] == "Thanks, order 4711.").await;
    // The question's timeout (due 30 s after the restart) is gone with the answer.
    server.clock.advance(time::Duration::seconds(60));
    assert_eq!(status(&t, &conv).await, "queued");
    let texts = log_texts(&t, &conv).await;
    assert_eq!(texts.iter().filter(|x| x.as_str() == "Your order number?").count(), 1, "asked once: {texts:?}");
    assert!(!texts.iter().any(|x| x == "No number, no problem."), "{texts:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_question_timeout_that_fell_due_while_down_fires_once_after_the_restart() {
    let server = TestServer::crashable(parley_testkit::Db::Sqlite).await;
    let t = asking_tenant(&server, "timeout-down").await;
    let (conv, token) = t.start_chat(&server.base, "Tao", None).await.unwrap();
    let mut v = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    entry(&mut v, "question", |e| e["text"] == "Your order number?").await;
    let clock = server.clock.clone();
    let server = server.crash().await;
    let t = t.on(&server.base);
    // The engine was down past the question's 60 s: the timeout fires at the first tick, once.
    clock.advance(time::Duration::seconds(90));
    let mut v = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    entry(&mut v, "timeout", |e| e["text"] == "No number, no problem.").await;
    clock.advance(time::Duration::seconds(90));
    let texts = log_texts(&t, &conv).await;
    assert_eq!(texts.iter().filter(|x| x.as_str() == "No number, no problem.").count(), 1, "{texts:?}");
    assert_eq!(status(&t, &conv).await, "queued");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn queued_chats_keep_their_order_and_priority_across_a_restart() {
    let server = TestServer::crashable(parley_testkit::Db::Sqlite).await;
    let t = fixtures::tenant(&server.base, "queued", 1).await.unwrap();
    let normal = t.another_service("Normal").await.unwrap();
    let high = json!({"start": "accept", "nodes": [
        {"id": "accept", "activity": {"kind": "accept"}, "exits": {"next": "high"}},
        {"id": "high", "activity": {"kind": "distribution_priority", "priority": "high"}, "exits": {"next": "queue"}},
        {"id": "queue", "activity": {"kind": "queue_task", "max_queue_secs": 3600}, "exits": {"next": "wait"}},
        {"id": "wait", "activity": {"kind": "delay", "secs": 3600}, "exits": {}}
    ]});
    t.use_workflow("High", &high).await.unwrap();
    for s in [&t, &normal] {
        // A decline keeps the agent off that chat while the others wait.
        routing(s, json!({"reoffer_secs": 3600})).await;
    }
    let (first, _) = normal.start_chat(&server.base, "First", None).await.unwrap();
    server.clock.advance(time::Duration::seconds(5));
    let (second, _) = normal.start_chat(&server.base, "Second", None).await.unwrap();
    server.clock.advance(time::Duration::seconds(5));
    let (urgent, _) = t.start_chat(&server.base, "Urgent", None).await.unwrap();
    // Read through the engine, so its start is done.
    let run = t.admin.get(&format!("/api/v1/conversations/{urgent}/workflow")).await.unwrap();
    assert_eq!(run.body["node"], "wait", "{}", run.body);
    assert_eq!(status(&t, &urgent).await, "queued");

    let server = server.crash().await;
    let t = t.on(&server.base);
    let (mut agent, _) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    for expected in [&urgent, &first, &second] {
        let offer = agent.until("offer", |f| f["type"] == "offer").await.unwrap();
        assert_eq!(offer["offer"]["conversation_id"], expected.as_str());
        agent.send(&json!({"type": "decline", "conversation_id": expected})).await.unwrap();
        agent.until("withdrawn", |f| f["type"] == "offer_withdrawn").await.unwrap();
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_offered_chat_is_offered_again_to_the_same_agent_with_a_fresh_deadline() {
    let server = TestServer::crashable(parley_testkit::Db::Sqlite).await;
    let t = fixtures::tenant(&server.base, "offered", 2).await.unwrap();
    routing(&t, json!({"rona_secs": 30})).await;
    let (mut first, _) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    let (conv, _) = t.start_chat(&server.base, "Olive", None).await.unwrap();
    let offer = first.until("offer", |f| f["type"] == "offer").await.unwrap();
    assert_eq!(offer["offer"]["deadline"], "2026-01-05T09:00:30Z");
    server.clock.advance(time::Duration::seconds(20));

    let server = server.crash().await;
    let t = t.on(&server.base);
    assert_eq!(status(&t, &conv).await, "offered");
    // The second agent is ready, yet the offer stays the first agent's, due 30 s after the restart.
    let (_second, _) = t.agent_online(&server.base, &server.ws_base(), 1).await.unwrap();
    let (mut first, hello) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    assert_eq!(hello["offers"][0]["conversation_id"], conv.as_str(), "{hello}");
    assert_eq!(hello["offers"][0]["deadline"], "2026-01-05T09:00:50Z");
    first.send(&json!({"type": "accept", "conversation_id": conv})).await.unwrap();
    first.until("chat", |f| f["type"] == "chat").await.unwrap();
    assert_eq!(status(&t, &conv).await, "connected");
    let sessions = t.admin.get("/api/v1/reports/user-sessions?from=2026-01-05T00:00:00Z").await.unwrap();
    assert_eq!(sessions.body, json!([]), "one offer, still open: no session ended");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_connected_chat_goes_on_both_ways_after_a_restart() {
    let server = TestServer::crashable(parley_testkit::Db::Sqlite).await;
    let t = fixtures::tenant(&server.base, "connected", 1).await.unwrap();
    let (mut agent, _) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    let (conv, token) = t.start_chat(&server.base, "Cara", None).await.unwrap();
    agent.until("offer", |f| f["type"] == "offer").await.unwrap();
    agent.send(&json!({"type": "accept", "conversation_id": conv})).await.unwrap();
    agent.until("chat", |f| f["type"] == "chat").await.unwrap();

    let server = server.crash().await;
    let t = t.on(&server.base);
    let (mut agent, hello) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    assert_eq!(hello["chats"][0]["conversation_id"], conv.as_str(), "{hello}");
    let mut v = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    v.send(&json!({"type": "send", "client_msg_id": "c1", "text": "still there?"})).await.unwrap();
    agent.until("customer text", |f| f["type"] == "entry" && f["entry"]["text"] == "still there?").await.unwrap();
    agent.send(&json!({"type": "send", "conversation_id": conv, "client_msg_id": "a1", "text": "yes"})).await.unwrap();
    entry(&mut v, "agent text", |e| e["text"] == "yes").await;
    // A second chat waits: the restored chat fills the agent's two slots with the next one only.
    assert_eq!(state_of(&server, &t, 0).await["chats"].as_array().unwrap().len(), 1);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn after_chat_work_keeps_its_end_across_a_restart_and_ends_once() {
    let server = TestServer::crashable(parley_testkit::Db::Sqlite).await;
    let t = fixtures::staffed_tenant(&server.base, "acw", 1, 1).await.unwrap();
    routing(&t, json!({"acw_secs": 60})).await;
    let (mut agent, _) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    let (conv, _) = t.start_chat(&server.base, "Ada", None).await.unwrap();
    agent.until("offer", |f| f["type"] == "offer").await.unwrap();
    agent.send(&json!({"type": "accept", "conversation_id": conv})).await.unwrap();
    agent.until("chat", |f| f["type"] == "chat").await.unwrap();
    agent.send(&json!({"type": "end", "conversation_id": conv})).await.unwrap();
    let acw = agent.until("acw", |f| f["type"] == "routing" && !f["routing"]["acw_until"].is_null()).await.unwrap();
    assert_eq!(acw["routing"]["acw_until"], "2026-01-05T09:01:00Z");
    server.clock.advance(time::Duration::seconds(20));

    let server = server.crash().await;
    let t = t.on(&server.base);
    let (mut agent, hello) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    assert_eq!(hello["routing"]["acw_until"], "2026-01-05T09:01:00Z", "the remaining 40 s: {hello}");
    let (next, _) = t.start_chat(&server.base, "Ben", None).await.unwrap();
    assert_eq!(state_of(&server, &t, 0).await["offers"], json!([]), "no offer during after-chat work");
    server.clock.advance(time::Duration::seconds(40));
    let offer = agent.until("offer", |f| f["type"] == "offer").await.unwrap();
    assert_eq!(offer["offer"]["conversation_id"], next.as_str());
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_rona_flag_survives_a_restart_until_the_agent_is_ready() {
    let server = TestServer::crashable(parley_testkit::Db::Sqlite).await;
    let t = fixtures::tenant(&server.base, "rona", 1).await.unwrap();
    routing(&t, json!({"rona_secs": 15, "persistent_rona": true, "reoffer_secs": 3600})).await;
    let (mut agent, _) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    let (missed, _) = t.start_chat(&server.base, "Mo", None).await.unwrap();
    agent.until("offer", |f| f["type"] == "offer").await.unwrap();
    server.clock.advance(time::Duration::seconds(15));
    agent.until("flagged", |f| f["type"] == "routing" && f["routing"]["rona"] == true).await.unwrap();
    assert_eq!(state_of(&server, &t, 0).await["routing"]["rona"], true);

    let server = server.crash().await;
    let t = t.on(&server.base);
    let (mut agent, hello) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    assert_eq!(hello["routing"]["rona"], true, "{hello}");
    let (next, _) = t.start_chat(&server.base, "Nia", None).await.unwrap();
    assert_eq!(state_of(&server, &t, 0).await["offers"], json!([]), "flagged: no offers");
    assert_eq!(status(&t, &missed).await, "queued");
    agent.send(&json!({"type": "reset_rona"})).await.unwrap();
    // Ready: the chat they missed is kept off them (its wait is long), the next one comes.
    let offer = agent.until("offer", |f| f["type"] == "offer").await.unwrap();
    assert_eq!(offer["offer"]["conversation_id"], next.as_str());
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_answer_acknowledged_but_not_yet_taken_when_the_server_died_is_taken_after_the_restart() {
    let server = TestServer::crashable(parley_testkit::Db::Sqlite).await;
    let t = asking_tenant(&server, "acked-unread").await;
    let (conv, token) = t.start_chat(&server.base, "Una", None).await.unwrap();
    let mut v = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    entry(&mut v, "question", |e| e["text"] == "Your order number?").await;
    // The engine is held down: the answer is committed and acknowledged, and waits in its queue.
    let tenant = parley_domain::TenantId::from_uuid(t.id.parse().unwrap());
    let faults = server.state.engines.faults();
    faults.hold_rebuilds(true);
    faults.panic_next_command(tenant);
    server.state.engines.send(tenant, parley_server::tenant_engine::Command::Refresh).await.unwrap();
    v.send(&json!({"type": "send", "client_msg_id": "a1", "text": "4711"})).await.unwrap();
    v.until("ack", |f| f["type"] == "ack" && f["client_msg_id"] == "a1").await.unwrap();

    let server = server.crash().await;
    let t = t.on(&server.base);
    let mut v = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    entry(&mut v, "thanks", |e| e["text"] == "Thanks, order 4711.").await;
    let texts = log_texts(&t, &conv).await;
    assert_eq!(texts.iter().filter(|x| x.starts_with("Thanks")).count(), 1, "{texts:?}");
    server.shutdown().await.unwrap();
}
