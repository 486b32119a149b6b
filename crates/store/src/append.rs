//! The logic of `Store::append_batch` that both backends share: idempotency, seq assignment,
//! per-entry outcomes and the fall back to one transaction per entry.
//!
//! A backend supplies two statements ([`LogTx`]) and a way to run a batch in one transaction;
//! everything that decides what an entry's outcome is lives here, once, so SQLite and PostgreSQL
//! cannot disagree about it.

use crate::sql::CLIENT_MSG_ID;
use crate::{Appended, NewEntry, Result, StoreError};
use parley_domain::LogEntry;
use std::future::Future;

/// The statements of one append, run inside the caller's transaction.
pub(crate) trait LogTx: Send {
    /// Writes the entry at its conversation's next seq (`last_seq` + 1, advancing `last_seq`)
    /// and returns that seq; writes nothing and returns `None` when the tenant has no such
    /// conversation or the entry's `client_msg_id` is already used in it. One statement, so the
    /// common case costs one round trip.
    fn insert_next(&mut self, entry: &NewEntry) -> impl Future<Output = Result<Option<i64>>> + Send;

    /// The entry of `entry`'s conversation (and tenant) already written with `key`.
    fn find_by_client_msg_id(
        &mut self,
        entry: &NewEntry,
        key: &str,
    ) -> impl Future<Output = Result<Option<LogEntry>>> + Send;
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
    if let Some(seq) = tx.insert_next(e).await? {
        let entry = LogEntry {
            conversation_id: e.conversation_id,
            seq,
            client_msg_id: e.client_msg_id.clone(),
            body: e.body.clone(),
            created_at: e.created_at,
        };
        return Ok(Ok(Appended { entry, duplicate: false }));
    }
    // Nothing written: the key was used before (in an earlier commit or earlier in this very
    // transaction, which the look-up sees too), or there is no such conversation.
    if let Some(key) = e.client_msg_id.as_deref()
        && let Some(entry) = tx.find_by_client_msg_id(e, key).await?
    {
        return Ok(Ok(Appended { entry, duplicate: true }));
    }
    Ok(Err(StoreError::NotFound))
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
