//! Held runs: a plan that tripped a safeguard is stored with the run, nothing of it
//! applied, until an admin approves it (the run is reopened and the plan applied as it
//! was, when nothing it touches changed since), discards it, or a later run that applies
//! supersedes it.
//!
//! A held run's items are written as an apply would write them, so the run already lists
//! the people it would touch (`run_items(run, Some(Outcome::Deactivated), …)`); they are
//! replaced by the apply's own when it is approved.
//!
//! The plan is stored in parts (`held_plan_parts`, schema 17): each part a slice of its
//! items and SIS records, in the plan's order, and `runs.plan` the rest of it. Holding
//! ([`Holding`]), checking ([`check_held`]) and approving (`apply::apply_held`) go a part at
//! a time, so a plan of millions of people is never held whole, nor stored as one value
//! (a 3 M-person plan is ~2 GB of JSON: over the 1 GB a SQLite or PostgreSQL value may
//! hold). A plan held before schema 17 keeps its items in `runs.plan` and has no parts:
//! it is read the same way.

use jiff::Timestamp;
use rostersync_core::directory::AccountId;
use rostersync_core::guard::Trip;
use rostersync_core::plan::{Plan, PlanItem, SisRecord};
use serde::{Deserialize, Serialize};

use crate::apply::{RUN_ITEM_COLUMNS, run_item};
use crate::settings::audit;
use crate::sql::{Dialect, Keys, Rows, Tx, encode, query_opt, ts};
use crate::{Result, RunId, RunStatus, StoreError, counts_json};

/// Run items per bulk insert, and items per part of a whole plan held ([`hold_run`]).
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

/// Why and when a run is held: the safeguards it tripped, the pull's warnings.
pub(crate) struct Hold<'a> {
    pub(crate) trips: &'a [Trip],
    pub(crate) warnings: &'a [String],
    pub(crate) now: Timestamp,
}

/// A slice of a held plan as stored: items in the plan's order, and SIS records of those
/// items or of earlier parts' (see the v17 migration).
#[derive(Serialize)]
struct PartOut<'a> {
    items: &'a [PlanItem],
    sis_records: &'a [SisRecord],
}

/// A stored part, read back.
#[derive(Deserialize)]
pub(crate) struct Part {
    pub(crate) items: Vec<PlanItem>,
    pub(crate) sis_records: Vec<SisRecord>,
}

/// A run being held: its plan stored a part at a time, then the rest of it with the run.
pub(crate) struct Holding {
    run: RunId,
    source: String,
    parts: i64,
}

impl Holding {
    /// `Conflict` unless the run is running.
    pub(crate) fn begin(tx: &mut dyn Tx, run: RunId) -> Result<Holding> {
        let source = running_source(tx, run)?;
        Ok(Holding {
            run,
            source,
            parts: 0,
        })
    }

    /// `Conflict` unless the run syncs the plan's source.
    fn check_source(&self, plan_source: &str) -> Result<()> {
        if self.source != plan_source {
            return Err(StoreError::Conflict(format!(
                "run {} syncs source {} but the plan is for source {plan_source}",
                self.run, self.source
            )));
        }
        Ok(())
    }

    /// Stores the next part: `items` with a run item each (as an apply would write them),
    /// and `records` (each of an item of this part or an earlier one).
    pub(crate) fn part(
        &mut self,
        tx: &mut dyn Tx,
        items: &[PlanItem],
        records: &[SisRecord],
    ) -> Result<()> {
        if items.is_empty() && records.is_empty() {
            return Ok(());
        }
        for slice in items.chunks(SLICE) {
            let mut rows = Rows::new("run_items", &RUN_ITEM_COLUMNS);
            for item in slice {
                rows.push(run_item(self.run, item, item.user_id, None)?);
            }
            crate::runs::insert_items(tx, &rows)?;
        }
        let part = PartOut {
            items,
            sis_records: records,
        };
        tx.execute(
            "INSERT INTO held_plan_parts (run_id, seq, part) VALUES (?, ?, ?)",
            &[
                self.run.into(),
                self.parts.into(),
                encode("a part of the held plan", &part)?.into(),
            ],
        )?;
        self.parts += 1;
        Ok(())
    }

