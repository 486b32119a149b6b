//! Writing a scenario's report, and what every report says about the run.

use anyhow::Context;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Where and how a report was taken.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    /// Wall-clock start, RFC 3339 UTC.
    pub started_at: String,
    /// `release` or `debug`; debug figures say nothing about speed.
    pub build: &'static str,
    /// CPUs this process may use.
    pub cpus: usize,
    /// The checked-out commit, `-dirty` when the working tree has changes (`None` outside git).
    pub commit: Option<String>,
}

impl RunInfo {
    /// Describes the run starting now.
    #[must_use]
    #[allow(clippy::disallowed_methods)] // a report says when it was made: the wall clock, in a tool
    pub fn now() -> Self {
        Self {
            started_at: OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default(),
            build: if cfg!(debug_assertions) { "debug" } else { "release" },
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            commit: commit(),
        }
    }

    /// The Markdown lines saying when and how the run was taken.
    #[must_use]
    pub fn markdown(&self) -> String {
        let commit = self.commit.as_deref().unwrap_or("unknown");
        let mut s = format!("Run {} — {} build, {} CPUs, commit {commit}.\n", self.started_at, self.build, self.cpus);
        if self.build == "debug" {
            s.push_str("\n**Debug build: these figures say nothing about speed; use `--release`.**\n");
        }
        s
    }
}

/// `git rev-parse --short HEAD`, with `-dirty` when `git status` lists changes.
fn commit() -> Option<String> {
    let git = |args: &[&str]| {
        let out = Command::new("git").args(args).output().ok().filter(|o| o.status.success())?;
        String::from_utf8(out.stdout).ok()
    };
    let head = git(&["rev-parse", "--short", "HEAD"])?;
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.trim().is_empty());
    Some(format!("{}{}", head.trim(), if dirty { "-dirty" } else { "" }))
}

/// The files one report went to, and its Markdown text.
#[derive(Debug, Clone)]
pub struct Written {
    pub json_path: PathBuf,
    pub markdown_path: PathBuf,
    pub markdown: String,
}

/// Writes `dir/name.json` and `dir/name.md`, creating `dir` when missing.
///
/// # Errors
/// If the folder or a file cannot be written.
pub fn write(dir: &Path, name: &str, report: &impl Serialize, markdown: &str) -> anyhow::Result<Written> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let json_path = dir.join(format!("{name}.json"));
    let markdown_path = dir.join(format!("{name}.md"));
    let mut json = serde_json::to_string_pretty(report)?;
    json.push('\n');
    std::fs::write(&json_path, json).with_context(|| format!("writing {}", json_path.display()))?;
    std::fs::write(&markdown_path, markdown).with_context(|| format!("writing {}", markdown_path.display()))?;
    Ok(Written { json_path, markdown_path, markdown: markdown.to_owned() })
}

/// One line of a goals table: a figure, the ceiling it is held against (for an absolute goal,
/// the bound itself, so the ratio reads as a share of it), and the verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub id: &'static str,
    pub measure: &'static str,
    pub value: f64,
    pub ceiling: f64,
    pub ratio: f64,
    /// What the ratio must be, as text (`>= 0.5`, `<= 1`, `= 1`).
    pub goal: &'static str,
    pub pass: bool,
    /// A ceiling moved more than 10 % between its two measurements: the ratio is not to be trusted.
    pub noisy: bool,
}

impl Row {
    /// A row whose verdict the caller decided.
    #[must_use]
    pub fn new(
        id: &'static str,
        measure: &'static str,
        value: f64,
        ceiling: f64,
        goal: &'static str,
        pass: bool,
    ) -> Self {
        let ratio = if ceiling > 0.0 { value / ceiling } else { 0.0 };
        Self { id, measure, value, ceiling, ratio, goal, pass, noisy: false }
    }

    /// A row whose ratio must be at least `min`.
    #[must_use]
    pub fn at_least(
        id: &'static str,
        measure: &'static str,
        value: f64,
        ceiling: f64,
        min: f64,
        goal: &'static str,
    ) -> Self {
        let row = Self::new(id, measure, value, ceiling, goal, false);
        Self { pass: row.ratio >= min, ..row }
    }

    /// A row whose ratio must be at most `max`.
    #[must_use]
    pub fn at_most(
        id: &'static str,
        measure: &'static str,
        value: f64,
        ceiling: f64,
        max: f64,
        goal: &'static str,
    ) -> Self {
        let row = Self::new(id, measure, value, ceiling, goal, false);
        Self { pass: ceiling > 0.0 && row.ratio <= max, ..row }
    }

    /// The same row, NOISY when `noisy`.
    #[must_use]
    pub fn noisy(self, noisy: bool) -> Self {
        Self { noisy, ..self }
    }

    fn verdict(&self) -> &'static str {
        match (self.pass, self.noisy) {
            (true, false) => "pass",
            (false, false) => "FAIL",
            (true, true) => "pass (NOISY)",
            (false, true) => "FAIL (NOISY)",
        }
    }
}

/// The Markdown table of `rows`.
#[must_use]
pub fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| id | measure | value | ceiling | ratio | goal | verdict |\n| --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {:.1} | {:.1} | {:.2} | {} | {} |\n",
            r.id,
            r.measure,
            r.value,
            r.ceiling,
            r.ratio,
            r.goal,
            r.verdict()
        ));
    }
    s
}
