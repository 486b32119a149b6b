//! Router behaviour, and a property test of its invariants over random input sequences.

use super::*;
use proptest::prelude::*;
use time::Duration;
use uuid::Uuid;

fn uid(n: u128) -> UserId {
    UserId::from_uuid(Uuid::from_u128(n))
}
fn cid(n: u128) -> ConversationId {
    ConversationId::from_uuid(Uuid::from_u128(1000 + n))
}
fn sid(n: u128) -> ServiceId {
    ServiceId::from_uuid(Uuid::from_u128(9000 + n))
}
fn t(secs: i64) -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH + Duration::seconds(secs)
}

/// A router with `n` ready agents (ids 1..=n) in service 1, agent k available since time k.
fn ready(n: u128, max_chats: u32) -> Router {
    let mut r = Router::new();
    for a in 1..=n {
        let at = t(i64::try_from(a).unwrap());
        r.handle(Input::AgentUpdated { agent: uid(a), max_chats, can_take_chats: true }, at);
        r.handle(Input::MembershipSet { service: sid(1), agent: uid(a), active: true }, at);
        r.handle(Input::ConnectionChanged { agent: uid(a), online: true }, at);
        r.handle(Input::PresenceChanged { agent: uid(a), presence: Presence::Available }, at);
    }
    r
}

#[test]
fn offer_goes_to_longest_idle_agent() {
    let mut r = ready(3, 1);
    let fx = r.handle(Input::Enqueue { conversation: cid(1), service: sid(1), priority: Priority::Normal }, t(100));
    assert_eq!(fx, [Effect::Offer { conversation: cid(1), agent: uid(1) }]);
}

#[test]
fn an_agent_who_just_finished_a_chat_goes_to_the_back() {
    let mut r = ready(2, 1);
    r.handle(Input::Enqueue { conversation: cid(1), service: sid(1), priority: Priority::Normal }, t(100));
    r.handle(Input::Accept { conversation: cid(1), agent: uid(1) }, t(101));
    r.handle(Input::Finish { conversation: cid(1) }, t(200));
    let fx = r.handle(Input::Enqueue { conversation: cid(2), service: sid(1), priority: Priority::Normal }, t(300));
    assert_eq!(fx, [Effect::Offer { conversation: cid(2), agent: uid(2) }]);
}

#[test]
fn time_signed_out_does_not_count_as_idle() {
    let mut r = ready(2, 1);
    r.handle(Input::ConnectionChanged { agent: uid(1), online: false }, t(10));
    r.handle(Input::ConnectionChanged { agent: uid(1), online: true }, t(500));
    let fx = r.handle(Input::Enqueue { conversation: cid(1), service: sid(1), priority: Priority::Normal }, t(600));
    assert_eq!(fx, [Effect::Offer { conversation: cid(1), agent: uid(2) }]);
}

#[test]
fn a_chat_waits_when_every_agent_is_at_capacity() {
    let mut r = ready(1, 1);
    r.handle(Input::Enqueue { conversation: cid(1), service: sid(1), priority: Priority::Normal }, t(10));
    r.handle(Input::Accept { conversation: cid(1), agent: uid(1) }, t(11));
    assert!(
        r.handle(Input::Enqueue { conversation: cid(2), service: sid(1), priority: Priority::Normal }, t(12))
            .is_empty()
    );
    assert_eq!(r.queued(), [cid(2)]);
    let fx = r.handle(Input::Finish { conversation: cid(1) }, t(13));
    assert_eq!(fx, [Effect::Offer { conversation: cid(2), agent: uid(1) }]);
}

#[test]
fn an_agent_holds_one_offer_at_a_time_even_with_spare_capacity() {
    let mut r = ready(1, 3);
    r.handle(Input::Enqueue { conversation: cid(1), service: sid(1), priority: Priority::Normal }, t(10));
    assert!(
        r.handle(Input::Enqueue { conversation: cid(2), service: sid(1), priority: Priority::Normal }, t(11))
            .is_empty()
    );
    let fx = r.handle(Input::Accept { conversation: cid(1), agent: uid(1) }, t(12));
    assert_eq!(
        fx,
        [
            Effect::Connected { conversation: cid(1), agent: uid(1) },
            Effect::Offer { conversation: cid(2), agent: uid(1) }
        ]
    );
}

#[test]
fn decline_offers_the_chat_to_the_next_agent() {
    let mut r = ready(2, 1);
    r.handle(Input::Enqueue { conversation: cid(1), service: sid(1), priority: Priority::Normal }, t(10));
    let fx = r.handle(Input::Decline { conversation: cid(1), agent: uid(1) }, t(11));
    assert_eq!(
        fx,
        [
            Effect::OfferWithdrawn { conversation: cid(1), agent: uid(1) },
            Effect::Requeued { conversation: cid(1) },
            Effect::Offer { conversation: cid(1), agent: uid(2) },
        ]
    );
}

