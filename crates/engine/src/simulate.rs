//! The workflow simulator: runs one workflow version against a script (customer inputs, agent
//! availability, HTTP answers, a clock) in a private [`TenantCore`] and reports what happened.
//!
//! It drives the very core the live engine drives, with simulated agents in place of people and
//! scripted answers in place of the network, so for the same script it passes the same nodes
//! and sends the same messages as a live conversation. It touches no live data: the caller
//! hands in copies of the configuration it needs.

use crate::tenant::{Out, Pinned, ServiceSetup, TenantCore};
use crate::workflow::{HttpOutcome, Status, TraceStep};
use parley_domain::{
    Conversation, ConversationEvent, ConversationId, ConversationStatus, Customer, DirectChat, EndedBy, EntryBody,
    Licence, Membership, OrgUnitId, Outcome, Presence, Sender, ServiceId, TenantId, User, UserId,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use time::{Duration, OffsetDateTime};
use utoipa::ToSchema;
use uuid::Uuid;

/// Most simulated agents a script may ask for.
pub const MAX_AGENTS: u32 = 50;
/// Most steps in one script.
pub const MAX_STEPS: usize = 500;
/// Longest simulated time span (a week).
pub const MAX_SPAN_SECS: u32 = 7 * 24 * 3600;
/// Most core decisions one simulation may take; a workflow past it is reported as cut short.
const MAX_ROUNDS: usize = 20_000;

/// What happens, and when, in a simulated conversation.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// The customer's pre-chat form; a placeholder customer when absent.
    #[serde(default)]
    pub customer: Option<SimCustomer>,
    /// Simulated agents of the service who are available from the start.
    #[serde(default)]
    pub agents: u32,
    /// Simulated agents accept every offer at once (default), or let it stand.
    #[serde(default = "yes")]
    pub accept_offers: bool,
    /// Answers to the workflow's HTTP requests, in the order they are made; a request with no
    /// answer left fails.
    #[serde(default)]
    pub http: Vec<SimHttp>,
    /// Inputs at offsets from the start, applied in time order.
    #[serde(default)]
    pub steps: Vec<Step>,
    /// How long to go on after the start (default: an hour); timers due by then fire.
    #[serde(default = "default_span")]
    pub run_for_secs: u32,
}

const fn yes() -> bool {
    true
}
const fn default_span() -> u32 {
    3600
}

/// The simulated customer.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimCustomer {
    pub display_name: String,
    pub email: String,
    #[serde(default)]
    pub first_message: Option<String>,
    /// The browser's language (e.g. `de-CH`), which picks the system messages' variant.
    #[serde(default)]
    pub language: Option<String>,
}

/// One scripted input.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Seconds after the start.
    pub at_secs: u32,
    pub action: Action,
}

/// What a step does.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// The customer writes.
    CustomerText { text: String },
    /// From now on this many simulated agents are available (the others are offline).
    Agents { available: u32 },
    /// The customer closes the chat.
    CustomerLeaves,
    /// The connected agent ends the chat.
    AgentEnds,
}

/// A scripted answer to an HTTP request.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SimHttp {
    Response {
        status: u16,
        #[serde(default)]
        body: serde_json::Value,
    },
    Failure {
        reason: String,
    },
}

/// A problem with the script itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptError {
    pub path: String,
    pub code: &'static str,
    pub message: String,
}

impl Script {
    /// Checks the limits that keep a simulation small.
    ///
    /// # Errors
    /// Every broken rule, with its field path.
    pub fn validate(&self) -> Result<(), Vec<ScriptError>> {
        let mut e = Vec::new();
        let mut err = |path: String, code, message: String| e.push(ScriptError { path, code, message });
        if self.agents > MAX_AGENTS {
            err("/agents".into(), "too_many", format!("at most {MAX_AGENTS} simulated agents"));
        }
        if self.steps.len() > MAX_STEPS {
            err("/steps".into(), "too_many", format!("at most {MAX_STEPS} steps"));
        }
        if self.run_for_secs > MAX_SPAN_SECS {
            err("/run_for_secs".into(), "too_long", format!("at most {MAX_SPAN_SECS} seconds"));
        }
        let language = self.customer.as_ref().and_then(|c| c.language.as_deref());
        if language.is_some_and(|l| parley_domain::system_messages::normalize_language(l).is_none()) {
            err("/customer/language".into(), "invalid_language", "a language tag such as en, de or pt-BR".into());
        }
        for (i, s) in self.steps.iter().enumerate() {
            if s.at_secs > self.run_for_secs {
                err(format!("/steps/{i}/at_secs"), "after_end", "must not be after run_for_secs".into());
            }
            if let Action::Agents { available } = s.action
                && available > MAX_AGENTS
            {
                err(format!("/steps/{i}/action/available"), "too_many", format!("at most {MAX_AGENTS}"));
            }
        }
        if e.is_empty() { Ok(()) } else { Err(e) }
    }
}

