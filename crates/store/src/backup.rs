//! Backup and restore: everything the store keeps as one portable file of JSON lines, read
//! in one read transaction (a consistent snapshot while `serve` writes) and restored into
//! an empty database of either backend in one write transaction.
//!
//! The file (UTF-8, one JSON document per `\n`-ended line):
//!
//! 1. a header: format name and version, the schema version, when, from which backend,
//!    the master key's check value (never the key) and the tables, in file order;
//! 2. per table, in [`TABLES`] order (parents before children), a line naming the table
//!    and its columns, then one JSON array per row: integers as numbers, text as
//!    strings, booleans as `true`/`false`, blobs as `{"b64": …}`, NULL as `null`;
//! 3. an end line with the number of rows and the SHA-256 of every byte before it.
//!
//! Columns come from the live schema, so a column a later migration adds is carried
//! without a change here; values are read and written by each column's declared type on
//! the backend at hand (PostgreSQL's BOOLEAN columns are SQLite INTEGER 0/1 columns).
//! Restore reads the file twice, never holding it: once to check the header, the structure
//! and the checksum before anything is written ([`verify_backup`]), then to insert in
//! batches through the bulk writers ([`crate::Store::restore_checked`], which takes the
//! first pass's [`BackupInfo`] instead of reading the file a third time).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{BufRead, Write};
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jiff::Timestamp;
use ring::digest;
use serde::{Deserialize, Serialize};

use crate::keyring::{CHECK_META_KEY, Keyring};
use crate::sql::{Dialect, Rows, Tx, Value, query_opt, query_vec, ts};
use crate::{Result, SCHEMA_VERSION, StoreError, settings};

/// The header's `format`.
pub const BACKUP_FORMAT: &str = "rostersync-backup";
/// The file format this build writes, and the newest it reads.
pub const BACKUP_VERSION: u64 = 1;

/// Every table a backup carries, in the order it writes and restores them: each after
/// the tables its foreign keys point to. The one self-reference (`users.merged_into`) is
/// restored in a second step ([`DEFERRED`]).
const TABLES: &[&str] = &[
    "meta",
    "locations",
    "runs",
    "held_plan_parts",
    "users",
    "field_provenance",
    "sis_links",
    "aliases",
    "groups",
    "group_members",
    "sources",
    "settings",
    "run_items",
    "revisions",
    "audit_log",
    "link_refusals",
    "source_state",
    "guardian_relationships",
    "calendars",
    "sis_orgs",
    "sis_people",
    "rooms",
    "console_accounts",
    "console_sessions",
    "api_tokens",
    "match_decisions",
    "review_cases",
    "kept_apart",
    "saved_views",
    "targets",
    "push_state",
    "push_groups",
    "scim_resources",
];

/// Tables a backup leaves out: `run_locks` holds the locks of processes running on the
/// backed-up installation (SQLite only), which mean nothing anywhere else;
/// `account_counts` and `location_counts` are derived from the accounts, links, people and
/// provenance, `run_item_counts` from the run items, `duplicate_keys` and
/// `duplicate_key_counts` from the accounts' keys, `unlinked_accounts` from the accounts and
/// links; a restore counts them again. `listed_skips` only spares later runs listing the
/// same skips again: after a restore the next full pull lists them once more.
const NOT_BACKED_UP: &[&str] = &[
    "run_locks",
    "account_counts",
    "location_counts",
    "run_item_counts",
    "duplicate_keys",
    "duplicate_key_counts",
    "unlinked_accounts",
    "listed_skips",
];

/// Every table of a directory, each after the tables its foreign keys point to: those a
/// backup carries, then the derived ones (`run_locks` left out: it holds the running
/// processes' locks). `rostersync bench --floor` copies a directory in this order.
pub fn tables_in_write_order() -> impl Iterator<Item = &'static str> {
    TABLES
        .iter()
        .chain(NOT_BACKED_UP)
        .copied()
        .filter(|t| *t != "run_locks")
}

/// `meta` keys that belong to the database, not to the directory: written by the
/// migrations, never restored.
const INSTANCE_META: &[&str] = &["schema_version"];

/// Columns that point into their own table, with the table's key: restored as NULL, then
/// set once the whole table is in (a merged account may point to a later one).
const DEFERRED: &[(&str, &[&str])] = &[("users", &["id", "merged_into"])];

/// Rows per bulk insert, and the most text one batch may hold.
const BATCH_ROWS: usize = 2_000;
const BATCH_BYTES: usize = 8 << 20;
/// Rows between two progress reports.
const PROGRESS_EVERY: u64 = 10_000;

