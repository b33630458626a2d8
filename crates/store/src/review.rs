//! The review queue: a match the planner would not guess (several candidate accounts,
//! several SIS people for one account, a known account already linked to another person)
//! opens a case instead. Cases are kept by `apply_plan` — opened or refreshed for every
//! disputed item, closed when the SIS settles them (the person got linked) — and resolved
//! by an admin: link the person to an account (as `link_user` does), or a decision the
//! planner keeps honouring (`match_decisions`: make a new account, or ignore the person).
//!
//! A held plan opens no case: nothing of it has happened.

use std::collections::{BTreeSet, HashMap};

use jiff::Timestamp;
use rostersync_core::directory::{AccountId, Writer};
use rostersync_core::plan::{Outcome, PlanItem, Reason, SisRecord};
use rostersync_core::view::Decision;

use crate::links::{link_user, linked_account, linked_accounts, require_user};
use crate::roster::user_ref;
use crate::settings::audit;
use crate::sql::{Dialect, Keys, Row, Rows, Tx, Value, corrupt, encode, query_opt, query_vec, ts};
use crate::users::{admin_revision, bump_revision};
use crate::{
    CaseCandidate, CaseEvidence, CaseResolution, CaseStatus, Result, ReviewCase, ReviewCaseId,
    RunId, StoreError, UserRef,
};

/// Cases written per bulk statement.
const SLICE: usize = 10_000;

const CASE_INSERT_COLUMNS: [&str; 11] = [
    "source",
    "sourced_id",
    "status",
    "reason_code",
    "reason",
    "candidates",
    "evidence",
    "opened_run",
    "last_run",
    "opened_at",
    "updated_at",
];
const CASE_REFRESH_COLUMNS: [&str; 7] = [
    "id",
    "reason_code",
    "reason",
    "candidates",
    "evidence",
    "last_run",
    "updated_at",
];
const CASE_CLOSE_COLUMNS: [&str; 6] = [
    "id",
    "status",
    "resolution",
    "resolved_by",
    "resolved_at",
    "updated_at",
];

/// What closes a case the SIS settled.
pub(crate) const SETTLED_BY_SIS: &str = "resolved by the SIS";
/// The resolution of a case whose person a complete full pull no longer has.
pub(crate) const GONE_FROM_SIS: &str = "the person is gone from the SIS";

/// The admins' decisions for a source's people, for the planner's view.
pub(crate) fn decisions(tx: &mut dyn Tx, source: &str) -> Result<Vec<(String, Decision)>> {
    query_vec(
        tx,
        "SELECT sourced_id, decision FROM match_decisions WHERE source = ?",
        &[source.into()],
        decision_row,
    )
}

/// The decisions on these people's cases.
pub(crate) fn decisions_of(
    tx: &mut dyn Tx,
    source: &str,
    sourced_ids: &[String],
) -> Result<Vec<(String, Decision)>> {
    let mut out = Vec::new();
    tx.for_each_in(
        "SELECT sourced_id, decision FROM match_decisions WHERE source = ? AND sourced_id {keys}",
        &[source.into()],
        Keys::Texts(sourced_ids),
        &mut |r| {
            out.push(decision_row(r)?);
            Ok(())
        },
    )?;
    Ok(out)
}

fn decision_row(r: &dyn Row) -> Result<(String, Decision)> {
    let d = r.text(1)?;
    let decision = Decision::parse(&d)
        .ok_or_else(|| corrupt("review decision", format!("'{d}' is not create or ignore")))?;
    Ok((r.text(0)?, decision))
}