/// Where the simulated conversation ended up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SimState {
    /// The workflow waits (for time past the span, or for the customer).
    Waiting,
    /// The workflow has nothing more to do; the chat goes on (e.g. connected).
    Finished,
    /// The conversation ended.
    Ended,
}

/// What a simulation did.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Simulation {
    pub state: SimState,
    /// Every node passed with the exit it took, in order.
    pub trace: Vec<SimTraceStep>,
    /// What was written to the conversation, in order, with the simulated time.
    pub log: Vec<SimEntry>,
    pub outcome: Option<Outcome>,
    /// Why the workflow failed, for an administrator.
    pub reason: Option<String>,
    pub parameters: BTreeMap<String, String>,
    /// The simulation hit its decision budget (a workflow that never rests).
    pub cut_short: bool,
}

/// One node passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SimTraceStep {
    pub node: String,
    pub kind: String,
    pub exit: Option<String>,
}

impl From<TraceStep> for SimTraceStep {
    fn from(t: TraceStep) -> Self {
        Self { node: t.node, kind: t.kind, exit: t.exit }
    }
}

/// One entry written to the simulated conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SimEntry {
    pub at_secs: i64,
    #[serde(flatten)]
    pub what: SimWhat,
}

/// A message or an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SimWhat {
    /// A message from the system (the workflow), the customer or the agent.
    Message { sender: String, text: String },
    /// `accepted`, `queued`, `connected`, `transferred` or `ended`.
    Event { event: String },
}

/// The configuration a simulation runs against (copies; nothing is written back).
#[derive(Debug, Clone)]
pub struct World {
    pub tenant: TenantId,
    pub ou: OrgUnitId,
    /// The service the conversation arrives at; its workflow is replaced by `pinned`.
    pub service: ServiceSetup,
    /// Other services, for transfers and availability questions (nobody staffs them).
    pub others: Vec<ServiceSetup>,
    pub parameter_defaults: BTreeMap<String, String>,
    /// The tenant's system messages items (the services link theirs).
    pub system_messages: Vec<parley_domain::SystemMessages>,
    pub pinned: Pinned,
    pub start: OffsetDateTime,
}

/// The simulated conversation's id (a fixed value: nothing else lives in the private core).
#[must_use]
pub fn conversation_id() -> ConversationId {
    ConversationId::from_uuid(Uuid::from_u128(1))
}

fn agent_id(n: u32) -> UserId {
    UserId::from_uuid(Uuid::from_u128(0x5157_0000 + u128::from(n)))
}

/// Runs the script. The script must have passed [`Script::validate`].
#[must_use]
pub fn simulate(world: World, script: &Script) -> Simulation {
    Sim::new(world, script).run(script)
}

struct Sim {
    core: TenantCore,
    start: OffsetDateTime,
    now: OffsetDateTime,
    service: ServiceId,
    agents: u32,
    accept_offers: bool,
    http: VecDeque<SimHttp>,
    log: Vec<SimEntry>,
    outcome: Option<(Outcome, Option<String>, Vec<TraceStep>)>,
    /// The parameters as last seen (the run is gone once the conversation ends).
    parameters: BTreeMap<String, String>,
    rounds: usize,
}

