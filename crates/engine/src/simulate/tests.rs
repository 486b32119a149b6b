//! The simulator against the recommended template and hand-made workflows: queue, position
//! messages, limit, connection, opening hours, parameters, HTTP answers and failures.

use super::*;
use parley_domain::calendar::Calendar;
use parley_domain::workflow::{Activity, NEXT, Node, ServiceTarget, WorkflowDefinition, exits};
use parley_domain::{Service, WorkflowId};
use time::macros::datetime;

fn service(id: u128) -> Service {
    Service {
        id: ServiceId::from_uuid(Uuid::from_u128(id)),
        tenant_id: TenantId::from_uuid(Uuid::from_u128(9)),
        ou_id: OrgUnitId::from_uuid(Uuid::from_u128(8)),
        name: format!("Service {id}"),
        workflow_id: WorkflowId::from_uuid(Uuid::from_u128(100 + id)),
        contact_id: format!("c{id}"),
        widget_key: "k".into(),
        primary_calendar_id: None,
        secondary_calendar_id: None,
        routing: Default::default(),
        access: Default::default(),
        system_messages_id: None,
        codes: Default::default(),
        created_at: datetime!(2026-01-01 00:00 UTC),
    }
}

fn pinned(def: WorkflowDefinition) -> Pinned {
    Pinned::new(WorkflowId::from_uuid(Uuid::from_u128(101)), 1, def)
}

fn world(def: WorkflowDefinition) -> World {
    let s = service(1);
    World {
        tenant: s.tenant_id,
        ou: s.ou_id,
        service: ServiceSetup { service: s, primary: None, secondary: None, workflow: None },
        others: Vec::new(),
        parameter_defaults: BTreeMap::new(),
        system_messages: Vec::new(),
        pinned: pinned(def),
        // A Monday, 09:00 UTC.
        start: datetime!(2026-01-05 09:00 UTC),
    }
}

fn script(json: serde_json::Value) -> Script {
    let s: Script = serde_json::from_value(json).unwrap();
    s.validate().unwrap();
    s
}

fn system_texts(sim: &Simulation) -> Vec<(i64, &str)> {
    sim.log
        .iter()
        .filter_map(|e| match &e.what {
            SimWhat::Message { sender, text } if sender == "system" => Some((e.at_secs, text.as_str())),
            _ => None,
        })
        .collect()
}

fn events(sim: &Simulation) -> Vec<&str> {
    sim.log
        .iter()
        .filter_map(|e| match &e.what {
            SimWhat::Event { event } => Some(event.as_str()),
            SimWhat::Message { .. } => None,
        })
        .collect()
}

fn nodes(sim: &Simulation) -> Vec<(&str, Option<&str>)> {
    sim.trace.iter().map(|t| (t.node.as_str(), t.exit.as_deref())).collect()
}

fn recommended() -> WorkflowDefinition {
    WorkflowDefinition::recommended("Welcome!", 120, 30)
}

#[test]
fn nobody_there_means_position_messages_then_the_limit_apology_cancel_and_disconnect() {
    let sim = simulate(world(recommended()), &script(serde_json::json!({})));
    assert_eq!(sim.state, SimState::Ended);
    assert_eq!(sim.outcome, Some(Outcome::Cancelled));
    let texts = system_texts(&sim);
    assert_eq!(texts[0], (0, "Welcome!"));
    let positions: Vec<i64> = texts.iter().filter(|(_, t)| t.contains("number 1")).map(|(at, _)| *at).collect();
    assert_eq!(positions, [30, 60, 90], "a position message every 30 s until the 120 s limit");
    assert_eq!(texts.last().unwrap(), &(120, "We are sorry, all our agents are busy. Please try again later."));
    assert_eq!(events(&sim), ["accepted", "queued", "ended"]);
    let last: Vec<_> = nodes(&sim).into_iter().rev().take(4).collect();
    assert_eq!(
        last,
        [("bye", None), ("cancel", Some(NEXT)), ("sorry", Some(NEXT)), ("check", Some(exits::LIMIT_REACHED))]
    );
}

#[test]
fn an_available_agent_is_connected_and_the_workflow_rests() {
    let sim = simulate(world(recommended()), &script(serde_json::json!({"agents": 1})));
    assert_eq!(events(&sim), ["accepted", "queued", "connected"]);
    assert_eq!(sim.outcome, None);
    // The first check after the connection sees it and the workflow ends itself (no cut).
    assert!(nodes(&sim).contains(&("check", Some(exits::CONNECTED))), "{:?}", nodes(&sim));
    assert_eq!(sim.state, SimState::Finished);
}

