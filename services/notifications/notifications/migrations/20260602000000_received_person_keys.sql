-- migrate:up
-- Copies of the owners' per-person data keys (intake.person-keys.v1), to open sealed
-- addresses (shared/platform/shredding.py). The owner's tombstone sets `key` to NULL: the
-- row then only says "this person is erased" (a random key id names nobody).
CREATE TABLE received_person_keys (
    key_id      uuid        PRIMARY KEY,
    owner       text        NOT NULL,
    key         bytea       CHECK (key IS NULL OR length(key) = 32),
    received_at timestamptz NOT NULL DEFAULT now(),
    erased_at   timestamptz,
    CHECK ((key IS NULL) = (erased_at IS NOT NULL))
);

-- migrate:down
DROP TABLE received_person_keys;
