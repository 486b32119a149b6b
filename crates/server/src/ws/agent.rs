//! The agent's socket: offers, chat changes and the entries of every chat the agent holds.
//! Authenticated by the session cookie; each open socket counts as "online" for routing.

use super::protocol::{self, AgentFrame, AgentIdentity, AgentIn, CLOSE_RESTART, ChatView, OfferView, Seen, Typist};
use super::{Cursor, Sink, close, limits, record_receipt, send, upgrade_error};
use crate::auth::Agent;
use crate::bus::{LiveEvent, Topic};
use crate::error::ApiResult;
use crate::state::AppState;
use crate::tenant_engine::{Command, EngineError};
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::StreamExt;
use parley_domain::{
    ConversationEvent, ConversationId, EntryBody, LogEntry, Reader, Sender, User, Watermark, validate_client_msg_id,
    validate_message_text,
};
use parley_store::NewEntry;
use std::collections::HashMap;
use std::sync::Arc;
use time::OffsetDateTime;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// `GET /ws/v1/agent` (session cookie).
pub async fn upgrade(
    agent: Agent,
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    // The cookie rides along on handshakes from any page of the same site; only our own pages
    // may open the workspace socket (browsers always send Origin on WebSocket handshakes).
    if let Some(origin) = headers.get(axum::http::header::ORIGIN)
        && origin.to_str().ok() != Some(own_origin(&state.config.public_url))
    {
        return Err(crate::error::ApiError::forbidden(
            "origin_not_allowed",
            "the workspace socket only accepts this server's pages",
        ));
    }
    let user = state.store.get_user(agent.tenant_id, agent.user_id).await?;
    let ws = ws.map_err(|e| upgrade_error(&e))?;
    let tracker = state.tracker.clone();
    Ok(limits(ws).on_upgrade(move |socket| tracker.track_future(session(state, user, socket))))
}

/// `scheme://host[:port]` of a URL.
fn own_origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    url[after_scheme..].find('/').map_or(url, |i| &url[..after_scheme + i])
}

/// One chat the socket follows.
struct Followed {
    cursor: Cursor,
    ended: bool,
    /// Stops the topic forwarder once the chat has ended.
    forwarder: tokio::task::AbortHandle,
    /// The agent side's receipt marks as this socket last knew them.
    own_mark: Watermark,
    /// The name the customer reads for this agent in this chat: messages and typing go out
    /// under it (system messages' agent name).
    alias: String,
}

type LiveEntry = (ConversationId, Result<Arc<LiveEvent>, RecvError>);

struct Session {
    state: AppState,
    user: User,
    chats: HashMap<ConversationId, Followed>,
    /// Forwarders from each followed conversation's topic into `entries_tx`.
    forwarders: JoinSet<()>,
    entries_tx: mpsc::Sender<LiveEntry>,
    /// When this socket last passed on a typing signal, per chat (for the rate limit).
    last_typing: HashMap<ConversationId, OffsetDateTime>,
}

