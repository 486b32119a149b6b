//! Skills, the agents' skill levels, and (through the service routing settings) the
//! distribution policies that ask for them.

use super::{found, referenced};
use crate::auth::TenantAdmin;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use crate::tenant_engine::Command;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use parley_domain::skill::check_user_skills;
use parley_domain::{NewSkill, Skill, SkillId, UserId, UserSkill, ValidationErrors};
use parley_store::StoreError;
use serde::Deserialize;
use uuid::Uuid;

/// Creates a skill.
#[utoipa::path(post, path = "/api/v1/skills", tag = "tenant", security(("api_key" = [])), request_body = NewSkill,
    responses((status = 201, body = Skill), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_skill(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<NewSkill>,
) -> ApiResult<(StatusCode, Json<Skill>)> {
    let input = input.validate()?;
    let skill = Skill {
        id: SkillId::from_uuid(Uuid::now_v7()),
        tenant_id: admin.tenant_id,
        name: input.name,
        created_at: state.clock.now(),
    };
    state.store.create_skill(&skill).await.map_err(|e| match e {
        StoreError::Conflict(_) => ApiError::conflict("skill_exists", format!("a skill named '{}' exists", skill.name)),
        other => other.into(),
    })?;
    Ok((StatusCode::CREATED, Json(skill)))
}

/// Lists the tenant's skills, by name.
#[utoipa::path(get, path = "/api/v1/skills", tag = "tenant", security(("api_key" = [])),
    responses((status = 200, body = Vec<Skill>), (status = 401, body = Problem)))]
pub async fn list_skills(admin: TenantAdmin, State(state): State<AppState>) -> ApiResult<Json<Vec<Skill>>> {
    Ok(Json(state.store.list_skills(admin.tenant_id).await?))
}

/// Deletes a skill no agent holds and no service's policy asks for (409 `skill_in_use`).
#[utoipa::path(delete, path = "/api/v1/skills/{id}", tag = "tenant", security(("api_key" = [])),
    params(("id" = Uuid, Path)), responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn delete_skill(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    let (tenant, id) = (admin.tenant_id, SkillId::from_uuid(id));
    let in_policy = state
        .store
        .list_services(tenant)
        .await?
        .into_iter()
        .find(|s| s.routing.policy.iter().any(|l| l.requires.iter().any(|r| r.skill_id == id)));
    if let Some(s) = in_policy {
        return Err(ApiError::conflict("skill_in_use", format!("service '{}' asks for this skill", s.name)));
    }
    state.store.delete_skill(tenant, id).await.map_err(|e| match e {
        StoreError::NotFound => ApiError::not_found("skill"),
        StoreError::Conflict(_) => ApiError::conflict("skill_in_use", "an agent holds this skill"),
        other => other.into(),
    })?;
    Ok(StatusCode::NO_CONTENT)
}

/// An agent's skills and levels.
#[utoipa::path(get, path = "/api/v1/users/{id}/skills", tag = "tenant", security(("api_key" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = Vec<UserSkill>), (status = 404, body = Problem)))]
pub async fn get_user_skills(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Vec<UserSkill>>> {
    let user = UserId::from_uuid(id);
    found(state.store.get_user(admin.tenant_id, user).await, "user")?;
    let all = state.store.list_user_skills(admin.tenant_id).await?;
    Ok(Json(all.into_iter().filter(|(u, _)| *u == user).map(|(_, s)| s).collect()))
}

/// Body of `PUT /api/v1/users/{id}/skills`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SkillsUpdate {
    /// The agent's skills from now on (replaces the previous list).
    pub skills: Vec<UserSkill>,
}

/// Replaces an agent's skills; routing follows at once.
#[utoipa::path(put, path = "/api/v1/users/{id}/skills", tag = "tenant", security(("api_key" = [])),
    params(("id" = Uuid, Path)), request_body = SkillsUpdate,
    responses((status = 200, body = Vec<UserSkill>), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn put_user_skills(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<SkillsUpdate>,
) -> ApiResult<Json<Vec<UserSkill>>> {
    let (tenant, user) = (admin.tenant_id, UserId::from_uuid(id));
    found(state.store.get_user(tenant, user).await, "user")?;
    let mut e = ValidationErrors::default();
    check_user_skills(&mut e, "/skills", &body.skills);
    e.into_result(())?;
    let known: std::collections::HashSet<SkillId> =
        state.store.list_skills(tenant).await?.into_iter().map(|s| s.id).collect();
    for (i, s) in body.skills.iter().enumerate() {
        if !known.contains(&s.skill_id) {
            return Err(ApiError::unknown_reference(format!("/skills/{i}/skill_id"), "skill"));
        }
    }
    referenced(state.store.set_user_skills(tenant, user, &body.skills).await, "/skills", "skill")?;
    let _ = state.engines.send(tenant, Command::Refresh).await;
    Ok(Json(body.skills))
}
