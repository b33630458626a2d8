//! The SIS people's stored match keys (`sis_people.name_key`, `email_key`,
//! `username_key`), which the unlinked accounts report looks people up by: written with
//! every person and rewritten when a later sync renames them, computed again on open when
//! they are missing or were made by another version of the rule, in batches.

use oneroster::Role;
use rostersync_core::directory::AccountId;
use store::Store;

use crate::harness::{TestDb, config, conformance, later, now, person, sso_row, sync};

conformance!(
    keys_are_written_and_follow_a_renamed_person,
    missing_or_outdated_keys_are_computed_again_on_open,
    every_person_gets_keys_past_one_batch,
);

fn id_of(s: &Store, email: &str) -> AccountId {
    s.find_user(email).unwrap().unwrap().user.id
}

/// The sourcedIds the unlinked report suggests for an account.
fn suggested(s: &Store, id: AccountId) -> Vec<String> {
    s.report_unlinked(None, 0)
        .unwrap()
        .into_iter()
        .find(|a| a.id == id)
        .expect("the account is unlinked")
        .suggestions
        .into_iter()
        .map(|x| x.sourced_id)
        .collect()
}

/// A person's stored (name_key, email_key, username_key).
fn keys_of(db: &TestDb, sourced_id: &str) -> [Option<String>; 3] {
    let mut rows = db.rows(&format!(
        "SELECT name_key, email_key, username_key FROM sis_people \
         WHERE source = 'sis' AND sourced_id = '{sourced_id}'"
    ));
    assert_eq!(rows.len(), 1, "{sourced_id}");
    rows.remove(0).try_into().unwrap()
}

fn some(a: &str, b: &str, c: Option<&str>) -> [Option<String>; 3] {
    [Some(a.to_owned()), Some(b.to_owned()), c.map(str::to_owned)]
}

/// Accounts the SIS people below may be: Pat Smith, Pat Jones, and one whose email's
/// local part is Kim's username (Kim has no email).
fn accounts(s: &Store) -> (AccountId, AccountId, AccountId) {
    s.import_accounts(
        &[
            sso_row("pat.smith@x.org", "Pat", "Smith"),
            sso_row("pj@x.org", "Pat", "Jones"),
            sso_row("kimlee@x.org", "K", "L"),
        ],
        "google",
        now(),
    )
    .unwrap();
    (
        id_of(s, "pat.smith@x.org"),
        id_of(s, "pj@x.org"),
        id_of(s, "kimlee@x.org"),
    )
}

fn keys_are_written_and_follow_a_renamed_person(db: &mut TestDb) {
    let s = db.store();
    let (smith, jones, kim) = accounts(s);
    let mut people = vec![
        // Student addresses: no email match, so the sync makes them accounts of their own.
        person(
            "s1",
            Role::Student,
            "Pat",
            "Smith",
            Some("Pat.Smith+x@students.x.org"),
        ),
        person("s2", Role::Student, "Kim", "Lee", None),
        person(
            "s3",
            Role::Student,
            "Lee",
            "Ray",
            Some("leeray@students.x.org"),
        ),
    ];
    sync(s, &config(""), &people, now());
    assert_eq!(
        keys_of(db, "s1"),
        some("pat smith", "pat.smith", Some("patsmith"))
    );
    assert_eq!(
        keys_of(db, "s2")[2].as_deref(),
        Some("kimlee"),
        "no email: the username"
    );
    assert_eq!(keys_of(db, "s2")[1], None);
    assert_eq!(
        keys_of(db, "s3"),
        some("lee ray", "leeray", None),
        "a username that is the email's local part is stored once"
    );
    assert_eq!(suggested(s, smith), ["s1"]);
    assert!(suggested(s, jones).is_empty());
    assert_eq!(suggested(s, kim), ["s2"], "found by the username's key");

    // A later sync renames Pat Smith to Pat Jones, with a new address.
    people[0].edit(|f| {
        f.family_name = "Jones".into();
        f.username = "pjones".into();
        f.email = Some("pj@students.x.org".into());
    });
    sync(s, &config(""), &people, later(60));
    assert_eq!(keys_of(db, "s1"), some("pat jones", "pj", Some("pjones")));
    assert!(
        suggested(s, smith).is_empty(),
        "not found by the old name any more"
    );
    assert_eq!(suggested(s, jones), ["s1"], "found by the new name");
}

