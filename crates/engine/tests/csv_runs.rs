//! Runs of a CSV source through the engine's API: a full sync creates the accounts and
//! records the run at the clock's time; an unchanged second full sync writes nothing; a
//! delta package changes only its people; a dry run changes nothing and says what it
//! would do; a plan that trips a safeguard is held, discarded or approved (a delta too,
//! judged by the whole school it takes people from); a source that
//! cannot be read is recorded as a failed run with the error; every write holds the
//! source's lock, taken by the engine or handed to it; a plan larger than a run may hold
//! is applied as it is made, to the same directory, and one that fails part way through changes
//! nothing.

use engine::{EngineError, SyncRequest};
use jiff::Timestamp;
use rostersync_core::directory::{Account, AccountId};
use rostersync_core::guard::TripKind;
use rostersync_core::plan::{Outcome, PlanItem, SyncKind};
use store::{RunId, RunRecord, RunStatus, Trigger, UserQuery};

use crate::harness::{Env, START, copy_sample, sample_district};

crate::on_both!(
    a_full_sync_creates_the_accounts,
    an_unchanged_full_sync_writes_nothing,
    a_full_pull_keeps_how_much_it_read_for_the_next,
    a_delta_package_changes_only_its_people,
    a_dry_run_changes_nothing,
    a_tripped_safeguard_holds_the_run_until_approved,
    a_delta_that_empties_a_school_is_held,
    an_unreadable_source_records_a_failed_run,
    every_write_holds_the_source_lock,
    a_plan_too_large_to_hold_is_applied_as_it_is_made,
    a_plan_applied_as_it_is_made_that_fails_midway_changes_nothing,
    a_plan_by_chunks_whose_directory_moves_before_its_apply_changes_nothing,
    a_large_held_plan_whose_hold_or_approval_fails_midway_changes_nothing,
);

fn run(env: &Env, id: Option<RunId>) -> RunRecord {
    let id = id.expect("the run is recorded");
    env.store().get_run(id).unwrap().expect("the run exists")
}

fn accounts(env: &Env) -> Vec<Account> {
    env.store()
        .list_users(&UserQuery::default())
        .unwrap()
        .into_iter()
        .map(|r| r.user)
        .collect()
}

fn user(env: &Env, email: &str) -> Account {
    env.store()
        .find_user(email)
        .unwrap()
        .unwrap_or_else(|| panic!("no account {email}"))
        .user
}

fn a_full_sync_creates_the_accounts(env: Env) {
    env.csv_source(&sample_district(), "");
    let out = env.sync(SyncKind::Full, false);
    assert_eq!(out.status, RunStatus::Succeeded, "{out:?}");
    assert_eq!(out.kind, SyncKind::Full);
    assert!(out.complete, "a bulk package is the whole district");
    assert!(out.error.is_none(), "{out:?}");
    // 15 people: 10 students, teachers and staff imported; 4 guardians (not imported by
    // default) and 1 withdrawn student skipped.
    let c = out.counts;
    assert_eq!(
        (c.seen, c.created, c.skipped, c.errors),
        (15, 10, 5, 0),
        "{c:?}"
    );
    let start: Timestamp = START.parse().unwrap();
    let record = run(&env, out.run_id);
    assert_eq!(record.status, RunStatus::Succeeded);
    assert_eq!(record.source, "sis");
    assert_eq!(record.counts.created, 10);
    assert_eq!(
        record.started_at, start,
        "the run starts at the clock's time"
    );
    assert_eq!(record.finished_at, Some(start), "and finishes at it");
    let users = accounts(&env);
    assert_eq!(users.len(), 10);
    assert!(users.iter().all(|u| u.active));
    let ruth = user(&env, "ruth.baker@district.k12.us");
    assert_eq!(ruth.first_name.as_deref(), Some("Ruth"));
    assert_eq!(ruth.last_name.as_deref(), Some("Baker"));

    // The clock moves: the next run is recorded when it says.
    let later: Timestamp = "2030-05-07T00:00:00Z".parse().unwrap();
    env.clock.set(later);
    let again = env.sync(SyncKind::Full, false);
    let record = run(&env, again.run_id);
    assert_eq!(record.started_at, later);
    assert_eq!(record.finished_at, Some(later));
}

fn an_unchanged_full_sync_writes_nothing(env: Env) {
    env.csv_source(&sample_district(), "");
    env.sync(SyncKind::Full, false);
    let before: Vec<(AccountId, i64)> = accounts(&env).iter().map(|u| (u.id, u.revision)).collect();
    let out = env.sync(SyncKind::Full, false);
    assert_eq!(out.status, RunStatus::Succeeded, "{out:?}");
    let c = out.counts;
    assert_eq!(
        (c.created, c.updated, c.deactivated, c.reactivated, c.errors),
        (0, 0, 0, 0, 0),
        "{c:?}"
    );
    assert_eq!(c.unchanged, 10, "{c:?}");
    let after: Vec<(AccountId, i64)> = accounts(&env).iter().map(|u| (u.id, u.revision)).collect();
    assert_eq!(before, after, "no account was written");
    assert_eq!(run(&env, out.run_id).status, RunStatus::Succeeded);
}

