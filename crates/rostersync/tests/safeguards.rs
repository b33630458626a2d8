//! Never lose a user: held runs on bad SIS days, approval and discarding, rekeys, the
//! review queue, merges, reports, undo and the webhook — end to end on both backends.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use sim::{Collection, District, DistrictConfig, SimConfig};

use crate::harness::{Cli, sample_district_with};

crate::on_both_backends!(
    an_empty_users_collection_is_held_and_nobody_is_deactivated,
    a_dropped_school_is_held,
    truncated_or_drifting_pages_deactivate_nobody,
    a_held_run_is_approved_or_discarded,
    a_rekey_of_every_sourced_id_moves_links_only,
    disputes_go_to_the_review_queue_and_decisions_stick,
    the_district_story_end_to_end,
    undo_restores_the_directory,
    the_webhook_hears_of_held_and_failed_runs,
);

const MAPPING: &str = "[source.user_mapping]\ntranslate_email = [{ from = \"students.district.k12.us\", to = \"district.k12.us\" }]\nappend_domain = \"district.k12.us\"\n";

/// A simulated district served in this process.
struct Sim {
    rt: tokio::runtime::Runtime,
    running: Option<sim::RunningSim>,
}

impl Sim {
    fn start(config: SimConfig) -> Sim {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let running = rt.block_on(sim::Server::start(config)).unwrap();
        Sim {
            rt,
            running: Some(running),
        }
    }

    fn with(users: u32, seed: u64, day: u32) -> Sim {
        Sim::start(SimConfig {
            district: DistrictConfig {
                users,
                seed,
                day,
                ..DistrictConfig::default()
            },
            ..SimConfig::default()
        })
    }

    /// The same district, served with faults.
    fn faulty(&self, faults: &str) -> Sim {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let running = self.running.as_ref().unwrap();
        let cfg = SimConfig {
            faults: faults.parse().unwrap(),
            ..running.config().clone()
        };
        let district = (*running.district()).clone();
        let faulty = rt.block_on(sim::Server::start_with(cfg, district)).unwrap();
        Sim {
            rt,
            running: Some(faulty),
        }
    }

    fn advance(&self, days: u32) {
        self.rt
            .block_on(self.running.as_ref().unwrap().advance(days))
            .unwrap();
    }

