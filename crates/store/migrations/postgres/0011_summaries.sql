-- rostersync schema v11 (PostgreSQL): counts the console reads on every page, kept by
-- triggers instead of aggregated per request (docs/console.md, "Reports at scale").
--
-- `account_counts`: the accounts not merged away, by whether they are active and by the
-- sources that link them (`sources`: their names, distinct, sorted, comma-separated; ''
-- for none; source names are letters, digits, '-' and '_'). Which of those sources are
-- account sources (whose links are sign-in identities) is decided when read, so a source
-- added, removed or changed needs no rewrite.
--
-- Every statement that writes `users` or `sis_links` (sync apply, merge, undo, links by
-- hand, SCIM, account syncs, restore; COPY included) appends what it moved as signed
-- rows; the first such statement of a transaction also folds the rows no other
-- transaction holds into one per key (once: folding at every statement would leave a
-- transaction-long trail of dead rows to scan). Readers sum by key. Appending takes no
-- lock another writer waits for, so `serve` nodes writing at once never queue (or
-- deadlock) on a count. Ids of accounts never change.
-- Derived data: whatever an earlier copy left is dropped; `counts::recount` (store
-- crate) fills both tables right after this script.
DROP TRIGGER IF EXISTS account_counts_user_insert ON users;
DROP TRIGGER IF EXISTS account_counts_user_update ON users;
DROP TRIGGER IF EXISTS account_counts_user_delete ON users;
DROP TRIGGER IF EXISTS account_counts_link_insert ON sis_links;
DROP TRIGGER IF EXISTS account_counts_link_update ON sis_links;
DROP TRIGGER IF EXISTS account_counts_link_delete ON sis_links;
DROP FUNCTION IF EXISTS account_counts_users();
DROP FUNCTION IF EXISTS account_counts_links();
DROP FUNCTION IF EXISTS account_counts_fold();
DROP TABLE IF EXISTS account_counts;

CREATE TABLE account_counts (
    sources  TEXT COLLATE "C" NOT NULL,
    active   BOOLEAN NOT NULL,
    accounts BIGINT NOT NULL
);

-- Once a transaction: the rows nobody else holds, summed into one per key (zero sums
-- dropped).
CREATE FUNCTION account_counts_fold() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('rostersync.account_counts_folded', true) IS DISTINCT FROM 'yes' THEN
        PERFORM set_config('rostersync.account_counts_folded', 'yes', true);
        WITH gone AS (
            DELETE FROM account_counts
            WHERE ctid IN (SELECT ctid FROM account_counts FOR UPDATE SKIP LOCKED)
            RETURNING sources, active, accounts
        )
        INSERT INTO account_counts (sources, active, accounts)
        SELECT sources, active, SUM(accounts) FROM gone
        GROUP BY sources, active HAVING SUM(accounts) <> 0;
    END IF;
END $$;

-- An account's linking sources are read per account through the links' user index (a
-- LATERAL subquery, fenced with OFFSET 0 so it stays a probe per account).
CREATE FUNCTION account_counts_users() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    moved TEXT;
BEGIN
    IF TG_OP = 'INSERT' THEN
        moved := 'SELECT n.id, n.active, 1 AS d FROM new_rows n WHERE n.merged_into IS NULL';
    ELSIF TG_OP = 'DELETE' THEN
        moved := 'SELECT o.id, o.active, -1 AS d FROM old_rows o WHERE o.merged_into IS NULL';
    ELSE
        -- Accounts whose active or merged_into changed: out of their old row, into their
        -- new one.
        moved := 'SELECT o.id, o.active, -1 AS d FROM old_rows o JOIN new_rows n ON n.id = o.id
                  WHERE o.merged_into IS NULL AND (o.active IS DISTINCT FROM n.active
                        OR o.merged_into IS DISTINCT FROM n.merged_into)
                  UNION ALL
                  SELECT n.id, n.active, 1 FROM old_rows o JOIN new_rows n ON n.id = o.id
                  WHERE n.merged_into IS NULL AND (o.active IS DISTINCT FROM n.active
                        OR o.merged_into IS DISTINCT FROM n.merged_into)';
    END IF;
    EXECUTE format($q$
        INSERT INTO account_counts (sources, active, accounts)
        SELECT s.sig, g.active, SUM(g.d)
        FROM (%s) g
        CROSS JOIN LATERAL (
            SELECT COALESCE(string_agg(DISTINCT l.source, ',' ORDER BY l.source), '') AS sig
            FROM sis_links l WHERE l.user_id = g.id OFFSET 0) s
        GROUP BY 1, 2 HAVING SUM(g.d) <> 0
    $q$, moved);
    PERFORM account_counts_fold();
    RETURN NULL;
