//! `rostersync serve`: the admin console (server-rendered HTML, htmx only to enhance),
//! the JSON API under `/api/v1`, sign-in, sessions and API tokens, the scheduler and
//! `/metrics`.
//!
//! Why it looks the way it does:
//! - The store is blocking (and the PostgreSQL client panics on a Tokio worker), so every
//!   store call from a handler goes through [`blocking`] (`spawn_blocking`), and runs own
//!   a plain thread ([`runner`]).
//! - Authorisation is enforced once, in middleware ([`auth::require`]): no principal, no
//!   route; an unsafe method needs a writer and, with a session, the CSRF token. Handlers
//!   only add the owner check for protected settings. Forgetting a check on a new route is
//!   then impossible, and the tests walk every route of [`routes`] to prove it.
//! - Secrets never leave: the client secret is write-only everywhere ("set"/"not set").

mod api;
pub mod auth;
mod confirm;
mod error;
mod flash;
mod listener;
mod locations;
#[cfg(test)]
mod log_capture;
mod metrics;
mod overview;
mod pages;
mod people;
pub mod proxy;
pub mod routes;
mod runner;
pub mod scheduler;
pub mod scim;
mod security;
mod settings_edit;
mod targets;
pub mod throttle;
mod user_list;
mod validation;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use jiff::Timestamp;
use store::keyring::Keyring;
use store::{RunId, Store};
use tokio::sync::watch;

pub use error::ApiError;
pub use proxy::Cidr;
pub use runner::Live;
pub use scheduler::{Clock, ManualClock, SystemClock};
pub use user_list::{csv_cell, csv_header, csv_line};

/// How the server runs.
#[derive(Clone)]
pub struct ServerOptions {
    pub listen: SocketAddr,
    /// Mark cookies `Secure`: set when the console is reached over https (a TLS proxy in
    /// front); browsers then never send them over plain http.
    pub secure_cookies: bool,
    /// Run the scheduler in this process (it still elects one leader per database).
    pub scheduler: bool,
    /// The scheduler's and sessions' clock; tests move a [`ManualClock`].
    pub clock: Arc<dyn Clock>,
    /// How often the scheduler looks at the clock.
    pub scheduler_tick: Duration,
    /// A client that has not sent a whole request head by then is disconnected (also how
    /// long an idle keep-alive connection stays open). See [`listener`].
    pub header_read_timeout: Duration,
    /// The longest a request may take from its head to the answer's head, reading its
    /// body included; then it is answered 503.
    pub request_timeout: Duration,
    /// Reverse proxies whose `X-Forwarded-For` names the client (`--trusted-proxy`); with
    /// none, the header is ignored. See [`proxy`].
    pub trusted_proxies: Vec<Cidr>,
    /// The only folder CSV packages may be chosen from in the console and the API
    /// (`serve --import-dir`); `None`: CSV paths are set only by `config import`.
    pub import_dir: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerOptions")
            .field("listen", &self.listen)
            .field("secure_cookies", &self.secure_cookies)
            .field("scheduler", &self.scheduler)
            .field("trusted_proxies", &self.trusted_proxies)
            .finish_non_exhaustive()
    }
}

impl ServerOptions {
    pub fn new(listen: SocketAddr) -> ServerOptions {
        ServerOptions {
            listen,
            secure_cookies: false,
            scheduler: true,
            clock: Arc::new(SystemClock),
            scheduler_tick: Duration::from_secs(5),
            header_read_timeout: Duration::from_secs(15),
            request_timeout: Duration::from_secs(60),
            trusted_proxies: Vec::new(),
            import_dir: None,
        }
    }
}

/// What every handler shares.
pub struct AppState {
    pub store: Arc<Store>,
    pub keyring: Option<Keyring>,
    pub runtime: tokio::runtime::Handle,
    pub live: Live,
    pub metrics: metrics::Metrics,
    pub throttle: throttle::Throttle,
    /// Messages for the page after a console form's redirect.
    pub flashes: flash::Flashes,
    /// When each source was last validated (Validate is spaced out per source).
    pub validations: validation::Throttle,
    pub options: ServerOptions,
    /// A name for locks and logs: `serve@HOST:PID`.
    pub holder: String,
}

pub type Shared = Arc<AppState>;

impl AppState {
    pub fn now(&self) -> Timestamp {
        self.options.clock.now()
    }

    /// What the engine needs to run here: this server's store, key, runtime, clock and
    /// lock holder, with `progress` told how a run goes.
    pub fn context<'a>(
        &'a self,
        progress: &'a (dyn Fn(engine::Progress) + Sync),
    ) -> engine::Context<'a> {
        engine::Context {
            store: self.store.as_ref(),
            keyring: self.keyring.as_ref(),
            runtime: &self.runtime,
            progress,
            clock: self.options.clock.as_ref(),
            holder: &self.holder,
            max_plan_items: engine::MAX_PLAN_ITEMS,
            account_chunk: engine::ACCOUNT_CHUNK,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source} — pick another address with --listen")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Runs a store call off the async runtime.
