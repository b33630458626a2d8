-- rostersync schema v8 (PostgreSQL): kept apart.
--
-- An admin's answer to an `identity_taken` review case that the SIS person (source,
-- sourcedId) and the account that has the email or username (user_id) are different
-- people. Later syncs still never write that value to the person's account (no two active
-- accounts share an email or a username), and open no case again for the pair. `case_id` is
-- the case it answered (its reason says which value was in dispute).
CREATE TABLE kept_apart (
    source     TEXT COLLATE "C" NOT NULL,
    sourced_id TEXT COLLATE "C" NOT NULL,
    user_id    BIGINT NOT NULL REFERENCES users (id),
    case_id    BIGINT,
    actor      TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    PRIMARY KEY (source, sourced_id, user_id)
);
CREATE INDEX kept_apart_user ON kept_apart (user_id);
