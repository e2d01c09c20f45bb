-- migrate:up
-- A volunteer erased on request (RODO art. 17) keeps an anonymous row (assessments and
-- group history refer to it) but no name, address or phone.
ALTER TABLE volunteers ADD COLUMN erased_at timestamptz;
ALTER TABLE volunteers DROP CONSTRAINT volunteers_contact;
ALTER TABLE volunteers ADD CONSTRAINT volunteers_contact
    CHECK (email IS NOT NULL OR phone IS NOT NULL OR erased_at IS NOT NULL);

-- migrate:down
ALTER TABLE volunteers DROP CONSTRAINT volunteers_contact;
ALTER TABLE volunteers ADD CONSTRAINT volunteers_contact CHECK (email IS NOT NULL OR phone IS NOT NULL);
ALTER TABLE volunteers DROP COLUMN erased_at;
