//! A fresh store per test, on SQLite (a temporary folder) and on PostgreSQL (a schema of
//! its own in the database `ROSTERSYNC_TEST_POSTGRES` names, dropped afterwards; a
//! missing variable fails under `CI=true` and otherwise says loudly it was skipped), a
//! tokio runtime for the engine's pulls, and a [`ManualClock`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use engine::{Context, ManualClock, Progress, SyncOutcome, SyncRequest};
use jiff::Timestamp;
use rostersync_core::plan::SyncKind;
use rostersync_core::settings::Config;
use store::{Store, Trigger};

/// The time the tests' clock stands at until a test moves it.
pub const START: &str = "2030-05-06T07:08:09Z";

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One test's world: a store, a runtime, a clock and a scratch folder.
pub struct Env {
    store: Option<Box<dyn Store>>,
    pub runtime: tokio::runtime::Runtime,
    pub clock: ManualClock,
    /// A folder the test may write packages into (removed afterwards).
    pub dir: PathBuf,
    schema: Option<(String, String)>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique(prefix: &str) -> String {
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

fn postgres_url() -> Option<String> {
    match std::env::var("ROSTERSYNC_TEST_POSTGRES") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
            assert!(
                !ci,
                "CI is set but ROSTERSYNC_TEST_POSTGRES is not: the engine's PostgreSQL tests must run in CI \
                 (eval \"$(scripts/pg-test-cluster start)\")"
            );
            eprintln!(
                "\n*** skipped: set ROSTERSYNC_TEST_POSTGRES to run the engine tests on PostgreSQL ***\n"
            );
            None
        }
    }
}

impl Env {
    /// A fresh store on `backend`; `None` when PostgreSQL is not available outside CI.
    pub fn new(backend: Backend) -> Option<Env> {
        let dir = std::env::temp_dir().join(unique("rostersync-engine-test"));
        std::fs::create_dir_all(&dir).unwrap();
        let (url, schema) = match backend {
            Backend::Sqlite => (dir.join("rostersync.db").display().to_string(), None),
            Backend::Postgres => {
                let Some(admin) = postgres_url() else {
                    let _ = std::fs::remove_dir_all(&dir);
                    return None;
                };
                let name = unique("eng");
                let mut c = postgres::Client::connect(&admin, postgres::NoTls)
                    .unwrap_or_else(|e| panic!("cannot connect to ROSTERSYNC_TEST_POSTGRES: {e}"));
                c.batch_execute(&format!("CREATE SCHEMA {name}")).unwrap();
                let sep = if admin.contains('?') { '&' } else { '?' };
                (
                    format!("{admin}{sep}options=-c%20search_path%3D{name}"),
                    Some((admin, name)),
                )
            }
        };
        let store = store::open(&url).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        Some(Env {
            store: Some(store),
            runtime,
            clock: ManualClock::new(START.parse().unwrap()),
            dir,
            schema,
        })
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_deref().expect("the store is open")
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
        let quiet = |_: Progress| {};
        let handle = self.runtime.handle().clone();
        let ctx = Context {
            store: self.store(),
            keyring: None,
            runtime: &handle,
            progress: &quiet,
            clock: &self.clock,
        };
        f(&ctx)
    }

    /// Syncs the source `sis` (`kind`, a dry run or not) under its lock.
    pub fn sync(&self, kind: SyncKind, dry_run: bool) -> SyncOutcome {
        let _lock = engine::lock_source(self.store(), "sis", "engine-test", &self.clock).unwrap();
        self.with_ctx(|ctx| {
            engine::sync(
                ctx,
                &SyncRequest {
                    source: "sis".into(),
                    kind,
                    dry_run,
                    trigger: Trigger::Cli,
                    approved: false,
                },
            )
        })
        .unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Close the store's connections first so nothing holds locks in the schema.
        self.store = None;
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some((admin, schema)) = &self.schema
            && let Ok(mut c) = postgres::Client::connect(admin, postgres::NoTls)
        {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
        }
    }
}

/// The small district package the project ships.
pub fn sample_district() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../oneroster/tests/data/sample-district")
}

/// Copies the sample district into `dir/name` (to change it there).
pub fn copy_sample(dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(name);
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(sample_district()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    to
}

/// Instantiates each listed `fn(Env)` on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() {
                if let Some(env) = $crate::harness::Env::new($crate::harness::Backend::Sqlite) { super::$name(env) }
            })+
        }
        mod postgres {
            $(#[test] fn $name() {
                if let Some(env) = $crate::harness::Env::new($crate::harness::Backend::Postgres) { super::$name(env) }
            })+
        }
    };
}
