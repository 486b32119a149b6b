//! What waiting customers are told (`queue_updates`): the queue frame with their place and
//! estimated wait, and the "position changed" text of the service's item, always their true
//! place in the queue, however long it is.

use super::messages::{item, linked};
use super::*;
use parley_domain::system_messages::SystemMessages;
use proptest::prelude::*;
use serde_json::json;

/// The queue frames of one pass, by chat (each chat gets one at most).
fn frames(out: &[Out]) -> BTreeMap<ConversationId, QueueStatus> {
    let mut frames = BTreeMap::new();
    for o in out {
        if let Out::Queue { conversation, status } = o {
            assert!(frames.insert(*conversation, *status).is_none(), "two frames for {conversation:?}");
        }
    }
    frames
}

/// The system texts of one pass, by chat.
fn texts(out: &[Out]) -> BTreeMap<ConversationId, Vec<String>> {
    let mut texts: BTreeMap<ConversationId, Vec<String>> = BTreeMap::new();
    for o in out {
        if let Out::Append { conversation, body: EntryBody::Message { sender: Sender::System, text, .. } } = o {
            texts.entry(*conversation).or_default().push(text.clone());
        }
    }
    texts
}

/// Where every waiting chat of the services truly stands: its rank in the router's queue.
fn truth(core: &TenantCore, services: &[ServiceId]) -> BTreeMap<ConversationId, QueueStatus> {
    let mut truth = BTreeMap::new();
    for &service in services {
        let estimate = core.router().wait_estimate(service);
        for (i, c) in core.router().queue_of(service).into_iter().enumerate() {
            let position = i + 1;
            let status = QueueStatus {
                position: u32::try_from(position).unwrap(),
                estimated_wait_secs: estimate.map(|e| coarse(e.at(position).whole_seconds())),
            };
            truth.insert(c, status);
        }
    }
    truth
}

/// One queue pass checked against the truth: exactly the chats whose status changed since the
/// last pass (`before`) get a frame saying their true place, and exactly those whose place
/// changed read the position text (`text_at` renders it).
fn check_pass(
    out: &[Out],
    before: &BTreeMap<ConversationId, QueueStatus>,
    now: &BTreeMap<ConversationId, QueueStatus>,
    text_at: impl Fn(ConversationId, u32) -> String,
) -> Result<(), String> {
    let frames = frames(out);
    let texts = texts(out);
    for (c, status) in now {
        let was = before.get(c);
        let frame = frames.get(c);
        if was == Some(status) {
            if frame.is_some() {
                return Err(format!("{c:?} unchanged at {status:?} but told {frame:?}"));
            }
        } else if frame != Some(status) {
            return Err(format!("{c:?} is at {status:?} (was {was:?}) but told {frame:?}"));
        }
        let moved = was.is_some_and(|w| w.position != status.position);
        let expected = moved.then(|| vec![text_at(*c, status.position)]);
        if texts.get(c) != expected.as_ref() {
            return Err(format!("{c:?} at {status:?} (was {was:?}) read {:?}", texts.get(c)));
        }
    }
    if let Some(c) = frames.keys().chain(texts.keys()).find(|c| !now.contains_key(c)) {
        return Err(format!("{c:?} does not wait but was told {:?} {:?}", frames.get(c), texts.get(c)));
    }
    Ok(())
}

/// The text of [`places`].
fn number(_: ConversationId, position: u32) -> String {
    format!("Now number {position}")
}

/// An item with only the text of a change of place.
fn places() -> SystemMessages {
    item(
        3,
        json!({"name": "Places", "scope": "service", "texts": [
            {"event": "customer.position_changed", "text": "Now number $(Queue.Position)"}
        ]}),
    )
}

/// Runs one queue pass and checks it; the truth after it.
fn pass(
    core: &mut TenantCore,
    services: &[ServiceId],
    before: &BTreeMap<ConversationId, QueueStatus>,
) -> BTreeMap<ConversationId, QueueStatus> {
    let out = core.queue_updates();
    let now = truth(core, services);
    check_pass(&out, before, &now, number).unwrap();
    now
}

