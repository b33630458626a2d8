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
use rostersync_core::push::{Held, Pushed, PushedGroup};

use crate::apply::{RUN_ITEM_COLUMNS, run_item_row};
use crate::sql::{Keys, Rows, Tx, Value, encode, query_opt, query_vec, ts};
use crate::{Result, RunId, StoreError, counts_json};

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

/// A table of what targets hold, a row per target and `key`: `push_state` (accounts) and
/// `push_groups`.
struct StateTable {
    table: &'static str,
    key: &'static str,
    /// The columns of what was last sent, besides `remote_id` and `hash`.
    held: &'static [&'static str],
}

/// What a push leaves in a [`StateTable`] row.
enum StateWrite<'a> {
    Keep,
    /// The target accepted it: its id for it, the hash and the `held` values.
    Sent {
        remote_id: &'a str,
        hash: i64,
        held: Vec<Value<'a>>,
    },
    /// The request failed. Something the target never had gets a row with `held` (the
    /// values of nothing sent) and no hash any state matches, so the next push sends it
    /// again; an existing row keeps what it had and takes the error.
    Failed {
        error: &'a str,
        held: Vec<Value<'a>>,
    },
    /// The target no longer holds it.
    Forgotten,
}

/// The statements writing a [`StateTable`], made once per batch.
struct StateStatements {
    sent: String,
    failed: String,
    forgotten: String,
}

impl StateTable {
    fn statements(&self) -> StateStatements {
        let (table, key) = (self.table, self.key);
        let held = self.held.join(", ");
        let marks = vec!["?"; self.held.len()].join(", ");
        let set: Vec<String> = self
            .held
            .iter()
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
        let set = set.join(", ");
        StateStatements {
            sent: format!(
                "INSERT INTO {table} (target, {key}, remote_id, hash, {held}, pushed_at, error) \
                 VALUES (?, ?, ?, ?, {marks}, ?, NULL) ON CONFLICT (target, {key}) DO UPDATE SET \
                 remote_id = excluded.remote_id, hash = excluded.hash, {set}, \
                 pushed_at = excluded.pushed_at, error = NULL"
            ),
            failed: format!(
                "INSERT INTO {table} (target, {key}, remote_id, hash, {held}, pushed_at, error) \
                 VALUES (?, ?, NULL, 0, {marks}, ?, ?) ON CONFLICT (target, {key}) DO UPDATE SET \
                 error = excluded.error"
            ),
            forgotten: format!("DELETE FROM {table} WHERE target = ? AND {key} = ?"),
        }
    }
}

impl StateStatements {
    fn write(
        &self,
        tx: &mut dyn Tx,
        target: &str,
        id: i64,
        write: StateWrite<'_>,
        now: &str,
    ) -> Result<()> {
        let mut params: Vec<Value<'_>> = vec![target.into(), id.into()];
        let sql = match write {
            StateWrite::Keep => return Ok(()),
            StateWrite::Sent {
                remote_id,
                hash,
                held,
            } => {
                params.extend([remote_id.into(), hash.into()]);
                params.extend(held);
                params.push(now.into());
                &self.sent
            }
            StateWrite::Failed { error, held } => {
                params.extend(held);
                params.extend([now.into(), error.into()]);
                &self.failed
            }
            StateWrite::Forgotten => &self.forgotten,
        };
        tx.execute(sql, &params)?;
        Ok(())
    }
}

/// A record of a push batch: its run item, and what it leaves in its [`StateTable`].
trait BatchRecord {
    const STATE: StateTable;
    fn item(&self, run: RunId) -> Result<Vec<Value<'static>>>;
    /// The row's key and what to write in it.
    fn state(&self) -> Result<(i64, StateWrite<'_>)>;
}

impl BatchRecord for PushRecord {
    const STATE: StateTable = StateTable {
        table: "push_state",
        key: "user_id",
        held: &["pushed", "active"],
    };

    fn item(&self, run: RunId) -> Result<Vec<Value<'static>>> {
        run_item_row(
            run,
            self.account.to_string().into(),
            Some(self.account),
            self.outcome,
            &self.reason,
            &self.changes,
            None,
        )
    }

    fn state(&self) -> Result<(i64, StateWrite<'_>)> {
        let write = match &self.state {
            PushWrite::Keep => StateWrite::Keep,
            PushWrite::Sent { remote_id, pushed } => StateWrite::Sent {
                remote_id,
                hash: pushed.hash(),
                held: vec![
                    encode("pushed attributes", pushed)?.into(),
                    pushed.active.into(),
                ],
            },
            PushWrite::Failed { error } => StateWrite::Failed {
                error,
                held: vec![
                    encode("pushed attributes", &Pushed::default())?.into(),
                    false.into(),
                ],
            },
            PushWrite::Forgotten => StateWrite::Forgotten,
        };
        Ok((self.account.0, write))
    }
}

