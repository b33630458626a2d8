//! What a source writes besides accounts — groups and their members, guardian
//! relationships, calendars, the SIS's orgs, the SIS side of each person (the SIS card),
//! the per-source state (delta watermark, hashes of what it last wrote) — and the reads
//! over them.
//!
//! Scale: the largest district has about 8 M enrollments. The planner leaves out groups
//! whose content hash is unchanged; a changed group's members are diffed against what is
//! stored, so a class that gained one student costs one insert. Member sourcedIds are
//! resolved to accounts through the source's links once per apply, after the plan's
//! person writes, and every large write goes through the backends' bulk methods in
//! slices, so memory stays bounded by a slice plus two integers per member.

use std::collections::{BTreeMap, HashMap, HashSet};

use jiff::Timestamp;
use rostersync_core::directory::AccountId;
use rostersync_core::plan::{ListedSkips, PlanItem, Reason, RosterPlan, SisRecord};
use rostersync_core::roster::{self, GroupSpec, OrgInfo, SessionInfo};
use rostersync_core::view::SourceState;

use crate::sql::{Keys, Rows, Tx, Value, concat, query_opt, query_vec, ts};
use crate::{GroupRow, Guardianships, Result, SisOrgRow, StoreError, UserRef};

/// Rows per bulk write.
const SLICE: usize = 50_000;
/// Member references per round of group member diffs.
const MEMBER_BATCH: usize = 200_000;
/// Above this many people to resolve, one scan of the source's links beats lookups.
const SCAN_ABOVE: usize = 20_000;

/// Written as a group's hash when a member could not be resolved to an account (its link
/// was refused at apply time): no real hash matches it, so the next sync writes the group
/// again. The same for the relationships hash.
const INCOMPLETE: u64 = 0;

const SIS_PEOPLE_KEY: [&str; 2] = ["source", "sourced_id"];
/// Everything but the key.
/// The match keys (`reports::PERSON_KEY_COLUMNS`) are updated with the names they come
/// from; `classes` stays last (a delta's upsert leaves it out).
const SIS_PEOPLE_UPDATE: [&str; 18] = [
    "role",
    "status",
    "enabled",
    "username",
    "email",
    "given_name",
    "family_name",
    "identifier",
    "grade",
    "primary_org",
    "location",
    "homeroom",
    "modified",
    "updated_at",
    "name_key",
    "email_key",
    "username_key",
    "classes",
];
const SIS_PEOPLE_COLUMNS: [&str; 20] = concat(SIS_PEOPLE_KEY, SIS_PEOPLE_UPDATE);

const GROUP_INSERT_COLUMNS: [&str; 8] = [
    "id",
    "name",
    "kind",
    "source",
    "group_key",
    "detail",
    "content_hash",
    "created_at",
];
const GROUP_UPDATE_COLUMNS: [&str; 5] = ["id", "name", "kind", "detail", "content_hash"];
const MEMBER_COLUMNS: [&str; 2] = ["group_id", "user_id"];
const RELATIONSHIP_COLUMNS: [&str; 3] = ["source", "guardian_id", "student_id"];
const CALENDAR_COLUMNS: [&str; 7] = [
    "source",
    "sourced_id",
    "title",
    "kind",
    "start_date",
    "end_date",
    "parent",
];
const ORG_KEY: [&str; 2] = ["source", "sourced_id"];
const ORG_UPDATE: [&str; 2] = ["name", "is_school"];
const ORG_COLUMNS: [&str; 4] = concat(ORG_KEY, ORG_UPDATE);

fn hash_value(h: u64) -> Value<'static> {
    // The u64 hash is stored as the i64 with the same bits.
    Value::Int(h.cast_signed())
}

// ----- per-source state

