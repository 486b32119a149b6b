//! Every exit of every activity, and a property test that the interpreter never panics, always
//! ends a call waiting, finished or failed, and only ever names nodes that exist.

use super::*;
use parley_domain::pattern::Patterns;
use parley_domain::workflow::{HeaderTemplate, MenuOption, ResponseMapping};
use proptest::prelude::*;
use uuid::Uuid;

#[derive(Debug, Clone)]
struct World {
    availability: Availability,
    users: u32,
    position: Option<u32>,
    task: TaskState,
    opening: &'static str,
    services: Vec<ServiceId>,
}

impl Default for World {
    fn default() -> Self {
        Self {
            availability: Availability::Available,
            users: 2,
            position: Some(3),
            task: TaskState::Queued,
            opening: "open",
            services: vec![svc()],
        }
    }
}

impl Facts for World {
    fn availability(&self, _: ServiceTarget) -> Availability {
        self.availability
    }
    fn available_users(&self, _: ServiceTarget) -> u32 {
        self.users
    }
    fn queue_position(&self) -> Option<u32> {
        self.position
    }
    fn task_state(&self) -> TaskState {
        self.task
    }
    fn opening_exit(&self) -> &'static str {
        self.opening
    }
    fn service_exists(&self, s: ServiceId) -> bool {
        self.services.contains(&s)
    }
    /// Just enough templating for tests: `{Name}` is replaced by the parameter `Name`.
    fn render(&self, t: &str, params: &BTreeMap<String, String>) -> String {
        params.iter().fold(t.to_owned(), |acc, (k, v)| acc.replace(&format!("{{{k}}}"), v))
    }
}

fn svc() -> ServiceId {
    ServiceId::from_uuid(Uuid::from_u128(7))
}
fn t0() -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH + Duration::days(20_000)
}

/// Accept → `node` (whose exits all lead to `end_*` Disconnect nodes named after the exit).
fn around(activity: Activity) -> WorkflowDefinition {
    let names = activity.exit_names();
    let mut nodes = vec![Node::new("accept", Activity::Accept, &[(NEXT, "x")])];
    let mut x = Node::new("x", activity, &[]);
    for n in &names {
        x.exits.insert(n.clone(), format!("end_{n}"));
        nodes.push(Node::new(&format!("end_{n}"), Activity::Disconnect { text: None }, &[]));
    }
    nodes.insert(1, x);
    WorkflowDefinition { start: "accept".into(), nodes }
}

struct Case {
    def: WorkflowDefinition,
    session: Session,
    world: World,
    now: OffsetDateTime,
}

impl Case {
    fn new(activity: Activity) -> Self {
        Self { def: around(activity), session: Session::new(BTreeMap::new()), world: World::default(), now: t0() }
    }
    fn with(mut self, f: impl FnOnce(&mut World)) -> Self {
        f(&mut self.world);
        self
    }
    fn input(&mut self, i: Input) -> Outcome {
        handle(&self.def, &Patterns::of(&self.def), &mut self.session, i, self.now, &self.world)
    }
    fn start(&mut self) -> Outcome {
        self.input(Input::Start)
    }
    fn advance(&mut self, secs: i64) -> Outcome {
        self.now += Duration::seconds(secs);
        self.input(Input::Timer)
    }
    /// The exit `x` took, from the trace.
    fn exit_of_x(out: &Outcome) -> Option<String> {
        out.trace.iter().find(|s| s.node == "x").and_then(|s| s.exit.clone())
    }
}

fn exit_after_start(activity: Activity, world: impl FnOnce(&mut World)) -> String {
    let mut c = Case::new(activity).with(world);
    let out = c.start();
    assert_eq!(c.session.status, Status::Finished, "{out:?}");
    Case::exit_of_x(&out).expect("x took an exit")
}

#[test]
fn accept_opens_the_conversation_and_goes_next() {
    let mut c = Case::new(Activity::Message { text: "hi".into(), delay_secs: 0 });
    let out = c.start();
    assert_eq!(out.effects[0], Effect::Accept);
    assert_eq!(out.trace[0], TraceStep { node: "accept".into(), kind: "accept".into(), exit: Some(NEXT.into()) });
}

