//! The OneRoster REST client: authentication, paging, retries, completeness.
//!
//! Servers differ from the standard in ways that matter for a sync: some cap the page size
//! without saying so, some send no `X-Total-Count`, some hide an error in a 200, totals can
//! move while a pull runs. The pager trusts nothing it did not check, and says in the
//! [`CollectionReport`] exactly what it proved, because later only a complete pull may
//! deactivate anyone.

use std::collections::HashSet;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use jiff::Timestamp;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use serde::Deserialize;

use crate::json::{self, Page};
use crate::model::{Class, Record, Version};
use crate::net::{AddressPolicy, is_html_page, short_remote_text};
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

/// The bound on a token response, which is a few hundred bytes.
const MAX_TOKEN_RESPONSE_BYTES: u64 = 1 << 20;

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

#[derive(Debug, thiserror::Error)]
pub enum RestError {
    #[error("{0}")]
    Config(String),
    /// The token endpoint refused or failed.
    #[error("{status} from the token URL {url}: {detail}")]
    Token {
        url: String,
        status: String,
        detail: String,
    },
    /// The server refused our credentials.
    #[error("{status} from {url}: {detail}. {hint}")]
    Unauthorized {
        url: String,
        status: u16,
        detail: String,
        hint: &'static str,
    },
    #[error("HTTP {status} from {url} after {attempts} attempt(s): {detail}")]
    Http {
        url: String,
        status: u16,
        detail: String,
        attempts: u32,
        status_info: Vec<StatusInfo>,
    },
    #[error("{url}: {detail} (after {attempts} attempt(s))")]
    Transport {
        url: String,
        detail: String,
        attempts: u32,
    },
    #[error("{url}: {detail}")]
    Protocol { url: String, detail: String },
    /// A response body past [`RestConfig::max_response_bytes`].
    #[error(
        "{url}: the response is larger than {} MiB; refusing to read further (lower `page_size`, or if the server is sound raise `max_response_mb` under [source.limits])",
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

#[derive(Debug)]
struct CachedToken {
    value: String,
    good_until: Instant,
}

pub struct RestClient {
    http: reqwest::Client,
    config: RestConfig,
    token: tokio::sync::Mutex<Option<CachedToken>>,
    requests: std::sync::atomic::AtomicU64,
    /// Requests answered with a failure status, or not answered (timeouts, resets).
    failures: std::sync::atomic::AtomicU64,
    /// Time spent waiting for answers, in microseconds.
    waited_us: std::sync::atomic::AtomicU64,
    /// The `expires_in` of the last access token, in seconds; 0 while none said one.
    token_expires_in: std::sync::atomic::AtomicU64,
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

/// One fetched page, before its records are handed out.
struct Fetched<T> {
    page: Page<T>,
    total: Option<u64>,
    next: Option<String>,
    url: String,
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
    fn observe(&self, started: Instant, ok: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.waited_us.fetch_add(us, Relaxed);
        if !ok {
            self.failures.fetch_add(1, Relaxed);
        }
    }

    /// Pulls a whole collection, handing each record to `sink` in server order.
    pub async fn pull<T>(
        &self,
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
        &self,
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

    fn page_url(&self, path: &str, query: &Query, offset: u64, limit: u32) -> String {
        let (base, base_query) = match self.config.base_url.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (self.config.base_url.as_str(), None),
        };
        let mut url = format!("{base}/{path}?limit={limit}&offset={offset}");
        let enc = oauth1::percent_encode;
        if let Some(f) = &query.filter {
            url.push_str("&filter=");
            url.push_str(&enc(f.as_str()));
        }
        if let Some(s) = &query.sort {
            url.push_str("&sort=");
            url.push_str(&enc(s));
        }
        if let Some(f) = &query.fields {
            url.push_str("&fields=");
            url.push_str(&enc(f));
        }
        if let Some(q) = base_query {
            url.push('&');
            url.push_str(q);
        }
        url
    }

