//! Applying plans: the same result as the reference (`MemoryDirectory::apply`), plus what
//! only the store does: provenance rows, revisions, run items, refusing moved accounts,
//! writing nothing when nothing changed, and all-or-nothing on failure.

use oneroster::Role;
use rostersync_core::directory::{AccountId, Field, Writer};
use rostersync_core::memory::MemoryDirectory;
use rostersync_core::plan::{Outcome, Plan, PlanItem, Reason};
use rostersync_core::sis::SisPerson;
use store::{RunId, RunStatus, Store};

use crate::harness::{
    TestDb, assert_same_directory, config, conformance, district_config, kinds_of_items, later,
    now, person, plan_on, plan_store, sso_row, sso_user, start, sync,
};

/// Sign-on accounts made before the first sync, in the store and in memory alike; two
/// share an email (as after a hand edit), so one SIS person is disputed.
fn seed_sso(db: &TestDb, mem: &mut MemoryDirectory) {
    let accounts = [
        ("Ana.Li@district.k12.us", "Ana", "Li"),
        ("kimlee@district.k12.us", "Kim", "Lee"),
        ("dup@x.org", "Dup", "One"),
        ("dup-two@x.org", "Dup", "Two"),
    ];
    for (email, first, last) in accounts {
        let s = db
            .store()
            .import_accounts(&[sso_row(email, first, last)], "google", now())
            .unwrap();
        assert_eq!(s.created, 1, "{email}");
        let email = if email == "dup-two@x.org" {
            "DUP@x.org"
        } else {
            email
        };
        mem.add_user(sso_user(email, first, last));
    }
    db.exec("UPDATE users SET email = 'DUP@x.org', email_lc = 'dup@x.org' WHERE email = 'dup-two@x.org'");
}

fn district_people() -> Vec<SisPerson> {
    let mut zoe = person(
        "s3",
        Role::Student,
        "Zoë",
        "O'Brien",
        Some("Zoe.OBrien@students.district.k12.us"),
    );
    zoe.edit(|f| f.middle_name = Some("Ñandú \"Q\"".into()));
    let mut bao = person(
        "t1",
        Role::Teacher,
        "Bảo",
        "Nguyễn",
        Some("bao.nguyen@district.k12.us"),
    );
    bao.edit(|f| {
        f.preferred_first_name = Some("tab\there, back\\slash, new\nline, what?".into());
        f.grade = None;
    });
    vec![
        person(
            "s1",
            Role::Student,
            "Ana",
            "Li",
            Some("ana.li@STUDENTS.district.k12.us"),
        ),
        person("s2", Role::Student, "Kim", "Lee", None),
        zoe,
        bao,
        person(
            "a1",
            Role::Counselor,
            "Cy",
            "Do",
            Some("cy.do@district.k12.us"),
        ),
        person("x1", Role::Student, "Dup", "Three", Some("dup@x.org")),
        person("g1", Role::Parent, "Pat", "Li", Some("pat.li@x.org")),
    ]
}

fn item<'a>(p: &'a Plan, sourced_id: &str) -> &'a PlanItem {
    p.items.iter().find(|i| i.sourced_id == sourced_id).unwrap()
}

fn user_of(store: &Store, sourced_id: &str) -> AccountId {
    store
        .list_users(&store::UserQuery::default())
        .unwrap()
        .into_iter()
        .find(|u| u.sis.as_ref().is_some_and(|s| s.sourced_id == sourced_id))
        .unwrap_or_else(|| panic!("no account linked to {sourced_id}"))
        .user
        .id
}

