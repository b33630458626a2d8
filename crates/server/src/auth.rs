//! Who is asking, and may they: argon2id passwords, sessions, API tokens, CSRF and login
//! throttling, enforced once in [`require`] for every protected route.
//!
//! - Sessions: a random 256-bit id in an `HttpOnly; SameSite=Strict` cookie (`Secure`
//!   behind https), stored only as its SHA-256; a new id at every sign-in (no fixation);
//!   idle expiry [`IDLE`] and absolute expiry [`ABSOLUTE`].
//! - CSRF: each session has a random token; every unsafe request made with the session
//!   cookie must carry it (`csrf` form field, or the `X-CSRF-Token` header htmx sends).
//!   Bearer-token requests carry no cookie and need none.
//! - API tokens: `rs_…`, 256 random bits, stored only as SHA-256; `read` acts as a
//!   viewer, `write` as an admin (never as the owner: protected settings need a person).
//! - Sign-in: every attempt costs one argon2 check, whether the account exists, is
//!   disabled or not ([`check_sign_in`]), so timing tells nothing; attempts are throttled
//!   and the checks rationed in [`crate::throttle`].

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};
use store::{ApiTokenId, ConsoleAccount, ConsoleRole, NewSession, Store, TokenScope};

use crate::{ApiError, Shared};

pub const SESSION_COOKIE: &str = "rs_session";
/// The double-submit cookie of the sign-in form (no session exists yet to hold a token).
pub const LOGIN_COOKIE: &str = "rs_login";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A session unused this long ends.
pub const IDLE: SignedDuration = SignedDuration::from_mins(60);
/// A session ends this long after sign-in, used or not.
pub const ABSOLUTE: SignedDuration = SignedDuration::from_hours(12);
/// `last_seen` is written at most this often.
pub(crate) const TOUCH_EVERY: SignedDuration = SignedDuration::from_secs(60);

/// How the request proved who it is.
#[derive(Debug, Clone)]
pub enum Via {
    Session { id_hash: String, csrf: String },
    Token { id: ApiTokenId, scope: TokenScope },
}

/// The account (or token) behind a request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub name: String,
    pub role: ConsoleRole,
    pub via: Via,
}

impl Principal {
    /// What the audit log and revisions name: `console:alice`, `token:#3 ci`.
    pub fn actor(&self) -> String {
        match &self.via {
            Via::Session { .. } => format!("console:{}", self.name),
            Via::Token { id, .. } => format!("token:#{id} {}", self.name),
        }
    }

    /// The session's CSRF token, for forms.
    pub fn csrf(&self) -> &str {
        match &self.via {
            Via::Session { csrf, .. } => csrf,
            Via::Token { .. } => "",
        }
    }
}

fn random_bytes<const N: usize>() -> Result<[u8; N], ApiError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b)
        .map_err(|e| ApiError::internal(format!("the system random source failed: {e}")))?;
    Ok(b)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A random value of 256 bits, URL-safe.
pub fn random_secret() -> Result<String, ApiError> {
    Ok(b64(&random_bytes::<32>()?))
}

/// A generated password: 120 random bits in 20 URL-safe characters.
pub fn generate_password() -> Result<String, ApiError> {
    Ok(b64(&random_bytes::<15>()?))
}

/// A new API token's value.
pub fn generate_token() -> Result<String, ApiError> {
    Ok(format!("rs_{}", random_secret()?))
}