/// What the source last wrote besides accounts, for the planner's view.
pub(crate) fn source_state(tx: &mut dyn Tx, source: &str) -> Result<SourceState> {
    let mut groups = HashMap::new();
    tx.for_each(
        "SELECT group_key, content_hash FROM groups WHERE source = ? AND group_key IS NOT NULL",
        &[source.into()],
        &mut |r| {
            let hash = r.opt_i64(1)?.unwrap_or(0).cast_unsigned();
            groups.insert(r.text(0)?, hash);
            Ok(())
        },
    )?;
    let hashes = query_opt(
        tx,
        "SELECT relationships_hash, calendars_hash FROM source_state WHERE source = ?",
        &[source.into()],
        |r| Ok((r.opt_i64(0)?, r.opt_i64(1)?)),
    )?;
    let (relationships, calendars) = hashes.unwrap_or_default();
    let open_cases = crate::review::open_cases(tx, source)?.into_keys().collect();
    // A memo that cannot be read is no memo: the plan makes the groups and relationships.
    let roster_memo = crate::settings::meta_get(tx, &memo_key(source))?
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default();
    Ok(SourceState {
        groups,
        relationships_hash: relationships.map(i64::cast_unsigned),
        calendars_hash: calendars.map(i64::cast_unsigned),
        open_cases,
        roster_memo,
        listed_skips: listed_skips(tx, source)?,
    })
}

/// The skips the source's last applied complete full pull listed. Keys that cannot be
/// read are none: the next run lists its skips again.
fn listed_skips(tx: &mut dyn Tx, source: &str) -> Result<ListedSkips> {
    let bytes = query_opt(
        tx,
        "SELECT skip_keys FROM listed_skips WHERE source = ?",
        &[source.into()],
        |r| r.opt_blob(0),
    )?
    .flatten();
    Ok(bytes
        .and_then(|b| ListedSkips::from_bytes(&b))
        .unwrap_or_default())
}

/// Keeps `skips` as the source's listed skips ([`ListedSkips`]).
pub(crate) fn set_listed_skips(tx: &mut dyn Tx, source: &str, skips: &ListedSkips) -> Result<()> {
    tx.execute(
        "INSERT INTO listed_skips (source, skip_keys) VALUES (?, ?) \
         ON CONFLICT (source) DO UPDATE SET skip_keys = excluded.skip_keys",
        &[source.into(), Value::Blob(skips.to_bytes().into())],
    )?;
    Ok(())
}

/// Where a source's [`rostersync_core::roster::RosterMemo`] is kept in `meta`: a cache
/// the planner checks against the groups and relationships held, never trusted alone.
fn memo_key(source: &str) -> String {
    format!("roster_memo:{source}")
}

pub(crate) fn watermark(tx: &mut dyn Tx, source: &str) -> Result<Option<Timestamp>> {
    query_opt(
        tx,
        "SELECT watermark FROM source_state WHERE source = ?",
        &[source.into()],
        |r| r.opt_ts(0),
    )
    .map(Option::flatten)
}

/// Sets one column of the source's state row; writes nothing when it already has the value.
fn set_state(tx: &mut dyn Tx, source: &str, column: &'static str, value: Value<'_>) -> Result<()> {
    tx.execute(
        &format!(
            "INSERT INTO source_state (source, {column}) VALUES (?, ?) ON CONFLICT (source) \
             DO UPDATE SET {column} = excluded.{column} \
             WHERE source_state.{column} IS DISTINCT FROM excluded.{column}"
        ),
        &[source.into(), value],
    )?;
    Ok(())
}

pub(crate) fn set_watermark(tx: &mut dyn Tx, source: &str, at: Timestamp) -> Result<()> {
    set_state(tx, source, "watermark", ts(at).into())
}

// ----- the SIS card's records

/// Whether `table` holds any row of `source` (a first import's holds none yet).
pub(crate) fn source_has_rows(tx: &mut dyn Tx, table: &str, source: &str) -> Result<bool> {
    Ok(query_opt(
        tx,
        &format!("SELECT source FROM {table} WHERE source = ? LIMIT 1"),
        &[source.into()],
        |r| r.text(0),
    )?
    .is_some())
}

