//! What the workspace's integration-test harnesses share, so that their rules cannot drift
//! apart:
//!
//! - [`postgres_url`]: the admin URL of the test PostgreSQL, read from
//!   `ROSTERSYNC_TEST_POSTGRES` (`eval "$(scripts/pg-test-cluster start)"` sets it).
//!   Without it a PostgreSQL test is skipped, loudly; under CI (see [`ci`]) it panics
//!   instead, so CI never passes without having run the PostgreSQL tests.
//! - [`PgSchema`]: a fresh schema in that database and the URL whose search path is that
//!   schema, dropped with the value; [`run_sql`] runs SQL behind a store's back (faults).
//! - [`TempDir`]: a fresh folder under the system's temporary folder, removed with the value.
//! - [`sample_district`] and [`copy_sample_district`]: the small CSV district the project
//!   ships.
//! - [`on_both!`]: one `#[test]` per listed function on each [`Backend`].
//! - [`ScimServer`]: a third-party SCIM server (PyPI's `scim2-server`, from the Python in
//!   `ROSTERSYNC_SCIM_SERVER`) for the SCIM push tests; skipped loudly without it, a
//!   panic under CI.
//!
//! A dev-dependency only: like the tests it serves, it panics, with a message, on anything
//! it did not expect.

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

mod scim_server;
pub use scim_server::{SCIM_SERVER_VAR, ScimServer};

/// The variable holding the test PostgreSQL's admin URL.
pub const POSTGRES_VAR: &str = "ROSTERSYNC_TEST_POSTGRES";

/// The database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Whether the tests run under CI: `CI` is set to anything but empty, `false` or `0`.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The admin URL of the test PostgreSQL, or `None` after saying the test is skipped.
///
/// # Panics
///
/// When the URL is missing under CI: the PostgreSQL tests must run there.
#[allow(clippy::print_stderr, reason = "a skipped test says so")]
pub fn postgres_url() -> Option<String> {
    if let Some(url) = std::env::var(POSTGRES_VAR).ok().filter(|v| !v.is_empty()) {
        return Some(url);
    }
    assert!(
        !ci(),
        "CI is set but {POSTGRES_VAR} is not: the PostgreSQL tests must run in CI \
         (eval \"$(scripts/pg-test-cluster start)\" sets it)"
    );
    eprintln!(
        "\n*** skipped: set {POSTGRES_VAR} to run the PostgreSQL tests \
         (eval \"$(scripts/pg-test-cluster start)\") ***\n"
    );
    None
}

/// A client of the test PostgreSQL at `url` (the admin URL or a [`PgSchema::url`]).
pub fn connect(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL ({POSTGRES_VAR}): {e}"))
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// `prefix`, then the process id, a counter and the clock's nanoseconds: a name no other
/// test of this run or of an earlier one has (a lower-case SQL identifier when `prefix`
/// is one).
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A schema of its own in the test PostgreSQL, dropped (with everything in it) when the
/// value is. Whoever holds connections into it must drop them first: declare the store
/// before the `PgSchema` in a struct, fields drop in order.
#[derive(Debug)]
pub struct PgSchema {
    admin: String,
    name: String,
    url: String,
}

impl PgSchema {
    /// A fresh schema named from `prefix` in the test PostgreSQL; `None` when there is none
    /// (see [`postgres_url`]: never under CI).
    pub fn create(prefix: &str) -> Option<PgSchema> {
        Some(PgSchema::create_in(&postgres_url()?, prefix))
    }

    /// A fresh schema named from `prefix` in the database the admin URL `admin` names.
    pub fn create_in(admin: &str, prefix: &str) -> PgSchema {
        let name = unique(prefix);
        connect(admin)
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .unwrap_or_else(|e| panic!("cannot create the test schema {name}: {e}"));
        let sep = if admin.contains('?') { '&' } else { '?' };
        PgSchema {
            url: format!("{admin}{sep}options=-c%20search_path%3D{name}"),
            admin: admin.to_owned(),
            name,
        }
    }

    /// The URL whose connections work in this schema (what `store::open` takes).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The admin URL the schema was made with.
    pub fn admin(&self) -> &str {
        &self.admin
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Runs SQL straight on a test's database, behind the store's back (for faults the store
/// cannot make): `sqlite` on the SQLite file `db` when there is no `schema`, else
/// `postgres` in that schema.
pub fn run_sql(db: &Path, schema: Option<&PgSchema>, sqlite: &str, postgres: &str) {
    match schema {
        None => rusqlite::Connection::open(db)
            .and_then(|c| c.execute_batch(sqlite))
            .unwrap_or_else(|e| panic!("cannot run {sqlite} on {}: {e}", db.display())),
        Some(schema) => connect(schema.admin())
            .batch_execute(&format!("SET search_path TO {}; {postgres}", schema.name()))
            .unwrap_or_else(|e| panic!("cannot run {postgres} in {}: {e}", schema.name())),
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        }
    }
}

/// A fresh folder under the system's temporary folder, removed with everything in it
/// when the value is dropped. It derefs to its [`Path`].
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// A new empty folder named from `prefix`.
    pub fn new(prefix: &str) -> TempDir {
        let path = std::env::temp_dir().join(unique(prefix));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir { path }
    }
}

impl Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The small district package the project ships (OneRoster CSV files).
pub fn sample_district() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../oneroster/tests/data/sample-district")
}

/// Copies the sample district into `dir/name` (to change it there), appending
/// `extra_users` (CSV rows, each ending in a newline) to its users.csv; the copy's folder.
pub fn copy_sample_district(dir: &Path, name: &str, extra_users: &str) -> PathBuf {
    let to = dir.join(name);
    or_panic(std::fs::create_dir_all(&to), &to);
    let from = sample_district();
    for entry in or_panic(std::fs::read_dir(&from), &from) {
        let entry = or_panic(entry, &from);
        or_panic(
            std::fs::copy(entry.path(), to.join(entry.file_name())),
            &entry.path(),
        );
    }
    if !extra_users.is_empty() {
        let users = to.join("users.csv");
        let mut text = or_panic(std::fs::read_to_string(&users), &users);
        text.push_str(extra_users);
        or_panic(std::fs::write(&users, text), &users);
    }
    to
}

/// The value, or a panic naming the file the error is about.
fn or_panic<T>(result: std::io::Result<T>, path: &Path) -> T {
    result.unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Instantiates each listed test function on both backends: modules `sqlite` and
/// `postgres`, each with one `#[test]` per name that calls `$run(backend, super::NAME)`.
///
/// `$run` is the harness's runner, a path that resolves inside those modules (e.g.
/// `$crate::harness::run`): it makes the test's world on the backend, or skips.
#[macro_export]
macro_rules! on_both {
    ($run:path; $($name:ident),+ $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { $run($crate::Backend::Sqlite, super::$name) })+
        }
        mod postgres {
            $(#[test] fn $name() { $run($crate::Backend::Postgres, super::$name) })+
        }
    };
}
