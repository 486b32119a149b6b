//! The tenant admin's configuration API: organization units, users, services and
//! their members, API keys, the widget snippet, and read access to conversations.
//! Every handler starts from [`TenantAdmin`], so every store call carries the caller's tenant.

use super::{found, ou_or_root, referenced};
use crate::auth::{TenantAdmin, mint_api_key, random_hex};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use crate::tenant_engine::Command;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use parley_domain::validate::required_text;
use parley_domain::{
    CalendarId, Conversation, ConversationId, LogEntry, MAX_NAME_CHARS, Membership, NewOrgUnit, NewService, NewUser,
    OrgUnit, OrgUnitId, Presence, Service, ServiceId, ServicePatch, Tenant, TenantId, User, UserId, ValidationErrors,
    WorkflowId,
};
use parley_store::StoreError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The caller's tenant.
#[utoipa::path(get, path = "/api/v1/tenant", tag = "tenant", security(("api_key" = [])),
    responses((status = 200, body = Tenant), (status = 401, body = Problem)))]
pub async fn get_tenant(admin: TenantAdmin, State(state): State<AppState>) -> ApiResult<Json<Tenant>> {
    Ok(Json(state.store.get_tenant(admin.tenant_id).await?))
}

/// Input of `POST /api/v1/api-keys`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    pub name: String,
}

/// A new API key, shown once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedApiKey {
    pub id: Uuid,
    pub name: String,
    pub api_key: String,
}

/// Creates another admin API key for the tenant.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "tenant", security(("api_key" = [])), request_body = NewApiKey,
    responses((status = 201, body = CreatedApiKey), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn create_api_key(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<NewApiKey>,
) -> ApiResult<(StatusCode, Json<CreatedApiKey>)> {
    let mut e = ValidationErrors::default();
    let name = required_text(&mut e, "/name", &input.name, MAX_NAME_CHARS);
    e.into_result(())?;
    let (record, api_key) = mint_api_key(admin.tenant_id, &name, state.clock.now());
    state.store.create_api_key(&record).await?;
    Ok((StatusCode::CREATED, Json(CreatedApiKey { id: record.id.0, name, api_key })))
}

/// Creates an organization unit under a parent (the root when absent).
#[utoipa::path(post, path = "/api/v1/org-units", tag = "tenant", security(("api_key" = [])), request_body = NewOrgUnit,
    responses((status = 201, body = OrgUnit), (status = 400, body = Problem), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn create_org_unit(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<NewOrgUnit>,
) -> ApiResult<(StatusCode, Json<OrgUnit>)> {
    let input = input.validate()?;
    let parent = ou_or_root(&state, admin.tenant_id, input.parent_id, "/parent_id").await?;
    let ou = OrgUnit {
        id: OrgUnitId::from_uuid(Uuid::now_v7()),
        tenant_id: admin.tenant_id,
        name: input.name,
        parent_id: Some(parent),
    };
    state.store.create_org_unit(&ou).await?;
    Ok((StatusCode::CREATED, Json(ou)))
}

/// Lists the tenant's organization units, root first.
#[utoipa::path(get, path = "/api/v1/org-units", tag = "tenant", security(("api_key" = [])),
    responses((status = 200, body = Vec<OrgUnit>), (status = 401, body = Problem)))]
pub async fn list_org_units(admin: TenantAdmin, State(state): State<AppState>) -> ApiResult<Json<Vec<OrgUnit>>> {
    Ok(Json(state.store.list_org_units(admin.tenant_id).await?))
}

