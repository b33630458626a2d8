//! The first phase of an undo: what the run did, read back (its items, every revision of
//! their accounts, what it changed), and how things stand now (the accounts, locked; the
//! links; the later runs that changed the same links; the later runs undone since).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rostersync_core::directory::AccountId;
use rostersync_core::plan::Outcome;

use super::{Changed, Done, Item, LaterUndos, LinkBefore, Rev, pair};
use crate::sql::{Keys, Tx, query_opt, query_vec};
use crate::users::load_users;
use crate::{Result, RunId, StoreError};

/// Reads what the run did (its items, the revisions of their accounts, what it changed)
/// and how things stand now (the accounts, the links, later runs and undos).
pub(super) fn load<'s>(tx: &mut dyn Tx, run: RunId, source: &'s str) -> Result<Done<'s>> {
    let mark = query_opt(
        tx,
        "SELECT revision_mark FROM runs WHERE id = ?",
        &[run.into()],
        |r| r.opt_i64(0),
    )?
    .flatten();

    let items = load_items(tx, run)?;
    let mut users: Vec<AccountId> = items.iter().map(|i| i.user).collect();
    users.sort_unstable();
    users.dedup();

    let history = load_history(tx, &users)?;
    // Later than the run: after its mark (runs applied before schema v4 have none: after
    // its own last revision).
    let mark = mark.unwrap_or_else(|| {
        history
            .values()
            .flatten()
            .filter(|r| r.run == Some(run))
            .map(|r| r.id)
            .max()
            .unwrap_or(0)
    });
    let later_undos = later_undos(tx, run)?;
    let changed = what_changed(run, &history);

    let current = load_users(tx, &users, true)?;
    let mut wanted: Vec<String> = Vec::new();
    for i in &items {
        wanted.push(i.sourced_id.clone());
        if let Some(r) = i.before.as_ref().and_then(|b| b.replaced.as_ref()) {
            wanted.push(r.sourced_id.clone());
        }
    }
    wanted.sort_unstable();
    wanted.dedup();
    let links_now = crate::links::linked_accounts(tx, source, &wanted)?;
    let later_runs = later_runs(tx, run, source, &wanted)?;
    let created: Vec<AccountId> = items
        .iter()
        .filter(|i| i.outcome == Outcome::Created)
        .map(|i| i.user)
        .collect();
    let other_links = other_links(tx, source, &created)?;
    let link_users = items
        .iter()
        .filter(|i| i.touches_link())
        .map(|i| i.user)
        .collect();
    let created_set = created.iter().copied().collect();
    Ok(Done {
        run,
        source,
        items,
        users,
        history,
        mark,
        later_undos,
        changed,
        current,
        links_now,
        later_runs,
        other_links,
        created_set,
        link_users,
    })
}

/// The run's items that changed an account or a link, by sourcedId.
fn load_items(tx: &mut dyn Tx, run: RunId) -> Result<Vec<Item>> {
    query_vec(
        tx,
        "SELECT sourced_id, user_id, outcome, reason_json, link_before FROM run_items WHERE run_id = ? \
         AND user_id IS NOT NULL AND (outcome IN ('created', 'linked', 'updated', 'deactivated', 'reactivated') \
         OR link_before IS NOT NULL) ORDER BY sourced_id",
        &[run.into()],
        |r| {
            let outcome = r.text(2)?;
            let before = r
                .opt_text(4)?
                .map(|j| {
                    serde_json::from_str::<LinkBefore>(&j).map_err(|e| {
                        StoreError::Corrupt(format!("stored link of a run item of run {run}: {e}"))
                    })
                })
                .transpose()?;
            Ok(Item {
                sourced_id: r.text(0)?,
                user: AccountId(r.i64(1)?),
                outcome: Outcome::parse(&outcome).ok_or_else(|| {
                    StoreError::Corrupt(format!("stored run item outcome '{outcome}'"))
                })?,
                // Only a return after the grace period needs it; an unreadable one is none.
                reason: serde_json::from_str(&r.text(3)?).ok(),
                before,
            })
        },
    )
}

