//! Loads on a running `parley` process whose agents hold every chat, as in production: visitors
//! on their sockets, agents in their workspace sockets, and the time it takes a customer's words
//! to reach the agent.
//!
//! - ephemeral relay (goal R1): each visitor sends a typing signal and waits until its agent's
//!   socket has it, closed-loop (the server runs with `typing_interval_ms = 0` so that no signal
//!   is dropped by the interval meant for people);
//! - durable relay at a fixed rate (goals R5, A2): visitors send messages open-loop, each timed
//!   from its intended send time (no coordinated omission) until the agent's socket receives the
//!   committed entry; then every message is checked to have arrived once, in order;
//! - slow consumers (goal A7): the same with a tenth of the agents reading at a tenth of their
//!   share of the rate; the server's memory stays bounded and the other agents keep their times;
//! - the same open-loop rate against a bare echo process, for R5's ceiling.
//!
//! Server CPU seconds and peak RSS of each phase are read from `/proc`.

use crate::client::{self, Ws};
use crate::report::{self, Row};
use crate::stats::{Percentiles, nanos};
use anyhow::{Context, bail, ensure};
use clap::Args;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use parley_testkit::{ServerProcess, fixtures};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// Every parameter of the load scenarios.
#[derive(Debug, Clone, Args, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The `parley` binary (`cargo build --release -p parley-server`).
    #[serde(default, skip_deserializing)]
    #[arg(long)]
    pub parley_bin: PathBuf,
    /// Chats, each with its visitor socket open.
    #[arg(long, default_value_t = 1000)]
    pub chats: usize,
    /// Agents sharing the chats evenly (each takes up to 20).
    #[arg(long, default_value_t = 100)]
    pub agents: usize,
    /// Messages per second from all visitors together, open-loop.
    #[arg(long, default_value_t = 2000.0)]
    pub rate: f64,
    /// Seconds each phase sends for.
    #[arg(long, default_value_t = 5.0)]
    pub secs: f64,
    /// Share of agents that read slowly in the slow-consumer phase.
    #[arg(long, default_value_t = 0.1)]
    pub slow_share: f64,
    /// How fast those agents read, as a share of their part of the rate.
    #[arg(long, default_value_t = 0.1)]
    pub slow_speed: f64,
    /// Longest wait, after sending stops, for the last messages to arrive.
    #[arg(long, default_value_t = 20.0)]
    pub drain_secs: f64,
}

/// What the server process spent in a phase.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ServerCost {
    pub cpu_secs: f64,
    pub peak_rss_mib: f64,
}

/// Closed-loop typing signals.
#[derive(Debug, Clone, Serialize)]
pub struct Ephemeral {
    pub signals: u64,
    pub signals_per_sec: f64,
    pub latency_ms: Percentiles,
    pub server: ServerCost,
}

/// One open-loop phase of durable messages.
#[derive(Debug, Clone, Serialize)]
pub struct Durable {
    pub sent: u64,
    /// Acknowledged to their visitor (committed).
    pub acked: u64,
    /// Received by the agents (every agent, slow ones included, once drained).
    pub received: u64,
    /// Sent but never received by the agent (after the drain).
    pub lost: u64,
    /// Received more than once by the agent.
    pub duplicates: u64,
    /// Received by an agent before a message its visitor sent earlier.
    pub out_of_order: u64,
    pub achieved_rate: f64,
    /// Intended send time until the agent's socket had the entry, agents reading at full speed.
    pub latency_ms: Percentiles,
    /// The same for the slow agents (slow-consumer phase only).
    pub slow_latency_ms: Option<Percentiles>,
    pub server: ServerCost,
}

/// The bare echo process with as many connections: closed-loop (R1's ceiling) and open-loop at
/// the same rate (with the fsync probe, R5's).
#[derive(Debug, Clone, Serialize)]
pub struct EchoAtRate {
    pub closed_loop: crate::ceilings::Echo,
    pub sent: u64,
    pub received: u64,
    pub latency_ms: Percentiles,
    pub fsync: crate::ceilings::Fsync,
}

/// The whole report of `load`.
#[derive(Debug, Clone, Serialize)]
pub struct Load {
    pub params: Params,
    pub setup_secs: f64,
    pub ephemeral: Ephemeral,
    pub durable: Durable,
    pub slow: Durable,
    pub echo: EchoAtRate,
    pub rows: Vec<Row>,
}