/// A full pull keeps how many people and enrollments it read (the next one makes room
/// for as many at once); a delta, which reads part of them, leaves that alone.
fn a_full_pull_keeps_how_much_it_read_for_the_next(env: Env) {
    let sizes = |env: &Env| engine::last_pull_sizes(env.store(), "sis").unwrap();
    assert_eq!(sizes(&env), engine::PullSizes::default(), "no pull yet");
    let package = copy_sample(&env.dir, "district");
    env.csv_source(&package, "");
    env.sync(SyncKind::Full, false);
    // All 15 people (imported or not), the 10 active enrollments.
    let read = engine::PullSizes {
        people: 15,
        enrollments: 10,
    };
    assert_eq!(sizes(&env), read);
    let manifest = std::fs::read_to_string(package.join("manifest.csv")).unwrap();
    let users = as_delta(&package, |row| row.to_owned());
    let out = env.sync(SyncKind::Delta, false);
    assert_eq!(out.status, RunStatus::Succeeded, "{out:?}");
    assert_eq!(out.counts.seen, 1, "{out:?}");
    assert_eq!(sizes(&env), read, "a delta reads only part of the district");
    // The next full package has an enrollment fewer: the next full pull keeps its sizes.
    std::fs::write(package.join("manifest.csv"), manifest).unwrap();
    std::fs::write(package.join("users.csv"), users).unwrap();
    let enrollments = std::fs::read_to_string(package.join("enrollments.csv")).unwrap();
    let fewer: Vec<&str> = enrollments
        .lines()
        .filter(|l| !l.starts_with("enr-1,"))
        .collect();
    assert_eq!(fewer.len(), 10, "the header and nine enrollments");
    std::fs::write(package.join("enrollments.csv"), fewer.join("\n") + "\n").unwrap();
    let out = env.sync(SyncKind::Full, false);
    assert_eq!(out.status, RunStatus::Succeeded, "{out:?}");
    assert_eq!(
        sizes(&env),
        engine::PullSizes {
            people: 15,
            enrollments: 9,
        }
    );
}

/// Makes `package` the SIS's next delta: its manifest says so and its users.csv holds
/// only Lucia Ortiz (`usr-t-1`), as `edit` changes her row. Returns the users.csv it had.
fn as_delta(package: &std::path::Path, edit: impl FnOnce(&str) -> String) -> String {
    let manifest = std::fs::read_to_string(package.join("manifest.csv")).unwrap();
    std::fs::write(
        package.join("manifest.csv"),
        manifest.replace(",bulk", ",delta"),
    )
    .unwrap();
    let users = std::fs::read_to_string(package.join("users.csv")).unwrap();
    let header = users.lines().next().unwrap();
    let lucia = users.lines().find(|l| l.starts_with("usr-t-1,")).unwrap();
    let row = edit(lucia);
    std::fs::write(package.join("users.csv"), format!("{header}\n{row}\n")).unwrap();
    users
}

fn a_delta_package_changes_only_its_people(env: Env) {
    let package = copy_sample(&env.dir, "district");
    env.csv_source(&package, "");
    env.sync(SyncKind::Full, false);
    let tam = user(&env, "tam.nguyen@district.k12.us");

    // The SIS's next package lists only what changed: Lucia Ortiz's new family name.
    let users = as_delta(&package, |lucia| {
        lucia
            .replace("2026-08-01T00:00:00Z", "2026-09-01T00:00:00Z")
            .replace(",Ortiz,", ",Ortiz-Reyes,")
    });

    let out = env.sync(SyncKind::Delta, false);
    assert_eq!(out.status, RunStatus::Succeeded, "{out:?}");
    assert_eq!(out.kind, SyncKind::Delta);
    let c = out.counts;
    assert_eq!(
        (c.seen, c.updated, c.created, c.deactivated, c.errors),
        (1, 1, 0, 0, 0),
        "{c:?}"
    );
    assert_eq!(
        user(&env, "lucia.ortiz@district.k12.us")
            .last_name
            .as_deref(),
        Some("Ortiz-Reyes")
    );
    let tam_after = user(&env, "tam.nguyen@district.k12.us");
    assert_eq!(
        tam_after.revision, tam.revision,
        "people not in the delta are left alone"
    );
    assert!(
        tam_after.active,
        "a delta deactivates nobody for being absent"
    );
    assert_eq!(accounts(&env).iter().filter(|u| u.active).count(), 10);
    assert_eq!(run(&env, out.run_id).kind, SyncKind::Delta);

    // A delta that lists everyone (the SIS touched every record) is planned on every
    // link, as a full pull is, and writes only what changed: Tam Nguyen's new name.
    let everyone = users
        .replace(",Ortiz,", ",Ortiz-Reyes,")
        .replace(",Nguyen,", ",Nguyen-Tran,");
    std::fs::write(package.join("users.csv"), everyone).unwrap();
    let wide = env.sync(SyncKind::Delta, false);
    assert_eq!(wide.status, RunStatus::Succeeded, "{wide:?}");
    let c = wide.counts;
    assert_eq!(
        (c.seen, c.updated, c.created, c.deactivated, c.errors),
        (users.lines().count() as u64 - 1, 1, 0, 0, 0),
        "{c:?}"
    );
    let tam_now = user(&env, "tam.nguyen@district.k12.us");
    assert_eq!(tam_now.last_name.as_deref(), Some("Nguyen-Tran"));
    assert_eq!(accounts(&env).iter().filter(|u| u.active).count(), 10);
}