#[test]
fn message_sends_its_rendered_text_at_once_without_delay() {
    let mut c = Case::new(Activity::Message { text: "Hello {Name}".into(), delay_secs: 0 });
    c.session.params.insert("Name".into(), "Ann".into());
    let out = c.start();
    assert!(out.effects.contains(&Effect::Send { text: "Hello Ann".into() }));
    assert_eq!(Case::exit_of_x(&out).as_deref(), Some(NEXT));
}

#[test]
fn message_with_delay_waits_then_sends() {
    let mut c = Case::new(Activity::Message { text: "later".into(), delay_secs: 30 });
    let out = c.start();
    assert!(out.effects.contains(&Effect::WakeAt(t0() + Duration::seconds(30))));
    assert!(!out.effects.iter().any(|e| matches!(e, Effect::Send { .. })));
    assert!(c.advance(10).effects.is_empty(), "an early timer is ignored");
    let out = c.advance(20);
    assert_eq!(out.effects[0], Effect::Send { text: "later".into() });
    assert_eq!(c.session.status, Status::Finished);
}

fn collect(rule: AnswerRule, retries: u8) -> Activity {
    Activity::CollectInformation {
        prompt: "Your e-mail?".into(),
        parameter: "Email".into(),
        rule,
        timeout_secs: 60,
        retries,
        retry_text: Some("Try again".into()),
    }
}

#[test]
fn collect_information_answered_stores_the_reply() {
    let mut c = Case::new(collect(AnswerRule::Email, 0));
    assert!(c.start().effects.contains(&Effect::Send { text: "Your e-mail?".into() }));
    let out = c.input(Input::CustomerText(" ann@example.com ".into()));
    assert!(out.effects.contains(&Effect::SetParameter { id: "Email".into(), value: "ann@example.com".into() }));
    assert_eq!(Case::exit_of_x(&out).as_deref(), Some("answered"));
}

#[test]
fn collect_information_retries_then_takes_invalid() {
    let mut c = Case::new(collect(AnswerRule::Email, 1));
    c.start();
    let out = c.input(Input::CustomerText("nope".into()));
    assert_eq!(out.effects[0], Effect::Send { text: "Try again".into() });
    assert!(matches!(c.session.status, Status::Waiting { .. }));
    let out = c.input(Input::CustomerText("still nope".into()));
    assert_eq!(Case::exit_of_x(&out).as_deref(), Some("invalid"));
}

#[test]
fn collect_information_times_out() {
    let mut c = Case::new(collect(AnswerRule::Any, 0));
    c.start();
    assert_eq!(Case::exit_of_x(&c.advance(60)).as_deref(), Some("timeout"));
}

#[test]
fn answer_rules_accept_what_they_should() {
    assert!(accepts(&AnswerRule::Phone, "+41 (44) 123-45-67", &Patterns::default()));
    assert!(!accepts(&AnswerRule::Phone, "call me", &Patterns::default()));
    assert!(accepts(&AnswerRule::Number, "3,5", &Patterns::default()));
    assert!(!accepts(&AnswerRule::Number, "NaN", &Patterns::default()));
    assert!(accepts(&AnswerRule::Regex("[A-Z]{2}\\d+".into()), "CH123", &Patterns::default()));
    assert!(
        !accepts(&AnswerRule::Regex("[A-Z]{2}\\d+".into()), "xCH123", &Patterns::default()),
        "the whole answer must match"
    );
    assert!(!accepts(&AnswerRule::Any, "", &Patterns::default()));
}

fn menu() -> Activity {
    Activity::InputCustomer {
        prompt: "1 Sales, 2 Support".into(),
        options: vec![
            MenuOption { key: "1".into(), label: "Sales".into() },
            MenuOption { key: "b".into(), label: "Billing".into() },
        ],
        timeout_secs: 30,
        retries: 0,
        retry_text: None,
        parameter: Some("Choice".into()),
    }
}

#[test]
fn input_customer_takes_the_option_exit_ignoring_case() {
    let mut c = Case::new(menu());
    c.start();
    let out = c.input(Input::CustomerText("B".into()));
    assert_eq!(Case::exit_of_x(&out).as_deref(), Some("option_b"));
    assert!(out.effects.contains(&Effect::SetParameter { id: "Choice".into(), value: "b".into() }));
    let mut c = Case::new(menu());
    c.start();
    assert_eq!(Case::exit_of_x(&c.input(Input::CustomerText("1".into()))).as_deref(), Some("option_1"));
}

