//! The directory's locations as the Location Mappings page needs them: the names that
//! exist, a source's active linked accounts counted by primary org (the page's head
//! counts) and by what decides their location (for the preview of a mapping change,
//! [`rostersync_core::relocation`]). Both read `location_counts`, kept by triggers
//! (migration 0011), a few rows per school: no pass over the links per request.

use std::collections::HashMap;

use rostersync_core::relocation::AccountsAt;

use crate::Result;
use crate::sql::{Tx, query_vec};
#[cfg(test)]
use crate::users::field_bit;
#[cfg(test)]
use rostersync_core::directory::Field;

/// Every location the directory has, by name.
pub(crate) fn location_names(tx: &mut dyn Tx) -> Result<Vec<String>> {
    query_vec(tx, "SELECT name FROM locations ORDER BY name", &[], |r| {
        r.text(0)
    })
}

/// The source's active linked accounts, counted by (primary org as last pulled, current
/// location, who last wrote the location). Read from `location_counts` (kept by triggers,
/// migration 0011), which holds '' for no org and no writer and 0 for no location.
pub(crate) fn accounts_by_location(tx: &mut dyn Tx, source: &str) -> Result<Vec<AccountsAt>> {
    let some = |v: String| (!v.is_empty()).then_some(v);
    query_vec(
        tx,
        "SELECT c.org, loc.name, c.writer, CAST(SUM(c.accounts) AS BIGINT) FROM location_counts c \
         LEFT JOIN locations loc ON loc.id = c.location_id \
         WHERE c.source = ? \
         GROUP BY c.org, loc.name, c.writer HAVING SUM(c.accounts) <> 0",
        &[source.into()],
        |r| {
            Ok(AccountsAt {
                org: some(r.text(0)?),
                location: r.opt_text(1)?,
                writer: some(r.text(2)?),
                accounts: u64::try_from(r.i64(3)?).unwrap_or(0),
            })
        },
    )
}

/// The source's active linked accounts by the primary org of their person (those with
/// one), from `location_counts`.
pub(crate) fn accounts_by_org(tx: &mut dyn Tx, source: &str) -> Result<HashMap<String, u64>> {
    let mut people = HashMap::new();
    tx.for_each(
        "SELECT org, CAST(SUM(accounts) AS BIGINT) FROM location_counts \
         WHERE source = ? AND org <> '' GROUP BY org",
        &[source.into()],
        &mut |r| {
            people.insert(r.text(0)?, u64::try_from(r.i64(1)?).unwrap_or(0));
            Ok(())
        },
    )?;
    Ok(people)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The migration and the recount spell the location's provenance field and creation bit
    /// out.
    #[test]
    fn the_triggers_name_the_location_field_and_bit() {
        assert_eq!(field_bit(Field::Location), 1024);
        assert_eq!(Field::Location.as_str(), "location");
        for sql in [
            include_str!("../migrations/sqlite/0011_summaries.sql"),
            include_str!("../migrations/postgres/0011_summaries.sql"),
            include_str!("counts.rs"),
        ] {
            assert!(sql.contains("created_fields & 1024") && sql.contains("field = 'location'"));
        }
    }
}
