//! No tenant sees or changes another's data. Every operation in the OpenAPI document is tried
//! with tenant B's credentials against tenant A's resources; an operation added without a rule
//! here fails the test, so new endpoints cannot skip this check.

use crate::support::PNG_1X1;
use parley_testkit::{Api, TestServer, Ws, fixtures};
use serde_json::{Value, json};

struct World {
    server: TestServer,
    a: fixtures::Tenant,
    b: fixtures::Tenant,
    a_ou: String,
    a_conv: String,
    a_calendar: String,
    a_skill: String,
    a_template: String,
    a_attachment: String,
    a_texts: String,
    a_code: String,
}

/// Only tenant A has a parameter with this id.
const A_PARAMETER: &str = "only_in_tenant_a";

fn template_body(ou: Option<&str>) -> Value {
    json!({"name": "Shops", "ou_id": ou, "origins": ["https://shop.example.com"]})
}

fn texts_body(ou: Option<&str>) -> Value {
    json!({"name": "A's texts", "ou_id": ou, "scope": "service",
           "texts": [{"event": "customer.connected", "text": "Hello from A"}]})
}

fn calendar_body(ou: Option<&str>) -> Value {
    json!({"name": "Office", "ou_id": ou, "calendar": {"time_zone": "Europe/Zurich", "default_category": "open"}})
}

async fn world() -> World {
    let server = TestServer::sqlite().await;
    let a = fixtures::tenant(&server.base, "tenant-a", 1).await.unwrap();
    let b = fixtures::tenant(&server.base, "tenant-b", 1).await.unwrap();
    let a_ou = a.admin.get("/api/v1/org-units").await.unwrap().body[1]["id"].as_str().unwrap().to_owned();
    let (a_conv, a_token) = a.start_chat(&server.base, "Alice", Some("private to A")).await.unwrap();
    let up = Api::new(&server.base)
        .bearer(&a_token)
        .raw(
            "POST",
            &format!("/api/v1/widget/conversations/{a_conv}/attachments?client_msg_id=f-1&name=a.png"),
            Some("image/png"),
            Some(PNG_1X1.to_vec()),
        )
        .await
        .unwrap();
    assert_eq!(up.status, 201, "{}", up.body);
    let a_attachment = up.body["attachment"]["id"].as_str().unwrap().to_owned();
    let p = a.admin.post("/api/v1/parameters", &json!({"id": A_PARAMETER, "name": "A's"})).await.unwrap();
    assert_eq!(p.status, 201, "{}", p.body);
    let c = a.admin.post("/api/v1/calendars", &calendar_body(None)).await.unwrap();
    assert_eq!(c.status, 201, "{}", c.body);
    let a_calendar = c.body["id"].as_str().unwrap().to_owned();
    let k = a.admin.post("/api/v1/skills", &json!({"name": "Billing"})).await.unwrap();
    assert_eq!(k.status, 201, "{}", k.body);
    let a_skill = k.body["id"].as_str().unwrap().to_owned();
    let held = json!({"skills": [{"skill_id": a_skill, "level": 4}]});
    let r = a.admin.send("PUT", &format!("/api/v1/users/{}/skills", a.agents[0].id), &held).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let d = a.admin.post("/api/v1/domain-templates", &template_body(None)).await.unwrap();
    assert_eq!(d.status, 201, "{}", d.body);
    let a_template = d.body["id"].as_str().unwrap().to_owned();
    let m = a.admin.post("/api/v1/system-messages", &texts_body(None)).await.unwrap();
    assert_eq!(m.status, 201, "{}", m.body);
    let a_texts = m.body["id"].as_str().unwrap().to_owned();
    let k = a.admin.post("/api/v1/codes", &json!({"name": "A's code"})).await.unwrap();
    assert_eq!(k.status, 201, "{}", k.body);
    let a_code = k.body["id"].as_str().unwrap().to_owned();
    World { server, a, b, a_ou, a_conv, a_calendar, a_skill, a_template, a_attachment, a_texts, a_code }
}

impl World {
    /// The path with A's ids in place of its parameters.
    fn path_with_a_ids(&self, template: &str) -> String {
        let id = if template.starts_with("/api/v1/org-units/") {
            &self.a_ou
        } else if template.starts_with("/api/v1/users/") {
            &self.a.agents[0].id
        } else if template.starts_with("/api/v1/workflows/") {
            &self.a.workflow_id
        } else if template.starts_with("/api/v1/services/") {
            &self.a.service_id
        } else if template.starts_with("/api/v1/parameters/") {
            A_PARAMETER
        } else if template.starts_with("/api/v1/calendars/") {
            &self.a_calendar
        } else if template.starts_with("/api/v1/skills/") {
            &self.a_skill
        } else if template.starts_with("/api/v1/domain-templates/") {
            &self.a_template
        } else if template.starts_with("/api/v1/system-messages/") {
            &self.a_texts
        } else if template.starts_with("/api/v1/codes/") {
            &self.a_code
        } else {
            &self.a_conv
        };
        template
            .replace("{id}", id)
            .replace("{user_id}", &self.a.agents[0].id)
            .replace("{version}", "1")
            .replace("{attachment_id}", &self.a_attachment)
    }

