//! One test per validation rule, each asserting the rule code and the node it names.

use super::*;
use crate::ids::{OrgUnitId, ServiceId};
use crate::template::Channel;
use uuid::Uuid;

fn msg(text: &str) -> Activity {
    Activity::Message { text: text.into(), delay_secs: 0 }
}
fn queue() -> Activity {
    Activity::QueueTask { priority: None, max_queue_secs: 300 }
}
fn bye() -> Activity {
    Activity::Disconnect { text: None }
}

fn def(nodes: Vec<Node>) -> WorkflowDefinition {
    WorkflowDefinition { start: nodes[0].id.clone(), nodes }
}

/// The (code, node) pairs of a definition's validation errors.
fn errors(d: &WorkflowDefinition) -> Vec<(&'static str, Option<String>)> {
    d.validate().err().map(|e| e.0.into_iter().map(|f| (f.code, f.node)).collect()).unwrap_or_default()
}

fn has(d: &WorkflowDefinition, code: &str, node: &str) -> bool {
    errors(d).iter().any(|(c, n)| *c == code && n.as_deref() == Some(node))
}

#[test]
fn the_built_in_shapes_are_valid() {
    WorkflowDefinition::accept_welcome_queue("Welcome!").validate().unwrap();
    WorkflowDefinition::recommended("Welcome!", 300, 30).validate().unwrap();
}

#[test]
fn v1_a_message_reachable_before_accept_is_refused() {
    let d = def(vec![
        Node::new(
            "hours",
            Activity::CheckOpeningHours,
            &[
                ("open", "accept"),
                ("closed", "closed_msg"),
                ("holiday", "accept"),
                ("special_1", "accept"),
                ("special_2", "accept"),
                ("special_3", "accept"),
                ("special_4", "accept"),
                ("default", "accept"),
            ],
        ),
        Node::new("closed_msg", msg("We are closed"), &[(NEXT, "bye")]),
        Node::new("accept", Activity::Accept, &[(NEXT, "bye")]),
        Node::new("bye", bye(), &[]),
    ]);
    assert!(has(&d, "accept_required", "closed_msg"), "{:?}", errors(&d));
    assert_eq!(errors(&d).len(), 1, "checks and disconnect may precede accept: {:?}", errors(&d));
}

#[test]
fn v1_accept_on_only_one_branch_is_not_enough() {
    let d = def(vec![
        Node::new(
            "p",
            Activity::CheckParameter {
                parameter: "Lang".into(),
                conditions: vec![Condition {
                    exit: "de".into(),
                    op: CompareOp::Equals,
                    value: "de".into(),
                    ignore_case: true,
                }],
            },
            &[("de", "accept"), ("default", "q")],
        ),
        Node::new("accept", Activity::Accept, &[(NEXT, "q")]),
        Node::new("q", queue(), &[]),
    ]);
    assert!(has(&d, "accept_required", "q"));
}

#[test]
fn v1_accepting_twice_is_refused() {
    let d = def(vec![Node::new("a", Activity::Accept, &[(NEXT, "b")]), Node::new("b", Activity::Accept, &[])]);
    assert!(has(&d, "accepted_twice", "b"));
}

#[test]
fn v2_an_unconnected_branch_exit_is_refused_but_a_trailing_next_is_fine() {
    let d = def(vec![
        Node::new("a", Activity::Accept, &[(NEXT, "q")]),
        Node::new("q", queue(), &[(NEXT, "t")]),
        Node::new("t", Activity::Transfer { service_id: ServiceId::from_uuid(Uuid::nil()) }, &[]),
    ]);
    assert_eq!(errors(&d), [("exit_unconnected", Some("t".into()))]);
}

#[test]
fn v2_unknown_exits_and_missing_targets_are_refused() {
    let d = def(vec![Node::new("a", Activity::Accept, &[(NEXT, "nowhere"), ("sideways", "a")])]);
    assert!(has(&d, "unknown_target", "a"));
    assert!(has(&d, "unknown_exit", "a"));
}

