-- migrate:up
-- Rate-limit counters shared by every replica of a service: one row per client bucket
-- (a pseudonym of the address) and minute; rows older than an hour are deleted.
CREATE TABLE rate_limits (
    bucket       text        NOT NULL,
    window_start timestamptz NOT NULL,
    hits         integer     NOT NULL,
    PRIMARY KEY (bucket, window_start)
);

-- migrate:down
DROP TABLE rate_limits;
