//! Invariants of the planner over generated directories, people and settings.

use std::collections::BTreeSet;

use oneroster::Role;
use proptest::prelude::*;
use rostersync_core::directory::*;
use rostersync_core::memory::MemoryDirectory;
use rostersync_core::plan::*;
use rostersync_core::planner::plan;
use rostersync_core::roster::{ClassInfo, ClassKind, Enroll, EnrollRole, OrgInfo, Roster};
use rostersync_core::settings::*;
use rostersync_core::sis::SisPerson;

use crate::planner::{now, person};

const NAMES: [(&str, &str); 5] = [
    ("Ana", "Li"),
    ("Bo", "Ek"),
    ("Cy", "Do"),
    ("Di", "Fo"),
    ("Ana", "Lee"),
];
const DOMAINS: [&str; 2] = ["students.district.k12.us", "district.k12.us"];

fn email_for(name: usize, domain: usize, upper: bool) -> String {
    let (g, f) = NAMES[name];
    let e = format!(
        "{}.{}@{}",
        g.to_lowercase(),
        f.to_lowercase(),
        DOMAINS[domain]
    );
    if upper { e.to_uppercase() } else { e }
}

fn arb_role() -> impl Strategy<Value = Role> {
    prop_oneof![
        4 => Just(Role::Student),
        2 => Just(Role::Teacher),
        1 => Just(Role::Aide),
        1 => Just(Role::Parent),
        1 => Just(Role::Other("ext:coach".into())),
    ]
}

fn arb_person(idx: usize) -> impl Strategy<Value = SisPerson> {
    (
        0..NAMES.len(),
        0..2usize,
        any::<bool>(),
        proptest::option::weighted(0.8, any::<bool>()),
        arb_role(),
        any::<bool>(),
        0..3u8,
    )
        .prop_map(move |(name, domain, upper, email, role, active, grade)| {
            let (g, f) = NAMES[name];
            let mut p = person(
                &format!("p{idx}"),
                role,
                g,
                f,
                email.map(|_| email_for(name, domain, upper)).as_deref(),
            );
            p.edit(|f| {
                f.enabled = active || !idx.is_multiple_of(3);
                f.grade = Some(format!("0{grade}"));
            });
            p
        })
}

fn arb_account() -> impl Strategy<Value = Account> {
    (0..NAMES.len(), 0..2usize, any::<bool>(), any::<bool>()).prop_map(
        |(name, domain, upper, admin_wrote)| {
            let (g, f) = NAMES[name];
            let mut u = Account::blank(AccountId(0));
            u.email = Some(email_for(name, domain, upper));
            u.first_name = Some(g.to_owned());
            u.last_name = Some(f.to_owned());
            u.provider = Some("google".into());
            let w = if admin_wrote {
                Writer::Admin("alice".into())
            } else {
                Writer::SignOn("google".into())
            };
            u.provenance = vec![(Field::Email, w.clone()), (Field::FirstName, w)].into();
            u
        },
    )
}

fn arb_config() -> impl Strategy<Value = Config> {
    (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>())
        .prop_map(|(translate, append, by_id, by_email, if_not_set, phone_off, others)| {
            let mut toml = String::from("[[source]]\nname = \"sis\"\nkind = \"oneroster-csv\"\npath = \"x\"\n[source.user_mapping]\n");
            if translate {
                toml.push_str("translate_email = [{ from = \"students.district.k12.us\", to = \"district.k12.us\" }]\n");
            }
            if append {
                toml.push_str("append_domain = \"district.k12.us\"\n");
            }
            toml.push_str(&format!("match_by_identifier = {by_id}\nmatch_by_email = {by_email}\n"));
            toml.push_str(&format!("[source.import]\nother_users = {others}\n"));
            if if_not_set {
                toml.push_str("[source.field_priority]\nfirst_name = \"if-not-set\"\ngrade = \"if-not-set\"\n");
            }
            let mut c = Config::from_toml(&toml).unwrap();
            if phone_off {
                c.fields.insert(Field::Phone, FieldSwitch { enabled: false });
            }
            c
        })
}

fn world() -> impl Strategy<Value = (Config, Vec<Account>, Vec<SisPerson>)> {
    (
        arb_config(),
        proptest::collection::vec(arb_account(), 0..6),
        (0..8usize).prop_flat_map(|n| (0..n).map(arb_person).collect::<Vec<_>>()),
    )
}

