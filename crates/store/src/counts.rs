//! The counts the console reads on every page (`account_counts`, `location_counts`),
//! kept by the database's triggers (migration 0011), filled here: after the migration
//! that creates them, and after a write that paused them.
//!
//! A trigger costs a few statements per row it sees; a first import of a million people
//! pays that a million times. On SQLite a write that touches a wide share of the
//! directory takes the triggers away instead and counts everything again once at its
//! end, in the same transaction (one writer at a time: nobody else writes meanwhile, and
//! a rollback puts the triggers back with the rest). PostgreSQL's triggers run once per
//! statement over all its rows; in a wide write they are told to do nothing and the
//! tables made again at its end.

use std::collections::{BTreeMap, BTreeSet};

use rostersync_core::planner::WIDE_SHARE;

use crate::Result;
use crate::sql::{Dialect, Row, Tx, query_i64, query_vec};

/// Below this many rows written, the triggers' cost is never worth a count of everything.
pub(crate) const PAUSE_MIN_WRITES: usize = 1_000;

/// Whether a write of `writes` rows into a directory of `accounts` accounts pauses the
/// triggers: from [`PAUSE_MIN_WRITES`] rows, when they are at least one in
/// [`WIDE_SHARE`] of the accounts (a count of everything costs about a tenth of the
/// triggers per row).
pub(crate) fn pauses(writes: usize, accounts: u64) -> bool {
    writes >= PAUSE_MIN_WRITES && (writes as u64).saturating_mul(WIDE_SHARE) >= accounts
}

/// Runs `write` in `tx`; when [`pauses`] says so, on SQLite with the counting triggers
/// dropped before it and created again after it from their own text, and everything
/// counted again in between (a trigger left in place but told to do nothing would still
/// be run per row; DDL is part of SQLite's transaction, so a failed write puts the
/// triggers back with everything else); on PostgreSQL see [`paused_on_postgres`]. Into a
/// (nearly) empty directory, the indexes of a person's details are built after the write
/// ([`DeferredIndexes`]).
/// `writes` is how many accounts the write touches; `usize::MAX` for a restore.
pub(crate) fn paused_if_wide<T>(
    tx: &mut dyn Tx,
    writes: usize,
    write: impl FnOnce(&mut dyn Tx) -> Result<T>,
) -> Result<T> {
    if writes < PAUSE_MIN_WRITES {
        return write(tx);
    }
    let accounts = query_i64(
        tx,
        "SELECT CAST(COALESCE(SUM(accounts), 0) AS BIGINT) FROM account_counts",
        &[],
    )?;
    if !pauses(writes, u64::try_from(accounts).unwrap_or(0)) {
        return write(tx);
    }
    if tx.dialect() == Dialect::Postgres {
        return paused_on_postgres(tx, writes, write);
    }
    let deferred = DeferredIndexes::dropped(tx, writes)?;
    without_sqlite_triggers(
        tx,
        &[
            "account_counts_*",
            "location_counts_*",
            "duplicate_keys_*",
            "unlinked_accounts_*",
        ],
        |tx| {
            let out = write(tx)?;
            deferred.built(tx)?;
            recount(tx)?;
            Ok(out)
        },
    )
}

/// Runs `f` with SQLite's triggers whose names match one of `globs` taken away, and
/// creates them again after it from their own text, in the same transaction (a failed `f`
/// rolls the drop back with everything else). On PostgreSQL it only runs `f`.
pub(crate) fn without_sqlite_triggers<T>(
    tx: &mut dyn Tx,
    globs: &[&str],
    f: impl FnOnce(&mut dyn Tx) -> Result<T>,
) -> Result<T> {
    if tx.dialect() != Dialect::Sqlite {
        return f(tx);
    }
    let test: Vec<String> = globs.iter().map(|g| format!("name GLOB '{g}'")).collect();
    let triggers = query_vec(
        tx,
        &format!(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND ({}) ORDER BY name",
            test.join(" OR ")
        ),
        &[],
        |r| Ok((r.text(0)?, r.text(1)?)),
    )?;
    for (name, _) in &triggers {
        tx.execute_batch(&format!("DROP TRIGGER {name}"))?;
    }
    let out = f(tx)?;
    for (_, sql) in &triggers {
        tx.execute_batch(sql)?;
    }
    Ok(out)
}

