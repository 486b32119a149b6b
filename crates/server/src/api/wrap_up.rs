//! Codes and tags: the tenant's codes (admin), the lists services offer, and the wrap-up an
//! agent gives their chat (its codes and tags) while it is open and for a day after it ended.

use super::found;
use crate::auth::{Agent, TenantAdmin};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use parley_domain::{
    Code, CodeId, Conversation, ConversationId, ConversationStatus, NewCode, ServiceCodes, TenantId, ValidationErrors,
    WrapUp, WrapUpInput,
};
use parley_store::StoreError;
use serde::Serialize;
use std::collections::HashMap;
use utoipa::ToSchema;
use uuid::Uuid;

/// How long after its end an agent may still change a chat's wrap-up: long enough for
/// after-chat work and a late thought, short enough that reports settle.
pub const WRAP_UP_WINDOW: time::Duration = time::Duration::hours(24);

fn name_taken(name: &str) -> impl FnOnce(StoreError) -> ApiError + '_ {
    move |e| match e {
        StoreError::Conflict(_) => ApiError::conflict("code_exists", format!("a code named '{name}' exists")),
        other => other.into(),
    }
}

/// Creates a code.
#[utoipa::path(post, path = "/api/v1/codes", tag = "tenant", security(("api_key" = [])), request_body = NewCode,
    responses((status = 201, body = Code), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_code(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<NewCode>,
) -> ApiResult<(StatusCode, Json<Code>)> {
    let input = input.validate()?;
    let ou_id = super::ou_or_root(&state, admin.tenant_id, input.ou_id, "/ou_id").await?;
    let code = Code {
        id: CodeId::from_uuid(Uuid::now_v7()),
        tenant_id: admin.tenant_id,
        ou_id,
        name: input.name,
        description: input.description,
        created_at: state.clock.now(),
    };
    state.store.create_code(&code).await.map_err(name_taken(&code.name))?;
    Ok((StatusCode::CREATED, Json(code)))
}

/// The tenant's codes, by name.
#[utoipa::path(get, path = "/api/v1/codes", tag = "tenant", security(("api_key" = [])),
    responses((status = 200, body = Vec<Code>), (status = 401, body = Problem)))]
pub async fn list_codes(admin: TenantAdmin, State(state): State<AppState>) -> ApiResult<Json<Vec<Code>>> {
    Ok(Json(state.store.list_codes(admin.tenant_id).await?))
}

