-- Domain templates (the website origins allowed to use a widget snippet) and a service's widget
-- access settings. Kept in step with ../postgres/0008_domain_templates_and_access.sql.

-- origins is JSON (a list of normalised origins, checked by the API). Services name templates
-- inside their access JSON, not by foreign key: the API refuses to delete a template a service
-- still uses.
CREATE TABLE domain_templates (
    id          TEXT    NOT NULL PRIMARY KEY,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id),
    ou_id       TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    origins     TEXT    NOT NULL, -- JSON list of origins
    created_at  INTEGER NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, ou_id) REFERENCES org_units (tenant_id, id)
) STRICT;

-- A service's widget access settings (WidgetAccess as JSON). '{}' reads as every default (no
-- restriction), which is what services created before this had.
ALTER TABLE services ADD COLUMN access TEXT NOT NULL DEFAULT '{}';
