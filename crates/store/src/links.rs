//! Links an admin makes and removes by hand (the User History page's *Remove link to SIS
//! user* and *Change SIS user*, the CLI's `link`, `unlink`, `relink`), an admin's change of
//! access level, and the SIS card.
//!
//! A removed link leaves a refusal behind: the planner never links that person to that
//! account again by itself. Every action writes a `sis_link` revision on the account
//! (writer `admin:ACTOR`, which bumps its revision, so a plan made before it is refused
//! at apply) and an audit entry.

use std::collections::HashMap;

use jiff::Timestamp;
use rostersync_core::directory::{Access, AccountId, MatchRule, Writer};
use rostersync_core::plan::Outcome;

use crate::roster::{display_name, forget_person, user_ref};
use crate::settings::audit;
use crate::sql::{Keys, Row, Tx, Value, query_opt, query_vec, ts};
use crate::users::{admin_revision, bump_revision};
use crate::{CardClass, CardRun, Result, RunId, SisCard, StoreError, UserRef};

/// Run items on an SIS card.
const CARD_RUNS: i64 = 50;

/// An account as the messages name it.
pub(crate) struct Account {
    pub id: AccountId,
    /// `#12 (ana@x.org)`.
    pub label: String,
    pub merged_into: Option<AccountId>,
}

fn account(tx: &mut dyn Tx, user: AccountId) -> Result<Option<Account>> {
    query_opt(
        tx,
        "SELECT id, COALESCE(preferred_name, first_name), last_name, username, email, merged_into FROM users WHERE id = ?",
        &[user.into()],
        |r| {
            let UserRef { id, name, email } = user_ref(r)?;
            let label = match email {
                Some(e) if e != name => format!("#{id} {name} ({e})"),
                _ => format!("#{id} ({name})"),
            };
            Ok(Account {
                id,
                label,
                merged_into: r.opt_i64(5)?.map(AccountId),
            })
        },
    )
}

/// Gives `source`'s link `old` the key `new` (an identity provider changed the id it
/// knows the account by: a SCIM `externalId`), with its record and the connection's
/// resource for it; `Conflict` when `new` is another link's.
pub(crate) fn rekey_link(tx: &mut dyn Tx, source: &str, old: &str, new: &str) -> Result<()> {
    require_sourced_id(new)?;
    if let Some(other) = linked_account(tx, source, new)? {
        return Err(StoreError::Conflict(format!(
            "{new} is already account #{other}'s key in source {source}"
        )));
    }
    for table in ["sis_links", "sis_people"] {
        tx.execute(
            &format!("UPDATE {table} SET sourced_id = ? WHERE source = ? AND sourced_id = ?"),
            &[new.into(), source.into(), old.into()],
        )?;
    }
    crate::scim_resources::rekey_scim_resource(tx, source, old, new)
}

/// `source`'s links of `users`: per account, the sourcedId and the misses.
pub(crate) fn links_of(
    tx: &mut dyn Tx,
    source: &str,
    users: &[AccountId],
) -> Result<std::collections::HashMap<AccountId, (String, u32)>> {
    let mut out = std::collections::HashMap::new();
    if users.is_empty() {
        return Ok(out);
    }
    tx.for_each_in(
        "SELECT user_id, sourced_id, misses FROM sis_links WHERE source = ? AND user_id {keys}",
        &[source.into()],
        Keys::Accounts(users),
        &mut |r| {
            let misses = u32::try_from(r.i64(2)?).unwrap_or(u32::MAX);
            out.insert(AccountId(r.i64(0)?), (r.text(1)?, misses));
            Ok(())
        },
    )?;
    Ok(out)
}

pub(crate) fn linked_by(
    tx: &mut dyn Tx,
    sources: &[String],
    users: &[AccountId],
) -> Result<std::collections::HashSet<AccountId>> {
    let mut out = std::collections::HashSet::new();
    if sources.is_empty() || users.is_empty() {
        return Ok(out);
    }
    tx.for_each_in(
        "SELECT user_id, source FROM sis_links WHERE user_id {keys}",
        &[],
        Keys::Accounts(users),
        &mut |r| {
            let source = r.text(1)?;
            if sources.contains(&source) {
                out.insert(AccountId(r.i64(0)?));
            }
            Ok(())
        },
    )?;
    Ok(out)
}