impl Sim {
    fn new(world: World, script: &Script) -> Self {
        let mut core = TenantCore::new();
        let service = world.service.service.id;
        // Nobody is staffed yet, so configuring services offers nothing.
        for s in world.others {
            let _ = core.set_service(s, world.start);
        }
        let mut setup = world.service;
        setup.workflow = Some(world.pinned.clone());
        let _ = core.set_service(setup, world.start);
        core.set_parameter_defaults(world.parameter_defaults);
        core.set_system_messages(world.system_messages);
        let mut sim = Self {
            core,
            start: world.start,
            now: world.start,
            service,
            agents: 0,
            accept_offers: script.accept_offers,
            http: script.http.iter().cloned().collect(),
            log: Vec::new(),
            outcome: None,
            parameters: BTreeMap::new(),
            rounds: 0,
        };
        sim.staff(world.tenant, world.ou, script.agents);
        let customer = script.customer.clone().unwrap_or(SimCustomer {
            display_name: "Simulated customer".into(),
            email: "customer@example.invalid".into(),
            first_message: None,
            language: None,
        });
        let conversation = Conversation {
            id: conversation_id(),
            tenant_id: world.tenant,
            service_id: Some(service),
            workflow_id: Some(world.pinned.workflow_id),
            workflow_version: Some(world.pinned.version),
            direct_user_id: None,
            status: ConversationStatus::Workflow,
            customer: Customer {
                display_name: customer.display_name,
                email: customer.email,
                privacy_consent: true,
                language: customer.language.as_deref().and_then(parley_domain::system_messages::normalize_language),
            },
            first_message: customer.first_message,
            agent_id: None,
            last_seq: 0,
            created_at: world.start,
            ended_at: None,
            outcome: None,
            outcome_reason: None,
            agent_alias: None,
            wrap_up: None,
        };
        let out = sim.core.start(conversation, world.pinned, world.start);
        sim.process(out);
        sim
    }

    /// Makes `available` simulated agents available and the others offline, creating them as
    /// needed.
    fn staff(&mut self, tenant: TenantId, ou: OrgUnitId, available: u32) {
        if available > self.agents {
            let users: Vec<User> = (self.agents..available)
                .map(|n| User {
                    id: agent_id(n),
                    tenant_id: tenant,
                    ou_id: ou,
                    display_name: format!("Simulated agent {}", n + 1),
                    email: format!("agent{}@example.invalid", n + 1),
                    licences: vec![Licence::InstantMessaging],
                    im_enabled: true,
                    max_chats: 1,
                    presence: Presence::Offline,
                    direct: DirectChat::new(format!("sim-agent-{n}"), "simulated"),
                    created_at: self.start,
                })
                .collect();
            let members: Vec<Membership> = (0..available)
                .map(|n| Membership { service_id: self.service, user_id: agent_id(n), active: true })
                .collect();
            let out = self.core.set_people(users, &members, self.now);
            self.process(out);
            for n in self.agents..available {
                let out = self.core.connection(agent_id(n), true, self.now);
                self.process(out);
            }
            self.agents = available;
        }
        for n in 0..self.agents {
            let presence = if n < available { Presence::Available } else { Presence::Offline };
            if self.core.presence_of(agent_id(n)) != presence {
                let out = self.core.presence(agent_id(n), presence, self.now);
                self.process(out);
            }
        }
    }

    fn run(mut self, script: &Script) -> Simulation {
        let (tenant, ou) = (self.tenant(), self.ou());
        let mut steps: Vec<&Step> = script.steps.iter().collect();
        steps.sort_by_key(|s| s.at_secs);
        for step in steps {
            self.advance_to(self.start + Duration::seconds(i64::from(step.at_secs)));
            if self.over() {
                break;
            }
            let id = conversation_id();
            let out = match &step.action {
                Action::CustomerText { text } => {
                    let name = self.core.conversation(id).map(|c| c.customer.display_name.clone()).unwrap_or_default();
                    self.log_entry(EntryBody::Message {
                        sender: Sender::Customer { name },
                        text: text.clone(),
                        attachment: None,
                    });
                    self.core.customer_text(id, text.clone(), self.now)
                }
                Action::Agents { available } => {
                    self.staff(tenant, ou, *available);
                    Vec::new()
                }
                Action::CustomerLeaves => self.core.end(id, EndedBy::Customer, None, self.now).unwrap_or_default(),
                Action::AgentEnds => {
                    // Like a live agent: only the connected agent can end the chat.
                    let connected = self.core.conversation(id).filter(|c| c.status == ConversationStatus::Connected);
                    match connected.and_then(|c| c.agent_id) {
                        Some(agent) => self.core.end(id, EndedBy::Agent, Some(agent), self.now).unwrap_or_default(),
                        None => Vec::new(),
                    }
                }
            };
            self.process(out);
        }
        self.advance_to(self.start + Duration::seconds(i64::from(script.run_for_secs)));
        self.report()
    }

    fn tenant(&self) -> TenantId {
        self.core.service(self.service).map_or(TenantId::from_uuid(Uuid::nil()), |s| s.service.tenant_id)
    }

