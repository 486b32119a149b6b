//! Direct-to-user chats through the real server: a personal snippet invites only its user, who
//! accepts, declines or lets the invitation run out (missed); each outcome is reported.

use parley_testkit::{Api, TestServer, Ws, fixtures};
use serde_json::{Value, json};

/// Switches agent `n`'s personal widget on with `settings`; returns the form for their snippet.
async fn personal_form(t: &fixtures::Tenant, server: &TestServer, n: usize, settings: Value) -> Value {
    let user = &t.agents[n].id;
    let r = t.admin.send("PUT", &format!("/api/v1/users/{user}/direct-chat"), &settings).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let snippet = t.admin.get(&format!("/api/v1/users/{user}/snippet")).await.unwrap();
    assert_eq!(snippet.status, 200, "{}", snippet.body);
    assert!(snippet.body["html"].as_str().unwrap().contains(snippet.body["contact_id"].as_str().unwrap()));
    assert!(snippet.body["preview_url"].as_str().unwrap().starts_with(&server.base));
    json!({"contact_id": snippet.body["contact_id"], "widget_key": snippet.body["widget_key"],
           "display_name": "Vera", "email": "vera@example.com", "privacy_consent": true,
           "first_message": "Hello, is this Agent 1?"})
}

/// Starts a chat from `form`; returns `(conversation_id, visitor_token, response body)`.
async fn start(server: &TestServer, form: &Value) -> (String, String, Value) {
    let r = Api::new(&server.base).post("/api/v1/widget/conversations", form).await.unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let conv = r.body["conversation_id"].as_str().unwrap().to_owned();
    let token = r.body["visitor_token"].as_str().unwrap().to_owned();
    (conv, token, r.body)
}

async fn conversation(t: &fixtures::Tenant, conv: &str) -> Value {
    let c = t.admin.get(&format!("/api/v1/conversations/{conv}")).await.unwrap();
    assert_eq!(c.status, 200, "{}", c.body);
    c.body
}

/// `(user_id, outcome)` of every reported user session, newest first. Reporting rows are
/// written after the end goes out, so it first asks the tenant's engine something: it answers
/// only once it has carried out everything before.
async fn user_sessions(t: &fixtures::Tenant, server: &TestServer) -> Vec<(String, String)> {
    let barrier = Api::new(&server.base).cookie(&t.login(&server.base, 0).await.unwrap());
    assert_eq!(barrier.get("/api/v1/agent/state").await.unwrap().status, 200);
    let r = t.admin.get("/api/v1/reports/user-sessions?from=2026-01-05T00:00:00Z").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["user_id"].as_str().unwrap().to_owned(), s["outcome"].as_str().unwrap().to_owned()))
        .collect()
}

