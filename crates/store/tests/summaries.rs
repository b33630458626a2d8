//! The counts kept by triggers (migration 0011: the Overview's account counts, the Location
//! Mappings page's) stay what aggregating the tables answers,
//! whoever writes: sync apply (creates, updates, deactivations), a merge, an undo, links
//! by hand, an account source's links, raw SQL, and a restore (into the other backend:
//! `backup.rs`).

use std::collections::{BTreeMap, BTreeSet};

use oneroster::{Role, Status};
use rostersync_core::directory::AccountId;
use rostersync_core::reports::account_dup_keys;
use rostersync_core::settings::SourceKind;
use rostersync_core::sis::SisPerson;
use store::Store;

use crate::harness::{
    TestDb, assert_item_counts_true, config, conformance, later, now, person, plan_store, sso_row,
    start, sync,
};

conformance!(
    the_overview_counts_follow_every_write,
    a_restore_fills_the_counts_again,
    a_wide_sync_counts_everything_once,
    a_count_that_drifted_is_found_and_counted_again,
);

fn id_of(s: &Store, email: &str) -> AccountId {
    s.find_user(email).unwrap().unwrap().user.id
}

fn num(v: &Option<String>) -> i64 {
    v.as_deref().unwrap().parse().unwrap()
}

/// What the counts were before migration 0011: one aggregate over the accounts.
fn aggregated(db: &TestDb) -> [u64; 5] {
    let kinds: Vec<String> = SourceKind::ALL
        .into_iter()
        .filter(|k| k.is_account_source())
        .map(|k| format!("'{}'", k.as_str()))
        .collect();
    let sql = format!(
        "SELECT CAST(COUNT(*) AS TEXT), \
         CAST(COALESCE(SUM(CASE WHEN active THEN 1 ELSE 0 END), 0) AS TEXT), \
         CAST(COALESCE(SUM(CASE WHEN linked THEN 1 ELSE 0 END), 0) AS TEXT), \
         CAST(COALESCE(SUM(CASE WHEN active AND NOT linked THEN 1 ELSE 0 END), 0) AS TEXT), \
         CAST((SELECT COUNT(*) FROM groups) AS TEXT) \
         FROM (SELECT u.active = TRUE AS active, \
               EXISTS (SELECT 1 FROM sis_links s WHERE s.user_id = u.id AND s.source NOT IN \
                       (SELECT name FROM sources WHERE kind IN ({}))) AS linked \
               FROM users u WHERE u.merged_into IS NULL) a",
        kinds.join(", ")
    );
    let row = db.rows(&sql).remove(0);
    let v: Vec<u64> = row.iter().map(|c| num(c) as u64).collect();
    [v[0], v[1], v[2], v[3], v[4]]
}

/// Accounts by (linking sources, active).
type BySources = BTreeMap<(String, i64), i64>;

/// `account_counts` summed by key (zero sums left out) and the same grouping computed
/// from `users` and `sis_links`.
fn kept_and_computed(db: &TestDb) -> (BySources, BySources) {
    let kept: BySources = db
        .rows(
            "SELECT sources, CASE WHEN active THEN '1' ELSE '0' END, CAST(SUM(accounts) AS TEXT) \
             FROM account_counts GROUP BY sources, active",
        )
        .iter()
        .map(|r| ((r[0].clone().unwrap(), num(&r[1])), num(&r[2])))
        .filter(|(_, n)| *n != 0)
        .collect();
    let mut sources: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
    for r in db.rows("SELECT CAST(user_id AS TEXT), source FROM sis_links") {
        sources
            .entry(num(&r[0]))
            .or_default()
            .insert(r[1].clone().unwrap());
    }
    let mut computed = BySources::new();
    for r in db.rows(
        "SELECT CAST(id AS TEXT), CASE WHEN active THEN '1' ELSE '0' END FROM users \
         WHERE merged_into IS NULL",
    ) {
        let key = sources
            .get(&num(&r[0]))
            .map(|s| s.iter().cloned().collect::<Vec<_>>().join(","))
            .unwrap_or_default();
        *computed.entry((key, num(&r[1]))).or_default() += 1;
    }
    (kept, computed)
}

