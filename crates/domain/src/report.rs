//! Reporting facts (spec §4.5, §8): one service session per service a conversation passes
//! through, one user session per offer to an agent. Written once, when they end; read by the
//! reporting API and by exports.

use crate::conversation::Outcome;
use crate::ids::{ConversationId, ServiceId, TenantId, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// How one offer to one agent ended (My Sessions colours: accepted green, declined red, RONA
/// yellow, cancelled grey).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserOutcome {
    /// Accepted and connected (the session lasts until the chat ended).
    Accepted,
    Declined,
    /// Redirected on no answer.
    Rona,
    /// The customer left, or the workflow cancelled the task, while it was on offer.
    Cancelled,
    /// Taken back because the agent could no longer take it (went away, signed out).
    Withdrawn,
    /// A direct-chat invitation the user did not answer in time (no RONA: nothing is
    /// redistributed).
    Missed,
}

impl UserOutcome {
    /// The stable text form used in storage and the API.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Declined => "declined",
            Self::Rona => "rona",
            Self::Cancelled => "cancelled",
            Self::Withdrawn => "withdrawn",
            Self::Missed => "missed",
        }
    }

    /// Parses the stable text form.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Accepted, Self::Declined, Self::Rona, Self::Cancelled, Self::Withdrawn, Self::Missed]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// One offer of a conversation to one agent, and what came of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserSession {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub conversation_id: ConversationId,
    /// `None` for a direct chat (task type "inbound direct").
    pub service_id: Option<ServiceId>,
    pub user_id: UserId,
    pub outcome: UserOutcome,
    #[serde(with = "time::serde::rfc3339")]
    pub offered_at: OffsetDateTime,
    /// When the agent accepted (accepted sessions only).
    #[serde(with = "time::serde::rfc3339::option")]
    pub answered_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub ended_at: OffsetDateTime,
    /// Seconds from offer to answer (or to the end of the offer).
    pub ring_secs: i64,
    /// Seconds connected (accepted sessions only, else 0).
    pub connected_secs: i64,
}

/// A conversation's stay in one service: from its start (or its transfer in) to its end (or
/// its transfer out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ServiceSession {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub conversation_id: ConversationId,
    pub service_id: ServiceId,
    /// `None` while a transfer moved the conversation on (its outcome is in the next service).
    pub outcome: Option<Outcome>,
    /// The agent who handled it, if one did.
    pub user_id: Option<UserId>,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub ended_at: OffsetDateTime,
    /// Time in the workflow outside the queue and the connection.
    pub ivr_secs: i64,
    pub queue_secs: i64,
    pub connected_secs: i64,
    /// Offers made (to anyone) during this session.
    pub offers: u32,
}
