//! The planner's views of the accounts: the whole view (tests), the view scoped to the
//! accounts a run's people reach, and a full pull's links view and the accounts it then
//! asks for, each with provenance, links, refusals, decisions and population as
//! `MemoryDirectory` gives them.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use rostersync_core::directory::{Account, AccountId, AliasKind, Field, Link, MatchKey, Writer};
use rostersync_core::view::{
    AccountState, DirectoryView, HashedKeys, LinkFinder, LinkNames, LinkedPopulation, RETIRED,
    SourceState, ViewKeys, ViewLink,
};

use super::row::{
    USER_SELECT, corrupt, link_columns, link_from_row, provenance, provenance_row, user_from_row,
};
use crate::Result;
use crate::sql::{Dialect, Keys, Row, Tx, query_i64, query_vec};

#[cfg(any(test, feature = "test-support"))]
/// The planner's view: every account (with provenance) and alias added to the links view
/// ([`load_links_view`]).
pub(crate) fn load_view(tx: &mut dyn Tx, source: &str) -> Result<DirectoryView> {
    let mut view = load_links_view(tx, source)?;
    view.add_accounts(all_view_users(tx)?, all_aliases(tx)?);
    Ok(view)
}

#[cfg(any(test, feature = "test-support"))]
/// This source's links as stored, with their person's org and role, in sourcedId order.
pub(crate) fn stored_links(tx: &mut dyn Tx, source: &str) -> Result<Vec<Link>> {
    let mut links = query_vec(
        tx,
        &format!("{VIEW_LINK_SELECT} WHERE l.source = ?"),
        &[source.into()],
        view_link_from_row,
    )?;
    links.sort_by(|a, b| a.sourced_id.cmp(&b.sourced_id));
    Ok(links)
}

/// The planner's view scoped to the accounts `keys` reach, with what planning those
/// people reads of them; the meaning is `MemoryDirectory::scoped_view`. Reached: the
/// accounts the people's links point at, and every account (merged ones too, which the
/// view keeps out of its indexes) whose email match key, identifier or alias is a key.
/// With them: their links and this source's refusals of them; the people's decisions;
/// the number of active linked accounts over every link (not by school or role: see
/// `LinkedPopulation`). No source state (only complete full pulls read it).
pub(crate) fn load_scoped_view(
    tx: &mut dyn Tx,
    source: &str,
    keys: &ViewKeys,
) -> Result<DirectoryView> {
    let sourced_ids: Vec<String> = keys.sourced_ids.iter().cloned().collect();
    let mut links: HashMap<String, Link> = HashMap::new();
    tx.for_each_in(
        &format!("{VIEW_LINK_SELECT} WHERE l.source = ? AND l.sourced_id {{keys}}"),
        &[source.into()],
        Keys::Texts(&sourced_ids),
        &mut |r| {
            let l = view_link_from_row(r)?;
            links.insert(l.sourced_id.clone(), l);
            Ok(())
        },
    )?;
    let (ids, aliases) = reach(tx, source, keys)?;
    tx.for_each_in(
        &format!("{VIEW_LINK_SELECT} WHERE l.source = ? AND l.user_id {{keys}}"),
        &[source.into()],
        Keys::Accounts(&ids),
        &mut |r| {
            let l = view_link_from_row(r)?;
            links.entry(l.sourced_id.clone()).or_insert(l);
            Ok(())
        },
    )?;
    let users = view_users(tx, &ids)?;
    let mut refusal_keys = sourced_ids.clone();
    refusal_keys.push(RETIRED.to_owned());
    let mut refused = Vec::new();
    tx.for_each_in(
        "SELECT sourced_id, user_id FROM link_refusals WHERE source = ? AND sourced_id {keys}",
        &[source.into()],
        Keys::Texts(&refusal_keys),
        &mut |r| {
            refused.push((r.text(0)?, AccountId(r.i64(1)?)));
            Ok(())
        },
    )?;
    let decisions = crate::review::decisions_of(tx, source, &sourced_ids)?;
    let kept_apart = crate::review::kept_apart(tx, source, Some(&sourced_ids))?;
    let population = LinkedPopulation::total(active_linked(tx, source)?);
    Ok(
        DirectoryView::new(users, links.into_values().collect(), aliases)
            .with_source_state(refused, SourceState::default())
            .with_decisions(decisions)
            .with_kept_apart(kept_apart)
            .with_population(population),
    )
}

