//! The PostgreSQL backend, for districts that run an existing, replicated PostgreSQL and
//! several `serve` nodes against it.
//!
//! Uses the synchronous `postgres` crate, which drives its own small Tokio runtime
//! inside: it panics when called from a Tokio worker thread, so callers in async code go
//! through `spawn_blocking` (the engine runs syncs on plain threads).
//!
//! Row-by-row statements would cost a network round trip each, so the bulk methods never
//! do that: inserts stream rows with `COPY … FROM STDIN` (text format); updates and
//! upserts COPY into a temporary table and apply it with one `UPDATE … FROM` or
//! `INSERT … SELECT … ON CONFLICT`; lookups by many keys use `= ANY($1)` with a few
//! thousand keys per statement; new account ids are reserved in one `nextval` query.
//!
//! - `connect`: the connection settings, the sessions (opened, described, reopened when
//!   the server closed them) and connecting with the schema brought up to date;
//! - `tls`: libpq's TLS settings the `postgres` crate does not know, and the TLS client;
//! - `tx`: a transaction as the shared SQL layer's [`Tx`]: statements, key lookups, ids;
//! - `bulk`: the bulk writes, through `COPY` and staging tables.

mod bulk;
mod connect;
mod tls;
mod tx;

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt::Write as _;
use std::sync::Mutex;

use postgres::{Client, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::sql::Tx;
use crate::{Result, StoreError};
pub(crate) use connect::describe_settings;
use tx::PgTx;

/// The PostgreSQL store.
///
/// Blocking, and it must not be used on a Tokio worker thread: the `postgres` crate runs
/// its own runtime inside and panics when called — or dropped — from async code. Call
/// it through `spawn_blocking` or from a plain thread, and drop the last handle there
/// too (or after the async runtime has shut down).
pub(crate) struct PgStore {
    config: postgres::Config,
    tls: MakeRustlsConnect,
    target: String,
    writer: Mutex<Session>,
    reader: Mutex<Session>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// A connection and the statements prepared on it.
struct Session {
    client: Client,
    statements: HashMap<String, Statement>,
}

/// A PostgreSQL error as one line: the server's message, code and detail when there is one.
fn pg(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => {
            let mut s = format!("{} (SQLSTATE {})", d.message(), d.code().code());
            if let Some(detail) = d.detail() {
                let _ = write!(s, ": {detail}");
            }
            s
        }
        None => match e.source() {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

fn db(e: postgres::Error) -> StoreError {
    StoreError::driver(pg(&e), e)
}

impl PgStore {
    pub(crate) const BACKEND: &'static str = "postgres";

    pub(crate) fn write<T>(&self, f: impl FnOnce(&mut dyn Tx) -> Result<T>) -> Result<T> {
        transaction(&mut *self.usable(&self.writer)?, false, f)
    }

    /// Reads see one snapshot (repeatable read) and cannot write. On the reader session
    /// or, when another read holds it (a sync's read of every link takes seconds at
    /// millions of people), on a session opened for this read alone, so no read waits
    /// for another: the console's pages stay quick during a sync.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&mut dyn Tx) -> Result<T>) -> Result<T> {
        match crate::free(&self.reader) {
            Some(held) => transaction(&mut *self.reopened(held)?, true, f),
            None => transaction(&mut self.extra_session()?, true, f),
        }
    }

    /// A write of `writes` plan items ([`crate::Store::write_wide`]): the counting
    /// triggers paused when it is wide.
    pub(crate) fn write_wide<T>(
        &self,
        writes: usize,
        f: impl FnOnce(&mut dyn Tx) -> Result<T>,
    ) -> Result<T> {
        self.write(|tx| crate::counts::paused_if_wide(tx, writes, f))
    }
}

/// Runs `f` in a transaction on `session`, committed when `f` returns `Ok`.
fn transaction<T>(
    session: &mut Session,
    read_only: bool,
    f: impl FnOnce(&mut dyn Tx) -> Result<T>,
) -> Result<T> {
    let Session { client, statements } = session;
    let mut begin = client.build_transaction();
    if read_only {
        begin = begin
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true);
    }
    let tx = begin.start().map_err(db)?;
    let mut t = PgTx {
        tx,
        statements,
        stage: 0,
    };
    let out = f(&mut t)?;
    t.tx.commit().map_err(db)?;
    Ok(out)
}
