//! Workflows on a real server with the injected clock: time only moves when the test says so.

use parley_domain::WorkflowDefinition;
use parley_testkit::{TestServer, Ws, fixtures};
use serde_json::{Value, json};

async fn entry(ws: &mut Ws, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    ws.until(what, |f| f["type"] == "entry" && pred(&f["entry"])).await.unwrap()
}

/// Creates the parameters, then the workflow, published; returns its id.
async fn published(t: &fixtures::Tenant, params: &[&str], def: &Value) -> String {
    for p in params {
        let r = t.admin.post("/api/v1/parameters", &json!({"id": p, "name": p})).await.unwrap();
        assert!(r.status == 201 || r.code() == "parameter_exists", "{}", r.body);
    }
    let wf = t
        .admin
        .post(
            "/api/v1/workflows",
            &json!({"name": "Flow", "kind": "instant_messaging", "definition": def, "publish": true}),
        )
        .await
        .unwrap();
    assert_eq!(wf.status, 201, "{}", wf.body);
    wf.body["id"].as_str().unwrap().to_owned()
}

/// A service of `t` (with its first agent as member) running `workflow`; the tenant as seen
/// through that service's snippet.
async fn with_service(t: fixtures::Tenant, workflow: &str, extra: Value) -> fixtures::Tenant {
    let mut body = json!({"name": "Queue", "workflow_id": workflow, "members": [{"user_id": t.agents[0].id}]});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let s = t.admin.post("/api/v1/services", &body).await.unwrap();
    assert_eq!(s.status, 201, "{}", s.body);
    fixtures::Tenant {
        contact_id: s.body["contact_id"].as_str().unwrap().into(),
        widget_key: s.body["widget_key"].as_str().unwrap().into(),
        service_id: s.body["id"].as_str().unwrap().into(),
        ..t
    }
}

