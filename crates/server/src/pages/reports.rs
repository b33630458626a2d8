//! The reports: accounts with no SIS link (each with the people it probably is), likely
//! duplicates, and stale accounts.
//!
//! The judgements are the store's and core's (the same calls as the CLI and the API);
//! this page only shows them.

use askama::Template;
use axum::extract::{Extension, Query, State};
use rostersync_core::directory::AccountId;
use serde::Deserialize;
use store::ReviewCaseId;

use super::{Flash, Nav, PAGE, Page, fail, opt, render};
use crate::api::{self, ReportKind, ReportPage};
use crate::auth::Principal;
use crate::{Shared, blocking};

pub struct SuggestionView {
    pub name: String,
    pub person: String,
    pub email: String,
    pub score: u8,
    pub evidence: String,
    pub linked_to: Option<AccountId>,
    pub review_case: Option<ReviewCaseId>,
}

/// An account as the unlinked and the duplicates reports list it: the columns both show,
/// then each one's own (left empty by the other): an unlinked account's username and the
/// SIS people it probably is, a duplicate's SIS link.
pub struct AccountView {
    pub id: AccountId,
    pub name: String,
    pub email: String,
    pub grade: String,
    pub location: String,
    pub provider: String,
    pub username: String,
    pub suggestions: Vec<SuggestionView>,
    pub sis: String,
}

/// The columns both account reports show, from a `store::UnlinkedAccount` or a
/// `store::DuplicateAccount` (they name them alike); the report's own left empty.
macro_rules! account_view {
    ($a:ident) => {
        AccountView {
            id: $a.id,
            name: $a.name,
            email: opt(&$a.email),
            grade: opt(&$a.grade),
            location: opt(&$a.location),
            provider: provider_text(&$a.provider, &$a.identities),
            username: String::new(),
            suggestions: Vec::new(),
            sis: String::new(),
        }
    };
}

pub struct GroupView {
    pub accounts: Vec<AccountView>,
    pub evidence: Vec<String>,
}

pub struct StaleView {
    pub id: AccountId,
    pub name: String,
    pub email: String,
    pub person: String,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "reports.html")]
struct ReportsPage {
    nav: Nav,
    kind: &'static str,
    kinds: Vec<(&'static str, bool)>,
    unlinked: Vec<AccountView>,
    groups: Vec<GroupView>,
    stale: Vec<StaleView>,
    next_after: Option<AccountId>,
    empty: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct ReportsQuery {
    pub kind: Option<String>,
    pub after: Option<AccountId>,
}

pub async fn reports(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Query(q): Query<ReportsQuery>,
) -> Page {
    let kind = match q.kind.as_deref().filter(|k| !k.is_empty()) {
        None => ReportKind::Unlinked,
        Some(k) => ReportKind::parse(k).map_err(fail)?,
    };
    let after = q.after;
    let page = blocking(&state, move |store| {
        api::report_page(store, kind, after, PAGE)
    })
    .await
    .map_err(fail)?;
    let next_after = page.next_after(PAGE);
    let (mut unlinked, mut groups, mut stale) = (Vec::new(), Vec::new(), Vec::new());
    match page {
        ReportPage::Unlinked(v) => {
            unlinked = v
                .into_iter()
                .map(|a| AccountView {
                    username: opt(&a.username),
                    suggestions: a
                        .suggestions
                        .into_iter()
                        .map(|s| SuggestionView {
                            person: format!("{}: {}", s.source, s.sourced_id),
                            name: s.name,
                            email: opt(&s.email),
                            score: s.score,
                            evidence: s
                                .evidence
                                .iter()
                                .map(|e| e.detail.clone())
                                .collect::<Vec<_>>()
                                .join("; "),
                            linked_to: s.linked_to,
                            review_case: s.review_case,
                        })
                        .collect(),
                    ..account_view!(a)
                })
                .collect();
        }
        ReportPage::Duplicates(v) => {
            groups = v
                .into_iter()
                .map(|g| GroupView {
                    accounts: g
                        .accounts
                        .into_iter()
                        .map(|a| AccountView {
                            sis: a
                                .sis
                                .map(|s| format!("{}: {}", s.source, s.sourced_id))
                                .unwrap_or_default(),
                            ..account_view!(a)
                        })
                        .collect(),
                    evidence: g.evidence.into_iter().map(|e| e.detail).collect(),
                })
                .collect();
        }
        ReportPage::Stale(v) => {
            stale = v
                .into_iter()
                .map(|a| StaleView {
                    id: a.id,
                    name: a.name,
                    email: opt(&a.email),
                    person: format!("{}: {}", a.source, a.sourced_id),
                    reason: a.reason,
                })
                .collect();
        }
    }
    let title = match kind {
        ReportKind::Unlinked => "Reports · unlinked accounts",
        ReportKind::Duplicates => "Reports · likely duplicates",
        ReportKind::Stale => "Reports · stale accounts",
    };
    Ok(render(&ReportsPage {
        nav: Nav::new(&who, title, "reports", &Flash::default()),
        kind: kind.as_str(),
        kinds: ReportKind::ALL
            .into_iter()
            .map(|k| (k.as_str(), k == kind))
            .collect(),
        empty: unlinked.is_empty() && groups.is_empty() && stale.is_empty(),
        unlinked,
        groups,
        stale,
        next_after,
    }))
}

/// How an account signs in, with what its account sources last read of each identity:
/// `google (ann@d.us, suspended, /Students, last sign-in 2026-11-30)`.
fn provider_text(provider: &Option<String>, identities: &[store::SignInIdentity]) -> String {
    let mut text = provider.clone().unwrap_or_default();
    for i in identities {
        let mut parts = vec![i.login.clone()];
        if i.status != "active" {
            parts.push(i.status.clone());
        }
        if let Some(ou) = &i.org_unit {
            parts.push(ou.clone());
        }
        parts.push(match i.last_sign_in {
            Some(at) => format!("last sign-in {}", at.strftime("%Y-%m-%d")),
            None => "never signed in".to_owned(),
        });
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&format!("[{}: {}]", i.source, parts.join(", ")));
    }
    text
}
