-- Issue 12 (AS2, RFC 4130).

-- Every AS2 message taken in, by its sender and Message-ID, with the MDN it was answered with:
-- a repeated Message-ID (a partner retrying after a lost response) gets that MDN again and
-- routes nothing (DESIGN rule 2).  Only messages whose payload was committed are here: one
-- refused (a bad signature) may be sent again under its Message-ID once the cause is fixed.
CREATE TABLE as2_received (
    partner_id      text        NOT NULL,
    message_id      text        NOT NULL,
    interchange_id  bigint      NOT NULL REFERENCES interchanges (id),
    payload_sha256  bytea       NOT NULL,
    disposition     text        NOT NULL,
    -- The MDN as sent (HTTP headers as [name, value] pairs, and body); null when none was
    -- asked for.
    mdn_headers     jsonb,
    mdn_body        bytea,
    received_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner_id, message_id)
);
CREATE INDEX as2_received_payload ON as2_received (partner_id, payload_sha256);

-- Every AS2 message the gateway sends (answers, by the 'as2' relay) and the MDN that
-- confirmed it: what `gateway track` shows and what an unconfirmed send is alarmed by.
CREATE TABLE as2_sent (
    message_id      text        PRIMARY KEY,
    -- No foreign key: the send is recorded, in a statement of its own, while the relay holds
    -- the outbox row FOR UPDATE, which a key-share check of the reference would wait for.
    outbox_id       bigint      NOT NULL,
    interchange_id  bigint      NOT NULL REFERENCES interchanges (id),
    partner_id      text        NOT NULL,
    mic             text        NOT NULL,
    sent_at         timestamptz NOT NULL DEFAULT now(),
    mdn_at          timestamptz,
    disposition     text,
    mic_matched     boolean,
    mdn_signed      boolean,
    alarmed_at      timestamptz
);
CREATE INDEX as2_sent_unconfirmed ON as2_sent (sent_at) WHERE mdn_at IS NULL;

ALTER TABLE outbox DROP CONSTRAINT outbox_channel;
ALTER TABLE outbox ADD CONSTRAINT outbox_channel CHECK (channel IN ('amqp', 'mailbox', 'as2'));
