//! What a sync writes besides accounts, against the reference: groups (with members
//! resolved through the links), removed groups, guardian relationships, calendars, the
//! SIS's orgs, rooms, the SIS records behind the SIS card, the delta watermark; a re-sync
//! with nothing changed writes nothing; memberships follow a link that moves.

use jiff::civil::date;
use oneroster::{Role, Status};
use rostersync_core::directory::AccountId;
use rostersync_core::memory::MemoryDirectory;
use rostersync_core::plan::{Outcome, SyncKind};
use rostersync_core::roster::{
    ClassInfo, ClassKind, Enroll, EnrollRole, OrgInfo, Roster, SessionInfo,
};
use rostersync_core::settings::Config;
use rostersync_core::sis::SisPerson;
use store::{CardClass, RunId, StoreError};

use crate::harness::{TestDb, config, conformance, days, person, plan_full, plan_kind, start};
use crate::lifecycle::{item, linked, step};

/// One day of the district: its people, classes (by sourcedId, with who is enrolled), and
/// what else the roster holds.
#[derive(Clone)]
pub struct Day {
    pub people: Vec<SisPerson>,
    pub orgs: Vec<OrgInfo>,
    pub classes: Vec<ClassInfo>,
    /// (person, class, role)
    pub enrolled: Vec<(String, String, EnrollRole)>,
    pub sessions: Vec<SessionInfo>,
}

impl Day {
    /// The roster as the planner takes it: enrollments point into `people` by index.
    pub fn roster(&self) -> Roster {
        let person = |id: &str| self.people.iter().position(|p| p.sourced_id() == id);
        let class = |id: &str| self.classes.iter().position(|c| c.sourced_id == id);
        let enrollments = self
            .enrolled
            .iter()
            .filter_map(|(p, c, role)| {
                Some(Enroll {
                    person: u32::try_from(person(p)?).unwrap(),
                    class: u32::try_from(class(c)?).unwrap(),
                    role: *role,
                })
            })
            .collect();
        Roster {
            orgs: self.orgs.clone(),
            classes: self.classes.clone(),
            enrollments,
            sessions: self.sessions.clone(),
            has_enrollments: true,
        }
    }

    pub fn person(&mut self, id: &str) -> &mut SisPerson {
        self.people
            .iter_mut()
            .find(|p| p.sourced_id() == id)
            .unwrap()
    }

    fn unenroll(&mut self, person: &str, class: &str) {
        self.enrolled
            .retain(|(p, c, _)| !(p == person && c == class));
    }
}

fn class(
    id: &str,
    title: &str,
    kind: ClassKind,
    room: &str,
    school: &str,
    course: &str,
) -> ClassInfo {
    ClassInfo {
        sourced_id: id.into(),
        title: title.into(),
        kind,
        location: Some(room.into()),
        school: Some(school.into()),
        course: Some(course.into()),
    }
}

fn org(id: &str, name: &str, is_school: bool) -> OrgInfo {
    OrgInfo {
        sourced_id: id.into(),
        name: name.into(),
        is_school,
    }
}

fn at_school(mut p: SisPerson, school: &str) -> SisPerson {
    p.edit(|f| {
        f.primary_org = Some(school.into());
        f.orgs = vec![school.into()];
    });
    p
}