/// A pass after the chat at `left` of `waiting` left the queue: every chat behind it moves up by
/// one and hears its new place in a frame and in the item's text, that place is its rank in
/// the queue, and nobody ahead of it hears anything.
fn dequeued(
    core: &mut TenantCore,
    waiting: &mut VecDeque<ConversationId>,
    told: &mut BTreeMap<ConversationId, QueueStatus>,
    left: usize,
) {
    let out = core.queue_updates();
    let gone = waiting.remove(left).unwrap();
    let frames = frames(&out);
    let texts = texts(&out);
    assert!(!frames.contains_key(&gone) && !texts.contains_key(&gone));
    for (i, c) in waiting.iter().enumerate().skip(left) {
        let position = u32::try_from(i + 1).unwrap();
        assert_eq!(frames[c].position, told[c].position - 1);
        assert_eq!(frames[c].position, position);
        assert_eq!(texts[c], [format!("Now number {position}")]);
    }
    assert!(waiting.iter().take(left).all(|c| !texts.contains_key(c)), "those ahead stay put");
    let now = truth(core, &[sid(1)]);
    check_pass(&out, told, &now, number).unwrap();
    assert_eq!(core.router().queue_of(sid(1)), Vec::from(waiting.clone()), "the true order");
    for i in [0, waiting.len() / 2, waiting.len() - 1] {
        let c = waiting[i];
        assert_eq!(core.queue_status(c), Some(now[&c]), "the place counted on its own");
        assert_eq!(core.router().position(c), Some(i + 1));
    }
    *told = now;
}

#[test]
fn a_queue_of_ten_thousand_moves_up_by_one_at_each_dequeue() {
    const N: u32 = 10_000;
    let p = pinned(201, queue_only(None));
    // Only the text of a change of place (a "queued" text naming the place would count each
    // arrival's place, slow in a debug build and not what this test is about).
    let texts = places();
    let mut core = TenantCore::new();
    core.set_system_messages(vec![texts.clone()]);
    let _ = core.set_service(linked(&p, &texts), T0);
    let _ = core.set_people(vec![agent(1)], &[Membership { service_id: sid(1), user_id: uid(1), active: true }], T0);
    for n in 1..=N {
        let _ = core.start(conversation(n.into(), 1, &p), p.clone(), T0);
    }
    let mut told = pass(&mut core, &[sid(1)], &BTreeMap::new());
    assert_eq!(told.len(), 10_000);
    assert!((1..=N).all(|n| told[&cid(n.into())] == QueueStatus { position: n, estimated_wait_secs: None }));
    let mut waiting: VecDeque<ConversationId> = (1..=N).map(|n| cid(n.into())).collect();

    // The customer at the head leaves.
    let _ = core.end(waiting[0], EndedBy::Customer, None, T0).unwrap();
    dequeued(&mut core, &mut waiting, &mut told, 0);
    // The agent signs in and is offered the head (estimated waits appear too).
    let _ = core.connection(uid(1), true, T0);
    let mut connected = waiting[0];
    assert_eq!(core.router().offered_to(connected), Some(uid(1)));
    dequeued(&mut core, &mut waiting, &mut told, 0);
    assert!(told.values().all(|s| s.estimated_wait_secs.is_some()));
    // Accepting moves nobody in the queue: nobody is told anything.
    let _ = core.accept(uid(1), connected, T0).unwrap();
    assert!(core.queue_updates().is_empty());
    // Ending the chat offers the agent the next head, a few times over.
    let mut now = T0;
    for _ in 0..3 {
        now += time::Duration::seconds(60);
        let _ = core.end(connected, EndedBy::Agent, Some(uid(1)), now).unwrap();
        connected = waiting[0];
        assert_eq!(core.router().offered_to(connected), Some(uid(1)));
        dequeued(&mut core, &mut waiting, &mut told, 0);
        let _ = core.accept(uid(1), connected, now).unwrap();
    }
    // A customer in the middle leaves: only those behind move up.
    let middle = waiting.len() / 2;
    let _ = core.end(waiting[middle], EndedBy::Customer, None, now).unwrap();
    dequeued(&mut core, &mut waiting, &mut told, middle);
}

