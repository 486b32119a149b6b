//! Router behaviour, rule by rule. The oracle comparison over random input sequences is in
//! `oracle.rs`.

use super::*;
use time::Duration;
use uuid::Uuid;

pub(super) fn uid(n: u128) -> UserId {
    UserId::from_uuid(Uuid::from_u128(n))
}
pub(super) fn cid(n: u128) -> ConversationId {
    ConversationId::from_uuid(Uuid::from_u128(1000 + n))
}
pub(super) fn sid(n: u128) -> ServiceId {
    ServiceId::from_uuid(Uuid::from_u128(9000 + n))
}
pub(super) fn t(secs: i64) -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH + Duration::seconds(1_700_000_000 + secs)
}

/// A router with `n` ready agents (ids 1..=n) in service 1, agent k available since time k.
fn ready(n: u128, max_chats: u32) -> Router {
    ready_with(n, max_chats, ServiceRules::default())
}

fn ready_with(n: u128, max_chats: u32, rules: ServiceRules) -> Router {
    let mut r = Router::new();
    r.handle(Input::ServiceUpdated { service: sid(1), rules }, t(0));
    for a in 1..=n {
        let at = t(i64::try_from(a).unwrap());
        r.handle(Input::AgentUpdated { agent: uid(a), max_chats, can_take_chats: true }, at);
        r.handle(Input::MembershipSet { service: sid(1), agent: uid(a), active: true }, at);
        r.handle(Input::ConnectionChanged { agent: uid(a), online: true }, at);
        r.handle(Input::PresenceChanged { agent: uid(a), presence: Presence::Available }, at);
    }
    r
}

fn enqueue(r: &mut Router, n: u128, at: i64) -> Vec<Effect> {
    r.handle(Input::Enqueue(Arrival::new(cid(n), sid(1))), t(at))
}

fn offer(n: u128, agent: u128, at: i64) -> Effect {
    Effect::Offer { conversation: cid(n), agent: uid(agent), deadline: t(at + 30) }
}

fn offers(fx: &[Effect]) -> Vec<(ConversationId, UserId)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Offer { conversation, agent, .. } => Some((*conversation, *agent)),
            _ => None,
        })
        .collect()
}

#[test]
fn offer_goes_to_longest_idle_agent() {
    let mut r = ready(3, 1);
    assert_eq!(enqueue(&mut r, 1, 100), [offer(1, 1, 100)]);
}

#[test]
fn an_agent_who_just_finished_a_chat_goes_to_the_back() {
    let mut r = ready(2, 1);
    enqueue(&mut r, 1, 100);
    r.handle(Input::Accept { conversation: cid(1), agent: uid(1) }, t(101));
    r.handle(Input::Finish { conversation: cid(1) }, t(200));
    assert_eq!(enqueue(&mut r, 2, 300), [offer(2, 2, 300)]);
}

#[test]
fn time_signed_out_does_not_count_as_idle() {
    let mut r = ready(2, 1);
    r.handle(Input::ConnectionChanged { agent: uid(1), online: false }, t(10));
    r.handle(Input::ConnectionChanged { agent: uid(1), online: true }, t(500));
    assert_eq!(enqueue(&mut r, 1, 600), [offer(1, 2, 600)]);
}

#[test]
fn fewer_chats_beats_longer_idle_for_agents_with_spare_capacity() {
    let mut r = ready(2, 2);
    enqueue(&mut r, 1, 10);
    r.handle(Input::Accept { conversation: cid(1), agent: uid(1) }, t(11));
    // Agent 1 has been "idle" longer but holds a chat; agent 2 holds none.
    assert_eq!(offers(&enqueue(&mut r, 2, 12)), [(cid(2), uid(2))]);
}

#[test]
fn a_chat_waits_when_every_agent_is_at_capacity() {
    let mut r = ready(1, 1);
    enqueue(&mut r, 1, 10);
    r.handle(Input::Accept { conversation: cid(1), agent: uid(1) }, t(11));
    assert!(enqueue(&mut r, 2, 12).is_empty());
    assert_eq!(r.queued(), [cid(2)]);
    let fx = r.handle(Input::Finish { conversation: cid(1) }, t(13));
    assert_eq!(fx, [offer(2, 1, 13)]);
}

