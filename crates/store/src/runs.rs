//! Sync runs and their items: what every run did to every person, and why.

use std::collections::BTreeMap;

use jiff::Timestamp;
use rostersync_core::directory::AccountId;
use rostersync_core::guard::Trip;
use rostersync_core::plan::{Counts, FieldChange, Outcome, SyncKind};

use crate::sql::{Row, Rows, Tx, Value, query_opt, query_vec, ts};
use crate::{
    ItemFilter, NamedRunItem, NewRun, Result, RunFinish, RunId, RunItemRecord, RunRecord,
    RunStatus, StoreError, Trigger, counts_json,
};

const RUN_SELECT: &str = "SELECT id, source, kind, triggered_by, status, complete, started_at, finished_at, counts, error, \
     hold, note, warnings FROM runs";

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!(
        "stored {what} '{value}' is not one this version knows"
    ))
}

fn parse_kind(s: &str) -> Option<SyncKind> {
    [
        SyncKind::Full,
        SyncKind::Delta,
        SyncKind::User,
        SyncKind::Scim,
        SyncKind::Push,
    ]
    .into_iter()
    .find(|k| k.as_str() == s)
}

fn run_from_row(r: &dyn Row) -> Result<RunRecord> {
    let kind = r.text(2)?;
    let trigger = r.text(3)?;
    let status = r.text(4)?;
    let counts = r.text(8)?;
    Ok(RunRecord {
        id: RunId(r.i64(0)?),
        source: r.text(1)?,
        kind: parse_kind(&kind).ok_or_else(|| corrupt("run kind", &kind))?,
        trigger: Trigger::parse(&trigger).ok_or_else(|| corrupt("run trigger", &trigger))?,
        status: RunStatus::parse(&status).ok_or_else(|| corrupt("run status", &status))?,
        complete: r.bool(5)?,
        started_at: r.ts(6)?,
        finished_at: r.opt_ts(7)?,
        counts: serde_json::from_str::<Counts>(&counts)
            .map_err(|e| StoreError::Corrupt(format!("stored run counts '{counts}': {e}")))?,
        error: r.opt_text(9)?,
        hold: match r.opt_text(10)? {
            Some(json) => serde_json::from_str::<Vec<Trip>>(&json)
                .map_err(|e| StoreError::Corrupt(format!("stored safeguards of run: {e}")))?,
            None => Vec::new(),
        },
        note: r.opt_text(11)?,
        warnings: match r.opt_text(12)? {
            Some(json) if !json.is_empty() => serde_json::from_str::<Vec<String>>(&json)
                .map_err(|e| StoreError::Corrupt(format!("stored warnings of run: {e}")))?,
            _ => Vec::new(),
        },
    })
}

pub(crate) fn start_run(tx: &mut dyn Tx, run: &NewRun) -> Result<RunId> {
    query_opt(
        tx,
        "INSERT INTO runs (source, kind, triggered_by, status, complete, started_at, counts) \
         VALUES (?, ?, ?, 'running', FALSE, ?, ?) RETURNING id",
        &[
            run.source.as_str().into(),
            run.kind.as_str().into(),
            run.trigger.as_str().into(),
            ts(run.started_at).into(),
            counts_json(&Counts::default()).into(),
        ],
        |r| r.i64(0).map(RunId),
    )?
    .ok_or_else(|| StoreError::database("the new run got no id"))
}

/// Finishes a run that applied nothing. A held plan it was approving goes with it (an
/// approval that failed): a failed run is never approved, so its plan would only take room.
pub(crate) fn finish_run(tx: &mut dyn Tx, run: RunId, finish: &RunFinish) -> Result<()> {
    let changed = tx.execute(
        "UPDATE runs SET status = ?, complete = ?, counts = ?, error = ?, finished_at = ?, warnings = ?, \
         plan = NULL WHERE id = ?",
        &[
            finish.status.as_str().into(),
            finish.complete.into(),
            counts_json(&finish.counts).into(),
            finish.error.as_deref().into(),
            ts(finish.finished_at).into(),
            crate::warnings_json(&finish.warnings).into(),
            run.into(),
        ],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound(format!("run {run} does not exist")));
    }
    crate::held::forget_parts(tx, run)
}

