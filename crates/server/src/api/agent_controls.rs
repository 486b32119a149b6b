//! What an agent can do from the workspace, over REST (the agent WebSocket offers the same):
//! presence, the Active flag per service, answering offers, ending chats, after-chat work and
//! the RONA flag. Every call goes to the tenant engine, which decides; the agent is always the
//! signed-in one, so nobody can act for another agent or another tenant.

use crate::auth::Agent;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use crate::tenant_engine::{AgentSnapshot, Command, EngineError};
use crate::ws::protocol::{ChatView, OfferView, RoutingView};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use parley_domain::{ConversationId, EndedBy, Membership, Presence, ServiceId};
use parley_store::StoreError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The engine's refusals as HTTP answers: a state conflict is 409, a missing engine 503.
fn refused(e: EngineError) -> ApiError {
    let status = match e {
        EngineError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::CONFLICT,
    };
    ApiError::new(status, e.code(), e.to_string())
}

/// The agent's workspace state.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WorkspaceState {
    pub presence: Presence,
    #[schema(value_type = Object)]
    pub routing: RoutingView,
    #[schema(value_type = Vec<Object>)]
    pub offers: Vec<OfferView>,
    #[schema(value_type = Vec<Object>)]
    pub chats: Vec<ChatView>,
}

/// Presence, after-chat work, RONA flag, pending offers (with deadlines) and connected chats.
#[utoipa::path(get, path = "/api/v1/agent/state", tag = "agent", security(("agent_session" = [])),
    responses((status = 200, body = WorkspaceState), (status = 401, body = Problem)))]
pub async fn state(agent: Agent, State(state): State<AppState>) -> ApiResult<Json<WorkspaceState>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    state
        .engines
        .send(agent.tenant_id, Command::Snapshot { agent: agent.user_id, reply: tx })
        .await
        .map_err(refused)?;
    let snapshot: AgentSnapshot = rx.await.map_err(|e| ApiError::internal(&e))?;
    let (routing, offers, chats) = crate::ws::protocol::workspace(&snapshot);
    Ok(Json(WorkspaceState { presence: snapshot.presence, routing, offers, chats }))
}

/// Body of `PUT /api/v1/agent/presence`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PresenceUpdate {
    pub presence: Presence,
}

/// Sets the agent's presence (going Offline also clears a RONA flag).
#[utoipa::path(put, path = "/api/v1/agent/presence", tag = "agent", security(("agent_session" = [])),
    request_body = PresenceUpdate, responses((status = 204), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn set_presence(
    agent: Agent,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<PresenceUpdate>,
) -> ApiResult<StatusCode> {
    let cmd = Command::Presence { agent: agent.user_id, presence: body.presence };
    state.engines.send(agent.tenant_id, cmd).await.map_err(refused)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn ask(
    state: &AppState,
    agent: &Agent,
    make: impl FnOnce(crate::tenant_engine::Reply<()>) -> Command,
) -> ApiResult<StatusCode> {
    state.engines.ask(agent.tenant_id, make).await.map_err(refused)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Accepts an offer made to this agent.
#[utoipa::path(post, path = "/api/v1/agent/offers/{id}/accept", tag = "agent", security(("agent_session" = [])),
    params(("id" = Uuid, Path)), responses((status = 204), (status = 401, body = Problem), (status = 409, body = Problem)))]
pub async fn accept(agent: Agent, State(state): State<AppState>, ApiPath(id): ApiPath<Uuid>) -> ApiResult<StatusCode> {
    let (user, conversation) = (agent.user_id, ConversationId::from_uuid(id));
    ask(&state, &agent, |reply| Command::Accept { agent: user, conversation, reply }).await
}

/// Declines an offer made to this agent; it goes to the next agent.
#[utoipa::path(post, path = "/api/v1/agent/offers/{id}/decline", tag = "agent", security(("agent_session" = [])),
    params(("id" = Uuid, Path)), responses((status = 204), (status = 401, body = Problem), (status = 409, body = Problem)))]
pub async fn decline(agent: Agent, State(state): State<AppState>, ApiPath(id): ApiPath<Uuid>) -> ApiResult<StatusCode> {
    let (user, conversation) = (agent.user_id, ConversationId::from_uuid(id));
    ask(&state, &agent, |reply| Command::Decline { agent: user, conversation, reply }).await
}