/// The first line of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupHeader {
    /// [`BACKUP_FORMAT`].
    pub format: String,
    /// The file format's version ([`BACKUP_VERSION`] when written by this build).
    pub version: u64,
    /// The schema version of the database it was taken from.
    pub schema_version: i64,
    /// When it was taken (RFC 3339, UTC).
    pub created_at: String,
    /// `sqlite` or `postgres`: the backend it was taken from.
    pub backend: String,
    /// The master key's check value stored in the database (`meta.master_key_check`), so
    /// a restore can tell a wrong key before writing; `None` for a database never
    /// initialised with a key.
    pub key_check: Option<String>,
    /// The tables in the file, in order.
    pub tables: Vec<String>,
}

impl BackupHeader {
    /// A short name for the master key the backup's secrets need: the first 8 bytes of
    /// the SHA-256 of its check value, in hex. The same database gives every backup the
    /// same fingerprint; it says nothing about the key itself.
    pub fn key_fingerprint(&self) -> Option<String> {
        self.key_check.as_deref().map(fingerprint)
    }

    /// Refuses (`Conflict`) a key that cannot open the backup's secrets: its check value
    /// does not verify with `key`. A backup without a check value takes any key.
    pub fn check_key(&self, key: &Keyring) -> Result<()> {
        match &self.key_check {
            Some(check) if !key.verify(check) => Err(StoreError::Conflict(format!(
                "this backup's secrets are sealed with another master key (fingerprint {}): start with the key the backed-up installation used (its data dir's key file or ROSTERSYNC_MASTER_KEY)",
                fingerprint(check)
            ))),
            _ => Ok(()),
        }
    }
}

fn fingerprint(check: &str) -> String {
    hex(&digest::digest(&digest::SHA256, check.as_bytes()).as_ref()[..8])
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A table line: the table and its columns, in row order.
#[derive(Debug, Serialize, Deserialize)]
struct TableLine {
    table: String,
    columns: Vec<String>,
}

/// The last line.
#[derive(Debug, Serialize, Deserialize)]
struct EndLine {
    end: bool,
    rows: u64,
    sha256: String,
}

/// One table of a checked backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupTable {
    pub name: String,
    pub columns: Vec<String>,
    pub rows: u64,
}

/// A backup file that passed [`verify_backup`]: its header, its tables, its size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupInfo {
    pub header: BackupHeader,
    pub tables: Vec<BackupTable>,
    /// Rows in every table.
    pub rows: u64,
    /// The file's length.
    pub bytes: u64,
    /// The SHA-256 (hex) of everything before the end line, as checked: the restore pass
    /// must read the same.
    pub sha256: String,
}

/// What [`crate::Store::backup`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupSummary {
    pub tables: usize,
    pub rows: u64,
    pub bytes: u64,
    pub schema_version: i64,
    /// See [`BackupHeader::key_fingerprint`].
    pub key_fingerprint: Option<String>,
}

/// What [`crate::Store::restore`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestoreSummary {
    pub tables: usize,
    pub rows: u64,
    pub bytes: u64,
    /// The backup's schema version (columns this database has and it lacks got their
    /// defaults).
    pub schema_version: i64,
    /// The backend the backup was taken from.
    pub from_backend: String,
    /// When the backup was taken.
    pub created_at: String,
}

/// Which pass a [`BackupProgress`] reports on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupStep {
    /// Writing a backup.
    Backup,
    /// Reading a backup to check it, before anything is written.
    Check,
    /// Restoring it.
    Restore,
}

/// How far a backup or a restore is: at each table's start and every few thousand rows.
#[derive(Debug, Clone, Copy)]
pub struct BackupProgress<'a> {
    pub step: BackupStep,
    pub table: &'a str,
    /// Rows of this table so far.
    pub table_rows: u64,
    /// Rows of every table so far.
    pub rows: u64,
}

impl fmt::Display for BackupProgress<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let step = match self.step {
            BackupStep::Backup => "backing up",
            BackupStep::Check => "checking",
            BackupStep::Restore => "restoring",
        };
        write!(
            f,
            "{step} {}: {} rows ({} in all)",
            self.table, self.table_rows, self.rows
        )
    }
}

/// A progress callback.
pub type Progress<'p> = &'p mut dyn FnMut(&BackupProgress<'_>);

// ----- the live schema

/// How a column's values are read and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Bool,
    Text,
    Blob,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::Int => "an integer",
            Kind::Bool => "a boolean",
            Kind::Text => "text",
            Kind::Blob => "bytes ({\"b64\": …})",
        }
    }
}

#[derive(Debug)]
struct Column {
    name: &'static str,
    kind: Kind,
}

#[derive(Debug, Default)]
struct TableSchema {
    columns: Vec<Column>,
    /// The primary key's columns, in key order.
    key: Vec<String>,
    /// The identity column (PostgreSQL: its sequence is reset after a restore).
    identity: Option<&'static str>,
}