async fn ended_text(visitor: &mut Ws) -> String {
    let text = visitor
        .until("system text", |f| f["entry"]["sender"]["role"] == "system" && f["entry"]["text"].is_string())
        .await
        .unwrap();
    visitor.until("ended", |f| f["entry"]["event"]["type"] == "ended").await.unwrap();
    text["entry"]["text"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_personal_snippet_invites_only_its_user_and_a_decline_ends_the_chat_as_declined() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "direct-decline", 2).await.unwrap();
    let form = personal_form(&t, &server, 0, json!({"enabled": true, "invite_secs": 45})).await;
    let (mut user, _) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    let (_colleague, _) = t.agent_online(&server.base, &server.ws_base(), 1).await.unwrap();
    let (conv, token, started) = start(&server, &form).await;
    assert_eq!(started["direct"], true, "{started}");
    let mut visitor = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    let invited = visitor.until("invited", |f| f["entry"]["event"]["type"] == "invited").await.unwrap();
    assert_eq!(invited["entry"]["event"]["user_name"], "Agent 1");
    assert_eq!(invited["entry"]["event"]["deadline"], "2026-01-05T09:00:45Z");

    let offer = user.until("offer", |f| f["type"] == "offer").await.unwrap()["offer"].clone();
    assert_eq!((offer["conversation_id"].as_str(), offer["direct"].as_bool()), (Some(conv.as_str()), Some(true)));
    assert_eq!(offer["service_id"], Value::Null);
    assert_eq!(offer["first_message"], "Hello, is this Agent 1?");
    // Nobody else is asked: the colleague's workspace holds no offer.
    let other = Api::new(&server.base).cookie(&t.login(&server.base, 1).await.unwrap());
    assert_eq!(other.get("/api/v1/agent/state").await.unwrap().body["offers"], json!([]));

    user.send(&json!({"type": "decline", "conversation_id": conv})).await.unwrap();
    user.until("withdrawn", |f| f["type"] == "offer_withdrawn" && f["conversation_id"] == conv.as_str()).await.unwrap();
    assert!(ended_text(&mut visitor).await.contains("Agent 1 cannot take your chat"));
    let c = conversation(&t, &conv).await;
    assert_eq!((c["status"].as_str(), c["outcome"].as_str()), (Some("ended"), Some("declined")), "{c}");
    assert_eq!(user_sessions(&t, &server).await, [(t.agents[0].id.clone(), "declined".to_owned())]);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_unanswered_invitation_is_missed_when_its_time_runs_out() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "direct-missed", 1).await.unwrap();
    let form = personal_form(&t, &server, 0, json!({"enabled": true, "invite_secs": 30})).await;
    let (mut user, _) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    let (conv, token, _) = start(&server, &form).await;
    let mut visitor = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    user.until("offer", |f| f["type"] == "offer").await.unwrap();

    server.clock.advance(time::Duration::seconds(29));
    // Still open a second before the deadline: the visitor may yet type.
    let r = Api::new(&server.base).bearer(&token).get(&format!("/api/v1/widget/conversations/{conv}/log")).await;
    assert_eq!(r.unwrap().status, 200);
    assert_eq!(conversation(&t, &conv).await["status"], "offered");

    server.clock.advance(time::Duration::seconds(1));
    user.until("withdrawn", |f| f["type"] == "offer_withdrawn" && f["conversation_id"] == conv.as_str()).await.unwrap();
    assert!(ended_text(&mut visitor).await.contains("did not answer in time"));
    let c = conversation(&t, &conv).await;
    assert_eq!((c["outcome"].as_str(), c["ended_at"].as_str()), (Some("missed"), Some("2026-01-05T09:00:30Z")));
    assert_eq!(user_sessions(&t, &server).await, [(t.agents[0].id.clone(), "missed".to_owned())]);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_accepted_invitation_becomes_a_chat_the_user_can_end() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "direct-accept", 1).await.unwrap();
    let form = personal_form(&t, &server, 0, json!({"enabled": true})).await;
    let (mut user, _) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    let (conv, token, _) = start(&server, &form).await;
    let mut visitor = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    let offer = user.until("offer", |f| f["type"] == "offer").await.unwrap();
    assert_eq!(offer["offer"]["deadline"], "2026-01-05T09:01:00Z", "the default is 60 seconds");

    user.send(&json!({"type": "accept", "conversation_id": conv})).await.unwrap();
    let chat = user.until("chat", |f| f["type"] == "chat").await.unwrap();
    assert_eq!(
        (chat["chat"]["direct"].as_bool(), chat["chat"]["service_name"].as_str()),
        (Some(true), Some("Direct chat"))
    );
    visitor.until("connected", |f| f["entry"]["event"]["agent_name"] == "Agent 1").await.unwrap();
    crate::support::visitor_says(&mut visitor, "v1", "Thanks for picking up").await;
    user.until("visitor text", |f| f["entry"]["text"] == "Thanks for picking up").await.unwrap();
    crate::support::agent_says(&mut user, &conv, "a1", "Of course, Vera").await;
    visitor.until("agent text", |f| f["entry"]["text"] == "Of course, Vera").await.unwrap();
    // The deadline has no hold on an accepted chat.
    server.clock.advance(time::Duration::seconds(120));

    user.send(&json!({"type": "end", "conversation_id": conv})).await.unwrap();
    let ended = visitor.until("ended", |f| f["entry"]["event"]["type"] == "ended").await.unwrap();
    assert_eq!(ended["entry"]["event"]["by"], "agent");
    let c = conversation(&t, &conv).await;
    assert_eq!((c["outcome"].as_str(), c["agent_id"].as_str()), (Some("user_accepted"), Some(t.agents[0].id.as_str())));
    assert_eq!(user_sessions(&t, &server).await, [(t.agents[0].id.clone(), "accepted".to_owned())]);
    // No after-chat work after a direct chat.
    let state = Api::new(&server.base).cookie(&t.login(&server.base, 0).await.unwrap());
    assert_eq!(state.get("/api/v1/agent/state").await.unwrap().body["routing"]["acw_until"], Value::Null);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_personal_snippet_of_an_unreachable_user_is_missed_at_once() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "direct-away", 1).await.unwrap();
    let form = personal_form(&t, &server, 0, json!({"enabled": true})).await;
    // The user has no workspace open.
    let (conv, token, _) = start(&server, &form).await;
    let mut visitor = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    assert!(ended_text(&mut visitor).await.contains("Agent 1 is not available right now"));
    let c = conversation(&t, &conv).await;
    assert_eq!(c["outcome"], "missed");
    assert_eq!(user_sessions(&t, &server).await, [], "it never reached the user");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn direct_chat_settings_are_checked_and_a_regenerated_key_retires_the_old_snippet() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "direct-settings", 1).await.unwrap();
    let user = t.agents[0].id.clone();
    let put = |body: Value| {
        let admin = t.admin.clone();
        let path = format!("/api/v1/users/{user}/direct-chat");
        async move { admin.send("PUT", &path, &body).await.unwrap() }
    };
    let r = put(json!({"enabled": true, "invite_secs": 4})).await;
    assert_eq!((r.status.as_u16(), r.body["errors"][0]["path"].as_str()), (422, Some("/invite_secs")), "{}", r.body);
    let r = put(json!({"enabled": true, "access": {"restrict_access": true}})).await;
    assert_eq!(r.body["errors"][0]["code"], "template_required", "{}", r.body);
    let r = put(json!({"enabled": true, "idle_warning_secs": 86_401, "idle_warning_text": " "})).await;
    let paths: Vec<&str> = r.body["errors"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["/idle_warning_secs", "/idle_warning_text"], "{}", r.body);
    let r = put(json!({"enabled": true, "ring": 3})).await;
    assert_eq!(r.status, 400, "unknown fields are refused: {}", r.body);
    let ou = t.admin.get(&format!("/api/v1/users/{user}")).await.unwrap().body["ou_id"].clone();
    let bare = t
        .admin
        .post("/api/v1/users", &json!({"ou_id": ou, "display_name": "Nolic", "email": "n@x.example", "licences": []}))
        .await
        .unwrap();
    assert_eq!(bare.status, 201, "{}", bare.body);
    let path = format!("/api/v1/users/{}/direct-chat", bare.body["id"].as_str().unwrap());
    let r = t.admin.send("PUT", &path, &json!({"enabled": true})).await.unwrap();
    assert_eq!((r.status.as_u16(), r.body["errors"][0]["code"].as_str()), (422, Some("licence_required")));

    // Switched off, the personal snippet is unknown, like a wrong key.
    let snippet = t.admin.get(&format!("/api/v1/users/{user}/snippet")).await.unwrap().body;
    let mut form = t.form("Vera", None);
    form["contact_id"] = snippet["contact_id"].clone();
    form["widget_key"] = snippet["widget_key"].clone();
    let widget = Api::new(&server.base);
    let r = widget.post("/api/v1/widget/conversations", &form).await.unwrap();
    assert_eq!((r.status.as_u16(), r.code()), (404, "unknown_widget"));

    // Restricted to a template's websites.
    let blog_sites = json!({"name": "Blog", "origins": ["https://blog.example"]});
    let tpl = t.admin.post("/api/v1/domain-templates", &blog_sites).await.unwrap();
    let r = put(json!({"enabled": true, "access": {"restrict_access": true, "domain_template_ids": [tpl.body["id"]]}}));
    assert_eq!(r.await.status, 200);
    let r = widget.origin("https://evil.example").post("/api/v1/widget/conversations", &form).await.unwrap();
    assert_eq!((r.status.as_u16(), r.code()), (403, "origin_not_allowed"));
    let q = format!("/api/v1/widget/access?contact_id={}&widget_key={}", form["contact_id"], form["widget_key"]);
    let q = q.replace('"', "");
    assert_eq!(widget.origin("https://blog.example").get(&q).await.unwrap().status, 204);
    let del = format!("/api/v1/domain-templates/{}", tpl.body["id"].as_str().unwrap());
    let r = t.admin.raw("DELETE", &del, None, None).await.unwrap();
    assert_eq!(r.status, 409, "a personal widget still uses the template");
    let blog = widget.origin("https://blog.example");
    assert_eq!(blog.post("/api/v1/widget/conversations", &form).await.unwrap().status, 201);

    let fresh = t.admin.post(&format!("/api/v1/users/{user}/snippet/regenerate"), &json!({})).await.unwrap();
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    assert_eq!(fresh.body["contact_id"], snippet["contact_id"], "the Contact ID stays");
    assert_ne!(fresh.body["widget_key"], snippet["widget_key"]);
    let r = blog.post("/api/v1/widget/conversations", &form).await.unwrap();
    assert_eq!((r.status.as_u16(), r.code()), (404, "unknown_widget"), "the old snippet stops working");
    form["widget_key"] = fresh.body["widget_key"].clone();
    assert_eq!(blog.post("/api/v1/widget/conversations", &form).await.unwrap().status, 201);

    // The same for a service's snippet.
    let fresh = t.admin.post(&format!("/api/v1/services/{}/snippet/regenerate", t.service_id), &json!({})).await;
    let fresh = fresh.unwrap();
    assert_eq!(fresh.body["contact_id"], t.contact_id.as_str());
    let r = widget.post("/api/v1/widget/conversations", &t.form("Old", None)).await.unwrap();
    assert_eq!(r.code(), "unknown_widget");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_silent_customer_of_a_direct_chat_is_warned_and_then_the_chat_closes() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "direct-idle", 1).await.unwrap();
    let settings = json!({"enabled": true, "idle_warning_secs": 120, "idle_close_secs": 60,
                          "idle_warning_text": "Are you still there, Vera?"});
    let form = personal_form(&t, &server, 0, settings).await;
    let (mut user, _) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    let (conv, token, _) = start(&server, &form).await;
    let mut visitor = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    user.until("offer", |f| f["type"] == "offer").await.unwrap();
    user.send(&json!({"type": "accept", "conversation_id": conv})).await.unwrap();
    user.until("chat", |f| f["type"] == "chat").await.unwrap();

    server.clock.advance(time::Duration::seconds(120));
    visitor.until("warning", |f| f["entry"]["text"] == "Are you still there, Vera?").await.unwrap();
    server.clock.advance(time::Duration::seconds(60));
    let ended = visitor.until("ended", |f| f["entry"]["event"]["type"] == "ended").await.unwrap();
    assert_eq!(ended["entry"]["event"]["by"], "system");
    let c = conversation(&t, &conv).await;
    assert_eq!(
        (c["outcome"].as_str(), c["outcome_reason"].as_str()),
        (Some("user_accepted"), Some("the customer did not answer"))
    );
    assert_eq!(user_sessions(&t, &server).await, [(t.agents[0].id.clone(), "accepted".to_owned())]);
    server.shutdown().await.unwrap();
}
