//! A contact-center day, simulated against the router.
//!
//! The unit tests pin one rule each and the oracle compares single dispatch decisions on short
//! random sequences; neither shows the rules working together over hours of realistic traffic.
//! Here one router is driven through an eight-hour day as a discrete-event simulation: customers
//! arrive at random (Poisson), wait, give up when their patience runs out; agents ring, answer,
//! decline or miss offers (two of them decline a third of what they are offered), handle chats, do
//! after-chat work and take breaks. The simulation keeps
//! its own model of the world, built only from the inputs it sends and the effects it receives,
//! and after every step checks the router against it.
//!
//! Preferred and last agents are left out: with them a chat may wait beside a free agent by
//! design, and the oracle in `oracle.rs` covers them.
//!
//! Time comes only from the simulation's clock (`now` is passed in, deadlines come back through
//! [`Router::next_deadline`]) and randomness from one seeded generator, so a failing day replays
//! exactly.

use super::tests::{cid, sid, t, uid};
use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DAY_SECS: i64 = 8 * 3600;
const SALES: usize = 0;
const SUPPORT: usize = 1;
/// Agents ring for at most this long before answering, below every service's RONA timeout, so
/// a missed offer is always one the agent chose to miss.
const MAX_RING_SECS: i64 = 20;

/// How one service's traffic and agents behave.
struct ServicePlan {
    name: &'static str,
    rules: ServiceRules,
    mean_gap_secs: f64,
    /// Handling times are lognormal around this median.
    median_handle_secs: f64,
    /// Shares of Low, Normal and High; the rest is Strict.
    mix: [f64; 3],
    /// Chance that the agent lets an offer ring out.
    no_answer: f64,
    /// Chance that the agent declines an offer.
    decline: f64,
}

fn plans() -> [ServicePlan; 2] {
    [
        ServicePlan {
            name: "sales",
            rules: ServiceRules {
                aging_secs: Some(120),
                // A chat passed on goes straight back when nobody else can take it.
                reoffer_secs: 0,
                rona_secs: 30,
                acw_secs: 30,
                acw_max_extensions: 1,
                ..ServiceRules::default()
            },
            mean_gap_secs: 32.0,
            median_handle_secs: 200.0,
            mix: [0.15, 0.68, 0.15],
            no_answer: 0.02,
            decline: 0.03,
        },
        ServicePlan {
            name: "support",
            rules: ServiceRules {
                // Below its members' ten chat slots, so the service's own limit binds at peaks.
                max_tasks: 7,
                rona_secs: 25,
                persistent_rona: true,
                rona_reset_secs: Some(300),
                acw_secs: 60,
                acw_max_extensions: 2,
                reoffer_secs: 90,
                ..ServiceRules::default()
            },
            mean_gap_secs: 78.0,
            median_handle_secs: 300.0,
            mix: [0.10, 0.80, 0.09],
            no_answer: 0.03,
            decline: 0.02,
        },
    ]
}

/// Capacity and services of each agent: five sell, four support, three do both.
const STAFF: [(u32, &[usize]); 12] = [
    (2, &[SALES]),
    (1, &[SALES]),
    (1, &[SALES]),
    (2, &[SALES]),
    (1, &[SALES]),
    (1, &[SUPPORT]),
    (2, &[SUPPORT]),
    (1, &[SUPPORT]),
    (1, &[SUPPORT]),
    (2, &[SALES, SUPPORT]),
    (1, &[SALES, SUPPORT]),
    (2, &[SALES, SUPPORT]),
];
/// Decline a third of their offers: the re-offer rules must still serve their customers.
const RELUCTANT: [usize; 2] = [1, 6];
const RELUCTANT_DECLINE: f64 = 0.35;
/// Signs in half an hour late.
const LATE_AGENT: usize = 11;
/// Signs out half an hour early, possibly in the middle of chats.
const EARLY_AGENT: usize = 10;

/// Queue rank as the module documents it: Strict first, then (with aging) entry time minus one
/// aging period per level, else priority then entry time; arrival order breaks ties.
type Rank = (u8, i64, i64, usize);

fn level(p: Priority) -> i64 {
    match p {
        Priority::Low => 0,
        Priority::Normal => 1,
        Priority::High => 2,
        Priority::Strict => 3,
    }
}

#[derive(Debug)]
struct Chat {
    service: usize,
    priority: Priority,
    arrived: i64,
    first_offered: Option<i64>,
    connected: Option<i64>,
    /// Who it is connected to.
    agent: Option<usize>,
    ended: Option<i64>,
    abandoned: bool,
    /// The agent the chat is on offer to, with the offer's number, so a late answer to an
    /// earlier offer is recognised as stale.
    offer: Option<(usize, u32)>,
    offers: u32,
    /// Agents who declined or missed it, and when they last did: the router offers it to them
    /// again only when no one else can take it and the service's re-offer wait is over.
    passed_by: BTreeMap<usize, i64>,
}

