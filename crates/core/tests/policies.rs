//! Planner scenarios for the district's policies: deactivation, reactivation, access
//! levels, guardians, locations, homerooms, groups, relationships, refusals.

use jiff::Timestamp;
use oneroster::{Role, Status};
use rostersync_core::directory::*;
use rostersync_core::memory::MemoryDirectory;
use rostersync_core::plan::*;
use rostersync_core::planner::plan;
use rostersync_core::roster::*;
use rostersync_core::settings::*;
use rostersync_core::sis::{PersonFields, SisPerson};

use crate::planner::{config, now, person};

struct World {
    cfg: Config,
    dir: MemoryDirectory,
    now: Timestamp,
}

impl World {
    fn new(extra: &str) -> World {
        World {
            cfg: config(extra),
            dir: MemoryDirectory::default(),
            now: now(),
        }
    }

    fn plan(
        &self,
        kind: SyncKind,
        complete: bool,
        people: &[SisPerson],
        roster: Option<&Roster>,
    ) -> Plan {
        plan(
            &PlanInput {
                config: &self.cfg,
                source: &self.cfg.sources[0],
                kind,
                complete,
                people,
                roster,
                now: self.now,
            },
            &self.dir.view("sis"),
        )
    }

    /// A full, complete sync, applied.
    fn sync(&mut self, people: &[SisPerson]) -> Plan {
        let p = self.plan(SyncKind::Full, true, people, None);
        self.dir.apply(&p, self.now);
        p
    }

    fn user(&self, sourced_id: &str) -> &Account {
        let link = &self.dir.links[&("sis".to_owned(), sourced_id.to_owned())];
        &self.dir.users[&link.user_id]
    }
}

fn advance(w: &mut World, days: i64) {
    w.now = Timestamp::from_second(w.now.as_second() + days * 86_400).unwrap();
}

fn item<'a>(p: &'a Plan, sourced_id: &str) -> &'a PlanItem {
    p.items
        .iter()
        .find(|i| i.sourced_id == sourced_id)
        .unwrap_or_else(|| panic!("no item {sourced_id}: {:#?}", p.items))
}

fn withdrawn(p: &SisPerson) -> SisPerson {
    SisPerson::new(PersonFields {
        status: Status::ToBeDeleted,
        ..p.fields()
    })
}

fn ana() -> SisPerson {
    person("s1", Role::Student, "Ana", "Li", Some("ana@x.org"))
}

fn bo() -> SisPerson {
    person("s2", Role::Student, "Bo", "Ek", Some("bo@x.org"))
}

#[test]
fn tobedeleted_deactivates_never_deletes() {
    let mut w = World::new("");
    w.sync(&[ana(), bo()]);
    let p = w.sync(&[withdrawn(&ana()), bo()]);
    let i = item(&p, "s1");
    assert_eq!(i.outcome, Outcome::Deactivated);
    assert_eq!(i.reason.to_string(), "tobedeleted in the SIS");
    assert_eq!(i.active, Some((true, false)));
    assert_eq!(i.access, Some((Access::Requestor, Access::NoAccess)));
    assert_eq!(p.counts.deactivated, 1);
    let u = w.user("s1");
    assert!(!u.active);
    assert_eq!(u.access, Access::NoAccess);
    assert_eq!(w.dir.users.len(), 2, "deactivated, not deleted");
    assert!(
        w.plan(SyncKind::Full, true, &[withdrawn(&ana()), bo()], None)
            .is_empty(),
        "stays put"
    );

    let disabled = SisPerson::new(PersonFields {
        enabled: false,
        ..bo().fields()
    });
    let p = w.sync(&[withdrawn(&ana()), disabled]);
    assert_eq!(
        item(&p, "s2").reason.to_string(),
        "disabled in the SIS (enabledUser = false)"
    );
}

#[test]
fn deactivate_users_off_leaves_accounts_active() {
    let mut w = World::new("[source.import]\ndeactivate_users = false\n");
    w.sync(&[ana(), bo()]);
    let p = w.sync(&[withdrawn(&ana())]);
    assert_eq!(p.counts.deactivated, 0);
    assert!(w.user("s1").active);
    assert!(w.user("s2").active);
}

