-- Issue 15 item 2: trusted traders (C-TPAT / AEO).  The registry says which programme and
-- tier a trader holds, whether the authorisation is active, suspended or revoked, for which
-- period, and which foreign programmes recognise it (mutual-recognition arrangements, ISO 3166
-- alpha-2 codes of the partner countries).  Rows imported from a file written before these
-- columns keep their meaning: an `aeo` row is an active authorisation without end date.
ALTER TABLE traders
    ADD COLUMN programme          text    NOT NULL DEFAULT '',
    ADD COLUMN tier               text    NOT NULL DEFAULT '',
    ADD COLUMN status             text    NOT NULL DEFAULT 'active',
    ADD COLUMN valid_from         date,
    ADD COLUMN valid_until        date,
    ADD COLUMN mutual_recognition text[]  NOT NULL DEFAULT '{}',
    -- A suspension ops made (`gateway traders suspend`): kept apart from the file's status so
    -- that importing the programme's file again does not silently lift it.
    ADD COLUMN suspended_at       timestamptz,
    ADD COLUMN suspended_by       text,
    ADD COLUMN suspension_reason  text,
    ADD CONSTRAINT traders_status CHECK (status IN ('active', 'suspended', 'revoked')),
    ADD CONSTRAINT traders_validity CHECK (valid_until IS NULL OR valid_from IS NULL
                                           OR valid_from <= valid_until);

-- The registry's version, bumped by every statement that changes `traders` (import, suspend,
-- reinstate, or a hand-written UPDATE).  The processor reads it in the statement that claims
-- a batch of submissions, so a submission received after a suspension is decided with it: no
-- extra round trip, and no waiting for the snapshot's periodic refresh.
CREATE TABLE trader_registry_version (
    one     boolean PRIMARY KEY DEFAULT true CHECK (one),
    version bigint  NOT NULL
);
INSERT INTO trader_registry_version VALUES (true, 1);

CREATE FUNCTION trader_registry_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE trader_registry_version SET version = version + 1;
    RETURN NULL;
END $$;

CREATE TRIGGER traders_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON traders
    FOR EACH STATEMENT EXECUTE FUNCTION trader_registry_bump();

-- Who suspended or reinstated which trader, when and why (kept when the trader leaves the
-- registry: an audit of the authority's acts, not a property of the row).
CREATE TABLE trader_events (
    id        bigserial   PRIMARY KEY,
    trader_id text        NOT NULL,
    kind      text        NOT NULL CHECK (kind IN ('suspended', 'reinstated', 'imported')),
    at        timestamptz NOT NULL DEFAULT now(),
    by_whom   text        NOT NULL,
    reason    text        NOT NULL DEFAULT ''
);
CREATE INDEX trader_events_trader ON trader_events (trader_id, id);