pub(crate) fn set_run_warnings(tx: &mut dyn Tx, run: RunId, warnings: &[String]) -> Result<()> {
    let changed = tx.execute(
        "UPDATE runs SET warnings = ? WHERE id = ?",
        &[crate::warnings_json(warnings).into(), run.into()],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound(format!("run {run} does not exist")));
    }
    Ok(())
}

/// The sources with runs still `running`.
pub(crate) fn sources_running(tx: &mut dyn Tx) -> Result<Vec<String>> {
    query_vec(
        tx,
        "SELECT DISTINCT source FROM runs WHERE status = 'running' ORDER BY source",
        &[],
        |r| r.text(0),
    )
}

/// Settles a source's runs left `running` by a process that is gone: a held run whose
/// approval stopped goes back to `held` (its plan is still stored), any other becomes
/// `interrupted` with the reason. The caller holds the source's run lock, so none of
/// them is really running. Returns the runs settled and their new status.
pub(crate) fn settle_interrupted(
    tx: &mut dyn Tx,
    source: &str,
    now: Timestamp,
) -> Result<Vec<(RunId, RunStatus)>> {
    let runs = query_vec(
        tx,
        "SELECT id, plan IS NOT NULL FROM runs WHERE source = ? AND status = 'running' ORDER BY id",
        &[source.into()],
        |r| Ok((RunId(r.i64(0)?), r.bool(1)?)),
    )?;
    let mut settled = Vec::new();
    for (run, held_plan) in runs {
        if held_plan {
            crate::held::rehold(
                tx,
                run,
                "its approval was interrupted (the process stopped) before anything was applied: approve or discard it again",
            )?;
            settled.push((run, RunStatus::Held));
        } else {
            tx.execute(
                "UPDATE runs SET status = 'interrupted', finished_at = ?, error = ? WHERE id = ?",
                &[
                    ts(now).into(),
                    "interrupted: the process running it stopped (killed, crashed or shut down) before it finished; nothing of it was applied".into(),
                    run.into(),
                ],
            )?;
            settled.push((run, RunStatus::Interrupted));
        }
    }
    Ok(settled)
}

/// Marks one run `interrupted` if it is still `running` (its process is giving up on it);
/// a held plan it was approving goes with it, as for [`finish_run`].
pub(crate) fn interrupt_run(
    tx: &mut dyn Tx,
    run: RunId,
    note: &str,
    now: Timestamp,
) -> Result<bool> {
    let interrupted = tx.execute(
        "UPDATE runs SET status = 'interrupted', finished_at = ?, error = ?, plan = NULL \
         WHERE id = ? AND status = 'running'",
        &[ts(now).into(), note.into(), run.into()],
    )? > 0;
    if interrupted {
        crate::held::forget_parts(tx, run)?;
    }
    Ok(interrupted)
}

/// Newest first; `limit` 0 means all.
pub(crate) fn list_runs(tx: &mut dyn Tx, limit: u32) -> Result<Vec<RunRecord>> {
    let mut params = Vec::new();
    let sql = format!(
        "{RUN_SELECT} ORDER BY id DESC{}",
        tx.dialect().limit_offset(limit, 0, &mut params)
    );
    query_vec(tx, &sql, &params, run_from_row)
}

/// The runs of one source, or of one status, or both (all when both are `None`), newest
/// first; `limit` 0 means all.
pub(crate) fn runs_of(
    tx: &mut dyn Tx,
    source: Option<&str>,
    status: Option<RunStatus>,
    limit: u32,
) -> Result<Vec<RunRecord>> {
    let mut sql = format!("{RUN_SELECT} WHERE 1 = 1");
    let mut params: Vec<Value<'_>> = Vec::new();
    if let Some(s) = source {
        sql.push_str(" AND source = ?");
        params.push(s.into());
    }
    if let Some(s) = status {
        sql.push_str(" AND status = ?");
        params.push(s.as_str().into());
    }
    sql.push_str(" ORDER BY id DESC");
    sql.push_str(&tx.dialect().limit_offset(limit, 0, &mut params));
    query_vec(tx, &sql, &params, run_from_row)
}

pub(crate) fn get_run(tx: &mut dyn Tx, id: RunId) -> Result<Option<RunRecord>> {
    query_opt(
        tx,
        &format!("{RUN_SELECT} WHERE id = ?"),
        &[id.into()],
        run_from_row,
    )
}

