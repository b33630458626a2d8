//! Accounts: how a [`DirUser`] maps to the `users` row, how provenance is kept cheaply,
//! and the reads (the planner's view, listing, lookup, history, counts).
//!
//! Provenance: a first import of a million people must not write twelve million
//! provenance rows. The `users` row remembers who created it (`created_by`) and which
//! fields that writer set (`created_fields`, a bit per field); `field_provenance` holds a
//! row only for a field written *after* creation. [`provenance`] puts the two together
//! into the `DirUser::provenance` the planner reads.

use std::collections::{BTreeSet, HashMap, HashSet};

use jiff::Timestamp;
use rostersync_core::directory::{
    Access, AliasKind, DirUser, Field, Link, MatchRule, UserId, Writer, match_key,
};
use rostersync_core::user_list::{self, SortColumn, name_key};
use rostersync_core::view::{
    AccountState, DirectoryView, LinkedPopulation, RETIRED, SourceState, ViewKeys,
};

use crate::sql::{
    Keys, Row, Rows, Tx, Value, contains_pattern, parse_ts, query_i64, query_opt, query_vec, ts,
};
use crate::{
    ImportSummary, NewAccountRow, Result, RevisionRecord, SisRef, SkippedAccount, StoreError,
    UserCounts, UserQuery, UserRecord,
};

/// The bit of each field in `users.created_fields`. Stored in databases: never renumber.
const FIELD_BITS: [(Field, i64); 12] = [
    (Field::Username, 1 << 0),
    (Field::Email, 1 << 1),
    (Field::FirstName, 1 << 2),
    (Field::MiddleName, 1 << 3),
    (Field::LastName, 1 << 4),
    (Field::PreferredName, 1 << 5),
    (Field::Type, 1 << 6),
    (Field::Grade, 1 << 7),
    (Field::Identifier, 1 << 8),
    (Field::Phone, 1 << 9),
    (Field::Location, 1 << 10),
    (Field::Homeroom, 1 << 11),
];

pub(crate) fn field_bit(f: Field) -> i64 {
    FIELD_BITS
        .iter()
        .find(|(b, _)| *b == f)
        .map_or(0, |(_, bit)| *bit)
}

/// The account columns, in the order [`user_from_row`] reads them.
pub(crate) const USER_SELECT: &str = "SELECT u.id, u.username, u.email, u.first_name, u.middle_name, u.last_name, \
     u.preferred_name, u.user_type, u.access, u.active, u.grade, u.identifier, u.phone, l.name, u.homeroom, \
     u.provider, u.merged_into, u.revision, u.created_by, u.created_fields, u.created_at, u.updated_at \
     FROM users u LEFT JOIN locations l ON l.id = u.location_id";

/// The columns a write sets, in the order of [`user_values`]; `id` first for updates.
pub(crate) const USER_UPDATE_COLUMNS: [&str; 24] = [
    "id",
    "username",
    "username_lc",
    "email",
    "email_lc",
    "first_name",
    "middle_name",
    "last_name",
    "preferred_name",
    "name_lc",
    "user_type",
    "access",
    "active",
    "grade",
    "identifier",
    "phone",
    "location_id",
    "homeroom",
    "grade_key",
    "homeroom_lc",
    "provider",
    "merged_into",
    "revision",
    "updated_at",
];

/// [`USER_UPDATE_COLUMNS`] plus what only a creation sets.
pub(crate) const USER_INSERT_COLUMNS: [&str; 28] = [
    "id",
    "username",
    "username_lc",
    "email",
    "email_lc",
    "first_name",
    "middle_name",
    "last_name",
    "preferred_name",
    "name_lc",
    "user_type",
    "access",
    "active",
    "grade",
    "identifier",
    "phone",
    "location_id",
    "homeroom",
    "grade_key",
    "homeroom_lc",
    "provider",
    "merged_into",
    "revision",
    "updated_at",
    "created_by",
    "created_fields",
    "created_run",
    "created_at",
];

pub(crate) const REVISION_COLUMNS: [&str; 7] = [
    "user_id",
    "run_id",
    "field",
    "old_value",
    "new_value",
    "writer",
    "at",
];

/// An account as stored, with what provenance needs.
#[derive(Debug, Clone)]
pub(crate) struct StoredUser {
    /// Provenance left empty; see [`provenance`].
    pub user: DirUser,
    pub created_by: String,
    pub created_fields: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("stored {what}: {e}"))
}

pub(crate) fn user_from_row(r: &dyn Row) -> Result<StoredUser> {
    let user = DirUser {
        id: r.i64(0)?,
        username: r.opt_text(1)?,
        email: r.opt_text(2)?,
        first_name: r.opt_text(3)?,
        middle_name: r.opt_text(4)?,
        last_name: r.opt_text(5)?,
        preferred_name: r.opt_text(6)?,
        user_type: r.text(7)?.parse().map_err(|e| corrupt("user type", e))?,
        access: r.text(8)?.parse().map_err(|e| corrupt("access level", e))?,
        active: r.bool(9)?,
        grade: r.opt_text(10)?,
        identifier: r.opt_text(11)?,
        phone: r.opt_text(12)?,
        location: r.opt_text(13)?,
        homeroom: r.opt_text(14)?,
        provider: r.opt_text(15)?,
        merged_into: r.opt_i64(16)?,
        revision: r.i64(17)?,
        provenance: Vec::new(),
    };
    Ok(StoredUser {
        user,
        created_by: r.text(18)?,
        created_fields: r.i64(19)?,
        created_at: parse_ts(&r.text(20)?)?,
        updated_at: parse_ts(&r.text(21)?)?,
    })
}

