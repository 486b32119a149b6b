//! Domain templates and Restrict Access: the widget's website check at bootstrap, on every
//! visitor API call and on the visitor socket, and the rules for setting it up.

use parley_testkit::{Api, TestServer, Ws, fixtures};
use serde_json::json;

const SHOP: &str = "https://shop.example.com";

/// A tenant whose service only allows `*.example.com`; returns it with a chat started from the
/// allowed shop (and that chat's token).
async fn restricted(server: &TestServer) -> (fixtures::Tenant, String, String) {
    let t = fixtures::tenant(&server.base, "restricted", 1).await.unwrap();
    let bad = t
        .admin
        .send("PATCH", &format!("/api/v1/services/{}", t.service_id), &json!({"access": {"restrict_access": true}}))
        .await
        .unwrap();
    assert_eq!((bad.status.as_u16(), bad.body["errors"][0]["code"].as_str()), (422, Some("template_required")));
    let tpl = t
        .admin
        .post("/api/v1/domain-templates", &json!({"name": "Shops", "origins": ["HTTPS://*.Example.com/"]}))
        .await
        .unwrap();
    assert_eq!(tpl.status, 201, "{}", tpl.body);
    assert_eq!(tpl.body["origins"], json!(["https://*.example.com"]));
    let access = json!({"access": {"restrict_access": true, "domain_template_ids": [tpl.body["id"]]}});
    let r = t.admin.send("PATCH", &format!("/api/v1/services/{}", t.service_id), &access).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let form = t.form("Alice", None);
    let started = Api::new(&server.base).origin(SHOP).post("/api/v1/widget/conversations", &form).await.unwrap();
    assert_eq!(started.status, 201, "{}", started.body);
    let token = started.body["visitor_token"].as_str().unwrap().to_owned();
    let conv = started.body["conversation_id"].as_str().unwrap().to_owned();
    (t, conv, token)
}

