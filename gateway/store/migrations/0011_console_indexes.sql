-- Issue 14: the console's traffic search, timelines and clearance report, quick at a million
-- stored interchanges (bench/console.py checks each plan with EXPLAIN and times it).

-- Search, newest first (store.traffic): one index per interchange filter, each ending in the
-- page order (received_at, id), so a page is the first rows of one backward index range scan.
CREATE INDEX interchanges_received ON interchanges (received_at, id);
CREATE INDEX interchanges_partner_received ON interchanges (partner_id, received_at, id);
CREATE INDEX interchanges_status_received ON interchanges (status, received_at, id);
-- Search by UNH message reference (control_ref and document_ref have theirs since 0001).
CREATE INDEX messages_message_ref ON messages (message_ref);

-- Timelines (store.timeline): a submission's resends, its outbox rows (deliveries and
-- answers, waiting or sent) and each agency's answers to a message.  agency_answers also
-- serves answers.answers_taken (message_id, agency), which read the whole table before.
CREATE INDEX interchanges_resends ON interchanges (duplicate_of) WHERE duplicate_of IS NOT NULL;
CREATE INDEX outbox_interchange ON outbox (interchange_id);
CREATE INDEX agency_answers_message ON agency_answers (message_id, agency);
