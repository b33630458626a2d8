//! Held runs: a plan that tripped a safeguard is stored, nothing of it applied, the people
//! it would touch listed; it is approved (reopened and applied, when nothing moved
//! underneath), discarded, or superseded by a later run that applies or is held. And a database of
//! an older schema migrates to this one with its data.

use oneroster::Role;
use rostersync_core::directory::{Access, AccountId};
use rostersync_core::guard::{Trip, TripKind};
use rostersync_core::plan::{Outcome, Plan, SisRecord};
use rostersync_core::sis::SisPerson;
use store::{RunId, RunStatus, Store, StoreError};

use crate::harness::{
    TestDb, assert_item_counts_true, config, conformance, exec_at, kinds_of_items, later, now,
    person, plan_store, start, sync,
};

fn people() -> Vec<SisPerson> {
    vec![
        person("s1", Role::Student, "Ana", "Li", Some("ana@x.org")),
        person("s2", Role::Student, "Bo", "Ek", Some("bo@x.org")),
        person("s3", Role::Student, "Cy", "Do", Some("cy@x.org")),
        person("s4", Role::Student, "Di", "Fu", Some("di@x.org")),
    ]
}

fn trips() -> Vec<Trip> {
    vec![Trip {
        kind: TripKind::Deactivations,
        detail: "3 deactivations, 75.0% of 4 active linked accounts (limits: 5% or 500)".into(),
    }]
}

fn conflict(e: StoreError) -> String {
    match e {
        StoreError::Conflict(m) => m,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

fn id_of(s: &Store, email: &str) -> AccountId {
    s.find_user(email).unwrap().unwrap().user.id
}

/// Syncs everyone, then plans a bad day: all but Ana gone, and one new person.
fn bad_day(s: &Store) -> Plan {
    let cfg = config("");
    sync(s, &cfg, &people(), now());
    let mut left = people()[..1].to_vec();
    left.push(person("s5", Role::Student, "Ed", "Go", Some("ed@x.org")));
    let p = plan_store(s, &cfg, &left);
    assert_eq!((p.counts.deactivated, p.counts.created), (3, 1));
    p
}

/// Holds [`bad_day`]'s plan: (the held run, its plan).
fn held(db: &TestDb) -> (RunId, Plan) {
    let s = db.store();
    let p = bad_day(s);
    let run = start(s, "sis");
    s.hold_run(run, p.clone(), &trips(), &[], later(1)).unwrap();
    (run, p)
}

fn a_held_run_writes_nothing_to_the_directory_and_lists_the_people(db: &mut TestDb) {
    let s = db.store();
    let cfg = config("");
    sync(s, &cfg, &people(), now());
    let before = db.row_counts();
    let users_before = s.list_users(&store::UserQuery::default()).unwrap();

    let mut left = people()[..1].to_vec();
    left.push(person("s5", Role::Student, "Ed", "Go", Some("ed@x.org")));
    let p = plan_store(s, &cfg, &left);
    let run = start(s, "sis");
    s.hold_run(run, p.clone(), &trips(), &[], later(1)).unwrap();

    for ((table, b), (_, a)) in before.iter().zip(&db.row_counts()) {
        let want = match *table {
            "runs" => b + 1,
            "held_plan_parts" => b + 1,
            "run_items" => b + p.items.len() as i64,
            "run_item_counts" => b + kinds_of_items(db, run),
            _ => *b,
        };
        assert_eq!(
            *a, want,
            "{table}: a held run writes only its run and items"
        );
    }
    let users_after = s.list_users(&store::UserQuery::default()).unwrap();
    assert_eq!(
        users_before.iter().map(|u| &u.user).collect::<Vec<_>>(),
        users_after.iter().map(|u| &u.user).collect::<Vec<_>>()
    );

    let r = s.get_run(run).unwrap().unwrap();
    assert_eq!(r.status, RunStatus::Held);
    assert_eq!(r.counts, p.counts);
    assert_eq!(r.finished_at, Some(later(1)));
    assert_eq!(r.hold, trips());
    assert_eq!(r.note, None);
    let affected = s.run_items(run, Some(Outcome::Deactivated), 0, 0).unwrap();
    let who: Vec<(&str, Option<AccountId>)> = affected
        .iter()
        .map(|i| (i.sourced_id.as_str(), i.user_id))
        .collect();
    assert_eq!(
        who,
        [
            ("s2", Some(id_of(s, "bo@x.org"))),
            ("s3", Some(id_of(s, "cy@x.org"))),
            ("s4", Some(id_of(s, "di@x.org")))
        ]
    );
    assert!(
        affected
            .iter()
            .all(|i| i.reason_code == "absent_from_complete_pull")
    );
    let created = s.run_items(run, Some(Outcome::Created), 0, 0).unwrap();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].user_id, None, "no account exists for it yet");

    let (stored, stored_trips) = s.held_plan(run).unwrap().unwrap();
    assert_eq!(stored, p, "the plan round-trips whole");
    assert_eq!(stored_trips, trips());
    assert_eq!(
        s.held_plan(RunId(run.0 - 1)).unwrap(),
        None,
        "an applied run keeps no plan"
    );
    assert_eq!(s.held_plan(RunId(run.0 + 100)).unwrap(), None);
    assert_eq!(s.list_runs(1).unwrap()[0].hold, trips());

    // Only a running run of the plan's source is held.
    let err = conflict(
        s.hold_run(run, p.clone(), &trips(), &[], later(2))
            .unwrap_err(),
    );
    assert!(err.contains("already held"), "{err}");
    let other = start(s, "hr");
    let err = conflict(
        s.hold_run(other, p.clone(), &trips(), &[], later(2))
            .unwrap_err(),
    );
    assert!(err.contains("source hr"), "{err}");
    assert!(matches!(
        s.hold_run(RunId(run.0 + 100), p.clone(), &trips(), &[], later(2))
            .unwrap_err(),
        StoreError::NotFound(_)
    ));
    assert_item_counts_true(db);
}

