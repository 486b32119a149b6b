//! System messages through the real server: items are checked and linked by scope, and a live
//! chat speaks their texts to each side in the customer's language, under the names they give.

use parley_testkit::{Api, TestServer, fixtures};
use serde_json::{Value, json};

fn support_texts() -> Value {
    json!({"name": "Support texts", "scope": "service", "default_language": "en",
    "agent_name": {"mode": "custom", "template": "$(User.FirstName) from $(Service.Name)"},
    "service_name": {"mode": "custom", "text": "Acme Help"},
    "texts": [
        {"event": "user.incoming", "text": "$(Customer.DisplayName) asks: $(Task.InitialMessage)"},
        {"event": "customer.connected", "text": "You are chatting with $(User.FirstName)."},
        {"event": "customer.connected", "language": "de", "text": "Sie chatten mit $(User.FirstName)."},
        {"event": "customer.ended", "language": "de", "text": "Danke, $(Customer.FirstName)!"}
    ]})
}

async fn create(t: &fixtures::Tenant, body: &Value) -> String {
    let r = t.admin.post("/api/v1/system-messages", body).await.unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

fn problem_paths(body: &Value) -> Vec<(String, String)> {
    body["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| (e["path"].as_str().unwrap_or("").to_owned(), e["code"].as_str().unwrap_or("").to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn items_are_validated_linked_by_scope_and_kept_while_linked() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "texts-admin", 1).await.unwrap();
    let id = create(&t, &support_texts()).await;
    let got = t.admin.get(&format!("/api/v1/system-messages/{id}")).await.unwrap();
    assert_eq!((got.status.as_u16(), got.body["texts"][2]["language"].as_str()), (200, Some("de")), "{}", got.body);
    assert_eq!(got.body["texts"][1]["language"], "en", "the default language is filled in");
    let list = t.admin.get("/api/v1/system-messages").await.unwrap();
    assert_eq!(list.body.as_array().map(Vec::len), Some(1));

    // Every broken rule at once, with its path; nothing is stored.
    let bad = json!({"name": "", "scope": "service", "default_language": "english", "texts": [
        {"event": "customer.declined", "text": "x"},
        {"event": "customer.connected", "text": "$(Nope.Field)"},
        {"event": "no.such_event", "text": "x"}]});
    let r = t.admin.post("/api/v1/system-messages", &bad).await.unwrap();
    assert_eq!((r.status.as_u16(), r.content_type.as_str()), (422, "application/problem+json"), "{}", r.body);
    let r = t.admin.post("/api/v1/system-messages", &json!({"name": "", "scope": "service", "default_language": "english",
        "texts": [{"event": "customer.declined", "text": "x"}, {"event": "customer.connected", "text": "$(Nope.Field)"}]}))
        .await
        .unwrap();
    let paths = problem_paths(&r.body);
    for want in [("/name", "required"), ("/default_language", "invalid_language"), ("/texts/0/event", "not_in_scope")] {
        assert!(paths.contains(&(want.0.to_owned(), want.1.to_owned())), "{want:?} in {paths:?}");
    }
    assert!(paths.iter().any(|(p, _)| p == "/texts/1/text"), "{paths:?}");
    assert_eq!(t.admin.get("/api/v1/system-messages").await.unwrap().body.as_array().map(Vec::len), Some(1));

    // A service links only a service item; a personal widget only a direct one.
    let direct = create(&t, &json!({"name": "Mine", "scope": "direct"})).await;
    let service = format!("/api/v1/services/{}", t.service_id);
    let r = t.admin.send("PATCH", &service, &json!({"system_messages_id": direct})).await.unwrap();
    assert_eq!(
        (r.status.as_u16(), problem_paths(&r.body)),
        (422, vec![("/system_messages_id".into(), "wrong_scope".into())])
    );
    let unknown = "0190f0f0-0000-7000-8000-000000000000";
    let r = t.admin.send("PATCH", &service, &json!({"system_messages_id": unknown})).await.unwrap();
    assert_eq!(problem_paths(&r.body), [("/system_messages_id".into(), "unknown_reference".into())]);
    let r = t.admin.send("PATCH", &service, &json!({"system_messages_id": id})).await.unwrap();
    assert_eq!((r.status.as_u16(), r.body["system_messages_id"].as_str()), (200, Some(id.as_str())), "{}", r.body);
    let user = &t.agents[0].id;
    let r = t
        .admin
        .send("PUT", &format!("/api/v1/users/{user}/direct-chat"), &json!({"enabled": true, "system_messages_id": id}))
        .await
        .unwrap();
    assert_eq!(problem_paths(&r.body), [("/system_messages_id".into(), "wrong_scope".into())]);

    // Linked: neither deleted nor turned into the other scope.
    let r = t.admin.send("DELETE", &format!("/api/v1/system-messages/{id}"), &Value::Null).await.unwrap();
    assert_eq!((r.status.as_u16(), r.code()), (409, "system_messages_in_use"), "{}", r.body);
    let mut direct_now = support_texts();
    direct_now["scope"] = json!("direct");
    direct_now["texts"] = json!([]);
    let r = t.admin.send("PUT", &format!("/api/v1/system-messages/{id}"), &direct_now).await.unwrap();
    assert_eq!((r.status.as_u16(), r.code()), (409, "system_messages_in_use"), "{}", r.body);
    // Unlinked, it goes.
    let r = t.admin.send("PATCH", &service, &json!({"system_messages_id": null})).await.unwrap();
    assert_eq!((r.status.as_u16(), &r.body["system_messages_id"]), (200, &Value::Null));
    let r = t.admin.send("DELETE", &format!("/api/v1/system-messages/{id}"), &Value::Null).await.unwrap();
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(t.admin.get(&format!("/api/v1/system-messages/{id}")).await.unwrap().status, 404);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_chat_speaks_the_items_texts_in_the_customers_language_under_its_names() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "texts-live", 1).await.unwrap();
    let id = create(&t, &support_texts()).await;
    let r = t
        .admin
        .send("PATCH", &format!("/api/v1/services/{}", t.service_id), &json!({"system_messages_id": id}))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let (mut agent, _) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();

    let mut form = t.form("Tess Taylor", Some("Where is my parcel?"));
    form["language"] = json!("de-CH");
    let r = Api::new(&server.base).post("/api/v1/widget/conversations", &form).await.unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["service_name"], "Acme Help", "the widget's title is the item's service name");
    let conv = r.body["conversation_id"].as_str().unwrap().to_owned();
    let token = r.body["visitor_token"].as_str().unwrap().to_owned();
    let mut visitor = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();

    // The offer comes with the item's text for the agent.
    agent.until("offer", |f| f["type"] == "offer").await.unwrap();
    let note = agent.until("notice", |f| f["type"] == "notice").await.unwrap();
    assert_eq!(
        (note["event"].as_str(), note["conversation_id"].as_str()),
        (Some("user.incoming"), Some(conv.as_str()))
    );
    assert_eq!(note["text"], "Tess Taylor asks: Where is my parcel?");

    agent.send(&json!({"type": "accept", "conversation_id": conv})).await.unwrap();
    let chat = agent.until("chat", |f| f["type"] == "chat").await.unwrap();
    assert_eq!(chat["chat"]["agent_alias"], "Agent from Support", "{chat}");
    let joined = visitor.until("connected", |f| f["entry"]["event"]["type"] == "connected").await.unwrap();
    assert_eq!(joined["entry"]["event"]["agent_name"], "Agent from Support");
    let hello = visitor
        .until("text", |f| {
            f["entry"]["sender"]["role"] == "system" && f["entry"]["seq"].as_i64() > joined["entry"]["seq"].as_i64()
        })
        .await
        .unwrap();
    assert_eq!(hello["entry"]["text"], "Sie chatten mit Agent.");

    // The agent's messages reach the customer under the alias, never the directory name.
    agent
        .send(&json!({"type": "send", "conversation_id": conv, "client_msg_id": "m1", "text": "Hallo!"}))
        .await
        .unwrap();
    let msg = visitor.until("agent message", |f| f["entry"]["sender"]["role"] == "agent").await.unwrap();
    assert_eq!(msg["entry"]["sender"]["name"], "Agent from Support");
    // So do their typing and their files.
    agent.send(&json!({"type": "typing", "conversation_id": conv})).await.unwrap();
    let typing = visitor.until("typing", |f| f["type"] == "typing").await.unwrap();
    assert_eq!(typing["name"], "Agent from Support");
    let as_agent = Api::new(&server.base).cookie(&t.login(&server.base, 0).await.unwrap());
    let path = format!("/api/v1/agent/chats/{conv}/attachments?client_msg_id=f1&name=note.txt");
    let r = as_agent.raw("POST", &path, Some("application/octet-stream"), Some(b"see you".to_vec())).await.unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let file = visitor.until("file", |f| f["entry"]["attachment"].is_object()).await.unwrap();
    assert_eq!(file["entry"]["sender"]["name"], "Agent from Support");

    // A change to the item reaches the open chat at once.
    let mut changed = support_texts();
    changed["texts"][3] =
        json!({"event": "customer.ended", "language": "de", "text": "Auf Wiedersehen, $(Customer.FirstName)!"});
    let r = t.admin.send("PUT", &format!("/api/v1/system-messages/{id}"), &changed).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);

    agent.send(&json!({"type": "end", "conversation_id": conv})).await.unwrap();
    let bye = visitor.until("goodbye", |f| f["entry"]["text"] == "Auf Wiedersehen, Tess!").await.unwrap();
    let ended = visitor.until("ended", |f| f["entry"]["event"]["type"] == "ended").await.unwrap();
    assert!(bye["entry"]["seq"].as_i64() < ended["entry"]["seq"].as_i64(), "the goodbye comes before the end");

    // Kept for later readers: the conversation names its alias, the transcript uses it.
    let c = t.admin.get(&format!("/api/v1/conversations/{conv}")).await.unwrap();
    assert_eq!(c.body["agent_alias"], "Agent from Support", "{}", c.body);
    let transcript = Api::new(&server.base)
        .bearer(&token)
        .download(&format!("/api/v1/widget/conversations/{conv}/transcript"))
        .await
        .unwrap();
    let text = String::from_utf8(transcript.bytes.clone()).unwrap();
    assert!(text.starts_with("Chat with Acme Help"), "{text}");
    assert!(text.contains("Agent from Support: Hallo!"), "{text}");
    assert!(!text.contains("Agent 1"), "{text}");
    server.shutdown().await.unwrap();
}
