//! The store's own floor under a first import (`rostersync bench --floor`, the
//! `floor store write` row): the database alone writing what the first import wrote.
//!
//! After the real first import, every table of its directory is copied with
//! `INSERT INTO … SELECT * FROM … WHERE 1 = 1` into an empty directory of the same schema
//! (made by the store's migrations before the clock starts), in one transaction, table
//! after table in foreign-key order ([`store::tables_in_write_order`], `sources` first: it
//! points nowhere, and a trigger on it recounts the unlinked accounts). The rows arrive
//! finished and in key order, each through the ordinary insert path (the `WHERE` keeps
//! SQLite from copying a table's records and index entries wholesale, which no real write
//! can do): the indexes, constraints and foreign-key checks are the store's. The derived
//! counts are copied rather than counted: on SQLite every trigger is dropped inside the
//! transaction (a wide apply drops the counting ones, which are all of them), on
//! PostgreSQL the counting triggers are paused with `rostersync.derived_paused` (as a wide
//! apply does); on both, the secondary indexes of a person's details are built after the
//! rows are in, as a first import into an empty directory builds them
//! ([`store::DEFERRING_TABLES`]). No Rust code builds a row: this is what the database
//! charges for the directory a first import must leave. The copy is then checked, table by
//! table, against the directory it was made from, and removed (outside the timing), so the
//! phases after it run beside no copy.

use std::path::PathBuf;
use std::time::Instant;

use crate::Failure;

/// A directory to copy and where to.
pub enum Copy {
    /// The directory's SQLite file, and the new (empty, migrated) one.
    Sqlite { from: PathBuf, to: PathBuf },
    /// The directory's schema, and a URL whose search path is the new (empty, migrated)
    /// schema of the same database.
    Postgres { from_schema: String, to: String },
}

/// What the copy took.
pub struct Written {
    pub wall_s: f64,
    /// Rows of `users`: the accounts.
    pub accounts: u64,
}

fn err(what: &'static str) -> impl Fn(&dyn std::fmt::Display) -> Failure {
    move |e| Failure::config(format!("floor store write: {what}: {e}"))
}

/// Makes the empty directory (the store's migrations), then times the copy.
pub fn run(copy: &Copy) -> Result<Written, Failure> {
    let target = match copy {
        Copy::Sqlite { to, .. } => to.display().to_string(),
        Copy::Postgres { to, .. } => to.clone(),
    };
    // Opening migrates; the store is let go before the copy starts.
    drop(store::open(&target).map_err(|e| err("making the empty directory")(&e))?);
    let mut tables: Vec<&str> = store::tables_in_write_order().collect();
    tables.sort_by_key(|t| *t != "sources");
    match copy {
        Copy::Sqlite { from, to } => sqlite(from, to, &tables),
        Copy::Postgres { from_schema, to } => postgres(from_schema, to, &tables),
    }
}

fn sqlite(
    from: &std::path::Path,
    to: &std::path::Path,
    tables: &[&str],
) -> Result<Written, Failure> {
    let e = err("SQLite");
    let mut conn = rusqlite::Connection::open(to).map_err(|x| e(&x))?;
    // As the store sets up its writer for a large apply.
    let _: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(|x| e(&x))?;
    for (name, value) in [
        ("synchronous", "NORMAL"),
        ("foreign_keys", "ON"),
        ("cache_size", "-262144"),
    ] {
        conn.pragma_update(None, name, value).map_err(|x| e(&x))?;
    }
    conn.execute("ATTACH DATABASE ?1 AS src", [from.display().to_string()])
        .map_err(|x| e(&x))?;
    let triggers: Vec<String> = {
        let mut stmt = conn
            .prepare("SELECT name FROM main.sqlite_master WHERE type = 'trigger'")
            .map_err(|x| e(&x))?;
        stmt.query_map([], |r| r.get(0))
            .map_err(|x| e(&x))?
            .collect::<Result<Vec<String>, _>>()
            .map_err(|x| e(&x))?
    };
    let started = Instant::now();
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|x| e(&x))?;
    for name in &triggers {
        tx.execute_batch(&format!("DROP TRIGGER main.\"{name}\""))
            .map_err(|x| e(&x))?;
    }
    // As a first import does: the secondary indexes of a person's details built after the
    // rows are in, not kept through them.
    let mut built_after = Vec::new();
    for table in store::DEFERRING_TABLES {
        let mut stmt = tx
            .prepare(store::SECONDARY_INDEXES_SQLITE)
            .map_err(|x| e(&x))?;
        let indexes = stmt
            .query_map([table], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|x| e(&x))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|x| e(&x))?;
        drop(stmt);
        for (name, definition) in indexes {
            tx.execute_batch(&format!("DROP INDEX main.\"{name}\""))
                .map_err(|x| e(&x))?;
            built_after.push(definition);
        }
    }
    tx.execute_batch(&copy_sql(tables, "main.", "src."))
        .map_err(|x| e(&x))?;
    for definition in &built_after {
        tx.execute_batch(definition).map_err(|x| e(&x))?;
    }
    tx.commit().map_err(|x| e(&x))?;
    let wall_s = started.elapsed().as_secs_f64();
    let count = |schema: &str, t: &str| -> Result<u64, Failure> {
        conn.query_row(&format!("SELECT COUNT(*) FROM {schema}.{t}"), [], |r| {
            r.get::<_, i64>(0)
        })
        .map(|n| n as u64)
        .map_err(|x| e(&x))
    };
    for t in tables {
        check(t, count("main", t)?, count("src", t)?)?;
    }
    let accounts = count("main", "users")?;
    drop(conn);
    for suffix in ["", "-wal", "-shm"] {
        let mut file = to.as_os_str().to_owned();
        file.push(suffix);
        // Gone already is fine (SQLite removes the WAL on a clean close).
        let _ = std::fs::remove_file(file);
    }
    Ok(Written { wall_s, accounts })
}