#[test]
fn an_agent_holds_one_offer_at_a_time_even_with_spare_capacity() {
    let mut r = ready(1, 3);
    enqueue(&mut r, 1, 10);
    assert!(enqueue(&mut r, 2, 11).is_empty());
    let fx = r.handle(Input::Accept { conversation: cid(1), agent: uid(1) }, t(12));
    assert_eq!(fx, [Effect::Connected { conversation: cid(1), agent: uid(1) }, offer(2, 1, 12)]);
}

#[test]
fn decline_offers_the_chat_to_the_next_agent_then_back_to_a_decliner_when_nobody_else_can_take_it() {
    let mut r = ready(3, 1);
    r.handle(Input::PresenceChanged { agent: uid(3), presence: Presence::Away }, t(5));
    enqueue(&mut r, 1, 10);
    let fx = r.handle(Input::Decline { conversation: cid(1), agent: uid(1) }, t(11));
    assert_eq!(
        fx,
        [
            Effect::OfferWithdrawn { conversation: cid(1), agent: uid(1) },
            Effect::Requeued { conversation: cid(1), agent: uid(1), reason: Requeue::Declined },
            offer(1, 2, 11),
        ]
    );
    // Both declined and agent 3 is away: it goes back to the longest idle of the two at once.
    let fx = r.handle(Input::Decline { conversation: cid(1), agent: uid(2) }, t(12));
    assert_eq!(offers(&fx), [(cid(1), uid(1))]);
    // Someone who has not passed on it yet comes first.
    r.handle(Input::PresenceChanged { agent: uid(3), presence: Presence::Available }, t(13));
    let fx = r.handle(Input::Decline { conversation: cid(1), agent: uid(1) }, t(14));
    assert_eq!(offers(&fx), [(cid(1), uid(3))]);
}

#[test]
fn a_lone_agent_who_declined_gets_the_chat_again_after_the_services_reoffer_wait() {
    let rules = ServiceRules { reoffer_secs: 60, ..ServiceRules::default() };
    let mut r = ready_with(1, 1, rules);
    enqueue(&mut r, 1, 10);
    let fx = r.handle(Input::Decline { conversation: cid(1), agent: uid(1) }, t(11));
    assert!(offers(&fx).is_empty(), "not at once: {fx:?}");
    assert_eq!(r.next_deadline(), Some(t(71)));
    assert!(offers(&r.handle(Input::Tick, t(70))).is_empty());
    let fx = r.handle(Input::Tick, t(71));
    assert_eq!(offers(&fx), [(cid(1), uid(1))]);
}

#[test]
fn a_missed_chat_goes_back_to_the_agent_once_they_are_ready_again() {
    let rules = ServiceRules { persistent_rona: true, ..ServiceRules::default() };
    let mut r = ready_with(1, 1, rules);
    enqueue(&mut r, 1, 10);
    let fx = r.handle(Input::Tick, t(40));
    assert!(fx.contains(&Effect::RonaFlagged { agent: uid(1), until: None }), "{fx:?}");
    assert!(offers(&fx).is_empty(), "flagged agents get nothing");
    let fx = r.handle(Input::ResetRona { agent: uid(1) }, t(300));
    assert_eq!(fx, [Effect::RonaCleared { agent: uid(1) }, offer(1, 1, 300)]);
}

#[test]
fn changing_the_reoffer_wait_reschedules_the_chats_already_passed_on() {
    let rules = ServiceRules { reoffer_secs: 600, ..ServiceRules::default() };
    let mut r = ready_with(1, 1, rules.clone());
    enqueue(&mut r, 1, 10);
    r.handle(Input::Decline { conversation: cid(1), agent: uid(1) }, t(11));
    r.handle(Input::ServiceUpdated { service: sid(1), rules: ServiceRules { reoffer_secs: 30, ..rules } }, t(20));
    assert_eq!(r.next_deadline(), Some(t(41)));
    assert_eq!(offers(&r.handle(Input::Tick, t(41))), [(cid(1), uid(1))]);
}

