//! The distribution engine over real WebSockets with the injected clock: redirect on no answer,
//! decline, after-chat work with extension, live queue positions, and a restart that keeps the
//! queue.

use parley_testkit::{ServerProcess, TestServer, Ws, fixtures};
use serde_json::{Value, json};
use std::path::Path;

async fn with_routing(t: &fixtures::Tenant, routing: Value) {
    let r = t
        .admin
        .send("PATCH", &format!("/api/v1/services/{}", t.service_id), &json!({"routing": routing}))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
}

async fn offer_of(agent: &mut Ws) -> Value {
    agent.until("offer", |f| f["type"] == "offer").await.unwrap()["offer"].clone()
}

#[tokio::test]
async fn an_unanswered_offer_goes_to_the_next_agent_when_its_deadline_passes() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "rona", 2).await.unwrap();
    with_routing(&t, json!({"rona_secs": 15})).await;
    let (mut first, _) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    let (mut second, _) = t.agent_online(&server.base, &server.ws_base(), 1).await.unwrap();
    let (conv, _) = t.start_chat(&server.base, "Rhea", None).await.unwrap();
    let offer = offer_of(&mut first).await;
    assert_eq!(offer["conversation_id"], conv.as_str());
    assert_eq!(offer["deadline"], "2026-01-05T09:00:15Z");

    server.clock.advance(time::Duration::seconds(15));
    first
        .until("withdrawn", |f| f["type"] == "offer_withdrawn" && f["conversation_id"] == conv.as_str())
        .await
        .unwrap();
    let offer = offer_of(&mut second).await;
    assert_eq!(offer["conversation_id"], conv.as_str());
    second.send(&json!({"type": "accept", "conversation_id": conv})).await.unwrap();
    second.until("chat", |f| f["type"] == "chat").await.unwrap();

    let report = t.admin.get("/api/v1/reports/user-sessions?from=2026-01-05T00:00:00Z").await.unwrap();
    let outcomes: Vec<(&str, &str)> = report
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["user_id"].as_str().unwrap(), s["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(outcomes, [(t.agents[0].id.as_str(), "rona")], "the accepted session is written when the chat ends");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_decline_moves_the_offer_on_then_back_to_the_first_decliner_when_nobody_else_is_free() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "decline", 2).await.unwrap();
    let (mut first, _) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    let (mut second, _) = t.agent_online(&server.base, &server.ws_base(), 1).await.unwrap();
    let (conv, _) = t.start_chat(&server.base, "Dee", None).await.unwrap();
    offer_of(&mut first).await;
    first.send(&json!({"type": "decline", "conversation_id": conv})).await.unwrap();
    assert_eq!(offer_of(&mut second).await["conversation_id"], conv.as_str());
    second.send(&json!({"type": "decline", "conversation_id": conv})).await.unwrap();
    // Both declined and nobody else is there: it rings the one who has waited longest again.
    assert_eq!(offer_of(&mut first).await["conversation_id"], conv.as_str());
    first.send(&json!({"type": "accept", "conversation_id": conv})).await.unwrap();
    first.until("chat", |f| f["type"] == "chat").await.unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_agent_who_declined_is_offered_the_chat_again_once_ready_after_the_reoffer_wait() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "alone", 1).await.unwrap();
    with_routing(&t, json!({"reoffer_secs": 60})).await;
    let (mut agent, _) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    let state = t.login(&server.base, 0).await.unwrap();
    let me = parley_testkit::Api::new(&server.base).cookie(&state);
    let (conv, _) = t.start_chat(&server.base, "Lone", None).await.unwrap();
    offer_of(&mut agent).await;
    agent.send(&json!({"type": "decline", "conversation_id": conv})).await.unwrap();
    agent.until("withdrawn", |f| f["type"] == "offer_withdrawn").await.unwrap();
    // The agent steps away; the wait passes while they are away.
    let r = me.send("PUT", "/api/v1/agent/presence", &json!({"presence": "away"})).await.unwrap();
    assert_eq!(r.status, 204, "{}", r.body);
    server.clock.advance(time::Duration::seconds(61));
    assert_eq!(me.get("/api/v1/agent/state").await.unwrap().body["offers"], json!([]), "away: no offer");
    let c = t.admin.get(&format!("/api/v1/conversations/{conv}")).await.unwrap();
    assert_eq!(c.body["status"], "queued");
    // Ready again: the chat they declined is theirs to take.
    let r = me.send("PUT", "/api/v1/agent/presence", &json!({"presence": "available"})).await.unwrap();
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(offer_of(&mut agent).await["conversation_id"], conv.as_str());
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn when_both_agents_missed_a_chat_the_first_to_press_ready_gets_it_at_once() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "missed", 2).await.unwrap();
    with_routing(&t, json!({"rona_secs": 15, "persistent_rona": true})).await;
    let (mut first, _) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    let (mut second, _) = t.agent_online(&server.base, &server.ws_base(), 1).await.unwrap();
    let (conv, _) = t.start_chat(&server.base, "Mia", None).await.unwrap();
    offer_of(&mut first).await;
    server.clock.advance(time::Duration::seconds(15));
    first.until("flagged", |f| f["type"] == "routing" && f["routing"]["rona"] == true).await.unwrap();
    assert_eq!(offer_of(&mut second).await["conversation_id"], conv.as_str());
    server.clock.advance(time::Duration::seconds(15));
    second.until("flagged", |f| f["type"] == "routing" && f["routing"]["rona"] == true).await.unwrap();
    // The engine answers this after it has carried out the whole missed offer.
    let me = parley_testkit::Api::new(&server.base).cookie(&t.login(&server.base, 1).await.unwrap());
    let state = me.get("/api/v1/agent/state").await.unwrap().body;
    assert_eq!((&state["offers"], &state["routing"]["rona"]), (&json!([]), &json!(true)), "{state}");
    let c = t.admin.get(&format!("/api/v1/conversations/{conv}")).await.unwrap();
    assert_eq!(c.body["status"], "queued", "both flagged: it waits");

    second.send(&json!({"type": "reset_rona"})).await.unwrap();
    assert_eq!(offer_of(&mut second).await["conversation_id"], conv.as_str());
    second.send(&json!({"type": "accept", "conversation_id": conv})).await.unwrap();
    second.until("chat", |f| f["type"] == "chat").await.unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn after_chat_work_holds_offers_back_until_it_ends_and_can_be_extended_once() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "acw", 1).await.unwrap();
    with_routing(&t, json!({"acw_secs": 60, "acw_max_extensions": 1})).await;
    let (mut agent, hello) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    assert_eq!(hello["routing"], json!({"acw_until": null, "acw_extensions": 0, "rona": false}));
    let (first, _) = t.start_chat(&server.base, "One", None).await.unwrap();
    offer_of(&mut agent).await;
    agent.send(&json!({"type": "accept", "conversation_id": first})).await.unwrap();
    agent.until("chat", |f| f["type"] == "chat").await.unwrap();
    agent.send(&json!({"type": "end", "conversation_id": first})).await.unwrap();
    let acw = agent.until("acw", |f| f["type"] == "routing").await.unwrap();
    assert_eq!(acw["routing"]["acw_until"], "2026-01-05T09:01:00Z");

    let (second, _) = t.start_chat(&server.base, "Two", None).await.unwrap();
    let state = t.login(&server.base, 0).await.unwrap();
    let me = parley_testkit::Api::new(&server.base).cookie(&state);
    assert_eq!(
        me.get("/api/v1/agent/state").await.unwrap().body["offers"],
        json!([]),
        "no offer during after-chat work"
    );

    server.clock.advance(time::Duration::seconds(50));
    agent.send(&json!({"type": "extend_acw"})).await.unwrap();
    let extended =
        agent.until("extended", |f| f["type"] == "routing" && f["routing"]["acw_extensions"] == 1).await.unwrap();
    assert_eq!(extended["routing"]["acw_until"], "2026-01-05T09:01:50Z");
    agent.send(&json!({"type": "extend_acw"})).await.unwrap();
    let refused = agent.until("refused", |f| f["type"] == "error").await.unwrap();
    assert_eq!(refused["code"], "acw_extension_limit");

    server.clock.advance(time::Duration::seconds(60));
    assert_eq!(offer_of(&mut agent).await["conversation_id"], second.as_str());
    // Ending it early over REST: the next chat comes at once.
    let r = me.post(&format!("/api/v1/agent/offers/{second}/accept"), &json!({})).await.unwrap();
    assert_eq!(r.status, 204, "{}", r.body);
    let r = me.post(&format!("/api/v1/agent/chats/{second}/end"), &json!({})).await.unwrap();
    assert_eq!(r.status, 204);
    let (third, _) = t.start_chat(&server.base, "Three", None).await.unwrap();
    let r = me.post("/api/v1/agent/acw/end", &json!({})).await.unwrap();
    assert_eq!(r.status, 204);
    assert_eq!(offer_of(&mut agent).await["conversation_id"], third.as_str());
    let r = me.post("/api/v1/agent/acw/end", &json!({})).await.unwrap();
    assert_eq!((r.status.as_u16(), r.code()), (409, "not_in_acw"));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn waiting_customers_see_their_position_move_as_others_are_served() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "positions", 1).await.unwrap();
    let mut visitors = Vec::new();
    let mut convs = Vec::new();
    for name in ["Ann", "Ben", "Cy"] {
        let (conv, token) = t.start_chat(&server.base, name, None).await.unwrap();
        convs.push(conv);
        visitors.push(fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap());
    }
    let third = &mut visitors[2];
    let q = third.until("position 3", |f| f["type"] == "queue" && f["position"] == 3).await.unwrap();
    assert_eq!(q["estimated_wait_secs"], Value::Null, "nobody staffs the service yet");

    let (mut agent, _) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    let offer = offer_of(&mut agent).await;
    assert_eq!(offer["conversation_id"], convs[0].as_str());
    let q = visitors[2].until("position 2", |f| f["type"] == "queue" && f["position"] == 2).await.unwrap();
    assert!(q["estimated_wait_secs"].as_i64().unwrap() > 0, "{q}");
    agent.send(&json!({"type": "accept", "conversation_id": convs[0]})).await.unwrap();
    agent.send(&json!({"type": "end", "conversation_id": convs[0]})).await.unwrap();
    visitors[2].until("position 1", |f| f["type"] == "queue" && f["position"] == 1).await.unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_restart_keeps_every_queued_chat_and_its_order() {
    let bin = Path::new(env!("CARGO_BIN_EXE_parley"));
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(bin, dir.path()).await.unwrap();
    let t = fixtures::tenant(&server.base, "restart", 1).await.unwrap();
    let mut convs = Vec::new();
    for name in ["First", "Second", "Third", "Fourth"] {
        convs.push(t.start_chat(&server.base, name, None).await.unwrap().0);
    }
    server.terminate().await.unwrap();

    let server = ServerProcess::start(bin, dir.path()).await.unwrap();
    let (mut agent, _) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    let mut served = Vec::new();
    for _ in 0..convs.len() {
        let offer = offer_of(&mut agent).await;
        let conv = offer["conversation_id"].as_str().unwrap().to_owned();
        agent.send(&json!({"type": "accept", "conversation_id": conv})).await.unwrap();
        agent.until("chat", |f| f["type"] == "chat").await.unwrap();
        agent.send(&json!({"type": "end", "conversation_id": conv})).await.unwrap();
        served.push(conv);
    }
    assert_eq!(served, convs, "every chat, in its original order");
    server.terminate().await.unwrap();
}