#[test]
fn an_agent_arriving_later_takes_the_chat_from_the_queue() {
    let s = script(serde_json::json!({"steps": [{"at_secs": 45, "action": {"kind": "agents", "available": 1}}]}));
    let sim = simulate(world(recommended()), &s);
    let connected_at = sim.log.iter().find(|e| e.what == SimWhat::Event { event: "connected".into() }).unwrap();
    assert_eq!(connected_at.at_secs, 45);
    assert_eq!(system_texts(&sim).iter().filter(|(_, t)| t.contains("number 1")).count(), 1, "only the 30 s message");
}

#[test]
fn an_offer_nobody_answers_returns_to_the_queue_and_the_limit_then_abandons_the_chat() {
    let sim = simulate(world(recommended()), &script(serde_json::json!({"agents": 1, "accept_offers": false})));
    // Offered at 0, no answer by 30 s (RONA): nobody else is there, so it rings the same agent
    // again at 30, 60, 90 and 120. The 120 s limit passes during that last offer: when it comes
    // back at 150 it is not offered again, and the limit cancels a chat that had been offered.
    assert_eq!(sim.outcome, Some(Outcome::Abandoned));
    assert_eq!(system_texts(&sim).last().unwrap().0, 150);
}

#[test]
fn cancelling_a_task_that_was_offered_is_abandoned_and_one_never_offered_is_cancelled() {
    let def = WorkflowDefinition {
        start: "accept".into(),
        nodes: vec![
            Node::new("accept", Activity::Accept, &[(NEXT, "queue")]),
            Node::new("queue", Activity::QueueTask { priority: None, max_queue_secs: 600 }, &[(NEXT, "wait")]),
            Node::new("wait", Activity::Delay { secs: 10 }, &[(NEXT, "cancel")]),
            Node::new("cancel", Activity::CancelTask, &[(NEXT, "bye")]),
            Node::new("bye", Activity::Disconnect { text: Some("Goodbye".into()) }, &[]),
        ],
    };
    let offered = simulate(world(def.clone()), &script(serde_json::json!({"agents": 1, "accept_offers": false})));
    assert_eq!(offered.outcome, Some(Outcome::Abandoned));
    let waiting = simulate(world(def), &script(serde_json::json!({})));
    assert_eq!(waiting.outcome, Some(Outcome::Cancelled));
    assert_eq!(system_texts(&waiting), [(10, "Goodbye")]);
}

#[test]
fn a_customer_leaving_the_queue_is_a_hangup_in_queue() {
    let s = script(serde_json::json!({"steps": [{"at_secs": 10, "action": {"kind": "customer_leaves"}}]}));
    let sim = simulate(world(recommended()), &s);
    assert_eq!(sim.outcome, Some(Outcome::CustomerHangupInQueue));
    assert_eq!(sim.log.last().unwrap().at_secs, 10);
}

fn closed_hours() -> WorkflowDefinition {
    use exits::*;
    let disconnect = |t: &str| Activity::Disconnect { text: Some(t.into()) };
    WorkflowDefinition {
        start: "hours".into(),
        nodes: vec![
            Node::new(
                "hours",
                Activity::CheckOpeningHours,
                &[("open", "accept"), ("closed", "closed"), ("holiday", "closed"), (DEFAULT, "accept")],
            ),
            Node::new("closed", disconnect("We are closed. Our hours are Mon-Fri 08:00-17:00."), &[]),
            Node::new("accept", Activity::Accept, &[(NEXT, "queue")]),
            Node::new("queue", Activity::QueueTask { priority: None, max_queue_secs: 60 }, &[(NEXT, "bye")]),
            Node::new("bye", Activity::Disconnect { text: None }, &[]),
        ],
    }
}

fn office() -> Calendar {
    serde_json::from_value(serde_json::json!({
        "time_zone": "Europe/Zurich",
        "default_category": "closed",
        "periods": [{"category": "open", "rule": {"kind": "weekly", "days": ["mon","tue","wed","thu","fri"], "start": "08:00", "end": "17:00"}}]
    }))
    .unwrap()
}

