//! The visitor side of the API: start a conversation from the pre-chat form and read its
//! transcript with the token that start returned.

use super::config::{LOG_PAGE, LogPage, SinceSeq};
use crate::auth::{Visitor, ct_eq, mint_visitor_token};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use crate::tenant_engine::Command;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use parley_domain::{
    Conversation, ConversationId, ConversationStatus, Customer, EntryBody, PreChatForm, Sender, Service, ServiceId,
    TenantId, User, UserId, WidgetAccess, WorkflowId,
};
use parley_store::{NewEntry, StoreError, VisitorCredential};
use serde::Serialize;
use uuid::Uuid;

/// A started conversation and the visitor's credential for it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StartedConversation {
    pub conversation_id: ConversationId,
    /// Bearer token for this conversation only (REST and WebSocket).
    pub visitor_token: String,
    /// Where to open the visitor WebSocket (append `?token=…&since_seq=…`).
    pub ws_url: String,
    /// Who the visitor chats with: the service's name, or the user's for a personal snippet.
    pub service_name: String,
    /// Started from a personal snippet: the chat goes to that one user, without a queue.
    pub direct: bool,
}

/// What a snippet reaches.
#[derive(Debug, Clone)]
pub enum SnippetTarget {
    /// A service: its workflow, then its queue.
    Service(Service),
    /// One user, directly (a personal snippet).
    User(User),
}

/// A snippet whose credentials matched.
#[derive(Debug, Clone)]
pub struct ResolvedSnippet {
    pub tenant_id: TenantId,
    /// The service's name as its system messages name it to customers, or the user's display
    /// name.
    pub name: String,
    /// Which websites may use it.
    pub access: WidgetAccess,
    pub target: SnippetTarget,
}

/// The service or user a snippet names, if its key matches. A personal snippet whose user has
/// direct chats switched off is unknown, like a wrong key.
///
/// # Errors
/// `404 unknown_widget` for an unknown contact id or a wrong key (indistinguishable on purpose).
pub async fn resolve_snippet(state: &AppState, contact_id: &str, widget_key: &str) -> ApiResult<ResolvedSnippet> {
    let unknown = || ApiError::new(StatusCode::NOT_FOUND, "unknown_widget", "no chat is configured for this snippet");
    match state.store.find_service_by_contact_id(contact_id).await {
        Ok(s) if ct_eq(&s.widget_key, widget_key) => {
            return Ok(ResolvedSnippet {
                tenant_id: s.tenant_id,
                name: shown_service_name(state, &s, None).await?,
                access: s.access.clone(),
                target: SnippetTarget::Service(s),
            });
        }
        Ok(_) => return Err(unknown()),
        Err(StoreError::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    match state.store.find_user_by_contact_id(contact_id).await {
        Ok(u) if ct_eq(&u.direct.widget_key, widget_key) && u.direct.settings.enabled => Ok(ResolvedSnippet {
            tenant_id: u.tenant_id,
            name: u.display_name.clone(),
            access: u.direct.settings.access.clone(),
            target: SnippetTarget::User(u),
        }),
        Ok(_) | Err(StoreError::NotFound) => Err(unknown()),
        Err(e) => Err(e.into()),
    }
}

/// Where a new conversation goes: a service's workflow (pinned at the version current now;
/// later publishes do not change it), or one user.
struct Route {
    service_id: Option<ServiceId>,
    workflow: Option<(WorkflowId, u32)>,
    direct_user_id: Option<UserId>,
}

async fn route_of(state: &AppState, target: &SnippetTarget) -> ApiResult<Route> {
    match target {
        SnippetTarget::User(u) => Ok(Route { service_id: None, workflow: None, direct_user_id: Some(u.id) }),
        SnippetTarget::Service(service) => {
            let workflow = state.store.get_workflow(service.tenant_id, service.workflow_id).await?;
            let Some(version) = workflow.current_version else {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "service_not_ready",
                    "the service's workflow has no published version",
                ));
            };
            Ok(Route {
                service_id: Some(service.id),
                workflow: Some((service.workflow_id, version)),
                direct_user_id: None,
            })
        }
    }
}

