//! The review queue (a match the sync would not guess, waiting for an admin: link,
//! create, ignore or keep apart) and merging two accounts of one person, previewed first
//! (the queue's identity cases and the duplicates report lead there).
//!
//! The work is the store's (the same calls as the CLI and the API); these handlers only
//! turn forms into those calls and answers into pages.

use askama::Template;
use axum::Form;
use axum::extract::{Extension, Path, Query, State};
use axum::response::Response;
use rostersync_core::directory::AccountId;
use serde::Deserialize;
use store::{ReviewCase, ReviewCaseId, RunId};

use super::{Flash, Nav, PAGE, Page, back, fail, opt, render, ts};
use crate::api::{self, AccountKey};
use crate::auth::Principal;
use crate::{ApiError, Shared, blocking, blocking_as};

// ----- the review queue

pub struct CandidateView {
    pub id: AccountId,
    pub name: String,
    pub email: String,
    pub linked_to: String,
    /// Why linking the case's person to this account cannot succeed (it is linked to
    /// another person of the same source), in the console's words; empty when it can.
    pub cannot_link: String,
}

pub struct CaseView {
    pub id: ReviewCaseId,
    pub source: String,
    pub sourced_id: String,
    pub status: &'static str,
    pub open: bool,
    pub reason: String,
    pub evidence: Vec<(&'static str, String)>,
    pub candidates: Vec<CandidateView>,
    pub opened: String,
    pub opened_run: Option<RunId>,
    pub last_run: Option<RunId>,
    pub resolution: String,
    /// An email or username the person's account cannot take because another account
    /// has it (`identity_taken`): the usual answer is a merge, not a link.
    pub identity: bool,
    /// The person's linked account, for the merge (identity cases).
    pub merge_from: Option<AccountId>,
}

/// A case as the queue shows it. `sign_in`: the case's source is an account source, whose
/// "person" is a sign-in identity (its sign-in name, org unit and last sign-in).
fn case_view(c: &ReviewCase, sign_in: bool) -> CaseView {
    let e = &c.evidence;
    let evidence: Vec<(&'static str, Option<String>)> = if sign_in {
        vec![
            ("Name", Some(e.name.clone())),
            ("Email", e.email.clone()),
            ("Sign-in name", e.username.clone()),
            ("School id", e.identifier.clone()),
            ("Org unit", e.school.clone()),
            (
                "Last sign-in",
                Some(e.modified.map_or_else(|| "never".to_owned(), ts)),
            ),
        ]
    } else {
        vec![
            ("Name", Some(e.name.clone())),
            ("Email", e.email.clone()),
            ("Username", e.username.clone()),
            ("School id", e.identifier.clone()),
            ("Role", e.role.clone()),
            ("Grade", e.grade.clone()),
            ("School", e.school.clone()),
        ]
    };
    let evidence = evidence
        .into_iter()
        .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (k, v)))
        .collect();
    CaseView {
        id: c.id,
        source: c.source.clone(),
        sourced_id: c.sourced_id.clone(),
        status: c.status.as_str(),
        open: c.status == store::CaseStatus::Open,
        reason: c.reason.clone(),
        evidence,
        candidates: c
            .candidates
            .iter()
            .map(|k| {
                let mine = format!("{}:{}", c.source, c.sourced_id);
                let cannot_link = match &k.linked_to {
                    Some(other) if other.starts_with(&format!("{}:", c.source)) && *other != mine => {
                        format!(
                            "already linked to {other}: one account holds one person of a source. Open the account to remove that link first, or merge the two accounts if they are one person."
                        )
                    }
                    _ => String::new(),
                };
                CandidateView {
                    id: k.id,
                    name: k.name.clone(),
                    email: opt(&k.email),
                    linked_to: opt(&k.linked_to),
                    cannot_link,
                }
            })
            .collect(),
        opened: ts(c.opened_at),
        opened_run: c.opened_run,
        last_run: c.last_run,
        resolution: match (&c.resolution, &c.resolved_by, c.resolved_at) {
            (Some(r), Some(by), Some(at)) => format!("{r} (by {by}, {})", ts(at)),
            (Some(r), _, _) => r.clone(),
            _ => String::new(),
        },
        identity: c.reason_code == "identity_taken",
        merge_from: None,
    }
}