fn a_dry_run_changes_nothing(env: Env) {
    env.csv_source(&sample_district(), "");
    let (out, items) = env.preview(SyncKind::Full);
    assert!(out.dry_run);
    assert_eq!(out.run_id, None, "a dry run records no run");
    assert_eq!(out.counts.created, 10, "it says what it would do: {out:?}");
    let created = items.iter().filter(|i| i.outcome == Outcome::Created);
    assert_eq!(
        created.count(),
        10,
        "it lists the accounts it would create: {items:?}"
    );
    assert!(accounts(&env).is_empty(), "nothing was created");
    assert!(env.store().list_runs(0).unwrap().is_empty());
}

fn a_tripped_safeguard_holds_the_run_until_approved(env: Env) {
    let package = copy_sample(&env.dir, "district");
    // The sample district is small: judge it by share anyway.
    env.csv_source(&package, "[source.safeguards]\nmin_population = 1\n");
    env.sync(SyncKind::Full, false);
    assert_eq!(accounts(&env).iter().filter(|u| u.active).count(), 10);

    // A bad export day: users.csv has its header and nobody.
    let users = std::fs::read_to_string(package.join("users.csv")).unwrap();
    let header = users.lines().next().unwrap().to_owned();
    std::fs::write(package.join("users.csv"), format!("{header}\n")).unwrap();

    let held = env.sync(SyncKind::Full, false);
    assert_eq!(held.status, RunStatus::Held, "{held:?}");
    assert!(
        held.hold.iter().any(|t| t.kind == TripKind::Deactivations),
        "{:?}",
        held.hold
    );
    assert_eq!(held.counts.deactivated, 10, "{held:?}");
    assert_eq!(run(&env, held.run_id).status, RunStatus::Held);
    assert_eq!(
        accounts(&env).iter().filter(|u| u.active).count(),
        10,
        "nothing applied while held"
    );

    // Discarded: nothing of it is ever applied.
    let held_id = held.run_id.unwrap();
    // Not while another process runs the source: the engine takes the lock itself.
    {
        let _other = engine::lock_source(env.store(), "sis", "other", &env.clock).unwrap();
        let busy = env.with_ctx(|ctx| engine::discard(ctx, held_id, "olivia", None));
        assert!(matches!(busy, Err(EngineError::Busy(_))), "{busy:?}");
        assert_eq!(run(&env, held.run_id).status, RunStatus::Held);
    }
    env.with_ctx(|ctx| engine::discard(ctx, held_id, "olivia", None))
        .unwrap();
    assert_eq!(run(&env, held.run_id).status, RunStatus::Discarded);
    assert_eq!(accounts(&env).iter().filter(|u| u.active).count(), 10);

    // Held again, then approved: the stored plan is applied, at the clock's time.
    let again = env.sync(SyncKind::Full, false);
    assert_eq!(again.status, RunStatus::Held, "{again:?}");
    let approved_at: Timestamp = "2030-05-06T09:00:00Z".parse().unwrap();
    env.clock.set(approved_at);
    // A caller that took the lock first (to answer "busy" early) hands it over.
    let approval = {
        let lock = engine::lock_source(env.store(), "sis", "engine-test", &env.clock).unwrap();
        env.with_ctx(|ctx| engine::approve(ctx, again.run_id.unwrap(), "olivia", Some(lock)))
            .unwrap()
    };
    assert!(approval.applied_as_held, "{approval:?}");
    assert!(approval.stale.is_empty());
    assert_eq!(
        approval.outcome.status,
        RunStatus::Succeeded,
        "{approval:?}"
    );
    assert_eq!(approval.outcome.counts.deactivated, 10);
    let record = run(&env, again.run_id);
    assert_eq!(record.status, RunStatus::Succeeded);
    assert_eq!(record.finished_at, Some(approved_at));
    assert!(
        accounts(&env).iter().all(|u| !u.active),
        "the approved plan deactivated everyone"
    );
}

