//! Bad input gets its documented problem+json error and changes nothing.

use parley_testkit::{Api, TestServer, Ws, fixtures};
use serde_json::{Value, json};

async fn user_count(t: &fixtures::Tenant) -> usize {
    t.admin.get("/api/v1/users").await.unwrap().body.as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn malformed_json_is_a_400_problem_and_creates_nothing() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "bad-json", 1).await.unwrap();
    let before = user_count(&t).await;
    let r = t
        .admin
        .raw("POST", "/api/v1/users", Some("application/json"), Some(b"{\"display_name\": ".to_vec()))
        .await
        .unwrap();
    assert_eq!((r.status.as_u16(), r.code()), (400, "malformed_json"));
    assert_eq!(r.content_type, "application/problem+json");
    assert_eq!(r.body["status"], 400);
    assert_eq!(user_count(&t).await, before);
}

#[tokio::test]
async fn unknown_fields_are_refused_with_their_path() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "unknown", 1).await.unwrap();
    let before = user_count(&t).await;
    let r = t
        .admin
        .post("/api/v1/users", &json!({"display_name": "X", "email": "x@y.co", "is_admin": true}))
        .await
        .unwrap();
    assert_eq!((r.status.as_u16(), r.code()), (400, "unknown_field"));
    assert_eq!(user_count(&t).await, before);
    let r = Api::new(&server.base)
        .post("/api/v1/widget/conversations", &{
            let mut f = t.form("Vic", None);
            f["referrer"] = json!("x");
            f
        })
        .await
        .unwrap();
    assert_eq!(r.code(), "unknown_field");
}

#[tokio::test]
async fn over_long_text_is_refused_with_the_field_path() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "long", 1).await.unwrap();
    let r = t.admin.post("/api/v1/users", &json!({"display_name": "n".repeat(81), "email": "x@y.co"})).await.unwrap();
    assert_eq!((r.status.as_u16(), r.code()), (422, "validation_failed"));
    assert_eq!(
        (r.body["errors"][0]["path"].as_str(), r.body["errors"][0]["code"].as_str()),
        (Some("/display_name"), Some("too_long"))
    );
    let r = Api::new(&server.base)
        .post("/api/v1/widget/conversations", &t.form("Vic", Some(&"m".repeat(4001))))
        .await
        .unwrap();
    assert_eq!(r.body["errors"][0]["path"], "/first_message");

    // Over the WebSocket: the message is refused and the log does not grow.
    let (conv, token) = t.start_chat(&server.base, "Vic", None).await.unwrap();
    let mut v = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    v.until("queued", |f| f["entry"]["event"]["type"] == "queued").await.unwrap();
    let before = t.admin.get(&format!("/api/v1/conversations/{conv}/log")).await.unwrap().body["entries"]
        .as_array()
        .map(Vec::len);
    v.send(&json!({"type": "send", "client_msg_id": "big", "text": "x".repeat(4001)})).await.unwrap();
    let e = v.until("error", |f| f["type"] == "error").await.unwrap();
    assert_eq!((e["code"].as_str(), e["client_msg_id"].as_str()), (Some("validation_failed"), Some("big")));
    v.send_text("{not json").await.unwrap();
    assert_eq!(v.until("error", |f| f["type"] == "error").await.unwrap()["code"], "malformed_json");
    v.send(&json!({"type": "send", "client_msg_id": "x", "text": "hi", "html": "<b>"})).await.unwrap();
    assert_eq!(v.until("error", |f| f["type"] == "error").await.unwrap()["code"], "unknown_field");
    let after = t.admin.get(&format!("/api/v1/conversations/{conv}/log")).await.unwrap().body["entries"]
        .as_array()
        .map(Vec::len);
    assert_eq!(before, after);
}

/// The socket reads a few KiB at a time; a frame many reads long must still arrive whole.
#[tokio::test]
async fn longest_message_in_multibyte_text_arrives_whole() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "long", 1).await.unwrap();
    let (_, token) = t.start_chat(&server.base, "Vic", None).await.unwrap();
    let mut v = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();
    // 4000 characters of 3 bytes each: 12 KB, three times the read buffer.
    let text = "字".repeat(4000);
    v.send(&json!({"type": "send", "client_msg_id": "long", "text": text})).await.unwrap();
    let e = v.until("entry", |f| f["type"] == "entry" && f["entry"]["client_msg_id"] == "long").await.unwrap();
    assert_eq!(e["entry"]["text"].as_str(), Some(text.as_str()));
}

#[tokio::test]
async fn pre_chat_form_without_consent_or_with_a_bad_email_is_refused() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "consent", 1).await.unwrap();
    let mut form = t.form("Vic", None);
    form["privacy_consent"] = json!(false);
    form["email"] = json!("not-an-email");
    let r = Api::new(&server.base).post("/api/v1/widget/conversations", &form).await.unwrap();
    let codes: Vec<_> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["path"].as_str().unwrap().to_owned(), e["code"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        codes,
        [
            ("/email".to_owned(), "invalid_email".to_owned()),
            ("/privacy_consent".to_owned(), "consent_required".to_owned())
        ]
    );
    let mut wrong_key = t.form("Vic", None);
    wrong_key["widget_key"] = json!("0000");
    let r = Api::new(&server.base).post("/api/v1/widget/conversations", &wrong_key).await.unwrap();
    assert_eq!((r.status.as_u16(), r.code()), (404, "unknown_widget"));
}

