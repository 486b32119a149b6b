//! What the SQLite and PostgreSQL backends share: turning rows into domain values and database
//! errors into [`StoreError`]s.
//!
//! The two schemas use the same table and column names and differ only in how a UUID, a time and
//! a JSON value are encoded. [`Cols`] hides exactly that difference, so each domain type is read
//! from a row by one function here rather than by two near-copies that could drift apart.

use crate::{AgentSession, ApiKeyRecord, AttachmentRecord, QueueEntry, StoreError, VisitorCredential};
use parley_domain::calendar::OpeningCalendar;
use parley_domain::workflow::{Priority, Workflow, WorkflowKind, WorkflowVersion};
use parley_domain::{
    ApiKeyId, CalendarId, Conversation, ConversationId, ConversationStatus, CustomParameter, Customer, DirectChat,
    DirectChatSettings, DomainTemplate, DomainTemplateId, LogEntry, Membership, OrgUnit, OrgUnitId, Outcome, Presence,
    Service, ServiceId, ServiceSession, Skill, SkillId, Tenant, TenantId, User, UserId, UserOutcome, UserSession,
    UserSkill, WorkflowId,
};
use parley_domain::{Attachment, AttachmentId, Reader, Receipts, SystemMessages, SystemMessagesId, Watermark};
use parley_domain::{Code, CodeId};
use serde::de::DeserializeOwned;
use sqlx::error::{DatabaseError, ErrorKind};
use time::OffsetDateTime;
use uuid::Uuid;

