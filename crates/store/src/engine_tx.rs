//! The logic of `Store::commit_engine` that both backends share: the writes in their order, the
//! log entries among them batched as the group-commit writer batches them, everything inside the
//! caller's one transaction. A backend supplies one statement per kind of write ([`EngineTx`]).

use crate::append::{self, LogTx};
use crate::{EngineWrite, NewEntry, Result, StoreError};
use parley_domain::{LogEntry, TenantId};
use std::future::Future;

/// The statements of [`EngineTx::write`], the same text on both backends (only the bound
/// types differ; PostgreSQL casts the states' text to `jsonb` in its own two).
pub(crate) mod statements {
    pub(crate) const STATUS: &str =
        "UPDATE conversations SET status = $3, agent_id = $4, ended_at = $5 WHERE tenant_id = $1 AND id = $2";
    pub(crate) const AGENT_ALIAS: &str = "UPDATE conversations SET agent_alias = $3 WHERE tenant_id = $1 AND id = $2";
    pub(crate) const TRANSFERRED: &str = "UPDATE conversations SET service_id = $3, workflow_id = $4, workflow_version = $5 WHERE tenant_id = $1 AND id = $2";
    pub(crate) const OUTCOME: &str =
        "UPDATE conversations SET outcome = $3, outcome_reason = $4 WHERE tenant_id = $1 AND id = $2";
    pub(crate) const WORKFLOW_RUN: &str = "UPDATE conversations SET workflow_run = $3 WHERE tenant_id = $1 AND id = $2";
    pub(crate) const QUEUE_ENTRY: &str =
        "UPDATE conversations SET queued_at = $3, priority = $4 WHERE tenant_id = $1 AND id = $2";
    pub(crate) const USER_SESSION: &str = "INSERT INTO user_sessions (id, tenant_id, conversation_id, service_id, user_id, outcome, offered_at, answered_at, ended_at, ring_secs, connected_secs) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
    pub(crate) const SERVICE_SESSION: &str = "INSERT INTO service_sessions (id, tenant_id, conversation_id, service_id, outcome, user_id, started_at, ended_at, ivr_secs, queue_secs, connected_secs, offers) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
    pub(crate) const PRESENCE: &str = "UPDATE users SET presence = $3 WHERE tenant_id = $1 AND id = $2";
    pub(crate) const CHAT_STATE: &str = "INSERT INTO engine_chats (tenant_id, conversation_id, state) VALUES ($1, $2, $3) ON CONFLICT (tenant_id, conversation_id) DO UPDATE SET state = excluded.state";
    pub(crate) const FORGET_CHAT: &str = "DELETE FROM engine_chats WHERE tenant_id = $1 AND conversation_id = $2";
    pub(crate) const AGENT_STATE: &str = "INSERT INTO engine_agents (tenant_id, user_id, state) VALUES ($1, $2, $3) ON CONFLICT (tenant_id, user_id) DO UPDATE SET state = excluded.state";
    pub(crate) const FORGET_AGENT: &str = "DELETE FROM engine_agents WHERE tenant_id = $1 AND user_id = $2";
}

/// One statement per kind of write other than a log entry, run inside the caller's transaction.
pub(crate) trait EngineTx: LogTx {
    /// Writes `w` for `tenant`; a row of another tenant is `NotFound`.
    fn write(&mut self, tenant: TenantId, w: &EngineWrite) -> impl Future<Output = Result<()>> + Send;
}

/// Runs every write in order on `tx` (already inside a transaction) and returns the log entries
/// appended. `Err` means the transaction must be rolled back.
pub(crate) async fn commit_all<T: EngineTx>(
    tx: &mut T,
    tenant: TenantId,
    writes: &[EngineWrite],
) -> Result<Vec<LogEntry>> {
    let mut appended = Vec::new();
    let mut rest = writes;
    while let Some(first) = rest.first() {
        let run = rest.iter().take_while(|w| matches!(w, EngineWrite::Append { .. })).count();
        if run == 0 {
            check_tenant(tenant, first)?;
            tx.write(tenant, first).await?;
            rest = &rest[1..];
            continue;
        }
        let entries: Vec<NewEntry> = rest[..run].iter().filter_map(|w| entry(tenant, w)).collect();
        for outcome in append::append_all(tx, &entries).await? {
            appended.push(outcome?.entry);
        }
        rest = &rest[run..];
    }
    Ok(appended)
}

fn entry(tenant: TenantId, w: &EngineWrite) -> Option<NewEntry> {
    match w {
        EngineWrite::Append { conversation, body, created_at } => Some(NewEntry {
            tenant_id: tenant,
            conversation_id: *conversation,
            client_msg_id: None,
            body: body.clone(),
            created_at: *created_at,
        }),
        _ => None,
    }
}

/// A reporting row names its tenant itself: it must be the one committing.
fn check_tenant(tenant: TenantId, w: &EngineWrite) -> Result<()> {
    let named = match w {
        EngineWrite::UserSession(s) => s.tenant_id,
        EngineWrite::ServiceSession(s) => s.tenant_id,
        _ => return Ok(()),
    };
    if named == tenant { Ok(()) } else { Err(StoreError::NotFound) }
}
