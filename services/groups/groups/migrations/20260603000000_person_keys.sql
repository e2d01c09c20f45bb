-- migrate:up
-- Crypto-shredding (shared/platform/shredding.py): one AES-256-GCM data key per person,
-- found by blind indexes (HMAC-SHA256 under this database's secret of the person hashes
-- of shared/platform/privacy.py), published on groups.person-keys.v1. The volunteers'
-- addresses and names on groups.volunteer-messages.v2 are sealed under it. Erasure
-- deletes the row; every sealed copy is then unreadable. The same tables as intake's
-- (each service owns its database, and the shared code reads these names).
CREATE TABLE person_key_secret (
    id     integer PRIMARY KEY CHECK (id = 1),
    secret bytea   NOT NULL
);

CREATE TABLE person_keys (
    key_id      uuid        PRIMARY KEY,
    key         bytea       NOT NULL CHECK (length(key) = 32),
    email_index text        UNIQUE,
    phone_index text        UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (email_index IS NOT NULL OR phone_index IS NOT NULL)
);

-- migrate:down
DROP TABLE person_keys;
DROP TABLE person_key_secret;
