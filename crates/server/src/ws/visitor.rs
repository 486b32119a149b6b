//! The visitor's socket: one conversation, authenticated by its visitor token.

use super::protocol::{CLOSE_RESTART, Seen, Typist, VisitorFrame, VisitorIn};
use super::{Cursor, Sink, close, limits, record_receipt, send, upgrade_error};
use crate::auth::Visitor;
use crate::bus::{LiveEvent, Topic};
use crate::error::ApiResult;
use crate::extract::ApiQuery;
use crate::state::AppState;
use crate::tenant_engine::Command;
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::StreamExt;
use parley_domain::{
    Conversation, ConversationEvent, ConversationStatus, EndedBy, EntryBody, Reader, Sender, Watermark,
    validate_client_msg_id, validate_message_text,
};
use parley_store::NewEntry;
use serde::Deserialize;
use time::OffsetDateTime;
use tokio::sync::broadcast::error::RecvError;

/// Query of the visitor socket.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisitorQuery {
    pub token: String,
    #[serde(default)]
    pub since_seq: i64,
}

/// `GET /ws/v1/visitor?token=…&since_seq=…`
pub async fn upgrade(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    ApiQuery(q): ApiQuery<VisitorQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let visitor = Visitor::authenticate(&state, &q.token).await?;
    let conversation = state.store.get_conversation(visitor.tenant_id, visitor.conversation_id).await?;
    crate::api::access::check_conversation_origin(&state, &conversation, &headers).await?;
    let ws = ws.map_err(|e| upgrade_error(&e))?;
    // A cursor past the end would silently hide new entries; nothing beyond `last_seq` exists.
    let since = q.since_seq.clamp(0, conversation.last_seq);
    let tracker = state.tracker.clone();
    Ok(limits(ws).on_upgrade(move |socket| tracker.track_future(session(state, conversation, since, socket))))
}

struct Session {
    state: AppState,
    conversation: Conversation,
    cursor: Cursor,
    ended: bool,
    /// When this socket last passed a typing signal on (for the rate limit).
    last_typing: Option<OffsetDateTime>,
    /// The customer's receipt marks as this socket last knew them.
    own_mark: Watermark,
}

async fn session(state: AppState, conversation: Conversation, since_seq: i64, socket: WebSocket) {
    let topic = Topic::conversation(conversation.tenant_id, conversation.id);
    // Subscribe before replaying so nothing committed in between is missed.
    let mut live = state.bus.subscribe(topic);
    let (mut sink, mut stream) = socket.split();
    let cursor = Cursor { tenant: conversation.tenant_id, conversation: conversation.id, last: since_seq };
    let ended = conversation.status == ConversationStatus::Ended;
    let hello = VisitorFrame::Hello {
        conversation_id: conversation.id,
        status: conversation.status,
        last_seq: conversation.last_seq,
    };
    let mut s = Session {
        state: state.clone(),
        conversation,
        cursor,
        ended,
        last_typing: None,
        own_mark: Watermark::default(),
    };
    if !send(&mut sink, &hello).await
        || !s.replay(&mut sink).await
        || !s.receipts(&mut sink).await
        || !s.queue_status(&mut sink).await
    {
        return;
    }
    let mut heartbeat = tokio::time::interval(std::time::Duration::from_secs(25));
    heartbeat.reset();
    loop {
        tokio::select! {
            () = state.shutdown.cancelled() => {
                close(&mut sink, CLOSE_RESTART, "restart: reconnect").await;
                break;
            }
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    if !s.on_text(&mut sink, text.as_str()).await { break; }
                }
                Some(Ok(Message::Binary(_))) => {
                    let f = VisitorFrame::Error { code: "text_frames_only".into(), message: "send JSON text frames".into(), client_msg_id: None };
                    if !send(&mut sink, &f).await { break; }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
            },
            ev = live.recv() => {
                let ok = match ev {
                    Ok(ev) => match &*ev {
                        LiveEvent::Entry { entry } => s.on_live(&mut sink, entry).await,
                        LiveEvent::QueuePlace { position, estimated_wait_secs } => {
                            send(&mut sink, &VisitorFrame::Queue { position: *position, estimated_wait_secs: *estimated_wait_secs }).await
                        }
                        LiveEvent::Typing { who: Typist::Agent, name } if !s.ended => {
                            send(&mut sink, &VisitorFrame::Typing { who: Typist::Agent, name: name.clone() }).await
                        }
                        LiveEvent::Receipt { reader: Reader::Agent, mark } => send(&mut sink, &agent_receipt(*mark)).await,
                        // The customer's own typing and receipts (from this or another tab) are not news to them.
                        _ => true,
                    },
                    Err(RecvError::Lagged(_)) => {
                        s.replay(&mut sink).await && s.receipts(&mut sink).await && s.queue_status(&mut sink).await
                    }
                    Err(RecvError::Closed) => false,
                };
                if !ok { break; }
            }
            _ = heartbeat.tick() => {
                if futures_util::SinkExt::send(&mut sink, Message::Ping(Vec::new().into())).await.is_err() { break; }
            }
        }
    }
}

