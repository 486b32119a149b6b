//! Test support for Parley: spawning servers, WebSocket and HTTP helpers, a WebDriver client for headless Chromium.

// Test support (a dev-dependency only): a panic fails the test that asked, which is its report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod client;
pub mod fixtures;
pub mod host;
pub mod server;
pub mod webdriver;

pub use client::{Api, Download, Reply, Ws};
pub use server::{Db, ServerProcess, TestServer};
