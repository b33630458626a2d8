//! `rostersync doctor` end to end: a fresh installation with a CSV source is healthy but
//! for its missing backup (exit 1) until `backup` runs; an open data directory, a wrong
//! master key, expired credentials and a missing installation are findings that say what
//! to do, with the exit code of the worst one; `--json` has one shape.

use std::path::Path;

use serde_json::Value;

use crate::harness::{Cli, command_in, sample_district};

crate::on_both_backends!(
    a_fresh_installation_needs_only_a_backup,
    a_wrong_master_key_is_a_problem,
    expired_credentials_are_a_problem,
    a_held_scheduler_lock_is_a_running_scheduler,
    a_count_that_drifted_is_a_problem_until_counted_again,
);

fn csv_source(path: &Path, extra: &str) -> String {
    format!(
        "[[source]]\nname = \"sis\"\nkind = \"oneroster-csv\"\npath = \"{}\"\n{extra}",
        path.display()
    )
}

/// The findings of `check`, in order.
fn findings<'a>(doc: &'a Value, check: &str) -> Vec<&'a Value> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == check)
        .collect()
}

/// The one finding of `check`.
fn finding<'a>(doc: &'a Value, check: &str) -> &'a Value {
    let all = findings(doc, check);
    assert_eq!(all.len(), 1, "{check} in {doc:#}");
    all[0]
}

/// The one finding of `check`, which has `status`.
fn finding_with<'a>(doc: &'a Value, check: &str, status: &str) -> &'a Value {
    let found = finding(doc, check);
    assert_eq!(found["status"], status, "{found}");
    found
}

/// What a finding says.
fn detail(found: &Value) -> &str {
    found["detail"].as_str().unwrap()
}

/// The checks of the findings that pass `keep`, in order.
fn checks(doc: &Value, keep: impl Fn(&Value) -> bool) -> Vec<&str> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| keep(f))
        .map(|f| f["check"].as_str().unwrap())
        .collect()
}

/// Every finding has the four fields, a known status and an action exactly when not ok;
/// the overall status is the worst.
fn assert_shape(doc: &Value) {
    let obj = doc.as_object().unwrap();
    assert_eq!(obj.len(), 2, "{doc:#}");
    let rank = |s: &str| ["ok", "warning", "problem"].iter().position(|x| *x == s);
    let mut worst = 0;
    for f in doc["findings"].as_array().unwrap() {
        let keys: Vec<&str> = f.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["action", "check", "detail", "status"], "{f}");
        let status = f["status"].as_str().unwrap();
        worst = worst.max(rank(status).unwrap_or_else(|| panic!("status {status}")));
        assert!(!detail(f).is_empty(), "{f}");
        assert_eq!(f["action"] == "", status == "ok", "{f}");
    }
    assert_eq!(
        rank(doc["status"].as_str().unwrap()),
        Some(worst),
        "{doc:#}"
    );
}

