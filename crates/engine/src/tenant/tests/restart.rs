//! The core against a model of the store, through random days (random workflow timings and
//! service rules, random inputs) with restarts and failed commits.
//!
//! The shell commits each input's effects and the core's saves in one transaction, and after a
//! restart or a failed commit rebuilds a core from what was committed. Here the store is a model
//! that applies exactly what a commit writes (statuses, transfers, queue entries, texts, saves,
//! serialised as JSON like the real one), and the rebuild is the shell's. After every step:
//! - memory equals a rebuild from the store (every open chat's and agent's saved state, and the
//!   queues' order);
//! - no chat waits while an eligible agent is free;
//! - no timer fired twice (each chat hears a question's timeout and the queue limit at most once).
//!
//! At the end, time runs far ahead: every timer that was due has fired (none was lost).

use super::*;
use crate::router::SavedAgent;
use crate::tenant::{SavedChat, Saves};
use crate::workflow::{Status, Wait};
use parley_domain::Sender;
use proptest::prelude::*;
use std::collections::BTreeMap;

const TIMEOUT_TEXT: &str = "No number? Never mind.";
const LIMIT_TEXT: &str = "Sorry, everyone is busy.";

/// What varies between the random days: the workflows' timings and the services' rules.
#[derive(Debug, Clone, Copy)]
struct Shape {
    question_secs: u32,
    retries: u8,
    limit_secs: u32,
    check_secs: u32,
    persistent_rona: bool,
    reoffer_secs: u32,
}

fn shape() -> impl Strategy<Value = Shape> {
    (20u32..90, 0u8..3, 60u32..400, 10u32..60, any::<bool>(), prop_oneof![Just(0u32), Just(45), Just(200)]).prop_map(
        |(question_secs, retries, limit_secs, check_secs, persistent_rona, reoffer_secs)| Shape {
            question_secs,
            retries,
            limit_secs,
            check_secs,
            persistent_rona,
            reoffer_secs,
        },
    )
}

fn asking(sh: Shape) -> WorkflowDefinition {
    serde_json::from_value(serde_json::json!({"start": "accept", "nodes": [
        {"id": "accept", "activity": {"kind": "accept"}, "exits": {"next": "ask"}},
        {"id": "ask", "activity": {"kind": "collect_information", "prompt": "Order number?", "parameter": "Order",
            "rule": {"kind": "regex", "pattern": "[0-9]+"}, "timeout_secs": sh.question_secs, "retries": sh.retries,
            "retry_text": "Digits, please."},
         "exits": {"answered": "queue", "timeout": "late", "invalid": "queue"}},
        {"id": "late", "activity": {"kind": "message", "text": TIMEOUT_TEXT}, "exits": {"next": "queue"}},
        {"id": "queue", "activity": {"kind": "queue_task", "max_queue_secs": sh.limit_secs}, "exits": {"next": "wait"}},
        {"id": "wait", "activity": {"kind": "delay", "secs": sh.check_secs}, "exits": {"next": "check"}},
        {"id": "check", "activity": {"kind": "check_task"},
         "exits": {"queued": "wait", "offering": "wait", "connected": "done", "limit_reached": "sorry", "ended": "done"}},
        {"id": "sorry", "activity": {"kind": "message", "text": LIMIT_TEXT}, "exits": {"next": "done"}},
        {"id": "done", "activity": {"kind": "disconnect"}}
    ]}))
    .unwrap()
}

fn urgent() -> WorkflowDefinition {
    serde_json::from_value(serde_json::json!({"start": "accept", "nodes": [
        {"id": "accept", "activity": {"kind": "accept"}, "exits": {"next": "high"}},
        {"id": "high", "activity": {"kind": "distribution_priority", "priority": "high"}, "exits": {"next": "queue"}},
        {"id": "queue", "activity": {"kind": "queue_task", "max_queue_secs": 120}, "exits": {"next": "wait"}},
        {"id": "wait", "activity": {"kind": "delay", "secs": 3600}, "exits": {}}
    ]}))
    .unwrap()
}

/// Two services: one asks a question first; the other queues at High priority and keeps
/// declined chats off their agents for a while. Both give after-chat work.
fn services(sh: Shape) -> Vec<ServiceSetup> {
    let mut one = setup(1, Some(pinned(301, asking(sh))));
    one.service.routing.rona_secs = 20;
    one.service.routing.persistent_rona = sh.persistent_rona;
    one.service.routing.rona_reset_secs = Some(90);
    one.service.routing.acw_secs = 30;
    let mut two = setup(2, Some(pinned(302, urgent())));
    two.service.routing.rona_secs = 15;
    two.service.routing.persistent_rona = true;
    two.service.routing.reoffer_secs = sh.reoffer_secs;
    two.service.routing.acw_secs = 20;
    two.service.routing.acw_max_extensions = 1;
    vec![one, two]
}

