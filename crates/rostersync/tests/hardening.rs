//! The security review's CLI items, end to end: a private data directory and database
//! files whatever the umask, API tokens that expire (and `token list` saying so), and
//! output into a pipe closed early ending quietly instead of panicking.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::harness::{Backend, Cli, Serve};
use crate::on_both_backends;

// ----- file modes

#[cfg(unix)]
fn mode(p: &std::path::Path) -> String {
    use std::os::unix::fs::PermissionsExt as _;
    format!(
        "{:o}",
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    )
}

/// `rostersync ARGS` under `umask 000`, through the shell (setting the umask of a child
/// needs no unsafe code that way).
#[cfg(unix)]
fn under_umask_000(cli: &Cli, data_dir: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("umask 000; exec \"$@\"")
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_rostersync"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .current_dir(&cli.dir)
        .env_remove("ROSTERSYNC_MASTER_KEY")
        .env_remove("ROSTERSYNC_DATABASE")
        .env_remove("ROSTERSYNC_DATA_DIR");
    c
}

#[cfg(unix)]
#[test]
fn the_data_directory_and_database_files_are_private_whatever_the_umask() {
    let cli = Cli::new(Backend::Sqlite).unwrap();
    let data = cli.dir.join("fresh").join("data");
    let out = under_umask_000(&cli, &data, &["init"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&data), "700", "the data directory");
    assert_eq!(mode(&data.join("rostersync.db")), "600", "the database");
    assert_eq!(mode(&data.join("master.key")), "600", "the master key");

    // While `serve` has it open, the WAL and shared-memory files exist: private too.
    let serve = Serve::start(|args| under_umask_000(&cli, &data, args));
    let modes: Vec<(String, String)> = ["rostersync.db-wal", "rostersync.db-shm"]
        .iter()
        .map(|f| ((*f).to_owned(), mode(&data.join(f))))
        .collect();
    drop(serve);
    for (file, m) in modes {
        assert_eq!(m, "600", "{file}");
    }
}

/// An existing directory is the operator's: left as it is, with a warning when others
/// may enter it.
#[cfg(unix)]
#[test]
fn an_existing_open_data_directory_is_warned_about() {
    use std::os::unix::fs::PermissionsExt as _;
    let cli = Cli::new(Backend::Sqlite).unwrap();
    let data = cli.dir.join("shared");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = under_umask_000(&cli, &data, &["init"]).output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("chmod 700"), "{stderr}");
    assert_eq!(mode(&data), "755", "not changed behind the operator's back");
    assert_eq!(mode(&data.join("rostersync.db")), "600");
    // Every command says it again until it is fixed.
    let out = under_umask_000(&cli, &data, &["token", "list"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 700"));
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = under_umask_000(&cli, &data, &["token", "list"])
        .output()
        .unwrap();
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ----- token expiry

fn token(list: &Value, name: &str) -> Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {list}"))
        .clone()
}

fn ts(v: &Value) -> jiff::Timestamp {
    v.as_str().unwrap().parse().unwrap()
}

fn tokens_expire_by_default(cli: Cli) {
    let t = cli.ok(&["token", "create", "--scope", "read", "--name", "default"]);
    assert!(t.trim().starts_with("rs_") && t.lines().count() == 1, "{t}");
    cli.ok(&[
        "token",
        "create",
        "--scope",
        "write",
        "--name",
        "week",
        "--expires",
        "7",
    ]);
    cli.ok(&[
        "token",
        "create",
        "--scope",
        "read",
        "--name",
        "forever",
        "--expires",
        "never",
    ]);
    for bad in ["0", "-3", "soon", "36501"] {
        let out = cli.run(&[
            "token",
            "create",
            "--scope",
            "read",
            &format!("--expires={bad}"),
        ]);
        assert_eq!(out.status.code(), Some(2), "--expires {bad}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("never"),
            "says what is accepted: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let list = cli.json(&["token", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 3, "{list}");
    let d = token(&list, "default");
    let days =
        |t: &Value| (ts(&t["expires_at"]).as_second() - ts(&t["created_at"]).as_second()) / 86_400;
    assert_eq!(days(&d), 365, "{d}");
    assert_eq!(days(&token(&list, "week")), 7);
    let f = token(&list, "forever");
    assert!(f["expires_at"].is_null(), "{f}");
    for t in list.as_array().unwrap() {
        assert_eq!(t["age_days"], 0, "{t}");
        assert_eq!(t["expired"], false, "{t}");
        assert!(t["last_used"].is_null(), "{t}");
        assert!(t["revoked_at"].is_null(), "{t}");
        assert!(t["created_by"].as_str().unwrap().starts_with("cli"), "{t}");
    }

    let text = cli.ok(&["token", "list"]);
    let line = |name: &str| {
        text.lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name}: {text}"))
            .to_owned()
    };
    assert!(line("default").contains("(0 days ago)"), "{text}");
    assert!(line("default").contains("(in 365 days)"), "{text}");
    assert!(line("week").contains("(in 7 days)"), "{text}");
    assert!(line("forever").contains("never expires"), "{text}");
    assert!(line("forever").contains("never used"), "{text}");
}

on_both_backends!(tokens_expire_by_default);

// ----- a closed pipe

/// Runs `rostersync ARGS`, reads `lines` lines of its stdout, closes the pipe and waits:
/// the exit code and stderr.
fn read_then_close(cli: &Cli, args: &[&str], lines: usize) -> (Option<i32>, String) {
    let mut child = cli
        .command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        for _ in 0..lines {
            line.clear();
            assert!(out.read_line(&mut line).unwrap() > 0, "output ended early");
        }
        // Dropped here: the pipe's reading end closes with most of the output unread.
    }
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    (status.code(), stderr)
}

#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    let cli = Cli::new(Backend::Sqlite).unwrap();
    // Far more output than a pipe buffers (64 KiB), so the writes meet the closed pipe.
    let mut csv = String::from("email,first_name,last_name,username\n");
    for i in 0..2000 {
        csv.push_str(&format!(
            "person{i}@district.k12.us,Person,Number{i},person{i}\n"
        ));
    }
    let file = cli.write("accounts.csv", &csv);
    cli.ok(&[
        "accounts",
        "import",
        file.to_str().unwrap(),
        "--provider",
        "local",
    ]);
    for (args, lines) in [
        (&["users", "list", "--json", "--limit", "2000"][..], 1),
        (&["users", "list", "--limit", "2000"][..], 1),
        (&["users", "list", "--json", "--limit", "2000"][..], 0),
    ] {
        let (code, stderr) = read_then_close(&cli, args, lines);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("Broken pipe"), "{args:?}: {stderr}");
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
    }
}