/// Upserts the SIS side of people. A record whose classes are unknown (a delta) keeps
/// the classes stored. The first records of a source (`first`: it had none when the apply
/// began, a first import) are inserted as they are: a plan has each sourcedId once, so
/// there is nothing to update (one `COPY` on PostgreSQL instead of a staged upsert).
pub(crate) fn write_sis_records(
    tx: &mut dyn Tx,
    source: &str,
    records: &[SisRecord],
    now: &str,
    first: bool,
) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    for slice in records.chunks(SLICE) {
        let mut known = Rows::new("sis_people", &SIS_PEOPLE_COLUMNS);
        let mut unknown = Rows::new("sis_people", &SIS_PEOPLE_COLUMNS);
        for r in slice {
            let classes = match r.classes() {
                Some(c) => Some(serde_json::to_string(&c.collect::<Vec<_>>()).map_err(|e| {
                    StoreError::database(format!(
                        "cannot encode the classes of {}: {e}",
                        r.sourced_id()
                    ))
                })?),
                None => None,
            };
            let [name_key, email_key, username_key] = crate::reports::person_key_columns(
                Some(r.given_name()),
                Some(r.family_name()),
                r.email(),
                Some(r.username()),
            )
            .values();
            let row = vec![
                source.into(),
                r.sourced_id().into(),
                r.role().into(),
                r.status().into(),
                r.enabled().into(),
                r.username().into(),
                r.email().into(),
                r.given_name().into(),
                r.family_name().into(),
                r.identifier().into(),
                r.grade().into(),
                r.primary_org().into(),
                r.location().into(),
                r.homeroom().into(),
                r.modified().map(ts).into(),
                now.into(),
                name_key,
                email_key,
                username_key,
                classes.into(),
            ];
            if r.classes().is_some() {
                known.push(row);
            } else {
                unknown.push(row);
            }
        }
        if first {
            tx.insert_rows(&known)?;
            tx.insert_rows(&unknown)?;
            continue;
        }
        if !known.is_empty() {
            tx.upsert_rows(&known, &SIS_PEOPLE_KEY, &SIS_PEOPLE_UPDATE)?;
        }
        if !unknown.is_empty() {
            let keep_classes = &SIS_PEOPLE_UPDATE[..SIS_PEOPLE_UPDATE.len() - 1];
            tx.upsert_rows(&unknown, &SIS_PEOPLE_KEY, keep_classes)?;
        }
    }
    Ok(())
}

/// An account source's identities the plan found gone from the provider: their record
/// says so (`status = 'gone'`), for the user page's card and the stale report.
pub(crate) fn mark_gone(tx: &mut dyn Tx, source: &str, gone: &[String], now: &str) -> Result<()> {
    for id in gone {
        tx.execute(
            "UPDATE sis_people SET status = 'gone', updated_at = ? WHERE source = ? AND sourced_id = ?",
            &[now.into(), source.into(), id.as_str().into()],
        )?;
    }
    Ok(())
}

/// Whether the item is of an identity the account source found gone from the provider.
pub(crate) fn gone_from_provider(item: &PlanItem) -> bool {
    match &item.reason {
        Reason::GoneFromProvider { .. } => true,
        Reason::NotDeactivated(k) => k.state == "gone",
        _ => false,
    }
}

// ----- applying a roster plan

