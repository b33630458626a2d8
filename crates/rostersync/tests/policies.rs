//! The district's policies end to end: deactivation, reactivation, access, guardians,
//! locations, homerooms, deltas, single-user sync, links by hand, and a year of churn
//! checked against an oracle written from the simulator, not from the engine.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use sim::{Collection, District, DistrictConfig, RunningSim, SimConfig, Version};

use crate::harness::{Cli, Serve, sample_district_with};

crate::on_both_backends!(
    withdrawn_people_are_deactivated_only_by_a_complete_full_pull,
    a_roster_moving_while_paged_deactivates_nobody_still_there,
    a_killed_sync_is_marked_interrupted_by_the_next_command,
    serve_stops_on_sigterm_without_losing_a_run,
    a_returning_student_is_reactivated_not_duplicated,
    an_agent_is_not_downgraded,
    guardians_and_their_students_match_the_district,
    locations_homerooms_and_groups_follow_the_settings,
    single_user_sync_touches_one_account_only,
    unlink_link_and_relink_by_hand,
    a_year_of_churn_matches_the_district,
    the_kindergarten_email_change_renames_with_aliases,
);

/// Guardians imported too: everyone the simulator serves has an account.
const EVERYONE: &str = "[source.import]\nother_users = true\n";

const MAPPING: &str = "[source.user_mapping]\ntranslate_email = [{ from = \"students.district.k12.us\", to = \"district.k12.us\" }]\nappend_domain = \"district.k12.us\"\n";

/// A simulated district served in this process, with a runtime that outlives the test.
struct Sim {
    rt: tokio::runtime::Runtime,
    running: Option<RunningSim>,
}

impl Sim {
    fn start(users: u32, seed: u64, day: u32, faults: &str) -> Sim {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let config = SimConfig {
            district: DistrictConfig {
                users,
                seed,
                day,
                ..DistrictConfig::default()
            },
            faults: faults.parse().unwrap(),
            ..SimConfig::default()
        };
        let running = rt.block_on(sim::Server::start(config)).unwrap();
        Sim {
            rt,
            running: Some(running),
        }
    }

    /// This simulator's district (as it is now) served again, with `faults`.
    fn again(&self, faults: &str) -> Sim {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let config = SimConfig {
            faults: faults.parse().unwrap(),
            ..self.running().config().clone()
        };
        let district = (*self.district()).clone();
        let running = rt
            .block_on(sim::Server::start_with(config, district))
            .unwrap();
        Sim {
            rt,
            running: Some(running),
        }
    }

    fn running(&self) -> &RunningSim {
        self.running.as_ref().unwrap()
    }

    fn district(&self) -> std::sync::Arc<District> {
        self.running().district()
    }

    fn advance(&self, days: u32) {
        self.rt.block_on(self.running().advance(days)).unwrap();
    }

    /// Settings for a REST source against this simulator.
    fn source(&self, name: &str, extra: &str) -> String {
        let r = self.running();
        format!(
            "[network]\nallow_loopback = true\n[[source]]\nname = \"{name}\"\nkind = \"oneroster-api\"\nurl = \"{}\"\nauth = \"oauth2\"\ntoken_url = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\npage_size = 200\nretry_attempts = 2\n{extra}",
            r.base_url(),
            r.token_url().unwrap(),
            sim::DEFAULT_CLIENT_ID,
            sim::DEFAULT_CLIENT_SECRET
        )
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            self.rt.block_on(r.stop());
        }
    }
}

/// A user record of the simulated district, read with the project's own parser.
fn sim_user(d: &District, id: &str) -> oneroster::User {
    let v = d.record_json(Collection::Users, Version::V1p1, id).unwrap();
    serde_json::from_str(&v.to_string()).unwrap()
}

fn imported_role(u: &oneroster::User) -> bool {
    !matches!(
        u.primary_role(),
        Some(oneroster::Role::Parent | oneroster::Role::Guardian | oneroster::Role::Relative)
    )
}