    /// A well-formed body for an operation on one of A's resources, so the answer is about
    /// the resource and not about the body.
    fn body_for(&self, method: &str, template: &str) -> Option<Value> {
        Some(match (method, template) {
            ("PUT", "/api/v1/services/{id}/members/{user_id}") => json!({"active": false}),
            ("PUT", "/api/v1/workflows/{id}/draft") => {
                json!({"definition": {"start": "a", "nodes": [{"id": "a", "activity": {"kind": "accept"}}]}})
            }
            ("PUT", "/api/v1/calendars/{id}") => calendar_body(None),
            ("PUT", "/api/v1/conversations/{id}/preferred-users") => json!({"users": []}),
            ("PUT", "/api/v1/users/{id}/skills") => json!({"skills": []}),
            ("PUT", "/api/v1/users/{id}/direct-chat") => json!({"enabled": false}),
            ("PUT", "/api/v1/domain-templates/{id}") => template_body(None),
            ("PUT", "/api/v1/system-messages/{id}") => texts_body(None),
            ("PUT", "/api/v1/codes/{id}") => json!({"name": "renamed by B"}),
            ("PATCH", _) => json!({"name": "renamed by B"}),
            ("POST", "/api/v1/workflows/{id}/simulate") => json!({}),
            _ => return None,
        })
    }

    /// A request body for B that points at A's resources.
    fn body_with_a_refs(&self, path: &str) -> Option<(Value, &'static str)> {
        let a = &self.a;
        Some(match path {
            "/api/v1/org-units" => (json!({"name": "x", "parent_id": self.a_ou}), "/parent_id"),
            "/api/v1/users" => (json!({"display_name": "x", "email": "x@b.example", "ou_id": self.a_ou}), "/ou_id"),
            "/api/v1/workflows" => (
                json!({"name": "x", "kind": "instant_messaging", "ou_id": self.a_ou,
                       "definition": {"start": "a", "nodes": [{"id": "a", "activity": {"kind": "accept"}}]}}),
                "/ou_id",
            ),
            "/api/v1/services" => (json!({"name": "x", "workflow_id": a.workflow_id}), "/workflow_id"),
            "/api/v1/parameters" => (json!({"id": "x", "name": "x", "ou_id": self.a_ou}), "/ou_id"),
            "/api/v1/calendars" => (calendar_body(Some(&self.a_ou)), "/ou_id"),
            "/api/v1/domain-templates" => (template_body(Some(&self.a_ou)), "/ou_id"),
            "/api/v1/system-messages" => (texts_body(Some(&self.a_ou)), "/ou_id"),
            "/api/v1/codes" => (json!({"name": "B's code", "ou_id": self.a_ou}), "/ou_id"),
            _ => return None,
        })
    }
}

fn a_ids(w: &World) -> Vec<String> {
    vec![
        w.a.id.clone(),
        w.a_ou.clone(),
        w.a.agents[0].id.clone(),
        w.a.workflow_id.clone(),
        w.a.service_id.clone(),
        w.a_conv.clone(),
        w.a_calendar.clone(),
        w.a_skill.clone(),
        w.a_template.clone(),
        w.a_attachment.clone(),
        w.a_texts.clone(),
        w.a_code.clone(),
        A_PARAMETER.to_owned(),
    ]
}