/// SIS people → accounts, through one source's links as they are now. Only the people
/// asked for are kept, keyed by the plan's own strings.
fn resolve<'p>(
    tx: &mut dyn Tx,
    source: &str,
    wanted: &HashSet<&'p str>,
) -> Result<HashMap<&'p str, AccountId>> {
    let mut out = HashMap::with_capacity(wanted.len());
    if wanted.is_empty() {
        return Ok(out);
    }
    let mut keep = |r: &dyn crate::sql::Row| {
        let sourced_id = r.text(0)?;
        if let Some(k) = wanted.get(sourced_id.as_str()) {
            out.insert(*k, AccountId(r.i64(1)?));
        }
        Ok(())
    };
    if wanted.len() > SCAN_ABOVE {
        tx.for_each(
            "SELECT sourced_id, user_id FROM sis_links WHERE source = ?",
            &[source.into()],
            &mut keep,
        )?;
    } else {
        let keys: Vec<String> = wanted.iter().map(|s| (*s).to_owned()).collect();
        tx.for_each_in(
            "SELECT sourced_id, user_id FROM sis_links WHERE source = ? AND sourced_id {keys}",
            &[source.into()],
            Keys::Texts(&keys),
            &mut keep,
        )?;
    }
    Ok(out)
}

/// Applies groups, relationships, calendars and orgs, after the plan's person writes.
pub(crate) fn apply_roster(
    tx: &mut dyn Tx,
    source: &str,
    plan: &RosterPlan,
    now: &str,
) -> Result<()> {
    let mut wanted: HashSet<&str> = HashSet::new();
    for g in &plan.groups {
        wanted.extend(g.members.iter());
    }
    for (guardian, student) in plan.relationships.iter().flat_map(roster::Pairs::iter) {
        wanted.insert(guardian);
        wanted.insert(student);
    }
    let accounts = resolve(tx, source, &wanted)?;
    drop(wanted);

    write_orgs(tx, source, &plan.orgs)?;
    if let Some(sessions) = &plan.calendars {
        write_calendars(tx, source, sessions)?;
    }
    write_groups(
        tx,
        source,
        &plan.groups,
        &plan.removed_groups,
        &accounts,
        now,
    )?;
    if let Some(pairs) = &plan.relationships {
        write_relationships(tx, source, pairs, &accounts)?;
    }
    let memo = crate::sql::encode("the roster memo", &plan.memo)?;
    crate::settings::meta_set(tx, &memo_key(source), &memo)
}

/// Sorted `want` and `have` (deduplicated) → (to add, to remove).
fn diff<T: Ord + Copy>(want: &[T], have: &[T]) -> (Vec<T>, Vec<T>) {
    let (mut add, mut remove) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < want.len() || j < have.len() {
        match (want.get(i), have.get(j)) {
            (Some(w), Some(h)) if w == h => {
                i += 1;
                j += 1;
            }
            (Some(w), Some(h)) if w < h => {
                add.push(*w);
                i += 1;
            }
            (Some(_), Some(h)) => {
                remove.push(*h);
                j += 1;
            }
            (Some(w), None) => {
                add.push(*w);
                i += 1;
            }
            (None, Some(h)) => {
                remove.push(*h);
                j += 1;
            }
            (None, None) => break,
        }
    }
    (add, remove)
}

/// Inserts or deletes `(group_id, user_id)` pairs in slices.
fn write_members(tx: &mut dyn Tx, pairs: &[(i64, AccountId)], delete: bool) -> Result<()> {
    for slice in pairs.chunks(SLICE) {
        let mut rows = Rows::new("group_members", &MEMBER_COLUMNS);
        for (g, u) in slice {
            rows.push(vec![Value::Int(*g), Value::from(*u)]);
        }
        if delete {
            tx.delete_rows(&rows)?;
        } else {
            tx.insert_rows(&rows)?;
        }
    }
    Ok(())
}

/// A group's members as accounts, sorted; and whether every member resolved.
fn members_of(spec: &GroupSpec, accounts: &HashMap<&str, AccountId>) -> (Vec<AccountId>, bool) {
    let mut ids = Vec::with_capacity(spec.members.len());
    let mut complete = true;
    for m in spec.members.iter() {
        match accounts.get(m) {
            Some(id) => ids.push(*id),
            None => complete = false,
        }
    }
    ids.sort_unstable();
    ids.dedup();
    (ids, complete)
}

