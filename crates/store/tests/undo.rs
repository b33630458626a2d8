//! Undo: a run reverted from its revisions and items restores the directory exactly (but
//! for the accounts it created, which stay inactive and unlinked), and refuses, with the
//! whole list, when later changes touch what it would restore.

use std::collections::BTreeMap;

use jiff::Timestamp;
use oneroster::{Role, Status};
use rostersync_core::directory::{Access, Account, AccountId};
use rostersync_core::plan::Outcome;
use rostersync_core::sis::SisPerson;
use store::{RunId, RunStatus, SisRef, Store, StoreError};

use crate::harness::{
    TestDb, config, conformance, later, now, person, plan_store, sso_row, start, sync,
};
use crate::lifecycle::item;

fn id_of(s: &Store, email: &str) -> AccountId {
    s.find_user(email).unwrap().unwrap().user.id
}

fn conflict(e: StoreError) -> String {
    match e {
        StoreError::Conflict(m) => m,
        StoreError::Conflicts { message, conflicts } => {
            assert!(!conflicts.is_empty(), "{message}");
            for c in &conflicts {
                assert!(message.contains(c.as_str()), "{c} is in {message}");
            }
            message
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
}

/// A link as an export shows it: who, how, since when, its deactivation state. (The sync's
/// bookkeeping — record hash, synced revision — is not part of it: undo leaves the next
/// sync to look at the people again.)
type LinkLine = (
    String,
    AccountId,
    String,
    Timestamp,
    u32,
    Option<Timestamp>,
    Option<Access>,
);

/// Every account (every field, provenance, active, access; not the revision counter) with
/// its SIS link, and every link of the source.
type Export = (
    BTreeMap<AccountId, (Account, Option<SisRef>)>,
    Vec<LinkLine>,
);

fn export(s: &Store) -> Export {
    let view = s.load_view("sis").unwrap();
    let sis: BTreeMap<AccountId, Option<SisRef>> = s
        .list_users(&store::UserQuery::default())
        .unwrap()
        .into_iter()
        .map(|u| (u.user.id, u.sis))
        .collect();
    let users = view
        .users()
        .map(|u| {
            let mut u = u.clone();
            u.revision = 0;
            (u.id, (u.clone(), sis[&u.id].clone()))
        })
        .collect();
    let mut links: Vec<LinkLine> = (s.stored_links("sis").unwrap().into_iter())
        .map(|l| {
            (
                l.sourced_id.clone(),
                l.user_id,
                l.rule.as_str().to_owned(),
                l.linked_at,
                l.misses,
                l.deactivated_at,
                l.previous_access,
            )
        })
        .collect();
    links.sort_by(|a, b| a.0.cmp(&b.0));
    (users, links)
}

fn first_day() -> Vec<SisPerson> {
    let mut di = person("s5", Role::Student, "Di", "Fu", Some("di@x.org"));
    di.edit(|f| f.identifier = Some("SCH-5".into()));
    vec![
        person("s1", Role::Student, "Ana", "Li", Some("ana@x.org")),
        person("s2", Role::Student, "Bo", "Ek", Some("bo@x.org")),
        person("s3", Role::Student, "Cy", "Do", Some("cy@x.org")),
        di,
    ]
}

/// The second day: Ana renamed, Bo `tobedeleted`, Cy gone, Kim new in the SIS (she has a
/// sign-on account), Ed new, Di under a new sourcedId.
fn second_day() -> Vec<SisPerson> {
    let mut people = first_day();
    people[0].edit(|f| {
        f.given_name = "Anna".into();
        f.grade = Some("06".into());
    });
    people[1].edit(|f| {
        f.status = Status::ToBeDeleted;
        f.enabled = false;
    });
    people.remove(2);
    people[2].edit(|f| f.sourced_id = "v12-s5".into());
    people.push(person("s4", Role::Student, "Kim", "Lee", Some("kim@x.org")));
    people.push(person("s6", Role::Student, "Ed", "Go", Some("ed@x.org")));
    people
}

fn undo_restores_the_directory_exactly(db: &mut TestDb) {
    let s = db.store();
    let cfg = config("");
    s.import_accounts(
        &[
            sso_row("kim@x.org", "Kim", "Lee"),
            sso_row("zed@x.org", "Zed", "Ax"),
        ],
        "google",
        now(),
    )
    .unwrap();
    sync(s, &cfg, &first_day(), now());
    let before = export(s);

    let (run, p, _) = sync(s, &cfg, &second_day(), later(60));
    assert_eq!(item(&p, "s1").outcome, Outcome::Updated);
    assert_eq!(item(&p, "s2").outcome, Outcome::Deactivated);
    assert_eq!(item(&p, "s3").outcome, Outcome::Deactivated);
    assert_eq!(item(&p, "s4").outcome, Outcome::Linked);
    assert_eq!(item(&p, "v12-s5").reason.code(), "rekeyed");
    assert_eq!(item(&p, "s6").outcome, Outcome::Created);
    let changed = export(s);
    assert_ne!(changed, before);
    let (ana, bo, cy, kim, ed) = (
        id_of(s, "ana@x.org"),
        id_of(s, "bo@x.org"),
        id_of(s, "cy@x.org"),
        id_of(s, "kim@x.org"),
        id_of(s, "ed@x.org"),
    );

    let counts = db.row_counts();
    let preview = s.undo_run(run, "alice", later(61), true).unwrap();
    assert!(preview.dry_run);
    assert_eq!(export(s), changed, "a dry run changes nothing");
    assert_eq!(db.row_counts(), counts);
    assert_eq!(
        s.get_run(run).unwrap().unwrap().status,
        RunStatus::Succeeded
    );

    let undone = s.undo_run(run, "alice", later(61), false).unwrap();
    assert_eq!(
        undone,
        store::UndoSummary {
            dry_run: false,
            ..preview
        }
    );
    assert_eq!(undone.run, run);
    let mut reactivated = vec![bo, cy];
    reactivated.sort_unstable();
    assert_eq!(undone.reactivated, reactivated);
    assert_eq!(undone.retired, [ed]);
    assert_eq!(undone.links_removed, ["sis:s4", "sis:s6", "sis:v12-s5"]);
    assert_eq!(undone.links_restored, ["sis:s2", "sis:s3", "sis:s5"]);
    assert!(undone.fields_restored >= 3, "{undone:?}");

    let (mut users, links) = export(s);
    let (created, link) = users.remove(&ed).unwrap();
    assert_eq!(link, None, "the account the run created is unlinked");
    assert!(!created.active);
    assert_eq!(created.access, Access::NoAccess);
    assert_eq!(
        created.first_name.as_deref(),
        Some("Ed"),
        "kept, never deleted"
    );
    assert_eq!(users, before.0, "every other account exactly as before");
    assert_eq!(links, before.1, "every link as before");

    let r = s.get_run(run).unwrap().unwrap();
    assert_eq!(r.status, RunStatus::Undone);
    assert!(
        r.note.as_deref().unwrap().contains("undone by alice"),
        "{r:?}"
    );
    let audit = &s.audit_log(1).unwrap()[0];
    assert_eq!(
        (audit.actor.as_str(), audit.action.as_str()),
        ("alice", "run.undo")
    );
    let last = s.user_revisions(ana).unwrap().pop().unwrap();
    assert_eq!(
        (
            last.field.as_str(),
            last.old.as_deref(),
            last.new.as_deref(),
            last.writer.as_str(),
            last.run
        ),
        ("grade", Some("06"), Some("05"), "admin:alice", None)
    );
    assert!(
        s.user_revisions(kim)
            .unwrap()
            .iter()
            .any(|r| r.field == "sis_link"
                && r.old.as_deref() == Some("sis:s4")
                && r.new.is_none())
    );

    let err = conflict(s.undo_run(run, "alice", later(62), false).unwrap_err());
    assert!(err.contains("undone already"), "{err}");

    // The SIS still says what it said: the next sync would do it again.
    let again = plan_store(s, &cfg, &second_day());
    assert_eq!(item(&again, "s1").outcome, Outcome::Updated);
}

fn undo_refuses_with_the_list_of_conflicts(db: &mut TestDb) {
    let s = db.store();
    let cfg = config("");
    s.save_config(&cfg, &[], "owner", now()).unwrap();
    s.import_accounts(
        &[
            sso_row("kim@x.org", "Kim", "Lee"),
            sso_row("cy.home@x.org", "Cy", "Do"),
        ],
        "google",
        now(),
    )
    .unwrap();
    let mut people = vec![
        person("s1", Role::Student, "Ana", "Li", Some("ana@x.org")),
        person("s2", Role::Student, "Bo", "Ek", Some("bo@x.org")),
        person("s3", Role::Student, "Cy", "Do", Some("cy@x.org")),
    ];
    sync(s, &cfg, &people, now());
    people[0].edit(|f| f.given_name = "Anna".into());
    people[1].edit(|f| f.grade = Some("06".into()));
    people[2].edit(|f| f.grade = Some("06".into()));
    people.push(person("s4", Role::Student, "Kim", "Lee", Some("kim@x.org")));
    let (second, _, _) = sync(s, &cfg, &people, later(1));
    people[0].edit(|f| f.given_name = "Annie".into());
    let (third, _, _) = sync(s, &cfg, &people, later(2));
    let (ana, bo, cy, kim) = (
        id_of(s, "ana@x.org"),
        id_of(s, "bo@x.org"),
        id_of(s, "cy@x.org"),
        id_of(s, "kim@x.org"),
    );
    // Not a conflict: a field the run did not change.
    s.set_access(bo, Access::Agent, "alice", later(3)).unwrap();
    // Conflicts: Cy's account merged away, Kim's link removed by hand.
    let home = id_of(s, "cy.home@x.org");
    s.merge_accounts(cy, home, "alice", later(4), false)
        .unwrap();
    s.unlink_user(kim, None, "bob", later(5)).unwrap();

    let before = db.row_counts();
    let err = conflict(s.undo_run(second, "alice", later(6), false).unwrap_err());
    assert!(
        err.starts_with(&format!("run {second} cannot be undone: later changes")),
        "{err}"
    );
    for part in [
        format!("account #{ana} first_name was changed again by run {third}"),
        format!("account #{cy} was merged into account #{home}"),
        format!("SIS person s4 of source sis is no longer linked to account #{kim}"),
        format!("account #{kim}'s SIS link was changed again by admin:bob at"),
    ] {
        assert!(err.contains(&part), "missing «{part}» in: {err}");
    }
    assert!(
        !err.contains(&format!("#{bo}")),
        "Bo's access is no conflict: {err}"
    );
    assert!(err.contains("Undo the later runs first"), "{err}");
    assert_eq!(db.row_counts(), before, "a refusal writes nothing");
    let err = conflict(s.undo_run(second, "alice", later(6), true).unwrap_err());
    assert!(
        err.contains("first_name was changed again"),
        "a dry run refuses alike: {err}"
    );

    // The later run undone first, the earlier one's name conflict is gone (the others stay).
    s.undo_run(third, "alice", later(7), false).unwrap();
    let err = conflict(s.undo_run(second, "alice", later(8), false).unwrap_err());
    assert!(!err.contains("first_name"), "{err}");
    assert!(err.contains("was merged into"), "{err}");

    // Only an applied run can be undone.
    let held = start(s, "sis");
    let p = plan_store(s, &cfg, &people);
    s.hold_run(held, p.clone(), &[], &[], later(9)).unwrap();
    let err = conflict(s.undo_run(held, "alice", later(9), false).unwrap_err());
    assert!(err.contains("nothing of it was applied"), "{err}");
    assert!(matches!(
        s.undo_run(RunId(held.0 + 100), "alice", later(9), false)
            .unwrap_err(),
        StoreError::NotFound(_)
    ));
}

/// A person back after the grace period got a new account and took the link from the old
/// one: undo retires the new account and gives the old one its link back.
fn undo_gives_a_returning_person_their_old_link_back(db: &mut TestDb) {
    let s = db.store();
    let cfg = config("[source.import]\nrelink_grace_days = 30\n");
    // Planned and applied on the day (the grace period counts days).
    let sync_on = |people: &[SisPerson], day: i64| {
        let at = crate::harness::days(day);
        let p = crate::harness::plan_full(&cfg, &s.load_view("sis").unwrap(), people, None, at);
        let run = start(s, "sis");
        s.apply_plan(run, &p, at).unwrap();
        (run, p)
    };
    let ana = person("s1", Role::Student, "Ana", "Li", Some("ana@x.org"));
    sync_on(std::slice::from_ref(&ana), 0);
    let old = id_of(s, "ana@x.org");
    sync_on(&[], 1);
    let before = export(s);
    assert!(!before.0[&old].0.active);

    let mut back = ana.clone();
    back.edit(|f| f.email = Some("ana.li@x.org".into()));
    let (run, p) = sync_on(&[back], 100);
    assert_eq!(item(&p, "s1").reason.code(), "returned_after_grace");
    let new = id_of(s, "ana.li@x.org");
    assert!(
        s.load_view("sis").unwrap().refused("s1", old),
        "the old account is retired"
    );

    let undone = s
        .undo_run(run, "alice", crate::harness::days(101), false)
        .unwrap();
    assert_eq!(undone.retired, [new]);
    assert_eq!(undone.links_restored, ["sis:s1"]);
    let (mut users, links) = export(s);
    let (retired, link) = users.remove(&new).unwrap();
    assert_eq!((retired.active, link), (false, None));
    assert_eq!(users, before.0);
    assert_eq!(
        links, before.1,
        "the old account's link, deactivation state and all"
    );
    let view = s.load_view("sis").unwrap();
    assert!(!view.refused("s1", old), "no longer retired");
    assert!(view.link("s1").unwrap().deactivated_at().is_some());
    let last = s.user_revisions(old).unwrap().pop().unwrap();
    assert_eq!(
        (last.field.as_str(), last.new.as_deref()),
        ("sis_link", Some("sis:s1"))
    );
}

conformance!(
    undo_restores_the_directory_exactly,
    undo_gives_a_returning_person_their_old_link_back,
    undo_refuses_with_the_list_of_conflicts,
);
