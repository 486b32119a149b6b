-- Parley's first PostgreSQL schema. Kept in step with ../sqlite/0001_init.sql: same tables, columns
-- and constraint meanings, so one conformance suite holds both backends.
--
-- Unique constraints are named explicitly: the store maps a violation to a stable conflict name
-- by constraint name (see src/sql.rs), so these names are part of the contract.
--
-- Tenant isolation is also enforced by the schema: every tenant-owned table has UNIQUE
-- (tenant_id, id), and references between tenant-owned rows are composite foreign keys on
-- (tenant_id, …), so a row can never point at another tenant's row even if a query forgot to.

CREATE TABLE tenants (
    id          UUID        NOT NULL,
    slug        TEXT        NOT NULL,
    name        TEXT        NOT NULL,
    -- No foreign key: the tenant row is written before its root unit, in the same transaction.
    root_ou_id  UUID        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT tenants_pkey PRIMARY KEY (id),
    CONSTRAINT tenants_slug_key UNIQUE (slug)
);

CREATE TABLE api_keys (
    id          UUID        NOT NULL,
    tenant_id   UUID        NOT NULL REFERENCES tenants (id),
    name        TEXT        NOT NULL,
    secret_hash TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT api_keys_pkey PRIMARY KEY (id)
);

CREATE TABLE org_units (
    id          UUID   NOT NULL,
    tenant_id   UUID   NOT NULL REFERENCES tenants (id),
    name        TEXT   NOT NULL,
    parent_id   UUID,
    -- list_org_units promises insertion order and units carry no time.
    position    BIGINT GENERATED ALWAYS AS IDENTITY,
    CONSTRAINT org_units_pkey PRIMARY KEY (id),
    CONSTRAINT org_units_tenant_id_id_key UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, parent_id) REFERENCES org_units (tenant_id, id)
);

CREATE TABLE users (
    id            UUID        NOT NULL,
    tenant_id     UUID        NOT NULL REFERENCES tenants (id),
    ou_id         UUID        NOT NULL,
    display_name  TEXT        NOT NULL,
    email         TEXT        NOT NULL,
    password_hash TEXT,
    licences      JSONB       NOT NULL, -- array of licence names
    im_enabled    BOOLEAN     NOT NULL,
    max_chats     BIGINT      NOT NULL,
    presence      TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_tenant_id_id_key UNIQUE (tenant_id, id),
    CONSTRAINT users_tenant_id_email_key UNIQUE (tenant_id, email),
    FOREIGN KEY (tenant_id, ou_id) REFERENCES org_units (tenant_id, id)
);

CREATE TABLE agent_sessions (
    token_hash  TEXT        NOT NULL,
    tenant_id   UUID        NOT NULL,
    user_id     UUID        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT agent_sessions_pkey PRIMARY KEY (token_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);

CREATE TABLE workflows (
    id          UUID        NOT NULL,
    tenant_id   UUID        NOT NULL REFERENCES tenants (id),
    ou_id       UUID        NOT NULL,
    name        TEXT        NOT NULL,
    kind        TEXT        NOT NULL,
    definition  JSONB       NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT workflows_pkey PRIMARY KEY (id),
    CONSTRAINT workflows_tenant_id_id_key UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, ou_id) REFERENCES org_units (tenant_id, id)
);

CREATE TABLE services (
    id          UUID        NOT NULL,
    tenant_id   UUID        NOT NULL REFERENCES tenants (id),
    ou_id       UUID        NOT NULL,
    name        TEXT        NOT NULL,
    workflow_id UUID        NOT NULL,
    contact_id  TEXT        NOT NULL,
    widget_key  TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT services_pkey PRIMARY KEY (id),
    CONSTRAINT services_tenant_id_id_key UNIQUE (tenant_id, id),
    CONSTRAINT services_contact_id_key UNIQUE (contact_id),
    FOREIGN KEY (tenant_id, ou_id) REFERENCES org_units (tenant_id, id),
    FOREIGN KEY (tenant_id, workflow_id) REFERENCES workflows (tenant_id, id)
);

CREATE TABLE memberships (
    service_id  UUID    NOT NULL,
    user_id     UUID    NOT NULL,
    tenant_id   UUID    NOT NULL,
    active      BOOLEAN NOT NULL,
    CONSTRAINT memberships_pkey PRIMARY KEY (service_id, user_id),
    FOREIGN KEY (tenant_id, service_id) REFERENCES services (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);

CREATE INDEX memberships_by_tenant ON memberships (tenant_id, service_id, user_id);

CREATE TABLE conversations (
    id                 UUID        NOT NULL,
    tenant_id          UUID        NOT NULL REFERENCES tenants (id),
    service_id         UUID        NOT NULL,
    workflow_id        UUID        NOT NULL,
    status             TEXT        NOT NULL,
    customer_name      TEXT        NOT NULL,
    customer_email     TEXT        NOT NULL,
    privacy_consent    BOOLEAN     NOT NULL,
    first_message      TEXT,
    agent_id           UUID,
    -- Highest seq in log_entries; bumped in the same transaction as each insert. The row lock
    -- that UPDATE takes is what serialises appenders from several nodes per conversation.
    last_seq           BIGINT      NOT NULL DEFAULT 0,
    visitor_token_hash TEXT        NOT NULL,
    visitor_expires_at TIMESTAMPTZ NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL,
    ended_at           TIMESTAMPTZ,
    CONSTRAINT conversations_pkey PRIMARY KEY (id),
    CONSTRAINT conversations_tenant_id_id_key UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, service_id) REFERENCES services (tenant_id, id),
    FOREIGN KEY (tenant_id, workflow_id) REFERENCES workflows (tenant_id, id),
    FOREIGN KEY (tenant_id, agent_id) REFERENCES users (tenant_id, id)
);

-- The engine rebuilds from the open conversations on start; ended ones are the vast majority.
CREATE INDEX conversations_open ON conversations (tenant_id, created_at, id) WHERE status <> 'ended';
CREATE INDEX conversations_by_agent ON conversations (tenant_id, agent_id, created_at DESC, id DESC);

CREATE TABLE log_entries (
    conversation_id UUID        NOT NULL,
    seq             BIGINT      NOT NULL,
    tenant_id       UUID        NOT NULL,
    client_msg_id   TEXT,
    body            JSONB       NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    CONSTRAINT log_entries_pkey PRIMARY KEY (conversation_id, seq),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id)
);

CREATE UNIQUE INDEX log_entries_client_msg_id ON log_entries (conversation_id, client_msg_id)
    WHERE client_msg_id IS NOT NULL;
