//! The console's rows (accounts, sessions, API tokens) and the named locks, on both
//! backends; and the users list's grade / homeroom / location filters.

use rostersync_core::directory::Field;
use store::{ConsoleRole, NewSession, StoreError, TokenScope, UserQuery};

use crate::harness::{TestDb, conformance, days, later, now};

fn accounts_sessions_and_tokens(db: &mut TestDb) {
    let s = db.store();
    assert_eq!(s.count_console_accounts().unwrap(), 0);
    let id = s
        .create_console_account(
            "admin",
            ConsoleRole::Owner,
            "$argon2id$h1",
            "cli:root",
            now(),
        )
        .unwrap();
    s.create_console_account(
        "zed",
        ConsoleRole::Viewer,
        "$argon2id$h2",
        "cli:root",
        now(),
    )
    .unwrap();
    let err = s
        .create_console_account("admin", ConsoleRole::Admin, "x", "cli:root", now())
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert!(err.to_string().contains("admin passwd admin"), "{err}");
    assert_eq!(s.count_console_accounts().unwrap(), 2);
    let names: Vec<String> = s
        .console_accounts()
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["admin", "zed"]);
    let a = s.console_account("admin").unwrap().unwrap();
    assert_eq!(
        (a.id, a.role, a.disabled, a.password_hash.as_str()),
        (id, ConsoleRole::Owner, false, "$argon2id$h1")
    );
    assert!(s.console_account("nobody").unwrap().is_none());

    s.create_session(&NewSession {
        id_hash: "h-sess".into(),
        account: id,
        csrf: "tok".into(),
        created_at: now(),
        expires_at: later(720),
    })
    .unwrap();
    let sess = s.session("h-sess").unwrap().unwrap();
    assert_eq!(
        (
            sess.account.name.as_str(),
            sess.csrf.as_str(),
            sess.last_seen
        ),
        ("admin", "tok", now())
    );
    s.touch_session("h-sess", later(5)).unwrap();
    assert_eq!(s.session("h-sess").unwrap().unwrap().last_seen, later(5));
    // Idle since before later(10): purged.
    assert_eq!(s.purge_sessions(later(6), later(10)).unwrap(), 1);
    assert!(s.session("h-sess").unwrap().is_none());

    // A new password ends every session.
    s.create_session(&NewSession {
        id_hash: "h2".into(),
        account: id,
        csrf: "t2".into(),
        created_at: now(),
        expires_at: later(720),
    })
    .unwrap();
    s.set_console_password("admin", "$argon2id$new", "cli:root", later(1))
        .unwrap();
    assert!(s.session("h2").unwrap().is_none());
    assert_eq!(
        s.console_account("admin").unwrap().unwrap().password_hash,
        "$argon2id$new"
    );
    assert!(matches!(
        s.set_console_password("ghost", "x", "cli:root", now())
            .unwrap_err(),
        StoreError::NotFound(_)
    ));

    let t = s
        .create_api_token("ci", TokenScope::Write, "sha-1", None, "cli:root", now())
        .unwrap();
    let rec = s.api_token("sha-1").unwrap().unwrap();
    assert_eq!(
        (rec.id, rec.scope, rec.last_used, rec.revoked_at),
        (t, TokenScope::Write, None, None)
    );
    s.touch_api_token(t, later(2)).unwrap();
    assert_eq!(
        s.api_token("sha-1").unwrap().unwrap().last_used,
        Some(later(2))
    );
    s.revoke_api_token(t, "console:admin", later(3)).unwrap();
    assert_eq!(
        s.api_token("sha-1").unwrap().unwrap().revoked_at,
        Some(later(3))
    );
    assert!(
        s.revoke_api_token(t, "console:admin", later(3)).is_err(),
        "twice"
    );
    assert_eq!(s.api_tokens().unwrap().len(), 1);
    assert!(s.api_token("sha-2").unwrap().is_none());

    let actions: Vec<String> = s
        .audit_log(0)
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .collect();
    assert_eq!(
        actions,
        [
            "api.token.revoke",
            "api.token.create",
            "console.account.passwd",
            "console.account.add",
            "console.account.add"
        ]
    );
}

