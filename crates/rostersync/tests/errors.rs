//! Errors that must not mislead: each bad input gets a message that says what is wrong
//! and what to do, never a secret, and loses nothing (docs/reliability.md lists them).

use crate::harness::{Backend, Cli, sample_district};

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn csv_source(name: &str) -> String {
    format!(
        "[[source]]\nname = \"{name}\"\nkind = \"oneroster-csv\"\npath = \"{}\"\n",
        sample_district().display()
    )
}

#[test]
fn an_unsupported_database_url_is_named_without_its_password() {
    let Some(cli) = Cli::new(Backend::Sqlite) else {
        return;
    };
    let out = cli.run(&[
        "--database",
        "mysql://admin:hunter2-secret@db.example/rs",
        "users",
        "list",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr_of(&out);
    assert!(err.contains("mysql:// database is not supported"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    assert!(
        !cli.dir.join("mysql:").exists(),
        "no SQLite file was made of the URL"
    );
}

#[test]
fn a_database_password_in_the_url_query_is_never_shown() {
    let Some(cli) = Cli::new(Backend::Postgres) else {
        return;
    };
    // The test server does not ask for a password: one given in the query is ignored
    // there, and must not come back in any message about the database.
    let url = cli.database_url().unwrap().to_owned();
    let joint = if url.contains('?') { '&' } else { '?' };
    let with_password = format!("{url}{joint}password=hunter2-secret");
    let out = cli.run_on(&with_password, &["init"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stdout.contains("already initialised: PostgreSQL at "),
        "{stdout}"
    );
    assert!(!stdout.contains("hunter2"), "{stdout}");
    // libpq's own form, naming a server that is down: doctor says which, without it.
    let down = "host=127.0.0.1 port=1 user=rs password=hunter2-secret dbname=rs connect_timeout=5";
    let out = cli.run_on(down, &["doctor"]);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr_of(&out)
    );
    assert!(
        all.contains("PostgreSQL at 127.0.0.1:1 (user rs, database rs)"),
        "{all}"
    );
    assert!(!all.contains("hunter2"), "{all}");
}

#[test]
fn a_database_that_is_down_is_told_apart_from_a_wrong_setting() {
    let Some(cli) = Cli::new(Backend::Sqlite) else {
        return;
    };
    // Nothing listens on port 1: the database is down (exit 3), the setting is fine.
    let out = cli.run(&[
        "--database",
        "postgres://rs:hunter2-secret@127.0.0.1:1/rs?connect_timeout=5",
        "users",
        "list",
    ]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("cannot connect to PostgreSQL"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    // A URL that does not parse is the user's to fix (exit 2).
    let out = cli.run(&[
        "--database",
        "postgres://rs@127.0.0.1:notaport/rs",
        "users",
        "list",
    ]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("not valid"), "{err}");
}

#[test]
fn a_lost_master_key_is_restored_not_replaced() {
    let Some(cli) = Cli::new(Backend::Sqlite) else {
        return;
    };
    let key = cli.dir.join("data/master.key");
    let saved = std::fs::read(&key).unwrap();
    std::fs::remove_file(&key).unwrap();
    let out = cli.run(&["users", "list"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr_of(&out);
    assert!(err.contains("restore that file from your backup"), "{err}");
    assert!(!err.contains("Run `rostersync init` first"), "{err}");
    // init must not write a key that cannot read the database.
    let out = cli.run(&["init"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("will not make one"));
    assert!(!key.exists(), "no new key was written");
    std::fs::write(&key, saved).unwrap();
    cli.ok(&["users", "list"]);
}

#[test]
fn a_damaged_database_points_at_the_backup() {
    let Some(cli) = Cli::new(Backend::Sqlite) else {
        return;
    };
    let db = cli.dir.join("data/rostersync.db");
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    std::fs::write(&db, vec![0x5a; 8192]).unwrap();
    let out = cli.run(&["users", "list"]);
    assert_eq!(out.status.code(), Some(3), "the database failed: exit 3");
    let err = stderr_of(&out);
    assert!(err.contains("is damaged"), "{err}");
    assert!(err.contains("restore it from your last backup"), "{err}");
}

#[test]
fn importing_a_file_that_leaves_sources_out_needs_replace() {
    let Some(cli) = Cli::new(Backend::Sqlite) else {
        return;
    };
    cli.configure(&format!("{}{}", csv_source("north"), csv_source("south")));
    let empty = cli.write("empty.toml", "");
    let out = cli.run(&["config", "import", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr_of(&out);
    assert!(
        err.contains("north, south") && err.contains("--replace"),
        "{err}"
    );
    let kept = cli.ok(&["config", "export"]);
    assert!(kept.contains("north") && kept.contains("south"), "{kept}");

    let one = cli.write("one.toml", &csv_source("north"));
    cli.ok(&["config", "import", one.to_str().unwrap(), "--replace"]);
    let now = cli.ok(&["config", "export"]);
    assert!(now.contains("north") && !now.contains("south"), "{now}");
}

#[test]
fn a_refused_json_command_still_prints_json() {
    let Some(cli) = Cli::new(Backend::Sqlite) else {
        return;
    };
    let out = cli.run(&["sync", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(doc["error"]["exit_code"], 2);
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no sources are configured"),
        "{doc}"
    );
}

#[test]
fn inspect_names_a_scheme_it_does_not_read() {
    let Some(cli) = Cli::new(Backend::Sqlite) else {
        return;
    };
    let out = cli.run(&["inspect", "ftp://sis.example.org/export.zip"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr_of(&out);
    assert!(err.contains("'ftp://' is not a source"), "{err}");
    assert!(!err.contains("No such file"), "{err}");
}

#[test]
fn a_secret_never_follows_a_source_to_another_host() {
    let Some(cli) = Cli::new(Backend::Sqlite) else {
        return;
    };
    let source = |host: &str, secret: &str| {
        format!(
            "[[source]]\nname = \"sis\"\nkind = \"oneroster-api\"\nurl = \"https://{host}/ims/oneroster/v1p1\"\nauth = \"oauth2\"\nclient_id = \"k\"\ntoken_url = \"https://{host}/oauth2/token\"\n{secret}"
        )
    };
    let first = cli.write(
        "first.toml",
        &source("sis.example", "client_secret = \"s3cret-one\"\n"),
    );
    cli.ok(&["config", "import", first.to_str().unwrap()]);
    // The same host without the secret keeps the stored one.
    let same = cli.write("same.toml", &source("sis.example", ""));
    cli.ok(&["config", "import", same.to_str().unwrap()]);
    assert!(
        cli.ok(&["config", "export"])
            .contains("client secret is set")
    );
    // Another host without a secret: the stored one was for sis.example, so it is refused.
    let moved = cli.write("moved.toml", &source("elsewhere.example", ""));
    let out = cli.run(&["config", "import", moved.to_str().unwrap()]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("for another host"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
    let kept = cli.ok(&["config", "export"]);
    assert!(
        kept.contains("sis.example") && !kept.contains("elsewhere"),
        "{kept}"
    );
    // With its own secret it moves, and says the secret was replaced.
    let with = cli.write(
        "with.toml",
        &source("elsewhere.example", "client_secret = \"s3cret-two\"\n"),
    );
    let out = cli.run(&["config", "import", with.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("client secret replaced"));
}