async fn session(state: AppState, user: User, socket: WebSocket) {
    let tenant = user.tenant_id;
    let agent_id = user.id;
    let mut agent_rx = state.bus.subscribe(Topic::agent(tenant, agent_id));
    let (mut sink, mut stream) = socket.split();
    if state.engines.send(tenant, Command::AgentConnected { agent: agent_id }).await.is_err() {
        close(&mut sink, CLOSE_RESTART, "restart: reconnect").await;
        return;
    }
    let (entries_tx, mut entries_rx) = mpsc::channel::<LiveEntry>(256);
    let mut s = Session {
        state: state.clone(),
        user,
        chats: HashMap::new(),
        forwarders: JoinSet::new(),
        entries_tx,
        last_typing: HashMap::new(),
    };
    if s.hello(&mut sink).await {
        let mut heartbeat = tokio::time::interval(std::time::Duration::from_secs(25));
        heartbeat.reset();
        loop {
            tokio::select! {
                () = state.shutdown.cancelled() => {
                    close(&mut sink, CLOSE_RESTART, "restart: reconnect").await;
                    break;
                }
                msg = stream.next() => match msg {
                    Some(Ok(Message::Text(text))) => { if !s.on_text(&mut sink, text.as_str()).await { break; } }
                    Some(Ok(Message::Binary(_))) => {
                        if !send(&mut sink, &error("text_frames_only", "send JSON text frames".into(), None)).await { break; }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                },
                ev = agent_rx.recv() => match ev {
                    Ok(ev) => { if !s.on_agent_event(&mut sink, &ev).await { break; } }
                    // Missed offers or chat changes cannot be patched up: let the client reconnect for a fresh hello.
                    Err(RecvError::Lagged(_)) => { close(&mut sink, 1013, "lagged: reconnect").await; break; }
                    Err(RecvError::Closed) => break,
                },
                Some((conversation, ev)) = entries_rx.recv() => {
                    if !s.on_entry(&mut sink, conversation, ev).await { break; }
                }
                _ = heartbeat.tick() => {
                    if futures_util::SinkExt::send(&mut sink, Message::Ping(Vec::new().into())).await.is_err() { break; }
                }
            }
        }
    }
    s.forwarders.abort_all();
    let _ = state.engines.send(tenant, Command::AgentDisconnected { agent: agent_id }).await;
}

fn customer_receipt(conversation_id: ConversationId, mark: Watermark) -> AgentFrame {
    AgentFrame::Receipt {
        conversation_id,
        reader: Reader::Customer,
        delivered_seq: mark.delivered_seq,
        read_seq: mark.read_seq,
    }
}

fn error(code: &str, message: String, conversation_id: Option<ConversationId>) -> AgentFrame {
    AgentFrame::Error { code: code.into(), message, conversation_id }
}

impl Session {
    async fn hello(&mut self, sink: &mut Sink) -> bool {
        let agent = self.user.id;
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.state.engines.send(self.user.tenant_id, Command::Snapshot { agent, reply: tx }).await.is_err() {
            return false;
        }
        let Ok(snapshot) = rx.await else { return false };
        let ids: Vec<(ConversationId, Option<String>)> =
            snapshot.chats.iter().map(|c| (c.conversation.id, c.conversation.agent_alias.clone())).collect();
        let user = AgentIdentity { id: self.user.id, display_name: self.user.display_name.clone() };
        let (routing, offers, chats) = protocol::workspace(&snapshot);
        let hello = AgentFrame::Hello { user, presence: snapshot.presence, routing, offers, chats };
        if !send(sink, &hello).await {
            return false;
        }
        for (id, alias) in ids {
            if !self.follow(sink, id, alias).await {
                return false;
            }
        }
        true
    }

    /// Starts following a chat: subscribe first, then replay its whole log.
    async fn follow(&mut self, sink: &mut Sink, conversation: ConversationId, alias: Option<String>) -> bool {
        if self.chats.contains_key(&conversation) {
            return true;
        }
        let mut rx = self.state.bus.subscribe(Topic::conversation(self.user.tenant_id, conversation));
        let tx = self.entries_tx.clone();
        let forwarder = self.forwarders.spawn(async move {
            loop {
                let ev = rx.recv().await;
                let closed = matches!(ev, Err(RecvError::Closed));
                if tx.send((conversation, ev)).await.is_err() || closed {
                    break;
                }
            }
        });
        self.chats.insert(
            conversation,
            Followed {
                cursor: Cursor { tenant: self.user.tenant_id, conversation, last: 0 },
                ended: false,
                forwarder,
                own_mark: Watermark::default(),
                alias: alias.unwrap_or_else(|| self.user.display_name.clone()),
            },
        );
        self.catch_up(sink, conversation).await && self.receipts(sink, conversation).await
    }

    /// How far the customer has got in a chat just replayed (once anything was delivered).
    async fn receipts(&mut self, sink: &mut Sink, conversation: ConversationId) -> bool {
        let r = match self.state.store.get_receipts(self.user.tenant_id, conversation).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "agent receipts not read");
                return false;
            }
        };
        if let Some(f) = self.chats.get_mut(&conversation) {
            f.own_mark = f.own_mark.raised(r.agent, i64::MAX);
        }
        r.customer == Watermark::default() || send(sink, &customer_receipt(conversation, r.customer)).await
    }

    /// Records the agent side's `delivered` or `read` frame for a chat this socket follows
    /// (ended ones included: their last messages can still be read).
    async fn on_seen(&mut self, sink: &mut Sink, conversation: ConversationId, seen: Seen, seq: i64) -> bool {
        let Some(f) = self.chats.get_mut(&conversation) else {
            let e = EngineError::NotYourChat;
            return send(sink, &error(e.code(), e.to_string(), Some(conversation))).await;
        };
        let key = (self.user.tenant_id, conversation);
        match record_receipt(&self.state, key, Reader::Agent, &mut f.own_mark, seen, seq).await {
            Ok(()) => true,
            Err((code, message)) => send(sink, &error(code, message, Some(conversation))).await,
        }
    }

    async fn catch_up(&mut self, sink: &mut Sink, conversation: ConversationId) -> bool {
        let Some(f) = self.chats.get_mut(&conversation) else { return true };
        match f.cursor.catch_up(self.state.store.as_ref()).await {
            Ok(entries) => self.deliver(sink, conversation, entries).await,
            Err(e) => {
                tracing::warn!(error = %e, "agent replay failed");
                false
            }
        }
    }

    async fn deliver(&mut self, sink: &mut Sink, conversation: ConversationId, entries: Vec<LogEntry>) -> bool {
        for entry in entries {
            if matches!(entry.body, EntryBody::Event { event: ConversationEvent::Ended { .. } })
                && let Some(f) = self.chats.get_mut(&conversation)
            {
                f.ended = true;
                f.forwarder.abort();
            }
            if !send(sink, &AgentFrame::Entry { conversation_id: conversation, entry }).await {
                return false;
            }
        }
        true
    }

    async fn on_entry(
        &mut self,
        sink: &mut Sink,
        conversation: ConversationId,
        ev: Result<Arc<LiveEvent>, RecvError>,
    ) -> bool {
        match ev {
            Ok(ev) => match &*ev {
                LiveEvent::Entry { entry } => {
                    let Some(f) = self.chats.get_mut(&conversation) else { return true };
                    match f.cursor.live(entry, self.state.store.as_ref()).await {
                        Ok(entries) => self.deliver(sink, conversation, entries).await,
                        Err(e) => {
                            tracing::warn!(error = %e, "agent gap fill failed");
                            false
                        }
                    }
                }
                LiveEvent::Typing { who: Typist::Customer, .. } if self.writable(conversation).is_ok() => {
                    send(sink, &AgentFrame::Typing { conversation_id: conversation, who: Typist::Customer }).await
                }
                LiveEvent::Receipt { reader: Reader::Customer, mark } => {
                    send(sink, &customer_receipt(conversation, *mark)).await
                }
                // Agents' own typing and receipts go to the visitor only.
                _ => true,
            },
            Err(RecvError::Lagged(_)) => {
                self.catch_up(sink, conversation).await && self.receipts(sink, conversation).await
            }
            Err(RecvError::Closed) => true,
        }
    }

    /// Renders an event of the agent's own topic; a connected chat is followed from then on.
    async fn on_agent_event(&mut self, sink: &mut Sink, ev: &LiveEvent) -> bool {
        let frame = match ev {
            LiveEvent::Presence { presence } => AgentFrame::Presence { presence: *presence },
            LiveEvent::Routing { routing } => AgentFrame::Routing { routing: (*routing).into() },
            LiveEvent::Offered { card, deadline } => AgentFrame::Offer { offer: OfferView::of(card, *deadline) },
            LiveEvent::OfferWithdrawn { conversation_id } => {
                AgentFrame::OfferWithdrawn { conversation_id: *conversation_id }
            }
            LiveEvent::Connected { card } => AgentFrame::Chat { chat: ChatView::of(card) },
            LiveEvent::Notice { conversation_id, event, text } => {
                AgentFrame::Notice { conversation_id: *conversation_id, event: *event, text: text.clone() }
            }
            LiveEvent::Entry { .. }
            | LiveEvent::Typing { .. }
            | LiveEvent::Receipt { .. }
            | LiveEvent::QueuePlace { .. } => {
                return true;
            }
        };
        if !send(sink, &frame).await {
            return false;
        }
        if let LiveEvent::Connected { card } = ev {
            let c = &card.conversation;
            return self.follow(sink, c.id, c.agent_alias.clone()).await;
        }
        true
    }

    async fn on_text(&mut self, sink: &mut Sink, text: &str) -> bool {
        let frame = match crate::extract::parse::<AgentIn>(text.as_bytes()) {
            Ok(f) => f,
            Err(e) => return send(sink, &error(e.code, e.detail, None)).await,
        };
        let tenant = self.user.tenant_id;
        let agent = self.user.id;
        let (conversation, result) = match frame {
            AgentIn::Presence { presence } => {
                (None, self.state.engines.send(tenant, Command::Presence { agent, presence }).await)
            }
            AgentIn::Accept { conversation_id } => (
                Some(conversation_id),
                self.state
                    .engines
                    .ask(tenant, |reply| Command::Accept { agent, conversation: conversation_id, reply })
                    .await,
            ),
            AgentIn::Decline { conversation_id } => (
                Some(conversation_id),
                self.state
                    .engines
                    .ask(tenant, |reply| Command::Decline { agent, conversation: conversation_id, reply })
                    .await,
            ),
            AgentIn::End { conversation_id } => (
                Some(conversation_id),
                self.state
                    .engines
                    .ask(tenant, |reply| Command::End {
                        conversation: conversation_id,
                        by: parley_domain::EndedBy::Agent,
                        agent: Some(agent),
                        reply,
                    })
                    .await,
            ),
            AgentIn::EndAcw => (None, self.state.engines.ask(tenant, |reply| Command::EndAcw { agent, reply }).await),
            AgentIn::ExtendAcw => {
                (None, self.state.engines.ask(tenant, |reply| Command::ExtendAcw { agent, reply }).await)
            }
            AgentIn::ResetRona => (None, self.state.engines.send(tenant, Command::ResetRona { agent }).await),
            AgentIn::Send { conversation_id, client_msg_id, text } => {
                return self.on_send(sink, conversation_id, client_msg_id, &text).await;
            }
            AgentIn::Typing { conversation_id } => return self.on_typing(sink, conversation_id).await,
            AgentIn::Delivered { conversation_id, seq } => {
                return self.on_seen(sink, conversation_id, Seen::Delivered, seq).await;
            }
            AgentIn::Read { conversation_id, seq } => {
                return self.on_seen(sink, conversation_id, Seen::Read, seq).await;
            }
        };
        match result {
            Ok(()) => true,
            Err(e) => send(sink, &error(e.code(), e.to_string(), conversation)).await,
        }
    }

    /// Whether this socket may write to a chat: one it follows (it was connected to this agent)
    /// and that has not ended.
    /// Answers with the name the agent goes by in that chat.
    fn writable(&self, conversation: ConversationId) -> Result<String, EngineError> {
        match self.chats.get(&conversation) {
            None => Err(EngineError::NotYourChat),
            Some(f) if f.ended => Err(EngineError::ConversationEnded),
            Some(f) => Ok(f.alias.clone()),
        }
    }

    /// Passes the agent's typing on to the chat's visitor, at most once per
    /// `typing_interval_ms` (configuration) and chat (more often is dropped without a word); refused like a
    /// message for a chat that is not the agent's or has ended.
    async fn on_typing(&mut self, sink: &mut Sink, conversation: ConversationId) -> bool {
        let name = match self.writable(conversation) {
            Ok(name) => name,
            Err(e) => return send(sink, &error(e.code(), e.to_string(), Some(conversation))).await,
        };
        let now = self.state.clock.now();
        if self
            .last_typing
            .get(&conversation)
            .is_some_and(|&t| (t..t + self.state.config.typing_interval()).contains(&now))
        {
            return true;
        }
        self.last_typing.insert(conversation, now);
        let topic = Topic::conversation(self.user.tenant_id, conversation);
        self.state.bus.publish(topic, LiveEvent::Typing { who: Typist::Agent, name });
        true
    }

    async fn on_send(
        &mut self,
        sink: &mut Sink,
        conversation: ConversationId,
        client_msg_id: String,
        text: &str,
    ) -> bool {
        if let Err(e) = validate_client_msg_id(&client_msg_id) {
            return send(sink, &error("validation_failed", e.0[0].message.clone(), Some(conversation))).await;
        }
        let text = match validate_message_text(text) {
            Ok(t) => t,
            Err(e) => {
                return send(
                    sink,
                    &error("validation_failed", format!("{}: {}", e.0[0].path, e.0[0].message), Some(conversation)),
                )
                .await;
            }
        };
        let name = match self.writable(conversation) {
            Ok(name) => name,
            Err(e) => return send(sink, &error(e.code(), e.to_string(), Some(conversation))).await,
        };
        let entry = NewEntry {
            tenant_id: self.user.tenant_id,
            conversation_id: conversation,
            client_msg_id: Some(client_msg_id.clone()),
            body: EntryBody::Message { sender: Sender::Agent { id: self.user.id, name }, text, attachment: None },
            created_at: self.state.clock.now(),
        };
        match self.state.log.append(entry).await {
            Ok(a) => {
                send(
                    sink,
                    &AgentFrame::Ack {
                        conversation_id: conversation,
                        client_msg_id,
                        seq: a.entry.seq,
                        duplicate: a.duplicate,
                    },
                )
                .await
            }
            Err(parley_store::StoreError::NotFound) => {
                let e = EngineError::ConversationEnded;
                send(sink, &error(e.code(), e.to_string(), Some(conversation))).await
            }
            Err(e) => {
                tracing::warn!(error = %e, "agent message not stored");
                send(sink, &error("not_stored", "the message was not stored; send it again".into(), Some(conversation)))
                    .await
            }
        }
    }
}
