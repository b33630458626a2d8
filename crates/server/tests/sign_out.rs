//! Signing out when the database cannot end the session: the cookie is still cleared,
//! and the person is told the session outlives it instead of being sent on as if all
//! went well.

use reqwest::Method;

use crate::harness::{App, Auth, form, set_cookie};
use crate::on_both;

fn a_failed_sign_out_clears_the_cookie_and_says_so(app: App) {
    // A clean sign-out first: straight to the sign-in page, nothing to report.
    let a = app.login("olivia");
    let r = app.request(Method::POST, "/logout", &a, form(&[]));
    assert_eq!((r.status, r.location().as_str()), (303, "/login"));

    let b = app.login("olivia");
    app.run_sql(
        "CREATE TRIGGER keep_sessions BEFORE DELETE ON console_sessions
         BEGIN SELECT RAISE(ABORT, 'sessions are kept'); END;",
        "CREATE FUNCTION keep_sessions() RETURNS trigger LANGUAGE plpgsql AS
         $$ BEGIN RAISE EXCEPTION 'sessions are kept'; END $$;
         CREATE TRIGGER keep_sessions BEFORE DELETE ON console_sessions
         FOR EACH ROW EXECUTE FUNCTION keep_sessions();",
    );
    let r = app.request(Method::POST, "/logout", &b, form(&[]));
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/login?problem=signout");
    // The cookie is cleared all the same: set empty, so the browser forgets it.
    let cleared = r
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.starts_with("rs_session=;") && v.contains("Max-Age=0"));
    assert!(cleared, "{:?}", r.headers);
    assert_eq!(set_cookie(&r.headers, "rs_session"), None);

    let page = app.get(&r.location(), &Auth::None);
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("the server could not end the session, so it stays valid until it expires"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("sessions are kept"), "{}", page.body);
    // An unknown code says nothing rather than something wrong.
    let page = app.get("/login?problem=bogus", &Auth::None);
    assert!(!page.body.contains("role=\"alert\""), "{}", page.body);
}

on_both!(sign_out, crate::harness::plain;
    a_failed_sign_out_clears_the_cookie_and_says_so,
);
