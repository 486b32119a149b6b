//! The tenant engine: one task per tenant that owns its routing state, handles its inputs
//! strictly in order and carries out the pure cores' effects (store writes, log entries, pushed
//! frames). Because only this task decides assignments, no lock is needed to keep an agent under
//! capacity or a chat offered once. Its state is rebuilt from the store when it starts.

use crate::bus::{EventBus, LiveEvent, Topic};
use crate::clock::Clock;
use crate::outbound::Outbound;
use crate::workflow_host::{self, WorkflowRunView};
use futures_util::FutureExt;
use parley_domain::event::{AgentRouting, ChatCard};
use parley_domain::{
    Conversation, ConversationId, ConversationStatus, EndedBy, EntryBody, Presence, Sender, TenantId, UserId,
};
use parley_domain::{ServiceSession, UserSession};
use parley_engine::tenant::{Out, Refusal, SavedChat, TenantCore};
use parley_engine::workflow::HttpOutcome;
use parley_store::{EngineWrite, QueueEntry, Store, StoreError};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;

/// Why an engine command was refused; each has a stable code for clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("there is no open offer of this chat for you")]
    OfferNotFound,
    #[error("the conversation has ended")]
    ConversationEnded,
    #[error("this chat is not yours")]
    NotYourChat,
    #[error("you are not in after-chat work")]
    NotInAcw,
    #[error("no after-chat work extension is left")]
    AcwExtensionLimit,
    #[error("the engine is not available")]
    Unavailable,
}

impl From<Refusal> for EngineError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::OfferNotFound => Self::OfferNotFound,
            Refusal::ConversationEnded => Self::ConversationEnded,
            Refusal::NotYourChat => Self::NotYourChat,
            Refusal::NotInAcw => Self::NotInAcw,
            Refusal::AcwExtensionLimit => Self::AcwExtensionLimit,
        }
    }
}

impl EngineError {
    /// Stable code.
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::OfferNotFound => "offer_not_found",
            Self::ConversationEnded => "conversation_ended",
            Self::NotYourChat => "not_your_chat",
            Self::NotInAcw => "not_in_acw",
            Self::AcwExtensionLimit => "acw_extension_limit",
            Self::Unavailable => "engine_unavailable",
        }
    }
}

/// Where an engine command sends its answer.
pub type Reply<T> = oneshot::Sender<Result<T, EngineError>>;

/// Inputs of a tenant engine.
#[derive(Debug)]
pub enum Command {
    /// A new conversation was stored; run its workflow.
    Start {
        conversation: ConversationId,
    },
    /// The customer wrote (a workflow question may be waiting for it).
    CustomerText {
        conversation: ConversationId,
        /// The entry's place in the log (texts the engine read from the log are not taken twice).
        seq: i64,
        text: String,
    },
    /// The customer sent something that is not text (a file): it ends their silence.
    CustomerActive {
        conversation: ConversationId,
    },
    /// An HTTP Request activity's call finished.
    HttpDone {
        conversation: ConversationId,
        call_id: u64,
        outcome: HttpOutcome,
    },
    /// An agent socket opened or closed (the engine counts them).
    AgentConnected {
        agent: UserId,
    },
    AgentDisconnected {
        agent: UserId,
    },
    Presence {
        agent: UserId,
        presence: Presence,
    },
    Accept {
        agent: UserId,
        conversation: ConversationId,
        reply: Reply<()>,
    },
    Decline {
        agent: UserId,
        conversation: ConversationId,
        reply: Reply<()>,
    },
    /// Either side ends the chat; `agent` is set when an agent asks.
    End {
        conversation: ConversationId,
        by: EndedBy,
        agent: Option<UserId>,
        reply: Reply<()>,
    },
    /// The agent ends their after-chat work early.
    EndAcw {
        agent: UserId,
        reply: Reply<()>,
    },
    /// The agent takes another after-chat work period.
    ExtendAcw {
        agent: UserId,
        reply: Reply<()>,
    },
    /// The agent's RONA flag is cleared.
    ResetRona {
        agent: UserId,
    },
    /// The task's preferred users (Update Task API).
    SetPreferred {
        conversation: ConversationId,
        preferred: Vec<(UserId, u8)>,
        reply: Reply<()>,
    },
    /// Publish where a waiting customer stands to the chat's followers (nothing when it does not
    /// wait): for a socket that just connected, which must not wait for the engine.
    TellQueuePlace {
        conversation: ConversationId,
    },
    /// Configuration (users, memberships, services, calendars, workflows, parameters) changed in
    /// the store.
    Refresh,
    /// A conversation's workflow run: its status and trace.
    Workflow {
        conversation: ConversationId,
        reply: oneshot::Sender<Option<WorkflowRunView>>,
    },
    /// What an agent's workspace shows on connect.
    Snapshot {
        agent: UserId,
        reply: oneshot::Sender<AgentSnapshot>,
    },
}