fn missing_or_outdated_keys_are_computed_again_on_open(db: &mut TestDb) {
    let s = db.store();
    let (smith, _, kim) = accounts(s);
    let people = [
        person(
            "s1",
            Role::Student,
            "Pat",
            "Smith",
            Some("pat.smith@students.x.org"),
        ),
        person("s2", Role::Student, "Kim", "Lee", None),
    ];
    sync(s, &config(""), &people, now());
    let want = (keys_of(db, "s1"), keys_of(db, "s2"));
    assert_eq!(suggested(s, smith), ["s1"]);

    // As a database migrated to v13 has them before the store fills them: none.
    db.exec(
        "UPDATE sis_people SET name_key = NULL, email_key = NULL, username_key = NULL; \
         DELETE FROM meta WHERE key = 'sis_people_keys'",
    );
    assert!(
        suggested(s, smith).is_empty() && suggested(s, kim).is_empty(),
        "the report looks people up by the stored keys"
    );
    let again = db.reopen().unwrap();
    assert_eq!((keys_of(db, "s1"), keys_of(db, "s2")), want);
    assert_eq!(
        again.meta_get("sis_people_keys").unwrap().as_deref(),
        Some("1")
    );
    assert_eq!(suggested(&again, smith), ["s1"]);
    assert_eq!(suggested(&again, kim), ["s2"]);

    // Keys the current rule's version says are right are not computed again...
    drop(again);
    db.exec("UPDATE sis_people SET name_key = 'pat smyth' WHERE sourced_id = 's1'");
    drop(db.reopen().unwrap());
    assert_eq!(keys_of(db, "s1")[0].as_deref(), Some("pat smyth"));
    // ...those of another version are.
    db.exec("UPDATE meta SET value = '0' WHERE key = 'sis_people_keys'");
    let again = db.reopen().unwrap();
    assert_eq!((keys_of(db, "s1"), keys_of(db, "s2")), want);
    assert_eq!(
        again.meta_get("sis_people_keys").unwrap().as_deref(),
        Some("1")
    );
}

/// More people than one batch of the refresh: every one gets its keys.
fn every_person_gets_keys_past_one_batch(db: &mut TestDb) {
    const N: usize = 12_345;
    db.exec(&format!(
        "INSERT INTO sis_people (source, sourced_id, status, enabled, username, email, given_name, \
             family_name, updated_at) \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {N}) \
         SELECT 'sis', 'p' || CAST(i AS TEXT), 'active', TRUE, 'user' || CAST(i AS TEXT), \
             'Given.' || CAST(i AS TEXT) || '@x.org', 'Given', 'Family' || CAST(i AS TEXT), \
             '2026-09-01T02:00:00.000000000Z' FROM n; \
         DELETE FROM meta WHERE key = 'sis_people_keys'"
    ));
    let missing = "SELECT CAST(COUNT(*) AS TEXT) FROM sis_people \
                   WHERE name_key IS NULL OR email_key IS NULL OR username_key IS NULL";
    assert_eq!(db.rows(missing)[0][0].as_deref(), Some(&*N.to_string()));
    let again = db.reopen().unwrap();
    assert_eq!(db.rows(missing)[0][0].as_deref(), Some("0"));
    assert_eq!(
        keys_of(db, "p12345"),
        some("given family12345", "given.12345", Some("user12345"))
    );
    assert_eq!(
        again.meta_get("sis_people_keys").unwrap().as_deref(),
        Some("1")
    );
    // A fill that wide makes the keys' indexes again after it: all three are there.
    let indexes = if db.is_postgres() {
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = current_schema() \
         AND indexname IN ('sis_people_email_key', 'sis_people_name_key', 'sis_people_username_key') \
         ORDER BY 1"
    } else {
        "SELECT name FROM sqlite_master WHERE type = 'index' \
         AND name GLOB 'sis_people_*_key' ORDER BY 1"
    };
    assert_eq!(
        db.rows(indexes),
        [
            [Some("sis_people_email_key".to_owned())],
            [Some("sis_people_name_key".to_owned())],
            [Some("sis_people_username_key".to_owned())]
        ]
    );
}
