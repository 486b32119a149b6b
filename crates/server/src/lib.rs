//! The Parley server: configuration, HTTP API, WebSockets, pages, the tenant engines that run
//! workflows and routing, and the `parley` command line. It wires the pure cores (`domain`,
//! `engine`) to the adapters (`store`); those crates must never depend on this one.

pub mod api;
pub mod app;
pub mod auth;
pub mod bus;
pub mod cli;
pub mod clock;
pub mod config;
pub mod cors;
pub mod demo;
pub mod error;
pub mod extract;
pub mod files;
pub mod http;
pub mod openapi;
pub mod outbound;
pub mod pages;
pub mod passwords;
pub mod state;
pub mod telemetry;
pub mod tenant_engine;
pub mod workflow_host;
pub mod ws;
