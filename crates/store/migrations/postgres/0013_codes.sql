-- Codes agents choose to sum up a chat, the lists services offer, and each conversation's
-- wrap-up (codes and tags). Kept in step with ../sqlite/0014_codes.sql.

-- Names are unique per tenant case-insensitively, folded by the store as for skills (0006).
CREATE TABLE codes (
    id          UUID        NOT NULL,
    tenant_id   UUID        NOT NULL REFERENCES tenants (id),
    ou_id       UUID        NOT NULL,
    name        TEXT        NOT NULL,
    lower_name  TEXT        COLLATE "C" NOT NULL,
    description TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT codes_pkey PRIMARY KEY (id),
    CONSTRAINT codes_tenant_id_id_key UNIQUE (tenant_id, id),
    CONSTRAINT codes_tenant_id_lower_name_key UNIQUE (tenant_id, lower_name),
    FOREIGN KEY (tenant_id, ou_id) REFERENCES org_units (tenant_id, id)
);

-- ServiceCodes as JSON: the ids of the primary and secondary lists, in display order. The API
-- checks them against the tenant's codes and refuses to delete a listed code.
ALTER TABLE services ADD COLUMN codes JSONB NOT NULL DEFAULT '{"primary":[],"secondary":[]}';
-- WrapUp as JSON (codes, tags, who set them, when); NULL until the agent sets one.
ALTER TABLE conversations ADD COLUMN wrap_up JSONB;
-- The codes report reads the wrapped-up conversations that ended in a window.
CREATE INDEX conversations_wrapped_up ON conversations (tenant_id, ended_at DESC, id DESC) WHERE wrap_up IS NOT NULL;
-- An agent's history includes the direct chats addressed to them, answered or not.
CREATE INDEX conversations_by_direct_user ON conversations (tenant_id, direct_user_id, created_at DESC, id DESC)
    WHERE direct_user_id IS NOT NULL;
