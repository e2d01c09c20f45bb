-- migrate:up
CREATE TABLE consultations (
    id                  uuid PRIMARY KEY,
    -- Short human number used in receipt numbers ("K7-00042").
    number              integer GENERATED ALWAYS AS IDENTITY UNIQUE,
    title               text        NOT NULL,
    description         text        NOT NULL,
    kind                text        NOT NULL CHECK (kind IN ('strategy', 'general')),
    opens_at            timestamptz NOT NULL,
    closes_at           timestamptz NOT NULL,
    themes              text[]      NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    -- Set when the opening/closing event was staged in the outbox (scheduler state).
    opened_announced_at timestamptz,
    closed_announced_at timestamptz,
    last_receipt_seq    integer     NOT NULL DEFAULT 0,
    CHECK (closes_at > opens_at)
);

CREATE TABLE submissions (
    id                     uuid PRIMARY KEY,
    consultation_id        uuid        NOT NULL REFERENCES consultations (id),
    receipt_seq            integer     NOT NULL,
    receipt_number         text        NOT NULL,
    submitter_kind         text        NOT NULL,
    submitter_name         text,
    submitter_organisation text,
    submitter_email        text,
    submitter_phone        text,
    locality               text,
    theme                  text,
    title                  text        NOT NULL,
    body                   text        NOT NULL,
    channel                text        NOT NULL,
    language               text        NOT NULL,
    consent_processing     boolean     NOT NULL CHECK (consent_processing),
    consent_contact        boolean     NOT NULL,
    received_at            timestamptz NOT NULL,
    received_on            date,
    entered_by             text,
    digest                 text        NOT NULL,
    UNIQUE (consultation_id, receipt_seq),
    UNIQUE (consultation_id, receipt_number)
);
CREATE INDEX submissions_by_consultation ON submissions (consultation_id, received_at, id);

-- Stored answers to requests carrying an Idempotency-Key (also Kafka commands' event ids).
CREATE TABLE idempotency_keys (
    scope        text        NOT NULL,
    key          text        NOT NULL,
    request_hash text        NOT NULL,
    status_code  integer,
    response     jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);

-- migrate:down
DROP TABLE idempotency_keys;
DROP TABLE submissions;
DROP TABLE consultations;
