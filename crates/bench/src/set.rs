//! `run`: a scenario set read from a file (`crates/bench/scenarios/*.toml`), every parameter of
//! every scenario written out there, run one after the other; each scenario writes its own
//! report, and the set writes `set.json` / `set.md`: one table of every goal of
//! ../shared/spec/performance.md with its value, ceiling, ratio and verdict.
//!
//! The machine-specific part (which `parley` binary) comes from the command line, not the file.

use crate::report::{self, Row, RunInfo};
use crate::{coldstart, crash, load, offer_latency, routing, soak, suite};
use anyhow::Context;
use clap::Args;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `parley-bench run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The scenario set, a TOML file with one table per scenario.
    pub scenarios: PathBuf,
    /// The `parley` binary the process scenarios start.
    #[arg(long)]
    pub parley_bin: PathBuf,
}

/// A scenario set: each table present runs, with exactly the parameters it gives (a missing or
/// unknown one is an error, so the file says everything).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Set {
    pub routing: Option<routing::Params>,
    pub offer_latency: Option<offer_latency::Params>,
    pub suite: Option<suite::Params>,
    pub load: Option<load::Params>,
    pub crash: Option<crash::Params>,
    pub cold_start: Option<coldstart::Params>,
    pub soak: Option<soak::Params>,
}

/// The set's report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub run: RunInfo,
    pub file: String,
    pub set: Set,
    pub rows: Vec<Row>,
}

/// Reads a set file.
///
/// # Errors
/// If it cannot be read or is not a complete set.
pub fn read(path: &Path) -> anyhow::Result<Set> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{} is not a scenario set", path.display()))
}

/// Runs the set, writing each scenario's report into `out` as it finishes.
///
/// # Errors
/// The first scenario that fails.
pub async fn run(args: &RunArgs, out: &Path) -> anyhow::Result<Report> {
    let mut set = read(&args.scenarios)?;
    let bin = Some(args.parley_bin.clone());
    let run = RunInfo::now();
    let mut rows = Vec::new();
    if let Some(p) = &set.routing {
        let r = routing::run(p)?;
        report::write(out, "routing", &r, &routing::markdown(&r))?;
        let m = &r.measured;
        rows.push(Row::at_least(
            "A3",
            "routing decisions/s in memory (goal /s)",
            m.decisions_per_sec,
            100_000.0,
            1.0,
            ">= 1",
        ));
    }
    if let Some(p) = &set.offer_latency {
        let r = offer_latency::run(p).await?;
        report::write(out, "offer-latency", &r, &offer_latency::markdown(&r))?;
        rows.push(Row::at_most(
            "A3",
            "new chat → offer p99 ms, one at a time (goal ms)",
            r.offer_ms.p99,
            20.0,
            1.0,
            "<= 1",
        ));
    }
    if let Some(p) = set.suite.as_mut() {
        p.parley_bin.clone_from(&bin);
        let r = suite::run(p).await?;
        report::write(out, "suite", &r, &suite::markdown(&r))?;
        rows.extend(r.rows);
    }
    if let Some(p) = set.load.as_mut() {
        p.parley_bin.clone_from(&args.parley_bin);
        let r = load::run(p).await?;
        report::write(out, "load", &r, &load::markdown(&r))?;
        rows.extend(r.rows);
    }
    if let Some(p) = set.crash.as_mut() {
        p.parley_bin.clone_from(&args.parley_bin);
        let r = crash::run(p).await?;
        report::write(out, "crash", &r, &crash::markdown(&r))?;
        let broken = (r.after_restart.lost + r.after_resend.lost) as f64;
        let doubled = (r.after_restart.duplicates + r.after_resend.duplicates) as f64;
        rows.push(Row::new("A4", "acknowledged messages lost after kill -9", broken, 0.0, "= 0", broken == 0.0));
        rows.push(Row::new("A4", "duplicates after resume", doubled, 0.0, "= 0", doubled == 0.0 && r.pass));
    }
    if let Some(p) = set.cold_start.as_mut() {
        p.parley_bin.clone_from(&args.parley_bin);
        let r = coldstart::run(p).await?;
        report::write(out, "cold-start", &r, &coldstart::markdown(&r))?;
        let g = &r.goal;
        rows.push(Row::new(g.id, g.measure, g.value_ms, g.goal_ms, "<= 1", g.pass));
    }
    if let Some(p) = set.soak.as_mut() {
        p.parley_bin.clone_from(&args.parley_bin);
        let r = soak::run(p).await?;
        report::write(out, "soak", &r, &soak::markdown(&r))?;
        rows.extend(r.rows);
    }
    rows.sort_by_key(|r| goal_order(r.id));
    Ok(Report { run, file: args.scenarios.display().to_string(), set, rows })
}

/// R1…R5, then A1…A7, then the bench's own rows.
fn goal_order(id: &str) -> (u8, u8) {
    let n = id.get(1..).and_then(|n| n.parse().ok()).unwrap_or(u8::MAX);
    match id.chars().next() {
        Some('R') => (0, n),
        Some('A') => (1, n),
        _ => (2, n),
    }
}

/// The Markdown report.
#[must_use]
pub fn markdown(r: &Report) -> String {
    let mut s = format!("# Performance: every goal\n\n{}\nScenario set: `{}`.\n\n", r.run.markdown(), r.file);
    s.push_str(&report::table(&r.rows));
    s.push_str(
        "\nEach scenario's own report (same folder) gives its parameters, ceilings measured before and \
         after, server CPU and memory.\n",
    );
    s
}