/// The (sourcedId, account) pairs kept apart in a source: of every person, or of these.
pub(crate) fn kept_apart(
    tx: &mut dyn Tx,
    source: &str,
    sourced_ids: Option<&[String]>,
) -> Result<Vec<(String, AccountId)>> {
    let mut out = Vec::new();
    let mut row = |r: &dyn Row| {
        out.push((r.text(0)?, AccountId(r.i64(1)?)));
        Ok(())
    };
    match sourced_ids {
        None => tx.for_each(
            "SELECT sourced_id, user_id FROM kept_apart WHERE source = ?",
            &[source.into()],
            &mut row,
        )?,
        Some(ids) => tx.for_each_in(
            "SELECT sourced_id, user_id FROM kept_apart WHERE source = ? AND sourced_id {keys}",
            &[source.into()],
            Keys::Texts(ids),
            &mut row,
        )?,
    }
    Ok(out)
}

/// The source's open cases: sourcedId → case id.
pub(crate) fn open_cases(tx: &mut dyn Tx, source: &str) -> Result<HashMap<String, ReviewCaseId>> {
    let mut out = HashMap::new();
    tx.for_each(
        "SELECT sourced_id, id FROM review_cases WHERE source = ? AND status = 'open'",
        &[source.into()],
        &mut |r| {
            out.insert(r.text(0)?, ReviewCaseId(r.i64(1)?));
            Ok(())
        },
    )?;
    Ok(out)
}

/// Whether an applied item with an account leaves its person linked (their case settled).
pub(crate) fn settles(outcome: Outcome) -> bool {
    matches!(
        outcome,
        Outcome::Created
            | Outcome::Linked
            | Outcome::Updated
            | Outcome::Unchanged
            | Outcome::Reactivated
            | Outcome::Deactivated
    )
}

/// The accounts a disputed item names; `made` gives the accounts of this run's people (a
/// new person whose email or username another new person took first names that one's).
fn candidates(reason: &Reason, made: &HashMap<String, AccountId>) -> Vec<AccountId> {
    match reason {
        Reason::Disputed(d) => d.candidates.clone(),
        Reason::ClaimedBySeveral { user, .. }
        | Reason::LinkedToAnother { user, .. }
        | Reason::IdentityTaken { user, .. } => vec![*user],
        Reason::IdentityTakenInRun(t) => made.get(&t.sourced_id).copied().into_iter().collect(),
        _ => Vec::new(),
    }
}

fn evidence_of(r: &SisRecord) -> CaseEvidence {
    CaseEvidence {
        name: format!("{} {}", r.given_name().trim(), r.family_name().trim())
            .trim()
            .to_owned(),
        email: r.email().map(str::to_owned),
        username: (!r.username().is_empty()).then(|| r.username().to_owned()),
        identifier: r.identifier().map(str::to_owned),
        role: r.role().map(str::to_owned),
        grade: r.grade().map(str::to_owned),
        school: r.primary_org().map(str::to_owned),
        modified: r.modified(),
    }
}

/// The evidence of people the plan has no record of, from what the SIS card keeps.
fn stored_evidence(
    tx: &mut dyn Tx,
    source: &str,
    ids: &[String],
) -> Result<HashMap<String, CaseEvidence>> {
    let mut out = HashMap::new();
    tx.for_each_in(
        "SELECT sourced_id, given_name, family_name, email, username, identifier, role, grade, primary_org, \
         modified FROM sis_people WHERE source = ? AND sourced_id {keys}",
        &[source.into()],
        Keys::Texts(ids),
        &mut |r| {
            let username = r.text(4)?;
            out.insert(
                r.text(0)?,
                CaseEvidence {
                    name: format!("{} {}", r.text(1)?.trim(), r.text(2)?.trim())
                        .trim()
                        .to_owned(),
                    email: r.opt_text(3)?,
                    username: (!username.is_empty()).then_some(username),
                    identifier: r.opt_text(5)?,
                    role: r.opt_text(6)?,
                    grade: r.opt_text(7)?,
                    school: r.opt_text(8)?,
                    modified: r.opt_ts(9)?,
                },
            );
            Ok(())
        },
    )?;
    Ok(out)
}

