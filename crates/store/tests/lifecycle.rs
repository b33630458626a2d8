//! Accounts over time, against the reference (`MemoryDirectory::apply`): missing from
//! complete pulls (the misses counter), deactivated by absence and by `tobedeleted`, an
//! agent protected, reactivated within the grace period with the access it had, a new
//! account (and the link moved to it) after the grace period, access following the
//! settings — each step planned on both, applied on both, and compared whole.

use jiff::Timestamp;
use oneroster::{Role, Status};
use rostersync_core::directory::{Access, AccountId};
use rostersync_core::memory::MemoryDirectory;
use rostersync_core::plan::{Outcome, Plan, PlanItem};
use rostersync_core::settings::Config;
use rostersync_core::sis::SisPerson;
use store::RunId;

use crate::harness::{
    TestDb, assert_same_directory, assert_same_roster, config, conformance, days, person,
    plan_full, start,
};

/// Plans on the store and on the reference (the plans must be equal), applies both, and
/// compares them.
pub fn step(
    db: &TestDb,
    mem: &mut MemoryDirectory,
    cfg: &Config,
    people: &[SisPerson],
    roster: Option<&rostersync_core::roster::Roster>,
    at: Timestamp,
) -> (RunId, Plan) {
    let s = db.store();
    let p = plan_full(cfg, &s.load_view("sis").unwrap(), people, roster, at);
    assert_eq!(
        p,
        plan_full(cfg, &mem.view("sis"), people, roster, at),
        "the store's view plans like the reference's"
    );
    let run = start(s, "sis");
    let summary = s.apply_plan(run, &p, at).unwrap();
    assert_eq!(summary.conflicts, 0);
    mem.apply(&p, at);
    assert_same_directory(s, mem, "sis");
    assert_same_roster(s, mem, "sis");
    db.assert_same_aliases(mem);
    (run, p)
}

pub fn item<'a>(p: &'a Plan, sourced_id: &str) -> &'a PlanItem {
    p.items
        .iter()
        .find(|i| i.sourced_id == sourced_id)
        .unwrap_or_else(|| panic!("no item for {sourced_id}: {:#?}", p.items))
}

pub fn linked(mem: &MemoryDirectory, sourced_id: &str) -> AccountId {
    mem.links[&("sis".to_owned(), sourced_id.to_owned())].user_id
}

fn people() -> Vec<SisPerson> {
    vec![
        person("g1", Role::Parent, "Pat", "Li", Some("pat@x.org")),
        person("s1", Role::Student, "Ana", "Li", Some("ana@x.org")),
        person("s2", Role::Student, "Bo", "Ek", Some("bo@x.org")),
        person("s3", Role::Student, "Cy", "Do", Some("cy@x.org")),
        person("t1", Role::Teacher, "Tea", "Cher", Some("tea@x.org")),
    ]
}

fn without(people: &[SisPerson], gone: &[&str]) -> Vec<SisPerson> {
    people
        .iter()
        .filter(|p| !gone.contains(&p.sourced_id()))
        .cloned()
        .collect()
}

