-- Issue 16 item 1: partners' outbox files in the database (sftp.mailbox_store: database), so
-- every node serves every partner's outbox/ (docs/sftp.md).  Each file the partner sees is a
-- row: an answer NAME and its detached signature NAME.p7s are two rows, listed, read and
-- deleted each on its own, exactly as the two files on disk.  A partner's delete sets
-- removed_at (a handle still open on it reads on, as on a file unlinked on disk); removed rows
-- are purged after sftp.mailbox_retention_days.
CREATE TABLE mailbox_files (
    id          bigserial   PRIMARY KEY,
    partner_id  text        NOT NULL,
    name        text        NOT NULL CHECK (name <> '' AND octet_length(name) <= 255),
    body        bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    removed_at  timestamptz
);
-- Out of line and uncompressed: substring(body FROM .. FOR ..) reads only the TOAST chunks of
-- the range an SFTP READ asks for, not the whole answer.
ALTER TABLE mailbox_files ALTER COLUMN body SET STORAGE EXTERNAL;
-- One file of a name in a partner's outbox at a time; also what the listing reads.
CREATE UNIQUE INDEX mailbox_files_present ON mailbox_files (partner_id, name)
    WHERE removed_at IS NULL;
CREATE INDEX mailbox_files_removed ON mailbox_files (removed_at) WHERE removed_at IS NOT NULL;