#[test]
fn input_customer_invalid_and_timeout() {
    let mut c = Case::new(menu());
    c.start();
    assert_eq!(Case::exit_of_x(&c.input(Input::CustomerText("9".into()))).as_deref(), Some("invalid"));
    let mut c = Case::new(menu());
    c.start();
    assert_eq!(Case::exit_of_x(&c.advance(30)).as_deref(), Some("timeout"));
}

#[test]
fn save_to_parameter_stores_the_rendered_value() {
    let mut c = Case::new(Activity::SaveToParameter { parameter: "Greeting".into(), value: "Hi {Name}".into() });
    c.session.params.insert("Name".into(), "Bo".into());
    let out = c.start();
    assert!(out.effects.contains(&Effect::SetParameter { id: "Greeting".into(), value: "Hi Bo".into() }));
}

#[test]
fn transfer_hands_over_and_ends_or_takes_failed() {
    let mut c = Case::new(Activity::Transfer { service_id: svc() });
    let out = c.start();
    assert!(out.effects.contains(&Effect::Transfer { service: svc() }));
    assert_eq!(out.effects.last(), Some(&Effect::Finished));
    assert_eq!(exit_after_start(Activity::Transfer { service_id: svc() }, |w| w.services.clear()), "failed");
}

#[test]
fn delay_waits_its_time() {
    let mut c = Case::new(Activity::Delay { secs: 5 });
    c.start();
    assert!(matches!(c.session.status, Status::Waiting { .. }));
    assert_eq!(Case::exit_of_x(&c.advance(5)).as_deref(), Some(NEXT));
}

#[test]
fn disconnect_sends_its_closing_text_and_ends() {
    let mut c = Case::new(Activity::Disconnect { text: Some("Bye {Name}".into()) });
    c.session.params.insert("Name".into(), "Cy".into());
    let out = c.start();
    assert!(out.effects.contains(&Effect::Disconnect { text: Some("Bye Cy".into()) }));
    assert_eq!(c.session.status, Status::Finished);
}

#[test]
fn availability_routing_has_three_exits() {
    let abr = || Activity::AvailabilityRouting { service: ServiceTarget::Current };
    assert_eq!(exit_after_start(abr(), |w| w.availability = Availability::Available), "available");
    assert_eq!(exit_after_start(abr(), |w| w.availability = Availability::Busy), "busy");
    assert_eq!(exit_after_start(abr(), |w| w.availability = Availability::Unavailable), "unavailable");
}

#[test]
fn check_opening_hours_takes_every_category_exit() {
    for exit in exits::OPENING {
        assert_eq!(exit_after_start(Activity::CheckOpeningHours, |w| w.opening = exit), exit);
    }
}

#[test]
fn check_parameter_picks_the_first_condition_that_holds_or_default() {
    let cond =
        |exit: &str, op, value: &str| Condition { exit: exit.into(), op, value: value.into(), ignore_case: true };
    let act = || Activity::CheckParameter {
        parameter: "Age".into(),
        conditions: vec![
            cond("empty", CompareOp::Empty, ""),
            cond("adult", CompareOp::Ge, "18"),
            cond("kid", CompareOp::Lt, "18"),
        ],
    };
    let run = |v: Option<&str>| {
        let mut c = Case::new(act());
        if let Some(v) = v {
            c.session.params.insert("Age".into(), v.into());
        }
        Case::exit_of_x(&c.start()).unwrap()
    };
    assert_eq!(run(None), "empty");
    assert_eq!(run(Some("42")), "adult");
    assert_eq!(run(Some("7")), "kid");
    assert_eq!(run(Some("old")), "default", "not a number matches no numeric condition");
}