/// Phases that send durable messages are numbered below this (1: durable, 2: slow consumers).
const PHASES: usize = 3;

/// Frames the agents' readers saw, shared with the phases.
#[derive(Default)]
struct Seen {
    /// A typing signal per conversation, for the closed loop.
    typing: Mutex<HashMap<String, Arc<Notify>>>,
    /// Entries with a load message's key: (conversation, phase, visitor index, latency ns, slow).
    entries: Mutex<Vec<Received>>,
    /// How many of `entries` each phase has (indexed by phase), so the drain can watch the count
    /// without walking every entry while late messages are still being timed.
    per_phase: [AtomicU64; PHASES],
    /// Chats accepted so far.
    accepted: Mutex<Vec<String>>,
    accepted_signal: Notify,
}

#[derive(Debug, Clone)]
struct Received {
    conversation: String,
    phase: u8,
    index: u64,
    latency_ns: u64,
    slow: bool,
}

/// One agent's socket: frames to send, and how its reader reads.
struct Agent {
    out: mpsc::UnboundedSender<Message>,
    pace: Arc<Pace>,
    task: JoinHandle<()>,
}

/// How an agent's reader reads: the pause after each frame, and whether the agent is one of the
/// slow consumers (which stays so while it catches up at full speed after the phase).
#[derive(Default)]
struct Pace {
    pause_ns: AtomicU64,
    slow: AtomicBool,
}

/// One chat's visitor socket, split.
struct Visitor {
    conversation: String,
    sink: SplitSink<Ws, Message>,
    stream: SplitStream<Ws>,
}

/// Key of a load message: phase, intended send time (ns after the phase's start), index.
fn key(phase: u8, intended_ns: u64, index: u64) -> String {
    format!("p{phase}-{intended_ns}-{index}")
}

fn parse_key(key: &str) -> Option<(u8, u64, u64)> {
    let mut parts = key.strip_prefix('p')?.split('-');
    let phase = parts.next()?.parse().ok()?;
    let intended = parts.next()?.parse().ok()?;
    let index = parts.next()?.parse().ok()?;
    Some((phase, intended, index))
}

/// The time every phase's intended send times count from.
struct Clock {
    origin: Instant,
}

impl Clock {
    fn since(&self) -> u64 {
        nanos(self.origin.elapsed())
    }
}

fn text(v: &Value) -> Message {
    Message::text(v.to_string())
}

/// Reads an agent's socket: accepts every offer, reports accepted chats, typing signals and
/// entries of load messages; pauses after each frame as long as `pace` says.
async fn agent_reader(
    mut stream: SplitStream<Ws>,
    out: mpsc::UnboundedSender<Message>,
    pace: Arc<Pace>,
    seen: Arc<Seen>,
    clock: Arc<Clock>,
) {
    while let Some(Ok(frame)) = stream.next().await {
        let Message::Text(t) = frame else { continue };
        let Ok(v) = serde_json::from_str::<Value>(t.as_str()) else { continue };
        let pause = pace.pause_ns.load(Ordering::Relaxed);
        match v["type"].as_str() {
            Some("offer") => {
                let id = v["offer"]["conversation_id"].clone();
                let _ = out.send(text(&json!({"type": "accept", "conversation_id": id})));
            }
            Some("chat") => {
                if let Some(id) = v["chat"]["conversation_id"].as_str() {
                    seen.accepted.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(id.to_owned());
                    seen.accepted_signal.notify_one();
                }
            }
            Some("typing") => {
                let id = v["conversation_id"].as_str().unwrap_or_default();
                let waiter = seen.typing.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(id).cloned();
                if let Some(n) = waiter {
                    n.notify_one();
                }
            }
            Some("entry") => {
                if let Some((phase, intended, index)) = v["entry"]["client_msg_id"].as_str().and_then(parse_key) {
                    let r = Received {
                        conversation: v["conversation_id"].as_str().unwrap_or_default().to_owned(),
                        phase,
                        index,
                        latency_ns: clock.since().saturating_sub(intended),
                        slow: pace.slow.load(Ordering::Relaxed),
                    };
                    if let Some(n) = seen.per_phase.get(usize::from(phase)) {
                        n.fetch_add(1, Ordering::Relaxed);
                    }
                    seen.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(r);
                }
            }
            _ => {}
        }
        if pause > 0 {
            tokio::time::sleep(Duration::from_nanos(pause)).await;
        }
    }
}

