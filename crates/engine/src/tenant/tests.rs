//! The tenant core's own decisions: transfers, priorities, outcomes and what it asks the shell
//! to do (the simulator's tests cover the workflow-driven paths end to end).

use super::*;
use parley_domain::workflow::{Activity, NEXT, Node, exits};
use parley_domain::{Customer, Licence, OrgUnitId, TenantId};
use time::macros::datetime;
use uuid::Uuid;

const T0: OffsetDateTime = datetime!(2026-01-05 09:00 UTC);

fn tenant() -> TenantId {
    TenantId::from_uuid(Uuid::from_u128(9))
}
fn ou() -> OrgUnitId {
    OrgUnitId::from_uuid(Uuid::from_u128(8))
}
fn sid(n: u128) -> ServiceId {
    ServiceId::from_uuid(Uuid::from_u128(n))
}
fn cid(n: u128) -> ConversationId {
    ConversationId::from_uuid(Uuid::from_u128(1000 + n))
}
fn uid(n: u128) -> UserId {
    UserId::from_uuid(Uuid::from_u128(500 + n))
}

fn pinned(workflow: u128, def: WorkflowDefinition) -> Pinned {
    Pinned::new(WorkflowId::from_uuid(Uuid::from_u128(workflow)), 1, def)
}

fn setup(n: u128, workflow: Option<Pinned>) -> ServiceSetup {
    ServiceSetup {
        service: Service {
            id: sid(n),
            tenant_id: tenant(),
            ou_id: ou(),
            name: format!("S{n}"),
            workflow_id: workflow.as_ref().map_or(WorkflowId::from_uuid(Uuid::nil()), |p| p.workflow_id),
            contact_id: format!("c{n}"),
            widget_key: "k".into(),
            primary_calendar_id: None,
            secondary_calendar_id: None,
            routing: Default::default(),
            access: Default::default(),
            system_messages_id: None,
            codes: Default::default(),
            created_at: T0,
        },
        primary: None,
        secondary: None,
        workflow,
    }
}

fn conversation(n: u128, service: u128, p: &Pinned) -> Conversation {
    Conversation {
        id: cid(n),
        tenant_id: tenant(),
        service_id: Some(sid(service)),
        workflow_id: Some(p.workflow_id),
        workflow_version: Some(p.version),
        direct_user_id: None,
        status: ConversationStatus::Workflow,
        customer: Customer {
            display_name: "Ann".into(),
            email: "ann@example.com".into(),
            privacy_consent: true,
            language: None,
        },
        first_message: None,
        agent_id: None,
        last_seq: 0,
        created_at: T0,
        ended_at: None,
        outcome: None,
        outcome_reason: None,
        agent_alias: None,
        wrap_up: None,
    }
}

fn agent(n: u128) -> User {
    User {
        id: uid(n),
        tenant_id: tenant(),
        ou_id: ou(),
        display_name: format!("Agent {n}"),
        email: format!("a{n}@example.com"),
        licences: vec![Licence::InstantMessaging],
        im_enabled: true,
        max_chats: 1,
        presence: Presence::Available,
        direct: parley_domain::DirectChat::new(format!("u{n}"), "k"),
        created_at: T0,
    }
}

fn def(nodes: Vec<Node>) -> WorkflowDefinition {
    WorkflowDefinition { start: nodes[0].id.clone(), nodes }
}

fn queue_only(priority: Option<Priority>) -> WorkflowDefinition {
    def(vec![
        Node::new("accept", Activity::Accept, &[(NEXT, "queue")]),
        Node::new("queue", Activity::QueueTask { priority, max_queue_secs: 600 }, &[(NEXT, "wait")]),
        Node::new("wait", Activity::Delay { secs: 3600 }, &[(NEXT, "bye")]),
        Node::new("bye", Activity::Disconnect { text: None }, &[]),
    ])
}

fn outcome_of(out: &[Out]) -> Option<(Outcome, Option<String>)> {
    out.iter().find_map(|o| match o {
        Out::Outcome { outcome, reason, .. } => Some((*outcome, reason.clone())),
        _ => None,
    })
}

