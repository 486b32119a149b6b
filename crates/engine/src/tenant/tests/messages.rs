//! System messages: which texts each side reads at each event, in the customer's language,
//! and under which names.

use super::*;
use parley_domain::SystemMessagesId;
use parley_domain::system_messages::SystemMessages;
use serde_json::json;

pub(super) fn item(n: u128, content: serde_json::Value) -> SystemMessages {
    SystemMessages {
        id: SystemMessagesId::from_uuid(Uuid::from_u128(700 + n)),
        tenant_id: tenant(),
        ou_id: ou(),
        content: serde_json::from_value::<parley_domain::SystemMessagesContent>(content)
            .unwrap()
            .validate(&|_| false)
            .unwrap(),
        created_at: T0,
    }
}

/// Every service-scope text, in English and German, naming the event and its facts.
pub(super) fn service_texts() -> SystemMessages {
    item(
        1,
        json!({"name": "Support texts", "scope": "service",
            "agent_name": {"mode": "custom", "template": "$(User.FirstName) from $(Service.Name)"},
            "service_name": {"mode": "custom", "text": "Acme Help"},
            "texts": [
            {"event": "user.incoming", "text": "Chat from $(Customer.DisplayName)"},
            {"event": "user.accepted", "text": "You took $(Customer.FirstName)'s chat"},
            {"event": "user.ended", "text": "$(Customer.FirstName) left"},
            {"event": "user.terminated", "text": "You ended the chat"},
            {"event": "user.rona", "text": "You missed a chat"},
            {"event": "customer.connected", "text": "You are chatting with $(User.FirstName)"},
            {"event": "customer.connected", "language": "de", "text": "Sie chatten mit $(User.FirstName)"},
            {"event": "customer.ended", "text": "$(User.FirstName) ended the chat. Thanks!"},
            {"event": "customer.queued", "text": "You are number $(Queue.Position) at $(Service.DisplayName)"},
            {"event": "customer.position_changed", "text": "Now number $(Queue.Position)"},
            {"event": "customer.limit_reached", "text": "Sorry for the wait"},
            {"event": "customer.transferred", "text": "Moving you on"},
            {"event": "customer.idle_warning", "language": "de", "text": "Noch da?"},
            {"event": "customer.idle_closed", "text": "Closed for silence"},
            {"event": "customer.closed_hours", "text": "We are closed"}
        ]}),
    )
}

pub(super) fn linked(p: &Pinned, texts: &SystemMessages) -> ServiceSetup {
    let mut s = setup(1, Some(p.clone()));
    s.service.system_messages_id = Some(texts.id);
    s
}

fn notices(out: &[Out]) -> Vec<(UserId, SystemEvent, String)> {
    out.iter()
        .filter_map(|o| match o {
            Out::Notice { agent, event, text, .. } => Some((*agent, *event, text.clone())),
            _ => None,
        })
        .collect()
}

fn german(mut c: Conversation) -> Conversation {
    c.customer.language = Some("de-CH".into());
    c
}

/// A core whose service 1 links the texts and has agent 1 (and 2) able to take chats.
pub(super) fn core_with(p: &Pinned, agents: &[u128]) -> TenantCore {
    let mut core = TenantCore::new();
    let texts = service_texts();
    core.set_system_messages(vec![texts.clone()]);
    let _ = core.set_service(linked(p, &texts), T0);
    let members: Vec<Membership> =
        agents.iter().map(|&n| Membership { service_id: sid(1), user_id: uid(n), active: true }).collect();
    let users =
        agents.iter().map(|&n| User { display_name: format!("Ada{n} Lovelace"), ..agent(n) }).collect::<Vec<_>>();
    let _ = core.set_people(users, &members, T0);
    core
}

#[test]
fn the_customer_reads_the_agent_under_the_items_name_and_in_their_own_language() {
    let p = pinned(201, queue_only(None));
    let mut core = core_with(&p, &[1]);
    let _ = core.connection(uid(1), true, T0);
    let out = core.start(german(conversation(1, 1, &p)), p, T0);
    assert_eq!(notices(&out), [(uid(1), SystemEvent::UserIncoming, "Chat from Ann".to_owned())]);
    let out = core.accept(uid(1), cid(1), T0).unwrap();
    let alias = "Ada1 from S1";
    assert!(out.contains(&Out::AgentAlias { conversation: cid(1), alias: alias.into() }));
    assert!(out.iter().any(|o| matches!(o, Out::Append { body: EntryBody::Event {
        event: ConversationEvent::Connected { agent_name, .. } }, .. } if agent_name == alias)));
    assert_eq!(system_texts(&out), ["Sie chatten mit Ada1"], "the German variant for de-CH");
    assert_eq!(notices(&out), [(uid(1), SystemEvent::UserAccepted, "You took Ann's chat".to_owned())]);
    assert_eq!(core.conversation(cid(1)).unwrap().agent_alias.as_deref(), Some(alias), "the chat keeps it");
}

