//! The small SQL layer the store logic is written against, so every method exists once
//! and each backend only says how to run a statement and how to move many rows fast.
//!
//! Statements are written with `?` placeholders in the SQL both engines accept; the
//! PostgreSQL backend rewrites them to `$1..$n` ([`numbered_placeholders`]). Values go
//! in as [`Value`] and come out through [`Row`], which each backend implements directly
//! on its own row type (no copy into an intermediate form on the read path).

use std::borrow::Cow;
use std::fmt::Write as _;

use jiff::Timestamp;
use rostersync_core::directory::{AccountId, MatchKey};

use crate::{Result, StoreError};

/// Which SQL engine a transaction talks to, for the few places the SQL differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// ` LIMIT … OFFSET …` with 0 meaning "no limit".
    pub(crate) fn limit_offset(
        self,
        limit: u32,
        offset: u64,
        params: &mut Vec<Value<'_>>,
    ) -> String {
        let mut sql = String::new();
        if limit > 0 {
            sql.push_str(" LIMIT ?");
            params.push(Value::Int(i64::from(limit)));
        } else if offset > 0 && self == Dialect::Sqlite {
            // SQLite accepts OFFSET only after a LIMIT; a negative one means none.
            sql.push_str(" LIMIT -1");
        }
        if offset > 0 {
            sql.push_str(" OFFSET ?");
            params.push(Value::Int(i64::try_from(offset).unwrap_or(i64::MAX)));
        }
        sql
    }
}

/// A parameter. Booleans become INTEGER 0/1 in SQLite and BOOLEAN in PostgreSQL. Text
/// and bytes borrow where they can: the apply path builds hundreds of thousands of rows
/// from the plan's own strings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value<'a> {
    Null,
    Int(i64),
    Bool(bool),
    Text(Cow<'a, str>),
    Blob(Cow<'a, [u8]>),
}

impl From<i64> for Value<'_> {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<AccountId> for Value<'_> {
    fn from(v: AccountId) -> Self {
        Value::Int(v.0)
    }
}

impl From<bool> for Value<'_> {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl From<String> for Value<'_> {
    fn from(v: String) -> Self {
        Value::Text(Cow::Owned(v))
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(v: &'a str) -> Self {
        Value::Text(Cow::Borrowed(v))
    }
}

impl<'a> From<&'a String> for Value<'a> {
    fn from(v: &'a String) -> Self {
        Value::Text(Cow::Borrowed(v))
    }
}

/// A match key binds as its string (the `_lc` columns).
impl From<MatchKey> for Value<'_> {
    fn from(v: MatchKey) -> Self {
        Value::Text(Cow::Owned(v.into_string()))
    }
}

impl<'a> From<&'a MatchKey> for Value<'a> {
    fn from(v: &'a MatchKey) -> Self {
        Value::Text(Cow::Borrowed(v.as_str()))
    }
}

impl From<Vec<u8>> for Value<'_> {
    fn from(v: Vec<u8>) -> Self {
        Value::Blob(Cow::Owned(v))
    }
}

impl<'a, T: Into<Value<'a>>> From<Option<T>> for Value<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// A result row. Column indexes are 0-based, in SELECT order.
pub(crate) trait Row {
    fn i64(&self, i: usize) -> Result<i64>;
    fn opt_i64(&self, i: usize) -> Result<Option<i64>>;
    fn text(&self, i: usize) -> Result<String>;
    fn opt_text(&self, i: usize) -> Result<Option<String>>;
    fn bool(&self, i: usize) -> Result<bool>;
    fn opt_blob(&self, i: usize) -> Result<Option<Vec<u8>>>;
    /// Text lent by the row, or NULL: for a value read and let go (a time, a rule, a
    /// name that is interned), where [`Row::text`] would copy it first.
    fn opt_str(&self, i: usize) -> Result<Option<&str>>;

    /// Text lent by the row; NULL is an error, as [`Row::text`] says it.
    fn str(&self, i: usize) -> Result<&str> {
        match self.opt_str(i)? {
            Some(s) => Ok(s),
            // The driver's own words for a NULL where text was expected.
            None => self.text(i).map(|_| ""),
        }
    }

    /// A time stored by [`ts`].
    fn ts(&self, i: usize) -> Result<Timestamp> {
        parse_ts(self.str(i)?)
    }