pub(crate) fn require_user(tx: &mut dyn Tx, user: AccountId) -> Result<Account> {
    account(tx, user)?
        .ok_or_else(|| StoreError::NotFound(format!("account #{user} does not exist")))
}

fn require_source(tx: &mut dyn Tx, source: &str) -> Result<()> {
    let known = query_opt(
        tx,
        "SELECT name FROM sources WHERE name = ?",
        &[source.into()],
        |r| r.text(0),
    )?;
    match known {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound(format!(
            "there is no source named {source}: `rostersync source list` shows them"
        ))),
    }
}

fn require_sourced_id(sourced_id: &str) -> Result<()> {
    if sourced_id.trim().is_empty() {
        return Err(StoreError::Conflict(
            "the SIS sourcedId is empty: give the SIS person's sourcedId".into(),
        ));
    }
    Ok(())
}

fn refuse_merged(a: &Account) -> Result<()> {
    match a.merged_into {
        Some(survivor) => Err(StoreError::Conflict(format!(
            "account {} was merged into account #{survivor}: link the surviving account instead",
            a.label
        ))),
        None => Ok(()),
    }
}

/// The account a person of a source is linked to.
pub(crate) fn linked_account(
    tx: &mut dyn Tx,
    source: &str,
    sourced_id: &str,
) -> Result<Option<AccountId>> {
    query_opt(
        tx,
        "SELECT user_id FROM sis_links WHERE source = ? AND sourced_id = ?",
        &[source.into(), sourced_id.into()],
        |r| r.i64(0).map(AccountId),
    )
}

/// The account each of these people of a source is linked to, by sourcedId (the people
/// with no link left out).
pub(crate) fn linked_accounts(
    tx: &mut dyn Tx,
    source: &str,
    sourced_ids: &[String],
) -> Result<HashMap<String, AccountId>> {
    let mut out = HashMap::new();
    tx.for_each_in(
        "SELECT sourced_id, user_id FROM sis_links WHERE source = ? AND sourced_id {keys}",
        &[source.into()],
        Keys::Texts(sourced_ids),
        &mut |r| {
            out.insert(r.text(0)?, AccountId(r.i64(1)?));
            Ok(())
        },
    )?;
    Ok(out)
}

/// The person of a source an account is linked to.
pub(crate) fn linked_person(
    tx: &mut dyn Tx,
    source: &str,
    user: AccountId,
) -> Result<Option<String>> {
    query_opt(
        tx,
        "SELECT sourced_id FROM sis_links WHERE source = ? AND user_id = ? ORDER BY sourced_id",
        &[source.into(), user.into()],
        |r| r.text(0),
    )
}

/// Refuses linking a person that another account already has.
fn refuse_taken(tx: &mut dyn Tx, source: &str, sourced_id: &str, user: AccountId) -> Result<()> {
    if let Some(other) = linked_account(tx, source, sourced_id)?
        && other != user
    {
        let label = account(tx, other)?.map_or_else(|| format!("#{other}"), |a| a.label);
        return Err(StoreError::Conflict(format!(
            "SIS person {sourced_id} of source {source} is already linked to account {label}: \
             remove that link first (unlink {other})"
        )));
    }
    Ok(())
}

/// A manual link with nothing synced yet (hash 0, revision 0: the next sync writes it
/// whole), and no refusal left for the pair.
fn make_link(
    tx: &mut dyn Tx,
    source: &str,
    sourced_id: &str,
    user: AccountId,
    now: &str,
) -> Result<()> {
    tx.execute(
        "DELETE FROM link_refusals WHERE source = ? AND sourced_id = ? AND user_id = ?",
        &[source.into(), sourced_id.into(), user.into()],
    )?;
    tx.execute(
        "INSERT INTO sis_links (source, sourced_id, user_id, rule, record_hash, synced_revision, linked_at, misses) \
         VALUES (?, ?, ?, ?, 0, 0, ?, 0)",
        &[
            source.into(),
            sourced_id.into(),
            user.into(),
            MatchRule::Manual.as_str().into(),
            now.into(),
        ],
    )?;
    Ok(())
}

