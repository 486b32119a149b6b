//! The `crash` scenario (goal A4): the `parley` binary gets `kill -9` while visitors send at a
//! fixed rate; it restarts on the same data folder and every visitor resumes as the protocol
//! tells a client to. Measured: whether any acknowledged message was lost, duplicated or
//! reordered, and how long the restart after the crash took until the server listened.
//!
//! - **Load.** `--chats` chats of the fixture tenant (nobody staffs its service, so they all
//!   wait), each with its visitor socket open. Messages go out open-loop at `--rate` in all:
//!   message `k` is due `k / rate` seconds after the start and goes out on socket `k % chats`,
//!   with a `client_msg_id` unique in the run. The load starts once every socket has had its
//!   first `queue` frame: a session reads nothing before it, so earlier messages would only wait
//!   for the tenant engine to work through the chats' starts. A message is *acknowledged* once
//!   its `ack` or its `entry` frame reaches the socket (the server sends both only after the
//!   commit); its ack latency counts from when it was due, so a late sender cannot hide a slow
//!   server. The server handles one message per socket at a time, so `rate / chats` must stay
//!   well below one per commit time or the sockets' backlogs, not the server, set the latency.
//! - **Crash.** After `--kill-after-secs` the server gets SIGKILL while messages keep going out;
//!   each socket reads what the server had sent until its connection drops.
//! - **Restart.** The binary starts again on the same folder; spawn until it listens is the
//!   restart time (like A5's cold start, but after a crash: WAL recovery and queues rebuilt).
//! - **Resume.** Each visitor reconnects with `since_seq=0` and reads the replay (first check);
//!   then it resends every message it had sent without an answer, with the same
//!   `client_msg_id`, and waits for each `ack` (`duplicate: true`: it had been committed before
//!   the kill). Finally each visitor reconnects once more and reads the whole log (second check).
//! - **Checks**, on both replays: `seq`s run 1, 2, 3… with no gap, repeat or swap; no
//!   `client_msg_id` appears twice; every acknowledged message is there under the `seq` it was
//!   acknowledged with; each visitor's messages have increasing `seq`s in the order they were
//!   sent. The verdict passes when nothing was lost, nothing duplicated and the order kept.

use crate::report::RunInfo;
use crate::stats::{Percentiles, nanos};
use anyhow::{Context, ensure};
use futures_util::{SinkExt, Stream, StreamExt, TryStreamExt};
use parley_testkit::{ServerProcess, fixtures};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The scenario's parameters; the defaults run in about 10 to 20 seconds.
#[derive(Debug, Clone, clap::Args, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The `parley` binary to start, kill and restart (`cargo build --release -p parley-server`).
    #[serde(default, skip_deserializing)]
    #[arg(long)]
    pub parley_bin: PathBuf,
    /// Chats, each with one visitor socket sending.
    #[arg(long, default_value_t = 200)]
    pub chats: usize,
    /// Messages per second over all sockets, open-loop (each socket sends `rate / chats` per second).
    #[arg(long, default_value_t = 2000.0)]
    pub rate: f64,
    /// Seconds of load before the SIGKILL.
    #[arg(long, default_value_t = 3.0)]
    pub kill_after_secs: f64,
    /// Longest wait, after the restart, for one visitor's replay or for the answers to its resent
    /// messages (a bound, not a sleep).
    #[arg(long, default_value_t = 10.0)]
    pub resume_timeout_secs: f64,
    /// Keep the server's data folder after the run (it is always kept when the verdict fails).
    #[arg(long)]
    pub keep_data: bool,
}

/// The load until the kill.
#[derive(Debug, Clone, Serialize)]
pub struct Load {
    pub sockets: usize,
    /// Opening every socket until each had its `queue` frame (the load starts after).
    pub setup_secs: f64,
    /// From the first message's due time to the SIGKILL.
    pub secs: f64,
    /// Messages written to a socket (or tried: a write that failed counts, the client retries it).
    pub sent: u64,
    pub sent_per_sec: f64,
    /// Messages whose `ack` or `entry` came back before the connection dropped.
    pub acknowledged: u64,
    pub unacknowledged: u64,
    /// Due time → first of `ack` and `entry`, in milliseconds.
    pub ack_ms: Percentiles,
    /// How far behind its schedule the load generator sent at worst (it kept up when small).
    pub max_send_lag_ms: f64,
    /// Messages whose `ack` and `entry` gave different `seq`s (must be 0).
    pub ack_entry_mismatches: u64,
    /// `error` frames received.
    pub error_frames: u64,
}

