-- Issue 14, part 3: routing changes proposed in the console by one admin and approved or
-- rejected by another (maker-checker) before routing.yaml is written and reloaded.
CREATE TABLE routing_proposals (
    id          bigserial   PRIMARY KEY,
    -- The whole routing.yaml text proposed.
    body        text        NOT NULL,
    -- The SHA-256 of routing.yaml as it was when the proposal was made: the file is written
    -- on approval only if it still has that content (else the proposal is superseded).
    base_sha256 text        NOT NULL,
    -- That file's text, for the diff shown to the approver.
    base_body   text        NOT NULL,
    proposer    text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    state       text        NOT NULL DEFAULT 'proposed',
    decider     text,
    decided_at  timestamptz,
    -- Why it was superseded or rejected, in words.
    note        text,
    -- The replay over stored traffic shown when it was proposed: its days and its result.
    days        integer     NOT NULL,
    replay      jsonb       NOT NULL,
    -- The routing version its approval put in force.
    routing_version bigint  REFERENCES routing_versions (id),
    CONSTRAINT routing_proposals_state CHECK (
        state IN ('proposed', 'approved', 'rejected', 'applied', 'superseded')),
    -- Maker-checker, held by the database too: nobody approves their own proposal (they may
    -- withdraw it: reject it).  Superseding is the gateway's, decided by nobody.
    CONSTRAINT routing_proposals_checker CHECK (
        state NOT IN ('approved', 'applied') OR lower(decider) <> lower(proposer)),
    CONSTRAINT routing_proposals_decided CHECK ((state = 'proposed') = (decided_at IS NULL))
);
CREATE INDEX routing_proposals_open ON routing_proposals (id) WHERE state = 'proposed';

-- Which proposal a version came from (NULL: routing.yaml was edited directly).
ALTER TABLE routing_versions ADD COLUMN proposal_id bigint REFERENCES routing_proposals (id);
