//! The console from the command line: `admin add|passwd`, `token create|list|revoke`,
//! `serve`, `demo`, and the first owner that `init` creates.

use std::io::{IsTerminal, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand, ValueEnum};
use engine::{Progress, SyncRequest};
use jiff::Timestamp;
use rostersync_core::plan::SyncKind;
use rostersync_core::settings::{Config, SourceKind};
use server::auth;
use sim::idp::google::{GoogleAccount, GoogleStandIn};
use store::{ApiTokenId, ConsoleRole, Store, TokenScope, Trigger};

use crate::config_cmd::cli_actor;
use crate::env::{StateArgs, engine_failure, store_failure};
use crate::{Failure, output};

#[derive(Clone, Copy, ValueEnum)]
pub enum Role {
    Owner,
    Admin,
    Viewer,
}

impl Role {
    fn console(self) -> ConsoleRole {
        match self {
            Role::Owner => ConsoleRole::Owner,
            Role::Admin => ConsoleRole::Admin,
            Role::Viewer => ConsoleRole::Viewer,
        }
    }
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Add a console account; prints a generated password once (or reads one).
    Add {
        name: String,
        #[arg(long, value_enum)]
        role: Role,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a console account's password (ends its sessions); prints a generated one once.
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List console accounts.
    List,
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create an API token; prints only the token (it is stored hashed: keep it now).
    Create {
        #[arg(long, value_enum)]
        scope: Scope,
        /// A name to recognise it by in the audit log.
        #[arg(long, default_value = "api")]
        name: String,
        /// Days until it stops working, or `never`.
        #[arg(long, value_name = "DAYS|never", default_value = "365", value_parser = parse_expiry)]
        expires: Expiry,
    },
    /// List API tokens (never their values): created, age, expiry, last use.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id.
    Revoke { id: ApiTokenId },
}

/// How long a new token works.
#[derive(Clone, Copy, Debug)]
pub enum Expiry {
    Days(u32),
    Never,
}

/// The longest `--expires` in days (about 100 years; `never` is clearer beyond that).
const MAX_EXPIRY_DAYS: u32 = 36_500;

fn parse_expiry(s: &str) -> Result<Expiry, String> {
    if s.eq_ignore_ascii_case("never") {
        return Ok(Expiry::Never);
    }
    match s.parse::<u32>() {
        Ok(d) if (1..=MAX_EXPIRY_DAYS).contains(&d) => Ok(Expiry::Days(d)),
        _ => Err(format!(
            "'{s}' is not a number of days from 1 to {MAX_EXPIRY_DAYS}, nor `never`"
        )),
    }
}

impl Expiry {
    fn at(self, now: Timestamp) -> Result<Option<Timestamp>, Failure> {
        match self {
            Expiry::Never => Ok(None),
            Expiry::Days(d) => now
                .checked_add(jiff::SignedDuration::from_hours(24 * i64::from(d)))
                .map(Some)
                .map_err(|e| Failure::config(format!("cannot work out the expiry: {e}"))),
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Scope {
    Read,
    Write,
    /// For an identity provider's SCIM connection: `/scim/v2` only. `--name` is the
    /// connection's source (`kind = "scim"`).
    Scim,
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on (put a TLS proxy in front for anything but localhost).
    #[arg(long, default_value = "127.0.0.1:8080", env = "ROSTERSYNC_LISTEN")]
    listen: SocketAddr,
    /// Mark cookies Secure: set when people reach the console over https.
    #[arg(long)]
    secure_cookies: bool,
    /// Do not run the scheduler in this process.
    #[arg(long)]
    no_scheduler: bool,
    /// A reverse proxy's address or range (repeatable): only requests from it have their
    /// client address taken from X-Forwarded-For (for sign-in throttling and the log).
    #[arg(long = "trusted-proxy", value_name = "CIDR")]
    trusted_proxy: Vec<server::Cidr>,
    /// The only folder from which the console and the API may choose CSV packages
    /// (default: DATA_DIR/imports). Paths set by `config import` are not limited.
    #[arg(long, value_name = "DIR")]
    import_dir: Option<PathBuf>,
    /// On Ctrl-C or SIGTERM, how long running syncs may take to finish before they are
    /// marked interrupted and the server exits 1.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    shutdown_grace: u64,
}

#[derive(Args)]
pub struct DemoArgs {
    /// Directory for the demo's database and key (recreated on every start).
    #[arg(long, default_value = "./rostersync-demo")]
    dir: PathBuf,
    /// People in the simulated district.
    #[arg(long, default_value_t = 3000)]
    users: u32,
    /// Address for the console (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
}

fn read_password() -> Result<String, Failure> {
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s).map_err(|e| {
        Failure::config(format!("cannot read the password from standard input: {e}"))
    })?;
    let p = s.trim_end_matches(['\n', '\r']).to_owned();
    if p.is_empty() {
        return Err(Failure::config("standard input held no password"));
    }
    Ok(p)
}

fn hash(password: &str) -> Result<String, Failure> {
    auth::hash_password(password).map_err(|e| Failure::config(e.message))
}

fn generated() -> Result<String, Failure> {
    auth::generate_password().map_err(|e| Failure::config(e.message))
}

pub fn admin(state_args: &StateArgs, cmd: AdminCommand) -> Result<u8, Failure> {
    let state = state_args.open()?;
    let store = &state.store;
    match cmd {
        AdminCommand::Add {
            name,
            role,
            password_stdin,
        } => {
            if name.trim().is_empty() || name.chars().any(char::is_whitespace) {
                return Err(Failure::config(
                    "an account name has no spaces and is not empty",
                ));
            }
            let password = if password_stdin {
                read_password()?
            } else {
                generated()?
            };
            store
                .create_console_account(
                    &name,
                    role.console(),
                    &hash(&password)?,
                    &cli_actor(),
                    Timestamp::now(),
                )
                .map_err(store_failure)?;
            if !password_stdin {
                output::line(&password);
                output::note(&format!(
                    "console account {name} ({}) added; the password above is shown once",
                    role.console().as_str()
                ));
            }
            Ok(0)
        }
        AdminCommand::Passwd {
            name,
            password_stdin,
        } => {
            let password = if password_stdin {
                read_password()?
            } else {
                generated()?
            };
            store
                .set_console_password(&name, &hash(&password)?, &cli_actor(), Timestamp::now())
                .map_err(store_failure)?;
            if !password_stdin {
                output::line(&password);
                output::note(&format!(
                    "new password for {name} (shown once); its sessions ended"
                ));
            }
            Ok(0)
        }
        AdminCommand::List => {
            for a in store.console_accounts().map_err(store_failure)? {
                output::line(&format!(
                    "{:<24} {:<7} {}{}",
                    a.name,
                    a.role.as_str(),
                    a.created_at,
                    if a.disabled { " (disabled)" } else { "" }
                ));
            }
            Ok(0)
        }
    }
}

pub fn token(state_args: &StateArgs, cmd: TokenCommand) -> Result<u8, Failure> {
    let state = state_args.open()?;
    let store = &state.store;
    match cmd {
        TokenCommand::Create {
            scope,
            name,
            expires,
        } => {
            let scope = match scope {
                Scope::Read => TokenScope::Read,
                Scope::Write => TokenScope::Write,
                Scope::Scim => TokenScope::Scim,
            };
            if scope == TokenScope::Scim {
                let config = store.load_config().map_err(store_failure)?;
                let connection = config.source(&name).filter(|s| s.kind == SourceKind::Scim);
                if connection.is_none() {
                    return Err(Failure::config(format!(
                        "a scim token is named after its SCIM connection, and no source named '{name}' has kind = \"scim\": add [[source]] name = \"{name}\" kind = \"scim\" to the settings (rostersync config import FILE.toml), then pass --name {name}"
                    )));
                }
            }
            let value = auth::generate_token().map_err(|e| Failure::config(e.message))?;
            let now = Timestamp::now();
            let expires_at = expires.at(now)?;
            store
                .create_api_token(
                    &name,
                    scope,
                    &auth::sha256_hex(&value),
                    expires_at,
                    &cli_actor(),
                    now,
                )
                .map_err(store_failure)?;
            output::line(&value);
            output::note(&match expires_at {
                Some(at) => {
                    format!("token '{name}' works until {at}; the value above is shown once")
                }
                None => format!(
                    "token '{name}' never expires (revoke it with `rostersync token revoke ID`); the value above is shown once"
                ),
            });
            Ok(0)
        }
        TokenCommand::List { json } => {
            let now = Timestamp::now();
            let tokens = store.api_tokens().map_err(store_failure)?;
            if json {
                let list: Vec<serde_json::Value> =
                    tokens.iter().map(|t| token_json(t, now)).collect();
                output::json(&list);
                return Ok(0);
            }
            for t in &tokens {
                output::line(&token_line(t, now));
            }
            Ok(0)
        }
        TokenCommand::Revoke { id } => {
            store
                .revoke_api_token(id, &cli_actor(), Timestamp::now())
                .map_err(store_failure)?;
            output::line(&format!("token #{id} revoked"));
            Ok(0)
        }
    }
}

/// Whole days from `from` to `to` (negative when `to` is earlier).
fn days_between(from: Timestamp, to: Timestamp) -> i64 {
    (to.as_second() - from.as_second()) / 86_400
}

/// Days left until `to`, a part-day counted as a day: a token made for 365 days says "in
/// 365 days" for its whole first day, not 364 a second after it was made.
fn days_left(now: Timestamp, to: Timestamp) -> i64 {
    (to.as_second() - now.as_second() + 86_399).div_euclid(86_400)
}

/// A token as `token list --json` prints it.
fn token_json(t: &store::ApiTokenRecord, now: Timestamp) -> serde_json::Value {
    serde_json::json!({
        "id": t.id,
        "name": t.name,
        "scope": t.scope.as_str(),
        "created_by": t.created_by,
        "created_at": t.created_at,
        "age_days": days_between(t.created_at, now),
        "expires_at": t.expires_at,
        "expired": t.expired(now),
        "last_used": t.last_used,
        "revoked_at": t.revoked_at,
    })
}

/// A token as `token list` prints it: one line.
fn token_line(t: &store::ApiTokenRecord, now: Timestamp) -> String {
    let expires = match t.expires_at {
        None => "never expires".to_owned(),
        Some(e) if t.expired(now) => format!("EXPIRED {e}"),
        Some(e) => format!("expires {e} (in {} days)", days_left(now, e)),
    };
    format!(
        "#{:<4} {:<20} {:<5} created {} ({} days ago) by {}, {expires}, {}{}",
        t.id,
        t.name,
        t.scope.as_str(),
        t.created_at,
        days_between(t.created_at, now),
        t.created_by,
        t.last_used
            .map_or_else(|| "never used".to_owned(), |u| format!("last used {u}")),
        t.revoked_at
            .map(|r| format!(", REVOKED {r}"))
            .unwrap_or_default()
    )
}

/// Creates the owner `admin` when the database has no console account yet; returns its
/// password (to print once).
pub fn first_owner(store: &Store) -> Result<Option<String>, Failure> {
    if store.count_console_accounts().map_err(store_failure)? > 0 {
        return Ok(None);
    }
    let password = generated()?;
    store
        .create_console_account(
            "admin",
            ConsoleRole::Owner,
            &hash(&password)?,
            &cli_actor(),
            Timestamp::now(),
        )
        .map_err(store_failure)?;
    Ok(Some(password))
}

async fn until_stopped() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Serves until Ctrl-C or SIGTERM. The store is shared with the server and dropped here,
/// off the async runtime.
fn serve_until_stopped(
    store: Arc<Store>,
    keyring: store::keyring::Keyring,
    options: server::ServerOptions,
    runtime: &tokio::runtime::Runtime,
    grace: std::time::Duration,
    announce: impl FnOnce(&str),
) -> Result<u8, Failure> {
    let running = runtime
        .block_on(server::start(Arc::clone(&store), Some(keyring), options))
        .map_err(|e| Failure::config(e.to_string()))?;
    announce(&running.url());
    let abandoned = runtime.block_on(async {
        until_stopped().await;
        output::note(&format!(
            "stopping: no new work; waiting up to {} s for running syncs",
            grace.as_secs()
        ));
        running.shutdown(grace).await
    });
    if !abandoned.is_empty() {
        let ids: Vec<String> = abandoned.iter().map(|r| format!("run {r}")).collect();
        output::note(&format!(
            "stopped without finishing {} (marked interrupted; nothing of it was applied unless Sync History says otherwise)",
            ids.join(", ")
        ));
        // The abandoned run's thread still uses the runtime: end the process now rather
        // than tear the runtime down under it.
        std::process::exit(1);
    }
    drop(store);
    Ok(0)
}

pub fn serve(
    state_args: &StateArgs,
    args: ServeArgs,
    runtime: &tokio::runtime::Runtime,
) -> Result<u8, Failure> {
    let state = state_args.open()?;
    let store: Arc<Store> = Arc::from(state.store);
    let mut options = server::ServerOptions::new(args.listen);
    options.secure_cookies = args.secure_cookies;
    options.scheduler = !args.no_scheduler;
    options.trusted_proxies = args.trusted_proxy;
    let import_dir = args
        .import_dir
        .unwrap_or_else(|| state_args.data_dir.join("imports"));
    // Stored paths must not depend on the directory `serve` was started in.
    options.import_dir = Some(std::path::absolute(&import_dir).unwrap_or(import_dir));
    let grace = std::time::Duration::from_secs(args.shutdown_grace);
    serve_until_stopped(store, state.keyring, options, runtime, grace, |url| {
        output::note(&format!("rostersync console at {url} (Ctrl-C stops it)"));
    })
}

/// `rostersync demo`: a simulated district, single sign-on accounts to link, the source
/// configured, a first sync, then the console.
/// One engine step of the demo, its progress on stderr after `label` when stderr is a
/// terminal (and nothing otherwise: the demo's notes say what each step did).
fn demo_step<T>(
    state: &crate::env::State,
    runtime: &tokio::runtime::Runtime,
    label: &str,
    step: impl FnOnce(&engine::Context<'_>) -> Result<T, engine::EngineError>,
) -> Result<T, Failure> {
    let show = std::io::stderr().is_terminal();
    let progress = |p: Progress| {
        if show {
            output::progress(&format!("{label}: {p}"));
        }
    };
    let done = step(&state.context(runtime.handle(), &progress)).map_err(engine_failure);
    if show {
        output::progress_done();
    }
    done
}

pub fn demo(args: DemoArgs, runtime: &tokio::runtime::Runtime) -> Result<u8, Failure> {
    let marker = args.dir.join(".rostersync-demo");
    if args.dir.exists() {
        let empty = std::fs::read_dir(&args.dir)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !empty && !marker.exists() {
            return Err(Failure::config(format!(
                "{} exists and is not a demo directory: pass --dir with a new or empty directory",
                args.dir.display()
            )));
        }
        std::fs::remove_dir_all(&args.dir)
            .map_err(|e| Failure::config(format!("cannot clear {}: {e}", args.dir.display())))?;
    }
    crate::env::create_private_dir(&args.dir)?;
    std::fs::write(
        &marker,
        "made by rostersync demo; deleted and remade on every start\n",
    )
    .map_err(|e| Failure::config(format!("cannot create {}: {e}", args.dir.display())))?;
    let state_args = StateArgs {
        data_dir: args.dir.clone(),
        database: None,
    };
    let (state, _) = state_args.init()?;

    output::note(&format!("generating a district of {} people…", args.users));
    let sim = runtime
        .block_on(sim::Server::start(sim::SimConfig {
            district: sim::DistrictConfig {
                users: args.users,
                ..Default::default()
            },
            ..Default::default()
        }))
        .map_err(|e| Failure::config(format!("cannot start the simulated district: {e}")))?;

    // Google Workspace got there first for some: one in ten staff and students with an
    // email have a Google account (at the directory's address, after Translate Email),
    // and three staff only Google knows; the demo reads them from a stand-in of Google's
    // Directory API, as an account source.
    let mut google_accounts = sim::idp::google::district_accounts(&sim.district(), 10, |e| {
        e.replace("@students.district.k12.us", "@district.k12.us")
    });
    for (n, (given, family)) in [("Ana", "Reyes"), ("Omar", "Haddad"), ("Lena", "Fischer")]
        .into_iter()
        .enumerate()
    {
        let mut account = GoogleAccount::new(
            &format!("2{n:020}"),
            &format!(
                "{}.{}@district.k12.us",
                given.to_lowercase(),
                family.to_lowercase()
            ),
            given,
            family,
        );
        account.org_unit_path = "/Staff/Contractors".into();
        google_accounts.push(account);
    }
    let google = runtime
        .block_on(GoogleStandIn::start(google_accounts))
        .map_err(|e| Failure::config(format!("cannot start the Google stand-in: {e}")))?;

    // A help desk downstream, receiving the directory by SCIM: an in-process stand-in.
    let helpdesk_token = generated()?;
    let helpdesk = runtime
        .block_on(sim::helpdesk::Helpdesk::start(&helpdesk_token))
        .map_err(|e| Failure::config(format!("cannot start the simulated help desk: {e}")))?;

    let toml = format!(
        "[network]\nallow_loopback = true\n[[source]]\nname = \"district\"\nkind = \"oneroster-api\"\nurl = \"{}\"\nclient_id = \"{}\"\nauth = \"oauth2\"\ntoken_url = \"{}\"\n\
         [source.user_mapping]\ntranslate_email = [{{ from = \"students.district.k12.us\", to = \"district.k12.us\" }}]\n\
         [source.locations]\ndefault = \"District Office\"\n\
         [[source]]\nname = \"google\"\nkind = \"google-workspace\"\nsubject = \"{}\"\napi_url = \"{}\"\n\
         [[target]]\nname = \"helpdesk\"\nkind = \"scim\"\nurl = \"{}\"\nfollows = [\"district\"]\n",
        sim.base_url(),
        sim::DEFAULT_CLIENT_ID,
        sim.token_url().unwrap_or_default(),
        sim::idp::google::STANDIN_ADMIN,
        google.base_url(),
        helpdesk.url(),
    );
    let config = Config::from_toml(&toml).map_err(|e| Failure::config(e.to_string()))?;
    let secrets = vec![
        (
            "district".to_owned(),
            Some(state.keyring.encrypt(sim::DEFAULT_CLIENT_SECRET.as_bytes())),
        ),
        (
            "google".to_owned(),
            Some(state.keyring.encrypt(google.key_file().as_bytes())),
        ),
        (
            "helpdesk".to_owned(),
            Some(state.keyring.encrypt(helpdesk_token.as_bytes())),
        ),
    ];
    state
        .store
        .save_config(&config, &secrets, "demo", Timestamp::now())
        .map_err(store_failure)?;
    let password = first_owner(&state.store)?.unwrap_or_default();

    let run = |source: &str, label: &str| {
        let outcome = demo_step(&state, runtime, label, |ctx| {
            engine::sync(
                ctx,
                &SyncRequest {
                    source: source.into(),
                    kind: SyncKind::Full,
                    trigger: Trigger::Cli,
                    approved: false,
                },
                None,
            )
        })?;
        if let Some(error) = &outcome.error {
            return Err(Failure::config(format!("{label} failed: {error}")));
        }
        Ok(outcome)
    };
    // Accounts arrive from Google first (as single sign-on makes them), then the SIS
    // sync links them to its people, then Google again: the same accounts, nothing new.
    let c = run("google", "reading Google Workspace")?.counts;
    output::note(&format!(
        "Google Workspace (stand-in): {} accounts read, {} accounts created",
        c.seen, c.created
    ));
    let c = run("district", "first sync")?.counts;
    output::note(&format!(
        "first sync: {} people, {} accounts created, {} Google accounts linked, {} skipped",
        c.seen, c.created, c.linked, c.skipped
    ));
    let c = run("google", "reading Google Workspace again")?.counts;
    output::note(&format!(
        "Google Workspace again: {} accounts read, {} created, {} unchanged",
        c.seen, c.created, c.unchanged
    ));
    // The help desk follows the district: serve pushes to it after each sync of it; the
    // demo pushes once now.
    let pushed = demo_step(&state, runtime, "pushing to the help desk", |ctx| {
        engine::push(
            ctx,
            &engine::PushRequest {
                target: "helpdesk".into(),
                dry_run: false,
                trigger: Trigger::Cli,
            },
            None,
        )
    })?;
    if let Some(error) = &pushed.error {
        return Err(Failure::config(format!(
            "the push to the help desk failed: {error}"
        )));
    }
    output::note(&format!(
        "help desk (simulated, SCIM at {}): {} users created, {} adopted, {} now held there",
        helpdesk.url(),
        pushed.counts.created,
        pushed.counts.linked,
        helpdesk.users().len()
    ));

    let store: Arc<Store> = Arc::from(state.store);
    let mut options = server::ServerOptions::new(args.listen);
    options.scheduler = false;
    let grace = std::time::Duration::from_secs(30);
    let result = serve_until_stopped(store, state.keyring, options, runtime, grace, |url| {
        output::line(&format!("console:  {url}"));
        output::line("account:  admin");
        output::line(&format!("password: {password}"));
        output::note("Ctrl-C stops the demo");
    });
    drop(helpdesk);
    drop(google);
    drop(sim);
    result
}