/// Accounts by their SIS sourcedId.
fn accounts(cli: &Cli) -> BTreeMap<String, Value> {
    let all = cli.json(&["users", "list", "--limit", "0"]);
    let mut out = BTreeMap::new();
    for u in all.as_array().unwrap() {
        if let Some(id) = u["sis"]["sourced_id"].as_str() {
            assert!(
                out.insert(id.to_owned(), u.clone()).is_none(),
                "two accounts for {id}"
            );
        }
    }
    out
}

/// Offset paging while the SIS changes: a withdrawal before the page boundary shifts
/// everyone after it one place forward, so one person still enrolled falls between two
/// pages; with arrivals the totals still match. Nobody the SIS still has may be
/// deactivated: the absent people are read one by one first.
fn a_roster_moving_while_paged_deactivates_nobody_still_there(cli: Cli) {
    // Seed 7, 11 days: four withdrawals (one on the first page) and four arrivals, so the
    // total the server reports does not change.
    let calm = Sim::start(1000, 7, 0, "");
    cli.configure(&calm.source("campus", EVERYONE));
    let first = cli.json(&["sync"]);
    assert_eq!(first["status"], "succeeded", "{first:#}");
    let linked = accounts(&cli);

    let moving = calm.again("advance_mid_users=11");
    cli.configure(&moving.source("campus", EVERYONE));
    let run = cli.json(&["sync"]);
    let now: BTreeSet<String> = moving
        .district()
        .active_ids(Collection::Users)
        .into_iter()
        .collect();
    let gone: Vec<&String> = linked.keys().filter(|id| !now.contains(*id)).collect();
    assert!(!gone.is_empty(), "the simulator withdrew no one in 11 days");
    let acc = accounts(&cli);
    for id in now.iter().filter(|id| linked.contains_key(*id)) {
        assert_eq!(
            acc[id]["active"], true,
            "{id} is still in the SIS but was deactivated: {run:#}"
        );
    }
    assert_eq!(run["complete"], false, "{run:#}");
    assert_eq!(run["counts"]["deactivated"], 0, "{run:#}");
    assert!(
        run["warnings"].as_array().unwrap().iter().any(|w| w
            .as_str()
            .unwrap()
            .contains("the pull missed people the SIS still has")),
        "the run says why: {run:#}"
    );

    // Read again while nothing moves: the withdrawn people, and only they, go.
    let calm = moving.again("");
    cli.configure(&calm.source("campus", EVERYONE));
    let run = cli.json(&["sync"]);
    assert_eq!(run["complete"], true, "{run:#}");
    let acc = accounts(&cli);
    for (id, account) in &acc {
        if linked.contains_key(id) {
            assert_eq!(
                account["active"],
                now.contains(id),
                "{id}: active exactly while in the SIS"
            );
        }
    }
}