/// What the Location Mappings counts were before migration 0011: (org, location, writer,
/// accounts) over the source's links, and the head count per org.
fn aggregated_locations(db: &TestDb, source: &str) -> (Vec<String>, BTreeMap<String, u64>) {
    let rows = db.rows(&format!(
        "SELECT p.primary_org, loc.name, \
         COALESCE(fp.writer, CASE WHEN (u.created_fields & 1024) <> 0 THEN u.created_by END) AS writer, \
         CAST(COUNT(*) AS TEXT) FROM sis_links l \
         JOIN users u ON u.id = l.user_id \
         LEFT JOIN sis_people p ON p.source = l.source AND p.sourced_id = l.sourced_id \
         LEFT JOIN locations loc ON loc.id = u.location_id \
         LEFT JOIN field_provenance fp ON fp.user_id = u.id AND fp.field = 'location' \
         WHERE l.source = '{source}' AND u.active = TRUE \
         GROUP BY 1, 2, 3"
    ));
    let mut by_org: BTreeMap<String, u64> = BTreeMap::new();
    let mut groups: Vec<String> = rows
        .iter()
        .map(|r| {
            if let Some(org) = &r[0] {
                *by_org.entry(org.clone()).or_default() += num(&r[3]) as u64;
            }
            format!("{:?} {:?} {:?} {}", r[0], r[1], r[2], num(&r[3]))
        })
        .collect();
    groups.sort();
    (groups, by_org)
}

#[track_caller]
fn assert_locations_true(db: &TestDb, step: &str) {
    let s = db.store();
    let (want, want_orgs) = aggregated_locations(db, "sis");
    let mut got: Vec<String> = s
        .accounts_by_location("sis")
        .unwrap()
        .iter()
        .map(|a| format!("{:?} {:?} {:?} {}", a.org, a.location, a.writer, a.accounts))
        .collect();
    got.sort();
    assert_eq!(got, want, "accounts_by_location after {step}");
    let orgs: BTreeMap<String, u64> = s
        .sis_orgs("sis")
        .unwrap()
        .into_iter()
        .filter(|o| o.people > 0)
        .map(|o| (o.sourced_id, o.people))
        .collect();
    let known: BTreeSet<String> = db
        .rows("SELECT sourced_id FROM sis_orgs WHERE source = 'sis'")
        .into_iter()
        .filter_map(|mut r| r.remove(0))
        .collect();
    let want_orgs: BTreeMap<String, u64> = want_orgs
        .into_iter()
        .filter(|(o, _)| known.contains(o))
        .collect();
    assert_eq!(orgs, want_orgs, "sis_orgs head counts after {step}");
}

/// The duplicates report's kept keys (migration 0014) are what the rule gives: each
/// account's key columns are `account_dup_keys` of its email, username and school id
/// number; `duplicate_keys` holds those of the active accounts not merged away, and
/// `duplicate_key_counts` how many accounts hold each.
#[track_caller]
fn assert_dup_keys_true(db: &TestDb, step: &str) {
    let mut want_keys: BTreeSet<(String, i64)> = BTreeSet::new();
    for r in db.rows(
        "SELECT CAST(id AS TEXT), email, username, identifier, \
         CASE WHEN active = TRUE AND merged_into IS NULL THEN '1' ELSE '0' END, \
         dupkey_email, dupkey_username, dupkey_identifier FROM users",
    ) {
        let id = num(&r[0]);
        let want = account_dup_keys(r[1].as_deref(), r[2].as_deref(), r[3].as_deref());
        assert_eq!(
            [r[5].clone(), r[6].clone(), r[7].clone()],
            want,
            "#{id}'s key columns after {step}"
        );
        if num(&r[4]) == 1 {
            want_keys.extend(want.into_iter().flatten().map(|k| (k, id)));
        }
    }
    let kept: BTreeSet<(String, i64)> = db
        .rows("SELECT key, CAST(user_id AS TEXT) FROM duplicate_keys")
        .into_iter()
        .map(|r| (r[0].clone().unwrap(), num(&r[1])))
        .collect();
    assert_eq!(kept, want_keys, "duplicate_keys after {step}");
    let mut want_counts: BTreeMap<String, i64> = BTreeMap::new();
    for (k, _) in &want_keys {
        *want_counts.entry(k.clone()).or_default() += 1;
    }
    let counts: BTreeMap<String, i64> = db
        .rows("SELECT key, CAST(accounts AS TEXT) FROM duplicate_key_counts")
        .into_iter()
        .map(|r| (r[0].clone().unwrap(), num(&r[1])))
        .collect();
    assert_eq!(counts, want_counts, "duplicate_key_counts after {step}");
}

