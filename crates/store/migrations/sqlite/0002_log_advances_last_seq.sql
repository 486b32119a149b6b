-- Keeps conversations.last_seq at the conversation's highest seq from inside the statement that
-- inserts the entry, so an append (INSERT … SELECT last_seq + 1 …, see src/sqlite.rs) is one
-- statement per entry instead of an UPDATE plus an INSERT: under SQLite the log's hot path is
-- bound by statement count. It also keeps last_seq right for any other writer of the log.
-- PostgreSQL keeps its explicit UPDATE, whose row lock orders appenders from several nodes.

CREATE TRIGGER log_entries_advance_last_seq AFTER INSERT ON log_entries
BEGIN
    UPDATE conversations SET last_seq = NEW.seq WHERE id = NEW.conversation_id;
END;
