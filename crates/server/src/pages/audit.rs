//! The audit log page: its latest 500 entries.

use askama::Template;
use axum::extract::{Extension, State};

use super::{Flash, Nav, Page, fail, render, ts};
use crate::auth::Principal;
use crate::{Shared, blocking};

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