/// A customer counts as returning to the agent who served them within this many days.
pub const LAST_AGENT_LOOKBACK_DAYS: i64 = 30;

/// What an agent's workspace shows on connect.
#[derive(Debug)]
pub struct AgentSnapshot {
    pub presence: Presence,
    pub routing: AgentRouting,
    /// Offers open to the agent, each with its deadline.
    pub offers: Vec<(ChatCard, time::OffsetDateTime)>,
    pub chats: Vec<ChatCard>,
}

/// What every engine needs from the shell.
#[derive(Clone)]
pub struct EngineDeps {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn EventBus>,
    pub clock: Arc<dyn Clock>,
    pub tracker: TaskTracker,
    pub outbound: Arc<Outbound>,
}

/// The engines of all tenants on this node, started on first use.
pub struct Engines {
    deps: EngineDeps,
    /// `None` once closed: no engine starts during shutdown.
    senders: Mutex<Option<HashMap<TenantId, mpsc::Sender<Command>>>>,
    health: Arc<EngineHealth>,
    /// Customer texts that found their engine's queue full (or whose input failed): per tenant,
    /// per conversation, the `seq`s to read from the log (before a later text of the same chat,
    /// or once the queue is empty, so each chat's texts are taken in order and once).
    overflow: Arc<Overflow>,
    #[cfg(feature = "fault-injection")]
    faults: Arc<faults::Faults>,
}

/// See [`Engines::customer_wrote`].
type Overflow = Mutex<HashMap<TenantId, Missed>>;
/// Customer texts to read from the log, by their exact `seq`, per conversation.
type Missed = BTreeMap<ConversationId, BTreeSet<i64>>;

/// The engine reads this customer text from the log on a later turn.
fn read_later(overflow: &Overflow, tenant: TenantId, conversation: ConversationId, seq: i64) {
    let mut overflow = overflow.lock().unwrap_or_else(PoisonError::into_inner);
    overflow.entry(tenant).or_default().entry(conversation).or_default().insert(seq);
}

impl std::fmt::Debug for Engines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engines").finish_non_exhaustive()
    }
}

impl Engines {
    #[must_use]
    pub fn new(deps: EngineDeps) -> Self {
        Self {
            deps,
            senders: Mutex::new(Some(HashMap::new())),
            health: Arc::new(EngineHealth::default()),
            overflow: Arc::new(Mutex::new(HashMap::new())),
            #[cfg(feature = "fault-injection")]
            faults: Arc::new(faults::Faults::default()),
        }
    }

    fn sender(&self, tenant: TenantId) -> Option<mpsc::Sender<Command>> {
        let mut senders = self.senders.lock().unwrap_or_else(PoisonError::into_inner);
        let senders = senders.as_mut()?;
        let tx = senders
            .entry(tenant)
            .or_insert_with(|| {
                let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
                let engine = TenantEngine {
                    tenant,
                    deps: self.deps.clone(),
                    core: TenantCore::new(),
                    parameters: HashMap::new(),
                    online: BTreeMap::new(),
                    me: tx.downgrade(),
                    health: Arc::clone(&self.health),
                    after_commit: Vec::new(),
                    overflow: Arc::clone(&self.overflow),
                    backoff: FIRST_BACKOFF,
                    #[cfg(feature = "fault-injection")]
                    faults: Arc::clone(&self.faults),
                };
                // Marked down until its first rebuild is done: nothing is served from an empty core.
                self.health.set_down(tenant, "starting");
                self.deps.tracker.spawn(engine.run(rx));
                tx
            })
            .clone();
        Some(tx)
    }

    /// Starts the tenant's engine now (it rebuilds from the store) rather than on first use.
    pub fn ensure_started(&self, tenant: TenantId) {
        let _ = self.sender(tenant);
    }

    /// Queues a command; `Unavailable` when the engine has stopped (shutdown).
    ///
    /// # Errors
    /// `EngineError::Unavailable` when the engine is gone.
    pub async fn send(&self, tenant: TenantId, cmd: Command) -> Result<(), EngineError> {
        let tx = self.sender(tenant).ok_or(EngineError::Unavailable)?;
        tx.send(cmd).await.map_err(|_| EngineError::Unavailable)
    }

    /// Queues a command that nobody waits for, without waiting for room: dropped when the queue
    /// is full (what it would have told is told again on the next change).
    pub fn notify(&self, tenant: TenantId, cmd: Command) {
        if let Some(tx) = self.sender(tenant) {
            let _ = tx.try_send(cmd);
        }
    }

