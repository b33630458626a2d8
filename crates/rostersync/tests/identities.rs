//! One person, one account, through the CLI on both backends: the duplicates report finds
//! only accounts that could really be one person (never a district's namesakes, always a
//! single sign-on account and the SIS account of the same person, with the evidence); no
//! run and no account import gives two accounts one username or email; *keep apart* is a
//! decision later syncs keep.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sim::{District, DistrictConfig};

use crate::harness::{Cli, sample_district_with};

crate::on_both_backends!(
    namesakes_are_never_duplicates_and_a_twin_always_is,
    two_new_people_never_share_a_username,
    an_account_import_skips_taken_usernames_by_line,
    keep_apart_is_a_decision_later_syncs_keep,
);

/// Writes the simulator's district as a CSV folder.
fn export(d: &District, dir: &Path) -> PathBuf {
    let zip = dir.join("district.zip");
    sim::export_csv(
        d,
        &zip,
        &sim::ExportOptions {
            version: sim::Version::V1p1,
            delta_from: None,
        },
    )
    .unwrap();
    let out = dir.join("district");
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

fn csv_source(folder: &Path, extra: &str) -> String {
    format!(
        "[[source]]\nname = \"sis\"\nkind = \"oneroster-csv\"\npath = \"{}\"\n{extra}",
        folder.display()
    )
}

fn lower(v: &Value) -> Option<String> {
    v.as_str().map(str::to_lowercase)
}

/// No two active accounts share an email or a username, case aside.
fn assert_unique(cli: &Cli) {
    let users = cli.users();
    for field in ["email", "username"] {
        let mut values: Vec<String> = users
            .iter()
            .filter(|u| u["active"] == true)
            .filter_map(|u| lower(&u[field]))
            .collect();
        let all = values.len();
        values.sort();
        values.dedup();
        assert_eq!(values.len(), all, "two active accounts share a {field}");
    }
}

/// The simulated district (common first and family names, everyone at the unmapped
/// default location) plus a teacher and a student who share a name and an email local
/// part: all different SIS people, so no group. Then a student's own single sign-on
/// account: found with the SIS account, with the evidence in words.
fn namesakes_are_never_duplicates_and_a_twin_always_is(cli: Cli) {
    let d = District::generate(&DistrictConfig {
        users: 1500,
        seed: 11,
        ..DistrictConfig::default()
    })
    .unwrap();
    let folder = export(&d, &cli.dir);
    let users_csv = folder.join("users.csv");
    let header = std::fs::read_to_string(&users_csv)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    assert!(header.starts_with("sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,givenName,familyName,middleName,identifier,email"), "{header}");
    let org = std::fs::read_to_string(folder.join("orgs.csv"))
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_owned();
    let cells = header.split(',').count();
    let row = |id: &str, role: &str, user: &str, email: &str| {
        let mut c = vec![String::new(); cells];
        for (i, v) in [
            id,
            "active",
            "2026-08-01T00:00:00Z",
            "true",
            org.as_str(),
            role,
            user,
            "",
            "Quinn",
            "Zephyrine",
            "",
            id,
            email,
        ]
        .iter()
        .enumerate()
        {
            c[i] = (*v).to_owned();
        }
        c.join(",") + "\n"
    };
    let mut text = std::fs::read_to_string(&users_csv).unwrap();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&row(
        "namesake-t",
        "teacher",
        "qzephyrine",
        "quinn.zephyrine@district.k12.us",
    ));
    text.push_str(&row(
        "namesake-s",
        "student",
        "s-qzephyrine",
        "quinn.zephyrine@students.district.k12.us",
    ));
    std::fs::write(&users_csv, text).unwrap();
    cli.configure(&csv_source(
        &folder,
        "[source.locations]\ndefault = \"District Office\"\n",
    ));
    let run = cli.json(&["sync"]);
    assert_eq!(run["status"], "succeeded", "{run:#}");

    // The district really has namesakes at one location, in one grade.
    let users = cli.users();
    let mut by_name: HashMap<(String, String, String), usize> = HashMap::new();
    for u in users.iter().filter(|u| u["sis"] != Value::Null) {
        let key = (
            lower(&u["first_name"]).unwrap_or_default(),
            lower(&u["last_name"]).unwrap_or_default(),
            lower(&u["grade"]).unwrap_or_default(),
        );
        *by_name.entry(key).or_default() += 1;
        assert_eq!(u["location"], "District Office", "{u}");
    }
    assert!(
        by_name.values().any(|n| *n > 1),
        "the district has namesakes in one grade"
    );
    let groups = cli.json(&["report", "duplicates"]);
    assert_eq!(
        groups.as_array().unwrap().len(),
        0,
        "different SIS people are never one: {groups:#}"
    );

    // A student's own single sign-on account, under the district domain.
    let student = users
        .iter()
        .filter(|u| u["type"] == "student")
        .filter(|u| {
            u["email"]
                .as_str()
                .is_some_and(|e| e.ends_with("@students.district.k12.us"))
        })
        .find(|u| {
            let key = (
                lower(&u["first_name"]).unwrap_or_default(),
                lower(&u["last_name"]).unwrap_or_default(),
            );
            users
                .iter()
                .filter(|o| {
                    (
                        lower(&o["first_name"]).unwrap_or_default(),
                        lower(&o["last_name"]).unwrap_or_default(),
                    ) == key
                })
                .count()
                == 1
        })
        .expect("a student with a name of their own");
    let sis_email = student["email"].as_str().unwrap().to_owned();
    let sso_email = sis_email.replace("@students.", "@");
    let file = cli.write(
        "sso.csv",
        &format!(
            "email,first_name,last_name,username\n{sso_email},{},{},\n",
            student["first_name"].as_str().unwrap(),
            student["last_name"].as_str().unwrap()
        ),
    );
    cli.json(&[
        "accounts",
        "import",
        file.to_str().unwrap(),
        "--provider",
        "google",
    ]);
    let groups = cli.json(&["report", "duplicates"]);
    let groups = groups.as_array().unwrap();
    assert_eq!(groups.len(), 1, "{groups:#?}");
    let g = &groups[0];
    let emails: Vec<&str> = g["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, [sis_email.as_str(), sso_email.as_str()]);
    let kinds: Vec<&str> = g["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["email_local_part", "same_name", "one_linked"]);
    let local = sis_email.split('@').next().unwrap().to_lowercase();
    assert_eq!(
        g["evidence"][0]["detail"],
        format!(
            "the same local part {local} on different domains: email {sis_email} and email {sso_email}"
        )
    );
    let text = cli.ok(&["report", "duplicates"]);
    assert!(text.contains("is linked to the SIS"), "{text}");
}

fn user_row(id: &str, role: &str, username: &str, first: &str, last: &str, email: &str) -> String {
    format!(
        "{id},active,2026-08-01T00:00:00Z,true,org-high-1,{role},{username},,{first},{last},,{id},{email},,,,09,\n"
    )
}

/// Two new SIS people of one run with one username (case aside): the first is created,
/// the second skipped with the reason and a review case naming the first's account.
fn two_new_people_never_share_a_username(cli: Cli) {
    let district = sample_district_with(
        &cli.dir,
        &(user_row(
            "usr-s-20",
            "student",
            "jdoe",
            "Jo",
            "Doe",
            "jo.doe@students.district.k12.us",
        ) + &user_row(
            "usr-s-21",
            "student",
            "JDoe",
            "Jay",
            "Doe",
            "jay.doe@students.district.k12.us",
        )),
    );
    cli.configure(&csv_source(&district, ""));
    let run = cli.json(&["sync"]);
    let skipped = cli.json(&[
        "runs",
        "show",
        &run["run_id"].to_string(),
        "--items",
        "skipped",
    ]);
    let item = skipped["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["sourced_id"] == "usr-s-21")
        .unwrap_or_else(|| panic!("{skipped:#}"))
        .clone();
    assert_eq!(item["reason_code"], "identity_taken", "{item:#}");
    assert!(
        item["reason"]
            .as_str()
            .unwrap()
            .contains("SIS person usr-s-20"),
        "{item:#}"
    );
    assert_unique(&cli);
    let jo = cli.json(&["users", "show", "jo.doe@students.district.k12.us"]);
    let cases = cli.json(&["review", "list"]);
    let case = cases
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["sourced_id"] == "usr-s-21")
        .unwrap_or_else(|| panic!("{cases:#}"));
    assert_eq!(case["reason_code"], "identity_taken");
    assert_eq!(case["candidates"][0]["id"], jo["id"], "{case:#}");
    assert!(
        !cli.users()
            .iter()
            .any(|u| u["email"] == "jay.doe@students.district.k12.us"),
        "no account for the second person yet"
    );
}

/// `accounts import`: a row whose username another account has, or an earlier row of the
/// file has, is skipped and listed with its line and the account that holds it.
fn an_account_import_skips_taken_usernames_by_line(cli: Cli) {
    let district = sample_district_with(&cli.dir, "");
    cli.configure(&csv_source(&district, ""));
    cli.json(&["sync"]);
    let tam = cli.json(&["users", "show", "TNGUYEN"]);
    let file = cli.write(
        "sso.csv",
        "email,first_name,last_name,username\n\
         ok@district.k12.us,Ok,Fine,okay\n\
         tam2@district.k12.us,Tam,Two,TNguyen\n\
         a@district.k12.us,A,One,Same\n\
         b@district.k12.us,B,Two,same\n\
         lucia.ortiz@district.k12.us,Lucia,Ortiz,\n",
    );
    let out = cli.json(&[
        "accounts",
        "import",
        file.to_str().unwrap(),
        "--provider",
        "google",
    ]);
    assert_eq!(out["created"], 2, "{out:#}");
    assert_eq!(out["existing"][0], "lucia.ortiz@district.k12.us");
    let skipped = out["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 2, "{out:#}");
    assert_eq!(
        (
            &skipped[0]["line"],
            &skipped[0]["account"],
            &skipped[0]["field"]
        ),
        (&Value::from(3), &tam["id"], &Value::from("username"))
    );
    assert!(
        skipped[0]["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("account #{}'s", tam["id"])),
        "{out:#}"
    );
    assert_eq!(
        (&skipped[1]["line"], &skipped[1]["earlier_line"]),
        (&Value::from(5), &Value::from(4))
    );
    assert_unique(&cli);

    // In words, by line, for a person at a terminal.
    let again = cli.write(
        "again.csv",
        "email,first_name,last_name,username\nc@district.k12.us,C,Three,okay\n",
    );
    let text = cli.ok(&[
        "accounts",
        "import",
        again.to_str().unwrap(),
        "--provider",
        "google",
    ]);
    assert!(text.contains("0 already existed; 1 skipped"), "{text}");
    assert!(
        text.contains("again.csv line 2: the username okay is account #"),
        "{text}"
    );
}

/// An `identity_taken` case kept apart through the CLI: resolved, recorded in both
/// accounts' histories; the next syncs write the person's other changes, never the taken
/// address, and open no case for the pair again.
fn keep_apart_is_a_decision_later_syncs_keep(cli: Cli) {
    let district = sample_district_with(&cli.dir, "");
    cli.configure(&csv_source(&district, ""));
    cli.json(&["sync"]);
    let file = cli.write(
        "sso.csv",
        "email,first_name,last_name,username\ntam.new@district.k12.us,Tam,Other,\n",
    );
    cli.json(&[
        "accounts",
        "import",
        file.to_str().unwrap(),
        "--provider",
        "google",
    ]);
    let other = cli.json(&["users", "show", "tam.new@district.k12.us"])["id"].clone();
    let users = district.join("users.csv");
    let text = std::fs::read_to_string(&users)
        .unwrap()
        .replace("tam.nguyen@district.k12.us", "TAM.NEW@district.k12.us");
    std::fs::write(&users, text).unwrap();
    cli.json(&["sync"]);
    let tam = cli.json(&["users", "show", "tnguyen"]);
    assert_eq!(tam["email"], "tam.nguyen@district.k12.us");
    let cases = cli.json(&["review", "list"]);
    let case = cases
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["reason_code"] == "identity_taken")
        .unwrap_or_else(|| panic!("{cases:#}"))
        .clone();
    assert_eq!(case["candidates"][0]["id"], other);

    let id = case["id"].to_string();
    let out = cli.ok(&["review", "resolve", &id, "--keep-apart"]);
    assert!(
        out.contains(&format!("kept apart from account #{other}")),
        "{out}"
    );
    let resolved = cli.json(&["review", "list", "--status", "resolved"]);
    assert!(
        resolved[0]["resolution"]
            .as_str()
            .unwrap()
            .starts_with("kept apart"),
        "{resolved:#}"
    );
    for (user, names) in [(&tam["id"], &other), (&other, &tam["id"])] {
        let shown = cli.json(&["users", "show", &user.to_string()]);
        let note = shown["revisions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["field"] == "kept_apart")
            .unwrap_or_else(|| panic!("{shown:#}"))
            .clone();
        assert!(
            note["new"].as_str().unwrap().contains(&format!("#{names}")),
            "{note:#}"
        );
    }

    // The SIS changes Tam again (an identifier) and keeps the taken address: the change is
    // written, the address is not, and nothing is asked again.
    let text = std::fs::read_to_string(&users)
        .unwrap()
        .replace(",T9002,", ",T9002-B,");
    std::fs::write(&users, text).unwrap();
    let run = cli.json(&["sync"]);
    assert_eq!(run["status"], "succeeded");
    let tam = cli.json(&["users", "show", "tnguyen"]);
    assert_eq!(
        (tam["email"].as_str(), tam["identifier"].as_str()),
        (Some("tam.nguyen@district.k12.us"), Some("T9002-B"))
    );
    assert!(
        cli.json(&["review", "list"]).as_array().unwrap().is_empty(),
        "no case reopened for the pair"
    );
    assert_unique(&cli);

    // Only identity cases can be kept apart; the CLI says how to decide.
    let err = cli.run(&["review", "resolve", &id, "--keep-apart"]);
    assert_ne!(err.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&err.stderr).contains("already"),
        "{}",
        String::from_utf8_lossy(&err.stderr)
    );
}
