-- migrate:up
-- One message to many subscribers: the rendered subject and bodies are stored once here;
-- each delivery references them and keeps only its own substitutions (its unsubscribe and
-- manage links), filled in when it is sent.
CREATE TABLE mail_contents (
    id         uuid        PRIMARY KEY,
    language   text        NOT NULL,
    subject    text        NOT NULL,
    text_body  text        NOT NULL,
    html_body  text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE deliveries
    -- 0 urgent (alerts), 1 normal (receipts, confirmation links), 2 bulk (announcements):
    -- the dispatcher sends by priority, then by age.
    ADD COLUMN priority        smallint NOT NULL DEFAULT 1 CHECK (priority BETWEEN 0 AND 2),
    ADD COLUMN subscription_id uuid REFERENCES subscriptions (id),
    -- What the email is about (e.g. the alert message id): one per subscriber and subject.
    ADD COLUMN subject_key     text,
    ADD COLUMN content_id      uuid REFERENCES mail_contents (id),
    ADD COLUMN substitutions   jsonb,
    ADD COLUMN list_unsubscribe text,
    ALTER COLUMN subject   DROP NOT NULL,
    ALTER COLUMN text_body DROP NOT NULL,
    ALTER COLUMN html_body DROP NOT NULL,
    ADD CONSTRAINT deliveries_own_or_shared_content CHECK (
        (content_id IS NULL) = (subject IS NOT NULL AND text_body IS NOT NULL AND html_body IS NOT NULL)
    ),
    -- A fan-out queues many deliveries for one event and purpose: one per subscription.
    DROP CONSTRAINT deliveries_one_per_event,
    ADD CONSTRAINT deliveries_one_per_event
        UNIQUE NULLS NOT DISTINCT (source_event_id, purpose, subscription_id);

-- Once per subscriber per alert message (or article), whichever event carried it. Also
-- answers "who received these alert messages" (an Update or Cancel reaches them all).
CREATE UNIQUE INDEX deliveries_once_per_subscriber ON deliveries (purpose, subject_key, subscription_id)
    WHERE subscription_id IS NOT NULL AND subject_key IS NOT NULL;
-- The dispatcher's queue: pending rows, most urgent first, then oldest.
DROP INDEX deliveries_pending;
CREATE INDEX deliveries_pending ON deliveries (priority, created_at) WHERE status = 'pending';

-- migrate:down
DROP INDEX deliveries_pending;
CREATE INDEX deliveries_pending ON deliveries (created_at) WHERE status = 'pending';
DROP INDEX deliveries_once_per_subscriber;
DELETE FROM deliveries WHERE content_id IS NOT NULL;
ALTER TABLE deliveries
    DROP CONSTRAINT deliveries_one_per_event,
    ADD CONSTRAINT deliveries_one_per_event UNIQUE (source_event_id, purpose),
    DROP CONSTRAINT deliveries_own_or_shared_content,
    ALTER COLUMN subject   SET NOT NULL,
    ALTER COLUMN text_body SET NOT NULL,
    ALTER COLUMN html_body SET NOT NULL,
    DROP COLUMN list_unsubscribe,
    DROP COLUMN substitutions,
    DROP COLUMN content_id,
    DROP COLUMN subject_key,
    DROP COLUMN subscription_id,
    DROP COLUMN priority;
DROP TABLE mail_contents;