/// A tenant whose service runs the recommended workflow (limit `limit` s, position every `every` s).
async fn tenant_with_recommended(server: &TestServer, slug: &str, limit: u32, every: u32) -> fixtures::Tenant {
    let t = fixtures::tenant(&server.base, slug, 1).await.unwrap();
    let def = serde_json::to_value(WorkflowDefinition::recommended("Welcome!", limit, every)).unwrap();
    let wf = published(&t, &["QueuePosition"], &def).await;
    with_service(t, &wf, json!({})).await
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
    assert_eq!(c.body["outcome"], "cancelled", "the queue limit's cancel is recorded");
    // What the workflow did is kept after the end.
    let run = t.admin.get(&format!("/api/v1/conversations/{conv}/workflow")).await.unwrap();
    assert_eq!((run.status.as_u16(), run.body["state"].as_str()), (200, Some("finished")), "{}", run.body);
    let nodes: Vec<&str> = run.body["trace"].as_array().unwrap().iter().map(|s| s["node"].as_str().unwrap()).collect();
    assert_eq!(nodes[nodes.len() - 4..], ["check", "sorry", "cancel", "bye"]);
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
    let wf = published(&t, &["Choice"], &def).await;
    let t = with_service(t, &wf, json!({})).await;
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

/// Open 12:00–17:00 UTC on weekdays; the test clock starts Monday 09:00 UTC.
fn afternoons_only() -> Value {
    json!({"name": "Afternoons", "calendar": {"time_zone": "UTC", "default_category": "closed", "periods": [
        {"category": "open", "rule": {"kind": "weekly", "days": ["mon","tue","wed","thu","fri"], "start": "12:00", "end": "17:00"}}]}})
}

fn hours_then_queue() -> Value {
    json!({"start": "hours", "nodes": [
        {"id": "hours", "activity": {"kind": "check_opening_hours"},
         "exits": {"open": "accept", "closed": "closed", "holiday": "closed", "special_1": "accept", "special_2": "accept",
                   "special_3": "accept", "special_4": "accept", "default": "accept"}},
        {"id": "closed", "activity": {"kind": "disconnect", "text": "We are closed. We open at 12:00."}},
        {"id": "accept", "activity": {"kind": "accept"}, "exits": {"next": "queue"}},
        {"id": "queue", "activity": {"kind": "queue_task"}, "exits": {"next": "wait"}},
        {"id": "wait", "activity": {"kind": "delay", "secs": 3600}}
    ]})
}

#[tokio::test]
async fn outside_opening_hours_the_customer_is_told_and_disconnected_inside_they_are_served() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "hours", 1).await.unwrap();
    let cal = t.admin.post("/api/v1/calendars", &afternoons_only()).await.unwrap();
    assert_eq!(cal.status, 201, "{}", cal.body);
    let wf = published(&t, &[], &hours_then_queue()).await;
    let t = with_service(t, &wf, json!({"primary_calendar_id": cal.body["id"]})).await;

    let (conv, token) = t.start_chat(&server.base, "Early Bird", None).await.unwrap();
    let mut v = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    entry(&mut v, "closed text", |e| e["text"] == "We are closed. We open at 12:00.").await;
    let ended = entry(&mut v, "ended", |e| e["event"]["type"] == "ended").await;
    assert_eq!(ended["entry"]["event"]["by"], "system");
    let c = t.admin.get(&format!("/api/v1/conversations/{conv}")).await.unwrap();
    assert_eq!((c.body["status"].as_str(), c.body["outcome"].as_str()), (Some("ended"), Some("handled_by_system")));
    let log = t.admin.get(&format!("/api/v1/conversations/{conv}/log")).await.unwrap();
    assert!(log.body["entries"].as_array().unwrap().iter().all(|e| e["event"]["type"] != "queued"));

    // Three hours later it is open: an agent gets the chat.
    server.clock.advance(time::Duration::hours(3));
    let (mut agent, _) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    let (conv, token) = t.start_chat(&server.base, "Lunch Customer", None).await.unwrap();
    let mut v = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    let offer = agent.until("offer", |f| f["type"] == "offer").await.unwrap();
    assert_eq!(offer["offer"]["conversation_id"], conv.as_str());
    agent.send(&json!({"type": "accept", "conversation_id": conv})).await.unwrap();
    entry(&mut v, "connected", |e| e["event"]["type"] == "connected").await;
    let run = t.admin.get(&format!("/api/v1/conversations/{conv}/workflow")).await.unwrap();
    assert_eq!(run.body["trace"][0]["exit"], "open", "{}", run.body);
    server.shutdown().await.unwrap();
}

fn greeting(text: &str) -> Value {
    json!({"start": "accept", "nodes": [
        {"id": "accept", "activity": {"kind": "accept"}, "exits": {"next": "hello"}},
        {"id": "hello", "activity": {"kind": "message", "text": text}, "exits": {"next": "queue"}},
        {"id": "queue", "activity": {"kind": "queue_task"}, "exits": {"next": "wait"}},
        {"id": "wait", "activity": {"kind": "delay", "secs": 3600}}
    ]})
}

