//! Workflows: drafts that may be saved while they still break rules, immutable published
//! versions (with history and rollback), the services that use a workflow, and the simulator.
//!
//! Publishing is where every rule is enforced, against the tenant's services, parameters and
//! organization tree as they are now; a service can only select a workflow that has a version.

use super::{found, ou_or_root};
use crate::auth::TenantAdmin;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use crate::tenant_engine::Command;
use crate::workflow_host;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use parley_domain::template::Channel;
use parley_domain::workflow::{References, WorkflowDefinition, WorkflowVersion};
use parley_domain::{
    DraftUpdate, FieldError, NewWorkflow, OrgUnitId, Service, ServiceId, TenantId, ValidationErrors, Workflow,
    WorkflowId,
};
use parley_engine::simulate::{self, Script, Simulation};
use parley_engine::tenant::{Pinned, ServiceSetup};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// A workflow with what keeps its draft from being published.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WorkflowDetail {
    #[serde(flatten)]
    pub workflow: Workflow,
    /// Every rule the draft breaks now (empty when it can be published).
    pub issues: Vec<FieldError>,
}

/// The tenant's entities a workflow may name, for the rules that need them (spec §3.3 V-7).
struct TenantRefs {
    services: HashMap<ServiceId, OrgUnitId>,
    parameters: HashMap<String, OrgUnitId>,
    parents: HashMap<OrgUnitId, Option<OrgUnitId>>,
}

impl TenantRefs {
    async fn load(state: &AppState, tenant: TenantId) -> ApiResult<Self> {
        Ok(Self {
            services: state.store.list_services(tenant).await?.into_iter().map(|s| (s.id, s.ou_id)).collect(),
            parameters: state.store.list_parameters(tenant).await?.into_iter().map(|p| (p.id, p.ou_id)).collect(),
            parents: state.store.list_org_units(tenant).await?.into_iter().map(|o| (o.id, o.parent_id)).collect(),
        })
    }
}

impl References for TenantRefs {
    fn service_ou(&self, service: ServiceId) -> Option<OrgUnitId> {
        self.services.get(&service).copied()
    }

    fn parameter_ou(&self, id: &str) -> Option<OrgUnitId> {
        self.parameters.get(id).copied()
    }

    fn visible(&self, entity: OrgUnitId, from: OrgUnitId) -> bool {
        // Walk up from the workflow's unit; the tree is small and has no cycles, but the walk is
        // bounded anyway.
        let mut at = Some(from);
        for _ in 0..=self.parents.len() {
            match at {
                Some(u) if u == entity => return true,
                Some(u) => at = self.parents.get(&u).copied().flatten(),
                None => return false,
            }
        }
        false
    }
}

/// Every rule `definition` breaks as a workflow of unit `ou` of this tenant. Every service
/// runs on the web widget today, so that is the channel checked; licences are per user and
/// checked when users are assigned.
async fn issues(
    state: &AppState,
    tenant: TenantId,
    ou: OrgUnitId,
    definition: &WorkflowDefinition,
) -> ApiResult<ValidationErrors> {
    let refs = TenantRefs::load(state, tenant).await?;
    Ok(definition.validate_for(ou, &refs, &[Channel::Web], None).err().unwrap_or_default())
}

async fn detail(state: &AppState, workflow: Workflow) -> ApiResult<WorkflowDetail> {
    let issues = issues(state, workflow.tenant_id, workflow.ou_id, &workflow.draft).await?;
    Ok(WorkflowDetail { workflow, issues: issues.0 })
}

async fn workflow_of(state: &AppState, tenant: TenantId, id: Uuid) -> ApiResult<Workflow> {
    found(state.store.get_workflow(tenant, WorkflowId::from_uuid(id)).await, "workflow")
}

/// Tells the engine that services may run another version now.
async fn refresh(state: &AppState, tenant: TenantId) {
    let _ = state.engines.send(tenant, Command::Refresh).await;
}

