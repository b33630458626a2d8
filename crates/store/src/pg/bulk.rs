//! The bulk writes, never row by row (each statement would cost a network round trip):
//! inserts stream the rows with `COPY … FROM STDIN` (text format); deletes, updates and
//! upserts COPY them into a temporary staging table and apply it in one statement.

use std::io::Write as _;

use super::tx::PgTx;
use super::{db, pg};
use crate::sql::{Rows, Value};
use crate::{Result, StoreError};

/// Appends one value in COPY text format.
fn copy_value(out: &mut Vec<u8>, v: &Value<'_>) {
    match v {
        Value::Null => out.extend_from_slice(b"\\N"),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Bool(b) => out.push(if *b { b't' } else { b'f' }),
        Value::Text(s) => {
            let bytes = s.as_bytes();
            let mut plain = 0;
            for (i, byte) in bytes.iter().enumerate() {
                let escaped: &[u8] = match byte {
                    b'\\' => b"\\\\",
                    b'\t' => b"\\t",
                    b'\n' => b"\\n",
                    b'\r' => b"\\r",
                    _ => continue,
                };
                out.extend_from_slice(&bytes[plain..i]);
                out.extend_from_slice(escaped);
                plain = i + 1;
            }
            out.extend_from_slice(&bytes[plain..]);
        }
        Value::Blob(b) => {
            // bytea hex input, with COPY's own backslash doubled.
            out.extend_from_slice(b"\\\\x");
            for byte in b.iter() {
                let _ = write!(out, "{byte:02x}");
            }
        }
    }
}

impl PgTx<'_> {
    /// COPYs rows into `table` (a real or a staging table).
    fn copy_in(&mut self, table: &str, rows: &Rows<'_>) -> Result<()> {
        let mut buf = Vec::with_capacity(rows.len() * 64);
        for row in &rows.rows {
            for (i, v) in row.iter().enumerate() {
                if i > 0 {
                    buf.push(b'\t');
                }
                copy_value(&mut buf, v);
            }
            buf.push(b'\n');
        }
        let sql = format!("COPY {table} ({}) FROM STDIN", rows.columns.join(", "));
        let fail = |e: &dyn std::fmt::Display| {
            StoreError::database(format!("writing {}: {e}", rows.table))
        };
        let mut w = self.tx.copy_in(&sql).map_err(|e| fail(&pg(&e)))?;
        w.write_all(&buf).map_err(|e| fail(&e))?;
        w.finish().map_err(|e| fail(&pg(&e)))?;
        Ok(())
    }

    /// A temporary table shaped like `rows.columns` of `rows.table`, filled with the rows.
    fn stage(&mut self, rows: &Rows<'_>) -> Result<String> {
        self.stage += 1;
        let name = format!("rostersync_stage_{}", self.stage);
        self.tx
            .batch_execute(&format!(
                "CREATE TEMPORARY TABLE {name} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA",
                rows.columns.join(", "),
                rows.table
            ))
            .map_err(db)?;
        self.copy_in(&name, rows)?;
        Ok(name)
    }

    /// Deletes the rows equal to `rows` in every column, through a staging table.
    pub(super) fn bulk_delete(&mut self, rows: &Rows<'_>) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let stage = self.stage(rows)?;
        let test: Vec<String> = rows
            .columns
            .iter()
            .map(|c| format!("{t}.{c} = s.{c}", t = rows.table))
            .collect();
        self.tx
            .batch_execute(&format!(
                "DELETE FROM {t} USING {stage} s WHERE {test}; DROP TABLE {stage}",
                t = rows.table,
                test = test.join(" AND ")
            ))
            .map_err(|e| StoreError::driver(format!("writing {}: {}", rows.table, pg(&e)), e))
    }

    /// Inserts `rows` with one `COPY`.
    pub(super) fn bulk_insert(&mut self, rows: &Rows<'_>) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        self.copy_in(rows.table, rows)
    }

    /// Updates the rows by their first `key` columns (the key) with one `UPDATE … FROM` a
    /// staging table.
    pub(super) fn bulk_update(&mut self, rows: &Rows<'_>, key: usize) -> Result<()> {
        if rows.columns.len() <= key || rows.is_empty() {
            return Ok(());
        }
        let (keys, columns) = rows.columns.split_at(key);
        let stage = self.stage(rows)?;
        let set: Vec<String> = columns.iter().map(|c| format!("{c} = s.{c}")).collect();
        let test: Vec<String> = keys
            .iter()
            .map(|c| format!("{t}.{c} = s.{c}", t = rows.table))
            .collect();
        self.tx
            .batch_execute(&format!(
                "UPDATE {t} SET {set} FROM {stage} s WHERE {test}; DROP TABLE {stage}",
                t = rows.table,
                set = set.join(", "),
                test = test.join(" AND ")
            ))
            .map_err(|e| StoreError::driver(format!("writing {}: {}", rows.table, pg(&e)), e))
    }

    /// Inserts `rows`, or updates the `update` columns of those that conflict on `conflict`,
    /// with one `INSERT … SELECT … ON CONFLICT` from a staging table.
    pub(super) fn bulk_upsert(
        &mut self,
        rows: &Rows<'_>,
        conflict: &[&str],
        update: &[&str],
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let stage = self.stage(rows)?;
        let cols = rows.columns.join(", ");
        let set: Vec<String> = update
            .iter()
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
        self.tx
            .batch_execute(&format!(
                "INSERT INTO {t} ({cols}) SELECT {cols} FROM {stage} ON CONFLICT ({conflict}) DO UPDATE SET {set}; \
                 DROP TABLE {stage}",
                t = rows.table,
                conflict = conflict.join(", "),
                set = set.join(", ")
            ))
            .map_err(|e| StoreError::driver(format!("writing {}: {}", rows.table, pg(&e)), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes() {
        let mut out = Vec::new();
        for v in [
            Value::Null,
            Value::Int(-3),
            Value::Bool(true),
            Value::Text("a\tb\\c\nd\re'\"".into()),
            Value::Blob(vec![0, 255].into()),
        ] {
            copy_value(&mut out, &v);
            out.push(b'|');
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\\N|-3|t|a\\tb\\\\c\\nd\\re'\"|\\\\x00ff|"
        );
    }
}