fn write_groups(
    tx: &mut dyn Tx,
    source: &str,
    specs: &[GroupSpec],
    removed: &[String],
    accounts: &HashMap<&str, AccountId>,
    now: &str,
) -> Result<()> {
    if specs.is_empty() && removed.is_empty() {
        return Ok(());
    }
    let mut existing: HashMap<String, i64> = HashMap::new();
    tx.for_each(
        "SELECT group_key, id FROM groups WHERE source = ? AND group_key IS NOT NULL",
        &[source.into()],
        &mut |r| {
            existing.insert(r.text(0)?, r.i64(1)?);
            Ok(())
        },
    )?;

    let gone: Vec<i64> = removed
        .iter()
        .filter_map(|k| existing.get(k.as_str()).copied())
        .collect();
    if !gone.is_empty() {
        tx.execute_in(
            "DELETE FROM group_members WHERE group_id {keys}",
            &[],
            Keys::Ints(&gone),
        )?;
        tx.execute_in("DELETE FROM groups WHERE id {keys}", &[], Keys::Ints(&gone))?;
    }

    // The group rows first (members refer to them); one spec per key.
    let mut seen: HashSet<&str> = HashSet::with_capacity(specs.len());
    let specs: Vec<&GroupSpec> = specs.iter().filter(|g| seen.insert(&g.key)).collect();
    let fresh = specs
        .iter()
        .filter(|g| !existing.contains_key(&g.key))
        .count();
    let mut new_ids = tx.allocate_ids("groups", fresh)?.into_iter();
    // (group id, existed before, spec)
    let mut targets: Vec<(i64, bool, &GroupSpec)> = Vec::with_capacity(specs.len());
    for part in specs.chunks(SLICE) {
        let mut inserts = Rows::new("groups", &GROUP_INSERT_COLUMNS);
        let mut updates = Rows::new("groups", &GROUP_UPDATE_COLUMNS);
        for g in part {
            let complete = g.members.iter().all(|m| accounts.contains_key(m));
            let hash = hash_value(if complete {
                g.content_hash()
            } else {
                INCOMPLETE
            });
            match existing.get(&g.key) {
                Some(id) => {
                    updates.push(vec![
                        Value::Int(*id),
                        g.name.as_str().into(),
                        g.kind.as_str().into(),
                        g.detail.as_deref().into(),
                        hash,
                    ]);
                    targets.push((*id, true, g));
                }
                None => {
                    let id = new_ids.next().ok_or_else(|| {
                        StoreError::database("fewer group ids were reserved than needed")
                    })?;
                    inserts.push(vec![
                        Value::Int(id),
                        g.name.as_str().into(),
                        g.kind.as_str().into(),
                        source.into(),
                        g.key.as_str().into(),
                        g.detail.as_deref().into(),
                        hash,
                        now.into(),
                    ]);
                    targets.push((id, false, g));
                }
            }
        }
        if !inserts.is_empty() {
            tx.insert_rows(&inserts)?;
        }
        if !updates.is_empty() {
            tx.update_rows(&updates)?;
        }
    }

    // Then the members, a batch of groups at a time.
    let mut start = 0;
    while start < targets.len() {
        let mut end = start;
        let mut refs = 0;
        while end < targets.len() && (end == start || refs < MEMBER_BATCH) {
            refs += targets[end].2.members.len();
            end += 1;
        }
        let batch = &targets[start..end];
        start = end;

        let old: Vec<i64> = batch.iter().filter(|t| t.1).map(|t| t.0).collect();
        let mut have: HashMap<i64, Vec<AccountId>> = HashMap::with_capacity(old.len());
        tx.for_each_in(
            "SELECT group_id, user_id FROM group_members WHERE group_id {keys}",
            &[],
            Keys::Ints(&old),
            &mut |r| {
                have.entry(r.i64(0)?)
                    .or_default()
                    .push(AccountId(r.i64(1)?));
                Ok(())
            },
        )?;
        let (mut adds, mut removes) = (Vec::new(), Vec::new());
        for (id, _, spec) in batch {
            let (want, _) = members_of(spec, accounts);
            let mut current = have.remove(id).unwrap_or_default();
            current.sort_unstable();
            let (add, remove) = diff(&want, &current);
            adds.extend(add.into_iter().map(|u| (*id, u)));
            removes.extend(remove.into_iter().map(|u| (*id, u)));
        }
        write_members(tx, &removes, true)?;
        write_members(tx, &adds, false)?;
    }
    Ok(())
}