#[test]
fn a_chat_that_waits_is_told_its_place_and_each_change_of_it() {
    let p = pinned(201, queue_only(None));
    let mut core = core_with(&p, &[1]);
    let _ = core.connection(uid(1), true, T0);
    // The first chat is offered at once: it hears no "queued" text.
    let out = core.start(conversation(1, 1, &p), p.clone(), T0);
    assert!(system_texts(&out).is_empty(), "{:?}", system_texts(&out));
    let _ = core.queue_updates();
    let out = core.start(conversation(2, 1, &p), p.clone(), T0);
    assert_eq!(system_texts(&out), ["You are number 1 at Acme Help"]);
    let out = core.start(conversation(3, 1, &p), p, T0);
    assert_eq!(system_texts(&out), ["You are number 2 at Acme Help"]);
    let _ = core.queue_updates();
    // The first chat ends: both move up, and each hears its new place.
    let _ = core.accept(uid(1), cid(1), T0).unwrap();
    let _ = core.end(cid(1), EndedBy::Agent, Some(uid(1)), T0).unwrap();
    let out = core.queue_updates();
    let texts: Vec<(ConversationId, String)> = out
        .iter()
        .filter_map(|o| match o {
            Out::Append { conversation, body: EntryBody::Message { text, .. } } => Some((*conversation, text.clone())),
            _ => None,
        })
        .collect();
    // Chat 2 is offered now (no place); chat 3 is first in line.
    assert_eq!(texts, [(cid(3), "Now number 1".to_owned())]);
}

#[test]
fn the_agent_ending_sends_the_customer_text_before_the_end_and_the_users_note_after() {
    let p = pinned(201, queue_only(None));
    let mut core = core_with(&p, &[1]);
    let _ = core.connection(uid(1), true, T0);
    let _ = core.start(conversation(1, 1, &p), p.clone(), T0);
    let _ = core.accept(uid(1), cid(1), T0).unwrap();
    let out = core.end(cid(1), EndedBy::Agent, Some(uid(1)), T0).unwrap();
    let text_at = out.iter().position(|o| matches!(o, Out::Append { body: EntryBody::Message { .. }, .. })).unwrap();
    let ended_at = out.iter().position(|o| matches!(o, Out::Status { status: ConversationStatus::Ended, .. })).unwrap();
    let note_at = out.iter().position(|o| matches!(o, Out::Notice { .. })).unwrap();
    assert!(text_at < ended_at && ended_at < note_at, "{out:?}");
    assert_eq!(system_texts(&out), ["Ada1 ended the chat. Thanks!"]);
    assert_eq!(notices(&out), [(uid(1), SystemEvent::UserTerminated, "You ended the chat".to_owned())]);

    // The customer leaving: no "ended by the agent" text, and the user reads who left.
    let _ = core.start(conversation(2, 1, &p), p, T0);
    let _ = core.accept(uid(1), cid(2), T0).unwrap();
    let out = core.end(cid(2), EndedBy::Customer, None, T0).unwrap();
    assert!(system_texts(&out).is_empty());
    assert_eq!(notices(&out), [(uid(1), SystemEvent::UserEnded, "Ann left".to_owned())]);
}

#[test]
fn an_agent_who_lets_an_offer_run_out_reads_the_rona_text() {
    let p = pinned(201, queue_only(None));
    let mut core = core_with(&p, &[1, 2]);
    let _ = core.connection(uid(1), true, T0);
    let _ = core.start(conversation(1, 1, &p), p, T0);
    let deadline = core.offer_deadline(cid(1)).unwrap();
    let _ = core.connection(uid(2), true, T0);
    let out = core.tick(deadline);
    let missed: Vec<_> = notices(&out).into_iter().filter(|n| n.1 == SystemEvent::UserRona).collect();
    assert_eq!(missed, [(uid(1), SystemEvent::UserRona, "You missed a chat".to_owned())]);
}