impl Chat {
    fn rank(&self, index: usize, rules: &ServiceRules) -> Rank {
        let tier = u8::from(self.priority != Priority::Strict);
        match rules.aging_secs {
            Some(aging) => (tier, self.arrived - level(self.priority) * i64::from(aging), 0, index),
            None => (tier, -level(self.priority), self.arrived, index),
        }
    }
}

#[derive(Debug)]
struct Agent {
    capacity: u32,
    services: &'static [usize],
    online: bool,
    presence: Presence,
    chats: BTreeSet<usize>,
    offer: Option<usize>,
    acw_since: Option<i64>,
    acw_until: Option<i64>,
    /// Counts after-chat work periods, so a planned early end does not hit a later period.
    acw_period: u32,
    rona: bool,
    rona_period: u32,
    staffed_secs: i64,
    occupied_secs: i64,
    chat_secs: i64,
    slot_secs: i64,
}

impl Agent {
    /// Could be offered a chat of `service` now (all memberships in the simulation are active).
    fn free_for(&self, service: usize) -> bool {
        self.services.contains(&service)
            && self.online
            && self.presence == Presence::Available
            && self.offer.is_none()
            && self.acw_since.is_none()
            && !self.rona
            && self.chats.len() < self.capacity as usize
    }

    fn working(&self) -> bool {
        !self.chats.is_empty() || self.acw_since.is_some()
    }
}

#[derive(Debug, Clone, Copy)]
enum Event {
    Arrival(usize),
    Answer {
        chat: usize,
        agent: usize,
        offer: u32,
        accept: bool,
    },
    ChatEnds(usize),
    CustomerGivesUp(usize),
    EndAcwEarly {
        agent: usize,
        period: u32,
    },
    ExtendAcw {
        agent: usize,
        period: u32,
    },
    ResetRona {
        agent: usize,
        period: u32,
    },
    Presence {
        agent: usize,
        presence: Presence,
    },
    /// A phone call or a colleague's question: Busy for a while, if Available now.
    Interrupted {
        agent: usize,
        secs: i64,
    },
    BackFromInterruption(usize),
    Connection {
        agent: usize,
        online: bool,
    },
}

/// Counts over the day, by priority.
#[derive(Debug, Default, Clone, PartialEq)]
struct Tally {
    arrived: usize,
    offered: usize,
    served: usize,
    abandoned: usize,
    still_waiting: usize,
    /// Arrival to connection, of the served chats.
    waits: Vec<i64>,
}

#[derive(Debug, Default, Clone, PartialEq)]
struct DayReport {
    /// By service, then priority.
    tallies: BTreeMap<(usize, Priority), Tally>,
    arrivals_by_service: [usize; 2],
    offers: usize,
    declines: usize,
    /// Offers of a chat to an agent who had passed on it.
    reoffers: usize,
    ronas: usize,
    rona_flags: usize,
    rona_manual_resets: usize,
    withdrawn_for_unavailability: usize,
    acw_secs: i64,
    acw_periods: usize,
    acw_early_ends: usize,
    acw_extensions: usize,
    /// Extensions whose new end came before the end already granted.
    acw_extensions_that_shortened: usize,
    /// Offers made before the agent's after-chat work began, accepted during it.
    accepted_during_acw: usize,
    stale_answers: usize,
    occupancy: f64,
    slot_utilisation: f64,
    aging: AgingCheck,
}

/// The longest first wait of a Low sales chat against the bounds aging promises it.
#[derive(Debug, Default, Clone, PartialEq)]
struct AgingCheck {
    longest_low_wait: i64,
    /// Aging period + longest gap between Normal arrivals + longest first wait of a Normal chat.
    bound_behind_normal: i64,
    /// Two aging periods + longest gap between High arrivals + longest first wait of a High chat.
    bound_behind_high: i64,
    /// Low chats whose wait came within a minute of their own bound.
    close_calls: usize,
}

struct Day {
    router: Router,
    rng: StdRng,
    plans: [ServicePlan; 2],
    now: i64,
    events: BTreeMap<(i64, u64), Event>,
    next_event: u64,
    chats: Vec<Chat>,
    chat_ids: BTreeMap<ConversationId, usize>,
    agents: Vec<Agent>,
    /// Per service: chats waiting, by rank.
    waiting: [BTreeSet<(Rank, usize)>; 2],
    /// Per service: chats offered or connected.
    active: [u32; 2],
    report: DayReport,
}

fn agent_id(index: usize) -> UserId {
    uid(index as u128 + 1)
}
fn chat_id(index: usize) -> ConversationId {
    cid(index as u128)
}
fn service_id(index: usize) -> ServiceId {
    sid(index as u128 + 1)
}
fn secs(at: OffsetDateTime) -> i64 {
    (at - t(0)).whole_seconds()
}

