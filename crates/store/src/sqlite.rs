//! The SQLite backend: the default, one file in the data directory, nothing to install.
//!
//! WAL journal with `synchronous=NORMAL` (a crash loses at most the last commits, never
//! consistency), foreign keys on, a busy timeout so a second process waits instead of
//! failing. One writer connection (SQLite has one writer anyway) and one reader, each
//! behind a mutex: reads see the last commit and never wait for a long apply, and a read
//! that finds the reader busy opens a connection of its own rather than wait. Bulk
//! writes are cached prepared statements with `?` placeholders executed row by row,
//! which in SQLite is as fast as it gets (no round trips to save); an upsert or update
//! reads the stored row first and names only the columns whose value changed, so
//! indexes and triggers over the others are left alone.
//!
//! The file holds student data and password hashes: it is created 0600 before SQLite
//! opens it (whatever the umask), SQLite gives its `-wal` and `-shm` the same mode, and
//! wider modes left by older versions are narrowed on open.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, TransactionBehavior, params_from_iter};

use crate::sql::{Dialect, Keys, Row, Rows, Tx, Value};
use crate::{PageCache, Result, StoreError, counts, free, lock, migrate};

/// How long a statement waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// Page cache for large applies ([`PageCache`]; SQLite's default is 2 MiB). Negative: KiB.
const BIG_CACHE_KIB: i64 = 256 * 1024;
const LEAN_CACHE_KIB: i64 = 64 * 1024;
const DEFAULT_CACHE_KIB: i64 = 2 * 1024;
/// Plans with more writes than this get the big cache.
const BIG_APPLY: usize = 20_000;

/// The SQLite store. Blocking: call it from plain threads (`spawn_blocking` in async code).
#[derive(Debug)]
pub(crate) struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    /// Whether the database is in WAL mode: a read then never waits for a writer.
    wal: bool,
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::driver(e.to_string(), e)
}

impl SqliteStore {
    pub(crate) const BACKEND: &'static str = "sqlite";