#[tokio::test]
async fn every_tenant_admin_endpoint_refuses_another_tenants_data() {
    let w = world().await;
    let doc = serde_json::to_value(parley_server::openapi::document()).unwrap();
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let scheme = op["security"][0].as_object().and_then(|s| s.keys().next().cloned()).unwrap_or_default();
            if scheme != "api_key" {
                continue;
            }
            checked += 1;
            let m = method.to_uppercase();
            let has_params = path.contains('{');
            let r = if has_params {
                let p = w.path_with_a_ids(path);
                match w.body_for(&m, path) {
                    Some(body) => w.b.admin.send(&m, &p, &body).await,
                    None => w.b.admin.raw(&m, &p, None, None).await,
                }
            } else if m == "POST" {
                match w.body_with_a_refs(path) {
                    Some((body, field)) => {
                        let r = w.b.admin.post(path, &body).await.unwrap();
                        assert_eq!(
                            (r.status.as_u16(), r.body["errors"][0]["path"].as_str()),
                            (422, Some(field)),
                            "{m} {path}: {}",
                            r.body
                        );
                        assert_eq!(r.body["errors"][0]["code"], "unknown_reference");
                        continue;
                    }
                    None if path == "/api/v1/api-keys" => w.b.admin.post(path, &json!({"name": "b key"})).await,
                    // A skill names nothing; B's own, even with A's name, is B's business.
                    None if path == "/api/v1/skills" => w.b.admin.post(path, &json!({"name": "Billing"})).await,
                    None => panic!("no isolation rule for {m} {path}"),
                }
            } else {
                w.b.admin.raw(&m, path, None, None).await
            }
            .unwrap();
            if has_params {
                assert_eq!((r.status.as_u16(), r.code()), (404, "not_found"), "{m} {path} answered {}", r.body);
            } else {
                assert!(r.status.is_success(), "{m} {path}: {}", r.status);
                let text = r.body.to_string();
                for id in a_ids(&w) {
                    assert!(!text.contains(&id), "{m} {path} leaked tenant A's {id}");
                }
            }
        }
    }
    assert!(checked >= 20, "only {checked} tenant operations checked");
    // Nothing of A changed: its service still has its member, active.
    let members = w.a.admin.get(&format!("/api/v1/services/{}/members", w.a.service_id)).await.unwrap();
    assert_eq!(members.body[0]["active"], true);
    let conv = w.a.admin.get(&format!("/api/v1/conversations/{}", w.a_conv)).await.unwrap();
    assert_ne!(conv.body["status"], "ended");
    let param = w.a.admin.get(&format!("/api/v1/parameters/{A_PARAMETER}")).await.unwrap();
    assert_eq!(param.body["name"], "A's");
    let calendar = w.a.admin.get(&format!("/api/v1/calendars/{}", w.a_calendar)).await.unwrap();
    assert_eq!(calendar.body["name"], "Office");
    let held = w.a.admin.get(&format!("/api/v1/users/{}/skills", w.a.agents[0].id)).await.unwrap();
    assert_eq!(held.body[0]["level"], 4, "B cleared nothing");
    let wf = w.a.admin.get(&format!("/api/v1/workflows/{}", w.a.workflow_id)).await.unwrap();
    assert_eq!(wf.body["current_version"], 1, "B published nothing in A's workflow");
    let texts = w.a.admin.get(&format!("/api/v1/system-messages/{}", w.a_texts)).await.unwrap();
    assert_eq!(texts.body["name"], "A's texts", "B renamed nothing");
    // B cannot link A's texts to its own service or personal widget either.
    let link = json!({"system_messages_id": w.a_texts});
    let r = w.b.admin.send("PATCH", &format!("/api/v1/services/{}", w.b.service_id), &link).await.unwrap();
    assert_eq!((r.status.as_u16(), r.body["errors"][0]["code"].as_str()), (422, Some("unknown_reference")));
    let direct = json!({"enabled": true, "system_messages_id": w.a_texts});
    let r = w.b.admin.send("PUT", &format!("/api/v1/users/{}/direct-chat", w.b.agents[0].id), &direct).await.unwrap();
    assert_eq!((r.status.as_u16(), r.body["errors"][0]["code"].as_str()), (422, Some("unknown_reference")));
    // Nor list A's codes on its service.
    let codes = json!({"codes": {"primary": [w.a_code]}});
    let r = w.b.admin.send("PATCH", &format!("/api/v1/services/{}", w.b.service_id), &codes).await.unwrap();
    assert_eq!((r.status.as_u16(), r.body["errors"][0]["path"].as_str()), (422, Some("/codes/primary/0")));
    let code = w.a.admin.get(&format!("/api/v1/codes/{}", w.a_code)).await.unwrap();
    assert_eq!(code.body["name"], "A's code", "B renamed nothing");
}

