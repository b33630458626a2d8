//! `rostersync sync` end to end: first imports, linking single sign-on accounts, field
//! rules, no-change re-syncs, failures and dry runs.

use serde_json::Value;

use crate::harness::{Cli, sample_district, sample_district_with};

crate::on_both_backends!(
    first_import_from_the_sample_package,
    sso_accounts_are_linked_not_duplicated,
    a_disputed_match_is_skipped_with_its_reason,
    if_not_set_keeps_what_another_writer_set,
    a_disabled_field_is_written_by_no_source,
    a_no_change_resync_writes_nothing,
    a_failed_pull_leaves_the_directory_as_it_was,
    a_dry_run_writes_nothing,
    first_import_from_the_simulator_over_rest,
    a_wrong_master_key_is_a_clear_error,
);

fn a_wrong_master_key_is_a_clear_error(cli: Cli) {
    cli.configure(&csv_source(&sample_district(), ""));
    let key = cli.dir.join("data/master.key");
    std::fs::write(&key, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n").unwrap();
    let out = cli.run(&["users", "list"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not match this database"), "{err}");
    assert!(err.contains("master.key"), "{err}");
}

fn csv_source(path: &std::path::Path, extra: &str) -> String {
    format!(
        "[[source]]\nname = \"sis\"\nkind = \"oneroster-csv\"\npath = \"{}\"\n{extra}",
        path.display()
    )
}

const MAPPING: &str = "[source.user_mapping]\ntranslate_email = [{ from = \"students.district.k12.us\", to = \"district.k12.us\" }]\nappend_domain = \"district.k12.us\"\n";

fn by_email<'a>(users: &'a [Value], email: &str) -> &'a Value {
    users
        .iter()
        .find(|u| u["email"] == email)
        .unwrap_or_else(|| panic!("no user {email} in {users:#?}"))
}

fn first_import_from_the_sample_package(cli: Cli) {
    cli.configure(&csv_source(&sample_district(), ""));
    let run = cli.json(&["sync", "--source", "sis"]);
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["kind"], "full");
    assert_eq!(run["dry_run"], false);
    assert_eq!(run["complete"], true);
    let c = &run["counts"];
    // 15 people: 5 active students, 3 teachers, 2 staff are imported; 4 guardians (other
    // users are off by default) and 1 withdrawn student (inactive) are skipped.
    assert_eq!(
        (
            c["seen"].as_u64(),
            c["created"].as_u64(),
            c["skipped"].as_u64()
        ),
        (Some(15), Some(10), Some(5))
    );
    assert_eq!(c["errors"], 0);

    let users = cli.users();
    assert_eq!(users.len(), 10);
    let mia = by_email(&users, "mia.johnson@students.district.k12.us");
    assert_eq!(mia["first_name"], "Mia");
    assert_eq!(mia["type"], "student");
    assert_eq!(mia["access"], "requestor");
    assert_eq!(mia["grade"], "09");
    assert_eq!(mia["identifier"], "100003");
    assert_eq!(mia["provider"], "sis");
    assert_eq!(mia["sis"]["source"], "sis");
    assert_eq!(mia["sis"]["sourced_id"], "usr-s-3");
    let ruth = by_email(&users, "ruth.baker@district.k12.us");
    assert_eq!(ruth["type"], "faculty", "emails are stored lower-case");
    assert_eq!(
        by_email(&users, "jay.patel@district.k12.us")["type"],
        "staff"
    );
    let kinder = users.iter().find(|u| u["username"] == "s100001").unwrap();
    assert_eq!(
        kinder["email"],
        Value::Null,
        "no SIS email and no append domain"
    );

    let skipped = cli.json(&[
        "runs",
        "show",
        &run["run_id"].to_string(),
        "--items",
        "skipped",
    ]);
    let items = skipped["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    let codes: Vec<&str> = items
        .iter()
        .map(|i| i["reason_code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes
            .iter()
            .filter(|c| **c == "category_not_imported")
            .count(),
        4
    );
    assert_eq!(
        codes
            .iter()
            .filter(|c| **c == "inactive_not_imported")
            .count(),
        1
    );
    let shown = cli.json(&["users", "show", "mia.johnson@students.district.k12.us"]);
    let revisions = shown["revisions"].as_array().unwrap();
    assert_eq!(revisions.len(), 1);
    assert_eq!(revisions[0]["field"], "created");
    assert_eq!(revisions[0]["writer"], "source:sis");

    // The next sync skips the same five as the first listed them: counted, not listed.
    let out = cli.ok(&["sync", "--source", "sis"]);
    assert!(
        out.contains("skipped 5 (5 as before, listed by an earlier run)"),
        "{out}"
    );
    let runs = cli.json(&["runs", "list"]);
    let last = &runs[0];
    assert_eq!(last["counts"]["skipped_listed_before"], 5, "{last}");
    let again = cli.json(&[
        "runs",
        "show",
        &last["id"].to_string(),
        "--items",
        "skipped",
    ]);
    assert_eq!(again["items"].as_array().map(Vec::len), Some(0), "{again}");
}

fn sso_accounts_are_linked_not_duplicated(cli: Cli) {
    let accounts = cli.write(
        "accounts.csv",
        "email,first_name,last_name,username\n\
         Lucia.Ortiz@district.k12.us,Lucia,Ortiz,lortiz\n\
         mia.johnson@district.k12.us,Mia,Johnson,\n\
         s100001@district.k12.us,Ava,Johnson,\n\
         visitor@district.k12.us,Vi,Sitor,\n",
    );
    let imported = cli.json(&[
        "accounts",
        "import",
        accounts.to_str().unwrap(),
        "--provider",
        "google",
    ]);
    assert_eq!(imported["created"], 4);
    cli.configure(&csv_source(&sample_district(), MAPPING));
    let run = cli.json(&["sync"]);
    let c = &run["counts"];
    assert_eq!(c["linked"], 3, "{run:#}");
    assert_eq!(c["created"], 7);

    let users = cli.users();
    assert_eq!(
        users.len(),
        11,
        "3 linked + 7 created + 1 unrelated account"
    );
    let mut emails: Vec<String> = users
        .iter()
        .filter_map(|u| u["email"].as_str().map(str::to_lowercase))
        .collect();
    let n = emails.len();
    emails.sort();
    emails.dedup();
    assert_eq!(emails.len(), n, "no duplicate email: {emails:?}");
    let mia = by_email(&users, "mia.johnson@district.k12.us");
    assert_eq!(
        mia["provider"], "google",
        "the single sign-on account was kept"
    );
    assert_eq!(mia["sis"]["sourced_id"], "usr-s-3");
    assert_eq!(mia["grade"], "09");
    let ava = by_email(&users, "s100001@district.k12.us");
    assert_eq!(
        ava["sis"]["sourced_id"], "usr-s-1",
        "linked by username@append-domain"
    );
    let noah = users.iter().find(|u| u["username"] == "s100002").unwrap();
    assert_eq!(
        noah["email"], "s100002@district.k12.us",
        "created with username@append-domain"
    );
    assert_eq!(
        by_email(&users, "visitor@district.k12.us")["sis"],
        Value::Null
    );

    let linked = cli.json(&[
        "runs",
        "show",
        &run["run_id"].to_string(),
        "--items",
        "linked",
    ]);
    let reasons: Vec<&str> = linked["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.contains(&"linked to an existing account by email (mia.johnson@district.k12.us)"),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(
            &"linked to an existing account by username@domain (s100001@district.k12.us)"
        ),
        "{reasons:?}"
    );
}

fn a_disputed_match_is_skipped_with_its_reason(cli: Cli) {
    // The SIS holds the same teacher twice (a data-entry duplicate) and an SSO account has
    // their email: linking either would be a guess.
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
        "microsoft",
    ]);
    cli.configure(&csv_source(&district, ""));
    let run = cli.json(&["sync"]);
    assert_eq!(run["counts"]["skipped"], 7, "{run:#}");
    let skipped = cli.json(&[
        "runs",
        "show",
        &run["run_id"].to_string(),
        "--items",
        "skipped",
    ]);
    let disputed: Vec<&Value> = skipped["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["reason_code"] == "claimed_by_several")
        .collect();
    assert_eq!(disputed.len(), 2);
    let reason = disputed[0]["reason"].as_str().unwrap();
    assert!(reason.starts_with("account #"), "{reason}");
    assert!(
        reason.ends_with("matches several SIS people (usr-t-2, usr-t-2b); link by hand"),
        "{reason}"
    );
    let users = cli.users();
    assert_eq!(
        by_email(&users, "tam.nguyen@district.k12.us")["sis"],
        Value::Null
    );
    assert_eq!(
        users.iter().filter(|u| u["last_name"] == "Nguyen").count(),
        1
    );
}

