-- The users list: grade and homeroom keys, so filters ignore spelling and case (`5` finds
-- `05`, `K` finds `KG`, `room 4` finds `Room 4`); indexes for those filters and for the
-- Name sort; saved views. The keys are computed in Rust (rostersync_core::user_list) and
-- filled for existing accounts by the store right after this script (users.rs,
-- refresh_list_keys), again whenever the rule's version changes.
ALTER TABLE users ADD COLUMN grade_key TEXT;
ALTER TABLE users ADD COLUMN homeroom_lc TEXT;
-- SQLite appends the rowid (the id) to every index: each serves `= key ORDER BY id` and
-- the keyset `(key, id) > (…)` of a sort.
CREATE INDEX users_grade_key ON users (grade_key);
CREATE INDEX users_homeroom_lc ON users (homeroom_lc);
CREATE INDEX users_name_lc ON users (name_lc);

-- A named filter and sort of the users list that anyone can open; admins save and delete.
-- `params` is a JSON object of the list's URL parameters. Names are unique whatever
-- their case.
CREATE TABLE saved_views (
    id       INTEGER PRIMARY KEY,
    name     TEXT NOT NULL,
    name_lc  TEXT NOT NULL UNIQUE,
    params   TEXT NOT NULL,
    saved_by TEXT NOT NULL,
    saved_at TEXT NOT NULL
) STRICT;
