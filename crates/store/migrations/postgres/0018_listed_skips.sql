-- rostersync schema v18 (PostgreSQL): the skips a source's last applied complete full pull
-- listed (see the SQLite script).
CREATE TABLE listed_skips (
    source    TEXT PRIMARY KEY,
    skip_keys BYTEA NOT NULL
);
