-- Issue 14: the console's Attention page lists parked dispatches newest first, a page at a
-- time by id (store.attention: WHERE parked_at IS NOT NULL AND id < $1 ORDER BY id DESC).
-- outbox_parked (0006) holds the same rows but keyed by interchange_id, for `gateway replay`
-- of one submission: with many rows parked, each page would read and sort all of them.
CREATE INDEX outbox_parked_by_id ON outbox (id) WHERE parked_at IS NOT NULL;