fn stale_items_find_what_changed_underneath(db: &mut TestDb) {
    let (_, p) = held(db);
    let s = db.store();
    s.save_config(&config(""), &[], "owner", now()).unwrap();
    assert!(s.stale_items(&p).unwrap().is_empty(), "nothing moved yet");

    // An admin gives Bo agent access: his revision moves.
    s.set_access(id_of(s, "bo@x.org"), Access::Agent, "alice", later(2))
        .unwrap();
    assert_eq!(s.stale_items(&p).unwrap(), ["s2"]);

    // Cy's link is removed by hand, and the person the plan would create is linked by hand
    // to a sign-on account.
    s.unlink_user(id_of(s, "cy@x.org"), None, "alice", later(3))
        .unwrap();
    s.import_accounts(
        &[crate::harness::sso_row("ed@x.org", "Ed", "Go")],
        "google",
        later(3),
    )
    .unwrap();
    s.link_user("sis", "s5", id_of(s, "ed@x.org"), "alice", later(4))
        .unwrap();
    assert_eq!(s.stale_items(&p).unwrap(), ["s2", "s3", "s5"]);
}

fn approving_reopens_the_run_and_applies_the_held_plan(db: &mut TestDb) {
    let (run, p) = held(db);
    let s = db.store();
    let err = conflict(s.apply_plan(run, &p, later(2)).unwrap_err());
    assert!(
        err.contains("already held"),
        "a held run is not applied as it is: {err}"
    );

    s.reopen_held(run).unwrap();
    assert_eq!(s.get_run(run).unwrap().unwrap().status, RunStatus::Running);
    let summary = s.apply_plan(run, &p, later(2)).unwrap();
    assert_eq!(summary.counts, p.counts);
    let r = s.get_run(run).unwrap().unwrap();
    assert_eq!(r.status, RunStatus::Succeeded);
    assert_eq!(r.finished_at, Some(later(2)));
    assert_eq!(r.hold, trips(), "why it was held stays on record");
    assert_eq!(s.held_plan(run).unwrap(), None);
    assert_eq!(
        s.run_items(run, None, 0, 0).unwrap().len(),
        p.items.len(),
        "the items are the apply's, once"
    );
    let view = s.load_view("sis").unwrap();
    assert!(!view.user(id_of(s, "bo@x.org")).unwrap().active);
    assert!(view.user(id_of(s, "ana@x.org")).unwrap().active);
    assert!(view.link("s5").is_some());

    let err = conflict(s.reopen_held(run).unwrap_err());
    assert!(err.contains("is succeeded, not held"), "{err}");
    assert!(matches!(
        s.reopen_held(RunId(run.0 + 100)).unwrap_err(),
        StoreError::NotFound(_)
    ));
    assert_item_counts_true(db);
}