/// What an apply leaves for the source's review cases.
pub(crate) struct CaseWork<'a> {
    /// People with an open case whom a complete pull no longer has.
    pub gone_cases: &'a [String],
    /// The items that need a person.
    pub disputed: &'a [&'a PlanItem],
    /// SIS records of disputed people (from the plan; the others' are read stored).
    pub evidence: &'a [&'a SisRecord],
    /// Open cases of people the apply linked.
    pub settled: &'a [ReviewCaseId],
    /// The source's open cases when the apply began, by sourcedId.
    pub open: &'a HashMap<String, ReviewCaseId>,
}

/// Opens or refreshes a case for every disputed item, and closes the cases of `settled`
/// (case ids) as settled by the SIS and of the people gone. Part of the apply's
/// transaction.
pub(crate) fn maintain(
    tx: &mut dyn Tx,
    run: RunId,
    source: &str,
    work: CaseWork<'_>,
    now: &str,
) -> Result<()> {
    let CaseWork {
        gone_cases,
        disputed,
        evidence,
        settled,
        open,
    } = work;
    // Cases of people a complete pull no longer has close too.
    let gone: Vec<(ReviewCaseId, &str)> = gone_cases
        .iter()
        .filter_map(|id| open.get(id).map(|case| (*case, GONE_FROM_SIS)))
        .collect();
    if disputed.is_empty() && settled.is_empty() && gone.is_empty() {
        return Ok(());
    }
    let records: HashMap<&str, &SisRecord> =
        evidence.iter().map(|r| (r.sourced_id(), *r)).collect();
    let unknown: Vec<String> = disputed
        .iter()
        .filter(|i| !records.contains_key(i.sourced_id.as_str()))
        .map(|i| i.sourced_id.clone())
        .collect();
    let mut stored = stored_evidence(tx, source, &unknown)?;
    // The accounts this run made for the people whose email or username another new
    // person wanted too (the apply wrote their links already).
    let firsts: Vec<String> = disputed
        .iter()
        .filter_map(|i| match &i.reason {
            Reason::IdentityTakenInRun(t) => Some(t.sourced_id.clone()),
            _ => None,
        })
        .collect();
    let made = linked_accounts(tx, source, &firsts)?;

    for slice in disputed.chunks(SLICE) {
        let mut new = Rows::new("review_cases", &CASE_INSERT_COLUMNS);
        let mut refreshed = Rows::new("review_cases", &CASE_REFRESH_COLUMNS);
        for item in slice {
            let evidence = match records.get(item.sourced_id.as_str()) {
                Some(r) => evidence_of(r),
                None => stored.remove(&item.sourced_id).unwrap_or_default(),
            };
            let evidence = encode("a review case's evidence", &evidence)?;
            let candidates = encode(
                "a review case's candidates",
                &candidates(&item.reason, &made),
            )?;
            let code = item.reason.code();
            let reason = item.reason.to_string();
            match open.get(&item.sourced_id) {
                Some(id) => refreshed.push(vec![
                    (*id).into(),
                    code.into(),
                    reason.into(),
                    candidates.into(),
                    evidence.into(),
                    run.into(),
                    now.into(),
                ]),
                None => new.push(vec![
                    source.into(),
                    item.sourced_id.as_str().into(),
                    CaseStatus::Open.as_str().into(),
                    code.into(),
                    reason.into(),
                    candidates.into(),
                    evidence.into(),
                    run.into(),
                    run.into(),
                    now.into(),
                    now.into(),
                ]),
            }
        }
        if !new.is_empty() {
            tx.insert_rows(&new)?;
        }
        if !refreshed.is_empty() {
            tx.update_rows(&refreshed)?;
        }
    }

    let by = Writer::Source(source.to_owned()).encode();
    let closing: Vec<(ReviewCaseId, &str)> = settled
        .iter()
        .map(|id| (*id, SETTLED_BY_SIS))
        .chain(gone)
        .collect();
    for slice in closing.chunks(SLICE) {
        let mut closed = Rows::new("review_cases", &CASE_CLOSE_COLUMNS);
        for (id, why) in slice {
            closed.push(vec![
                (*id).into(),
                CaseStatus::Closed.as_str().into(),
                (*why).into(),
                by.as_str().into(),
                now.into(),
                now.into(),
            ]);
        }
        tx.update_rows(&closed)?;
    }
    Ok(())
}