    /// Opens (creating it if needed) the database file and brings its schema up to date.
    pub(crate) fn open(path: &Path) -> Result<SqliteStore> {
        let place = path.display().to_string();
        if place == ":memory:" || place.is_empty() {
            return Err(StoreError::Open(format!(
                "'{place}' is no database file: the SQLite store needs a file (it keeps a writer and a reader \
                 connection); give a path such as ./rostersync-data/rostersync.db"
            )));
        }
        let open_err = |e: rusqlite::Error| {
            let damaged = matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
            );
            if damaged {
                StoreError::Open(format!(
                    "the database file {place} is damaged or not a rostersync database ({e}): restore it from your last backup (stop every rostersync process first, and keep the damaged file aside)"
                ))
            } else {
                StoreError::Open(format!("cannot open database at {place}: {e}"))
            }
        };
        create_private(path)
            .map_err(|e| StoreError::Open(format!("cannot open database at {place}: {e}")))?;
        let writer = connect(path).map_err(open_err)?;
        let mode: String = writer
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %place, mode, "SQLite would not use WAL mode: readers will wait for writers");
        }
        let reader = reader(path).map_err(open_err)?;
        let store = SqliteStore {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            wal: mode.eq_ignore_ascii_case("wal"),
        };
        store
            .write(|tx| migrate::migrate(tx, &place))
            .map_err(|e| match e {
                StoreError::Database { message: m, .. }
                    if m.contains("not a database") || m.contains("malformed") => {
                    StoreError::Open(format!(
                        "the database file {place} is damaged or not a rostersync database ({m}): restore it from your last backup (stop every rostersync process first, and keep the damaged file aside)"
                    ))
                }
                other => other,
            })?;
        // The WAL and shared-memory files exist now; SQLite gives them the database
        // file's mode, but ones left by an older version may be wider.
        narrow_permissions(path);
        Ok(store)
    }

    /// The database file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a read may run while a write is open ([`crate::Store::reads_beside_writes`]).
    pub(crate) fn reads_beside_writes(&self) -> bool {
        self.wal
    }

    pub(crate) fn write<T>(&self, f: impl FnOnce(&mut dyn Tx) -> Result<T>) -> Result<T> {
        let mut conn = lock(&self.writer);
        // IMMEDIATE takes the write lock up front, so a read-then-write transaction
        // never fails half-way on another writer.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let mut t = SqliteTx { tx };
        let out = f(&mut t)?;
        t.tx.commit().map_err(db)?;
        Ok(out)
    }

    /// A read on the reader connection or, when another read holds it (a sync's read of
    /// every link takes seconds at millions of people), on a connection of its own, so
    /// no read waits for another: the console's pages stay quick during a sync.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&mut dyn Tx) -> Result<T>) -> Result<T> {
        let run = |conn: &mut Connection| {
            let tx = conn.transaction().map_err(db)?;
            let mut t = SqliteTx { tx };
            f(&mut t)
        };
        match free(&self.reader) {
            Some(mut conn) => run(&mut conn),
            None => run(&mut reader(&self.path).map_err(db)?),
        }
    }

    /// A write of `writes` plan items ([`crate::Store::write_wide`]): with a page cache
    /// of `cache` when it is large, the counting triggers paused when it is wide.
    pub(crate) fn write_wide<T>(
        &self,
        writes: usize,
        cache: PageCache,
        f: impl FnOnce(&mut dyn Tx) -> Result<T>,
    ) -> Result<T> {
        self.with_apply_cache(writes, cache, || {
            self.write(|tx| counts::paused_if_wide(tx, writes, f))
        })
    }

    /// Runs an apply of `writes` writing items with a page cache of `cache` if it is large.
    fn with_apply_cache<T>(
        &self,
        writes: usize,
        cache: PageCache,
        apply: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let big = writes > BIG_APPLY;
        let set_cache = |kib: i64| {
            lock(&self.writer)
                .pragma_update(None, "cache_size", -kib)
                .map_err(db)
        };
        if big {
            set_cache(match cache {
                PageCache::Large => BIG_CACHE_KIB,
                PageCache::Lean => LEAN_CACHE_KIB,
            })?;
        }
        let out = apply();
        if big {
            // Gives the memory back; a failure here is not the apply's.
            if let Err(e) = set_cache(DEFAULT_CACHE_KIB) {
                tracing::warn!(error = %e, "could not shrink the SQLite page cache after a large apply");
            }
        }
        out
    }
}

/// Owner-only (0600): the database holds student data and password hashes.
#[cfg(unix)]
const PRIVATE_FILE: u32 = 0o600;

/// Creates a missing database file empty with mode 0600 before SQLite opens it (SQLite
/// would create it under the umask, 0644 usually). An existing file is left to
/// [`narrow_permissions`].
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(PRIVATE_FILE);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Narrows the database file, its `-wal` and its `-shm` to 0600 when group or others
/// may read them (a database made by an older rostersync, or copied in), with a warning.
/// Never fails the open: a file it cannot change (another owner) gets a warning saying
/// what to run.
fn narrow_permissions(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for suffix in ["", "-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            let file = PathBuf::from(name);
            let Ok(meta) = std::fs::metadata(&file) else {
                continue;
            };
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 == 0 {
                continue;
            }
            match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(PRIVATE_FILE)) {
                Ok(()) => tracing::warn!(
                    file = %file.display(),
                    was = format!("{mode:o}"),
                    "the database file was readable by others: narrowed to 0600"
                ),
                Err(e) => tracing::warn!(
                    file = %file.display(),
                    error = %e,
                    "the database file is readable by others and cannot be narrowed: run chmod 600 on it as its owner"
                ),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// A connection that only reads.
fn reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = connect(path)?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(v) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
            Value::Bool(b) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(*b))),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::Blob(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b.as_ref())),
        })
    }
}