#[test]
fn outside_opening_hours_the_customer_is_told_and_disconnected() {
    let mut w = world(closed_hours());
    w.service.primary = Some(office());
    w.start = datetime!(2026-01-05 18:30 UTC); // 19:30 in Zurich
    let sim = simulate(w, &script(serde_json::json!({})));
    assert_eq!(nodes(&sim), [("hours", Some("closed")), ("closed", None)]);
    assert_eq!(system_texts(&sim), [(0, "We are closed. Our hours are Mon-Fri 08:00-17:00.")]);
    assert_eq!(sim.outcome, Some(Outcome::HandledBySystem));
}

#[test]
fn inside_opening_hours_the_workflow_goes_on() {
    let mut w = world(closed_hours());
    w.service.primary = Some(office());
    let sim = simulate(w, &script(serde_json::json!({"agents": 1})));
    assert_eq!(nodes(&sim)[0], ("hours", Some("open")));
}

#[test]
fn a_service_without_calendars_takes_the_default_exit() {
    let sim = simulate(world(closed_hours()), &script(serde_json::json!({"agents": 1})));
    assert_eq!(nodes(&sim)[0], ("hours", Some(exits::DEFAULT)));
}

#[test]
fn sessions_start_with_parameter_defaults_and_templates_see_them() {
    let def = WorkflowDefinition {
        start: "accept".into(),
        nodes: vec![
            Node::new("accept", Activity::Accept, &[(NEXT, "hello")]),
            Node::new(
                "hello",
                Activity::Message { text: "Team $(CustomContextParameters.Team) here".into(), delay_secs: 0 },
                &[(NEXT, "bye")],
            ),
            Node::new("bye", Activity::Disconnect { text: None }, &[]),
        ],
    };
    let mut w = world(def);
    w.parameter_defaults.insert("Team".into(), "Blue".into());
    let sim = simulate(w, &script(serde_json::json!({})));
    assert_eq!(system_texts(&sim), [(0, "Team Blue here")]);
    assert_eq!(sim.parameters["Team"], "Blue");
}

fn http_workflow() -> WorkflowDefinition {
    serde_json::from_value(serde_json::json!({
        "start": "accept",
        "nodes": [
            {"id": "accept", "activity": {"kind": "accept"}, "exits": {"next": "lookup"}},
            {"id": "lookup", "activity": {"kind": "http_request", "method": "GET", "url": "https://crm.example.com/c",
              "response": [{"pointer": "/tier", "parameter": "Tier"}]},
             "exits": {"success": "tier", "failure": "down"}},
            {"id": "tier", "activity": {"kind": "message", "text": "Tier $(CustomContextParameters.Tier)"}, "exits": {"next": "bye"}},
            {"id": "down", "activity": {"kind": "message", "text": "CRM down"}, "exits": {"next": "bye"}},
            {"id": "bye", "activity": {"kind": "disconnect"}, "exits": {}}
        ]
    }))
    .unwrap()
}

#[test]
fn scripted_http_answers_feed_the_response_mapping() {
    let s = script(serde_json::json!({"http": [{"kind": "response", "status": 200, "body": {"tier": "gold"}}]}));
    let sim = simulate(world(http_workflow()), &s);
    assert_eq!(system_texts(&sim), [(0, "Tier gold")]);
    let s = script(serde_json::json!({}));
    let sim = simulate(world(http_workflow()), &s);
    assert_eq!(system_texts(&sim), [(0, "CRM down")], "no scripted answer is a failure");
}

#[test]
fn an_unconnected_exit_fails_the_conversation_with_a_readable_reason() {
    let def = WorkflowDefinition {
        start: "accept".into(),
        nodes: vec![
            Node::new("accept", Activity::Accept, &[(NEXT, "avail")]),
            Node::new(
                "avail",
                Activity::AvailabilityRouting { service: ServiceTarget::Current },
                &[(exits::AVAILABLE, "bye")],
            ),
            Node::new("bye", Activity::Disconnect { text: None }, &[]),
        ],
    };
    let sim = simulate(world(def), &script(serde_json::json!({})));
    assert_eq!(sim.outcome, Some(Outcome::Failed));
    let reason = sim.reason.clone().unwrap();
    assert!(reason.contains("avail") && reason.contains("unavailable"), "{reason}");
    assert_eq!(events(&sim), ["accepted", "ended"]);
}

