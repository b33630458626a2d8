//! `rostersync bench --floor` end to end: a 2 000-person simulated district synced into
//! SQLite, over REST and from a CSV package, with the floor's rows (the store's own floor
//! among them) beside the real ones, then an account source of the same district
//! (`--accounts`); a backend that cannot be reached makes `bench` exit 1 and say which.

use std::process::Command;

use serde_json::Value;

fn bench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rostersync"))
        .arg("bench")
        .args(args)
        .env_remove("ROSTERSYNC_BENCH_POSTGRES")
        .output()
        .unwrap()
}

/// Over REST, then the district's Google domain (`--accounts google`).
#[test]
fn the_floor_runs_beside_the_sync() {
    let rows = floor_beside_the_sync(&["--accounts", "google"]);
    accounts_link(&rows, "google");
}

/// The same read from the CSV package the simulator writes: the floor reads the package
/// too, and the delta reads a delta package. Then the district's Entra tenant.
#[test]
fn the_floor_runs_beside_a_sync_from_a_csv_package() {
    let rows = floor_beside_the_sync(&["--csv", "--accounts", "entra"]);
    accounts_link(&rows, "entra");
    let delta = rows
        .iter()
        .find(|r| r["phase"].as_str().unwrap().starts_with("delta"))
        .unwrap();
    let c = &delta["counts"];
    let changed = c["created"].as_u64().unwrap() + c["updated"].as_u64().unwrap();
    assert!(changed > 0, "{delta}");
    assert!(
        c["seen"].as_u64().unwrap() < 1000,
        "a delta package holds the changes only: {delta}"
    );
}

/// The account source's two rows, last: its first sync links every account of the
/// district (made by the SIS phases before) and makes none; the re-sync finds them all
/// unchanged.
fn accounts_link(rows: &[Value], kind: &str) {
    let [.., first, again] = rows else {
        panic!("too few rows: {rows:#?}");
    };
    assert_eq!(first["phase"], format!("{kind} first sync"), "{first}");
    assert_eq!(
        again["phase"],
        format!("{kind} no-change re-sync"),
        "{again}"
    );
    let linked = first["counts"]["linked"].as_u64().unwrap();
    assert!(linked > 500, "{first}");
    assert_eq!(first["counts"]["created"], 0, "{first}");
    assert_eq!(again["counts"]["unchanged"], linked, "{again}");
    assert_eq!(again["counts"]["linked"], 0, "{again}");
    assert!(
        first["sim_cpu_s"].as_f64().unwrap() > 0.0,
        "the stand-in served: {first}"
    );
}

