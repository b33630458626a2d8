//! Broken CSV exports end to end, as the reliability review ran them: a users.csv with a
//! quote left open used to sync as *complete*, deactivate the people it swallowed and
//! write raw CSV into a first name. Now the pull is incomplete, nobody is deactivated,
//! nothing broken is written, and `sync --json` says which line — the same warnings
//! `inspect` prints. A row past the row limit stops the sync (exit 2) naming the setting.

use std::path::Path;

use serde_json::Value;

use crate::harness::{Cli, sample_district_with};

crate::on_both_backends!(
    a_quote_left_open_makes_the_pull_incomplete_and_deactivates_nobody,
    a_row_past_the_row_limit_fails_the_sync_naming_the_setting,
    a_runs_warnings_are_kept_and_shown_by_runs_show,
);

fn csv_source(path: &Path, extra: &str) -> String {
    format!(
        "[[source]]\nname = \"sis\"\nkind = \"oneroster-csv\"\npath = \"{}\"\n{extra}",
        path.display()
    )
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v:#}"))
        .iter()
        .map(|w| w.as_str().unwrap().to_owned())
        .collect()
}

fn a_quote_left_open_makes_the_pull_incomplete_and_deactivates_nobody(cli: Cli) {
    let district = sample_district_with(&cli.dir, "");
    cli.configure(&csv_source(&district, ""));
    let first = cli.json(&["sync"]);
    assert_eq!(first["complete"], true, "{first:#}");
    assert_eq!(first["counts"]["created"], 10);

    // The next export: Mia's given name opens a quote that is never closed where it
    // should be. It runs on to the quoted agent list of line 13, swallowing Liam, Sofía,
    // Ethan and Dana. And one teacher's date cannot be read (a per-record warning).
    let users_csv = district.join("users.csv");
    let text = std::fs::read_to_string(&users_csv)
        .unwrap()
        .replacen(",Mia,Johnson,", ",\"Mia,Johnson,", 1)
        .replacen(
            "usr-t-2,active,2026-08-01T00:00:00Z",
            "usr-t-2,active,1/08/2026",
            1,
        );
    std::fs::write(&users_csv, text).unwrap();

    let run = cli.json(&["sync"]);
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(run["complete"], false, "{run:#}");
    assert_eq!(run["counts"]["deactivated"], 0, "{run:#}");
    let warnings = strings(&run["warnings"]);
    let swallowed = "users: incomplete: users.csv lines 9–13: column `givenName` runs over several lines: a quote was probably left open and swallowed the rows after it; those lines are skipped";
    assert!(warnings.iter().any(|w| w == swallowed), "{warnings:#?}");
    assert!(
        warnings.iter().any(|w| w
            == "users.csv line 3: column `dateLastModified`: '1/08/2026' is not an ISO-8601 date-time; ignored"),
        "per-record warnings reach the sync too: {warnings:#?}"
    );

    // Everyone is still there, active, with a name as short as it was.
    let users = cli.users();
    assert_eq!(users.len(), 10);
    for u in &users {
        assert_eq!(u["active"], true, "{u:#}");
        let first = u["first_name"].as_str().unwrap();
        assert!(first.len() < 20 && !first.contains(','), "{u:#}");
    }
    assert!(users.iter().any(|u| u["first_name"] == "Mia"));

    // `inspect` and `sync` tell the same story: every warning of one is in the other.
    let inspected = cli.json(&["inspect", district.to_str().unwrap()]);
    assert_eq!(inspected["collections"]["users"]["complete"], false);
    for w in strings(&inspected["warnings"]) {
        assert!(
            warnings.contains(&w),
            "inspect says {w:?}; sync: {warnings:#?}"
        );
    }
}

