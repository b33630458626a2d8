//! One account at a time: by id or by key (email, username, an old one kept as an
//! alias), as a record with provenance and SIS link; its revisions, groups and aliases;
//! and the account counts.

use std::collections::{HashMap, HashSet};

use rostersync_core::directory::{AccountId, Field, MatchKey, Writer};

use super::row::{StoredUser, USER_SELECT, provenance, provenance_row, user_from_row};
use crate::sql::{Keys, Tx, corrupt, query_i64, query_opt, query_vec};
use crate::{Result, RevisionRecord, RunId, SisRef, UserCounts, UserRecord};

/// Turns stored accounts into records: provenance and SIS link attached.
pub(super) fn records(tx: &mut dyn Tx, users: Vec<StoredUser>) -> Result<Vec<UserRecord>> {
    let ids: Vec<AccountId> = users.iter().map(|u| u.user.id).collect();
    let mut written: HashMap<AccountId, Vec<(Field, Writer)>> = HashMap::new();
    tx.for_each_in(
        "SELECT user_id, field, writer FROM field_provenance WHERE user_id {keys}",
        &[],
        Keys::Accounts(&ids),
        &mut |r| {
            let (id, f, w) = provenance_row(r)?;
            written.entry(id).or_default().push((f, w));
            Ok(())
        },
    )?;
    let mut sis: HashMap<AccountId, SisRef> = HashMap::new();
    tx.for_each_in(
        &format!(
            "SELECT user_id, source, sourced_id FROM sis_links \
             WHERE source NOT IN ({}) AND user_id {{keys}}",
            super::account_sources()
        ),
        &[],
        Keys::Accounts(&ids),
        &mut |r| {
            let link = SisRef {
                source: r.text(1)?,
                sourced_id: r.text(2)?,
            };
            // An account linked by several sources shows the first by name.
            let slot = sis
                .entry(AccountId(r.i64(0)?))
                .or_insert_with(|| link.clone());
            if link.source < slot.source {
                *slot = link;
            }
            Ok(())
        },
    )?;
    users
        .into_iter()
        .map(|s| {
            let mut user = s.user;
            user.provenance = provenance(
                &s.created_by,
                s.created_fields,
                written.get(&user.id).map_or(&[], Vec::as_slice),
            )?;
            Ok(UserRecord {
                sis: sis.remove(&user.id),
                user,
                created_at: s.created_at,
                updated_at: s.updated_at,
            })
        })
        .collect()
}

/// By id (all digits), else email, else username; case-insensitive. A key of digits that
/// is no id is tried as an email and username too (student numbers make usernames).
pub(crate) fn get_user(tx: &mut dyn Tx, id: AccountId) -> Result<Option<UserRecord>> {
    let found = query_opt(
        tx,
        &format!("{USER_SELECT} WHERE u.id = ?"),
        &[id.into()],
        user_from_row,
    )?;
    Ok(records(tx, found.into_iter().collect())?.pop())
}

pub(crate) fn find_user(tx: &mut dyn Tx, key: &str) -> Result<Option<UserRecord>> {
    let key = key.trim();
    if key.is_empty() {
        return Ok(None);
    }
    let mut found = None;
    if key.bytes().all(|b| b.is_ascii_digit())
        && let Ok(id) = key.parse::<i64>()
    {
        found = query_opt(
            tx,
            &format!("{USER_SELECT} WHERE u.id = ?"),
            &[id.into()],
            user_from_row,
        )?;
    }
    let lc = MatchKey::new(key);
    for column in ["email_lc", "username_lc"] {
        if found.is_none() {
            found = query_opt(
                tx,
                &format!("{USER_SELECT} WHERE u.{column} = ? ORDER BY u.id LIMIT 1"),
                &[lc.as_str().into()],
                user_from_row,
            )?;
        }
    }
    // An old email or username (an alias kept by a rename or a merge).
    if found.is_none() {
        found = query_opt(
            tx,
            &format!(
                "{USER_SELECT} WHERE u.id = (SELECT MIN(a.user_id) FROM aliases a WHERE a.value_lc = ?)"
            ),
            &[lc.as_str().into()],
            user_from_row,
        )?;
    }
    Ok(records(tx, found.into_iter().collect())?.pop())
}

pub(crate) fn user_revisions(tx: &mut dyn Tx, user: AccountId) -> Result<Vec<RevisionRecord>> {
    query_vec(
        tx,
        "SELECT field, old_value, new_value, writer, run_id, at FROM revisions WHERE user_id = ? ORDER BY id",
        &[user.into()],
        |r| {
            Ok(RevisionRecord {
                field: r.text(0)?,
                old: r.opt_text(1)?,
                new: r.opt_text(2)?,
                writer: r.text(3)?,
                run: r.opt_i64(4)?.map(RunId),
                at: r.ts(5)?,
            })
        },
    )
}

pub(crate) fn user_groups(tx: &mut dyn Tx, user: AccountId) -> Result<Vec<String>> {
    query_vec(
        tx,
        "SELECT g.name FROM group_members m JOIN groups g ON g.id = m.group_id WHERE m.user_id = ? ORDER BY g.name",
        &[user.into()],
        |r| r.text(0),
    )
}

pub(crate) fn user_aliases(tx: &mut dyn Tx, user: AccountId) -> Result<Vec<crate::AliasRow>> {
    query_vec(
        tx,
        "SELECT kind, value_lc FROM aliases WHERE user_id = ? ORDER BY id",
        &[user.into()],
        |r| {
            Ok(crate::AliasRow {
                kind: r.text(0)?.parse().map_err(|e| corrupt("alias kind", e))?,
                value: MatchKey::from_stored(r.text(1)?),
            })
        },
    )
}

/// Merged accounts (tombstones) are not counted. Read from `account_counts` (kept by
/// triggers, migration 0011): a row per set of linking sources and active flag, a few in
/// all; an account is linked when one of its sources is not an account source.
pub(crate) fn count_users(tx: &mut dyn Tx) -> Result<UserCounts> {
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    let account_sources: HashSet<String> =
        query_vec(tx, super::account_sources(), &[], |r| r.text(0))?
            .into_iter()
            .collect();
    let rows = query_vec(
        tx,
        "SELECT sources, active, CAST(SUM(accounts) AS BIGINT) FROM account_counts GROUP BY sources, active",
        &[],
        |r| Ok((r.text(0)?, r.bool(1)?, r.i64(2)?)),
    )?;
    let mut counts = UserCounts::default();
    for (sources, active, accounts) in rows {
        let linked = sources
            .split(',')
            .any(|s| !s.is_empty() && !account_sources.contains(s));
        let accounts = n(accounts);
        counts.users += accounts;
        if active {
            counts.active += accounts;
        }
        if linked {
            counts.linked += accounts;
        } else if active {
            counts.unlinked_active += accounts;
        }
    }
    counts.groups = n(query_i64(tx, "SELECT COUNT(*) FROM groups", &[])?);
    Ok(counts)
}
