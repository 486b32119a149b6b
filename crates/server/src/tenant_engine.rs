//! The tenant engine: one task per tenant that owns its routing state, handles its inputs
//! strictly in order and carries out the pure cores' effects (store writes, log entries, pushed
//! frames). Because only this task decides assignments, no lock is needed to keep an agent under
//! capacity or a chat offered once. Its state is rebuilt from the store when it starts.

use crate::bus::{Bus, BusEvent, Topic};
use crate::clock::Clock;
use crate::workflow_host::{Run, WorkflowRunView, WorldFacts};
use crate::ws::protocol::{AgentFrame, ChatView, CustomerView, OfferView};
use parley_domain::{
    Conversation, ConversationEvent, ConversationId, ConversationStatus, EndedBy, EntryBody, Presence, Sender, Service,
    ServiceId, TenantId, User, UserId,
};
use parley_engine::workflow::{Effect as Wf, HttpOutcome, Input as WfInput};
use parley_engine::{Effect, Input, Router};
use parley_store::{ConversationLog, NewEntry, Store, StoreError};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use time::OffsetDateTime;
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
    #[error("the engine is not available")]
    Unavailable,
}

impl EngineError {
    /// Stable code.
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::OfferNotFound => "offer_not_found",
            Self::ConversationEnded => "conversation_ended",
            Self::NotYourChat => "not_your_chat",
            Self::Unavailable => "engine_unavailable",
        }
    }
}

type Reply<T> = oneshot::Sender<Result<T, EngineError>>;

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
    /// Users or memberships changed in the store.
    Refresh,
    /// A conversation's workflow run: its status and trace.
    Workflow {
        conversation: ConversationId,
        reply: oneshot::Sender<Option<WorkflowRunView>>,
    },
    /// What an agent's workspace shows on connect.
    Snapshot {
        agent: UserId,
        reply: oneshot::Sender<(Presence, Vec<OfferView>, Vec<ChatView>)>,
    },
}

/// What every engine needs from the shell.
#[derive(Clone)]
pub struct EngineDeps {
    pub store: Arc<dyn Store>,
    pub log: ConversationLog,
    pub bus: Arc<Bus>,
    pub clock: Arc<dyn Clock>,
    pub tracker: TaskTracker,
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
                let engine = TenantEngine::new(tenant, self.deps.clone());
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
    router: Router,
    connections: HashMap<UserId, usize>,
    users: HashMap<UserId, User>,
    members: BTreeSet<(ServiceId, UserId)>,
    services: HashMap<ServiceId, Service>,
    /// Open conversations, kept in step with the store.
    open: HashMap<ConversationId, Conversation>,
    /// Running workflows by conversation.
    runs: HashMap<ConversationId, Run>,
    /// Workflow wake-ups and queue limits, earliest first (stale entries are skipped).
    timers: BTreeSet<(OffsetDateTime, ConversationId)>,
    /// Workflow inputs produced while handling others (answered at once, in order).
    pending: VecDeque<(ConversationId, WfInput)>,
}