impl TableSchema {
    fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// Plain lower-case SQL names only: every name here is written into SQL text.
fn plain_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Names as the bulk writers take them (`&'static str`): each distinct name, and each
/// distinct list of names, is leaked once per process, so what this keeps is bounded by
/// the schema's size however many restores run.
fn intern(name: &str) -> &'static str {
    static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut names = NAMES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(n) = names.get(name) {
        return n;
    }
    let n: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(n);
    n
}

fn intern_list(list: &[&'static str]) -> &'static [&'static str] {
    static LISTS: Mutex<BTreeSet<&'static [&'static str]>> = Mutex::new(BTreeSet::new());
    let mut lists = LISTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(l) = lists.get(list) {
        return l;
    }
    let l: &'static [&'static str] = Box::leak(list.to_vec().into_boxed_slice());
    lists.insert(l);
    l
}

fn unknown_type(table: &str, column: &str, ty: &str) -> StoreError {
    StoreError::Corrupt(format!(
        "the column {table}.{column} has the type {ty}, which backup and restore do not know"
    ))
}

/// Every table of the database with its columns (in column order), primary key and
/// identity column.
fn schema(tx: &mut dyn Tx) -> Result<BTreeMap<String, TableSchema>> {
    let mut tables: BTreeMap<String, TableSchema> = BTreeMap::new();
    match tx.dialect() {
        Dialect::Sqlite => {
            let rows = query_vec(
                tx,
                "SELECT m.name, p.name, p.type, p.pk FROM sqlite_master m JOIN pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY m.name, p.cid",
                &[],
                |r| Ok((r.text(0)?, r.text(1)?, r.text(2)?, r.i64(3)?)),
            )?;
            let mut keys: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
            for (table, column, ty, pk) in rows {
                let upper = ty.to_ascii_uppercase();
                let kind = if upper.contains("INT") {
                    Kind::Int
                } else if upper.contains("TEXT") || upper.contains("CHAR") || upper.contains("CLOB")
                {
                    Kind::Text
                } else if upper == "BLOB" {
                    Kind::Blob
                } else {
                    return Err(unknown_type(&table, &column, &ty));
                };
                if pk > 0 {
                    keys.entry(table.clone())
                        .or_default()
                        .push((pk, column.clone()));
                }
                tables.entry(table).or_default().columns.push(Column {
                    name: intern(&column),
                    kind,
                });
            }
            for (table, mut key) in keys {
                key.sort();
                if let Some(t) = tables.get_mut(&table) {
                    t.key = key.into_iter().map(|(_, c)| c).collect();
                }
            }
        }
        Dialect::Postgres => {
            let rows = query_vec(
                tx,
                "SELECT CAST(c.table_name AS TEXT), CAST(c.column_name AS TEXT), CAST(c.data_type AS TEXT), \
                 CAST(c.is_identity AS TEXT) \
                 FROM information_schema.columns c JOIN information_schema.tables t \
                 ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
                 WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' \
                 ORDER BY c.table_name, c.ordinal_position",
                &[],
                |r| Ok((r.text(0)?, r.text(1)?, r.text(2)?, r.text(3)?)),
            )?;
            for (table, column, ty, identity) in rows {
                let kind = match ty.as_str() {
                    "bigint" | "integer" | "smallint" => Kind::Int,
                    "boolean" => Kind::Bool,
                    "text" | "character varying" | "character" => Kind::Text,
                    "bytea" => Kind::Blob,
                    _ => return Err(unknown_type(&table, &column, &ty)),
                };
                let t = tables.entry(table).or_default();
                let name = intern(&column);
                if identity == "YES" {
                    t.identity = Some(name);
                }
                t.columns.push(Column { name, kind });
            }
            let keys = query_vec(
                tx,
                "SELECT CAST(k.table_name AS TEXT), CAST(k.column_name AS TEXT) \
                 FROM information_schema.table_constraints c JOIN information_schema.key_column_usage k \
                 ON k.constraint_schema = c.constraint_schema AND k.constraint_name = c.constraint_name \
                 AND k.table_name = c.table_name \
                 WHERE c.constraint_type = 'PRIMARY KEY' AND c.table_schema = current_schema() \
                 ORDER BY k.table_name, k.ordinal_position",
                &[],
                |r| Ok((r.text(0)?, r.text(1)?)),
            )?;
            for (table, column) in keys {
                if let Some(t) = tables.get_mut(&table) {
                    t.key.push(column);
                }
            }
        }
    }
    for (name, t) in &tables {
        let bad = std::iter::once(name.as_str())
            .chain(t.columns.iter().map(|c| c.name))
            .find(|n| !plain_name(n));
        if let Some(bad) = bad {
            return Err(StoreError::Corrupt(format!(
                "the database has a table or column named '{bad}', which backup and restore do not know"
            )));
        }
    }
    Ok(tables)
}

// ----- backup

/// Writes through to `out`, hashing and counting every byte.
struct Hashing<'a> {
    out: &'a mut dyn Write,
    sha: digest::Context,
    bytes: u64,
}

