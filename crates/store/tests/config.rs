//! Settings: an exact round trip minus secrets, secrets kept or removed, the audit entry.

use rostersync_core::directory::Field;
use rostersync_core::settings::{Config, FieldSwitch};

use crate::harness::{TestDb, conformance, later, now};

const TWO_SOURCES: &str = r#"
[fields]
phone = { enabled = false }
homeroom = { enabled = true }

[[source]]
name = "campus"
kind = "oneroster-api"
url = "https://sis.example/campus/oneroster/district/ims/oneroster/v1p1"
client_id = "site1-abc"
client_secret = "s3cret-plain"
auth = "oauth2"
token_url = "https://sis.example/campus/oauth2/token?appName=district"
version = "1.1"
credential_expires = "2026-09-30"

[source.user_mapping]
translate_email = [{ from = "students.district.k12.us", to = "district.k12.us" }]
append_domain = "district.k12.us"

[source.import]
other_users = true

[source.field_priority]
first_name = "if-not-set"

[[source]]
name = "files"
kind = "oneroster-csv"
path = "/srv/exports/École «été».zip"
"#;

fn without_secrets(c: &Config) -> Config {
    let mut c = c.clone();
    for s in &mut c.sources {
        s.client_secret = None;
    }
    c
}

fn config_round_trips_and_keeps_secrets(db: &mut TestDb) {
    let s = db.store();
    assert_eq!(
        s.load_config().unwrap(),
        Config::default(),
        "empty before the first import"
    );
    let cfg = Config::from_toml(TWO_SOURCES).unwrap();
    let sealed = b"\x00sealed\xffsecret".to_vec();
    s.save_config(
        &cfg,
        &[("campus".into(), Some(sealed.clone()))],
        "admin:alice",
        now(),
    )
    .unwrap();
    let back = s.load_config().unwrap();
    assert_eq!(back, without_secrets(&cfg));
    assert_eq!(back.sources[0].name, "campus", "source order is kept");
    assert!(!back.field_enabled(Field::Phone));
    assert_eq!(s.source_secret("campus").unwrap(), Some(sealed.clone()));
    assert_eq!(s.source_secret("files").unwrap(), None);
    assert_eq!(s.source_secret("nobody").unwrap(), None);

    // An exported file has no secrets: importing it keeps the stored one.
    let mut exported = back.clone();
    exported
        .fields
        .insert(Field::Grade, FieldSwitch { enabled: false });
    exported.sources.reverse();
    s.save_config(&exported, &[], "admin:alice", later(1))
        .unwrap();
    assert_eq!(s.load_config().unwrap(), exported);
    assert_eq!(
        s.source_secret("campus").unwrap(),
        Some(sealed.clone()),
        "kept"
    );

    // A new secret replaces it; `None` forgets it (the settings stay); a new one again.
    s.save_config(
        &exported,
        &[("campus".into(), Some(b"new".to_vec()))],
        "admin:alice",
        later(2),
    )
    .unwrap();
    assert_eq!(s.source_secret("campus").unwrap(), Some(b"new".to_vec()));
    s.save_config(
        &exported,
        &[("campus".into(), None)],
        "admin:alice",
        later(2),
    )
    .unwrap();
    assert_eq!(s.source_secret("campus").unwrap(), None, "forgotten");
    assert_eq!(s.load_config().unwrap(), exported);
    s.save_config(
        &exported,
        &[("campus".into(), Some(b"new".to_vec()))],
        "admin:alice",
        later(2),
    )
    .unwrap();
    assert_eq!(s.source_secret("campus").unwrap(), Some(b"new".to_vec()));

    // A source left out is removed with its secret; adding it back does not resurrect it.
    let mut only_files = exported.clone();
    only_files.sources.retain(|s| s.name == "files");
    s.save_config(&only_files, &[], "admin:bob", later(3))
        .unwrap();
    assert_eq!(s.load_config().unwrap(), only_files);
    assert_eq!(s.source_secret("campus").unwrap(), None);
    s.save_config(&exported, &[], "admin:bob", later(4))
        .unwrap();
    assert_eq!(s.source_secret("campus").unwrap(), None);
    assert_eq!(db.count("sources"), 2);

    // Every import is audited, newest first, and no detail holds a secret.
    let log = s.audit_log(0).unwrap();
    assert_eq!(log.len(), 7);
    assert!(log.iter().all(|a| a.action == "config.import"));
    assert_eq!(log[0].actor, "admin:bob");
    assert_eq!(log[0].at, later(4));
    assert_eq!(log[6].at, now());
    assert!(log[6].detail.contains("campus"), "{}", log[6].detail);
    assert!(
        log.iter()
            .any(|a| a.detail.contains("secrets removed: campus")),
        "the forgotten secret is audited"
    );
    for a in &log {
        assert!(!a.detail.contains("s3cret"), "{}", a.detail);
        assert!(!a.detail.contains("sealed"), "{}", a.detail);
    }
    assert_eq!(s.audit_log(2).unwrap().len(), 2);
}

fn secrets_for_unknown_sources_are_refused(db: &mut TestDb) {
    let s = db.store();
    let cfg = Config::from_toml(TWO_SOURCES).unwrap();
    let err = s
        .save_config(
            &cfg,
            &[("ghost".into(), Some(b"x".to_vec()))],
            "admin:alice",
            now(),
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("ghost"), "{err}");
    assert_eq!(s.load_config().unwrap(), Config::default(), "nothing saved");
    assert!(s.audit_log(0).unwrap().is_empty());
}

fn audit_entries_keep_their_text(db: &mut TestDb) {
    let s = db.store();
    s.audit(
        "admin:zoë",
        "user.edit",
        "set first_name of #1 to \"O'Brien\" \\ ok?",
        now(),
    )
    .unwrap();
    s.audit("cli", "init", "created", later(1)).unwrap();
    let log = s.audit_log(10).unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].action, "init");
    assert_eq!(log[1].actor, "admin:zoë");
    assert_eq!(log[1].detail, "set first_name of #1 to \"O'Brien\" \\ ok?");
}

conformance!(
    config_round_trips_and_keeps_secrets,
    secrets_for_unknown_sources_are_refused,
    audit_entries_keep_their_text
);