fn applying_matches_the_reference(db: &mut TestDb) {
    let s = db.store();
    let cfg = district_config();
    let mut mem = MemoryDirectory::default();
    seed_sso(db, &mut mem);
    assert_same_directory(s, &mem, "sis");

    let people = district_people();
    let p = plan_store(s, &cfg, &people);
    assert_eq!(
        p,
        plan_on(&cfg, &mem.view("sis"), &people),
        "the store's view plans like the memory one"
    );
    assert_eq!(
        (p.counts.linked, p.counts.created, p.counts.skipped),
        (2, 3, 2),
        "{:#?}",
        p.items
    );
    assert_eq!(item(&p, "x1").reason.code(), "disputed");
    let run = start(s, "sis");
    let summary = s.apply_plan(run, &p, now()).unwrap();
    assert_eq!(summary.counts, p.counts);
    assert_eq!(summary.conflicts, 0);
    mem.apply(&p, now());
    assert_same_directory(s, &mem, "sis");

    // Second run: names, grades, a blanked phone.
    let mut changed = people.clone();
    changed[0].edit(|f| f.given_name = "Anna".into());
    changed[2].edit(|f| f.grade = Some("06".into()));
    changed[3].edit(|f| f.phone = None);
    changed[4].edit(|f| f.family_name = "Doe-Smith".into());
    let p2 = plan_store(s, &cfg, &changed);
    assert_eq!(p2, plan_on(&cfg, &mem.view("sis"), &changed));
    assert_eq!(p2.counts.updated, 4, "{:#?}", p2.items);
    let run2 = start(s, "sis");
    s.apply_plan(run2, &p2, later(60)).unwrap();
    mem.apply(&p2, later(60));
    assert_same_directory(s, &mem, "sis");

    // And then there is nothing left to do, in both.
    let p3 = plan_store(s, &cfg, &changed);
    assert!(p3.is_empty(), "{:#?}", p3.items);
    assert_eq!(p3, plan_on(&cfg, &mem.view("sis"), &changed));
}

fn provenance_is_kept_without_a_row_per_created_field(db: &mut TestDb) {
    let s = db.store();
    let cfg = district_config();
    s.import_accounts(
        &[sso_row("Ana.Li@district.k12.us", "Ana", "Li")],
        "google",
        now(),
    )
    .unwrap();
    let mut ana = person(
        "s1",
        Role::Student,
        "Anabel",
        "Li",
        Some("ana.li@students.district.k12.us"),
    );
    ana.edit(|f| f.phone = None);
    let (_, p, _) = sync(
        s,
        &cfg,
        &[
            ana.clone(),
            person("s2", Role::Student, "Bo", "Ek", Some("bo@x.org")),
        ],
        now(),
    );
    let (ana_id, bo_id) = (user_of(s, "s1"), user_of(s, "s2"));
    assert_eq!(
        db.count("field_provenance") as usize,
        item(&p, "s1").changes.len(),
        "rows only for the linked account's changes"
    );

    let view = s.load_view("sis").unwrap();
    let linked = view.user(ana_id).unwrap();
    let me = Writer::Source("sis".into());
    let google = Writer::SignOn("google".into());
    assert_eq!(
        linked.writer_of(Field::Email),
        Some(&google),
        "same email up to case: untouched"
    );
    assert_eq!(linked.writer_of(Field::LastName), Some(&google));
    assert_eq!(linked.writer_of(Field::FirstName), Some(&me));
    assert_eq!(linked.writer_of(Field::Username), Some(&me));
    assert_eq!(
        linked.writer_of(Field::Phone),
        None,
        "never written by anyone"
    );
    let created = view.user(bo_id).unwrap();
    for f in [
        Field::Email,
        Field::FirstName,
        Field::LastName,
        Field::Type,
        Field::Phone,
    ] {
        assert_eq!(created.writer_of(f), Some(&me), "{f}");
    }
    assert_eq!(
        created.writer_of(Field::MiddleName),
        None,
        "not set at creation"
    );

    // A later write by another source shows up as that source's.
    let two = config(
        "[[source]]\nname = \"hr\"\nkind = \"oneroster-csv\"\npath = \"y\"\n[source.field_priority]\nphone = \"always\"\n",
    );
    let mut hr_cfg = two.clone();
    hr_cfg.sources.remove(0);
    let mut bo = person("hr-9", Role::Teacher, "Bo", "Ek", Some("bo@x.org"));
    bo.edit(|f| f.phone = Some("555-0199".into()));
    let (_, p_hr, _) = sync(s, &hr_cfg, &[bo], later(5));
    assert_eq!(item(&p_hr, "hr-9").outcome, Outcome::Linked);
    let view = s.load_view("hr").unwrap();
    let created = view.user(bo_id).unwrap();
    assert_eq!(
        created.writer_of(Field::Phone),
        Some(&Writer::Source("hr".into()))
    );
    assert_eq!(
        created.writer_of(Field::Type),
        Some(&Writer::Source("hr".into())),
        "teacher now"
    );
    assert_eq!(created.writer_of(Field::Email), Some(&me));
}