#[test]
fn compare_operators() {
    let c = |op, value: &str, ic| Condition { exit: "e".into(), op, value: value.into(), ignore_case: ic };
    assert!(holds(&c(CompareOp::Equals, "GOLD", true), "gold", &Patterns::default()));
    assert!(!holds(&c(CompareOp::Equals, "GOLD", false), "gold", &Patterns::default()));
    assert!(holds(&c(CompareOp::NotEquals, "a", false), "b", &Patterns::default()));
    assert!(holds(&c(CompareOp::Contains, "vip", true), "Super VIP customer", &Patterns::default()));
    assert!(holds(&c(CompareOp::StartsWith, "+41", false), "+41 44", &Patterns::default()));
    assert!(holds(&c(CompareOp::Regex, "^order-\\d+$", false), "order-17", &Patterns::default()));
    assert!(!holds(&c(CompareOp::Regex, "(", false), "(", &Patterns::default()), "a broken pattern never matches");
    assert!(holds(&c(CompareOp::NotEmpty, "", false), "x", &Patterns::default()));
    assert!(holds(&c(CompareOp::Gt, "1.5", false), "2", &Patterns::default()));
    assert!(holds(&c(CompareOp::Le, "2", false), "2", &Patterns::default()));
}

#[test]
fn get_available_users_stores_the_count() {
    let mut c = Case::new(Activity::GetAvailableUsers { service: ServiceTarget::Current, parameter: "N".into() })
        .with(|w| w.users = 4);
    assert!(c.start().effects.contains(&Effect::SetParameter { id: "N".into(), value: "4".into() }));
}

#[test]
fn get_queue_position_stores_it_or_takes_not_queued() {
    let act = || Activity::GetQueuePosition { parameter: "Pos".into() };
    let mut c = Case::new(act()).with(|w| w.position = Some(2));
    let out = c.start();
    assert!(out.effects.contains(&Effect::SetParameter { id: "Pos".into(), value: "2".into() }));
    assert_eq!(exit_after_start(act(), |w| w.position = None), "not_queued");
}

#[test]
fn queue_task_enqueues_and_continues() {
    let mut c = Case::new(Activity::QueueTask { priority: Some(Priority::High), max_queue_secs: 120 });
    let out = c.start();
    assert!(out.effects.contains(&Effect::Enqueue { priority: Some(Priority::High), max_queue_secs: 120 }));
    assert_eq!(Case::exit_of_x(&out).as_deref(), Some(NEXT));
}

#[test]
fn check_task_has_an_exit_per_state() {
    for (state, exit) in [
        (TaskState::Queued, "queued"),
        (TaskState::Offering, "offering"),
        (TaskState::Connected, "connected"),
        (TaskState::LimitReached, "limit_reached"),
        (TaskState::Ended, "ended"),
    ] {
        assert_eq!(exit_after_start(Activity::CheckTask, |w| w.task = state), exit);
    }
}

#[test]
fn cancel_task_and_distribution_priority_emit_their_effects() {
    assert!(Case::new(Activity::CancelTask).start().effects.contains(&Effect::CancelTask));
    let out = Case::new(Activity::DistributionPriority { priority: Priority::Strict }).start();
    assert!(out.effects.contains(&Effect::SetPriority(Priority::Strict)));
}

fn http() -> Activity {
    Activity::HttpRequest {
        method: HttpMethod::Post,
        url: "https://crm.example/lookup?e={Email}".into(),
        headers: vec![HeaderTemplate { name: "X-Who".into(), value: "{Email}".into() }],
        body: Some("{\"email\":\"{Email}\"}".into()),
        timeout_secs: 5,
        response: vec![
            ResponseMapping { pointer: "/tier".into(), parameter: "Tier".into() },
            ResponseMapping { pointer: "/score".into(), parameter: "Score".into() },
            ResponseMapping { pointer: "/missing".into(), parameter: "Nope".into() },
        ],
    }
}