/// Column reads whose encoding differs between the backends (see the migrations' headers).
pub(crate) trait Cols {
    fn uuid(&self, col: &str) -> Result<Uuid, StoreError>;
    fn opt_uuid(&self, col: &str) -> Result<Option<Uuid>, StoreError>;
    fn time(&self, col: &str) -> Result<OffsetDateTime, StoreError>;
    fn opt_time(&self, col: &str) -> Result<Option<OffsetDateTime>, StoreError>;
    fn json<T: DeserializeOwned>(&self, col: &str) -> Result<T, StoreError>;
    fn opt_json<T: DeserializeOwned>(&self, col: &str) -> Result<Option<T>, StoreError>;
    fn text(&self, col: &str) -> Result<String, StoreError>;
    fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError>;
    fn int(&self, col: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>, StoreError>;
    fn flag(&self, col: &str) -> Result<bool, StoreError>;
}

/// What a tenant's engine kept, from the rows of `engine_chats` and `engine_agents`.
pub(crate) fn engine_state<R: Cols>(chats: &[R], agents: &[R]) -> Result<crate::EngineState, StoreError> {
    Ok(crate::EngineState {
        chats: chats
            .iter()
            .map(|r| Ok((parley_domain::ConversationId(r.uuid("conversation_id")?), r.text("state")?)))
            .collect::<Result<_, StoreError>>()?,
        agents: agents
            .iter()
            .map(|r| Ok((parley_domain::UserId(r.uuid("user_id")?), r.text("state")?)))
            .collect::<Result<_, StoreError>>()?,
    })
}

/// `SELECT <the columns this module's readers use> FROM <table>`, for both backends (their
/// column names are the same), as a literal so queries can `concat!` their conditions onto it.
macro_rules! select {
    (tenants) => {
        "SELECT id, slug, name, root_ou_id, created_at FROM tenants"
    };
    (api_keys) => {
        "SELECT id, tenant_id, name, secret_hash, created_at FROM api_keys"
    };
    (org_units) => {
        "SELECT id, tenant_id, name, parent_id FROM org_units"
    };
    (users) => {
        concat!("SELECT ", $crate::sql::columns!(users), " FROM users")
    };
    (agent_sessions) => {
        "SELECT token_hash, tenant_id, user_id, created_at, expires_at FROM agent_sessions"
    };
    (workflows) => {
        "SELECT id, tenant_id, ou_id, name, kind, draft, current_version, created_at, updated_at FROM workflows"
    };
    (workflow_versions) => {
        "SELECT tenant_id, workflow_id, version, definition, published_at, restored_from FROM workflow_versions"
    };
    (parameters) => {
        "SELECT tenant_id, id, ou_id, name, default_value, created_at FROM parameters"
    };
    (calendars) => {
        "SELECT id, tenant_id, ou_id, name, calendar, created_at FROM calendars"
    };
    (services) => {
        "SELECT id, tenant_id, ou_id, name, workflow_id, contact_id, widget_key, primary_calendar_id, \
         secondary_calendar_id, routing, access, system_messages_id, codes, created_at FROM services"
    };
    (system_messages) => {
        "SELECT id, tenant_id, ou_id, content, created_at FROM system_messages"
    };
    (domain_templates) => {
        "SELECT id, tenant_id, ou_id, name, origins, created_at FROM domain_templates"
    };
    (memberships) => {
        "SELECT service_id, user_id, active FROM memberships"
    };
    (conversations) => {
        "SELECT id, tenant_id, service_id, workflow_id, workflow_version, direct_user_id, status, customer_name, \
         customer_email, privacy_consent, first_message, agent_id, last_seq, created_at, ended_at, outcome, \
         outcome_reason, customer_language, agent_alias, wrap_up FROM conversations"
    };
    (log_entries) => {
        "SELECT conversation_id, seq, client_msg_id, body, created_at FROM log_entries"
    };
    (queue_entries) => {
        "SELECT id, queued_at, priority FROM conversations"
    };
    (user_sessions) => {
        "SELECT id, tenant_id, conversation_id, service_id, user_id, outcome, offered_at, answered_at, ended_at, \
         ring_secs, connected_secs FROM user_sessions"
    };
    (service_sessions) => {
        "SELECT id, tenant_id, conversation_id, service_id, outcome, user_id, started_at, ended_at, ivr_secs, \
         queue_secs, connected_secs, offers FROM service_sessions"
    };
    (codes) => {
        "SELECT id, tenant_id, ou_id, name, description, created_at FROM codes"
    };
    (skills) => {
        "SELECT id, tenant_id, name, created_at FROM skills"
    };
    (user_skills) => {
        "SELECT user_id, skill_id, level FROM user_skills"
    };
}
pub(crate) use select;

/// The column list of a table as [`select!`] reads it, for `RETURNING` clauses.
macro_rules! columns {
    (users) => {
        "id, tenant_id, ou_id, display_name, email, licences, im_enabled, max_chats, presence, contact_id, \
         widget_key, direct, created_at, password_hash"
    };
}
pub(crate) use columns;

/// A reporting read of a session table, for both backends: the rows of tenant `$1` that ended in
/// the window `[$2, $3)`, newest first (ties by id), at most `$4`; given a column, only the rows
/// whose column is `$5`. The conditions match the tables' `…_by_end` and per-column indexes.
macro_rules! windowed {
    ($table:tt) => {
        concat!(
            $crate::sql::select!($table),
            " WHERE tenant_id = $1 AND ended_at >= $2 AND ended_at < $3 ORDER BY ended_at DESC, id DESC LIMIT $4"
        )
    };
    ($table:tt, $column:literal) => {
        concat!(
            $crate::sql::select!($table),
            " WHERE tenant_id = $1 AND ",
            $column,
            " = $5 AND ended_at >= $2 AND ended_at < $3 ORDER BY ended_at DESC, id DESC LIMIT $4"
        )
    };
}
pub(crate) use windowed;

/// `list_wrapped_up`'s query; `$5` is the service when `by_service`.
pub(crate) fn wrapped_up_query(by_service: bool) -> &'static str {
    if by_service {
        concat!(
            select!(conversations),
            " WHERE tenant_id = $1 AND wrap_up IS NOT NULL AND ended_at >= $2 AND ended_at < $3 AND service_id = $5 \
             ORDER BY ended_at DESC, id DESC LIMIT $4"
        )
    } else {
        concat!(
            select!(conversations),
            " WHERE tenant_id = $1 AND wrap_up IS NOT NULL AND ended_at >= $2 AND ended_at < $3 \
             ORDER BY ended_at DESC, id DESC LIMIT $4"
        )
    }
}

/// A column that could not be read as the schema promises: the database was changed behind our
/// back or a migration is missing. Not the client's fault, so not `NotFound`.
pub(crate) fn decode_error(col: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Other(format!("column {col}: {e}"))
}

/// A version number (`u32` in the domain, a 64-bit integer in both schemas).
fn version(r: &impl Cols, col: &str) -> Result<u32, StoreError> {
    u32::try_from(r.int(col)?).map_err(|e| decode_error(col, e))
}

fn opt_version(r: &impl Cols, col: &str) -> Result<Option<u32>, StoreError> {
    r.opt_int(col)?.map(|v| u32::try_from(v).map_err(|e| decode_error(col, e))).transpose()
}