/// One organization unit.
#[utoipa::path(get, path = "/api/v1/org-units/{id}", tag = "tenant", security(("api_key" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = OrgUnit), (status = 404, body = Problem)))]
pub async fn get_org_unit(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<OrgUnit>> {
    found(state.store.get_org_unit(admin.tenant_id, OrgUnitId::from_uuid(id)).await, "organization unit").map(Json)
}

/// Creates a user (an agent when licensed for instant messaging).
#[utoipa::path(post, path = "/api/v1/users", tag = "tenant", security(("api_key" = [])), request_body = NewUser,
    responses((status = 201, body = User), (status = 400, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_user(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<NewUser>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let input = input.validate()?;
    let user = create_user_in(&state, admin.tenant_id, input).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Creates a user (shared with `parley demo`).
///
/// # Errors
/// Unknown organization unit, taken e-mail, store failures.
pub async fn create_user_in(state: &AppState, tenant: parley_domain::TenantId, input: NewUser) -> ApiResult<User> {
    let ou_id = ou_or_root(state, tenant, input.ou_id, "/ou_id").await?;
    let password_hash = match input.password.clone() {
        Some(p) => Some(state.passwords.hash(p).await?),
        None => None,
    };
    let user = User {
        id: UserId::from_uuid(Uuid::now_v7()),
        tenant_id: tenant,
        ou_id,
        display_name: input.display_name,
        email: input.email,
        licences: input.licences,
        im_enabled: input.im_enabled,
        max_chats: input.max_chats,
        presence: Presence::Offline,
        direct: parley_domain::DirectChat::new(Uuid::new_v4().simple().to_string(), random_hex(16)),
        created_at: state.clock.now(),
    };
    match state.store.create_user(&user, password_hash.as_deref()).await {
        Ok(()) => {}
        Err(StoreError::Conflict("user_email")) => {
            return Err(ApiError::conflict("email_taken", "a user with this e-mail exists in the tenant"));
        }
        Err(e) => return Err(e.into()),
    }
    let _ = state.engines.send(tenant, Command::Refresh).await;
    Ok(user)
}

/// Lists the tenant's users.
#[utoipa::path(get, path = "/api/v1/users", tag = "tenant", security(("api_key" = [])),
    responses((status = 200, body = Vec<User>), (status = 401, body = Problem)))]
pub async fn list_users(admin: TenantAdmin, State(state): State<AppState>) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(state.store.list_users(admin.tenant_id).await?))
}

/// One user.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "tenant", security(("api_key" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = User), (status = 404, body = Problem)))]
pub async fn get_user(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<User>> {
    found(state.store.get_user(admin.tenant_id, UserId::from_uuid(id)).await, "user").map(Json)
}

/// Creates a service with its workflow and members; mints its snippet credentials.
#[utoipa::path(post, path = "/api/v1/services", tag = "tenant", security(("api_key" = [])), request_body = NewService,
    responses((status = 201, body = Service), (status = 400, body = Problem), (status = 422, body = Problem)))]
pub async fn create_service(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<NewService>,
) -> ApiResult<(StatusCode, Json<Service>)> {
    let input = input.validate()?;
    let service = create_service_in(&state, admin.tenant_id, input).await?;
    Ok((StatusCode::CREATED, Json(service)))
}

/// Creates a service (shared with `parley demo`).
///
/// # Errors
/// Unknown references (organization unit, workflow, member users), store failures.
pub async fn create_service_in(
    state: &AppState,
    tenant: parley_domain::TenantId,
    input: NewService,
) -> ApiResult<Service> {
    let ou_id = ou_or_root(state, tenant, input.ou_id, "/ou_id").await?;
    check_service_refs(state, tenant, input.workflow_id, input.primary_calendar_id, input.secondary_calendar_id)
        .await?;
    check_policy_skills(state, tenant, &input.routing).await?;
    super::access::check_access_refs(state, tenant, &input.access).await?;
    let scope = parley_domain::MessageScope::Service;
    super::system_messages::check_link(state, tenant, input.system_messages_id, scope, "/system_messages_id").await?;
    super::wrap_up::check_service_codes(state, tenant, &input.codes, "/codes").await?;
    let service_id = ServiceId::from_uuid(Uuid::now_v7());
    let mut members = Vec::with_capacity(input.members.len());
    for (i, m) in input.members.iter().enumerate() {
        referenced(state.store.get_user(tenant, m.user_id).await, &format!("/members/{i}/user_id"), "user")?;
        members.push(Membership { service_id, user_id: m.user_id, active: m.active });
    }
    let service = Service {
        id: service_id,
        tenant_id: tenant,
        ou_id,
        name: input.name,
        workflow_id: input.workflow_id,
        contact_id: Uuid::new_v4().simple().to_string(),
        widget_key: random_hex(16),
        primary_calendar_id: input.primary_calendar_id,
        secondary_calendar_id: input.secondary_calendar_id,
        routing: input.routing,
        access: input.access,
        system_messages_id: input.system_messages_id,
        codes: input.codes,
        created_at: state.clock.now(),
    };
    state.store.create_service(&service, &members).await?;
    let _ = state.engines.send(tenant, Command::Refresh).await;
    Ok(service)
}

