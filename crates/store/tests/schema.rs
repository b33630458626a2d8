//! Migrations: from an empty database, on reopen, and the refusal of a newer schema.

use oneroster::Role;
use rostersync_core::directory::{AccountId, MatchKey, MatchRule, UserType};
use rostersync_core::roster::{ClassInfo, ClassKind, Enroll, EnrollRole, Roster};

use crate::harness::{TABLES, TestDb, conformance, exec_at, later, now, person, plan_full, start};

fn migrates_from_empty_and_reopens(db: &mut TestDb) {
    let s = db.store();
    assert_eq!(
        s.meta_get("schema_version").unwrap().as_deref(),
        Some(&*store::SCHEMA_VERSION.to_string())
    );
    const { assert!(store::SCHEMA_VERSION >= 3) };
    for t in TABLES {
        let n = db.count(t);
        assert!(t == "meta" || n == 0, "{t} starts empty, has {n}");
    }
    let sql = if db.is_postgres() {
        "SELECT CAST(table_name AS TEXT) FROM information_schema.tables WHERE table_schema = current_schema()"
    } else {
        "SELECT name FROM sqlite_master WHERE type = 'table'"
    };
    let mut tables: Vec<String> = db
        .rows(sql)
        .into_iter()
        .filter_map(|mut r| r.remove(0))
        .collect();
    tables.sort();
    let mut listed: Vec<String> = TABLES.iter().map(|t| (*t).to_owned()).collect();
    listed.sort();
    assert_eq!(
        tables, listed,
        "the tests' TABLES lists every table (the no-change checks count them all)"
    );
    s.meta_set("master_key_check", "v1:abc").unwrap();
    s.meta_set("master_key_check", "v1:def").unwrap();
    let again = db.reopen().unwrap();
    assert_eq!(again.backend(), s.backend());
    assert_eq!(
        again.meta_get("master_key_check").unwrap().as_deref(),
        Some("v1:def")
    );
    assert_eq!(
        again.meta_get("schema_version").unwrap().as_deref(),
        Some(&*store::SCHEMA_VERSION.to_string())
    );
    assert_eq!(again.meta_get("nothing").unwrap(), None);
}

fn refuses_a_newer_schema(db: &mut TestDb) {
    db.store().meta_set("schema_version", "99").unwrap();
    let err = db
        .reopen()
        .err()
        .expect("a newer schema is refused")
        .to_string();
    assert!(err.contains("schema version 99"), "{err}");
    assert!(
        err.contains(&format!("(version {})", store::SCHEMA_VERSION)),
        "{err}"
    );
    assert!(err.contains("newer than this rostersync"), "{err}");
}

fn open_errors_name_the_place(db: &mut TestDb) {
    if db.is_postgres() {
        let err = store::open("postgres://rostersync:hunter2@127.0.0.1:1/nowhere")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.starts_with("cannot connect to PostgreSQL at 127.0.0.1:1 (user rostersync"),
            "{err}"
        );
        assert!(err.contains("check the URL"), "{err}");
        assert!(!err.contains("hunter2"), "never the password: {err}");
        // libpq's key=value settings are PostgreSQL too, not a file name.
        let err = store::open(
            "host = 127.0.0.1 port=1 user=rostersync password='hunter2 x' dbname=nowhere",
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.starts_with(
                "cannot connect to PostgreSQL at 127.0.0.1:1 (user rostersync, database nowhere)"
            ),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "never the password: {err}");
    } else {
        let err = store::open("sqlite:/nonexistent-dir/x/rostersync.db")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.starts_with("cannot open database at /nonexistent-dir/x/rostersync.db"),
            "{err}"
        );
        let err = store::open("sqlite::memory:").err().unwrap().to_string();
        assert!(err.contains("needs a file"), "{err}");
    }
}