fn write_relationships(
    tx: &mut dyn Tx,
    source: &str,
    pairs: &roster::Pairs,
    accounts: &HashMap<&str, AccountId>,
) -> Result<()> {
    let mut complete = true;
    let mut want: Vec<(AccountId, AccountId)> = Vec::with_capacity(pairs.len());
    for (guardian, student) in pairs.iter() {
        match (accounts.get(guardian), accounts.get(student)) {
            (Some(g), Some(s)) => want.push((*g, *s)),
            _ => complete = false,
        }
    }
    want.sort_unstable();
    want.dedup();
    let mut have = query_vec(
        tx,
        "SELECT guardian_id, student_id FROM guardian_relationships WHERE source = ?",
        &[source.into()],
        |r| Ok((AccountId(r.i64(0)?), AccountId(r.i64(1)?))),
    )?;
    have.sort_unstable();
    let (add, remove) = diff(&want, &have);
    for (pairs, delete) in [(&remove, true), (&add, false)] {
        for slice in pairs.chunks(SLICE) {
            let mut rows = Rows::new("guardian_relationships", &RELATIONSHIP_COLUMNS);
            for (g, s) in slice {
                rows.push(vec![source.into(), Value::from(*g), Value::from(*s)]);
            }
            if delete {
                tx.delete_rows(&rows)?;
            } else {
                tx.insert_rows(&rows)?;
            }
        }
    }
    let hash = if complete {
        roster::pairs_hash(pairs.iter())
    } else {
        INCOMPLETE
    };
    set_state(tx, source, "relationships_hash", hash_value(hash))
}

fn write_calendars(tx: &mut dyn Tx, source: &str, sessions: &[SessionInfo]) -> Result<()> {
    tx.execute("DELETE FROM calendars WHERE source = ?", &[source.into()])?;
    let unique: BTreeMap<&str, &SessionInfo> = sessions
        .iter()
        .map(|s| (s.sourced_id.as_str(), s))
        .collect();
    let mut rows = Rows::new("calendars", &CALENDAR_COLUMNS);
    for s in unique.values() {
        rows.push(vec![
            source.into(),
            s.sourced_id.as_str().into(),
            s.title.as_str().into(),
            s.kind.as_str().into(),
            s.start.map(|d| d.to_string()).into(),
            s.end.map(|d| d.to_string()).into(),
            s.parent.as_deref().into(),
        ]);
    }
    if !rows.is_empty() {
        tx.insert_rows(&rows)?;
    }
    set_state(
        tx,
        source,
        "calendars_hash",
        hash_value(roster::sessions_hash(sessions)),
    )
}

