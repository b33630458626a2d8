-- rostersync schema v1 (SQLite). Times are RFC 3339 UTC text; booleans INTEGER 0/1.
-- The `meta` table (schema_version, the master-key check) is created before migrations run.

CREATE TABLE locations (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
) STRICT;

CREATE TABLE runs (
    id           INTEGER PRIMARY KEY,
    source       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    triggered_by TEXT NOT NULL,
    status       TEXT NOT NULL,
    complete     INTEGER NOT NULL DEFAULT 0,
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    counts       TEXT NOT NULL DEFAULT '{}',
    error        TEXT
) STRICT;

-- created_by wrote every field whose bit is set in created_fields (FIELD_BITS in users.rs) and
-- has no field_provenance row: first imports write no provenance rows at all.
CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    username       TEXT,
    username_lc    TEXT,
    email          TEXT,
    email_lc       TEXT,
    first_name     TEXT,
    middle_name    TEXT,
    last_name      TEXT,
    preferred_name TEXT,
    name_lc        TEXT,
    user_type      TEXT NOT NULL,
    access         TEXT NOT NULL,
    active         INTEGER NOT NULL,
    grade          TEXT,
    identifier     TEXT,
    phone          TEXT,
    location_id    INTEGER REFERENCES locations (id),
    homeroom       TEXT,
    provider       TEXT,
    merged_into    INTEGER REFERENCES users (id),
    revision       INTEGER NOT NULL,
    created_by     TEXT NOT NULL,
    created_fields INTEGER NOT NULL DEFAULT 0,
    created_run    INTEGER REFERENCES runs (id),
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
) STRICT;
CREATE INDEX users_email_lc ON users (email_lc);
CREATE INDEX users_username_lc ON users (username_lc);
CREATE INDEX users_identifier ON users (identifier);

CREATE TABLE field_provenance (
    user_id    INTEGER NOT NULL REFERENCES users (id),
    field      TEXT NOT NULL,
    writer     TEXT NOT NULL,
    run_id     INTEGER,
    written_at TEXT NOT NULL,
    PRIMARY KEY (user_id, field)
) STRICT, WITHOUT ROWID;

CREATE TABLE sis_links (
    source          TEXT NOT NULL,
    sourced_id      TEXT NOT NULL,
    user_id         INTEGER NOT NULL REFERENCES users (id),
    rule            TEXT NOT NULL,
    record_hash     INTEGER NOT NULL,
    synced_revision INTEGER NOT NULL,
    linked_at       TEXT NOT NULL,
    PRIMARY KEY (source, sourced_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX sis_links_user ON sis_links (user_id);

CREATE TABLE aliases (
    id       INTEGER PRIMARY KEY,
    user_id  INTEGER NOT NULL REFERENCES users (id),
    kind     TEXT NOT NULL,
    value_lc TEXT NOT NULL,
    UNIQUE (kind, value_lc, user_id)
) STRICT;
CREATE INDEX aliases_user ON aliases (user_id);

CREATE TABLE groups (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    source     TEXT,
    sourced_id TEXT,
    created_at TEXT NOT NULL
) STRICT;

CREATE TABLE group_members (
    group_id INTEGER NOT NULL REFERENCES groups (id),
    user_id  INTEGER NOT NULL REFERENCES users (id),
    PRIMARY KEY (group_id, user_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX group_members_user ON group_members (user_id);

CREATE TABLE sources (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    position   INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    settings   TEXT NOT NULL,
    secret     BLOB,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE run_items (
    run_id      INTEGER NOT NULL REFERENCES runs (id),
    sourced_id  TEXT NOT NULL,
    user_id     INTEGER,
    outcome     TEXT NOT NULL,
    reason_code TEXT NOT NULL,
    reason      TEXT NOT NULL,
    reason_json TEXT NOT NULL,
    changes     TEXT NOT NULL,
    PRIMARY KEY (run_id, sourced_id)
) STRICT;
CREATE INDEX run_items_outcome ON run_items (run_id, outcome, sourced_id);

CREATE TABLE revisions (
    id        INTEGER PRIMARY KEY,
    user_id   INTEGER NOT NULL REFERENCES users (id),
    run_id    INTEGER,
    field     TEXT NOT NULL,
    old_value TEXT,
    new_value TEXT,
    writer    TEXT NOT NULL,
    at        TEXT NOT NULL
) STRICT;
CREATE INDEX revisions_user ON revisions (user_id);

CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY,
    at     TEXT NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL
) STRICT;
