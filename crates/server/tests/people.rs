//! Links by hand are checked against the SIS, so a mistyped sourcedId cannot tie an
//! account to nobody: the API refuses a sourcedId the SIS does not have with `422` and
//! changes nothing, says who confirmed a person it accepts, and searches the SIS people
//! its syncs recorded; the user page's *Change SIS user* form searches them without
//! JavaScript and shows a refusal as a problem banner.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{App, Auth, Body, form};
use crate::on_both;

on_both!(links, crate::harness::with_sim;
    a_link_to_a_person_the_sis_lacks_is_refused_with_422,
    sis_people_are_searched_by_name_email_and_school_id,
    the_user_page_finds_the_person_and_links_without_javascript,
);

/// Two linked students (account, sourcedId) after a full sync.
fn two_students(app: &App) -> [(i64, String); 2] {
    let read = Auth::Bearer(app.read_token.clone());
    let list = app
        .get("/api/v1/users?type=student&linked=true&limit=2", &read)
        .json();
    let pick = |i: usize| {
        let u = &list["items"][i];
        (
            u["id"].as_i64().unwrap(),
            u["sis"]["sourced_id"].as_str().unwrap().to_owned(),
        )
    };
    [pick(0), pick(1)]
}

fn post(app: &App, path: &str, body: Value) -> crate::harness::Reply {
    app.request(
        Method::POST,
        path,
        &Auth::Bearer(app.write_token.clone()),
        Some(Body::Json(body)),
    )
}

