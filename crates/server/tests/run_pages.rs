//! The console's run pages and dangerous actions, on SQLite and PostgreSQL: every count
//! on a run is a link to exactly that many items, items show people by name in natural
//! sourcedId order, Undo is offered only where it would put something back, and
//! approve, discard, undo and remove-link each ask first on a page that says what will
//! happen (and changes nothing). Settings are one section a page, and viewers read values
//! as text, not as inputs they cannot use.

use reqwest::Method;
use serde_json::Value;
use store::RunId;

use crate::harness::{App, Auth, form, hidden};
use crate::on_both;

/// The numbers in the run page's outcome links: (query, count).
fn outcome_links(html: &str, run: i64) -> Vec<(String, u64)> {
    let marker = format!("<a href=\"/runs/{run}?");
    html.match_indices(&marker)
        .filter_map(|(i, _)| {
            let rest = &html[i + marker.len()..];
            let query = rest[..rest.find('"')?].to_owned();
            let n = rest.find("<span class=\"n\">")?;
            let tail = &rest[n + 16..];
            let count = tail[..tail.find('<')?].parse().ok()?;
            Some((query, count))
        })
        .collect()
}

/// The rows of a run page's item table, following every page of `query`.
fn listed_items(app: &App, auth: &Auth, run: i64, query: &str) -> Vec<String> {
    let mut rows = Vec::new();
    let mut offset = 0;
    loop {
        let page = app.get(&format!("/runs/{run}?{query}&offset={offset}"), auth);
        assert_eq!(page.status, 200, "{}", page.body);
        let table = &page.body[page.body.find("id=\"items\"").unwrap()..];
        let table = &table[..table.find("</table>").unwrap()];
        let before = rows.len();
        for (i, _) in table.match_indices("<code>") {
            let rest = &table[i + 6..];
            rows.push(rest[..rest.find("</code>").unwrap()].to_owned());
        }
        if !page.body.contains(">next page</a>") {
            return rows;
        }
        assert!(rows.len() > before, "a next page adds rows");
        offset += 100;
    }
}

fn natural(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn run_counts_are_links_to_that_many_items(app: App) {
    let admin = app.login("adam");
    let read = Auth::Bearer(app.read_token.clone());
    let done = app.full_sync();
    let run = done["run_id"].as_i64().unwrap();
    let page = app.get(&format!("/runs/{run}"), &admin);
    let links = outcome_links(&page.body, run);
    assert_eq!(links.len(), 8, "seven outcomes and rekeyed: {links:?}");
    let api: Value = app.get(&format!("/api/v1/runs/{run}"), &read).json();
    let mut total = 0;
    for (query, count) in &links {
        let rows = listed_items(&app, &admin, run, query);
        assert_eq!(rows.len() as u64, *count, "{query} says {count}");
        let mut sorted = rows.clone();
        sorted.sort_by(|a, b| natural(a, b));
        assert_eq!(rows, sorted, "{query}: natural sourcedId order");
        if !query.starts_with("reason=") {
            total += count;
            // The run's own counts (the API's and Sync History's) are the same numbers.
            let key = match query.trim_start_matches("outcome=") {
                "error" => "errors",
                other => other,
            };
            assert_eq!(api["counts"][key].as_u64(), Some(*count), "{key}: {api}");
        }
    }
    let created = api["counts"]["created"].as_u64().unwrap();
    assert!(created > 100, "{api}");
    assert_eq!(
        total + api["counts"]["unchanged"].as_u64().unwrap(),
        api["counts"]["seen"].as_u64().unwrap(),
        "every person seen is under exactly one outcome: {api}"
    );
    // People by name, the sourcedId beside.
    let created_page = app.get(&format!("/runs/{run}?outcome=created"), &admin);
    let first = app.get("/api/v1/users?limit=1&type=student", &read).json()["items"][0].clone();
    let some_name = first["last_name"].as_str().unwrap_or_default().to_owned();
    assert!(!some_name.is_empty(), "{first}");
    assert!(
        created_page
            .body
            .contains("<th>Person</th><th>SIS sourcedId</th>"),
        "{}",
        created_page.body
    );
    // Sync History: Linked, Reactivated, Rekeyed and Errors are columns, each a link.
    let history = app.get("/runs", &admin);
    for col in [
        "Linked",
        "Reactivated",
        "Rekeyed",
        "Errors",
        "Groups written",
    ] {
        assert!(
            history.body.contains(&format!("<th>{col}</th>"))
                || history.body.contains(&format!(">{col}</th>")),
            "{col}"
        );
    }
    assert!(
        history
            .body
            .contains(&format!("/runs/{run}?outcome=linked"))
    );
    assert!(
        history
            .body
            .contains(&format!("/runs/{run}?reason=rekeyed"))
    );
    // An unknown reason filter is refused in words.
    let bad = app.get(&format!("/runs/{run}?reason=nonsense"), &admin);
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("rekeyed"), "{}", bad.body);
}