/// A database as rostersync 0.1 (schema v1) left it, opened by this one.
fn a_v1_database_migrates_with_its_data(db: &mut TestDb) {
    let url = db.scratch();
    let v1 = if db.is_postgres() {
        include_str!("../migrations/postgres/0001_initial.sql")
    } else {
        include_str!("../migrations/sqlite/0001_initial.sql")
    };
    exec_at(
        &url,
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    );
    exec_at(&url, v1);
    let at = "'2026-09-01T02:00:00.000000000Z'";
    exec_at(
        &url,
        &format!(
            "INSERT INTO meta (key, value) VALUES ('schema_version', '1'); \
             INSERT INTO locations (name) VALUES ('Lincoln'); \
             INSERT INTO users (username, username_lc, email, email_lc, first_name, last_name, name_lc, user_type, \
                 access, active, location_id, homeroom, provider, revision, created_by, created_fields, created_at, updated_at) \
             VALUES ('anali', 'anali', 'ana@x.org', 'ana@x.org', 'Ana', 'Li', 'ana li', 'student', 'requestor', TRUE, 1, \
                 'Room 12', 'sis', 1, 'source:sis', 0, {at}, {at}); \
             INSERT INTO sis_links (source, sourced_id, user_id, rule, record_hash, synced_revision, linked_at) \
             VALUES ('sis', 's1', 1, 'email', 42, 1, {at}); \
             INSERT INTO aliases (user_id, kind, value_lc) VALUES (1, 'email', 'ana.old@x.org'); \
             INSERT INTO groups (name, kind, source, sourced_id, created_at) VALUES ('Math', 'class', 'sis', 'class:c-math', {at}); \
             INSERT INTO groups (name, kind, created_at) VALUES ('Chess club', 'club', {at}); \
             INSERT INTO group_members (group_id, user_id) VALUES (1, 1); \
             INSERT INTO group_members (group_id, user_id) VALUES (2, 1);"
        ),
    );

    let s = store::open(&url).unwrap();
    assert_eq!(
        s.meta_get("schema_version").unwrap().as_deref(),
        Some(&*store::SCHEMA_VERSION.to_string())
    );
    let view = s.load_view("sis").unwrap();
    let ana = view.user(AccountId(1)).unwrap();
    assert_eq!(ana.email.as_deref(), Some("ana@x.org"));
    assert_eq!(ana.location.as_deref(), Some("Lincoln"));
    assert_eq!(ana.user_type, UserType::Student);
    let l = view.link("s1").unwrap();
    assert_eq!(
        (
            l.user_id,
            l.rule,
            l.record_hash,
            l.misses,
            l.deactivated_at(),
            l.previous_access
        ),
        (AccountId(1), MatchRule::Email, 42, 0, None, None)
    );
    assert_eq!(
        view.by_alias(
            rostersync_core::directory::AliasKind::Email,
            &MatchKey::new("ana.old@x.org")
        ),
        [AccountId(1)]
    );
    assert_eq!(
        view.source_state().groups.get("class:c-math"),
        Some(&0),
        "an old group has no hash: the next sync writes it"
    );
    assert_eq!(view.source_state().relationships_hash, None);
    assert_eq!(
        s.rooms().unwrap(),
        ["Room 12"],
        "rooms from the homerooms there were"
    );
    assert_eq!(s.user_groups(AccountId(1)).unwrap(), ["Chess club", "Math"]);
    let cards = s.sis_card(AccountId(1)).unwrap();
    assert_eq!(cards.len(), 1);
    assert_eq!(
        (cards[0].role.as_deref(), cards[0].linked_at),
        (None, now())
    );

    // A sync on it: the group is taken over by key (same row), the hand-made one left alone.
    let cfg = crate::harness::config("");
    let people = [person("s1", Role::Student, "Ana", "Li", Some("ana@x.org"))];
    let roster = Roster {
        classes: vec![ClassInfo {
            sourced_id: "c-math".into(),
            title: "Math 5".into(),
            kind: ClassKind::Scheduled,
            location: None,
            school: None,
            course: None,
        }],
        enrollments: vec![Enroll {
            person: 0,
            class: 0,
            role: EnrollRole::Student,
        }],
        has_enrollments: true,
        ..Roster::default()
    };
    let p = plan_full(&cfg, &view, &people, Some(&roster), later(1));
    s.apply_plan(start(&s, "sis"), &p, later(1)).unwrap();
    let groups = s.groups(None, 0).unwrap();
    let names: Vec<(&str, Option<&str>, u64)> = groups
        .iter()
        .map(|g| (g.name.as_str(), g.key.as_deref(), g.members))
        .collect();
    assert_eq!(
        names,
        [("Chess club", None, 1), ("Math 5", Some("class:c-math"), 1)]
    );
    let view = s.load_view("sis").unwrap();
    assert_ne!(view.source_state().groups["class:c-math"], 0);
    assert_eq!(view.link("s1").unwrap().misses, 0);
}