/// A small district: two schools, a homeroom, two classes, a guardian.
pub fn district() -> Day {
    use EnrollRole::{Student, Teacher};
    let mut ana = person("s1", Role::Student, "Ana", "Li", Some("ana@x.org"));
    ana.edit(|f| f.agents = vec!["g1".into()]);
    let mut pat = person("g1", Role::Parent, "Pat", "Li", Some("pat@x.org"));
    pat.edit(|f| f.agents = vec!["s1".into()]);
    let people = vec![
        ana,
        person("s2", Role::Student, "Bo", "Ek", Some("bo@x.org")),
        at_school(
            person("s3", Role::Student, "Cy", "Do", Some("cy@x.org")),
            "school-2",
        ),
        person("t1", Role::Teacher, "Bảo", "Nguyễn", Some("bao@x.org")),
        at_school(
            person("t2", Role::Teacher, "Dee", "Fox", Some("dee@x.org")),
            "school-2",
        ),
        person("t3", Role::Teacher, "Al", "Ames", Some("al@x.org")),
        pat,
    ];
    let enrolled = [
        ("s1", "c-hr1", Student),
        ("s1", "c-math", Student),
        ("s2", "c-hr1", Student),
        ("s2", "c-math", Student),
        ("t1", "c-hr1", Teacher),
        ("t1", "c-math", Teacher),
        ("t3", "c-math", Teacher),
        ("s3", "c-sci", Student),
        ("t2", "c-sci", Teacher),
    ]
    .iter()
    .map(|(p, c, r)| ((*p).to_owned(), (*c).to_owned(), *r))
    .collect();
    Day {
        people,
        orgs: vec![
            org("district", "District", false),
            org("school-1", "Lincoln Elementary", true),
            org("school-2", "Washington Middle", true),
        ],
        classes: vec![
            class(
                "c-hr1",
                "Homeroom 5A",
                ClassKind::Homeroom,
                "Room 12",
                "school-1",
                "Homeroom",
            ),
            class(
                "c-math",
                "Math 5",
                ClassKind::Scheduled,
                "Room 3",
                "school-1",
                "Mathematics 5",
            ),
            class(
                "c-sci",
                "Science 7",
                ClassKind::Scheduled,
                "Lab 1",
                "school-2",
                "Science",
            ),
        ],
        enrolled,
        sessions: vec![
            SessionInfo {
                sourced_id: "2026".into(),
                title: "2026-27".into(),
                kind: "schoolYear".into(),
                start: Some(date(2026, 8, 17)),
                end: Some(date(2027, 6, 11)),
                parent: None,
            },
            SessionInfo {
                sourced_id: "2026-S1".into(),
                title: "Fall".into(),
                kind: "semester".into(),
                start: Some(date(2026, 8, 17)),
                end: Some(date(2027, 1, 15)),
                parent: Some("2026".into()),
            },
        ],
    }
}

pub fn district_settings() -> Config {
    config(
        "[source.import]\nother_users = true\n\
         [source.locations]\ndefault = \"District Office\"\nmap = { \"school-1\" = \"Lincoln\" }\n",
    )
}

fn keys(p: &rostersync_core::plan::Plan) -> Vec<String> {
    p.roster
        .as_ref()
        .map(|r| r.groups.iter().map(|g| g.key.clone()).collect())
        .unwrap_or_default()
}

fn name_of(db: &TestDb, id: AccountId) -> Vec<String> {
    db.store()
        .guardianships(id)
        .unwrap()
        .students
        .into_iter()
        .map(|u| u.name)
        .collect()
}

