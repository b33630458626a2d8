//! Sign-in under attack: attempts counted before their password is checked (parallel
//! guesses get no more checks than the limit), slowed down per account name and client
//! address rather than locked (the owner signs in from elsewhere), the client address from
//! X-Forwarded-For only behind a trusted proxy, one argon2 check whatever the account, the
//! page after sign-in always on this site, and the sign-in page's problem said only in its
//! own words.

use server::throttle::PAIR;

use crate::harness::{App, Auth, Options, PASSWORD, hidden, set_cookie};
use crate::on_both;

const WRONG: &str = "not the password";

fn checks(app: &App) -> u64 {
    app.server_state().throttle.checks()
}

fn retry_after(r: &crate::harness::Reply) -> u64 {
    r.headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After on {}: {:?}", r.status, r.headers))
}

fn parallel_wrong_passwords_are_counted_before_they_are_checked(app: App) {
    let form = app.get("/login", &Auth::None);
    let cookie = set_cookie(&form.headers, "rs_login").unwrap();
    let csrf = hidden(&form.body, "csrf");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let before = checks(&app);
    let statuses: Vec<u16> = app.runtime.block_on(async {
        let tasks: Vec<_> = (0..60)
            .map(|i| {
                let request = client
                    .post(format!("{}/login", app.url))
                    .header("cookie", format!("rs_login={cookie}"))
                    .form(&[
                        ("name", "olivia".to_owned()),
                        ("password", format!("{WRONG} {i}")),
                        ("csrf", csrf.clone()),
                    ]);
                tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    let checked = checks(&app) - before;
    let refused = statuses.iter().filter(|s| **s == 303).count() as u64;
    let slowed = statuses.iter().filter(|s| **s == 429).count() as u64;
    assert_eq!(refused + slowed, 60, "{statuses:?}");
    assert_eq!(
        checked, refused,
        "every answered guess had its password checked, no other did"
    );
    assert_eq!(
        checked,
        u64::from(PAIR.free),
        "60 guesses at once, {} password checks: {statuses:?}",
        checked
    );
    // The clock has not moved: the next attempt, even the right password, waits.
    let r = app.sign_in("olivia", PASSWORD, "/", None);
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(retry_after(&r) >= 1);
    assert!(
        r.body.contains("Too many failed sign-ins") && r.body.contains("id=\"sign-in\""),
        "the form again, with the reason: {}",
        r.body
    );
    assert_eq!(checks(&app) - before, checked, "no check while slowed down");
}

pub fn proxied() -> Options {
    Options {
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        ..Options::default()
    }
}

fn an_attacked_name_still_signs_in_from_elsewhere(app: App) {
    let attacker = Some("203.0.113.66");
    for _ in 0..PAIR.free {
        let r = app.sign_in("olivia", WRONG, "/", attacker);
        assert_eq!(r.status, 303, "{}", r.body);
        assert!(
            r.location().contains("problem=credentials"),
            "{}",
            r.location()
        );
    }
    let r = app.sign_in("olivia", WRONG, "/", attacker);
    assert_eq!(r.status, 429, "the sixth guess from there waits");
    let wait = retry_after(&r);
    assert!(
        r.body.contains(&format!("wait {wait} second")),
        "{}",
        r.body
    );
    // The right password from the attacker's address waits too…
    assert_eq!(app.sign_in("olivia", PASSWORD, "/", attacker).status, 429);
    // … and so does a guess that names another client left of the proxy's entry.
    assert_eq!(
        app.sign_in("olivia", WRONG, "/", Some("198.51.100.20, 203.0.113.66"))
            .status,
        429,
        "only the right-most untrusted address counts"
    );
    // The owner, from another address, is not held up.
    let r = app.sign_in("olivia", PASSWORD, "/", Some("198.51.100.20"));
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(set_cookie(&r.headers, "rs_session").is_some());
    // Slowed down, not locked: after the wait, the attacker's address may try again.
    app.clock
        .set(app.clock_now() + jiff::SignedDuration::from_secs(wait as i64));
    assert_eq!(
        app.sign_in("olivia", WRONG, "/", attacker).status,
        303,
        "one more guess after the wait"
    );
    let r = app.sign_in("olivia", PASSWORD, "/", attacker);
    assert_eq!(r.status, 429, "and then a longer wait");
    assert!(retry_after(&r) > wait, "the wait doubles");
}

fn forwarded_for_is_ignored_without_a_trusted_proxy(app: App) {
    // Every guess claims another address; the server counts its TCP peer.
    for i in 0..PAIR.free {
        let claimed = format!("203.0.113.{i}");
        let r = app.sign_in("olivia", WRONG, "/", Some(&claimed));
        assert_eq!(r.status, 303, "{}", r.body);
    }
    let r = app.sign_in("olivia", WRONG, "/", Some("198.51.100.99"));
    assert_eq!(r.status, 429, "a made-up X-Forwarded-For escapes nothing");
    // Another name from the same address is not slowed down.
    let r = app.sign_in("adam", PASSWORD, "/", None);
    assert_eq!(r.status, 303);
    assert!(set_cookie(&r.headers, "rs_session").is_some());
}

fn every_account_costs_one_password_check(app: App) {
    let before = checks(&app);
    let r = app.sign_in("nobody-by-this-name", WRONG, "/", None);
    assert_eq!(r.status, 303);
    assert!(r.location().contains("problem=credentials"));
    assert_eq!(checks(&app) - before, 1, "an unknown name is checked too");
    let r = app.sign_in("vera", WRONG, "/", None);
    assert_eq!(r.status, 303);
    assert_eq!(checks(&app) - before, 2);
    if app.disable_console_account("vera") {
        let r = app.sign_in("vera", PASSWORD, "/", None);
        assert_eq!(r.status, 303, "{}", r.body);
        assert!(
            r.location().contains("problem=credentials")
                && set_cookie(&r.headers, "rs_session").is_none(),
            "a disabled account does not sign in"
        );
        assert_eq!(
            checks(&app) - before,
            3,
            "a disabled account is checked too"
        );
    }
}

fn the_page_after_sign_in_is_on_this_site(app: App) {
    // The form keeps only a path of this site.
    let page = app.get("/login?next=/%09/evil.example", &Auth::None);
    assert_eq!(hidden(&page.body, "next"), "/");
    let page = app.get("/login?next=/runs/1", &Auth::None);
    assert_eq!(hidden(&page.body, "next"), "/runs/1");
    // And so does the sign-in itself, whatever was posted.
    for (next, to) in [
        ("/\t/evil.example", "/"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("/runs?source=campus", "/runs?source=campus"),
    ] {
        let r = app.sign_in("adam", PASSWORD, next, None);
        assert_eq!(r.status, 303, "{next:?}: {}", r.body);
        assert_eq!(r.location(), to, "{next:?}");
    }
    // After a wrong password the form comes back with the same safe `next`.
    let r = app.sign_in("adam", WRONG, "/\t/evil.example", None);
    assert_eq!(r.location(), "/login?next=%2F&problem=credentials");
}

fn the_sign_in_page_says_only_its_own_words(app: App) {
    let forged = "Your account is locked: call 555-0100 to unlock it";
    for url in [
        format!("/login?problem={}", crate::harness::enc(forged)),
        format!("/login?msg={}", crate::harness::enc(forged)),
    ] {
        let page = app.get(&url, &Auth::None);
        assert_eq!(page.status, 200);
        assert!(!page.body.contains("555-0100"), "{url}: {}", page.body);
        assert!(!page.body.contains("class=\"problem\""), "{url}: no banner");
    }
    // A wrong password: the redirect names a code, the page says the sentence.
    let r = app.sign_in("olivia", WRONG, "/", None);
    let page = app.follow(&r, &Auth::None);
    assert!(
        page.body.contains("Wrong account name or password."),
        "{}",
        page.body
    );
    // A stale form.
    let page = app.get("/login?problem=expired", &Auth::None);
    assert!(page.body.contains("The sign-in form expired: try again."));
}

on_both!(sign_in, crate::harness::plain;
    parallel_wrong_passwords_are_counted_before_they_are_checked,
    forwarded_for_is_ignored_without_a_trusted_proxy,
    every_account_costs_one_password_check,
    the_page_after_sign_in_is_on_this_site,
    the_sign_in_page_says_only_its_own_words,
);

on_both!(behind_a_proxy, crate::sign_in::proxied;
    an_attacked_name_still_signs_in_from_elsewhere,
);