impl Day {
    fn new(seed: u64) -> Self {
        let agents = STAFF
            .iter()
            .map(|&(capacity, services)| Agent {
                capacity,
                services,
                online: false,
                presence: Presence::Offline,
                chats: BTreeSet::new(),
                offer: None,
                acw_since: None,
                acw_until: None,
                acw_period: 0,
                rona: false,
                rona_period: 0,
                staffed_secs: 0,
                occupied_secs: 0,
                chat_secs: 0,
                slot_secs: 0,
            })
            .collect();
        let mut day = Self {
            router: Router::new(),
            rng: StdRng::seed_from_u64(seed),
            plans: plans(),
            now: 0,
            events: BTreeMap::new(),
            next_event: 0,
            chats: Vec::new(),
            chat_ids: BTreeMap::new(),
            agents,
            waiting: [BTreeSet::new(), BTreeSet::new()],
            active: [0, 0],
            report: DayReport::default(),
        };
        for s in [SALES, SUPPORT] {
            let rules = day.plans[s].rules.clone();
            day.send(Input::ServiceUpdated { service: service_id(s), rules });
            let first = day.exponential(day.plans[s].mean_gap_secs);
            day.schedule(first, Event::Arrival(s));
        }
        for (a, &(capacity, services)) in STAFF.iter().enumerate() {
            day.send(Input::AgentUpdated { agent: agent_id(a), max_chats: capacity, can_take_chats: true });
            for &s in services {
                day.send(Input::MembershipSet { service: service_id(s), agent: agent_id(a), active: true });
            }
            let sign_in = if a == LATE_AGENT { 1800 } else { 0 };
            day.schedule(sign_in, Event::Connection { agent: a, online: true });
            day.schedule(sign_in, Event::Presence { agent: a, presence: Presence::Available });
            // One or two breaks, between the first and the last hour.
            for _ in 0..day.rng.gen_range(1..=2) {
                let start = day.rng.gen_range(3600..DAY_SECS - 3600);
                let length = day.rng.gen_range(600..1800);
                day.schedule(start, Event::Presence { agent: a, presence: Presence::Away });
                day.schedule(start + length, Event::Presence { agent: a, presence: Presence::Available });
            }
            for _ in 0..3 {
                let at = day.rng.gen_range(600..DAY_SECS);
                let secs = day.rng.gen_range(60..300);
                day.schedule(at, Event::Interrupted { agent: a, secs });
            }
        }
        day.schedule(DAY_SECS - 1800, Event::Connection { agent: EARLY_AGENT, online: false });
        day
    }

    // ---- randomness ------------------------------------------------------------------------

    /// Whole seconds, at least one, exponentially distributed around `mean`.
    fn exponential(&mut self, mean: f64) -> i64 {
        let u: f64 = self.rng.gen_range(0.0..1.0);
        ((-mean * (1.0 - u).ln()).round() as i64).max(1)
    }

    /// Whole seconds, at least ten, lognormal around `median` (a long right tail, like real chats).
    fn lognormal(&mut self, median: f64, sigma: f64) -> i64 {
        // Box–Muller.
        let u1: f64 = self.rng.gen_range(f64::EPSILON..1.0);
        let u2: f64 = self.rng.gen_range(0.0..1.0);
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        ((median * (sigma * z).exp()).round() as i64).max(10)
    }

    fn priority(&mut self, service: usize) -> Priority {
        let [low, normal, high] = self.plans[service].mix;
        let u: f64 = self.rng.gen_range(0.0..1.0);
        if u < low {
            Priority::Low
        } else if u < low + normal {
            Priority::Normal
        } else if u < low + normal + high {
            Priority::High
        } else {
            Priority::Strict
        }
    }

    // ---- the event loop --------------------------------------------------------------------

    fn schedule(&mut self, at: i64, event: Event) {
        self.next_event += 1;
        self.events.insert((at, self.next_event), event);
    }