    /// A customer's text is committed (and acknowledged): the engine learns of it without the
    /// customer ever waiting for the engine. When the engine's queue is full the text is not
    /// lost: the engine reads it from the log on its next turn (a full queue guarantees one).
    pub fn customer_wrote(&self, tenant: TenantId, conversation: ConversationId, seq: i64, text: String) {
        let Some(tx) = self.sender(tenant) else { return };
        match tx.try_send(Command::CustomerText { conversation, seq, text }) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(_)) => read_later(&self.overflow, tenant, conversation, seq),
        }
    }

    /// Whether the tenant's command queue has no room left (for the tests of what happens then).
    #[cfg(feature = "fault-injection")]
    #[must_use]
    pub fn queue_full(&self, tenant: TenantId) -> bool {
        self.sender(tenant).is_some_and(|tx| tx.capacity() == 0)
    }

    /// Sends a command carrying a reply channel and waits for the answer.
    ///
    /// # Errors
    /// The engine's refusal, or `Unavailable`.
    pub async fn ask<T>(&self, tenant: TenantId, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, EngineError> {
        let (tx, rx) = oneshot::channel();
        self.send(tenant, make(tx)).await?;
        rx.await.map_err(|_| EngineError::Unavailable)?
    }

    /// Stops accepting commands; engines finish what they hold and exit.
    pub fn close(&self) {
        *self.senders.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// How the engines are doing (for `/readyz` and the counters).
    #[must_use]
    pub fn health(&self) -> &EngineHealth {
        &self.health
    }

    /// The switches tests use to make engines fail.
    #[cfg(feature = "fault-injection")]
    #[must_use]
    pub fn faults(&self) -> &faults::Faults {
        &self.faults
    }
}

/// Most log entries read after a waiting question's last text, per chat, at a rebuild.
const ANSWER_READ_LIMIT: u32 = 200;

/// Commands waiting for one engine beyond this make senders wait.
const COMMAND_QUEUE: usize = 1024;
/// First wait before a failed engine rebuilds; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: std::time::Duration = std::time::Duration::from_millis(50);
const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(10);

/// Why an engine stopped serving.
enum Stop {
    /// Shutdown: the channel closed.
    Closed,
    /// A store failure or a panic: rebuild from the last committed state.
    Failed(String),
}

struct TenantEngine {
    tenant: TenantId,
    deps: EngineDeps,
    core: TenantCore,
    /// The tenant's parameters by id, to name what a workflow collected for the agent.
    parameters: HashMap<String, parley_domain::CustomParameter>,
    /// Open workspace sockets per agent: they outlive a rebuilt core, which learns them again.
    online: BTreeMap<UserId, usize>,
    /// For answers that arrive later (HTTP calls); weak, so shutdown still closes the channel.
    me: mpsc::WeakSender<Command>,
    health: Arc<EngineHealth>,
    /// Replies and pushes held until the input's effects are committed.
    after_commit: Vec<AfterCommit>,
    overflow: Arc<Overflow>,
    /// How long to wait before the next rebuild after a failure.
    backoff: std::time::Duration,
    #[cfg(feature = "fault-injection")]
    faults: Arc<faults::Faults>,
}

/// What waits for the commit: nobody hears of an effect the store does not have.
enum AfterCommit {
    Reply(Reply<()>),
    Publish(Topic, Box<LiveEvent>),
    Http { conversation: ConversationId, call_id: u64, call: parley_engine::workflow::HttpCall },
}

impl TenantEngine {
    /// Rebuilds and serves; after a store failure or a panic, starts again from the store with
    /// back-off, while commands wait in the channel. Other tenants' engines never notice.
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        loop {
            let served = match self.guarded_rebuild().await {
                Ok(()) => {
                    self.health.set_up(self.tenant);
                    self.serve(&mut rx).await
                }
                Err(why) => Stop::Failed(why),
            };
            match served {
                Stop::Closed => {
                    self.health.set_up(self.tenant);
                    return;
                }
                Stop::Failed(why) => {
                    tracing::error!(tenant = %self.tenant, error = %why, "tenant engine stopped; rebuilding from the store");
                    // The details are in the log; the probe says only what state it is in.
                    self.health.set_down(self.tenant, "rebuilding after a failure");
                    self.health.restarts.fetch_add(1, Ordering::Relaxed);
                    self.fail_pending();
                    self.core = TenantCore::new();
                    // Back-off grows until an input commits again (a rebuild alone proves little:
                    // the first timer after it may fail the same way).
                    tokio::time::sleep(self.backoff).await;
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// The rebuild, with a panic in it counted as a failure.
    async fn guarded_rebuild(&mut self) -> Result<(), String> {
        #[cfg(feature = "fault-injection")]
        self.faults.before_rebuild().await;
        match AssertUnwindSafe(self.rebuild()).catch_unwind().await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.health.store_failures.fetch_add(1, Ordering::Relaxed);
                Err(format!("rebuild: {e}"))
            }
            Err(_) => {
                self.health.panics.fetch_add(1, Ordering::Relaxed);
                Err("rebuild panicked".to_owned())
            }
        }
    }

    /// Handles inputs until the channel closes or one fails.
    async fn serve(&mut self, rx: &mut mpsc::Receiver<Command>) -> Stop {
        loop {
            // Texts that missed the queue are taken once nothing older can still be in it.
            let drain_all = rx.is_empty() && self.has_missed();
            let step = if drain_all {
                None
            } else {
                let wake = self.core.next_deadline().map(|t| self.deps.clock.sleep_until(t));
                // Biased, timers first: once the clock has passed a deadline, any later command
                // sees its effects (tests rely on this instead of sleeping).
                tokio::select! {
                    biased;
                    () = async { if let Some(w) = wake { w.await } else { std::future::pending().await } } => None,
                    cmd = rx.recv() => match cmd {
                        Some(cmd) => Some(cmd),
                        None => return Stop::Closed,
                    },
                }
            };
            let missed = self.take_missed(step.as_ref(), drain_all);
            // Texts whose input fails are read again from the log after the rebuild.
            let mut retry: Vec<(ConversationId, i64)> =
                missed.iter().flat_map(|(c, seqs)| seqs.iter().map(|s| (*c, *s))).collect();
            if let Some(Command::CustomerText { conversation, seq, .. }) = &step {
                retry.push((*conversation, *seq));
            }
            let done = AssertUnwindSafe(self.step(step, missed)).catch_unwind().await;
            let failed = match done {
                Ok(Ok(())) => {
                    self.backoff = FIRST_BACKOFF;
                    continue;
                }
                Ok(Err(e)) => {
                    self.health.store_failures.fetch_add(1, Ordering::Relaxed);
                    format!("store: {e}")
                }
                Err(_) => {
                    self.health.panics.fetch_add(1, Ordering::Relaxed);
                    "a command panicked".to_owned()
                }
            };
            for (conversation, seq) in retry {
                read_later(&self.overflow, self.tenant, conversation, seq);
            }
            return Stop::Failed(failed);
        }
    }

    fn has_missed(&self) -> bool {
        self.overflow.lock().unwrap_or_else(PoisonError::into_inner).get(&self.tenant).is_some_and(|m| !m.is_empty())
    }

    /// The missed texts to take in this step: all of them when the queue is empty, else those of
    /// the step's own chat that came before its text.
    fn take_missed(&self, step: Option<&Command>, all: bool) -> Missed {
        let mut overflow = self.overflow.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(mine) = overflow.get_mut(&self.tenant) else { return Missed::new() };
        if all {
            return std::mem::take(mine);
        }
        let Some(Command::CustomerText { conversation, seq, .. }) = step else { return Missed::new() };
        let Some(seqs) = mine.get_mut(conversation) else { return Missed::new() };
        let later = seqs.split_off(seq);
        let earlier = std::mem::replace(seqs, later);
        if seqs.is_empty() {
            mine.remove(conversation);
        }
        if earlier.is_empty() { Missed::new() } else { Missed::from([(*conversation, earlier)]) }
    }

    /// One input (a command, or the timers due when `cmd` is `None`) with the missed texts it
    /// takes first, and everything it caused, committed together.
    async fn step(&mut self, cmd: Option<Command>, missed: Missed) -> Result<(), StoreError> {
        let mut out = self.read_missed(missed).await?;
        out.extend(match cmd {
            None => self.core.tick(self.deps.clock.now()),
            Some(cmd) => {
                #[cfg(feature = "fault-injection")]
                self.faults.before_command(self.tenant);
                self.handle(cmd).await?
            }
        });
        // Whatever moved, waiting customers hear their new place (only those whose changed).
        out.extend(self.core.queue_updates());
        self.commit(out).await
    }

    /// Missed customer texts, read from the log and taken in their order.
    async fn read_missed(&mut self, missed: Missed) -> Result<Vec<Out>, StoreError> {
        let mut out = Vec::new();
        for (conversation, seqs) in missed {
            let (Some(first), Some(last)) = (seqs.first(), seqs.last()) else { continue };
            let limit = u32::try_from(last - first + 1).unwrap_or(u32::MAX);
            for e in self.deps.store.read_log(self.tenant, conversation, first - 1, limit).await? {
                if seqs.contains(&e.seq) {
                    out.extend(self.take_text(conversation, e));
                }
            }
        }
        Ok(out)
    }

    /// A customer's message from the log, to the core (anything else in the log is not theirs).
    fn take_text(&mut self, conversation: ConversationId, e: parley_domain::LogEntry) -> Vec<Out> {
        match e.body {
            EntryBody::Message { sender: Sender::Customer { .. }, text, .. } => {
                self.core.customer_text_at(conversation, e.seq, text, self.deps.clock.now())
            }
            EntryBody::Message { .. } | EntryBody::Event { .. } => Vec::new(),
        }
    }

    /// Replies to callers still waiting on a failed input: the engine is unavailable to them.
    fn fail_pending(&mut self) {
        for a in self.after_commit.drain(..) {
            if let AfterCommit::Reply(r) = a {
                let _ = r.send(Err(EngineError::Unavailable));
            }
        }
    }

    async fn rebuild(&mut self) -> Result<(), StoreError> {
        let mut out = self.refresh().await?;
        let now = self.deps.clock.now();
        let saved = self.deps.store.load_engine_state(self.tenant).await?;
        for (agent, state) in saved.agents {
            match serde_json::from_str(&state) {
                Ok(s) => out.extend(self.core.restore_agent(agent, s, now)),
                Err(e) => {
                    tracing::warn!(tenant = %self.tenant, %agent, error = %e, "unreadable agent state: not restored")
                }
            }
        }
        let mut chats: HashMap<ConversationId, String> = saved.chats.into_iter().collect();
        let entries: HashMap<ConversationId, (time::OffsetDateTime, parley_domain::workflow::Priority)> = self
            .deps
            .store
            .list_queue_entries(self.tenant)
            .await?
            .into_iter()
            .map(|e| (e.conversation_id, (e.queued_at, e.priority)))
            .collect();
        let mut open = self.deps.store.list_open_conversations(self.tenant).await?;
        // Waiting chats go back in the order they entered their queues.
        // Connected chats first, so they hold their agents' places before any offer is made again.
        open.sort_by_key(|c| {
            let connected = c.status == ConversationStatus::Connected;
            (!connected, entries.get(&c.id).map_or(c.created_at, |e| e.0), c.created_at, c.id)
        });
        for c in open {
            let saved = chats.remove(&c.id).and_then(|v| match serde_json::from_str::<SavedChat>(&v) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(tenant = %self.tenant, conversation = %c.id, error = %e, "unreadable chat state");
                    None
                }
            });
            let queued = entries.get(&c.id).copied();
            out.extend(self.restore(c, saved, queued, now).await?);
        }
        // A question still waiting gets the texts that came after the last one it took
        // (acknowledged to the customer, but still in the queue when the engine stopped).
        for (conversation, after) in self.core.awaiting_answer() {
            for e in self.deps.store.read_log(self.tenant, conversation, after, ANSWER_READ_LIMIT).await? {
                out.extend(self.take_text(conversation, e));
            }
        }
        // Connections outlive a rebuilt core: sockets still open are online again.
        let online: Vec<(UserId, usize)> = self.online.iter().map(|(a, n)| (*a, *n)).collect();
        for (agent, n) in online {
            for _ in 0..n {
                out.extend(self.core.connection(agent, true, now));
            }
        }
        out.extend(self.core.queue_updates());
        self.commit(out).await
    }

    /// One open conversation back into the core: as it was saved; a service chat never started
    /// (created while the engine was down or rebuilding) starts its workflow now; one from before
    /// saves existed waits in its queue again.
    async fn restore(
        &mut self,
        c: Conversation,
        saved: Option<SavedChat>,
        queued: Option<(time::OffsetDateTime, parley_domain::workflow::Priority)>,
        now: time::OffsetDateTime,
    ) -> Result<Vec<Out>, StoreError> {
        if c.is_direct() {
            return Ok(self.core.restore(c, queued, now));
        }
        match saved {
            Some(saved) => {
                let pinned = match &saved.run {
                    Some(r) => Some(
                        workflow_host::pinned(self.deps.store.as_ref(), self.tenant, r.workflow_id, r.version).await?,
                    ),
                    None => None,
                };
                Ok(self.core.restore_saved(c, saved, pinned, now))
            }
            None if c.status == ConversationStatus::Workflow => self.start_conversation(c).await,
            None => Ok(self.core.restore(c, queued, now)),
        }
    }

    /// Reloads the tenant's configuration into the core.
    async fn refresh(&mut self) -> Result<Vec<Out>, StoreError> {
        let config = workflow_host::load_config(self.deps.store.as_ref(), self.tenant).await?;
        let now = self.deps.clock.now();
        let mut out = Vec::new();
        for setup in config.services {
            out.extend(self.core.set_service(setup, now));
        }
        self.core.set_parameter_defaults(config.parameter_defaults);
        self.parameters = config.parameters.into_iter().map(|p| (p.id.clone(), p)).collect();
        self.core.set_system_messages(config.system_messages);
        out.extend(self.core.set_people(config.users, &config.memberships, now));
        out.extend(self.core.set_skills(&config.skills, now));
        Ok(out)
    }

    async fn handle(&mut self, cmd: Command) -> Result<Vec<Out>, StoreError> {
        let now = self.deps.clock.now();
        Ok(match cmd {
            Command::Start { conversation } => return self.start(conversation).await,
            Command::CustomerText { conversation, seq, text } => {
                self.core.customer_text_at(conversation, seq, text, now)
            }
            Command::CustomerActive { conversation } => {
                self.core.customer_active(conversation, now);
                Vec::new()
            }
            Command::HttpDone { conversation, call_id, outcome } => {
                self.core.http_done(conversation, call_id, outcome, now)
            }
            Command::AgentConnected { agent } => {
                *self.online.entry(agent).or_insert(0) += 1;
                self.core.connection(agent, true, now)
            }
            Command::AgentDisconnected { agent } => {
                if let Some(n) = self.online.get_mut(&agent) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.online.remove(&agent);
                    }
                }
                self.core.connection(agent, false, now)
            }
            Command::Presence { agent, presence } => self.core.presence(agent, presence, now),
            Command::Accept { agent, conversation, reply } => {
                let result = self.core.accept(agent, conversation, now);
                self.answer(result, reply)
            }
            Command::Decline { agent, conversation, reply } => {
                let result = self.core.decline(agent, conversation, now);
                self.answer(result, reply)
            }
            Command::End { conversation, by, agent, reply } => {
                let result = self.core.end(conversation, by, agent, now);
                self.answer(result, reply)
            }
            Command::EndAcw { agent, reply } => {
                let result = self.core.end_acw(agent, now);
                self.answer(result, reply)
            }
            Command::ExtendAcw { agent, reply } => {
                let result = self.core.extend_acw(agent, now);
                self.answer(result, reply)
            }
            Command::ResetRona { agent } => self.core.reset_rona(agent, now),
            Command::SetPreferred { conversation, preferred, reply } => {
                let result = self.core.set_preferred(conversation, preferred, now);
                self.answer(result, reply)
            }
            Command::TellQueuePlace { conversation } => match self.core.queue_status(conversation) {
                Some(status) => vec![Out::Queue { conversation, status }],
                None => Vec::new(),
            },
            Command::Refresh => return self.refresh().await,
            Command::Workflow { conversation, reply } => {
                let _ = reply.send(self.core.run(conversation).map(WorkflowRunView::of));
                Vec::new()
            }
            Command::Snapshot { agent, reply } => {
                let _ = reply.send(self.snapshot(agent));
                Vec::new()
            }
        })
    }

    fn snapshot(&self, agent: UserId) -> AgentSnapshot {
        let open = self.core.conversations_of(agent);
        let offers = open
            .iter()
            .filter(|c| c.status == ConversationStatus::Offered)
            .filter_map(|c| Some((self.card(c), self.core.offer_deadline(c.id)?)))
            .collect();
        let chats = open.iter().filter(|c| c.status == ConversationStatus::Connected).map(|c| self.card(c)).collect();
        AgentSnapshot { presence: self.core.presence_of(agent), routing: self.routing_of(agent), offers, chats }
    }

    /// A refusal is answered at once (nothing changed); an accepted command is answered once its
    /// effects are committed.
    fn answer(&mut self, result: Result<Vec<Out>, Refusal>, reply: Reply<()>) -> Vec<Out> {
        match result {
            Err(r) => {
                let _ = reply.send(Err(r.into()));
                Vec::new()
            }
            Ok(out) => {
                self.after_commit.push(AfterCommit::Reply(reply));
                out
            }
        }
    }

    async fn start(&mut self, id: ConversationId) -> Result<Vec<Out>, StoreError> {
        // A rebuild that ran while the conversation was being created has started it already.
        if self.core.conversation(id).is_some() {
            return Ok(Vec::new());
        }
        let conv = self.deps.store.get_conversation(self.tenant, id).await?;
        if conv.status == ConversationStatus::Ended {
            return Ok(Vec::new());
        }
        self.start_conversation(conv).await
    }

    /// Runs a new conversation's workflow from its start (or invites a direct chat's user).
    async fn start_conversation(&mut self, conv: Conversation) -> Result<Vec<Out>, StoreError> {
        let now = self.deps.clock.now();
        let (Some(service), Some(workflow), Some(version)) = (conv.service_id, conv.workflow_id, conv.workflow_version)
        else {
            return Ok(self.core.start_direct(conv, now));
        };
        let pinned = workflow_host::pinned(self.deps.store.as_ref(), self.tenant, workflow, version).await?;
        let head_start = self.core.service(service).is_some_and(|s| s.service.routing.last_user_secs > 0);
        let last_user = if head_start {
            let since = now - time::Duration::days(LAST_AGENT_LOOKBACK_DAYS);
            self.deps.store.last_agent_of_customer(self.tenant, &conv.customer.email, since).await?
        } else {
            None
        };
        Ok(self.core.start_returning(conv, pinned, last_user, now))
    }

    /// Commits what the core decided, in its order, with the state it keeps, in one transaction;
    /// only then tells anyone (log entries, frames, replies) and makes HTTP calls.
    async fn commit(&mut self, out: Vec<Out>) -> Result<(), StoreError> {
        let mut writes = Vec::new();
        let now = self.deps.clock.now();
        for o in out {
            self.plan(o, now, &mut writes)?;
        }
        let saves = self.core.take_saves();
        for (conversation, state) in saves.chats {
            let state = state.map(|s| to_json(&s)).transpose()?;
            writes.push(EngineWrite::ChatState { conversation, state });
        }
        for (agent, state) in saves.agents {
            let state = state.map(|s| to_json(&s)).transpose()?;
            writes.push(EngineWrite::AgentState { agent, state });
        }
        #[cfg(feature = "fault-injection")]
        self.faults.before_commit(self.tenant, writes.len())?;
        let appended = self.deps.store.commit_engine(self.tenant, &writes).await?;
        for entry in appended {
            let topic = Topic::conversation(self.tenant, entry.conversation_id);
            self.deps.bus.publish(topic, LiveEvent::Entry { entry });
        }
        for a in std::mem::take(&mut self.after_commit) {
            match a {
                AfterCommit::Reply(r) => {
                    let _ = r.send(Ok(()));
                }
                AfterCommit::Publish(topic, event) => self.deps.bus.publish(topic, *event),
                AfterCommit::Http { conversation, call_id, call } => self.call_out(conversation, call_id, call),
            }
        }
        Ok(())
    }

    /// Sorts one effect into a store write or something to do after the commit.
    fn plan(&mut self, o: Out, now: time::OffsetDateTime, writes: &mut Vec<EngineWrite>) -> Result<(), StoreError> {
        let tenant = self.tenant;
        match o {
            Out::Status { conversation, status, agent, ended_at } => {
                writes.push(EngineWrite::Status { conversation, status, agent, ended_at });
            }
            Out::Append { conversation, body } => {
                writes.push(EngineWrite::Append { conversation, body, created_at: now });
            }
            Out::Outcome { conversation, outcome, reason, run } => {
                if let Some(r) = &reason {
                    tracing::warn!(%tenant, %conversation, reason = %r, "workflow failed");
                }
                writes.push(EngineWrite::Outcome { conversation, outcome, reason });
                if let Some(run) = run {
                    let run = serde_json::to_value(WorkflowRunView::of(&run))
                        .map_err(|e| StoreError::Other(format!("workflow record: {e}")))?;
                    writes.push(EngineWrite::WorkflowRun { conversation, run });
                }
            }
            Out::QueueEntry { conversation, queued_at, priority } => {
                writes.push(EngineWrite::QueueEntry(QueueEntry { conversation_id: conversation, queued_at, priority }));
            }
            Out::UserSession(f) => writes.push(EngineWrite::UserSession(UserSession {
                id: uuid::Uuid::now_v7(),
                tenant_id: tenant,
                conversation_id: f.conversation,
                service_id: f.service,
                user_id: f.user,
                outcome: f.outcome,
                offered_at: f.offered_at,
                answered_at: f.answered_at,
                ended_at: f.ended_at,
                ring_secs: (f.answered_at.unwrap_or(f.ended_at) - f.offered_at).whole_seconds().max(0),
                connected_secs: f.answered_at.map_or(0, |a| (f.ended_at - a).whole_seconds().max(0)),
            })),
            Out::ServiceSession(f) => writes.push(EngineWrite::ServiceSession(ServiceSession {
                id: uuid::Uuid::now_v7(),
                tenant_id: tenant,
                conversation_id: f.conversation,
                service_id: f.service,
                outcome: f.outcome,
                user_id: f.user,
                started_at: f.started_at,
                ended_at: f.ended_at,
                ivr_secs: f.ivr_secs,
                queue_secs: f.queue_secs,
                connected_secs: f.connected_secs,
                offers: f.offers,
            })),
            Out::Transferred { conversation, service, workflow, version } => {
                writes.push(EngineWrite::Transferred { conversation, service, workflow, version });
            }
            Out::AgentAlias { conversation, alias } => writes.push(EngineWrite::AgentAlias { conversation, alias }),
            Out::Presence { agent, presence } => {
                writes.push(EngineWrite::Presence { user: agent, presence });
                self.push_agent(agent, LiveEvent::Presence { presence });
            }
            Out::Offer { agent, deadline, conversation } => {
                let card = self.card(&conversation);
                self.push_agent(agent, LiveEvent::Offered { card, deadline });
            }
            Out::AgentState { agent, status } => {
                let routing = AgentRouting {
                    acw_until: status.acw_until,
                    acw_extensions: status.acw_extensions,
                    rona: status.rona,
                };
                self.push_agent(agent, LiveEvent::Routing { routing });
            }
            Out::Queue { conversation, status } => {
                let event = LiveEvent::QueuePlace {
                    position: status.position,
                    estimated_wait_secs: status.estimated_wait_secs,
                };
                self.after_commit
                    .push(AfterCommit::Publish(Topic::conversation(tenant, conversation), Box::new(event)));
            }
            Out::OfferWithdrawn { agent, conversation } => {
                self.push_agent(agent, LiveEvent::OfferWithdrawn { conversation_id: conversation });
            }
            Out::Chat { agent, conversation } => {
                let card = self.card(&conversation);
                self.push_agent(agent, LiveEvent::Connected { card });
            }
            Out::Notice { agent, conversation, event, text } => {
                self.push_agent(agent, LiveEvent::Notice { conversation_id: conversation, event, text });
            }
            Out::Http { conversation, call_id, call } => {
                self.after_commit.push(AfterCommit::Http { conversation, call_id, call });
            }
        }
        Ok(())
    }

    /// Makes the call off the engine's task; the answer comes back as a command.
    fn call_out(&self, conversation: ConversationId, call_id: u64, call: parley_engine::workflow::HttpCall) {
        let outbound = Arc::clone(&self.deps.outbound);
        let me = self.me.clone();
        self.deps.tracker.spawn(async move {
            let outcome = outbound.call(call).await;
            if let Some(tx) = me.upgrade() {
                let _ = tx.send(Command::HttpDone { conversation, call_id, outcome }).await;
            }
        });
    }

    fn push_agent(&mut self, agent: UserId, event: LiveEvent) {
        self.after_commit.push(AfterCommit::Publish(Topic::agent(self.tenant, agent), Box::new(event)));
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Other(format!("engine state: {e}")))
}

