//! The tenant core: everything one tenant's engine decides, as a pure state machine.
//!
//! It owns the router, the open conversations, their running workflows and their timers, handles
//! one input at a time and answers with [`Out`] effects in the order the shell must carry them out
//! (store writes, log entries, pushed frames, HTTP calls). The server's tenant engine feeds it
//! from the network and the store; the workflow simulator feeds it from a script. Both therefore
//! take exactly the same decisions, which is what makes a simulation trustworthy.

use crate::router::{self, Phase, Router};
use crate::workflow::{
    self, Availability, Facts, HttpCall, HttpOutcome, Input as WfInput, Session, TaskState, TraceStep,
};
use parley_domain::calendar::{self, Calendar};
use parley_domain::system_messages::{self, MessageFacts, SystemEvent};
use parley_domain::workflow::{Priority, ServiceTarget, WorkflowDefinition};
use parley_domain::{
    Conversation, ConversationEvent, ConversationId, ConversationStatus, EndedBy, EntryBody, Membership, Outcome,
    Presence, Sender, Service, ServiceId, User, UserId, WorkflowId,
};
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use time::OffsetDateTime;

/// Most transfers one conversation may make; more means workflows hand it around in a loop.
pub const MAX_TRANSFERS: u8 = 10;
/// Most timers one `tick` runs; the rest wait for the next call (a guard against a timer that
/// keeps re-arming itself at the same instant, which validation rules out for published
/// workflows).
const TICK_BUDGET: usize = 10_000;

/// Why a command was refused; each has a stable code for clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// There is no open offer of this chat for this agent.
    OfferNotFound,
    /// The conversation has ended (or never existed here).
    ConversationEnded,
    /// The chat is connected to someone else, or not connected at all.
    NotYourChat,
    /// The agent is not in after-chat work.
    NotInAcw,
    /// No after-chat work extension is left.
    AcwExtensionLimit,
}

/// A published workflow version, shared by every conversation that runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Pinned {
    pub workflow_id: WorkflowId,
    pub version: u32,
    pub definition: Arc<WorkflowDefinition>,
    /// The definition's patterns, compiled once for every conversation that runs it.
    pub patterns: Arc<parley_domain::pattern::Patterns>,
}

impl Pinned {
    /// A version ready to run: its patterns are compiled here, once.
    #[must_use]
    pub fn new(workflow_id: WorkflowId, version: u32, definition: WorkflowDefinition) -> Self {
        let patterns = Arc::new(parley_domain::pattern::Patterns::of(&definition));
        Self { workflow_id, version, definition: Arc::new(definition), patterns }
    }
}

/// A service as the core needs it: its settings, its calendars and the workflow version new
/// (and transferred) conversations start with.
#[derive(Debug, Clone)]
pub struct ServiceSetup {
    pub service: Service,
    pub primary: Option<Calendar>,
    pub secondary: Option<Calendar>,
    /// `None` when its workflow has no published version (then nothing can start there).
    pub workflow: Option<Pinned>,
}

/// What the shell must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    /// Persist the conversation's status, agent and end time.
    Status {
        conversation: ConversationId,
        status: ConversationStatus,
        agent: Option<UserId>,
        ended_at: Option<OffsetDateTime>,
    },
    /// Append to the conversation's log.
    Append {
        conversation: ConversationId,
        body: EntryBody,
    },
    /// Persist how the conversation ended, with what its workflow did (its run, if it had one).
    Outcome {
        conversation: ConversationId,
        outcome: Outcome,
        reason: Option<String>,
        run: Option<Box<Run>>,
    },
    /// Persist when the conversation entered its queue and its priority (for a restart).
    QueueEntry {
        conversation: ConversationId,
        queued_at: OffsetDateTime,
        priority: Priority,
    },
    /// An offer to an agent is over: record its user session.
    UserSession(UserSessionFact),
    /// The conversation's stay in a service is over: record its service session.
    ServiceSession(ServiceSessionFact),
    /// Persist the conversation's new service and workflow version.
    Transferred {
        conversation: ConversationId,
        service: ServiceId,
        workflow: WorkflowId,
        version: u32,
    },
    /// Persist and push the agent's presence.
    Presence {
        agent: UserId,
        presence: Presence,
    },
    /// Show the offer on the agent's screens until `deadline` (then it goes to someone else).
    Offer {
        agent: UserId,
        deadline: OffsetDateTime,
        conversation: Conversation,
    },
    OfferWithdrawn {
        agent: UserId,
        conversation: ConversationId,
    },
    /// Tell the waiting customer where they stand (sent only when it changed).
    Queue {
        conversation: ConversationId,
        status: QueueStatus,
    },
    /// The agent's after-chat work or RONA flag changed.
    AgentState {
        agent: UserId,
        status: router::AgentStatus,
    },
    /// The agent's chat is connected; show it.
    Chat {
        agent: UserId,
        conversation: Conversation,
    },
    /// Persist the name the customer reads for the chat's agent (set at the connection).
    AgentAlias {
        conversation: ConversationId,
        alias: String,
    },
    /// A system message for the user only (spec §5 "messages to user"), shown in the
    /// workspace beside the offer or the chat; never in the customer's log.
    Notice {
        agent: UserId,
        conversation: ConversationId,
        event: SystemEvent,
        text: String,
    },
    /// Make this call and answer with [`TenantCore::http_done`], quoting `call_id`.
    Http {
        conversation: ConversationId,
        call_id: u64,
        call: HttpCall,
    },
}

/// A finished user session (the shell gives it an id and stores it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSessionFact {
    pub conversation: ConversationId,
    /// `None` for a direct chat.
    pub service: Option<ServiceId>,
    pub user: UserId,
    pub outcome: parley_domain::UserOutcome,
    pub offered_at: OffsetDateTime,
    pub answered_at: Option<OffsetDateTime>,
    pub ended_at: OffsetDateTime,
}

/// A finished service session (the shell gives it an id and stores it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSessionFact {
    pub conversation: ConversationId,
    pub service: ServiceId,
    /// `None` when a transfer moved the conversation on.
    pub outcome: Option<Outcome>,
    pub user: Option<UserId>,
    pub started_at: OffsetDateTime,
    pub ended_at: OffsetDateTime,
    pub ivr_secs: i64,
    pub queue_secs: i64,
    pub connected_secs: i64,
    pub offers: u32,
}

/// One conversation's running workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub pinned: Pinned,
    pub session: Session,
    /// The wake-up the session asked for last (earlier timers for it are stale).
    pub wake_at: Option<OffsetDateTime>,
    /// When the queue limit of its Queue Task falls due.
    pub limit_at: Option<OffsetDateTime>,
    pub limit_reached: bool,
    /// The customer was told the queue limit passed (told once, while waiting).
    pub limit_told: bool,
    /// Priority set before the task was queued (Distribution Priority), used when it is.
    pub priority: Option<Priority>,
    /// The HTTP call the session waits for; any other answer is stale and dropped.
    pub awaiting_call: Option<u64>,
    /// Transfers made so far.
    pub transfers: u8,
    /// Every node passed, across transfers.
    pub trace: Vec<TraceStep>,
}

/// What happened to an open conversation so far, for its outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct History {
    accepted: bool,
    queued: bool,
    offered: bool,
    cancelled: bool,
    connected: bool,
}

