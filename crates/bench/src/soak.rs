//! The idle soak and the connect storm (../shared/spec/performance.md): one `parley` process
//! holding thousands of idle widget sockets (goal A1: 19,500 held, RSS ≤ 350 MB, idle CPU ≤ 2 %
//! of one core), and how fast it takes new ones next to a bare echo process driven by the same
//! client.
//!
//! - **Chats** are created through the widget API first, `--chat-concurrency` at a time; that is
//!   timed on its own (rate per tenth of the run, so a cost growing with the queue shows) and is
//!   not part of the figures. Nobody staffs the service, so every chat waits in its queue.
//! - **Idle soak**: a visitor socket per chat, each open once its `queue` frame arrived (the last
//!   frame the server sends on connect, so its setup is done). Measured: the server's `VmRSS`
//!   before and while holding them (KiB per connection, next to the bare echo process holding as
//!   many: R4), and its user + system CPU over `--idle-secs` while every socket is idle.
//! - **Dequeue probe**: while all are held, the chat at the head of the queue ends and every
//!   waiting visitor behind it is told its new place: frames, wall time and server CPU of that
//!   one change.
//! - **Connect storm**: `--storm-connections` sockets opened as fast as the workers can, each
//!   through to its first frame (`hello`; the handshake for the echo). Connects per second ÷ the
//!   bare echo's, measured before and after Parley (NOISY when they differ by more than 10 %).
//!
//! One process may open 20,000 files here, so the client sockets live in `soak-client` worker
//! processes ([`client`], a hidden subcommand of this binary) driven line by line through their
//! stdin and stdout. Each binds its sockets to source addresses spread over 127.0.0.0/8, since
//! one source address has about 28k ephemeral ports. Everything goes to loopback, and workers
//! close their sockets and exit at a deadline whatever happens.

use crate::process::{clock_ticks, cpu_ticks, rss_kib};
use crate::report::{self, Row, RunInfo};
use crate::stats::{Percentiles, nanos};
use anyhow::{Context, bail, ensure};
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use parley_testkit::ServerProcess;
use parley_testkit::fixtures::{self, Tenant};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// Every parameter of the soak; the defaults are goal A1's run.
#[derive(Debug, Clone, Args, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The `parley` binary (`cargo build --release -p parley-server`).
    #[serde(default, skip_deserializing)]
    #[arg(long)]
    pub parley_bin: PathBuf,
    /// This tool's binary, run as the bare echo and as the client workers (default: this one).
    #[arg(long)]
    pub bench_bin: Option<PathBuf>,
    /// Idle widget sockets one Parley process holds at once (A1: 19,500).
    #[arg(long, default_value_t = 19_500)]
    pub connections: usize,
    /// Client worker processes sharing the sockets (each may open 20,000 files).
    #[arg(long, default_value_t = 4)]
    pub processes: usize,
    /// Seconds the server's CPU is measured while every socket is idle. Parley pings each socket
    /// every 25 s: a whole number of those periods holds the same number of pings per socket
    /// whenever the sockets were opened, so the window measures the steady state.
    #[arg(long, default_value_t = 50.0)]
    pub idle_secs: f64,
    /// Sockets opened in each connect storm (Parley's, and the bare echo's before and after).
    #[arg(long, default_value_t = 5_000)]
    pub storm_connections: usize,
    /// Handshakes each worker keeps in flight. Parley's and the echo's listeners have tokio's
    /// backlog of 128: with more in flight over all workers the accept queue overflows and the
    /// dropped SYNs come back a second later, which measures the kernel's retry timer instead.
    #[arg(long, default_value_t = 24)]
    pub in_flight: usize,
    /// Widget API requests creating the chats at once (before any measurement).
    #[arg(long, default_value_t = 32)]
    pub chat_concurrency: usize,
    /// Client sockets per source address of 127.0.0.0/8.
    #[arg(long, default_value_t = 1_000)]
    pub per_source: usize,
    /// Seconds after which a worker closes its sockets and exits, whatever the parent does.
    #[arg(long, default_value_t = 900)]
    pub worker_deadline_secs: u64,
}

/// The `soak-client` worker's parameters (set by [`run`], not by people).
#[derive(Debug, Clone, Args)]
pub struct ClientParams {
    /// File with one `ws://IP:PORT/…` URL per line: one socket each.
    #[arg(long)]
    pub urls: PathBuf,
    /// Index of the first source address ([`source_addr`]).
    #[arg(long)]
    pub first_source: u32,
    /// Source addresses used, round robin from the first.
    #[arg(long)]
    pub sources: u32,
    /// Handshakes in flight at once.
    #[arg(long)]
    pub in_flight: usize,
    /// The `type` of the frame each socket waits for before it counts as open (none: the
    /// handshake alone, as for the echo, which never speaks first).
    #[arg(long)]
    pub until: Option<String>,
    /// Seconds from start after which the worker closes everything and exits.
    #[arg(long)]
    pub deadline_secs: u64,
}

/// Files a process may have open beyond its sockets (database, log, listener, runtime).
const HEADROOM: usize = 64;
/// A socket not open (through to its awaited frame) by then counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long closed sockets may take to leave the server before the next phase.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the tenant engine may take to start the last chats after their requests answered.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the dequeue probe waits for every waiting visitor to hear its new place.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);
/// How far a ceiling may move between its two measurements before the run is NOISY.
const NOISE: f64 = 0.10;
/// Goals (../shared/spec/performance.md, A1), and this bench's own for the storm.
const A1_RSS_MB: f64 = 350.0;
const A1_CPU_PERCENT: f64 = 2.0;
const R4_MAX: f64 = 1.5;
/// Not in the spec: a server doing a token check, a few reads and a queue lookup per connect
/// should still take at least half as many connects per second as a bare echo.
const STORM_MIN: f64 = 0.5;