conformance!(
    migrates_from_empty_and_reopens,
    refuses_a_newer_schema,
    open_errors_name_the_place,
    a_v1_database_migrates_with_its_data,
);

/// TLS as libpq does it. The test cluster's role `rs_tls` may only connect over TLS, so a
/// store that works as it proves TLS was used: verified against the CA `sslrootcert`
/// names, or (`sslmode=require`) encrypted without a check. Verifying without the CA, or
/// not using TLS, is refused with a message that says what to do.
#[test]
fn postgres_over_tls_verifies_the_server() {
    let ci = test_kit::ci();
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (Some(admin), Some(ca)) = (
        env("ROSTERSYNC_TEST_POSTGRES"),
        env("ROSTERSYNC_TEST_POSTGRES_CA"),
    ) else {
        assert!(
            !ci,
            "ROSTERSYNC_TEST_POSTGRES and ROSTERSYNC_TEST_POSTGRES_CA must be set in CI \
             (scripts/pg-test-cluster start prints them)"
        );
        eprintln!(
            "\n*** skipped: the TLS test needs scripts/pg-test-cluster's TLS variables ***\n"
        );
        return;
    };
    let schema = format!("rs_tls_{}", std::process::id());
    let mut admin_client = ::postgres::Client::connect(&admin, ::postgres::NoTls).unwrap();
    admin_client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .unwrap();
    let base = admin.replacen("postgres@", "rs_tls@", 1);
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = |tls: &str| format!("{base}{sep}options=-c%20search_path%3D{schema}&{tls}");

    let opened = store::open(&url(&format!("sslmode=verify-full&sslrootcert={ca}")));
    let plain = store::open(&url("sslmode=disable"))
        .err()
        .map(|e| e.to_string());
    let unverified = store::open(&url("sslmode=verify-full"))
        .err()
        .map(|e| e.to_string());
    let encrypted = store::open(&url("sslmode=require")).map(|s| s.meta_get("tls-check"));
    // A CA named without a mode: verified, so TLS is required (libpq's default `prefer`
    // would let an attacker answer "no TLS").
    let ca_only = store::open(&url(&format!("sslrootcert={ca}"))).map(|s| s.meta_get("tls-check"));
    // A write and a read, and an advisory lock (a connection of its own): all over TLS.
    let worked = opened.map(|s| {
        let locked = s.try_lock("tls-check", "test", crate::harness::now());
        let value = s
            .meta_set("tls-check", "yes")
            .and_then(|()| s.meta_get("tls-check"));
        (value, locked.map(|l| l.is_some()))
    });
    let _ = admin_client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));

    let (value, locked) = worked.unwrap();
    assert_eq!(value.unwrap().as_deref(), Some("yes"));
    assert!(locked.unwrap(), "the lock's own connection");
    let plain = plain.expect("plaintext must be refused for rs_tls");
    assert!(plain.contains("rs_tls"), "{plain}");
    let unverified = unverified.expect("a certificate from an unknown CA must be refused");
    assert!(unverified.contains("sslrootcert=PATH"), "{unverified}");
    assert!(
        encrypted.unwrap().is_ok(),
        "require: encrypted, not verified"
    );
    assert!(ca_only.unwrap().is_ok(), "sslrootcert alone");
}
