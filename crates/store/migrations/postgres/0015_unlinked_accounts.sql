-- rostersync schema v15 (PostgreSQL): the unlinked report's accounts, kept as accounts and
-- links are written instead of found by probing every account for a link per request (a
-- page walked the accounts in id order until it had its accounts: 1.2-1.6 s at 3 M accounts
-- when the unlinked ones are few or created last, as single sign-on accounts are).
--
-- `unlinked_accounts`: the active accounts not merged away that no SIS source links (a
-- link of an account source is a sign-in identity, not a SIS link: `users::sis_linked`).
-- Kept by the statement triggers below whoever writes accounts, links or sources (COPY
-- included); a source added, removed, renamed or turned into or out of an account source
-- keys every account again. The account source kinds are spelled here as
-- `SourceKind::is_account_source` says (a unit test in counts.rs holds the two together).
-- Derived data: dropped and made again here (`counts::recount_unlinked` fills it after
-- this script); a backup leaves it out.
DROP TRIGGER IF EXISTS unlinked_accounts_user_insert ON users;
DROP TRIGGER IF EXISTS unlinked_accounts_user_update ON users;
DROP TRIGGER IF EXISTS unlinked_accounts_user_delete ON users;
DROP TRIGGER IF EXISTS unlinked_accounts_link_insert ON sis_links;
DROP TRIGGER IF EXISTS unlinked_accounts_link_update ON sis_links;
DROP TRIGGER IF EXISTS unlinked_accounts_link_delete ON sis_links;
DROP TRIGGER IF EXISTS unlinked_accounts_source_insert ON sources;
DROP TRIGGER IF EXISTS unlinked_accounts_source_update ON sources;
DROP TRIGGER IF EXISTS unlinked_accounts_source_delete ON sources;
DROP FUNCTION IF EXISTS unlinked_accounts_users();
DROP FUNCTION IF EXISTS unlinked_accounts_links();
DROP FUNCTION IF EXISTS unlinked_accounts_sources();
DROP TABLE IF EXISTS unlinked_accounts;

CREATE TABLE unlinked_accounts (
    user_id BIGINT PRIMARY KEY
);

-- Accounts whose active or merged_into a statement set (all of them for an insert): in
-- when they are active, not merged and no SIS source links them; out otherwise.
CREATE FUNCTION unlinked_accounts_users() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A wide write (a first import, a restore) fills the table again once at its end
    -- instead (`counts::paused_if_wide`).
    IF current_setting('rostersync.derived_paused', true) = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        EXECUTE $q$
            INSERT INTO unlinked_accounts (user_id)
            SELECT n.id FROM new_rows n
            WHERE n.active AND n.merged_into IS NULL AND NOT EXISTS (SELECT 1 FROM sis_links l WHERE l.user_id = n.id AND l.source NOT IN (SELECT name FROM sources WHERE kind IN ('google-workspace', 'entra-id', 'scim')))
            ORDER BY n.id ON CONFLICT DO NOTHING
        $q$;
    ELSIF TG_OP = 'DELETE' THEN
        EXECUTE $q$
            DELETE FROM unlinked_accounts a USING old_rows o WHERE a.user_id = o.id
        $q$;
    ELSE
        EXECUTE $q$
            DELETE FROM unlinked_accounts a USING old_rows o, new_rows n
            WHERE a.user_id = o.id AND n.id = o.id
              AND (o.active AND o.merged_into IS NULL) IS DISTINCT FROM (n.active AND n.merged_into IS NULL)
        $q$;
        EXECUTE $q$
            INSERT INTO unlinked_accounts (user_id)
            SELECT n.id FROM old_rows o JOIN new_rows n ON n.id = o.id
            WHERE (o.active AND o.merged_into IS NULL) IS DISTINCT FROM (n.active AND n.merged_into IS NULL)
              AND n.active AND n.merged_into IS NULL AND NOT EXISTS (SELECT 1 FROM sis_links l WHERE l.user_id = n.id AND l.source NOT IN (SELECT name FROM sources WHERE kind IN ('google-workspace', 'entra-id', 'scim')))
            ORDER BY n.id ON CONFLICT DO NOTHING
        $q$;
    END IF;
    RETURN NULL;
END $$;

