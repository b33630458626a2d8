//! The hard cases through the API and the console, on SQLite and PostgreSQL: a held run
//! (a feed with no users) discarded, approved and applied, undone, and refused an undo
//! with the list of conflicts; the run lock; the review queue listed and resolved; the
//! three reports; a merge previewed, refused and done.

use jiff::Timestamp;
use reqwest::Method;
use rostersync_core::directory::{Access, AccountId};
use serde_json::{Value, json};

use crate::harness::{App, Auth, Body, form};
use crate::on_both;

fn active_users(app: &App) -> usize {
    app.get(
        "/api/v1/users?active=true&limit=1000",
        &Auth::Bearer(app.read_token.clone()),
    )
    .json()["items"]
        .as_array()
        .unwrap()
        .len()
}

/// A full sync of a feed with no users: held, nothing applied.
fn held_sync(app: &App) -> i64 {
    let done = app.sync_full();
    assert_eq!(done["status"], "held", "{done}");
    done["run_id"].as_i64().unwrap()
}

fn post(app: &App, path: &str, auth: &Auth, body: Option<Value>) -> crate::harness::Reply {
    app.request(Method::POST, path, auth, body.map(Body::Json))
}

fn actions(app: &App) -> Vec<(String, String, String)> {
    app.store
        .audit_log(0)
        .unwrap()
        .into_iter()
        .map(|a| (a.actor, a.action, a.detail))
        .collect()
}

