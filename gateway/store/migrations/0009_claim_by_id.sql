-- Issue 13 (throughput).  The processor takes the oldest waiting submissions by id
-- (interchanges.claim_batch: status 'received', ORDER BY id LIMIT n).  interchanges_pending
-- orders them by next_attempt_at, so each claim read and sorted the whole backlog: 8 ms for a
-- claim of 32 behind 10,000 waiting submissions, a cost per submission that grew with the
-- backlog.  Walking the waiting submissions in id order stops after the first n due ones
-- (1.3 ms there); those in backoff after a failed attempt are few and skipped by the filter.
CREATE INDEX interchanges_waiting ON interchanges (id) WHERE status = 'received';
