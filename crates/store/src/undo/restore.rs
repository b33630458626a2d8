//! The last phase of an undo: the accounts' fields, provenance and states put back, the
//! links the run made removed and those it replaced put back (the accounts left with no
//! link leaving the source's groups and relationships), and the undo recorded: the
//! accounts and revisions written, the run marked `undone`, an audit entry.

use std::collections::BTreeSet;

use jiff::Timestamp;
use rostersync_core::directory::{Access, AccountId, Field, Writer};
use rostersync_core::plan::{Outcome, Reason};
use rostersync_core::view::RETIRED;

use super::{Done, LinkRow, current_value, pair};
use crate::roster::forget_person;
use crate::settings::audit;
use crate::sql::{Rows, Tx, Value, query_opt};
use crate::users::{Locations, REVISION_COLUMNS, USER_UPDATE_COLUMNS, bump_revision, user_values};
use crate::{Result, UndoSummary};

fn set_value(u: &mut rostersync_core::directory::Account, field: &str, value: Option<&str>) {
    match field {
        "active" => u.active = value == Some("true"),
        "provider" => u.provider = value.map(str::to_owned),
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
fn leave_roster(tx: &mut dyn Tx, source: &str, user: AccountId) -> Result<()> {
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

/// The rows an undo writes, gathered by the phases and written by [`record_undo`]; its
/// revisions are the admin's, now.
pub(super) struct Writes<'a> {
    writer: String,
    now_s: &'a str,
    revisions: Rows<'a>,
    provenance: Rows<'a>,
    unwritten: Rows<'a>,
    updates: Rows<'a>,
}

impl<'a> Writes<'a> {
    pub(super) fn new(actor: &str, now_s: &'a str) -> Writes<'a> {
        Writes {
            writer: Writer::Admin(actor.to_owned()).encode(),
            now_s,
            revisions: Rows::new("revisions", &REVISION_COLUMNS),
            provenance: Rows::new(
                "field_provenance",
                &["user_id", "field", "writer", "run_id", "written_at"],
            ),
            unwritten: Rows::new("field_provenance", &["user_id", "field"]),
            updates: Rows::new("users", &USER_UPDATE_COLUMNS),
        }
    }

    /// A revision row of `user`'s `field`.
    fn revision(
        &self,
        user: AccountId,
        field: &str,
        old: Option<String>,
        new: Option<String>,
    ) -> Vec<Value<'static>> {
        vec![
            user.into(),
            Value::Null,
            field.to_owned().into(),
            old.into(),
            new.into(),
            self.writer.clone().into(),
            self.now_s.to_owned().into(),
        ]
    }
}

/// Accounts: fields back (and their provenance), activity back, the accounts the run
/// created retired (inactive, no access); a new revision for each account touched.
pub(super) fn restore_accounts(
    tx: &mut dyn Tx,
    done: &mut Done,
    writes: &mut Writes,
    summary: &mut UndoSummary,
) -> Result<()> {
    let mut locations = Locations::default();
    for user in &done.users {
        let Some(mut cur) = done.current.remove(user) else {
            continue;
        };
        let u = &mut cur.user;
        let mut touched = false;
        for (f, c) in done.changed.get(user).into_iter().flatten() {
            let was = current_value(u, f);
            set_value(u, f, c.old.as_deref());
            let revision = writes.revision(*user, f, was, c.old.clone());
            writes.revisions.push(revision);
            touched = true;
            if let Ok(field) = f.parse::<Field>() {
                summary.fields_restored += 1;
                let previous = done
                    .history
                    .get(user)
                    .into_iter()
                    .flatten()
                    .rfind(|r| r.id < c.first_id && r.field == *f);
                match previous {
                    Some(p) => writes.provenance.push(vec![
                        (*user).into(),
                        field.as_str().into(),
                        p.writer.clone().into(),
                        p.run.into(),
                        p.at.clone().into(),
                    ]),
                    None => writes
                        .unwritten
                        .push(vec![(*user).into(), field.as_str().into()]),
                }
            } else if f == "active" {
                if u.active {
                    summary.reactivated.push(*user);
                } else {
                    summary.deactivated.push(*user);
                }
            }
        }
        if done.created_set.contains(user) {
            if u.active {
                let revision =
                    writes.revision(*user, "active", Some("true".into()), Some("false".into()));
                writes.revisions.push(revision);
                u.active = false;
                touched = true;
            }
            if u.access != Access::NoAccess {
                let revision = writes.revision(
                    *user,
                    "access",
                    Some(u.access.as_str().into()),
                    Some(Access::NoAccess.as_str().into()),
                );
                writes.revisions.push(revision);
                u.access = Access::NoAccess;
                touched = true;
            }
            summary.retired.push(*user);
        }
        if touched || done.link_users.contains(user) {
            u.revision += 1;
            let location = locations.id(tx, u.location.as_deref())?;
            writes
                .updates
                .push(user_values(cur.user, location, writes.now_s));
        }
    }
    Ok(())
}

/// Links: what the run made goes, what it replaced comes back, the refusals a person back
/// after the grace period retired go; accounts left with no link in the source leave its
/// groups and relationships; every link change is a revision.
pub(super) fn restore_links(
    tx: &mut dyn Tx,
    done: &Done,
    writes: &mut Writes,
    summary: &mut UndoSummary,
) -> Result<()> {
    let source = done.source;
    let mut link_revisions: Vec<(AccountId, Option<String>, Option<String>)> = Vec::new();
    let mut restore: Vec<LinkRow> = Vec::new();
    let mut retired_refusals: Vec<AccountId> = Vec::new();
    for i in &done.items {
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
    for user in &done.link_users {
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
    let mut bumped: BTreeSet<AccountId> = BTreeSet::new();
    for (user, old, new) in link_revisions {
        if done.users.binary_search(&user).is_err() && bumped.insert(user) {
            bump_revision(tx, user, writes.now_s)?;
        }
        let revision = writes.revision(user, "sis_link", old, new);
        writes.revisions.push(revision);
    }
    Ok(())
}

/// Writes what the phases gathered (the accounts, the revisions and the range of ids they
/// got, the provenance), marks the run `undone` with that range, and audits the undo.
pub(super) fn record_undo(
    tx: &mut dyn Tx,
    done: &Done,
    writes: Writes,
    summary: &mut UndoSummary,
    actor: &str,
    now: Timestamp,
) -> Result<()> {
    let (run, source) = (done.run, done.source);
    let Writes {
        revisions,
        provenance,
        unwritten,
        updates,
        ..
    } = writes;
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
    Ok(())
}