fn text_of(entry: &parley_domain::LogEntry) -> String {
    match &entry.body {
        EntryBody::Message { text, .. } => text.clone(),
        EntryBody::Event { .. } => String::new(),
    }
}

fn agent_receipt(mark: Watermark) -> VisitorFrame {
    VisitorFrame::Receipt { reader: Reader::Agent, delivered_seq: mark.delivered_seq, read_seq: mark.read_seq }
}

impl Session {
    /// How far the agent side has got (once anything was delivered), and the customer's own
    /// marks for skipping repeated frames.
    async fn receipts(&mut self, sink: &mut Sink) -> bool {
        match self.state.store.get_receipts(self.conversation.tenant_id, self.conversation.id).await {
            Ok(r) => {
                self.own_mark = self.own_mark.raised(r.customer, i64::MAX);
                r.agent == Watermark::default() || send(sink, &agent_receipt(r.agent)).await
            }
            Err(e) => {
                tracing::warn!(error = %e, "visitor receipts not read");
                false
            }
        }
    }

    async fn on_seen(&mut self, sink: &mut Sink, seen: Seen, seq: i64) -> bool {
        let conversation = (self.conversation.tenant_id, self.conversation.id);
        match record_receipt(&self.state, conversation, Reader::Customer, &mut self.own_mark, seen, seq).await {
            Ok(()) => true,
            Err((code, message)) => {
                send(sink, &VisitorFrame::Error { code: code.into(), message, client_msg_id: None }).await
            }
        }
    }

    /// Where the customer stands now, if waiting (later changes arrive on the bus).
    /// Asks the engine to tell this chat's followers where it stands (the answer comes on the
    /// bus): the socket never waits for the engine, which may be busy or rebuilding.
    async fn queue_status(&mut self, _sink: &mut Sink) -> bool {
        let (tenant, conversation) = (self.conversation.tenant_id, self.conversation.id);
        self.state.engines.notify(tenant, Command::TellQueuePlace { conversation });
        true
    }

    async fn replay(&mut self, sink: &mut Sink) -> bool {
        match self.cursor.catch_up(self.state.store.as_ref()).await {
            Ok(entries) => self.deliver(sink, entries).await,
            Err(e) => {
                tracing::warn!(error = %e, "visitor replay failed");
                false
            }
        }
    }

    async fn on_live(&mut self, sink: &mut Sink, entry: &parley_domain::LogEntry) -> bool {
        match self.cursor.live(entry, self.state.store.as_ref()).await {
            Ok(entries) => self.deliver(sink, entries).await,
            Err(e) => {
                tracing::warn!(error = %e, "visitor gap fill failed");
                false
            }
        }
    }

    async fn deliver(&mut self, sink: &mut Sink, entries: Vec<parley_domain::LogEntry>) -> bool {
        for entry in entries {
            if matches!(entry.body, EntryBody::Event { event: ConversationEvent::Ended { .. } }) {
                self.ended = true;
            }
            if !send(sink, &VisitorFrame::Entry { entry }).await {
                return false;
            }
        }
        true
    }