#[test]
fn accept_of_an_offer_held_by_someone_else_is_refused() {
    let mut r = ready(2, 1);
    r.handle(Input::Enqueue { conversation: cid(1), service: sid(1), priority: Priority::Normal }, t(10));
    let fx = r.handle(Input::Accept { conversation: cid(1), agent: uid(2) }, t(11));
    assert_eq!(fx, [Effect::Refused { conversation: cid(1), agent: uid(2), reason: "offer_not_found" }]);
    assert_eq!(r.offered_to(cid(1)), Some(uid(1)));
}

#[test]
fn customer_leaving_during_an_offer_withdraws_it() {
    let mut r = ready(1, 1);
    r.handle(Input::Enqueue { conversation: cid(1), service: sid(1), priority: Priority::Normal }, t(10));
    let fx = r.handle(Input::Finish { conversation: cid(1) }, t(11));
    assert_eq!(fx, [Effect::OfferWithdrawn { conversation: cid(1), agent: uid(1) }]);
}

#[test]
fn inactive_members_offline_and_unavailable_agents_get_no_offers() {
    let mut r = ready(3, 1);
    r.handle(Input::MembershipSet { service: sid(1), agent: uid(1), active: false }, t(10));
    r.handle(Input::ConnectionChanged { agent: uid(2), online: false }, t(10));
    r.handle(Input::PresenceChanged { agent: uid(3), presence: Presence::Away }, t(10));
    assert!(
        r.handle(Input::Enqueue { conversation: cid(1), service: sid(1), priority: Priority::Normal }, t(11))
            .is_empty()
    );
    let fx = r.handle(Input::PresenceChanged { agent: uid(3), presence: Presence::Available }, t(12));
    assert_eq!(fx, [Effect::Offer { conversation: cid(1), agent: uid(3) }]);
}

#[test]
fn going_away_withdraws_a_pending_offer_and_requeues_the_chat() {
    let mut r = ready(2, 1);
    r.handle(Input::Enqueue { conversation: cid(1), service: sid(1), priority: Priority::Normal }, t(10));
    let fx = r.handle(Input::PresenceChanged { agent: uid(1), presence: Presence::Away }, t(11));
    assert_eq!(
        fx,
        [
            Effect::OfferWithdrawn { conversation: cid(1), agent: uid(1) },
            Effect::Requeued { conversation: cid(1) },
            Effect::Offer { conversation: cid(1), agent: uid(2) },
        ]
    );
}

#[test]
fn queue_order_is_arrival_order_and_kept_after_a_decline() {
    let mut r = ready(1, 1);
    r.handle(Input::MembershipSet { service: sid(1), agent: uid(1), active: false }, t(1));
    for n in 1..=3 {
        r.handle(Input::Enqueue { conversation: cid(n), service: sid(1), priority: Priority::Normal }, t(10));
    }
    assert_eq!(r.queued(), [cid(1), cid(2), cid(3)]);
}

#[test]
fn position_counts_waiting_chats_of_the_same_service() {
    let mut r = ready(1, 1);
    r.handle(Input::MembershipSet { service: sid(1), agent: uid(1), active: false }, t(1));
    for n in 1..=3 {
        r.handle(Input::Enqueue { conversation: cid(n), service: sid(1), priority: Priority::Normal }, t(10));
    }
    r.handle(Input::Enqueue { conversation: cid(9), service: sid(2), priority: Priority::Normal }, t(10));
    assert_eq!([r.position(cid(1)), r.position(cid(3)), r.position(cid(9))], [Some(1), Some(3), Some(1)]);
    assert_eq!(r.phase(cid(2)), Some(Phase::Queued));
    assert_eq!(r.staffing(sid(1)), Staffing { present: 0, free: 0 });
    r.handle(Input::MembershipSet { service: sid(1), agent: uid(1), active: true }, t(11));
    assert_eq!(r.phase(cid(1)), Some(Phase::Offered));
    assert_eq!(r.position(cid(2)), Some(1));
    assert_eq!(r.staffing(sid(1)), Staffing { present: 1, free: 0 });
}

#[test]
fn higher_priority_is_offered_first_whatever_its_entry_time() {
    let mut r = ready(1, 1);
    let busy = |r: &mut Router, at| r.handle(Input::PresenceChanged { agent: uid(1), presence: Presence::Busy }, t(at));
    busy(&mut r, 10);
    for (n, p) in [(1, Priority::Low), (2, Priority::Normal), (3, Priority::Strict), (4, Priority::High)] {
        r.handle(Input::Enqueue { conversation: cid(n), service: sid(1), priority: p }, t(20));
    }
    assert_eq!(r.queued(), [cid(3), cid(4), cid(2), cid(1)]);
    assert_eq!(r.position(cid(1)), Some(4));
    let fx = r.handle(Input::PresenceChanged { agent: uid(1), presence: Presence::Available }, t(30));
    assert_eq!(fx, [Effect::Offer { conversation: cid(3), agent: uid(1) }]);
}

