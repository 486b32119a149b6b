-- Files sent in chats: the bytes live in the attachment folder, named by id; this is what the
-- API needs to serve them and to recognise a retried upload. Kept in step with
-- ../postgres/0010_attachments.sql.
CREATE TABLE attachments (
    id              TEXT    NOT NULL PRIMARY KEY,
    tenant_id       TEXT    NOT NULL,
    conversation_id TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    content_type    TEXT    NOT NULL,
    size            INTEGER NOT NULL,
    sha256          TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id)
) STRICT;
