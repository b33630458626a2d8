//! Undoing an applied run, from what it recorded: its revisions (every field, `active`
//! and `access` change, old → new), its run items (what it did to whom), and, for the
//! items whose link it changed in a way only the old row can undo (a deactivation, a
//! rekey, a person back after the grace period), the link rows as they were before
//! (`run_items.link_before`, written by the apply).
//!
//! Undo restores each field to its old value (and the field's provenance to the writer
//! before the run), reactivates what the run deactivated and deactivates what it
//! reactivated, retires the accounts it created (inactive, no access, unlinked — never
//! deleted), removes the links it made and puts back the links it replaced. It refuses,
//! listing every conflict, when a later change touched what it would restore: a later
//! revision of the same account field, a merge, a later run that changed the same link.
//!
//! Not undone: the SIS records, groups, relationships and calendars the run wrote (they
//! mirror the SIS; groups an undone link leaves are marked for the next sync to rewrite),
//! the old emails the run kept as aliases, the delta watermark.
//!
//! An undo goes in phases, each a module: `load` reads what the run did and how things
//! stand now, `conflicts` refuses when later changes are in the way, and `restore` puts
//! the accounts and the links back and records the undo. This module keeps what the
//! apply records for undo (the links before) and what the phases share.

mod conflicts;
mod load;
mod restore;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::Timestamp;
use rostersync_core::directory::{AccountId, Field, Link};
use rostersync_core::plan::{Outcome, PlanItem, Reason};
use serde::{Deserialize, Serialize};

use crate::held::require_applied;
use crate::sql::{Tx, ts};
use crate::users::StoredUser;
use crate::{Result, RunId, StoreError, UndoSummary};
use conflicts::check_conflicts;
use load::load;
use restore::{Writes, record_undo, restore_accounts, restore_links};

/// A link row as it was before a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LinkRow {
    sourced_id: String,
    user_id: AccountId,
    rule: String,
    /// The u64 hash as the i64 with the same bits, as stored.
    record_hash: i64,
    synced_revision: i64,
    linked_at: String,
    misses: i64,
    deactivated_at: Option<String>,
    previous_access: Option<String>,
}

impl LinkRow {
    fn of(l: &Link) -> LinkRow {
        LinkRow {
            sourced_id: l.sourced_id.clone(),
            user_id: l.user_id,
            rule: l.rule.as_str().to_owned(),
            record_hash: l.record_hash.cast_signed(),
            synced_revision: l.synced_revision,
            linked_at: ts(l.linked_at),
            misses: i64::from(l.misses),
            deactivated_at: l.deactivated_at.map(ts),
            previous_access: l.previous_access.map(|a| a.as_str().to_owned()),
        }
    }
}

/// What undo needs of an item's link: the row of its person before the run (`None`: there
/// was none), and the row a rekey took over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LinkBefore {
    link: Option<LinkRow>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replaced: Option<LinkRow>,
}

/// Whether the apply keeps the item's link as it was before: the item changes the link's
/// state (deactivation, reactivation, misses), takes over another sourcedId's link, or
/// takes another account's link. A creation or a new match has no link before by
/// construction, and a plain update's link needs nothing back (undo bumps the account's
/// revision, so the next sync looks at the person again).
pub(crate) fn keeps_link_before(item: &PlanItem) -> bool {
    item.link.is_some()
        && (item.replaces.is_some()
            || item.retires.is_some()
            || matches!(
                item.outcome,
                Outcome::Deactivated | Outcome::Reactivated | Outcome::Unchanged | Outcome::Skipped
            ))
}

pub(crate) fn link_before_json(link: Option<&Link>, replaced: Option<&Link>) -> Result<String> {
    serde_json::to_string(&LinkBefore {
        link: link.map(LinkRow::of),
        replaced: replaced.map(LinkRow::of),
    })
    .map_err(|e| StoreError::database(format!("cannot encode a link for undo: {e}")))
}

/// One of the run's items that undo acts on.
struct Item {
    sourced_id: String,
    user: AccountId,
    outcome: Outcome,
    reason: Option<Reason>,
    before: Option<LinkBefore>,
}