crate::sql::impl_row!(rusqlite::Row<'_>, get, db, sqlite_opt_str);

/// A column's text as SQLite holds it, lent; an error for a number or a blob, as
/// `get::<String>` would be.
fn sqlite_opt_str<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> Result<Option<&'r str>> {
    match r.get_ref(i).map_err(db)? {
        ValueRef::Null => Ok(None),
        ValueRef::Text(t) => std::str::from_utf8(t)
            .map(Some)
            .map_err(|e| db(rusqlite::Error::Utf8Error(i, e))),
        _ => r.get::<_, String>(i).map(|_| None).map_err(db),
    }
}

struct SqliteTx<'c> {
    tx: rusqlite::Transaction<'c>,
}

impl SqliteTx<'_> {
    /// Runs `sql` once per key, its `{keys}` marker a `= ?` test: `each` gets the cached
    /// statement and the values to bind, `params` then the key.
    fn per_key(
        &mut self,
        sql: &str,
        params: &[Value<'_>],
        keys: Keys<'_>,
        each: &mut dyn FnMut(&mut rusqlite::CachedStatement<'_>, &[Value<'_>]) -> Result<()>,
    ) -> Result<()> {
        let sql = sql.replace("{keys}", "= ?");
        let mut stmt = self.tx.prepare_cached(&sql).map_err(db)?;
        let mut values: Vec<Value<'_>> = params.to_vec();
        values.push(Value::Null);
        let last = params.len();
        for key in keys.values() {
            values[last] = key;
            each(&mut stmt, &values)?;
        }
        Ok(())
    }

    /// Writes `rows` by the key at positions `key` of their columns: where a stored row
    /// has the key, only the columns at positions `set` whose stored value differs are
    /// updated, and a row equal in all of them is left as it is; where none has it, the
    /// row is inserted whole if `insert`, else left out. Row after row, so a key twice
    /// in `rows` is written twice, as statements one after the other would.
    ///
    /// SQLite rewrites every index over a column an `UPDATE` names, and runs every
    /// trigger `UPDATE OF` it, whether or not its value changed: an upsert naming every
    /// column of a person whose record changed in one rewrote all five of `sis_people`'s
    /// indexes. Reading the stored row first costs a lookup of the pages the write then
    /// finds cached. (PostgreSQL decides from the values itself: its heap-only updates.)
    fn write_changed(
        &mut self,
        rows: &Rows<'_>,
        key: &[usize],
        set: &[usize],
        insert: bool,
    ) -> Result<()> {
        let table = rows.table;
        let failed = |e: rusqlite::Error| StoreError::driver(format!("writing {table}: {e}"), e);
        let named = |at: &[usize], suffix: &str| -> Vec<String> {
            at.iter()
                .map(|i| format!("{}{suffix}", rows.columns[*i]))
                .collect()
        };
        let test = named(key, " = ?").join(" AND ");
        let select = format!(
            "SELECT {} FROM {table} WHERE {test}",
            named(set, "").join(", ")
        );
        let tx = &self.tx;
        let mut stored = tx.prepare_cached(&select).map_err(failed)?;
        let mut inserting = match insert {
            true => Some(tx.prepare_cached(&insert_sql(rows)).map_err(failed)?),
            false => None,
        };
        // One statement for each set of changed columns met.
        let mut updates: HashMap<Vec<usize>, rusqlite::Statement<'_>> = HashMap::new();
        let mut changed: Vec<usize> = Vec::with_capacity(set.len());
        for row in &rows.rows {
            let key_values = || key.iter().map(|i| &row[*i]);
            changed.clear();
            let found = {
                let mut found = stored
                    .query(params_from_iter(key_values()))
                    .map_err(failed)?;
                match found.next().map_err(failed)? {
                    Some(r) => {
                        for (j, i) in set.iter().enumerate() {
                            if !same(r.get_ref(j).map_err(failed)?, &row[*i]) {
                                changed.push(*i);
                            }
                        }
                        true
                    }
                    None => false,
                }
            };
            if !found {
                if let Some(insert) = &mut inserting {
                    insert.execute(params_from_iter(row)).map_err(failed)?;
                }
                continue;
            }
            if changed.is_empty() {
                continue;
            }
            if !updates.contains_key(&changed) {
                let sql = format!(
                    "UPDATE {table} SET {} WHERE {test}",
                    named(&changed, " = ?").join(", ")
                );
                updates.insert(changed.clone(), tx.prepare(&sql).map_err(failed)?);
            }
            if let Some(update) = updates.get_mut(&changed) {
                let values = changed.iter().map(|i| &row[*i]).chain(key_values());
                update.execute(params_from_iter(values)).map_err(failed)?;
            }
        }
        Ok(())
    }

    fn run_each(
        &mut self,
        sql: &str,
        table: &str,
        rows: &mut dyn Iterator<Item = Vec<&Value<'_>>>,
    ) -> Result<()> {
        let mut stmt = self.tx.prepare_cached(sql).map_err(db)?;
        for row in rows {
            stmt.execute(params_from_iter(row))
                .map_err(|e| StoreError::driver(format!("writing {table}: {e}"), e))?;
        }
        Ok(())
    }
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// `INSERT` of every column of `rows`.
fn insert_sql(rows: &Rows<'_>) -> String {
    format!(
        "INSERT INTO {} ({}) VALUES ({})",
        rows.table,
        rows.columns.join(", "),
        placeholders(rows.columns.len())
    )
}

