//! The SIS people the directory keeps a record of (`sis_people`, the SIS card's data: the
//! people the syncs have linked), looked up one by one or searched by name, email or
//! school id, each with where they stood in the source's last complete full pull.
//!
//! A link made by hand is checked against the SIS; when the SIS cannot be reached, these
//! records are what the check falls back to, and the console's *Change SIS user* form
//! searches them instead of asking for a raw sourcedId.

use jiff::Timestamp;
use rostersync_core::directory::AccountId;
use serde::Serialize;

use crate::sql::{Row, Tx, Value, contains_pattern, query_opt, query_vec};
use crate::{Result, RunId, StoreError};

/// The source's last complete full pull that was applied (succeeded, or undone since).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PullRef {
    pub run: RunId,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

/// A SIS person as the last pulls left them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeptPerson {
    pub source: String,
    pub sourced_id: String,
    pub given_name: String,
    pub family_name: String,
    pub email: Option<String>,
    pub username: Option<String>,
    pub identifier: Option<String>,
    pub role: Option<String>,
    /// `active` or `tobedeleted`.
    pub status: String,
    pub enabled: bool,
    pub grade: Option<String>,
    /// The primary org's name (its sourcedId when the org is unknown).
    pub school: Option<String>,
    /// When a sync last wrote the record.
    pub recorded_at: Timestamp,
    /// The account linked to the person in this source, if any.
    pub linked_user: Option<AccountId>,
    /// Whether the source's last complete full pull had the person: linked and not
    /// missing from it, or listed among its items, or written by it or a later run.
    /// `false` when no complete full pull was applied yet.
    pub in_last_pull: bool,
}

/// The most terms a search looks for (each must match).
const MAX_TERMS: usize = 5;

const PERSON_SELECT: &str = "SELECT p.source, p.sourced_id, p.given_name, p.family_name, p.email, p.username, \
     p.identifier, p.role, p.status, p.enabled, p.grade, COALESCE(o.name, p.primary_org), p.updated_at, \
     l.user_id, l.misses FROM sis_people p \
     LEFT JOIN sis_orgs o ON o.source = p.source AND o.sourced_id = p.primary_org \
     LEFT JOIN sis_links l ON l.source = p.source AND l.sourced_id = p.sourced_id";

/// What a row says; `in_last_pull` is settled by [`settle`].
fn person_from_row(r: &dyn Row) -> Result<(KeptPerson, Option<i64>)> {
    let username = r.text(5)?;
    Ok((
        KeptPerson {
            source: r.text(0)?,
            sourced_id: r.text(1)?,
            given_name: r.text(2)?,
            family_name: r.text(3)?,
            email: r.opt_text(4)?,
            username: (!username.is_empty()).then_some(username),
            identifier: r.opt_text(6)?,
            role: r.opt_text(7)?,
            status: r.text(8)?,
            enabled: r.bool(9)?,
            grade: r.opt_text(10)?,
            school: r.opt_text(11)?,
            recorded_at: r.ts(12)?,
            linked_user: r.opt_i64(13)?.map(AccountId),
            in_last_pull: false,
        },
        r.opt_i64(14)?,
    ))
}

/// Decides whether the last complete full pull had the person.
fn settle(
    tx: &mut dyn Tx,
    last: Option<&PullRef>,
    (mut person, misses): (KeptPerson, Option<i64>),
) -> Result<KeptPerson> {
    let Some(last) = last else {
        return Ok(person);
    };
    person.in_last_pull = match (person.linked_user, misses) {
        // A complete full pull counts the linked people it misses.
        (Some(_), Some(misses)) => misses == 0,
        _ => {
            person.recorded_at >= last.started_at
                || query_opt(
                    tx,
                    "SELECT 1 FROM run_items WHERE run_id = ? AND sourced_id = ?",
                    &[last.run.into(), person.sourced_id.as_str().into()],
                    |r| r.i64(0),
                )?
                .is_some()
        }
    };
    Ok(person)
}

pub(crate) fn last_complete_pull(tx: &mut dyn Tx, source: &str) -> Result<Option<PullRef>> {
    query_opt(
        tx,
        "SELECT id, started_at, finished_at FROM runs WHERE source = ? AND kind = 'full' \
         AND complete = ? AND status IN ('succeeded', 'undone') ORDER BY id DESC LIMIT 1",
        &[source.into(), true.into()],
        |r| {
            Ok(PullRef {
                run: RunId(r.i64(0)?),
                started_at: r.ts(1)?,
                finished_at: r.opt_ts(2)?,
            })
        },
    )
}

pub(crate) fn sis_person(
    tx: &mut dyn Tx,
    source: &str,
    sourced_id: &str,
) -> Result<Option<KeptPerson>> {
    let Some(row) = query_opt(
        tx,
        &format!("{PERSON_SELECT} WHERE p.source = ? AND p.sourced_id = ?"),
        &[source.into(), sourced_id.into()],
        person_from_row,
    )?
    else {
        return Ok(None);
    };
    let last = last_complete_pull(tx, source)?;
    settle(tx, last.as_ref(), row).map(Some)
}

/// People of `source` every term of `query` (whitespace-separated, case-insensitive)
/// finds in their name, email, username, school id or sourcedId, by family name, given
/// name and sourcedId; at most `limit` (1 or more). `Conflict` for an empty query.
pub(crate) fn search_sis_people(
    tx: &mut dyn Tx,
    source: &str,
    query: &str,
    limit: u32,
) -> Result<Vec<KeptPerson>> {
    let terms: Vec<String> = query
        .split_whitespace()
        .take(MAX_TERMS)
        .map(|t| contains_pattern(&t.to_lowercase()))
        .collect();
    if terms.is_empty() {
        return Err(StoreError::Conflict(
            "give a name, email, username or school id to search for".into(),
        ));
    }
    let mut sql = format!("{PERSON_SELECT} WHERE p.source = ?");
    let mut params: Vec<Value<'_>> = vec![source.into()];
    for term in terms {
        sql.push_str(
            " AND LOWER(p.given_name || ' ' || p.family_name || ' ' || COALESCE(p.email, '') || ' ' \
             || p.username || ' ' || COALESCE(p.identifier, '') || ' ' || p.sourced_id) LIKE ? ESCAPE '\\'",
        );
        params.push(term.into());
    }
    sql.push_str(" ORDER BY LOWER(p.family_name), LOWER(p.given_name), p.sourced_id LIMIT ?");
    params.push(i64::from(limit.max(1)).into());
    let rows = query_vec(tx, &sql, &params, person_from_row)?;
    let last = last_complete_pull(tx, source)?;
    rows.into_iter()
        .map(|row| settle(tx, last.as_ref(), row))
        .collect()
}
