//! Persistence of the directory, sources, runs and history, behind one [`Store`] trait
//! with two backends: SQLite (the default, a file in the data directory) and PostgreSQL
//! (for scale-out). One conformance suite runs against both.
//!
//! The trait is synchronous: both backends are blocking libraries, and the engine calls
//! it from plain threads (the server from `spawn_blocking`). The PostgreSQL backend must
//! never run on a Tokio worker thread; see [`PgStore`].
//!
//! Inside, the logic is written once against a small SQL layer (`sql`): each backend
//! supplies transactions and fast bulk writes, and a macro below implements [`Store`]
//! for both by delegating every method to the shared modules. See `migrations/` for the
//! schema (one script per version and engine).

mod apply;
pub mod keyring;
mod migrate;
mod model;
mod pg;
mod runs;
mod settings;
mod sql;
mod sqlite;
mod users;

pub use apply::CONFLICT_CODE;
pub use migrate::SCHEMA_VERSION;
pub use model::*;
pub use pg::PgStore;
pub use sqlite::SqliteStore;

use std::path::Path;

use jiff::Timestamp;
use rostersync_core::directory::UserId;
use rostersync_core::plan::{Counts, Outcome, Plan};
use rostersync_core::settings::Config;
use rostersync_core::view::DirectoryView;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or reached; the message names what to check.
    #[error("{0}")]
    Open(String),
    #[error("database error: {0}")]
    Database(String),
    /// The stored data is not what this version expects (a newer schema, a bad value).
    #[error("{0}")]
    Corrupt(String),
    #[error("{0}")]
    NotFound(String),
    /// A request the data refuses (e.g. a name already taken).
    #[error("{0}")]
    Conflict(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Everything rostersync keeps. Every method is one transaction: on error nothing of it
/// is written.
pub trait Store: Send + Sync {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    // ----- meta (schema version, the master-key check value)
    fn meta_get(&self, key: &str) -> Result<Option<String>>;
    fn meta_set(&self, key: &str, value: &str) -> Result<()>;

    // ----- settings
    /// The settings as last saved (client secrets are not in it; see `source_secret`).
    fn load_config(&self) -> Result<Config>;
    /// Replaces the settings. `secrets` gives, per source name, the encrypted client
    /// secret to store; a source missing from `secrets` keeps the secret it had (so an
    /// exported file, which has no secrets, imports back without losing them); a source
    /// no longer in `config` is removed with its secret. Writes an audit entry.
    fn save_config(
        &self,
        config: &Config,
        secrets: &[(String, Vec<u8>)],
        actor: &str,
        now: Timestamp,
    ) -> Result<()>;
    /// The encrypted client secret of a source.
    fn source_secret(&self, source: &str) -> Result<Option<Vec<u8>>>;

    // ----- planning and applying
    /// What the planner needs for one source: every account (merged ones included, as
    /// tombstones), this source's links, every alias.
    fn load_view(&self, source: &str) -> Result<DirectoryView>;
    /// Records a run as started (status `running`) and returns its id.
    fn start_run(&self, run: &NewRun) -> Result<RunId>;
    /// Applies a plan in one transaction and finishes the run as `succeeded` with the
    /// plan's counts (adjusted for items refused at apply time). On error nothing of the
    /// plan is written and the run stays `running` for the caller to fail.
    fn apply_plan(&self, run: RunId, plan: &Plan, now: Timestamp) -> Result<ApplySummary>;
    /// Finishes a run without applying anything (failed, or a dry run that was recorded).
    fn finish_run(&self, run: RunId, finish: &RunFinish) -> Result<()>;
    /// Newest first; `limit` 0 means all.
    fn list_runs(&self, limit: u32) -> Result<Vec<RunRecord>>;
    fn get_run(&self, id: RunId) -> Result<Option<RunRecord>>;
    /// A run's items, in sourcedId order (bytewise), optionally of one outcome; `limit` 0
    /// means all. An item refused at apply time (its account changed after planning) has
    /// outcome `error` and reason code [`CONFLICT_CODE`].
    fn run_items(
        &self,
        run: RunId,
        outcome: Option<Outcome>,
        limit: u32,
        offset: u64,
    ) -> Result<Vec<RunItemRecord>>;

    // ----- accounts and users
    /// Creates accounts as single sign-on would have (no SIS link). Accounts whose email
    /// (case-insensitive) already exists are left alone and reported.
    fn import_accounts(
        &self,
        accounts: &[NewAccountRow],
        provider: &str,
        now: Timestamp,
    ) -> Result<ImportSummary>;
    fn list_users(&self, query: &UserQuery) -> Result<Vec<UserRecord>>;
    /// By id (all digits), email or username (case-insensitive).
    fn find_user(&self, key: &str) -> Result<Option<UserRecord>>;
    /// Oldest first.
    fn user_revisions(&self, user: UserId) -> Result<Vec<RevisionRecord>>;
    fn user_groups(&self, user: UserId) -> Result<Vec<String>>;
    fn count_users(&self) -> Result<UserCounts>;

    // ----- audit
    fn audit(&self, actor: &str, action: &str, detail: &str, now: Timestamp) -> Result<()>;
    /// Newest first; `limit` 0 means all.
    fn audit_log(&self, limit: u32) -> Result<Vec<AuditRecord>>;
}

/// Opens the database `database` names: `postgres://…` or `postgresql://…` for
/// PostgreSQL, else SQLite at `sqlite:PATH` or a plain path.
pub fn open(database: &str) -> Result<Box<dyn Store>> {
    if database.starts_with("postgres://") || database.starts_with("postgresql://") {
        return Ok(Box::new(PgStore::connect(database)?));
    }
    let path = database
        .strip_prefix("sqlite://")
        .or_else(|| database.strip_prefix("sqlite:"))
        .unwrap_or(database);
    if path.is_empty() {
        return Err(StoreError::Open(
            "no database given: use a file path, sqlite:PATH or postgres://USER@HOST/DATABASE"
                .into(),
        ));
    }
    Ok(Box::new(SqliteStore::open(Path::new(path))?))
}

/// Implements [`Store`] for a backend with `read`, `write` and `apply` methods, every
/// method delegating to the shared logic.
macro_rules! sql_store {
    ($backend:ty) => {
        impl Store for $backend {
            fn backend(&self) -> &'static str {
                <$backend>::BACKEND
            }
            fn meta_get(&self, key: &str) -> Result<Option<String>> {
                self.read(|tx| settings::meta_get(tx, key))
            }
            fn meta_set(&self, key: &str, value: &str) -> Result<()> {
                self.write(|tx| settings::meta_set(tx, key, value))
            }
            fn load_config(&self) -> Result<Config> {
                self.read(settings::load_config)
            }
            fn save_config(
                &self,
                config: &Config,
                secrets: &[(String, Vec<u8>)],
                actor: &str,
                now: Timestamp,
            ) -> Result<()> {
                self.write(|tx| settings::save_config(tx, config, secrets, actor, now))
            }
            fn source_secret(&self, source: &str) -> Result<Option<Vec<u8>>> {
                self.read(|tx| settings::source_secret(tx, source))
            }
            fn load_view(&self, source: &str) -> Result<DirectoryView> {
                self.read(|tx| users::load_view(tx, source))
            }
            fn start_run(&self, run: &NewRun) -> Result<RunId> {
                self.write(|tx| runs::start_run(tx, run))
            }
            fn apply_plan(&self, run: RunId, plan: &Plan, now: Timestamp) -> Result<ApplySummary> {
                self.apply(run, plan, now)
            }
            fn finish_run(&self, run: RunId, finish: &RunFinish) -> Result<()> {
                self.write(|tx| runs::finish_run(tx, run, finish))
            }
            fn list_runs(&self, limit: u32) -> Result<Vec<RunRecord>> {
                self.read(|tx| runs::list_runs(tx, limit))
            }
            fn get_run(&self, id: RunId) -> Result<Option<RunRecord>> {
                self.read(|tx| runs::get_run(tx, id))
            }
            fn run_items(
                &self,
                run: RunId,
                outcome: Option<Outcome>,
                limit: u32,
                offset: u64,
            ) -> Result<Vec<RunItemRecord>> {
                self.read(|tx| runs::run_items(tx, run, outcome, limit, offset))
            }
            fn import_accounts(
                &self,
                accounts: &[NewAccountRow],
                provider: &str,
                now: Timestamp,
            ) -> Result<ImportSummary> {
                self.write(|tx| users::import_accounts(tx, accounts, provider, now))
            }
            fn list_users(&self, query: &UserQuery) -> Result<Vec<UserRecord>> {
                self.read(|tx| users::list_users(tx, query))
            }
            fn find_user(&self, key: &str) -> Result<Option<UserRecord>> {
                self.read(|tx| users::find_user(tx, key))
            }
            fn user_revisions(&self, user: UserId) -> Result<Vec<RevisionRecord>> {
                self.read(|tx| users::user_revisions(tx, user))
            }
            fn user_groups(&self, user: UserId) -> Result<Vec<String>> {
                self.read(|tx| users::user_groups(tx, user))
            }
            fn count_users(&self) -> Result<UserCounts> {
                self.read(users::count_users)
            }
            fn audit(&self, actor: &str, action: &str, detail: &str, now: Timestamp) -> Result<()> {
                self.write(|tx| settings::audit(tx, actor, action, detail, now))
            }
            fn audit_log(&self, limit: u32) -> Result<Vec<AuditRecord>> {
                self.read(|tx| settings::audit_log(tx, limit))
            }
        }
    };
}

sql_store!(SqliteStore);
sql_store!(PgStore);

/// Counts a run ends with.
pub fn counts_json(c: &Counts) -> String {
    serde_json::to_string(c).unwrap_or_else(|_| "{}".into())
}