#[derive(Debug, Clone)]
struct Live {
    conversation: Conversation,
    /// The service the chat is in now (the conversation's `service_id`, kept unwrapped: a
    /// service chat always has one).
    service: ServiceId,
    /// The service it started in (named to the customer by `initial_service_name` items); after
    /// a restart, the one it is in.
    initial_service: ServiceId,
    run: Option<Run>,
    history: History,
    stay: Stay,
    /// While connected: when the customer last wrote, and when they were warned since.
    idle: Option<Idle>,
    /// The log `seq` of the last customer text the core took (0: none known). Saved with the
    /// chat's next change, so a rebuild can give a waiting question the texts it missed.
    text_seq: i64,
}

/// A connected customer's silence.
#[derive(Debug, Clone, Copy)]
struct Idle {
    since: OffsetDateTime,
    warned_at: Option<OffsetDateTime>,
}

/// The conversation's time in its current service, for its service session.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stay {
    started_at: OffsetDateTime,
    /// When it entered the queue, and with which priority (kept for a restart).
    queued_at: Option<OffsetDateTime>,
    priority: Priority,
    /// Since when it has been waiting (`None` when not in the queue).
    waiting_since: Option<OffsetDateTime>,
    queue_secs: i64,
    offers: u32,
    /// The open offer: to whom, since when.
    offer: Option<(UserId, OffsetDateTime)>,
    /// The connection: agent, when offered, when accepted.
    connection: Option<(UserId, OffsetDateTime, OffsetDateTime)>,
    /// The agent who served this customer last (for last-agent routing when it is queued).
    last_user: Option<UserId>,
    /// Preferred users set on the task (Update Task API), applied when it is queued.
    preferred: Vec<(UserId, u8)>,
}

impl Stay {
    fn new(started_at: OffsetDateTime) -> Self {
        Self {
            started_at,
            queued_at: None,
            priority: Priority::Normal,
            waiting_since: None,
            queue_secs: 0,
            offers: 0,
            offer: None,
            connection: None,
            last_user: None,
            preferred: Vec::new(),
        }
    }

    /// Stops the queue clock.
    fn leave_queue(&mut self, now: OffsetDateTime) {
        if let Some(since) = self.waiting_since.take() {
            self.queue_secs += secs(since, now);
        }
    }
}

/// Waits are told in half minutes (rounded up): finer changes are noise to a customer and
/// would re-send every waiting customer's status on every finished chat.
const fn coarse(secs: i64) -> i64 {
    (secs + 29) / 30 * 30
}

fn secs(from: OffsetDateTime, to: OffsetDateTime) -> i64 {
    (to - from).whole_seconds().max(0)
}

/// Why a chat closed by inactivity ended, for an administrator.
const IDLE_CLOSE_REASON: &str = "the customer did not answer";

/// How long a connected customer may stay silent, and what they are told.
#[derive(Debug, Clone, Copy)]
struct IdleRules<'a> {
    warning_secs: u32,
    close_secs: u32,
    warning_text: &'a str,
}

impl<'a> IdleRules<'a> {
    const fn of(warning_secs: u32, close_secs: u32, warning_text: &'a str) -> Self {
        Self { warning_secs, close_secs, warning_text }
    }
}

/// One tenant's decisions.
#[derive(Debug, Default)]
pub struct TenantCore {
    router: Router,
    users: BTreeMap<UserId, User>,
    members: BTreeSet<(ServiceId, UserId)>,
    services: BTreeMap<ServiceId, ServiceSetup>,
    parameter_defaults: BTreeMap<String, String>,
    connections: BTreeMap<UserId, usize>,
    live: BTreeMap<ConversationId, Live>,
    /// Workflow wake-ups and queue limits, earliest first (stale entries are skipped).
    timers: BTreeSet<(OffsetDateTime, ConversationId)>,
    /// Numbers HTTP calls so each answer finds its call.
    next_call: u64,
    /// The queue position and estimated wait each waiting customer was last told, and the
    /// queue pass that last saw the chat waiting (an older pass: it no longer waits).
    told: BTreeMap<ConversationId, (QueueStatus, u64)>,
    /// Counts the queue passes of [`Self::queue_updates`].
    queue_pass: u64,
    /// The router changed since the customers were last told (read-only commands skip the pass).
    queue_dirty: bool,
    /// Inactivity warnings and closes, earliest first (stale entries are skipped).
    idle_timers: BTreeSet<(OffsetDateTime, ConversationId)>,
    /// Open direct chats (outside the router and the workflows).
    direct: BTreeMap<ConversationId, direct::Direct>,
    /// Direct-chat invitations' deadlines, earliest first (stale entries are skipped).
    invite_timers: BTreeSet<(OffsetDateTime, ConversationId)>,
    /// The system messages items services and users link.
    texts: messages::Items,
    /// Service chats and agents whose saved state this input changed (see `saved.rs`).
    dirty_chats: BTreeSet<ConversationId>,
    dirty_agents: BTreeSet<UserId>,
}

/// Where a waiting customer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueStatus {
    /// 1-based, among the chats of the same service.
    pub position: u32,
    /// `None` while nobody staffs the service.
    pub estimated_wait_secs: Option<i64>,
}

impl TenantCore {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    // ---- configuration ---------------------------------------------------------------------

    /// Replaces the users and memberships, telling the router what changed.
    pub fn set_people(&mut self, users: Vec<User>, memberships: &[Membership], now: OffsetDateTime) -> Vec<Out> {
        let mut inputs = Vec::new();
        for u in users {
            inputs.push(router::Input::AgentUpdated {
                agent: u.id,
                max_chats: u.max_chats,
                can_take_chats: u.can_take_chats(),
            });
            if self.users.get(&u.id).is_none_or(|old| old.presence != u.presence) {
                inputs.push(router::Input::PresenceChanged { agent: u.id, presence: u.presence });
            }
            self.users.insert(u.id, u);
        }
        let current: BTreeSet<_> = memberships.iter().map(|m| (m.service_id, m.user_id)).collect();
        for m in memberships {
            inputs.push(router::Input::MembershipSet { service: m.service_id, agent: m.user_id, active: m.active });
        }
        for (service, agent) in self.members.difference(&current) {
            inputs.push(router::Input::MembershipRemoved { service: *service, agent: *agent });
        }
        self.members = current;
        let mut out = Vec::new();
        self.route_all(inputs, now, &mut out);
        out
    }

    /// Adds or replaces a service's settings (running conversations keep their version).
    pub fn set_service(&mut self, setup: ServiceSetup, now: OffsetDateTime) -> Vec<Out> {
        let service = setup.service.id;
        let rules = rules_of(&setup.service.routing);
        self.services.insert(service, setup);
        let mut out = Vec::new();
        self.route(router::Input::ServiceUpdated { service, rules }, now, &mut out);
        out
    }

    /// Replaces the agents' skills (for distribution policies).
    pub fn set_skills(&mut self, skills: &[(UserId, parley_domain::UserSkill)], now: OffsetDateTime) -> Vec<Out> {
        let mut by_agent: BTreeMap<UserId, Vec<parley_domain::UserSkill>> =
            self.users.keys().map(|u| (*u, Vec::new())).collect();
        for (u, s) in skills {
            by_agent.entry(*u).or_default().push(*s);
        }
        let inputs = by_agent.into_iter().map(|(agent, skills)| router::Input::AgentSkills { agent, skills }).collect();
        let mut out = Vec::new();
        self.route_all(inputs, now, &mut out);
        out
    }