END $$;

-- Links: every account a statement gave or took a link moves from the row of its links
-- before (those it has now, less the links the statement gained, plus those it lost) to
-- the row of its links now. Rows whose (source, sourced_id, user_id) did not change move
-- nothing.
CREATE FUNCTION account_counts_links() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    gained TEXT := 'SELECT source, sourced_id, user_id FROM sis_links WHERE FALSE';
    lost TEXT := 'SELECT source, sourced_id, user_id FROM sis_links WHERE FALSE';
BEGIN
    IF TG_OP = 'INSERT' THEN
        gained := 'SELECT source, sourced_id, user_id FROM new_rows';
    ELSIF TG_OP = 'DELETE' THEN
        lost := 'SELECT source, sourced_id, user_id FROM old_rows';
    ELSE
        gained := 'SELECT source, sourced_id, user_id FROM new_rows
                   WHERE (source, sourced_id, user_id) NOT IN
                         (SELECT source, sourced_id, user_id FROM old_rows)';
        lost := 'SELECT source, sourced_id, user_id FROM old_rows
                 WHERE (source, sourced_id, user_id) NOT IN
                       (SELECT source, sourced_id, user_id FROM new_rows)';
    END IF;
    EXECUTE format($q$
        WITH gained AS MATERIALIZED (%s),
        lost AS MATERIALIZED (%s),
        touched AS (
            SELECT t.user_id, array_agg(t.lost_source) FILTER (WHERE t.lost_source IS NOT NULL) AS lost
            FROM (SELECT user_id, NULL::text AS lost_source FROM gained
                  UNION ALL SELECT user_id, source FROM lost) t
            GROUP BY t.user_id)
        INSERT INTO account_counts (sources, active, accounts)
        SELECT v.sig, u.active, SUM(v.d)
        FROM touched t
        CROSS JOIN LATERAL (SELECT x.active FROM users x
                            WHERE x.id = t.user_id AND x.merged_into IS NULL OFFSET 0) u
        CROSS JOIN LATERAL (
            SELECT COALESCE(string_agg(DISTINCT z.src, ',' ORDER BY z.src) FILTER (WHERE z.was), '') AS was,
                   COALESCE(string_agg(DISTINCT z.src, ',' ORDER BY z.src) FILTER (WHERE z.now), '') AS now
            FROM (SELECT l.source AS src,
                         (l.source, l.sourced_id) NOT IN (SELECT g.source, g.sourced_id FROM gained g) AS was,
                         TRUE AS now
                  FROM sis_links l WHERE l.user_id = t.user_id
                  UNION ALL
                  SELECT s, TRUE, FALSE FROM unnest(t.lost) s) z
            OFFSET 0) s
        CROSS JOIN LATERAL (VALUES (s.was, -1), (s.now, 1)) v(sig, d)
        GROUP BY 1, 2 HAVING SUM(v.d) <> 0
    $q$, gained, lost);
    PERFORM account_counts_fold();
    RETURN NULL;
END $$;

CREATE TRIGGER account_counts_user_insert AFTER INSERT ON users
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION account_counts_users();
CREATE TRIGGER account_counts_user_update AFTER UPDATE ON users
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION account_counts_users();
CREATE TRIGGER account_counts_user_delete AFTER DELETE ON users
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION account_counts_users();
CREATE TRIGGER account_counts_link_insert AFTER INSERT ON sis_links
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION account_counts_links();
CREATE TRIGGER account_counts_link_update AFTER UPDATE ON sis_links
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION account_counts_links();
CREATE TRIGGER account_counts_link_delete AFTER DELETE ON sis_links
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION account_counts_links();