fn roster_plans_match_the_reference(db: &mut TestDb) {
    let cfg = district_settings();
    let mut mem = MemoryDirectory::default();
    let mut day = district();

    // The first import: groups, relationships, calendars, orgs, rooms, SIS records.
    let (_, p) = step(
        db,
        &mut mem,
        &cfg,
        &day.people,
        Some(&day.roster()),
        days(0),
    );
    let s = db.store();
    assert!(
        keys(&p).contains(&"class:c-math".to_owned()),
        "{:?}",
        keys(&p)
    );
    let groups = s.groups(Some("sis"), 0).unwrap();
    assert_eq!(groups.len(), keys(&p).len());
    assert_eq!(s.count_users().unwrap().groups, groups.len() as u64);
    let math = groups
        .iter()
        .find(|g| g.key.as_deref() == Some("class:c-math"))
        .unwrap();
    assert_eq!(
        (
            math.name.as_str(),
            math.kind.as_str(),
            math.detail.as_deref(),
            math.members
        ),
        (
            "Math 5 (Lincoln Elementary)",
            "class",
            Some("Mathematics 5"),
            4
        )
    );
    assert_eq!(s.groups(None, 2).unwrap().len(), 2, "limit");
    let (ana, pat) = (linked(&mem, "s1"), linked(&mem, "g1"));
    assert_eq!(name_of(db, pat), ["Ana Li"]);
    assert_eq!(
        s.guardianships(ana).unwrap().guardians,
        [store::UserRef {
            id: pat,
            name: "Pat Li".into(),
            email: Some("pat@x.org".into())
        }]
    );
    assert_eq!(s.rooms().unwrap(), ["Room 12"], "homerooms only");
    assert_eq!(db.count("calendars"), 2);
    assert_eq!(db.count("sis_people"), 7);
    let orgs = s.sis_orgs("sis").unwrap();
    let heads: Vec<(&str, &str, bool, u64)> = orgs
        .iter()
        .map(|o| {
            (
                o.sourced_id.as_str(),
                o.name.as_str(),
                o.is_school,
                o.people,
            )
        })
        .collect();
    assert_eq!(
        heads,
        [
            ("district", "District", false, 0),
            ("school-1", "Lincoln Elementary", true, 5),
            ("school-2", "Washington Middle", true, 2),
        ]
    );
    assert!(s.sis_orgs("other").unwrap().is_empty());

    // Bo leaves Math, Science ends, Art starts, Bo gets Pat as guardian too, a term and a
    // school are renamed.
    day.unenroll("s2", "c-math");
    day.classes.retain(|c| c.sourced_id != "c-sci");
    day.enrolled.retain(|(_, c, _)| c != "c-sci");
    day.classes.push(class(
        "c-art",
        "Art",
        ClassKind::Scheduled,
        "Studio",
        "school-2",
        "Visual Arts",
    ));
    day.enrolled
        .push(("s3".into(), "c-art".into(), EnrollRole::Student));
    day.enrolled
        .push(("t2".into(), "c-art".into(), EnrollRole::Teacher));
    day.person("g1").edit(|f| f.agents.push("s2".into()));
    day.sessions[1].title = "Fall term".into();
    day.orgs[2].name = "Washington Middle School".into();
    let (_, p) = step(
        db,
        &mut mem,
        &cfg,
        &day.people,
        Some(&day.roster()),
        days(1),
    );
    let r = p.roster.as_ref().unwrap();
    assert_eq!(r.removed_groups, ["class:c-sci"]);
    assert!(keys(&p).contains(&"class:c-math".to_owned()));
    assert!(keys(&p).contains(&"class:c-art".to_owned()));
    assert!(
        !keys(&p).contains(&"class:c-hr1".to_owned()),
        "unchanged: not rewritten"
    );
    assert!(r.relationships.is_some() && r.calendars.is_some());
    assert_eq!(name_of(db, pat), ["Ana Li", "Bo Ek"]);
    assert_eq!(
        s.sis_orgs("sis").unwrap()[2].name,
        "Washington Middle School"
    );
    assert!(
        s.groups(Some("sis"), 0)
            .unwrap()
            .iter()
            .all(|g| g.key.as_deref() != Some("class:c-sci"))
    );

    // Nothing changed: nothing is written but the run and its items.
    let before = db.row_counts();
    let (run, p) = step(
        db,
        &mut mem,
        &cfg,
        &day.people,
        Some(&day.roster()),
        days(2),
    );
    assert!(p.is_empty(), "{:#?}", p.roster);
    let after = db.row_counts();
    for ((table, b), (_, a)) in before.iter().zip(&after) {
        let expected = match *table {
            "runs" => b + 1,
            "run_items" => b + p.items.len() as i64,
            _ => *b,
        };
        assert_eq!(*a, expected, "{table}");
    }
    assert_eq!(s.run_items(run, None, 0, 0).unwrap().len(), p.items.len());
    // What the groups and relationships were made from is kept with them (the plan just
    // made matched it, as the reference's did: `step` compares the two plans).
    let memo = s.load_view("sis").unwrap().source_state().roster_memo;
    assert_eq!(Some(memo), p.roster.as_ref().map(|r| r.memo));
    assert!(memo.groups.is_some() && memo.relationships.is_some());

    // Bo is `tobedeleted` but still enrolled: deactivated, still a member; the school's
    // head count drops.
    day.person("s2").edit(|f| {
        f.status = Status::ToBeDeleted;
        f.enabled = false;
    });
    let (_, p) = step(
        db,
        &mut mem,
        &cfg,
        &day.people,
        Some(&day.roster()),
        days(3),
    );
    assert_eq!(item(&p, "s2").outcome, Outcome::Deactivated);
    assert_eq!(s.sis_orgs("sis").unwrap()[1].people, 4);

    // Back after the grace period: a new account, and the memberships and relationships
    // of the old one follow the link (the groups themselves did not change).
    let bo = linked(&mem, "s2");
    day.person("s2").edit(|f| {
        f.status = Status::Active;
        f.enabled = true;
    });
    let (_, p) = step(
        db,
        &mut mem,
        &cfg,
        &day.people,
        Some(&day.roster()),
        days(400),
    );
    assert_eq!(item(&p, "s2").reason.code(), "returned_after_grace");
    assert!(!keys(&p).contains(&"class:c-hr1".to_owned()));
    let bo2 = linked(&mem, "s2");
    assert_ne!(bo, bo2);
    assert!(s.user_groups(bo).unwrap().is_empty());
    assert_eq!(
        s.user_groups(bo2).unwrap(),
        [
            "Homeroom 5A (Lincoln Elementary)",
            "Lincoln Elementary — students"
        ]
    );
    assert_eq!(name_of(db, pat), ["Ana Li", "Bo Ek"]);
    assert_eq!(
        s.guardianships(bo2).unwrap().guardians.len(),
        1,
        "the relationship moved"
    );

    // An admin unlinks Ana: out of the groups and relationships at once; the next sync
    // leaves her out (the refusal) and rewrites what she was in.
    let removed = s.unlink_user(ana, None, "alice", days(401)).unwrap();
    assert_eq!(removed, [("sis".to_owned(), "s1".to_owned())]);
    mem.links.remove(&("sis".to_owned(), "s1".to_owned()));
    mem.refused.push(("sis".into(), "s1".into(), ana));
    mem.users.get_mut(&ana).unwrap().revision += 1;
    assert!(s.user_groups(ana).unwrap().is_empty());
    assert_eq!(
        s.guardianships(ana).unwrap(),
        store::Guardianships::default()
    );
    let (_, p) = step(
        db,
        &mut mem,
        &cfg,
        &day.people,
        Some(&day.roster()),
        days(402),
    );
    assert_eq!(item(&p, "s1").reason.code(), "link_refused");
    assert!(keys(&p).contains(&"class:c-math".to_owned()));
}