    /// The defaults every new workflow session starts with.
    pub fn set_parameter_defaults(&mut self, defaults: BTreeMap<String, String>) {
        self.parameter_defaults = defaults;
    }

    #[must_use]
    pub fn service(&self, id: ServiceId) -> Option<&ServiceSetup> {
        self.services.get(&id)
    }

    // ---- conversations ---------------------------------------------------------------------

    /// Takes back an open conversation after a restart. Workflow sessions are not kept across a
    /// restart, so a chat that was anywhere before its connection waits again in its queue.
    ///
    /// `queued` is where the chat stood in its queue (entry time and priority), when known; a
    /// chat without one waits from its creation time at Normal priority.
    pub fn restore(
        &mut self,
        conversation: Conversation,
        queued: Option<(OffsetDateTime, Priority)>,
        now: OffsetDateTime,
    ) -> Vec<Out> {
        if conversation.is_direct() {
            return self.restore_direct(conversation, now);
        }
        let mut out = Vec::new();
        let Some(service) = conversation.service_id else { return out };
        let id = conversation.id;
        let (queued_at, priority) = queued.unwrap_or((conversation.created_at, Priority::Normal));
        let input = match (conversation.status, conversation.agent_id) {
            (ConversationStatus::Connected, Some(agent)) => {
                router::Input::RestoreConnected { conversation: id, service, agent }
            }
            _ => router::Input::Enqueue(router::Arrival {
                entered_at: Some(queued_at),
                ..router::Arrival::new(id, service).with_priority(priority)
            }),
        };
        let connected = matches!(input, router::Input::RestoreConnected { .. });
        let mut conversation = conversation;
        if !connected && conversation.status != ConversationStatus::Queued {
            conversation.status = ConversationStatus::Queued;
            conversation.agent_id = None;
            out.push(Out::Status { conversation: id, status: ConversationStatus::Queued, agent: None, ended_at: None });
        }
        let history = History { accepted: true, queued: true, connected, ..History::default() };
        let mut stay = Stay::new(conversation.created_at);
        stay.queued_at = Some(queued_at);
        stay.priority = priority;
        if let (true, Some(agent)) = (connected, conversation.agent_id) {
            // When it was answered is not kept; the restart is the best lower bound.
            stay.connection = Some((agent, now, now));
        } else {
            stay.waiting_since = Some(queued_at);
        }
        let idle = connected.then_some(Idle { since: now, warned_at: None });
        let initial_service = service;
        let text_seq = 0;
        self.live.insert(id, Live { conversation, service, initial_service, run: None, history, stay, idle, text_seq });
        self.schedule_idle(id, now);
        self.route(input, now, &mut out);
        out
    }

    /// A new conversation: runs its pinned workflow version from the start.
    pub fn start(&mut self, conversation: Conversation, pinned: Pinned, now: OffsetDateTime) -> Vec<Out> {
        self.start_returning(conversation, pinned, None, now)
    }

    /// A new conversation of a returning customer, whose last agent gets a head start when the
    /// chat is queued (if the service sets one).
    pub fn start_returning(
        &mut self,
        conversation: Conversation,
        pinned: Pinned,
        last_user: Option<UserId>,
        now: OffsetDateTime,
    ) -> Vec<Out> {
        let id = conversation.id;
        let Some(service) = conversation.service_id else { return Vec::new() };
        if self.is_open(id) {
            return Vec::new();
        }
        let run = self.new_run(pinned, Vec::new());
        let mut stay = Stay::new(now);
        stay.last_user = last_user;
        let live = Live {
            conversation,
            service,
            initial_service: service,
            run: Some(run),
            history: History::default(),
            stay,
            idle: None,
            text_seq: 0,
        };
        self.live.insert(id, live);
        let mut out = Vec::new();
        self.interpret(id, WfInput::Start, now, &mut out);
        out
    }

    fn new_run(&self, pinned: Pinned, trace: Vec<TraceStep>) -> Run {
        Run {
            pinned,
            session: Session::new(self.parameter_defaults.clone()),
            wake_at: None,
            limit_at: None,
            limit_reached: false,
            limit_told: false,
            priority: None,
            awaiting_call: None,
            transfers: 0,
            trace,
        }
    }

    /// The customer's text at log position `seq` (texts at or before the last one taken are
    /// not taken again).
    pub fn customer_text_at(&mut self, id: ConversationId, seq: i64, text: String, now: OffsetDateTime) -> Vec<Out> {
        match self.live.get_mut(&id) {
            Some(l) if seq <= l.text_seq => return Vec::new(),
            Some(l) => l.text_seq = seq,
            None => {}
        }
        self.customer_text(id, text, now)
    }

    /// The customer wrote; a waiting question may take it as its answer.
    pub fn customer_text(&mut self, id: ConversationId, text: String, now: OffsetDateTime) -> Vec<Out> {
        let mut out = Vec::new();
        self.customer_active(id, now);
        if self.live.get(&id).is_some_and(|l| l.run.is_some()) {
            self.interpret(id, WfInput::CustomerText(text), now, &mut out);
        }
        out
    }

    /// The customer did something other than write text (sent a file): their silence is over,
    /// but no workflow question takes it as an answer.
    pub fn customer_active(&mut self, id: ConversationId, now: OffsetDateTime) {
        if let Some(idle) = self.idle_mut(id) {
            // Only a withdrawn warning is kept: the silence itself counts from a restart.
            let was_warned = idle.warned_at.is_some();
            *idle = Idle { since: now, warned_at: None };
            self.schedule_idle(id, now);
            if was_warned {
                self.touch(id);
            }
        }
    }

    /// A connected chat's silence clock (a service chat's or a direct one's).
    fn idle_mut(&mut self, id: ConversationId) -> Option<&mut Idle> {
        match self.live.get_mut(&id) {
            Some(l) => l.idle.as_mut(),
            None => self.direct.get_mut(&id).and_then(|d| d.idle.as_mut()),
        }
    }

    /// The inactivity rules of an open chat: its service's routing settings, or its user's
    /// personal widget's.
    fn idle_rules(&self, id: ConversationId) -> Option<(Idle, IdleRules<'_>)> {
        if let Some(l) = self.live.get(&id) {
            let r = &self.services.get(&l.service)?.service.routing;
            return Some((l.idle?, IdleRules::of(r.idle_warning_secs, r.idle_close_secs, &r.idle_warning_text)));
        }
        let d = self.direct.get(&id)?;
        let s = &self.users.get(&d.user)?.direct.settings;
        Some((d.idle?, IdleRules::of(s.idle_warning_secs, s.idle_close_secs, &s.idle_warning_text)))
    }

    /// The next inactivity deadline of a connected chat, per its settings.
    fn idle_deadline(&self, id: ConversationId) -> Option<OffsetDateTime> {
        let (idle, r) = self.idle_rules(id)?;
        match idle.warned_at {
            None if r.warning_secs > 0 => Some(idle.since + time::Duration::seconds(i64::from(r.warning_secs))),
            Some(at) if r.close_secs > 0 => Some(at + time::Duration::seconds(i64::from(r.close_secs))),
            _ => None,
        }
    }

