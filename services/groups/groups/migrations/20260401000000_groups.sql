-- migrate:up
-- Consultations as groups sees them: a projection of intake.consultations.v1.
CREATE TABLE consultations (
    id          uuid        PRIMARY KEY,
    title       text        NOT NULL,
    kind        text        NOT NULL,
    opens_at    timestamptz NOT NULL,
    closes_at   timestamptz NOT NULL,
    themes      text[]      NOT NULL,
    opened      boolean     NOT NULL DEFAULT false,
    closed      boolean     NOT NULL DEFAULT false,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Working groups; a theme's groups are numbered 1, 2, ... and never renumbered.
CREATE TABLE groups (
    id              uuid        PRIMARY KEY,
    consultation_id uuid        NOT NULL,
    theme           text        NOT NULL,
    ordinal         integer     NOT NULL CHECK (ordinal >= 1),
    name_pl         text        NOT NULL,
    name_en         text        NOT NULL,
    lead_id         uuid,
    formed_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (consultation_id, theme, ordinal)
);

-- Volunteers of one consultation. The same person (email or phone) is one row: a second
-- sign-up updates it. A web sign-up of a person already known waits in `pending_update`
-- until the emailed link confirms it, so typing someone's address never rewrites theirs.
CREATE TABLE volunteers (
    id              uuid        PRIMARY KEY,
    consultation_id uuid        NOT NULL,
    name            text        NOT NULL,
    email           text,
    phone           text,
    locality        text,
    themes          text[]      NOT NULL,
    expertise       text,
    locale          text        NOT NULL,
    channel         text        NOT NULL,
    status          text        NOT NULL CHECK (status IN
                        ('awaiting_confirmation', 'confirmed', 'placed', 'waitlisted', 'withdrawn')),
    signed_up_at    timestamptz NOT NULL,
    confirmed_at    timestamptz,
    group_id        uuid        REFERENCES groups (id),
    seat            bigint,
    pending_update  jsonb,
    CONSTRAINT volunteers_contact CHECK (email IS NOT NULL OR phone IS NOT NULL),
    CONSTRAINT volunteers_seat_iff_placed CHECK ((status = 'placed') = (group_id IS NOT NULL))
);
CREATE UNIQUE INDEX volunteers_email ON volunteers (consultation_id, email) WHERE email IS NOT NULL;
CREATE UNIQUE INDEX volunteers_phone ON volunteers (consultation_id, phone) WHERE phone IS NOT NULL;
CREATE INDEX volunteers_group ON volunteers (group_id) WHERE group_id IS NOT NULL;
CREATE INDEX volunteers_by_email ON volunteers (email) WHERE email IS NOT NULL;
CREATE SEQUENCE volunteer_seats;

ALTER TABLE groups ADD CONSTRAINT groups_lead FOREIGN KEY (lead_id) REFERENCES volunteers (id);

-- Member sessions: only the SHA-256 of the bearer token is kept.
CREATE TABLE member_sessions (
    token_hash   text        PRIMARY KEY,
    volunteer_id uuid        NOT NULL REFERENCES volunteers (id),
    expires_at   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX member_sessions_volunteer ON member_sessions (volunteer_id);

-- Submissions as groups sees them (no contact data): a projection of
-- intake.submissions.v1, plus where each stands in its group's review.
CREATE TABLE submissions (
    id              uuid        PRIMARY KEY,
    consultation_id uuid        NOT NULL,
    theme           text,
    theme_source    text        CHECK (theme_source IN ('submitted', 'classifier', 'coordinator')),
    confidence      double precision,
    group_id        uuid        REFERENCES groups (id),
    title           text        NOT NULL,
    body            text        NOT NULL,
    submitter_kind  text        NOT NULL,
    locality        text,
    channel         text        NOT NULL,
    receipt_number  text        NOT NULL,
    received_at     timestamptz NOT NULL,
    state           text        NOT NULL DEFAULT 'new' CHECK (state IN ('new', 'in_review',
                        'needs_clarification', 'assessed', 'recommended', 'merged',
                        'out_of_scope', 'rejected')),
    public_reason   text,
    merged_into     uuid,
    changed_at      timestamptz,
    routed_at       timestamptz
);
CREATE INDEX submissions_consultation ON submissions (consultation_id, theme, received_at);
CREATE INDEX submissions_group ON submissions (group_id, received_at);

-- Who assesses what: two members per submission (fewer while the group is smaller).
CREATE TABLE assignments (
    submission_id uuid        NOT NULL REFERENCES submissions (id),
    member_id     uuid        NOT NULL REFERENCES volunteers (id),
    assigned_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (submission_id, member_id)
);
CREATE INDEX assignments_member ON assignments (member_id);

-- One assessment per member per submission (a second replaces the first).
CREATE TABLE assessments (
    submission_id uuid        NOT NULL REFERENCES submissions (id),
    member_id     uuid        NOT NULL,
    need          smallint    NOT NULL CHECK (need BETWEEN 0 AND 2),
    reach         smallint    NOT NULL CHECK (reach BETWEEN 0 AND 2),
    strategy_fit  smallint    NOT NULL CHECK (strategy_fit BETWEEN 0 AND 2),
    competence    smallint    NOT NULL CHECK (competence BETWEEN 0 AND 2),
    cost_band     text        NOT NULL CHECK (cost_band IN ('low', 'medium', 'high')),
    horizon       text        NOT NULL CHECK (horizon IN ('short', 'medium', 'long')),
    tags          text[]      NOT NULL DEFAULT '{}',
    note          text,
    assessed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (submission_id, member_id)
);

-- Possible duplicates (similar lemmatised text) and what members decided.
CREATE TABLE duplicate_links (
    original_id     uuid             NOT NULL REFERENCES submissions (id),
    duplicate_id    uuid             NOT NULL REFERENCES submissions (id),
    consultation_id uuid             NOT NULL,
    similarity      double precision NOT NULL,
    state           text             NOT NULL DEFAULT 'possible'
                                     CHECK (state IN ('possible', 'confirmed', 'dismissed')),
    decided_by      uuid,
    decided_at      timestamptz,
    PRIMARY KEY (original_id, duplicate_id)
);
CREATE INDEX duplicate_links_duplicate ON duplicate_links (duplicate_id);

-- Recommendations drafted by members, published by the lead or a coordinator.
CREATE TABLE recommendations (
    id              uuid        PRIMARY KEY,
    consultation_id uuid        NOT NULL,
    group_id        uuid        NOT NULL REFERENCES groups (id),
    theme           text        NOT NULL,
    title           text        NOT NULL,
    body            text        NOT NULL,
    submission_ids  uuid[]      NOT NULL,
    trend_snapshot  integer,
    drafted_by      uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    published_at    timestamptz
);
CREATE INDEX recommendations_consultation ON recommendations (consultation_id, published_at);

-- Key trends, kept as numbered snapshots per (consultation, theme).
CREATE TABLE trend_snapshots (
    consultation_id uuid        NOT NULL,
    theme           text        NOT NULL,
    number          integer     NOT NULL,
    computed_at     timestamptz NOT NULL DEFAULT now(),
    submissions     integer     NOT NULL,
    report          jsonb       NOT NULL,
    PRIMARY KEY (consultation_id, theme, number)
);

-- Themes whose trends are out of date; the trends worker recomputes them (woken by NOTIFY).
CREATE TABLE trend_dirty (
    consultation_id uuid        NOT NULL,
    theme           text        NOT NULL,
    dirty_since     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (consultation_id, theme)
);

-- migrate:down
DROP TABLE trend_dirty;
DROP TABLE trend_snapshots;
DROP TABLE recommendations;
DROP TABLE duplicate_links;
DROP TABLE assessments;
DROP TABLE assignments;
DROP TABLE submissions;
DROP TABLE member_sessions;
ALTER TABLE groups DROP CONSTRAINT groups_lead;
DROP SEQUENCE volunteer_seats;
DROP TABLE volunteers;
DROP TABLE groups;
DROP TABLE consultations;
