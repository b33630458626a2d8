//! One person, one account, through the API and the console on SQLite and PostgreSQL:
//! the duplicates report proposes no namesakes (different SIS people, the unmapped
//! default location) and finds a single sign-on account with the SIS account of the same
//! person, with the evidence in words; two new people of one run never share a username
//! (the second waits in a review case naming the first's account); *keep apart* is a
//! stored decision the next syncs keep.

use jiff::Timestamp;
use reqwest::Method;
use rostersync_core::directory::AccountId;
use serde_json::{Value, json};
use store::NewAccountRow;

use crate::harness::{App, Auth, Body};
use crate::on_both;

fn user_row(id: &str, role: &str, username: &str, first: &str, last: &str, email: &str) -> String {
    format!(
        "{id},active,2026-08-01T00:00:00Z,true,org-elem-1,{role},{username},,{first},{last},,{id},{email},,,,KG,\n"
    )
}

/// The sample district with namesakes: a second Ava Johnson in her grade and school, and
/// a teacher and a student who share a name and an email local part.
fn namesakes() -> String {
    user_row(
        "usr-s-30",
        "student",
        "s100030",
        "Ava",
        "Johnson",
        "ava.johnson2@students.district.k12.us",
    ) + &user_row(
        "usr-t-30",
        "teacher",
        "qzephyrine",
        "Quinn",
        "Zephyrine",
        "quinn.zephyrine@district.k12.us",
    ) + &user_row(
        "usr-s-31",
        "student",
        "s100031",
        "Quinn",
        "Zephyrine",
        "quinn.zephyrine@students.district.k12.us",
    )
}