/// A delta's view holds only its people: the school it takes someone from is counted
/// whole when the plan is guarded, so its loss limit holds as on a full pull.
fn a_delta_that_empties_a_school_is_held(env: Env) {
    let package = copy_sample(&env.dir, "district");
    // Judged by school only: the whole-source deactivation limits stay out of the way.
    env.csv_source(
        &package,
        "[source.safeguards]\nmin_population = 1000\nmax_deactivations = 100\n\
         min_school_size = 1\nmax_school_loss_percent = 10.0\n",
    );
    env.sync(SyncKind::Full, false);
    let whole = env.store().load_links_view("sis").unwrap();
    let elementary = *whole.population().by_school.get("org-elem-1").unwrap();
    assert!(elementary >= 2, "{:?}", whole.population());

    // The next package: Lucia Ortiz, of the elementary school, is deleted.
    as_delta(&package, |lucia| {
        lucia.replace(
            "usr-t-1,active,2026-08-01T00:00:00Z,true",
            "usr-t-1,tobedeleted,2026-09-01T00:00:00Z,false",
        )
    });

    let held = env.sync(SyncKind::Delta, false);
    assert_eq!(held.status, RunStatus::Held, "{held:?}");
    assert_eq!(held.counts.deactivated, 1, "{held:?}");
    let loss: Vec<&str> = held
        .hold
        .iter()
        .filter(|t| t.kind == TripKind::SchoolLoss)
        .map(|t| t.detail.as_str())
        .collect();
    assert_eq!(
        loss,
        [format!(
            "school org-elem-1 would lose 1 of its {elementary} people ({:.0}%, limit 10%)",
            100.0 / elementary as f64
        )],
        "{:?}",
        held.hold
    );
    assert!(
        user(&env, "lucia.ortiz@district.k12.us").active,
        "nothing applied while held"
    );
}

fn an_unreadable_source_records_a_failed_run(env: Env) {
    let missing = env.dir.join("no-such-package");
    env.csv_source(&missing, "");
    let out = env.sync(SyncKind::Full, false);
    assert_eq!(out.status, RunStatus::Failed, "{out:?}");
    let error = out.error.clone().expect("the failure says why");
    assert!(error.contains("no-such-package"), "names the path: {error}");
    let record = run(&env, out.run_id);
    assert_eq!(record.status, RunStatus::Failed);
    assert_eq!(record.error.as_deref(), Some(error.as_str()));
    assert_eq!(record.started_at, START.parse::<Timestamp>().unwrap());
    assert_eq!(
        record.finished_at,
        Some(START.parse::<Timestamp>().unwrap())
    );
    assert!(accounts(&env).is_empty());
}

fn every_write_holds_the_source_lock(env: Env) {
    env.csv_source(&sample_district(), "");
    let full = SyncRequest {
        source: "sis".into(),
        kind: SyncKind::Full,
        trigger: Trigger::Cli,
        approved: false,
    };
    {
        // Another process runs the source: a sync is refused and nothing is recorded…
        let _other = engine::lock_source(env.store(), "sis", "other", &env.clock).unwrap();
        let busy = env.with_ctx(|ctx| engine::sync(ctx, &full, None));
        assert!(matches!(busy, Err(EngineError::Busy(_))), "{busy:?}");
        assert!(env.store().list_runs(0).unwrap().is_empty());
        // …but a dry run, which writes nothing, needs no lock.
        let dry = env.sync(SyncKind::Full, true);
        assert_eq!(dry.counts.created, 10, "{dry:?}");
    }
    // A lock handed over must be this source's.
    let wrong = engine::lock_source(env.store(), "north", "engine-test", &env.clock).unwrap();
    let refused = env.with_ctx(|ctx| engine::sync(ctx, &full, Some(wrong)));
    assert!(
        matches!(&refused, Err(EngineError::Config(m)) if m.contains("north")),
        "{refused:?}"
    );
    let out = env.sync(SyncKind::Full, false);
    assert_eq!(out.status, RunStatus::Succeeded, "{out:?}");
    // The engine let go of the lock when the run ended: it can be taken again.
    drop(engine::lock_source(env.store(), "sis", "engine-test", &env.clock).unwrap());

    // Undo goes through the engine too, under the same lock.
    let run_id = out.run_id.unwrap();
    {
        let _other = engine::lock_source(env.store(), "sis", "other", &env.clock).unwrap();
        let busy = env.with_ctx(|ctx| engine::undo(ctx, run_id, "olivia", false, None));
        assert!(matches!(busy, Err(EngineError::Busy(_))), "{busy:?}");
        let preview = env
            .with_ctx(|ctx| engine::undo(ctx, run_id, "olivia", true, None))
            .unwrap();
        assert_eq!(preview.retired.len(), 10, "{preview:?}");
        assert_eq!(accounts(&env).iter().filter(|u| u.active).count(), 10);
    }
    let undone = env
        .with_ctx(|ctx| engine::undo(ctx, run_id, "olivia", false, None))
        .unwrap();
    assert_eq!(undone.retired.len(), 10, "{undone:?}");
    assert!(accounts(&env).iter().all(|u| !u.active));
}