/// One reading of every chat's log, compared with what was sent and acknowledged.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Check {
    /// This run's visitor messages found in the logs.
    pub messages: u64,
    /// Acknowledged messages missing from the log.
    pub lost: u64,
    /// Acknowledged messages found under another `seq` than acknowledged.
    pub moved: u64,
    /// Extra copies of a `client_msg_id` within one conversation's log.
    pub duplicates: u64,
    /// Entries whose `seq` is not the previous one's plus one (a gap, repeat or swap).
    pub seq_breaks: u64,
    /// Chats whose visitor messages' `seq`s do not increase in the order they were sent.
    pub order_broken: u64,
    /// Messages sent but not in the log (expected after the kill; 0 once they were resent).
    pub absent: u64,
    /// Messages sent without an answer but in the log: committed before the kill.
    pub unacknowledged_present: u64,
}

/// Resending what had no answer, after the restart.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Resend {
    pub resent: u64,
    /// Answered `duplicate: true`: committed before the kill, nothing written again.
    pub duplicate: u64,
    /// Answered `duplicate: false`: written now.
    pub written: u64,
    /// No `ack` within `--resume-timeout-secs`.
    pub unanswered: u64,
    pub error_frames: u64,
}

/// What came out of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub run: RunInfo,
    pub params: Params,
    pub load: Load,
    /// Spawn on the crashed data folder → listening, in milliseconds.
    pub restart_ms: f64,
    /// The replay right after the restart, before anything was resent.
    pub after_restart: Check,
    pub resend: Resend,
    /// The replay after the resends (their acknowledgements count as acknowledged too).
    pub after_resend: Check,
    /// Nothing lost, nothing duplicated, order kept, in both replays.
    pub pass: bool,
    /// The server's data folder, when kept.
    pub data_dir: Option<PathBuf>,
}

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// A chat and its visitor's token.
#[derive(Debug, Clone)]
struct Chat {
    token: String,
}

/// What one visitor socket sent and got back until its connection dropped.
#[derive(Debug, Default)]
struct Ledger {
    /// In the order they were sent.
    sent: Vec<String>,
    /// `client_msg_id` → `seq` it was acknowledged with.
    acked: HashMap<String, i64>,
    ack_ns: Vec<u64>,
    max_lag: Duration,
    mismatches: u64,
    errors: u64,
}

/// One log entry as the replay showed it.
#[derive(Debug, Clone)]
struct Logged {
    seq: i64,
    client_msg_id: Option<String>,
}

/// Runs the scenario: start, load, kill, restart, resume, check.
///
/// # Errors
/// The binary does not start (or restart), an API call is refused, or a socket cannot connect.
pub async fn run(params: &Params) -> anyhow::Result<Report> {
    ensure!(params.chats > 0 && params.rate > 0.0, "crash needs chats and a rate");
    ensure!(params.kill_after_secs > 0.0, "crash needs --kill-after-secs above 0");
    let run = RunInfo::now();
    let dir = tempfile::tempdir().context("data folder")?;
    let timeout = Duration::from_secs_f64(params.resume_timeout_secs);

    let server = ServerProcess::start(&params.parley_bin, dir.path()).await?;
    let chats = open_chats(&server.base, params.chats).await?;
    let (ledgers, timing) = load_and_kill(server, &chats, params, timeout).await?;

    let (restart_ms, resumed, finals) = match recover(params, dir.path(), &chats, &ledgers, timeout).await {
        Ok(recovered) => recovered,
        // A server that cannot come back from the crash is what the folder is needed for.
        Err(e) => return Err(e.context(format!("data folder kept: {}", dir.keep().display()))),
    };
    let mut acked: Vec<HashMap<String, i64>> = ledgers.iter().map(|l| l.acked.clone()).collect();
    let after_restart = check_all(resumed.iter().map(|r| &r.replay), &ledgers, &acked);
    for (a, r) in acked.iter_mut().zip(&resumed) {
        a.extend(r.answers.iter().map(|(id, seq)| (id.clone(), *seq)));
    }
    let after_resend = check_all(finals.iter(), &ledgers, &acked);
    let mut resend = Resend::default();
    for r in &resumed {
        resend.add(&r.tally);
    }
    let load = summarize(&ledgers, timing);
    let pass = verdict(&load, &after_restart, &after_resend);
    let data_dir = (params.keep_data || !pass).then(|| dir.keep());
    Ok(Report {
        scenario: "crash",
        run,
        params: params.clone(),
        load,
        restart_ms,
        after_restart,
        resend,
        after_resend,
        pass,
        data_dir,
    })
}

