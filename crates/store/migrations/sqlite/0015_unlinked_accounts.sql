-- rostersync schema v15 (SQLite): the unlinked report's accounts, kept as accounts and
-- links are written instead of found by probing every account for a link per request (a
-- page walked the accounts in id order until it had its accounts: 1.2-1.6 s at 3 M accounts
-- when the unlinked ones are few or created last, as single sign-on accounts are).
--
-- `unlinked_accounts`: the active accounts not merged away that no SIS source links (a
-- link of an account source is a sign-in identity, not a SIS link: `users::sis_linked`).
-- Kept by the triggers below whoever writes accounts, links or sources; a source added,
-- removed, renamed or turned into or out of an account source keys every account again.
-- The account source kinds are spelled here as `SourceKind::is_account_source` says (a
-- unit test in counts.rs holds the two together).
-- Derived data: dropped and made again here (`counts::recount_unlinked` fills it after
-- this script); a write that touches much of the directory drops these triggers and
-- counts again like the others (`counts::paused_if_wide`); a backup leaves it out.
DROP TRIGGER IF EXISTS unlinked_accounts_user_insert;
DROP TRIGGER IF EXISTS unlinked_accounts_user_update;
DROP TRIGGER IF EXISTS unlinked_accounts_user_delete;
DROP TRIGGER IF EXISTS unlinked_accounts_link_insert;
DROP TRIGGER IF EXISTS unlinked_accounts_link_update;
DROP TRIGGER IF EXISTS unlinked_accounts_link_delete;
DROP TRIGGER IF EXISTS unlinked_accounts_source_insert;
DROP TRIGGER IF EXISTS unlinked_accounts_source_update;
DROP TRIGGER IF EXISTS unlinked_accounts_source_delete;
DROP TABLE IF EXISTS unlinked_accounts;

CREATE TABLE unlinked_accounts (
    user_id INTEGER PRIMARY KEY
) STRICT;

CREATE TRIGGER unlinked_accounts_user_insert AFTER INSERT ON users
WHEN NEW.active AND NEW.merged_into IS NULL
BEGIN
    INSERT OR IGNORE INTO unlinked_accounts (user_id)
    SELECT NEW.id WHERE NOT EXISTS (SELECT 1 FROM sis_links l WHERE l.user_id = NEW.id AND l.source NOT IN (SELECT name FROM sources WHERE kind IN ('google-workspace', 'entra-id', 'scim')));
END;

CREATE TRIGGER unlinked_accounts_user_update AFTER UPDATE OF active, merged_into ON users
WHEN (OLD.active AND OLD.merged_into IS NULL) IS NOT (NEW.active AND NEW.merged_into IS NULL)
BEGIN
    DELETE FROM unlinked_accounts WHERE user_id = NEW.id;
    INSERT OR IGNORE INTO unlinked_accounts (user_id)
    SELECT NEW.id WHERE NEW.active AND NEW.merged_into IS NULL AND NOT EXISTS (SELECT 1 FROM sis_links l WHERE l.user_id = NEW.id AND l.source NOT IN (SELECT name FROM sources WHERE kind IN ('google-workspace', 'entra-id', 'scim')));
END;

CREATE TRIGGER unlinked_accounts_user_delete AFTER DELETE ON users
BEGIN
    DELETE FROM unlinked_accounts WHERE user_id = OLD.id;
END;

CREATE TRIGGER unlinked_accounts_link_insert AFTER INSERT ON sis_links
WHEN NEW.source NOT IN (SELECT name FROM sources WHERE kind IN ('google-workspace', 'entra-id', 'scim'))
BEGIN
    DELETE FROM unlinked_accounts WHERE user_id = NEW.user_id;
END;

CREATE TRIGGER unlinked_accounts_link_update AFTER UPDATE OF source, user_id ON sis_links
WHEN OLD.source IS NOT NEW.source OR OLD.user_id IS NOT NEW.user_id
BEGIN
    DELETE FROM unlinked_accounts WHERE user_id IN (OLD.user_id, NEW.user_id);
    INSERT OR IGNORE INTO unlinked_accounts (user_id)
    SELECT u.id FROM users u
    WHERE u.id IN (OLD.user_id, NEW.user_id) AND u.active AND u.merged_into IS NULL
      AND NOT EXISTS (SELECT 1 FROM sis_links l WHERE l.user_id = u.id AND l.source NOT IN (SELECT name FROM sources WHERE kind IN ('google-workspace', 'entra-id', 'scim')));
END;

CREATE TRIGGER unlinked_accounts_link_delete AFTER DELETE ON sis_links
WHEN OLD.source NOT IN (SELECT name FROM sources WHERE kind IN ('google-workspace', 'entra-id', 'scim'))
BEGIN
    INSERT OR IGNORE INTO unlinked_accounts (user_id)
    SELECT u.id FROM users u
    WHERE u.id = OLD.user_id AND u.active AND u.merged_into IS NULL AND NOT EXISTS (SELECT 1 FROM sis_links l WHERE l.user_id = u.id AND l.source NOT IN (SELECT name FROM sources WHERE kind IN ('google-workspace', 'entra-id', 'scim')));
END;

CREATE TRIGGER unlinked_accounts_source_insert AFTER INSERT ON sources
BEGIN
    DELETE FROM unlinked_accounts;
    INSERT INTO unlinked_accounts (user_id)
    SELECT u.id FROM users u
    WHERE u.active AND u.merged_into IS NULL AND NOT EXISTS (SELECT 1 FROM sis_links l WHERE l.user_id = u.id AND l.source NOT IN (SELECT name FROM sources WHERE kind IN ('google-workspace', 'entra-id', 'scim')));
END;

CREATE TRIGGER unlinked_accounts_source_update AFTER UPDATE OF name, kind ON sources
WHEN OLD.name IS NOT NEW.name OR (OLD.kind IN ('google-workspace', 'entra-id', 'scim')) IS NOT (NEW.kind IN ('google-workspace', 'entra-id', 'scim'))
BEGIN
    DELETE FROM unlinked_accounts;
    INSERT INTO unlinked_accounts (user_id)
    SELECT u.id FROM users u
    WHERE u.active AND u.merged_into IS NULL AND NOT EXISTS (SELECT 1 FROM sis_links l WHERE l.user_id = u.id AND l.source NOT IN (SELECT name FROM sources WHERE kind IN ('google-workspace', 'entra-id', 'scim')));
END;

CREATE TRIGGER unlinked_accounts_source_delete AFTER DELETE ON sources
BEGIN
    DELETE FROM unlinked_accounts;
    INSERT INTO unlinked_accounts (user_id)
    SELECT u.id FROM users u
    WHERE u.active AND u.merged_into IS NULL AND NOT EXISTS (SELECT 1 FROM sis_links l WHERE l.user_id = u.id AND l.source NOT IN (SELECT name FROM sources WHERE kind IN ('google-workspace', 'entra-id', 'scim')));
END;
