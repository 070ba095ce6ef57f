-- Issue 14: the ops console's sessions, failed logins and audit log.  Kept in PostgreSQL so
-- that every console node sees the same (nodes stay stateless, issue 16).

-- A session: the cookie holds a random 256-bit token, the table only its SHA-256, so a read
-- of this table gives no one a session.  The role is not stored: it is read from the users
-- file on every request, so a user demoted or removed loses the rights at once.
CREATE TABLE console_sessions (
    id bigserial PRIMARY KEY,
    token_sha256 bytea NOT NULL UNIQUE,
    user_name text NOT NULL,
    -- OWASP CSRF cheat sheet: a synchronizer token per session, in every form.
    csrf_token text NOT NULL,
    client text,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX console_sessions_by_user ON console_sessions (lower(user_name));

-- Failed logins, counted per user name and per client address over a window (login
-- throttling, OWASP Authentication Cheat Sheet), on every node alike.
CREATE TABLE console_login_failures (
    id bigserial PRIMARY KEY,
    user_name text NOT NULL,
    client text NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX console_login_failures_by_user ON console_login_failures (lower(user_name), at);
CREATE INDEX console_login_failures_by_client ON console_login_failures (client, at);

-- Who did what, written in the same transaction as the change it records.
CREATE TABLE console_audit (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    user_name text NOT NULL,
    role text,
    action text NOT NULL,
    target text,
    detail jsonb NOT NULL DEFAULT '{}',
    client text
);
