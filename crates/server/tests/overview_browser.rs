//! A real browser reads the Overview (the Authentication summary without the secret, the
//! chart of the last runs and its table, counts that open their lists) and walks a
//! location mapping change: preview, Cancel, preview again, a confirmation the browser
//! will not skip, Confirm.

use crate::browser::signed_in;
use crate::harness::{App, Backend, SIM_SECRET, with_sim};

#[test]
fn an_admin_reads_the_overview_and_previews_a_location_change_in_a_real_browser() {
    let Some(app) = App::start(Backend::Sqlite, with_sim()) else {
        return;
    };
    app.full_sync();
    // A second full sync: nothing changes (a flat bar beside the first import's).
    let run = app.full_sync()["run_id"].as_i64().unwrap();
    let Some(b) = signed_in(&app, "overview", "adam", "/") else {
        return;
    };
    let url = &app.url;

    // The Overview: the source's Authentication summary, its changes and the chart.
    b.go(&format!("{url}/"));
    b.wait_for("id=\"auth-campus\"", 10);
    let html = b.source();
    assert!(
        html.contains("<td class=\"auth-secret\">set</td>"),
        "{html}"
    );
    assert!(!html.contains(SIM_SECRET), "the secret is never shown");
    assert!(html.contains("each access token lasts"), "{html}");
    assert!(html.contains("id=\"chart-campus\""), "{html}");
    assert!(
        html.contains(&format!("<a href=\"/runs/{run}?outcome=created\"")),
        "{html}"
    );
    b.shot("overview");
    b.go(&format!("{url}/#source-campus"));
    b.wait_for("id=\"chart-campus\"", 10);
    b.shot("overview-changes");
    // A count opens its list.
    let linked: usize = {
        let at = html.find("id=\"count-linked\"").unwrap();
        let open = at + html[at..].find('>').unwrap() + 1;
        html[open..open + html[open..].find('<').unwrap()]
            .parse()
            .unwrap()
    };
    assert!(linked > 0);
    b.click("#count-linked-link");
    b.wait_for("id=\"users\"", 10);
    assert!(b.url().ends_with("/users?linked=true"), "{}", b.url());
    // A number in the changes table opens the run's items of that outcome.
    b.go(&format!("{url}/"));
    b.click(&format!(
        "#changes-campus a[href='/runs/{run}?outcome=created']"
    ));
    b.wait_for("id=\"items\"", 10);
    assert!(
        b.url().ends_with(&format!("/runs/{run}?outcome=created")),
        "{}",
        b.url()
    );

    // Location Mappings: existing locations to choose from, or a new one, previewed.
    let school = app
        .store
        .sis_orgs("campus")
        .unwrap()
        .into_iter()
        .filter(|o| o.is_school && o.people > 1)
        .min_by_key(|o| o.people)
        .unwrap();
    b.go(&format!("{url}/locations"));
    b.wait_for("id=\"org-locations\"", 10);
    let preview = |b: &crate::browser::Browser| {
        b.click(&format!(
            "select[name='map.{}'] option[value='+new']",
            school.sourced_id
        ));
        b.fill(
            &format!("input[name='new.{}']", school.sourced_id),
            "Cedar Campus",
        );
        b.click("#default-location option[value='+new']");
        b.fill("#default-location-new", "District Office");
        b.click("#save-locations");
        b.wait_for("id=\"relocation-summary\"", 10);
    };
    preview(&b);
    let html = b.source();
    assert!(
        html.contains(&format!(
            "{} accounts move from no location to Cedar Campus",
            school.people
        )),
        "{html}"
    );
    assert!(html.contains("will be held for approval"), "{html}");
    assert!(html.contains("id=\"new-locations\""), "{html}");
    b.shot("location-preview");
    // Cancel: back to the form, nothing saved.
    b.click("#cancel-locations");
    b.wait_for("id=\"org-locations\"", 10);
    assert!(
        app.store.load_config().unwrap().sources[0]
            .locations
            .map
            .is_empty()
    );

    // Confirm without ticking "create": the browser keeps the page (the box is required).
    preview(&b);
    b.click("#confirm-locations");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        b.source().contains("id=\"relocation-summary\""),
        "still the preview"
    );
    assert!(
        app.store.load_config().unwrap().sources[0]
            .locations
            .map
            .is_empty()
    );
    b.click("#confirm-new");
    b.click("#confirm-locations");
    b.wait_for("location mappings saved", 10);
    b.shot("locations-saved");
    let s = &app.store.load_config().unwrap().sources[0];
    assert_eq!(s.locations.map[&school.sourced_id], "Cedar Campus");
    assert_eq!(s.locations.default.as_deref(), Some("District Office"));
}