#[test]
fn transfer_moves_the_conversation_and_the_target_workflow_starts_with_the_parameters_so_far() {
    let target = pinned(
        202,
        def(vec![
            Node::new(
                "hello",
                Activity::Message { text: "Sales here, $(CustomContextParameters.Topic)".into(), delay_secs: 0 },
                &[(NEXT, "accept")],
            ),
            Node::new("accept", Activity::Accept, &[(NEXT, "queue")]),
            Node::new("queue", Activity::QueueTask { priority: None, max_queue_secs: 60 }, &[(NEXT, "wait")]),
            Node::new("wait", Activity::Delay { secs: 60 }, &[(NEXT, "bye")]),
            Node::new("bye", Activity::Disconnect { text: None }, &[]),
        ]),
    );
    let source = pinned(
        201,
        def(vec![
            Node::new(
                "set",
                Activity::SaveToParameter { parameter: "Topic".into(), value: "billing".into() },
                &[(NEXT, "move")],
            ),
            Node::new("move", Activity::Transfer { service_id: sid(2) }, &[(exits::FAILED, "bye")]),
            Node::new("bye", Activity::Disconnect { text: None }, &[]),
        ]),
    );
    let mut core = TenantCore::new();
    let _ = core.set_service(setup(1, Some(source.clone())), T0);
    let _ = core.set_service(setup(2, Some(target)), T0);
    let out = core.start(conversation(1, 1, &source), source, T0);
    assert!(out.contains(&Out::Transferred {
        conversation: cid(1),
        service: sid(2),
        workflow: WorkflowId::from_uuid(Uuid::from_u128(202)),
        version: 1
    }));
    assert!(out.iter().any(
        |o| matches!(o, Out::Append { body: EntryBody::Message { text, .. }, .. } if text == "Sales here, billing")
    ));
    assert_eq!(core.conversation(cid(1)).unwrap().service_id, Some(sid(2)));
    assert_eq!(core.router().position(cid(1)), Some(1), "queued in the target service");
    let trace: Vec<&str> = core.run(cid(1)).unwrap().trace.iter().map(|t| t.node.as_str()).collect();
    assert_eq!(trace, ["set", "move", "hello", "accept", "queue", "wait"], "one trace across both workflows");
}

#[test]
fn transfer_to_a_service_without_a_published_workflow_takes_the_failed_exit() {
    let source = pinned(
        201,
        def(vec![
            Node::new("move", Activity::Transfer { service_id: sid(2) }, &[(exits::FAILED, "sorry")]),
            Node::new("sorry", Activity::Disconnect { text: Some("Cannot transfer".into()) }, &[]),
        ]),
    );
    let mut core = TenantCore::new();
    let _ = core.set_service(setup(1, Some(source.clone())), T0);
    let _ = core.set_service(setup(2, None), T0);
    let out = core.start(conversation(1, 1, &source), source, T0);
    assert!(!out.iter().any(|o| matches!(o, Out::Transferred { .. })));
    assert_eq!(outcome_of(&out).unwrap().0, Outcome::HandledBySystem);
}

#[test]
fn distribution_priority_puts_a_later_chat_first_in_the_queue() {
    let normal = pinned(201, queue_only(None));
    let high = pinned(202, queue_only(Some(Priority::High)));
    let mut core = TenantCore::new();
    let _ = core.set_service(setup(1, Some(normal.clone())), T0);
    let _ = core.start(conversation(1, 1, &normal), normal, T0);
    let _ = core.start(conversation(2, 1, &high), high, T0 + time::Duration::seconds(5));
    assert_eq!(core.router().queued(), [cid(2), cid(1)]);
}

#[test]
fn the_customer_leaving_is_reported_by_where_they_were() {
    let cases = [
        // Never accepted: a workflow still asking before its Accept.
        (
            def(vec![
                Node::new("wait", Activity::Delay { secs: 60 }, &[(NEXT, "accept")]),
                Node::new("accept", Activity::Accept, &[(NEXT, "bye")]),
                Node::new("bye", Activity::Disconnect { text: None }, &[]),
            ]),
            Outcome::CustomerHangupBeforeAccept,
        ),
        (
            def(vec![
                Node::new("accept", Activity::Accept, &[(NEXT, "wait")]),
                Node::new("wait", Activity::Delay { secs: 60 }, &[(NEXT, "bye")]),
                Node::new("bye", Activity::Disconnect { text: None }, &[]),
            ]),
            Outcome::CustomerHangupInIvr,
        ),
        (queue_only(None), Outcome::CustomerHangupInQueue),
    ];
    for (d, expected) in cases {
        let p = pinned(201, d);
        let mut core = TenantCore::new();
        let _ = core.set_service(setup(1, Some(p.clone())), T0);
        let _ = core.start(conversation(1, 1, &p), p, T0);
        let out = core.end(cid(1), EndedBy::Customer, None, T0).unwrap();
        assert_eq!(outcome_of(&out).unwrap().0, expected);
    }
}

