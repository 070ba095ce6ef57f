-- Every routing table the gateway was given, applied or refused, and which one routed each
-- message (issue: routing tables ops can trust).
CREATE TABLE routing_versions (
    id         bigserial PRIMARY KEY,
    sha256     text        NOT NULL,
    body       text        NOT NULL,
    source     text        NOT NULL,
    status     text        NOT NULL,
    error      text,
    at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT routing_versions_status CHECK (status IN ('applied', 'refused'))
);

ALTER TABLE messages ADD COLUMN routing_version bigint REFERENCES routing_versions (id);