#[tokio::test]
async fn a_running_chat_keeps_its_version_while_new_chats_take_the_published_one_and_rollback_restores() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "versions", 1).await.unwrap();
    let wf = published(&t, &[], &greeting("Hello from v1")).await;
    let t = with_service(t, &wf, json!({})).await;
    let (first, token) = t.start_chat(&server.base, "First", None).await.unwrap();
    let mut v1 = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    entry(&mut v1, "v1 greeting", |e| e["text"] == "Hello from v1").await;

    // A new draft changes nothing until it is published.
    let d = t
        .admin
        .send("PUT", &format!("/api/v1/workflows/{wf}/draft"), &json!({"definition": greeting("Hello from v2")}))
        .await
        .unwrap();
    assert_eq!((d.status.as_u16(), d.body["current_version"].as_i64()), (200, Some(1)), "{}", d.body);
    let (_, token) = t.start_chat(&server.base, "Still v1", None).await.unwrap();
    let mut v = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    entry(&mut v, "v1 greeting again", |e| e["text"] == "Hello from v1").await;

    let p = t.admin.post(&format!("/api/v1/workflows/{wf}/publish"), &json!({})).await.unwrap();
    assert_eq!((p.status.as_u16(), p.body["version"].as_i64()), (201, Some(2)), "{}", p.body);
    let (second, token) = t.start_chat(&server.base, "Second", None).await.unwrap();
    let mut v2 = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    entry(&mut v2, "v2 greeting", |e| e["text"] == "Hello from v2").await;
    for (conv, version) in [(&first, 1), (&second, 2)] {
        let c = t.admin.get(&format!("/api/v1/conversations/{conv}")).await.unwrap();
        assert_eq!(c.body["workflow_version"], version);
        let run = t.admin.get(&format!("/api/v1/conversations/{conv}/workflow")).await.unwrap();
        assert_eq!(run.body["workflow_version"], version);
    }

    // History, rollback as a new version, and the services that use the workflow.
    let r = t.admin.post(&format!("/api/v1/workflows/{wf}/versions/1/restore"), &json!({})).await.unwrap();
    assert_eq!(
        (r.status.as_u16(), r.body["version"].as_i64(), r.body["restored_from"].as_i64()),
        (201, Some(3), Some(1))
    );
    let h = t.admin.get(&format!("/api/v1/workflows/{wf}/versions")).await.unwrap();
    let versions: Vec<i64> = h.body.as_array().unwrap().iter().map(|v| v["version"].as_i64().unwrap()).collect();
    assert_eq!(versions, [1, 2, 3]);
    let (_, token) = t.start_chat(&server.base, "Third", None).await.unwrap();
    let mut v3 = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    entry(&mut v3, "v1 greeting restored", |e| e["text"] == "Hello from v1").await;
    let used = t.admin.get(&format!("/api/v1/workflows/{wf}/services")).await.unwrap();
    assert_eq!(
        used.body.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect::<Vec<_>>(),
        [t.service_id.as_str()]
    );
    let missing = t.admin.get(&format!("/api/v1/workflows/{wf}/versions/9")).await.unwrap();
    assert_eq!(missing.status, 404);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn parameters_start_at_their_defaults_and_cannot_be_deleted_while_a_workflow_names_them() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "params", 1).await.unwrap();
    let p = t
        .admin
        .post("/api/v1/parameters", &json!({"id": "Team", "name": "Team", "default_value": "Blue"}))
        .await
        .unwrap();
    assert_eq!(p.status, 201, "{}", p.body);
    let dup = t.admin.post("/api/v1/parameters", &json!({"id": "Team", "name": "Again"})).await.unwrap();
    assert_eq!((dup.status.as_u16(), dup.code()), (409, "parameter_exists"));
    let bad = t.admin.post("/api/v1/parameters", &json!({"id": "no spaces", "name": "x"})).await.unwrap();
    assert_eq!((bad.status.as_u16(), bad.body["errors"][0]["path"].as_str()), (422, Some("/id")));
    // A workflow naming an unknown parameter cannot be published: the node and code say why.
    let unknown = greeting("Team $(CustomContextParameters.Tean)");
    let r = t
        .admin
        .post(
            "/api/v1/workflows",
            &json!({"name": "Typo", "kind": "instant_messaging", "definition": unknown, "publish": true}),
        )
        .await
        .unwrap();
    assert_eq!((r.status.as_u16(), r.body["errors"][0]["node"].as_str()), (422, Some("hello")), "{}", r.body);
    assert_eq!(r.body["errors"][0]["code"], "unknown_parameter");

    let wf = published(&t, &[], &greeting("Team $(CustomContextParameters.Team) is here")).await;
    let t = with_service(t, &wf, json!({})).await;
    let (_, token) = t.start_chat(&server.base, "Ann", None).await.unwrap();
    let mut v = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    entry(&mut v, "default", |e| e["text"] == "Team Blue is here").await;
    let patched = t.admin.send("PATCH", "/api/v1/parameters/Team", &json!({"default_value": "Red"})).await.unwrap();
    assert_eq!(patched.body["default_value"], "Red");
    let (_, token) = t.start_chat(&server.base, "Bob", None).await.unwrap();
    let mut v = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    entry(&mut v, "new default", |e| e["text"] == "Team Red is here").await;

    let del = t.admin.raw("DELETE", "/api/v1/parameters/Team", None, None).await.unwrap();
    assert_eq!((del.status.as_u16(), del.code()), (409, "parameter_in_use"));
    assert_eq!(t.admin.get("/api/v1/parameters/Team").await.unwrap().status, 200);
    t.admin.post("/api/v1/parameters", &json!({"id": "Spare", "name": "Spare"})).await.unwrap();
    let del = t.admin.raw("DELETE", "/api/v1/parameters/Spare", None, None).await.unwrap();
    assert_eq!(del.status, 204);
    assert_eq!(t.admin.get("/api/v1/parameters/Spare").await.unwrap().status, 404);
    server.shutdown().await.unwrap();
}

