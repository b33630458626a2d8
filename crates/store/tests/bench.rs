//! Apply speed, ignored by default (run with `--ignored --nocapture`, in release):
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-store cargo test -p store --release --test main -- --ignored --nocapture apply_speed
//! ```
//!
//! A first import of `ROSTERSYNC_BENCH_PEOPLE` (default 100 000) people, then the same
//! people again (nothing to do), then a 1 % change.

use std::time::{Duration, Instant};

use oneroster::Role;
use rostersync_core::sis::SisPerson;

use crate::harness::{TestDb, config, later, on_postgres, on_sqlite, person, plan_store, start};

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
            p.middle_name = (i % 3 == 0).then(|| "M".to_owned());
            p
        })
        .collect()
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
    let step = |label: &str, people: &[SisPerson], minutes: i64| {
        let t = Instant::now();
        let p = plan_store(s, &cfg, people);
        let planned = t.elapsed();
        let run = start(s, "sis");
        let (t, cpu) = (Instant::now(), thread_cpu());
        let summary = s.apply_plan(run, &p, later(minutes)).unwrap();
        let applied = t.elapsed();
        let cpu = thread_cpu()
            .zip(cpu)
            .map_or(0.0, |(b, a)| (b - a).as_secs_f64());
        eprintln!(
            "{backend:8} {label:12} {n:>7} people: load view + plan {:>6.2} s, apply {:>6.2} s \
             (this process's CPU {cpu:.2} s), {} writes",
            planned.as_secs_f64(),
            applied.as_secs_f64(),
            p.writes().count(),
        );
        summary
    };
    let first = step("first import", &everyone, 0);
    assert_eq!(first.counts.created, n as u64);
    let again = step("no change", &everyone, 1);
    assert_eq!(again.counts.unchanged, n as u64);
    for p in everyone.iter_mut().step_by(100) {
        p.grade = Some("06".into());
    }
    let delta = step("1 % changed", &everyone, 2);
    assert_eq!(delta.counts.updated, n.div_ceil(100) as u64);
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