fn discarding_and_superseding_held_runs(db: &mut TestDb) {
    let (first, p) = held(db);
    let s = db.store();
    s.set_run_status(
        first,
        RunStatus::Discarded,
        Some("discarded by alice"),
        "alice",
        later(2),
    )
    .unwrap();
    let r = s.get_run(first).unwrap().unwrap();
    assert_eq!(r.status, RunStatus::Discarded);
    assert_eq!(r.note.as_deref(), Some("discarded by alice"));
    assert_eq!(
        s.held_plan(first).unwrap(),
        None,
        "a discarded plan is never applied"
    );
    assert_eq!(
        s.run_items(first, Some(Outcome::Deactivated), 0, 0)
            .unwrap()
            .len(),
        3,
        "what it would have done stays visible"
    );
    let audit = &s.audit_log(1).unwrap()[0];
    assert_eq!(
        (audit.actor.as_str(), audit.action.as_str()),
        ("alice", "run.discard")
    );
    assert!(audit.detail.contains(&format!("run {first}")), "{audit:?}");
    let err = conflict(s.reopen_held(first).unwrap_err());
    assert!(err.contains("is discarded, not held"), "{err}");
    let err = conflict(
        s.set_run_status(first, RunStatus::Superseded, None, "alice", later(3))
            .unwrap_err(),
    );
    assert!(err.contains("not held"), "{err}");
    let err = conflict(
        s.set_run_status(first, RunStatus::Succeeded, None, "alice", later(3))
            .unwrap_err(),
    );
    assert!(err.contains("only discarded and superseded"), "{err}");

    // Another held run, then a clean run of the same source applies: it supersedes it.
    let second = start(s, "sis");
    s.hold_run(second, p.clone(), &trips(), &[], later(3))
        .unwrap();
    let other_source = start(s, "hr");
    let hr_plan = Plan {
        source: "hr".into(),
        ..p.clone()
    };
    s.hold_run(other_source, hr_plan.clone(), &trips(), &[], later(3))
        .unwrap();
    let (clean, _, _) = sync(s, &config(""), &people(), later(4));
    let r = s.get_run(second).unwrap().unwrap();
    assert_eq!(r.status, RunStatus::Superseded);
    assert!(
        r.note
            .as_deref()
            .unwrap()
            .contains(&format!("superseded by run {clean}")),
        "{r:?}"
    );
    assert_eq!(s.held_plan(second).unwrap(), None);
    assert_eq!(
        s.get_run(first).unwrap().unwrap().status,
        RunStatus::Discarded,
        "a discarded run stays discarded"
    );
    assert_eq!(
        s.get_run(other_source).unwrap().unwrap().status,
        RunStatus::Held,
        "another source's held run is not superseded"
    );
    // A later held run of the source supersedes an older held one too (a bad day's
    // scheduled runs would otherwise pile up a whole plan each), its parts gone; not
    // another source's, and not a SCIM connection's (each of its runs is one write).
    let third = start(s, "sis");
    s.hold_run(third, p.clone(), &trips(), &[], later(4))
        .unwrap();
    let fourth = start(s, "sis");
    s.hold_run(fourth, p.clone(), &trips(), &[], later(5))
        .unwrap();
    let r = s.get_run(third).unwrap().unwrap();
    assert_eq!(r.status, RunStatus::Superseded);
    assert!(
        r.note.as_deref().unwrap().contains(&format!(
            "superseded by run {fourth}, a later run that was held"
        )),
        "{r:?}"
    );
    assert_eq!(
        (s.held_plan(third).unwrap(), parts_of(db, third)),
        (None, 0)
    );
    assert!(parts_of(db, fourth) > 0);
    assert_eq!(s.get_run(fourth).unwrap().unwrap().status, RunStatus::Held);
    assert_eq!(
        s.get_run(other_source).unwrap().unwrap().status,
        RunStatus::Held
    );
    let scim = Plan {
        source: "idp".into(),
        kind: rostersync_core::plan::SyncKind::Scim,
        ..p.clone()
    };
    let writes = [start(s, "idp"), start(s, "idp")];
    for (n, run) in writes.iter().enumerate() {
        s.hold_run(*run, scim.clone(), &trips(), &[], later(6 + n as i64))
            .unwrap();
    }
    for run in writes {
        assert_eq!(s.get_run(run).unwrap().unwrap().status, RunStatus::Held);
    }
    // The approval that re-planned says so on the superseded run.
    s.set_run_status(
        second,
        RunStatus::Superseded,
        Some("approved by alice, but re-planned as run 9"),
        "alice",
        later(5),
    )
    .unwrap();
    assert_eq!(
        s.get_run(second).unwrap().unwrap().note.as_deref(),
        Some("approved by alice, but re-planned as run 9")
    );
    assert_item_counts_true(db);
}