pub(crate) fn tenant(r: &impl Cols) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: TenantId(r.uuid("id")?),
        slug: r.text("slug")?,
        name: r.text("name")?,
        root_ou_id: OrgUnitId(r.uuid("root_ou_id")?),
        created_at: r.time("created_at")?,
    })
}

pub(crate) fn api_key(r: &impl Cols) -> Result<ApiKeyRecord, StoreError> {
    Ok(ApiKeyRecord {
        id: ApiKeyId(r.uuid("id")?),
        tenant_id: TenantId(r.uuid("tenant_id")?),
        name: r.text("name")?,
        secret_hash: r.text("secret_hash")?,
        created_at: r.time("created_at")?,
    })
}

pub(crate) fn org_unit(r: &impl Cols) -> Result<OrgUnit, StoreError> {
    Ok(OrgUnit {
        id: OrgUnitId(r.uuid("id")?),
        tenant_id: TenantId(r.uuid("tenant_id")?),
        name: r.text("name")?,
        parent_id: r.opt_uuid("parent_id")?.map(OrgUnitId),
    })
}

pub(crate) fn user(r: &impl Cols) -> Result<User, StoreError> {
    let presence = r.text("presence")?;
    let max_chats = r.int("max_chats")?;
    Ok(User {
        id: UserId(r.uuid("id")?),
        tenant_id: TenantId(r.uuid("tenant_id")?),
        ou_id: OrgUnitId(r.uuid("ou_id")?),
        display_name: r.text("display_name")?,
        email: r.text("email")?,
        licences: r.json("licences")?,
        im_enabled: r.flag("im_enabled")?,
        max_chats: u32::try_from(max_chats).map_err(|e| decode_error("max_chats", e))?,
        presence: Presence::parse(&presence).ok_or_else(|| decode_error("presence", presence))?,
        direct: DirectChat {
            contact_id: r.text("contact_id")?,
            widget_key: r.text("widget_key")?,
            // '{}' (every user before direct chats) reads as the defaults, as would a JSON null.
            settings: r.json::<Option<DirectChatSettings>>("direct")?.unwrap_or_default(),
        },
        created_at: r.time("created_at")?,
    })
}

pub(crate) fn session(r: &impl Cols) -> Result<AgentSession, StoreError> {
    Ok(AgentSession {
        token_hash: r.text("token_hash")?,
        tenant_id: TenantId(r.uuid("tenant_id")?),
        user_id: UserId(r.uuid("user_id")?),
        created_at: r.time("created_at")?,
        expires_at: r.time("expires_at")?,
    })
}

