//! Writing accounts: what every writer shares (the current accounts by id, location names
//! resolved to ids) and `accounts import`, which makes accounts as single sign-on would.

use std::collections::{HashMap, HashSet};

use jiff::Timestamp;
use rostersync_core::directory::{Account, AccountId, Field, MatchKey, Writer};

use super::row::{
    REVISION_COLUMNS, StoredUser, USER_INSERT_COLUMNS, USER_SELECT, created_json, field_bit,
    new_user_values, user_from_row,
};
use crate::sql::{Keys, Rows, Tx, Value, query_opt, ts};
use crate::{ImportSummary, NewAccountRow, Result, SkippedAccount, StoreError};

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
                    StoreError::database(format!("location '{name}' vanished while being created"))
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
    ids: &[AccountId],
    for_update: bool,
) -> Result<HashMap<AccountId, StoredUser>> {
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
    tx.for_each_in(&sql, &[], Keys::Accounts(ids), &mut |r| {
        let u = user_from_row(r)?;
        out.insert(u.user.id, u);
        Ok(())
    })?;
    Ok(out)
}

/// Records a change an administrator (`writer`, encoded) made outside any run as a
/// revision of `user`'s `field`. The caller moves the account's revision on
/// ([`bump_revision`], or in its own update of the row).
pub(crate) fn admin_revision(
    tx: &mut dyn Tx,
    user: AccountId,
    field: &str,
    old: Option<&str>,
    new: Option<&str>,
    writer: &str,
    now: &str,
) -> Result<()> {
    tx.execute(
        "INSERT INTO revisions (user_id, run_id, field, old_value, new_value, writer, at) \
         VALUES (?, NULL, ?, ?, ?, ?, ?)",
        &[
            user.into(),
            field.into(),
            old.into(),
            new.into(),
            writer.into(),
            now.into(),
        ],
    )?;
    Ok(())
}

/// Moves `user`'s revision on and stamps its `updated_at`, as every write to an account
/// does.
pub(crate) fn bump_revision(tx: &mut dyn Tx, user: AccountId, now: &str) -> Result<()> {
    tx.execute(
        "UPDATE users SET revision = revision + 1, updated_at = ? WHERE id = ?",
        &[now.into(), user.into()],
    )?;
    Ok(())
}

const PROVIDERS: [&str; 3] = ["google", "microsoft", "local"];

/// How many new accounts `accounts import` writes at a time (with their revisions): the
/// rows of a million accounts held at once took a gigabyte.
const IMPORT_BATCH: usize = 10_000;

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
        let key = MatchKey::new(&a.email);
        if key.is_empty() {
            return Err(StoreError::Conflict(format!(
                "account #{}: the email is empty",
                i + 1
            )));
        }
        keys.push(key);
    }
    let mut taken: HashSet<MatchKey> = HashSet::new();
    tx.for_each_in(
        "SELECT email_lc FROM users WHERE email_lc {keys}",
        &[],
        Keys::Matches(&keys),
        &mut |r| {
            taken.insert(MatchKey::from_stored(r.text(0)?));
            Ok(())
        },
    )?;

    // Usernames other accounts have (merged ones aside): a row with one is skipped, as a
    // sync skips a new person with one — no two accounts ever share a username.
    let usernames: Vec<MatchKey> = accounts
        .iter()
        .filter_map(|a| clean(&a.username))
        .map(|u| MatchKey::new(&u))
        .collect();
    let mut holders: HashMap<MatchKey, AccountId> = HashMap::new();
    tx.for_each_in(
        "SELECT username_lc, id FROM users WHERE merged_into IS NULL AND username_lc {keys}",
        &[],
        Keys::Matches(&usernames),
        &mut |r| {
            let id = AccountId(r.i64(1)?);
            let slot = holders
                .entry(MatchKey::from_stored(r.text(0)?))
                .or_insert(id);
            *slot = (*slot).min(id);
            Ok(())
        },
    )?;

    let mut summary = ImportSummary::default();
    let mut fresh = Vec::new();
    let mut rows_with: HashMap<MatchKey, usize> = HashMap::new();
    for (i, (a, key)) in accounts.iter().zip(keys).enumerate() {
        if taken.contains(&key) {
            summary.existing.push(a.email.trim().to_owned());
            continue;
        }
        if let Some(username) = clean(&a.username) {
            let ukey = MatchKey::new(&username);
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
        if users.len() == IMPORT_BATCH {
            summary.created += users.len() as u64;
            tx.insert_rows(&users)?;
            tx.insert_rows(&revisions)?;
            users.rows.clear();
            revisions.rows.clear();
        }
        let mut u = Account::blank(AccountId(id));
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
    summary.created += users.len() as u64;
    tx.insert_rows(&users)?;
    tx.insert_rows(&revisions)?;
    Ok(summary)
}
