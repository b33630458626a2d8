-- rostersync schema v11 (SQLite): counts the console reads on every page, kept by
-- triggers instead of aggregated per request (docs/console.md, "Reports at scale").
--
-- `account_counts`: the accounts not merged away, by whether they are active and by the
-- sources that link them (`sources`: their names, distinct, sorted, comma-separated; ''
-- for none; source names are letters, digits, '-' and '_'; joined from an ordered
-- subquery, which SQLite keeps, rather than `group_concat(… ORDER BY …)`, which SQLite
-- before 3.44 (an older `sqlite3` shell) cannot read). Which of those sources are
-- account sources (whose links are sign-in identities) is decided when read, so a source
-- added, removed or changed needs no rewrite. A row whose `accounts` fell to 0 stays.
--
-- Every write to `users` (active, merged_into) or `sis_links` moves the account from its
-- old row to its new one, whoever writes: sync apply, merge, undo, links by hand, SCIM,
-- account syncs, restore. Ids of accounts never change.
-- Derived data: whatever an earlier copy left is dropped; `counts::recount` (store
-- crate) fills both tables right after this script. A write that touches much of the
-- directory drops these triggers, writes, counts everything again and creates them again
-- from their text here, all in its transaction (`counts::paused_if_wide`).
DROP TRIGGER IF EXISTS account_counts_user_insert;
DROP TRIGGER IF EXISTS account_counts_user_delete;
DROP TRIGGER IF EXISTS account_counts_user_update;
DROP TRIGGER IF EXISTS account_counts_link_insert;
DROP TRIGGER IF EXISTS account_counts_link_first;
DROP TRIGGER IF EXISTS account_counts_link_delete;
DROP TRIGGER IF EXISTS account_counts_link_update;
DROP TABLE IF EXISTS account_counts;

