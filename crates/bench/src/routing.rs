//! The `routing` scenario: the pure router, in process, with every agent busy and a fixed number
//! of chats waiting behind them.
//!
//! Setup: `services` services and `agents` agents, each agent an active member of one to three
//! services (their "home" service `i % services` plus up to two drawn from the seed), all
//! signed in, Available, capacity 1. Chats are enqueued until every agent holds an offer, then
//! `queued` more wait (spread round-robin over the services).
//!
//! Measured loop, one step per simulated millisecond: the agent offered longest ago accepts, the
//! chat finishes (no after-chat work), so the router offers that agent the next waiting chat of
//! their services; a new chat then arrives in the service the offered chat came from, so every
//! queue keeps its length. Due deadlines get an [`Input::Tick`] first, as the shell would send.
//! A *decision* is one [`Effect::Offer`]; decisions per second are counted on wall time over the
//! whole loop (accept, finish, arrival, tick and the bookkeeping here).

use crate::report::RunInfo;
use crate::stats::{Percentiles, nanos};
use anyhow::{Context, ensure};
use parley_domain::{ConversationId, Presence, ServiceId, UserId};
use parley_engine::router::{Arrival, Effect, Input, Router, ServiceRules};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::collections::{HashSet, VecDeque};
use std::fmt::Write as _;
use std::time::Instant;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Performance goal A3: routing decisions per second with 10,000 queued chats and 5,000 agents.
pub const GOAL_DECISIONS_PER_SEC: f64 = 100_000.0;
/// The goal's load: it applies when at least this many agents and waiting chats are set.
const GOAL_AGENTS: u32 = 5_000;
const GOAL_QUEUED: u32 = 10_000;
/// Simulated time between two steps of the measured loop.
const STEP: Duration = Duration::milliseconds(1);

/// The scenario's parameters.
#[derive(Debug, Clone, clap::Args, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Agents, all Available with capacity 1.
    #[arg(long, default_value_t = 5_000)]
    pub agents: u32,
    /// Chats waiting beyond the ones offered to the agents.
    #[arg(long, default_value_t = 10_000)]
    pub queued: u32,
    /// Services; each agent is a member of 1–3 of them.
    #[arg(long, default_value_t = 50)]
    pub services: u32,
    /// Routing decisions (offers) to measure.
    #[arg(long, default_value_t = 1_000_000)]
    pub decisions: u64,
    /// Seed of the memberships.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Chats one service may hold at once (offered or connected). Unset: no cap, so agents are
    /// the limit; Parley's settings allow 1–50, which with 50 services keeps at most 2,500
    /// agents busy.
    #[arg(long)]
    pub service_max_tasks: Option<u32>,
}

/// What came out of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub run: RunInfo,
    pub params: Params,
    /// Seconds an agent has to answer an offer (long enough that none expires in the loop).
    pub rona_secs: u32,
    /// Simulated milliseconds per step of the measured loop.
    pub sim_step_ms: i128,
    pub setup: Setup,
    pub measured: Measured,
    pub goal: Goal,
}

/// The state the measured loop started from.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Setup {
    pub wall_secs: f64,
    /// Agents holding an offer (all of them unless a service cap binds).
    pub agents_with_offer: usize,
    /// Chats waiting in the queues.
    pub waiting: u64,
}

/// The measured loop.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Measured {
    /// Offers made.
    pub decisions: u64,
    /// Inputs handled (accepts, finishes, arrivals, ticks).
    pub inputs: u64,
    pub wall_secs: f64,
    /// Decisions per second of wall time: the headline figure.
    pub decisions_per_sec: f64,
    /// Seconds spent inside `Router::handle` (all inputs).
    pub router_secs: f64,
    /// Decisions per second of time inside the router only.
    pub decisions_per_sec_router_only: f64,
    /// Duration of one `handle` call that made an offer, in nanoseconds.
    pub offer_call_ns: Percentiles,
    /// Chats waiting at the end (should equal the setup's).
    pub waiting_at_end: usize,
    /// Offers that went back to the queue (a missed deadline); 0 expected.
    pub requeued: u64,
    /// Inputs the router refused; 0 expected.
    pub refused: u64,
}