#[test]
fn an_accepted_chat_ends_as_user_accepted_and_only_its_agent_may_end_it() {
    let p = pinned(201, queue_only(None));
    let mut core = TenantCore::new();
    let _ = core.set_service(setup(1, Some(p.clone())), T0);
    let members = [
        Membership { service_id: sid(1), user_id: uid(1), active: true },
        Membership { service_id: sid(1), user_id: uid(2), active: true },
    ];
    let _ = core.set_people(vec![agent(1), agent(2)], &members, T0);
    let _ = core.connection(uid(1), true, T0);
    let out = core.start(conversation(1, 1, &p), p, T0);
    assert!(out.iter().any(|o| matches!(o, Out::Offer { agent, .. } if *agent == uid(1))));
    let out = core.accept(uid(1), cid(1), T0).unwrap();
    assert!(out.iter().any(|o| matches!(o, Out::Chat { .. })));
    assert_eq!(core.end(cid(1), EndedBy::Agent, Some(uid(2)), T0), Err(Refusal::NotYourChat));
    let out = core.end(cid(1), EndedBy::Agent, Some(uid(1)), T0).unwrap();
    assert_eq!(outcome_of(&out).unwrap().0, Outcome::UserAccepted);
    assert_eq!(core.end(cid(1), EndedBy::Agent, Some(uid(1)), T0), Err(Refusal::ConversationEnded));
}

#[test]
fn a_workflow_failing_after_the_connection_leaves_the_chat_with_its_agent() {
    // Queue, then a Check Task whose `connected` exit is not wired: the run fails once the
    // agent has taken the chat, which must not cut the chat.
    let p = pinned(
        201,
        def(vec![
            Node::new("accept", Activity::Accept, &[(NEXT, "queue")]),
            Node::new("queue", Activity::QueueTask { priority: None, max_queue_secs: 600 }, &[(NEXT, "wait")]),
            Node::new("wait", Activity::Delay { secs: 10 }, &[(NEXT, "check")]),
            Node::new("check", Activity::CheckTask, &[(exits::QUEUED, "wait")]),
        ]),
    );
    let mut core = TenantCore::new();
    let _ = core.set_service(setup(1, Some(p.clone())), T0);
    let _ = core.set_people(vec![agent(1)], &[Membership { service_id: sid(1), user_id: uid(1), active: true }], T0);
    let _ = core.connection(uid(1), true, T0);
    let _ = core.start(conversation(1, 1, &p), p, T0);
    let _ = core.accept(uid(1), cid(1), T0).unwrap();
    let out = core.tick(T0 + time::Duration::seconds(10));
    assert_eq!(outcome_of(&out), None);
    assert_eq!(core.conversation(cid(1)).unwrap().status, ConversationStatus::Connected);
    assert!(matches!(core.run(cid(1)).unwrap().session.status, workflow::Status::Failed { .. }));
}

#[test]
fn a_restored_conversation_waits_again_unless_it_was_connected() {
    let p = pinned(201, queue_only(None));
    let mut core = TenantCore::new();
    let _ = core.set_service(setup(1, Some(p.clone())), T0);
    let mut offered = conversation(1, 1, &p);
    offered.status = ConversationStatus::Offered;
    offered.agent_id = Some(uid(1));
    let out = core.restore(offered, None, T0);
    assert_eq!(
        out[0],
        Out::Status { conversation: cid(1), status: ConversationStatus::Queued, agent: None, ended_at: None }
    );
    let mut connected = conversation(2, 1, &p);
    connected.status = ConversationStatus::Connected;
    connected.agent_id = Some(uid(1));
    assert!(core.restore(connected, None, T0).is_empty());
    assert_eq!(core.router().phase(cid(2)), Some(Phase::Connected));
}