CREATE TABLE account_counts (
    sources  TEXT NOT NULL,
    active   INTEGER NOT NULL,
    accounts INTEGER NOT NULL,
    PRIMARY KEY (sources, active)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER account_counts_user_insert AFTER INSERT ON users
WHEN NEW.merged_into IS NULL
BEGIN
    INSERT INTO account_counts (sources, active, accounts)
    VALUES (COALESCE((SELECT group_concat(source, ',')
                      FROM (SELECT DISTINCT l.source FROM sis_links l WHERE l.user_id = NEW.id ORDER BY 1)), ''),
            NEW.active, 1)
    ON CONFLICT (sources, active) DO UPDATE SET accounts = accounts + 1;
END;

CREATE TRIGGER account_counts_user_delete AFTER DELETE ON users
WHEN OLD.merged_into IS NULL
BEGIN
    UPDATE account_counts SET accounts = accounts - 1
    WHERE active = OLD.active
      AND sources = COALESCE((SELECT group_concat(source, ',')
                              FROM (SELECT DISTINCT l.source FROM sis_links l WHERE l.user_id = OLD.id ORDER BY 1)), '');
END;

CREATE TRIGGER account_counts_user_update AFTER UPDATE OF active, merged_into ON users
WHEN OLD.active IS NOT NEW.active OR OLD.merged_into IS NOT NEW.merged_into
BEGIN
    UPDATE account_counts SET accounts = accounts - 1
    WHERE OLD.merged_into IS NULL AND active = OLD.active
      AND sources = COALESCE((SELECT group_concat(source, ',')
                              FROM (SELECT DISTINCT l.source FROM sis_links l WHERE l.user_id = OLD.id ORDER BY 1)), '');
    INSERT INTO account_counts (sources, active, accounts)
    SELECT COALESCE((SELECT group_concat(source, ',')
                     FROM (SELECT DISTINCT l.source FROM sis_links l WHERE l.user_id = NEW.id ORDER BY 1)), ''),
           NEW.active, 1
    WHERE NEW.merged_into IS NULL
    ON CONFLICT (sources, active) DO UPDATE SET accounts = accounts + 1;
END;

-- A link changes its account's row only when it is the account's first (or last) link of
-- its source. The account's row before the write is computed from the links after it.
-- The account's first link of all (every link of a first import) needs no list.
CREATE TRIGGER account_counts_link_first AFTER INSERT ON sis_links
WHEN NOT EXISTS (SELECT 1 FROM sis_links o WHERE o.user_id = NEW.user_id
                   AND NOT (o.source = NEW.source AND o.sourced_id = NEW.sourced_id))
BEGIN
    UPDATE account_counts SET accounts = accounts - 1
    WHERE sources = '' AND active = (SELECT u.active FROM users u
                                     WHERE u.id = NEW.user_id AND u.merged_into IS NULL);
    INSERT INTO account_counts (sources, active, accounts)
    SELECT NEW.source, u.active, 1 FROM users u WHERE u.id = NEW.user_id AND u.merged_into IS NULL
    ON CONFLICT (sources, active) DO UPDATE SET accounts = accounts + 1;
END;

CREATE TRIGGER account_counts_link_insert AFTER INSERT ON sis_links
WHEN NOT EXISTS (SELECT 1 FROM sis_links o WHERE o.user_id = NEW.user_id AND o.source = NEW.source
                   AND o.sourced_id <> NEW.sourced_id)
 AND EXISTS (SELECT 1 FROM sis_links o WHERE o.user_id = NEW.user_id AND o.source <> NEW.source)
BEGIN
    UPDATE account_counts SET accounts = accounts - 1
    WHERE (sources, active) = (
        SELECT COALESCE((SELECT group_concat(source, ',')
                         FROM (SELECT DISTINCT l.source FROM sis_links l
                               WHERE l.user_id = u.id AND l.source <> NEW.source ORDER BY 1)), ''),
               u.active
        FROM users u WHERE u.id = NEW.user_id AND u.merged_into IS NULL);
    INSERT INTO account_counts (sources, active, accounts)
    SELECT COALESCE((SELECT group_concat(source, ',')
                     FROM (SELECT DISTINCT l.source FROM sis_links l WHERE l.user_id = u.id ORDER BY 1)), ''),
           u.active, 1
    FROM users u WHERE u.id = NEW.user_id AND u.merged_into IS NULL
    ON CONFLICT (sources, active) DO UPDATE SET accounts = accounts + 1;
END;

CREATE TRIGGER account_counts_link_delete AFTER DELETE ON sis_links
WHEN NOT EXISTS (SELECT 1 FROM sis_links o WHERE o.user_id = OLD.user_id AND o.source = OLD.source)
BEGIN
    UPDATE account_counts SET accounts = accounts - 1
    WHERE (sources, active) = (
        SELECT COALESCE((SELECT group_concat(source, ',')
                         FROM (SELECT l.source FROM sis_links l WHERE l.user_id = u.id
                               UNION SELECT OLD.source ORDER BY 1)), ''),
               u.active
        FROM users u WHERE u.id = OLD.user_id AND u.merged_into IS NULL);
    INSERT INTO account_counts (sources, active, accounts)
    SELECT COALESCE((SELECT group_concat(source, ',')
                     FROM (SELECT DISTINCT l.source FROM sis_links l WHERE l.user_id = u.id ORDER BY 1)), ''),
           u.active, 1
    FROM users u WHERE u.id = OLD.user_id AND u.merged_into IS NULL
    ON CONFLICT (sources, active) DO UPDATE SET accounts = accounts + 1;
END;

-- A link moved to another account (a merge) or another source: its old account as if the
-- link were deleted, its new one as if it were inserted. Before the write, an account's
-- links were those it has now, less this link as it is now, plus this link as it was.
CREATE TRIGGER account_counts_link_update AFTER UPDATE OF user_id, source ON sis_links
WHEN OLD.user_id IS NOT NEW.user_id OR OLD.source IS NOT NEW.source
BEGIN
    UPDATE account_counts SET accounts = accounts - 1
    WHERE (sources, active) = (
        SELECT COALESCE((SELECT group_concat(source, ',')
                         FROM (SELECT l.source FROM sis_links l
                               WHERE l.user_id = u.id
                                 AND NOT (l.source = NEW.source AND l.sourced_id = NEW.sourced_id)
                               UNION SELECT OLD.source ORDER BY 1)), ''),
               u.active
        FROM users u WHERE u.id = OLD.user_id AND u.merged_into IS NULL);
    INSERT INTO account_counts (sources, active, accounts)
    SELECT COALESCE((SELECT group_concat(source, ',')
                     FROM (SELECT DISTINCT l.source FROM sis_links l WHERE l.user_id = u.id ORDER BY 1)), ''),
           u.active, 1
    FROM users u WHERE u.id = OLD.user_id AND u.merged_into IS NULL
    ON CONFLICT (sources, active) DO UPDATE SET accounts = accounts + 1;
    UPDATE account_counts SET accounts = accounts - 1
    WHERE (sources, active) = (
        SELECT COALESCE((SELECT group_concat(source, ',')
                         FROM (SELECT DISTINCT l.source FROM sis_links l
                               WHERE l.user_id = u.id
                                 AND NOT (l.source = NEW.source AND l.sourced_id = NEW.sourced_id) ORDER BY 1)), ''),
               u.active
        FROM users u WHERE u.id = NEW.user_id AND u.merged_into IS NULL
          AND NEW.user_id IS NOT OLD.user_id);
    INSERT INTO account_counts (sources, active, accounts)
    SELECT COALESCE((SELECT group_concat(source, ',')
                     FROM (SELECT DISTINCT l.source FROM sis_links l WHERE l.user_id = u.id ORDER BY 1)), ''),
           u.active, 1
    FROM users u WHERE u.id = NEW.user_id AND u.merged_into IS NULL
      AND NEW.user_id IS NOT OLD.user_id
    ON CONFLICT (sources, active) DO UPDATE SET accounts = accounts + 1;
END;

-- `location_counts`: per source, the active accounts it links, by the linked person's
-- primary org as last pulled ('' when none or no person), the account's location id (0
-- when none) and who last wrote the location ('' when nobody): its `field_provenance` row
-- (field 'location'), else the account's creator when the creation wrote it (bit 1024 of
-- `created_fields`, FIELD_BITS in users/row.rs). One row per link: an account linked twice
-- by a source counts twice. What the Location Mappings page and its preview show.
--
-- It moves when a link comes, goes or moves; when an account's active flag, location or
-- creation changes; when a location's writer changes; when a person's primary org
-- changes. Keys of `field_provenance` and `sis_people` rows never change.
DROP TRIGGER IF EXISTS location_counts_link_insert;
DROP TRIGGER IF EXISTS location_counts_link_delete;
DROP TRIGGER IF EXISTS location_counts_link_update;
DROP TRIGGER IF EXISTS location_counts_user_insert;
DROP TRIGGER IF EXISTS location_counts_user_delete;
DROP TRIGGER IF EXISTS location_counts_user_update;
DROP TRIGGER IF EXISTS location_counts_writer_insert;
DROP TRIGGER IF EXISTS location_counts_writer_delete;
DROP TRIGGER IF EXISTS location_counts_writer_update;
DROP TRIGGER IF EXISTS location_counts_person_insert;
DROP TRIGGER IF EXISTS location_counts_person_delete;
DROP TRIGGER IF EXISTS location_counts_person_update;
DROP TABLE IF EXISTS location_counts;