/// The values of [`USER_UPDATE_COLUMNS`], moving the account's text into them.
pub(crate) fn user_values(
    u: DirUser,
    location_id: Option<i64>,
    updated_at: &str,
) -> Vec<Value<'_>> {
    let name_lc = name_key(&u);
    let username_lc = u.username.as_deref().map(match_key);
    let email_lc = u.email.as_deref().map(match_key);
    let grade_key = u.grade.as_deref().and_then(user_list::grade_key);
    let homeroom_lc = u.homeroom.as_deref().and_then(user_list::text_key);
    vec![
        Value::Int(u.id),
        u.username.into(),
        username_lc.into(),
        u.email.into(),
        email_lc.into(),
        u.first_name.into(),
        u.middle_name.into(),
        u.last_name.into(),
        u.preferred_name.into(),
        name_lc.into(),
        u.user_type.as_str().into(),
        u.access.as_str().into(),
        u.active.into(),
        u.grade.into(),
        u.identifier.into(),
        u.phone.into(),
        location_id.into(),
        u.homeroom.into(),
        grade_key.into(),
        homeroom_lc.into(),
        u.provider.into(),
        u.merged_into.into(),
        Value::Int(u.revision),
        updated_at.into(),
    ]
}

/// The values of [`USER_INSERT_COLUMNS`].
pub(crate) fn new_user_values<'a>(
    u: DirUser,
    location_id: Option<i64>,
    created_by: &'a str,
    created_fields: i64,
    run: Option<i64>,
    now: &'a str,
) -> Vec<Value<'a>> {
    let mut v = user_values(u, location_id, now);
    v.extend([
        created_by.into(),
        Value::Int(created_fields),
        run.into(),
        now.into(),
    ]);
    v
}

/// The `new_value` of a `created` revision: the initial values as one JSON object.
pub(crate) fn created_json(u: &DirUser, fields: impl IntoIterator<Item = Field>) -> String {
    let mut m = serde_json::Map::new();
    for f in fields {
        m.insert(
            f.as_str().to_owned(),
            u.get(f).map_or(serde_json::Value::Null, |v| v.into()),
        );
    }
    m.insert("type".into(), u.user_type.as_str().into());
    m.insert("access".into(), u.access.as_str().into());
    m.insert("active".into(), u.active.into());
    if let Some(p) = &u.provider {
        m.insert("provider".into(), p.as_str().into());
    }
    serde_json::Value::Object(m).to_string()
}

/// Who last wrote each field, in field order: a later write's row, else the creator for
/// the fields it set.
pub(crate) fn provenance(
    created_by: &str,
    created_fields: i64,
    written: &[(Field, Writer)],
) -> Result<Vec<(Field, Writer)>> {
    let creator = Writer::decode(created_by);
    let mut out = Vec::new();
    for (f, bit) in FIELD_BITS {
        if let Some((_, w)) = written.iter().find(|(wf, _)| *wf == f) {
            out.push((f, w.clone()));
        } else if created_fields & bit != 0 {
            let w = creator.clone().ok_or_else(|| {
                corrupt("account creator", format!("'{created_by}' is not a writer"))
            })?;
            out.push((f, w));
        }
    }
    out.sort_by_key(|(f, _)| *f);
    Ok(out)
}

fn provenance_row(r: &dyn Row) -> Result<(i64, Field, Writer)> {
    let field: Field = r
        .text(1)?
        .parse()
        .map_err(|e| corrupt("provenance field", e))?;
    let w = r.text(2)?;
    let writer = Writer::decode(&w)
        .ok_or_else(|| corrupt("provenance writer", format!("'{w}' is not a writer")))?;
    Ok((r.i64(0)?, field, writer))
}

/// Resolves location names to ids, creating rows for new names.
#[derive(Debug, Default)]
pub(crate) struct Locations {
    by_name: HashMap<String, i64>,
}

impl Locations {
    pub(crate) fn id(&mut self, tx: &mut dyn Tx, name: Option<&str>) -> Result<Option<i64>> {
        let Some(name) = name else { return Ok(None) };
        if let Some(id) = self.by_name.get(name) {
            return Ok(Some(*id));
        }
        let find = |tx: &mut dyn Tx| {
            query_opt(
                tx,
                "SELECT id FROM locations WHERE name = ?",
                &[name.into()],
                |r| r.i64(0),
            )
        };
        let id = match find(tx)? {
            Some(id) => id,
            None => {
                tx.execute(
                    "INSERT INTO locations (name) VALUES (?) ON CONFLICT (name) DO NOTHING",
                    &[name.into()],
                )?;
                find(tx)?.ok_or_else(|| {
                    StoreError::Database(format!("location '{name}' vanished while being created"))
                })?
            }
        };
        self.by_name.insert(name.to_owned(), id);
        Ok(Some(id))
    }
}

