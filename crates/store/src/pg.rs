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

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt::Write as _;
use std::io::Write as _;
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use bytes::BytesMut;
use jiff::Timestamp;
use postgres::config::Host;
use postgres::config::SslMode;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, Statement};
use rostersync_core::plan::Plan;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::sql::{Dialect, Keys, Row, Rows, Tx, Value, numbered_placeholders};
use crate::{ApplySummary, Result, RunId, StoreError, apply, migrate};

/// Keys per `= ANY($1)` lookup.
const KEYS_PER_QUERY: usize = 5_000;
/// Any number; the same in every rostersync, so concurrent starts migrate one at a time.
const MIGRATION_LOCK: i64 = 0x726f_7374_6572;

/// The PostgreSQL store.
///
/// Blocking, and it must not be used on a Tokio worker thread: the `postgres` crate runs
/// its own runtime inside and panics when called — or dropped — from async code. Call
/// it through `spawn_blocking` or from a plain thread, and drop the last handle there
/// too (or after the async runtime has shut down).
pub struct PgStore {
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

fn lock(m: &Mutex<Session>) -> MutexGuard<'_, Session> {
    // A panic inside a transaction dropped (rolled back) it: the session is fine.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
    StoreError::Database(pg(&e))
}

/// `host:port (user …, database …)` without the password.
fn describe(config: &postgres::Config) -> String {
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match h {
                Host::Tcp(h) => format!("{h}:{port}"),
                Host::Unix(p) => format!("{}/.s.PGSQL.{port}", p.display()),
            }
        })
        .collect();
    let hosts = if hosts.is_empty() {
        "localhost:5432".to_owned()
    } else {
        hosts.join(",")
    };
    let user = config.get_user().unwrap_or("(default)");
    let dbname = config.get_dbname().unwrap_or(user);
    format!("{hosts} (user {user}, database {dbname})")
}

impl PgStore {
    pub const BACKEND: &'static str = "postgres";

    /// Connects (URL or key=value form; `options=-c search_path=…` and the other libpq
    /// settings the `postgres` crate knows are honoured) and brings the schema up to date.
    ///
    /// TLS follows libpq: `sslmode=disable`; `prefer` (the default: TLS when the server
    /// offers it) and `require` encrypt without checking the server's certificate;
    /// `verify-ca` and `verify-full`, or any mode with `sslrootcert=PATH`, verify it
    /// against the system's trusted roots and that CA file, host name included.
    pub fn connect(url: &str) -> Result<PgStore> {
        let (url, tls) = tls_params(url);
        let mut config = postgres::Config::from_str(&url).map_err(|e| {
            StoreError::Open(format!(
                "the PostgreSQL URL is not valid: {e} — expected postgres://USER@HOST:PORT/DATABASE"
            ))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("rostersync");
        }
        // Verifying a certificate means TLS or nothing: no quiet fall-back to plain text.
        if tls.verify && config.get_ssl_mode() == SslMode::Prefer {
            config.ssl_mode(SslMode::Require);
        }
        let tls = tls_connector(&tls)?;
        let target = describe(&config);
        let store = PgStore {
            writer: Mutex::new(session(&config, &tls, &target)?),
            reader: Mutex::new(session(&config, &tls, &target)?),
            config,
            tls,
            target,
        };
        let place = format!("PostgreSQL {}", store.target);
        store.write(|tx| {
            tx.execute(
                "SELECT pg_advisory_xact_lock(?)",
                &[Value::Int(MIGRATION_LOCK)],
            )?;
            migrate::migrate(tx, &place)
        })?;
        Ok(store)
    }

    /// A connection of its own (advisory locks outlive transactions).
    pub(crate) fn new_client(&self) -> std::result::Result<Client, String> {
        session(&self.config, &self.tls, &self.target)
            .map(|s| s.client)
            .map_err(|e| e.to_string())
    }

    /// Where it is connected: `host:port (user …, database …)`, no password.
    pub fn target(&self) -> &str {
        &self.target
    }

    fn usable<'m>(&self, m: &'m Mutex<Session>) -> Result<MutexGuard<'m, Session>> {
        let mut s = lock(m);
        if s.client.is_closed() {
            tracing::warn!(target = %self.target, "the PostgreSQL connection was closed; reconnecting");
            *s = session(&self.config, &self.tls, &self.target)?;
        }
        Ok(s)
    }

    pub(crate) fn write<T>(&self, f: impl FnOnce(&mut dyn Tx) -> Result<T>) -> Result<T> {
        let mut guard = self.usable(&self.writer)?;
        let Session { client, statements } = &mut *guard;
        let tx = client.transaction().map_err(db)?;
        let mut t = PgTx {
            tx,
            statements,
            stage: 0,
        };
        let out = f(&mut t)?;
        t.tx.commit().map_err(db)?;
        Ok(out)
    }

    pub(crate) fn read<T>(&self, f: impl FnOnce(&mut dyn Tx) -> Result<T>) -> Result<T> {
        let mut guard = self.usable(&self.reader)?;
        let Session { client, statements } = &mut *guard;
        let tx = client
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(db)?;
        let mut t = PgTx {
            tx,
            statements,
            stage: 0,
        };
        let out = f(&mut t)?;
        t.tx.commit().map_err(db)?;
        Ok(out)
    }

    pub(crate) fn apply(&self, run: RunId, plan: &Plan, now: Timestamp) -> Result<ApplySummary> {
        self.write(|tx| apply::apply_plan(tx, run, plan, now))
    }
}