CREATE TABLE location_counts (
    source      TEXT NOT NULL,
    org         TEXT NOT NULL,
    location_id INTEGER NOT NULL,
    writer      TEXT NOT NULL,
    accounts    INTEGER NOT NULL,
    PRIMARY KEY (source, org, location_id, writer)
) STRICT, WITHOUT ROWID;

-- A link: its own row in, or out.
CREATE TRIGGER location_counts_link_insert AFTER INSERT ON sis_links
BEGIN
    INSERT INTO location_counts (source, org, location_id, writer, accounts)
    SELECT NEW.source,
           COALESCE((SELECT p.primary_org FROM sis_people p
                     WHERE p.source = NEW.source AND p.sourced_id = NEW.sourced_id), ''),
           COALESCE(u.location_id, 0),
           COALESCE((SELECT fp.writer FROM field_provenance fp WHERE fp.user_id = u.id AND fp.field = 'location'),
                    CASE WHEN (u.created_fields & 1024) <> 0 THEN u.created_by END, ''),
           1
    FROM users u WHERE u.id = NEW.user_id AND u.active = TRUE
    ON CONFLICT (source, org, location_id, writer) DO UPDATE SET accounts = accounts + 1;
END;

CREATE TRIGGER location_counts_link_delete AFTER DELETE ON sis_links
BEGIN
    UPDATE location_counts SET accounts = accounts - 1
    WHERE (source, org, location_id, writer) = (
        SELECT OLD.source,
               COALESCE((SELECT p.primary_org FROM sis_people p
                         WHERE p.source = OLD.source AND p.sourced_id = OLD.sourced_id), ''),
               COALESCE(u.location_id, 0),
               COALESCE((SELECT fp.writer FROM field_provenance fp WHERE fp.user_id = u.id AND fp.field = 'location'),
                        CASE WHEN (u.created_fields & 1024) <> 0 THEN u.created_by END, '')
        FROM users u WHERE u.id = OLD.user_id AND u.active = TRUE);
