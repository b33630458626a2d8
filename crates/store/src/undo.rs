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

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::Timestamp;
use rostersync_core::directory::{Access, Field, Link, UserId, Writer};
use rostersync_core::plan::{Outcome, PlanItem, Reason};
use rostersync_core::view::RETIRED;
use serde::{Deserialize, Serialize};

use crate::held::require_applied;
use crate::roster::forget_person;
use crate::settings::audit;
use crate::sql::{Keys, Rows, Tx, Value, query_opt, query_vec, ts};
use crate::users::{Locations, REVISION_COLUMNS, USER_UPDATE_COLUMNS, load_users, user_values};
use crate::{Result, RunId, StoreError, UndoSummary};

/// A link row as it was before a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LinkRow {
    sourced_id: String,
    user_id: UserId,
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
    .map_err(|e| StoreError::Database(format!("cannot encode a link for undo: {e}")))
}

/// One of the run's items that undo acts on.
struct Item {
    sourced_id: String,
    user: UserId,
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

fn by_whom(r: &Rev) -> String {
    match r.run {
        Some(run) => format!("run {run}"),
        None => format!("{} at {}", r.writer, r.at),
    }
}

fn value_words(v: Option<&str>) -> String {
    match v {
        Some(v) => format!("'{v}'"),
        None => "empty".to_owned(),
    }
}

fn current_value(u: &rostersync_core::directory::DirUser, field: &str) -> Option<String> {
    match field {
        "active" => Some(if u.active { "true" } else { "false" }.to_owned()),
        "access" => Some(u.access.as_str().to_owned()),
        f => f
            .parse::<Field>()
            .ok()
            .and_then(|f| u.get(f).map(str::to_owned)),
    }
}

fn set_value(u: &mut rostersync_core::directory::DirUser, field: &str, value: Option<&str>) {
    match field {
        "active" => u.active = value == Some("true"),
        "access" => {
            if let Some(a) = value.and_then(|v| v.parse::<Access>().ok()) {
                u.access = a;
            }
        }
        f => {
            if let Ok(f) = f.parse::<Field>() {
                u.set(f, value.map(str::to_owned));
            }
        }
    }
}

fn insert_link(tx: &mut dyn Tx, source: &str, l: &LinkRow) -> Result<()> {
    tx.execute(
        "INSERT INTO sis_links (source, sourced_id, user_id, rule, record_hash, synced_revision, misses, \
         deactivated_at, previous_access, linked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (source, sourced_id) DO UPDATE SET user_id = excluded.user_id, rule = excluded.rule, \
         record_hash = excluded.record_hash, synced_revision = excluded.synced_revision, misses = excluded.misses, \
         deactivated_at = excluded.deactivated_at, previous_access = excluded.previous_access, \
         linked_at = excluded.linked_at",
        &[
            source.into(),
            l.sourced_id.as_str().into(),
            l.user_id.into(),
            l.rule.as_str().into(),
            l.record_hash.into(),
            l.synced_revision.into(),
            l.misses.into(),
            l.deactivated_at.as_deref().into(),
            l.previous_access.as_deref().into(),
            l.linked_at.as_str().into(),
        ],
    )?;
    Ok(())
}

/// Takes an account out of a source's groups and relationships, marking what it leaves
/// for the next sync to write again (the groups' content did not change, their members did).
fn leave_roster(tx: &mut dyn Tx, source: &str, user: UserId) -> Result<()> {
    tx.execute(
        "UPDATE groups SET content_hash = 0 WHERE source = ? \
         AND id IN (SELECT group_id FROM group_members WHERE user_id = ?)",
        &[source.into(), user.into()],
    )?;
    let related = query_opt(
        tx,
        "SELECT 1 FROM guardian_relationships WHERE source = ? AND (guardian_id = ? OR student_id = ?) LIMIT 1",
        &[source.into(), user.into(), user.into()],
        |r| r.i64(0),
    )?;
    if related.is_some() {
        tx.execute(
            "UPDATE source_state SET relationships_hash = 0 WHERE source = ?",
            &[source.into()],
        )?;
    }
    forget_person(tx, source, user)
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

fn undo(
    tx: &mut dyn Tx,
    run: RunId,
    source: &str,
    actor: &str,
    now: Timestamp,
    dry_run: bool,
) -> Result<UndoSummary> {
    let mark = query_opt(
        tx,
        "SELECT revision_mark FROM runs WHERE id = ?",
        &[run.into()],
        |r| r.opt_i64(0),
    )?
    .flatten();

    let items = query_vec(
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
                user: r.i64(1)?,
                outcome: Outcome::parse(&outcome).ok_or_else(|| {
                    StoreError::Corrupt(format!("stored run item outcome '{outcome}'"))
                })?,
                // Only a return after the grace period needs it; an unreadable one is none.
                reason: serde_json::from_str(&r.text(3)?).ok(),
                before,
            })
        },
    )?;
    let mut users: Vec<i64> = items.iter().map(|i| i.user).collect();
    users.sort_unstable();
    users.dedup();

    // Every revision of the accounts the run touched, in order.
    let mut history: HashMap<UserId, Vec<Rev>> = HashMap::new();
    tx.for_each_in(
        "SELECT id, user_id, field, old_value, new_value, writer, run_id, at FROM revisions WHERE user_id {keys}",
        &[],
        Keys::Ints(&users),
        &mut |r| {
            history.entry(r.i64(1)?).or_default().push(Rev {
                id: r.i64(0)?,
                field: r.text(2)?,
                old: r.opt_text(3)?,
                new: r.opt_text(4)?,
                writer: r.text(5)?,
                run: r.opt_i64(6)?,
                at: r.text(7)?,
            });
            Ok(())
        },
    )?;
    for h in history.values_mut() {
        h.sort_by_key(|r| r.id);
    }
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

    // Later runs that were undone, and their undos' revisions, cancel out: undoing runs
    // newest first is the way out of conflicts.
    let mut undone_runs: BTreeSet<RunId> = BTreeSet::new();
    let mut undo_ranges: Vec<(i64, i64)> = Vec::new();
    tx.for_each(
        "SELECT id, undo_first_revision, undo_last_revision FROM runs WHERE status = 'undone' AND id > ?",
        &[run.into()],
        &mut |r| {
            undone_runs.insert(r.i64(0)?);
            if let (Some(a), Some(b)) = (r.opt_i64(1)?, r.opt_i64(2)?) {
                undo_ranges.push((a, b));
            }
            Ok(())
        },
    )?;
    let cancelled = |r: &Rev| {
        r.run.is_some_and(|x| undone_runs.contains(&x))
            || undo_ranges.iter().any(|(a, b)| (*a..=*b).contains(&r.id))
    };

    // What the run changed, per account and field.
    let mut changed: BTreeMap<UserId, BTreeMap<String, Changed>> = BTreeMap::new();
    for (user, revs) in &history {
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

    let mut current = load_users(tx, &users, true)?;
    let mut links_now: HashMap<String, UserId> = HashMap::new();
    let mut wanted: Vec<String> = Vec::new();
    for i in &items {
        wanted.push(i.sourced_id.clone());
        if let Some(r) = i.before.as_ref().and_then(|b| b.replaced.as_ref()) {
            wanted.push(r.sourced_id.clone());
        }
    }
    wanted.sort_unstable();
    wanted.dedup();
    tx.for_each_in(
        "SELECT sourced_id, user_id FROM sis_links WHERE source = ? AND sourced_id {keys}",
        &[source.into()],
        Keys::Texts(&wanted),
        &mut |r| {
            links_now.insert(r.text(0)?, r.i64(1)?);
            Ok(())
        },
    )?;
    // Later runs of the source that changed the same people's links.
    let mut later_runs: HashMap<String, (RunId, String)> = HashMap::new();
    tx.for_each_in(
        "SELECT i.sourced_id, i.run_id, i.outcome FROM run_items i JOIN runs r ON r.id = i.run_id \
         WHERE r.source = ? AND i.run_id > ? AND r.status = 'succeeded' \
         AND (i.outcome IN ('created', 'linked', 'deactivated', 'reactivated') OR i.link_before IS NOT NULL) \
         AND i.sourced_id {keys}",
        &[source.into(), run.into()],
        Keys::Texts(&wanted),
        &mut |r| {
            let (id, later, outcome) = (r.text(0)?, r.i64(1)?, r.text(2)?);
            if later_runs.get(&id).is_none_or(|(first, _)| later < *first) {
                later_runs.insert(id, (later, outcome));
            }
            Ok(())
        },
    )?;
    let mut other_links: HashMap<UserId, Vec<String>> = HashMap::new();
    let created: Vec<i64> = items
        .iter()
        .filter(|i| i.outcome == Outcome::Created)
        .map(|i| i.user)
        .collect();
    tx.for_each_in(
        "SELECT user_id, source, sourced_id FROM sis_links WHERE user_id {keys}",
        &[],
        Keys::Ints(&created),
        &mut |r| {
            let (s, id) = (r.text(1)?, r.text(2)?);
            if s != source {
                other_links
                    .entry(r.i64(0)?)
                    .or_default()
                    .push(pair(&s, &id));
            }
            Ok(())
        },
    )?;

    // ----- conflicts
    let mut conflicts: Vec<String> = Vec::new();
    let mut link_users: BTreeSet<UserId> = BTreeSet::new();
    for i in &items {
        let touches_link =
            matches!(i.outcome, Outcome::Created | Outcome::Linked) || i.before.is_some();
        if !touches_link {
            continue;
        }
        link_users.insert(i.user);
        match links_now.get(&i.sourced_id) {
            Some(u) if *u == i.user => {}
            Some(u) => conflicts.push(format!(
                "SIS person {} of source {source} is linked to account #{u} now, not #{} as run {run} left it",
                i.sourced_id, i.user
            )),
            None => conflicts.push(format!(
                "SIS person {} of source {source} is no longer linked to account #{} as run {run} left it",
                i.sourced_id, i.user
            )),
        }
        if let Some((later, outcome)) = later_runs.get(&i.sourced_id) {
            conflicts.push(format!(
                "the link of SIS person {} was changed again by run {later} ({outcome})",
                i.sourced_id
            ));
        }
        if let Some(old) = i.before.as_ref().and_then(|b| b.replaced.as_ref()) {
            if let Some(u) = links_now.get(&old.sourced_id) {
                conflicts.push(format!(
                    "SIS person {} (the old sourcedId of {}) is linked to account #{u} again",
                    old.sourced_id, i.sourced_id
                ));
            }
            if let Some((later, outcome)) = later_runs.get(&old.sourced_id) {
                conflicts.push(format!(
                    "the link of SIS person {} was changed again by run {later} ({outcome})",
                    old.sourced_id
                ));
            }
        }
        if let Some(others) = other_links.get(&i.user) {
            conflicts.push(format!(
                "account #{} that run {run} created was linked since to {}",
                i.user,
                others.join(", ")
            ));
        }
    }
    let created_set: BTreeSet<UserId> = created.iter().copied().collect();
    for user in &users {
        let Some(cur) = current.get(user) else {
            conflicts.push(format!("account #{user} no longer exists"));
            continue;
        };
        if let Some(survivor) = cur.user.merged_into {
            conflicts.push(format!(
                "account #{user} was merged into account #{survivor}"
            ));
            continue;
        }
        let fields = changed.get(user);
        let mut watched: BTreeSet<&str> = fields
            .map(|f| f.keys().map(String::as_str).collect())
            .unwrap_or_default();
        if created_set.contains(user) {
            watched.extend(["active", "access"]);
        }
        if link_users.contains(user) {
            watched.insert("sis_link");
        }
        let mut reported: BTreeSet<&str> = BTreeSet::new();
        for r in history.get(user).into_iter().flatten() {
            if r.id <= mark || r.run == Some(run) || cancelled(r) {
                continue;
            }
            if r.field == "merged" {
                conflicts.push(format!(
                    "account #{user} had another account merged into it by {}",
                    by_whom(r)
                ));
            } else if let Some(f) = watched.get(r.field.as_str())
                && reported.insert(f)
            {
                let what = if *f == "sis_link" {
                    format!(
                        "account #{user}'s SIS link was changed again by {}",
                        by_whom(r)
                    )
                } else {
                    format!("account #{user} {f} was changed again by {}", by_whom(r))
                };
                conflicts.push(what);
            }
        }
        for (f, c) in fields.into_iter().flatten() {
            if reported.contains(f.as_str()) {
                continue;
            }
            let now_value = current_value(&cur.user, f);
            if now_value != c.new {
                conflicts.push(format!(
                    "account #{user} {f} is {} now, not {} as run {run} left it",
                    value_words(now_value.as_deref()),
                    value_words(c.new.as_deref())
                ));
            }
        }
    }
    if !conflicts.is_empty() {
        return Err(StoreError::Conflicts {
            message: format!(
                "run {run} cannot be undone: later changes touch what it would restore: {}. \
                 Undo the later runs first, or put these right by hand",
                conflicts.join("; ")
            ),
            conflicts,
        });
    }

    // ----- accounts: fields back, provenance back, activity back
    let writer = Writer::Admin(actor.to_owned()).encode();
    let now_s = ts(now);
    let mut summary = UndoSummary {
        run,
        dry_run,
        ..UndoSummary::default()
    };
    let mut revisions = Rows::new("revisions", &REVISION_COLUMNS);
    let mut provenance = Rows::new(
        "field_provenance",
        &["user_id", "field", "writer", "run_id", "written_at"],
    );
    let mut unwritten = Rows::new("field_provenance", &["user_id", "field"]);
    let mut updates = Rows::new("users", &USER_UPDATE_COLUMNS);
    let mut locations = Locations::default();
    let revision = |user: UserId,
                    field: &str,
                    old: Option<String>,
                    new: Option<String>|
     -> Vec<Value<'static>> {
        vec![
            user.into(),
            Value::Null,
            field.to_owned().into(),
            old.into(),
            new.into(),
            writer.clone().into(),
            now_s.clone().into(),
        ]
    };
    for user in &users {
        let Some(mut cur) = current.remove(user) else {
            continue;
        };
        let u = &mut cur.user;
        let mut touched = false;
        for (f, c) in changed.get(user).into_iter().flatten() {
            let was = current_value(u, f);
            set_value(u, f, c.old.as_deref());
            revisions.push(revision(*user, f, was, c.old.clone()));
            touched = true;
            if let Ok(field) = f.parse::<Field>() {
                summary.fields_restored += 1;
                let previous = history
                    .get(user)
                    .into_iter()
                    .flatten()
                    .rfind(|r| r.id < c.first_id && r.field == *f);
                match previous {
                    Some(p) => provenance.push(vec![
                        (*user).into(),
                        field.as_str().into(),
                        p.writer.clone().into(),
                        p.run.into(),
                        p.at.clone().into(),
                    ]),
                    None => unwritten.push(vec![(*user).into(), field.as_str().into()]),
                }
            } else if f == "active" {
                if u.active {
                    summary.reactivated.push(*user);
                } else {
                    summary.deactivated.push(*user);
                }
            }
        }
        if created_set.contains(user) {
            if u.active {
                revisions.push(revision(
                    *user,
                    "active",
                    Some("true".into()),
                    Some("false".into()),
                ));
                u.active = false;
                touched = true;
            }
            if u.access != Access::NoAccess {
                revisions.push(revision(
                    *user,
                    "access",
                    Some(u.access.as_str().into()),
                    Some(Access::NoAccess.as_str().into()),
                ));
                u.access = Access::NoAccess;
                touched = true;
            }
            summary.retired.push(*user);
        }
        if touched || link_users.contains(user) {
            u.revision += 1;
            let location = locations.id(tx, u.location.as_deref())?;
            updates.push(user_values(cur.user, location, &now_s));
        }
    }

    // ----- links: what the run made goes, what it replaced comes back
    let mut link_revisions: Vec<(UserId, Option<String>, Option<String>)> = Vec::new();
    let mut restore: Vec<LinkRow> = Vec::new();
    let mut retired_refusals: Vec<UserId> = Vec::new();
    for i in &items {
        let before = i.before.as_ref();
        let removes = match i.outcome {
            Outcome::Created | Outcome::Linked => true,
            _ => before.is_some_and(|b| b.link.is_none()),
        };
        let restores = before.and_then(|b| b.link.clone());
        if removes || restores.is_some() {
            tx.execute(
                "DELETE FROM sis_links WHERE source = ? AND sourced_id = ? AND user_id = ?",
                &[source.into(), i.sourced_id.as_str().into(), i.user.into()],
            )?;
        }
        let replaced = before.and_then(|b| b.replaced.clone());
        if removes && restores.is_none() {
            summary.links_removed.push(pair(source, &i.sourced_id));
            if replaced.is_none() {
                link_revisions.push((i.user, Some(pair(source, &i.sourced_id)), None));
            }
        }
        if let Some(row) = restores {
            if row.user_id != i.user {
                link_revisions.push((i.user, Some(pair(source, &i.sourced_id)), None));
                link_revisions.push((row.user_id, None, Some(pair(source, &row.sourced_id))));
            }
            summary.links_restored.push(pair(source, &row.sourced_id));
            restore.push(row);
        }
        if let Some(row) = replaced {
            link_revisions.push((
                i.user,
                Some(pair(source, &i.sourced_id)),
                Some(pair(source, &row.sourced_id)),
            ));
            summary.links_restored.push(pair(source, &row.sourced_id));
            restore.push(row);
        }
        if let Some(Reason::ReturnedAfterGrace { old_user, .. }) = &i.reason {
            retired_refusals.push(*old_user);
        }
    }
    for row in &restore {
        insert_link(tx, source, row)?;
    }
    for old in retired_refusals {
        tx.execute(
            "DELETE FROM link_refusals WHERE source = ? AND sourced_id = ? AND user_id = ?",
            &[source.into(), RETIRED.into(), old.into()],
        )?;
    }
    // Accounts left with no link in the source leave its groups and relationships.
    for user in &link_users {
        let still = query_opt(
            tx,
            "SELECT sourced_id FROM sis_links WHERE source = ? AND user_id = ? LIMIT 1",
            &[source.into(), (*user).into()],
            |r| r.text(0),
        )?;
        if still.is_none() {
            leave_roster(tx, source, *user)?;
        }
    }
    // An account given back its link (a person back after the grace period) was not among
    // the run's: its revision moves too, as every write's does.
    let mut bumped: BTreeSet<UserId> = BTreeSet::new();
    for (user, old, new) in link_revisions {
        if users.binary_search(&user).is_err() && bumped.insert(user) {
            tx.execute(
                "UPDATE users SET revision = revision + 1, updated_at = ? WHERE id = ?",
                &[now_s.as_str().into(), user.into()],
            )?;
        }
        revisions.push(revision(user, "sis_link", old, new));
    }

    if !updates.is_empty() {
        tx.update_rows(&updates)?;
    }
    let first_revision = query_opt(tx, "SELECT COALESCE(MAX(id), 0) FROM revisions", &[], |r| {
        r.i64(0)
    })?
    .unwrap_or(0)
        + 1;
    if !revisions.is_empty() {
        tx.insert_rows(&revisions)?;
    }
    let last_revision = query_opt(tx, "SELECT COALESCE(MAX(id), 0) FROM revisions", &[], |r| {
        r.i64(0)
    })?
    .unwrap_or(0);
    if !unwritten.is_empty() {
        tx.delete_rows(&unwritten)?;
    }
    if !provenance.is_empty() {
        tx.upsert_rows(
            &provenance,
            &["user_id", "field"],
            &["writer", "run_id", "written_at"],
        )?;
    }
    summary.reactivated.sort_unstable();
    summary.deactivated.sort_unstable();
    summary.links_removed.sort();
    summary.links_restored.sort();

    let note = format!("undone by {actor} at {now}");
    let range = (last_revision >= first_revision).then_some((first_revision, last_revision));
    tx.execute(
        "UPDATE runs SET status = 'undone', note = COALESCE(note || '; ', '') || ?, \
         undo_first_revision = ?, undo_last_revision = ? WHERE id = ?",
        &[
            note.into(),
            range.map(|r| r.0).into(),
            range.map(|r| r.1).into(),
            run.into(),
        ],
    )?;
    audit(
        tx,
        actor,
        "run.undo",
        &format!(
            "run {run} of source {source} undone: {} field(s) restored, {} reactivated, {} deactivated, \
             {} created account(s) retired, {} link(s) removed, {} restored",
            summary.fields_restored,
            summary.reactivated.len(),
            summary.deactivated.len(),
            summary.retired.len(),
            summary.links_removed.len(),
            summary.links_restored.len()
        ),
        now,
    )?;
    Ok(summary)
}