fn locks_keep_runs_apart(db: &mut TestDb) {
    let s = db.store();
    let held = s
        .try_lock("source:campus", "test-a", now())
        .unwrap()
        .expect("free");
    assert_eq!(held.name(), "source:campus");
    assert!(
        s.try_lock("source:campus", "test-b", now())
            .unwrap()
            .is_none(),
        "held"
    );
    // Another process on the same database (another store) is kept out too.
    let other = db.reopen().unwrap();
    assert!(
        other
            .try_lock("source:campus", "test-c", now())
            .unwrap()
            .is_none()
    );
    let second = s.try_lock("source:other", "test-a", now()).unwrap();
    assert!(second.is_some(), "locks are per name");
    drop(held);
    let again = other.try_lock("source:campus", "test-c", now()).unwrap();
    assert!(again.is_some(), "free once dropped");
    drop(again);
    drop(second);
    if !db.is_postgres() {
        // A lock row left by a process that is gone is taken over.
        db.exec(
            "INSERT INTO run_locks (name, holder, pid, acquired_at) VALUES ('scheduler', 'ghost', 999999999, 'x')",
        );
        assert!(s.try_lock("scheduler", "test-a", now()).unwrap().is_some());
    }
}

fn users_filter_by_grade_homeroom_and_location(db: &mut TestDb) {
    use oneroster::Role;
    let s = db.store();
    let cfg = crate::harness::config("[source.locations]\ndefault = \"District Office\"\n");
    let mut a = crate::harness::person("s1", Role::Student, "Ana", "Li", Some("ana@x.org"));
    a.edit(|f| f.grade = Some("05".into()));
    let mut b = crate::harness::person("s2", Role::Student, "Bo", "Ek", Some("bo@x.org"));
    b.edit(|f| f.grade = Some("KG".into()));
    crate::harness::sync(s, &cfg, &[a, b], days(1));
    let emails = |q: UserQuery| -> Vec<String> {
        s.list_users(&q)
            .unwrap()
            .into_iter()
            .filter_map(|u| u.user.email)
            .collect()
    };
    assert_eq!(
        emails(UserQuery {
            grade: Some("KG".into()),
            ..Default::default()
        }),
        ["bo@x.org"]
    );
    let located = emails(UserQuery {
        location: Some("District Office".into()),
        ..Default::default()
    });
    let all = s.list_users(&UserQuery::default()).unwrap();
    let with_location = all
        .iter()
        .filter(|u| u.user.get(Field::Location) == Some("District Office"))
        .count();
    assert_eq!(located.len(), with_location);
    assert!(
        emails(UserQuery {
            location: Some("Nowhere".into()),
            ..Default::default()
        })
        .is_empty()
    );
    assert!(
        emails(UserQuery {
            homeroom: Some("Room 0".into()),
            ..Default::default()
        })
        .is_empty()
    );
}

