//! The SCIM push client: sends [`scim::Request`]s to a target (a help desk's SCIM 2.0
//! endpoint, RFC 7644) with a bearer token, through [`crate::http::Http`] (addresses the
//! policy allows; 429, 5xx and network errors retried, `Retry-After` honoured), and says
//! what the answer means for the push:
//!
//! - [`TargetError::Refused`]: the target refused this one request (a 4xx other than 401,
//!   403 and 429): that account's push fails, the others go on;
//! - [`TargetError::Unreachable`]: the retries are spent, or the target refuses us (401,
//!   403) or is not where it should be (3xx): the push stops;
//! - [`TargetError::Protocol`]: the answer is not SCIM.
//!
//! The token is sent only in the `Authorization` header and never appears in a message,
//! even when the target echoes it back.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use oneroster::net::{AddressPolicy, short_remote_text};
use scim::{Method, Request};
use serde_json::Value;

use crate::IdpError;
use crate::http::{Answer, Http, Retry};

/// Users asked for per page when following a find's paging.
pub const FIND_PAGE_SIZE: usize = 100;

/// The most pages a find reads: more matches than this many pages hold is an error.
pub const FIND_MAX_PAGES: usize = 10;

/// The media types a SCIM answer may have; `application/json` for targets that answer
/// with it (RFC 7644 §3.1 allows it).
const ACCEPT: &str = "application/scim+json, application/json";

/// A SCIM target: its base URL and bearer token.
pub struct ScimTarget {
    http: Http,
    /// The base URL without a trailing `/` (`https://helpdesk.example/scim/v2`).
    base: String,
    token: String,
}

impl fmt::Debug for ScimTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScimTarget")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// A User as the target holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetUser {
    /// The target's `id` of the User.
    pub id: String,
    /// The resource as the target answered it.
    pub resource: Value,
}

/// The target's refusal of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The HTTP status (a 4xx).
    pub status: u16,
    /// The SCIM error's `scimType` (`uniqueness`, `invalidValue`, …), when it gave one.
    pub scim_type: Option<String>,
    /// The SCIM error's `detail`, else a short line of the answer's text.
    pub detail: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the target answered {}", self.status)?;
        if let Some(scim_type) = &self.scim_type {
            write!(f, " ({scim_type})")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// Why a request to the target failed.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The target refused this one request (a 4xx other than 429): the account's push
    /// fails, the others go on.
    #[error("{0}")]
    Refused(Refusal),
    /// Retries spent on 429/5xx or network errors, or a 401/403: the target is
    /// unreachable or refuses us; the push stops.
    #[error("{0}")]
    Unreachable(String),
    /// The answer is not SCIM (not JSON, no id in a created resource, ...).
    #[error("{0}")]
    Protocol(String),
}