#[test]
fn the_closed_hours_text_comes_where_the_workflow_checked_the_hours() {
    let p = pinned(
        201,
        def(vec![
            Node::new("hi", Activity::Message { text: "Welcome".into(), delay_secs: 0 }, &[(NEXT, "hours")]),
            Node::new(
                "hours",
                Activity::CheckOpeningHours,
                &[("open", "bye"), ("closed", "note"), ("holiday", "note"), ("default", "bye")],
            ),
            Node::new("note", Activity::Message { text: "Call us tomorrow".into(), delay_secs: 0 }, &[(NEXT, "bye")]),
            Node::new("bye", Activity::Disconnect { text: Some("Goodbye".into()) }, &[]),
        ]),
    );
    let mut core = core_with(&p, &[]);
    let mut s = linked(&p, &service_texts());
    s.primary = Some(parley_domain::calendar::Calendar {
        time_zone: "UTC".into(),
        default_category: parley_domain::calendar::Category::Closed,
        periods: Vec::new(),
    });
    let _ = core.set_service(s, T0);
    let out = core.start(conversation(1, 1, &p), p, T0);
    assert_eq!(system_texts(&out), ["Welcome", "We are closed", "Call us tomorrow", "Goodbye"]);
}

#[test]
fn the_idle_warning_speaks_the_customers_language_and_falls_back_to_the_services_text() {
    let p = pinned(201, queue_only(None));
    for (language, expected) in [(Some("de"), "Noch da?"), (None, "Still there?")] {
        let mut core = core_with(&p, &[1]);
        let mut s = linked(&p, &service_texts());
        s.service.routing.idle_warning_secs = 60;
        s.service.routing.idle_close_secs = 60;
        s.service.routing.idle_warning_text = "Still there?".into();
        let _ = core.set_service(s, T0);
        let _ = core.connection(uid(1), true, T0);
        let mut c = conversation(1, 1, &p);
        c.customer.language = language.map(str::to_owned);
        let _ = core.start(c, p.clone(), T0);
        let _ = core.accept(uid(1), cid(1), T0).unwrap();
        assert_eq!(system_texts(&core.tick(T0 + time::Duration::seconds(60))), [expected]);
        let out = core.tick(T0 + time::Duration::seconds(120));
        assert_eq!(system_texts(&out), ["Closed for silence"]);
        assert!(outcome_of(&out).is_some());
    }
}

#[test]
fn a_chat_without_an_item_gets_only_parleys_built_in_texts() {
    let p = pinned(201, queue_only(None));
    let mut core = TenantCore::new();
    let _ = core.set_service(setup(1, Some(p.clone())), T0);
    let _ = core.set_people(vec![agent(1)], &[Membership { service_id: sid(1), user_id: uid(1), active: true }], T0);
    let _ = core.connection(uid(1), true, T0);
    let out = core.start(conversation(1, 1, &p), p, T0);
    assert!(notices(&out).is_empty());
    let out = core.accept(uid(1), cid(1), T0).unwrap();
    assert!(out.contains(&Out::AgentAlias { conversation: cid(1), alias: "Agent 1".into() }), "the display name");
    assert!(system_texts(&out).is_empty());
    assert!(system_texts(&core.end(cid(1), EndedBy::Agent, Some(uid(1)), T0).unwrap()).is_empty());
}

#[test]
fn a_hidden_agent_is_named_to_nobody() {
    let hidden = item(
        2,
        json!({"name": "Hidden", "scope": "service", "agent_name": {"mode": "hidden"}, "texts": [
            {"event": "customer.incoming", "text": "Asking $(User.DisplayName)"},
            {"event": "customer.connected", "text": "You are with $(User.DisplayName) ($(User.FirstName))"},
            {"event": "user.accepted", "text": "You are $(User.DisplayName) to yourself"}
        ]}),
    );
    let p = pinned(201, queue_only(None));
    let mut core = core_with(&p, &[1]);
    core.set_system_messages(vec![hidden.clone()]);
    let _ = core.set_service(linked(&p, &hidden), T0);
    let _ = core.connection(uid(1), true, T0);
    let started = core.start(conversation(1, 1, &p), p, T0);
    assert_eq!(system_texts(&started), ["Asking Agent"]);
    let out = core.accept(uid(1), cid(1), T0).unwrap();
    assert!(out.contains(&Out::AgentAlias { conversation: cid(1), alias: String::new() }));
    assert_eq!(system_texts(&out), ["You are with Agent (Agent)"]);
    let leaked =
        out.iter().chain(&started).any(|o| format!("{o:?}").contains("Lovelace") && matches!(o, Out::Append { .. }));
    assert!(!leaked, "the customer's log never names a hidden agent");
    // The user's own notes name them as they are.
    assert_eq!(notices(&out), [(uid(1), SystemEvent::UserAccepted, "You are Ada1 Lovelace to yourself".to_owned())]);
}

