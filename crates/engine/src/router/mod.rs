//! The distribution engine's decisions: which queued chat is offered to which agent, and when.
//!
//! One router holds one tenant's queues and agents and is driven by a single task, so an
//! assignment never races another: no agent exceeds its capacity and no chat is offered twice.
//! Time only enters through the `now` argument; deadlines (no answer, after-chat work, the RONA
//! flag's reset, the last agent's head start) are reported by [`Router::next_deadline`] and fired
//! by [`Input::Tick`].
//!
//! Rules (spec §4.2–4.4):
//! - Queues are per service, ordered by priority then entry time. With aging a waiting chat is
//!   worth one priority level more every `aging_secs` (a static key: entry time minus level ×
//!   aging), so a low priority waits at most a bounded time behind later high ones. Strict is
//!   always first.
//! - An agent is selectable for a service when an active member, signed in, licensed, Available
//!   (or Busy/Away where the service opts in), not in after-chat work, not flagged RONA, without
//!   a pending offer and below their own capacity; the service must be below its own capacity.
//! - A chat goes to its last agent while their head start lasts, else to its preferred users in
//!   their order, else to the agent with the fewest chats who has waited longest, ties by id.
//! - Offers run one at a time per agent and per chat; no answer within the RONA timeout puts the
//!   chat back with its place, and may flag the agent; declining puts it back. Either way the chat
//!   goes to the next eligible agent who has not passed on it. When none is free, an agent who
//!   passed on it gets it again once they are selectable and the service's `reoffer_secs` have
//!   run since they passed (0: at once), so a chat never waits for good beside a free agent.

use parley_domain::workflow::Priority;
use parley_domain::{ConversationId, PolicyLevel, Presence, ServiceId, SkillId, UserId, UserSkill};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use time::{Duration, OffsetDateTime};

mod saved;
pub use saved::{SavedAgent, SavedPhase, SavedTask};

#[cfg(test)]
mod day;
#[cfg(test)]
mod oracle;
#[cfg(test)]
mod tests;

/// Most preferred users of one chat (spec: up to 10).
pub const MAX_PREFERRED: usize = 10;
/// Handling times kept per service for the estimated wait.
const HANDLE_SAMPLES: usize = 50;
/// Assumed handling time before a service has any history.
const DEFAULT_HANDLE_SECS: i64 = 300;
/// Without aging, levels are this many seconds apart: more than any real wait.
const NO_AGING_SECS: i64 = 1_000_000_000_000;

/// A service's routing settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRules {
    /// Concurrent IM tasks (offered or connected) the service may hold, 1–50.
    pub max_tasks: u32,
    /// A waiting chat gains one priority level every this many seconds; `None`: no aging.
    pub aging_secs: Option<u32>,
    /// Seconds an agent has to answer an offer.
    pub rona_secs: u32,
    /// No answer flags the agent RONA (not selectable) until reset.
    pub persistent_rona: bool,
    /// A RONA flag clears itself after this long; `None`: only manually or by going offline.
    pub rona_reset_secs: Option<u32>,
    /// After-chat work after each chat, in seconds (0: none).
    pub acw_secs: u32,
    /// How many times an agent may extend after-chat work (each grants a fresh `acw_secs`).
    pub acw_max_extensions: u8,
    /// Agents whose presence is Busy still get this service's chats.
    pub busy_opt_in: bool,
    /// Agents whose presence is Away still get this service's chats.
    pub away_opt_in: bool,
    /// A returning customer's last agent gets their chat first, for this many seconds (0: off).
    pub last_user_secs: u32,
    /// Skill levels an agent needs, widening with the wait (empty: any member).
    pub policy: Vec<PolicyLevel>,
    /// An agent who declined or missed a chat may be offered it again this long after, when no
    /// one else can take it (0: at once).
    pub reoffer_secs: u32,
}

impl Default for ServiceRules {
    fn default() -> Self {
        Self {
            max_tasks: 50,
            aging_secs: None,
            rona_secs: 30,
            persistent_rona: false,
            rona_reset_secs: None,
            acw_secs: 0,
            acw_max_extensions: 0,
            busy_opt_in: false,
            away_opt_in: false,
            last_user_secs: 0,
            policy: Vec::new(),
            reoffer_secs: 0,
        }
    }
}

/// A chat entering a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    pub conversation: ConversationId,
    pub service: ServiceId,
    pub priority: Priority,
    /// When it first entered the queue (kept across a restart); `now` when `None`.
    pub entered_at: Option<OffsetDateTime>,
    /// Preferred users with their priority (1 = first); at most [`MAX_PREFERRED`] are used.
    pub preferred: Vec<(UserId, u8)>,
    /// The agent who served this customer last, for last-agent routing.
    pub last_user: Option<UserId>,
}

impl Arrival {
    /// A plain arrival: normal priority, no preferences.
    #[must_use]
    pub fn new(conversation: ConversationId, service: ServiceId) -> Self {
        Self {
            conversation,
            service,
            priority: Priority::Normal,
            entered_at: None,
            preferred: Vec::new(),
            last_user: None,
        }
    }

    #[must_use]
    pub fn with_priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }
}