/// The unlinked report's kept accounts (migration 0015) are the active accounts not
/// merged away that no SIS source links.
#[track_caller]
fn assert_unlinked_true(db: &TestDb, step: &str) {
    let kinds: Vec<String> = SourceKind::ALL
        .into_iter()
        .filter(|k| k.is_account_source())
        .map(|k| format!("'{}'", k.as_str()))
        .collect();
    let ids = |sql: &str| -> BTreeSet<i64> { db.rows(sql).iter().map(|r| num(&r[0])).collect() };
    let want = ids(&format!(
        "SELECT CAST(u.id AS TEXT) FROM users u WHERE u.active = TRUE AND u.merged_into IS NULL \
         AND NOT EXISTS (SELECT 1 FROM sis_links s WHERE s.user_id = u.id AND s.source NOT IN \
             (SELECT name FROM sources WHERE kind IN ({})))",
        kinds.join(", ")
    ));
    assert_eq!(
        ids("SELECT CAST(user_id AS TEXT) FROM unlinked_accounts"),
        want,
        "unlinked_accounts after {step}"
    );
}

#[track_caller]
fn assert_counts_true(db: &TestDb, step: &str) {
    assert_dup_keys_true(db, step);
    assert_unlinked_true(db, step);
    assert_locations_true(db, step);
    let (kept, computed) = kept_and_computed(db);
    assert_eq!(kept, computed, "account_counts after {step}");
    let c = db.store().count_users().unwrap();
    assert_eq!(
        [c.users, c.active, c.linked, c.unlinked_active, c.groups],
        aggregated(db),
        "count_users after {step}"
    );
}

/// Schools mapped to locations, so the sync writes them.
const MAPPED: &str = "[source.locations]\ndefault = \"District Office\"\n\
                      map = { \"school-1\" = \"Lincoln\", \"school-2\" = \"Grant\" }\n";

fn gone(mut p: SisPerson) -> SisPerson {
    p.edit(|f| f.status = Status::ToBeDeleted);
    p
}

fn students() -> Vec<SisPerson> {
    vec![
        person("s1", Role::Student, "Ana", "Li", Some("ana@x.org")),
        person("s2", Role::Student, "Bo", "Ek", Some("bo@x.org")),
        person("s3", Role::Student, "Cy", "Ng", Some("cy@x.org")),
        person("s4", Role::Student, "Di", "Ro", Some("di@x.org")),
    ]
}

fn school(i: usize) -> String {
    format!("school-{}", 1 + i % 2)
}

/// `n` students, `s0`…, one in two at each of the two mapped schools.
fn students_of_two_schools(n: usize) -> Vec<SisPerson> {
    (0..n)
        .map(|i| {
            let mut p = person(
                &format!("s{i}"),
                Role::Student,
                "Ana",
                &format!("Li{i}"),
                Some(&format!("ana{i}@x.org")),
            );
            p.edit(|f| {
                f.primary_org = Some(school(i));
                f.orgs = vec![school(i)];
            });
            p
        })
        .collect()
}