/// Databases as rostersync left them at schema v2 and v3, opened by this one: the data
/// stays, the new columns are empty, and the new features work on them.
fn older_databases_migrate_to_v4_with_their_data(db: &mut TestDb) {
    let pg = db.is_postgres();
    let engine = if pg { "postgres" } else { "sqlite" };
    let scripts: [&str; 3] = if pg {
        [
            include_str!("../migrations/postgres/0001_initial.sql"),
            include_str!("../migrations/postgres/0002_sync_policies.sql"),
            include_str!("../migrations/postgres/0003_console.sql"),
        ]
    } else {
        [
            include_str!("../migrations/sqlite/0001_initial.sql"),
            include_str!("../migrations/sqlite/0002_sync_policies.sql"),
            include_str!("../migrations/sqlite/0003_console.sql"),
        ]
    };
    for upto in [2usize, 3] {
        let url = db.scratch();
        exec_at(
            &url,
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        );
        for sql in &scripts[..upto] {
            exec_at(&url, sql);
        }
        let at = "'2026-09-01T02:00:00.000000000Z'";
        let counts = store::counts_json(&rostersync_core::plan::Counts {
            seen: 1,
            created: 1,
            ..Default::default()
        });
        exec_at(
            &url,
            &format!(
                "INSERT INTO meta (key, value) VALUES ('schema_version', '{upto}'); \
                 INSERT INTO users (username, username_lc, email, email_lc, first_name, last_name, name_lc, user_type, \
                     access, active, provider, revision, created_by, created_fields, created_at, updated_at) \
                 VALUES ('anali', 'anali', 'ana@x.org', 'ana@x.org', 'Ana', 'Li', 'ana li', 'student', 'requestor', TRUE, \
                     'sis', 2, 'source:sis', 0, {at}, {at}); \
                 INSERT INTO runs (source, kind, triggered_by, status, complete, started_at, finished_at, counts) \
                 VALUES ('sis', 'full', 'cli', 'succeeded', TRUE, {at}, {at}, '{counts}'); \
                 INSERT INTO sis_links (source, sourced_id, user_id, rule, record_hash, synced_revision, linked_at, misses) \
                 VALUES ('sis', 's1', 1, 'created', 42, 2, {at}, 0); \
                 INSERT INTO sis_people (source, sourced_id, role, status, enabled, username, email, given_name, \
                     family_name, grade, primary_org, updated_at) \
                 VALUES ('sis', 's1', 'student', 'active', TRUE, 'anali', 'ana@x.org', 'Ana', 'Li', '05', 'school-1', {at}); \
                 INSERT INTO run_items (run_id, sourced_id, user_id, outcome, reason_code, reason, reason_json, changes) \
                 VALUES (1, 's1', 1, 'created', 'new_person', 'new', '{{\"code\":\"new_person\"}}', '[]'); \
                 INSERT INTO revisions (user_id, run_id, field, old_value, new_value, writer, at) \
                 VALUES (1, 1, 'created', NULL, '{{}}', 'source:sis', {at});"
            ),
        );
        let s = store::open(&url).unwrap();
        assert_eq!(
            s.meta_get("schema_version").unwrap().as_deref(),
            Some(store::SCHEMA_VERSION.to_string().as_str()),
            "{engine} from v{upto}"
        );
        let r = s.get_run(RunId(1)).unwrap().unwrap();
        assert_eq!(
            (r.status, r.counts.seen, r.hold.len(), r.note),
            (RunStatus::Succeeded, 1, 0, None)
        );
        assert!(r.warnings.is_empty(), "older runs have no warnings");
        let items = s.run_items(RunId(1), None, 0, 0).unwrap();
        assert_eq!((items.len(), items[0].user_id), (1, Some(AccountId(1))));
        let view = s.load_view("sis").unwrap();
        let link = view.link("s1").unwrap();
        assert_eq!(
            (
                link.user_id,
                link.record_hash,
                view.link_org(link),
                view.link_role(link)
            ),
            (AccountId(1), 42, Some("school-1"), Some("student"))
        );
        assert_eq!(view.decision("s1"), None);
        assert!(s.review_cases(None, None, 0).unwrap().is_empty());
        assert_eq!(s.held_plan(RunId(1)).unwrap(), None);

        // The new features work on the old data.
        let cfg = config("");
        let (run, _, _) = sync(
            &s,
            &cfg,
            &[person("s1", Role::Student, "Anna", "Li", Some("ana@x.org"))],
            later(1),
        );
        let undone = s.undo_run(run, "alice", later(2), false).unwrap();
        assert!(undone.fields_restored >= 1, "{undone:?}");
        assert_eq!(
            s.find_user("ana@x.org")
                .unwrap()
                .unwrap()
                .user
                .first_name
                .as_deref(),
            Some("Ana")
        );
        // A run applied before v4 (no revision mark) can be undone too.
        let preview = s.undo_run(RunId(1), "alice", later(3), true).unwrap();
        assert_eq!(preview.retired, [AccountId(1)]);
        assert!(
            s.find_user("ana@x.org").unwrap().unwrap().user.active,
            "a dry run"
        );
    }
}