// ---- the report ------------------------------------------------------------------------------

/// One socket-opening run of the workers.
#[derive(Debug, Clone, Serialize)]
pub struct Opened {
    pub asked: usize,
    pub opened: usize,
    pub failed: usize,
    /// From telling the (already started) workers to go until the last had all its sockets open.
    pub secs: f64,
    pub per_sec: f64,
    /// Each socket's connect until its awaited frame, ms (time waiting for a slot excluded).
    pub connect_ms: Percentiles,
    /// Connects that took a second or more: almost always a SYN the full accept queue dropped,
    /// retried by the kernel after its one-second timer.
    pub over_1s: usize,
    /// The first few failures, as the workers reported them.
    pub errors: Vec<String>,
}

/// The server's open files.
#[derive(Debug, Clone, Serialize)]
pub struct Files {
    /// Its limit of open files when it started (soft, hard).
    pub soft: String,
    pub hard: String,
    /// The soft limit this bench raised it to with `prlimit`, when it was below the need.
    pub raised_to: Option<String>,
    /// Open before the sockets, and while holding them.
    pub before: usize,
    pub holding: usize,
}

/// Creating the chats (not part of the figures).
#[derive(Debug, Clone, Serialize)]
pub struct Chats {
    pub chats: usize,
    pub concurrency: usize,
    pub secs: f64,
    pub per_sec: f64,
    /// Each `POST /api/v1/widget/conversations`, ms.
    pub request_ms: Percentiles,
    /// Chats per second in each tenth of the run, by completions: a falling rate means each new
    /// chat costs more as the queue grows.
    pub per_sec_by_tenth: Vec<f64>,
    /// From the last answer until the tenant engine had started every chat (a socket of the last
    /// one heard its queue place: the engine answers in order).
    pub engine_drain_secs: f64,
    /// That chat's place in the queue.
    pub last_position: u64,
    /// Server CPU over the creation and the drain.
    pub server_cpu_secs: f64,
}

/// Holding the widgets.
#[derive(Debug, Clone, Serialize)]
pub struct Idle {
    pub open: Opened,
    /// Sockets still open at the end of the idle window.
    pub held: usize,
    pub rss_before_kib: f64,
    pub rss_holding_kib: f64,
    /// At the end of the idle window.
    pub rss_end_kib: f64,
    pub kib_per_connection: f64,
    pub idle_secs: f64,
    pub cpu_secs: f64,
    /// Of one core.
    pub cpu_percent: f64,
    /// Data frames the clients received during the idle window (pings excluded).
    pub frames: u64,
    pub files: Files,
}

/// The bare echo process holding as many sockets.
#[derive(Debug, Clone, Serialize)]
pub struct EchoIdle {
    pub open: Opened,
    pub rss_before_kib: f64,
    pub rss_holding_kib: f64,
    pub kib_per_connection: f64,
}

/// One change at the head of a long queue.
#[derive(Debug, Clone, Serialize)]
pub struct Dequeue {
    /// Queue place of the chat that ended.
    pub position: u64,
    /// Waiting visitors behind it, each due one `queue` frame.
    pub behind: usize,
    /// Data frames the held sockets received (the ended chat's own entries included).
    pub frames: u64,
    /// From the `end` frame until `behind` frames had arrived.
    pub secs: f64,
    pub server_cpu_ms: f64,
}

/// The connect storms.
#[derive(Debug, Clone, Serialize)]
pub struct Storm {
    pub echo_before: Opened,
    pub parley: Opened,
    pub echo_after: Opened,
    /// Parley's connects/s ÷ the lower of the echo's two.
    pub ratio: f64,
    pub noisy: bool,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub run: RunInfo,
    /// `bench_bin` resolved.
    pub params: Params,
    pub clock_ticks_per_sec: f64,
    pub chats: Chats,
    pub idle: Idle,
    pub echo_idle: EchoIdle,
    pub dequeue: Dequeue,
    pub storm: Storm,
    /// Held all, RSS and CPU within the goal.
    pub a1_pass: bool,
    pub rows: Vec<Row>,
}

// ---- /proc ------------------------------------------------------------------------------------

fn open_files(pid: u32) -> anyhow::Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd")).context("read /proc fd")?.count())
}

/// Soft and hard limits of open files (`unlimited` as `u64::MAX`) from `/proc/<pid>/limits`.
fn files_limit(pid: &str) -> anyhow::Result<(u64, u64)> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).context("read /proc limits")?;
    parse_files_limit(&limits)
}

fn parse_files_limit(limits: &str) -> anyhow::Result<(u64, u64)> {
    let line = limits.lines().find(|l| l.starts_with("Max open files")).context("no open files limit")?;
    let value = |s: Option<&str>| -> anyhow::Result<u64> {
        match s.context("limits: short")? {
            "unlimited" => Ok(u64::MAX),
            v => Ok(v.parse()?),
        }
    };
    let mut words = line.split_whitespace().skip(3);
    Ok((value(words.next())?, value(words.next())?))
}

fn limit_text(v: u64) -> String {
    if v == u64::MAX { "unlimited".into() } else { v.to_string() }
}

