-- Files sent in chats: the bytes live in the attachment folder, named by id; this is what the
-- API needs to serve them and to recognise a retried upload. Kept in step with
-- ../sqlite/0011_attachments.sql.
CREATE TABLE attachments (
    id              UUID        NOT NULL PRIMARY KEY,
    tenant_id       UUID        NOT NULL,
    conversation_id UUID        NOT NULL,
    name            TEXT        NOT NULL,
    content_type    TEXT        NOT NULL,
    size            BIGINT      NOT NULL,
    sha256          TEXT        NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id)
);