/// Removes a link and records the refusal.
fn remove_link(
    tx: &mut dyn Tx,
    source: &str,
    sourced_id: &str,
    user: AccountId,
    actor: &str,
    now: &str,
) -> Result<()> {
    tx.execute(
        "DELETE FROM sis_links WHERE source = ? AND sourced_id = ? AND user_id = ?",
        &[source.into(), sourced_id.into(), user.into()],
    )?;
    tx.execute(
        "INSERT INTO link_refusals (source, sourced_id, user_id, refused_at, actor) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (source, sourced_id, user_id) DO UPDATE SET refused_at = excluded.refused_at, actor = excluded.actor",
        &[
            source.into(),
            sourced_id.into(),
            user.into(),
            now.into(),
            actor.into(),
        ],
    )?;
    forget_person(tx, source, user)
}

/// The `sis_link` revision rows (old → new `source:sourcedId`), one account revision.
fn record(
    tx: &mut dyn Tx,
    user: AccountId,
    changes: &[(Option<String>, Option<String>)],
    actor: &str,
    now: &str,
) -> Result<()> {
    let writer = Writer::Admin(actor.to_owned()).encode();
    for (old, new) in changes {
        admin_revision(
            tx,
            user,
            "sis_link",
            old.as_deref(),
            new.as_deref(),
            &writer,
            now,
        )?;
    }
    bump_revision(tx, user, now)
}

fn pair(source: &str, sourced_id: &str) -> String {
    format!("{source}:{sourced_id}")
}

pub(crate) fn link_user(
    tx: &mut dyn Tx,
    source: &str,
    sourced_id: &str,
    user: AccountId,
    actor: &str,
    now: Timestamp,
) -> Result<()> {
    require_sourced_id(sourced_id)?;
    let a = require_user(tx, user)?;
    require_source(tx, source)?;
    refuse_merged(&a)?;
    if linked_account(tx, source, sourced_id)? == Some(user) {
        return Ok(());
    }
    refuse_taken(tx, source, sourced_id, user)?;
    if let Some(current) = linked_person(tx, source, user)? {
        return Err(StoreError::Conflict(format!(
            "account {} is already linked to SIS person {current} of source {source}: \
             change it with relink (Change SIS user), or unlink it first",
            a.label
        )));
    }
    let now_s = ts(now);
    make_link(tx, source, sourced_id, a.id, &now_s)?;
    record(
        tx,
        a.id,
        &[(None, Some(pair(source, sourced_id)))],
        actor,
        &now_s,
    )?;
    audit(
        tx,
        actor,
        "user.link",
        &format!(
            "account {} linked by hand to SIS person {sourced_id} of source {source}",
            a.label
        ),
        now,
    )
}

pub(crate) fn unlink_user(
    tx: &mut dyn Tx,
    user: AccountId,
    source: Option<&str>,
    actor: &str,
    now: Timestamp,
) -> Result<Vec<(String, String)>> {
    let a = require_user(tx, user)?;
    let mut sql = String::from("SELECT source, sourced_id FROM sis_links WHERE user_id = ?");
    let mut params: Vec<Value<'_>> = vec![user.into()];
    if let Some(s) = source {
        sql.push_str(" AND source = ?");
        params.push(s.into());
    }
    sql.push_str(" ORDER BY source, sourced_id");
    let links = query_vec(tx, &sql, &params, |r| Ok((r.text(0)?, r.text(1)?)))?;
    if links.is_empty() {
        return Err(StoreError::NotFound(match source {
            Some(s) => format!("account {} has no link to source {s}", a.label),
            None => format!("account {} has no SIS link", a.label),
        }));
    }
    let now_s = ts(now);
    let mut changes = Vec::with_capacity(links.len());
    for (s, id) in &links {
        remove_link(tx, s, id, a.id, actor, &now_s)?;
        changes.push((Some(pair(s, id)), None));
    }
    record(tx, a.id, &changes, actor, &now_s)?;
    let removed: Vec<String> = links.iter().map(|(s, id)| pair(s, id)).collect();
    audit(
        tx,
        actor,
        "user.unlink",
        &format!(
            "account {} unlinked from SIS person {}; the sync will not link them again by itself",
            a.label,
            removed.join(", ")
        ),
        now,
    )?;
    Ok(links)
}