fn duplicates(app: &App) -> Vec<Value> {
    let r = app.get(
        "/api/v1/reports/duplicates",
        &Auth::Bearer(app.read_token.clone()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["items"].as_array().unwrap().clone()
}

fn the_duplicates_report_tells_people_apart(app: App) {
    app.csv_district(
        &namesakes(),
        "[source.locations]\ndefault = \"District Office\"\n",
    );
    app.full_sync();
    let groups = duplicates(&app);
    assert!(
        groups.is_empty(),
        "namesakes are not one person: {groups:#?}"
    );
    let admin = app.login("adam");
    let page = app.get("/reports?kind=duplicates", &admin).body;
    assert!(page.contains("Nothing to report."), "{page}");

    // Mia Johnson's own single sign-on account: found with her SIS account.
    let twin = app.sso("mia.johnson@district.k12.us", "Mia", "Johnson");
    let mia = app
        .store
        .find_user("mia.johnson@students.district.k12.us")
        .unwrap()
        .unwrap()
        .user
        .id;
    let groups = duplicates(&app);
    assert_eq!(groups.len(), 1, "{groups:#?}");
    let ids: Vec<AccountId> = groups[0]["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| AccountId(a["id"].as_i64().unwrap()))
        .collect();
    assert_eq!(ids, [mia, twin]);
    let evidence = groups[0]["evidence"].as_array().unwrap();
    let kinds: Vec<&str> = evidence
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["email_local_part", "same_name", "one_linked"]);
    assert_eq!(
        evidence[2]["detail"],
        format!("#{mia} is linked to the SIS (campus: usr-s-3) and #{twin} is not")
    );
    let page = app.get("/reports?kind=duplicates", &admin).body;
    assert!(
        page.contains(
            "the same local part mia.johnson on different domains: email mia.johnson@students.district.k12.us and email mia.johnson@district.k12.us"
        ),
        "the evidence in words: {page}"
    );
    assert!(!page.contains("District Office</li>"), "{page}");
}

fn two_new_people_never_share_a_username(app: App) {
    // Kim signs in with single sign-on as `kdoe` before the SIS knows her.
    app.store
        .import_accounts(
            &[NewAccountRow {
                email: "kim.home@example.com".to_owned(),
                first_name: Some("Kim".to_owned()),
                last_name: Some("Doe".to_owned()),
                username: Some("KDoe".to_owned()),
            }],
            "google",
            Timestamp::now(),
        )
        .unwrap();
    let kim_sso = app.store.find_user("kdoe").unwrap().unwrap().user.id;
    app.csv_district(
        &(user_row(
            "usr-s-22",
            "student",
            "kdoe",
            "Kim",
            "Doe",
            "kim.doe@students.district.k12.us",
        ) + &user_row(
            "usr-s-20",
            "student",
            "jdoe",
            "Jo",
            "Doe",
            "jo.doe@students.district.k12.us",
        ) + &user_row(
            "usr-s-21",
            "student",
            "JDOE",
            "Jay",
            "Doe",
            "jay.doe@students.district.k12.us",
        )),
        "",
    );
    app.full_sync();
    let read = Auth::Bearer(app.read_token.clone());
    let cases = app.get("/api/v1/review", &read).json();
    let case = cases["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["sourced_id"] == "usr-s-21")
        .unwrap_or_else(|| panic!("{cases:#}"))
        .clone();
    let jo = app.store.find_user("jdoe").unwrap().unwrap().user.id;
    assert_eq!(case["reason_code"], "identity_taken");
    assert_eq!(case["candidates"][0]["id"], jo.0);
    assert!(
        app.store
            .find_user("jay.doe@students.district.k12.us")
            .unwrap()
            .is_none()
    );

    // The person has no account to merge, and the candidate is another SIS person's (no
    // link either): the console offers keep apart (two people) and ignore (the SIS lists
    // one person twice).
    let admin = app.login("adam");
    let html = app.get("/review", &admin).body;
    let id = case["id"].as_i64().unwrap();
    assert!(html.contains(&format!("id=\"keep-apart-{id}\"")), "{html}");
    assert!(html.contains(&format!("id=\"ignore-{id}\"")), "{html}");
    assert!(!html.contains(&format!("id=\"merge-{id}-")), "{html}");
    assert!(!html.contains(&format!("id=\"link-{id}-{jo}\"")), "{html}");

    // Kim's SIS record wants the username her sign-on account has: the case offers the
    // link (one person), and linking settles it on the next sync.
    let kim_case = cases["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["sourced_id"] == "usr-s-22")
        .unwrap_or_else(|| panic!("{cases:#}"))["id"]
        .as_i64()
        .unwrap();
    assert!(
        html.contains(&format!("id=\"link-{kim_case}-{kim_sso}\"")),
        "{html}"
    );
    let r = app.request(
        Method::POST,
        &format!("/review/{kim_case}/resolve"),
        &admin,
        crate::harness::form(&[("resolution", "link"), ("user", &kim_sso.to_string())]),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    app.full_sync();
    let kim = app.store.find_user(&kim_sso.to_string()).unwrap().unwrap();
    assert_eq!(
        kim.sis.map(|s| s.sourced_id).as_deref(),
        Some("usr-s-22"),
        "one person, one account"
    );
    assert_eq!(
        kim.user.email.as_deref(),
        Some("kim.doe@students.district.k12.us")
    );
    assert_eq!(
        app.store
            .find_user("kim.home@example.com")
            .unwrap()
            .unwrap()
            .user
            .id,
        kim_sso,
        "her old address finds her (an alias)"
    );
}

/// The sample district synced, then the SIS gives Tam Nguyen the address a single
/// sign-on account already has, and syncs again: an `identity_taken` case. Tam's account
/// and the other one, and the district's folder.
pub fn tam_wants_a_taken_address(app: &App) -> (AccountId, AccountId, std::path::PathBuf) {
    let district = app.csv_district("", "");
    app.full_sync();
    let tam = app
        .store
        .find_user("tam.nguyen@district.k12.us")
        .unwrap()
        .unwrap()
        .user
        .id;
    let other = app.sso("tam.new@district.k12.us", "Tam", "Other");
    let users = district.join("users.csv");
    let text = std::fs::read_to_string(&users)
        .unwrap()
        .replace("tam.nguyen@district.k12.us", "tam.new@district.k12.us");
    std::fs::write(&users, &text).unwrap();
    app.full_sync();
    (tam, other, district)
}

fn keep_apart_is_stored_and_kept(app: App) {
    let (tam, other, district) = tam_wants_a_taken_address(&app);
    let read = Auth::Bearer(app.read_token.clone());
    let write = Auth::Bearer(app.write_token.clone());
    let cases = app.get("/api/v1/review", &read).json()["items"].clone();
    let case = cases
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["reason_code"] == "identity_taken")
        .unwrap_or_else(|| panic!("{cases:#}"))
        .clone();
    let id = case["id"].as_i64().unwrap();
    let path = format!("/api/v1/review/{id}/resolve");
    let body = || Some(Body::Json(json!({"resolution": "keep_apart"})));

    let r = app.request(Method::POST, &path, &read, body());
    assert_eq!(r.status, 403, "a read token decides nothing: {}", r.body);
    let r = app.request(
        Method::POST,
        &path,
        &write,
        Some(Body::Json(json!({"resolution": "apart"}))),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("keep_apart"), "{}", r.body);

    let r = app.request(Method::POST, &path, &write, body());
    assert_eq!(r.status, 200, "{}", r.body);
    let resolved = r.json();
    assert_eq!(resolved["status"], "resolved");
    assert!(
        resolved["resolution"]
            .as_str()
            .unwrap()
            .starts_with(&format!("kept apart from account #{other}")),
        "{resolved:#}"
    );
    let r = app.request(Method::POST, &path, &write, body());
    assert_eq!(r.status, 409, "once: {}", r.body);

    // Both accounts' pages say so.
    let admin = app.login("adam");
    for (user, names) in [(tam, other), (other, tam)] {
        let page = app.get(&format!("/users/{user}"), &admin).body;
        assert!(
            page.contains("kept_apart") && page.contains(&format!("#{names}")),
            "#{user}'s history: {page}"
        );
    }

    // The next syncs: Tam's new identifier is written, the address is not, and nothing is
    // asked again for the pair.
    let users = district.join("users.csv");
    let text = std::fs::read_to_string(&users).unwrap();
    std::fs::write(&users, text.replace(",T9002,", ",T9002-B,")).unwrap();
    app.full_sync();
    app.full_sync();
    let now = app.store.find_user(&tam.to_string()).unwrap().unwrap().user;
    assert_eq!(
        (now.email.as_deref(), now.identifier.as_deref()),
        (Some("tam.nguyen@district.k12.us"), Some("T9002-B"))
    );
    let open = app.get("/api/v1/review", &read).json()["items"].clone();
    assert_eq!(open, json!([]), "no case reopened");

    // Keep apart answers identity cases only.
    app.csv_district(
        "usr-t-2b,active,2026-08-01T00:00:00Z,true,org-high-1,teacher,tnguyen2,,Tam,Nguyen,,T9002b,tam.nguyen@district.k12.us,,,,,\n",
        "",
    );
    app.full_sync();
    let other_case = app.get("/api/v1/review", &read).json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["reason_code"] == "linked_to_another")
        .map(|c| c["id"].as_i64().unwrap())
        .expect("a case that is not about a taken email or username");
    let r = app.request(
        Method::POST,
        &format!("/api/v1/review/{other_case}/resolve"),
        &write,
        body(),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("keep apart answers only"), "{}", r.body);
}

on_both!(identities, crate::harness::plain;
    the_duplicates_report_tells_people_apart,
    two_new_people_never_share_a_username,
    keep_apart_is_stored_and_kept,
);
