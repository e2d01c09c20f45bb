-- migrate:up
-- Residents who asked for alerts, news or consultation announcements by email. Double
-- opt-in: a subscription is `pending` until the link in its confirmation email is used;
-- the requested_* columns hold what the next confirmation will apply (a confirmed
-- subscriber asking for other topics keeps the old ones until then).
CREATE TABLE subscriptions (
    id                  uuid        PRIMARY KEY,
    email               text        NOT NULL,
    status              text        NOT NULL
                                    CHECK (status IN ('pending', 'confirmed', 'unsubscribed')),
    topics              text[]      NOT NULL,
    min_level           smallint    NOT NULL CHECK (min_level BETWEEN 1 AND 3),
    locale              text        NOT NULL CHECK (locale IN ('pl', 'en')),
    requested_topics    text[],
    requested_min_level smallint    CHECK (requested_min_level BETWEEN 1 AND 3),
    requested_locale    text        CHECK (requested_locale IN ('pl', 'en')),
    -- The secret of the manage and unsubscribe links every email to the subscriber carries
    -- (long-lived and reusable, unlike the single-use confirmation tokens).
    link_token          text        NOT NULL UNIQUE,
    confirmation_sent_at timestamptz,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    confirmed_at        timestamptz,
    unsubscribed_at     timestamptz,
    CONSTRAINT subscriptions_topics_known CHECK (
        topics <@ ARRAY['alerts', 'news', 'consultations']::text[]
        AND (requested_topics IS NULL OR requested_topics <@ ARRAY['alerts', 'news', 'consultations']::text[])
    )
);
-- One subscription per address, however it is capitalised.
CREATE UNIQUE INDEX subscriptions_one_per_email ON subscriptions (lower(email));
-- The fan-out's audience: confirmed subscribers of a topic.
CREATE INDEX subscriptions_audience ON subscriptions USING gin (topics) WHERE status = 'confirmed';

-- migrate:down
DROP TABLE subscriptions;