/// Makes sure the process `pid` may open `sockets` more files: raises its soft limit to the hard
/// one with `prlimit` when needed (allowed for one's own processes); fails when even the hard
/// limit is too low. Returns (soft, hard, raised to).
async fn make_room(pid: u32, sockets: usize) -> anyhow::Result<(String, String, Option<String>)> {
    let (soft, hard) = files_limit(&pid.to_string())?;
    let need = (open_files(pid)? + sockets + HEADROOM) as u64;
    ensure!(hard >= need, "process {pid} may open {hard} files, the soak needs {need}: ask for fewer --connections");
    if soft >= need {
        return Ok((limit_text(soft), limit_text(hard), None));
    }
    let status = Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--nofile={0}:{0}", limit_text(hard)))
        .status()
        .await
        .context("run prlimit")?;
    ensure!(status.success(), "prlimit could not raise the soft limit of open files of {pid}");
    Ok((limit_text(soft), limit_text(hard), Some(limit_text(hard))))
}

/// Waits until `pid` has at most `limit` files open: sockets of a finished phase take a moment
/// to leave the server, and the next phase needs their files.
async fn settle_files(pid: u32, limit: usize) -> anyhow::Result<()> {
    let t = Instant::now();
    while open_files(pid)? > limit {
        ensure!(t.elapsed() < SETTLE_TIMEOUT, "process {pid} still has {} files open", open_files(pid)?);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

// ---- the worker ---------------------------------------------------------------------------------

/// What a worker says on its stdout, one JSON line each.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Event {
    /// URLs read; waiting for `go`.
    Ready { sockets: usize },
    /// Every socket is open or failed.
    Open { opened: usize, failed: usize, connect_ns: Vec<u64>, errors: Vec<String> },
    /// Answer to `status`: sockets open now, data frames received since they opened.
    Status { open: usize, frames: u64 },
    /// Answer to `close` (or any other line, or the end of stdin): the last words.
    Closed { still_open: usize, frames: u64 },
}

type Ws = WebSocketStream<tokio::net::TcpStream>;

/// Where a socket goes: the URL, and the address in it.
#[derive(Debug, Clone)]
struct Target {
    url: String,
    addr: SocketAddr,
}

impl Target {
    fn parse(url: &str) -> anyhow::Result<Self> {
        let rest = url.strip_prefix("ws://").with_context(|| format!("not a ws:// URL: {url}"))?;
        let authority = rest.split('/').next().unwrap_or(rest);
        let addr = authority.parse().with_context(|| format!("{authority} is not an IP address and port"))?;
        Ok(Self { url: url.to_owned(), addr })
    }
}

/// The `k`-th client source address: 250 hosts per /24 of 127.0.0.0/8 (last octet 2..=251), so
/// none is a network or broadcast address or the servers' own 127.0.0.1.
#[must_use]
pub fn source_addr(k: u32) -> Ipv4Addr {
    let (block, host) = (k / 250, k % 250);
    Ipv4Addr::from(0x7F00_0000 | ((block & 0xFFFF) << 8) | (host + 2))
}

/// Reads frames until one of type `kind`; returns it.
async fn until(ws: &mut Ws, kind: &str) -> anyhow::Result<Value> {
    loop {
        match ws.next().await.context("closed by the server")?.context("read")? {
            Message::Text(text) => {
                let frame: Value = serde_json::from_str(text.as_str()).context("a frame that is not JSON")?;
                if frame["type"] == kind {
                    return Ok(frame);
                }
            }
            Message::Close(_) => bail!("closed before a {kind} frame"),
            _ => {}
        }
    }
}

/// Opens a WebSocket from `source` (any free port of it), through to a `kind` frame if given.
async fn connect(target: &Target, source: Ipv4Addr, kind: Option<&str>) -> anyhow::Result<Ws> {
    let socket = tokio::net::TcpSocket::new_v4().context("socket")?;
    socket.bind(SocketAddr::new(source.into(), 0)).with_context(|| format!("bind {source}"))?;
    let stream = socket.connect(target.addr).await.context("connect")?;
    stream.set_nodelay(true)?;
    // The load generator's one configuration (its small read buffer), as in every scenario.
    let config = Some(crate::client::config());
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(target.url.as_str(), stream, config).await.context("handshake")?;
    if let Some(kind) = kind {
        until(&mut ws, kind).await?;
    }
    Ok(ws)
}

/// A worker's shared counters.
#[derive(Debug, Default)]
struct Counters {
    alive: AtomicUsize,
    frames: AtomicU64,
}

/// Opens one socket once a slot is free, timing the connect itself (not the wait for the slot).
async fn open_one(
    target: &Target,
    source: Ipv4Addr,
    kind: Option<&str>,
    slots: &Semaphore,
) -> anyhow::Result<(Ws, u64)> {
    let _slot = slots.acquire().await?;
    let t = Instant::now();
    let ws = tokio::time::timeout(CONNECT_TIMEOUT, connect(target, source, kind)).await.context("timed out")??;
    Ok((ws, nanos(t.elapsed())))
}

/// Reads the socket until told to stop (then true: still open) or until the server closes it.
/// Reading is what answers the server's pings.
async fn hold(mut ws: Ws, counters: &Counters, stop: &mut watch::Receiver<bool>) -> bool {
    loop {
        tokio::select! {
            _ = stop.changed() => return true,
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(_) | Message::Binary(_))) => {
                    counters.frames.fetch_add(1, Ordering::Relaxed);
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => return false,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// One socket's life in a worker: open, report, hold. Returns whether it was open at the end.
async fn socket_task(
    target: Target,
    source: Ipv4Addr,
    kind: Option<String>,
    slots: Arc<Semaphore>,
    report: mpsc::UnboundedSender<Result<u64, String>>,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) -> bool {
    let opened = tokio::select! {
        r = open_one(&target, source, kind.as_deref(), &slots) => r,
        _ = stop.changed() => return false,
    };
    let ws = match opened {
        Ok((ws, ns)) => {
            counters.alive.fetch_add(1, Ordering::Relaxed);
            let _ = report.send(Ok(ns));
            ws
        }
        Err(e) => {
            let _ = report.send(Err(format!("{e:#}")));
            return false;
        }
    };
    drop(report);
    let open = hold(ws, &counters, &mut stop).await;
    if !open {
        counters.alive.fetch_sub(1, Ordering::Relaxed);
    }
    open
}

/// The lines of stdin, read on a thread of their own (this crate's tokio has no async stdin);
/// the channel closes at the end of stdin.
fn stdin_lines() -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn emit(event: &Event) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string(event)?)?;
    out.flush()?;
    Ok(())
}

/// `parley-bench soak-client`: reads its URLs, says `ready`, waits for `go`, opens every socket
/// (`in_flight` at a time), says `open` with the counts and each connect time, then holds them:
/// `status` is answered, any other line, the end of stdin or the deadline closes everything and
/// ends the worker with `closed`.
///
/// # Errors
/// If the URL file cannot be read or stdout is gone.
pub async fn client(p: &ClientParams) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(p.deadline_secs);
    let text = std::fs::read_to_string(&p.urls).with_context(|| format!("{}", p.urls.display()))?;
    let targets: Vec<Target> =
        text.lines().filter(|l| !l.trim().is_empty()).map(Target::parse).collect::<Result<_, _>>()?;
    emit(&Event::Ready { sockets: targets.len() })?;
    let mut commands = stdin_lines();
    match tokio::time::timeout_at(deadline, commands.recv()).await {
        Ok(Some(line)) if line.trim() == "go" => {}
        _ => return Ok(()),
    }
    let n = targets.len();
    let (stop, stopped) = watch::channel(false);
    let counters = Arc::new(Counters::default());
    let slots = Arc::new(Semaphore::new(p.in_flight.max(1)));
    let (report, mut reports) = mpsc::unbounded_channel();
    let mut tasks = Vec::with_capacity(n);
    for (i, target) in targets.into_iter().enumerate() {
        let source = source_addr(p.first_source + u32::try_from(i).unwrap_or(u32::MAX) % p.sources.max(1));
        let task = socket_task(
            target,
            source,
            p.until.clone(),
            slots.clone(),
            report.clone(),
            counters.clone(),
            stopped.clone(),
        );
        tasks.push(tokio::spawn(task));
    }
    drop(report);
    let (mut connect_ns, mut errors, mut failed) = (Vec::with_capacity(n), Vec::new(), 0);
    while let Ok(Some(r)) = tokio::time::timeout_at(deadline, reports.recv()).await {
        match r {
            Ok(ns) => connect_ns.push(ns),
            Err(e) => {
                failed += 1;
                if errors.len() < 5 {
                    errors.push(e);
                }
            }
        }
    }
    emit(&Event::Open { opened: connect_ns.len(), failed, connect_ns, errors })?;
    while let Ok(Some(line)) = tokio::time::timeout_at(deadline, commands.recv()).await {
        if line.trim() != "status" {
            break;
        }
        let (open, frames) = (counters.alive.load(Ordering::Relaxed), counters.frames.load(Ordering::Relaxed));
        emit(&Event::Status { open, frames })?;
    }
    let _ = stop.send(true);
    let mut still_open = 0;
    for t in tasks {
        still_open += usize::from(t.await.unwrap_or(false));
    }
    emit(&Event::Closed { still_open, frames: counters.frames.load(Ordering::Relaxed) })
}

