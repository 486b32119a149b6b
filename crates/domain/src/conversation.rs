//! Conversations and their log. Everything both sides of a chat see (messages and events) is one
//! log entry with a per-conversation `seq` that starts at 1 and has no gaps.

use crate::attachment::Attachment;
use crate::entities::{MAX_MESSAGE_CHARS, MAX_NAME_CHARS};
use crate::error::ValidationErrors;
use crate::ids::{ConversationId, ServiceId, TenantId, UserId, WorkflowId};
use crate::validate::{email, optional_text, required_text};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// Where a conversation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    /// Running its workflow, not yet queued.
    Workflow,
    /// Waiting in its service's queue.
    Queued,
    /// Offered to one agent, awaiting an answer.
    Offered,
    /// An agent accepted; the chat is live.
    Connected,
    /// Finished by either side.
    Ended,
}

impl ConversationStatus {
    /// The stable text form used in storage and the API.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Workflow => "workflow",
            Self::Queued => "queued",
            Self::Offered => "offered",
            Self::Connected => "connected",
            Self::Ended => "ended",
        }
    }

    /// Parses the stable text form.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Workflow, Self::Queued, Self::Offered, Self::Connected, Self::Ended]
            .into_iter()
            .find(|v| v.as_str() == s)
    }

    /// Still needs the engine's attention (anything but `Ended`).
    #[must_use]
    pub const fn is_open(self) -> bool {
        !matches!(self, Self::Ended)
    }
}

/// The customer as the pre-chat form described them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Customer {
    pub display_name: String,
    pub email: String,
    /// The customer accepted the privacy policy (always true for a stored conversation).
    pub privacy_consent: bool,
    /// The browser's language tag (normalised), which picks the system messages' variant.
    #[serde(default)]
    pub language: Option<String>,
}

/// One chat between a customer and a service, or (a direct chat, from a user's personal
/// snippet) between a customer and one user. Exactly one of `service_id` and `direct_user_id`
/// is set; a service chat also names its workflow and version, a direct chat neither.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Conversation {
    pub id: ConversationId,
    pub tenant_id: TenantId,
    /// The service whose workflow and queue the chat goes through (`None` for a direct chat).
    pub service_id: Option<ServiceId>,
    /// The workflow this conversation runs, pinned at its start (or at a transfer).
    pub workflow_id: Option<WorkflowId>,
    /// The published version of that workflow it runs; later publishes do not affect it.
    pub workflow_version: Option<u32>,
    /// The user a direct chat invites (`None` for a service chat).
    pub direct_user_id: Option<UserId>,
    pub status: ConversationStatus,
    pub customer: Customer,
    pub first_message: Option<String>,
    /// The agent the chat is offered to or connected with.
    pub agent_id: Option<UserId>,
    /// Highest `seq` written to the log.
    pub last_seq: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub ended_at: Option<OffsetDateTime>,
    /// How it ended, once it has.
    pub outcome: Option<Outcome>,
    /// Why, for an administrator (set for `failed`).
    pub outcome_reason: Option<String>,
    /// The name the customer reads for the connected agent, as the system messages settings
    /// made it at the connection (empty when the agent is hidden); `None` before.
    #[serde(default)]
    pub agent_alias: Option<String>,
    /// The codes and tags the agent chose, once they did.
    #[serde(default)]
    pub wrap_up: Option<crate::WrapUp>,
}

impl Conversation {
    /// A direct chat (from a user's personal snippet), not a service's.
    #[must_use]
    pub const fn is_direct(&self) -> bool {
        self.direct_user_id.is_some()
    }
}

/// How a conversation ended, for reporting (spec §4.5; Parley names the outcomes the reference
/// product leaves unnamed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// An agent accepted and the chat was connected.
    UserAccepted,
    /// The customer left before the workflow's Accept.
    CustomerHangupBeforeAccept,
    /// The customer left after Accept but before ever being queued.
    CustomerHangupInIvr,
    /// The customer left while queued or offered.
    CustomerHangupInQueue,
    /// The customer left after leaving the queue (in the workflow after it).
    CustomerHangupInIvrAfterQueue,
    /// The workflow ended it without queueing (closed hours, self-service).
    HandledBySystem,
    /// The workflow cancelled the queued task (e.g. its queue limit was reached).
    Cancelled,
    /// Cancelled after an agent had been offered it.
    Abandoned,
    /// The workflow could not go on (unconnected exit, unsupported activity, internal error).
    Failed,
    /// Direct chat: the invited user declined.
    Declined,
    /// Direct chat: the invited user did not answer in time.
    Missed,
}

