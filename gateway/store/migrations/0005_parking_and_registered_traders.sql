-- Issue 9 (hostile partners).
-- A submission whose decision fails on our side again and again (a crash, a value the database
-- refuses) is parked after a bounded number of attempts, with an alarm, instead of being taken
-- first for ever; `gateway replay` puts it back.
ALTER TABLE interchanges DROP CONSTRAINT interchanges_status;
ALTER TABLE interchanges ADD CONSTRAINT interchanges_status CHECK (status IN
    ('received', 'accepted', 'partially_accepted', 'rejected', 'duplicate', 'parked'));
CREATE INDEX interchanges_parked ON interchanges (id) WHERE status = 'parked';

-- A trader identification counts as an authorised economic operator only in the messages of
-- the partners it is registered to: a partner only acts as itself (DESIGN rule 5).
ALTER TABLE traders ADD COLUMN partners text[] NOT NULL DEFAULT '{}';
