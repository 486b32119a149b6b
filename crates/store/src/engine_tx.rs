//! The logic of `Store::commit_engine` that both backends share: the writes in their order, the
//! log entries among them batched as the group-commit writer batches them, everything inside the
//! caller's one transaction. A backend supplies one statement per kind of write ([`EngineTx`]).

use crate::append::{self, LogTx};
use crate::{EngineWrite, NewEntry, Result, StoreError};
use parley_domain::{LogEntry, TenantId};
use std::future::Future;

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
