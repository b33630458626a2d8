//! `rostersync backup` and `rostersync restore` end to end: a synced installation is backed
//! up and restored into a new one on the other database (the same one when PostgreSQL is
//! not here), which then lists the same accounts and runs and whose next sync changes
//! nothing; a wrong or missing key, a damaged file and a non-empty target are refused
//! with exit code 2 and nothing made.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use test_kit::{PgSchema, TempDir};

use crate::harness::{Cli, sample_district};

crate::on_both_backends!(
    a_synced_directory_moves_to_another_installation,
    refusals_are_clear_and_make_nothing,
);

const MAPPING: &str = "[source.user_mapping]\ntranslate_email = [{ from = \"students.district.k12.us\", to = \"district.k12.us\" }]\nappend_domain = \"district.k12.us\"\n";

fn csv_source(path: &Path) -> String {
    format!(
        "[[source]]\nname = \"sis\"\nkind = \"oneroster-csv\"\npath = \"{}\"\n{MAPPING}",
        path.display()
    )
}

/// An installation that has not been `init`ed: where a backup is restored.
struct Target {
    dir: TempDir,
    /// Its database when on PostgreSQL (dropped with it).
    schema: Option<PgSchema>,
}

impl Target {
    /// On PostgreSQL when `postgres` and it is here, else on SQLite.
    fn new(postgres: bool) -> Target {
        let schema = if postgres {
            PgSchema::create("cli_restore")
        } else {
            None
        };
        Target {
            dir: TempDir::new("rostersync-restore"),
            schema,
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The data directory with `key` as its master key, as an admin makes it.
    fn with_key(self, key: &[u8]) -> Target {
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt as _;
            builder.mode(0o700);
        }
        builder.create(self.data()).unwrap();
        std::fs::write(self.data().join("master.key"), key).unwrap();
        self
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rostersync"));
        c.arg("--data-dir").arg(self.data());
        if let Some(schema) = &self.schema {
            c.arg("--database").arg(schema.url());
        }
        c.args(args)
            .env_remove("ROSTERSYNC_MASTER_KEY")
            .env_remove("ROSTERSYNC_DATABASE")
            .env_remove("ROSTERSYNC_DATA_DIR");
        c.output().unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.run(&all);
        assert!(
            out.status.success(),
            "rostersync {all:?}: {:?}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Runs a command that must be refused (exit 2): its stderr.
    fn refused(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        err
    }

    /// Whether a database was made: the SQLite file, or any table in the schema.
    fn has_database(&self) -> bool {
        match &self.schema {
            None => self.data().join("rostersync.db").exists(),
            Some(schema) => {
                let n: i64 = test_kit::connect(schema.admin())
                    .query_one(
                        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = $1",
                        &[&schema.name()],
                    )
                    .unwrap()
                    .get(0);
                n > 0
            }
        }
    }
}

fn is_postgres(cli: &Cli) -> bool {
    cli.open_store().backend() == "postgres"
}

/// A synced installation (with an API token) and its backup.
fn synced_with_backup(cli: &Cli) -> PathBuf {
    cli.configure(&csv_source(&sample_district()));
    cli.json(&["sync", "--source", "sis"]);
    cli.ok(&["token", "create", "--scope", "read", "--name", "helpdesk"]);
    let file = cli.dir.join("directory.backup");
    let out = cli.ok(&["backup", file.to_str().unwrap()]);
    assert!(out.starts_with("backed up "), "{out}");
    assert!(out.contains("fingerprint"), "{out}");
    file
}

fn a_synced_directory_moves_to_another_installation(cli: Cli) {
    let file = synced_with_backup(&cli);
    let name = file.to_str().unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "a backup is private");
    }
    let out = cli.run(&["backup", name]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    let again = cli.json(&["backup", name, "--force"]);
    assert!(again["rows"].as_u64().unwrap() > 0);
    assert!(!cli.dir.join("directory.backup.partial").exists());

    let key = std::fs::read(cli.dir.join("data/master.key")).unwrap();
    let target = Target::new(!is_postgres(&cli)).with_key(&key);
    let restored = target.json(&["restore", name]);
    assert_eq!(restored["rows"], again["rows"]);
    assert_eq!(restored["from_backend"], cli.open_store().backend());

    assert_eq!(
        target.json(&["users", "list"]),
        cli.json(&["users", "list"])
    );
    assert_eq!(target.json(&["runs", "list"]), cli.json(&["runs", "list"]));
    assert_eq!(
        target.json(&["token", "list"]),
        cli.json(&["token", "list"])
    );
    let run = target.json(&["sync", "--source", "sis"]);
    assert_eq!(run["status"], "succeeded");
    for count in [
        "created",
        "updated",
        "linked",
        "deactivated",
        "reactivated",
        "errors",
    ] {
        assert_eq!(run["counts"][count], 0, "{count}: {run}");
    }
    assert_eq!(
        target.json(&["users", "list"]),
        cli.json(&["users", "list"])
    );
}

fn refusals_are_clear_and_make_nothing(cli: Cli) {
    let file = synced_with_backup(&cli);
    let name = file.to_str().unwrap();
    let other = !is_postgres(&cli);

    let wrong = Target::new(other).with_key(b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n");
    let err = wrong.refused(&["restore", name]);
    assert!(
        err.contains("sealed with another master key (fingerprint ")
            && err.contains("ROSTERSYNC_MASTER_KEY"),
        "{err}"
    );
    assert!(!wrong.has_database(), "nothing made");

    let keyless = Target::new(other);
    let err = keyless.refused(&["restore", name]);
    assert!(
        err.contains("no master key") && err.contains("master.key"),
        "{err}"
    );
    assert!(!keyless.has_database());
    assert!(!keyless.data().exists());

    let key = std::fs::read(cli.dir.join("data/master.key")).unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() / 2;
    bytes[at] = if bytes[at] == b'x' { b'y' } else { b'x' };
    let damaged = cli.dir.join("damaged.backup");
    std::fs::write(&damaged, &bytes).unwrap();
    let target = Target::new(other).with_key(&key);
    let err = target.refused(&["restore", damaged.to_str().unwrap()]);
    assert!(err.contains("damaged"), "{err}");
    assert!(!target.has_database());
    let doc: Value = serde_json::from_slice(
        &target
            .run(&["restore", damaged.to_str().unwrap(), "--json"])
            .stdout,
    )
    .unwrap();
    assert_eq!(doc["error"]["exit_code"], 2);

    // An installation made with `init` has its console owner: not empty.
    let err = String::from_utf8(cli.run(&["restore", name]).stderr).unwrap();
    assert!(
        err.contains("is not empty") && err.contains("rostersync init"),
        "{err}"
    );
    assert_eq!(cli.run(&["restore", name]).status.code(), Some(2));
}
