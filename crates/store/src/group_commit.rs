//! The conversation log's single writer with group commit.
//!
//! Appends from every connection queue up on one channel; the writer takes all that are waiting
//! (up to a batch size), writes them in one transaction with [`Store::append_batch`], then calls
//! the commit hook for each new entry in commit order and only then answers each caller. So a
//! client's acknowledgement always follows the commit, and subscribers see each conversation's
//! entries in `seq` order.

use crate::{Appended, NewEntry, Result, Store, StoreError};
use futures_util::FutureExt;
use parley_domain::{LogEntry, TenantId};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Called once per newly committed entry (never for duplicates), in commit order, before the
/// appender gets its answer. It must not block: hand the entry on and return.
pub trait CommitHook: Send + Sync + 'static {
    fn committed(&self, tenant: TenantId, entry: &LogEntry);
}

impl<F: Fn(TenantId, &LogEntry) + Send + Sync + 'static> CommitHook for F {
    fn committed(&self, tenant: TenantId, entry: &LogEntry) {
        self(tenant, entry);
    }
}

enum Request {
    // Boxed: an entry is large and the channel holds many requests.
    Append(Box<NewEntry>, oneshot::Sender<Result<Appended>>),
    Stop(oneshot::Sender<()>),
}

/// Handle to the writer. Cheap to clone.
#[derive(Clone)]
pub struct ConversationLog {
    tx: mpsc::Sender<Request>,
    store: Arc<dyn Store>,
    counters: Arc<Counters>,
}

/// What the writer has done since it started: how well group commit is batching.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Transactions written.
    pub batches: u64,
    /// Entries in them (new, duplicate or refused).
    pub entries: u64,
}

/// Whether the writer is committing, and how often a whole batch failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterHealth {
    /// The last batch committed (or there was none yet).
    pub up: bool,
    /// Batches that failed as a whole (store unreachable, or a panic in the store).
    pub failures: u64,
}

#[derive(Default)]
struct Counters {
    batches: AtomicU64,
    entries: AtomicU64,
    failures: AtomicU64,
    down: AtomicBool,
}

impl std::fmt::Debug for ConversationLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConversationLog").finish_non_exhaustive()
    }
}

/// Entries waiting beyond this make appenders wait (back-pressure instead of unbounded memory).
const QUEUE_DEPTH: usize = 8192;

impl ConversationLog {
    /// Starts the writer task. `max_batch` bounds one transaction's entries.
    #[must_use]
    pub fn start(store: Arc<dyn Store>, max_batch: usize, hook: Arc<dyn CommitHook>) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let counters = Arc::new(Counters::default());
        let task = tokio::spawn(writer(Arc::clone(&store), rx, max_batch.max(1), hook, Arc::clone(&counters)));
        (Self { tx, store, counters }, task)
    }

    /// Appends one entry and returns once it is committed (or found to be a duplicate).
    ///
    /// # Errors
    /// `NotFound` for an unknown conversation; `Unavailable` once the writer has stopped.
    pub async fn append(&self, entry: NewEntry) -> Result<Appended> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Request::Append(Box::new(entry), reply))
            .await
            .map_err(|_| StoreError::Unavailable("the conversation log is shutting down".into()))?;
        answer.await.map_err(|_| StoreError::Unavailable("the conversation log writer stopped".into()))?
    }

    /// Commits everything queued so far, then stops the writer. Later appends fail `Unavailable`.
    pub async fn stop(&self) {
        let (reply, done) = oneshot::channel();
        if self.tx.send(Request::Stop(reply)).await.is_ok() {
            let _ = done.await;
        }
    }

    /// Batches and entries written so far.
    #[must_use]
    pub fn stats(&self) -> CommitStats {
        CommitStats {
            batches: self.counters.batches.load(Ordering::Relaxed),
            entries: self.counters.entries.load(Ordering::Relaxed),
        }
    }

    /// Whether the writer commits (for readiness), and how often a batch failed.
    #[must_use]
    pub fn health(&self) -> WriterHealth {
        WriterHealth {
            up: !self.counters.down.load(Ordering::Relaxed),
            failures: self.counters.failures.load(Ordering::Relaxed),
        }
    }

    /// The store behind the log, for reads.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}

async fn writer(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<Request>,
    max_batch: usize,
    hook: Arc<dyn CommitHook>,
    counters: Arc<Counters>,
) {
    let mut entries = Vec::with_capacity(max_batch);
    let mut replies = Vec::with_capacity(max_batch);
    while let Some(first) = rx.recv().await {
        let mut stop = None;
        let mut next = Some(first);
        while let Some(req) = next.take() {
            match req {
                Request::Append(e, r) => {
                    entries.push(*e);
                    replies.push(r);
                }
                Request::Stop(r) => {
                    stop = Some(r);
                    break;
                }
            }
            if entries.len() < max_batch {
                next = rx.try_recv().ok();
            }
        }
        if !entries.is_empty() {
            let results = batch(store.as_ref(), &entries, &counters).await;
            counters.batches.fetch_add(1, Ordering::Relaxed);
            counters.entries.fetch_add(entries.len() as u64, Ordering::Relaxed);
            for ((entry, reply), result) in entries.drain(..).zip(replies.drain(..)).zip(results) {
                if let Ok(a) = &result
                    && !a.duplicate
                {
                    hook.committed(entry.tenant_id, &a.entry);
                }
                let _ = reply.send(result);
            }
        }
        if let Some(done) = stop {
            rx.close();
            let _ = done.send(());
            return;
        }
    }
}

/// Writes one batch. A failure of the whole batch (the store unreachable, or a panic inside it)
/// answers every appender with `Unavailable` and marks the writer down until a batch commits;
/// the writer itself goes on, so one bad moment never stops the log.
async fn batch(store: &dyn Store, entries: &[NewEntry], counters: &Counters) -> Vec<Result<Appended>> {
    let results = match AssertUnwindSafe(store.append_batch(entries)).catch_unwind().await {
        Ok(results) => results,
        Err(_) => {
            tracing::error!(entries = entries.len(), "the log writer's batch panicked");
            entries.iter().map(|_| Err(StoreError::Unavailable("the log writer failed".into()))).collect()
        }
    };
    let failed = results.iter().all(|r| matches!(r, Err(StoreError::Unavailable(_) | StoreError::Other(_))));
    if failed {
        counters.failures.fetch_add(1, Ordering::Relaxed);
    }
    counters.down.store(failed, Ordering::Relaxed);
    results
}