#[test]
fn no_answer_in_time_redirects_the_offer_keeping_the_place_in_the_queue() {
    // A long re-offer wait keeps agent 1 off chat 1 for this test.
    let mut r = ready_with(2, 1, ServiceRules { reoffer_secs: 600, ..ServiceRules::default() });
    r.handle(Input::MembershipSet { service: sid(1), agent: uid(2), active: false }, t(5));
    enqueue(&mut r, 1, 10);
    enqueue(&mut r, 2, 11);
    assert_eq!(r.next_deadline(), Some(t(40)));
    assert!(r.handle(Input::Tick, t(39)).is_empty(), "not yet due");
    r.handle(Input::MembershipSet { service: sid(1), agent: uid(2), active: true }, t(39));
    // Agent 2 took chat 2 at 39; at 40 agent 1 missed chat 1, which goes back ahead of others.
    let fx = r.handle(Input::Tick, t(40));
    assert_eq!(
        fx,
        [
            Effect::OfferWithdrawn { conversation: cid(1), agent: uid(1) },
            Effect::Requeued { conversation: cid(1), agent: uid(1), reason: Requeue::NoAnswer },
        ]
    );
    enqueue(&mut r, 3, 41);
    r.handle(Input::Decline { conversation: cid(2), agent: uid(2) }, t(42));
    assert_eq!(r.offered_to(cid(1)), Some(uid(2)), "chat 1 kept its place ahead of chats 2 and 3");
}

#[test]
fn persistent_rona_blocks_the_agent_until_reset_by_hand_by_going_offline_or_by_time() {
    let rules = ServiceRules { persistent_rona: true, rona_reset_secs: Some(600), ..ServiceRules::default() };
    let mut r = ready_with(1, 1, rules);
    enqueue(&mut r, 1, 10);
    let fx = r.handle(Input::Tick, t(40));
    assert!(fx.contains(&Effect::RonaFlagged { agent: uid(1), until: Some(t(640)) }), "{fx:?}");
    assert!(r.agent_status(uid(1)).unwrap().rona);
    assert_eq!(r.staffing(sid(1)).free, 0);
    // Manual reset: the agent is offered again at once, the chat they missed first (nobody
    // else can take it, and it is ahead of chat 2).
    enqueue(&mut r, 2, 50);
    let fx = r.handle(Input::ResetRona { agent: uid(1) }, t(60));
    assert_eq!(fx, [Effect::RonaCleared { agent: uid(1) }, offer(1, 1, 60)]);
    // Missing again, then the timed reset clears the flag.
    let fx = r.handle(Input::Tick, t(90));
    assert!(fx.contains(&Effect::RonaFlagged { agent: uid(1), until: Some(t(690)) }));
    let fx = r.handle(Input::Tick, t(690));
    assert_eq!(fx, [Effect::RonaCleared { agent: uid(1) }, offer(1, 1, 690)]);
    // Going offline clears it as well.
    enqueue(&mut r, 3, 700);
    r.handle(Input::Tick, t(730));
    let fx = r.handle(Input::PresenceChanged { agent: uid(1), presence: Presence::Offline }, t(731));
    assert!(fx.contains(&Effect::RonaCleared { agent: uid(1) }));
}

#[test]
fn after_chat_work_blocks_offers_until_it_ends_and_can_be_ended_early_or_extended() {
    let rules = ServiceRules { acw_secs: 60, acw_max_extensions: 1, ..ServiceRules::default() };
    let mut r = ready_with(1, 1, rules);
    enqueue(&mut r, 1, 10);
    r.handle(Input::Accept { conversation: cid(1), agent: uid(1) }, t(11));
    let fx = r.handle(Input::Finish { conversation: cid(1) }, t(100));
    assert_eq!(fx, [Effect::AcwStarted { agent: uid(1), until: t(160) }]);
    assert!(enqueue(&mut r, 2, 101).is_empty(), "no offer during after-chat work");
    let fx = r.handle(Input::ExtendAcw { agent: uid(1) }, t(150));
    assert_eq!(fx, [Effect::AcwStarted { agent: uid(1), until: t(210) }]);
    let fx = r.handle(Input::ExtendAcw { agent: uid(1) }, t(151));
    assert_eq!(fx, [Effect::Refused { conversation: None, agent: uid(1), reason: "acw_extension_limit" }]);
    assert!(r.handle(Input::Tick, t(160)).is_empty(), "the extension replaced the first deadline");
    let fx = r.handle(Input::Tick, t(210));
    assert_eq!(fx, [Effect::AcwEnded { agent: uid(1) }, offer(2, 1, 210)]);
    // Early end.
    r.handle(Input::Accept { conversation: cid(2), agent: uid(1) }, t(211));
    r.handle(Input::Finish { conversation: cid(2) }, t(220));
    enqueue(&mut r, 3, 221);
    let fx = r.handle(Input::EndAcw { agent: uid(1) }, t(230));
    assert_eq!(fx, [Effect::AcwEnded { agent: uid(1) }, offer(3, 1, 230)]);
}