#[test]
fn http_request_renders_the_call_and_maps_the_answer_on_success() {
    let mut c = Case::new(http());
    c.session.params.insert("Email".into(), "a@b.co".into());
    let out = c.start();
    let call =
        out.effects.iter().find_map(|e| if let Effect::Http(call) = e { Some(call.clone()) } else { None }).unwrap();
    assert_eq!(call.url, "https://crm.example/lookup?e=a@b.co");
    assert_eq!(call.headers, [("X-Who".to_owned(), "a@b.co".to_owned())]);
    assert_eq!(call.body.as_deref(), Some("{\"email\":\"a@b.co\"}"));
    let out = c.input(Input::Http(HttpOutcome::Response {
        status: 200,
        body: serde_json::json!({"tier": "gold", "score": 7}),
    }));
    assert!(out.effects.contains(&Effect::SetParameter { id: "Tier".into(), value: "gold".into() }));
    assert!(out.effects.contains(&Effect::SetParameter { id: "Score".into(), value: "7".into() }));
    assert!(!out.effects.iter().any(|e| matches!(e, Effect::SetParameter { id, .. } if id == "Nope")));
    assert_eq!(Case::exit_of_x(&out).as_deref(), Some("success"));
}

#[test]
fn http_request_failure_exits() {
    for outcome in [
        HttpOutcome::Response { status: 500, body: serde_json::Value::Null },
        HttpOutcome::Failed("refused by allow-list".into()),
    ] {
        let mut c = Case::new(http());
        c.start();
        assert_eq!(Case::exit_of_x(&c.input(Input::Http(outcome))).as_deref(), Some("failure"));
    }
    let mut c = Case::new(http());
    c.start();
    assert_eq!(Case::exit_of_x(&c.advance(5)).as_deref(), Some("failure"), "timeout");
}

#[test]
fn a_disabled_node_is_passed_through() {
    let mut c = Case::new(Activity::Message { text: "skipped".into(), delay_secs: 0 });
    c.def.nodes[1].enabled = false;
    let out = c.start();
    assert!(!out.effects.iter().any(|e| matches!(e, Effect::Send { .. })));
    assert_eq!(Case::exit_of_x(&out).as_deref(), Some(NEXT));
}

#[test]
fn an_unconnected_branch_fails_the_session_with_a_readable_reason() {
    let mut c = Case::new(Activity::CheckTask).with(|w| w.task = TaskState::Ended);
    c.def.nodes[1].exits.remove("ended");
    let out = c.start();
    assert_eq!(
        out.effects.last(),
        Some(&Effect::Failed { node: "x".into(), reason: "exit 'ended' of node 'x' is not connected".into() })
    );
    assert!(!c.session.is_live());
}

#[test]
fn a_missing_next_finishes_the_workflow() {
    let mut c = Case::new(Activity::QueueTask { priority: None, max_queue_secs: 60 });
    c.def.nodes[1].exits.clear();
    assert_eq!(c.start().effects.last(), Some(&Effect::Finished));
}

#[test]
fn a_loop_without_a_pause_fails_instead_of_spinning() {
    let def = WorkflowDefinition {
        start: "a".into(),
        nodes: vec![
            Node::new("a", Activity::SaveToParameter { parameter: "X".into(), value: "1".into() }, &[(NEXT, "b")]),
            Node::new("b", Activity::SaveToParameter { parameter: "X".into(), value: "2".into() }, &[(NEXT, "a")]),
        ],
    };
    let mut s = Session::new(BTreeMap::new());
    let out = handle(&def, &Patterns::of(&def), &mut s, Input::Start, t0(), &World::default());
    assert!(matches!(out.effects.last(), Some(Effect::Failed { .. })));
}

#[test]
fn inputs_that_do_not_concern_the_session_change_nothing() {
    let mut c = Case::new(Activity::Delay { secs: 10 });
    c.start();
    let before = c.session.clone();
    assert_eq!(c.input(Input::CustomerText("hello?".into())), Outcome::default());
    assert_eq!(c.input(Input::Start), Outcome::default());
    assert_eq!(c.session, before);
}

// ---- property test -------------------------------------------------------------------------

