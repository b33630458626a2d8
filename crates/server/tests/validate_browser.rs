//! *Validate* says what the SIS sent that the read accepted all the same — values in
//! other spellings, blank required cells, references to records it does not hold — per
//! collection, with examples: in the API's answer, and on the settings page, where a real
//! browser runs it as an admin would.

use std::path::PathBuf;

use reqwest::Method;

use crate::browser::signed_in;
use crate::harness::{App, Auth, Backend, Options};

/// The users line of the package below, as *Validate* shows it.
const USERS_LINE: &str = "users: 6 values read leniently (enabledUser `TRUE` → true …), 2 blank required cells (enabledUser 1, givenName 1), 1 reference to missing orgs (orgSourcedIds `org-zz`), 1 reference to missing users (agentSourcedIds `u-gone`)";

/// A server whose source `campus` is the package with one of each finding.
fn app_with_a_loose_package() -> App {
    let package = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../oneroster/tests/data/packages/v11-bulk-loose");
    let app = App::start(
        Backend::Sqlite,
        Options {
            configure_source: false,
            ..Options::default()
        },
    )
    .unwrap();
    app.configure(&format!(
        "[[source]]\nname = \"campus\"\nkind = \"oneroster-csv\"\npath = \"{}\"\n",
        package.display()
    ));
    app
}

#[test]
fn validate_answers_the_counts_and_the_settings_page_keeps_them() {
    let app = app_with_a_loose_package();
    let write = Auth::Bearer(app.write_token.clone());
    let r = app.request(
        Method::POST,
        "/api/v1/sources/campus/validate",
        &write,
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    let users = &v["collections"]["users"];
    assert_eq!(
        users["complete"], true,
        "findings never spoil a read: {v:#}"
    );
    assert_eq!(users["lenient"]["count"], 6, "{users:#}");
    assert_eq!(users["lenient"]["fields"]["enabledUser"], 3);
    assert_eq!(users["blank_required"]["count"], 2);
    assert_eq!(users["dangling"]["orgs"]["count"], 1);
    assert_eq!(
        users["dangling"]["users"]["examples"][0]["value"], "u-gone",
        "{users:#}"
    );
    let enrollments = &v["collections"]["enrollments"];
    assert_eq!(enrollments["dangling"]["users"]["count"], 1);
    assert_eq!(enrollments["dangling"]["classes"]["count"], 1);

    // A viewer sees the kept result, lines and examples, without the SIS being read.
    let page = app.get("/settings?source=campus", &app.login("vera"));
    assert_eq!(page.status, 200);
    assert!(page.body.contains(USERS_LINE), "{}", page.body);
    for example in [
        "u-t1: enabledUser `TRUE` read as true",
        "u-s2: enabledUser blank, read as true",
        "e-3: userSourcedId `u-missing` is not among the users",
    ] {
        assert!(page.body.contains(example), "{example}: {}", page.body);
    }
}

#[test]
fn an_admin_validates_in_a_real_browser_and_sees_the_counts() {
    let app = app_with_a_loose_package();
    let Some(b) = signed_in(&app, "validate", "adam", "/settings?source=campus") else {
        return;
    };
    b.click("#validate");
    b.wait_for("read leniently", 30);
    let html = b.source();
    assert!(html.contains("every collection read completely"), "{html}");
    assert!(html.contains(USERS_LINE), "{html}");
    assert!(
        html.contains(
            "enrollments: 3 values read leniently (primary `False` → false …), 1 blank required cell (userSourcedId 1), 1 reference to missing classes (classSourcedId `cls-nope`), 1 reference to missing users (userSourcedId `u-missing`)"
        ),
        "{html}"
    );
    // A line opens on its examples.
    b.click("#validation-findings li:last-child summary");
    b.wait_for("u-s2: orgSourcedIds `org-zz` is not among the orgs", 5);
    b.shot("validate");
}
