//! Storage behind one trait, [`Store`], with a SQLite and a PostgreSQL implementation chosen by
//! the URL scheme, each with its own embedded migrations, both held to the conformance suite in
//! `tests/conformance.rs`.
//!
//! Every call that reads or changes tenant data takes the [`TenantId`]; a row of another tenant
//! is reported as [`StoreError::NotFound`], never returned. The only tenant-less lookups are the
//! credential lookups (API key, agent session, the Contact ID of a service's or a user's widget
//! snippet), whose result names its tenant.
//!
//! This crate knows nothing of HTTP, WebSockets or the engine.

mod append;
mod engine_tx;
mod group_commit;
mod postgres;
mod sql;
mod sqlite;
pub mod testing;

pub use group_commit::{CommitHook, CommitStats, ConversationLog, WriterHealth};

use async_trait::async_trait;
use parley_domain::calendar::OpeningCalendar;
use parley_domain::workflow::{Priority, Workflow, WorkflowDefinition, WorkflowVersion};
use parley_domain::{
    ApiKeyId, CalendarId, Conversation, ConversationId, ConversationStatus, CustomParameter, DirectChatSettings,
    DomainTemplate, DomainTemplateId, EntryBody, LogEntry, Membership, OrgUnit, OrgUnitId, Outcome, Presence, Service,
    ServiceId, ServiceSession, Skill, SkillId, Tenant, TenantId, User, UserId, UserSession, UserSkill, WorkflowId,
};
use parley_domain::{Attachment, AttachmentId, Reader, Receipts, SystemMessages, SystemMessagesId, Watermark};
use parley_domain::{Code, CodeId, WrapUp};
use std::sync::Arc;
use time::OffsetDateTime;

/// What went wrong in the store, in terms the API can map once.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such row for this tenant.
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was broken; the value names which one (e.g. `tenant_slug`, `user_email`,
    /// `service_contact_id`, `user_contact_id`).
    #[error("conflict on {0}")]
    Conflict(&'static str),
    /// The database could not be reached or is shutting down.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Another Parley process serves this database; the text says which, for the operator.
    #[error("{0}")]
    InUse(String),
    /// Anything else; the text is for logs, not for clients.
    #[error("store error: {0}")]
    Other(String),
}

impl StoreError {
    /// Stable code for logs and problem documents.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Conflict(_) => "conflict",
            Self::Unavailable(_) => "store_unavailable",
            Self::InUse(_) => "database_in_use",
            Self::Other(_) => "store_error",
        }
    }
}

/// Result of a store call.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One durable effect of a tenant engine's input. [`Store::commit_engine`] writes all of one
/// input's effects in one transaction, so a failure leaves the store at the last input that
/// committed, never halfway through one; the engine then rebuilds from there.
// Room to grow: the outbox rows of external deliveries (Twilio, Teams) join this list, written
// with the state change that causes them.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineWrite {
    /// Status, agent and end time together. `NotFound` for another tenant's conversation or agent.
    Status {
        conversation: ConversationId,
        status: ConversationStatus,
        agent: Option<UserId>,
        ended_at: Option<OffsetDateTime>,
    },
    /// The name the customer reads for the connected agent.
    AgentAlias { conversation: ConversationId, alias: String },
    /// The conversation's new service and the workflow version it now runs (not for a direct chat).
    Transferred { conversation: ConversationId, service: ServiceId, workflow: WorkflowId, version: u32 },
    /// How the conversation ended (a later one replaces it).
    Outcome { conversation: ConversationId, outcome: Outcome, reason: Option<String> },
    /// The record of what its workflow did (opaque JSON for the store).
    WorkflowRun { conversation: ConversationId, run: serde_json::Value },
    /// When it entered its queue and with which priority.
    QueueEntry(QueueEntry),
    /// A finished user session (its `tenant_id` must be the committing tenant).
    UserSession(UserSession),
    /// A finished service session (its `tenant_id` must be the committing tenant).
    ServiceSession(ServiceSession),
    /// The user's presence.
    Presence { user: UserId, presence: Presence },
    /// A server entry of the conversation's log (no `client_msg_id`).
    Append { conversation: ConversationId, body: EntryBody, created_at: OffsetDateTime },
    /// What the engine keeps of an open conversation, as JSON text; `None` forgets it (the chat
    /// ended).
    ChatState { conversation: ConversationId, state: Option<String> },
    /// What the engine keeps of an agent, as JSON text; `None` when there is nothing to keep.
    AgentState { agent: UserId, state: Option<String> },
}

