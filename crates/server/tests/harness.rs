//! One running server per test, on SQLite or on a fresh PostgreSQL schema, with three
//! console accounts (owner, admin, viewer), a read and a write token, and optionally a
//! simulated district configured as the source `campus`.
//!
//! Tests are plain `#[test]` functions with their own Tokio runtime: the PostgreSQL store
//! must be dropped off the runtime, which a sync test function guarantees. The rules for
//! a missing PostgreSQL are `test_kit`'s.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderValue};
use rostersync_core::directory::AccountId;
use server::{ManualClock, RunningServer, ServerOptions, auth};
use store::keyring::Keyring;
use store::{ConsoleRole, Store, TokenScope};
pub use test_kit::{Backend, postgres_url, sample_district};
use test_kit::{PgSchema, TempDir};

pub const PASSWORD: &str = "correct horse battery staple";
pub const SIM_SECRET: &str = "sim-secret";

/// How a request proves who it is.
#[derive(Clone, Debug)]
pub enum Auth {
    None,
    Bearer(String),
    /// The session cookie and its CSRF token.
    Session {
        cookie: String,
        csrf: String,
    },
    /// The session cookie without the CSRF token.
    SessionNoCsrf(String),
}

pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    pub fn location(&self) -> String {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
}

pub struct Options {
    pub sim_users: Option<u32>,
    pub sim_faults: &'static str,
    pub scheduler: bool,
    pub clock: Timestamp,
    /// Configure the simulated district as the source `campus` (else the test does).
    pub configure_source: bool,
    /// `--trusted-proxy` ranges (tests send X-Forwarded-For from 127.0.0.1).
    pub trusted_proxies: Vec<server::Cidr>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sim_users: None,
            sim_faults: "",
            scheduler: false,
            clock: Timestamp::now(),
            configure_source: true,
            trusted_proxies: Vec::new(),
        }
    }
}

/// Fields drop in order: the store's connections close before its schema is dropped.
pub struct App {
    #[allow(dead_code)]
    pub backend: Backend,
    pub url: String,
    pub dir: TempDir,
    pub runtime: tokio::runtime::Runtime,
    pub store: Arc<Store>,
    pub keyring: Keyring,
    pub clock: Arc<ManualClock>,
    pub sim: Option<sim::RunningSim>,
    pub read_token: String,
    pub write_token: String,
    server: Option<RunningServer>,
    schema: Option<PgSchema>,
    client: reqwest::Client,
}

