-- migrate:up
-- Crypto-shredding (shared/platform/shredding.py): one AES-256-GCM data key per person,
-- found by blind indexes (HMAC-SHA256 under this database's secret of the person hashes
-- of shared/platform/privacy.py), published on the owner's <owner>.person-keys.v1.
-- Erasure deletes the row; every sealed copy of the person's fields is then unreadable.
-- Applied in the databases of the services that own sealed fields (intake, groups: their
-- `MIGRATIONS` name this directory, `PERSON_KEYS_MIGRATIONS`). The version is the one it
-- had as intake's own migration, so intake's databases count it as applied.
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
