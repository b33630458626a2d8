//! A real browser walks the users list: an admin filters by grade and homeroom as people
//! type them (`5`, `K`, `ROOM 4`), sees how many match, sorts by a column both ways,
//! saves the list as a view, opens it again, and downloads the CSV; a viewer opens the
//! view but has nothing to save or delete.

use reqwest::Method;
use serde_json::{Value, json};

use crate::browser::{Browser, signed_in};
use crate::harness::{App, Backend, plain};
use crate::user_list::seed_district;

/// Fetches `path` with the browser's own session (the CSV link, as the page offers it):
/// status, content type and body.
fn fetch_in_page(b: &Browser, path: &str) -> (u64, String, String) {
    let v: Value = b.call(
        Method::POST,
        "/execute/async",
        Some(json!({
            "script": "const done = arguments[arguments.length - 1];
                fetch(arguments[0], {credentials: 'same-origin'})
                  .then(r => r.text().then(t => done([r.status, r.headers.get('content-type'), t])))
                  .catch(e => done([0, 'error', String(e)]));",
            "args": [path],
        })),
    );
    (
        v[0].as_u64().unwrap_or(0),
        v[1].as_str().unwrap_or_default().to_owned(),
        v[2].as_str().unwrap_or_default().to_owned(),
    )
}

/// The value of attribute `attr` of the element with id `id` in `html`.
fn attribute(html: &str, id: &str, attr: &str) -> String {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}"));
    let start = html[..at].rfind('<').unwrap();
    let tag = &html[start..start + html[start..].find('>').unwrap()];
    let key = format!("{attr}=\"");
    let from = tag
        .find(&key)
        .unwrap_or_else(|| panic!("no {attr} on #{id}: {tag}"))
        + key.len();
    tag[from..from + tag[from..].find('"').unwrap()].replace("&amp;", "&")
}

/// Where `needle` first appears in `html` (panics when it does not).
fn at(html: &str, needle: &str) -> usize {
    html.find(needle)
        .unwrap_or_else(|| panic!("{needle} is not on the page"))
}

#[test]
fn an_admin_filters_sorts_saves_and_exports_the_users_list_in_a_real_browser() {
    let Some(app) = App::start(Backend::Sqlite, plain()) else {
        return;
    };
    seed_district(&app);
    let Some(b) = signed_in(&app, "user-list", "adam", "/users") else {
        return;
    };
    let url = &app.url;

    // Grade 5 as people type it finds 5, 05 and Grade 5; the count says how many.
    b.wait_for("id=\"user-count\"", 10);
    b.fill("#filter-grade", "5");
    b.click("#filter-users");
    b.wait_for("3 users match", 10);
    let html = b.source();
    for username in ["s100007", "s100008", "s100010"] {
        assert!(html.contains(username), "{username} missing:\n{html}");
    }
    b.shot("grade-5");

    // K finds KG; the homeroom in capitals finds Room 4.
    b.fill("#filter-grade", "K");
    b.fill("#filter-homeroom", "ROOM 4");
    b.click("#filter-users");
    b.wait_for("2 users match", 10);
    let html = b.source();
    assert!(
        html.contains("s100001") && html.contains("s100002"),
        "{html}"
    );
    assert!(!html.contains("s100009"), "Kay has no homeroom:\n{html}");
    b.shot("kindergarten-room-4");

    // Back to grade 5, sorted by name, then the other way round.
    b.fill("#filter-grade", "5");
    b.fill("#filter-homeroom", "");
    b.click("#filter-users");
    b.wait_for("3 users match", 10);
    b.click("#sort-name");
    b.wait_for("aria-sort=\"ascending\"", 10);
    assert!(b.url().ends_with("/users?grade=5&sort=name"), "{}", b.url());
    let html = b.source();
    // Bytewise by name: "+plus …", "=hyperlink…", "ann five".
    assert!(at(&html, "s100010") < at(&html, "s100008"));
    assert!(at(&html, "s100008") < at(&html, "s100007"));
    b.click("#sort-name");
    b.wait_for("aria-sort=\"descending\"", 10);
    assert!(
        b.url().ends_with("/users?grade=5&sort=-name"),
        "{}",
        b.url()
    );
    let html = b.source();
    assert!(at(&html, "s100007") < at(&html, "s100008"));
    assert!(at(&html, "s100008") < at(&html, "s100010"));
    assert!(html.contains("3 users match"), "the sort keeps the filter");
    b.shot("sorted");

    // Save the list as a view; it is listed, and it is what the page shows.
    b.fill("#view-name", "Grade 5 by name");
    b.click("#save-view-button");
    b.wait_for("saved view", 10);
    b.wait_for("(showing)", 10);
    b.shot("saved");

    // Open it again from the plain list.
    b.go(&format!("{url}/users"));
    b.wait_for("id=\"saved-views\"", 10);
    assert!(!b.source().contains("(showing)"));
    b.click("a.saved-view");
    b.wait_for("3 users match", 10);
    assert!(
        b.url().ends_with("/users?grade=5&sort=-name"),
        "{}",
        b.url()
    );
    assert!(b.source().contains("(showing)"));

    // The CSV link exports the list shown: filtered, sorted, formulas defused.
    let html = b.source();
    let href = attribute(&html, "users-csv", "href");
    assert_eq!(href, "/users.csv?grade=5&sort=-name");
    let (status, content_type, csv) = fetch_in_page(&b, &href);
    assert_eq!(status, 200, "{csv}");
    assert_eq!(content_type, "text/csv; charset=utf-8");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(lines[0].starts_with("id,first_name,last_name,"), "{csv}");
    assert!(lines[1].contains(",Ann,Five,"), "{csv}");
    assert!(lines[2].contains("\"'=HYPERLINK("), "{csv}");
    assert!(
        lines[3].contains(",'+Plus,\"'@At, \"\"Quoted\"\"\","),
        "{csv}"
    );
    // Clicking it downloads (the page stays where it is).
    b.click("#users-csv");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        b.url().ends_with("/users?grade=5&sort=-name"),
        "{}",
        b.url()
    );
    b.shot("view-opened");

    // A viewer opens the view too, but cannot save or delete one.
    let Some(v) = signed_in(&app, "user-list-viewer", "vera", "/users") else {
        return;
    };
    v.wait_for("Grade 5 by name", 10);
    let html = v.source();
    assert!(!html.contains("id=\"save-view\""), "{html}");
    assert!(!html.contains("delete-view"), "{html}");
    v.click("a.saved-view");
    v.wait_for("3 users match", 10);
    let (status, _, csv) = fetch_in_page(&v, "/users.csv?grade=5&sort=-name");
    assert_eq!(status, 200, "viewers export too: {csv}");
    v.shot("viewer");
}