/// PostgreSQL's wide write: every trigger that keeps a derived table (the console counts,
/// migration 0016; the reports' keys and unlinked accounts, 0014 and 0015) does nothing
/// while `rostersync.derived_paused` is on in this transaction (each costs a few
/// statements over the rows of every statement a first import runs), and all five tables
/// are made again at the end under a lock. Other transactions' triggers still run: the
/// lock waits for those that wrote before it (so the recount sees their rows and replaces
/// what they appended) and holds back the others' appends until this commits (their rows,
/// which the recount could not see, then add to it). The tables are locked in the order a
/// write of accounts fires their triggers, so this never waits in the opposite order of
/// such a writer. Readers are not held back, but for the duplicates report's: its tables
/// are emptied by `TRUNCATE` ([`recount_dup_keys`]), which makes its readers wait for the
/// commit. A write into a (nearly) empty directory (a first import, a restore) builds the
/// indexes of a person's details after its rows are in ([`DeferredIndexes`]): when no
/// other transaction holds the lock or those tables, it takes them at its start instead,
/// and the readers of those tables wait for it too.
fn paused_on_postgres<T>(
    tx: &mut dyn Tx,
    writes: usize,
    write: impl FnOnce(&mut dyn Tx) -> Result<T>,
) -> Result<T> {
    tx.execute_batch("SELECT set_config('rostersync.derived_paused', 'on', true)")?;
    let deferred = DeferredIndexes::dropped(tx, writes)?;
    let out = write(tx)?;
    deferred.built(tx)?;
    // Before the lock: other writers' counts wait only for the recount, and the recount
    // is planned with the new sizes too.
    analyze_after_wide_write(tx)?;
    tx.execute_batch("SELECT set_config('rostersync.derived_paused', 'off', true)")?;
    tx.execute_batch(LOCK_DERIVED)?;
    recount(tx)?;
    Ok(out)
}

/// Whether `table` holds fewer than `rows` rows: the planner's estimate first (a wide
/// change in a large directory stops there), then the rows themselves, counted no
/// further than `rows`.
fn holds_fewer(tx: &mut dyn Tx, table: &str, rows: i64) -> Result<bool> {
    if tx.dialect() == Dialect::Postgres {
        let estimate = query_i64(
            tx,
            "SELECT CAST(GREATEST(reltuples, 0) AS BIGINT) FROM pg_class WHERE oid = to_regclass(?)",
            &[table.into()],
        )?;
        if estimate >= rows {
            return Ok(false);
        }
    }
    let held = query_i64(
        tx,
        &format!("SELECT COUNT(*) FROM (SELECT 1 FROM {table} LIMIT ?) AS held"),
        &[rows.into()],
    )?;
    Ok(held < rows)
}

/// A write defers the details' indexes only into a directory holding fewer accounts than
/// one in this many of those it writes ([`DeferredIndexes::dropped`]).
const DEFERRING_SHARE: i64 = 4;

/// PostgreSQL: takes the derived tables' lock ([`LOCK_DERIVED`]) and `tables` whole
/// (`ACCESS EXCLUSIVE`), each only if no other transaction holds it; `false`, with
/// neither taken (the block's own subtransaction rolled back), if one does.
fn locked_without_waiting(tx: &mut dyn Tx, tables: &[&str]) -> Result<bool> {
    // Names from `DEFERRING_TABLES`, not from input.
    let details = tables.join(", ");
    tx.execute_batch(&format!(
        "SELECT set_config('rostersync.details_locked', 'off', true);
         DO $$ BEGIN
             {LOCK_DERIVED} NOWAIT;
             LOCK TABLE {details} IN ACCESS EXCLUSIVE MODE NOWAIT;
             PERFORM set_config('rostersync.details_locked', 'on', true);
         EXCEPTION WHEN lock_not_available THEN
             NULL;
         END $$;"
    ))?;
    let locked = query_i64(
        tx,
        "SELECT CAST(CASE WHEN current_setting('rostersync.details_locked') = 'on' THEN 1 ELSE 0 END AS BIGINT)",
        &[],
    )?;
    Ok(locked == 1)
}