/// Something that changes what the router may decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A service's routing settings (sent on start and whenever they change).
    ServiceUpdated {
        service: ServiceId,
        rules: ServiceRules,
    },
    /// An agent's routing-relevant settings (sent on start and whenever they change).
    AgentUpdated {
        agent: UserId,
        max_chats: u32,
        can_take_chats: bool,
    },
    /// The agent's presence as they set it.
    PresenceChanged {
        agent: UserId,
        presence: Presence,
    },
    /// Whether the agent has at least one workspace connection open (offers need a screen).
    ConnectionChanged {
        agent: UserId,
        online: bool,
    },
    /// Membership of an agent in a service, with its Active flag.
    MembershipSet {
        service: ServiceId,
        agent: UserId,
        active: bool,
    },
    MembershipRemoved {
        service: ServiceId,
        agent: UserId,
    },
    /// A chat entered its service's queue.
    Enqueue(Arrival),
    /// The chat's distribution priority changed; it keeps its entry time.
    SetPriority {
        conversation: ConversationId,
        priority: Priority,
    },
    /// The chat's queue limit passed: its workflow takes it out of the queue at its next check,
    /// so until then it is offered only to agents who have not passed on it.
    LimitReached {
        conversation: ConversationId,
    },
    /// The chat's preferred users changed (at most [`MAX_PREFERRED`], priority 1 first).
    SetPreferred {
        conversation: ConversationId,
        preferred: Vec<(UserId, u8)>,
    },
    /// Rebuild after a restart: a chat as it was saved (waiting, offered again to the same
    /// agent with a fresh deadline, or connected).
    RestoreTask {
        conversation: ConversationId,
        task: SavedTask,
    },
    /// Rebuild after a restart: an agent's RONA flag and after-chat work.
    RestoreAgent {
        agent: UserId,
        saved: SavedAgent,
    },
    /// Rebuild after a restart: a chat that was connected to an agent.
    RestoreConnected {
        conversation: ConversationId,
        service: ServiceId,
        agent: UserId,
    },
    Accept {
        conversation: ConversationId,
        agent: UserId,
    },
    Decline {
        conversation: ConversationId,
        agent: UserId,
    },
    /// The chat is over (either side ended it, the customer left, or the workflow cancelled it).
    Finish {
        conversation: ConversationId,
    },
    /// The agent ends their after-chat work early.
    EndAcw {
        agent: UserId,
    },
    /// The agent asks for more after-chat work (a fresh period, a bounded number of times).
    ExtendAcw {
        agent: UserId,
    },
    /// The agent's skills and levels (sent on start and whenever they change).
    AgentSkills {
        agent: UserId,
        skills: Vec<UserSkill>,
    },
    /// The agent (or a supervisor) clears the agent's RONA flag.
    ResetRona {
        agent: UserId,
    },
    /// The clock moved: handle every deadline due by `now`.
    Tick,
}

impl Input {
    /// The chat the input is about, if it is about one.
    #[must_use]
    pub const fn conversation(&self) -> Option<ConversationId> {
        match self {
            Self::Enqueue(a) => Some(a.conversation),
            Self::SetPriority { conversation, .. }
            | Self::LimitReached { conversation }
            | Self::SetPreferred { conversation, .. }
            | Self::RestoreTask { conversation, .. }
            | Self::RestoreConnected { conversation, .. }
            | Self::Accept { conversation, .. }
            | Self::Decline { conversation, .. }
            | Self::Finish { conversation } => Some(*conversation),
            _ => None,
        }
    }
}

/// Why a chat went back to the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    Declined,
    /// Redirect on no answer.
    NoAnswer,
    /// The agent could no longer take it (presence, sign-out, capacity, membership).
    AgentUnavailable,
}

/// What the shell must carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Offer the chat to the agent, who must answer by `deadline`.
    Offer {
        conversation: ConversationId,
        agent: UserId,
        deadline: OffsetDateTime,
    },
    /// The offer is gone (answered elsewhere, customer gone, timed out); clear it from the agent's screen.
    OfferWithdrawn {
        conversation: ConversationId,
        agent: UserId,
    },
    /// The agent's accept took effect; the chat is connected.
    Connected {
        conversation: ConversationId,
        agent: UserId,
    },
    /// The chat is waiting again, with its original place.
    Requeued {
        conversation: ConversationId,
        agent: UserId,
        reason: Requeue,
    },
    /// The agent is in after-chat work until `until` (started or extended).
    AcwStarted {
        agent: UserId,
        until: OffsetDateTime,
    },
    AcwEnded {
        agent: UserId,
    },
    /// The agent missed an offer and gets no more until the flag is reset (`until`, if timed).
    RonaFlagged {
        agent: UserId,
        until: Option<OffsetDateTime>,
    },
    RonaCleared {
        agent: UserId,
    },
    /// An input that does not match the state (stale click, other tab, nothing to extend).
    Refused {
        conversation: Option<ConversationId>,
        agent: UserId,
        reason: &'static str,
    },
}

impl Effect {
    /// The chat whose routing state the effect changed.
    #[must_use]
    pub const fn conversation(&self) -> Option<ConversationId> {
        match self {
            Self::Offer { conversation, .. }
            | Self::OfferWithdrawn { conversation, .. }
            | Self::Connected { conversation, .. }
            | Self::Requeued { conversation, .. } => Some(*conversation),
            _ => None,
        }
    }

    /// The agent whose kept state (RONA flag, after-chat work) the effect changed.
    #[must_use]
    pub const fn agent_state(&self) -> Option<UserId> {
        match self {
            Self::AcwStarted { agent, .. }
            | Self::AcwEnded { agent }
            | Self::RonaFlagged { agent, .. }
            | Self::RonaCleared { agent } => Some(*agent),
            _ => None,
        }
    }
}

/// A chat's phase in the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Queued,
    Offered,
    Connected,
}

/// Who could serve a service now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Staffing {
    /// Members signed in, active and in a presence the service accepts.
    pub present: u32,
    /// Of those, how many could be offered a chat now.
    pub free: u32,
    /// Sum of the present agents' capacities (bounded by the service's own).
    pub capacity: u32,
}

/// The inputs of an estimated wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitEstimate {
    /// Chats the present agents can hold at once.
    pub capacity: u32,
    /// Recent average handling time.
    pub average_secs: i64,
}

impl WaitEstimate {
    /// The wait of the chat at `position` (1-based): the rounds of service ahead of it.
    #[must_use]
    pub fn at(&self, position: usize) -> Duration {
        let position = i64::try_from(position).unwrap_or(i64::MAX);
        let capacity = i64::from(self.capacity.max(1));
        Duration::seconds(position.saturating_add(capacity - 1) / capacity * self.average_secs)
    }
}

/// An agent's routing state, for the workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentStatus {
    pub acw_until: Option<OffsetDateTime>,
    pub acw_extensions: u8,
    pub rona: bool,
    pub chats: usize,
}

/// The policy level that applies to a chat that entered the queue at `entered` (the last level
/// whose start has passed); `None` when the service has no policy.
fn policy_level(policy: &[PolicyLevel], entered: OffsetDateTime, now: OffsetDateTime) -> Option<&PolicyLevel> {
    let waited = (now - entered).whole_seconds();
    policy.iter().rev().find(|l| i64::from(l.after_secs) <= waited).or_else(|| policy.first())
}

/// Queue order: tier (Strict first), aged entry time, arrival number, id.
type QueueKey = (u8, i64, u64, ConversationId);
/// Free-agent order: fewest chats, longest idle, id.
type FreeKey = (usize, OffsetDateTime, UserId);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Deadline {
    Offer(ConversationId),
    Acw(UserId),
    Rona(UserId),
    LastUser(ConversationId),
    /// The chat's distribution policy widens to its next level.
    Level(ConversationId),
    /// An agent who passed on the chat may be offered it again.
    Reoffer(ConversationId),
}