/// Keeps `sis_orgs` equal to the pulled orgs, writing only what differs.
fn write_orgs(tx: &mut dyn Tx, source: &str, orgs: &[OrgInfo]) -> Result<()> {
    let want: BTreeMap<&str, (&str, bool)> = orgs
        .iter()
        .map(|o| (o.sourced_id.as_str(), (o.name.as_str(), o.is_school)))
        .collect();
    let have: BTreeMap<String, (String, bool)> = query_vec(
        tx,
        "SELECT sourced_id, name, is_school FROM sis_orgs WHERE source = ?",
        &[source.into()],
        |r| Ok((r.text(0)?, (r.text(1)?, r.bool(2)?))),
    )?
    .into_iter()
    .collect();
    let mut gone = Rows::new("sis_orgs", &ORG_KEY);
    for id in have.keys().filter(|k| !want.contains_key(k.as_str())) {
        gone.push(vec![source.into(), id.as_str().into()]);
    }
    let mut changed = Rows::new("sis_orgs", &ORG_COLUMNS);
    for (id, (name, school)) in &want {
        let same = have.get(*id).is_some_and(|(n, s)| n == name && s == school);
        if !same {
            changed.push(vec![
                source.into(),
                (*id).into(),
                (*name).into(),
                (*school).into(),
            ]);
        }
    }
    if !gone.is_empty() {
        tx.delete_rows(&gone)?;
    }
    if !changed.is_empty() {
        tx.upsert_rows(&changed, &ORG_KEY, &ORG_UPDATE)?;
    }
    Ok(())
}

/// A link of this source moved from `old` to `new` (a person back after the grace period
/// got a new account): the source's group memberships and relationships follow it.
pub(crate) fn move_person(
    tx: &mut dyn Tx,
    source: &str,
    old: AccountId,
    new: AccountId,
) -> Result<()> {
    tx.execute(
        "UPDATE group_members SET user_id = ? WHERE user_id = ? \
         AND group_id IN (SELECT id FROM groups WHERE source = ?) \
         AND NOT EXISTS (SELECT 1 FROM group_members m WHERE m.group_id = group_members.group_id AND m.user_id = ?)",
        &[new.into(), old.into(), source.into(), new.into()],
    )?;
    for (moved, other) in [("guardian_id", "student_id"), ("student_id", "guardian_id")] {
        tx.execute(
            &format!(
                "UPDATE guardian_relationships SET {moved} = ? WHERE source = ? AND {moved} = ? \
                 AND NOT EXISTS (SELECT 1 FROM guardian_relationships r WHERE r.source = guardian_relationships.source \
                 AND r.{moved} = ? AND r.{other} = guardian_relationships.{other})"
            ),
            &[new.into(), source.into(), old.into(), new.into()],
        )?;
    }
    forget_person(tx, source, old)
}

/// Takes an account out of a source's groups and relationships (its link was removed).
pub(crate) fn forget_person(tx: &mut dyn Tx, source: &str, user: AccountId) -> Result<()> {
    tx.execute(
        "DELETE FROM group_members WHERE user_id = ? AND group_id IN (SELECT id FROM groups WHERE source = ?)",
        &[user.into(), source.into()],
    )?;
    tx.execute(
        "DELETE FROM guardian_relationships WHERE source = ? AND (guardian_id = ? OR student_id = ?)",
        &[source.into(), user.into(), user.into()],
    )?;
    Ok(())
}

// ----- rooms

/// Makes sure every name has a `rooms` row.
pub(crate) fn ensure_rooms(tx: &mut dyn Tx, names: &[String]) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let mut known: HashSet<String> = HashSet::new();
    tx.for_each_in(
        "SELECT name FROM rooms WHERE name {keys}",
        &[],
        Keys::Texts(names),
        &mut |r| {
            known.insert(r.text(0)?);
            Ok(())
        },
    )?;
    let mut rows = Rows::new("rooms", &["name"]);
    for n in names.iter().filter(|n| !known.contains(n.as_str())) {
        rows.push(vec![n.as_str().into()]);
    }
    if !rows.is_empty() {
        tx.insert_rows(&rows)?;
    }
    Ok(())
}

#[cfg(any(test, feature = "test-support"))]
pub(crate) fn rooms(tx: &mut dyn Tx) -> Result<Vec<String>> {
    query_vec(tx, "SELECT name FROM rooms ORDER BY name", &[], |r| {
        r.text(0)
    })
}

// ----- reads