/// Ends one of this agent's connected chats.
#[utoipa::path(post, path = "/api/v1/agent/chats/{id}/end", tag = "agent", security(("agent_session" = [])),
    params(("id" = Uuid, Path)), responses((status = 204), (status = 401, body = Problem), (status = 409, body = Problem)))]
pub async fn end_chat(
    agent: Agent,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    let (user, conversation) = (agent.user_id, ConversationId::from_uuid(id));
    ask(&state, &agent, |reply| Command::End { conversation, by: EndedBy::Agent, agent: Some(user), reply }).await
}

/// Ends after-chat work early: offers can come again.
#[utoipa::path(post, path = "/api/v1/agent/acw/end", tag = "agent", security(("agent_session" = [])),
    responses((status = 204), (status = 401, body = Problem), (status = 409, body = Problem)))]
pub async fn end_acw(agent: Agent, State(state): State<AppState>) -> ApiResult<StatusCode> {
    let user = agent.user_id;
    ask(&state, &agent, |reply| Command::EndAcw { agent: user, reply }).await
}

/// Takes another after-chat work period (as many times as the service allows).
#[utoipa::path(post, path = "/api/v1/agent/acw/extend", tag = "agent", security(("agent_session" = [])),
    responses((status = 204), (status = 401, body = Problem), (status = 409, body = Problem)))]
pub async fn extend_acw(agent: Agent, State(state): State<AppState>) -> ApiResult<StatusCode> {
    let user = agent.user_id;
    ask(&state, &agent, |reply| Command::ExtendAcw { agent: user, reply }).await
}

/// Clears the agent's RONA flag.
#[utoipa::path(post, path = "/api/v1/agent/rona/reset", tag = "agent", security(("agent_session" = [])),
    responses((status = 204), (status = 401, body = Problem)))]
pub async fn reset_rona(agent: Agent, State(state): State<AppState>) -> ApiResult<StatusCode> {
    state.engines.send(agent.tenant_id, Command::ResetRona { agent: agent.user_id }).await.map_err(refused)?;
    Ok(StatusCode::NO_CONTENT)
}

/// A service the agent belongs to.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MyService {
    pub service_id: ServiceId,
    pub name: String,
    /// Whether the agent receives this service's chats.
    pub active: bool,
}

/// The services the agent is a member of, with their Active flag.
#[utoipa::path(get, path = "/api/v1/agent/services", tag = "agent", security(("agent_session" = [])),
    responses((status = 200, body = Vec<MyService>), (status = 401, body = Problem)))]
pub async fn services(agent: Agent, State(state): State<AppState>) -> ApiResult<Json<Vec<MyService>>> {
    let names: std::collections::HashMap<ServiceId, String> =
        state.store.list_services(agent.tenant_id).await?.into_iter().map(|s| (s.id, s.name)).collect();
    let mine = state.store.list_memberships(agent.tenant_id).await?.into_iter().filter(|m| m.user_id == agent.user_id);
    Ok(Json(
        mine.map(|m| MyService {
            service_id: m.service_id,
            name: names.get(&m.service_id).cloned().unwrap_or_default(),
            active: m.active,
        })
        .collect(),
    ))
}

/// Body of `PUT /api/v1/agent/services/{id}/active`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActiveUpdate {
    pub active: bool,
}

/// Turns the agent's Active flag in one of their services on or off (an agent cannot join a
/// service this way, only an administrator adds members).
#[utoipa::path(put, path = "/api/v1/agent/services/{id}/active", tag = "agent", security(("agent_session" = [])),
    params(("id" = Uuid, Path)), request_body = ActiveUpdate,
    responses((status = 200, body = Membership), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn set_active(
    agent: Agent,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ActiveUpdate>,
) -> ApiResult<Json<Membership>> {
    let service = ServiceId::from_uuid(id);
    let member = state
        .store
        .list_memberships(agent.tenant_id)
        .await?
        .into_iter()
        .any(|m| m.service_id == service && m.user_id == agent.user_id);
    if !member {
        return Err(ApiError::not_found("membership"));
    }
    let m = Membership { service_id: service, user_id: agent.user_id, active: body.active };
    state.store.set_membership(agent.tenant_id, &m).await.map_err(|e| match e {
        StoreError::NotFound => ApiError::not_found("membership"),
        other => other.into(),
    })?;
    let _ = state.engines.send(agent.tenant_id, Command::Refresh).await;
    Ok(Json(m))
}