fn revisions_record_creation_once_then_each_field(db: &mut TestDb) {
    let s = db.store();
    let cfg = config("");
    let (run1, _, _) = sync(
        s,
        &cfg,
        &[person("s1", Role::Student, "Ana", "Li", Some("Ana@X.org"))],
        now(),
    );
    let id = user_of(s, "s1");
    let revs = s.user_revisions(id).unwrap();
    assert_eq!(revs.len(), 1, "{revs:#?}");
    assert_eq!(revs[0].field, "created");
    assert_eq!(revs[0].writer, "source:sis");
    assert_eq!(revs[0].run, Some(run1));
    assert_eq!(revs[0].at, now());
    assert_eq!(revs[0].old, None);
    let initial: serde_json::Value = serde_json::from_str(revs[0].new.as_deref().unwrap()).unwrap();
    assert_eq!(initial["email"], "ana@x.org");
    assert_eq!(initial["first_name"], "Ana");
    assert_eq!(initial["type"], "student");
    assert_eq!(initial["active"], true);

    let mut ana = person("s1", Role::Student, "Anna", "Li", Some("ana@x.org"));
    ana.edit(|f| f.grade = Some("06".into()));
    let (run2, _, _) = sync(s, &cfg, &[ana], later(1));
    let revs = s.user_revisions(id).unwrap();
    let fields: Vec<&str> = revs.iter().map(|r| r.field.as_str()).collect();
    assert_eq!(
        fields,
        ["created", "username", "first_name", "grade"],
        "in field order"
    );
    assert_eq!(revs[2].old.as_deref(), Some("Ana"));
    assert_eq!(revs[2].new.as_deref(), Some("Anna"));
    assert_eq!(revs[3].old.as_deref(), Some("05"));
    assert_eq!(revs[3].new.as_deref(), Some("06"));
    assert!(
        revs[1..]
            .iter()
            .all(|r| r.run == Some(run2) && r.at == later(1) && r.writer == "source:sis")
    );
    assert_eq!(s.user_revisions(AccountId(424_242)).unwrap().len(), 0);
}

fn an_account_that_moved_since_planning_is_not_touched(db: &mut TestDb) {
    let s = db.store();
    let cfg = config("");
    let people = [
        person("s1", Role::Student, "Ana", "Li", Some("ana@x.org")),
        person("s2", Role::Student, "Bo", "Ek", Some("bo@x.org")),
    ];
    sync(s, &cfg, &people, now());
    let (ana, bo) = (user_of(s, "s1"), user_of(s, "s2"));
    let mut changed = people.clone();
    changed[0].edit(|f| f.given_name = "Anna".into());
    changed[1].edit(|f| f.given_name = "Bob".into());
    let p = plan_store(s, &cfg, &changed);
    assert_eq!(p.counts.updated, 2);
    // An admin edits Ana between planning and applying.
    db.exec(&format!(
        "UPDATE users SET first_name = 'Annie', revision = revision + 1 WHERE id = {ana}"
    ));
    let run = start(s, "sis");
    let summary = s.apply_plan(run, &p, later(1)).unwrap();
    assert_eq!(summary.conflicts, 1);
    assert_eq!(summary.counts.errors, 1);
    assert_eq!(summary.counts.updated, 1);
    assert_eq!(s.get_run(run).unwrap().unwrap().counts, summary.counts);

    let errors = s.run_items(run, Some(Outcome::Error), 0, 0).unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].sourced_id, "s1");
    assert_eq!(errors[0].user_id, Some(ana));
    assert_eq!(errors[0].reason_code, store::CONFLICT_CODE);
    assert_eq!(
        errors[0].reason,
        format!("account #{ana} changed while the run was planning; the next sync will retry")
    );
    let view = s.load_view("sis").unwrap();
    assert_eq!(
        view.user(ana).unwrap().first_name.as_deref(),
        Some("Annie"),
        "not overwritten"
    );
    assert_eq!(view.user(ana).unwrap().revision, 2);
    assert_eq!(
        view.user(bo).unwrap().first_name.as_deref(),
        Some("Bob"),
        "the others applied"
    );
    assert_eq!(
        view.link("s1").unwrap().synced_revision,
        1,
        "the link still says what was synced"
    );

    // The next sync retries.
    let again = plan_store(s, &cfg, &changed);
    assert_eq!(item(&again, "s1").outcome, Outcome::Updated);
    assert!(
        item(&again, "s1")
            .changes
            .iter()
            .any(|c| c.old == Some("Annie"))
    );
}

