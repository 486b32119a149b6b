-- System messages items (texts to both sides and display names), linked from services and from
-- users' personal widgets, the customer's language that picks a text's variant, and the
-- agent's name as the customer reads it. Kept in
-- step with ../postgres/0012_system_messages.sql.

-- content is JSON (SystemMessagesContent, checked by the API); name is kept beside it for
-- listing. Services link an item by column; users name theirs inside their `direct` JSON. The
-- API refuses to delete an item still linked.
CREATE TABLE system_messages (
    id          TEXT    NOT NULL PRIMARY KEY,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id),
    ou_id       TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    content     TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, ou_id) REFERENCES org_units (tenant_id, id)
) STRICT;

ALTER TABLE services ADD COLUMN system_messages_id TEXT REFERENCES system_messages (id);
ALTER TABLE conversations ADD COLUMN customer_language TEXT;
-- The name the customer reads for the connected agent (system messages' agent name).
ALTER TABLE conversations ADD COLUMN agent_alias TEXT;