#[test]
fn v3_check_task_without_queue_task_before_it_is_refused() {
    let d = def(vec![
        Node::new("a", Activity::Accept, &[(NEXT, "check")]),
        Node::new(
            "check",
            Activity::CheckTask,
            &[("queued", "bye"), ("offering", "bye"), ("connected", "bye"), ("limit_reached", "bye"), ("ended", "bye")],
        ),
        Node::new("bye", bye(), &[]),
    ]);
    assert!(has(&d, "queue_task_required", "check"));
}

#[test]
fn v3_get_queue_position_and_cancel_task_need_a_queue_task() {
    let d = def(vec![
        Node::new("a", Activity::Accept, &[(NEXT, "pos")]),
        Node::new(
            "pos",
            Activity::GetQueuePosition { parameter: "P".into() },
            &[(NEXT, "cancel"), ("not_queued", "cancel")],
        ),
        Node::new("cancel", Activity::CancelTask, &[(NEXT, "bye")]),
        Node::new("bye", bye(), &[]),
    ]);
    assert!(has(&d, "queue_task_required", "pos"));
    assert!(has(&d, "queue_task_required", "cancel"));
}

#[test]
fn v14_cancel_task_must_lead_straight_to_disconnect() {
    let d = def(vec![
        Node::new("a", Activity::Accept, &[(NEXT, "q")]),
        Node::new("q", queue(), &[(NEXT, "cancel")]),
        Node::new("cancel", Activity::CancelTask, &[(NEXT, "m")]),
        Node::new("m", msg("bye"), &[]),
    ]);
    assert!(has(&d, "disconnect_required", "cancel"));
}

#[test]
fn v4_queueing_twice_on_one_path_is_refused_even_after_a_failed_transfer() {
    let twice = def(vec![
        Node::new("a", Activity::Accept, &[(NEXT, "q1")]),
        Node::new("q1", queue(), &[(NEXT, "q2")]),
        Node::new("q2", queue(), &[]),
    ]);
    assert!(has(&twice, "queued_twice", "q2"));
    // A successful transfer ends this workflow; only `failed` continues, still queued here.
    let after_failed_transfer = def(vec![
        Node::new("a", Activity::Accept, &[(NEXT, "q1")]),
        Node::new("q1", queue(), &[(NEXT, "t")]),
        Node::new("t", Activity::Transfer { service_id: ServiceId::from_uuid(Uuid::nil()) }, &[("failed", "q2")]),
        Node::new("q2", queue(), &[]),
    ]);
    assert!(has(&after_failed_transfer, "queued_twice", "q2"));
}

#[test]
fn a_loop_without_a_pause_is_refused_and_one_with_a_delay_is_fine() {
    let spin = def(vec![
        Node::new("a", Activity::Accept, &[(NEXT, "s1")]),
        Node::new("s1", Activity::SaveToParameter { parameter: "X".into(), value: "1".into() }, &[(NEXT, "s2")]),
        Node::new("s2", Activity::SaveToParameter { parameter: "X".into(), value: "2".into() }, &[(NEXT, "s1")]),
    ]);
    assert!(errors(&spin).iter().any(|(c, _)| *c == "loop_without_wait"));
    let paced = def(vec![
        Node::new("a", Activity::Accept, &[(NEXT, "s1")]),
        Node::new("s1", Activity::SaveToParameter { parameter: "X".into(), value: "1".into() }, &[(NEXT, "d")]),
        Node::new("d", Activity::Delay { secs: 5 }, &[(NEXT, "s1")]),
    ]);
    assert_eq!(errors(&paced), []);
}

#[test]
fn only_pass_through_activities_can_be_disabled() {
    let mut d = WorkflowDefinition::accept_welcome_queue("hi");
    d.nodes[1].enabled = false;
    assert_eq!(errors(&d), []);
    d.nodes[0].enabled = false;
    assert!(has(&d, "cannot_disable", "accept"));
}

