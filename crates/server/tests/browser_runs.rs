//! A real browser walks the run pages and the dangerous actions: the counts on a run open
//! exactly that many people (named, in natural order); the first import offers no Undo;
//! Discard and Approve ask first on a page that says what will happen, and Cancel changes
//! nothing; a settings section warns before leaving unsaved edits; a viewer reads
//! settings as text.

use reqwest::Method;
use serde_json::json;
use store::RunId;

use crate::browser::{Browser, signed_in};
use crate::harness::{App, Backend, with_sim};

/// The rows of the run page's item table now shown.
fn item_rows(b: &Browser) -> usize {
    let html = b.source();
    let table = &html[html.find("id=\"items\"").unwrap()..];
    table[..table.find("</table>").unwrap()]
        .matches("<code>")
        .count()
}

/// The number in an outcome link (`#outcome-NAME`).
fn link_count(b: &Browser, outcome: &str) -> usize {
    let html = b.source();
    let at = html
        .find(&format!("id=\"outcome-{outcome}\""))
        .unwrap_or_else(|| panic!("no outcome link {outcome}"));
    let rest = &html[at..];
    let n = rest.find("<span class=\"n\">").unwrap() + 16;
    rest[n..n + rest[n..].find('<').unwrap()].parse().unwrap()
}

#[test]
fn an_admin_reads_runs_and_confirms_dangerous_actions_in_a_real_browser() {
    let Some(app) = App::start(Backend::Sqlite, with_sim()) else {
        return;
    };
    let first = app.full_sync()["run_id"].as_i64().unwrap();
    let Some(b) = signed_in(&app, "runs", "adam", &format!("/runs/{first}")) else {
        return;
    };
    let url = &app.url;
    b.go(&format!("{url}/runs/{first}"));
    b.wait_for("id=\"outcomes\"", 10);
    // The first import: no Undo, and why.
    assert!(!b.source().contains("id=\"undo-run\""));
    assert!(b.source().contains("first import"), "{}", b.source());
    // Each count opens exactly that many people (under 100: one page).
    let created = link_count(&b, "created");
    assert!(
        created > 50,
        "the first import creates most of the district: {created}"
    );
    b.click("#outcome-created");
    b.wait_for("aria-current=\"page\"", 10);
    assert_eq!(item_rows(&b), created.min(100));
    b.shot("created");
    let skipped = link_count(&b, "skipped");
    b.click("#outcome-skipped");
    b.wait_for("outcome=skipped", 10);
    assert_eq!(item_rows(&b), skipped.min(100));

    // The next full sync skips the people the import settings skip as the first did:
    // counted beside the unchanged, not listed again.
    let second = RunId(app.full_sync()["run_id"].as_i64().unwrap());
    let counts = app.store.get_run(second).unwrap().unwrap().counts;
    assert!(counts.skipped_listed_before > 0, "{counts:?}");
    b.go(&format!("{url}/runs/{second}"));
    b.wait_for("id=\"outcomes\"", 10);
    let listed = link_count(&b, "skipped");
    assert_eq!(listed as u64 + counts.skipped_listed_before, counts.skipped);
    assert!(
        b.source().contains(&format!(
            "skipped as before ({}, listed by an earlier run)",
            counts.skipped_listed_before
        )),
        "{}",
        b.source()
    );

    // A held run: Discard asks first; Cancel leaves it held.
    let empty = app.faulty_sim("empty_users=1");
    app.point_source_at(&empty);
    let held = app.sync_full();
    assert_eq!(held["status"], "held", "{held}");
    let held = RunId(held["run_id"].as_i64().unwrap());
    b.go(&format!("{url}/runs/{held}"));
    b.click("#discard-run");
    b.wait_for("nothing of it is ever applied", 10);
    b.shot("discard-confirm");
    b.click("#confirm-cancel");
    b.wait_for("Held for approval", 10);
    assert_eq!(
        app.store.get_run(held).unwrap().unwrap().status,
        store::RunStatus::Held
    );
    // Approve asks first, with the count and names, then applies.
    b.click("#approve-run");
    b.wait_for("Approving applies its plan", 10);
    assert!(
        b.source().contains("id=\"confirm-people\""),
        "{}",
        b.source()
    );
    b.shot("approve-confirm");
    b.click("#confirm-approve");
    b.wait_for("approved and applied", 30);
    app.stop_sim(empty);
    // Now Undo is offered; its page is a dry run saying what comes back.
    b.click("#undo-run");
    b.wait_for("the run deactivated are active again", 20);
    b.shot("undo-confirm");
    b.click("#confirm-cancel");
    b.wait_for("id=\"run-status\">succeeded", 10);

    // Settings: one section a page; an edit not saved is warned about before leaving.
    b.go(&format!("{url}/settings?source=campus&section=schedule"));
    b.wait_for("id=\"form-schedule\"", 10);
    b.fill("input[name='full']", "daily 03:00");
    let prevented = b.call(
        Method::POST,
        "/execute/sync",
        Some(json!({
            "script": "var e = new Event('beforeunload', {cancelable: true}); window.dispatchEvent(e); return e.defaultPrevented;",
            "args": []
        })),
    );
    assert_eq!(
        prevented,
        json!(true),
        "leaving with an unsaved edit is warned about"
    );
    b.click("#save-schedule");
    b.wait_for("The full sync schedule is now daily 03:00", 10);
    let prevented = b.call(
        Method::POST,
        "/execute/sync",
        Some(json!({
            "script": "var e = new Event('beforeunload', {cancelable: true}); window.dispatchEvent(e); return e.defaultPrevented;",
            "args": []
        })),
    );
    assert_eq!(
        prevented,
        json!(false),
        "nothing to warn about after a save"
    );
    drop(b);

    // A viewer reads the same section as text.
    let Some(v) = signed_in(
        &app,
        "runs-viewer",
        "vera",
        "/settings?source=campus&section=schedule",
    ) else {
        return;
    };
    v.go(&format!("{url}/settings?source=campus&section=schedule"));
    v.wait_for("id=\"values-schedule\"", 10);
    assert!(v.source().contains("daily 03:00"));
    assert!(!v.source().contains("name=\"full\""), "no dead inputs");
    v.shot("viewer-settings");
}
