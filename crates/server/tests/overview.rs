//! The Overview and the Location Mappings preview, on SQLite and PostgreSQL: the
//! Authentication summary never shows the secret; every count links to a list with
//! exactly that many entries; a held run and open review cases come first; a run's status
//! is the same in the progress box and the table; a mapping change is previewed with the
//! accounts that move and whether the next sync will be held (and it is), and a location
//! that does not exist needs a confirmation.

use jiff::{Timestamp, ToSpan};
use reqwest::Method;
use serde_json::Value;

use crate::harness::{App, Auth, Options, SIM_SECRET, form};
use crate::on_both;

/// Entities and escapes askama writes into attributes, undone.
fn unescape(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&#x2f;", "/")
        .replace("&#x2F;", "/")
        .replace("&#47;", "/")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
}

/// The `href` of the element with `id`.
fn href_of(html: &str, id: &str) -> String {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {html}"));
    let start = html[..at].rfind("<a ").expect("an anchor");
    let tag = &html[start..at];
    let h = tag.find("href=\"").expect("an href") + 6;
    unescape(&tag[h..h + tag[h..].find('"').unwrap()])
}

/// The text of the element with `id` (up to its next tag).
fn text_of(html: &str, id: &str) -> String {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {html}"));
    let open = at + html[at..].find('>').unwrap() + 1;
    html[open..open + html[open..].find('<').unwrap()].to_owned()
}

/// The body rows of the table with `id` (rows holding a `<th>` are headers).
fn table_rows(html: &str, id: &str) -> usize {
    let Some(at) = html.find(&format!("id=\"{id}\"")) else {
        return 0;
    };
    let table = &html[at..at + html[at..].find("</table>").unwrap()];
    table
        .split("<tr")
        .skip(1)
        .filter(|row| !row.contains("<th"))
        .count()
}

/// The target of the page's "next page" link.
fn next_page(html: &str) -> Option<String> {
    let end = html.find(">next page</a>")?;
    let start = html[..end].rfind("href=\"")? + 6;
    Some(unescape(&html[start..start + html[start..].find('"')?]))
}

/// How many entries the list at `path` has, over all its pages: rows of the table `id`,
/// or, for the review queue, its case sections.
fn entries(app: &App, auth: &Auth, path: &str, id: &str) -> usize {
    let mut n = 0;
    let mut next = Some(path.to_owned());
    let mut pages = 0;
    while let Some(p) = next {
        let page = app.get(&p, auth);
        assert_eq!(page.status, 200, "{p}: {}", page.body);
        n += if id == "cases" {
            page.body.matches("<section class=\"case\"").count()
        } else {
            table_rows(&page.body, id)
        };
        next = next_page(&page.body);
        pages += 1;
        assert!(pages < 100, "{path}: too many pages");
    }
    n
}

fn number(html: &str, id: &str) -> usize {
    text_of(html, id)
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("#{id}: {e}"))
}

/// The sim, with credentials that expire in ten days.
fn expiring_sim() -> Options {
    Options {
        sim_users: Some(60),
        ..Options::default()
    }
}