#[test]
fn absence_deactivates_only_after_complete_full_pulls() {
    let mut w = World::new("[source.import]\ndeactivate_after_misses = 2\n");
    w.sync(&[ana(), bo()]);

    // An incomplete pull or a delta never deactivates by absence.
    let p = w.plan(SyncKind::Full, false, &[bo()], None);
    assert!(
        p.items.iter().all(|i| i.sourced_id != "s1"),
        "{:#?}",
        p.items
    );
    let p = w.plan(SyncKind::Delta, true, &[bo()], None);
    assert!(p.items.iter().all(|i| i.sourced_id != "s1"));

    let first = w.sync(&[bo()]);
    let i = item(&first, "s1");
    assert_eq!(i.outcome, Outcome::Unchanged);
    assert_eq!(
        i.reason.to_string(),
        "missing from a complete full pull (1 of 2 before deactivation)"
    );
    assert!(w.user("s1").active);

    let second = w.sync(&[bo()]);
    let i = item(&second, "s1");
    assert_eq!(i.outcome, Outcome::Deactivated);
    assert_eq!(i.reason, Reason::AbsentFromCompletePull { misses: 2 });
    assert!(!w.user("s1").active);
    assert_eq!(second.counts.deactivated, 1);

    // Missing again changes nothing more.
    assert!(w.plan(SyncKind::Full, true, &[bo()], None).is_empty());
}

#[test]
fn being_present_again_resets_the_miss_count() {
    let mut w = World::new("[source.import]\ndeactivate_after_misses = 2\n");
    w.sync(&[ana(), bo()]);
    w.sync(&[bo()]);
    let p = w.sync(&[ana(), bo()]);
    assert_eq!(item(&p, "s1").link.as_ref().unwrap().misses, 0);
    w.sync(&[bo()]);
    assert!(
        w.user("s1").active,
        "one miss after the reset is not two in a row"
    );
}

#[test]
fn a_returning_student_is_reactivated_not_duplicated() {
    let mut w = World::new("");
    w.sync(&[ana(), bo()]);
    w.sync(&[bo()]);
    assert!(!w.user("s1").active);
    advance(&mut w, 40);
    let p = w.sync(&[ana(), bo()]);
    let i = item(&p, "s1");
    assert_eq!(i.outcome, Outcome::Reactivated);
    assert_eq!(i.reason, Reason::Returned { days: 40 });
    assert_eq!(i.access, Some((Access::NoAccess, Access::Requestor)));
    assert_eq!(p.counts.created, 0);
    assert_eq!(p.counts.reactivated, 1);
    assert!(w.user("s1").active);
    assert_eq!(w.dir.users.len(), 2);
    assert!(
        w.plan(SyncKind::Full, true, &[ana(), bo()], None)
            .is_empty()
    );
}

#[test]
fn after_the_grace_window_the_same_person_gets_a_new_account() {
    let mut w = World::new("[source.import]\nrelink_grace_days = 30\n");
    w.sync(&[ana()]);
    let old = w.user("s1").id;
    w.sync(&[]);
    advance(&mut w, 31);
    let p = w.sync(&[ana()]);
    let i = item(&p, "s1");
    assert_eq!(i.outcome, Outcome::Created);
    assert_eq!(
        i.reason,
        Reason::ReturnedAfterGrace {
            old_user: old,
            days: 31
        }
    );
    let new = w.user("s1");
    assert_ne!(new.id, old);
    assert!(new.active);
    assert_eq!(
        new.email.as_deref(),
        Some("ana@x.org"),
        "the old account's email may be reused"
    );
    assert!(!w.dir.users[&old].active, "the old account stays inactive");
    assert!(w.plan(SyncKind::Full, true, &[ana()], None).is_empty());

    // The retired account is never matched again automatically, not even by someone
    // else with the same email.
    let mut namesake = ana();
    namesake.edit(|f| f.sourced_id = "s9".into());
    let p = w.plan(SyncKind::Full, true, &[ana(), namesake], None);
    assert_eq!(
        item(&p, "s9").reason.code(),
        "linked_to_another",
        "{:#?}",
        p.items
    );
}