pub(crate) fn workflow(r: &impl Cols) -> Result<Workflow, StoreError> {
    let kind = r.text("kind")?;
    Ok(Workflow {
        id: WorkflowId(r.uuid("id")?),
        tenant_id: TenantId(r.uuid("tenant_id")?),
        ou_id: OrgUnitId(r.uuid("ou_id")?),
        name: r.text("name")?,
        kind: parse_workflow_kind(&kind).ok_or_else(|| decode_error("kind", kind))?,
        draft: r.json("draft")?,
        current_version: opt_version(r, "current_version")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

pub(crate) fn workflow_version(r: &impl Cols) -> Result<WorkflowVersion, StoreError> {
    Ok(WorkflowVersion {
        workflow_id: WorkflowId(r.uuid("workflow_id")?),
        tenant_id: TenantId(r.uuid("tenant_id")?),
        version: version(r, "version")?,
        definition: r.json("definition")?,
        published_at: r.time("published_at")?,
        restored_from: opt_version(r, "restored_from")?,
    })
}

pub(crate) fn parameter(r: &impl Cols) -> Result<CustomParameter, StoreError> {
    Ok(CustomParameter {
        id: r.text("id")?,
        tenant_id: TenantId(r.uuid("tenant_id")?),
        ou_id: OrgUnitId(r.uuid("ou_id")?),
        name: r.text("name")?,
        default_value: r.text("default_value")?,
        created_at: r.time("created_at")?,
    })
}

pub(crate) fn calendar(r: &impl Cols) -> Result<OpeningCalendar, StoreError> {
    Ok(OpeningCalendar {
        id: CalendarId(r.uuid("id")?),
        tenant_id: TenantId(r.uuid("tenant_id")?),
        ou_id: OrgUnitId(r.uuid("ou_id")?),
        name: r.text("name")?,
        calendar: r.json("calendar")?,
        created_at: r.time("created_at")?,
    })
}

pub(crate) fn system_messages(r: &impl Cols) -> Result<SystemMessages, StoreError> {
    Ok(SystemMessages {
        id: SystemMessagesId(r.uuid("id")?),
        tenant_id: TenantId(r.uuid("tenant_id")?),
        ou_id: OrgUnitId(r.uuid("ou_id")?),
        content: r.json("content")?,
        created_at: r.time("created_at")?,
    })
}

pub(crate) fn domain_template(r: &impl Cols) -> Result<DomainTemplate, StoreError> {
    Ok(DomainTemplate {
        id: DomainTemplateId(r.uuid("id")?),
        tenant_id: TenantId(r.uuid("tenant_id")?),
        ou_id: OrgUnitId(r.uuid("ou_id")?),
        name: r.text("name")?,
        origins: r.json("origins")?,
        created_at: r.time("created_at")?,
    })
}

pub(crate) fn service(r: &impl Cols) -> Result<Service, StoreError> {
    Ok(Service {
        id: ServiceId(r.uuid("id")?),
        tenant_id: TenantId(r.uuid("tenant_id")?),
        ou_id: OrgUnitId(r.uuid("ou_id")?),
        name: r.text("name")?,
        workflow_id: WorkflowId(r.uuid("workflow_id")?),
        contact_id: r.text("contact_id")?,
        widget_key: r.text("widget_key")?,
        primary_calendar_id: r.opt_uuid("primary_calendar_id")?.map(CalendarId),
        secondary_calendar_id: r.opt_uuid("secondary_calendar_id")?.map(CalendarId),
        routing: r.json("routing")?,
        access: r.json("access")?,
        system_messages_id: r.opt_uuid("system_messages_id")?.map(SystemMessagesId),
        codes: r.json("codes")?,
        created_at: r.time("created_at")?,
    })
}

pub(crate) fn membership(r: &impl Cols) -> Result<Membership, StoreError> {
    Ok(Membership {
        service_id: ServiceId(r.uuid("service_id")?),
        user_id: UserId(r.uuid("user_id")?),
        active: r.flag("active")?,
    })
}

pub(crate) fn conversation(r: &impl Cols) -> Result<Conversation, StoreError> {
    let status = r.text("status")?;
    let outcome =
        r.opt_text("outcome")?.map(|o| Outcome::parse(&o).ok_or_else(|| decode_error("outcome", o))).transpose()?;
    Ok(Conversation {
        id: ConversationId(r.uuid("id")?),
        tenant_id: TenantId(r.uuid("tenant_id")?),
        service_id: r.opt_uuid("service_id")?.map(ServiceId),
        workflow_id: r.opt_uuid("workflow_id")?.map(WorkflowId),
        workflow_version: opt_version(r, "workflow_version")?,
        direct_user_id: r.opt_uuid("direct_user_id")?.map(UserId),
        status: ConversationStatus::parse(&status).ok_or_else(|| decode_error("status", status))?,
        customer: Customer {
            display_name: r.text("customer_name")?,
            email: r.text("customer_email")?,
            privacy_consent: r.flag("privacy_consent")?,
            language: r.opt_text("customer_language")?,
        },
        first_message: r.opt_text("first_message")?,
        agent_id: r.opt_uuid("agent_id")?.map(UserId),
        last_seq: r.int("last_seq")?,
        created_at: r.time("created_at")?,
        ended_at: r.opt_time("ended_at")?,
        outcome,
        outcome_reason: r.opt_text("outcome_reason")?,
        agent_alias: r.opt_text("agent_alias")?,
        wrap_up: r.opt_json("wrap_up")?,
    })
}

pub(crate) fn visitor_credential(r: &impl Cols) -> Result<VisitorCredential, StoreError> {
    Ok(VisitorCredential { token_hash: r.text("visitor_token_hash")?, expires_at: r.time("visitor_expires_at")? })
}

pub(crate) fn log_entry(r: &impl Cols) -> Result<LogEntry, StoreError> {
    Ok(LogEntry {
        conversation_id: ConversationId(r.uuid("conversation_id")?),
        seq: r.int("seq")?,
        client_msg_id: r.opt_text("client_msg_id")?,
        body: r.json("body")?,
        created_at: r.time("created_at")?,
    })
}

/// A queue entry, from a conversation row that has one (`queued_at IS NOT NULL`).
pub(crate) fn queue_entry(r: &impl Cols) -> Result<QueueEntry, StoreError> {
    let priority = r.text("priority")?;
    Ok(QueueEntry {
        conversation_id: ConversationId(r.uuid("id")?),
        queued_at: r.time("queued_at")?,
        priority: parse_priority(&priority).ok_or_else(|| decode_error("priority", priority))?,
    })
}

pub(crate) fn user_session(r: &impl Cols) -> Result<UserSession, StoreError> {
    let outcome = r.text("outcome")?;
    Ok(UserSession {
        id: r.uuid("id")?,
        tenant_id: TenantId(r.uuid("tenant_id")?),
        conversation_id: ConversationId(r.uuid("conversation_id")?),
        service_id: r.opt_uuid("service_id")?.map(ServiceId),
        user_id: UserId(r.uuid("user_id")?),
        outcome: UserOutcome::parse(&outcome).ok_or_else(|| decode_error("outcome", outcome))?,
        offered_at: r.time("offered_at")?,
        answered_at: r.opt_time("answered_at")?,
        ended_at: r.time("ended_at")?,
        ring_secs: r.int("ring_secs")?,
        connected_secs: r.int("connected_secs")?,
    })
}

pub(crate) fn service_session(r: &impl Cols) -> Result<ServiceSession, StoreError> {
    let outcome =
        r.opt_text("outcome")?.map(|o| Outcome::parse(&o).ok_or_else(|| decode_error("outcome", o))).transpose()?;
    Ok(ServiceSession {
        id: r.uuid("id")?,
        tenant_id: TenantId(r.uuid("tenant_id")?),
        conversation_id: ConversationId(r.uuid("conversation_id")?),
        service_id: ServiceId(r.uuid("service_id")?),
        outcome,
        user_id: r.opt_uuid("user_id")?.map(UserId),
        started_at: r.time("started_at")?,
        ended_at: r.time("ended_at")?,
        ivr_secs: r.int("ivr_secs")?,
        queue_secs: r.int("queue_secs")?,
        connected_secs: r.int("connected_secs")?,
        offers: u32::try_from(r.int("offers")?).map_err(|e| decode_error("offers", e))?,
    })
}

pub(crate) fn code(r: &impl Cols) -> Result<Code, StoreError> {
    Ok(Code {
        id: CodeId(r.uuid("id")?),
        tenant_id: TenantId(r.uuid("tenant_id")?),
        ou_id: OrgUnitId(r.uuid("ou_id")?),
        name: r.text("name")?,
        description: r.text("description")?,
        created_at: r.time("created_at")?,
    })
}

pub(crate) fn skill(r: &impl Cols) -> Result<Skill, StoreError> {
    Ok(Skill {
        id: SkillId(r.uuid("id")?),
        tenant_id: TenantId(r.uuid("tenant_id")?),
        name: r.text("name")?,
        created_at: r.time("created_at")?,
    })
}

/// A user's skill, with the user it belongs to.
pub(crate) fn user_skill(r: &impl Cols) -> Result<(UserId, UserSkill), StoreError> {
    Ok((
        UserId(r.uuid("user_id")?),
        UserSkill {
            skill_id: SkillId(r.uuid("skill_id")?),
            level: u8::try_from(r.int("level")?).map_err(|e| decode_error("level", e))?,
        },
    ))
}

/// The stored `lower_name` of a skill, on which names are unique per tenant and listed: folded
/// here rather than by the database, whose `lower()` folds ASCII only in SQLite and follows the
/// locale in PostgreSQL, so both backends agree on which names clash.
pub(crate) fn lower_name(name: &str) -> String {
    name.to_lowercase()
}

/// Stored text of a priority: its serde (API) name. An exhaustive match rather than serde, so a
/// new priority must be given its storage name here before it compiles.
pub(crate) const fn priority(priority: Priority) -> &'static str {
    match priority {
        Priority::Low => "low",
        Priority::Normal => "normal",
        Priority::High => "high",
        Priority::Strict => "strict",
    }
}

fn parse_priority(s: &str) -> Option<Priority> {
    [Priority::Low, Priority::Normal, Priority::High, Priority::Strict].into_iter().find(|p| priority(*p) == s)
}

/// Stored text of a workflow kind. An exhaustive match rather than serde, so adding a kind
/// without deciding its storage name does not compile.
pub(crate) const fn workflow_kind(kind: WorkflowKind) -> &'static str {
    match kind {
        WorkflowKind::InstantMessaging => "instant_messaging",
    }
}

fn parse_workflow_kind(s: &str) -> Option<WorkflowKind> {
    [WorkflowKind::InstantMessaging].into_iter().find(|k| workflow_kind(*k) == s)
}

/// JSON text of a value we own the type of; it cannot fail for the domain types, but a failure
/// must still not panic the writer.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Other(format!("cannot encode JSON: {e}")))
}