/// Current accounts by id (provenance left empty), for writers.
pub(crate) fn load_users(
    tx: &mut dyn Tx,
    ids: &[i64],
    for_update: bool,
) -> Result<HashMap<i64, StoredUser>> {
    let mut out = HashMap::with_capacity(ids.len());
    if ids.is_empty() {
        return Ok(out);
    }
    let lock = if for_update && tx.dialect() == crate::sql::Dialect::Postgres {
        " FOR UPDATE OF u"
    } else {
        ""
    };
    let sql = format!("{USER_SELECT} WHERE u.id {{keys}}{lock}");
    tx.for_each_in(&sql, &[], Keys::Ints(ids), &mut |r| {
        let u = user_from_row(r)?;
        out.insert(u.user.id, u);
        Ok(())
    })?;
    Ok(out)
}

/// The planner's view: every account (with provenance) and alias added to the links view
/// ([`load_links_view`]).
pub(crate) fn load_view(tx: &mut dyn Tx, source: &str) -> Result<DirectoryView> {
    let mut view = load_links_view(tx, source)?;
    view.add_accounts(all_view_users(tx)?, all_aliases(tx)?);
    Ok(view)
}

/// The planner's view scoped to the accounts `keys` reach, with what planning those
/// people reads of them; the meaning is `MemoryDirectory::scoped_view`. Reached: the
/// accounts the people's links point at, and every account (merged ones too, which the
/// view keeps out of its indexes) whose email match key, identifier or alias is a key.
/// With them: their links and this source's refusals of them; the people's decisions;
/// the population over every link. No source state (only complete full pulls read it).
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
        Keys::Ints(&ids),
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
            refused.push((r.text(0)?, r.i64(1)?));
            Ok(())
        },
    )?;
    let decisions = crate::review::decisions_of(tx, source, &sourced_ids)?;
    let kept_apart = crate::review::kept_apart(tx, source, Some(&sourced_ids))?;
    let population = linked_population(tx, source)?;
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
    let mut links = Vec::new();
    let mut states = Vec::new();
    tx.for_each(
        &format!("{VIEW_LINK_SELECT} WHERE l.source = ?"),
        &[source.into()],
        &mut |r| {
            let l = view_link_from_row(r)?;
            states.push((
                l.user_id,
                AccountState {
                    revision: r.i64(11)?,
                    active: r.bool(12)?,
                },
            ));
            links.push(l);
            Ok(())
        },
    )?;
    let refused = query_vec(
        tx,
        "SELECT sourced_id, user_id FROM link_refusals WHERE source = ?",
        &[source.into()],
        |r| Ok((r.text(0)?, r.i64(1)?)),
    )?;
    let state = crate::roster::source_state(tx, source)?;
    let decisions = crate::review::decisions(tx, source)?;
    let kept_apart = crate::review::kept_apart(tx, source, None)?;
    let accounts = query_i64(tx, "SELECT COUNT(*) FROM users", &[])?;
    Ok(
        DirectoryView::of_links(links, states, accounts.max(0) as u64)
            .with_source_state(refused, state)
            .with_decisions(decisions)
            .with_kept_apart(kept_apart),
    )
}

/// The accounts `keys` reach, whole, and the aliases that reached them
/// (`MemoryDirectory::accounts`): what a full pull adds to its links view; every account
/// for `keys.everyone`.
pub(crate) fn load_accounts(
    tx: &mut dyn Tx,
    source: &str,
    keys: &ViewKeys,
) -> Result<crate::Accounts> {
    if keys.everyone {
        return Ok((all_view_users(tx)?, all_aliases(tx)?));
    }
    let (ids, aliases) = reach(tx, source, keys)?;
    Ok((view_users(tx, &ids)?, aliases))
}

/// Every account, with provenance.
fn all_view_users(tx: &mut dyn Tx) -> Result<Vec<DirUser>> {
    let mut written: HashMap<i64, Vec<(Field, Writer)>> = HashMap::new();
    tx.for_each(
        "SELECT user_id, field, writer FROM field_provenance",
        &[],
        &mut |r| {
            let (id, f, w) = provenance_row(r)?;
            written.entry(id).or_default().push((f, w));
            Ok(())
        },
    )?;
    let mut users = Vec::new();
    tx.for_each(USER_SELECT, &[], &mut |r| {
        let s = user_from_row(r)?;
        let mut u = s.user;
        let w = written.remove(&u.id).unwrap_or_default();
        u.provenance = provenance(&s.created_by, s.created_fields, &w)?;
        users.push(u);
        Ok(())
    })?;
    Ok(users)
}