fn if_not_set_keeps_what_another_writer_set(cli: Cli) {
    let accounts = cli.write(
        "accounts.csv",
        "email,first_name,last_name,username\nlucia.ortiz@district.k12.us,Lu,O.,\n",
    );
    cli.json(&[
        "accounts",
        "import",
        accounts.to_str().unwrap(),
        "--provider",
        "google",
    ]);
    cli.configure(&csv_source(
        &sample_district(),
        "[source.field_priority]\nfirst_name = \"if-not-set\"\n",
    ));
    cli.json(&["sync"]);
    let lucia = cli.json(&["users", "show", "lucia.ortiz@district.k12.us"]);
    assert_eq!(
        lucia["first_name"], "Lu",
        "single sign-on wrote it; if-not-set leaves it"
    );
    assert_eq!(lucia["last_name"], "Ortiz", "always: the SIS wins");
    assert_eq!(lucia["identifier"], "T9001", "empty: filled");

    cli.configure(&csv_source(&sample_district(), ""));
    cli.json(&["sync"]);
    let lucia = cli.json(&["users", "show", "lucia.ortiz@district.k12.us"]);
    assert_eq!(lucia["first_name"], "Lucia");
    let revisions: Vec<(String, String)> = lucia["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["field"].as_str().unwrap().to_owned(),
                r["writer"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        revisions.contains(&("first_name".into(), "source:sis".into())),
        "{revisions:?}"
    );
}

fn a_disabled_field_is_written_by_no_source(cli: Cli) {
    cli.configure(&format!(
        "[fields]\nphone = {{ enabled = false }}\ngrade = {{ enabled = false }}\n{}",
        csv_source(&sample_district(), "[source.import]\nother_users = true\n")
    ));
    let run = cli.json(&["sync"]);
    assert_eq!(run["counts"]["created"], 14);
    for u in cli.users() {
        assert_eq!(u["phone"], Value::Null, "{u}");
        assert_eq!(u["grade"], Value::Null, "{u}");
    }
    let guardian = cli.json(&["users", "show", "dana.johnson@example.com"]);
    assert_eq!(guardian["type"], "guardian");
}

fn a_no_change_resync_writes_nothing(cli: Cli) {
    cli.configure(&csv_source(&sample_district(), MAPPING));
    cli.json(&["sync"]);
    let before = cli.users();
    let histories: Vec<Value> = before
        .iter()
        .map(|u| cli.json(&["users", "show", &u["id"].to_string()]))
        .collect();
    let run = cli.json(&["sync"]);
    let c = &run["counts"];
    assert_eq!(
        (
            c["created"].as_u64(),
            c["updated"].as_u64(),
            c["linked"].as_u64()
        ),
        (Some(0), Some(0), Some(0))
    );
    assert_eq!(c["unchanged"], 10);
    assert_eq!(cli.users(), before, "not even updated_at moved");
    let after: Vec<Value> = before
        .iter()
        .map(|u| cli.json(&["users", "show", &u["id"].to_string()]))
        .collect();
    assert_eq!(after, histories, "no new revisions");
    assert_eq!(c["skipped_listed_before"], 5);
    let items = cli.json(&["runs", "show", &run["run_id"].to_string()]);
    assert_eq!(
        items["items"].as_array().unwrap().len(),
        0,
        "the 5 skipped people were listed by the first run"
    );
    assert_eq!(cli.json(&["runs", "list"]).as_array().unwrap().len(), 2);
}

fn a_failed_pull_leaves_the_directory_as_it_was(cli: Cli) {
    let district = sample_district_with(&cli.dir, "");
    cli.configure(&csv_source(&district, ""));
    cli.json(&["sync"]);
    let before = cli.users();
    // The next export is cut short: users.csv loses its header's required column.
    let users_csv = district.join("users.csv");
    let text = std::fs::read_to_string(&users_csv)
        .unwrap()
        .replacen("givenName", "given", 1);
    std::fs::write(&users_csv, text).unwrap();
    let run = cli.json_with_code(&["sync"], 2);
    assert_eq!(run["status"], "failed");
    let error = run["error"].as_str().unwrap();
    assert_eq!(
        error,
        "users.csv: required column `givenName` is missing (the header has: sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,given,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password)"
    );
    assert_eq!(cli.users(), before);
    let runs = cli.json(&["runs", "list"]);
    assert_eq!(runs[0]["status"], "failed");
    assert_eq!(runs[0]["error"], error);
}

fn a_dry_run_writes_nothing(cli: Cli) {
    cli.configure(&csv_source(&sample_district(), ""));
    let run = cli.json(&["sync", "--dry-run"]);
    assert_eq!(run["dry_run"], true);
    assert_eq!(run["run_id"], Value::Null);
    assert_eq!(run["counts"]["created"], 10);
    let items = run["items"].as_array().unwrap();
    assert_eq!(
        items.iter().filter(|i| i["outcome"] == "created").count(),
        10
    );
    assert!(
        items
            .iter()
            .all(|i| !i["reason"].as_str().unwrap().is_empty())
    );
    // As text: the counts, then an item a line.
    let text = cli.ok(&["sync", "--dry-run"]);
    assert!(text.starts_with("dry run · "), "{text}");
    let created = text
        .lines()
        .filter(|l| l.trim_start().starts_with("created "));
    assert_eq!(created.count(), 10, "{text}");
    assert!(cli.users().is_empty());
    assert!(cli.json(&["runs", "list"]).as_array().unwrap().is_empty());
    // Everyone imported, a dry run has nothing to list: a document with no items.
    cli.configure(&csv_source(
        &sample_district(),
        "[source.import]\nother_users = true\ninclude_inactive = true\n",
    ));
    cli.json(&["sync"]);
    let again = cli.json(&["sync", "--dry-run"]);
    assert_eq!(again["items"], serde_json::json!([]), "{again}");
    assert_eq!(again["counts"]["unchanged"], 15, "{again}");
    assert_eq!(again["dry_run"], true);
}

fn first_import_from_the_simulator_over_rest(cli: Cli) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = sim::SimConfig {
        district: sim::DistrictConfig {
            users: 400,
            seed: 7,
            ..sim::DistrictConfig::default()
        },
        ..sim::SimConfig::default()
    };
    let running = rt.block_on(sim::Server::start(config)).unwrap();
    let counts = running.counts();
    cli.configure(&format!(
        "[network]\nallow_loopback = true\n[[source]]\nname = \"campus\"\nkind = \"oneroster-api\"\nurl = \"{}\"\nauth = \"oauth2\"\ntoken_url = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\npage_size = 97\n",
        running.base_url(),
        running.token_url().unwrap(),
        sim::DEFAULT_CLIENT_ID,
        sim::DEFAULT_CLIENT_SECRET
    ));
    let exported = cli.ok(&["config", "export"]);
    assert!(!exported.contains(sim::DEFAULT_CLIENT_SECRET), "{exported}");
    assert!(
        exported.contains("# source campus: client secret is set"),
        "{exported}"
    );
    // The exported file (no secret in it) imports back and keeps the stored secret.
    let again = cli.write("exported.toml", &exported);
    cli.ok(&["config", "import", again.to_str().unwrap()]);
    assert_eq!(cli.ok(&["config", "export"]), exported);

    let run = cli.json(&["sync"]);
    assert_eq!(run["complete"], true);
    let c = &run["counts"];
    assert_eq!(c["seen"].as_u64(), Some(counts.users));
    assert_eq!(
        c["created"].as_u64(),
        Some(counts.users - counts.guardians),
        "{run:#}"
    );
    assert_eq!(c["skipped"].as_u64(), Some(counts.guardians));
    assert_eq!(cli.users().len() as u64, counts.users - counts.guardians);

    let again = cli.json(&["sync"]);
    assert_eq!(
        again["counts"]["unchanged"].as_u64(),
        Some(counts.users - counts.guardians)
    );
    assert_eq!(again["counts"]["created"], 0);
    assert_eq!(again["counts"]["updated"], 0);
    rt.block_on(running.stop());
}