/// Restarts the server on the crashed folder (timed until it listens, in milliseconds), resumes
/// every visitor, reads every log once more and stops the server.
async fn recover(
    params: &Params,
    dir: &Path,
    chats: &[Chat],
    ledgers: &[Ledger],
    timeout: Duration,
) -> anyhow::Result<(f64, Vec<Resumed>, Vec<Vec<Logged>>)> {
    let started = Instant::now();
    let server = ServerProcess::start(&params.parley_bin, dir).await.context("restart after the kill")?;
    let restart_ms = started.elapsed().as_secs_f64() * 1e3;
    let ws_base = server.ws_base();
    let resumed = resume_all(&ws_base, chats, ledgers, timeout).await?;
    let finals = read_all(&ws_base, chats, timeout).await?;
    server.terminate().await?;
    Ok((restart_ms, resumed, finals))
}

/// Nothing lost, nothing duplicated, order kept (a moved `seq` or an `ack` disagreeing with its
/// `entry` would break the order a client shows).
fn verdict(load: &Load, after_restart: &Check, after_resend: &Check) -> bool {
    load.ack_entry_mismatches == 0
        && [after_restart, after_resend]
            .iter()
            .all(|c| c.lost == 0 && c.duplicates == 0 && c.moved == 0 && c.seq_breaks == 0 && c.order_broken == 0)
}

/// The fixture tenant and `n` waiting chats (a few started at once, as widgets would).
async fn open_chats(base: &str, n: usize) -> anyhow::Result<Vec<Chat>> {
    let tenant = fixtures::tenant(base, "crash", 1).await?;
    let tenant = &tenant;
    futures_util::stream::iter(0..n)
        .map(|i| async move {
            let (_, token) = tenant.start_chat(base, &format!("Visitor {i}"), None).await?;
            anyhow::Ok(Chat { token })
        })
        .buffered(16)
        .try_collect()
        .await
}

/// The next text frame as JSON (other frames skipped); `None` once the connection is gone.
///
/// Cancel-safe: a frame is parsed and returned in the same poll that takes it off the socket.
async fn next_json<S>(stream: &mut S) -> Option<Value>
where
    S: Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    loop {
        match stream.next().await? {
            // Null for a frame that is not JSON: nothing to match, but not the end either.
            Ok(Message::Text(text)) => return Some(serde_json::from_str(text.as_str()).unwrap_or(Value::Null)),
            Ok(_) => {}
            // A reset is how the killed server's connections end; either way there is no more.
            Err(_) => return None,
        }
    }
}

/// Opens a visitor socket from `seq` 0 and reads up to its `hello`; returns the socket and the
/// log's `last_seq` at connection time.
async fn connect(ws_base: &str, token: &str) -> anyhow::Result<(Socket, i64)> {
    let url = format!("{ws_base}/ws/v1/visitor?token={token}&since_seq=0");
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str()).await.context("visitor socket")?;
    loop {
        let frame = next_json(&mut ws).await.context("the visitor socket closed before hello")?;
        if frame["type"] == "hello" {
            return Ok((ws, frame["last_seq"].as_i64().context("hello without last_seq")?));
        }
    }
}

fn send_frame(client_msg_id: &str) -> Message {
    Message::text(json!({"type": "send", "client_msg_id": client_msg_id, "text": "Are you still there?"}).to_string())
}

/// When each socket's messages are due: message `k` overall at `k / rate`, on socket `k % chats`.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    start: Instant,
    rate: f64,
    chats: usize,
}

impl Schedule {
    fn due(&self, chat: usize, nth: usize) -> Instant {
        self.start + Duration::from_secs_f64((nth * self.chats + chat) as f64 / self.rate)
    }
}

/// How long the two phases before the kill took.
#[derive(Debug, Clone, Copy)]
struct Timing {
    setup_secs: f64,
    load_secs: f64,
}

