//! The frames of the visitor and agent WebSockets (see `docs/protocol.md`).

use parley_domain::{ConversationId, ConversationStatus, LogEntry, Presence, ServiceId, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Visitor → server.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum VisitorIn {
    Send { client_msg_id: String, text: String },
    End,
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
}

/// The customer as an agent sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomerView {
    pub display_name: String,
    pub email: String,
}

/// A chat offered to an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OfferView {
    pub conversation_id: ConversationId,
    pub service_id: ServiceId,
    pub service_name: String,
    pub customer: CustomerView,
    pub first_message: Option<String>,
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
    pub customer: CustomerView,
    pub first_message: Option<String>,
    pub status: ConversationStatus,
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
    Error {
        code: String,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
    },
}

/// WebSocket close code telling clients the server is restarting and they should reconnect.
pub const CLOSE_RESTART: u16 = 1012;
