//! What each SCIM target holds (`push_state`): per target and account, the attributes
//! last pushed and their hash, the target's id for the user, and the last failure. A
//! push reads the hashes of every account (cheap), the attributes only of the accounts
//! whose hash differs, and writes its items and the new state one batch per transaction,
//! so a push that stops half-way keeps what it sent.

use std::collections::HashMap;

use jiff::Timestamp;
use rostersync_core::directory::AccountId;
use rostersync_core::guard::Trip;
use rostersync_core::plan::{Counts, FieldChange, Outcome, Reason};
use rostersync_core::push::{Held, Pushed};

use crate::apply::RUN_ITEM_COLUMNS;
use crate::sql::{Keys, Rows, Tx, Value, parse_ts, query_opt, query_vec, ts};
use crate::{Result, RunId, RunStatus, StoreError, counts_json};

/// What one account's push did, to record: its run item and what the target now holds.
#[derive(Debug, Clone)]
pub struct PushRecord {
    pub account: AccountId,
    pub outcome: Outcome,
    pub reason: Reason,
    pub changes: Vec<FieldChange>,
    pub state: PushWrite,
}

/// What a push leaves in the push state of an account.
#[derive(Debug, Clone)]
pub enum PushWrite {
    /// Nothing changes (a held push's item, a refused adoption).
    Keep,
    /// The target accepted `pushed`; its id for the user is `remote_id`.
    Sent { remote_id: String, pushed: Pushed },
    /// The request failed: the account is tried again next push.
    Failed { error: String },
    /// The target deleted the user (`delete = true`): it holds nothing any more.
    Forgotten,
}

/// One account's state on one target, for the account's page.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PushStateRow {
    pub target: String,
    pub remote_id: Option<String>,
    pub active: bool,
    pub pushed_at: Timestamp,
    pub error: Option<String>,
}

/// How many users a target holds, active, and failing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TargetCounts {
    pub held: u64,
    pub active: u64,
    pub failing: u64,
}

fn encode<T: serde::Serialize>(what: &str, v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::database(format!("cannot encode {what}: {e}")))
}

/// Every account's [`Held`] on `target`, with the target's id for the user.
pub(crate) fn push_held(
    tx: &mut dyn Tx,
    target: &str,
) -> Result<HashMap<AccountId, (Held, Option<String>)>> {
    let mut held = HashMap::new();
    tx.for_each(
        "SELECT user_id, hash, active, remote_id FROM push_state WHERE target = ?",
        &[target.into()],
        &mut |r| {
            let remote = r.opt_text(3)?;
            held.insert(
                AccountId(r.i64(0)?),
                (
                    Held {
                        hash: r.i64(1)?,
                        active: r.bool(2)?,
                        remote: remote.is_some(),
                    },
                    remote,
                ),
            );
            Ok(())
        },
    )?;
    Ok(held)
}

/// What `target` was last sent for each of `accounts` (those it holds).
pub(crate) fn pushed(
    tx: &mut dyn Tx,
    target: &str,
    accounts: &[AccountId],
) -> Result<HashMap<AccountId, Pushed>> {
    let mut out = HashMap::new();
    tx.for_each_in(
        "SELECT user_id, pushed FROM push_state WHERE target = ? AND user_id {keys}",
        &[target.into()],
        Keys::Accounts(accounts),
        &mut |r| {
            let id = AccountId(r.i64(0)?);
            let p: Pushed = serde_json::from_str(&r.text(1)?).map_err(|e| {
                StoreError::Corrupt(format!("stored push state of account #{id}: {e}"))
            })?;
            out.insert(id, p);
            Ok(())
        },
    )?;
    Ok(out)
}

fn item_row(run: RunId, rec: &PushRecord) -> Result<Vec<Value<'static>>> {
    Ok(vec![
        run.into(),
        rec.account.to_string().into(),
        Some(rec.account).into(),
        rec.outcome.as_str().into(),
        rec.reason.code().into(),
        rec.reason.to_string().into(),
        encode("a reason", &rec.reason)?.into(),
        encode("changes", &rec.changes)?.into(),
        None::<String>.into(),
    ])
}

/// Records a batch of a push: the run's items, and what the target now holds.
pub(crate) fn record_push(
    tx: &mut dyn Tx,
    run: RunId,
    target: &str,
    records: &[PushRecord],
    now: Timestamp,
) -> Result<()> {
    let mut items = Rows::new("run_items", &RUN_ITEM_COLUMNS);
    let now_s = ts(now);
    for rec in records {
        items.push(item_row(run, rec)?);
        match &rec.state {
            PushWrite::Keep => {}
            PushWrite::Sent { remote_id, pushed } => {
                tx.execute(
                    "INSERT INTO push_state (target, user_id, remote_id, hash, pushed, active, pushed_at, error) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, NULL) ON CONFLICT (target, user_id) DO UPDATE SET \
                     remote_id = excluded.remote_id, hash = excluded.hash, pushed = excluded.pushed, \
                     active = excluded.active, pushed_at = excluded.pushed_at, error = NULL",
                    &[
                        target.into(),
                        rec.account.into(),
                        remote_id.as_str().into(),
                        pushed.hash().into(),
                        encode("pushed attributes", pushed)?.into(),
                        pushed.active.into(),
                        now_s.as_str().into(),
                    ],
                )?;
            }
            PushWrite::Failed { error } => {
                // A user the target never had gets a row that no hash matches, so the
                // next push creates it again.
                tx.execute(
                    "INSERT INTO push_state (target, user_id, remote_id, hash, pushed, active, pushed_at, error) \
                     VALUES (?, ?, NULL, 0, ?, FALSE, ?, ?) ON CONFLICT (target, user_id) DO UPDATE SET \
                     error = excluded.error",
                    &[
                        target.into(),
                        rec.account.into(),
                        encode("pushed attributes", &Pushed::default())?.into(),
                        now_s.as_str().into(),
                        error.as_str().into(),
                    ],
                )?;
            }
            PushWrite::Forgotten => {
                tx.execute(
                    "DELETE FROM push_state WHERE target = ? AND user_id = ?",
                    &[target.into(), rec.account.into()],
                )?;
            }
        }
    }
    if !items.is_empty() {
        tx.insert_rows(&items)?;
    }
    Ok(())
}

