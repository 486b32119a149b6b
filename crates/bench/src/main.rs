//! `parley-bench`: runs one of Parley's benchmark scenarios and writes its report (a tool; see the
//! library's documentation and `docs/benchmarks.md`).

use anyhow::Context;
use clap::{Parser, Subcommand};
use parley_bench::{coldstart, crash, load, offer_latency, report, routing, set, soak, suite};
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
    /// Idle soak (A1: widgets held, RSS, idle CPU) and connect storm of the `parley` binary.
    Soak(soak::Params),
    /// A client worker of `soak`: opens and holds sockets, driven through stdin and stdout.
    #[command(hide = true)]
    SoakClient(soak::ClientParams),
    /// `kill -9` of the `parley` binary under load, restart, resume (A4: nothing lost or duplicated).
    Crash(crash::Params),
    /// Agents holding every chat: typing closed-loop (R1), messages at a fixed rate (R5, A2), slow
    /// consumers (A7), and the bare echo at the same rate.
    Load(load::Params),
    /// Cold start on a data folder with open chats and messages (A5 with data): listening and ready.
    ColdStart(coldstart::Params),
    /// Runs a scenario set from a file and writes one table of every goal (`set.md`, `set.json`).
    Run(set::RunArgs),
    /// Serves the bare echo and prints its URL (the suite's memory ceiling runs it as a process).
    #[command(hide = true)]
    EchoServer,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().context("tokio runtime")?;
    let written = match &cli.command {
        Command::Routing(params) => {
            let r = routing::run(params)?;
            report::write(&cli.out, "routing", &r, &routing::markdown(&r))?
        }
        Command::OfferLatency(params) => {
            let r = runtime.block_on(offer_latency::run(params))?;
            report::write(&cli.out, "offer-latency", &r, &offer_latency::markdown(&r))?
        }
        Command::Suite(params) => {
            let r = runtime.block_on(suite::run(params))?;
            report::write(&cli.out, "suite", &r, &suite::markdown(&r))?
        }
        Command::Soak(params) => {
            let r = runtime.block_on(soak::run(params))?;
            report::write(&cli.out, "soak", &r, &soak::markdown(&r))?
        }
        Command::SoakClient(params) => {
            return runtime.block_on(soak::client(params));
        }
        Command::Crash(params) => {
            let r = runtime.block_on(crash::run(params))?;
            report::write(&cli.out, "crash", &r, &crash::markdown(&r))?
        }
        Command::Load(params) => {
            let r = runtime.block_on(load::run(params))?;
            report::write(&cli.out, "load", &r, &load::markdown(&r))?
        }
        Command::ColdStart(params) => {
            let r = runtime.block_on(coldstart::run(params))?;
            report::write(&cli.out, "cold-start", &r, &coldstart::markdown(&r))?
        }
        Command::Run(args) => {
            let r = runtime.block_on(set::run(args, &cli.out))?;
            report::write(&cli.out, "set", &r, &set::markdown(&r))?
        }
        Command::EchoServer => {
            return runtime.block_on(parley_bench::process::serve_echo());
        }
    };
    print!("{}", written.markdown);
    println!("\nwritten: {} and {}", written.json_path.display(), written.markdown_path.display());
    Ok(())
}