/// A full pull's first view (`MemoryDirectory::links_view`): every link of the source
/// with its person's org and role and its account's revision and active flag, the
/// refusals, the source state and the decisions; no account.
pub(crate) fn load_links_view(tx: &mut dyn Tx, source: &str) -> Result<DirectoryView> {
    // Counted first: millions of links grown by doubling would hold one and a half
    // copies at the last step.
    let mut links = Vec::with_capacity(usize::try_from(link_count(tx, source)?).unwrap_or(0));
    let mut names = LinkNames::default();
    // In the view's order: SQLite reads them so by their key anyway (no sort in its
    // plan); PostgreSQL's join hands them out by account, and a million links sorted in
    // the view cost more than the database's sort. The view's order is the bytes' (Rust's
    // `str` order), which is PostgreSQL's "C" collation whatever the database's locale
    // (a locale's order would be slower to sort, then sorted again below).
    let order = match tx.dialect() {
        Dialect::Sqlite => "ORDER BY l.sourced_id",
        Dialect::Postgres => {
            // This read runs beside the pull, which has the other core: PostgreSQL's
            // parallel workers (two more processes joining and sorting) and its JIT took
            // that core from the pull (1 M NYC no-change 10.2-11.0 s -> 9.1-9.8 s,
            // docs/performance.md).
            tx.execute_batch("SET LOCAL max_parallel_workers_per_gather = 0; SET LOCAL jit = off")?;
            "ORDER BY l.sourced_id COLLATE \"C\""
        }
    };
    tx.for_each(
        &format!("{FULL_LINK_SELECT} WHERE l.source = ? {order}"),
        &[source.into()],
        &mut |r| {
            let account = AccountState {
                revision: r.i64(9)?,
                active: r.bool(10)?,
            };
            links.push(ViewLink::new(link_from_row(r)?, Some(account), &mut names));
            Ok(())
        },
    )?;
    if !links.is_sorted_by(|a, b| a.sourced_id < b.sourced_id) {
        links.sort_unstable_by(|a, b| a.sourced_id.cmp(&b.sourced_id));
    }
    // Each person's org and role, from one read of the people in the order they are
    // stored, each found among the links ([`LinkFinder`]). A join's probe of the people's
    // key for each link cost SQLite as much as the rest of reading the link, and a walk of
    // that key in order a random read of the table for each person (a second of system
    // time at 1 M).
    let people = match tx.dialect() {
        Dialect::Sqlite => {
            "SELECT sourced_id, primary_org, role FROM sis_people NOT INDEXED WHERE source = ?"
        }
        Dialect::Postgres => {
            "SELECT sourced_id, primary_org, role FROM sis_people WHERE source = ?"
        }
    };
    let mut finder = LinkFinder::default();
    tx.for_each(people, &[source.into()], &mut |r| {
        let id = r.str(0)?;
        if let Some(at) = finder.find(&links, id) {
            links[at].place(r.opt_str(1)?, r.opt_str(2)?, &mut names);
        }
        Ok(())
    })?;
    drop(finder);
    let refused = query_vec(
        tx,
        "SELECT sourced_id, user_id FROM link_refusals WHERE source = ?",
        &[source.into()],
        |r| Ok((r.text(0)?, AccountId(r.i64(1)?))),
    )?;
    let state = crate::roster::source_state(tx, source)?;
    let decisions = crate::review::decisions(tx, source)?;
    let kept_apart = crate::review::kept_apart(tx, source, None)?;
    let accounts = query_i64(tx, "SELECT COUNT(*) FROM users", &[])?;
    Ok(
        DirectoryView::of_links(links, names, accounts.max(0) as u64)
            .with_source_state(refused, state)
            .with_decisions(decisions)
            .with_kept_apart(kept_apart),
    )
}

/// The accounts `keys` reach, whole, and the aliases that reached them
/// (`MemoryDirectory::accounts`): what a full pull adds to its links view. For
/// `keys.everyone`, every account is read: all kept, or with `keys.scan` those it may
/// reach ([`scanned_view_users`]).
pub(crate) fn load_accounts(
    tx: &mut dyn Tx,
    source: &str,
    keys: &ViewKeys,
) -> Result<crate::Accounts> {
    if keys.everyone {
        return match &keys.scan {
            None => Ok((all_view_users(tx)?, all_aliases(tx)?)),
            Some(scan) => scanned_view_users(tx, scan),
        };
    }
    let (ids, aliases) = reach(tx, source, keys)?;
    Ok((view_users(tx, &ids)?, aliases))
}

