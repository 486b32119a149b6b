//! Agent sign-in and the agent's own data. The session lives in an HttpOnly cookie so the
//! workspace's WebSocket is authenticated by the browser without exposing the secret to scripts.

use crate::auth::{Agent, DUMMY_PHC, SESSION_COOKIE, random_hex, sha256_hex};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ApiJson;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use parley_domain::{ConversationId, ConversationStatus, Outcome, User};
use parley_store::{AgentSession, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Input of `POST /api/v1/agent/login`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The tenant's slug.
    pub tenant: String,
    pub email: String,
    pub password: String,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest").field("tenant", &self.tenant).field("email", &self.email).finish_non_exhaustive()
    }
}

/// The signed-in agent.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    pub user: User,
}

fn invalid_credentials() -> ApiError {
    ApiError::unauthorized("invalid_credentials", "tenant, e-mail or password is wrong")
}

/// Signs an agent in and sets the session cookie.
#[utoipa::path(post, path = "/api/v1/agent/login", tag = "agent", request_body = LoginRequest,
    responses((status = 200, body = Me), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 503, description = "too many sign-ins at once (`busy`); retry after `Retry-After`", body = Problem)))]
pub async fn login(State(state): State<AppState>, ApiJson(req): ApiJson<LoginRequest>) -> ApiResult<Response> {
    let tenant = match state.store.find_tenant_by_slug(req.tenant.trim()).await {
        Ok(t) => Some(t),
        Err(StoreError::NotFound) => None,
        Err(e) => return Err(e.into()),
    };
    let found = match &tenant {
        Some(t) => match state.store.find_user_login(t.id, &req.email.trim().to_ascii_lowercase()).await {
            Ok(found) => Some(found),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    // Verify against a dummy hash when there is no such user, so timing does not tell.
    let phc = found.as_ref().and_then(|(_, h)| h.clone()).unwrap_or_else(|| DUMMY_PHC.to_owned());
    let password = req.password;
    let ok = state.passwords.verify(password, phc).await?;
    let Some((user, Some(_))) = found.filter(|_| ok) else { return Err(invalid_credentials()) };
    let token = random_hex(32);
    let now = state.clock.now();
    let ttl = time::Duration::seconds(i64::try_from(state.config.agent_session_ttl_secs).unwrap_or(i64::MAX / 2));
    let session = AgentSession {
        token_hash: sha256_hex(&token),
        tenant_id: user.tenant_id,
        user_id: user.id,
        created_at: now,
        expires_at: now + ttl,
    };
    state.store.create_session(&session).await?;
    let secure = if state.config.secure_cookies() { "; Secure" } else { "" };
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        state.config.agent_session_ttl_secs
    );
    let mut res = Json(Me { user }).into_response();
    res.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).map_err(|e| ApiError::internal(&e))?);
    Ok(res)
}

/// Ends the agent's session.
#[utoipa::path(post, path = "/api/v1/agent/logout", tag = "agent", security(("agent_session" = [])), responses((status = 204)))]
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    if let Some(token) = crate::auth::cookie(&headers, SESSION_COOKIE) {
        match state.store.delete_session(&sha256_hex(token)).await {
            Ok(()) | Err(StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("parley_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    Ok(res)
}

/// The signed-in agent's profile.
#[utoipa::path(get, path = "/api/v1/agent/me", tag = "agent", security(("agent_session" = [])),
    responses((status = 200, body = Me), (status = 401, body = Problem)))]
pub async fn me(agent: Agent, State(state): State<AppState>) -> ApiResult<Json<Me>> {
    Ok(Json(Me { user: state.store.get_user(agent.tenant_id, agent.user_id).await? }))
}

/// Most conversations the history shows.
const HISTORY_LEN: u32 = 50;

/// One of the agent's past (or current) chats, as My Sessions lists it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryItem {
    pub conversation_id: ConversationId,
    /// The service's name, or empty for a direct chat.
    pub service_name: String,
    /// From the agent's personal snippet.
    pub direct: bool,
    pub customer_name: String,
    pub first_message: Option<String>,
    pub status: ConversationStatus,
    /// How it ended (`user_accepted`, `missed`, `declined`, …), once it has.
    pub outcome: Option<Outcome>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub ended_at: Option<time::OffsetDateTime>,
    /// The names of the codes the agent chose (a deleted code is left out).
    pub codes: Vec<String>,
    pub tags: Vec<String>,
}

/// The agent's recent conversations, newest first: the chats they held and the direct chats
/// addressed to them (declined and missed ones too), with outcome, codes and tags.
#[utoipa::path(get, path = "/api/v1/agent/history", tag = "agent", security(("agent_session" = [])),
    responses((status = 200, body = Vec<HistoryItem>), (status = 401, body = Problem)))]
pub async fn history(agent: Agent, State(state): State<AppState>) -> ApiResult<Json<Vec<HistoryItem>>> {
    let tenant = agent.tenant_id;
    let conversations = state.store.list_agent_conversations(tenant, agent.user_id, HISTORY_LEN).await?;
    let services: HashMap<_, _> =
        state.store.list_services(tenant).await?.into_iter().map(|s| (s.id, s.name)).collect();
    let codes: HashMap<_, _> = state.store.list_codes(tenant).await?.into_iter().map(|c| (c.id, c.name)).collect();
    let items = conversations
        .into_iter()
        .map(|c| {
            let (chosen, tags) = c.wrap_up.map(|w| (w.codes, w.tags)).unwrap_or_default();
            HistoryItem {
                conversation_id: c.id,
                service_name: c.service_id.and_then(|s| services.get(&s).cloned()).unwrap_or_default(),
                direct: c.direct_user_id.is_some(),
                customer_name: c.customer.display_name,
                first_message: c.first_message,
                status: c.status,
                outcome: c.outcome,
                created_at: c.created_at,
                ended_at: c.ended_at,
                codes: chosen.iter().filter_map(|id| codes.get(id).cloned()).collect(),
                tags,
            }
        })
        .collect();
    Ok(Json(items))
}