impl EngineWrite {
    /// The conversation the write changes, if it changes one.
    #[must_use]
    pub const fn conversation(&self) -> Option<ConversationId> {
        match self {
            Self::Status { conversation, .. }
            | Self::AgentAlias { conversation, .. }
            | Self::Transferred { conversation, .. }
            | Self::Outcome { conversation, .. }
            | Self::WorkflowRun { conversation, .. }
            | Self::Append { conversation, .. }
            | Self::ChatState { conversation, .. } => Some(*conversation),
            Self::QueueEntry(e) => Some(e.conversation_id),
            Self::UserSession(s) => Some(s.conversation_id),
            Self::ServiceSession(s) => Some(s.conversation_id),
            Self::Presence { .. } | Self::AgentState { .. } => None,
        }
    }
}

/// What a tenant's engine kept, read back when it rebuilds: JSON text, opaque to the store (text,
/// not parsed values: a rebuild reads every open chat's, and parses each straight into its type).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngineState {
    pub chats: Vec<(ConversationId, String)>,
    pub agents: Vec<(UserId, String)>,
}

/// This process's claim on its database, held until dropped (or the process dies). Until
/// several nodes share a database through leases, two processes on one database would each
/// run every tenant's engine and strand each other's chats, so the second one refuses to start.
pub struct NodeClaim(#[allow(dead_code)] Box<dyn std::any::Any + Send + Sync>);

impl NodeClaim {
    pub(crate) fn new(held: impl std::any::Any + Send + Sync) -> Self {
        Self(Box::new(held))
    }
}

impl std::fmt::Debug for NodeClaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeClaim")
    }
}

/// Which implementation is behind the trait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A tenant admin API key as stored: the secret only as a hash.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: ApiKeyId,
    pub tenant_id: TenantId,
    pub name: String,
    /// Hex SHA-256 of the secret half of the key.
    pub secret_hash: String,
    pub created_at: OffsetDateTime,
}

impl std::fmt::Debug for ApiKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyRecord")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("name", &self.name)
            .field("secret_hash", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// A signed-in agent's browser session.
#[derive(Clone, PartialEq, Eq)]
pub struct AgentSession {
    /// Hex SHA-256 of the cookie value.
    pub token_hash: String,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for AgentSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentSession")
            .field("tenant_id", &self.tenant_id)
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The credential a visitor presents for one conversation.
#[derive(Clone, PartialEq, Eq)]
pub struct VisitorCredential {
    /// Hex SHA-256 of the secret half of the visitor token.
    pub token_hash: String,
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for VisitorCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VisitorCredential").field("expires_at", &self.expires_at).finish_non_exhaustive()
    }
}

/// A log entry to append; the store assigns its `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    pub tenant_id: TenantId,
    pub conversation_id: ConversationId,
    /// Idempotency key: appending the same key to the same conversation again returns the
    /// entry written the first time, flagged `duplicate`, and writes nothing.
    pub client_msg_id: Option<String>,
    pub body: EntryBody,
    pub created_at: OffsetDateTime,
}

/// An entry as written (or as found, for a duplicate `client_msg_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub entry: LogEntry,
    pub duplicate: bool,
}

/// Where a queued conversation stands, kept so a restart rebuilds the queues in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueEntry {
    pub conversation_id: ConversationId,
    /// When it (last) entered its service's queue.
    pub queued_at: OffsetDateTime,
    pub priority: Priority,
}

/// A time window and page size for reporting reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportWindow {
    /// Sessions that ended at or after this instant…
    pub from: OffsetDateTime,
    /// …and before this one.
    pub to: OffsetDateTime,
    /// Most rows returned.
    pub limit: u32,
}

