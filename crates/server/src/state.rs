//! What every handler can reach: configuration, store, conversation log, bus, engines, clock
//! and the shutdown signal.

use crate::bus::EventBus;
use crate::clock::Clock;
use crate::config::Config;
use crate::tenant_engine::Engines;
use parley_store::{ConversationLog, Store};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Shared application state (cheap to clone).
#[derive(Clone, Debug)]
pub struct AppState(Arc<Inner>);

/// The contents of [`AppState`].
#[derive(Debug)]
pub struct Inner {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub log: ConversationLog,
    pub bus: Arc<dyn EventBus>,
    /// The attachment folder.
    pub files: crate::files::Files,
    pub engines: Engines,
    /// Password hashing on a bounded set of threads.
    pub passwords: crate::passwords::Passwords,
    pub clock: Arc<dyn Clock>,
    /// Cancelled when the server begins shutting down; sockets close with a reconnect hint.
    pub shutdown: CancellationToken,
    /// Tracks socket tasks so shutdown can wait for them.
    pub tracker: TaskTracker,
}

impl AppState {
    #[must_use]
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
