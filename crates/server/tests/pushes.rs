//! SCIM targets in `rostersync serve`, on SQLite and PostgreSQL, against the simulated
//! help desk (`sim::helpdesk`) and the project's small CSV district as the source
//! `campus`: a push through the API creates the users and `GET /api/v1/targets` shows
//! what the target holds and its last push; a sync of a followed source is followed by a
//! push; the Overview shows the target (and *Push now* pushes), the user page where the
//! account is held; a held push is approved through the approve endpoint and sends; an
//! unknown target is 404 and a busy one 409. The target's token is in no answer.

use std::time::Duration;

use reqwest::Method;
use rostersync_core::settings::Config;
use serde_json::{Value, json};
use sim::helpdesk::Helpdesk;

use crate::harness::{App, Auth, Body, form, poll};
use crate::on_both;

const TOKEN: &str = "helpdesk-bearer-token-s3cr3t";

/// Nothing the server answered carries the target's token.
fn no_token(body: &str) {
    assert!(!body.contains(TOKEN), "the token leaked: {body}");
}

fn start_desk(app: &App) -> Helpdesk {
    app.runtime.block_on(Helpdesk::start(TOKEN)).unwrap()
}

/// The sample district as the source `campus` and the help desk as the target
/// `helpdesk` (`extra`: more of its settings), its token sealed with the server's key.
fn configure(app: &App, desk: &Helpdesk, extra: &str) {
    let path = app.dir.join("district");
    if !path.exists() {
        test_kit::copy_sample_district(&app.dir, "district", "");
    }
    let toml = format!(
        "[network]\nallow_loopback = true\n\n[[source]]\nname = \"campus\"\nkind = \"oneroster-csv\"\npath = \"{}\"\n\n\
         [[target]]\nname = \"helpdesk\"\nkind = \"scim\"\nurl = \"{}\"\nretry_attempts = 2\n{extra}",
        path.display(),
        desk.url()
    );
    let config = Config::from_toml(&toml).unwrap();
    app.store
        .save_config(
            &config,
            &[(
                "helpdesk".into(),
                Some(app.keyring.encrypt(TOKEN.as_bytes())),
            )],
            "test",
            app.clock_now(),
        )
        .unwrap();
}

fn write(app: &App) -> Auth {
    Auth::Bearer(app.write_token.clone())
}

fn read(app: &App) -> Auth {
    Auth::Bearer(app.read_token.clone())
}

/// `POST /api/v1/targets/{target}/push`.
fn push(app: &App, target: &str, body: Option<Value>) -> crate::harness::Reply {
    let r = app.request(
        Method::POST,
        &format!("/api/v1/targets/{target}/push"),
        &write(app),
        body.map(Body::Json),
    );
    no_token(&r.body);
    r
}

/// `GET /api/v1/targets`.
fn targets(app: &App) -> Vec<Value> {
    let r = app.get("/api/v1/targets", &read(app));
    assert_eq!(r.status, 200, "{}", r.body);
    no_token(&r.body);
    r.json().as_array().unwrap().clone()
}

/// Waits until the target's last push exists and is over.
fn wait_for_push(app: &App) -> Value {
    poll(30, "a push of helpdesk to finish", || {
        let t = targets(app).remove(0);
        if t["last_push"].is_object() && t["last_push"]["status"] != "running" {
            Ok(t)
        } else {
            Err(t.to_string())
        }
    })
}

fn get_page(app: &App, path: &str, auth: &Auth) -> String {
    let r = app.get(path, auth);
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    no_token(&r.body);
    r.body
}

/// The documented properties of a schema of docs/openapi.json.
fn documented(schema: &str) -> Vec<String> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/openapi.json"
    ))
    .unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let mut keys: Vec<String> = doc["components"]["schemas"][schema]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