#[derive(Debug, Clone)]
struct Agent {
    max_chats: u32,
    can_take_chats: bool,
    presence: Presence,
    online: bool,
    chats: BTreeSet<ConversationId>,
    offer: Option<ConversationId>,
    /// Since when the agent has had nothing to do; the longest idle is offered first.
    idle_since: OffsetDateTime,
    acw_until: Option<OffsetDateTime>,
    acw_extensions: u8,
    /// The service whose rules the current after-chat work follows.
    acw_service: Option<ServiceId>,
    /// `Some(None)`: flagged until reset by hand; `Some(Some(t))`: until `t`.
    rona: Option<Option<OffsetDateTime>>,
    /// Services the agent is a member of (active or not).
    services: BTreeSet<ServiceId>,
    skills: BTreeMap<SkillId, u8>,
    /// Free-set entries, to remove them when the agent's state changes.
    indexed: Vec<(ServiceId, FreeKey)>,
}

impl Agent {
    fn new(now: OffsetDateTime) -> Self {
        Self {
            max_chats: 1,
            can_take_chats: false,
            presence: Presence::Offline,
            online: false,
            chats: BTreeSet::new(),
            offer: None,
            idle_since: now,
            acw_until: None,
            acw_extensions: 0,
            acw_service: None,
            rona: None,
            services: BTreeSet::new(),
            skills: BTreeMap::new(),
            indexed: Vec::new(),
        }
    }

    /// Could take a new chat of a service with these rules (membership and the service's
    /// capacity are checked by the caller).
    fn selectable(&self, rules: &ServiceRules) -> bool {
        let presence_ok = match self.presence {
            Presence::Available => true,
            Presence::Busy => rules.busy_opt_in,
            Presence::Away => rules.away_opt_in,
            Presence::Offline => false,
        };
        presence_ok
            && self.online
            && self.can_take_chats
            && self.offer.is_none()
            && self.acw_until.is_none()
            && self.rona.is_none()
            && self.chats.len() < self.max_chats as usize
    }

    /// Counts as staffing the service (signed in, in an accepted presence), free or not.
    fn present(&self, rules: &ServiceRules) -> bool {
        let presence_ok = match self.presence {
            Presence::Available => true,
            Presence::Busy => rules.busy_opt_in,
            Presence::Away => rules.away_opt_in,
            Presence::Offline => false,
        };
        presence_ok && self.online && self.can_take_chats
    }

    /// Meets every requirement of the level (skill at least at its minimum level).
    fn meets(&self, level: Option<&PolicyLevel>) -> bool {
        level.is_none_or(|l| {
            l.requires.iter().all(|r| self.skills.get(&r.skill_id).is_some_and(|have| *have >= r.min_level))
        })
    }

    fn free_key(&self, id: UserId) -> FreeKey {
        (self.chats.len(), self.idle_since, id)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TaskState {
    Queued,
    Offered(UserId),
    Connected(UserId),
}

#[derive(Debug, Clone)]
struct Task {
    service: ServiceId,
    state: TaskState,
    priority: Priority,
    entered_at: OffsetDateTime,
    order: u64,
    key: QueueKey,
    /// Agents who declined or missed the chat, and when they last did: they get it again only
    /// when nobody else can take it, `reoffer_secs` later.
    declined_by: BTreeMap<UserId, OffsetDateTime>,
    /// Its queue limit passed: no more re-offers to agents who passed on it.
    past_limit: bool,
    preferred: Vec<(UserId, u8)>,
    last_user: Option<UserId>,
    /// The last agent's head start ends here.
    last_user_until: Option<OffsetDateTime>,
    offer_deadline: Option<OffsetDateTime>,
    connected_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Default)]
struct Service {
    rules: ServiceRules,
    members: BTreeMap<UserId, bool>,
    queue: BTreeSet<QueueKey>,
    free: BTreeSet<FreeKey>,
    /// Offered or connected tasks.
    active: u32,
    handle_secs: VecDeque<i64>,
    /// The last full scan found no chat the free agents could take, and nothing since could
    /// change that except the chats in `unchecked`: a dispatch then looks at those only, so a
    /// queue of unmatchable chats (skills, declines, head starts) costs nothing per input.
    settled: bool,
    unchecked: Vec<ConversationId>,
}

impl Service {
    /// Something changed that may let free agents take waiting chats: scan again.
    fn unsettle(&mut self) {
        self.settled = false;
        self.unchecked.clear();
    }

    /// A chat (new, back in the queue, or with new preferences) to look at next time.
    fn recheck(&mut self, id: ConversationId) {
        if self.settled {
            self.unchecked.push(id);
        }
    }
}

/// One tenant's routing state.
#[derive(Debug, Clone, Default)]
pub struct Router {
    agents: BTreeMap<UserId, Agent>,
    services: BTreeMap<ServiceId, Service>,
    tasks: BTreeMap<ConversationId, Task>,
    deadlines: BTreeSet<(OffsetDateTime, Deadline)>,
    next_order: u64,
}

impl Router {
    /// An empty router.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one input and returns what to do, offers last.
    pub fn handle(&mut self, input: Input, now: OffsetDateTime) -> Vec<Effect> {
        let mut effects = Vec::new();
        let mut touched = BTreeSet::new();
        self.apply(input, now, &mut effects, &mut touched);
        self.dispatch(&touched, now, &mut effects);
        effects
    }

    /// Applies several inputs that belong together (a configuration reload), then decides once:
    /// no agent gets a chat merely for being set up before another who has waited longer.
    pub fn handle_all(&mut self, inputs: Vec<Input>, now: OffsetDateTime) -> Vec<Effect> {
        let mut effects = Vec::new();
        let mut touched = BTreeSet::new();
        for input in inputs {
            self.apply(input, now, &mut effects, &mut touched);
        }
        self.dispatch(&touched, now, &mut effects);
        effects
    }

    /// The earliest deadline, for the shell to send [`Input::Tick`] at.
    #[must_use]
    pub fn next_deadline(&self) -> Option<OffsetDateTime> {
        self.deadlines.first().map(|(t, _)| *t)
    }

    // ---- queries ---------------------------------------------------------------------------

    /// Chats waiting in the queues, in the order they would be offered.
    #[must_use]
    pub fn queued(&self) -> Vec<ConversationId> {
        let mut all: Vec<QueueKey> = self.services.values().flat_map(|s| s.queue.iter().copied()).collect();
        all.sort_unstable();
        all.into_iter().map(|k| k.3).collect()
    }

