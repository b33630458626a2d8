//! The reports behind the hard cases: unlinked accounts with the SIS people they probably
//! are, groups of accounts that are probably one person, and accounts whose SIS person is
//! inactive or gone. The store fetches; the judgement (scores, evidence) is
//! `rostersync_core::reports`.
//!
//! Scale (each is one page of a report, whatever its limit): the duplicates report reads
//! the keys (local parts of emails and usernames, old ones too, school id numbers) two or
//! more active accounts share from counts the database keeps (migration 0014), reads only
//! those accounts and compares only those pairs; the unlinked report takes its page of
//! accounts from an index and looks up the SIS people whose name or email local part one
//! of them has by the keys `sis_people` stores ([`person_key_columns`], indexed); the
//! stale report walks the links from an index.

use std::collections::{BTreeSet, HashMap, HashSet};

use rostersync_core::directory::AccountId;
use rostersync_core::reports::{
    AccountFacts, DuplicateFacts, MAX_SHARED, PersonFacts, different_people, duplicate_groups,
    email_local, key_hash, local_dup_key, name_key, suggestion,
};

use crate::roster::{display_name, user_ref};
use crate::sql::{Keys, Rows, Tx, Value, query_vec};
use crate::{
    CaseEvidence, DuplicateAccount, DuplicateGroup, LinkSuggestion, Result, ReviewCaseId,
    SignInIdentity, SisRef, StaleAccount, StoreError, UnlinkedAccount, UserRef,
};

/// Suggestions per unlinked account.
const SUGGESTIONS: usize = 3;

/// An account as the reports read it.
struct Account {
    id: AccountId,
    first: Option<String>,
    last: Option<String>,
    username: Option<String>,
    email: Option<String>,
    grade: Option<String>,
    location: Option<String>,
    provider: Option<String>,
}

impl Account {
    fn name(&self) -> String {
        display_name(
            self.id,
            self.first.clone(),
            self.last.clone(),
            self.username.as_deref(),
            self.email.as_deref(),
        )
    }
}

const ACCOUNT_SELECT: &str = "SELECT u.id, u.first_name, u.last_name, u.username, u.email, u.grade, l.name, u.provider \
     FROM users u LEFT JOIN locations l ON l.id = u.location_id";

fn account(r: &dyn crate::sql::Row) -> Result<Account> {
    Ok(Account {
        id: AccountId(r.i64(0)?),
        first: r.opt_text(1)?,
        last: r.opt_text(2)?,
        username: r.opt_text(3)?,
        email: r.opt_text(4)?,
        grade: r.opt_text(5)?,
        location: r.opt_text(6)?,
        provider: r.opt_text(7)?,
    })
}

/// A SIS person a suggestion may name.
struct Person {
    source: String,
    sourced_id: String,
    given: Option<String>,
    family: Option<String>,
    email: Option<String>,
    username: Option<String>,
    grade: Option<String>,
    location: Option<String>,
    school: Option<String>,
    linked_to: Option<AccountId>,
    case: Option<ReviewCaseId>,
}

impl Person {
    fn facts(&self) -> PersonFacts<'_> {
        PersonFacts {
            given_name: self.given.as_deref(),
            family_name: self.family.as_deref(),
            email: self.email.as_deref(),
            username: self.username.as_deref(),
            grade: self.grade.as_deref(),
            location: self.location.as_deref(),
            school: self.school.as_deref(),
        }
    }

    /// The keys it can be found by: its name and its email local part (or username).
    fn keys(&self) -> Vec<String> {
        person_keys(
            self.given.as_deref(),
            self.family.as_deref(),
            self.email.as_deref(),
            self.username.as_deref(),
        )
    }
}

fn person_keys(
    given: Option<&str>,
    family: Option<&str>,
    email: Option<&str>,
    username: Option<&str>,
) -> Vec<String> {
    person_key_columns(given, family, email, username).matched()
}

/// A SIS person's match keys: what `sis_people` stores in `name_key`, `email_key` and
/// `username_key` (indexed, so the unlinked report looks people up by them) and, as
/// [`PersonKeys::matched`], what the report compares with an account's keys. One rule for
/// both, so the stored keys and the compared ones cannot disagree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PersonKeys {
    /// The folded "given family" ([`name_key`]).
    pub name: Option<String>,
    /// The email's local part ([`email_local`]).
    pub email: Option<String>,
    /// The username, trimmed and in lower case, when it is not blank and not the email's
    /// local part (which `email` already holds: most people store nothing here).
    pub username: Option<String>,
}