/// Syncs that write more than an eighth of the directory (a first import, then everyone
/// moving school) leave counts as true as per-row triggers do: on SQLite they take the
/// triggers away and count everything again at their end.
fn a_wide_sync_counts_everything_once(db: &mut TestDb) {
    let s = db.store();
    let cfg = config(MAPPED);
    s.save_config(&cfg, &[], "owner", now()).unwrap();
    let people = students_of_two_schools(1_200);
    let migrated = filled_tables_indexes(db);
    // A first import that fails leaves the indexes as they were (it had dropped those of
    // the details' tables it fills, to build them after).
    let mut broken = plan_store(s, &cfg, &people);
    broken.items.push(ghost_of(&broken.items[0]));
    let run = start(s, "sis");
    let err = s.apply_plan(run, &broken, now()).unwrap_err();
    assert!(err.to_string().contains("#424242"), "{err}");
    assert_eq!(filled_tables_indexes(db), migrated, "a failed first import");
    assert_counts_true(db, "a failed first import");

    let (_, _, applied) = sync(s, &cfg, &people, now());
    assert_eq!(applied.counts.created, 1_200);
    assert_counts_true(db, "a first import of 1 200");
    assert_triggers_kept(db);
    let imported = filled_tables_indexes(db);
    assert_eq!(
        without_oids(&imported),
        without_oids(&migrated),
        "every index is there again, as the migrations made it"
    );
    {
        // Built after the import's writes (a new relation, a new root page), for every
        // table the import filled from empty.
        let rebuilt: BTreeSet<&str> = imported
            .iter()
            .filter(|i| !migrated.contains(i))
            .filter_map(|i| i[0].as_deref())
            .collect();
        let people_details = [
            "sis_people_org",
            "sis_people_email_key",
            "revisions_user",
            "group_members_user",
            "guardian_relationships_guardian",
        ];
        for index in people_details {
            assert!(rebuilt.contains(index), "{index} in {rebuilt:?}");
        }
        // What the lists and the run's page read while an import runs kept theirs.
        for index in ["users_email_lc", "sis_links_user", "run_items_user"] {
            assert!(!rebuilt.contains(index), "{index} in {rebuilt:?}");
        }
    }
    if db.is_postgres() {
        // The planner was told the sizes the import left (`reltuples` is -1 for a table
        // never analyzed, 0 for one analyzed empty).
        for table in ["users", "sis_links", "sis_people"] {
            let rows = db.rows(&format!(
                "SELECT reltuples::bigint::text FROM pg_class \
                 WHERE oid = to_regclass('{table}')"
            ));
            assert_eq!(rows[0][0].as_deref(), Some("1200"), "{table}");
        }
    }

    let moved: Vec<SisPerson> = people
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut p = p.clone();
            p.edit(|f| {
                f.primary_org = Some(school(i + 1));
                f.orgs = vec![school(i + 1)];
            });
            p
        })
        .collect();
    // A wide apply that fails after its writes began leaves the triggers and the counts.
    let mut broken = plan_store(s, &cfg, &moved);
    broken.items.push(ghost_of(&broken.items[0]));
    let run = start(s, "sis");
    let err = s.apply_plan(run, &broken, later(1)).unwrap_err();
    assert!(err.to_string().contains("#424242"), "{err}");
    assert_triggers_kept(db);
    assert_counts_true(db, "a failed wide apply");

    let (_, _, applied) = sync(s, &cfg, &moved, later(5));
    assert_eq!(applied.counts.updated, 1_200, "{applied:?}");
    assert_counts_true(db, "everyone moving school");
    // Tables that held as many rows as the write touched kept their indexes through it.
    let after = filled_tables_indexes(db);
    for index in ["sis_people_org", "revisions_user", "users_email_lc"] {
        let of = |indexes: &[Vec<Option<String>>]| {
            indexes
                .iter()
                .find(|i| i[0].as_deref() == Some(index))
                .cloned()
        };
        assert!(of(&after).is_some(), "{index}");
        assert_eq!(of(&after), of(&imported), "{index} in a wide change");
    }
}

/// An item for an account that does not exist, which fails the apply it is in.
fn ghost_of(item: &rostersync_core::plan::PlanItem) -> rostersync_core::plan::PlanItem {
    let mut ghost = item.clone();
    ghost.outcome = rostersync_core::plan::Outcome::Updated;
    ghost.sourced_id = "zz-ghost".into();
    ghost.user_id = Some(AccountId(424_242));
    ghost
}

/// The secondary indexes of the tables a first import fills: (name, definition, and what
/// is new when it was built again: the index's own id on PostgreSQL, its root page on
/// SQLite).
fn filled_tables_indexes(db: &TestDb) -> Vec<Vec<Option<String>>> {
    const TABLES: &str = "'users', 'sis_links', 'sis_people', 'field_provenance', 'run_items', \
                          'revisions', 'group_members', 'guardian_relationships'";
    let sql = if db.is_postgres() {
        format!(
            "SELECT c.relname::text, pg_get_indexdef(c.oid), c.oid::text \
             FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid \
             JOIN pg_class t ON t.oid = x.indrelid \
             WHERE t.relnamespace = current_schema()::regnamespace AND t.relname IN ({TABLES}) \
             AND NOT x.indisprimary AND NOT x.indisunique ORDER BY 1"
        )
    } else {
        format!(
            "SELECT name, sql, CAST(rootpage AS TEXT) FROM sqlite_master WHERE type = 'index' \
             AND sql IS NOT NULL AND tbl_name IN ({TABLES}) ORDER BY 1"
        )
    };
    let indexes = db.rows(&sql);
    assert!(indexes.len() >= 15, "{indexes:?}");
    indexes
}

fn without_oids(indexes: &[Vec<Option<String>>]) -> Vec<&[Option<String>]> {
    indexes.iter().map(|i| &i[..2]).collect()
}