    /// A time stored by [`ts`], or NULL.
    fn opt_ts(&self, i: usize) -> Result<Option<Timestamp>> {
        self.opt_str(i)?.map(parse_ts).transpose()
    }
}

/// Implements [`Row`] on a driver's row type: `$get` reads a column as any of the types
/// [`Row`] asks for, `$err` turns the driver's error into the store's, `$opt_str` lends a
/// column's text.
macro_rules! impl_row {
    ($row:ty, $get:ident, $err:path, $opt_str:path) => {
        impl $crate::sql::Row for $row {
            fn i64(&self, i: usize) -> $crate::Result<i64> {
                self.$get(i).map_err($err)
            }

            fn opt_i64(&self, i: usize) -> $crate::Result<Option<i64>> {
                self.$get(i).map_err($err)
            }

            fn text(&self, i: usize) -> $crate::Result<String> {
                self.$get(i).map_err($err)
            }

            fn opt_text(&self, i: usize) -> $crate::Result<Option<String>> {
                self.$get(i).map_err($err)
            }

            fn bool(&self, i: usize) -> $crate::Result<bool> {
                self.$get(i).map_err($err)
            }

            fn opt_blob(&self, i: usize) -> $crate::Result<Option<Vec<u8>>> {
                self.$get(i).map_err($err)
            }

            fn opt_str(&self, i: usize) -> $crate::Result<Option<&str>> {
                $opt_str(self, i)
            }
        }
    };
}
pub(crate) use impl_row;

