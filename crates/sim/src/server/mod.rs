//! The OneRoster REST provider: Infinite Campus URL layout, OAuth 1.0a and 2, paging,
//! filters, faults, and a loopback-only endpoint that moves the district forward in time.
//!
//! Pages are encoded on demand from the shared compact [`District`]; the only per-query
//! state kept is the list of matching record indexes (a few bytes per record), cached for
//! the few most recent queries so paging through a filtered or sorted collection does not
//! re-scan it for every page.

mod api;
mod auth;
pub mod faults;
pub(crate) mod query;

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use tokio::sync::watch;

use crate::error::SimError;
use crate::model::{District, DistrictConfig};
use crate::records::Version;
use crate::serving::Serving;
use crate::stats::Counts;
pub use faults::Faults;

/// How clients must authenticate to the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AuthMode {
    /// OAuth 2 client credentials against the token URL (Basic or form credentials).
    #[serde(rename = "oauth2")]
    OAuth2,
    /// OAuth 1.0a two-legged, HMAC-SHA256.
    #[serde(rename = "oauth1-sha256")]
    OAuth1Sha256,
    /// OAuth 1.0a two-legged, HMAC-SHA1.
    #[serde(rename = "oauth1-sha1")]
    OAuth1Sha1,
    /// No authentication.
    #[serde(rename = "none")]
    None,
}

impl FromStr for AuthMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "oauth2" => Ok(AuthMode::OAuth2),
            "oauth1-sha256" => Ok(AuthMode::OAuth1Sha256),
            "oauth1-sha1" => Ok(AuthMode::OAuth1Sha1),
            "none" => Ok(AuthMode::None),
            other => Err(format!(
                "unknown auth mode `{other}`: use oauth2, oauth1-sha256, oauth1-sha1 or none"
            )),
        }
    }
}

/// Default credentials of a simulated provider.
pub const DEFAULT_CLIENT_ID: &str = "sim-client";
pub const DEFAULT_CLIENT_SECRET: &str = "sim-secret";
/// The Campus "appName" in the URLs.
pub const DEFAULT_APP_NAME: &str = "district";
/// OAuth 2 token lifetime unless `token_ttl` says otherwise.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(3600);
/// `limit` when the request gives none.
pub const DEFAULT_PAGE_SIZE: u32 = 100;

/// Everything a simulated provider needs.
#[derive(Clone)]
pub struct SimConfig {
    pub district: DistrictConfig,
    pub version: Version,
    pub auth: AuthMode,
    pub client_id: String,
    pub client_secret: String,
    pub app_name: String,
    /// 0 = any free port. The server always listens on 127.0.0.1.
    pub port: u16,
    /// Silently caps `limit`.
    pub max_page_size: Option<u32>,
    pub faults: Faults,
    /// Serve removed records as `status: tobedeleted` instead of letting them vanish.
    pub flag_deletions: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            district: DistrictConfig::default(),
            version: Version::V1p1,
            auth: AuthMode::OAuth2,
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            client_secret: DEFAULT_CLIENT_SECRET.to_owned(),
            app_name: DEFAULT_APP_NAME.to_owned(),
            port: 0,
            max_page_size: None,
            faults: Faults::default(),
            flag_deletions: false,
        }
    }
}

impl SimConfig {
    /// The API root path for this version, Infinite Campus style.
    pub fn api_root(&self) -> String {
        match self.version {
            Version::V1p1 => format!("/campus/oneroster/{}/ims/oneroster/v1p1", self.app_name),
            Version::V1p2 => format!(
                "/campus/api/oneroster/v1p2/{}/ims/oneroster/rostering/v1p2",
                self.app_name
            ),
        }
    }
}

/// A cached query result: the matching record indexes in response order.
pub(crate) struct CachedList {
    key: String,
    ids: Arc<Vec<u32>>,
}

const CACHED_LISTS: usize = 8;

pub(crate) struct AppState {
    pub config: SimConfig,
    pub api_root: String,
    pub district: RwLock<Arc<District>>,
    /// Bumped on every advance: part of every cache key.
    pub generation: AtomicU64,
    pub requests: AtomicU64,
    pub tokens: Mutex<std::collections::HashMap<String, std::time::Instant>>,
    pub nonces: Mutex<std::collections::HashMap<(String, String), i64>>,
    pub lists: Mutex<VecDeque<CachedList>>,
    pub advancing: tokio::sync::Mutex<()>,
    /// The `advance_mid_users` fault fired (it fires once).
    pub advanced_mid_users: std::sync::atomic::AtomicBool,
    pub shutdown: watch::Receiver<bool>,
}

