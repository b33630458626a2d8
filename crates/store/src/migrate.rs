//! Versioned schema migrations, one SQL file per version and engine
//! (`migrations/{sqlite,postgres}/NNNN_name.sql`), applied in one transaction on open.
//!
//! The version lives in `meta` as `schema_version`. A database newer than this binary is
//! refused rather than used: an older rostersync writing to a newer schema could
//! silently lose data the newer one relies on.

use crate::sql::{Dialect, Tx};
use crate::{Result, StoreError, settings};

pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../migrations/sqlite/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "sync_policies",
        sql: include_str!("../migrations/sqlite/0002_sync_policies.sql"),
    },
    Migration {
        version: 3,
        name: "console",
        sql: include_str!("../migrations/sqlite/0003_console.sql"),
    },
    Migration {
        version: 4,
        name: "safeguards",
        sql: include_str!("../migrations/sqlite/0004_safeguards.sql"),
    },
    Migration {
        version: 5,
        name: "token_expiry",
        sql: include_str!("../migrations/sqlite/0005_token_expiry.sql"),
    },
    Migration {
        version: 6,
        name: "run_warnings",
        sql: include_str!("../migrations/sqlite/0006_run_warnings.sql"),
    },
    Migration {
        version: 7,
        name: "user_list",
        sql: include_str!("../migrations/sqlite/0007_user_list.sql"),
    },
    Migration {
        version: 8,
        name: "kept_apart",
        sql: include_str!("../migrations/sqlite/0008_kept_apart.sql"),
    },
    Migration {
        version: 9,
        name: "push_and_scim_resources",
        sql: include_str!("../migrations/sqlite/0009_push_and_scim_resources.sql"),
    },
    Migration {
        version: 10,
        name: "stale_indexes",
        sql: include_str!("../migrations/sqlite/0010_stale_indexes.sql"),
    },
    Migration {
        version: 11,
        name: "summaries",
        sql: include_str!("../migrations/sqlite/0011_summaries.sql"),
    },
    Migration {
        version: 12,
        name: "run_item_counts",
        sql: include_str!("../migrations/sqlite/0012_run_item_counts.sql"),
    },
    Migration {
        version: 13,
        name: "person_keys",
        sql: include_str!("../migrations/sqlite/0013_person_keys.sql"),
    },
    Migration {
        version: 14,
        name: "duplicate_keys",
        sql: include_str!("../migrations/sqlite/0014_duplicate_keys.sql"),
    },
    Migration {
        version: 15,
        name: "unlinked_accounts",
        sql: include_str!("../migrations/sqlite/0015_unlinked_accounts.sql"),
    },
    Migration {
        version: 16,
        name: "pausable_counts",
        sql: include_str!("../migrations/sqlite/0016_pausable_counts.sql"),
    },
    Migration {
        version: 17,
        name: "held_plan_parts",
        sql: include_str!("../migrations/sqlite/0017_held_plan_parts.sql"),
    },
    Migration {
        version: 18,
        name: "listed_skips",
        sql: include_str!("../migrations/sqlite/0018_listed_skips.sql"),
    },
];

const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../migrations/postgres/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "sync_policies",
        sql: include_str!("../migrations/postgres/0002_sync_policies.sql"),
    },
    Migration {
        version: 3,
        name: "console",
        sql: include_str!("../migrations/postgres/0003_console.sql"),
    },
    Migration {
        version: 4,
        name: "safeguards",
        sql: include_str!("../migrations/postgres/0004_safeguards.sql"),
    },
    Migration {
        version: 5,
        name: "token_expiry",
        sql: include_str!("../migrations/postgres/0005_token_expiry.sql"),
    },
    Migration {
        version: 6,
        name: "run_warnings",
        sql: include_str!("../migrations/postgres/0006_run_warnings.sql"),
    },
    Migration {
        version: 7,
        name: "user_list",
        sql: include_str!("../migrations/postgres/0007_user_list.sql"),
    },
    Migration {
        version: 8,
        name: "kept_apart",
        sql: include_str!("../migrations/postgres/0008_kept_apart.sql"),
    },
    Migration {
        version: 9,
        name: "push_and_scim_resources",
        sql: include_str!("../migrations/postgres/0009_push_and_scim_resources.sql"),
    },
    Migration {
        version: 10,
        name: "stale_indexes",
        sql: include_str!("../migrations/postgres/0010_stale_indexes.sql"),
    },
    Migration {
        version: 11,
        name: "summaries",
        sql: include_str!("../migrations/postgres/0011_summaries.sql"),
    },
    Migration {
        version: 12,
        name: "run_item_counts",
        sql: include_str!("../migrations/postgres/0012_run_item_counts.sql"),
    },
    Migration {
        version: 13,
        name: "person_keys",
        sql: include_str!("../migrations/postgres/0013_person_keys.sql"),
    },
    Migration {
        version: 14,
        name: "duplicate_keys",
        sql: include_str!("../migrations/postgres/0014_duplicate_keys.sql"),
    },
    Migration {
        version: 15,
        name: "unlinked_accounts",
        sql: include_str!("../migrations/postgres/0015_unlinked_accounts.sql"),
    },
    Migration {
        version: 16,
        name: "pausable_counts",
        sql: include_str!("../migrations/postgres/0016_pausable_counts.sql"),
    },
    Migration {
        version: 17,
        name: "held_plan_parts",
        sql: include_str!("../migrations/postgres/0017_held_plan_parts.sql"),
    },
    Migration {
        version: 18,
        name: "listed_skips",
        sql: include_str!("../migrations/postgres/0018_listed_skips.sql"),
    },
];

