-- Issue 9 (relays).  An outbox row that fails on its own (not because its broker or its
-- destination is down) is retried with backoff and parked with an alarm after a bounded number
-- of such failures, or at once when it can never go as it is, instead of being retried for
-- ever; `gateway replay` puts it back.  Rows to one destination go out in id order: the relays
-- take waiting rows by (channel, id), and look up the earlier rows of a destination by
-- (channel, destination, id); both only among the rows still waiting, so neither grows with
-- the history of dispatched rows.
ALTER TABLE outbox ADD COLUMN row_failures integer NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN parked_at timestamptz;
CREATE INDEX outbox_next ON outbox (channel, id)
    WHERE dispatched_at IS NULL AND parked_at IS NULL;
CREATE INDEX outbox_waiting ON outbox (channel, destination, id)
    WHERE dispatched_at IS NULL AND parked_at IS NULL;
CREATE INDEX outbox_parked ON outbox (interchange_id) WHERE parked_at IS NOT NULL;