pub async fn blocking<T, F>(state: &Shared, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Store) -> Result<T, ApiError> + Send + 'static,
{
    off_runtime(state, f, ApiError::internal).await
}

/// Runs a store call that `who` makes now off the async runtime: `f` is given the store,
/// the actor the audit log names ([`auth::Principal::actor`]) and the time.
pub async fn blocking_as<T, F>(state: &Shared, who: &auth::Principal, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Store, &str, Timestamp) -> Result<T, ApiError> + Send + 'static,
{
    let actor = who.actor();
    let now = state.now();
    blocking(state, move |store| f(store, &actor, now)).await
}

/// Runs a store call off the async runtime, with errors of any kind: `failed` answers
/// for a call whose thread did not finish, given what happened.
pub(crate) async fn off_runtime<T, E, F>(
    state: &Shared,
    f: F,
    failed: impl FnOnce(String) -> E,
) -> Result<T, E>
where
    T: Send + 'static,
    E: Send + 'static,
    F: FnOnce(&Store) -> Result<T, E> + Send + 'static,
{
    let store = Arc::clone(&state.store);
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .map_err(|e| failed(format!("a background task failed: {e}")))?
}

/// The whole application: console, API, health, metrics, assets.
pub fn router(state: Shared) -> Router {
    routes::build(state)
}

/// A server running in the background; [`RunningServer::stop`] ends it.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub state: Shared,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    scheduler: Option<scheduler::SchedulerHandle>,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl RunningServer {
    /// The console's URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the scheduler (waiting for it) and the HTTP server. Runs in progress finish
    /// on their own threads.
    pub async fn stop(mut self) {
        if let Some(s) = self.scheduler.take() {
            let _ = tokio::task::spawn_blocking(move || s.stop()).await;
        }
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    /// Stops taking work (the scheduler, then new connections), gives the syncs still
    /// running up to `grace` to finish, and marks any that did not `interrupted` (a run
    /// applies in one transaction, so whichever lands last — the mark or the run's own
    /// end — says what happened). Returns the runs it had to abandon.
    pub async fn shutdown(mut self, grace: Duration) -> Vec<RunId> {
        if let Some(s) = self.scheduler.take() {
            let _ = tokio::task::spawn_blocking(move || s.stop()).await;
        }
        let _ = self.stop.send(true);
        let state = Arc::clone(&self.state);
        let unfinished = state.live.settle(tokio::time::Instant::now() + grace).await;
        let abandoned: Vec<RunId> = unfinished.iter().filter_map(|r| r.run_id).collect();
        for &run in &abandoned {
            let note = format!(
                "interrupted: rostersync serve was stopped and the run did not finish within {} s; nothing of it was applied unless Sync History shows it succeeded",
                grace.as_secs()
            );
            let result = blocking(&state, move |store| {
                Ok(store.interrupt_run(run, &note, Timestamp::now())?)
            })
            .await;
            if let Err(e) = result {
                tracing::error!(run = run.0, error = %e.message, "could not mark an abandoned run interrupted");
            }
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        abandoned
    }

    /// Waits until the server stops by itself (it does not, short of an error).
    pub async fn wait(mut self) {
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

/// Binds and serves on the current runtime. The caller keeps a clone of `store` and drops
/// it off the runtime (a PostgreSQL store must not be dropped on a Tokio worker).
pub async fn start(
    store: Arc<Store>,
    keyring: Option<Keyring>,
    options: ServerOptions,
) -> Result<RunningServer, ServerError> {
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| ServerError::Bind {
            addr: options.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: options.listen,
        source,
    })?;
    let holder = format!(
        "serve@{}:{}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into()),
        std::process::id()
    );
    let state = Arc::new(AppState {
        store,
        keyring,
        runtime: tokio::runtime::Handle::current(),
        live: Live::default(),
        metrics: metrics::Metrics::default(),
        throttle: throttle::Throttle::default(),
        flashes: flash::Flashes::default(),
        validations: validation::Throttle::default(),
        options: options.clone(),
        holder,
    });
    // The dummy password hash is made now, not by the first sign-in of an unknown name.
    tokio::task::spawn_blocking(auth::prepare);
    let scheduler = options
        .scheduler
        .then(|| scheduler::spawn(Arc::clone(&state)));
    let app = listener::with_request_timeout(router(Arc::clone(&state)), options.request_timeout);
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(listener::serve(
        listener,
        app,
        options.header_read_timeout,
        stopped,
    ));
    tracing::info!(%addr, "console listening");
    Ok(RunningServer {
        addr,
        state,
        stop,
        task: Some(task),
        scheduler,
    })
}
pub use api::OPENAPI;
