//! Opening-hours calendars, which services name as their primary and secondary calendar for the
//! Check Opening Hours activity. A calendar a service names cannot be deleted.

use super::{found, ou_or_root};
use crate::auth::TenantAdmin;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use crate::tenant_engine::Command;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use parley_domain::calendar::{NewCalendar, OpeningCalendar};
use parley_domain::{CalendarId, TenantId};
use parley_store::StoreError;
use uuid::Uuid;

async fn refresh(state: &AppState, tenant: TenantId) {
    let _ = state.engines.send(tenant, Command::Refresh).await;
}

/// Creates a calendar.
#[utoipa::path(post, path = "/api/v1/calendars", tag = "workflows", security(("api_key" = [])), request_body = NewCalendar,
    responses((status = 201, body = OpeningCalendar), (status = 422, body = Problem)))]
pub async fn create_calendar(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<NewCalendar>,
) -> ApiResult<(StatusCode, Json<OpeningCalendar>)> {
    let input = input.validate()?;
    let ou_id = ou_or_root(&state, admin.tenant_id, input.ou_id, "/ou_id").await?;
    let c = OpeningCalendar {
        id: CalendarId::from_uuid(Uuid::now_v7()),
        tenant_id: admin.tenant_id,
        ou_id,
        name: input.name,
        calendar: input.calendar,
        created_at: state.clock.now(),
    };
    state.store.create_calendar(&c).await?;
    Ok((StatusCode::CREATED, Json(c)))
}

/// Lists the tenant's calendars.
#[utoipa::path(get, path = "/api/v1/calendars", tag = "workflows", security(("api_key" = [])),
    responses((status = 200, body = Vec<OpeningCalendar>), (status = 401, body = Problem)))]
pub async fn list_calendars(
    admin: TenantAdmin,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<OpeningCalendar>>> {
    Ok(Json(state.store.list_calendars(admin.tenant_id).await?))
}

/// One calendar.
#[utoipa::path(get, path = "/api/v1/calendars/{id}", tag = "workflows", security(("api_key" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = OpeningCalendar), (status = 404, body = Problem)))]
pub async fn get_calendar(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<OpeningCalendar>> {
    found(state.store.get_calendar(admin.tenant_id, CalendarId::from_uuid(id)).await, "calendar").map(Json)
}

/// Replaces a calendar's name and rules; services using it follow at once.
#[utoipa::path(put, path = "/api/v1/calendars/{id}", tag = "workflows", security(("api_key" = [])),
    params(("id" = Uuid, Path)), request_body = NewCalendar,
    responses((status = 200, body = OpeningCalendar), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn put_calendar(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<NewCalendar>,
) -> ApiResult<Json<OpeningCalendar>> {
    let input = input.validate()?;
    let mut c = found(state.store.get_calendar(admin.tenant_id, CalendarId::from_uuid(id)).await, "calendar")?;
    c.name = input.name;
    c.calendar = input.calendar;
    state.store.update_calendar(&c).await?;
    refresh(&state, admin.tenant_id).await;
    Ok(Json(c))
}

/// Deletes a calendar no service names (409 `calendar_in_use` otherwise).
#[utoipa::path(delete, path = "/api/v1/calendars/{id}", tag = "workflows", security(("api_key" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn delete_calendar(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    let r = state.store.delete_calendar(admin.tenant_id, CalendarId::from_uuid(id)).await;
    r.map_err(|e| match e {
        StoreError::NotFound => ApiError::not_found("calendar"),
        StoreError::Conflict(_) => ApiError::conflict("calendar_in_use", "a service uses this calendar"),
        other => other.into(),
    })?;
    Ok(StatusCode::NO_CONTENT)
}
