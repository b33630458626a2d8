//! The security review's server items: `/metrics` labels a caller cannot grow, the
//! listener's header-read and request timeouts, internal and database errors answered
//! generically (with a reference, never SQL or the database's address), and API tokens
//! that expire and record their last use.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use reqwest::Method;
use server::{RunningServer, ServerOptions, auth};
use store::{Store, TokenScope};
use test_kit::unique;

use crate::harness::{App, Auth, Backend, Options, postgres_url};
use crate::on_both;

// ----- a server on a store the test controls (the harness's hides its database)

/// Where the test's database is, to break it behind the server's back.
enum Db {
    Sqlite(std::path::PathBuf),
    /// The admin URL, the test's own login role and schema.
    Postgres {
        admin: String,
        role: String,
    },
}

struct Served {
    runtime: tokio::runtime::Runtime,
    server: Option<RunningServer>,
    store: Option<Arc<Store>>,
    db: Db,
    dir: std::path::PathBuf,
    token: String,
}

impl Served {
    /// A server on a fresh SQLite file, or on PostgreSQL as a login role of its own
    /// (`None` when PostgreSQL is not available here), with a read token.
    fn start(backend: Backend, tune: impl FnOnce(&mut ServerOptions)) -> Option<Served> {
        let dir = std::env::temp_dir().join(unique("rostersync-hardening"));
        std::fs::create_dir_all(&dir).unwrap();
        let (url, db) = match backend {
            Backend::Sqlite => {
                let file = dir.join("rostersync.db");
                (file.display().to_string(), Db::Sqlite(file))
            }
            Backend::Postgres => {
                let admin = postgres_url()?;
                let role = unique("rs_role");
                let mut c = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
                c.batch_execute(&format!(
                    "CREATE ROLE {role} LOGIN; CREATE SCHEMA {role} AUTHORIZATION {role}"
                ))
                .unwrap();
                // The same server and database as the admin URL, as the new role.
                let (scheme, rest) = admin.split_once("://").unwrap();
                let rest = rest.split_once('@').map_or(rest, |(_, r)| r);
                let sep = if rest.contains('?') { '&' } else { '?' };
                (
                    format!("{scheme}://{role}@{rest}{sep}options=-c%20search_path%3D{role}"),
                    Db::Postgres { admin, role },
                )
            }
        };
        let store: Arc<Store> = Arc::from(store::open(&url).unwrap());
        let token = auth::generate_token().unwrap();
        store
            .create_api_token(
                "probe",
                TokenScope::Read,
                &auth::sha256_hex(&token),
                None,
                "test",
                Timestamp::now(),
            )
            .unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut options = ServerOptions::new("127.0.0.1:0".parse().unwrap());
        options.scheduler = false;
        tune(&mut options);
        let server = runtime
            .block_on(server::start(Arc::clone(&store), None, options))
            .unwrap();
        Some(Served {
            runtime,
            server: Some(server),
            store: Some(store),
            db,
            dir,
            token,
        })
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.server.as_ref().unwrap().addr
    }

    /// (status, body) of a GET, with the read token or without.
    fn get(&self, path: &str, with_token: bool) -> (u16, String) {
        let mut req = reqwest::blocking::Client::new().get(format!("http://{}{path}", self.addr()));
        if with_token {
            req = req.bearer_auth(&self.token);
        }
        let r = req.send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    }