async fn agent_writer(mut sink: SplitSink<Ws, Message>, mut rx: mpsc::UnboundedReceiver<Message>) {
    while let Some(m) = rx.recv().await {
        if sink.send(m).await.is_err() {
            return;
        }
    }
}

/// Signs agent `n` in, opens its socket and makes it available.
async fn agent_online(
    server: &ServerProcess,
    t: &fixtures::Tenant,
    n: usize,
    seen: &Arc<Seen>,
    clock: &Arc<Clock>,
) -> anyhow::Result<Agent> {
    let cookie = t.login(&server.base, n).await?;
    let ws = client::connect_with_cookie(&format!("{}/ws/v1/agent", server.ws_base()), Some(&cookie)).await?;
    let (mut sink, stream) = ws.split();
    sink.send(text(&json!({"type": "presence", "presence": "available"}))).await?;
    let (out, rx) = mpsc::unbounded_channel();
    let pace = Arc::new(Pace::default());
    tokio::spawn(agent_writer(sink, rx));
    let task = tokio::spawn(agent_reader(stream, out.clone(), Arc::clone(&pace), Arc::clone(seen), Arc::clone(clock)));
    Ok(Agent { out, pace, task })
}

/// Concurrent tasks one service takes (the specification's cap).
const SERVICE_TASKS: usize = 50;

/// Starts `chats` chats, spread over as many services as their task cap needs, and waits until
/// the agents have accepted them all.
async fn staffed_chats(
    server: &ServerProcess,
    t: &fixtures::Tenant,
    chats: usize,
    seen: &Seen,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut services = vec![t.clone()];
    for n in 1..chats.div_ceil(SERVICE_TASKS) {
        services.push(t.another_service(&format!("Support {n}")).await?);
    }
    let mut started = Vec::with_capacity(chats);
    for i in 0..chats {
        let service = &services[i % services.len()];
        started.push(service.start_chat(&server.base, &format!("Visitor {i}"), None).await?);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = seen.accepted.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len();
        if n >= chats {
            return Ok(started);
        }
        ensure!(Instant::now() < deadline, "only {n} of {chats} chats were accepted within a minute");
        let _ = tokio::time::timeout(Duration::from_secs(1), seen.accepted_signal.notified()).await;
    }
}

/// Opens every chat's visitor socket and reads it up to `hello`.
async fn visitors(server: &ServerProcess, started: &[(String, String)]) -> anyhow::Result<Vec<Visitor>> {
    let mut out = Vec::with_capacity(started.len());
    for (conversation, token) in started {
        let url = format!("{}/ws/v1/visitor?token={token}&since_seq=0", server.ws_base());
        let (sink, mut stream) = client::connect(&url).await?.split();
        loop {
            match stream.next().await {
                Some(Ok(Message::Text(t))) if t.as_str().contains("\"hello\"") => break,
                Some(Ok(_)) => {}
                _ => bail!("visitor socket closed before hello"),
            }
        }
        out.push(Visitor { conversation: conversation.clone(), sink, stream });
    }
    Ok(out)
}

