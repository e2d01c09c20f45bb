-- migrate:up
-- Articles: written by the office or generated from consultation events. A scheduled one
-- is published by the scheduler when publish_at comes (state kept here, so a restarted
-- service catches up); readers see it as public from publish_at on regardless.
CREATE TABLE articles (
    id               uuid        PRIMARY KEY,
    slug             text        NOT NULL UNIQUE,
    title            text        NOT NULL,
    lead             text        NOT NULL,
    body_markdown    text        NOT NULL,
    body_html        text        NOT NULL,
    tags             text[]      NOT NULL DEFAULT '{}',
    state            text        NOT NULL
                                 CHECK (state IN ('draft', 'scheduled', 'published', 'withdrawn')),
    publish_at       timestamptz,
    published_at     timestamptz,
    withdrawn_at     timestamptz,
    origin           text        NOT NULL CHECK (origin IN ('manual', 'consultation')),
    consultation_id  uuid,
    title_en         text,
    lead_en          text,
    body_en_markdown text,
    body_en_html     text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    CONSTRAINT articles_scheduled_have_a_time CHECK (state <> 'scheduled' OR publish_at IS NOT NULL),
    CONSTRAINT articles_published_have_a_time CHECK (state <> 'published' OR published_at IS NOT NULL)
);
-- The public list, newest first: when readers could first see the article.
CREATE INDEX articles_public ON articles ((coalesce(published_at, publish_at)) DESC, id DESC)
    WHERE state IN ('published', 'scheduled');
CREATE INDEX articles_tags ON articles USING gin (tags);
-- The scheduler's queue.
CREATE INDEX articles_scheduled ON articles (publish_at) WHERE state = 'scheduled';

-- Alert messages (CAP Alert / Update / Cancel). A message is never edited: a change is a
-- new message referencing the ones it replaces, whose status becomes superseded or
-- cancelled; expired is stored once the IMGW poller sees the time has run out.
CREATE TABLE alerts (
    id             uuid        PRIMARY KEY,
    source         text        NOT NULL CHECK (source IN ('manual', 'imgw_meteo', 'imgw_hydro')),
    -- IMGW meteo id, or hydro number/publication/office; NULL for manual alerts.
    source_key     text,
    category       text        NOT NULL,
    event          text        NOT NULL,
    level          smallint    NOT NULL CHECK (level BETWEEN 1 AND 3),
    probability    smallint    CHECK (probability BETWEEN 0 AND 100),
    headline       text        NOT NULL,
    description    text        NOT NULL,
    instruction    text,
    areas          jsonb       NOT NULL,
    onset          timestamptz NOT NULL,
    expires        timestamptz,
    sent           timestamptz NOT NULL,
    message_type   text        NOT NULL CHECK (message_type IN ('Alert', 'Update', 'Cancel')),
    message_refs   jsonb       NOT NULL DEFAULT '[]'::jsonb,
    status         text        NOT NULL
                               CHECK (status IN ('active', 'superseded', 'cancelled', 'expired')),
    issuer         text,
    event_en       text,
    headline_en    text,
    description_en text,
    instruction_en text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT alerts_imgw_have_a_key CHECK ((source = 'manual') = (source_key IS NULL))
);
-- One warning of the IMGW feed is one alert: at most one active message per feed key,
-- whatever replicas and retries do (the message ids themselves are deterministic too).
CREATE UNIQUE INDEX alerts_one_active_per_imgw_key ON alerts (source, source_key)
    WHERE status = 'active' AND message_type <> 'Cancel' AND source_key IS NOT NULL;
CREATE INDEX alerts_active ON alerts (sent DESC) WHERE status = 'active';

-- migrate:down
DROP TABLE alerts;
DROP TABLE articles;