fn session(config: &postgres::Config, tls: &MakeRustlsConnect, target: &str) -> Result<Session> {
    let connected = config.connect(tls.clone()).or_else(|e| {
        // `prefer`, as libpq: when TLS fails, try again without it.
        if config.get_ssl_mode() == SslMode::Prefer && pg(&e).to_lowercase().contains("tls") {
            let mut plain = config.clone();
            plain.ssl_mode(SslMode::Disable);
            plain.connect(tls.clone()).map_err(|_| e)
        } else {
            Err(e)
        }
    });
    let client = connected.map_err(|e| {
        let mut why = pg(&e);
        if config.get_ssl_mode() != SslMode::Disable && why.to_lowercase().contains("certificate") {
            why.push_str(
                " (the server's TLS certificate is verified: sslrootcert=PATH in the URL names the CA that signed it)",
            );
        }
        StoreError::Open(format!(
            "cannot connect to PostgreSQL at {target}: {why} — check the URL and that the server is running"
        ))
    })?;
    Ok(Session {
        client,
        statements: HashMap::new(),
    })
}

/// How to treat the server's certificate.
#[derive(Debug, Default, PartialEq, Eq)]
struct TlsSettings {
    /// `verify-ca`, `verify-full`, or a CA file given.
    verify: bool,
    root_cert: Option<std::path::PathBuf>,
}