    async fn pull_path<T>(
        &self,
        path: &str,
        query: &Query,
        coverage: Coverage,
        mut sink: impl FnMut(T),
    ) -> Result<CollectionReport, RestError>
    where
        T: Record + for<'de> Deserialize<'de> + Send + 'static,
    {
        let mut report = CollectionReport::new(T::COLLECTION, coverage);
        let limit = self.config.page_size;
        let mut seen = SeenIds::default();
        let mut last_total: Option<u64> = None;
        let mut offset = 0u64;
        // A page as large as asked proves the server does not cap the page size, so a
        // short page after it is the end. Before that, a short page may be a silent cap.
        let mut saw_full_page = false;

        let first = self
            .fetch_page::<T>(self.page_url(path, query, 0, limit))
            .await?;
        let mut pending: Option<Fetched<T>> = Some(first);
        while let Some(fetched) = pending.take() {
            let n = fetched.page.records.len() as u64;
            self.account(&mut report, &mut seen, &fetched, &mut last_total);
            let next_link = fetched.next.clone();
            for rec in fetched.page.records {
                sink(rec);
            }
            // A short page after a full one, with the total still ahead: the server does
            // not cap pages, so records moved or vanished under the pager.
            if saw_full_page
                && n < u64::from(limit)
                && last_total.is_some_and(|total| offset + n < total)
            {
                report.problem(format!(
                    "a page at offset {offset} held {n} records, fewer than the {limit} asked for, before the end: the data moved between pages"
                ));
            }
            offset += n;
            saw_full_page |= n == u64::from(limit);

            // Several pages in flight at once, when the total says where the end is.
            if self.config.concurrency > 1
                && next_link.is_none()
                && n == u64::from(limit)
                && let Some(total) = last_total
            {
                self.pull_by_offsets(
                    path,
                    query,
                    offset,
                    total,
                    &mut report,
                    &mut seen,
                    &mut last_total,
                    &mut sink,
                )
                .await?;
                break;
            }

            let next_url = if let Some(next) = next_link {
                Some(next)
            } else if n == 0 {
                if let Some(total) = last_total.filter(|t| offset < *t) {
                    report.problem(format!(
                        "the server returned an empty page at offset {offset} but reported {total} records"
                    ));
                }
                None
            } else if let Some(total) = last_total {
                // Offsets advance by what came, so a capped page size is harmless.
                (offset < total).then(|| self.page_url(path, query, offset, limit))
            } else if n < u64::from(limit) && saw_full_page {
                None
            } else {
                // No total and no link: ask until a page comes back empty (or short after
                // a full one).
                Some(self.page_url(path, query, offset, limit))
            };
            if let Some(url) = next_url {
                pending = Some(self.fetch_page::<T>(url).await?);
            }
        }
        self.finish(&mut report, &seen, last_total);
        Ok(report)
    }

    #[allow(clippy::too_many_arguments)]
    async fn pull_by_offsets<T>(
        &self,
        path: &str,
        query: &Query,
        start: u64,
        total: u64,
        report: &mut CollectionReport,
        seen: &mut SeenIds,
        last_total: &mut Option<u64>,
        sink: &mut impl FnMut(T),
    ) -> Result<(), RestError>
    where
        T: Record + for<'de> Deserialize<'de> + Send + 'static,
    {
        let limit = u64::from(self.config.page_size);
        let mut offsets = (start..total).step_by(limit as usize);
        let mut in_flight = FuturesOrdered::new();
        let mut fetched_to = start;
        loop {
            while in_flight.len() < self.config.concurrency {
                let Some(off) = offsets.next() else { break };
                let url = self.page_url(path, query, off, self.config.page_size);
                in_flight.push_back(self.fetch_page::<T>(url));
            }
            let Some(result) = in_flight.next().await else {
                break;
            };
            let fetched = result?;
            let n = fetched.page.records.len() as u64;
            self.account(report, seen, &fetched, last_total);
            fetched_to += n;
            for rec in fetched.page.records {
                sink(rec);
            }
            if n < limit && fetched_to < total {
                report.problem(format!(
                    "a page at offset {} held {n} records where {limit} were asked for and more were expected",
                    fetched_to - n
                ));
            }
        }
        Ok(())
    }