/// Saves a new workflow as a draft, or with `publish` also as version 1 (only if it is valid;
/// otherwise nothing is saved).
#[utoipa::path(post, path = "/api/v1/workflows", tag = "workflows", security(("api_key" = [])), request_body = NewWorkflow,
    responses((status = 201, body = WorkflowDetail), (status = 400, body = Problem), (status = 422, body = Problem)))]
pub async fn create_workflow(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<NewWorkflow>,
) -> ApiResult<(StatusCode, Json<WorkflowDetail>)> {
    let input = input.validate()?;
    let wf = create_workflow_in(&state, admin.tenant_id, input).await?;
    Ok((StatusCode::CREATED, Json(detail(&state, wf).await?)))
}

/// Creates a workflow (shared with `parley demo`).
///
/// # Errors
/// Unknown organization unit, a draft that breaks rules when `publish` is asked, store failures.
pub async fn create_workflow_in(state: &AppState, tenant: TenantId, input: NewWorkflow) -> ApiResult<Workflow> {
    let ou_id = ou_or_root(state, tenant, input.ou_id, "/ou_id").await?;
    let now = state.clock.now();
    let mut wf = Workflow {
        id: WorkflowId::from_uuid(Uuid::now_v7()),
        tenant_id: tenant,
        ou_id,
        name: input.name,
        kind: input.kind,
        draft: input.definition,
        current_version: None,
        created_at: now,
        updated_at: now,
    };
    let first = if input.publish {
        issues(state, tenant, ou_id, &wf.draft).await?.into_result(())?;
        wf.current_version = Some(1);
        Some(WorkflowVersion {
            workflow_id: wf.id,
            tenant_id: tenant,
            version: 1,
            definition: wf.draft.clone(),
            published_at: now,
            restored_from: None,
        })
    } else {
        None
    };
    state.store.create_workflow(&wf, first.as_ref()).await?;
    Ok(wf)
}

/// Lists the tenant's workflows.
#[utoipa::path(get, path = "/api/v1/workflows", tag = "workflows", security(("api_key" = [])),
    responses((status = 200, body = Vec<Workflow>), (status = 401, body = Problem)))]
pub async fn list_workflows(admin: TenantAdmin, State(state): State<AppState>) -> ApiResult<Json<Vec<Workflow>>> {
    Ok(Json(state.store.list_workflows(admin.tenant_id).await?))
}

