//! Held runs: a plan that tripped a safeguard is stored with the run, nothing of it
//! applied, until an admin approves it (the run is reopened and the plan applied as it
//! was, when nothing it touches changed since), discards it, or a later run that applies
//! supersedes it.
//!
//! A held run's items are written as an apply would write them, so the run already lists
//! the people it would touch (`run_items(run, Some(Outcome::Deactivated), …)`); they are
//! replaced by the apply's own when it is approved.

use jiff::Timestamp;
use rostersync_core::directory::AccountId;
use rostersync_core::guard::Trip;
use rostersync_core::plan::Plan;

use crate::apply::{RUN_ITEM_COLUMNS, run_item};
use crate::settings::audit;
use crate::sql::{Dialect, Keys, Rows, Tx, encode, query_opt, ts};
use crate::{Result, RunId, RunStatus, StoreError, counts_json};

/// Run items per bulk insert.
const SLICE: usize = 10_000;

/// The run's status and source, locked for the transaction on PostgreSQL.
fn run_state(tx: &mut dyn Tx, run: RunId) -> Result<(String, String)> {
    let lock = if tx.dialect() == Dialect::Postgres {
        " FOR UPDATE"
    } else {
        ""
    };
    query_opt(
        tx,
        &format!("SELECT status, source FROM runs WHERE id = ?{lock}"),
        &[run.into()],
        |r| Ok((r.text(0)?, r.text(1)?)),
    )?
    .ok_or_else(|| {
        StoreError::NotFound(format!(
            "run {run} does not exist: `rostersync runs list` shows the runs"
        ))
    })
}

/// The source of a run about to be held; `Conflict` unless it is running.
pub(crate) fn running_source(tx: &mut dyn Tx, run: RunId) -> Result<String> {
    let (status, source) = run_state(tx, run)?;
    if status != RunStatus::Running.as_str() {
        return Err(StoreError::Conflict(format!(
            "run {run} is already {status}: only a running run can be held"
        )));
    }
    Ok(source)
}

pub(crate) fn hold_run(
    tx: &mut dyn Tx,
    run: RunId,
    plan: &Plan,
    trips: &[Trip],
    warnings: &[String],
    now: Timestamp,
) -> Result<()> {
    let source = running_source(tx, run)?;
    if source != plan.source {
        return Err(StoreError::Conflict(format!(
            "run {run} syncs source {source} but the plan is for source {}",
            plan.source
        )));
    }
    for slice in plan.items.chunks(SLICE) {
        let mut rows = Rows::new("run_items", &RUN_ITEM_COLUMNS);
        for item in slice {
            rows.push(run_item(run, item, item.user_id, None)?);
        }
        crate::runs::insert_items(tx, &rows)?;
    }
    tx.execute(
        "UPDATE runs SET status = 'held', complete = ?, counts = ?, finished_at = ?, plan = ?, hold = ?, \
         warnings = ? WHERE id = ?",
        &[
            plan.complete.into(),
            counts_json(&plan.counts).into(),
            ts(now).into(),
            encode("the held plan", plan)?.into(),
            encode("the tripped safeguards", &trips)?.into(),
            crate::warnings_json(warnings).into(),
            run.into(),
        ],
    )?;
    Ok(())
}

pub(crate) fn held_plan(tx: &mut dyn Tx, run: RunId) -> Result<Option<(Plan, Vec<Trip>)>> {
    let Some((plan, hold)) = query_opt(
        tx,
        "SELECT plan, hold FROM runs WHERE id = ?",
        &[run.into()],
        |r| Ok((r.opt_text(0)?, r.opt_text(1)?)),
    )?
    else {
        return Ok(None);
    };
    let Some(plan) = plan else { return Ok(None) };
    let plan: Plan = serde_json::from_str(&plan)
        .map_err(|e| StoreError::Corrupt(format!("the stored plan of run {run}: {e}")))?;
    let trips: Vec<Trip> = match hold {
        Some(h) => serde_json::from_str(&h)
            .map_err(|e| StoreError::Corrupt(format!("the stored safeguards of run {run}: {e}")))?,
        None => Vec::new(),
    };
    Ok(Some((plan, trips)))
}