/// The result against performance goal A3.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Goal {
    pub decisions_per_sec: f64,
    /// The run used at least the goal's load (5,000 agents, 10,000 waiting).
    pub applies: bool,
    pub met: bool,
}

/// Runs the scenario.
///
/// # Errors
/// Parameters that cannot make the scenario, or a loop that runs out of offers.
pub fn run(params: &Params) -> anyhow::Result<Report> {
    ensure!(params.agents > 0 && params.services > 0, "--agents and --services must be at least 1");
    ensure!(params.queued >= params.services, "--queued must be at least --services, so every queue has a chat");
    let run = RunInfo::now();
    let rona_secs = rona_secs(params.agents);
    let mut bench = Bench::new(params.services);
    let started = Instant::now();
    bench.setup(params, rona_secs)?;
    let setup = Setup {
        wall_secs: started.elapsed().as_secs_f64(),
        agents_with_offer: bench.offers.len(),
        waiting: bench.waiting(),
    };
    let measured = bench.measure(params.decisions)?;
    let applies = params.agents >= GOAL_AGENTS && params.queued >= GOAL_QUEUED;
    let goal = Goal {
        decisions_per_sec: GOAL_DECISIONS_PER_SEC,
        applies,
        met: applies && measured.decisions_per_sec >= GOAL_DECISIONS_PER_SEC,
    };
    Ok(Report {
        scenario: "routing",
        run,
        params: params.clone(),
        rona_secs,
        sim_step_ms: STEP.whole_milliseconds(),
        setup,
        measured,
        goal,
    })
}

/// The offer deadline: offers are answered oldest first, about `agents` steps after being made,
/// so this leaves twice that (at least the default 30 s).
fn rona_secs(agents: u32) -> u32 {
    let steps_per_sec = u32::try_from(1_000 / STEP.whole_milliseconds().max(1)).unwrap_or(1);
    (agents / steps_per_sec.max(1) * 2 + 1).max(30)
}

/// The report as a Markdown table.
#[must_use]
pub fn markdown(r: &Report) -> String {
    let p = &r.params;
    let m = &r.measured;
    let cap = p.service_max_tasks.map_or_else(|| "none".to_owned(), |c| c.to_string());
    let verdict = match (r.goal.applies, r.goal.met) {
        (false, _) => "n/a (smaller load than the goal's)",
        (true, true) => "**pass**",
        (true, false) => "**FAIL**",
    };
    let mut s = String::from("# Routing decisions (pure router, in process)\n\n");
    s.push_str(&r.run.markdown());
    let _ = writeln!(
        s,
        "\n{} agents, {} waiting, {} services, service cap {cap}, seed {}; \
         {} agents held an offer and {} chats waited after setup ({:.2} s).\n",
        p.agents, p.queued, p.services, p.seed, r.setup.agents_with_offer, r.setup.waiting, r.setup.wall_secs
    );
    s.push_str("| measure | value |\n| --- | --- |\n");
    let rows = [
        ("decisions (offers)", m.decisions.to_string()),
        ("inputs handled", m.inputs.to_string()),
        ("wall time", format!("{:.3} s", m.wall_secs)),
        ("**decisions/s (wall)**", format!("**{:.0}**", m.decisions_per_sec)),
        ("decisions/s (time inside the router)", format!("{:.0}", m.decisions_per_sec_router_only)),
        ("offer-making `handle` call p50", format!("{:.0} ns", m.offer_call_ns.p50)),
        ("offer-making `handle` call p95", format!("{:.0} ns", m.offer_call_ns.p95)),
        ("offer-making `handle` call p99", format!("{:.0} ns", m.offer_call_ns.p99)),
        ("offer-making `handle` call max", format!("{:.0} ns", m.offer_call_ns.max)),
        ("waiting at the end", m.waiting_at_end.to_string()),
        ("requeued / refused", format!("{} / {}", m.requeued, m.refused)),
        ("goal A3: ≥ 100,000 decisions/s", verdict.to_owned()),
    ];
    for (name, value) in rows {
        let _ = writeln!(s, "| {name} | {value} |");
    }
    s
}

/// Counts of what the router answered.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    inputs: u64,
    enqueued: u64,
    offers: u64,
    requeued: u64,
    refused: u64,
    /// Nanoseconds inside `Router::handle`.
    router_nanos: u64,
}

