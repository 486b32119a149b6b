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
    /// Scenarios that failed; their goals are missing from `rows`.
    pub failed: Vec<Failure>,
}

/// Reads a set file.
///
/// # Errors
/// If it cannot be read or is not a complete set.
pub fn read(path: &Path) -> anyhow::Result<Set> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{} is not a scenario set", path.display()))
}

/// Runs the set, writing each scenario's report into `out` as it finishes. A scenario that fails
/// is recorded with its error and the set goes on: one broken scenario must not cost the others'
/// figures.
///
/// # Errors
/// If the set file cannot be read.
pub async fn run(args: &RunArgs, out: &Path) -> anyhow::Result<Report> {
    let mut set = read(&args.scenarios)?;
    let run = RunInfo::now();
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    let bin = &args.parley_bin;
    let mut record = |scenario: &'static str, outcome: anyhow::Result<Vec<Row>>| match outcome {
        Ok(r) => rows.extend(r),
        Err(e) => failed.push(Failure { scenario, error: format!("{e:#}") }),
    };
    if let Some(p) = &set.routing {
        record("routing", run_routing(p, out));
    }
    if let Some(p) = &set.offer_latency {
        record("offer-latency", run_offer_latency(p, out).await);
    }
    if let Some(p) = set.suite.as_mut() {
        p.parley_bin = Some(bin.clone());
        record("suite", run_suite(p, out).await);
    }
    if let Some(p) = set.load.as_mut() {
        p.parley_bin.clone_from(bin);
        record("load", run_load(p, out).await);
    }
    if let Some(p) = set.crash.as_mut() {
        p.parley_bin.clone_from(bin);
        record("crash", run_crash(p, out).await);
    }
    if let Some(p) = set.cold_start.as_mut() {
        p.parley_bin.clone_from(bin);
        record("cold-start", run_cold_start(p, out).await);
    }
    if let Some(p) = set.soak.as_mut() {
        p.parley_bin.clone_from(bin);
        record("soak", run_soak(p, out).await);
    }
    rows.sort_by_key(|r| goal_order(r.id));
    Ok(Report { run, file: args.scenarios.display().to_string(), set, rows, failed })
}

fn run_routing(p: &routing::Params, out: &Path) -> anyhow::Result<Vec<Row>> {
    let r = routing::run(p)?;
    report::write(out, "routing", &r, &routing::markdown(&r))?;
    let per_sec = r.measured.decisions_per_sec;
    Ok(vec![Row::at_least("A3", "routing decisions/s in memory (goal /s)", per_sec, 100_000.0, 1.0, ">= 1")])
}

async fn run_offer_latency(p: &offer_latency::Params, out: &Path) -> anyhow::Result<Vec<Row>> {
    let r = offer_latency::run(p).await?;
    report::write(out, "offer-latency", &r, &offer_latency::markdown(&r))?;
    let measure = "new chat → offer p99 ms, one at a time (goal ms)";
    Ok(vec![Row::at_most("A3", measure, r.offer_ms.p99, 20.0, 1.0, "<= 1")])
}

async fn run_suite(p: &suite::Params, out: &Path) -> anyhow::Result<Vec<Row>> {
    let r = suite::run(p).await?;
    report::write(out, "suite", &r, &suite::markdown(&r))?;
    Ok(r.rows)
}

async fn run_load(p: &load::Params, out: &Path) -> anyhow::Result<Vec<Row>> {
    let r = load::run(p).await?;
    report::write(out, "load", &r, &load::markdown(&r))?;
    Ok(r.rows)
}

async fn run_crash(p: &crash::Params, out: &Path) -> anyhow::Result<Vec<Row>> {
    let r = crash::run(p).await?;
    report::write(out, "crash", &r, &crash::markdown(&r))?;
    let lost = (r.after_restart.lost + r.after_resend.lost) as f64;
    let doubled = (r.after_restart.duplicates + r.after_resend.duplicates) as f64;
    Ok(vec![
        Row::new("A4", "acknowledged messages lost after kill -9", lost, 0.0, "= 0", lost == 0.0),
        Row::new("A4", "duplicates after resume (order kept)", doubled, 0.0, "= 0", doubled == 0.0 && r.pass),
    ])
}

async fn run_cold_start(p: &coldstart::Params, out: &Path) -> anyhow::Result<Vec<Row>> {
    let r = coldstart::run(p).await?;
    report::write(out, "cold-start", &r, &coldstart::markdown(&r))?;
    let g = &r.goal;
    Ok(vec![Row::new(g.id, g.measure, g.value_ms, g.goal_ms, "<= 1", g.pass)])
}

async fn run_soak(p: &soak::Params, out: &Path) -> anyhow::Result<Vec<Row>> {
    let r = soak::run(p).await?;
    report::write(out, "soak", &r, &soak::markdown(&r))?;
    Ok(r.rows)
}

/// A scenario that did not finish.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub scenario: &'static str,
    pub error: String,
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
    for f in &r.failed {
        s.push_str(&format!("\n**{} failed**: {}\n", f.scenario, f.error));
    }
    s.push_str(
        "\nEach scenario's own report (same folder) gives its parameters, ceilings measured before and \
         after, server CPU and memory.\n",
    );
    s
}