/// kill -9 during a pull: the run is recorded before the pull, so it stays `running`
/// with nobody running it. The next command settles it as interrupted, and the next
/// sync runs.
fn a_killed_sync_is_marked_interrupted_by_the_next_command(cli: Cli) {
    let slow = Sim::start(300, 5, 0, "latency=150ms");
    cli.configure(&slow.source("campus", ""));
    let mut child = cli
        .command(&["sync"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the run is recorded (it is, before the pull), then kill the process.
    let started = std::time::Instant::now();
    let running = loop {
        let runs = cli.json(&["runs", "list"]);
        if let Some(run) = runs.as_array().unwrap().first().cloned() {
            break run;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the sync never recorded its run"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(
        running["status"], "running",
        "the pull takes seconds at 150 ms a request: {running:#}"
    );
    let run = running["run_id"]
        .as_i64()
        .or(running["id"].as_i64())
        .unwrap();

    let shown = cli.json(&["runs", "show", &run.to_string()]);
    assert_eq!(shown["status"], "interrupted", "{shown:#}");
    assert!(
        shown["error"]
            .as_str()
            .unwrap()
            .contains("nothing of it was applied"),
        "{shown:#}"
    );
    assert!(accounts(&cli).is_empty(), "nothing was applied");

    let calm = slow.again("");
    cli.configure(&calm.source("campus", ""));
    let next = cli.json(&["sync"]);
    assert_eq!(next["status"], "succeeded", "{next:#}");
}

/// `serve` of this installation with `extra` arguments, its stderr kept.
fn start_serve(cli: &Cli, extra: &[&str]) -> Serve {
    Serve::start_keeping_stderr(|args| {
        let mut all = args.to_vec();
        all.extend_from_slice(extra);
        cli.command(&all)
    })
}

/// SIGTERM while a sync runs: no new work, the run gets the grace period, then it is
/// marked interrupted and serve exits 1 — no panic, no run left `running`. With nothing
/// running, serve exits 0.
fn serve_stops_on_sigterm_without_losing_a_run(cli: Cli) {
    let slow = Sim::start(300, 5, 0, "latency=300ms");
    cli.configure(&slow.source("campus", ""));
    let token = cli.ok(&["token", "create", "--scope", "write", "--name", "ci"]);
    let serve = start_serve(&cli, &["--shutdown-grace", "1"]);
    let base = serve.base.clone();
    let started = reqwest::blocking::Client::new()
        .post(format!("{base}/api/v1/sources/campus/sync"))
        .bearer_auth(token.trim())
        .send()
        .unwrap();
    assert_eq!(started.status().as_u16(), 202);
    let run: Value = started.json().unwrap();
    let (code, stderr) = serve.terminate();
    assert_eq!(code, Some(1), "a run had to be abandoned: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("marked interrupted"), "{stderr}");
    let id = run["run_id"].as_i64().or(run["id"].as_i64()).unwrap();
    let shown = cli.json(&["runs", "show", &id.to_string()]);
    assert_eq!(shown["status"], "interrupted", "{shown:#}");
    assert!(accounts(&cli).is_empty(), "nothing was applied");

    let serve = start_serve(&cli, &[]);
    let (code, stderr) = serve.terminate();
    assert_eq!(code, Some(0), "{stderr}");
}

fn withdrawn_people_are_deactivated_only_by_a_complete_full_pull(cli: Cli) {
    let sim = Sim::start(300, 21, 0, "");
    cli.configure(&sim.source("campus", ""));
    cli.json(&["sync"]);
    let before: BTreeSet<String> = sim
        .district()
        .active_ids(Collection::Users)
        .into_iter()
        .collect();
    sim.advance(60);
    let after: BTreeSet<String> = sim
        .district()
        .active_ids(Collection::Users)
        .into_iter()
        .collect();
    let d = sim.district();
    let withdrawn: Vec<&String> = before
        .difference(&after)
        .filter(|id| accounts(&cli).contains_key(*id))
        .collect();
    assert!(
        !withdrawn.is_empty(),
        "the simulator withdrew no one in 11 days"
    );

    let delta = cli.json(&["sync", "--delta"]);
    assert_eq!(delta["kind"], "delta");
    assert_eq!(
        delta["counts"]["deactivated"], 0,
        "a delta never deactivates by absence"
    );
    let acc = accounts(&cli);
    assert!(withdrawn.iter().all(|id| acc[*id]["active"] == true));

    // The same district behind a server whose totals drift: incomplete, nobody deactivated.
    let faulty = {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let cfg = SimConfig {
            faults: "total_drift=1".parse().unwrap(),
            ..sim.running().config().clone()
        };
        let running = rt
            .block_on(sim::Server::start_with(cfg, (*d).clone()))
            .unwrap();
        Sim {
            rt,
            running: Some(running),
        }
    };
    cli.configure(&faulty.source("campus", ""));
    let incomplete = cli.json(&["sync"]);
    assert_eq!(incomplete["complete"], false);
    assert_eq!(incomplete["counts"]["deactivated"], 0);
    assert!(
        incomplete["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("X-Total-Count changed")),
        "{incomplete:#}"
    );

    cli.configure(&sim.source("campus", ""));
    let full = cli.json(&["sync", "--full"]);
    assert_eq!(full["complete"], true);
    assert_eq!(
        full["counts"]["deactivated"].as_u64(),
        Some(withdrawn.len() as u64),
        "{full:#}"
    );
    let acc = accounts(&cli);
    for id in &withdrawn {
        assert_eq!(acc[*id]["active"], false, "{id}");
        assert_eq!(acc[*id]["access"], "no-access");
    }
    let run = cli.json(&[
        "runs",
        "show",
        &full["run_id"].to_string(),
        "--items",
        "deactivated",
    ]);
    for item in run["items"].as_array().unwrap() {
        assert_eq!(
            item["reason"],
            "missing from 1 complete full pull(s) in a row"
        );
    }
    assert_eq!(
        accounts(&cli).len(),
        acc.len(),
        "deactivated, never deleted"
    );
}

fn a_returning_student_is_reactivated_not_duplicated(cli: Cli) {
    let district = sample_district_with(&cli.dir, "");
    cli.configure(&format!(
        "[[source]]\nname = \"sis\"\nkind = \"oneroster-csv\"\npath = \"{}\"\n[source.import]\ndeactivate_after_misses = 2\n",
        district.display()
    ));
    cli.json(&["sync"]);
    let id = cli.json(&["users", "show", "liam.oconnor@students.district.k12.us"])["id"].clone();
    let users = district.join("users.csv");
    let full = std::fs::read_to_string(&users).unwrap();
    let without: String = full
        .lines()
        .filter(|l| !l.starts_with("usr-s-4,"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&users, &without).unwrap();

    let first = cli.json(&["sync"]);
    assert_eq!(first["counts"]["deactivated"], 0, "one miss of two");
    let second = cli.json(&["sync"]);
    assert_eq!(second["counts"]["deactivated"], 1);
    let liam = cli.json(&["users", "show", &id.to_string()]);
    assert_eq!(liam["active"], false);

    std::fs::write(&users, &full).unwrap();
    let back = cli.json(&["sync"]);
    assert_eq!(back["counts"]["reactivated"], 1, "{back:#}");
    assert_eq!(back["counts"]["created"], 0);
    let liam = cli.json(&["users", "show", &id.to_string()]);
    assert_eq!(liam["active"], true);
    assert_eq!(liam["access"], "requestor");
    let fields: Vec<&str> = liam["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"active"), "{fields:?}");
    assert_eq!(cli.users().len(), 10, "no duplicate");
}

fn an_agent_is_not_downgraded(cli: Cli) {
    let district = sample_district_with(&cli.dir, "");
    cli.configure(&format!(
        "[[source]]\nname = \"sis\"\nkind = \"oneroster-csv\"\npath = \"{}\"\n",
        district.display()
    ));
    cli.json(&["sync"]);
    cli.ok(&["users", "set-access", "tam.nguyen@district.k12.us", "agent"]);
    // The SIS withdraws the teacher: an agent is neither lowered nor deactivated.
    let users = district.join("users.csv");
    let text = std::fs::read_to_string(&users)
        .unwrap()
        .replace("usr-t-2,active", "usr-t-2,tobedeleted");
    std::fs::write(&users, text).unwrap();
    let run = cli.json(&["sync"]);
    assert_eq!(run["counts"]["deactivated"], 0);
    let tam = cli.json(&["users", "show", "tam.nguyen@district.k12.us"]);
    assert_eq!(
        (tam["access"].as_str(), tam["active"].as_bool()),
        (Some("agent"), Some(true))
    );
    let skipped = cli.json(&[
        "runs",
        "show",
        &run["run_id"].to_string(),
        "--items",
        "skipped",
    ]);
    assert!(
        skipped["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["reason_code"] == "protected_access")
    );

    cli.configure(&format!(
        "[[source]]\nname = \"sis\"\nkind = \"oneroster-csv\"\npath = \"{}\"\n[source.import]\nallow_role_downgrades = true\n",
        district.display()
    ));
    let run = cli.json(&["sync"]);
    assert_eq!(run["counts"]["deactivated"], 1);
    let tam = cli.json(&["users", "show", "tam.nguyen@district.k12.us"]);
    assert_eq!(
        (tam["access"].as_str(), tam["active"].as_bool()),
        (Some("no-access"), Some(false))
    );
}

fn guardians_and_their_students_match_the_district(cli: Cli) {
    let sim = Sim::start(250, 5, 0, "");
    cli.configure(&sim.source(
        "campus",
        "[source.import]\nother_users = true\n[source.features]\nguardian_logins = true\n",
    ));
    cli.json(&["sync"]);
    let d = sim.district();
    let acc = accounts(&cli);
    let mut checked = 0;
    for id in d.active_ids(Collection::Users) {
        let u = sim_user(&d, &id);
        if imported_role(&u) {
            continue;
        }
        let guardian = cli.json(&["users", "show", &acc[&id]["id"].to_string()]);
        assert_eq!(guardian["type"], "guardian");
        assert_eq!(guardian["access"], "requestor", "guardian logins are on");
        let mut got: Vec<String> = guardian["students"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let account = s["id"].as_i64().unwrap();
                acc.iter()
                    .find(|(_, a)| a["id"].as_i64() == Some(account))
                    .unwrap()
                    .0
                    .clone()
            })
            .collect();
        got.sort();
        let mut want = u.agents.clone();
        want.sort();
        assert_eq!(got, want, "students of guardian {id}");
        checked += 1;
    }
    assert!(checked > 20, "only {checked} guardians");

    // Without guardian logins, guardians exist without access.
    let other = Cli::new(crate::harness::Backend::Sqlite).unwrap();
    other.configure(&sim.source("campus", "[source.import]\nother_users = true\n"));
    other.json(&["sync"]);
    let guardians: Vec<Value> = other
        .users()
        .into_iter()
        .filter(|u| u["type"] == "guardian")
        .collect();
    assert!(!guardians.is_empty());
    assert!(guardians.iter().all(|g| g["access"] == "no-access"));
}

fn locations_homerooms_and_groups_follow_the_settings(cli: Cli) {
    let sim = Sim::start(300, 8, 0, "");
    let d = sim.district();
    // Map the first school by name; the rest go to the default.
    let orgs: Vec<oneroster::Org> = d
        .active_ids(Collection::Orgs)
        .iter()
        .map(|id| {
            serde_json::from_str(
                &d.record_json(Collection::Orgs, Version::V1p1, id)
                    .unwrap()
                    .to_string(),
            )
            .unwrap()
        })
        .collect();
    let school = orgs
        .iter()
        .find(|o| o.org_type == Some(oneroster::OrgType::School))
        .unwrap();
    cli.configure(&sim.source(
        "campus",
        &format!(
            "[source.locations]\ndefault = \"District Office\"\nmap = {{ \"{}\" = \"Mapped School\" }}\n",
            school.base.sourced_id
        ),
    ));
    let run = cli.json(&["sync"]);
    assert!(run["counts"]["groups"].as_u64().unwrap() > 10, "{run:#}");
    let acc = accounts(&cli);

    // Locations: every account from the mapped school there, everyone else at the default.
    for (id, a) in &acc {
        let u = sim_user(&d, id);
        let want = if u.primary_org.as_deref() == Some(school.base.sourced_id.as_str())
            || u.orgs.contains(&school.base.sourced_id)
        {
            "Mapped School"
        } else {
            "District Office"
        };
        assert_eq!(a["location"], want, "{id}");
    }
    let locations = cli.json(&["locations", "list"]);
    let row = locations
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["sourced_id"] == school.base.sourced_id.as_str())
        .unwrap();
    assert_eq!(row["location"], "Mapped School");
    assert_eq!(row["mapped"], true);
    let heads = acc
        .iter()
        .filter(|(id, _)| {
            sim_user(&d, id).primary_org.as_deref() == Some(school.base.sourced_id.as_str())
        })
        .count();
    assert_eq!(row["people"].as_u64(), Some(heads as u64));

    // Homerooms: the room of the homeroom class each student is enrolled in (oracle from
    // the simulator's own classes and enrollments).
    let mut room_of: BTreeMap<String, String> = BTreeMap::new();
    for cid in d.active_ids(Collection::Classes) {
        let c: oneroster::Class = serde_json::from_str(
            &d.record_json(Collection::Classes, Version::V1p1, &cid)
                .unwrap()
                .to_string(),
        )
        .unwrap();
        if c.class_type == Some(oneroster::ClassType::Homeroom) {
            room_of.insert(cid, c.location.unwrap_or_default());
        }
    }
    let mut homeroom: BTreeMap<String, String> = BTreeMap::new();
    for eid in d.active_ids(Collection::Enrollments) {
        let e: oneroster::Enrollment = serde_json::from_str(
            &d.record_json(Collection::Enrollments, Version::V1p1, &eid)
                .unwrap()
                .to_string(),
        )
        .unwrap();
        if let (Some(user), Some(room)) = (e.user, e.class.and_then(|c| room_of.get(&c).cloned())) {
            let slot = homeroom.entry(user).or_insert_with(|| room.clone());
            if room < *slot {
                *slot = room;
            }
        }
    }
    let mut with_homeroom = 0;
    for (id, a) in &acc {
        let sim_student = sim_user(&d, id).primary_role() == Some(&oneroster::Role::Student);
        if sim_student {
            assert_eq!(
                a["homeroom"].as_str(),
                homeroom.get(id).map(String::as_str),
                "{id}"
            );
            with_homeroom += 1;
        }
    }
    assert!(with_homeroom > 100);

    // A student's groups: their classes and their school's students.
    let (id, a) = acc
        .iter()
        .find(|(id, _)| sim_user(&d, id).primary_role() == Some(&oneroster::Role::Student))
        .unwrap();
    let shown = cli.json(&["users", "show", &a["id"].to_string()]);
    let groups: Vec<&str> = shown["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    assert!(
        groups.iter().any(|g| g.ends_with("— students")),
        "{groups:?}"
    );
    let card = &shown["sis_card"];
    assert_eq!(card["sourced_id"], id.as_str());
    assert!(!card["classes"].as_array().unwrap().is_empty(), "{card:#}");
    assert!(card["classes"][0]["teachers"].as_array().is_some());

    // Without a mapping and with add_rooms off, locations and homerooms are no longer
    // managed: they stay as they are.
    cli.configure(&sim.source(
        "campus",
        "[source.import]\nadd_rooms = false\nskip_calendars = true\n",
    ));
    let again = cli.json(&["sync"]);
    assert_eq!(again["counts"]["updated"], 0, "{again:#}");
    assert_eq!(accounts(&cli), acc);
}

fn the_kindergarten_email_change_renames_with_aliases(cli: Cli) {
    let sim = Sim::start(400, 3, sim::KINDERGARTEN_EMAIL_CHANGE_DAY - 2, "");
    cli.configure(&sim.source("campus", MAPPING));
    cli.json(&["sync"]);
    let before = accounts(&cli);
    sim.advance(3);
    let run = cli.json(&["sync", "--delta"]);
    assert_eq!(run["counts"]["created"], 0, "{run:#}");
    let after = accounts(&cli);
    let renamed: Vec<(&String, &Value)> = after
        .iter()
        .filter(|(id, a)| before.get(*id).is_some_and(|b| b["email"] != a["email"]))
        .collect();
    assert!(
        !renamed.is_empty(),
        "the simulator changed no kindergarten email"
    );
    for (id, a) in renamed {
        let b = &before[id];
        assert_eq!(a["id"], b["id"], "{id}: same account");
        let shown = cli.json(&["users", "show", &a["id"].to_string()]);
        let aliases: Vec<&str> = shown["aliases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["value"].as_str().unwrap())
            .collect();
        assert!(
            aliases.contains(&b["email"].as_str().unwrap()),
            "{id}: old email kept as an alias: {aliases:?}"
        );
    }
}

fn single_user_sync_touches_one_account_only(cli: Cli) {
    let district = sample_district_with(&cli.dir, "");
    cli.configure(&format!(
        "[[source]]\nname = \"sis\"\nkind = \"oneroster-csv\"\npath = \"{}\"\n",
        district.display()
    ));
    cli.json(&["sync"]);
    let before = cli.users();
    let users = district.join("users.csv");
    let text = std::fs::read_to_string(&users)
        .unwrap()
        .replace(",Mia,Johnson,", ",Mia,Johnson-Park,")
        .replace(",Liam,O'Connor,", ",Liam,OConnor,");
    std::fs::write(&users, text).unwrap();
    let run = cli.json(&["sync-user", "mia.johnson@students.district.k12.us"]);
    assert_eq!(run["kind"], "user");
    assert_eq!(run["counts"]["seen"], 1);
    assert_eq!(run["counts"]["updated"], 1);
    let after = cli.users();
    let changed: Vec<&Value> = after.iter().filter(|u| !before.contains(u)).collect();
    assert_eq!(changed.len(), 1, "{changed:#?}");
    assert_eq!(changed[0]["last_name"], "Johnson-Park");
    let items = cli.json(&["runs", "show", &run["run_id"].to_string()]);
    assert_eq!(items["items"].as_array().unwrap().len(), 1);
}

fn unlink_link_and_relink_by_hand(cli: Cli) {
    let district = sample_district_with(&cli.dir, "");
    cli.configure(&format!(
        "[[source]]\nname = \"sis\"\nkind = \"oneroster-csv\"\npath = \"{}\"\n",
        district.display()
    ));
    cli.json(&["sync"]);
    let mia = "mia.johnson@students.district.k12.us";
    cli.ok(&["unlink", mia]);
    assert_eq!(cli.json(&["users", "show", mia])["sis"], Value::Null);
    let run = cli.json(&["sync"]);
    assert_eq!(
        run["counts"]["created"], 0,
        "no duplicate for the unlinked person"
    );
    let skipped = cli.json(&[
        "runs",
        "show",
        &run["run_id"].to_string(),
        "--items",
        "skipped",
    ]);
    let refused: Vec<&Value> = skipped["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["reason_code"] == "link_refused")
        .collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["sourced_id"], "usr-s-3");
    assert_eq!(
        cli.json(&["users", "show", mia])["sis"],
        Value::Null,
        "still unlinked"
    );

    // Linking by hand: refused while another account has that person, then done.
    let out = cli.run(&["link", "ruth.baker@district.k12.us", "--sis", "usr-s-4"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("usr-s-4"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    cli.ok(&["link", mia, "--sis", "usr-s-3"]);
    assert_eq!(
        cli.json(&["users", "show", mia])["sis"]["sourced_id"],
        "usr-s-3"
    );
    let run = cli.json(&["sync"]);
    assert_eq!(
        run["counts"]["skipped"], 5,
        "back to the five skipped by the rules"
    );

    // Change SIS user.
    let ava = cli.json(&["users", "show", "s100001"]);
    cli.ok(&["unlink", "s100001"]);
    cli.ok(&["relink", mia, "--sis", "usr-s-1"]);
    assert_eq!(
        cli.json(&["users", "show", mia])["sis"]["sourced_id"],
        "usr-s-1"
    );
    let revisions = cli.json(&["users", "show", mia])["revisions"].clone();
    assert!(
        revisions
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["field"] == "sis_link"),
        "{revisions:#}"
    );
    assert_ne!(ava["id"], cli.json(&["users", "show", mia])["id"]);
}

/// A year in the life of a district: a full sync every Sunday, a delta every other day.
/// Afterwards the directory must equal the district under the rules: one account per
/// person ever imported, active exactly when the person is active now, with their current
/// email (translated), names, grade, type and school id.
fn a_year_of_churn_matches_the_district(cli: Cli) {
    const PEOPLE: u32 = 220;
    let sim = Sim::start(PEOPLE, 42, 0, "");
    cli.configure(&sim.source("campus", MAPPING));
    cli.json(&["sync"]);

    let config = DistrictConfig {
        users: PEOPLE,
        seed: 42,
        day: 0,
        ..DistrictConfig::default()
    };
    let mut district = District::generate(&config).unwrap();
    let mut ever: BTreeSet<String> = district.active_ids(Collection::Users).into_iter().collect();
    let mut held_days = Vec::new();
    for day in 1..=365u32 {
        sim.advance(1);
        district.advance(1);
        ever.extend(district.active_ids(Collection::Users));
        let kind = if day % 7 == 0 || day == 365 {
            "--full"
        } else {
            "--delta"
        };
        let out = cli.run(&["sync", kind, "--json"]);
        let mut run: Value = serde_json::from_slice(&out.stdout).unwrap();
        if run["status"] == "held" {
            // The school-year rollover promotes and graduates everyone at once: mass
            // changes an admin approves. Nothing else in the year may be held.
            assert_eq!(out.status.code(), Some(1));
            assert!(
                (sim::FIRST_ROLLOVER_DAY..=sim::FIRST_ROLLOVER_DAY + 7).contains(&day),
                "day {day} held: {run:#}"
            );
            held_days.push(day);
            let approved = cli.json(&["runs", "approve", &run["run_id"].to_string()]);
            run = approved["outcome"].clone();
        }
        assert_eq!(run["status"], "succeeded", "day {day}: {run:#}");
        assert_eq!(run["counts"]["errors"], 0, "day {day}: {run:#}");
        if kind == "--delta" {
            assert_eq!(
                run["counts"]["deactivated"], 0,
                "day {day}: a delta deactivated by absence"
            );
        }
    }
    assert_eq!(district.day(), sim.district().day());
    assert!(
        !held_days.is_empty(),
        "the rollover's mass changes were not held"
    );

    let acc = accounts(&cli);
    let now: BTreeSet<String> = district.active_ids(Collection::Users).into_iter().collect();
    let mut expected_active = 0;
    for id in &ever {
        let in_district_now = now.contains(id);
        let record = if in_district_now {
            Some(sim_user(&district, id))
        } else {
            None
        };
        let imported = match &record {
            Some(u) => imported_role(u),
            None => true,
        };
        let Some(a) = acc.get(id) else {
            assert!(
                !imported || !in_district_now,
                "no account for active person {id}"
            );
            continue;
        };
        match record {
            Some(u) if imported => {
                expected_active += 1;
                assert_eq!(a["active"], true, "{id} is in the district");
                let email = match &u.email {
                    Some(e) => e
                        .to_lowercase()
                        .replace("@students.district.k12.us", "@district.k12.us"),
                    None => format!("{}@district.k12.us", u.username.to_lowercase()),
                };
                assert_eq!(a["email"], email.as_str(), "{id}");
                assert_eq!(a["first_name"], u.given_name.as_str(), "{id}");
                assert_eq!(a["last_name"], u.family_name.as_str(), "{id}");
                assert_eq!(
                    a["grade"].as_str(),
                    u.grades.first().map(String::as_str),
                    "{id}"
                );
                assert_eq!(a["identifier"].as_str(), u.identifier.as_deref(), "{id}");
                let want_type = match u.primary_role() {
                    Some(oneroster::Role::Student) => "student",
                    Some(oneroster::Role::Teacher) => "faculty",
                    _ => "staff",
                };
                assert_eq!(a["type"], want_type, "{id}");
            }
            Some(_) => {}
            None => assert_eq!(a["active"], false, "{id} left the district"),
        }
    }
    let active_accounts = acc.values().filter(|a| a["active"] == true).count();
    assert_eq!(active_accounts, expected_active);
    // The year must have exercised the rules: people came, left and were promoted.
    let left = ever
        .difference(&now)
        .filter(|id| acc.contains_key(*id))
        .count();
    let day0: BTreeSet<String> = District::generate(&config)
        .unwrap()
        .active_ids(Collection::Users)
        .into_iter()
        .collect();
    let arrived = now.difference(&day0).count();
    assert!(
        expected_active > 100 && left > 10 && arrived > 10,
        "active {expected_active}, left {left}, arrived {arrived}"
    );
    let mut emails: Vec<&str> = acc
        .values()
        .filter(|a| a["active"] == true)
        .filter_map(|a| a["email"].as_str())
        .collect();
    let n = emails.len();
    emails.sort_unstable();
    emails.dedup();
    assert_eq!(emails.len(), n, "no two active accounts share an email");
}