/// What a run left: the accounts, the groups, the watermark, the run's items and
/// counts, the SIS records of the people it saw, the review cases.
fn left_by(env: &Env, run: Option<RunId>, people: &[&str]) -> serde_json::Value {
    let store = env.store();
    let run = run.expect("the run is recorded");
    let record = store.get_run(run).unwrap().expect("the run exists");
    let items = store.run_items(run, None, 0, 0).unwrap();
    let records: Vec<_> = people
        .iter()
        .map(|id| store.sis_person("sis", id).unwrap())
        .collect();
    serde_json::json!({
        "accounts": format!("{:?}", accounts(env)),
        "groups": store.groups(Some("sis"), 0).unwrap(),
        "watermark": store.watermark("sis").unwrap(),
        "status": record.status,
        "counts": record.counts,
        "items": items,
        "records": records,
        "cases": store.review_cases(None, None, 0).unwrap(),
    })
}

/// Whether a progress line of `env`'s runs ended with `end`.
fn said(env: &Env, end: &str) -> bool {
    env.progress
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.ends_with(end))
}

/// The sample district's next day in `package`: Min Kim renamed Minji (usr-a-2), usr-s-5
/// gone, usr-s-7 new.
fn next_day(package: &std::path::Path) {
    let users = package.join("users.csv");
    let text = std::fs::read_to_string(&users).unwrap();
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("usr-s-5,"))
        .map(|l| format!("{}\n", l.replace("Min,Kim", "Minji,Kim")))
        .collect();
    let new = "usr-s-7,active,2026-08-01T00:00:00Z,true,org-elem-1,student,s100007,{SIS:100007},Zoe,Park,,100007,,,,,KG,\n";
    std::fs::write(&users, format!("{text}{new}")).unwrap();
}