    /// Finishes the run `held` with `head`, the plan without its items and SIS records
    /// (stored as parts already).
    pub(crate) fn finish(self, tx: &mut dyn Tx, head: &Plan, hold: Hold<'_>) -> Result<()> {
        self.check_source(&head.source)?;
        if !head.items.is_empty() || !head.sis_records.is_empty() {
            return Err(StoreError::Conflict(format!(
                "run {}: a held plan's items and SIS records are stored as parts, not with the run",
                self.run
            )));
        }
        tx.execute(
            "UPDATE runs SET status = 'held', complete = ?, counts = ?, finished_at = ?, plan = ?, hold = ?, \
             warnings = ? WHERE id = ?",
            &[
                head.complete.into(),
                counts_json(&head.counts).into(),
                ts(hold.now).into(),
                encode("the held plan", head)?.into(),
                encode("the tripped safeguards", &hold.trips)?.into(),
                crate::warnings_json(hold.warnings).into(),
                self.run.into(),
            ],
        )?;
        // The newest held plan is the one to review: an older held run of the source will
        // never be applied as it is, and its parts (1.6 GB at 3 M people) would pile up
        // with every scheduled run of a bad day. Not for SCIM: each of its runs is one
        // write, and its held writes wait for a person each.
        if head.kind != rostersync_core::plan::SyncKind::Scim {
            supersede_older(tx, &self.source, self.run, "a later run that was held")?;
        }
        Ok(())
    }
}

/// Holds `run` with `plan` (a whole plan: its items in parts of [`SLICE`], its SIS records
/// in the last).
pub(crate) fn hold_run(tx: &mut dyn Tx, run: RunId, mut plan: Plan, hold: Hold<'_>) -> Result<()> {
    let mut holding = Holding::begin(tx, run)?;
    holding.check_source(&plan.source)?;
    let items = std::mem::take(&mut plan.items);
    let records = std::mem::take(&mut plan.sis_records);
    let mut slices = items.chunks(SLICE).peekable();
    while let Some(slice) = slices.next() {
        let last = slices.peek().is_none();
        holding.part(tx, slice, if last { &records } else { &[] })?;
    }
    if items.is_empty() {
        holding.part(tx, &[], &records)?;
    }
    holding.finish(tx, &plan, hold)
}