impl ScimTarget {
    /// A client of the SCIM endpoint at `base_url` (a trailing `/` is fine) that sends
    /// `token` as its bearer token, reaches only what `policy` allows, gives each attempt
    /// `timeout` and retries as `retry` says.
    pub fn new(
        base_url: &str,
        token: &str,
        policy: AddressPolicy,
        timeout: Duration,
        retry: Retry,
    ) -> Result<ScimTarget, IdpError> {
        let base = base_url.trim().trim_end_matches('/');
        let parsed = policy
            .check_url("the SCIM base URL", base)
            .map_err(IdpError::Config)?;
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(IdpError::Config(format!(
                "the SCIM base URL '{base}' must not have a query or fragment: give the URL \
                 the endpoints (/Users, …) are under"
            )));
        }
        let token = token.trim();
        if token.is_empty() {
            return Err(IdpError::Config(
                "the SCIM bearer token is empty: paste the token the help desk issued".into(),
            ));
        }
        if reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).is_err() {
            return Err(IdpError::Config(
                "the SCIM bearer token has characters a header cannot carry (a line break?): \
                 paste the token again"
                    .into(),
            ));
        }
        let mut http = Http::new(policy, timeout)?;
        http.retry = retry;
        Ok(ScimTarget {
            http,
            base: base.to_owned(),
            token: token.to_owned(),
        })
    }

    /// HTTP requests made so far (every attempt counts).
    pub fn requests(&self) -> u64 {
        self.http.requests()
    }

    /// Sends a find (`GET /Users?filter=…`, [`Request::find_eq`]) and returns the users of
    /// its `ListResponse`, following `startIndex` paging ([`FIND_PAGE_SIZE`] a page, at
    /// most [`FIND_MAX_PAGES`] pages).
    pub async fn find(&self, request: &Request) -> Result<Vec<TargetUser>, TargetError> {
        let mut users = Vec::new();
        let mut seen = HashSet::new();
        for _ in 0..FIND_MAX_PAGES {
            let sep = if request.path.contains('?') { '&' } else { '?' };
            let path = format!(
                "{}{sep}startIndex={}&count={FIND_PAGE_SIZE}",
                request.path,
                users.len() + 1
            );
            let what = format!("{} {}", request.method, path);
            let answer = self.send(request.method, &path, None, &what).await?;
            if !answer.is_success() {
                return Err(self.failure(&answer, &what));
            }
            let mut list = self.json(&answer, &what)?;
            let resources = match list.get_mut("Resources").map(Value::take) {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(items)) => items,
                Some(_) => {
                    return Err(TargetError::Protocol(format!(
                        "SCIM {what}: the answer's Resources is not a list"
                    )));
                }
            };
            let total = list
                .get("totalResults")
                .and_then(Value::as_u64)
                .and_then(|n| usize::try_from(n).ok());
            let got = resources.len();
            let mut new = 0;
            for resource in resources {
                let user = self.target_user(resource, &what)?;
                if seen.insert(user.id.clone()) {
                    users.push(user);
                    new += 1;
                }
            }
            let done = match total {
                Some(total) => users.len() >= total,
                None => got < FIND_PAGE_SIZE,
            };
            // A page with nothing new: the target ignores startIndex, or lost count.
            if done || new == 0 {
                return Ok(users);
            }
        }
        Err(TargetError::Protocol(format!(
            "SCIM {} {}: more than {} users match ({} pages of {FIND_PAGE_SIZE} read)",
            request.method,
            request.path,
            users.len(),
            FIND_MAX_PAGES
        )))
    }

    /// Sends a write (POST, PUT, PATCH or DELETE) and returns the resource the target
    /// answered with: required for a POST (201 with the created User and its `id`); a PUT
    /// or PATCH may answer with it (200) or without (204, `None`); a DELETE answers `None`,
    /// and a DELETE answered 404 counts as done.
    pub async fn write(&self, request: &Request) -> Result<Option<TargetUser>, TargetError> {
        let what = request.method.to_string() + " " + &request.path;
        let body = match &request.body {
            Some(body) => Some(serde_json::to_vec(body).map_err(|e| {
                TargetError::Protocol(format!("SCIM {what}: the body does not serialise: {e}"))
            })?),
            None => None,
        };
        let answer = self
            .send(request.method, &request.path, body, &what)
            .await?;
        if request.method == Method::Delete && (answer.is_success() || answer.status == 404) {
            return Ok(None);
        }
        if !answer.is_success() {
            return Err(self.failure(&answer, &what));
        }
        if answer.body.iter().all(u8::is_ascii_whitespace) {
            if request.method == Method::Post {
                return Err(TargetError::Protocol(format!(
                    "SCIM {what}: the target answered {} without the created resource",
                    answer.status
                )));
            }
            return Ok(None);
        }
        let resource = self.json(&answer, &what)?;
        self.target_user(resource, &what).map(Some)
    }

    /// One request to base + `path`, retried as [`Http::send`] does.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        what: &str,
    ) -> Result<Answer, TargetError> {
        let url = format!("{}{path}", self.base);
        let url = reqwest::Url::parse(&url).map_err(|e| {
            TargetError::Protocol(format!("SCIM {what}: '{url}' is not a URL: {e}"))
        })?;
        let method = match method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
        };
        let what = format!("SCIM {what}");
        self.http
            .send(&what, |client| {
                let builder = client
                    .request(method.clone(), url.clone())
                    .bearer_auth(&self.token)
                    .header(reqwest::header::ACCEPT, ACCEPT);
                match &body {
                    Some(body) => builder
                        .header(reqwest::header::CONTENT_TYPE, "application/scim+json")
                        .body(body.clone()),
                    None => builder,
                }
            })
            .await
            .map_err(|e| match e {
                IdpError::Protocol(text) => TargetError::Protocol(self.scrub(text)),
                IdpError::Config(text) | IdpError::Auth(text) | IdpError::Unreachable(text) => {
                    TargetError::Unreachable(self.scrub(text))
                }
            })
    }

    /// What a non-2xx answer (never 429 or 5xx: those were retried) means.
    fn failure(&self, answer: &Answer, what: &str) -> TargetError {
        let refusal = self.refusal(answer);
        match answer.status {
            401 | 403 => TargetError::Unreachable(format!(
                "SCIM {what}: {refusal}: the target refuses the bearer token (wrong, expired \
                 or without the permission): check the token the help desk issued"
            )),
            400..=499 => TargetError::Refused(refusal),
            _ => TargetError::Unreachable(format!(
                "SCIM {what}: {refusal}: not a SCIM answer, is the base URL {} the SCIM \
                 endpoint?",
                self.base
            )),
        }
    }

    /// The refusal an answer carries: the SCIM error's `scimType` and `detail`, else a
    /// short line of its text.
    fn refusal(&self, answer: &Answer) -> Refusal {
        let error: Option<Value> = serde_json::from_slice(&answer.body).ok();
        let text = |key: &str| {
            error
                .as_ref()
                .and_then(|e| e.get(key))
                .and_then(Value::as_str)
                .map(|t| short_remote_text(&self.scrub(t.to_owned())))
                .filter(|t| !t.is_empty())
        };
        let body = String::from_utf8_lossy(&answer.body);
        let detail = text("detail").unwrap_or_else(|| {
            if body.trim().is_empty() {
                "(an empty answer)".to_owned()
            } else {
                short_remote_text(&self.scrub(body.into_owned()))
            }
        });
        Refusal {
            status: answer.status,
            scim_type: text("scimType"),
            detail,
        }
    }

    /// The answer's body as JSON.
    fn json(&self, answer: &Answer, what: &str) -> Result<Value, TargetError> {
        serde_json::from_slice(&answer.body).map_err(|e| {
            let text = self.scrub(String::from_utf8_lossy(&answer.body).into_owned());
            TargetError::Protocol(format!(
                "SCIM {what}: the answer is not JSON ({e}): {}",
                short_remote_text(&text)
            ))
        })
    }

    /// A resource the target answered with, which must be an object with a string `id`.
    fn target_user(&self, resource: Value, what: &str) -> Result<TargetUser, TargetError> {
        match resource.get("id") {
            Some(Value::String(id)) if !id.is_empty() => Ok(TargetUser {
                id: id.clone(),
                resource,
            }),
            _ => Err(TargetError::Protocol(format!(
                "SCIM {what}: the target answered a resource without an id"
            ))),
        }
    }

    /// `text` with the token replaced, in case the target echoed it.
    fn scrub(&self, text: String) -> String {
        if text.contains(&self.token) {
            text.replace(&self.token, "[token]")
        } else {
            text
        }
    }
}