/// The tables of a person's details (the SIS card, groups, guardians, history, where a
/// field came from) that a first import (or a restore) fills: a wide write into a
/// directory holding fewer than a [`DEFERRING_SHARE`] of the accounts it writes builds
/// their secondary indexes after its rows are in ([`DeferredIndexes`]). The accounts, links and run items keep theirs:
/// the account lists, the counts and the run's own page read them while it runs.
pub const DEFERRING_TABLES: [&str; 5] = [
    "sis_people",
    "group_members",
    "guardian_relationships",
    "revisions",
    "field_provenance",
];

/// The query listing a table's secondary indexes on PostgreSQL (neither primary nor
/// unique: a key's or a constraint's index is left alone), each as (its name as `DROP
/// INDEX` takes it, its definition), the table's name its one parameter (`?`): what a
/// first import builds after its rows ([`DeferredIndexes`]), and the bench's store floor
/// too.
pub const SECONDARY_INDEXES_POSTGRES: &str = "SELECT CAST(x.indexrelid AS regclass)::text, pg_get_indexdef(x.indexrelid) \
     FROM pg_index x \
     WHERE x.indrelid = to_regclass(?) AND NOT x.indisprimary AND NOT x.indisunique \
     ORDER BY 1";

/// [`SECONDARY_INDEXES_POSTGRES`] on SQLite: a key's or a constraint's index has no text,
/// and a unique one is left alone.
pub const SECONDARY_INDEXES_SQLITE: &str = "SELECT name, sql FROM sqlite_master \
     WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL \
     AND sql NOT LIKE 'CREATE UNIQUE%' \
     ORDER BY 1";

/// The secondary indexes (neither primary nor unique: no constraint is lifted) of the
/// [`DEFERRING_TABLES`] a wide write fills from (nearly) empty, dropped before the write
/// and built again after it, in the same transaction (a failed write puts them back with
/// everything else). Kept through the write, each row's entries go one by one into
/// B-trees whose pages are touched at random; built after, an index is one sort
/// (performance.md, *A first import builds the indexes of a person's details after*). A
/// table holding at least as many rows as the write touches accounts keeps its indexes: a
/// rebuild would cost more than it saves. What the drop costs: the write's own lookups by
/// those columns scan a table no larger than the write (the apply reads people by their
/// keys); on SQLite nothing else (one writer at a time; a reader keeps the snapshot it
/// began with); on PostgreSQL, until the commit, readers and writers of such a table
/// wait (`ACCESS EXCLUSIVE`), and so do other writers of accounts and links (their
/// triggers' counts wait for the derived tables' lock, taken before the drop:
/// [`DeferredIndexes::dropped`]), as every other writer waits for a write on SQLite. Two
/// such writers could still wait for each other through rows both change (an account
/// both link), which PostgreSQL ends by failing one (its sync fails whole, nothing
/// written); into a directory this empty, such rows are few. A run that moves a link
/// (a pilot's people taken up again) looks up the moved account's groups and guardians
/// by a column whose index waits: a scan of each table per move.
struct DeferredIndexes {
    /// (the index's name as `DROP INDEX` takes it, its definition).
    indexes: Vec<(String, String)>,
}

impl DeferredIndexes {
    /// Drops the indexes a write of `writes` accounts builds after it: only into a
    /// directory of fewer than a [`DEFERRING_SHARE`] of that many accounts (a first import,
    /// a restore: it changes almost no account another transaction could be holding). On
    /// PostgreSQL it first takes, without waiting, the derived tables' lock the recount
    /// takes at the end and the details tables whole; when another transaction holds
    /// either (another wide write, a console write in progress), it drops nothing and the
    /// write goes on as any other (its lock at its recount), so it never waits holding one
    /// for the other. Another writer of accounts then waits for this one at its first
    /// count (its triggers), holding nothing this write needs, rather than at a details
    /// table while holding a count this write's recount would wait for (a deadlock).
    fn dropped(tx: &mut dyn Tx, writes: usize) -> Result<DeferredIndexes> {
        let writes = i64::try_from(writes).unwrap_or(i64::MAX);
        let none = DeferredIndexes {
            indexes: Vec::new(),
        };
        if !holds_fewer(tx, "users", writes / DEFERRING_SHARE)? {
            return Ok(none);
        }
        let secondary = match tx.dialect() {
            Dialect::Postgres => SECONDARY_INDEXES_POSTGRES,
            Dialect::Sqlite => SECONDARY_INDEXES_SQLITE,
        };
        let mut tables = Vec::new();
        let mut indexes = Vec::new();
        for table in DEFERRING_TABLES {
            if holds_fewer(tx, table, writes)? {
                let of_table = query_vec(tx, secondary, &[table.into()], |r| {
                    Ok((r.text(0)?, r.text(1)?))
                })?;
                if !of_table.is_empty() {
                    tables.push(table);
                    indexes.extend(of_table);
                }
            }
        }
        if indexes.is_empty() {
            return Ok(none);
        }
        if tx.dialect() == Dialect::Postgres && !locked_without_waiting(tx, &tables)? {
            return Ok(none);
        }
        for (name, _) in &indexes {
            tx.execute_batch(&format!("DROP INDEX {name}"))?;
        }
        Ok(DeferredIndexes { indexes })
    }