const AGENTS: u128 = 3;

fn people() -> (Vec<User>, Vec<Membership>) {
    let users: Vec<User> = (1..=AGENTS).map(|n| User { max_chats: 1 + u32::from(n == 1), ..agent(n) }).collect();
    let members = (1..=2)
        .flat_map(|s| (1..=AGENTS).map(move |a| Membership { service_id: sid(s), user_id: uid(a), active: true }))
        .collect();
    (users, members)
}

fn configured(sh: Shape, now: OffsetDateTime) -> TenantCore {
    let mut core = TenantCore::new();
    for s in services(sh) {
        let _ = core.set_service(s, now);
    }
    let (users, members) = people();
    let _ = core.set_people(users, &members, now);
    core
}

/// What the store holds: exactly what the shell's commits wrote.
#[derive(Debug, Clone, Default)]
struct Stored {
    conversations: BTreeMap<ConversationId, Conversation>,
    queue: BTreeMap<ConversationId, (OffsetDateTime, Priority)>,
    chats: BTreeMap<ConversationId, serde_json::Value>,
    agents: BTreeMap<UserId, serde_json::Value>,
    presence: BTreeMap<UserId, Presence>,
    texts: Vec<(ConversationId, String)>,
}

impl Stored {
    fn commit(&mut self, out: &[Out], saves: Saves) {
        for o in out {
            match o {
                Out::Status { conversation, status, agent, ended_at } => {
                    if let Some(c) = self.conversations.get_mut(conversation) {
                        (c.status, c.agent_id, c.ended_at) = (*status, *agent, *ended_at);
                    }
                }
                Out::Transferred { conversation, service, workflow, version } => {
                    if let Some(c) = self.conversations.get_mut(conversation) {
                        c.service_id = Some(*service);
                        c.workflow_id = Some(*workflow);
                        c.workflow_version = Some(*version);
                    }
                }
                Out::QueueEntry { conversation, queued_at, priority } => {
                    self.queue.insert(*conversation, (*queued_at, *priority));
                }
                Out::Presence { agent, presence } => {
                    self.presence.insert(*agent, *presence);
                }
                Out::Append { conversation, body: EntryBody::Message { sender: Sender::System, text, .. } } => {
                    self.texts.push((*conversation, text.clone()));
                }
                _ => {}
            }
        }
        for (id, state) in saves.chats {
            match state {
                Some(s) => self.chats.insert(id, serde_json::to_value(s).unwrap()),
                None => self.chats.remove(&id),
            };
        }
        for (id, state) in saves.agents {
            match state {
                Some(s) => self.agents.insert(id, serde_json::to_value(s).unwrap()),
                None => self.agents.remove(&id),
            };
        }
    }

    fn count(&self, id: ConversationId, text: &str) -> usize {
        self.texts.iter().filter(|(c, t)| *c == id && t == text).count()
    }
}

/// The shell's rebuild: configuration, agents' kept state, open chats in queue order (as saved,
/// started from scratch when never started, or waiting again), then the open sockets.
fn rebuild(
    sh: Shape,
    stored: &Stored,
    online: &BTreeMap<UserId, usize>,
    now: OffsetDateTime,
) -> (TenantCore, Vec<Out>) {
    let mut core = configured(sh, now);
    let mut out = Vec::new();
    for (agent, p) in &stored.presence {
        out.extend(core.presence(*agent, *p, now));
    }
    for (agent, state) in &stored.agents {
        let saved: SavedAgent = serde_json::from_value(state.clone()).unwrap();
        out.extend(core.restore_agent(*agent, saved, now));
    }
    let pinned_of =
        |w: Option<WorkflowId>| services(sh).into_iter().filter_map(|s| s.workflow).find(|p| Some(p.workflow_id) == w);
    let mut open: Vec<&Conversation> =
        stored.conversations.values().filter(|c| c.status != ConversationStatus::Ended).collect();
    open.sort_by_key(|c| {
        let connected = c.status == ConversationStatus::Connected;
        (!connected, stored.queue.get(&c.id).map_or(c.created_at, |q| q.0), c.created_at, c.id)
    });
    for c in open {
        match stored.chats.get(&c.id) {
            Some(state) => {
                let saved: SavedChat = serde_json::from_value(state.clone()).unwrap();
                let pinned = saved.run.as_ref().and_then(|r| pinned_of(Some(r.workflow_id)));
                out.extend(core.restore_saved(c.clone(), saved, pinned, now));
            }
            None if c.status == ConversationStatus::Workflow => {
                out.extend(core.start(c.clone(), pinned_of(c.workflow_id).unwrap(), now));
            }
            None => out.extend(core.restore(c.clone(), stored.queue.get(&c.id).copied(), now)),
        }
    }
    for (agent, n) in online {
        for _ in 0..*n {
            out.extend(core.connection(*agent, true, now));
        }
    }
    out.extend(core.queue_updates());
    (core, out)
}

