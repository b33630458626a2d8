//! Account sources' settings on the command line: `config import` reads a Google
//! source's service-account key file (relative to the settings file) and stores it
//! encrypted like a client secret, refuses what is missing or wrong in words that never
//! quote the key, and `config export` never prints a key, a secret or the key file's path.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::harness::{Backend, Cli};

const STANDIN_TOKEN_URI: &str = "http://127.0.0.1:9/token";

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A Google source's settings (`key_file` line included when given).
fn google(key_file: Option<&str>, api_url: &str) -> String {
    let key = key_file.map_or(String::new(), |k| format!("key_file = \"{k}\"\n"));
    format!(
        "[[source]]\nname = \"google\"\nkind = \"google-workspace\"\n{key}subject = \"admin@district.example\"\ndomain = \"district.example\"\napi_url = \"{api_url}\"\ndeactivate = \"never\"\n"
    )
}

/// Writes `body` to `conf/NAME` under the installation's folder, making the folders.
fn write_in_conf(cli: &Cli, name: &str, body: &str) -> PathBuf {
    let p = cli.dir.join("conf").join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, body).unwrap();
    p
}

/// `config import FILE`, run from a folder other than the file's.
fn import(cli: &Cli, file: &Path) -> Output {
    let elsewhere = cli.dir.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    cli.command(&["config", "import", file.to_str().unwrap()])
        .current_dir(elsewhere)
        .output()
        .unwrap()
}

/// What must never be printed of a key file.
fn assert_no_key(text: &str, key: &str) {
    let value: serde_json::Value = serde_json::from_str(key).unwrap();
    for field in ["private_key", "private_key_id", "client_email", "token_uri"] {
        assert!(!text.contains(field), "{field} printed: {text}");
        let v = value[field].as_str().unwrap();
        assert!(!text.contains(v), "the value of {field} printed: {text}");
    }
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    assert!(!text.contains("service_account"), "{text}");
}

#[test]
fn a_google_key_file_is_stored_encrypted_and_never_exported() {
    let Some(cli) = Cli::new(Backend::Sqlite) else {
        return;
    };
    let key = sim::idp::google::standin_key_file(STANDIN_TOKEN_URI);
    write_in_conf(&cli, "keys/sa.json", &key);
    let api = "https://admin.googleapis.com";
    // A relative key_file is taken from the settings file's folder, not the working one.
    let settings = write_in_conf(&cli, "settings.toml", &google(Some("keys/sa.json"), api));
    let out = import(&cli, &settings);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("source google: service-account key replaced"),
        "{err}"
    );
    let printed = format!("{}{err}", String::from_utf8_lossy(&out.stdout));
    assert_no_key(&printed, &key);
    let stored = cli.open_store().source_secret("google").unwrap().unwrap();
    assert!(
        !String::from_utf8_lossy(&stored).contains("PRIVATE KEY"),
        "the key is stored encrypted"
    );

    let exported = cli.ok(&["config", "export"]);
    assert_no_key(&exported, &key);
    assert!(
        !exported
            .lines()
            .any(|l| l.trim_start().starts_with("key_file")),
        "{exported}"
    );
    assert!(!exported.contains("sa.json"), "{exported}");
    assert!(
        exported.contains("# source google: service-account key (key_file) is stored"),
        "{exported}"
    );
    for shown in [
        "kind = \"google-workspace\"",
        "subject = \"admin@district.example\"",
        "domain = \"district.example\"",
        "deactivate = \"never\"",
    ] {
        assert!(exported.contains(shown), "{shown}: {exported}");
    }
    // The export imports again as it is: the stored key stays.
    let again = cli.write("exported.toml", &exported);
    cli.ok(&["config", "import", again.to_str().unwrap()]);
    assert_eq!(
        cli.open_store().source_secret("google").unwrap(),
        Some(stored)
    );
    // Another API host without the key: the stored one was for the old one.
    let moved = write_in_conf(
        &cli,
        "moved.toml",
        &google(None, "https://directory.example"),
    );
    let out = import(&cli, &moved);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("source google needs key_file = \"…\"") && err.contains("another host"),
        "{err}"
    );
    assert!(cli.open_store().source_secret("google").unwrap().is_some());
}