fn the_overview_summarises_sources_and_every_count_opens_its_list(mut app: App) {
    let soon = Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date()
        .checked_add(10.days())
        .unwrap();
    app.configure_sim(&format!("credential_expires = \"{soon}\""));
    let write = Auth::Bearer(app.write_token.clone());
    let read = Auth::Bearer(app.read_token.clone());
    let owner = app.login("olivia");

    // Before anything ran: no token known, never validated.
    let page = app.get("/", &owner).body;
    assert!(page.contains("unknown: no sync or validation"), "{page}");
    assert!(page.contains("never validated"), "{page}");
    assert!(page.contains("No sync of campus has run yet"), "{page}");

    let v = app.request(
        Method::POST,
        "/api/v1/sources/campus/validate",
        &write,
        None,
    );
    assert_eq!(v.status, 200, "{}", v.body);
    let done = app.full_sync();
    let run = done["run_id"].as_i64().unwrap();
    let record = app.get(&format!("/api/v1/runs/{run}"), &read).json();

    let page = app.get("/", &owner).body;
    // Authentication: URL, key, secret only as "set", expiry, token lifetime, validation.
    let sim = app.sim.as_ref().unwrap();
    assert!(
        page.contains(&format!("<td class=\"auth-url\">{}</td>", sim.base_url())),
        "{page}"
    );
    assert!(
        page.contains(&format!(
            "<td class=\"auth-client-id\">{}</td>",
            sim::DEFAULT_CLIENT_ID
        )),
        "{page}"
    );
    assert!(
        page.contains("<td class=\"auth-secret\">set</td>"),
        "{page}"
    );
    assert!(!page.contains(SIM_SECRET), "the secret is never shown");
    assert!(
        page.contains(&format!("{soon} (10 day(s) left)")),
        "the expiry: {page}"
    );
    assert!(page.contains("auth-expiry warning"), "ten days is soon");
    assert!(
        page.contains("<td class=\"auth-token\">each access token lasts"),
        "the token's lifetime seen by the sync: {page}"
    );
    assert!(page.contains("every collection read completely"), "{page}");

    // The data changes: the run's numbers, each opening the items it counts.
    for outcome in ["created", "updated", "deactivated", "linked", "reactivated"] {
        let n = record["counts"][outcome].as_u64().unwrap() as usize;
        let href = format!("/runs/{run}?outcome={outcome}");
        assert!(
            page.contains(&format!(
                "<a href=\"{}\" class=\"n-{outcome}\">{n}</a>",
                href.replace('&', "&amp;")
            )),
            "{outcome} {n}: {page}"
        );
        assert_eq!(entries(&app, &owner, &href, "items"), n, "{href}");
    }
    assert!(record["counts"]["created"].as_u64().unwrap() > 0);
    // The chart, with its text alternative.
    assert!(page.contains("<svg") && page.contains("id=\"chart-campus\""));
    assert!(page.contains("role=\"img\""));
    let desc = text_of(&page, "chart-desc-campus");
    assert!(
        desc.contains(&format!("run {run} (full succeeded")),
        "{desc}"
    );
    assert!(
        desc.contains(&format!("{} created", record["counts"]["created"])),
        "{desc}"
    );

    // The progress box and the table agree: the stored run's status.
    assert!(
        page.contains("<span class=\"status succeeded\">succeeded</span>"),
        "{page}"
    );
    assert!(!page.contains("status running"), "{page}");

    // Every count opens a list of exactly that many.
    for (id, table) in [
        ("count-users", "users"),
        ("count-linked", "users"),
        ("count-unlinked", "users"),
        ("count-groups", "groups"),
        ("count-cases", "cases"),
    ] {
        let n = number(&page, id);
        let href = href_of(&page, &format!("{id}-link"));
        assert_eq!(entries(&app, &owner, &href, table), n, "{id} → {href}");
    }
    assert!(number(&page, "count-users") > 0 && number(&page, "count-groups") > 0);
    assert_eq!(number(&page, "count-held"), 0);

    // A viewer sees the same summary, never the secret.
    let viewer = app.login("vera");
    let page = app.get("/", &viewer).body;
    assert!(page.contains("<td class=\"auth-secret\">set</td>"));
    assert!(!page.contains(SIM_SECRET));
}

fn a_held_run_is_first_and_said_the_same_everywhere(app: App) {
    let owner = app.login("olivia");
    app.full_sync();
    let empty = app.faulty_sim("empty_users=1");
    app.point_source_at(&empty);
    let done = app.sync_full();
    assert_eq!(done["status"], "held", "{done}");
    let held = done["run_id"].as_i64().unwrap();

    let page = app.get("/", &owner).body;
    let attention = &page[page.find("id=\"attention\"").expect("the attention block")..];
    assert!(
        attention.find(&format!("id=\"held-{held}\"")).unwrap()
            < attention.find("id=\"counts\"").unwrap(),
        "the held run comes before the counts"
    );
    let record = app
        .get(
            &format!("/api/v1/runs/{held}"),
            &Auth::Bearer(app.read_token.clone()),
        )
        .json();
    let why = record["hold"][0]["detail"].as_str().unwrap();
    assert!(attention.contains(why), "why it is held ({why}): {page}");
    assert_eq!(number(&page, "count-held"), 1);
    assert_eq!(href_of(&page, "count-held-link"), format!("/runs/{held}"));
    // One status: the progress box and the table both say held, nothing says running.
    let progress = &page[page.find("class=\"progress\"").unwrap()..];
    let progress = &progress[..progress.find("</div>").unwrap()];
    assert!(progress.contains("status held"), "{progress}");
    assert!(progress.contains(&format!("open run {held}")), "{progress}");
    let deactivated = record["counts"]["deactivated"].as_u64().unwrap();
    assert!(deactivated > 0);
    assert!(
        progress.contains(&format!("deactivated {deactivated}")),
        "the stored counts: {progress}"
    );
    assert!(!page.contains("status running"), "{page}");
    assert!(
        page.contains("<td class=\"status held\">held</td>"),
        "{page}"
    );
    // The progress fragment htmx polls says the same.
    let fragment = app.get("/sync/campus/progress", &owner).body;
    assert!(fragment.contains("status held"), "{fragment}");
    assert!(!fragment.contains("hx-get"), "a finished run is not polled");
    app.stop_sim(empty);
}