    /// The agent currently offered this chat, if any.
    #[must_use]
    pub fn offered_to(&self, conversation: ConversationId) -> Option<UserId> {
        match self.tasks.get(&conversation)?.state {
            TaskState::Offered(a) => Some(a),
            _ => None,
        }
    }

    /// 1-based position of a waiting chat among the waiting chats of its service.
    #[must_use]
    pub fn position(&self, conversation: ConversationId) -> Option<usize> {
        let task = self.tasks.get(&conversation).filter(|t| t.state == TaskState::Queued)?;
        let queue = &self.services.get(&task.service)?.queue;
        Some(queue.range(..task.key).count() + 1)
    }

    /// Estimated wait of a waiting chat: its position over the service's present capacity,
    /// times the recent average handling time. `None` when nobody staffs the service.
    #[must_use]
    pub fn estimated_wait(&self, conversation: ConversationId) -> Option<Duration> {
        let position = self.position(conversation)?;
        self.estimated_wait_at(self.tasks.get(&conversation)?.service, position)
    }

    /// The estimated wait of the chat at `position` (1-based) of the service's queue.
    #[must_use]
    pub fn estimated_wait_at(&self, service: ServiceId, position: usize) -> Option<Duration> {
        self.wait_estimate(service).map(|e| e.at(position))
    }

    /// How long waits are in this service now: present capacity and recent handling time.
    /// `None` when nobody staffs it.
    #[must_use]
    pub fn wait_estimate(&self, service: ServiceId) -> Option<WaitEstimate> {
        let staffing = self.staffing(service);
        if staffing.capacity == 0 {
            return None;
        }
        let s = self.services.get(&service)?;
        let samples = i64::try_from(s.handle_secs.len()).ok()?;
        let average_secs = if samples == 0 { DEFAULT_HANDLE_SECS } else { s.handle_secs.iter().sum::<i64>() / samples };
        Some(WaitEstimate { capacity: staffing.capacity, average_secs })
    }

    /// Where a chat is: waiting, offered or connected; `None` when the router does not hold it.
    #[must_use]
    pub fn phase(&self, conversation: ConversationId) -> Option<Phase> {
        Some(match self.tasks.get(&conversation)?.state {
            TaskState::Queued => Phase::Queued,
            TaskState::Offered(_) => Phase::Offered,
            TaskState::Connected(_) => Phase::Connected,
        })
    }

    /// The chats waiting in a service, in order.
    #[must_use]
    pub fn queue_of(&self, service: ServiceId) -> Vec<ConversationId> {
        self.waiting_in(service).collect()
    }

    /// The chats waiting in a service, in order, without collecting them: enumerating it gives
    /// every chat's position in one pass ([`Self::position`] walks the queue ahead of one chat).
    pub fn waiting_in(&self, service: ServiceId) -> impl Iterator<Item = ConversationId> + '_ {
        self.services.get(&service).into_iter().flat_map(|s| s.queue.iter().map(|k| k.3))
    }

    /// Members who staff the service now, and how many of them could take a chat.
    #[must_use]
    pub fn staffing(&self, service: ServiceId) -> Staffing {
        let Some(s) = self.services.get(&service) else { return Staffing::default() };
        let mut st = Staffing::default();
        for (id, active) in &s.members {
            let Some(a) = self.agents.get(id) else { continue };
            if *active && a.present(&s.rules) {
                st.present += 1;
                st.capacity = st.capacity.saturating_add(a.max_chats);
            }
        }
        st.capacity = st.capacity.min(s.rules.max_tasks);
        st.free = if s.active < s.rules.max_tasks { u32::try_from(s.free.len()).unwrap_or(u32::MAX) } else { 0 };
        st
    }

    /// Number of chats connected to the agent.
    #[must_use]
    pub fn chats_of(&self, agent: UserId) -> usize {
        self.agents.get(&agent).map_or(0, |a| a.chats.len())
    }

    /// The agent's after-chat work, RONA flag and load.
    #[must_use]
    pub fn agent_status(&self, agent: UserId) -> Option<AgentStatus> {
        self.agents.get(&agent).map(|a| AgentStatus {
            acw_until: a.acw_until,
            acw_extensions: a.acw_extensions,
            rona: a.rona.is_some(),
            chats: a.chats.len(),
        })
    }

    /// The offer's deadline, if the chat is on offer.
    #[must_use]
    pub fn offer_deadline(&self, conversation: ConversationId) -> Option<OffsetDateTime> {
        self.tasks.get(&conversation).and_then(|t| t.offer_deadline)
    }

    // ---- inputs ----------------------------------------------------------------------------

