//! Merging two accounts of one person (an SSO account and the one the sync made, two
//! accounts after an email naming change): the survivor keeps its id and takes the
//! loser's SIS links (every source), group memberships, guardian relationships, history
//! and match keys; the loser stays as a tombstone pointing at the survivor — inactive, no
//! access, never deleted, never matched again.
//!
//! The planner already ignores merged accounts and matches aliases, so the next sync finds
//! the person through the moved link and creates nothing. Two accounts linked to different
//! SIS people in one source are two people: refused.

use std::collections::BTreeSet;

use jiff::Timestamp;
use rostersync_core::directory::{Access, AccountId, AliasKind, MatchKey, Writer};

use crate::links::require_user;
use crate::settings::audit;
use crate::sql::{Rows, Tx, Value, query_opt, query_vec, ts};
use crate::users::{admin_revision, bump_revision};
use crate::{AliasRow, MergeSummary, Result, SisRef, StoreError};

fn links_of(tx: &mut dyn Tx, user: AccountId) -> Result<Vec<SisRef>> {
    query_vec(
        tx,
        "SELECT source, sourced_id FROM sis_links WHERE user_id = ? ORDER BY source, sourced_id",
        &[user.into()],
        |r| {
            Ok(SisRef {
                source: r.text(0)?,
                sourced_id: r.text(1)?,
            })
        },
    )
}

fn aliases_of(tx: &mut dyn Tx, user: AccountId) -> Result<Vec<(AliasKind, MatchKey)>> {
    Ok(crate::users::user_aliases(tx, user)?
        .into_iter()
        .map(|a| (a.kind, a.value))
        .collect())
}

pub(crate) fn merge_accounts(
    tx: &mut dyn Tx,
    loser: AccountId,
    survivor: AccountId,
    actor: &str,
    now: Timestamp,
    dry_run: bool,
) -> Result<MergeSummary> {
    let l = require_user(tx, loser)?;
    let s = require_user(tx, survivor)?;
    if loser == survivor {
        return Err(StoreError::Conflict(format!(
            "cannot merge account {} into itself: give the account that goes and the one that stays",
            l.label
        )));
    }
    if let Some(into) = l.merged_into {
        return Err(StoreError::Conflict(format!(
            "account {} was already merged into account #{into}",
            l.label
        )));
    }
    if let Some(into) = s.merged_into {
        return Err(StoreError::Conflict(format!(
            "account {} was itself merged into account #{into}: merge into #{into} instead",
            s.label
        )));
    }
    let loser_links = links_of(tx, loser)?;
    let survivor_links = links_of(tx, survivor)?;
    let clashes: Vec<String> = loser_links
        .iter()
        .filter_map(|a| {
            let b = survivor_links.iter().find(|b| b.source == a.source)?;
            Some(format!(
                "account #{loser} is linked to {}:{} and #{survivor} to {}:{}: they are different people in the SIS; \
                 unlink one first",
                a.source, a.sourced_id, b.source, b.sourced_id
            ))
        })
        .collect();
    if !clashes.is_empty() {
        return Err(StoreError::Conflict(clashes.join("; ")));
    }

    if dry_run {
        tx.execute_batch("SAVEPOINT rostersync_merge_dry_run")?;
    }
    let summary = merge(
        tx,
        (loser, &l.label),
        (survivor, &s.label),
        loser_links,
        actor,
        now,
        dry_run,
    )?;
    if dry_run {
        tx.execute_batch(
            "ROLLBACK TO SAVEPOINT rostersync_merge_dry_run; RELEASE SAVEPOINT rostersync_merge_dry_run",
        )?;
    }
    Ok(summary)
}