#[tokio::test]
async fn wrong_media_type_unknown_route_and_method_are_problems() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "media", 1).await.unwrap();
    let r = t.admin.raw("POST", "/api/v1/users", Some("text/plain"), Some(b"{}".to_vec())).await.unwrap();
    assert_eq!((r.status.as_u16(), r.code()), (415, "unsupported_media_type"));
    let r = t.admin.get("/api/v1/nothing-here").await.unwrap();
    assert_eq!((r.status.as_u16(), r.code()), (404, "route_not_found"));
    let r = t.admin.raw("DELETE", "/api/v1/users", None, None).await.unwrap();
    assert_eq!((r.status.as_u16(), r.code()), (405, "method_not_allowed"));
    let r = t.admin.get("/api/v1/users/not-a-uuid").await.unwrap();
    assert_eq!((r.status.as_u16(), r.code()), (400, "invalid_path"));
    let big = vec![b' '; 300 * 1024];
    let r = t.admin.raw("POST", "/api/v1/users", Some("application/json"), Some(big)).await.unwrap();
    assert_eq!((r.status.as_u16(), r.code()), (413, "payload_too_large"));
}

#[tokio::test]
async fn wrong_credentials_are_refused_with_401() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "creds", 1).await.unwrap();
    let api = Api::new(&server.base);
    assert_eq!(api.get("/api/v1/users").await.unwrap().code(), "invalid_api_key");
    let forged = format!("{}x", t.api_key);
    assert_eq!(api.bearer(&forged).get("/api/v1/users").await.unwrap().code(), "invalid_api_key");
    assert_eq!(api.bearer("pk_garbage").get("/api/v1/users").await.unwrap().status, 401);
    let r = api.post("/api/v1/tenants", &json!({"slug": "evil", "name": "Evil"})).await.unwrap();
    assert_eq!((r.status.as_u16(), r.code()), (401, "unauthorized"));
    let r = api.bearer(&t.api_key).post("/api/v1/tenants", &json!({"slug": "evil", "name": "Evil"})).await.unwrap();
    assert_eq!(r.status, 401, "a tenant key is not a platform token");
    let r = api
        .post(
            "/api/v1/agent/login",
            &json!({"tenant": t.slug, "email": t.agents[0].email, "password": "wrong password!"}),
        )
        .await
        .unwrap();
    assert_eq!((r.status.as_u16(), r.code()), (401, "invalid_credentials"));
    assert!(r.set_cookie.is_none());
    let r = api
        .post(
            "/api/v1/agent/login",
            &json!({"tenant": "no-such", "email": t.agents[0].email, "password": t.agents[0].password}),
        )
        .await
        .unwrap();
    assert_eq!(r.code(), "invalid_credentials");
    assert_eq!(api.get("/api/v1/agent/me").await.unwrap().code(), "not_signed_in");
    assert_eq!(api.cookie("parley_session=forged").get("/api/v1/agent/me").await.unwrap().code(), "not_signed_in");
    let ws = format!("{}/ws/v1/agent", server.ws_base());
    assert_eq!(Ws::refused_status(&ws, None).await, Some(401));
    assert_eq!(Ws::refused_status(&ws, Some("parley_session=forged")).await, Some(401));
}

#[tokio::test]
async fn the_agent_socket_refuses_pages_of_other_origins() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "origins", 1).await.unwrap();
    let cookie = t.login(&server.base, 0).await.unwrap();
    let ws = format!("{}/ws/v1/agent", server.ws_base());
    assert_eq!(Ws::refused_status_from(&ws, Some(&cookie), Some("https://evil.example")).await, Some(403));
    let mut own = Ws::connect_with_origin(&ws, &cookie, &server.base).await.unwrap();
    assert_eq!(own.next().await.unwrap()["type"], "hello");
}

