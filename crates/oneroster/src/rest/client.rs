//! The client's settings, errors and queries, and [`RestClient`]'s public face: making
//! one, pulling a collection, fetching one record, and what its requests cost.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde::Deserialize;

use super::oauth::CachedToken;
use crate::json;
use crate::model::{Class, Record, Version};
use crate::net::{AddressPolicy, redact_url};
use crate::oauth1::{self, SignatureMethod};
use crate::report::{CollectionReport, Coverage};
use crate::status::StatusInfo;

/// How the client proves who it is.
#[derive(Clone)]
pub enum Auth {
    /// Open test servers only.
    None,
    OAuth1 {
        consumer_key: String,
        consumer_secret: String,
        method: SignatureMethod,
    },
    OAuth2 {
        token_url: String,
        client_id: String,
        client_secret: String,
        scope: Option<String>,
        credentials: CredentialStyle,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets.
        match self {
            Auth::None => f.write_str("Auth::None"),
            Auth::OAuth1 {
                consumer_key,
                method,
                ..
            } => write!(f, "Auth::OAuth1({consumer_key}, {})", method.as_str()),
            Auth::OAuth2 {
                token_url,
                client_id,
                ..
            } => write!(f, "Auth::OAuth2({client_id} at {token_url})"),
        }
    }
}

/// Where an OAuth 2 token request carries the client id and secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CredentialStyle {
    /// `Authorization: Basic …` (RFC 6749's preference).
    #[default]
    Basic,
    /// `client_id` and `client_secret` form fields (some servers want this).
    Form,
}

/// Retries of one request: exponential backoff with full jitter, honouring `Retry-After`.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// The longest `Retry-After` honoured; longer asks fail the request.
    pub max_retry_after: Duration,
    /// The most one request may take, every attempt and every wait between them
    /// included: no retry starts past it, and each attempt's timeout is cut to what is
    /// left. Without it six attempts of a server that never answers took 6 × 120 s.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(300),
            max_elapsed: Duration::from_secs(120),
        }
    }
}

/// The default bound on one response body: 256 MiB, some ten times a page of 50 000
/// users (Infinite Campus's largest) at the ~1 KB a user takes.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 256 << 20;

#[derive(Debug, Clone)]
pub struct RestConfig {
    /// Everything before `/users`, e.g. `https://host/campus/oneroster/app/ims/oneroster/v1p1`.
    pub base_url: String,
    pub version: Version,
    pub auth: Auth,
    /// Records asked for per page (`limit`).
    pub page_size: u32,
    /// Requests in flight at once. Infinite Campus asks for 1 at peak, at most 5 off-peak.
    pub concurrency: usize,
    /// One request, connect to last byte (the body included: a server that sends its
    /// headers and then stalls fails too).
    pub timeout: Duration,
    /// The longest silence while a request waits for its answer or its next bytes: a
    /// server that says nothing for this long fails the attempt, however long the
    /// whole request may take.
    pub idle_timeout: Duration,
    pub retry: RetryPolicy,
    /// The largest response body read; past it the request fails. A body is counted as
    /// it streams in (after gzip), never read whole first.
    pub max_response_bytes: u64,
    /// Which internal addresses requests may reach (link-local never). Defaults to
    /// [`AddressPolicy::OPERATOR`]: the caller typed the URL; a service reading URLs
    /// from settings sets its own.
    pub address_policy: AddressPolicy,
}

impl RestConfig {
    pub fn new(base_url: impl Into<String>, auth: Auth) -> Self {
        let base_url = base_url.into();
        let version = if base_url.contains("v1p2") {
            Version::V1_2
        } else {
            Version::V1_1
        };
        RestConfig {
            base_url,
            version,
            auth,
            page_size: 1000,
            concurrency: 1,
            timeout: Duration::from_secs(120),
            retry: RetryPolicy::default(),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            idle_timeout: Duration::from_secs(60),
            address_policy: AddressPolicy::OPERATOR,
        }
    }
}

/// Its URLs are shown without credentials ([`redact_url`]): an error is logged, stored
/// as a run's and sent to the webhook.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    #[error("{0}")]
    Config(String),
    /// The token endpoint refused or failed.
    #[error("{status} from the token URL {}: {detail}", redact_url(.url))]
    Token {
        url: String,
        status: String,
        detail: String,
    },
    /// The server refused our credentials.
    #[error("{status} from {}: {detail}. {hint}", redact_url(.url))]
    Unauthorized {
        url: String,
        status: u16,
        detail: String,
        hint: &'static str,
    },
    #[error("HTTP {status} from {} after {attempts} attempt(s): {detail}", redact_url(.url))]
    Http {
        url: String,
        status: u16,
        detail: String,
        attempts: u32,
        status_info: Vec<StatusInfo>,
    },
    #[error("{}: {detail} (after {attempts} attempt(s))", redact_url(.url))]
    Transport {
        url: String,
        detail: String,
        attempts: u32,
    },
    #[error("{}: {detail}", redact_url(.url))]
    Protocol { url: String, detail: String },
    /// A response body past [`RestConfig::max_response_bytes`].
    #[error(
        "{}: the response is larger than {} MiB; refusing to read further (lower `page_size`, or if the server is sound raise `max_response_mb` under [source.limits])",
        redact_url(.url),
        .limit >> 20
    )]
    TooLarge { url: String, limit: u64 },
}

