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

/// Most wrapped-up conversations one codes report reads; past it the report says `truncated`.
const MAX_WRAPPED_UP: u32 = 20_000;

/// How often each code and tag was given to the conversations that ended in the window.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct WrapUpReport {
    /// Conversations with codes or tags that ended in the window.
    pub conversations: u32,
    /// Most used first, then by name; a deleted code shows its id as its name.
    pub codes: Vec<CodeCount>,
    /// Most used first, then alphabetically (tags compared without case).
    pub tags: Vec<TagCount>,
    /// More than 20,000 conversations: the counts cover the newest ones; narrow the window.
    pub truncated: bool,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CodeCount {
    pub code_id: parley_domain::CodeId,
    pub name: String,
    pub count: u32,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TagCount {
    pub tag: String,
    pub count: u32,
}

/// Codes and tags agents gave the chats that ended in the window (of one service with `id`).
#[utoipa::path(get, path = "/api/v1/reports/wrap-ups", tag = "reports", security(("api_key" = [])),
    params(ReportQuery), responses((status = 200, body = WrapUpReport), (status = 400, body = Problem), (status = 422, body = Problem)))]
pub async fn wrap_ups(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> ApiResult<Json<WrapUpReport>> {
    if q.limit.is_some() {
        let why = "this report counts every chat of the window; narrow the window instead";
        return Err(ValidationErrors::single("/limit", "not_applicable", why).into());
    }
    let window = ReportWindow { limit: MAX_WRAPPED_UP, ..q.window(state.clock.now())? };
    let service = q.id.map(ServiceId::from_uuid);
    let rows = state.store.list_wrapped_up(admin.tenant_id, window, service).await?;
    let names: std::collections::HashMap<_, _> =
        state.store.list_codes(admin.tenant_id).await?.into_iter().map(|c| (c.id, c.name)).collect();
    Ok(Json(count_wrap_ups(&rows, &names)))
}

fn count_wrap_ups(
    rows: &[parley_domain::Conversation],
    names: &std::collections::HashMap<parley_domain::CodeId, String>,
) -> WrapUpReport {
    use std::collections::BTreeMap;
    let mut codes: BTreeMap<parley_domain::CodeId, u32> = BTreeMap::new();
    // Keyed by the lowercase tag; the first spelling seen (the newest chat's) is shown.
    let mut tags: BTreeMap<String, (String, u32)> = BTreeMap::new();
    // A wrap-up emptied again counts as none.
    let given: Vec<&parley_domain::WrapUp> =
        rows.iter().filter_map(|c| c.wrap_up.as_ref()).filter(|w| !w.codes.is_empty() || !w.tags.is_empty()).collect();
    for w in &given {
        for code in &w.codes {
            *codes.entry(*code).or_default() += 1;
        }
        for tag in &w.tags {
            tags.entry(tag.to_lowercase()).or_insert_with(|| (tag.clone(), 0)).1 += 1;
        }
    }
    let mut codes: Vec<CodeCount> = codes
        .into_iter()
        .map(|(code_id, count)| {
            let name = names.get(&code_id).cloned().unwrap_or_else(|| code_id.to_string());
            CodeCount { code_id, name, count }
        })
        .collect();
    codes.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    let mut tags: Vec<TagCount> = tags.into_values().map(|(tag, count)| TagCount { tag, count }).collect();
    tags.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.tag.to_lowercase().cmp(&b.tag.to_lowercase())));
    WrapUpReport {
        conversations: u32::try_from(given.len()).unwrap_or(u32::MAX),
        codes,
        tags,
        truncated: rows.len() >= MAX_WRAPPED_UP as usize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parley_domain::{CodeId, Conversation, WrapUp};
    use std::collections::HashMap;

    fn chat(codes: &[CodeId], tags: &[&str]) -> Conversation {
        let mut c: Conversation = serde_json::from_value(serde_json::json!({
            "id": uuid::Uuid::now_v7(), "tenant_id": uuid::Uuid::nil(), "service_id": null, "workflow_id": null,
            "workflow_version": null, "direct_user_id": uuid::Uuid::nil(), "status": "ended",
            "customer": {"display_name": "Ann", "email": "ann@example.com", "privacy_consent": true},
            "first_message": null, "agent_id": null, "last_seq": 0, "created_at": "2026-01-05T09:00:00Z",
            "ended_at": "2026-01-05T09:10:00Z", "outcome": null, "outcome_reason": null
        }))
        .unwrap();
        c.wrap_up = Some(WrapUp {
            codes: codes.to_vec(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            user_id: parley_domain::UserId::from_uuid(uuid::Uuid::nil()),
            updated_at: time::macros::datetime!(2026-01-05 09:11 UTC),
        });
        c
    }

    #[test]
    fn codes_and_tags_are_counted_most_used_first_and_emptied_wrap_ups_do_not_count() {
        let code = |n: u128| CodeId::from_uuid(uuid::Uuid::from_u128(n));
        let (a, b, gone) = (code(1), code(2), code(3));
        let names = HashMap::from([(a, "Refund".to_owned()), (b, "Billing".to_owned())]);
        let rows = [chat(&[a, b], &["VIP"]), chat(&[a], &["vip", "Late"]), chat(&[gone], &[]), chat(&[], &[])];
        let r = count_wrap_ups(&rows, &names);
        assert_eq!(r.conversations, 3, "the emptied one is not counted");
        let codes: Vec<(&str, u32)> = r.codes.iter().map(|c| (c.name.as_str(), c.count)).collect();
        let deleted = gone.to_string();
        // Then by name: a deleted code shows its id, which sorts before letters here.
        assert_eq!(codes, [("Refund", 2), (deleted.as_str(), 1), ("Billing", 1)]);
        let tags: Vec<(&str, u32)> = r.tags.iter().map(|t| (t.tag.as_str(), t.count)).collect();
        assert_eq!(tags, [("VIP", 2), ("Late", 1)], "tags count without case, shown as first written");
        assert!(!r.truncated);
    }
}