/// Every account, with provenance.
fn all_view_users(tx: &mut dyn Tx) -> Result<Vec<Account>> {
    let mut written: HashMap<AccountId, Vec<(Field, Writer)>> = HashMap::new();
    tx.for_each(
        "SELECT user_id, field, writer FROM field_provenance",
        &[],
        &mut |r| {
            let (id, f, w) = provenance_row(r)?;
            written.entry(id).or_default().push((f, w));
            Ok(())
        },
    )?;
    // Sized once: grown by doubling, a 3 M-account directory's last copy held 2 M of them
    // twice over.
    let count = query_i64(tx, "SELECT COUNT(*) FROM users", &[])?;
    let mut users = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    tx.for_each(USER_SELECT, &[], &mut |r| {
        users.push(whole_account(r, &mut written)?);
        Ok(())
    })?;
    Ok(users)
}

/// The account a row of [`USER_SELECT`] holds, with its provenance from `written` (the
/// account's provenance rows, taken out).
fn whole_account(
    r: &dyn Row,
    written: &mut HashMap<AccountId, Vec<(Field, Writer)>>,
) -> Result<Account> {
    let s = user_from_row(r)?;
    let mut u = s.user;
    let w = written.remove(&u.id).unwrap_or_default();
    u.provenance = provenance(&s.created_by, s.created_fields, &w)?;
    Ok(u)
}

/// Every account `scan` may reach, with provenance, and the aliases that may reach them
/// (`MemoryDirectory::accounts`): one read of every alias, account and provenance row,
/// keeping only those; the rest are dropped as they are read.
fn scanned_view_users(tx: &mut dyn Tx, scan: &HashedKeys) -> Result<crate::Accounts> {
    let mut aliases = Vec::new();
    tx.for_each(
        "SELECT user_id, kind, value_lc FROM aliases",
        &[],
        &mut |r| {
            let kind: AliasKind = r.text(1)?.parse().map_err(|e| corrupt("alias kind", e))?;
            let value = r.text(2)?;
            if scan.reaches_alias(kind, &value) {
                aliases.push((AccountId(r.i64(0)?), kind, MatchKey::from_stored(value)));
            }
            Ok(())
        },
    )?;
    let by_alias: HashSet<AccountId> = aliases.iter().map(|(u, _, _)| *u).collect();
    let mut users = Vec::new();
    let mut stored = Vec::new();
    tx.for_each(USER_SELECT, &[], &mut |r| {
        let id = AccountId(r.i64(0)?);
        let email = r.opt_text(22)?;
        let username = r.opt_text(23)?;
        let identifier = r.opt_text(11)?;
        if by_alias.contains(&id)
            || scan.reaches(
                id,
                email.as_deref(),
                username.as_deref(),
                identifier.as_deref(),
            )
        {
            let s = user_from_row(r)?;
            stored.push((s.created_by, s.created_fields));
            users.push(s.user);
        }
        Ok(())
    })?;
    drop(by_alias);
    // The kept accounts by id, to file their provenance rows.
    let mut at: Vec<(AccountId, u32)> = users
        .iter()
        .enumerate()
        .map(|(i, u)| (u.id, i as u32))
        .collect();
    at.sort_unstable();
    let mut written: Vec<Vec<(Field, Writer)>> = vec![Vec::new(); users.len()];
    tx.for_each(
        "SELECT user_id, field, writer FROM field_provenance",
        &[],
        &mut |r| {
            let id = AccountId(r.i64(0)?);
            if let Ok(k) = at.binary_search_by_key(&id, |(u, _)| *u) {
                let (_, f, w) = provenance_row(r)?;
                written[at[k].1 as usize].push((f, w));
            }
            Ok(())
        },
    )?;
    for ((u, (created_by, created_fields)), w) in users.iter_mut().zip(stored).zip(written) {
        u.provenance = provenance(&created_by, created_fields, &w)?;
    }
    Ok((users, aliases))
}

/// Every alias, as (account, kind, match key).
fn all_aliases(tx: &mut dyn Tx) -> Result<Vec<(AccountId, AliasKind, MatchKey)>> {
    query_vec(
        tx,
        "SELECT user_id, kind, value_lc FROM aliases",
        &[],
        |r| {
            let kind: AliasKind = r.text(1)?.parse().map_err(|e| corrupt("alias kind", e))?;
            Ok((
                AccountId(r.i64(0)?),
                kind,
                MatchKey::from_stored(r.text(2)?),
            ))
        },
    )
}

