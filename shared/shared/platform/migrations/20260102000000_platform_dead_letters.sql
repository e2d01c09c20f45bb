-- migrate:up
-- Dead letters that could not be published to their `<topic>.dlt` (the broker refused even
-- the capped copy): kept here rather than lost, for an operator to inspect and replay.
CREATE TABLE dead_letters (
    id              bigserial   PRIMARY KEY,
    consumer        text        NOT NULL,
    topic           text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    message_key     bytea,
    value           bytea       NOT NULL,
    headers         jsonb       NOT NULL,
    reason          text        NOT NULL,
    attempts        integer     NOT NULL,
    failed_at       timestamptz NOT NULL DEFAULT now()
);

-- migrate:down
DROP TABLE dead_letters;