/// Every alias, as (account, kind, match key).
fn all_aliases(tx: &mut dyn Tx) -> Result<Vec<(UserId, AliasKind, String)>> {
    query_vec(
        tx,
        "SELECT user_id, kind, value_lc FROM aliases",
        &[],
        |r| {
            let kind: AliasKind = r.text(1)?.parse().map_err(|e| corrupt("alias kind", e))?;
            Ok((r.i64(0)?, kind, r.text(2)?))
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
) -> Result<(Vec<i64>, Vec<(UserId, AliasKind, String)>)> {
    let texts = |set: &BTreeSet<String>| set.iter().cloned().collect::<Vec<String>>();
    let mut reached: BTreeSet<i64> = BTreeSet::new();
    tx.for_each_in(
        "SELECT user_id FROM sis_links WHERE source = ? AND sourced_id {keys}",
        &[source.into()],
        Keys::Texts(&texts(&keys.sourced_ids)),
        &mut |r| {
            reached.insert(r.i64(0)?);
            Ok(())
        },
    )?;
    // `email_lc` is the email's match key, as the view keys it. Identifiers are stored
    // as the SIS gave them, trimmed (`SisPerson::from_user`), as the view keys them.
    for (sql, values) in [
        ("SELECT id FROM users WHERE email_lc {keys}", &keys.emails),
        (
            "SELECT id FROM users WHERE username_lc {keys}",
            &keys.usernames,
        ),
        (
            "SELECT id FROM users WHERE identifier {keys}",
            &keys.identifiers,
        ),
    ] {
        tx.for_each_in(sql, &[], Keys::Texts(&texts(values)), &mut |r| {
            reached.insert(r.i64(0)?);
            Ok(())
        })?;
    }
    let mut aliases = Vec::new();
    for kind in [AliasKind::Email, AliasKind::Username] {
        let values: Vec<String> = keys
            .aliases
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, v)| v.clone())
            .collect();
        tx.for_each_in(
            "SELECT user_id, value_lc FROM aliases WHERE kind = ? AND value_lc {keys}",
            &[kind.as_str().into()],
            Keys::Texts(&values),
            &mut |r| {
                let user = r.i64(0)?;
                reached.insert(user);
                aliases.push((user, kind, r.text(1)?));
                Ok(())
            },
        )?;
    }
    Ok((reached.into_iter().collect(), aliases))
}

/// Accounts by id, with provenance.
fn view_users(tx: &mut dyn Tx, ids: &[i64]) -> Result<Vec<DirUser>> {
    let stored = load_users(tx, ids, false)?;
    let mut written: HashMap<i64, Vec<(Field, Writer)>> = HashMap::new();
    tx.for_each_in(
        "SELECT user_id, field, writer FROM field_provenance WHERE user_id {keys}",
        &[],
        Keys::Ints(ids),
        &mut |r| {
            let (id, f, w) = provenance_row(r)?;
            written.entry(id).or_default().push((f, w));
            Ok(())
        },
    )?;
    stored
        .into_values()
        .map(|s| {
            let mut u = s.user;
            let w = written.remove(&u.id).unwrap_or_default();
            u.provenance = provenance(&s.created_by, s.created_fields, &w)?;
            Ok(u)
        })
        .collect()
}

/// This source's active linked accounts, by the person's org and role as last pulled:
/// what `DirectoryView::new` counts over every link.
fn linked_population(tx: &mut dyn Tx, source: &str) -> Result<LinkedPopulation> {
    let mut population = LinkedPopulation::default();
    tx.for_each(
        "SELECT p.primary_org, p.role, COUNT(*) FROM sis_links l JOIN users u ON u.id = l.user_id \
         LEFT JOIN sis_people p ON p.source = l.source AND p.sourced_id = l.sourced_id \
         WHERE l.source = ? AND u.active = TRUE GROUP BY p.primary_org, p.role",
        &[source.into()],
        &mut |r| {
            let n = u64::try_from(r.i64(2)?).map_err(|e| corrupt("link count", e))?;
            population.add(r.opt_text(0)?.as_deref(), r.opt_text(1)?.as_deref(), n);
            Ok(())
        },
    )?;
    Ok(population)
}

/// This source's links with their person's org and role as last pulled (the safeguards
/// count schools and roles), in the order [`view_link_from_row`] reads them, then the
/// account's revision and active flag (columns 11 and 12).
const VIEW_LINK_SELECT: &str = "SELECT l.sourced_id, l.user_id, l.rule, l.record_hash, l.synced_revision, l.linked_at, \
     l.misses, l.deactivated_at, l.previous_access, p.primary_org, p.role, u.revision, u.active FROM sis_links l \
     JOIN users u ON u.id = l.user_id \
     LEFT JOIN sis_people p ON p.source = l.source AND p.sourced_id = l.sourced_id";

fn view_link_from_row(r: &dyn Row) -> Result<Link> {
    let mut l = link_from_row(r)?;
    l.org = r.opt_text(9)?;
    l.role = r.opt_text(10)?;
    Ok(l)
}

/// The link columns, in the order [`link_from_row`] reads them.
pub(crate) const LINK_SELECT: &str = "SELECT sourced_id, user_id, rule, record_hash, synced_revision, linked_at, \
     misses, deactivated_at, previous_access FROM sis_links";

