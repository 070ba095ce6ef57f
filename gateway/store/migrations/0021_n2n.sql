-- Issue 15 item 4: certificates of origin exchanged with foreign single windows (docs/n2n.md).

-- Certificates approved here and sent to the single window of their destination country,
-- with their delivery status (after the ePhyto hub's).  One row per certificate message; a
-- resend points it at a new outbox row.
CREATE TABLE n2n_sent (
    message_id         bigint      PRIMARY KEY REFERENCES messages (id),
    interchange_id     bigint      NOT NULL REFERENCES interchanges (id),
    certificate_number text        NOT NULL,
    country            text,
    partner_id         text,
    outbox_id          bigint      REFERENCES outbox (id),
    status             text        NOT NULL CHECK (status IN ('pending', 'delivered',
                           'delivered_with_warnings', 'not_readable', 'failed')),
    attempts           integer     NOT NULL DEFAULT 0,
    last_error         text,
    disposition        text,
    as2_message_id     text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX n2n_sent_number ON n2n_sent (certificate_number);
CREATE UNIQUE INDEX n2n_sent_outbox ON n2n_sent (outbox_id);

-- Certificates received from foreign single windows (validated, routed to customs).
CREATE TABLE n2n_received (
    message_id         bigint      PRIMARY KEY REFERENCES messages (id),
    interchange_id     bigint      NOT NULL REFERENCES interchanges (id),
    certificate_number text        NOT NULL,
    country            text        NOT NULL,
    partner_id         text        NOT NULL,
    received_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX n2n_received_number ON n2n_received (certificate_number);

-- Goods items of declarations citing a certificate of origin (UNTDID 1001 861), and the
-- received certificate each is linked to, whichever came first.
CREATE TABLE n2n_citations (
    message_id         bigint      NOT NULL REFERENCES messages (id),
    interchange_id     bigint      NOT NULL REFERENCES interchanges (id),
    certificate_number text        NOT NULL,
    linked_to          bigint      REFERENCES n2n_received (message_id),
    linked_at          timestamptz,
    PRIMARY KEY (message_id, certificate_number)
);
CREATE INDEX n2n_citations_waiting ON n2n_citations (certificate_number)
    WHERE linked_to IS NULL;