#[tokio::test]
async fn a_returning_customer_goes_back_to_their_last_agent_first() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "sticky", 2).await.unwrap();
    with_routing(&t, json!({"last_user_secs": 60})).await;
    let (mut first, _) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    let (mut second, _) = t.agent_online(&server.base, &server.ws_base(), 1).await.unwrap();
    let (conv, _) = t.start_chat(&server.base, "Ann", None).await.unwrap();
    offer_of(&mut first).await;
    first.send(&json!({"type": "accept", "conversation_id": conv})).await.unwrap();
    first.until("chat", |f| f["type"] == "chat").await.unwrap();
    first.send(&json!({"type": "end", "conversation_id": conv})).await.unwrap();
    first.until("ended", |f| f["type"] == "entry" && f["entry"]["event"]["type"] == "ended").await.unwrap();
    // The second agent has waited longer, but the customer (same e-mail) comes back to the first.
    let (again, _) = t.start_chat(&server.base, "Ann", None).await.unwrap();
    assert_eq!(offer_of(&mut first).await["conversation_id"], again.as_str());
    first.send(&json!({"type": "decline", "conversation_id": again})).await.unwrap();
    assert_eq!(offer_of(&mut second).await["conversation_id"], again.as_str(), "declined: anyone may take it");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn preferred_users_set_on_a_task_are_offered_it_first() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "preferred", 2).await.unwrap();
    // A short pause before queueing leaves time to set the preferred users.
    let def = json!({"start": "accept", "nodes": [
        {"id": "accept", "activity": {"kind": "accept"}, "exits": {"next": "pause"}},
        {"id": "pause", "activity": {"kind": "delay", "secs": 10}, "exits": {"next": "queue"}},
        {"id": "queue", "activity": {"kind": "queue_task"}, "exits": {"next": "wait"}},
        {"id": "wait", "activity": {"kind": "delay", "secs": 3600}}
    ]});
    t.use_workflow("Pause", &def).await.unwrap();
    // The first agent is online (and idle longest) the whole time.
    let (_first, _) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    let (mut second, _) = t.agent_online(&server.base, &server.ws_base(), 1).await.unwrap();
    let (conv, _) = t.start_chat(&server.base, "Pia", None).await.unwrap();
    let body = json!({"users": [{"user_id": t.agents[1].id, "priority": 1}]});
    let r = t.admin.send("PUT", &format!("/api/v1/conversations/{conv}/preferred-users"), &body).await.unwrap();
    assert_eq!(r.status, 204, "{}", r.body);
    let bad = json!({"users": [{"user_id": t.agents[1].id, "priority": 0}]});
    let r = t.admin.send("PUT", &format!("/api/v1/conversations/{conv}/preferred-users"), &bad).await.unwrap();
    assert_eq!((r.status.as_u16(), r.body["errors"][0]["path"].as_str()), (422, Some("/users/0/priority")));
    server.clock.advance(time::Duration::seconds(10));
    assert_eq!(
        offer_of(&mut second).await["conversation_id"],
        conv.as_str(),
        "the preferred user, not the longest idle"
    );
    let state = parley_testkit::Api::new(&server.base).cookie(&t.login(&server.base, 0).await.unwrap());
    assert_eq!(state.get("/api/v1/agent/state").await.unwrap().body["offers"], json!([]));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_skill_policy_sends_chats_to_skilled_agents_first_and_widens_after_its_wait() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "skills", 2).await.unwrap();
    let skill = t.admin.post("/api/v1/skills", &json!({"name": "French"})).await.unwrap().body["id"].clone();
    for (agent, level) in [(0, 2), (1, 7)] {
        let body = json!({"skills": [{"skill_id": skill, "level": level}]});
        let r = t.admin.send("PUT", &format!("/api/v1/users/{}/skills", t.agents[agent].id), &body).await.unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let unknown = json!({"policy": [{"after_secs": 0, "requires": [{"skill_id": t.agents[0].id, "min_level": 5}]}]});
    let r = t
        .admin
        .send("PATCH", &format!("/api/v1/services/{}", t.service_id), &json!({"routing": unknown}))
        .await
        .unwrap();
    assert_eq!(
        (r.status.as_u16(), r.body["errors"][0]["path"].as_str()),
        (422, Some("/routing/policy/0/requires/0/skill_id"))
    );
    with_routing(
        &t,
        json!({"policy": [
            {"after_secs": 0, "requires": [{"skill_id": skill, "min_level": 5}]},
            {"after_secs": 60, "requires": [{"skill_id": skill, "min_level": 1}]}
        ]}),
    )
    .await;
    let (mut novice, _) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    let (mut expert, _) = t.agent_online(&server.base, &server.ws_base(), 1).await.unwrap();
    let (first, _) = t.start_chat(&server.base, "Fleur", None).await.unwrap();
    assert_eq!(
        offer_of(&mut expert).await["conversation_id"],
        first.as_str(),
        "the novice waited longer, but lacks the level"
    );
    expert.send(&json!({"type": "accept", "conversation_id": first})).await.unwrap();
    // The expert could take a second chat, but goes Busy: only the novice is left.
    expert.send(&json!({"type": "presence", "presence": "busy"})).await.unwrap();
    expert.until("busy", |f| f["type"] == "presence" && f["presence"] == "busy").await.unwrap();
    let (second, _) = t.start_chat(&server.base, "Gaston", None).await.unwrap();
    // Asked after the engine has taken the chat in: the novice's level 2 is not enough yet.
    let novice_api = parley_testkit::Api::new(&server.base).cookie(&t.login(&server.base, 0).await.unwrap());
    assert_eq!(novice_api.get("/api/v1/agent/state").await.unwrap().body["offers"], json!([]));
    server.clock.advance(time::Duration::seconds(60));
    assert_eq!(offer_of(&mut novice).await["conversation_id"], second.as_str(), "after a minute level 1 will do");
    let del = t.admin.raw("DELETE", &format!("/api/v1/skills/{}", skill.as_str().unwrap()), None, None).await.unwrap();
    assert_eq!((del.status.as_u16(), del.code()), (409, "skill_in_use"));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_silent_customer_is_warned_and_then_the_chat_closes() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "idle", 1).await.unwrap();
    with_routing(&t, json!({"idle_warning_secs": 30, "idle_close_secs": 60, "idle_warning_text": "Still with us?"}))
        .await;
    let (mut agent, _) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    let (conv, token) = t.start_chat(&server.base, "Quiet", None).await.unwrap();
    let mut v = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    offer_of(&mut agent).await;
    agent.send(&json!({"type": "accept", "conversation_id": conv})).await.unwrap();
    v.until("connected", |f| f["type"] == "entry" && f["entry"]["event"]["type"] == "connected").await.unwrap();
    server.clock.advance(time::Duration::seconds(30));
    v.until("warning", |f| f["type"] == "entry" && f["entry"]["text"] == "Still with us?").await.unwrap();
    server.clock.advance(time::Duration::seconds(60));
    let ended = v.until("ended", |f| f["type"] == "entry" && f["entry"]["event"]["type"] == "ended").await.unwrap();
    assert_eq!(ended["entry"]["event"]["by"], "system");
    let c = t.admin.get(&format!("/api/v1/conversations/{conv}")).await.unwrap();
    assert_eq!(
        (c.body["outcome"].as_str(), c.body["outcome_reason"].as_str()),
        (Some("user_accepted"), Some("the customer did not answer"))
    );
    server.shutdown().await.unwrap();
}
