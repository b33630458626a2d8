//! Runs: started, finished, listed newest first.

use rostersync_core::plan::{Counts, SyncKind};
use store::{NewRun, RunFinish, RunId, RunStatus, StoreError, Trigger};

use oneroster::Role;

use crate::harness::{TestDb, config, conformance, later, now, person, plan_store, start, sync};

fn runs_start_finish_and_list(db: &mut TestDb) {
    let s = db.store();
    assert!(s.list_runs(10).unwrap().is_empty());
    let first = s
        .start_run(&NewRun {
            source: "campus".into(),
            kind: SyncKind::Full,
            trigger: Trigger::Schedule,
            started_at: now(),
        })
        .unwrap();
    let second = s
        .start_run(&NewRun {
            source: "campus".into(),
            kind: SyncKind::User,
            trigger: Trigger::Console,
            started_at: later(1),
        })
        .unwrap();
    assert!(second > first);
    let running = s.get_run(second).unwrap().unwrap();
    assert_eq!(running.status, RunStatus::Running);
    assert_eq!(running.kind, SyncKind::User);
    assert_eq!(running.trigger, Trigger::Console);
    assert_eq!(running.finished_at, None);
    assert!(!running.complete);
    assert_eq!(running.counts, Counts::default());

    let counts = Counts {
        seen: 10,
        errors: 1,
        ..Counts::default()
    };
    s.finish_run(
        first,
        &RunFinish {
            status: RunStatus::Failed,
            complete: false,
            counts,
            error: Some("401 from the token URL: check the client secret — «expired»".into()),
            finished_at: later(2),
            warnings: Vec::new(),
        },
    )
    .unwrap();
    let failed = s.get_run(first).unwrap().unwrap();
    assert_eq!(failed.status, RunStatus::Failed);
    assert_eq!(failed.counts, counts);
    assert_eq!(failed.finished_at, Some(later(2)));
    assert_eq!(failed.started_at, now());
    assert_eq!(failed.source, "campus");
    assert!(failed.warnings.is_empty());
    assert!(running.warnings.is_empty());
    assert_eq!(
        failed.error.as_deref(),
        Some("401 from the token URL: check the client secret — «expired»")
    );

    let listed: Vec<RunId> = s.list_runs(0).unwrap().iter().map(|r| r.id).collect();
    assert_eq!(listed, [second, first], "newest first");
    assert_eq!(s.list_runs(1).unwrap().len(), 1);
    assert!(s.get_run(RunId(second.0 + 100)).unwrap().is_none());
    let err = s
        .finish_run(
            RunId(second.0 + 100),
            &RunFinish {
                status: RunStatus::Held,
                complete: true,
                counts,
                error: None,
                finished_at: later(3),
                warnings: Vec::new(),
            },
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
}

fn warnings() -> Vec<String> {
    vec![
        "users.csv line 3: skipped, a malformed row (expected 12 fields, found 2)".to_owned(),
        "classes: the SIS said 40 but sent 38 <b>& more</b> — «incomplete»".to_owned(),
    ]
}

/// The pull's warnings stay with the run however it ends: finished, failed, held, or
/// recorded before applying; none is stored as none, and the stored list is capped.
fn runs_keep_their_warnings(db: &mut TestDb) {
    let s = db.store();
    let finished = start(s, "sis");
    s.finish_run(
        finished,
        &RunFinish {
            status: RunStatus::Failed,
            complete: false,
            counts: Counts::default(),
            error: Some("applying failed".into()),
            finished_at: later(1),
            warnings: warnings(),
        },
    )
    .unwrap();
    let r = s.get_run(finished).unwrap().unwrap();
    assert_eq!((r.status, r.warnings), (RunStatus::Failed, warnings()));
    let listed = s.list_runs(0).unwrap();
    assert_eq!(listed[0].warnings, warnings(), "listed runs carry them too");

    // Held: the plan tripped a safeguard; the warnings are shown with the hold.
    let cfg = config("");
    let people = [person("s1", Role::Student, "Ana", "Li", Some("ana@x.org"))];
    let plan = plan_store(s, &cfg, &people);
    let held = start(s, "sis");
    s.hold_run(held, plan.clone(), &[], &warnings(), later(2))
        .unwrap();
    let r = s.get_run(held).unwrap().unwrap();
    assert_eq!((r.status, r.warnings), (RunStatus::Held, warnings()));
    // Approved as held: applying keeps them.
    s.reopen_held(held).unwrap();
    s.apply_plan(held, &plan, later(3)).unwrap();
    let r = s.get_run(held).unwrap().unwrap();
    assert_eq!((r.status, r.warnings), (RunStatus::Succeeded, warnings()));

    // Recorded before applying (the engine's way for a run that applies).
    let applied = start(s, "sis");
    s.set_run_warnings(applied, &warnings()[..1]).unwrap();
    s.apply_plan(applied, &plan_store(s, &cfg, &people), later(4))
        .unwrap();
    let r = s.get_run(applied).unwrap().unwrap();
    assert_eq!(
        (r.status, r.warnings),
        (RunStatus::Succeeded, warnings()[..1].to_vec())
    );
    assert!(matches!(
        s.set_run_warnings(RunId(applied.0 + 100), &warnings())
            .unwrap_err(),
        StoreError::NotFound(_)
    ));

    // None: nothing stored, nothing read back.
    let clean = start(s, "sis");
    s.finish_run(
        clean,
        &RunFinish {
            status: RunStatus::Succeeded,
            complete: true,
            counts: Counts::default(),
            error: None,
            finished_at: later(5),
            warnings: Vec::new(),
        },
    )
    .unwrap();
    assert!(s.get_run(clean).unwrap().unwrap().warnings.is_empty());

    // Capped: at most MAX_RUN_WARNINGS, the last one counting the rest; long ones cut.
    let many: Vec<String> = (0..250).map(|i| format!("warning {i}")).collect();
    let mut long = many.clone();
    long[0] = "x".repeat(store::MAX_RUN_WARNING_CHARS + 50);
    let capped = start(s, "sis");
    s.set_run_warnings(capped, &long).unwrap();
    let w = s.get_run(capped).unwrap().unwrap().warnings;
    assert_eq!(w.len(), store::MAX_RUN_WARNINGS);
    assert_eq!(w[0].chars().count(), store::MAX_RUN_WARNING_CHARS);
    assert!(w[0].ends_with('…'));
    assert_eq!(w[1], "warning 1");
    assert_eq!(
        w[store::MAX_RUN_WARNINGS - 1],
        format!(
            "… and {} more warnings not kept",
            250 - (store::MAX_RUN_WARNINGS - 1)
        )
    );
}

/// A database at schema v5 (runs without a `warnings` column) migrates to v6 with its
/// runs, which read back with no warnings; new runs keep theirs.
fn a_v5_database_gains_run_warnings(db: &mut TestDb) {
    let s = db.store();
    let old = start(s, "sis");
    s.finish_run(
        old,
        &RunFinish {
            status: RunStatus::Succeeded,
            complete: true,
            counts: Counts {
                seen: 3,
                ..Counts::default()
            },
            error: None,
            finished_at: later(1),
            warnings: Vec::new(),
        },
    )
    .unwrap();
    // Back to schema v5 behind the store's back: the column goes, then comes back.
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
         ALTER TABLE runs DROP COLUMN warnings; \
         UPDATE meta SET value = '5' WHERE key = 'schema_version'",
    );
    let again = db.reopen().unwrap();
    assert_eq!(
        again.meta_get("schema_version").unwrap().as_deref(),
        Some(&*store::SCHEMA_VERSION.to_string())
    );
    const { assert!(store::SCHEMA_VERSION >= 6) };
    let r = again.get_run(old).unwrap().unwrap();
    assert_eq!((r.status, r.counts.seen), (RunStatus::Succeeded, 3));
    assert!(
        r.warnings.is_empty(),
        "runs from before v6 have no warnings"
    );
    let new = start(&again, "sis");
    again.set_run_warnings(new, &warnings()).unwrap();
    assert_eq!(again.get_run(new).unwrap().unwrap().warnings, warnings());
}

