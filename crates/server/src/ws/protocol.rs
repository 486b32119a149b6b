//! The frames of the visitor and agent WebSockets (see `docs/protocol.md`).

use parley_domain::event::{AgentRouting, ChatCard};
use parley_domain::{
    Conversation, ConversationId, ConversationStatus, LogEntry, Presence, Reader, ServiceId, SystemEvent, UserId,
    Watermark,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Visitor → server.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum VisitorIn {
    Send {
        client_msg_id: String,
        text: String,
    },
    End,
    /// The visitor is typing (ephemeral: passed on to the agent, never stored). A struct variant,
    /// not a unit one, so that unknown fields are refused (serde ignores them on unit variants of
    /// internally tagged enums).
    Typing {},
    /// Every entry up to `seq` reached this visitor's device.
    Delivered {
        seq: i64,
    },
    /// Every entry up to `seq` was on screen while the visitor looked (implies delivered).
    Read {
        seq: i64,
    },
}

/// Agent → server.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AgentIn {
    Presence {
        presence: Presence,
    },
    Accept {
        conversation_id: ConversationId,
    },
    Decline {
        conversation_id: ConversationId,
    },
    Send {
        conversation_id: ConversationId,
        client_msg_id: String,
        text: String,
    },
    End {
        conversation_id: ConversationId,
    },
    /// End after-chat work early.
    EndAcw,
    /// Take another after-chat work period.
    ExtendAcw,
    /// Clear one's own RONA flag (back to receiving offers).
    ResetRona,
    /// The agent is typing in one of their chats (ephemeral: passed on to the visitor, never stored).
    Typing {
        conversation_id: ConversationId,
    },
    /// Every entry of the chat up to `seq` reached this agent's workspace.
    Delivered {
        conversation_id: ConversationId,
        seq: i64,
    },
    /// Every entry of the chat up to `seq` was on screen while the agent looked (implies delivered).
    Read {
        conversation_id: ConversationId,
        seq: i64,
    },
}

/// What a `delivered` or `read` frame says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Delivered,
    Read,
}

impl Seen {
    /// The mark the frame asks for: reading up to `seq` is delivery up to it as well.
    #[must_use]
    pub const fn mark(self, seq: i64) -> Watermark {
        match self {
            Self::Delivered => Watermark { delivered_seq: seq, read_seq: 0 },
            Self::Read => Watermark { delivered_seq: seq, read_seq: seq },
        }
    }
}

/// Who is typing, in `typing` frames (`customer` or `agent`).
pub use parley_domain::event::Typist;

/// The customer as an agent sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomerView {
    pub display_name: String,
    pub email: String,
}

/// Something the workflow learnt about the customer (a parameter it set), for the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DetailView {
    /// The parameter's name (its id when it has none).
    pub name: String,
    pub value: String,
}

/// A chat offered to an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OfferView {
    pub conversation_id: ConversationId,
    /// `None` for a direct chat.
    pub service_id: Option<ServiceId>,
    /// The service's name, or "Direct chat".
    pub service_name: String,
    /// From the user's personal snippet: only they are invited, and the deadline makes it missed.
    pub direct: bool,
    pub customer: CustomerView,
    pub first_message: Option<String>,
    /// What the workflow collected (non-empty parameters), ordered by parameter id.
    pub details: Vec<DetailView>,
    /// Answer by then, or the chat goes to the next agent.
    #[serde(with = "time::serde::rfc3339")]
    pub deadline: OffsetDateTime,
}

/// The agent's after-chat work and RONA flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct RoutingView {
    /// In after-chat work until then (no offers meanwhile).
    #[serde(with = "time::serde::rfc3339::option")]
    pub acw_until: Option<OffsetDateTime>,
    pub acw_extensions: u8,
    /// Flagged after a missed offer: no offers until reset.
    pub rona: bool,
}