/// A service may only select a published workflow and the tenant's own calendars.
async fn check_service_refs(
    state: &AppState,
    tenant: TenantId,
    workflow: WorkflowId,
    primary: Option<CalendarId>,
    secondary: Option<CalendarId>,
) -> ApiResult<()> {
    let wf = referenced(state.store.get_workflow(tenant, workflow).await, "/workflow_id", "workflow")?;
    if wf.current_version.is_none() {
        return Err(ValidationErrors::single(
            "/workflow_id",
            "workflow_not_published",
            "the workflow has no published version; publish it first",
        )
        .into());
    }
    for (path, c) in [("/primary_calendar_id", primary), ("/secondary_calendar_id", secondary)] {
        if let Some(c) = c {
            referenced(state.store.get_calendar(tenant, c).await, path, "calendar")?;
        }
    }
    Ok(())
}

/// Every skill a distribution policy asks for must be the tenant's.
async fn check_policy_skills(
    state: &AppState,
    tenant: TenantId,
    routing: &parley_domain::RoutingSettings,
) -> ApiResult<()> {
    if routing.policy.is_empty() {
        return Ok(());
    }
    let known: std::collections::HashSet<_> =
        state.store.list_skills(tenant).await?.into_iter().map(|s| s.id).collect();
    for (i, level) in routing.policy.iter().enumerate() {
        for (k, r) in level.requires.iter().enumerate() {
            if !known.contains(&r.skill_id) {
                return Err(ApiError::unknown_reference(format!("/routing/policy/{i}/requires/{k}/skill_id"), "skill"));
            }
        }
    }
    Ok(())
}

/// Changes a service's name, workflow or calendars; new conversations follow at once,
/// running ones keep what they started with.
#[utoipa::path(patch, path = "/api/v1/services/{id}", tag = "tenant", security(("api_key" = [])),
    params(("id" = Uuid, Path)), request_body = ServicePatch,
    responses((status = 200, body = Service), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn patch_service(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(patch): ApiJson<ServicePatch>,
) -> ApiResult<Json<Service>> {
    let tenant = admin.tenant_id;
    let service = found(state.store.get_service(tenant, ServiceId::from_uuid(id)).await, "service")?;
    let service = patch.apply(service)?;
    check_service_refs(&state, tenant, service.workflow_id, service.primary_calendar_id, service.secondary_calendar_id)
        .await?;
    check_policy_skills(&state, tenant, &service.routing).await?;
    super::access::check_access_refs(&state, tenant, &service.access).await?;
    let scope = parley_domain::MessageScope::Service;
    super::system_messages::check_link(&state, tenant, service.system_messages_id, scope, "/system_messages_id")
        .await?;
    super::wrap_up::check_service_codes(&state, tenant, &service.codes, "/codes").await?;
    state.store.update_service(&service).await?;
    let _ = state.engines.send(tenant, Command::Refresh).await;
    Ok(Json(service))
}

/// Lists the tenant's services.
#[utoipa::path(get, path = "/api/v1/services", tag = "tenant", security(("api_key" = [])),
    responses((status = 200, body = Vec<Service>), (status = 401, body = Problem)))]
pub async fn list_services(admin: TenantAdmin, State(state): State<AppState>) -> ApiResult<Json<Vec<Service>>> {
    Ok(Json(state.store.list_services(admin.tenant_id).await?))
}

