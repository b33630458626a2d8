//! A real browser walks an `identity_taken` review case: the SIS gives Tam Nguyen the
//! address a single sign-on account already has, the review queue offers the merge and
//! *Keep apart*, the admin keeps them apart; the case shows as resolved with the decision,
//! Tam's page records it, and the next sync asks nothing again and still leaves the
//! address where it is.

use crate::browser::signed_in;
use crate::harness::{App, Auth, Backend, plain};

#[test]
fn an_admin_keeps_two_accounts_apart_in_a_real_browser() {
    let Some(app) = App::start(Backend::Sqlite, plain()) else {
        return;
    };
    let (tam, other, district) = crate::identities::tam_wants_a_taken_address(&app);
    let case = app
        .store
        .review_cases(Some("open"), None, 0)
        .unwrap()
        .into_iter()
        .find(|c| c.reason_code == "identity_taken")
        .expect("an identity_taken case");

    let Some(b) = signed_in(&app, "keep-apart", "adam", "/review") else {
        return;
    };
    b.wait_for(&format!("Case {}", case.id), 10);
    let page = b.source();
    assert!(
        page.contains(&format!("id=\"merge-{}-{other}\"", case.id)),
        "the merge is offered too: {page}"
    );
    b.shot("queue");
    b.click(&format!("#keep-apart-{}", case.id));
    b.wait_for(&format!("kept apart from account #{other}"), 10);
    b.shot("kept-apart");
    assert!(b.url().contains("/review"), "{}", b.url());
    assert!(
        !b.source().contains(&format!("id=\"case-{}\"", case.id)),
        "no longer in the open queue"
    );

    b.go(&format!("{}/review?status=resolved", app.url));
    b.wait_for(&format!("Case {}", case.id), 10);
    let page = b.source();
    assert!(page.contains("kept apart from account"), "{page}");
    assert!(
        !page.contains(&format!("id=\"keep-apart-{}\"", case.id)),
        "a resolved case offers nothing: {page}"
    );
    b.shot("resolved");

    b.go(&format!("{}/users/{tam}", app.url));
    b.wait_for(&format!("account #{other}: different people"), 10);
    b.shot("history");

    // The next sync writes Tam's other change, not the address, and asks nothing again.
    let users = district.join("users.csv");
    let text = std::fs::read_to_string(&users).unwrap();
    std::fs::write(&users, text.replace(",T9002,", ",T9002-B,")).unwrap();
    app.full_sync();
    b.go(&format!("{}/review", app.url));
    b.wait_for("No open cases.", 10);
    let now = app.store.find_user(&tam.to_string()).unwrap().unwrap().user;
    assert_eq!(
        (now.email.as_deref(), now.identifier.as_deref()),
        (Some("tam.nguyen@district.k12.us"), Some("T9002-B"))
    );
    let read = Auth::Bearer(app.read_token.clone());
    assert_eq!(
        app.get("/api/v1/review", &read).json()["items"],
        serde_json::json!([])
    );
}