/// In sourcedId order (bytewise in both engines); `limit` 0 means all.
pub(crate) fn run_items(
    tx: &mut dyn Tx,
    run: RunId,
    outcome: Option<Outcome>,
    limit: u32,
    offset: u64,
) -> Result<Vec<RunItemRecord>> {
    select_items(tx, run, outcome, None, limit, offset)
}

/// A page of a run's items for people to read: each with its account's name, in
/// natural order (`usr-9` before `usr-10`: shorter sourcedIds first, then bytewise, which
/// is numeric order for ids that share a prefix), optionally of one outcome and one
/// reason code.
pub(crate) fn run_item_page(
    tx: &mut dyn Tx,
    run: RunId,
    filter: &ItemFilter,
    limit: u32,
    offset: u64,
) -> Result<Vec<NamedRunItem>> {
    let mut sql = String::from(
        "SELECT i.sourced_id, i.user_id, i.outcome, i.reason_code, i.reason, i.changes, \
         u.preferred_name, u.first_name, u.last_name, u.username, u.email \
         FROM run_items i LEFT JOIN users u ON u.id = i.user_id WHERE i.run_id = ?",
    );
    let mut params: Vec<Value<'_>> = vec![run.into()];
    if let Some(o) = filter.outcome {
        sql.push_str(" AND i.outcome = ?");
        params.push(o.as_str().into());
    }
    match filter.reason_code.as_deref() {
        // Written out, so the partial index of rekeyed items (migration 0012) serves it: a
        // bound value cannot.
        Some("rekeyed") => sql.push_str(" AND i.reason_code = 'rekeyed'"),
        Some(code) => {
            sql.push_str(" AND i.reason_code = ?");
            params.push(code.into());
        }
        None => {}
    }
    sql.push_str(" ORDER BY length(i.sourced_id), i.sourced_id");
    sql.push_str(&tx.dialect().limit_offset(limit, offset, &mut params));
    query_vec(tx, &sql, &params, |r| {
        let item = item_from_row(r)?;
        // Created people of a held run have no account yet: no name.
        let name = match item.user_id {
            Some(id) => Some(crate::roster::display_name(
                id,
                r.opt_text(6)?.or(r.opt_text(7)?),
                r.opt_text(8)?,
                r.opt_text(9)?.as_deref(),
                r.opt_text(10)?.as_deref(),
            )),
            None => None,
        };
        Ok(NamedRunItem { item, name })
    })
}

/// How many of a run's items have each outcome, and how many have each reason code:
/// the numbers a run's page links from, kept as the items are written
/// ([`insert_items`], [`delete_items`]; migration 0012).
pub(crate) fn run_item_counts(tx: &mut dyn Tx, run: RunId) -> Result<Vec<(String, String, u64)>> {
    query_vec(
        tx,
        "SELECT outcome, reason_code, items FROM run_item_counts WHERE run_id = ? AND items > 0",
        &[run.into()],
        |r| {
            Ok((
                r.text(0)?,
                r.text(1)?,
                u64::try_from(r.i64(2)?).unwrap_or(0),
            ))
        },
    )
}

/// Writes run items (rows of `run_items`) and adds them to their runs' counts by outcome
/// and reason code. Every writer of run items goes through here.
pub(crate) fn insert_items(tx: &mut dyn Tx, rows: &Rows<'_>) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    tx.insert_rows(rows)?;
    let column = |name: &str| {
        rows.columns.iter().position(|c| *c == name).ok_or_else(|| {
            StoreError::Invalid(format!("run items written without their {name} column"))
        })
    };
    let (run, outcome, code) = (
        column("run_id")?,
        column("outcome")?,
        column("reason_code")?,
    );
    let mut counts: BTreeMap<(i64, &str, &str), i64> = BTreeMap::new();
    for row in &rows.rows {
        let (Value::Int(id), Value::Text(outcome), Value::Text(code)) =
            (&row[run], &row[outcome], &row[code])
        else {
            return Err(StoreError::Invalid(format!(
                "a run item's run id, outcome or reason code is of the wrong type: {:?}",
                (&row[run], &row[outcome], &row[code])
            )));
        };
        *counts.entry((*id, outcome, code)).or_default() += 1;
    }
    for ((id, outcome, code), n) in counts {
        tx.execute(
            "INSERT INTO run_item_counts (run_id, outcome, reason_code, items) VALUES (?, ?, ?, ?) \
             ON CONFLICT (run_id, outcome, reason_code) DO UPDATE SET items = run_item_counts.items + excluded.items",
            &[id.into(), outcome.into(), code.into(), n.into()],
        )?;
    }
    Ok(())
}

