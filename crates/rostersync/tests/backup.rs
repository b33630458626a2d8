//! `rostersync backup` and `rostersync restore` end to end: a synced installation is backed
//! up and restored into a new one on the other database (the same one when PostgreSQL is
//! not here), which then lists the same accounts and runs and whose next sync changes
//! nothing; a directory synced, merged, held, reviewed and undone is backed up while
//! `serve` runs a sync started through the API, and both that backup and one taken after
//! restore (the first as one side of the sync, the second identical in everything the CLI
//! and the API show); a wrong or missing key, a damaged file and a non-empty target are
//! refused with exit code 2 and nothing made.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use test_kit::{PgSchema, TempDir};

use crate::harness::{Cli, Serve, command_in, sample_district, sample_district_with};

crate::on_both_backends!(
    a_synced_directory_moves_to_another_installation,
    refusals_are_clear_and_make_nothing,
    a_lived_in_directory_moves_while_serve_syncs,
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

    fn command(&self, args: &[&str]) -> Command {
        let mut c = command_in(&self.data());
        if let Some(schema) = &self.schema {
            c.arg("--database").arg(schema.url());
        }
        c.args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
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
    // What an earlier backup (or another user) left at the partial file's name is
    // replaced, never written through: a world-readable file would keep its mode, a link
    // would send the backup elsewhere.
    let partial = cli.dir.join("directory.backup.partial");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let elsewhere = cli.write("elsewhere", "not a backup");
        std::os::unix::fs::symlink(&elsewhere, &partial).unwrap();
        let again = cli.json(&["backup", name, "--force"]);
        assert!(again["rows"].as_u64().unwrap() > 0);
        let untouched = std::fs::read_to_string(&elsewhere).unwrap() == "not a backup";
        assert!(untouched, "the backup was written through the link");
        std::fs::write(&partial, "stale").unwrap();
        std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let again = cli.json(&["backup", name, "--force"]);
    assert!(again["rows"].as_u64().unwrap() > 0);
    assert!(!partial.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "a backup is private, whatever was there before"
        );
        assert!(!std::fs::symlink_metadata(&file).unwrap().is_symlink());
    }

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

/// An installation the scenario reads everything of: the original, or a restored one.
trait Installation {
    fn cmd(&self, args: &[&str]) -> Command;
    /// Its database, opened directly: for what only the API shows (the audit log).
    fn db(&self) -> store::Store;

    /// Runs and insists on exit 0; returns stdout.
    fn text(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().unwrap();
        assert!(
            out.status.success(),
            "rostersync {args:?}: {:?}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs with `--json` and insists on exit 0; returns the document.
    fn doc(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let text = self.text(&all);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{all:?}: {e}: {text}"))
    }
}

impl Installation for Cli {
    fn cmd(&self, args: &[&str]) -> Command {
        self.command(args)
    }

    fn db(&self) -> store::Store {
        self.open_store()
    }
}

impl Installation for Target {
    fn cmd(&self, args: &[&str]) -> Command {
        self.command(args)
    }

    fn db(&self) -> store::Store {
        match &self.schema {
            Some(schema) => store::open(schema.url()).unwrap(),
            None => store::open(self.data().join("rostersync.db").to_str().unwrap()).unwrap(),
        }
    }
}

/// Everything an admin reads of a directory, each under the command that shows it: the
/// accounts, and each of `accounts` in full (links, aliases, revisions, groups, the SIS
/// card); the runs and each run with its items, hold and note; review cases of every
/// status; API tokens; console accounts; the settings; the reports; the locations; the
/// audit log (as `GET /api/v1/audit` serves it).
fn everything(i: &dyn Installation, accounts: &[String]) -> Vec<(String, Value)> {
    let mut all: Vec<(String, Value)> = [
        vec!["users", "list"],
        vec!["review", "list", "--status", "all"],
        vec!["token", "list"],
        vec!["report", "unlinked"],
        vec!["report", "duplicates"],
        vec!["report", "stale"],
        vec!["locations", "list"],
        vec!["users", "views"],
    ]
    .into_iter()
    .map(|args| (args.join(" "), i.doc(&args)))
    .collect();
    for args in [vec!["admin", "list"], vec!["config", "export"]] {
        all.push((args.join(" "), i.text(&args).into()));
    }
    for id in accounts {
        all.push((format!("users show {id}"), i.doc(&["users", "show", id])));
    }
    let runs = i.doc(&["runs", "list"]);
    for run in runs.as_array().unwrap() {
        let id = run["id"].to_string();
        all.push((format!("runs show {id}"), i.doc(&["runs", "show", &id])));
    }
    all.push(("runs list".into(), runs));
    let audit = i.db().audit_log(100_000).unwrap();
    all.push(("audit log".into(), serde_json::to_value(audit).unwrap()));
    all
}

fn assert_same(restored: &[(String, Value)], original: &[(String, Value)]) {
    let names = |all: &[(String, Value)]| all.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(restored), names(original));
    for ((name, got), (_, want)) in restored.iter().zip(original) {
        assert_eq!(got, want, "`{name}` differs after the restore");
    }
}

/// The counts of a run that wrote nothing.
fn assert_wrote_nothing(run: &Value) {
    assert_eq!(run["status"], "succeeded", "{run:#}");
    for count in [
        "created",
        "updated",
        "linked",
        "deactivated",
        "reactivated",
        "rekeyed",
        "groups",
        "errors",
    ] {
        assert_eq!(run["counts"][count], 0, "{count}: {run:#}");
    }
}

/// Edits the district's users.csv.
fn edit_users(district: &Path, edit: impl FnOnce(String) -> String) {
    let users = district.join("users.csv");
    std::fs::write(&users, edit(std::fs::read_to_string(&users).unwrap())).unwrap();
}

/// Extra students, so a sync takes long enough for a backup to start inside it.
const EXTRA_STUDENTS: u32 = 2_000;

/// The whole story. A directory is synced from a CSV district (with SSO
/// accounts, a person two SIS records claim, and enough students for a sync to take a
/// moment), a review case resolved (the other left open), an account merged, a run
/// undone, a run held and discarded, tokens made (one revoked) and a console account
/// added. Then `serve` syncs through the API (the undone changes come back) and a backup
/// starts the moment the API says the run started: it restores into the other database
/// either before the sync applied or after, never half, with its runs those of the
/// original, the sync's own interrupted when it was not applied. A second backup, once the
/// sync is over, restores identical in everything the CLI and the API show, its tokens
/// work, and the next sync from the same SIS writes nothing.
fn a_lived_in_directory_moves_while_serve_syncs(cli: Cli) {
    let extra: String = (0..EXTRA_STUDENTS)
        .map(|i| {
            format!(
                "usr-x-{i},active,2026-08-01T00:00:00Z,true,org-elem-1,student,x{i},,Kid{i},Extra,,{},,,,03,\n",
                300_000 + i
            )
        })
        .collect();
    let district = sample_district_with(
        &cli.dir,
        &format!(
            "usr-t-2b,active,2026-08-01T00:00:00Z,true,org-high-1,teacher,tnguyen2,,Tam,Nguyen,,T9002b,tam.nguyen@district.k12.us,,,,,\n{extra}"
        ),
    );
    let sso = cli.write(
        "sso.csv",
        "email,first_name,last_name,username\ntam.nguyen@district.k12.us,Tam,Nguyen,tn\nava.johnson@district.k12.us,Ava,Johnson,ava\n",
    );
    cli.json(&[
        "accounts",
        "import",
        sso.to_str().unwrap(),
        "--provider",
        "google",
    ]);
    cli.configure(&format!(
        "{}[source.safeguards]\nmax_deactivations = 1\n",
        csv_source(&district)
    ));
    let first = cli.json(&["sync"]);
    assert_eq!(first["status"], "succeeded", "{first:#}");

    // Review: Tam's account is claimed by two SIS people; one is linked, one stays open.
    let tam = cli.json(&["users", "show", "tam.nguyen@district.k12.us"])["id"].to_string();
    let cases = cli.json(&["review", "list"]);
    let case_of = |sid: &str| {
        cases
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["sourced_id"] == sid)
            .unwrap_or_else(|| panic!("no case for {sid}: {cases:#}"))["id"]
            .to_string()
    };
    cli.ok(&["review", "resolve", &case_of("usr-t-2"), "--link", &tam]);
    cli.json(&["sync"]);
    let review = cli.json(&["review", "list", "--status", "all"]);
    let statuses: Vec<&str> = review
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert!(
        statuses.contains(&"open") && statuses.contains(&"resolved"),
        "{review:#}"
    );

    // A merge: the account the sync made for usr-s-1 into the one she signs in with.
    let loser = cli.json(&["users", "show", "s100001@district.k12.us"])["id"].to_string();
    let survivor = cli.json(&["users", "show", "ava.johnson@district.k12.us"])["id"].to_string();
    cli.json(&["merge", &loser, "--into", &survivor]);
    assert_eq!(
        cli.json(&["users", "show", &survivor])["sis"]["sourced_id"],
        "usr-s-1"
    );

    // An undone run: a rename and a new student, synced and undone.
    edit_users(&district, |t| {
        t.replace(",Mia,Johnson,", ",Mia,Johnson-Park,")
            + "usr-s-9,active,2026-09-01T00:00:00Z,true,org-high-1,student,s100009,,Zoe,New,,100009,zoe.new@students.district.k12.us,,,,09,\n"
    });
    let changed = cli.json(&["sync"]);
    assert_eq!(changed["counts"]["created"], 1, "{changed:#}");
    let undone = changed["run_id"].to_string();
    cli.json(&["runs", "undo", &undone]);

    // A held run (two students gone, one deactivation allowed), discarded; the district
    // comes back.
    let whole = std::fs::read_to_string(district.join("users.csv")).unwrap();
    edit_users(&district, |t| {
        t.replace("usr-s-4,active", "usr-s-4,tobedeleted")
            .replace("usr-s-5,active", "usr-s-5,tobedeleted")
    });
    let held = cli.json_with_code(&["sync"], 1);
    assert_eq!(held["status"], "held", "{held:#}");
    cli.ok(&["runs", "discard", &held["run_id"].to_string()]);
    std::fs::write(district.join("users.csv"), whole).unwrap();

    // Tokens (one revoked) and a second console account.
    let write = cli
        .ok(&["token", "create", "--scope", "write", "--name", "scripts"])
        .trim()
        .to_owned();
    let revoked = cli
        .ok(&["token", "create", "--scope", "read", "--name", "old"])
        .trim()
        .to_owned();
    let old = cli
        .json(&["token", "list"])
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "old")
        .unwrap()["id"]
        .to_string();
    cli.ok(&["token", "revoke", &old]);
    cli.ok(&["admin", "add", "alice", "--role", "admin"]);
    let runs = cli.json(&["runs", "list"]);
    let statuses: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert!(
        statuses.contains(&"undone") && statuses.contains(&"discarded"),
        "{runs:#}"
    );

    // `serve` syncs (bringing back what was undone) while a backup is taken.
    let before = cli.users();
    let server = Serve::start(|args| cli.cmd(args));
    let base = &server.base;
    let client = reqwest::blocking::Client::new();
    let started = client
        .post(format!("{base}/api/v1/sources/sis/sync"))
        .bearer_auth(&write)
        .json(&serde_json::json!({"kind": "full"}))
        .send()
        .unwrap();
    assert_eq!(started.status().as_u16(), 202);
    let mid = cli.dir.join("mid-sync.backup");
    let out = cli.ok(&["backup", mid.to_str().unwrap()]);
    assert!(out.starts_with("backed up "), "{out}");
    let deadline = Instant::now() + Duration::from_secs(120);
    let synced = loop {
        let live: Value = client
            .get(format!("{base}/api/v1/sources/sis/sync"))
            .bearer_auth(&write)
            .send()
            .unwrap()
            .json()
            .unwrap();
        if live["finished"] == true {
            break live;
        }
        assert!(
            Instant::now() < deadline,
            "the sync did not finish: {live:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(server);
    assert_eq!(synced["status"], "succeeded", "{synced:#}");
    let api_run = synced["run_id"].to_string();
    let after = cli.users();
    assert_ne!(after, before, "the sync changed the directory");

    let key = std::fs::read(cli.dir.join("data/master.key")).unwrap();
    let other = !is_postgres(&cli);
    let original_runs = cli.json(&["runs", "list"]);
    let original_runs = original_runs.as_array().unwrap();

    // The backup taken during the sync: one side of it, whole.
    let early = Target::new(other).with_key(&key);
    early.doc(&["restore", mid.to_str().unwrap()]);
    let runs = early.doc(&["runs", "list"]);
    let runs = runs.as_array().unwrap();
    assert_eq!(original_runs[0]["id"].to_string(), api_run);
    let older = &original_runs[1..];
    assert!(
        runs.len() == older.len() || runs.len() == original_runs.len(),
        "{runs:#?}"
    );
    assert_eq!(
        runs[runs.len() - older.len()..],
        *older,
        "the runs before the sync, as they are"
    );
    // The sync's run, when the backup has it (it is recorded as the API answers).
    let caught = (runs.len() > older.len()).then(|| &runs[0]);
    let users = early.doc(&["users", "list"]);
    match caught {
        Some(run) if run["status"] == "succeeded" => {
            assert_eq!(*run, original_runs[0]);
            assert_eq!(users.as_array().unwrap(), &after, "after the sync");
        }
        _ => {
            if let Some(run) = caught {
                assert_eq!(run["id"].to_string(), api_run);
                assert_eq!(
                    run["status"], "interrupted",
                    "a run the backup caught running: {run:#}"
                );
            }
            assert_eq!(users.as_array().unwrap(), &before, "before the sync");
        }
    }
    eprintln!(
        "the backup taken during the sync holds its run as {:?}",
        caught.map(|r| &r["status"])
    );
    let resumed = early.doc(&["sync", "--source", "sis"]);
    assert_eq!(resumed["status"], "succeeded", "{resumed:#}");

    // The backup taken after: identical, and the next sync writes nothing.
    let file = cli.dir.join("directory.backup");
    cli.ok(&["backup", file.to_str().unwrap()]);
    let moved = Target::new(other).with_key(&key);
    moved.doc(&["restore", file.to_str().unwrap()]);
    let mut accounts: Vec<String> = after
        .iter()
        .filter(|u| {
            !u["sis"]["sourced_id"]
                .as_str()
                .is_some_and(|s| s.starts_with("usr-x-"))
        })
        .map(|u| u["id"].to_string())
        .collect();
    accounts.push(loser);
    let original = everything(&cli, &accounts);
    assert_same(&everything(&moved, &accounts), &original);
    assert_wrote_nothing(&moved.doc(&["sync", "--source", "sis"]));
    assert_eq!(moved.doc(&["users", "list"]).as_array().unwrap(), &after);

    // Its tokens work (the API keeps only their hashes), the revoked one does not.
    let server = Serve::start(|args| moved.cmd(args));
    let base = &server.base;
    let answer = |token: &str| {
        client
            .get(format!("{base}/api/v1/users"))
            .bearer_auth(token)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(answer(&write), 200);
    assert_eq!(answer(&revoked), 401);
}