    fn account<T: Record>(
        &self,
        report: &mut CollectionReport,
        seen: &mut SeenIds,
        fetched: &Fetched<T>,
        last_total: &mut Option<u64>,
    ) {
        report.pages += 1;
        let page_no = report.pages;
        if let Some(t) = fetched.total {
            if last_total.is_some_and(|l| l != t) {
                report.problem(format!(
                    "X-Total-Count changed during the pull ({} then {t} on page {page_no})",
                    last_total.unwrap_or_default()
                ));
            }
            *last_total = Some(t);
        }
        for s in &fetched.page.status {
            if s.is_failure() {
                report.problem(format!(
                    "page {page_no} ({}) came with a failure status: {s}",
                    fetched.url
                ));
            } else if report.sample_warnings.len() < crate::report::SAMPLE_WARNINGS {
                report
                    .sample_warnings
                    .push(format!("server said on page {page_no}: {s}"));
            }
        }
        let collection = T::COLLECTION;
        for rec in &fetched.page.records {
            if !seen.insert(rec.sourced_id()) {
                seen.duplicates += 1;
            }
            report.saw(rec.base(), || {
                format!(
                    "{collection} page {page_no}, sourcedId {}: ",
                    rec.sourced_id()
                )
            });
        }
    }

    fn finish(&self, report: &mut CollectionReport, seen: &SeenIds, last_total: Option<u64>) {
        report.expected = last_total;
        if seen.duplicates > 0 {
            report.problem(format!(
                "{} record(s) came twice: the data moved between pages, so some may have been missed",
                seen.duplicates
            ));
        }
        if let Some(total) = last_total
            && report.records != total
        {
            report.problem(format!(
                "received {} records, the server reported {total}",
                report.records
            ));
        }
        report.complete = report.problems.is_empty();
    }

    /// Fetches and parses one page, retrying what is worth retrying.
    async fn fetch_page<T>(&self, url: String) -> Result<Fetched<T>, RestError>
    where
        T: Record + for<'de> Deserialize<'de>,
    {
        let mut parse_failures = 0;
        // Fetching the page again after a body cut short shares the one budget.
        let deadline = self.deadline();
        loop {
            let (headers, body) = self.send(&url, deadline).await?;
            match json::parse_page::<T>(&body) {
                Ok(page) => {
                    if page.envelope.is_none() {
                        let failure = page.status.iter().find(|s| s.is_failure());
                        return Err(RestError::Protocol {
                            url,
                            detail: match failure {
                                Some(s) => format!("a 200 response carrying an error: {s}"),
                                None => format!(
                                    "the response has no `{}` array",
                                    T::COLLECTION.endpoint()
                                ),
                            },
                        });
                    }
                    return Ok(Fetched {
                        page,
                        total: header_u64(&headers, "x-total-count"),
                        next: next_link(&headers, &url),
                        url,
                    });
                }
                // A login or maintenance page served with 200: say so, do not retry.
                Err(_) if is_html_page(&body) => {
                    return Err(RestError::Protocol {
                        url,
                        detail: "the server answered 200 with an HTML page (a login, proxy or maintenance page?) instead of OneRoster JSON: check the API URL, and whether the SIS is down for maintenance".into(),
                    });
                }
                Err(e)
                    if (e.is_eof() || e.is_syntax())
                        && parse_failures + 1 < self.config.retry.attempts
                        && Instant::now() + self.backoff(parse_failures + 1) < deadline =>
                {
                    // A body cut short is a transport fault as much as a 500 is.
                    parse_failures += 1;
                    tracing::warn!(%url, error = %e, "unreadable page, fetching it again");
                    tokio::time::sleep(self.backoff(parse_failures)).await;
                }
                Err(e) => {
                    return Err(RestError::Protocol {
                        url,
                        detail: format!("the page is not valid OneRoster JSON: {e}"),
                    });
                }
            }
        }
    }

