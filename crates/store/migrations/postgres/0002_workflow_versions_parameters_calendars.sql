-- Published workflow versions, custom parameters, opening-hours calendars, and what services and
-- conversations record of them. Kept in step with
-- ../sqlite/0003_workflow_versions_parameters_calendars.sql (which keeps the two composite
-- references added to existing tables by triggers; here they are foreign keys).
--
-- Existing rows migrate: each workflow's definition becomes its draft and its version 1 (the
-- current one, published when the workflow was created), and every conversation runs version 1.

ALTER TABLE workflows RENAME COLUMN definition TO draft;
ALTER TABLE workflows
    ADD COLUMN current_version BIGINT, -- NULL until the first publish
    ADD COLUMN updated_at      TIMESTAMPTZ;

CREATE TABLE workflow_versions (
    tenant_id     UUID        NOT NULL,
    workflow_id   UUID        NOT NULL,
    version       BIGINT      NOT NULL,
    definition    JSONB       NOT NULL,
    published_at  TIMESTAMPTZ NOT NULL,
    restored_from BIGINT,
    CONSTRAINT workflow_versions_pkey PRIMARY KEY (tenant_id, workflow_id, version),
    FOREIGN KEY (tenant_id, workflow_id) REFERENCES workflows (tenant_id, id),
    FOREIGN KEY (tenant_id, workflow_id, restored_from) REFERENCES workflow_versions (tenant_id, workflow_id, version)
);

INSERT INTO workflow_versions (tenant_id, workflow_id, version, definition, published_at, restored_from)
SELECT tenant_id, id, 1, draft, created_at, NULL FROM workflows;
UPDATE workflows SET current_version = 1, updated_at = created_at;
ALTER TABLE workflows ALTER COLUMN updated_at SET NOT NULL;

-- The id is chosen by the tenant (workflows name it), so it is unique per tenant only. "C"
-- collation: list_parameters orders by id byte-wise, as SQLite does, whatever the database's
-- default collation.
CREATE TABLE parameters (
    tenant_id     UUID        NOT NULL REFERENCES tenants (id),
    id            TEXT        COLLATE "C" NOT NULL,
    ou_id         UUID        NOT NULL,
    name          TEXT        NOT NULL,
    default_value TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    CONSTRAINT parameters_pkey PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, ou_id) REFERENCES org_units (tenant_id, id)
);

CREATE TABLE calendars (
    id          UUID        NOT NULL,
    tenant_id   UUID        NOT NULL REFERENCES tenants (id),
    ou_id       UUID        NOT NULL,
    name        TEXT        NOT NULL,
    calendar    JSONB       NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT calendars_pkey PRIMARY KEY (id),
    CONSTRAINT calendars_tenant_id_id_key UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, ou_id) REFERENCES org_units (tenant_id, id)
);

-- A NULL calendar names nothing (MATCH SIMPLE). A calendar still named cannot be deleted; the
-- store reports that violation as calendar_in_use.
ALTER TABLE services
    ADD COLUMN primary_calendar_id   UUID,
    ADD COLUMN secondary_calendar_id UUID,
    ADD CONSTRAINT services_primary_calendar_fkey
        FOREIGN KEY (tenant_id, primary_calendar_id) REFERENCES calendars (tenant_id, id),
    ADD CONSTRAINT services_secondary_calendar_fkey
        FOREIGN KEY (tenant_id, secondary_calendar_id) REFERENCES calendars (tenant_id, id);

ALTER TABLE conversations
    ADD COLUMN workflow_version BIGINT NOT NULL DEFAULT 1, -- what every existing conversation ran
    ADD COLUMN outcome          TEXT,
    ADD COLUMN outcome_reason   TEXT,
    ADD CONSTRAINT conversations_workflow_version_fkey FOREIGN KEY (tenant_id, workflow_id, workflow_version)
        REFERENCES workflow_versions (tenant_id, workflow_id, version);
-- The default was for the rows above only; the store always writes the column.
ALTER TABLE conversations ALTER COLUMN workflow_version DROP DEFAULT;
