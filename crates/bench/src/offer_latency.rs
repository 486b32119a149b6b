//! The `offer-latency` scenario: new chat → offer, end to end on a real in-process server.
//!
//! The testkit's server (port 0, a temp SQLite store, or a fresh PostgreSQL database; its
//! manual clock does not matter here because offers are made at once) with the fixture tenant
//! and one agent signed in on the workspace socket. Chats run one after the other: the widget's
//! `POST /api/v1/widget/conversations` is sent, and the time until the agent's socket delivers
//! the `offer` frame is recorded; the agent then accepts and ends the chat, and the next one
//! starts once the agent has seen it ended.

use crate::report::RunInfo;
use crate::stats::{Percentiles, nanos};
use anyhow::{Context, ensure};
use parley_testkit::fixtures::{self, Tenant};
use parley_testkit::{Api, Db, TestServer, Ws};
use serde::Serialize;
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// The scenario's parameters.
#[derive(Debug, Clone, clap::Args, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Chats measured, one after the other.
    #[arg(long, default_value_t = 200)]
    pub chats: u32,
    /// Chats run first and not measured (cold caches, first connections).
    #[arg(long, default_value_t = 5)]
    pub warmup: u32,
    /// Base URL of a PostgreSQL server to run on (a fresh database is created and dropped);
    /// SQLite when unset.
    #[arg(long)]
    pub postgres: Option<String>,
}

/// What came out of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub run: RunInfo,
    pub params: Params,
    /// `sqlite` or `postgres`.
    pub store: &'static str,
    /// Widget POST sent → agent socket received the `offer` frame, in milliseconds.
    pub offer_ms: Percentiles,
    /// Widget POST sent → its `201` answer arrived, in milliseconds.
    pub created_ms: Percentiles,
    /// Agent's `accept` sent → the `chat` frame arrived, in milliseconds.
    pub accept_ms: Percentiles,
    /// Agent's `end` sent → the `ended` entry arrived on the agent's socket, in milliseconds.
    pub end_ms: Percentiles,
    /// Wall time of the measured chats.
    pub wall_secs: f64,
}

/// One chat's timings.
#[derive(Debug, Clone, Copy)]
struct Timings {
    offer: Duration,
    created: Duration,
    accept: Duration,
    end: Duration,
}

/// Runs the scenario on a fresh server and shuts it down.
///
/// # Errors
/// The server, an API call or a socket does not answer as expected.
pub async fn run(params: &Params) -> anyhow::Result<Report> {
    let run = RunInfo::now();
    let (db, store) = match &params.postgres {
        Some(base) => (Db::Postgres(base.clone()), "postgres"),
        None => (Db::Sqlite, "sqlite"),
    };
    let server = TestServer::spawn(db).await;
    let measured = measure(&server, params).await;
    server.shutdown().await?;
    let (timings, wall) = measured?;
    let ms = |f: fn(&Timings) -> Duration| {
        let mut v: Vec<u64> = timings.iter().map(|t| nanos(f(t))).collect();
        Percentiles::of(&mut v, 1e6)
    };
    Ok(Report {
        scenario: "offer-latency",
        run,
        params: params.clone(),
        store,
        offer_ms: ms(|t| t.offer),
        created_ms: ms(|t| t.created),
        accept_ms: ms(|t| t.accept),
        end_ms: ms(|t| t.end),
        wall_secs: wall.as_secs_f64(),
    })
}

/// The fixture tenant with one agent online, then the warm-up and measured chats.
async fn measure(server: &TestServer, params: &Params) -> anyhow::Result<(Vec<Timings>, Duration)> {
    let (base, ws_base) = (server.base.clone(), server.ws_base());
    let tenant = fixtures::tenant(&base, "bench", 1).await?;
    let (mut agent, _) = tenant.agent_online(&base, &ws_base, 0).await?;
    // One client for every widget request, as a browser keeps its connection.
    let widget = Api::new(&base);
    for n in 0..params.warmup {
        one_chat(&tenant, &widget, &mut agent, n).await?;
    }
    let started = Instant::now();
    let mut timings = Vec::new();
    for n in 0..params.chats {
        timings.push(one_chat(&tenant, &widget, &mut agent, params.warmup + n).await?);
    }
    Ok((timings, started.elapsed()))
}

