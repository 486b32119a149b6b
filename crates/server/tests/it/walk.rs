//! The walking skeleton's story, end to end over HTTP and WebSockets, on each store.

use crate::{postgres, seqs};
use parley_testkit::{Db, TestServer, Ws, fixtures};
use serde_json::{Value, json};

async fn entry(ws: &mut Ws, what: &str, pred: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
    ws.until(what, |f| f["type"] == "entry" && pred(&f["entry"])).await
}

async fn walk(db: Db) -> anyhow::Result<()> {
    let server = TestServer::spawn(db).await;
    let (base, ws_base) = (server.base.clone(), server.ws_base());
    let t = fixtures::tenant(&base, "acme", 2).await?;

    // Agent 2 becomes available a minute before agent 1, so agent 2 is the longest idle.
    let (mut agent2, _) = t.agent_online(&base, &ws_base, 1).await?;
    server.clock.advance(time::Duration::minutes(1));
    let (mut agent1, _) = t.agent_online(&base, &ws_base, 0).await?;

    let (conv, token) = t.start_chat(&base, "Visitor Vic", Some("Hello, I need help")).await?;
    let mut visitor = fixtures::visitor(&ws_base, &token, 0).await?;
    let hello = visitor.next().await?;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["conversation_id"], conv);
    let first = entry(&mut visitor, "first message", |e| e["seq"] == 1).await?;
    assert_eq!(
        (first["entry"]["kind"].as_str(), first["entry"]["text"].as_str()),
        (Some("message"), Some("Hello, I need help"))
    );
    entry(&mut visitor, "welcome", |e| e["text"] == fixtures::WELCOME).await?;
    entry(&mut visitor, "queued", |e| e["event"]["type"] == "queued").await?;

    let offer = agent2.until("offer", |f| f["type"] == "offer").await?;
    assert_eq!(offer["offer"]["conversation_id"], conv);
    assert_eq!(offer["offer"]["customer"]["display_name"], "Visitor Vic");
    assert_eq!(offer["offer"]["first_message"], "Hello, I need help");
    // Agent 1 got no offer: the next thing on its socket is the answer to a presence change.
    agent1.send(&json!({"type": "presence", "presence": "available"})).await?;
    assert_eq!(agent1.next().await?["type"], "presence");

    agent2.send(&json!({"type": "accept", "conversation_id": conv})).await?;
    let chat = agent2.until("chat", |f| f["type"] == "chat").await?;
    assert_eq!(chat["chat"]["status"], "connected");
    let connected = entry(&mut visitor, "connected", |e| e["event"]["type"] == "connected").await?;
    assert_eq!(connected["entry"]["event"]["agent_name"], "Agent 2");

    // Visitor → agent, three messages, acknowledged in order with increasing seq.
    let mut acked = Vec::new();
    for (i, text) in ["one", "two", "three"].iter().enumerate() {
        visitor.send(&json!({"type": "send", "client_msg_id": format!("v-{i}"), "text": text})).await?;
        let ack = visitor.until("ack", |f| f["type"] == "ack").await?;
        assert_eq!(ack["client_msg_id"], format!("v-{i}"));
        assert_eq!(ack["duplicate"], false);
        acked.push(ack["seq"].as_i64().unwrap_or_default());
    }
    assert!(acked.windows(2).all(|w| w[1] == w[0] + 1), "acks {acked:?}");
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let f = agent2
            .until("visitor message", |f| f["type"] == "entry" && f["entry"]["sender"]["role"] == "customer")
            .await?;
        if f["entry"]["seq"].as_i64() >= acked.first().copied() {
            seen.push(f);
        }
    }
    assert_eq!(seqs(&seen), acked);
    assert_eq!(
        seen.iter().map(|f| f["entry"]["text"].as_str().unwrap_or_default()).collect::<Vec<_>>(),
        ["one", "two", "three"]
    );

    // Agent → visitor.
    for (i, text) in ["Hi Vic", "How can I help?"].iter().enumerate() {
        agent2
            .send(&json!({"type": "send", "conversation_id": conv, "client_msg_id": format!("a-{i}"), "text": text}))
            .await?;
        let ack = agent2.until("agent ack", |f| f["type"] == "ack").await?;
        assert_eq!(ack["client_msg_id"], format!("a-{i}"));
        let got = entry(&mut visitor, "agent message", |e| e["sender"]["role"] == "agent").await?;
        assert_eq!(got["entry"]["text"], *text);
        assert_eq!(got["entry"]["seq"], ack["seq"]);
        assert_eq!(got["entry"]["sender"]["name"], "Agent 2");
    }

    // The agent ends; both sides see it.
    agent2.send(&json!({"type": "end", "conversation_id": conv})).await?;
    let ended_v = entry(&mut visitor, "ended", |e| e["event"]["type"] == "ended").await?;
    assert_eq!(ended_v["entry"]["event"]["by"], "agent");
    let ended_a = agent2.until("ended", |f| f["type"] == "entry" && f["entry"]["event"]["type"] == "ended").await?;
    assert_eq!(ended_a["entry"]["seq"], ended_v["entry"]["seq"]);

    // The durable log is gapless and matches what was streamed.
    let log = t.admin.get(&format!("/api/v1/conversations/{conv}/log")).await?;
    let all: Vec<i64> = log.body["entries"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["seq"].as_i64()).collect())
        .unwrap_or_default();
    let last = ended_v["entry"]["seq"].as_i64().unwrap_or_default();
    assert_eq!(all, (1..=last).collect::<Vec<_>>());
    let state = t.admin.get(&format!("/api/v1/conversations/{conv}")).await?;
    assert_eq!(state.body["status"], "ended");
    assert_eq!(state.body["agent_id"], t.agents[1].id);

    // A message after the end is refused and writes nothing.
    visitor.send(&json!({"type": "send", "client_msg_id": "late", "text": "still there?"})).await?;
    let err = visitor.until("error", |f| f["type"] == "error").await?;
    assert_eq!(err["code"], "conversation_ended");
    let after = t.admin.get(&format!("/api/v1/conversations/{conv}/log")).await?;
    assert_eq!(after.body["entries"].as_array().map(Vec::len), Some(all.len()));
    server.shutdown().await
}