fn a_resync_with_nothing_changed_writes_nothing_but_the_run(db: &mut TestDb) {
    let s = db.store();
    let cfg = district_config();
    let mut mem = MemoryDirectory::default();
    seed_sso(db, &mut mem);
    let people = district_people();
    sync(s, &cfg, &people, now());
    let before = db.row_counts();
    let users_before: Vec<_> = s.list_users(&store::UserQuery::default()).unwrap();

    let (run, p, summary) = sync(s, &cfg, &people, later(30));
    assert!(
        p.items.iter().all(|i| i.outcome == Outcome::Skipped),
        "{:#?}",
        p.items
    );
    assert_eq!(summary.counts.unchanged, 5);
    let after = db.row_counts();
    for ((table, b), (_, a)) in before.iter().zip(&after) {
        let expected = if *table == "runs" {
            b + 1
        } else if *table == "run_items" {
            b + p.items.len() as i64
        } else if *table == "run_item_counts" {
            b + kinds_of_items(db, run)
        } else {
            *b
        };
        assert_eq!(*a, expected, "{table}");
    }
    let users_after = s.list_users(&store::UserQuery::default()).unwrap();
    assert_eq!(users_before.len(), users_after.len());
    for (b, a) in users_before.iter().zip(&users_after) {
        assert_eq!(b.user, a.user);
        assert_eq!(b.updated_at, a.updated_at, "#{}", a.user.id);
    }
    assert_eq!(
        s.get_run(run).unwrap().unwrap().status,
        RunStatus::Succeeded
    );
}

fn a_failed_apply_leaves_everything_as_it_was(db: &mut TestDb) {
    let s = db.store();
    let cfg = config("");
    let people = [
        person("s1", Role::Student, "Ana", "Li", Some("ana@x.org")),
        person("s2", Role::Student, "Bo", "Ek", Some("bo@x.org")),
    ];
    sync(s, &cfg, &people, now());
    let before = db.row_counts();
    let view_before: Vec<_> = s.list_users(&store::UserQuery::default()).unwrap();

    let mut changed = people.to_vec();
    changed[0].edit(|f| f.given_name = "Anna".into());
    changed.push(person("s3", Role::Student, "Cy", "Do", Some("cy@x.org")));
    let good = plan_store(s, &cfg, &changed);

    // An item for an account that does not exist, after writes earlier in the plan.
    let mut missing = good.clone();
    let mut ghost = item(&good, "s1").clone();
    ghost.sourced_id = "zz-ghost".into();
    ghost.user_id = Some(AccountId(424_242));
    missing.items.push(ghost);
    let run = start(s, "sis");
    let err = s
        .apply_plan(run, &missing, later(1))
        .unwrap_err()
        .to_string();
    assert!(err.contains("#424242"), "{err}");

    // A database-level failure (a duplicate item) after users were inserted.
    let mut duplicate = good.clone();
    duplicate.items.push(item(&good, "s3").clone());
    let err = s.apply_plan(run, &duplicate, later(1)).unwrap_err();
    assert!(matches!(err, store::StoreError::Database { .. }), "{err}");

    let mut after = db.row_counts();
    for (t, n) in &mut after {
        if *t == "runs" {
            *n -= 1;
        }
    }
    assert_eq!(after, before);
    let view_after: Vec<_> = s.list_users(&store::UserQuery::default()).unwrap();
    assert_eq!(
        view_before.iter().map(|u| &u.user).collect::<Vec<_>>(),
        view_after.iter().map(|u| &u.user).collect::<Vec<_>>()
    );
    assert_eq!(
        s.get_run(run).unwrap().unwrap().status,
        RunStatus::Running,
        "left for the caller to fail"
    );

    // The good plan still applies to the same run afterwards.
    let summary = s.apply_plan(run, &good, later(2)).unwrap();
    assert_eq!(summary.counts.created, 1);
    assert_eq!(summary.counts.updated, 1);
}