    /// Runs the day: the next of our own events or the router's deadlines, whichever is first
    /// (the router's first on a tie, so a deadline is never handled late).
    fn run(mut self) -> DayReport {
        loop {
            let event_at = self.events.first_key_value().map(|((at, _), _)| *at);
            let deadline_at = self.router.next_deadline().map(secs);
            let tick = match (event_at, deadline_at) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(e), Some(d)) => d <= e,
            };
            let Some(at) = (if tick { deadline_at } else { event_at }) else { break };
            if at > DAY_SECS {
                break;
            }
            assert!(at >= self.now, "time runs backwards: {at} after {}", self.now);
            self.advance_to(at);
            if tick {
                self.send(Input::Tick);
            } else if let Some((_, event)) = self.events.pop_first() {
                self.fire(event);
            }
        }
        self.advance_to(DAY_SECS);
        self.close_the_day()
    }

    /// Accounts agent time up to `at`.
    fn advance_to(&mut self, at: i64) {
        let dt = at - self.now;
        for a in &mut self.agents {
            // Staffed: signed in and either ready for chats or still working on some.
            let staffed = a.online && (a.presence == Presence::Available || a.working());
            if staffed {
                a.staffed_secs += dt;
                a.slot_secs += dt * i64::from(a.capacity);
                if a.working() {
                    a.occupied_secs += dt;
                }
            }
            a.chat_secs += dt * a.chats.len() as i64;
        }
        self.now = at;
    }

    fn fire(&mut self, event: Event) {
        match event {
            Event::Arrival(service) => self.arrive(service),
            Event::Answer { chat, agent, offer, accept } => {
                if self.chats[chat].offer != Some((agent, offer)) {
                    // Withdrawn meanwhile (no answer in time, customer gone, agent away): the
                    // offer is off the agent's screen, so there is nothing to click.
                    self.report.stale_answers += 1;
                } else if accept {
                    self.send(Input::Accept { conversation: chat_id(chat), agent: agent_id(agent) });
                } else {
                    self.report.declines += 1;
                    self.send(Input::Decline { conversation: chat_id(chat), agent: agent_id(agent) });
                }
            }
            Event::ChatEnds(chat) => {
                let c = &mut self.chats[chat];
                let agent = c.agent.expect("a chat ends only once connected");
                c.ended = Some(self.now);
                self.agents[agent].chats.remove(&chat);
                self.active[c.service] -= 1;
                self.send(Input::Finish { conversation: chat_id(chat) });
            }
            Event::CustomerGivesUp(chat) => {
                let c = &mut self.chats[chat];
                if c.connected.is_some() {
                    return;
                }
                c.abandoned = true;
                c.ended = Some(self.now);
                let (service, rank) = (c.service, c.rank(chat, &self.plans[c.service].rules));
                self.waiting[service].remove(&(rank, chat));
                // An offered chat is taken off the agent's screen by the OfferWithdrawn effect.
                self.send(Input::Finish { conversation: chat_id(chat) });
            }
            Event::EndAcwEarly { agent, period } => {
                if self.in_acw_period(agent, period) {
                    self.report.acw_early_ends += 1;
                    self.send(Input::EndAcw { agent: agent_id(agent) });
                }
            }
            Event::ExtendAcw { agent, period } => {
                if self.in_acw_period(agent, period) {
                    let before = self.agents[agent].acw_until;
                    self.report.acw_extensions += 1;
                    self.send(Input::ExtendAcw { agent: agent_id(agent) });
                    if self.agents[agent].acw_until < before {
                        self.report.acw_extensions_that_shortened += 1;
                    }
                }
            }
            Event::ResetRona { agent, period } => {
                let a = &self.agents[agent];
                if a.rona && a.rona_period == period {
                    self.report.rona_manual_resets += 1;
                    self.send(Input::ResetRona { agent: agent_id(agent) });
                }
            }
            Event::Presence { agent, presence } => {
                self.agents[agent].presence = presence;
                self.send(Input::PresenceChanged { agent: agent_id(agent), presence });
            }
            Event::Connection { agent, online } => {
                self.agents[agent].online = online;
                self.send(Input::ConnectionChanged { agent: agent_id(agent), online });
            }
            Event::Interrupted { agent, secs } => {
                if self.agents[agent].presence == Presence::Available {
                    self.fire(Event::Presence { agent, presence: Presence::Busy });
                    self.schedule(self.now + secs, Event::BackFromInterruption(agent));
                }
            }
            Event::BackFromInterruption(agent) => {
                // A break that began meanwhile goes on.
                if self.agents[agent].presence == Presence::Busy {
                    self.fire(Event::Presence { agent, presence: Presence::Available });
                }
            }
        }
    }

    fn in_acw_period(&self, agent: usize, period: u32) -> bool {
        let a = &self.agents[agent];
        a.acw_since.is_some() && a.acw_period == period
    }

    fn arrive(&mut self, service: usize) {
        let priority = self.priority(service);
        let chat = self.chats.len();
        self.chat_ids.insert(chat_id(chat), chat);
        self.chats.push(Chat {
            service,
            priority,
            arrived: self.now,
            first_offered: None,
            connected: None,
            agent: None,
            ended: None,
            abandoned: false,
            offer: None,
            offers: 0,
            passed_by: BTreeMap::new(),
        });
        let rank = self.chats[chat].rank(chat, &self.plans[service].rules);
        self.waiting[service].insert((rank, chat));
        self.report.arrivals_by_service[service] += 1;
        // Patience: most customers wait minutes, a few give up at once, a few wait very long.
        let patience = self.exponential(360.0).max(15);
        self.schedule(self.now + patience, Event::CustomerGivesUp(chat));
        let gap = self.exponential(self.plans[service].mean_gap_secs);
        self.schedule(self.now + gap, Event::Arrival(service));
        let arrival = Arrival::new(chat_id(chat), service_id(service)).with_priority(priority);
        self.send(Input::Enqueue(arrival));
    }

    /// One input: apply the effects to the world, then check the router against it.
    fn send(&mut self, input: Input) {
        let effects = self.router.handle(input.clone(), t(self.now));
        for effect in effects {
            self.apply(&effect, &input);
        }
        self.check();
    }

    fn chat_index(&self, id: ConversationId) -> usize {
        *self.chat_ids.get(&id).expect("a chat the simulation created")
    }
    fn agent_index(&self, id: UserId) -> usize {
        (0..self.agents.len()).find(|&a| agent_id(a) == id).expect("an agent the simulation created")
    }

    fn apply(&mut self, effect: &Effect, input: &Input) {
        let now = self.now;
        match *effect {
            Effect::Offer { conversation, agent, deadline } => {
                let (chat, agent) = (self.chat_index(conversation), self.agent_index(agent));
                self.offered(chat, agent, deadline);
            }
            Effect::OfferWithdrawn { conversation, agent } => {
                let (chat, agent) = (self.chat_index(conversation), self.agent_index(agent));
                let c = &mut self.chats[chat];
                assert_eq!(c.offer.map(|o| o.0), Some(agent), "withdrawn an offer that was not made: {effect:?}");
                c.offer = None;
                self.active[c.service] -= 1;
                self.agents[agent].offer = None;
            }
            Effect::Requeued { conversation, agent, reason } => {
                let (chat, agent) = (self.chat_index(conversation), self.agent_index(agent));
                match reason {
                    Requeue::Declined => {}
                    Requeue::NoAnswer => self.report.ronas += 1,
                    Requeue::AgentUnavailable => self.report.withdrawn_for_unavailability += 1,
                }
                let c = &mut self.chats[chat];
                assert!(c.offer.is_none() && c.ended.is_none(), "requeued a chat that is not back: {effect:?}");
                if reason != Requeue::AgentUnavailable {
                    c.passed_by.insert(agent, now);
                }
                let rank = c.rank(chat, &self.plans[c.service].rules);
                self.waiting[c.service].insert((rank, chat));
            }
            Effect::Connected { conversation, agent } => {
                let (chat, agent) = (self.chat_index(conversation), self.agent_index(agent));
                let c = &mut self.chats[chat];
                assert_eq!(c.offer.map(|o| o.0), Some(agent), "connected without an offer: {effect:?}");
                c.offer = None;
                c.connected = Some(now);
                c.agent = Some(agent);
                let handle = self.plans[c.service].median_handle_secs;
                let a = &mut self.agents[agent];
                a.offer = None;
                a.chats.insert(chat);
                self.report.accepted_during_acw += usize::from(a.acw_since.is_some());
                let handling = self.lognormal(handle, 0.6);
                self.schedule(now + handling, Event::ChatEnds(chat));
            }
            Effect::AcwStarted { agent, until } => {
                let agent = self.agent_index(agent);
                let until = secs(until);
                assert!(until > now, "after-chat work that is already over: {effect:?}");
                let a = &mut self.agents[agent];
                a.acw_until = Some(until);
                if a.acw_since.is_some() {
                    // Extended, or another chat ended during the after-chat work.
                    return;
                }
                a.acw_since = Some(now);
                a.acw_period += 1;
                let period = a.acw_period;
                self.report.acw_periods += 1;
                // Most agents use the time given; some are done early, some need more.
                let u: f64 = self.rng.gen_range(0.0..1.0);
                if u < 0.15 {
                    let at = self.rng.gen_range(now + 1..until);
                    self.schedule(at, Event::EndAcwEarly { agent, period });
                } else if u < 0.25 {
                    let at = self.rng.gen_range(now + 1..until);
                    self.schedule(at, Event::ExtendAcw { agent, period });
                }
            }
            Effect::AcwEnded { agent } => {
                let agent = self.agent_index(agent);
                let a = &mut self.agents[agent];
                let since = a.acw_since.take().expect("after-chat work ends only after it started");
                a.acw_until = None;
                self.report.acw_secs += now - since;
            }
            Effect::RonaFlagged { agent, until } => {
                let agent = self.agent_index(agent);
                let a = &mut self.agents[agent];
                assert!(!a.rona, "flagged twice: {effect:?}");
                assert_eq!(until.map(secs), Some(now + 300), "support resets a RONA flag after 300 s");
                a.rona = true;
                a.rona_period += 1;
                let period = a.rona_period;
                self.report.rona_flags += 1;
                // Some agents notice and clear the flag themselves before it times out.
                if self.rng.gen_bool(0.4) {
                    let at = now + self.rng.gen_range(20..240);
                    self.schedule(at, Event::ResetRona { agent, period });
                }
            }
            Effect::RonaCleared { agent } => {
                let agent = self.agent_index(agent);
                self.agents[agent].rona = false;
            }
            Effect::Refused { .. } => panic!("the simulation only sends inputs that fit: {input:?} -> {effect:?}"),
        }
    }

    /// An offer: it must be one the rules allow, then the agent's reaction is planned.
    fn offered(&mut self, chat: usize, agent: usize, deadline: OffsetDateTime) {
        let now = self.now;
        let c = &self.chats[chat];
        let service = c.service;
        let plan = &self.plans[service];
        let a = &self.agents[agent];
        assert!(c.offer.is_none() && c.connected.is_none() && c.ended.is_none(), "chat {chat} offered twice: {c:?}");
        assert!(a.free_for(service), "chat {chat} offered to agent {agent}, who cannot take it: {a:?}");
        let reoffer = i64::from(plan.rules.reoffer_secs);
        if let Some(&at) = c.passed_by.get(&agent) {
            // Offered again to someone who passed on it: only after the wait, and only when
            // nobody who has not passed on it is free.
            assert!(now >= at + reoffer, "chat {chat} offered again to agent {agent} {}s after they passed", now - at);
            let fresh = (0..self.agents.len())
                .find(|&b| b != agent && self.agents[b].free_for(service) && !c.passed_by.contains_key(&b));
            assert!(fresh.is_none(), "chat {chat} offered again to agent {agent} while agent {fresh:?} is free");
            self.report.reoffers += 1;
        }
        assert!(self.active[service] < plan.rules.max_tasks, "{} offered beyond its capacity", plan.name);
        assert_eq!(secs(deadline), now + i64::from(plan.rules.rona_secs), "offer deadline is the RONA timeout");
        // Order: a chat ranked ahead of this one and still waiting may only be passed over by
        // an agent who declined or missed it and is still in its re-offer wait.
        let rank = c.rank(chat, &plan.rules);
        for &(_, ahead) in self.waiting[service].range(..(rank, chat)) {
            assert!(
                self.chats[ahead].passed_by.get(&agent).is_some_and(|at| now < at + reoffer),
                "chat {chat} ({:?}) offered to agent {agent} while chat {ahead} ({:?}) waits ahead of it",
                c.priority,
                self.chats[ahead].priority,
            );
        }
        assert!(self.waiting[service].remove(&(rank, chat)), "an offered chat was waiting");

        let c = &mut self.chats[chat];
        c.offers += 1;
        c.offer = Some((agent, c.offers));
        c.first_offered.get_or_insert(now);
        let offer = c.offers;
        self.agents[agent].offer = Some(chat);
        self.active[service] += 1;
        self.report.offers += 1;

        let (no_answer, decline) = (plan.no_answer, plan.decline);
        let decline = if RELUCTANT.contains(&agent) { RELUCTANT_DECLINE } else { decline };
        let u: f64 = self.rng.gen_range(0.0..1.0);
        if u >= no_answer {
            let ring = self.rng.gen_range(2..=MAX_RING_SECS);
            let accept = u >= no_answer + decline;
            self.schedule(now + ring, Event::Answer { chat, agent, offer, accept });
        }
        // Now and then the phone rings while the offer does: the offer must go back to the queue
        // without counting as the agent's refusal.
        if self.rng.gen_bool(0.02) {
            let at = now + self.rng.gen_range(1..MAX_RING_SECS);
            let secs = self.rng.gen_range(60..300);
            self.schedule(at, Event::Interrupted { agent, secs });
        }
    }

    /// The router agrees with the world, and the world keeps the rules.
    fn check(&self) {
        let mut on_offer = BTreeSet::new();
        for (i, a) in self.agents.iter().enumerate() {
            let id = agent_id(i);
            let Some(status) = self.router.agent_status(id) else {
                // Not set up yet.
                assert!(!a.online && a.offer.is_none() && a.chats.is_empty(), "agent {i} unknown to the router");
                continue;
            };
            assert!(a.chats.len() <= a.capacity as usize, "agent {i} over capacity at {}: {a:?}", self.now);
            assert_eq!(status.chats, a.chats.len(), "chats of agent {i}");
            assert_eq!(status.rona, a.rona, "RONA flag of agent {i}");
            assert_eq!(status.acw_until.map(secs), a.acw_until, "after-chat work of agent {i}");
            if let Some(c) = a.offer {
                assert!(on_offer.insert(c), "chat {c} on offer to two agents");
                assert_eq!(self.router.offered_to(chat_id(c)), Some(id), "offer of chat {c}");
            }
        }
        for s in [SALES, SUPPORT] {
            let rules = &self.plans[s].rules;
            let queue = self.router.queue_of(service_id(s));
            let expected: Vec<ConversationId> = self.waiting[s].iter().map(|&(_, c)| chat_id(c)).collect();
            assert_eq!(queue, expected, "{} queue, in rank order, at {}", self.plans[s].name, self.now);

            let room = self.active[s] < rules.max_tasks;
            let free: Vec<usize> = (0..self.agents.len()).filter(|&a| room && self.agents[a].free_for(s)).collect();
            assert_eq!(
                self.router.staffing(service_id(s)).free as usize,
                free.len(),
                "free agents of {}",
                self.plans[s].name
            );
            // Nobody waits while an agent who could take it is free; only having passed on a
            // chat keeps an agent off it, and only for the service's re-offer wait.
            let reoffer = i64::from(rules.reoffer_secs);
            for &(_, c) in &self.waiting[s] {
                let waiting_out = |a: usize| self.chats[c].passed_by.get(&a).is_some_and(|at| self.now < at + reoffer);
                if let Some(&a) = free.iter().find(|&&a| !waiting_out(a)) {
                    panic!("chat {c} waits at {} while agent {a} is free: {:?}", self.now, self.chats[c]);
                }
            }
        }
    }

    // ---- the report ------------------------------------------------------------------------

    fn close_the_day(mut self) -> DayReport {
        let mut report = std::mem::take(&mut self.report);
        for (i, c) in self.chats.iter().enumerate() {
            let phase = self.router.phase(chat_id(i));
            let tally = report.tallies.entry((c.service, c.priority)).or_default();
            tally.arrived += 1;
            tally.offered += usize::from(c.first_offered.is_some());
            // Every arrival is accounted for exactly once, and the router agrees where it is.
            match (c.connected, c.abandoned, c.ended) {
                (Some(at), false, ended) => {
                    tally.served += 1;
                    tally.waits.push(at - c.arrived);
                    assert_eq!(phase, ended.is_none().then_some(Phase::Connected), "served chat {i}");
                }
                (None, true, Some(_)) => {
                    tally.abandoned += 1;
                    assert_eq!(phase, None, "abandoned chat {i}");
                }
                (None, false, None) => {
                    tally.still_waiting += 1;
                    assert!(matches!(phase, Some(Phase::Queued | Phase::Offered)), "waiting chat {i}: {phase:?}");
                }
                other => panic!("chat {i} is in no single state: {other:?} {c:?}"),
            }
        }
        let sum = |f: fn(&Agent) -> i64| self.agents.iter().map(f).sum::<i64>() as f64;
        report.occupancy = sum(|a| a.occupied_secs) / sum(|a| a.staffed_secs);
        report.slot_utilisation = sum(|a| a.chat_secs) / sum(|a| a.slot_secs);
        report.aging = self.check_aging();
        report
    }
}