/// Starts a chat, waits for its offer, accepts it and ends it.
async fn one_chat(tenant: &Tenant, widget: &Api, agent: &mut Ws, n: u32) -> anyhow::Result<Timings> {
    let form = tenant.form(&format!("Visitor {n}"), Some("Hello, I need help"));
    let sent = Instant::now();
    // Both at once: the offer may reach the agent before the POST's answer reaches the widget.
    let (created, offered) = tokio::join!(create(widget, &form, sent), next_offer(agent, sent));
    let (conversation, created) = created?;
    let (offered, offer) = offered?;
    ensure!(offered == conversation, "offer for {offered}, expected {conversation}");
    let (accept, end) = accept_and_end(agent, &conversation).await?;
    Ok(Timings { offer, created, accept, end })
}

/// The widget's start request; its conversation id and the time its answer took.
async fn create(widget: &Api, form: &Value, sent: Instant) -> anyhow::Result<(String, Duration)> {
    let r = widget.post("/api/v1/widget/conversations", form).await?;
    let took = sent.elapsed();
    ensure!(r.status == 201, "start chat: {} {}", r.status, r.body);
    Ok((r.body["conversation_id"].as_str().context("conversation_id")?.to_owned(), took))
}

/// The next `offer` frame's conversation id and when it arrived.
async fn next_offer(agent: &mut Ws, sent: Instant) -> anyhow::Result<(String, Duration)> {
    let frame = agent.until("offer", |f| f["type"] == "offer").await?;
    let took = sent.elapsed();
    Ok((frame["offer"]["conversation_id"].as_str().context("offer's conversation_id")?.to_owned(), took))
}

/// Accepts, then ends the chat and waits until the agent's socket shows it ended, so the next
/// chat finds the agent free; returns the time until the `chat` frame and until the end.
async fn accept_and_end(agent: &mut Ws, conversation: &str) -> anyhow::Result<(Duration, Duration)> {
    let sent = Instant::now();
    agent.send(&json!({"type": "accept", "conversation_id": conversation})).await?;
    agent.until("chat", |f| f["type"] == "chat" && f["chat"]["conversation_id"] == conversation).await?;
    let accept = sent.elapsed();
    let sent = Instant::now();
    agent.send(&json!({"type": "end", "conversation_id": conversation})).await?;
    agent
        .until("ended", |f| {
            f["type"] == "entry" && f["conversation_id"] == conversation && f["entry"]["event"]["type"] == "ended"
        })
        .await?;
    Ok((accept, sent.elapsed()))
}

/// The report as a Markdown table.
#[must_use]
pub fn markdown(r: &Report) -> String {
    let mut s = String::from("# New chat → offer latency (in-process server)\n\n");
    s.push_str(&r.run.markdown());
    let _ = writeln!(
        s,
        "\n{} chats measured one after the other (after {} warm-up chats) on {}, one agent; {:.2} s.\n",
        r.params.chats, r.params.warmup, r.store, r.wall_secs
    );
    s.push_str("| ms | p50 | p95 | p99 | max | mean |\n| --- | --- | --- | --- | --- | --- |\n");
    for (name, p) in [
        ("**widget POST → agent gets `offer`**", &r.offer_ms),
        ("widget POST → `201` answer", &r.created_ms),
        ("agent `accept` → `chat` frame", &r.accept_ms),
        ("agent `end` → `ended` entry", &r.end_ms),
    ] {
        let _ = writeln!(s, "| {name} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |", p.p50, p.p95, p.p99, p.max, p.mean);
    }
    s
}
