-- Issue 15 item 1: the licence registry (G2G licence check, docs/licences.md).  Licensing
-- agencies publish licences on the licences exchange; the gateway keeps the latest amendment
-- of each, and what declarations reserved and drew on it.
CREATE TABLE licences (
    number          text        PRIMARY KEY,
    issuing_agency  text        NOT NULL,
    holder          text        NOT NULL,
    licence_kind    text        NOT NULL CHECK (licence_kind IN ('import', 'export')),
    commodity_codes text[]      NOT NULL,
    quantity        numeric     NOT NULL CHECK (quantity > 0),
    unit            text        NOT NULL,
    valid_from      date        NOT NULL,
    valid_until     date        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('active', 'revoked')),
    amendment       integer     NOT NULL CHECK (amendment >= 0),
    -- Reserved: by declarations that passed the check and are not yet released; drawn: by
    -- released ones.  Both change only under the row's lock (FOR UPDATE, licences taken in
    -- number order), so two declarations never both take the last of it.
    reserved        numeric     NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    drawn           numeric     NOT NULL DEFAULT 0 CHECK (drawn >= 0),
    body            jsonb       NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (valid_from <= valid_until)
);

-- What one declaration (a stored message) takes from one licence, and where that stands.
CREATE TABLE licence_draws (
    message_id     bigint      NOT NULL REFERENCES messages (id),
    licence_number text        NOT NULL REFERENCES licences (number),
    quantity       numeric     NOT NULL CHECK (quantity >= 0),
    state          text        NOT NULL CHECK (state IN ('reserved', 'drawn', 'restored')),
    reserved_at    timestamptz NOT NULL DEFAULT now(),
    settled_at     timestamptz,
    PRIMARY KEY (message_id, licence_number)
);
CREATE INDEX licence_draws_by_licence ON licence_draws (licence_number);

-- Licence messages refused (not the issuer's, unreadable, an older amendment changed): kept
-- for ops with the reason; the message itself is dead-lettered, never applied.
CREATE TABLE refused_licences (
    id          bigserial   PRIMARY KEY,
    broker_user text,
    message_id  text,
    reason      text        NOT NULL,
    body        bytea       NOT NULL,
    refused_at  timestamptz NOT NULL DEFAULT now()
);
