//! The SQLite backend: the default, one file in the data directory, nothing to install.
//!
//! WAL journal with `synchronous=NORMAL` (a crash loses at most the last commits, never
//! consistency), foreign keys on, a busy timeout so a second process waits instead of
//! failing. One writer connection (SQLite has one writer anyway) and one reader, each
//! behind a mutex: reads see the last commit and never wait for a long apply. Bulk
//! writes are cached prepared statements with `?` placeholders executed row by row,
//! which in SQLite is as fast as it gets (no round trips to save).
//!
//! The file holds student data and password hashes: it is created 0600 before SQLite
//! opens it (whatever the umask), SQLite gives its `-wal` and `-shm` the same mode, and
//! wider modes left by older versions are narrowed on open.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, TransactionBehavior, params_from_iter};

use crate::sql::{Dialect, Keys, Row, Rows, Tx, Value};
use crate::{Result, StoreError, counts, migrate};

/// How long a statement waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// Page cache for large applies (256 MiB; SQLite's default is 2 MiB). Negative: KiB.
const BIG_CACHE_KIB: i64 = 256 * 1024;
const DEFAULT_CACHE_KIB: i64 = 2 * 1024;
/// Plans with more writes than this get the big cache.
const BIG_APPLY: usize = 20_000;

/// The SQLite store. Blocking: call it from plain threads (`spawn_blocking` in async code).
#[derive(Debug)]
pub(crate) struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::driver(e.to_string(), e)
}

fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic inside a transaction dropped (rolled back) it: the connection is fine.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
        let reader = connect(path).map_err(open_err)?;
        reader
            .pragma_update(None, "query_only", true)
            .map_err(open_err)?;
        let store = SqliteStore {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
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

    pub(crate) fn read<T>(&self, f: impl FnOnce(&mut dyn Tx) -> Result<T>) -> Result<T> {
        let mut conn = lock(&self.reader);
        let tx = conn.transaction().map_err(db)?;
        let mut t = SqliteTx { tx };
        f(&mut t)
    }

    /// A write of `writes` plan items ([`crate::Store::write_wide`]): with a larger page
    /// cache when it is large, the counting triggers paused when it is wide.
    pub(crate) fn write_wide<T>(
        &self,
        writes: usize,
        f: impl FnOnce(&mut dyn Tx) -> Result<T>,
    ) -> Result<T> {
        self.with_apply_cache(writes, || {
            self.write(|tx| counts::paused_if_wide(tx, writes, f))
        })
    }

    /// Runs an apply of `writes` writing items with a larger page cache if it is large.
    fn with_apply_cache<T>(&self, writes: usize, apply: impl FnOnce() -> Result<T>) -> Result<T> {
        let big = writes > BIG_APPLY;
        let set_cache = |kib: i64| {
            lock(&self.writer)
                .pragma_update(None, "cache_size", -kib)
                .map_err(db)
        };
        if big {
            set_cache(BIG_CACHE_KIB)?;
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
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            rows.table,
            rows.columns.join(", "),
            placeholders(rows.columns.len())
        );
        self.run_each(
            &sql,
            rows.table,
            &mut rows.rows.iter().map(|r| r.iter().collect()),
        )
    }

    fn update_rows_by(&mut self, rows: &Rows<'_>, key: usize) -> Result<()> {
        if rows.columns.len() <= key {
            return Ok(());
        }
        let (keys, columns) = rows.columns.split_at(key);
        let set: Vec<String> = columns.iter().map(|c| format!("{c} = ?")).collect();
        let test: Vec<String> = keys.iter().map(|c| format!("{c} = ?")).collect();
        let sql = format!(
            "UPDATE {} SET {} WHERE {}",
            rows.table,
            set.join(", "),
            test.join(" AND ")
        );
        // The key is first in the row and last in the statement.
        self.run_each(
            &sql,
            rows.table,
            &mut rows
                .rows
                .iter()
                .map(|r| r.iter().skip(key).chain(r.iter().take(key)).collect()),
        )
    }

    fn upsert_rows(&mut self, rows: &Rows<'_>, conflict: &[&str], update: &[&str]) -> Result<()> {
        let set: Vec<String> = update
            .iter()
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) DO UPDATE SET {}",
            rows.table,
            rows.columns.join(", "),
            placeholders(rows.columns.len()),
            conflict.join(", "),
            set.join(", ")
        );
        self.run_each(
            &sql,
            rows.table,
            &mut rows.rows.iter().map(|r| r.iter().collect()),
        )
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
}