/// A chat an agent holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatView {
    pub conversation_id: ConversationId,
    pub service_name: String,
    pub direct: bool,
    pub customer: CustomerView,
    pub first_message: Option<String>,
    /// What the workflow collected (non-empty parameters), ordered by parameter id.
    pub details: Vec<DetailView>,
    pub status: ConversationStatus,
    /// The name the customer reads for the agent (their messages go out under it); `null`
    /// before the connection, empty when the service hides agents' names.
    pub agent_alias: Option<String>,
}

impl OfferView {
    /// The offer as the workspace draws it.
    #[must_use]
    pub fn of(card: &ChatCard, deadline: OffsetDateTime) -> Self {
        let c = &card.conversation;
        Self {
            conversation_id: c.id,
            service_id: c.service_id,
            service_name: card.service_name.clone(),
            direct: c.is_direct(),
            customer: CustomerView::of(c),
            first_message: c.first_message.clone(),
            details: DetailView::all(card),
            deadline,
        }
    }
}

impl ChatView {
    /// The chat as the workspace draws it.
    #[must_use]
    pub fn of(card: &ChatCard) -> Self {
        let c = &card.conversation;
        Self {
            conversation_id: c.id,
            service_name: card.service_name.clone(),
            direct: c.is_direct(),
            customer: CustomerView::of(c),
            first_message: c.first_message.clone(),
            details: DetailView::all(card),
            status: c.status,
            agent_alias: c.agent_alias.clone(),
        }
    }
}

impl CustomerView {
    fn of(c: &Conversation) -> Self {
        Self { display_name: c.customer.display_name.clone(), email: c.customer.email.clone() }
    }
}

impl DetailView {
    fn all(card: &ChatCard) -> Vec<Self> {
        card.details.iter().map(|d| Self { name: d.name.clone(), value: d.value.clone() }).collect()
    }
}

/// The workspace's routing state, offers and chats, drawn from what the engine holds.
#[must_use]
pub fn workspace(s: &crate::tenant_engine::AgentSnapshot) -> (RoutingView, Vec<OfferView>, Vec<ChatView>) {
    let offers = s.offers.iter().map(|(card, deadline)| OfferView::of(card, *deadline)).collect();
    (s.routing.into(), offers, s.chats.iter().map(ChatView::of).collect())
}

impl From<AgentRouting> for RoutingView {
    fn from(r: AgentRouting) -> Self {
        Self { acw_until: r.acw_until, acw_extensions: r.acw_extensions, rona: r.rona }
    }
}

/// The agent's identity in `hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentIdentity {
    pub id: UserId,
    pub display_name: String,
}

/// Server → agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentFrame {
    Hello {
        user: AgentIdentity,
        presence: Presence,
        routing: RoutingView,
        offers: Vec<OfferView>,
        chats: Vec<ChatView>,
    },
    /// After-chat work started, was extended or ended; the RONA flag was set or cleared.
    Routing {
        routing: RoutingView,
    },
    Offer {
        offer: OfferView,
    },
    OfferWithdrawn {
        conversation_id: ConversationId,
    },
    Chat {
        chat: ChatView,
    },
    Entry {
        conversation_id: ConversationId,
        entry: LogEntry,
    },
    Ack {
        conversation_id: ConversationId,
        client_msg_id: String,
        seq: i64,
        duplicate: bool,
    },
    Presence {
        presence: Presence,
    },
    /// The customer of a followed chat is typing (ephemeral, never replayed).
    Typing {
        conversation_id: ConversationId,
        who: Typist,
    },
    /// How far the customer has received and read the chat (after its replay, then on change).
    /// A system message for the agent only (an item's "messages to user": incoming, accepted,
    /// ended, terminated, RONA); never stored, never shown to the customer.
    Notice {
        conversation_id: ConversationId,
        event: SystemEvent,
        text: String,
    },
    Receipt {
        conversation_id: ConversationId,
        reader: Reader,
        delivered_seq: i64,
        read_seq: i64,
    },
    Error {
        code: String,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        conversation_id: Option<ConversationId>,
    },
}

