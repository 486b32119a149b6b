//! A tenant engine that fails (a store error, a panic) stops alone, rebuilds from the store with
//! back-off and resumes; chats that arrive meanwhile wait and then run their workflow from the
//! start; `/readyz` says so while it is down. Failures are injected through the test-only
//! `fault-injection` switches.

use parley_domain::TenantId;
use parley_testkit::{Api, TestServer, fixtures};
use serde_json::{Value, json};

fn tenant_id(t: &fixtures::Tenant) -> TenantId {
    TenantId::from_uuid(t.id.parse().unwrap())
}

/// Waits (on the engines' change signal, not on time) until `tenant`'s engine is down or up.
async fn until_engine(server: &TestServer, tenant: TenantId, down: bool) {
    let health = server.state.engines.health();
    let mut changes = health.changes();
    while health.down().iter().any(|(t, _)| *t == tenant) != down {
        changes.changed().await.unwrap();
    }
}

async fn readyz(server: &TestServer) -> (u16, Value) {
    let r = Api::new(&server.base).get("/readyz").await.unwrap();
    (r.status.as_u16(), r.body)
}

#[tokio::test]
async fn chats_that_start_while_the_engine_rebuilds_all_run_their_workflow_from_the_start() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "stalled", 1).await.unwrap();
    let tenant = tenant_id(&t);
    let faults = server.state.engines.faults();
    faults.hold_rebuilds(true);
    faults.fail_next_commits(tenant, 1);
    // The first chat's start cannot be stored: the engine stops, and its rebuild is held.
    let (first, _) = t.start_chat(&server.base, "Chat 0", None).await.unwrap();
    until_engine(&server, tenant, true).await;
    let mut chats = vec![first];
    for n in 1..50 {
        chats.push(t.start_chat(&server.base, &format!("Chat {n}"), None).await.unwrap().0);
    }
    let (status, body) = readyz(&server).await;
    assert_eq!((status, body["status"].as_str()), (503, Some("engine_down")), "{body}");
    assert_eq!(body["engines_down"][0]["tenant_id"], t.id.as_str());

    faults.hold_rebuilds(false);
    until_engine(&server, tenant, false).await;
    for conv in &chats {
        // Read through the engine: its answer follows every start it had queued.
        let run = t.admin.get(&format!("/api/v1/conversations/{conv}/workflow")).await.unwrap();
        let first_node = run.body["trace"][0]["kind"].as_str();
        assert_eq!(first_node, Some("accept"), "{conv} ran from the start: {}", run.body);
        let log = t.admin.get(&format!("/api/v1/conversations/{conv}/log")).await.unwrap();
        let entries = log.body["entries"].as_array().unwrap();
        let welcomes = entries.iter().filter(|e| e["text"] == fixtures::WELCOME).count();
        let accepted = entries.iter().filter(|e| e["event"]["type"] == "accepted").count();
        assert_eq!((welcomes, accepted), (1, 1), "{conv}: {entries:?}");
    }
    let (status, body) = readyz(&server).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["counters"]["engine_store_failures"], 1);
    assert_eq!(body["counters"]["engine_restarts"], 1);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_panicking_command_restarts_only_its_tenants_engine_and_readyz_shows_it_meanwhile() {
    let server = TestServer::sqlite().await;
    let a = fixtures::tenant(&server.base, "panics", 1).await.unwrap();
    let b = fixtures::tenant(&server.base, "calm", 1).await.unwrap();
    let (mut agent_a, _) = a.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    let (waiting, _) = a.start_chat(&server.base, "Before", None).await.unwrap();
    agent_a.until("offer", |f| f["type"] == "offer").await.unwrap();
    agent_a.send(&json!({"type": "accept", "conversation_id": waiting})).await.unwrap();
    agent_a.until("chat", |f| f["type"] == "chat").await.unwrap();

    let faults = server.state.engines.faults();
    faults.hold_rebuilds(true);
    faults.panic_next_command(tenant_id(&a));
    let (_, _) = a.start_chat(&server.base, "Trigger", None).await.unwrap();
    until_engine(&server, tenant_id(&a), true).await;
    let (status, body) = readyz(&server).await;
    assert_eq!((status, body["status"].as_str()), (503, Some("engine_down")), "{body}");
    assert_eq!(body["engines_down"].as_array().unwrap().len(), 1, "only the panicking tenant: {body}");

    // The other tenant never notices.
    let (mut agent_b, _) = b.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    let (conv_b, _) = b.start_chat(&server.base, "Calm", None).await.unwrap();
    let offer = agent_b.until("offer", |f| f["type"] == "offer").await.unwrap();
    assert_eq!(offer["offer"]["conversation_id"], conv_b.as_str());

    faults.hold_rebuilds(false);
    until_engine(&server, tenant_id(&a), false).await;
    let (status, body) = readyz(&server).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["counters"]["engine_panics"].as_u64(), body["counters"]["engine_restarts"].as_u64()),
        (Some(1), Some(1))
    );
    // Tenant A resumes from the store: its connected chat is still its agent's, and the chat
    // whose start panicked runs from the start and is offered (the agent's socket stayed open).
    let me = Api::new(&server.base).cookie(&a.login(&server.base, 0).await.unwrap());
    let state = me.get("/api/v1/agent/state").await.unwrap().body;
    assert_eq!(state["chats"][0]["conversation_id"], waiting.as_str(), "{state}");
    let offer = agent_a.until("offer", |f| f["type"] == "offer").await.unwrap();
    assert_eq!(offer["offer"]["customer"]["display_name"], "Trigger");
    server.shutdown().await.unwrap();
}