#[derive(Debug, Clone)]
enum Op {
    Start(u8),
    Answer(u8, bool),
    Connect(u8),
    Disconnect(u8),
    Presence(u8, u8),
    Accept(u8),
    Decline(u8),
    End(u8, bool),
    EndAcw(u8),
    ResetRona(u8),
    Wait(u16),
    Restart,
    /// The next input's commit fails: nothing of it is kept and the core is rebuilt.
    FailNext,
}

fn op() -> impl Strategy<Value = Op> {
    let agent = 1u8..=3;
    let chat = 0u8..10;
    prop_oneof![
        3 => (1u8..=2).prop_map(Op::Start),
        2 => (chat.clone(), any::<bool>()).prop_map(|(c, d)| Op::Answer(c, d)),
        2 => agent.clone().prop_map(Op::Connect),
        1 => agent.clone().prop_map(Op::Disconnect),
        1 => (agent.clone(), 0u8..3).prop_map(|(a, p)| Op::Presence(a, p)),
        3 => chat.clone().prop_map(Op::Accept),
        2 => chat.clone().prop_map(Op::Decline),
        1 => (chat, any::<bool>()).prop_map(|(c, by_agent)| Op::End(c, by_agent)),
        1 => agent.clone().prop_map(Op::EndAcw),
        1 => agent.prop_map(Op::ResetRona),
        4 => (1u16..90).prop_map(Op::Wait),
        1 => Just(Op::Restart),
        1 => Just(Op::FailNext),
    ]
}

struct World {
    shape: Shape,
    core: TenantCore,
    stored: Stored,
    online: BTreeMap<UserId, usize>,
    now: OffsetDateTime,
    chats: u128,
    fail_next: bool,
}

impl World {
    fn new(sh: Shape) -> Self {
        let now = T0;
        let mut core = configured(sh, now);
        let _ = core.take_saves();
        let (users, _) = people();
        let presence = users.iter().map(|u| (u.id, u.presence)).collect();
        Self {
            shape: sh,
            core,
            stored: Stored { presence, ..Stored::default() },
            online: BTreeMap::new(),
            now,
            chats: 0,
            fail_next: false,
        }
    }

    fn chat(&self, n: u8) -> ConversationId {
        cid(u128::from(n) % self.chats.max(1))
    }

    /// One input through the core, committed (or failed) as the shell does.
    fn step(&mut self, op: &Op) {
        let now = self.now;
        let mut out = match op {
            Op::Start(service) => {
                let p = services(self.shape)[usize::from(*service - 1)].workflow.clone().unwrap();
                let c = Conversation { created_at: now, ..conversation(self.chats, u128::from(*service), &p) };
                self.chats += 1;
                self.stored.conversations.insert(c.id, c.clone());
                self.core.start(c, p, now)
            }
            Op::Answer(n, digits) => {
                let text = if *digits { "4711" } else { "soon" };
                self.core.customer_text(self.chat(*n), text.into(), now)
            }
            Op::Connect(a) => {
                *self.online.entry(uid(u128::from(*a))).or_insert(0) += 1;
                self.core.connection(uid(u128::from(*a)), true, now)
            }
            Op::Disconnect(a) => {
                let agent = uid(u128::from(*a));
                match self.online.get_mut(&agent) {
                    Some(n) if *n > 0 => {
                        *n -= 1;
                        self.core.connection(agent, false, now)
                    }
                    _ => Vec::new(),
                }
            }
            Op::Presence(a, p) => {
                let presence = [Presence::Available, Presence::Away, Presence::Offline][usize::from(*p)];
                self.core.presence(uid(u128::from(*a)), presence, now)
            }
            Op::Accept(n) | Op::Decline(n) => {
                let id = self.chat(*n);
                let Some(agent) = self.core.router().offered_to(id) else { return };
                let done = if matches!(op, Op::Accept(_)) {
                    self.core.accept(agent, id, now)
                } else {
                    self.core.decline(agent, id, now)
                };
                done.unwrap()
            }
            Op::End(n, by_agent) => {
                let id = self.chat(*n);
                let agent = self.core.conversation(id).and_then(|c| c.agent_id).filter(|_| *by_agent);
                let by = if agent.is_some() { EndedBy::Agent } else { EndedBy::Customer };
                self.core.end(id, by, agent, now).unwrap_or_default()
            }
            Op::EndAcw(a) => self.core.end_acw(uid(u128::from(*a)), now).unwrap_or_default(),
            Op::ResetRona(a) => self.core.reset_rona(uid(u128::from(*a)), now),
            Op::Wait(secs) => {
                self.now += time::Duration::seconds(i64::from(*secs));
                self.tick()
            }
            Op::Restart => {
                self.restart();
                return;
            }
            Op::FailNext => {
                self.fail_next = true;
                return;
            }
        };
        out.extend(self.core.queue_updates());
        let saves = self.core.take_saves();
        if std::mem::take(&mut self.fail_next) {
            // Nothing of it was stored: the engine starts again from the store.
            self.restart();
        } else {
            self.stored.commit(&out, saves);
        }
    }

