//! Persistence of the directory, sources, runs and history, behind one concrete [`Store`]
//! with two backends: SQLite (the default, a file in the data directory) and PostgreSQL
//! (for scale-out). One conformance suite runs against both.
//!
//! The store is synchronous: both backends are blocking libraries, and the engine calls
//! it from plain threads (the server from `spawn_blocking`). A PostgreSQL store must
//! never be used on a Tokio worker thread (its client runs its own runtime).
//!
//! Inside, the logic is written once against a small SQL layer (`sql`). The backends
//! differ in four hooks only — open a read transaction, open a write transaction, bulk-
//! write a plan, take a named lock — and [`Store`] dispatches those to `sqlite` or `pg`;
//! every method is the shared module's function inside one transaction. See
//! `migrations/` for the schema (one script per version and engine).

mod apply;
mod backup;
mod console;
mod counts;
mod held;
pub mod keyring;
mod links;
mod locations;
mod merge;
mod migrate;
mod model;
mod people;
mod pg;
mod push;
mod reports;
mod review;
mod roster;
mod runs;
mod saved_views;
mod scim_resources;
mod settings;
mod sql;
mod sqlite;
mod undo;
mod users;

pub use apply::{CONFLICT_CODE, Feed};
pub use backup::{
    BACKUP_FORMAT, BACKUP_VERSION, BackupHeader, BackupInfo, BackupProgress, BackupStep,
    BackupSummary, BackupTable, RestoreSummary, tables_in_write_order, verify_backup,
};
pub use console::{
    ApiTokenId, ApiTokenRecord, ConsoleAccount, ConsoleRole, ConsoleUserId, NewSession,
    SessionRecord, StoreLock, TokenScope,
};
pub use counts::{
    CountDiff, CountsCheck, DEFERRING_TABLES, SECONDARY_INDEXES_POSTGRES, SECONDARY_INDEXES_SQLITE,
};
pub use held::HeldCheck;
pub use migrate::SCHEMA_VERSION;
pub use model::*;
pub use people::{KeptPerson, PullRef};
use pg::PgStore;
pub use push::{
    GroupRecord, GroupWrite, HeldGroup, PUSH_CASE_CODE, PushRecord, PushStateRow, PushWrite,
    TargetCounts, TargetGroup,
};
use sql::Tx;
use sqlite::SqliteStore;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use jiff::Timestamp;
use rostersync_core::directory::{Access, Account, AccountId, AliasKind, MatchKey};
use rostersync_core::guard::Trip;
use rostersync_core::plan::{Counts, Outcome, Plan};
use rostersync_core::settings::Config;
use rostersync_core::view::{DirectoryView, ViewKeys};

/// Accounts, whole, and aliases (account, kind, value) that reached them.
pub type Accounts = (Vec<Account>, Vec<(AccountId, AliasKind, MatchKey)>);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or reached; the message names what to check.
    #[error("{0}")]
    Open(String),
    /// The database setting itself is wrong (an unsupported scheme, a URL that does not
    /// parse, a CA file that is not one): nothing was tried; the message says the fix.
    #[error("{0}")]
    Invalid(String),
    /// The database failed a statement (it went away mid-transaction, a disk is full, a
    /// constraint broke). `source` is the driver's own error when there is one.
    #[error("database error: {message}")]
    Database {
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The stored data is not what this version expects (a newer schema, a bad value).
    #[error("{0}")]
    Corrupt(String),
    #[error("{0}")]
    NotFound(String),
    /// A request the data refuses (e.g. a name already taken).
    #[error("{0}")]
    Conflict(String),
    /// A request the data refuses for several reasons at once, each in `conflicts` (an
    /// undo that later changes are in the way of). `message` says it all in one sentence.
    #[error("{message}")]
    Conflicts {
        message: String,
        conflicts: Vec<String>,
    },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The page cache a large write takes on SQLite (more than 20 000 items; a smaller one
/// keeps SQLite's 2 MiB; PostgreSQL's server keeps its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageCache {
    /// 256 MiB: a first import of 3 M people applied in 260 s with it, 338 s with 64 MiB.
    Large,
    /// 64 MiB, for a write whose run holds its pull and every link through it (a plan
    /// made by chunks, [`Store::apply_streamed`]): there the larger cache is what takes
    /// the run over its memory bound, and a school-year rollover or a settings change of
    /// 3 M people applied as fast with this one (243 s and 125-129 s either way).
    Lean,
}

/// The size of a plan applied as it is made ([`Store::apply_streamed`]): how many of its
/// items write, as a first planning pass counted, and the page cache its apply takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteSize {
    pub writes: usize,
    pub cache: PageCache,
}

impl StoreError {
    /// A database failure this crate detected itself (no driver error behind it).
    pub fn database(message: impl Into<String>) -> StoreError {
        StoreError::Database {
            message: message.into(),
            source: None,
        }
    }

    /// A database failure the driver reported: `message` says what was being done and
    /// why, the driver's error stays reachable as [`std::error::Error::source`].
    pub(crate) fn driver(
        message: impl Into<String>,
        e: impl std::error::Error + Send + Sync + 'static,
    ) -> StoreError {
        StoreError::Database {
            message: message.into(),
            source: Some(Box::new(e)),
        }
    }

    /// Whether the database itself failed or could not be reached (as opposed to a
    /// request the data refuses): the CLI's exit code 3, the API's 503.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Open(_) | StoreError::Database { .. } | StoreError::Corrupt(_)
        )
    }
}

/// Everything rostersync keeps. Every method is one transaction: on error nothing of it
/// is written.
pub struct Store {
    backend: Backend,
}

/// A backend's connection behind `m`, waiting for it. A panic inside a transaction
/// dropped (rolled back) it: a poisoned connection is fine.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The connection behind `m` if nobody holds it (a poisoned one as [`lock`]); `None`
/// where waiting for it would mean waiting for another's work.
pub(crate) fn free<T>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match m.try_lock() {
        Ok(held) => Some(held),
        Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}
/// The two databases a [`Store`] can live in. They differ only in how a transaction is
/// opened, how a plan's rows are bulk-written and how named locks are taken; everything
/// else is the shared logic in this crate's modules.
enum Backend {
    Sqlite(Box<SqliteStore>),
    Postgres(Box<PgStore>),
}

impl Store {
    /// A read-only transaction on whichever database this is.
    fn read<T>(&self, f: impl FnOnce(&mut dyn Tx) -> Result<T>) -> Result<T> {
        match &self.backend {
            Backend::Sqlite(s) => s.read(f),
            Backend::Postgres(p) => p.read(f),
        }
    }

    /// A read-write transaction, committed when `f` succeeds.
    fn write<T>(&self, f: impl FnOnce(&mut dyn Tx) -> Result<T>) -> Result<T> {
        match &self.backend {
            Backend::Sqlite(s) => s.write(f),
            Backend::Postgres(p) => p.write(f),
        }
    }

    /// Whether a read on the store's reading connection sees the directory as it was and
    /// never waits while a write transaction is open (PostgreSQL; SQLite in WAL mode, which
    /// the store asks for: a file system that refuses it leaves a rollback journal, whose
    /// readers wait for a writer that has spilled its pages). A run reads accounts during
    /// its own apply only when so.
    pub fn reads_beside_writes(&self) -> bool {
        match &self.backend {
            Backend::Sqlite(s) => s.reads_beside_writes(),
            Backend::Postgres(_) => true,
        }
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match &self.backend {
            Backend::Sqlite(_) => SqliteStore::BACKEND,
            Backend::Postgres(_) => PgStore::BACKEND,
        }
    }