#[tokio::test]
async fn a_restricted_widget_starts_only_on_allowed_websites() {
    let server = TestServer::sqlite().await;
    let (t, _, _) = restricted(&server).await;
    let form = t.form("Mallory", None);
    for origin in [Some("https://evil.example.org"), Some("https://example.com"), None] {
        let api = Api::new(&server.base);
        let api = match origin {
            Some(o) => api.origin(o),
            None => api,
        };
        let r = api.post("/api/v1/widget/conversations", &form).await.unwrap();
        assert_eq!((r.status.as_u16(), r.code()), (403, "origin_not_allowed"), "{origin:?}");
    }
    // Parley's own frame (same origin as the server) may always start it.
    let r = Api::new(&server.base).origin(&server.base).post("/api/v1/widget/conversations", &form).await.unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    // The loader's question, answered readably across origins either way.
    let q = format!("/api/v1/widget/access?contact_id={}&widget_key={}", t.contact_id, t.widget_key);
    let ok = Api::new(&server.base).origin(SHOP).get(&q).await.unwrap();
    assert_eq!(ok.status, 204);
    let no = Api::new(&server.base).origin("https://evil.example.org").get(&q).await.unwrap();
    assert_eq!((no.status.as_u16(), no.code()), (403, "origin_not_allowed"));
    assert!(no.body["detail"].as_str().unwrap().contains("evil.example.org"));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_restricted_chat_refuses_its_log_and_socket_from_other_websites() {
    let server = TestServer::sqlite().await;
    let (_, conv, token) = restricted(&server).await;
    let visitor = Api::new(&server.base).bearer(&token);
    let log = format!("/api/v1/widget/conversations/{conv}/log");
    let r = visitor.origin("https://evil.example.org").get(&log).await.unwrap();
    assert_eq!((r.status.as_u16(), r.code()), (403, "origin_not_allowed"));
    assert_eq!(visitor.origin(SHOP).get(&log).await.unwrap().status, 200);
    // The frame's own same-origin reads carry no Origin; the browser vouches for them.
    let url = format!("{}{log}", server.base);
    let read =
        |site: &'static str| reqwest::Client::new().get(&url).bearer_auth(&token).header("sec-fetch-site", site).send();
    assert_eq!(read("same-origin").await.unwrap().status(), 200);
    assert_eq!(read("cross-site").await.unwrap().status(), 403);
    let ws = format!("{}/ws/v1/visitor?token={token}", server.ws_base());
    assert_eq!(Ws::refused_status_from(&ws, None, Some("https://evil.example.org")).await, Some(403));
    assert_eq!(Ws::refused_status_from(&ws, None, Some(SHOP)).await, None, "the allowed shop connects");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn templates_in_use_cannot_be_deleted_and_the_frame_may_only_be_embedded_by_allowed_sites() {
    let server = TestServer::sqlite().await;
    let (t, _, _) = restricted(&server).await;
    let list = t.admin.get("/api/v1/domain-templates").await.unwrap();
    let id = list.body[0]["id"].as_str().unwrap().to_owned();
    let del = t.admin.raw("DELETE", &format!("/api/v1/domain-templates/{id}"), None, None).await.unwrap();
    assert_eq!((del.status.as_u16(), del.code()), (409, "template_in_use"));
    let bad = t
        .admin
        .post("/api/v1/domain-templates", &json!({"name": "x", "origins": ["https://x.com/path"]}))
        .await
        .unwrap();
    assert_eq!((bad.status.as_u16(), bad.body["errors"][0]["path"].as_str()), (422, Some("/origins/0")));
    let frame =
        reqwest::get(format!("{}/widget/frame?contact_id={}&widget_key={}", server.base, t.contact_id, t.widget_key))
            .await
            .unwrap();
    let csp = frame.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("frame-ancestors 'self' https://*.example.com;"), "{csp}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_widget_api_shares_its_answers_with_allowed_websites_only() {
    let server = TestServer::sqlite().await;
    let (t, conv, token) = restricted(&server).await;
    // A preflight carries no data: granted, with what the SDK sends.
    let pre = Api::new(&server.base).origin(SHOP).raw("OPTIONS", "/api/v1/widget/conversations", None, None).await;
    let pre = pre.unwrap();
    assert_eq!(pre.status, 204);
    assert_eq!(pre.header("access-control-allow-origin"), SHOP);
    assert_eq!(pre.header("access-control-allow-methods"), "GET, POST");
    assert_eq!(pre.header("access-control-allow-headers"), "authorization, content-type");

    // The allowed shop reads the answers; a refused website gets none to read.
    let form = t.form("Alice", None);
    let ok = Api::new(&server.base).origin(SHOP).post("/api/v1/widget/conversations", &form).await.unwrap();
    assert_eq!((ok.status.as_u16(), ok.header("access-control-allow-origin")), (201, SHOP));
    let evil = "https://evil.example.org";
    let no = Api::new(&server.base).origin(evil).post("/api/v1/widget/conversations", &form).await.unwrap();
    assert_eq!((no.status.as_u16(), no.header("access-control-allow-origin")), (403, ""));
    let log = format!("/api/v1/widget/conversations/{conv}/log");
    let r = Api::new(&server.base).bearer(&token).origin(SHOP).get(&log).await.unwrap();
    assert_eq!((r.status.as_u16(), r.header("access-control-allow-origin")), (200, SHOP));
    let r = Api::new(&server.base).bearer(&token).origin(evil).get(&log).await.unwrap();
    assert_eq!((r.status.as_u16(), r.header("access-control-allow-origin")), (403, ""));
    let transcript = format!("/api/v1/widget/conversations/{conv}/transcript");
    let r = Api::new(&server.base).bearer(&token).origin(SHOP).get(&transcript).await.unwrap();
    assert_eq!(r.header("access-control-expose-headers"), "content-disposition", "the file name can be read");

    // The admin and agent APIs are never shared across origins.
    let admin = t.admin.origin(SHOP).get("/api/v1/services").await.unwrap();
    assert_eq!((admin.status.as_u16(), admin.header("access-control-allow-origin")), (200, ""));
    let pre = Api::new(&server.base).origin(SHOP).raw("OPTIONS", "/api/v1/services", None, None).await.unwrap();
    assert_eq!(pre.header("access-control-allow-origin"), "");
    // The SDK itself may be loaded by any page.
    let sdk = Api::new(&server.base).get("/sdk/parley-chat.js").await.unwrap();
    assert_eq!((sdk.status.as_u16(), sdk.header("access-control-allow-origin")), (200, "*"));
    assert!(sdk.content_type.starts_with("text/javascript"));
    server.shutdown().await.unwrap();
}