/// Whether SQLite holds `new` as `stored` already: the value it would be bound as (its
/// `ToSql`) is the stored one, type and all. Anything else (a number bound as text, say)
/// is written again, which is never wrong.
fn same(stored: ValueRef<'_>, new: &Value<'_>) -> bool {
    use rusqlite::ToSql as _;
    matches!(new.to_sql(), Ok(ToSqlOutput::Borrowed(bound)) if bound == stored)
}

impl Tx for SqliteTx<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn execute_batch(&mut self, sql: &str) -> Result<()> {
        self.tx.execute_batch(sql).map_err(db)
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        let mut stmt = self.tx.prepare_cached(sql).map_err(db)?;
        let n = stmt.execute(params_from_iter(params)).map_err(db)?;
        Ok(n as u64)
    }

    fn for_each(
        &mut self,
        sql: &str,
        params: &[Value],
        f: &mut dyn FnMut(&dyn Row) -> Result<()>,
    ) -> Result<()> {
        let mut stmt = self.tx.prepare_cached(sql).map_err(db)?;
        let mut rows = stmt.query(params_from_iter(params)).map_err(db)?;
        while let Some(row) = rows.next().map_err(db)? {
            f(row)?;
        }
        Ok(())
    }

    fn for_each_in(
        &mut self,
        sql: &str,
        params: &[Value<'_>],
        keys: Keys<'_>,
        f: &mut dyn FnMut(&dyn Row) -> Result<()>,
    ) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        self.per_key(sql, params, keys, &mut |stmt, values| {
            let mut rows = stmt.query(params_from_iter(values)).map_err(db)?;
            while let Some(row) = rows.next().map_err(db)? {
                f(row)?;
            }
            Ok(())
        })
    }

    fn execute_in(&mut self, sql: &str, params: &[Value<'_>], keys: Keys<'_>) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        let mut changed = 0;
        self.per_key(sql, params, keys, &mut |stmt, values| {
            changed += stmt.execute(params_from_iter(values)).map_err(db)? as u64;
            Ok(())
        })?;
        Ok(changed)
    }

    fn delete_rows(&mut self, rows: &Rows<'_>) -> Result<()> {
        let test: Vec<String> = rows.columns.iter().map(|c| format!("{c} = ?")).collect();
        let sql = format!("DELETE FROM {} WHERE {}", rows.table, test.join(" AND "));
        self.run_each(
            &sql,
            rows.table,
            &mut rows.rows.iter().map(|r| r.iter().collect()),
        )
    }

    fn insert_rows(&mut self, rows: &Rows<'_>) -> Result<()> {
        self.run_each(
            &insert_sql(rows),
            rows.table,
            &mut rows.rows.iter().map(|r| r.iter().collect()),
        )
    }

    fn update_rows_by(&mut self, rows: &Rows<'_>, key: usize) -> Result<()> {
        if rows.columns.len() <= key {
            return Ok(());
        }
        let keys: Vec<usize> = (0..key).collect();
        let set: Vec<usize> = (key..rows.columns.len()).collect();
        self.write_changed(rows, &keys, &set, false)
    }

    fn upsert_rows(&mut self, rows: &Rows<'_>, conflict: &[&str], update: &[&str]) -> Result<()> {
        let at = |names: &[&str]| -> Result<Vec<usize>> {
            names
                .iter()
                .map(|n| {
                    rows.columns.iter().position(|c| c == n).ok_or_else(|| {
                        StoreError::database(format!(
                            "writing {}: column {n} is not among the rows' columns",
                            rows.table
                        ))
                    })
                })
                .collect()
        };
        self.write_changed(rows, &at(conflict)?, &at(update)?, true)
    }

    fn allocate_ids(&mut self, table: &str, n: usize) -> Result<Vec<i64>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        // Safe: the write transaction holds SQLite's only write lock until commit.
        let max: i64 = self
            .tx
            .query_row(
                &format!("SELECT COALESCE(MAX(id), 0) FROM {table}"),
                [],
                |r| r.get(0),
            )
            .map_err(db)?;
        let n = i64::try_from(n).map_err(|_| StoreError::database("too many ids requested"))?;
        Ok((max + 1..=max + n).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Upserts and updates write only what changed: a row equal to the stored one is not
    /// written (no `UPDATE OF` trigger runs for it), and the table ends as the plain
    /// statements would leave it.
    #[test]
    fn writes_name_only_the_columns_that_changed() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (k TEXT PRIMARY KEY, a TEXT, b INTEGER, c BOOLEAN);
             CREATE TABLE fired (col TEXT, k TEXT);
             CREATE TRIGGER t_a AFTER UPDATE OF a ON t BEGIN INSERT INTO fired VALUES ('a', NEW.k); END;
             CREATE TRIGGER t_b AFTER UPDATE OF b ON t BEGIN INSERT INTO fired VALUES ('b', NEW.k); END;
             CREATE TRIGGER t_c AFTER UPDATE OF c ON t BEGIN INSERT INTO fired VALUES ('c', NEW.k); END;
             INSERT INTO t VALUES ('same', 'x', 1, TRUE), ('new-a', 'x', 1, TRUE),
                                  ('new-b', 'x', 1, FALSE), ('absent-a', NULL, 2, NULL);",
        )
        .unwrap();
        const COLUMNS: [&str; 4] = ["k", "a", "b", "c"];
        let row = |k: &'static str, a: Option<&'static str>, b: i64, c: bool| {
            vec![k.into(), a.into(), Value::Int(b), Value::Bool(c)]
        };
        let state = |conn: &Connection, sql: &str| -> Vec<String> {
            let mut stmt = conn.prepare(sql).unwrap();
            stmt.query_map([], |r| {
                Ok((0..r.as_ref().column_count())
                    .map(|i| format!("{:?}", r.get::<_, rusqlite::types::Value>(i).unwrap()))
                    .collect::<Vec<_>>()
                    .join("|"))
            })
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
        };
        {
            let mut tx = SqliteTx {
                tx: conn.transaction().unwrap(),
            };
            let mut rows = Rows::new("t", &COLUMNS);
            rows.push(row("same", Some("x"), 1, true));
            rows.push(row("new-a", Some("y"), 1, true));
            rows.push(row("new-b", Some("x"), 3, false));
            rows.push(row("absent-a", Some("z"), 2, false));
            rows.push(row("fresh", None, 4, true));
            // A key twice: the second write sees the first.
            rows.push(row("fresh", Some("w"), 4, true));
            tx.upsert_rows(&rows, &["k"], &["a", "b", "c"]).unwrap();
            // An update by key leaves out a key nobody has, and writes nothing equal.
            let mut updates = Rows::new("t", &COLUMNS);
            updates.push(row("same", Some("x"), 1, true));
            updates.push(row("nobody", Some("q"), 9, true));
            updates.push(row("new-b", Some("x"), 3, true));
            tx.update_rows(&updates).unwrap();
            tx.tx.commit().unwrap();
        }
        assert_eq!(
            state(&conn, "SELECT k, a, b, c FROM t ORDER BY k"),
            [
                "Text(\"absent-a\")|Text(\"z\")|Integer(2)|Integer(0)",
                "Text(\"fresh\")|Text(\"w\")|Integer(4)|Integer(1)",
                "Text(\"new-a\")|Text(\"y\")|Integer(1)|Integer(1)",
                "Text(\"new-b\")|Text(\"x\")|Integer(3)|Integer(1)",
                "Text(\"same\")|Text(\"x\")|Integer(1)|Integer(1)",
            ]
        );
        // `same` never fired; `absent-a` changed a (NULL to z) and c (NULL to 0) but not
        // b; `fresh` was inserted, then changed in a only.
        assert_eq!(
            state(&conn, "SELECT col, k FROM fired ORDER BY k, col"),
            [
                "Text(\"a\")|Text(\"absent-a\")",
                "Text(\"c\")|Text(\"absent-a\")",
                "Text(\"a\")|Text(\"fresh\")",
                "Text(\"a\")|Text(\"new-a\")",
                "Text(\"b\")|Text(\"new-b\")",
                "Text(\"c\")|Text(\"new-b\")",
            ]
        );
    }

    #[test]
    fn text_is_lent_as_owned_text_is_read() {
        let conn = Connection::open_in_memory().unwrap();
        let mut stmt = conn
            .prepare("SELECT 'café', NULL, 7, '2026-12-05T01:02:03.5Z'")
            .unwrap();
        let mut rows = stmt.query([]).unwrap();
        let row: &dyn Row = rows.next().unwrap().unwrap();
        assert_eq!(row.opt_str(0).unwrap(), Some("café"));
        assert_eq!(row.str(0).unwrap(), row.text(0).unwrap());
        assert_eq!(row.opt_str(1).unwrap(), None);
        // Where `text` refuses, so do the lent reads.
        assert!(row.text(1).is_err() && row.str(1).is_err());
        assert!(row.text(2).is_err() && row.opt_str(2).is_err());
        assert_eq!(
            row.ts(3).unwrap(),
            "2026-12-05T01:02:03.5Z".parse::<jiff::Timestamp>().unwrap()
        );
        assert_eq!(row.opt_ts(1).unwrap(), None);
    }

    /// A large write takes the page cache it asks for and gives it back after; a small
    /// one keeps SQLite's default.
    #[test]
    fn a_large_write_takes_the_page_cache_it_asks_for() {
        let dir = test_kit::TempDir::new("page-cache");
        let store = SqliteStore::open(&dir.join("rostersync.db")).unwrap();
        let cache = |store: &SqliteStore| -> i64 {
            lock(&store.writer)
                .pragma_query_value(None, "cache_size", |r| r.get(0))
                .unwrap()
        };
        for (writes, asked, kib) in [
            (BIG_APPLY + 1, PageCache::Large, BIG_CACHE_KIB),
            (BIG_APPLY + 1, PageCache::Lean, LEAN_CACHE_KIB),
            (BIG_APPLY, PageCache::Large, DEFAULT_CACHE_KIB),
        ] {
            let during = store
                .with_apply_cache(writes, asked, || Ok(cache(&store)))
                .unwrap();
            assert_eq!(during, -kib, "{writes} writes, {asked:?}");
            assert_eq!(cache(&store), -DEFAULT_CACHE_KIB, "after {asked:?}");
        }
    }
}
