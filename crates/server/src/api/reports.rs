//! Reporting facts for the tenant admin: user sessions (each offer to an agent and what came of
//! it) and service sessions (each conversation's stay in a service), by the time they ended.

use crate::auth::TenantAdmin;
use crate::error::{ApiResult, Problem};
use crate::extract::ApiQuery;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use parley_domain::{ServiceId, ServiceSession, UserId, UserSession, ValidationErrors};
use parley_store::ReportWindow;
use serde::Deserialize;
use time::OffsetDateTime;

/// Most rows one read returns.
pub const MAX_ROWS: u32 = 1000;
/// The window when none is given: the last 24 hours.
const DEFAULT_WINDOW_HOURS: i64 = 24;

/// Query of the reporting reads.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// Sessions that ended at or after this instant (RFC 3339); 24 hours before `to` by default.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<OffsetDateTime>,
    /// …and before this instant; by default everything up to now, included.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<OffsetDateTime>,
    /// Only this agent's (user sessions) or this service's (service sessions) rows.
    #[serde(default)]
    #[param(value_type = Option<String>, format = Uuid)]
    pub id: Option<uuid::Uuid>,
    /// Most rows (1–1000, default 100).
    #[serde(default)]
    pub limit: Option<u32>,
}

impl ReportQuery {
    fn window(&self, now: OffsetDateTime) -> ApiResult<ReportWindow> {
        // `to` is exclusive; the default takes in sessions that ended this very instant.
        let to = self.to.unwrap_or(now + time::Duration::seconds(1));
        let from = self.from.unwrap_or(to - time::Duration::hours(DEFAULT_WINDOW_HOURS));
        let limit = self.limit.unwrap_or(100);
        let mut e = ValidationErrors::default();
        if from > to {
            e.push("/from", "after_to", "must not be after `to`");
        }
        if !(1..=MAX_ROWS).contains(&limit) {
            e.push("/limit", "out_of_range", format!("must be 1-{MAX_ROWS}"));
        }
        e.into_result(ReportWindow { from, to, limit }).map_err(Into::into)
    }
}

/// Offers to agents and their outcomes (accepted, declined, RONA, cancelled, withdrawn), newest first.
#[utoipa::path(get, path = "/api/v1/reports/user-sessions", tag = "reports", security(("api_key" = [])),
    params(ReportQuery), responses((status = 200, body = Vec<UserSession>), (status = 400, body = Problem), (status = 422, body = Problem)))]
pub async fn user_sessions(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> ApiResult<Json<Vec<UserSession>>> {
    let window = q.window(state.clock.now())?;
    let user = q.id.map(UserId::from_uuid);
    Ok(Json(state.store.list_user_sessions(admin.tenant_id, window, user).await?))
}

/// Conversations' stays in services with outcome and time in workflow, queue and connection, newest first.
#[utoipa::path(get, path = "/api/v1/reports/service-sessions", tag = "reports", security(("api_key" = [])),
    params(ReportQuery), responses((status = 200, body = Vec<ServiceSession>), (status = 400, body = Problem), (status = 422, body = Problem)))]
pub async fn service_sessions(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> ApiResult<Json<Vec<ServiceSession>>> {
    let window = q.window(state.clock.now())?;
    let service = q.id.map(ServiceId::from_uuid);
    Ok(Json(state.store.list_service_sessions(admin.tenant_id, window, service).await?))
}
