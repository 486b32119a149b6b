//! Liveness and readiness probes.

use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use parley_domain::TenantId;
use serde::Serialize;
use std::sync::atomic::Ordering;

/// Probe answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`, or what is not ready.
    pub status: &'static str,
}

/// Readiness, with what is down and how often engines failed since the start.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ok`, `shutting_down`, `store_unavailable`, `engine_down` or `log_writer_down`.
    pub status: &'static str,
    /// Tenants whose engine is not serving now (rebuilding after a failure, or starting).
    pub engines_down: Vec<EngineDown>,
    /// Whether the conversation log's writer commits.
    pub log_writer_up: bool,
    pub counters: Counters,
}

/// A tenant engine that is not serving.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EngineDown {
    pub tenant_id: TenantId,
    /// Why, for an operator.
    pub reason: String,
}

/// How often things failed since the process started.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Counters {
    /// Tenant engines rebuilt after a failure.
    pub engine_restarts: u64,
    /// Engine inputs or rebuilds whose store writes failed (nothing of them was kept).
    pub engine_store_failures: u64,
    /// Engine inputs or rebuilds that panicked.
    pub engine_panics: u64,
    /// Log batches that failed as a whole.
    pub log_writer_failures: u64,
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The process can serve: the store answers, every tenant engine serves, the log writer commits
/// and shutdown has not begun.
#[utoipa::path(get, path = "/readyz", tag = "health", responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let health = state.engines.health();
    let writer = state.log.health();
    let engines_down: Vec<EngineDown> =
        health.down().into_iter().map(|(tenant_id, reason)| EngineDown { tenant_id, reason }).collect();
    let status = if state.shutdown.is_cancelled() {
        "shutting_down"
    } else if let Err(e) = state.store.ping().await {
        tracing::warn!(error = %e, "readiness: store not reachable");
        "store_unavailable"
    } else if !engines_down.is_empty() {
        "engine_down"
    } else if !writer.up {
        "log_writer_down"
    } else {
        "ok"
    };
    let counters = Counters {
        engine_restarts: health.restarts.load(Ordering::Relaxed),
        engine_store_failures: health.store_failures.load(Ordering::Relaxed),
        engine_panics: health.panics.load(Ordering::Relaxed),
        log_writer_failures: writer.failures,
    };
    let code = if status == "ok" { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(Readiness { status, engines_down, log_writer_up: writer.up, counters }))
}