impl RestError {
    /// Errors an admin fixes in the settings (credentials, URL) rather than by waiting.
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            RestError::Config(_)
                | RestError::Token { .. }
                | RestError::Unauthorized { .. }
                | RestError::TooLarge { .. }
        )
    }
}

/// A `filter` expression: `field<op>'value'`, up to two joined by ` AND ` or ` OR `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter(String);

impl Filter {
    /// `field<op>'value'`; `op` is one of `= != > >= < <= ~`. Single quotes in the value
    /// are doubled, as in SQL-ish filter grammars.
    pub fn new(field: &str, op: &str, value: &str) -> Filter {
        Filter(format!("{field}{op}'{}'", value.replace('\'', "''")))
    }

    /// `dateLastModified>'…'`: the delta filter.
    pub fn modified_after(t: Timestamp) -> Filter {
        Filter::new(
            "dateLastModified",
            ">",
            &crate::lenient::format_timestamp(t),
        )
    }

    pub fn and(self, other: Filter) -> Filter {
        Filter(format!("{} AND {}", self.0, other.0))
    }

    pub fn or(self, other: Filter) -> Filter {
        Filter(format!("{} OR {}", self.0, other.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What to ask a collection for.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub filter: Option<Filter>,
    pub sort: Option<String>,
    pub fields: Option<String>,
}

pub struct RestClient {
    pub(super) http: reqwest::Client,
    pub(super) config: RestConfig,
    pub(super) token: tokio::sync::Mutex<Option<CachedToken>>,
    pub(super) requests: std::sync::atomic::AtomicU64,
    /// Requests answered with a failure status, or not answered (timeouts, resets).
    failures: std::sync::atomic::AtomicU64,
    /// Time spent waiting for answers, in microseconds.
    waited_us: std::sync::atomic::AtomicU64,
    /// The `expires_in` of the last access token, in seconds; 0 while none said one.
    pub(super) token_expires_in: std::sync::atomic::AtomicU64,
}

/// What the client's HTTP requests cost so far, for metrics: requests sent (token
/// requests and retries included), how many failed (an error status or no answer), and
/// the time spent waiting for answers.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RequestStats {
    pub requests: u64,
    pub failures: u64,
    pub seconds: f64,
}

impl std::fmt::Debug for RestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestClient")
            .field("base_url", &self.config.base_url)
            .field("auth", &self.config.auth)
            .finish()
    }
}