/// Takes all of a run's items away (a held run about to be applied, a held push about to
/// record what it did), and their counts.
pub(crate) fn delete_items(tx: &mut dyn Tx, run: RunId) -> Result<()> {
    tx.execute("DELETE FROM run_items WHERE run_id = ?", &[run.into()])?;
    tx.execute(
        "DELETE FROM run_item_counts WHERE run_id = ?",
        &[run.into()],
    )?;
    Ok(())
}

/// Counts every run's items again (after the migration that adds the counts, and after a
/// restore, which leaves them out of the backup).
pub(crate) fn recount_item_counts(tx: &mut dyn Tx) -> Result<()> {
    tx.execute_batch(
        "DELETE FROM run_item_counts;
         INSERT INTO run_item_counts (run_id, outcome, reason_code, items)
         SELECT run_id, outcome, reason_code, COUNT(*) FROM run_items GROUP BY run_id, outcome, reason_code;",
    )
}

fn item_from_row(r: &dyn Row) -> Result<RunItemRecord> {
    let outcome = r.text(2)?;
    let changes = r.text(5)?;
    Ok(RunItemRecord {
        sourced_id: r.text(0)?,
        user_id: r.opt_i64(1)?.map(AccountId),
        outcome: Outcome::parse(&outcome).ok_or_else(|| corrupt("run item outcome", &outcome))?,
        reason_code: r.text(3)?,
        reason: r.text(4)?,
        changes: serde_json::from_str::<Vec<FieldChange>>(&changes)
            .map_err(|e| StoreError::Corrupt(format!("stored run item changes: {e}")))?,
    })
}

/// Runs before `before` (all when `None`), newest first; `limit` 0 means all. Paging by
/// id: the next page is the runs before the last one of this page.
pub(crate) fn list_runs_before(
    tx: &mut dyn Tx,
    before: Option<RunId>,
    limit: u32,
) -> Result<Vec<RunRecord>> {
    let mut params: Vec<Value<'_>> = vec![before.unwrap_or(RunId(i64::MAX)).into()];
    let sql = format!(
        "{RUN_SELECT} WHERE id < ? ORDER BY id DESC{}",
        tx.dialect().limit_offset(limit, 0, &mut params)
    );
    query_vec(tx, &sql, &params, run_from_row)
}

/// Whether `source` had a succeeded run before `run`: if not, `run` is its first import.
pub(crate) fn succeeded_before(tx: &mut dyn Tx, source: &str, run: RunId) -> Result<bool> {
    Ok(query_opt(
        tx,
        "SELECT 1 FROM runs WHERE source = ? AND id < ? AND status = 'succeeded' LIMIT 1",
        &[source.into(), run.into()],
        |_| Ok(()),
    )?
    .is_some())
}

/// A run's items after the sourcedId `after` (all when `None`), in sourcedId order
/// (bytewise), optionally of one outcome; `limit` 0 means all. Paging by sourcedId, on
/// the items' key: each page costs the same however deep it is.
pub(crate) fn run_items_after(
    tx: &mut dyn Tx,
    run: RunId,
    outcome: Option<Outcome>,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<RunItemRecord>> {
    select_items(tx, run, outcome, after, limit, 0)
}

/// A run's items in sourcedId order: of one outcome, after a sourcedId, a page.
fn select_items(
    tx: &mut dyn Tx,
    run: RunId,
    outcome: Option<Outcome>,
    after: Option<&str>,
    limit: u32,
    offset: u64,
) -> Result<Vec<RunItemRecord>> {
    let mut sql = String::from(
        "SELECT sourced_id, user_id, outcome, reason_code, reason, changes FROM run_items WHERE run_id = ?",
    );
    let mut params: Vec<Value<'_>> = vec![run.into()];
    if let Some(o) = outcome {
        sql.push_str(" AND outcome = ?");
        params.push(o.as_str().into());
    }
    if let Some(after) = after {
        sql.push_str(" AND sourced_id > ?");
        params.push(after.into());
    }
    sql.push_str(" ORDER BY sourced_id");
    sql.push_str(&tx.dialect().limit_offset(limit, offset, &mut params));
    query_vec(tx, &sql, &params, item_from_row)
}