impl PersonKeys {
    /// The keys as the report compares them: `n:` a name, `e:` an email local part or a
    /// username (an account's email local part may be either).
    fn matched(self) -> Vec<String> {
        let mut k = Vec::new();
        if let Some(n) = self.name {
            k.push(format!("n:{n}"));
        }
        k.extend(
            self.email
                .into_iter()
                .chain(self.username)
                .map(|e| format!("e:{e}")),
        );
        k
    }

    /// The three columns' values, in [`PERSON_KEY_COLUMNS`] order.
    pub(crate) fn values(self) -> [Value<'static>; 3] {
        [self.name.into(), self.email.into(), self.username.into()]
    }
}

/// The columns of `sis_people` that hold [`PersonKeys`].
pub(crate) const PERSON_KEY_COLUMNS: [&str; 3] = ["name_key", "email_key", "username_key"];

/// The keys of a person with these names, email and username.
pub(crate) fn person_key_columns(
    given: Option<&str>,
    family: Option<&str>,
    email: Option<&str>,
    username: Option<&str>,
) -> PersonKeys {
    let name = name_key(given, family);
    let email = email.and_then(email_local);
    let username = username
        .map(|u| u.trim().to_lowercase())
        .filter(|u| !u.is_empty() && Some(u) != email.as_ref());
    PersonKeys {
        name,
        email,
        username,
    }
}

/// The version of the rule of [`person_key_columns`] (and of [`name_key`] and
/// [`email_local`] under it): a change to any of them bumps it, and the next open
/// recomputes every person's stored keys.
const PERSON_KEYS_VERSION: &str = "1";
const PERSON_KEYS_META: &str = "sis_people_keys";
/// People read and written per step of [`refresh_person_keys`].
const PERSON_KEYS_BATCH: u32 = 10_000;

/// Fills `name_key`, `email_key` and `username_key` of every SIS person when the stored
/// keys were made by another version of the rule (or none: right after migration 13, or
/// the restore of an older backup). One pass over the people in key order, a batch at a
/// time (read, then write the rows whose keys differ), so 3 M people are never held at
/// once.
pub(crate) fn refresh_person_keys(tx: &mut dyn Tx) -> Result<()> {
    if crate::settings::meta_get(tx, PERSON_KEYS_META)?.as_deref() == Some(PERSON_KEYS_VERSION) {
        return Ok(());
    }
    const COLUMNS: [&str; 5] = crate::sql::concat(["source", "sourced_id"], PERSON_KEY_COLUMNS);
    // A directory's first fill rewrites every person: the keys' indexes are made once
    // after it instead of kept through it (at 3 M people the fill took 94 s with them).
    let indexes = if crate::sql::query_i64(tx, "SELECT COUNT(*) FROM sis_people", &[])?
        >= i64::from(PERSON_KEYS_BATCH)
    {
        key_indexes(tx)?
    } else {
        Vec::new()
    };
    for (name, _) in &indexes {
        tx.execute_batch(&format!("DROP INDEX {name}"))?;
    }
    let mut after: Option<(String, String)> = None;
    let (mut read, mut written) = (0u64, 0u64);
    loop {
        let mut params: Vec<Value<'_>> = Vec::new();
        let mut sql = "SELECT source, sourced_id, given_name, family_name, email, username, \
                       name_key, email_key, username_key FROM sis_people"
            .to_owned();
        if let Some((source, sourced_id)) = &after {
            sql.push_str(" WHERE (source, sourced_id) > (?, ?)");
            params.push(source.as_str().into());
            params.push(sourced_id.as_str().into());
        }
        sql.push_str(" ORDER BY source, sourced_id");
        sql.push_str(&tx.dialect().limit_offset(PERSON_KEYS_BATCH, 0, &mut params));
        let mut rows = Rows::new("sis_people", &COLUMNS);
        let mut n = 0u32;
        let mut last = None;
        tx.for_each(&sql, &params, &mut |r| {
            n += 1;
            let (source, sourced_id) = (r.text(0)?, r.text(1)?);
            let keys = person_key_columns(
                Some(&r.text(2)?),
                Some(&r.text(3)?),
                r.opt_text(4)?.as_deref(),
                Some(&r.text(5)?),
            );
            let stored = PersonKeys {
                name: r.opt_text(6)?,
                email: r.opt_text(7)?,
                username: r.opt_text(8)?,
            };
            if keys != stored {
                let mut row = vec![Value::from(source.clone()), Value::from(sourced_id.clone())];
                row.extend(keys.values());
                rows.push(row);
            }
            last = Some((source, sourced_id));
            Ok(())
        })?;
        read += u64::from(n);
        written += rows.len() as u64;
        tx.update_rows_by(&rows, 2)?;
        if n < PERSON_KEYS_BATCH {
            break;
        }
        after = last;
    }
    for (_, sql) in &indexes {
        tx.execute_batch(sql)?;
    }
    if written > 0 {
        tracing::info!(
            people = read,
            written,
            "computed the SIS people's match keys"
        );
    }
    crate::settings::meta_set(tx, PERSON_KEYS_META, PERSON_KEYS_VERSION)
}