    fn apply(
        &mut self,
        input: Input,
        now: OffsetDateTime,
        effects: &mut Vec<Effect>,
        touched: &mut BTreeSet<ServiceId>,
    ) {
        match input {
            Input::ServiceUpdated { service, rules } => {
                let s = self.services.entry(service).or_default();
                let aging_changed = s.rules.aging_secs != rules.aging_secs;
                let policy_changed = s.rules.policy != rules.policy;
                let reoffer_changed = s.rules.reoffer_secs != rules.reoffer_secs;
                s.unsettle();
                s.rules = ServiceRules { max_tasks: rules.max_tasks.max(1), ..rules };
                let members: Vec<UserId> = s.members.keys().copied().collect();
                if aging_changed {
                    self.rekey(service);
                }
                if policy_changed {
                    let waiting: Vec<(ConversationId, OffsetDateTime)> = self
                        .tasks
                        .iter()
                        .filter(|(_, t)| t.service == service)
                        .map(|(id, t)| (*id, t.entered_at))
                        .collect();
                    for (id, entered) in waiting {
                        self.schedule_levels(service, id, entered, now);
                    }
                }
                if reoffer_changed {
                    self.schedule_reoffers(service, now);
                }
                for a in members {
                    self.reindex(a);
                    self.check_offer(a, now, effects, touched);
                }
                touched.insert(service);
            }
            Input::AgentUpdated { agent, max_chats, can_take_chats } => {
                let a = self.agent_mut(agent, now);
                a.max_chats = max_chats;
                a.can_take_chats = can_take_chats;
                self.agent_changed(agent, now, effects, touched);
            }
            Input::PresenceChanged { agent, presence } => {
                let a = self.agent_mut(agent, now);
                if a.presence != Presence::Available
                    && presence == Presence::Available
                    && a.chats.is_empty()
                    && a.acw_until.is_none()
                {
                    // Time away or offline is not time spent waiting for a chat.
                    a.idle_since = now;
                }
                a.presence = presence;
                if presence == Presence::Offline && a.rona.take().is_some() {
                    effects.push(Effect::RonaCleared { agent });
                }
                self.agent_changed(agent, now, effects, touched);
            }
            Input::ConnectionChanged { agent, online } => {
                let a = self.agent_mut(agent, now);
                if online && !a.online && a.chats.is_empty() && a.acw_until.is_none() {
                    a.idle_since = now;
                }
                a.online = online;
                self.agent_changed(agent, now, effects, touched);
            }
            Input::MembershipSet { service, agent, active } => {
                self.agent_mut(agent, now).services.insert(service);
                self.services.entry(service).or_default().members.insert(agent, active);
                self.agent_changed(agent, now, effects, touched);
            }
            Input::MembershipRemoved { service, agent } => {
                if let Some(s) = self.services.get_mut(&service) {
                    s.members.remove(&agent);
                }
                if let Some(a) = self.agents.get_mut(&agent) {
                    a.services.remove(&service);
                }
                touched.insert(service);
                self.agent_changed(agent, now, effects, touched);
            }
            Input::Enqueue(arrival) => self.enqueue(arrival, now, touched),
            Input::SetPriority { conversation, priority } => {
                let Some(t) = self.tasks.get(&conversation) else { return };
                let (service, queued) = (t.service, t.state == TaskState::Queued);
                let key = self.key(service, priority, t.entered_at, t.order, conversation);
                let old = t.key;
                if let Some(t) = self.tasks.get_mut(&conversation) {
                    t.priority = priority;
                    t.key = key;
                }
                if queued && let Some(s) = self.services.get_mut(&service) {
                    s.queue.remove(&old);
                    s.queue.insert(key);
                }
                touched.insert(service);
            }
            Input::LimitReached { conversation } => {
                if let Some(t) = self.tasks.get_mut(&conversation) {
                    t.past_limit = true;
                }
            }
            Input::SetPreferred { conversation, mut preferred } => {
                let Some(t) = self.tasks.get_mut(&conversation) else { return };
                preferred.truncate(MAX_PREFERRED);
                preferred.sort_by_key(|(_, p)| *p);
                t.preferred = preferred;
                let service = t.service;
                if let Some(s) = self.services.get_mut(&service) {
                    s.recheck(conversation);
                }
                touched.insert(service);
            }
            Input::RestoreConnected { conversation, service, agent } => {
                let order = self.bump_order();
                let key = self.key(service, Priority::Normal, now, order, conversation);
                self.tasks.insert(
                    conversation,
                    Task {
                        service,
                        state: TaskState::Connected(agent),
                        priority: Priority::Normal,
                        entered_at: now,
                        order,
                        key,
                        declined_by: BTreeMap::new(),
                        past_limit: false,
                        preferred: Vec::new(),
                        last_user: None,
                        last_user_until: None,
                        offer_deadline: None,
                        connected_at: Some(now),
                    },
                );
                self.services.entry(service).or_default().active += 1;
                self.agent_mut(agent, now).chats.insert(conversation);
                self.reindex(agent);
            }
            Input::RestoreTask { conversation, task } => self.restore_task(conversation, task, now, touched),
            Input::RestoreAgent { agent, saved } => {
                self.restore_agent(agent, &saved, now);
                self.agent_changed(agent, now, effects, touched);
            }
            Input::Accept { conversation, agent } => {
                // Only a real accept changes anything: a refused one must not bring other
                // effects along (the shell drops them with the refusal).
                if self.accept(conversation, agent, now, effects) {
                    // With spare capacity the agent can be offered the next chat at once.
                    self.agent_changed(agent, now, effects, touched);
                }
            }
            Input::Decline { conversation, agent } => {
                self.take_back(conversation, agent, Requeue::Declined, now, effects, touched);
            }
            Input::Finish { conversation } => self.finish(conversation, now, effects, touched),
            Input::EndAcw { agent } => {
                if self.agents.get(&agent).is_some_and(|a| a.acw_until.is_some()) {
                    self.end_acw(agent, now, effects, touched);
                } else {
                    effects.push(Effect::Refused { conversation: None, agent, reason: "not_in_acw" });
                }
            }
            Input::ExtendAcw { agent } => self.extend_acw(agent, now, effects),
            Input::AgentSkills { agent, skills } => {
                let a = self.agent_mut(agent, now);
                a.skills = skills.iter().map(|s| (s.skill_id, s.level)).collect();
                for sid in a.services.clone() {
                    if let Some(s) = self.services.get_mut(&sid) {
                        s.unsettle();
                    }
                }
                self.agent_changed(agent, now, effects, touched);
            }
            Input::ResetRona { agent } => {
                if self.agents.get_mut(&agent).and_then(|a| a.rona.take()).is_some() {
                    effects.push(Effect::RonaCleared { agent });
                    self.agent_changed(agent, now, effects, touched);
                }
            }
            Input::Tick => self.tick(now, effects, touched),
        }
    }

    fn agent_mut(&mut self, id: UserId, now: OffsetDateTime) -> &mut Agent {
        self.agents.entry(id).or_insert_with(|| Agent::new(now))
    }

    fn bump_order(&mut self) -> u64 {
        self.next_order += 1;
        self.next_order
    }

    fn key(
        &self,
        service: ServiceId,
        priority: Priority,
        entered: OffsetDateTime,
        order: u64,
        id: ConversationId,
    ) -> QueueKey {
        let aging =
            self.services.get(&service).and_then(|s| s.rules.aging_secs).map_or(NO_AGING_SECS, |a| i64::from(a.max(1)));
        let level: i64 = match priority {
            Priority::Low => 0,
            Priority::Normal => 1,
            Priority::High => 2,
            Priority::Strict => 3,
        };
        let tier = u8::from(priority != Priority::Strict);
        (tier, entered.unix_timestamp().saturating_sub(level.saturating_mul(aging)), order, id)
    }

    /// Recomputes the queue keys of a service's chats (its aging changed), so one queue never
    /// mixes keys made under different rules.
    fn rekey(&mut self, service: ServiceId) {
        let ids: Vec<ConversationId> =
            self.tasks.iter().filter(|(_, t)| t.service == service).map(|(id, _)| *id).collect();
        let mut queue = BTreeSet::new();
        for id in ids {
            let Some(t) = self.tasks.get(&id) else { continue };
            let key = self.key(service, t.priority, t.entered_at, t.order, id);
            let queued = t.state == TaskState::Queued;
            if let Some(t) = self.tasks.get_mut(&id) {
                t.key = key;
            }
            if queued {
                queue.insert(key);
            }
        }
        if let Some(s) = self.services.get_mut(&service) {
            s.queue = queue;
        }
    }