-- Accounts a statement gave a SIS link lose their row; the accounts of the links it
-- changed or took are looked at again (out when they no longer qualify, in when they do).
CREATE FUNCTION unlinked_accounts_links() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    touched TEXT;
BEGIN
    -- A wide write (a first import, a restore) fills the table again once at its end
    -- instead (`counts::paused_if_wide`).
    IF current_setting('rostersync.derived_paused', true) = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        EXECUTE $q$
            DELETE FROM unlinked_accounts a USING new_rows n
            WHERE a.user_id = n.user_id AND n.source NOT IN (SELECT name FROM sources WHERE kind IN ('google-workspace', 'entra-id', 'scim'))
        $q$;
        RETURN NULL;
    ELSIF TG_OP = 'DELETE' THEN
        touched := 'SELECT DISTINCT user_id FROM old_rows';
    ELSE
        -- Only the accounts a link moved to or from (a sync rewrites links in place).
        touched := 'SELECT o.user_id FROM old_rows o WHERE NOT EXISTS
                        (SELECT 1 FROM new_rows n WHERE n.source = o.source AND n.user_id = o.user_id)
                    UNION SELECT n.user_id FROM new_rows n WHERE NOT EXISTS
                        (SELECT 1 FROM old_rows o WHERE o.source = n.source AND o.user_id = n.user_id)';
    END IF;
    EXECUTE format($q$
        DELETE FROM unlinked_accounts a USING (%s) t
        WHERE a.user_id = t.user_id
          AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = a.user_id AND u.active
                          AND u.merged_into IS NULL AND NOT EXISTS (SELECT 1 FROM sis_links l WHERE l.user_id = u.id AND l.source NOT IN (SELECT name FROM sources WHERE kind IN ('google-workspace', 'entra-id', 'scim'))))
    $q$, touched);
    EXECUTE format($q$
        INSERT INTO unlinked_accounts (user_id)
        SELECT u.id FROM users u JOIN (%s) t ON t.user_id = u.id
        WHERE u.active AND u.merged_into IS NULL AND NOT EXISTS (SELECT 1 FROM sis_links l WHERE l.user_id = u.id AND l.source NOT IN (SELECT name FROM sources WHERE kind IN ('google-workspace', 'entra-id', 'scim')))
        ORDER BY u.id ON CONFLICT DO NOTHING
    $q$, touched);
    RETURN NULL;
END $$;

-- Which links are SIS links changed (a source added, removed, renamed, or turned into or
-- out of an account source): every account again. A settings save that changes neither
-- costs nothing.
CREATE FUNCTION unlinked_accounts_sources() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- (Nested: the transition tables exist only for an update.)
    IF TG_OP = 'UPDATE' THEN
        IF NOT EXISTS (
            SELECT 1 FROM old_rows o JOIN new_rows n ON n.id = o.id
            WHERE o.name IS DISTINCT FROM n.name
               OR (o.kind IN ('google-workspace', 'entra-id', 'scim')) IS DISTINCT FROM (n.kind IN ('google-workspace', 'entra-id', 'scim'))) THEN
            RETURN NULL;
        END IF;
    END IF;
    DELETE FROM unlinked_accounts;
    INSERT INTO unlinked_accounts (user_id)
    SELECT u.id FROM users u WHERE u.active AND u.merged_into IS NULL AND NOT EXISTS (SELECT 1 FROM sis_links l WHERE l.user_id = u.id AND l.source NOT IN (SELECT name FROM sources WHERE kind IN ('google-workspace', 'entra-id', 'scim')));
    RETURN NULL;
END $$;

CREATE TRIGGER unlinked_accounts_user_insert AFTER INSERT ON users
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION unlinked_accounts_users();
CREATE TRIGGER unlinked_accounts_user_update AFTER UPDATE ON users
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION unlinked_accounts_users();
CREATE TRIGGER unlinked_accounts_user_delete AFTER DELETE ON users
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION unlinked_accounts_users();
CREATE TRIGGER unlinked_accounts_link_insert AFTER INSERT ON sis_links
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION unlinked_accounts_links();
CREATE TRIGGER unlinked_accounts_link_update AFTER UPDATE ON sis_links
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION unlinked_accounts_links();
CREATE TRIGGER unlinked_accounts_link_delete AFTER DELETE ON sis_links
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION unlinked_accounts_links();
CREATE TRIGGER unlinked_accounts_source_insert AFTER INSERT ON sources
    FOR EACH STATEMENT EXECUTE FUNCTION unlinked_accounts_sources();
CREATE TRIGGER unlinked_accounts_source_update AFTER UPDATE ON sources
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION unlinked_accounts_sources();
CREATE TRIGGER unlinked_accounts_source_delete AFTER DELETE ON sources
    FOR EACH STATEMENT EXECUTE FUNCTION unlinked_accounts_sources();

-- As the counts' triggers (0011): the big tables by their keys even when a first import's
-- statistics call them empty, and no JIT.
ALTER FUNCTION unlinked_accounts_users() SET enable_seqscan = off SET jit = off;
ALTER FUNCTION unlinked_accounts_links() SET enable_seqscan = off SET jit = off;
ALTER FUNCTION unlinked_accounts_sources() SET jit = off;
