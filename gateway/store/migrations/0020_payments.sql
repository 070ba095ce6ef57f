-- Issue 15 item 3: duties paid through a bank agency (docs/payments.md).  One instruction per
-- agency answer that assessed duties; its id is the AMQP message id of its delivery to the
-- bank (outbox.dispatch_key), which the bank's PaymentConfirmation names as correlation_id.
-- state: 'instructed' until the bank confirms it paid ('paid'), or 'refused' by the bank (it
-- may still pay later).  A confirmation of other amounts leaves it as it was (an alarm).
CREATE TABLE payment_instructions (
    id              text        PRIMARY KEY,
    message_id      bigint      NOT NULL REFERENCES messages (id),
    answer_row      bigint      NOT NULL UNIQUE REFERENCES agency_answers (id),
    assessed_by     text        NOT NULL,
    bank            text        NOT NULL,
    amounts         jsonb       NOT NULL,
    state           text        NOT NULL DEFAULT 'instructed'
                                CHECK (state IN ('instructed', 'paid', 'refused')),
    bank_reference  text,
    paid_at         timestamptz,
    instructed_at   timestamptz NOT NULL DEFAULT now(),
    confirmed_at    timestamptz
);
CREATE INDEX payment_instructions_message ON payment_instructions (message_id);
