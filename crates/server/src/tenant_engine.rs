//! The tenant engine: one task per tenant that owns its routing state, handles its inputs
//! strictly in order and carries out the pure cores' effects (store writes, log entries, pushed
//! frames). Because only this task decides assignments, no lock is needed to keep an agent under
//! capacity or a chat offered once. Its state is rebuilt from the store when it starts.

use crate::bus::{Bus, BusEvent, Topic};
use crate::clock::Clock;
use crate::outbound::Outbound;
use crate::workflow_host::{self, WorkflowRunView};
use crate::ws::protocol::{AgentFrame, ChatView, CustomerView, DetailView, OfferView, RoutingView, VisitorFrame};
use parley_domain::{Conversation, ConversationId, ConversationStatus, EndedBy, Presence, TenantId, UserId};
use parley_domain::{ServiceSession, UserSession};
use parley_engine::tenant::{Out, QueueStatus, Refusal, TenantCore};
use parley_engine::workflow::HttpOutcome;
use parley_store::{ConversationLog, NewEntry, QueueEntry, Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;

/// What the workspace shows in place of a service name for a direct chat.
const DIRECT_CHAT_LABEL: &str = "Direct chat";

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
    /// Where a waiting customer stands (`None` when not waiting).
    QueueStatus {
        conversation: ConversationId,
        reply: oneshot::Sender<Option<QueueStatus>>,
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
    pub routing: RoutingView,
    pub offers: Vec<OfferView>,
    pub chats: Vec<ChatView>,
}

/// What every engine needs from the shell.
#[derive(Clone)]
pub struct EngineDeps {
    pub store: Arc<dyn Store>,
    pub log: ConversationLog,
    pub bus: Arc<Bus>,
    pub clock: Arc<dyn Clock>,
    pub tracker: TaskTracker,
    pub outbound: Arc<Outbound>,
}

/// The engines of all tenants on this node, started on first use.
pub struct Engines {
    deps: EngineDeps,
    /// `None` once closed: no engine starts during shutdown.
    senders: Mutex<Option<HashMap<TenantId, mpsc::Sender<Command>>>>,
}

impl std::fmt::Debug for Engines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engines").finish_non_exhaustive()
    }
}

impl Engines {
    #[must_use]
    pub fn new(deps: EngineDeps) -> Self {
        Self { deps, senders: Mutex::new(Some(HashMap::new())) }
    }