// ---- driving the workers ------------------------------------------------------------------------

/// A running worker and its pipes.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Worker {
    async fn next(&mut self) -> anyhow::Result<Event> {
        let line = self.lines.next_line().await?.context("a soak worker exited early")?;
        serde_json::from_str(&line).with_context(|| format!("a soak worker said: {line}"))
    }

    async fn say(&mut self, line: &str) -> anyhow::Result<()> {
        self.stdin.write_all(format!("{line}\n").as_bytes()).await?;
        self.stdin.flush().await?;
        Ok(())
    }
}

/// The workers of one phase, each with its share of the sockets.
struct Fleet {
    workers: Vec<Worker>,
}

impl Fleet {
    /// Tells every (ready) worker to go and waits until each has opened all it can.
    async fn open_all(&mut self) -> anyhow::Result<Opened> {
        let t = Instant::now();
        for w in &mut self.workers {
            w.say("go").await?;
        }
        let events = futures_util::future::try_join_all(self.workers.iter_mut().map(Worker::next)).await?;
        let secs = t.elapsed().as_secs_f64();
        let (mut opened, mut failed, mut samples, mut errors) = (0, 0, Vec::new(), Vec::new());
        for e in events {
            let Event::Open { opened: o, failed: f, connect_ns, errors: e } = e else {
                bail!("a soak worker answered go with {e:?}")
            };
            (opened, failed) = (opened + o, failed + f);
            samples.extend(connect_ns);
            errors.extend(e.into_iter().take(5 - errors.len().min(5)));
        }
        let over_1s = samples.iter().filter(|&&ns| ns >= 1_000_000_000).count();
        Ok(Opened {
            over_1s,
            asked: opened + failed,
            opened,
            failed,
            secs,
            per_sec: opened as f64 / secs.max(1e-9),
            connect_ms: Percentiles::of(&mut samples, 1e6),
            errors,
        })
    }

