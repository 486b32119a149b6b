//! The live events that travel between the log, the tenant engines and the sockets: what
//! happened, in domain terms, never a wire frame. Each socket renders its own frames from them at
//! the edge, so the engines know nothing of the protocols, and a bus between processes carries
//! these (they serialise to JSON) rather than one client's view.

use crate::system_messages::SystemEvent;
use crate::{Conversation, ConversationId, LogEntry, Presence, Reader, TenantId, UserId, Watermark};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Who hears an event: everyone following a conversation, or one agent's workspaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Topic {
    Conversation { tenant: TenantId, conversation: ConversationId },
    Agent { tenant: TenantId, agent: UserId },
}

impl Topic {
    #[must_use]
    pub const fn conversation(tenant: TenantId, conversation: ConversationId) -> Self {
        Self::Conversation { tenant, conversation }
    }

    #[must_use]
    pub const fn agent(tenant: TenantId, agent: UserId) -> Self {
        Self::Agent { tenant, agent }
    }
}

/// Who is typing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Typist {
    Customer,
    Agent,
}

/// Something a workflow learnt about the customer (a parameter it set), named for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detail {
    /// The parameter's name (its id when it has none).
    pub name: String,
    pub value: String,
}

/// A chat as an agent is shown it: the conversation, where it came from, what was collected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatCard {
    pub conversation: Conversation,
    /// The service's name, or how a direct chat is labelled.
    pub service_name: String,
    /// What the workflow collected (non-empty, not the default), by parameter id.
    pub details: Vec<Detail>,
}

/// An agent's after-chat work and RONA flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AgentRouting {
    pub acw_until: Option<OffsetDateTime>,
    pub acw_extensions: u8,
    pub rona: bool,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveEvent {
    /// A committed log entry (conversation topic).
    Entry { entry: LogEntry },
    /// Someone in the conversation is typing: never stored nor replayed.
    Typing { who: Typist, name: String },
    /// One side's receipt marks moved (they are stored; this only tells the other side now).
    Receipt { reader: Reader, mark: Watermark },
    /// Where the waiting customer stands (conversation topic; for the visitor).
    QueuePlace { position: u32, estimated_wait_secs: Option<i64> },
    /// The agent's presence changed (agent topic).
    Presence { presence: Presence },
    /// The agent's after-chat work or RONA flag changed (agent topic).
    Routing { routing: AgentRouting },
    /// A chat is offered to the agent until `deadline` (agent topic).
    Offered { card: ChatCard, deadline: OffsetDateTime },
    /// The offer is gone (agent topic).
    OfferWithdrawn { conversation_id: ConversationId },
    /// The agent's chat is connected (agent topic).
    Connected { card: ChatCard },
    /// A system message for the agent only, never in the customer's log (agent topic).
    Notice { conversation_id: ConversationId, event: SystemEvent, text: String },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Customer, EntryBody, Sender};
    use uuid::Uuid;

    fn card() -> ChatCard {
        let at = OffsetDateTime::UNIX_EPOCH;
        ChatCard {
            conversation: Conversation {
                id: ConversationId::from_uuid(Uuid::from_u128(1)),
                tenant_id: TenantId::from_uuid(Uuid::from_u128(2)),
                service_id: None,
                workflow_id: None,
                workflow_version: None,
                direct_user_id: Some(UserId::from_uuid(Uuid::from_u128(3))),
                status: crate::ConversationStatus::Offered,
                customer: Customer {
                    display_name: "Ann".into(),
                    email: "ann@example.com".into(),
                    privacy_consent: true,
                    language: None,
                },
                first_message: Some("hi".into()),
                agent_id: None,
                last_seq: 3,
                created_at: at,
                ended_at: None,
                outcome: None,
                outcome_reason: None,
                agent_alias: None,
                wrap_up: None,
            },
            service_name: "Direct chat".into(),
            details: vec![Detail { name: "Order".into(), value: "4711".into() }],
        }
    }

    #[test]
    fn every_event_survives_the_trip_through_json_a_bus_between_processes_makes() {
        let at = OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(90);
        let id = ConversationId::from_uuid(Uuid::from_u128(1));
        let events = [
            LiveEvent::Entry {
                entry: LogEntry {
                    conversation_id: id,
                    seq: 4,
                    client_msg_id: Some("c1".into()),
                    body: EntryBody::Message { sender: Sender::System, text: "hello".into(), attachment: None },
                    created_at: at,
                },
            },
            LiveEvent::Typing { who: Typist::Agent, name: "Agent 1".into() },
            LiveEvent::Receipt { reader: Reader::Customer, mark: Watermark { delivered_seq: 3, read_seq: 2 } },
            LiveEvent::QueuePlace { position: 2, estimated_wait_secs: None },
            LiveEvent::Presence { presence: Presence::Away },
            LiveEvent::Routing { routing: AgentRouting { acw_until: Some(at), acw_extensions: 1, rona: true } },
            LiveEvent::Offered { card: card(), deadline: at },
            LiveEvent::OfferWithdrawn { conversation_id: id },
            LiveEvent::Connected { card: card() },
            LiveEvent::Notice { conversation_id: id, event: SystemEvent::UserIncoming, text: "New chat".into() },
        ];
        for e in events {
            let json = serde_json::to_string(&e).unwrap();
            assert_eq!(serde_json::from_str::<LiveEvent>(&json).unwrap(), e, "{json}");
        }
        let topic = Topic::agent(TenantId::from_uuid(Uuid::nil()), UserId::from_uuid(Uuid::nil()));
        let json = serde_json::to_string(&topic).unwrap();
        assert_eq!(serde_json::from_str::<Topic>(&json).unwrap(), topic);
    }
}