fn a_link_to_a_person_the_sis_lacks_is_refused_with_422(app: App) {
    app.full_sync();
    let read = Auth::Bearer(app.read_token.clone());
    let [(a, a_sid), (b, b_sid)] = two_students(&app);
    let before = app.get(&format!("/api/v1/users/{a}"), &read).json();

    let r = post(
        &app,
        &format!("/api/v1/users/{a}/relink"),
        json!({"sourced_id": "usr-424242"}),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "sis_person_not_found");
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("the SIS has no person usr-424242")
            && message.contains("nothing was changed"),
        "{message}"
    );
    assert_eq!(
        app.get(&format!("/api/v1/users/{a}"), &read).json(),
        before,
        "the link and the history are as they were"
    );

    // An unlinked account: refused too, then linked to its real person.
    let r = post(&app, &format!("/api/v1/users/{b}/unlink"), json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post(
        &app,
        &format!("/api/v1/users/{b}/link"),
        json!({"sourced_id": "usr-424242"}),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(app.get(&format!("/api/v1/users/{b}"), &read).json()["sis"].is_null());
    let r = post(
        &app,
        &format!("/api/v1/users/{b}/link"),
        json!({"sourced_id": b_sid}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let linked = r.json();
    assert_eq!(linked["sis"]["sourced_id"], b_sid.as_str());
    assert_eq!(linked["sis_check"]["confirmed_by"], "sis");
    assert_eq!(linked["sis_check"]["message"], "confirmed by the SIS");
    assert_eq!(linked["sis_check"]["person"]["status"], "active");

    // A relink to the person another account holds passes the SIS, then the store's
    // conflict stands; unknown accounts are 404 before the SIS is asked.
    let r = post(
        &app,
        &format!("/api/v1/users/{a}/relink"),
        json!({"sourced_id": b_sid}),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(
        app.get(&format!("/api/v1/users/{a}"), &read).json()["sis"]["sourced_id"],
        a_sid.as_str()
    );
    let r = post(
        &app,
        "/api/v1/users/99999999/link",
        json!({"sourced_id": "usr-424242"}),
    );
    assert_eq!(r.status, 404, "{}", r.body);
    let r = post(
        &app,
        &format!("/api/v1/users/{b}/relink"),
        json!({"sourced_id": "usr-1", "source": "elsewhere"}),
    );
    assert_eq!(r.status, 404, "{}", r.body);

    // The audit log holds the link that happened, not the refused ones.
    let audit = app.get("/api/v1/audit", &read).body;
    assert!(audit.contains(&b_sid), "{audit}");
    assert!(!audit.contains("usr-424242"), "{audit}");
}

fn sis_people_are_searched_by_name_email_and_school_id(app: App) {
    let run = app.full_sync()["run_id"].as_i64().unwrap();
    let read = Auth::Bearer(app.read_token.clone());
    let [(a, a_sid), _] = two_students(&app);
    let user = app.get(&format!("/api/v1/users/{a}"), &read).json();
    let search = |q: &str| {
        let r = app.get(
            &format!("/api/v1/sources/campus/people?q={}", crate::harness::enc(q)),
            &read,
        );
        assert_eq!(r.status, 200, "{q}: {}", r.body);
        r.json()
    };

    let last = user["last_name"].as_str().unwrap();
    let first = user["first_name"].as_str().unwrap();
    let by_name = search(&format!("{first} {last}"));
    assert_eq!(by_name["source"], "campus");
    assert_eq!(by_name["last_pull"]["run"].as_i64(), Some(run));
    let items = by_name["items"].as_array().unwrap();
    let hit = items
        .iter()
        .find(|p| p["sourced_id"] == a_sid.as_str())
        .unwrap_or_else(|| panic!("{a_sid} not found by name: {by_name:#}"));
    assert_eq!(hit["linked_user"].as_i64(), Some(a));
    assert_eq!(hit["in_last_pull"], true);
    assert_eq!(hit["status"], "active");
    for p in items {
        let haystack = [
            "given_name",
            "family_name",
            "email",
            "username",
            "identifier",
            "sourced_id",
        ]
        .iter()
        .map(|k| p[*k].as_str().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
        for word in first.split_whitespace().chain(last.split_whitespace()) {
            assert!(
                haystack.contains(&word.to_lowercase()),
                "every word matches: {word} in {p}"
            );
        }
    }

    // By school id and by (part of) the email, case-insensitively.
    let identifier = hit["identifier"].as_str().unwrap().to_owned();
    let by_id = search(&identifier);
    assert!(
        by_id["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["sourced_id"] == a_sid.as_str()),
        "{by_id:#}"
    );
    let email = hit["email"].as_str().unwrap().to_uppercase();
    let by_email = search(&email);
    assert!(
        by_email["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["sourced_id"] == a_sid.as_str()),
        "{by_email:#}"
    );
    assert!(
        search("zzzz-nobody-qqq")["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Limits, a missing query, an unknown source.
    let r = app.get("/api/v1/sources/campus/people?q=a&limit=2", &read);
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 2, "{}", r.body);
    for (path, status) in [
        ("/api/v1/sources/campus/people", 400),
        ("/api/v1/sources/campus/people?q=%20", 400),
        ("/api/v1/sources/campus/people?q=a&limit=0", 400),
        ("/api/v1/sources/campus/people?q=a&limit=101", 400),
        ("/api/v1/sources/elsewhere/people?q=a", 404),
    ] {
        assert_eq!(app.get(path, &read).status, status, "{path}");
    }
    assert_eq!(
        app.get("/api/v1/sources/campus/people?q=a", &Auth::None)
            .status,
        401
    );
}

fn the_user_page_finds_the_person_and_links_without_javascript(app: App) {
    app.full_sync();
    let read = Auth::Bearer(app.read_token.clone());
    let admin = app.login("adam");
    let [(a, a_sid), (b, b_sid)] = two_students(&app);
    let b_user = app.get(&format!("/api/v1/users/{b}"), &read).json();
    let b_last = b_user["last_name"].as_str().unwrap();

    // The person is freed, then found by name from the other account's page.
    let r = post(&app, &format!("/api/v1/users/{b}/unlink"), json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    let page = app.get(
        &format!("/users/{a}?people={}", crate::harness::enc(b_last)),
        &admin,
    );
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("id=\"people-found\""), "{}", page.body);
    let pick = format!("name=\"sourced_id\" value=\"{b_sid}\"");
    assert!(page.body.contains(&pick), "{}", page.body);
    assert!(page.body.contains("Change to this person"));
    let escaped = b_last.replace('&', "&amp;").replace('\'', "&#x27;");
    assert!(
        page.body
            .contains(&format!("id=\"people-search\" value=\"{escaped}\"")),
        "the box keeps the words"
    );
    // Viewers see no search results (they change nothing).
    let viewer = app.login("vera");
    let seen = app.get(
        &format!("/users/{a}?people={}", crate::harness::enc(b_last)),
        &viewer,
    );
    assert!(!seen.body.contains("id=\"people-found\""));

    // A made-up id: a problem banner, nothing changed.
    let r = app.request(
        Method::POST,
        &format!("/users/{a}/relink"),
        &admin,
        form(&[("source", "campus"), ("sourced_id", "usr-424242")]),
    );
    let shown = app.follow(&r, &admin);
    assert!(
        shown.body.contains("class=\"problem\"")
            && shown.body.contains("the SIS has no person usr-424242"),
        "{}",
        shown.body
    );
    assert_eq!(
        app.get(&format!("/api/v1/users/{a}"), &read).json()["sis"]["sourced_id"],
        a_sid.as_str()
    );

    // The candidate's button: the change is made and says who confirmed it.
    let r = app.request(
        Method::POST,
        &format!("/users/{a}/relink"),
        &admin,
        form(&[("source", "campus"), ("sourced_id", &b_sid)]),
    );
    let shown = app.follow(&r, &admin);
    assert!(
        shown
            .body
            .contains(&format!("SIS user changed from {a_sid} to {b_sid}"))
            && shown.body.contains("confirmed by the SIS"),
        "{}",
        shown.body
    );
    assert_eq!(
        app.get(&format!("/api/v1/users/{a}"), &read).json()["sis"]["sourced_id"],
        b_sid.as_str()
    );

    // The unlinked account's page offers the search with a source to choose, and a link.
    let page = app.get(
        &format!(
            "/users/{b}?people={}&people_source=campus",
            crate::harness::enc(&a_sid)
        ),
        &admin,
    );
    assert!(page.body.contains("Link to this person"), "{}", page.body);
    let r = app.request(
        Method::POST,
        &format!("/users/{b}/link"),
        &admin,
        form(&[("source", "campus"), ("sourced_id", &a_sid)]),
    );
    let shown = app.follow(&r, &admin);
    assert!(
        shown.body.contains("confirmed by the SIS"),
        "{}",
        shown.body
    );
}