/// One service.
#[utoipa::path(get, path = "/api/v1/services/{id}", tag = "tenant", security(("api_key" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = Service), (status = 404, body = Problem)))]
pub async fn get_service(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Service>> {
    found(state.store.get_service(admin.tenant_id, ServiceId::from_uuid(id)).await, "service").map(Json)
}

/// The members of a service.
#[utoipa::path(get, path = "/api/v1/services/{id}/members", tag = "tenant", security(("api_key" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = Vec<Membership>), (status = 404, body = Problem)))]
pub async fn list_members(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Vec<Membership>>> {
    let service = ServiceId::from_uuid(id);
    found(state.store.get_service(admin.tenant_id, service).await, "service")?;
    let all = state.store.list_memberships(admin.tenant_id).await?;
    Ok(Json(all.into_iter().filter(|m| m.service_id == service).collect()))
}

/// Body of `PUT /api/v1/services/{id}/members/{user_id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberUpdate {
    /// Whether the member receives the service's chats.
    pub active: bool,
}

/// Adds a member or sets their Active flag.
#[utoipa::path(put, path = "/api/v1/services/{id}/members/{user_id}", tag = "tenant", security(("api_key" = [])),
    params(("id" = Uuid, Path), ("user_id" = Uuid, Path)), request_body = MemberUpdate,
    responses((status = 200, body = Membership), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn put_member(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath((id, user)): ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<MemberUpdate>,
) -> ApiResult<Json<Membership>> {
    let service = ServiceId::from_uuid(id);
    found(state.store.get_service(admin.tenant_id, service).await, "service")?;
    let user = UserId::from_uuid(user);
    found(state.store.get_user(admin.tenant_id, user).await, "user")?;
    let m = Membership { service_id: service, user_id: user, active: body.active };
    state.store.set_membership(admin.tenant_id, &m).await?;
    let _ = state.engines.send(admin.tenant_id, Command::Refresh).await;
    Ok(Json(m))
}

/// Removes a member from a service.
#[utoipa::path(delete, path = "/api/v1/services/{id}/members/{user_id}", tag = "tenant", security(("api_key" = [])),
    params(("id" = Uuid, Path), ("user_id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete_member(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath((id, user)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    found(
        state.store.remove_membership(admin.tenant_id, ServiceId::from_uuid(id), UserId::from_uuid(user)).await,
        "membership",
    )?;
    let _ = state.engines.send(admin.tenant_id, Command::Refresh).await;
    Ok(StatusCode::NO_CONTENT)
}

/// The copy-paste snippet of a service or of a user's personal widget.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Snippet {
    pub contact_id: String,
    pub widget_key: String,
    /// HTML to paste into a website.
    pub html: String,
    /// A page that shows the widget, for trying it out.
    pub preview_url: String,
}

/// Builds the snippet for a service (shared with the preview page and `parley demo`).
#[must_use]
pub fn snippet_for(base: &str, s: &Service) -> Snippet {
    snippet_of(base, &s.contact_id, &s.widget_key)
}

/// Builds the snippet for a pair of widget credentials.
#[must_use]
pub fn snippet_of(base: &str, contact_id: &str, widget_key: &str) -> Snippet {
    Snippet {
        contact_id: contact_id.to_owned(),
        widget_key: widget_key.to_owned(),
        html: format!(
            "<script src=\"{base}/widget.js\" data-contact-id=\"{contact_id}\" data-widget-key=\"{widget_key}\" async></script>"
        ),
        preview_url: format!("{base}/widget/preview?contact_id={contact_id}&widget_key={widget_key}"),
    }
}

/// The widget snippet of a service.
#[utoipa::path(get, path = "/api/v1/services/{id}/snippet", tag = "tenant", security(("api_key" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = Snippet), (status = 404, body = Problem)))]
pub async fn get_snippet(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Snippet>> {
    let s = found(state.store.get_service(admin.tenant_id, ServiceId::from_uuid(id)).await, "service")?;
    Ok(Json(snippet_for(&state.config.public_url, &s)))
}

/// One conversation.
#[utoipa::path(get, path = "/api/v1/conversations/{id}", tag = "tenant", security(("api_key" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = Conversation), (status = 404, body = Problem)))]
pub async fn get_conversation(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Conversation>> {
    found(state.store.get_conversation(admin.tenant_id, ConversationId::from_uuid(id)).await, "conversation").map(Json)
}

/// The conversation's workflow run: state, version, parameters and the nodes it passed with
/// their exits. Live while the conversation is open; the record kept at its end afterwards.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/workflow", tag = "tenant", security(("api_key" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = crate::workflow_host::WorkflowRunView), (status = 404, body = Problem)))]
pub async fn get_conversation_workflow(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<serde_json::Value>> {
    let conversation = ConversationId::from_uuid(id);
    found(state.store.get_conversation(admin.tenant_id, conversation).await, "conversation")?;
    let (reply, answer) = tokio::sync::oneshot::channel();
    state
        .engines
        .send(admin.tenant_id, Command::Workflow { conversation, reply })
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.code(), e.to_string()))?;
    if let Some(live) = answer.await.map_err(|e| ApiError::internal(&e))? {
        return serde_json::to_value(live).map(Json).map_err(|e| ApiError::internal(&e));
    }
    let kept = state.store.get_workflow_run(admin.tenant_id, conversation).await?;
    kept.map(Json).ok_or_else(|| ApiError::not_found("workflow run"))
}

/// One preferred user of a task.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferredUser {
    pub user_id: UserId,
    /// 1 (first) to 99.
    pub priority: u8,
}

/// Body of `PUT /api/v1/conversations/{id}/preferred-users`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferredUsers {
    /// At most ten; an empty list clears them.
    pub users: Vec<PreferredUser>,
}