#[test]
fn a_service_never_holds_more_tasks_than_its_capacity() {
    let rules = ServiceRules { max_tasks: 2, ..ServiceRules::default() };
    let mut r = ready_with(3, 1, rules);
    for n in 1..=3 {
        enqueue(&mut r, n, 10);
    }
    assert_eq!(r.phase(cid(3)), Some(Phase::Queued), "two offered, the third waits for the service");
    assert_eq!(r.staffing(sid(1)).free, 0);
    let fx = r.handle(Input::Finish { conversation: cid(1) }, t(11));
    assert_eq!(offers(&fx), [(cid(3), uid(1))]);
}

#[test]
fn busy_and_away_agents_get_chats_only_from_services_that_opt_in() {
    let mut r = ready(1, 1);
    r.handle(
        Input::ServiceUpdated { service: sid(2), rules: ServiceRules { busy_opt_in: true, ..ServiceRules::default() } },
        t(1),
    );
    r.handle(Input::MembershipSet { service: sid(2), agent: uid(1), active: true }, t(1));
    r.handle(Input::PresenceChanged { agent: uid(1), presence: Presence::Busy }, t(2));
    assert!(enqueue(&mut r, 1, 10).is_empty());
    let fx = r.handle(Input::Enqueue(Arrival::new(cid(2), sid(2))), t(11));
    assert_eq!(offers(&fx), [(cid(2), uid(1))]);
    let fx = r.handle(Input::PresenceChanged { agent: uid(1), presence: Presence::Away }, t(12));
    assert!(fx.contains(&Effect::Requeued { conversation: cid(2), agent: uid(1), reason: Requeue::AgentUnavailable }));
}

#[test]
fn preferred_users_come_first_in_their_order_then_anyone() {
    let mut r = ready(3, 1);
    let arrival = Arrival { preferred: vec![(uid(3), 5), (uid(2), 1)], ..Arrival::new(cid(1), sid(1)) };
    let fx = r.handle(Input::Enqueue(arrival), t(10));
    assert_eq!(offers(&fx), [(cid(1), uid(2))]);
    r.handle(Input::Decline { conversation: cid(1), agent: uid(2) }, t(11));
    assert_eq!(r.offered_to(cid(1)), Some(uid(3)));
    r.handle(Input::Decline { conversation: cid(1), agent: uid(3) }, t(12));
    assert_eq!(r.offered_to(cid(1)), Some(uid(1)), "no preferred user left: the longest idle");
}

#[test]
fn a_returning_customer_waits_for_their_last_agent_until_the_head_start_ends() {
    let rules = ServiceRules { last_user_secs: 60, ..ServiceRules::default() };
    let mut r = ready_with(2, 1, rules);
    r.handle(Input::PresenceChanged { agent: uid(2), presence: Presence::Away }, t(5));
    let arrival = Arrival { last_user: Some(uid(2)), ..Arrival::new(cid(1), sid(1)) };
    assert!(r.handle(Input::Enqueue(arrival), t(10)).is_empty(), "agent 1 is free but the head start is agent 2's");
    assert_eq!(r.next_deadline(), Some(t(70)));
    let fx = r.handle(Input::PresenceChanged { agent: uid(2), presence: Presence::Available }, t(20));
    assert_eq!(offers(&fx), [(cid(1), uid(2))]);
    r.handle(Input::Accept { conversation: cid(1), agent: uid(2) }, t(21));

    let arrival = Arrival { last_user: Some(uid(2)), ..Arrival::new(cid(2), sid(1)) };
    assert!(r.handle(Input::Enqueue(arrival), t(30)).is_empty());
    let fx = r.handle(Input::Tick, t(90));
    assert_eq!(offers(&fx), [(cid(2), uid(1))], "after the head start anyone may take it");
}

#[test]
fn aging_lets_a_long_waiting_low_priority_chat_overtake_later_high_ones() {
    let rules = ServiceRules { aging_secs: Some(60), ..ServiceRules::default() };
    let mut r = ready_with(1, 1, rules);
    r.handle(Input::MembershipSet { service: sid(1), agent: uid(1), active: false }, t(1));
    let put = |r: &mut Router, n, p, at| r.handle(Input::Enqueue(Arrival::new(cid(n), sid(1)).with_priority(p)), t(at));
    put(&mut r, 1, Priority::Low, 0);
    put(&mut r, 2, Priority::High, 100); // two levels up, 100 s later: 120 s of credit, ahead
    put(&mut r, 3, Priority::High, 130); // 130 s later: behind the low one
    put(&mut r, 4, Priority::Strict, 500); // strict ignores aging
    assert_eq!(r.queued(), [cid(4), cid(2), cid(1), cid(3)]);
}

