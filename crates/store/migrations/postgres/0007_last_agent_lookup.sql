-- Last-agent routing looks up a returning customer's most recent handled chat when a new one
-- starts; without this index that is a scan of every conversation of the tenant.
CREATE INDEX conversations_by_customer ON conversations (tenant_id, customer_email, ended_at DESC)
    WHERE agent_id IS NOT NULL AND status = 'ended';