/// A kept count that no longer says what the tables hold (a write around the triggers, a
/// bug) is found by `check_counts`, row by row, and `recount` puts every count right.
fn a_count_that_drifted_is_found_and_counted_again(db: &mut TestDb) {
    let s = db.store();
    let cfg = config(MAPPED);
    s.save_config(&cfg, &[], "owner", now()).unwrap();
    let (_, _, applied) = sync(s, &cfg, &students_of_two_schools(40), now());
    assert_eq!(applied.counts.created, 40);
    let check = s.check_counts().unwrap();
    assert!(check.differing.is_empty(), "{check:?}");
    // Two schools' location rows and one row of accounts (active, linked by `sis`).
    assert_eq!(check.rows, 3, "{check:?}");
    assert_eq!(s.active_linked("sis").unwrap(), 40);

    db.exec("UPDATE location_counts SET accounts = accounts + 7 WHERE org = 'school-1'");
    db.exec(
        "INSERT INTO location_counts (source, org, location_id, writer, accounts) \
         VALUES ('sis', 'school-9', 0, '', 3)",
    );
    db.exec("UPDATE account_counts SET accounts = accounts - 1 WHERE sources = 'sis'");
    assert_eq!(
        s.active_linked("sis").unwrap(),
        50,
        "the drift the safeguards would see"
    );
    let check = s.check_counts().unwrap();
    assert_eq!(check.rows, 4, "{check:?}");
    let found: Vec<(&str, bool, i64, i64)> = check
        .differing
        .iter()
        .map(|d| (d.table, d.key.contains("school-"), d.kept, d.counted))
        .collect();
    assert_eq!(
        found,
        [
            ("account_counts", false, 39, 40),
            ("location_counts", true, 27, 20),
            ("location_counts", true, 3, 0),
        ],
        "{check:?}"
    );
    assert!(
        check.differing[0].key.contains("sources=\"sis\""),
        "{check:?}"
    );
    assert!(
        check.differing[1].key.contains("org=\"school-1\""),
        "{check:?}"
    );
    assert!(
        check.differing[2].key.contains("org=\"school-9\""),
        "{check:?}"
    );

    s.recount().unwrap();
    let check = s.check_counts().unwrap();
    assert!(check.differing.is_empty(), "{check:?}");
    assert_eq!(s.active_linked("sis").unwrap(), 40);
    assert_counts_true(db, "a recount");
}

/// Whether a lock is granted, or waited for.
enum Lock {
    Held,
    Awaited,
}

/// Whether, within 600 looks `every_ms` apart, some session holds (or waits for) a `mode`
/// lock on `table` of this test's schema (the URL's search path: other tests write beside
/// this one in the same database).
fn lock_seen(url: &str, lock: Lock, mode: &str, table: &str, every_ms: u64) -> bool {
    let mut watch = test_kit::connect(url);
    let granted = match lock {
        Lock::Held => "granted",
        Lock::Awaited => "NOT granted",
    };
    let sql = format!(
        "SELECT COUNT(*) FROM pg_locks WHERE {granted} AND locktype = 'relation' \
         AND mode = '{mode}' \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND relation = '{table}'::regclass"
    );
    (0..600).any(|_| {
        let n: i64 = watch.query_one(&sql, &[]).unwrap().get(0);
        n > 0 || {
            std::thread::sleep(std::time::Duration::from_millis(every_ms));
            false
        }
    })
}

/// On PostgreSQL a first import that builds the indexes of a person's details after its
/// rows holds those tables and the counts' lock from its start: a writer of accounts
/// beside it (whose triggers count, then read a details table) waits for its commit and
/// is counted, where with only the tables held the two waited for each other.
#[test]
fn a_first_import_on_postgres_builds_indexes_after_with_a_writer_beside_it() {
    crate::harness::on_postgres(|db| {
        let s = db.store();
        let cfg = config(MAPPED);
        s.save_config(&cfg, &[], "owner", now()).unwrap();
        let made = s
            .import_accounts(&[sso_row("sso@y.org", "So", "Lo")], "google", now())
            .unwrap();
        assert_eq!(made.created, 1);
        let migrated = filled_tables_indexes(db);
        let url = db.url();
        let people = students_of_two_schools(1_500);
        let applied = std::thread::scope(|scope| {
            let wide = scope.spawn(|| sync(s, &cfg, &people, now()).2);
            // Once the import holds the details' tables, a one-row write of an account.
            let held = lock_seen(&url, Lock::Held, "AccessExclusiveLock", "sis_people", 20);
            let beside = scope.spawn(|| {
                let mut c = test_kit::connect(&url);
                c.batch_execute(
                    "UPDATE users SET active = FALSE, revision = revision + 1 \
                     WHERE email_lc = 'sso@y.org'",
                )
                .unwrap();
            });
            let applied = wide.join().unwrap();
            beside.join().unwrap();
            assert!(held, "the import never held the details' tables");
            applied
        });
        assert_eq!(applied.counts.created, 1_500);
        let inactive = db.rows("SELECT CAST(COUNT(*) AS TEXT) FROM users WHERE active = FALSE");
        assert_eq!(inactive[0][0].as_deref(), Some("1"));
        let imported = filled_tables_indexes(db);
        assert_eq!(without_oids(&imported), without_oids(&migrated));
        let of = |indexes: &[Vec<Option<String>>], name: &str| {
            indexes
                .iter()
                .find(|i| i[0].as_deref() == Some(name))
                .cloned()
        };
        assert_ne!(
            of(&imported, "sis_people_org"),
            of(&migrated, "sis_people_org"),
            "built after the rows"
        );
        assert_counts_true(db, "a first import with a writer beside it");
    });
}

