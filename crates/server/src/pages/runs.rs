//! Sync history: the list of runs (optionally of one status) and a run's page with its
//! items by outcome, its holds, warnings and whether it may be undone; and what the run
//! page's buttons do: a held run approved or discarded, an applied run undone (the same
//! calls as the API, through [`crate::runner`]). A push to a SCIM target is a run of its
//! target (kind `push`): its items are accounts (linked to their pages), it is approved
//! like any held run and never undone.

use std::time::Duration;

use askama::Template;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use rostersync_core::directory::AccountId;
use rostersync_core::plan::{Outcome, SyncKind};
use serde::Deserialize;
use store::{RunId, RunRecord, RunStatus, Trigger};

use super::{Flash, Nav, PAGE, Page, back, fail, render, ts};
use crate::api;
use crate::auth::Principal;
use crate::runner::{self, Approved};
use crate::{ApiError, Shared, blocking};

/// How long the console waits for an approval before showing the run as it goes.
const APPROVE_WAIT: Duration = Duration::from_secs(3);

pub struct RunRow {
    pub id: RunId,
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
    /// A push to a SCIM target (`source` is the target).
    pub push: bool,
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
        push: r.kind == SyncKind::Push,
    }
}

#[derive(Template)]
#[template(path = "runs.html")]
struct RunsPage {
    nav: Nav,
    /// Held runs waiting for an admin: (run, source).
    held: Vec<(RunId, String)>,
    runs: Vec<RunRow>,
    /// The names runs may be of (sources, SCIM connections, targets), to filter by.
    names: Vec<String>,
    /// The one shown, if the list is filtered by it.
    only: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RunsQuery {
    /// Only runs of this status (`held`, `failed`, …).
    pub status: Option<String>,
    /// Only runs of this source, SCIM connection or target (a busy SCIM connection's
    /// writes, one run each, would fill the list otherwise).
    pub source: Option<String>,
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
    let only = q.source.filter(|s| !s.is_empty());
    let wanted = only.clone();
    let (list, names) = blocking(&state, move |store| {
        let config = store.load_config()?;
        let names = config
            .sources
            .iter()
            .map(|s| s.name.clone())
            .chain(config.targets.iter().map(|t| t.name.clone()))
            .collect::<Vec<_>>();
        let list = match (status, wanted.as_deref()) {
            (None, None) => store.list_runs(200)?,
            (status, source) => store.runs_of(source, status, 200)?,
        };
        Ok((list, names))
    })
    .await
    .map_err(fail)?;
    let title = match (status, &only) {
        (None, None) => "Sync History".to_owned(),
        (Some(s), None) => format!("Sync History: {} runs", s.as_str()),
        (None, Some(n)) => format!("Sync History: {n}"),
        (Some(s), Some(n)) => format!("Sync History: {} runs of {n}", s.as_str()),
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
        names,
        only,
    }))
}

pub struct ItemView {
    pub sourced_id: String,
    pub user_id: Option<AccountId>,
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
    /// Skipped as an earlier run listed them: counted, not listed.
    skipped_before: u64,
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

pub async fn run(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(id): Path<RunId>,
    Query(q): Query<RunQuery>,
    flash: Flash,
) -> Page {
    run_page(&state, &who, id, q, &flash, Vec::new()).await
}

/// The run page, with the conflicts of a refused undo when there are some.
async fn run_page(
    state: &Shared,
    who: &Principal,
    id: RunId,
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
        let run = api::run_record(store, id)?;
        let items = store.run_item_page(id, &filter, PAGE + 1, offset)?;
        let tally = store.run_item_counts(id)?;
        // No succeeded run of the source before this one: its first import.
        let first_import = !store.succeeded_before(&run.source, id)?;
        Ok((run, items, tally, first_import))
    })
    .await
    .map_err(fail)?;
    let more = items.len() > PAGE as usize;
    let c = run.counts;
    let approving = runner::approving(state, id);
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
    let row = run_row(&run);
    // A push moves no SIS link: it has nothing rekeyed.
    if !row.push {
        outcomes.push((
            "reason=rekeyed".to_owned(),
            "rekeyed",
            rekeyed,
            reason.is_some(),
        ));
    }
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
        skipped_before: c.skipped_listed_before,
        outcome: outcome
            .map(|o: Outcome| o.as_str().to_owned())
            .unwrap_or_default(),
        reason: reason.unwrap_or_default(),
        // What a target was sent cannot be taken back.
        can_undo: run.status == store::RunStatus::Succeeded
            && row.wrote
            && !first_import
            && !row.push,
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

// ----- what the run page's buttons do

pub async fn approve_run(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(id): Path<RunId>,
) -> Response {
    let here = format!("/runs/{id}");
    match runner::approve(&state, id, Trigger::Console, &who.actor(), APPROVE_WAIT).await {
        Ok(Approved::Done(a)) => {
            let o = &a.outcome;
            let target = match o.run_id {
                Some(new) if !a.applied_as_held => format!("/runs/{new}"),
                _ => here,
            };
            let result = match &o.error {
                Some(e) => Err(ApiError::conflict(format!(
                    "run {id} was approved, but {e}"
                ))),
                None if o.kind == SyncKind::Push && o.status == RunStatus::Held => {
                    Err(ApiError::conflict(format!(
                        "run {id} was approved, but the push would now do more than when it was held: it is held again, nothing sent; look at it again"
                    )))
                }
                None if o.kind == SyncKind::Push => Ok(format!(
                    "run {id} approved and sent to {}: created {}, adopted {}, updated {}, deactivated {}, reactivated {}, errors {}",
                    o.source,
                    o.counts.created,
                    o.counts.linked,
                    o.counts.updated,
                    o.counts.deactivated,
                    o.counts.reactivated,
                    o.counts.errors
                )),
                None if a.applied_as_held => Ok(format!("run {id} approved and applied")),
                None => Ok(format!(
                    "{} account(s) changed since run {id} was planned: the source was synced again with the safeguards waived, as this run ({})",
                    a.stale.len(),
                    o.status.as_str()
                )),
            };
            back(&target, result)
        }
        Ok(Approved::Running(_)) => back(
            &here,
            Ok(format!(
                "run {id} is being approved: this page updates when it is done"
            )),
        ),
        Err(e) => back(&here, Err(e)),
    }
}

pub async fn discard_run(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(id): Path<RunId>,
) -> Response {
    let result = runner::discard(&state, id, &who.actor())
        .await
        .map(|_| format!("run {id} discarded: nothing of it was applied, nor ever will be"));
    back(&format!("/runs/{id}"), result)
}

pub async fn undo_run(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(id): Path<RunId>,
) -> Response {
    match runner::undo(&state, id, &who.actor(), false).await {
        Ok(s) => back(
            &format!("/runs/{id}"),
            Ok(format!(
                "run {id} undone: {} field(s) restored, {} account(s) reactivated, {} deactivated, {} created account(s) retired, {} link(s) removed, {} restored",
                s.fields_restored,
                s.reactivated.len(),
                s.deactivated.len(),
                s.retired.len(),
                s.links_removed.len(),
                s.links_restored.len()
            )),
        ),
        Err(e) if !e.conflicts.is_empty() => {
            let page = run_page(
                &state,
                &who,
                id,
                RunQuery::default(),
                &Flash::default(),
                e.conflicts,
            )
            .await;
            let mut r = page.unwrap_or_else(|r| r);
            if r.status() == StatusCode::OK {
                *r.status_mut() = StatusCode::CONFLICT;
            }
            r
        }
        Err(e) => back(&format!("/runs/{id}"), Err(e)),
    }
}