pub(crate) fn link_from_row(r: &dyn Row) -> Result<Link> {
    Ok(Link {
        sourced_id: r.text(0)?,
        user_id: r.i64(1)?,
        rule: r
            .text(2)?
            .parse::<MatchRule>()
            .map_err(|e| corrupt("link rule", e))?,
        // The u64 hash is stored as the i64 with the same bits.
        record_hash: r.i64(3)?.cast_unsigned(),
        synced_revision: r.i64(4)?,
        linked_at: parse_ts(&r.text(5)?)?,
        misses: u32::try_from(r.i64(6)?).map_err(|e| corrupt("link misses", e))?,
        deactivated_at: r.opt_text(7)?.as_deref().map(parse_ts).transpose()?,
        previous_access: r
            .opt_text(8)?
            .map(|a| {
                a.parse::<Access>()
                    .map_err(|e| corrupt("previous access level", e))
            })
            .transpose()?,
        org: None,
        role: None,
    })
}

/// Turns stored accounts into records: provenance and SIS link attached.
fn records(tx: &mut dyn Tx, users: Vec<StoredUser>) -> Result<Vec<UserRecord>> {
    let ids: Vec<i64> = users.iter().map(|u| u.user.id).collect();
    let mut written: HashMap<i64, Vec<(Field, Writer)>> = HashMap::new();
    tx.for_each_in(
        "SELECT user_id, field, writer FROM field_provenance WHERE user_id {keys}",
        &[],
        Keys::Ints(&ids),
        &mut |r| {
            let (id, f, w) = provenance_row(r)?;
            written.entry(id).or_default().push((f, w));
            Ok(())
        },
    )?;
    let mut sis: HashMap<i64, SisRef> = HashMap::new();
    tx.for_each_in(
        "SELECT user_id, source, sourced_id FROM sis_links WHERE user_id {keys}",
        &[],
        Keys::Ints(&ids),
        &mut |r| {
            let link = SisRef {
                source: r.text(1)?,
                sourced_id: r.text(2)?,
            };
            // An account linked by several sources shows the first by name.
            let slot = sis.entry(r.i64(0)?).or_insert_with(|| link.clone());
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

/// The version of the list keys' rule (`grade_key`, `homeroom_lc`): a change to
/// `user_list::grade_key` or `text_key` bumps it, and the next open recomputes the keys.
const LIST_KEYS_VERSION: &str = "1";
const LIST_KEYS_META: &str = "user_list_keys";

/// Fills `grade_key` and `homeroom_lc` of every account with a grade or homeroom when
/// the stored keys were made by another version of the rule (or none: right after
/// migration 7). One pass over the accounts, once.
pub(crate) fn refresh_list_keys(tx: &mut dyn Tx) -> Result<()> {
    if crate::settings::meta_get(tx, LIST_KEYS_META)?.as_deref() == Some(LIST_KEYS_VERSION) {
        return Ok(());
    }
    let mut rows = Rows::new("users", &["id", "grade_key", "homeroom_lc"]);
    tx.for_each(
        "SELECT id, grade, homeroom FROM users WHERE grade IS NOT NULL OR homeroom IS NOT NULL",
        &[],
        &mut |r| {
            let grade = r.opt_text(1)?.as_deref().and_then(user_list::grade_key);
            let homeroom = r.opt_text(2)?.as_deref().and_then(user_list::text_key);
            rows.push(vec![Value::Int(r.i64(0)?), grade.into(), homeroom.into()]);
            Ok(())
        },
    )?;
    if !rows.is_empty() {
        tracing::info!(
            accounts = rows.len(),
            "computing the users list's grade and homeroom keys"
        );
    }
    tx.update_rows(&rows)?;
    crate::settings::meta_set(tx, LIST_KEYS_META, LIST_KEYS_VERSION)
}

/// The SQL value a sort compares. PostgreSQL compares text bytewise, as SQLite does (the
/// `_lc` and key columns are `COLLATE "C"`), so both list in the same order.
fn sort_expr(column: SortColumn, dialect: crate::sql::Dialect) -> &'static str {
    let pg = dialect == crate::sql::Dialect::Postgres;
    match column {
        SortColumn::Id => "u.id",
        SortColumn::Name => "u.name_lc",
        SortColumn::Email => "u.email_lc",
        SortColumn::Username => "u.username_lc",
        SortColumn::Type if pg => "(u.user_type COLLATE \"C\")",
        SortColumn::Type => "u.user_type",
        SortColumn::Grade => "u.grade_key",
        SortColumn::Homeroom => "u.homeroom_lc",
        SortColumn::Location if pg => "(l.name COLLATE \"C\")",
        SortColumn::Location => "l.name",
        SortColumn::Status => "u.active",
    }
}

/// Appends the query's filters (` AND …`) to `sql`; `false` when nothing can match (no
/// location has that name). Grade and homeroom compare the stored keys with the keys of
/// what was asked, through their indexes; the location's name is matched in Rust over the
/// (small) locations table, then by id.
fn push_filters<'q>(
    tx: &mut dyn Tx,
    q: &'q UserQuery,
    sql: &mut String,
    params: &mut Vec<Value<'q>>,
) -> Result<bool> {
    if let Some(active) = q.active {
        sql.push_str(" AND u.active = ?");
        params.push(active.into());
    }
    if let Some(t) = q.user_type {
        sql.push_str(" AND u.user_type = ?");
        params.push(t.as_str().into());
    }
    match q.linked {
        Some(true) => {
            sql.push_str(" AND EXISTS (SELECT 1 FROM sis_links s WHERE s.user_id = u.id)")
        }
        Some(false) => {
            sql.push_str(" AND NOT EXISTS (SELECT 1 FROM sis_links s WHERE s.user_id = u.id)")
        }
        None => {}
    }
    if let Some(grade) = q.grade.as_deref().and_then(user_list::grade_key) {
        sql.push_str(" AND u.grade_key = ?");
        params.push(grade.into());
    }
    if let Some(homeroom) = q.homeroom.as_deref().and_then(user_list::text_key) {
        sql.push_str(" AND u.homeroom_lc = ?");
        params.push(homeroom.into());
    }
    if let Some(wanted) = q.location.as_deref().and_then(user_list::text_key) {
        let ids: Vec<i64> = query_vec(tx, "SELECT id, name FROM locations", &[], |r| {
            Ok((r.i64(0)?, r.text(1)?))
        })?
        .into_iter()
        .filter(|(_, name)| user_list::text_key(name).as_deref() == Some(wanted.as_str()))
        .map(|(id, _)| id)
        .collect();
        if ids.is_empty() {
            return Ok(false);
        }
        sql.push_str(" AND u.location_id IN (");
        sql.push_str(&vec!["?"; ids.len()].join(", "));
        sql.push(')');
        params.extend(ids.into_iter().map(Value::Int));
    }
    if let Some(needle) = q.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let pattern = contains_pattern(&needle.to_lowercase());
        // Old emails and usernames (aliases kept by renames and merges) find the account.
        sql.push_str(
            " AND (u.email_lc LIKE ? ESCAPE '\\' OR u.username_lc LIKE ? ESCAPE '\\' OR u.name_lc LIKE ? ESCAPE '\\' \
             OR u.id IN (SELECT a.user_id FROM aliases a WHERE a.value_lc LIKE ? ESCAPE '\\'))",
        );
        params.extend([
            pattern.clone().into(),
            pattern.clone().into(),
            pattern.clone().into(),
            pattern.into(),
        ]);
    }
    Ok(true)
}