/// A workflow with a question, the queue and the position loop.
fn ask_then_queue() -> Value {
    json!({"start": "accept", "nodes": [
        {"id": "accept", "activity": {"kind": "accept"}, "exits": {"next": "ask"}},
        {"id": "ask", "activity": {"kind": "collect_information", "prompt": "Your order number?", "parameter": "Order",
            "rule": {"kind": "regex", "pattern": "^[0-9]+$"}, "timeout_secs": 30, "retries": 1, "retry_text": "Digits only, please."},
         "exits": {"answered": "thanks", "timeout": "queue", "invalid": "queue"}},
        {"id": "thanks", "activity": {"kind": "message", "text": "Thanks, order $(CustomContextParameters.Order)."}, "exits": {"next": "queue"}},
        {"id": "queue", "activity": {"kind": "queue_task", "max_queue_secs": 300}, "exits": {"next": "wait"}},
        {"id": "wait", "activity": {"kind": "delay", "secs": 20}, "exits": {"next": "check"}},
        {"id": "check", "activity": {"kind": "check_task"},
         "exits": {"queued": "position", "offering": "wait", "connected": "done", "limit_reached": "done", "ended": "done"}},
        {"id": "position", "activity": {"kind": "get_queue_position", "parameter": "QueuePosition"},
         "exits": {"next": "tell", "not_queued": "wait"}},
        {"id": "tell", "activity": {"kind": "message", "text": "You are number $(Queue.Position)."}, "exits": {"next": "wait"}},
        {"id": "done", "activity": {"kind": "disconnect"}}
    ]})
}

fn trace_of(run: &Value) -> Vec<(String, String, Option<String>)> {
    run["trace"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (s["node"].as_str().unwrap().into(), s["kind"].as_str().unwrap().into(), s["exit"].as_str().map(Into::into))
        })
        .collect()
}