#[test]
fn only_a_customer_still_waiting_hears_the_queue_limit() {
    // queue_only waits up to 600 s in the queue.
    let p = pinned(201, queue_only(None));
    let mut core = core_with(&p, &[1]);
    let _ = core.start(conversation(1, 1, &p), p.clone(), T0);
    let _ = core.connection(uid(1), true, T0);
    let _ = core.start(conversation(2, 1, &p), p, T0);
    // Chat 1 is offered to the agent who came online, and connects; chat 2 still waits.
    let _ = core.accept(uid(1), cid(1), T0).unwrap();
    let out = core.tick(T0 + time::Duration::seconds(600));
    let told: Vec<ConversationId> = out
        .iter()
        .filter_map(|o| match o {
            Out::Append { conversation, body: EntryBody::Message { text, .. } } if text == "Sorry for the wait" => {
                Some(*conversation)
            }
            _ => None,
        })
        .collect();
    assert_eq!(told, [cid(2)], "the connected chat hears nothing");
    assert!(system_texts(&core.tick(T0 + time::Duration::seconds(1200))).is_empty(), "told once");
}

#[test]
fn a_transferred_chat_hears_the_target_services_text() {
    let target = pinned(202, queue_only(None));
    let source = pinned(
        201,
        def(vec![
            Node::new("move", Activity::Transfer { service_id: sid(2) }, &[(exits::FAILED, "bye")]),
            Node::new("bye", Activity::Disconnect { text: None }, &[]),
        ]),
    );
    let texts = service_texts();
    let mut core = TenantCore::new();
    core.set_system_messages(vec![texts.clone()]);
    let _ = core.set_service(setup(1, Some(source.clone())), T0);
    let mut s2 = setup(2, Some(target));
    s2.service.system_messages_id = Some(texts.id);
    let _ = core.set_service(s2, T0);
    let out = core.start(conversation(1, 1, &source), source, T0);
    // Then the target's workflow queues it, with the same item.
    assert_eq!(system_texts(&out), ["Moving you on", "You are number 1 at Acme Help"]);
}

// ---- direct chats ------------------------------------------------------------------------------

fn direct_texts() -> SystemMessages {
    item(
        3,
        json!({"name": "Ann's texts", "scope": "direct",
            "agent_name": {"mode": "custom", "template": "$(User.FirstName) (Sales)"},
            "texts": [
            {"event": "customer.declined", "text": "$(User.FirstName) is busy"},
            {"event": "customer.connected", "text": "Hi, $(Customer.FirstName)"},
            {"event": "customer.ended", "text": "Bye from $(User.FirstName)"},
            {"event": "user.terminated", "text": "Done"}
        ]}),
    )
}

fn direct_core_with_texts() -> TenantCore {
    let mut core = direct_core(30);
    let texts = direct_texts();
    core.set_system_messages(vec![texts.clone()]);
    let mut u = agent(1);
    u.licences.push(Licence::Interact);
    u.direct.settings.enabled = true;
    u.direct.settings.invite_secs = 30;
    u.direct.settings.system_messages_id = Some(texts.id);
    let _ = core.set_people(vec![u], &[], T0);
    core
}

