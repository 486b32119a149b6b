-- Parley's first SQLite schema. Kept in step with ../postgres/0001_init.sql: same tables, columns
-- and constraint meanings, so one conformance suite holds both backends.
--
-- Encodings: UUIDs are hyphenated lowercase TEXT (so they sort like PostgreSQL's uuid), times are
-- INTEGER unix microseconds (exact round trip, cheap ordering), JSON is TEXT.
--
-- Tenant isolation is also enforced by the schema: every tenant-owned table has UNIQUE
-- (tenant_id, id), and references between tenant-owned rows are composite foreign keys on
-- (tenant_id, …), so a row can never point at another tenant's row even if a query forgot to.

CREATE TABLE tenants (
    id          TEXT    NOT NULL PRIMARY KEY,
    slug        TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    -- No foreign key: the tenant row is written before its root unit, in the same transaction.
    root_ou_id  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE api_keys (
    id          TEXT    NOT NULL PRIMARY KEY,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id),
    name        TEXT    NOT NULL,
    secret_hash TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

-- list_org_units orders by rowid: the trait promises insertion order and units carry no time.
CREATE TABLE org_units (
    id          TEXT    NOT NULL PRIMARY KEY,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id),
    name        TEXT    NOT NULL,
    parent_id   TEXT,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, parent_id) REFERENCES org_units (tenant_id, id)
) STRICT;

CREATE TABLE users (
    id            TEXT    NOT NULL PRIMARY KEY,
    tenant_id     TEXT    NOT NULL REFERENCES tenants (id),
    ou_id         TEXT    NOT NULL,
    display_name  TEXT    NOT NULL,
    email         TEXT    NOT NULL,
    password_hash TEXT,
    licences      TEXT    NOT NULL, -- JSON array of licence names
    im_enabled    INTEGER NOT NULL,
    max_chats     INTEGER NOT NULL,
    presence      TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, email),
    FOREIGN KEY (tenant_id, ou_id) REFERENCES org_units (tenant_id, id)
) STRICT;

CREATE TABLE agent_sessions (
    token_hash  TEXT    NOT NULL PRIMARY KEY,
    tenant_id   TEXT    NOT NULL,
    user_id     TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
) STRICT;

CREATE TABLE workflows (
    id          TEXT    NOT NULL PRIMARY KEY,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id),
    ou_id       TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    definition  TEXT    NOT NULL, -- JSON WorkflowDefinition
    created_at  INTEGER NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, ou_id) REFERENCES org_units (tenant_id, id)
) STRICT;

CREATE TABLE services (
    id          TEXT    NOT NULL PRIMARY KEY,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id),
    ou_id       TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    workflow_id TEXT    NOT NULL,
    contact_id  TEXT    NOT NULL UNIQUE,
    widget_key  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, ou_id) REFERENCES org_units (tenant_id, id),
    FOREIGN KEY (tenant_id, workflow_id) REFERENCES workflows (tenant_id, id)
) STRICT;

CREATE TABLE memberships (
    service_id  TEXT    NOT NULL,
    user_id     TEXT    NOT NULL,
    tenant_id   TEXT    NOT NULL,
    active      INTEGER NOT NULL,
    PRIMARY KEY (service_id, user_id),
    FOREIGN KEY (tenant_id, service_id) REFERENCES services (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
) STRICT, WITHOUT ROWID;

CREATE INDEX memberships_by_tenant ON memberships (tenant_id, service_id, user_id);

CREATE TABLE conversations (
    id                 TEXT    NOT NULL PRIMARY KEY,
    tenant_id          TEXT    NOT NULL REFERENCES tenants (id),
    service_id         TEXT    NOT NULL,
    workflow_id        TEXT    NOT NULL,
    status             TEXT    NOT NULL,
    customer_name      TEXT    NOT NULL,
    customer_email     TEXT    NOT NULL,
    privacy_consent    INTEGER NOT NULL,
    first_message      TEXT,
    agent_id           TEXT,
    -- Highest seq in log_entries; bumped in the same transaction as each insert, which is what
    -- makes seq gapless and serialises appenders per conversation.
    last_seq           INTEGER NOT NULL DEFAULT 0,
    visitor_token_hash TEXT    NOT NULL,
    visitor_expires_at INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    ended_at           INTEGER,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, service_id) REFERENCES services (tenant_id, id),
    FOREIGN KEY (tenant_id, workflow_id) REFERENCES workflows (tenant_id, id),
    FOREIGN KEY (tenant_id, agent_id) REFERENCES users (tenant_id, id)
) STRICT;

-- The engine rebuilds from the open conversations on start; ended ones are the vast majority.
CREATE INDEX conversations_open ON conversations (tenant_id, created_at, id) WHERE status <> 'ended';
CREATE INDEX conversations_by_agent ON conversations (tenant_id, agent_id, created_at DESC, id DESC);

-- WITHOUT ROWID clusters entries by (conversation_id, seq): a resume read is one range scan.
CREATE TABLE log_entries (
    conversation_id TEXT    NOT NULL,
    seq             INTEGER NOT NULL,
    tenant_id       TEXT    NOT NULL,
    client_msg_id   TEXT,
    body            TEXT    NOT NULL, -- JSON EntryBody
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, seq),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id)
) STRICT, WITHOUT ROWID;

CREATE UNIQUE INDEX log_entries_client_msg_id ON log_entries (conversation_id, client_msg_id)
    WHERE client_msg_id IS NOT NULL;
