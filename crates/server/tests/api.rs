//! The JSON API end to end against a simulated district: a sync started (202), refused
//! while running (409), its run and items; users with filters and paging; the SIS card;
//! link, unlink and relink; locations; validation; settings; the audit log; metrics.

use reqwest::Method;
use serde_json::json;

use crate::harness::{App, Auth, Body, Options};
use crate::on_both;

pub fn slow_sim() -> Options {
    Options {
        sim_users: Some(300),
        // Slow enough that the second request arrives while the first run pulls.
        sim_faults: "latency=300ms",
        ..Options::default()
    }
}

fn sync_runs_items_and_users(app: App) {
    let write = Auth::Bearer(app.write_token.clone());
    let read = Auth::Bearer(app.read_token.clone());
    let r = app.request(
        Method::POST,
        "/api/v1/sources/campus/sync",
        &write,
        Some(Body::Json(json!({"kind": "full"}))),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.json()["source"], "campus");
    let started_run = r.json()["run_id"].as_i64().expect("the 202 names the run");
    let running = app
        .get(&format!("/api/v1/runs/{started_run}"), &read)
        .json();
    assert_eq!(
        running["status"], "running",
        "Sync History shows the run while it pulls"
    );
    let again = app.request(
        Method::POST,
        "/api/v1/sources/campus/sync",
        &write,
        Some(Body::Json(json!({}))),
    );
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(again.json()["error"]["code"], "already_running");
    assert!(again.body.contains("already running"), "{}", again.body);
    let done = app.wait_for_sync("campus");
    assert_eq!(done["status"], "succeeded", "{done}");
    let run_id = done["run_id"].as_i64().unwrap();
    assert_eq!(run_id, started_run);

    let runs = app.get("/api/v1/runs", &read).json();
    assert_eq!(runs[0]["id"], run_id);
    assert_eq!(runs[0]["trigger"], "api");
    let run = app.get(&format!("/api/v1/runs/{run_id}"), &read).json();
    let created = run["counts"]["created"].as_u64().unwrap();
    assert!(created > 100, "{run}");
    let items = app
        .get(
            &format!("/api/v1/runs/{run_id}/items?outcome=created&limit=5"),
            &read,
        )
        .json();
    assert_eq!(items.as_array().unwrap().len(), 5);
    assert!(
        items
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["outcome"] == "created" && i["reason_code"] == "new_person")
    );
    assert_eq!(
        app.get(
            &format!("/api/v1/runs/{run_id}/items?outcome=nonsense"),
            &read
        )
        .status,
        400
    );
    assert_eq!(app.get("/api/v1/runs/999999", &read).status, 404);

    // Paging by id visits everyone once.
    let mut seen = Vec::new();
    let mut after: Option<i64> = None;
    loop {
        let path = match after {
            Some(a) => format!("/api/v1/users?limit=50&after={a}"),
            None => "/api/v1/users?limit=50".to_owned(),
        };
        let page = app.get(&path, &read).json();
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["id"].as_i64().unwrap()),
        );
        match page["next_after"].as_i64() {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.dedup();
    assert_eq!(sorted, seen, "in id order, no repeats");
    let overview = app.get("/api/v1/overview", &read).json();
    assert_eq!(overview["users"].as_u64().unwrap() as usize, seen.len());
    let students = app
        .get("/api/v1/users?type=student&linked=true&limit=1000", &read)
        .json();
    assert!(
        students["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["type"] == "student" && !u["sis"].is_null())
    );
    assert_eq!(
        app.get("/api/v1/users?type=teacher", &read).status,
        400,
        "teacher is no directory type"
    );
    let kg = app.get("/api/v1/users?grade=KG&limit=1000", &read).json();
    assert!(
        kg["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["grade"] == "KG")
    );

    // One user: detail, SIS card, sync, unlink, link, relink.
    let student = students["items"][0].clone();
    let id = student["id"].as_i64().unwrap();
    let sid = student["sis"]["sourced_id"].as_str().unwrap().to_owned();
    let detail = app.get(&format!("/api/v1/users/{id}"), &read).json();
    assert_eq!(detail["sis_cards"][0]["sourced_id"], sid);
    assert!(!detail["revisions"].as_array().unwrap().is_empty());
    let card = app.get(&format!("/api/v1/users/{id}/sis"), &read).json();
    assert_eq!(card[0]["source"], "campus");
    let synced = app.request(
        Method::POST,
        &format!("/api/v1/users/{id}/sync"),
        &write,
        None,
    );
    assert_eq!(synced.status, 200, "{}", synced.body);
    assert_eq!(synced.json()["kind"], "user");
    let r = app.request(
        Method::POST,
        &format!("/api/v1/users/{id}/unlink"),
        &write,
        Some(Body::Json(json!({}))),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["removed"][0]["sourced_id"], sid);
    assert!(app.get(&format!("/api/v1/users/{id}"), &read).json()["sis"].is_null());
    let r = app.request(
        Method::POST,
        &format!("/api/v1/users/{id}/link"),
        &write,
        Some(Body::Json(json!({"sourced_id": sid}))),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let other = students["items"][1]["sis"]["sourced_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app.request(
        Method::POST,
        &format!("/api/v1/users/{id}/relink"),
        &write,
        Some(Body::Json(json!({"sourced_id": other}))),
    );
    assert_eq!(
        r.status, 409,
        "that person is linked to another account: {}",
        r.body
    );
    assert_eq!(app.get("/api/v1/users/99999999", &read).status, 404);

    // The audit log names who did what.
    let audit = app.get("/api/v1/audit", &read).json();
    let actions: Vec<(String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["actor"].as_str().unwrap().to_owned(),
                a["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for want in ["sync.start", "user.sync"] {
        assert!(
            actions
                .iter()
                .any(|(who, a)| a == want && who.starts_with("token:")),
            "{want}: {actions:?}"
        );
    }
    // In words: "run 7 (succeeded)", never "run Some(7)".
    let user_sync = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "user.sync")
        .unwrap();
    let detail = user_sync["detail"].as_str().unwrap();
    assert!(
        detail.contains(": run ") && !detail.contains("Some("),
        "{detail}"
    );
    // Metrics count the run.
    let m = app.get("/metrics", &read).body;
    assert!(
        m.contains("rostersync_runs_total{source=\"campus\",kind=\"full\",status=\"succeeded\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("rostersync_directory_users{state=\"all\"}"),
        "{m}"
    );
    // And the requests the pulls and the user sync made to the SIS (a token, then at
    // least one page of each of the nine collections a full pull reads).
    let value = |name: &str| -> f64 {
        m.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}{{source=\"campus\"}} ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing: {m}"))
    };
    assert!(
        value("rostersync_source_request_seconds_count") >= 10.0,
        "{m}"
    );
    assert!(value("rostersync_source_request_seconds_sum") > 0.0, "{m}");
    assert_eq!(
        value("rostersync_source_request_failures_total"),
        0.0,
        "{m}"
    );
}

fn locations_validate_and_settings(app: App) {
    let write = Auth::Bearer(app.write_token.clone());
    let read = Auth::Bearer(app.read_token.clone());
    let v = app.request(
        Method::POST,
        "/api/v1/sources/campus/validate",
        &write,
        None,
    );
    assert_eq!(v.status, 200, "{}", v.body);
    let v = v.json();
    assert_eq!(v["kind"], "rest");
    assert_eq!(v["collections"]["users"]["complete"], true);
    app.full_sync();
    let locs = app.get("/api/v1/sources/campus/locations", &read).json();
    let school = locs["orgs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["is_school"] == true)
        .unwrap()
        .clone();
    assert!(school["people"].as_u64().unwrap() > 0);
    let org = school["sourced_id"].as_str().unwrap();
    let r = app.request(
        Method::PUT,
        "/api/v1/sources/campus/locations",
        &write,
        Some(Body::Json(
            json!({"default": "District Office", "map": {org: "Cedar Campus"}}),
        )),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let locs = app.get("/api/v1/sources/campus/locations", &read).json();
    assert_eq!(locs["map"][org], "Cedar Campus");
    // Settings: never the secret, whether it is set.
    let s = app.get("/api/v1/settings", &read).json();
    assert_eq!(s["client_secrets"]["campus"], "set");
    assert!(s["config"]["source"][0].get("client_secret").is_none());
    // An invalid change says what is wrong.
    let mut doc = s["config"].clone();
    doc["source"][0]["concurrency"] = json!(9);
    let r = app.request(
        Method::PUT,
        "/api/v1/settings",
        &write,
        Some(Body::Json(doc)),
    );
    assert_eq!(r.status, 422);
    assert!(r.body.contains("concurrency must be 1 to 5"), "{}", r.body);
    // Unknown source.
    assert_eq!(
        app.request(Method::POST, "/api/v1/sources/nope/sync", &write, None)
            .status,
        404
    );
}

fn health_and_readiness(app: App) {
    assert_eq!(app.get("/healthz", &Auth::None).body, "ok\n");
    assert_eq!(app.get("/readyz", &Auth::None).body, "ready\n");
}

on_both!(slow, crate::api::slow_sim; sync_runs_items_and_users);
on_both!(small, crate::harness::with_sim; locations_validate_and_settings, health_and_readiness);