/// Every revision of the accounts, in order.
fn load_history(tx: &mut dyn Tx, users: &[AccountId]) -> Result<HashMap<AccountId, Vec<Rev>>> {
    let mut history: HashMap<AccountId, Vec<Rev>> = HashMap::new();
    tx.for_each_in(
        "SELECT id, user_id, field, old_value, new_value, writer, run_id, at FROM revisions WHERE user_id {keys}",
        &[],
        Keys::Accounts(users),
        &mut |r| {
            history.entry(AccountId(r.i64(1)?)).or_default().push(Rev {
                id: r.i64(0)?,
                field: r.text(2)?,
                old: r.opt_text(3)?,
                new: r.opt_text(4)?,
                writer: r.text(5)?,
                run: r.opt_i64(6)?.map(RunId),
                at: r.text(7)?,
            });
            Ok(())
        },
    )?;
    for h in history.values_mut() {
        h.sort_by_key(|r| r.id);
    }
    Ok(history)
}

/// Later runs that were undone, and their undos' revisions: they cancel out, as undoing
/// runs newest first is the way out of conflicts.
fn later_undos(tx: &mut dyn Tx, run: RunId) -> Result<LaterUndos> {
    let mut undone_runs: BTreeSet<RunId> = BTreeSet::new();
    let mut undo_ranges: Vec<(i64, i64)> = Vec::new();
    tx.for_each(
        "SELECT id, undo_first_revision, undo_last_revision FROM runs WHERE status = 'undone' AND id > ?",
        &[run.into()],
        &mut |r| {
            undone_runs.insert(RunId(r.i64(0)?));
            if let (Some(a), Some(b)) = (r.opt_i64(1)?, r.opt_i64(2)?) {
                undo_ranges.push((a, b));
            }
            Ok(())
        },
    )?;
    Ok(LaterUndos {
        runs: undone_runs,
        ranges: undo_ranges,
    })
}

/// What the run changed, per account and field.
fn what_changed(
    run: RunId,
    history: &HashMap<AccountId, Vec<Rev>>,
) -> BTreeMap<AccountId, BTreeMap<String, Changed>> {
    let mut changed: BTreeMap<AccountId, BTreeMap<String, Changed>> = BTreeMap::new();
    for (user, revs) in history {
        for r in revs
            .iter()
            .filter(|r| r.run == Some(run) && r.field != "created")
        {
            let c = changed
                .entry(*user)
                .or_default()
                .entry(r.field.clone())
                .or_insert(Changed {
                    old: r.old.clone(),
                    new: r.new.clone(),
                    first_id: r.id,
                });
            c.new = r.new.clone();
        }
    }
    changed
}

/// Later runs of the source that changed the same people's links: the first for each
/// sourcedId, with its outcome.
fn later_runs(
    tx: &mut dyn Tx,
    run: RunId,
    source: &str,
    wanted: &[String],
) -> Result<HashMap<String, (RunId, String)>> {
    let mut later_runs: HashMap<String, (RunId, String)> = HashMap::new();
    tx.for_each_in(
        "SELECT i.sourced_id, i.run_id, i.outcome FROM run_items i JOIN runs r ON r.id = i.run_id \
         WHERE r.source = ? AND i.run_id > ? AND r.status = 'succeeded' \
         AND (i.outcome IN ('created', 'linked', 'deactivated', 'reactivated') OR i.link_before IS NOT NULL) \
         AND i.sourced_id {keys}",
        &[source.into(), run.into()],
        Keys::Texts(wanted),
        &mut |r| {
            let (id, later, outcome) = (r.text(0)?, RunId(r.i64(1)?), r.text(2)?);
            if later_runs.get(&id).is_none_or(|(first, _)| later < *first) {
                later_runs.insert(id, (later, outcome));
            }
            Ok(())
        },
    )?;
    Ok(later_runs)
}

/// The links in other sources than `source` of the accounts the run created.
fn other_links(
    tx: &mut dyn Tx,
    source: &str,
    created: &[AccountId],
) -> Result<HashMap<AccountId, Vec<String>>> {
    let mut other_links: HashMap<AccountId, Vec<String>> = HashMap::new();
    tx.for_each_in(
        "SELECT user_id, source, sourced_id FROM sis_links WHERE user_id {keys}",
        &[],
        Keys::Accounts(created),
        &mut |r| {
            let (s, id) = (r.text(1)?, r.text(2)?);
            if s != source {
                other_links
                    .entry(AccountId(r.i64(0)?))
                    .or_default()
                    .push(pair(&s, &id));
            }
            Ok(())
        },
    )?;
    Ok(other_links)
}