/// Starts a chat from the pre-chat form.
#[utoipa::path(post, path = "/api/v1/widget/conversations", tag = "widget", request_body = PreChatForm,
    responses((status = 201, body = StartedConversation), (status = 400, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn start_conversation(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    ApiJson(form): ApiJson<PreChatForm>,
) -> ApiResult<(StatusCode, Json<StartedConversation>)> {
    let form = form.validate()?;
    let snippet = resolve_snippet(&state, &form.contact_id, &form.widget_key).await?;
    let tenant = snippet.tenant_id;
    super::access::check_origin(&state, tenant, &snippet.access, &headers).await?;
    let route = route_of(&state, &snippet.target).await?;
    let now = state.clock.now();
    let id = ConversationId::from_uuid(Uuid::now_v7());
    let conversation = Conversation {
        id,
        tenant_id: tenant,
        service_id: route.service_id,
        workflow_id: route.workflow.map(|w| w.0),
        workflow_version: route.workflow.map(|w| w.1),
        direct_user_id: route.direct_user_id,
        status: ConversationStatus::Workflow,
        customer: Customer {
            display_name: form.display_name.clone(),
            email: form.email,
            privacy_consent: true,
            language: form.language.clone(),
        },
        first_message: form.first_message.clone(),
        agent_id: None,
        last_seq: 0,
        created_at: now,
        ended_at: None,
        outcome: None,
        outcome_reason: None,
        agent_alias: None,
        wrap_up: None,
    };
    let (token, token_hash) = mint_visitor_token(tenant, id);
    let ttl = time::Duration::seconds(i64::try_from(state.config.visitor_token_ttl_secs).unwrap_or(i64::MAX / 2));
    let credential = VisitorCredential { token_hash, expires_at: now + ttl };
    state.store.create_conversation(&conversation, &credential).await?;
    if let Some(text) = form.first_message {
        let sender = Sender::Customer { name: form.display_name };
        let entry = NewEntry {
            tenant_id: tenant,
            conversation_id: id,
            client_msg_id: None,
            body: EntryBody::Message { sender, text, attachment: None },
            created_at: now,
        };
        state.log.append(entry).await?;
    }
    state
        .engines
        .send(tenant, Command::Start { conversation: id })
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.code(), e.to_string()))?;
    let started = StartedConversation {
        conversation_id: id,
        visitor_token: token,
        ws_url: format!("{}/ws/v1/visitor", state.config.public_ws_url()),
        service_name: snippet.name,
        direct: route.direct_user_id.is_some(),
    };
    Ok((StatusCode::CREATED, Json(started)))
}

/// The visitor's transcript.
#[utoipa::path(get, path = "/api/v1/widget/conversations/{id}/log", tag = "widget", security(("visitor_token" = [])),
    params(("id" = Uuid, Path), SinceSeq),
    responses((status = 200, body = LogPage), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn visitor_log(
    visitor: Visitor,
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<SinceSeq>,
) -> ApiResult<Json<LogPage>> {
    if visitor.conversation_id.0 != id {
        return Err(ApiError::forbidden("token_not_for_conversation", "the token belongs to another conversation"));
    }
    let conversation = state.store.get_conversation(visitor.tenant_id, visitor.conversation_id).await?;
    super::access::check_conversation_origin(&state, &conversation, &headers).await?;
    let entries =
        state.store.read_log(visitor.tenant_id, visitor.conversation_id, q.since_seq.max(0), LOG_PAGE).await?;
    Ok(Json(LogPage { entries }))
}

/// Query of the transcript download.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TranscriptQuery {
    /// IANA time zone for the times shown (e.g. `Europe/Zurich`; the widget sends the
    /// browser's); UTC when absent.
    #[serde(default)]
    pub tz: Option<String>,
}

