-- Direct chats: a visitor on a user's personal snippet chats with that one user, without a
-- service, workflow or queue. Kept in step with ../postgres/0011_direct_chats.sql.
--
-- * users get their snippet's credentials (contact_id, widget_key) and its settings (direct:
--   DirectChatSettings as JSON, '{}' reading as every default: switched off). Existing users
--   get freshly minted credentials, in the server's format (32 lowercase hex digits).
-- * A Contact ID is unique in the installation, services and users alike: a unique index per
--   table, and triggers that refuse one the other table has, failing with the message of the
--   unique index it would have broken (src/sql.rs maps it to the same conflict name).
-- * conversations: service_id, workflow_id and workflow_version become optional and
--   direct_user_id names the user of a direct chat. Exactly one of service_id and
--   direct_user_id is set; a service chat runs a workflow version, a direct chat none.
-- * user_sessions: service_id becomes optional (NULL for a direct chat's invitation).
--
-- SQLite cannot make a column nullable nor add a table constraint to an existing table, so
-- conversations and user_sessions are rebuilt: create the new table, copy the rows, drop the old
-- table, rename the new one (https://www.sqlite.org/lang_altertable.html#otheralter). Dropping
-- a table other rows reference needs foreign keys off, and SQLite ignores PRAGMA foreign_keys
-- inside a transaction, where sqlx runs every migration: SqliteStore::migrate switches them off
-- around the migrator instead, and the last statements here check every reference before the
-- transaction commits (a violation fails the migration and rolls it back). Run with foreign keys
-- on, the DROP TABLE of a conversations table with log entries fails, also rolling back.
--
-- The rebuilt conversations table has the composite reference to its workflow version as a real
-- foreign key (MATCH SIMPLE: a direct chat's NULL workflow names nothing), so the triggers that
-- stood in for it (0003_…) go. Everything else that earlier migrations made on the two tables
-- (indexes, and the log trigger that advances last_seq) is made again, unchanged.

-- ---------------------------------------------------------------------------------------------
-- users

-- The DEFAULTs only let ALTER TABLE add NOT NULL columns; every row is set below and the store
-- always writes the columns.
ALTER TABLE users ADD COLUMN contact_id TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN widget_key TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN direct TEXT NOT NULL DEFAULT '{}';

UPDATE users SET contact_id = lower(hex(randomblob(16))), widget_key = lower(hex(randomblob(16)));

CREATE UNIQUE INDEX users_contact_id_key ON users (contact_id);

CREATE TRIGGER users_contact_id_unused_by_services_on_insert BEFORE INSERT ON users
WHEN EXISTS (SELECT 1 FROM services WHERE contact_id = NEW.contact_id)
BEGIN
    SELECT RAISE(ABORT, 'UNIQUE constraint failed: users.contact_id');
END;

CREATE TRIGGER users_contact_id_unused_by_services_on_update BEFORE UPDATE OF contact_id ON users
WHEN EXISTS (SELECT 1 FROM services WHERE contact_id = NEW.contact_id)
BEGIN
    SELECT RAISE(ABORT, 'UNIQUE constraint failed: users.contact_id');
END;

CREATE TRIGGER services_contact_id_unused_by_users_on_insert BEFORE INSERT ON services
WHEN EXISTS (SELECT 1 FROM users WHERE contact_id = NEW.contact_id)
BEGIN
    SELECT RAISE(ABORT, 'UNIQUE constraint failed: services.contact_id');
END;

CREATE TRIGGER services_contact_id_unused_by_users_on_update BEFORE UPDATE OF contact_id ON services
WHEN EXISTS (SELECT 1 FROM users WHERE contact_id = NEW.contact_id)
BEGIN
    SELECT RAISE(ABORT, 'UNIQUE constraint failed: services.contact_id');
END;

-- ---------------------------------------------------------------------------------------------
-- conversations

-- Triggers of other tables that name conversations: ALTER TABLE … RENAME re-reads every
-- trigger and fails on one naming a table that is missing at that moment. Made again below.
DROP TRIGGER log_entries_advance_last_seq;
DROP TRIGGER workflow_versions_run_by_conversations_stay;

CREATE TABLE conversations_new (
    id                     TEXT    NOT NULL PRIMARY KEY,
    tenant_id              TEXT    NOT NULL REFERENCES tenants (id),
    service_id             TEXT,
    workflow_id            TEXT,
    workflow_version       INTEGER,
    direct_user_id         TEXT,
    status                 TEXT    NOT NULL,
    customer_name          TEXT    NOT NULL,
    customer_email         TEXT    NOT NULL,
    privacy_consent        INTEGER NOT NULL,
    first_message          TEXT,
    agent_id               TEXT,
    -- Highest seq in log_entries; advanced by log_entries_advance_last_seq inside each insert.
    last_seq               INTEGER NOT NULL DEFAULT 0,
    visitor_token_hash     TEXT    NOT NULL,
    visitor_expires_at     INTEGER NOT NULL,
    created_at             INTEGER NOT NULL,
    ended_at               INTEGER,
    outcome                TEXT,
    outcome_reason         TEXT,
    workflow_run           TEXT,
    queued_at              INTEGER,
    priority               TEXT,
    customer_delivered_seq INTEGER NOT NULL DEFAULT 0,
    customer_read_seq      INTEGER NOT NULL DEFAULT 0,
    agent_delivered_seq    INTEGER NOT NULL DEFAULT 0,
    agent_read_seq         INTEGER NOT NULL DEFAULT 0,
    UNIQUE (tenant_id, id),
    CONSTRAINT conversations_service_or_direct CHECK ((service_id IS NULL) <> (direct_user_id IS NULL)),
    CONSTRAINT conversations_workflow_of_service_chats
        CHECK ((workflow_id IS NULL) = (service_id IS NULL) AND (workflow_version IS NULL) = (service_id IS NULL)),
    FOREIGN KEY (tenant_id, service_id) REFERENCES services (tenant_id, id),
    FOREIGN KEY (tenant_id, workflow_id) REFERENCES workflows (tenant_id, id),
    FOREIGN KEY (tenant_id, workflow_id, workflow_version)
        REFERENCES workflow_versions (tenant_id, workflow_id, version),
    FOREIGN KEY (tenant_id, agent_id) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, direct_user_id) REFERENCES users (tenant_id, id)
) STRICT;

INSERT INTO conversations_new (
    id, tenant_id, service_id, workflow_id, workflow_version, direct_user_id, status, customer_name,
    customer_email, privacy_consent, first_message, agent_id, last_seq, visitor_token_hash, visitor_expires_at,
    created_at, ended_at, outcome, outcome_reason, workflow_run, queued_at, priority, customer_delivered_seq,
    customer_read_seq, agent_delivered_seq, agent_read_seq)
SELECT
    id, tenant_id, service_id, workflow_id, workflow_version, NULL, status, customer_name,
    customer_email, privacy_consent, first_message, agent_id, last_seq, visitor_token_hash, visitor_expires_at,
    created_at, ended_at, outcome, outcome_reason, workflow_run, queued_at, priority, customer_delivered_seq,
    customer_read_seq, agent_delivered_seq, agent_read_seq
FROM conversations;

-- Drops the table's own indexes and the triggers on it (conversations_workflow_version_exists_…).
DROP TABLE conversations;
ALTER TABLE conversations_new RENAME TO conversations;

-- As in 0001_init.sql and 0008_last_agent_lookup.sql.
CREATE INDEX conversations_open ON conversations (tenant_id, created_at, id) WHERE status <> 'ended';
CREATE INDEX conversations_by_agent ON conversations (tenant_id, agent_id, created_at DESC, id DESC);
CREATE INDEX conversations_by_customer ON conversations (tenant_id, customer_email, ended_at)
    WHERE agent_id IS NOT NULL AND status = 'ended';

-- As in 0002_log_advances_last_seq.sql.
CREATE TRIGGER log_entries_advance_last_seq AFTER INSERT ON log_entries
BEGIN
    UPDATE conversations SET last_seq = NEW.seq WHERE id = NEW.conversation_id;
END;

-- ---------------------------------------------------------------------------------------------
-- user_sessions

CREATE TABLE user_sessions_new (
    id              TEXT    NOT NULL PRIMARY KEY,
    tenant_id       TEXT    NOT NULL REFERENCES tenants (id),
    conversation_id TEXT    NOT NULL,
    service_id      TEXT, -- NULL for a direct chat
    user_id         TEXT    NOT NULL,
    outcome         TEXT    NOT NULL,
    offered_at      INTEGER NOT NULL,
    answered_at     INTEGER, -- accepted sessions only
    ended_at        INTEGER NOT NULL,
    ring_secs       INTEGER NOT NULL,
    connected_secs  INTEGER NOT NULL,
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id),
    FOREIGN KEY (tenant_id, service_id) REFERENCES services (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
) STRICT;

INSERT INTO user_sessions_new (
    id, tenant_id, conversation_id, service_id, user_id, outcome, offered_at, answered_at, ended_at, ring_secs,
    connected_secs)
SELECT
    id, tenant_id, conversation_id, service_id, user_id, outcome, offered_at, answered_at, ended_at, ring_secs,
    connected_secs
FROM user_sessions;

DROP TABLE user_sessions;
ALTER TABLE user_sessions_new RENAME TO user_sessions;

-- As in 0006_queue_entries_and_reporting.sql.
CREATE INDEX user_sessions_by_end ON user_sessions (tenant_id, ended_at DESC, id DESC);
CREATE INDEX user_sessions_by_user ON user_sessions (tenant_id, user_id, ended_at DESC, id DESC);

-- ---------------------------------------------------------------------------------------------
-- Every reference still holds (foreign keys were off while the tables were rebuilt): a
-- violation breaks the CHECK and fails the migration, rolling it back.

CREATE TEMP TABLE direct_chats_migration_check (violations INTEGER NOT NULL CHECK (violations = 0));
INSERT INTO direct_chats_migration_check SELECT count(*) FROM pragma_foreign_key_check;
DROP TABLE direct_chats_migration_check;