fn an_api_push_creates_the_users_and_the_targets_list_shows_them(app: App) {
    let desk = start_desk(&app);
    configure(&app, &desk, "");
    app.full_sync();

    let before = targets(&app);
    assert_eq!(before.len(), 1);
    let t = &before[0];
    assert_eq!(keys(t), documented("Target"), "{t}");
    assert_eq!(t["name"], "helpdesk");
    assert_eq!(t["kind"], "scim");
    assert_eq!(t["url"], desk.url().as_str());
    assert_eq!(t["token"], "stored");
    assert_eq!(t["counts"], json!({"held": 0, "active": 0, "failing": 0}));
    assert!(t["last_push"].is_null(), "{t}");
    assert_eq!(t["types"], json!(["student", "faculty", "staff", "other"]));

    // A read token pushes nothing.
    let refused = app.request(
        Method::POST,
        "/api/v1/targets/helpdesk/push",
        &read(&app),
        None,
    );
    assert_eq!(refused.status, 403, "{}", refused.body);

    let r = push(&app, "helpdesk", None);
    assert_eq!(r.status, 200, "{}", r.body);
    let o = r.json();
    let mut want = documented("PushOutcome");
    want.retain(|k| k != "requests");
    assert_eq!(keys(&o), want, "{o}");
    assert_eq!(o["status"], "succeeded", "{o}");
    assert_eq!(o["kind"], "push");
    assert_eq!(o["target"], "helpdesk");
    let created = o["counts"]["created"].as_u64().unwrap();
    let users = desk.users();
    assert!(created >= 8, "{o}");
    assert_eq!(users.len() as u64, created);
    let run = o["run_id"].as_i64().unwrap();

    let after = targets(&app).remove(0);
    assert_eq!(
        after["counts"],
        json!({"held": created, "active": created, "failing": 0})
    );
    let last = &after["last_push"];
    assert_eq!(last["id"], run, "{after}");
    assert_eq!(last["kind"], "push");
    assert_eq!(last["source"], "helpdesk");
    assert_eq!(last["status"], "succeeded");
    assert_eq!(last["trigger"], "api");
    assert_eq!(last["counts"]["created"], created);
    assert_eq!(after["held_runs"], json!([]));

    // The push is audited with who asked.
    let audit = app.get("/api/v1/audit", &read(&app)).json();
    let line = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "push.run")
        .unwrap_or_else(|| panic!("no push.run in {audit}"));
    assert!(
        line["actor"].as_str().unwrap().starts_with("token:#"),
        "{line}"
    );
    assert!(
        line["detail"]
            .as_str()
            .unwrap()
            .starts_with(&format!("helpdesk: run {run} (succeeded")),
        "{line}"
    );

    // The run's page: a push of the target, its items the accounts, linked to them.
    let adam = app.login("adam");
    let page = get_page(&app, &format!("/runs/{run}"), &adam);
    assert!(page.contains("<th>Target</th>"), "{page}");
    assert!(!page.contains("SIS sourcedId"), "{page}");
    assert!(!page.contains("id=\"undo-run\""), "{page}");
    let one = users[0]["externalId"].as_str().unwrap();
    assert!(page.contains(&format!("href=\"/users/{one}\"")), "{page}");
    let history = get_page(&app, "/runs", &adam);
    assert!(
        history.contains(&format!(
            "<td><a href=\"/runs/{run}\">{run}</a></td><td>helpdesk</td><td>push</td>"
        )),
        "{history}"
    );

    // Nothing changed: a second push sends nothing; a dry run would send nothing.
    desk.clear_requests();
    let again = push(&app, "helpdesk", Some(json!({"dry_run": false}))).json();
    assert_eq!(again["counts"]["unchanged"], created, "{again}");
    assert_eq!(again["http_requests"], 0);
    let dry = push(&app, "helpdesk", Some(json!({"dry_run": true}))).json();
    assert_eq!(dry["dry_run"], true);
    assert!(dry["run_id"].is_null(), "{dry}");
    assert!(desk.requests().is_empty(), "{:?}", desk.requests());
}

fn a_dry_run_lists_the_writes_and_sends_none(app: App) {
    let desk = start_desk(&app);
    configure(&app, &desk, "");
    app.full_sync();
    let r = push(&app, "helpdesk", Some(json!({"dry_run": true})));
    assert_eq!(r.status, 200, "{}", r.body);
    let dry = r.json();
    assert_eq!(keys(&dry), documented("PushOutcome"), "{dry}");
    let requests = dry["requests"].as_array().unwrap();
    assert!(requests.len() >= 8, "{dry}");
    assert!(
        requests
            .iter()
            .all(|q| q["method"] == "POST" && q["path"] == "/Users")
    );
    assert!(desk.users().is_empty());
    assert!(targets(&app)[0]["last_push"].is_null());
}