/// The indexes of the SIS people's keys (migration 13), each with the statement that
/// makes it again, as the database holds them.
fn key_indexes(tx: &mut dyn Tx) -> Result<Vec<(String, String)>> {
    const NAMES: &str =
        "('sis_people_name_key', 'sis_people_email_key', 'sis_people_username_key')";
    let sql = match tx.dialect() {
        crate::sql::Dialect::Sqlite => format!(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND name IN {NAMES} ORDER BY name"
        ),
        crate::sql::Dialect::Postgres => format!(
            "SELECT indexname::text, indexdef FROM pg_indexes \
             WHERE schemaname = current_schema() AND indexname IN {NAMES} ORDER BY indexname"
        ),
    };
    query_vec(tx, &sql, &[], |r| Ok((r.text(0)?, r.text(1)?)))
}

fn account_keys(a: &Account) -> Vec<String> {
    let mut k = Vec::new();
    if let Some(n) = name_key(a.first.as_deref(), a.last.as_deref()) {
        k.push(format!("n:{n}"));
    }
    if let Some(l) = a.email.as_deref().and_then(email_local) {
        k.push(format!("e:{l}"));
    }
    k
}

pub(crate) fn report_unlinked(
    tx: &mut dyn Tx,
    after: Option<AccountId>,
    limit: u32,
) -> Result<Vec<UnlinkedAccount>> {
    // The page's accounts come from the ones the database keeps unlinked (schema 15), in
    // id order; probing every account for a link walked a linked directory to its end.
    let mut params: Vec<Value<'_>> = vec![after.unwrap_or(AccountId(0)).into()];
    let sql = format!(
        "{ACCOUNT_SELECT} WHERE u.id IN (SELECT user_id FROM unlinked_accounts \
         WHERE user_id > ? ORDER BY user_id{}) ORDER BY u.id",
        tx.dialect().limit_offset(limit, 0, &mut params)
    );
    let accounts = query_vec(tx, &sql, &params, account)?;
    if accounts.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<AccountId> = accounts.iter().map(|a| a.id).collect();
    let mut identities = identities_of(tx, &ids)?;
    let wanted: HashSet<String> = accounts.iter().flat_map(account_keys).collect();

    // The people any account could be: the SIS people with one of the accounts' keys,
    // then the open review cases (whose people the SIS card may not have).
    let mut people: Vec<Person> = Vec::new();
    let mut by_key: HashMap<String, Vec<usize>> = HashMap::new();
    let mut index = |p: Person, people: &mut Vec<Person>| {
        let keys: Vec<String> = p
            .keys()
            .into_iter()
            .filter(|k| wanted.contains(k))
            .collect();
        if keys.is_empty() {
            return;
        }
        for k in keys {
            by_key.entry(k).or_default().push(people.len());
        }
        people.push(p);
    };
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    // The people with one of the page's keys, looked up by the stored keys: a name, and an
    // email local part (a person's email's, or its username).
    let (mut names, mut locals): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    for k in &wanted {
        if let Some(n) = k.strip_prefix("n:") {
            names.push(n.to_owned());
        } else if let Some(e) = k.strip_prefix("e:") {
            locals.push(e.to_owned());
        }
    }
    names.sort_unstable();
    locals.sort_unstable();
    let mut found: HashSet<(String, String)> = HashSet::new();
    for (column, keys) in [
        ("name_key", &names),
        ("email_key", &locals),
        ("username_key", &locals),
    ] {
        // The SIS's people only: an account source's identities are accounts' sign-ins.
        tx.for_each_in(
            &format!(
                "SELECT p.source, p.sourced_id, p.given_name, p.family_name, p.email, p.username, p.grade, \
                 p.location, o.name, l.user_id FROM sis_people p \
                 LEFT JOIN sis_orgs o ON o.source = p.source AND o.sourced_id = p.primary_org \
                 LEFT JOIN sis_links l ON l.source = p.source AND l.sourced_id = p.sourced_id \
                 WHERE p.source NOT IN ({}) AND p.{column} {{keys}}",
                crate::users::account_sources()
            ),
            &[],
            Keys::Texts(keys),
            &mut |r| {
                let (source, sourced_id) = (r.text(0)?, r.text(1)?);
                if !found.insert((source.clone(), sourced_id.clone())) {
                    return Ok(());
                }
                let p = Person {
                    source,
                    sourced_id,
                    given: Some(r.text(2)?),
                    family: Some(r.text(3)?),
                    email: r.opt_text(4)?,
                    username: Some(r.text(5)?),
                    grade: r.opt_text(6)?,
                    location: r.opt_text(7)?,
                    school: r.opt_text(8)?,
                    linked_to: r.opt_i64(9)?.map(AccountId),
                    case: None,
                };
                index(p, &mut people);
                Ok(())
            },
        )?;
    }
    for (i, p) in people.iter().enumerate() {
        seen.insert((p.source.clone(), p.sourced_id.clone()), i);
    }
    let cases = query_vec(
        tx,
        "SELECT id, source, sourced_id, evidence FROM review_cases WHERE status = 'open' ORDER BY id",
        &[],
        |r| Ok((ReviewCaseId(r.i64(0)?), r.text(1)?, r.text(2)?, r.text(3)?)),
    )?;
    for (id, source, sourced_id, evidence) in cases {
        if let Some(i) = seen.get(&(source.clone(), sourced_id.clone())) {
            people[*i].case = Some(id);
            continue;
        }
        let e: CaseEvidence = serde_json::from_str(&evidence)
            .map_err(|e| StoreError::Corrupt(format!("stored review case evidence: {e}")))?;
        let (given, family) = match e.name.split_once(' ') {
            Some((g, f)) => (Some(g.to_owned()), Some(f.to_owned())),
            None => (Some(e.name.clone()), None),
        };
        index(
            Person {
                source,
                sourced_id,
                given,
                family,
                email: e.email,
                username: e.username,
                grade: e.grade,
                location: None,
                school: e.school,
                linked_to: None,
                case: Some(id),
            },
            &mut people,
        );
    }

    Ok(accounts
        .into_iter()
        .map(|a| {
            let facts = AccountFacts {
                first_name: a.first.as_deref(),
                last_name: a.last.as_deref(),
                email: a.email.as_deref(),
                username: a.username.as_deref(),
                grade: a.grade.as_deref(),
                location: a.location.as_deref(),
            };
            let mut candidates: Vec<usize> = account_keys(&a)
                .iter()
                .flat_map(|k| by_key.get(k).into_iter().flatten().copied())
                .collect();
            candidates.sort_unstable();
            candidates.dedup();
            let mut suggestions: Vec<LinkSuggestion> = candidates
                .into_iter()
                .filter_map(|i| {
                    let p = &people[i];
                    let (score, evidence) = suggestion(&facts, &p.facts())?;
                    Some(LinkSuggestion {
                        source: p.source.clone(),
                        sourced_id: p.sourced_id.clone(),
                        name: [p.given.as_deref(), p.family.as_deref()]
                            .into_iter()
                            .flatten()
                            .collect::<Vec<_>>()
                            .join(" "),
                        email: p.email.clone(),
                        score,
                        evidence,
                        linked_to: p.linked_to,
                        review_case: p.case,
                    })
                })
                .collect();
            // Best first; a person nobody has yet before one linked already.
            suggestions.sort_by(|x, y| {
                y.score
                    .cmp(&x.score)
                    .then_with(|| x.linked_to.is_some().cmp(&y.linked_to.is_some()))
                    .then_with(|| (&x.source, &x.sourced_id).cmp(&(&y.source, &y.sourced_id)))
            });
            suggestions.truncate(SUGGESTIONS);
            UnlinkedAccount {
                name: a.name(),
                id: a.id,
                email: a.email,
                username: a.username,
                grade: a.grade,
                location: a.location,
                provider: a.provider,
                identities: identities.remove(&a.id).unwrap_or_default(),
                suggestions,
            }
        })
        .collect())
}