fn run_items_and_counts_describe_every_item(db: &mut TestDb) {
    let s = db.store();
    let cfg = district_config();
    let mut mem = MemoryDirectory::default();
    seed_sso(db, &mut mem);
    let (run, p, summary) = sync(s, &cfg, &district_people(), now());
    let r = s.get_run(run).unwrap().unwrap();
    assert_eq!(r.status, RunStatus::Succeeded);
    assert!(r.complete);
    assert_eq!(r.counts, p.counts);
    assert_eq!(r.counts, summary.counts);
    assert_eq!(r.finished_at, Some(now()));
    assert_eq!(r.error, None);

    let items = s.run_items(run, None, 0, 0).unwrap();
    assert_eq!(items.len(), p.items.len());
    let ids: Vec<&str> = items.iter().map(|i| i.sourced_id.as_str()).collect();
    assert_eq!(
        ids,
        ["a1", "g1", "s1", "s2", "s3", "t1", "x1"],
        "sourcedId order"
    );
    for (got, want) in items.iter().zip(&p.items) {
        assert_eq!(got.outcome, want.outcome);
        assert_eq!(got.reason_code, want.reason.code());
        assert_eq!(got.reason, want.reason.to_string());
        assert_eq!(got.changes, want.changes);
        if want.outcome != Outcome::Created {
            assert_eq!(got.user_id, want.user_id, "{}", want.sourced_id);
        }
    }
    let created = s.run_items(run, Some(Outcome::Created), 0, 0).unwrap();
    assert_eq!(
        created
            .iter()
            .map(|i| i.sourced_id.as_str())
            .collect::<Vec<_>>(),
        ["a1", "s3", "t1"]
    );
    for c in &created {
        assert_eq!(Some(c.user_id.unwrap()), Some(user_of(s, &c.sourced_id)));
    }
    let page = s.run_items(run, None, 2, 3).unwrap();
    assert_eq!(
        page.iter()
            .map(|i| i.sourced_id.as_str())
            .collect::<Vec<_>>(),
        ["s2", "s3"]
    );
    let tail = s.run_items(run, None, 0, 6).unwrap();
    assert_eq!(tail.len(), 1);
    let skipped = s.run_items(run, Some(Outcome::Skipped), 1, 1).unwrap();
    assert_eq!(skipped[0].sourced_id, "x1");
    assert!(matches!(
        p.items
            .iter()
            .find(|i| i.sourced_id == "x1")
            .unwrap()
            .reason,
        Reason::Disputed(_)
    ));
    assert!(
        skipped[0].reason.contains("link one by hand"),
        "{}",
        skipped[0].reason
    );
    assert!(
        s.run_items(RunId(run.0 + 100), None, 0, 0)
            .unwrap()
            .is_empty()
    );
}

fn a_plan_larger_than_one_chunk(db: &mut TestDb) {
    let s = db.store();
    let cfg = config("");
    let n = 10_050;
    let people: Vec<SisPerson> = (0..n)
        .map(|i| {
            person(
                &format!("p{i:05}"),
                Role::Student,
                "Kid",
                &format!("N{i}"),
                Some(&format!("kid{i}@x.org")),
            )
        })
        .collect();
    let (_, p, summary) = sync(s, &cfg, &people, now());
    assert_eq!(summary.counts.created, n as u64);
    assert_eq!(db.count("users"), n as i64);
    assert_eq!(db.count("sis_links"), n as i64);
    assert_eq!(db.count("revisions"), n as i64);
    assert_eq!(db.count("run_items"), n as i64);
    assert_eq!(db.count("field_provenance"), 0);
    let last = s.find_user("kid10049@x.org").unwrap().unwrap();
    assert_eq!(last.user.last_name.as_deref(), Some("N10049"));
    assert_eq!(last.sis.unwrap().sourced_id, "p10049");
    assert_eq!(p.items.len(), n);

    // Updates across the chunk boundary, then nothing to do.
    let mut changed = people.clone();
    for kid in changed.iter_mut().skip(9_990).take(20) {
        kid.edit(|f| f.grade = Some("06".into()));
    }
    let (_, p2, s2) = sync(s, &cfg, &changed, later(1));
    assert_eq!(s2.counts.updated, 20, "{:?}", p2.counts);
    assert_eq!(db.count("field_provenance"), 20);
    assert!(plan_store(s, &cfg, &changed).is_empty());
}