fn postgres(from_schema: &str, to: &str, tables: &[&str]) -> Result<Written, Failure> {
    let e = err("PostgreSQL");
    let mut client = postgres::Client::connect(to, postgres::NoTls).map_err(|x| e(&x))?;
    let started = Instant::now();
    let mut tx = client.transaction().map_err(|x| e(&x))?;
    tx.batch_execute("SELECT set_config('rostersync.derived_paused', 'on', true)")
        .map_err(|x| e(&x))?;
    // As a first import does: the secondary indexes of a person's details built after the
    // rows are in, not kept through them.
    let mut built_after = Vec::new();
    for table in store::DEFERRING_TABLES {
        for row in tx
            .query(
                &store::SECONDARY_INDEXES_POSTGRES.replace('?', "$1"),
                &[&table],
            )
            .map_err(|x| e(&x))?
        {
            let (name, definition): (String, String) = (row.get(0), row.get(1));
            tx.batch_execute(&format!("DROP INDEX {name}"))
                .map_err(|x| e(&x))?;
            built_after.push(definition);
        }
    }
    tx.batch_execute(&copy_sql(tables, "", &format!("{from_schema}.")))
        .map_err(|x| e(&x))?;
    tx.batch_execute("SET LOCAL maintenance_work_mem = '256MB'")
        .map_err(|x| e(&x))?;
    for definition in &built_after {
        tx.batch_execute(definition).map_err(|x| e(&x))?;
    }
    tx.commit().map_err(|x| e(&x))?;
    let wall_s = started.elapsed().as_secs_f64();
    let mut count = |t: &str| -> Result<u64, Failure> {
        client
            .query_one(&format!("SELECT COUNT(*) FROM {t}"), &[])
            .and_then(|r| r.try_get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|x| e(&x))
    };
    for t in tables {
        let here = count(t)?;
        let there = count(&format!("{from_schema}.{t}"))?;
        check(t, here, there)?;
    }
    let accounts = count("users")?;
    // The copy goes (its schema is the search path's first); the bench settles the disk
    // (a checkpoint) before the next phase, so that phase does not pay for it.
    client
        .batch_execute(
            "DO $$ BEGIN EXECUTE format('DROP SCHEMA %I CASCADE', current_schema()); END $$",
        )
        .map_err(|x| e(&x))?;
    Ok(Written { wall_s, accounts })
}

/// The copy as one batch of SQL, each table named with its schema's prefix (`main.`):
/// what the migrations left (the schema version) deleted, children first, then every
/// table's rows inserted from the directory, parents first.
fn copy_sql(tables: &[&str], to: &str, from: &str) -> String {
    let deletes = tables.iter().rev().map(|t| format!("DELETE FROM {to}{t};"));
    let inserts = tables
        .iter()
        .map(|t| format!("INSERT INTO {to}{t} SELECT * FROM {from}{t} WHERE 1 = 1;"));
    deletes.chain(inserts).collect::<Vec<_>>().join("\n")
}

/// The copy holds as many rows of `table` as the directory.
fn check(table: &str, copied: u64, directory: u64) -> Result<(), Failure> {
    if copied == directory {
        Ok(())
    } else {
        Err(Failure::config(format!(
            "floor store write: the copy's {table} holds {copied} rows, the directory's {directory}"
        )))
    }
}