#[test]
fn raising_priority_moves_a_chat_ahead_but_keeps_its_place_among_equals() {
    let mut r = Router::new();
    for n in 1..=3 {
        r.handle(Input::Enqueue { conversation: cid(n), service: sid(1), priority: Priority::Normal }, t(n as i64));
    }
    r.handle(Input::SetPriority { conversation: cid(3), priority: Priority::High }, t(5));
    assert_eq!(r.queued(), [cid(3), cid(1), cid(2)]);
    r.handle(Input::SetPriority { conversation: cid(3), priority: Priority::Normal }, t(6));
    assert_eq!(r.queued(), [cid(1), cid(2), cid(3)], "entry time decides among equal priorities");
}

// ---- property test -------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Agent(u8, u32),
    Presence(u8, bool),
    Online(u8, bool),
    Member(u8, u8, bool),
    Enqueue(u8, u8, u8),
    SetPriority(u8, u8),
    Accept(u8),
    Decline(u8),
    Finish(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..5, 1u32..4).prop_map(|(a, m)| Op::Agent(a, m)),
        (0u8..5, any::<bool>()).prop_map(|(a, p)| Op::Presence(a, p)),
        (0u8..5, any::<bool>()).prop_map(|(a, o)| Op::Online(a, o)),
        (0u8..2, 0u8..5, any::<bool>()).prop_map(|(s, a, x)| Op::Member(s, a, x)),
        (0u8..12, 0u8..2, 0u8..4).prop_map(|(c, s, p)| Op::Enqueue(c, s, p)),
        (0u8..12, 0u8..4).prop_map(|(c, p)| Op::SetPriority(c, p)),
        (0u8..12).prop_map(Op::Accept),
        (0u8..12).prop_map(Op::Decline),
        (0u8..12).prop_map(Op::Finish),
    ]
}

fn prio(n: u8) -> Priority {
    [Priority::Low, Priority::Normal, Priority::High, Priority::Strict][usize::from(n % 4)]
}

fn to_input(r: &Router, op: &Op) -> Input {
    let a = |n: u8| uid(u128::from(n));
    let c = |n: u8| cid(u128::from(n));
    let s = |n: u8| sid(u128::from(n));
    match *op {
        Op::Agent(x, m) => Input::AgentUpdated { agent: a(x), max_chats: m, can_take_chats: true },
        Op::Presence(x, p) => {
            Input::PresenceChanged { agent: a(x), presence: if p { Presence::Available } else { Presence::Busy } }
        }
        Op::Online(x, o) => Input::ConnectionChanged { agent: a(x), online: o },
        Op::Member(sv, x, act) => Input::MembershipSet { service: s(sv), agent: a(x), active: act },
        Op::Enqueue(cv, sv, p) => Input::Enqueue { conversation: c(cv), service: s(sv), priority: prio(p) },
        Op::SetPriority(cv, p) => Input::SetPriority { conversation: c(cv), priority: prio(p) },
        // Accept/decline by whoever holds the offer, so the interesting paths are exercised.
        Op::Accept(cv) => Input::Accept { conversation: c(cv), agent: r.offered_to(c(cv)).unwrap_or(a(0)) },
        Op::Decline(cv) => Input::Decline { conversation: c(cv), agent: r.offered_to(c(cv)).unwrap_or(a(0)) },
        Op::Finish(cv) => Input::Finish { conversation: c(cv) },
    }
}

fn check_invariants(r: &Router) -> Result<(), TestCaseError> {
    for (id, a) in &r.agents {
        // Chats above capacity can only come from lowering the capacity; an offer never does.
        if a.offer.is_some() {
            prop_assert!(a.chats.len() < a.max_chats as usize, "agent {id:?} holds an offer at capacity");
        }
        if let Some(c) = a.offer {
            prop_assert_eq!(r.offered_to(c), Some(*id), "agent's offer and task disagree");
        }
    }
    for (c, t) in &r.tasks {
        match t.state {
            TaskState::Offered(a) => prop_assert_eq!(r.agents[&a].offer, Some(*c)),
            TaskState::Connected(a) => prop_assert!(r.agents[&a].chats.contains(c)),
            TaskState::Queued => prop_assert!(r.pick(t).is_none(), "{c:?} waits while an eligible agent is free"),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn prop_router_never_over_assigns_and_never_leaves_work_idle(ops in proptest::collection::vec(op(), 1..80)) {
        let mut r = Router::new();
        for (i, o) in ops.iter().enumerate() {
            let input = to_input(&r, o);
            let fx = r.handle(input, t(i64::try_from(i).unwrap()));
            for e in &fx {
                if let Effect::Offer { agent, .. } = e {
                    let a = &r.agents[agent];
                    prop_assert!(a.chats.len() < a.max_chats as usize, "offered to a full agent");
                }
            }
            check_invariants(&r)?;
        }
    }
}