/// Takes the TLS settings the `postgres` crate does not know out of a URL or key=value
/// connection string: `sslrootcert`, and `sslmode=verify-ca|verify-full` (which become
/// `require` for the crate, with verification on).
fn tls_params(url: &str) -> (String, TlsSettings) {
    let mut tls = TlsSettings::default();
    // One `key=value` setting, as written: kept, rewritten or taken out.
    let mut setting = |raw: &str, value: &str| -> Option<String> {
        match raw.split_once('=').map_or(raw, |(k, _)| k) {
            "sslrootcert" => {
                tls.root_cert = Some(std::path::PathBuf::from(value));
                tls.verify = true;
                None
            }
            "sslmode" if matches!(value, "verify-ca" | "verify-full") => {
                tls.verify = true;
                Some("sslmode=require".to_owned())
            }
            _ => Some(raw.to_owned()),
        }
    };
    let url = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url.split_once('?') {
            None => url.to_owned(),
            Some((base, query)) => {
                let kept: Vec<String> = query
                    .split('&')
                    .filter(|p| !p.is_empty())
                    .filter_map(|p| {
                        let value = p.split_once('=').map_or("", |(_, v)| v);
                        setting(
                            p,
                            &percent_encoding::percent_decode_str(value).decode_utf8_lossy(),
                        )
                    })
                    .collect();
                if kept.is_empty() {
                    base.to_owned()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
        }
    } else {
        key_values(url)
            .into_iter()
            .filter_map(|(key, raw, value)| {
                // Kept settings stay as written (quotes and all); others are rewritten.
                let plain = format!("{key}={value}");
                setting(&plain, &value)
                    .map(|kept| if kept == plain { raw.to_owned() } else { kept })
            })
            .collect::<Vec<String>>()
            .join(" ")
    };
    (url, tls)
}

/// libpq's `key = value` settings: each key, the setting as written, and its value
/// (single quotes and backslash escapes undone). A word that is no setting is kept as
/// written, for the `postgres` crate to report.
fn key_values(s: &str) -> Vec<(String, &str, String)> {
    let bytes = s.as_bytes();
    let skip_spaces = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let mut out = Vec::new();
    let mut i = skip_spaces(0);
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i] != b'=' && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = s[start..i].to_owned();
        i = skip_spaces(i);
        if bytes.get(i) != Some(&b'=') {
            out.push((key, &s[start..i], String::new()));
            continue;
        }
        i = skip_spaces(i + 1);
        let quoted = bytes.get(i) == Some(&b'\'');
        if quoted {
            i += 1;
        }
        let mut value = Vec::new();
        while i < bytes.len() {
            let b = bytes[i];
            if (quoted && b == b'\'') || (!quoted && b.is_ascii_whitespace()) {
                break;
            }
            if b == b'\\' && i + 1 < bytes.len() {
                i += 1;
            }
            value.push(bytes[i]);
            i += 1;
        }
        if quoted && i < bytes.len() {
            i += 1;
        }
        out.push((
            key,
            &s[start..i],
            String::from_utf8_lossy(&value).into_owned(),
        ));
        i = skip_spaces(i);
    }
    out
}

/// The TLS client: verifying against the system's trusted roots and the CA file, or, as
/// libpq's `prefer` and `require` do, encrypting without checking who answers.
fn tls_connector(tls: &TlsSettings) -> Result<MakeRustlsConnect> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Open(format!("TLS set-up failed: {e}")))?;
    if !tls.verify {
        let config = builder
            .dangerous()
            .with_custom_certificate_verifier(std::sync::Arc::new(EncryptOnly(provider)))
            .with_no_client_auth();
        return Ok(MakeRustlsConnect::new(config));
    }
    // As libpq: the CA file alone when one is named (`system`: the system's roots), the
    // system's trusted roots when none is.
    let mut roots = rustls::RootCertStore::empty();
    match tls.root_cert.as_deref() {
        Some(path) if path != std::path::Path::new("system") => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<std::result::Result<_, _>>())
                .map_err(|e| {
                    StoreError::Open(format!(
                        "cannot read the CA certificates in sslrootcert={}: {e} — expected a PEM file",
                        path.display()
                    ))
                })?;
            if certs.is_empty() {
                return Err(StoreError::Open(format!(
                    "sslrootcert={} holds no certificate — expected a PEM file with the CA that signed the server's",
                    path.display()
                )));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| {
                    StoreError::Open(format!(
                        "a certificate in sslrootcert={} is not usable: {e}",
                        path.display()
                    ))
                })?;
            }
        }
        _ => {
            for cert in rustls_native_certs::load_native_certs().certs {
                // A system certificate rustls cannot use is no reason to refuse the others.
                let _ = roots.add(cert);
            }
        }
    }
    let config = builder.with_root_certificates(roots).with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// libpq's `sslmode=prefer|require`: any certificate is accepted (the handshake's own