    fn source(&self, extra: &str) -> String {
        let r = self.running.as_ref().unwrap();
        format!(
            "[network]\nallow_loopback = true\n[[source]]\nname = \"campus\"\nkind = \"oneroster-api\"\nurl = \"{}\"\nauth = \"oauth2\"\ntoken_url = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\npage_size = 200\nretry_attempts = 2\n{extra}",
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

fn active_count(cli: &Cli) -> usize {
    cli.users().iter().filter(|u| u["active"] == true).count()
}

fn held_run(cli: &Cli, toml: &str) -> Value {
    cli.configure(toml);
    let run = cli.json_with_code(&["sync"], 1);
    assert_eq!(run["status"], "held", "{run:#}");
    run
}

fn an_empty_users_collection_is_held_and_nobody_is_deactivated(cli: Cli) {
    let sim = Sim::with(300, 2, 0);
    cli.configure(&sim.source(""));
    cli.json(&["sync"]);
    let active = active_count(&cli);
    let empty = sim.faulty("empty_users=1");
    let run = held_run(&cli, &empty.source(""));
    let hold: Vec<&str> = run["hold"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap())
        .collect();
    assert!(
        hold.contains(&"deactivations") && hold.contains(&"role_vanished"),
        "{hold:?}"
    );
    assert_eq!(active_count(&cli), active, "nobody deactivated");
    let shown = cli.json(&[
        "runs",
        "show",
        &run["run_id"].to_string(),
        "--items",
        "deactivated",
    ]);
    assert_eq!(shown["status"], "held");
    assert_eq!(
        shown["items"].as_array().unwrap().len(),
        active,
        "the run lists the people it would deactivate"
    );
    let text = cli.ok(&["runs", "show", &run["run_id"].to_string()]);
    assert!(text.contains("held: "), "{text}");
}

fn a_dropped_school_is_held(cli: Cli) {
    let sim = Sim::with(400, 4, 0);
    cli.configure(&sim.source(""));
    cli.json(&["sync"]);
    let active = active_count(&cli);
    let d = sim.running.as_ref().unwrap().district();
    let school = d
        .active_ids(Collection::Orgs)
        .into_iter()
        .find(|id| id != "org-0")
        .unwrap();
    let dropped = sim.faulty(&format!("drop_school={school}"));
    let run = held_run(&cli, &dropped.source(""));
    let details: Vec<&str> = run["hold"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["detail"].as_str().unwrap())
        .collect();
    assert!(
        details
            .iter()
            .any(|d| d.contains(&format!("school {school}"))),
        "{details:?}"
    );
    assert_eq!(active_count(&cli), active);
}

fn truncated_or_drifting_pages_deactivate_nobody(cli: Cli) {
    let sim = Sim::with(300, 6, 0);
    cli.configure(&sim.source(""));
    cli.json(&["sync"]);
    let active = active_count(&cli);
    // Drifting totals: incomplete, so the people of the school dropped at the same time
    // are not even planned for deactivation (and the vanished school holds the run too).
    let drifting = sim.faulty("total_drift=1,drop_school=org-1");
    cli.configure(&drifting.source(""));
    let run = cli.json_with_code(&["sync"], 1);
    assert_eq!(run["complete"], false);
    assert_eq!(run["counts"]["deactivated"], 0);
    assert!(
        run["warnings"]
            .to_string()
            .contains("X-Total-Count changed"),
        "{run:#}"
    );
    let drifting = sim.faulty("total_drift=1");
    cli.configure(&drifting.source(""));
    let run = cli.json(&["sync"]);
    assert_eq!(
        (run["complete"].as_bool(), run["status"].as_str()),
        (Some(false), Some("succeeded"))
    );
    let truncated = sim.faulty("truncate=1");
    cli.configure(&truncated.source(""));
    let run = cli.json_with_code(&["sync"], 2);
    assert_eq!(run["status"], "failed");
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("not valid OneRoster JSON"),
        "{run:#}"
    );
    assert_eq!(active_count(&cli), active);
}

fn a_held_run_is_approved_or_discarded(cli: Cli) {
    let sim = Sim::with(300, 2, 0);
    cli.configure(&sim.source(""));
    cli.json(&["sync"]);
    let empty = sim.faulty("empty_users=1");
    let held = held_run(&cli, &empty.source(""));
    let id = held["run_id"].to_string();
    cli.ok(&["runs", "discard", &id]);
    assert_eq!(cli.json(&["runs", "show", &id])["status"], "discarded");
    let out = cli.run(&["runs", "approve", &id]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a discarded run cannot be approved"
    );

    // An account changes while the run waits: approval re-plans, and says so.
    let held = held_run(&cli, &empty.source(""));
    let someone = cli.users()[0]["id"].to_string();
    cli.ok(&["users", "set-access", &someone, "agent"]);
    let approved = cli.json(&["runs", "approve", &held["run_id"].to_string()]);
    assert_eq!(approved["applied_as_held"], false, "{approved:#}");
    assert!(!approved["stale"].as_array().unwrap().is_empty());
    assert_eq!(approved["outcome"]["status"], "succeeded");
    let old = cli.json(&["runs", "show", &held["run_id"].to_string()]);
    assert_eq!(old["status"], "superseded");
    assert!(
        old["note"].as_str().unwrap().contains("re-planned as run"),
        "{old:#}"
    );
    assert_eq!(active_count(&cli), 1, "only the agent is left active");

    // Back to the real district (reactivation is not a mass change to hold), then a mass
    // deactivation the admin approves as it was planned.
    cli.configure(&sim.source(""));
    cli.json(&["sync"]);
    let held = held_run(&cli, &empty.source(""));
    let id = held["run_id"].to_string();
    let approved = cli.json(&["runs", "approve", &id]);
    assert_eq!(approved["applied_as_held"], true, "{approved:#}");
    assert_eq!(cli.json(&["runs", "show", &id])["status"], "succeeded");
    assert_eq!(
        active_count(&cli),
        1,
        "the approved plan deactivated everyone but the agent"
    );
    cli.configure(&sim.source(""));
    cli.json(&["sync"]);

    // A later clean run supersedes a held one.
    let held = held_run(&cli, &empty.source(""));
    cli.configure(&sim.source(""));
    cli.json(&["sync"]);
    assert_eq!(
        cli.json(&["runs", "show", &held["run_id"].to_string()])["status"],
        "superseded"
    );
}

/// Writes the simulator's district as CSV and returns the folder.
fn export(d: &District, dir: &Path, name: &str) -> PathBuf {
    let zip = dir.join(format!("{name}.zip"));
    sim::export_csv(
        d,
        &zip,
        &sim::ExportOptions {
            version: sim::Version::V1p1,
            delta_from: None,
        },
    )
    .unwrap();
    let out = dir.join(name);
    std::fs::create_dir_all(&out).unwrap();
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip).unwrap()).unwrap();
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).unwrap();
        let mut body = String::new();
        std::io::Read::read_to_string(&mut f, &mut body).unwrap();
        let name = f.name().unwrap().into_owned();
        std::fs::write(out.join(name), body).unwrap();
    }
    out
}