/// Samples the process's RSS every 50 ms until stopped; returns the peak in MiB.
fn rss_sampler(pid: u32) -> (Arc<Notify>, JoinHandle<f64>) {
    let stop = Arc::new(Notify::new());
    let stopped = Arc::clone(&stop);
    let task = tokio::spawn(async move {
        let mut peak = 0.0f64;
        loop {
            peak = peak.max(crate::process::rss_kib(pid).unwrap_or(0.0) / 1024.0);
            tokio::select! {
                () = stopped.notified() => return peak,
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    });
    (stop, task)
}

/// Measures what the server spends while `work` runs.
async fn costed<T>(
    pid: u32,
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<(T, ServerCost)> {
    let ticks = crate::process::clock_ticks().await;
    let cpu_secs = |pid| crate::process::cpu_ticks(pid).map(|t| t as f64 / ticks);
    let cpu = cpu_secs(pid)?;
    let (stop, sampler) = rss_sampler(pid);
    let out = work.await;
    stop.notify_one();
    let peak_rss_mib = sampler.await.context("rss sampler")?;
    let cost = ServerCost { cpu_secs: cpu_secs(pid)? - cpu, peak_rss_mib };
    Ok((out?, cost))
}

/// Closed-loop typing: each visitor signals, waits for its agent to have it, and again.
async fn ephemeral(visitors: &mut [Visitor], seen: &Arc<Seen>, secs: f64) -> anyhow::Result<(u64, Vec<u64>)> {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::with_capacity(visitors.len());
    for v in visitors.iter_mut() {
        let notify = Arc::new(Notify::new());
        seen.typing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(v.conversation.clone(), Arc::clone(&notify));
        let sink = &mut v.sink;
        tasks.push(async move {
            let mut samples = Vec::new();
            let frame = text(&json!({"type": "typing"}));
            while Instant::now() < deadline {
                let t = Instant::now();
                sink.send(frame.clone()).await?;
                if tokio::time::timeout(Duration::from_secs(5), notify.notified()).await.is_err() {
                    bail!("a typing signal did not reach the agent within 5 s");
                }
                samples.push(nanos(t.elapsed()));
            }
            anyhow::Ok(samples)
        });
    }
    let started = Instant::now();
    let results = futures_util::future::join_all(tasks).await;
    let elapsed = started.elapsed().as_secs_f64();
    let mut samples = Vec::new();
    for r in results {
        samples.extend(r?);
    }
    let count = samples.len() as u64;
    Ok(((count as f64 / elapsed) as u64, samples))
}

/// Sends `rate` messages/s in all over `sinks` for `secs`, open-loop; returns how many each sent.
async fn open_loop<S>(
    sinks: Vec<&mut S>,
    phase: u8,
    rate: f64,
    secs: f64,
    clock: &Clock,
    frame: impl Fn(String) -> Message + Copy,
) -> anyhow::Result<Vec<u64>>
where
    S: futures_util::Sink<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
{
    let n = sinks.len().max(1);
    // Each socket sends every `period`, the sockets' phases spread evenly over it.
    let period = Duration::from_secs_f64(n as f64 / rate);
    let start = clock.since() + 10_000_000;
    let end = start + nanos(Duration::from_secs_f64(secs));
    let mut tasks = Vec::with_capacity(n);
    for (k, sink) in sinks.into_iter().enumerate() {
        let offset = nanos(period) * k as u64 / n as u64;
        tasks.push(async move {
            let mut index = 0u64;
            loop {
                let intended = start + offset + index * nanos(period);
                if intended >= end {
                    return anyhow::Ok(index);
                }
                let wait = intended.saturating_sub(clock.since());
                if wait > 0 {
                    tokio::time::sleep(Duration::from_nanos(wait)).await;
                }
                sink.send(frame(key(phase, intended, index))).await?;
                index += 1;
            }
        });
    }
    futures_util::future::join_all(tasks).await.into_iter().collect()
}

/// Reads a visitor's socket during a durable phase, counting acknowledgements, until it closes
/// (or the phase drops it).
async fn count_acks(stream: &mut SplitStream<Ws>, acked: &AtomicU64) {
    while let Some(Ok(frame)) = stream.next().await {
        if let Message::Text(t) = frame
            && t.as_str().contains("\"type\":\"ack\"")
        {
            acked.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Entries of `phase` the agents have received so far.
fn received(seen: &Seen, phase: u8) -> Vec<Received> {
    let entries = seen.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    entries.iter().filter(|r| r.phase == phase).cloned().collect()
}

/// One durable open-loop phase, then the drain: until every message is acknowledged to its
/// visitor and received by its agent, or `drain_secs` pass.
async fn durable(
    visitors: &mut [Visitor],
    agents: &[Agent],
    seen: &Seen,
    clock: &Clock,
    phase: u8,
    p: &Params,
) -> anyhow::Result<Durable> {
    let acked = AtomicU64::new(0);
    let mut sinks = Vec::with_capacity(visitors.len());
    let mut readers = Vec::with_capacity(visitors.len());
    let mut conversations = Vec::with_capacity(visitors.len());
    for v in visitors.iter_mut() {
        sinks.push(&mut v.sink);
        readers.push(count_acks(&mut v.stream, &acked));
        conversations.push(v.conversation.clone());
    }
    let frame = |k: String| text(&json!({"type": "send", "client_msg_id": k, "text": "Hello, is anybody there?"}));
    let started = Instant::now();
    let work = async {
        let sent_by = open_loop(sinks, phase, p.rate, p.secs, clock, frame).await?;
        let sent: u64 = sent_by.iter().sum();
        let achieved_rate = sent as f64 / started.elapsed().as_secs_f64();
        // Slow agents read at full speed again, so that what they missed comes (the server
        // replays it from the log) and nothing counts as lost only because it is still queued.
        for a in agents {
            a.pace.pause_ns.store(0, Ordering::Relaxed);
        }
        let deadline = Instant::now() + Duration::from_secs_f64(p.drain_secs);
        let arrived = || seen.per_phase.get(usize::from(phase)).map_or(0, |n| n.load(Ordering::Relaxed));
        while arrived() < sent || acked.load(Ordering::Relaxed) < sent {
            if Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        anyhow::Ok((sent_by, sent, achieved_rate))
    };
    let (sent_by, sent, achieved_rate) = tokio::select! {
        r = work => r?,
        _ = futures_util::future::join_all(readers) => bail!("visitor sockets closed during the phase"),
    };
    let got = received(seen, phase);
    Ok(tally(&conversations, &sent_by, &got, sent, acked.load(Ordering::Relaxed), achieved_rate))
}

/// Lost, duplicated and reordered messages of a phase, and the latency of what arrived.
fn tally(
    conversations: &[String],
    sent_by: &[u64],
    received: &[Received],
    sent: u64,
    acked: u64,
    achieved_rate: f64,
) -> Durable {
    let mut by_conversation: HashMap<&str, Vec<u64>> = HashMap::new();
    let (mut fast, mut slow) = (Vec::new(), Vec::new());
    for r in received {
        by_conversation.entry(r.conversation.as_str()).or_default().push(r.index);
        if r.slow { slow.push(r.latency_ns) } else { fast.push(r.latency_ns) }
    }
    let (mut lost, mut duplicates, mut out_of_order) = (0u64, 0u64, 0u64);
    for (conversation, &n) in conversations.iter().zip(sent_by) {
        let got = by_conversation.get(conversation.as_str()).map_or(&[][..], Vec::as_slice);
        out_of_order += got.windows(2).filter(|w| w[1] < w[0]).count() as u64;
        let mut unique = got.to_vec();
        unique.sort_unstable();
        unique.dedup();
        duplicates += (got.len() - unique.len()) as u64;
        lost += n.saturating_sub(unique.len() as u64);
    }
    Durable {
        sent,
        acked,
        received: received.len() as u64,
        lost,
        duplicates,
        out_of_order,
        achieved_rate,
        latency_ms: Percentiles::of(&mut fast, 1e6),
        slow_latency_ms: (!slow.is_empty()).then(|| Percentiles::of(&mut slow, 1e6)),
        server: ServerCost { cpu_secs: 0.0, peak_rss_mib: 0.0 },
    }
}

/// The bare echo process at the same rate over as many connections.
async fn echo_at_rate(bench_bin: &Path, p: &Params, clock: &Clock) -> anyhow::Result<EchoAtRate> {
    let (mut child, url) = crate::process::echo_process(bench_bin).await?;
    let closed_loop = crate::ceilings::echo_closed_loop(&url, p.chats, Duration::from_secs_f64(p.secs)).await?;
    let mut sinks = Vec::with_capacity(p.chats);
    let mut streams = Vec::with_capacity(p.chats);
    for _ in 0..p.chats {
        let (sink, stream) = client::connect(&url).await?.split();
        sinks.push(sink);
        streams.push(stream);
    }
    let samples = Arc::new(Mutex::new(Vec::new()));
    let mut readers = Vec::with_capacity(streams.len());
    for mut stream in streams {
        let samples = Arc::clone(&samples);
        let clock = Clock { origin: clock.origin };
        readers.push(tokio::spawn(async move {
            while let Some(Ok(Message::Text(t))) = stream.next().await {
                if let Some((_, intended, _)) = parse_key(t.as_str()) {
                    let latency = clock.since().saturating_sub(intended);
                    samples.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(latency);
                }
            }
        }));
    }
    let sent_by = open_loop(sinks.iter_mut().collect(), 9, p.rate, p.secs, clock, Message::text).await?;
    let sent: u64 = sent_by.iter().sum();
    let deadline = Instant::now() + Duration::from_secs_f64(p.drain_secs);
    while (samples.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len() as u64) < sent
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for mut s in sinks {
        let _ = s.close().await;
    }
    for r in readers {
        r.abort();
    }
    child.kill().await?;
    let mut samples = std::mem::take(&mut *samples.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    let dir = tempfile::tempdir()?;
    let fsync = crate::ceilings::fsync(dir.path(), FSYNC_WRITES)?;
    Ok(EchoAtRate {
        closed_loop,
        sent,
        received: samples.len() as u64,
        latency_ms: Percentiles::of(&mut samples, 1e6),
        fsync,
    })
}

/// Runs the load scenarios.
///
/// # Errors
/// If the server does not start, the setup is refused, or a socket fails.
pub async fn run(p: &Params) -> anyhow::Result<Load> {
    ensure!(p.chats > 0 && p.agents > 0 && p.rate > 0.0, "load needs chats, agents and a rate");
    let per_agent = u32::try_from(p.chats.div_ceil(p.agents)).context("chats per agent")?;
    ensure!(per_agent <= parley_domain::MAX_AGENT_CHATS, "at most {} chats per agent", parley_domain::MAX_AGENT_CHATS);
    let bench_bin = std::env::current_exe().context("the bench binary")?;
    let dir = tempfile::tempdir()?;
    let server =
        ServerProcess::start_with_env(&p.parley_bin, dir.path(), &[("PARLEY_TYPING_INTERVAL_MS", "0")]).await?;
    let pid = server.pid().context("parley pid")?;
    let clock = Arc::new(Clock { origin: Instant::now() });
    let seen = Arc::new(Seen::default());

    let setup = Instant::now();
    let t = fixtures::staffed_tenant(&server.base, "load", p.agents, per_agent).await?;
    let mut agents = Vec::with_capacity(p.agents);
    for n in 0..p.agents {
        agents.push(agent_online(&server, &t, n, &seen, &clock).await?);
    }
    let started = staffed_chats(&server, &t, p.chats, &seen).await?;
    let mut visitors = visitors(&server, &started).await?;
    let setup_secs = setup.elapsed().as_secs_f64();

    let ((signals_per_sec, mut samples), cost) = costed(pid, ephemeral(&mut visitors, &seen, p.secs)).await?;
    let ephemeral = Ephemeral {
        signals: samples.len() as u64,
        signals_per_sec: signals_per_sec as f64,
        latency_ms: Percentiles::of(&mut samples, 1e6),
        server: cost,
    };

    let (mut durable_phase, cost) = costed(pid, durable(&mut visitors, &agents, &seen, &clock, 1, p)).await?;
    durable_phase.server = cost;

    let slow_agents = ((p.agents as f64 * p.slow_share).round() as usize).min(p.agents);
    // A slow agent reads a tenth of its share: its chats' messages arrive every
    // agents/rate seconds on average, so it pauses that long divided by the speed.
    let pause = Duration::from_secs_f64(p.agents as f64 / p.rate / p.slow_speed.max(1e-3));
    for a in agents.iter().take(slow_agents) {
        a.pace.pause_ns.store(nanos(pause), Ordering::Relaxed);
        a.pace.slow.store(true, Ordering::Relaxed);
    }
    let (mut slow_phase, cost) = costed(pid, durable(&mut visitors, &agents, &seen, &clock, 2, p)).await?;
    slow_phase.server = cost;

    for a in &agents {
        let _ = a.out.send(Message::Close(None));
        a.task.abort();
    }
    drop(visitors);
    server.terminate().await?;
    let echo = echo_at_rate(&bench_bin, p, &clock).await?;
    let rows = rows(p, &ephemeral, &durable_phase, &slow_phase, &echo);
    Ok(Load { params: p.clone(), setup_secs, ephemeral, durable: durable_phase, slow: slow_phase, echo, rows })
}

/// Durable page writes of R5's fsync probe.
const FSYNC_WRITES: usize = 200;

/// The goals these phases answer.
fn rows(p: &Params, e: &Ephemeral, d: &Durable, slow: &Durable, echo: &EchoAtRate) -> Vec<Row> {
    let broken = |d: &Durable| (d.lost + d.duplicates + d.out_of_order) as f64;
    let r5_ceiling = echo.latency_ms.p99 + echo.fsync.latency_ms.p99;
    vec![
        Row::at_least(
            "R1",
            "typing relayed/s ÷ bare echo, closed-loop",
            e.signals_per_sec,
            echo.closed_loop.echoes_per_sec,
            0.5,
            ">= 0.5",
        ),
        Row::at_most("R5", "p99 ms at the rate ÷ (echo p99 + fsync p99)", d.latency_ms.p99, r5_ceiling, 2.0, "<= 2"),
        Row::at_least("A2", "rate achieved ÷ asked (msg/s)", d.achieved_rate, p.rate, 0.95, ">= 0.95"),
        Row::at_most("A2", "p50 ms, durable, at the rate (goal ms)", d.latency_ms.p50, 2.0, 1.0, "<= 1"),
        Row::at_most("A2", "p99 ms, durable, at the rate (goal ms)", d.latency_ms.p99, 10.0, 1.0, "<= 1"),
        Row::new("A2", "messages lost, duplicated or reordered", broken(d), 0.0, "= 0", broken(d) == 0.0),
        Row::at_most("A7", "others' p99 ms with slow consumers (goal ms)", slow.latency_ms.p99, 10.0, 1.0, "<= 1"),
        Row::at_most(
            "A7",
            "peak RSS MiB with slow consumers ÷ without",
            slow.server.peak_rss_mib,
            d.server.peak_rss_mib,
            1.5,
            "<= 1.5",
        ),
        Row::new("A7", "messages lost, duplicated or reordered", broken(slow), 0.0, "= 0", broken(slow) == 0.0),
    ]
}

/// The Markdown report.
#[must_use]
pub fn markdown(r: &Load) -> String {
    let p = &r.params;
    let mut s = format!(
        "# Load: {} chats held by {} agents, {} msg/s for {} s\n\nSetup took {:.1} s.\n\n",
        p.chats, p.agents, p.rate, p.secs, r.setup_secs
    );
    s.push_str(&report::table(&r.rows));
    s.push('\n');
    s.push_str("| phase | rate | sent | lost | dup | reordered | p50 ms | p99 ms | server CPU s | peak RSS MiB |\n");
    s.push_str("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    let e = &r.ephemeral;
    s.push_str(&format!(
        "| typing, closed-loop | {:.0}/s | {} | | | | {:.2} | {:.2} | {:.2} | {:.0} |\n",
        e.signals_per_sec, e.signals, e.latency_ms.p50, e.latency_ms.p99, e.server.cpu_secs, e.server.peak_rss_mib
    ));
    for (name, d) in [("durable", &r.durable), ("durable, slow consumers", &r.slow)] {
        s.push_str(&format!(
            "| {name} | {:.0}/s | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.0} |\n",
            d.achieved_rate,
            d.sent,
            d.lost,
            d.duplicates,
            d.out_of_order,
            d.latency_ms.p50,
            d.latency_ms.p99,
            d.server.cpu_secs,
            d.server.peak_rss_mib
        ));
    }
    s.push_str(&format!(
        "| bare echo, same rate | | {} | {} | | | {:.2} | {:.2} | | |\n",
        r.echo.sent,
        r.echo.sent - r.echo.received.min(r.echo.sent),
        r.echo.latency_ms.p50,
        r.echo.latency_ms.p99
    ));
    s.push_str(&format!(
        "\nBare echo closed-loop: {:.0} echoes/s over {} connections. fsync p50 {:.2} ms, p99 {:.2} ms.\n",
        r.echo.closed_loop.echoes_per_sec,
        r.echo.closed_loop.connections,
        r.echo.fsync.latency_ms.p50,
        r.echo.fsync.latency_ms.p99
    ));
    if let Some(l) = &r.slow.slow_latency_ms {
        s.push_str(&format!(
            "\nSlow agents' messages: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms.\n",
            l.p50, l.p99, l.max
        ));
    }
    s
}
