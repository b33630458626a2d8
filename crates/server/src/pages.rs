//! The console's pages: server-rendered (askama escapes everything it prints), plain
//! forms that work without JavaScript, htmx only for the live progress of a sync.
//!
//! Lists page by id or offset with a bounded size, and every count comes from an indexed
//! query, so pages stay fast at a million users.

use std::collections::BTreeSet;
use std::time::Duration;

use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, Extension, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use jiff::Timestamp;
use rostersync_core::directory::{Field, UserId};
use rostersync_core::plan::Outcome;
use rostersync_core::schedule::{PauseWindow, Spec};
use rostersync_core::settings::{
    AuthMethod, Config, EmailTranslation, FieldSwitch, Priority, Secret, SourceConfig, SourceKind,
};
use serde::Deserialize;
use store::{RunRecord, Trigger};

use crate::api;
use crate::auth::{self, LOGIN_COOKIE, Principal, SESSION_COOKIE};
use crate::{ApiError, Shared, blocking, settings_edit};

/// What every page's layout needs.
pub struct Nav {
    pub title: String,
    pub active: &'static str,
    pub user: String,
    pub role: String,
    pub csrf: String,
    pub can_write: bool,
    pub is_owner: bool,
    pub message: String,
    pub problem: String,
    /// Reload every few seconds (a run is going; no JavaScript needed).
    pub refresh: bool,
}

impl Nav {
    pub(crate) fn new(
        who: &Principal,
        title: impl Into<String>,
        active: &'static str,
        flash: &Flash,
    ) -> Nav {
        Nav {
            title: title.into(),
            active,
            user: who.name.clone(),
            role: who.role.as_str().to_owned(),
            csrf: who.csrf().to_owned(),
            can_write: who.role.can_write(),
            is_owner: who.role.is_owner(),
            message: flash.msg.clone().unwrap_or_default(),
            problem: flash.problem.clone().unwrap_or_default(),
            refresh: false,
        }
    }
}

pub(crate) use crate::flash::Flash;

pub(crate) fn render<T: Template>(t: &T) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a console template failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered; see the server log",
            )
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: String,
    message: &'a str,
}

pub fn error_page(e: &ApiError) -> Response {
    let mut r = render(&ErrorPage {
        status: e.status.to_string(),
        message: &e.message,
    });
    *r.status_mut() = e.status;
    r
}

pub(crate) type Page = Result<Response, Response>;

pub(crate) fn fail(e: ApiError) -> Response {
    error_page(&e)
}

pub(crate) fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Back to `to` with a message (or a problem) to show there. The text stays on the
/// server ([`crate::flash`]): the redirect carries only a `flash=ID` bound to the session.
pub(crate) fn back(to: &str, result: Result<String, ApiError>) -> Response {
    let (text, problem) = match result {
        Ok(msg) => (msg, false),
        Err(e) if e.status == StatusCode::FORBIDDEN && e.code == "forbidden" => return fail(e),
        Err(e) => (e.message, true),
    };
    let mut r = Redirect::to(to).into_response();
    r.extensions_mut()
        .insert(crate::flash::Pending { text, problem });
    r
}

pub(crate) fn ts(t: Timestamp) -> String {
    jiff::fmt::strtime::format("%Y-%m-%d %H:%M:%S UTC", t).unwrap_or_else(|_| t.to_string())
}

pub(crate) fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

// ----- static assets

pub async fn htmx_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("../assets/htmx.min.js"),
    )
        .into_response()
}

/// The console's own small script: a warning before leaving unsaved edits.
pub async fn console_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../assets/console.js"),
    )
        .into_response()
}

/// The console's icon, also at `/favicon.ico` (browsers ask there first).
pub async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("../assets/favicon.svg"),
    )
        .into_response()
}

pub async fn console_css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../assets/console.css"),
    )
        .into_response()
}

pub async fn not_found() -> Response {
    error_page(&ApiError::not_found("there is no such page"))
}

// ----- sign-in

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

