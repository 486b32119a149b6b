//! kill -9 after acknowledgements: on restart, every acknowledged message is there exactly once,
//! a resuming client gets exactly what it had not seen, and resending is idempotent.

use parley_testkit::{Api, ServerProcess, fixtures};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const MESSAGES: usize = 60;

#[tokio::test]
async fn acknowledged_messages_survive_kill_9_and_resume_exactly_once() {
    let bin = Path::new(env!("CARGO_BIN_EXE_parley"));
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(bin, dir.path()).await.unwrap();
    let t = fixtures::tenant(&server.base, "durable", 1).await.unwrap();
    let (conv, token) = t.start_chat(&server.base, "Kim", None).await.unwrap();
    let mut v = fixtures::visitor(&server.ws_base(), &token, 0).await.unwrap();

    // Send everything at once (the writer batches them), then collect acks and whatever entries
    // arrive in between; stop reading entries early so the resume has work to do.
    for i in 0..MESSAGES {
        v.send(&json!({"type": "send", "client_msg_id": format!("m-{i}"), "text": format!("message {i}")}))
            .await
            .unwrap();
    }
    let mut acks: BTreeMap<String, i64> = BTreeMap::new();
    let mut seen: BTreeMap<i64, Value> = BTreeMap::new();
    while acks.len() < MESSAGES {
        let f = v.next().await.unwrap();
        match f["type"].as_str() {
            Some("ack") => {
                acks.insert(f["client_msg_id"].as_str().unwrap().to_owned(), f["seq"].as_i64().unwrap());
            }
            Some("entry") if seen.len() < 20 => {
                let seq = f["entry"]["seq"].as_i64().unwrap();
                assert!(seen.insert(seq, f["entry"].clone()).is_none(), "entry {seq} delivered twice");
            }
            _ => {}
        }
    }
    let cursor = *seen.keys().last().unwrap();
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        (1..=cursor).collect::<Vec<_>>(),
        "live entries arrive in order"
    );
    server.kill9().await.unwrap();

    let server = ServerProcess::start(bin, dir.path()).await.unwrap();
    let mut v = fixtures::visitor(&server.ws_base(), &token, cursor).await.unwrap();
    let hello = v.next().await.unwrap();
    let last = hello["last_seq"].as_i64().unwrap();
    let mut resumed = Vec::new();
    while resumed.last().copied().unwrap_or(cursor) < last {
        let f = v.until("replayed entry", |f| f["type"] == "entry").await.unwrap();
        let seq = f["entry"]["seq"].as_i64().unwrap();
        resumed.push(seq);
        seen.insert(seq, f["entry"].clone());
    }
    assert_eq!(resumed, ((cursor + 1)..=last).collect::<Vec<_>>(), "resume sends exactly what was not seen, in order");
    for (id, seq) in &acks {
        let e = &seen[seq];
        assert_eq!(e["client_msg_id"].as_str(), Some(id.as_str()), "acked {id} at {seq}");
        assert_eq!(e["text"], format!("message {}", &id[2..]));
    }
    let texts: BTreeSet<_> =
        seen.values().filter(|e| e["sender"]["role"] == "customer").filter_map(|e| e["text"].as_str()).collect();
    assert_eq!(texts.len(), MESSAGES, "no customer message stored twice");

    // Resending after the restart is idempotent.
    v.send(&json!({"type": "send", "client_msg_id": "m-7", "text": "message 7"})).await.unwrap();
    let ack = v.until("dup ack", |f| f["type"] == "ack").await.unwrap();
    assert_eq!((ack["seq"].as_i64(), ack["duplicate"].as_bool()), (Some(acks["m-7"]), Some(true)));
    let admin = Api::new(&server.base).bearer(&t.api_key);
    let log = admin.get(&format!("/api/v1/conversations/{conv}/log")).await.unwrap();
    assert_eq!(log.body["entries"].as_array().unwrap().len() as i64, last);

    // The engine rebuilt from the store: the queued chat is still offered to an agent.
    let base = server.base.clone();
    let (mut agent, hello) = t.agent_online(&base, &server.ws_base(), 0).await.unwrap();
    let offered = hello["offers"].as_array().is_some_and(|o| o.iter().any(|x| x["conversation_id"] == conv));
    if !offered {
        agent
            .until("offer after restart", |f| f["type"] == "offer" && f["offer"]["conversation_id"] == conv)
            .await
            .unwrap();
    }
    server.terminate().await.unwrap();
}
