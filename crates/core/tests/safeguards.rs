//! The guard (mass-change thresholds, vanished schools and roles), rekeys and admins'
//! decisions on review cases.

use oneroster::Role;
use rostersync_core::directory::*;
use rostersync_core::guard::{Pulled, TripKind, guard};
use rostersync_core::memory::MemoryDirectory;
use rostersync_core::plan::*;
use rostersync_core::planner::plan;
use rostersync_core::settings::*;
use rostersync_core::sis::{PersonFields, SisPerson};
use rostersync_core::view::Decision;

use crate::planner::{config, now, person};

fn school_people(n: usize, school: &str, role: Role) -> Vec<SisPerson> {
    (0..n)
        .map(|i| {
            let id = format!("{school}-{i}");
            let mut p = person(
                &id,
                role.clone(),
                "P",
                &format!("N{i}"),
                Some(&format!("{id}@x.org")),
            );
            p.edit(|f| {
                f.primary_org = Some(school.into());
                f.orgs = vec![school.into()];
            });
            // Each their own username: two new people never share one.
            p.edit(|f| f.username = id.clone());
            p
        })
        .collect()
}

fn plan_full(cfg: &Config, dir: &MemoryDirectory, people: &[SisPerson]) -> Plan {
    plan(
        &PlanInput {
            config: cfg,
            source: &cfg.sources[0],
            kind: SyncKind::Full,
            complete: true,
            people,
            roster: None,
            now: now(),
        },
        &dir.view("sis"),
    )
}

fn synced(cfg: &Config, people: &[SisPerson]) -> MemoryDirectory {
    let mut dir = MemoryDirectory::default();
    let p = plan_full(cfg, &dir, people);
    assert!(
        guard(&p, &dir.view("sis"), &cfg.sources[0], &Pulled::of(people)).is_empty(),
        "a first import is never held"
    );
    dir.apply(&p, now());
    dir
}

fn kinds(trips: &[rostersync_core::guard::Trip]) -> Vec<TripKind> {
    trips.iter().map(|t| t.kind).collect()
}

#[test]
fn an_empty_users_collection_trips_the_guard() {
    let cfg = config("");
    let people = [
        school_people(40, "s1", Role::Student),
        school_people(30, "s2", Role::Student),
    ]
    .concat();
    let dir = synced(&cfg, &people);
    let p = plan_full(&cfg, &dir, &[]);
    assert_eq!(p.counts.deactivated, 70);
    let trips = guard(&p, &dir.view("sis"), &cfg.sources[0], &Pulled::default());
    let k = kinds(&trips);
    assert!(k.contains(&TripKind::Deactivations), "{trips:#?}");
    assert!(k.contains(&TripKind::RoleVanished), "{trips:#?}");
    assert!(k.contains(&TripKind::SchoolVanished));
    assert!(
        trips[0]
            .detail
            .starts_with("70 deactivations, 100.0% of 70 active linked accounts"),
        "{}",
        trips[0].detail
    );
}

#[test]
fn one_school_dropped_trips_the_guard_by_school() {
    let cfg = config("[source.safeguards]\nmax_deactivations_percent = 50\n");
    let s1 = school_people(40, "s1", Role::Student);
    let s2 = school_people(15, "s2", Role::Student);
    let dir = synced(&cfg, &[s1.clone(), s2.clone()].concat());
    let p = plan_full(&cfg, &dir, &s1);
    let trips = guard(&p, &dir.view("sis"), &cfg.sources[0], &Pulled::of(&s1));
    assert_eq!(
        kinds(&trips),
        [TripKind::SchoolLoss, TripKind::SchoolVanished],
        "{trips:#?}"
    );
    assert_eq!(
        trips[0].detail,
        "school s2 would lose 15 of its 15 people (100%, limit 20%)"
    );
}

#[test]
fn ordinary_churn_passes() {
    let cfg = config("");
    let people = school_people(100, "s1", Role::Student);
    let dir = synced(&cfg, &people);
    // Two leave, three arrive, one is renamed.
    let mut today = people[2..].to_vec();
    today.extend(school_people(103, "s1", Role::Student)[100..].to_vec());
    today[0].edit(|f| f.family_name = "Renamed".into());
    let p = plan_full(&cfg, &dir, &today);
    assert_eq!(
        (p.counts.deactivated, p.counts.created, p.counts.updated),
        (2, 3, 1)
    );
    assert!(guard(&p, &dir.view("sis"), &cfg.sources[0], &Pulled::of(&today)).is_empty());
}

