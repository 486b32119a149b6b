//! Typed identifiers. Each wraps a UUID (v7 when the shell mints it) so a service id can never be
//! passed where a user id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta] $name:ident),* $(,)?) => {$(
        #[$doc]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(pub Uuid);

        impl $name {
            /// Wraps an existing UUID.
            #[must_use]
            pub const fn from_uuid(id: Uuid) -> Self { Self(id) }
            /// The underlying UUID.
            #[must_use]
            pub const fn as_uuid(&self) -> Uuid { self.0 }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { self.0.fmt(f) }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> { Uuid::parse_str(s).map(Self) }
        }
    )*};
}

id_type! {
    /// A tenant: one customer company of the Parley installation.
    TenantId,
    /// A node of a tenant's organization-unit tree.
    OrgUnitId,
    /// A person who handles chats (an agent) or administers the tenant.
    UserId,
    /// A routing entity that owns a queue.
    ServiceId,
    /// A workflow definition.
    WorkflowId,
    /// One chat between a customer and the contact center.
    ConversationId,
    /// A tenant admin API key (the public half of the key).
    ApiKeyId,
    /// An opening-hours calendar.
    CalendarId,
    /// A skill agents hold and distribution policies ask for.
    SkillId,
    /// A list of website origins allowed to use a widget snippet.
    DomainTemplateId,
    /// A file sent in a chat.
    AttachmentId,
    /// A system messages item (texts and display names), linked from services and users.
    SystemMessagesId,
    /// A predefined code agents choose to sum up a chat.
    CodeId,
}