#[test]
fn a_direct_chat_speaks_with_its_users_item() {
    let mut core = direct_core_with_texts();
    let _ = core.start_direct(direct_conversation(1, 1), T0);
    let out = core.accept(uid(1), cid(1), T0).unwrap();
    assert!(out.contains(&Out::AgentAlias { conversation: cid(1), alias: "Agent (Sales)".into() }));
    assert_eq!(system_texts(&out), ["Hi, Ann"]);
    let out = core.end(cid(1), EndedBy::Agent, Some(uid(1)), T0).unwrap();
    assert_eq!(system_texts(&out), ["Bye from Agent"]);
    let text_at = out.iter().position(|o| matches!(o, Out::Append { body: EntryBody::Message { .. }, .. })).unwrap();
    let ended_at = out.iter().position(|o| matches!(o, Out::Status { status: ConversationStatus::Ended, .. })).unwrap();
    assert!(text_at < ended_at, "the goodbye goes in before the log closes: {out:?}");
    assert_eq!(notices(&out), [(uid(1), SystemEvent::UserTerminated, "Done".to_owned())]);

    // The invitation names the user as their texts do.
    let out = core.start_direct(direct_conversation(2, 1), T0);
    assert!(out.iter().any(|o| matches!(o, Out::Append { body: EntryBody::Event {
        event: ConversationEvent::Invited { user_name, .. } }, .. } if user_name == "Agent (Sales)")));
    let out = core.decline(uid(1), cid(2), T0).unwrap();
    assert_eq!(system_texts(&out), ["Agent is busy"], "the item's text replaces the built-in one");
    // No text for "missed": Parley's own is sent.
    let _ = core.start_direct(direct_conversation(3, 1), T0);
    let out = core.tick(T0 + time::Duration::seconds(30));
    assert_eq!(system_texts(&out), ["Agent (Sales) did not answer in time. Please try again later."]);
}

#[test]
fn a_silent_customer_of_a_direct_chat_is_warned_then_the_chat_closes() {
    let mut core = direct_core(30);
    let mut u = agent(1);
    u.licences.push(Licence::Interact);
    u.direct.settings.enabled = true;
    u.direct.settings.invite_secs = 30;
    u.direct.settings.idle_warning_secs = 60;
    u.direct.settings.idle_close_secs = 30;
    u.direct.settings.idle_warning_text = "Still with me?".into();
    let _ = core.set_people(vec![u], &[], T0);
    let _ = core.start_direct(direct_conversation(1, 1), T0);
    let at = |s: i64| T0 + time::Duration::seconds(s);
    assert_eq!(core.next_deadline(), Some(at(30)), "the invitation's deadline only, before the answer");
    let _ = core.accept(uid(1), cid(1), at(5)).unwrap();
    assert!(core.tick(at(30)).is_empty(), "the answered invitation's deadline passes by");
    assert_eq!(core.next_deadline(), Some(at(65)), "silence counts from the answer");
    // The customer writes: the clock starts again.
    let _ = core.customer_text(cid(1), "hello".into(), at(40));
    assert!(system_texts(&core.tick(at(65))).is_empty(), "stale");
    assert_eq!(system_texts(&core.tick(at(100))), ["Still with me?"]);
    let out = core.tick(at(130));
    assert_eq!(outcome_of(&out), Some((Outcome::UserAccepted, Some("the customer did not answer".into()))));
    let sessions = facts(&out).0;
    assert_eq!(sessions.len(), 1, "the user's session ends with it");
    assert!(!core.is_open(cid(1)));

    // A chat the user ends has no silence clock left.
    let _ = core.start_direct(direct_conversation(2, 1), at(200));
    let _ = core.accept(uid(1), cid(2), at(201)).unwrap();
    let _ = core.end(cid(2), EndedBy::Agent, Some(uid(1)), at(202)).unwrap();
    assert!(core.tick(at(10_000)).is_empty());
}

#[test]
fn a_queue_limit_passed_during_an_offer_is_told_when_the_chat_waits_again() {
    let p = pinned(
        201,
        def(vec![
            Node::new("queue", Activity::QueueTask { priority: None, max_queue_secs: 60 }, &[(NEXT, "wait")]),
            Node::new("wait", Activity::Delay { secs: 3600 }, &[]),
        ]),
    );
    let mut core = core_with(&p, &[1, 2]);
    let mut s = linked(&p, &service_texts());
    s.service.routing.rona_secs = 600;
    let _ = core.set_service(s, T0);
    let _ = core.connection(uid(1), true, T0);
    let _ = core.start(conversation(1, 1, &p), p, T0);
    // Offered when its 60 s limit passes: not told yet, it is with an agent.
    let out = core.tick(T0 + time::Duration::seconds(60));
    assert!(system_texts(&out).is_empty(), "{out:?}");
    // The agent declines: it waits again, and hears it now, once.
    let out = core.decline(uid(1), cid(1), T0 + time::Duration::seconds(61)).unwrap();
    assert_eq!(system_texts(&out), ["Sorry for the wait"]);
    let _ = core.connection(uid(2), true, T0 + time::Duration::seconds(62));
    let out = core.decline(uid(2), cid(1), T0 + time::Duration::seconds(63)).unwrap();
    assert!(system_texts(&out).is_empty(), "told once");
}