    /// When a request starting now must be done, retries included.
    fn deadline(&self) -> Instant {
        Instant::now() + self.config.retry.max_elapsed
    }

    /// One GET with authentication and retries, all done by `deadline`; the body of a 2xx.
    async fn send(&self, url: &str, deadline: Instant) -> Result<(HeaderMap, Vec<u8>), RestError> {
        let mut attempt = 0u32;
        let mut refreshed_token = false;
        let first_try = Instant::now();
        loop {
            attempt += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            let mut req = self
                .http
                .get(url)
                .header(header::ACCEPT, "application/json")
                .timeout(self.config.timeout.min(left));
            req = self.authorise(req, url).await?;
            self.requests
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let started = Instant::now();
            let outcome = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    match read_body(resp, self.config.max_response_bytes).await {
                        Ok(body) => Ok((status, headers, body)),
                        Err(BodyError::TooLarge) => {
                            self.observe(started, false);
                            return Err(RestError::TooLarge {
                                url: url.to_owned(),
                                limit: self.config.max_response_bytes,
                            });
                        }
                        Err(BodyError::Failed(e)) => Err(describe_reqwest(&e)),
                    }
                }
                Err(e) => Err(describe_reqwest(&e)),
            };
            self.observe(
                started,
                matches!(&outcome, Ok((status, _, _)) if status.is_success()),
            );
            tracing::debug!(%url, attempt, elapsed_ms = started.elapsed().as_millis() as u64, "GET");
            // The error to give if this attempt is the last, and how long to wait if not.
            let (failure, wait) = match outcome {
                Ok((status, headers, body)) if status.is_success() => return Ok((headers, body)),
                Ok((status, headers, body)) => {
                    let info = StatusInfo::from_body(&body);
                    if status == StatusCode::UNAUTHORIZED {
                        if matches!(self.config.auth, Auth::OAuth2 { .. }) && !refreshed_token {
                            // The token may have expired early: fetch a new one, once.
                            refreshed_token = true;
                            *self.token.lock().await = None;
                            attempt -= 1;
                            continue;
                        }
                        return Err(RestError::Unauthorized {
                            url: url.to_owned(),
                            status: 401,
                            detail: describe_status(&info, &body),
                            hint: self.unauthorized_hint(),
                        });
                    }
                    if status == StatusCode::FORBIDDEN {
                        return Err(RestError::Unauthorized {
                            url: url.to_owned(),
                            status: 403,
                            detail: describe_status(&info, &body),
                            hint: "the credentials work but lack permission for this collection; ask the SIS administrator to grant it",
                        });
                    }
                    if status.is_redirection() {
                        return Err(RestError::Http {
                            url: url.to_owned(),
                            status: status.as_u16(),
                            detail: describe_redirect(&headers),
                            attempts: attempt,
                            status_info: info,
                        });
                    }
                    let retryable =
                        matches!(status.as_u16(), 408 | 425 | 429 | 500 | 502 | 503 | 504);
                    let failure = RestError::Http {
                        url: url.to_owned(),
                        status: status.as_u16(),
                        detail: describe_status(&info, &body),
                        attempts: attempt,
                        status_info: info,
                    };
                    if !retryable || attempt >= self.config.retry.attempts {
                        return Err(failure);
                    }
                    let retry_after = header_retry_after(&headers);
                    if let Some(wait) = retry_after
                        && wait > self.config.retry.max_retry_after
                    {
                        return Err(RestError::Http {
                            url: url.to_owned(),
                            status: status.as_u16(),
                            detail: format!(
                                "the server asks to wait {} s (Retry-After), longer than the {} s allowed",
                                wait.as_secs(),
                                self.config.retry.max_retry_after.as_secs()
                            ),
                            attempts: attempt,
                            status_info: StatusInfo::from_body(&body),
                        });
                    }
                    tracing::warn!(%url, status = status.as_u16(), attempt, "retrying");
                    (
                        failure,
                        retry_after.unwrap_or_else(|| self.backoff(attempt)),
                    )
                }
                Err(detail) => {
                    let failure = RestError::Transport {
                        url: url.to_owned(),
                        detail,
                        attempts: attempt,
                    };
                    if attempt >= self.config.retry.attempts {
                        return Err(failure);
                    }
                    tracing::warn!(%url, error = %failure, attempt, "retrying");
                    (failure, self.backoff(attempt))
                }
            };
            if Instant::now() + wait >= deadline {
                return Err(out_of_time(
                    failure,
                    first_try,
                    self.config.retry.max_elapsed,
                ));
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Full jitter: a random wait between 0 and min(max, base·2^attempt).
    fn backoff(&self, attempt: u32) -> Duration {
        let p = &self.config.retry;
        let ceiling = p
            .base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(p.max_delay);
        let r = random_u64() % 1_000_000;
        ceiling
            .mul_f64(r as f64 / 1_000_000.0)
            .max(Duration::from_millis(10))
    }

    fn unauthorized_hint(&self) -> &'static str {
        match &self.config.auth {
            Auth::None => "the server wants credentials: set an auth method, client id and secret",
            Auth::OAuth1 { .. } => {
                "check the consumer key and secret, the signature method (HMAC-SHA256 or HMAC-SHA1), and this machine's clock"
            }
            Auth::OAuth2 { .. } => {
                "the server rejected a fresh access token: check the client id and secret, and the scope"
            }
        }
    }

