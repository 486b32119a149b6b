-- Direct chats: a visitor on a user's personal snippet chats with that one user, without a
-- service, workflow or queue. Kept in step with ../sqlite/0012_direct_chats.sql (which rebuilds
-- the two tables whose columns become optional; here ALTER TABLE does it in place).
--
-- * users get their snippet's credentials (contact_id, widget_key) and its settings (direct:
--   DirectChatSettings as JSON, '{}' reading as every default: switched off). Existing users
--   get freshly minted credentials, in the server's format (32 lowercase hex digits).
-- * A Contact ID is unique in the installation, services and users alike: a unique constraint
--   per table, and a trigger on each that refuses one the other table has, failing as a
--   violation of the unique constraint it would have broken (src/sql.rs maps it by that name).
-- * conversations: service_id, workflow_id and workflow_version become optional and
--   direct_user_id names the user of a direct chat. Exactly one of service_id and
--   direct_user_id is set; a service chat runs a workflow version, a direct chat none (the
--   workflow references are MATCH SIMPLE: NULL names nothing).
-- * user_sessions: service_id becomes optional (NULL for a direct chat's invitation).

-- ---------------------------------------------------------------------------------------------
-- users

ALTER TABLE users
    ADD COLUMN contact_id TEXT,
    ADD COLUMN widget_key TEXT,
    ADD COLUMN direct     JSONB NOT NULL DEFAULT '{}'::jsonb;

-- gen_random_uuid() draws from the strong random source; its 122 random bits are plenty for both.
UPDATE users SET
    contact_id = replace(gen_random_uuid()::text, '-', ''),
    widget_key = replace(gen_random_uuid()::text, '-', '');

ALTER TABLE users
    ALTER COLUMN contact_id SET NOT NULL,
    ALTER COLUMN widget_key SET NOT NULL,
    ADD CONSTRAINT users_contact_id_key UNIQUE (contact_id);

-- Refuses a Contact ID the other table has. The transaction-scoped advisory lock on the Contact
-- ID makes two writers of the same one (a user and a service, on any node) take turns, so the
-- second one's look-up (a fresh snapshot, READ COMMITTED) sees the first one's committed row.
CREATE FUNCTION contact_id_unused_by_the_other_table() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(1131373641, hashtext(NEW.contact_id));
    IF TG_TABLE_NAME = 'users' THEN
        IF EXISTS (SELECT 1 FROM services WHERE contact_id = NEW.contact_id) THEN
            RAISE EXCEPTION 'duplicate key value violates unique constraint "users_contact_id_key"'
                USING ERRCODE = 'unique_violation', CONSTRAINT = 'users_contact_id_key',
                      DETAIL = 'A service has this contact_id.';
        END IF;
    ELSIF EXISTS (SELECT 1 FROM users WHERE contact_id = NEW.contact_id) THEN
        RAISE EXCEPTION 'duplicate key value violates unique constraint "services_contact_id_key"'
            USING ERRCODE = 'unique_violation', CONSTRAINT = 'services_contact_id_key',
                  DETAIL = 'A user has this contact_id.';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER users_contact_id_unused_by_services BEFORE INSERT OR UPDATE OF contact_id ON users
    FOR EACH ROW EXECUTE FUNCTION contact_id_unused_by_the_other_table();
CREATE TRIGGER services_contact_id_unused_by_users BEFORE INSERT OR UPDATE OF contact_id ON services
    FOR EACH ROW EXECUTE FUNCTION contact_id_unused_by_the_other_table();

-- ---------------------------------------------------------------------------------------------
-- conversations

ALTER TABLE conversations
    ALTER COLUMN service_id DROP NOT NULL,
    ALTER COLUMN workflow_id DROP NOT NULL,
    ALTER COLUMN workflow_version DROP NOT NULL,
    ADD COLUMN direct_user_id UUID,
    ADD CONSTRAINT conversations_direct_user_fkey
        FOREIGN KEY (tenant_id, direct_user_id) REFERENCES users (tenant_id, id),
    ADD CONSTRAINT conversations_service_or_direct CHECK ((service_id IS NULL) <> (direct_user_id IS NULL)),
    ADD CONSTRAINT conversations_workflow_of_service_chats
        CHECK ((workflow_id IS NULL) = (service_id IS NULL) AND (workflow_version IS NULL) = (service_id IS NULL));

-- ---------------------------------------------------------------------------------------------
-- user_sessions

ALTER TABLE user_sessions ALTER COLUMN service_id DROP NOT NULL;
