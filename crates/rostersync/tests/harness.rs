//! Running the binary in a throwaway data directory, on SQLite or a fresh PostgreSQL schema
//! (the rules for a missing PostgreSQL are `test_kit`'s).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
pub use test_kit::{Backend, sample_district};
use test_kit::{PgSchema, TempDir};

/// One isolated rostersync installation.
pub struct Cli {
    pub dir: TempDir,
    /// The PostgreSQL schema its database is, if any (dropped with the installation).
    schema: Option<PgSchema>,
}

impl Cli {
    /// A fresh installation, or `None` when the backend is not available here.
    pub fn new(backend: Backend) -> Option<Cli> {
        let schema = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PgSchema::create("cli")?),
        };
        let cli = Cli {
            dir: TempDir::new("rostersync-cli"),
            schema,
        };
        cli.ok(&["init"]);
        Some(cli)
    }

    /// The PostgreSQL URL its database is, if it is one.
    pub fn database_url(&self) -> Option<&str> {
        self.schema.as_ref().map(PgSchema::url)
    }

    /// Runs with `--database database` in place of the installation's own.
    pub fn run_on(&self, database: &str, args: &[&str]) -> Output {
        let mut c = command_in(&self.dir.join("data"));
        c.arg("--database").arg(database).args(args);
        c.output().unwrap()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = command_in(&self.dir.join("data"));
        if let Some(schema) = &self.schema {
            c.arg("--database").arg(schema.url());
        }
        c.args(args);
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
    pub fn open_store(&self) -> store::Store {
        match &self.schema {
            Some(schema) => store::open(schema.url()).unwrap(),
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

    /// Runs SQL on the installation's database behind the store's back (`sqlite` on
    /// SQLite, `postgres` on PostgreSQL): for faults no command makes.
    pub fn sql(&self, sqlite: &str, postgres: &str) {
        let db = self.dir.join("data").join("rostersync.db");
        test_kit::run_sql(&db, self.schema.as_ref(), sqlite, postgres);
    }

    pub fn users(&self) -> Vec<Value> {
        self.json(&["users", "list"]).as_array().unwrap().clone()
    }
}

/// The binary on the data directory `data`, with none of the environment that names
/// another installation.
pub fn command_in(data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rostersync"));
    c.arg("--data-dir")
        .arg(data)
        .env_remove("ROSTERSYNC_MASTER_KEY")
        .env_remove("ROSTERSYNC_DATABASE")
        .env_remove("ROSTERSYNC_DATA_DIR");
    c
}

/// A running `rostersync serve` on a free port, without its scheduler; killed on drop.
pub struct Serve {
    child: Child,
    /// Where it answers: `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Serve {
    /// Starts the command `serve_command` makes from serve's arguments (the caller's
    /// installation, environment, umask…) and waits until it answers on its port.
    pub fn start(serve_command: impl FnOnce(&[&str]) -> Command) -> Serve {
        Serve::start_with(serve_command, Stdio::null())
    }

    /// As [`Serve::start`], keeping serve's stderr for [`Serve::terminate`] (for tests
    /// that read what it says on the way out; anything long-running would fill the pipe).
    pub fn start_keeping_stderr(serve_command: impl FnOnce(&[&str]) -> Command) -> Serve {
        Serve::start_with(serve_command, Stdio::piped())
    }

    fn start_with(serve_command: impl FnOnce(&[&str]) -> Command, stderr: Stdio) -> Serve {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let listen = format!("127.0.0.1:{port}");
        let child = serve_command(&["serve", "--listen", &listen, "--no-scheduler"])
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let serve = Serve {
            child,
            base: format!("http://{listen}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while reqwest::blocking::get(format!("{}/healthz", serve.base)).is_err() {
            assert!(Instant::now() < deadline, "serve did not answer");
            std::thread::sleep(Duration::from_millis(50));
        }
        serve
    }

    /// Sends SIGTERM and waits (at most 20 s) for the exit: its code, and its stderr when
    /// started with [`Serve::start_keeping_stderr`] (else empty).
    pub fn terminate(mut self) -> (Option<i32>, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        let code = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status.code();
            }
            assert!(
                Instant::now() < deadline,
                "serve did not stop within 20 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            std::io::Read::read_to_string(&mut pipe, &mut stderr).unwrap();
        }
        (code, stderr)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copies the sample district to `dir`, appending `extra_users` rows to users.csv.
pub fn sample_district_with(dir: &Path, extra_users: &str) -> PathBuf {
    test_kit::copy_sample_district(dir, "district", extra_users)
}

/// Runs `test` with a fresh installation on `backend`, unless that backend is skipped here.
pub fn run(backend: Backend, test: fn(Cli)) {
    if let Some(cli) = Cli::new(backend) {
        test(cli);
    }
}

/// Instantiates a test for each backend.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        test_kit::on_both!($crate::harness::run; $($name),+);
    };
}