impl Hashing<'_> {
    fn line<T: Serialize>(&mut self, value: &T) -> Result<()> {
        serde_json::to_writer(&mut *self, value)
            .map_err(|e| write_failed(&std::io::Error::from(e)))?;
        self.write_all(b"\n").map_err(|e| write_failed(&e))
    }
}

impl Write for Hashing<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.sha.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

fn write_failed(e: &std::io::Error) -> StoreError {
    StoreError::Invalid(format!("cannot write the backup: {e}"))
}

/// The SELECT list reading `column` as its kind's [`crate::sql::Row`] method expects.
fn select_expr(dialect: Dialect, c: &Column) -> String {
    match (dialect, c.kind) {
        (Dialect::Postgres, Kind::Int) => format!("CAST({} AS BIGINT)", c.name),
        (Dialect::Postgres, Kind::Bool) => format!("CAST(CAST({} AS INTEGER) AS BIGINT)", c.name),
        _ => c.name.to_owned(),
    }
}

/// Writes the backup of everything `tx` sees to `out` (see the module's documentation).
pub(crate) fn backup(
    tx: &mut dyn Tx,
    backend: &str,
    out: &mut dyn Write,
    now: Timestamp,
    progress: Progress<'_>,
) -> Result<BackupSummary> {
    let schema = schema(tx)?;
    if let Some(extra) = schema
        .keys()
        .find(|t| !TABLES.contains(&t.as_str()) && !NOT_BACKED_UP.contains(&t.as_str()))
    {
        return Err(StoreError::Corrupt(format!(
            "the database has a table {extra} that this rostersync does not back up: use the rostersync release that made it"
        )));
    }
    if let Some(missing) = TABLES.iter().find(|t| !schema.contains_key(**t)) {
        return Err(StoreError::Corrupt(format!(
            "the database has no table {missing}: it is not a rostersync database of schema version {SCHEMA_VERSION}"
        )));
    }
    let key_check = settings::meta_get(tx, CHECK_META_KEY)?;
    let header = BackupHeader {
        format: BACKUP_FORMAT.into(),
        version: BACKUP_VERSION,
        schema_version: SCHEMA_VERSION,
        created_at: ts(now),
        backend: backend.into(),
        key_check,
        tables: TABLES.iter().map(|t| (*t).to_owned()).collect(),
    };
    let mut w = Hashing {
        out,
        sha: digest::Context::new(&digest::SHA256),
        bytes: 0,
    };
    w.line(&header)?;
    let dialect = tx.dialect();
    let mut total = 0u64;
    for table in TABLES {
        let t = &schema[*table];
        w.line(&TableLine {
            table: (*table).to_owned(),
            columns: t.columns.iter().map(|c| c.name.to_owned()).collect(),
        })?;
        let exprs: Vec<String> = t.columns.iter().map(|c| select_expr(dialect, c)).collect();
        let mut sql = format!("SELECT {} FROM {table}", exprs.join(", "));
        if !t.key.is_empty() {
            sql.push_str(&format!(" ORDER BY {}", t.key.join(", ")));
        }
        let mut rows = 0u64;
        progress(&BackupProgress {
            step: BackupStep::Backup,
            table,
            table_rows: 0,
            rows: total,
        });
        tx.for_each(&sql, &[], &mut |r| {
            let mut values = Vec::with_capacity(t.columns.len());
            for (i, c) in t.columns.iter().enumerate() {
                values.push(match c.kind {
                    Kind::Int => r.opt_i64(i)?.map_or(serde_json::Value::Null, Into::into),
                    Kind::Bool => r
                        .opt_i64(i)?
                        .map_or(serde_json::Value::Null, |v| (v != 0).into()),
                    Kind::Text => r.opt_text(i)?.map_or(serde_json::Value::Null, Into::into),
                    Kind::Blob => r.opt_blob(i)?.map_or(
                        serde_json::Value::Null,
                        |b| serde_json::json!({"b64": STANDARD.encode(b)}),
                    ),
                });
            }
            w.line(&values)?;
            rows += 1;
            if rows.is_multiple_of(PROGRESS_EVERY) {
                progress(&BackupProgress {
                    step: BackupStep::Backup,
                    table,
                    table_rows: rows,
                    rows: total + rows,
                });
            }
            Ok(())
        })?;
        total += rows;
    }
    let sha256 = hex(w.sha.clone().finish().as_ref());
    w.line(&EndLine {
        end: true,
        rows: total,
        sha256,
    })?;
    w.flush().map_err(|e| write_failed(&e))?;
    Ok(BackupSummary {
        tables: TABLES.len(),
        rows: total,
        bytes: w.bytes,
        schema_version: header.schema_version,
        key_fingerprint: header.key_fingerprint(),
    })
}

// ----- checking a backup