    /// Sockets open now and data frames received so far, over all workers.
    async fn status(&mut self) -> anyhow::Result<(usize, u64)> {
        for w in &mut self.workers {
            w.say("status").await?;
        }
        let events = futures_util::future::try_join_all(self.workers.iter_mut().map(Worker::next)).await?;
        events.into_iter().try_fold((0, 0), |(open, frames), e| match e {
            Event::Status { open: o, frames: f } => Ok((open + o, frames + f)),
            other => bail!("a soak worker answered status with {other:?}"),
        })
    }

    /// Closes every socket and waits for the workers to exit; returns sockets still open then.
    async fn close(mut self) -> anyhow::Result<usize> {
        for w in &mut self.workers {
            w.say("close").await?;
        }
        let mut still_open = 0;
        for w in &mut self.workers {
            match w.next().await? {
                Event::Closed { still_open: n, .. } => still_open += n,
                other => bail!("a soak worker answered close with {other:?}"),
            }
            let exit =
                tokio::time::timeout(SETTLE_TIMEOUT, w.child.wait()).await.context("a worker did not exit")??;
            ensure!(exit.success(), "a soak worker exited with {exit}");
        }
        Ok(still_open)
    }
}

/// What every phase shares: the parameters, the binary and the source addresses handed out so
/// far (each phase takes fresh ones, so no port of an earlier phase is still in `TIME_WAIT`).
struct Load<'a> {
    p: &'a Params,
    bench_bin: PathBuf,
    next_source: u32,
    scratch: tempfile::TempDir,
    files: usize,
}

impl Load<'_> {
    /// Starts `processes` workers sharing `urls`, each waiting for `go`.
    async fn fleet(&mut self, urls: &[String], kind: Option<&str>) -> anyhow::Result<Fleet> {
        let share = urls.len().div_ceil(self.p.processes.max(1)).max(1);
        let mut workers = Vec::new();
        for chunk in urls.chunks(share) {
            self.files += 1;
            let file = self.scratch.path().join(format!("urls-{}.txt", self.files));
            std::fs::write(&file, chunk.join("\n")).context("write a worker's URLs")?;
            let sources = u32::try_from(chunk.len().div_ceil(self.p.per_source.max(1))).context("sources")?;
            let mut cmd = Command::new(&self.bench_bin);
            cmd.arg("soak-client").arg("--urls").arg(&file);
            cmd.args(["--first-source", &self.next_source.to_string(), "--sources", &sources.to_string()]);
            cmd.args(["--in-flight", &self.p.in_flight.to_string()]);
            cmd.args(["--deadline-secs", &self.p.worker_deadline_secs.to_string()]);
            if let Some(kind) = kind {
                cmd.args(["--until", kind]);
            }
            self.next_source += sources;
            workers.push(spawn_worker(cmd).await?);
        }
        Ok(Fleet { workers })
    }

    /// Opens `urls` with a fresh fleet, closes them again, and waits until `pid` let them go.
    async fn storm(&mut self, pid: u32, urls: &[String], kind: Option<&str>) -> anyhow::Result<Opened> {
        let before = open_files(pid)?;
        let mut fleet = self.fleet(urls, kind).await?;
        let opened = fleet.open_all().await?;
        fleet.close().await?;
        settle_files(pid, before + HEADROOM / 4).await?;
        Ok(opened)
    }
}

async fn spawn_worker(mut cmd: Command) -> anyhow::Result<Worker> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("start a soak worker")?;
    let stdin = child.stdin.take().context("worker stdin")?;
    let lines = BufReader::new(child.stdout.take().context("worker stdout")?).lines();
    let mut w = Worker { child, stdin, lines };
    match w.next().await? {
        Event::Ready { .. } => Ok(w),
        other => bail!("a soak worker started with {other:?}"),
    }
}

// ---- the phases ----------------------------------------------------------------------------------

/// The bare echo as a process of its own (`parley-bench echo-server`).
struct EchoProcess {
    child: Child,
    url: String,
    pid: u32,
}

impl EchoProcess {
    async fn start(bench_bin: &Path) -> anyhow::Result<Self> {
        let (child, url) = crate::process::echo_process(bench_bin).await?;
        let pid = child.id().context("echo pid")?;
        Ok(Self { child, url, pid })
    }
}

/// The echo process holding `connections` sockets: its memory per connection.
async fn echo_idle(load: &mut Load<'_>, echo: &EchoProcess) -> anyhow::Result<EchoIdle> {
    make_room(echo.pid, load.p.connections).await?;
    let before = open_files(echo.pid)?;
    let mut fleet = load.fleet(&vec![echo.url.clone(); load.p.connections], None).await?;
    let rss_before_kib = rss_kib(echo.pid)?;
    let open = fleet.open_all().await?;
    let rss_holding_kib = rss_kib(echo.pid)?;
    fleet.close().await?;
    settle_files(echo.pid, before + HEADROOM / 4).await?;
    let kib_per_connection = (rss_holding_kib - rss_before_kib).max(0.0) / open.opened.max(1) as f64;
    Ok(EchoIdle { open, rss_before_kib, rss_holding_kib, kib_per_connection })
}

