//! Parley's durable paths on a real in-process server (the testkit's, SQLite on disk), driven
//! like the ceilings so the two compare:
//!
//! - [`durable_relay`]: visitors over the real visitor socket, closed-loop: each sends a message
//!   and waits until the committed entry comes back to it through the bus (the same path that
//!   brings it to the agent), as [`crate::ceilings::bare_echo`] waits for its echo (goal R2);
//! - [`log_rows`]: writers appending straight to Parley's group-commit conversation log, each
//!   waiting for its acknowledgement, as [`crate::ceilings::sqlite_rows`] inserts (goal R3).

use crate::stats::{Percentiles, nanos};
use anyhow::{Context, ensure};
use futures_util::{SinkExt, StreamExt};
use parley_domain::{ConversationId, EntryBody, Sender, TenantId};
use parley_store::NewEntry;
use parley_testkit::{TestServer, fixtures};
use serde::Serialize;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite;

/// Closed-loop durable messages.
#[derive(Debug, Clone, Serialize)]
pub struct Relay {
    pub chats: usize,
    pub secs: f64,
    pub messages: u64,
    pub messages_per_sec: f64,
    /// Send until the committed entry is back, in milliseconds.
    pub latency_ms: Percentiles,
}

/// Appends to the conversation log.
#[derive(Debug, Clone, Serialize)]
pub struct LogRows {
    pub writers: usize,
    pub rows: usize,
    pub secs: f64,
    pub rows_per_sec: f64,
    /// Append until acknowledged (committed), in milliseconds.
    pub latency_ms: Percentiles,
    /// Entries per transaction the group commit actually made: the batch size R3's raw ceiling
    /// is measured again at.
    pub mean_batch: f64,
}

/// A tenant with `chats` conversations started through the widget API; their ids and tokens.
///
/// # Errors
/// If a call is refused.
pub async fn chats(server: &TestServer, chats: usize) -> anyhow::Result<(fixtures::Tenant, Vec<(String, String)>)> {
    let t = fixtures::tenant(&server.base, "bench", 1).await?;
    let mut out = Vec::with_capacity(chats);
    for i in 0..chats {
        out.push(t.start_chat(&server.base, &format!("Visitor {i}"), None).await?);
    }
    Ok((t, out))
}

/// Waits for the frame the predicate wants (other frames are skipped).
async fn until<S>(ws: &mut S, want: impl Fn(&serde_json::Value) -> bool) -> anyhow::Result<()>
where
    S: StreamExt<Item = Result<tungstenite::Message, tungstenite::Error>> + Unpin,
{
    while let Some(frame) = ws.next().await {
        if let tungstenite::Message::Text(text) = frame? {
            let v: serde_json::Value = serde_json::from_str(text.as_str())?;
            if want(&v) {
                return Ok(());
            }
        }
    }
    anyhow::bail!("the socket closed")
}

/// Every chat's visitor sends and waits for its committed entry, for `duration`.
///
/// # Errors
/// If a socket cannot connect or closes.
pub async fn durable_relay(
    server: &TestServer,
    tokens: &[(String, String)],
    duration: Duration,
) -> anyhow::Result<Relay> {
    let ws_base = server.ws_base();
    let mut sockets = Vec::with_capacity(tokens.len());
    for (_, token) in tokens {
        let url = format!("{ws_base}/ws/v1/visitor?token={token}&since_seq=0");
        let mut ws = crate::client::connect(&url).await?;
        until(&mut ws, |f| f["type"] == "hello").await?;
        // The socket reads nothing until the tenant engine has told it its queue place; chats
        // started a moment ago may still be in the engine's backlog, and that wait is the
        // start-up's, not the relay's.
        until(&mut ws, |f| f["type"] == "queue").await?;
        sockets.push(ws);
    }
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(sockets.len());
    for (n, mut ws) in sockets.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut i = 0u64;
            while Instant::now() < deadline {
                i += 1;
                let id = format!("b{n}-{i}");
                let frame =
                    serde_json::json!({"type": "send", "client_msg_id": id, "text": "Hello, is anybody there?"});
                let sent = Instant::now();
                ws.send(tungstenite::Message::text(frame.to_string())).await?;
                until(&mut ws, |f| f["type"] == "entry" && f["entry"]["client_msg_id"] == id.as_str()).await?;
                samples.push(nanos(sent.elapsed()));
            }
            let _ = ws.close(None).await;
            anyhow::Ok(samples)
        }));
    }
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await.context("visitor task")??);
    }
    let secs = started.elapsed().as_secs_f64();
    let messages = samples.len() as u64;
    Ok(Relay {
        chats: tokens.len(),
        secs,
        messages,
        messages_per_sec: messages as f64 / secs,
        latency_ms: Percentiles::of(&mut samples, 1e6),
    })
}

/// `writers` tasks append `rows` messages in all to the chats' logs, each waiting for its
/// acknowledgement before the next.
///
/// # Errors
/// If an append fails.
pub async fn log_rows(
    server: &TestServer,
    tenant: TenantId,
    conversations: &[ConversationId],
    writers: usize,
    rows: usize,
) -> anyhow::Result<LogRows> {
    ensure!(!conversations.is_empty() && writers > 0, "log_rows needs conversations and writers");
    let before = server.state.log.stats();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(writers);
    for w in 0..writers {
        let state = server.state.clone();
        let conversation = conversations[w % conversations.len()];
        // `rows` in all: the first `rows % writers` writers take one more.
        let per_writer = rows / writers + usize::from(w < rows % writers);
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::with_capacity(per_writer);
            for i in 0..per_writer {
                let entry = NewEntry {
                    tenant_id: tenant,
                    conversation_id: conversation,
                    client_msg_id: Some(format!("w{w}-{i}")),
                    body: EntryBody::Message {
                        sender: Sender::Customer { name: "Ann".into() },
                        text: "Hello, is anybody there?".into(),
                        attachment: None,
                    },
                    created_at: state.clock.now(),
                };
                let t = Instant::now();
                state.log.append(entry).await?;
                samples.push(nanos(t.elapsed()));
            }
            anyhow::Ok(samples)
        }));
    }
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await.context("writer task")??);
    }
    let secs = started.elapsed().as_secs_f64();
    let written = samples.len();
    let after = server.state.log.stats();
    let batches = after.batches.saturating_sub(before.batches).max(1);
    let mean_batch = after.entries.saturating_sub(before.entries) as f64 / batches as f64;
    Ok(LogRows {
        mean_batch,
        writers,
        rows: written,
        secs,
        rows_per_sec: written as f64 / secs,
        latency_ms: Percentiles::of(&mut samples, 1e6),
    })
}