#[tokio::test]
async fn visitor_tokens_are_bound_to_one_conversation_and_expire() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "tokens", 1).await.unwrap();
    let (conv_a, token_a) = t.start_chat(&server.base, "A", None).await.unwrap();
    let (conv_b, _) = t.start_chat(&server.base, "B", None).await.unwrap();
    let api = Api::new(&server.base);
    assert_eq!(
        api.bearer(&token_a).get(&format!("/api/v1/widget/conversations/{conv_a}/log")).await.unwrap().status,
        200
    );
    let r = api.bearer(&token_a).get(&format!("/api/v1/widget/conversations/{conv_b}/log")).await.unwrap();
    assert_eq!((r.status.as_u16(), r.code()), (403, "token_not_for_conversation"));
    // Change the last hex digit of the secret to a different one.
    let last = if token_a.ends_with('0') { '1' } else { '0' };
    let tampered = format!("{}{last}", &token_a[..token_a.len() - 1]);
    let r = api.bearer(&tampered).get(&format!("/api/v1/widget/conversations/{conv_a}/log")).await.unwrap();
    assert_eq!((r.status.as_u16(), r.code()), (401, "invalid_token"));
    let ws = server.ws_base();
    assert_eq!(Ws::refused_status(&format!("{ws}/ws/v1/visitor?token={tampered}"), None).await, Some(401));

    server.clock.advance(time::Duration::hours(25));
    let r = api.bearer(&token_a).get(&format!("/api/v1/widget/conversations/{conv_a}/log")).await.unwrap();
    assert_eq!((r.status.as_u16(), r.code()), (401, "token_expired"));
    assert_eq!(Ws::refused_status(&format!("{ws}/ws/v1/visitor?token={token_a}"), None).await, Some(401));
}

#[tokio::test]
async fn agent_sessions_expire() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "sessions", 1).await.unwrap();
    let cookie = t.login(&server.base, 0).await.unwrap();
    let api = Api::new(&server.base).cookie(&cookie);
    assert_eq!(api.get("/api/v1/agent/me").await.unwrap().status, 200);
    server.clock.advance(time::Duration::hours(13));
    assert_eq!(api.get("/api/v1/agent/me").await.unwrap().code(), "session_expired");
    let r = api.raw("POST", "/api/v1/agent/logout", None, None).await.unwrap();
    assert_eq!(r.status, 204);
    assert_eq!(api.get("/api/v1/agent/me").await.unwrap().code(), "not_signed_in");
}

#[tokio::test]
async fn duplicate_slug_and_email_are_conflicts() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "dupes", 1).await.unwrap();
    let r = Api::new(&server.base)
        .bearer(parley_testkit::server::ADMIN_TOKEN)
        .post("/api/v1/tenants", &json!({"slug": "dupes", "name": "Again"}))
        .await
        .unwrap();
    assert_eq!((r.status.as_u16(), r.code()), (409, "slug_taken"));
    let r = t
        .admin
        .post("/api/v1/users", &json!({"display_name": "Same", "email": t.agents[0].email.to_uppercase()}))
        .await
        .unwrap();
    assert_eq!((r.status.as_u16(), r.code()), (409, "email_taken"));
}

#[tokio::test]
async fn an_invalid_workflow_is_saved_as_a_draft_but_cannot_be_published_or_selected() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "wf", 1).await.unwrap();
    let broken = json!({"start": "hello",
        "nodes": [{"id": "hello", "activity": {"kind": "message", "text": "hi"}, "exits": {"next": "gone"}}]});
    // Asked to publish at once: refused, nothing saved.
    let r = t
        .admin
        .post(
            "/api/v1/workflows",
            &json!({"name": "Broken", "kind": "instant_messaging", "definition": broken, "publish": true}),
        )
        .await
        .unwrap();
    assert_eq!((r.status.as_u16(), r.code()), (422, "validation_failed"));
    assert_eq!(
        (
            r.body["errors"][0]["path"].as_str(),
            r.body["errors"][0]["code"].as_str(),
            r.body["errors"][0]["node"].as_str()
        ),
        (Some("/definition/nodes/0/exits/next"), Some("unknown_target"), Some("hello"))
    );
    assert_eq!(t.admin.get("/api/v1/workflows").await.unwrap().body.as_array().map(Vec::len), Some(1));
    // As a draft: saved, with its issues listed.
    let r = t
        .admin
        .post("/api/v1/workflows", &json!({"name": "Broken", "kind": "instant_messaging", "definition": broken}))
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["current_version"], Value::Null);
    assert_eq!(r.body["issues"][0]["code"], "unknown_target");
    let id = r.body["id"].as_str().unwrap().to_owned();
    let p = t.admin.post(&format!("/api/v1/workflows/{id}/publish"), &json!({})).await.unwrap();
    assert_eq!((p.status.as_u16(), p.body["errors"][0]["code"].as_str()), (422, Some("unknown_target")));
    assert_eq!(t.admin.get(&format!("/api/v1/workflows/{id}/versions")).await.unwrap().body, json!([]));
    let s = t.admin.post("/api/v1/services", &json!({"name": "Uses broken", "workflow_id": id})).await.unwrap();
    assert_eq!(
        (s.status.as_u16(), s.body["errors"][0]["path"].as_str(), s.body["errors"][0]["code"].as_str()),
        (422, Some("/workflow_id"), Some("workflow_not_published"))
    );
    let s = t
        .admin
        .send("PATCH", &format!("/api/v1/services/{}", t.service_id), &json!({"workflow_id": id}))
        .await
        .unwrap();
    assert_eq!((s.status.as_u16(), s.body["errors"][0]["code"].as_str()), (422, Some("workflow_not_published")));
    assert_eq!(t.admin.get("/api/v1/services").await.unwrap().body.as_array().map(Vec::len), Some(1));
}
