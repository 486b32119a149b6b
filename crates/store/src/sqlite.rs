//! The default store: one SQLite file, so a small installation needs no database server.
//!
//! All writes go through a pool of exactly one connection. SQLite allows one writer at a time
//! anyway; queuing writers in our pool instead of in SQLite's lock means no `SQLITE_BUSY` under
//! load, and the group-commit writer batches the hot path (log appends) on top. Reads use their
//! own small pool and, thanks to WAL, never wait for the writer.
//!
//! Durability: `synchronous = FULL` in WAL mode fsyncs the log at every commit, so an
//! acknowledged message survives kill -9 and power loss, which `NORMAL` would not promise.

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
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Executor, Row, Sqlite};
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;
use uuid::fmt::Hyphenated;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// Readers run concurrently with the writer under WAL; a few cover the API's read traffic
/// without holding many file handles.
const READ_CONNECTIONS: u32 = 4;

/// [`Store`] on a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Exactly one connection: every write, so writers queue here rather than on SQLite's lock.
    write: SqlitePool,
    /// Read-only connections (the writer's pool itself for an in-memory database, which other
    /// connections could not share safely).
    read: SqlitePool,
    /// The database file (`None` in memory), whose lock file claims it for one process.
    path: Option<std::path::PathBuf>,
}

/// Claims `<database>.lock` with an exclusive advisory lock (released by the kernel when the
/// process dies, even by kill -9) and writes this process's id into it for the next one to name.
fn claim_lock_file(db: &std::path::Path) -> Result<NodeClaim> {
    use std::io::{Read, Seek, Write};
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    let path = std::path::PathBuf::from(name);
    let unavailable = |e: std::io::Error| StoreError::Unavailable(format!("lock file {}: {e}", path.display()));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(unavailable)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let who = if holder.is_empty() { String::new() } else { format!(" (pid {holder})") };
            return Err(StoreError::InUse(format!(
                "another Parley process{who} is serving {}: run one process per database until several nodes \
                 are supported (its lock is {})",
                db.display(),
                path.display()
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(unavailable(e)),
    }
    file.set_len(0).map_err(unavailable)?;
    file.rewind().map_err(unavailable)?;
    write!(file, "{}", std::process::id()).map_err(unavailable)?;
    file.flush().map_err(unavailable)?;
    Ok(NodeClaim::new(file))
}

impl SqliteStore {
    /// Opens (creating if missing, with its directory) the database file the URL names, e.g.
    /// `sqlite://data/parley.db`. Does not migrate.
    ///
    /// # Errors
    /// `Unavailable` when the file or its directory cannot be created or opened; `Other` for a
    /// malformed URL.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(db_error)?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        if !in_memory && let Some(dir) = options.get_filename().parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Unavailable(format!("cannot create {}: {e}", dir.display())))?;
        }

        // The writer connects first: it switches the file to WAL, which the readers then find.
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone().journal_mode(SqliteJournalMode::Wal).synchronous(SqliteSynchronous::Full))
            .await
            .map_err(db_error)?;
        let path = (!in_memory).then(|| options.get_filename().to_path_buf());
        let read = if in_memory {
            write.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(READ_CONNECTIONS)
                // A write slipping onto a reader would dodge the single-writer rule; make it fail.
                .connect_with(options.pragma("query_only", "ON"))
                .await
                .map_err(db_error)?
        };
        Ok(Self { write, read, path })
    }

    /// Starts a write transaction. IMMEDIATE takes the write lock up front, so a second process
    /// on the same file waits for it (busy timeout) instead of failing at its first write.
    async fn begin(&self) -> Result<sqlx::Transaction<'static, Sqlite>> {
        self.write.begin_with("BEGIN IMMEDIATE").await.map_err(db_error)
    }

    async fn append_tx(&self, batch: &[NewEntry]) -> Result<Vec<Result<Appended>>> {
        let mut tx = self.begin().await?;
        let outcomes = append::append_all(&mut *tx, batch).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(outcomes)
    }
}

fn id(u: Uuid) -> Hyphenated {
    u.hyphenated()
}

/// Unix microseconds: the precision the trait promises, as an integer that sorts and compares
/// exactly. Every date `time` represents by default (years ±9999) fits; beyond, it saturates.
fn micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(if t.unix_timestamp() < 0 { i64::MIN } else { i64::MAX })
}

fn from_micros(col: &str, m: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(m) * 1000).map_err(|e| decode_error(col, e))
}

impl Cols for SqliteRow {
    fn uuid(&self, col: &str) -> Result<Uuid> {
        self.try_get::<Hyphenated, _>(col).map(Hyphenated::into_uuid).map_err(|e| decode_error(col, e))
    }
    fn opt_uuid(&self, col: &str) -> Result<Option<Uuid>> {
        Ok(self.try_get::<Option<Hyphenated>, _>(col).map_err(|e| decode_error(col, e))?.map(Hyphenated::into_uuid))
    }
    fn time(&self, col: &str) -> Result<OffsetDateTime> {
        from_micros(col, self.int(col)?)
    }
    fn opt_time(&self, col: &str) -> Result<Option<OffsetDateTime>> {
        let m: Option<i64> = self.try_get(col).map_err(|e| decode_error(col, e))?;
        m.map(|m| from_micros(col, m)).transpose()
    }
    fn json<T: serde::de::DeserializeOwned>(&self, col: &str) -> Result<T> {
        let text: &str = self.try_get(col).map_err(|e| decode_error(col, e))?;
        serde_json::from_str(text).map_err(|e| decode_error(col, e))
    }
    fn opt_json<T: serde::de::DeserializeOwned>(&self, col: &str) -> Result<Option<T>> {
        let text: Option<&str> = self.try_get(col).map_err(|e| decode_error(col, e))?;
        text.map(|t| serde_json::from_str(t).map_err(|e| decode_error(col, e))).transpose()
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

async fn insert_org_unit<'c>(db: impl Executor<'c, Database = Sqlite>, ou: &OrgUnit) -> Result<()> {
    sqlx::query("INSERT INTO org_units (id, tenant_id, name, parent_id) VALUES ($1, $2, $3, $4)")
        .bind(id(ou.id.0))
        .bind(id(ou.tenant_id.0))
        .bind(&ou.name)
        .bind(ou.parent_id.map(|p| id(p.0)))
        .execute(db)
        .await
        .map_err(db_error)?;
    Ok(())
}

async fn insert_api_key<'c>(db: impl Executor<'c, Database = Sqlite>, key: &ApiKeyRecord) -> Result<()> {
    sqlx::query("INSERT INTO api_keys (id, tenant_id, name, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(id(key.id.0))
        .bind(id(key.tenant_id.0))
        .bind(&key.name)
        .bind(&key.secret_hash)
        .bind(micros(key.created_at))
        .execute(db)
        .await
        .map_err(db_error)?;
    Ok(())
}

async fn insert_membership<'c>(
    db: impl Executor<'c, Database = Sqlite>,
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
    .bind(id(tenant.0))
    .bind(id(m.service_id.0))
    .bind(id(m.user_id.0))
    .bind(m.active)
    .execute(db)
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected())
}