/// The marker a held push leaves in its run's `plan`: what it would have done, which
/// its approval compares a fresh plan with.
#[derive(serde::Serialize, serde::Deserialize)]
struct HeldPush {
    push: Counts,
}

/// Holds a push for approval: its items (what it would do) and counts recorded, nothing
/// sent.
pub(crate) fn hold_push(
    tx: &mut dyn Tx,
    run: RunId,
    counts: &Counts,
    trips: &[Trip],
    records: &[PushRecord],
    now: Timestamp,
) -> Result<()> {
    let status = query_opt(
        tx,
        "SELECT status FROM runs WHERE id = ?",
        &[run.into()],
        |r| r.text(0),
    )?
    .ok_or_else(|| StoreError::NotFound(format!("run {run} does not exist")))?;
    if status != RunStatus::Running.as_str() {
        return Err(StoreError::Conflict(format!(
            "run {run} is already {status}: only a running run can be held"
        )));
    }
    tx.execute("DELETE FROM run_items WHERE run_id = ?", &[run.into()])?;
    for slice in records.chunks(10_000) {
        let mut items = Rows::new("run_items", &RUN_ITEM_COLUMNS);
        for rec in slice {
            items.push(item_row(run, rec)?);
        }
        tx.insert_rows(&items)?;
    }
    tx.execute(
        "UPDATE runs SET status = 'held', complete = TRUE, counts = ?, finished_at = ?, plan = ?, hold = ? \
         WHERE id = ?",
        &[
            counts_json(counts).into(),
            ts(now).into(),
            encode("the held push", &HeldPush { push: *counts })?.into(),
            encode("the tripped safeguards", &trips)?.into(),
            run.into(),
        ],
    )?;
    Ok(())
}

/// The counts a held push would have had (`None`: the run is no held push).
pub(crate) fn held_push(tx: &mut dyn Tx, run: RunId) -> Result<Option<Counts>> {
    let plan = query_opt(
        tx,
        "SELECT plan FROM runs WHERE id = ? AND kind = 'push'",
        &[run.into()],
        |r| r.opt_text(0),
    )?
    .flatten();
    plan.map(|p| {
        serde_json::from_str::<HeldPush>(&p)
            .map(|h| h.push)
            .map_err(|e| StoreError::Corrupt(format!("the stored held push of run {run}: {e}")))
    })
    .transpose()
}

/// Takes a held push's items away before its approval records what it did.
pub(crate) fn clear_items(tx: &mut dyn Tx, run: RunId) -> Result<()> {
    tx.execute("DELETE FROM run_items WHERE run_id = ?", &[run.into()])?;
    Ok(())
}

/// Where an account stands on each target.
pub(crate) fn push_states(tx: &mut dyn Tx, user: AccountId) -> Result<Vec<PushStateRow>> {
    query_vec(
        tx,
        "SELECT target, remote_id, active, pushed_at, error FROM push_state WHERE user_id = ? ORDER BY target",
        &[user.into()],
        |r| {
            Ok(PushStateRow {
                target: r.text(0)?,
                remote_id: r.opt_text(1)?,
                active: r.bool(2)?,
                pushed_at: parse_ts(&r.text(3)?)?,
                error: r.opt_text(4)?,
            })
        },
    )
}

/// How many users `target` holds, how many active, and how many failed last time.
pub(crate) fn target_counts(tx: &mut dyn Tx, target: &str) -> Result<TargetCounts> {
    Ok(query_opt(
        tx,
        "SELECT COUNT(remote_id), COALESCE(SUM(CASE WHEN active AND remote_id IS NOT NULL THEN 1 ELSE 0 END), 0), \
         COALESCE(SUM(CASE WHEN error IS NOT NULL THEN 1 ELSE 0 END), 0) FROM push_state WHERE target = ?",
        &[target.into()],
        |r| {
            Ok(TargetCounts {
                held: u64::try_from(r.i64(0)?).unwrap_or(0),
                active: u64::try_from(r.i64(1)?).unwrap_or(0),
                failing: u64::try_from(r.i64(2)?).unwrap_or(0),
            })
        },
    )?
    .unwrap_or_default())
}
