-- migrate:up
-- Secrets of emailed links (see shared/platform/one_time_tokens.py): only their SHA-256 is
-- kept; a token is spent once (spent_at) and only before it expires.
CREATE TABLE one_time_tokens (
    token_hash text        PRIMARY KEY,
    purpose    text        NOT NULL,
    subject    text        NOT NULL,
    expires_at timestamptz NOT NULL,
    spent_at   timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX one_time_tokens_by_subject ON one_time_tokens (purpose, subject) WHERE spent_at IS NULL;
-- Expired tokens are useless: a retention job may delete them (they hold no secret).
CREATE INDEX one_time_tokens_expiry ON one_time_tokens (expires_at);

-- migrate:down
DROP TABLE one_time_tokens;