async fn insert_workflow_version<'c>(db: impl Executor<'c, Database = Sqlite>, v: &WorkflowVersion) -> Result<()> {
    sqlx::query(
        "INSERT INTO workflow_versions (tenant_id, workflow_id, version, definition, published_at, restored_from) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id(v.tenant_id.0))
    .bind(id(v.workflow_id.0))
    .bind(i64::from(v.version))
    .bind(to_json(&v.definition)?)
    .bind(micros(v.published_at))
    .bind(v.restored_from.map(i64::from))
    .execute(db)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Rows per multi-row statement: far below SQLite's bound on bound parameters (32766), and a
/// handful of statement shapes for the cache whatever the batch.
const ROWS_PER_STATEMENT: usize = 256;

/// `(?, ?), (?, ?)…`: `rows` groups of `cols` placeholders.
fn placeholders(rows: usize, cols: usize) -> String {
    let group = format!("({})", vec!["?"; cols].join(", "));
    vec![group; rows].join(", ")
}

impl EngineTx for SqliteConnection {
    async fn write(&mut self, tenant: TenantId, w: &EngineWrite) -> Result<()> {
        let t = id(tenant.0);
        let done = match w {
            EngineWrite::Status { conversation, status, agent, ended_at } => {
                sqlx::query(statements::STATUS)
                    .bind(t)
                    .bind(id(conversation.0))
                    .bind(status.as_str())
                    .bind(agent.map(|a| id(a.0)))
                    .bind(ended_at.map(micros))
                    .execute(&mut *self)
                    .await
            }
            EngineWrite::AgentAlias { conversation, alias } => {
                sqlx::query(statements::AGENT_ALIAS)
                    .bind(t)
                    .bind(id(conversation.0))
                    .bind(alias)
                    .execute(&mut *self)
                    .await
            }
            EngineWrite::Transferred { conversation, service, workflow, version } => {
                sqlx::query(statements::TRANSFERRED)
                    .bind(t)
                    .bind(id(conversation.0))
                    .bind(id(service.0))
                    .bind(id(workflow.0))
                    .bind(i64::from(*version))
                    .execute(&mut *self)
                    .await
            }
            EngineWrite::Outcome { conversation, outcome, reason } => {
                sqlx::query(statements::OUTCOME)
                    .bind(t)
                    .bind(id(conversation.0))
                    .bind(outcome.as_str())
                    .bind(reason.as_deref())
                    .execute(&mut *self)
                    .await
            }
            EngineWrite::WorkflowRun { conversation, run } => {
                sqlx::query(statements::WORKFLOW_RUN)
                    .bind(t)
                    .bind(id(conversation.0))
                    .bind(run.to_string())
                    .execute(&mut *self)
                    .await
            }
            EngineWrite::QueueEntry(entry) => {
                sqlx::query(statements::QUEUE_ENTRY)
                    .bind(t)
                    .bind(id(entry.conversation_id.0))
                    .bind(micros(entry.queued_at))
                    .bind(sql::priority(entry.priority))
                    .execute(&mut *self)
                    .await
            }
            EngineWrite::UserSession(s) => {
                sqlx::query(statements::USER_SESSION)
                    .bind(id(s.id))
                    .bind(t)
                    .bind(id(s.conversation_id.0))
                    .bind(s.service_id.map(|v| id(v.0)))
                    .bind(id(s.user_id.0))
                    .bind(s.outcome.as_str())
                    .bind(micros(s.offered_at))
                    .bind(s.answered_at.map(micros))
                    .bind(micros(s.ended_at))
                    .bind(s.ring_secs)
                    .bind(s.connected_secs)
                    .execute(&mut *self)
                    .await
            }
            EngineWrite::ServiceSession(s) => {
                sqlx::query(statements::SERVICE_SESSION)
                    .bind(id(s.id))
                    .bind(t)
                    .bind(id(s.conversation_id.0))
                    .bind(id(s.service_id.0))
                    .bind(s.outcome.map(Outcome::as_str))
                    .bind(s.user_id.map(|u| id(u.0)))
                    .bind(micros(s.started_at))
                    .bind(micros(s.ended_at))
                    .bind(s.ivr_secs)
                    .bind(s.queue_secs)
                    .bind(s.connected_secs)
                    .bind(i64::from(s.offers))
                    .execute(&mut *self)
                    .await
            }
            EngineWrite::Presence { user, presence } => {
                sqlx::query(statements::PRESENCE)
                    .bind(t)
                    .bind(id(user.0))
                    .bind(presence.as_str())
                    .execute(&mut *self)
                    .await
            }
            EngineWrite::ChatState { conversation, state: Some(state) } => {
                sqlx::query(statements::CHAT_STATE)
                    .bind(t)
                    .bind(id(conversation.0))
                    .bind(state)
                    .execute(&mut *self)
                    .await
            }
            EngineWrite::ChatState { conversation, state: None } => {
                let gone =
                    sqlx::query(statements::FORGET_CHAT).bind(t).bind(id(conversation.0)).execute(&mut *self).await;
                // Forgetting what was never kept is no error.
                return gone.map(drop).map_err(db_error);
            }
            EngineWrite::AgentState { agent, state: Some(state) } => {
                sqlx::query(statements::AGENT_STATE).bind(t).bind(id(agent.0)).bind(state).execute(&mut *self).await
            }
            EngineWrite::AgentState { agent, state: None } => {
                let gone = sqlx::query(statements::FORGET_AGENT).bind(t).bind(id(agent.0)).execute(&mut *self).await;
                return gone.map(drop).map_err(db_error);
            }
            EngineWrite::Append { .. } => return Err(StoreError::Other("log entries are appended in batches".into())),
        };
        one_row(done.map_err(db_error)?.rows_affected())
    }
}

impl LogTx for SqliteConnection {
    async fn heads(
        &mut self,
        conversations: &[(TenantId, ConversationId)],
    ) -> Result<HashMap<(TenantId, ConversationId), append::Head>> {
        let mut heads = HashMap::with_capacity(conversations.len());
        for chunk in conversations.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "SELECT c.tenant_id, c.id, c.last_seq, c.status FROM (VALUES {}) AS k \
                 JOIN conversations AS c ON c.id = k.column2 AND c.tenant_id = k.column1",
                placeholders(chunk.len(), 2)
            );
            // Not cached: the shape varies with the batch, and would push hot statements out.
            let mut q = sqlx::query(&sql).persistent(false);
            for (t, c) in chunk {
                q = q.bind(id(t.0)).bind(id(c.0));
            }
            for r in q.fetch_all(&mut *self).await.map_err(db_error)? {
                let key = (TenantId(r.uuid("tenant_id")?), ConversationId(r.uuid("id")?));
                heads.insert(key, append::Head { last_seq: r.int("last_seq")?, ended: r.text("status")? == "ended" });
            }
        }
        Ok(heads)
    }

    async fn keyed(&mut self, keys: &[(TenantId, ConversationId, &str)]) -> Result<Vec<LogEntry>> {
        let mut found = Vec::new();
        for chunk in keys.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "SELECT l.conversation_id, l.seq, l.client_msg_id, l.body, l.created_at FROM (VALUES {}) AS k \
                 JOIN log_entries AS l ON l.conversation_id = k.column2 AND l.client_msg_id = k.column3 \
                   AND l.tenant_id = k.column1",
                placeholders(chunk.len(), 3)
            );
            let mut q = sqlx::query(&sql).persistent(false);
            for (t, c, key) in chunk {
                q = q.bind(id(t.0)).bind(id(c.0)).bind(*key);
            }
            for r in q.fetch_all(&mut *self).await.map_err(db_error)? {
                found.push(sql::log_entry(&r)?);
            }
        }
        Ok(found)
    }

    async fn insert(&mut self, rows: &[(&NewEntry, i64)]) -> Result<()> {
        // last_seq advances in the trigger log_entries_advance_last_seq, row by row; rows of a
        // conversation come in ascending seq, so it ends at the highest.
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO log_entries (conversation_id, seq, tenant_id, client_msg_id, body, created_at) VALUES {}",
                placeholders(chunk.len(), 6)
            );
            let mut q = sqlx::query(&sql).persistent(false);
            for (e, seq) in chunk {
                q = q
                    .bind(id(e.conversation_id.0))
                    .bind(*seq)
                    .bind(id(e.tenant_id.0))
                    .bind(e.client_msg_id.as_deref())
                    .bind(to_json(&e.body)?)
                    .bind(micros(e.created_at));
            }
            q.execute(&mut *self).await.map_err(db_error)?;
        }
        Ok(())
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn migrate(&self) -> Result<()> {
        // Migrations that rebuild a table other rows reference (0012_…) need foreign keys off,
        // which SQLite ignores inside the transaction sqlx runs each migration in; so they are
        // off around the migrator, on the one write connection, and each such migration checks
        // every reference itself before it commits.
        let mut conn = self.write.acquire().await.map_err(db_error)?;
        sqlx::query("PRAGMA foreign_keys = OFF").execute(&mut *conn).await.map_err(db_error)?;
        // run_direct is what run calls once it holds a connection; run itself trips the
        // "Acquire is not general enough" limitation inside an async-trait method.
        let migrated = MIGRATOR.run_direct(&mut *conn).await.map_err(|e| db_error(e.into()));
        let restored = sqlx::query("PRAGMA foreign_keys = ON").execute(&mut *conn).await.map_err(db_error);
        if restored.is_err() {
            // Never hand a connection without foreign keys back to the pool.
            drop(conn.detach());
        }
        migrated.and(restored.map(drop))
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.read).await.map_err(db_error)?;
        Ok(())
    }

    async fn commit_engine(&self, tenant: TenantId, writes: &[EngineWrite]) -> Result<Vec<LogEntry>> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        let appended = engine_tx::commit_all(&mut *tx, tenant, writes).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(appended)
    }

    async fn load_engine_state(&self, tenant: TenantId) -> Result<EngineState> {
        let chats = sqlx::query("SELECT conversation_id, state FROM engine_chats WHERE tenant_id = $1")
            .bind(id(tenant.0))
            .fetch_all(&self.read)
            .await
            .map_err(db_error)?;
        let agents = sqlx::query("SELECT user_id, state FROM engine_agents WHERE tenant_id = $1")
            .bind(id(tenant.0))
            .fetch_all(&self.read)
            .await
            .map_err(db_error)?;
        sql::engine_state(&chats, &agents)
    }

    async fn claim_node(&self) -> Result<NodeClaim> {
        let Some(db) = &self.path else { return Ok(NodeClaim::new(())) };
        claim_lock_file(db)
    }

    async fn close(&self) {
        // Readers first: the writer's close is the last connection's, which checkpoints the WAL.
        self.read.close().await;
        self.write.close().await;
    }

    async fn create_tenant(&self, tenant: &Tenant, root: &OrgUnit, key: &ApiKeyRecord) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO tenants (id, slug, name, root_ou_id, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(id(tenant.id.0))
            .bind(&tenant.slug)
            .bind(&tenant.name)
            .bind(id(tenant.root_ou_id.0))
            .bind(micros(tenant.created_at))
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        insert_org_unit(&mut *tx, root).await?;
        insert_api_key(&mut *tx, key).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn get_tenant(&self, tenant: TenantId) -> Result<Tenant> {
        let row = sqlx::query(concat!(select!(tenants), " WHERE id = $1"))
            .bind(id(tenant.0))
            .fetch_one(&self.read)
            .await
            .map_err(db_error)?;
        sql::tenant(&row)
    }

    async fn find_tenant_by_slug(&self, slug: &str) -> Result<Tenant> {
        let row = sqlx::query(concat!(select!(tenants), " WHERE slug = $1"))
            .bind(slug)
            .fetch_one(&self.read)
            .await
            .map_err(db_error)?;
        sql::tenant(&row)
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        let rows = sqlx::query(concat!(select!(tenants), " ORDER BY created_at, id"))
            .fetch_all(&self.read)
            .await
            .map_err(db_error)?;
        rows.iter().map(sql::tenant).collect()
    }

    async fn create_api_key(&self, key: &ApiKeyRecord) -> Result<()> {
        insert_api_key(&self.write, key).await
    }

    async fn find_api_key(&self, key: ApiKeyId) -> Result<ApiKeyRecord> {
        let row = sqlx::query(concat!(select!(api_keys), " WHERE id = $1"))
            .bind(id(key.0))
            .fetch_one(&self.read)
            .await
            .map_err(db_error)?;
        sql::api_key(&row)
    }

    async fn create_org_unit(&self, ou: &OrgUnit) -> Result<()> {
        insert_org_unit(&self.write, ou).await
    }

    async fn get_org_unit(&self, tenant: TenantId, ou: OrgUnitId) -> Result<OrgUnit> {
        let row = sqlx::query(concat!(select!(org_units), " WHERE tenant_id = $1 AND id = $2"))
            .bind(id(tenant.0))
            .bind(id(ou.0))
            .fetch_one(&self.read)
            .await
            .map_err(db_error)?;
        sql::org_unit(&row)
    }

    async fn list_org_units(&self, tenant: TenantId) -> Result<Vec<OrgUnit>> {
        let rows = sqlx::query(concat!(select!(org_units), " WHERE tenant_id = $1 ORDER BY rowid"))
            .bind(id(tenant.0))
            .fetch_all(&self.read)
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
        .bind(id(user.id.0))
        .bind(id(user.tenant_id.0))
        .bind(id(user.ou_id.0))
        .bind(&user.display_name)
        .bind(&user.email)
        .bind(password_hash)
        .bind(to_json(&user.licences)?)
        .bind(user.im_enabled)
        .bind(i64::from(user.max_chats))
        .bind(user.presence.as_str())
        .bind(micros(user.created_at))
        .bind(&user.direct.contact_id)
        .bind(&user.direct.widget_key)
        .bind(to_json(&user.direct.settings)?)
        .execute(&self.write)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn get_user(&self, tenant: TenantId, user: UserId) -> Result<User> {
        let row = sqlx::query(concat!(select!(users), " WHERE tenant_id = $1 AND id = $2"))
            .bind(id(tenant.0))
            .bind(id(user.0))
            .fetch_one(&self.read)
            .await
            .map_err(db_error)?;
        sql::user(&row)
    }

    async fn list_users(&self, tenant: TenantId) -> Result<Vec<User>> {
        let rows = sqlx::query(concat!(select!(users), " WHERE tenant_id = $1 ORDER BY created_at, id"))
            .bind(id(tenant.0))
            .fetch_all(&self.read)
            .await
            .map_err(db_error)?;
        rows.iter().map(sql::user).collect()
    }

    async fn find_user_login(&self, tenant: TenantId, email: &str) -> Result<(User, Option<String>)> {
        let row = sqlx::query(concat!(select!(users), " WHERE tenant_id = $1 AND email = $2"))
            .bind(id(tenant.0))
            .bind(email)
            .fetch_one(&self.read)
            .await
            .map_err(db_error)?;
        Ok((sql::user(&row)?, row.opt_text("password_hash")?))
    }

    async fn find_user_by_contact_id(&self, contact_id: &str) -> Result<User> {
        let row = sqlx::query(concat!(select!(users), " WHERE contact_id = $1"))
            .bind(contact_id)
            .fetch_one(&self.read)
            .await
            .map_err(db_error)?;
        sql::user(&row)
    }

    async fn set_direct_chat(&self, tenant: TenantId, user: UserId, settings: &DirectChatSettings) -> Result<User> {
        let row = sqlx::query(concat!(
            "UPDATE users SET direct = $3 WHERE tenant_id = $1 AND id = $2 RETURNING ",
            sql::columns!(users)
        ))
        .bind(id(tenant.0))
        .bind(id(user.0))
        .bind(to_json(settings)?)
        .fetch_one(&self.write)
        .await
        .map_err(db_error)?;
        sql::user(&row)
    }

    async fn set_user_widget_key(&self, tenant: TenantId, user: UserId, widget_key: &str) -> Result<()> {
        let done = sqlx::query("UPDATE users SET widget_key = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(id(tenant.0))
            .bind(id(user.0))
            .bind(widget_key)
            .execute(&self.write)
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
        .bind(id(session.tenant_id.0))
        .bind(id(session.user_id.0))
        .bind(micros(session.created_at))
        .bind(micros(session.expires_at))
        .execute(&self.write)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn find_session(&self, token_hash: &str) -> Result<AgentSession> {
        let row = sqlx::query(concat!(select!(agent_sessions), " WHERE token_hash = $1"))
            .bind(token_hash)
            .fetch_one(&self.read)
            .await
            .map_err(db_error)?;
        sql::session(&row)
    }

    async fn delete_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM agent_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.write)
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
        .bind(id(workflow.id.0))
        .bind(id(workflow.tenant_id.0))
        .bind(id(workflow.ou_id.0))
        .bind(&workflow.name)
        .bind(sql::workflow_kind(workflow.kind))
        .bind(to_json(&workflow.draft)?)
        .bind(workflow.current_version.map(i64::from))
        .bind(micros(workflow.created_at))
        .bind(micros(workflow.updated_at))
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
            .bind(id(tenant.0))
            .bind(id(workflow.0))
            .fetch_one(&self.read)
            .await
            .map_err(db_error)?;
        sql::workflow(&row)
    }

    async fn list_workflows(&self, tenant: TenantId) -> Result<Vec<Workflow>> {
        let rows = sqlx::query(concat!(select!(workflows), " WHERE tenant_id = $1 ORDER BY created_at, id"))
            .bind(id(tenant.0))
            .fetch_all(&self.read)
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
                .bind(id(tenant.0))
                .bind(id(workflow.0))
                .bind(name)
                .bind(to_json(draft)?)
                .bind(micros(updated_at))
                .execute(&self.write)
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
            .bind(id(version.tenant_id.0))
            .bind(id(version.workflow_id.0))
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
        .bind(id(tenant.0))
        .bind(id(workflow.0))
        .bind(i64::from(version))
        .fetch_one(&self.read)
        .await
        .map_err(db_error)?;
        sql::workflow_version(&row)
    }

    async fn list_workflow_versions(&self, tenant: TenantId, workflow: WorkflowId) -> Result<Vec<WorkflowVersion>> {
        let rows = sqlx::query(concat!(
            select!(workflow_versions),
            " WHERE tenant_id = $1 AND workflow_id = $2 ORDER BY version"
        ))
        .bind(id(tenant.0))
        .bind(id(workflow.0))
        .fetch_all(&self.read)
        .await
        .map_err(db_error)?;
        rows.iter().map(sql::workflow_version).collect()
    }

    async fn create_parameter(&self, p: &CustomParameter) -> Result<()> {
        sqlx::query(
            "INSERT INTO parameters (tenant_id, id, ou_id, name, default_value, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id(p.tenant_id.0))
        .bind(&p.id)
        .bind(id(p.ou_id.0))
        .bind(&p.name)
        .bind(&p.default_value)
        .bind(micros(p.created_at))
        .execute(&self.write)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn get_parameter(&self, tenant: TenantId, parameter: &str) -> Result<CustomParameter> {
        let row = sqlx::query(concat!(select!(parameters), " WHERE tenant_id = $1 AND id = $2"))
            .bind(id(tenant.0))
            .bind(parameter)
            .fetch_one(&self.read)
            .await
            .map_err(db_error)?;
        sql::parameter(&row)
    }

    async fn list_parameters(&self, tenant: TenantId) -> Result<Vec<CustomParameter>> {
        let rows = sqlx::query(concat!(select!(parameters), " WHERE tenant_id = $1 ORDER BY id"))
            .bind(id(tenant.0))
            .fetch_all(&self.read)
            .await
            .map_err(db_error)?;
        rows.iter().map(sql::parameter).collect()
    }

    async fn update_parameter(&self, p: &CustomParameter) -> Result<()> {
        let done = sqlx::query("UPDATE parameters SET name = $3, default_value = $4 WHERE tenant_id = $1 AND id = $2")
            .bind(id(p.tenant_id.0))
            .bind(&p.id)
            .bind(&p.name)
            .bind(&p.default_value)
            .execute(&self.write)
            .await
            .map_err(db_error)?;
        one_row(done.rows_affected())
    }

    async fn delete_parameter(&self, tenant: TenantId, parameter: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM parameters WHERE tenant_id = $1 AND id = $2")
            .bind(id(tenant.0))
            .bind(parameter)
            .execute(&self.write)
            .await
            .map_err(db_error)?;
        one_row(done.rows_affected())
    }

    async fn create_calendar(&self, c: &OpeningCalendar) -> Result<()> {
        sqlx::query(
            "INSERT INTO calendars (id, tenant_id, ou_id, name, calendar, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id(c.id.0))
        .bind(id(c.tenant_id.0))
        .bind(id(c.ou_id.0))
        .bind(&c.name)
        .bind(to_json(&c.calendar)?)
        .bind(micros(c.created_at))
        .execute(&self.write)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn get_calendar(&self, tenant: TenantId, calendar: CalendarId) -> Result<OpeningCalendar> {
        let row = sqlx::query(concat!(select!(calendars), " WHERE tenant_id = $1 AND id = $2"))
            .bind(id(tenant.0))
            .bind(id(calendar.0))
            .fetch_one(&self.read)
            .await
            .map_err(db_error)?;
        sql::calendar(&row)
    }

    async fn list_calendars(&self, tenant: TenantId) -> Result<Vec<OpeningCalendar>> {
        let rows = sqlx::query(concat!(select!(calendars), " WHERE tenant_id = $1 ORDER BY created_at, id"))
            .bind(id(tenant.0))
            .fetch_all(&self.read)
            .await
            .map_err(db_error)?;
        rows.iter().map(sql::calendar).collect()
    }

    async fn update_calendar(&self, c: &OpeningCalendar) -> Result<()> {
        let done = sqlx::query("UPDATE calendars SET name = $3, calendar = $4 WHERE tenant_id = $1 AND id = $2")
            .bind(id(c.tenant_id.0))
            .bind(id(c.id.0))
            .bind(&c.name)
            .bind(to_json(&c.calendar)?)
            .execute(&self.write)
            .await
            .map_err(db_error)?;
        one_row(done.rows_affected())
    }

    async fn delete_calendar(&self, tenant: TenantId, calendar: CalendarId) -> Result<()> {
        let done = sqlx::query("DELETE FROM calendars WHERE tenant_id = $1 AND id = $2")
            .bind(id(tenant.0))
            .bind(id(calendar.0))
            .execute(&self.write)
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
        .bind(id(service.id.0))
        .bind(id(service.tenant_id.0))
        .bind(id(service.ou_id.0))
        .bind(&service.name)
        .bind(id(service.workflow_id.0))
        .bind(&service.contact_id)
        .bind(&service.widget_key)
        .bind(service.primary_calendar_id.map(|c| id(c.0)))
        .bind(service.secondary_calendar_id.map(|c| id(c.0)))
        .bind(micros(service.created_at))
        .bind(sql::to_json(&service.routing)?)
        .bind(sql::to_json(&service.access)?)
        .bind(service.system_messages_id.map(|m| id(m.0)))
        .bind(sql::to_json(&service.codes)?)
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
            .bind(id(tenant.0))
            .bind(id(service.0))
            .fetch_one(&self.read)
            .await
            .map_err(db_error)?;
        sql::service(&row)
    }

    async fn list_services(&self, tenant: TenantId) -> Result<Vec<Service>> {
        let rows = sqlx::query(concat!(select!(services), " WHERE tenant_id = $1 ORDER BY created_at, id"))
            .bind(id(tenant.0))
            .fetch_all(&self.read)
            .await
            .map_err(db_error)?;
        rows.iter().map(sql::service).collect()
    }

    async fn update_service(&self, service: &Service) -> Result<()> {
        let done = sqlx::query(
            "UPDATE services SET name = $3, workflow_id = $4, primary_calendar_id = $5, secondary_calendar_id = $6, \
             routing = $7, access = $8, system_messages_id = $9, codes = $10 WHERE tenant_id = $1 AND id = $2",
        )
        .bind(id(service.tenant_id.0))
        .bind(id(service.id.0))
        .bind(&service.name)
        .bind(id(service.workflow_id.0))
        .bind(service.primary_calendar_id.map(|c| id(c.0)))
        .bind(service.secondary_calendar_id.map(|c| id(c.0)))
        .bind(sql::to_json(&service.routing)?)
        .bind(sql::to_json(&service.access)?)
        .bind(service.system_messages_id.map(|m| id(m.0)))
        .bind(sql::to_json(&service.codes)?)
        .execute(&self.write)
        .await
        .map_err(db_error)?;
        one_row(done.rows_affected())
    }

    async fn find_service_by_contact_id(&self, contact_id: &str) -> Result<Service> {
        let row = sqlx::query(concat!(select!(services), " WHERE contact_id = $1"))
            .bind(contact_id)
            .fetch_one(&self.read)
            .await
            .map_err(db_error)?;
        sql::service(&row)
    }

    async fn set_service_widget_key(&self, tenant: TenantId, service: ServiceId, widget_key: &str) -> Result<()> {
        let done = sqlx::query("UPDATE services SET widget_key = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(id(tenant.0))
            .bind(id(service.0))
            .bind(widget_key)
            .execute(&self.write)
            .await
            .map_err(db_error)?;
        one_row(done.rows_affected())
    }

    async fn set_membership(&self, tenant: TenantId, membership: &Membership) -> Result<()> {
        one_row(insert_membership(&self.write, tenant, membership).await?)
    }

    async fn remove_membership(&self, tenant: TenantId, service: ServiceId, user: UserId) -> Result<()> {
        let done = sqlx::query("DELETE FROM memberships WHERE tenant_id = $1 AND service_id = $2 AND user_id = $3")
            .bind(id(tenant.0))
            .bind(id(service.0))
            .bind(id(user.0))
            .execute(&self.write)
            .await
            .map_err(db_error)?;
        one_row(done.rows_affected())
    }

    async fn list_memberships(&self, tenant: TenantId) -> Result<Vec<Membership>> {
        let rows = sqlx::query(concat!(select!(memberships), " WHERE tenant_id = $1 ORDER BY service_id, user_id"))
            .bind(id(tenant.0))
            .fetch_all(&self.read)
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
        .bind(id(c.id.0))
        .bind(id(c.tenant_id.0))
        .bind(c.service_id.map(|s| id(s.0)))
        .bind(c.workflow_id.map(|w| id(w.0)))
        .bind(c.workflow_version.map(i64::from))
        .bind(c.status.as_str())
        .bind(&c.customer.display_name)
        .bind(&c.customer.email)
        .bind(c.customer.privacy_consent)
        .bind(c.first_message.as_deref())
        .bind(c.agent_id.map(|a| id(a.0)))
        .bind(&credential.token_hash)
        .bind(micros(credential.expires_at))
        .bind(micros(c.created_at))
        .bind(c.ended_at.map(micros))
        .bind(c.outcome.map(Outcome::as_str))
        .bind(c.outcome_reason.as_deref())
        .bind(c.direct_user_id.map(|u| id(u.0)))
        .bind(c.customer.language.as_deref())
        .execute(&self.write)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn get_conversation(&self, tenant: TenantId, conversation: ConversationId) -> Result<Conversation> {
        let row = sqlx::query(concat!(select!(conversations), " WHERE tenant_id = $1 AND id = $2"))
            .bind(id(tenant.0))
            .bind(id(conversation.0))
            .fetch_one(&self.read)
            .await
            .map_err(db_error)?;
        sql::conversation(&row)
    }

    async fn visitor_credential(&self, tenant: TenantId, conversation: ConversationId) -> Result<VisitorCredential> {
        let row = sqlx::query(
            "SELECT visitor_token_hash, visitor_expires_at FROM conversations WHERE tenant_id = $1 AND id = $2",
        )
        .bind(id(tenant.0))
        .bind(id(conversation.0))
        .fetch_one(&self.read)
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
            .bind(id(tenant.0))
            .bind(id(conversation.0))
            .fetch_one(&self.read)
            .await
            .map_err(db_error)?;
        let text: Option<String> = row.try_get("workflow_run").map_err(db_error)?;
        text.map(|t| serde_json::from_str(&t).map_err(|e| StoreError::Other(format!("workflow_run: {e}")))).transpose()
    }

    async fn mark_receipt(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        reader: Reader,
        mark: Watermark,
    ) -> Result<Receipts> {
        let row = sqlx::query(&sql::mark_receipt_sql(reader, "MAX", "MIN"))
            .bind(id(tenant.0))
            .bind(id(conversation.0))
            .bind(mark.delivered_seq)
            .bind(mark.read_seq)
            .fetch_one(&self.write)
            .await
            .map_err(db_error)?;
        sql::receipts(&row)
    }

    async fn get_receipts(&self, tenant: TenantId, conversation: ConversationId) -> Result<Receipts> {
        let q = format!("SELECT {} FROM conversations WHERE tenant_id = $1 AND id = $2", sql::RECEIPT_COLS);
        let row = sqlx::query(&q)
            .bind(id(tenant.0))
            .bind(id(conversation.0))
            .fetch_one(&self.read)
            .await
            .map_err(db_error)?;
        sql::receipts(&row)
    }

    async fn create_attachment(&self, r: &AttachmentRecord) -> Result<()> {
        let a = &r.attachment;
        sqlx::query(
            "INSERT INTO attachments (id, tenant_id, conversation_id, name, content_type, size, sha256, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id(a.id.0))
        .bind(id(r.tenant_id.0))
        .bind(id(r.conversation_id.0))
        .bind(&a.name)
        .bind(&a.content_type)
        .bind(i64::try_from(a.size).map_err(|_| StoreError::Other("attachment size out of range".into()))?)
        .bind(&r.sha256)
        .bind(micros(r.created_at))
        .execute(&self.write)
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
            .bind(id(tenant.0))
            .bind(id(conversation.0))
            .bind(id(attachment.0))
            .fetch_one(&self.read)
            .await
            .map_err(db_error)?;
        sql::attachment(&row)
    }

    async fn create_system_messages(&self, m: &SystemMessages) -> Result<()> {
        sqlx::query(
            "INSERT INTO system_messages (id, tenant_id, ou_id, name, content, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id(m.id.0))
        .bind(id(m.tenant_id.0))
        .bind(id(m.ou_id.0))
        .bind(&m.content.name)
        .bind(sql::to_json(&m.content)?)
        .bind(micros(m.created_at))
        .execute(&self.write)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn get_system_messages(&self, tenant: TenantId, item: SystemMessagesId) -> Result<SystemMessages> {
        let row = sqlx::query(concat!(select!(system_messages), " WHERE tenant_id = $1 AND id = $2"))
            .bind(id(tenant.0))
            .bind(id(item.0))
            .fetch_one(&self.read)
            .await
            .map_err(db_error)?;
        sql::system_messages(&row)
    }

    async fn list_system_messages(&self, tenant: TenantId) -> Result<Vec<SystemMessages>> {
        let rows = sqlx::query(concat!(select!(system_messages), " WHERE tenant_id = $1 ORDER BY created_at, id"))
            .bind(id(tenant.0))
            .fetch_all(&self.read)
            .await
            .map_err(db_error)?;
        rows.iter().map(sql::system_messages).collect()
    }

    async fn update_system_messages(&self, m: &SystemMessages) -> Result<()> {
        let done = sqlx::query("UPDATE system_messages SET name = $3, content = $4 WHERE tenant_id = $1 AND id = $2")
            .bind(id(m.tenant_id.0))
            .bind(id(m.id.0))
            .bind(&m.content.name)
            .bind(sql::to_json(&m.content)?)
            .execute(&self.write)
            .await
            .map_err(db_error)?;
        one_row(done.rows_affected())
    }

    async fn delete_system_messages(&self, tenant: TenantId, item: SystemMessagesId) -> Result<()> {
        let done = sqlx::query("DELETE FROM system_messages WHERE tenant_id = $1 AND id = $2")
            .bind(id(tenant.0))
            .bind(id(item.0))
            .execute(&self.write)
            .await
            .map_err(db_error)?;
        one_row(done.rows_affected())
    }

    async fn create_domain_template(&self, t: &DomainTemplate) -> Result<()> {
        sqlx::query(
            "INSERT INTO domain_templates (id, tenant_id, ou_id, name, origins, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id(t.id.0))
        .bind(id(t.tenant_id.0))
        .bind(id(t.ou_id.0))
        .bind(&t.name)
        .bind(sql::to_json(&t.origins)?)
        .bind(micros(t.created_at))
        .execute(&self.write)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn get_domain_template(&self, tenant: TenantId, template: DomainTemplateId) -> Result<DomainTemplate> {
        let row = sqlx::query(concat!(select!(domain_templates), " WHERE tenant_id = $1 AND id = $2"))
            .bind(id(tenant.0))
            .bind(id(template.0))
            .fetch_one(&self.read)
            .await
            .map_err(db_error)?;
        sql::domain_template(&row)
    }

    async fn list_domain_templates(&self, tenant: TenantId) -> Result<Vec<DomainTemplate>> {
        let rows = sqlx::query(concat!(select!(domain_templates), " WHERE tenant_id = $1 ORDER BY created_at, id"))
            .bind(id(tenant.0))
            .fetch_all(&self.read)
            .await
            .map_err(db_error)?;
        rows.iter().map(sql::domain_template).collect()
    }

    async fn update_domain_template(&self, t: &DomainTemplate) -> Result<()> {
        let done = sqlx::query("UPDATE domain_templates SET name = $3, origins = $4 WHERE tenant_id = $1 AND id = $2")
            .bind(id(t.tenant_id.0))
            .bind(id(t.id.0))
            .bind(&t.name)
            .bind(sql::to_json(&t.origins)?)
            .execute(&self.write)
            .await
            .map_err(db_error)?;
        one_row(done.rows_affected())
    }

    async fn delete_domain_template(&self, tenant: TenantId, template: DomainTemplateId) -> Result<()> {
        let done = sqlx::query("DELETE FROM domain_templates WHERE tenant_id = $1 AND id = $2")
            .bind(id(tenant.0))
            .bind(id(template.0))
            .execute(&self.write)
            .await
            .map_err(db_error)?;
        one_row(done.rows_affected())
    }

    async fn create_code(&self, c: &Code) -> Result<()> {
        sqlx::query(
            "INSERT INTO codes (id, tenant_id, ou_id, name, lower_name, description, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id(c.id.0))
        .bind(id(c.tenant_id.0))
        .bind(id(c.ou_id.0))
        .bind(&c.name)
        .bind(sql::lower_name(&c.name))
        .bind(&c.description)
        .bind(micros(c.created_at))
        .execute(&self.write)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn get_code(&self, tenant: TenantId, code: CodeId) -> Result<Code> {
        let row = sqlx::query(concat!(select!(codes), " WHERE tenant_id = $1 AND id = $2"))
            .bind(id(tenant.0))
            .bind(id(code.0))
            .fetch_one(&self.read)
            .await
            .map_err(db_error)?;
        sql::code(&row)
    }

    async fn list_codes(&self, tenant: TenantId) -> Result<Vec<Code>> {
        let rows = sqlx::query(concat!(select!(codes), " WHERE tenant_id = $1 ORDER BY lower_name, id"))
            .bind(id(tenant.0))
            .fetch_all(&self.read)
            .await
            .map_err(db_error)?;
        rows.iter().map(sql::code).collect()
    }

    async fn update_code(&self, c: &Code) -> Result<()> {
        let done = sqlx::query(
            "UPDATE codes SET name = $3, lower_name = $4, description = $5 WHERE tenant_id = $1 AND id = $2",
        )
        .bind(id(c.tenant_id.0))
        .bind(id(c.id.0))
        .bind(&c.name)
        .bind(sql::lower_name(&c.name))
        .bind(&c.description)
        .execute(&self.write)
        .await
        .map_err(db_error)?;
        one_row(done.rows_affected())
    }

    async fn delete_code(&self, tenant: TenantId, code: CodeId) -> Result<()> {
        let done = sqlx::query("DELETE FROM codes WHERE tenant_id = $1 AND id = $2")
            .bind(id(tenant.0))
            .bind(id(code.0))
            .execute(&self.write)
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
            .bind(id(tenant.0))
            .bind(micros(window.from))
            .bind(micros(window.to))
            .bind(i64::from(window.limit));
        if let Some(service) = service {
            query = query.bind(id(service.0));
        }
        let rows = query.fetch_all(&self.read).await.map_err(db_error)?;
        rows.iter().map(sql::conversation).collect()
    }

    async fn set_wrap_up(&self, tenant: TenantId, conversation: ConversationId, wrap_up: &WrapUp) -> Result<()> {
        let done = sqlx::query("UPDATE conversations SET wrap_up = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(id(tenant.0))
            .bind(id(conversation.0))
            .bind(sql::to_json(wrap_up)?)
            .execute(&self.write)
            .await
            .map_err(db_error)?;
        one_row(done.rows_affected())
    }

    async fn create_skill(&self, skill: &Skill) -> Result<()> {
        sqlx::query("INSERT INTO skills (id, tenant_id, name, lower_name, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(id(skill.id.0))
            .bind(id(skill.tenant_id.0))
            .bind(&skill.name)
            .bind(sql::lower_name(&skill.name))
            .bind(micros(skill.created_at))
            .execute(&self.write)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn list_skills(&self, tenant: TenantId) -> Result<Vec<Skill>> {
        let rows = sqlx::query(concat!(select!(skills), " WHERE tenant_id = $1 ORDER BY lower_name, id"))
            .bind(id(tenant.0))
            .fetch_all(&self.read)
            .await
            .map_err(db_error)?;
        rows.iter().map(sql::skill).collect()
    }

    async fn delete_skill(&self, tenant: TenantId, skill: SkillId) -> Result<()> {
        let done = sqlx::query("DELETE FROM skills WHERE tenant_id = $1 AND id = $2")
            .bind(id(tenant.0))
            .bind(id(skill.0))
            .execute(&self.write)
            .await
            .map_err(sql::delete_error("skill_in_use"))?;
        one_row(done.rows_affected())
    }

    async fn set_user_skills(&self, tenant: TenantId, user: UserId, skills: &[UserSkill]) -> Result<()> {
        let mut tx = self.begin().await?;
        // The user is looked up first: with no skills to insert, nothing else would notice an
        // unknown one. A skill the tenant does not have fails its insert (foreign key, NotFound),
        // and the dropped transaction rolls the delete back.
        sqlx::query("SELECT 1 FROM users WHERE tenant_id = $1 AND id = $2")
            .bind(id(tenant.0))
            .bind(id(user.0))
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
        sqlx::query("DELETE FROM user_skills WHERE tenant_id = $1 AND user_id = $2")
            .bind(id(tenant.0))
            .bind(id(user.0))
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        for s in skills {
            sqlx::query("INSERT INTO user_skills (tenant_id, user_id, skill_id, level) VALUES ($1, $2, $3, $4)")
                .bind(id(tenant.0))
                .bind(id(user.0))
                .bind(id(s.skill_id.0))
                .bind(i64::from(s.level))
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }

    async fn list_user_skills(&self, tenant: TenantId) -> Result<Vec<(UserId, UserSkill)>> {
        let rows = sqlx::query(concat!(select!(user_skills), " WHERE tenant_id = $1 ORDER BY user_id, skill_id"))
            .bind(id(tenant.0))
            .fetch_all(&self.read)
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
        .bind(id(tenant.0))
        .fetch_all(&self.read)
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
        let mut query =
            query.bind(id(tenant.0)).bind(micros(window.from)).bind(micros(window.to)).bind(i64::from(window.limit));
        if let Some(user) = user {
            query = query.bind(id(user.0));
        }
        let rows = query.fetch_all(&self.read).await.map_err(db_error)?;
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
        let mut query =
            query.bind(id(tenant.0)).bind(micros(window.from)).bind(micros(window.to)).bind(i64::from(window.limit));
        if let Some(service) = service {
            query = query.bind(id(service.0));
        }
        let rows = query.fetch_all(&self.read).await.map_err(db_error)?;
        rows.iter().map(sql::service_session).collect()
    }

    async fn last_agent_of_customer(
        &self,
        tenant: TenantId,
        email: &str,
        since: OffsetDateTime,
    ) -> Result<Option<UserId>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT agent_id FROM conversations WHERE tenant_id = $1 AND customer_email = $2 \
             AND status = 'ended' AND agent_id IS NOT NULL AND ended_at >= $3 ORDER BY ended_at DESC LIMIT 1",
        )
        .bind(id(tenant.0))
        .bind(email)
        .bind(micros(since))
        .fetch_optional(&self.read)
        .await
        .map_err(db_error)?;
        row.map(|(a,)| Uuid::parse_str(&a).map(UserId).map_err(|e| StoreError::Other(format!("agent_id: {e}"))))
            .transpose()
    }

    async fn list_open_conversations(&self, tenant: TenantId) -> Result<Vec<Conversation>> {
        // `status <> 'ended'` literally, so the partial index conversations_open applies.
        let rows = sqlx::query(concat!(
            select!(conversations),
            " WHERE tenant_id = $1 AND status <> 'ended' ORDER BY created_at, id"
        ))
        .bind(id(tenant.0))
        .fetch_all(&self.read)
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
        .bind(id(tenant.0))
        .bind(id(agent.0))
        .bind(i64::from(limit))
        .fetch_all(&self.read)
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
        .bind(id(tenant.0))
        .bind(id(conversation.0))
        .bind(since_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await
        .map_err(db_error)?;
        if rows.is_empty() {
            // Only now is it worth a second look-up: nothing new, or no such conversation?
            self.get_conversation(tenant, conversation).await?;
        }
        rows.iter().map(sql::log_entry).collect()
    }
}