pub(crate) fn groups(tx: &mut dyn Tx, source: Option<&str>, limit: u32) -> Result<Vec<GroupRow>> {
    let mut sql = String::from(
        "SELECT g.source, g.group_key, g.name, g.kind, g.detail, \
         (SELECT COUNT(*) FROM group_members m WHERE m.group_id = g.id) FROM groups g",
    );
    let mut params: Vec<Value<'_>> = Vec::new();
    if let Some(s) = source {
        sql.push_str(" WHERE g.source = ?");
        params.push(s.into());
    }
    sql.push_str(" ORDER BY g.name, g.id");
    let dialect = tx.dialect();
    sql.push_str(&dialect.limit_offset(limit, 0, &mut params));
    query_vec(tx, &sql, &params, |r| {
        Ok(GroupRow {
            source: r.opt_text(0)?,
            key: r.opt_text(1)?,
            name: r.text(2)?,
            kind: r.text(3)?,
            detail: r.opt_text(4)?,
            members: u64::try_from(r.i64(5)?).unwrap_or(0),
        })
    })
}

/// The SIS's orgs of a source, by name, with the active accounts whose primary org each is.
pub(crate) fn sis_orgs(tx: &mut dyn Tx, source: &str) -> Result<Vec<SisOrgRow>> {
    let people = crate::locations::accounts_by_org(tx, source)?;
    query_vec(
        tx,
        "SELECT sourced_id, name, is_school FROM sis_orgs WHERE source = ? ORDER BY name, sourced_id",
        &[source.into()],
        |r| {
            let sourced_id = r.text(0)?;
            Ok(SisOrgRow {
                people: people.get(&sourced_id).copied().unwrap_or(0),
                sourced_id,
                name: r.text(1)?,
                is_school: r.bool(2)?,
            })
        },
    )
}

/// The source's orgs from its last pull: sourcedId → name.
pub(crate) fn sis_org_names(tx: &mut dyn Tx, source: &str) -> Result<HashMap<String, String>> {
    let mut names = HashMap::new();
    tx.for_each(
        "SELECT sourced_id, name FROM sis_orgs WHERE source = ?",
        &[source.into()],
        &mut |r| {
            names.insert(r.text(0)?, r.text(1)?);
            Ok(())
        },
    )?;
    Ok(names)
}

/// [`rostersync_core::directory::display_name`] of an account's columns (`first` is
/// the preferred name when the query selected `COALESCE(preferred_name, first_name)`).
pub(crate) fn display_name(
    id: AccountId,
    first: Option<String>,
    last: Option<String>,
    username: Option<&str>,
    email: Option<&str>,
) -> String {
    rostersync_core::directory::display_name(id, first.as_deref(), last.as_deref(), username, email)
}

pub(crate) fn user_ref(r: &dyn crate::sql::Row) -> Result<UserRef> {
    let id = AccountId(r.i64(0)?);
    let username = r.opt_text(3)?;
    let email = r.opt_text(4)?;
    Ok(UserRef {
        id,
        name: display_name(
            id,
            r.opt_text(1)?,
            r.opt_text(2)?,
            username.as_deref(),
            email.as_deref(),
        ),
        email,
    })
}

pub(crate) fn guardianships(tx: &mut dyn Tx, user: AccountId) -> Result<Guardianships> {
    crate::links::require_user(tx, user)?;
    let select = |join: &str, by: &str| {
        format!(
            "SELECT u.id, COALESCE(u.preferred_name, u.first_name), u.last_name, u.username, u.email FROM users u \
             WHERE u.id IN (SELECT r.{join} FROM guardian_relationships r WHERE r.{by} = ?) ORDER BY u.id"
        )
    };
    Ok(Guardianships {
        students: query_vec(
            tx,
            &select("student_id", "guardian_id"),
            &[user.into()],
            user_ref,
        )?,
        guardians: query_vec(
            tx,
            &select("guardian_id", "student_id"),
            &[user.into()],
            user_ref,
        )?,
    })
}