/// Sets a waiting (or not yet queued) chat's preferred users: they are offered it first, in
/// their priority order, while they can take it; then anyone.
#[utoipa::path(put, path = "/api/v1/conversations/{id}/preferred-users", tag = "tenant", security(("api_key" = [])),
    params(("id" = Uuid, Path)), request_body = PreferredUsers,
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn put_preferred_users(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<PreferredUsers>,
) -> ApiResult<StatusCode> {
    let tenant = admin.tenant_id;
    let conversation = ConversationId::from_uuid(id);
    found(state.store.get_conversation(tenant, conversation).await, "conversation")?;
    let mut e = ValidationErrors::default();
    if body.users.len() > 10 {
        return Err(ValidationErrors::single("/users", "too_many", "at most 10 preferred users").into());
    }
    for (i, u) in body.users.iter().enumerate() {
        if !(1..=99).contains(&u.priority) {
            e.push(format!("/users/{i}/priority"), "out_of_range", "must be 1-99");
        }
        if body.users[..i].iter().any(|o| o.user_id == u.user_id) {
            e.push(format!("/users/{i}/user_id"), "duplicate", "user is listed twice");
        }
    }
    e.into_result(())?;
    for (i, u) in body.users.iter().enumerate() {
        referenced(state.store.get_user(tenant, u.user_id).await, &format!("/users/{i}/user_id"), "user")?;
    }
    let preferred = body.users.iter().map(|u| (u.user_id, u.priority)).collect();
    state.engines.ask(tenant, |reply| Command::SetPreferred { conversation, preferred, reply }).await.map_err(|e| {
        let status = if e == crate::tenant_engine::EngineError::Unavailable {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::CONFLICT
        };
        ApiError::new(status, e.code(), e.to_string())
    })?;
    Ok(StatusCode::NO_CONTENT)
}

/// Query of log reads.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SinceSeq {
    /// Return entries after this `seq` (0 for all).
    #[serde(default)]
    pub since_seq: i64,
}

/// A page of a conversation log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LogPage {
    pub entries: Vec<LogEntry>,
}

/// Most entries returned by one log read.
pub const LOG_PAGE: u32 = 500;

/// A conversation's log.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/log", tag = "tenant", security(("api_key" = [])),
    params(("id" = Uuid, Path), SinceSeq), responses((status = 200, body = LogPage), (status = 404, body = Problem)))]
pub async fn get_conversation_log(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<SinceSeq>,
) -> ApiResult<Json<LogPage>> {
    let id = ConversationId::from_uuid(id);
    found(state.store.get_conversation(admin.tenant_id, id).await, "conversation")?;
    let entries = state.store.read_log(admin.tenant_id, id, q.since_seq.max(0), LOG_PAGE).await?;
    Ok(Json(LogPage { entries }))
}