    async fn authorise(
        &self,
        req: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<reqwest::RequestBuilder, RestError> {
        Ok(match &self.config.auth {
            Auth::None => req,
            Auth::OAuth1 {
                consumer_key,
                consumer_secret,
                method,
            } => {
                let nonce = format!("{:016x}{:016x}", random_u64(), random_u64());
                let timestamp = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let value = oauth1::authorization_header(&oauth1::SignRequest {
                    method: "GET",
                    url,
                    consumer_key,
                    consumer_secret,
                    signature_method: *method,
                    nonce: &nonce,
                    timestamp,
                });
                req.header(header::AUTHORIZATION, value)
            }
            Auth::OAuth2 { .. } => {
                let token = self.access_token().await?;
                req.bearer_auth(token)
            }
        })
    }

    /// A cached access token, fetched when missing or about to expire.
    async fn access_token(&self) -> Result<String, RestError> {
        let mut cached = self.token.lock().await;
        if let Some(t) = cached.as_ref()
            && Instant::now() < t.good_until
        {
            return Ok(t.value.clone());
        }
        let Auth::OAuth2 {
            token_url,
            client_id,
            client_secret,
            scope,
            credentials,
        } = &self.config.auth
        else {
            return Err(RestError::Config("no OAuth 2 settings".into()));
        };
        let mut form: Vec<(&str, &str)> = vec![("grant_type", "client_credentials")];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        let mut req = self
            .http
            .post(token_url)
            .header(header::ACCEPT, "application/json");
        match credentials {
            CredentialStyle::Basic => req = req.basic_auth(client_id, Some(client_secret)),
            CredentialStyle::Form => {
                form.push(("client_id", client_id));
                form.push(("client_secret", client_secret));
            }
        }
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", oauth1::percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let req = req
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body);
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let started = Instant::now();
        let answered = match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                read_body(resp, MAX_TOKEN_RESPONSE_BYTES)
                    .await
                    .map(|b| (status, b))
                    .map_err(|e| RestError::Token {
                        url: token_url.clone(),
                        status: status.to_string(),
                        detail: match e {
                            BodyError::TooLarge => format!(
                                "the answer is larger than {} MiB, which no token is: is this the token URL?",
                                MAX_TOKEN_RESPONSE_BYTES >> 20
                            ),
                            BodyError::Failed(e) => describe_reqwest(&e),
                        },
                    })
            }
            Err(e) => Err(RestError::Token {
                url: token_url.clone(),
                status: "no response".into(),
                detail: describe_reqwest(&e),
            }),
        };
        self.observe(
            started,
            matches!(&answered, Ok((status, _)) if status.is_success()),
        );
        let (status, bytes) = answered?;
        if !status.is_success() {
            let detail = token_error_detail(&bytes);
            let hint = match status.as_u16() {
                400 | 401 => {
                    "check the client id and client secret (credentials expire; Infinite Campus shows the expiration date)"
                }
                404 => "check the token URL (Infinite Campus: …/campus/oauth2/token?appName=APP)",
                _ => "the token service failed; try again later",
            };
            return Err(RestError::Token {
                url: token_url.clone(),
                status: format!("HTTP {}", status.as_u16()),
                detail: format!("{detail}; {hint}"),
            });
        }
        #[derive(Deserialize)]
        struct TokenResponse {
            access_token: String,
            expires_in: Option<serde_json::Value>,
        }
        let parsed: TokenResponse =
            serde_json::from_slice(&bytes).map_err(|e| RestError::Token {
                url: token_url.clone(),
                status: format!("HTTP {}", status.as_u16()),
                detail: format!("the response has no access_token: {e}"),
            })?;
        let stated = parsed.expires_in.and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        });
        if let Some(secs) = stated {
            self.token_expires_in
                .store(secs, std::sync::atomic::Ordering::Relaxed);
        }
        let lifetime = stated.unwrap_or(3600);
        // Renew a little early: a token must not expire between our check and its use.
        let margin = (lifetime / 10).clamp(1, 60);
        let good_until = Instant::now() + Duration::from_secs(lifetime.saturating_sub(margin));
        let value = parsed.access_token;
        *cached = Some(CachedToken {
            value: value.clone(),
            good_until,
        });
        Ok(value)
    }
}

