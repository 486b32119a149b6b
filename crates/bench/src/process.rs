//! Figures of the `parley` binary as a process: its size (goal A6), how long it takes to accept
//! connections from an empty data folder (A5, empty case), and the memory each idle widget
//! connection costs it next to a bare echo process's (R4), read from `/proc/<pid>/status`; and
//! the `/proc` readers every process scenario uses (resident memory, CPU time).
//!
//! The bare echo runs as a process of its own (`parley-bench echo-server`), so both sides of the
//! memory ratio are whole processes measured the same way.

use crate::ceilings;
use crate::stats::{Percentiles, nanos};
use anyhow::{Context, ensure};
use parley_testkit::{ServerProcess, fixtures};
use serde::Serialize;
use std::path::Path;
use std::time::Instant;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// The binary and its start.
#[derive(Debug, Clone, Serialize)]
pub struct Startup {
    pub binary_bytes: u64,
    /// Spawn until it logs that it listens, empty data folder, in milliseconds.
    pub cold_start_ms: Percentiles,
}

/// Idle connections' memory.
#[derive(Debug, Clone, Serialize)]
pub struct IdleMemory {
    pub connections: usize,
    /// Resident memory added per idle visitor socket of Parley, in KiB.
    pub parley_kib_per_connection: f64,
    /// The same for the bare echo process.
    pub echo_kib_per_connection: f64,
}

/// `VmRSS` of a process, in KiB.
///
/// # Errors
/// If `/proc/<pid>/status` cannot be read or has no `VmRSS` (the process is gone).
pub fn rss_kib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("read /proc status")?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("no VmRSS")?;
    let kib: f64 = line.split_whitespace().nth(1).context("VmRSS value")?.parse()?;
    Ok(kib)
}

/// User plus system CPU of a process so far, in clock ticks (fields 14 and 15 of its `stat`).
///
/// # Errors
/// If the process is gone or its `stat` is not as Linux writes it.
pub fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).context("read /proc stat")?;
    parse_cpu_ticks(&stat)
}

fn parse_cpu_ticks(stat: &str) -> anyhow::Result<u64> {
    // The command name (field 2) may hold spaces and parentheses: count from its last `)`.
    let rest = stat.rsplit_once(')').context("stat: no command name")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> anyhow::Result<u64> { Ok(fields.get(n - 3).context("stat: short")?.parse()?) };
    Ok(field(14)? + field(15)?)
}

/// Clock ticks per second of `/proc` times: `getconf CLK_TCK`, else Linux's 100 (this crate has
/// no unsafe code to call `sysconf` itself).
pub async fn clock_ticks() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().await.ok();
    let text = out.and_then(|o| String::from_utf8(o.stdout).ok());
    text.and_then(|t| t.trim().parse::<f64>().ok()).filter(|t| *t > 0.0).unwrap_or(100.0)
}

/// Size of `bin`, and `runs` cold starts of it.
///
/// # Errors
/// If the binary is missing or does not start.
pub async fn startup(bin: &Path, runs: usize) -> anyhow::Result<Startup> {
    let binary_bytes = std::fs::metadata(bin).with_context(|| format!("{}", bin.display()))?.len();
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let dir = tempfile::tempdir()?;
        let t = Instant::now();
        let server = ServerProcess::start(bin, dir.path()).await?;
        samples.push(nanos(t.elapsed()));
        server.terminate().await?;
    }
    Ok(Startup { binary_bytes, cold_start_ms: Percentiles::of(&mut samples, 1e6) })
}

/// Opens `n` WebSockets to `url` (each read up to its first frame when `greeted`), measures the
/// process's memory before and after, and returns KiB per connection.
async fn per_connection(pid: u32, urls: &[String], greeted: bool) -> anyhow::Result<f64> {
    let before = rss_kib(pid)?;
    let mut sockets = Vec::with_capacity(urls.len());
    for url in urls {
        let mut ws = crate::client::connect(url).await?;
        if greeted {
            use futures_util::StreamExt;
            ws.next().await.context("no hello")??;
        }
        sockets.push(ws);
    }
    // Let the server finish what each connection set up before reading its memory.
    tokio::task::yield_now().await;
    let after = rss_kib(pid)?;
    drop(sockets);
    Ok((after - before).max(0.0) / urls.len().max(1) as f64)
}

/// Memory per idle widget connection of `parley_bin` and of the bare echo (`bench_bin
/// echo-server`), with `connections` connections each.
///
/// # Errors
/// If a process does not start or a connection fails.
pub async fn idle_memory(parley_bin: &Path, bench_bin: &Path, connections: usize) -> anyhow::Result<IdleMemory> {
    ensure!(connections > 0, "idle_memory needs connections");
    let dir = tempfile::tempdir()?;
    let server = ServerProcess::start(parley_bin, dir.path()).await?;
    let pid = server.pid().context("parley pid")?;
    // The chats exist before the measurement: only the sockets are counted.
    let t = fixtures::tenant(&server.base, "idle", 1).await?;
    let mut urls = Vec::with_capacity(connections);
    for i in 0..connections {
        let (_, token) = t.start_chat(&server.base, &format!("Visitor {i}"), None).await?;
        urls.push(format!("{}/ws/v1/visitor?token={token}&since_seq=0", server.ws_base()));
    }
    let parley = per_connection(pid, &urls, true).await?;
    server.terminate().await?;

    let (mut echo, url) = echo_process(bench_bin).await?;
    let echo_pid = echo.id().context("echo pid")?;
    let echo_urls = vec![url; connections];
    let bare = per_connection(echo_pid, &echo_urls, false).await?;
    echo.kill().await?;
    Ok(IdleMemory { connections, parley_kib_per_connection: parley, echo_kib_per_connection: bare })
}

/// Starts `bench_bin echo-server` (the bare echo as a process of its own); returns the child
/// (killed when dropped) and the URL it serves.
///
/// # Errors
/// If it does not start or prints no address.
pub async fn echo_process(bench_bin: &Path) -> anyhow::Result<(tokio::process::Child, String)> {
    let mut echo = Command::new(bench_bin)
        .arg("echo-server")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("start the echo process")?;
    let mut lines = BufReader::new(echo.stdout.take().context("echo stdout")?).lines();
    let url = lines.next_line().await?.context("the echo process printed no address")?;
    Ok((echo, url))
}

/// `parley-bench echo-server`: serves the bare echo and prints its URL (for [`idle_memory`]).
///
/// # Errors
/// If it cannot bind.
pub async fn serve_echo() -> anyhow::Result<()> {
    let (url, task) = ceilings::echo_server().await?;
    println!("{url}");
    task.await.context("echo server")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_read_after_the_command_name() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 1 0 12 0 0";
        assert_eq!(parse_cpu_ticks(stat).unwrap(), 12);
    }
}
