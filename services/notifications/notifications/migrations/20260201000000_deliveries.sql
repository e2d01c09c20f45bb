-- migrate:up
-- One outgoing email per (source event, purpose). The message is rendered when queued, so
-- what was sent can be shown later even if the templates change; the dispatcher only
-- sends and records the outcome.
CREATE TABLE deliveries (
    id              uuid        PRIMARY KEY,
    source_event_id uuid        NOT NULL,
    correlation_id  text        NOT NULL,
    purpose         text        NOT NULL,
    recipient       text        NOT NULL,
    language        text        NOT NULL,
    subject         text        NOT NULL,
    text_body       text        NOT NULL,
    html_body       text        NOT NULL,
    message_id      text        NOT NULL UNIQUE,
    status          text        NOT NULL DEFAULT 'pending'
                                CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    failed_at       timestamptz,
    -- Second line of defence behind the inbox: even a new consumer name cannot queue twice.
    CONSTRAINT deliveries_one_per_event UNIQUE (source_event_id, purpose),
    CONSTRAINT deliveries_sent_at_iff_sent CHECK ((status = 'sent') = (sent_at IS NOT NULL)),
    CONSTRAINT deliveries_failed_at_iff_failed CHECK ((status = 'failed') = (failed_at IS NOT NULL))
);

-- The dispatcher's queue: only pending rows, oldest first.
CREATE INDEX deliveries_pending ON deliveries (created_at) WHERE status = 'pending';
-- The admin delivery log: newest first, optionally for one recipient.
CREATE INDEX deliveries_newest ON deliveries (created_at DESC, id DESC);
CREATE INDEX deliveries_recipient ON deliveries (lower(recipient), created_at DESC, id DESC);

-- migrate:down
DROP TABLE deliveries;