/// One workflow, with the rules its draft breaks.
#[utoipa::path(get, path = "/api/v1/workflows/{id}", tag = "workflows", security(("api_key" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = WorkflowDetail), (status = 404, body = Problem)))]
pub async fn get_workflow(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<WorkflowDetail>> {
    let wf = workflow_of(&state, admin.tenant_id, id).await?;
    Ok(Json(detail(&state, wf).await?))
}

/// Replaces the draft. It is saved even when it breaks rules (they are listed in `issues`);
/// running conversations and the published versions are not affected.
#[utoipa::path(put, path = "/api/v1/workflows/{id}/draft", tag = "workflows", security(("api_key" = [])),
    params(("id" = Uuid, Path)), request_body = DraftUpdate,
    responses((status = 200, body = WorkflowDetail), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn put_draft(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<DraftUpdate>,
) -> ApiResult<Json<WorkflowDetail>> {
    let input = input.validate()?;
    let mut wf = workflow_of(&state, admin.tenant_id, id).await?;
    wf.name = input.name.unwrap_or(wf.name);
    wf.draft = input.definition;
    wf.updated_at = state.clock.now();
    state.store.update_workflow_draft(admin.tenant_id, wf.id, &wf.name, &wf.draft, wf.updated_at).await?;
    Ok(Json(detail(&state, wf).await?))
}

/// Publishes the draft as the next version, which new conversations of every service using the
/// workflow run from now on. Refused with every broken rule while the draft breaks any.
#[utoipa::path(post, path = "/api/v1/workflows/{id}/publish", tag = "workflows", security(("api_key" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 201, body = WorkflowVersion), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn publish(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<(StatusCode, Json<WorkflowVersion>)> {
    let wf = workflow_of(&state, admin.tenant_id, id).await?;
    let definition = wf.draft.clone();
    let v = publish_version(&state, &wf, definition, None).await?;
    Ok((StatusCode::CREATED, Json(v)))
}

async fn publish_version(
    state: &AppState,
    wf: &Workflow,
    definition: WorkflowDefinition,
    restored_from: Option<u32>,
) -> ApiResult<WorkflowVersion> {
    issues(state, wf.tenant_id, wf.ou_id, &definition).await?.into_result(())?;
    let latest = state.store.list_workflow_versions(wf.tenant_id, wf.id).await?.last().map_or(0, |v| v.version);
    let next =
        latest.checked_add(1).ok_or_else(|| ApiError::conflict("too_many_versions", "no version number left"))?;
    let v = WorkflowVersion {
        workflow_id: wf.id,
        tenant_id: wf.tenant_id,
        version: next,
        definition,
        published_at: state.clock.now(),
        restored_from,
    };
    state.store.publish_workflow_version(&v).await.map_err(|e| match e {
        parley_store::StoreError::Conflict(_) => {
            ApiError::conflict("publish_conflict", "another version was published at the same time; retry")
        }
        other => other.into(),
    })?;
    refresh(state, wf.tenant_id).await;
    Ok(v)
}

/// Every published version, oldest first.
#[utoipa::path(get, path = "/api/v1/workflows/{id}/versions", tag = "workflows", security(("api_key" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = Vec<WorkflowVersion>), (status = 404, body = Problem)))]
pub async fn list_versions(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Vec<WorkflowVersion>>> {
    let wf = workflow_of(&state, admin.tenant_id, id).await?;
    Ok(Json(state.store.list_workflow_versions(admin.tenant_id, wf.id).await?))
}

/// One published version.
#[utoipa::path(get, path = "/api/v1/workflows/{id}/versions/{version}", tag = "workflows", security(("api_key" = [])),
    params(("id" = Uuid, Path), ("version" = u32, Path)),
    responses((status = 200, body = WorkflowVersion), (status = 404, body = Problem)))]
pub async fn get_version(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath((id, version)): ApiPath<(Uuid, u32)>,
) -> ApiResult<Json<WorkflowVersion>> {
    let r = state.store.get_workflow_version(admin.tenant_id, WorkflowId::from_uuid(id), version).await;
    found(r, "workflow version").map(Json)
}