fn a_fresh_installation_needs_only_a_backup(cli: Cli) {
    cli.configure(&csv_source(&sample_district(), ""));
    let doc = cli.json_with_code(&["doctor"], 1);
    assert_shape(&doc);
    assert_eq!(doc["status"], "warning");
    let seen = checks(&doc, |_| true);
    let order = [
        "data_dir",
        "master_key",
        "schema",
        "source:sis",
        "scheduler",
        "backup",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|c| {
            seen.iter()
                .position(|x| x == c)
                .unwrap_or_else(|| panic!("{c}: {seen:?}"))
        })
        .collect();
    assert!(positions.is_sorted(), "{seen:?}");
    assert!(detail(finding_with(&doc, "data_dir", "ok")).contains("0700"));
    finding_with(&doc, "master_key", "ok");
    let schema = finding_with(&doc, "schema", "ok");
    assert!(
        detail(schema).ends_with(&format!("schema version {}", store::SCHEMA_VERSION)),
        "{schema}"
    );
    let source = finding_with(&doc, "source:sis", "ok");
    assert!(detail(source).contains("is readable"), "{source}");
    // The source runs by schedule and no `serve` leads: a warning.
    let scheduler = finding_with(&doc, "scheduler", "warning");
    assert!(detail(scheduler).contains("scheduled syncs are not running"));
    let backup = finding_with(&doc, "backup", "warning");
    assert_eq!(backup["detail"], "no backup recorded");
    assert_eq!(backup["action"], "rostersync backup FILE");
    finding_with(&doc, "held_runs", "ok");
    finding_with(&doc, "review", "ok");

    let file = cli.dir.join("nightly.rsbackup");
    cli.ok(&["backup", file.to_str().unwrap()]);
    let doc = cli.json_with_code(&["doctor"], 1);
    let backup = finding_with(&doc, "backup", "ok");
    assert_eq!(backup["action"], "");
    let said = detail(backup);
    assert!(said.contains("nightly.rsbackup"), "{said}");
    assert!(said.starts_with("last backup 0 hour(s) ago"), "{said}");
    // The scheduler warning is what is left.
    assert_eq!(checks(&doc, |f| f["status"] != "ok"), ["scheduler"]);

    // The text form: one line per finding, status and check in columns, then what to do.
    let out = cli.run(&["doctor"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        doc["findings"].as_array().unwrap().len(),
        "{text}"
    );
    assert!(lines[0].starts_with("ok       data_dir   "), "{text}");
    assert!(lines[0].ends_with("is private (0700)"), "{text}");
    assert!(
        lines.iter().any(|l| l.starts_with("warning  scheduler  ")
            && l.ends_with("— start `rostersync serve` (as a service)")),
        "{text}"
    );
}

/// The same installation under another key (32 zero bytes).
const OTHER_KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

fn a_wrong_master_key_is_a_problem(cli: Cli) {
    let out = cli
        .command(&["doctor", "--json"])
        .env("ROSTERSYNC_MASTER_KEY", OTHER_KEY)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_shape(&doc);
    assert_eq!(doc["status"], "problem");
    let key = finding_with(&doc, "master_key", "problem");
    assert!(
        detail(key).contains("ROSTERSYNC_MASTER_KEY does not match this database"),
        "{key}"
    );
    assert_eq!(key["action"], "restore the key from your backup");
    // The other checks still ran.
    finding_with(&doc, "schema", "ok");
    finding_with(&doc, "backup", "warning");

    // A key file that went missing is a problem too.
    std::fs::remove_file(cli.dir.join("data").join("master.key")).unwrap();
    let doc = cli.json_with_code(&["doctor"], 2);
    let key = finding_with(&doc, "master_key", "problem");
    assert!(detail(key).starts_with("no master key at "), "{key}");
}

fn expired_credentials_are_a_problem(cli: Cli) {
    cli.configure(&csv_source(
        &sample_district(),
        "credential_expires = \"2020-01-31\"\n",
    ));
    let doc = cli.json_with_code(&["doctor"], 2);
    assert_shape(&doc);
    let source = findings(&doc, "source:sis");
    let expired: Vec<&&Value> = source.iter().filter(|f| f["status"] == "problem").collect();
    assert_eq!(expired.len(), 1, "{source:?}");
    assert_eq!(
        expired[0]["detail"],
        "its credentials expired on 2020-01-31"
    );
    assert!(!expired[0]["action"].as_str().unwrap().is_empty());

    // A path that went away is a problem of the same source.
    let gone = cli.dir.join("gone");
    cli.configure(&csv_source(&gone, ""));
    let doc = cli.json_with_code(&["doctor"], 2);
    let source = finding_with(&doc, "source:sis", "problem");
    assert!(detail(source).starts_with("cannot read "), "{source}");
}

/// Group may enter the data directory: a warning that says how to close it.
#[cfg(unix)]
#[test]
fn an_open_data_directory_is_a_warning() {
    use std::os::unix::fs::PermissionsExt as _;
    let cli = Cli::new(crate::harness::Backend::Sqlite).unwrap();
    let data = cli.dir.join("data");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o750)).unwrap();
    let doc = cli.json_with_code(&["doctor"], 1);
    let dir = finding_with(&doc, "data_dir", "warning");
    assert!(detail(dir).contains("(0750)"), "{dir}");
    assert_eq!(dir["action"], format!("chmod 700 {}", data.display()));
}

