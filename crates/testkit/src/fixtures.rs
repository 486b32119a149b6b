//! A standard tenant built through the public API, as an administrator would: an organization
//! unit, the built-in workflow, a service and two agents who can sign in.

use crate::client::{Api, Ws};
use crate::server::ADMIN_TOKEN;
use anyhow::{Context, ensure};
use serde_json::{Value, json};

/// An agent of a fixture tenant.
#[derive(Debug, Clone)]
pub struct AgentLogin {
    pub id: String,
    pub name: String,
    pub email: String,
    pub password: String,
}

/// What a fixture tenant consists of.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub slug: String,
    pub id: String,
    /// Client authenticated with the tenant admin API key.
    pub admin: Api,
    pub api_key: String,
    pub service_id: String,
    pub contact_id: String,
    pub widget_key: String,
    pub workflow_id: String,
    pub agents: Vec<AgentLogin>,
}

/// The built-in workflow's welcome text used by fixtures.
pub const WELCOME: &str = "Welcome! An agent will be with you shortly.";

/// Creates a tenant `slug` on the server at `base` with `agents` agents (named Agent 1, …).
///
/// # Errors
/// Any API call that does not answer as expected.
pub async fn tenant(base: &str, slug: &str, agents: usize) -> anyhow::Result<Tenant> {
    staffed_tenant(base, slug, agents, 2).await
}

/// [`tenant`] whose agents each take up to `max_chats` chats at once.
///
/// # Errors
/// Any API call that does not answer as expected.
pub async fn staffed_tenant(base: &str, slug: &str, agents: usize, max_chats: u32) -> anyhow::Result<Tenant> {
    let platform = Api::new(base).bearer(ADMIN_TOKEN);
    let r = platform.post("/api/v1/tenants", &json!({"slug": slug, "name": format!("Tenant {slug}")})).await?;
    ensure!(r.status == 201, "create tenant: {} {}", r.status, r.body);
    let api_key = r.body["admin_api_key"].as_str().context("key")?.to_owned();
    let id = r.body["tenant"]["id"].as_str().context("id")?.to_owned();
    let admin = Api::new(base).bearer(&api_key);
    let ou = admin.post("/api/v1/org-units", &json!({"name": "Support team"})).await?;
    ensure!(ou.status == 201, "create ou: {}", ou.body);
    let ou_id = ou.body["id"].clone();
    let mut logins = Vec::new();
    for n in 1..=agents {
        let email = format!("agent{n}@{slug}.example");
        let password = format!("password-{slug}-{n}");
        let name = format!("Agent {n}");
        let u = admin
            .post(
                "/api/v1/users",
                &json!({"ou_id": ou_id, "display_name": name, "email": email, "password": password,
                        "licences": ["contact_center", "instant_messaging", "interact"], "max_chats": max_chats}),
            )
            .await?;
        ensure!(u.status == 201, "create user: {}", u.body);
        logins.push(AgentLogin { id: u.body["id"].as_str().context("id")?.to_owned(), name, email, password });
    }
    let wf = admin
        .post(
            "/api/v1/workflows",
            &json!({"ou_id": ou_id, "name": "Support chat", "kind": "instant_messaging", "publish": true, "definition": {
            "start": "accept",
            "nodes": [
                {"id": "accept", "activity": {"kind": "accept"}, "exits": {"next": "welcome"}},
                {"id": "welcome", "activity": {"kind": "message", "text": WELCOME}, "exits": {"next": "queue"}},
                {"id": "queue", "activity": {"kind": "queue_task"}}
            ]}}),
        )
        .await?;
    ensure!(wf.status == 201, "create workflow: {}", wf.body);
    let workflow_id = wf.body["id"].as_str().context("id")?.to_owned();
    let members: Vec<Value> = logins.iter().map(|a| json!({"user_id": a.id})).collect();
    let s = admin
        .post(
            "/api/v1/services",
            &json!({"ou_id": ou_id, "name": "Support", "workflow_id": workflow_id, "members": members}),
        )
        .await?;
    ensure!(s.status == 201, "create service: {}", s.body);
    Ok(Tenant {
        slug: slug.to_owned(),
        id,
        admin,
        api_key,
        service_id: s.body["id"].as_str().context("id")?.to_owned(),
        contact_id: s.body["contact_id"].as_str().context("contact")?.to_owned(),
        widget_key: s.body["widget_key"].as_str().context("key")?.to_owned(),
        workflow_id,
        agents: logins,
    })
}

impl Tenant {
    /// The same tenant, reached on a server at another address (after a restart).
    #[must_use]
    pub fn on(&self, base: &str) -> Self {
        Self { admin: Api::new(base).bearer(&self.api_key), ..self.clone() }
    }

