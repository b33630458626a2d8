//! The `users` and `sis_links` rows: their columns, the bit each field has in
//! `users.created_fields`, how a row maps to an account (with what provenance needs) or a
//! link and back, and how provenance is put together from the creator and later writes.

use jiff::Timestamp;
use rostersync_core::directory::{
    Access, Account, AccountId, Field, Link, MatchKey, MatchRule, Provenance, Writer,
};
use rostersync_core::reports::account_dup_keys;
use rostersync_core::user_list::{self, name_key};

pub(super) use crate::sql::corrupt;
use crate::sql::{Row, Rows, Tx, Value, concat};
use crate::{Result, RunId};

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

/// The account columns, in the order [`user_from_row`] reads them, then the stored email
/// and username match keys (22 and 23: what a scan by [`HashedKeys`] compares).
///
/// [`HashedKeys`]: rostersync_core::view::HashedKeys
pub(crate) const USER_SELECT: &str = "SELECT u.id, u.username, u.email, u.first_name, u.middle_name, u.last_name, \
     u.preferred_name, u.user_type, u.access, u.active, u.grade, u.identifier, u.phone, l.name, u.homeroom, \
     u.provider, u.merged_into, u.revision, u.created_by, u.created_fields, u.created_at, u.updated_at, \
     u.email_lc, u.username_lc \
     FROM users u LEFT JOIN locations l ON l.id = u.location_id";

/// The columns a write sets, in the order of [`user_values`]; `id` first for updates.
pub(crate) const USER_UPDATE_COLUMNS: [&str; 27] = [
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
    "dupkey_email",
    "dupkey_username",
    "dupkey_identifier",
];

/// [`USER_UPDATE_COLUMNS`] plus what only a creation sets.
pub(crate) const USER_INSERT_COLUMNS: [&str; 31] = concat(
    USER_UPDATE_COLUMNS,
    ["created_by", "created_fields", "created_run", "created_at"],
);

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
    pub user: Account,
    pub created_by: String,
    pub created_fields: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

pub(crate) fn user_from_row(r: &dyn Row) -> Result<StoredUser> {
    let user = Account {
        id: AccountId(r.i64(0)?),
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
        merged_into: r.opt_i64(16)?.map(AccountId),
        revision: r.i64(17)?,
        provenance: Provenance::default(),
    };
    Ok(StoredUser {
        user,
        created_by: r.text(18)?,
        created_fields: r.i64(19)?,
        created_at: r.ts(20)?,
        updated_at: r.ts(21)?,
    })
}

/// The values of [`USER_UPDATE_COLUMNS`], moving the account's text into them.
pub(crate) fn user_values(
    u: Account,
    location_id: Option<i64>,
    updated_at: &str,
) -> Vec<Value<'_>> {
    let name_lc = name_key(&u);
    let username_lc = u.username.as_deref().map(MatchKey::new);
    let email_lc = u.email.as_deref().map(MatchKey::new);
    let grade_key = u.grade.as_deref().and_then(user_list::grade_key);
    let homeroom_lc = u.homeroom.as_deref().and_then(user_list::text_key);
    let [dup_email, dup_username, dup_identifier] = account_dup_keys(
        u.email.as_deref(),
        u.username.as_deref(),
        u.identifier.as_deref(),
    );
    vec![
        Value::from(u.id),
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
        dup_email.into(),
        dup_username.into(),
        dup_identifier.into(),
    ]
}

/// The values of [`USER_INSERT_COLUMNS`].
pub(crate) fn new_user_values<'a>(
    u: Account,
    location_id: Option<i64>,
    created_by: &'a str,
    created_fields: i64,
    run: Option<RunId>,
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
pub(crate) fn created_json(u: &Account, fields: impl IntoIterator<Item = Field>) -> String {
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
) -> Result<Provenance> {
    // The fields the creator still answers for: created, and not written since.
    let created: Vec<Field> = FIELD_BITS
        .iter()
        .filter(|(f, bit)| created_fields & bit != 0 && written.iter().all(|(wf, _)| wf != f))
        .map(|(f, _)| *f)
        .collect();
    let mut out = if created.is_empty() {
        Provenance::default()
    } else {
        let creator = Writer::decode(created_by)
            .ok_or_else(|| corrupt("account creator", format!("'{created_by}' is not a writer")))?;
        Provenance::created_by(creator, created)
    };
    for (f, w) in written {
        out.set(*f, w.clone());
    }
    Ok(out)
}

pub(super) fn provenance_row(r: &dyn Row) -> Result<(AccountId, Field, Writer)> {
    let field: Field = r
        .text(1)?
        .parse()
        .map_err(|e| corrupt("provenance field", e))?;
    let w = r.text(2)?;
    let writer = Writer::decode(&w)
        .ok_or_else(|| corrupt("provenance writer", format!("'{w}' is not a writer")))?;
    Ok((AccountId(r.i64(0)?), field, writer))
}

