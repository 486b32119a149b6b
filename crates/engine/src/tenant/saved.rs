//! What the tenant core keeps of each open service chat and each agent across a restart, and
//! how it takes them back.
//!
//! After every input the core knows which chats and agents it changed (`dirty`); the shell asks
//! for their saved state ([`TenantCore::take_saves`]) and commits it in the same transaction as
//! the input's other effects. A rebuild reads the saves back: each chat resumes its workflow at
//! the node it waited on, with its parameters, retries, timers and transfers, keeps its place,
//! priority, declines and head start in the queue, an offered chat is offered to the same agent
//! again with a fresh deadline, and an agent keeps their RONA flag and after-chat work. A timer
//! that fell due while the engine was down fires once on the first tick.
//!
//! Not kept, on purpose: what waiting customers were last told (they hear their place again),
//! the agents' idle time (it counts from their reconnection), a connected customer's silence
//! before a warning (it counts from the restart, so a warning can come late but never early), and
//! an HTTP call in flight (its wait times out and takes the failure exit).

use super::{History, Idle, Live, Out, Pinned, Run, Stay, TenantCore};
use crate::router::{self, SavedAgent, SavedTask};
use crate::workflow::{Session, TraceStep};
use parley_domain::workflow::Priority;
use parley_domain::{Conversation, ConversationId, ConversationStatus, ServiceId, UserId, WorkflowId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// An open service chat as the core holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedChat {
    pub initial_service: ServiceId,
    pub run: Option<SavedRun>,
    pub history: History,
    pub stay: Stay,
    /// The inactivity warning went out then (the close follows from it).
    pub idle_warned_at: Option<OffsetDateTime>,
    /// Its place in the router, while it has one.
    pub task: Option<SavedTask>,
    /// The log `seq` of the last customer text taken (texts after it are given to a question
    /// still waiting after a restart).
    #[serde(default)]
    pub text_seq: i64,
}

/// A chat's workflow run: the version it runs and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedRun {
    pub workflow_id: WorkflowId,
    pub version: u32,
    pub session: Session,
    pub wake_at: Option<OffsetDateTime>,
    pub limit_at: Option<OffsetDateTime>,
    pub limit_reached: bool,
    pub limit_told: bool,
    pub priority: Option<Priority>,
    pub transfers: u8,
    pub trace: Vec<TraceStep>,
}

/// What changed since the last call: the state to keep (`None`: forget it, the chat ended or
/// the agent has nothing to keep).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Saves {
    pub chats: Vec<(ConversationId, Option<SavedChat>)>,
    pub agents: Vec<(UserId, Option<SavedAgent>)>,
}

impl SavedRun {
    fn of(run: &Run) -> Self {
        Self {
            workflow_id: run.pinned.workflow_id,
            version: run.pinned.version,
            session: run.session.clone(),
            wake_at: run.wake_at,
            limit_at: run.limit_at,
            limit_reached: run.limit_reached,
            limit_told: run.limit_told,
            priority: run.priority,
            transfers: run.transfers,
            trace: run.trace.clone(),
        }
    }

    fn into_run(self, pinned: Pinned) -> Run {
        Run {
            pinned,
            session: self.session,
            wake_at: self.wake_at,
            limit_at: self.limit_at,
            limit_reached: self.limit_reached,
            limit_told: self.limit_told,
            priority: self.priority,
            // The call died with the process; the wait's own timeout takes it on.
            awaiting_call: None,
            transfers: self.transfers,
            trace: self.trace,
        }
    }
}

impl TenantCore {
    /// A service chat's state changed in this input: save it with the input's effects.
    pub(super) fn touch(&mut self, id: ConversationId) {
        if self.live.contains_key(&id) {
            self.dirty_chats.insert(id);
        }
    }

    /// An agent's routing state may have changed.
    pub(super) fn touch_agent(&mut self, agent: UserId) {
        self.dirty_agents.insert(agent);
    }

    /// The state of an open service chat, as it would be saved now.
    #[must_use]
    pub fn saved_chat(&self, id: ConversationId) -> Option<SavedChat> {
        let l = self.live.get(&id)?;
        Some(SavedChat {
            initial_service: l.initial_service,
            run: l.run.as_ref().map(SavedRun::of),
            history: l.history,
            stay: l.stay.clone(),
            idle_warned_at: l.idle.and_then(|i| i.warned_at),
            task: self.router.saved_task(id),
            text_seq: l.text_seq,
        })
    }