/// The ids of the accounts any key reaches (a person's link, an email match key, an
/// identifier, an alias; merged accounts too), sorted, and the aliases that reached them.
#[allow(clippy::type_complexity)]
fn reach(
    tx: &mut dyn Tx,
    source: &str,
    keys: &ViewKeys,
) -> Result<(Vec<AccountId>, Vec<(AccountId, AliasKind, MatchKey)>)> {
    let sourced_ids: Vec<String> = keys.sourced_ids.iter().cloned().collect();
    let mut reached: BTreeSet<AccountId> = keys.accounts.clone();
    tx.for_each_in(
        "SELECT user_id FROM sis_links WHERE source = ? AND sourced_id {keys}",
        &[source.into()],
        Keys::Texts(&sourced_ids),
        &mut |r| {
            reached.insert(AccountId(r.i64(0)?));
            Ok(())
        },
    )?;
    // `email_lc` is the email's match key, as the view keys it. Identifiers are stored
    // as the SIS gave them, trimmed (`SisPerson::from_user`), as the view keys them.
    let emails: Vec<MatchKey> = keys.emails.iter().cloned().collect();
    let usernames: Vec<MatchKey> = keys.usernames.iter().cloned().collect();
    let identifiers: Vec<String> = keys.identifiers.iter().cloned().collect();
    for (sql, values) in [
        (
            "SELECT id FROM users WHERE email_lc {keys}",
            Keys::Matches(&emails),
        ),
        (
            "SELECT id FROM users WHERE username_lc {keys}",
            Keys::Matches(&usernames),
        ),
        (
            "SELECT id FROM users WHERE identifier {keys}",
            Keys::Texts(&identifiers),
        ),
    ] {
        tx.for_each_in(sql, &[], values, &mut |r| {
            reached.insert(AccountId(r.i64(0)?));
            Ok(())
        })?;
    }
    let mut aliases = Vec::new();
    for kind in [AliasKind::Email, AliasKind::Username] {
        let values: Vec<MatchKey> = keys
            .aliases
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, v)| v.clone())
            .collect();
        tx.for_each_in(
            "SELECT user_id, value_lc FROM aliases WHERE kind = ? AND value_lc {keys}",
            &[kind.as_str().into()],
            Keys::Matches(&values),
            &mut |r| {
                let user = AccountId(r.i64(0)?);
                reached.insert(user);
                aliases.push((user, kind, MatchKey::from_stored(r.text(1)?)));
                Ok(())
            },
        )?;
    }
    Ok((reached.into_iter().collect(), aliases))
}

/// Accounts by id, with provenance: the provenance rows first (a few an account), then
/// each account made whole as it is read, into a vector sized once (a chunk of a plan
/// made by chunks is 100 000 accounts: read into a map, then copied out, it was held
/// twice at the end).
fn view_users(tx: &mut dyn Tx, ids: &[AccountId]) -> Result<Vec<Account>> {
    let mut written: HashMap<AccountId, Vec<(Field, Writer)>> = HashMap::new();
    by_id_runs(
        tx,
        "SELECT user_id, field, writer FROM field_provenance WHERE user_id",
        ids,
        &mut |r| {
            let (id, f, w) = provenance_row(r)?;
            written.entry(id).or_default().push((f, w));
            Ok(())
        },
    )?;
    let mut users = Vec::with_capacity(ids.len());
    by_id_runs(tx, &format!("{USER_SELECT} WHERE u.id"), ids, &mut |r| {
        users.push(whole_account(r, &mut written)?);
        Ok(())
    })?;
    Ok(users)
}

/// Ids no farther apart than this are read as one range.
const RUN_GAP: u64 = 8;
/// A range is read for a run of at least this many ids; a shorter one id by id.
const RUN_MIN: usize = 32;

