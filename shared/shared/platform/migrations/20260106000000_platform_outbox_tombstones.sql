-- migrate:up
-- An outbox row without payload is a tombstone: the relay publishes a null value under
-- its key, deleting the key from a compacted topic (erased person keys).
ALTER TABLE outbox ALTER COLUMN payload DROP NOT NULL;

-- migrate:down
DELETE FROM outbox WHERE payload IS NULL;
ALTER TABLE outbox ALTER COLUMN payload SET NOT NULL;