/// A process killed during a run or during an approval leaves the run `running`; the
/// next holder of the source's lock settles it: interrupted, or held again (its plan
/// intact, so it can still be approved or discarded).
fn runs_a_stopped_process_left_running_are_settled(db: &mut TestDb) {
    let s = db.store();
    let (held_run, plan) = held(db);
    s.reopen_held(held_run).unwrap(); // the approval starts, then the process dies
    let dead_sync = start(s, "sis"); // a sync starts, then its process dies
    let other = start(s, "other"); // another source's run, not settled by "sis"
    assert_eq!(s.sources_running().unwrap(), ["other", "sis"]);

    let settled = s.settle_interrupted("sis", later(5)).unwrap();
    assert_eq!(
        settled,
        [
            (held_run, RunStatus::Held),
            (dead_sync, RunStatus::Interrupted)
        ]
    );
    let run = s.get_run(dead_sync).unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Interrupted);
    assert_eq!(run.finished_at, Some(later(5)));
    assert!(run.error.unwrap().contains("nothing of it was applied"));
    let again = s.get_run(held_run).unwrap().unwrap();
    assert_eq!(again.status, RunStatus::Held);
    assert!(again.note.unwrap().contains("approval was interrupted"));
    let (kept, _) = s.held_plan(held_run).unwrap().unwrap();
    assert_eq!(
        kept.items.len(),
        plan.items.len(),
        "the held plan is intact"
    );
    assert_eq!(
        s.run_items(held_run, None, 0, 0).unwrap().len(),
        plan.items.len(),
        "and its people are still listed"
    );
    // It can be approved again.
    s.reopen_held(held_run).unwrap();
    s.apply_plan(held_run, &kept, later(6)).unwrap();
    assert_eq!(
        s.get_run(held_run).unwrap().unwrap().status,
        RunStatus::Succeeded
    );
    assert_eq!(
        s.get_run(other).unwrap().unwrap().status,
        RunStatus::Running
    );
    assert_eq!(s.sources_running().unwrap(), ["other"]);
    assert!(s.settle_interrupted("sis", later(7)).unwrap().is_empty());
}

