-- migrate:up
-- Data-subject requests (RODO art. 15 export, art. 17 erasure) intake owns, and each
-- service's answer. No address is kept: the request names the person by hashes only.
CREATE TABLE privacy_requests (
    id           uuid        PRIMARY KEY,
    kind         text        NOT NULL CHECK (kind IN ('erasure', 'export')),
    subject_kind text        NOT NULL CHECK (subject_kind IN ('email', 'phone')),
    services     text[]      NOT NULL,
    -- Export only: the one-off X25519 private key the answers are sealed to; deleting it
    -- makes every answer on Kafka unreadable (the retention job does).
    private_key  bytea,
    requested_at timestamptz NOT NULL
);
CREATE INDEX privacy_requests_newest ON privacy_requests (requested_at DESC);

CREATE TABLE privacy_replies (
    request_id  uuid        NOT NULL REFERENCES privacy_requests (id) ON DELETE CASCADE,
    service     text        NOT NULL,
    records     integer     NOT NULL,
    sealed      jsonb,
    answered_at timestamptz NOT NULL,
    PRIMARY KEY (request_id, service)
);

-- migrate:down
DROP TABLE privacy_replies;
DROP TABLE privacy_requests;