fn the_sis_card_shows_the_record_its_classes_and_runs(db: &mut TestDb) {
    let cfg = district_settings();
    let mut mem = MemoryDirectory::default();
    let mut day = district();
    let (run1, _) = step(
        db,
        &mut mem,
        &cfg,
        &day.people,
        Some(&day.roster()),
        days(0),
    );
    day.person("s1").edit(|f| f.grade = Some("06".into()));
    let (run2, _) = step(
        db,
        &mut mem,
        &cfg,
        &day.people,
        Some(&day.roster()),
        days(1),
    );
    let s = db.store();
    let ana = linked(&mem, "s1");

    let cards = s.sis_card(ana).unwrap();
    assert_eq!(cards.len(), 1);
    let c = &cards[0];
    assert_eq!((c.source.as_str(), c.sourced_id.as_str()), ("sis", "s1"));
    assert_eq!(c.role.as_deref(), Some("student"));
    assert_eq!(c.status.as_deref(), Some("active"));
    assert_eq!(c.enabled, Some(true));
    assert_eq!(c.identifier.as_deref(), Some("ID-s1"));
    assert_eq!(c.grade.as_deref(), Some("06"));
    assert_eq!(c.primary_org.as_deref(), Some("school-1"));
    assert_eq!(c.primary_org_name.as_deref(), Some("Lincoln Elementary"));
    assert_eq!(c.location.as_deref(), Some("Lincoln"));
    assert_eq!(c.homeroom.as_deref(), Some("Room 12"));
    assert_eq!(
        c.classes,
        [
            CardClass {
                sourced_id: "c-hr1".into(),
                title: "Homeroom 5A (Lincoln Elementary)".into(),
                course: Some("Homeroom".into()),
                teachers: vec!["Bảo Nguyễn".into()],
            },
            CardClass {
                sourced_id: "c-math".into(),
                title: "Math 5 (Lincoln Elementary)".into(),
                course: Some("Mathematics 5".into()),
                teachers: vec!["Al Ames".into(), "Bảo Nguyễn".into()],
            },
        ]
    );
    assert_eq!(c.rule, rostersync_core::directory::MatchRule::Created);
    assert_eq!(
        (c.linked_at, c.misses, c.deactivated_at),
        (days(0), 0, None)
    );
    let runs: Vec<(RunId, Outcome, jiff::Timestamp)> =
        c.runs.iter().map(|r| (r.run, r.outcome, r.at)).collect();
    assert_eq!(
        runs,
        [
            (run2, Outcome::Updated, crate::harness::now()),
            (run1, Outcome::Created, crate::harness::now())
        ],
        "newest first, at the run's start"
    );
    assert_eq!(
        c.runs[1].reason,
        "new in the SIS; no existing account matched"
    );
    let json = serde_json::to_value(c).unwrap();
    assert_eq!(json["classes"][1]["teachers"][0], "Al Ames");
    assert_eq!(json["rule"], "created");

    // A delta knows no classes: the card keeps the last known ones.
    day.person("s1").edit(|f| f.grade = Some("07".into()));
    let view = s.load_view("sis").unwrap();
    let changed: Vec<SisPerson> = day
        .people
        .iter()
        .filter(|p| p.sourced_id() == "s1")
        .cloned()
        .collect();
    let p = plan_kind(&cfg, &view, &changed, SyncKind::Delta, None, days(2));
    assert_eq!(p.sis_records.len(), 1);
    assert!(p.sis_records[0].classes().is_none());
    s.apply_plan(start(s, "sis"), &p, days(2)).unwrap();
    let c = &s.sis_card(ana).unwrap()[0];
    assert_eq!(c.grade.as_deref(), Some("07"));
    assert_eq!(c.classes.len(), 2);

    // At most 50 runs, newest first.
    let mut sql = String::new();
    for i in 0..60 {
        sql.push_str(&format!(
            "INSERT INTO runs (id, source, kind, triggered_by, status, complete, started_at, counts) \
             VALUES ({id}, 'sis', 'full', 'cli', 'succeeded', TRUE, '2026-10-01T00:00:00.000000000Z', '{{}}'); \
             INSERT INTO run_items (run_id, sourced_id, user_id, outcome, reason_code, reason, reason_json, changes) \
             VALUES ({id}, 's1', {ana}, 'unchanged', 'no_change', 'nothing changed', '{{}}', '[]');",
            id = 1000 + i
        ));
    }
    db.exec(&sql);
    let c = &s.sis_card(ana).unwrap()[0];
    assert_eq!(c.runs.len(), 50);
    assert_eq!(c.runs[0].run, RunId(1059));
    assert_eq!(c.runs[49].run, RunId(1010));

    // An account with no link has no card; an unknown account is an error.
    let other = s
        .import_accounts(
            &[crate::harness::sso_row("x@y.org", "X", "Y")],
            "google",
            days(3),
        )
        .unwrap();
    assert_eq!(other.created, 1);
    let x = s.find_user("x@y.org").unwrap().unwrap().user.id;
    assert!(s.sis_card(x).unwrap().is_empty());
    assert!(matches!(
        s.sis_card(AccountId(424_242)),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.guardianships(AccountId(424_242)),
        Err(StoreError::NotFound(_))
    ));
}

