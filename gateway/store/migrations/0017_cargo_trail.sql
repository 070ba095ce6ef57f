-- Issue 15 item 5: the cargo trail and port alarms (docs/port-alarms.md).
--
-- The trail watcher reads stored ContainerEvent and CustomsDeclaration messages in id order;
-- its cursor is kept here, so a restart neither skips nor repeats.  The cursor is a low-water
-- mark: a message id not yet visible (a processor's transaction still open) holds it back
-- for a while, and the rows after it are read again, which the keys below make harmless.
CREATE TABLE cargo_trail_cursor (
    only_row   boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    message_id bigint  NOT NULL DEFAULT 0
);
INSERT INTO cargo_trail_cursor DEFAULT VALUES;

-- One row per container and container event: where it was (node: the location code), what
-- happened, when (never later than the report was received).
CREATE TABLE cargo_trail (
    id          bigserial   PRIMARY KEY,
    container   text        NOT NULL,
    event       text        NOT NULL,
    node        text,
    occurred_at timestamptz NOT NULL,
    message_id  bigint      NOT NULL REFERENCES messages (id),
    UNIQUE (message_id, container)
);
CREATE INDEX cargo_trail_container ON cargo_trail (container, occurred_at);

-- The containers each customs declaration covers (its EQD), from when it was received.
CREATE TABLE cargo_declarations (
    container   text        NOT NULL,
    message_id  bigint      NOT NULL REFERENCES messages (id),
    declared_at timestamptz NOT NULL,
    PRIMARY KEY (container, message_id)
);

-- A clock per visit of a container, per rule: started by a step that opens it, unless the
-- rule has a clock for that container whose visit the step falls in (started at or before it,
-- not ended before it: a repeated report); so the same container number back weeks later
-- gets clocks and alarms of its own.  ended_at: when the visit ended for this rule (overtime:
-- its end step; illegal storage: the container left, gate out or loaded); closed_at: when the
-- clock stopped (in time, covered by a declaration, or its alarm).  Keyed by its start, and
-- never deleted, so a message read again cannot start it twice.
CREATE TABLE port_checks (
    id            bigserial   PRIMARY KEY,
    container     text        NOT NULL,
    rule          text        NOT NULL,
    alarm         text        NOT NULL,
    node          text,
    started_at    timestamptz NOT NULL,
    due_at        timestamptz NOT NULL,
    limit_seconds double precision NOT NULL,
    message_id    bigint      NOT NULL REFERENCES messages (id),
    ended_at      timestamptz,
    closed_at     timestamptz,
    UNIQUE (container, rule, started_at),
    CONSTRAINT port_checks_alarm CHECK (alarm IN ('overtime', 'illegal_storage'))
);
CREATE INDEX port_checks_due ON port_checks (due_at) WHERE closed_at IS NULL;

-- Each alarm once per clock (so once per visit and rule); published on the alarms exchange
-- until confirmed (published_at), acknowledged in the console at most once.
CREATE TABLE port_alarms (
    id              bigserial   PRIMARY KEY,
    check_id        bigint      NOT NULL UNIQUE REFERENCES port_checks (id),
    container       text        NOT NULL,
    rule            text        NOT NULL,
    alarm           text        NOT NULL,
    code            text        NOT NULL,
    node            text,
    started_at      timestamptz NOT NULL,
    ended_at        timestamptz,
    limit_seconds   double precision NOT NULL,
    message_id      bigint      NOT NULL REFERENCES messages (id),
    raised_at       timestamptz NOT NULL DEFAULT now(),
    published_at    timestamptz,
    acknowledged_at timestamptz,
    acknowledged_by text
);
CREATE INDEX port_alarms_unpublished ON port_alarms (id) WHERE published_at IS NULL;
CREATE INDEX port_alarms_open ON port_alarms (id) WHERE acknowledged_at IS NULL;