-- `location_counts`: per source, the active accounts it links, by the linked person's
-- primary org as last pulled ('' when none or no person), the account's location id (0
-- when none) and who last wrote the location ('' when nobody): its `field_provenance` row
-- (field 'location'), else the account's creator when the creation wrote it (bit 1024 of
-- `created_fields`, FIELD_BITS in users/row.rs). One row per link: an account linked twice
-- by a source counts twice. What the Location Mappings page and its preview show. Kept
-- like `account_counts`: signed rows appended per statement, then folded.
--
-- It moves when a link comes, goes or moves; when an account's active flag, location or
-- creation changes; when a location's writer changes; when a person's primary org
-- changes. Keys of `field_provenance` and `sis_people` rows never change.
DROP TRIGGER IF EXISTS location_counts_link_insert ON sis_links;
DROP TRIGGER IF EXISTS location_counts_link_update ON sis_links;
DROP TRIGGER IF EXISTS location_counts_link_delete ON sis_links;
DROP TRIGGER IF EXISTS location_counts_user_insert ON users;
DROP TRIGGER IF EXISTS location_counts_user_update ON users;
DROP TRIGGER IF EXISTS location_counts_user_delete ON users;
DROP TRIGGER IF EXISTS location_counts_writer_insert ON field_provenance;
DROP TRIGGER IF EXISTS location_counts_writer_update ON field_provenance;
DROP TRIGGER IF EXISTS location_counts_writer_delete ON field_provenance;
DROP TRIGGER IF EXISTS location_counts_person_insert ON sis_people;
DROP TRIGGER IF EXISTS location_counts_person_update ON sis_people;
DROP TRIGGER IF EXISTS location_counts_person_delete ON sis_people;
DROP FUNCTION IF EXISTS location_counts_links();
DROP FUNCTION IF EXISTS location_counts_users();
DROP FUNCTION IF EXISTS location_counts_writers();
DROP FUNCTION IF EXISTS location_counts_people();
DROP FUNCTION IF EXISTS location_counts_fold();
DROP TABLE IF EXISTS location_counts;

CREATE TABLE location_counts (
    source      TEXT NOT NULL,
    org         TEXT COLLATE "C" NOT NULL,
    location_id BIGINT NOT NULL,
    writer      TEXT NOT NULL,
    accounts    BIGINT NOT NULL
);

CREATE FUNCTION location_counts_fold() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('rostersync.location_counts_folded', true) IS DISTINCT FROM 'yes' THEN
        PERFORM set_config('rostersync.location_counts_folded', 'yes', true);
        WITH gone AS (
            DELETE FROM location_counts
            WHERE ctid IN (SELECT ctid FROM location_counts FOR UPDATE SKIP LOCKED)
            RETURNING source, org, location_id, writer, accounts
        )
        INSERT INTO location_counts (source, org, location_id, writer, accounts)
        SELECT source, org, location_id, writer, SUM(accounts) FROM gone
        GROUP BY source, org, location_id, writer HAVING SUM(accounts) <> 0;
    END IF;
END $$;