#[test]
fn workflows_handing_a_chat_around_in_a_loop_fail_it_after_the_transfer_limit() {
    // Service 1 transfers to 2 and 2 back to 1: valid each on its own, a loop together.
    let to = |n: u128| {
        pinned(
            200 + n,
            def(vec![
                Node::new("move", Activity::Transfer { service_id: sid(3 - n) }, &[(exits::FAILED, "bye")]),
                Node::new("bye", Activity::Disconnect { text: None }, &[]),
            ]),
        )
    };
    let mut core = TenantCore::new();
    let _ = core.set_service(setup(1, Some(to(1))), T0);
    let _ = core.set_service(setup(2, Some(to(2))), T0);
    let out = core.start(conversation(1, 1, &to(1)), to(1), T0);
    let (outcome, reason) = outcome_of(&out).unwrap();
    assert_eq!(outcome, Outcome::Failed);
    assert!(reason.unwrap().contains("loop"));
    let moves = out.iter().filter(|o| matches!(o, Out::Transferred { .. })).count();
    assert_eq!(moves, usize::from(MAX_TRANSFERS));
}

/// Accept, queue, wait 10 s, then `then` (with a `next` to a final wait).
fn queued_then(then: Activity, exits_of_then: &[(&str, &str)]) -> WorkflowDefinition {
    def(vec![
        Node::new("accept", Activity::Accept, &[(NEXT, "queue")]),
        Node::new("queue", Activity::QueueTask { priority: None, max_queue_secs: 600 }, &[(NEXT, "wait")]),
        Node::new("wait", Activity::Delay { secs: 10 }, &[(NEXT, "then")]),
        Node::new("then", then, exits_of_then),
        Node::new("after", Activity::Delay { secs: 3600 }, &[]),
        Node::new("bye", Activity::Disconnect { text: None }, &[]),
    ])
}

fn connected_core(p: &Pinned) -> TenantCore {
    let mut core = TenantCore::new();
    let _ = core.set_service(setup(1, Some(p.clone())), T0);
    let _ = core.set_service(setup(2, Some(pinned(299, queue_only(None)))), T0);
    let _ = core.set_people(vec![agent(1)], &[Membership { service_id: sid(1), user_id: uid(1), active: true }], T0);
    let _ = core.connection(uid(1), true, T0);
    let _ = core.start(conversation(1, 1, p), p.clone(), T0);
    let _ = core.accept(uid(1), cid(1), T0).unwrap();
    core
}

#[test]
fn cancel_task_and_transfer_never_take_a_connected_chat_from_its_agent() {
    let cancel = pinned(201, queued_then(Activity::CancelTask, &[(NEXT, "bye")]));
    let mut core = connected_core(&cancel);
    let out = core.tick(T0 + time::Duration::seconds(10));
    assert!(!out.iter().any(|o| matches!(o, Out::Status { .. } | Out::Outcome { .. })), "{out:?}");
    assert_eq!(core.router().phase(cid(1)), Some(Phase::Connected));

    let transfer = pinned(202, queued_then(Activity::Transfer { service_id: sid(2) }, &[(exits::FAILED, "after")]));
    let mut core = connected_core(&transfer);
    let out = core.tick(T0 + time::Duration::seconds(10));
    assert!(!out.iter().any(|o| matches!(o, Out::Transferred { .. })), "{out:?}");
    let trace = &core.run(cid(1)).unwrap().trace;
    assert_eq!(trace.last().map(|t| (t.node.as_str(), t.exit.as_deref())), Some(("after", None)));
    assert!(trace.iter().any(|t| t.node == "then" && t.exit.as_deref() == Some(exits::FAILED)));
    assert_eq!(core.conversation(cid(1)).unwrap().service_id, Some(sid(1)));
}

