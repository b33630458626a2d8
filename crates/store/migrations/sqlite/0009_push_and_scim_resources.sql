-- rostersync schema v9 (SQLite): SCIM targets, what each holds, and SCIM connections'
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
    name       TEXT PRIMARY KEY,
    position   INTEGER NOT NULL,
    settings   TEXT NOT NULL,
    secret     BLOB,
    updated_at TEXT NOT NULL
) STRICT;

CREATE TABLE push_state (
    target    TEXT NOT NULL,
    user_id   INTEGER NOT NULL REFERENCES users (id),
    remote_id TEXT,
    hash      INTEGER NOT NULL,
    pushed    TEXT NOT NULL,
    active    INTEGER NOT NULL,
    pushed_at TEXT NOT NULL,
    error     TEXT,
    PRIMARY KEY (target, user_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE push_groups (
    target    TEXT NOT NULL,
    group_id  INTEGER NOT NULL,
    remote_id TEXT,
    hash      INTEGER NOT NULL,
    members   TEXT NOT NULL,
    pushed_at TEXT NOT NULL,
    error     TEXT,
    PRIMARY KEY (target, group_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE scim_resources (
    source     TEXT NOT NULL,
    sourced_id TEXT NOT NULL,
    resource   TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (source, sourced_id)
) STRICT, WITHOUT ROWID;