/// The visitor's copy of the chat as plain text (who wrote what and when, files by name).
#[utoipa::path(get, path = "/api/v1/widget/conversations/{id}/transcript", tag = "widget", security(("visitor_token" = [])),
    params(("id" = Uuid, Path), TranscriptQuery),
    responses((status = 200, description = "the transcript", content_type = "text/plain"), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn transcript(
    visitor: Visitor,
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<TranscriptQuery>,
) -> ApiResult<axum::response::Response> {
    use axum::http::{HeaderValue, header};
    use axum::response::IntoResponse;
    use parley_domain::transcript::{TranscriptZone, render};
    if visitor.conversation_id.0 != id {
        return Err(ApiError::forbidden("token_not_for_conversation", "the token belongs to another conversation"));
    }
    let zone = match q.tz.as_deref().map(str::trim) {
        None | Some("") => TranscriptZone::utc(),
        Some(name) => TranscriptZone::named(name).ok_or_else(|| {
            ApiError::from(parley_domain::ValidationErrors::single(
                "/tz",
                "unknown_time_zone",
                "not a time zone of the IANA database (e.g. Europe/Zurich)",
            ))
        })?,
    };
    let conversation = state.store.get_conversation(visitor.tenant_id, visitor.conversation_id).await?;
    super::access::check_conversation_origin(&state, &conversation, &headers).await?;
    let mut cursor = crate::ws::Cursor { tenant: visitor.tenant_id, conversation: conversation.id, last: 0 };
    let entries = cursor.catch_up(state.store.as_ref()).await?;
    let name = counterpart_name(&state, &conversation, &entries).await?;
    let text = render(&name, conversation.created_at, &entries, &zone);
    let file = format!("attachment; filename=\"chat-{}.txt\"", conversation.created_at.date());
    let mut res = text.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&file) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

/// The service's name as customers read it: its system messages item may give another (a
/// front desk's name for every service behind it, say). `initial` is the service the chat
/// started in, when a transfer moved it on.
async fn shown_service_name(
    state: &AppState,
    s: &parley_domain::Service,
    initial: Option<&parley_domain::Service>,
) -> ApiResult<String> {
    let item = match s.system_messages_id {
        Some(id) => match state.store.get_system_messages(s.tenant_id, id).await {
            Ok(item) => Some(item.content),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let first = initial.map_or(s.name.as_str(), |i| i.name.as_str());
    Ok(parley_domain::system_messages::service_name_for_customer(item.as_ref(), first, &s.name))
}

/// Who the customer chatted with, as their transcript names it: the service, or the user of a
/// personal snippet.
async fn counterpart_name(
    state: &AppState,
    c: &Conversation,
    entries: &[parley_domain::LogEntry],
) -> ApiResult<String> {
    Ok(match (c.service_id, c.direct_user_id) {
        (Some(service), _) => {
            let current = state.store.get_service(c.tenant_id, service).await?;
            // The first transfer tells where the chat started (the front desk).
            let started = entries.iter().find_map(|e| match &e.body {
                parley_domain::EntryBody::Event {
                    event: parley_domain::ConversationEvent::Transferred { from_service, .. },
                } => Some(*from_service),
                _ => None,
            });
            let initial = match started {
                Some(first) if first != service => match state.store.get_service(c.tenant_id, first).await {
                    Ok(s) => Some(s),
                    Err(StoreError::NotFound) => None,
                    Err(e) => return Err(e.into()),
                },
                _ => None,
            };
            shown_service_name(state, &current, initial.as_ref()).await?
        }
        // The user as their texts name them, once the chat connected ("Agent" when hidden).
        (None, Some(_)) if c.agent_alias.is_some() => match c.agent_alias.as_deref() {
            Some("") | None => "Agent".to_owned(),
            Some(alias) => alias.to_owned(),
        },
        (None, Some(user)) => state.store.get_user(c.tenant_id, user).await?.display_name,
        (None, None) => String::new(),
    })
}