#[test]
fn property_rules_name_their_node_and_property() {
    let d = def(vec![
        Node::new("a", Activity::Accept, &[(NEXT, "m")]),
        Node::new("m", Activity::Message { text: String::new(), delay_secs: 601 }, &[(NEXT, "menu")]),
        Node::new(
            "menu",
            Activity::InputCustomer {
                prompt: "Pick".into(),
                options: vec![
                    MenuOption { key: "1".into(), label: "Sales".into() },
                    MenuOption { key: "1".into(), label: "Again".into() },
                    MenuOption { key: "x y".into(), label: "Bad".into() },
                ],
                timeout_secs: 1,
                retries: 9,
                retry_text: None,
                parameter: Some("bad id".into()),
            },
            &[("option_1", "bye"), ("timeout", "bye"), ("invalid", "bye")],
        ),
        Node::new("bye", bye(), &[]),
    ]);
    let all = d.validate().unwrap_err().0;
    let got: Vec<(&str, &str)> = all.iter().map(|f| (f.code, f.path.as_str())).collect();
    for expected in [
        ("required", "/definition/nodes/1/activity/text"),
        ("out_of_range", "/definition/nodes/1/activity/delay_secs"),
        ("out_of_range", "/definition/nodes/2/activity/timeout_secs"),
        ("out_of_range", "/definition/nodes/2/activity/retries"),
        ("invalid_parameter_id", "/definition/nodes/2/activity/parameter"),
        ("duplicate_option", "/definition/nodes/2/activity/options/1/key"),
        ("invalid_option_key", "/definition/nodes/2/activity/options/2/key"),
    ] {
        assert!(got.contains(&expected), "missing {expected:?} in {got:?}");
    }
    assert!(all.iter().all(|f| f.node.is_some()));
}

#[test]
fn check_parameter_conditions_are_checked() {
    let d = def(vec![
        Node::new(
            "p",
            Activity::CheckParameter {
                parameter: "Age".into(),
                conditions: vec![
                    Condition { exit: "adult".into(), op: CompareOp::Ge, value: "eighteen".into(), ignore_case: false },
                    Condition {
                        exit: "default".into(),
                        op: CompareOp::Empty,
                        value: String::new(),
                        ignore_case: false,
                    },
                    Condition { exit: "adult".into(), op: CompareOp::Regex, value: String::new(), ignore_case: false },
                ],
            },
            &[("adult", "bye"), ("default", "bye")],
        ),
        Node::new("bye", bye(), &[]),
    ]);
    let codes: Vec<_> = errors(&d).into_iter().map(|(c, _)| c).collect();
    assert!(
        codes.contains(&"not_a_number")
            && codes.contains(&"invalid_exit_name")
            && codes.contains(&"duplicate_exit")
            && codes.contains(&"invalid_regex"),
        "{codes:?}"
    );
}

#[test]
fn http_request_properties_are_checked() {
    let d = def(vec![
        Node::new(
            "h",
            Activity::HttpRequest {
                method: HttpMethod::Post,
                url: "ftp://x".into(),
                headers: vec![HeaderTemplate { name: "X-Bad\r\n".into(), value: "v".into() }],
                body: None,
                timeout_secs: 60,
                response: vec![ResponseMapping { pointer: "tier".into(), parameter: "Tier".into() }],
            },
            &[("success", "bye"), ("failure", "bye")],
        ),
        Node::new("bye", bye(), &[]),
    ]);
    let codes: Vec<_> = errors(&d).into_iter().map(|(c, _)| c).collect();
    // Path rules (like accept_required) wait until the structure is sound.
    for c in ["invalid_url", "invalid_header", "out_of_range", "invalid_pointer"] {
        assert!(codes.contains(&c), "{c} missing from {codes:?}");
    }
}