/// One code.
#[utoipa::path(get, path = "/api/v1/codes/{id}", tag = "tenant", security(("api_key" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = Code), (status = 404, body = Problem)))]
pub async fn get_code(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Code>> {
    found(state.store.get_code(admin.tenant_id, CodeId::from_uuid(id)).await, "code").map(Json)
}

/// Renames or re-describes a code; chats that carry it show the new name.
#[utoipa::path(put, path = "/api/v1/codes/{id}", tag = "tenant", security(("api_key" = [])),
    params(("id" = Uuid, Path)), request_body = NewCode,
    responses((status = 200, body = Code), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
pub async fn put_code(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<NewCode>,
) -> ApiResult<Json<Code>> {
    let mut code = found(state.store.get_code(admin.tenant_id, CodeId::from_uuid(id)).await, "code")?;
    let input = input.validate()?;
    code.name = input.name;
    code.description = input.description;
    state.store.update_code(&code).await.map_err(name_taken(&code.name))?;
    Ok(Json(code))
}

/// Deletes a code no service lists (409 `code_in_use` otherwise). Chats that carry it keep its
/// id in their wrap-up.
#[utoipa::path(delete, path = "/api/v1/codes/{id}", tag = "tenant", security(("api_key" = [])),
    params(("id" = Uuid, Path)), responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn delete_code(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    let tenant = admin.tenant_id;
    let id = CodeId::from_uuid(id);
    found(state.store.get_code(tenant, id).await, "code")?;
    let services = state.store.list_services(tenant).await?;
    if let Some(s) = services.iter().find(|s| s.codes.contains(id)) {
        return Err(ApiError::conflict("code_in_use", format!("service '{}' lists this code", s.name)));
    }
    found(state.store.delete_code(tenant, id).await, "code")?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every code a service lists must be one of the tenant's.
///
/// # Errors
/// `unknown_reference` at `{path}/{list}/{i}`.
pub async fn check_service_codes(
    state: &AppState,
    tenant: TenantId,
    codes: &ServiceCodes,
    path: &str,
) -> ApiResult<()> {
    if codes.all().next().is_none() {
        return Ok(());
    }
    let known: Vec<CodeId> = state.store.list_codes(tenant).await?.into_iter().map(|c| c.id).collect();
    let mut e = ValidationErrors::default();
    for (list, ids) in [("primary", &codes.primary), ("secondary", &codes.secondary)] {
        for (i, id) in ids.iter().enumerate() {
            if !known.contains(id) {
                e.push(format!("{path}/{list}/{i}"), "unknown_reference", "no such code");
            }
        }
    }
    Ok(e.into_result(())?)
}

/// The codes an agent may choose for a chat, and what they chose so far.
#[derive(Debug, Serialize, ToSchema)]
pub struct WrapUpView {
    /// The service's primary codes (for a direct chat: every code of the tenant).
    pub primary: Vec<Code>,
    pub secondary: Vec<Code>,
    /// Codes the chat carries that its service no longer offers (taken off its lists, or the
    /// chat moved on): they stay until the agent removes them.
    pub retired: Vec<Code>,
    /// `null` until the agent sets one.
    pub wrap_up: Option<WrapUp>,
    /// Until when it may be changed (`null` while the chat is open).
    #[serde(with = "time::serde::rfc3339::option")]
    pub editable_until: Option<time::OffsetDateTime>,
}

/// The agent's own chat (open or ended), or 404 as for a chat that does not exist.
async fn own_chat(state: &AppState, agent: Agent, id: Uuid) -> ApiResult<Conversation> {
    let c = found(state.store.get_conversation(agent.tenant_id, ConversationId::from_uuid(id)).await, "chat")?;
    let held = c.agent_id == Some(agent.user_id)
        && matches!(c.status, ConversationStatus::Connected | ConversationStatus::Ended);
    if held { Ok(c) } else { Err(ApiError::not_found("chat")) }
}

/// The codes of a chat: those on offer (its service's lists, or every code for a direct chat)
/// and those it carries that are no longer offered.
struct Choice {
    primary: Vec<Code>,
    secondary: Vec<Code>,
    retired: Vec<Code>,
}

impl Choice {
    fn offers(&self, id: CodeId) -> bool {
        self.primary.iter().chain(&self.secondary).any(|o| o.id == id)
    }
}

async fn choice(state: &AppState, c: &Conversation) -> ApiResult<Choice> {
    let all = state.store.list_codes(c.tenant_id).await?;
    let chosen = c.wrap_up.as_ref().map(|w| w.codes.as_slice()).unwrap_or_default();
    let lists = match c.service_id {
        None => ServiceCodes { primary: all.iter().map(|code| code.id).collect(), secondary: Vec::new() },
        Some(service) => match state.store.get_service(c.tenant_id, service).await {
            Ok(s) => s.codes,
            Err(StoreError::NotFound) => ServiceCodes::default(),
            Err(e) => return Err(e.into()),
        },
    };
    let by_id: HashMap<CodeId, &Code> = all.iter().map(|code| (code.id, code)).collect();
    let pick = |ids: &[CodeId]| ids.iter().filter_map(|id| by_id.get(id).map(|&code| code.clone())).collect();
    let retired = all.iter().filter(|code| chosen.contains(&code.id) && !lists.contains(code.id)).cloned().collect();
    Ok(Choice { primary: pick(&lists.primary), secondary: pick(&lists.secondary), retired })
}

fn editable_until(c: &Conversation) -> Option<time::OffsetDateTime> {
    c.ended_at.map(|end| end + WRAP_UP_WINDOW)
}

/// The codes the agent may choose for their chat and the wrap-up so far.
#[utoipa::path(get, path = "/api/v1/agent/chats/{id}/wrap-up", tag = "agent", security(("agent_session" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = WrapUpView), (status = 404, body = Problem)))]
pub async fn get_wrap_up(
    agent: Agent,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<WrapUpView>> {
    let c = own_chat(&state, agent, id).await?;
    let Choice { primary, secondary, retired } = choice(&state, &c).await?;
    Ok(Json(WrapUpView { primary, secondary, retired, editable_until: editable_until(&c), wrap_up: c.wrap_up }))
}

/// Sets the codes and tags of the agent's chat as a whole (while open, and for a day after).
#[utoipa::path(put, path = "/api/v1/agent/chats/{id}/wrap-up", tag = "agent", security(("agent_session" = [])),
    params(("id" = Uuid, Path)), request_body = WrapUpInput,
    responses((status = 200, body = WrapUp), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
pub async fn put_wrap_up(
    agent: Agent,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<WrapUpInput>,
) -> ApiResult<Json<WrapUp>> {
    let c = own_chat(&state, agent, id).await?;
    // Field paths name the codes as sent (before repeats are dropped).
    let sent = input.codes.clone();
    let input = input.validate()?;
    let now = state.clock.now();
    if editable_until(&c).is_some_and(|until| now > until) {
        return Err(ApiError::conflict(
            "wrap_up_closed",
            "a chat's codes and tags can be changed for a day after it ended",
        ));
    }
    let choice = choice(&state, &c).await?;
    // A code the chat already carries may stay, even once its service stopped offering it.
    let kept = c.wrap_up.as_ref().map(|w| w.codes.as_slice()).unwrap_or_default();
    let mut e = ValidationErrors::default();
    for (i, code) in sent.iter().enumerate() {
        if !choice.offers(*code) && !kept.contains(code) {
            e.push(format!("/codes/{i}"), "code_not_offered", "this chat's service does not offer this code");
        }
    }
    e.into_result(())?;
    let wrap_up = WrapUp { codes: input.codes, tags: input.tags, user_id: agent.user_id, updated_at: now };
    found(state.store.set_wrap_up(agent.tenant_id, c.id, &wrap_up).await, "chat")?;
    Ok(Json(wrap_up))
}
