-- rostersync schema v3 (SQLite): the console. Accounts that sign in to it (argon2id PHC
-- hashes), their sessions (the cookie's id is stored only as a SHA-256 hash), API tokens
-- (stored only as SHA-256 hashes) and the locks that keep two runs of one source apart.

CREATE TABLE console_accounts (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    password_set_at TEXT NOT NULL
) STRICT;

CREATE TABLE console_sessions (
    id_hash     TEXT PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES console_accounts (id),
    csrf        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    last_seen   TEXT NOT NULL,
    expires_at  TEXT NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX console_sessions_account ON console_sessions (account_id);

CREATE TABLE api_tokens (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    scope      TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_used  TEXT,
    revoked_at TEXT
) STRICT;

-- One row per held lock (`source:NAME`, `scheduler`): who holds it. A row whose process is
-- gone is taken over (one machine per SQLite file, so the pid says it).
CREATE TABLE run_locks (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    acquired_at TEXT NOT NULL
) STRICT, WITHOUT ROWID;