#[test]
fn an_agent_keeps_their_access_unless_downgrades_are_allowed() {
    let mut w = World::new("");
    w.sync(&[ana()]);
    let id = w.user("s1").id;
    let u = w.dir.users.get_mut(&id).unwrap();
    u.access = Access::Agent;
    u.revision += 1;
    let p = w.plan(SyncKind::Full, true, &[ana()], None);
    assert!(
        p.items
            .iter()
            .all(|i| i.access.is_none() && i.changes.is_empty()),
        "the SIS saying requestor does not demote an agent: {:#?}",
        p.items
    );

    let p = w.plan(SyncKind::Full, true, &[withdrawn(&ana())], None);
    let i = item(&p, "s1");
    assert_eq!(i.outcome, Outcome::Skipped);
    assert_eq!(
        i.reason,
        Reason::ProtectedAccess {
            access: Access::Agent
        }
    );
    let p = w.plan(SyncKind::Full, true, &[], None);
    assert_eq!(item(&p, "s1").reason.code(), "protected_access");

    w.cfg.sources[0].import.allow_role_downgrades = true;
    let p = w.plan(SyncKind::Full, true, &[ana()], None);
    assert_eq!(
        item(&p, "s1").access,
        Some((Access::Agent, Access::Requestor))
    );
    let p = w.plan(SyncKind::Full, true, &[withdrawn(&ana())], None);
    assert_eq!(item(&p, "s1").outcome, Outcome::Deactivated);
}

#[test]
fn type_changes_follow_the_sis() {
    let mut w = World::new("");
    w.sync(&[ana()]);
    let mut staff = ana();
    staff.edit(|f| f.role = Some(Role::Aide));
    let p = w.sync(&[staff]);
    let i = item(&p, "s1");
    assert!(
        i.changes
            .iter()
            .any(|c| c.field == Field::Type && c.new == Some("staff"))
    );
    assert_eq!(w.user("s1").user_type, UserType::Staff);
}

#[test]
fn guardians_get_access_only_with_guardian_logins() {
    let parent = person("g1", Role::Parent, "Pat", "Li", Some("pat@x.org"));
    let mut w = World::new("[source.import]\nother_users = true\n");
    let p = w.sync(std::slice::from_ref(&parent));
    assert_eq!(
        item(&p, "g1").new_account.as_ref().unwrap().access,
        Access::NoAccess
    );
    w.cfg.sources[0].features.guardian_logins = true;
    let p = w.sync(std::slice::from_ref(&parent));
    let i = item(&p, "g1");
    assert_eq!(i.access, Some((Access::NoAccess, Access::Requestor)));
    assert_eq!(i.reason, Reason::AccessChanged);
    assert_eq!(w.user("g1").access, Access::Requestor);
}

#[test]
fn an_sso_account_of_someone_who_left_is_linked_and_deactivated() {
    let mut w = World::new("");
    let mut u = Account::blank(AccountId(0));
    u.email = Some("ana@x.org".into());
    u.provider = Some("google".into());
    let id = w.dir.add_user(u);
    let p = w.sync(&[withdrawn(&ana())]);
    let i = item(&p, "s1");
    assert_eq!(i.user_id, Some(id));
    assert_eq!(i.outcome, Outcome::Deactivated);
    assert!(i.link.as_ref().unwrap().is_new);
    // Counted once, under its outcome: linked and deactivated in one step is a deactivation.
    assert_eq!(
        (p.counts.linked, p.counts.deactivated, p.counts.created),
        (0, 1, 0)
    );
    assert!(!w.dir.users[&id].active);
}

#[test]
fn locations_come_from_the_mapping_or_the_default() {
    let mut w = World::new(
        "[source.locations]\ndefault = \"District Office\"\nmap = { \"school-1\" = \"Maple High\" }\n",
    );
    let mut other = bo();
    other.edit(|f| {
        f.primary_org = Some("school-9".into());
        f.orgs = vec!["school-9".into()];
    });
    w.sync(&[ana(), other]);
    assert_eq!(w.user("s1").location.as_deref(), Some("Maple High"));
    assert_eq!(w.user("s2").location.as_deref(), Some("District Office"));

    let mut w = World::new("");
    let mut u = Account::blank(AccountId(0));
    u.email = Some("ana@x.org".into());
    u.location = Some("Set by hand".into());
    w.dir.add_user(u);
    w.sync(&[ana()]);
    assert_eq!(
        w.user("s1").location.as_deref(),
        Some("Set by hand"),
        "no mapping: locations are not managed"
    );
}