fn read_failed(e: &std::io::Error) -> StoreError {
    StoreError::Invalid(format!("cannot read the backup: {e}"))
}

fn truncated() -> StoreError {
    StoreError::Invalid(
        "the backup is truncated: it ends before its end line (an interrupted copy, or a full disk when it was written); nothing was restored"
            .into(),
    )
}

fn damaged(why: &str) -> StoreError {
    StoreError::Invalid(format!(
        "the backup is damaged ({why}); nothing was restored"
    ))
}

/// Reads one `\n`-ended line into `line` (cleared first); `false` at the end of the file.
fn next_line(input: &mut dyn BufRead, line: &mut Vec<u8>) -> Result<bool> {
    line.clear();
    let n = input.read_until(b'\n', line).map_err(|e| read_failed(&e))?;
    if n == 0 {
        return Ok(false);
    }
    if line.last() != Some(&b'\n') {
        return Err(truncated());
    }
    Ok(true)
}

/// The header line, refused when it is no backup's or a newer build's.
fn parse_header(line: &[u8]) -> Result<BackupHeader> {
    let not_backup = || {
        StoreError::Invalid(format!(
            "this is not a rostersync backup (its first line is not a {BACKUP_FORMAT} header)"
        ))
    };
    let value: serde_json::Value = serde_json::from_slice(line).map_err(|_| not_backup())?;
    if value.get("format").and_then(serde_json::Value::as_str) != Some(BACKUP_FORMAT) {
        return Err(not_backup());
    }
    let version = value
        .get("version")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(not_backup)?;
    if version > BACKUP_VERSION {
        return Err(StoreError::Invalid(format!(
            "this backup was written by a newer rostersync (backup format {version}): use that release or newer"
        )));
    }
    let header: BackupHeader = serde_json::from_value(value)
        .map_err(|e| damaged(&format!("its header does not read: {e}")))?;
    if header.schema_version > SCHEMA_VERSION {
        return Err(StoreError::Invalid(format!(
            "this backup was written by a newer rostersync (schema version {}): use that release or newer",
            header.schema_version
        )));
    }
    Ok(header)
}

/// Reads a whole backup and checks it: the header (format, version, schema version), the
/// structure (tables as the header lists them, rows inside tables, an end line last) and
/// the checksum and row count of the end line. Nothing is written anywhere; `input` is
/// read to its end.
pub fn verify_backup(input: &mut dyn BufRead, progress: Progress<'_>) -> Result<BackupInfo> {
    let mut line = Vec::new();
    if !next_line(input, &mut line)? {
        return Err(StoreError::Invalid(
            "the backup is empty: this is not a rostersync backup".into(),
        ));
    }
    let header = parse_header(&line)?;
    let mut sha = digest::Context::new(&digest::SHA256);
    sha.update(&line);
    let mut bytes = line.len() as u64;
    let mut tables: Vec<BackupTable> = Vec::new();
    let mut rows = 0u64;
    // The first thing wrong with the structure: said unless the checksum says more.
    let mut problem: Option<String> = None;
    let checked: String;
    loop {
        if !next_line(input, &mut line)? {
            return Err(truncated());
        }
        bytes += line.len() as u64;
        if line.starts_with(b"{\"end\"") {
            let end: EndLine = serde_json::from_slice(&line)
                .map_err(|e| damaged(&format!("its end line does not read: {e}")))?;
            let sha256 = hex(sha.finish().as_ref());
            if end.sha256 != sha256 {
                return Err(damaged("its SHA-256 checksum does not match its content"));
            }
            checked = sha256;
            if problem.is_none() && end.rows != rows {
                problem = Some(format!(
                    "its end line counts {} rows, it holds {rows}",
                    end.rows
                ));
            }
            if problem.is_none() && next_line(input, &mut line)? {
                problem = Some("there is more after its end line".into());
            }
            if problem.is_none() && !end.end {
                problem = Some("its end line is not one".into());
            }
            break;
        }
        sha.update(&line);
        match line.first() {
            Some(b'[') => match tables.last_mut() {
                Some(t) => {
                    t.rows += 1;
                    rows += 1;
                    if t.rows.is_multiple_of(PROGRESS_EVERY) {
                        progress(&BackupProgress {
                            step: BackupStep::Check,
                            table: &t.name,
                            table_rows: t.rows,
                            rows,
                        });
                    }
                }
                None => {
                    problem.get_or_insert_with(|| "a row comes before any table".into());
                }
            },
            Some(b'{') => match serde_json::from_slice::<TableLine>(&line) {
                Ok(t) => {
                    let expected = header.tables.get(tables.len());
                    if expected != Some(&t.table) {
                        problem.get_or_insert_with(|| {
                            format!("the table {} is not where its header lists it", t.table)
                        });
                    }
                    progress(&BackupProgress {
                        step: BackupStep::Check,
                        table: &t.table,
                        table_rows: 0,
                        rows,
                    });
                    tables.push(BackupTable {
                        name: t.table,
                        columns: t.columns,
                        rows: 0,
                    });
                }
                Err(e) => {
                    problem.get_or_insert_with(|| format!("a table line does not read: {e}"));
                }
            },
            _ => {
                problem.get_or_insert_with(|| "a line is neither a table nor a row".into());
            }
        }
    }
    if problem.is_none() && tables.len() != header.tables.len() {
        problem = Some("it holds fewer tables than its header lists".into());
    }
    if let Some(p) = problem {
        return Err(damaged(&p));
    }
    Ok(BackupInfo {
        header,
        tables,
        rows,
        bytes,
        sha256: checked,
    })
}

