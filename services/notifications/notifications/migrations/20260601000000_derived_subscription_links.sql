-- migrate:up
-- Subscribers' manage and unsubscribe links no longer carry a stored secret: their token
-- is derived from the server secret (STRATEGIA_SUBSCRIPTION_LINK_SECRET, HMAC-SHA256 over
-- the subscription id and its link generation) and checked by recomputing it. Nothing
-- per subscription is a usable link any more:
--   * `link_token` (the secret in clear) is dropped; links already emailed keep working
--     through `legacy_link_token_hash`, its SHA-256, until the subscription's links are
--     rotated (an unsubscribed address that subscribes again: `link_generation` + 1);
--   * deliveries no longer keep their finished links (`substitutions`) nor the one-click
--     URL (`list_unsubscribe`): the dispatcher fills them in when it sends. Pending ones
--     get theirs then; sent ones keep the markers of the shared message.
ALTER TABLE subscriptions
    ADD COLUMN link_generation        integer NOT NULL DEFAULT 0 CHECK (link_generation >= 0),
    ADD COLUMN legacy_link_token_hash text;
UPDATE subscriptions
    SET legacy_link_token_hash = encode(sha256(convert_to(link_token, 'UTF8')), 'hex');
ALTER TABLE subscriptions DROP COLUMN link_token;
CREATE UNIQUE INDEX subscriptions_legacy_link ON subscriptions (legacy_link_token_hash)
    WHERE legacy_link_token_hash IS NOT NULL;

ALTER TABLE deliveries
    DROP COLUMN substitutions,
    DROP COLUMN list_unsubscribe;

-- migrate:down
-- New random link tokens: every link emailed since the upgrade stops working.
ALTER TABLE deliveries
    ADD COLUMN substitutions    jsonb,
    ADD COLUMN list_unsubscribe text;
ALTER TABLE subscriptions
    ADD COLUMN link_token text;
UPDATE subscriptions
    SET link_token = replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
ALTER TABLE subscriptions
    ALTER COLUMN link_token SET NOT NULL,
    ADD CONSTRAINT subscriptions_link_token_key UNIQUE (link_token),
    DROP COLUMN legacy_link_token_hash,
    DROP COLUMN link_generation;