/// The schema version this binary creates and understands.
pub const SCHEMA_VERSION: i64 = 18;

/// The version whose script creates `account_counts` and `location_counts` empty.
const COUNTS_VERSION: i64 = 11;

/// The version whose script creates `run_item_counts` empty.
const RUN_ITEM_COUNTS_VERSION: i64 = 12;

/// The version whose script creates `duplicate_keys` and `duplicate_key_counts` empty.
const DUPLICATE_KEYS_VERSION: i64 = 14;

/// The version whose script creates `unlinked_accounts` empty.
const UNLINKED_VERSION: i64 = 15;

pub(crate) const VERSION_KEY: &str = "schema_version";

fn migrations(d: Dialect) -> &'static [Migration] {
    match d {
        Dialect::Sqlite => SQLITE,
        Dialect::Postgres => POSTGRES,
    }
}

/// Brings the schema up to [`SCHEMA_VERSION`]. `place` names the database in errors.
pub(crate) fn migrate(tx: &mut dyn Tx, place: &str) -> Result<()> {
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    )?;
    let current = match settings::meta_get(tx, VERSION_KEY)? {
        None => 0,
        Some(v) => v.trim().parse::<i64>().map_err(|_| {
            StoreError::Corrupt(format!(
                "the database at {place} has an unreadable schema_version '{v}'"
            ))
        })?,
    };
    if current > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "the database at {place} has schema version {current}, newer than this rostersync knows \
             (version {SCHEMA_VERSION}): use the rostersync release that wrote it, or a newer one"
        )));
    }
    for m in migrations(tx.dialect())
        .iter()
        .filter(|m| m.version > current)
    {
        tracing::info!(
            version = m.version,
            name = m.name,
            "migrating the database schema"
        );
        tx.execute_batch(m.sql).map_err(|e| {
            StoreError::database(format!(
                "schema migration {:04}_{} failed on {place}: {e}",
                m.version, m.name
            ))
        })?;
        settings::meta_set(tx, VERSION_KEY, &m.version.to_string())?;
    }
    // Keys the schema cannot compute: after the scripts, whenever their rule changed.
    crate::users::refresh_list_keys(tx)?;
    crate::reports::refresh_person_keys(tx)?;
    let rekeyed = crate::users::refresh_dup_keys(tx)?;
    // The counts the triggers keep, when the script that (re)creates them ran.
    if current < COUNTS_VERSION {
        crate::counts::recount(tx)?;
    } else {
        if current < DUPLICATE_KEYS_VERSION || rekeyed {
            crate::counts::recount_dup_keys(tx)?;
        }
        if current < UNLINKED_VERSION {
            crate::counts::recount_unlinked(tx)?;
        }
    }
    if current < RUN_ITEM_COUNTS_VERSION {
        crate::runs::recount_item_counts(tx)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_engines_have_every_version_in_order() {
        for list in [SQLITE, POSTGRES] {
            let versions: Vec<i64> = list.iter().map(|m| m.version).collect();
            let want: Vec<i64> = (1..=SCHEMA_VERSION).collect();
            assert_eq!(versions, want);
        }
        for (a, b) in SQLITE.iter().zip(POSTGRES) {
            assert_eq!(a.name, b.name);
        }
    }
}