#[tokio::test]
async fn the_simulator_takes_the_same_path_and_sends_the_same_messages_as_a_live_chat() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "sim", 1).await.unwrap();
    let wf = published(&t, &["Order", "QueuePosition"], &ask_then_queue()).await;
    let t = with_service(t, &wf, json!({})).await;
    // The script: a wrong answer at 5 s, the right one at 8 s, an agent available at 50 s.
    let script = json!({"steps": [
        {"at_secs": 5, "action": {"kind": "customer_text", "text": "abc"}},
        {"at_secs": 8, "action": {"kind": "customer_text", "text": "4711"}},
        {"at_secs": 50, "action": {"kind": "agents", "available": 1}}
    ], "run_for_secs": 120});
    let sim = t
        .admin
        .post(&format!("/api/v1/workflows/{wf}/simulate"), &json!({"service_id": t.service_id, "script": script}))
        .await
        .unwrap();
    assert_eq!(sim.status, 200, "{}", sim.body);
    // Nothing live was touched: no conversation exists yet.
    assert_eq!(t.admin.get("/api/v1/agent/history").await.unwrap().status.as_u16() / 100, 4);

    // The same script, live.
    let (conv, token) = t.start_chat(&server.base, "Live", None).await.unwrap();
    let mut v = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    entry(&mut v, "question", |e| e["text"] == "Your order number?").await;
    server.clock.advance(time::Duration::seconds(5));
    v.send(&json!({"type": "send", "client_msg_id": "a1", "text": "abc"})).await.unwrap();
    entry(&mut v, "retry", |e| e["text"] == "Digits only, please.").await;
    server.clock.advance(time::Duration::seconds(3));
    v.send(&json!({"type": "send", "client_msg_id": "a2", "text": "4711"})).await.unwrap();
    entry(&mut v, "thanks", |e| e["text"] == "Thanks, order 4711.").await;
    server.clock.advance(time::Duration::seconds(42));
    let (mut agent, _) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    agent.until("offer", |f| f["type"] == "offer").await.unwrap();
    agent.send(&json!({"type": "accept", "conversation_id": conv})).await.unwrap();
    entry(&mut v, "connected", |e| e["event"]["type"] == "connected").await;
    server.clock.advance(time::Duration::seconds(70));
    let live = t.admin.get(&format!("/api/v1/conversations/{conv}/workflow")).await.unwrap();
    assert_eq!(live.body["state"], "finished", "{}", live.body);

    assert_eq!(trace_of(&sim.body), trace_of(&live.body));
    assert!(trace_of(&live.body).contains(&("check".into(), "check_task".into(), Some("connected".into()))));
    let log = t.admin.get(&format!("/api/v1/conversations/{conv}/log")).await.unwrap();
    let live_texts: Vec<&str> = log.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["sender"]["role"] == "system")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    let sim_texts: Vec<&str> = sim.body["log"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["sender"] == "system")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(sim_texts, live_texts);
    assert!(live_texts.contains(&"You are number 1."), "{live_texts:?}");
    assert_eq!(sim.body["parameters"]["Order"], live.body["parameters"]["Order"]);
    server.shutdown().await.unwrap();
}

fn crm_lookup(url: &str) -> Value {
    json!({"start": "accept", "nodes": [
        {"id": "accept", "activity": {"kind": "accept"}, "exits": {"next": "lookup"}},
        {"id": "lookup", "activity": {"kind": "http_request", "method": "POST", "url": url,
            "headers": [{"name": "X-Customer", "value": "$(Customer.Email)"}], "body": "{\"email\":\"$(Customer.Email)\"}",
            "timeout_secs": 5, "response": [{"pointer": "/tier", "parameter": "Tier"}]},
         "exits": {"success": "tier", "failure": "down"}},
        {"id": "tier", "activity": {"kind": "message", "text": "Your tier: $(CustomContextParameters.Tier)"}, "exits": {"next": "queue"}},
        {"id": "down", "activity": {"kind": "message", "text": "We could not look you up."}, "exits": {"next": "queue"}},
        {"id": "queue", "activity": {"kind": "queue_task"}, "exits": {"next": "wait"}},
        {"id": "wait", "activity": {"kind": "delay", "secs": 3600}}
    ]})
}

