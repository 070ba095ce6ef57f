-- Interchanges as received: the raw bytes are committed before the transport says "received"
-- (DESIGN rule 1).  Processing state lives beside them so a restart resumes from here.
CREATE TABLE interchanges (
    id              bigserial PRIMARY KEY,
    partner_id      text        NOT NULL,
    transport       text        NOT NULL,
    file_name       text        NOT NULL,
    raw             bytea       NOT NULL,
    sha256          bytea       NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    status          text        NOT NULL DEFAULT 'received',
    sender_id       text,
    recipient_id    text,
    control_ref     text,
    summary         text,
    duplicate_of    bigint REFERENCES interchanges (id),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    processed_at    timestamptz,
    CONSTRAINT interchanges_status CHECK (status IN
        ('received', 'accepted', 'partially_accepted', 'rejected', 'duplicate'))
);
CREATE INDEX interchanges_pending ON interchanges (next_attempt_at) WHERE status = 'received';
CREATE INDEX interchanges_content ON interchanges (partner_id, sha256);
CREATE INDEX interchanges_reference ON interchanges (control_ref);

-- Dedup (DESIGN rule 2): one row per (partner, UNB sender, control reference) that was
-- accepted; a later interchange with the same key is a duplicate of the first.
CREATE TABLE interchange_keys (
    partner_id     text   NOT NULL,
    sender_id      text   NOT NULL,
    control_ref    text   NOT NULL,
    interchange_id bigint NOT NULL REFERENCES interchanges (id),
    PRIMARY KEY (partner_id, sender_id, control_ref)
);

CREATE TABLE messages (
    id             bigserial PRIMARY KEY,
    interchange_id bigint  NOT NULL REFERENCES interchanges (id),
    position       integer NOT NULL,
    message_ref    text    NOT NULL,
    message_type   text    NOT NULL,
    release        text    NOT NULL,
    status         text    NOT NULL,
    canonical      jsonb,
    document_ref   text,
    agencies       text[]  NOT NULL DEFAULT '{}',
    rules          text[]  NOT NULL DEFAULT '{}',
    findings       jsonb   NOT NULL DEFAULT '[]',
    UNIQUE (interchange_id, position),
    CONSTRAINT messages_status CHECK (status IN ('routed', 'rejected', 'unroutable'))
);
CREATE INDEX messages_document_ref ON messages (document_ref);

-- The history of every interchange and message: what happened, when, and why.
CREATE TABLE events (
    id             bigserial PRIMARY KEY,
    interchange_id bigint      NOT NULL REFERENCES interchanges (id),
    message_id     bigint REFERENCES messages (id),
    kind           text        NOT NULL,
    detail         jsonb       NOT NULL DEFAULT '{}',
    at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_interchange ON events (interchange_id, id);

CREATE TABLE acknowledgements (
    interchange_id bigint PRIMARY KEY REFERENCES interchanges (id),
    kind           text        NOT NULL,
    file_name      text        NOT NULL,
    body           bytea       NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- Transactional outbox: every publish to an agency queue and every file for a partner's
-- mailbox is a row written in the same transaction as the decision that caused it; relays
-- dispatch rows and mark them, so a crash at any point resumes from here.
CREATE TABLE outbox (
    id              bigserial PRIMARY KEY,
    interchange_id  bigint      NOT NULL REFERENCES interchanges (id),
    message_id      bigint REFERENCES messages (id),
    channel         text        NOT NULL,
    destination     text        NOT NULL,
    dispatch_key    text        NOT NULL UNIQUE,
    body            bytea       NOT NULL,
    properties      jsonb       NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    dispatched_at   timestamptz,
    CONSTRAINT outbox_channel CHECK (channel IN ('amqp', 'mailbox'))
);
CREATE INDEX outbox_pending ON outbox (channel, next_attempt_at) WHERE dispatched_at IS NULL;