/// The parts of run `run`'s held plan.
fn parts_of(db: &TestDb, run: RunId) -> i64 {
    let rows = db.rows(&format!(
        "SELECT CAST(COUNT(*) AS TEXT) FROM held_plan_parts WHERE run_id = {run}"
    ));
    rows[0][0].as_deref().unwrap().parse().unwrap()
}

/// Holds `p` for `run` as it is made, an item a part, each item with its SIS record.
fn hold_in_parts(s: &Store, run: RunId, p: &Plan) {
    let mut records: std::collections::HashMap<String, SisRecord> = p
        .sis_records
        .iter()
        .map(|r| (r.fields().sourced_id, r.clone()))
        .collect();
    let head = Plan {
        items: Vec::new(),
        sis_records: Vec::new(),
        ..p.clone()
    };
    s.hold_streamed(run, &trips(), &[], 1, later(1), |feed| {
        for item in p.items.clone() {
            let record = records.remove(&item.sourced_id);
            feed.push(item, record);
        }
        Ok(head)
    })
    .unwrap();
    assert!(records.is_empty(), "every record went with its item");
}

/// A plan held as it is made is stored a part at a time (here an item a part), read back
/// whole or checked and applied a part at a time, and its parts go once it is applied.
fn a_plan_held_in_parts_is_checked_and_approved_a_part_at_a_time(db: &mut TestDb) {
    let s = db.store();
    let p = bad_day(s);
    assert!(!p.sis_records.is_empty(), "{p:?}");
    let run = start(s, "sis");
    hold_in_parts(s, run, &p);

    assert_eq!(parts_of(db, run), p.items.len() as i64, "an item a part");
    let r = s.get_run(run).unwrap().unwrap();
    assert_eq!((r.status, r.counts), (RunStatus::Held, p.counts));
    assert_eq!(
        s.run_items(run, Some(Outcome::Deactivated), 0, 0)
            .unwrap()
            .len(),
        3,
        "the people it would touch are listed"
    );
    let (whole, _) = s.held_plan(run).unwrap().unwrap();
    assert_eq!(whole.items, p.items, "the items, in the plan's order");
    let mut got: Vec<_> = whole.sis_records.iter().map(SisRecord::fields).collect();
    let mut want: Vec<_> = p.sis_records.iter().map(SisRecord::fields).collect();
    got.sort_by(|a, b| a.sourced_id.cmp(&b.sourced_id));
    want.sort_by(|a, b| a.sourced_id.cmp(&b.sourced_id));
    assert_eq!(got, want);
    assert_eq!(
        Plan {
            items: p.items.clone(),
            sis_records: p.sis_records.clone(),
            ..whole
        },
        p,
        "the rest of the plan is kept with the run"
    );

    let check = s.check_held(run).unwrap().unwrap();
    assert!(check.stale.is_empty(), "{check:?}");
    assert_eq!(check.writes, p.writes().count());
    assert_eq!(check.trips, trips());
    assert!(check.head.items.is_empty() && check.head.sis_records.is_empty());
    assert_eq!(check.head.counts, p.counts);
    // Someone edits Bo by hand: the check finds it in its part.
    let bo = id_of(s, "bo@x.org");
    s.set_access(bo, Access::Agent, "alice", later(2)).unwrap();
    assert_eq!(s.check_held(run).unwrap().unwrap().stale, ["s2"]);

    s.reopen_held(run).unwrap();
    let summary = s.apply_held(run, check.writes, 1, later(3)).unwrap();
    assert_eq!(summary.counts.deactivated, 2, "Bo's item is refused");
    assert_eq!(summary.conflicts, 1);
    let r = s.get_run(run).unwrap().unwrap();
    assert_eq!(r.status, RunStatus::Succeeded);
    assert_eq!(parts_of(db, run), 0, "an applied plan's parts go");
    assert_eq!(s.held_plan(run).unwrap(), None);
    assert_eq!(s.check_held(run).unwrap(), None);
    let view = s.load_view("sis").unwrap();
    assert!(view.user(bo).unwrap().active, "refused: it moved");
    assert!(!view.user(id_of(s, "cy@x.org")).unwrap().active);
    assert!(view.user(id_of(s, "ana@x.org")).unwrap().active);
    assert!(view.link("s5").is_some());
    assert_eq!(
        s.sis_person("sis", "s5").unwrap().map(|r| r.given_name),
        Some("Ed".to_owned()),
        "the records were written with their items"
    );
    assert_eq!(
        s.run_items(run, None, 0, 0).unwrap().len(),
        p.items.len(),
        "the items are the apply's, once"
    );
    assert_item_counts_true(db);
}