impl Outcome {
    /// The stable text form used in storage and the API.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::UserAccepted => "user_accepted",
            Self::CustomerHangupBeforeAccept => "customer_hangup_before_accept",
            Self::CustomerHangupInIvr => "customer_hangup_in_ivr",
            Self::CustomerHangupInQueue => "customer_hangup_in_queue",
            Self::CustomerHangupInIvrAfterQueue => "customer_hangup_in_ivr_after_queue",
            Self::HandledBySystem => "handled_by_system",
            Self::Cancelled => "cancelled",
            Self::Abandoned => "abandoned",
            Self::Failed => "failed",
            Self::Declined => "declined",
            Self::Missed => "missed",
        }
    }

    /// Parses the stable text form.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Every outcome.
    pub const ALL: [Self; 11] = [
        Self::UserAccepted,
        Self::CustomerHangupBeforeAccept,
        Self::CustomerHangupInIvr,
        Self::CustomerHangupInQueue,
        Self::CustomerHangupInIvrAfterQueue,
        Self::HandledBySystem,
        Self::Cancelled,
        Self::Abandoned,
        Self::Failed,
        Self::Declined,
        Self::Missed,
    ];
}

/// The visitor's pre-chat form, `POST /api/v1/widget/conversations`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreChatForm {
    /// The snippet's Contact ID.
    pub contact_id: String,
    /// The snippet's Widget Key.
    pub widget_key: String,
    pub display_name: String,
    pub email: String,
    pub privacy_consent: bool,
    #[serde(default)]
    pub first_message: Option<String>,
    /// The browser's language (e.g. `de-CH`), which picks the system messages' variant.
    #[serde(default)]
    pub language: Option<String>,
}

impl PreChatForm {
    /// Checks and normalises the form.
    ///
    /// # Errors
    /// Every broken rule, with its field path.
    pub fn validate(mut self) -> Result<Self, ValidationErrors> {
        let mut e = ValidationErrors::default();
        self.display_name = required_text(&mut e, "/display_name", &self.display_name, MAX_NAME_CHARS);
        self.email = email(&mut e, "/email", &self.email);
        if !self.privacy_consent {
            e.push("/privacy_consent", "consent_required", "the privacy policy must be accepted");
        }
        self.first_message = optional_text(&mut e, "/first_message", self.first_message.as_deref(), MAX_MESSAGE_CHARS);
        if let Some(raw) = self.language.take().filter(|l| !l.trim().is_empty()) {
            match crate::system_messages::normalize_language(&raw) {
                Some(l) => self.language = Some(l),
                None => e.push("/language", "invalid_language", "a language tag such as en, de or pt-BR"),
            }
        }
        e.into_result(self)
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Sender {
    Customer { name: String },
    Agent { id: UserId, name: String },
    System,
}

/// Who ended a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndedBy {
    Customer,
    Agent,
    System,
}

/// Something that happened to a conversation, as both sides see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ConversationEvent {
    /// The workflow accepted the chat (the reporting boundary "accepted by system").
    Accepted,
    /// The chat entered its service's queue.
    Queued,
    /// A direct chat's user was invited and has until `deadline` to answer.
    Invited {
        user_id: UserId,
        user_name: String,
        #[serde(with = "time::serde::rfc3339")]
        deadline: OffsetDateTime,
    },
    /// An agent accepted the chat.
    Connected { agent_id: UserId, agent_name: String },
    /// A workflow moved the chat to another service; the conversation goes on there.
    Transferred { from_service: ServiceId, to_service: ServiceId },
    /// The chat is over.
    Ended { by: EndedBy },
}

/// The content of one log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EntryBody {
    Message {
        sender: Sender,
        /// May be empty when the message carries an attachment.
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attachment: Option<Attachment>,
    },
    Event {
        event: ConversationEvent,
    },
}

/// One durable entry of a conversation's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LogEntry {
    pub conversation_id: ConversationId,
    /// Position in the conversation, from 1, without gaps.
    pub seq: i64,
    /// The sender's idempotency key, when the entry came from a client.
    pub client_msg_id: Option<String>,
    #[serde(flatten)]
    pub body: EntryBody,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// One side of a conversation, as a reader of the other side's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reader {
    Customer,
    /// Whichever agent holds the chat (one side even across a transfer).
    Agent,
}

impl Reader {
    /// The stable text form used in storage and the protocols.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Agent => "agent",
        }
    }
}

/// How far one side has got in a conversation's log: every entry up to `delivered_seq` reached
/// one of its devices, every entry up to `read_seq` was on a screen someone was looking at.
/// Both only ever grow, and reading implies delivery.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Watermark {
    pub delivered_seq: i64,
    pub read_seq: i64,
}

impl Watermark {
    /// This mark raised by `other`, kept within `1..=last_seq` and with `read <= delivered`.
    #[must_use]
    pub fn raised(self, other: Self, last_seq: i64) -> Self {
        let clamp = |v: i64| v.clamp(0, last_seq.max(0));
        let read = self.read_seq.max(clamp(other.read_seq));
        Self { delivered_seq: self.delivered_seq.max(clamp(other.delivered_seq)).max(read), read_seq: read }
    }
}

