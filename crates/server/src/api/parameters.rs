//! Custom parameters: ids are chosen once and never change, so workflows can rely on them; a
//! parameter a workflow names (in its draft or any published version) cannot be deleted.

use super::{found, ou_or_root};
use crate::auth::TenantAdmin;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use crate::tenant_engine::Command;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use parley_domain::{CustomParameter, NewParameter, ParameterPatch, TenantId};
use parley_store::StoreError;

async fn refresh(state: &AppState, tenant: TenantId) {
    let _ = state.engines.send(tenant, Command::Refresh).await;
}

/// Creates a custom parameter.
#[utoipa::path(post, path = "/api/v1/parameters", tag = "workflows", security(("api_key" = [])), request_body = NewParameter,
    responses((status = 201, body = CustomParameter), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_parameter(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<NewParameter>,
) -> ApiResult<(StatusCode, Json<CustomParameter>)> {
    let input = input.validate()?;
    let p = create_parameter_in(&state, admin.tenant_id, input).await?;
    Ok((StatusCode::CREATED, Json(p)))
}

/// Creates a parameter (shared with `parley demo`).
///
/// # Errors
/// Unknown organization unit, a taken id, store failures.
pub async fn create_parameter_in(
    state: &AppState,
    tenant: TenantId,
    input: NewParameter,
) -> ApiResult<CustomParameter> {
    let ou_id = ou_or_root(state, tenant, input.ou_id, "/ou_id").await?;
    let p = CustomParameter {
        id: input.id,
        tenant_id: tenant,
        ou_id,
        name: input.name,
        default_value: input.default_value,
        created_at: state.clock.now(),
    };
    state.store.create_parameter(&p).await.map_err(|e| match e {
        StoreError::Conflict(_) => ApiError::conflict("parameter_exists", format!("a parameter '{}' exists", p.id)),
        other => other.into(),
    })?;
    refresh(state, tenant).await;
    Ok(p)
}

/// Lists the tenant's custom parameters, by id.
#[utoipa::path(get, path = "/api/v1/parameters", tag = "workflows", security(("api_key" = [])),
    responses((status = 200, body = Vec<CustomParameter>), (status = 401, body = Problem)))]
pub async fn list_parameters(
    admin: TenantAdmin,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<CustomParameter>>> {
    Ok(Json(state.store.list_parameters(admin.tenant_id).await?))
}

/// One custom parameter.
#[utoipa::path(get, path = "/api/v1/parameters/{id}", tag = "workflows", security(("api_key" = [])),
    params(("id" = String, Path)), responses((status = 200, body = CustomParameter), (status = 404, body = Problem)))]
pub async fn get_parameter(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<CustomParameter>> {
    found(state.store.get_parameter(admin.tenant_id, &id).await, "parameter").map(Json)
}

/// Renames a parameter or changes its default (new sessions start with the new default).
#[utoipa::path(patch, path = "/api/v1/parameters/{id}", tag = "workflows", security(("api_key" = [])),
    params(("id" = String, Path)), request_body = ParameterPatch,
    responses((status = 200, body = CustomParameter), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn patch_parameter(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(patch): ApiJson<ParameterPatch>,
) -> ApiResult<Json<CustomParameter>> {
    let p = found(state.store.get_parameter(admin.tenant_id, &id).await, "parameter")?;
    let p = patch.apply(p)?;
    state.store.update_parameter(&p).await?;
    refresh(&state, admin.tenant_id).await;
    Ok(Json(p))
}

/// Deletes a parameter no workflow names; refused (409 `parameter_in_use`, naming the
/// workflows) while a draft or a published version refers to it.
#[utoipa::path(delete, path = "/api/v1/parameters/{id}", tag = "workflows", security(("api_key" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn delete_parameter(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let tenant = admin.tenant_id;
    found(state.store.get_parameter(tenant, &id).await, "parameter")?;
    let mut users = Vec::new();
    for wf in state.store.list_workflows(tenant).await? {
        let mut uses = wf.draft.parameter_ids().contains(&id);
        for v in state.store.list_workflow_versions(tenant, wf.id).await? {
            uses |= v.definition.parameter_ids().contains(&id);
        }
        if uses {
            users.push(format!("'{}' ({})", wf.name, wf.id));
        }
    }
    if !users.is_empty() {
        return Err(ApiError::conflict(
            "parameter_in_use",
            format!("parameter '{id}' is used by workflow {}", users.join(", ")),
        ));
    }
    found(state.store.delete_parameter(tenant, &id).await, "parameter")?;
    refresh(&state, tenant).await;
    Ok(StatusCode::NO_CONTENT)
}
