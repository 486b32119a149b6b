-- Skills agents hold, with a level each, for skill-based distribution. Kept in step with
-- ../postgres/0006_skills.sql.

-- The name is unique per tenant case-insensitively. lower_name is the name as the store lowercases
-- it (Unicode-aware, in Rust), because SQLite's lower() and NOCASE fold ASCII letters only while
-- PostgreSQL's lower() follows the database's locale: folding in one place keeps the two backends
-- agreeing on which names clash. list_skills orders by it (byte-wise, as PostgreSQL's "C"
-- collation does), then by id.
CREATE TABLE skills (
    id          TEXT    NOT NULL PRIMARY KEY,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id),
    name        TEXT    NOT NULL,
    lower_name  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, lower_name)
) STRICT;

-- Replaced as a whole per user (set_user_skills). A skill still held cannot be deleted: the
-- store reports that foreign-key violation as skill_in_use. level is 1-10 (checked by the API).
CREATE TABLE user_skills (
    tenant_id   TEXT    NOT NULL,
    user_id     TEXT    NOT NULL,
    skill_id    TEXT    NOT NULL,
    level       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, user_id, skill_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, skill_id) REFERENCES skills (tenant_id, id)
) STRICT, WITHOUT ROWID;

-- Deleting a skill looks for holders by skill; without this that check scans every user's skills.
CREATE INDEX user_skills_by_skill ON user_skills (tenant_id, skill_id);