/// How the tenant engines are doing: which are down and why, and how often they failed.
#[derive(Debug)]
pub struct EngineHealth {
    /// Tenants whose engine is not serving now, and why ("starting" before the first rebuild).
    down: Mutex<BTreeMap<TenantId, String>>,
    /// Rebuilds after a failure.
    pub restarts: AtomicU64,
    /// Inputs or rebuilds that failed in the store.
    pub store_failures: AtomicU64,
    /// Inputs or rebuilds that panicked.
    pub panics: AtomicU64,
    changed: tokio::sync::watch::Sender<u64>,
}

impl Default for EngineHealth {
    fn default() -> Self {
        Self {
            down: Mutex::new(BTreeMap::new()),
            restarts: AtomicU64::new(0),
            store_failures: AtomicU64::new(0),
            panics: AtomicU64::new(0),
            changed: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl EngineHealth {
    fn set_down(&self, tenant: TenantId, why: &str) {
        self.down.lock().unwrap_or_else(PoisonError::into_inner).insert(tenant, why.to_owned());
        self.changed.send_modify(|n| *n += 1);
    }

    fn set_up(&self, tenant: TenantId) {
        self.down.lock().unwrap_or_else(PoisonError::into_inner).remove(&tenant);
        self.changed.send_modify(|n| *n += 1);
    }

    /// Tenants whose engine is not serving, with why.
    #[must_use]
    pub fn down(&self) -> Vec<(TenantId, String)> {
        self.down.lock().unwrap_or_else(PoisonError::into_inner).iter().map(|(t, w)| (*t, w.clone())).collect()
    }

    /// Wakes on every change (for tests and `/readyz` watchers).
    #[must_use]
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

#[cfg(feature = "fault-injection")]
pub mod faults;
mod views;