    /// Wakes the router when the chat's distribution policy widens to a later level.
    fn schedule_levels(
        &mut self,
        service: ServiceId,
        id: ConversationId,
        entered: OffsetDateTime,
        now: OffsetDateTime,
    ) {
        let widenings: Vec<OffsetDateTime> = self
            .services
            .get(&service)
            .map(|s| {
                s.rules.policy.iter().skip(1).map(|l| entered + Duration::seconds(i64::from(l.after_secs))).collect()
            })
            .unwrap_or_default();
        for at in widenings.into_iter().filter(|at| *at > now) {
            self.deadlines.insert((at, Deadline::Level(id)));
        }
    }

    fn enqueue(&mut self, a: Arrival, now: OffsetDateTime, touched: &mut BTreeSet<ServiceId>) {
        if self.tasks.contains_key(&a.conversation) {
            return;
        }
        let order = self.bump_order();
        let entered_at = a.entered_at.unwrap_or(now);
        let key = self.key(a.service, a.priority, entered_at, order, a.conversation);
        let s = self.services.entry(a.service).or_default();
        let head_start = s.rules.last_user_secs;
        s.queue.insert(key);
        s.recheck(a.conversation);
        // A head start only for an agent who is still an active member of this service;
        // anyone else would hold the chat back for nothing.
        let last_is_member = a.last_user.is_some_and(|u| s.members.get(&u) == Some(&true));
        let last_user_until = match a.last_user {
            Some(_) if head_start > 0 && last_is_member => Some(entered_at + Duration::seconds(i64::from(head_start))),
            _ => None,
        };
        if let Some(until) = last_user_until.filter(|u| *u > now) {
            self.deadlines.insert((until, Deadline::LastUser(a.conversation)));
        }
        self.schedule_levels(a.service, a.conversation, entered_at, now);
        let mut preferred = a.preferred;
        preferred.truncate(MAX_PREFERRED);
        preferred.sort_by_key(|(_, p)| *p);
        self.tasks.insert(
            a.conversation,
            Task {
                service: a.service,
                state: TaskState::Queued,
                priority: a.priority,
                entered_at,
                order,
                key,
                declined_by: BTreeMap::new(),
                past_limit: false,
                preferred,
                last_user: a.last_user,
                last_user_until,
                offer_deadline: None,
                connected_at: None,
            },
        );
        touched.insert(a.service);
    }

    fn accept(
        &mut self,
        conversation: ConversationId,
        agent: UserId,
        now: OffsetDateTime,
        effects: &mut Vec<Effect>,
    ) -> bool {
        let Some(t) = self.tasks.get_mut(&conversation).filter(|t| t.state == TaskState::Offered(agent)) else {
            effects.push(Effect::Refused { conversation: Some(conversation), agent, reason: "offer_not_found" });
            return false;
        };
        t.state = TaskState::Connected(agent);
        // The answer came: its no-answer deadline would only wake the shell for nothing.
        if let Some(d) = t.offer_deadline.take() {
            self.deadlines.remove(&(d, Deadline::Offer(conversation)));
        }
        t.connected_at = Some(now);
        if let Some(a) = self.agents.get_mut(&agent) {
            a.offer = None;
            a.chats.insert(conversation);
        }
        self.reindex(agent);
        effects.push(Effect::Connected { conversation, agent });
        true
    }

    /// Decline, no answer, or the agent became unavailable: the chat waits again with its place.
    fn take_back(
        &mut self,
        conversation: ConversationId,
        agent: UserId,
        reason: Requeue,
        now: OffsetDateTime,
        effects: &mut Vec<Effect>,
        touched: &mut BTreeSet<ServiceId>,
    ) {
        let Some(t) = self.tasks.get_mut(&conversation).filter(|t| t.state == TaskState::Offered(agent)) else {
            effects.push(Effect::Refused { conversation: Some(conversation), agent, reason: "offer_not_found" });
            return;
        };
        t.state = TaskState::Queued;
        if let Some(d) = t.offer_deadline.take() {
            self.deadlines.remove(&(d, Deadline::Offer(conversation)));
        }
        if reason != Requeue::AgentUnavailable {
            t.declined_by.insert(agent, now);
        }
        let (service, key) = (t.service, t.key);
        let reoffer = self.rules(service).reoffer_secs;
        if reason != Requeue::AgentUnavailable && reoffer > 0 {
            self.deadlines.insert((now + Duration::seconds(i64::from(reoffer)), Deadline::Reoffer(conversation)));
        }
        if let Some(s) = self.services.get_mut(&service) {
            s.queue.insert(key);
            s.recheck(conversation);
            s.active = s.active.saturating_sub(1);
        }
        let rules = self.rules(service);
        if let Some(a) = self.agents.get_mut(&agent) {
            a.offer = None;
            if reason == Requeue::NoAnswer && rules.persistent_rona {
                let until = rules.rona_reset_secs.map(|s| now + Duration::seconds(i64::from(s)));
                a.rona = Some(until);
                if let Some(u) = until {
                    self.deadlines.insert((u, Deadline::Rona(agent)));
                }
                effects.push(Effect::RonaFlagged { agent, until });
            }
        }
        // The agent's other tabs still show the offer until told.
        effects.push(Effect::OfferWithdrawn { conversation, agent });
        effects.push(Effect::Requeued { conversation, agent, reason });
        touched.insert(service);
        // Free again (unless flagged): the agent may take a chat of any of their services.
        self.reindex(agent);
        self.touch_services_of(agent, touched);
    }

