-- migrate:up
-- Submitters who consented to be contacted about the outcome (SubmissionReceived with an
-- email and contact_consent): what a decision email needs, nothing more.
CREATE TABLE submitters (
    submission_id      uuid        PRIMARY KEY,
    email              text        NOT NULL,
    language           text        NOT NULL,
    consultation_title text        NOT NULL,
    recorded_at        timestamptz NOT NULL DEFAULT now()
);

-- migrate:down
DROP TABLE submitters;
