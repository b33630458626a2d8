//! Authorisation over every route the router has: nothing protected answers without a
//! session or token, viewers and read tokens write nothing, admins cannot change the
//! protected settings, and a session's unsafe request needs its CSRF token.

use reqwest::Method;
use serde_json::json;
use server::routes::{RouteSpec, protected_routes};

use crate::harness::{App, Auth, Body, form};
use crate::on_both;

/// A concrete path for a route pattern.
fn concrete(r: &RouteSpec) -> String {
    r.path
        .replace("{id}", "1")
        .replace("{source}", "campus")
        .replace("{section}", "features")
        .replace("{kind}", "unlinked")
}

fn is_unsafe(r: &RouteSpec) -> bool {
    !matches!(r.method, Method::GET | Method::HEAD)
}

fn every_route_is_denied_without_credentials(app: App) {
    let routes = protected_routes();
    assert!(routes.len() > 30, "the table lists the routes");
    for auth in [
        Auth::None,
        Auth::Bearer("rs_not-a-token".into()),
        Auth::SessionNoCsrf("forged-session-id".into()),
    ] {
        for r in &routes {
            let path = concrete(r);
            let reply = app.request(r.method.clone(), &path, &auth, None);
            if path.starts_with("/api/") || path == "/metrics" {
                assert_eq!(
                    reply.status, 401,
                    "{} {path} with {auth:?}: {}",
                    r.method, reply.body
                );
                assert!(reply.body.contains("\"unauthorized\""), "{}", reply.body);
            } else {
                assert_eq!(reply.status, 303, "{} {path} with {auth:?}", r.method);
                assert!(
                    reply.location().starts_with("/login"),
                    "{path}: {}",
                    reply.location()
                );
            }
        }
    }
    // Public routes stay reachable.
    for path in [
        "/login",
        "/healthz",
        "/readyz",
        "/assets/htmx.min.js",
        "/assets/console.css",
        "/api/v1/openapi.json",
    ] {
        assert_eq!(app.get(path, &Auth::None).status, 200, "{path}");
    }
}

fn viewers_and_read_tokens_cannot_write(app: App) {
    let viewer = app.login("vera");
    let read = Auth::Bearer(app.read_token.clone());
    for r in protected_routes().iter().filter(|r| is_unsafe(r)) {
        if r.path == "/logout" {
            continue;
        }
        let path = concrete(r);
        for auth in [&viewer, &read] {
            let reply = app.request(r.method.clone(), &path, auth, Some(Body::Json(json!({}))));
            assert_eq!(
                reply.status, 403,
                "{} {path} as {auth:?}: {}",
                r.method, reply.body
            );
        }
    }
    // They read.
    assert_eq!(app.get("/api/v1/users", &read).status, 200);
    assert_eq!(app.get("/settings", &viewer).status, 200);
}