fn a_rekey_of_every_sourced_id_moves_links_only(cli: Cli) {
    let d = District::generate(&DistrictConfig {
        users: 300,
        seed: 9,
        ..DistrictConfig::default()
    })
    .unwrap();
    let folder = export(&d, &cli.dir, "district");
    cli.configure(&format!(
        "[[source]]\nname = \"sis\"\nkind = \"oneroster-csv\"\npath = \"{}\"\n",
        folder.display()
    ));
    cli.json(&["sync"]);
    let before = cli.users();
    // The SIS moves from 1.1 to 1.2: every person gets a new sourcedId.
    for file in ["users.csv", "enrollments.csv"] {
        let p = folder.join(file);
        let text = std::fs::read_to_string(&p)
            .unwrap()
            .replace("usr-", "v12-usr-");
        std::fs::write(&p, text).unwrap();
    }
    let run = cli.json(&["sync"]);
    let c = &run["counts"];
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(
        (c["created"].as_u64(), c["deactivated"].as_u64()),
        (Some(0), Some(0)),
        "{run:#}"
    );
    assert_eq!(c["rekeyed"].as_u64(), Some(before.len() as u64));
    let after = cli.users();
    assert_eq!(after.len(), before.len());
    assert!(after.iter().all(|u| {
        u["sis"]["sourced_id"]
            .as_str()
            .unwrap()
            .starts_with("v12-usr-")
    }));
    assert!(after.iter().all(|u| u["active"] == true));
}

