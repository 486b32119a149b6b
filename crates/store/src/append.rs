//! The logic of `Store::append_batch` that both backends share: idempotency, seq assignment,
//! per-entry outcomes and the fall back to one transaction per entry.
//!
//! A backend supplies three set-wise statements ([`LogTx`]) and a way to run a batch in one
//! transaction; everything that decides what an entry's outcome is lives here, once, so SQLite
//! and PostgreSQL cannot disagree about it. A batch costs three round trips whatever its size
//! (read the conversations, look up the keys, insert the rows): the group-commit writer's batch
//! is then bound by the commit, not by one statement per entry.

use crate::sql::CLIENT_MSG_ID;
use crate::{Appended, NewEntry, Result, StoreError};
use parley_domain::{ConversationId, LogEntry, TenantId};
use std::collections::HashMap;
use std::future::Future;

/// A conversation as an append needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub last_seq: i64,
    pub ended: bool,
}

/// The statements of one batch, run inside the caller's transaction.
pub(crate) trait LogTx: Send {
    /// The named conversations that exist in their tenants, keyed by (tenant, id). Where the
    /// backend has row locks, the rows stay locked until commit, taken in the order given
    /// (sorted), so appenders on several nodes queue per conversation and cannot deadlock.
    fn heads(
        &mut self,
        conversations: &[(TenantId, ConversationId)],
    ) -> impl Future<Output = Result<HashMap<(TenantId, ConversationId), Head>>> + Send;

    /// The entries already written under these (tenant, conversation, `client_msg_id`) keys.
    fn keyed(
        &mut self,
        keys: &[(TenantId, ConversationId, &str)],
    ) -> impl Future<Output = Result<Vec<LogEntry>>> + Send;

    /// Writes each entry at its seq (ascending within a conversation) and advances each
    /// conversation's `last_seq` to its highest.
    fn insert(&mut self, rows: &[(&NewEntry, i64)]) -> impl Future<Output = Result<()>> + Send;
}

/// Appends `entries` on `tx` (already inside a transaction) and returns each one's outcome in
/// input order. `Err` means the transaction must be rolled back: a statement failed.
pub(crate) async fn append_all<T: LogTx>(tx: &mut T, entries: &[NewEntry]) -> Result<Vec<Result<Appended>>> {
    let mut conversations: Vec<(TenantId, ConversationId)> =
        entries.iter().map(|e| (e.tenant_id, e.conversation_id)).collect();
    // One global order, so two nodes' batches lock conversation rows in the same order.
    conversations.sort_unstable_by_key(|&(t, c)| (c, t));
    conversations.dedup();
    let mut heads = tx.heads(&conversations).await?;

    let keys: Vec<(TenantId, ConversationId, &str)> = entries
        .iter()
        .filter_map(|e| e.client_msg_id.as_deref().map(|k| (e.tenant_id, e.conversation_id, k)))
        .collect();
    let mut known: HashMap<(ConversationId, String), LogEntry> = HashMap::new();
    if !keys.is_empty() {
        for entry in tx.keyed(&keys).await? {
            if let Some(key) = entry.client_msg_id.clone() {
                known.insert((entry.conversation_id, key), entry);
            }
        }
    }

    // Input order is commit order: within a conversation, seq follows it.
    let mut outcomes = Vec::with_capacity(entries.len());
    let mut rows = Vec::with_capacity(entries.len());
    for e in entries {
        let outcome = decide(e, &mut heads, &mut known);
        if let Ok(Appended { entry, duplicate: false }) = &outcome {
            rows.push((e, entry.seq));
        }
        outcomes.push(outcome);
    }
    if !rows.is_empty() {
        tx.insert(&rows).await?;
    }
    Ok(outcomes)
}

/// One entry's outcome given what the batch knows so far; a new entry takes the next seq and
/// its key, so a repeat later in the same batch answers as a duplicate of it.
fn decide(
    e: &NewEntry,
    heads: &mut HashMap<(TenantId, ConversationId), Head>,
    known: &mut HashMap<(ConversationId, String), LogEntry>,
) -> Result<Appended> {
    let Some(head) = heads.get_mut(&(e.tenant_id, e.conversation_id)) else {
        return Err(StoreError::NotFound);
    };
    if let Some(key) = &e.client_msg_id {
        if let Some(entry) = known.get(&(e.conversation_id, key.clone())) {
            return Ok(Appended { entry: entry.clone(), duplicate: true });
        }
        // A keyed entry comes from a participant, who may no longer write once the chat ended;
        // unkeyed ones are the server's own events, which may follow the end.
        if head.ended {
            return Err(StoreError::NotFound);
        }
    }
    head.last_seq += 1;
    let entry = LogEntry {
        conversation_id: e.conversation_id,
        seq: head.last_seq,
        client_msg_id: e.client_msg_id.clone(),
        body: e.body.clone(),
        created_at: e.created_at,
    };
    if let Some(key) = &e.client_msg_id {
        known.insert((e.conversation_id, key.clone()), entry.clone());
    }
    Ok(Appended { entry, duplicate: false })
}

/// Runs the whole batch in one transaction with `run`; if that fails, runs each entry in its own
/// transaction so one bad entry (or a lost race) cannot fail the others.
pub(crate) async fn with_fallback<'a, F, Fut>(entries: &'a [NewEntry], run: F) -> Vec<Result<Appended>>
where
    F: Fn(&'a [NewEntry]) -> Fut,
    Fut: Future<Output = Result<Vec<Result<Appended>>>>,
{
    if entries.is_empty() {
        return Vec::new();
    }
    match run(entries).await {
        Ok(outcomes) => return outcomes,
        Err(e) => tracing::warn!(error = %e, entries = entries.len(), "append batch failed; retrying entry by entry"),
    }
    let mut outcomes = Vec::with_capacity(entries.len());
    for entry in entries {
        outcomes.push(alone(entry, &run).await);
    }
    outcomes
}

async fn alone<'a, F, Fut>(entry: &'a NewEntry, run: &F) -> Result<Appended>
where
    F: Fn(&'a [NewEntry]) -> Fut,
    Fut: Future<Output = Result<Vec<Result<Appended>>>>,
{
    let one = std::slice::from_ref(entry);
    let mut outcome = run(one).await;
    if matches!(outcome, Err(StoreError::Conflict(CLIENT_MSG_ID))) {
        // Another node committed the same key between our look-up and our insert. Its entry is
        // committed now, so running again finds it and answers with it as a duplicate.
        outcome = run(one).await;
    }
    outcome?.pop().unwrap_or_else(|| Err(StoreError::Other("append returned no outcome".into())))
}