/// Opens every socket and waits until each is served, sends on schedule, kills the server after
/// `kill_after_secs` and collects each socket's ledger once its connection has dropped.
async fn load_and_kill(
    server: ServerProcess,
    chats: &[Chat],
    params: &Params,
    timeout: Duration,
) -> anyhow::Result<(Vec<Ledger>, Timing)> {
    let ws_base = server.ws_base();
    let connecting = Instant::now();
    let mut sockets: Vec<Socket> = futures_util::stream::iter(chats)
        .map(|c| async { Ok::<_, anyhow::Error>(connect(&ws_base, &c.token).await?.0) })
        .buffered(16)
        .try_collect()
        .await?;
    let ready = futures_util::future::try_join_all(sockets.iter_mut().map(queued));
    tokio::time::timeout(timeout, ready).await.context("no queue frame on every socket")??;
    let setup_secs = connecting.elapsed().as_secs_f64();
    // A moment's head start so every task is waiting before the first message is due.
    let schedule =
        Schedule { start: Instant::now() + Duration::from_millis(20), rate: params.rate, chats: chats.len() };
    let tasks: Vec<_> = sockets.into_iter().enumerate().map(|(i, ws)| tokio::spawn(drive(ws, i, schedule))).collect();
    let kill_at = schedule.start + Duration::from_secs_f64(params.kill_after_secs);
    tokio::time::sleep_until(kill_at.into()).await;
    server.kill9().await?;
    let load_secs = schedule.start.elapsed().as_secs_f64();
    let mut ledgers = Vec::with_capacity(tasks.len());
    for t in tasks {
        // The kernel closes a killed process's sockets, so every connection ends on its own.
        let ledger = tokio::time::timeout(timeout, t).await.context("a socket stayed open after the kill")?;
        ledgers.push(ledger.context("socket task")?);
    }
    Ok((ledgers, Timing { setup_secs, load_secs }))
}

/// Reads up to the socket's first `queue` frame. The session sends it once it has its place from
/// the tenant engine, and reads no message before that; so when every socket has had it, the
/// engine has worked through the chats' starts and the load meets a settled server.
async fn queued(ws: &mut Socket) -> anyhow::Result<()> {
    while next_json(ws).await.context("the visitor socket closed before its queue frame")?["type"] != "queue" {}
    Ok(())
}

/// One visitor socket under load: sends each message when due and records what comes back,
/// until the connection drops (the kill).
async fn drive(ws: Socket, chat: usize, schedule: Schedule) -> Ledger {
    let (mut sink, mut stream) = ws.split();
    let mut ledger = Ledger::default();
    let mut due_at = HashMap::new();
    let mut sending = true;
    loop {
        let due = schedule.due(chat, ledger.sent.len());
        tokio::select! {
            () = tokio::time::sleep_until(due.into()), if sending => {
                let id = format!("c{chat}-{}", ledger.sent.len());
                ledger.max_lag = ledger.max_lag.max(due.elapsed());
                ledger.sent.push(id.clone());
                due_at.insert(id.clone(), due);
                // A failed write may still have reached the server: it stays sent, to be retried.
                sending = sink.send(send_frame(&id)).await.is_ok();
            }
            frame = next_json(&mut stream) => match frame {
                Some(frame) => ledger.record(&frame, &due_at),
                None => return ledger,
            }
        }
    }
}

impl Ledger {
    /// Notes an `ack` or `entry` of one of this socket's messages, or an `error` frame.
    fn record(&mut self, frame: &Value, due_at: &HashMap<String, Instant>) {
        let (id, seq) = match frame["type"].as_str() {
            Some("ack") => (&frame["client_msg_id"], &frame["seq"]),
            Some("entry") => (&frame["entry"]["client_msg_id"], &frame["entry"]["seq"]),
            Some("error") => {
                self.errors += 1;
                return;
            }
            _ => return,
        };
        let (Some(id), Some(seq)) = (id.as_str(), seq.as_i64()) else { return };
        let Some(due) = due_at.get(id) else { return };
        match self.acked.get(id) {
            Some(&known) if known != seq => self.mismatches += 1,
            Some(_) => {}
            None => {
                self.acked.insert(id.to_owned(), seq);
                self.ack_ns.push(nanos(due.elapsed()));
            }
        }
    }