#[test]
fn without_a_position_text_only_the_frames_tell_the_new_place() {
    let p = pinned(201, queue_only(None));
    let mut core = TenantCore::new();
    let _ = core.set_service(setup(1, Some(p.clone())), T0);
    for n in 1..=5 {
        let _ = core.start(conversation(n, 1, &p), p.clone(), T0);
    }
    let _ = core.queue_updates();
    let _ = core.end(cid(1), EndedBy::Customer, None, T0).unwrap();
    let out = core.queue_updates();
    assert!(system_texts(&out).is_empty());
    let expected: Vec<Out> = (2..=5)
        .map(|n| Out::Queue {
            conversation: cid(n),
            status: QueueStatus { position: u32::try_from(n - 1).unwrap(), estimated_wait_secs: None },
        })
        .collect();
    assert_eq!(out, expected);
}

/// Something that happens to the tenant.
#[derive(Debug, Clone)]
enum Op {
    /// A new chat in service 1 or 2, at normal or high priority.
    Arrive { service: u128, high: bool },
    /// The customer of one of the open chats (an index into them, wrapped) leaves.
    Leave(usize),
    /// Agent 1, 2 or 3 opens or closes a workspace.
    Connection { agent: u128, open: bool },
    /// The agent accepts their offer, if they have one.
    Accept(u128),
    /// The agent ends their oldest chat, if they have one.
    Finish(u128),
    /// Time passes (offers run out, queue limits pass, workflows disconnect).
    Wait(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u128..=2, any::<bool>()).prop_map(|(service, high)| Op::Arrive { service, high }),
        2 => any::<usize>().prop_map(Op::Leave),
        1 => (1u128..=3, any::<bool>()).prop_map(|(agent, open)| Op::Connection { agent, open }),
        2 => (1u128..=3).prop_map(Op::Accept),
        2 => (1u128..=3).prop_map(Op::Finish),
        1 => (1u32..=400).prop_map(Op::Wait),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// After every input, each waiting customer has been told its true place: its rank in its
    /// service's queue (as the router orders it and counts it for one chat); only a change is
    /// told, and a change of place also in the item's text.
    #[test]
    fn customers_are_told_their_true_place_after_every_input(ops in proptest::collection::vec(op(), 1..80)) {
        let normal = pinned(201, queue_only(None));
        let high = pinned(202, queue_only(Some(Priority::High)));
        // The text names the counted facts: the place and the free agents of the service.
        let texts = item(
            4,
            json!({"name": "Both", "scope": "service", "texts": [
                {"event": "customer.queued", "text": "You are number $(Queue.Position)"},
                {"event": "customer.position_changed", "text": "Now number $(Queue.Position), $(Service.AvailableUsers) free"},
                {"event": "customer.position_changed", "language": "de", "text": "Jetzt Nummer $(Queue.Position)"}
            ]}),
        );
        let mut core = TenantCore::new();
        core.set_system_messages(vec![texts.clone()]);
        let mut two = linked(&normal, &texts);
        two.service.id = sid(2);
        let _ = core.set_service(linked(&normal, &texts), T0);
        let _ = core.set_service(two, T0);
        // Agent 1 staffs service 1, agent 2 service 2, agent 3 both.
        let members = [(1, 1), (2, 2), (1, 3), (2, 3)]
            .map(|(s, a)| Membership { service_id: sid(s), user_id: uid(a), active: true });
        let _ = core.set_people((1..=3).map(agent).collect(), &members, T0);
        let services = [sid(1), sid(2)];
        let mut now = T0;
        let mut started: Vec<ConversationId> = Vec::new();
        let mut told = BTreeMap::new();
        for op in ops {
            match op {
                Op::Arrive { service, high: h } => {
                    let n = u128::try_from(started.len()).unwrap() + 1;
                    let p = if h { high.clone() } else { normal.clone() };
                    let mut c = conversation(n, service, &p);
                    if n % 3 == 0 {
                        c.customer.language = Some("de".into());
                    }
                    let _ = core.start(c, p, now);
                    started.push(cid(n));
                }
                Op::Leave(i) => {
                    let open: Vec<ConversationId> = started.iter().copied().filter(|&c| core.is_open(c)).collect();
                    if !open.is_empty() {
                        let _ = core.end(open[i % open.len()], EndedBy::Customer, None, now);
                    }
                }
                Op::Connection { agent, open } => {
                    let _ = core.connection(uid(agent), open, now);
                }
                Op::Accept(a) => {
                    if let Some(&c) = started.iter().find(|&&c| core.router().offered_to(c) == Some(uid(a))) {
                        let _ = core.accept(uid(a), c, now).unwrap();
                    }
                }
                Op::Finish(a) => {
                    let held = core.conversations_of(uid(a)).into_iter().find(|c| c.status == ConversationStatus::Connected);
                    if let Some(c) = held.map(|c| c.id) {
                        let _ = core.end(c, EndedBy::Agent, Some(uid(a)), now).unwrap();
                    }
                }
                Op::Wait(secs) => {
                    now += time::Duration::seconds(i64::from(secs));
                    let _ = core.tick(now);
                }
            }
            let out = core.queue_updates();
            let truth = truth(&core, &services);
            for (c, status) in &truth {
                let counted = core.router().position(*c).and_then(|p| u32::try_from(p).ok());
                prop_assert_eq!(counted, Some(status.position), "{:?}", c);
                prop_assert_eq!(core.queue_status(*c), Some(*status), "{:?}", c);
            }
            let text_at = |c: ConversationId, position: u32| {
                let chat = core.conversation(c).unwrap();
                if chat.customer.language.is_some() {
                    return format!("Jetzt Nummer {position}");
                }
                let free = core.router().staffing(chat.service_id.unwrap()).free;
                format!("Now number {position}, {free} free")
            };
            check_pass(&out, &told, &truth, text_at).map_err(TestCaseError::fail)?;
            told = truth;
        }
    }
}