fn runs_refuse_plans_they_do_not_own(db: &mut TestDb) {
    let s = db.store();
    let cfg = config("");
    let p = plan_store(
        s,
        &cfg,
        &[person("s1", Role::Student, "Ana", "Li", Some("ana@x.org"))],
    );
    let other = start(s, "another-source");
    let err = s.apply_plan(other, &p, now()).unwrap_err().to_string();
    assert!(err.contains("another-source"), "{err}");
    let run = start(s, "sis");
    s.apply_plan(run, &p, now()).unwrap();
    let err = s.apply_plan(run, &p, now()).unwrap_err().to_string();
    assert!(err.contains("already succeeded"), "{err}");
    let err = s.apply_plan(RunId(run.0 + 1000), &p, now()).unwrap_err();
    assert!(matches!(err, store::StoreError::NotFound(_)), "{err}");
    assert_eq!(db.count("users"), 1);
}

/// The SIS gives everyone a new sourcedId at once (Infinite Campus moving a district from
/// OneRoster 1.1 to 1.2): the links move, nothing is created or deactivated, and the store
/// ends where the reference does, the old links gone.
fn a_rekey_matches_the_reference(db: &mut TestDb) {
    let s = db.store();
    let cfg = config("");
    let mut mem = MemoryDirectory::default();
    let mut people: Vec<SisPerson> = ["s1", "s2", "s3"]
        .iter()
        .zip(["Ana", "Bo", "Cy"])
        .map(|(id, name)| {
            let mut p = person(
                id,
                Role::Student,
                name,
                "Li",
                Some(&format!("{name}@x.org")),
            );
            p.edit(|f| f.identifier = Some(format!("SCH-{name}")));
            p
        })
        .collect();
    let (_, first) = crate::lifecycle::step(db, &mut mem, &cfg, &people, None, now());
    assert_eq!(first.counts.created, 3);
    let accounts: Vec<AccountId> = ["s1", "s2", "s3"]
        .iter()
        .map(|id| crate::lifecycle::linked(&mem, id))
        .collect();

    for p in &mut people {
        p.edit(|f| f.sourced_id = format!("v12-{}", f.sourced_id));
    }
    people[1].edit(|f| f.grade = Some("06".into()));
    let (run, p) = crate::lifecycle::step(db, &mut mem, &cfg, &people, None, later(60));
    assert_eq!(
        (p.counts.created, p.counts.deactivated, p.counts.rekeyed),
        (0, 0, 3),
        "{:#?}",
        p.items
    );
    assert_eq!(item(&p, "v12-s1").replaces.as_deref(), Some("s1"));
    let view = s.load_view("sis").unwrap();
    for (old, user) in ["s1", "s2", "s3"].iter().zip(&accounts) {
        assert!(view.link(old).is_none(), "{old} is gone");
        let new = view.link(&format!("v12-{old}")).unwrap();
        assert_eq!(new.user_id, *user);
        assert_eq!(
            (view.link_org(new), view.link_role(new)),
            (Some("school-1"), Some("student")),
            "the link knows the person's school and role"
        );
    }
    assert_eq!(
        db.count("sis_links"),
        3,
        "the old links were removed, not left beside the new"
    );
    let items = s.run_items(run, Some(Outcome::Linked), 0, 0).unwrap();
    assert_eq!(items.len(), 3);
    assert!(
        items.iter().all(|i| i.reason_code == "rekeyed"),
        "{items:#?}"
    );
    // The run's page filtered by reason: the rekeyed items in order, none of another code.
    let page = |reason: &str| -> Vec<String> {
        let filter = store::ItemFilter {
            outcome: None,
            reason_code: Some(reason.to_owned()),
        };
        s.run_item_page(run, &filter, 100, 0)
            .unwrap()
            .into_iter()
            .map(|n| n.item.sourced_id)
            .collect()
    };
    assert_eq!(page("rekeyed"), ["v12-s1", "v12-s2", "v12-s3"]);
    assert!(page("identity_taken").is_empty());

    // And then nothing is left to do.
    assert!(plan_on(&cfg, &s.load_view("sis").unwrap(), &people).is_empty());
}

conformance!(
    applying_matches_the_reference,
    a_rekey_matches_the_reference,
    provenance_is_kept_without_a_row_per_created_field,
    revisions_record_creation_once_then_each_field,
    an_account_that_moved_since_planning_is_not_touched,
    a_resync_with_nothing_changed_writes_nothing_but_the_run,
    a_failed_apply_leaves_everything_as_it_was,
    run_items_and_counts_describe_every_item,
    a_plan_larger_than_one_chunk,
    runs_refuse_plans_they_do_not_own,
);