/// Everything Parley persists. Implementations: SQLite (default) and PostgreSQL.
///
/// Timestamps round-trip with microsecond precision; callers pass values already truncated to
/// microseconds. Lists are returned in a stable order (documented per method).
///
/// Writes that refer to another row (a unit's parent, a user's unit, a service's workflow or
/// calendars, a member, a conversation's service, agent, direct user or workflow version, a
/// version's workflow or the version it restores, a session's user) fail `NotFound` when the
/// tenant has no such row.
/// A duplicate id fails `Conflict` named after the id (`user_id`, …). Updates and deletes of a
/// row the tenant does not have fail `NotFound`.
/// A file sent in a conversation, as the store keeps it (the bytes live in the attachment
/// folder under its id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentRecord {
    pub tenant_id: TenantId,
    pub conversation_id: ConversationId,
    pub attachment: Attachment,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    pub created_at: OffsetDateTime,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which implementation this is.
    fn backend(&self) -> Backend;
    /// Applies the embedded migrations (idempotent).
    async fn migrate(&self) -> Result<()>;
    /// A trivial query, for readiness.
    async fn ping(&self) -> Result<()>;
    /// Closes the pools after in-flight work.
    async fn close(&self);
    /// Claims the database for this process: a lock file beside a SQLite file, an advisory lock
    /// held on its own connection in PostgreSQL. `InUse` (saying who holds it) when another
    /// process has it.
    async fn claim_node(&self) -> Result<NodeClaim>;

    /// Writes one engine input's effects in order, in one transaction: all of them or none. The
    /// log entries it appended are returned (with their `seq`) for the caller to publish.
    async fn commit_engine(&self, tenant: TenantId, writes: &[EngineWrite]) -> Result<Vec<LogEntry>>;
    /// Everything the tenant's engine kept (chats and agents), for its rebuild.
    async fn load_engine_state(&self, tenant: TenantId) -> Result<EngineState>;

    /// Creates a tenant with its root organization unit and first admin key, atomically.
    /// `Conflict("tenant_slug")` when the slug is taken.
    async fn create_tenant(&self, tenant: &Tenant, root: &OrgUnit, key: &ApiKeyRecord) -> Result<()>;
    async fn get_tenant(&self, id: TenantId) -> Result<Tenant>;
    async fn find_tenant_by_slug(&self, slug: &str) -> Result<Tenant>;
    /// Ordered by `created_at`, then id.
    async fn list_tenants(&self) -> Result<Vec<Tenant>>;

    async fn create_api_key(&self, key: &ApiKeyRecord) -> Result<()>;
    /// Credential lookup: the record names its tenant.
    async fn find_api_key(&self, id: ApiKeyId) -> Result<ApiKeyRecord>;

    async fn create_org_unit(&self, ou: &OrgUnit) -> Result<()>;
    async fn get_org_unit(&self, tenant: TenantId, id: OrgUnitId) -> Result<OrgUnit>;
    /// Ordered by insertion (root first).
    async fn list_org_units(&self, tenant: TenantId) -> Result<Vec<OrgUnit>>;

    /// Stores the user with their personal snippet (credentials as minted by the caller, and
    /// settings). `Conflict("user_email")` when the e-mail is taken in this tenant,
    /// `Conflict("user_contact_id")` when a user or a service of any tenant has the Contact ID.
    async fn create_user(&self, user: &User, password_hash: Option<&str>) -> Result<()>;
    async fn get_user(&self, tenant: TenantId, id: UserId) -> Result<User>;
    /// Ordered by `created_at`, then id.
    async fn list_users(&self, tenant: TenantId) -> Result<Vec<User>>;
    /// The user with this (lowercase) e-mail and their password hash, if any.
    async fn find_user_login(&self, tenant: TenantId, email: &str) -> Result<(User, Option<String>)>;
    /// `NotFound` when the tenant has no such user.
    async fn set_presence(&self, tenant: TenantId, user: UserId, presence: Presence) -> Result<()> {
        self.commit_engine(tenant, &[EngineWrite::Presence { user, presence }]).await.map(drop)
    }
    /// Credential lookup by the personal snippet's Contact ID: the user names their tenant.
    async fn find_user_by_contact_id(&self, contact_id: &str) -> Result<User>;
    /// Replaces the settings of the user's personal snippet (its credentials never change here)
    /// and returns the user as now stored. `NotFound` when the tenant has no such user.
    async fn set_direct_chat(&self, tenant: TenantId, user: UserId, settings: &DirectChatSettings) -> Result<User>;
    /// Replaces the widget key of the user's personal snippet (regenerated by the caller; the
    /// Contact ID stays). `NotFound` when the tenant has no such user.
    async fn set_user_widget_key(&self, tenant: TenantId, user: UserId, widget_key: &str) -> Result<()>;

    async fn create_session(&self, session: &AgentSession) -> Result<()>;
    /// Credential lookup: the session names its tenant. Expired sessions are still returned;
    /// the caller compares `expires_at` with its clock.
    async fn find_session(&self, token_hash: &str) -> Result<AgentSession>;
    /// Idempotent: deleting a session that is not there is not an error (signing out twice).
    async fn delete_session(&self, token_hash: &str) -> Result<()>;

    /// Creates a workflow; with `first` (its version 1) it is published in the same transaction
    /// and `workflow.current_version` must be `Some(1)`.
    async fn create_workflow(&self, workflow: &Workflow, first: Option<&WorkflowVersion>) -> Result<()>;
    async fn get_workflow(&self, tenant: TenantId, id: WorkflowId) -> Result<Workflow>;
    /// Ordered by `created_at`, then id.
    async fn list_workflows(&self, tenant: TenantId) -> Result<Vec<Workflow>>;
    /// Replaces the draft (and the name) and sets `updated_at`.
    async fn update_workflow_draft(
        &self,
        tenant: TenantId,
        id: WorkflowId,
        name: &str,
        draft: &WorkflowDefinition,
        updated_at: OffsetDateTime,
    ) -> Result<()>;
    /// Stores a new immutable version and makes it the workflow's current version, atomically.
    /// `Conflict("workflow_version")` when that version number exists (a concurrent publish);
    /// `NotFound` when the tenant has no such workflow.
    async fn publish_workflow_version(&self, version: &WorkflowVersion) -> Result<()>;
    async fn get_workflow_version(
        &self,
        tenant: TenantId,
        workflow: WorkflowId,
        version: u32,
    ) -> Result<WorkflowVersion>;
    /// Every version of the workflow, oldest first (empty for an unknown workflow).
    async fn list_workflow_versions(&self, tenant: TenantId, workflow: WorkflowId) -> Result<Vec<WorkflowVersion>>;

    /// `Conflict("parameter_id")` when the tenant has a parameter with this id.
    async fn create_parameter(&self, parameter: &CustomParameter) -> Result<()>;
    async fn get_parameter(&self, tenant: TenantId, id: &str) -> Result<CustomParameter>;
    /// Ordered by id.
    async fn list_parameters(&self, tenant: TenantId) -> Result<Vec<CustomParameter>>;
    /// Updates name and default (the id and unit never change).
    async fn update_parameter(&self, parameter: &CustomParameter) -> Result<()>;
    async fn delete_parameter(&self, tenant: TenantId, id: &str) -> Result<()>;

    async fn create_calendar(&self, calendar: &OpeningCalendar) -> Result<()>;
    async fn get_calendar(&self, tenant: TenantId, id: CalendarId) -> Result<OpeningCalendar>;
    /// Ordered by `created_at`, then id.
    async fn list_calendars(&self, tenant: TenantId) -> Result<Vec<OpeningCalendar>>;
    /// Replaces name and calendar body (id, unit and creation time never change).
    async fn update_calendar(&self, calendar: &OpeningCalendar) -> Result<()>;
    /// `Conflict("calendar_in_use")` while a service names it.
    async fn delete_calendar(&self, tenant: TenantId, id: CalendarId) -> Result<()>;

    /// Creates a service and its memberships atomically. `Conflict("service_contact_id")` when a
    /// service or a user of any tenant has the Contact ID.
    /// Every member must name this service (`Other` otherwise) and a user of the tenant.
    async fn create_service(&self, service: &Service, members: &[Membership]) -> Result<()>;
    async fn get_service(&self, tenant: TenantId, id: ServiceId) -> Result<Service>;
    /// Ordered by `created_at`, then id.
    async fn list_services(&self, tenant: TenantId) -> Result<Vec<Service>>;
    /// Replaces name, workflow and calendars (id, unit, snippet credentials and creation time
    /// never change). `NotFound` when the service, the workflow or a calendar is not the tenant's.
    async fn update_service(&self, service: &Service) -> Result<()>;
    /// Credential lookup by the snippet's Contact ID: the service names its tenant.
    async fn find_service_by_contact_id(&self, contact_id: &str) -> Result<Service>;
    /// Replaces the widget key of the service's snippet (regenerated by the caller; the Contact
    /// ID stays). `NotFound` when the tenant has no such service.
    async fn set_service_widget_key(&self, tenant: TenantId, service: ServiceId, widget_key: &str) -> Result<()>;
    /// Inserts or updates one membership; `NotFound` unless both the service and the user
    /// belong to `tenant`.
    async fn set_membership(&self, tenant: TenantId, membership: &Membership) -> Result<()>;
    /// `NotFound` when there was no such membership.
    async fn remove_membership(&self, tenant: TenantId, service: ServiceId, user: UserId) -> Result<()>;
    /// All memberships of the tenant, ordered by service then user.
    async fn list_memberships(&self, tenant: TenantId) -> Result<Vec<Membership>>;

    /// Stores a new conversation (with `last_seq` 0) and its visitor credential. It names either
    /// a service and the workflow version it runs, or (a direct chat) only its `direct_user_id`:
    /// `Other` otherwise. `NotFound` when the service, version or user is not the tenant's.
    async fn create_conversation(&self, conversation: &Conversation, credential: &VisitorCredential) -> Result<()>;
    async fn get_conversation(&self, tenant: TenantId, id: ConversationId) -> Result<Conversation>;
    async fn visitor_credential(&self, tenant: TenantId, id: ConversationId) -> Result<VisitorCredential>;
    /// Sets status, agent and end time together. `NotFound` when the tenant has no such
    /// conversation or agent.
    async fn update_conversation(
        &self,
        tenant: TenantId,
        id: ConversationId,
        status: ConversationStatus,
        agent: Option<UserId>,
        ended_at: Option<OffsetDateTime>,
    ) -> Result<()> {
        let w = EngineWrite::Status { conversation: id, status, agent, ended_at };
        self.commit_engine(tenant, &[w]).await.map(drop)
    }
    /// Sets the name the customer reads for the connected agent. `NotFound` for another
    /// tenant's conversation.
    async fn set_agent_alias(&self, tenant: TenantId, id: ConversationId, alias: &str) -> Result<()> {
        let w = EngineWrite::AgentAlias { conversation: id, alias: alias.to_owned() };
        self.commit_engine(tenant, &[w]).await.map(drop)
    }
    /// Moves the conversation to another service and the version of its workflow it now runs.
    /// A direct chat is not transferred (`Other`: it would name a service and a user).
    async fn transfer_conversation(
        &self,
        tenant: TenantId,
        id: ConversationId,
        service: ServiceId,
        workflow: WorkflowId,
        version: u32,
    ) -> Result<()> {
        let w = EngineWrite::Transferred { conversation: id, service, workflow, version };
        self.commit_engine(tenant, &[w]).await.map(drop)
    }
    /// Records how the conversation ended (set once, when it ends; a later call replaces it).
    async fn set_outcome(
        &self,
        tenant: TenantId,
        id: ConversationId,
        outcome: Outcome,
        reason: Option<&str>,
    ) -> Result<()> {
        let w = EngineWrite::Outcome { conversation: id, outcome, reason: reason.map(str::to_owned) };
        self.commit_engine(tenant, &[w]).await.map(drop)
    }
    /// Keeps the record of what the conversation's workflow did (opaque JSON for the store).
    async fn save_workflow_run(&self, tenant: TenantId, id: ConversationId, run: &serde_json::Value) -> Result<()> {
        let w = EngineWrite::WorkflowRun { conversation: id, run: run.clone() };
        self.commit_engine(tenant, &[w]).await.map(drop)
    }
    /// The saved workflow record; `None` when none was saved, `NotFound` for an unknown
    /// conversation.
    async fn get_workflow_run(&self, tenant: TenantId, id: ConversationId) -> Result<Option<serde_json::Value>>;
    /// Raises what `reader` has received and read of the conversation to `mark` (a mark never
    /// goes down nor past the log's `last_seq`, and reading implies delivery) and returns both
    /// sides' marks as they now are. `NotFound` for an unknown conversation.
    async fn mark_receipt(
        &self,
        tenant: TenantId,
        id: ConversationId,
        reader: Reader,
        mark: Watermark,
    ) -> Result<Receipts>;
    /// Both sides' marks; `NotFound` for an unknown conversation.
    async fn get_receipts(&self, tenant: TenantId, id: ConversationId) -> Result<Receipts>;
    /// Records a stored file. `Conflict("attachment_id")` when the id exists (a retried
    /// upload: compare `sha256`), `NotFound` when the tenant has no such conversation.
    async fn create_attachment(&self, record: &AttachmentRecord) -> Result<()>;
    /// `NotFound` unless the file was sent in this conversation of this tenant.
    async fn get_attachment(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        id: AttachmentId,
    ) -> Result<AttachmentRecord>;
    async fn create_system_messages(&self, item: &SystemMessages) -> Result<()>;
    async fn get_system_messages(&self, tenant: TenantId, id: SystemMessagesId) -> Result<SystemMessages>;
    /// Ordered by `created_at`, then id.
    async fn list_system_messages(&self, tenant: TenantId) -> Result<Vec<SystemMessages>>;
    /// Replaces the content (id, unit and creation time never change).
    async fn update_system_messages(&self, item: &SystemMessages) -> Result<()>;
    /// `NotFound` for an unknown item (the API refuses items services or users still use).
    async fn delete_system_messages(&self, tenant: TenantId, id: SystemMessagesId) -> Result<()>;
    async fn create_domain_template(&self, template: &DomainTemplate) -> Result<()>;
    async fn get_domain_template(&self, tenant: TenantId, id: DomainTemplateId) -> Result<DomainTemplate>;
    /// Ordered by `created_at`, then id.
    async fn list_domain_templates(&self, tenant: TenantId) -> Result<Vec<DomainTemplate>>;
    /// Replaces name and origins (id, unit and creation time never change).
    async fn update_domain_template(&self, template: &DomainTemplate) -> Result<()>;
    /// `NotFound` for an unknown template (the API refuses templates services still use).
    async fn delete_domain_template(&self, tenant: TenantId, id: DomainTemplateId) -> Result<()>;

    /// `Conflict("code_name")` when the tenant has a code of that name (case-insensitive).
    async fn create_code(&self, code: &Code) -> Result<()>;
    async fn get_code(&self, tenant: TenantId, id: CodeId) -> Result<Code>;
    /// Ordered by name (case-folded), then id.
    async fn list_codes(&self, tenant: TenantId) -> Result<Vec<Code>>;
    /// Renames and re-describes (unit and creation never change); `Conflict("code_name")` as
    /// for a new one.
    async fn update_code(&self, code: &Code) -> Result<()>;
    async fn delete_code(&self, tenant: TenantId, id: CodeId) -> Result<()>;
    /// Ended conversations with a wrap-up whose end falls in the window (of one service, when
    /// given), newest first.
    async fn list_wrapped_up(
        &self,
        tenant: TenantId,
        window: ReportWindow,
        service: Option<ServiceId>,
    ) -> Result<Vec<Conversation>>;
    /// Replaces the conversation's codes and tags. `NotFound` for another tenant's.
    async fn set_wrap_up(&self, tenant: TenantId, id: ConversationId, wrap_up: &WrapUp) -> Result<()>;
    /// `Conflict("skill_name")` when the tenant has a skill of that name (case-insensitive).
    async fn create_skill(&self, skill: &Skill) -> Result<()>;
    /// Ordered by name.
    async fn list_skills(&self, tenant: TenantId) -> Result<Vec<Skill>>;
    /// `Conflict("skill_in_use")` while a user holds it; `NotFound` for an unknown skill.
    async fn delete_skill(&self, tenant: TenantId, id: SkillId) -> Result<()>;
    /// Replaces the user's skills atomically. `NotFound` when the user or a skill is not the
    /// tenant's.
    async fn set_user_skills(&self, tenant: TenantId, user: UserId, skills: &[UserSkill]) -> Result<()>;
    /// Every skill every user of the tenant holds, ordered by user then skill.
    async fn list_user_skills(&self, tenant: TenantId) -> Result<Vec<(UserId, UserSkill)>>;

    /// Records when the conversation entered its queue and with which priority (called again
    /// when the priority changes or it is queued anew after a transfer).
    async fn set_queue_entry(&self, tenant: TenantId, entry: &QueueEntry) -> Result<()> {
        self.commit_engine(tenant, &[EngineWrite::QueueEntry(*entry)]).await.map(drop)
    }
    /// The queue entries of the tenant's open conversations (any order).
    async fn list_queue_entries(&self, tenant: TenantId) -> Result<Vec<QueueEntry>>;

    /// Writes a finished user session (an offer, or a direct chat's invitation without a service,
    /// and what came of it). `NotFound` when the conversation, service or user is not the tenant's.
    async fn record_user_session(&self, session: &UserSession) -> Result<()> {
        self.commit_engine(session.tenant_id, &[EngineWrite::UserSession(session.clone())]).await.map(drop)
    }
    /// Writes a finished service session. `NotFound` when the conversation, service or user is
    /// not the tenant's.
    async fn record_service_session(&self, session: &ServiceSession) -> Result<()> {
        self.commit_engine(session.tenant_id, &[EngineWrite::ServiceSession(session.clone())]).await.map(drop)
    }
    /// User sessions that ended in the window, newest first, optionally of one user.
    async fn list_user_sessions(
        &self,
        tenant: TenantId,
        window: ReportWindow,
        user: Option<UserId>,
    ) -> Result<Vec<UserSession>>;
    /// Service sessions that ended in the window, newest first, optionally of one service.
    async fn list_service_sessions(
        &self,
        tenant: TenantId,
        window: ReportWindow,
        service: Option<ServiceId>,
    ) -> Result<Vec<ServiceSession>>;
    /// The agent who last handled a conversation of this customer (by e-mail, lowercase) that
    /// ended at or after `since`, for last-agent routing.
    async fn last_agent_of_customer(
        &self,
        tenant: TenantId,
        email: &str,
        since: OffsetDateTime,
    ) -> Result<Option<UserId>>;
    /// Conversations not `Ended`, ordered by `created_at`, then id (the engine rebuilds from these).
    async fn list_open_conversations(&self, tenant: TenantId) -> Result<Vec<Conversation>>;
    /// The agent's most recent conversations (those they held, and direct chats addressed to
    /// them whatever came of them), newest first.
    async fn list_agent_conversations(&self, tenant: TenantId, agent: UserId, limit: u32) -> Result<Vec<Conversation>>;

    /// Appends entries in one transaction and reports each one's outcome in input order. Each
    /// entry gets the conversation's next `seq` (its `last_seq` + 1); an unknown conversation
    /// (or one of another tenant) yields `NotFound` for that entry only. An entry with a
    /// `client_msg_id` (a person's message) is refused with `NotFound` once the conversation's
    /// status is `ended`, unless it is a duplicate, which still answers with the original.
    async fn append_batch(&self, entries: &[NewEntry]) -> Vec<Result<Appended>>;
    /// Entries with `seq > since_seq`, ascending, at most `limit`. `NotFound` when the tenant
    /// has no such conversation (an empty page means nothing new).
    async fn read_log(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        since_seq: i64,
        limit: u32,
    ) -> Result<Vec<LogEntry>>;
}

impl std::fmt::Debug for dyn Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({:?})", self.backend())
    }
}

/// Opens the store the URL names: `sqlite://path/to/file.db` (created if missing) or
/// `postgres://…` / `postgresql://…`. Does not migrate; call [`Store::migrate`].
///
/// # Errors
/// `Unavailable` when the database cannot be opened, `Other` for an unknown scheme.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgStore::connect(url).await?))
    } else {
        Err(StoreError::Other(format!(
            "unsupported database URL scheme in '{}': use sqlite:// or postgres://",
            url.split(':').next().unwrap_or_default()
        )))
    }
}