fn held_runs_are_approved_discarded_and_undone(app: App) {
    let write = Auth::Bearer(app.write_token.clone());
    let read = Auth::Bearer(app.read_token.clone());
    app.full_sync();
    let everyone = active_users(&app);
    assert!(everyone > 100, "{everyone}");
    let empty = app.faulty_sim("empty_users=1");
    app.point_source_at(&empty);

    // Held: why, and whom it would touch; nothing applied.
    let first = held_sync(&app);
    let run = app.get(&format!("/api/v1/runs/{first}"), &read).json();
    assert_eq!(run["status"], "held");
    assert!(
        run["hold"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["kind"] == "deactivations"),
        "{run}"
    );
    let would = app
        .get(
            &format!("/api/v1/runs/{first}/items?outcome=deactivated&limit=1000"),
            &read,
        )
        .json();
    assert!(would.as_array().unwrap().len() > 100, "{would}");
    assert_eq!(active_users(&app), everyone, "nothing applied");
    let admin = app.login("adam");
    let page = app.get(&format!("/runs/{first}"), &admin);
    assert!(page.body.contains("Held for approval"), "{}", page.body);
    assert!(page.body.contains("id=\"approve-run\""));
    assert!(page.body.contains("id=\"discard-run\""));
    let viewer = app.login("vera");
    let page = app.get(&format!("/runs/{first}"), &viewer);
    assert!(page.body.contains("Held for approval"));
    assert!(
        !page.body.contains("id=\"approve-run\""),
        "a viewer gets no buttons"
    );
    assert!(
        app.get("/runs", &viewer)
            .body
            .contains("is held for approval")
    );

    // Discarded: never applied, cannot be approved after.
    let r = post(&app, &format!("/api/v1/runs/{first}/discard"), &write, None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["status"], "discarded");
    let r = post(&app, &format!("/api/v1/runs/{first}/approve"), &write, None);
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("not held"), "{}", r.body);
    assert_eq!(
        post(&app, "/api/v1/runs/999999/approve", &write, None).status,
        404
    );

    // Approval takes the source's run lock, like a sync.
    let second = held_sync(&app);
    let lock = app
        .store
        .try_lock("source:campus", "another process", Timestamp::now())
        .unwrap()
        .unwrap();
    for path in ["approve", "discard", "undo"] {
        let r = post(&app, &format!("/api/v1/runs/{second}/{path}"), &write, None);
        assert_eq!(r.status, 409, "{path}: {}", r.body);
        assert_eq!(r.json()["error"]["code"], "already_running", "{path}");
    }
    drop(lock);

    // Approved: the held plan applied as it was.
    let r = post(
        &app,
        &format!("/api/v1/runs/{second}/approve"),
        &write,
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let approval = r.json();
    assert_eq!(approval["applied_as_held"], true, "{approval}");
    assert_eq!(approval["outcome"]["status"], "succeeded", "{approval}");
    assert_eq!(
        app.get(&format!("/api/v1/runs/{second}"), &read).json()["status"],
        "succeeded"
    );
    let left = active_users(&app);
    assert!(left < everyone / 10, "{left} of {everyone} still active");

    // Undo: a dry run says what, changes nothing; the undo puts everyone back.
    let r = post(
        &app,
        &format!("/api/v1/runs/{second}/undo"),
        &write,
        Some(json!({"dry_run": true})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["dry_run"], true);
    assert!(r.json()["reactivated"].as_array().unwrap().len() > 100);
    assert_eq!(active_users(&app), left, "a dry run changes nothing");
    let r = post(&app, &format!("/api/v1/runs/{second}/undo"), &write, None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(active_users(&app), everyone);
    assert_eq!(
        app.get(&format!("/api/v1/runs/{second}"), &read).json()["status"],
        "undone"
    );

    // Approved from the console; then a later change makes the undo refuse, with the list.
    let third = held_sync(&app);
    let r = app.request(
        Method::POST,
        &format!("/runs/{third}/approve"),
        &admin,
        form(&[]),
    );
    let page = app.follow(&r, &admin);
    assert!(page.body.contains("approved and applied"), "{}", page.body);
    let touched = AccountId(
        app.get(
            &format!("/api/v1/runs/{third}/items?outcome=deactivated&limit=1"),
            &read,
        )
        .json()[0]["user_id"]
            .as_i64()
            .unwrap(),
    );
    app.store
        .set_access(touched, Access::Agent, "console:olivia", Timestamp::now())
        .unwrap();
    let r = post(&app, &format!("/api/v1/runs/{third}/undo"), &write, None);
    assert_eq!(r.status, 409, "{}", r.body);
    let conflicts = r.json()["error"]["conflicts"].clone();
    assert!(
        conflicts
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c.as_str().unwrap().contains(&format!("#{touched}"))),
        "{conflicts}"
    );
    let page = app.request(
        Method::POST,
        &format!("/runs/{third}/undo"),
        &admin,
        form(&[]),
    );
    assert_eq!(page.status, 409, "{}", page.body);
    assert!(page.body.contains("id=\"undo-conflicts\""), "{}", page.body);
    assert!(page.body.contains(&format!("account #{touched}")));
    assert_eq!(
        app.get(&format!("/api/v1/runs/{third}"), &read).json()["status"],
        "succeeded",
        "a refused undo changes nothing"
    );

    // Who did what.
    let log = actions(&app);
    for (action, actor) in [
        ("run.discard", "token:"),
        ("run.approve", "token:"),
        ("run.undo", "token:"),
        ("run.approve", "console:adam"),
    ] {
        assert!(
            log.iter()
                .any(|(who, a, _)| a == action && who.starts_with(actor)),
            "{action} by {actor}: {log:?}"
        );
    }
    app.stop_sim(empty);
}

fn review_queue_is_listed_and_resolved(app: App) {
    let write = Auth::Bearer(app.write_token.clone());
    let read = Auth::Bearer(app.read_token.clone());
    // A second SIS person with Tam Nguyen's email, and Tam's single sign-on account.
    app.csv_district(
        "usr-t-2b,active,2026-08-01T00:00:00Z,true,org-high-1,teacher,tnguyen2,,Tam,Nguyen,,T9002b,tam.nguyen@district.k12.us,,,,,\n",
        "",
    );
    let tam = app.sso("tam.nguyen@district.k12.us", "Tam", "Nguyen");
    app.full_sync();

    let page = app.get("/api/v1/review", &read).json();
    let cases = page["items"].as_array().unwrap().clone();
    assert_eq!(cases.len(), 2, "{page}");
    assert!(page["next_after"].is_null());
    let case_of = |sid: &str| {
        cases.iter().find(|c| c["sourced_id"] == sid).unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let (one, two) = (case_of("usr-t-2"), case_of("usr-t-2b"));
    let c = cases.iter().find(|c| c["id"] == one).unwrap();
    assert!(
        c["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == tam.0),
        "{c}"
    );
    assert_eq!(c["evidence"]["email"], "tam.nguyen@district.k12.us");
    let limited = app.get("/api/v1/review?limit=1", &read).json();
    assert_eq!(limited["items"].as_array().unwrap().len(), 1);
    let after = limited["next_after"].as_i64().unwrap();
    let rest = app
        .get(&format!("/api/v1/review?limit=1&after={after}"), &read)
        .json();
    assert_eq!(rest["items"][0]["id"].as_i64().unwrap(), one.max(two));
    assert_eq!(app.get("/api/v1/review?status=pending", &read).status, 400);

    // The console lists them with the candidates and a button per candidate.
    let admin = app.login("adam");
    let html = app.get("/review", &admin).body;
    assert!(html.contains(&format!("id=\"case-{one}\"")), "{html}");
    assert!(html.contains(&format!("id=\"link-{one}-{tam}\"")), "{html}");
    assert!(html.contains("Review queue"));

    // Link one to Tam's account (by email) through the API, ignore the other in the console.
    let r = post(
        &app,
        &format!("/api/v1/review/{one}/resolve"),
        &write,
        Some(json!({"resolution": "link", "user": "tam.nguyen@district.k12.us"})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["status"], "resolved");
    assert_eq!(
        app.get(&format!("/api/v1/users/{tam}"), &read).json()["sis"]["sourced_id"],
        "usr-t-2"
    );
    // Tam's account now holds usr-t-2: the other case offers no link to it (it could
    // not succeed), and says why in the console's words; its school is named.
    let html = app.get("/review", &admin).body;
    assert!(
        !html.contains(&format!("id=\"link-{two}-{tam}\"")),
        "{html}"
    );
    assert!(
        html.contains(&format!("id=\"cannot-link-{two}-{tam}\"")),
        "{html}"
    );
    assert!(html.contains("already linked to campus:usr-t-2"), "{html}");
    assert!(html.contains("Maple Valley High (org-high-1)"), "{html}");
    let r = post(
        &app,
        &format!("/api/v1/review/{two}/resolve"),
        &write,
        Some(json!({"resolution": "maybe"})),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let r = post(
        &app,
        &format!("/api/v1/review/{two}/resolve"),
        &write,
        Some(json!({"resolution": "link"})),
    );
    assert_eq!(r.status, 400, "a link names the account: {}", r.body);
    let r = app.request(
        Method::POST,
        &format!("/review/{two}/resolve"),
        &admin,
        form(&[("resolution", "ignore")]),
    );
    let page = app.follow(&r, &admin);
    assert!(
        page.body.contains("later syncs keep the decision"),
        "{}",
        page.body
    );
    assert!(
        app.get("/api/v1/review", &read).json()["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let resolved = app.get("/api/v1/review?status=resolved", &read).json();
    assert_eq!(resolved["items"].as_array().unwrap().len(), 2);
    let r = post(
        &app,
        &format!("/api/v1/review/{one}/resolve"),
        &write,
        Some(json!({"resolution": "create"})),
    );
    assert_eq!(r.status, 409, "resolved already: {}", r.body);
    assert_eq!(
        post(
            &app,
            "/api/v1/review/999999/resolve",
            &write,
            Some(json!({"resolution": "ignore"}))
        )
        .status,
        404
    );

    // The next sync keeps both decisions.
    let run = app.full_sync();
    assert_eq!(run["counts"]["created"], 0, "{run}");
    let log = actions(&app);
    assert!(
        log.iter()
            .any(|(who, a, _)| a == "review.resolve" && who.starts_with("token:")),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|(who, a, _)| a == "review.resolve" && who == "console:adam"),
        "{log:?}"
    );
}

fn reports_and_merges(app: App) {
    let write = Auth::Bearer(app.write_token.clone());
    let read = Auth::Bearer(app.read_token.clone());
    let district = app.csv_district("", "[source.import]\ndeactivate_users = false\n");
    // Noah signs in with Google before the SIS (which has no email for him) is synced.
    let signon = app.sso("noah.williams@district.k12.us", "Noah", "Williams");
    app.full_sync();
    let from_sis = app.store.find_user("s100002").unwrap().unwrap().user.id;
    assert_ne!(from_sis, signon);

    // Unlinked: the sign-on account, suggesting the SIS person (linked to the other).
    let unlinked = app.get("/api/v1/reports/unlinked", &read).json();
    assert_eq!(unlinked["kind"], "unlinked");
    let row = unlinked["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == signon.0)
        .unwrap_or_else(|| panic!("{unlinked}"))
        .clone();
    assert_eq!(row["suggestions"][0]["sourced_id"], "usr-s-2", "{row}");
    assert_eq!(row["suggestions"][0]["linked_to"], from_sis.0, "{row}");
    // Duplicates: the two Noahs share only a name (the SIS has no email for him), which
    // tells no one apart: the unlinked report suggests him instead. Mia's own sign-on
    // account has her email local part on the district domain: a group.
    let mia_twin = app.sso("mia.johnson@district.k12.us", "Mia", "Johnson");
    let mia_sis = app.store.find_user("s100003").unwrap().unwrap().user.id;
    let dups = app.get("/api/v1/reports/duplicates", &read).json();
    let groups: Vec<Vec<AccountId>> = dups["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            g["accounts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| AccountId(a["id"].as_i64().unwrap()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(groups, [vec![mia_sis, mia_twin]], "{dups}");
    // Stale: Sofía is `tobedeleted` in the SIS now, and deactivation is off.
    let users = district.join("users.csv");
    let text = std::fs::read_to_string(&users)
        .unwrap()
        .replace("usr-s-5,active,", "usr-s-5,tobedeleted,");
    std::fs::write(&users, text).unwrap();
    app.full_sync();
    let stale = app.get("/api/v1/reports/stale", &read).json();
    let rows = stale["items"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{stale}");
    assert_eq!(rows[0]["sourced_id"], "usr-s-5");
    assert_eq!(rows[0]["reason_code"], "inactive_in_sis");
    assert_eq!(app.get("/api/v1/reports/nonsense", &read).status, 404);
    // Paged by account id.
    let first = app.get("/api/v1/reports/unlinked?limit=1", &read).json();
    if let Some(after) = first["next_after"].as_i64() {
        let next = app
            .get(
                &format!("/api/v1/reports/unlinked?limit=1&after={after}"),
                &read,
            )
            .json();
        assert!(next["items"][0]["id"].as_i64().unwrap_or(i64::MAX) > after);
    }
    // The console shows each report.
    let viewer = app.login("vera");
    for (kind, want) in [
        ("unlinked", "noah.williams@district.k12.us".to_owned()),
        ("duplicates", format!("#{mia_twin}")),
        ("stale", "usr-s-5".to_owned()),
    ] {
        let page = app.get(&format!("/reports?kind={kind}"), &viewer);
        assert_eq!(page.status, 200, "{kind}");
        assert!(page.body.contains(&want), "{kind}: {}", page.body);
    }
    assert!(
        app.get("/reports", &viewer)
            .body
            .contains("noah.williams@district.k12.us"),
        "unlinked by default"
    );

    // Merging two people the SIS says are different is refused.
    let ava = app.store.find_user("s100001").unwrap().unwrap().user.id;
    let mia = app.store.find_user("s100003").unwrap().unwrap().user.id;
    let r = post(
        &app,
        &format!("/api/v1/users/{ava}/merge"),
        &write,
        Some(json!({"into": mia})),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("different people"), "{}", r.body);

    // A preview in the console: what moves, nothing changed.
    let admin = app.login("adam");
    let preview = app.request(
        Method::POST,
        &format!("/users/{from_sis}/merge"),
        &admin,
        form(&[("into", "noah.williams@district.k12.us"), ("dry_run", "1")]),
    );
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert!(preview.body.contains("campus: usr-s-2"), "{}", preview.body);
    assert!(preview.body.contains("id=\"merge-confirm\""));
    // And through the API: a dry run, then the merge.
    let r = post(
        &app,
        &format!("/api/v1/users/{from_sis}/merge"),
        &write,
        Some(json!({"into": "noah.williams@district.k12.us", "dry_run": true})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let dry = r.json();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["survivor"], signon.0);
    assert_eq!(dry["moved_links"][0]["sourced_id"], "usr-s-2", "{dry}");
    assert!(
        app.get(&format!("/api/v1/users/{signon}"), &read).json()["sis"].is_null(),
        "a dry run changes nothing"
    );
    let r = post(
        &app,
        &format!("/api/v1/users/{from_sis}/merge"),
        &write,
        Some(json!({"into": signon})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let survivor = app.get(&format!("/api/v1/users/{signon}"), &read).json();
    assert_eq!(survivor["sis"]["sourced_id"], "usr-s-2", "the link moved");
    let gone = app.get(&format!("/api/v1/users/{from_sis}"), &read).json();
    assert_eq!(gone["active"], false, "{gone}");
    let page = app.get(&format!("/users/{from_sis}"), &admin).body;
    assert!(page.contains("id=\"merged-into\""), "{page}");
    let r = post(
        &app,
        &format!("/api/v1/users/{from_sis}/merge"),
        &write,
        Some(json!({"into": signon})),
    );
    assert_eq!(r.status, 409, "merged already: {}", r.body);

    // The reports are clean of them, and the next sync creates no one.
    let unlinked = app.get("/api/v1/reports/unlinked", &read).json();
    assert!(
        !unlinked["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == signon.0),
        "{unlinked}"
    );
    let run = app.full_sync();
    assert_eq!(run["counts"]["created"], 0, "{run}");
    assert!(
        actions(&app)
            .iter()
            .any(|(who, a, _)| a == "user.merge" && who.starts_with("token:")),
    );
}

/// The SIS gives a linked person the address a single sign-on account already has: the
/// change waits (one person, one account) and the review queue offers the merge, not a
/// link.
fn a_taken_email_is_offered_as_a_merge(app: App) {
    let district = app.csv_district("", "");
    app.full_sync();
    let users = district.join("users.csv");
    let before = app
        .store
        .find_user("tam.nguyen@district.k12.us")
        .unwrap()
        .unwrap();
    let text = std::fs::read_to_string(&users)
        .unwrap()
        .replace("tam.nguyen@district.k12.us", "tam.new@district.k12.us");
    std::fs::write(&users, text).unwrap();
    let other = app.sso("tam.new@district.k12.us", "Tam", "Nguyen");
    app.full_sync();
    let after = app
        .store
        .find_user(&before.user.id.to_string())
        .unwrap()
        .unwrap();
    assert_eq!(
        after.user.email.as_deref(),
        Some("tam.nguyen@district.k12.us"),
        "the address stays with the account that has it"
    );

    let admin = app.login("adam");
    let html = app.get("/review", &admin).body;
    let case = app.get("/api/v1/review", &admin).json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["reason_code"] == "identity_taken")
        .unwrap_or_else(|| panic!("{html}"))["id"]
        .as_i64()
        .unwrap();
    assert!(
        html.contains(&format!("id=\"merge-{case}-{other}\"")),
        "a merge button: {html}"
    );
    assert!(
        !html.contains(&format!("id=\"link-{case}-")),
        "no link button for this case: {html}"
    );
    let preview = app.request(
        Method::POST,
        &format!("/users/{}/merge", before.user.id),
        &admin,
        form(&[("into", &other.to_string()), ("dry_run", "1")]),
    );
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert!(
        preview.body.contains(&format!("#{other}")),
        "{}",
        preview.body
    );
}

/// A Sync User that fails says so in a problem banner, never a green one.
fn a_failed_sync_user_is_a_problem(app: App) {
    app.full_sync();
    let write = Auth::Bearer(app.write_token.clone());
    let id = app.get("/api/v1/users?linked=true&limit=1", &write).json()["items"][0]["id"]
        .as_i64()
        .unwrap();
    // The SIS goes away (nothing listens on port 9).
    let mut config = app.store.load_config().unwrap();
    config.sources[0].url = Some("http://127.0.0.1:9/ims/oneroster/v1p1".into());
    config.sources[0].token_url = Some("http://127.0.0.1:9/oauth2/token".into());
    config.sources[0].retry_attempts = Some(1);
    app.store
        .save_config(&config, &[], "test", Timestamp::now())
        .unwrap();
    let admin = app.login("adam");
    let r = app.request(
        Method::POST,
        &format!("/users/{id}/sync"),
        &admin,
        form(&[]),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let page = app.get(&r.location(), &admin).body;
    assert!(
        page.contains("class=\"problem\"") && page.contains("Sync User failed"),
        "{page}"
    );
    assert!(!page.contains("class=\"flash\""), "no green banner: {page}");
}

on_both!(held, crate::harness::with_sim; held_runs_are_approved_discarded_and_undone);
/// The History table shows every revision as field, old → new; an account's creation is
/// a row per first value, never a JSON blob.
fn the_user_history_reads_as_fields(app: App) {
    app.full_sync();
    let write = Auth::Bearer(app.write_token.clone());
    let user = app.get("/api/v1/users?linked=true&limit=1", &write).json()["items"][0].clone();
    let admin = app.login("adam");
    let page = app.get(&format!("/users/{}", user["id"]), &admin).body;
    let history = &page[page.find("id=\"revisions\"").unwrap()..];
    assert!(history.contains("(account created)"), "{history}");
    let email = user["email"].as_str().unwrap();
    assert!(
        history.contains(&format!("<td>email</td><td></td><td>{email}</td>")),
        "{history}"
    );
    assert!(
        !history.contains("{&quot;") && !history.contains("{\""),
        "no JSON: {history}"
    );
}

on_both!(user_sync, crate::harness::with_sim;
    a_failed_sync_user_is_a_problem,
    the_user_history_reads_as_fields,
);
on_both!(identity, crate::harness::plain; a_taken_email_is_offered_as_a_merge);
on_both!(csv, crate::harness::plain; review_queue_is_listed_and_resolved, reports_and_merges);