/// Server → visitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum VisitorFrame {
    Hello {
        conversation_id: ConversationId,
        status: ConversationStatus,
        last_seq: i64,
    },
    Entry {
        entry: LogEntry,
    },
    /// Where the customer stands in the queue; sent on connect and on every change.
    Queue {
        position: u32,
        /// `null` while nobody staffs the service.
        estimated_wait_secs: Option<i64>,
    },
    Ack {
        client_msg_id: String,
        seq: i64,
        duplicate: bool,
    },
    /// An agent is typing (ephemeral, never replayed).
    Typing {
        who: Typist,
        /// The agent's display name.
        name: String,
    },
    /// How far the agent side has received and read the chat (after the replay, then on change).
    Receipt {
        reader: Reader,
        delivered_seq: i64,
        read_seq: i64,
    },
    Error {
        code: String,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
    },
}

/// WebSocket close code telling clients the server is restarting and they should reconnect.
pub const CLOSE_RESTART: u16 = 1012;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::parse;
    use serde_json::json;
    use uuid::Uuid;

    #[test]
    fn typing_frames_parse_and_refuse_unknown_fields() {
        assert!(matches!(parse::<VisitorIn>(br#"{"type":"typing"}"#), Ok(VisitorIn::Typing {})));
        let e = parse::<VisitorIn>(br#"{"type":"typing","text":"hi"}"#).unwrap_err();
        assert_eq!(e.code, "unknown_field");
        let id = Uuid::nil();
        let ok = format!(r#"{{"type":"typing","conversation_id":"{id}"}}"#);
        assert!(matches!(parse::<AgentIn>(ok.as_bytes()), Ok(AgentIn::Typing { .. })));
        let extra = format!(r#"{{"type":"typing","conversation_id":"{id}","who":"agent"}}"#);
        assert_eq!(parse::<AgentIn>(extra.as_bytes()).unwrap_err().code, "unknown_field");
        assert_eq!(parse::<AgentIn>(br#"{"type":"typing"}"#).unwrap_err().code, "invalid_field");
    }

    #[test]
    fn receipt_frames_parse_and_refuse_unknown_fields() {
        assert!(matches!(parse::<VisitorIn>(br#"{"type":"read","seq":4}"#), Ok(VisitorIn::Read { seq: 4 })));
        assert!(matches!(parse::<VisitorIn>(br#"{"type":"delivered","seq":2}"#), Ok(VisitorIn::Delivered { seq: 2 })));
        assert_eq!(parse::<VisitorIn>(br#"{"type":"read","seq":"4"}"#).unwrap_err().code, "invalid_field");
        assert_eq!(parse::<VisitorIn>(br#"{"type":"read","seq":4,"x":1}"#).unwrap_err().code, "unknown_field");
        let id = Uuid::nil();
        let ok = format!(r#"{{"type":"read","conversation_id":"{id}","seq":3}}"#);
        assert!(matches!(parse::<AgentIn>(ok.as_bytes()), Ok(AgentIn::Read { seq: 3, .. })));
        assert_eq!(parse::<AgentIn>(br#"{"type":"delivered","seq":3}"#).unwrap_err().code, "invalid_field");
    }

    #[test]
    fn reading_is_delivery_too() {
        assert_eq!(Seen::Read.mark(5), Watermark { delivered_seq: 5, read_seq: 5 });
        assert_eq!(Seen::Delivered.mark(5), Watermark { delivered_seq: 5, read_seq: 0 });
    }

    #[test]
    fn typing_frames_serialise_as_documented() {
        let id = ConversationId::from_uuid(Uuid::nil());
        let a = serde_json::to_value(AgentFrame::Typing { conversation_id: id, who: Typist::Customer }).unwrap();
        assert_eq!(a, json!({"type": "typing", "conversation_id": id, "who": "customer"}));
        let v = serde_json::to_value(VisitorFrame::Typing { who: Typist::Agent, name: "Agent 1".into() }).unwrap();
        assert_eq!(v, json!({"type": "typing", "who": "agent", "name": "Agent 1"}));
    }
}