/// On PostgreSQL a wide write pauses only its own transaction's triggers and counts
/// everything again at its end under a lock: a console write still open when it gets
/// there is waited for, and writes that go on through it (each committed on its own) are
/// counted too, whether they land before its recount or after it.
#[test]
fn a_wide_write_on_postgres_counts_the_writers_beside_it() {
    crate::harness::on_postgres(|db| {
        let s = db.store();
        let cfg = config(MAPPED);
        s.save_config(&cfg, &[], "owner", now()).unwrap();
        for i in 0..3 {
            let made = s
                .import_accounts(
                    &[sso_row(&format!("sso{i}@y.org"), "So", &format!("Lo{i}"))],
                    "google",
                    now(),
                )
                .unwrap();
            assert_eq!(made.created, 1);
        }
        assert_counts_true(db, "three sign-on accounts");
        let url = db.url();
        let people = students_of_two_schools(1_500);

        // A console write, open: an account deactivated, not yet committed.
        let mut open = test_kit::connect(&url);
        open.batch_execute(
            "BEGIN; UPDATE users SET active = FALSE, revision = revision + 1 \
             WHERE email_lc = 'sso0@y.org'",
        )
        .unwrap();
        let done = std::sync::atomic::AtomicBool::new(false);
        let toggled = std::thread::scope(|scope| {
            let wide = scope.spawn(|| {
                // Stops the writer beside it however this ends.
                struct Done<'a>(&'a std::sync::atomic::AtomicBool);
                impl Drop for Done<'_> {
                    fn drop(&mut self) {
                        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
                    }
                }
                let _done = Done(&done);
                sync(s, &cfg, &people, now()).2
            });
            // Writes one at a time all through the wide one.
            let beside = scope.spawn(|| {
                let mut c = test_kit::connect(&url);
                let mut toggled = 0;
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    c.batch_execute(
                        "UPDATE users SET active = NOT active, revision = revision + 1 \
                         WHERE email_lc = 'sso1@y.org'",
                    )
                    .unwrap();
                    toggled += 1;
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                toggled
            });
            // The wide write gets to its recount and waits for the open write (which
            // also keeps it from taking the counts' lock at its start to build the
            // indexes of a person's details after its rows).
            let waited = lock_seen(&url, Lock::Awaited, "ExclusiveLock", "account_counts", 100);
            // Committed before the verdict, so a failure does not leave the wide write
            // waiting for ever.
            open.batch_execute("COMMIT").unwrap();
            assert!(
                waited,
                "the wide write never waited at its recount for the open write"
            );
            let applied = wide.join().unwrap();
            assert_eq!(applied.counts.created, 1_500);
            beside.join().unwrap()
        });
        assert!(toggled > 0);
        let active = |email: &str| {
            db.rows(&format!(
                "SELECT CASE WHEN active THEN 'yes' ELSE 'no' END FROM users WHERE email_lc = '{email}'"
            ))[0][0]
                .clone()
                .unwrap()
        };
        assert_eq!(active("sso0@y.org"), "no");
        assert_eq!(
            active("sso1@y.org"),
            if toggled % 2 == 1 { "no" } else { "yes" }
        );
        assert_counts_true(db, "a wide write with others writing beside it");
    });
}

/// On SQLite, all 19 counting triggers are in place (a wide write drops them and creates
/// them again in its transaction). On PostgreSQL, those 18 and the two that count the
/// duplicates report's keys are told by a wide write to do nothing (migration 0016).
fn assert_triggers_kept(db: &TestDb) {
    if db.is_postgres() {
        let pausable = db.rows(
            "SELECT CAST(COUNT(*) AS TEXT) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
             WHERE c.relnamespace = current_schema()::regnamespace \
             AND (t.tgname LIKE 'account_counts_%' OR t.tgname LIKE 'location_counts_%' \
                  OR t.tgname LIKE 'duplicate_keys_count_%') \
             AND pg_get_triggerdef(t.oid) LIKE '%WHEN (%rostersync.derived_paused%'",
        );
        assert_eq!(num(&pausable[0][0]), 20, "the counting triggers pause");
    } else {
        let triggers = db.rows(
            "SELECT CAST(COUNT(*) AS TEXT) FROM sqlite_master WHERE type = 'trigger' \
             AND (name GLOB 'account_counts_*' OR name GLOB 'location_counts_*')",
        );
        assert_eq!(
            num(&triggers[0][0]),
            19,
            "the counting triggers are in place"
        );
        let keys = db.rows(
            "SELECT CAST(COUNT(*) AS TEXT) FROM sqlite_master WHERE type = 'trigger' \
             AND name GLOB 'duplicate_keys_*'",
        );
        assert_eq!(
            num(&keys[0][0]),
            5,
            "the duplicate keys' triggers are in place"
        );
        let unlinked = db.rows(
            "SELECT CAST(COUNT(*) AS TEXT) FROM sqlite_master WHERE type = 'trigger' \
             AND name GLOB 'unlinked_accounts_*'",
        );
        assert_eq!(
            num(&unlinked[0][0]),
            9,
            "the unlinked accounts' triggers are in place"
        );
    }
}