END;

CREATE TRIGGER location_counts_link_update AFTER UPDATE OF source, sourced_id, user_id ON sis_links
WHEN OLD.source IS NOT NEW.source OR OLD.sourced_id IS NOT NEW.sourced_id OR OLD.user_id IS NOT NEW.user_id
BEGIN
    UPDATE location_counts SET accounts = accounts - 1
    WHERE (source, org, location_id, writer) = (
        SELECT OLD.source,
               COALESCE((SELECT p.primary_org FROM sis_people p
                         WHERE p.source = OLD.source AND p.sourced_id = OLD.sourced_id), ''),
               COALESCE(u.location_id, 0),
               COALESCE((SELECT fp.writer FROM field_provenance fp WHERE fp.user_id = u.id AND fp.field = 'location'),
                        CASE WHEN (u.created_fields & 1024) <> 0 THEN u.created_by END, '')
        FROM users u WHERE u.id = OLD.user_id AND u.active = TRUE);
    INSERT INTO location_counts (source, org, location_id, writer, accounts)
    SELECT NEW.source,
           COALESCE((SELECT p.primary_org FROM sis_people p
                     WHERE p.source = NEW.source AND p.sourced_id = NEW.sourced_id), ''),
           COALESCE(u.location_id, 0),
           COALESCE((SELECT fp.writer FROM field_provenance fp WHERE fp.user_id = u.id AND fp.field = 'location'),
                    CASE WHEN (u.created_fields & 1024) <> 0 THEN u.created_by END, ''),
           1
    FROM users u WHERE u.id = NEW.user_id AND u.active = TRUE
    ON CONFLICT (source, org, location_id, writer) DO UPDATE SET accounts = accounts + 1;
END;

-- An account: each of its links out of the row the old account gave it, into the new one.
CREATE TRIGGER location_counts_user_insert AFTER INSERT ON users
WHEN NEW.active = TRUE AND EXISTS (SELECT 1 FROM sis_links l WHERE l.user_id = NEW.id)
BEGIN
    INSERT INTO location_counts (source, org, location_id, writer, accounts)
    SELECT l.source, COALESCE(p.primary_org, ''), COALESCE(NEW.location_id, 0),
           COALESCE((SELECT fp.writer FROM field_provenance fp WHERE fp.user_id = NEW.id AND fp.field = 'location'),
                    CASE WHEN (NEW.created_fields & 1024) <> 0 THEN NEW.created_by END, ''),
           COUNT(*)
    FROM sis_links l
    LEFT JOIN sis_people p ON p.source = l.source AND p.sourced_id = l.sourced_id
    WHERE l.user_id = NEW.id
    GROUP BY 1, 2, 3, 4
    ON CONFLICT (source, org, location_id, writer) DO UPDATE SET accounts = accounts + excluded.accounts;
END;