/// A plan of more items than a run may hold is made twice: once to count and guard it,
/// then again as it is written, a chunk at a time, in the one transaction. The directory
/// it leaves is the one the plan held whole leaves: a first import (with a review case),
/// a re-sync that updates, deactivates and creates, and a bad day held and approved.
/// On the next day so many people change that the plan reads their accounts a chunk of
/// people at a time (two here), in both passes, and in the dry run's: the same again.
fn a_plan_too_large_to_hold_is_applied_as_it_is_made(env: Env) {
    let whole = env.fresh();
    env.max_plan_items.set(1);
    env.account_chunk.set(2);
    let by_chunks = |e: &Env| {
        let mut lines = e.progress.lock().unwrap();
        let n = lines
            .iter()
            .filter(|l| l.ends_with("their accounts read 2 people at a time"))
            .count();
        lines.clear();
        n
    };
    // Two people with one email: the second is a review case.
    let twin = "usr-t-9,active,2026-08-01T00:00:00Z,true,org-elem-1,teacher,lortiz2,,Lucia,Ortiz,,T9009,lucia.ortiz@district.k12.us,,,,,\n";
    let packages: Vec<_> = [&env, &whole]
        .iter()
        .map(|e| {
            let package = test_kit::copy_sample_district(&e.dir, "district", twin);
            e.csv_source(
                &package,
                "[source.safeguards]\nmin_population = 1\nmax_deactivations_percent = 20.0\n",
            );
            package
        })
        .collect();
    let mut people: Vec<String> = std::fs::read_to_string(packages[0].join("users.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next().map(str::to_owned))
        .collect();
    people.push("usr-s-7".into());
    let mut people: Vec<&str> = people.iter().map(String::as_str).collect();
    let both = |f: &dyn Fn(&Env, &std::path::Path)| {
        for (e, p) in [&env, &whole].iter().zip(&packages) {
            f(e, p);
        }
    };

    let streamed = env.sync(SyncKind::Full, false);
    let held_whole = whole.sync(SyncKind::Full, false);
    assert!(
        said(&env, "the plan is made again as they are applied"),
        "the run said its plan was made again"
    );
    assert_eq!(streamed.status, RunStatus::Succeeded, "{streamed:?}");
    assert_eq!(streamed.counts.created, 10, "{streamed:?}");
    assert_eq!(streamed.counts, held_whole.counts);
    assert_eq!(
        left_by(&env, streamed.run_id, &people),
        left_by(&whole, held_whole.run_id, &people)
    );
    assert_eq!(
        env.store()
            .review_cases(Some("open"), None, 0)
            .unwrap()
            .len(),
        1,
        "the disputed person's case is open"
    );

    // The next day: one renamed, one gone, one new.
    env.clock.set("2026-09-02T12:00:00Z".parse().unwrap());
    whole.clock.set("2026-09-02T12:00:00Z".parse().unwrap());
    both(&|_, package| next_day(package));
    by_chunks(&env);
    let (_, dry_items) = env.preview(SyncKind::Full);
    let (_, whole_items) = whole.preview(SyncKind::Full);
    assert_eq!(by_chunks(&env), 1, "the dry run planned by chunks");
    assert_eq!(dry_items, whole_items);
    let streamed = env.sync(SyncKind::Full, false);
    let held_whole = whole.sync(SyncKind::Full, false);
    assert_eq!(by_chunks(&env), 1, "planned by chunks");
    assert_eq!(streamed.status, RunStatus::Succeeded, "{streamed:?}");
    let c = streamed.counts;
    assert_eq!((c.created, c.updated, c.deactivated), (1, 1, 1), "{c:?}");
    assert_eq!(streamed.counts, held_whole.counts);
    assert_eq!(
        left_by(&env, streamed.run_id, &people),
        left_by(&whole, held_whole.run_id, &people)
    );

    // A bad day: one new person, everyone else gone. The first pass kept only the
    // deactivations: held as it is made again, stored a part at a time, and approved a
    // part at a time (the creation and its record too).
    both(&|_, package| {
        let users = package.join("users.csv");
        let text = std::fs::read_to_string(&users).unwrap();
        let header = text.lines().next().unwrap().to_owned();
        let new = "usr-s-8,active,2026-08-01T00:00:00Z,true,org-elem-1,student,s100008,{SIS:100008},Ivy,Chen,,100008,,,,,KG,\n";
        std::fs::write(&users, format!("{header}\n{new}")).unwrap();
    });
    // A dry run hands out every item of the plan, whatever a run may hold: counted and
    // judged first, then made again as it is handed out, the same items in the same order.
    let (dry, streamed_items) = env.preview(SyncKind::Full);
    let (dry_too, whole_items) = whole.preview(SyncKind::Full);
    let listed = |items: &[PlanItem]| -> Vec<(String, Outcome)> {
        items
            .iter()
            .map(|i| (i.sourced_id.clone(), i.outcome))
            .collect()
    };
    assert_eq!(streamed_items.len(), 11, "{streamed_items:?}");
    assert_eq!(listed(&streamed_items), listed(&whole_items));
    assert_eq!(dry.counts, dry_too.counts);
    assert_eq!(
        dry.hold.len(),
        1,
        "the dry run says it would be held: {dry:?}"
    );
    let held = env.sync(SyncKind::Full, false);
    let held_too = whole.sync(SyncKind::Full, false);
    assert_eq!(held.status, RunStatus::Held, "{held:?}");
    assert!(
        held.hold.iter().any(|t| t.kind == TripKind::Deactivations),
        "{:?}",
        held.hold
    );
    assert_eq!(held.counts, held_too.counts);
    assert_eq!(
        (held.counts.deactivated, held.counts.created),
        (10, 1),
        "{held:?}"
    );
    let stored = |e: &Env, run: Option<RunId>| {
        let check = e.store().check_held(run.unwrap()).unwrap().unwrap();
        (check.writes, check.stale.len(), check.head.counts)
    };
    assert_eq!(stored(&env, held.run_id), (11, 0, held.counts));
    assert_eq!(stored(&env, held.run_id), stored(&whole, held_too.run_id));
    let approve = |e: &Env, run: Option<RunId>| {
        e.with_ctx(|ctx| engine::approve(ctx, run.unwrap(), "olivia", None))
            .unwrap()
    };
    let approved = approve(&env, held.run_id);
    let approved_too = approve(&whole, held_too.run_id);
    assert!(approved.applied_as_held, "{approved:?}");
    assert_eq!(
        approved.outcome.status,
        RunStatus::Succeeded,
        "{approved:?}"
    );
    assert_eq!(approved.outcome.counts.deactivated, 10);
    assert_eq!(approved.outcome.counts, approved_too.outcome.counts);
    let active: Vec<_> = accounts(&env).into_iter().filter(|u| u.active).collect();
    assert_eq!(active.len(), 1, "only the new person: {active:?}");
    people.push("usr-s-8");
    assert_eq!(
        left_by(&env, held.run_id, &people),
        left_by(&whole, held_too.run_id, &people)
    );
    assert!(
        env.store().sis_person("sis", "usr-s-8").unwrap().is_some(),
        "the held plan kept the new person's record"
    );
}

/// A plan applied as it is made writes its chunks in one transaction: when a write fails
/// after some chunks went in, the run fails and the directory is as it was.
fn a_plan_applied_as_it_is_made_that_fails_midway_changes_nothing(env: Env) {
    let (package, first) = guarded_sample(&env);
    let people: Vec<&str> = vec!["usr-a-2", "usr-s-1", "usr-s-5", "usr-s-7", "usr-t-1"];
    let before = left_by(&env, first.run_id, &people);
    let watermark = env.store().watermark("sis").unwrap();

    // The next day: one renamed, one gone, one new; each item a chunk of its own.
    env.clock.set("2026-09-02T12:00:00Z".parse().unwrap());
    next_day(&package);
    env.max_plan_items.set(1);
    // The third run item of a run cannot be written: two chunks are in by then.
    fail_third_item(&env);
    let failed = env.sync(SyncKind::Full, false);
    assert_eq!(failed.status, RunStatus::Failed, "{failed:?}");
    let error = failed.error.as_deref().unwrap_or_default();
    assert!(error.contains("nothing was changed"), "{error}");
    assert!(
        error.contains("the disk is full"),
        "the third item's write: {error}"
    );
    assert_eq!(run(&env, failed.run_id).status, RunStatus::Failed);
    assert!(
        env.store()
            .run_items(failed.run_id.unwrap(), None, 0, 0)
            .unwrap()
            .is_empty(),
        "no item of the failed run is kept"
    );
    // The directory, the SIS records, the groups, the cases: as the first run left them.
    let after = left_by(&env, first.run_id, &people);
    assert_eq!(after["accounts"], before["accounts"]);
    assert_eq!(after["records"], before["records"]);
    assert_eq!(after["groups"], before["groups"]);
    assert_eq!(after["cases"], before["cases"]);
    assert_eq!(env.store().watermark("sis").unwrap(), watermark);
    assert_eq!(after, before);

    // Mended, the same day goes in whole.
    mend_third_item(&env);
    let mended = env.sync(SyncKind::Full, false);
    assert_eq!(mended.status, RunStatus::Succeeded, "{mended:?}");
    let c = mended.counts;
    assert_eq!((c.created, c.updated, c.deactivated), (1, 1, 1), "{c:?}");
    assert!(env.store().sis_person("sis", "usr-s-7").unwrap().is_some());
}

/// A plan made by chunks reads its accounts again as it is applied: when the directory
/// moved after the first pass (an admin renamed the person the plan renames, so it has
/// nothing to update), what it would write is not what the safeguards judged, and the run
/// fails with nothing changed. The next run, nothing moving, applies the day.
fn a_plan_by_chunks_whose_directory_moves_before_its_apply_changes_nothing(env: Env) {
    let (package, _) = guarded_sample(&env);
    env.clock.set("2026-09-02T12:00:00Z".parse().unwrap());
    next_day(&package);
    env.max_plan_items.set(1);
    env.account_chunk.set(2);
    let rename = "UPDATE users SET first_name = 'Minji', revision = revision + 1 \
                  WHERE id = (SELECT user_id FROM sis_links WHERE sourced_id = 'usr-a-2')";
    *env.on_applying.lock().unwrap() = Some((rename.into(), rename.into()));
    let failed = env.sync(SyncKind::Full, false);
    assert_eq!(failed.status, RunStatus::Failed, "{failed:?}");
    let error = failed.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("the directory changed while the run was planned"),
        "{error}"
    );
    assert!(error.contains("nothing was changed"), "{error}");
    assert!(
        said(&env, "their accounts read 2 people at a time"),
        "planned by chunks"
    );
    // Nothing of the day went in: the new person has no record, the gone one is active.
    assert!(env.store().sis_person("sis", "usr-s-7").unwrap().is_none());
    assert_eq!(accounts(&env).iter().filter(|u| !u.active).count(), 0);
    let mended = env.sync(SyncKind::Full, false);
    assert_eq!(mended.status, RunStatus::Succeeded, "{mended:?}");
    let c = mended.counts;
    assert_eq!((c.created, c.updated, c.deactivated), (1, 0, 1), "{c:?}");
    assert!(env.store().sis_person("sis", "usr-s-7").unwrap().is_some());
}

/// The sample district imported, its safeguards set for a district of ten (deactivating
/// more than 20 % holds the run): the package and the first run.
fn guarded_sample(env: &Env) -> (std::path::PathBuf, engine::SyncOutcome) {
    let package = copy_sample(&env.dir, "district");
    env.csv_source(
        &package,
        "[source.safeguards]\nmin_population = 1\nmax_deactivations_percent = 20.0\n",
    );
    let first = env.sync(SyncKind::Full, false);
    assert_eq!(first.status, RunStatus::Succeeded, "{first:?}");
    (package, first)
}

/// From now on the third run item of a run cannot be written ("the disk is full").
fn fail_third_item(env: &Env) {
    env.run_sql(
        "CREATE TRIGGER third_item BEFORE INSERT ON run_items
         WHEN (SELECT count(*) FROM run_items WHERE run_id = NEW.run_id) >= 2
         BEGIN SELECT RAISE(ABORT, 'the disk is full'); END;",
        "CREATE FUNCTION third_item() RETURNS trigger LANGUAGE plpgsql AS
         $$ BEGIN
           IF (SELECT count(*) FROM run_items WHERE run_id = NEW.run_id) >= 2 THEN
             RAISE EXCEPTION 'the disk is full';
           END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER third_item BEFORE INSERT ON run_items
         FOR EACH ROW EXECUTE FUNCTION third_item();",
    );
}

fn mend_third_item(env: &Env) {
    env.run_sql(
        "DROP TRIGGER third_item;",
        "DROP TRIGGER third_item ON run_items; DROP FUNCTION third_item();",
    );
}

/// A large bad day is held as it is made and approved a part at a time, each in one
/// transaction: when holding fails part-way the run fails holding nothing, and when the
/// approval fails part-way the directory is as it was and the run is held again, its plan
/// and its people kept, to be approved once what failed is mended.
fn a_large_held_plan_whose_hold_or_approval_fails_midway_changes_nothing(env: Env) {
    let (package, first) = guarded_sample(&env);
    let people: Vec<&str> = vec!["usr-a-2", "usr-s-1", "usr-s-5", "usr-t-1"];
    let before = left_by(&env, first.run_id, &people);
    let active = accounts(&env).iter().filter(|u| u.active).count();

    // A bad day (everyone gone but one), each item a part of its own.
    let users = package.join("users.csv");
    let text = std::fs::read_to_string(&users).unwrap();
    let kept: Vec<&str> = text.lines().take(2).collect();
    std::fs::write(&users, kept.join("\n") + "\n").unwrap();
    env.max_plan_items.set(1);
    fail_third_item(&env);
    let failed = env.sync(SyncKind::Full, false);
    assert_eq!(failed.status, RunStatus::Failed, "{failed:?}");
    let error = failed.error.as_deref().unwrap_or_default();
    assert!(error.contains("holding the run failed"), "{error}");
    assert!(error.contains("the disk is full"), "{error}");
    let failed_run = failed.run_id.unwrap();
    assert!(env.store().check_held(failed_run).unwrap().is_none());
    assert!(
        env.store()
            .run_items(failed_run, None, 0, 0)
            .unwrap()
            .is_empty()
    );

    mend_third_item(&env);
    let held = env.sync(SyncKind::Full, false);
    assert_eq!(held.status, RunStatus::Held, "{held:?}");
    let held_run = held.run_id.unwrap();
    let check = env.store().check_held(held_run).unwrap().unwrap();
    assert!(check.writes > 2, "{check:?}");
    fail_third_item(&env);
    let approval = env
        .with_ctx(|ctx| engine::approve(ctx, held_run, "olivia", None))
        .unwrap();
    assert_eq!(approval.outcome.status, RunStatus::Held, "{approval:?}");
    assert_eq!(
        approval.outcome.exit_code(),
        2,
        "an approval that failed is an error"
    );
    let error = approval.outcome.error.as_deref().unwrap_or_default();
    assert!(error.contains("the disk is full"), "{error}");
    let again = run(&env, Some(held_run));
    assert_eq!(again.status, RunStatus::Held);
    assert!(
        again
            .note
            .as_deref()
            .unwrap_or_default()
            .contains("held again"),
        "{again:?}"
    );
    assert_eq!(
        env.store().check_held(held_run).unwrap().unwrap().writes,
        check.writes,
        "the plan is kept"
    );
    let listed = env.store().run_items(held_run, None, 0, 0).unwrap();
    assert_eq!(
        listed.len(),
        check.writes,
        "the people it would touch are still listed"
    );
    assert_eq!(left_by(&env, first.run_id, &people), before);
    assert_eq!(
        accounts(&env).iter().filter(|u| u.active).count(),
        active,
        "nobody was deactivated"
    );

    // Mended, the same approval goes in.
    mend_third_item(&env);
    let approval = env
        .with_ctx(|ctx| engine::approve(ctx, held_run, "olivia", None))
        .unwrap();
    assert_eq!(
        approval.outcome.status,
        RunStatus::Succeeded,
        "{approval:?}"
    );
    assert!(approval.applied_as_held);
    assert_eq!(accounts(&env).iter().filter(|u| u.active).count(), 1);
}
