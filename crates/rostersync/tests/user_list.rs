//! `users list` as an admin types it, on SQLite and PostgreSQL: a grade or homeroom in any
//! spelling, `--count`, `--sort` with the cursor a cut list's note gives, `--csv` with
//! formulas defused, `--view` from a saved view, and `users views`.

use serde_json::Value;

use crate::harness::{Cli, sample_district_with};
use crate::on_both_backends;

/// Grades spelled `5`, `05`, `Grade 5` and `K`, and names a spreadsheet would run.
const EXTRA_USERS: &str = "\
usr-s-7,active,2026-08-01T00:00:00Z,true,org-elem-1,student,s100007,{SIS:100007},Ann,Five,,100007,ann.five@students.district.k12.us,,,,5,
usr-s-8,active,2026-08-01T00:00:00Z,true,org-elem-1,student,s100008,{SIS:100008},\"=HYPERLINK(\"\"http://evil.example\"\")\",Formula,,100008,formula@students.district.k12.us,,,,05,
usr-s-9,active,2026-08-01T00:00:00Z,true,org-elem-1,student,s100009,{SIS:100009},Kay,Kinder,,100009,kay.kinder@students.district.k12.us,,,,K,
usr-s-10,active,2026-08-01T00:00:00Z,true,org-elem-1,student,s100010,{SIS:100010},+Plus,\"@At, \"\"Quoted\"\"\",,100010,plus@students.district.k12.us,,,,Grade 5,
";

fn synced(cli: &Cli) {
    let district = sample_district_with(&cli.dir, EXTRA_USERS);
    cli.configure(&format!(
        "[[source]]\nname = \"campus\"\nkind = \"oneroster-csv\"\npath = \"{}\"\n",
        district.display()
    ));
    let run = cli.json(&["sync"]);
    assert_eq!(run["status"], "succeeded", "{run:#}");
}

fn usernames(v: &Value) -> Vec<String> {
    let mut names: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {v:#}"))
        .iter()
        .map(|u| u["username"].as_str().unwrap_or_default().to_owned())
        .collect();
    names.sort();
    names
}

fn users_list_filters_counts_sorts_and_exports(cli: Cli) {
    synced(&cli);
    for five in ["5", "05", "Grade 5"] {
        assert_eq!(
            usernames(&cli.json(&["users", "list", "--grade", five])),
            ["s100007", "s100008", "s100010"],
            "--grade {five}"
        );
    }
    assert_eq!(
        usernames(&cli.json(&["users", "list", "--grade", "kindergarten"])),
        ["s100001", "s100002", "s100009"]
    );
    let all = cli.users();
    let mut in_room_4: Vec<String> = all
        .iter()
        .filter(|u| u["homeroom"] == "Room 4")
        .map(|u| u["username"].as_str().unwrap().to_owned())
        .collect();
    in_room_4.sort();
    assert!(!in_room_4.is_empty());
    assert_eq!(
        usernames(&cli.json(&["users", "list", "--homeroom", "ROOM 4"])),
        in_room_4
    );

    // --count: the number alone, or {"total": N}.
    assert_eq!(cli.ok(&["users", "list", "--count", "--grade", "5"]), "3\n");
    assert_eq!(
        cli.json(&["users", "list", "--count", "--grade", "k"])["total"],
        3
    );
    assert_eq!(
        cli.ok(&["users", "list", "--count"]).trim(),
        all.len().to_string()
    );

    // --sort: descending by name; a cut list's note gives the cursor of the next page.
    let whole = cli.json(&["users", "list", "--sort=-name"]);
    let ids: Vec<i64> = whole
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), all.len());
    let names: Vec<&str> = whole
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["first_name"].as_str())
        .collect();
    let first = |n: &str| names.iter().position(|x| *x == n).unwrap();
    assert!(
        first("Sofía") < first("Ann") && first("Ann") < first("+Plus"),
        "{names:?}"
    );
    let out = cli.run(&["users", "list", "--sort", "-name", "--limit", "3", "--json"]);
    assert!(out.status.success());
    let page: Value = serde_json::from_slice(&out.stdout).unwrap();
    let note = String::from_utf8_lossy(&out.stderr).into_owned();
    let after = note
        .split("--after ")
        .nth(1)
        .and_then(|rest| rest.split(" --limit").next())
        .unwrap_or_else(|| panic!("no --after in the note: {note}"))
        .trim_matches('\'')
        .to_owned();
    assert!(
        after.contains(':'),
        "a sort's cursor carries the value: {after}"
    );
    let rest = cli.json(&["users", "list", "--sort", "-name", "--after", &after]);
    let paged: Vec<i64> = page
        .as_array()
        .unwrap()
        .iter()
        .chain(rest.as_array().unwrap())
        .map(|u| u["id"].as_i64().unwrap())
        .collect();
    assert_eq!(paged, ids, "the note's --after continues the sorted list");
    let bad = cli.run(&["users", "list", "--sort", "shoe"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("sort by one of"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    // --csv: the console's columns, formulas defused, quoted where needed.
    let csv = cli.ok(&["users", "list", "--csv", "--grade", "5", "--sort", "name"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(lines[0].starts_with("id,first_name,last_name,preferred_name,email"));
    assert!(
        lines[1].contains(",'+Plus,\"'@At, \"\"Quoted\"\"\","),
        "{csv}"
    );
    assert!(
        lines[2].contains(",\"'=HYPERLINK(\"\"http://evil.example\"\")\",Formula,"),
        "{csv}"
    );
    assert!(lines[3].contains(",Ann,Five,"), "{csv}");
}

fn users_list_opens_a_saved_view(cli: Cli) {
    synced(&cli);
    assert_eq!(cli.json(&["users", "views"]), serde_json::json!([]));
    let missing = cli.run(&["users", "list", "--view", "Grade 5"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no saved view 'Grade 5'"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    {
        let store = cli.open_store();
        let spec =
            rostersync_core::user_list::ListSpec::from_params([("grade", "5"), ("sort", "-name")])
                .unwrap();
        store
            .save_view("Grade 5", &spec, "console:adam", jiff::Timestamp::now())
            .unwrap();
    }
    let views = cli.json(&["users", "views"]);
    assert_eq!(views[0]["name"], "Grade 5");
    assert_eq!(
        views[0]["description"],
        "grade 5, sorted by name, descending"
    );
    assert!(
        cli.ok(&["users", "views"])
            .contains("grade 5, sorted by name, descending")
    );
    // The view's filters and order; a flag given replaces the view's.
    let listed = cli.json(&["users", "list", "--view", "grade 5"]);
    let firsts: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["first_name"].as_str())
        .collect();
    assert_eq!(
        firsts,
        ["Ann", "=HYPERLINK(\"http://evil.example\")", "+Plus"]
    );
    assert_eq!(
        usernames(&cli.json(&["users", "list", "--view", "Grade 5", "--grade", "K"])),
        ["s100001", "s100002", "s100009"]
    );
    assert_eq!(
        cli.ok(&["users", "list", "--view", "Grade 5", "--count"]),
        "3\n"
    );
}

on_both_backends!(
    users_list_filters_counts_sorts_and_exports,
    users_list_opens_a_saved_view,
);