/// The locations people of unmapped schools get (each source's default): a shared one
/// says nothing about who is who.
fn default_locations(tx: &mut dyn Tx) -> Result<Vec<String>> {
    let config = crate::settings::load_config(tx)?;
    let mut out: Vec<String> = config
        .sources
        .iter()
        .filter_map(|s| s.locations.default.clone())
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

pub(crate) fn report_duplicates(
    tx: &mut dyn Tx,
    after: Option<AccountId>,
    limit: u32,
) -> Result<Vec<DuplicateGroup>> {
    // The keys two or more active accounts share come from the kept counts (migration
    // 0014), with their holders from the kept keys in the same statement; aliases (old
    // emails and usernames) are read whole and looked up. A key held by more than
    // MAX_SHARED accounts is too common to tell anyone apart and joins nothing.
    let max = Value::Int(MAX_SHARED as i64);
    let mut common: HashSet<u64> = HashSet::new();
    tx.for_each(
        "SELECT key FROM duplicate_key_counts WHERE accounts >= 2 AND accounts > ?",
        std::slice::from_ref(&max),
        &mut |r| {
            common.insert(key_hash(&r.text(0)?));
            Ok(())
        },
    )?;
    let mut holders: HashMap<String, Vec<AccountId>> = HashMap::new();
    tx.for_each(
        "SELECT c.key, k.user_id FROM duplicate_key_counts c \
         JOIN duplicate_keys k ON k.key = c.key WHERE c.accounts >= 2 AND c.accounts <= ?",
        std::slice::from_ref(&max),
        &mut |r| holder(&mut holders, r),
    )?;
    let mut alias_holders: HashMap<String, Vec<AccountId>> = HashMap::new();
    tx.for_each(
        // Aliases first, each account probed: a join let SQLite walk every account.
        "SELECT a.user_id, a.value_lc FROM aliases a WHERE EXISTS (SELECT 1 FROM users u \
         WHERE u.id = a.user_id AND u.active = TRUE AND u.merged_into IS NULL)",
        &[],
        &mut |r| {
            if let Some(key) = local_dup_key(&r.text(1)?) {
                alias_holders
                    .entry(key)
                    .or_default()
                    .push(AccountId(r.i64(0)?));
            }
            Ok(())
        },
    )?;
    // An alias's key may be one no account holds twice: its accounts are read too.
    let alias_keys: Vec<String> = alias_holders
        .keys()
        .filter(|k| !common.contains(&key_hash(k)) && !holders.contains_key(*k))
        .cloned()
        .collect();
    tx.for_each_in(
        "SELECT key, user_id FROM duplicate_keys WHERE key {keys}",
        &[],
        Keys::Texts(&alias_keys),
        &mut |r| holder(&mut holders, r),
    )?;
    for (key, ids) in alias_holders {
        if !common.contains(&key_hash(&key)) {
            holders.entry(key).or_default().extend(ids);
        }
    }
    let links = drop_keys_of_different_people(tx, &mut holders)?;
    // Accounts joined by a shared key, directly or through others: the sets any group
    // lies within.
    let mut index: HashMap<AccountId, usize> = HashMap::new();
    let mut parent: Vec<usize> = Vec::new();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for (key, mut run) in holders {
        run.sort_unstable();
        run.dedup();
        if run.len() < 2 {
            continue;
        }
        if run.len() > MAX_SHARED {
            common.insert(key_hash(&key));
            continue;
        }
        let mut first = None;
        for id in &run {
            let next = parent.len();
            let i = *index.entry(*id).or_insert(next);
            if i == next {
                parent.push(i);
            }
            let ri = root(&mut parent, i);
            match first {
                None => first = Some(ri),
                Some(f) => {
                    let rf = root(&mut parent, f);
                    if rf != ri {
                        parent[ri.max(rf)] = ri.min(rf);
                    }
                }
            }
        }
    }
    let mut sets: HashMap<usize, Vec<AccountId>> = HashMap::new();
    for (&id, &i) in &index {
        let r = root(&mut parent, i);
        sets.entry(r).or_default().push(id);
    }
    drop(index);
    // A group on this page lies wholly after `after` (its first account is), so it needs
    // two of its set's accounts there, and its first account is no earlier than the set's
    // first account there: the sets are read in that order, a batch at a time, and only as
    // far as the page needs. (A set is still read whole: a group may join through any of
    // its accounts.) On a district with a million accounts reading every candidate would
    // take seconds.
    let above = |id: AccountId| after.is_none_or(|after| id > after);
    let mut runs: Vec<(AccountId, Vec<AccountId>)> = sets
        .into_values()
        .filter_map(|mut ids| {
            ids.sort_unstable();
            let mut later = ids.iter().copied().filter(|id| above(*id));
            let start = later.next()?;
            later.next()?;
            Some((start, ids))
        })
        .collect();
    runs.sort_unstable_by_key(|(start, _)| *start);
    let defaults = default_locations(tx)?;
    let first_id = |g: &DuplicateGroup| g.accounts.first().map_or(AccountId(0), |a| a.id);
    let batch = (limit as usize).max(64);
    let mut out: Vec<DuplicateGroup> = Vec::new();
    let mut next = 0;
    while next < runs.len() {
        let end = if limit == 0 {
            runs.len()
        } else {
            (next + batch).min(runs.len())
        };
        let mut candidates: Vec<AccountId> = runs[next..end]
            .iter()
            .flat_map(|(_, ids)| ids)
            .copied()
            .collect();
        candidates.sort_unstable();
        next = end;
        out.extend(
            groups_among(tx, &candidates, &links, &defaults, &common)?
                .into_iter()
                .filter(|g| above(first_id(g))),
        );
        if limit > 0 && out.len() >= limit as usize {
            out.sort_by_key(first_id);
            let last_needed = first_id(&out[limit as usize - 1]);
            if runs.get(next).is_none_or(|(start, _)| *start > last_needed) {
                break;
            }
        }
    }
    out.sort_by_key(first_id);
    if limit > 0 {
        out.truncate(limit as usize);
    }
    Ok(out)
}

/// Files a `(key, user_id)` row under its key.
fn holder(holders: &mut HashMap<String, Vec<AccountId>>, r: &dyn crate::sql::Row) -> Result<()> {
    holders
        .entry(r.text(0)?)
        .or_default()
        .push(AccountId(r.i64(1)?));
    Ok(())
}

/// Drops the keys whose holders are, pair by pair, linked to different SIS people of one
/// source: the merge refuses such a pair, so [`groups_among`] would compare them only to
/// find nothing (in a big district most shared keys are such: two guardians with one
/// name and one local part at two mail providers). The holders' links come from the
/// links' user index alone, not from the accounts' rows. Leaves each key's holders sorted,
/// each once; keeps the keys too common to compare by (they join nothing either way).
/// Returns every holder's SIS links, sorted, for [`groups_among`] (each account of a
/// group it judges holds a key).
fn drop_keys_of_different_people(
    tx: &mut dyn Tx,
    holders: &mut HashMap<String, Vec<AccountId>>,
) -> Result<HashMap<AccountId, Vec<SisRef>>> {
    let mut ids: Vec<AccountId> = Vec::new();
    for run in holders.values_mut() {
        run.sort_unstable();
        run.dedup();
        ids.extend(run.iter().copied());
    }
    ids.sort_unstable();
    ids.dedup();
    let mut links: HashMap<AccountId, Vec<SisRef>> = HashMap::new();
    if ids.is_empty() {
        return Ok(links);
    }
    // The links of the shared keys' holders in one statement (a statement per account
    // costs more than the probes), then of the few that hold only an alias's key.
    let mut seen: HashSet<AccountId> = HashSet::new();
    tx.for_each(
        &format!(
            "SELECT l.user_id, l.source, l.sourced_id FROM sis_links l WHERE l.user_id IN \
             (SELECT k.user_id FROM duplicate_key_counts c JOIN duplicate_keys k ON k.key = c.key \
              WHERE c.accounts >= 2 AND c.accounts <= ?) AND l.source NOT IN ({})",
            crate::users::account_sources()
        ),
        &[Value::Int(MAX_SHARED as i64)],
        &mut |r| {
            seen.insert(AccountId(r.i64(0)?));
            link_row(&mut links, r)
        },
    )?;
    let rest: Vec<AccountId> = ids.into_iter().filter(|id| !seen.contains(id)).collect();
    tx.for_each_in(
        &format!(
            "SELECT user_id, source, sourced_id FROM sis_links \
             WHERE source NOT IN ({}) AND user_id {{keys}}",
            crate::users::account_sources()
        ),
        &[],
        Keys::Accounts(&rest),
        &mut |r| link_row(&mut links, r),
    )?;
    for l in links.values_mut() {
        l.sort_by(|a, b| (&a.source, &a.sourced_id).cmp(&(&b.source, &b.sourced_id)));
    }
    let none = Vec::new();
    let refs = |id: &AccountId| -> Vec<(&str, &str)> {
        links
            .get(id)
            .unwrap_or(&none)
            .iter()
            .map(|l| (l.source.as_str(), l.sourced_id.as_str()))
            .collect()
    };
    holders.retain(|_, run| {
        if run.len() > MAX_SHARED {
            return true;
        }
        let sets: Vec<Vec<(&str, &str)>> = run.iter().map(refs).collect();
        sets.iter()
            .enumerate()
            .any(|(i, a)| sets[i + 1..].iter().any(|b| !different_people(a, b)))
    });
    Ok(links)
}

/// Files a `(user_id, source, sourced_id)` row under its account.
fn link_row(links: &mut HashMap<AccountId, Vec<SisRef>>, r: &dyn crate::sql::Row) -> Result<()> {
    links.entry(AccountId(r.i64(0)?)).or_default().push(SisRef {
        source: r.text(1)?,
        sourced_id: r.text(2)?,
    });
    Ok(())
}

/// The duplicate groups among these accounts (ids sorted), with their evidence; `links`
/// holds their SIS links (read once for the whole report).
fn groups_among(
    tx: &mut dyn Tx,
    candidates: &[AccountId],
    links: &HashMap<AccountId, Vec<SisRef>>,
    defaults: &[String],
    common: &HashSet<u64>,
) -> Result<Vec<DuplicateGroup>> {
    let mut accounts: Vec<(Account, Option<String>)> = Vec::new();
    tx.for_each_in(
        "SELECT u.id, u.first_name, u.last_name, u.username, u.email, u.grade, l.name, u.provider, \
         u.identifier FROM users u LEFT JOIN locations l ON l.id = u.location_id WHERE u.id {keys}",
        &[],
        Keys::Accounts(candidates),
        &mut |r| {
            accounts.push((account(r)?, r.opt_text(8)?));
            Ok(())
        },
    )?;
    accounts.sort_by_key(|(a, _)| a.id);
    let mut aliases: HashMap<AccountId, Vec<String>> = HashMap::new();
    tx.for_each_in(
        "SELECT user_id, value_lc FROM aliases WHERE user_id {keys}",
        &[],
        Keys::Accounts(candidates),
        &mut |r| {
            aliases
                .entry(AccountId(r.i64(0)?))
                .or_default()
                .push(r.text(1)?);
            Ok(())
        },
    )?;
    let no_aliases = Vec::new();
    let no_links = Vec::new();
    let facts: Vec<DuplicateFacts<'_>> = accounts
        .iter()
        .map(|(a, identifier)| DuplicateFacts {
            id: a.id,
            first_name: a.first.as_deref(),
            last_name: a.last.as_deref(),
            email: a.email.as_deref(),
            username: a.username.as_deref(),
            identifier: identifier.as_deref(),
            grade: a.grade.as_deref(),
            location: a.location.as_deref(),
            aliases: aliases
                .get(&a.id)
                .unwrap_or(&no_aliases)
                .iter()
                .map(String::as_str)
                .collect(),
            links: links
                .get(&a.id)
                .unwrap_or(&no_links)
                .iter()
                .map(|l| (l.source.as_str(), l.sourced_id.as_str()))
                .collect(),
        })
        .collect();
    let defaults: Vec<&str> = defaults.iter().map(String::as_str).collect();
    let groups = duplicate_groups(&facts, &defaults, common);
    // Sign-in identities are shown, not judged: read for the accounts in groups only.
    let members: Vec<AccountId> = groups
        .iter()
        .flat_map(|(members, _)| members.iter().map(|i| accounts[*i].0.id))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let identities = if members.is_empty() {
        HashMap::new()
    } else {
        identities_of(tx, &members)?
    };
    Ok(groups
        .into_iter()
        .map(|(members, evidence)| DuplicateGroup {
            accounts: members
                .into_iter()
                .map(|i| {
                    let a = &accounts[i].0;
                    DuplicateAccount {
                        id: a.id,
                        name: a.name(),
                        email: a.email.clone(),
                        grade: a.grade.clone(),
                        location: a.location.clone(),
                        provider: a.provider.clone(),
                        identities: identities.get(&a.id).cloned().unwrap_or_default(),
                        sis: links.get(&a.id).and_then(|l| l.first()).cloned(),
                    }
                })
                .collect(),
            evidence,
        })
        .collect())
}

pub(crate) fn report_stale(
    tx: &mut dyn Tx,
    after: Option<AccountId>,
    limit: u32,
) -> Result<Vec<StaleAccount>> {
    let mut rows = stale_rows(tx, Some(after.unwrap_or(AccountId(0))), None, limit)?;
    // A limit may cut an account's rows: the answer ends with all of them.
    if limit > 0
        && rows.len() == limit as usize
        && let Some(last) = rows.last().map(|r| r.id)
    {
        rows.retain(|r| r.id != last);
        rows.extend(stale_rows(tx, None, Some(last), 0)?);
    }
    Ok(rows)
}

/// Stale rows of the accounts after `after`, or of the one account `only`. The candidates
/// come from two partial indexes (migration 0010): links that missed a pull, and people
/// not active or disabled; a page costs what is stale (a few hundred rows, usually), not a
/// pass over every link in account order.
fn stale_rows(
    tx: &mut dyn Tx,
    after: Option<AccountId>,
    only: Option<AccountId>,
    limit: u32,
) -> Result<Vec<StaleAccount>> {
    let mut params: Vec<Value<'_>> = Vec::new();
    let which = match (after, only) {
        (_, Some(id)) => {
            params.push(id.into());
            "u.id = ?"
        }
        (after, None) => {
            params.push(after.unwrap_or(AccountId(0)).into());
            "u.id > ?"
        }
    };
    // The candidates first (CROSS JOIN keeps SQLite from walking the accounts in id order
    // instead, which reads every link when few are stale).
    let sql = format!(
        "WITH c AS MATERIALIZED (SELECT source, sourced_id FROM sis_links WHERE misses > 0 \
         UNION SELECT source, sourced_id FROM sis_people WHERE status <> 'active' OR enabled = FALSE) \
         SELECT u.id, u.first_name, u.last_name, u.username, u.email, l.source, l.sourced_id, l.misses, \
         p.status, CAST(CASE WHEN p.enabled IS NULL THEN NULL WHEN p.enabled THEN 1 ELSE 0 END AS BIGINT), \
         CAST(CASE WHEN l.source IN ({}) THEN 1 ELSE 0 END AS BIGINT) \
         FROM c CROSS JOIN sis_links l \
         JOIN users u ON u.id = l.user_id \
         LEFT JOIN sis_people p ON p.source = l.source AND p.sourced_id = l.sourced_id \
         WHERE l.source = c.source AND l.sourced_id = c.sourced_id \
         AND {which} AND u.active = TRUE AND u.merged_into IS NULL \
         AND (l.misses > 0 OR p.status <> 'active' OR p.enabled = FALSE) \
         ORDER BY u.id, l.source, l.sourced_id{}",
        crate::users::account_sources(),
        tx.dialect().limit_offset(limit, 0, &mut params)
    );
    query_vec(tx, &sql, &params, |r| {
        let source = r.text(5)?;
        // An account source's identity (Google Workspace, Entra ID), not a SIS person.
        let identity = r.i64(10)? == 1;
        let UserRef { id, name, email } = user_ref(r)?;
        let misses = r.i64(7)?;
        let status = r.opt_text(8)?;
        let enabled = r.opt_i64(9)?.map(|e| e != 0);
        let (code, reason) = match (status.as_deref(), enabled) {
            (Some("gone"), _) if identity => (
                "gone_from_provider",
                format!(
                    "gone from source {source} (its identity provider no longer has it), and the account is still active"
                ),
            ),
            (Some(s), _) if identity && s != "active" => (
                "suspended_in_provider",
                format!(
                    "{s} in the identity provider (source {source}), and the account is still active"
                ),
            ),
            _ if identity => (
                "gone_from_provider",
                format!(
                    "gone from the last {misses} complete read(s) of source {source}, and the account is still active"
                ),
            ),
            (Some(s), _) if s != "active" => (
                "inactive_in_sis",
                format!("{s} in the SIS, and the account is still active"),
            ),
            (_, Some(false)) => (
                "inactive_in_sis",
                "disabled in the SIS (enabledUser = false), and the account is still active"
                    .to_owned(),
            ),
            _ => (
                "missing_from_pulls",
                format!(
                    "missing from the last {misses} complete full pull(s), and the account is still active"
                ),
            ),
        };
        Ok(StaleAccount {
            id,
            name,
            email,
            source,
            sourced_id: r.text(6)?,
            reason_code: code.to_owned(),
            reason,
        })
    })
}

/// The account sources' identities of `ids`, by account, in source order.
fn identities_of(
    tx: &mut dyn Tx,
    ids: &[AccountId],
) -> Result<HashMap<AccountId, Vec<SignInIdentity>>> {
    let mut out: HashMap<AccountId, Vec<SignInIdentity>> = HashMap::new();
    tx.for_each_in(
        &format!(
            "SELECT l.user_id, l.source, p.username, p.status, p.primary_org, p.modified \
             FROM sis_links l JOIN sis_people p ON p.source = l.source AND p.sourced_id = l.sourced_id \
             WHERE l.source IN ({}) AND l.user_id {{keys}} ORDER BY l.source",
            crate::users::account_sources()
        ),
        &[],
        Keys::Accounts(ids),
        &mut |r| {
            out.entry(AccountId(r.i64(0)?))
                .or_default()
                .push(SignInIdentity {
                    source: r.text(1)?,
                    login: r.text(2)?,
                    status: r.text(3)?,
                    org_unit: r.opt_text(4)?,
                    last_sign_in: r.opt_ts(5)?,
                });
            Ok(())
        },
    )?;
    Ok(out)
}