/// A CRM on the loopback interface that answers with the tier for the e-mail it is sent.
async fn fake_crm() -> (String, tokio::sync::mpsc::UnboundedReceiver<(String, String)>) {
    use axum::routing::post;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/lookup",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let tx = tx.clone();
            async move {
                let customer = headers.get("x-customer").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                let _ = tx.send((customer, body));
                axum::Json(json!({"tier": "gold"}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/lookup", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

#[tokio::test]
async fn an_http_request_reaches_an_allowed_host_and_maps_its_answer_into_a_parameter() {
    let (url, mut calls) = fake_crm().await;
    let server = TestServer::spawn_with(parley_testkit::Db::Sqlite, |l| {
        l.http_allow_hosts = Some(vec!["127.0.0.1".into()]);
        l.http_allow_private = Some(true);
    })
    .await;
    let t = fixtures::tenant(&server.base, "crm", 1).await.unwrap();
    let wf = published(&t, &["Tier"], &crm_lookup(&url)).await;
    let t = with_service(t, &wf, json!({})).await;
    let (_, token) = t.start_chat(&server.base, "Gina", None).await.unwrap();
    let mut v = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    entry(&mut v, "tier", |e| e["text"] == "Your tier: gold").await;
    let (header, body) = calls.recv().await.unwrap();
    assert_eq!(header, "visitor@example.com");
    assert_eq!(body, r#"{"email":"visitor@example.com"}"#);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_http_request_to_a_loopback_address_is_refused_by_default_and_takes_the_failure_exit() {
    let (url, mut calls) = fake_crm().await;
    let server = TestServer::spawn_with(parley_testkit::Db::Sqlite, |l| {
        l.http_allow_hosts = Some(vec!["127.0.0.1".into()]);
    })
    .await;
    let t = fixtures::tenant(&server.base, "crm", 1).await.unwrap();
    let wf = published(&t, &["Tier"], &crm_lookup(&url)).await;
    let t = with_service(t, &wf, json!({})).await;
    let (_, token) = t.start_chat(&server.base, "Gina", None).await.unwrap();
    let mut v = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    entry(&mut v, "failure exit", |e| e["text"] == "We could not look you up.").await;
    assert!(calls.try_recv().is_err(), "the CRM was never called");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_simulator_refuses_bad_requests_with_paths_and_runs_drafts_it_can_run() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "simbad", 1).await.unwrap();
    let wf = published(&t, &[], &greeting("Hi")).await;
    let sim = |body: Value| {
        let admin = &t.admin;
        let path = format!("/api/v1/workflows/{wf}/simulate");
        async move { admin.post(&path, &body).await.unwrap() }
    };
    let cases = [
        (json!({"start_at": "9999-12-31T23:30:00Z"}), "/start_at", "out_of_range"),
        (json!({"draft": true, "version": 1}), "/version", "conflicting_fields"),
        (json!({"version": 7}), "/version", "unknown_reference"),
        (json!({"service_id": "018f0000-0000-7000-8000-000000000000"}), "/service_id", "unknown_reference"),
        (json!({"script": {"agents": 500}}), "/script/agents", "too_many"),
    ];
    for (body, path, code) in cases {
        let r = sim(body.clone()).await;
        assert_eq!(
            (r.status.as_u16(), r.body["errors"][0]["path"].as_str(), r.body["errors"][0]["code"].as_str()),
            (422, Some(path), Some(code)),
            "{body}: {}",
            r.body
        );
    }
    // A draft whose structure the interpreter cannot run is refused; a draft that only names an
    // unknown parameter runs, and the trace shows it.
    let spin = json!({"start": "accept", "nodes": [
        {"id": "accept", "activity": {"kind": "accept"}, "exits": {"next": "m"}},
        {"id": "m", "activity": {"kind": "message", "text": "again"}, "exits": {"next": "m"}}]});
    let d = t.admin.send("PUT", &format!("/api/v1/workflows/{wf}/draft"), &json!({"definition": spin})).await.unwrap();
    assert_eq!(d.status, 200);
    let r = sim(json!({"draft": true})).await;
    assert_eq!(
        (r.status.as_u16(), r.body["errors"][0]["code"].as_str()),
        (422, Some("loop_without_wait")),
        "{}",
        r.body
    );
    let typo = greeting("Hi $(CustomContextParameters.Nobody)");
    t.admin.send("PUT", &format!("/api/v1/workflows/{wf}/draft"), &json!({"definition": typo})).await.unwrap();
    let r = sim(json!({"draft": true, "script": {"agents": 1}})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["log"][1]["text"], "Hi ", "an unknown parameter renders empty");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_agent_sees_what_the_workflow_collected_with_the_offer_and_the_chat() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "details", 1).await.unwrap();
    let r = t.admin.post("/api/v1/parameters", &json!({"id": "Topic", "name": "Topic of the chat"})).await.unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let r =
        t.admin.post("/api/v1/parameters", &json!({"id": "Unset", "name": "Never set", "default_value": "n/a"})).await;
    assert_eq!(r.unwrap().status, 201);
    let def = json!({"start": "accept", "nodes": [
        {"id": "accept", "activity": {"kind": "accept"}, "exits": {"next": "save"}},
        {"id": "save", "activity": {"kind": "save_to_parameter", "parameter": "Topic", "value": "<b>$(Task.InitialMessage)</b>"},
         "exits": {"next": "queue"}},
        {"id": "queue", "activity": {"kind": "queue_task"}}
    ]});
    let wf = published(&t, &[], &def).await;
    let t = with_service(t, &wf, json!({})).await;
    let (mut agent, _) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    let (conv, _) = t.start_chat(&server.base, "Dora", Some("refund")).await.unwrap();
    let offer = agent.until("offer", |f| f["type"] == "offer").await.unwrap();
    // Only what was set, under its name, as plain values (the page shows them as text).
    let expected = json!([{"name": "Topic of the chat", "value": "<b>refund</b>"}]);
    assert_eq!(offer["offer"]["details"], expected);
    agent.send(&json!({"type": "accept", "conversation_id": conv})).await.unwrap();
    let chat = agent.until("chat", |f| f["type"] == "chat").await.unwrap();
    assert_eq!(chat["chat"]["details"], expected);
    let me = parley_testkit::Api::new(&server.base).cookie(&t.login(&server.base, 0).await.unwrap());
    assert_eq!(me.get("/api/v1/agent/state").await.unwrap().body["chats"][0]["details"], expected);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_pattern_that_does_not_compile_is_refused_at_save_with_its_node_and_path() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "patterns", 1).await.unwrap();
    let p = t.admin.post("/api/v1/parameters", &json!({"id": "Order", "name": "Order"})).await.unwrap();
    assert_eq!(p.status, 201, "{}", p.body);
    let broken = ask_then_queue().to_string().replace("^[0-9]+$", "([0-9]+");
    let def: Value = serde_json::from_str(&broken).unwrap();
    let r = t
        .admin
        .post(
            "/api/v1/workflows",
            &json!({"name": "Broken", "kind": "instant_messaging", "definition": def, "publish": true}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 422, "{}", r.body);
    let e = &r.body["errors"][0];
    assert_eq!((e["node"].as_str(), e["code"].as_str()), (Some("ask"), Some("invalid_regex")), "{}", r.body);
    assert!(e["path"].as_str().unwrap().ends_with("/activity/rule/pattern"), "{}", r.body);
    assert!(e["message"].as_str().unwrap().contains("unclosed group"), "{}", r.body);
    let list = t.admin.get("/api/v1/workflows").await.unwrap();
    assert!(list.body.to_string().find("Broken").is_none(), "nothing was stored: {}", list.body);

    // A condition's pattern is checked with its own flags, in a draft's issues as well.
    let check = json!({"start": "check", "nodes": [
        {"id": "check", "activity": {"kind": "check_parameter", "parameter": "Order",
            "conditions": [{"exit": "vip", "op": "regex", "value": "[a-", "ignore_case": true}]},
         "exits": {"vip": "bye", "default": "bye"}},
        {"id": "bye", "activity": {"kind": "disconnect"}}
    ]});
    let r = t
        .admin
        .post("/api/v1/workflows", &json!({"name": "Draft", "kind": "instant_messaging", "definition": check}))
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let issues = r.body["issues"].as_array().unwrap();
    assert!(
        issues.iter().any(|i| i["code"] == "invalid_regex"
            && i["node"] == "check"
            && i["path"].as_str().unwrap().ends_with("/conditions/0/value")),
        "{}",
        r.body
    );
    server.shutdown().await.unwrap();
}
