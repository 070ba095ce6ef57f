-- Issue 14, after 0011 (which databases may have applied already): a message type or status
-- that few (or no) messages have is found from its own rows instead of walking every
-- interchange for it.  At a million stored declarations a search for a type nobody sends read
-- every message (0.5-1 s, bench/console.py's database); with these ~10 ms.  Both are small:
-- the type index deduplicates its few values (6.7 MB at a million messages), the status one
-- holds only the messages not routed (0.5 MB).
CREATE INDEX messages_type ON messages (message_type);
CREATE INDEX messages_unusual ON messages (status) WHERE status <> 'routed';