    /// The chats whose workflow waits for the customer's answer, with the log `seq` of the last
    /// text each took: after a rebuild they are given the texts that came after it (committed,
    /// acknowledged, but not yet taken when the engine stopped).
    #[must_use]
    pub fn awaiting_answer(&self) -> Vec<(ConversationId, i64)> {
        self.live
            .iter()
            .filter(|(_, l)| {
                l.run.as_ref().is_some_and(|r| {
                    matches!(
                        r.session.status,
                        crate::workflow::Status::Waiting { wait: crate::workflow::Wait::Answer { .. }, .. }
                    )
                })
            })
            .map(|(id, l)| (*id, l.text_seq))
            .collect()
    }

    /// The open service chats, for tests that compare two cores.
    #[cfg(test)]
    pub(crate) fn open_ids(&self) -> Vec<ConversationId> {
        let mut ids: Vec<ConversationId> = self.live.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// What changed since the last call, for the shell to commit with this input's effects.
    pub fn take_saves(&mut self) -> Saves {
        let chats = std::mem::take(&mut self.dirty_chats).into_iter().map(|id| (id, self.saved_chat(id))).collect();
        let agents =
            std::mem::take(&mut self.dirty_agents).into_iter().map(|a| (a, self.router.saved_agent(a))).collect();
        Saves { chats, agents }
    }

    /// Takes back an agent's RONA flag and after-chat work after a restart.
    pub fn restore_agent(&mut self, agent: UserId, saved: SavedAgent, now: OffsetDateTime) -> Vec<Out> {
        let mut out = Vec::new();
        self.route(router::Input::RestoreAgent { agent, saved }, now, &mut out);
        out
    }

    /// Takes back an open service chat as it was saved: its workflow where it waited (`pinned`
    /// is the version the save names; `None` if it has none), its place with the router, its
    /// silence clock. Its status is the store's.
    pub fn restore_saved(
        &mut self,
        conversation: Conversation,
        saved: SavedChat,
        pinned: Option<Pinned>,
        now: OffsetDateTime,
    ) -> Vec<Out> {
        let mut out = Vec::new();
        let id = conversation.id;
        let Some(service) = conversation.service_id else { return out };
        if self.is_open(id) {
            return out;
        }
        let run = match (saved.run, pinned) {
            (Some(r), Some(p)) if r.workflow_id == p.workflow_id && r.version == p.version => Some(r.into_run(p)),
            _ => None,
        };
        if let Some(r) = &run {
            for at in [r.wake_at, r.limit_at.filter(|_| !r.limit_reached)].into_iter().flatten() {
                self.timers.insert((at, id));
            }
        }
        let connected = conversation.status == ConversationStatus::Connected;
        let idle = connected.then_some(Idle { since: now, warned_at: saved.idle_warned_at });
        let live = Live {
            conversation,
            service,
            initial_service: saved.initial_service,
            run,
            history: saved.history,
            stay: saved.stay,
            idle,
            text_seq: saved.text_seq,
        };
        self.live.insert(id, live);
        self.schedule_idle(id, now);
        if let Some(task) = saved.task {
            let task_phase = task.phase;
            // Not through `route`: the chat is as it was saved, nothing to write back.
            self.queue_dirty = true;
            let fx = self.router.handle(router::Input::RestoreTask { conversation: id, task }, now);
            self.apply_routing(fx, now, &mut out);
            // Offered again when its agent could still hold it, else waiting at its place.
            let was_offered_to = match task_phase {
                router::SavedPhase::Offered { agent } => Some(agent),
                _ => None,
            };
            let Some(stored) = self.live.get(&id).map(|l| (l.conversation.status, l.conversation.agent_id)) else {
                return out;
            };
            // Workspaces still open (a rebuild after a failure) hear of the offer as it is now.
            let now_at = match (self.router.offered_to(id), was_offered_to) {
                (Some(agent), _) => {
                    if let (Some(deadline), Some(l)) = (self.router.offer_deadline(id), self.live.get(&id)) {
                        out.push(Out::Offer { agent, deadline, conversation: l.conversation.clone() });
                    }
                    (ConversationStatus::Offered, Some(agent))
                }
                (None, Some(agent)) => {
                    self.end_offer(id, agent, parley_domain::UserOutcome::Withdrawn, now, &mut out);
                    out.push(Out::OfferWithdrawn { agent, conversation: id });
                    (ConversationStatus::Queued, None)
                }
                (None, None) => stored,
            };
            if stored != now_at {
                self.set_status(id, now_at.0, now_at.1, None, &mut out);
            }
        }
        out
    }
}
