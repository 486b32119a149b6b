//! A brute-force oracle for the router's dispatch, and property tests against it.
//!
//! The router keeps indexes (per-service queues and free-agent sets) so a decision costs a few
//! logarithms. The oracle ignores them: after an input has been applied, it repeatedly scans
//! every queued chat in rank order and every agent, straight from the raw state, and offers the
//! first match the rules allow. For random sequences of arrivals, answers, time, presence,
//! capacity and configuration changes the router must make exactly the oracle's offers, and
//! afterwards no chat may wait while an agent who could take it is free.

use super::tests::{cid, sid, t, uid};
use super::*;
use proptest::prelude::*;

impl Router {
    /// Could `agent` be offered `task` now, judged from the raw state only, had they never
    /// passed on it?
    fn oracle_can_take(&self, agent: UserId, task: &Task, now: OffsetDateTime) -> bool {
        let Some(s) = self.services.get(&task.service) else { return false };
        let Some(a) = self.agents.get(&agent) else { return false };
        let presence_ok = match a.presence {
            Presence::Available => true,
            Presence::Busy => s.rules.busy_opt_in,
            Presence::Away => s.rules.away_opt_in,
            Presence::Offline => false,
        };
        let head_start_blocks = match (task.last_user, task.last_user_until) {
            (Some(last), Some(until)) => now < until && !task.declined_by.contains_key(&last) && last != agent,
            _ => false,
        };
        let level = policy_level(&s.rules.policy, task.entered_at, now);
        let skilled = level
            .is_none_or(|l| l.requires.iter().all(|r| a.skills.get(&r.skill_id).copied().unwrap_or(0) >= r.min_level));
        s.members.get(&agent) == Some(&true)
            && skilled
            && presence_ok
            && a.online
            && a.can_take_chats
            && a.offer.is_none()
            && a.acw_until.is_none()
            && a.rona.is_none()
            && a.chats.len() < a.max_chats as usize
            && !head_start_blocks
    }

    /// The agent the rules pick for `task`: the last agent, else the first preferred, else the
    /// fewest chats and longest idle, ties by id; among those who never passed on it, else among
    /// those who did and have waited out the service's re-offer time.
    fn oracle_pick(&self, task: &Task, now: OffsetDateTime) -> Option<UserId> {
        let able: Vec<UserId> = self.agents.keys().copied().filter(|a| self.oracle_can_take(*a, task, now)).collect();
        let by_load = |ids: &mut Vec<UserId>| {
            ids.sort_by_key(|id| (self.agents[id].chats.len(), self.agents[id].idle_since, *id));
        };
        let mut fresh: Vec<UserId> = able.iter().copied().filter(|a| !task.declined_by.contains_key(a)).collect();
        if let Some((p, _)) = task.preferred.iter().find(|(p, _)| fresh.contains(p)) {
            return Some(*p);
        }
        by_load(&mut fresh);
        if let Some(first) = fresh.first() {
            return Some(*first);
        }
        if task.past_limit {
            return None;
        }
        let wait = Duration::seconds(i64::from(self.services[&task.service].rules.reoffer_secs));
        let mut again: Vec<UserId> =
            able.into_iter().filter(|a| task.declined_by.get(a).is_some_and(|at| *at + wait <= now)).collect();
        by_load(&mut again);
        again.first().copied()
    }

    /// The offers a fresh greedy scan makes from this state, in order.
    fn oracle_offers(mut self, now: OffsetDateTime) -> Vec<(ConversationId, UserId)> {
        let mut made = Vec::new();
        loop {
            let mut queued: Vec<(QueueKey, ConversationId)> = self
                .tasks
                .iter()
                .filter(|(_, t)| t.state == TaskState::Queued)
                .filter(|(_, t)| self.services.get(&t.service).is_some_and(|s| s.active < s.rules.max_tasks))
                .map(|(id, t)| (t.key, *id))
                .collect();
            queued.sort();
            let next = queued.iter().find_map(|(_, id)| self.oracle_pick(&self.tasks[id], now).map(|a| (*id, a)));
            let Some((c, a)) = next else { return made };
            made.push((c, a));
            let service = self.tasks[&c].service;
            if let Some(task) = self.tasks.get_mut(&c) {
                task.state = TaskState::Offered(a);
            }
            if let Some(agent) = self.agents.get_mut(&a) {
                agent.offer = Some(c);
            }
            if let Some(s) = self.services.get_mut(&service) {
                s.active += 1;
            }
        }
    }

