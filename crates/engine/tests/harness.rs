//! A fresh store per test, on SQLite (a temporary folder) and on PostgreSQL (a schema of
//! its own, dropped afterwards; the rules for a missing PostgreSQL are `test_kit`'s), a
//! tokio runtime for the engine's pulls, and a [`ManualClock`].

use std::path::{Path, PathBuf};

use engine::{Context, ManualClock, Progress, SyncOutcome, SyncRequest};
use jiff::Timestamp;
use rostersync_core::plan::{PlanItem, SyncKind};
use rostersync_core::settings::Config;
use store::{Store, Trigger};
pub use test_kit::{Backend, sample_district};
use test_kit::{PgSchema, TempDir};

/// The time the tests' clock stands at until a test moves it.
pub const START: &str = "2030-05-06T07:08:09Z";

/// The tests' master key: 32 zero bytes, base64.
const TEST_MASTER_KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

/// One test's world: a store, a runtime, a clock and a scratch folder.
///
/// Fields drop in order: the store's connections close before the schema is dropped.
pub struct Env {
    store: Store,
    /// The master key secrets are sealed with (a fixed test key).
    pub keyring: store::keyring::Keyring,
    pub runtime: tokio::runtime::Runtime,
    pub clock: ManualClock,
    /// A folder the test may write packages into (removed afterwards).
    pub dir: TempDir,
    /// The most plan items a run holds ([`Context::max_plan_items`]).
    pub max_plan_items: std::cell::Cell<usize>,
    /// How many people's accounts a wide plan reads at once ([`Context::account_chunk`]).
    pub account_chunk: std::cell::Cell<usize>,
    /// Every progress line the engine reported, in order.
    pub progress: std::sync::Mutex<Vec<String>>,
    /// SQL to run behind the store's back (SQLite's, PostgreSQL's) once, when a run
    /// reports that it applies: the directory moving between a plan and its apply.
    pub on_applying: std::sync::Mutex<Option<(String, String)>>,
    backend: Backend,
    /// The PostgreSQL schema, if any: dropped last.
    schema: Option<PgSchema>,
}

impl Env {
    /// A fresh store on `backend`; `None` when PostgreSQL is not available outside CI.
    pub fn new(backend: Backend) -> Option<Env> {
        let schema = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PgSchema::create("eng")?),
        };
        let dir = TempDir::new("rostersync-engine-test");
        let url = match &schema {
            None => dir.join("rostersync.db").display().to_string(),
            Some(schema) => schema.url().to_owned(),
        };
        let store = store::open(&url).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        Some(Env {
            store,
            keyring: store::keyring::Keyring::from_base64(TEST_MASTER_KEY).unwrap(),
            runtime,
            clock: ManualClock::new(START.parse().unwrap()),
            dir,
            max_plan_items: std::cell::Cell::new(engine::MAX_PLAN_ITEMS),
            account_chunk: std::cell::Cell::new(engine::ACCOUNT_CHUNK),
            progress: std::sync::Mutex::new(Vec::new()),
            on_applying: std::sync::Mutex::new(None),
            backend,
            schema,
        })
    }

    /// Another fresh store on the same backend.
    pub fn fresh(&self) -> Env {
        Env::new(self.backend).expect("the backend of a running test is available")
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs SQL straight on the database, behind the store's back: `sqlite` on SQLite,
    /// `postgres` (in the test's schema) on PostgreSQL. For faults the store cannot make.
    pub fn run_sql(&self, sqlite: &str, postgres: &str) {
        let db = self.dir.join("rostersync.db");
        test_kit::run_sql(&db, self.schema.as_ref(), sqlite, postgres);
    }

    /// Saves `toml` as the settings (no secrets: CSV sources have none).
    pub fn configure(&self, toml: &str) {
        let config = Config::from_toml(toml).unwrap();
        self.store()
            .save_config(&config, &[], "test", self.now())
            .unwrap();
    }

    /// Configures the CSV package at `path` as the source `sis`, with `extra` TOML.
    pub fn csv_source(&self, path: &Path, extra: &str) {
        self.configure(&format!(
            "[[source]]\nname = \"sis\"\nkind = \"oneroster-csv\"\npath = \"{}\"\n{extra}",
            path.display()
        ));
    }

    pub fn now(&self) -> Timestamp {
        engine::Clock::now(&self.clock)
    }

    /// Runs `f` with an engine context on this store, runtime and clock.
    pub fn with_ctx<T>(&self, f: impl FnOnce(&Context<'_>) -> T) -> T {
        let progress = &self.progress;
        let (on_applying, db, schema) = (
            &self.on_applying,
            self.dir.join("rostersync.db"),
            self.schema.as_ref(),
        );
        let record = |p: Progress| {
            if matches!(p, Progress::Applying { .. })
                && let Some((sqlite, postgres)) =
                    on_applying.lock().unwrap_or_else(|e| e.into_inner()).take()
            {
                test_kit::run_sql(&db, schema, &sqlite, &postgres);
            }
            let mut lines = progress.lock().unwrap_or_else(|e| e.into_inner());
            lines.push(p.to_string());
        };
        let handle = self.runtime.handle().clone();
        let ctx = Context {
            store: self.store(),
            keyring: Some(&self.keyring),
            runtime: &handle,
            progress: &record,
            clock: &self.clock,
            holder: "engine-test",
            max_plan_items: self.max_plan_items.get(),
            account_chunk: self.account_chunk.get(),
        };
        f(&ctx)
    }

    /// A dry run of the source `sis` ([`engine::preview`]): its outcome, and the items it
    /// handed out.
    pub fn preview(&self, kind: SyncKind) -> (SyncOutcome, Vec<PlanItem>) {
        self.preview_source("sis", kind)
    }

    /// A dry run of the source `source`: its outcome, and the items it handed out.
    pub fn preview_source(&self, source: &str, kind: SyncKind) -> (SyncOutcome, Vec<PlanItem>) {
        let mut items = Vec::new();
        let req = request(source, kind);
        let outcome = self
            .with_ctx(|ctx| engine::preview(ctx, &req, &mut |item| items.push(item)))
            .unwrap();
        (outcome, items)
    }

    /// Syncs the source `sis` (`kind`, a dry run or not); the engine takes its lock.
    pub fn sync(&self, kind: SyncKind, dry_run: bool) -> SyncOutcome {
        self.sync_source("sis", kind, dry_run)
    }

    /// Syncs the source `source` (`kind`; a dry run, [`Env::preview_source`], or not, when
    /// the engine takes its lock).
    pub fn sync_source(&self, source: &str, kind: SyncKind, dry_run: bool) -> SyncOutcome {
        if dry_run {
            return self.preview_source(source, kind).0;
        }
        self.with_ctx(|ctx| engine::sync(ctx, &request(source, kind), None))
            .unwrap()
    }
}

/// A sync of `source` as the CLI asks for it.
fn request(source: &str, kind: SyncKind) -> SyncRequest {
    SyncRequest {
        source: source.into(),
        kind,
        trigger: Trigger::Cli,
        approved: false,
    }
}

/// Copies the sample district into `dir/name` (to change it there).
pub fn copy_sample(dir: &Path, name: &str) -> PathBuf {
    test_kit::copy_sample_district(dir, name, "")
}

/// Runs `test` in a fresh [`Env`] on `backend`, unless that backend is skipped here.
pub fn run(backend: Backend, test: fn(Env)) {
    if let Some(env) = Env::new(backend) {
        test(env);
    }
}

/// Instantiates each listed `fn(Env)` on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),+ $(,)?) => {
        test_kit::on_both!($crate::harness::run; $($name),+);
    };
}