CREATE TRIGGER location_counts_user_delete AFTER DELETE ON users
WHEN OLD.active = TRUE
BEGIN
    UPDATE location_counts SET accounts = accounts - x.n
    FROM (SELECT l.source AS source, COALESCE(p.primary_org, '') AS org, COUNT(*) AS n
          FROM sis_links l
          LEFT JOIN sis_people p ON p.source = l.source AND p.sourced_id = l.sourced_id
          WHERE l.user_id = OLD.id GROUP BY 1, 2) x
    WHERE location_counts.source = x.source AND location_counts.org = x.org
      AND location_counts.location_id = COALESCE(OLD.location_id, 0)
      AND location_counts.writer = COALESCE(
          (SELECT fp.writer FROM field_provenance fp WHERE fp.user_id = OLD.id AND fp.field = 'location'),
          CASE WHEN (OLD.created_fields & 1024) <> 0 THEN OLD.created_by END, '');
END;

CREATE TRIGGER location_counts_user_update
AFTER UPDATE OF active, location_id, created_fields, created_by ON users
WHEN OLD.active IS NOT NEW.active OR OLD.location_id IS NOT NEW.location_id
  OR OLD.created_fields IS NOT NEW.created_fields OR OLD.created_by IS NOT NEW.created_by
BEGIN
    UPDATE location_counts SET accounts = accounts - x.n
    FROM (SELECT l.source AS source, COALESCE(p.primary_org, '') AS org, COUNT(*) AS n
          FROM sis_links l
          LEFT JOIN sis_people p ON p.source = l.source AND p.sourced_id = l.sourced_id
          WHERE l.user_id = OLD.id AND OLD.active = TRUE GROUP BY 1, 2) x
    WHERE location_counts.source = x.source AND location_counts.org = x.org
      AND location_counts.location_id = COALESCE(OLD.location_id, 0)
      AND location_counts.writer = COALESCE(
          (SELECT fp.writer FROM field_provenance fp WHERE fp.user_id = OLD.id AND fp.field = 'location'),
          CASE WHEN (OLD.created_fields & 1024) <> 0 THEN OLD.created_by END, '');
    INSERT INTO location_counts (source, org, location_id, writer, accounts)
    SELECT l.source, COALESCE(p.primary_org, ''), COALESCE(NEW.location_id, 0),
           COALESCE((SELECT fp.writer FROM field_provenance fp WHERE fp.user_id = NEW.id AND fp.field = 'location'),
                    CASE WHEN (NEW.created_fields & 1024) <> 0 THEN NEW.created_by END, ''),
           COUNT(*)
    FROM sis_links l
    LEFT JOIN sis_people p ON p.source = l.source AND p.sourced_id = l.sourced_id
    WHERE l.user_id = NEW.id AND NEW.active = TRUE
    GROUP BY 1, 2, 3, 4
    ON CONFLICT (source, org, location_id, writer) DO UPDATE SET accounts = accounts + excluded.accounts;
END;

-- Who wrote an account's location: its links move from the old writer to the new one.
CREATE TRIGGER location_counts_writer_insert AFTER INSERT ON field_provenance
WHEN NEW.field = 'location'
BEGIN
    UPDATE location_counts SET accounts = accounts - x.n
    FROM (SELECT l.source AS source, COALESCE(p.primary_org, '') AS org, COALESCE(u.location_id, 0) AS loc,
                 COALESCE(CASE WHEN (u.created_fields & 1024) <> 0 THEN u.created_by END, '') AS writer,
                 COUNT(*) AS n
          FROM sis_links l JOIN users u ON u.id = l.user_id
          LEFT JOIN sis_people p ON p.source = l.source AND p.sourced_id = l.sourced_id
          WHERE l.user_id = NEW.user_id AND u.active = TRUE GROUP BY 1, 2, 3, 4) x
    WHERE location_counts.source = x.source AND location_counts.org = x.org
      AND location_counts.location_id = x.loc AND location_counts.writer = x.writer;
    INSERT INTO location_counts (source, org, location_id, writer, accounts)
    SELECT l.source, COALESCE(p.primary_org, ''), COALESCE(u.location_id, 0), NEW.writer, COUNT(*)
    FROM sis_links l JOIN users u ON u.id = l.user_id
    LEFT JOIN sis_people p ON p.source = l.source AND p.sourced_id = l.sourced_id
    WHERE l.user_id = NEW.user_id AND u.active = TRUE
    GROUP BY 1, 2, 3, 4
    ON CONFLICT (source, org, location_id, writer) DO UPDATE SET accounts = accounts + excluded.accounts;