pub fn sha256_hex(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    let mut s = String::with_capacity(64);
    for b in digest.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Where to go after signing in: a path of this site, else `/`. It must start with one
/// `/` (not `//` or `/\`, which browsers take for another host) and hold no backslash,
/// whitespace or control character (browsers drop tabs and newlines, so `/\t/evil.example`
/// would become `//evil.example`). Other characters outside ASCII are percent-encoded.
pub fn safe_next(next: Option<&str>) -> String {
    let Some(n) = next else {
        return "/".to_owned();
    };
    let bad = |c: char| c == '\\' || c.is_whitespace() || c.is_control();
    if !n.starts_with('/') || n.starts_with("//") || n.chars().any(bad) {
        return "/".to_owned();
    }
    let mut out = String::with_capacity(n.len());
    for c in n.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// Minimum length of a password an admin chooses.
pub const MIN_PASSWORD: usize = 12;

/// An argon2id PHC string.
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(ApiError::bad_request(format!(
            "the password is too short: use at least {MIN_PASSWORD} characters"
        )));
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| ApiError::internal(format!("cannot hash the password: {e}")))
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// The hash [`verify_nothing`] checks against: made like every account's (the same
/// argon2id parameters, so the same cost), once.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        Argon2::default()
            .hash_password(b"no account has this password")
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// Makes the dummy hash now, so the first sign-in for an unknown name does not take
/// longer than the others.
pub fn prepare() {
    let _ = dummy_hash();
}

/// Spends the time of a password check for a name that has no account, so the answer's
/// timing does not tell which names exist.
pub fn verify_nothing(password: &str) {
    let _ = verify_password(password, dummy_hash());
}

/// A sign-in's password check. It always runs argon2: against the account's hash, or —
/// when there is no such account, or it is disabled — against the dummy one (and then
/// answers no), so how long it takes tells nothing about the account.
pub fn check_sign_in(account: Option<&ConsoleAccount>, password: &str) -> bool {
    match account {
        Some(a) if !a.disabled => verify_password(password, &a.password_hash),
        _ => {
            verify_nothing(password);
            false
        }
    }
}

/// At most this many characters of a typed account name go into a log line.
const LOGGED_NAME: usize = 64;

/// A typed account name for a log line: cut to [`LOGGED_NAME`] characters. Log it with
/// `?` (Debug), which quotes it and escapes newlines and control characters, so a name
/// cannot forge log lines.
pub fn loggable(name: &str) -> String {
    let mut chars = name.chars();
    let mut s: String = chars.by_ref().take(LOGGED_NAME).collect();
    if chars.next().is_some() {
        s.push('…');
    }
    s
}

/// The log line of a failed sign-in.
pub fn log_failed_sign_in(name: &str, addr: std::net::IpAddr) {
    tracing::warn!(account = ?loggable(name), %addr, "failed sign-in");
}

/// Compares secrets without leaking where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A `Set-Cookie` value for the session (or an expired one to clear it).
pub fn session_cookie(name: &str, value: Option<&str>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match value {
        Some(v) => format!("{name}={v}; Path=/; HttpOnly; SameSite=Strict{secure}"),
        None => format!("{name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    }
}

/// Signs an account in: a fresh session id and CSRF token. Returns the cookie value.
pub fn open_session(
    store: &Store,
    account: &ConsoleAccount,
    now: Timestamp,
) -> Result<String, ApiError> {
    let id = random_secret()?;
    store.create_session(&NewSession {
        id_hash: sha256_hex(&id),
        account: account.id,
        csrf: random_secret()?,
        created_at: now,
        expires_at: now + ABSOLUTE,
    })?;
    // Sessions that ran out are cleaned up as people sign in.
    store.purge_sessions(now, now - IDLE)?;
    Ok(id)
}

/// Resolves the principal of a request from its bearer token or session cookie.
async fn resolve(state: &Shared, headers: &HeaderMap) -> Result<Option<Principal>, ApiError> {
    let now = state.now();
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let Some(token) = auth
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
        else {
            return Ok(None);
        };
        let hash = sha256_hex(token);
        return crate::blocking(state, move |store| {
            let Some(t) = store.api_token(&hash)? else {
                return Ok(None);
            };
            // A SCIM connection's token opens `/scim/v2` only (its own check), never the
            // console or the API.
            if t.revoked_at.is_some() || t.expired(now) || t.scope == TokenScope::Scim {
                return Ok(None);
            }
            if t.last_used.is_none_or(|u| now - u > TOUCH_EVERY) {
                store.touch_api_token(t.id, now)?;
            }
            Ok(Some(Principal {
                name: t.name,
                role: match t.scope {
                    TokenScope::Read | TokenScope::Scim => ConsoleRole::Viewer,
                    TokenScope::Write => ConsoleRole::Admin,
                },
                via: Via::Token {
                    id: t.id,
                    scope: t.scope,
                },
            }))
        })
        .await;
    }
    let Some(id) = cookie(headers, SESSION_COOKIE).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let hash = sha256_hex(&id);
    crate::blocking(state, move |store| {
        let Some(s) = store.session(&hash)? else {
            return Ok(None);
        };
        if s.expires_at <= now || now - s.last_seen > IDLE || s.account.disabled {
            store.delete_session(&hash)?;
            return Ok(None);
        }
        if now - s.last_seen > TOUCH_EVERY {
            store.touch_session(&hash, now)?;
        }
        Ok(Some(Principal {
            name: s.account.name,
            role: s.account.role,
            via: Via::Session {
                id_hash: s.id_hash,
                csrf: s.csrf,
            },
        }))
    })
    .await
}

fn is_api(path: &str) -> bool {
    path.starts_with("/api/") || path == "/metrics"
}

fn deny(path: &str, err: ApiError) -> Response {
    if is_api(path) || err.status != StatusCode::UNAUTHORIZED {
        if is_api(path) {
            return err.into_response();
        }
        return crate::pages::error_page(&err);
    }
    let next = if path == "/" {
        String::new()
    } else {
        format!("?next={}", percent(path))
    };
    Redirect::to(&format!("/login{next}")).into_response()
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"/-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Largest form body the CSRF check reads.
const FORM_LIMIT: usize = 1 << 20;

/// The gate of every protected route: a principal, a writer for unsafe methods, and the
/// session's CSRF token on unsafe requests made with the cookie. On the way out, a
/// message the handler left for the next page is stored for the session
/// ([`crate::flash`]).
pub async fn require(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let principal = match resolve(&state, request.headers()).await {
        Ok(Some(p)) => p,
        Ok(None) => return deny(&path, ApiError::unauthorized()),
        Err(e) => return deny(&path, e),
    };
    let unsafe_method = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let mut request = request;
    if unsafe_method {
        if path != "/logout" && !principal.role.can_write() {
            return deny(
                &path,
                ApiError::forbidden(format!(
                    "{} has the {} role, which only reads: ask an owner for the admin role or a write token",
                    principal.name,
                    principal.role.as_str()
                )),
            );
        }
        if let Via::Session { csrf, .. } = &principal.via {
            let (ok, rebuilt) = csrf_ok(request, csrf).await;
            match rebuilt {
                Some(r) if ok => request = r,
                _ => {
                    return deny(
                        &path,
                        ApiError::forbidden(
                            "the form's security token is missing or stale: reload the page and try again",
                        ),
                    );
                }
            }
        }
    }
    request.extensions_mut().insert(principal.clone());
    let response = next.run(request).await;
    // A console form's message is kept for this session; its redirect names it.
    crate::flash::attach(&state, &principal, response)
}

/// Checks the CSRF token (header, else the `csrf` field of a urlencoded form, whose body
/// is read and put back).
async fn csrf_ok(request: Request, want: &str) -> (bool, Option<Request>) {
    if let Some(v) = request.headers().get(CSRF_HEADER) {
        let ok = v.to_str().is_ok_and(|v| same(v, want));
        return (ok, Some(request));
    }
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return (false, Some(request));
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, FORM_LIMIT).await else {
        return (false, None);
    };
    let ok = form_urlencoded_field(&bytes, "csrf").is_some_and(|v| same(&v, want));
    (ok, Some(Request::from_parts(parts, Body::from(bytes))))
}

/// One field of a urlencoded body.
pub fn form_urlencoded_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded_pairs(body)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

fn serde_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(
        &format!("/?{}", String::from_utf8_lossy(body))
            .parse()
            .unwrap_or_default(),
    )
    .map(|q| q.0)
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::ConsoleUserId;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("a long enough password").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("a long enough password", &h));
        assert!(!verify_password("a long enough passwore", &h));
        assert!(!verify_password("x", "not a hash"));
        assert!(
            hash_password("short")
                .unwrap_err()
                .message
                .contains("at least 12")
        );
    }

    #[test]
    fn only_paths_of_this_site_are_followed_after_sign_in() {
        for bad in [
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "//evil.example",
            "/\\evil.example",
            "/\\/evil.example",
            "/users\\..\\x",
            "/ /evil.example",
            "/\u{3000}/evil.example",
            "/\u{0}x",
            "https://evil.example/",
            "evil.example",
            "javascript:alert(1)",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
        for good in [
            "/",
            "/runs/3?outcome=created",
            "/users/12#history",
            "/%2F/x",
        ] {
            assert_eq!(safe_next(Some(good)), good);
        }
        assert_eq!(
            safe_next(Some("/sync/zoë/progress")),
            "/sync/zo%C3%AB/progress"
        );
    }

    #[test]
    fn secrets_compare_and_cookies_parse() {
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a=1; rs_session=xyz; b=2".parse().unwrap());
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("xyz"));
        assert_eq!(cookie(&h, "none"), None);
        let c = session_cookie(SESSION_COOKIE, Some("v"), true);
        assert_eq!(c, "rs_session=v; Path=/; HttpOnly; SameSite=Strict; Secure");
        assert!(session_cookie(SESSION_COOKIE, None, false).contains("Max-Age=0"));
        assert_eq!(
            form_urlencoded_field(b"x=1&csrf=a%2Bb", "csrf").as_deref(),
            Some("a+b")
        );
        assert_eq!(sha256_hex("abc").len(), 64);
        assert!(generate_token().unwrap().starts_with("rs_"));
    }

    fn account(hash: &str, disabled: bool) -> ConsoleAccount {
        ConsoleAccount {
            id: ConsoleUserId(1),
            name: "olivia".into(),
            role: ConsoleRole::Owner,
            disabled,
            password_hash: hash.into(),
            created_at: Timestamp::UNIX_EPOCH,
            password_set_at: Timestamp::UNIX_EPOCH,
        }
    }

    /// The shortest of three runs of `f`.
    fn fastest(f: impl Fn() -> bool) -> std::time::Duration {
        (0..3)
            .map(|_| {
                let t = std::time::Instant::now();
                let _ = std::hint::black_box(f());
                t.elapsed()
            })
            .min()
            .unwrap()
    }

    #[test]
    fn every_sign_in_check_runs_argon2() {
        let password = "a long enough password";
        let h = hash_password(password).unwrap();
        let active = account(&h, false);
        let disabled = account(&h, true);
        assert!(check_sign_in(Some(&active), password));
        assert!(!check_sign_in(Some(&active), "a wrong password!"));
        assert!(
            !check_sign_in(Some(&disabled), password),
            "a disabled account never signs in"
        );
        assert!(!check_sign_in(None, password));
        // A skipped check takes microseconds, argon2 milliseconds: a disabled account and
        // an unknown name cost about what a real check does.
        prepare();
        let real = fastest(|| check_sign_in(Some(&active), "a wrong password!"));
        let off = fastest(|| check_sign_in(Some(&disabled), password));
        let none = fastest(|| check_sign_in(None, password));
        assert!(
            off * 10 >= real && none * 10 >= real,
            "real {real:?}, disabled {off:?}, unknown {none:?}"
        );
    }

    #[test]
    fn typed_names_are_logged_quoted_and_cut() {
        let addr: std::net::IpAddr = "192.0.2.1".parse().unwrap();
        let forged = "eve\n WARN console: signed in account=\"olivia\"";
        let long = "x".repeat(5000);
        let ((), out) = crate::log_capture::capture(|| {
            log_failed_sign_in(forged, addr);
            log_failed_sign_in(&long, addr);
        });
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "one line per failure, none forged: {out}");
        assert!(
            lines[0].contains(r#"account="eve\n WARN console: signed in account=\"olivia\"""#),
            "{}",
            lines[0]
        );
        assert!(lines[0].contains("addr=192.0.2.1"), "{}", lines[0]);
        let logged = format!("account=\"{}…\"", "x".repeat(LOGGED_NAME));
        assert!(lines[1].contains(&logged), "{}", lines[1]);
        assert_eq!(loggable("short"), "short");
    }
}
