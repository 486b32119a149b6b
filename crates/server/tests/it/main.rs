//! Parley's integration tests: one binary, real servers on port 0, real sockets.

// Test code: a failed expectation is the report (clippy.toml allows this inside #[test] only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod acceptance;
mod access;
mod attachments;
mod bad_input;
mod browser;
mod crash;
mod demo;
mod direct;
mod isolation;
mod message_text;
mod passwords;
mod receipts;
mod restart;
mod routing;
mod sdk;
mod shutdown;
mod single_node;
mod supervision;
mod support;
mod system_messages;
mod transcript;
mod typing;
mod walk;
mod widget_language;
mod workflow;
mod workspace_ui;
mod wrap_up;
mod wrap_up_ui;

use parley_testkit::Db;

/// PostgreSQL when configured; CI sets `PARLEY_REQUIRE_POSTGRES=1` so a missing URL fails
/// instead of silently skipping.
pub fn postgres() -> Option<Db> {
    match parley_store::testing::postgres_test_url() {
        Some(url) => Some(Db::Postgres(url)),
        None => {
            assert!(std::env::var_os("PARLEY_REQUIRE_POSTGRES").is_none(), "PARLEY_TEST_DATABASE_URL must be set");
            eprintln!("skipped: PARLEY_TEST_DATABASE_URL is not set");
            None
        }
    }
}

/// Entries of a list of frames, by `seq`.
pub fn seqs(frames: &[serde_json::Value]) -> Vec<i64> {
    frames.iter().filter_map(|f| f["entry"]["seq"].as_i64()).collect()
}