#[test]
fn a_late_http_answer_is_not_taken_for_the_next_call() {
    let p = pinned(
        201,
        serde_json::from_value(serde_json::json!({"start": "accept", "nodes": [
            {"id": "accept", "activity": {"kind": "accept"}, "exits": {"next": "one"}},
            {"id": "one", "activity": {"kind": "http_request", "method": "GET", "url": "https://a.example/1", "timeout_secs": 5},
             "exits": {"success": "bye", "failure": "two"}},
            {"id": "two", "activity": {"kind": "http_request", "method": "GET", "url": "https://a.example/2", "timeout_secs": 5},
             "exits": {"success": "bye", "failure": "bye"}},
            {"id": "bye", "activity": {"kind": "disconnect"}}
        ]}))
        .unwrap(),
    );
    let mut core = TenantCore::new();
    let _ = core.set_service(setup(1, Some(p.clone())), T0);
    let out = core.start(conversation(1, 1, &p), p, T0);
    let first = out.iter().find_map(|o| match o {
        Out::Http { call_id, .. } => Some(*call_id),
        _ => None,
    });
    // The first call times out; the workflow moves on to the second.
    let out = core.tick(T0 + time::Duration::seconds(5));
    let second = out.iter().find_map(|o| match o {
        Out::Http { call_id, .. } => Some(*call_id),
        _ => None,
    });
    assert_ne!(first, second);
    let ok = HttpOutcome::Response { status: 200, body: serde_json::Value::Null };
    let late = core.http_done(cid(1), first.unwrap(), ok.clone(), T0 + time::Duration::seconds(6));
    assert!(late.is_empty(), "a stale answer changes nothing");
    assert_eq!(core.run(cid(1)).unwrap().trace.last().unwrap().node, "two");
    let done = core.http_done(cid(1), second.unwrap(), ok, T0 + time::Duration::seconds(6));
    assert!(outcome_of(&done).is_some());
}

#[test]
fn a_priority_set_before_queueing_applies_when_the_task_is_queued() {
    let strict = pinned(
        202,
        def(vec![
            Node::new("prio", Activity::DistributionPriority { priority: Priority::Strict }, &[(NEXT, "accept")]),
            Node::new("accept", Activity::Accept, &[(NEXT, "queue")]),
            Node::new("queue", Activity::QueueTask { priority: None, max_queue_secs: 600 }, &[(NEXT, "wait")]),
            Node::new("wait", Activity::Delay { secs: 3600 }, &[]),
        ]),
    );
    let normal = pinned(201, queue_only(None));
    let mut core = TenantCore::new();
    let _ = core.set_service(setup(1, Some(normal.clone())), T0);
    let _ = core.start(conversation(1, 1, &normal), normal, T0);
    let _ = core.start(conversation(2, 1, &strict), strict, T0 + time::Duration::seconds(1));
    assert_eq!(core.router().queued(), [cid(2), cid(1)]);
}

fn facts(out: &[Out]) -> (Vec<UserSessionFact>, Vec<ServiceSessionFact>) {
    let users = out
        .iter()
        .filter_map(|o| match o {
            Out::UserSession(f) => Some(f.clone()),
            _ => None,
        })
        .collect();
    let services = out
        .iter()
        .filter_map(|o| match o {
            Out::ServiceSession(f) => Some(f.clone()),
            _ => None,
        })
        .collect();
    (users, services)
}

#[test]
fn every_offer_and_every_stay_in_a_service_becomes_a_reporting_fact() {
    let p = pinned(201, queue_only(None));
    let mut core = TenantCore::new();
    let mut s = setup(1, Some(p.clone()));
    // Agent 1 does not get the chat back while nobody else is there.
    s.service.routing.reoffer_secs = 600;
    let _ = core.set_service(s, T0);
    let members: Vec<Membership> =
        (1..=2).map(|n| Membership { service_id: sid(1), user_id: uid(n), active: true }).collect();
    let _ = core.set_people(vec![agent(1), agent(2)], &members, T0);
    let at = |s: i64| T0 + time::Duration::seconds(s);
    let mut all = Vec::new();
    // Agent 1 is online first, so is offered first; 10 s in the workflow before? No: queued at 0.
    all.extend(core.connection(uid(1), true, T0));
    all.extend(core.start(conversation(1, 1, &p), p, T0));
    all.extend(core.decline(uid(1), cid(1), at(5)).unwrap());
    all.extend(core.connection(uid(2), true, at(8)));
    all.extend(core.accept(uid(2), cid(1), at(12)).unwrap());
    all.extend(core.end(cid(1), EndedBy::Agent, Some(uid(2)), at(100)).unwrap());
    let (users, services) = facts(&all);
    let summary: Vec<_> = users.iter().map(|u| (u.user, u.outcome, u.offered_at, u.answered_at, u.ended_at)).collect();
    assert_eq!(
        summary,
        [
            (uid(1), parley_domain::UserOutcome::Declined, T0, None, at(5)),
            (uid(2), parley_domain::UserOutcome::Accepted, at(8), Some(at(12)), at(100)),
        ]
    );
    assert_eq!(services.len(), 1);
    let s = &services[0];
    assert_eq!(
        (s.outcome, s.user, s.queue_secs, s.connected_secs, s.ivr_secs, s.offers),
        (Some(Outcome::UserAccepted), Some(uid(2)), 12, 88, 0, 2)
    );
    assert!(all.contains(&Out::QueueEntry { conversation: cid(1), queued_at: T0, priority: Priority::Normal }));
}