fn small_roster() -> Roster {
    let class = |id: &str, title: &str, kind: ClassKind, room: &str| ClassInfo {
        sourced_id: id.into(),
        title: title.into(),
        kind,
        location: Some(room.into()),
        school: Some("school-1".into()),
        course: Some(format!("{title} course")),
    };
    Roster {
        orgs: vec![OrgInfo {
            sourced_id: "school-1".into(),
            name: "Maple High".into(),
            is_school: true,
        }],
        classes: vec![
            class("c-hr", "Homeroom 9A", ClassKind::Homeroom, "Room 212"),
            class("c-alg", "Algebra I", ClassKind::Scheduled, "Room 118"),
        ],
        // people: 0 = ana (s1), 1 = bo (s2), 2 = teacher (t1)
        enrollments: vec![
            Enroll {
                person: 0,
                class: 0,
                role: EnrollRole::Student,
            },
            Enroll {
                person: 0,
                class: 1,
                role: EnrollRole::Student,
            },
            Enroll {
                person: 1,
                class: 1,
                role: EnrollRole::Student,
            },
            Enroll {
                person: 2,
                class: 0,
                role: EnrollRole::Teacher,
            },
        ],
        sessions: vec![SessionInfo {
            sourced_id: "y1".into(),
            title: "2026-2027".into(),
            kind: "schoolYear".into(),
            start: None,
            end: None,
            parent: None,
        }],
        has_enrollments: true,
    }
}

fn teacher() -> SisPerson {
    person("t1", Role::Teacher, "Tam", "Ng", Some("tam@x.org"))
}

/// Groups are hashed from their members' indexes before any member is copied; the hash
/// is the group's content hash, and members come sorted and once each.
#[test]
fn groups_are_hashed_before_they_are_copied() {
    let people = [bo(), ana(), teacher()];
    let mut roster = small_roster();
    // Enrollments index `people`: here 0 = bo (s2), 1 = ana (s1); Bo twice in algebra.
    for e in &mut roster.enrollments {
        e.person = [1, 0, 2][e.person as usize];
    }
    roster.enrollments.push(Enroll {
        person: 0,
        class: 1,
        role: EnrollRole::Student,
    });
    let order = id_order(&people);
    let mut offered = Vec::new();
    let groups = groups_where(&roster, &people, &order, &[true; 3], |key, hash| {
        offered.push((key.to_owned(), hash));
        true
    });
    assert_eq!(groups.len(), 4);
    for g in &groups {
        assert!(
            offered.contains(&(g.key.clone(), g.content_hash())),
            "{}",
            g.key
        );
    }
    let alg = groups.iter().find(|g| g.key == "class:c-alg").unwrap();
    assert_eq!(alg.members, ["s1", "s2"]);
    // Kept none: every group was still offered, none copied.
    let mut n = 0;
    assert!(
        groups_where(&roster, &people, &order, &[true; 3], |_, _| {
            n += 1;
            false
        })
        .is_empty()
    );
    assert_eq!(n, 4);
    // Not imported: not a member.
    let only_bo = groups_where(&roster, &people, &order, &[true, false, false], |_, _| true);
    assert!(only_bo.iter().all(|g| g.members == ["s2"]));
}