/// A revision row as undo reads it.
struct Rev {
    id: i64,
    field: String,
    old: Option<String>,
    new: Option<String>,
    writer: String,
    run: Option<RunId>,
    at: String,
}

/// A field (or `active`, `access`) the run changed on an account: the value before it,
/// the value it left.
struct Changed {
    old: Option<String>,
    new: Option<String>,
    first_id: i64,
}

fn pair(source: &str, sourced_id: &str) -> String {
    format!("{source}:{sourced_id}")
}

fn current_value(u: &rostersync_core::directory::Account, field: &str) -> Option<String> {
    match field {
        "active" => Some(if u.active { "true" } else { "false" }.to_owned()),
        "access" => Some(u.access.as_str().to_owned()),
        "provider" => u.provider.clone(),
        f => f
            .parse::<Field>()
            .ok()
            .and_then(|f| u.get(f).map(str::to_owned)),
    }
}

pub(crate) fn undo_run(
    tx: &mut dyn Tx,
    run: RunId,
    actor: &str,
    now: Timestamp,
    dry_run: bool,
) -> Result<UndoSummary> {
    let source = require_applied(tx, run)?;
    if dry_run {
        tx.execute_batch("SAVEPOINT rostersync_undo_dry_run")?;
    }
    let summary = undo(tx, run, &source, actor, now, dry_run)?;
    if dry_run {
        tx.execute_batch(
            "ROLLBACK TO SAVEPOINT rostersync_undo_dry_run; RELEASE SAVEPOINT rostersync_undo_dry_run",
        )?;
    }
    Ok(summary)
}

/// Undoes the run: reads what it did and what stands now, refuses on any conflict, then
/// puts the accounts' fields and states back, then the links, and records the undo.
fn undo(
    tx: &mut dyn Tx,
    run: RunId,
    source: &str,
    actor: &str,
    now: Timestamp,
    dry_run: bool,
) -> Result<UndoSummary> {
    let mut done = load(tx, run, source)?;
    check_conflicts(&done)?;
    let now_s = ts(now);
    let mut writes = Writes::new(actor, &now_s);
    let mut summary = UndoSummary {
        run,
        dry_run,
        ..UndoSummary::default()
    };
    restore_accounts(tx, &mut done, &mut writes, &mut summary)?;
    restore_links(tx, &done, &mut writes, &mut summary)?;
    record_undo(tx, &done, writes, &mut summary, actor, now)?;
    Ok(summary)
}

/// What the run did, read back, and how things stand now: what the phases of an undo
/// work from.
struct Done<'s> {
    run: RunId,
    source: &'s str,
    /// The run's items undo acts on, by sourcedId.
    items: Vec<Item>,
    /// Their accounts, sorted, each once.
    users: Vec<AccountId>,
    /// Every revision of those accounts, in order.
    history: HashMap<AccountId, Vec<Rev>>,
    /// The last revision that is not later than the run.
    mark: i64,
    /// Later runs that were undone, and their undos' revisions: they cancel out.
    later_undos: LaterUndos,
    /// What the run changed, per account and field.
    changed: BTreeMap<AccountId, BTreeMap<String, Changed>>,
    /// The accounts as they are now (locked for the update).
    current: HashMap<AccountId, StoredUser>,
    /// The account each of the items' sourcedIds (and those a rekey took over) is linked
    /// to now.
    links_now: HashMap<String, AccountId>,
    /// The first later run of the source that changed each of those links, and how.
    later_runs: HashMap<String, (RunId, String)>,
    /// The links in other sources of the accounts the run created.
    other_links: HashMap<AccountId, Vec<String>>,
    /// The accounts the run created.
    created_set: BTreeSet<AccountId>,
    /// The accounts whose link the run made or changed.
    link_users: BTreeSet<AccountId>,
}

impl Item {
    /// Whether the item made or changed its person's link.
    fn touches_link(&self) -> bool {
        matches!(self.outcome, Outcome::Created | Outcome::Linked) || self.before.is_some()
    }
}

/// Runs later than one being undone that were undone themselves.
struct LaterUndos {
    /// The runs.
    runs: BTreeSet<RunId>,
    /// Their undos' revisions, (first, last) ids.
    ranges: Vec<(i64, i64)>,
}