fn activity(pick: u8, n: u8) -> Activity {
    let p = || format!("P{}", n % 3);
    match pick % 18 {
        0 => Activity::Accept,
        1 => Activity::Message { text: "m".into(), delay_secs: u32::from(n % 3) },
        2 => collect(AnswerRule::Number, n % 2),
        3 => menu(),
        4 => Activity::SaveToParameter { parameter: p(), value: "{P0}".into() },
        5 => Activity::Transfer {
            service_id: if n.is_multiple_of(2) { svc() } else { ServiceId::from_uuid(Uuid::nil()) },
        },
        6 => Activity::Delay { secs: u32::from(n % 5) + 1 },
        7 => Activity::Disconnect { text: None },
        8 => Activity::AvailabilityRouting { service: ServiceTarget::Current },
        9 => Activity::CheckOpeningHours,
        10 => Activity::CheckParameter {
            parameter: p(),
            conditions: vec![Condition {
                exit: "c".into(),
                op: CompareOp::Regex,
                value: "^1".into(),
                ignore_case: false,
            }],
        },
        11 => Activity::GetAvailableUsers { service: ServiceTarget::Current, parameter: p() },
        12 => Activity::GetQueuePosition { parameter: p() },
        13 => Activity::QueueTask { priority: None, max_queue_secs: 60 },
        14 => Activity::CheckTask,
        15 => Activity::CancelTask,
        16 => Activity::DistributionPriority { priority: Priority::High },
        _ => http(),
    }
}

fn graph() -> impl Strategy<Value = WorkflowDefinition> {
    proptest::collection::vec(
        (any::<u8>(), any::<u8>(), proptest::collection::vec(any::<u8>(), 10), any::<bool>()),
        1..12,
    )
    .prop_map(|spec| {
        let len = spec.len();
        let nodes = spec
            .iter()
            .enumerate()
            .map(|(i, (pick, n, targets, enabled))| {
                let act = activity(*pick, *n);
                let mut node = Node::new(&format!("n{i}"), act, &[]);
                node.enabled = *enabled || node.activity.pass_through_exit().is_none();
                for (k, exit) in node.activity.exit_names().into_iter().enumerate() {
                    // Leave some exits unconnected so failures are exercised too.
                    let t = targets[k % targets.len()];
                    if t % 7 != 0 {
                        node.exits.insert(exit, format!("n{}", usize::from(t) % len));
                    }
                }
                node
            })
            .collect();
        WorkflowDefinition { start: "n0".into(), nodes }
    })
}

fn world_input() -> impl Strategy<Value = (u8, Input)> {
    (
        any::<u8>(),
        prop_oneof![
            Just(Input::Timer),
            "[0-9a-z@. ]{0,12}".prop_map(Input::CustomerText),
            (any::<u16>(), any::<bool>()).prop_map(|(s, ok)| Input::Http(if ok {
                HttpOutcome::Response { status: s % 600, body: serde_json::json!({"tier": s}) }
            } else {
                HttpOutcome::Failed("x".into())
            })),
            Just(Input::Start),
        ],
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn prop_interpreter_finishes_or_waits_and_names_only_existing_nodes(
        def in graph(),
        inputs in proptest::collection::vec(world_input(), 0..25),
    ) {
        let mut session = Session::new(BTreeMap::new());
        let mut now = t0();
        let ids: std::collections::BTreeSet<&str> = def.nodes.iter().map(|n| n.id.as_str()).collect();
        let mut all = vec![(0u8, Input::Start)];
        all.extend(inputs);
        for (w, input) in all {
            let world = World {
                availability: [Availability::Available, Availability::Busy, Availability::Unavailable][usize::from(w % 3)],
                users: u32::from(w % 4),
                position: w.is_multiple_of(2).then_some(u32::from(w % 5) + 1),
                task: [TaskState::Queued, TaskState::Offering, TaskState::Connected, TaskState::LimitReached, TaskState::Ended][usize::from(w % 5)],
                opening: exits::OPENING[usize::from(w % 8)],
                ..World::default()
            };
            now += Duration::seconds(i64::from(w % 90));
            let out = handle(&def, &Patterns::of(&def), &mut session, input, now, &world);
            prop_assert!(!matches!(session.status, Status::NotStarted) , "started sessions never go back");
            for step in &out.trace {
                prop_assert!(ids.contains(step.node.as_str()), "trace names {}", step.node);
            }
            for e in &out.effects {
                if let Effect::Failed { node, .. } = e {
                    prop_assert!(ids.contains(node.as_str()), "failure names {node}");
                }
            }
            if let Status::Waiting { node, .. } = &session.status {
                prop_assert!(ids.contains(node.as_str()));
                prop_assert!(out.effects.is_empty() || out.effects.iter().any(|e| matches!(e, Effect::WakeAt(_))) || out.trace.is_empty());
            }
        }
    }
}