    /// Sent without an answer, in the order sent.
    fn unacked(&self) -> Vec<String> {
        self.sent.iter().filter(|id| !self.acked.contains_key(*id)).cloned().collect()
    }
}

/// One visitor after the restart: the replay before resending, and the answers to its resends.
#[derive(Debug, Default)]
struct Resumed {
    replay: Vec<Logged>,
    answers: HashMap<String, i64>,
    tally: Resend,
}

impl Resend {
    fn add(&mut self, other: &Self) {
        self.resent += other.resent;
        self.duplicate += other.duplicate;
        self.written += other.written;
        self.unanswered += other.unanswered;
        self.error_frames += other.error_frames;
    }
}

/// Resumes every visitor, a few at a time.
async fn resume_all(
    ws_base: &str,
    chats: &[Chat],
    ledgers: &[Ledger],
    timeout: Duration,
) -> anyhow::Result<Vec<Resumed>> {
    futures_util::stream::iter(chats.iter().zip(ledgers))
        .map(|(c, l)| resume(ws_base, &c.token, l.unacked(), timeout))
        .buffered(32)
        .try_collect()
        .await
}

/// Reconnects from `seq` 0, reads the replay, then resends `unacked` (same ids, same order) and
/// waits for their `ack`s.
async fn resume(ws_base: &str, token: &str, unacked: Vec<String>, timeout: Duration) -> anyhow::Result<Resumed> {
    let (ws, last_seq) = connect(ws_base, token).await?;
    let (mut sink, mut stream) = ws.split();
    let mut r = Resumed::default();
    tokio::time::timeout(timeout, replay(&mut stream, last_seq, &mut r.replay))
        .await
        .context("the replay after the restart did not finish")??;
    for id in &unacked {
        sink.send(send_frame(id)).await.context("resend")?;
    }
    r.tally.resent = unacked.len() as u64;
    let mut waiting: HashSet<String> = unacked.into_iter().collect();
    // Cut short by the timeout, the answers so far stay counted; the rest are unanswered.
    let _ = tokio::time::timeout(timeout, answers(&mut stream, &mut waiting, &mut r)).await;
    r.tally.unanswered = waiting.len() as u64;
    let _ = sink.close().await;
    Ok(r)
}

/// Reads `entry` frames into `log` until the one with `last_seq` (the log's end at connection).
async fn replay<S>(stream: &mut S, last_seq: i64, log: &mut Vec<Logged>) -> anyhow::Result<()>
where
    S: Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    while log.last().map_or(0, |e| e.seq) < last_seq {
        let frame = next_json(stream).await.context("the socket closed during the replay")?;
        note_entry(&frame, log);
    }
    Ok(())
}

/// Adds the frame to `log` if it is an entry.
fn note_entry(frame: &Value, log: &mut Vec<Logged>) {
    if frame["type"] == "entry"
        && let Some(seq) = frame["entry"]["seq"].as_i64()
    {
        let client_msg_id = frame["entry"]["client_msg_id"].as_str().map(str::to_owned);
        log.push(Logged { seq, client_msg_id });
    }
}

/// Reads frames until every id in `waiting` has its `ack` (the resends' live entries are left to
/// the final replay, so the first one stays what the restart showed).
async fn answers<S>(stream: &mut S, waiting: &mut HashSet<String>, r: &mut Resumed) -> anyhow::Result<()>
where
    S: Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    while !waiting.is_empty() {
        let frame = next_json(stream).await.context("the socket closed while resending")?;
        match frame["type"].as_str() {
            Some("ack") => {
                let (Some(id), Some(seq)) = (frame["client_msg_id"].as_str(), frame["seq"].as_i64()) else { continue };
                if waiting.remove(id) {
                    r.answers.insert(id.to_owned(), seq);
                    if frame["duplicate"] == true {
                        r.tally.duplicate += 1;
                    } else {
                        r.tally.written += 1;
                    }
                }
            }
            Some("error") => r.tally.error_frames += 1,
            _ => {}
        }
    }
    Ok(())
}

