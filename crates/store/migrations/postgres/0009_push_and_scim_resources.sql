-- rostersync schema v9 (PostgreSQL): SCIM targets, what each holds, and SCIM connections'
-- resources.
--
-- `targets`: one row per `[[target]]` of the settings (its settings as JSON, never the
-- token; the encrypted bearer token in `secret`).
--
-- `push_state`: per target and account, what the target was last sent and answered:
-- `remote_id` the target's id for the user (NULL until a push created or adopted it),
-- `hash` a hash of the attributes last pushed (a push compares it first, so a no-change
-- push reads no JSON), `pushed` those attributes (JSON), `active` whether the target holds
-- the user active, `error` the last failure (the account is tried again next push).
--
-- `push_groups`: per target and group (a class or school group the target is sent), the
-- target's id for it, the hash of its name and members as last pushed, and those members
-- (the target's ids of the users, JSON).
--
-- `scim_resources`: per SCIM connection and identity (the connection's link key), the User
-- resource as the identity provider last wrote it, which `/scim/v2` answers it with.
CREATE TABLE targets (
    name       TEXT COLLATE "C" PRIMARY KEY,
    position   BIGINT NOT NULL,
    settings   TEXT NOT NULL,
    secret     BYTEA,
    updated_at TEXT NOT NULL
);

CREATE TABLE push_state (
    target    TEXT COLLATE "C" NOT NULL,
    user_id   BIGINT NOT NULL REFERENCES users (id),
    remote_id TEXT,
    hash      BIGINT NOT NULL,
    pushed    TEXT NOT NULL,
    active    BOOLEAN NOT NULL,
    pushed_at TEXT NOT NULL,
    error     TEXT,
    PRIMARY KEY (target, user_id)
);

CREATE TABLE push_groups (
    target    TEXT COLLATE "C" NOT NULL,
    group_id  BIGINT NOT NULL,
    remote_id TEXT,
    hash      BIGINT NOT NULL,
    members   TEXT NOT NULL,
    pushed_at TEXT NOT NULL,
    error     TEXT,
    PRIMARY KEY (target, group_id)
);

CREATE TABLE scim_resources (
    source     TEXT COLLATE "C" NOT NULL,
    sourced_id TEXT COLLATE "C" NOT NULL,
    resource   TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (source, sourced_id)
);