fn plan_for(cfg: &Config, dir: &MemoryDirectory, people: &[SisPerson]) -> Plan {
    crate::planner::run(cfg, dir, people)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn planning_again_after_applying_finds_nothing_to_do((cfg, accounts, people) in world()) {
        let mut dir = MemoryDirectory::default();
        for a in accounts { dir.add_user(a); }
        let first = plan_for(&cfg, &dir, &people);
        dir.apply(&first, now());
        let second = plan_for(&cfg, &dir, &people);
        prop_assert!(second.is_empty(), "second plan still writes: {:#?}", second.writes().collect::<Vec<_>>());
        prop_assert_eq!(second.counts.created + second.counts.linked + second.counts.updated, 0);

        // The same without the content-hash shortcut: every field must already agree.
        for link in dir.links.values_mut() { link.record_hash = 0; }
        let slow = plan_for(&cfg, &dir, &people);
        for item in &slow.items {
            prop_assert!(
                item.changes.is_empty() && matches!(item.outcome, Outcome::Unchanged | Outcome::Skipped | Outcome::Error),
                "fields still differ after applying: {:#?}", item
            );
        }
    }

    #[test]
    fn no_plan_removes_or_duplicates_an_account((cfg, accounts, people) in world()) {
        let mut dir = MemoryDirectory::default();
        for a in accounts { dir.add_user(a); }
        let before: BTreeSet<AccountId> = dir.users.keys().copied().collect();
        let p = plan_for(&cfg, &dir, &people);
        dir.apply(&p, now());
        let after: BTreeSet<AccountId> = dir.users.keys().copied().collect();
        prop_assert!(before.is_subset(&after));
        prop_assert_eq!(after.len() - before.len(), p.counts.created as usize);
        // No two active accounts the sync touched share an email.
        let mut seen = BTreeSet::new();
        for item in p.writes() {
            if let Some(id) = item.user_id.or_else(|| dir.links.get(&("sis".into(), item.sourced_id.clone())).map(|l| l.user_id)) {
                let u = &dir.users[&id];
                if let Some(e) = &u.email { prop_assert!(seen.insert((MatchKey::new(e), id)).then_some(()).is_some()); }
            }
        }
        let linked: BTreeSet<AccountId> = dir.links.values().map(|l| l.user_id).collect();
        prop_assert_eq!(linked.len(), dir.links.len(), "one account per SIS person");
    }

    #[test]
    fn every_item_says_why((cfg, accounts, people) in world()) {
        let mut dir = MemoryDirectory::default();
        for a in accounts { dir.add_user(a); }
        let p = plan_for(&cfg, &dir, &people);
        for item in &p.items {
            prop_assert!(!item.reason.code().is_empty());
            prop_assert!(item.reason.to_string().len() > 5);
        }
        let c = p.counts;
        prop_assert_eq!(c.seen, people.iter().map(|p| p.sourced_id()).collect::<BTreeSet<_>>().len() as u64);
        // Every person under exactly one outcome, each count exactly its items.
        prop_assert_eq!(c.created + c.linked + c.updated + c.unchanged + c.skipped + c.errors + c.deactivated + c.reactivated, c.seen);
        for o in [Outcome::Created, Outcome::Linked, Outcome::Updated, Outcome::Skipped, Outcome::Deactivated, Outcome::Reactivated, Outcome::Error] {
            let mut counts = c;
            prop_assert_eq!(*counts.slot(o), p.items.iter().filter(|i| i.outcome == o).count() as u64);
        }
    }

    #[test]
    fn plans_do_not_depend_on_input_order((cfg, accounts, mut people) in world()) {
        let mut dir = MemoryDirectory::default();
        for a in accounts { dir.add_user(a); }
        let a = plan_for(&cfg, &dir, &people);
        people.reverse();
        let b = plan_for(&cfg, &dir, &people);
        prop_assert_eq!(a, b);
    }
}

/// Settings, people, who is present in each run, days between runs, misses, grace days.
type History = (Config, Vec<SisPerson>, Vec<Vec<bool>>, Vec<u32>, u32, u32);