impl App {
    pub fn start(backend: Backend, opts: Options) -> Option<App> {
        let schema = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PgSchema::create("srv")?),
        };
        let dir = TempDir::new("rostersync-server-test");
        let url = match &schema {
            None => dir.join("rostersync.db").display().to_string(),
            Some(schema) => schema.url().to_owned(),
        };
        let store: Arc<Store> = Arc::from(store::open(&url).unwrap());
        let keyring = Keyring::create(&dir.join("master.key")).unwrap();
        let now = Timestamp::now();
        for (name, role) in [
            ("olivia", ConsoleRole::Owner),
            ("adam", ConsoleRole::Admin),
            ("vera", ConsoleRole::Viewer),
        ] {
            store
                .create_console_account(
                    name,
                    role,
                    &auth::hash_password(PASSWORD).unwrap(),
                    "test",
                    now,
                )
                .unwrap();
        }
        let mut tokens = Vec::new();
        for scope in [TokenScope::Read, TokenScope::Write] {
            let t = auth::generate_token().unwrap();
            store
                .create_api_token(
                    scope.as_str(),
                    scope,
                    &auth::sha256_hex(&t),
                    None,
                    "test",
                    now,
                )
                .unwrap();
            tokens.push(t);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let sim = opts.sim_users.map(|users| {
            runtime
                .block_on(sim::Server::start(sim::SimConfig {
                    district: sim::DistrictConfig {
                        users,
                        ..Default::default()
                    },
                    faults: opts.sim_faults.parse().unwrap(),
                    ..Default::default()
                }))
                .unwrap()
        });
        let clock = Arc::new(ManualClock::new(opts.clock));
        let mut options = ServerOptions::new("127.0.0.1:0".parse().unwrap());
        options.scheduler = opts.scheduler;
        options.clock = clock.clone();
        options.scheduler_tick = Duration::from_millis(100);
        options.trusted_proxies = opts.trusted_proxies.clone();
        options.import_dir = Some(dir.join("imports"));
        let server = runtime
            .block_on(server::start(
                Arc::clone(&store),
                Some(keyring.clone()),
                options,
            ))
            .unwrap();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut app = App {
            backend,
            url: server.url(),
            dir,
            runtime,
            store,
            keyring,
            clock,
            sim,
            read_token: tokens.remove(0),
            write_token: tokens.remove(0),
            server: Some(server),
            schema,
            client,
        };
        if app.sim.is_some() && opts.configure_source {
            app.configure_sim("");
        }
        Some(app)
    }

    /// Configures the simulated district as the source `campus`, with `extra` TOML.
    pub fn configure_sim(&mut self, extra: &str) {
        self.configure_sim_at(self.sim.as_ref().unwrap(), extra);
    }

    /// Serves the test's simulated district once more, with `faults` (e.g.
    /// `empty_users=1`, which makes a full sync want to deactivate everyone: held).
    /// Stop it with `stop_sim`.
    pub fn faulty_sim(&self, faults: &str) -> sim::RunningSim {
        let running = self.sim.as_ref().unwrap();
        let config = sim::SimConfig {
            faults: faults.parse().unwrap(),
            ..running.config().clone()
        };
        let district = (*running.district()).clone();
        self.runtime
            .block_on(sim::Server::start_with(config, district))
            .unwrap()
    }

    pub fn stop_sim(&self, sim: sim::RunningSim) {
        self.runtime.block_on(sim.stop());
    }

    /// Points the source `campus` at `sim` (its other settings and its secret kept).
    pub fn point_source_at(&self, sim: &sim::RunningSim) {
        let mut config = self.store.load_config().unwrap();
        let s = config
            .sources
            .iter_mut()
            .find(|s| s.name == "campus")
            .unwrap();
        s.url = Some(sim.base_url().to_owned());
        s.token_url = sim.token_url().map(str::to_owned);
        self.store
            .save_config(&config, &[], "test", Timestamp::now())
            .unwrap();
    }

    /// Configures the source `campus` from TOML (a `[[source]]` table with its settings),
    /// with no secret.
    /// The project's small CSV district (`sample_district`) copied here, `extra_users`
    /// rows added to users.csv, as the source `campus` (with `extra_toml`); its folder.
    pub fn csv_district(&self, extra_users: &str, extra_toml: &str) -> PathBuf {
        let to = test_kit::copy_sample_district(&self.dir, "district", extra_users);
        self.configure(&format!(
            "[[source]]\nname = \"campus\"\nkind = \"oneroster-csv\"\npath = \"{}\"\n{extra_toml}",
            to.display()
        ));
        to
    }

    /// A single sign-on account, as `accounts import` makes it; its id.
    pub fn sso(&self, email: &str, first: &str, last: &str) -> AccountId {
        self.store
            .import_accounts(
                &[store::NewAccountRow {
                    email: email.to_owned(),
                    first_name: Some(first.to_owned()),
                    last_name: Some(last.to_owned()),
                    username: None,
                }],
                "google",
                Timestamp::now(),
            )
            .unwrap();
        self.store.find_user(email).unwrap().unwrap().user.id
    }

    pub fn configure(&self, toml: &str) {
        let config = rostersync_core::settings::Config::from_toml(toml).unwrap();
        self.store
            .save_config(&config, &[], "test", Timestamp::now())
            .unwrap();
    }

    /// Configures `sim` as the source `campus`, with `extra` TOML.
    pub fn configure_sim_at(&self, sim: &sim::RunningSim, extra: &str) {
        let toml = format!(
            "[network]\nallow_loopback = true\n[[source]]\nname = \"campus\"\nkind = \"oneroster-api\"\nurl = \"{}\"\nclient_id = \"{}\"\nauth = \"oauth2\"\ntoken_url = \"{}\"\n{extra}",
            sim.base_url(),
            sim::DEFAULT_CLIENT_ID,
            sim.token_url().unwrap()
        );
        let config = rostersync_core::settings::Config::from_toml(&toml).unwrap();
        let secret = self.keyring.encrypt(SIM_SECRET.as_bytes());
        self.store
            .save_config(
                &config,
                &[("campus".into(), Some(secret))],
                "test",
                Timestamp::now(),
            )
            .unwrap();
    }

    pub fn request(&self, method: Method, path: &str, auth: &Auth, body: Option<Body>) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.url));
        match auth {
            Auth::None => {}
            Auth::Bearer(t) => req = req.bearer_auth(t),
            Auth::Session { cookie, csrf } => {
                req = req
                    .header("cookie", format!("rs_session={cookie}"))
                    .header("x-csrf-token", csrf.as_str());
            }
            Auth::SessionNoCsrf(cookie) => {
                req = req.header("cookie", format!("rs_session={cookie}"))
            }
        }
        match body {
            None => {}
            Some(Body::Json(v)) => req = req.json(&v),
            Some(Body::Form(pairs)) => {
                let text = pairs
                    .iter()
                    .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
                    .collect::<Vec<_>>()
                    .join("&");
                req = req
                    .header(
                        "content-type",
                        HeaderValue::from_static("application/x-www-form-urlencoded"),
                    )
                    .body(text);
            }
        }
        self.runtime.block_on(async {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            let body = r.text().await.unwrap();
            Reply {
                status,
                headers,
                body,
            }
        })
    }

    /// Runs SQL on the server's database behind its back (to make a store call fail);
    /// on PostgreSQL in the app's own schema.
    pub fn run_sql(&self, sqlite: &str, postgres: &str) {
        let db = self.dir.join("rostersync.db");
        test_kit::run_sql(&db, self.schema.as_ref(), sqlite, postgres);
    }

    /// The running server's shared state (its throttle and counters).
    pub fn server_state(&self) -> &server::Shared {
        &self.server.as_ref().unwrap().state
    }

    /// Marks a console account disabled, straight in the database: PostgreSQL only (the
    /// store has no call for it); `false` on SQLite.
    pub fn disable_console_account(&self, name: &str) -> bool {
        let Some(schema) = &self.schema else {
            return false;
        };
        let n = test_kit::connect(schema.admin())
            .execute(
                &format!(
                    "UPDATE {}.console_accounts SET disabled = true WHERE name = $1",
                    schema.name()
                ),
                &[&name],
            )
            .unwrap();
        assert_eq!(n, 1, "no account {name}");
        true
    }

    /// One sign-in through the form (a fresh form first), from `forwarded_for` when given
    /// (an X-Forwarded-For header). Answers the POST's reply.
    pub fn sign_in(
        &self,
        name: &str,
        password: &str,
        next: &str,
        forwarded_for: Option<&str>,
    ) -> Reply {
        let form = self.get("/login", &Auth::None);
        let login_cookie = set_cookie(&form.headers, "rs_login").expect("the form sets rs_login");
        let csrf = hidden(&form.body, "csrf");
        self.runtime.block_on(async {
            let mut req = self
                .client
                .post(format!("{}/login", self.url))
                .header("cookie", format!("rs_login={login_cookie}"))
                .form(&[
                    ("name", name),
                    ("password", password),
                    ("csrf", &csrf),
                    ("next", next),
                ]);
            if let Some(f) = forwarded_for {
                req = req.header("x-forwarded-for", f);
            }
            let r = req.send().await.unwrap();
            Reply {
                status: r.status().as_u16(),
                headers: r.headers().clone(),
                body: r.text().await.unwrap(),
            }
        })
    }

    /// Follows a redirect `reply` with `auth`.
    pub fn follow(&self, reply: &Reply, auth: &Auth) -> Reply {
        assert_eq!(reply.status, 303, "not a redirect: {}", reply.body);
        self.get(&reply.location(), auth)
    }

    pub fn clock_now(&self) -> Timestamp {
        use server::Clock;
        self.clock.now()
    }

    pub fn get(&self, path: &str, auth: &Auth) -> Reply {
        self.request(Method::GET, path, auth, None)
    }

    /// Signs in through the form; returns the session.
    pub fn login(&self, name: &str) -> Auth {
        let form = self.get("/login", &Auth::None);
        assert_eq!(form.status, 200);
        let login_cookie = set_cookie(&form.headers, "rs_login").expect("the form sets rs_login");
        let csrf = hidden(&form.body, "csrf");
        let r = self.runtime.block_on(async {
            self.client
                .post(format!("{}/login", self.url))
                .header("cookie", format!("rs_login={login_cookie}"))
                .form(&[
                    ("name", name),
                    ("password", PASSWORD),
                    ("csrf", &csrf),
                    ("next", "/"),
                ])
                .send()
                .await
                .unwrap()
        });
        assert_eq!(r.status().as_u16(), 303, "sign-in of {name}");
        let cookie = set_cookie(r.headers(), "rs_session").expect("a session cookie");
        let page = self.get("/", &Auth::SessionNoCsrf(cookie.clone()));
        assert_eq!(page.status, 200, "{}", page.body);
        Auth::Session {
            csrf: hidden(&page.body, "csrf"),
            cookie,
        }
    }

    /// Waits until the server's run of `source` finishes; returns its live state.
    pub fn wait_for_sync(&self, source: &str) -> serde_json::Value {
        let auth = Auth::Bearer(self.read_token.clone());
        poll(60, &format!("the sync of {source} to finish"), || {
            let r = self.get(&format!("/api/v1/sources/{source}/sync"), &auth);
            if r.status == 200 && r.json()["finished"] == true {
                Ok(r.json())
            } else {
                Err(r.body)
            }
        })
    }

    /// Runs a full sync through the API and waits for it: it succeeded.
    pub fn full_sync(&self) -> serde_json::Value {
        let done = self.sync_full();
        assert_eq!(done["status"], "succeeded", "{done}");
        done
    }

    /// Runs a full sync through the API and waits for it, however it ends.
    pub fn sync_full(&self) -> serde_json::Value {
        let r = self.request(
            Method::POST,
            "/api/v1/sources/campus/sync",
            &Auth::Bearer(self.write_token.clone()),
            Some(Body::Json(serde_json::json!({"kind": "full"}))),
        );
        assert_eq!(r.status, 202, "{}", r.body);
        self.wait_for_sync("campus")
    }
}