#[tokio::test]
async fn chat_walks_from_widget_to_longest_idle_agent_and_back_on_sqlite() {
    walk(Db::Sqlite).await.unwrap();
}

#[tokio::test]
async fn chat_walks_from_widget_to_longest_idle_agent_and_back_on_postgres() {
    if let Some(db) = postgres() {
        walk(db).await.unwrap();
    }
}

#[tokio::test]
async fn decline_moves_the_offer_to_the_other_agent() {
    let server = TestServer::sqlite().await;
    let (base, ws_base) = (server.base.clone(), server.ws_base());
    let t = fixtures::tenant(&base, "decliners", 2).await.unwrap();
    let (mut a1, _) = t.agent_online(&base, &ws_base, 0).await.unwrap();
    server.clock.advance(time::Duration::seconds(5));
    let (mut a2, _) = t.agent_online(&base, &ws_base, 1).await.unwrap();
    let (conv, _) = t.start_chat(&base, "Dee", None).await.unwrap();
    a1.until("offer", |f| f["type"] == "offer" && f["offer"]["conversation_id"] == conv).await.unwrap();
    a1.send(&json!({"type": "decline", "conversation_id": conv})).await.unwrap();
    a2.until("offer", |f| f["type"] == "offer" && f["offer"]["conversation_id"] == conv).await.unwrap();
    // A stale accept by the decliner is refused.
    a1.send(&json!({"type": "accept", "conversation_id": conv})).await.unwrap();
    let err = a1.until("error", |f| f["type"] == "error").await.unwrap();
    assert_eq!(err["code"], "offer_not_found");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn reconnecting_agent_gets_its_chats_and_their_history_again() {
    let server = TestServer::sqlite().await;
    let (base, ws_base) = (server.base.clone(), server.ws_base());
    let t = fixtures::tenant(&base, "reconnect", 1).await.unwrap();
    let (mut agent, _) = t.agent_online(&base, &ws_base, 0).await.unwrap();
    let (conv, _) = t.start_chat(&base, "Rita", Some("first")).await.unwrap();
    agent.until("offer", |f| f["type"] == "offer").await.unwrap();
    agent.send(&json!({"type": "accept", "conversation_id": conv})).await.unwrap();
    agent
        .until("connected entry", |f| f["type"] == "entry" && f["entry"]["event"]["type"] == "connected")
        .await
        .unwrap();
    agent.close().await;
    let cookie = t.login(&base, 0).await.unwrap();
    let mut again = Ws::connect(&format!("{ws_base}/ws/v1/agent"), Some(&cookie)).await.unwrap();
    let hello = again.next().await.unwrap();
    assert_eq!(hello["chats"][0]["conversation_id"], conv);
    let mut got = Vec::new();
    while got.len() < 5 {
        got.push(again.until("replay", |f| f["type"] == "entry").await.unwrap());
    }
    assert_eq!(seqs(&got), [1, 2, 3, 4, 5]);
    server.shutdown().await.unwrap();
}
