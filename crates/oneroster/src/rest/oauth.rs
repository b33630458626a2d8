//! Authenticating requests: OAuth 1.0a signatures, OAuth 2 client-credentials tokens
//! (fetched, cached and renewed), and what to check when the server refuses them.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header;
use serde::Deserialize;

use super::client::{Auth, CredentialStyle, RestClient, RestError};
use super::transport::{BodyError, describe_reqwest, describe_status, random_u64, read_body};
use crate::net::short_remote_text;
use crate::oauth1;
use crate::status::StatusInfo;

/// The bound on a token response, which is a few hundred bytes.
const MAX_TOKEN_RESPONSE_BYTES: u64 = 1 << 20;

#[derive(Debug)]
pub(super) struct CachedToken {
    value: String,
    good_until: Instant,
}

impl RestClient {
    pub(super) fn unauthorized_hint(&self) -> &'static str {
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

    pub(super) async fn authorise(
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
            // The service's own words, but never the secret, should it echo what it was
            // sent: taken out of the whole answer, before it is cut short.
            let mut answer = String::from_utf8_lossy(&bytes).into_owned();
            if client_secret.len() >= 4 {
                for shown in [client_secret.clone(), oauth1::percent_encode(client_secret)] {
                    answer = answer.replace(&shown, "[redacted]");
                }
            }
            let detail = token_error_detail(answer.as_bytes());
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