impl BatchRecord for GroupRecord {
    const STATE: StateTable = StateTable {
        table: "push_groups",
        key: "group_id",
        held: &["members"],
    };

    /// `group:ID`, no account.
    fn item(&self, run: RunId) -> Result<Vec<Value<'static>>> {
        run_item_row(
            run,
            rostersync_core::push::group_external_id(self.group).into(),
            None,
            self.outcome,
            &self.reason,
            &[] as &[FieldChange],
            None,
        )
    }

    fn state(&self) -> Result<(i64, StateWrite<'_>)> {
        let write = match &self.state {
            GroupWrite::Keep => StateWrite::Keep,
            GroupWrite::Sent { remote_id, pushed } => StateWrite::Sent {
                remote_id,
                hash: pushed.hash(),
                held: vec![encode("pushed group", pushed)?.into()],
            },
            GroupWrite::Failed { error } => StateWrite::Failed {
                error,
                held: vec![encode("pushed group", &PushedGroup::default())?.into()],
            },
            GroupWrite::Forgotten => StateWrite::Forgotten,
        };
        Ok((self.group, write))
    }
}

/// Writes a batch's run items and what the target now holds.
fn record_batch<R: BatchRecord>(
    tx: &mut dyn Tx,
    run: RunId,
    target: &str,
    records: &[R],
    now: Timestamp,
) -> Result<()> {
    let mut items = Rows::new("run_items", &RUN_ITEM_COLUMNS);
    let statements = R::STATE.statements();
    let now_s = ts(now);
    for rec in records {
        items.push(rec.item(run)?);
        let (id, write) = rec.state()?;
        statements.write(tx, target, id, write, &now_s)?;
    }
    if !items.is_empty() {
        crate::runs::insert_items(tx, &items)?;
    }
    Ok(())
}

/// Records a batch of a push: the run's items, and what the target now holds.
pub(crate) fn record_push(
    tx: &mut dyn Tx,
    run: RunId,
    target: &str,
    records: &[PushRecord],
    now: Timestamp,
) -> Result<()> {
    record_batch(tx, run, target, records, now)?;
    keep_cases(tx, run, target, records, now)
}

/// The reason code of a push's review case: several users on the target match an account.
pub const PUSH_CASE_CODE: &str = "push_ambiguous";

