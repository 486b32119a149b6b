-- Delivered and read receipts: how far each side of a conversation has received and read its
-- log (watermarks on seq that only grow). Kept in step with ../sqlite/0010_read_receipts.sql.
ALTER TABLE conversations
    ADD COLUMN customer_delivered_seq BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN customer_read_seq      BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN agent_delivered_seq    BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN agent_read_seq         BIGINT NOT NULL DEFAULT 0;