fn a_sync_of_a_followed_source_is_followed_by_a_push(app: App) {
    let desk = start_desk(&app);
    configure(&app, &desk, "follows = [\"campus\"]\n");
    app.full_sync();
    let t = wait_for_push(&app);
    let last = &t["last_push"];
    assert_eq!(last["status"], "succeeded", "{t}");
    assert_eq!(last["trigger"], "api", "the sync's trigger: {t}");
    let created = last["counts"]["created"].as_u64().unwrap();
    assert!(created >= 8, "{t}");
    assert_eq!(desk.users().len() as u64, created);
    assert_eq!(t["follows"], json!(["campus"]));
    // Counted in the metrics as a run of kind push of the target: once the sync's
    // thread is back from its pushes, a moment after the run's record says it ended.
    let counted = "rostersync_runs_total{source=\"helpdesk\",kind=\"push\",status=\"succeeded\"} 1";
    let metrics = poll(30, "the push counted in /metrics", || {
        let metrics = app.get("/metrics", &read(&app)).body;
        if metrics.contains(counted) {
            Ok(metrics)
        } else {
            Err(metrics)
        }
    });
    assert!(metrics.contains(counted), "{metrics}");
    assert!(
        metrics.contains(&format!(
            "rostersync_records_total{{source=\"helpdesk\",outcome=\"created\"}} {created}"
        )),
        "{metrics}"
    );
    // The next sync changes nothing: its push sends nothing.
    desk.clear_requests();
    let first = last["id"].as_i64().unwrap();
    app.full_sync();
    let mut next = wait_for_push(&app);
    for _ in 0..300 {
        if next["last_push"]["id"] != first {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        next = wait_for_push(&app);
    }
    assert_ne!(
        next["last_push"]["id"], first,
        "a second push followed: {next}"
    );
    assert_eq!(next["last_push"]["counts"]["unchanged"], created, "{next}");
    assert!(desk.requests().is_empty(), "{:?}", desk.requests());
    // Sync History shows one name's runs on demand: the target's pushes only.
    let all = get_page(&app, "/runs", &read(&app));
    assert!(all.contains("href=\"/runs?source=helpdesk\""), "{all}");
    let pushes = get_page(&app, "/runs?source=helpdesk", &read(&app));
    assert!(pushes.contains("Sync History: helpdesk"), "{pushes}");
    assert_eq!(pushes.matches("<td>push</td>").count(), 2, "{pushes}");
    assert!(!pushes.contains("<td>full</td>"), "{pushes}");
    let syncs = get_page(&app, "/runs?source=campus", &read(&app));
    assert_eq!(syncs.matches("<td>full</td>").count(), 2, "{syncs}");
    assert!(!syncs.contains("<td>push</td>"), "{syncs}");
}

fn the_overview_and_the_user_page_show_the_target(app: App) {
    let desk = start_desk(&app);
    configure(&app, &desk, "types = [\"student\"]\n");
    app.full_sync();
    let adam = app.login("adam");
    let host = desk.addr().to_string();

    let page = get_page(&app, "/", &adam);
    assert!(page.contains("id=\"targets\""), "{page}");
    assert!(page.contains("id=\"target-helpdesk\""), "{page}");
    assert!(
        page.contains(&format!("<td class=\"target-host\">{host}</td>")),
        "{page}"
    );
    assert!(page.contains("never pushed"), "{page}");
    assert!(page.contains("id=\"push-helpdesk\""), "{page}");

    // Push now: back on the Overview with the result.
    let Auth::Session { csrf, .. } = &adam else {
        unreachable!()
    };
    let r = app.request(
        Method::POST,
        "/targets/helpdesk/push",
        &adam,
        form(&[("csrf", csrf)]),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location().starts_with("/?flash="), "{}", r.location());
    let page = app.follow(&r, &adam).body;
    no_token(&page);
    let created = desk.users().len();
    let run = targets(&app)[0]["last_push"]["id"].as_i64().unwrap();
    assert!(
        page.contains(&format!(
            "Pushed to helpdesk (run {run}): created {created}"
        )),
        "{page}"
    );
    assert!(
        page.contains(&format!("<a href=\"/runs/{run}\">run {run}</a>")),
        "{page}"
    );
    assert!(
        page.contains(&format!(
            "<td class=\"target-held\">{created}</td><td class=\"target-active\">{created}</td>"
        )),
        "{page}"
    );

    // The user page: where the help desk holds the account.
    let user = &desk.users()[0];
    let account = user["externalId"].as_str().unwrap().to_owned();
    let page = get_page(&app, &format!("/users/{account}"), &adam);
    assert!(page.contains("id=\"push-states\""), "{page}");
    let row = &page[page.find("id=\"push-state-helpdesk\"").unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(
        row.contains(&format!("<code>{}</code>", user["id"].as_str().unwrap())),
        "{row}"
    );
    assert!(row.contains("<td>yes</td>"), "{row}");

    // A failure the target answered is shown as text, and counted as failing.
    let sql = format!(
        "UPDATE push_state SET error = 'refused: <script>alert(1)</script>' WHERE user_id = {account}"
    );
    app.run_sql(&sql, &sql);
    let page = get_page(&app, &format!("/users/{account}"), &adam);
    assert!(!page.contains("<script>alert(1)"), "{page}");
    assert!(
        page.contains("refused: &#60;script&#62;alert(1)")
            || page.contains("refused: &lt;script&gt;alert(1)"),
        "{page}"
    );
    assert_eq!(targets(&app)[0]["counts"]["failing"], 1);
    let overview = get_page(&app, "/", &adam);
    assert!(
        overview.contains("<td class=\"target-failing warning\">1</td>"),
        "{overview}"
    );

    // A teacher is not pushed to this target: no Targets card.
    let teacher = app
        .store
        .find_user("lucia.ortiz@district.k12.us")
        .unwrap()
        .unwrap();
    let page = get_page(&app, &format!("/users/{}", teacher.user.id), &adam);
    assert!(!page.contains("id=\"push-states\""), "{page}");

    // A viewer sees the target, not the button.
    let vera = app.login("vera");
    let page = get_page(&app, "/", &vera);
    assert!(page.contains("id=\"target-helpdesk\""), "{page}");
    assert!(!page.contains("id=\"push-helpdesk\""), "{page}");
    let refused = app.request(
        Method::POST,
        "/targets/helpdesk/push",
        &vera,
        form(&[("csrf", "x")]),
    );
    assert_ne!(refused.status, 303, "{}", refused.body);
}

fn a_held_push_is_approved_and_sends(app: App) {
    let desk = start_desk(&app);
    configure(&app, &desk, "[target.safeguards]\nmax_deactivations = 2\n");
    app.full_sync();
    assert_eq!(push(&app, "helpdesk", None).json()["status"], "succeeded");
    // The target now takes teachers only: the others would be deactivated there.
    configure(
        &app,
        &desk,
        "types = [\"faculty\"]\n[target.safeguards]\nmax_deactivations = 2\n",
    );
    desk.clear_requests();
    let held = push(&app, "helpdesk", None).json();
    assert_eq!(held["status"], "held", "{held}");
    let deactivations = held["counts"]["deactivated"].as_u64().unwrap();
    assert!(deactivations > 2, "{held}");
    assert!(desk.requests().iter().all(|(m, _)| m == "GET"));
    let run = held["run_id"].as_i64().unwrap();
    assert_eq!(targets(&app)[0]["held_runs"], json!([run]));

    let adam = app.login("adam");
    let overview = get_page(&app, "/", &adam);
    assert!(
        overview.contains(&format!("id=\"held-{run}\"")),
        "{overview}"
    );
    assert!(
        overview.contains(&format!(
            "<a href=\"/runs/{run}\" class=\"held-push\">run {run}</a>"
        )),
        "{overview}"
    );
    let page = get_page(&app, &format!("/runs/{run}"), &adam);
    assert!(page.contains("id=\"approve-run\""), "{page}");
    assert!(page.contains("Approve plans the push again"), "{page}");
    let confirm = get_page(&app, &format!("/runs/{run}/approve"), &adam);
    assert!(
        confirm.contains("a push to the target helpdesk"),
        "{confirm}"
    );
    assert!(
        confirm.contains(&format!(
            "{deactivations} users are deactivated on the target"
        )),
        "{confirm}"
    );

    // Discarded in the console: nothing sent; the next push is held again.
    let confirm = get_page(&app, &format!("/runs/{run}/discard"), &adam);
    assert!(confirm.contains("nothing of it is ever sent"), "{confirm}");
    let Auth::Session { csrf, .. } = &adam else {
        unreachable!()
    };
    let r = app.request(
        Method::POST,
        &format!("/runs/{run}/discard"),
        &adam,
        form(&[("csrf", csrf)]),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let page = app.follow(&r, &adam).body;
    assert!(page.contains(&format!("run {run} discarded")), "{page}");
    assert!(desk.requests().iter().all(|(m, _)| m == "GET"));
    let again = push(&app, "helpdesk", None).json();
    assert_eq!(again["status"], "held", "{again}");
    let run = again["run_id"].as_i64().unwrap();
    assert_eq!(targets(&app)[0]["held_runs"], json!([run]));

    let r = app.request(
        Method::POST,
        &format!("/api/v1/runs/{run}/approve"),
        &write(&app),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    no_token(&r.body);
    let approval = r.json();
    assert_eq!(approval["outcome"]["status"], "succeeded", "{approval}");
    assert_eq!(approval["outcome"]["counts"]["deactivated"], deactivations);
    let inactive = desk.users().iter().filter(|u| u["active"] == false).count() as u64;
    assert_eq!(inactive, deactivations);
    let t = targets(&app).remove(0);
    assert_eq!(t["held_runs"], json!([]));
    assert_eq!(t["last_push"]["status"], "succeeded", "{t}");
    assert_eq!(
        t["counts"]["active"].as_u64().unwrap(),
        t["counts"]["held"].as_u64().unwrap() - deactivations
    );

    // A push is never undone.
    let undo = app.request(
        Method::POST,
        &format!("/api/v1/runs/{run}/undo"),
        &write(&app),
        None,
    );
    assert_eq!(undo.status, 422, "{}", undo.body);
    assert!(undo.body.contains("cannot be taken back"), "{}", undo.body);
    let page = get_page(&app, &format!("/runs/{run}"), &adam);
    assert!(page.contains("A push cannot be undone"), "{page}");
}

fn unknown_and_busy_targets_are_refused(app: App) {
    let desk = start_desk(&app);
    configure(&app, &desk, "");
    for body in [None, Some(json!({"dry_run": true}))] {
        let r = push(&app, "nowhere", body);
        assert_eq!(r.status, 404, "{}", r.body);
        assert_eq!(r.json()["error"]["code"], "not_found");
    }
    // A target is no source: it is not synced.
    let r = app.request(
        Method::POST,
        "/api/v1/sources/helpdesk/sync",
        &write(&app),
        Some(Body::Json(json!({"kind": "full"}))),
    );
    assert_eq!(r.status, 404, "{}", r.body);

    // Another process pushes to it.
    let lock =
        engine::lock_source(&app.store, "helpdesk", "cli:someone", app.clock.as_ref()).unwrap();
    let r = push(&app, "helpdesk", None);
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "already_running");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("target helpdesk is already being pushed to"),
        "{}",
        r.body
    );
    // The console says so on the Overview.
    let adam = app.login("adam");
    let Auth::Session { csrf, .. } = &adam else {
        unreachable!()
    };
    let r = app.request(
        Method::POST,
        "/targets/helpdesk/push",
        &adam,
        form(&[("csrf", csrf)]),
    );
    let page = app.follow(&r, &adam).body;
    assert!(page.contains("already being pushed to"), "{page}");
    drop(lock);
    assert!(desk.users().is_empty());

    // A target without a token fails in words, not with a 500.
    let config = app.store.load_config().unwrap();
    app.store
        .save_config(
            &config,
            &[("helpdesk".into(), None)],
            "test",
            app.clock_now(),
        )
        .unwrap();
    let r = push(&app, "helpdesk", None);
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "push_failed");
    assert_eq!(targets(&app)[0]["token"], "missing");
}

on_both!(
    pushes,
    crate::harness::plain;
    an_api_push_creates_the_users_and_the_targets_list_shows_them,
    a_dry_run_lists_the_writes_and_sends_none,
    a_sync_of_a_followed_source_is_followed_by_a_push,
    the_overview_and_the_user_page_show_the_target,
    a_held_push_is_approved_and_sends,
    unknown_and_busy_targets_are_refused,
);