-- Links: the rows a statement added count, the rows it removed no longer do.
-- Every trigger query here is planned for its statement (EXECUTE): a plan kept from a
-- session's first statement would keep that moment's sizes (a first import's empty tables,
-- a one-row transition table) and read every link, or pair transition rows in a nested loop.
CREATE FUNCTION location_counts_links() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        EXECUTE $q$
        INSERT INTO location_counts (source, org, location_id, writer, accounts)
        SELECT n.source, COALESCE(p.primary_org, ''), COALESCE(u.location_id, 0),
               COALESCE(fp.writer, CASE WHEN (u.created_fields & 1024) <> 0 THEN u.created_by END, ''),
               COUNT(*)
        FROM new_rows n
        JOIN users u ON u.id = n.user_id AND u.active = TRUE
        LEFT JOIN sis_people p ON p.source = n.source COLLATE "C" AND p.sourced_id = n.sourced_id
        LEFT JOIN field_provenance fp ON fp.user_id = u.id AND fp.field = 'location'
        GROUP BY 1, 2, 3, 4
        $q$;
    ELSIF TG_OP = 'DELETE' THEN
        EXECUTE $q$
        INSERT INTO location_counts (source, org, location_id, writer, accounts)
        SELECT o.source, COALESCE(p.primary_org, ''), COALESCE(u.location_id, 0),
               COALESCE(fp.writer, CASE WHEN (u.created_fields & 1024) <> 0 THEN u.created_by END, ''),
               -COUNT(*)
        FROM old_rows o
        JOIN users u ON u.id = o.user_id AND u.active = TRUE
        LEFT JOIN sis_people p ON p.source = o.source COLLATE "C" AND p.sourced_id = o.sourced_id
        LEFT JOIN field_provenance fp ON fp.user_id = u.id AND fp.field = 'location'
        GROUP BY 1, 2, 3, 4
        $q$;
    ELSE
        EXECUTE $q$
        WITH signed AS (
            SELECT n.source, n.sourced_id, n.user_id, 1 AS d FROM new_rows n WHERE NOT EXISTS (
                SELECT 1 FROM old_rows o WHERE o.source = n.source
                  AND o.sourced_id = n.sourced_id AND o.user_id = n.user_id)
            UNION ALL
            SELECT o.source, o.sourced_id, o.user_id, -1 FROM old_rows o WHERE NOT EXISTS (
                SELECT 1 FROM new_rows n WHERE n.source = o.source
                  AND n.sourced_id = o.sourced_id AND n.user_id = o.user_id)
        )
        INSERT INTO location_counts (source, org, location_id, writer, accounts)
        SELECT g.source, COALESCE(p.primary_org, ''), COALESCE(u.location_id, 0),
               COALESCE(fp.writer, CASE WHEN (u.created_fields & 1024) <> 0 THEN u.created_by END, ''),
               SUM(g.d)
        FROM signed g
        JOIN users u ON u.id = g.user_id AND u.active = TRUE
        LEFT JOIN sis_people p ON p.source = g.source COLLATE "C" AND p.sourced_id = g.sourced_id
        LEFT JOIN field_provenance fp ON fp.user_id = u.id AND fp.field = 'location'
        GROUP BY 1, 2, 3, 4 HAVING SUM(g.d) <> 0
        $q$;
    END IF;
    PERFORM location_counts_fold();
    RETURN NULL;
END $$;

-- Accounts: each link of an account out of the row its old state gave it, into the new.
CREATE FUNCTION location_counts_users() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        EXECUTE $q$
        INSERT INTO location_counts (source, org, location_id, writer, accounts)
        SELECT l.source, COALESCE(p.primary_org, ''), COALESCE(n.location_id, 0),
               COALESCE(fp.writer, CASE WHEN (n.created_fields & 1024) <> 0 THEN n.created_by END, ''),
               COUNT(*)
        FROM new_rows n
        JOIN sis_links l ON l.user_id = n.id
        LEFT JOIN sis_people p ON p.source = l.source COLLATE "C" AND p.sourced_id = l.sourced_id
        LEFT JOIN field_provenance fp ON fp.user_id = n.id AND fp.field = 'location'
        WHERE n.active = TRUE
        GROUP BY 1, 2, 3, 4
        $q$;
    ELSIF TG_OP = 'DELETE' THEN
        EXECUTE $q$
        INSERT INTO location_counts (source, org, location_id, writer, accounts)
        SELECT l.source, COALESCE(p.primary_org, ''), COALESCE(o.location_id, 0),
               COALESCE(fp.writer, CASE WHEN (o.created_fields & 1024) <> 0 THEN o.created_by END, ''),
               -COUNT(*)
        FROM old_rows o
        JOIN sis_links l ON l.user_id = o.id
        LEFT JOIN sis_people p ON p.source = l.source COLLATE "C" AND p.sourced_id = l.sourced_id
        LEFT JOIN field_provenance fp ON fp.user_id = o.id AND fp.field = 'location'
        WHERE o.active = TRUE
        GROUP BY 1, 2, 3, 4
        $q$;
    ELSE
        EXECUTE $q$
        WITH moved AS (
            SELECT o.id, o.active AS old_active, o.location_id AS old_location,
                   o.created_fields AS old_fields, o.created_by AS old_by,
                   n.active AS new_active, n.location_id AS new_location,
                   n.created_fields AS new_fields, n.created_by AS new_by
            FROM old_rows o JOIN new_rows n ON n.id = o.id
            WHERE o.active IS DISTINCT FROM n.active OR o.location_id IS DISTINCT FROM n.location_id
               OR o.created_fields IS DISTINCT FROM n.created_fields
               OR o.created_by IS DISTINCT FROM n.created_by
        ), signed AS (
            SELECT id, old_location AS location_id, old_fields AS fields, old_by AS by, -1 AS d
            FROM moved WHERE old_active = TRUE
            UNION ALL
            SELECT id, new_location, new_fields, new_by, 1 FROM moved WHERE new_active = TRUE
        )
        INSERT INTO location_counts (source, org, location_id, writer, accounts)
        SELECT l.source, COALESCE(p.primary_org, ''), COALESCE(g.location_id, 0),
               COALESCE(fp.writer, CASE WHEN (g.fields & 1024) <> 0 THEN g.by END, ''),
               SUM(g.d)
        FROM signed g
        JOIN sis_links l ON l.user_id = g.id
        LEFT JOIN sis_people p ON p.source = l.source COLLATE "C" AND p.sourced_id = l.sourced_id
        LEFT JOIN field_provenance fp ON fp.user_id = g.id AND fp.field = 'location'
        GROUP BY 1, 2, 3, 4 HAVING SUM(g.d) <> 0
        $q$;
    END IF;
    PERFORM location_counts_fold();
    RETURN NULL;