/// Hands `f` the rows of `select` (a query ending in `WHERE <account id column>`, the id
/// its first column) for the accounts `ids` (in any order; an id twice is read once): a run of ids close together (a plan
/// made by chunks reads a chunk's linked accounts, numbered in the order the people were
/// first imported) is read as one range, the rows of other ids in it left out; the rest
/// id by id. At a million accounts read by chunks, a statement each took 2 µs an id.
fn by_id_runs(
    tx: &mut dyn Tx,
    select: &str,
    ids: &[AccountId],
    f: &mut dyn FnMut(&dyn Row) -> Result<()>,
) -> Result<()> {
    let sorted;
    let ids = if ids.windows(2).all(|w| w[0] < w[1]) {
        ids
    } else {
        let mut owned = ids.to_vec();
        owned.sort_unstable();
        owned.dedup();
        sorted = owned;
        &sorted
    };
    let mut singles = Vec::new();
    let mut rest = ids;
    while let Some(first) = rest.first() {
        let mut end = 1;
        while end < rest.len() && rest[end].0.abs_diff(rest[end - 1].0) <= RUN_GAP {
            end += 1;
        }
        let (run, after) = rest.split_at(end);
        rest = after;
        if run.len() < RUN_MIN {
            singles.extend_from_slice(run);
            continue;
        }
        let last = run[run.len() - 1];
        tx.for_each(
            &format!("{select} BETWEEN ? AND ?"),
            &[first.0.into(), last.0.into()],
            &mut |r| {
                if run.binary_search(&AccountId(r.i64(0)?)).is_ok() {
                    f(r)?;
                }
                Ok(())
            },
        )?;
    }
    tx.for_each_in(
        &format!("{select} {{keys}}"),
        &[],
        Keys::Accounts(&singles),
        f,
    )
}

/// How many people of `source` are linked (a walk of its links' key, no account read).
pub(crate) fn link_count(tx: &mut dyn Tx, source: &str) -> Result<u64> {
    let n = query_i64(
        tx,
        "SELECT COUNT(*) FROM sis_links WHERE source = ?",
        &[source.into()],
    )?;
    u64::try_from(n).map_err(|e| corrupt("link count", e))
}

/// How many of this source's links reach an active account: a scoped view's population
/// (`LinkedPopulation::total`; the schools come after planning, [`school_counts`]), and
/// what a delta's people are measured against to tell a wide one. Summed from
/// `location_counts` (migration 0011), which the triggers keep at one a link of an active
/// account whatever writes (on PostgreSQL its rows are signed changes until folded, which
/// sum the same): the cost is the source's schools and locations, not its links (a join
/// of every link with its account was a tenth of a 1 M delta's CPU).
pub(crate) fn active_linked(tx: &mut dyn Tx, source: &str) -> Result<u64> {
    let n = query_i64(
        tx,
        "SELECT CAST(COALESCE(SUM(accounts), 0) AS BIGINT) FROM location_counts WHERE source = ?",
        &[source.into()],
    )?;
    u64::try_from(n).map_err(|e| corrupt("active linked count", e))
}

/// This source's active linked accounts at each of `schools`, by the person's primary
/// org as last pulled (a school with none is left out); the meaning is
/// `MemoryDirectory::school_counts`. Summed from `location_counts` as [`active_linked`]
/// is, so the cost is the schools' rows there, not their people.
pub(crate) fn school_counts(
    tx: &mut dyn Tx,
    source: &str,
    schools: &[&str],
) -> Result<BTreeMap<String, u64>> {
    let schools: Vec<String> = schools.iter().map(|s| s.to_string()).collect();
    let mut counts = BTreeMap::new();
    tx.for_each_in(
        "SELECT org, CAST(SUM(accounts) AS BIGINT) FROM location_counts \
         WHERE source = ? AND org {keys} GROUP BY org HAVING SUM(accounts) <> 0",
        &[source.into()],
        Keys::Texts(&schools),
        &mut |r| {
            let n = u64::try_from(r.i64(1)?).map_err(|e| corrupt("link count", e))?;
            counts.insert(r.text(0)?, n);
            Ok(())
        },
    )?;
    Ok(counts)
}

/// This source's links, in the order [`link_from_row`] reads them, then the account's
/// revision and active flag (columns 9 and 10).
const FULL_LINK_SELECT: &str = concat!(
    "SELECT ",
    link_columns!(),
    ", u.revision, u.active FROM sis_links l JOIN users u ON u.id = l.user_id"
);

/// This source's links with their person's org and role as last pulled (the safeguards
/// count schools and roles), in the order [`view_link_from_row`] reads them.
const VIEW_LINK_SELECT: &str = concat!(
    "SELECT ",
    link_columns!(),
    ", p.primary_org, p.role FROM sis_links l \
     LEFT JOIN sis_people p ON p.source = l.source AND p.sourced_id = l.sourced_id"
);

/// A link of [`VIEW_LINK_SELECT`] with its org and role (a scoped view's few links; the
/// view numbers their names, [`DirectoryView::new`]).
fn view_link_from_row(r: &dyn Row) -> Result<Link> {
    let mut l = link_from_row(r)?;
    l.org = r.opt_str(9)?.map(Arc::from);
    l.role = r.opt_str(10)?.map(Arc::from);
    Ok(l)
}