/// The review cases of a push batch: an account several users on the target match opens
/// (or refreshes) a case of the target (`source` the target's name, `sourced_id` the
/// account's id, the account the one candidate); an account the push created or adopted
/// closes its open case (the target has one user for it now).
fn keep_cases(
    tx: &mut dyn Tx,
    run: RunId,
    target: &str,
    records: &[PushRecord],
    now: Timestamp,
) -> Result<()> {
    let disputed: Vec<&PushRecord> = records
        .iter()
        .filter(|r| matches!(r.reason, Reason::PushAmbiguous(_)))
        .collect();
    let settled: Vec<AccountId> = records
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Created | Outcome::Linked))
        .map(|r| r.account)
        .collect();
    if disputed.is_empty() && settled.is_empty() {
        return Ok(());
    }
    let open = crate::review::open_cases(tx, target)?;
    let now_s = ts(now);
    for rec in disputed {
        let key = rec.account.to_string();
        let evidence = match &rec.reason {
            Reason::PushAmbiguous(a) => crate::CaseEvidence {
                name: format!("{} {}", a.by, a.key),
                ..crate::CaseEvidence::default()
            },
            _ => crate::CaseEvidence::default(),
        };
        match open.get(&key) {
            Some(case) => {
                tx.execute(
                    "UPDATE review_cases SET reason = ?, last_run = ?, updated_at = ? WHERE id = ?",
                    &[
                        rec.reason.to_string().into(),
                        run.into(),
                        now_s.as_str().into(),
                        (*case).into(),
                    ],
                )?;
            }
            None => {
                tx.execute(
                    "INSERT INTO review_cases (source, sourced_id, status, reason_code, reason, candidates, \
                     evidence, opened_run, last_run, opened_at, updated_at) VALUES (?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?)",
                    &[
                        target.into(),
                        key.as_str().into(),
                        PUSH_CASE_CODE.into(),
                        rec.reason.to_string().into(),
                        encode("case candidates", &[rec.account])?.into(),
                        encode("case evidence", &evidence)?.into(),
                        run.into(),
                        run.into(),
                        now_s.as_str().into(),
                        now_s.as_str().into(),
                    ],
                )?;
            }
        }
    }
    for account in settled {
        if let Some(case) = open.get(&account.to_string()) {
            tx.execute(
                "UPDATE review_cases SET status = 'closed', resolution = ?, resolved_by = ?, resolved_at = ?, \
                 updated_at = ? WHERE id = ?",
                &[
                    "settled by a push: the target has one user for the account now".into(),
                    format!("target:{target}").into(),
                    now_s.as_str().into(),
                    now_s.as_str().into(),
                    (*case).into(),
                ],
            )?;
        }
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
    crate::held::running_source(tx, run)?;
    crate::runs::delete_items(tx, run)?;
    for slice in records.chunks(10_000) {
        let mut items = Rows::new("run_items", &RUN_ITEM_COLUMNS);
        for rec in slice {
            items.push(rec.item(run)?);
        }
        crate::runs::insert_items(tx, &items)?;
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
    crate::runs::delete_items(tx, run)?;
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
                pushed_at: r.ts(3)?,
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

/// A group a target may be sent: its id, name, and member accounts.
#[derive(Debug, Clone)]
pub struct TargetGroup {
    pub id: i64,
    pub name: String,
    pub members: Vec<AccountId>,
}

/// What a target holds for one group.
#[derive(Debug, Clone)]
pub struct HeldGroup {
    pub remote_id: Option<String>,
    pub hash: i64,
    pub pushed: rostersync_core::push::PushedGroup,
}

/// What one group's push did, to record.
#[derive(Debug, Clone)]
pub struct GroupRecord {
    pub group: i64,
    pub outcome: Outcome,
    pub reason: Reason,
    pub state: GroupWrite,
}

/// What a push leaves in a group's push state.
#[derive(Debug, Clone)]
pub enum GroupWrite {
    Keep,
    Sent {
        remote_id: String,
        pushed: rostersync_core::push::PushedGroup,
    },
    Failed {
        error: String,
    },
    /// Deleted on the target (the group is gone here).
    Forgotten,
}

/// The groups of `kinds` (`class`, `school_role`) with their members, by id.
pub(crate) fn target_groups(tx: &mut dyn Tx, kinds: &[&str]) -> Result<Vec<TargetGroup>> {
    if kinds.is_empty() {
        return Ok(Vec::new());
    }
    let marks = vec!["?"; kinds.len()].join(", ");
    let params: Vec<Value> = kinds.iter().map(|k| (*k).into()).collect();
    let mut groups: Vec<TargetGroup> = Vec::new();
    tx.for_each(
        &format!(
            "SELECT g.id, g.name, m.user_id FROM groups g LEFT JOIN group_members m ON m.group_id = g.id \
             WHERE g.kind IN ({marks}) ORDER BY g.id, m.user_id"
        ),
        &params,
        &mut |r| {
            let id = r.i64(0)?;
            if groups.last().is_none_or(|g| g.id != id) {
                groups.push(TargetGroup {
                    id,
                    name: r.text(1)?,
                    members: Vec::new(),
                });
            }
            if let (Some(g), Some(m)) = (groups.last_mut(), r.opt_i64(2)?) {
                g.members.push(AccountId(m));
            }
            Ok(())
        },
    )?;
    Ok(groups)
}

/// What `target` holds for each group it was sent.
pub(crate) fn held_groups(tx: &mut dyn Tx, target: &str) -> Result<HashMap<i64, HeldGroup>> {
    let mut held = HashMap::new();
    tx.for_each(
        "SELECT group_id, remote_id, hash, members FROM push_groups WHERE target = ?",
        &[target.into()],
        &mut |r| {
            let id = r.i64(0)?;
            let pushed = serde_json::from_str(&r.text(3)?).map_err(|e| {
                StoreError::Corrupt(format!("stored push state of group {id}: {e}"))
            })?;
            held.insert(
                id,
                HeldGroup {
                    remote_id: r.opt_text(1)?,
                    hash: r.i64(2)?,
                    pushed,
                },
            );
            Ok(())
        },
    )?;
    Ok(held)
}

/// Records the groups of a push: their items (`group:ID`, no account) and state.
pub(crate) fn record_push_groups(
    tx: &mut dyn Tx,
    run: RunId,
    target: &str,
    records: &[GroupRecord],
    now: Timestamp,
) -> Result<()> {
    record_batch(tx, run, target, records, now)
}
