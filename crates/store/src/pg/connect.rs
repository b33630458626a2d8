//! Connecting: the connection settings (timeouts, application name, TLS mode), the two
//! sessions a store keeps and the extra ones named locks take, reopening a session the
//! server closed, and how a server is named in messages (never with the password).

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use postgres::Client;
use postgres::config::{Host, SslMode};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::tls::{tls_connector, tls_params};
use super::{PgStore, Session, pg};
use crate::sql::Value;
use crate::{Result, StoreError, lock, migrate};

/// Any number; the same in every rostersync, so concurrent starts migrate one at a time.
const MIGRATION_LOCK: i64 = 0x726f_7374_6572;

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

/// How a message names the server `database` (a URL or libpq's settings) connects to,
/// without the password: `PostgreSQL at host:port (user …, database …)`.
pub(crate) fn describe_settings(database: &str) -> String {
    let (settings, _) = tls_params(database);
    match postgres::Config::from_str(&settings) {
        Ok(config) => format!("PostgreSQL at {}", describe(&config)),
        Err(_) => "a PostgreSQL database whose settings do not parse".to_owned(),
    }
}

impl PgStore {
    /// Connects (URL or key=value form; `options=-c search_path=…` and the other libpq
    /// settings the `postgres` crate knows are honoured) and brings the schema up to date.
    ///
    /// TLS follows libpq: `sslmode=disable`; `prefer` (the default: TLS when the server
    /// offers it) and `require` encrypt without checking the server's certificate;
    /// `verify-ca` and `verify-full`, or any mode with `sslrootcert=PATH`, verify it
    /// against the system's trusted roots and that CA file, host name included.
    pub(crate) fn connect(url: &str) -> Result<PgStore> {
        let (url, tls) = tls_params(url);
        let mut config = postgres::Config::from_str(&url).map_err(|e| {
            StoreError::Invalid(format!(
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

    /// The session in `m`, opened again first when the server closed it.
    pub(super) fn usable<'m>(&self, m: &'m Mutex<Session>) -> Result<MutexGuard<'m, Session>> {
        self.reopened(lock(m))
    }

    /// A session for one read while the reader is busy.
    pub(super) fn extra_session(&self) -> Result<Session> {
        session(&self.config, &self.tls, &self.target)
    }

    /// `s`, opened again first when the server closed it.
    pub(super) fn reopened<'m>(
        &self,
        mut s: MutexGuard<'m, Session>,
    ) -> Result<MutexGuard<'m, Session>> {
        if s.client.is_closed() {
            tracing::warn!(target = %self.target, "the PostgreSQL connection was closed; reconnecting");
            *s = session(&self.config, &self.tls, &self.target)?;
        }
        Ok(s)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_never_show_the_password() {
        let c =
            postgres::Config::from_str("postgres://alice:hunter2@db.example:6543/roster").unwrap();
        let d = describe(&c);
        assert_eq!(d, "db.example:6543 (user alice, database roster)");
        assert!(!d.contains("hunter2"));
    }
}