/// Creates `n` chats of the fixture tenant, `concurrency` requests at once; their visitor tokens
/// in creation order, and the figures.
async fn create_chats(
    server: &ServerProcess,
    tenant: Tenant,
    n: usize,
    concurrency: usize,
    ticks: f64,
) -> anyhow::Result<(Vec<String>, Chats)> {
    let pid = server.pid().context("parley pid")?;
    let cpu0 = cpu_ticks(pid)?;
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let tenant = Arc::new(tenant);
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (next, tenant, base) = (next.clone(), tenant.clone(), server.base.clone());
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return anyhow::Ok(done);
                }
                let t = Instant::now();
                let (_, token) = tenant.start_chat(&base, &format!("Visitor {i}"), None).await?;
                done.push((i, token, nanos(t.elapsed()), started.elapsed()));
            }
        }));
    }
    let mut done = Vec::with_capacity(n);
    for t in tasks {
        done.extend(t.await.context("chat creator")??);
    }
    let secs = started.elapsed().as_secs_f64();
    done.sort_by_key(|d| d.3);
    let finished: Vec<Duration> = done.iter().map(|d| d.3).collect();
    let last = done.last().context("no chats")?.1.clone();
    let mut samples: Vec<u64> = done.iter().map(|d| d.2).collect();
    done.sort_by_key(|d| d.0);
    let tokens: Vec<String> = done.into_iter().map(|d| d.1).collect();

    // The engine starts each chat after its request answered; it answers in order, so once a
    // socket of the last chat hears its place every chat has been started.
    let t = Instant::now();
    let target = Target::parse(&visitor_url(&server.ws_base(), &last))?;
    let mut ws = connect(&target, Ipv4Addr::LOCALHOST, None).await?;
    let queue = tokio::time::timeout(DRAIN_TIMEOUT, until(&mut ws, "queue")).await.context("engine drain")??;
    let engine_drain_secs = t.elapsed().as_secs_f64();
    drop(ws);
    let server_cpu_secs = (cpu_ticks(pid)? - cpu0) as f64 / ticks;
    let chats = Chats {
        chats: n,
        concurrency,
        secs,
        per_sec: n as f64 / secs,
        request_ms: Percentiles::of(&mut samples, 1e6),
        per_sec_by_tenth: tenths(&finished),
        engine_drain_secs,
        last_position: queue["position"].as_u64().unwrap_or(0),
        server_cpu_secs,
    };
    Ok((tokens, chats))
}

/// Completions per second in each tenth of `finished` (sorted completion times).
fn tenths(finished: &[Duration]) -> Vec<f64> {
    let n = finished.len();
    let mut rates = Vec::new();
    let mut from = (0, Duration::ZERO);
    for k in 1..=10 {
        let upto = k * n / 10;
        if upto == from.0 {
            continue;
        }
        let at = finished[upto - 1];
        rates.push((upto - from.0) as f64 / (at - from.1).as_secs_f64().max(1e-9));
        from = (upto, at);
    }
    rates
}

fn visitor_url(ws_base: &str, token: &str) -> String {
    format!("{ws_base}/ws/v1/visitor?token={token}&since_seq=0")
}

/// Opens every widget, then measures memory and, over the idle window, CPU; runs the dequeue
/// probe while they are still held, then closes them.
async fn idle_soak(
    load: &mut Load<'_>,
    server: &ServerProcess,
    tokens: &[String],
    ticks: f64,
) -> anyhow::Result<(Idle, Dequeue)> {
    let pid = server.pid().context("parley pid")?;
    let urls: Vec<String> = tokens.iter().map(|t| visitor_url(&server.ws_base(), t)).collect();
    let (soft, hard, raised_to) = make_room(pid, urls.len()).await?;
    let files_before = open_files(pid)?;
    let mut fleet = load.fleet(&urls, Some("queue")).await?;
    let rss_before_kib = rss_kib(pid)?;
    let open = fleet.open_all().await?;
    let rss_holding_kib = rss_kib(pid)?;
    let holding = open_files(pid)?;

    let (_, frames0) = fleet.status().await?;
    let cpu0 = cpu_ticks(pid)?;
    let t = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(load.p.idle_secs)).await;
    let cpu_secs = (cpu_ticks(pid)? - cpu0) as f64 / ticks;
    let idle_secs = t.elapsed().as_secs_f64();
    let rss_end_kib = rss_kib(pid)?;
    let (held, frames1) = fleet.status().await?;

    let dequeue = dequeue_probe(&mut fleet, server, &tokens[0], held, ticks).await?;
    fleet.close().await?;
    settle_files(pid, files_before + HEADROOM / 4).await?;
    let idle = Idle {
        held,
        rss_before_kib,
        rss_holding_kib,
        rss_end_kib,
        kib_per_connection: (rss_holding_kib - rss_before_kib).max(0.0) / open.opened.max(1) as f64,
        idle_secs,
        cpu_secs,
        cpu_percent: 100.0 * cpu_secs / idle_secs,
        frames: frames1 - frames0,
        files: Files { soft, hard, raised_to, before: files_before, holding },
        open,
    };
    Ok((idle, dequeue))
}