fn open_review_cases_are_counted_and_listed(app: App) {
    // Two SIS people with one email, and that person's single sign-on account: two cases.
    let to = test_kit::copy_sample_district(
        &app.dir,
        "district",
        "usr-t-2b,active,2026-08-01T00:00:00Z,true,org-high-1,teacher,tnguyen2,,Tam,Nguyen,,T9002b,tam.nguyen@district.k12.us,,,,,\n",
    );
    app.configure(&format!(
        "[[source]]\nname = \"campus\"\nkind = \"oneroster-csv\"\npath = \"{}\"\n",
        to.display()
    ));
    app.store
        .import_accounts(
            &[store::NewAccountRow {
                email: "tam.nguyen@district.k12.us".into(),
                first_name: Some("Tam".into()),
                last_name: Some("Nguyen".into()),
                username: None,
            }],
            "google",
            Timestamp::now(),
        )
        .unwrap();
    app.full_sync();
    let owner = app.login("olivia");
    let page = app.get("/", &owner).body;
    assert_eq!(number(&page, "count-cases"), 2);
    assert!(page.contains("id=\"open-cases\""), "{page}");
    assert!(
        page.find("id=\"open-cases\"").unwrap() < page.find("id=\"counts\"").unwrap(),
        "the cases come first"
    );
    let href = href_of(&page, "count-cases-link");
    assert_eq!(href, "/review?status=open");
    assert_eq!(entries(&app, &owner, &href, "cases"), 2);
    // A CSV source: its package, no credentials.
    assert!(page.contains("OneRoster CSV package"), "{page}");
    assert!(page.contains(&format!("<td class=\"auth-path\">{}", to.display())));
    assert!(!page.contains("auth-secret"), "a package has no secret");
}

/// The orgs of the source with the people each has, from the API.
fn orgs(app: &App) -> Vec<Value> {
    app.get(
        "/api/v1/sources/campus/locations",
        &Auth::Bearer(app.read_token.clone()),
    )
    .json()["orgs"]
        .as_array()
        .unwrap()
        .clone()
}

fn users_at(app: &App, location: &str) -> usize {
    let mut n = 0;
    let mut after = 0;
    loop {
        let page = app
            .get(
                &format!(
                    "/api/v1/users?active=true&limit=1000&after={after}&location={}",
                    crate::harness::enc(location)
                ),
                &Auth::Bearer(app.read_token.clone()),
            )
            .json();
        let items = page["items"].as_array().unwrap();
        n += items.len();
        match items.last() {
            Some(u) if items.len() == 1000 => after = u["id"].as_i64().unwrap(),
            _ => return n,
        }
    }
}