/// Both sides' watermarks in one conversation (the receipts each side is shown of the other).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Receipts {
    pub customer: Watermark,
    pub agent: Watermark,
}

impl Receipts {
    /// One side's mark.
    #[must_use]
    pub const fn of(&self, reader: Reader) -> Watermark {
        match reader {
            Reader::Customer => self.customer,
            Reader::Agent => self.agent,
        }
    }
}

/// Checks a chat message typed by a person.
///
/// # Errors
/// `/text` empty or longer than [`MAX_MESSAGE_CHARS`].
pub fn validate_message_text(text: &str) -> Result<String, ValidationErrors> {
    let mut e = ValidationErrors::default();
    let t = required_text(&mut e, "/text", text, MAX_MESSAGE_CHARS);
    e.into_result(t)
}

/// Checks a client's idempotency key: 1 to 64 printable ASCII characters.
///
/// # Errors
/// `/client_msg_id` when malformed.
pub fn validate_client_msg_id(id: &str) -> Result<(), ValidationErrors> {
    if (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(ValidationErrors::single(
            "/client_msg_id",
            "invalid_client_msg_id",
            "must be 1-64 printable ASCII characters",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(consent: bool, msg: Option<&str>) -> PreChatForm {
        PreChatForm {
            contact_id: "c".into(),
            widget_key: "k".into(),
            display_name: " Ann ".into(),
            email: "ann@example.com".into(),
            privacy_consent: consent,
            first_message: msg.map(str::to_owned),
            language: None,
        }
    }

    #[test]
    fn pre_chat_form_requires_consent() {
        let errs = form(false, None).validate().unwrap_err().0;
        assert_eq!((errs[0].path.as_str(), errs[0].code), ("/privacy_consent", "consent_required"));
    }

    #[test]
    fn pre_chat_form_trims_and_drops_a_blank_first_message() {
        let f = form(true, Some("   ")).validate().unwrap();
        assert_eq!(f.display_name, "Ann");
        assert_eq!(f.first_message, None);
    }

    #[test]
    fn message_text_over_the_limit_is_refused() {
        let long = "x".repeat(MAX_MESSAGE_CHARS + 1);
        assert_eq!(validate_message_text(&long).unwrap_err().0[0].code, "too_long");
        assert!(validate_message_text("hello").is_ok());
    }

    #[test]
    fn client_msg_id_must_be_short_printable_ascii() {
        assert!(validate_client_msg_id("abc-123").is_ok());
        assert!(validate_client_msg_id("").is_err());
        assert!(validate_client_msg_id("with space").is_err());
        assert!(validate_client_msg_id(&"x".repeat(65)).is_err());
    }

    #[test]
    fn a_watermark_only_grows_stays_within_the_log_and_reading_implies_delivery() {
        let m = Watermark { delivered_seq: 5, read_seq: 3 };
        assert_eq!(m.raised(Watermark { delivered_seq: 2, read_seq: 1 }, 10), m, "never lowered");
        assert_eq!(
            m.raised(Watermark { delivered_seq: 0, read_seq: 7 }, 10),
            Watermark { delivered_seq: 7, read_seq: 7 }
        );
        assert_eq!(
            m.raised(Watermark { delivered_seq: 99, read_seq: 99 }, 10),
            Watermark { delivered_seq: 10, read_seq: 10 }
        );
        assert_eq!(
            Watermark::default().raised(Watermark { delivered_seq: -4, read_seq: -1 }, 10),
            Watermark::default()
        );
    }

    proptest::proptest! {
        /// Whatever clients report, in any order, a mark never goes down, reading never runs
        /// ahead of delivery and neither passes the log.
        #[test]
        fn watermarks_are_monotone_and_bounded(
            last_seq in 0i64..50,
            reports in proptest::collection::vec((-5i64..80, -5i64..80), 0..30),
        ) {
            let mut m = Watermark::default();
            for (d, r) in reports {
                let next = m.raised(Watermark { delivered_seq: d, read_seq: r }, last_seq);
                proptest::prop_assert!(next.delivered_seq >= m.delivered_seq && next.read_seq >= m.read_seq);
                proptest::prop_assert!(0 <= next.read_seq && next.read_seq <= next.delivered_seq);
                proptest::prop_assert!(next.delivered_seq <= last_seq);
                m = next;
            }
        }
    }

    #[test]
    fn log_entry_serialises_flat_with_kind_tag() {
        let e = LogEntry {
            conversation_id: ConversationId::from_uuid(uuid::Uuid::nil()),
            seq: 3,
            client_msg_id: None,
            body: EntryBody::Event { event: ConversationEvent::Ended { by: EndedBy::Agent } },
            created_at: OffsetDateTime::UNIX_EPOCH,
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["kind"], "event");
        assert_eq!(v["event"]["type"], "ended");
        assert_eq!(v["event"]["by"], "agent");
        let back: LogEntry = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }
}