#[test]
fn a_google_source_without_a_key_or_with_a_bad_one_is_refused_in_words() {
    let Some(cli) = Cli::new(Backend::Sqlite) else {
        return;
    };
    let api = "https://admin.googleapis.com";
    let none = write_in_conf(&cli, "none.toml", &google(None, api));
    let out = import(&cli, &none);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("none.toml: source google needs key_file = \"…\" (the path of the service account's JSON key")
            && err.contains("none is stored yet"),
        "{err}"
    );

    let missing = write_in_conf(&cli, "missing.toml", &google(Some("gone.json"), api));
    let err = stderr_of(&import(&cli, &missing));
    let gone = cli.dir.join("conf").join("gone.json");
    assert!(
        err.contains("missing.toml: source google: cannot read key_file")
            && err.contains(gone.to_str().unwrap())
            && err.contains("a relative path is taken from the settings file's folder"),
        "{err}"
    );

    // A key whose private key is damaged: said, never quoted.
    let key = sim::idp::google::standin_key_file(STANDIN_TOKEN_URI);
    let mut damaged: serde_json::Value = serde_json::from_str(&key).unwrap();
    damaged["private_key"] =
        "-----BEGIN PRIVATE KEY-----\nTk9UQUtFWQ==\n-----END PRIVATE KEY-----\n".into();
    write_in_conf(&cli, "damaged.json", &damaged.to_string());
    let file = write_in_conf(&cli, "damaged.toml", &google(Some("damaged.json"), api));
    let out = import(&cli, &file);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("source google: key_file") && err.contains("damaged.json"),
        "{err}"
    );
    assert!(
        err.contains("private_key") && err.contains("download a new key"),
        "{err}"
    );
    assert!(
        !err.contains("Tk9UQUtFWQ") && !err.contains("BEGIN"),
        "{err}"
    );

    // Not a service account's key, and not JSON.
    write_in_conf(
        &cli,
        "user.json",
        "{\"type\": \"authorized_user\", \"refresh_token\": \"r3fresh\"}",
    );
    let file = write_in_conf(&cli, "user.toml", &google(Some("user.json"), api));
    let err = stderr_of(&import(&cli, &file));
    assert!(err.contains("not `service_account`"), "{err}");
    assert!(!err.contains("r3fresh"), "{err}");
    write_in_conf(&cli, "text.json", "client_secret=t0psecret\n");
    let file = write_in_conf(&cli, "text.toml", &google(Some("text.json"), api));
    let err = stderr_of(&import(&cli, &file));
    assert!(err.contains("is not JSON"), "{err}");
    assert!(!err.contains("t0psecret"), "{err}");

    // Nothing was stored by any of these.
    let exported = cli.ok(&["config", "export"]);
    assert!(!exported.contains("google"), "{exported}");
}

#[test]
fn an_entra_secret_is_stored_like_a_client_secret_and_never_exported() {
    let Some(cli) = Cli::new(Backend::Sqlite) else {
        return;
    };
    let entra = |extra: &str| {
        format!(
            "[[source]]\nname = \"entra\"\nkind = \"entra-id\"\ntenant = \"district.onmicrosoft.com\"\nclient_id = \"app-1\"\ngraph_url = \"https://graph.microsoft.com\"\n{extra}"
        )
    };
    let file = cli.write("entra.toml", &entra(""));
    let out = cli.run(&["config", "import", file.to_str().unwrap()]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("source entra needs client_secret, client_secret_env or certificate_file"),
        "{err}"
    );
    let file = cli.write("entra.toml", &entra("client_secret = \"3ntra-s3cret\"\n"));
    let out = cli.run(&["config", "import", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("source entra: client secret replaced"));
    let exported = cli.ok(&["config", "export"]);
    assert!(!exported.contains("3ntra-s3cret"), "{exported}");
    assert!(
        exported.contains("# source entra: client secret is set")
            && exported.contains("tenant = \"district.onmicrosoft.com\""),
        "{exported}"
    );
    // Another tenant is another destination: the secret does not follow.
    let moved = cli.write(
        "moved.toml",
        &entra("").replace("district.onmicrosoft.com", "other.onmicrosoft.com"),
    );
    let err = stderr_of(&cli.run(&["config", "import", moved.to_str().unwrap()]));
    assert!(err.contains("another host"), "{err}");
    // The environment variable instead.
    let env = cli.write("env.toml", &entra("client_secret_env = \"ENTRA_SECRET\"\n"));
    cli.ok(&["config", "import", env.to_str().unwrap()]);
    assert!(
        cli.ok(&["config", "export"])
            .contains("client_secret_env = \"ENTRA_SECRET\"")
    );
}

#[test]
fn a_setting_of_another_kind_is_refused_on_import() {
    let Some(cli) = Cli::new(Backend::Sqlite) else {
        return;
    };
    let file = cli.write(
        "mixed.toml",
        "[[source]]\nname = \"google\"\nkind = \"google-workspace\"\nsubject = \"admin@district.example\"\ntenant = \"t\"\n",
    );
    let out = cli.run(&["config", "import", file.to_str().unwrap()]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("[[source]] #1 (google): tenant is a setting of entra-id sources, not of kind = \"google-workspace\""),
        "{err}"
    );
}