#[test]
fn homerooms_groups_and_calendars_from_the_roster() {
    let mut w = World::new("");
    let people = [ana(), bo(), teacher()];
    let roster = small_roster();
    let p = w.plan(SyncKind::Full, true, &people, Some(&roster));
    w.dir.apply(&p, w.now);
    assert_eq!(w.user("s1").homeroom.as_deref(), Some("Room 212"));
    assert_eq!(
        w.user("t1").homeroom.as_deref(),
        Some("Room 212"),
        "the homeroom teacher too"
    );
    assert_eq!(w.user("s2").homeroom, None);
    let r = p.roster.as_ref().unwrap();
    let keys: Vec<&str> = r.groups.iter().map(|g| g.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "class:c-alg",
            "class:c-hr",
            "school:school-1:faculty",
            "school:school-1:student"
        ]
    );
    let alg = &r.groups[0];
    assert_eq!(alg.name, "Algebra I (Maple High)");
    assert_eq!(alg.detail.as_deref(), Some("Algebra I course"));
    assert_eq!(alg.members, ["s1", "s2"]);
    assert_eq!(r.calendars.as_ref().unwrap().len(), 1);
    assert_eq!(p.counts.groups, 4);
    let card = p
        .sis_records
        .iter()
        .find(|s| s.sourced_id() == "s1")
        .unwrap();
    assert_eq!(
        card.classes().map(|c| c.collect::<Vec<_>>()),
        Some(vec!["c-alg", "c-hr"])
    );
    assert_eq!(card.homeroom(), Some("Room 212"));

    // Nothing changed: nothing to write, groups included.
    assert!(
        w.plan(SyncKind::Full, true, &people, Some(&roster))
            .is_empty()
    );

    // Bo drops algebra: one group rewritten; an emptied class disappears.
    let mut roster2 = roster.clone();
    roster2
        .enrollments
        .retain(|e| !(e.person == 1 && e.class == 1));
    let p = w.plan(SyncKind::Full, true, &people, Some(&roster2));
    let r = p.roster.as_ref().unwrap();
    assert_eq!(r.groups.len(), 1);
    assert_eq!(r.groups[0].members, ["s1"]);
    assert!(r.removed_groups.is_empty());
    let mut roster3 = roster.clone();
    roster3.enrollments.retain(|e| e.class != 1);
    let p = w.plan(SyncKind::Full, true, &people, Some(&roster3));
    assert_eq!(p.roster.as_ref().unwrap().removed_groups, ["class:c-alg"]);
}

#[test]
fn add_rooms_off_and_deltas_leave_homerooms_alone() {
    let w = World::new("[source.import]\nadd_rooms = false\nskip_calendars = true\n");
    let people = [ana(), bo(), teacher()];
    let p = w.plan(SyncKind::Full, true, &people, Some(&small_roster()));
    assert!(
        p.items
            .iter()
            .all(|i| i.changes.iter().all(|c| c.field != Field::Homeroom))
    );
    assert!(p.roster.as_ref().unwrap().calendars.is_none());

    let mut w = World::new("");
    let p = w.plan(SyncKind::Full, true, &people, Some(&small_roster()));
    w.dir.apply(&p, w.now);
    let mut changed = ana();
    changed.edit(|f| f.given_name = "Anna".into());
    let p = w.plan(SyncKind::Delta, true, &[changed], None);
    let i = item(&p, "s1");
    assert!(
        i.changes.iter().all(|c| c.field != Field::Homeroom),
        "{:?}",
        i.changes
    );
    assert!(p.roster.is_none());
}

#[test]
fn guardian_relationships_from_agents_on_either_side() {
    let mut w = World::new("[source.import]\nother_users = true\n");
    let mut kid = ana();
    kid.edit(|f| f.agents = vec!["g1".into()]);
    let parent = person("g1", Role::Parent, "Pat", "Li", Some("pat@x.org"));
    let mut other_parent = person("g2", Role::Guardian, "Sam", "Ek", Some("sam@x.org"));
    other_parent.edit(|f| f.agents = vec!["s2".into()]);
    let people = [kid, bo(), parent, other_parent];
    let roster = Roster::default();
    let p = w.plan(SyncKind::Full, true, &people, Some(&roster));
    let pairs = p.roster.as_ref().unwrap().relationships.as_ref();
    assert_eq!(pairs.unwrap(), &[("g1", "s1"), ("g2", "s2")]);
    w.dir.apply(&p, w.now);
    assert!(
        w.plan(SyncKind::Full, true, &people, Some(&roster))
            .is_empty()
    );

    let skip = World::new("[source.import]\nother_users = true\nskip_relationships = true\n");
    let p = skip.plan(SyncKind::Full, true, &people, Some(&roster));
    assert!(p.roster.as_ref().unwrap().relationships.is_none());
}

#[test]
fn an_unlinked_account_is_not_relinked_automatically() {
    let mut w = World::new("");
    w.sync(&[ana()]);
    let id = w.user("s1").id;
    w.dir.links.clear();
    w.dir.refused.push(("sis".into(), "s1".into(), id));
    let p = w.plan(SyncKind::Full, true, &[ana()], None);
    let i = item(&p, "s1");
    assert_eq!(i.outcome, Outcome::Skipped);
    assert_eq!(i.reason, Reason::LinkRefused { user: id });
    assert_eq!(p.counts.created, 0, "not a duplicate either");
}