    /// Builds the dropped indexes again, each from its own definition, with room to sort
    /// in memory for the rest of the transaction.
    fn built(self, tx: &mut dyn Tx) -> Result<()> {
        if self.indexes.is_empty() {
            return Ok(());
        }
        if tx.dialect() == Dialect::Postgres {
            tx.execute_batch("SET LOCAL maintenance_work_mem = '256MB'")?;
        }
        for (_, definition) in &self.indexes {
            tx.execute_batch(definition)?;
        }
        Ok(())
    }
}

/// PostgreSQL: the derived tables a recount replaces, locked in the order a write of
/// accounts fires their triggers ([`paused_on_postgres`]).
const LOCK_DERIVED: &str = "LOCK TABLE account_counts, duplicate_keys, duplicate_key_counts, \
                            location_counts, unlinked_accounts IN EXCLUSIVE MODE";

/// Tables a wide write fills: their statistics are taken again at its end.
const WIDE_WRITE_TABLES: &str =
    "users, sis_links, sis_people, field_provenance, run_items, revisions, group_members";

/// Gives PostgreSQL's planner the sizes a wide write left. Until autovacuum gets to
/// them (minutes later, or never before the next sync), tables a first import filled
/// keep the statistics of empty ones, and the next sync's links view is planned as a
/// million index probes: at 1 M people its load took 5.8 s, 3.9–4.4 s once analyzed. The
/// sample is bounded (~0.1–0.3 s a table); a role that does not own the tables gets a
/// warning from PostgreSQL, not an error.
fn analyze_after_wide_write(tx: &mut dyn Tx) -> Result<()> {
    tx.execute_batch(&format!("ANALYZE {WIDE_WRITE_TABLES}"))
}

/// Every account not merged away, counted from the accounts and links as
/// `account_counts` keeps them: (sources, active, accounts).
fn counted_accounts(dialect: Dialect) -> &'static str {
    match dialect {
        // The sources of each account joined from an ordered subquery: `group_concat(…
        // ORDER BY …)` needs SQLite 3.44.
        Dialect::Sqlite => {
            "SELECT sources, active, COUNT(*) FROM (
                SELECT COALESCE((SELECT group_concat(source, ',')
                                 FROM (SELECT DISTINCT l.source FROM sis_links l
                                       WHERE l.user_id = u.id ORDER BY 1)), '') AS sources,
                       u.active AS active
                FROM users u WHERE u.merged_into IS NULL
            ) GROUP BY sources, active"
        }
        Dialect::Postgres => {
            "SELECT COALESCE(s.sources, ''), u.active, COUNT(*)
             FROM users u
             LEFT JOIN (SELECT user_id, string_agg(DISTINCT source, ',' ORDER BY source) AS sources
                        FROM sis_links GROUP BY user_id) s ON s.user_id = u.id
             WHERE u.merged_into IS NULL
             GROUP BY 1, 2"
        }
    }
}

/// Every active linked account, counted from the links, accounts and people as
/// `location_counts` keeps them: (source, org, location_id, writer, accounts).
const COUNTED_LOCATIONS: &str =
    "SELECT l.source, COALESCE(p.primary_org, ''), COALESCE(u.location_id, 0),
        COALESCE(fp.writer, CASE WHEN (u.created_fields & 1024) <> 0 THEN u.created_by END, ''),
        COUNT(*)
 FROM sis_links l
 JOIN users u ON u.id = l.user_id
 LEFT JOIN sis_people p ON p.source = l.source AND p.sourced_id = l.sourced_id
 LEFT JOIN field_provenance fp ON fp.user_id = u.id AND fp.field = 'location'
 WHERE u.active = TRUE
 GROUP BY 1, 2, 3, 4";