fn asking() -> Value {
    json!({"start": "accept", "nodes": [
        {"id": "accept", "activity": {"kind": "accept"}, "exits": {"next": "ask"}},
        {"id": "ask", "activity": {"kind": "collect_information", "prompt": "Your order number?", "parameter": "Order",
            "rule": {"kind": "regex", "pattern": "[0-9]+"}, "timeout_secs": 600, "retries": 0},
         "exits": {"answered": "thanks", "timeout": "thanks", "invalid": "thanks"}},
        {"id": "thanks", "activity": {"kind": "message", "text": "Thanks, order $(CustomContextParameters.Order)."}, "exits": {"next": "queue"}},
        {"id": "queue", "activity": {"kind": "queue_task", "max_queue_secs": 3600}, "exits": {"next": "wait"}},
        {"id": "wait", "activity": {"kind": "delay", "secs": 3600}, "exits": {}}
    ]})
}

/// A tenant whose chat waits at a question, and that chat's visitor socket.
async fn asked(server: &TestServer, slug: &str) -> (fixtures::Tenant, parley_testkit::Ws) {
    let t = fixtures::tenant(&server.base, slug, 1).await.unwrap();
    let p = t.admin.post("/api/v1/parameters", &json!({"id": "Order", "name": "Order"})).await.unwrap();
    assert_eq!(p.status, 201, "{}", p.body);
    t.use_workflow("Ask", &asking()).await.unwrap();
    let (_, token) = t.start_chat(&server.base, "Ali", None).await.unwrap();
    let mut v = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    v.until("question", |f| f["type"] == "entry" && f["entry"]["text"] == "Your order number?").await.unwrap();
    (t, v)
}

#[tokio::test]
async fn a_customer_is_acknowledged_while_the_engine_is_down_and_the_answer_is_taken_after() {
    let server = TestServer::sqlite().await;
    let (t, mut v) = asked(&server, "ack-down").await;
    let faults = server.state.engines.faults();
    faults.hold_rebuilds(true);
    faults.panic_next_command(tenant_id(&t));
    server.state.engines.send(tenant_id(&t), parley_server::tenant_engine::Command::Refresh).await.unwrap();
    until_engine(&server, tenant_id(&t), true).await;

    v.send(&json!({"type": "send", "client_msg_id": "c1", "text": "4711"})).await.unwrap();
    let ack = v.until("ack", |f| f["type"] == "ack").await.unwrap();
    assert_eq!(ack["client_msg_id"], "c1", "committed and acknowledged with the engine down");
    faults.hold_rebuilds(false);
    v.until("answer taken", |f| f["type"] == "entry" && f["entry"]["text"] == "Thanks, order 4711.").await.unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_text_that_finds_the_engine_queue_full_is_read_from_the_log_on_its_next_turn() {
    let server = TestServer::sqlite().await;
    let (t, mut v) = asked(&server, "ack-full").await;
    let tenant = tenant_id(&t);
    let faults = server.state.engines.faults();
    faults.hold_rebuilds(true);
    faults.panic_next_command(tenant);
    server.state.engines.send(tenant, parley_server::tenant_engine::Command::Refresh).await.unwrap();
    until_engine(&server, tenant, true).await;
    // Fill the held engine's queue to the brim (the senders wait for room).
    let state = server.state.clone();
    let filler = tokio::spawn(async move {
        let nobody = parley_domain::ConversationId::from_uuid(uuid::Uuid::nil());
        for _ in 0..1100 {
            let cmd = parley_server::tenant_engine::Command::CustomerActive { conversation: nobody };
            state.engines.send(tenant, cmd).await.unwrap();
        }
    });
    while !server.state.engines.queue_full(tenant) {
        tokio::task::yield_now().await;
    }
    v.send(&json!({"type": "send", "client_msg_id": "c1", "text": "4711"})).await.unwrap();
    let ack = v.until("ack", |f| f["type"] == "ack").await.unwrap();
    assert_eq!(ack["client_msg_id"], "c1");
    faults.hold_rebuilds(false);
    v.until("answer taken", |f| f["type"] == "entry" && f["entry"]["text"] == "Thanks, order 4711.").await.unwrap();
    filler.await.unwrap();
    server.shutdown().await.unwrap();
}