/// Conflict name the trait promises for `client_msg_id`; the append fallback matches on it.
pub(crate) const CLIENT_MSG_ID: &str = "client_msg_id";

/// Conflict name of a Contact ID a service or user already has, when creating a service.
pub(crate) const SERVICE_CONTACT_ID: &str = "service_contact_id";

/// Conflict name of a Contact ID a service or user already has, when creating a user.
pub(crate) const USER_CONTACT_ID: &str = "user_contact_id";

/// Unique rules and the conflict name each maps to: (PostgreSQL constraint or index name, the
/// column list SQLite reports, name). Keep in step with both migrations.
const CONFLICTS: &[(&str, &str, &str)] = &[
    ("tenants_pkey", "tenants.id", "tenant_id"),
    ("tenants_slug_key", "tenants.slug", "tenant_slug"),
    ("api_keys_pkey", "api_keys.id", "api_key_id"),
    ("org_units_pkey", "org_units.id", "org_unit_id"),
    ("org_units_tenant_id_id_key", "org_units.tenant_id, org_units.id", "org_unit_id"),
    ("users_pkey", "users.id", "user_id"),
    ("users_tenant_id_id_key", "users.tenant_id, users.id", "user_id"),
    ("users_tenant_id_email_key", "users.tenant_id, users.email", "user_email"),
    ("users_contact_id_key", "users.contact_id", USER_CONTACT_ID),
    ("agent_sessions_pkey", "agent_sessions.token_hash", "session_token"),
    ("workflows_pkey", "workflows.id", "workflow_id"),
    ("workflows_tenant_id_id_key", "workflows.tenant_id, workflows.id", "workflow_id"),
    (
        "workflow_versions_pkey",
        "workflow_versions.tenant_id, workflow_versions.workflow_id, workflow_versions.version",
        "workflow_version",
    ),
    ("parameters_pkey", "parameters.tenant_id, parameters.id", "parameter_id"),
    ("calendars_pkey", "calendars.id", "calendar_id"),
    ("calendars_tenant_id_id_key", "calendars.tenant_id, calendars.id", "calendar_id"),
    ("domain_templates_pkey", "domain_templates.id", "domain_template_id"),
    ("attachments_pkey", "attachments.id", "attachment_id"),
    ("domain_templates_tenant_id_id_key", "domain_templates.tenant_id, domain_templates.id", "domain_template_id"),
    ("services_pkey", "services.id", "service_id"),
    ("services_tenant_id_id_key", "services.tenant_id, services.id", "service_id"),
    ("services_contact_id_key", "services.contact_id", SERVICE_CONTACT_ID),
    ("memberships_pkey", "memberships.service_id, memberships.user_id", "membership"),
    ("conversations_pkey", "conversations.id", "conversation_id"),
    ("conversations_tenant_id_id_key", "conversations.tenant_id, conversations.id", "conversation_id"),
    ("log_entries_pkey", "log_entries.conversation_id, log_entries.seq", "log_seq"),
    ("log_entries_client_msg_id", "log_entries.conversation_id, log_entries.client_msg_id", CLIENT_MSG_ID),
    ("user_sessions_pkey", "user_sessions.id", "user_session_id"),
    ("service_sessions_pkey", "service_sessions.id", "service_session_id"),
    ("skills_pkey", "skills.id", "skill_id"),
    ("skills_tenant_id_id_key", "skills.tenant_id, skills.id", "skill_id"),
    ("skills_tenant_id_lower_name_key", "skills.tenant_id, skills.lower_name", "skill_name"),
    ("codes_tenant_id_lower_name_key", "codes.tenant_id, codes.lower_name", "code_name"),
    ("user_skills_pkey", "user_skills.tenant_id, user_skills.user_id, user_skills.skill_id", "user_skill"),
];