/// Every visitor's whole log, replayed on a fresh socket.
async fn read_all(ws_base: &str, chats: &[Chat], timeout: Duration) -> anyhow::Result<Vec<Vec<Logged>>> {
    futures_util::stream::iter(chats)
        .map(|c| async move {
            let (ws, last_seq) = connect(ws_base, &c.token).await?;
            let (mut sink, mut stream) = ws.split();
            let mut log = Vec::new();
            tokio::time::timeout(timeout, replay(&mut stream, last_seq, &mut log))
                .await
                .context("the final replay did not finish")??;
            let _ = sink.close().await;
            anyhow::Ok(log)
        })
        .buffered(32)
        .try_collect()
        .await
}

/// The checks summed over every chat.
fn check_all<'a>(
    logs: impl Iterator<Item = &'a Vec<Logged>>,
    ledgers: &[Ledger],
    acked: &[HashMap<String, i64>],
) -> Check {
    let mut total = Check::default();
    for ((log, ledger), acked) in logs.zip(ledgers).zip(acked) {
        total.add(&check(log, &ledger.sent, acked));
    }
    total
}

/// One chat's log against what its visitor sent (in order) and had acknowledged.
fn check(log: &[Logged], sent: &[String], acked: &HashMap<String, i64>) -> Check {
    let mut c = Check::default();
    let mut previous = 0;
    let mut found: HashMap<&str, i64> = HashMap::new();
    for e in log {
        if e.seq != previous + 1 {
            c.seq_breaks += 1;
        }
        previous = e.seq;
        if let Some(id) = e.client_msg_id.as_deref()
            && found.insert(id, e.seq).is_some()
        {
            c.duplicates += 1;
        }
    }
    let mut last_sent_seq = 0;
    let mut in_order = true;
    for id in sent {
        let Some(&seq) = found.get(id.as_str()) else {
            c.absent += 1;
            c.lost += u64::from(acked.contains_key(id));
            continue;
        };
        c.messages += 1;
        match acked.get(id) {
            Some(&ack) if ack != seq => c.moved += 1,
            Some(_) => {}
            None => c.unacknowledged_present += 1,
        }
        in_order &= seq > last_sent_seq;
        last_sent_seq = seq;
    }
    c.order_broken = u64::from(!in_order);
    c
}

impl Check {
    fn add(&mut self, o: &Self) {
        self.messages += o.messages;
        self.lost += o.lost;
        self.moved += o.moved;
        self.duplicates += o.duplicates;
        self.seq_breaks += o.seq_breaks;
        self.order_broken += o.order_broken;
        self.absent += o.absent;
        self.unacknowledged_present += o.unacknowledged_present;
    }
}

/// The load's figures from every socket's ledger.
fn summarize(ledgers: &[Ledger], timing: Timing) -> Load {
    let secs = timing.load_secs;
    let sent: u64 = ledgers.iter().map(|l| l.sent.len() as u64).sum();
    let acknowledged: u64 = ledgers.iter().map(|l| l.acked.len() as u64).sum();
    let mut ack_ns: Vec<u64> = ledgers.iter().flat_map(|l| l.ack_ns.iter().copied()).collect();
    let max_lag = ledgers.iter().map(|l| l.max_lag).max().unwrap_or_default();
    Load {
        sockets: ledgers.len(),
        setup_secs: timing.setup_secs,
        secs,
        sent,
        sent_per_sec: sent as f64 / secs,
        acknowledged,
        unacknowledged: sent - acknowledged,
        ack_ms: Percentiles::of(&mut ack_ns, 1e6),
        max_send_lag_ms: max_lag.as_secs_f64() * 1e3,
        ack_entry_mismatches: ledgers.iter().map(|l| l.mismatches).sum(),
        error_frames: ledgers.iter().map(|l| l.errors).sum(),
    }
}

