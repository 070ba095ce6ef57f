-- Observer copies and messages held for ops by a routing rule.
ALTER TABLE messages ADD COLUMN copies text[] NOT NULL DEFAULT '{}';
ALTER TABLE messages DROP CONSTRAINT messages_status;
ALTER TABLE messages ADD CONSTRAINT messages_status
    CHECK (status IN ('routed', 'rejected', 'unroutable', 'held'));