#[test]
fn skills_given_to_two_agents_at_once_send_the_chat_to_the_longest_idle_not_the_first_set_up() {
    use parley_domain::{PolicyLevel, SkillId, SkillRequirement, UserSkill};
    let skill = SkillId::from_uuid(uuid::Uuid::from_u128(77));
    let p = pinned(201, queue_only(None));
    let mut s = setup(1, Some(p.clone()));
    s.service.routing.policy =
        vec![PolicyLevel { after_secs: 0, requires: vec![SkillRequirement { skill_id: skill, min_level: 1 }] }];
    let mut core = TenantCore::new();
    let _ = core.set_service(s, T0);
    let members: Vec<Membership> =
        (1..=2).map(|n| Membership { service_id: sid(1), user_id: uid(n), active: true }).collect();
    let _ = core.set_people(vec![agent(1), agent(2)], &members, T0);
    // Agent 2 has waited since 09:00, agent 1 only since 09:01.
    let _ = core.connection(uid(2), true, T0);
    let _ = core.connection(uid(1), true, T0 + time::Duration::seconds(60));
    let _ = core.start(conversation(1, 1, &p), p, T0 + time::Duration::seconds(61));
    assert_eq!(core.router().offered_to(cid(1)), None, "nobody has the skill yet");
    let both = [uid(1), uid(2)].map(|u| (u, UserSkill { skill_id: skill, level: 3 }));
    let _ = core.set_skills(&both, T0 + time::Duration::seconds(62));
    assert_eq!(core.router().offered_to(cid(1)), Some(uid(2)));
}