/// Accounts made, changed, deactivated, merged, undone, linked and unlinked: after each
/// write the kept counts equal the aggregate.
fn the_overview_counts_follow_every_write(db: &mut TestDb) {
    assert_counts_true(db, "the migration");
    let s = db.store();
    let cfg = config(MAPPED);
    s.save_config(&cfg, &[], "owner", now()).unwrap();
    db.exec(
        "INSERT INTO sis_orgs (source, sourced_id, name, is_school) VALUES ('sis', 'school-1', 'One', TRUE); \
         INSERT INTO sis_orgs (source, sourced_id, name, is_school) VALUES ('sis', 'school-2', 'Two', TRUE)",
    );
    s.import_accounts(
        &[
            sso_row("ana.sso@x.org", "Ana", "Li"),
            sso_row("ed@x.org", "Ed", "Wu"),
            sso_row("fay@x.org", "Fay", "Oh"),
        ],
        "google",
        now(),
    )
    .unwrap();
    assert_counts_true(db, "an accounts import");

    sync(s, &cfg, &students(), now());
    assert_counts_true(db, "a first sync");

    // An update, a deactivation, a new person.
    let mut second = students();
    second[0].edit(|f| f.family_name = "Lin".into());
    // A new school: a new location, written by the sync (a provenance row).
    second[3].edit(|f| {
        f.primary_org = Some("school-2".into());
        f.orgs = vec!["school-2".into()];
    });
    second[1] = gone(second[1].clone());
    second.push(person("s5", Role::Student, "Ed", "Wu", Some("ed5@x.org")));
    let (run, _, applied) = sync(s, &cfg, &second, later(5));
    assert!(
        applied.counts.created >= 1 && applied.counts.deactivated >= 1,
        "{applied:?}"
    );
    assert_counts_true(db, "a sync with changes");

    // An account source's link counts as no SIS link.
    db.exec(&format!(
        "INSERT INTO sources (name, position, kind, settings, created_at, updated_at) \
         VALUES ('gw', 2, '{}', '{{}}', '2026-09-01T00:00:00Z', '2026-09-01T00:00:00Z')",
        SourceKind::GoogleWorkspace.as_str()
    ));
    let fay = id_of(s, "fay@x.org");
    let di = id_of(s, "di@x.org");
    db.exec(&format!(
        "INSERT INTO sis_links (source, sourced_id, user_id, rule, record_hash, synced_revision, linked_at) \
         VALUES ('gw', 'g-fay', {fay}, 'email', 0, 0, '2026-09-01T00:00:00Z'); \
         INSERT INTO sis_links (source, sourced_id, user_id, rule, record_hash, synced_revision, linked_at) \
         VALUES ('gw', 'g-di', {di}, 'email', 0, 0, '2026-09-01T00:00:00Z')"
    ));
    assert_counts_true(db, "an account source's links");
    let c = s.count_users().unwrap();
    assert_eq!(c.unlinked_active, 3, "{c:?}");

    // The survivor (signed on, unlinked) takes the synced account's link.
    let ana = id_of(s, "ana@x.org");
    let ana_sso = id_of(s, "ana.sso@x.org");
    s.merge_accounts(ana, ana_sso, "alice", later(6), false)
        .unwrap();
    assert_counts_true(db, "a merge");

    s.unlink_user(id_of(s, "cy@x.org"), None, "alice", later(7))
        .unwrap();
    assert_counts_true(db, "an unlink");
    s.link_user("sis", "s9", fay, "alice", later(8)).unwrap();
    assert_counts_true(db, "a link by hand");

    // The sync's provenance row for a location gone; an admin's location edit, its
    // writer changed; a person's org changed, gone, the person gone.
    db.exec(&format!(
        "DELETE FROM field_provenance WHERE user_id = {di} AND field = 'location'"
    ));
    assert_counts_true(db, "a location's writer gone");
    db.exec(&format!(
        "UPDATE users SET location_id = (SELECT id FROM locations WHERE name = 'Lincoln') WHERE id = {di}; \
         INSERT INTO field_provenance (user_id, field, writer, run_id, written_at) \
         VALUES ({di}, 'location', 'admin:alice', NULL, '2026-09-01T00:00:00Z')"
    ));
    assert_counts_true(db, "a location edit");
    db.exec(&format!(
        "UPDATE field_provenance SET writer = 'admin:bob' WHERE user_id = {di} AND field = 'location'"
    ));
    assert_counts_true(db, "a location's writer changed");
    db.exec(
        "UPDATE sis_people SET primary_org = 'school-2' WHERE source = 'sis' AND sourced_id = 's3'",
    );
    assert_counts_true(db, "a person's org changed");
    db.exec("UPDATE sis_people SET primary_org = NULL WHERE source = 'sis' AND sourced_id = 's5'");
    assert_counts_true(db, "a person's org gone");
    db.exec("DELETE FROM sis_people WHERE source = 'sis' AND sourced_id = 's3'");
    assert_counts_true(db, "a person gone");

    db.exec(&format!("UPDATE users SET active = FALSE WHERE id = {fay}"));
    assert_counts_true(db, "a deactivation");
    db.exec(&format!("DELETE FROM sis_links WHERE user_id = {di}"));
    assert_counts_true(db, "links deleted");
    db.exec("UPDATE sources SET kind = 'oneroster-csv' WHERE name = 'gw'");
    assert_counts_true(db, "an account source turned SIS source");

    // A new email and username move an account's keys; its email's local part is
    // another account's.
    let mut renamed = second.clone();
    renamed[4].edit(|f| {
        f.email = Some("Cy+5@y.org".into());
        f.username = "ed.wu".into();
    });
    sync(s, &cfg, &renamed, later(15));
    assert_counts_true(db, "new emails");
    assert_eq!(
        db.rows("SELECT CAST(accounts AS TEXT) FROM duplicate_key_counts WHERE key = 'l:cy'"),
        [[Some("2".to_owned())]],
        "two accounts share the local part"
    );

    let (run2, _, _) = sync(s, &cfg, &students(), later(20));
    assert_counts_true(db, "a third sync");
    s.undo_run(run2, "alice", later(21), false).unwrap();
    assert_counts_true(db, "an undo");
    // Later writes touch what the second sync changed: the undo may be refused; either
    // way the counts hold.
    let _undo = s.undo_run(run, "alice", later(22), false);
    assert_counts_true(db, "a second undo");
    assert_item_counts_true(db);
}