/// Runs a 2 000-person bench with `--floor` and checks its rows; the rows.
fn floor_beside_the_sync(extra: &[&str]) -> Vec<Value> {
    let mut args = vec![
        "--users",
        "2000",
        "--backends",
        "sqlite",
        "--floor",
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = bench(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let phase = |name: &str| {
        rows.iter()
            .find(|r| r["phase"] == name)
            .unwrap_or_else(|| panic!("no {name} row in {rows:#?}"))
    };
    let floor_import = phase("floor first import");
    let floor_same = phase("floor no-change re-sync");
    let import = phase("first import");
    let same = phase("no-change re-sync");
    for r in &rows {
        for field in [
            "wall_s",
            "records_per_s",
            "peak_rss_mb",
            "start_rss_mb",
            "pull_s",
            "sim_cpu_s",
        ] {
            assert!(r[field].as_f64().is_some(), "{field} in {r}");
        }
        assert!(r["wall_s"].as_f64().unwrap() > 0.0, "{r}");
        // What was resident when the phase began (the kernel updates its peak counter
        // lazily, so the peak may read a little below it).
        assert!(r["start_rss_mb"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["enrollments"].as_u64().unwrap() > 2000, "{r}");
        let by_role = &r["people_by_role"];
        let students = by_role["students"].as_u64().unwrap();
        let staff = by_role["staff"].as_u64().unwrap();
        let guardians = by_role["guardians"].as_u64().unwrap();
        assert!(students > 0 && staff > 0 && guardians > 0, "{r}");
        assert!(by_role["teachers"].as_u64().unwrap() <= staff, "{r}");
    }
    // The floor saw the people the sync saw, stored them, and found them all unchanged.
    let people = |r: &Value| {
        let b = &r["people_by_role"];
        ["students", "staff", "guardians"]
            .iter()
            .map(|k| b[*k].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(
        floor_import["counts"]["seen"].as_u64(),
        Some(people(floor_import))
    );
    assert_eq!(
        floor_import["counts"]["created"],
        floor_import["counts"]["seen"]
    );
    assert_eq!(floor_same["counts"]["updated"], 0);
    assert!(floor_same["counts"]["unchanged"].as_u64().unwrap() > people(floor_same));
    assert!(floor_same["load_s"].as_f64().unwrap() > 0.0);
    assert_eq!(floor_import["enrollments"], import["enrollments"]);
    // The real rows carry their ratio to the floor; the others none.
    for (real, floor) in [(import, floor_import), (same, floor_same)] {
        let ratio = real["floor_ratio"].as_f64().unwrap();
        let expected = real["wall_s"].as_f64().unwrap() / floor["wall_s"].as_f64().unwrap();
        assert!((ratio - expected).abs() < 1e-6 * expected, "{real}");
    }
    assert!(floor_import.get("floor_ratio").is_none());
    // The no-change re-sync and its floor ran three times each, taking turns (`--rounds`):
    // each row is the run of median wall time, every run's wall time beside it.
    for r in [same, floor_same] {
        let mut walls: Vec<f64> = r["round_walls_s"]
            .as_array()
            .unwrap_or_else(|| panic!("no round_walls_s in {r}"))
            .iter()
            .map(|w| w.as_f64().unwrap())
            .collect();
        assert_eq!(walls.len(), 3, "{r}");
        walls.sort_by(f64::total_cmp);
        assert_eq!(r["wall_s"].as_f64(), Some(walls[1]), "{r}");
    }
    assert!(import.get("round_walls_s").is_none());
    // A sync's peak is its largest stage's (each stage's counter starts where the last
    // left off); a floor's rows have none.
    let stages = |r: &Value| -> Vec<f64> {
        ["peak_pull_mb", "peak_plan_mb", "peak_apply_mb"]
            .iter()
            .map(|k| r[*k].as_f64().unwrap_or_else(|| panic!("{k} in {r}")))
            .collect()
    };
    for r in [import, same] {
        let by_stage = stages(r);
        assert!(by_stage.iter().all(|&mb| mb > 0.0), "every stage ran: {r}");
        let largest = by_stage.iter().copied().fold(0.0, f64::max);
        assert_eq!(r["peak_rss_mb"].as_f64(), Some(largest), "{r}");
    }
    for r in [floor_import, floor_same] {
        assert_eq!(stages(r), [0.0; 3], "{r}");
    }
    // The store's own floor copied the first import's directory: every account of it
    // (the copy is checked table by table against the directory, or the bench fails).
    let store_floor = phase("floor store write");
    assert_eq!(
        store_floor["counts"]["created"],
        import["counts"]["created"]
    );
    assert!(
        import["counts"]["created"].as_u64().unwrap() > 1000,
        "{import}"
    );
    assert!(store_floor["records_per_s"].as_f64().unwrap() > 0.0);
    assert!(store_floor.get("floor_ratio").is_none());
    assert!(
        rows.iter()
            .any(|r| r["phase"].as_str().unwrap().starts_with("delta"))
    );
    rows
}

#[test]
fn a_backend_that_fails_makes_bench_exit_1_and_say_which() {
    let out = bench(&[
        "--users",
        "200",
        "--backends",
        "postgres",
        "--postgres",
        "postgres://nobody@127.0.0.1:1/none",
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("bench: postgres, 200 people: cannot connect to PostgreSQL"),
        "{stderr}"
    );
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(rows.is_empty());
}