impl Day {
    /// The aging bound, for the sales queue (aging period A).
    ///
    /// A Low chat entered at t0 has the key of a Normal chat entered at t0 + A and of a High one
    /// entered at t0 + 2A, and it entered first, so it ranks ahead of every Normal chat entered
    /// from t0 + A on and every High one from t0 + 2A on. The order check in `offered` makes
    /// sure no chat ranked behind it is offered while it waits without having been offered
    /// itself. So it is first offered no later than the first such chat Y that is offered at
    /// all: its first wait is at most (Y's arrival − t0) + Y's first wait. Over the day, with
    /// the observed higher-priority workload (how far apart those chats arrive, how long they
    /// wait):
    ///   first wait(Low) ≤ A + longest gap between Normal arrivals + longest first wait(Normal)
    ///   first wait(Low) ≤ 2A + longest gap between High arrivals + longest first wait(High)
    /// The per-chat bound is exact and asserted here. The day-wide ones are what the report
    /// shows and the tests assert; they are looser (the gap to the next arrival is at most the
    /// longest gap), which is the margin.
    fn check_aging(&self) -> AgingCheck {
        let aging = i64::from(self.plans[SALES].rules.aging_secs.expect("sales ages its queue"));
        let first_wait = |c: &Chat| c.first_offered.map(|at| at - c.arrived);
        // Offered sales chats of one priority, by arrival.
        let offered = |p: Priority| -> Vec<&Chat> {
            self.chats.iter().filter(|c| c.service == SALES && c.priority == p && c.first_offered.is_some()).collect()
        };
        let (normal, high) = (offered(Priority::Normal), offered(Priority::High));
        let day_bound = |chats: &[&Chat], credit: i64| {
            let gap = chats.windows(2).map(|w| w[1].arrived - w[0].arrived).max().unwrap_or(0);
            credit + gap + chats.iter().filter_map(|c| first_wait(c)).max().unwrap_or(0)
        };
        let mut check = AgingCheck {
            bound_behind_normal: day_bound(&normal, aging),
            bound_behind_high: day_bound(&high, 2 * aging),
            ..AgingCheck::default()
        };
        // The first chat of `chats` entered from `from` on bounds a Low chat entered at `t0`.
        let behind = |chats: &[&Chat], t0: i64, from: i64| {
            let y = chats[chats.partition_point(|c| c.arrived < from)..].first()?;
            Some(y.arrived - t0 + first_wait(y)?)
        };
        for (i, c) in self.chats.iter().enumerate() {
            let Some(wait) = first_wait(c).filter(|_| c.service == SALES && c.priority == Priority::Low) else {
                continue;
            };
            check.longest_low_wait = check.longest_low_wait.max(wait);
            let bound =
                [behind(&normal, c.arrived, c.arrived + aging), behind(&high, c.arrived, c.arrived + 2 * aging)]
                    .into_iter()
                    .flatten()
                    .min();
            if let Some(bound) = bound {
                assert!(wait <= bound, "Low sales chat {i} waited {wait} s, aging bounds it by {bound} s: {c:?}");
                check.close_calls += usize::from(bound - wait < 60);
            }
        }
        check
    }
}