    fn schedule_idle(&mut self, id: ConversationId, _now: OffsetDateTime) {
        if let Some(at) = self.idle_deadline(id) {
            self.idle_timers.insert((at, id));
        }
    }

    /// Warns a silent customer, then closes the chat if they stay silent.
    fn idle_due(&mut self, at: OffsetDateTime, id: ConversationId, out: &mut Vec<Out>) {
        // Stale entries (the customer wrote since, or the chat moved on) do not match.
        if self.idle_deadline(id) != Some(at) {
            return;
        }
        self.touch(id);
        // The settings hold the built-in warning; an item may say it in the customer's language.
        let fallback = self.idle_rules(id).map(|(_, r)| r.warning_text.to_owned());
        let Some(idle) = self.idle_mut(id) else { return };
        if idle.warned_at.is_none() {
            idle.warned_at = Some(at);
            self.say(id, SystemEvent::CustomerIdleWarning, None, fallback, out);
            self.schedule_idle(id, at);
        } else {
            self.say(id, SystemEvent::CustomerIdleClosed, None, None, out);
            let reason = Some(IDLE_CLOSE_REASON.to_owned());
            if self.direct.contains_key(&id) {
                if let Some(Ok(done)) = self.end_direct(id, EndedBy::System, None, reason, at) {
                    out.extend(done);
                }
                return;
            }
            self.close(id, EndedBy::System, Outcome::UserAccepted, reason, at, out);
        }
    }

    /// An HTTP call the core asked for has finished.
    /// A late answer (its wait timed out, or the workflow moved on) is dropped.
    pub fn http_done(
        &mut self,
        id: ConversationId,
        call_id: u64,
        outcome: HttpOutcome,
        now: OffsetDateTime,
    ) -> Vec<Out> {
        let mut out = Vec::new();
        let Some(run) = self.live.get_mut(&id).and_then(|l| l.run.as_mut()) else { return out };
        if run.awaiting_call != Some(call_id) {
            return out;
        }
        run.awaiting_call = None;
        self.interpret(id, WfInput::Http(outcome), now, &mut out);
        out
    }

