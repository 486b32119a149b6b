//! The scale-out store: PostgreSQL, shared by every node of a cluster.
//!
//! Same schema and semantics as the SQLite store, in native types. Several nodes may append to
//! one conversation at once: the `UPDATE conversations` that advances `last_seq` row-locks the
//! conversation until commit, which orders them, and a `client_msg_id` race that a concurrent
//! node wins surfaces as a unique violation that the shared append fallback turns into a
//! duplicate answer (see `append.rs`).

use crate::append::{self, LogTx};
use crate::engine_tx::{self, EngineTx, statements};
use crate::sql::{self, Cols, db_error, decode_error, one_row, select, to_json, windowed};
use crate::{
    AgentSession, ApiKeyRecord, Appended, AttachmentRecord, Backend, EngineState, EngineWrite, NewEntry, NodeClaim,
    QueueEntry, ReportWindow, Result, Store, StoreError, VisitorCredential,
};
use async_trait::async_trait;
use parley_domain::calendar::OpeningCalendar;
use parley_domain::workflow::{Workflow, WorkflowDefinition, WorkflowVersion};
use parley_domain::{
    ApiKeyId, CalendarId, Conversation, ConversationId, CustomParameter, DirectChatSettings, DomainTemplate,
    DomainTemplateId, LogEntry, Membership, OrgUnit, OrgUnitId, Outcome, Service, ServiceId, ServiceSession, Skill,
    SkillId, Tenant, TenantId, User, UserId, UserSession, UserSkill, WorkflowId,
};
use parley_domain::{AttachmentId, Reader, Receipts, SystemMessages, SystemMessagesId, Watermark};
use parley_domain::{Code, CodeId, WrapUp};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{Executor, Postgres, Row};
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// Enough for the API's concurrency on one node while leaving the server's connection limit to
/// the other nodes of a cluster.
const MAX_CONNECTIONS: u32 = 10;

/// [`Store`] on a PostgreSQL database.
/// The engine's saves arrive as JSON text; PostgreSQL keeps them as `jsonb`.
const CHAT_STATE_JSONB: &str = "INSERT INTO engine_chats (tenant_id, conversation_id, state) VALUES ($1, $2, $3::jsonb) \
     ON CONFLICT (tenant_id, conversation_id) DO UPDATE SET state = excluded.state";
const AGENT_STATE_JSONB: &str = "INSERT INTO engine_agents (tenant_id, user_id, state) VALUES ($1, $2, $3::jsonb) \
     ON CONFLICT (tenant_id, user_id) DO UPDATE SET state = excluded.state";

/// The advisory lock key one Parley process holds on its database ("parley" in ASCII).
const NODE_LOCK: i64 = 0x7061_726c_6579;

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to the database the URL names, e.g. `postgres://parley@db/parley`. Does not
    /// migrate.
    ///
    /// # Errors
    /// `Unavailable` when the server cannot be reached or refuses us; `Other` for a malformed URL.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url).map_err(db_error)?.application_name("parley");
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(db_error)?;
        Ok(Self { pool })
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'static, Postgres>> {
        self.pool.begin().await.map_err(db_error)
    }

    async fn append_tx(&self, batch: &[NewEntry]) -> Result<Vec<Result<Appended>>> {
        let mut tx = self.begin().await?;
        let outcomes = append::append_all(&mut *tx, batch).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(outcomes)
    }
}

impl Cols for PgRow {
    fn uuid(&self, col: &str) -> Result<Uuid> {
        self.try_get(col).map_err(|e| decode_error(col, e))
    }
    fn opt_uuid(&self, col: &str) -> Result<Option<Uuid>> {
        self.try_get(col).map_err(|e| decode_error(col, e))
    }
    fn time(&self, col: &str) -> Result<OffsetDateTime> {
        self.try_get(col).map_err(|e| decode_error(col, e))
    }
    fn opt_time(&self, col: &str) -> Result<Option<OffsetDateTime>> {
        self.try_get(col).map_err(|e| decode_error(col, e))
    }
    fn json<T: serde::de::DeserializeOwned>(&self, col: &str) -> Result<T> {
        self.try_get::<Json<T>, _>(col).map(|j| j.0).map_err(|e| decode_error(col, e))
    }
    fn opt_json<T: serde::de::DeserializeOwned>(&self, col: &str) -> Result<Option<T>> {
        self.try_get::<Option<Json<T>>, _>(col).map(|j| j.map(|j| j.0)).map_err(|e| decode_error(col, e))
    }
    fn text(&self, col: &str) -> Result<String> {
        self.try_get(col).map_err(|e| decode_error(col, e))
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>> {
        self.try_get(col).map_err(|e| decode_error(col, e))
    }
    fn int(&self, col: &str) -> Result<i64> {
        self.try_get(col).map_err(|e| decode_error(col, e))
    }
    fn opt_int(&self, col: &str) -> Result<Option<i64>> {
        self.try_get(col).map_err(|e| decode_error(col, e))
    }
    fn flag(&self, col: &str) -> Result<bool> {
        self.try_get(col).map_err(|e| decode_error(col, e))
    }
}

async fn insert_org_unit<'c>(db: impl Executor<'c, Database = Postgres>, ou: &OrgUnit) -> Result<()> {
    sqlx::query("INSERT INTO org_units (id, tenant_id, name, parent_id) VALUES ($1, $2, $3, $4)")
        .bind(ou.id.0)
        .bind(ou.tenant_id.0)
        .bind(&ou.name)
        .bind(ou.parent_id.map(|p| p.0))
        .execute(db)
        .await
        .map_err(db_error)?;
    Ok(())
}

async fn insert_api_key<'c>(db: impl Executor<'c, Database = Postgres>, key: &ApiKeyRecord) -> Result<()> {
    sqlx::query("INSERT INTO api_keys (id, tenant_id, name, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(key.id.0)
        .bind(key.tenant_id.0)
        .bind(&key.name)
        .bind(&key.secret_hash)
        .bind(key.created_at)
        .execute(db)
        .await
        .map_err(db_error)?;
    Ok(())
}

async fn insert_membership<'c>(
    db: impl Executor<'c, Database = Postgres>,
    tenant: TenantId,
    m: &Membership,
) -> Result<u64> {
    // The EXISTS checks make a service or user of another tenant (or none) insert nothing, which
    // the caller reports as NotFound; given both belong to `tenant`, so does any existing row.
    let done = sqlx::query(
        "INSERT INTO memberships (service_id, user_id, tenant_id, active) \
         SELECT $2, $3, $1, $4 \
         WHERE EXISTS (SELECT 1 FROM services WHERE tenant_id = $1 AND id = $2) \
           AND EXISTS (SELECT 1 FROM users WHERE tenant_id = $1 AND id = $3) \
         ON CONFLICT (service_id, user_id) DO UPDATE SET active = excluded.active",
    )
    .bind(tenant.0)
    .bind(m.service_id.0)
    .bind(m.user_id.0)
    .bind(m.active)
    .execute(db)
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected())
}

