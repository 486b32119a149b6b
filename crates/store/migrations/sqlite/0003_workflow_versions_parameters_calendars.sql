-- Published workflow versions, custom parameters, opening-hours calendars, and what services and
-- conversations record of them. Kept in step with
-- ../postgres/0002_workflow_versions_parameters_calendars.sql.
--
-- Existing rows migrate: each workflow's definition becomes its draft and its version 1 (the
-- current one, published when the workflow was created), and every conversation runs version 1.
--
-- SQLite cannot add a table constraint to an existing table (ALTER TABLE ADD COLUMN takes at most
-- a one-column REFERENCES), and rebuilding services or conversations would mean dropping tables
-- that memberships, conversations and log_entries reference, which needs foreign keys switched
-- off outside a transaction. So the two composite references added to existing tables here
-- (a service's calendars, a conversation's workflow version) are kept by triggers that do what
-- the foreign keys do in PostgreSQL: refuse a row naming a row its tenant does not have, and
-- refuse to delete a row still named. They fail with SQLite's own foreign-key message, which
-- src/sql.rs maps like a real foreign-key violation (NotFound). New tables get real keys.

ALTER TABLE workflows RENAME COLUMN definition TO draft;
-- NULL until the first publish.
ALTER TABLE workflows ADD COLUMN current_version INTEGER;
-- The DEFAULT only lets ALTER TABLE add a NOT NULL column; every row is set below and the store
-- always writes the column.
ALTER TABLE workflows ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;

-- Immutable once written; WITHOUT ROWID clusters a workflow's versions for list_workflow_versions.
CREATE TABLE workflow_versions (
    tenant_id     TEXT    NOT NULL,
    workflow_id   TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    definition    TEXT    NOT NULL, -- JSON WorkflowDefinition
    published_at  INTEGER NOT NULL,
    restored_from INTEGER,
    PRIMARY KEY (tenant_id, workflow_id, version),
    FOREIGN KEY (tenant_id, workflow_id) REFERENCES workflows (tenant_id, id),
    FOREIGN KEY (tenant_id, workflow_id, restored_from) REFERENCES workflow_versions (tenant_id, workflow_id, version)
) STRICT, WITHOUT ROWID;

INSERT INTO workflow_versions (tenant_id, workflow_id, version, definition, published_at, restored_from)
SELECT tenant_id, id, 1, draft, created_at, NULL FROM workflows;
UPDATE workflows SET current_version = 1, updated_at = created_at;

-- The id is chosen by the tenant (workflows name it), so it is unique per tenant only.
CREATE TABLE parameters (
    tenant_id     TEXT    NOT NULL REFERENCES tenants (id),
    id            TEXT    NOT NULL,
    ou_id         TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    default_value TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, ou_id) REFERENCES org_units (tenant_id, id)
) STRICT, WITHOUT ROWID;

CREATE TABLE calendars (
    id          TEXT    NOT NULL PRIMARY KEY,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id),
    ou_id       TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    calendar    TEXT    NOT NULL, -- JSON Calendar
    created_at  INTEGER NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, ou_id) REFERENCES org_units (tenant_id, id)
) STRICT;

ALTER TABLE services ADD COLUMN primary_calendar_id TEXT;
ALTER TABLE services ADD COLUMN secondary_calendar_id TEXT;

-- (tenant_id, primary_calendar_id) and (tenant_id, secondary_calendar_id) REFERENCES calendars
-- (tenant_id, id); a NULL calendar names nothing, as with a foreign key.
CREATE TRIGGER services_calendars_exist_on_insert BEFORE INSERT ON services
WHEN (NEW.primary_calendar_id IS NOT NULL AND NOT EXISTS
        (SELECT 1 FROM calendars WHERE tenant_id = NEW.tenant_id AND id = NEW.primary_calendar_id))
  OR (NEW.secondary_calendar_id IS NOT NULL AND NOT EXISTS
        (SELECT 1 FROM calendars WHERE tenant_id = NEW.tenant_id AND id = NEW.secondary_calendar_id))
BEGIN
    SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed');
END;

CREATE TRIGGER services_calendars_exist_on_update
BEFORE UPDATE OF tenant_id, primary_calendar_id, secondary_calendar_id ON services
WHEN (NEW.primary_calendar_id IS NOT NULL AND NOT EXISTS
        (SELECT 1 FROM calendars WHERE tenant_id = NEW.tenant_id AND id = NEW.primary_calendar_id))
  OR (NEW.secondary_calendar_id IS NOT NULL AND NOT EXISTS
        (SELECT 1 FROM calendars WHERE tenant_id = NEW.tenant_id AND id = NEW.secondary_calendar_id))
BEGIN
    SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed');
END;

-- Calendar ids and tenants never change, so deleting is the only way to orphan a service.
CREATE TRIGGER calendars_named_by_services_stay BEFORE DELETE ON calendars
WHEN EXISTS (SELECT 1 FROM services WHERE tenant_id = OLD.tenant_id
                AND (primary_calendar_id = OLD.id OR secondary_calendar_id = OLD.id))
BEGIN
    SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed');
END;

-- The DEFAULT is what every existing conversation ran; the store always writes the column.
ALTER TABLE conversations ADD COLUMN workflow_version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE conversations ADD COLUMN outcome TEXT;
ALTER TABLE conversations ADD COLUMN outcome_reason TEXT;

-- (tenant_id, workflow_id, workflow_version) REFERENCES workflow_versions (tenant_id,
-- workflow_id, version). UPDATE OF keeps the log's hot path (the last_seq update of
-- log_entries_advance_last_seq) and status changes free of the check.
CREATE TRIGGER conversations_workflow_version_exists_on_insert BEFORE INSERT ON conversations
WHEN NOT EXISTS (SELECT 1 FROM workflow_versions WHERE tenant_id = NEW.tenant_id
                    AND workflow_id = NEW.workflow_id AND version = NEW.workflow_version)
BEGIN
    SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed');
END;

CREATE TRIGGER conversations_workflow_version_exists_on_update
BEFORE UPDATE OF tenant_id, workflow_id, workflow_version ON conversations
WHEN NOT EXISTS (SELECT 1 FROM workflow_versions WHERE tenant_id = NEW.tenant_id
                    AND workflow_id = NEW.workflow_id AND version = NEW.workflow_version)
BEGIN
    SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed');
END;

-- Versions are never deleted by the store; this keeps the reference whole should one ever be.
CREATE TRIGGER workflow_versions_run_by_conversations_stay BEFORE DELETE ON workflow_versions
WHEN EXISTS (SELECT 1 FROM conversations WHERE tenant_id = OLD.tenant_id
                AND workflow_id = OLD.workflow_id AND workflow_version = OLD.version)
BEGIN
    SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed');
END;
