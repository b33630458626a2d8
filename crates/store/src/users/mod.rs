//! Accounts: how a [`Account`](rostersync_core::directory::Account) maps to the `users`
//! row, how provenance is kept cheaply, the reads (the planner's view, listing, lookup,
//! history, counts) and the writes only accounts make (`accounts import`).
//!
//! Provenance: a first import of a million people must not write twelve million
//! provenance rows. The `users` row remembers who created it (`created_by`) and which
//! fields that writer set (`created_fields`, a bit per field); `field_provenance` holds a
//! row only for a field written *after* creation. [`row::provenance`] puts the two
//! together into the `Account::provenance` the planner reads.
//!
//! - `row`: the columns of `users` and `sis_links` and how a row maps to an account or a
//!   link, provenance included;
//! - `view`: the planner's views (whole, scoped, a full pull's links and accounts);
//! - `list`: `users list` (filters, sorts, keyset paging) and its stored keys;
//! - `lookup`: one account by id or key, its history, groups and aliases, the counts;
//! - `write`: what writers share (current accounts by id, location ids) and
//!   `accounts import`.

use std::sync::LazyLock;

use rostersync_core::settings::SourceKind;

mod list;
mod lookup;

/// The names of the account sources (Google Workspace, Entra ID, SCIM connections), whose
/// links are sign-in identities, not SIS people: a `SELECT` of them, its kinds taken from
/// [`SourceKind::is_account_source`], the one list.
pub(crate) fn account_sources() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        let kinds: Vec<String> = SourceKind::ALL
            .into_iter()
            .filter(|k| k.is_account_source())
            .map(|k| format!("'{}'", k.as_str()))
            .collect();
        format!(
            "SELECT name FROM sources WHERE kind IN ({})",
            kinds.join(", ")
        )
    });
    &SQL
}

/// A SQL condition on the account `u`: a SIS source links it. Links of account sources do
/// not count; links of a source no longer configured still do.
pub(crate) fn sis_linked() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "EXISTS (SELECT 1 FROM sis_links s WHERE s.user_id = u.id AND s.source NOT IN ({}))",
            account_sources()
        )
    });
    &SQL
}

mod row;
mod view;
mod write;

pub(crate) use list::{count_listed_users, list_users, refresh_list_keys};
pub(crate) use lookup::{
    count_users, find_user, get_user, user_aliases, user_groups, user_revisions,
};
pub(crate) use row::StoredUser;
pub(crate) use row::{
    LINK_SELECT, REVISION_COLUMNS, USER_INSERT_COLUMNS, USER_UPDATE_COLUMNS, created_json,
    field_bit, link_from_row, new_user_values, refresh_dup_keys, user_values,
};
pub(crate) use view::{
    active_linked, load_accounts, load_links_view, load_scoped_view, school_counts,
};
#[cfg(any(test, feature = "test-support"))]
pub(crate) use view::{load_view, stored_links};
pub(crate) use write::{Locations, admin_revision, bump_revision, import_accounts, load_users};