    /// Signs an agent in; returns the `Cookie` header value.
    ///
    /// # Errors
    /// If the sign-in fails.
    pub async fn login(&self, base: &str, agent: usize) -> anyhow::Result<String> {
        let a = &self.agents[agent];
        let r = Api::new(base)
            .post("/api/v1/agent/login", &json!({"tenant": self.slug, "email": a.email, "password": a.password}))
            .await?;
        ensure!(r.status == 200, "login: {} {}", r.status, r.body);
        let set = r.set_cookie.context("no cookie")?;
        Ok(set.split(';').next().unwrap_or_default().to_owned())
    }

    /// Signs an agent in, opens the workspace socket, reads `hello` and sets presence available.
    ///
    /// # Errors
    /// Sign-in or socket failures.
    pub async fn agent_online(&self, base: &str, ws_base: &str, agent: usize) -> anyhow::Result<(Ws, Value)> {
        let cookie = self.login(base, agent).await?;
        let mut ws = Ws::connect(&format!("{ws_base}/ws/v1/agent"), Some(&cookie)).await?;
        let hello = ws.until("hello", |f| f["type"] == "hello").await?;
        ws.send(&json!({"type": "presence", "presence": "available"})).await?;
        ws.until("presence echo", |f| f["type"] == "presence" && f["presence"] == "available").await?;
        Ok((ws, hello))
    }

    /// Publishes a workflow with `definition` and makes the tenant's service run it; returns the
    /// workflow's id.
    ///
    /// # Errors
    /// If the workflow is refused or the service cannot take it.
    pub async fn use_workflow(&self, name: &str, definition: &Value) -> anyhow::Result<String> {
        let body = json!({"name": name, "kind": "instant_messaging", "definition": definition, "publish": true});
        let wf = self.admin.post("/api/v1/workflows", &body).await?;
        ensure!(wf.status == 201, "create workflow: {}", wf.body);
        let id = wf.body["id"].as_str().context("id")?.to_owned();
        let patch = json!({"workflow_id": id});
        let r = self.admin.send("PATCH", &format!("/api/v1/services/{}", self.service_id), &patch).await?;
        ensure!(r.status == 200, "switch the service's workflow: {}", r.body);
        Ok(id)
    }

    /// The pre-chat form for this tenant's service.
    #[must_use]
    pub fn form(&self, name: &str, first_message: Option<&str>) -> Value {
        let mut v = json!({"contact_id": self.contact_id, "widget_key": self.widget_key, "display_name": name,
                           "email": "visitor@example.com", "privacy_consent": true});
        if let Some(m) = first_message {
            v["first_message"] = json!(m);
        }
        v
    }

    /// Starts a conversation through the widget API; returns `(conversation_id, visitor_token)`.
    ///
    /// # Errors
    /// If the start is refused.
    /// Another service of this tenant, running the same workflow with every agent a member;
    /// the returned tenant starts chats on it. For loads beyond one service's task cap.
    ///
    /// # Errors
    /// If the service is refused.
    pub async fn another_service(&self, name: &str) -> anyhow::Result<Self> {
        let first = self.admin.get(&format!("/api/v1/services/{}", self.service_id)).await?;
        ensure!(first.status == 200, "read service: {}", first.body);
        let members: Vec<Value> = self.agents.iter().map(|a| json!({"user_id": a.id})).collect();
        let body =
            json!({"ou_id": first.body["ou_id"], "name": name, "workflow_id": self.workflow_id, "members": members});
        let s = self.admin.post("/api/v1/services", &body).await?;
        ensure!(s.status == 201, "create service: {}", s.body);
        Ok(Self {
            service_id: s.body["id"].as_str().context("id")?.to_owned(),
            contact_id: s.body["contact_id"].as_str().context("contact")?.to_owned(),
            widget_key: s.body["widget_key"].as_str().context("key")?.to_owned(),
            ..self.clone()
        })
    }

    pub async fn start_chat(
        &self,
        base: &str,
        name: &str,
        first_message: Option<&str>,
    ) -> anyhow::Result<(String, String)> {
        let r = Api::new(base).post("/api/v1/widget/conversations", &self.form(name, first_message)).await?;
        ensure!(r.status == 201, "start chat: {} {}", r.status, r.body);
        Ok((
            r.body["conversation_id"].as_str().context("id")?.to_owned(),
            r.body["visitor_token"].as_str().context("token")?.to_owned(),
        ))
    }
}

/// Opens the visitor socket for a token from `since_seq`.
///
/// # Errors
/// Connection failures.
pub async fn visitor(ws_base: &str, token: &str, since_seq: i64) -> anyhow::Result<Ws> {
    Ws::connect(&format!("{ws_base}/ws/v1/visitor?token={token}&since_seq={since_seq}"), None).await
}