async fn insert_workflow_version<'c>(db: impl Executor<'c, Database = Postgres>, v: &WorkflowVersion) -> Result<()> {
    sqlx::query(
        "INSERT INTO workflow_versions (tenant_id, workflow_id, version, definition, published_at, restored_from) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(v.tenant_id.0)
    .bind(v.workflow_id.0)
    .bind(i64::from(v.version))
    .bind(Json(&v.definition))
    .bind(v.published_at)
    .bind(v.restored_from.map(i64::from))
    .execute(db)
    .await
    .map_err(db_error)?;
    Ok(())
}

impl EngineTx for PgConnection {
    async fn write(&mut self, tenant: TenantId, w: &EngineWrite) -> Result<()> {
        let t = tenant.0;
        let done = match w {
            EngineWrite::Status { conversation, status, agent, ended_at } => {
                sqlx::query(statements::STATUS)
                    .bind(t)
                    .bind(conversation.0)
                    .bind(status.as_str())
                    .bind(agent.map(|a| a.0))
                    .bind(*ended_at)
                    .execute(&mut *self)
                    .await
            }
            EngineWrite::AgentAlias { conversation, alias } => {
                sqlx::query(statements::AGENT_ALIAS).bind(t).bind(conversation.0).bind(alias).execute(&mut *self).await
            }
            EngineWrite::Transferred { conversation, service, workflow, version } => {
                sqlx::query(statements::TRANSFERRED)
                    .bind(t)
                    .bind(conversation.0)
                    .bind(service.0)
                    .bind(workflow.0)
                    .bind(i64::from(*version))
                    .execute(&mut *self)
                    .await
            }
            EngineWrite::Outcome { conversation, outcome, reason } => {
                sqlx::query(statements::OUTCOME)
                    .bind(t)
                    .bind(conversation.0)
                    .bind(outcome.as_str())
                    .bind(reason.as_deref())
                    .execute(&mut *self)
                    .await
            }
            EngineWrite::WorkflowRun { conversation, run } => {
                sqlx::query(statements::WORKFLOW_RUN)
                    .bind(t)
                    .bind(conversation.0)
                    .bind(Json(run))
                    .execute(&mut *self)
                    .await
            }
            EngineWrite::QueueEntry(entry) => {
                sqlx::query(statements::QUEUE_ENTRY)
                    .bind(t)
                    .bind(entry.conversation_id.0)
                    .bind(entry.queued_at)
                    .bind(sql::priority(entry.priority))
                    .execute(&mut *self)
                    .await
            }
            EngineWrite::UserSession(s) => {
                sqlx::query(statements::USER_SESSION)
                    .bind(s.id)
                    .bind(t)
                    .bind(s.conversation_id.0)
                    .bind(s.service_id.map(|v| v.0))
                    .bind(s.user_id.0)
                    .bind(s.outcome.as_str())
                    .bind(s.offered_at)
                    .bind(s.answered_at)
                    .bind(s.ended_at)
                    .bind(s.ring_secs)
                    .bind(s.connected_secs)
                    .execute(&mut *self)
                    .await
            }
            EngineWrite::ServiceSession(s) => {
                sqlx::query(statements::SERVICE_SESSION)
                    .bind(s.id)
                    .bind(t)
                    .bind(s.conversation_id.0)
                    .bind(s.service_id.0)
                    .bind(s.outcome.map(Outcome::as_str))
                    .bind(s.user_id.map(|u| u.0))
                    .bind(s.started_at)
                    .bind(s.ended_at)
                    .bind(s.ivr_secs)
                    .bind(s.queue_secs)
                    .bind(s.connected_secs)
                    .bind(i64::from(s.offers))
                    .execute(&mut *self)
                    .await
            }
            EngineWrite::Presence { user, presence } => {
                sqlx::query(statements::PRESENCE).bind(t).bind(user.0).bind(presence.as_str()).execute(&mut *self).await
            }
            EngineWrite::ChatState { conversation, state: Some(state) } => {
                sqlx::query(CHAT_STATE_JSONB).bind(t).bind(conversation.0).bind(state).execute(&mut *self).await
            }
            EngineWrite::ChatState { conversation, state: None } => {
                let gone = sqlx::query(statements::FORGET_CHAT).bind(t).bind(conversation.0).execute(&mut *self).await;
                // Forgetting what was never kept is no error.
                return gone.map(drop).map_err(db_error);
            }
            EngineWrite::AgentState { agent, state: Some(state) } => {
                sqlx::query(AGENT_STATE_JSONB).bind(t).bind(agent.0).bind(state).execute(&mut *self).await
            }
            EngineWrite::AgentState { agent, state: None } => {
                let gone = sqlx::query(statements::FORGET_AGENT).bind(t).bind(agent.0).execute(&mut *self).await;
                return gone.map(drop).map_err(db_error);
            }
            EngineWrite::Append { .. } => return Err(StoreError::Other("log entries are appended in batches".into())),
        };
        one_row(done.map_err(db_error)?.rows_affected())
    }
}

impl LogTx for PgConnection {
    async fn heads(
        &mut self,
        conversations: &[(TenantId, ConversationId)],
    ) -> Result<HashMap<(TenantId, ConversationId), append::Head>> {
        // FOR UPDATE holds each conversation until commit: appenders on every node queue per
        // conversation, so the key look-up below sees every earlier commit and seq cannot clash.
        // ORDER BY makes the locks come in one global order.
        let (tenants, ids): (Vec<Uuid>, Vec<Uuid>) = conversations.iter().map(|(t, c)| (t.0, c.0)).unzip();
        let rows = sqlx::query(
            "SELECT c.tenant_id, c.id, c.last_seq, c.status FROM conversations AS c \
             JOIN UNNEST($1::uuid[], $2::uuid[]) AS k (tenant_id, id) ON c.id = k.id AND c.tenant_id = k.tenant_id \
             ORDER BY c.id FOR UPDATE OF c",
        )
        .bind(tenants)
        .bind(ids)
        .fetch_all(&mut *self)
        .await
        .map_err(db_error)?;
        let mut heads = HashMap::with_capacity(rows.len());
        for r in rows {
            let key = (TenantId(r.uuid("tenant_id")?), ConversationId(r.uuid("id")?));
            heads.insert(key, append::Head { last_seq: r.int("last_seq")?, ended: r.text("status")? == "ended" });
        }
        Ok(heads)
    }

    async fn keyed(&mut self, keys: &[(TenantId, ConversationId, &str)]) -> Result<Vec<LogEntry>> {
        let tenants: Vec<Uuid> = keys.iter().map(|k| k.0.0).collect();
        let ids: Vec<Uuid> = keys.iter().map(|k| k.1.0).collect();
        let client_ids: Vec<&str> = keys.iter().map(|k| k.2).collect();
        let rows = sqlx::query(
            "SELECT l.conversation_id, l.seq, l.client_msg_id, l.body, l.created_at \
             FROM UNNEST($1::uuid[], $2::uuid[], $3::text[]) AS k (tenant_id, conversation_id, client_msg_id) \
             JOIN log_entries AS l ON l.conversation_id = k.conversation_id \
               AND l.client_msg_id = k.client_msg_id AND l.tenant_id = k.tenant_id",
        )
        .bind(tenants)
        .bind(ids)
        .bind(client_ids)
        .fetch_all(&mut *self)
        .await
        .map_err(db_error)?;
        rows.iter().map(sql::log_entry).collect()
    }

    async fn insert(&mut self, rows: &[(&NewEntry, i64)]) -> Result<()> {
        let mut cols = InsertColumns::default();
        for (e, seq) in rows {
            cols.conversations.push(e.conversation_id.0);
            cols.seqs.push(*seq);
            cols.tenants.push(e.tenant_id.0);
            cols.keys.push(e.client_msg_id.clone());
            cols.bodies.push(to_json(&e.body)?);
            cols.times.push(e.created_at);
        }
        sqlx::query(
            "INSERT INTO log_entries (conversation_id, seq, tenant_id, client_msg_id, body, created_at) \
             SELECT c, s, t, k, b::jsonb, a FROM UNNEST($1::uuid[], $2::bigint[], $3::uuid[], $4::text[], \
               $5::text[], $6::timestamptz[]) AS r (c, s, t, k, b, a)",
        )
        .bind(&cols.conversations)
        .bind(&cols.seqs)
        .bind(&cols.tenants)
        .bind(&cols.keys)
        .bind(&cols.bodies)
        .bind(&cols.times)
        .execute(&mut *self)
        .await
        .map_err(db_error)?;
        // Rows of a conversation come in ascending seq: its last one is its new last_seq.
        let mut last: HashMap<Uuid, i64> = HashMap::new();
        for (c, s) in cols.conversations.iter().zip(&cols.seqs) {
            last.insert(*c, *s);
        }
        let (ids, seqs): (Vec<Uuid>, Vec<i64>) = last.into_iter().unzip();
        sqlx::query(
            "UPDATE conversations AS c SET last_seq = u.seq \
             FROM UNNEST($1::uuid[], $2::bigint[]) AS u (id, seq) WHERE c.id = u.id",
        )
        .bind(ids)
        .bind(seqs)
        .execute(&mut *self)
        .await
        .map_err(db_error)?;
        Ok(())
    }
}

/// The columns of a multi-row insert, as arrays for `UNNEST`.
#[derive(Default)]
struct InsertColumns {
    conversations: Vec<Uuid>,
    seqs: Vec<i64>,
    tenants: Vec<Uuid>,
    keys: Vec<Option<String>>,
    bodies: Vec<String>,
    times: Vec<OffsetDateTime>,
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await.map_err(|e| db_error(e.into()))
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(db_error)?;
        Ok(())
    }

    async fn commit_engine(&self, tenant: TenantId, writes: &[EngineWrite]) -> Result<Vec<LogEntry>> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        // The conversations first, in id order, as the log writer locks them: the two never wait
        // for each other in a cycle.
        let mut ids: Vec<Uuid> = writes.iter().filter_map(EngineWrite::conversation).map(|c| c.0).collect();
        ids.sort_unstable();
        ids.dedup();
        if !ids.is_empty() {
            sqlx::query("SELECT id FROM conversations WHERE tenant_id = $1 AND id = ANY($2) ORDER BY id FOR UPDATE")
                .bind(tenant.0)
                .bind(ids)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        let appended = engine_tx::commit_all(&mut *tx, tenant, writes).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(appended)
    }

    async fn load_engine_state(&self, tenant: TenantId) -> Result<EngineState> {
        let chats = sqlx::query("SELECT conversation_id, state::text AS state FROM engine_chats WHERE tenant_id = $1")
            .bind(tenant.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        let agents = sqlx::query("SELECT user_id, state::text AS state FROM engine_agents WHERE tenant_id = $1")
            .bind(tenant.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        sql::engine_state(&chats, &agents)
    }

    async fn claim_node(&self) -> Result<NodeClaim> {
        // Its own connection, outside the pool: the lock lives exactly as long as it does.
        let options = self.pool.connect_options().as_ref().clone();
        let mut conn = <PgConnection as sqlx::Connection>::connect_with(&options).await.map_err(db_error)?;
        let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(NODE_LOCK)
            .fetch_one(&mut conn)
            .await
            .map_err(db_error)?;
        if held {
            // Dropping the claim closes the connection, which frees the lock.
            return Ok(NodeClaim::new(std::sync::Mutex::new(conn)));
        }
        let holder: Option<(i32, Option<String>)> = sqlx::query_as(
            "SELECT a.pid, a.client_addr::text FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted AND l.database = \
             (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND ((l.classid::bigint << 32) | l.objid::bigint) = $1",
        )
        .bind(NODE_LOCK)
        .fetch_optional(&mut conn)
        .await
        .map_err(db_error)?;
        let who = holder.map_or_else(String::new, |(pid, addr)| {
            format!(" (its connection is backend {pid} from {})", addr.unwrap_or_else(|| "a local socket".into()))
        });
        Err(StoreError::InUse(format!(
            "another Parley process is serving this PostgreSQL database{who}: run one process per database until \
             several nodes are supported"
        )))
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn create_tenant(&self, tenant: &Tenant, root: &OrgUnit, key: &ApiKeyRecord) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO tenants (id, slug, name, root_ou_id, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(tenant.id.0)
            .bind(&tenant.slug)
            .bind(&tenant.name)
            .bind(tenant.root_ou_id.0)
            .bind(tenant.created_at)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        insert_org_unit(&mut *tx, root).await?;
        insert_api_key(&mut *tx, key).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn get_tenant(&self, tenant: TenantId) -> Result<Tenant> {
        let row = sqlx::query(concat!(select!(tenants), " WHERE id = $1"))
            .bind(tenant.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        sql::tenant(&row)
    }

    async fn find_tenant_by_slug(&self, slug: &str) -> Result<Tenant> {
        let row = sqlx::query(concat!(select!(tenants), " WHERE slug = $1"))
            .bind(slug)
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        sql::tenant(&row)
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        let rows = sqlx::query(concat!(select!(tenants), " ORDER BY created_at, id"))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(sql::tenant).collect()
    }

    async fn create_api_key(&self, key: &ApiKeyRecord) -> Result<()> {
        insert_api_key(&self.pool, key).await
    }

    async fn find_api_key(&self, key: ApiKeyId) -> Result<ApiKeyRecord> {
        let row = sqlx::query(concat!(select!(api_keys), " WHERE id = $1"))
            .bind(key.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        sql::api_key(&row)
    }

    async fn create_org_unit(&self, ou: &OrgUnit) -> Result<()> {
        insert_org_unit(&self.pool, ou).await
    }

    async fn get_org_unit(&self, tenant: TenantId, ou: OrgUnitId) -> Result<OrgUnit> {
        let row = sqlx::query(concat!(select!(org_units), " WHERE tenant_id = $1 AND id = $2"))
            .bind(tenant.0)
            .bind(ou.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        sql::org_unit(&row)
    }

    async fn list_org_units(&self, tenant: TenantId) -> Result<Vec<OrgUnit>> {
        let rows = sqlx::query(concat!(select!(org_units), " WHERE tenant_id = $1 ORDER BY position"))
            .bind(tenant.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(sql::org_unit).collect()
    }

    async fn create_user(&self, user: &User, password_hash: Option<&str>) -> Result<()> {
        sqlx::query(
            "INSERT INTO users (id, tenant_id, ou_id, display_name, email, password_hash, licences, im_enabled, \
             max_chats, presence, created_at, contact_id, widget_key, direct) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(user.id.0)
        .bind(user.tenant_id.0)
        .bind(user.ou_id.0)
        .bind(&user.display_name)
        .bind(&user.email)
        .bind(password_hash)
        .bind(Json(&user.licences))
        .bind(user.im_enabled)
        .bind(i64::from(user.max_chats))
        .bind(user.presence.as_str())
        .bind(user.created_at)
        .bind(&user.direct.contact_id)
        .bind(&user.direct.widget_key)
        .bind(Json(&user.direct.settings))
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn get_user(&self, tenant: TenantId, user: UserId) -> Result<User> {
        let row = sqlx::query(concat!(select!(users), " WHERE tenant_id = $1 AND id = $2"))
            .bind(tenant.0)
            .bind(user.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        sql::user(&row)
    }

    async fn list_users(&self, tenant: TenantId) -> Result<Vec<User>> {
        let rows = sqlx::query(concat!(select!(users), " WHERE tenant_id = $1 ORDER BY created_at, id"))
            .bind(tenant.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(sql::user).collect()
    }

    async fn find_user_login(&self, tenant: TenantId, email: &str) -> Result<(User, Option<String>)> {
        let row = sqlx::query(concat!(select!(users), " WHERE tenant_id = $1 AND email = $2"))
            .bind(tenant.0)
            .bind(email)
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        Ok((sql::user(&row)?, row.opt_text("password_hash")?))
    }

    async fn find_user_by_contact_id(&self, contact_id: &str) -> Result<User> {
        let row = sqlx::query(concat!(select!(users), " WHERE contact_id = $1"))
            .bind(contact_id)
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        sql::user(&row)
    }

    async fn set_direct_chat(&self, tenant: TenantId, user: UserId, settings: &DirectChatSettings) -> Result<User> {
        let row = sqlx::query(concat!(
            "UPDATE users SET direct = $3 WHERE tenant_id = $1 AND id = $2 RETURNING ",
            sql::columns!(users)
        ))
        .bind(tenant.0)
        .bind(user.0)
        .bind(Json(settings))
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)?;
        sql::user(&row)
    }

    async fn set_user_widget_key(&self, tenant: TenantId, user: UserId, widget_key: &str) -> Result<()> {
        let done = sqlx::query("UPDATE users SET widget_key = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.0)
            .bind(user.0)
            .bind(widget_key)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        one_row(done.rows_affected())
    }

    async fn create_session(&self, session: &AgentSession) -> Result<()> {
        sqlx::query(
            "INSERT INTO agent_sessions (token_hash, tenant_id, user_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&session.token_hash)
        .bind(session.tenant_id.0)
        .bind(session.user_id.0)
        .bind(session.created_at)
        .bind(session.expires_at)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn find_session(&self, token_hash: &str) -> Result<AgentSession> {
        let row = sqlx::query(concat!(select!(agent_sessions), " WHERE token_hash = $1"))
            .bind(token_hash)
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        sql::session(&row)
    }

    async fn delete_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM agent_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn create_workflow(&self, workflow: &Workflow, first: Option<&WorkflowVersion>) -> Result<()> {
        sql::check_first_version(workflow, first)?;
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO workflows (id, tenant_id, ou_id, name, kind, draft, current_version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(workflow.id.0)
        .bind(workflow.tenant_id.0)
        .bind(workflow.ou_id.0)
        .bind(&workflow.name)
        .bind(sql::workflow_kind(workflow.kind))
        .bind(Json(&workflow.draft))
        .bind(workflow.current_version.map(i64::from))
        .bind(workflow.created_at)
        .bind(workflow.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if let Some(v) = first {
            insert_workflow_version(&mut *tx, v).await?;
        }
        tx.commit().await.map_err(db_error)
    }

    async fn get_workflow(&self, tenant: TenantId, workflow: WorkflowId) -> Result<Workflow> {
        let row = sqlx::query(concat!(select!(workflows), " WHERE tenant_id = $1 AND id = $2"))
            .bind(tenant.0)
            .bind(workflow.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        sql::workflow(&row)
    }

    async fn list_workflows(&self, tenant: TenantId) -> Result<Vec<Workflow>> {
        let rows = sqlx::query(concat!(select!(workflows), " WHERE tenant_id = $1 ORDER BY created_at, id"))
            .bind(tenant.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(sql::workflow).collect()
    }

    async fn update_workflow_draft(
        &self,
        tenant: TenantId,
        workflow: WorkflowId,
        name: &str,
        draft: &WorkflowDefinition,
        updated_at: OffsetDateTime,
    ) -> Result<()> {
        let done =
            sqlx::query("UPDATE workflows SET name = $3, draft = $4, updated_at = $5 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(workflow.0)
                .bind(name)
                .bind(Json(draft))
                .bind(updated_at)
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
        one_row(done.rows_affected())
    }

    async fn publish_workflow_version(&self, version: &WorkflowVersion) -> Result<()> {
        let mut tx = self.begin().await?;
        // The version's foreign key refuses a workflow the tenant does not have (NotFound), its
        // primary key a number already used (Conflict), before anything changes.
        insert_workflow_version(&mut *tx, version).await?;
        let done = sqlx::query("UPDATE workflows SET current_version = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(version.tenant_id.0)
            .bind(version.workflow_id.0)
            .bind(i64::from(version.version))
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        one_row(done.rows_affected())?;
        tx.commit().await.map_err(db_error)
    }

    async fn get_workflow_version(
        &self,
        tenant: TenantId,
        workflow: WorkflowId,
        version: u32,
    ) -> Result<WorkflowVersion> {
        let row = sqlx::query(concat!(
            select!(workflow_versions),
            " WHERE tenant_id = $1 AND workflow_id = $2 AND version = $3"
        ))
        .bind(tenant.0)
        .bind(workflow.0)
        .bind(i64::from(version))
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)?;
        sql::workflow_version(&row)
    }

    async fn list_workflow_versions(&self, tenant: TenantId, workflow: WorkflowId) -> Result<Vec<WorkflowVersion>> {
        let rows = sqlx::query(concat!(
            select!(workflow_versions),
            " WHERE tenant_id = $1 AND workflow_id = $2 ORDER BY version"
        ))
        .bind(tenant.0)
        .bind(workflow.0)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.iter().map(sql::workflow_version).collect()
    }

    async fn create_parameter(&self, p: &CustomParameter) -> Result<()> {
        sqlx::query(
            "INSERT INTO parameters (tenant_id, id, ou_id, name, default_value, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(p.tenant_id.0)
        .bind(&p.id)
        .bind(p.ou_id.0)
        .bind(&p.name)
        .bind(&p.default_value)
        .bind(p.created_at)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn get_parameter(&self, tenant: TenantId, parameter: &str) -> Result<CustomParameter> {
        let row = sqlx::query(concat!(select!(parameters), " WHERE tenant_id = $1 AND id = $2"))
            .bind(tenant.0)
            .bind(parameter)
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        sql::parameter(&row)
    }

    async fn list_parameters(&self, tenant: TenantId) -> Result<Vec<CustomParameter>> {
        let rows = sqlx::query(concat!(select!(parameters), " WHERE tenant_id = $1 ORDER BY id"))
            .bind(tenant.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(sql::parameter).collect()
    }

    async fn update_parameter(&self, p: &CustomParameter) -> Result<()> {
        let done = sqlx::query("UPDATE parameters SET name = $3, default_value = $4 WHERE tenant_id = $1 AND id = $2")
            .bind(p.tenant_id.0)
            .bind(&p.id)
            .bind(&p.name)
            .bind(&p.default_value)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        one_row(done.rows_affected())
    }

    async fn delete_parameter(&self, tenant: TenantId, parameter: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM parameters WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.0)
            .bind(parameter)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        one_row(done.rows_affected())
    }

    async fn create_calendar(&self, c: &OpeningCalendar) -> Result<()> {
        sqlx::query(
            "INSERT INTO calendars (id, tenant_id, ou_id, name, calendar, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(c.id.0)
        .bind(c.tenant_id.0)
        .bind(c.ou_id.0)
        .bind(&c.name)
        .bind(Json(&c.calendar))
        .bind(c.created_at)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn get_calendar(&self, tenant: TenantId, calendar: CalendarId) -> Result<OpeningCalendar> {
        let row = sqlx::query(concat!(select!(calendars), " WHERE tenant_id = $1 AND id = $2"))
            .bind(tenant.0)
            .bind(calendar.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        sql::calendar(&row)
    }

    async fn list_calendars(&self, tenant: TenantId) -> Result<Vec<OpeningCalendar>> {
        let rows = sqlx::query(concat!(select!(calendars), " WHERE tenant_id = $1 ORDER BY created_at, id"))
            .bind(tenant.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(sql::calendar).collect()
    }

    async fn update_calendar(&self, c: &OpeningCalendar) -> Result<()> {
        let done = sqlx::query("UPDATE calendars SET name = $3, calendar = $4 WHERE tenant_id = $1 AND id = $2")
            .bind(c.tenant_id.0)
            .bind(c.id.0)
            .bind(&c.name)
            .bind(Json(&c.calendar))
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        one_row(done.rows_affected())
    }

    async fn delete_calendar(&self, tenant: TenantId, calendar: CalendarId) -> Result<()> {
        let done = sqlx::query("DELETE FROM calendars WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.0)
            .bind(calendar.0)
            .execute(&self.pool)
            .await
            .map_err(sql::delete_error("calendar_in_use"))?;
        one_row(done.rows_affected())
    }

    async fn create_service(&self, service: &Service, members: &[Membership]) -> Result<()> {
        sql::check_members(service, members)?;
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO services (id, tenant_id, ou_id, name, workflow_id, contact_id, widget_key, \
             primary_calendar_id, secondary_calendar_id, created_at, routing, access, system_messages_id, codes) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(service.id.0)
        .bind(service.tenant_id.0)
        .bind(service.ou_id.0)
        .bind(&service.name)
        .bind(service.workflow_id.0)
        .bind(&service.contact_id)
        .bind(&service.widget_key)
        .bind(service.primary_calendar_id.map(|c| c.0))
        .bind(service.secondary_calendar_id.map(|c| c.0))
        .bind(service.created_at)
        .bind(Json(&service.routing))
        .bind(Json(&service.access))
        .bind(service.system_messages_id.map(|m| m.0))
        .bind(Json(&service.codes))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        for m in members {
            one_row(insert_membership(&mut *tx, service.tenant_id, m).await?)?;
        }
        tx.commit().await.map_err(db_error)
    }

    async fn get_service(&self, tenant: TenantId, service: ServiceId) -> Result<Service> {
        let row = sqlx::query(concat!(select!(services), " WHERE tenant_id = $1 AND id = $2"))
            .bind(tenant.0)
            .bind(service.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        sql::service(&row)
    }

    async fn list_services(&self, tenant: TenantId) -> Result<Vec<Service>> {
        let rows = sqlx::query(concat!(select!(services), " WHERE tenant_id = $1 ORDER BY created_at, id"))
            .bind(tenant.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(sql::service).collect()
    }

    async fn update_service(&self, service: &Service) -> Result<()> {
        let done = sqlx::query(
            "UPDATE services SET name = $3, workflow_id = $4, primary_calendar_id = $5, secondary_calendar_id = $6, \
             routing = $7, access = $8, system_messages_id = $9, codes = $10 WHERE tenant_id = $1 AND id = $2",
        )
        .bind(service.tenant_id.0)
        .bind(service.id.0)
        .bind(&service.name)
        .bind(service.workflow_id.0)
        .bind(service.primary_calendar_id.map(|c| c.0))
        .bind(service.secondary_calendar_id.map(|c| c.0))
        .bind(Json(&service.routing))
        .bind(Json(&service.access))
        .bind(service.system_messages_id.map(|m| m.0))
        .bind(Json(&service.codes))
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        one_row(done.rows_affected())
    }

    async fn find_service_by_contact_id(&self, contact_id: &str) -> Result<Service> {
        let row = sqlx::query(concat!(select!(services), " WHERE contact_id = $1"))
            .bind(contact_id)
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        sql::service(&row)
    }

    async fn set_service_widget_key(&self, tenant: TenantId, service: ServiceId, widget_key: &str) -> Result<()> {
        let done = sqlx::query("UPDATE services SET widget_key = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.0)
            .bind(service.0)
            .bind(widget_key)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        one_row(done.rows_affected())
    }

    async fn set_membership(&self, tenant: TenantId, membership: &Membership) -> Result<()> {
        one_row(insert_membership(&self.pool, tenant, membership).await?)
    }

    async fn remove_membership(&self, tenant: TenantId, service: ServiceId, user: UserId) -> Result<()> {
        let done = sqlx::query("DELETE FROM memberships WHERE tenant_id = $1 AND service_id = $2 AND user_id = $3")
            .bind(tenant.0)
            .bind(service.0)
            .bind(user.0)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        one_row(done.rows_affected())
    }

    async fn list_memberships(&self, tenant: TenantId) -> Result<Vec<Membership>> {
        let rows = sqlx::query(concat!(select!(memberships), " WHERE tenant_id = $1 ORDER BY service_id, user_id"))
            .bind(tenant.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(sql::membership).collect()
    }

    async fn create_conversation(&self, c: &Conversation, credential: &VisitorCredential) -> Result<()> {
        sql::check_conversation(c)?;
        sqlx::query(
            "INSERT INTO conversations (id, tenant_id, service_id, workflow_id, workflow_version, status, \
             customer_name, customer_email, privacy_consent, first_message, agent_id, last_seq, visitor_token_hash, \
             visitor_expires_at, created_at, ended_at, outcome, outcome_reason, direct_user_id, customer_language) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, $12, $13, $14, $15, $16, $17, $18, $19)",
        )
        .bind(c.id.0)
        .bind(c.tenant_id.0)
        .bind(c.service_id.map(|s| s.0))
        .bind(c.workflow_id.map(|w| w.0))
        .bind(c.workflow_version.map(i64::from))
        .bind(c.status.as_str())
        .bind(&c.customer.display_name)
        .bind(&c.customer.email)
        .bind(c.customer.privacy_consent)
        .bind(c.first_message.as_deref())
        .bind(c.agent_id.map(|a| a.0))
        .bind(&credential.token_hash)
        .bind(credential.expires_at)
        .bind(c.created_at)
        .bind(c.ended_at)
        .bind(c.outcome.map(Outcome::as_str))
        .bind(c.outcome_reason.as_deref())
        .bind(c.direct_user_id.map(|u| u.0))
        .bind(c.customer.language.as_deref())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn get_conversation(&self, tenant: TenantId, conversation: ConversationId) -> Result<Conversation> {
        let row = sqlx::query(concat!(select!(conversations), " WHERE tenant_id = $1 AND id = $2"))
            .bind(tenant.0)
            .bind(conversation.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        sql::conversation(&row)
    }

    async fn visitor_credential(&self, tenant: TenantId, conversation: ConversationId) -> Result<VisitorCredential> {
        let row = sqlx::query(
            "SELECT visitor_token_hash, visitor_expires_at FROM conversations WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.0)
        .bind(conversation.0)
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)?;
        sql::visitor_credential(&row)
    }

    async fn get_workflow_run(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
    ) -> Result<Option<serde_json::Value>> {
        let row = sqlx::query("SELECT workflow_run FROM conversations WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.0)
            .bind(conversation.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        let run: Option<Json<serde_json::Value>> = row.try_get("workflow_run").map_err(db_error)?;
        Ok(run.map(|j| j.0))
    }

    async fn mark_receipt(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        reader: Reader,
        mark: Watermark,
    ) -> Result<Receipts> {
        let row = sqlx::query(&sql::mark_receipt_sql(reader, "GREATEST", "LEAST"))
            .bind(tenant.0)
            .bind(conversation.0)
            .bind(mark.delivered_seq)
            .bind(mark.read_seq)
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        sql::receipts(&row)
    }

    async fn get_receipts(&self, tenant: TenantId, conversation: ConversationId) -> Result<Receipts> {
        let q = format!("SELECT {} FROM conversations WHERE tenant_id = $1 AND id = $2", sql::RECEIPT_COLS);
        let row = sqlx::query(&q).bind(tenant.0).bind(conversation.0).fetch_one(&self.pool).await.map_err(db_error)?;
        sql::receipts(&row)
    }

    async fn create_attachment(&self, r: &AttachmentRecord) -> Result<()> {
        let a = &r.attachment;
        sqlx::query(
            "INSERT INTO attachments (id, tenant_id, conversation_id, name, content_type, size, sha256, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(a.id.0)
        .bind(r.tenant_id.0)
        .bind(r.conversation_id.0)
        .bind(&a.name)
        .bind(&a.content_type)
        .bind(i64::try_from(a.size).map_err(|_| crate::StoreError::Other("attachment size out of range".into()))?)
        .bind(&r.sha256)
        .bind(r.created_at)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn get_attachment(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        attachment: AttachmentId,
    ) -> Result<AttachmentRecord> {
        let q = format!(
            "SELECT {} FROM attachments WHERE tenant_id = $1 AND conversation_id = $2 AND id = $3",
            sql::ATTACHMENT_COLS
        );
        let row = sqlx::query(&q)
            .bind(tenant.0)
            .bind(conversation.0)
            .bind(attachment.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        sql::attachment(&row)
    }

    async fn create_system_messages(&self, m: &SystemMessages) -> Result<()> {
        sqlx::query(
            "INSERT INTO system_messages (id, tenant_id, ou_id, name, content, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(m.id.0)
        .bind(m.tenant_id.0)
        .bind(m.ou_id.0)
        .bind(&m.content.name)
        .bind(Json(&m.content))
        .bind(m.created_at)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn get_system_messages(&self, tenant: TenantId, item: SystemMessagesId) -> Result<SystemMessages> {
        let row = sqlx::query(concat!(select!(system_messages), " WHERE tenant_id = $1 AND id = $2"))
            .bind(tenant.0)
            .bind(item.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        sql::system_messages(&row)
    }

    async fn list_system_messages(&self, tenant: TenantId) -> Result<Vec<SystemMessages>> {
        let rows = sqlx::query(concat!(select!(system_messages), " WHERE tenant_id = $1 ORDER BY created_at, id"))
            .bind(tenant.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(sql::system_messages).collect()
    }

    async fn update_system_messages(&self, m: &SystemMessages) -> Result<()> {
        let done = sqlx::query("UPDATE system_messages SET name = $3, content = $4 WHERE tenant_id = $1 AND id = $2")
            .bind(m.tenant_id.0)
            .bind(m.id.0)
            .bind(&m.content.name)
            .bind(Json(&m.content))
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        one_row(done.rows_affected())
    }

    async fn delete_system_messages(&self, tenant: TenantId, item: SystemMessagesId) -> Result<()> {
        let done = sqlx::query("DELETE FROM system_messages WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.0)
            .bind(item.0)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        one_row(done.rows_affected())
    }

    async fn create_domain_template(&self, t: &DomainTemplate) -> Result<()> {
        sqlx::query(
            "INSERT INTO domain_templates (id, tenant_id, ou_id, name, origins, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(t.id.0)
        .bind(t.tenant_id.0)
        .bind(t.ou_id.0)
        .bind(&t.name)
        .bind(Json(&t.origins))
        .bind(t.created_at)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn get_domain_template(&self, tenant: TenantId, template: DomainTemplateId) -> Result<DomainTemplate> {
        let row = sqlx::query(concat!(select!(domain_templates), " WHERE tenant_id = $1 AND id = $2"))
            .bind(tenant.0)
            .bind(template.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        sql::domain_template(&row)
    }

    async fn list_domain_templates(&self, tenant: TenantId) -> Result<Vec<DomainTemplate>> {
        let rows = sqlx::query(concat!(select!(domain_templates), " WHERE tenant_id = $1 ORDER BY created_at, id"))
            .bind(tenant.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(sql::domain_template).collect()
    }

    async fn update_domain_template(&self, t: &DomainTemplate) -> Result<()> {
        let done = sqlx::query("UPDATE domain_templates SET name = $3, origins = $4 WHERE tenant_id = $1 AND id = $2")
            .bind(t.tenant_id.0)
            .bind(t.id.0)
            .bind(&t.name)
            .bind(Json(&t.origins))
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        one_row(done.rows_affected())
    }

    async fn delete_domain_template(&self, tenant: TenantId, template: DomainTemplateId) -> Result<()> {
        let done = sqlx::query("DELETE FROM domain_templates WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.0)
            .bind(template.0)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        one_row(done.rows_affected())
    }

    async fn create_code(&self, c: &Code) -> Result<()> {
        sqlx::query(
            "INSERT INTO codes (id, tenant_id, ou_id, name, lower_name, description, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(c.id.0)
        .bind(c.tenant_id.0)
        .bind(c.ou_id.0)
        .bind(&c.name)
        .bind(sql::lower_name(&c.name))
        .bind(&c.description)
        .bind(c.created_at)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn get_code(&self, tenant: TenantId, code: CodeId) -> Result<Code> {
        let row = sqlx::query(concat!(select!(codes), " WHERE tenant_id = $1 AND id = $2"))
            .bind(tenant.0)
            .bind(code.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        sql::code(&row)
    }

    async fn list_codes(&self, tenant: TenantId) -> Result<Vec<Code>> {
        let rows = sqlx::query(concat!(select!(codes), " WHERE tenant_id = $1 ORDER BY lower_name, id"))
            .bind(tenant.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(sql::code).collect()
    }

    async fn update_code(&self, c: &Code) -> Result<()> {
        let done = sqlx::query(
            "UPDATE codes SET name = $3, lower_name = $4, description = $5 WHERE tenant_id = $1 AND id = $2",
        )
        .bind(c.tenant_id.0)
        .bind(c.id.0)
        .bind(&c.name)
        .bind(sql::lower_name(&c.name))
        .bind(&c.description)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        one_row(done.rows_affected())
    }

    async fn delete_code(&self, tenant: TenantId, code: CodeId) -> Result<()> {
        let done = sqlx::query("DELETE FROM codes WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.0)
            .bind(code.0)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        one_row(done.rows_affected())
    }

    async fn list_wrapped_up(
        &self,
        tenant: TenantId,
        window: ReportWindow,
        service: Option<ServiceId>,
    ) -> Result<Vec<Conversation>> {
        let mut query = sqlx::query(sql::wrapped_up_query(service.is_some()))
            .bind(tenant.0)
            .bind(window.from)
            .bind(window.to)
            .bind(i64::from(window.limit));
        if let Some(service) = service {
            query = query.bind(service.0);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(db_error)?;
        rows.iter().map(sql::conversation).collect()
    }

    async fn set_wrap_up(&self, tenant: TenantId, conversation: ConversationId, wrap_up: &WrapUp) -> Result<()> {
        let done = sqlx::query("UPDATE conversations SET wrap_up = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.0)
            .bind(conversation.0)
            .bind(Json(wrap_up))
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        one_row(done.rows_affected())
    }

    async fn create_skill(&self, skill: &Skill) -> Result<()> {
        sqlx::query("INSERT INTO skills (id, tenant_id, name, lower_name, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(skill.id.0)
            .bind(skill.tenant_id.0)
            .bind(&skill.name)
            .bind(sql::lower_name(&skill.name))
            .bind(skill.created_at)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn list_skills(&self, tenant: TenantId) -> Result<Vec<Skill>> {
        let rows = sqlx::query(concat!(select!(skills), " WHERE tenant_id = $1 ORDER BY lower_name, id"))
            .bind(tenant.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(sql::skill).collect()
    }

    async fn delete_skill(&self, tenant: TenantId, skill: SkillId) -> Result<()> {
        let done = sqlx::query("DELETE FROM skills WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.0)
            .bind(skill.0)
            .execute(&self.pool)
            .await
            .map_err(sql::delete_error("skill_in_use"))?;
        one_row(done.rows_affected())
    }

    async fn set_user_skills(&self, tenant: TenantId, user: UserId, skills: &[UserSkill]) -> Result<()> {
        let mut tx = self.begin().await?;
        // The user is looked up first: with no skills to insert, nothing else would notice an
        // unknown one. Its row lock queues concurrent replacements of the same user's skills,
        // which would otherwise both delete nothing and then clash on insert; it does not block
        // the key-share locks the inserts' foreign keys take. A skill the tenant does not have
        // fails its insert (foreign key, NotFound), and the dropped transaction rolls back.
        sqlx::query("SELECT 1 FROM users WHERE tenant_id = $1 AND id = $2 FOR NO KEY UPDATE")
            .bind(tenant.0)
            .bind(user.0)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
        sqlx::query("DELETE FROM user_skills WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant.0)
            .bind(user.0)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        for s in skills {
            sqlx::query("INSERT INTO user_skills (tenant_id, user_id, skill_id, level) VALUES ($1, $2, $3, $4)")
                .bind(tenant.0)
                .bind(user.0)
                .bind(s.skill_id.0)
                .bind(i64::from(s.level))
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }

    async fn list_user_skills(&self, tenant: TenantId) -> Result<Vec<(UserId, UserSkill)>> {
        let rows = sqlx::query(concat!(select!(user_skills), " WHERE tenant_id = $1 ORDER BY user_id, skill_id"))
            .bind(tenant.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(sql::user_skill).collect()
    }

    async fn list_queue_entries(&self, tenant: TenantId) -> Result<Vec<QueueEntry>> {
        // `status <> 'ended'` literally, so the partial index conversations_open applies.
        let rows = sqlx::query(concat!(
            select!(queue_entries),
            " WHERE tenant_id = $1 AND status <> 'ended' AND queued_at IS NOT NULL"
        ))
        .bind(tenant.0)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.iter().map(sql::queue_entry).collect()
    }

    async fn list_user_sessions(
        &self,
        tenant: TenantId,
        window: ReportWindow,
        user: Option<UserId>,
    ) -> Result<Vec<UserSession>> {
        let query = match user {
            None => sqlx::query(windowed!(user_sessions)),
            Some(_) => sqlx::query(windowed!(user_sessions, "user_id")),
        };
        let mut query = query.bind(tenant.0).bind(window.from).bind(window.to).bind(i64::from(window.limit));
        if let Some(user) = user {
            query = query.bind(user.0);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(db_error)?;
        rows.iter().map(sql::user_session).collect()
    }

    async fn list_service_sessions(
        &self,
        tenant: TenantId,
        window: ReportWindow,
        service: Option<ServiceId>,
    ) -> Result<Vec<ServiceSession>> {
        let query = match service {
            None => sqlx::query(windowed!(service_sessions)),
            Some(_) => sqlx::query(windowed!(service_sessions, "service_id")),
        };
        let mut query = query.bind(tenant.0).bind(window.from).bind(window.to).bind(i64::from(window.limit));
        if let Some(service) = service {
            query = query.bind(service.0);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(db_error)?;
        rows.iter().map(sql::service_session).collect()
    }

    async fn last_agent_of_customer(
        &self,
        tenant: TenantId,
        email: &str,
        since: OffsetDateTime,
    ) -> Result<Option<UserId>> {
        let row: Option<(Uuid,)> = sqlx::query_as(
            "SELECT agent_id FROM conversations WHERE tenant_id = $1 AND customer_email = $2 \
             AND status = 'ended' AND agent_id IS NOT NULL AND ended_at >= $3 ORDER BY ended_at DESC LIMIT 1",
        )
        .bind(tenant.0)
        .bind(email)
        .bind(since)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(row.map(|(a,)| UserId(a)))
    }

    async fn list_open_conversations(&self, tenant: TenantId) -> Result<Vec<Conversation>> {
        // `status <> 'ended'` literally, so the partial index conversations_open applies.
        let rows = sqlx::query(concat!(
            select!(conversations),
            " WHERE tenant_id = $1 AND status <> 'ended' ORDER BY created_at, id"
        ))
        .bind(tenant.0)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.iter().map(sql::conversation).collect()
    }

    async fn list_agent_conversations(&self, tenant: TenantId, agent: UserId, limit: u32) -> Result<Vec<Conversation>> {
        let rows = sqlx::query(concat!(
            select!(conversations),
            " WHERE tenant_id = $1 AND (agent_id = $2 OR direct_user_id = $2) \
             ORDER BY created_at DESC, id DESC LIMIT $3"
        ))
        .bind(tenant.0)
        .bind(agent.0)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.iter().map(sql::conversation).collect()
    }

    async fn append_batch(&self, entries: &[NewEntry]) -> Vec<Result<Appended>> {
        append::with_fallback(entries, |batch| self.append_tx(batch)).await
    }

    async fn read_log(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        since_seq: i64,
        limit: u32,
    ) -> Result<Vec<LogEntry>> {
        let rows = sqlx::query(concat!(
            select!(log_entries),
            " WHERE tenant_id = $1 AND conversation_id = $2 AND seq > $3 ORDER BY seq LIMIT $4"
        ))
        .bind(tenant.0)
        .bind(conversation.0)
        .bind(since_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        if rows.is_empty() {
            // Only now is it worth a second look-up: nothing new, or no such conversation?
            self.get_conversation(tenant, conversation).await?;
        }
        rows.iter().map(sql::log_entry).collect()
    }
}
