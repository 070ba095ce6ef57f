-- Issue 14, after 0011 (which databases may have applied already): a message type that few (or
-- no) messages have is found from its own rows instead of walking every interchange for it.
-- At a million stored declarations a search for a type nobody sends read every message
-- (0.5-1 s, bench/console.py's database); with this ~10 ms.  Small: it deduplicates its few
-- values (6.7 MB at a million messages).  (A partial index of the messages not routed was
-- tried and left out: PostgreSQL took it for a 1 % status and sorted 10,000 rows, 3 times
-- slower than walking the newest interchanges.)
CREATE INDEX messages_type ON messages (message_type);