fn deactivation_and_return_match_the_reference(db: &mut TestDb) {
    let s = db.store();
    let cfg = config(
        "[source.import]\nother_users = true\ndeactivate_after_misses = 2\nrelink_grace_days = 30\n",
    );
    let mut mem = MemoryDirectory::default();
    let everyone = people();

    let (_, p) = step(db, &mut mem, &cfg, &everyone, None, days(0));
    assert_eq!(p.counts.created, 5);
    let (ana, bo, pat, tea) = (
        linked(&mem, "s1"),
        linked(&mem, "s2"),
        linked(&mem, "g1"),
        linked(&mem, "t1"),
    );
    assert_eq!(
        mem.users[&pat].access,
        Access::NoAccess,
        "no guardian logins"
    );
    // An agent, as an admin would make one.
    db.exec(&format!(
        "UPDATE users SET access = 'agent' WHERE id = {tea}"
    ));
    mem.users.get_mut(&tea).unwrap().access = Access::Agent;

    // Missing once: counted, not deactivated.
    let (_, p) = step(
        db,
        &mut mem,
        &cfg,
        &without(&everyone, &["s1", "t1"]),
        None,
        days(1),
    );
    assert_eq!(item(&p, "s1").reason.code(), "missing");
    assert_eq!(item(&p, "s1").outcome, Outcome::Unchanged);
    assert_eq!(s.load_view("sis").unwrap().link("s1").unwrap().misses, 1);

    // Missing twice: deactivated; the agent is not. Bo is `tobedeleted`.
    let mut leaving = without(&everyone, &["s1", "t1"]);
    let b = leaving.iter_mut().find(|p| p.sourced_id() == "s2").unwrap();
    b.edit(|f| {
        f.status = Status::ToBeDeleted;
        f.enabled = false;
    });
    let (run, p) = step(db, &mut mem, &cfg, &leaving, None, days(2));
    assert_eq!(item(&p, "s1").outcome, Outcome::Deactivated);
    assert_eq!(item(&p, "s1").reason.code(), "absent_from_complete_pull");
    assert_eq!(item(&p, "s2").reason.code(), "inactive_in_sis");
    assert_eq!(item(&p, "t1").reason.code(), "protected_access");
    assert_eq!(p.counts.deactivated, 2);
    let view = s.load_view("sis").unwrap();
    let (a, l) = (view.user(ana).unwrap(), view.link("s1").unwrap());
    assert!(!a.active);
    assert_eq!(a.access, Access::NoAccess);
    assert_eq!(
        (l.misses, l.deactivated_at(), l.previous_access),
        (2, Some(days(2)), Some(Access::Requestor))
    );
    assert!(view.user(tea).unwrap().active);
    assert_eq!(view.link("t1").unwrap().misses, 2);
    let revs = s.user_revisions(ana).unwrap();
    let last: Vec<(&str, Option<&str>, Option<&str>)> = revs
        .iter()
        .skip(1)
        .map(|r| (r.field.as_str(), r.old.as_deref(), r.new.as_deref()))
        .collect();
    assert_eq!(
        last,
        [
            ("active", Some("true"), Some("false")),
            ("access", Some("requestor"), Some("no-access"))
        ]
    );
    assert!(
        revs[1..]
            .iter()
            .all(|r| r.run == Some(run) && r.writer == "source:sis")
    );

    // Ana is back within the grace period: the same account, its access restored.
    let mut back = leaving.clone();
    back.extend(without(&everyone, &["g1", "s2", "s3", "t1"]));
    let (_, p) = step(db, &mut mem, &cfg, &back, None, days(12));
    assert_eq!(item(&p, "s1").outcome, Outcome::Reactivated);
    assert_eq!(item(&p, "s1").user_id, Some(ana));
    let view = s.load_view("sis").unwrap();
    assert!(view.user(ana).unwrap().active);
    assert_eq!(view.user(ana).unwrap().access, Access::Requestor);
    assert_eq!(view.link("s1").unwrap().deactivated_at(), None);
    assert_eq!(
        s.user_revisions(ana)
            .unwrap()
            .last()
            .map(|r| r.field.clone()),
        Some("access".into())
    );

    // Bo is back after the grace period: a new account; the link moves to it, and was
    // linked now. Guardian logins turned on: Pat gets requestor access.
    let cfg2 = config(
        "[source.import]\nother_users = true\ndeactivate_after_misses = 2\nrelink_grace_days = 30\n\
         [source.features]\nguardian_logins = true\n",
    );
    let mut everyone = everyone;
    everyone[1].edit(|f| f.email = Some("ana.li@x.org".into()));
    let (_, p) = step(db, &mut mem, &cfg2, &everyone, None, days(40));
    assert!(
        mem.aliases
            .iter()
            .any(|(u, _, v)| *u == ana && v.as_str() == "ana@x.org"),
        "the old email is kept as an alias"
    );
    assert_eq!(item(&p, "s2").outcome, Outcome::Created);
    assert_eq!(item(&p, "s2").reason.code(), "returned_after_grace");
    let bo2 = linked(&mem, "s2");
    assert_ne!(bo2, bo);
    let view = s.load_view("sis").unwrap();
    assert_eq!(view.link("s2").unwrap().user_id, bo2);
    let links = s.stored_links("sis").unwrap();
    let s2 = links.iter().find(|l| l.sourced_id == "s2").unwrap();
    assert_eq!(s2.linked_at, days(40));
    assert_eq!(
        view.linked_sourced_id(bo),
        None,
        "the old account keeps no link"
    );
    assert!(!view.user(bo).unwrap().active);
    assert!(
        view.refused("anyone", bo),
        "the retired account is never matched again"
    );
    assert_eq!(
        item(&p, "g1").access,
        Some((Access::NoAccess, Access::Requestor))
    );
    assert_eq!(view.user(pat).unwrap().access, Access::Requestor);
    assert_eq!(
        item(&p, "t1").outcome,
        Outcome::Unchanged,
        "back: misses reset"
    );
    assert_eq!(view.link("t1").unwrap().misses, 0);

    // And then nothing is left to do.
    let p = plan_full(
        &cfg2,
        &s.load_view("sis").unwrap(),
        &everyone,
        None,
        days(41),
    );
    assert!(p.is_empty(), "{:#?}", p.items);
}

fn an_admin_deactivation_is_not_undone(db: &mut TestDb) {
    let s = db.store();
    let cfg = config("");
    let mut mem = MemoryDirectory::default();
    let everyone = people();
    step(db, &mut mem, &cfg, &everyone, None, days(0));
    let cy = linked(&mem, "s3");
    db.exec(&format!(
        "UPDATE users SET active = FALSE, revision = revision + 1 WHERE id = {cy}"
    ));
    let u = mem.users.get_mut(&cy).unwrap();
    u.active = false;
    u.revision += 1;
    let (_, p) = step(db, &mut mem, &cfg, &everyone, None, days(1));
    assert!(
        p.items.iter().all(|i| i.active.is_none()),
        "only what this source deactivated comes back: {:#?}",
        p.items
    );
    assert!(!s.load_view("sis").unwrap().user(cy).unwrap().active);
}

conformance!(
    deactivation_and_return_match_the_reference,
    an_admin_deactivation_is_not_undone,
);
