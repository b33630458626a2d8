//! `rostersync push` as a district admin runs it: a `[[target]]` imported from the
//! settings file with its token (never printed back), `push --dry-run --json` listing the
//! writes, `push --json` creating the users on a help desk (the simulated one, started in
//! this test process), `sync` pushing to the target that follows its source, a target
//! that refuses the token, and `runs show` of a push run.

use sim::helpdesk::Helpdesk;

use crate::harness::Cli;

crate::on_both_backends!(a_target_is_configured_pushed_and_followed_from_the_cli);

const TOKEN: &str = "s3cret-helpdesk-token";

fn a_target_is_configured_pushed_and_followed_from_the_cli(cli: Cli) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let desk = runtime.block_on(Helpdesk::start(TOKEN)).unwrap();
    let district = crate::harness::sample_district_with(&cli.dir, "");
    let settings = |follows: &str| {
        format!(
            "[network]\nallow_loopback = true\n\n\
             [[source]]\nname = \"sis\"\nkind = \"oneroster-csv\"\npath = \"{}\"\n\n\
             [[target]]\nname = \"helpdesk\"\nkind = \"scim\"\nurl = \"{}\"\ntoken = \"{TOKEN}\"\nretry_attempts = 2\n{follows}",
            district.display(),
            desk.url()
        )
    };
    cli.configure(&settings(""));
    let exported = cli.ok(&["config", "export"]);
    assert!(exported.contains("[[target]]"), "{exported}");
    assert!(
        !exported.contains(TOKEN),
        "the token is never exported: {exported}"
    );
    cli.json(&["sync"]);

    let dry = cli.json(&["push", "--target", "helpdesk", "--dry-run"]);
    assert_eq!(dry["kind"], "push");
    assert_eq!(dry["run_id"], serde_json::Value::Null);
    let writes = dry["requests"].as_array().unwrap();
    assert!(!writes.is_empty());
    assert!(
        writes
            .iter()
            .all(|w| w["method"] == "POST" && w["path"] == "/Users")
    );
    assert!(desk.users().is_empty(), "a dry run sends no write");

    let pushed = cli.json(&["push", "--target", "helpdesk"]);
    assert_eq!(pushed["status"], "succeeded", "{pushed}");
    assert_eq!(
        pushed["counts"]["created"].as_u64().unwrap() as usize,
        writes.len()
    );
    assert_eq!(desk.users().len(), writes.len());
    let run = pushed["run_id"].as_i64().unwrap().to_string();
    let shown = cli.json(&["runs", "show", &run]);
    assert_eq!(shown["kind"], "push", "{shown}");
    let text = cli.ok(&["runs", "show", &run]);
    assert!(
        text.contains("not on target helpdesk yet: created there"),
        "{text}"
    );
    assert!(!text.contains(TOKEN));

    // The target follows the source: a sync that applies pushes it (nothing changed here).
    cli.configure(&settings("follows = [\"sis\"]\n"));
    desk.clear_requests();
    let synced = cli.json(&["sync"]);
    let pushes = synced["pushes"].as_array().unwrap();
    assert_eq!(pushes.len(), 1, "{synced}");
    assert_eq!(pushes[0]["target"], "helpdesk");
    assert_eq!(
        pushes[0]["http_requests"], 0,
        "nothing changed: nothing sent"
    );
    assert!(desk.requests().is_empty());

    // Students only, at most two deactivations at once: the staff's deactivation is
    // held (exit 1), then approved with `runs approve`.
    cli.configure(&settings(
        "types = [\"student\"]\n[target.safeguards]\nmax_deactivations = 2\n",
    ));
    let held = cli.json_with_code(&["push", "--target", "helpdesk"], 1);
    assert_eq!(held["status"], "held", "{held}");
    assert!(desk.users().iter().all(|u| u["active"] == true));
    let run = held["run_id"].as_i64().unwrap().to_string();
    let approved = cli.json(&["runs", "approve", &run]);
    assert_eq!(approved["outcome"]["status"], "succeeded", "{approved}");
    let deactivated = approved["outcome"]["counts"]["deactivated"]
        .as_u64()
        .unwrap();
    assert_eq!(deactivated, 5, "{approved}");
    assert_eq!(
        desk.users().iter().filter(|u| u["active"] == false).count() as u64,
        deactivated
    );

    // A token the help desk refuses, and something to send (the target now takes
    // teachers only: they come back, the students go): the push fails (exit 2) and says
    // so, the token unshown.
    cli.configure(&settings("types = [\"faculty\"]\n").replace(TOKEN, "wrong-token"));
    let refused = cli.run(&["push", "--target", "helpdesk"]);
    assert_eq!(refused.status.code(), Some(2));
    let out = String::from_utf8_lossy(&refused.stdout).to_string()
        + &String::from_utf8_lossy(&refused.stderr);
    assert!(out.contains("401") || out.contains("refuse"), "{out}");
    assert!(!out.contains("wrong-token"), "{out}");
}