/// signatures are still checked), so the connection is encrypted but its peer unproven.
#[derive(Debug)]
struct EncryptOnly(std::sync::Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

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

impl Row for postgres::Row {
    fn i64(&self, i: usize) -> Result<i64> {
        self.try_get(i).map_err(db)
    }

    fn opt_i64(&self, i: usize) -> Result<Option<i64>> {
        self.try_get(i).map_err(db)
    }

    fn text(&self, i: usize) -> Result<String> {
        self.try_get(i).map_err(db)
    }

    fn opt_text(&self, i: usize) -> Result<Option<String>> {
        self.try_get(i).map_err(db)
    }

    fn bool(&self, i: usize) -> Result<bool> {
        self.try_get(i).map_err(db)
    }

    fn opt_blob(&self, i: usize) -> Result<Option<Vec<u8>>> {
        self.try_get(i).map_err(db)
    }
}

struct PgTx<'c> {
    tx: postgres::Transaction<'c>,
    statements: &'c mut HashMap<String, Statement>,
    /// Counter for temporary staging tables' names.
    stage: u32,
}

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
        params: &[&dyn ToSql],
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
            StoreError::Database(format!("writing {}: {e}", rows.table))
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
}

/// The parameters, then the keys array.
fn with_key<'a>(params: &'a [Value<'_>], keys: &'a dyn ToSql) -> Vec<&'a dyn ToSql> {
    let mut refs: Vec<&dyn ToSql> = params.iter().map(|v| v as &dyn ToSql).collect();
    refs.push(keys);
    refs
}