/// `users list`: filtered, ordered by `q.sort` then id (in the same direction), paged by a
/// keyset cursor (`after`, `after_key`), so a page costs the same however deep it is.
///
/// The id order walks the primary key, each filter a condition on the walk (or an
/// index: grade and homeroom). A column sort reads the accounts with a value in the
/// column by `(value, id)` — through an index for name, email, username, grade and
/// homeroom; type, location and status sort every match — then those without one, by id.
pub(crate) fn list_users(tx: &mut dyn Tx, q: &UserQuery) -> Result<Vec<UserRecord>> {
    let mut filters = String::new();
    let mut filter_params: Vec<Value<'_>> = Vec::new();
    if !push_filters(tx, q, &mut filters, &mut filter_params)? {
        return Ok(Vec::new());
    }
    let dialect = tx.dialect();
    let sort = q.sort;
    let (after_op, dir) = if sort.descending {
        ("<", " DESC")
    } else {
        (">", "")
    };
    let page =
        |tx: &mut dyn Tx, condition: &str, extra: Vec<Value<'_>>, order: &str, limit: u32| {
            let mut sql = format!("{USER_SELECT} WHERE 1 = 1{filters}{condition} ORDER BY {order}");
            let mut params = filter_params.clone();
            params.extend(extra);
            sql.push_str(&dialect.limit_offset(limit, 0, &mut params));
            query_vec(tx, &sql, &params, user_from_row)
        };
    let users = if sort.column == SortColumn::Id {
        let (condition, extra) = match q.after {
            Some(id) => (format!(" AND u.id {after_op} ?"), vec![Value::Int(id)]),
            None => (String::new(), Vec::new()),
        };
        page(tx, &condition, extra, &format!("u.id{dir}"), q.limit)?
    } else {
        let e = sort_expr(sort.column, dialect);
        let typed = |k: &str| -> Value<'static> {
            if sort.column == SortColumn::Status {
                Value::Bool(k == "true")
            } else {
                Value::Text(k.to_owned().into())
            }
        };
        // A cursor without a value in a column every account has a value in (type,
        // status): that account's value now.
        let mut after_key = q.after_key.clone();
        if let (Some(id), None, false) = (q.after, &after_key, sort.column.nullable()) {
            after_key = query_opt(
                tx,
                "SELECT u.user_type, u.active FROM users u WHERE u.id = ?",
                &[Value::Int(id)],
                |r| {
                    Ok(match sort.column {
                        SortColumn::Status => r.bool(1)?.to_string(),
                        _ => r.text(0)?,
                    })
                },
            )?;
        }
        // Where the cursor stands: among the accounts with a value, or past them.
        let in_nulls = q.after.is_some() && after_key.is_none();
        let mut users = Vec::new();
        if !in_nulls {
            let mut condition = if sort.column.nullable() {
                format!(" AND {e} IS NOT NULL")
            } else {
                String::new()
            };
            let mut extra = Vec::new();
            if let (Some(id), Some(k)) = (q.after, after_key.as_deref()) {
                // `e >= k` alone is a range an index can serve; the rest breaks ties by id.
                let eq = if sort.descending { "<=" } else { ">=" };
                condition.push_str(&format!(
                    " AND {e} {eq} ? AND ({e} {after_op} ? OR u.id {after_op} ?)"
                ));
                extra.extend([typed(k), typed(k), Value::Int(id)]);
            }
            users = page(
                tx,
                &condition,
                extra,
                &format!("{e}{dir}, u.id{dir}"),
                q.limit,
            )?;
        }
        let room = if q.limit == 0 {
            Some(0)
        } else {
            u32::try_from(users.len())
                .ok()
                .and_then(|n| q.limit.checked_sub(n))
                .filter(|left| *left > 0)
        };
        if sort.column.nullable()
            && let Some(limit) = room
        {
            let mut condition = format!(" AND {e} IS NULL");
            let mut extra = Vec::new();
            if in_nulls && let Some(id) = q.after {
                condition.push_str(&format!(" AND u.id {after_op} ?"));
                extra.push(Value::Int(id));
            }
            users.extend(page(tx, &condition, extra, &format!("u.id{dir}"), limit)?);
        }
        users
    };
    records(tx, users)
}