pub(crate) fn relink_user(
    tx: &mut dyn Tx,
    user: AccountId,
    source: &str,
    new_sourced_id: &str,
    actor: &str,
    now: Timestamp,
) -> Result<String> {
    require_sourced_id(new_sourced_id)?;
    let a = require_user(tx, user)?;
    require_source(tx, source)?;
    refuse_merged(&a)?;
    let old = linked_person(tx, source, user)?.ok_or_else(|| {
        StoreError::NotFound(format!(
            "account {} has no link to source {source} to change: link it instead",
            a.label
        ))
    })?;
    if old == new_sourced_id {
        return Ok(old);
    }
    refuse_taken(tx, source, new_sourced_id, user)?;
    let now_s = ts(now);
    remove_link(tx, source, &old, a.id, actor, &now_s)?;
    make_link(tx, source, new_sourced_id, a.id, &now_s)?;
    record(
        tx,
        a.id,
        &[(Some(pair(source, &old)), Some(pair(source, new_sourced_id)))],
        actor,
        &now_s,
    )?;
    audit(
        tx,
        actor,
        "user.relink",
        &format!(
            "account {} changed from SIS person {old} to {new_sourced_id} of source {source}; \
             the sync will not link {old} to it again by itself",
            a.label
        ),
        now,
    )?;
    Ok(old)
}

/// An admin sets an account's access level: an `access` revision (writer `admin:ACTOR`)
/// and an audit entry; the same level changes nothing.
pub(crate) fn set_access(
    tx: &mut dyn Tx,
    user: AccountId,
    access: Access,
    actor: &str,
    now: Timestamp,
) -> Result<()> {
    let a = require_user(tx, user)?;
    refuse_merged(&a)?;
    let current = query_opt(
        tx,
        "SELECT access FROM users WHERE id = ?",
        &[user.into()],
        |r| r.text(0),
    )?
    .unwrap_or_default();
    if current == access.as_str() {
        return Ok(());
    }
    let now_s = ts(now);
    tx.execute(
        "UPDATE users SET access = ?, revision = revision + 1, updated_at = ? WHERE id = ?",
        &[access.as_str().into(), now_s.as_str().into(), user.into()],
    )?;
    admin_revision(
        tx,
        user,
        "access",
        Some(&current),
        Some(access.as_str()),
        &Writer::Admin(actor.to_owned()).encode(),
        &now_s,
    )?;
    audit(
        tx,
        actor,
        "user.access",
        &format!("account {}: access {current} → {access}", a.label),
        now,
    )
}

/// One card per link, by source name.
pub(crate) fn sis_card(tx: &mut dyn Tx, user: AccountId) -> Result<Vec<SisCard>> {
    require_user(tx, user)?;
    let links = query_vec(
        tx,
        "SELECT source, sourced_id, rule, linked_at, misses, deactivated_at FROM sis_links \
         WHERE user_id = ? ORDER BY source, sourced_id",
        &[user.into()],
        |r| {
            Ok(SisCard {
                source: r.text(0)?,
                sourced_id: r.text(1)?,
                role: None,
                status: None,
                enabled: None,
                identifier: None,
                grade: None,
                primary_org: None,
                primary_org_name: None,
                location: None,
                homeroom: None,
                classes: Vec::new(),
                username: None,
                modified: None,
                rule: r
                    .text(2)?
                    .parse()
                    .map_err(|e| StoreError::Corrupt(format!("stored link rule: {e}")))?,
                linked_at: r.ts(3)?,
                misses: u32::try_from(r.i64(4)?)
                    .map_err(|e| StoreError::Corrupt(format!("stored link misses: {e}")))?,
                deactivated_at: r.opt_ts(5)?,
                runs: Vec::new(),
            })
        },
    )?;
    links
        .into_iter()
        .map(|mut card| {
            let classes = fill_record(tx, &mut card)?;
            card.classes = card_classes(tx, &card.source, classes)?;
            card.runs = card_runs(tx, user, &card.source)?;
            Ok(card)
        })
        .collect()
}

