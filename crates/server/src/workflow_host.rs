//! What the tenant engine keeps per running workflow, and the [`Facts`] the interpreter asks,
//! answered from the engine's in-memory state (router, conversation, services, agents).

use parley_domain::template::{Channel, Lookup, PlaceholderKey, SystemField, Template};
use parley_domain::workflow::{ServiceTarget, WorkflowDefinition};
use parley_domain::{Conversation, Service, ServiceId, User};
use parley_engine::workflow::{Availability, Facts, Session, Status, TaskState, TraceStep};
use parley_engine::{Phase, Router};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use time::OffsetDateTime;

/// One conversation's running workflow.
#[derive(Debug)]
pub struct Run {
    /// The version the conversation started with; later edits do not affect it.
    pub definition: Arc<WorkflowDefinition>,
    pub session: Session,
    /// The wake-up the session asked for last (earlier timers for it are stale).
    pub wake_at: Option<OffsetDateTime>,
    /// When the queue limit of its Queue Task falls due.
    pub limit_at: Option<OffsetDateTime>,
    pub limit_reached: bool,
    /// Every node passed, for the admin and the simulator comparison.
    pub trace: Vec<TraceStep>,
}

impl Run {
    #[must_use]
    pub fn new(definition: Arc<WorkflowDefinition>) -> Self {
        Self {
            definition,
            session: Session::new(BTreeMap::new()),
            wake_at: None,
            limit_at: None,
            limit_reached: false,
            trace: Vec::new(),
        }
    }
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
        Self { state, node, reason, parameters: run.session.params.clone(), trace }
    }
}

/// The interpreter's view of the world for one conversation.
pub struct WorldFacts<'a> {
    pub router: &'a Router,
    pub conversation: &'a Conversation,
    pub services: &'a HashMap<ServiceId, Service>,
    /// The connected agent, if any.
    pub agent: Option<&'a User>,
    pub limit_reached: bool,
}

impl WorldFacts<'_> {
    fn service(&self, target: ServiceTarget) -> ServiceId {
        match target {
            ServiceTarget::Current => self.conversation.service_id,
            ServiceTarget::Service(s) => s,
        }
    }
}

impl Facts for WorldFacts<'_> {
    fn availability(&self, target: ServiceTarget) -> Availability {
        let s = self.router.staffing(self.service(target));
        if s.free > 0 {
            Availability::Available
        } else if s.present > 0 {
            Availability::Busy
        } else {
            Availability::Unavailable
        }
    }

    fn available_users(&self, target: ServiceTarget) -> u32 {
        self.router.staffing(self.service(target)).free
    }

    fn queue_position(&self) -> Option<u32> {
        self.router.position(self.conversation.id).and_then(|p| u32::try_from(p).ok())
    }

    fn task_state(&self) -> TaskState {
        match self.router.phase(self.conversation.id) {
            Some(Phase::Queued) if self.limit_reached => TaskState::LimitReached,
            Some(Phase::Queued) => TaskState::Queued,
            Some(Phase::Offered) => TaskState::Offering,
            Some(Phase::Connected) => TaskState::Connected,
            None => TaskState::Ended,
        }
    }

    fn opening_exit(&self) -> &'static str {
        // Services have no opening-hours calendars yet, which is the spec's `default` exit.
        "default"
    }

    fn service_exists(&self, _: ServiceId) -> bool {
        // Transfers are not carried out yet: they take the `failed` exit rather than vanish.
        false
    }

    fn render(&self, template: &str, params: &BTreeMap<String, String>) -> String {
        match Template::parse(template) {
            Ok(t) => t.render(&Values { facts: self, params }, Channel::Web),
            Err(_) => template.to_owned(),
        }
    }
}

struct Values<'a> {
    facts: &'a WorldFacts<'a>,
    params: &'a BTreeMap<String, String>,
}

impl Lookup for Values<'_> {
    fn get(&self, key: &PlaceholderKey) -> Option<String> {
        let c = self.facts.conversation;
        let service = self.facts.services.get(&c.service_id);
        match key {
            PlaceholderKey::Parameter(id) => self.params.get(id).cloned(),
            PlaceholderKey::CustomerCustomField(_) => None,
            PlaceholderKey::System(field) => match field {
                SystemField::TaskId => Some(c.id.to_string()),
                SystemField::TaskCreated => c.created_at.format(&time::format_description::well_known::Rfc3339).ok(),
                SystemField::TaskInitialMessage => c.first_message.clone(),
                SystemField::CustomerDisplayName => Some(c.customer.display_name.clone()),
                SystemField::CustomerEmail => Some(c.customer.email.clone()),
                SystemField::CustomerIdentifier => Some(c.customer.email.clone()),
                SystemField::ServiceName | SystemField::ServiceDisplayName | SystemField::ServiceInitialName => {
                    service.map(|s| s.name.clone())
                }
                SystemField::UserDisplayName => self.facts.agent.map(|u| u.display_name.clone()),
                SystemField::QueuePosition => self.facts.queue_position().map(|p| p.to_string()),
                SystemField::ServiceAvailableUsers => Some(self.facts.router.staffing(c.service_id).free.to_string()),
                _ => None,
            },
        }
    }

    fn parameter_default(&self, _: &str) -> Option<String> {
        None
    }
}
