//! A PostgreSQL transaction as the shared SQL layer's [`Tx`]: values in and out,
//! statements prepared once per session, rows streamed, lookups by many keys with
//! `= ANY($1)` a few thousand keys at a time, and new ids reserved in one `nextval` query.
//! The bulk writes are in `bulk`.

use std::collections::HashMap;
use std::error::Error as StdError;

use bytes::BytesMut;
use postgres::Statement;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use rostersync_core::directory::MatchKey;

use super::db;
use crate::sql::{Dialect, Keys, Row, Rows, Tx, Value, numbered_placeholders};
use crate::{Result, StoreError};

/// Keys per `= ANY($1)` lookup.
const KEYS_PER_QUERY: usize = 5_000;

impl ToSql for Value<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) => match *ty {
                Type::INT2 => i16::try_from(*v)?.to_sql_checked(ty, out),
                Type::INT4 => i32::try_from(*v)?.to_sql_checked(ty, out),
                _ => v.to_sql_checked(ty, out),
            },
            Value::Bool(b) => b.to_sql_checked(ty, out),
            Value::Text(s) => s.as_ref().to_sql_checked(ty, out),
            Value::Blob(b) => b.as_ref().to_sql_checked(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        // Each variant checks the column type itself, in `to_sql`.
        true
    }

    to_sql_checked!();
}

crate::sql::impl_row!(postgres::Row, try_get, db, pg_opt_str);

/// A column's text, lent by the row.
fn pg_opt_str(r: &postgres::Row, i: usize) -> crate::Result<Option<&str>> {
    r.try_get(i).map_err(db)
}

/// A transaction, with the statements its session prepared.
pub(super) struct PgTx<'c> {
    pub(super) tx: postgres::Transaction<'c>,
    pub(super) statements: &'c mut HashMap<String, Statement>,
    /// Counter for temporary staging tables' names.
    pub(super) stage: u32,
}

impl PgTx<'_> {
    fn prepare(&mut self, sql: &str) -> Result<Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let stmt = self.tx.prepare(&numbered_placeholders(sql)).map_err(db)?;
        self.statements.insert(sql.to_owned(), stmt.clone());
        Ok(stmt)
    }

    fn stream(
        &mut self,
        stmt: &Statement,
        params: &[&(dyn ToSql + Sync)],
        f: &mut dyn FnMut(&dyn Row) -> Result<()>,
    ) -> Result<()> {
        let mut rows = self
            .tx
            .query_raw(stmt, params.iter().copied())
            .map_err(db)?;
        while let Some(row) = rows.next().map_err(db)? {
            f(&row)?;
        }
        Ok(())
    }
}

/// The parameters, then the keys array.
fn with_key<'a>(
    params: &'a [Value<'_>],
    keys: &'a (dyn ToSql + Sync),
) -> Vec<&'a (dyn ToSql + Sync)> {
    let mut refs = as_params(params);
    refs.push(keys);
    refs
}

fn as_params<'a>(params: &'a [Value<'_>]) -> Vec<&'a (dyn ToSql + Sync)> {
    params.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

/// Hands `f` the keys a slice of [`KEYS_PER_QUERY`] at a time, each slice as one array
/// parameter (`= ANY(?)`).
fn each_chunk(keys: Keys<'_>, f: &mut dyn FnMut(&(dyn ToSql + Sync)) -> Result<()>) -> Result<()> {
    match keys {
        Keys::Ints(k) => {
            for chunk in k.chunks(KEYS_PER_QUERY) {
                f(&chunk)?;
            }
        }
        Keys::Accounts(k) => {
            for chunk in k.chunks(KEYS_PER_QUERY) {
                let ids: Vec<i64> = chunk.iter().map(|id| id.0).collect();
                f(&ids)?;
            }
        }
        Keys::Texts(k) => {
            for chunk in k.chunks(KEYS_PER_QUERY) {
                f(&chunk)?;
            }
        }
        Keys::Matches(k) => {
            for chunk in k.chunks(KEYS_PER_QUERY) {
                let texts: Vec<&str> = chunk.iter().map(MatchKey::as_str).collect();
                f(&texts)?;
            }
        }
    }
    Ok(())
}

impl Tx for PgTx<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn execute_batch(&mut self, sql: &str) -> Result<()> {
        self.tx.batch_execute(sql).map_err(db)
    }

    fn execute(&mut self, sql: &str, params: &[Value<'_>]) -> Result<u64> {
        let stmt = self.prepare(sql)?;
        self.tx.execute(&stmt, &as_params(params)).map_err(db)
    }

    fn for_each(
        &mut self,
        sql: &str,
        params: &[Value],
        f: &mut dyn FnMut(&dyn Row) -> Result<()>,
    ) -> Result<()> {
        let stmt = self.prepare(sql)?;
        self.stream(&stmt, &as_params(params), f)
    }

    fn for_each_in(
        &mut self,
        sql: &str,
        params: &[Value<'_>],
        keys: Keys<'_>,
        f: &mut dyn FnMut(&dyn Row) -> Result<()>,
    ) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let stmt = self.prepare(&sql.replace("{keys}", "= ANY(?)"))?;
        each_chunk(keys, &mut |key| {
            self.stream(&stmt, &with_key(params, key), f)
        })
    }

    fn execute_in(&mut self, sql: &str, params: &[Value<'_>], keys: Keys<'_>) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        let stmt = self.prepare(&sql.replace("{keys}", "= ANY(?)"))?;
        let mut changed = 0;
        each_chunk(keys, &mut |key| {
            changed += self.tx.execute(&stmt, &with_key(params, key)).map_err(db)?;
            Ok(())
        })?;
        Ok(changed)
    }

    fn delete_rows(&mut self, rows: &Rows<'_>) -> Result<()> {
        self.bulk_delete(rows)
    }

    fn insert_rows(&mut self, rows: &Rows<'_>) -> Result<()> {
        self.bulk_insert(rows)
    }

    fn update_rows_by(&mut self, rows: &Rows<'_>, key: usize) -> Result<()> {
        self.bulk_update(rows, key)
    }

    fn upsert_rows(&mut self, rows: &Rows<'_>, conflict: &[&str], update: &[&str]) -> Result<()> {
        self.bulk_upsert(rows, conflict, update)
    }

    fn allocate_ids(&mut self, table: &str, n: usize) -> Result<Vec<i64>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let n = i64::try_from(n).map_err(|_| StoreError::database("too many ids requested"))?;
        let mut ids = Vec::new();
        // The sequence is looked up once: `nextval(pg_get_serial_sequence(…))` in the select
        // list resolved the sequence's name and parsed it again for every id (5 µs each,
        // 0.5 s of a 100 k first import; 0.06 s as a regclass).
        self.for_each(
            "SELECT nextval(s.seq) FROM (SELECT pg_get_serial_sequence(?, 'id')::regclass AS seq OFFSET 0) s, \
             generate_series(1, CAST(? AS BIGINT))",
            &[table.into(), n.into()],
            &mut |r| {
                ids.push(r.i64(0)?);
                Ok(())
            },
        )?;
        Ok(ids)
    }
}
