-- migrate:up
-- State of the scheduled retention jobs (shared/platform/retention.py): one row per job,
-- locked FOR UPDATE SKIP LOCKED by the replica that runs it, so replicas never run a job
-- twice at once and a restarted service knows when it last ran.
CREATE TABLE retention_runs (
    job         text        PRIMARY KEY,
    last_run_at timestamptz,
    last_purged integer     NOT NULL DEFAULT 0
);

-- migrate:down
DROP TABLE retention_runs;