fn arb_history() -> impl Strategy<Value = History> {
    (
        arb_config(),
        (1..7usize).prop_flat_map(|n| (0..n).map(arb_person).collect::<Vec<_>>()),
        proptest::collection::vec(proptest::collection::vec(any::<bool>(), 7), 1..5),
        proptest::collection::vec(0..400u32, 5),
        1..3u32,
        1..100u32,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    /// Over several runs in which people leave and come back, days apart: after each
    /// apply, planning the same input again finds nothing to do, no account is ever
    /// removed, and every account this source deactivated is either inactive or back.
    #[test]
    fn histories_settle_after_every_run((mut cfg, people, presence, gaps, misses, grace) in arb_history()) {
        cfg.sources[0].import.deactivate_after_misses = misses;
        cfg.sources[0].import.relink_grace_days = grace;
        let mut dir = MemoryDirectory::default();
        let mut now = crate::planner::now();
        let roster = rostersync_core::roster::Roster::default();
        let mut seen_accounts = BTreeSet::new();
        for (run, present) in presence.iter().enumerate() {
            let today: Vec<SisPerson> = people
                .iter()
                .zip(present)
                .filter(|(_, here)| **here)
                .map(|(p, _)| p.clone())
                .collect();
            let input = PlanInput {
                config: &cfg,
                source: &cfg.sources[0],
                kind: SyncKind::Full,
                complete: true,
                people: &today,
                roster: Some(&roster),
                now,
            };
            let p = plan(&input, &dir.view("sis"));
            dir.apply(&p, now);
            // Planning again finds nothing to do, but for counting the absent once more
            // (each complete pull is one more miss).
            let again = plan(&input, &dir.view("sis"));
            let present: BTreeSet<&str> = today.iter().map(|p| p.sourced_id()).collect();
            for w in again.writes() {
                prop_assert!(
                    !present.contains(w.sourced_id.as_str())
                        && matches!(w.reason.code(), "missing" | "absent_from_complete_pull" | "protected_access"),
                    "run {run}: planning again still writes: {:#?}", w
                );
            }
            prop_assert!(again.roster.as_ref().is_none_or(|r| r.groups.is_empty() && r.relationships.is_none() && r.calendars.is_none()));
            for id in &seen_accounts {
                prop_assert!(dir.users.contains_key(id));
            }
            seen_accounts.extend(dir.users.keys().copied());
            now = jiff::Timestamp::from_second(now.as_second() + i64::from(gaps[run]) * 86_400).unwrap();
        }
    }
}

/// A small district with a roster: people of several roles in up to three orgs (two of
/// them schools), listing each other (or someone unknown) as agents; classes and their
/// enrollments.
#[derive(Debug, Clone)]
struct District {
    people: Vec<SisPerson>,
    roster: Roster,
}

const ORGS: [&str; 3] = ["o1", "o2", "o3"];

fn arb_district() -> impl Strategy<Value = District> {
    (2..7usize)
        .prop_flat_map(|n| {
            let roles = vec![
                Role::Student,
                Role::Teacher,
                Role::Parent,
                Role::Guardian,
                Role::Aide,
            ];
            let people = proptest::collection::vec(
                (
                    proptest::sample::select(roles),
                    proptest::collection::vec(proptest::sample::select(ORGS.to_vec()), 0..3),
                    // `n`: someone the pull does not have.
                    proptest::collection::vec(0..=n, 0..3),
                ),
                n,
            );
            let classes = proptest::collection::vec(
                (
                    0..3usize,
                    proptest::option::of(proptest::sample::select(ORGS.to_vec())),
                ),
                1..4,
            );
            let enrollments = proptest::collection::vec((0..n, 0..4usize, 0..3u8), 0..12);
            (people, classes, enrollments)
        })
        .prop_map(|(people, classes, enrollments)| {
            let people = people
                .iter()
                .enumerate()
                .map(|(i, (role, orgs, agents))| {
                    let mut p = person(&format!("p{i}"), role.clone(), NAMES[i % 5].0, "X", None);
                    p.edit(|f| {
                        f.orgs = orgs.iter().map(|o| (*o).to_owned()).collect();
                        f.agents = agents.iter().map(|a| format!("p{a}")).collect();
                    });
                    p
                })
                .collect();
            let roster = Roster {
                orgs: ORGS
                    .iter()
                    .map(|o| OrgInfo {
                        sourced_id: (*o).to_owned(),
                        name: format!("{o} school"),
                        is_school: *o != "o3",
                    })
                    .collect(),
                classes: classes
                    .iter()
                    .enumerate()
                    .map(|(i, (title, school))| ClassInfo {
                        sourced_id: format!("c{i}"),
                        title: format!("Class {title}"),
                        kind: ClassKind::Scheduled,
                        location: None,
                        school: school.map(str::to_owned),
                        course: Some(format!("Course {i}")),
                    })
                    .collect(),
                enrollments: enrollments
                    .iter()
                    .map(|&(person, class, role)| Enroll {
                        person: person as u32,
                        class: (class % classes.len()) as u32,
                        role: [EnrollRole::Student, EnrollRole::Teacher, EnrollRole::Other]
                            [role as usize],
                    })
                    .collect(),
                sessions: Vec::new(),
                has_enrollments: true,
            };
            District { people, roster }
        })
}

/// `d` with one thing changed (`change` picks what, `a` and `b` where), or none.
fn changed(mut d: District, change: usize, a: usize, b: usize) -> District {
    let n = d.people.len();
    let (pa, pb) = (a % n, b % n);
    let r = &mut d.roster;
    match change {
        1 => {
            let c = a % r.classes.len();
            r.classes[c].title.push('!');
        }
        2 if !r.enrollments.is_empty() => {
            let e = a % r.enrollments.len();
            r.enrollments.remove(e);
        }
        3 => r.enrollments.push(Enroll {
            person: pa as u32,
            class: (b % r.classes.len()) as u32,
            role: EnrollRole::Student,
        }),
        4 => r.orgs[a % ORGS.len()].name.push('!'),
        5 => r.orgs[2].is_school = true,
        6 => d.people[pa].edit(|f| f.agents.push(format!("p{pb}"))),
        7 => d.people[pa].edit(|f| {
            f.role = Some(match f.role {
                Some(Role::Student) => Role::Parent,
                _ => Role::Student,
            });
        }),
        8 => d.people[pa].edit(|f| {
            if f.orgs.is_empty() {
                f.orgs.push("o1".into());
            } else {
                f.orgs.clear();
            }
        }),
        // Someone leaves: the enrollments refer to the people after them one place lower.
        9 => {
            d.people.remove(pa);
            r.enrollments.retain(|e| e.person as usize != pa);
            for e in &mut r.enrollments {
                if e.person as usize > pa {
                    e.person -= 1;
                }
            }
        }
        // The pull lists two people in the other order, the enrollments following them.
        10 => {
            d.people.swap(pa, pb);
            for e in &mut r.enrollments {
                let p = e.person as usize;
                if p == pa {
                    e.person = pb as u32;
                } else if p == pb {
                    e.person = pa as u32;
                }
            }
        }
        11 => d.people[pa].edit(|f| f.given_name.push('!')),
        _ => {}
    }
    d
}

fn plan_district(cfg: &Config, dir: &MemoryDirectory, d: &District) -> Plan {
    let input = PlanInput {
        config: cfg,
        source: &cfg.sources[0],
        kind: SyncKind::Full,
        complete: true,
        people: &d.people,
        roster: Some(&d.roster),
        now: now(),
    };
    plan(&input, &dir.view("sis"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The roster memo never hides a change: after a district is synced and something in
    /// it changes (or nothing does), the roster plan made with the memo the last run kept
    /// is the one made without it; applied, planning again finds nothing to do.
    #[test]
    fn the_roster_memo_never_hides_a_change(
        (d, change, a, b, skip) in (arb_district(), 0..13usize, any::<usize>(), any::<usize>(), any::<bool>())
    ) {
        let cfg = crate::planner::config(&format!(
            "[source.import]\nother_users = true\nskip_relationships = {skip}\n"
        ));
        let mut dir = MemoryDirectory::default();
        let first = plan_district(&cfg, &dir, &d);
        dir.apply(&first, now());
        prop_assert!(dir.roster_memos.contains_key("sis"));
        let d = changed(d, change, a, b);
        let with_memo = plan_district(&cfg, &dir, &d);
        let mut forgotten = dir.clone();
        forgotten.roster_memos.clear();
        let without = plan_district(&cfg, &forgotten, &d);
        prop_assert_eq!(&with_memo.roster, &without.roster);
        dir.apply(&with_memo, now());
        let again = plan_district(&cfg, &dir, &d);
        let r = again.roster.as_ref().unwrap();
        prop_assert!(r.groups.is_empty() && r.removed_groups.is_empty() && r.relationships.is_none());
        prop_assert_eq!(r.memo, with_memo.roster.as_ref().unwrap().memo);
    }
}
