-- rostersync schema v2 (SQLite): what the sync policies need. Links remember misses and
-- deactivation; admins' unlinks are refusals; the SIS side of every person (the SIS card),
-- the SIS's orgs, calendars and guardian relationships are kept per source; groups are
-- keyed per source and carry a content hash; rooms are listed; each source has a state row
-- (delta watermark, hashes of what it last wrote).

ALTER TABLE sis_links ADD COLUMN misses INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sis_links ADD COLUMN deactivated_at TEXT;
ALTER TABLE sis_links ADD COLUMN previous_access TEXT;

-- (sourcedId, account) pairs an admin unlinked: the sync never links them again by itself.
CREATE TABLE link_refusals (
    source     TEXT NOT NULL,
    sourced_id TEXT NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    refused_at TEXT NOT NULL,
    actor      TEXT NOT NULL,
    PRIMARY KEY (source, sourced_id, user_id)
) STRICT, WITHOUT ROWID;

-- The hashes are u64 stored as the i64 with the same bits.
CREATE TABLE source_state (
    source             TEXT PRIMARY KEY,
    watermark          TEXT,
    relationships_hash INTEGER,
    calendars_hash     INTEGER
) STRICT, WITHOUT ROWID;

-- A source's groups are keyed `class:<sourcedId>` or `school:<org>:<role>`; groups no source
-- manages have neither source nor key. content_hash is GroupSpec::content_hash, or 0 when a
-- member could not be resolved to an account (so the next sync writes the group again).
ALTER TABLE groups RENAME COLUMN sourced_id TO group_key;
ALTER TABLE groups ADD COLUMN detail TEXT;
ALTER TABLE groups ADD COLUMN content_hash INTEGER;
CREATE UNIQUE INDEX groups_source_key ON groups (source, group_key);

-- Memberships and relationships have no foreign keys: the largest district has ~8 M
-- memberships and ~3 M relationships, and a per-row key check (with PostgreSQL's row lock
-- on the account) costs more than the write itself. Only the apply writes them, from
-- account ids it has just resolved through the links in the same transaction; accounts
-- are never deleted, and a group's members are deleted before the group.
CREATE TABLE group_members_v2 (
    group_id INTEGER NOT NULL,
    user_id  INTEGER NOT NULL,
    PRIMARY KEY (group_id, user_id)
) STRICT, WITHOUT ROWID;
INSERT INTO group_members_v2 (group_id, user_id) SELECT group_id, user_id FROM group_members;
DROP TABLE group_members;
ALTER TABLE group_members_v2 RENAME TO group_members;
CREATE INDEX group_members_user ON group_members (user_id);

CREATE TABLE guardian_relationships (
    source      TEXT NOT NULL,
    guardian_id INTEGER NOT NULL,
    student_id  INTEGER NOT NULL,
    PRIMARY KEY (source, guardian_id, student_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX guardian_relationships_guardian ON guardian_relationships (guardian_id);
CREATE INDEX guardian_relationships_student ON guardian_relationships (student_id);

-- Academic sessions; dates are YYYY-MM-DD.
CREATE TABLE calendars (
    source     TEXT NOT NULL,
    sourced_id TEXT NOT NULL,
    title      TEXT NOT NULL,
    kind       TEXT NOT NULL,
    start_date TEXT,
    end_date   TEXT,
    parent     TEXT,
    PRIMARY KEY (source, sourced_id)
) STRICT, WITHOUT ROWID;

-- The SIS's orgs as last pulled (the location mappings page).
CREATE TABLE sis_orgs (
    source     TEXT NOT NULL,
    sourced_id TEXT NOT NULL,
    name       TEXT NOT NULL,
    is_school  INTEGER NOT NULL,
    PRIMARY KEY (source, sourced_id)
) STRICT, WITHOUT ROWID;

-- The SIS side of each person (the user page's SIS card). classes: a JSON array of class
-- sourcedIds, NULL while unknown.
CREATE TABLE sis_people (
    source      TEXT NOT NULL,
    sourced_id  TEXT NOT NULL,
    role        TEXT,
    status      TEXT NOT NULL,
    enabled     INTEGER NOT NULL,
    username    TEXT NOT NULL,
    email       TEXT,
    given_name  TEXT NOT NULL,
    family_name TEXT NOT NULL,
    identifier  TEXT,
    grade       TEXT,
    primary_org TEXT,
    location    TEXT,
    homeroom    TEXT,
    classes     TEXT,
    modified    TEXT,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (source, sourced_id)
) STRICT;
CREATE INDEX sis_people_org ON sis_people (source, primary_org);

CREATE TABLE rooms (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
) STRICT;
INSERT INTO rooms (name)
    SELECT DISTINCT homeroom FROM users WHERE homeroom IS NOT NULL AND homeroom <> '' ORDER BY homeroom;

-- The SIS card lists an account's run items.
CREATE INDEX run_items_user ON run_items (user_id, run_id);