fn a_location_change_is_previewed_and_a_new_location_confirmed(app: App) {
    let admin = app.login("adam");
    let read = Auth::Bearer(app.read_token.clone());
    app.full_sync();
    // The smallest school with people: moving it alone is no mass change.
    let smallest = orgs(&app)
        .into_iter()
        .filter(|o| o["is_school"] == true && o["people"].as_u64().unwrap() > 1)
        .min_by_key(|o| o["people"].as_u64().unwrap())
        .unwrap();
    let school = smallest["sourced_id"].as_str().unwrap().to_owned();
    let people = smallest["people"].as_u64().unwrap();
    // Every active linked account (none has a location yet).
    let population = app
        .get("/api/v1/users?linked=true&active=true&limit=1000", &read)
        .json()["items"]
        .as_array()
        .unwrap()
        .len();
    assert!(population > 50, "the safeguards judge shares: {population}");

    // The form offers the directory's locations (none yet) and a new one.
    let page = app.get("/locations?source=campus", &admin).body;
    assert!(
        page.contains(&format!("<select name=\"map.{school}\"")),
        "{page}"
    );
    assert!(page.contains("New location…"));

    // Preview a first mapping: every linked account gets a location; more than half of
    // them change, so the next sync will be held.
    let preview = app.request(
        Method::POST,
        "/locations/campus/preview",
        &admin,
        form(&[
            ("default", "+new"),
            ("default_new", "District Office"),
            (&format!("map.{school}"), "+new"),
            (&format!("new.{school}"), "Cedar Campus"),
        ]),
    );
    assert_eq!(preview.status, 200, "{}", preview.body);
    let html = &preview.body;
    assert!(
        html.contains(&format!(
            "would change the location of {population} of its {population} active linked accounts (100.0 %)"
        )),
        "{html}"
    );
    assert!(
        html.contains(&format!(
            "{people} accounts move from no location to Cedar Campus"
        )),
        "{html}"
    );
    assert!(
        html.contains(
            "The next sync will be held for approval because it changes more than 50 % of the"
        ),
        "{html}"
    );
    assert!(html.contains("id=\"new-locations\""), "{html}");
    assert!(html.contains("Cedar Campus, District Office"), "{html}");
    assert!(html.contains("id=\"confirm-new\""));
    assert!(html.contains(&format!("name=\"map.{school}\" value=\"Cedar Campus\"")));
    assert!(html.contains("name=\"default\" value=\"District Office\""));
    assert!(
        app.store.load_config().unwrap().sources[0]
            .locations
            .default
            .is_none(),
        "a preview saves nothing"
    );

    // Confirm without ticking the box: refused, nothing saved.
    let mapping = [
        ("default", "District Office"),
        (&format!("map.{school}") as &str, "Cedar Campus"),
    ];
    let r = app.request(Method::POST, "/locations/campus", &admin, form(&mapping));
    assert_eq!(r.status, 303, "{}", r.body);
    let back = app.follow(&r, &admin).body;
    assert!(
        back.contains("no location yet: preview the change and tick the box"),
        "{back}"
    );
    assert!(
        app.store.load_config().unwrap().sources[0]
            .locations
            .map
            .is_empty()
    );

    // Confirmed: saved; the next sync is held as the preview said.
    let mut confirmed = mapping.to_vec();
    confirmed.push(("confirm_new", "1"));
    let r = app.request(Method::POST, "/locations/campus", &admin, form(&confirmed));
    assert_eq!(r.status, 303, "{}", r.body);
    let back = app.follow(&r, &admin).body;
    assert!(
        back.contains(
            "location mappings saved: the next sync applies them, and will be held for approval"
        ),
        "{back}"
    );
    let s = &app.store.load_config().unwrap().sources[0];
    assert_eq!(s.locations.map[&school], "Cedar Campus");
    assert_eq!(s.locations.default.as_deref(), Some("District Office"));
    let done = app.sync_full();
    assert_eq!(done["status"], "held", "the preview said so: {done}");
    let held = done["run_id"].as_i64().unwrap();
    let run = app.get(&format!("/api/v1/runs/{held}"), &read).json();
    assert!(run["hold"].to_string().contains("updates"), "{run}");
    let r = app.request(
        Method::POST,
        &format!("/api/v1/runs/{held}/approve"),
        &Auth::Bearer(app.write_token.clone()),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let at_cedar = users_at(&app, "Cedar Campus");
    assert!(at_cedar as u64 >= people, "{at_cedar} at Cedar Campus");

    // Now both exist: the form offers them, and moving one school is a small change.
    let page = app.get("/locations?source=campus", &admin).body;
    assert!(
        page.contains("<option value=\"Cedar Campus\" selected>"),
        "{page}"
    );
    let preview = app.request(
        Method::POST,
        "/locations/campus/preview",
        &admin,
        form(&[
            ("default", "District Office"),
            ("default_new", ""),
            (&format!("map.{school}"), "District Office"),
            (&format!("new.{school}"), ""),
        ]),
    );
    assert_eq!(preview.status, 200, "{}", preview.body);
    let html = &preview.body;
    assert!(
        html.contains(&format!(
            "{people} accounts move from Cedar Campus to District Office"
        )),
        "{html}"
    );
    assert!(
        !html.contains("id=\"relocation-hold\""),
        "a small move is not held: {html}"
    );
    assert!(
        !html.contains("id=\"new-locations\""),
        "nothing new: {html}"
    );
    let r = app.request(
        Method::POST,
        "/locations/campus",
        &admin,
        form(&[
            ("default", "District Office"),
            (&format!("map.{school}"), "District Office"),
        ]),
    );
    assert_eq!(r.status, 303);
    let back = app.follow(&r, &admin).body;
    assert!(
        back.contains("location mappings saved: the next sync applies them"),
        "{back}"
    );
    let done = app.full_sync();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(
        users_at(&app, "Cedar Campus") as u64 <= at_cedar as u64 - people,
        "the school's accounts moved"
    );

    // "New location…" with no name says what to do.
    let r = app.request(
        Method::POST,
        "/locations/campus/preview",
        &admin,
        form(&[(&format!("map.{school}") as &str, "+new")]),
    );
    assert_eq!(r.status, 303);
    let back = app.follow(&r, &admin).body;
    assert!(back.contains("no name is typed beside it"), "{back}");
}

fn populous_sim() -> Options {
    crate::harness::with_sim()
}

on_both!(overview_page, crate::overview::expiring_sim; the_overview_summarises_sources_and_every_count_opens_its_list, a_held_run_is_first_and_said_the_same_everywhere);
on_both!(overview_cases, crate::harness::plain; open_review_cases_are_counted_and_listed);
on_both!(location_preview, crate::overview::populous_sim; a_location_change_is_previewed_and_a_new_location_confirmed);