/// The router under load and what the benchmark knows about it.
struct Bench {
    router: Router,
    now: OffsetDateTime,
    services: u32,
    next_chat: u64,
    /// Offers not yet answered, oldest first.
    offers: VecDeque<(ConversationId, UserId)>,
    /// Services that lost a waiting chat to an offer and get a new arrival.
    refill: Vec<u32>,
    tally: Tally,
    /// Durations of the calls that made an offer, while measuring.
    offer_calls: Option<Vec<u64>>,
}

impl Bench {
    fn new(services: u32) -> Self {
        Self {
            router: Router::new(),
            now: datetime!(2026-01-05 09:00 UTC),
            services,
            next_chat: 0,
            offers: VecDeque::new(),
            refill: Vec::new(),
            tally: Tally::default(),
            offer_calls: None,
        }
    }

    /// Chats waiting now, by the benchmark's count.
    fn waiting(&self) -> u64 {
        self.tally.enqueued + self.tally.requeued - self.tally.offers
    }

    /// Hands one input to the router, timing it and noting the offers it made.
    fn call(&mut self, input: Input) {
        let started = Instant::now();
        let effects = self.router.handle(input, self.now);
        let took = nanos(started.elapsed());
        self.tally.inputs += 1;
        self.tally.router_nanos += took;
        let mut offered = false;
        for effect in effects {
            match effect {
                Effect::Offer { conversation, agent, .. } => {
                    offered = true;
                    self.tally.offers += 1;
                    self.offers.push_back((conversation, agent));
                    self.refill.push(service_index(conversation));
                }
                Effect::Requeued { .. } => self.tally.requeued += 1,
                Effect::Refused { .. } => self.tally.refused += 1,
                _ => {}
            }
        }
        if offered && let Some(calls) = &mut self.offer_calls {
            calls.push(took);
        }
    }

    /// A new chat in the service; returns whether it was offered at once.
    fn arrive(&mut self, service: u32) -> bool {
        self.next_chat += 1;
        let conversation = chat_id(service, self.next_chat);
        let before = self.tally.offers;
        self.tally.enqueued += 1;
        self.call(Input::Enqueue(Arrival::new(conversation, service_id(service))));
        self.tally.offers > before
    }

    /// Services, agents, then chats until every agent holds an offer and `queued` wait.
    fn setup(&mut self, params: &Params, rona_secs: u32) -> anyhow::Result<()> {
        let max_tasks = params.service_max_tasks.unwrap_or(u32::MAX);
        for s in 0..params.services {
            let rules = ServiceRules { max_tasks, rona_secs, ..ServiceRules::default() };
            self.call(Input::ServiceUpdated { service: service_id(s), rules });
        }
        let mut rng = StdRng::seed_from_u64(params.seed);
        for i in 0..params.agents {
            let services = memberships(i, params.services, &mut rng);
            self.add_agent(user_id(i), &services);
        }
        self.offer_to_every_agent(params.agents);
        self.fill_queues(params.queued)?;
        self.refill.clear();
        Ok(())
    }

    fn add_agent(&mut self, agent: UserId, services: &[u32]) {
        self.call(Input::AgentUpdated { agent, max_chats: 1, can_take_chats: true });
        for &s in services {
            self.call(Input::MembershipSet { service: service_id(s), agent, active: true });
        }
        self.call(Input::PresenceChanged { agent, presence: Presence::Available });
        self.call(Input::ConnectionChanged { agent, online: true });
    }

    /// One chat per agent in their home service, then more for whoever is still free (a chat
    /// of a service goes to any free member). Stops early for an agent whose home service is at
    /// its cap.
    fn offer_to_every_agent(&mut self, agents: u32) {
        for i in 0..agents {
            self.arrive(i % self.services);
        }
        let mut busy: HashSet<UserId> = self.offers.iter().map(|(_, a)| *a).collect();
        for i in 0..agents {
            while !busy.contains(&user_id(i)) {
                let seen = self.offers.len();
                if !self.arrive(i % self.services) {
                    break;
                }
                busy.extend(self.offers.range(seen..).map(|(_, a)| *a));
            }
        }
    }