// ----- restore

/// Where the rows of the table being restored go.
struct Target {
    table: &'static str,
    columns: &'static [&'static str],
    kinds: Vec<Kind>,
    /// Positions of the table's key and of a column restored later ([`DEFERRED`]).
    deferred: Option<(usize, usize, &'static [&'static str])>,
    /// `meta`: instance keys are skipped and the rest replace the target's.
    meta: bool,
    rows: u64,
}

/// A value of the file as `kind` wants it.
fn to_value(v: serde_json::Value, kind: Kind, at: &dyn Fn() -> String) -> Result<Value<'static>> {
    let wrong =
        |v: &serde_json::Value| damaged(&format!("{} holds {v}, not {}", at(), kind.describe()));
    Ok(match (v, kind) {
        (serde_json::Value::Null, _) => Value::Null,
        (serde_json::Value::Number(n), Kind::Int) => Value::Int(
            n.as_i64()
                .ok_or_else(|| wrong(&serde_json::Value::Number(n.clone())))?,
        ),
        (serde_json::Value::Number(n), Kind::Bool) => match n.as_i64() {
            Some(0) => Value::Bool(false),
            Some(1) => Value::Bool(true),
            _ => return Err(wrong(&serde_json::Value::Number(n))),
        },
        (serde_json::Value::Bool(b), Kind::Bool) => Value::Bool(b),
        (serde_json::Value::Bool(b), Kind::Int) => Value::Int(i64::from(b)),
        (serde_json::Value::String(s), Kind::Text) => Value::Text(s.into()),
        (serde_json::Value::Object(o), Kind::Blob)
            if o.len() == 1 && o.get("b64").is_some_and(serde_json::Value::is_string) =>
        {
            let text = o
                .get("b64")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("");
            Value::Blob(
                STANDARD
                    .decode(text)
                    .map_err(|e| damaged(&format!("{} is not base64: {e}", at())))?
                    .into(),
            )
        }
        (v, _) => return Err(wrong(&v)),
    })
}

