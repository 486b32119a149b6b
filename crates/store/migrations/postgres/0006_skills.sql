-- Skills agents hold, with a level each, for skill-based distribution. Kept in step with
-- ../sqlite/0007_skills.sql.

-- The name is unique per tenant case-insensitively. lower_name is the name as the store lowercases
-- it (Unicode-aware, in Rust), because lower() here follows the database's locale while SQLite's
-- folds ASCII letters only: folding in one place keeps the two backends agreeing on which names
-- clash. "C" collation: list_skills orders by it byte-wise, then by id, as SQLite does, whatever
-- the database's default collation.
CREATE TABLE skills (
    id          UUID        NOT NULL,
    tenant_id   UUID        NOT NULL REFERENCES tenants (id),
    name        TEXT        NOT NULL,
    lower_name  TEXT        COLLATE "C" NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT skills_pkey PRIMARY KEY (id),
    CONSTRAINT skills_tenant_id_id_key UNIQUE (tenant_id, id),
    CONSTRAINT skills_tenant_id_lower_name_key UNIQUE (tenant_id, lower_name)
);

-- Replaced as a whole per user (set_user_skills). A skill still held cannot be deleted: the
-- store reports that foreign-key violation as skill_in_use. level is 1-10 (checked by the API).
CREATE TABLE user_skills (
    tenant_id   UUID   NOT NULL,
    user_id     UUID   NOT NULL,
    skill_id    UUID   NOT NULL,
    level       BIGINT NOT NULL,
    CONSTRAINT user_skills_pkey PRIMARY KEY (tenant_id, user_id, skill_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, skill_id) REFERENCES skills (tenant_id, id)
);

-- Deleting a skill looks for holders by skill; without this that check scans every user's skills.
CREATE INDEX user_skills_by_skill ON user_skills (tenant_id, skill_id);