fn with_key_sync<'a>(
    params: &'a [Value<'_>],
    keys: &'a (dyn ToSql + Sync),
) -> Vec<&'a (dyn ToSql + Sync)> {
    let mut refs: Vec<&(dyn ToSql + Sync)> =
        params.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
    refs.push(keys);
    refs
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
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        self.tx.execute(&stmt, &refs).map_err(db)
    }

    fn for_each(
        &mut self,
        sql: &str,
        params: &[Value],
        f: &mut dyn FnMut(&dyn Row) -> Result<()>,
    ) -> Result<()> {
        let stmt = self.prepare(sql)?;
        let refs: Vec<&dyn ToSql> = params.iter().map(|v| v as &dyn ToSql).collect();
        self.stream(&stmt, &refs, f)
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
        match keys {
            Keys::Ints(k) => {
                for chunk in k.chunks(KEYS_PER_QUERY) {
                    self.stream(&stmt, &with_key(params, &chunk), f)?;
                }
            }
            Keys::Texts(k) => {
                for chunk in k.chunks(KEYS_PER_QUERY) {
                    self.stream(&stmt, &with_key(params, &chunk), f)?;
                }
            }
        }
        Ok(())
    }

    fn execute_in(&mut self, sql: &str, params: &[Value<'_>], keys: Keys<'_>) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        let stmt = self.prepare(&sql.replace("{keys}", "= ANY(?)"))?;
        let mut changed = 0;
        match keys {
            Keys::Ints(k) => {
                for chunk in k.chunks(KEYS_PER_QUERY) {
                    changed += self
                        .tx
                        .execute(&stmt, &with_key_sync(params, &chunk))
                        .map_err(db)?;
                }
            }
            Keys::Texts(k) => {
                for chunk in k.chunks(KEYS_PER_QUERY) {
                    changed += self
                        .tx
                        .execute(&stmt, &with_key_sync(params, &chunk))
                        .map_err(db)?;
                }
            }
        }
        Ok(changed)
    }

    fn delete_rows(&mut self, rows: &Rows<'_>) -> Result<()> {
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
            .map_err(|e| StoreError::Database(format!("writing {}: {}", rows.table, pg(&e))))
    }

    fn insert_rows(&mut self, rows: &Rows<'_>) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        self.copy_in(rows.table, rows)
    }

    fn update_rows(&mut self, rows: &Rows<'_>) -> Result<()> {
        let Some((key, columns)) = rows.columns.split_first() else {
            return Ok(());
        };
        if rows.is_empty() {
            return Ok(());
        }
        let stage = self.stage(rows)?;
        let set: Vec<String> = columns.iter().map(|c| format!("{c} = s.{c}")).collect();
        self.tx
            .batch_execute(&format!(
                "UPDATE {t} SET {set} FROM {stage} s WHERE {t}.{key} = s.{key}; DROP TABLE {stage}",
                t = rows.table,
                set = set.join(", ")
            ))
            .map_err(|e| StoreError::Database(format!("writing {}: {}", rows.table, pg(&e))))
    }

    fn upsert_rows(&mut self, rows: &Rows<'_>, conflict: &[&str], update: &[&str]) -> Result<()> {
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
            .map_err(|e| StoreError::Database(format!("writing {}: {}", rows.table, pg(&e))))
    }

    fn allocate_ids(&mut self, table: &str, n: usize) -> Result<Vec<i64>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let n =
            i64::try_from(n).map_err(|_| StoreError::Database("too many ids requested".into()))?;
        let mut ids = Vec::new();
        self.for_each(
            "SELECT nextval(pg_get_serial_sequence(?, 'id')) FROM generate_series(1, CAST(? AS BIGINT))",
            &[table.into(), n.into()],
            &mut |r| {
                ids.push(r.i64(0)?);
                Ok(())
            },
        )?;
        Ok(ids)
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

    #[test]
    fn tls_settings_the_postgres_crate_does_not_know() {
        let path = |p: &str| Some(std::path::PathBuf::from(p));
        let (url, tls) = tls_params(
            "postgres://u@db:5432/d?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x",
        );
        assert_eq!(
            url,
            "postgres://u@db:5432/d?sslmode=require&application_name=x"
        );
        assert_eq!(
            tls,
            TlsSettings {
                verify: true,
                root_cert: path("/etc/ca.pem")
            }
        );
        let (url, tls) = tls_params("host=db user=u sslrootcert=/ca.pem sslmode=verify-ca");
        assert_eq!(url, "host=db user=u sslmode=require");
        assert_eq!(
            tls,
            TlsSettings {
                verify: true,
                root_cert: path("/ca.pem")
            }
        );
        let (url, tls) = tls_params("postgres://u@db/d?sslrootcert=/ca.pem");
        assert_eq!((url.as_str(), tls.verify), ("postgres://u@db/d", true));
        let (url, tls) = tls_params("postgres://u@db/d?sslmode=verify-ca");
        assert_eq!(url, "postgres://u@db/d?sslmode=require");
        assert_eq!(
            tls,
            TlsSettings {
                verify: true,
                root_cert: None
            }
        );
        for plain in [
            "postgres://u:p%40ss@db/d?sslmode=disable",
            "postgres://u@db/d?sslmode=require",
        ] {
            assert_eq!(
                tls_params(plain),
                (plain.to_owned(), TlsSettings::default())
            );
        }
        assert!(
            postgres::Config::from_str(&tls_params("postgres://u@db/d?sslmode=verify-full").0)
                .is_ok()
        );
    }

    #[test]
    fn key_value_settings_keep_their_quoting() {
        let (url, tls) = tls_params(
            r"host=db password='two  words\' x' sslrootcert = '/etc/my ca.pem' sslmode='verify-full'",
        );
        assert_eq!(url, r"host=db password='two  words\' x' sslmode=require");
        assert_eq!(
            tls.root_cert,
            Some(std::path::PathBuf::from("/etc/my ca.pem"))
        );
        assert!(tls.verify);
        let c = postgres::Config::from_str(&url).unwrap();
        assert_eq!(c.get_password(), Some(&b"two  words' x"[..]));
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_a_clear_error() {
        let e = tls_connector(&TlsSettings {
            verify: true,
            root_cert: Some("/nonexistent/ca.pem".into()),
        })
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(e.contains("sslrootcert=/nonexistent/ca.pem"), "{e}");
        assert!(tls_connector(&TlsSettings::default()).is_ok());
    }

    #[test]
    fn descriptions_never_show_the_password() {
        let c =
            postgres::Config::from_str("postgres://alice:hunter2@db.example:6543/roster").unwrap();
        let d = describe(&c);
        assert_eq!(d, "db.example:6543 (user alice, database roster)");
        assert!(!d.contains("hunter2"));
    }
}