/// Restores a backup [`verify_backup`] accepted (`info`) from `input` (read again from its
/// start) into the empty database of `tx`.
pub(crate) fn restore(
    tx: &mut dyn Tx,
    info: &BackupInfo,
    input: &mut dyn BufRead,
    progress: Progress<'_>,
) -> Result<RestoreSummary> {
    let schema = schema(tx)?;
    // Everything the backup holds has a place here, before anything is written.
    for t in &info.tables {
        let Some(target) = schema.get(&t.name) else {
            return Err(StoreError::Invalid(format!(
                "the backup has a table {} that this database (schema version {SCHEMA_VERSION}) does not: use the rostersync release that wrote it",
                t.name
            )));
        };
        if let Some(c) = t.columns.iter().find(|c| target.column(c).is_none()) {
            return Err(StoreError::Invalid(format!(
                "the backup has a column {}.{c} that this database (schema version {SCHEMA_VERSION}) does not: use the rostersync release that wrote it",
                t.name
            )));
        }
    }
    for table in TABLES.iter().filter(|t| **t != "meta") {
        if schema.contains_key(*table)
            && query_opt(tx, &format!("SELECT 1 FROM {table} LIMIT 1"), &[], |_| {
                Ok(())
            })?
            .is_some()
        {
            return Err(StoreError::Conflict(format!(
                "the database to restore into is not empty ({table} has rows): restore into a new data directory or an empty database, and do not run `rostersync init` on it first"
            )));
        }
    }
    // The directory's meta replaces the target's (the check value stays when the backup
    // has none); the instance's stay.
    let mut keep: Vec<Value<'_>> = INSTANCE_META.iter().map(|k| Value::from(*k)).collect();
    keep.push(CHECK_META_KEY.into());
    tx.execute(
        &format!(
            "DELETE FROM meta WHERE key NOT IN ({})",
            vec!["?"; keep.len()].join(", ")
        ),
        &keep,
    )?;

    let mut sha = digest::Context::new(&digest::SHA256);
    let mut line = Vec::new();
    if !next_line(input, &mut line)? {
        return Err(truncated());
    }
    sha.update(&line);
    let mut target: Option<Target> = None;
    let mut batch: Option<Rows<'static>> = None;
    let mut batch_bytes = 0usize;
    let mut pending: Vec<Rows<'static>> = Vec::new();
    let mut total = 0u64;
    loop {
        if !next_line(input, &mut line)? {
            return Err(truncated());
        }
        if line.starts_with(b"{\"end\"") {
            let end: EndLine = serde_json::from_slice(&line)
                .map_err(|e| damaged(&format!("its end line does not read: {e}")))?;
            let sha256 = hex(sha.finish().as_ref());
            if end.sha256 != sha256 || sha256 != info.sha256 {
                return Err(damaged(
                    "its SHA-256 checksum does not match its content: it changed since it was checked",
                ));
            }
            break;
        }
        sha.update(&line);
        if line.first() == Some(&b'{') {
            flush(tx, target.as_ref(), &mut batch, &mut batch_bytes)?;
            let t: TableLine = serde_json::from_slice(&line)
                .map_err(|e| damaged(&format!("a table line does not read: {e}")))?;
            let table = &schema[&t.table];
            let names: Vec<&'static str> = t
                .columns
                .iter()
                .filter_map(|c| table.column(c).map(|c| c.name))
                .collect();
            let kinds = names
                .iter()
                .filter_map(|n| table.column(n).map(|c| c.kind))
                .collect();
            let columns = intern_list(&names);
            let deferred =
                DEFERRED
                    .iter()
                    .find(|(name, _)| *name == t.table)
                    .and_then(|(_, cols)| {
                        let key = columns.iter().position(|c| *c == cols[0])?;
                        let col = columns.iter().position(|c| *c == cols[1])?;
                        Some((key, col, *cols))
                    });
            if let Some((_, _, cols)) = deferred {
                pending.push(Rows::new(intern(&t.table), cols));
            }
            target = Some(Target {
                table: intern(&t.table),
                columns,
                kinds,
                deferred,
                meta: t.table == "meta",
                rows: 0,
            });
            progress(&BackupProgress {
                step: BackupStep::Restore,
                table: &t.table,
                table_rows: 0,
                rows: total,
            });
            continue;
        }
        let Some(t) = target.as_mut() else {
            return Err(damaged("a row comes before any table"));
        };
        t.rows += 1;
        total += 1;
        let values: Vec<serde_json::Value> = serde_json::from_slice(&line)
            .map_err(|e| damaged(&format!("row {} of {} does not read: {e}", t.rows, t.table)))?;
        if values.len() != t.columns.len() {
            return Err(damaged(&format!(
                "row {} of {} has {} values for {} columns",
                t.rows,
                t.table,
                values.len(),
                t.columns.len()
            )));
        }
        let mut row = Vec::with_capacity(values.len());
        for (i, v) in values.into_iter().enumerate() {
            let (table, column, n) = (t.table, t.columns[i], t.rows);
            row.push(to_value(v, t.kinds[i], &|| {
                format!("row {n} of {table}: {column}")
            })?);
        }
        if t.meta
            && let Some(Value::Text(key)) = t
                .columns
                .iter()
                .position(|c| *c == "key")
                .and_then(|i| row.get(i))
            && INSTANCE_META.contains(&key.as_ref())
        {
            continue;
        }
        if let Some((key, col, _)) = t.deferred
            && row[col] != Value::Null
            && let Some(later) = pending.last_mut()
        {
            later.push(vec![
                row[key].clone(),
                std::mem::replace(&mut row[col], Value::Null),
            ]);
        }
        batch_bytes += line.len();
        batch
            .get_or_insert_with(|| Rows::new(t.table, t.columns))
            .push(row);
        if batch.as_ref().is_some_and(|b| b.len() >= BATCH_ROWS) || batch_bytes >= BATCH_BYTES {
            flush(tx, Some(t), &mut batch, &mut batch_bytes)?;
        }
        if t.rows.is_multiple_of(PROGRESS_EVERY) {
            progress(&BackupProgress {
                step: BackupStep::Restore,
                table: t.table,
                table_rows: t.rows,
                rows: total,
            });
        }
    }
    flush(tx, target.as_ref(), &mut batch, &mut batch_bytes)?;
    for rows in &pending {
        tx.update_rows(rows)?;
    }
    // The users list's, the SIS people's and the duplicates report's keys, when the
    // backup's were made by another rule (or none: a backup from before schema v7, v13 or
    // v14).
    crate::users::refresh_list_keys(tx)?;
    crate::reports::refresh_person_keys(tx)?;
    // (Its caller's wide write counts and keys everything again at its end.)
    crate::users::refresh_dup_keys(tx)?;
    if tx.dialect() == Dialect::Postgres {
        for (table, t) in &schema {
            if let Some(id) = t.identity {
                query_opt(
                    tx,
                    &format!(
                        "SELECT setval(pg_get_serial_sequence('{table}', '{id}'), COALESCE(MAX({id}), 0) + 1, false) FROM {table}"
                    ),
                    &[],
                    |_| Ok(()),
                )?;
            }
        }
    }
    Ok(RestoreSummary {
        tables: info.tables.len(),
        rows: info.rows,
        bytes: info.bytes,
        schema_version: info.header.schema_version,
        from_backend: info.header.backend.clone(),
        created_at: info.header.created_at.clone(),
    })
}

