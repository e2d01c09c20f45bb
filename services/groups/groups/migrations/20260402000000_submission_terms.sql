-- migrate:up
-- An inverted index of the submissions' term weights (unit-length lemma counts), so an
-- arriving submission finds its possible duplicates from the postings of its own terms
-- instead of re-reading every text of its theme.
CREATE TABLE submission_terms (
    submission_id   uuid             NOT NULL REFERENCES submissions (id) ON DELETE CASCADE,
    consultation_id uuid             NOT NULL,
    term            text             NOT NULL,
    weight          double precision NOT NULL,
    PRIMARY KEY (submission_id, term)
);
CREATE INDEX submission_terms_postings ON submission_terms (consultation_id, term);

-- migrate:down
DROP TABLE submission_terms;