/// How many accounts match the query's filters (its sort and cursor aside): one COUNT
/// over the same conditions as [`list_users`].
pub(crate) fn count_listed_users(tx: &mut dyn Tx, q: &UserQuery) -> Result<u64> {
    let mut filters = String::new();
    let mut params: Vec<Value<'_>> = Vec::new();
    if !push_filters(tx, q, &mut filters, &mut params)? {
        return Ok(0);
    }
    let n = query_i64(
        tx,
        &format!("SELECT COUNT(*) FROM users u WHERE 1 = 1{filters}"),
        &params,
    )?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// By id (all digits), else email, else username; case-insensitive. A key of digits that
/// is no id is tried as an email and username too (student numbers make usernames).
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
    let lc = match_key(key);
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

pub(crate) fn user_revisions(tx: &mut dyn Tx, user: UserId) -> Result<Vec<RevisionRecord>> {
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
                run: r.opt_i64(4)?,
                at: parse_ts(&r.text(5)?)?,
            })
        },
    )
}

pub(crate) fn user_groups(tx: &mut dyn Tx, user: UserId) -> Result<Vec<String>> {
    query_vec(
        tx,
        "SELECT g.name FROM group_members m JOIN groups g ON g.id = m.group_id WHERE m.user_id = ? ORDER BY g.name",
        &[user.into()],
        |r| r.text(0),
    )
}

pub(crate) fn user_aliases(tx: &mut dyn Tx, user: UserId) -> Result<Vec<crate::AliasRow>> {
    query_vec(
        tx,
        "SELECT kind, value_lc FROM aliases WHERE user_id = ? ORDER BY id",
        &[user.into()],
        |r| {
            Ok(crate::AliasRow {
                kind: r.text(0)?,
                value: r.text(1)?,
            })
        },
    )
}

/// Merged accounts (tombstones) are not counted.
pub(crate) fn count_users(tx: &mut dyn Tx) -> Result<UserCounts> {
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    // One pass over the accounts (and a probe of the links' user index each).
    let (users, active, linked, unlinked_active) = query_opt(
        tx,
        "SELECT COUNT(*), \
         COALESCE(SUM(CASE WHEN active THEN 1 ELSE 0 END), 0), \
         COALESCE(SUM(CASE WHEN linked THEN 1 ELSE 0 END), 0), \
         COALESCE(SUM(CASE WHEN active AND NOT linked THEN 1 ELSE 0 END), 0) \
         FROM (SELECT u.active = TRUE AS active, \
               EXISTS (SELECT 1 FROM sis_links s WHERE s.user_id = u.id) AS linked \
               FROM users u WHERE u.merged_into IS NULL) a",
        &[],
        |r| Ok((r.i64(0)?, r.i64(1)?, r.i64(2)?, r.i64(3)?)),
    )?
    .unwrap_or_default();
    let groups = query_i64(tx, "SELECT COUNT(*) FROM groups", &[])?;
    Ok(UserCounts {
        users: n(users),
        active: n(active),
        linked: n(linked),
        unlinked_active: n(unlinked_active),
        groups: n(groups),
    })
}

const PROVIDERS: [&str; 3] = ["google", "microsoft", "local"];