impl TenantEngine {
    fn new(tenant: TenantId, deps: EngineDeps) -> Self {
        Self {
            tenant,
            deps,
            router: Router::new(),
            connections: HashMap::new(),
            users: HashMap::new(),
            members: BTreeSet::new(),
            services: HashMap::new(),
            open: HashMap::new(),
            runs: HashMap::new(),
            timers: BTreeSet::new(),
            pending: VecDeque::new(),
        }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        if let Err(e) = self.rebuild().await {
            tracing::error!(tenant = %self.tenant, error = %e, "engine rebuild failed");
        }
        loop {
            let wake = self.timers.first().map(|(t, _)| self.deps.clock.sleep_until(*t));
            // Biased, timers first: once the clock has passed a deadline, any later command sees
            // its effects (tests rely on this instead of sleeping).
            let result = tokio::select! {
                biased;
                () = async { if let Some(w) = wake { w.await } else { std::future::pending().await } } => self.fire_timers().await,
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.handle(cmd).await,
                    None => break,
                },
            };
            if let Err(e) = result {
                tracing::error!(tenant = %self.tenant, error = %e, "engine command failed");
            }
        }
    }

    /// Runs every timer that is due.
    async fn fire_timers(&mut self) -> Result<(), StoreError> {
        let now = self.deps.clock.now();
        while let Some(&(at, conversation)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, conversation));
            let Some(run) = self.runs.get_mut(&conversation) else { continue };
            if run.limit_at == Some(at) && self.router.phase(conversation).is_some() {
                run.limit_reached = true;
            }
            if run.wake_at == Some(at) {
                run.wake_at = None;
                self.interpret(conversation, WfInput::Timer).await?;
            }
        }
        Ok(())
    }

    fn route(&mut self, input: Input) -> Vec<Effect> {
        self.router.handle(input, self.deps.clock.now())
    }

    async fn rebuild(&mut self) -> Result<(), StoreError> {
        self.refresh().await?;
        for s in self.deps.store.list_services(self.tenant).await? {
            self.services.insert(s.id, s);
        }
        let mut effects = Vec::new();
        for c in self.deps.store.list_open_conversations(self.tenant).await? {
            let input = match (c.status, c.agent_id) {
                (ConversationStatus::Connected, Some(agent)) => {
                    Input::RestoreConnected { conversation: c.id, service: c.service_id, agent }
                }
                // Offers are not kept across a restart: the chat waits again at its place.
                _ => Input::Enqueue { conversation: c.id, service: c.service_id },
            };
            if matches!(c.status, ConversationStatus::Offered | ConversationStatus::Workflow) {
                self.deps.store.update_conversation(self.tenant, c.id, ConversationStatus::Queued, None, None).await?;
            }
            self.open.insert(
                c.id,
                Conversation {
                    status: if matches!(input, Input::Enqueue { .. }) { ConversationStatus::Queued } else { c.status },
                    ..c
                },
            );
            effects.extend(self.route(input));
        }
        self.apply(effects).await
    }

    /// Reloads users and memberships, telling the router what changed.
    async fn refresh(&mut self) -> Result<(), StoreError> {
        let mut inputs = Vec::new();
        for u in self.deps.store.list_users(self.tenant).await? {
            inputs.push(Input::AgentUpdated {
                agent: u.id,
                max_chats: u.max_chats,
                can_take_chats: u.can_take_chats(),
            });
            if self.users.get(&u.id).is_none_or(|old| old.presence != u.presence) {
                inputs.push(Input::PresenceChanged { agent: u.id, presence: u.presence });
            }
            self.users.insert(u.id, u);
        }
        let mut now = BTreeSet::new();
        for m in self.deps.store.list_memberships(self.tenant).await? {
            now.insert((m.service_id, m.user_id));
            inputs.push(Input::MembershipSet { service: m.service_id, agent: m.user_id, active: m.active });
        }
        for (service, agent) in self.members.difference(&now) {
            inputs.push(Input::MembershipRemoved { service: *service, agent: *agent });
        }
        self.members = now;
        let mut effects = Vec::new();
        for i in inputs {
            effects.extend(self.route(i));
        }
        self.apply(effects).await
    }

    async fn handle(&mut self, cmd: Command) -> Result<(), StoreError> {
        match cmd {
            Command::Start { conversation } => self.start(conversation).await,
            Command::CustomerText { conversation, text } => {
                if self.runs.contains_key(&conversation) {
                    self.interpret(conversation, WfInput::CustomerText(text)).await?;
                }
                Ok(())
            }
            Command::AgentConnected { agent } => {
                let n = self.connections.entry(agent).or_insert(0);
                *n += 1;
                if *n == 1 {
                    let fx = self.route(Input::ConnectionChanged { agent, online: true });
                    self.apply(fx).await?;
                }
                Ok(())
            }
            Command::AgentDisconnected { agent } => {
                let n = self.connections.entry(agent).or_insert(1);
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.connections.remove(&agent);
                    let fx = self.route(Input::ConnectionChanged { agent, online: false });
                    self.apply(fx).await?;
                }
                Ok(())
            }
            Command::Presence { agent, presence } => {
                self.deps.store.set_presence(self.tenant, agent, presence).await?;
                if let Some(u) = self.users.get_mut(&agent) {
                    u.presence = presence;
                }
                self.publish_agent(agent, AgentFrame::Presence { presence });
                let fx = self.route(Input::PresenceChanged { agent, presence });
                self.apply(fx).await
            }
            Command::Accept { agent, conversation, reply } => {
                self.answer_offer(Input::Accept { conversation, agent }, reply).await
            }
            Command::Decline { agent, conversation, reply } => {
                self.answer_offer(Input::Decline { conversation, agent }, reply).await
            }
            Command::End { conversation, by, agent, reply } => {
                let result = self.end(conversation, by, agent).await;
                let _ = reply.send(result);
                Ok(())
            }
            Command::Refresh => self.refresh().await,
            Command::Workflow { conversation, reply } => {
                let _ = reply.send(self.runs.get(&conversation).map(WorkflowRunView::of));
                Ok(())
            }
            Command::Snapshot { agent, reply } => {
                let presence = self.users.get(&agent).map_or(Presence::Offline, |u| u.presence);
                let mut open: Vec<&Conversation> = self.open.values().filter(|c| c.agent_id == Some(agent)).collect();
                open.sort_by_key(|c| (c.created_at, c.id));
                let offers = open
                    .iter()
                    .filter(|c| c.status == ConversationStatus::Offered)
                    .map(|c| self.offer_view(c))
                    .collect();
                let chats = open
                    .iter()
                    .filter(|c| c.status == ConversationStatus::Connected)
                    .map(|c| self.chat_view(c))
                    .collect();
                let _ = reply.send((presence, offers, chats));
                Ok(())
            }
        }
    }

    /// Accept or decline: the router refuses when the offer is not this agent's to answer.
    async fn answer_offer(&mut self, input: Input, reply: Reply<()>) -> Result<(), StoreError> {
        let fx = self.route(input);
        let refused = fx.iter().any(|e| matches!(e, Effect::Refused { .. }));
        self.apply(fx).await?;
        let _ = reply.send(if refused { Err(EngineError::OfferNotFound) } else { Ok(()) });
        Ok(())
    }

    async fn start(&mut self, id: ConversationId) -> Result<(), StoreError> {
        // A rebuild that ran while the conversation was being created has taken it already.
        if self.open.contains_key(&id) || self.router.phase(id).is_some() {
            return Ok(());
        }
        let conv = self.deps.store.get_conversation(self.tenant, id).await?;
        let workflow = self.deps.store.get_workflow(self.tenant, conv.workflow_id).await?;
        if !self.services.contains_key(&conv.service_id) {
            let s = self.deps.store.get_service(self.tenant, conv.service_id).await?;
            self.services.insert(s.id, s);
        }
        self.open.insert(id, conv);
        self.runs.insert(id, Run::new(std::sync::Arc::new(workflow.definition)));
        self.interpret(id, WfInput::Start).await
    }

    /// Feeds one input to a conversation's workflow and carries out what it asks, then any
    /// inputs that produced (e.g. a refused HTTP call), in order.
    async fn interpret(&mut self, id: ConversationId, input: WfInput) -> Result<(), StoreError> {
        self.pending.push_back((id, input));
        while let Some((id, input)) = self.pending.pop_front() {
            let (Some(mut run), Some(conv)) = (self.runs.remove(&id), self.open.get(&id)) else { continue };
            let now = self.deps.clock.now();
            let facts = WorldFacts {
                router: &self.router,
                conversation: conv,
                services: &self.services,
                agent: conv.agent_id.and_then(|a| self.users.get(&a)),
                limit_reached: run.limit_reached,
            };
            let outcome = parley_engine::workflow::handle(&run.definition, &mut run.session, input, now, &facts);
            run.trace.extend(outcome.trace);
            // A finished run stays (for its trace) until the conversation ends.
            self.runs.insert(id, run);
            for effect in outcome.effects {
                self.workflow_effect(id, effect, now).await?;
            }
        }
        Ok(())
    }

    async fn workflow_effect(&mut self, id: ConversationId, effect: Wf, now: OffsetDateTime) -> Result<(), StoreError> {
        match effect {
            Wf::Accept => self.append(id, EntryBody::Event { event: ConversationEvent::Accepted }).await?,
            Wf::Send { text } => self.append(id, EntryBody::Message { sender: Sender::System, text }).await?,
            Wf::Enqueue { max_queue_secs, .. } => {
                self.set_status(id, ConversationStatus::Queued, None, None).await?;
                self.append(id, EntryBody::Event { event: ConversationEvent::Queued }).await?;
                let limit = now + time::Duration::seconds(i64::from(max_queue_secs));
                if let Some(run) = self.runs.get_mut(&id) {
                    run.limit_at = Some(limit);
                    run.limit_reached = false;
                }
                self.timers.insert((limit, id));
                let service = self.open[&id].service_id;
                let fx = self.route(Input::Enqueue { conversation: id, service });
                self.apply(fx).await?;
            }
            Wf::CancelTask => {
                if self.router.phase(id).is_some() {
                    let fx = self.route(Input::Finish { conversation: id });
                    self.apply(fx).await?;
                }
            }
            Wf::Disconnect { text } => {
                // A workflow never cuts a live chat: with an agent connected it only ends itself.
                if self.open.get(&id).is_some_and(|c| c.status != ConversationStatus::Connected) {
                    if let Some(text) = text {
                        self.append(id, EntryBody::Message { sender: Sender::System, text }).await?;
                    }
                    let _ = self.end(id, EndedBy::System, None).await;
                }
            }
            Wf::WakeAt(at) => {
                if let Some(run) = self.runs.get_mut(&id) {
                    run.wake_at = Some(at);
                }
                self.timers.insert((at, id));
            }
            Wf::Http(_) => {
                // Outbound calls need the allow-list configuration; until a server has one, every
                // call fails cleanly and the workflow takes its `failure` exit.
                self.pending.push_back((
                    id,
                    WfInput::Http(HttpOutcome::Failed("HTTP requests are not enabled on this server".into())),
                ));
            }
            Wf::Failed { node, reason } => {
                tracing::warn!(tenant = %self.tenant, conversation = %id, %node, %reason, "workflow failed");
                let _ = self.end(id, EndedBy::System, None).await;
            }
            Wf::Transfer { service } => {
                tracing::warn!(conversation = %id, %service, "transfer requested but transfers are not carried out yet");
            }
            // Parameters live in the session; priority ordering arrives with the distribution engine.
            Wf::SetPriority(_) | Wf::SetParameter { .. } | Wf::Finished => {}
        }
        Ok(())
    }

    async fn end(&mut self, id: ConversationId, by: EndedBy, agent: Option<UserId>) -> Result<(), EngineError> {
        let Some(conv) = self.open.get(&id) else { return Err(EngineError::ConversationEnded) };
        if let Some(a) = agent
            && (conv.agent_id != Some(a) || conv.status != ConversationStatus::Connected)
        {
            return Err(EngineError::NotYourChat);
        }
        // A chat that was only offered keeps no agent; a connected one keeps its agent for history.
        let keep_agent = if conv.status == ConversationStatus::Connected { conv.agent_id } else { None };
        let fx = self.route(Input::Finish { conversation: id });
        let now = self.deps.clock.now();
        let done = async {
            self.apply(fx).await?;
            // Ended first: from here the log refuses new messages, so none lands after `ended`.
            self.set_status(id, ConversationStatus::Ended, keep_agent, Some(now)).await?;
            self.append(id, EntryBody::Event { event: ConversationEvent::Ended { by } }).await
        };
        done.await.map_err(|e| {
            tracing::error!(conversation = %id, error = %e, "ending a conversation failed");
            EngineError::Unavailable
        })?;
        self.open.remove(&id);
        self.runs.remove(&id);
        Ok(())
    }

    async fn apply(&mut self, effects: Vec<Effect>) -> Result<(), StoreError> {
        for effect in effects {
            match effect {
                Effect::Offer { conversation, agent } => {
                    self.set_status(conversation, ConversationStatus::Offered, Some(agent), None).await?;
                    if let Some(c) = self.open.get(&conversation) {
                        let offer = self.offer_view(c);
                        self.publish_agent(agent, AgentFrame::Offer { offer });
                    }
                }
                Effect::OfferWithdrawn { conversation, agent } => {
                    self.publish_agent(agent, AgentFrame::OfferWithdrawn { conversation_id: conversation });
                }
                Effect::Requeued { conversation } => {
                    self.set_status(conversation, ConversationStatus::Queued, None, None).await?;
                }
                Effect::Connected { conversation, agent } => {
                    self.set_status(conversation, ConversationStatus::Connected, Some(agent), None).await?;
                    let agent_name = self.users.get(&agent).map_or_else(String::new, |u| u.display_name.clone());
                    self.append(
                        conversation,
                        EntryBody::Event { event: ConversationEvent::Connected { agent_id: agent, agent_name } },
                    )
                    .await?;
                    if let Some(c) = self.open.get(&conversation) {
                        let chat = self.chat_view(c);
                        self.publish_agent(agent, AgentFrame::Chat { chat });
                    }
                }
                Effect::Refused { .. } => {}
            }
        }
        Ok(())
    }

    async fn set_status(
        &mut self,
        id: ConversationId,
        status: ConversationStatus,
        agent: Option<UserId>,
        ended_at: Option<time::OffsetDateTime>,
    ) -> Result<(), StoreError> {
        self.deps.store.update_conversation(self.tenant, id, status, agent, ended_at).await?;
        if let Some(c) = self.open.get_mut(&id) {
            c.status = status;
            c.agent_id = agent;
            c.ended_at = ended_at;
        }
        Ok(())
    }

    async fn append(&self, id: ConversationId, body: EntryBody) -> Result<(), StoreError> {
        let entry = NewEntry {
            tenant_id: self.tenant,
            conversation_id: id,
            client_msg_id: None,
            body,
            created_at: self.deps.clock.now(),
        };
        self.deps.log.append(entry).await.map(|_| ())
    }

    fn publish_agent(&self, agent: UserId, frame: AgentFrame) {
        self.deps.bus.publish(Topic::Agent(self.tenant, agent), BusEvent::Agent(frame));
    }

    fn service_name(&self, id: ServiceId) -> String {
        self.services.get(&id).map_or_else(String::new, |s| s.name.clone())
    }

    fn offer_view(&self, c: &Conversation) -> OfferView {
        OfferView {
            conversation_id: c.id,
            service_id: c.service_id,
            service_name: self.service_name(c.service_id),
            customer: CustomerView { display_name: c.customer.display_name.clone(), email: c.customer.email.clone() },
            first_message: c.first_message.clone(),
        }
    }

    fn chat_view(&self, c: &Conversation) -> ChatView {
        ChatView {
            conversation_id: c.id,
            service_name: self.service_name(c.service_id),
            customer: CustomerView { display_name: c.customer.display_name.clone(), email: c.customer.email.clone() },
            first_message: c.first_message.clone(),
            status: c.status,
        }
    }
}