    fn finish(
        &mut self,
        conversation: ConversationId,
        now: OffsetDateTime,
        effects: &mut Vec<Effect>,
        touched: &mut BTreeSet<ServiceId>,
    ) {
        let Some(task) = self.tasks.remove(&conversation) else { return };
        if let Some(d) = task.offer_deadline {
            self.deadlines.remove(&(d, Deadline::Offer(conversation)));
        }
        let rules = self.rules(task.service);
        let Some(s) = self.services.get_mut(&task.service) else { return };
        match task.state {
            TaskState::Queued => {
                s.queue.remove(&task.key);
            }
            TaskState::Offered(agent) => {
                s.active = s.active.saturating_sub(1);
                if let Some(a) = self.agents.get_mut(&agent) {
                    a.offer = None;
                }
                self.reindex(agent);
                self.touch_services_of(agent, touched);
                effects.push(Effect::OfferWithdrawn { conversation, agent });
            }
            TaskState::Connected(agent) => {
                s.active = s.active.saturating_sub(1);
                if let Some(at) = task.connected_at {
                    s.handle_secs.push_back((now - at).whole_seconds().max(0));
                    if s.handle_secs.len() > HANDLE_SAMPLES {
                        s.handle_secs.pop_front();
                    }
                }
                if let Some(a) = self.agents.get_mut(&agent) {
                    a.chats.remove(&conversation);
                    if rules.acw_secs > 0 {
                        let until = now + Duration::seconds(i64::from(rules.acw_secs));
                        if a.acw_until.is_none() {
                            // Extensions count per period: a chat ending during one continues it.
                            a.acw_extensions = 0;
                        }
                        a.acw_until = Some(a.acw_until.map_or(until, |u| u.max(until)));
                        a.acw_service = Some(task.service);
                        let until = a.acw_until.unwrap_or(until);
                        self.deadlines.insert((until, Deadline::Acw(agent)));
                        effects.push(Effect::AcwStarted { agent, until });
                    } else if a.chats.is_empty() && a.acw_until.is_none() {
                        a.idle_since = now;
                    }
                }
                self.agent_changed(agent, now, effects, touched);
            }
        }
        touched.insert(task.service);
    }

    fn end_acw(
        &mut self,
        agent: UserId,
        now: OffsetDateTime,
        effects: &mut Vec<Effect>,
        touched: &mut BTreeSet<ServiceId>,
    ) {
        let Some(a) = self.agents.get_mut(&agent) else { return };
        a.acw_until = None;
        a.acw_extensions = 0;
        a.acw_service = None;
        if a.chats.is_empty() {
            a.idle_since = now;
        }
        effects.push(Effect::AcwEnded { agent });
        self.agent_changed(agent, now, effects, touched);
    }

    fn extend_acw(&mut self, agent: UserId, now: OffsetDateTime, effects: &mut Vec<Effect>) {
        let rules = self.agents.get(&agent).and_then(|a| a.acw_service).map(|s| self.rules(s));
        let Some(a) = self.agents.get_mut(&agent) else { return };
        match (a.acw_until, rules) {
            (Some(_), Some(r)) if a.acw_extensions < r.acw_max_extensions => {
                a.acw_extensions += 1;
                // A fresh period from now, but never shorter than what is left.
                let until = a.acw_until.map_or(now, |u| u.max(now)).max(now + Duration::seconds(i64::from(r.acw_secs)));
                a.acw_until = Some(until);
                self.deadlines.insert((until, Deadline::Acw(agent)));
                effects.push(Effect::AcwStarted { agent, until });
            }
            (Some(_), _) => effects.push(Effect::Refused { conversation: None, agent, reason: "acw_extension_limit" }),
            (None, _) => effects.push(Effect::Refused { conversation: None, agent, reason: "not_in_acw" }),
        }
    }

    fn tick(&mut self, now: OffsetDateTime, effects: &mut Vec<Effect>, touched: &mut BTreeSet<ServiceId>) {
        while let Some(&(at, what)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.remove(&(at, what));
            match what {
                Deadline::Offer(c) => {
                    let due = self.tasks.get(&c).filter(|t| t.offer_deadline == Some(at)).and_then(|t| match t.state {
                        TaskState::Offered(a) => Some(a),
                        _ => None,
                    });
                    if let Some(agent) = due {
                        // Only an offer made again after a restart can run out while its agent
                        // has no workspace open: not their miss, so no RONA for it.
                        let online = self.agents.get(&agent).is_some_and(|a| a.online);
                        let reason = if online { Requeue::NoAnswer } else { Requeue::AgentUnavailable };
                        self.take_back(c, agent, reason, now, effects, touched);
                    }
                }
                Deadline::Acw(agent) => {
                    if self.agents.get(&agent).is_some_and(|a| a.acw_until == Some(at)) {
                        self.end_acw(agent, at, effects, touched);
                    }
                }
                Deadline::Rona(agent) => {
                    if self.agents.get(&agent).is_some_and(|a| a.rona == Some(Some(at))) {
                        if let Some(a) = self.agents.get_mut(&agent) {
                            a.rona = None;
                        }
                        effects.push(Effect::RonaCleared { agent });
                        self.agent_changed(agent, now, effects, touched);
                    }
                }
                Deadline::LastUser(c) | Deadline::Level(c) | Deadline::Reoffer(c) => {
                    if let Some(service) = self.tasks.get(&c).map(|t| t.service) {
                        if let Some(s) = self.services.get_mut(&service) {
                            s.recheck(c);
                        }
                        touched.insert(service);
                    }
                }
            }
        }
    }