/// `accounts import`: accounts as single sign-on would have made them.
pub(crate) fn import_accounts(
    tx: &mut dyn Tx,
    accounts: &[NewAccountRow],
    provider: &str,
    now: Timestamp,
) -> Result<ImportSummary> {
    if !PROVIDERS.contains(&provider) {
        return Err(StoreError::Conflict(format!(
            "unknown sign-on provider '{provider}': expected one of {}",
            PROVIDERS.join(", ")
        )));
    }
    let clean = |s: &Option<String>| {
        s.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let mut keys = Vec::with_capacity(accounts.len());
    for (i, a) in accounts.iter().enumerate() {
        let key = match_key(&a.email);
        if key.is_empty() {
            return Err(StoreError::Conflict(format!(
                "account #{}: the email is empty",
                i + 1
            )));
        }
        keys.push(key);
    }
    let mut taken: HashSet<String> = HashSet::new();
    tx.for_each_in(
        "SELECT email_lc FROM users WHERE email_lc {keys}",
        &[],
        Keys::Texts(&keys),
        &mut |r| {
            taken.insert(r.text(0)?);
            Ok(())
        },
    )?;

    // Usernames other accounts have (merged ones aside): a row with one is skipped, as a
    // sync skips a new person with one — no two accounts ever share a username.
    let usernames: Vec<String> = accounts
        .iter()
        .filter_map(|a| clean(&a.username))
        .map(|u| match_key(&u))
        .collect();
    let mut holders: HashMap<String, UserId> = HashMap::new();
    tx.for_each_in(
        "SELECT username_lc, id FROM users WHERE merged_into IS NULL AND username_lc {keys}",
        &[],
        Keys::Texts(&usernames),
        &mut |r| {
            let id = r.i64(1)?;
            let slot = holders.entry(r.text(0)?).or_insert(id);
            *slot = (*slot).min(id);
            Ok(())
        },
    )?;

    let mut summary = ImportSummary::default();
    let mut fresh = Vec::new();
    let mut rows_with: HashMap<String, usize> = HashMap::new();
    for (i, (a, key)) in accounts.iter().zip(keys).enumerate() {
        if taken.contains(&key) {
            summary.existing.push(a.email.trim().to_owned());
            continue;
        }
        if let Some(username) = clean(&a.username) {
            let ukey = match_key(&username);
            let (account, earlier_row) =
                (holders.get(&ukey).copied(), rows_with.get(&ukey).copied());
            if account.is_some() || earlier_row.is_some() {
                let reason = match (account, earlier_row) {
                    (Some(id), _) => format!(
                        "the username {username} is account #{id}'s: an account is not made with it (no two accounts share a username); if they are one person, there is nothing to import, else give this row another username"
                    ),
                    (None, Some(row)) => format!(
                        "the username {username} is also on row {row} of this import, which was imported: give one of them another username"
                    ),
                    (None, None) => String::new(),
                };
                summary.skipped.push(SkippedAccount {
                    row: i + 1,
                    email: a.email.trim().to_owned(),
                    field: "username".to_owned(),
                    value: username,
                    account,
                    earlier_row,
                    reason,
                });
                continue;
            }
            rows_with.insert(ukey, i + 1);
        }
        taken.insert(key);
        fresh.push(a);
    }
    let ids = tx.allocate_ids("users", fresh.len())?;
    let writer = Writer::SignOn(provider.to_owned()).encode();
    let now_s = ts(now);
    let mut users = Rows::new("users", &USER_INSERT_COLUMNS);
    let mut revisions = Rows::new("revisions", &REVISION_COLUMNS);
    for (a, id) in fresh.into_iter().zip(ids) {
        let mut u = DirUser::blank(id);
        u.email = Some(a.email.trim().to_owned());
        u.first_name = clean(&a.first_name);
        u.last_name = clean(&a.last_name);
        u.username = clean(&a.username);
        u.provider = Some(provider.to_owned());
        let set: Vec<Field> = [
            Field::Username,
            Field::Email,
            Field::FirstName,
            Field::LastName,
        ]
        .into_iter()
        .filter(|f| u.get(*f).is_some())
        .collect();
        let bits = set.iter().fold(0, |acc, f| acc | field_bit(*f));
        let initial = created_json(&u, set);
        users.push(new_user_values(u, None, &writer, bits, None, &now_s));
        revisions.push(vec![
            id.into(),
            Value::Null,
            "created".into(),
            Value::Null,
            initial.into(),
            writer.as_str().into(),
            now_s.as_str().into(),
        ]);
    }
    summary.created = users.len() as u64;
    tx.insert_rows(&users)?;
    tx.insert_rows(&revisions)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_has_its_own_bit() {
        let mut seen = 0;
        for f in Field::ALL {
            let bit = field_bit(*f);
            assert_ne!(bit, 0, "{f}");
            assert_eq!(seen & bit, 0, "{f}");
            seen |= bit;
        }
    }

    #[test]
    fn provenance_prefers_later_writes_and_lists_only_created_fields() {
        let bits = field_bit(Field::Email) | field_bit(Field::FirstName);
        let later = [(Field::FirstName, Writer::Source("campus".into()))];
        let p = provenance("sso:google", bits, &later).unwrap();
        assert_eq!(
            p,
            vec![
                (Field::Email, Writer::SignOn("google".into())),
                (Field::FirstName, Writer::Source("campus".into())),
            ]
        );
        assert!(provenance("nobody", bits, &[]).is_err());
    }
}