/// The sourcedIds of a pull, as 64-bit hashes: enough to spot a record served twice
/// (the data moved under offset paging) at 8 bytes a record.
#[derive(Default)]
struct SeenIds {
    hashes: HashSet<u64>,
    hasher: std::collections::hash_map::RandomState,
    duplicates: u64,
}

impl SeenIds {
    fn insert(&mut self, id: &str) -> bool {
        self.hashes.insert(self.hasher.hash_one(id))
    }
}

fn header_u64(h: &HeaderMap, name: &str) -> Option<u64> {
    h.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// `Retry-After`: seconds, or an HTTP date.
fn header_retry_after(h: &HeaderMap) -> Option<Duration> {
    let v = h.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = jiff::fmt::rfc2822::parse(v).ok()?.timestamp();
    let now = Timestamp::now();
    Some(Duration::try_from(when.duration_since(now)).unwrap_or(Duration::ZERO))
}

/// The `rel="next"` target of a `Link` header, resolved against the request URL.
fn next_link(h: &HeaderMap, request_url: &str) -> Option<String> {
    for value in h.get_all(header::LINK) {
        let Ok(value) = value.to_str() else { continue };
        for part in value.split(',') {
            let mut pieces = part.split(';');
            let target = pieces.next()?.trim();
            let is_next = pieces.any(|p| {
                let p = p.trim().replace(' ', "");
                p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next")
            });
            if is_next {
                let target = target.trim_start_matches('<').trim_end_matches('>');
                let base = reqwest::Url::parse(request_url).ok()?;
                return base.join(target).ok().map(|u| u.to_string());
            }
        }
    }
    None
}

/// What a failure answer said, as one short sanitised line (never the raw body).
fn describe_status(info: &[StatusInfo], body: &[u8]) -> String {
    match info.first() {
        Some(s) => short_remote_text(&s.to_string()),
        None => {
            let text = short_remote_text(&String::from_utf8_lossy(body));
            if text.is_empty() {
                "no details in the response".into()
            } else {
                format!("response: {text}")
            }
        }
    }
}

/// Why a redirect was not followed: only its target's origin is named.
fn describe_redirect(headers: &HeaderMap) -> String {
    let target = headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| reqwest::Url::parse(l).ok())
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|| "another address".into());
    format!(
        "the server redirected to {target}; credentials are sent only to the configured host, so the redirect was not followed: set the URL to the address it redirects to"
    )
}

