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
//!   durable paths ([`relay`]), and a table of ratios to them with goals and verdicts.
//!
//! Figures are reported, never asserted: the smoke test only checks that reports come out and
//! that their counts agree. Being a tool, errors are plain `anyhow` errors.

pub mod ceilings;
pub mod offer_latency;
pub mod process;
pub mod relay;
pub mod report;
pub mod routing;
pub mod stats;
pub mod suite;
