//! Parley's benchmarks, as a command-line tool (`parley-bench`); not part of the server.
//!
//! Each scenario runs with every parameter explicit on the command line and writes a JSON report
//! and a Markdown table into an output folder (`artifacts/bench/` by default):
//!
//! - [`routing`]: the pure [`parley_engine::router::Router`] in process, offers made per second of
//!   wall time with a fixed number of agents and waiting chats (performance goal A3);
//! - [`offer_latency`]: a real in-process server (the testkit's), the time from a widget's
//!   "start chat" request until the agent's socket receives the offer;
//! - [`suite`]: [`ceilings`] (bare echo, raw SQLite, fsync) measured before and after Parley's
//!   durable paths ([`relay`]), and a table of ratios to them with goals and verdicts;
//! - [`load`]: the `parley` binary with agents holding every chat: typing relayed closed-loop,
//!   messages at a fixed rate timed until the agent has them, slow consumers, and the bare echo
//!   at the same rate (goals R1, R5, A2, A7);
//! - [`crash`]: the `parley` binary killed with SIGKILL under open-loop load, restarted on its
//!   data folder, every visitor resuming and resending: acknowledged messages lost, duplicated or
//!   reordered (goal A4), and the restart time after the crash;
//! - [`coldstart`]: the `parley` binary started on a data folder filled with open chats and
//!   messages: until it listens (goal A5 with data) and until its engine has rebuilt the queue;
//! - [`soak`]: the `parley` binary holding thousands of idle widget sockets (goal A1: memory and
//!   idle CPU) and taking a connect storm, next to a bare echo process, with client worker
//!   processes spread over 127.0.0.0/8.
//!
//! [`set`] runs any of them from a scenario file (`crates/bench/scenarios/`) and writes one table
//! of every goal.
//!
//! Figures are reported, never asserted: the smoke test only checks that reports come out and
//! that their counts agree. Being a tool, errors are plain `anyhow` errors.

pub mod ceilings;
pub mod client;
pub mod coldstart;
pub mod crash;
pub mod load;
pub mod offer_latency;
pub mod process;
pub mod relay;
pub mod report;
pub mod routing;
pub mod set;
pub mod soak;
pub mod stats;
pub mod suite;
