//! Links made by hand are checked against the SIS, so a mistyped sourcedId cannot tie an
//! account to a person who does not exist there; and list commands print every match
//! unless `--limit` says otherwise, so a script reading them never silently misses some.
//!
//! A simulated district over REST: `link` / `relink` to a sourcedId the SIS does not
//! have is refused with nothing changed; a real person is "confirmed by the SIS"; with
//! the SIS down the last complete pull vouches, and says so. `users list --json` with
//! 1 500 accounts prints all of them, `--limit 10` ten and a note on stderr.

use serde_json::Value;
use sim::{Collection, DistrictConfig, RunningSim, SimConfig, Version};

use crate::harness::{Cli, sample_district_with};

crate::on_both_backends!(
    a_link_to_a_sourced_id_the_sis_does_not_have_is_refused,
    a_link_to_a_real_person_is_confirmed_by_the_sis,
    with_the_sis_down_the_last_pull_vouches_and_says_so,
    a_csv_person_marked_tobedeleted_is_refused,
    users_list_prints_every_account_unless_limited,
    runs_lists_page_with_a_note_when_limited,
);

/// A simulated district served in this process (its runtime lives as long as it does).
struct District {
    rt: tokio::runtime::Runtime,
    running: Option<RunningSim>,
}

impl District {
    fn start(users: u32) -> District {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let config = SimConfig {
            district: DistrictConfig {
                users,
                seed: 13,
                ..DistrictConfig::default()
            },
            ..SimConfig::default()
        };
        let running = rt.block_on(sim::Server::start(config)).unwrap();
        District {
            rt,
            running: Some(running),
        }
    }

    fn running(&self) -> &RunningSim {
        self.running.as_ref().unwrap()
    }

    /// Settings for the REST source `campus` against this district (guardians are not
    /// imported: the syncs skip them and keep no record of them).
    fn settings(&self) -> String {
        let r = self.running();
        format!(
            "[network]\nallow_loopback = true\n[[source]]\nname = \"campus\"\nkind = \"oneroster-api\"\nurl = \"{}\"\nauth = \"oauth2\"\ntoken_url = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\npage_size = 200\nretry_attempts = 1\n",
            r.base_url(),
            r.token_url().unwrap(),
            sim::DEFAULT_CLIENT_ID,
            sim::DEFAULT_CLIENT_SECRET
        )
    }

    /// The sourcedId and name of a person the district has whom the sync does not import.
    fn a_guardian(&self) -> (String, String) {
        let d = self.running().district();
        for id in d.active_ids(Collection::Users) {
            let v = d
                .record_json(Collection::Users, Version::V1p1, &id)
                .unwrap();
            let u: oneroster::User = serde_json::from_str(&v.to_string()).unwrap();
            if matches!(
                u.primary_role(),
                Some(oneroster::Role::Parent | oneroster::Role::Guardian)
            ) {
                return (id, format!("{} {}", u.given_name, u.family_name));
            }
        }
        panic!("the simulated district has no guardian");
    }

    /// Stops serving: the SIS is down from now on.
    fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            self.rt.block_on(r.stop());
        }
    }
}