fn conflict_name(db: &dyn DatabaseError) -> &'static str {
    // PostgreSQL names the constraint; SQLite only says "UNIQUE constraint failed: t.a, t.b".
    let found = match db.constraint() {
        Some(constraint) => CONFLICTS.iter().find(|(pg, _, _)| *pg == constraint),
        None => db
            .message()
            .split_once("constraint failed: ")
            .and_then(|(_, cols)| CONFLICTS.iter().find(|(_, lite, _)| *lite == cols)),
    };
    found.map_or("unique", |(_, _, name)| name)
}

/// The database cannot serve us right now (as opposed to refusing this statement): busy, out of
/// disk, shutting down, connection lost. Callers may retry these; the API answers 503.
fn unavailable_code(code: &str) -> bool {
    // SQLite reports extended result codes as numbers; the primary code is the low byte.
    // BUSY, LOCKED, IOERR, FULL, CANTOPEN.
    if let Ok(n) = code.parse::<u32>() {
        return matches!(n & 0xff, 5 | 6 | 10 | 13 | 14);
    }
    // PostgreSQL SQLSTATE classes: connection exception, insufficient resources, operator
    // intervention (shutdown), system error.
    ["08", "53", "57", "58"].iter().any(|class| code.starts_with(class))
}

/// SQLite's `SQLITE_CONSTRAINT_TRIGGER`, the code of a `RAISE(ABORT, …)` in a trigger.
const SQLITE_CONSTRAINT_TRIGGER: &str = "1811";