impl RestClient {
    pub fn new(config: RestConfig) -> Result<Arc<RestClient>, RestError> {
        let base = config.base_url.trim_end_matches('/').to_owned();
        let base = base.as_str();
        let policy = config.address_policy;
        policy
            .check_url("API URL", base)
            .map_err(RestError::Config)?;
        if let Auth::OAuth2 { token_url, .. } = &config.auth {
            policy
                .check_url("token URL", token_url)
                .map_err(RestError::Config)?;
        }
        if config.page_size == 0 {
            return Err(RestError::Config("page size must be at least 1".into()));
        }
        let http = policy
            .client_builder()
            .timeout(config.timeout)
            .read_timeout(config.idle_timeout)
            .connect_timeout(Duration::from_secs(15))
            .user_agent(concat!("rostersync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RestError::Config(format!("HTTP client: {e}")))?;
        let mut config = config;
        config.base_url = base.to_owned();
        config.concurrency = config.concurrency.max(1);
        Ok(Arc::new(RestClient {
            http,
            config,
            token: tokio::sync::Mutex::new(None),
            requests: std::sync::atomic::AtomicU64::new(0),
            failures: std::sync::atomic::AtomicU64::new(0),
            waited_us: std::sync::atomic::AtomicU64::new(0),
            token_expires_in: std::sync::atomic::AtomicU64::new(0),
        }))
    }

    pub fn config(&self) -> &RestConfig {
        &self.config
    }

    /// HTTP requests sent so far (token requests included).
    pub fn requests_sent(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How long the last access token lasts, in seconds, as the token service said
    /// (`expires_in`); `None` before a token was fetched, or when the answer did not say.
    pub fn token_expires_in(&self) -> Option<u64> {
        match self
            .token_expires_in
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            0 => None,
            n => Some(n),
        }
    }

    /// Requests, failures and time waited so far.
    pub fn request_stats(&self) -> RequestStats {
        use std::sync::atomic::Ordering::Relaxed;
        RequestStats {
            requests: self.requests.load(Relaxed),
            failures: self.failures.load(Relaxed),
            seconds: self.waited_us.load(Relaxed) as f64 / 1e6,
        }
    }

    /// Counts one answered (or unanswered) request.
    pub(super) fn observe(&self, started: Instant, ok: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.waited_us.fetch_add(us, Relaxed);
        if !ok {
            self.failures.fetch_add(1, Relaxed);
        }
    }

    /// Pulls a whole collection, handing each record to `sink` in server order.
    pub async fn pull<T>(
        self: &Arc<Self>,
        query: &Query,
        sink: impl FnMut(T),
    ) -> Result<CollectionReport, RestError>
    where
        T: Record + for<'de> Deserialize<'de> + Send + 'static,
    {
        let coverage = if query.filter.is_some() {
            Coverage::Delta
        } else {
            Coverage::Full
        };
        self.pull_path(T::COLLECTION.endpoint(), query, coverage, sink)
            .await
    }

    /// The classes of one user (`/users/{id}/classes`).
    pub async fn user_classes(
        self: &Arc<Self>,
        user_sourced_id: &str,
    ) -> Result<(Vec<Class>, CollectionReport), RestError> {
        let path = format!("users/{}/classes", oauth1::percent_encode(user_sourced_id));
        let mut out = Vec::new();
        let report = self
            .pull_path(&path, &Query::default(), Coverage::Full, |c: Class| {
                out.push(c)
            })
            .await?;
        Ok((out, report))
    }

    /// One record by id (`/users/{id}`); `None` on 404.
    pub async fn get<T>(&self, sourced_id: &str) -> Result<Option<T>, RestError>
    where
        T: Record + for<'de> Deserialize<'de>,
    {
        let url = format!(
            "{}/{}/{}",
            self.config.base_url,
            T::COLLECTION.endpoint(),
            oauth1::percent_encode(sourced_id)
        );
        match self.send(&url, self.deadline()).await {
            Ok((_, body)) => {
                json::parse_single::<T>(&body)
                    .map(Some)
                    .map_err(|e| RestError::Protocol {
                        url,
                        detail: format!("not a OneRoster {}: {e}", T::COLLECTION.singular()),
                    })
            }
            Err(RestError::Http { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_names_its_url_without_credentials() {
        let e = RestError::Http {
            url: "https://sis.example/ims/users?api_key=k3yvalue&limit=5".into(),
            status: 500,
            detail: "boom".into(),
            attempts: 3,
            status_info: Vec::new(),
        };
        let text = e.to_string();
        assert!(text.contains("api_key=REDACTED&limit=5"), "{text}");
        assert!(!text.contains("k3yvalue"), "{text}");
        let e = RestError::Token {
            url: "https://u:pw1234@sis.example/token".into(),
            status: "HTTP 401".into(),
            detail: "no".into(),
        };
        assert!(!e.to_string().contains("pw1234"), "{e}");
    }

    #[test]
    fn filter_expressions() {
        let t: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(
            Filter::modified_after(t)
                .and(Filter::new("status", "=", "active"))
                .as_str(),
            "dateLastModified>'2026-01-01T00:00:00Z' AND status='active'"
        );
        assert_eq!(
            Filter::new("familyName", "=", "O'Neil").as_str(),
            "familyName='O''Neil'"
        );
    }

    #[test]
    fn version_follows_the_url() {
        assert_eq!(
            RestConfig::new("https://h/ims/oneroster/rostering/v1p2", Auth::None).version,
            Version::V1_2
        );
        assert_eq!(
            RestConfig::new("https://h/ims/oneroster/v1p1", Auth::None).version,
            Version::V1_1
        );
    }

    #[test]
    fn bad_urls_are_configuration_errors() {
        let e = RestClient::new(RestConfig::new("ftp://h/x", Auth::None)).unwrap_err();
        assert!(e.is_configuration());
        assert!(e.to_string().contains("must start with https://"));
        let e = RestClient::new(RestConfig::new("not a url", Auth::None)).unwrap_err();
        assert!(e.to_string().contains("is not a URL"));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let a = Auth::OAuth2 {
            token_url: "https://t".into(),
            client_id: "id".into(),
            client_secret: "hunter2".into(),
            scope: None,
            credentials: CredentialStyle::Basic,
        };
        assert!(!format!("{a:?}").contains("hunter2"));
        let a = Auth::OAuth1 {
            consumer_key: "k".into(),
            consumer_secret: "hunter2".into(),
            method: SignatureMethod::HmacSha256,
        };
        assert!(!format!("{a:?}").contains("hunter2"));
    }
}
