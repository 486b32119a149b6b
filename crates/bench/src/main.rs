//! `parley-bench`: runs one of Parley's benchmark scenarios and writes its report (a tool; see the
//! library's documentation and `docs/benchmarks.md`).

use anyhow::Context;
use clap::{Parser, Subcommand};
use parley_bench::{offer_latency, report, routing, suite};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "parley-bench", about = "Parley's benchmarks: each writes a JSON report and a Markdown table")]
struct Cli {
    /// Folder for the reports (created when missing).
    #[arg(long, global = true, default_value = "artifacts/bench")]
    out: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Routing decisions per second of the pure router, in process.
    Routing(routing::Params),
    /// New chat → offer latency on a real in-process server.
    OfferLatency(offer_latency::Params),
    /// Ceilings, Parley's durable relay and log rates, ceilings again: ratios and verdicts.
    Suite(suite::Params),
    /// Serves the bare echo and prints its URL (the suite's memory ceiling runs it as a process).
    #[command(hide = true)]
    EchoServer,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let written = match &cli.command {
        Command::Routing(params) => {
            let r = routing::run(params)?;
            report::write(&cli.out, "routing", &r, &routing::markdown(&r))?
        }
        Command::OfferLatency(params) => {
            let runtime = tokio::runtime::Runtime::new().context("tokio runtime")?;
            let r = runtime.block_on(offer_latency::run(params))?;
            report::write(&cli.out, "offer-latency", &r, &offer_latency::markdown(&r))?
        }
        Command::Suite(params) => {
            let runtime = tokio::runtime::Runtime::new().context("tokio runtime")?;
            let r = runtime.block_on(suite::run(params))?;
            report::write(&cli.out, "suite", &r, &suite::markdown(&r))?
        }
        Command::EchoServer => {
            let runtime = tokio::runtime::Runtime::new().context("tokio runtime")?;
            return runtime.block_on(parley_bench::process::serve_echo());
        }
    };
    print!("{}", written.markdown);
    println!("\nwritten: {} and {}", written.json_path.display(), written.markdown_path.display());
    Ok(())
}
