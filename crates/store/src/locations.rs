//! The directory's locations as the Location Mappings page needs them: the names that
//! exist, and a source's active linked accounts counted by what decides their location
//! (for the preview of a mapping change, [`rostersync_core::relocation`]).

use rostersync_core::directory::Field;
use rostersync_core::relocation::AccountsAt;

use crate::Result;
use crate::sql::{Tx, query_vec};
use crate::users::field_bit;

/// Every location the directory has, by name.
pub(crate) fn location_names(tx: &mut dyn Tx) -> Result<Vec<String>> {
    query_vec(tx, "SELECT name FROM locations ORDER BY name", &[], |r| {
        r.text(0)
    })
}

/// The source's active linked accounts, counted by (primary org as last pulled, current
/// location, who last wrote the location). One pass over the source's links, like
/// `sis_orgs`; the groups are few (schools × locations × writers).
pub(crate) fn accounts_by_location(tx: &mut dyn Tx, source: &str) -> Result<Vec<AccountsAt>> {
    // The writer of a field is its provenance row, else the account's creator when the
    // creation wrote it (users.rs: created_fields).
    query_vec(
        tx,
        "SELECT p.primary_org, loc.name, \
         COALESCE(fp.writer, CASE WHEN (u.created_fields & ?) <> 0 THEN u.created_by END) AS writer, \
         COUNT(*) FROM sis_links l \
         JOIN users u ON u.id = l.user_id \
         LEFT JOIN sis_people p ON p.source = l.source AND p.sourced_id = l.sourced_id \
         LEFT JOIN locations loc ON loc.id = u.location_id \
         LEFT JOIN field_provenance fp ON fp.user_id = u.id AND fp.field = ? \
         WHERE l.source = ? AND u.active = TRUE \
         GROUP BY 1, 2, 3",
        &[
            field_bit(Field::Location).into(),
            Field::Location.as_str().into(),
            source.into(),
        ],
        |r| {
            Ok(AccountsAt {
                org: r.opt_text(0)?,
                location: r.opt_text(1)?,
                writer: r.opt_text(2)?,
                accounts: u64::try_from(r.i64(3)?).unwrap_or(0),
            })
        },
    )
}
