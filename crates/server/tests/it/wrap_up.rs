//! Codes and tags through the real server: administrators define codes and list them on
//! services; the agent who held a chat sums it up with codes of its service and free tags,
//! while it is open and for a day after; the report counts them.

use parley_testkit::{Api, TestServer, fixtures};
use serde_json::{Value, json};

async fn code(t: &fixtures::Tenant, name: &str) -> String {
    let r =
        t.admin.post("/api/v1/codes", &json!({"name": name, "description": format!("{name} (test)")})).await.unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

fn errors(body: &Value) -> Vec<(String, String)> {
    body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| (e["path"].as_str().unwrap_or("").to_owned(), e["code"].as_str().unwrap_or("").to_owned()))
        .collect()
}

#[tokio::test]
async fn codes_are_named_once_listed_on_services_and_kept_while_listed() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "codes-admin", 1).await.unwrap();
    let resolved = code(&t, "Resolved").await;
    let r = t.admin.post("/api/v1/codes", &json!({"name": "resolved"})).await.unwrap();
    assert_eq!((r.status.as_u16(), r.code()), (409, "code_exists"), "names are unique in any case");
    let r = t.admin.post("/api/v1/codes", &json!({"name": "x", "colour": "red"})).await.unwrap();
    assert_eq!((r.status.as_u16(), errors(&r.body)), (400, vec![("/colour".to_owned(), "unknown_field".to_owned())]));
    let r = t.admin.post("/api/v1/codes", &json!({"name": " "})).await.unwrap();
    assert_eq!(errors(&r.body), [("/name".to_owned(), "required".to_owned())]);

    let service = format!("/api/v1/services/{}", t.service_id);
    let unknown = "0190f0f0-0000-7000-8000-000000000000";
    let r = t.admin.send("PATCH", &service, &json!({"codes": {"primary": [resolved, unknown]}})).await.unwrap();
    assert_eq!(errors(&r.body), [("/codes/primary/1".to_owned(), "unknown_reference".to_owned())]);
    let r = t.admin.send("PATCH", &service, &json!({"codes": {"primary": [resolved], "secondary": [resolved]}})).await;
    assert_eq!(errors(&r.unwrap().body), [("/codes/secondary/0".to_owned(), "duplicate".to_owned())]);
    let r = t.admin.send("PATCH", &service, &json!({"codes": {"primary": [resolved]}})).await.unwrap();
    assert_eq!((r.status.as_u16(), &r.body["codes"]), (200, &json!({"primary": [resolved], "secondary": []})));

    let r = t.admin.send("DELETE", &format!("/api/v1/codes/{resolved}"), &Value::Null).await.unwrap();
    assert_eq!((r.status.as_u16(), r.code()), (409, "code_in_use"), "{}", r.body);
    let r = t.admin.send("PUT", &format!("/api/v1/codes/{resolved}"), &json!({"name": "Solved"})).await.unwrap();
    assert_eq!((r.status.as_u16(), r.body["name"].as_str()), (200, Some("Solved")));
    let r = t.admin.send("PATCH", &service, &json!({"codes": {}})).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let r = t.admin.send("DELETE", &format!("/api/v1/codes/{resolved}"), &Value::Null).await.unwrap();
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(t.admin.get("/api/v1/codes").await.unwrap().body, json!([]));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_agent_sums_up_their_chat_with_its_services_codes_and_tags_and_the_report_counts_them() {
    let server = TestServer::sqlite().await;
    let t = fixtures::tenant(&server.base, "codes-chat", 2).await.unwrap();
    let resolved = code(&t, "Resolved").await;
    let refund = code(&t, "Refund").await;
    let elsewhere = code(&t, "Not on this service").await;
    let service = format!("/api/v1/services/{}", t.service_id);
    let r = t.admin.send("PATCH", &service, &json!({"codes": {"primary": [resolved], "secondary": [refund]}})).await;
    assert_eq!(r.unwrap().status, 200);

    let (mut agent, _) = t.agent_online(&server.base, &server.ws_base(), 0).await.unwrap();
    let (conv, _) = t.start_chat(&server.base, "Vera", Some("My order")).await.unwrap();
    agent.until("offer", |f| f["type"] == "offer").await.unwrap();
    let me = Api::new(&server.base).cookie(&t.login(&server.base, 0).await.unwrap());
    let path = format!("/api/v1/agent/chats/{conv}/wrap-up");
    // Only once it is theirs.
    assert_eq!(me.get(&path).await.unwrap().status, 404, "an offer is not yet the agent's chat");
    agent.send(&json!({"type": "accept", "conversation_id": conv})).await.unwrap();
    agent.until("chat", |f| f["type"] == "chat").await.unwrap();

    let view = me.get(&path).await.unwrap();
    assert_eq!(view.status, 200, "{}", view.body);
    assert_eq!(view.body["primary"][0]["name"], "Resolved");
    assert_eq!(view.body["secondary"][0]["name"], "Refund");
    assert_eq!((&view.body["wrap_up"], &view.body["editable_until"]), (&Value::Null, &Value::Null));

    // A code the service does not offer, and bad tags, change nothing.
    let bad = json!({"codes": [resolved, elsewhere], "tags": ["ok", ""]});
    let r = me.send("PUT", &path, &bad).await.unwrap();
    assert_eq!(r.status.as_u16(), 422, "{}", r.body);
    let got = errors(&r.body);
    assert!(got.contains(&("/tags/1".into(), "required".into())), "{got:?}");
    let r = me.send("PUT", &path, &json!({"codes": [resolved, resolved, elsewhere]})).await.unwrap();
    assert_eq!(errors(&r.body), [("/codes/2".to_owned(), "code_not_offered".to_owned())], "paths as sent");
    assert_eq!(me.get(&path).await.unwrap().body["wrap_up"], Value::Null);

    let r =
        me.send("PUT", &path, &json!({"codes": [resolved], "tags": [" VIP ", "vip", "<b>loud</b>"]})).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["tags"], json!(["VIP", "<b>loud</b>"]), "tags are kept once, as text");

    // Another agent of the tenant cannot read or change it.
    let colleague = Api::new(&server.base).cookie(&t.login(&server.base, 1).await.unwrap());
    assert_eq!(colleague.get(&path).await.unwrap().status, 404);
    let r = colleague.send("PUT", &path, &json!({"tags": ["mine"]})).await.unwrap();
    assert_eq!(r.status, 404);

    // After the end, during after-chat work and for a day, it can still change.
    agent.send(&json!({"type": "end", "conversation_id": conv})).await.unwrap();
    agent.until("ended", |f| f["entry"]["event"]["type"] == "ended").await.unwrap();
    let view = me.get(&path).await.unwrap();
    assert_eq!(view.body["editable_until"], "2026-01-06T09:00:00Z", "{}", view.body);
    let r = me.send("PUT", &path, &json!({"codes": [resolved, refund], "tags": ["VIP"]})).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let c = t.admin.get(&format!("/api/v1/conversations/{conv}")).await.unwrap();
    assert_eq!(c.body["wrap_up"]["codes"], json!([resolved, refund]));
    assert_eq!(c.body["wrap_up"]["user_id"], t.agents[0].id.as_str());

    // Taken off the service's lists, a code the chat carries stays, shown as retired.
    let r = t.admin.send("PATCH", &service, &json!({"codes": {"primary": [refund]}})).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let view = me.get(&path).await.unwrap();
    assert_eq!(view.body["retired"][0]["name"], "Resolved", "{}", view.body);
    let r = me.send("PUT", &path, &json!({"codes": [resolved, refund], "tags": ["VIP"]})).await.unwrap();
    assert_eq!(r.status, 200, "a kept code does not block a save: {}", r.body);

    let r = t.admin.get("/api/v1/reports/wrap-ups?limit=5").await.unwrap();
    assert_eq!(errors(&r.body), [("/limit".to_owned(), "not_applicable".to_owned())]);
    let report = t.admin.get("/api/v1/reports/wrap-ups?from=2026-01-05T00:00:00Z").await.unwrap();
    assert_eq!(report.status, 200, "{}", report.body);
    assert_eq!(report.body["conversations"], 1);
    assert_eq!(
        report.body["codes"],
        json!([
            {"code_id": refund, "name": "Refund", "count": 1},
            {"code_id": resolved, "name": "Resolved", "count": 1}
        ])
    );
    assert_eq!(report.body["tags"], json!([{"tag": "VIP", "count": 1}]));

    server.clock.advance(time::Duration::hours(24) + time::Duration::seconds(1));
    // (The sign-in of the day before has expired: a new one.)
    let me = Api::new(&server.base).cookie(&t.login(&server.base, 0).await.unwrap());
    let r = me.send("PUT", &path, &json!({"tags": []})).await.unwrap();
    assert_eq!((r.status.as_u16(), r.code()), (409, "wrap_up_closed"));
    server.shutdown().await.unwrap();
}