fn merge(
    tx: &mut dyn Tx,
    (loser, loser_label): (AccountId, &str),
    (survivor, survivor_label): (AccountId, &str),
    moved_links: Vec<SisRef>,
    actor: &str,
    now: Timestamp,
    dry_run: bool,
) -> Result<MergeSummary> {
    let now_s = ts(now);
    let writer = Writer::Admin(actor.to_owned()).encode();
    let mut summary = MergeSummary {
        loser,
        survivor,
        dry_run,
        moved_links,
        ..MergeSummary::default()
    };

    tx.execute(
        "UPDATE sis_links SET user_id = ? WHERE user_id = ?",
        &[survivor.into(), loser.into()],
    )?;
    summary.groups_moved = tx.execute(
        "UPDATE group_members SET user_id = ? WHERE user_id = ? \
         AND NOT EXISTS (SELECT 1 FROM group_members m WHERE m.group_id = group_members.group_id AND m.user_id = ?)",
        &[survivor.into(), loser.into(), survivor.into()],
    )?;
    tx.execute(
        "DELETE FROM group_members WHERE user_id = ?",
        &[loser.into()],
    )?;
    for (moved, other) in [("guardian_id", "student_id"), ("student_id", "guardian_id")] {
        summary.relationships_moved += tx.execute(
            &format!(
                "UPDATE guardian_relationships SET {moved} = ? WHERE {moved} = ? \
                 AND NOT EXISTS (SELECT 1 FROM guardian_relationships r WHERE r.source = guardian_relationships.source \
                 AND r.{moved} = ? AND r.{other} = guardian_relationships.{other})"
            ),
            &[survivor.into(), loser.into(), survivor.into()],
        )?;
    }
    tx.execute(
        "DELETE FROM guardian_relationships WHERE guardian_id = ? OR student_id = ? OR (guardian_id = ? AND student_id = ?)",
        &[loser.into(), loser.into(), survivor.into(), survivor.into()],
    )?;
    summary.revisions_moved = tx.execute(
        "UPDATE revisions SET user_id = ? WHERE user_id = ?",
        &[survivor.into(), loser.into()],
    )?;

    // Match keys: the loser's email and username, and the aliases it had.
    let (email, username, active, access) = query_opt(
        tx,
        "SELECT email, username, active, access FROM users WHERE id = ?",
        &[loser.into()],
        |r| Ok((r.opt_text(0)?, r.opt_text(1)?, r.bool(2)?, r.text(3)?)),
    )?
    .ok_or_else(|| StoreError::NotFound(format!("account #{loser} does not exist")))?;
    let own = query_opt(
        tx,
        "SELECT email_lc, username_lc FROM users WHERE id = ?",
        &[survivor.into()],
        |r| {
            let key = |i| Ok(r.opt_text(i)?.map(MatchKey::from_stored));
            Ok((key(0)?, key(1)?))
        },
    )?
    .unwrap_or_default();
    let mut have: BTreeSet<(AliasKind, MatchKey)> = aliases_of(tx, survivor)?.into_iter().collect();
    let mut wanted: Vec<(AliasKind, MatchKey)> = aliases_of(tx, loser)?;
    for (kind, value, own) in [
        (AliasKind::Email, email.as_deref(), own.0.as_ref()),
        (AliasKind::Username, username.as_deref(), own.1.as_ref()),
    ] {
        if let Some(v) = value.map(MatchKey::new).filter(|v| !v.is_empty())
            && own != Some(&v)
        {
            wanted.push((kind, v));
        }
    }
    let mut rows = Rows::new("aliases", &["user_id", "kind", "value_lc"]);
    for (kind, value) in wanted {
        if have.insert((kind, value.clone())) {
            rows.push(vec![
                Value::from(survivor),
                kind.as_str().into(),
                value.as_str().to_owned().into(),
            ]);
            summary.aliases_added.push(AliasRow { kind, value });
        }
    }
    tx.execute("DELETE FROM aliases WHERE user_id = ?", &[loser.into()])?;
    if !rows.is_empty() {
        tx.insert_rows(&rows)?;
    }

    // The tombstone, with its own history of the merge.
    tx.execute(
        "UPDATE users SET merged_into = ?, active = FALSE, access = ?, revision = revision + 1, updated_at = ? \
         WHERE id = ?",
        &[
            survivor.into(),
            Access::NoAccess.as_str().into(),
            now_s.as_str().into(),
            loser.into(),
        ],
    )?;
    bump_revision(tx, survivor, &now_s)?;
    let mut revisions: Vec<(AccountId, &str, Option<String>, Option<String>)> =
        vec![(loser, "merged_into", None, Some(format!("#{survivor}")))];
    if active {
        revisions.push((loser, "active", Some("true".into()), Some("false".into())));
    }
    if access != Access::NoAccess.as_str() {
        revisions.push((
            loser,
            "access",
            Some(access),
            Some(Access::NoAccess.as_str().into()),
        ));
    }
    revisions.push((survivor, "merged", None, Some(loser_label.to_owned())));
    for l in &summary.moved_links {
        revisions.push((
            survivor,
            "sis_link",
            None,
            Some(format!("{}:{}", l.source, l.sourced_id)),
        ));
    }
    for (user, field, old, new) in revisions {
        admin_revision(
            tx,
            user,
            field,
            old.as_deref(),
            new.as_deref(),
            &writer,
            &now_s,
        )?;
    }
    let links: Vec<String> = summary
        .moved_links
        .iter()
        .map(|l| format!("{}:{}", l.source, l.sourced_id))
        .collect();
    audit(
        tx,
        actor,
        "user.merge",
        &format!(
            "account {loser_label} merged into {survivor_label}: {} link(s) moved ({}), {} group membership(s), \
             {} relationship(s), {} revision(s), {} alias(es)",
            links.len(),
            if links.is_empty() {
                "none".to_owned()
            } else {
                links.join(", ")
            },
            summary.groups_moved,
            summary.relationships_moved,
            summary.revisions_moved,
            summary.aliases_added.len()
        ),
        now,
    )?;
    Ok(summary)
}
