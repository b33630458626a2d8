//! `rostersync inspect` says, per collection, what the source sent that the read accepted
//! all the same — values read leniently, blank required cells, references to records it
//! does not hold — in `--json` and in the table, and exits 0: none of it fails the read.

use std::path::PathBuf;

use serde_json::Value;

use crate::harness::{Backend, Cli};

fn package(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../oneroster/tests/data/packages")
        .join(name)
        .display()
        .to_string()
}

/// A collection's findings: (name, values read leniently, blank required, [(target,
/// references to missing records in it)]).
type Counts = (String, u64, u64, Vec<(String, u64)>);

/// Each collection's findings, by name.
fn counts(v: &Value) -> Vec<Counts> {
    v["collections"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, c)| {
            let dangling = c["dangling"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(t, d)| (t.clone(), d["count"].as_u64().unwrap()))
                .collect();
            (
                name.clone(),
                c["lenient"]["count"].as_u64().unwrap(),
                c["blank_required"]["count"].as_u64().unwrap(),
                dangling,
            )
        })
        .collect()
}

fn named(target: &str, n: u64) -> (String, u64) {
    (target.to_owned(), n)
}

#[test]
fn inspect_counts_what_a_package_bends_and_exits_zero() {
    let Some(cli) = Cli::new(Backend::Sqlite) else {
        return;
    };
    let path = package("v11-bulk-loose");
    let v = cli.json(&["inspect", &path]);
    assert_eq!(
        counts(&v),
        [
            ("academicSessions".to_owned(), 2, 1, vec![]),
            (
                "classes".to_owned(),
                1,
                0,
                vec![named("academicSessions", 1), named("courses", 1)]
            ),
            (
                "courses".to_owned(),
                0,
                1,
                vec![named("academicSessions", 1), named("orgs", 1)]
            ),
            (
                "enrollments".to_owned(),
                3,
                1,
                vec![named("classes", 1), named("users", 1)]
            ),
            ("orgs".to_owned(), 1, 1, vec![named("orgs", 1)]),
            (
                "users".to_owned(),
                6,
                2,
                vec![named("orgs", 1), named("users", 1)]
            ),
        ],
        "{v:#}"
    );
    let users = &v["collections"]["users"];
    assert_eq!(users["complete"], true);
    assert_eq!(
        users["lenient"]["examples"][0],
        serde_json::json!({"sourced_id": "u-t1", "field": "enabledUser", "value": "TRUE", "read_as": "true"})
    );
    assert_eq!(users["blank_required"]["fields"]["givenName"], 1);

    // The table says the same, a line per collection and its examples.
    let table = cli.ok(&["inspect", &path]);
    for line in [
        "read, but not as the standard has it:",
        "  users: 6 values read leniently (enabledUser `TRUE` → true …), 2 blank required cells (enabledUser 1, givenName 1), 1 reference to missing orgs (orgSourcedIds `org-zz`), 1 reference to missing users (agentSourcedIds `u-gone`)",
        "    - u-s2: givenName blank",
        "    - e-4: classSourcedId `cls-nope` is not among the classes",
    ] {
        assert!(table.lines().any(|l| l == line), "{line:?} in:\n{table}");
    }
}

#[test]
fn inspect_finds_the_enrollments_of_people_the_sis_left_out() {
    let Some(cli) = Cli::new(Backend::Sqlite) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let serve = |faults: &str| {
        rt.block_on(sim::Server::start(sim::SimConfig {
            district: sim::DistrictConfig {
                users: 600,
                seed: 3,
                ..sim::DistrictConfig::default()
            },
            auth: sim::AuthMode::None,
            faults: faults.parse().unwrap(),
            ..sim::SimConfig::default()
        }))
        .unwrap()
    };

    // The simulated district keeps the standard: nothing to say.
    let clean = serve("");
    let v = cli.json(&["inspect", clean.base_url()]);
    for (name, lenient, blank, dangling) in counts(&v) {
        assert_eq!((lenient, blank), (0, 0), "{name}: {v:#}");
        assert!(dangling.is_empty(), "{name}: {dangling:?}");
    }
    let all_users = v["collections"]["users"]["records"].as_u64().unwrap();

    // A SIS that leaves one school's people out of /users still serves their
    // enrollments: each points at a user the pull does not hold.
    let faulty = serve("drop_school=org-1");
    let v = cli.json(&["inspect", faulty.base_url()]);
    let users = &v["collections"]["users"];
    assert!(users["records"].as_u64().unwrap() < all_users, "{v:#}");
    assert_eq!(
        users["complete"], true,
        "the totals agree with what is served"
    );
    let dangling = &v["collections"]["enrollments"]["dangling"]["users"];
    assert!(dangling["count"].as_u64().unwrap() > 0, "{v:#}");
    assert_eq!(
        dangling["fields"]["user"], dangling["count"],
        "REST names: {v:#}"
    );
    assert_eq!(dangling["examples"].as_array().unwrap().len(), 5);
    // Their guardians still list them as agents.
    assert!(
        users["dangling"]["users"]["fields"]["agents"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{v:#}"
    );
    rt.block_on(clean.stop());
    rt.block_on(faulty.stop());
}
