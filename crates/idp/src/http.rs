//! Requests to a provider: only to addresses the policy allows, each retried on 429 and
//! 5xx answers (honouring `Retry-After`, else backing off exponentially) and on network
//! errors, bodies capped in size. What a status means is the caller's to say.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use oneroster::net::AddressPolicy;

use crate::IdpError;

/// How hard a request is retried.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts per request, the first included.
    pub attempts: u32,
    /// The first wait when the answer names none; doubled each time.
    pub base: Duration,
    /// The longest wait, whatever `Retry-After` asks.
    pub max_wait: Duration,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry {
            attempts: 6,
            base: Duration::from_millis(500),
            max_wait: Duration::from_secs(60),
        }
    }
}

/// The largest body read from a provider (a page of 999 Graph users is a few MiB).
pub const MAX_BODY_BYTES: usize = 64 << 20;

/// A status and body a provider answered with.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON, or what it was instead.
    pub fn json<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T, IdpError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            IdpError::Protocol(format!(
                "{what}: the answer is not the JSON expected ({e}): {}",
                oneroster::net::short_remote_text(&String::from_utf8_lossy(&self.body))
            ))
        })
    }
}

/// A client for one provider.
pub struct Http {
    client: reqwest::Client,
    pub retry: Retry,
    requests: AtomicU64,
}

impl Http {
    /// A client whose requests reach only the addresses `policy` allows, each given
    /// `timeout` to answer.
    pub fn new(policy: AddressPolicy, timeout: Duration) -> Result<Http, IdpError> {
        let client = policy
            .client_builder()
            .timeout(timeout)
            .build()
            .map_err(|e| IdpError::Config(format!("cannot set up HTTPS: {e}")))?;
        Ok(Http {
            client,
            retry: Retry::default(),
            requests: AtomicU64::new(0),
        })
    }

    /// Requests made so far (every attempt counts).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Sends the request `build` makes (again for each attempt) and returns the first
    /// answer that is neither 429 nor 5xx, or fails once the attempts are spent. `what`
    /// names the request in messages (`Google users page 3`).
    pub async fn send(
        &self,
        what: &str,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Answer, IdpError> {
        let mut last = String::new();
        for attempt in 1..=self.retry.attempts.max(1) {
            self.requests.fetch_add(1, Ordering::Relaxed);
            let wait = match build(&self.client).send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(retry_after);
                    if status == 429 || (500..600).contains(&status) {
                        last = format!("answered {status}");
                        retry_after.unwrap_or_else(|| self.backoff(attempt))
                    } else {
                        let body = read_body(response, what).await?;
                        return Ok(Answer { status, body });
                    }
                }
                Err(e) => {
                    last = describe(&e);
                    self.backoff(attempt)
                }
            };
            if attempt < self.retry.attempts {
                tracing::warn!(what, attempt, why = %last, wait_ms = wait.as_millis() as u64, "retrying");
                tokio::time::sleep(wait.min(self.retry.max_wait)).await;
            }
        }
        Err(IdpError::Unreachable(format!(
            "{what}: {last} on each of {} attempts: try again later",
            self.retry.attempts.max(1)
        )))
    }

    fn backoff(&self, attempt: u32) -> Duration {
        self.retry
            .base
            .saturating_mul(1 << (attempt - 1).min(16))
            .min(self.retry.max_wait)
    }
}

/// A `Retry-After` value: seconds, or an HTTP date.
fn retry_after(v: &str) -> Option<Duration> {
    if let Ok(secs) = v.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = jiff::fmt::rfc2822::parse(v.trim()).ok()?.timestamp();
    let now = jiff::Timestamp::now();
    Some(
        (when.as_second() - now.as_second())
            .try_into()
            .map(Duration::from_secs)
            .unwrap_or_default(),
    )
}

async fn read_body(mut response: reqwest::Response, what: &str) -> Result<Vec<u8>, IdpError> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(IdpError::Protocol(format!(
                        "{what}: the answer is larger than {} MiB",
                        MAX_BODY_BYTES >> 20
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => {
                return Err(IdpError::Unreachable(format!(
                    "{what}: the answer broke off: {}",
                    describe(&e)
                )));
            }
        }
    }
}

/// A request error with its cause (reqwest's own message rarely says it).
fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out".to_owned()
    } else {
        e.to_string()
    };
    what + &oneroster::net::error_causes(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        assert_eq!(retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(retry_after("soon"), None);
    }
}