/// Counts every account and link again, and keys the duplicates and unlinked reports
/// again, replacing what the tables held.
pub(crate) fn recount(tx: &mut dyn Tx) -> Result<()> {
    recount_dup_keys(tx)?;
    recount_unlinked(tx)?;
    let accounts = counted_accounts(tx.dialect());
    tx.execute_batch(&format!(
        "DELETE FROM account_counts;
         INSERT INTO account_counts (sources, active, accounts) {accounts};
         DELETE FROM location_counts;
         INSERT INTO location_counts (source, org, location_id, writer, accounts)
         {COUNTED_LOCATIONS};"
    ))
}

/// The counts the database keeps (`account_counts`, `location_counts`: the console's
/// figures and the safeguards' population of each school) against the same counts made
/// again from the accounts, links and people, row by row.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CountsCheck {
    /// Rows compared: those with a count other than 0 in the kept tables or the recount.
    pub rows: usize,
    /// The rows whose kept count is not the recount's.
    pub differing: Vec<CountDiff>,
}

/// One kept count that a recount does not confirm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountDiff {
    /// `account_counts` or `location_counts`.
    pub table: &'static str,
    /// The row's key, as `column=value` pairs.
    pub key: String,
    pub kept: i64,
    pub counted: i64,
}

/// Compares the kept counts with a recount ([`CountsCheck`]); writes nothing.
pub(crate) fn check(tx: &mut dyn Tx) -> Result<CountsCheck> {
    let mut check = CountsCheck::default();
    let accounts = counted_accounts(tx.dialect());
    let account = |r: &dyn Row| {
        let key = format!("sources={:?} active={}", r.str(0)?, r.bool(1)?);
        Ok((key, r.i64(2)?))
    };
    compare(
        tx,
        &mut check,
        "account_counts",
        "SELECT sources, active, accounts FROM account_counts",
        accounts,
        account,
    )?;
    let location = |r: &dyn Row| {
        let key = format!(
            "source={} org={:?} location_id={} writer={:?}",
            r.str(0)?,
            r.str(1)?,
            r.i64(2)?,
            r.str(3)?
        );
        Ok((key, r.i64(4)?))
    };
    compare(
        tx,
        &mut check,
        "location_counts",
        "SELECT source, org, location_id, writer, accounts FROM location_counts",
        COUNTED_LOCATIONS,
        location,
    )?;
    Ok(check)
}

/// Adds to `check` the rows of `table` (read by `kept`) whose count is not the one
/// `counted` makes; `row` reads a row of either query as its key and its count.
fn compare(
    tx: &mut dyn Tx,
    check: &mut CountsCheck,
    table: &'static str,
    kept: &str,
    counted: &str,
    row: impl Fn(&dyn Row) -> Result<(String, i64)>,
) -> Result<()> {
    let read = |tx: &mut dyn Tx, sql: &str| -> Result<BTreeMap<String, i64>> {
        let mut map = BTreeMap::new();
        for (k, n) in query_vec(tx, sql, &[], &row)? {
            *map.entry(k).or_insert(0) += n;
        }
        map.retain(|_, n| *n != 0);
        Ok(map)
    };
    let kept = read(tx, kept)?;
    let counted = read(tx, counted)?;
    let keys: BTreeSet<&String> = kept.keys().chain(counted.keys()).collect();
    check.rows += keys.len();
    for k in keys {
        let (a, b) = (
            kept.get(k).copied().unwrap_or(0),
            counted.get(k).copied().unwrap_or(0),
        );
        if a != b {
            check.differing.push(CountDiff {
                table,
                key: k.clone(),
                kept: a,
                counted: b,
            });
        }
    }
    Ok(())
}

/// Counts every account and link again ([`recount`]) under the lock a wide write takes
/// on PostgreSQL, so other writers' triggers neither run beside the recount nor are lost.
pub(crate) fn recount_now(tx: &mut dyn Tx) -> Result<()> {
    if tx.dialect() == Dialect::Postgres {
        tx.execute_batch(LOCK_DERIVED)?;
    }
    recount(tx)
}

