-- Issue 10: agencies answer, the gateway ties each answer to what it answers, renders it in
-- the sender's syntax, signs everything it sends and keeps the non-repudiation record.

-- Whom the answers to an interchange go to, in its syntax: the CONTRL's recipient (the UNB
-- sender, or the partner's first EDIFACT id when the sender was not theirs), kept with the
-- decision so that an agency's answer hours later goes to the same party.
ALTER TABLE interchanges ADD COLUMN reply_id text;
ALTER TABLE interchanges ADD COLUMN reply_qualifier text;
ALTER TABLE interchanges ADD COLUMN syntax_version text;

-- Each agency that acts on a routed message, and where it stands: 'awaiting' until its first
-- decision, then its latest decision; `final` once it has nothing more to say; `overdue_at`
-- once it missed its deadline for a first decision (agencies.yaml answer_within_seconds).
CREATE TABLE agency_states (
    message_id  bigint      NOT NULL REFERENCES messages (id),
    agency      text        NOT NULL,
    state       text        NOT NULL DEFAULT 'awaiting',
    final       boolean     NOT NULL DEFAULT false,
    decided_at  timestamptz,
    overdue_at  timestamptz,
    PRIMARY KEY (message_id, agency)
);
CREATE INDEX agency_states_awaiting ON agency_states (agency)
    WHERE state = 'awaiting' AND overdue_at IS NULL;
-- The overall state of a routed declaration: released only once every agency released it.
ALTER TABLE messages ADD COLUMN clearance text;

-- Every answer taken from an agency, once: a redelivered or republished answer (same agency,
-- same AMQP message id) is recognised and never decided twice (DESIGN rule 2).
CREATE TABLE agency_answers (
    id          bigserial   PRIMARY KEY,
    agency      text        NOT NULL,
    answer_id   text        NOT NULL,
    message_id  bigint      NOT NULL REFERENCES messages (id),
    kind        text        NOT NULL,
    decision    text,
    body        jsonb       NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (agency, answer_id)
);

-- Answers refused: published by no agency, claiming another agency, about a message never
-- delivered to that agency, or not a canonical answer.  Kept for ops; forwarded nowhere.
CREATE TABLE refused_answers (
    id             bigserial   PRIMARY KEY,
    broker_user    text,
    routing_key    text,
    answer_id      text,
    correlation_id text,
    reason         text        NOT NULL,
    body           bytea       NOT NULL,
    interchange_id bigint REFERENCES interchanges (id),
    received_at    timestamptz NOT NULL DEFAULT now()
);

-- The non-repudiation record: each answer the gateway sent, its digest and its signature's,
-- beside the digest of the interchange it answers (interchanges.sha256).
CREATE TABLE signed_answers (
    id                 bigserial   PRIMARY KEY,
    interchange_id     bigint      NOT NULL REFERENCES interchanges (id),
    message_id         bigint REFERENCES messages (id),
    outbox_id          bigint      NOT NULL REFERENCES outbox (id),
    kind               text        NOT NULL,
    file_name          text        NOT NULL,
    answer_sha256      text        NOT NULL,
    signature_sha256   text        NOT NULL,
    certificate_sha256 text        NOT NULL,
    signed_at          timestamptz NOT NULL
);
CREATE INDEX signed_answers_interchange ON signed_answers (interchange_id);
