//! Platform administration: creating and listing tenants.

use crate::auth::{PlatformAdmin, mint_api_key};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ApiJson;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use parley_domain::{NewTenant, OrgUnit, OrgUnitId, Tenant, TenantId};
use parley_store::StoreError;
use serde::Serialize;
use uuid::Uuid;

/// A new tenant and its first admin key (shown only here).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedTenant {
    pub tenant: Tenant,
    /// Bearer token for the tenant's admin API; store it now, it cannot be read again.
    pub admin_api_key: String,
}

/// Creates a tenant with its root organization unit and a first admin API key.
#[utoipa::path(post, path = "/api/v1/tenants", tag = "platform", request_body = NewTenant,
    security(("platform_token" = [])),
    responses((status = 201, body = CreatedTenant), (status = 401, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_tenant(
    _: PlatformAdmin,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<NewTenant>,
) -> ApiResult<(StatusCode, Json<CreatedTenant>)> {
    let input = input.validate()?;
    let created = create(&state, input, "initial admin key").await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Creates a tenant (shared with `parley demo`).
///
/// # Errors
/// `409 slug_taken` when the slug is in use.
pub async fn create(state: &AppState, input: NewTenant, key_name: &str) -> ApiResult<CreatedTenant> {
    let now = state.clock.now();
    let id = TenantId::from_uuid(Uuid::now_v7());
    let root =
        OrgUnit { id: OrgUnitId::from_uuid(Uuid::now_v7()), tenant_id: id, name: input.name.clone(), parent_id: None };
    let tenant = Tenant { id, slug: input.slug, name: input.name, root_ou_id: root.id, created_at: now };
    let (key, plaintext) = mint_api_key(id, key_name, now);
    match state.store.create_tenant(&tenant, &root, &key).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Err(ApiError::conflict("slug_taken", "a tenant with this slug exists")),
        Err(e) => return Err(e.into()),
    }
    state.engines.ensure_started(id);
    Ok(CreatedTenant { tenant, admin_api_key: plaintext })
}

/// Lists every tenant.
#[utoipa::path(get, path = "/api/v1/tenants", tag = "platform", security(("platform_token" = [])),
    responses((status = 200, body = Vec<Tenant>), (status = 401, body = Problem)))]
pub async fn list_tenants(_: PlatformAdmin, State(state): State<AppState>) -> ApiResult<Json<Vec<Tenant>>> {
    Ok(Json(state.store.list_tenants().await?))
}
