-- rostersync schema v14 (SQLite): the duplicates report's keys, kept as accounts are
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
-- Kept by the triggers below whoever writes `users` (sync apply, merge, undo, SCIM,
-- account syncs, restore, hand SQL that keeps the key columns). Aliases (old emails and
-- usernames) are few and read per request.
-- Derived data: whatever an earlier copy left is dropped; `counts::recount_dup_keys`
-- fills both tables after this script, and a write that touches much of the directory
-- drops these triggers and counts again like the others (`counts::paused_if_wide`).
DROP TRIGGER IF EXISTS duplicate_keys_user_insert;
DROP TRIGGER IF EXISTS duplicate_keys_user_update;
DROP TRIGGER IF EXISTS duplicate_keys_user_delete;
DROP TRIGGER IF EXISTS duplicate_keys_count_insert;
DROP TRIGGER IF EXISTS duplicate_keys_count_delete;
DROP TABLE IF EXISTS duplicate_keys;
DROP TABLE IF EXISTS duplicate_key_counts;

ALTER TABLE users ADD COLUMN dupkey_email TEXT;
ALTER TABLE users ADD COLUMN dupkey_username TEXT;
ALTER TABLE users ADD COLUMN dupkey_identifier TEXT;

CREATE TABLE duplicate_keys (
    key     TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    PRIMARY KEY (key, user_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE duplicate_key_counts (
    key      TEXT NOT NULL PRIMARY KEY,
    accounts INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX duplicate_key_counts_shared ON duplicate_key_counts (key, accounts)
    WHERE accounts >= 2;

CREATE TRIGGER duplicate_keys_user_insert AFTER INSERT ON users
WHEN NEW.active AND NEW.merged_into IS NULL
BEGIN
    INSERT OR IGNORE INTO duplicate_keys (key, user_id)
    SELECT k, NEW.id FROM (SELECT NEW.dupkey_email AS k UNION ALL SELECT NEW.dupkey_username
                           UNION ALL SELECT NEW.dupkey_identifier)
    WHERE k IS NOT NULL;
END;

CREATE TRIGGER duplicate_keys_user_update AFTER UPDATE ON users
WHEN (OLD.active AND OLD.merged_into IS NULL) IS NOT (NEW.active AND NEW.merged_into IS NULL)
  OR OLD.dupkey_email IS NOT NEW.dupkey_email
  OR OLD.dupkey_username IS NOT NEW.dupkey_username
  OR OLD.dupkey_identifier IS NOT NEW.dupkey_identifier
BEGIN
    DELETE FROM duplicate_keys
    WHERE user_id = OLD.id
      AND key IN (OLD.dupkey_email, OLD.dupkey_username, OLD.dupkey_identifier);
    INSERT OR IGNORE INTO duplicate_keys (key, user_id)
    SELECT k, NEW.id FROM (SELECT NEW.dupkey_email AS k UNION ALL SELECT NEW.dupkey_username
                           UNION ALL SELECT NEW.dupkey_identifier)
    WHERE k IS NOT NULL AND NEW.active AND NEW.merged_into IS NULL;
END;

CREATE TRIGGER duplicate_keys_user_delete AFTER DELETE ON users
BEGIN
    DELETE FROM duplicate_keys
    WHERE user_id = OLD.id
      AND key IN (OLD.dupkey_email, OLD.dupkey_username, OLD.dupkey_identifier);
END;

CREATE TRIGGER duplicate_keys_count_insert AFTER INSERT ON duplicate_keys
BEGIN
    INSERT INTO duplicate_key_counts (key, accounts) VALUES (NEW.key, 1)
    ON CONFLICT (key) DO UPDATE SET accounts = accounts + 1;
END;

CREATE TRIGGER duplicate_keys_count_delete AFTER DELETE ON duplicate_keys
BEGIN
    UPDATE duplicate_key_counts SET accounts = accounts - 1 WHERE key = OLD.key;
    DELETE FROM duplicate_key_counts WHERE key = OLD.key AND accounts <= 0;
END;
