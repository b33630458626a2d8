//! Signing in and out: the sign-in form (with its own form token), the throttled
//! password check that opens a session, and the sign-out that ends it.

use std::time::Duration;

use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, Extension, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{enc, fail, render};
use crate::auth::{self, LOGIN_COOKIE, Principal, SESSION_COOKIE};
use crate::{Shared, blocking, blocking_as};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    csrf: String,
    next: String,
    problem: &'a str,
}

#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    pub next: Option<String>,
    pub problem: Option<String>,
}

/// Why the sign-in page is shown again. The page takes only these codes from its URL and
/// prints their fixed sentences: text from a link is never shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoginProblem {
    Credentials,
    Expired,
    /// Signing out cleared the cookie but could not end the session on the server.
    SignOutIncomplete,
}

impl LoginProblem {
    fn code(self) -> &'static str {
        match self {
            LoginProblem::Credentials => "credentials",
            LoginProblem::Expired => "expired",
            LoginProblem::SignOutIncomplete => "signout",
        }
    }

    fn from_code(code: &str) -> Option<LoginProblem> {
        [
            LoginProblem::Credentials,
            LoginProblem::Expired,
            LoginProblem::SignOutIncomplete,
        ]
        .into_iter()
        .find(|p| p.code() == code)
    }

    fn sentence(self) -> &'static str {
        match self {
            LoginProblem::Credentials => "Wrong account name or password.",
            LoginProblem::Expired => "The sign-in form expired: try again.",
            LoginProblem::SignOutIncomplete => {
                "Signed out in this browser, but the server could not end the session, so it stays valid until it expires: sign in and sign out again, and if this repeats ask the owner to check the server's log."
            }
        }
    }
}

/// The sign-in form (with a fresh form token), saying `problem` if any.
fn login_page(state: &Shared, next: &str, problem: &str, status: StatusCode) -> Response {
    let token = match auth::random_secret() {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let mut r = render(&LoginPage {
        csrf: token.clone(),
        next: next.to_owned(),
        problem,
    });
    if r.status() == StatusCode::OK {
        *r.status_mut() = status;
    }
    if let Ok(v) =
        auth::session_cookie(LOGIN_COOKIE, Some(&token), state.options.secure_cookies).parse()
    {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// `d` in seconds, rounded up, at least 1.
fn whole_secs(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

/// The form again, refused for now: `Retry-After` says when to try.
fn login_refused(
    state: &Shared,
    next: &str,
    problem: &str,
    status: StatusCode,
    wait: Duration,
) -> Response {
    let mut r = login_page(state, next, problem, status);
    if let Ok(v) = whole_secs(wait).to_string().parse() {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

pub async fn login_form(State(state): State<Shared>, Query(q): Query<LoginQuery>) -> Response {
    let problem = q
        .problem
        .as_deref()
        .and_then(LoginProblem::from_code)
        .map_or("", LoginProblem::sentence);
    login_page(
        &state,
        &auth::safe_next(q.next.as_deref()),
        problem,
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
pub struct LoginBody {
    pub name: String,
    pub password: String,
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub next: String,
}

pub async fn login(
    State(state): State<Shared>,
    connect: Option<Extension<ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    Form(body): Form<LoginBody>,
) -> Response {
    let next = auth::safe_next(Some(&body.next));
    let again = |problem: LoginProblem| {
        Redirect::to(&format!(
            "/login?next={}&problem={}",
            enc(&next),
            problem.code()
        ))
        .into_response()
    };
    let form_token = auth::cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if form_token.is_empty() || !auth::same(&form_token, &body.csrf) {
        return again(LoginProblem::Expired);
    }
    let peer = connect.map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |c| c.0.0.ip());
    let addr = crate::proxy::client_ip(peer, &headers, &state.options.trusted_proxies);
    let name = body.name.trim().to_owned();
    // Counted before the password is checked (see crate::throttle).
    let key = crate::proxy::throttle_key(addr);
    let attempt = match state.throttle.begin(&name, &key, state.now()) {
        Ok(a) => a,
        Err(wait) => {
            let secs = whole_secs(wait);
            return login_refused(
                &state,
                &next,
                &format!(
                    "Too many failed sign-ins for this account from your address: wait {secs} second(s), then try again."
                ),
                StatusCode::TOO_MANY_REQUESTS,
                wait,
            );
        }
    };
    let Some(turn) = state.throttle.turn().await else {
        state.throttle.refund(&attempt);
        return login_refused(
            &state,
            &next,
            "The server is busy checking other sign-ins: try again in a few seconds.",
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(5),
        );
    };
    let password = body.password.clone();
    let now = state.now();
    let lookup = name.clone();
    // A session this browser had before is ended, whoever signs in now.
    let previous = auth::cookie(&headers, SESSION_COOKIE)
        .filter(|v| !v.is_empty())
        .map(|v| auth::sha256_hex(&v));
    let result = blocking(&state, move |store| {
        if let Some(old) = &previous {
            store.delete_session(old)?;
        }
        // One argon2 check whatever the account: unknown and disabled ones included.
        let account = store.console_account(&lookup)?;
        if !turn.check(account.as_ref(), &password) {
            return Ok(None);
        }
        let Some(account) = account else {
            return Ok(None);
        };
        let id = auth::open_session(store, &account, now)?;
        store.audit(
            &format!("console:{}", account.name),
            "console.login",
            "signed in",
            now,
        )?;
        Ok(Some(id))
    })
    .await;
    match result {
        Ok(Some(id)) => {
            state.throttle.succeeded(&attempt);
            let mut r = Redirect::to(&next).into_response();
            let secure = state.options.secure_cookies;
            for c in [
                auth::session_cookie(SESSION_COOKIE, Some(&id), secure),
                auth::session_cookie(LOGIN_COOKIE, None, secure),
            ] {
                if let Ok(v) = c.parse() {
                    r.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            r
        }
        Ok(None) => {
            auth::log_failed_sign_in(&name, addr);
            again(LoginProblem::Credentials)
        }
        Err(e) => fail(e),
    }
}

pub async fn logout(State(state): State<Shared>, Extension(who): Extension<Principal>) -> Response {
    let mut problem = None;
    if let auth::Via::Session { id_hash, .. } = &who.via {
        let h = id_hash.clone();
        let ended = blocking_as(&state, &who, move |store, actor, now| {
            store.delete_session(&h)?;
            if let Err(e) = store.audit(actor, "console.logout", "signed out", now) {
                tracing::warn!(account = %actor, error = %e, "signed out, but the sign-out could not be written to the audit log");
            }
            Ok(())
        })
        .await;
        // The cookie is cleared whatever happened; the person is told the session itself
        // may outlive it. The session's id (even hashed) stays out of the log.
        if let Err(e) = ended {
            tracing::warn!(account = %who.actor(), code = e.code, error = %e.message, "could not end a console session at sign-out: it stays valid until it expires");
            problem = Some(LoginProblem::SignOutIncomplete);
        }
    }
    let to = match problem {
        Some(p) => format!("/login?problem={}", p.code()),
        None => "/login".to_owned(),
    };
    let mut r = Redirect::to(&to).into_response();
    if let Ok(v) = auth::session_cookie(SESSION_COOKIE, None, state.options.secure_cookies).parse()
    {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}