END;

CREATE TRIGGER location_counts_writer_delete AFTER DELETE ON field_provenance
WHEN OLD.field = 'location'
BEGIN
    UPDATE location_counts SET accounts = accounts - x.n
    FROM (SELECT l.source AS source, COALESCE(p.primary_org, '') AS org, COALESCE(u.location_id, 0) AS loc,
                 COUNT(*) AS n
          FROM sis_links l JOIN users u ON u.id = l.user_id
          LEFT JOIN sis_people p ON p.source = l.source AND p.sourced_id = l.sourced_id
          WHERE l.user_id = OLD.user_id AND u.active = TRUE GROUP BY 1, 2, 3) x
    WHERE location_counts.source = x.source AND location_counts.org = x.org
      AND location_counts.location_id = x.loc AND location_counts.writer = OLD.writer;
    INSERT INTO location_counts (source, org, location_id, writer, accounts)
    SELECT l.source, COALESCE(p.primary_org, ''), COALESCE(u.location_id, 0),
           COALESCE(CASE WHEN (u.created_fields & 1024) <> 0 THEN u.created_by END, ''), COUNT(*)
    FROM sis_links l JOIN users u ON u.id = l.user_id
    LEFT JOIN sis_people p ON p.source = l.source AND p.sourced_id = l.sourced_id
    WHERE l.user_id = OLD.user_id AND u.active = TRUE
    GROUP BY 1, 2, 3, 4
    ON CONFLICT (source, org, location_id, writer) DO UPDATE SET accounts = accounts + excluded.accounts;
END;

CREATE TRIGGER location_counts_writer_update AFTER UPDATE OF writer ON field_provenance
WHEN NEW.field = 'location' AND OLD.writer IS NOT NEW.writer
BEGIN
    UPDATE location_counts SET accounts = accounts - x.n
    FROM (SELECT l.source AS source, COALESCE(p.primary_org, '') AS org, COALESCE(u.location_id, 0) AS loc,
                 COUNT(*) AS n
          FROM sis_links l JOIN users u ON u.id = l.user_id
          LEFT JOIN sis_people p ON p.source = l.source AND p.sourced_id = l.sourced_id
          WHERE l.user_id = NEW.user_id AND u.active = TRUE GROUP BY 1, 2, 3) x
    WHERE location_counts.source = x.source AND location_counts.org = x.org
      AND location_counts.location_id = x.loc AND location_counts.writer = OLD.writer;
    INSERT INTO location_counts (source, org, location_id, writer, accounts)
    SELECT l.source, COALESCE(p.primary_org, ''), COALESCE(u.location_id, 0), NEW.writer, COUNT(*)
    FROM sis_links l JOIN users u ON u.id = l.user_id
    LEFT JOIN sis_people p ON p.source = l.source AND p.sourced_id = l.sourced_id
    WHERE l.user_id = NEW.user_id AND u.active = TRUE
    GROUP BY 1, 2, 3, 4
    ON CONFLICT (source, org, location_id, writer) DO UPDATE SET accounts = accounts + excluded.accounts;
END;

-- A person's primary org: the link that person has moves from the old org to the new one.
CREATE TRIGGER location_counts_person_insert AFTER INSERT ON sis_people
WHEN NEW.primary_org IS NOT NULL AND NEW.primary_org <> ''
 AND EXISTS (SELECT 1 FROM sis_links l WHERE l.source = NEW.source AND l.sourced_id = NEW.sourced_id)