fn the_watermark_round_trips(db: &mut TestDb) {
    let s = db.store();
    let cfg = config("");
    assert_eq!(s.watermark("sis").unwrap(), None);
    let people = [person("s1", Role::Student, "Ana", "Li", Some("ana@x.org"))];
    let seen: jiff::Timestamp = "2026-08-31T23:59:58.123456789Z".parse().unwrap();
    let mut p = crate::harness::plan_store(s, &cfg, &people);
    p.watermark = Some(seen);
    s.apply_plan(start(s, "sis"), &p, days(0)).unwrap();
    assert_eq!(s.watermark("sis").unwrap(), Some(seen));
    assert_eq!(s.watermark("other").unwrap(), None);

    // A run without one leaves it; the next one moves it.
    let p = crate::harness::plan_store(s, &cfg, &people);
    assert_eq!(p.watermark, None);
    s.apply_plan(start(s, "sis"), &p, days(1)).unwrap();
    assert_eq!(s.watermark("sis").unwrap(), Some(seen));
    let mut p = crate::harness::plan_store(s, &cfg, &people);
    p.watermark = Some(days(1));
    s.apply_plan(start(s, "sis"), &p, days(1)).unwrap();
    assert_eq!(s.watermark("sis").unwrap(), Some(days(1)));
    assert_eq!(db.count("source_state"), 1);
}

