//! Running the binary in a throwaway data directory, on SQLite or a fresh PostgreSQL schema.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One isolated rostersync installation.
pub struct Cli {
    pub dir: PathBuf,
    database: Option<String>,
    schema: Option<(String, String)>,
}

static N: AtomicU32 = AtomicU32::new(0);

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The admin URL of the test PostgreSQL, or `None` to skip (never under CI).
pub fn postgres_url() -> Option<String> {
    match std::env::var("ROSTERSYNC_TEST_POSTGRES") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var("CI").is_err(),
                "CI is set but ROSTERSYNC_TEST_POSTGRES is not: the PostgreSQL tests must run in CI"
            );
            eprintln!("skipped: set ROSTERSYNC_TEST_POSTGRES to run the PostgreSQL tests");
            None
        }
    }
}

impl Cli {
    /// A fresh installation, or `None` when the backend is not available here.
    pub fn new(backend: Backend) -> Option<Cli> {
        let dir = std::env::temp_dir().join(unique("rostersync-cli"));
        std::fs::create_dir_all(&dir).unwrap();
        let (database, schema) = match backend {
            Backend::Sqlite => (None, None),
            Backend::Postgres => {
                let admin = postgres_url()?;
                let name = unique("cli");
                let mut client = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
                client
                    .batch_execute(&format!("CREATE SCHEMA {name}"))
                    .unwrap();
                let sep = if admin.contains('?') { '&' } else { '?' };
                (
                    Some(format!("{admin}{sep}options=-c%20search_path%3D{name}")),
                    Some((admin, name)),
                )
            }
        };
        let cli = Cli {
            dir,
            database,
            schema,
        };
        cli.ok(&["init"]);
        Some(cli)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rostersync"));
        c.arg("--data-dir").arg(self.dir.join("data"));
        if let Some(db) = &self.database {
            c.arg("--database").arg(db);
        }
        c.args(args);
        c.env_remove("ROSTERSYNC_MASTER_KEY")
            .env_remove("ROSTERSYNC_DATABASE")
            .env_remove("ROSTERSYNC_DATA_DIR");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs and insists on exit 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "rostersync {args:?} exited {:?}\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs with `--json`, insisting on the exit code; returns the document.
    pub fn json_with_code(&self, args: &[&str], code: i32) -> Value {
        let mut all: Vec<&str> = args.to_vec();
        all.push("--json");
        let out = self.run(&all);
        assert_eq!(
            out.status.code(),
            Some(code),
            "rostersync {all:?}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    }

    pub fn json(&self, args: &[&str]) -> Value {
        self.json_with_code(args, 0)
    }

    pub fn write(&self, name: &str, body: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    /// Imports settings from TOML text.
    pub fn configure(&self, toml: &str) {
        let p = self.write("settings.toml", toml);
        self.ok(&["config", "import", p.to_str().unwrap()]);
    }

    /// The installation's database, opened directly: to set up what no command makes.
    pub fn open_store(&self) -> Box<dyn store::Store> {
        match &self.database {
            Some(url) => store::open(url).unwrap(),
            None => store::open(
                self.dir
                    .join("data")
                    .join("rostersync.db")
                    .to_str()
                    .unwrap(),
            )
            .unwrap(),
        }
    }

    pub fn users(&self) -> Vec<Value> {
        self.json(&["users", "list"]).as_array().unwrap().clone()
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some((admin, schema)) = &self.schema
            && let Ok(mut c) = postgres::Client::connect(admin, postgres::NoTls)
        {
            let _ = c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
        }
    }
}

/// The small district package the project ships.
pub fn sample_district() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../oneroster/tests/data/sample-district")
}

/// Copies the sample district to `dir`, appending `extra_users` rows to users.csv.
pub fn sample_district_with(dir: &Path, extra_users: &str) -> PathBuf {
    let to = dir.join("district");
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(sample_district()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    let users = to.join("users.csv");
    let mut text = std::fs::read_to_string(&users).unwrap();
    text.push_str(extra_users);
    std::fs::write(&users, text).unwrap();
    to
}

/// Instantiates a test for each backend.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { if let Some(cli) = $crate::harness::Cli::new($crate::harness::Backend::Sqlite) { super::$name(cli) } })+
        }
        mod postgres {
            $(#[test] fn $name() { if let Some(cli) = $crate::harness::Cli::new($crate::harness::Backend::Postgres) { super::$name(cli) } })+
        }
    };
}