impl Drop for District {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Two linked students: (account id, sourcedId) each.
fn two_students(cli: &Cli) -> [(String, String); 2] {
    let list = cli.json(&[
        "users", "list", "--linked", "--type", "student", "--limit", "2",
    ]);
    let pick = |i: usize| {
        (
            list[i]["id"].to_string(),
            list[i]["sis"]["sourced_id"].as_str().unwrap().to_owned(),
        )
    };
    [pick(0), pick(1)]
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One account no source manages (single sign-on made it); its id.
fn an_unlinked_account(cli: &Cli) -> String {
    let csv = cli.write(
        "sso.csv",
        "email,first_name,last_name,username\nwalk.in@district.k12.us,Walk,In,walkin\n",
    );
    cli.ok(&[
        "accounts",
        "import",
        csv.to_str().unwrap(),
        "--provider",
        "google",
    ]);
    cli.json(&["users", "show", "walk.in@district.k12.us"])["id"].to_string()
}

fn a_link_to_a_sourced_id_the_sis_does_not_have_is_refused(cli: Cli) {
    let district = District::start(80);
    cli.configure(&district.settings());
    cli.json(&["sync"]);
    let [(student, sid), _] = two_students(&cli);
    let walk_in = an_unlinked_account(&cli);
    let before_student = cli.json(&["users", "show", &student]);
    let before_walk_in = cli.json(&["users", "show", &walk_in]);
    let accounts_before = cli.json(&["users", "list"]).as_array().unwrap().len();

    for (command, account) in [("relink", &student), ("link", &walk_in)] {
        let out = cli.run(&[command, account, "--sis", "usr-424242"]);
        assert_eq!(out.status.code(), Some(2), "{command}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("the SIS has no person usr-424242") && err.contains("nothing was changed"),
            "{command}: {err}"
        );
        assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    }
    assert_eq!(
        cli.json(&["users", "show", &student]),
        before_student,
        "the student keeps its link, and no revision was written"
    );
    assert_eq!(cli.json(&["users", "show", &walk_in]), before_walk_in);
    assert_eq!(before_student["sis"]["sourced_id"], sid.as_str());
    assert_eq!(
        cli.json(&["users", "list"]).as_array().unwrap().len(),
        accounts_before
    );

    // The next full sync finds nothing to undo: nobody deactivated, nobody skipped anew.
    let run = cli.json(&["sync"]);
    assert_eq!(run["counts"]["deactivated"], 0, "{run}");
    assert_eq!(
        cli.json(&["users", "show", &student])["active"],
        true,
        "the student is still active"
    );
}

fn a_link_to_a_real_person_is_confirmed_by_the_sis(cli: Cli) {
    let district = District::start(80);
    cli.configure(&district.settings());
    cli.json(&["sync"]);
    let [(a, _), (b, b_sid)] = two_students(&cli);

    // A person the syncs skip (guardians are not imported) and never recorded: only the
    // SIS can vouch for them.
    let (guardian, name) = district.a_guardian();
    let walk_in = an_unlinked_account(&cli);
    let out = cli.ok(&["link", &walk_in, "--sis", &guardian]);
    assert!(out.contains("confirmed by the SIS"), "{out}");
    assert!(out.contains(&name), "the message names the person: {out}");
    assert_eq!(
        cli.json(&["users", "show", &walk_in])["sis"]["sourced_id"],
        guardian.as_str()
    );

    // Change SIS user: b's person freed, a moves to it.
    cli.ok(&["unlink", &b]);
    let out = cli.ok(&["relink", &a, "--sis", &b_sid]);
    assert!(out.contains("confirmed by the SIS"), "{out}");
    assert!(
        out.contains(&format!("now links to SIS person {b_sid}")),
        "{out}"
    );
    assert_eq!(
        cli.json(&["users", "show", &a])["sis"]["sourced_id"],
        b_sid.as_str()
    );
}

fn with_the_sis_down_the_last_pull_vouches_and_says_so(cli: Cli) {
    let mut district = District::start(80);
    cli.configure(&district.settings());
    let first = cli.json(&["sync"]);
    assert_eq!(first["complete"], true, "{first}");
    let run = first["run_id"].to_string();
    let [(a, _), (b, b_sid)] = two_students(&cli);
    let (guardian, _) = district.a_guardian();
    cli.ok(&["unlink", &b]);
    district.stop();

    // The last pull recorded b's person: it vouches, and the message says it did.
    let out = cli.ok(&["relink", &a, "--sis", &b_sid]);
    assert!(
        out.contains(&format!("confirmed by the last pull (run {run}"))
            && out.contains("not by the SIS"),
        "{out}"
    );
    assert_eq!(
        cli.json(&["users", "show", &a])["sis"]["sourced_id"],
        b_sid.as_str()
    );

    // Nobody vouches for a made-up id, nor for a person the syncs never recorded.
    let walk_in = an_unlinked_account(&cli);
    for sid in ["usr-424242", guardian.as_str()] {
        let out = cli.run(&["link", &walk_in, "--sis", sid]);
        assert_eq!(out.status.code(), Some(2), "{sid}: {}", stdout(&out));
        let err = stderr(&out);
        assert!(
            err.contains("could not be confirmed")
                && err.contains(&format!(
                    "the last complete pull of source campus (run {run}"
                ))
                && err.contains("nothing was changed"),
            "{sid}: {err}"
        );
    }
    assert!(cli.json(&["users", "show", &walk_in])["sis"].is_null());
}

fn a_csv_person_marked_tobedeleted_is_refused(cli: Cli) {
    let district = sample_district_with(
        &cli.dir,
        "usr-s-90,tobedeleted,2026-08-01T00:00:00Z,true,org-elem-1,student,gone90,,Gone,Away,,S90,gone.away@students.district.k12.us,,,,05,\n",
    );
    cli.configure(&format!(
        "[[source]]\nname = \"sis\"\nkind = \"oneroster-csv\"\npath = \"{}\"\n",
        district.display()
    ));
    cli.json(&["sync"]);
    let walk_in = an_unlinked_account(&cli);
    let out = cli.run(&["link", &walk_in, "--sis", "usr-s-90"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("is marked tobedeleted"),
        "{}",
        stderr(&out)
    );
    let out = cli.run(&["link", &walk_in, "--sis", "usr-s-404"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("the SIS has no person usr-s-404"),
        "{}",
        stderr(&out)
    );
    assert!(cli.json(&["users", "show", &walk_in])["sis"].is_null());
}

fn users_list_prints_every_account_unless_limited(cli: Cli) {
    let mut csv = String::from("email,first_name,last_name,username\n");
    for i in 0..1500 {
        csv.push_str(&format!(
            "person{i}@district.k12.us,Person,Number{i},person{i}\n"
        ));
    }
    let file = cli.write("accounts.csv", &csv);
    cli.ok(&[
        "accounts",
        "import",
        file.to_str().unwrap(),
        "--provider",
        "google",
    ]);

    let all = cli.run(&["users", "list", "--json"]);
    assert!(all.status.success(), "{}", stderr(&all));
    assert!(
        stderr(&all).is_empty(),
        "no note without a limit: {}",
        stderr(&all)
    );
    let all: Value = serde_json::from_slice(&all.stdout).unwrap();
    let ids: Vec<i64> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 1500, "every account, past the old 1 000");
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "in id order, once each"
    );

    let ten = cli.run(&["users", "list", "--json", "--limit", "10"]);
    assert!(ten.status.success());
    let page: Value = serde_json::from_slice(&ten.stdout).unwrap();
    assert_eq!(page.as_array().unwrap().len(), 10);
    let note = stderr(&ten);
    assert!(
        note.contains("after 10 accounts")
            && note.contains(&format!("--after {} --limit 10", ids[9])),
        "{note}"
    );
    // The next page the note names starts right after.
    let next = cli.json(&[
        "users",
        "list",
        "--after",
        &ids[9].to_string(),
        "--limit",
        "10",
    ]);
    assert_eq!(next[0]["id"].as_i64(), Some(ids[10]));

    // A limit that cuts nothing says nothing; text lists every account too.
    let exact = cli.run(&["users", "list", "--json", "--limit", "1500"]);
    assert!(stderr(&exact).is_empty(), "{}", stderr(&exact));
    let text = cli.ok(&["users", "list", "--unlinked"]);
    assert_eq!(text.lines().count(), 1 + 1500, "a header and every account");
}

fn runs_lists_page_with_a_note_when_limited(cli: Cli) {
    let district = sample_district_with(&cli.dir, "");
    cli.configure(&format!(
        "[[source]]\nname = \"sis\"\nkind = \"oneroster-csv\"\npath = \"{}\"\n",
        district.display()
    ));
    let first = cli.json(&["sync"])["run_id"].as_i64().unwrap();
    let second = cli.json(&["sync"])["run_id"].as_i64().unwrap();

    let runs = cli.json(&["runs", "list"]);
    let ids: Vec<i64> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [second, first], "every run, newest first");
    let out = cli.run(&["runs", "list", "--json", "--limit", "1"]);
    let one: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(one[0]["id"].as_i64(), Some(second));
    assert!(
        stderr(&out).contains(&format!("runs list --before {second} --limit 1")),
        "{}",
        stderr(&out)
    );
    let older = cli.json(&["runs", "list", "--before", &second.to_string()]);
    assert_eq!(older.as_array().unwrap().len(), 1);
    assert_eq!(older[0]["id"].as_i64(), Some(first));

    // A run's items: all of them, or a page and where the next starts.
    let run = cli.json(&["runs", "show", &first.to_string()]);
    let items = run["items"].as_array().unwrap();
    assert_eq!(run["id"].as_i64(), Some(first));
    assert!(items.len() > 3, "{run}");
    let out = cli.run(&["runs", "show", &first.to_string(), "--json", "--limit", "2"]);
    let page: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["counts"], run["counts"]);
    let after = items[1]["sourced_id"].as_str().unwrap();
    assert!(
        stderr(&out).contains(&format!("--after {after} --limit 2")),
        "{}",
        stderr(&out)
    );
    let rest = cli.json(&["runs", "show", &first.to_string(), "--after", after]);
    assert_eq!(
        rest["items"].as_array().unwrap().len(),
        items.len() - 2,
        "the rest, from the note's cursor"
    );
    let skipped = cli.json(&["runs", "show", &first.to_string(), "--offset", "2"]);
    assert_eq!(skipped["items"], rest["items"]);
}