    /// New chats round-robin over the services until `queued` wait.
    fn fill_queues(&mut self, queued: u32) -> anyhow::Result<()> {
        let target = u64::from(queued);
        // An arrival either waits or is offered to a free agent, of whom there are finitely many.
        let mut budget = target + self.offers.len() as u64 + u64::from(self.services) + 1;
        let mut s = 0;
        while self.waiting() < target {
            ensure!(budget > 0, "could not fill the queues to {queued}");
            budget -= 1;
            self.arrive(s);
            s = (s + 1) % self.services;
        }
        Ok(())
    }

    /// Runs the loop until `decisions` offers were made.
    fn measure(&mut self, decisions: u64) -> anyhow::Result<Measured> {
        self.offer_calls = Some(Vec::with_capacity(usize::try_from(decisions).unwrap_or(0)));
        let start = self.tally;
        let started = Instant::now();
        while self.tally.offers - start.offers < decisions {
            self.step()?;
        }
        let wall_secs = started.elapsed().as_secs_f64();
        let made = self.tally.offers - start.offers;
        let router_secs = (self.tally.router_nanos - start.router_nanos) as f64 / 1e9;
        let mut calls = self.offer_calls.take().unwrap_or_default();
        Ok(Measured {
            decisions: made,
            inputs: self.tally.inputs - start.inputs,
            wall_secs,
            decisions_per_sec: made as f64 / wall_secs,
            router_secs,
            decisions_per_sec_router_only: made as f64 / router_secs,
            offer_call_ns: Percentiles::of(&mut calls, 1.0),
            waiting_at_end: self.router.queued().len(),
            requeued: self.tally.requeued - start.requeued,
            refused: self.tally.refused - start.refused,
        })
    }

    /// One simulated millisecond: tick if due, the oldest offer is accepted and its chat
    /// finishes, new chats replace the ones offered.
    fn step(&mut self) -> anyhow::Result<()> {
        self.now += STEP;
        if self.router.next_deadline().is_some_and(|d| d <= self.now) {
            self.call(Input::Tick);
        }
        let (conversation, agent) =
            self.offers.pop_front().context("no offer outstanding: no agent can be offered a chat")?;
        self.call(Input::Accept { conversation, agent });
        self.call(Input::Finish { conversation });
        while let Some(s) = self.refill.pop() {
            self.arrive(s);
        }
        Ok(())
    }
}

/// The agent's services: home `i % services`, plus up to two others drawn from `rng`.
fn memberships(i: u32, services: u32, rng: &mut StdRng) -> Vec<u32> {
    let mut list = vec![i % services];
    let extra = rng.gen_range(0..=2).min(services - 1);
    while list.len() < 1 + extra as usize {
        let s = rng.gen_range(0..services);
        if !list.contains(&s) {
            list.push(s);
        }
    }
    list
}

fn service_id(i: u32) -> ServiceId {
    ServiceId::from_uuid(Uuid::from_u128(u128::from(i) + 1))
}

fn user_id(i: u32) -> UserId {
    UserId::from_uuid(Uuid::from_u128(u128::from(i) + 1))
}

/// A chat id that carries its service's index in the upper 64 bits.
fn chat_id(service: u32, n: u64) -> ConversationId {
    ConversationId::from_uuid(Uuid::from_u128((u128::from(service) << 64) | u128::from(n)))
}

fn service_index(c: ConversationId) -> u32 {
    u32::try_from(c.as_uuid().as_u128() >> 64).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_ids_carry_their_service() {
        assert_eq!(service_index(chat_id(49, 123_456)), 49);
        assert_ne!(chat_id(1, 2), chat_id(2, 1));
    }

    #[test]
    fn memberships_are_one_to_three_distinct_services_with_the_home_first() {
        let mut rng = StdRng::seed_from_u64(7);
        for i in 0..500 {
            let m = memberships(i, 50, &mut rng);
            assert!((1..=3).contains(&m.len()) && m[0] == i % 50);
            assert_eq!(m.iter().collect::<HashSet<_>>().len(), m.len());
        }
        assert_eq!(memberships(3, 1, &mut rng), [0]);
    }

    #[test]
    fn the_offer_deadline_outlasts_a_round_of_offers() {
        assert_eq!(rona_secs(5_000), 30);
        assert!(rona_secs(50_000) > 50);
    }
}