/// Rolls back: publishes an old version's definition anew as the next version (history is
/// never rewritten). The old definition must still pass today's rules.
#[utoipa::path(post, path = "/api/v1/workflows/{id}/versions/{version}/restore", tag = "workflows", security(("api_key" = [])),
    params(("id" = Uuid, Path), ("version" = u32, Path)),
    responses((status = 201, body = WorkflowVersion), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn restore_version(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath((id, version)): ApiPath<(Uuid, u32)>,
) -> ApiResult<(StatusCode, Json<WorkflowVersion>)> {
    let wf = workflow_of(&state, admin.tenant_id, id).await?;
    let old = found(state.store.get_workflow_version(admin.tenant_id, wf.id, version).await, "workflow version")?;
    let v = publish_version(&state, &wf, old.definition, Some(version)).await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// The services whose new conversations run this workflow.
#[utoipa::path(get, path = "/api/v1/workflows/{id}/services", tag = "workflows", security(("api_key" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = Vec<Service>), (status = 404, body = Problem)))]
pub async fn used_by(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Vec<Service>>> {
    let wf = workflow_of(&state, admin.tenant_id, id).await?;
    let all = state.store.list_services(admin.tenant_id).await?;
    Ok(Json(all.into_iter().filter(|s| s.workflow_id == wf.id).collect()))
}

/// Input of `POST /api/v1/workflows/{id}/simulate`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulationRequest {
    /// The version to run; the current version when absent (unless `draft`).
    #[serde(default)]
    pub version: Option<u32>,
    /// Run the draft instead of a published version (it may break rules; the run shows where).
    #[serde(default)]
    pub draft: bool,
    /// The service the simulated chat arrives at: its calendars apply (any service of the
    /// tenant; the workflow simulated replaces its own). None: a service without calendars.
    #[serde(default)]
    pub service_id: Option<ServiceId>,
    /// Simulated start; now when absent.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub start_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub script: Script,
}

/// Runs a workflow version against a script in a private engine: the trace of nodes and exits,
/// the messages and the outcome. Touches no live data.
#[utoipa::path(post, path = "/api/v1/workflows/{id}/simulate", tag = "workflows", security(("api_key" = [])),
    params(("id" = Uuid, Path)), request_body = SimulationRequest,
    responses((status = 200, body = Simulation), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn simulate(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<SimulationRequest>,
) -> ApiResult<Json<Simulation>> {
    let tenant = admin.tenant_id;
    if let Err(errors) = input.script.validate() {
        let mut e = ValidationErrors::default();
        for s in errors {
            e.push(format!("/script{}", s.path), s.code, s.message);
        }
        return Err(e.into());
    }
    check_start(input.start_at)?;
    let wf = workflow_of(&state, tenant, id).await?;
    let pinned = match (input.draft, input.version.or(wf.current_version)) {
        (true, _) if input.version.is_some() => {
            return Err(ValidationErrors::single(
                "/version",
                "conflicting_fields",
                "give a version or draft, not both",
            )
            .into());
        }
        (true, _) => {
            // A draft may break reference rules (the trace shows where), but not the structure
            // the interpreter relies on (timeouts, loops that never pause).
            wf.draft.validate()?;
            Pinned::new(wf.id, 0, wf.draft.clone())
        }
        (false, Some(v)) => {
            let r = workflow_host::pinned(state.store.as_ref(), tenant, wf.id, v).await;
            super::referenced(r, "/version", "workflow version")?
        }
        (false, None) => {
            return Err(ValidationErrors::single(
                "/version",
                "not_published",
                "the workflow has no version yet; simulate the draft",
            )
            .into());
        }
    };
    let config = workflow_host::load_config(state.store.as_ref(), tenant).await?;
    let (mine, others): (Vec<ServiceSetup>, Vec<ServiceSetup>) =
        config.services.into_iter().partition(|s| Some(s.service.id) == input.service_id);
    let service = match (input.service_id, mine.into_iter().next()) {
        (Some(_), Some(s)) => s,
        (Some(_), None) => return Err(ApiError::unknown_reference("/service_id", "service")),
        (None, _) => placeholder_service(tenant, wf.ou_id, wf.id, state.clock.now()),
    };
    let world = simulate::World {
        tenant,
        ou: wf.ou_id,
        service,
        others,
        parameter_defaults: config.parameter_defaults,
        system_messages: config.system_messages,
        pinned,
        start: input.start_at.unwrap_or_else(|| state.clock.now()),
    };
    let script = input.script;
    // A long script is CPU work: keep it off the async workers.
    let sim = tokio::task::spawn_blocking(move || simulate::simulate(world, &script))
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(Json(sim))
}

/// Keeps simulated time where the calendar arithmetic is defined (a week's script from any
/// start in this range stays in range).
fn check_start(start: Option<OffsetDateTime>) -> ApiResult<()> {
    match start {
        Some(t) if !(2000..=9000).contains(&t.year()) => {
            Err(ValidationErrors::single("/start_at", "out_of_range", "must be between the years 2000 and 9000").into())
        }
        _ => Ok(()),
    }
}

/// A service that exists only in the simulation (no calendars, nobody else's chats).
fn placeholder_service(tenant: TenantId, ou: OrgUnitId, workflow: WorkflowId, now: OffsetDateTime) -> ServiceSetup {
    ServiceSetup {
        service: Service {
            id: ServiceId::from_uuid(Uuid::nil()),
            tenant_id: tenant,
            ou_id: ou,
            name: "Simulated service".into(),
            workflow_id: workflow,
            contact_id: String::new(),
            widget_key: String::new(),
            primary_calendar_id: None,
            secondary_calendar_id: None,
            routing: Default::default(),
            access: Default::default(),
            system_messages_id: None,
            codes: Default::default(),
            created_at: now,
        },
        primary: None,
        secondary: None,
        workflow: None,
    }
}