/// Tokens keep their expiry (or none); a database from before expiries (schema v4)
/// gains the column on open, its tokens never expiring.
fn tokens_keep_their_expiry(db: &mut TestDb) {
    let s = db.store();
    let dated = s
        .create_api_token(
            "nightly",
            TokenScope::Read,
            "sha-dated",
            Some(days(30)),
            "cli:root",
            now(),
        )
        .unwrap();
    let open = s
        .create_api_token(
            "forever",
            TokenScope::Write,
            "sha-open",
            None,
            "cli:root",
            now(),
        )
        .unwrap();
    let t = s.api_token("sha-dated").unwrap().unwrap();
    assert_eq!((t.id, t.expires_at), (dated, Some(days(30))));
    assert!(!t.expired(days(29)) && t.expired(days(30)) && t.expired(days(31)));
    let f = s.api_token("sha-open").unwrap().unwrap();
    assert_eq!((f.id, f.expires_at), (open, None));
    assert!(!f.expired(days(100_000)));
    let listed: Vec<_> = s
        .api_tokens()
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.expires_at))
        .collect();
    assert_eq!(
        listed,
        [
            ("nightly".to_owned(), Some(days(30))),
            ("forever".to_owned(), None)
        ]
    );
    let audit: Vec<String> = s
        .audit_log(0)
        .unwrap()
        .into_iter()
        .filter(|a| a.action == "api.token.create")
        .map(|a| a.detail)
        .collect();
    assert!(
        audit.iter().any(|d| d.contains("expires never"))
            && audit
                .iter()
                .any(|d| d.contains(&format!("expires {}", days(30)))),
        "{audit:?}"
    );

    // Back to schema v4 behind the store's back: the column goes, then comes back.
    db.undo_duplicate_keys();
    db.exec(
        "DROP TABLE listed_skips; DROP TABLE held_plan_parts; DROP TABLE push_state; DROP TABLE push_groups; DROP TABLE targets; DROP TABLE scim_resources; DROP TABLE kept_apart; \
         DROP TABLE saved_views; DROP INDEX users_grade_key; DROP INDEX users_homeroom_lc; \
         DROP INDEX users_name_lc; ALTER TABLE users DROP COLUMN grade_key; \
         ALTER TABLE users DROP COLUMN homeroom_lc; DELETE FROM meta WHERE key = 'user_list_keys'; \
         DROP INDEX sis_people_name_key; DROP INDEX sis_people_email_key; \
         DROP INDEX sis_people_username_key; ALTER TABLE sis_people DROP COLUMN name_key; \
         ALTER TABLE sis_people DROP COLUMN email_key; ALTER TABLE sis_people DROP COLUMN username_key; \
         DELETE FROM meta WHERE key = 'sis_people_keys'; \
         ALTER TABLE api_tokens DROP COLUMN expires_at; \
         ALTER TABLE runs DROP COLUMN warnings; \
         UPDATE meta SET value = '4' WHERE key = 'schema_version'",
    );
    let again = db.reopen().unwrap();
    assert_eq!(
        again.meta_get("schema_version").unwrap().as_deref(),
        Some(&*store::SCHEMA_VERSION.to_string())
    );
    let t = again.api_token("sha-dated").unwrap().unwrap();
    assert_eq!(
        t.expires_at, None,
        "tokens made before expiries never expire"
    );
}

/// A read beside a long one (a sync reading every link while an admin opens a console
/// page) answers without waiting for it, on either backend.
fn a_read_does_not_wait_for_a_long_one(db: &mut TestDb) {
    use std::sync::mpsc::channel;
    use std::time::Duration;
    let s = db.store();
    let (inside, is_inside) = channel();
    let (release, released) = channel::<()>();
    let (answer, answered) = channel();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            s.while_reading(|| {
                inside.send(()).unwrap();
                // Held until the other read has answered (or the test gave up on it).
                let _ = released.recv_timeout(Duration::from_secs(30));
            })
            .unwrap();
        });
        is_inside.recv().unwrap();
        scope.spawn(move || answer.send(s.count_console_accounts().unwrap()).unwrap());
        let got = answered.recv_timeout(Duration::from_secs(10));
        release.send(()).unwrap();
        assert_eq!(got, Ok(0), "the second read waited for the first");
    });
    // Both connections read on afterwards.
    assert_eq!(s.count_console_accounts().unwrap(), 0);
}

conformance!(
    a_read_does_not_wait_for_a_long_one,
    tokens_keep_their_expiry,
    accounts_sessions_and_tokens,
    locks_keep_runs_apart,
    users_filter_by_grade_homeroom_and_location,
);