    /// The earliest timer, for the shell to sleep until.
    #[must_use]
    pub fn next_deadline(&self) -> Option<OffsetDateTime> {
        [
            self.timers.first().map(|(t, _)| *t),
            self.router.next_deadline(),
            self.idle_timers.first().map(|(t, _)| *t),
            self.next_invite_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs every timer due at `now`.
    pub fn tick(&mut self, now: OffsetDateTime) -> Vec<Out> {
        let mut out = Vec::new();
        // Routing deadlines first (no answer, after-chat work): a workflow waking at the same
        // instant sees the chat back in the queue.
        if self.router.next_deadline().is_some_and(|t| t <= now) {
            self.route(router::Input::Tick, now, &mut out);
        }
        while let Some(&(at, id)) = self.idle_timers.first() {
            if at > now {
                break;
            }
            self.idle_timers.remove(&(at, id));
            self.idle_due(at, id, &mut out);
        }
        self.invites_due(now, &mut out);
        for _ in 0..TICK_BUDGET {
            let Some(&(at, id)) = self.timers.first() else { break };
            if at > now {
                break;
            }
            self.timers.remove(&(at, id));
            let in_router = self.router.phase(id).is_some();
            // Only a customer still waiting hears it; one offered or connected since does not.
            let waiting = self.router.phase(id) == Some(Phase::Queued);
            let Some(run) = self.live.get_mut(&id).and_then(|l| l.run.as_mut()) else { continue };
            let mut reached = false;
            if run.limit_at == Some(at) && in_router {
                run.limit_reached = true;
                self.router.handle(router::Input::LimitReached { conversation: id }, now);
                self.dirty_chats.insert(id);
                // One offered now hears it if the offer comes back (see `Requeued`).
                reached = waiting && !run.limit_told;
                run.limit_told |= reached;
            }
            let wake = run.wake_at == Some(at);
            if wake {
                run.wake_at = None;
                self.dirty_chats.insert(id);
            }
            if reached {
                self.say(id, SystemEvent::CustomerLimitReached, None, None, &mut out);
            }
            if wake {
                self.interpret(id, WfInput::Timer, at, &mut out);
            }
        }
        out
    }

    // ---- agents ----------------------------------------------------------------------------

    /// An agent's workspace connection opened or closed (offers need a screen).
    pub fn connection(&mut self, agent: UserId, opened: bool, now: OffsetDateTime) -> Vec<Out> {
        let mut out = Vec::new();
        let n = self.connections.entry(agent).or_insert(0);
        let was = *n;
        *n = if opened { n.saturating_add(1) } else { n.saturating_sub(1) };
        let online = *n > 0;
        if *n == 0 {
            self.connections.remove(&agent);
        }
        if (was > 0) != online {
            self.route(router::Input::ConnectionChanged { agent, online }, now, &mut out);
        }
        out
    }

    pub fn presence(&mut self, agent: UserId, presence: Presence, now: OffsetDateTime) -> Vec<Out> {
        let mut out = vec![Out::Presence { agent, presence }];
        if let Some(u) = self.users.get_mut(&agent) {
            u.presence = presence;
        }
        self.route(router::Input::PresenceChanged { agent, presence }, now, &mut out);
        out
    }

    /// # Errors
    /// `OfferNotFound` when the chat is not offered to this agent.
    pub fn accept(&mut self, agent: UserId, id: ConversationId, now: OffsetDateTime) -> Result<Vec<Out>, Refusal> {
        if let Some(done) = self.accept_direct(agent, id, now) {
            return done;
        }
        self.answer(router::Input::Accept { conversation: id, agent }, now)
    }

    /// # Errors
    /// `OfferNotFound` when the chat is not offered to this agent.
    pub fn decline(&mut self, agent: UserId, id: ConversationId, now: OffsetDateTime) -> Result<Vec<Out>, Refusal> {
        if let Some(done) = self.decline_direct(agent, id, now) {
            return done;
        }
        self.answer(router::Input::Decline { conversation: id, agent }, now)
    }

    fn answer(&mut self, input: router::Input, now: OffsetDateTime) -> Result<Vec<Out>, Refusal> {
        let fx = self.router.handle(input, now);
        if fx.iter().any(|e| matches!(e, router::Effect::Refused { .. })) {
            return Err(Refusal::OfferNotFound);
        }
        let mut out = Vec::new();
        self.apply_routing(fx, now, &mut out);
        Ok(out)
    }

    /// Sets the task's preferred users (at most ten, priority 1 first); they apply now if it
    /// waits, else when it is queued.
    ///
    /// # Errors
    /// `ConversationEnded` when the conversation is not open.
    pub fn set_preferred(
        &mut self,
        id: ConversationId,
        preferred: Vec<(UserId, u8)>,
        now: OffsetDateTime,
    ) -> Result<Vec<Out>, Refusal> {
        let live = self.live.get_mut(&id).ok_or(Refusal::ConversationEnded)?;
        live.stay.preferred.clone_from(&preferred);
        let mut out = Vec::new();
        self.route(router::Input::SetPreferred { conversation: id, preferred }, now, &mut out);
        Ok(out)
    }

    /// The agent ends their after-chat work early.
    ///
    /// # Errors
    /// `NotInAcw` when there is none.
    pub fn end_acw(&mut self, agent: UserId, now: OffsetDateTime) -> Result<Vec<Out>, Refusal> {
        self.agent_control(router::Input::EndAcw { agent }, now)
    }

    /// The agent takes another after-chat work period (bounded by the service's setting).
    ///
    /// # Errors
    /// `NotInAcw`, or `AcwExtensionLimit` when no extension is left.
    pub fn extend_acw(&mut self, agent: UserId, now: OffsetDateTime) -> Result<Vec<Out>, Refusal> {
        self.agent_control(router::Input::ExtendAcw { agent }, now)
    }

    /// Clears the agent's RONA flag (nothing happens when there is none).
    pub fn reset_rona(&mut self, agent: UserId, now: OffsetDateTime) -> Vec<Out> {
        let mut out = Vec::new();
        self.route(router::Input::ResetRona { agent }, now, &mut out);
        out
    }

    fn agent_control(&mut self, input: router::Input, now: OffsetDateTime) -> Result<Vec<Out>, Refusal> {
        let fx = self.router.handle(input, now);
        for e in &fx {
            if let router::Effect::Refused { reason, .. } = e {
                return Err(if *reason == "acw_extension_limit" {
                    Refusal::AcwExtensionLimit
                } else {
                    Refusal::NotInAcw
                });
            }
        }
        let mut out = Vec::new();
        self.apply_routing(fx, now, &mut out);
        Ok(out)
    }

    /// Either side ends the chat; `agent` is set when an agent asks (it must be theirs).
    ///
    /// # Errors
    /// `ConversationEnded` or `NotYourChat`.
    pub fn end(
        &mut self,
        id: ConversationId,
        by: EndedBy,
        agent: Option<UserId>,
        now: OffsetDateTime,
    ) -> Result<Vec<Out>, Refusal> {
        if let Some(done) = self.end_direct(id, by, agent, None, now) {
            return done;
        }
        let live = self.live.get(&id).ok_or(Refusal::ConversationEnded)?;
        let c = &live.conversation;
        if let Some(a) = agent
            && (c.agent_id != Some(a) || c.status != ConversationStatus::Connected)
        {
            return Err(Refusal::NotYourChat);
        }
        let outcome = match by {
            EndedBy::Customer => customer_hangup(live.history, self.router.phase(id)),
            _ if live.history.connected => Outcome::UserAccepted,
            _ => Outcome::HandledBySystem,
        };
        let mut out = Vec::new();
        self.close(id, by, outcome, None, now, &mut out);
        Ok(out)
    }

    /// What waiting customers must be told after the last inputs: every chat whose position or
    /// estimated wait changed, and the "position changed" text to those who moved. One pass over
    /// the queues, counting positions as it goes (O(waiting chats), however many moved).
    pub fn queue_updates(&mut self) -> Vec<Out> {
        let mut out = Vec::new();
        if !std::mem::take(&mut self.queue_dirty) {
            return out;
        }
        self.queue_pass = self.queue_pass.wrapping_add(1);
        let pass = self.queue_pass;
        // (service, chat, status, whether its position changed) of every chat whose status changed.
        let mut changed = Vec::new();
        for &service in self.services.keys() {
            let estimate = self.router.wait_estimate(service);
            for (i, conversation) in self.router.waiting_in(service).enumerate() {
                let position = i + 1;
                let status = QueueStatus {
                    position: u32::try_from(position).unwrap_or(u32::MAX),
                    estimated_wait_secs: estimate.map(|e| coarse(e.at(position).whole_seconds())),
                };
                match self.told.entry(conversation) {
                    Entry::Occupied(mut e) => {
                        let (before, seen) = e.get_mut();
                        *seen = pass;
                        if *before != status {
                            changed.push((service, conversation, status, before.position != status.position));
                            *before = status;
                        }
                    }
                    Entry::Vacant(e) => {
                        e.insert((status, pass));
                        changed.push((service, conversation, status, false));
                    }
                }
            }
        }
        // Chats no longer waiting are forgotten: back in a queue later, they start afresh.
        self.told.retain(|_, (_, seen)| *seen == pass);
        // The facts of the texts are counted once per service, not once per chat.
        let mut free: Option<(ServiceId, u32)> = None;
        for (service, conversation, status, moved) in changed {
            out.push(Out::Queue { conversation, status });
            if moved {
                let available_users = match free {
                    Some((s, n)) if s == service => n,
                    _ => {
                        let n = self.router.staffing(service).free;
                        free = Some((service, n));
                        n
                    }
                };
                let known =
                    messages::Known { queue_position: Some(status.position), available_users: Some(available_users) };
                self.say_known(conversation, SystemEvent::CustomerPositionChanged, known, &mut out);
            }
        }
        out
    }

    // ---- queries ---------------------------------------------------------------------------

    /// Where a waiting customer stands now; `None` when not waiting.
    #[must_use]
    pub fn queue_status(&self, id: ConversationId) -> Option<QueueStatus> {
        let position = self.router.position(id)?;
        let service = self.live.get(&id)?.service;
        Some(QueueStatus {
            position: u32::try_from(position).unwrap_or(u32::MAX),
            estimated_wait_secs: self.router.estimated_wait_at(service, position).map(|d| coarse(d.whole_seconds())),
        })
    }

    #[must_use]
    pub fn conversation(&self, id: ConversationId) -> Option<&Conversation> {
        self.live.get(&id).map(|l| &l.conversation).or_else(|| self.direct.get(&id).map(|d| &d.conversation))
    }

    /// Whether the conversation is open here (a service chat or a direct one).
    #[must_use]
    pub fn is_open(&self, id: ConversationId) -> bool {
        self.live.contains_key(&id) || self.direct.contains_key(&id) || self.router.phase(id).is_some()
    }

    /// Until when the open offer (or direct-chat invitation) of this chat may be answered.
    #[must_use]
    pub fn offer_deadline(&self, id: ConversationId) -> Option<OffsetDateTime> {
        self.direct.get(&id).map_or_else(|| self.router.offer_deadline(id), |d| d.deadline)
    }

    #[must_use]
    pub fn run(&self, id: ConversationId) -> Option<&Run> {
        self.live.get(&id).and_then(|l| l.run.as_ref())
    }

    #[must_use]
    pub fn presence_of(&self, agent: UserId) -> Presence {
        self.users.get(&agent).map_or(Presence::Offline, |u| u.presence)
    }

    /// The agent's open conversations, oldest first.
    #[must_use]
    pub fn conversations_of(&self, agent: UserId) -> Vec<&Conversation> {
        let mut v: Vec<&Conversation> = self
            .live
            .values()
            .map(|l| &l.conversation)
            .chain(self.direct.values().map(|d| &d.conversation))
            .filter(|c| c.agent_id == Some(agent))
            .collect();
        v.sort_by_key(|c| (c.created_at, c.id));
        v
    }

    #[must_use]
    pub fn service_name(&self, id: ServiceId) -> String {
        self.services.get(&id).map_or_else(String::new, |s| s.service.name.clone())
    }

    #[must_use]
    pub fn router(&self) -> &Router {
        &self.router
    }

    // ---- internals -------------------------------------------------------------------------

    fn route(&mut self, input: router::Input, now: OffsetDateTime, out: &mut Vec<Out>) {
        self.queue_dirty = true;
        if let Some(id) = input.conversation() {
            self.touch(id);
        }
        let fx = self.router.handle(input, now);
        self.apply_routing(fx, now, out);
    }

    /// A configuration reload's inputs: all applied, then one decision.
    fn route_all(&mut self, inputs: Vec<router::Input>, now: OffsetDateTime, out: &mut Vec<Out>) {
        self.queue_dirty = true;
        for id in inputs.iter().filter_map(router::Input::conversation) {
            self.touch(id);
        }
        let fx = self.router.handle_all(inputs, now);
        self.apply_routing(fx, now, out);
    }

    /// An offer ended without a connection: its user session is over.
    fn end_offer(
        &mut self,
        id: ConversationId,
        agent: UserId,
        outcome: parley_domain::UserOutcome,
        now: OffsetDateTime,
        out: &mut Vec<Out>,
    ) {
        let Some(l) = self.live.get_mut(&id) else { return };
        let Some((_, offered_at)) = l.stay.offer.take_if(|(a, _)| *a == agent) else { return };
        out.push(Out::UserSession(UserSessionFact {
            conversation: id,
            service: Some(l.service),
            user: agent,
            outcome,
            offered_at,
            answered_at: None,
            ended_at: now,
        }));
    }

    /// The stay in the current service is over (end of the conversation or a transfer out):
    /// an open offer is cancelled, a connection's user session ends, the service session is
    /// recorded.
    fn end_stay(&mut self, id: ConversationId, outcome: Option<Outcome>, now: OffsetDateTime, out: &mut Vec<Out>) {
        let Some(l) = self.live.get_mut(&id) else { return };
        let service = l.service;
        let mut next = Stay::new(now);
        // A transfer starts a new stay; the customer's last agent and the task's preferred users
        // stay with the task.
        next.last_user = l.stay.last_user;
        next.preferred.clone_from(&l.stay.preferred);
        let mut stay = std::mem::replace(&mut l.stay, next);
        if let Some((agent, offered_at)) = stay.offer.take() {
            out.push(Out::UserSession(UserSessionFact {
                conversation: id,
                service: Some(service),
                user: agent,
                outcome: parley_domain::UserOutcome::Cancelled,
                offered_at,
                answered_at: None,
                ended_at: now,
            }));
        }
        stay.leave_queue(now);
        let mut connected_secs = 0;
        if let Some((agent, offered_at, answered_at)) = stay.connection {
            connected_secs = secs(answered_at, now);
            out.push(Out::UserSession(UserSessionFact {
                conversation: id,
                service: Some(service),
                user: agent,
                outcome: parley_domain::UserOutcome::Accepted,
                offered_at,
                answered_at: Some(answered_at),
                ended_at: now,
            }));
        }
        let total = secs(stay.started_at, now);
        out.push(Out::ServiceSession(ServiceSessionFact {
            conversation: id,
            service,
            outcome,
            user: stay.connection.map(|c| c.0),
            started_at: stay.started_at,
            ended_at: now,
            ivr_secs: (total - stay.queue_secs - connected_secs).max(0),
            queue_secs: stay.queue_secs,
            connected_secs,
            offers: stay.offers,
        }));
    }

    fn apply_routing(&mut self, effects: Vec<router::Effect>, now: OffsetDateTime, out: &mut Vec<Out>) {
        for effect in effects {
            if let Some(id) = effect.conversation() {
                self.touch(id);
            }
            if let Some(agent) = effect.agent_state() {
                self.touch_agent(agent);
            }
            match effect {
                router::Effect::Offer { conversation, agent, deadline } => {
                    self.set_status(conversation, ConversationStatus::Offered, Some(agent), None, out);
                    if let Some(l) = self.live.get_mut(&conversation) {
                        l.history.offered = true;
                        l.stay.offers += 1;
                        l.stay.offer = Some((agent, now));
                        out.push(Out::Offer { agent, deadline, conversation: l.conversation.clone() });
                    }
                    self.say(conversation, SystemEvent::UserIncoming, Some(agent), None, out);
                    self.say(conversation, SystemEvent::CustomerIncoming, Some(agent), None, out);
                }
                router::Effect::OfferWithdrawn { conversation, agent } => {
                    out.push(Out::OfferWithdrawn { agent, conversation });
                }
                router::Effect::Requeued { conversation, agent, reason } => {
                    let outcome = match reason {
                        router::Requeue::Declined => parley_domain::UserOutcome::Declined,
                        router::Requeue::NoAnswer => parley_domain::UserOutcome::Rona,
                        router::Requeue::AgentUnavailable => parley_domain::UserOutcome::Withdrawn,
                    };
                    self.end_offer(conversation, agent, outcome, now, out);
                    self.set_status(conversation, ConversationStatus::Queued, None, None, out);
                    if reason == router::Requeue::NoAnswer {
                        self.say(conversation, SystemEvent::UserRona, Some(agent), None, out);
                    }
                    // Its queue limit passed while it was offered: told now that it waits again.
                    let untold = self
                        .live
                        .get_mut(&conversation)
                        .and_then(|l| l.run.as_mut())
                        .filter(|r| r.limit_reached && !r.limit_told)
                        .map(|r| r.limit_told = true)
                        .is_some();
                    if untold {
                        self.say(conversation, SystemEvent::CustomerLimitReached, None, None, out);
                    }
                }
                router::Effect::Connected { conversation, agent } => {
                    if let Some(l) = self.live.get_mut(&conversation) {
                        let offered_at = l.stay.offer.take().map_or(now, |(_, at)| at);
                        l.stay.leave_queue(now);
                        l.stay.connection = Some((agent, offered_at, now));
                        // The customer's silence counts from the moment an agent is there.
                        l.idle = Some(Idle { since: now, warned_at: None });
                    }
                    self.schedule_idle(conversation, now);
                    self.set_status(conversation, ConversationStatus::Connected, Some(agent), None, out);
                    // The customer reads the agent under the name the service's texts give.
                    let alias = self.alias(conversation, agent);
                    out.push(Out::AgentAlias { conversation, alias: alias.clone() });
                    out.push(Out::Append {
                        conversation,
                        body: EntryBody::Event {
                            event: ConversationEvent::Connected { agent_id: agent, agent_name: alias.clone() },
                        },
                    });
                    if let Some(l) = self.live.get_mut(&conversation) {
                        l.history.connected = true;
                        l.conversation.agent_alias = Some(alias);
                        out.push(Out::Chat { agent, conversation: l.conversation.clone() });
                    }
                    self.say(conversation, SystemEvent::CustomerConnected, Some(agent), None, out);
                    self.say(conversation, SystemEvent::UserAccepted, Some(agent), None, out);
                }
                router::Effect::AcwStarted { agent, .. }
                | router::Effect::AcwEnded { agent }
                | router::Effect::RonaFlagged { agent, .. }
                | router::Effect::RonaCleared { agent } => {
                    let status = self.router.agent_status(agent);
                    if let Some(status) = status {
                        out.push(Out::AgentState { agent, status });
                    }
                }
                router::Effect::Refused { .. } => {}
            }
        }
    }

    fn set_status(
        &mut self,
        id: ConversationId,
        status: ConversationStatus,
        agent: Option<UserId>,
        ended_at: Option<OffsetDateTime>,
        out: &mut Vec<Out>,
    ) {
        if let Some(l) = self.live.get_mut(&id) {
            l.conversation.status = status;
            l.conversation.agent_id = agent;
            l.conversation.ended_at = ended_at;
        }
        self.touch(id);
        out.push(Out::Status { conversation: id, status, agent, ended_at });
    }

    fn close(
        &mut self,
        id: ConversationId,
        by: EndedBy,
        outcome: Outcome,
        reason: Option<String>,
        now: OffsetDateTime,
        out: &mut Vec<Out>,
    ) {
        let Some(live) = self.live.get(&id) else { return };
        // A chat that was only offered keeps no agent; a connected one keeps its agent for history.
        let c = &live.conversation;
        let keep_agent = if c.status == ConversationStatus::Connected { c.agent_id } else { None };
        // Texts before the end (the log takes nothing after it); the user's note after it.
        let mut note = Vec::new();
        if let Some(agent) = keep_agent {
            let by_user = by == EndedBy::Agent;
            if by_user {
                self.say(id, SystemEvent::CustomerEnded, None, None, out);
            }
            let event = if by_user { SystemEvent::UserTerminated } else { SystemEvent::UserEnded };
            self.say(id, event, Some(agent), None, &mut note);
        }
        // Reporting rows go last: if writing one fails, the end itself is already recorded.
        let mut facts = Vec::new();
        self.end_stay(id, Some(outcome), now, &mut facts);
        self.route(router::Input::Finish { conversation: id }, now, out);
        // Ended first: from then on the log refuses people's messages, so none lands after `ended`.
        self.set_status(id, ConversationStatus::Ended, keep_agent, Some(now), out);
        // Recorded before the `ended` entry goes out: whoever sees the end can read the outcome.
        let run = self.live.remove(&id).and_then(|l| l.run).map(Box::new);
        out.push(Out::Outcome { conversation: id, outcome, reason, run });
        out.push(Out::Append { conversation: id, body: EntryBody::Event { event: ConversationEvent::Ended { by } } });
        out.extend(note);
        out.extend(facts);
    }

    /// Feeds one input to a conversation's workflow and carries out what it asks.
    fn interpret(&mut self, id: ConversationId, input: WfInput, now: OffsetDateTime, out: &mut Vec<Out>) {
        let mut pending = VecDeque::from([input]);
        while let Some(input) = pending.pop_front() {
            let Some(live) = self.live.get_mut(&id) else { return };
            let Some(mut run) = live.run.take() else { return };
            let facts = WorldFacts {
                now,
                router: &self.router,
                conversation: &live.conversation,
                service: live.service,
                services: &self.services,
                agent: live.conversation.agent_id.and_then(|a| self.users.get(&a)),
                limit_reached: run.limit_reached,
                parameter_defaults: &self.parameter_defaults,
            };
            let before = run.session.clone();
            let outcome =
                workflow::handle(&run.pinned.definition, &run.pinned.patterns, &mut run.session, input, now, &facts);
            // Most texts reach a workflow that is not asking (a chat waiting in its queue): then
            // nothing changed and nothing needs saving.
            let changed = !outcome.trace.is_empty() || !outcome.effects.is_empty() || run.session != before;
            run.trace.extend(outcome.trace);
            // A finished run stays (for its trace) until the conversation ends.
            live.run = Some(run);
            if changed {
                self.touch(id);
            }
            for effect in outcome.effects {
                self.workflow_effect(id, effect, now, out, &mut pending);
            }
        }
    }

    fn workflow_effect(
        &mut self,
        id: ConversationId,
        effect: workflow::Effect,
        now: OffsetDateTime,
        out: &mut Vec<Out>,
        pending: &mut VecDeque<WfInput>,
    ) {
        use workflow::Effect as Wf;
        let Some(live) = self.live.get_mut(&id) else { return };
        match effect {
            Wf::Accept => {
                live.history.accepted = true;
                out.push(Out::Append {
                    conversation: id,
                    body: EntryBody::Event { event: ConversationEvent::Accepted },
                });
            }
            Wf::Send { text } => out.push(Out::Append {
                conversation: id,
                body: EntryBody::Message { sender: Sender::System, text, attachment: None },
            }),
            Wf::Enqueue { priority, max_queue_secs } => {
                live.history.queued = true;
                let service = live.service;
                let limit = now + time::Duration::seconds(i64::from(max_queue_secs));
                let mut earlier = None;
                if let Some(run) = live.run.as_mut() {
                    run.limit_at = Some(limit);
                    run.limit_reached = false;
                    run.limit_told = false;
                    earlier = run.priority;
                }
                self.timers.insert((limit, id));
                self.set_status(id, ConversationStatus::Queued, None, None, out);
                out.push(Out::Append { conversation: id, body: EntryBody::Event { event: ConversationEvent::Queued } });
                // The Queue Task's own priority wins over one set earlier by Distribution Priority.
                let priority = priority.or(earlier).unwrap_or_default();
                if let Some(l) = self.live.get_mut(&id) {
                    l.stay.queued_at = Some(now);
                    l.stay.waiting_since = Some(now);
                    l.stay.priority = priority;
                }
                out.push(Out::QueueEntry { conversation: id, queued_at: now, priority });
                let (last_user, preferred) =
                    self.live.get(&id).map(|l| (l.stay.last_user, l.stay.preferred.clone())).unwrap_or_default();
                let arrival = router::Arrival {
                    last_user,
                    preferred,
                    ..router::Arrival::new(id, service).with_priority(priority)
                };
                self.route(router::Input::Enqueue(arrival), now, out);
                // Only a chat that waits hears it is queued (one offered at once does not).
                if self.router.phase(id) == Some(Phase::Queued) {
                    self.say(id, SystemEvent::CustomerQueued, None, None, out);
                }
            }
            Wf::SetPriority(priority) => {
                if let Some(run) = live.run.as_mut() {
                    run.priority = Some(priority);
                }
                live.stay.priority = priority;
                if let Some(queued_at) = live.stay.queued_at {
                    out.push(Out::QueueEntry { conversation: id, queued_at, priority });
                }
                self.route(router::Input::SetPriority { conversation: id, priority }, now, out);
            }
            Wf::CancelTask => {
                // Only a waiting or offered task is cancelled; a connected chat is the agent's.
                if matches!(self.router.phase(id), Some(Phase::Queued | Phase::Offered)) {
                    live.history.cancelled = true;
                    live.stay.leave_queue(now);
                    if let Some((agent, _)) = live.stay.offer {
                        self.end_offer(id, agent, parley_domain::UserOutcome::Cancelled, now, out);
                    }
                    self.route(router::Input::Finish { conversation: id }, now, out);
                    self.set_status(id, ConversationStatus::Workflow, None, None, out);
                }
            }
            Wf::Disconnect { text } => {
                // A workflow never cuts a live chat: with an agent connected it only ends itself.
                if live.conversation.status != ConversationStatus::Connected {
                    if let Some(text) = text {
                        out.push(Out::Append {
                            conversation: id,
                            body: EntryBody::Message { sender: Sender::System, text, attachment: None },
                        });
                    }
                    let h = live.history;
                    let outcome = match (h.cancelled, h.offered) {
                        (true, true) => Outcome::Abandoned,
                        (true, false) => Outcome::Cancelled,
                        _ => Outcome::HandledBySystem,
                    };
                    self.close(id, EndedBy::System, outcome, None, now, out);
                }
            }
            Wf::WakeAt(at) => {
                if let Some(run) = live.run.as_mut() {
                    run.wake_at = Some(at);
                }
                self.timers.insert((at, id));
            }
            Wf::Http(call) => {
                self.next_call += 1;
                let call_id = self.next_call;
                if let Some(run) = live.run.as_mut() {
                    run.awaiting_call = Some(call_id);
                }
                out.push(Out::Http { conversation: id, call_id, call });
            }
            Wf::Transfer { service } => self.transfer(id, service, now, out, pending),
            Wf::Failed { node, reason } => {
                let reason = format!("node '{node}': {reason}");
                if live.conversation.status == ConversationStatus::Connected {
                    // The agent keeps the chat; only the workflow is over.
                    return;
                }
                self.close(id, EndedBy::System, Outcome::Failed, Some(reason), now, out);
            }
            // Told where the workflow checked, so it comes between what was said before and after.
            Wf::Closed => self.say(id, SystemEvent::CustomerClosedHours, None, None, out),
            // Parameters live in the session.
            Wf::SetParameter { .. } | Wf::Finished => {}
        }
    }

    /// Moves the conversation to `service`, whose current workflow takes over from its start
    /// with the parameters gathered so far: one conversation across services.
    fn transfer(
        &mut self,
        id: ConversationId,
        service: ServiceId,
        now: OffsetDateTime,
        out: &mut Vec<Out>,
        pending: &mut VecDeque<WfInput>,
    ) {
        let target = self.services.get(&service).and_then(|s| s.workflow.clone());
        let Some(live) = self.live.get_mut(&id) else { return };
        // The interpreter only transfers when the target exists and the chat is not connected
        // (see `service_exists`), so these guards are for a configuration changed in between.
        let Some(pinned) = target else { return };
        if live.conversation.status == ConversationStatus::Connected {
            return;
        }
        let transfers = live.run.as_ref().map_or(0, |r| r.transfers);
        if transfers >= MAX_TRANSFERS {
            let reason = format!("more than {MAX_TRANSFERS} transfers: the workflows hand the chat around in a loop");
            pending.clear();
            self.close(id, EndedBy::System, Outcome::Failed, Some(reason), now, out);
            return;
        }
        if live.run.is_none() {
            return;
        }
        // The stay in the old service ends here (its outcome: transferred on).
        self.end_stay(id, None, now, out);
        let Some(live) = self.live.get_mut(&id) else { return };
        let Some(old) = live.run.take() else { return };
        let from = live.service;
        live.service = service;
        live.conversation.service_id = Some(service);
        live.conversation.workflow_id = Some(pinned.workflow_id);
        live.conversation.workflow_version = Some(pinned.version);
        let run = Run {
            pinned: pinned.clone(),
            session: Session::new(old.session.params),
            wake_at: None,
            limit_at: None,
            limit_reached: false,
            limit_told: false,
            priority: None,
            awaiting_call: None,
            transfers: transfers + 1,
            trace: old.trace,
        };
        live.run = Some(run);
        // The target service's session starts afresh (its outcome rules look at it alone).
        live.history.queued = false;
        live.history.cancelled = false;
        live.history.offered = false;
        if self.router.phase(id).is_some() {
            self.route(router::Input::Finish { conversation: id }, now, out);
        }
        self.set_status(id, ConversationStatus::Workflow, None, None, out);
        out.push(Out::Transferred { conversation: id, service, workflow: pinned.workflow_id, version: pinned.version });
        out.push(Out::Append {
            conversation: id,
            body: EntryBody::Event {
                event: ConversationEvent::Transferred { from_service: from, to_service: service },
            },
        });
        self.say(id, SystemEvent::CustomerTransferred, None, None, out);
        // Whatever the old workflow still had pending is dropped with it; the new one starts.
        pending.clear();
        pending.push_back(WfInput::Start);
    }
}

/// The router's view of a service's settings.
fn rules_of(r: &parley_domain::RoutingSettings) -> router::ServiceRules {
    router::ServiceRules {
        max_tasks: r.max_tasks,
        aging_secs: r.aging_secs,
        rona_secs: r.rona_secs,
        persistent_rona: r.persistent_rona,
        rona_reset_secs: r.rona_reset_secs,
        acw_secs: r.acw_secs,
        acw_max_extensions: r.acw_max_extensions,
        busy_opt_in: r.busy_opt_in,
        away_opt_in: r.away_opt_in,
        last_user_secs: r.last_user_secs,
        policy: r.policy.clone(),
        reoffer_secs: r.reoffer_secs,
    }
}

fn customer_hangup(h: History, phase: Option<Phase>) -> Outcome {
    match phase {
        Some(Phase::Connected) => Outcome::UserAccepted,
        Some(_) => Outcome::CustomerHangupInQueue,
        None if h.connected => Outcome::UserAccepted,
        None if !h.accepted => Outcome::CustomerHangupBeforeAccept,
        None if h.queued => Outcome::CustomerHangupInIvrAfterQueue,
        None => Outcome::CustomerHangupInIvr,
    }
}

/// The interpreter's view of the world for one conversation.
struct WorldFacts<'a> {
    now: OffsetDateTime,
    router: &'a Router,
    conversation: &'a Conversation,
    /// The service the conversation is in.
    service: ServiceId,
    services: &'a BTreeMap<ServiceId, ServiceSetup>,
    agent: Option<&'a User>,
    limit_reached: bool,
    parameter_defaults: &'a BTreeMap<String, String>,
}

impl WorldFacts<'_> {
    fn service(&self, target: ServiceTarget) -> ServiceId {
        match target {
            ServiceTarget::Current => self.service,
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
        let Some(s) = self.services.get(&self.service) else {
            return calendar::OpeningState::Default.exit_name();
        };
        calendar::resolve(s.primary.as_ref(), s.secondary.as_ref(), self.now).exit_name()
    }

    /// A transfer target: a service with a published workflow, and never for a connected chat
    /// (the agent has it; the Transfer takes `failed`).
    fn service_exists(&self, service: ServiceId) -> bool {
        self.conversation.status != ConversationStatus::Connected
            && self.services.get(&service).is_some_and(|s| s.workflow.is_some())
    }

    fn render(&self, template: &str, params: &BTreeMap<String, String>) -> String {
        // The same facts as the system messages, named as the workflow sees them (the service
        // it is in; no display-name settings apply to a workflow's own texts).
        let service = self.services.get(&self.service).map(|s| s.service.name.as_str());
        let facts = MessageFacts {
            conversation: self.conversation,
            service_name: service,
            service_display_name: service,
            initial_service_name: service,
            user_name: self.agent.map(|u| u.display_name.as_str()),
            queue_position: self.queue_position(),
            available_users: Some(self.router.staffing(self.service).free),
            parameters: Some(params),
            parameter_defaults: Some(self.parameter_defaults),
        };
        system_messages::render(template, &facts)
    }
}

mod direct;
mod messages;
mod saved;
pub use saved::{SavedChat, SavedRun, Saves};
#[cfg(test)]
mod tests;
