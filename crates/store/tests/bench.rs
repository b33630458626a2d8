//! Apply speed, ignored by default (run with `--ignored --nocapture`, in release):
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-store cargo test -p store --release --test main -- --ignored --nocapture apply_speed
//! ```
//!
//! A first import of `ROSTERSYNC_BENCH_PEOPLE` (default 100 000) people with their
//! roster (every student in 5 classes of 25, one a homeroom; a teacher per class; 10
//! schools; groups per class and per school and role), then the same again (nothing to
//! do), then a 1 % change of grades, then 1 % of the students changing one class.

use std::time::{Duration, Instant};

use oneroster::Role;
use rostersync_core::roster::{
    ClassInfo, ClassKind, Enroll, EnrollRole, OrgInfo, Roster, SessionInfo,
};
use rostersync_core::sis::SisPerson;

use crate::harness::{TestDb, config, later, on_postgres, on_sqlite, person, plan_full, start};

const SCHOOLS: usize = 10;
const CLASS_SIZE: usize = 25;
const CLASSES_EACH: usize = 5;

fn people(n: usize) -> Vec<SisPerson> {
    (0..n)
        .map(|i| {
            let mut p = person(
                &format!("u{i:07}"),
                if i % 20 == 0 {
                    Role::Teacher
                } else {
                    Role::Student
                },
                &format!("Given{i}"),
                &format!("Family{}", i % 5000),
                Some(&format!("person{i}@students.district.k12.us")),
            );
            p.edit(|f| f.middle_name = (i % 3 == 0).then(|| "M".to_owned()));
            let school = format!("school-{}", i % SCHOOLS);
            p.edit(|f| {
                f.primary_org = Some(school.clone());
                f.orgs = vec![school];
            });
            p
        })
        .collect()
}

/// Each run of `CLASS_SIZE` students shares `CLASSES_EACH` classes (the first a
/// homeroom); teachers take the classes in turn. `moved` students swap their last class
/// with the next group's.
fn roster(people: &[SisPerson], moved: usize) -> Roster {
    let students: Vec<u32> = (0..people.len() as u32).filter(|i| i % 20 != 0).collect();
    let teachers: Vec<u32> = (0..people.len() as u32).filter(|i| i % 20 == 0).collect();
    let groups = students.len().div_ceil(CLASS_SIZE);
    let n_classes = groups * CLASSES_EACH;
    let classes = (0..n_classes)
        .map(|c| ClassInfo {
            sourced_id: format!("c{c:07}"),
            title: format!("Class {c}"),
            kind: if c % CLASSES_EACH == 0 {
                ClassKind::Homeroom
            } else {
                ClassKind::Scheduled
            },
            location: Some(format!("Room {}", c % 400)),
            school: Some(format!("school-{}", (c / CLASSES_EACH) % SCHOOLS)),
            course: Some(format!("Course {}", c % 250)),
        })
        .collect();
    let mut enrollments = Vec::with_capacity(students.len() * CLASSES_EACH + n_classes);
    for (k, &person) in students.iter().enumerate() {
        let group = k / CLASS_SIZE;
        for j in 0..CLASSES_EACH {
            let mut class = group * CLASSES_EACH + j;
            if j == CLASSES_EACH - 1 && k % 100 == 0 && k / 100 < moved {
                class = (class + CLASSES_EACH) % n_classes;
            }
            enrollments.push(Enroll {
                person,
                class: class as u32,
                role: EnrollRole::Student,
            });
        }
    }
    for c in 0..n_classes {
        enrollments.push(Enroll {
            person: teachers[c % teachers.len()],
            class: c as u32,
            role: EnrollRole::Teacher,
        });
    }
    let mut orgs: Vec<OrgInfo> = (0..SCHOOLS)
        .map(|s| OrgInfo {
            sourced_id: format!("school-{s}"),
            name: format!("School {s}"),
            is_school: true,
        })
        .collect();
    orgs.push(OrgInfo {
        sourced_id: "district".into(),
        name: "District".into(),
        is_school: false,
    });
    Roster {
        orgs,
        classes,
        enrollments,
        sessions: vec![SessionInfo {
            sourced_id: "2026".into(),
            title: "2026-27".into(),
            kind: "schoolYear".into(),
            start: None,
            end: None,
            parent: None,
        }],
        has_enrollments: true,
    }
}

/// This thread's CPU time so far (Linux), to see through a busy machine's wall clock.
fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(Duration::from_nanos(
        stat.split_whitespace().next()?.parse().ok()?,
    ))
}

fn apply_speed(db: &mut TestDb) {
    let n: usize = std::env::var("ROSTERSYNC_BENCH_PEOPLE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let s = db.store();
    let cfg = config("");
    let mut everyone = people(n);
    let backend = s.backend();
    let step = |label: &str, people: &[SisPerson], roster: &Roster, minutes: i64| {
        let t = Instant::now();
        let view = s.load_view("sis").unwrap();
        let p = plan_full(&cfg, &view, people, Some(roster), later(minutes));
        drop(view);
        let planned = t.elapsed();
        let run = start(s, "sis");
        let (t, cpu) = (Instant::now(), thread_cpu());
        let summary = s.apply_plan(run, &p, later(minutes)).unwrap();
        let applied = t.elapsed();
        let cpu = thread_cpu()
            .zip(cpu)
            .map_or(0.0, |(b, a)| (b - a).as_secs_f64());
        let groups = p.roster.as_ref().map_or(0, |r| r.groups.len());
        eprintln!(
            "{backend:8} {label:14} {n:>7} people: load view + plan {:>6.2} s, apply {:>6.2} s \
             (this process's CPU {cpu:.2} s), {} person writes, {groups} groups written",
            planned.as_secs_f64(),
            applied.as_secs_f64(),
            p.writes().count(),
        );
        summary
    };
    let classes = roster(&everyone, 0);
    let enrollments = classes.enrollments.len();
    let first = step("first import", &everyone, &classes, 0);
    assert_eq!(first.counts.created, n as u64);
    let members = db.count("group_members");
    eprintln!(
        "{backend:8} {enrollments} enrollments, {} groups, {members} memberships",
        db.count("groups")
    );
    assert!(members as usize >= enrollments, "{members} < {enrollments}");
    let again = step("no change", &everyone, &classes, 1);
    assert_eq!(again.counts.unchanged, n as u64);
    assert_eq!(db.count("group_members"), members);
    for p in everyone.iter_mut().step_by(100) {
        p.edit(|f| f.grade = Some("06".into()));
    }
    let delta = step("1 % changed", &everyone, &classes, 2);
    assert_eq!(delta.counts.updated, n.div_ceil(100) as u64);
    let moved = roster(&everyone, n / 100);
    step("1 % moved", &everyone, &moved, 3);
    assert_eq!(
        db.count("group_members"),
        members,
        "as many in, as many out"
    );
    assert_eq!(db.count("users"), n as i64);
}

#[test]
#[ignore = "a measurement: run with --ignored --nocapture, in release"]
fn apply_speed_sqlite() {
    on_sqlite(apply_speed);
}

#[test]
#[ignore = "a measurement: run with --ignored --nocapture, in release"]
fn apply_speed_postgres() {
    on_postgres(apply_speed);
}