    /// A new core from the store; what its rebuild decided is committed like any input, and then,
    /// as the shell's loop does first, whatever fell due meanwhile runs.
    fn restart(&mut self) {
        let (core, out) = rebuild(self.shape, &self.stored, &self.online, self.now);
        self.core = core;
        let saves = self.core.take_saves();
        self.stored.commit(&out, saves);
        let mut out = self.tick();
        out.extend(self.core.queue_updates());
        let saves = self.core.take_saves();
        self.stored.commit(&out, saves);
    }

    /// Every timer due by now, as the shell's loop runs them (a tick may arm one for the same
    /// instant).
    fn tick(&mut self) -> Vec<Out> {
        let mut out = Vec::new();
        while self.core.next_deadline().is_some_and(|d| d <= self.now) {
            out.extend(self.core.tick(self.now));
        }
        out
    }

    fn check(&self) -> Result<(), TestCaseError> {
        let (rebuilt, _) = rebuild(self.shape, &self.stored, &self.online, self.now);
        prop_assert_eq!(self.core.open_ids(), rebuilt.open_ids(), "open chats");
        for id in self.core.open_ids() {
            prop_assert_eq!(self.core.saved_chat(id), rebuilt.saved_chat(id), "chat {:?}", id);
        }
        for a in 1..=AGENTS {
            let agent = uid(a);
            prop_assert_eq!(self.core.router().saved_agent(agent), rebuilt.router().saved_agent(agent), "agent {}", a);
        }
        prop_assert_eq!(self.core.router().queued(), rebuilt.router().queued(), "queues");
        let idle = self.core.router().pending_offers(self.now);
        prop_assert!(idle.is_empty(), "chats wait beside free agents: {:?}", idle);
        for n in 0..self.chats {
            for text in [TIMEOUT_TEXT, LIMIT_TEXT] {
                prop_assert!(self.stored.count(cid(n), text) <= 1, "chat {} heard {:?} twice", n, text);
            }
        }
        Ok(())
    }

    /// Time runs far ahead with nobody online: whatever was due has fired.
    fn check_nothing_was_lost(&mut self) -> Result<(), TestCaseError> {
        for a in 1..=AGENTS {
            while self.online.get(&uid(a)).is_some_and(|n| *n > 0) {
                self.step(&Op::Disconnect(u8::try_from(a).unwrap()));
            }
        }
        self.step(&Op::Wait(3_000));
        for id in self.core.open_ids() {
            let run = self.core.run(id).unwrap();
            if let Status::Waiting {
                wait: Wait::Time { until } | Wait::Answer { until } | Wait::Http { until }, ..
            } = &run.session.status
            {
                prop_assert!(*until > self.now, "chat {:?} still waits for {} at {}", id, until, self.now);
            }
        }
        for a in 1..=AGENTS {
            let s = self.core.router().agent_status(uid(a)).unwrap();
            prop_assert!(s.acw_until.is_none_or(|u| u > self.now), "agent {} in after-chat work forever", a);
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn prop_memory_equals_a_rebuild_from_the_store_through_restarts_and_failed_commits(
        sh in shape(),
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let mut w = World::new(sh);
        for o in &ops {
            w.step(o);
            w.check()?;
        }
        w.check_nothing_was_lost()?;
        w.check()?;
    }
}