/// `a` then `b`, at compile time (a wrong `N` does not compile): a table's column list
/// made of its key and the rest, each written once.
pub(crate) const fn concat<const A: usize, const B: usize, const N: usize>(
    a: [&'static str; A],
    b: [&'static str; B],
) -> [&'static str; N] {
    assert!(A + B == N, "the column lists do not add up");
    let mut out = [""; N];
    let mut i = 0;
    while i < A {
        out[i] = a[i];
        i += 1;
    }
    while i < N {
        out[i] = b[i - A];
        i += 1;
    }
    out
}

/// Keys for [`Tx::for_each_in`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Keys<'a> {
    Ints(&'a [i64]),
    Accounts(&'a [AccountId]),
    Texts(&'a [String]),
    /// Match keys, bound as their strings (the `_lc` columns).
    Matches(&'a [MatchKey]),
}

impl<'a> Keys<'a> {
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            Keys::Ints(k) => k.is_empty(),
            Keys::Accounts(k) => k.is_empty(),
            Keys::Texts(k) => k.is_empty(),
            Keys::Matches(k) => k.is_empty(),
        }
    }

    /// Each key as a parameter.
    pub(crate) fn values(self) -> Box<dyn Iterator<Item = Value<'a>> + 'a> {
        match self {
            Keys::Ints(k) => Box::new(k.iter().map(|v| Value::Int(*v))),
            Keys::Accounts(k) => Box::new(k.iter().map(|v| Value::from(*v))),
            Keys::Texts(k) => Box::new(k.iter().map(|v| Value::Text(Cow::Borrowed(v.as_str())))),
            Keys::Matches(k) => Box::new(k.iter().map(Value::from)),
        }
    }
}

/// A batch of rows for one of the bulk methods: the column names, then one value per
/// column per row.
#[derive(Debug)]
pub(crate) struct Rows<'a> {
    pub table: &'static str,
    pub columns: &'static [&'static str],
    pub rows: Vec<Vec<Value<'a>>>,
}

impl<'a> Rows<'a> {
    pub(crate) fn new(table: &'static str, columns: &'static [&'static str]) -> Rows<'a> {
        Rows {
            table,
            columns,
            rows: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, row: Vec<Value<'a>>) {
        debug_assert_eq!(row.len(), self.columns.len(), "{}", self.table);
        self.rows.push(row);
    }

    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// An open transaction. Dropping it without [`commit`](crate) rolls back; the backends'
/// `read`/`write` wrappers commit when the closure returns `Ok`.
pub(crate) trait Tx {
    fn dialect(&self) -> Dialect;

    /// Runs several statements (a migration script), no parameters.
    fn execute_batch(&mut self, sql: &str) -> Result<()>;

    /// Runs one statement; returns the rows changed.
    fn execute(&mut self, sql: &str, params: &[Value<'_>]) -> Result<u64>;

    /// Runs a query and hands each row to `f`, streaming.
    fn for_each(
        &mut self,
        sql: &str,
        params: &[Value<'_>],
        f: &mut dyn FnMut(&dyn Row) -> Result<()>,
    ) -> Result<()>;

    /// Runs `sql` for every key: `sql` contains the marker `{keys}` where a key test
    /// belongs (`WHERE u.id {keys}`), after every other placeholder, whose values are
    /// `params`. SQLite runs it once per key (a cached statement, no round trip);
    /// PostgreSQL once per few thousand keys with `= ANY(…)`.
    fn for_each_in(
        &mut self,
        sql: &str,
        params: &[Value<'_>],
        keys: Keys<'_>,
        f: &mut dyn FnMut(&dyn Row) -> Result<()>,
    ) -> Result<()>;

    /// [`Tx::for_each_in`] for a statement that returns no rows (`DELETE … WHERE id {keys}`);
    /// returns the rows changed.
    fn execute_in(&mut self, sql: &str, params: &[Value<'_>], keys: Keys<'_>) -> Result<u64>;

    /// Inserts rows.
    fn insert_rows(&mut self, rows: &Rows<'_>) -> Result<()>;

    /// Deletes rows: each row holds the values of every column of `rows.columns`, which
    /// together identify it.
    fn delete_rows(&mut self, rows: &Rows<'_>) -> Result<()>;

    /// Updates rows by key: each row holds the key first, then the other columns.
    fn update_rows(&mut self, rows: &Rows<'_>) -> Result<()> {
        self.update_rows_by(rows, 1)
    }

    /// Updates rows by a key of `key` columns (`source, sourced_id`): each row holds the
    /// key's columns first, then the other columns.
    fn update_rows_by(&mut self, rows: &Rows<'_>, key: usize) -> Result<()>;

    /// Inserts rows, or on a conflict with `conflict` updates `update` from the new row.
    fn upsert_rows(&mut self, rows: &Rows<'_>, conflict: &[&str], update: &[&str]) -> Result<()>;

    /// Reserves `n` ids of a table's identity column for rows inserted with explicit ids.
    fn allocate_ids(&mut self, table: &str, n: usize) -> Result<Vec<i64>>;
}

/// Runs a query and maps every row.
pub(crate) fn query_vec<T>(
    tx: &mut dyn Tx,
    sql: &str,
    params: &[Value<'_>],
    mut f: impl FnMut(&dyn Row) -> Result<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    tx.for_each(sql, params, &mut |r| {
        out.push(f(r)?);
        Ok(())
    })?;
    Ok(out)
}

/// Runs a query and maps its first row, if any.
pub(crate) fn query_opt<T>(
    tx: &mut dyn Tx,
    sql: &str,
    params: &[Value<'_>],
    mut f: impl FnMut(&dyn Row) -> Result<T>,
) -> Result<Option<T>> {
    let mut out = None;
    tx.for_each(sql, params, &mut |r| {
        if out.is_none() {
            out = Some(f(r)?);
        }
        Ok(())
    })?;
    Ok(out)
}

/// `SELECT COUNT(*) …` and friends.
pub(crate) fn query_i64(tx: &mut dyn Tx, sql: &str, params: &[Value<'_>]) -> Result<i64> {
    Ok(query_opt(tx, sql, params, |r| r.i64(0))?.unwrap_or(0))
}

/// Rewrites `?` placeholders to PostgreSQL's `$1..$n`, leaving quoted text, quoted
/// identifiers and comments alone.
pub(crate) fn numbered_placeholders(sql: &str) -> String {
    #[derive(PartialEq)]
    enum State {
        Code,
        Quote(char),
        LineComment,
        BlockComment,
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    let mut state = State::Code;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match state {
            State::Code => match c {
                '?' => {
                    n += 1;
                    let _ = write!(out, "${n}");
                    continue;
                }
                '\'' | '"' => state = State::Quote(c),
                '-' if chars.peek() == Some(&'-') => state = State::LineComment,
                '/' if chars.peek() == Some(&'*') => state = State::BlockComment,
                _ => {}
            },
            // A doubled quote ('') closes and reopens: the same as staying inside.
            State::Quote(q) if c == q => state = State::Code,
            State::Quote(_) => {}
            State::LineComment if c == '\n' => state = State::Code,
            State::LineComment => {}
            State::BlockComment if c == '*' && chars.peek() == Some(&'/') => {
                out.push(c);
                if let Some(slash) = chars.next() {
                    out.push(slash);
                }
                state = State::Code;
                continue;
            }
            State::BlockComment => {}
        }
        out.push(c);
    }
    out
}

/// Timestamps are stored as text, RFC 3339 in UTC with exactly nine fractional digits,
/// so that text order is time order in both engines and values round-trip exactly.
pub(crate) fn ts(t: Timestamp) -> String {
    jiff::fmt::strtime::format("%Y-%m-%dT%H:%M:%S.%NZ", t).unwrap_or_else(|_| t.to_string())
}

/// A time stored by [`ts`]: read without the general parser in the layout `ts` writes
/// (a million links hold a million times), by it otherwise.
pub(crate) fn parse_ts(s: &str) -> Result<Timestamp> {
    if let Some(t) = oneroster::lenient::canonical_timestamp(s) {
        return Ok(t);
    }
    s.parse()
        .map_err(|e| StoreError::Corrupt(format!("stored time '{s}' is not a timestamp: {e}")))
}

/// A stored value this version cannot read; `what` names it.
pub(crate) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("stored {what}: {e}"))
}

/// A value to store as JSON text; `what` names it in the error.
pub(crate) fn encode<T: serde::Serialize>(what: &str, v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::database(format!("cannot encode {what}: {e}")))
}

/// A LIKE pattern matching `needle` anywhere, with `\` as the escape character.
pub(crate) fn contains_pattern(needle: &str) -> String {
    let mut p = String::with_capacity(needle.len() + 2);
    p.push('%');
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_skip_quotes_and_comments() {
        assert_eq!(
            numbered_placeholders(
                "SELECT a FROM t WHERE b = ? AND c LIKE '?%' AND \"d?\" = ? -- why?\n AND e = ?"
            ),
            "SELECT a FROM t WHERE b = $1 AND c LIKE '?%' AND \"d?\" = $2 -- why?\n AND e = $3"
        );
        assert_eq!(numbered_placeholders("'it''s ?' || ?"), "'it''s ?' || $1");
        assert_eq!(
            numbered_placeholders("/* ? */ ? /**/?"),
            "/* ? */ $1 /**/$2"
        );
        assert_eq!(
            numbered_placeholders("x = '?"),
            "x = '?",
            "unterminated text is left alone"
        );
    }

    #[test]
    fn timestamps_sort_as_text_and_round_trip() {
        let a: Timestamp = "2026-09-01T02:00:00Z".parse().unwrap();
        let b: Timestamp = "2026-09-01T02:00:00.5Z".parse().unwrap();
        assert_eq!(ts(a), "2026-09-01T02:00:00.000000000Z");
        assert!(ts(a) < ts(b));
        assert_eq!(parse_ts(&ts(b)).unwrap(), b);
        let now = Timestamp::now();
        assert_eq!(parse_ts(&ts(now)).unwrap(), now);
        // The layout `ts` writes is read by the fast path; other spellings (an older
        // version's, a restore's) still by the general parser.
        assert!(oneroster::lenient::canonical_timestamp(&ts(now)).is_some());
        assert_eq!(parse_ts("2026-09-01T02:00:00.5+00:00").unwrap(), b);
        assert!(matches!(parse_ts("yesterday"), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(contains_pattern("a%b_c\\"), "%a\\%b\\_c\\\\%");
    }

    #[test]
    fn limit_and_offset() {
        let mut p = Vec::new();
        assert_eq!(Dialect::Sqlite.limit_offset(0, 0, &mut p), "");
        assert_eq!(
            Dialect::Sqlite.limit_offset(0, 5, &mut p),
            " LIMIT -1 OFFSET ?"
        );
        assert_eq!(Dialect::Postgres.limit_offset(0, 5, &mut p), " OFFSET ?");
        assert_eq!(
            Dialect::Postgres.limit_offset(10, 5, &mut p),
            " LIMIT ? OFFSET ?"
        );
        assert_eq!(
            p,
            vec![Value::Int(5), Value::Int(5), Value::Int(10), Value::Int(5)]
        );
    }
}
