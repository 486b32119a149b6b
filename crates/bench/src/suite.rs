//! The `suite` scenario set: ceilings, then Parley's durable paths, then the ceilings again,
//! and one table giving each figure with its ceiling, ratio, goal and verdict
//! (../shared/spec/performance.md). A ceiling that moved more than 10 % between its two
//! measurements marks its rows NOISY: the machine was busy and the ratio is not to be trusted.

use crate::ceilings::{self, Echo, Fsync, SqliteRows};
use crate::process::{self, IdleMemory, Startup};
use crate::relay::{self, LogRows, Relay};
use crate::report::{self, Row, RunInfo};
use anyhow::Context;
use clap::Args;
use parley_domain::{ConversationId, TenantId};
use parley_testkit::TestServer;
use serde::Serialize;
use std::time::Duration;

/// Every parameter of the suite; the defaults are the documented run.
#[derive(Debug, Clone, Args, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Chats (and echo connections) driven at once, closed-loop.
    #[arg(long, default_value_t = 32)]
    pub chats: usize,
    /// Seconds each closed-loop measurement runs.
    #[arg(long, default_value_t = 5.0)]
    pub secs: f64,
    /// Rows appended to Parley's log (and inserted into the raw SQLite ceiling).
    #[arg(long, default_value_t = 20_000)]
    pub log_rows: usize,
    /// Concurrent log writers; the raw ceiling commits this many rows per transaction, the
    /// most Parley's group commit can put in one.
    #[arg(long, default_value_t = 64)]
    pub writers: usize,
    /// Durable page writes of the fsync probe.
    #[arg(long, default_value_t = 200)]
    pub fsync_writes: usize,
    /// The `parley` binary for the process figures (size, cold start, idle memory); they are
    /// left out without it. Build it with `cargo build --release -p parley-server`.
    #[serde(default, skip_deserializing)]
    #[arg(long)]
    pub parley_bin: Option<std::path::PathBuf>,
    /// Cold starts timed.
    #[arg(long, default_value_t = 5)]
    pub cold_starts: usize,
    /// Idle widget connections whose memory is measured (and as many to the bare echo).
    #[arg(long, default_value_t = 1000)]
    pub idle_connections: usize,
}

/// How far a ceiling may move between its two measurements before the run is NOISY.
const NOISE: f64 = 0.10;

#[derive(Debug, Clone, Serialize)]
pub struct Ceilings {
    pub echo: Echo,
    pub sqlite: SqliteRows,
    pub fsync: Fsync,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub run: RunInfo,
    pub params: Params,
    pub before: Ceilings,
    pub after: Ceilings,
    pub relay: Relay,
    pub log: LogRows,
    /// The raw SQLite ceiling at the mean batch the log reached (R3's ceiling).
    pub raw_at_log_batch: SqliteRows,
    /// With `--parley-bin` only.
    pub startup: Option<Startup>,
    pub idle: Option<IdleMemory>,
    pub rows: Vec<Row>,
}

async fn measure_ceilings(p: &Params, dir: &std::path::Path) -> anyhow::Result<Ceilings> {
    let echo = ceilings::bare_echo(p.chats, Duration::from_secs_f64(p.secs)).await?;
    let sqlite = ceilings::sqlite_rows(dir, p.log_rows, p.writers).await?;
    let fsync = ceilings::fsync(dir, p.fsync_writes)?;
    Ok(Ceilings { echo, sqlite, fsync })
}

fn moved(a: f64, b: f64) -> bool {
    let hi = a.max(b);
    hi > 0.0 && (a - b).abs() / hi > NOISE
}

