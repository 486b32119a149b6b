-- Where a queued conversation stands, so a restart rebuilds the queues in order, and the
-- reporting facts: one user session per offer to an agent, one service session per service a
-- conversation passes through, each written once when it ends. Kept in step with
-- ../postgres/0005_queue_entries_and_reporting.sql.

-- When the conversation (last) entered its service's queue and with which priority ('low',
-- 'normal', 'high' or 'strict'). Both NULL until it is first queued; the store sets them
-- together. An ended conversation keeps them, but list_queue_entries reads open ones only (the
-- partial index conversations_open serves it).
ALTER TABLE conversations ADD COLUMN queued_at INTEGER;
ALTER TABLE conversations ADD COLUMN priority TEXT;

-- Immutable once written. Durations are whole seconds; outcome is UserOutcome's stable text.
CREATE TABLE user_sessions (
    id              TEXT    NOT NULL PRIMARY KEY,
    tenant_id       TEXT    NOT NULL REFERENCES tenants (id),
    conversation_id TEXT    NOT NULL,
    service_id      TEXT    NOT NULL,
    user_id         TEXT    NOT NULL,
    outcome         TEXT    NOT NULL,
    offered_at      INTEGER NOT NULL,
    answered_at     INTEGER, -- accepted sessions only
    ended_at        INTEGER NOT NULL,
    ring_secs       INTEGER NOT NULL,
    connected_secs  INTEGER NOT NULL,
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id),
    FOREIGN KEY (tenant_id, service_id) REFERENCES services (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
) STRICT;

-- The reporting reads: a window of ended_at, newest first, for the tenant or one of its users.
CREATE INDEX user_sessions_by_end ON user_sessions (tenant_id, ended_at DESC, id DESC);
CREATE INDEX user_sessions_by_user ON user_sessions (tenant_id, user_id, ended_at DESC, id DESC);

-- Immutable once written. outcome is Outcome's stable text, NULL when a transfer moved the
-- conversation on; a NULL user (no agent handled it) names nothing, as with any foreign key.
CREATE TABLE service_sessions (
    id              TEXT    NOT NULL PRIMARY KEY,
    tenant_id       TEXT    NOT NULL REFERENCES tenants (id),
    conversation_id TEXT    NOT NULL,
    service_id      TEXT    NOT NULL,
    outcome         TEXT,
    user_id         TEXT,
    started_at      INTEGER NOT NULL,
    ended_at        INTEGER NOT NULL,
    ivr_secs        INTEGER NOT NULL,
    queue_secs      INTEGER NOT NULL,
    connected_secs  INTEGER NOT NULL,
    offers          INTEGER NOT NULL,
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id),
    FOREIGN KEY (tenant_id, service_id) REFERENCES services (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
) STRICT;

-- The reporting reads: a window of ended_at, newest first, for the tenant or one of its services.
CREATE INDEX service_sessions_by_end ON service_sessions (tenant_id, ended_at DESC, id DESC);
CREATE INDEX service_sessions_by_service ON service_sessions (tenant_id, service_id, ended_at DESC, id DESC);