/// Fills `duplicate_keys` and `duplicate_key_counts` again from the accounts' key columns
/// (migration 0014): the keys of every active account not merged away, in key order, then
/// how many accounts hold each in one pass. The keys' counting triggers are kept out of
/// it: taken away on SQLite, paused on PostgreSQL (migration 0016; their per-statement
/// upsert of the counts cost more than the pass).
pub(crate) fn recount_dup_keys(tx: &mut dyn Tx) -> Result<()> {
    // TRUNCATE on PostgreSQL: no dead rows left behind (it fires no delete trigger).
    let empty = match tx.dialect() {
        Dialect::Sqlite => "DELETE FROM duplicate_keys; DELETE FROM duplicate_key_counts;",
        Dialect::Postgres => "TRUNCATE duplicate_keys, duplicate_key_counts;",
    };
    let fill = format!(
        "{empty}
         INSERT INTO duplicate_keys (key, user_id)
         SELECT DISTINCT k, id FROM (
             SELECT dupkey_email AS k, id FROM users WHERE active = TRUE AND merged_into IS NULL
             UNION ALL
             SELECT dupkey_username, id FROM users WHERE active = TRUE AND merged_into IS NULL
             UNION ALL
             SELECT dupkey_identifier, id FROM users WHERE active = TRUE AND merged_into IS NULL
         ) keyed WHERE k IS NOT NULL ORDER BY 1, 2;
         INSERT INTO duplicate_key_counts (key, accounts)
         SELECT key, COUNT(*) FROM duplicate_keys GROUP BY key ORDER BY key;"
    );
    if tx.dialect() == Dialect::Postgres {
        return paused_here_on_postgres(tx, |tx| tx.execute_batch(&fill));
    }
    without_sqlite_triggers(tx, &["duplicate_keys_count_*"], |tx| {
        tx.execute_batch(&fill)
    })
}

/// Runs `f` with `rostersync.derived_paused` on in this transaction, and off after it.
/// Off is right for every caller: after a paused wide write's own writes (it recounts
/// everything next), and where nothing was paused (the migration). Turned off early, a
/// pause would only cost speed: the triggers would count, and the recount replace it.
fn paused_here_on_postgres<T>(
    tx: &mut dyn Tx,
    f: impl FnOnce(&mut dyn Tx) -> Result<T>,
) -> Result<T> {
    tx.execute_batch("SELECT set_config('rostersync.derived_paused', 'on', true)")?;
    let out = f(tx)?;
    tx.execute_batch("SELECT set_config('rostersync.derived_paused', 'off', true)")?;
    Ok(out)
}

/// Fills `unlinked_accounts` again (migration 0015): the active accounts not merged away
/// that no SIS source links.
pub(crate) fn recount_unlinked(tx: &mut dyn Tx) -> Result<()> {
    tx.execute_batch(&format!(
        "DELETE FROM unlinked_accounts;
         INSERT INTO unlinked_accounts (user_id)
         SELECT u.id FROM users u
         WHERE u.active = TRUE AND u.merged_into IS NULL AND NOT {};",
        crate::users::sis_linked()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The triggers of migration 0015 spell the account source kinds: the same as
    /// `SourceKind::is_account_source`.
    #[test]
    fn the_unlinked_triggers_know_the_account_sources() {
        use rostersync_core::settings::SourceKind;
        let kinds: Vec<String> = SourceKind::ALL
            .into_iter()
            .filter(|k| k.is_account_source())
            .map(|k| format!("'{}'", k.as_str()))
            .collect();
        let spelled = format!("kind IN ({})", kinds.join(", "));
        for script in [
            include_str!("../migrations/sqlite/0015_unlinked_accounts.sql"),
            include_str!("../migrations/postgres/0015_unlinked_accounts.sql"),
        ] {
            let lists = script.matches("kind IN (").count();
            assert!(lists >= 4, "{lists}");
            assert_eq!(script.matches(&spelled).count(), lists, "{spelled}");
        }
    }

    #[test]
    fn a_wide_write_pauses_and_a_narrow_one_does_not() {
        // An empty directory: every write from the floor up is wide.
        assert!(pauses(PAUSE_MIN_WRITES, 0));
        assert!(!pauses(PAUSE_MIN_WRITES - 1, 0));
        // One in eight of a million accounts, and just under it.
        assert!(pauses(125_000, 1_000_000));
        assert!(!pauses(124_999, 1_000_000));
        // A restore.
        assert!(pauses(usize::MAX, u64::MAX));
    }
}