/// A plan held before its items were stored in parts (schema v16 kept the whole plan with
/// the run) is checked and approved the same way; discarding or superseding a plan held in
/// parts takes its parts away.
fn plans_held_whole_by_older_versions_still_apply_and_parts_go_with_their_plan(db: &mut TestDb) {
    let (run, p) = held(db);
    let s = db.store();
    let json = serde_json::to_string(&p).unwrap().replace('\'', "''");
    db.exec(&format!(
        "UPDATE runs SET plan = '{json}' WHERE id = {run}; \
         DELETE FROM held_plan_parts WHERE run_id = {run}"
    ));
    assert_eq!(s.held_plan(run).unwrap().unwrap().0, p);
    let check = s.check_held(run).unwrap().unwrap();
    assert_eq!((check.stale.len(), check.writes), (0, p.writes().count()));
    s.reopen_held(run).unwrap();
    let summary = s.apply_held(run, check.writes, 10_000, later(2)).unwrap();
    assert_eq!(summary.counts, p.counts);
    let view = s.load_view("sis").unwrap();
    assert!(!view.user(id_of(s, "bo@x.org")).unwrap().active);
    assert!(view.link("s5").is_some());

    // Two more held in parts: one discarded, one superseded by a run that applies.
    let cfg = config("");
    let q = plan_store(s, &cfg, &people()[..1]);
    let discarded = start(s, "sis");
    hold_in_parts(s, discarded, &q);
    assert!(parts_of(db, discarded) > 0);
    s.set_run_status(discarded, RunStatus::Discarded, None, "alice", later(3))
        .unwrap();
    assert_eq!(parts_of(db, discarded), 0, "a discarded plan's parts go");
    let superseded = start(s, "sis");
    hold_in_parts(s, superseded, &q);
    assert!(parts_of(db, superseded) > 0);
    sync(s, &cfg, &people(), later(4));
    assert_eq!(
        s.get_run(superseded).unwrap().unwrap().status,
        RunStatus::Superseded
    );
    assert_eq!(parts_of(db, superseded), 0, "a superseded plan's parts go");
    // An approval that fails: the failed run keeps no plan.
    let failing = start(s, "sis");
    hold_in_parts(s, failing, &q);
    s.reopen_held(failing).unwrap();
    s.finish_run(
        failing,
        &store::RunFinish {
            status: RunStatus::Failed,
            complete: true,
            counts: q.counts,
            error: Some("applying the plan failed".into()),
            finished_at: later(5),
            warnings: Vec::new(),
        },
    )
    .unwrap();
    assert_eq!(s.held_plan(failing).unwrap(), None);
    assert_eq!(db.count("held_plan_parts"), 0);
}

conformance!(
    runs_a_stopped_process_left_running_are_settled,
    a_held_run_writes_nothing_to_the_directory_and_lists_the_people,
    stale_items_find_what_changed_underneath,
    approving_reopens_the_run_and_applies_the_held_plan,
    discarding_and_superseding_held_runs,
    older_databases_migrate_to_v4_with_their_data,
    a_plan_held_in_parts_is_checked_and_approved_a_part_at_a_time,
    plans_held_whole_by_older_versions_still_apply_and_parts_go_with_their_plan,
);