/// No installation at all: problems that say to `init`, and nothing created.
#[test]
fn a_missing_installation_is_a_problem_not_a_failure() {
    let dir = test_kit::TempDir::new("rostersync-doctor");
    let data = dir.join("nowhere");
    let out = command_in(&data)
        .args(["doctor", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_shape(&doc);
    finding_with(&doc, "data_dir", "problem");
    let schema = finding_with(&doc, "schema", "problem");
    assert!(
        schema["action"]
            .as_str()
            .unwrap()
            .contains("rostersync init")
    );
    assert!(!data.exists(), "doctor creates nothing");
}

/// Whoever holds the `scheduler` lock (here the test, as `serve` would) leads: ok, and on
/// SQLite its row names it.
fn a_held_scheduler_lock_is_a_running_scheduler(cli: Cli) {
    cli.configure(&csv_source(&sample_district(), ""));
    let store = cli.open_store();
    let lock = store
        .try_lock("scheduler", "serve:test", jiff::Timestamp::now())
        .unwrap()
        .expect("the lock is free");
    let doc = cli.json_with_code(&["doctor"], 1);
    let said = detail(finding_with(&doc, "scheduler", "ok"));
    assert!(
        said.ends_with("holds the scheduler lock: scheduled syncs run"),
        "{said}"
    );
    if store.backend() == "sqlite" {
        let pid = std::process::id();
        assert!(
            said.starts_with(&format!("serve:test (process {pid})")),
            "{said}"
        );
    }
    drop(lock);
    let doc = cli.json_with_code(&["doctor"], 1);
    finding_with(&doc, "scheduler", "warning");
}

/// `--counts` compares the counts the database keeps (the console's, the safeguards'
/// population of each school) with a recount: one that drifted is a problem that says
/// which row and how to mend it, and `--recount` mends it. Without either flag the check
/// does not run (it reads every link).
fn a_count_that_drifted_is_a_problem_until_counted_again(cli: Cli) {
    cli.configure(&csv_source(&sample_district(), ""));
    cli.ok(&["sync"]);
    let doc = cli.json_with_code(&["doctor"], 1);
    assert!(findings(&doc, "counts").is_empty(), "{doc:#}");
    let doc = cli.json_with_code(&["doctor", "--counts"], 1);
    assert_shape(&doc);
    let said = detail(finding_with(&doc, "counts", "ok"));
    assert!(
        said.starts_with("the kept counts match a recount ("),
        "{said}"
    );

    let drift = "UPDATE location_counts SET accounts = accounts + 5";
    cli.sql(drift, drift);
    let doc = cli.json_with_code(&["doctor", "--counts"], 2);
    assert_shape(&doc);
    let found = finding_with(&doc, "counts", "problem");
    let said = detail(found);
    assert!(said.contains("kept counts differ from a recount"), "{said}");
    assert!(said.contains("location_counts source=sis org="), "{said}");
    assert!(said.contains(": kept "), "{said}");
    assert_eq!(found["action"], "count again: rostersync doctor --recount");

    let doc = cli.json_with_code(&["doctor", "--recount"], 1);
    let said = detail(finding_with(&doc, "counts", "ok"));
    assert!(said.ends_with(", counted again"), "{said}");
    let doc = cli.json_with_code(&["doctor", "--counts"], 1);
    finding_with(&doc, "counts", "ok");
}

/// `--online` fetches each REST source's URL: any HTTP answer is reachable, a refused
/// connection is a problem; without it nothing is sent.
#[test]
fn online_checks_reach_rest_sources() {
    use std::io::{Read as _, Write as _};
    let cli = Cli::new(crate::harness::Backend::Sqlite).unwrap();
    let up = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let up_port = up.local_addr().unwrap().port();
    let down_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let server = std::thread::spawn(move || {
        let (mut conn, _) = up.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = conn.read(&mut buf).unwrap();
        conn.write_all(
            b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        )
        .unwrap();
    });
    let source = |name: &str, port: u16| {
        format!(
            "[[source]]\nname = \"{name}\"\nkind = \"oneroster-api\"\nurl = \"http://127.0.0.1:{port}/ims/oneroster/v1p1\"\nauth = \"oauth2\"\nclient_id = \"k\"\ntoken_url = \"http://127.0.0.1:{port}/token\"\nclient_secret = \"s\"\n"
        )
    };
    cli.configure(&format!(
        "[network]\nallow_loopback = true\n{}{}",
        source("up", up_port),
        source("down", down_port)
    ));
    let offline = cli.json_with_code(&["doctor"], 1);
    assert!(
        findings(&offline, "source:up")
            .iter()
            .all(|f| !detail(f).contains("answered")),
        "{offline:#}"
    );
    let doc = cli.json_with_code(&["doctor", "--online"], 2);
    server.join().unwrap();
    let up = findings(&doc, "source:up");
    assert!(
        up.iter()
            .any(|f| f["status"] == "ok" && detail(f).ends_with("answered (HTTP 401)")),
        "{up:?}"
    );
    let down = findings(&doc, "source:down");
    assert!(
        down.iter()
            .any(|f| f["status"] == "problem"
                && detail(f).starts_with("cannot reach http://127.0.0.1:")),
        "{down:?}"
    );
}
