-- migrate:up
-- A replayed request gets the stored submission's receipt, shaped anew by the HTTP layer:
-- the key points at the submission instead of keeping an HTTP answer of its own.
ALTER TABLE idempotency_keys
    ADD COLUMN submission_id uuid REFERENCES submissions (id),
    DROP COLUMN status_code,
    DROP COLUMN response;

-- migrate:down
ALTER TABLE idempotency_keys
    DROP COLUMN submission_id,
    ADD COLUMN status_code integer,
    ADD COLUMN response jsonb;