fn disputes_go_to_the_review_queue_and_decisions_stick(cli: Cli) {
    // Two SIS people share an SSO account's email (a duplicate in the SIS), and a third
    // person's email matches two accounts.
    let district = sample_district_with(
        &cli.dir,
        "usr-t-2b,active,2026-08-01T00:00:00Z,true,org-high-1,teacher,tnguyen2,,Tam,Nguyen,,T9002b,tam.nguyen@district.k12.us,,,,,\n",
    );
    let accounts = cli.write(
        "accounts.csv",
        "email,first_name,last_name,username\ntam.nguyen@district.k12.us,Tam,Nguyen,tn\n",
    );
    cli.json(&[
        "accounts",
        "import",
        accounts.to_str().unwrap(),
        "--provider",
        "google",
    ]);
    cli.configure(&format!(
        "[[source]]\nname = \"sis\"\nkind = \"oneroster-csv\"\npath = \"{}\"\n",
        district.display()
    ));
    cli.json(&["sync"]);
    let cases = cli.json(&["review", "list"]);
    let cases = cases.as_array().unwrap();
    assert_eq!(cases.len(), 2, "{cases:#?}");
    let case_of =
        |sid: &str| cases.iter().find(|c| c["sourced_id"] == sid).unwrap()["id"].to_string();
    assert!(
        cases[0]["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["email"] == "tam.nguyen@district.k12.us")
    );

    let tam = cli.json(&["users", "show", "tam.nguyen@district.k12.us"])["id"].to_string();
    cli.ok(&["review", "resolve", &case_of("usr-t-2"), "--link", &tam]);
    cli.ok(&["review", "resolve", &case_of("usr-t-2b"), "--ignore"]);
    assert!(cli.json(&["review", "list"]).as_array().unwrap().is_empty());
    let run = cli.json(&["sync"]);
    assert_eq!(run["counts"]["created"], 0);
    assert_eq!(
        cli.json(&["users", "show", &tam])["sis"]["sourced_id"],
        "usr-t-2"
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
            .any(|i| i["sourced_id"] == "usr-t-2b" && i["reason_code"] == "ignored_by_admin")
    );
    assert!(
        cli.json(&["review", "list"]).as_array().unwrap().is_empty(),
        "no case reopened"
    );
    let resolved = cli.json(&["review", "list", "--status", "resolved"]);
    assert_eq!(resolved.as_array().unwrap().len(), 2);
}

/// A district wrote: accounts single sign-on created were "not linked to SIS user", some
/// people had two accounts after an email naming change, and when they merged the two the
/// SIS link did not carry over. Here, all of it, end to end.
fn the_district_story_end_to_end(cli: Cli) {
    let day = sim::KINDERGARTEN_EMAIL_CHANGE_DAY - 2;
    let sim = Sim::with(400, 3, day);
    let later = District::generate(&DistrictConfig {
        users: 400,
        seed: 3,
        day: day + 3,
        ..DistrictConfig::default()
    })
    .unwrap();
    let now = sim.running.as_ref().unwrap().district();
    // Kindergartners whose email will change; some sign in with the new address before
    // the SIS changes (single sign-on makes them an account).
    let mut renamed = Vec::new();
    for id in now.active_ids(Collection::Users) {
        let a: oneroster::User = serde_json::from_str(
            &now.record_json(Collection::Users, sim::Version::V1p1, &id)
                .unwrap()
                .to_string(),
        )
        .unwrap();
        let Some(b_json) = later.record_json(Collection::Users, sim::Version::V1p1, &id) else {
            continue;
        };
        let b: oneroster::User = serde_json::from_str(&b_json.to_string()).unwrap();
        if a.email.is_some()
            && b.email.is_some()
            && a.email != b.email
            && b.primary_role() == Some(&oneroster::Role::Student)
        {
            renamed.push(b);
        }
    }
    assert!(
        renamed.len() >= 2,
        "the simulator renamed {} kindergartners",
        renamed.len()
    );
    let sso: String = renamed
        .iter()
        .map(|u| {
            let email = u
                .email
                .as_ref()
                .unwrap()
                .to_lowercase()
                .replace("@students.", "@");
            format!("{email},{},{},\n", u.given_name, u.family_name)
        })
        .collect();
    let accounts = cli.write(
        "sso.csv",
        &format!("email,first_name,last_name,username\n{sso}"),
    );
    cli.json(&[
        "accounts",
        "import",
        accounts.to_str().unwrap(),
        "--provider",
        "google",
    ]);
    cli.configure(&sim.source(MAPPING));
    cli.json(&["sync"]);
    let unlinked = cli.json(&["report", "unlinked"]);
    assert_eq!(
        unlinked.as_array().unwrap().len(),
        renamed.len(),
        "the SSO accounts are not linked yet: {unlinked:#}"
    );

    // The naming change: the SIS renames the linked accounts to the addresses the SSO
    // accounts already have. No two accounts may share one: each rename waits, with a
    // review case naming the other account.
    sim.advance(3);
    let delta = cli.json(&["sync", "--delta"]);
    assert_eq!(delta["status"], "succeeded", "{delta:#}");
    let cases = cli.json(&["review", "list"]);
    let taken: Vec<&Value> = cases
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["reason_code"] == "identity_taken")
        .collect();
    assert_eq!(taken.len(), renamed.len(), "{cases:#}");
    let all_accounts = cli.users();
    let mut active_emails: Vec<String> = all_accounts
        .iter()
        .filter(|u| u["active"] == true)
        .filter_map(|u| u["email"].as_str().map(str::to_lowercase))
        .collect();
    let n = active_emails.len();
    active_emails.sort();
    active_emails.dedup();
    assert_eq!(
        active_emails.len(),
        n,
        "no two active accounts share an email"
    );

    // Merge each pair: the SIS-created account into the one the child signs in with.
    for u in &renamed {
        let email = u
            .email
            .as_ref()
            .unwrap()
            .to_lowercase()
            .replace("@students.", "@");
        let all = cli.json(&["users", "list", "--search", &email]);
        let found = all.as_array().unwrap();
        assert_eq!(found.len(), 1, "{email}: {found:#?}");
        let signon = &found[0];
        assert_eq!(signon["sis"], Value::Null);
        let linked = all_accounts
            .iter()
            .find(|a| a["sis"]["sourced_id"] == u.base.sourced_id.as_str())
            .unwrap();
        let preview = cli.json(&[
            "merge",
            &linked["id"].to_string(),
            "--into",
            &signon["id"].to_string(),
            "--dry-run",
        ]);
        assert_eq!(
            cli.json(&["users", "show", &signon["id"].to_string()])["sis"],
            Value::Null,
            "a dry run changes nothing: {preview:#}"
        );
        cli.json(&[
            "merge",
            &linked["id"].to_string(),
            "--into",
            &signon["id"].to_string(),
        ]);
        let survivor = cli.json(&["users", "show", &signon["id"].to_string()]);
        assert_eq!(
            survivor["sis"]["sourced_id"],
            u.base.sourced_id.as_str(),
            "the link carried over"
        );
        // The old address is an alias now: searching by it and showing it find the survivor.
        let old = linked["email"].as_str().unwrap();
        let found = cli.json(&["users", "list", "--search", old]);
        assert!(
            found
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["id"] == signon["id"]),
            "{old}: {found:#}"
        );
    }
    assert!(
        cli.json(&["report", "duplicates"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    let run = cli.json(&["sync", "--full"]);
    assert_eq!(run["counts"]["created"], 0, "{run:#}");
    assert_eq!(run["status"], "succeeded");
    assert!(
        cli.json(&["report", "duplicates"])
            .as_array()
            .unwrap()
            .is_empty(),
        "next sync clean"
    );
}

fn export_directory(cli: &Cli) -> Vec<Value> {
    cli.users()
        .into_iter()
        .map(|mut u| {
            u.as_object_mut().unwrap().remove("updated_at");
            u
        })
        .collect()
}

fn undo_restores_the_directory(cli: Cli) {
    let district = sample_district_with(&cli.dir, "");
    cli.configure(&format!(
        "[[source]]\nname = \"sis\"\nkind = \"oneroster-csv\"\npath = \"{}\"\n",
        district.display()
    ));
    cli.json(&["sync"]);
    let before = export_directory(&cli);
    let users = district.join("users.csv");
    let text = std::fs::read_to_string(&users)
        .unwrap()
        .replace(",Mia,Johnson,", ",Mia,Johnson-Park,")
        .replace("usr-s-5,active", "usr-s-5,tobedeleted")
        + "usr-s-9,active,2026-09-01T00:00:00Z,true,org-high-1,student,s100009,,Zoe,New,,100009,zoe.new@students.district.k12.us,,,,09,\n";
    std::fs::write(&users, text).unwrap();
    let run = cli.json(&["sync"]);
    let c = &run["counts"];
    assert_eq!(
        (
            c["updated"].as_u64(),
            c["deactivated"].as_u64(),
            c["created"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{run:#}"
    );
    let id = run["run_id"].to_string();
    let preview = cli.json(&["runs", "undo", &id, "--dry-run"]);
    assert_ne!(
        export_directory(&cli),
        before,
        "a dry run changes nothing: {preview:#}"
    );
    cli.json(&["runs", "undo", &id]);
    let after = export_directory(&cli);
    let zoe = after
        .iter()
        .find(|u| u["email"] == "zoe.new@students.district.k12.us")
        .unwrap();
    assert_eq!(
        (zoe["active"].as_bool(), &zoe["sis"]),
        (Some(false), &Value::Null),
        "created: deactivated and unlinked"
    );
    let rest: Vec<Value> = after
        .into_iter()
        .filter(|u| u["email"] != "zoe.new@students.district.k12.us")
        .collect();
    assert_eq!(rest, before, "everything else exactly as before");
    assert_eq!(cli.json(&["runs", "show", &id])["status"], "undone");

    // A later change to the same field makes undo refuse, naming it.
    std::fs::write(
        &users,
        std::fs::read_to_string(&users)
            .unwrap()
            .replace(",Mia,Johnson-Park,", ",Mia,Park,"),
    )
    .unwrap();
    let second = cli.json(&["sync"]);
    std::fs::write(
        &users,
        std::fs::read_to_string(&users)
            .unwrap()
            .replace(",Mia,Park,", ",Mia,Parker,"),
    )
    .unwrap();
    cli.json(&["sync"]);
    let out = cli.run(&["runs", "undo", &second["run_id"].to_string()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("last_name"), "{err}");
}

fn the_webhook_hears_of_held_and_failed_runs(cli: Cli) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let events: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = events.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(v);
                "ok"
            }
        }),
    );
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });

    let sim = Sim::with(300, 2, 0);
    let hook = format!("webhook_url = \"{url}\"\n");
    cli.configure(&sim.source(&hook));
    cli.json(&["sync"]);
    assert!(
        events.lock().unwrap().is_empty(),
        "a clean run sends nothing"
    );
    let empty = sim.faulty("empty_users=1");
    held_run(&cli, &empty.source(&hook));
    let truncated = sim.faulty("truncate=1");
    cli.configure(&truncated.source(&hook));
    cli.json_with_code(&["sync"], 2);
    let got = events.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[0]["event"], "run.held");
    assert!(!got[0]["hold"].as_array().unwrap().is_empty());
    assert_eq!(got[1]["event"], "run.failed");
    assert!(got[1]["error"].as_str().unwrap().len() > 10);
    assert!(
        !got.iter()
            .any(|e| e.to_string().contains(sim::DEFAULT_CLIENT_SECRET))
    );
    // A webhook the [network] settings refuse (a private address) is not told, and the
    // warning says why without its address: the path is the hook's secret.
    let refused = "webhook_url = \"http://10.255.255.1/T0/hook-s3cret\"\n";
    cli.configure(&truncated.source(refused));
    let out = cli.run(&["sync"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the webhook could not be told"), "{err}");
    assert!(err.contains("(address hidden)"), "{err}");
    assert!(!err.contains("hook-s3cret"), "{err}");
    assert_eq!(events.lock().unwrap().len(), 2);
}