/// The message SQLite gives a foreign-key violation, which the stand-in triggers raise too.
const FOREIGN_KEY_MESSAGE: &str = "FOREIGN KEY constraint failed";

fn is_trigger_foreign_key_violation(db: &dyn DatabaseError) -> bool {
    db.code().is_some_and(|c| c == SQLITE_CONSTRAINT_TRIGGER) && db.message() == FOREIGN_KEY_MESSAGE
}

/// The start of the message SQLite gives a unique violation, which the triggers keeping Contact
/// IDs unique across services and users raise too (with the columns, as SQLite would).
const UNIQUE_MESSAGE: &str = "UNIQUE constraint failed: ";

fn is_trigger_unique_violation(db: &dyn DatabaseError) -> bool {
    db.code().is_some_and(|c| c == SQLITE_CONSTRAINT_TRIGGER) && db.message().starts_with(UNIQUE_MESSAGE)
}

/// The statement that raises one side's receipt marks, returning both sides'. `max` and `min`
/// are the backend's two-argument scalar functions (SQLite `MAX`/`MIN`, PostgreSQL
/// `GREATEST`/`LEAST`); `$3` is the delivered mark asked for, `$4` the read one.
pub(crate) fn mark_receipt_sql(reader: Reader, max: &str, min: &str) -> String {
    let side = reader.as_str();
    format!(
        "UPDATE conversations SET \
         {side}_delivered_seq = {max}({side}_delivered_seq, {min}({max}($3, $4), last_seq)), \
         {side}_read_seq = {max}({side}_read_seq, {min}($4, last_seq)) \
         WHERE tenant_id = $1 AND id = $2 RETURNING {RECEIPT_COLS}"
    )
}

/// The receipt columns [`receipts`] reads.
pub(crate) const RECEIPT_COLS: &str = "customer_delivered_seq, customer_read_seq, agent_delivered_seq, agent_read_seq";

pub(crate) fn receipts(r: &impl Cols) -> Result<Receipts, StoreError> {
    Ok(Receipts {
        customer: Watermark { delivered_seq: r.int("customer_delivered_seq")?, read_seq: r.int("customer_read_seq")? },
        agent: Watermark { delivered_seq: r.int("agent_delivered_seq")?, read_seq: r.int("agent_read_seq")? },
    })
}

/// The columns [`attachment`] reads.
pub(crate) const ATTACHMENT_COLS: &str = "id, tenant_id, conversation_id, name, content_type, size, sha256, created_at";

pub(crate) fn attachment(r: &impl Cols) -> Result<AttachmentRecord, StoreError> {
    let size = r.int("size")?;
    Ok(AttachmentRecord {
        tenant_id: TenantId(r.uuid("tenant_id")?),
        conversation_id: ConversationId(r.uuid("conversation_id")?),
        attachment: Attachment {
            id: AttachmentId(r.uuid("id")?),
            name: r.text("name")?,
            content_type: r.text("content_type")?,
            size: u64::try_from(size).map_err(|_| decode_error("size", size.to_string()))?,
        },
        sha256: r.text("sha256")?,
        created_at: r.time("created_at")?,
    })
}