/// Nearest-rank percentile of `values`; 0 for none.
fn percentile(values: &[i64], p: f64) -> i64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let rank = ((p * sorted.len() as f64).ceil() as usize).max(1);
    sorted.get(rank - 1).copied().unwrap_or(0)
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.arrived += other.arrived;
        self.offered += other.offered;
        self.served += other.served;
        self.abandoned += other.abandoned;
        self.still_waiting += other.still_waiting;
        self.waits.extend_from_slice(&other.waits);
    }
}

impl DayReport {
    /// Both services together.
    fn by_priority(&self) -> BTreeMap<Priority, Tally> {
        let mut all: BTreeMap<Priority, Tally> = BTreeMap::new();
        for ((_, p), t) in &self.tallies {
            all.entry(*p).or_default().add(t);
        }
        all
    }
}

fn print(report: &DayReport) {
    println!(
        "a simulated day: {} sales and {} support arrivals",
        report.arrivals_by_service[0], report.arrivals_by_service[1]
    );
    println!("service  priority arrived offered served abandoned waiting  avg wait  p90 wait  max wait");
    let names = plans().map(|p| p.name);
    let rows = report.tallies.iter().map(|((s, p), t)| (names[*s], *p, t.clone()));
    for (service, p, t) in rows.chain(report.by_priority().into_iter().map(|(p, t)| ("both", p, t))) {
        let avg = if t.waits.is_empty() { 0.0 } else { t.waits.iter().sum::<i64>() as f64 / t.waits.len() as f64 };
        println!(
            "{:<8} {:<8} {:>7} {:>7} {:>6} {:>9} {:>7} {:>8.1}s {:>8}s {:>8}s",
            service,
            format!("{p:?}"),
            t.arrived,
            t.offered,
            t.served,
            t.abandoned,
            t.still_waiting,
            avg,
            percentile(&t.waits, 0.9),
            t.waits.iter().max().copied().unwrap_or(0),
        );
    }
    println!(
        "occupancy {:.1} % (time working of time staffed), chat slots in use {:.1} %",
        report.occupancy * 100.0,
        report.slot_utilisation * 100.0
    );
    println!(
        "offers {}, declines {}, offered again to an agent who passed {}, RONA {} (flags {}, reset by hand {}), \
         taken back as agent unavailable {}, stale answers {}",
        report.offers,
        report.declines,
        report.reoffers,
        report.ronas,
        report.rona_flags,
        report.rona_manual_resets,
        report.withdrawn_for_unavailability,
        report.stale_answers
    );
    println!(
        "after-chat work {} periods, {} s in all, {} ended early, {} extended ({} of them shortened it), \
         {} offers accepted during it",
        report.acw_periods,
        report.acw_secs,
        report.acw_early_ends,
        report.acw_extensions,
        report.acw_extensions_that_shortened,
        report.accepted_during_acw
    );
    let aging = &report.aging;
    println!(
        "aging: longest first wait of a Low sales chat {} s; bounds {} s (behind Normal), {} s (behind High); \
         {} Low chats within a minute of their own bound",
        aging.longest_low_wait, aging.bound_behind_normal, aging.bound_behind_high, aging.close_calls
    );
}