#[test]
fn a_transfer_ends_one_service_session_and_starts_the_next() {
    let target = pinned(202, queue_only(None));
    let source = pinned(
        201,
        def(vec![
            Node::new("wait", Activity::Delay { secs: 20 }, &[(NEXT, "move")]),
            Node::new("move", Activity::Transfer { service_id: sid(2) }, &[(exits::FAILED, "bye")]),
            Node::new("bye", Activity::Disconnect { text: None }, &[]),
        ]),
    );
    let mut core = TenantCore::new();
    let _ = core.set_service(setup(1, Some(source.clone())), T0);
    let _ = core.set_service(setup(2, Some(target)), T0);
    let _ = core.start(conversation(1, 1, &source), source, T0);
    let moved = core.tick(T0 + time::Duration::seconds(20));
    let (_, services) = facts(&moved);
    assert_eq!(services.len(), 1);
    assert_eq!((services[0].service, services[0].outcome, services[0].ivr_secs), (sid(1), None, 20));
    let left = core.end(cid(1), EndedBy::Customer, None, T0 + time::Duration::seconds(50)).unwrap();
    let (users, services) = facts(&left);
    assert!(users.is_empty());
    assert_eq!(
        (services[0].service, services[0].outcome, services[0].queue_secs, services[0].started_at),
        (sid(2), Some(Outcome::CustomerHangupInQueue), 30, T0 + time::Duration::seconds(20))
    );
}

#[test]
fn a_restored_queue_keeps_entry_times_and_priorities() {
    let p = pinned(201, queue_only(None));
    let mut core = TenantCore::new();
    let _ = core.set_service(setup(1, Some(p.clone())), T0);
    let mut first = conversation(1, 1, &p);
    first.status = ConversationStatus::Queued;
    let mut urgent = conversation(2, 1, &p);
    urgent.status = ConversationStatus::Queued;
    let mut late = conversation(3, 1, &p);
    late.status = ConversationStatus::Queued;
    // Restored in any order: the entry times and priorities decide.
    let _ = core.restore(late, Some((T0 + time::Duration::seconds(30), Priority::Normal)), T0);
    let _ = core.restore(first, Some((T0 + time::Duration::seconds(10), Priority::Normal)), T0);
    let _ = core.restore(urgent, Some((T0 + time::Duration::seconds(20), Priority::High)), T0);
    assert_eq!(core.router().queued(), [cid(2), cid(1), cid(3)]);
}

#[test]
fn a_silent_customer_is_warned_then_the_chat_is_closed_unless_they_answer() {
    let p = pinned(201, queue_only(None));
    let mut core = TenantCore::new();
    let mut s = setup(1, Some(p.clone()));
    s.service.routing.idle_warning_secs = 60;
    s.service.routing.idle_close_secs = 120;
    s.service.routing.idle_warning_text = "Still there?".into();
    let _ = core.set_service(s, T0);
    let _ = core.set_people(vec![agent(1)], &[Membership { service_id: sid(1), user_id: uid(1), active: true }], T0);
    let _ = core.connection(uid(1), true, T0);
    let _ = core.start(conversation(1, 1, &p), p, T0);
    let _ = core.accept(uid(1), cid(1), T0).unwrap();
    let at = |s: i64| T0 + time::Duration::seconds(s);
    let warned = |out: &[Out]| {
        out.iter()
            .any(|o| matches!(o, Out::Append { body: EntryBody::Message { text, .. }, .. } if text == "Still there?"))
    };
    assert_eq!(core.next_deadline(), Some(at(60)));
    assert!(warned(&core.tick(at(60))));
    // The customer answers: the clock starts again.
    let _ = core.customer_text(cid(1), "yes".into(), at(90));
    assert!(core.tick(at(149)).is_empty(), "nothing is due before 90 + 60 s");
    assert!(warned(&core.tick(at(150))), "warned again 60 s after the answer");
    assert_eq!(outcome_of(&core.tick(at(269))), None);
    let out = core.tick(at(270));
    let (outcome, reason) = outcome_of(&out).unwrap();
    assert_eq!((outcome, reason.as_deref()), (Outcome::UserAccepted, Some("the customer did not answer")));
}

