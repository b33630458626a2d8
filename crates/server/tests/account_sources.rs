//! Account sources (Google Workspace, Entra ID) in the console: the Settings page and the
//! Overview show their settings but never a key or secret, say they are edited with
//! `rostersync config import`, and neither the authentication form, the add-a-source
//! form nor the API can wipe their settings or read a key file from the server.

use reqwest::Method;
use serde_json::json;

use crate::harness::{App, Auth, Body, form};
use crate::on_both;

const ENTRA_SECRET: &str = "3ntra-s3cret-never-shown";

/// A Google source (its stand-in key stored) and an Entra source (its secret stored).
fn configure(app: &App) -> String {
    let key = sim::idp::google::standin_key_file("http://127.0.0.1:9/token");
    let config = rostersync_core::settings::Config::from_toml(
        "[[source]]\nname = \"google\"\nkind = \"google-workspace\"\nsubject = \"admin@district.example\"\ncustomer = \"C03standin\"\nquery = \"orgUnitPath='/Students'\"\n\n[[source]]\nname = \"entra\"\nkind = \"entra-id\"\ntenant = \"district.onmicrosoft.com\"\nclient_id = \"app-1\"\ndeactivate = \"always\"\n",
    )
    .unwrap();
    app.store
        .save_config(
            &config,
            &[
                ("google".into(), Some(app.keyring.encrypt(key.as_bytes()))),
                (
                    "entra".into(),
                    Some(app.keyring.encrypt(ENTRA_SECRET.as_bytes())),
                ),
            ],
            "test",
            jiff::Timestamp::now(),
        )
        .unwrap();
    key
}

fn assert_no_secret(what: &str, body: &str) {
    for never in [
        "PRIVATE KEY",
        "private_key",
        "client_email",
        "service_account",
        ENTRA_SECRET,
    ] {
        assert!(!body.contains(never), "{what} shows {never}:\n{body}");
    }
}

fn the_console_shows_account_sources_without_secrets(app: App) {
    configure(&app);
    for who in ["olivia", "vera"] {
        let auth = app.login(who);
        let page = app.get("/settings?source=google", &auth);
        assert_eq!(page.status, 200, "{}", page.body);
        for shown in [
            "Google Workspace (accounts)",
            "admin@district.example",
            "C03standin",
            "orgUnitPath=&#39;/Students&#39;",
            "stored (write-only)",
            "rostersync config import FILE.toml",
        ] {
            assert!(page.body.contains(shown), "{who}: {shown}:\n{}", page.body);
        }
        // Not the OneRoster form: nothing there to post over its settings.
        assert!(!page.body.contains("id=\"form-authentication\""));
        assert_no_secret("the Google settings page", &page.body);
        let page = app.get("/settings?source=entra", &auth);
        for shown in [
            "Microsoft Entra ID (accounts)",
            "district.onmicrosoft.com",
            "app-1",
            "every account whose identity is suspended or gone",
        ] {
            assert!(page.body.contains(shown), "{who}: {shown}:\n{}", page.body);
        }
        assert_no_secret("the Entra settings page", &page.body);
        let overview = app.get("/", &auth);
        assert_eq!(overview.status, 200);
        for shown in [
            "Google Workspace (accounts)",
            "Microsoft Entra ID (accounts)",
            "admin@district.example",
            "district.onmicrosoft.com",
            "no expiry date is set (credential_expires, with rostersync config import)",
        ] {
            assert!(overview.body.contains(shown), "{shown}:\n{}", overview.body);
        }
        assert_no_secret("the Overview", &overview.body);
    }
}

fn account_settings_are_not_wiped_from_the_console(app: App) {
    configure(&app);
    let before = app.store.load_config().unwrap();
    let owner = app.login("olivia");
    let r = app.request(
        Method::POST,
        "/settings/google/authentication",
        &owner,
        form(&[
            ("kind", "oneroster-api"),
            ("url", "https://sis.example/ims/oneroster/v1p1"),
            ("client_secret", "typed"),
        ]),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let page = app.follow(&r, &owner);
    assert!(
        page.body.contains(
            "source google is a google-workspace source: its settings are changed in its settings file with"
        ),
        "{}",
        page.body
    );
    assert_eq!(app.store.load_config().unwrap(), before);
    assert!(app.store.source_secret("google").unwrap().is_some());
    // Its other sections save as a SIS's do.
    let r = app.request(
        Method::POST,
        "/settings/entra/schedule",
        &owner,
        form(&[("full", "daily 03:00"), ("delta", "hourly :10")]),
    );
    assert_eq!(r.status, 303);
    let after = app.store.load_config().unwrap();
    let entra = after.source("entra").unwrap();
    assert_eq!(entra.schedule.delta.to_string(), "hourly :10");
    assert_eq!(entra.tenant, before.source("entra").unwrap().tenant);
    assert!(app.store.source_secret("entra").unwrap().is_some());

    // Not added from the console.
    let r = app.request(
        Method::POST,
        "/settings/sources",
        &owner,
        form(&[
            ("name", "google2"),
            ("kind", "google-workspace"),
            ("location", "https://admin.googleapis.com"),
        ]),
    );
    let page = app.follow(&r, &owner);
    assert!(
        page.body
            .contains("a google-workspace source is added with `rostersync config import"),
        "{}",
        page.body
    );
    assert!(app.store.load_config().unwrap().source("google2").is_none());
}

fn the_api_keeps_account_sources_and_reads_no_key_file(app: App) {
    configure(&app);
    let write = Auth::Bearer(app.write_token.clone());
    let settings = app.get("/api/v1/settings", &write);
    assert_no_secret("GET /api/v1/settings", &settings.body);
    let doc = settings.json()["config"].clone();
    assert_eq!(doc["source"][0]["subject"], "admin@district.example");
    // As read, it saves as it is.
    let r = app.request(
        Method::PUT,
        "/api/v1/settings",
        &write,
        Some(Body::Json(doc.clone())),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["changed"], json!([]));
    // A key file named from the API is never read.
    let mut with_key = doc;
    with_key["source"][0]["key_file"] = json!("/etc/passwd");
    let r = app.request(
        Method::PUT,
        "/api/v1/settings",
        &write,
        Some(Body::Json(with_key)),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.body
            .contains("source google: key_file names a file on the server"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("root:"), "{}", r.body);
}

on_both!(
    account_sources,
    crate::harness::plain;
    the_console_shows_account_sources_without_secrets,
    account_settings_are_not_wiped_from_the_console,
    the_api_keeps_account_sources_and_reads_no_key_file
);