fn token_error_detail(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct OAuthError {
        error: Option<String>,
        error_description: Option<String>,
    }
    match serde_json::from_slice::<OAuthError>(body) {
        Ok(OAuthError {
            error: Some(e),
            error_description,
        }) => match error_description {
            Some(d) => short_remote_text(&format!("{e}: {d}")),
            None => short_remote_text(&e),
        },
        _ => describe_status(&StatusInfo::from_body(body), body),
    }
}

fn describe_reqwest(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the response body was cut short"
    } else {
        "request failed"
    };
    let mut detail = kind.to_owned();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    // rustls reading a plain-HTTP answer as a TLS record.
    if [
        "InvalidContentType",
        "corrupt message",
        "wrong version number",
    ]
    .iter()
    .any(|t| detail.contains(t))
    {
        detail.push_str(
            " — the server does not speak TLS (https) on this port: if it is a plain-HTTP server, the URL starts with http://",
        );
    }
    detail
}

/// The last failure of a request whose retry budget ran out, saying so.
fn out_of_time(failure: RestError, first_try: Instant, budget: Duration) -> RestError {
    let note = format!(
        "; gave up after {} s: one request may take at most {} s, retries included",
        first_try.elapsed().as_secs(),
        budget.as_secs()
    );
    match failure {
        RestError::Http {
            url,
            status,
            detail,
            attempts,
            status_info,
        } => RestError::Http {
            url,
            status,
            detail: detail + &note,
            attempts,
            status_info,
        },
        RestError::Transport {
            url,
            detail,
            attempts,
        } => RestError::Transport {
            url,
            detail: detail + &note,
            attempts,
        },
        other => other,
    }
}

/// Why a body was not read.
enum BodyError {
    /// Past the limit.
    TooLarge,
    Failed(reqwest::Error),
}

/// Reads a response body, counting as it streams in and stopping past `limit` bytes
/// (decompressed), so an endless or enormous answer costs at most `limit` of memory.
async fn read_body(mut resp: reqwest::Response, limit: u64) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Failed)? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A random number from the OS (nonces, jitter).
fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        // No OS randomness: the clock is enough for jitter and, with the counter, unique
        // nonces.
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        return t ^ COUNTER
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .rotate_left(32);
    }
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn page_urls_encode_every_reserved_character() {
        let c = RestClient::new(RestConfig::new(
            "https://h.example/campus/oneroster/app/ims/oneroster/v1p1/",
            Auth::None,
        ))
        .unwrap();
        let q = Query {
            filter: Some(Filter::new("role", "=", "student").and(Filter::new(
                "givenName",
                "~",
                "a b+c",
            ))),
            ..Query::default()
        };
        assert_eq!(
            c.page_url("users", &q, 2000, 1000),
            "https://h.example/campus/oneroster/app/ims/oneroster/v1p1/users?limit=1000&offset=2000&filter=role%3D%27student%27%20AND%20givenName~%27a%20b%2Bc%27"
        );
    }

    #[test]
    fn link_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            header::LINK,
            r#"<https://x/users?offset=0>; rel="first", </api/users?offset=100&limit=100>; rel="next""#
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_link(&h, "https://x/api/users?offset=0&limit=100").as_deref(),
            Some("https://x/api/users?offset=100&limit=100")
        );
        let mut h = HeaderMap::new();
        h.insert(
            header::LINK,
            r#"<https://x/users?offset=0>; rel="last""#.parse().unwrap(),
        );
        assert_eq!(next_link(&h, "https://x/users"), None);
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(header_retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(
            header_retry_after(&h),
            Some(Duration::ZERO),
            "a date in the past means now"
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
