//! The logic of `Store::append_batch` that both backends share: idempotency, seq assignment,
//! per-entry outcomes and the fall back to one transaction per entry.
//!
//! A backend supplies three statements ([`LogTx`]) and a way to run a batch in one transaction;
//! everything that decides what an entry's outcome is lives here, once, so SQLite and PostgreSQL
//! cannot disagree about it.

use crate::sql::CLIENT_MSG_ID;
use crate::{Appended, NewEntry, Result, StoreError};
use parley_domain::LogEntry;
use std::future::Future;

/// The statements of one append, run inside the caller's transaction.
pub(crate) trait LogTx: Send {
    /// The entry of `entry`'s conversation (and tenant) already written with `key`.
    fn find_by_client_msg_id(
        &mut self,
        entry: &NewEntry,
        key: &str,
    ) -> impl Future<Output = Result<Option<LogEntry>>> + Send;

    /// Bumps the conversation's `last_seq` and returns the new value; `None` when the tenant has
    /// no such conversation. On PostgreSQL this also takes the conversation's row lock until
    /// commit, which is what orders concurrent appenders from several nodes.
    fn next_seq(&mut self, entry: &NewEntry) -> impl Future<Output = Result<Option<i64>>> + Send;

    /// Writes the entry at `seq`.
    fn insert(&mut self, entry: &NewEntry, seq: i64) -> impl Future<Output = Result<()>> + Send;
}

/// Appends `entries` on `tx` (already inside a transaction) and returns each one's outcome in
/// input order. `Err` means the transaction must be rolled back: a statement failed.
pub(crate) async fn append_all<T: LogTx>(tx: &mut T, entries: &[NewEntry]) -> Result<Vec<Result<Appended>>> {
    // Visit conversations in one global order (stable, so seq still follows input order within a
    // conversation): two nodes' batches then take conversation row locks in the same order and
    // cannot deadlock each other.
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| entries[i].conversation_id);

    let mut outcomes = Vec::with_capacity(entries.len());
    for i in order {
        outcomes.push((i, append_one(tx, &entries[i]).await?));
    }
    outcomes.sort_unstable_by_key(|(i, _)| *i);
    Ok(outcomes.into_iter().map(|(_, outcome)| outcome).collect())
}

async fn append_one<T: LogTx>(tx: &mut T, e: &NewEntry) -> Result<Result<Appended>> {
    if let Some(key) = e.client_msg_id.as_deref() {
        // Sees this transaction's own earlier inserts too, so a key repeated within one batch is
        // a duplicate of its first occurrence without any bookkeeping here.
        if let Some(entry) = tx.find_by_client_msg_id(e, key).await? {
            return Ok(Ok(Appended { entry, duplicate: true }));
        }
    }
    let Some(seq) = tx.next_seq(e).await? else {
        return Ok(Err(StoreError::NotFound));
    };
    tx.insert(e, seq).await?;
    let entry = LogEntry {
        conversation_id: e.conversation_id,
        seq,
        client_msg_id: e.client_msg_id.clone(),
        body: e.body.clone(),
        created_at: e.created_at,
    };
    Ok(Ok(Appended { entry, duplicate: false }))
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
