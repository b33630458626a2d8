-- rostersync schema v14 (PostgreSQL): the duplicates report's keys, kept as accounts are
-- written instead of hashed from every account per request (docs/console.md, "Reports at
-- scale").
--
-- `users.dupkey_*`: each account's keys (`rostersync_core::reports::account_dup_keys`:
-- `l:` and the local part of its email, of its username when that is another, `i:` and
-- its school id number), written with the account by the store's one account writer;
-- `users::refresh_dup_keys` (store crate) fills them for accounts written before.
-- `duplicate_keys`: the keys of the accounts the report compares (active, not merged),
-- one row per key and account; `duplicate_key_counts`: how many accounts hold each, so
-- the keys two or more share come from a small index instead of a pass over everything.
-- Kept by the statement triggers below whoever writes `users` (sync apply, merge, undo,
-- SCIM, account syncs, restore; COPY included). Aliases (old emails and usernames) are
-- few and read per request. A key's count row is updated in key order, so two writers
-- that share keys wait for each other in one order.
-- Derived data: whatever an earlier copy left is dropped; `counts::recount_dup_keys`
-- fills both tables after this script. IF NOT EXISTS: a database set back to an older
-- version (the tests do) meets this again.
DROP TRIGGER IF EXISTS duplicate_keys_user_insert ON users;
DROP TRIGGER IF EXISTS duplicate_keys_user_update ON users;
DROP TRIGGER IF EXISTS duplicate_keys_user_delete ON users;
DROP TABLE IF EXISTS duplicate_keys;
DROP TABLE IF EXISTS duplicate_key_counts;
DROP FUNCTION IF EXISTS duplicate_keys_users();
DROP FUNCTION IF EXISTS duplicate_keys_counts();

ALTER TABLE users ADD COLUMN IF NOT EXISTS dupkey_email TEXT COLLATE "C";
ALTER TABLE users ADD COLUMN IF NOT EXISTS dupkey_username TEXT COLLATE "C";
ALTER TABLE users ADD COLUMN IF NOT EXISTS dupkey_identifier TEXT COLLATE "C";

CREATE TABLE duplicate_keys (
    key     TEXT COLLATE "C" NOT NULL,
    user_id BIGINT NOT NULL,
    PRIMARY KEY (key, user_id)
);

CREATE TABLE duplicate_key_counts (
    key      TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    accounts BIGINT NOT NULL
);
CREATE INDEX duplicate_key_counts_shared ON duplicate_key_counts (key, accounts)
    WHERE accounts >= 2;

-- The keys a statement took from accounts (`lost`) and gave them (`gained`): an account's
-- keys count while it is active and not merged away.
CREATE FUNCTION duplicate_keys_users() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    lost TEXT := 'SELECT NULL::text AS k, NULL::bigint AS id WHERE FALSE';
    gained TEXT := 'SELECT NULL::text AS k, NULL::bigint AS id WHERE FALSE';
BEGIN
    -- A wide write (a first import, a restore) fills the table again once at its end
    -- instead (`counts::paused_if_wide`).
    IF current_setting('rostersync.derived_paused', true) = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        gained := 'SELECT v.k, n.id FROM new_rows n
                   CROSS JOIN LATERAL (VALUES (n.dupkey_email), (n.dupkey_username), (n.dupkey_identifier)) v(k)
                   WHERE v.k IS NOT NULL AND n.active AND n.merged_into IS NULL';
    ELSIF TG_OP = 'DELETE' THEN
        lost := 'SELECT v.k, o.id FROM old_rows o
                 CROSS JOIN LATERAL (VALUES (o.dupkey_email), (o.dupkey_username), (o.dupkey_identifier)) v(k)
                 WHERE v.k IS NOT NULL AND o.active AND o.merged_into IS NULL';
    ELSE
        lost := 'SELECT v.k, o.id FROM old_rows o JOIN new_rows n ON n.id = o.id
                 CROSS JOIN LATERAL (VALUES (o.dupkey_email), (o.dupkey_username), (o.dupkey_identifier)) v(k)
                 WHERE v.k IS NOT NULL AND o.active AND o.merged_into IS NULL
                   AND ((n.active AND n.merged_into IS NULL) IS DISTINCT FROM TRUE
                        OR o.dupkey_email IS DISTINCT FROM n.dupkey_email
                        OR o.dupkey_username IS DISTINCT FROM n.dupkey_username
                        OR o.dupkey_identifier IS DISTINCT FROM n.dupkey_identifier)';
        gained := 'SELECT v.k, n.id FROM old_rows o JOIN new_rows n ON n.id = o.id
                   CROSS JOIN LATERAL (VALUES (n.dupkey_email), (n.dupkey_username), (n.dupkey_identifier)) v(k)
                   WHERE v.k IS NOT NULL AND n.active AND n.merged_into IS NULL
                     AND ((o.active AND o.merged_into IS NULL) IS DISTINCT FROM TRUE
                          OR o.dupkey_email IS DISTINCT FROM n.dupkey_email
                          OR o.dupkey_username IS DISTINCT FROM n.dupkey_username
                          OR o.dupkey_identifier IS DISTINCT FROM n.dupkey_identifier)';
    END IF;
    EXECUTE format($q$
        DELETE FROM duplicate_keys d USING (%s) g WHERE d.key = g.k AND d.user_id = g.id
    $q$, lost);
    EXECUTE format($q$
        INSERT INTO duplicate_keys (key, user_id) SELECT k, id FROM (%s) g ORDER BY k, id
        ON CONFLICT DO NOTHING
    $q$, gained);
    RETURN NULL;
END $$;

-- How many accounts hold each key, from the rows a statement added to or took from
-- `duplicate_keys`; a count that falls to 0 goes.
CREATE FUNCTION duplicate_keys_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO duplicate_key_counts (key, accounts)
        SELECT key, COUNT(*) FROM new_rows GROUP BY key ORDER BY key
        ON CONFLICT (key) DO UPDATE SET accounts = duplicate_key_counts.accounts + EXCLUDED.accounts;
    ELSE
        UPDATE duplicate_key_counts c SET accounts = c.accounts - g.n
        FROM (SELECT key, COUNT(*) AS n FROM old_rows GROUP BY key ORDER BY key) g
        WHERE c.key = g.key;
        DELETE FROM duplicate_key_counts c USING (SELECT DISTINCT key FROM old_rows) g
        WHERE c.key = g.key AND c.accounts <= 0;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER duplicate_keys_user_insert AFTER INSERT ON users
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION duplicate_keys_users();
CREATE TRIGGER duplicate_keys_user_update AFTER UPDATE ON users
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION duplicate_keys_users();
CREATE TRIGGER duplicate_keys_user_delete AFTER DELETE ON users
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION duplicate_keys_users();
CREATE TRIGGER duplicate_keys_count_insert AFTER INSERT ON duplicate_keys
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION duplicate_keys_counts();
CREATE TRIGGER duplicate_keys_count_delete AFTER DELETE ON duplicate_keys
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION duplicate_keys_counts();

-- As the counts' triggers (0011): the big tables are reached by their keys even when a
-- first import's statistics call them empty, and no JIT for these probes and aggregates.
ALTER FUNCTION duplicate_keys_users() SET enable_seqscan = off SET jit = off;
ALTER FUNCTION duplicate_keys_counts() SET enable_seqscan = off SET jit = off;