    /// After the service's re-offer wait changed: every pass still waiting out the new wait
    /// gets its deadline, so no chat waits past it.
    fn schedule_reoffers(&mut self, service: ServiceId, now: OffsetDateTime) {
        let wait = Duration::seconds(i64::from(self.rules(service).reoffer_secs));
        let due: Vec<(OffsetDateTime, ConversationId)> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.service == service)
            .flat_map(|(id, t)| t.declined_by.values().map(move |at| (*at + wait, *id)))
            .filter(|(at, _)| *at > now)
            .collect();
        for (at, id) in due {
            self.deadlines.insert((at, Deadline::Reoffer(id)));
        }
    }

    fn rules(&self, service: ServiceId) -> ServiceRules {
        self.services.get(&service).map(|s| s.rules.clone()).unwrap_or_default()
    }

    /// After any change to an agent: re-file them in the free sets, take back an offer they can
    /// no longer hold, and mark their services for dispatch.
    fn agent_changed(
        &mut self,
        agent: UserId,
        now: OffsetDateTime,
        effects: &mut Vec<Effect>,
        touched: &mut BTreeSet<ServiceId>,
    ) {
        self.reindex(agent);
        self.check_offer(agent, now, effects, touched);
        self.touch_services_of(agent, touched);
    }

    fn touch_services_of(&self, agent: UserId, touched: &mut BTreeSet<ServiceId>) {
        if let Some(a) = self.agents.get(&agent) {
            touched.extend(a.services.iter().copied());
        }
    }

    /// An offer stands only while the agent could still be offered that chat.
    fn check_offer(
        &mut self,
        agent: UserId,
        now: OffsetDateTime,
        effects: &mut Vec<Effect>,
        touched: &mut BTreeSet<ServiceId>,
    ) {
        let Some(a) = self.agents.get(&agent) else { return };
        let Some(c) = a.offer else { return };
        let Some(service) = self.tasks.get(&c).map(|t| t.service) else { return };
        let Some(s) = self.services.get(&service) else { return };
        let member = s.members.get(&agent).copied().unwrap_or(false);
        let still = member
            && a.present(&s.rules)
            && a.chats.len() < a.max_chats as usize
            && a.rona.is_none()
            && a.acw_until.is_none();
        if !still {
            self.take_back(c, agent, Requeue::AgentUnavailable, now, effects, touched);
        }
    }

    /// Files the agent in the free set of every service they could be offered a chat of now.
    fn reindex(&mut self, agent: UserId) {
        let Some(a) = self.agents.get_mut(&agent) else { return };
        let was_free: Vec<ServiceId> = a.indexed.iter().map(|(s, _)| *s).collect();
        for (s, key) in a.indexed.drain(..) {
            if let Some(svc) = self.services.get_mut(&s) {
                svc.free.remove(&key);
            }
        }
        let key = a.free_key(agent);
        let mut indexed = Vec::new();
        for sid in &a.services {
            let Some(s) = self.services.get_mut(sid) else { continue };
            if s.members.get(&agent) == Some(&true) && a.selectable(&s.rules) {
                s.free.insert(key);
                indexed.push((*sid, key));
                if !was_free.contains(sid) {
                    // A newly free agent may take chats nobody else could.
                    s.unsettle();
                }
            }
        }
        a.indexed = indexed;
    }

    /// The agent this queued chat would go to now, if any.
    fn pick(&self, task: &Task, service: &Service, now: OffsetDateTime) -> Option<UserId> {
        let level = policy_level(&service.rules.policy, task.entered_at, now);
        let qualifies = |id: &UserId| self.agents.get(id).is_some_and(|a| a.meets(level));
        let free = |id: &UserId| {
            self.agents.get(id).is_some_and(|a| service.free.contains(&a.free_key(*id)))
                && !task.declined_by.contains_key(id)
                && qualifies(id)
        };
        if let (Some(last), Some(until)) = (task.last_user, task.last_user_until)
            && now < until
            && !task.declined_by.contains_key(&last)
        {
            // The head start: only the last agent, or nobody yet.
            return free(&last).then_some(last);
        }
        if let Some((id, _)) = task.preferred.iter().find(|(id, _)| free(id)) {
            return Some(*id);
        }
        let fresh = service.free.iter().map(|k| k.2).find(|id| !task.declined_by.contains_key(id) && qualifies(id));
        if fresh.is_some() || task.declined_by.is_empty() || task.past_limit {
            return fresh;
        }
        // Nobody new can take it: an agent who passed on it gets it again once the wait is over.
        let wait = Duration::seconds(i64::from(service.rules.reoffer_secs));
        service
            .free
            .iter()
            .map(|k| k.2)
            .find(|id| task.declined_by.get(id).is_some_and(|at| *at + wait <= now) && qualifies(id))
    }

    /// Offers chats of the touched services while a match exists, best-ranked chat first across
    /// those services.
    fn dispatch(&mut self, touched: &BTreeSet<ServiceId>, now: OffsetDateTime, effects: &mut Vec<Effect>) {
        loop {
            let mut best: Option<(QueueKey, UserId)> = None;
            let mut settled_now = Vec::new();
            for sid in touched {
                let Some(s) = self.services.get(sid) else { continue };
                if s.active >= s.rules.max_tasks || s.free.is_empty() {
                    continue;
                }
                if s.settled {
                    // Only the chats that arrived or changed since the last full scan can match.
                    for id in &s.unchecked {
                        let Some(task) = self.tasks.get(id).filter(|t| t.state == TaskState::Queued) else { continue };
                        if best.is_some_and(|(b, _)| b < task.key) {
                            continue;
                        }
                        if let Some(agent) = self.pick(task, s, now) {
                            best = Some((task.key, agent));
                        }
                    }
                    settled_now.push(*sid);
                    continue;
                }
                let mut matched_or_cut = false;
                for key in &s.queue {
                    if best.is_some_and(|(b, _)| b < *key) {
                        matched_or_cut = true;
                        break;
                    }
                    let Some(task) = self.tasks.get(&key.3) else { continue };
                    if let Some(agent) = self.pick(task, s, now) {
                        best = Some((*key, agent));
                        matched_or_cut = true;
                        break;
                    }
                }
                if !matched_or_cut {
                    settled_now.push(*sid);
                }
            }
            let Some((key, agent)) = best else {
                // Nothing matched: every service scanned (fully or by its unchecked chats) is
                // settled against its current free agents.
                for sid in settled_now {
                    if let Some(s) = self.services.get_mut(&sid) {
                        s.settled = true;
                        s.unchecked.clear();
                    }
                }
                return;
            };
            self.offer(key.3, agent, now, effects);
        }
    }

    /// The offers a full scan of every queue would make now (none, while invariant 2 holds):
    /// for tests that check the router from outside.
    #[cfg(test)]
    pub(crate) fn pending_offers(&self, now: OffsetDateTime) -> Vec<(ConversationId, UserId)> {
        let mut r = self.clone();
        for s in r.services.values_mut() {
            s.unsettle();
        }
        let all: BTreeSet<ServiceId> = r.services.keys().copied().collect();
        let mut effects = Vec::new();
        r.dispatch(&all, now, &mut effects);
        effects
            .into_iter()
            .filter_map(|e| match e {
                Effect::Offer { conversation, agent, .. } => Some((conversation, agent)),
                _ => None,
            })
            .collect()
    }

    fn offer(&mut self, conversation: ConversationId, agent: UserId, now: OffsetDateTime, effects: &mut Vec<Effect>) {
        let Some(t) = self.tasks.get_mut(&conversation) else { return };
        let service = t.service;
        let rona = self.services.get(&service).map_or(30, |s| s.rules.rona_secs);
        let deadline = now + Duration::seconds(i64::from(rona.max(1)));
        t.state = TaskState::Offered(agent);
        t.offer_deadline = Some(deadline);
        let key = t.key;
        if let Some(s) = self.services.get_mut(&service) {
            s.queue.remove(&key);
            s.active += 1;
        }
        if let Some(a) = self.agents.get_mut(&agent) {
            a.offer = Some(conversation);
        }
        self.reindex(agent);
        self.deadlines.insert((deadline, Deadline::Offer(conversation)));
        effects.push(Effect::Offer { conversation, agent, deadline });
    }
}
