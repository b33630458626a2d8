-- rostersync schema v18 (SQLite): the skips a source's last applied complete full pull
-- listed (people its import settings skip: a role not imported, no role the standard
-- defines, inactive), as the sorted 8-byte little-endian keys of
-- `rostersync_core::plan::ListedSkips`, so the next full pulls count the same skips
-- without writing a run item for each again (two million guardians a day in a district
-- that does not import them). A cache of what earlier runs listed: a backup leaves it out,
-- and without it a run lists every skip once again.
CREATE TABLE listed_skips (
    source    TEXT PRIMARY KEY,
    skip_keys BLOB NOT NULL
) STRICT, WITHOUT ROWID;