/// Runs the suite.
///
/// # Errors
/// If a ceiling or the server cannot run.
pub async fn run(p: &Params) -> anyhow::Result<Report> {
    let run = RunInfo::now();
    let dir = tempfile::tempdir().context("scratch folder")?;
    let before = measure_ceilings(p, dir.path()).await?;

    let server = TestServer::sqlite().await;
    let (t, started) = relay::chats(&server, p.chats).await?;
    let relay = relay::durable_relay(&server, &started, Duration::from_secs_f64(p.secs)).await?;
    let tenant = TenantId::from_uuid(t.id.parse().context("tenant id")?);
    let conversations: Vec<ConversationId> = started
        .iter()
        .map(|(id, _)| id.parse().map(ConversationId::from_uuid))
        .collect::<Result<_, _>>()
        .context("conversation ids")?;
    let log = relay::log_rows(&server, tenant, &conversations, p.writers, p.log_rows).await?;
    server.shutdown().await?;
    // The writers cannot always refill a batch while the last one commits: the raw ceiling again,
    // at the batch size Parley's log actually reached.
    let parley_batch = log.mean_batch.round().max(1.0) as usize;
    let raw_at_batch = ceilings::sqlite_rows(dir.path(), p.log_rows, parley_batch).await?;

    let (startup, idle) = match &p.parley_bin {
        Some(bin) => {
            let me = std::env::current_exe().context("the bench binary")?;
            let startup = process::startup(bin, p.cold_starts).await?;
            let idle = process::idle_memory(bin, &me, p.idle_connections).await?;
            (Some(startup), Some(idle))
        }
        None => (None, None),
    };

    let after = measure_ceilings(p, dir.path()).await?;
    let echo_noisy = moved(before.echo.echoes_per_sec, after.echo.echoes_per_sec);
    let sqlite_noisy = moved(before.sqlite.rows_per_sec, after.sqlite.rows_per_sec);
    let echo = before.echo.echoes_per_sec.min(after.echo.echoes_per_sec);
    // The lower of the two ceilings: the machine's worst moment, so a ratio is not flattered.
    let mut rows = vec![
        Row::at_least("R2", "durable relay msgs/s ÷ bare echo", relay.messages_per_sec, echo, 0.5, ">= 0.5")
            .noisy(echo_noisy),
        Row::at_least(
            "R3",
            "log rows/s ÷ raw SQLite at the log's batch",
            log.rows_per_sec,
            raw_at_batch.rows_per_sec,
            0.5,
            ">= 0.5",
        )
        .noisy(sqlite_noisy),
    ];
    if let Some(m) = &idle {
        let (parley, bare) = (m.parley_kib_per_connection, m.echo_kib_per_connection);
        rows.push(Row::at_most(
            "R4",
            "KiB per idle widget ÷ bare echo's (suite's sockets)",
            parley,
            bare,
            1.5,
            "<= 1.5",
        ));
    }
    if let Some(s) = &startup {
        // Absolute goals: the "ceiling" column holds the goal itself, so the ratio reads as a share of it.
        rows.push(Row::at_most("A5", "cold start, empty, p50 ms (goal ms)", s.cold_start_ms.p50, 50.0, 1.0, "<= 1"));
        let mb = s.binary_bytes as f64 / 1_000_000.0;
        rows.push(Row::at_most("A6", "release binary MB (goal MB)", mb, 20.0, 1.0, "<= 1"));
    }
    Ok(Report {
        run,
        params: p.clone(),
        before,
        after,
        relay,
        log,
        raw_at_log_batch: raw_at_batch,
        startup,
        idle,
        rows,
    })
}

/// The Markdown report.
#[must_use]
pub fn markdown(r: &Report) -> String {
    let mut s = String::from("# Benchmark suite\n\n");
    s.push_str(&r.run.markdown());
    s.push_str(&format!(
        "\nParameters: {} chats closed-loop for {} s, {} log rows by {} writers, {} fsync writes.\n\n",
        r.params.chats, r.params.secs, r.params.log_rows, r.params.writers, r.params.fsync_writes
    ));
    s.push_str(&report::table(&r.rows));
    let c = |label: &str, b: f64, a: f64| format!("| {label} | {b:.0} | {a:.0} |\n");
    s.push_str("\n| ceiling | before | after |\n| --- | --- | --- |\n");
    s.push_str(&c("bare echo, echoes/s", r.before.echo.echoes_per_sec, r.after.echo.echoes_per_sec));
    s.push_str(&c("raw SQLite, rows/s", r.before.sqlite.rows_per_sec, r.after.sqlite.rows_per_sec));
    s.push_str(&format!(
        "| raw SQLite at the log's mean batch ({:.1} rows), rows/s | {:.0} | |\n",
        r.log.mean_batch, r.raw_at_log_batch.rows_per_sec
    ));
    s.push_str(&format!(
        "| fsync p50 / p99, ms | {:.3} / {:.3} | {:.3} / {:.3} |\n",
        r.before.fsync.latency_ms.p50,
        r.before.fsync.latency_ms.p99,
        r.after.fsync.latency_ms.p50,
        r.after.fsync.latency_ms.p99
    ));
    s.push_str(&format!(
        "\nDurable relay latency, ms: p50 {:.2}, p99 {:.2} (bare echo p50 {:.2}, p99 {:.2}). Log append latency, ms: p50 {:.2}, p99 {:.2}.\n",
        r.relay.latency_ms.p50, r.relay.latency_ms.p99, r.before.echo.latency_ms.p50, r.before.echo.latency_ms.p99,
        r.log.latency_ms.p50, r.log.latency_ms.p99
    ));
    s
}