/// Writes the batch of the table being restored.
fn flush(
    tx: &mut dyn Tx,
    target: Option<&Target>,
    batch: &mut Option<Rows<'static>>,
    bytes: &mut usize,
) -> Result<()> {
    *bytes = 0;
    let (Some(t), Some(rows)) = (target, batch.take()) else {
        return Ok(());
    };
    if t.meta {
        let update: Vec<&'static str> = t.columns.iter().copied().filter(|c| *c != "key").collect();
        tx.upsert_rows(&rows, &["key"], &update)
    } else {
        tx.insert_rows(&rows)
    }
}

/// The position to read a backup again from its start.
pub(crate) fn rewind(input: &mut dyn std::io::Seek) -> Result<()> {
    input
        .seek(std::io::SeekFrom::Start(0))
        .map(|_| ())
        .map_err(|e| read_failed(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_and_interned_once() {
        assert!(plain_name("merged_into"));
        assert!(plain_name("_x9"));
        assert!(!plain_name("Users"));
        assert!(!plain_name("a) b"));
        assert!(!plain_name("9a"));
        assert!(!plain_name(""));
        let a = intern("some_column");
        let b = intern(&String::from("some_column"));
        assert!(std::ptr::eq(a, b));
        let l1 = intern_list(&[a, "x"]);
        let l2 = intern_list(&[b, "x"]);
        assert!(std::ptr::eq(l1, l2));
    }

    #[test]
    fn values_follow_the_target_column() {
        let at = || "row 1 of t: c".to_owned();
        let v = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
        assert_eq!(
            to_value(v("1"), Kind::Bool, &at).unwrap(),
            Value::Bool(true)
        );
        assert_eq!(
            to_value(v("0"), Kind::Bool, &at).unwrap(),
            Value::Bool(false)
        );
        assert!(to_value(v("2"), Kind::Bool, &at).is_err());
        assert_eq!(to_value(v("true"), Kind::Int, &at).unwrap(), Value::Int(1));
        assert_eq!(to_value(v("-5"), Kind::Int, &at).unwrap(), Value::Int(-5));
        assert_eq!(to_value(v("null"), Kind::Text, &at).unwrap(), Value::Null);
        assert_eq!(
            to_value(v("{\"b64\":\"AAH/\"}"), Kind::Blob, &at).unwrap(),
            Value::Blob(vec![0, 1, 255].into())
        );
        let e = to_value(v("\"x\""), Kind::Int, &at)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("row 1 of t: c holds \"x\", not an integer"),
            "{e}"
        );
        assert!(to_value(v("1"), Kind::Text, &at).is_err());
        assert!(to_value(v("18446744073709551615"), Kind::Int, &at).is_err());
    }

    #[test]
    fn a_file_changed_between_the_two_reads_is_refused_with_nothing_written() {
        let dir = test_kit::TempDir::new("store-backup");
        let open = |name: &str| crate::open(dir.join(name).to_str().unwrap()).unwrap();
        let backup_of = |s: &crate::Store| {
            let mut out = Vec::new();
            s.backup(&mut out, Timestamp::UNIX_EPOCH, &mut |_| {})
                .unwrap();
            out
        };
        let source = open("source.db");
        let checked = backup_of(&source);
        source.meta_set("changed", "yes").unwrap();
        let other = backup_of(&source);
        let info = verify_backup(&mut std::io::Cursor::new(&checked), &mut |_| {}).unwrap();
        let target = open("target.db");
        let e = target
            .restore_checked(&info, std::io::Cursor::new(&other), None, &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(e.contains("changed since it was checked"), "{e}");
        assert_eq!(target.meta_get("changed").unwrap(), None, "nothing written");
        let mut steps = Vec::new();
        let restored = target
            .restore_checked(&info, std::io::Cursor::new(&checked), None, &mut |p| {
                steps.push(p.step);
            })
            .unwrap();
        assert_eq!(restored.rows, info.rows);
        assert!(
            steps.iter().all(|s| *s == BackupStep::Restore),
            "the checked file is not checked again"
        );
    }

    #[test]
    fn no_table_is_listed_twice() {
        let listed: BTreeSet<&str> = TABLES.iter().chain(NOT_BACKED_UP).copied().collect();
        assert_eq!(
            listed.len(),
            TABLES.len() + NOT_BACKED_UP.len(),
            "no table twice"
        );
    }
}