END $$;

-- Who wrote a location: (account, writer before, writer now) for each row of field
-- 'location' the statement wrote (NULL: no provenance row, so the creator when the
-- creation wrote the location); the account's links move between the two.
CREATE FUNCTION location_counts_writers() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    moves TEXT;
BEGIN
    IF TG_OP = 'INSERT' THEN
        moves := 'SELECT n.user_id, NULL::text AS was, n.writer AS now FROM new_rows n
                  WHERE n.field = ''location''';
    ELSIF TG_OP = 'DELETE' THEN
        moves := 'SELECT o.user_id, o.writer AS was, NULL::text AS now FROM old_rows o
                  WHERE o.field = ''location''';
    ELSE
        moves := 'SELECT n.user_id, o.writer AS was, n.writer AS now
                  FROM old_rows o JOIN new_rows n ON n.user_id = o.user_id AND n.field = o.field
                  WHERE n.field = ''location'' AND o.writer IS DISTINCT FROM n.writer';
    END IF;
    EXECUTE format($q$
        WITH moves AS (%s)
        INSERT INTO location_counts (source, org, location_id, writer, accounts)
        SELECT source, org, location_id, writer, SUM(d) FROM (
            SELECT l.source, COALESCE(p.primary_org, '') AS org, COALESCE(u.location_id, 0) AS location_id,
                   COALESCE(m.was, CASE WHEN (u.created_fields & 1024) <> 0 THEN u.created_by END, '') AS writer,
                   -1 AS d
            FROM moves m
            JOIN users u ON u.id = m.user_id AND u.active = TRUE
            JOIN sis_links l ON l.user_id = m.user_id
            LEFT JOIN sis_people p ON p.source = l.source COLLATE "C" AND p.sourced_id = l.sourced_id
            UNION ALL
            SELECT l.source, COALESCE(p.primary_org, ''), COALESCE(u.location_id, 0),
                   COALESCE(m.now, CASE WHEN (u.created_fields & 1024) <> 0 THEN u.created_by END, ''),
                   1
            FROM moves m
            JOIN users u ON u.id = m.user_id AND u.active = TRUE
            JOIN sis_links l ON l.user_id = m.user_id
            LEFT JOIN sis_people p ON p.source = l.source COLLATE "C" AND p.sourced_id = l.sourced_id
        ) x GROUP BY 1, 2, 3, 4 HAVING SUM(d) <> 0
    $q$, moves);
    PERFORM location_counts_fold();
    RETURN NULL;
END $$;