    /// Indexes agree with the raw state, and the hard limits hold.
    fn check_invariants(&self, now: OffsetDateTime) -> Result<(), TestCaseError> {
        for (id, a) in &self.agents {
            if let Some(c) = a.offer {
                prop_assert_eq!(self.offered_to(c), Some(*id), "agent's offer and task disagree");
                prop_assert!(a.chats.len() < a.max_chats as usize, "agent {:?} holds an offer at capacity", id);
            }
        }
        for (sid, s) in &self.services {
            let active =
                self.tasks.values().filter(|t| t.service == *sid && !matches!(t.state, TaskState::Queued)).count();
            prop_assert_eq!(s.active as usize, active, "service active count");
            prop_assert!(s.active <= s.rules.max_tasks.max(active as u32), "over service capacity");
            let queued: BTreeSet<QueueKey> = self
                .tasks
                .values()
                .filter(|t| t.service == *sid && t.state == TaskState::Queued)
                .map(|t| t.key)
                .collect();
            prop_assert_eq!(&s.queue, &queued, "queue index");
            let free: BTreeSet<FreeKey> = s
                .members
                .iter()
                .filter(|(id, active)| **active && self.agents.get(id).is_some_and(|a| a.selectable(&s.rules)))
                .map(|(id, _)| self.agents[id].free_key(*id))
                .collect();
            prop_assert_eq!(&s.free, &free, "free index of {:?}", sid);
        }
        for (c, task) in &self.tasks {
            match task.state {
                TaskState::Offered(a) => prop_assert_eq!(self.agents[&a].offer, Some(*c)),
                TaskState::Connected(a) => prop_assert!(self.agents[&a].chats.contains(c)),
                TaskState::Queued => {
                    let room = self.services.get(&task.service).is_some_and(|s| s.active < s.rules.max_tasks);
                    prop_assert!(
                        !room || self.oracle_pick(task, now).is_none(),
                        "{:?} waits while an agent who could take it is free",
                        c
                    );
                    // An agent who passed on it is not kept off it for good: the end of each
                    // re-offer wait is a deadline that looks at the chat again.
                    let wait = Duration::seconds(i64::from(self.services[&task.service].rules.reoffer_secs));
                    for (agent, at) in &task.declined_by {
                        let due = *at + wait;
                        prop_assert!(
                            due <= now || self.deadlines.contains(&(due, Deadline::Reoffer(*c))),
                            "{:?} passed by {:?} at {} has no re-offer deadline at {}",
                            c,
                            agent,
                            at,
                            due
                        );
                    }
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
enum Op {
    Rules {
        service: u8,
        max_tasks: u32,
        aging: Option<u32>,
        persistent: bool,
        acw: u32,
        busy_ok: bool,
        skilled: bool,
        reoffer: u32,
    },
    Skill(u8, u8),
    Agent(u8, u32, bool),
    Presence(u8, u8),
    Online(u8, bool),
    Member(u8, u8, bool),
    Leave(u8, u8),
    Enqueue {
        chat: u8,
        service: u8,
        priority: u8,
        preferred: Option<u8>,
        last: Option<u8>,
    },
    SetPriority(u8, u8),
    LimitReached(u8),
    Accept(u8),
    Decline(u8),
    Finish(u8),
    EndAcw(u8),
    ExtendAcw(u8),
    ResetRona(u8),
    Wait(u16),
}

fn op() -> impl Strategy<Value = Op> {
    let agent = 0u8..5;
    let chat = 0u8..14;
    let service = 0u8..2;
    prop_oneof![
        (
            service.clone(),
            1u32..4,
            proptest::option::of(1u32..120),
            any::<bool>(),
            0u32..90,
            any::<bool>(),
            any::<bool>(),
            prop_oneof![Just(0u32), Just(0), Just(30), Just(150)],
        )
            .prop_map(|(service, max_tasks, aging, persistent, acw, busy_ok, skilled, reoffer)| Op::Rules {
                service,
                max_tasks,
                aging,
                persistent,
                acw,
                busy_ok,
                skilled,
                reoffer
            }),
        (agent.clone(), 0u8..6).prop_map(|(a, l)| Op::Skill(a, l)),
        (agent.clone(), 0u32..4, any::<bool>()).prop_map(|(a, m, c)| Op::Agent(a, m, c)),
        (agent.clone(), 0u8..4).prop_map(|(a, p)| Op::Presence(a, p)),
        (agent.clone(), any::<bool>()).prop_map(|(a, o)| Op::Online(a, o)),
        (service.clone(), agent.clone(), any::<bool>()).prop_map(|(s, a, x)| Op::Member(s, a, x)),
        (service.clone(), agent.clone()).prop_map(|(s, a)| Op::Leave(s, a)),
        (chat.clone(), service, 0u8..4, proptest::option::of(agent.clone()), proptest::option::of(agent.clone()))
            .prop_map(|(chat, service, priority, preferred, last)| Op::Enqueue {
                chat,
                service,
                priority,
                preferred,
                last
            }),
        (chat.clone(), 0u8..4).prop_map(|(c, p)| Op::SetPriority(c, p)),
        chat.clone().prop_map(Op::LimitReached),
        chat.clone().prop_map(Op::Accept),
        chat.clone().prop_map(Op::Decline),
        chat.prop_map(Op::Finish),
        agent.clone().prop_map(Op::EndAcw),
        agent.clone().prop_map(Op::ExtendAcw),
        agent.prop_map(Op::ResetRona),
        (0u16..200).prop_map(Op::Wait),
    ]
}

fn skill() -> SkillId {
    SkillId::from_uuid(uuid::Uuid::from_u128(77))
}

fn prio(n: u8) -> Priority {
    [Priority::Low, Priority::Normal, Priority::High, Priority::Strict][usize::from(n % 4)]
}

fn presence(n: u8) -> Presence {
    [Presence::Available, Presence::Busy, Presence::Away, Presence::Offline][usize::from(n % 4)]
}

fn to_input(r: &Router, op: &Op) -> Input {
    let a = |n: u8| uid(u128::from(n));
    let c = |n: u8| cid(u128::from(n));
    let s = |n: u8| sid(u128::from(n));
    match op.clone() {
        Op::Skill(x, level) => Input::AgentSkills {
            agent: a(x),
            skills: if level == 0 { Vec::new() } else { vec![UserSkill { skill_id: skill(), level }] },
        },
        Op::Rules { service, max_tasks, aging, persistent, acw, busy_ok, skilled, reoffer } => Input::ServiceUpdated {
            service: s(service),
            rules: ServiceRules {
                max_tasks,
                aging_secs: aging,
                persistent_rona: persistent,
                rona_reset_secs: persistent.then_some(300),
                acw_secs: acw,
                acw_max_extensions: 2,
                busy_opt_in: busy_ok,
                last_user_secs: 60,
                reoffer_secs: reoffer,
                // Level 3 of the skill at first, anyone after a minute.
                policy: if skilled {
                    vec![
                        PolicyLevel {
                            after_secs: 0,
                            requires: vec![parley_domain::SkillRequirement { skill_id: skill(), min_level: 3 }],
                        },
                        PolicyLevel { after_secs: 60, requires: Vec::new() },
                    ]
                } else {
                    Vec::new()
                },
                ..ServiceRules::default()
            },
        },
        Op::Agent(x, m, can) => Input::AgentUpdated { agent: a(x), max_chats: m, can_take_chats: can },
        Op::Presence(x, p) => Input::PresenceChanged { agent: a(x), presence: presence(p) },
        Op::Online(x, o) => Input::ConnectionChanged { agent: a(x), online: o },
        Op::Member(sv, x, act) => Input::MembershipSet { service: s(sv), agent: a(x), active: act },
        Op::Leave(sv, x) => Input::MembershipRemoved { service: s(sv), agent: a(x) },
        Op::Enqueue { chat, service, priority, preferred, last } => Input::Enqueue(Arrival {
            conversation: c(chat),
            service: s(service),
            priority: prio(priority),
            entered_at: None,
            preferred: preferred.map(|p| vec![(a(p), 1)]).unwrap_or_default(),
            last_user: last.map(a),
        }),
        Op::SetPriority(cv, p) => Input::SetPriority { conversation: c(cv), priority: prio(p) },
        Op::LimitReached(cv) => Input::LimitReached { conversation: c(cv) },
        // Answer as whoever holds the offer, so the interesting paths are exercised.
        Op::Accept(cv) => Input::Accept { conversation: c(cv), agent: r.offered_to(c(cv)).unwrap_or(a(0)) },
        Op::Decline(cv) => Input::Decline { conversation: c(cv), agent: r.offered_to(c(cv)).unwrap_or(a(0)) },
        Op::Finish(cv) => Input::Finish { conversation: c(cv) },
        Op::EndAcw(x) => Input::EndAcw { agent: a(x) },
        Op::ExtendAcw(x) => Input::ExtendAcw { agent: a(x) },
        Op::ResetRona(x) => Input::ResetRona { agent: a(x) },
        Op::Wait(_) => Input::Tick,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 768, ..ProptestConfig::default() })]

    #[test]
    fn prop_every_offer_is_the_oracles_and_no_chat_waits_beside_a_free_agent(
        capacities in proptest::collection::vec(1u32..4, 5),
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        // Start staffed (every agent ready in both services) so the random steps spend their
        // time on routing rather than on getting agents ready.
        let mut setup = Vec::new();
        for (n, max) in (0u8..).zip(&capacities) {
            setup.push(Op::Agent(n, *max, true));
            setup.push(Op::Online(n, true));
            setup.push(Op::Presence(n, 0));
            setup.push(Op::Member(0, n, true));
            setup.push(Op::Member(1, n, true));
        }
        let mut r = Router::new();
        let mut now = t(0);
        for o in setup.iter().chain(&ops) {
            if let Op::Wait(secs) = o {
                now += Duration::seconds(i64::from(*secs));
            }
            let input = to_input(&r, o);
            // The oracle starts from the state after the input's own changes, before dispatch.
            let mut applied = r.clone();
            applied.apply(input.clone(), now, &mut Vec::new(), &mut BTreeSet::new());
            let expected = applied.oracle_offers(now);
            let fx = r.handle(input, now);
            let made: Vec<(ConversationId, UserId)> = fx
                .iter()
                .filter_map(|e| match e {
                    Effect::Offer { conversation, agent, .. } => Some((*conversation, *agent)),
                    _ => None,
                })
                .collect();
            prop_assert_eq!(&made, &expected, "after {:?}", o);
            for e in &fx {
                if let Effect::Offer { agent, deadline, .. } = e {
                    prop_assert!(*deadline > now);
                    prop_assert!(r.agents[agent].chats.len() < r.agents[agent].max_chats as usize, "offered to a full agent");
                }
            }
            r.check_invariants(now)?;
        }
    }

    #[test]
    fn prop_aging_bounds_how_long_a_lower_priority_waits_behind_later_arrivals(
        aging in 1u32..600, levels in prop_oneof![Just((0u8, 1u8)), Just((0, 2)), Just((1, 2))], gap in 0i64..5000,
    ) {
        // A chat of priority `low` entered `gap` seconds before one of a higher level (not
        // Strict). With aging, the earlier one is ahead exactly when its wait covers the levels.
        let (low, high) = levels;
        let mut r = Router::new();
        r.handle(Input::ServiceUpdated { service: sid(1), rules: ServiceRules { aging_secs: Some(aging), ..ServiceRules::default() } }, t(0));
        r.handle(Input::Enqueue(Arrival::new(cid(1), sid(1)).with_priority(prio(low))), t(0));
        r.handle(Input::Enqueue(Arrival::new(cid(2), sid(1)).with_priority(prio(high))), t(gap));
        let credit = i64::from(high - low) * i64::from(aging);
        let first = r.queued()[0];
        prop_assert_eq!(first == cid(1), gap >= credit, "gap {} credit {}", gap, credit);
    }
}

#[test]
fn oracle_sees_the_offer_after_an_accept_with_spare_capacity() {
    let mut r = Router::new();
    r.handle(Input::AgentUpdated { agent: uid(1), max_chats: 3, can_take_chats: true }, t(0));
    r.handle(Input::MembershipSet { service: sid(1), agent: uid(1), active: true }, t(0));
    r.handle(Input::ConnectionChanged { agent: uid(1), online: true }, t(0));
    r.handle(Input::PresenceChanged { agent: uid(1), presence: Presence::Available }, t(0));
    r.handle(Input::Enqueue(Arrival::new(cid(1), sid(1))), t(1));
    r.handle(Input::Enqueue(Arrival::new(cid(2), sid(1))), t(2));
    let input = Input::Accept { conversation: cid(1), agent: uid(1) };
    let mut applied = r.clone();
    applied.apply(input, t(3), &mut Vec::new(), &mut BTreeSet::new());
    assert_eq!(applied.oracle_offers(t(3)), [(cid(2), uid(1))]);
}