    fn ou(&self) -> OrgUnitId {
        self.core.service(self.service).map_or(OrgUnitId::from_uuid(Uuid::nil()), |s| s.service.ou_id)
    }

    fn over(&self) -> bool {
        self.outcome.is_some() || self.rounds >= MAX_ROUNDS
    }

    /// Fires every timer due up to `until`, each at its own time, then sets the clock there.
    fn advance_to(&mut self, until: OffsetDateTime) {
        while !self.over() {
            match self.core.next_deadline() {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    let out = self.core.tick(t);
                    self.process(out);
                }
                _ => break,
            }
        }
        self.now = self.now.max(until);
    }

    /// Plays the simulated world's part in what the core decided.
    fn process(&mut self, out: Vec<Out>) {
        let mut queue = VecDeque::from(out);
        while let Some(o) = queue.pop_front() {
            self.rounds += 1;
            if self.rounds >= MAX_ROUNDS {
                return;
            }
            match o {
                Out::Append { body, .. } => self.log_entry(body),
                Out::Offer { agent, conversation, .. } if self.accept_offers => {
                    queue.extend(self.core.accept(agent, conversation.id, self.now).unwrap_or_default());
                }
                Out::Http { conversation, call_id, .. } => {
                    let outcome = match self.http.pop_front() {
                        Some(SimHttp::Response { status, body }) => HttpOutcome::Response { status, body },
                        Some(SimHttp::Failure { reason }) => HttpOutcome::Failed(reason),
                        None => HttpOutcome::Failed("the script has no answer for this request".into()),
                    };
                    queue.extend(self.core.http_done(conversation, call_id, outcome, self.now));
                }
                Out::Outcome { outcome, reason, run, .. } => {
                    let (trace, parameters) = run.map(|r| (r.trace, r.session.params)).unwrap_or_default();
                    self.parameters = parameters;
                    self.outcome = Some((outcome, reason, trace));
                }
                Out::Status { .. }
                | Out::Transferred { .. }
                | Out::Presence { .. }
                | Out::Offer { .. }
                | Out::AgentState { .. }
                | Out::Queue { .. }
                | Out::QueueEntry { .. }
                | Out::UserSession(_)
                | Out::ServiceSession(_)
                | Out::OfferWithdrawn { .. }
                | Out::Chat { .. }
                | Out::AgentAlias { .. }
                | Out::Notice { .. } => {}
            }
            if let Some(run) = self.core.run(conversation_id()) {
                self.parameters.clone_from(&run.session.params);
            }
        }
    }

    fn log_entry(&mut self, body: EntryBody) {
        let what = match body {
            EntryBody::Message { sender, text, .. } => SimWhat::Message { sender: sender_name(&sender).into(), text },
            EntryBody::Event { event } => SimWhat::Event { event: event_name(&event).into() },
        };
        self.log.push(SimEntry { at_secs: (self.now - self.start).whole_seconds(), what });
    }

    fn report(self) -> Simulation {
        let cut_short = self.rounds >= MAX_ROUNDS;
        let run = self.core.run(conversation_id());
        let parameters = self.parameters;
        let (state, outcome, reason, trace) = match self.outcome {
            Some((outcome, reason, trace)) => (SimState::Ended, Some(outcome), reason, trace),
            None => {
                let state = match run.map(|r| &r.session.status) {
                    Some(Status::Finished) => SimState::Finished,
                    _ => SimState::Waiting,
                };
                (state, None, None, run.map(|r| r.trace.clone()).unwrap_or_default())
            }
        };
        Simulation {
            state,
            trace: trace.into_iter().map(SimTraceStep::from).collect(),
            log: self.log,
            outcome,
            reason,
            parameters,
            cut_short,
        }
    }
}

const fn sender_name(s: &Sender) -> &'static str {
    match s {
        Sender::System => "system",
        Sender::Customer { .. } => "customer",
        Sender::Agent { .. } => "agent",
    }
}

/// The event's name as the log's JSON spells it.
#[must_use]
pub const fn event_name(e: &ConversationEvent) -> &'static str {
    match e {
        ConversationEvent::Accepted => "accepted",
        ConversationEvent::Queued => "queued",
        ConversationEvent::Invited { .. } => "invited",
        ConversationEvent::Connected { .. } => "connected",
        ConversationEvent::Transferred { .. } => "transferred",
        ConversationEvent::Ended { .. } => "ended",
    }
}

#[cfg(test)]
mod tests;
