//! What the tenant engine loads from the store for the tenant core (services with their
//! calendars and current workflow versions, parameter defaults, people, system messages), and how a workflow run
//! is shown to an administrator.

use parley_domain::calendar::Calendar;
use parley_domain::{CalendarId, Membership, TenantId, User, WorkflowId};
use parley_engine::tenant::{Pinned, Run, ServiceSetup};
use parley_engine::workflow::Status;
use parley_store::{Store, StoreError};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// A tenant's configuration as the core needs it.
pub struct TenantConfig {
    pub services: Vec<ServiceSetup>,
    pub parameter_defaults: BTreeMap<String, String>,
    /// The parameters themselves (their names, for the agent's view of a chat).
    pub parameters: Vec<parley_domain::CustomParameter>,
    pub users: Vec<User>,
    pub memberships: Vec<Membership>,
    pub skills: Vec<(parley_domain::UserId, parley_domain::UserSkill)>,
    pub system_messages: Vec<parley_domain::SystemMessages>,
}

/// Reads everything the core needs about the tenant's configuration.
///
/// # Errors
/// Store failures.
pub async fn load_config(store: &dyn Store, tenant: TenantId) -> Result<TenantConfig, StoreError> {
    let calendars: HashMap<CalendarId, Calendar> =
        store.list_calendars(tenant).await?.into_iter().map(|c| (c.id, c.calendar)).collect();
    let mut versions: HashMap<WorkflowId, Option<Pinned>> = HashMap::new();
    for w in store.list_workflows(tenant).await? {
        let pinned = match w.current_version {
            Some(v) => Some(pinned(store, tenant, w.id, v).await?),
            None => None,
        };
        versions.insert(w.id, pinned);
    }
    let services = store
        .list_services(tenant)
        .await?
        .into_iter()
        .map(|s| ServiceSetup {
            primary: s.primary_calendar_id.and_then(|c| calendars.get(&c).cloned()),
            secondary: s.secondary_calendar_id.and_then(|c| calendars.get(&c).cloned()),
            workflow: versions.get(&s.workflow_id).cloned().flatten(),
            service: s,
        })
        .collect();
    let parameters = store.list_parameters(tenant).await?;
    let parameter_defaults = parameters.iter().map(|p| (p.id.clone(), p.default_value.clone())).collect();
    Ok(TenantConfig {
        services,
        parameter_defaults,
        parameters,
        users: store.list_users(tenant).await?,
        memberships: store.list_memberships(tenant).await?,
        skills: store.list_user_skills(tenant).await?,
        system_messages: store.list_system_messages(tenant).await?,
    })
}

/// One published version, ready to run.
///
/// # Errors
/// `NotFound` for an unknown version, store failures.
pub async fn pinned(
    store: &dyn Store,
    tenant: TenantId,
    workflow: WorkflowId,
    version: u32,
) -> Result<Pinned, StoreError> {
    let v = store.get_workflow_version(tenant, workflow, version).await?;
    Ok(Pinned::new(workflow, version, v.definition))
}

/// A workflow run as the admin API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WorkflowRunView {
    /// `not_started`, `waiting`, `finished` or `failed`.
    pub state: &'static str,
    /// The node it waits at or failed at.
    pub node: Option<String>,
    /// Why it failed, for an administrator.
    pub reason: Option<String>,
    /// The workflow and version it runs (after a transfer, the target service's).
    pub workflow_id: WorkflowId,
    pub workflow_version: u32,
    pub parameters: BTreeMap<String, String>,
    pub trace: Vec<TraceStepView>,
}

/// One node passed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TraceStepView {
    pub node: String,
    pub kind: String,
    pub exit: Option<String>,
}

impl WorkflowRunView {
    #[must_use]
    pub fn of(run: &Run) -> Self {
        let (state, node, reason) = match &run.session.status {
            Status::NotStarted => ("not_started", None, None),
            Status::Waiting { node, .. } => ("waiting", Some(node.clone()), None),
            Status::Finished => ("finished", None, None),
            Status::Failed { node, reason } => ("failed", Some(node.clone()), Some(reason.clone())),
        };
        let trace = run
            .trace
            .iter()
            .map(|t| TraceStepView { node: t.node.clone(), kind: t.kind.clone(), exit: t.exit.clone() })
            .collect();
        Self {
            state,
            node,
            reason,
            workflow_id: run.pinned.workflow_id,
            workflow_version: run.pinned.version,
            parameters: run.session.params.clone(),
            trace,
        }
    }
}