/// The link columns of `sis_links l`, in the order [`link_from_row`] reads them: a
/// literal, so that every query reading links is made of this one list.
macro_rules! link_columns {
    () => {
        "l.sourced_id, l.user_id, l.rule, l.record_hash, l.synced_revision, l.linked_at, \
         l.misses, l.deactivated_at, l.previous_access"
    };
}
pub(crate) use link_columns;

/// The links, as [`link_from_row`] reads them.
pub(crate) const LINK_SELECT: &str = concat!("SELECT ", link_columns!(), " FROM sis_links l");

pub(crate) fn link_from_row(r: &dyn Row) -> Result<Link> {
    Ok(Link {
        sourced_id: r.text(0)?,
        user_id: AccountId(r.i64(1)?),
        rule: r
            .str(2)?
            .parse::<MatchRule>()
            .map_err(|e| corrupt("link rule", e))?,
        // The u64 hash is stored as the i64 with the same bits.
        record_hash: r.i64(3)?.cast_unsigned(),
        synced_revision: r.i64(4)?,
        linked_at: r.ts(5)?,
        misses: u32::try_from(r.i64(6)?).map_err(|e| corrupt("link misses", e))?,
        deactivated_at: r.opt_ts(7)?,
        previous_access: r
            .opt_str(8)?
            .map(|a| {
                a.parse::<Access>()
                    .map_err(|e| corrupt("previous access level", e))
            })
            .transpose()?,
        org: None,
        role: None,
    })
}

/// The version of the duplicates report's key rule (`users.dupkey_*`,
/// `account_dup_keys`): a change to the rule bumps it, and the next open computes the
/// keys again.
const DUP_KEYS_VERSION: &str = "1";
const DUP_KEYS_META: &str = "duplicate_keys";
/// Accounts per batch of [`refresh_dup_keys`].
const DUP_KEYS_BATCH: i64 = 10_000;

/// Fills every account's `dupkey_*` columns when they were made by another version of
/// the rule (or none: right after migration 14, or a restore of an older backup), a batch
/// of accounts at a time. On SQLite the per-row triggers that keep the report's keys are
/// taken away meanwhile (put back from their own text, in the same transaction), so
/// `duplicate_keys` must be made again after it: `true` when it ran, and the caller then
/// keys the report again (the migration with `counts::recount_dup_keys`, a restore with
/// the count of everything that ends its wide write).
pub(crate) fn refresh_dup_keys(tx: &mut dyn Tx) -> Result<bool> {
    if crate::settings::meta_get(tx, DUP_KEYS_META)?.as_deref() == Some(DUP_KEYS_VERSION) {
        return Ok(false);
    }
    crate::counts::without_sqlite_triggers(tx, &["duplicate_keys_*"], fill_dup_keys)?;
    crate::settings::meta_set(tx, DUP_KEYS_META, DUP_KEYS_VERSION)?;
    Ok(true)
}

/// Writes every account's `dupkey_*` columns, a batch of accounts at a time.
fn fill_dup_keys(tx: &mut dyn Tx) -> Result<()> {
    let mut after = 0i64;
    let mut done = 0u64;
    loop {
        let mut rows = Rows::new(
            "users",
            &["id", "dupkey_email", "dupkey_username", "dupkey_identifier"],
        );
        tx.for_each(
            "SELECT id, email, username, identifier FROM users WHERE id > ? ORDER BY id LIMIT ?",
            &[Value::Int(after), Value::Int(DUP_KEYS_BATCH)],
            &mut |r| {
                let id = r.i64(0)?;
                let (email, username, identifier) =
                    (r.opt_text(1)?, r.opt_text(2)?, r.opt_text(3)?);
                let [e, u, i] =
                    account_dup_keys(email.as_deref(), username.as_deref(), identifier.as_deref());
                rows.push(vec![Value::Int(id), e.into(), u.into(), i.into()]);
                after = id;
                Ok(())
            },
        )?;
        if rows.is_empty() {
            break;
        }
        done += rows.len() as u64;
        tx.update_rows(&rows)?;
    }
    if done > 0 {
        tracing::info!(accounts = done, "computed the duplicates report's keys");
    }
    Ok(())
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
        let pairs: Vec<(Field, Writer)> = p.iter().map(|(f, w)| (f, w.clone())).collect();
        assert_eq!(
            pairs,
            [
                (Field::Email, Writer::SignOn("google".into())),
                (Field::FirstName, Writer::Source("campus".into())),
            ]
        );
        assert!(provenance("nobody", bits, &[]).is_err());
        // A creator nobody can read is no matter once every field it wrote was written again.
        let both = [
            (Field::Email, Writer::Admin("alice".into())),
            (Field::FirstName, Writer::Source("campus".into())),
        ];
        let p = provenance("nobody", bits, &both).unwrap();
        assert_eq!(p.writer_of(Field::Email), Some(&both[0].1));
    }
}
