-- What a tenant engine keeps of each open conversation (workflow session, timers, routing state)
-- and of each agent (RONA flag, after-chat work), written in the same transaction as the effects
-- that changed it, so a restart continues every chat where it was. Kept in step with
-- ../sqlite/0015_engine_state.sql.
CREATE TABLE engine_chats (
    tenant_id       UUID  NOT NULL,
    conversation_id UUID  NOT NULL,
    state           JSONB NOT NULL,
    PRIMARY KEY (tenant_id, conversation_id),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id)
);

CREATE TABLE engine_agents (
    tenant_id UUID  NOT NULL,
    user_id   UUID  NOT NULL,
    state     JSONB NOT NULL,
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