/// The report as Markdown.
#[must_use]
pub fn markdown(r: &Report) -> String {
    let mut s = String::from("# Crash durability: `kill -9` under load, restart, resume (goal A4)\n\n");
    s.push_str(&r.run.markdown());
    let p = &r.params;
    let _ = writeln!(
        s,
        "\n{} waiting chats, one visitor socket each, {} messages/s in all (open-loop); SIGKILL after {} s, \
         restart on the same data folder, every visitor resumes from `since_seq=0` and resends what had no answer.\n",
        p.chats, p.rate, p.kill_after_secs
    );
    let (l, a, b, x) = (&r.load, &r.after_restart, &r.after_resend, &r.resend);
    s.push_str("| figure | value |\n| --- | --- |\n");
    let rows = [
        ("sockets open and served (before the load)", format!("{:.2} s", l.setup_secs)),
        ("sent before the kill", format!("{} in {:.2} s ({:.0}/s)", l.sent, l.secs, l.sent_per_sec)),
        ("acknowledged before the kill", l.acknowledged.to_string()),
        (
            "ack latency from due time, p50 / p99 / max",
            format!("{:.2} / {:.2} / {:.2} ms", l.ack_ms.p50, l.ack_ms.p99, l.ack_ms.max),
        ),
        ("send lag behind schedule, max", format!("{:.2} ms", l.max_send_lag_ms)),
        ("**restart after the crash → listening**", format!("{:.1} ms", r.restart_ms)),
        ("unacknowledged, found committed after restart", a.unacknowledged_present.to_string()),
        (
            "resent: duplicate / written / unanswered",
            format!("{} / {} / {} of {}", x.duplicate, x.written, x.unanswered, x.resent),
        ),
        ("**lost** (acknowledged, missing): after restart / after resend", format!("{} / {}", a.lost, b.lost)),
        ("**duplicates**: after restart / after resend", format!("{} / {}", a.duplicates, b.duplicates)),
        ("seq breaks: after restart / after resend", format!("{} / {}", a.seq_breaks, b.seq_breaks)),
        ("moved seq / ack ≠ entry", format!("{} / {}", a.moved + b.moved, l.ack_entry_mismatches)),
        ("chats with order broken: after restart / after resend", format!("{} / {}", a.order_broken, b.order_broken)),
        ("sent, absent after resend", b.absent.to_string()),
        ("error frames: load / resend", format!("{} / {}", l.error_frames, x.error_frames)),
    ];
    for (name, value) in rows {
        let _ = writeln!(s, "| {name} | {value} |");
    }
    let verdict = if r.pass { "pass" } else { "FAIL" };
    let _ =
        writeln!(s, "\n**Goal A4 (0 acknowledged messages lost, 0 duplicates after resume, order kept): {verdict}.**");
    if let Some(dir) = &r.data_dir {
        let _ = writeln!(s, "\nData folder kept: `{}`.", dir.display());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(entries: &[(i64, Option<&str>)]) -> Vec<Logged> {
        entries.iter().map(|&(seq, id)| Logged { seq, client_msg_id: id.map(str::to_owned) }).collect()
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_clean_log_passes_every_check() {
        let acked = HashMap::from([("a".to_owned(), 2), ("b".to_owned(), 3)]);
        let c =
            check(&log(&[(1, None), (2, Some("a")), (3, Some("b")), (4, Some("c"))]), &ids(&["a", "b", "c"]), &acked);
        assert_eq!((c.messages, c.lost, c.moved, c.duplicates, c.seq_breaks, c.order_broken), (3, 0, 0, 0, 0, 0));
        assert_eq!((c.absent, c.unacknowledged_present), (0, 1));
    }

    #[test]
    fn lost_duplicated_and_moved_messages_are_counted() {
        let acked = HashMap::from([("a".to_owned(), 2), ("b".to_owned(), 3), ("c".to_owned(), 4)]);
        let c =
            check(&log(&[(1, None), (2, Some("a")), (4, Some("b")), (4, Some("b"))]), &ids(&["a", "b", "c"]), &acked);
        assert_eq!(c.lost, 1, "c was acknowledged and is missing");
        assert_eq!(c.duplicates, 1, "b twice");
        assert_eq!(c.moved, 1, "b acknowledged as 3, found as 4");
        assert_eq!(c.seq_breaks, 2, "2 → 4 → 4");
        assert_eq!((c.order_broken, c.absent), (0, 1));
    }

    #[test]
    fn messages_committed_out_of_send_order_break_the_order() {
        let c = check(&log(&[(1, None), (2, Some("b")), (3, Some("a"))]), &ids(&["a", "b"]), &HashMap::new());
        assert_eq!((c.order_broken, c.seq_breaks, c.unacknowledged_present), (1, 0, 2));
    }

    #[test]
    fn the_schedule_spreads_the_rate_over_the_sockets() {
        let start = Instant::now();
        let s = Schedule { start, rate: 100.0, chats: 4 };
        assert_eq!(s.due(0, 0), start);
        assert_eq!(s.due(3, 0) - start, Duration::from_millis(30));
        assert_eq!(s.due(1, 2) - start, Duration::from_millis(90));
    }
}