/// Ends the chat of `token` (at the head of the queue) from a second socket, and waits until
/// every one of the `waiting` held visitors behind it has heard its new place.
async fn dequeue_probe(
    fleet: &mut Fleet,
    server: &ServerProcess,
    token: &str,
    waiting: usize,
    ticks: f64,
) -> anyhow::Result<Dequeue> {
    let pid = server.pid().context("parley pid")?;
    let target = Target::parse(&visitor_url(&server.ws_base(), token))?;
    let mut ws = connect(&target, Ipv4Addr::LOCALHOST, None).await?;
    let position = until(&mut ws, "queue").await?["position"].as_u64().context("queue position")?;
    let behind = waiting.saturating_sub(usize::try_from(position).unwrap_or(usize::MAX));
    let (_, frames0) = fleet.status().await?;
    let cpu0 = cpu_ticks(pid)?;
    let t = Instant::now();
    ws.send(Message::text(r#"{"type":"end"}"#)).await.context("send end")?;
    // The ended chat's own socket gets a few entries too: a handful among thousands.
    let mut frames = 0;
    while (frames as usize) < behind && t.elapsed() < PROBE_TIMEOUT {
        tokio::time::sleep(Duration::from_millis(10)).await;
        frames = fleet.status().await?.1 - frames0;
    }
    let secs = t.elapsed().as_secs_f64();
    let server_cpu_ms = (cpu_ticks(pid)? - cpu0) as f64 / ticks * 1e3;
    drop(ws);
    Ok(Dequeue { position, behind, frames, secs, server_cpu_ms })
}

fn check(p: &Params) -> anyhow::Result<()> {
    ensure!(p.connections > 0 && p.storm_connections > 0, "--connections and --storm-connections must be positive");
    ensure!(
        p.processes > 0 && p.in_flight > 0 && p.per_source > 0,
        "--processes, --in-flight, --per-source must be positive"
    );
    ensure!(p.storm_connections <= p.connections, "--storm-connections reuses the soak's chats: at most --connections");
    // The workers inherit this process's limit of open files.
    let (soft, _) = files_limit("self")?;
    let share = p.connections.div_ceil(p.processes);
    ensure!(
        soft >= (share + HEADROOM) as u64,
        "a worker would hold {share} sockets but may open {soft} files: ask for more --processes"
    );
    Ok(())
}

/// Runs the soak: the echo's memory and storm, Parley's chats, idle soak, dequeue probe and
/// storm, the echo's storm again.
///
/// # Errors
/// If a process does not start, a phase cannot run, or the machine lacks the files for it.
pub async fn run(p: &Params) -> anyhow::Result<Report> {
    check(p)?;
    let run = RunInfo::now();
    let bench_bin = match &p.bench_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe().context("the bench binary")?,
    };
    let params = Params { bench_bin: Some(bench_bin.clone()), ..p.clone() };
    let ticks = clock_ticks().await;
    let scratch = tempfile::tempdir().context("scratch folder")?;
    let mut load = Load { p, bench_bin, next_source: 0, scratch, files: 0 };

    let mut echo = EchoProcess::start(&load.bench_bin).await?;
    let echo_idle = echo_idle(&mut load, &echo).await?;
    let echo_urls = vec![echo.url.clone(); p.storm_connections];
    let echo_before = load.storm(echo.pid, &echo_urls, None).await?;

    let dir = tempfile::tempdir().context("data folder")?;
    let server = ServerProcess::start(&p.parley_bin, dir.path()).await?;
    let pid = server.pid().context("parley pid")?;
    let tenant = fixtures::tenant(&server.base, "soak", 1).await?;
    let (tokens, chats) = create_chats(&server, tenant, p.connections, p.chat_concurrency, ticks).await?;
    let (idle, dequeue) = idle_soak(&mut load, &server, &tokens, ticks).await?;
    let urls: Vec<String> = tokens[..p.storm_connections].iter().map(|t| visitor_url(&server.ws_base(), t)).collect();
    let parley = load.storm(pid, &urls, Some("hello")).await?;
    server.terminate().await?;

    let echo_after = load.storm(echo.pid, &echo_urls, None).await?;
    echo.child.kill().await.context("stop the echo process")?;

    let echo_rate = echo_before.per_sec.min(echo_after.per_sec);
    let storm = Storm {
        ratio: parley.per_sec / echo_rate.max(1e-9),
        noisy: moved(echo_before.per_sec, echo_after.per_sec),
        echo_before,
        parley,
        echo_after,
    };
    let rows = rows(p, &idle, &echo_idle, &storm);
    let a1_pass = rows.iter().filter(|r| r.id == "A1").all(|r| r.pass);
    Ok(Report {
        scenario: "soak",
        run,
        params,
        clock_ticks_per_sec: ticks,
        chats,
        idle,
        echo_idle,
        dequeue,
        storm,
        a1_pass,
        rows,
    })
}

fn moved(a: f64, b: f64) -> bool {
    let hi = a.max(b);
    hi > 0.0 && (a - b).abs() / hi > NOISE
}

fn rows(p: &Params, idle: &Idle, echo: &EchoIdle, storm: &Storm) -> Vec<Row> {
    // RSS in decimal MB, as the goal is written; CPU as a share of one core.
    let rss_mb = idle.rss_holding_kib.max(idle.rss_end_kib) * 1024.0 / 1e6;
    let held = idle.held as f64;
    let r4 = idle.kib_per_connection / echo.kib_per_connection.max(1e-9);
    let storm_row = Row::new(
        "storm",
        "connects/s ÷ bare echo's",
        storm.parley.per_sec,
        storm.echo_before.per_sec.min(storm.echo_after.per_sec),
        ">= 0.5",
        storm.ratio >= STORM_MIN,
    )
    .noisy(storm.noisy);
    vec![
        Row::new("A1", "idle widgets held (goal: all)", held, p.connections as f64, "= 1", idle.held == p.connections),
        Row::new("A1", "server RSS holding them, MB (goal MB)", rss_mb, A1_RSS_MB, "<= 1", rss_mb <= A1_RSS_MB),
        Row::new(
            "A1",
            "server CPU while idle, % of a core (goal %)",
            idle.cpu_percent,
            A1_CPU_PERCENT,
            "<= 1",
            idle.cpu_percent <= A1_CPU_PERCENT,
        ),
        Row::new(
            "R4",
            "KiB per idle widget ÷ bare echo's (soak's sockets)",
            idle.kib_per_connection,
            echo.kib_per_connection,
            "<= 1.5",
            r4 <= R4_MAX,
        ),
        storm_row,
    ]
}

// ---- Markdown -------------------------------------------------------------------------------------

fn opened_row(s: &mut String, label: &str, o: &Opened) {
    let _ = writeln!(
        s,
        "| {label} | {} | {} | {} | {:.2} | {:.0} | {:.2} / {:.2} / {:.2} | {} |",
        o.asked, o.opened, o.failed, o.secs, o.per_sec, o.connect_ms.p50, o.connect_ms.p99, o.connect_ms.max, o.over_1s
    );
}

/// The Markdown report.
#[must_use]
pub fn markdown(r: &Report) -> String {
    let p = &r.params;
    let mut s = String::from("# Idle soak and connect storm\n\n");
    s.push_str(&r.run.markdown());
    let _ = writeln!(
        s,
        "\nParameters: {} idle widgets over {} client processes ({} handshakes in flight each, {} sockets per source \
         address), {} s idle window, {} sockets per storm, chats created {} at a time.\n",
        p.connections, p.processes, p.in_flight, p.per_source, p.idle_secs, p.storm_connections, p.chat_concurrency
    );
    s.push_str(&report::table(&r.rows));
    let _ = writeln!(s, "\nA1 (all held, RSS, idle CPU): **{}**.", if r.a1_pass { "pass" } else { "FAIL" });
    s.push_str("The storm's goal (≥ 0.5 of the bare echo) is this bench's, not the spec's.\n");

    s.push_str("\n| sockets opened | asked | opened | failed | s | per s | connect ms p50 / p99 / max | ≥ 1 s |\n");
    s.push_str("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
    opened_row(&mut s, "echo, held (handshake)", &r.echo_idle.open);
    opened_row(&mut s, "echo storm before (handshake)", &r.storm.echo_before);
    opened_row(&mut s, "Parley widgets, held (to `queue`)", &r.idle.open);
    opened_row(&mut s, "Parley storm (to `hello`)", &r.storm.parley);
    opened_row(&mut s, "echo storm after (handshake)", &r.storm.echo_after);
    for e in r.idle.open.errors.iter().chain(&r.storm.parley.errors) {
        let _ = writeln!(s, "\nParley socket failure: `{e}`");
    }

    let (i, e) = (&r.idle, &r.echo_idle);
    let _ = writeln!(
        s,
        "\nIdle soak: server RSS {:.1} MiB before, {:.1} MiB holding, {:.1} MiB after the idle window \
         ({:.2} KiB per widget; the bare echo {:.2} KiB: {:.1} → {:.1} MiB). CPU {:.2} s over {:.1} s; \
         {} data frames reached the idle clients. Open files {} before, {} holding; limit {} soft, {} hard{}.",
        i.rss_before_kib / 1024.0,
        i.rss_holding_kib / 1024.0,
        i.rss_end_kib / 1024.0,
        i.kib_per_connection,
        e.kib_per_connection,
        e.rss_before_kib / 1024.0,
        e.rss_holding_kib / 1024.0,
        i.cpu_secs,
        i.idle_secs,
        i.frames,
        i.files.before,
        i.files.holding,
        i.files.soft,
        i.files.hard,
        i.files.raised_to.as_ref().map(|v| format!(", soft raised to {v} by this bench")).unwrap_or_default(),
    );
    let d = &r.dequeue;
    let _ = writeln!(
        s,
        "\nDequeue probe: the chat at place {} ended; {} waiting visitors behind it had {} frames within {:.3} s, \
         {:.0} ms of server CPU.",
        d.position, d.behind, d.frames, d.secs, d.server_cpu_ms
    );
    let c = &r.chats;
    let tenths: Vec<String> = c.per_sec_by_tenth.iter().map(|v| format!("{v:.0}")).collect();
    let _ = writeln!(
        s,
        "\nChat creation (not part of the figures): {} chats in {:.1} s ({:.0}/s), request p50 {:.1} ms, p99 {:.1} ms; \
         per tenth of the run: {}/s. The engine caught up {:.2} s after the last answer (last chat at place {}). \
         Server CPU {:.1} s.",
        c.chats,
        c.secs,
        c.per_sec,
        c.request_ms.p50,
        c.request_ms.p99,
        tenths.join(", "),
        c.engine_drain_secs,
        c.last_position,
        c.server_cpu_secs
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_addresses_skip_network_broadcast_and_the_server() {
        assert_eq!(source_addr(0), Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(source_addr(249), Ipv4Addr::new(127, 0, 0, 251));
        assert_eq!(source_addr(250), Ipv4Addr::new(127, 0, 1, 2));
        assert_eq!(source_addr(250 * 256), Ipv4Addr::new(127, 1, 0, 2));
    }

    #[test]
    fn open_files_limits_are_parsed() {
        let limits =
            "Limit Soft Hard Units\nMax open files            1024                 20000                files     \n";
        assert_eq!(parse_files_limit(limits).unwrap(), (1024, 20000));
        let limits = "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_files_limit(limits).unwrap(), (u64::MAX, u64::MAX));
    }

    #[test]
    fn tenths_rate_each_slice_of_completions() {
        let finished: Vec<Duration> = (1..=20).map(|i| Duration::from_millis(i * 100)).collect();
        let rates = tenths(&finished);
        assert_eq!(rates.len(), 10);
        assert!(rates.iter().all(|r| (r - 10.0).abs() < 1e-6), "{rates:?}");
    }

    #[test]
    fn worker_events_read_back() {
        let line = serde_json::to_string(&Event::Status { open: 3, frames: 7 }).unwrap();
        assert_eq!(line, r#"{"event":"status","open":3,"frames":7}"#);
        assert!(matches!(serde_json::from_str(&line).unwrap(), Event::Status { open: 3, frames: 7 }));
    }
}
