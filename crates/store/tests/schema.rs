//! Migrations: from an empty database, on reopen, and the refusal of a newer schema.

use crate::harness::{TABLES, TestDb, conformance};

fn migrates_from_empty_and_reopens(db: &mut TestDb) {
    let s = db.store();
    assert_eq!(s.meta_get("schema_version").unwrap().as_deref(), Some("1"));
    assert_eq!(store::SCHEMA_VERSION, 1);
    for t in TABLES {
        let n = db.count(t);
        assert!(t == "meta" || n == 0, "{t} starts empty, has {n}");
    }
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
        Some("1")
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
    assert!(err.contains("(version 1)"), "{err}");
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

conformance!(
    migrates_from_empty_and_reopens,
    refuses_a_newer_schema,
    open_errors_name_the_place
);