fn admins_cannot_change_protected_settings(app: App) {
    let admin = app.login("adam");
    let owner = app.login("olivia");
    let write = Auth::Bearer(app.write_token.clone());
    // The console: the user mapping section is the owner's.
    let r = app.request(
        Method::POST,
        "/settings/campus/mapping",
        &admin,
        form(&[("append_domain", "evil.example")]),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    // The import form: an admin's change of a protected box is ignored, others apply.
    let r = app.request(
        Method::POST,
        "/settings/campus/import",
        &admin,
        form(&[("skip_calendars", "on")]),
    );
    assert_eq!(r.status, 303);
    let config = app.store.load_config().unwrap();
    let s = config.source("campus").unwrap();
    assert!(
        s.import.skip_calendars,
        "an admin may change skip_calendars"
    );
    assert!(
        s.import.students && s.import.deactivate_users,
        "protected options kept"
    );
    // The API: a write token is an admin.
    let mut doc = app.get("/api/v1/settings", &write).json()["config"].clone();
    doc["source"][0]["import"]["include_inactive"] = json!(true);
    let r = app.request(
        Method::PUT,
        "/api/v1/settings",
        &write,
        Some(Body::Json(doc.clone())),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("include_inactive"), "{}", r.body);
    doc["source"][0]["user_mapping"]["append_domain"] = json!("district.k12.us");
    let r = app.request(
        Method::PUT,
        "/api/v1/settings",
        &admin,
        Some(Body::Json(doc.clone())),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    // The owner may.
    let r = app.request(
        Method::PUT,
        "/api/v1/settings",
        &owner,
        Some(Body::Json(doc)),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let config = app.store.load_config().unwrap();
    assert!(config.source("campus").unwrap().import.include_inactive);
    let audit = app.store.audit_log(0).unwrap();
    assert!(
        audit.iter().any(|a| a.actor == "console:olivia"
            && a.action == "settings.change"
            && a.detail.contains("include_inactive")),
        "{audit:?}"
    );
    // Removing a source is the owner's too.
    let r = app.request(
        Method::POST,
        "/settings/campus/delete",
        &admin,
        form(&[("confirm", "campus")]),
    );
    assert_eq!(r.status, 403);
}

fn unsafe_requests_need_the_csrf_token(app: App) {
    let owner = app.login("olivia");
    let Auth::Session { cookie, csrf } = owner.clone() else {
        unreachable!()
    };
    let before = app.store.load_config().unwrap();
    // No token at all.
    let r = app.request(
        Method::POST,
        "/settings/campus/features",
        &Auth::SessionNoCsrf(cookie.clone()),
        form(&[("guardian_logins", "on")]),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    // A wrong token in the form.
    let r = app.request(
        Method::POST,
        "/settings/campus/features",
        &Auth::SessionNoCsrf(cookie.clone()),
        form(&[("guardian_logins", "on"), ("csrf", "wrong")]),
    );
    assert_eq!(r.status, 403);
    // JSON with the session but no header.
    let r = app.request(
        Method::POST,
        "/api/v1/sources/campus/sync",
        &Auth::SessionNoCsrf(cookie.clone()),
        Some(Body::Json(json!({"kind": "full"}))),
    );
    assert_eq!(r.status, 403);
    assert_eq!(app.store.load_config().unwrap(), before, "nothing changed");
    assert!(app.store.list_runs(0).unwrap().is_empty(), "no run started");
    // The right token in the form field works (no JavaScript needed).
    let r = app.request(
        Method::POST,
        "/settings/campus/features",
        &Auth::SessionNoCsrf(cookie),
        form(&[("guardian_logins", "on"), ("csrf", &csrf)]),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(
        app.store
            .load_config()
            .unwrap()
            .source("campus")
            .unwrap()
            .features
            .guardian_logins
    );
}

fn sessions_rotate_end_and_are_strict_cookies(app: App) {
    let a = app.login("olivia");
    let b = app.login("olivia");
    let (Auth::Session { cookie: ca, .. }, Auth::Session { cookie: cb, .. }) = (&a, &b) else {
        unreachable!()
    };
    assert_ne!(ca, cb, "every sign-in gets a new session id");
    // The cookie's attributes.
    let form_page = app.get("/login", &Auth::None);
    let set = form_page
        .headers
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    // Security headers.
    let page = app.get("/", &a);
    let h = |n: &str| {
        page.headers
            .get(n)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    assert!(h("content-security-policy").contains("default-src 'self'"));
    assert!(!h("content-security-policy").contains("unsafe-inline"));
    assert_eq!(h("x-frame-options"), "DENY");
    assert_eq!(h("x-content-type-options"), "nosniff");
    assert!(!h("referrer-policy").is_empty());
    // Idle expiry: an hour and a bit later the session is gone.
    app.clock
        .set(app.clock_now() + jiff::SignedDuration::from_mins(61));
    let r = app.get("/", &a);
    assert_eq!(r.status, 303, "an idle session ends");
    // Sign-out ends the other one.
    app.clock.set(jiff::Timestamp::now());
    let b2 = app.login("olivia");
    assert_eq!(
        app.request(Method::POST, "/logout", &b2, form(&[])).status,
        303
    );
    assert_eq!(app.get("/", &b2).status, 303);
}

/// An address the console cannot read gets the styled error page in words, with a way
/// back; the API keeps its own answers.
fn a_bad_address_gets_the_error_page(app: App) {
    let admin = app.login("adam");
    for path in ["/users/abc", "/runs/seven"] {
        let r = app.get(path, &admin);
        assert_eq!(r.status, 400, "{path}");
        assert!(r.body.contains("<h1>"), "{path}: {}", r.body);
        assert!(
            r.body.contains("Back to the overview"),
            "{path}: {}",
            r.body
        );
        assert!(
            r.body.contains("accounts and runs are numbered"),
            "{}",
            r.body
        );
        assert!(!r.body.contains("Cannot parse"), "{}", r.body);
    }
    // The icon is there for every page (and for browsers that ask /favicon.ico).
    for icon in ["/favicon.ico", "/assets/favicon.svg"] {
        let r = app.get(icon, &Auth::None);
        assert_eq!(r.status, 200, "{icon}");
        assert_eq!(r.headers["content-type"], "image/svg+xml");
        assert!(r.body.starts_with("<svg"), "{icon}");
    }
    assert!(app.get("/", &admin).body.contains("/assets/favicon.svg"));
    let api = app.get("/api/v1/users/abc", &admin);
    assert_eq!(api.status, 400);
    assert!(!api.body.contains("<h1>"), "{}", api.body);
}

on_both!(no_source, crate::harness::plain;
    every_route_is_denied_without_credentials,
    viewers_and_read_tokens_cannot_write,
    a_bad_address_gets_the_error_page,
);

on_both!(with_source, crate::harness::with_sim;
    admins_cannot_change_protected_settings,
    unsafe_requests_need_the_csrf_token,
    sessions_rotate_end_and_are_strict_cookies,
);
