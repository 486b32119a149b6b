-- Codes agents choose to sum up a chat, the lists services offer, and each conversation's
-- wrap-up (codes and tags). Kept in step with ../postgres/0013_codes.sql.

-- Names are unique per tenant case-insensitively, folded by the store as for skills (0007).
CREATE TABLE codes (
    id          TEXT    NOT NULL PRIMARY KEY,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id),
    ou_id       TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    lower_name  TEXT    NOT NULL,
    description TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, lower_name),
    FOREIGN KEY (tenant_id, ou_id) REFERENCES org_units (tenant_id, id)
) STRICT;

-- ServiceCodes as JSON: the ids of the primary and secondary lists, in display order. The API
-- checks them against the tenant's codes and refuses to delete a listed code.
ALTER TABLE services ADD COLUMN codes TEXT NOT NULL DEFAULT '{"primary":[],"secondary":[]}';
-- WrapUp as JSON (codes, tags, who set them, when); NULL until the agent sets one.
ALTER TABLE conversations ADD COLUMN wrap_up TEXT;
-- The codes report reads the wrapped-up conversations that ended in a window.
CREATE INDEX conversations_wrapped_up ON conversations (tenant_id, ended_at DESC, id DESC) WHERE wrap_up IS NOT NULL;
-- An agent's history includes the direct chats addressed to them, answered or not.
CREATE INDEX conversations_by_direct_user ON conversations (tenant_id, direct_user_id, created_at DESC, id DESC)
    WHERE direct_user_id IS NOT NULL;