    fn sender(&self, tenant: TenantId) -> Option<mpsc::Sender<Command>> {
        let mut senders = self.senders.lock().unwrap_or_else(PoisonError::into_inner);
        let senders = senders.as_mut()?;
        let tx = senders
            .entry(tenant)
            .or_insert_with(|| {
                let (tx, rx) = mpsc::channel(1024);
                let engine = TenantEngine {
                    tenant,
                    deps: self.deps.clone(),
                    core: TenantCore::new(),
                    parameters: HashMap::new(),
                    me: tx.downgrade(),
                };
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
}

struct TenantEngine {
    tenant: TenantId,
    deps: EngineDeps,
    core: TenantCore,
    /// The tenant's parameters by id, to name what a workflow collected for the agent.
    parameters: HashMap<String, parley_domain::CustomParameter>,
    /// For answers that arrive later (HTTP calls); weak, so shutdown still closes the channel.
    me: mpsc::WeakSender<Command>,
}

impl TenantEngine {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        if let Err(e) = self.rebuild().await {
            tracing::error!(tenant = %self.tenant, error = %e, "engine rebuild failed");
        }
        loop {
            let wake = self.core.next_deadline().map(|t| self.deps.clock.sleep_until(t));
            // Biased, timers first: once the clock has passed a deadline, any later command sees
            // its effects (tests rely on this instead of sleeping).
            let result = tokio::select! {
                biased;
                () = async { if let Some(w) = wake { w.await } else { std::future::pending().await } } => {
                    let out = self.core.tick(self.deps.clock.now());
                    self.carry_out(out).await
                }
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.handle(cmd).await,
                    None => break,
                },
            };
            // Whatever moved, waiting customers hear their new place (only those whose changed),
            // also after a failed command: the core has already moved on.
            let told = self.core.queue_updates();
            let told = self.carry_out(told).await;
            let result = result.and(told);
            if let Err(e) = result {
                tracing::error!(tenant = %self.tenant, error = %e, "engine command failed");
            }
        }
    }

    async fn rebuild(&mut self) -> Result<(), StoreError> {
        self.refresh().await?;
        let now = self.deps.clock.now();
        let entries: HashMap<ConversationId, (time::OffsetDateTime, parley_domain::workflow::Priority)> = self
            .deps
            .store
            .list_queue_entries(self.tenant)
            .await?
            .into_iter()
            .map(|e| (e.conversation_id, (e.queued_at, e.priority)))
            .collect();
        for c in self.deps.store.list_open_conversations(self.tenant).await? {
            let queued = entries.get(&c.id).copied();
            let out = self.core.restore(c, queued, now);
            self.carry_out(out).await?;
        }
        Ok(())
    }

    /// Reloads the tenant's configuration into the core.
    async fn refresh(&mut self) -> Result<(), StoreError> {
        let config = workflow_host::load_config(self.deps.store.as_ref(), self.tenant).await?;
        let now = self.deps.clock.now();
        for setup in config.services {
            let out = self.core.set_service(setup, now);
            self.carry_out(out).await?;
        }
        self.core.set_parameter_defaults(config.parameter_defaults);
        self.parameters = config.parameters.into_iter().map(|p| (p.id.clone(), p)).collect();
        self.core.set_system_messages(config.system_messages);
        let out = self.core.set_people(config.users, &config.memberships, now);
        self.carry_out(out).await?;
        let out = self.core.set_skills(&config.skills, now);
        self.carry_out(out).await
    }

    async fn handle(&mut self, cmd: Command) -> Result<(), StoreError> {
        let now = self.deps.clock.now();
        match cmd {
            Command::Start { conversation } => self.start(conversation).await,
            Command::CustomerText { conversation, text } => {
                let out = self.core.customer_text(conversation, text, now);
                self.carry_out(out).await
            }
            Command::CustomerActive { conversation } => {
                self.core.customer_active(conversation, now);
                Ok(())
            }
            Command::HttpDone { conversation, call_id, outcome } => {
                let out = self.core.http_done(conversation, call_id, outcome, now);
                self.carry_out(out).await
            }
            Command::AgentConnected { agent } => {
                let out = self.core.connection(agent, true, now);
                self.carry_out(out).await
            }
            Command::AgentDisconnected { agent } => {
                let out = self.core.connection(agent, false, now);
                self.carry_out(out).await
            }
            Command::Presence { agent, presence } => {
                let out = self.core.presence(agent, presence, now);
                self.carry_out(out).await
            }
            Command::Accept { agent, conversation, reply } => {
                let result = self.core.accept(agent, conversation, now);
                self.answer(result, reply).await
            }
            Command::Decline { agent, conversation, reply } => {
                let result = self.core.decline(agent, conversation, now);
                self.answer(result, reply).await
            }
            Command::End { conversation, by, agent, reply } => {
                let result = self.core.end(conversation, by, agent, now);
                self.answer(result, reply).await
            }
            Command::EndAcw { agent, reply } => {
                let result = self.core.end_acw(agent, now);
                self.answer(result, reply).await
            }
            Command::ExtendAcw { agent, reply } => {
                let result = self.core.extend_acw(agent, now);
                self.answer(result, reply).await
            }
            Command::ResetRona { agent } => {
                let out = self.core.reset_rona(agent, now);
                self.carry_out(out).await
            }
            Command::SetPreferred { conversation, preferred, reply } => {
                let result = self.core.set_preferred(conversation, preferred, now);
                self.answer(result, reply).await
            }
            Command::QueueStatus { conversation, reply } => {
                let _ = reply.send(self.core.queue_status(conversation));
                Ok(())
            }
            Command::Refresh => self.refresh().await,
            Command::Workflow { conversation, reply } => {
                let _ = reply.send(self.core.run(conversation).map(WorkflowRunView::of));
                Ok(())
            }
            Command::Snapshot { agent, reply } => {
                let open = self.core.conversations_of(agent);
                let offers = open
                    .iter()
                    .filter(|c| c.status == ConversationStatus::Offered)
                    .filter_map(|c| Some(self.offer_view(c, self.core.offer_deadline(c.id)?)))
                    .collect();
                let chats = open
                    .iter()
                    .filter(|c| c.status == ConversationStatus::Connected)
                    .map(|c| self.chat_view(c))
                    .collect();
                let routing = self.routing_view(agent);
                let _ = reply.send(AgentSnapshot { presence: self.core.presence_of(agent), routing, offers, chats });
                Ok(())
            }
        }
    }

    /// Carries out an accepted command and replies; a store failure is reported to the caller.
    async fn answer(&mut self, result: Result<Vec<Out>, Refusal>, reply: Reply<()>) -> Result<(), StoreError> {
        match result {
            Err(r) => {
                let _ = reply.send(Err(r.into()));
                Ok(())
            }
            Ok(out) => {
                let done = self.carry_out(out).await;
                let _ = reply.send(done.as_ref().map(|_| ()).map_err(|_| EngineError::Unavailable));
                done
            }
        }
    }

    async fn start(&mut self, id: ConversationId) -> Result<(), StoreError> {
        // A rebuild that ran while the conversation was being created has taken it already.
        if self.core.conversation(id).is_some() {
            return Ok(());
        }
        let conv = self.deps.store.get_conversation(self.tenant, id).await?;
        let now = self.deps.clock.now();
        let (Some(service), Some(workflow), Some(version)) = (conv.service_id, conv.workflow_id, conv.workflow_version)
        else {
            let out = self.core.start_direct(conv, now);
            return self.carry_out(out).await;
        };
        let pinned = workflow_host::pinned(self.deps.store.as_ref(), self.tenant, workflow, version).await?;
        let head_start = self.core.service(service).is_some_and(|s| s.service.routing.last_user_secs > 0);
        let last_user = if head_start {
            let since = now - time::Duration::days(LAST_AGENT_LOOKBACK_DAYS);
            self.deps.store.last_agent_of_customer(self.tenant, &conv.customer.email, since).await?
        } else {
            None
        };
        let out = self.core.start_returning(conv, pinned, last_user, now);
        self.carry_out(out).await
    }

    /// Does what the core decided, in its order.
    async fn carry_out(&mut self, out: Vec<Out>) -> Result<(), StoreError> {
        let store = &self.deps.store;
        let tenant = self.tenant;
        for o in out {
            match o {
                Out::Status { conversation, status, agent, ended_at } => {
                    store.update_conversation(tenant, conversation, status, agent, ended_at).await?;
                }
                Out::Append { conversation, body } => {
                    let entry = NewEntry {
                        tenant_id: tenant,
                        conversation_id: conversation,
                        client_msg_id: None,
                        body,
                        created_at: self.deps.clock.now(),
                    };
                    self.deps.log.append(entry).await?;
                }
                Out::Outcome { conversation, outcome, reason, run } => {
                    if let Some(r) = &reason {
                        tracing::warn!(%tenant, %conversation, reason = %r, "workflow failed");
                    }
                    store.set_outcome(tenant, conversation, outcome, reason.as_deref()).await?;
                    if let Some(run) = run {
                        let record = serde_json::to_value(WorkflowRunView::of(&run))
                            .map_err(|e| StoreError::Other(format!("workflow record: {e}")))?;
                        store.save_workflow_run(tenant, conversation, &record).await?;
                    }
                }
                Out::QueueEntry { conversation, queued_at, priority } => {
                    let entry = QueueEntry { conversation_id: conversation, queued_at, priority };
                    store.set_queue_entry(tenant, &entry).await?;
                }
                Out::UserSession(f) => {
                    let session = UserSession {
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
                    };
                    store.record_user_session(&session).await?;
                }
                Out::ServiceSession(f) => {
                    let session = ServiceSession {
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
                    };
                    store.record_service_session(&session).await?;
                }
                Out::Transferred { conversation, service, workflow, version } => {
                    store.transfer_conversation(tenant, conversation, service, workflow, version).await?;
                }
                Out::Presence { agent, presence } => {
                    store.set_presence(tenant, agent, presence).await?;
                    self.publish_agent(agent, AgentFrame::Presence { presence });
                }
                Out::Offer { agent, deadline, conversation } => {
                    let offer = self.offer_view(&conversation, deadline);
                    self.publish_agent(agent, AgentFrame::Offer { offer });
                }
                Out::AgentState { agent, status } => {
                    let routing = RoutingView {
                        acw_until: status.acw_until,
                        acw_extensions: status.acw_extensions,
                        rona: status.rona,
                    };
                    self.publish_agent(agent, AgentFrame::Routing { routing });
                }
                Out::Queue { conversation, status } => {
                    let frame = VisitorFrame::Queue {
                        position: status.position,
                        estimated_wait_secs: status.estimated_wait_secs,
                    };
                    self.deps.bus.publish(Topic::Conversation(tenant, conversation), BusEvent::Visitor(frame));
                }
                Out::OfferWithdrawn { agent, conversation } => {
                    self.publish_agent(agent, AgentFrame::OfferWithdrawn { conversation_id: conversation });
                }
                Out::Chat { agent, conversation } => {
                    let chat = self.chat_view(&conversation);
                    self.publish_agent(agent, AgentFrame::Chat { chat });
                }
                Out::AgentAlias { conversation, alias } => {
                    store.set_agent_alias(tenant, conversation, &alias).await?;
                }
                Out::Notice { agent, conversation, event, text } => {
                    let frame = AgentFrame::Notice { conversation_id: conversation, event, text };
                    self.publish_agent(agent, frame);
                }
                Out::Http { conversation, call_id, call } => self.call_out(conversation, call_id, call),
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

    fn publish_agent(&self, agent: UserId, frame: AgentFrame) {
        self.deps.bus.publish(Topic::Agent(self.tenant, agent), BusEvent::Agent(frame));
    }

    fn routing_view(&self, agent: UserId) -> RoutingView {
        self.core.router().agent_status(agent).map_or_else(RoutingView::default, |s| RoutingView {
            acw_until: s.acw_until,
            acw_extensions: s.acw_extensions,
            rona: s.rona,
        })
    }

    /// How the workspace names where a chat came from.
    fn service_label(&self, c: &Conversation) -> String {
        c.service_id.map_or_else(|| DIRECT_CHAT_LABEL.to_owned(), |s| self.core.service_name(s))
    }

    fn offer_view(&self, c: &Conversation, deadline: time::OffsetDateTime) -> OfferView {
        OfferView {
            deadline,
            conversation_id: c.id,
            service_id: c.service_id,
            service_name: self.service_label(c),
            direct: c.is_direct(),
            customer: CustomerView { display_name: c.customer.display_name.clone(), email: c.customer.email.clone() },
            first_message: c.first_message.clone(),
            details: self.details(c),
        }
    }

    /// The parameters the chat's workflow set (not empty, not its default), named for people.
    fn details(&self, c: &Conversation) -> Vec<DetailView> {
        let Some(run) = self.core.run(c.id) else { return Vec::new() };
        run.session
            .params
            .iter()
            .filter(|(id, value)| {
                !value.trim().is_empty() && self.parameters.get(*id).is_none_or(|p| p.default_value != **value)
            })
            .map(|(id, value)| DetailView {
                name: self.parameters.get(id).map_or_else(|| id.clone(), |p| p.name.clone()),
                value: value.clone(),
            })
            .collect()
    }

    fn chat_view(&self, c: &Conversation) -> ChatView {
        ChatView {
            conversation_id: c.id,
            service_name: self.service_label(c),
            direct: c.is_direct(),
            customer: CustomerView { display_name: c.customer.display_name.clone(), email: c.customer.email.clone() },
            first_message: c.first_message.clone(),
            details: self.details(c),
            status: c.status,
            agent_alias: c.agent_alias.clone(),
        }
    }
}