    /// Runs SQL on the database behind the server's back.
    fn break_with(&self, sql: &str) {
        match &self.db {
            Db::Sqlite(file) => rusqlite::Connection::open(file)
                .unwrap()
                .execute_batch(sql)
                .unwrap(),
            Db::Postgres { admin, role } => {
                let mut c = postgres::Client::connect(admin, postgres::NoTls).unwrap();
                c.batch_execute(&format!("SET search_path TO {role}; {sql}"))
                    .unwrap();
            }
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            self.runtime.block_on(s.stop());
        }
        self.store = None;
        if let Db::Postgres { admin, role } = &self.db
            && let Ok(mut c) = postgres::Client::connect(admin, postgres::NoTls)
        {
            let _ = c.batch_execute(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'; \
                 DROP SCHEMA IF EXISTS {role} CASCADE; DROP ROLE IF EXISTS {role}"
            ));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `text` holds "reference " and 8 hex digits.
fn has_reference(text: &str) -> bool {
    text.split("reference ")
        .skip(1)
        .any(|rest| rest.len() >= 8 && rest.as_bytes()[..8].iter().all(|b| b.is_ascii_hexdigit()))
}

// ----- /metrics labels

#[test]
fn metrics_labels_are_a_fixed_set() {
    let app = App::start(Backend::Sqlite, Options::default()).unwrap();
    for (method, path) in [
        ("FOOBAR", "/users/12345"),
        ("PURGE", "/healthz"),
        ("GET", "/users/987654"),
        ("GET", "/no/such/page-31337"),
        ("DELETE", "/api/v1/users/555"),
    ] {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let _ = app.request(m, path, &Auth::None, None);
    }
    let metrics = app.get("/metrics", &Auth::Bearer(app.read_token.clone()));
    assert_eq!(metrics.status, 200, "{}", metrics.body);
    let series: Vec<&str> = metrics
        .body
        .lines()
        .filter(|l| l.starts_with("rostersync_http_requests_total{"))
        .collect();
    assert!(!series.is_empty(), "{}", metrics.body);
    for l in &series {
        let method = l
            .split("method=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap();
        assert!(
            [
                "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"
            ]
            .contains(&method),
            "{l}"
        );
        let route = l
            .split("route=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap();
        assert!(
            route == "unmatched"
                || server::routes::public_routes()
                    .into_iter()
                    .chain(server::routes::protected_routes())
                    .any(|r| r.path == route),
            "a route template or unmatched, never a raw path: {l}"
        );
    }
    let labels: Vec<&str> = metrics
        .body
        .lines()
        .filter_map(|l| l.split_once('{').and_then(|(_, r)| r.split_once('}')))
        .map(|(labels, _)| labels)
        .collect();
    for raw in ["FOOBAR", "PURGE", "12345", "987654", "31337", "555"] {
        assert!(
            !labels.iter().any(|l| l.contains(raw)),
            "{raw} became a label: {labels:?}"
        );
    }
    assert!(
        series
            .iter()
            .any(|l| l.contains("method=\"other\"") && l.contains("route=\"/healthz\"")),
        "{series:?}"
    );
    assert!(
        series.iter().any(|l| l.contains("route=\"/users/{id}\"")),
        "{series:?}"
    );
    assert!(
        series.iter().any(|l| l.contains("route=\"unmatched\"")),
        "{series:?}"
    );
}

// ----- timeouts

/// Reads until the server closes the connection; returns what came and how long it took.
fn read_to_close(stream: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let started = Instant::now();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "the connection was still open after {:?} ({e}); got {:?}",
                started.elapsed(),
                String::from_utf8_lossy(&got)
            ),
        }
    }
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn a_half_sent_request_is_disconnected() {
    let served = Served::start(Backend::Sqlite, |o| {
        o.header_read_timeout = Duration::from_millis(400);
    })
    .unwrap();
    let mut slow = TcpStream::connect(served.addr()).unwrap();
    slow.write_all(b"GET /healthz HT").unwrap();
    // Still open a moment later: it is the timeout that ends it, not the bytes.
    slow.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut byte = [0u8; 1];
    let early = slow.read(&mut byte);
    assert!(
        early.as_ref().is_err_and(|e| matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        )),
        "{early:?}"
    );
    let (got, took) = read_to_close(&mut slow, Duration::from_secs(5));
    assert!(got.is_empty(), "no answer to half a request: {got}");
    assert!(took < Duration::from_secs(3), "closed after {took:?}");

    // A connection that sends nothing at all goes the same way.
    let mut silent = TcpStream::connect(served.addr()).unwrap();
    let (_, took) = read_to_close(&mut silent, Duration::from_secs(5));
    assert!(took < Duration::from_secs(3), "closed after {took:?}");

    // Whole requests are answered as ever.
    let (status, body) = served.get("/healthz", false);
    assert_eq!((status, body.as_str()), (200, "ok\n"));
}

#[test]
fn a_request_whose_body_stalls_is_answered_503() {
    let served = Served::start(Backend::Sqlite, |o| {
        o.request_timeout = Duration::from_millis(400);
    })
    .unwrap();
    let mut slow = TcpStream::connect(served.addr()).unwrap();
    slow.write_all(
        b"POST /login HTTP/1.1\r\nHost: test\r\nContent-Type: application/x-www-form-urlencoded\r\n\
          Content-Length: 100\r\n\r\nname=adam",
    )
    .unwrap();
    let started = Instant::now();
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 4096];
    let n = slow.read(&mut buf).unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

// ----- internal and database errors

fn store_errors_are_answered_generically(backend: Backend) {
    let Some(served) = Served::start(backend, |_| {}) else {
        return;
    };
    assert_eq!(served.get("/api/v1/audit", true).0, 200);
    assert_eq!(served.get("/readyz", false), (200, "ready\n".to_owned()));

    served.break_with("DROP TABLE audit_log");
    let (status, body) = served.get("/api/v1/audit", true);
    assert_eq!(status, 500, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "internal", "{body}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("internal error, reference "), "{body}");
    assert!(has_reference(message), "{body}");
    for detail in ["audit_log", "table", "relation", "SELECT", "database error"] {
        assert!(
            !body.contains(detail),
            "{detail} reached the client: {body}"
        );
    }

    served.break_with("DROP TABLE meta");
    let (status, body) = served.get("/readyz", false);
    assert_eq!(status, 503, "{body}");
    assert!(body.starts_with("not ready (reference "), "{body}");
    assert!(has_reference(&body), "{body}");
    for detail in ["meta", "table", "relation", "SELECT"] {
        assert!(
            !body.contains(detail),
            "{detail} reached the client: {body}"
        );
    }
}

#[test]
fn store_errors_are_answered_generically_sqlite() {
    store_errors_are_answered_generically(Backend::Sqlite);
}

#[test]
fn store_errors_are_answered_generically_postgres() {
    store_errors_are_answered_generically(Backend::Postgres);
}

/// The database refusing connections: the error names its host, port, user and database;
/// neither anonymous `/readyz` nor a signed-in client sees any of it.
#[test]
fn readyz_does_not_name_an_unreachable_database() {
    let Some(served) = Served::start(Backend::Postgres, |_| {}) else {
        return;
    };
    let Db::Postgres { admin, role } = &served.db else {
        unreachable!()
    };
    assert_eq!(served.get("/readyz", false).0, 200);
    let mut c = postgres::Client::connect(admin, postgres::NoTls).unwrap();
    c.batch_execute(&format!(
        "ALTER ROLE {role} NOLOGIN; \
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"
    ))
    .unwrap();
    let host = admin
        .split_once('@')
        .map(|(_, r)| r.split(['/', '?']).next().unwrap_or(r))
        .unwrap()
        .to_owned();
    // The first answer may come from the dying connection, the later ones from failed
    // reconnections: all generic.
    for _ in 0..3 {
        let (status, body) = served.get("/readyz", false);
        assert_eq!(status, 503, "{body}");
        assert!(has_reference(&body), "{body}");
        for detail in [
            host.as_str(),
            role.as_str(),
            "PostgreSQL",
            "user",
            "database",
        ] {
            assert!(
                !body.contains(detail),
                "{detail} reached the client: {body}"
            );
        }
        let (status, body) = served.get("/api/v1/audit", true);
        assert!(status == 503 || status == 500, "{status} {body}");
        assert!(has_reference(&body), "{body}");
        for detail in [host.as_str(), role.as_str(), "PostgreSQL"] {
            assert!(
                !body.contains(detail),
                "{detail} reached the client: {body}"
            );
        }
    }
    // What was kept from them: the store's own error names the role.
    let err = served
        .store
        .as_ref()
        .unwrap()
        .meta_get("schema_version")
        .unwrap_err();
    assert!(matches!(err, store::StoreError::Open(_)), "{err}");
    assert!(err.to_string().contains(role.as_str()), "{err}");
    let _ = c.batch_execute(&format!("ALTER ROLE {role} LOGIN"));
}

// ----- token expiry and last use

fn last_used(app: &App, name: &str) -> Option<Timestamp> {
    app.store
        .api_tokens()
        .unwrap()
        .into_iter()
        .find(|t| t.name == name)
        .unwrap()
        .last_used
}

fn tokens_expire_and_record_their_last_use(app: App) {
    let start = app.clock_now();
    let at = |secs: i64| start + SignedDuration::from_secs(secs);
    let value = auth::generate_token().unwrap();
    app.store
        .create_api_token(
            "nightly",
            TokenScope::Read,
            &auth::sha256_hex(&value),
            Some(at(86_400)),
            "test",
            start,
        )
        .unwrap();
    let bearer = Auth::Bearer(value);
    assert_eq!(last_used(&app, "nightly"), None);
    assert_eq!(app.get("/api/v1/audit", &bearer).status, 200);
    assert_eq!(last_used(&app, "nightly"), Some(start));
    // Within a minute: no write.
    app.clock.set(at(30));
    assert_eq!(app.get("/api/v1/audit", &bearer).status, 200);
    assert_eq!(last_used(&app, "nightly"), Some(start));
    app.clock.set(at(120));
    assert_eq!(app.get("/api/v1/audit", &bearer).status, 200);
    assert_eq!(last_used(&app, "nightly"), Some(at(120)));
    // Expired: refused like an unknown token, and not recorded as used.
    app.clock.set(at(86_400));
    let r = app.get("/api/v1/audit", &bearer);
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("\"unauthorized\""), "{}", r.body);
    assert_eq!(last_used(&app, "nightly"), Some(at(120)));
    // Tokens without an expiry keep working.
    app.clock.set(at(86_400 * 3650));
    assert_eq!(
        app.get("/api/v1/audit", &Auth::Bearer(app.read_token.clone()))
            .status,
        200
    );
}

on_both!(tokens, crate::harness::plain; tokens_expire_and_record_their_last_use);
