//! Offers queued chats to agents: the longest-idle eligible agent with free capacity, one offer
//! per chat and per agent at a time.
//!
//! One router holds one tenant's queues and agents and is driven by a single task, so an
//! assignment decision never races another: no agent can exceed its capacity and no chat can be
//! offered twice. Time only enters through the `now` argument.

use parley_domain::workflow::Priority;
use parley_domain::{ConversationId, Presence, ServiceId, UserId};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use time::OffsetDateTime;

/// Something that changes what the router may decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
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
    Enqueue {
        conversation: ConversationId,
        service: ServiceId,
        priority: Priority,
    },
    /// The chat's distribution priority changed; it keeps its entry time.
    SetPriority {
        conversation: ConversationId,
        priority: Priority,
    },
    /// Rebuild after a restart: a chat that was connected to an agent.
    RestoreConnected {
        conversation: ConversationId,
        service: ServiceId,
        agent: UserId,
    },
    /// The agent accepted an offer.
    Accept {
        conversation: ConversationId,
        agent: UserId,
    },
    /// The agent declined an offer.
    Decline {
        conversation: ConversationId,
        agent: UserId,
    },
    /// The chat is over (either side ended it, or the customer left while waiting).
    Finish {
        conversation: ConversationId,
    },
}

/// What the shell must carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Offer the chat to the agent.
    Offer { conversation: ConversationId, agent: UserId },
    /// The chat left the offer (customer gone); clear it from the agent's screen.
    OfferWithdrawn { conversation: ConversationId, agent: UserId },
    /// The agent's accept took effect; the chat is connected.
    Connected { conversation: ConversationId, agent: UserId },
    /// The chat went back to the queue after a decline.
    Requeued { conversation: ConversationId },
    /// An accept or decline that does not match a live offer (stale click, other tab).
    Refused { conversation: ConversationId, agent: UserId, reason: &'static str },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Agent {
    max_chats: u32,
    can_take_chats: bool,
    presence: Presence,
    online: bool,
    chats: BTreeSet<ConversationId>,
    offer: Option<ConversationId>,
    /// When the agent last became free of chats; the longest idle is offered first.
    idle_since: OffsetDateTime,
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
    pub present: u32,
    pub free: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TaskState {
    Queued,
    Offered(UserId),
    Connected(UserId),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Task {
    service: ServiceId,
    state: TaskState,
    /// Arrival order, kept when a declined chat goes back to the queue.
    order: u64,
    priority: Priority,
    declined_by: BTreeSet<UserId>,
}

impl Task {
    /// Queue order: higher priority first (Strict > High > Normal > Low), then earlier entry.
    fn rank(&self, id: ConversationId) -> (Reverse<Priority>, u64, ConversationId) {
        (Reverse(self.priority), self.order, id)
    }
}

/// One tenant's routing state.
#[derive(Debug, Clone, Default)]
pub struct Router {
    agents: BTreeMap<UserId, Agent>,
    members: BTreeMap<ServiceId, BTreeMap<UserId, bool>>,
    tasks: BTreeMap<ConversationId, Task>,
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
        self.apply(input, now, &mut effects);
        self.dispatch(&mut effects);
        effects
    }

    /// Chats waiting in the queue, in the order they will be offered.
    #[must_use]
    pub fn queued(&self) -> Vec<ConversationId> {
        let mut q: Vec<_> = self.tasks.iter().filter(|(_, t)| t.state == TaskState::Queued).collect();
        q.sort_by_key(|(id, t)| t.rank(**id));
        q.into_iter().map(|(id, _)| *id).collect()
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
        let ahead = self
            .tasks
            .iter()
            .filter(|(id, t)| {
                t.service == task.service && t.state == TaskState::Queued && t.rank(**id) < task.rank(conversation)
            })
            .count();
        Some(ahead + 1)
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

    /// Members of the service who are signed in, active and not away (`present`), and how many
    /// of them could take a new chat now (`free`).
    #[must_use]
    pub fn staffing(&self, service: ServiceId) -> Staffing {
        let probe = Task {
            service,
            state: TaskState::Queued,
            order: 0,
            priority: Priority::Normal,
            declined_by: BTreeSet::new(),
        };
        let mut s = Staffing::default();
        for (id, active) in self.members.get(&service).into_iter().flatten() {
            let Some(a) = self.agents.get(id) else { continue };
            if *active && a.online && a.can_take_chats && a.presence != Presence::Offline {
                s.present += 1;
                if self.eligible(*id, &probe) {
                    s.free += 1;
                }
            }
        }
        s
    }

    /// Number of chats connected to the agent.
    #[must_use]
    pub fn chats_of(&self, agent: UserId) -> usize {
        self.agents.get(&agent).map_or(0, |a| a.chats.len())
    }

    fn agent_mut(&mut self, id: UserId, now: OffsetDateTime) -> &mut Agent {
        self.agents.entry(id).or_insert_with(|| Agent {
            max_chats: 1,
            can_take_chats: false,
            presence: Presence::Offline,
            online: false,
            chats: BTreeSet::new(),
            offer: None,
            idle_since: now,
        })
    }

    fn apply(&mut self, input: Input, now: OffsetDateTime, effects: &mut Vec<Effect>) {
        match input {
            Input::AgentUpdated { agent, max_chats, can_take_chats } => {
                let a = self.agent_mut(agent, now);
                a.max_chats = max_chats;
                a.can_take_chats = can_take_chats;
                if !can_take_chats || a.chats.len() >= max_chats as usize {
                    self.withdraw_offer(agent, effects);
                }
            }
            Input::PresenceChanged { agent, presence } => {
                let a = self.agent_mut(agent, now);
                if a.presence != Presence::Available && presence == Presence::Available && a.chats.is_empty() {
                    a.idle_since = now;
                }
                a.presence = presence;
                if presence != Presence::Available {
                    self.withdraw_offer(agent, effects);
                }
            }
            Input::ConnectionChanged { agent, online } => {
                let a = self.agent_mut(agent, now);
                // Time signed out is not time spent waiting for a chat.
                if online && !a.online && a.chats.is_empty() {
                    a.idle_since = now;
                }
                a.online = online;
                if !online {
                    self.withdraw_offer(agent, effects);
                }
            }
            Input::MembershipSet { service, agent, active } => {
                self.agent_mut(agent, now);
                self.members.entry(service).or_default().insert(agent, active);
            }
            Input::MembershipRemoved { service, agent } => {
                if let Some(m) = self.members.get_mut(&service) {
                    m.remove(&agent);
                }
            }
            Input::Enqueue { conversation, service, priority } => {
                let order = self.bump_order();
                let task = self.tasks.entry(conversation).or_insert(Task {
                    service,
                    state: TaskState::Queued,
                    order,
                    priority,
                    declined_by: BTreeSet::new(),
                });
                task.service = service;
                task.priority = priority;
            }
            Input::SetPriority { conversation, priority } => {
                if let Some(t) = self.tasks.get_mut(&conversation) {
                    t.priority = priority;
                }
            }
            Input::RestoreConnected { conversation, service, agent } => {
                let order = self.bump_order();
                self.tasks.insert(
                    conversation,
                    Task {
                        service,
                        state: TaskState::Connected(agent),
                        order,
                        priority: Priority::Normal,
                        declined_by: BTreeSet::new(),
                    },
                );
                self.agent_mut(agent, now).chats.insert(conversation);
            }
            Input::Accept { conversation, agent } => self.accept(conversation, agent, effects),
            Input::Decline { conversation, agent } => self.decline(conversation, agent, effects),
            Input::Finish { conversation } => self.finish(conversation, now, effects),
        }
    }

    fn bump_order(&mut self) -> u64 {
        self.next_order += 1;
        self.next_order
    }

    /// Takes back the agent's pending offer (the agent can no longer take it) and re-queues the
    /// chat with its original arrival order.
    fn withdraw_offer(&mut self, agent: UserId, effects: &mut Vec<Effect>) {
        let Some(conversation) = self.agents.get_mut(&agent).and_then(|a| a.offer.take()) else { return };
        if let Some(t) = self.tasks.get_mut(&conversation) {
            t.state = TaskState::Queued;
        }
        effects.push(Effect::OfferWithdrawn { conversation, agent });
        effects.push(Effect::Requeued { conversation });
    }

    fn accept(&mut self, conversation: ConversationId, agent: UserId, effects: &mut Vec<Effect>) {
        let offered = self.tasks.get(&conversation).is_some_and(|t| t.state == TaskState::Offered(agent));
        if !offered {
            effects.push(Effect::Refused { conversation, agent, reason: "offer_not_found" });
            return;
        }
        if let Some(t) = self.tasks.get_mut(&conversation) {
            t.state = TaskState::Connected(agent);
        }
        if let Some(a) = self.agents.get_mut(&agent) {
            a.offer = None;
            a.chats.insert(conversation);
        }
        effects.push(Effect::Connected { conversation, agent });
    }

    fn decline(&mut self, conversation: ConversationId, agent: UserId, effects: &mut Vec<Effect>) {
        let Some(t) = self.tasks.get_mut(&conversation).filter(|t| t.state == TaskState::Offered(agent)) else {
            effects.push(Effect::Refused { conversation, agent, reason: "offer_not_found" });
            return;
        };
        t.state = TaskState::Queued;
        t.declined_by.insert(agent);
        if let Some(a) = self.agents.get_mut(&agent) {
            a.offer = None;
        }
        // The agent's other tabs still show the offer until told.
        effects.push(Effect::OfferWithdrawn { conversation, agent });
        effects.push(Effect::Requeued { conversation });
    }

    fn finish(&mut self, conversation: ConversationId, now: OffsetDateTime, effects: &mut Vec<Effect>) {
        let Some(task) = self.tasks.remove(&conversation) else { return };
        match task.state {
            TaskState::Queued => {}
            TaskState::Offered(agent) => {
                if let Some(a) = self.agents.get_mut(&agent) {
                    a.offer = None;
                }
                effects.push(Effect::OfferWithdrawn { conversation, agent });
            }
            TaskState::Connected(agent) => {
                if let Some(a) = self.agents.get_mut(&agent) {
                    a.chats.remove(&conversation);
                    if a.chats.is_empty() {
                        a.idle_since = now;
                    }
                }
            }
        }
    }

    fn eligible(&self, agent_id: UserId, task: &Task) -> bool {
        let Some(a) = self.agents.get(&agent_id) else { return false };
        let active_member = self.members.get(&task.service).and_then(|m| m.get(&agent_id)).copied().unwrap_or(false);
        active_member
            && a.can_take_chats
            && a.online
            && a.presence == Presence::Available
            && a.offer.is_none()
            && a.chats.len() < a.max_chats as usize
            && !task.declined_by.contains(&agent_id)
    }

    /// The agent a chat goes to: fewest current chats, then longest idle, then lowest id.
    fn pick(&self, task: &Task) -> Option<UserId> {
        let members = self.members.get(&task.service)?;
        members
            .keys()
            .filter(|id| self.eligible(**id, task))
            .min_by_key(|id| {
                let a = &self.agents[*id];
                (a.chats.len(), a.idle_since, **id)
            })
            .copied()
    }

    fn dispatch(&mut self, effects: &mut Vec<Effect>) {
        for conversation in self.queued() {
            let Some(task) = self.tasks.get(&conversation) else { continue };
            let Some(agent) = self.pick(task) else { continue };
            if let Some(t) = self.tasks.get_mut(&conversation) {
                t.state = TaskState::Offered(agent);
            }
            if let Some(a) = self.agents.get_mut(&agent) {
                a.offer = Some(conversation);
            }
            effects.push(Effect::Offer { conversation, agent });
        }
    }
}

#[cfg(test)]
mod tests;