#[test]
fn without_aging_priority_decides_and_entry_time_breaks_ties() {
    let mut r = ready(1, 1);
    r.handle(Input::PresenceChanged { agent: uid(1), presence: Presence::Busy }, t(10));
    for (n, p) in
        [(1, Priority::Low), (2, Priority::Normal), (3, Priority::Strict), (4, Priority::High), (5, Priority::Normal)]
    {
        r.handle(Input::Enqueue(Arrival::new(cid(n), sid(1)).with_priority(p)), t(20));
    }
    assert_eq!(r.queued(), [cid(3), cid(4), cid(2), cid(5), cid(1)]);
    assert_eq!(r.position(cid(1)), Some(5));
    r.handle(Input::SetPriority { conversation: cid(5), priority: Priority::High }, t(21));
    assert_eq!(r.queued(), [cid(3), cid(4), cid(5), cid(2), cid(1)]);
    let fx = r.handle(Input::PresenceChanged { agent: uid(1), presence: Presence::Available }, t(30));
    assert_eq!(offers(&fx), [(cid(3), uid(1))]);
}

#[test]
fn across_services_an_agent_gets_the_best_ranked_chat_they_can_take() {
    let mut r = ready(1, 1);
    r.handle(Input::MembershipSet { service: sid(2), agent: uid(1), active: true }, t(1));
    r.handle(Input::PresenceChanged { agent: uid(1), presence: Presence::Busy }, t(2));
    r.handle(Input::Enqueue(Arrival::new(cid(1), sid(1))), t(10));
    r.handle(Input::Enqueue(Arrival::new(cid(2), sid(2)).with_priority(Priority::High)), t(11));
    let fx = r.handle(Input::PresenceChanged { agent: uid(1), presence: Presence::Available }, t(12));
    assert_eq!(offers(&fx), [(cid(2), uid(1))]);
}

#[test]
fn accept_of_an_offer_held_by_someone_else_is_refused() {
    let mut r = ready(2, 1);
    enqueue(&mut r, 1, 10);
    let fx = r.handle(Input::Accept { conversation: cid(1), agent: uid(2) }, t(11));
    assert_eq!(fx, [Effect::Refused { conversation: Some(cid(1)), agent: uid(2), reason: "offer_not_found" }]);
    assert_eq!(r.offered_to(cid(1)), Some(uid(1)));
}

#[test]
fn customer_leaving_during_an_offer_withdraws_it() {
    let mut r = ready(1, 1);
    enqueue(&mut r, 1, 10);
    let fx = r.handle(Input::Finish { conversation: cid(1) }, t(11));
    assert_eq!(fx, [Effect::OfferWithdrawn { conversation: cid(1), agent: uid(1) }]);
    assert_eq!(r.next_deadline(), None, "the offer's deadline went with it");
}

#[test]
fn inactive_members_offline_and_unavailable_agents_get_no_offers() {
    let mut r = ready(3, 1);
    r.handle(Input::MembershipSet { service: sid(1), agent: uid(1), active: false }, t(10));
    r.handle(Input::ConnectionChanged { agent: uid(2), online: false }, t(10));
    r.handle(Input::PresenceChanged { agent: uid(3), presence: Presence::Away }, t(10));
    assert!(enqueue(&mut r, 1, 11).is_empty());
    let fx = r.handle(Input::PresenceChanged { agent: uid(3), presence: Presence::Available }, t(12));
    assert_eq!(fx, [offer(1, 3, 12)]);
}

#[test]
fn going_away_withdraws_a_pending_offer_and_requeues_the_chat() {
    let mut r = ready(2, 1);
    enqueue(&mut r, 1, 10);
    let fx = r.handle(Input::PresenceChanged { agent: uid(1), presence: Presence::Away }, t(11));
    assert_eq!(
        fx,
        [
            Effect::OfferWithdrawn { conversation: cid(1), agent: uid(1) },
            Effect::Requeued { conversation: cid(1), agent: uid(1), reason: Requeue::AgentUnavailable },
            offer(1, 2, 11),
        ]
    );
}