fn a_row_past_the_row_limit_fails_the_sync_naming_the_setting(cli: Cli) {
    let long = "x".repeat(3000);
    let district = sample_district_with(
        &cli.dir,
        &format!(
            "usr-s-9,active,2026-08-01T00:00:00Z,true,org-high-1,student,s100009,,{long},Long,,100009,,,,,10,\n"
        ),
    );
    // A 1 KiB row limit (the default is 1 MiB) stops at the 3 KiB row.
    cli.configure(&csv_source(
        &district,
        "[source.limits]\nmax_record_kb = 1\n",
    ));
    let run = cli.json_with_code(&["sync"], 2);
    assert_eq!(run["status"], "failed");
    assert_eq!(
        run["error"],
        "users.csv line 17: a row longer than 1 KiB: the file is damaged, or a quote left open swallowed the lines after it; refusing to read further (if the row is genuine, raise `max_record_kb` under [source.limits])"
    );
    assert!(cli.users().is_empty(), "nothing was written");

    // With the default row limit, the 3 000-character name is a cell past the cell
    // limit: that row is skipped, the pull is incomplete, the rest is synced.
    cli.configure(&csv_source(&district, ""));
    let run = cli.json(&["sync"]);
    assert_eq!(run["complete"], false, "{run:#}");
    assert_eq!(run["counts"]["created"], 10);
    assert!(
        strings(&run["warnings"]).contains(
            &"users: incomplete: users.csv line 17, column `givenName`: a value of 3000 characters, more than the 1024 allowed (`max_cell_chars` under [source.limits]); row skipped"
                .to_owned()
        ),
        "{run:#}"
    );
    // A limit of 0 is refused when the settings are imported.
    let zero = cli.write(
        "zero.toml",
        &csv_source(&district, "[source.limits]\nmax_file_mb = 0\n"),
    );
    let out = cli.run(&["config", "import", zero.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[source.limits] max_file_mb must be at least 1"),
        "{err}"
    );
    // Raised, the cell limit lets it through.
    cli.configure(&csv_source(
        &district,
        "[source.limits]\nmax_cell_chars = 4000\n",
    ));
    let run = cli.json(&["sync"]);
    assert_eq!(run["complete"], true, "{run:#}");
    assert_eq!(run["counts"]["created"], 1);
}

/// The warnings `sync --json` prints are stored with the run: `runs show` (JSON and
/// text) and `runs list --json` show them later; a clean run has none.
fn a_runs_warnings_are_kept_and_shown_by_runs_show(cli: Cli) {
    let district = sample_district_with(&cli.dir, "");
    cli.configure(&csv_source(&district, ""));
    let clean = cli.json(&["sync"]);
    let clean_id = clean["run_id"].as_i64().unwrap().to_string();
    assert_eq!(
        cli.json(&["runs", "show", &clean_id])["warnings"],
        serde_json::json!([]),
        "a clean run has no warnings"
    );

    let users_csv = district.join("users.csv");
    let text = std::fs::read_to_string(&users_csv)
        .unwrap()
        .replacen(",Mia,Johnson,", ",\"Mia,Johnson,", 1)
        .replacen(
            "usr-t-2,active,2026-08-01T00:00:00Z",
            "usr-t-2,active,1/08/2026",
            1,
        );
    std::fs::write(&users_csv, text).unwrap();
    let run = cli.json(&["sync"]);
    let id = run["run_id"].as_i64().unwrap().to_string();
    let synced = strings(&run["warnings"]);
    let swallowed = "users: incomplete: users.csv lines 9–13: column `givenName` runs over several lines: a quote was probably left open and swallowed the rows after it; those lines are skipped";
    let unreadable = "users.csv line 3: column `dateLastModified`: '1/08/2026' is not an ISO-8601 date-time; ignored";

    let shown = cli.json(&["runs", "show", &id]);
    assert_eq!(shown["id"].as_i64(), run["run_id"].as_i64(), "{shown:#}");
    let stored = strings(&shown["warnings"]);
    assert_eq!(stored, synced, "the run keeps what the sync warned about");
    assert!(stored.iter().any(|w| w == swallowed), "{stored:#?}");
    assert!(stored.iter().any(|w| w == unreadable), "{stored:#?}");
    assert!(
        shown["items"].is_array(),
        "the items still follow: {shown:#}"
    );

    let text = cli.ok(&["runs", "show", &id]);
    assert!(
        text.contains(&format!("warning: {swallowed}"))
            && text.contains(&format!("warning: {unreadable}")),
        "{text}"
    );
    assert!(!cli.ok(&["runs", "show", &clean_id]).contains("warning:"));

    let listed = cli.json(&["runs", "list"]);
    let newest = &listed.as_array().unwrap()[0];
    assert_eq!(strings(&newest["warnings"]), synced, "{newest:#}");
}
