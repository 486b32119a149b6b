//! Personal widgets and snippet credentials: a user's direct-chat settings and snippet, and
//! regenerating the Widget Key of a service's or a user's snippet (the old snippet stops
//! working at once; the Contact ID stays, so reports and links keep their key).

use super::config::{Snippet, snippet_of};
use super::found;
use crate::auth::{TenantAdmin, random_hex};
use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use crate::tenant_engine::Command;
use axum::Json;
use axum::extract::State;
use parley_domain::{DirectChat, DirectChatSettings, Licence, ServiceId, User, UserId, ValidationErrors};
use uuid::Uuid;

/// Bytes of a freshly minted Widget Key (shown as hex).
const WIDGET_KEY_BYTES: usize = 16;

/// A user's personal snippet (whether or not direct chats are switched on: an administrator
/// may prepare the website first).
#[utoipa::path(get, path = "/api/v1/users/{id}/snippet", tag = "tenant", security(("api_key" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = Snippet), (status = 404, body = Problem)))]
pub async fn get_user_snippet(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Snippet>> {
    let u = found(state.store.get_user(admin.tenant_id, UserId::from_uuid(id)).await, "user")?;
    Ok(Json(snippet_of(&state.config.public_url, &u.direct.contact_id, &u.direct.widget_key)))
}

/// Replaces a user's direct-chat settings: on or off, the seconds they have to answer an
/// invitation, and which websites may use their personal snippet.
#[utoipa::path(put, path = "/api/v1/users/{id}/direct-chat", tag = "tenant", security(("api_key" = [])),
    params(("id" = Uuid, Path)), request_body = DirectChatSettings,
    responses((status = 200, body = DirectChat), (status = 400, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
pub async fn put_direct_chat(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<DirectChatSettings>,
) -> ApiResult<Json<DirectChat>> {
    let tenant = admin.tenant_id;
    let id = UserId::from_uuid(id);
    let user = found(state.store.get_user(tenant, id).await, "user")?;
    let settings = input.validate()?;
    check_licences(&user, &settings)?;
    super::access::check_access_refs(&state, tenant, &settings.access).await?;
    let scope = parley_domain::MessageScope::Direct;
    super::system_messages::check_link(&state, tenant, settings.system_messages_id, scope, "/system_messages_id")
        .await?;
    let user = found(state.store.set_direct_chat(tenant, id, &settings).await, "user")?;
    let _ = state.engines.send(tenant, Command::Refresh).await;
    Ok(Json(user.direct))
}

/// A personal widget needs the Instant Messaging and Interact licences (spec V17).
fn check_licences(user: &User, settings: &DirectChatSettings) -> ApiResult<()> {
    let licensed = [Licence::InstantMessaging, Licence::Interact].iter().all(|l| user.licences.contains(l));
    if settings.enabled && !licensed {
        return Err(ValidationErrors::single(
            "/enabled",
            "licence_required",
            "direct chats need the user's instant_messaging and interact licences",
        )
        .into());
    }
    Ok(())
}

/// Gives a service's snippet a new Widget Key; websites must paste the new snippet.
#[utoipa::path(post, path = "/api/v1/services/{id}/snippet/regenerate", tag = "tenant", security(("api_key" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = Snippet), (status = 404, body = Problem)))]
pub async fn regenerate_service_snippet(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Snippet>> {
    let id = ServiceId::from_uuid(id);
    let key = random_hex(WIDGET_KEY_BYTES);
    found(state.store.set_service_widget_key(admin.tenant_id, id, &key).await, "service")?;
    let s = found(state.store.get_service(admin.tenant_id, id).await, "service")?;
    let _ = state.engines.send(admin.tenant_id, Command::Refresh).await;
    Ok(Json(snippet_of(&state.config.public_url, &s.contact_id, &s.widget_key)))
}

/// Gives a user's personal snippet a new Widget Key.
#[utoipa::path(post, path = "/api/v1/users/{id}/snippet/regenerate", tag = "tenant", security(("api_key" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = Snippet), (status = 404, body = Problem)))]
pub async fn regenerate_user_snippet(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Snippet>> {
    let id = UserId::from_uuid(id);
    let key = random_hex(WIDGET_KEY_BYTES);
    found(state.store.set_user_widget_key(admin.tenant_id, id, &key).await, "user")?;
    let u = found(state.store.get_user(admin.tenant_id, id).await, "user")?;
    Ok(Json(snippet_of(&state.config.public_url, &u.direct.contact_id, &u.direct.widget_key)))
}
