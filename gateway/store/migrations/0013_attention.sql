-- Issue 14: the console's Attention page lists held and unroutable messages newest first
-- (store.attention); without this each look would read every message ever stored.  Parked
-- submissions (interchanges_parked, 0005) and parked outbox rows (outbox_parked, 0006) have
-- theirs already.
CREATE INDEX messages_waiting ON messages (status, id) WHERE status IN ('held', 'unroutable');
-- The Clearance page's alarm list: agencies still awaited past their deadline (overdue.py
-- marks overdue_at once), newest first.
CREATE INDEX agency_states_overdue ON agency_states (overdue_at)
    WHERE state = 'awaiting' AND overdue_at IS NOT NULL;
