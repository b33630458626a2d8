//! SIS data with markup, quotes and Unicode: escaped in every page, intact in the API.

use reqwest::Method;
use serde_json::json;

use crate::harness::{App, Auth, Body, sample_district};
use crate::on_both;

const FIRST: &str = "<script>alert(\"pwn\")</script>";
const LAST: &str = "O'Brien “Zoë” & Ñandú";

fn sis_markup_is_escaped_and_unicode_intact(app: App) {
    // The sample district with one hostile person.
    let dir = app.dir.join("district");
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(sample_district()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    let users = dir.join("users.csv");
    let mut text = std::fs::read_to_string(&users).unwrap();
    text.push_str(
        "usr-x-1,active,2026-08-01T00:00:00Z,true,org-elem-1,student,xss1,{LDAP:1},\"<script>alert(\"\"pwn\"\")</script>\",O'Brien “Zoë” & Ñandú,,S9999,xss1@district.k12.us,,,,05,\n",
    );
    std::fs::write(&users, text).unwrap();
    let config = rostersync_core::settings::Config::from_toml(&format!(
        "[[source]]\nname = \"campus\"\nkind = \"oneroster-csv\"\npath = \"{}\"\n",
        dir.display()
    ))
    .unwrap();
    app.store
        .save_config(&config, &[], "test", jiff::Timestamp::now())
        .unwrap();

    let write = Auth::Bearer(app.write_token.clone());
    let r = app.request(
        Method::POST,
        "/api/v1/sources/campus/sync",
        &write,
        Some(Body::Json(json!({"kind": "full"}))),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(app.wait_for_sync("campus")["status"], "succeeded");

    let found = app.get("/api/v1/users?search=xss1", &write).json();
    let u = &found["items"][0];
    assert_eq!(u["first_name"], FIRST, "stored and returned exactly");
    assert_eq!(u["last_name"], LAST);
    let id = u["id"].as_i64().unwrap();

    let owner = app.login("olivia");
    let run = app.get("/api/v1/runs", &write).json()[0]["id"]
        .as_i64()
        .unwrap();
    for path in [
        "/users?search=xss1".to_owned(),
        format!("/users/{id}"),
        format!("/runs/{run}?outcome=created"),
    ] {
        let page = app.get(&path, &owner);
        assert_eq!(page.status, 200, "{path}");
        assert!(
            !page.body.contains("<script>alert"),
            "{path} renders the markup raw:\n{}",
            page.body
        );
        assert!(
            page.body.contains("&#60;script&#62;"),
            "{path} shows it escaped"
        );
        assert!(
            page.body.contains("Zoë") && page.body.contains("Ñandú") && page.body.contains("“"),
            "{path}: Unicode intact"
        );
        assert!(!page.body.contains("O'Brien"), "{path}: quotes escaped");
        assert!(page.body.contains("&#38;"), "{path}: & escaped");
    }
}

on_both!(escaping, crate::harness::plain; sis_markup_is_escaped_and_unicode_intact, run_warnings_are_shown_escaped);

/// Askama's HTML escaping, for what a page should contain.
fn escaped(s: &str) -> String {
    s.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

/// A run's reader warnings (here an unreadable value with markup in it) are stored with
/// it: the run page lists them escaped near the top, held runs too, and the API's run
/// document carries them as they are.
fn run_warnings_are_shown_escaped(app: App) {
    let dir = app.dir.join("district");
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(sample_district()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    let users = dir.join("users.csv");
    let mut text = std::fs::read_to_string(&users).unwrap();
    let line = text.lines().count() + 1;
    text.push_str(
        "usr-x-1,active,<b>soon</b>,true,org-elem-1,student,xss1,{LDAP:1},Ann,Lee,,S9999,xss1@district.k12.us,,,,05,\n",
    );
    std::fs::write(&users, text).unwrap();
    let config = rostersync_core::settings::Config::from_toml(&format!(
        "[[source]]\nname = \"campus\"\nkind = \"oneroster-csv\"\npath = \"{}\"\n",
        dir.display()
    ))
    .unwrap();
    app.store
        .save_config(&config, &[], "test", jiff::Timestamp::now())
        .unwrap();

    let write = Auth::Bearer(app.write_token.clone());
    let r = app.request(
        Method::POST,
        "/api/v1/sources/campus/sync",
        &write,
        Some(Body::Json(json!({"kind": "full"}))),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(app.wait_for_sync("campus")["status"], "succeeded");
    let run = app.get("/api/v1/runs", &write).json()[0]["id"]
        .as_i64()
        .unwrap();
    let warning = format!(
        "users.csv line {line}: column `dateLastModified`: '<b>soon</b>' is not an ISO-8601 date-time; ignored"
    );
    let doc = app.get(&format!("/api/v1/runs/{run}"), &write).json();
    let warnings: Vec<&str> = doc["warnings"]
        .as_array()
        .unwrap_or_else(|| panic!("{doc:#}"))
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(warnings.contains(&warning.as_str()), "{doc:#}");

    let owner = app.login("olivia");
    let page = app.get(&format!("/runs/{run}"), &owner);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<h2>Warnings</h2>"), "{}", page.body);
    assert!(
        page.body
            .contains(&format!("<li>{}</li>", escaped(&warning))),
        "the warning, escaped:\n{}",
        page.body
    );
    assert!(!page.body.contains("<b>soon"), "markup rendered raw");
    let warnings_at = page.body.find("id=\"run-warnings\"").unwrap();
    assert!(
        warnings_at < page.body.find("id=\"items\"").unwrap(),
        "near the top, above the items"
    );

    // A held run shows its warnings with the hold.
    let held = app
        .store
        .start_run(&store::NewRun {
            source: "campus".into(),
            kind: rostersync_core::plan::SyncKind::Full,
            trigger: store::Trigger::Api,
            started_at: jiff::Timestamp::now(),
        })
        .unwrap();
    let plan = rostersync_core::plan::Plan {
        source: "campus".into(),
        kind: rostersync_core::plan::SyncKind::Full,
        complete: false,
        items: Vec::new(),
        counts: Default::default(),
        sis_records: Vec::new(),
        review: Vec::new(),
        roster: None,
        watermark: None,
        gone_cases: Vec::new(),
        listed_skips: None,
    };
    let hostile = "classes: incomplete: <script>alert(\"w\")</script> & 'more' — Ñandú".to_owned();
    app.store
        .hold_run(
            held,
            plan.clone(),
            &[],
            std::slice::from_ref(&hostile),
            jiff::Timestamp::now(),
        )
        .unwrap();
    let page = app.get(&format!("/runs/{held}"), &owner);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=\"held\""), "{}", page.body);
    assert!(
        page.body
            .contains(&format!("<li>{}</li>", escaped(&hostile))),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<script>alert"), "{}", page.body);
    assert_eq!(
        app.get(&format!("/api/v1/runs/{held}"), &write).json()["warnings"],
        json!([hostile])
    );
}