    // ----- meta (schema version, the master-key check value)
    pub fn meta_get(&self, key: &str) -> Result<Option<String>> {
        self.read(|tx| settings::meta_get(tx, key))
    }
    pub fn meta_set(&self, key: &str, value: &str) -> Result<()> {
        self.write(|tx| settings::meta_set(tx, key, value))
    }

    // ----- settings
    /// The settings as last saved (client secrets are not in it; see `source_secret`).
    pub fn load_config(&self) -> Result<Config> {
        self.read(settings::load_config)
    }
    /// Replaces the settings. `secrets` gives, per source name, the encrypted client
    /// secret to store (`Some`) or to forget (`None`); a source missing from `secrets`
    /// keeps the secret it had (so an exported file, which has no secrets, imports back
    /// without losing them); a source no longer in `config` is removed with its secret.
    /// Writes an audit entry.
    pub fn save_config(
        &self,
        config: &Config,
        secrets: &[(String, Option<Vec<u8>>)],
        actor: &str,
        now: Timestamp,
    ) -> Result<()> {
        self.write(|tx| settings::save_config(tx, config, secrets, actor, now))
    }
    /// [`Store::save_config`] for a change made in the console or the API: audited once,
    /// as `settings.change` with `detail` (what changed), not as an import.
    pub fn save_settings_change(
        &self,
        config: &Config,
        secrets: &[(String, Option<Vec<u8>>)],
        actor: &str,
        detail: &str,
        now: Timestamp,
    ) -> Result<()> {
        self.write(|tx| {
            settings::save_settings(tx, config, secrets, actor, ("settings.change", detail), now)
        })
    }
    /// The encrypted client secret of a source.
    pub fn source_secret(&self, source: &str) -> Result<Option<Vec<u8>>> {
        self.read(|tx| settings::source_secret(tx, source))
    }

