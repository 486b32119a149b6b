-- Domain templates (the website origins allowed to use a widget snippet) and a service's widget
-- access settings. Kept in step with ../sqlite/0009_domain_templates_and_access.sql.

-- origins is JSON (a list of normalised origins, checked by the API). Services name templates
-- inside their access JSON, not by foreign key: the API refuses to delete a template a service
-- still uses.
CREATE TABLE domain_templates (
    id          UUID        NOT NULL,
    tenant_id   UUID        NOT NULL REFERENCES tenants (id),
    ou_id       UUID        NOT NULL,
    name        TEXT        NOT NULL,
    origins     JSONB       NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT domain_templates_pkey PRIMARY KEY (id),
    CONSTRAINT domain_templates_tenant_id_id_key UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, ou_id) REFERENCES org_units (tenant_id, id)
);

-- A service's widget access settings (WidgetAccess as JSON). '{}' reads as every default (no
-- restriction), which is what services created before this had.
ALTER TABLE services ADD COLUMN access jsonb NOT NULL DEFAULT '{}'::jsonb;