fn dangerous_actions_ask_first_and_say_what_happens(app: App) {
    let admin = app.login("adam");
    let viewer = app.login("vera");
    let first = app.full_sync()["run_id"].as_i64().unwrap();
    // The first import: no Undo (it would only retire every account), with the reason.
    let page = app.get(&format!("/runs/{first}"), &admin);
    assert!(!page.body.contains("id=\"undo-run\""), "{}", page.body);
    assert!(page.body.contains("first import"), "{}", page.body);
    // A run that changed nothing: no Undo either.
    let noop = app.full_sync()["run_id"].as_i64().unwrap();
    let page = app.get(&format!("/runs/{noop}"), &admin);
    assert!(!page.body.contains("id=\"undo-run\""), "{}", page.body);
    assert!(page.body.contains("changed nothing"), "{}", page.body);

    // A held run: Approve and Discard are links to pages that ask.
    let empty = app.faulty_sim("empty_users=1");
    app.point_source_at(&empty);
    let held = app.sync_full();
    assert_eq!(held["status"], "held", "{held}");
    let held = RunId(held["run_id"].as_i64().unwrap());
    let would = app.store.get_run(held).unwrap().unwrap().counts.deactivated;
    // Sync History filtered to the held runs lists exactly those.
    let list = app.get("/runs?status=held", &admin);
    assert!(
        list.body.contains(&format!("href=\"/runs/{held}\"")),
        "{}",
        list.body
    );
    assert!(
        !list.body.contains(&format!("href=\"/runs/{first}\"")),
        "{}",
        list.body
    );
    assert_eq!(app.get("/runs?status=nonsense", &admin).status, 400);
    let ask = app.get(&format!("/runs/{held}/approve"), &admin);
    assert_eq!(ask.status, 200, "{}", ask.body);
    assert!(ask.body.contains("Nothing has changed yet"), "{}", ask.body);
    assert!(
        ask.body
            .contains(&format!("{would} accounts are deactivated")),
        "{would}: {}",
        ask.body
    );
    assert!(
        ask.body.contains("id=\"confirm-people\""),
        "names: {}",
        ask.body
    );
    assert!(ask.body.contains("id=\"confirm-approve\""));
    assert_eq!(
        app.store.get_run(held).unwrap().unwrap().status,
        store::RunStatus::Held,
        "asking changes nothing"
    );
    let ask = app.get(&format!("/runs/{held}/discard"), &admin);
    assert!(
        ask.body.contains("nothing of it is ever applied"),
        "{}",
        ask.body
    );
    assert_eq!(
        app.get(&format!("/runs/{held}/approve"), &viewer).status,
        403
    );

    // Approve it (the form on the confirmation page), then the applied run offers Undo,
    // whose page says what the undo puts back, as a dry run.
    let csrf = hidden(
        &app.get(&format!("/runs/{held}/approve"), &admin).body,
        "csrf",
    );
    let r = app.request(
        Method::POST,
        &format!("/runs/{held}/approve"),
        &admin,
        form(&[("csrf", &csrf)]),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    app.stop_sim(empty);
    let applied = app.store.get_run(held).unwrap().unwrap();
    assert_eq!(applied.status, store::RunStatus::Succeeded);
    let page = app.get(&format!("/runs/{held}"), &admin);
    assert!(page.body.contains("id=\"undo-run\""), "{}", page.body);
    let ask = app.get(&format!("/runs/{held}/undo"), &admin);
    assert!(
        ask.body.contains(&format!(
            "{would} accounts the run deactivated are active again"
        )),
        "{}",
        ask.body
    );
    assert_eq!(
        app.store.get_run(held).unwrap().unwrap().status,
        store::RunStatus::Succeeded,
        "the undo page is a dry run"
    );

    // Remove link: a page naming the person first.
    let user = app.get("/api/v1/users?limit=1&linked=true", &admin).json()["items"][0].clone();
    let id = user["id"].as_i64().unwrap();
    let ask = app.get(&format!("/users/{id}/unlink"), &admin);
    assert_eq!(ask.status, 200, "{}", ask.body);
    assert!(ask.body.contains("id=\"confirm-unlink\""), "{}", ask.body);
    let sid = app
        .store
        .find_user(&id.to_string())
        .unwrap()
        .unwrap()
        .sis
        .unwrap()
        .sourced_id;
    assert!(ask.body.contains(&sid), "{}", ask.body);
    assert!(
        app.store
            .find_user(&id.to_string())
            .unwrap()
            .unwrap()
            .sis
            .is_some()
    );
    let csrf = hidden(&ask.body, "csrf");
    let source = hidden(&ask.body, "source");
    let r = app.request(
        Method::POST,
        &format!("/users/{id}/unlink"),
        &admin,
        form(&[("csrf", &csrf), ("source", &source)]),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(
        app.store
            .find_user(&id.to_string())
            .unwrap()
            .unwrap()
            .sis
            .is_none()
    );
    // Asked again, it says there is no link and offers no button.
    let ask = app.get(&format!("/users/{id}/unlink"), &admin);
    assert!(ask.body.contains("has no SIS link"), "{}", ask.body);
    assert!(!ask.body.contains("id=\"confirm-unlink\""));
}

fn settings_are_one_section_a_page_and_read_only_as_text(app: App) {
    let owner = app.login("olivia");
    let viewer = app.login("vera");
    let admin = app.login("adam");
    let sections = [
        "authentication",
        "import",
        "fields",
        "mapping",
        "features",
        "schedule",
        "network",
    ];
    for section in sections {
        let page = app.get(
            &format!("/settings?source=campus&section={section}"),
            &owner,
        );
        assert_eq!(page.status, 200, "{section}");
        let saves = page.body.matches(">Save</button>").count();
        assert_eq!(saves, 1, "{section}: one form, one Save");
        let v = app.get(
            &format!("/settings?source=campus&section={section}"),
            &viewer,
        );
        let inputs = v.body.matches("<input").count();
        let csrf_inputs = v.body.matches("name=\"csrf\"").count();
        assert_eq!(
            inputs, csrf_inputs,
            "{section}: a viewer gets values as text, no inputs:\n{}",
            v.body
        );
        assert!(!v.body.contains("disabled"), "{section}: no dead inputs");
        assert!(!v.body.contains("<select"), "{section}");
    }
    let models = app.get("/models", &viewer);
    assert!(
        models.body.contains("id=\"values-models\""),
        "{}",
        models.body
    );
    assert!(
        !models.body.contains("type=\"checkbox\""),
        "{}",
        models.body
    );
    // An admin reads the owner-only sections as text too.
    let page = app.get("/settings?source=campus&section=mapping", &admin);
    assert!(page.body.contains("id=\"values-mapping\""), "{}", page.body);
    assert!(!page.body.contains("<textarea"), "{}", page.body);

    // A save says what changed in words and comes back to its section.
    let page = app.get("/settings?source=campus&section=fields", &owner);
    let csrf = hidden(&page.body, "csrf");
    let mut pairs: Vec<(String, String)> = vec![("csrf".into(), csrf)];
    for f in ["email", "homeroom", "grade"] {
        pairs.push((format!("enabled.{f}"), "on".into()));
    }
    pairs.push(("priority.homeroom".into(), "if-not-set".into()));
    let body: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let r = app.request(Method::POST, "/settings/campus/fields", &owner, form(&body));
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location().contains("section=fields"), "{}", r.location());
    let after = app.follow(&r, &owner);
    assert!(
        after
            .body
            .contains("Field homeroom now updates only if empty (source campus)"),
        "{}",
        after.body
    );
    assert!(
        !after.body.contains("&quot;if-not-set&quot;"),
        "no JSON in the message"
    );
}

on_both!(run_pages, crate::harness::with_sim;
    run_counts_are_links_to_that_many_items,
    dangerous_actions_ask_first_and_say_what_happens,
    settings_are_one_section_a_page_and_read_only_as_text,
);
