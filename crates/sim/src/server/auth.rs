//! Authentication as real providers do it: OAuth 2 client credentials against a Campus-style
//! token URL, and two-legged OAuth 1.0a (HMAC-SHA256 or HMAC-SHA1) verified with the
//! project's own signer, `oneroster::oauth1`, including the checks a lenient client might
//! get away with elsewhere: unknown key, wrong method, stale timestamp, replayed nonce.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use oneroster::oauth1::{OAuthHeader, SignatureMethod, verify};

use super::api::imsx_error;
use super::query::parse_pairs;
use super::{AppState, AuthMode, DEFAULT_TOKEN_TTL};
use crate::rng::{Rng, Stream};

/// How far an OAuth 1.0a timestamp may be from the server's clock.
const TIMESTAMP_WINDOW_SECONDS: i64 = 600;
const DEFAULT_SCOPE: &str = "https://purl.imsglobal.org/spec/or/v1p1/scope/roster-core.readonly";

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = serde_json::json!({ "error": error, "error_description": description });
    (status, axum::Json(body)).into_response()
}

/// `POST /campus/oauth2/token?appName=APP`: the client-credentials grant.
pub(crate) async fn token(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(latency) = state.config.faults.latency {
        tokio::time::sleep(latency).await;
    }
    if state.config.auth != AuthMode::OAuth2 {
        return oauth_error(
            StatusCode::NOT_FOUND,
            "invalid_request",
            "this provider does not use OAuth 2 (see --auth)",
        );
    }
    let query = parse_pairs(uri.query().unwrap_or(""));
    let app = query
        .iter()
        .find(|(k, _)| k == "appName")
        .map(|(_, v)| v.as_str());
    match app {
        None => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "the token URL needs ?appName=… (as Infinite Campus shows it)",
            );
        }
        Some(app) if app != state.config.app_name => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "unknown appName",
            );
        }
        Some(_) => {}
    }
    let form = parse_pairs(&String::from_utf8_lossy(&body));
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    if field("grant_type").as_deref() != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only grant_type=client_credentials is supported",
        );
    }
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| {
            pair.split_once(':')
                .map(|(id, secret)| (id.to_owned(), secret.to_owned()))
        });
    let credentials = basic.or_else(|| Some((field("client_id")?, field("client_secret")?)));
    let Some((id, secret)) = credentials else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "send the client id and secret as HTTP Basic or as client_id/client_secret form fields",
        );
    };
    if id != state.config.client_id || secret != state.config.client_secret {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client id or wrong secret",
        );
    }
    let ttl = state.config.faults.token_ttl.unwrap_or(DEFAULT_TOKEN_TTL);
    let n = state
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let mut rng = Rng::new(state.config.district.seed, Stream::Tokens, n);
    let mut raw = [0u8; 24];
    for chunk in raw.chunks_mut(8) {
        let bytes = rng.next_u64().to_le_bytes();
        chunk.copy_from_slice(bytes.get(..chunk.len()).unwrap_or(&[]));
    }
    let access_token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    if let Ok(mut tokens) = state.tokens.lock() {
        let now = Instant::now();
        tokens.retain(|_, expiry| *expiry > now);
        tokens.insert(access_token.clone(), now + ttl);
    }
    let scope = field("scope").unwrap_or_else(|| DEFAULT_SCOPE.to_owned());
    let body = serde_json::json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ttl.as_secs(),
        "scope": scope,
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn unauthorised(state: &AppState, description: &str, challenge: &'static str) -> Box<Response> {
    let mut response = imsx_error(
        state.config.version,
        StatusCode::UNAUTHORIZED,
        "unauthorisedrequest",
        description,
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static(challenge),
    );
    Box::new(response)
}

/// Checks an API request's credentials; the error is the response to send.
pub(crate) fn authorize(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(), Box<Response>> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match state.config.auth {
        AuthMode::None => Ok(()),
        AuthMode::OAuth2 => {
            const CHALLENGE: &str = "Bearer realm=\"oneroster\", error=\"invalid_token\"";
            let Some(token) = authorization.and_then(|v| v.strip_prefix("Bearer ")) else {
                return Err(unauthorised(
                    state,
                    "missing bearer token: get one from the token URL",
                    CHALLENGE,
                ));
            };
            let valid = state
                .tokens
                .lock()
                .ok()
                .and_then(|tokens| tokens.get(token.trim()).copied())
                .is_some_and(|expiry| expiry > Instant::now());
            if valid {
                Ok(())
            } else {
                Err(unauthorised(
                    state,
                    "the access token is unknown or has expired",
                    CHALLENGE,
                ))
            }
        }
        AuthMode::OAuth1Sha256 | AuthMode::OAuth1Sha1 => {
            const CHALLENGE: &str = "OAuth realm=\"oneroster\"";
            let expected = if state.config.auth == AuthMode::OAuth1Sha256 {
                SignatureMethod::HmacSha256
            } else {
                SignatureMethod::HmacSha1
            };
            let fail = |why: String| unauthorised(state, &why, CHALLENGE);
            let value = authorization
                .ok_or_else(|| fail("missing OAuth Authorization header".to_owned()))?;
            let parsed = OAuthHeader::parse(value).map_err(|e| fail(e.to_string()))?;
            if parsed.consumer_key != state.config.client_id {
                return Err(fail(format!(
                    "unknown consumer key `{}`",
                    parsed.consumer_key
                )));
            }
            if SignatureMethod::parse(&parsed.signature_method) != Some(expected) {
                return Err(fail(format!(
                    "oauth_signature_method `{}` is not accepted here: use {}",
                    parsed.signature_method,
                    expected.as_str()
                )));
            }
            let timestamp: i64 = parsed.timestamp.parse().map_err(|_| {
                fail(format!(
                    "oauth_timestamp `{}` is not a number",
                    parsed.timestamp
                ))
            })?;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            if (now - timestamp).abs() > TIMESTAMP_WINDOW_SECONDS {
                return Err(fail(format!(
                    "stale oauth_timestamp {timestamp}: more than 10 minutes from the server clock ({now})"
                )));
            }
            let nonce_key = (parsed.nonce.clone(), parsed.timestamp.clone());
            let replayed = state
                .nonces
                .lock()
                .map(|nonces| nonces.contains_key(&nonce_key))
                .unwrap_or(false);
            if replayed {
                return Err(fail(format!(
                    "oauth_nonce `{}` was already used",
                    parsed.nonce
                )));
            }
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("127.0.0.1");
            let url = format!("http://{host}{uri}");
            verify(method.as_str(), &url, &parsed, &state.config.client_secret)
                .map_err(|e| fail(e.to_string()))?;
            if let Ok(mut nonces) = state.nonces.lock() {
                nonces.retain(|_, seen| now - *seen <= 2 * TIMESTAMP_WINDOW_SECONDS);
                nonces.insert(nonce_key, now);
            }
            Ok(())
        }
    }
}