/// A held run's plan as stored with the run: without its items and SIS records, unless it
/// was held before they were stored in parts; and its tripped safeguards.
pub(crate) fn held_head(tx: &mut dyn Tx, run: RunId) -> Result<Option<(Plan, Vec<Trip>)>> {
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

/// How many parts a held run's plan is stored in.
pub(crate) fn part_count(tx: &mut dyn Tx, run: RunId) -> Result<i64> {
    Ok(query_opt(
        tx,
        "SELECT COUNT(*) FROM held_plan_parts WHERE run_id = ?",
        &[run.into()],
        |r| r.i64(0),
    )?
    .unwrap_or(0))
}

/// Part `seq` of a held run's plan.
pub(crate) fn read_part(tx: &mut dyn Tx, run: RunId, seq: i64) -> Result<Part> {
    let text = query_opt(
        tx,
        "SELECT part FROM held_plan_parts WHERE run_id = ? AND seq = ?",
        &[run.into(), seq.into()],
        |r| r.text(0),
    )?
    .ok_or_else(|| {
        StoreError::Corrupt(format!(
            "the held plan of run {run} is missing its part {seq}"
        ))
    })?;
    serde_json::from_str(&text)
        .map_err(|e| StoreError::Corrupt(format!("part {seq} of the held plan of run {run}: {e}")))
}

/// A held run's plan and its tripped safeguards, whole (for small plans: a SCIM write's).
pub(crate) fn held_plan(tx: &mut dyn Tx, run: RunId) -> Result<Option<(Plan, Vec<Trip>)>> {
    let Some((mut plan, trips)) = held_head(tx, run)? else {
        return Ok(None);
    };
    for seq in 0..part_count(tx, run)? {
        let part = read_part(tx, run, seq)?;
        plan.items.extend(part.items);
        plan.sis_records.extend(part.sis_records);
    }
    Ok(Some((plan, trips)))
}

/// What approving a held run needs before it applies ([`crate::Store::check_held`]).
#[derive(Debug, Clone, PartialEq)]
pub struct HeldCheck {
    /// The plan without its items and SIS records: its source, kind, counts, roster...
    pub head: Plan,
    pub trips: Vec<Trip>,
    /// The sourcedIds of the items whose account or link changed since, sorted.
    pub stale: Vec<String>,
    /// How many of its items write.
    pub writes: usize,
}

pub(crate) fn check_held(tx: &mut dyn Tx, run: RunId) -> Result<Option<HeldCheck>> {
    let Some((mut plan, trips)) = held_head(tx, run)? else {
        return Ok(None);
    };
    // A plan held before v17 keeps its items with the run.
    let items = std::mem::take(&mut plan.items);
    plan.sis_records = Vec::new();
    let mut stale = stale_items(tx, &plan.source, &items)?;
    let mut writes = items.iter().filter(|i| i.writes()).count();
    drop(items);
    for seq in 0..part_count(tx, run)? {
        let part = read_part(tx, run, seq)?;
        stale.extend(stale_items(tx, &plan.source, &part.items)?);
        writes += part.items.iter().filter(|i| i.writes()).count();
    }
    stale.sort_unstable();
    stale.dedup();
    Ok(Some(HeldCheck {
        head: plan,
        trips,
        stale,
        writes,
    }))
}

/// A held plan's parts are not needed once the run is applied, discarded or superseded
/// (`runs.plan` is set NULL with them).
pub(crate) fn forget_parts(tx: &mut dyn Tx, run: RunId) -> Result<()> {
    tx.execute(
        "DELETE FROM held_plan_parts WHERE run_id = ?",
        &[run.into()],
    )?;
    Ok(())
}

/// The people among `items` (of a plan of `source`) whose accounts or links changed since
/// the plan was made: an account whose revision is not the planned one, a link that no
/// longer points where the item expects, a person the plan would link or create who got
/// linked meanwhile. Sorted.
pub(crate) fn stale_items(
    tx: &mut dyn Tx,
    source: &str,
    items: &[PlanItem],
) -> Result<Vec<String>> {
    let items: Vec<_> = items.iter().filter(|i| i.writes()).collect();
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
    let links = crate::links::linked_accounts(tx, source, &ids)?;

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
    // Its items stay listed until the apply replaces them with its own, in its
    // transaction: an approval that fails or stops leaves the held run as it was.
    tx.execute(
        "UPDATE runs SET status = 'running', finished_at = NULL WHERE id = ?",
        &[run.into()],
    )?;
    Ok(())
}

/// Running → held again, with `note`: an approval that failed or stopped before it applied
/// anything (the plan is still stored). `false` when the run was not running.
pub(crate) fn rehold(tx: &mut dyn Tx, run: RunId, note: &str) -> Result<bool> {
    Ok(tx.execute(
        "UPDATE runs SET status = 'held', note = ? WHERE id = ? AND status = 'running' \
         AND plan IS NOT NULL",
        &[note.into(), run.into()],
    )? > 0)
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
    forget_parts(tx, run)?;
    let detail = match note {
        Some(n) => format!("run {run} of source {source} {}: {n}", status.as_str()),
        None => format!("run {run} of source {source} {}", status.as_str()),
    };
    audit(tx, actor, action, &detail, now)
}

/// A run of `source` applied or was held (`what`): its older held runs will never be
/// applied, and say which run took their place.
pub(crate) fn supersede_older(tx: &mut dyn Tx, source: &str, run: RunId, what: &str) -> Result<()> {
    tx.execute(
        "DELETE FROM held_plan_parts WHERE run_id IN \
         (SELECT id FROM runs WHERE source = ? AND status = 'held' AND id < ?)",
        &[source.into(), run.into()],
    )?;
    tx.execute(
        "UPDATE runs SET status = 'superseded', plan = NULL, \
         note = COALESCE(note || '; ', '') || ? WHERE source = ? AND status = 'held' AND id < ?",
        &[
            format!("superseded by run {run}, {what}").into(),
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
