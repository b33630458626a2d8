//! The client secret never leaves the server: not in any page, API answer, error or
//! audit entry, whether it was set by `config import`, the console form or the API.

use reqwest::Method;
use serde_json::json;
use server::routes::{protected_routes, public_routes};

use crate::harness::{App, Auth, Body, SIM_SECRET, form};
use crate::on_both;

const NEW_SECRET: &str = "Zq9-never-SHOWN-secret-7731";

/// Every GET route, with the ids this app has; plus the validation page.
fn every_body(app: &App, auths: &[Auth], user: i64, run: i64) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for r in protected_routes().into_iter().chain(public_routes()) {
        if r.method != Method::GET {
            continue;
        }
        let path = r
            .path
            .replace("{source}", "campus")
            .replace(
                "{id}",
                if r.path.starts_with("/runs") || r.path.starts_with("/api/v1/runs") {
                    "RUN"
                } else {
                    "USER"
                },
            )
            .replace("RUN", &run.to_string())
            .replace("USER", &user.to_string());
        for a in auths {
            let reply = app.get(&path, a);
            out.push((format!("GET {path}"), reply.body));
        }
    }
    for a in auths {
        for path in [
            "/settings?source=campus&validated=1",
            "/audit",
            "/runs",
            "/locations?source=campus",
        ] {
            out.push((format!("GET {path}"), app.get(path, a).body));
        }
    }
    out
}

fn assert_absent(bodies: &[(String, String)], secret: &str) {
    assert!(bodies.len() > 40, "{} bodies", bodies.len());
    for (what, body) in bodies {
        assert!(
            !body.contains(secret),
            "{what} shows the client secret:\n{body}"
        );
    }
}

fn the_client_secret_never_appears(app: App) {
    let owner = app.login("olivia");
    let write = Auth::Bearer(app.write_token.clone());
    let done = app.full_sync();
    let run = done["run_id"].as_i64().unwrap();
    let user = app.get("/api/v1/users?linked=true&limit=1", &write).json()["items"][0]["id"]
        .as_i64()
        .unwrap();
    let mut bodies = every_body(&app, &[owner.clone(), write.clone()], user, run);
    let v = app.request(
        Method::POST,
        "/api/v1/sources/campus/validate",
        &write,
        None,
    );
    assert_eq!(v.status, 200);
    bodies.push(("validate".into(), v.body));
    assert_absent(&bodies, SIM_SECRET);

    // Replaced through the console form…
    let s = app.store.load_config().unwrap();
    let src = s.source("campus").unwrap();
    let r = app.request(
        Method::POST,
        "/settings/campus/authentication",
        &owner,
        form(&[
            ("kind", "oneroster-api"),
            ("url", src.url.as_deref().unwrap()),
            ("client_id", src.client_id.as_deref().unwrap()),
            ("client_secret", NEW_SECRET),
            ("auth", "oauth2"),
            ("token_url", src.token_url.as_deref().unwrap()),
        ]),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let mut bodies = vec![("form redirect".to_owned(), r.location())];
    // … and through the API, with an answer that must not echo it either.
    let mut doc = app.get("/api/v1/settings", &write).json()["config"].clone();
    doc["source"][0]["client_secret"] = json!(format!("{NEW_SECRET}-2"));
    let r = app.request(
        Method::PUT,
        "/api/v1/settings",
        &write,
        Some(Body::Json(doc)),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("client secret replaced"), "{}", r.body);
    bodies.push(("PUT settings".into(), r.body));
    // The wrong secret now fails validation; the error must not quote it.
    let v = app.request(
        Method::POST,
        "/api/v1/sources/campus/validate",
        &write,
        None,
    );
    assert_eq!(v.status, 422, "{}", v.body);
    bodies.push(("validate".into(), v.body));
    bodies.extend(every_body(&app, &[owner, write], user, run));
    assert_absent(&bodies, NEW_SECRET);
    let settings = app
        .get("/api/v1/settings", &Auth::Bearer(app.read_token.clone()))
        .json();
    assert_eq!(settings["client_secrets"]["campus"], "set");
}

on_both!(secrets, crate::harness::with_sim; the_client_secret_never_appears);