/// *Keep apart* on an `identity_taken` case: stores the pair (the case's person, each
/// account that has the value) and writes a `kept_apart` revision on both accounts, so
/// each one's history says so. Returns the resolution in words.
fn keep_apart(
    tx: &mut dyn Tx,
    id: ReviewCaseId,
    case: &ReviewCase,
    others: &[AccountId],
    actor: &str,
    now: &str,
) -> Result<String> {
    if case.reason_code != "identity_taken" {
        return Err(StoreError::Conflict(format!(
            "review case {id} is not about an email or username another account has ({}): \
             keep apart answers only those; link the person, make them a new account or ignore them",
            case.reason_code
        )));
    }
    if others.is_empty() {
        return Err(StoreError::Conflict(format!(
            "review case {id} names no account to keep the person apart from: sync again, \
             then decide"
        )));
    }
    let (source, sourced_id) = (case.source.as_str(), case.sourced_id.as_str());
    let mine = linked_account(tx, source, sourced_id)?;
    let writer = Writer::Admin(actor.to_owned()).encode();
    let note = |tx: &mut dyn Tx, user: AccountId, what: String| -> Result<()> {
        admin_revision(tx, user, "kept_apart", None, Some(&what), &writer, now)?;
        bump_revision(tx, user, now)
    };
    for &other in others {
        if Some(other) == mine {
            continue;
        }
        tx.execute(
            "INSERT INTO kept_apart (source, sourced_id, user_id, case_id, actor, decided_at) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (source, sourced_id, user_id) DO UPDATE SET \
             case_id = excluded.case_id, actor = excluded.actor, decided_at = excluded.decided_at",
            &[
                source.into(),
                sourced_id.into(),
                other.into(),
                id.into(),
                actor.into(),
                now.into(),
            ],
        )?;
        let person = match mine {
            Some(me) => format!("account #{me} (SIS person {source}: {sourced_id})"),
            None => format!("SIS person {source}: {sourced_id}"),
        };
        note(
            tx,
            other,
            format!("{person}: different people (review case {id})"),
        )?;
        if let Some(me) = mine {
            note(
                tx,
                me,
                format!("account #{other}: different people (review case {id})"),
            )?;
        }
    }
    let accounts = others
        .iter()
        .map(|u| format!("#{u}"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(format!(
        "kept apart from account {accounts}: different people, the email or username stays \
         with that account"
    ))
}

const CASE_SELECT: &str = "SELECT id, source, sourced_id, status, reason_code, reason, candidates, evidence, \
     opened_run, last_run, opened_at, updated_at, resolution, resolved_by, resolved_at FROM review_cases";

/// A case as stored, its candidates as ids.
struct StoredCase {
    case: ReviewCase,
    candidate_ids: Vec<AccountId>,
}

fn case_from_row(r: &dyn Row) -> Result<StoredCase> {
    let status = r.text(3)?;
    let candidates = r.text(6)?;
    let evidence = r.text(7)?;
    Ok(StoredCase {
        candidate_ids: serde_json::from_str(&candidates)
            .map_err(|e| corrupt("review case candidates", e))?,
        case: ReviewCase {
            id: ReviewCaseId(r.i64(0)?),
            source: r.text(1)?,
            sourced_id: r.text(2)?,
            status: CaseStatus::parse(&status).ok_or_else(|| {
                corrupt(
                    "review case status",
                    format!("'{status}' is not one this version knows"),
                )
            })?,
            reason_code: r.text(4)?,
            reason: r.text(5)?,
            candidates: Vec::new(),
            evidence: serde_json::from_str(&evidence)
                .map_err(|e| corrupt("review case evidence", e))?,
            opened_run: r.opt_i64(8)?.map(RunId),
            last_run: r.opt_i64(9)?.map(RunId),
            opened_at: r.ts(10)?,
            updated_at: r.ts(11)?,
            resolution: r.opt_text(12)?,
            resolved_by: r.opt_text(13)?,
            resolved_at: r.opt_ts(14)?,
        },
    })
}

/// Fills in the candidates: each account's name, email and current link.
fn expand(tx: &mut dyn Tx, stored: Vec<StoredCase>) -> Result<Vec<ReviewCase>> {
    let ids: Vec<AccountId> = stored
        .iter()
        .flat_map(|c| c.candidate_ids.iter().copied())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut accounts: HashMap<AccountId, CaseCandidate> = HashMap::new();
    tx.for_each_in(
        "SELECT id, COALESCE(preferred_name, first_name), last_name, username, email FROM users WHERE id {keys}",
        &[],
        Keys::Accounts(&ids),
        &mut |r| {
            let UserRef { id, name, email } = user_ref(r)?;
            accounts.insert(
                id,
                CaseCandidate {
                    id,
                    name,
                    email,
                    linked_to: None,
                },
            );
            Ok(())
        },
    )?;
    tx.for_each_in(
        "SELECT user_id, source, sourced_id FROM sis_links WHERE user_id {keys}",
        &[],
        Keys::Accounts(&ids),
        &mut |r| {
            let link = format!("{}:{}", r.text(1)?, r.text(2)?);
            if let Some(c) = accounts.get_mut(&AccountId(r.i64(0)?))
                && c.linked_to.as_ref().is_none_or(|l| link < *l)
            {
                c.linked_to = Some(link);
            }
            Ok(())
        },
    )?;
    Ok(stored
        .into_iter()
        .map(|s| {
            let mut case = s.case;
            case.candidates = s
                .candidate_ids
                .iter()
                .map(|id| {
                    accounts.get(id).cloned().unwrap_or_else(|| CaseCandidate {
                        id: *id,
                        name: format!("#{id}"),
                        email: None,
                        linked_to: None,
                    })
                })
                .collect();
            case
        })
        .collect())
}

pub(crate) fn review_cases(
    tx: &mut dyn Tx,
    status: Option<&str>,
    after: Option<ReviewCaseId>,
    limit: u32,
) -> Result<Vec<ReviewCase>> {
    let mut sql = String::from(CASE_SELECT);
    let mut params: Vec<Value<'_>> = vec![after.unwrap_or_default().into()];
    sql.push_str(" WHERE id > ?");
    if let Some(s) = status {
        let s = CaseStatus::parse(s).ok_or_else(|| {
            StoreError::Conflict(format!(
                "'{s}' is no review case status: use open, resolved or closed (or none for all)"
            ))
        })?;
        sql.push_str(" AND status = ?");
        params.push(s.as_str().into());
    }
    sql.push_str(" ORDER BY id");
    let dialect = tx.dialect();
    sql.push_str(&dialect.limit_offset(limit, 0, &mut params));
    let stored = query_vec(tx, &sql, &params, case_from_row)?;
    expand(tx, stored)
}

/// How many review cases have `status` (`open`, `resolved` or `closed`).
pub(crate) fn count_review_cases(tx: &mut dyn Tx, status: &str) -> Result<u64> {
    let s = CaseStatus::parse(status).ok_or_else(|| {
        StoreError::Conflict(format!(
            "'{status}' is no review case status: use open, resolved or closed"
        ))
    })?;
    let n = crate::sql::query_i64(
        tx,
        "SELECT COUNT(*) FROM review_cases WHERE status = ?",
        &[s.as_str().into()],
    )?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(crate) fn review_case(tx: &mut dyn Tx, id: ReviewCaseId) -> Result<Option<ReviewCase>> {
    let stored = query_opt(
        tx,
        &format!("{CASE_SELECT} WHERE id = ?"),
        &[id.into()],
        case_from_row,
    )?;
    Ok(expand(tx, stored.into_iter().collect())?.pop())
}

pub(crate) fn resolve_case(
    tx: &mut dyn Tx,
    id: ReviewCaseId,
    resolution: CaseResolution,
    actor: &str,
    now: Timestamp,
) -> Result<()> {
    let lock = if tx.dialect() == Dialect::Postgres {
        " FOR UPDATE"
    } else {
        ""
    };
    let case = query_opt(
        tx,
        &format!("{CASE_SELECT} WHERE id = ?{lock}"),
        &[id.into()],
        case_from_row,
    )?
    .ok_or_else(|| {
        StoreError::NotFound(format!(
            "review case {id} does not exist: `rostersync review list` shows the open ones"
        ))
    })?;
    let StoredCase {
        case,
        candidate_ids,
    } = case;
    if case.status != CaseStatus::Open {
        let how = match (&case.resolution, &case.resolved_by, case.resolved_at) {
            (Some(r), Some(by), Some(at)) => format!(" ({r}, by {by} at {at})"),
            _ => String::new(),
        };
        return Err(StoreError::Conflict(format!(
            "review case {id} (SIS person {} of source {}) is {} already{how}: only an open case can be resolved",
            case.sourced_id,
            case.source,
            case.status.as_str()
        )));
    }
    let now_s = ts(now);
    let (source, sourced_id) = (case.source.as_str(), case.sourced_id.as_str());
    // A push's case (several users on a target match an account): only a decision.
    let push = case.reason_code == crate::push::PUSH_CASE_CODE;
    if push
        && matches!(
            resolution,
            CaseResolution::Link(_) | CaseResolution::KeepApart
        )
    {
        return Err(StoreError::Conflict(format!(
            "review case {id} is a push's (several users on target {source} match account #{sourced_id}): \
             resolve it with create (a new user on the target at the next push) or ignore (the account is \
             not pushed to that target), or remove the duplicates on the target and push again"
        )));
    }
    let words = match resolution {
        CaseResolution::Link(user) => {
            let label = require_user(tx, user)?.label;
            link_user(tx, source, sourced_id, user, actor, now)?;
            // A link wins over any earlier decision; one left behind would come back after
            // an unlink.
            tx.execute(
                "DELETE FROM match_decisions WHERE source = ? AND sourced_id = ?",
                &[source.into(), sourced_id.into()],
            )?;
            format!("linked to account {label}")
        }
        CaseResolution::Create | CaseResolution::Ignore => {
            let decision = if resolution == CaseResolution::Create {
                Decision::Create
            } else {
                Decision::Ignore
            };
            tx.execute(
                "INSERT INTO match_decisions (source, sourced_id, decision, actor, decided_at) VALUES (?, ?, ?, ?, ?) \
                 ON CONFLICT (source, sourced_id) DO UPDATE SET decision = excluded.decision, \
                 actor = excluded.actor, decided_at = excluded.decided_at",
                &[
                    source.into(),
                    sourced_id.into(),
                    decision.as_str().into(),
                    actor.into(),
                    now_s.as_str().into(),
                ],
            )?;
            match (decision, push) {
                (Decision::Create, false) => "a new account on the next sync".to_owned(),
                (Decision::Ignore, false) => "ignored by every later sync".to_owned(),
                (Decision::Create, true) => {
                    format!("a new user on target {source} at the next push")
                }
                (Decision::Ignore, true) => format!("not pushed to target {source}"),
            }
        }
        CaseResolution::KeepApart => keep_apart(tx, id, &case, &candidate_ids, actor, &now_s)?,
    };
    tx.execute(
        "UPDATE review_cases SET status = 'resolved', resolution = ?, resolved_by = ?, resolved_at = ?, \
         updated_at = ? WHERE id = ?",
        &[
            words.as_str().into(),
            Writer::Admin(actor.to_owned()).encode().into(),
            now_s.as_str().into(),
            now_s.as_str().into(),
            id.into(),
        ],
    )?;
    audit(
        tx,
        actor,
        "review.resolve",
        &format!(
            "review case {id} (SIS person {sourced_id} of source {source}, {}): {words}",
            case.reason_code
        ),
        now,
    )
}