/// The SIS record's values; returns the class sourcedIds.
fn fill_record(tx: &mut dyn Tx, card: &mut SisCard) -> Result<Vec<String>> {
    let mut classes = Vec::new();
    let mut read = |r: &dyn Row| -> Result<()> {
        card.role = r.opt_text(0)?;
        card.status = Some(r.text(1)?);
        card.enabled = Some(r.bool(2)?);
        card.identifier = r.opt_text(3)?;
        card.grade = r.opt_text(4)?;
        card.primary_org = r.opt_text(5)?;
        card.primary_org_name = r.opt_text(6)?;
        card.location = r.opt_text(7)?;
        card.homeroom = r.opt_text(8)?;
        if let Some(json) = r.opt_text(9)? {
            classes = serde_json::from_str(&json)
                .map_err(|e| StoreError::Corrupt(format!("stored classes of a SIS person: {e}")))?;
        }
        card.username = r.opt_text(10)?;
        card.modified = r.opt_ts(11)?;
        Ok(())
    };
    let (source, sourced_id) = (card.source.clone(), card.sourced_id.clone());
    tx.for_each(
        "SELECT p.role, p.status, p.enabled, p.identifier, p.grade, p.primary_org, o.name, p.location, \
         p.homeroom, p.classes, p.username, p.modified FROM sis_people p \
         LEFT JOIN sis_orgs o ON o.source = p.source AND o.sourced_id = p.primary_org \
         WHERE p.source = ? AND p.sourced_id = ?",
        &[source.as_str().into(), sourced_id.as_str().into()],
        &mut read,
    )?;
    classes.sort();
    classes.dedup();
    Ok(classes)
}

fn card_classes(tx: &mut dyn Tx, source: &str, classes: Vec<String>) -> Result<Vec<CardClass>> {
    let keys: Vec<String> = classes.iter().map(|c| format!("class:{c}")).collect();
    // group key → (id, name, course)
    let mut groups: HashMap<String, (i64, String, Option<String>)> = HashMap::new();
    tx.for_each_in(
        "SELECT group_key, id, name, detail FROM groups WHERE source = ? AND group_key {keys}",
        &[source.into()],
        Keys::Texts(&keys),
        &mut |r| {
            groups.insert(r.text(0)?, (r.i64(1)?, r.text(2)?, r.opt_text(3)?));
            Ok(())
        },
    )?;
    let ids: Vec<i64> = groups.values().map(|g| g.0).collect();
    // group id → (last, first, shown)
    let mut teachers: HashMap<i64, Vec<(String, String, String)>> = HashMap::new();
    tx.for_each_in(
        "SELECT m.group_id, u.id, COALESCE(u.preferred_name, u.first_name), u.last_name, u.username, u.email FROM group_members m \
         JOIN users u ON u.id = m.user_id WHERE u.user_type = 'faculty' AND m.group_id {keys}",
        &[],
        Keys::Ints(&ids),
        &mut |r| {
            let (first, last) = (r.opt_text(2)?, r.opt_text(3)?);
            let username = r.opt_text(4)?;
            let email = r.opt_text(5)?;
            let shown = display_name(
                AccountId(r.i64(1)?),
                first.clone(),
                last.clone(),
                username.as_deref(),
                email.as_deref(),
            );
            teachers.entry(r.i64(0)?).or_default().push((
                last.unwrap_or_default().to_lowercase(),
                first.unwrap_or_default().to_lowercase(),
                shown,
            ));
            Ok(())
        },
    )?;
    Ok(classes
        .into_iter()
        .zip(keys)
        .map(|(sourced_id, key)| match groups.remove(&key) {
            Some((id, title, course)) => {
                let mut t = teachers.remove(&id).unwrap_or_default();
                t.sort();
                CardClass {
                    sourced_id,
                    title,
                    course,
                    teachers: t.into_iter().map(|(_, _, shown)| shown).collect(),
                }
            }
            None => CardClass {
                title: sourced_id.clone(),
                sourced_id,
                course: None,
                teachers: Vec::new(),
            },
        })
        .collect())
}

fn card_runs(tx: &mut dyn Tx, user: AccountId, source: &str) -> Result<Vec<CardRun>> {
    query_vec(
        tx,
        "SELECT i.run_id, r.started_at, i.outcome, i.reason FROM run_items i JOIN runs r ON r.id = i.run_id \
         WHERE i.user_id = ? AND r.source = ? ORDER BY i.run_id DESC LIMIT ?",
        &[user.into(), source.into(), CARD_RUNS.into()],
        |r| {
            let outcome = r.text(2)?;
            Ok(CardRun {
                run: RunId(r.i64(0)?),
                at: r.ts(1)?,
                outcome: Outcome::parse(&outcome).ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "stored run item outcome '{outcome}' is not one this version knows"
                    ))
                })?,
                reason: r.text(3)?,
            })
        },
    )
}
