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
    Pinned { workflow_id: WorkflowId::from_uuid(Uuid::from_u128(workflow)), version: 1, definition: Arc::new(def) }
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
        service_id: sid(service),
        workflow_id: p.workflow_id,
        workflow_version: p.version,
        status: ConversationStatus::Workflow,
        customer: Customer { display_name: "Ann".into(), email: "ann@example.com".into(), privacy_consent: true },
        first_message: None,
        agent_id: None,
        last_seq: 0,
        created_at: T0,
        ended_at: None,
        outcome: None,
        outcome_reason: None,
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
    core.set_service(setup(1, Some(source.clone())));
    core.set_service(setup(2, Some(target)));
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
    assert_eq!(core.conversation(cid(1)).unwrap().service_id, sid(2));
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
    core.set_service(setup(1, Some(source.clone())));
    core.set_service(setup(2, None));
    let out = core.start(conversation(1, 1, &source), source, T0);
    assert!(!out.iter().any(|o| matches!(o, Out::Transferred { .. })));
    assert_eq!(outcome_of(&out).unwrap().0, Outcome::HandledBySystem);
}

#[test]
fn distribution_priority_puts_a_later_chat_first_in_the_queue() {
    let normal = pinned(201, queue_only(None));
    let high = pinned(202, queue_only(Some(Priority::High)));
    let mut core = TenantCore::new();
    core.set_service(setup(1, Some(normal.clone())));
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
        core.set_service(setup(1, Some(p.clone())));
        let _ = core.start(conversation(1, 1, &p), p, T0);
        let out = core.end(cid(1), EndedBy::Customer, None, T0).unwrap();
        assert_eq!(outcome_of(&out).unwrap().0, expected);
    }
}

#[test]
fn an_accepted_chat_ends_as_user_accepted_and_only_its_agent_may_end_it() {
    let p = pinned(201, queue_only(None));
    let mut core = TenantCore::new();
    core.set_service(setup(1, Some(p.clone())));
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
    core.set_service(setup(1, Some(p.clone())));
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
    core.set_service(setup(1, Some(p.clone())));
    let mut offered = conversation(1, 1, &p);
    offered.status = ConversationStatus::Offered;
    offered.agent_id = Some(uid(1));
    let out = core.restore(offered, T0);
    assert_eq!(
        out[0],
        Out::Status { conversation: cid(1), status: ConversationStatus::Queued, agent: None, ended_at: None }
    );
    let mut connected = conversation(2, 1, &p);
    connected.status = ConversationStatus::Connected;
    connected.agent_id = Some(uid(1));
    assert!(core.restore(connected, T0).is_empty());
    assert_eq!(core.router().phase(cid(2)), Some(Phase::Connected));
}