/// Maps a sqlx error once, for every call of both backends.
pub(crate) fn db_error(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(db) => match db.kind() {
            ErrorKind::UniqueViolation => StoreError::Conflict(conflict_name(db.as_ref())),
            // Every reference in the schema includes the tenant, so a violated one means the
            // referenced row does not exist for this tenant, which callers must not tell apart
            // from "does not exist at all".
            ErrorKind::ForeignKeyViolation => StoreError::NotFound,
            // The SQLite triggers that stand in for the composite foreign keys ALTER TABLE could
            // not add (migrations/sqlite/0003_…) fail with the same message under their own code.
            _ if is_trigger_foreign_key_violation(db.as_ref()) => StoreError::NotFound,
            // And the ones that keep a Contact ID unique across services and users (0012_…).
            _ if is_trigger_unique_violation(db.as_ref()) => StoreError::Conflict(conflict_name(db.as_ref())),
            _ if db.code().is_some_and(|c| unavailable_code(&c)) => StoreError::Unavailable(db.to_string()),
            _ => StoreError::Other(db.to_string()),
        },
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
        sqlx::Error::Migrate(m) => StoreError::Other(format!("migration failed: {m}")),
        other => StoreError::Other(other.to_string()),
    }
}

/// `NotFound` when a statement that must touch exactly one row of this tenant touched none.
pub(crate) fn one_row(rows_affected: u64) -> Result<(), StoreError> {
    if rows_affected == 0 { Err(StoreError::NotFound) } else { Ok(()) }
}

/// The memberships created with a service must all be of that service; the store will not guess
/// what a member naming another service was meant to be.
pub(crate) fn check_members(service: &Service, members: &[Membership]) -> Result<(), StoreError> {
    match members.iter().find(|m| m.service_id != service.id) {
        None => Ok(()),
        Some(m) => Err(StoreError::Other(format!(
            "membership of service {} given when creating service {}",
            m.service_id, service.id
        ))),
    }
}

/// A conversation is a service's (with the workflow version it runs) or a direct chat with one
/// user (with no workflow), never both nor neither; the store will not guess which was meant.
/// The schema has the same rule as CHECK constraints, behind this clearer message.
pub(crate) fn check_conversation(c: &Conversation) -> Result<(), StoreError> {
    let service_chat = c.service_id.is_some() && c.workflow_id.is_some() && c.workflow_version.is_some();
    let direct_chat = c.service_id.is_none() && c.workflow_id.is_none() && c.workflow_version.is_none();
    let consistent = if c.direct_user_id.is_some() { direct_chat } else { service_chat };
    if consistent {
        Ok(())
    } else {
        Err(StoreError::Other(format!(
            "conversation {} with service {:?}, workflow {:?} version {:?} and direct user {:?}: it must name either \
             a service with its workflow version or a direct user alone",
            c.id, c.service_id, c.workflow_id, c.workflow_version, c.direct_user_id
        )))
    }
}

/// The error of deleting a row that other rows may still name (a calendar a service names, a skill
/// a user holds). The row being deleted is the only reference such a delete can break, so a
/// foreign-key violation is the `in_use` conflict rather than a missing row; an absent row is
/// the caller's `one_row` check.
pub(crate) fn delete_error(in_use: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match db_error(e) {
        StoreError::NotFound => StoreError::Conflict(in_use),
        other => other,
    }
}

/// A workflow created with its first version must say so, and that version must be its own
/// version 1; the store will not guess which of the two disagreeing values was meant.
pub(crate) fn check_first_version(workflow: &Workflow, first: Option<&WorkflowVersion>) -> Result<(), StoreError> {
    let consistent = match first {
        None => workflow.current_version.is_none(),
        Some(v) => {
            workflow.current_version == Some(1)
                && v.version == 1
                && v.workflow_id == workflow.id
                && v.tenant_id == workflow.tenant_id
        }
    };
    if consistent {
        Ok(())
    } else {
        Err(StoreError::Other(format!(
            "workflow {} created with current_version {:?} and first version {:?}",
            workflow.id,
            workflow.current_version,
            first.map(|v| (v.workflow_id, v.version))
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_priority_is_its_api_name_and_parses_back() {
        for p in [Priority::Low, Priority::Normal, Priority::High, Priority::Strict] {
            assert_eq!(serde_json::to_value(p).unwrap(), serde_json::Value::from(priority(p)));
            assert_eq!(parse_priority(priority(p)), Some(p));
        }
        assert_eq!(parse_priority("urgent"), None);
    }
}