// ---- direct chats ------------------------------------------------------------------------------

/// A user who takes direct chats, with their workspace open.
fn direct_core(invite_secs: u32) -> TenantCore {
    let mut core = TenantCore::new();
    let mut u = agent(1);
    u.licences.push(Licence::Interact);
    u.direct.settings.enabled = true;
    u.direct.settings.invite_secs = invite_secs;
    let _ = core.set_people(vec![u], &[], T0);
    let _ = core.connection(uid(1), true, T0);
    core
}

fn direct_conversation(n: u128, user: u128) -> Conversation {
    Conversation {
        service_id: None,
        workflow_id: None,
        workflow_version: None,
        direct_user_id: Some(uid(user)),
        first_message: Some("Hello".into()),
        ..conversation(n, 0, &pinned(0, queue_only(None)))
    }
}

fn system_texts(out: &[Out]) -> Vec<String> {
    out.iter()
        .filter_map(|o| match o {
            Out::Append { body: EntryBody::Message { sender: Sender::System, text, .. }, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_direct_chat_invites_its_user_with_a_deadline() {
    let mut core = direct_core(30);
    let out = core.start_direct(direct_conversation(1, 1), T0);
    let deadline = T0 + time::Duration::seconds(30);
    assert!(
        out.iter().any(|o| matches!(o, Out::Offer { agent, deadline: d, .. } if *agent == uid(1) && *d == deadline))
    );
    assert!(out.iter().any(|o| matches!(
        o,
        Out::Append { body: EntryBody::Event { event: ConversationEvent::Invited { user_id, deadline: d, .. } }, .. }
            if *user_id == uid(1) && *d == deadline
    )));
    assert_eq!(core.offer_deadline(cid(1)), Some(deadline));
    assert_eq!(core.next_deadline(), Some(deadline));
    assert_eq!(core.conversations_of(uid(1)).len(), 1);
    // Nothing of it goes through the router.
    assert!(core.router().phase(cid(1)).is_none());
}

#[test]
fn accepting_a_direct_invitation_connects_the_chat() {
    let mut core = direct_core(30);
    let _ = core.start_direct(direct_conversation(1, 1), T0);
    let out = core.accept(uid(1), cid(1), T0 + time::Duration::seconds(5)).unwrap();
    assert!(out.iter().any(|o| matches!(o, Out::Chat { agent, .. } if *agent == uid(1))));
    assert_eq!(core.conversation(cid(1)).unwrap().status, ConversationStatus::Connected);
    assert_eq!(core.offer_deadline(cid(1)), None);
    // The deadline passing after the answer changes nothing.
    assert!(core.tick(T0 + time::Duration::seconds(31)).is_empty());
    let out = core.end(cid(1), EndedBy::Agent, Some(uid(1)), T0 + time::Duration::seconds(60)).unwrap();
    assert_eq!(outcome_of(&out).map(|o| o.0), Some(Outcome::UserAccepted));
    let (users, services) = facts(&out);
    assert!(services.is_empty());
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].outcome, parley_domain::UserOutcome::Accepted);
    assert_eq!(users[0].service, None);
    assert_eq!(users[0].answered_at, Some(T0 + time::Duration::seconds(5)));
    assert!(core.conversation(cid(1)).is_none());
}

#[test]
fn declining_a_direct_invitation_ends_the_chat_as_declined() {
    let mut core = direct_core(30);
    let _ = core.start_direct(direct_conversation(1, 1), T0);
    let out = core.decline(uid(1), cid(1), T0 + time::Duration::seconds(3)).unwrap();
    assert_eq!(outcome_of(&out).map(|o| o.0), Some(Outcome::Declined));
    assert!(out.iter().any(|o| matches!(o, Out::OfferWithdrawn { agent, .. } if *agent == uid(1))));
    assert!(system_texts(&out).iter().any(|t| t.contains("Agent 1 cannot take your chat")));
    let (users, _) = facts(&out);
    assert_eq!(users[0].outcome, parley_domain::UserOutcome::Declined);
    assert!(core.conversation(cid(1)).is_none());
    assert_eq!(core.accept(uid(1), cid(1), T0 + time::Duration::seconds(4)), Err(Refusal::OfferNotFound));
}

#[test]
fn an_unanswered_direct_invitation_is_missed_at_its_deadline() {
    let mut core = direct_core(30);
    let _ = core.start_direct(direct_conversation(1, 1), T0);
    assert!(core.tick(T0 + time::Duration::seconds(29)).is_empty());
    let out = core.tick(T0 + time::Duration::seconds(30));
    assert_eq!(outcome_of(&out).map(|o| o.0), Some(Outcome::Missed));
    assert!(system_texts(&out).iter().any(|t| t.contains("did not answer in time")));
    let (users, _) = facts(&out);
    assert_eq!(users[0].outcome, parley_domain::UserOutcome::Missed);
    assert_eq!(core.next_deadline(), None);
}

#[test]
fn only_the_invited_user_answers_a_direct_invitation() {
    let mut core = direct_core(30);
    let _ = core.start_direct(direct_conversation(1, 1), T0);
    assert_eq!(core.accept(uid(2), cid(1), T0), Err(Refusal::OfferNotFound));
    assert_eq!(core.decline(uid(2), cid(1), T0), Err(Refusal::OfferNotFound));
    assert_eq!(core.end(cid(1), EndedBy::Agent, Some(uid(1)), T0), Err(Refusal::NotYourChat));
}

#[test]
fn a_customer_leaving_a_direct_invitation_withdraws_it() {
    let mut core = direct_core(30);
    let _ = core.start_direct(direct_conversation(1, 1), T0);
    let out = core.end(cid(1), EndedBy::Customer, None, T0 + time::Duration::seconds(2)).unwrap();
    assert_eq!(outcome_of(&out).map(|o| o.0), Some(Outcome::CustomerHangupInQueue));
    assert!(out.iter().any(|o| matches!(o, Out::OfferWithdrawn { .. })));
    let (users, _) = facts(&out);
    assert_eq!(users[0].outcome, parley_domain::UserOutcome::Cancelled);
}

#[test]
fn a_direct_chat_to_an_unreachable_user_is_missed_at_once() {
    // Offline, switched off, or without a workspace open: nobody would see the invitation.
    let cases: [fn(&mut TenantCore); 3] = [
        |c| drop(c.presence(uid(1), Presence::Offline, T0)),
        |c| drop(c.connection(uid(1), false, T0)),
        |c| {
            let mut u = agent(1);
            u.licences.push(Licence::Interact);
            drop(c.set_people(vec![u], &[], T0));
        },
    ];
    for make_unreachable in cases {
        let mut core = direct_core(30);
        make_unreachable(&mut core);
        let out = core.start_direct(direct_conversation(1, 1), T0);
        assert_eq!(outcome_of(&out).map(|o| o.0), Some(Outcome::Missed));
        assert!(!out.iter().any(|o| matches!(o, Out::Offer { .. })));
        assert!(system_texts(&out).iter().any(|t| t.contains("not available")));
        assert!(facts(&out).0.is_empty());
        assert!(core.conversation(cid(1)).is_none());
    }
}

#[test]
fn a_restart_keeps_a_connected_direct_chat_and_invites_again_with_a_fresh_deadline() {
    let mut core = direct_core(30);
    let mut connected = direct_conversation(1, 1);
    connected.status = ConversationStatus::Connected;
    connected.agent_id = Some(uid(1));
    assert!(core.restore(connected, None, T0).is_empty());
    assert_eq!(core.conversation(cid(1)).unwrap().status, ConversationStatus::Connected);
    let mut offered = direct_conversation(2, 1);
    offered.status = ConversationStatus::Offered;
    offered.agent_id = Some(uid(1));
    let later = T0 + time::Duration::seconds(100);
    let out = core.restore(offered, None, later);
    assert!(
        out.iter()
            .any(|o| matches!(o, Out::Offer { deadline, .. } if *deadline == later + time::Duration::seconds(30)))
    );
    assert!(core.end(cid(1), EndedBy::Agent, Some(uid(1)), later).is_ok());
}

mod messages;
mod queue;
mod restart;
