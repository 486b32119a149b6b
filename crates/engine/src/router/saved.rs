//! What the router keeps across a restart: each chat's place (phase, priority, entry time, who
//! passed on it, preferences, head start) and each agent's RONA flag and after-chat work. The
//! tenant core saves these with the effects that changed them and restores them on rebuild, so
//! a restart neither forgets a decline nor fires a deadline twice.

use super::{Agent, Deadline, Effect, Router, ServiceId, Task, TaskState};
use parley_domain::ConversationId;
use parley_domain::UserId;
use parley_domain::workflow::Priority;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use time::{Duration, OffsetDateTime};

/// Where a chat stood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum SavedPhase {
    Queued,
    /// On offer: after a restart it is offered to the same agent again, with a fresh deadline.
    Offered {
        agent: UserId,
    },
    Connected {
        agent: UserId,
    },
}

/// A chat's routing state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedTask {
    pub service: ServiceId,
    #[serde(flatten)]
    pub phase: SavedPhase,
    pub priority: Priority,
    pub entered_at: OffsetDateTime,
    /// Its arrival number, which orders chats that entered in the same instant (kept, so the
    /// numbers go on rising across restarts; 0: unknown).
    #[serde(default)]
    pub order: u64,
    /// Agents who passed on it, and when.
    pub declined_by: Vec<(UserId, OffsetDateTime)>,
    pub past_limit: bool,
    pub preferred: Vec<(UserId, u8)>,
    pub last_user: Option<UserId>,
    pub last_user_until: Option<OffsetDateTime>,
    pub connected_at: Option<OffsetDateTime>,
}

/// An agent's routing state worth keeping (absent when there is none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedAgent {
    /// Flagged RONA: no offers until reset (by hand, by going offline, or at `rona_until`).
    pub rona: bool,
    pub rona_until: Option<OffsetDateTime>,
    /// In after-chat work until then.
    pub acw_until: Option<OffsetDateTime>,
    pub acw_extensions: u8,
    pub acw_service: Option<ServiceId>,
}

impl Router {
    /// The chat's routing state, if the router holds it.
    #[must_use]
    pub fn saved_task(&self, conversation: ConversationId) -> Option<SavedTask> {
        let t = self.tasks.get(&conversation)?;
        let phase = match t.state {
            TaskState::Queued => SavedPhase::Queued,
            TaskState::Offered(agent) => SavedPhase::Offered { agent },
            TaskState::Connected(agent) => SavedPhase::Connected { agent },
        };
        Some(SavedTask {
            service: t.service,
            phase,
            priority: t.priority,
            entered_at: t.entered_at,
            order: t.order,
            declined_by: t.declined_by.iter().map(|(a, at)| (*a, *at)).collect(),
            past_limit: t.past_limit,
            preferred: t.preferred.clone(),
            last_user: t.last_user,
            last_user_until: t.last_user_until,
            connected_at: t.connected_at,
        })
    }

    /// The agent's RONA flag and after-chat work; `None` when neither is set.
    #[must_use]
    pub fn saved_agent(&self, agent: UserId) -> Option<SavedAgent> {
        let a = self.agents.get(&agent)?;
        (a.rona.is_some() || a.acw_until.is_some()).then(|| SavedAgent {
            rona: a.rona.is_some(),
            rona_until: a.rona.flatten(),
            acw_until: a.acw_until,
            acw_extensions: a.acw_extensions,
            acw_service: a.acw_service,
        })
    }

    /// Puts a saved chat back: in its queue at its place, with its agent, or offered to the
    /// same agent again until `now` + the service's answer time. No effect is reported for it:
    /// the store already says where it is.
    pub(super) fn restore_task(
        &mut self,
        conversation: ConversationId,
        saved: SavedTask,
        now: OffsetDateTime,
        touched: &mut BTreeSet<ServiceId>,
    ) {
        if self.tasks.contains_key(&conversation) {
            return;
        }
        let service = saved.service;
        let order = if saved.order > 0 {
            self.next_order = self.next_order.max(saved.order);
            saved.order
        } else {
            self.bump_order()
        };
        let key = self.key(service, saved.priority, saved.entered_at, order, conversation);
        let mut task = Task {
            service,
            state: TaskState::Queued,
            priority: saved.priority,
            entered_at: saved.entered_at,
            order,
            key,
            declined_by: saved.declined_by.iter().copied().collect(),
            past_limit: saved.past_limit,
            preferred: saved.preferred,
            last_user: saved.last_user,
            last_user_until: saved.last_user_until,
            offer_deadline: None,
            connected_at: saved.connected_at,
        };
        let rules = self.rules(service);
        if let SavedPhase::Connected { agent } = saved.phase {
            task.state = TaskState::Connected(agent);
            task.connected_at = task.connected_at.or(Some(now));
            self.tasks.insert(conversation, task);
            self.services.entry(service).or_default().active += 1;
            self.agent_mut(agent, now).chats.insert(conversation);
            self.reindex(agent);
            touched.insert(service);
            return;
        }
        // Waiting: every deadline it had is due again (late ones at once).
        if let Some(until) = task.last_user_until.filter(|u| *u > now) {
            self.deadlines.insert((until, Deadline::LastUser(conversation)));
        }
        let wait = Duration::seconds(i64::from(rules.reoffer_secs));
        for at in task.declined_by.values() {
            if *at + wait > now {
                self.deadlines.insert((*at + wait, Deadline::Reoffer(conversation)));
            }
        }
        self.schedule_levels(service, conversation, saved.entered_at, now);
        self.tasks.insert(conversation, task);
        let s = self.services.entry(service).or_default();
        s.queue.insert(key);
        s.recheck(conversation);
        touched.insert(service);
        // Offered again only where the offer could still be made: a member, able to take chats,
        // not flagged, not in after-chat work, with room (being online is not asked: the
        // workspaces reconnect after a restart).
        if let SavedPhase::Offered { agent } = saved.phase
            && self.services.get(&service).is_some_and(|s| s.members.get(&agent) == Some(&true))
            && self.agents.get(&agent).is_some_and(|a| {
                a.can_take_chats
                    && a.offer.is_none()
                    && a.rona.is_none()
                    && a.acw_until.is_none()
                    && a.chats.len() < a.max_chats as usize
            })
        {
            let mut ignored = Vec::new();
            self.offer(conversation, agent, now, &mut ignored);
            debug_assert!(matches!(ignored.as_slice(), [Effect::Offer { .. }]));
        }
    }

    /// Puts back an agent's RONA flag and after-chat work; deadlines that passed while the
    /// engine was down fire on the next tick, once.
    pub(super) fn restore_agent(&mut self, agent: UserId, saved: &SavedAgent, now: OffsetDateTime) {
        let a: &mut Agent = self.agent_mut(agent, now);
        if saved.rona {
            a.rona = Some(saved.rona_until);
        }
        a.acw_until = saved.acw_until;
        a.acw_extensions = saved.acw_extensions;
        a.acw_service = saved.acw_service;
        if let Some(u) = saved.rona_until.filter(|_| saved.rona) {
            self.deadlines.insert((u, Deadline::Rona(agent)));
        }
        if let Some(u) = saved.acw_until {
            self.deadlines.insert((u, Deadline::Acw(agent)));
        }
    }
}
