-- Delivered and read receipts: how far each side of a conversation has received and read its
-- log (watermarks on seq that only grow). Kept in step with ../postgres/0009_read_receipts.sql.
ALTER TABLE conversations ADD COLUMN customer_delivered_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN customer_read_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN agent_delivered_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN agent_read_seq INTEGER NOT NULL DEFAULT 0;
