//! One GET, done right: retries with backoff within a deadline, bounded bodies, and
//! failures described in one short sanitised line.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jiff::Timestamp;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};

use super::client::{Auth, RestClient, RestError};
use crate::net::short_remote_text;
use crate::status::StatusInfo;

impl RestClient {
    /// When a request starting now must be done, retries included.
    pub(super) fn deadline(&self) -> Instant {
        Instant::now() + self.config.retry.max_elapsed
    }

    /// One GET with authentication and retries, all done by `deadline`; the body of a 2xx.
    pub(super) async fn send(
        &self,
        url: &str,
        deadline: Instant,
    ) -> Result<(HeaderMap, Vec<u8>), RestError> {
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
    pub(super) fn backoff(&self, attempt: u32) -> Duration {
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

/// What a failure answer said, as one short sanitised line (never the raw body).
pub(super) fn describe_status(info: &[StatusInfo], body: &[u8]) -> String {
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

pub(super) fn describe_reqwest(e: &reqwest::Error) -> String {
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
    detail.push_str(&crate::net::error_causes(e));
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
pub(super) enum BodyError {
    /// Past the limit.
    TooLarge,
    Failed(reqwest::Error),
}

/// Reads a response body, counting as it streams in and stopping past `limit` bytes
/// (decompressed), so an endless or enormous answer costs at most `limit` of memory.
pub(super) async fn read_body(
    mut resp: reqwest::Response,
    limit: u64,
) -> Result<Vec<u8>, BodyError> {
    let declared = resp.content_length();
    if declared.is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge);
    }
    // Sized once when the length is declared: a page of thousands of records grown by
    // doubling was copied a dozen times into fresh memory (half a second of a million
    // people's pull).
    let mut body = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Failed)? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A random number from the OS (nonces, jitter).
pub(super) fn random_u64() -> u64 {
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
}
