//! What a console form did is said on the next page, and only text the server stored for
//! that session is: a link with `?msg=` or `?problem=` shows nothing, the redirect carries
//! only a `flash=` id, the message shows once, and only to the session it was for.

use reqwest::Method;

use crate::harness::{App, Auth, form};
use crate::on_both;

const FORGED: &str = "Sign-in moved: enter your password at evil.example";

fn banner(html: &str) -> bool {
    html.contains("class=\"flash\"") || html.contains("class=\"problem\" role=\"alert\"")
}

fn no_page_shows_text_from_its_url(app: App) {
    let owner = app.login("olivia");
    let text = crate::harness::enc(FORGED);
    for path in [
        "/",
        "/settings",
        "/settings?source=campus",
        "/locations",
        "/runs",
        "/review",
        "/models",
        "/users",
        "/audit",
    ] {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = format!("{path}{sep}msg={text}&problem={text}&flash={text}");
        let page = app.get(&url, &owner);
        assert_eq!(page.status, 200, "{url}: {}", page.body);
        assert!(!page.body.contains("evil.example"), "{url}:\n{}", page.body);
        assert!(!banner(&page.body), "{url}: no banner");
    }
}

fn a_message_reaches_its_session_once(app: App) {
    let owner = app.login("olivia");
    let admin = app.login("adam");
    // Sources are offered for tickets by default: clearing the box changes it.
    let r = app.request(Method::POST, "/models", &owner, form(&[]));
    assert_eq!(r.status, 303, "{}", r.body);
    let to = r.location();
    assert!(to.starts_with("/models?flash="), "{to}");
    assert!(
        !to.contains("saved") && !to.contains("msg=") && !to.contains("problem="),
        "no text in the URL: {to}"
    );
    // Another session following the same link sees nothing (and does not use it up).
    assert!(!banner(&app.follow(&r, &admin).body));
    let page = app.follow(&r, &owner);
    assert!(
        page.body
            .contains("<p class=\"flash\" role=\"status\">saved</p>"),
        "{}",
        page.body
    );
    assert!(!banner(&app.follow(&r, &owner).body), "shown once");

    // A problem is shown as one.
    let r = app.request(
        Method::POST,
        "/review/987654/resolve",
        &owner,
        form(&[("resolution", "ignore")]),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(
        r.location().starts_with("/review?flash="),
        "{}",
        r.location()
    );
    let page = app.follow(&r, &owner);
    assert!(
        page.body.contains("class=\"problem\" role=\"alert\"") && page.body.contains("987654"),
        "{}",
        page.body
    );

    // A token has no session to keep a message for: the redirect is plain.
    let r = app.request(
        Method::POST,
        "/models",
        &Auth::Bearer(app.write_token.clone()),
        form(&[]),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/models");
}

on_both!(flash, crate::harness::with_sim;
    no_page_shows_text_from_its_url,
    a_message_reaches_its_session_once,
);