impl AppState {
    pub(crate) fn district(&self) -> Arc<District> {
        match self.district.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub(crate) fn cached_list(&self, key: &str) -> Option<Arc<Vec<u32>>> {
        let lists = self.lists.lock().ok()?;
        lists
            .iter()
            .find(|l| l.key == key)
            .map(|l| Arc::clone(&l.ids))
    }

    pub(crate) fn cache_list(&self, key: String, ids: Arc<Vec<u32>>) {
        if let Ok(mut lists) = self.lists.lock() {
            lists.retain(|l| l.key != key);
            if lists.len() >= CACHED_LISTS {
                lists.pop_front();
            }
            lists.push_back(CachedList { key, ids });
        }
    }

    /// Moves the served district forward; requests in flight finish on the old day.
    pub(crate) async fn advance(self: &Arc<Self>, days: u32) -> Result<Arc<District>, SimError> {
        let _one_at_a_time = self.advancing.lock().await;
        let current = self.district();
        let next = tokio::task::spawn_blocking(move || {
            let mut next = District::clone(&current);
            next.advance(days);
            next
        })
        .await
        .map_err(|e| SimError::Task(e.to_string()))?;
        let next = Arc::new(next);
        match self.district.write() {
            Ok(mut guard) => *guard = Arc::clone(&next),
            Err(poisoned) => *poisoned.into_inner() = Arc::clone(&next),
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut lists) = self.lists.lock() {
            lists.clear();
        }
        Ok(next)
    }
}

/// Starts simulated providers.
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Generates the district (on a blocking thread) and serves it on 127.0.0.1 from the
    /// current tokio runtime.
    pub async fn start(config: SimConfig) -> Result<RunningSim, SimError> {
        let district_config = config.district.clone();
        let district = tokio::task::spawn_blocking(move || District::generate(&district_config))
            .await
            .map_err(|e| SimError::Task(e.to_string()))??;
        Server::start_with(config, district).await
    }

    /// Serves an already generated district (its own day is used, not `config.district.day`).
    pub async fn start_with(config: SimConfig, district: District) -> Result<RunningSim, SimError> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, config.port))
            .await
            .map_err(|source| SimError::Bind {
                port: config.port,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            port: config.port,
            source,
        })?;
        let (stop, shutdown) = watch::channel(false);
        let api_root = config.api_root();
        let base_url = format!("http://{addr}{api_root}");
        let token_url = (config.auth == AuthMode::OAuth2).then(|| {
            format!(
                "http://{addr}/campus/oauth2/token?appName={}",
                config.app_name
            )
        });
        let state = Arc::new(AppState {
            api_root: api_root.clone(),
            config,
            district: RwLock::new(Arc::new(district)),
            generation: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            tokens: Mutex::new(std::collections::HashMap::new()),
            nonces: Mutex::new(std::collections::HashMap::new()),
            lists: Mutex::new(VecDeque::new()),
            advancing: tokio::sync::Mutex::new(()),
            advanced_mid_users: std::sync::atomic::AtomicBool::new(false),
            shutdown,
        });
        let router = Router::new()
            .route("/campus/oauth2/token", post(auth::token))
            .route("/_sim/advance", post(api::advance))
            .route("/_sim/status", get(api::status))
            .route(&format!("{api_root}/{{*rest}}"), get(api::collection))
            .fallback(api::not_found)
            .with_state(Arc::clone(&state));
        let serving = Serving::until(listener, router, stop, "simulated OneRoster provider");
        tracing::info!(%base_url, "simulated OneRoster provider listening");
        Ok(RunningSim {
            addr,
            base_url,
            token_url,
            state,
            serving,
        })
    }
}

/// A provider serving in the background; it stops when dropped (or on [`RunningSim::stop`]).
pub struct RunningSim {
    addr: SocketAddr,
    base_url: String,
    token_url: Option<String>,
    state: Arc<AppState>,
    serving: Serving,
}

impl std::fmt::Debug for RunningSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningSim")
            .field("base_url", &self.base_url)
            .field("token_url", &self.token_url)
            .finish_non_exhaustive()
    }
}

impl RunningSim {
    /// The OneRoster API root, e.g. `http://127.0.0.1:PORT/campus/oneroster/district/ims/oneroster/v1p1`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The OAuth 2 token URL (with `appName`), or `None` unless auth is oauth2.
    pub fn token_url(&self) -> Option<&str> {
        self.token_url.as_deref()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn config(&self) -> &SimConfig {
        &self.state.config
    }

    /// The district as currently served.
    pub fn district(&self) -> Arc<District> {
        self.state.district()
    }

    pub fn day(&self) -> u32 {
        self.state.district().day()
    }

    /// What the API currently serves, per collection and role.
    pub fn counts(&self) -> Counts {
        self.state.district().counts()
    }

    /// Moves the served district forward `days` days; returns the new day.
    pub async fn advance(&self, days: u32) -> Result<u32, SimError> {
        Ok(self.state.advance(days).await?.day())
    }

    /// Stops serving and waits for the server task to end.
    pub async fn stop(self) {
        self.serving.stop().await;
    }
}