    // ----- planning and applying
    #[cfg(any(test, feature = "test-support"))]
    /// Runs `f` inside a read transaction, as a long read (a sync's read of every link)
    /// holds one: what that does to the reads beside it, for tests.
    pub fn while_reading<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        self.read(|_| Ok(f()))
    }
    #[cfg(any(test, feature = "test-support"))]
    /// What the planner needs for one source: every account (merged ones included, as
    /// tombstones), this source's links (with misses and deactivation state), every
    /// alias, the (sourcedId, account) pairs an admin unlinked in this source, what
    /// the source last wrote besides accounts (group hashes, relationships and calendars
    /// hashes), and the admins' review decisions. Each link carries its person's primary
    /// org and role as last pulled.
    pub fn load_view(&self, source: &str) -> Result<DirectoryView> {
        self.read(|tx| users::load_view(tx, source))
    }
    #[cfg(any(test, feature = "test-support"))]
    /// This source's links as stored, in sourcedId order, each with its person's primary
    /// org and role as last pulled (a view holds less of each: `ViewLink`).
    pub fn stored_links(&self, source: &str) -> Result<Vec<rostersync_core::directory::Link>> {
        self.read(|tx| users::stored_links(tx, source))
    }
    /// `source`'s links of `users`: per account, the sourcedId and the consecutive misses
    /// (a SCIM connection's removed identity has one).
    pub fn links_of(
        &self,
        source: &str,
        users: &[AccountId],
    ) -> Result<std::collections::HashMap<AccountId, (String, u32)>> {
        self.read(|tx| links::links_of(tx, source, users))
    }
    /// Gives `source`'s link `old` the key `new`, with its record (an identity provider
    /// changed the id it knows the account by); `Conflict` when `new` is another link's.
    pub fn rekey_link(&self, source: &str, old: &str, new: &str) -> Result<()> {
        self.write(|tx| links::rekey_link(tx, source, old, new))
    }
    /// The resources `source` (a SCIM connection) last wrote for its identities
    /// `sourced_ids` (every identity's for `None`), by identity (its link key); identities
    /// without one are left out.
    pub fn scim_resources(
        &self,
        source: &str,
        sourced_ids: Option<&[String]>,
    ) -> Result<std::collections::HashMap<String, serde_json::Value>> {
        self.read(|tx| scim_resources::scim_resources(tx, source, sourced_ids))
    }
    /// The resources of `source` whose JSON may hold `text` (ignoring ASCII case), by
    /// identity: a superset of those with an attribute equal to it, for the caller to
    /// match exactly.
    pub fn scim_resources_mentioning(
        &self,
        source: &str,
        text: &str,
    ) -> Result<std::collections::HashMap<String, serde_json::Value>> {
        self.read(|tx| scim_resources::scim_resources_mentioning(tx, source, text))
    }
    /// Keeps `resource` as what `source`'s identity `sourced_id` last wrote (replacing the
    /// one kept); [`Store::rekey_link`] moves it with the link.
    pub fn put_scim_resource(
        &self,
        source: &str,
        sourced_id: &str,
        resource: &serde_json::Value,
        now: Timestamp,
    ) -> Result<()> {
        self.write(|tx| scim_resources::put_scim_resource(tx, source, sourced_id, resource, now))
    }
    /// Forgets what `source`'s identity `sourced_id` last wrote; whether there was any.
    pub fn remove_scim_resource(&self, source: &str, sourced_id: &str) -> Result<bool> {
        self.write(|tx| scim_resources::remove_scim_resource(tx, source, sourced_id))
    }
    /// The sourcedId (an account source's: the identity's id) `source` links `user` to.
    pub fn linked_person(&self, source: &str, user: AccountId) -> Result<Option<String>> {
        self.read(|tx| links::linked_person(tx, source, user))
    }
    /// The account `source` links `sourced_id` to.
    pub fn linked_account(&self, source: &str, sourced_id: &str) -> Result<Option<AccountId>> {
        self.read(|tx| links::linked_account(tx, source, sourced_id))
    }
    /// Of `users`, the accounts a link of one of `sources` reaches (an account source asks
    /// which accounts the SIS sources manage).
    pub fn linked_by(
        &self,
        sources: &[String],
        users: &[AccountId],
    ) -> Result<std::collections::HashSet<AccountId>> {
        self.read(|tx| links::linked_by(tx, sources, users))
    }
    /// The whole-source view (`load_view`, a test reference) scoped to the people of a run
    /// that is not a complete full pull (a delta, a single-user sync): the accounts `keys` reach
    /// ([`rostersync_core::planner::view_keys`]) with their links and this source's
    /// refusals of them, the people's links and decisions, and the whole source's
    /// population of active linked accounts; no source state. Planning those people
    /// against it gives the plan the whole view gives (`MemoryDirectory::scoped_view` is
    /// the reference).
    pub fn load_scoped_view(&self, source: &str, keys: &ViewKeys) -> Result<DirectoryView> {
        self.read(|tx| users::load_scoped_view(tx, source, keys))
    }
    /// How many of `source`'s links reach an active account, from the counts the database
    /// keeps (no link read).
    pub fn active_linked(&self, source: &str) -> Result<u64> {
        self.read(|tx| users::active_linked(tx, source))
    }
    /// This source's active linked accounts at each of `schools` (by the person's primary
    /// org as last pulled; a school with none is left out): what a scoped view's
    /// safeguards count after planning (`MemoryDirectory::school_counts` is the reference).
    pub fn school_counts(&self, source: &str, schools: &[&str]) -> Result<BTreeMap<String, u64>> {
        self.read(|tx| users::school_counts(tx, source, schools))
    }
    /// A full pull's first view: every link of the source (with its person's org and role
    /// and its account's revision and active flag), the refusals, source state and
    /// decisions, and no account (`MemoryDirectory::links_view` is the reference).
    pub fn load_links_view(&self, source: &str) -> Result<DirectoryView> {
        self.read(|tx| users::load_links_view(tx, source))
    }
    /// The accounts `keys` reach (a full pull's
    /// [`rostersync_core::planner::Intake::accounts_needed`]), with provenance, and the
    /// aliases that reached them (`MemoryDirectory::accounts` is the reference).
    pub fn load_accounts(&self, source: &str, keys: &ViewKeys) -> Result<Accounts> {
        self.read(|tx| users::load_accounts(tx, source, keys))
    }
    /// The newest `dateLastModified` the source's last applied pull saw (the plan's
    /// `watermark`), where the next delta starts; `None` before the first.
    pub fn watermark(&self, source: &str) -> Result<Option<Timestamp>> {
        self.read(|tx| roster::watermark(tx, source))
    }
    /// Records a run as started (status `running`) and returns its id.
    pub fn start_run(&self, run: &NewRun) -> Result<RunId> {
        self.write(|tx| runs::start_run(tx, run))
    }
    /// Applies a plan in one transaction and finishes the run as `succeeded` with the
    /// plan's counts (adjusted for items refused at apply time). On error nothing of the
    /// plan is written and the run stays `running` for the caller to fail.
    ///
    /// The meaning is `MemoryDirectory::apply`: accounts created and updated (fields,
    /// `active`, `access`; each a revision), links written whole (a new link replaces the
    /// person's old one, and the source's group memberships and relationships follow it
    /// to the new account), the SIS records upserted, the roster applied (groups upserted
    /// by key with their members resolved through this source's links after the person
    /// writes, removed groups deleted, relationships and calendars replaced when given,
    /// the SIS orgs kept equal to the pull, written only when they differ), the watermark
    /// stored when given, and a `rooms` row for every homeroom written. A rekey's item
    /// (`replaces`) removes the old sourcedId's link before writing the new one. Review
    /// cases are opened or refreshed for disputed items and closed for people now linked;
    /// older `held` runs of the source become `superseded`.
    pub fn apply_plan(&self, run: RunId, plan: &Plan, now: Timestamp) -> Result<ApplySummary> {
        self.write_wide(plan.writes().count(), PageCache::Large, |tx| {
            apply::apply_plan(tx, run, plan, now)
        })
    }
    /// Applies a plan as it is made, so that only a chunk of it is held at once: `make`
    /// hands every item (and a linked person's SIS record) to the [`Feed`] in the plan's
    /// order and returns the rest of the plan (its items and records left empty). One
    /// transaction, as [`Store::apply_plan`]: a failure changes nothing. `make` runs
    /// inside it, so the source's planning holds the write lock too (on SQLite, every
    /// writer waits; items after a failed chunk are dropped and the error returned when
    /// `make` is done; a plan `make` fails to make, its error, writes nothing). `size`
    /// says how many items write (as counted by a first planning pass), which picks the
    /// pauses and whether the page cache grows, as the plan's own count does for
    /// `apply_plan`, and the page cache to grow to. The items are written `chunk` at a
    /// time (at most 10 000: a run that may hold fewer items holds fewer here too).
    pub fn apply_streamed(
        &self,
        run: RunId,
        source: &str,
        size: WriteSize,
        chunk: usize,
        now: Timestamp,
        make: impl FnOnce(&mut Feed<'_>) -> Result<Plan>,
    ) -> Result<ApplySummary> {
        self.write_wide(size.writes, size.cache, |tx| {
            apply::apply_streamed(tx, run, source, chunk, now, make)
        })
    }
    /// Holds a run as [`Store::hold_run`] does, with the plan `make` makes as it makes it
    /// (as [`Store::apply_streamed`]: `make` hands every item, and a linked person's SIS
    /// record, to the [`Feed`] and returns the rest of the plan). The plan is stored a
    /// part of `chunk` items (at most 10 000) at a time, so only a part is held at once.
    pub fn hold_streamed(
        &self,
        run: RunId,
        trips: &[Trip],
        warnings: &[String],
        chunk: usize,
        now: Timestamp,
        make: impl FnOnce(&mut Feed<'_>) -> Result<Plan>,
    ) -> Result<()> {
        self.write(|tx| {
            apply::hold_streamed(
                tx,
                run,
                chunk,
                make,
                held::Hold {
                    trips,
                    warnings,
                    now,
                },
            )
        })
    }
    /// Applies a held run's stored plan, reopened ([`Store::reopen_held`]), as
    /// [`Store::apply_plan`] would: one transaction, its items read a part at a time and
    /// written `chunk` (at most 10 000) at a time, so the plan is never held whole.
    /// `writes` is how many of its items write ([`Store::check_held`]).
    pub fn apply_held(
        &self,
        run: RunId,
        writes: usize,
        chunk: usize,
        now: Timestamp,
    ) -> Result<ApplySummary> {
        self.write_wide(writes, PageCache::Large, |tx| {
            apply::apply_held(tx, run, chunk, now)
        })
    }
    /// A write transaction of `writes` plan items: on SQLite with a page cache of `cache`
    /// when it is large; the console counts' triggers paused when it is wide.
    fn write_wide<T>(
        &self,
        writes: usize,
        cache: PageCache,
        f: impl FnOnce(&mut dyn Tx) -> Result<T>,
    ) -> Result<T> {
        match &self.backend {
            Backend::Sqlite(s) => s.write_wide(writes, cache, f),
            // The server keeps its own cache.
            Backend::Postgres(p) => p.write_wide(writes, f),
        }
    }
    /// Finishes a run without applying anything (failed, or a dry run that was recorded).
    pub fn finish_run(&self, run: RunId, finish: &RunFinish) -> Result<()> {
        self.write(|tx| runs::finish_run(tx, run, finish))
    }
    /// Keeps the pull's warnings with a run (capped like [`RunFinish::warnings`]); the
    /// engine records them before applying, which finishes the run without them.
    pub fn set_run_warnings(&self, run: RunId, warnings: &[String]) -> Result<()> {
        self.write(|tx| runs::set_run_warnings(tx, run, warnings))
    }
    /// Newest first; `limit` 0 means all.
    pub fn list_runs(&self, limit: u32) -> Result<Vec<RunRecord>> {
        self.read(|tx| runs::list_runs(tx, limit))
    }
    /// The runs of one source, or of one status, or both (all when both are `None`),
    /// newest first; `limit` 0 means all.
    pub fn runs_of(
        &self,
        source: Option<&str>,
        status: Option<RunStatus>,
        limit: u32,
    ) -> Result<Vec<RunRecord>> {
        self.read(|tx| runs::runs_of(tx, source, status, limit))
    }
    /// The sources with runs still `running` (some may belong to a process that is gone).
    pub fn sources_running(&self) -> Result<Vec<String>> {
        self.read(runs::sources_running)
    }
    /// Settles the source's runs left `running` by a process that is gone: a held run
    /// whose approval stopped goes back to `held`, any other becomes `interrupted`. Call
    /// it holding the source's run lock. Returns each run settled and its new status.
    pub fn settle_interrupted(
        &self,
        source: &str,
        now: Timestamp,
    ) -> Result<Vec<(RunId, RunStatus)>> {
        self.write(|tx| runs::settle_interrupted(tx, source, now))
    }
    /// Marks a run of this process `interrupted` with `note` if it is still `running`
    /// (the process is stopping without it); whether it was.
    pub fn interrupt_run(&self, run: RunId, note: &str, now: Timestamp) -> Result<bool> {
        self.write(|tx| runs::interrupt_run(tx, run, note, now))
    }
    pub fn get_run(&self, id: RunId) -> Result<Option<RunRecord>> {
        self.read(|tx| runs::get_run(tx, id))
    }
    /// A run's items, in sourcedId order (bytewise), optionally of one outcome; `limit` 0
    /// means all. An item refused at apply time (its account changed after planning) has
    /// outcome `error` and reason code [`CONFLICT_CODE`].
    pub fn run_items(
        &self,
        run: RunId,
        outcome: Option<Outcome>,
        limit: u32,
        offset: u64,
    ) -> Result<Vec<RunItemRecord>> {
        self.read(|tx| runs::run_items(tx, run, outcome, limit, offset))
    }
    /// A page of a run's items for people to read, in natural sourcedId order, with
    /// each account's name; `limit` 0 means all.
    pub fn run_item_page(
        &self,
        run: RunId,
        filter: &ItemFilter,
        limit: u32,
        offset: u64,
    ) -> Result<Vec<NamedRunItem>> {
        self.read(|tx| runs::run_item_page(tx, run, filter, limit, offset))
    }
    /// (outcome, reason code, items) for every pair present in a run's items.
    pub fn run_item_counts(&self, run: RunId) -> Result<Vec<(String, String, u64)>> {
        self.read(|tx| runs::run_item_counts(tx, run))
    }
    /// Whether `source` had a succeeded run before `run` (if not, `run` is its first
    /// import).
    pub fn succeeded_before(&self, source: &str, run: RunId) -> Result<bool> {
        self.read(|tx| runs::succeeded_before(tx, source, run))
    }
    /// Runs before `before` (from the newest when `None`), newest first; `limit` 0 means
    /// all. Paging by id, so a page costs the same however deep it is.
    pub fn list_runs_before(&self, before: Option<RunId>, limit: u32) -> Result<Vec<RunRecord>> {
        self.read(|tx| runs::list_runs_before(tx, before, limit))
    }
    /// [`Store::run_items`] paged by sourcedId: the items after `after` (from the first
    /// when `None`).
    pub fn run_items_after(
        &self,
        run: RunId,
        outcome: Option<Outcome>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RunItemRecord>> {
        self.read(|tx| runs::run_items_after(tx, run, outcome, after, limit))
    }

    /// The counts the database keeps for the console and the safeguards, compared with
    /// a recount from the accounts, links and people ([`CountsCheck`]); writes nothing.
    /// Reads every link and account: seconds at a million.
    pub fn check_counts(&self) -> Result<CountsCheck> {
        self.read(counts::check)
    }

    /// Counts every account and link again, and keys the duplicates and unlinked
    /// reports again, replacing what the database kept (what a wide write does at its
    /// end): the mend for a [`Store::check_counts`] that found a difference.
    pub fn recount(&self) -> Result<()> {
        self.write(counts::recount_now)
    }

    // ----- accounts and users
    /// Creates accounts as single sign-on would have (no SIS link). Accounts whose email
    /// (case-insensitive) already exists are left alone and reported.
    pub fn import_accounts(
        &self,
        accounts: &[NewAccountRow],
        provider: &str,
        now: Timestamp,
    ) -> Result<ImportSummary> {
        self.write(|tx| users::import_accounts(tx, accounts, provider, now))
    }
    pub fn list_users(&self, query: &UserQuery) -> Result<Vec<UserRecord>> {
        self.read(|tx| users::list_users(tx, query))
    }
    /// How many accounts match `query`'s filters (its sort, cursor and limit aside).
    pub fn count_listed_users(&self, query: &UserQuery) -> Result<u64> {
        self.read(|tx| users::count_listed_users(tx, query))
    }
    /// Saved views of the users list, by name.
    pub fn saved_views(&self) -> Result<Vec<SavedView>> {
        self.read(saved_views::saved_views)
    }
    #[cfg(any(test, feature = "test-support"))]
    pub fn saved_view(&self, id: SavedViewId) -> Result<Option<SavedView>> {
        self.read(|tx| saved_views::saved_view(tx, id))
    }
    /// Saves a view (audited `view.save`), replacing the one with that name whatever its
    /// case; returns it and whether it replaced one. `Conflict` for an empty, too long or
    /// control-character name.
    pub fn save_view(
        &self,
        name: &str,
        spec: &rostersync_core::user_list::ListSpec,
        actor: &str,
        now: Timestamp,
    ) -> Result<(SavedView, bool)> {
        self.write(|tx| saved_views::save_view(tx, name, spec, actor, now))
    }
    /// Deletes a view (audited `view.delete`); returns its name. `NotFound` for an
    /// unknown id.
    pub fn delete_view(&self, id: SavedViewId, actor: &str, now: Timestamp) -> Result<String> {
        self.write(|tx| saved_views::delete_view(tx, id, actor, now))
    }
    /// The account with this id, if there is one.
    pub fn get_user(&self, id: AccountId) -> Result<Option<UserRecord>> {
        self.read(|tx| users::get_user(tx, id))
    }
    /// By what an admin types: an id (all digits), email or username (case-insensitive),
    /// or an old email or username. Code that holds an id uses [`Store::get_user`].
    pub fn find_user(&self, key: &str) -> Result<Option<UserRecord>> {
        self.read(|tx| users::find_user(tx, key))
    }
    /// Oldest first.
    pub fn user_revisions(&self, user: AccountId) -> Result<Vec<RevisionRecord>> {
        self.read(|tx| users::user_revisions(tx, user))
    }
    /// The names of the account's groups, by name.
    pub fn user_groups(&self, user: AccountId) -> Result<Vec<String>> {
        self.read(|tx| users::user_groups(tx, user))
    }
    /// The account's old emails and usernames kept as match keys, oldest first.
    pub fn user_aliases(&self, user: AccountId) -> Result<Vec<AliasRow>> {
        self.read(|tx| users::user_aliases(tx, user))
    }
    pub fn count_users(&self) -> Result<UserCounts> {
        self.read(users::count_users)
    }
    /// An admin sets an account's help-desk access level (an `access` revision, writer
    /// `admin:ACTOR`, and an audit entry); the level it has already changes nothing. The
    /// sync never lowers an agent's or admin's access unless *Allow non-agent role
    /// downgrades* is on. `NotFound` for an unknown account, `Conflict` for a merged one.
    pub fn set_access(
        &self,
        user: AccountId,
        access: Access,
        actor: &str,
        now: Timestamp,
    ) -> Result<()> {
        self.write(|tx| links::set_access(tx, user, access, actor, now))
    }

    // ----- links by hand (audited; a `sis_link` revision on the account, writer `admin:ACTOR`)
    /// Links an account to a SIS person of a source (rule `manual`) and drops any refusal
    /// of the pair. The next sync writes the account from the SIS record. Linking a pair
    /// that is already linked does nothing. `Conflict` when the person is linked to
    /// another account, the account to another person of the source, or the account is
    /// merged; `NotFound` for an unknown account or source.
    pub fn link_user(
        &self,
        source: &str,
        sourced_id: &str,
        user: AccountId,
        actor: &str,
        now: Timestamp,
    ) -> Result<()> {
        self.write(|tx| links::link_user(tx, source, sourced_id, user, actor, now))
    }
    /// Removes the account's links (of one source, or all) and records a refusal for each
    /// pair, so the sync never links them again by itself; takes the account out of those
    /// sources' groups and relationships. Returns the (source, sourcedId) pairs removed;
    /// `NotFound` when there is none.
    pub fn unlink_user(
        &self,
        user: AccountId,
        source: Option<&str>,
        actor: &str,
        now: Timestamp,
    ) -> Result<Vec<(String, String)>> {
        self.write(|tx| links::unlink_user(tx, user, source, actor, now))
    }
    /// *Change SIS user*: moves the account's link in `source` to another person (a manual
    /// link, with `link_user`'s conflicts) and refuses the old pair. Returns the old
    /// sourcedId; the same sourcedId changes nothing. `NotFound` when the account has no
    /// link in the source.
    pub fn relink_user(
        &self,
        user: AccountId,
        source: &str,
        new_sourced_id: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<String> {
        self.write(|tx| links::relink_user(tx, user, source, new_sourced_id, actor, now))
    }
    /// The source's last complete full pull that was applied (succeeded, or undone since):
    /// what a link made by hand is checked against when the SIS cannot be reached.
    pub fn last_complete_pull(&self, source: &str) -> Result<Option<PullRef>> {
        self.read(|tx| people::last_complete_pull(tx, source))
    }
    /// The SIS person as the syncs last recorded them (the people they linked), with
    /// whether the last complete full pull had them; `None` when there is no record.
    pub fn sis_person(&self, source: &str, sourced_id: &str) -> Result<Option<KeptPerson>> {
        self.read(|tx| people::sis_person(tx, source, sourced_id))
    }
    /// The recorded SIS people of a source that every word of `query` finds in their name,
    /// email, username, school id or sourcedId (case-insensitive), by family and given
    /// name; at most `limit`. `Conflict` for a query with no word.
    pub fn search_sis_people(
        &self,
        source: &str,
        query: &str,
        limit: u32,
    ) -> Result<Vec<KeptPerson>> {
        self.read(|tx| people::search_sis_people(tx, source, query, limit))
    }

    // ----- what the user page and the mappings page show
    /// The SIS card, one per source the account is linked to (by source name): the SIS
    /// record as last synced, its classes with course and teachers, the link, and the
    /// account's last 50 items in that source's runs. `NotFound` for an unknown account.
    pub fn sis_card(&self, user: AccountId) -> Result<Vec<SisCard>> {
        self.read(|tx| links::sis_card(tx, user))
    }
    /// The account's students (as a guardian) and guardians (as a student), from every
    /// source's relationships, by id. `NotFound` for an unknown account.
    pub fn guardianships(&self, user: AccountId) -> Result<Guardianships> {
        self.read(|tx| roster::guardianships(tx, user))
    }
    /// The source's SIS orgs as last pulled, by name, with the active accounts linked to
    /// the source whose primary org each is.
    pub fn sis_orgs(&self, source: &str) -> Result<Vec<SisOrgRow>> {
        self.read(|tx| roster::sis_orgs(tx, source))
    }
    /// The source's orgs as last pulled, sourcedId → name (no counting).
    pub fn sis_org_names(&self, source: &str) -> Result<std::collections::HashMap<String, String>> {
        self.read(|tx| roster::sis_org_names(tx, source))
    }
    /// Groups (of one source, or all), by name, with member counts; `limit` 0 means all.
    pub fn groups(&self, source: Option<&str>, limit: u32) -> Result<Vec<GroupRow>> {
        self.read(|tx| roster::groups(tx, source, limit))
    }
    #[cfg(any(test, feature = "test-support"))]
    /// The rooms list: every homeroom the sync has written, by name.
    pub fn rooms(&self) -> Result<Vec<String>> {
        self.read(roster::rooms)
    }
    /// Every location the directory has, by name.
    pub fn location_names(&self) -> Result<Vec<String>> {
        self.read(locations::location_names)
    }
    /// The source's active linked accounts counted by primary org as last pulled,
    /// current location and who last wrote it: what a location mapping change is
    /// previewed from ([`rostersync_core::relocation::preview`]).
    pub fn accounts_by_location(
        &self,
        source: &str,
    ) -> Result<Vec<rostersync_core::relocation::AccountsAt>> {
        self.read(|tx| locations::accounts_by_location(tx, source))
    }

    // ----- SCIM targets: what each holds
    /// The encrypted bearer token of a target (`None`: none stored).
    pub fn target_secret(&self, target: &str) -> Result<Option<Vec<u8>>> {
        self.read(|tx| settings::target_secret(tx, target))
    }
    /// Every account's state on `target` (hash, active, the target's id for the user).
    pub fn push_held(
        &self,
        target: &str,
    ) -> Result<std::collections::HashMap<AccountId, (rostersync_core::push::Held, Option<String>)>>
    {
        self.read(|tx| push::push_held(tx, target))
    }
    /// What `target` was last sent for each of `accounts` it holds.
    pub fn pushed(
        &self,
        target: &str,
        accounts: &[AccountId],
    ) -> Result<std::collections::HashMap<AccountId, rostersync_core::push::Pushed>> {
        self.read(|tx| push::pushed(tx, target, accounts))
    }
    /// Records a batch of a push run: its items and what the target now holds, in one
    /// transaction.
    pub fn record_push(
        &self,
        run: RunId,
        target: &str,
        records: &[PushRecord],
        now: Timestamp,
    ) -> Result<()> {
        self.write(|tx| push::record_push(tx, run, target, records, now))
    }
    /// Holds a push run for approval: what it would do recorded as its items, nothing
    /// sent. `Conflict` unless the run is running.
    pub fn hold_push(
        &self,
        run: RunId,
        counts: &Counts,
        trips: &[Trip],
        records: &[PushRecord],
        now: Timestamp,
    ) -> Result<()> {
        self.write(|tx| push::hold_push(tx, run, counts, trips, records, now))
    }
    /// The counts a held push would have had (`None`: the run is no held push).
    pub fn held_push(&self, run: RunId) -> Result<Option<Counts>> {
        self.read(|tx| push::held_push(tx, run))
    }
    /// Takes a held push's items away before its approval records what it did.
    pub fn clear_run_items(&self, run: RunId) -> Result<()> {
        self.write(|tx| push::clear_items(tx, run))
    }
    /// The groups of `kinds` (`class`, `school_role`) with their member accounts.
    pub fn target_groups(&self, kinds: &[&str]) -> Result<Vec<TargetGroup>> {
        self.read(|tx| push::target_groups(tx, kinds))
    }
    /// What `target` holds for each group it was sent, by group id.
    pub fn held_groups(&self, target: &str) -> Result<std::collections::HashMap<i64, HeldGroup>> {
        self.read(|tx| push::held_groups(tx, target))
    }
    /// Records the groups of a push run: their items and what the target now holds.
    pub fn record_push_groups(
        &self,
        run: RunId,
        target: &str,
        records: &[GroupRecord],
        now: Timestamp,
    ) -> Result<()> {
        self.write(|tx| push::record_push_groups(tx, run, target, records, now))
    }
    /// The admins' decisions on a source's (or a target's) review cases: sourcedId (a
    /// target's: the account id) → create or ignore.
    pub fn review_decisions(
        &self,
        source: &str,
    ) -> Result<Vec<(String, rostersync_core::view::Decision)>> {
        self.read(|tx| review::decisions(tx, source))
    }
    /// Where an account stands on each target.
    pub fn push_states(&self, user: AccountId) -> Result<Vec<PushStateRow>> {
        self.read(|tx| push::push_states(tx, user))
    }
    /// How many users a target holds, active, and failing.
    pub fn target_counts(&self, target: &str) -> Result<TargetCounts> {
        self.read(|tx| push::target_counts(tx, target))
    }

    // ----- audit
    pub fn audit(&self, actor: &str, action: &str, detail: &str, now: Timestamp) -> Result<()> {
        self.write(|tx| settings::audit(tx, actor, action, detail, now))
    }
    /// Newest first; `limit` 0 means all.
    pub fn audit_log(&self, limit: u32) -> Result<Vec<AuditRecord>> {
        self.read(|tx| settings::audit_log(tx, limit))
    }

    // ----- safeguards, review, merges, reports
    /// Holds a run whose plan tripped a safeguard: stores the plan and the trips on the
    /// run, writes its items as `apply_plan` would (so `run_items` lists the people it
    /// would touch; created people have no account id yet) and nothing else, and finishes
    /// it `held` with the plan's counts. `Conflict` unless the run is running and syncs
    /// the plan's source. `warnings` are the pull's, kept with the run.
    pub fn hold_run(
        &self,
        run: RunId,
        plan: Plan,
        trips: &[Trip],
        warnings: &[String],
        now: Timestamp,
    ) -> Result<()> {
        self.write(|tx| {
            held::hold_run(
                tx,
                run,
                plan,
                held::Hold {
                    trips,
                    warnings,
                    now,
                },
            )
        })
    }
    /// A held run's plan and the safeguards it tripped; `None` when the run keeps no plan
    /// (never held, or applied, discarded or superseded since).
    pub fn held_plan(&self, run: RunId) -> Result<Option<(Plan, Vec<Trip>)>> {
        self.read(|tx| held::held_plan(tx, run))
    }
    /// The sourcedIds of a plan's items whose account or link changed since it was made
    /// (the account's revision is not the planned one, the link is not where the item
    /// expects it, a person to link or create was linked meanwhile), sorted: empty when
    /// the plan can be applied as it is.
    pub fn stale_items(&self, plan: &Plan) -> Result<Vec<String>> {
        self.read(|tx| held::stale_items(tx, &plan.source, &plan.items))
    }
    /// What approving a held run needs before it applies, read a part of the stored plan
    /// at a time: the plan without its items and SIS records, the safeguards it tripped,
    /// its stale items (as [`Store::stale_items`]) and how many of its items write. `None`
    /// when the run keeps no plan.
    pub fn check_held(&self, run: RunId) -> Result<Option<HeldCheck>> {
        self.read(|tx| held::check_held(tx, run))
    }
    /// Held → running, so `apply_held(run, …)` (or `apply_plan(run, plan)`) applies the
    /// held plan and finishes it `succeeded`; its items stay listed until the apply's own
    /// replace them. `Conflict` for a run that is not held.
    pub fn reopen_held(&self, run: RunId) -> Result<()> {
        self.write(|tx| held::reopen_held(tx, run))
    }
    /// A reopened held run back to `held` with `note`, after an approval that applied
    /// nothing (it failed); `false` when the run was not running with a stored plan.
    pub fn rehold(&self, run: RunId, note: &str) -> Result<bool> {
        self.write(|tx| held::rehold(tx, run, note))
    }
    /// Marks a held run `discarded` or `superseded`, with a note (audited; its stored plan
    /// is dropped, its items stay). Setting the status the run has already updates the
    /// note. `Conflict` for any other status, or a run that is not held.
    pub fn set_run_status(
        &self,
        run: RunId,
        status: RunStatus,
        note: Option<&str>,
        actor: &str,
        now: Timestamp,
    ) -> Result<()> {
        self.write(|tx| held::set_run_status(tx, run, status, note, actor, now))
    }
    /// Review cases (`open`, `resolved` or `closed`; `None` for all) by id, those after
    /// `after` only, with their candidates' names, emails and current links; `limit` 0
    /// means all. `Conflict` for an unknown status.
    pub fn review_cases(
        &self,
        status: Option<&str>,
        after: Option<ReviewCaseId>,
        limit: u32,
    ) -> Result<Vec<ReviewCase>> {
        self.read(|tx| review::review_cases(tx, status, after, limit))
    }
    pub fn review_case(&self, id: ReviewCaseId) -> Result<Option<ReviewCase>> {
        self.read(|tx| review::review_case(tx, id))
    }
    /// How many review cases have `status` (`open`, `resolved`, `closed`); `Conflict`
    /// for another.
    pub fn count_review_cases(&self, status: &str) -> Result<u64> {
        self.read(|tx| review::count_review_cases(tx, status))
    }
    /// Resolves an open case (audited): `Link` is `link_user` (same rules, conflicts and
    /// effects), `Create` and `Ignore` are decisions every later plan honours. `NotFound`
    /// for an unknown case, `Conflict` for one that is not open.
    pub fn resolve_case(
        &self,
        id: ReviewCaseId,
        resolution: CaseResolution,
        actor: &str,
        now: Timestamp,
    ) -> Result<()> {
        self.write(|tx| review::resolve_case(tx, id, resolution, actor, now))
    }
    /// Merges `loser` into `survivor` (audited, revisions on both, writer `admin:ACTOR`):
    /// the survivor takes the loser's SIS links (every source), group memberships,
    /// guardian relationships, revisions and aliases, and the loser's email and username
    /// as aliases; the loser becomes a tombstone (merged into the survivor, inactive, no
    /// access). `dry_run` computes the same summary and writes nothing. `Conflict` when
    /// both are linked in one source (different SIS people), for one account, or for a
    /// merged account on either side; `NotFound` for an unknown account.
    pub fn merge_accounts(
        &self,
        loser: AccountId,
        survivor: AccountId,
        actor: &str,
        now: Timestamp,
        dry_run: bool,
    ) -> Result<MergeSummary> {
        self.write(|tx| merge::merge_accounts(tx, loser, survivor, actor, now, dry_run))
    }
    /// Reverts a `succeeded` run (audited, revisions writer `admin:ACTOR`, no run): fields
    /// back to their old values, deactivations and reactivations reversed, created
    /// accounts inactive, no-access and unlinked, links it made removed and links it
    /// replaced put back; the run becomes `undone`. `dry_run` computes the same summary
    /// and writes nothing. `Conflicts` with the list of conflicts when later changes touch
    /// what it would restore (a later revision of the same field, a merge, a later run
    /// that changed the same link); `Conflict` when the run did not succeed.
    pub fn undo_run(
        &self,
        run: RunId,
        actor: &str,
        now: Timestamp,
        dry_run: bool,
    ) -> Result<UndoSummary> {
        self.write(|tx| undo::undo_run(tx, run, actor, now, dry_run))
    }
    /// Active, unmerged accounts with no SIS link, by id (those after `after` only), each
    /// with up to 3 suggested SIS people (scored, with the evidence); `limit` 0 means all.
    /// The accounts come from an index; the suggestions from one pass over the SIS people,
    /// whatever the limit.
    pub fn report_unlinked(
        &self,
        after: Option<AccountId>,
        limit: u32,
    ) -> Result<Vec<UnlinkedAccount>> {
        self.read(|tx| reports::report_unlinked(tx, after, limit))
    }
    /// Groups of active, unmerged accounts that are probably one person (the same name and
    /// the same email local part, grade and school, or one linked and one not), with the
    /// evidence, by their first account's id (those after `after` only); `limit` 0 means
    /// all. The grouping reads every active account's name, whatever the limit.
    pub fn report_duplicates(
        &self,
        after: Option<AccountId>,
        limit: u32,
    ) -> Result<Vec<DuplicateGroup>> {
        self.read(|tx| reports::report_duplicates(tx, after, limit))
    }
    /// Active, unmerged accounts whose SIS person is inactive (`tobedeleted`, disabled) or
    /// missing from complete full pulls, one row per link, by account (accounts after
    /// `after` only); `limit` 0 means all, and a limited answer ends with every row of its
    /// last account (so paging by that account's id skips nothing).
    pub fn report_stale(&self, after: Option<AccountId>, limit: u32) -> Result<Vec<StaleAccount>> {
        self.read(|tx| reports::report_stale(tx, after, limit))
    }

    // ----- backup and restore (see `backup` for the file format)
    /// Writes everything the store keeps to `out` as a backup file, from one read
    /// transaction (a consistent snapshot while other processes write; no write lock is
    /// taken). `now` is the header's time; `progress` hears at each table and every few
    /// thousand rows. The master key is never in it, only its check value.
    pub fn backup(
        &self,
        out: &mut dyn std::io::Write,
        now: Timestamp,
        progress: &mut dyn FnMut(&BackupProgress<'_>),
    ) -> Result<BackupSummary> {
        let backend = self.backend();
        self.read(|tx| backup::backup(tx, backend, out, now, progress))
    }
    /// Restores a backup into this database, which must be empty (freshly migrated: no
    /// accounts, runs, sources, console accounts… — `Conflict` names the first table that
    /// is not). Reads `input` twice: first to check it whole ([`verify_backup`]), and
    /// that `key`, when given, opens its secrets (`Conflict` when not), before anything is
    /// written; then to insert everything in one transaction. `Invalid` for a file that is
    /// not a backup, is damaged or truncated, or is newer than this build.
    pub fn restore<R: std::io::BufRead + std::io::Seek>(
        &self,
        mut input: R,
        key: Option<&keyring::Keyring>,
        progress: &mut dyn FnMut(&BackupProgress<'_>),
    ) -> Result<RestoreSummary> {
        let info = verify_backup(&mut input, progress)?;
        self.restore_checked(&info, input, key, progress)
    }
    /// Restores a backup [`verify_backup`] has checked (`info`, from the same `input`) into
    /// this database, which must be empty (as [`Store::restore`]): `key`, when
    /// given, must open its secrets (`Conflict` when not), then `input` is read once more
    /// from its start and everything inserted in one transaction. A file that changed
    /// since it was checked (its checksum is not `info`'s) is refused (`Invalid`) with
    /// nothing written. For a caller that must check a backup before it makes the
    /// database, so the file is read twice in all, not three times.
    pub fn restore_checked<R: std::io::BufRead + std::io::Seek>(
        &self,
        info: &BackupInfo,
        mut input: R,
        key: Option<&keyring::Keyring>,
        progress: &mut dyn FnMut(&BackupProgress<'_>),
    ) -> Result<RestoreSummary> {
        if let Some(key) = key {
            info.header.check_key(key)?;
        }
        backup::rewind(&mut input)?;
        self.write(|tx| {
            let summary = counts::paused_if_wide(tx, usize::MAX, |tx| {
                backup::restore(tx, info, &mut input, progress)
            })?;
            runs::recount_item_counts(tx)?;
            Ok(summary)
        })
    }

    // ----- console: console accounts, sessions, API tokens, named locks.
    /// Console accounts, by name.
    pub fn console_accounts(&self) -> Result<Vec<ConsoleAccount>> {
        self.read(console::console_accounts)
    }
    pub fn console_account(&self, name: &str) -> Result<Option<ConsoleAccount>> {
        self.read(|tx| console::console_account(tx, name))
    }
    pub fn count_console_accounts(&self) -> Result<u64> {
        self.read(console::count_console_accounts)
    }
    /// Adds an account (audited). `Conflict` when the name is taken.
    pub fn create_console_account(
        &self,
        name: &str,
        role: ConsoleRole,
        password_hash: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<ConsoleUserId> {
        self.write(|tx| console::create_console_account(tx, name, role, password_hash, actor, now))
    }
    /// Replaces an account's password and ends all its sessions (audited). `NotFound`
    /// for an unknown name.
    pub fn set_console_password(
        &self,
        name: &str,
        password_hash: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<()> {
        self.write(|tx| console::set_console_password(tx, name, password_hash, actor, now))
    }
    pub fn create_session(&self, session: &NewSession) -> Result<()> {
        self.write(|tx| console::create_session(tx, session))
    }
    /// A session by the hash of its id, with its account.
    pub fn session(&self, id_hash: &str) -> Result<Option<SessionRecord>> {
        self.read(|tx| console::session(tx, id_hash))
    }
    /// Records activity (the idle expiry counts from it).
    pub fn touch_session(&self, id_hash: &str, now: Timestamp) -> Result<()> {
        self.write(|tx| console::touch_session(tx, id_hash, now))
    }
    pub fn delete_session(&self, id_hash: &str) -> Result<()> {
        self.write(|tx| console::delete_session(tx, id_hash))
    }
    /// Deletes sessions past their absolute expiry or idle since before `idle_before`;
    /// returns how many.
    pub fn purge_sessions(&self, now: Timestamp, idle_before: Timestamp) -> Result<u64> {
        self.write(|tx| console::purge_sessions(tx, now, idle_before))
    }
    /// Records a new API token by the hash of its value (audited); returns its id.
    /// `expires_at`: when it stops signing in (`None`: never).
    pub fn create_api_token(
        &self,
        name: &str,
        scope: TokenScope,
        token_hash: &str,
        expires_at: Option<Timestamp>,
        actor: &str,
        now: Timestamp,
    ) -> Result<ApiTokenId> {
        self.write(|tx| {
            console::create_api_token(tx, name, scope, token_hash, expires_at, actor, now)
        })
    }
    /// A token by the hash of its value (revoked ones too: the caller checks).
    pub fn api_token(&self, token_hash: &str) -> Result<Option<ApiTokenRecord>> {
        self.read(|tx| console::api_token(tx, token_hash))
    }
    pub fn api_tokens(&self) -> Result<Vec<ApiTokenRecord>> {
        self.read(console::api_tokens)
    }
    pub fn touch_api_token(&self, id: ApiTokenId, now: Timestamp) -> Result<()> {
        self.write(|tx| console::touch_api_token(tx, id, now))
    }
    /// `NotFound` unless the token exists and is not revoked yet (audited).
    pub fn revoke_api_token(&self, id: ApiTokenId, actor: &str, now: Timestamp) -> Result<()> {
        self.write(|tx| console::revoke_api_token(tx, id, actor, now))
    }
    /// Takes a named lock (`source:NAME` around a run, `scheduler` for the scheduler
    /// leader) unless someone holds it: `None` then. Dropping the returned value releases
    /// it. PostgreSQL: a session advisory lock on a connection of its own, shared by every
    /// process on the database. SQLite: a `run_locks` row naming this process, taken over
    /// when that process is gone. Blocking like every other method (drop it off the async
    /// runtime too).
    pub fn try_lock(&self, name: &str, holder: &str, now: Timestamp) -> Result<Option<StoreLock>> {
        match &self.backend {
            Backend::Sqlite(s) => s.lock_named(name, holder, now),
            Backend::Postgres(p) => p.lock_named(name, holder, now),
        }
    }
    /// Who holds the named lock, as far as the database says: on SQLite the holder and
    /// process id of its `run_locks` row (`None`: no row; the process may be gone, which
    /// [`Store::try_lock`] finds out). A PostgreSQL advisory lock names nobody: `None`.
    pub fn lock_holder(&self, name: &str) -> Result<Option<(String, i64)>> {
        match &self.backend {
            Backend::Sqlite(_) => self.read(|tx| {
                sql::query_opt(
                    tx,
                    "SELECT holder, pid FROM run_locks WHERE name = ?",
                    &[sql::Value::Text(name.into())],
                    |r| Ok((r.text(0)?, r.i64(1)?)),
                )
            }),
            Backend::Postgres(_) => Ok(None),
        }
    }
}

/// Whether `database` (as [`open`] takes it) names a PostgreSQL server: `postgres://…`,
/// `postgresql://…`, or libpq's `host=… dbname=…` settings.
fn names_postgres(database: &str) -> bool {
    let first = database.trim_start();
    if first.starts_with("postgres://") || first.starts_with("postgresql://") {
        return true;
    }
    // libpq's settings start with a key (letters and `_`) and an `=`, spaces allowed
    // around it: any key, not only those listed here (`sslrootcert=`, `keepalives=` …),
    // so that no such string is taken for a file name and shown whole, password and all.
    let key_end = first
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(first.len());
    key_end > 0
        && first[..1].chars().all(|c| c.is_ascii_alphabetic())
        && first[key_end..].trim_start().starts_with('=')
}

/// The SQLite file `database` (not a PostgreSQL one) names: `sqlite:PATH` or a plain path.
fn sqlite_path(database: &str) -> &str {
    database
        .strip_prefix("sqlite://")
        .or_else(|| database.strip_prefix("sqlite:"))
        .unwrap_or(database)
}

/// How a message names the database `database` names (as [`open`] takes it), never with
/// its password, in whichever form it was given (a URL's userinfo or `?password=`,
/// libpq's `password=`): a PostgreSQL server as `PostgreSQL at host:port (user …,
/// database …)`, a SQLite file by its path.
pub fn describe_database(database: &str) -> String {
    let database = database.trim();
    if names_postgres(database) {
        return pg::describe_settings(database);
    }
    let path = sqlite_path(database);
    // Another server's URL (which `open` refuses) is named by its scheme alone.
    match other_scheme(path) {
        Some(scheme) => format!("a {scheme}:// database"),
        None => path.to_owned(),
    }
}

/// The scheme of `path` when it is another server's URL (`mysql://u:p@host/db`), not a
/// file name: named alone, never with what follows (a password).
fn other_scheme(path: &str) -> Option<&str> {
    let (scheme, _) = path.split_once("://")?;
    (!scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(scheme)
}

/// Opens the database `database` names: `postgres://…`, `postgresql://…` or libpq's
/// `host=… dbname=…` settings for PostgreSQL, else SQLite at `sqlite:PATH` or a plain
/// path.
pub fn open(database: &str) -> Result<Store> {
    let database = database.trim();
    if names_postgres(database) {
        return Ok(Store {
            backend: Backend::Postgres(Box::new(PgStore::connect(database)?)),
        });
    }
    let path = sqlite_path(database);
    if let Some(scheme) = other_scheme(path) {
        return Err(StoreError::Invalid(format!(
            "a {scheme}:// database is not supported: use PostgreSQL (postgres://USER@HOST/DATABASE) or SQLite (a file path or sqlite:PATH)"
        )));
    }
    if path.is_empty() {
        return Err(StoreError::Invalid(
            "no database given: use a file path, sqlite:PATH or postgres://USER@HOST/DATABASE"
                .into(),
        ));
    }
    Ok(Store {
        backend: Backend::Sqlite(Box::new(SqliteStore::open(Path::new(path))?)),
    })
}

/// Counts a run ends with.
pub fn counts_json(c: &Counts) -> String {
    serde_json::to_string(c).unwrap_or_else(|_| "{}".into())
}

/// The most warnings a run keeps; past it the last one says how many more there were.
pub const MAX_RUN_WARNINGS: usize = 100;
/// The longest warning a run keeps, in characters (longer ones are cut with `…`).
pub const MAX_RUN_WARNING_CHARS: usize = 2000;

/// A run's warnings as stored: a JSON array capped at [`MAX_RUN_WARNINGS`] entries of at
/// most [`MAX_RUN_WARNING_CHARS`] characters, `None` for none.
pub(crate) fn warnings_json(warnings: &[String]) -> Option<String> {
    if warnings.is_empty() {
        return None;
    }
    let cut = |w: &String| -> String {
        if w.chars().count() > MAX_RUN_WARNING_CHARS {
            let mut s: String = w.chars().take(MAX_RUN_WARNING_CHARS - 1).collect();
            s.push('…');
            s
        } else {
            w.clone()
        }
    };
    let kept: Vec<String> = if warnings.len() > MAX_RUN_WARNINGS {
        let mut kept: Vec<String> = warnings[..MAX_RUN_WARNINGS - 1].iter().map(cut).collect();
        kept.push(format!(
            "… and {} more warnings not kept",
            warnings.len() - (MAX_RUN_WARNINGS - 1)
        ));
        kept
    } else {
        warnings.iter().map(cut).collect()
    };
    Some(serde_json::to_string(&kept).unwrap_or_else(|_| "[]".into()))
}

#[cfg(test)]
mod tests {
    use super::describe_database;

    #[test]
    fn a_database_is_described_without_its_password_in_every_form() {
        for (given, shown) in [
            (
                "postgres://rs:hunter2@db.example:5433/roster",
                "PostgreSQL at db.example:5433 (user rs, database roster)",
            ),
            (
                "postgresql://rs@db.example/roster?password=hunter2&sslmode=require",
                "PostgreSQL at db.example:5432 (user rs, database roster)",
            ),
            (
                "host=db.example user=rs password=hunter2 dbname=roster",
                "PostgreSQL at db.example:5432 (user rs, database roster)",
            ),
            (
                "password = 'hunter2' host=db.example",
                "PostgreSQL at db.example:5432 (user (default), database (default))",
            ),
            (
                "host=db.example password=hunter2 port=notaport",
                "a PostgreSQL database whose settings do not parse",
            ),
            ("mysql://admin:hunter2@db.example/rs", "a mysql:// database"),
            (
                "sqlite:/var/lib/rostersync/rostersync.db",
                "/var/lib/rostersync/rostersync.db",
            ),
            ("data/rostersync.db", "data/rostersync.db"),
            (
                "sslrootcert=/etc/ca.pem host=db.example password=hunter2 dbname=roster",
                "PostgreSQL at db.example:5432 (user (default), database roster)",
            ),
            (
                "  postgres://rs:hunter2@db.example/roster",
                "PostgreSQL at db.example:5432 (user rs, database roster)",
            ),
        ] {
            let described = describe_database(given);
            assert_eq!(described, shown, "{given}");
            assert!(!described.contains("hunter2"), "{given}: {described}");
        }
    }
}