#[derive(Debug, Deserialize)]
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
        let actor = who.actor();
        let now = state.now();
        let ended = blocking(&state, move |store| {
            store.delete_session(&h)?;
            if let Err(e) = store.audit(&actor, "console.logout", "signed out", now) {
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

// ----- overview and live progress

pub struct RunRow {
    pub id: i64,
    pub source: String,
    pub kind: String,
    pub trigger: String,
    pub started: String,
    pub finished: String,
    pub status: String,
    pub seen: u64,
    pub created: u64,
    pub updated: u64,
    pub skipped: u64,
    pub deactivated: u64,
    pub groups: u64,
    pub linked: u64,
    pub reactivated: u64,
    pub rekeyed: u64,
    pub errors: u64,
    /// The run wrote something to accounts or links (what an undo would put back).
    pub wrote: bool,
}

fn run_row(r: &RunRecord) -> RunRow {
    RunRow {
        id: r.id,
        source: r.source.clone(),
        kind: r.kind.as_str().to_owned(),
        trigger: r.trigger.as_str().to_owned(),
        started: ts(r.started_at),
        finished: r.finished_at.map(ts).unwrap_or_default(),
        status: r.status.as_str().to_owned(),
        seen: r.counts.seen,
        created: r.counts.created,
        updated: r.counts.updated,
        skipped: r.counts.skipped,
        deactivated: r.counts.deactivated,
        groups: r.counts.groups,
        linked: r.counts.linked,
        reactivated: r.counts.reactivated,
        rekeyed: r.counts.rekeyed,
        errors: r.counts.errors,
        wrote: r.counts.created
            + r.counts.linked
            + r.counts.updated
            + r.counts.deactivated
            + r.counts.reactivated
            + r.counts.groups
            > 0,
    }
}

pub struct ProgressView {
    pub source: String,
    pub kind: String,
    pub actor: String,
    pub finished: bool,
    pub status: String,
    pub counts: String,
    pub error: String,
    pub run_id: Option<i64>,
    pub phase: String,
}

/// The Overview: [`crate::overview`].
pub async fn overview(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    flash: Flash,
) -> Page {
    crate::overview::page(&state, &who, &flash).await
}

#[derive(Template)]
#[template(path = "progress.html")]
struct ProgressFragment {
    run: ProgressView,
}

pub async fn progress(State(state): State<Shared>, Path(source): Path<String>) -> Page {
    let run = state.live.get(&source).ok_or_else(|| {
        fail(ApiError::not_found(format!(
            "this server has not started a sync of {source}"
        )))
    })?;
    // The stored run decides its status and counts (read after the live state).
    let live = vec![run.clone()];
    let records = blocking(&state, move |store| {
        crate::overview::live_records(store, &live)
    })
    .await
    .map_err(fail)?;
    let record = run.run_id.and_then(|id| records.get(&id));
    Ok(render(&ProgressFragment {
        run: crate::overview::progress_view(&run, record),
    }))
}

#[derive(Debug, Deserialize)]
pub struct SyncForm {
    pub source: String,
    pub kind: Option<String>,
}

pub async fn start_sync(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Form(f): Form<SyncForm>,
) -> Response {
    let result = async {
        let kind = api::parse_kind(f.kind.as_deref())?;
        let run = crate::live::start_sync(
            &state,
            &f.source,
            kind,
            Trigger::Console,
            &who.actor(),
            Duration::from_millis(200),
        )
        .await?;
        let actor = who.actor();
        let now = state.now();
        let detail = format!("{} ({})", f.source, kind.as_str());
        blocking(&state, move |store| {
            Ok(store.audit(&actor, "sync.start", &detail, now)?)
        })
        .await?;
        Ok(format!(
            "{} sync of {} started",
            run.kind.as_str(),
            run.source
        ))
    }
    .await;
    back("/", result)
}

// ----- settings

pub struct SourceView {
    pub name: String,
    pub kind: String,
    pub url: String,
    pub path: String,
    pub client_id: String,
    pub secret_state: String,
    pub credential_expires: String,
    pub version: String,
    pub auth: String,
    pub token_url: String,
    pub translate_email: String,
    pub append_domain: String,
    pub match_by_email: bool,
    pub match_by_identifier: bool,
    pub guardian_logins: bool,
    pub deactivate_after_misses: u32,
    pub relink_grace_days: u32,
    pub schedule_full: String,
    pub schedule_delta: String,
    pub time_zone: String,
    pub pause: String,
    pub next_runs: String,
}

pub struct ImportOption {
    pub key: &'static str,
    pub label: &'static str,
    pub on: bool,
    pub protected: bool,
    pub locked: bool,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    nav: Nav,
    sources: Vec<(String, bool)>,
    source: Option<SourceView>,
    auth_methods: Vec<(&'static str, bool)>,
    import_options: Vec<ImportOption>,
    fields: Vec<(&'static str, bool, bool)>,
    validation: Option<crate::validation::Stored>,
    network: rostersync_core::settings::Network,
    import_dir: String,
    server_zone: String,
    /// The section this page shows (one form a page), and every section: (key, title).
    section: String,
    sections: Vec<(&'static str, &'static str)>,
}

/// The settings sections, one a page: (key in the URL, title).
const SECTIONS: [(&str, &str); 8] = [
    ("authentication", "Authentication"),
    ("import", "Import Options"),
    ("fields", "Field Mapping"),
    ("mapping", "User Mapping"),
    ("features", "Available Features"),
    ("schedule", "Schedule"),
    ("network", "Network"),
    ("remove", "Remove"),
];

#[derive(Debug, Default, Deserialize)]
pub struct SettingsQuery {
    pub source: Option<String>,
    /// One of [`SECTIONS`] or `add` (add a source); Authentication when absent.
    pub section: Option<String>,
}

fn auth_name(a: AuthMethod) -> &'static str {
    match a {
        AuthMethod::OAuth2 => "oauth2",
        AuthMethod::OAuth1Sha256 => "oauth1-sha256",
        AuthMethod::OAuth1Sha1 => "oauth1-sha1",
        AuthMethod::None => "none",
    }
}

fn source_view(s: &SourceConfig, secret_set: bool, now: Timestamp) -> SourceView {
    let next = s
        .schedule
        .zone()
        .ok()
        .map(|tz| {
            let mut parts = Vec::new();
            if let Some(t) = s.schedule.full.next_after(now, &tz) {
                parts.push(format!(
                    "full {}",
                    t.to_zoned_datetime(tz.clone())
                        .strftime("%a %Y-%m-%d %H:%M %Z")
                ));
            }
            if let Some(t) = s.schedule.delta.next_after(now, &tz) {
                parts.push(format!(
                    "delta {}",
                    t.to_zoned_datetime(tz.clone())
                        .strftime("%a %Y-%m-%d %H:%M %Z")
                ));
            }
            parts.join(" · ")
        })
        .unwrap_or_default();
    SourceView {
        name: s.name.clone(),
        kind: match s.kind {
            SourceKind::OneRosterApi => "oneroster-api",
            SourceKind::OneRosterCsv => "oneroster-csv",
        }
        .to_owned(),
        url: opt(&s.url),
        path: opt(&s.path),
        client_id: opt(&s.client_id),
        secret_state: if s.client_secret_env.is_some() {
            format!(
                "from ${}",
                s.client_secret_env.as_deref().unwrap_or_default()
            )
        } else if secret_set {
            "set".to_owned()
        } else {
            "not set".to_owned()
        },
        credential_expires: s
            .credential_expires
            .map(|d| d.to_string())
            .unwrap_or_default(),
        version: opt(&s.version),
        auth: s.auth.map(auth_name).unwrap_or_default().to_owned(),
        token_url: opt(&s.token_url),
        translate_email: s
            .user_mapping
            .translate_email
            .iter()
            .map(|t| format!("{} -> {}", t.from, t.to))
            .collect::<Vec<_>>()
            .join("\n"),
        append_domain: opt(&s.user_mapping.append_domain),
        match_by_email: s.user_mapping.match_by_email,
        match_by_identifier: s.user_mapping.match_by_identifier,
        guardian_logins: s.features.guardian_logins,
        deactivate_after_misses: s.import.deactivate_after_misses,
        relink_grace_days: s.import.relink_grace_days,
        schedule_full: s.schedule.full.to_string(),
        schedule_delta: s.schedule.delta.to_string(),
        time_zone: opt(&s.schedule.time_zone),
        pause: s
            .schedule
            .pause
            .iter()
            .map(|w| format!("{} {}", w.from, w.to))
            .collect::<Vec<_>>()
            .join("\n"),
        next_runs: next,
    }
}

/// (form key, label, protected)
pub(crate) const IMPORT_OPTIONS: [(&str, &str, bool); 10] = [
    ("add_rooms", "Add rooms (homeroom) to users", false),
    ("skip_calendars", "Skip import of calendars", false),
    ("students", "Import students", true),
    ("teachers", "Import teachers", true),
    (
        "administrators",
        "Import administrators (principals, counselors, aides, proctors)",
        true,
    ),
    (
        "other_users",
        "Import other users (guardians, parents, relatives)",
        true,
    ),
    ("include_inactive", "Include inactive users", true),
    ("deactivate_users", "Deactivate users", true),
    (
        "allow_role_downgrades",
        "Allow non-agent role downgrades",
        true,
    ),
    (
        "skip_relationships",
        "Skip import of user relationships",
        true,
    ),
];

fn import_value(s: &SourceConfig, key: &str) -> bool {
    let i = &s.import;
    match key {
        "add_rooms" => i.add_rooms,
        "skip_calendars" => i.skip_calendars,
        "students" => i.students,
        "teachers" => i.teachers,
        "administrators" => i.administrators,
        "other_users" => i.other_users,
        "include_inactive" => i.include_inactive,
        "deactivate_users" => i.deactivate_users,
        "allow_role_downgrades" => i.allow_role_downgrades,
        "skip_relationships" => i.skip_relationships,
        _ => false,
    }
}

fn set_import(s: &mut SourceConfig, key: &str, v: bool) {
    let i = &mut s.import;
    match key {
        "add_rooms" => i.add_rooms = v,
        "skip_calendars" => i.skip_calendars = v,
        "students" => i.students = v,
        "teachers" => i.teachers = v,
        "administrators" => i.administrators = v,
        "other_users" => i.other_users = v,
        "include_inactive" => i.include_inactive = v,
        "deactivate_users" => i.deactivate_users = v,
        "allow_role_downgrades" => i.allow_role_downgrades = v,
        "skip_relationships" => i.skip_relationships = v,
        _ => {}
    }
}

pub async fn settings(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Query(q): Query<SettingsQuery>,
    flash: Flash,
) -> Page {
    let wanted = q.source.clone();
    let section = q
        .section
        .clone()
        .filter(|x| x == "add" || SECTIONS.iter().any(|(k, _)| k == x))
        .unwrap_or_else(|| "authentication".to_owned());
    let (config, secrets, current, validation) = blocking(&state, move |store| {
        let config = store.load_config()?;
        let mut set = BTreeSet::new();
        for s in &config.sources {
            if store.source_secret(&s.name)?.is_some() {
                set.insert(s.name.clone());
            }
        }
        let current = wanted
            .or_else(|| config.sources.first().map(|s| s.name.clone()))
            .unwrap_or_default();
        // The last Validate's result: showing it never contacts the SIS.
        let validation = store
            .meta_get(&crate::validation::key(&current))?
            .and_then(|t| crate::validation::Stored::decode(&t));
        Ok((config, set, current, validation))
    })
    .await
    .map_err(fail)?;
    let src = config.source(&current);
    let validation = validation.filter(|_| src.is_some());
    let now = state.now();
    Ok(render(&SettingsPage {
        nav: Nav::new(&who, "Settings", "settings", &flash),
        sections: SECTIONS
            .into_iter()
            .filter(|(k, _)| *k != "remove" || who.role.is_owner())
            .collect(),
        section,
        sources: config
            .sources
            .iter()
            .map(|s| (s.name.clone(), s.name == current))
            .collect(),
        source: src.map(|s| source_view(s, secrets.contains(&s.name), now)),
        auth_methods: ["oauth2", "oauth1-sha256", "oauth1-sha1", "none"]
            .into_iter()
            .map(|a| (a, src.and_then(|s| s.auth).map(auth_name) == Some(a)))
            .collect(),
        import_options: src
            .map(|s| {
                IMPORT_OPTIONS
                    .iter()
                    .map(|(key, label, protected)| ImportOption {
                        key,
                        label,
                        on: import_value(s, key),
                        protected: *protected,
                        locked: !who.role.can_write() || (*protected && !who.role.is_owner()),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        fields: src
            .map(|s| {
                Field::ALL
                    .iter()
                    .map(|f| {
                        (
                            f.as_str(),
                            config.field_enabled(*f),
                            s.priority(*f) == Priority::IfNotSet,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        validation,
        network: config.network,
        import_dir: state
            .options
            .import_dir
            .as_ref()
            .map(|d| d.display().to_string())
            .unwrap_or_default(),
        server_zone: jiff::tz::TimeZone::system()
            .iana_name()
            .unwrap_or("UTC")
            .to_owned(),
    }))
}

/// A posted form as pairs.
pub struct FormData(Vec<(String, String)>);

impl FormData {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self, key: &str) -> Option<String> {
        self.get(key)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }

    fn checked(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| v != "off" && v != "false")
    }

    fn number(&self, key: &str) -> Result<Option<u32>, ApiError> {
        self.text(key)
            .map(|v| {
                v.parse::<u32>().map_err(|_| {
                    ApiError::bad_request(format!("{key}: '{v}' is not a whole number"))
                })
            })
            .transpose()
    }
}

pub async fn validate(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(source): Path<String>,
) -> Response {
    let result = api::inspect_source(&state, &source).await;
    let actor = who.actor();
    let now = state.now();
    let detail = format!(
        "{source}: {}",
        match &result {
            Ok(_) => "read".to_owned(),
            Err(e) => e.message.clone(),
        }
    );
    let _ = blocking(&state, move |store| {
        Ok(store.audit(&actor, "source.validate", &detail, now)?)
    })
    .await;
    // A refused validation (too soon) is said as a problem; any other result, good or
    // bad, is kept and shown by the settings page.
    let to = format!("/settings?source={}", enc(&source));
    match result {
        Err(e) if e.status == axum::http::StatusCode::TOO_MANY_REQUESTS => back(&to, Err(e)),
        _ => Redirect::to(&format!("{to}#validation")).into_response(),
    }
}

fn apply_section(
    config: &mut Config,
    source: &str,
    section: &str,
    f: &FormData,
    who: &Principal,
) -> Result<(), ApiError> {
    let owner = who.role.is_owner();
    if section == "fields" {
        let s = config
            .sources
            .iter()
            .find(|s| s.name == source)
            .ok_or_else(|| ApiError::not_found(format!("no source named '{source}'")))?;
        let mut priorities = s.field_priority.clone();
        for field in Field::ALL {
            let enabled = f.checked(&format!("enabled.{}", field.as_str()));
            if enabled {
                config.fields.remove(field);
            } else {
                config.fields.insert(*field, FieldSwitch { enabled: false });
            }
            match f.get(&format!("priority.{}", field.as_str())) {
                Some("if-not-set") => {
                    priorities.insert(*field, Priority::IfNotSet);
                }
                Some(_) => {
                    priorities.remove(field);
                }
                None => {}
            }
        }
        if let Some(s) = config.sources.iter_mut().find(|s| s.name == source) {
            s.field_priority = priorities;
        }
        return Ok(());
    }
    if section == "network" {
        if !owner {
            return Err(ApiError::forbidden(
                "only an owner may change which networks the server may reach",
            ));
        }
        config.network.allow_private = f.checked("allow_private");
        config.network.allow_loopback = f.checked("allow_loopback");
        return Ok(());
    }
    if section == "delete" {
        if !owner {
            return Err(ApiError::forbidden("only an owner may remove a source"));
        }
        if f.get("confirm").map(str::trim) != Some(source) {
            return Err(ApiError::bad_request(format!(
                "type the source's name ({source}) to confirm its removal"
            )));
        }
        config.sources.retain(|s| s.name != source);
        return Ok(());
    }
    let s = config
        .sources
        .iter_mut()
        .find(|s| s.name == source)
        .ok_or_else(|| ApiError::not_found(format!("no source named '{source}'")))?;
    match section {
        "authentication" => {
            if let Some(kind) = f.get("kind") {
                s.kind = match kind {
                    "oneroster-csv" => SourceKind::OneRosterCsv,
                    _ => SourceKind::OneRosterApi,
                };
            }
            s.url = f.text("url");
            s.path = f.text("path");
            s.client_id = f.text("client_id");
            if let Some(secret) = f.text("client_secret") {
                s.client_secret = Some(Secret::new(secret));
                s.client_secret_env = None;
            }
            s.credential_expires = match f.text("credential_expires") {
                None => None,
                Some(d) => Some(d.parse().map_err(|_| {
                    ApiError::bad_request(format!(
                        "credential expiration date '{d}' is not YYYY-MM-DD"
                    ))
                })?),
            };
            s.version = f.text("version");
            s.auth = match f.text("auth").as_deref() {
                None => None,
                Some("oauth2") => Some(AuthMethod::OAuth2),
                Some("oauth1-sha256") => Some(AuthMethod::OAuth1Sha256),
                Some("oauth1-sha1") => Some(AuthMethod::OAuth1Sha1),
                Some("none") => Some(AuthMethod::None),
                Some(other) => {
                    return Err(ApiError::bad_request(format!(
                        "auth method '{other}' is unknown"
                    )));
                }
            };
            s.token_url = f.text("token_url");
        }
        "mapping" => {
            if !owner {
                return Err(ApiError::forbidden(
                    "only an owner may change the user mapping",
                ));
            }
            let mut rules = Vec::new();
            for line in f.get("translate_email").unwrap_or("").lines() {
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                let (from, to) = line.split_once("->").ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "Translate Email rule '{line}' must look like sis.domain -> directory.domain"
                    ))
                })?;
                rules.push(EmailTranslation {
                    from: from.trim().to_owned(),
                    to: to.trim().to_owned(),
                });
            }
            s.user_mapping.translate_email = rules;
            s.user_mapping.append_domain = f.text("append_domain");
            s.user_mapping.match_by_email = f.checked("match_by_email");
            s.user_mapping.match_by_identifier = f.checked("match_by_identifier");
        }
        "import" => {
            for (key, _, protected) in IMPORT_OPTIONS {
                // An admin's form has the protected boxes disabled (not sent): keep them.
                if protected && !owner {
                    continue;
                }
                set_import(s, key, f.checked(key));
            }
            if owner {
                if let Some(n) = f.number("deactivate_after_misses")? {
                    s.import.deactivate_after_misses = n;
                }
                if let Some(n) = f.number("relink_grace_days")? {
                    s.import.relink_grace_days = n;
                }
            }
        }
        "features" => s.features.guardian_logins = f.checked("guardian_logins"),
        "schedule" => {
            s.schedule.full = Spec::parse(f.get("full").unwrap_or("off").trim())
                .map_err(ApiError::bad_request)?;
            s.schedule.delta = Spec::parse(f.get("delta").unwrap_or("off").trim())
                .map_err(ApiError::bad_request)?;
            s.schedule.time_zone = f.text("time_zone");
            let mut pause = Vec::new();
            for line in f.get("pause").unwrap_or("").lines() {
                let words: Vec<&str> = line.split_whitespace().collect();
                match words.as_slice() {
                    [] => {}
                    [from, to] => pause.push(PauseWindow {
                        from: from.parse().map_err(|_| {
                            ApiError::bad_request(format!(
                                "pause window '{line}': dates are YYYY-MM-DD"
                            ))
                        })?,
                        to: to.parse().map_err(|_| {
                            ApiError::bad_request(format!(
                                "pause window '{line}': dates are YYYY-MM-DD"
                            ))
                        })?,
                    }),
                    _ => {
                        return Err(ApiError::bad_request(format!(
                            "pause window '{line}' must be two dates: FROM TO"
                        )));
                    }
                }
            }
            s.schedule.pause = pause;
        }
        other => {
            return Err(ApiError::not_found(format!(
                "no settings section '{other}'"
            )));
        }
    }
    Ok(())
}

pub async fn save_section(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path((source, section)): Path<(String, String)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let form = FormData(pairs);
    let result = async {
        let mut config = blocking(&state, |store| Ok(store.load_config()?)).await?;
        apply_section(&mut config, &source, &section, &form, &who)?;
        let changed = settings_edit::save(&state, &who, config).await?;
        Ok(if changed.is_empty() {
            "nothing changed".to_owned()
        } else {
            format!("saved: {}", changed.join("; "))
        })
    }
    .await;
    let to = if section == "delete" && result.is_ok() {
        "/settings".to_owned()
    } else {
        let page = if section == "delete" {
            "remove"
        } else {
            section.as_str()
        };
        format!("/settings?source={}&section={}", enc(&source), enc(page))
    };
    back(&to, result)
}

pub async fn add_source(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let f = FormData(pairs);
    let name = f.text("name").unwrap_or_default();
    let result = async {
        let mut config = blocking(&state, |store| Ok(store.load_config()?)).await?;
        if config.source(&name).is_some() {
            return Err(ApiError::conflict(format!(
                "a source named '{name}' exists already"
            )));
        }
        let location = f.text("location").unwrap_or_default();
        let kind = f.get("kind").unwrap_or("oneroster-api");
        let doc = if kind == "oneroster-csv" {
            serde_json::json!({"name": name, "kind": "oneroster-csv", "path": location})
        } else {
            serde_json::json!({"name": name, "kind": "oneroster-api", "url": location})
        };
        let source: SourceConfig = serde_json::from_value(doc)
            .map_err(|e| ApiError::bad_request(format!("the new source is not valid: {e}")))?;
        config.sources.push(source);
        settings_edit::save(&state, &who, config).await?;
        Ok(format!(
            "source {name} added: fill in its authentication below"
        ))
    }
    .await;
    back(&format!("/settings?source={}", enc(&name)), result)
}

// ----- location mappings: [`crate::locations`]

pub async fn locations(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Query(q): Query<SettingsQuery>,
    flash: Flash,
) -> Page {
    crate::locations::page(&state, &who, q, &flash).await
}

pub async fn save_locations(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(source): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    crate::locations::save(&state, &who, source, pairs).await
}

// ----- sync history

#[derive(Template)]
#[template(path = "runs.html")]
struct RunsPage {
    nav: Nav,
    /// Held runs waiting for an admin: (run, source).
    held: Vec<(i64, String)>,
    runs: Vec<RunRow>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RunsQuery {
    /// Only runs of this status (`held`, `failed`, …).
    pub status: Option<String>,
}

pub async fn runs(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Query(q): Query<RunsQuery>,
    flash: Flash,
) -> Page {
    let status = match q.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(store::RunStatus::parse(s).ok_or_else(|| {
            fail(ApiError::bad_request(format!(
                "status '{s}' is not a run status (running, succeeded, failed, held, discarded, interrupted)"
            )))
        })?),
    };
    let list = blocking(&state, move |store| match status {
        None => Ok(store.list_runs(200)?),
        Some(s) => Ok(store.runs_of(None, Some(s), 200)?),
    })
    .await
    .map_err(fail)?;
    let title = match status {
        None => "Sync History".to_owned(),
        Some(s) => format!("Sync History: {} runs", s.as_str()),
    };
    let mut nav = Nav::new(&who, title, "runs", &flash);
    nav.refresh = list.iter().any(|r| r.status == store::RunStatus::Running);
    Ok(render(&RunsPage {
        nav,
        held: list
            .iter()
            .filter(|r| r.status == store::RunStatus::Held)
            .map(|r| (r.id, r.source.clone()))
            .collect(),
        runs: list.iter().map(run_row).collect(),
    }))
}

pub struct ItemView {
    pub sourced_id: String,
    pub user_id: Option<UserId>,
    /// The account's name (empty without an account).
    pub name: String,
    pub outcome: String,
    pub reason_code: String,
    pub reason: String,
    pub changes: String,
}

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage {
    nav: Nav,
    run: RunRow,
    complete: &'static str,
    error: String,
    /// (filter query, label, items, current): each a link to exactly that many items.
    outcomes: Vec<(String, &'static str, u64, bool)>,
    unchanged: u64,
    outcome: String,
    /// The reason-code filter (`rekeyed`), empty for none.
    reason: String,
    /// Undo is offered: the run succeeded, wrote something, and is not the source's first import.
    can_undo: bool,
    items: Vec<ItemView>,
    offset: u64,
    prev_offset: u64,
    next_offset: u64,
    more: bool,
    note: String,
    /// The safeguards the plan tripped: (kind, in words).
    hold: Vec<(String, String)>,
    /// This server is approving the held run right now.
    approving: bool,
    /// Why an undo was refused, each conflict.
    conflicts: Vec<String>,
    /// What the pull warned about.
    warnings: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RunQuery {
    pub outcome: Option<String>,
    /// Only items with this reason code (`rekeyed`).
    pub reason: Option<String>,
    pub offset: Option<u64>,
}

pub(crate) const PAGE: u32 = 100;

pub async fn run(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
    Query(q): Query<RunQuery>,
    flash: Flash,
) -> Page {
    run_page(&state, &who, id, q, &flash, Vec::new()).await
}

/// The run page, with the conflicts of a refused undo when there are some.
pub(crate) async fn run_page(
    state: &Shared,
    who: &Principal,
    id: i64,
    q: RunQuery,
    flash: &Flash,
    conflicts: Vec<String>,
) -> Page {
    let outcome = api::parse_outcome(q.outcome.as_deref()).map_err(fail)?;
    let reason = q.reason.clone().filter(|r| !r.is_empty());
    if let Some(r) = &reason
        && r != "rekeyed"
    {
        return Err(fail(ApiError::bad_request(format!(
            "reason '{r}' is not one a run's page filters by (rekeyed)"
        ))));
    }
    let offset = q.offset.unwrap_or(0);
    let filter = store::ItemFilter {
        outcome,
        reason_code: reason.clone(),
    };
    let (run, items, tally, first_import) = blocking(state, move |store| {
        let run = store
            .get_run(id)?
            .ok_or_else(|| ApiError::not_found(format!("no run {id}")))?;
        let items = store.run_item_page(id, &filter, PAGE + 1, offset)?;
        let tally = store.run_item_counts(id)?;
        // No succeeded run of the source before this one: its first import.
        let first_import = !store
            .list_runs_before(Some(id), 0)?
            .iter()
            .any(|r| r.source == run.source && r.status == store::RunStatus::Succeeded);
        Ok((run, items, tally, first_import))
    })
    .await
    .map_err(fail)?;
    let more = items.len() > PAGE as usize;
    let c = run.counts;
    let approving = crate::live::approving(state, id);
    let mut nav = Nav::new(who, format!("Run {id}"), "runs", flash);
    nav.refresh = run.status == store::RunStatus::Running || approving;
    let of_outcome = |o: &str| -> u64 {
        tally
            .iter()
            .filter(|(out, _, _)| out == o)
            .map(|(_, _, n)| n)
            .sum()
    };
    let rekeyed: u64 = tally
        .iter()
        .filter(|(_, code, _)| code == "rekeyed")
        .map(|(_, _, n)| n)
        .sum();
    let mut outcomes: Vec<(String, &'static str, u64, bool)> = [
        Outcome::Created,
        Outcome::Linked,
        Outcome::Updated,
        Outcome::Skipped,
        Outcome::Deactivated,
        Outcome::Reactivated,
        Outcome::Error,
    ]
    .into_iter()
    .map(|o| {
        (
            format!("outcome={}", o.as_str()),
            o.as_str(),
            of_outcome(o.as_str()),
            outcome == Some(o) && reason.is_none(),
        )
    })
    .collect();
    outcomes.push((
        "reason=rekeyed".to_owned(),
        "rekeyed",
        rekeyed,
        reason.is_some(),
    ));
    let row = run_row(&run);
    Ok(render(&RunPage {
        nav,
        note: run.note.clone().unwrap_or_default(),
        hold: run
            .hold
            .iter()
            .map(|t| (t.kind.as_str().to_owned(), t.detail.clone()))
            .collect(),
        approving,
        conflicts,
        warnings: run.warnings.clone(),
        complete: if run.complete { "yes" } else { "no" },
        error: run.error.clone().unwrap_or_default(),
        outcomes,
        unchanged: c.unchanged,
        outcome: outcome
            .map(|o: Outcome| o.as_str().to_owned())
            .unwrap_or_default(),
        reason: reason.unwrap_or_default(),
        can_undo: run.status == store::RunStatus::Succeeded && row.wrote && !first_import,
        items: items
            .into_iter()
            .take(PAGE as usize)
            .map(|named| {
                let i = named.item;
                ItemView {
                    sourced_id: i.sourced_id,
                    user_id: i.user_id,
                    name: named.name.unwrap_or_default(),
                    outcome: i.outcome.as_str().to_owned(),
                    reason_code: i.reason_code,
                    reason: i.reason,
                    changes: i
                        .changes
                        .iter()
                        .map(|ch| {
                            format!(
                                "{}: {} → {}",
                                ch.field.as_str(),
                                ch.old.as_deref().unwrap_or("∅"),
                                ch.new.as_deref().unwrap_or("∅")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; "),
                }
            })
            .collect(),
        offset,
        prev_offset: offset.saturating_sub(u64::from(PAGE)),
        next_offset: offset + u64::from(PAGE),
        more,
        run: row,
    }))
}

// ----- users: the list is [`crate::user_list`]

pub(crate) fn display_name(u: &rostersync_core::directory::DirUser) -> String {
    let first = u
        .preferred_name
        .as_deref()
        .or(u.first_name.as_deref())
        .unwrap_or("");
    let name = format!("{first} {}", u.last_name.as_deref().unwrap_or(""))
        .trim()
        .to_owned();
    if name.is_empty() {
        u.username
            .clone()
            .or_else(|| u.email.clone())
            .unwrap_or_default()
    } else {
        name
    }
}

pub struct CardView {
    pub source: String,
    pub facts: Vec<(&'static str, String)>,
    pub classes: Vec<(String, String, String)>,
    pub runs: Vec<(i64, String, String, String)>,
}

pub struct RevisionView {
    pub at: String,
    pub field: String,
    pub old: String,
    pub new: String,
    pub writer: String,
    pub run: Option<i64>,
}

/// A revision as the History table shows it: field, old → new. The account's creation
/// (stored as one record of its first values) becomes a row per field it was created
/// with, the first saying so.
fn revision_views(r: &store::RevisionRecord) -> Vec<RevisionView> {
    let row = |field: String, old: String, new: String| RevisionView {
        at: ts(r.at),
        field,
        old,
        new,
        writer: r.writer.clone(),
        run: r.run,
    };
    let first_values = (r.field == "created")
        .then_some(r.new.as_deref())
        .flatten()
        .and_then(|json| {
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(json).ok()
        });
    let Some(values) = first_values else {
        return vec![row(r.field.clone(), opt(&r.old), opt(&r.new))];
    };
    let mut rows = vec![row(
        "(account created)".into(),
        String::new(),
        String::new(),
    )];
    rows.extend(values.into_iter().map(|(field, value)| {
        let shown = match value {
            serde_json::Value::String(s) => s,
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        };
        row(field, String::new(), shown)
    }));
    rows
}

#[derive(Template)]
#[template(path = "user.html")]
struct UserPage {
    nav: Nav,
    id: UserId,
    merged_into: Option<UserId>,
    facts: Vec<(&'static str, String)>,
    linked: bool,
    link_source: String,
    sources: Vec<String>,
    cards: Vec<CardView>,
    students: Vec<(UserId, String)>,
    guardians: Vec<(UserId, String)>,
    groups: Vec<String>,
    aliases: Vec<String>,
    revisions: Vec<RevisionView>,
    people: PeopleView,
}

pub async fn user(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(id): Path<UserId>,
    Query(search): Query<PeopleQuery>,
    flash: Flash,
) -> Page {
    let (record, revisions, groups, aliases, g, cards, config) = blocking(&state, move |store| {
        let record = store
            .find_user(&id.to_string())?
            .filter(|r| r.user.id == id)
            .ok_or_else(|| ApiError::not_found(format!("no account #{id}")))?;
        Ok((
            record,
            store.user_revisions(id)?,
            store.user_groups(id)?,
            store.user_aliases(id)?,
            store.guardianships(id)?,
            store.sis_card(id)?,
            store.load_config()?,
        ))
    })
    .await
    .map_err(fail)?;
    let u = &record.user;
    let facts = vec![
        ("Name", display_name(u)),
        ("Email", opt(&u.email)),
        ("Username", opt(&u.username)),
        ("Type", u.user_type.as_str().to_owned()),
        ("Access", u.access.as_str().to_owned()),
        ("Active", if u.active { "yes" } else { "no" }.to_owned()),
        ("Grade", opt(&u.grade)),
        ("Identifier", opt(&u.identifier)),
        ("Location", opt(&u.location)),
        ("Homeroom", opt(&u.homeroom)),
        ("Signs in with", opt(&u.provider)),
        (
            "SIS link",
            record
                .sis
                .as_ref()
                .map(|s| format!("{}: {}", s.source, s.sourced_id))
                .unwrap_or_else(|| "not linked".to_owned()),
        ),
        ("Created", ts(record.created_at)),
        ("Updated", ts(record.updated_at)),
    ];
    let title = format!("{} (#{id})", display_name(u));
    let link_source = record.sis.as_ref().map(|s| s.source.clone());
    let people = people_view(&state, &who, &config, link_source, search).await;
    Ok(render(&UserPage {
        nav: Nav::new(&who, title, "users", &flash),
        id,
        merged_into: u.merged_into,
        linked: record.sis.is_some(),
        link_source: record
            .sis
            .as_ref()
            .map(|s| s.source.clone())
            .unwrap_or_default(),
        sources: config.sources.iter().map(|s| s.name.clone()).collect(),
        cards: cards
            .iter()
            .map(|c| CardView {
                source: c.source.clone(),
                facts: vec![
                    ("sourcedId", c.sourced_id.clone()),
                    ("Identifier", opt(&c.identifier)),
                    ("Role", opt(&c.role)),
                    ("Status", opt(&c.status)),
                    (
                        "Enabled",
                        c.enabled
                            .map(|e| if e { "yes" } else { "no" }.to_owned())
                            .unwrap_or_default(),
                    ),
                    ("Grade", opt(&c.grade)),
                    (
                        "School",
                        c.primary_org_name
                            .clone()
                            .or_else(|| c.primary_org.clone())
                            .unwrap_or_default(),
                    ),
                    ("Location", opt(&c.location)),
                    ("Homeroom", opt(&c.homeroom)),
                    (
                        "Linked",
                        format!("{} by {}", ts(c.linked_at), c.rule.as_str()),
                    ),
                    ("Missing from full pulls", c.misses.to_string()),
                    (
                        "Deactivated by this source",
                        c.deactivated_at.map(ts).unwrap_or_default(),
                    ),
                ],
                classes: c
                    .classes
                    .iter()
                    .map(|k| (k.title.clone(), opt(&k.course), k.teachers.join(", ")))
                    .collect(),
                runs: c
                    .runs
                    .iter()
                    .map(|r| {
                        (
                            r.run,
                            ts(r.at),
                            r.outcome.as_str().to_owned(),
                            r.reason.clone(),
                        )
                    })
                    .collect(),
            })
            .collect(),
        students: g.students.iter().map(|s| (s.id, s.name.clone())).collect(),
        guardians: g.guardians.iter().map(|s| (s.id, s.name.clone())).collect(),
        groups,
        aliases: aliases
            .iter()
            .map(|a| format!("{}: {}", a.kind, a.value))
            .collect(),
        revisions: revisions.iter().flat_map(revision_views).collect(),
        facts,
        people,
    }))
}

/// The user page's search for the SIS person to link (`?people=WORDS&people_source=NAME`).
#[derive(Debug, Default, Deserialize)]
pub struct PeopleQuery {
    pub people: Option<String>,
    pub people_source: Option<String>,
}

/// One SIS person the search found, with what to show beside its button.
pub struct PersonView {
    pub sourced_id: String,
    pub name: String,
    pub email: String,
    pub identifier: String,
    pub role: String,
    pub grade: String,
    pub school: String,
    pub status: String,
    pub linked_to: Option<UserId>,
    /// The SIS is removing the person: no button.
    pub removed: bool,
}

/// The search box's state and what it found.
#[derive(Default)]
pub struct PeopleView {
    /// The words searched for (only ever shown in the box itself).
    pub query: String,
    /// The source searched: the account's linked source, else the one chosen.
    pub source: String,
    pub searched: bool,
    pub found: Vec<PersonView>,
    pub problem: String,
}

/// Runs the user page's people search, for writers.
async fn people_view(
    state: &Shared,
    who: &Principal,
    config: &Config,
    link_source: Option<String>,
    q: PeopleQuery,
) -> PeopleView {
    let query = q.people.unwrap_or_default().trim().to_owned();
    // Only a configured source is searched; text from the URL is never echoed.
    let chosen = q
        .people_source
        .filter(|s| config.source(s).is_some())
        .or(link_source)
        .or_else(|| config.sources.first().map(|s| s.name.clone()))
        .unwrap_or_default();
    let mut view = PeopleView {
        query: query.clone(),
        source: chosen.clone(),
        ..PeopleView::default()
    };
    if query.is_empty() || chosen.is_empty() || !who.role.can_write() {
        return view;
    }
    view.searched = true;
    match crate::people::search(state, chosen, query, 25).await {
        Ok(found) => {
            view.found = found
                .into_iter()
                .map(|p| PersonView {
                    name: format!("{} {}", p.given_name.trim(), p.family_name.trim())
                        .trim()
                        .to_owned(),
                    email: opt(&p.email),
                    identifier: opt(&p.identifier),
                    role: opt(&p.role),
                    grade: opt(&p.grade),
                    school: opt(&p.school),
                    removed: p.status == "tobedeleted",
                    status: if p.in_last_pull {
                        p.status
                    } else {
                        format!("{} (not in the last complete pull)", p.status)
                    },
                    linked_to: p.linked_user,
                    sourced_id: p.sourced_id,
                })
                .collect();
        }
        Err(e) => view.problem = e.message,
    }
    view
}

pub async fn user_sync(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(id): Path<UserId>,
) -> Response {
    let result = async {
        let o = crate::live::sync_user(&state, id, Trigger::Console).await?;
        let actor = who.actor();
        let now = state.now();
        let detail = api::user_sync_detail(id, &o);
        blocking(&state, move |store| {
            Ok(store.audit(&actor, "user.sync", &detail, now)?)
        })
        .await?;
        let run = o.run_id.map(|r| format!(" (run {r})")).unwrap_or_default();
        // A failed sync is a problem banner, never a green one.
        match o.error {
            Some(e) => Err(ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "sync_failed",
                format!("Sync User failed{run}: {e}"),
            )),
            None => Ok(format!("Synced from the SIS{run}: {}", o.status.as_str())),
        }
    }
    .await;
    back(&format!("/users/{id}"), result)
}

#[derive(Debug, Deserialize)]
pub struct LinkForm {
    pub source: Option<String>,
    pub sourced_id: Option<String>,
}

pub async fn user_unlink(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(id): Path<UserId>,
    Form(f): Form<LinkForm>,
) -> Response {
    let actor = who.actor();
    let now = state.now();
    let source = f.source.filter(|s| !s.is_empty());
    let result = blocking(&state, move |store| {
        let removed = store.unlink_user(id, source.as_deref(), &actor, now)?;
        Ok(format!(
            "link removed ({}); syncs will not link them again by themselves",
            removed
                .iter()
                .map(|(s, p)| format!("{s}: {p}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
    .await;
    back(&format!("/users/{id}"), result)
}

pub async fn user_relink(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(id): Path<UserId>,
    Form(f): Form<LinkForm>,
) -> Response {
    let result = crate::people::checked_link(&state, who.actor(), id, f.source, f.sourced_id, true)
        .await
        .map(|l| {
            format!(
                "SIS user changed from {} to {} — {}",
                l.old.as_deref().unwrap_or("?"),
                l.person(),
                l.found.confirmation()
            )
        });
    back(&format!("/users/{id}"), result)
}

pub async fn user_link(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(id): Path<UserId>,
    Form(f): Form<LinkForm>,
) -> Response {
    let result =
        crate::people::checked_link(&state, who.actor(), id, f.source, f.sourced_id, false)
            .await
            .map(|l| {
                format!(
                    "linked to {}: {} — {}; the next sync writes the account from it",
                    l.source,
                    l.person(),
                    l.found.confirmation()
                )
            });
    back(&format!("/users/{id}"), result)
}

// ----- models and audit

#[derive(Template)]
#[template(path = "models.html")]
struct ModelsPage {
    nav: Nav,
    models: Vec<(String, bool)>,
}

pub async fn models(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    flash: Flash,
) -> Page {
    let config = blocking(&state, |store| Ok(store.load_config()?))
        .await
        .map_err(fail)?;
    Ok(render(&ModelsPage {
        nav: Nav::new(&who, "Models", "models", &flash),
        models: config
            .sources
            .iter()
            .map(|s| (s.name.clone(), s.available_for_tickets))
            .collect(),
    }))
}

pub async fn save_models(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let f = FormData(pairs);
    let result = async {
        let mut config = blocking(&state, |store| Ok(store.load_config()?)).await?;
        for s in &mut config.sources {
            s.available_for_tickets = f.checked(&format!("available.{}", s.name));
        }
        let changed = settings_edit::save(&state, &who, config).await?;
        Ok(if changed.is_empty() {
            "nothing changed".to_owned()
        } else {
            "saved".to_owned()
        })
    }
    .await;
    back("/models", result)
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    nav: Nav,
    entries: Vec<(String, String, String, String)>,
}

pub async fn audit(State(state): State<Shared>, Extension(who): Extension<Principal>) -> Page {
    let list = blocking(&state, |store| Ok(store.audit_log(500)?))
        .await
        .map_err(fail)?;
    Ok(render(&AuditPage {
        nav: Nav::new(&who, "Audit log", "audit", &Flash::default()),
        entries: list
            .into_iter()
            .map(|a| (ts(a.at), a.actor, a.action, a.detail))
            .collect(),
    }))
}