pub enum Body {
    Json(serde_json::Value),
    Form(Vec<(String, String)>),
}

pub fn form(pairs: &[(&str, &str)]) -> Option<Body> {
    Some(Body::Form(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    ))
}

pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v.to_owned())
}

/// The value of the first hidden input named `name`.
pub fn hidden(html: &str, name: &str) -> String {
    let needle = format!("name=\"{name}\" value=\"");
    let at = html
        .find(&needle)
        .unwrap_or_else(|| panic!("no hidden {name} in {html}"));
    let rest = &html[at + needle.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            self.runtime.block_on(s.stop());
        }
        if let Some(s) = self.sim.take() {
            self.runtime.block_on(s.stop());
        }
    }
}

/// Options with a small simulated district as the source `campus`.
pub fn with_sim() -> Options {
    Options {
        sim_users: Some(200),
        ..Options::default()
    }
}

pub fn plain() -> Options {
    Options::default()
}

/// Instantiates each listed `fn(App)` on SQLite and on PostgreSQL, in module `$group`,
/// with the options `$opts()` returns.
#[macro_export]
macro_rules! on_both {
    ($group:ident, $opts:path; $($name:ident),+ $(,)?) => {
        mod $group {
            use super::{$($name),+};

            fn run(backend: $crate::harness::Backend, test: fn($crate::harness::App)) {
                if let Some(app) = $crate::harness::App::start(backend, $opts()) {
                    test(app);
                }
            }

            test_kit::on_both!(super::run; $($name),+);
        }
    };
}

/// Asks `seen` every 100 ms until it answers `Ok`, for at most `secs` seconds; then fails
/// the test, saying it waited for `what` and what `seen` answered last.
pub fn poll<T>(secs: u64, what: &str, mut seen: impl FnMut() -> Result<T, String>) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match seen() {
            Ok(done) => return done,
            Err(last) if std::time::Instant::now() >= deadline => {
                panic!("waited {secs} s for {what}; last seen: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}
