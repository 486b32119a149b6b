//! `parley demo`: a ready-to-try tenant with one organization unit, one service with two agents
//! and the built-in workflow. Running it again on the same data folder reuses the tenant and
//! issues a fresh admin key (keys are stored hashed, so the old one cannot be shown).

use crate::api::config::{create_service_in, create_user_in, snippet_for};
use crate::api::parameters::create_parameter_in;
use crate::api::tenants;
use crate::api::workflows::create_workflow_in;
use crate::auth::mint_api_key;
use crate::config::Config;
use crate::error::ApiResult;
use crate::state::AppState;
use parley_domain::{
    Licence, NewMember, NewOrgUnit, NewParameter, NewService, NewTenant, NewUser, NewWorkflow, OrgUnit, OrgUnitId,
    Service, WorkflowDefinition, WorkflowKind,
};
use parley_store::StoreError;
use uuid::Uuid;

/// The demo tenant's slug.
pub const SLUG: &str = "demo";
/// Demo agents: (name, e-mail, password).
pub const AGENTS: [(&str, &str, &str); 2] = [
    ("Ada Lovelace", "ada@demo.parley.test", "parley-demo-ada"),
    ("Grace Hopper", "grace@demo.parley.test", "parley-demo-grace"),
];

/// What the banner prints.
#[derive(Debug)]
pub struct DemoInfo {
    pub service: Service,
    pub admin_api_key: String,
}

impl DemoInfo {
    /// The text printed at start: the URLs to open and how to sign in.
    #[must_use]
    pub fn banner(&self, config: &Config) -> String {
        let base = &config.public_url;
        let snippet = snippet_for(base, &self.service);
        let agents: Vec<String> = AGENTS.iter().map(|(_, e, p)| format!("{e} / {p}")).collect();
        format!(
            "\nParley demo is ready.\n\n  Widget preview:   {}\n  Agent workspace:  {base}/agent/login?tenant={SLUG}\n                    sign in as {}\n  API base:         {base}/api/v1\n                    Authorization: Bearer {}\n  Platform token:   {}\n  OpenAPI:          {base}/api/v1/openapi.json\n  Snippet:          {}\n",
            snippet.preview_url,
            agents.join("  or  "),
            self.admin_api_key,
            config.admin_token.expose(),
            snippet.html,
        )
    }
}

/// Creates the demo tenant if missing and returns its service and a fresh admin key.
///
/// # Errors
/// Store failures.
pub async fn seed(state: &AppState) -> ApiResult<DemoInfo> {
    match state.store.find_tenant_by_slug(SLUG).await {
        Ok(t) => {
            let service = state.store.list_services(t.id).await?.into_iter().next();
            if let Some(service) = service {
                let (key, admin_api_key) = mint_api_key(t.id, "demo key", state.clock.now());
                state.store.create_api_key(&key).await?;
                return Ok(DemoInfo { service, admin_api_key });
            }
            Err(StoreError::Other("the demo tenant exists but has no service; remove the data folder".into()).into())
        }
        Err(StoreError::NotFound) => create(state).await,
        Err(e) => Err(e.into()),
    }
}

/// The demo service's system messages: a greeting on the connection in English and German, a
/// goodbye, and the customer's question on the agent's offer.
async fn demo_texts(
    state: &AppState,
    tenant: parley_domain::TenantId,
    ou: OrgUnitId,
) -> ApiResult<parley_domain::SystemMessagesId> {
    let content: parley_domain::SystemMessagesContent = serde_json::from_value(serde_json::json!({
        "name": "Support texts", "scope": "service", "default_language": "en",
        "texts": [
            {"event": "user.incoming", "text": "$(Customer.DisplayName) is waiting for you."},
            {"event": "customer.connected", "text": "You are now chatting with $(User.FirstName)."},
            {"event": "customer.connected", "language": "de", "text": "Sie chatten jetzt mit $(User.FirstName)."},
            {"event": "customer.ended", "text": "Thank you for chatting with Demo Company!"},
            {"event": "customer.ended", "language": "de", "text": "Danke für Ihren Besuch bei Demo Company!"}
        ]
    }))
    .map_err(|e| crate::error::ApiError::internal(&e))?;
    let item = parley_domain::SystemMessages {
        id: parley_domain::SystemMessagesId::from_uuid(Uuid::now_v7()),
        tenant_id: tenant,
        ou_id: ou,
        content: content.validate(&|_| false)?,
        created_at: state.clock.now(),
    };
    state.store.create_system_messages(&item).await?;
    Ok(item.id)
}

async fn create(state: &AppState) -> ApiResult<DemoInfo> {
    let created =
        tenants::create(state, NewTenant { slug: SLUG.into(), name: "Demo Company".into() }, "demo key").await?;
    let tenant = created.tenant.id;
    let ou_input = NewOrgUnit { name: "Customer Care".into(), parent_id: None }.validate()?;
    let ou = OrgUnit {
        id: OrgUnitId::from_uuid(Uuid::now_v7()),
        tenant_id: tenant,
        name: ou_input.name,
        parent_id: Some(created.tenant.root_ou_id),
    };
    state.store.create_org_unit(&ou).await?;
    let mut members = Vec::new();
    for (name, email, password) in AGENTS {
        let input = NewUser {
            ou_id: Some(ou.id),
            display_name: name.into(),
            email: email.into(),
            password: Some(password.into()),
            licences: vec![Licence::ContactCenter, Licence::InstantMessaging, Licence::Interact],
            im_enabled: true,
            max_chats: 3,
        }
        .validate()?;
        let user = create_user_in(state, tenant, input).await?;
        members.push(NewMember { user_id: user.id, active: true });
    }
    // The recommended template keeps the queue position in a parameter of its own.
    let position = NewParameter {
        id: "QueuePosition".into(),
        ou_id: None,
        name: "Queue position".into(),
        default_value: String::new(),
    }
    .validate()?;
    create_parameter_in(state, tenant, position).await?;
    let wf = NewWorkflow {
        ou_id: Some(ou.id),
        name: "Support chat".into(),
        kind: WorkflowKind::InstantMessaging,
        definition: WorkflowDefinition::recommended(
            "Welcome to Demo Company! An agent will be with you shortly.",
            600,
            60,
        ),
        publish: true,
    }
    .validate()?;
    let workflow = create_workflow_in(state, tenant, wf).await?;
    let service = NewService {
        ou_id: Some(ou.id),
        name: "Support".into(),
        workflow_id: workflow.id,
        primary_calendar_id: None,
        secondary_calendar_id: None,
        // No after-chat work yet: the workspace does not show its timer until issue 5's pages.
        routing: parley_domain::RoutingSettings::default(),
        access: parley_domain::WidgetAccess::default(),
        system_messages_id: Some(demo_texts(state, tenant, ou.id).await?),
        codes: Default::default(),
        members,
    }
    .validate()?;
    let service = create_service_in(state, tenant, service).await?;
    Ok(DemoInfo { service, admin_api_key: created.admin_api_key })
}
