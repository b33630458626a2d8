//! The console's pages: server-rendered (askama escapes everything it prints), plain
//! forms that work without JavaScript, htmx only for the live progress of a sync.
//!
//! Lists page by id or offset with a bounded size, and every count comes from an indexed
//! query, so pages stay fast at a million users.
//!
//! This file holds what every page shares: the layout's [`Nav`], rendering, the error
//! page, the redirect that carries a message, and formatting. Each family of pages has
//! its own file, and the routes name their handlers through the re-exports below:
//! [`assets`], [`sign_in`], [`sync`], [`settings`](mod@settings) (whose form logic is
//! the pure [`settings_form`]), [`runs`](mod@runs) (with approving, discarding and
//! undoing a run), [`users`], [`review`](mod@review) (the review queue, and merges),
//! [`reports`](mod@reports), [`models`](mod@models) and [`audit`](mod@audit).

mod assets;
mod audit;
mod models;
mod reports;
mod review;
mod runs;
mod settings;
pub(crate) mod settings_form;
mod sign_in;
mod sync;
mod users;

pub use assets::{console_css, console_js, favicon, htmx_js};
pub use audit::audit;
pub use models::{models, save_models};
pub use reports::reports;
pub use review::{merge_user, resolve, review};
pub use runs::{approve_run, discard_run, run, runs, undo_run};
pub use settings::{
    SettingsQuery, add_source, locations, save_locations, save_section, settings, validate,
};
pub use sign_in::{login, login_form, logout};
pub use sync::{ProgressView, overview, progress, start_sync};
pub use users::{user, user_link, user_relink, user_sync, user_unlink};

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use jiff::Timestamp;

use crate::ApiError;
use crate::auth::Principal;

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

/// The most rows a list page shows at once.
pub(crate) const PAGE: u32 = 100;

pub async fn not_found() -> Response {
    error_page(&ApiError::not_found("there is no such page"))
}