#[test]
fn a_simulated_day_keeps_every_invariant_and_reports_waits_occupancy_and_rona() {
    let report = Day::new(20_240_601).run();
    print(&report);

    let by_priority = report.by_priority();
    let arrived: usize = by_priority.values().map(|t| t.arrived).sum();
    assert_eq!(arrived, report.arrivals_by_service.iter().sum::<usize>());
    assert!(arrived > 1000, "a busy day: {arrived} arrivals");
    assert!(by_priority.len() == 4, "every priority occurs: {:?}", by_priority.keys());
    assert!(0.0 < report.occupancy && report.occupancy <= 1.0, "occupancy {}", report.occupancy);
    assert!(0.0 < report.slot_utilisation && report.slot_utilisation <= report.occupancy);
    assert!(report.ronas > 0 && report.rona_flags > 0 && report.declines > 0, "the unhappy paths ran");
    assert!(report.reoffers > 0, "chats went back to agents who had passed on them");
    assert!(report.acw_early_ends > 0 && report.acw_extensions > 0);
    assert!(report.rona_flags <= report.ronas, "only support's misses flag the agent");
    let served: usize = by_priority.values().map(|t| t.served).sum();
    assert!(served * 10 > arrived * 8, "most customers are served: {served} of {arrived}");
    let aging = &report.aging;
    assert!(aging.longest_low_wait <= aging.bound_behind_normal.min(aging.bound_behind_high), "{aging:?}");
}

#[test]
fn the_same_seed_replays_the_same_day() {
    assert_eq!(Day::new(7).run(), Day::new(7).run());
}

#[test]
fn other_days_keep_every_invariant_too() {
    // Different traffic, the same rules: every check runs inside the simulation.
    for seed in 1..=3 {
        let report = Day::new(seed).run();
        let aging = &report.aging;
        assert!(aging.longest_low_wait <= aging.bound_behind_normal.min(aging.bound_behind_high), "{aging:?}");
    }
}