/// A member whose link was refused at apply time (the account moved after planning) is
/// left out of the group; the group is marked for the next sync, which adds them.
fn a_member_left_out_by_a_conflict_is_added_next_time(db: &mut TestDb) {
    let s = db.store();
    let cfg = district_settings();
    s.import_accounts(
        &[crate::harness::sso_row("ana@x.org", "Ana", "Li")],
        "google",
        days(0),
    )
    .unwrap();
    let ana = s.find_user("ana@x.org").unwrap().unwrap().user.id;
    let day = district();
    let p = plan_full(
        &cfg,
        &s.load_view("sis").unwrap(),
        &day.people,
        Some(&day.roster()),
        days(0),
    );
    assert_eq!(item(&p, "s1").outcome, Outcome::Linked);
    db.exec(&format!(
        "UPDATE users SET revision = revision + 1 WHERE id = {ana}"
    ));
    let summary = s.apply_plan(start(s, "sis"), &p, days(0)).unwrap();
    assert_eq!(summary.conflicts, 1);
    assert!(s.user_groups(ana).unwrap().is_empty());
    let state = s.load_view("sis").unwrap().source_state().clone();
    assert_eq!(state.groups["class:c-math"], 0);
    assert_eq!(state.relationships_hash, Some(0));
    assert_ne!(
        state.groups["class:c-sci"], 0,
        "complete groups keep their hash"
    );

    let p = plan_full(
        &cfg,
        &s.load_view("sis").unwrap(),
        &day.people,
        Some(&day.roster()),
        days(1),
    );
    assert_eq!(item(&p, "s1").outcome, Outcome::Linked);
    assert!(keys(&p).contains(&"class:c-math".to_owned()));
    assert!(!keys(&p).contains(&"class:c-sci".to_owned()));
    s.apply_plan(start(s, "sis"), &p, days(1)).unwrap();
    assert!(
        s.user_groups(ana)
            .unwrap()
            .contains(&"Math 5 (Lincoln Elementary)".to_owned())
    );
    let pat = s.find_user("pat@x.org").unwrap().unwrap().user.id;
    assert_eq!(name_of(db, pat), ["Ana Li"]);
    let p = plan_full(
        &cfg,
        &s.load_view("sis").unwrap(),
        &day.people,
        Some(&day.roster()),
        days(2),
    );
    assert!(p.is_empty(), "{:#?}", p.roster);
}

conformance!(
    roster_plans_match_the_reference,
    a_member_left_out_by_a_conflict_is_added_next_time,
    the_sis_card_shows_the_record_its_classes_and_runs,
    the_watermark_round_trips,
);