BEGIN
    UPDATE location_counts SET accounts = accounts - 1
    WHERE (source, org, location_id, writer) = (
        SELECT l.source, '', COALESCE(u.location_id, 0),
               COALESCE((SELECT fp.writer FROM field_provenance fp WHERE fp.user_id = u.id AND fp.field = 'location'),
                        CASE WHEN (u.created_fields & 1024) <> 0 THEN u.created_by END, '')
        FROM sis_links l JOIN users u ON u.id = l.user_id
        WHERE l.source = NEW.source AND l.sourced_id = NEW.sourced_id AND u.active = TRUE);
    INSERT INTO location_counts (source, org, location_id, writer, accounts)
    SELECT l.source, NEW.primary_org, COALESCE(u.location_id, 0),
           COALESCE((SELECT fp.writer FROM field_provenance fp WHERE fp.user_id = u.id AND fp.field = 'location'),
                    CASE WHEN (u.created_fields & 1024) <> 0 THEN u.created_by END, ''),
           1
    FROM sis_links l JOIN users u ON u.id = l.user_id
    WHERE l.source = NEW.source AND l.sourced_id = NEW.sourced_id AND u.active = TRUE
    ON CONFLICT (source, org, location_id, writer) DO UPDATE SET accounts = accounts + 1;
END;

CREATE TRIGGER location_counts_person_delete AFTER DELETE ON sis_people
WHEN OLD.primary_org IS NOT NULL AND OLD.primary_org <> ''
 AND EXISTS (SELECT 1 FROM sis_links l WHERE l.source = OLD.source AND l.sourced_id = OLD.sourced_id)
BEGIN
    UPDATE location_counts SET accounts = accounts - 1
    WHERE (source, org, location_id, writer) = (
        SELECT l.source, OLD.primary_org, COALESCE(u.location_id, 0),
               COALESCE((SELECT fp.writer FROM field_provenance fp WHERE fp.user_id = u.id AND fp.field = 'location'),
                        CASE WHEN (u.created_fields & 1024) <> 0 THEN u.created_by END, '')
        FROM sis_links l JOIN users u ON u.id = l.user_id
        WHERE l.source = OLD.source AND l.sourced_id = OLD.sourced_id AND u.active = TRUE);
    INSERT INTO location_counts (source, org, location_id, writer, accounts)
    SELECT l.source, '', COALESCE(u.location_id, 0),
           COALESCE((SELECT fp.writer FROM field_provenance fp WHERE fp.user_id = u.id AND fp.field = 'location'),
                    CASE WHEN (u.created_fields & 1024) <> 0 THEN u.created_by END, ''),
           1
    FROM sis_links l JOIN users u ON u.id = l.user_id
    WHERE l.source = OLD.source AND l.sourced_id = OLD.sourced_id AND u.active = TRUE
    ON CONFLICT (source, org, location_id, writer) DO UPDATE SET accounts = accounts + 1;
END;

CREATE TRIGGER location_counts_person_update AFTER UPDATE OF primary_org ON sis_people
WHEN COALESCE(OLD.primary_org, '') <> COALESCE(NEW.primary_org, '')
 AND EXISTS (SELECT 1 FROM sis_links l WHERE l.source = NEW.source AND l.sourced_id = NEW.sourced_id)
BEGIN
    UPDATE location_counts SET accounts = accounts - 1
    WHERE (source, org, location_id, writer) = (
        SELECT l.source, COALESCE(OLD.primary_org, ''), COALESCE(u.location_id, 0),
               COALESCE((SELECT fp.writer FROM field_provenance fp WHERE fp.user_id = u.id AND fp.field = 'location'),
                        CASE WHEN (u.created_fields & 1024) <> 0 THEN u.created_by END, '')
        FROM sis_links l JOIN users u ON u.id = l.user_id
        WHERE l.source = NEW.source AND l.sourced_id = NEW.sourced_id AND u.active = TRUE);
    INSERT INTO location_counts (source, org, location_id, writer, accounts)
    SELECT l.source, COALESCE(NEW.primary_org, ''), COALESCE(u.location_id, 0),
           COALESCE((SELECT fp.writer FROM field_provenance fp WHERE fp.user_id = u.id AND fp.field = 'location'),
                    CASE WHEN (u.created_fields & 1024) <> 0 THEN u.created_by END, ''),
           1
    FROM sis_links l JOIN users u ON u.id = l.user_id
    WHERE l.source = NEW.source AND l.sourced_id = NEW.sourced_id AND u.active = TRUE
    ON CONFLICT (source, org, location_id, writer) DO UPDATE SET accounts = accounts + 1;
END;