    async fn on_text(&mut self, sink: &mut Sink, text: &str) -> bool {
        let frame = match crate::extract::parse::<VisitorIn>(text.as_bytes()) {
            Ok(f) => f,
            Err(e) => {
                return send(
                    sink,
                    &VisitorFrame::Error { code: e.code.into(), message: e.detail, client_msg_id: None },
                )
                .await;
            }
        };
        match frame {
            VisitorIn::Send { client_msg_id, text } => self.on_send(sink, client_msg_id, &text).await,
            VisitorIn::Typing {} => {
                self.on_typing();
                true
            }
            VisitorIn::Delivered { seq } => self.on_seen(sink, Seen::Delivered, seq).await,
            VisitorIn::Read { seq } => self.on_seen(sink, Seen::Read, seq).await,
            VisitorIn::End => {
                let (tenant, conversation) = (self.conversation.tenant_id, self.conversation.id);
                let r = self
                    .state
                    .engines
                    .ask(tenant, |reply| Command::End { conversation, by: EndedBy::Customer, agent: None, reply })
                    .await;
                match r {
                    Ok(()) => {
                        self.ended = true;
                        true
                    }
                    Err(e) => {
                        send(
                            sink,
                            &VisitorFrame::Error { code: e.code().into(), message: e.to_string(), client_msg_id: None },
                        )
                        .await
                    }
                }
            }
        }
    }

    /// Passes the customer's typing on to the agents following the chat, at most once per
    /// `typing_interval_ms` (configuration); more often, or after the end, it is dropped without a word.
    fn on_typing(&mut self) {
        let now = self.state.clock.now();
        if self.ended || self.last_typing.is_some_and(|t| (t..t + self.state.config.typing_interval()).contains(&now)) {
            return;
        }
        self.last_typing = Some(now);
        let topic = Topic::conversation(self.conversation.tenant_id, self.conversation.id);
        let name = self.conversation.customer.display_name.clone();
        self.state.bus.publish(topic, LiveEvent::Typing { who: Typist::Customer, name });
    }

    async fn on_send(&mut self, sink: &mut Sink, client_msg_id: String, text: &str) -> bool {
        let err = |code: &str, message: String, id: &str| VisitorFrame::Error {
            code: code.into(),
            message,
            client_msg_id: Some(id.to_owned()),
        };
        if let Err(e) = validate_client_msg_id(&client_msg_id) {
            return send(sink, &err("validation_failed", e.0[0].message.clone(), "")).await;
        }
        let text = match validate_message_text(text) {
            Ok(t) => t,
            Err(e) => {
                return send(
                    sink,
                    &err("validation_failed", format!("{}: {}", e.0[0].path, e.0[0].message), &client_msg_id),
                )
                .await;
            }
        };
        if self.ended {
            return send(sink, &err("conversation_ended", "the conversation has ended".into(), &client_msg_id)).await;
        }
        let entry = NewEntry {
            tenant_id: self.conversation.tenant_id,
            conversation_id: self.conversation.id,
            client_msg_id: Some(client_msg_id.clone()),
            body: EntryBody::Message {
                sender: Sender::Customer { name: self.conversation.customer.display_name.clone() },
                text,
                attachment: None,
            },
            created_at: self.state.clock.now(),
        };
        match self.state.log.append(entry).await {
            Ok(a) => {
                // Committed: acknowledged at once, whatever the engine is doing.
                let acked =
                    send(sink, &VisitorFrame::Ack { client_msg_id, seq: a.entry.seq, duplicate: a.duplicate }).await;
                if !a.duplicate {
                    // A workflow question may be waiting for this answer; the engine ignores it otherwise.
                    let (tenant, conversation) = (self.conversation.tenant_id, self.conversation.id);
                    self.state.engines.customer_wrote(tenant, conversation, a.entry.seq, text_of(&a.entry));
                }
                acked
            }
            Err(parley_store::StoreError::NotFound) => {
                self.ended = true;
                send(sink, &err("conversation_ended", "the conversation has ended".into(), &client_msg_id)).await
            }
            Err(e) => {
                tracing::warn!(error = %e, "visitor message not stored");
                send(sink, &err("not_stored", "the message was not stored; send it again".into(), &client_msg_id)).await
            }
        }
    }
}