/// The people whose accounts or links changed since the plan was made: an account whose
/// revision is not the planned one, a link that no longer points where the item expects,
/// a person the plan would link or create who got linked meanwhile.
pub(crate) fn stale_items(tx: &mut dyn Tx, plan: &Plan) -> Result<Vec<String>> {
    let items: Vec<_> = plan.writes().collect();
    let mut users: Vec<AccountId> = items.iter().filter_map(|i| i.user_id).collect();
    users.sort_unstable();
    users.dedup();
    let mut revisions: std::collections::HashMap<AccountId, i64> = std::collections::HashMap::new();
    tx.for_each_in(
        "SELECT id, revision FROM users WHERE id {keys}",
        &[],
        Keys::Accounts(&users),
        &mut |r| {
            revisions.insert(AccountId(r.i64(0)?), r.i64(1)?);
            Ok(())
        },
    )?;
    let mut ids: Vec<String> = Vec::new();
    for i in &items {
        ids.push(i.sourced_id.clone());
        if let Some(old) = &i.replaces {
            ids.push(old.clone());
        }
    }
    ids.sort_unstable();
    ids.dedup();
    let links = crate::links::linked_accounts(tx, &plan.source, &ids)?;

    let mut stale = Vec::new();
    for i in items {
        let now_linked = links.get(&i.sourced_id).copied();
        let moved = match i.user_id {
            // A person back after the grace period takes the link of their old account.
            None => now_linked != i.retires,
            Some(user) => {
                let revision_moved = match (i.planned_revision, revisions.get(&user)) {
                    (_, None) => true,
                    (Some(planned), Some(now)) => planned != *now,
                    (None, Some(_)) => false,
                };
                let new_link = i.link.as_ref().is_some_and(|l| l.is_new);
                let link_moved = if let Some(old) = &i.replaces {
                    links.get(old) != Some(&user) || now_linked.is_some_and(|u| u != user)
                } else if new_link {
                    now_linked.is_some_and(|u| u != user)
                } else if i.link.is_some() {
                    now_linked != Some(user)
                } else {
                    false
                };
                revision_moved || link_moved
            }
        };
        if moved {
            stale.push(i.sourced_id.clone());
        }
    }
    stale.sort_unstable();
    stale.dedup();
    Ok(stale)
}

pub(crate) fn reopen_held(tx: &mut dyn Tx, run: RunId) -> Result<()> {
    let (status, _) = run_state(tx, run)?;
    if status != RunStatus::Held.as_str() {
        return Err(StoreError::Conflict(format!(
            "run {run} is {status}, not held: only a held run can be approved"
        )));
    }
    // The apply writes the items again, as they turn out.
    crate::runs::delete_items(tx, run)?;
    tx.execute(
        "UPDATE runs SET status = 'running', finished_at = NULL WHERE id = ?",
        &[run.into()],
    )?;
    Ok(())
}

pub(crate) fn set_run_status(
    tx: &mut dyn Tx,
    run: RunId,
    status: RunStatus,
    note: Option<&str>,
    actor: &str,
    now: Timestamp,
) -> Result<()> {
    let action = match status {
        RunStatus::Discarded => "run.discard",
        RunStatus::Superseded => "run.supersede",
        other => {
            return Err(StoreError::Conflict(format!(
                "a run is set {} by the sync itself, not by hand: only discarded and superseded can be set",
                other.as_str()
            )));
        }
    };
    let (current, source) = run_state(tx, run)?;
    // Setting the status a run already has only updates the note (a run a later sync
    // superseded while its approval re-planned it).
    if current != RunStatus::Held.as_str() && current != status.as_str() {
        return Err(StoreError::Conflict(format!(
            "run {run} is {current}, not held: only a held run can be {}",
            status.as_str()
        )));
    }
    tx.execute(
        "UPDATE runs SET status = ?, note = COALESCE(?, note), plan = NULL WHERE id = ?",
        &[status.as_str().into(), note.into(), run.into()],
    )?;
    let detail = match note {
        Some(n) => format!("run {run} of source {source} {}: {n}", status.as_str()),
        None => format!("run {run} of source {source} {}", status.as_str()),
    };
    audit(tx, actor, action, &detail, now)
}

/// A run of `source` applied: its older held runs will never be, and say which run took
/// their place.
pub(crate) fn supersede_older(tx: &mut dyn Tx, source: &str, run: RunId) -> Result<()> {
    tx.execute(
        "UPDATE runs SET status = 'superseded', plan = NULL, \
         note = COALESCE(note || '; ', '') || ? WHERE source = ? AND status = 'held' AND id < ?",
        &[
            format!("superseded by run {run}, a later run that applied").into(),
            source.into(),
            run.into(),
        ],
    )?;
    Ok(())
}

/// Whether undo may run: the run applied (it is `succeeded`).
pub(crate) fn require_applied(tx: &mut dyn Tx, run: RunId) -> Result<String> {
    let (status, source) = run_state(tx, run)?;
    if status != RunStatus::Succeeded.as_str() {
        let why = match RunStatus::parse(&status) {
            Some(RunStatus::Undone) => "it was undone already".to_owned(),
            Some(RunStatus::Held | RunStatus::Discarded | RunStatus::Superseded) => {
                "nothing of it was applied".to_owned()
            }
            Some(RunStatus::Running) => "it is still running".to_owned(),
            _ => format!("it is {status}"),
        };
        return Err(StoreError::Conflict(format!(
            "run {run} cannot be undone: {why}; only a run that succeeded can be"
        )));
    }
    Ok(source)
}
