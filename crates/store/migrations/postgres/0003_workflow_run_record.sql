-- What a conversation's workflow did (nodes passed, exits, parameters, final state), written when
-- the conversation ends so an administrator can still read it afterwards. NULL for conversations
-- that ended before this existed or never ran a workflow.
ALTER TABLE conversations ADD COLUMN workflow_run jsonb;