struct Refs;
impl References for Refs {
    fn service_ou(&self, s: ServiceId) -> Option<OrgUnitId> {
        match s.0.as_u128() {
            1 => Some(OrgUnitId::from_uuid(Uuid::from_u128(10))),
            2 => Some(OrgUnitId::from_uuid(Uuid::from_u128(20))),
            _ => None,
        }
    }
    fn parameter_ou(&self, id: &str) -> Option<OrgUnitId> {
        (id == "Known").then(|| OrgUnitId::from_uuid(Uuid::from_u128(10)))
    }
    fn visible(&self, entity: OrgUnitId, from: OrgUnitId) -> bool {
        // Unit 10 is the root; 20 is a sibling branch the workflow (in 30, under 10) cannot see.
        entity.0.as_u128() == 10 || entity == from
    }
}

#[test]
fn v7_references_must_exist_and_be_visible_from_the_workflow_unit() {
    let svc = |n| ServiceId::from_uuid(Uuid::from_u128(n));
    let d = def(vec![
        Node::new("a", Activity::Accept, &[(NEXT, "t1")]),
        Node::new("t1", Activity::Transfer { service_id: svc(1) }, &[("failed", "t2")]),
        Node::new("t2", Activity::Transfer { service_id: svc(2) }, &[("failed", "t3")]),
        Node::new("t3", Activity::Transfer { service_id: svc(3) }, &[("failed", "s")]),
        Node::new("s", Activity::SaveToParameter { parameter: "Unknown".into(), value: String::new() }, &[(NEXT, "k")]),
        Node::new("k", Activity::SaveToParameter { parameter: "Known".into(), value: String::new() }, &[]),
    ]);
    let ou = OrgUnitId::from_uuid(Uuid::from_u128(30));
    let e = d.validate_for(ou, &Refs, &[Channel::Web], None).unwrap_err().0;
    let got: Vec<_> = e.iter().map(|f| (f.code, f.node.clone().unwrap_or_default())).collect();
    assert_eq!(
        got,
        [
            ("not_visible", "t2".to_owned()),
            ("unknown_reference", "t3".to_owned()),
            ("unknown_parameter", "s".to_owned())
        ]
    );
}

#[test]
fn v5_every_activity_supports_every_text_channel() {
    let d = WorkflowDefinition::recommended("hi", 300, 30);
    assert_eq!(d.channels().len(), 3);
    let refs = Refs;
    let e = d.validate_for(OrgUnitId::from_uuid(Uuid::from_u128(10)), &refs, &Channel::ALL, None);
    assert!(e.unwrap_err().0.iter().all(|f| f.code != "channel_unsupported"));
}

#[test]
fn v6_queueing_needs_the_contact_center_licence() {
    let d = WorkflowDefinition::accept_welcome_queue("hi");
    assert_eq!(d.required_licences().into_iter().collect::<Vec<_>>(), [Licence::ContactCenter]);
    let e = d
        .validate_for(OrgUnitId::from_uuid(Uuid::from_u128(10)), &Refs, &[], Some(&[Licence::InstantMessaging]))
        .unwrap_err();
    assert_eq!(e.0[0].code, "licence_required");
    assert_eq!(e.0[0].node.as_deref(), Some("queue"));
}