#[derive(Template)]
#[template(path = "review.html")]
struct ReviewPage {
    nav: Nav,
    status: String,
    statuses: Vec<(&'static str, bool)>,
    cases: Vec<CaseView>,
    next_after: Option<ReviewCaseId>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ReviewQuery {
    pub status: Option<String>,
    pub after: Option<ReviewCaseId>,
}

pub async fn review(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Query(q): Query<ReviewQuery>,
    flash: Flash,
) -> Page {
    let status = api::case_status(q.status.as_deref()).map_err(fail)?;
    let after = q.after;
    let (cases, views) = blocking(&state, move |store| {
        let cases = store.review_cases(status, after, PAGE)?;
        let config = store.load_config()?;
        let sign_in = |source: &str| {
            config
                .source(source)
                .is_some_and(|s| s.kind.is_account_source())
        };
        let mut views: Vec<CaseView> = cases
            .iter()
            .map(|c| case_view(c, sign_in(&c.source)))
            .collect();
        // Schools by name (with the sourcedId beside), from each source's last full pull.
        let mut names: std::collections::HashMap<
            String,
            std::collections::HashMap<String, String>,
        > = std::collections::HashMap::new();
        for v in views.iter_mut() {
            if !names.contains_key(&v.source) {
                names.insert(v.source.clone(), store.sis_org_names(&v.source)?);
            }
            for (k, value) in v.evidence.iter_mut() {
                if *k == "School"
                    && let Some(name) = names[&v.source].get(value.as_str())
                {
                    *value = format!("{name} ({value})");
                }
            }
        }
        for v in views.iter_mut().filter(|v| v.identity && v.open) {
            v.merge_from = store
                .sis_person(&v.source, &v.sourced_id)?
                .and_then(|p| p.linked_user);
        }
        Ok((cases, views))
    })
    .await
    .map_err(fail)?;
    let shown = status.unwrap_or("all");
    Ok(render(&ReviewPage {
        nav: Nav::new(&who, "Review queue", "review", &flash),
        status: shown.to_owned(),
        statuses: ["open", "resolved", "closed", "all"]
            .into_iter()
            .map(|s| (s, s == shown))
            .collect(),
        next_after: api::next_key(&cases, PAGE, |c| c.id),
        cases: views,
    }))
}

#[derive(Debug, Deserialize)]
pub struct ResolveForm {
    /// `link`, `create`, `ignore` or `keep_apart`.
    pub resolution: String,
    /// For `link`: the account (id, email or username).
    pub user: Option<String>,
}

pub async fn resolve(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(id): Path<ReviewCaseId>,
    Form(f): Form<ResolveForm>,
) -> Response {
    let result = blocking_as(&state, &who, move |store, actor, now| {
        let user = f
            .user
            .as_deref()
            .filter(|u| !u.trim().is_empty())
            .map(AccountKey::parse);
        let case = api::resolve_case(store, id, &f.resolution, user.as_ref(), actor, now)?;
        Ok(format!(
            "case {id} ({}: {}) resolved: {}; later syncs keep the decision",
            case.source,
            case.sourced_id,
            case.resolution.unwrap_or_default()
        ))
    })
    .await;
    back("/review", result)
}

// ----- merges

#[derive(Debug, Deserialize)]
pub struct MergeForm {
    /// The account that stays (id, email or username).
    pub into: String,
    /// Set: show what would move, change nothing.
    pub dry_run: Option<String>,
}

/// An account as the merge preview shows it.
pub struct Side {
    pub id: AccountId,
    pub name: String,
    pub email: String,
    pub username: String,
    pub sis: String,
}

#[derive(Template)]
#[template(path = "merge.html")]
struct MergePage {
    nav: Nav,
    loser: Side,
    survivor: Side,
    links: Vec<String>,
    groups: u64,
    relationships: u64,
    revisions: u64,
    aliases: Vec<String>,
}

fn side(store: &store::Store, id: AccountId) -> Result<Side, ApiError> {
    let r = api::account(store, id)?;
    Ok(Side {
        id,
        name: r.user.display_name(),
        email: opt(&r.user.email),
        username: opt(&r.user.username),
        sis: r
            .sis
            .map(|s| format!("{}: {}", s.source, s.sourced_id))
            .unwrap_or_else(|| "not linked".to_owned()),
    })
}

/// `dry_run` set: the preview (what would move, and a button to do it); else the merge,
/// and the survivor's page.
pub async fn merge_user(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(id): Path<AccountId>,
    Form(f): Form<MergeForm>,
) -> Response {
    let dry_run = f.dry_run.as_deref().is_some_and(|v| !v.is_empty());
    let into = AccountKey::parse(&f.into);
    let result = blocking_as(&state, &who, move |store, actor, now| {
        let summary = api::merge(store, id, &into, dry_run, actor, now)?;
        let sides = if dry_run {
            Some((side(store, summary.loser)?, side(store, summary.survivor)?))
        } else {
            None
        };
        Ok((summary, sides))
    })
    .await;
    match result {
        Err(e) => back(&format!("/users/{id}"), Err(e)),
        Ok((s, Some((loser, survivor)))) => render(&MergePage {
            nav: Nav::new(
                &who,
                format!("Merge #{} into #{}", s.loser, s.survivor),
                "users",
                &Flash::default(),
            ),
            loser,
            survivor,
            links: s
                .moved_links
                .iter()
                .map(|l| format!("{}: {}", l.source, l.sourced_id))
                .collect(),
            groups: s.groups_moved,
            relationships: s.relationships_moved,
            revisions: s.revisions_moved,
            aliases: s
                .aliases_added
                .iter()
                .map(|a| format!("{}: {}", a.kind, a.value))
                .collect(),
        }),
        Ok((s, None)) => back(
            &format!("/users/{}", s.survivor),
            Ok(format!(
                "account #{} merged into this one: {} SIS link(s), {} group membership(s), {} relationship(s) and {} history row(s) moved, {} alias(es) kept",
                s.loser,
                s.moved_links.len(),
                s.groups_moved,
                s.relationships_moved,
                s.revisions_moved,
                s.aliases_added.len()
            )),
        ),
    }
}