#[test]
fn position_and_estimated_wait_follow_the_queue_and_the_staffing() {
    let mut r = ready(2, 1);
    r.handle(Input::PresenceChanged { agent: uid(1), presence: Presence::Busy }, t(1));
    r.handle(Input::PresenceChanged { agent: uid(2), presence: Presence::Busy }, t(1));
    for n in 1..=3 {
        enqueue(&mut r, n, 10);
    }
    r.handle(Input::Enqueue(Arrival::new(cid(9), sid(2))), t(10));
    assert_eq!((r.position(cid(1)), r.position(cid(3)), r.position(cid(9))), (Some(1), Some(3), Some(1)));
    assert_eq!(r.estimated_wait(cid(3)), None, "nobody staffs the service");
    r.handle(Input::PresenceChanged { agent: uid(1), presence: Presence::Available }, t(20));
    r.handle(Input::Accept { conversation: cid(1), agent: uid(1) }, t(20));
    r.handle(Input::Finish { conversation: cid(1) }, t(140));
    // One present agent, 120 s per chat seen: chat 3 is now second (chat 2 is on offer).
    assert_eq!(r.position(cid(3)), Some(1));
    r.handle(Input::Accept { conversation: cid(2), agent: uid(1) }, t(141));
    assert_eq!(r.estimated_wait(cid(3)), Some(Duration::seconds(120)));
}

#[test]
fn a_restored_connected_chat_counts_against_capacity() {
    let mut r = ready(1, 1);
    r.handle(Input::RestoreConnected { conversation: cid(1), service: sid(1), agent: uid(1) }, t(5));
    assert!(enqueue(&mut r, 2, 10).is_empty());
    let fx = r.handle(Input::Finish { conversation: cid(1) }, t(11));
    assert_eq!(offers(&fx), [(cid(2), uid(1))]);
}

#[test]
fn lowering_capacity_below_the_load_withdraws_the_offer() {
    let mut r = ready(2, 2);
    enqueue(&mut r, 1, 10);
    r.handle(Input::Accept { conversation: cid(1), agent: uid(1) }, t(11));
    enqueue(&mut r, 2, 12);
    r.handle(Input::Decline { conversation: cid(2), agent: uid(2) }, t(13));
    assert_eq!(r.offered_to(cid(2)), Some(uid(1)));
    let fx = r.handle(Input::AgentUpdated { agent: uid(1), max_chats: 1, can_take_chats: true }, t(14));
    assert!(fx.contains(&Effect::Requeued { conversation: cid(2), agent: uid(1), reason: Requeue::AgentUnavailable }));
}

#[test]
fn after_chat_work_starting_withdraws_a_pending_offer_and_extending_never_shortens_it() {
    let rules = ServiceRules { acw_secs: 60, acw_max_extensions: 1, ..ServiceRules::default() };
    let mut r = ready_with(1, 2, rules);
    enqueue(&mut r, 1, 0);
    r.handle(Input::Accept { conversation: cid(1), agent: uid(1) }, t(1));
    enqueue(&mut r, 2, 2);
    assert_eq!(r.offered_to(cid(2)), Some(uid(1)));
    let fx = r.handle(Input::Finish { conversation: cid(1) }, t(3));
    assert!(
        fx.contains(&Effect::Requeued { conversation: cid(2), agent: uid(1), reason: Requeue::AgentUnavailable }),
        "{fx:?}"
    );
    // Extending 10 s in gives a fresh 60 s from then.
    let fx = r.handle(Input::ExtendAcw { agent: uid(1) }, t(13));
    assert_eq!(fx, [Effect::AcwStarted { agent: uid(1), until: t(73) }]);
}

#[test]
fn changing_a_services_aging_reorders_the_chats_already_waiting() {
    let rules = ServiceRules { aging_secs: Some(60), ..ServiceRules::default() };
    let mut r = ready_with(1, 1, rules);
    r.handle(Input::MembershipSet { service: sid(1), agent: uid(1), active: false }, t(1));
    r.handle(Input::Enqueue(Arrival::new(cid(1), sid(1)).with_priority(Priority::Low)), t(0));
    r.handle(Input::Enqueue(Arrival::new(cid(2), sid(1)).with_priority(Priority::High)), t(200));
    assert_eq!(r.queued(), [cid(1), cid(2)], "200 s of waiting outweigh two levels at 60 s each");
    r.handle(Input::ServiceUpdated { service: sid(1), rules: ServiceRules::default() }, t(205));
    assert_eq!(r.queued(), [cid(2), cid(1)], "without aging the priority decides");
}