-- People: the link a person has moves from the old primary org to the new one.
CREATE FUNCTION location_counts_people() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    moves TEXT;
BEGIN
    IF TG_OP = 'INSERT' THEN
        moves := 'SELECT n.source, n.sourced_id, ''''::text AS was, n.primary_org AS now
                  FROM new_rows n WHERE COALESCE(n.primary_org, '''') <> ''''';
    ELSIF TG_OP = 'DELETE' THEN
        moves := 'SELECT o.source, o.sourced_id, o.primary_org AS was, ''''::text AS now
                  FROM old_rows o WHERE COALESCE(o.primary_org, '''') <> ''''';
    ELSE
        moves := 'SELECT n.source, n.sourced_id, COALESCE(o.primary_org, '''') AS was,
                         COALESCE(n.primary_org, '''') AS now
                  FROM old_rows o JOIN new_rows n ON n.source = o.source AND n.sourced_id = o.sourced_id
                  WHERE COALESCE(o.primary_org, '''') <> COALESCE(n.primary_org, '''')';
    END IF;
    EXECUTE format($q$
        WITH moves AS (%s)
        INSERT INTO location_counts (source, org, location_id, writer, accounts)
        SELECT source, org, location_id, writer, SUM(d) FROM (
            SELECT l.source, m.was AS org, COALESCE(u.location_id, 0) AS location_id,
                   COALESCE(fp.writer, CASE WHEN (u.created_fields & 1024) <> 0 THEN u.created_by END, '') AS writer,
                   -1 AS d
            FROM moves m
            JOIN sis_links l ON l.source = m.source COLLATE "default" AND l.sourced_id = m.sourced_id
            JOIN users u ON u.id = l.user_id AND u.active = TRUE
            LEFT JOIN field_provenance fp ON fp.user_id = u.id AND fp.field = 'location'
            UNION ALL
            SELECT l.source, m.now, COALESCE(u.location_id, 0),
                   COALESCE(fp.writer, CASE WHEN (u.created_fields & 1024) <> 0 THEN u.created_by END, ''),
                   1
            FROM moves m
            JOIN sis_links l ON l.source = m.source COLLATE "default" AND l.sourced_id = m.sourced_id
            JOIN users u ON u.id = l.user_id AND u.active = TRUE
            LEFT JOIN field_provenance fp ON fp.user_id = u.id AND fp.field = 'location'
        ) x GROUP BY 1, 2, 3, 4 HAVING SUM(d) <> 0
    $q$, moves);
    PERFORM location_counts_fold();
    RETURN NULL;
END $$;

CREATE TRIGGER location_counts_link_insert AFTER INSERT ON sis_links
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION location_counts_links();
CREATE TRIGGER location_counts_link_update AFTER UPDATE ON sis_links
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION location_counts_links();
CREATE TRIGGER location_counts_link_delete AFTER DELETE ON sis_links
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION location_counts_links();
CREATE TRIGGER location_counts_user_insert AFTER INSERT ON users
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION location_counts_users();
CREATE TRIGGER location_counts_user_update AFTER UPDATE ON users
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION location_counts_users();
CREATE TRIGGER location_counts_user_delete AFTER DELETE ON users
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION location_counts_users();
CREATE TRIGGER location_counts_writer_insert AFTER INSERT ON field_provenance
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION location_counts_writers();
CREATE TRIGGER location_counts_writer_update AFTER UPDATE ON field_provenance
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION location_counts_writers();
CREATE TRIGGER location_counts_writer_delete AFTER DELETE ON field_provenance
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION location_counts_writers();
CREATE TRIGGER location_counts_person_insert AFTER INSERT ON sis_people
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION location_counts_people();
CREATE TRIGGER location_counts_person_update AFTER UPDATE ON sis_people
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION location_counts_people();
CREATE TRIGGER location_counts_person_delete AFTER DELETE ON sis_people
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION location_counts_people();

-- The planner's statistics of tables a transaction is filling (a first import) say they
-- are nearly empty, and a scan of a table it believes tiny can be chosen once per row of
-- a statement (quadratic): the triggers' queries reach the big tables by their indexes.
-- That setting prices every plan with a scan it cannot avoid (a transition table's, a
-- counts table's) at 1e10, far past the JIT thresholds, and compiling a plan costs
-- 0.1-0.3 s: every statement would pay it, however few rows it wrote. These queries are
-- index probes and small aggregates, which JIT never speeds up, so it is off. The folds
-- scan their small tables (which have no index) with the caller's settings unless told.
ALTER FUNCTION account_counts_users() SET enable_seqscan = off SET jit = off;
ALTER FUNCTION account_counts_links() SET enable_seqscan = off SET jit = off;
ALTER FUNCTION location_counts_links() SET enable_seqscan = off SET jit = off;
ALTER FUNCTION location_counts_users() SET enable_seqscan = off SET jit = off;
ALTER FUNCTION location_counts_writers() SET enable_seqscan = off SET jit = off;
ALTER FUNCTION location_counts_people() SET enable_seqscan = off SET jit = off;
ALTER FUNCTION account_counts_fold() SET enable_seqscan = on SET jit = off;
ALTER FUNCTION location_counts_fold() SET enable_seqscan = on SET jit = off;