/// A person the import settings skip is listed by the first full sync that skips them,
/// counted by the next ones (kept in the database, read by a new process), and listed
/// again when their skip changes; a source taken out of the settings loses its list.
fn skips_are_listed_once(db: &mut TestDb) {
    let cfg = config("");
    let mut people = vec![
        person("s1", Role::Student, "Ana", "Li", Some("ana@x.org")),
        person("g1", Role::Parent, "Pat", "Li", Some("pat@x.org")),
        person("g2", Role::Guardian, "Sam", "Li", Some("sam@x.org")),
    ];
    let s = db.store();
    let (first, ..) = sync(s, &cfg, &people, now());
    assert_eq!(s.run_items(first, None, 0, 0).unwrap().len(), 3);
    assert_eq!(db.count("listed_skips"), 1);

    let s = db.reopen().unwrap();
    let (second, p, _) = sync(&s, &cfg, &people, later(1));
    assert!(p.items.is_empty(), "{:#?}", p.items);
    let run = s.get_run(second).unwrap().unwrap();
    assert_eq!(
        (run.counts.skipped, run.counts.skipped_listed_before),
        (2, 2)
    );
    assert!(s.run_items(second, None, 0, 0).unwrap().is_empty());
    assert!(s.run_item_counts(second).unwrap().is_empty());

    people[2] = person(
        "g2",
        Role::Other("ext:coach".into()),
        "Sam",
        "Li",
        Some("sam@x.org"),
    );
    let (third, ..) = sync(&s, &cfg, &people, later(2));
    let items = s.run_items(third, None, 0, 0).unwrap();
    let listed: Vec<_> = items
        .iter()
        .map(|i| (i.sourced_id.as_str(), i.reason_code.as_str()))
        .collect();
    assert_eq!(listed, [("g2", "no_importable_role")]);
    assert_eq!(
        s.get_run(third)
            .unwrap()
            .unwrap()
            .counts
            .skipped_listed_before,
        1
    );

    let other = rostersync_core::settings::Config::from_toml(
        "[[source]]\nname = \"campus\"\nkind = \"oneroster-csv\"\npath = \"x\"\n",
    )
    .unwrap();
    s.save_config(&cfg, &[], "admin", later(3)).unwrap();
    assert_eq!(db.count("listed_skips"), 1);
    s.save_config(&other, &[], "admin", later(3)).unwrap();
    assert_eq!(db.count("listed_skips"), 0);
}

conformance!(
    runs_start_finish_and_list,
    runs_keep_their_warnings,
    a_v5_database_gains_run_warnings,
    skips_are_listed_once,
);