#[test]
fn mass_creations_and_updates_trip_once_established() {
    let cfg = config("");
    let people = school_people(60, "s1", Role::Student);
    let dir = synced(&cfg, &people);
    let mut more = people.clone();
    more.extend(school_people(100, "s1", Role::Student)[60..].to_vec());
    let p = plan_full(&cfg, &dir, &more);
    assert_eq!(
        kinds(&guard(
            &p,
            &dir.view("sis"),
            &cfg.sources[0],
            &Pulled::of(&more)
        )),
        [TripKind::Creations]
    );
    let renamed: Vec<SisPerson> = people
        .iter()
        .map(|p| {
            SisPerson::new(PersonFields {
                given_name: "X".into(),
                ..p.fields()
            })
        })
        .collect();
    let p = plan_full(&cfg, &dir, &renamed);
    assert_eq!(
        kinds(&guard(
            &p,
            &dir.view("sis"),
            &cfg.sources[0],
            &Pulled::of(&renamed)
        )),
        [TripKind::Updates]
    );
}

#[test]
fn a_rekey_moves_every_link_and_creates_nothing() {
    let cfg = config("");
    let old = school_people(50, "s1", Role::Student);
    let mut dir = synced(&cfg, &old);
    let accounts_before = dir.users.len();
    // The SIS (1.1 → 1.2) gives everyone a new sourcedId; emails and ids stay.
    let new: Vec<SisPerson> = old
        .iter()
        .map(|p| {
            SisPerson::new(PersonFields {
                sourced_id: format!("v2-{}", p.sourced_id()),
                preferred_first_name: Some("Pref".into()),
                ..p.fields()
            })
        })
        .collect();
    let p = plan_full(&cfg, &dir, &new);
    assert_eq!(
        (p.counts.created, p.counts.deactivated, p.counts.rekeyed),
        (0, 0, 50),
        "{:#?}",
        p.counts
    );
    let item = p.items.iter().find(|i| i.sourced_id == "v2-s1-7").unwrap();
    assert_eq!(item.replaces.as_deref(), Some("s1-7"));
    assert_eq!(item.reason.code(), "rekeyed");
    assert!(
        guard(&p, &dir.view("sis"), &cfg.sources[0], &Pulled::of(&new)).is_empty(),
        "a rekey is not a mass change"
    );
    dir.apply(&p, now());
    assert_eq!(dir.users.len(), accounts_before);
    assert_eq!(dir.links.len(), 50);
    assert!(dir.links.keys().all(|(_, id)| id.starts_with("v2-")));
    assert!(plan_full(&cfg, &dir, &new).is_empty());
}

#[test]
fn a_rekey_is_only_read_from_a_complete_full_pull() {
    let cfg = config("");
    let old = school_people(5, "s1", Role::Student);
    let dir = synced(&cfg, &old);
    let mut renamed = old[0].clone();
    renamed.edit(|f| f.sourced_id = "new-id".into());
    let p = plan(
        &PlanInput {
            config: &cfg,
            source: &cfg.sources[0],
            kind: SyncKind::Delta,
            complete: true,
            people: std::slice::from_ref(&renamed),
            roster: None,
            now: now(),
        },
        &dir.view("sis"),
    );
    assert_eq!(
        p.items[0].reason.code(),
        "linked_to_another",
        "a delta cannot know the old id is gone"
    );
    // Old id still present: a known email on a new sourcedId is a review case.
    let mut both = old.clone();
    both.push(renamed);
    let p = plan_full(&cfg, &dir, &both);
    let item = p.items.iter().find(|i| i.sourced_id == "new-id").unwrap();
    assert!(item.reason.needs_review(), "{:?}", item.reason);
}

#[test]
fn review_decisions_stick() {
    let cfg = config("");
    let mut dir = MemoryDirectory::default();
    for _ in 0..2 {
        let mut u = Account::blank(AccountId(0));
        u.email = Some("ana@x.org".into());
        dir.add_user(u);
    }
    let ana = person("s1", Role::Student, "Ana", "Li", Some("ana@x.org"));
    let p = plan_full(&cfg, &dir, std::slice::from_ref(&ana));
    assert!(p.items[0].reason.needs_review());

    let view = dir
        .view("sis")
        .with_decisions(vec![("s1".into(), Decision::Ignore)]);
    let input = PlanInput {
        config: &cfg,
        source: &cfg.sources[0],
        kind: SyncKind::Full,
        complete: true,
        people: std::slice::from_ref(&ana),
        roster: None,
        now: now(),
    };
    let p = plan(&input, &view);
    assert_eq!(p.items[0].reason, Reason::IgnoredByAdmin);
    let view = dir
        .view("sis")
        .with_decisions(vec![("s1".into(), Decision::Create)]);
    let p = plan(&input, &view);
    assert_eq!(p.items[0].outcome, Outcome::Created);
    assert_eq!(p.items[0].reason, Reason::CreatedByDecision);
}
