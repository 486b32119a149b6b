//! System messages items (spec §5): written once, linked from services (scope `service`) and
//! from users' personal widgets (scope `direct`). A change reaches open chats at once.

use super::{found, ou_or_root};
use crate::auth::TenantAdmin;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use crate::tenant_engine::Command;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use parley_domain::{
    MessageScope, NewSystemMessages, SystemMessages, SystemMessagesContent, SystemMessagesId, TenantId,
    ValidationErrors,
};
use parley_store::StoreError;
use std::collections::HashSet;
use uuid::Uuid;

async fn validated(
    state: &AppState,
    tenant: TenantId,
    content: SystemMessagesContent,
) -> ApiResult<SystemMessagesContent> {
    let known: HashSet<String> = state.store.list_parameters(tenant).await?.into_iter().map(|p| p.id).collect();
    Ok(content.validate(&|id| known.contains(id))?)
}

/// Creates a system messages item.
#[utoipa::path(post, path = "/api/v1/system-messages", tag = "tenant", security(("api_key" = [])),
    request_body = NewSystemMessages, responses((status = 201, body = SystemMessages), (status = 422, body = Problem)))]
pub async fn create(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<NewSystemMessages>,
) -> ApiResult<(StatusCode, Json<SystemMessages>)> {
    let content = validated(&state, admin.tenant_id, input.content).await?;
    let ou_id = ou_or_root(&state, admin.tenant_id, input.ou_id, "/ou_id").await?;
    let item = SystemMessages {
        id: SystemMessagesId::from_uuid(Uuid::now_v7()),
        tenant_id: admin.tenant_id,
        ou_id,
        content,
        created_at: state.clock.now(),
    };
    state.store.create_system_messages(&item).await?;
    Ok((StatusCode::CREATED, Json(item)))
}

/// Lists the tenant's system messages items.
#[utoipa::path(get, path = "/api/v1/system-messages", tag = "tenant", security(("api_key" = [])),
    responses((status = 200, body = Vec<SystemMessages>), (status = 401, body = Problem)))]
pub async fn list(admin: TenantAdmin, State(state): State<AppState>) -> ApiResult<Json<Vec<SystemMessages>>> {
    Ok(Json(state.store.list_system_messages(admin.tenant_id).await?))
}

/// One system messages item.
#[utoipa::path(get, path = "/api/v1/system-messages/{id}", tag = "tenant", security(("api_key" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = SystemMessages), (status = 404, body = Problem)))]
pub async fn get(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<SystemMessages>> {
    let item = state.store.get_system_messages(admin.tenant_id, SystemMessagesId::from_uuid(id)).await;
    found(item, "system messages").map(Json)
}

/// Replaces an item's content. Its scope may only change while nothing links it.
#[utoipa::path(put, path = "/api/v1/system-messages/{id}", tag = "tenant", security(("api_key" = [])),
    params(("id" = Uuid, Path)), request_body = NewSystemMessages,
    responses((status = 200, body = SystemMessages), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
pub async fn put(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<NewSystemMessages>,
) -> ApiResult<Json<SystemMessages>> {
    let tenant = admin.tenant_id;
    let id = SystemMessagesId::from_uuid(id);
    let mut item = found(state.store.get_system_messages(tenant, id).await, "system messages")?;
    let content = validated(&state, tenant, input.content).await?;
    if content.scope != item.content.scope
        && let Some(user) = linked_by(&state, tenant, id).await?
    {
        return Err(ApiError::conflict("system_messages_in_use", format!("{user} links this item")));
    }
    item.content = content;
    state.store.update_system_messages(&item).await?;
    let _ = state.engines.send(tenant, Command::Refresh).await;
    Ok(Json(item))
}

/// Deletes an item nothing links (409 `system_messages_in_use` otherwise).
#[utoipa::path(delete, path = "/api/v1/system-messages/{id}", tag = "tenant", security(("api_key" = [])),
    params(("id" = Uuid, Path)), responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn delete(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    let tenant = admin.tenant_id;
    let id = SystemMessagesId::from_uuid(id);
    found(state.store.get_system_messages(tenant, id).await, "system messages")?;
    if let Some(user) = linked_by(&state, tenant, id).await? {
        return Err(ApiError::conflict("system_messages_in_use", format!("{user} links this item")));
    }
    found(state.store.delete_system_messages(tenant, id).await, "system messages")?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who links the item, for the conflict's detail.
async fn linked_by(state: &AppState, tenant: TenantId, id: SystemMessagesId) -> ApiResult<Option<String>> {
    let services = state.store.list_services(tenant).await?;
    if let Some(s) = services.iter().find(|s| s.system_messages_id == Some(id)) {
        return Ok(Some(format!("service '{}'", s.name)));
    }
    let users = state.store.list_users(tenant).await?;
    Ok(users
        .iter()
        .find(|u| u.direct.settings.system_messages_id == Some(id))
        .map(|u| format!("the personal widget of '{}'", u.display_name)))
}

/// A link to an item must name one of the tenant's, of the right scope.
///
/// # Errors
/// `unknown_reference` or `wrong_scope` at `path`.
pub async fn check_link(
    state: &AppState,
    tenant: TenantId,
    id: Option<SystemMessagesId>,
    scope: MessageScope,
    path: &str,
) -> ApiResult<()> {
    let Some(id) = id else { return Ok(()) };
    let item = match state.store.get_system_messages(tenant, id).await {
        Ok(i) => i,
        Err(StoreError::NotFound) => {
            return Err(ValidationErrors::single(path, "unknown_reference", "no such system messages item").into());
        }
        Err(e) => return Err(e.into()),
    };
    if item.content.scope != scope {
        let want = match scope {
            MessageScope::Service => "service",
            MessageScope::Direct => "direct",
        };
        return Err(ValidationErrors::single(path, "wrong_scope", format!("link an item of scope `{want}`")).into());
    }
    Ok(())
}