/// A backup leaves the counts out; restoring it fills them again.
fn a_restore_fills_the_counts_again(db: &mut TestDb) {
    let s = db.store();
    let cfg = config(MAPPED);
    s.import_accounts(&[sso_row("bo.sso@x.org", "Bo", "Ek")], "google", now())
        .unwrap();
    sync(s, &cfg, &students(), now());
    let mut second = students();
    second[2] = gone(second[2].clone());
    sync(s, &cfg, &second, later(5));
    s.merge_accounts(
        id_of(s, "bo@x.org"),
        id_of(s, "bo.sso@x.org"),
        "alice",
        later(6),
        false,
    )
    .unwrap();
    assert_counts_true(db, "the fixture");
    let mut file = Vec::new();
    s.backup(&mut file, later(10), &mut |_| {}).unwrap();
    assert!(
        !String::from_utf8_lossy(&file).contains("account_counts"),
        "derived tables are not backed up"
    );
    let url = db.scratch();
    let s = db.store();
    let target = store::open(&url).unwrap();
    target
        .restore(std::io::Cursor::new(&file), None, &mut |_| {})
        .unwrap();
    assert_eq!(
        format!("{:?}", s.count_users().unwrap()),
        format!("{:?}", target.count_users().unwrap())
    );
    let by_location = |st: &Store| {
        let mut v: Vec<String> = st
            .accounts_by_location("sis")
            .unwrap()
            .iter()
            .map(|a| format!("{a:?}"))
            .collect();
        v.sort();
        v
    };
    assert_eq!(by_location(s), by_location(&target));
    assert!(!by_location(s).is_empty());
    let runs = s.list_runs(0).unwrap();
    assert!(!runs.is_empty());
    for run in runs {
        let tally = |st: &Store| {
            let mut t = st.run_item_counts(run.id).unwrap();
            t.sort();
            t
        };
        assert_eq!(tally(s), tally(&target), "run {}", run.id);
    }
}