#[test]
fn node_json_is_strict_about_activity_kinds_and_fields() {
    let n: Node =
        serde_json::from_str(r#"{"id":"m","activity":{"kind":"message","text":"hi"},"exits":{"next":"q"}}"#).unwrap();
    assert_eq!(n.activity, msg("hi"));
    assert!(n.enabled);
    assert!(serde_json::from_str::<Node>(r#"{"id":"m","activity":{"kind":"teleport"}}"#).is_err());
    assert!(
        serde_json::from_str::<Node>(r#"{"id":"m","activity":{"kind":"message","text":"hi","colour":1}}"#).is_err()
    );
}

#[test]
fn every_activity_kind_round_trips_through_json() {
    let d = WorkflowDefinition::recommended("hi", 300, 30);
    let mut kinds: BTreeSet<&str> = d.nodes.iter().map(|n| n.activity.kind()).collect();
    let extra = [
        Activity::CollectInformation {
            prompt: "p".into(),
            parameter: "P".into(),
            rule: AnswerRule::Regex("^a$".into()),
            timeout_secs: 60,
            retries: 1,
            retry_text: Some("again".into()),
        },
        Activity::InputCustomer {
            prompt: "p".into(),
            options: vec![MenuOption { key: "1".into(), label: "One".into() }],
            timeout_secs: 60,
            retries: 0,
            retry_text: None,
            parameter: None,
        },
        Activity::SaveToParameter { parameter: "P".into(), value: "$(Customer.Email)".into() },
        Activity::Transfer { service_id: ServiceId::from_uuid(Uuid::nil()) },
        Activity::AvailabilityRouting { service: ServiceTarget::Service(ServiceId::from_uuid(Uuid::nil())) },
        Activity::CheckOpeningHours,
        Activity::CheckParameter { parameter: "P".into(), conditions: vec![] },
        Activity::GetAvailableUsers { service: ServiceTarget::Current, parameter: "P".into() },
        Activity::DistributionPriority { priority: Priority::Strict },
        Activity::HttpRequest {
            method: HttpMethod::Get,
            url: "https://x".into(),
            headers: vec![],
            body: None,
            timeout_secs: 5,
            response: vec![],
        },
    ];
    for a in extra {
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Activity>(&json).unwrap(), a, "{json}");
        kinds.insert(a.kind());
    }
    assert_eq!(kinds.len(), 18, "every activity kind is covered: {kinds:?}");
}

#[test]
fn structure_rules_name_the_node_and_the_rule() {
    let empty = WorkflowDefinition { start: "x".into(), nodes: vec![] };
    assert!(errors(&empty).contains(&("required", None)), "{:?}", errors(&empty));

    let huge = WorkflowDefinition {
        start: "n0".into(),
        nodes: (0..=MAX_NODES).map(|i| Node::new(&format!("n{i}"), bye(), &[])).collect(),
    };
    assert!(errors(&huge).contains(&("too_many", None)));

    let d = def(vec![
        Node::new("a", Activity::Accept, &[(NEXT, "bad id")]),
        Node::new("bad id", msg("hi"), &[(NEXT, "a2")]),
        Node::new("a2", bye(), &[]),
        Node::new("a2", bye(), &[]),
    ]);
    assert!(has(&d, "invalid_node_id", "bad id"), "{:?}", errors(&d));
    assert!(has(&d, "duplicate_node_id", "a2"), "{:?}", errors(&d));

    let long = def(vec![
        Node::new("a", Activity::Accept, &[(NEXT, "s")]),
        Node::new("s", Activity::SaveToParameter { parameter: "P".into(), value: "x".repeat(5121) }, &[(NEXT, "b")]),
        Node::new("b", bye(), &[]),
    ]);
    assert!(has(&long, "too_long", "s"), "{:?}", errors(&long));
}

#[test]
fn v7_placeholders_must_name_known_parameters() {
    let d = def(vec![
        Node::new("a", Activity::Accept, &[(NEXT, "m")]),
        Node::new("m", msg("Hi $(CustomContextParameters.Known), $(CustomContextParameters.Typo)"), &[(NEXT, "b")]),
        Node::new("b", bye(), &[]),
    ]);
    let e = d.validate_for(OrgUnitId::from_uuid(Uuid::from_u128(30)), &Refs, &[Channel::Web], None).unwrap_err().0;
    let got: Vec<_> = e.iter().map(|f| (f.code, f.node.clone().unwrap_or_default(), f.path.clone())).collect();
    assert_eq!(got, [("unknown_parameter", "m".to_owned(), "/definition/nodes/1/activity/text".to_owned())]);
    assert_eq!(d.parameter_ids().into_iter().collect::<Vec<_>>(), ["Known", "Typo"]);
}