#[test]
fn customer_answers_drive_collect_information() {
    let def: WorkflowDefinition = serde_json::from_value(serde_json::json!({
        "start": "accept",
        "nodes": [
            {"id": "accept", "activity": {"kind": "accept"}, "exits": {"next": "ask"}},
            {"id": "ask", "activity": {"kind": "collect_information", "prompt": "Order number?", "parameter": "Order",
              "rule": {"kind": "regex", "pattern": "^[0-9]+$"}, "timeout_secs": 60},
             "exits": {"answered": "thanks", "timeout": "bye", "invalid": "bye"}},
            {"id": "thanks", "activity": {"kind": "message", "text": "Order $(CustomContextParameters.Order) noted"}, "exits": {"next": "bye"}},
            {"id": "bye", "activity": {"kind": "disconnect"}, "exits": {}}
        ]
    }))
    .unwrap();
    let s =
        script(serde_json::json!({"steps": [{"at_secs": 20, "action": {"kind": "customer_text", "text": "4711"}}]}));
    let sim = simulate(world(def), &s);
    assert_eq!(system_texts(&sim), [(0, "Order number?"), (20, "Order 4711 noted")]);
    assert_eq!(sim.parameters["Order"], "4711");
}

#[test]
fn scripts_beyond_the_limits_are_refused_with_paths() {
    let s: Script = serde_json::from_value(serde_json::json!({
        "agents": 99, "run_for_secs": 10,
        "steps": [{"at_secs": 11, "action": {"kind": "agents", "available": 51}}]
    }))
    .unwrap();
    let paths: Vec<String> = s.validate().unwrap_err().into_iter().map(|e| e.path).collect();
    assert_eq!(paths, ["/agents", "/steps/0/at_secs", "/steps/0/action/available"]);
    assert!(serde_json::from_value::<Script>(serde_json::json!({"stepz": []})).is_err());
}

#[test]
fn a_workflow_that_never_rests_is_cut_short_not_hung() {
    // Delay 0 in a loop with a message: legal per node, endless in time.
    let def = WorkflowDefinition {
        start: "accept".into(),
        nodes: vec![
            Node::new("accept", Activity::Accept, &[(NEXT, "m")]),
            Node::new("m", Activity::Message { text: "again".into(), delay_secs: 0 }, &[(NEXT, "d")]),
            Node::new("d", Activity::Delay { secs: 1 }, &[(NEXT, "m")]),
        ],
    };
    let sim = simulate(world(def), &script(serde_json::json!({"run_for_secs": 604_800})));
    assert!(sim.cut_short);
}

#[test]
fn an_agent_ending_a_chat_nobody_took_changes_nothing() {
    let s =
        script(serde_json::json!({"steps": [{"at_secs": 5, "action": {"kind": "agent_ends"}}], "run_for_secs": 60}));
    let sim = simulate(world(recommended()), &s);
    assert_eq!(sim.outcome, None);
    assert_eq!(sim.state, SimState::Waiting);
}

#[test]
fn a_simulation_speaks_the_services_system_messages_in_the_customers_language() {
    let texts: parley_domain::SystemMessagesContent = serde_json::from_value(serde_json::json!({
    "name": "Texts", "scope": "service", "texts": [
        {"event": "customer.queued", "text": "You are number $(Queue.Position)"},
        {"event": "customer.connected", "text": "Hello"},
        {"event": "customer.connected", "language": "de", "text": "Hallo $(Customer.FirstName)"}
    ]}))
    .unwrap();
    let item = parley_domain::SystemMessages {
        id: parley_domain::SystemMessagesId::from_uuid(Uuid::from_u128(77)),
        tenant_id: TenantId::from_uuid(Uuid::from_u128(9)),
        ou_id: OrgUnitId::from_uuid(Uuid::from_u128(8)),
        content: texts.validate(&|_| false).unwrap(),
        created_at: datetime!(2026-01-01 00:00 UTC),
    };
    let mut w = world(recommended());
    w.service.service.system_messages_id = Some(item.id);
    w.system_messages = vec![item];
    let sim = simulate(
        w,
        &script(serde_json::json!({
            "customer": {"display_name": "Jana Novak", "email": "jana@example.com", "language": "de-AT"},
            "steps": [{"at_secs": 5, "action": {"kind": "agents", "available": 1}}]
        })),
    );
    let texts = system_texts(&sim);
    assert!(texts.contains(&(0, "You are number 1")), "{texts:?}");
    assert!(texts.contains(&(5, "Hallo Jana")), "{texts:?}");

    let bad: Script = serde_json::from_value(serde_json::json!({
        "customer": {"display_name": "x", "email": "x@example.com", "language": "not a tag"}
    }))
    .unwrap();
    let e = bad.validate().unwrap_err();
    assert_eq!((e[0].path.as_str(), e[0].code), ("/customer/language", "invalid_language"));
}