#[tokio::test]
async fn a_service_cannot_take_another_tenants_user_as_member() {
    let w = world().await;
    let r =
        w.b.admin
            .post(
                "/api/v1/services",
                &json!({"name": "x", "workflow_id": w.b.workflow_id, "members": [{"user_id": w.a.agents[0].id}]}),
            )
            .await
            .unwrap();
    assert_eq!((r.status.as_u16(), r.body["errors"][0]["path"].as_str()), (422, Some("/members/0/user_id")));
    let r =
        w.b.admin
            .send(
                "PUT",
                &format!("/api/v1/services/{}/members/{}", w.b.service_id, w.a.agents[0].id),
                &json!({"active": true}),
            )
            .await
            .unwrap();
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn agent_endpoints_and_socket_only_show_the_agents_own_tenant() {
    let w = world().await;
    let (base, ws_base) = (w.server.base.clone(), w.server.ws_base());
    let doc = serde_json::to_value(parley_server::openapi::document()).unwrap();
    let cookie_b = w.b.login(&base, 0).await.unwrap();
    let agent_b = Api::new(&base).cookie(&cookie_b);
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            if op["security"][0].get("agent_session").is_none() || method != "get" {
                continue;
            }
            if path.contains('{') {
                // Something of A's by its id: as if it did not exist.
                let p = w.path_with_a_ids(path);
                let r = agent_b.get(&p).await.unwrap();
                assert_eq!((r.status.as_u16(), r.code()), (404, "not_found"), "GET {p}: {}", r.body);
                continue;
            }
            let r = agent_b.get(path).await.unwrap();
            assert!(r.status.is_success(), "{path}");
            for id in a_ids(&w) {
                assert!(!r.body.to_string().contains(&id), "GET {path} leaked {id}");
            }
        }
    }
    // Tenant A's chat is not offered to B's agent, who cannot act on it either.
    let mut ws = Ws::connect(&format!("{ws_base}/ws/v1/agent"), Some(&cookie_b)).await.unwrap();
    let hello = ws.next().await.unwrap();
    assert_eq!(hello["offers"], json!([]));
    for frame in [
        json!({"type": "accept", "conversation_id": w.a_conv}),
        json!({"type": "send", "conversation_id": w.a_conv, "client_msg_id": "x", "text": "hi"}),
        json!({"type": "end", "conversation_id": w.a_conv}),
    ] {
        ws.send(&frame).await.unwrap();
        let e = ws.until("error", |f| f["type"] == "error").await.unwrap();
        assert!(
            ["offer_not_found", "not_your_chat", "conversation_ended"].contains(&e["code"].as_str().unwrap()),
            "{e}"
        );
    }
    // The same over REST: every agent action naming A's chat or service is refused.
    for action in ["offers/{id}/accept", "offers/{id}/decline", "chats/{id}/end"] {
        let path = format!("/api/v1/agent/{}", action.replace("{id}", &w.a_conv));
        let r = agent_b.post(&path, &json!({})).await.unwrap();
        assert_eq!(r.status, 409, "{path}: {}", r.body);
    }
    let wrap = format!("/api/v1/agent/chats/{}/wrap-up", w.a_conv);
    let r = agent_b.send("PUT", &wrap, &json!({"tags": ["B was here"]})).await.unwrap();
    assert_eq!((r.status.as_u16(), r.code()), (404, "not_found"), "{}", r.body);
    let up = format!("/api/v1/agent/chats/{}/attachments?client_msg_id=b-1&name=b.png", w.a_conv);
    let r = agent_b.raw("POST", &up, Some("image/png"), Some(PNG_1X1.to_vec())).await.unwrap();
    assert_eq!((r.status.as_u16(), r.code()), (404, "not_found"), "{}", r.body);
    let r = agent_b
        .send("PUT", &format!("/api/v1/agent/services/{}/active", w.a.service_id), &json!({"active": false}))
        .await
        .unwrap();
    assert_eq!((r.status.as_u16(), r.code()), (404, "not_found"));
    let log = w.a.admin.get(&format!("/api/v1/conversations/{}/log", w.a_conv)).await.unwrap();
    assert!(log.body["entries"].as_array().unwrap().iter().all(|e| e["sender"]["role"] != "agent"));
    assert_ne!(w.a.admin.get(&format!("/api/v1/conversations/{}", w.a_conv)).await.unwrap().body["status"], "ended");
}

#[tokio::test]
async fn a_visitor_token_never_opens_another_conversation() {
    let w = world().await;
    let (_, token_b) = w.b.start_chat(&w.server.base, "Bob", None).await.unwrap();
    let r = Api::new(&w.server.base)
        .bearer(&token_b)
        .get(&format!("/api/v1/widget/conversations/{}/log", w.a_conv))
        .await
        .unwrap();
    assert_eq!(r.status, 403);
    let visitor_b = Api::new(&w.server.base).bearer(&token_b);
    let r = visitor_b.get(&format!("/api/v1/widget/conversations/{}/attachments/{}", w.a_conv, w.a_attachment)).await;
    assert_eq!(r.unwrap().status, 403);
    let up = format!("/api/v1/widget/conversations/{}/attachments?client_msg_id=b-1&name=b.png", w.a_conv);
    let r = visitor_b.raw("POST", &up, Some("image/png"), Some(PNG_1X1.to_vec())).await.unwrap();
    assert_eq!(r.status, 403);
    let widget_a_with_b_key = json!({"contact_id": w.a.contact_id, "widget_key": w.b.widget_key, "display_name": "x",
                                     "email": "x@y.co", "privacy_consent": true});
    let r = Api::new(&w.server.base).post("/api/v1/widget/conversations", &widget_a_with_b_key).await.unwrap();
    assert_eq!(r.code(), "unknown_widget");
}
