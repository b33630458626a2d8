//! A stand-in of Google Workspace for tests and the demo: the OAuth token endpoint's
//! JWT-bearer grant (the assertion's RS256 signature verified with the stand-in service
//! account's public key, its claims checked) and the Admin SDK Directory API's
//! `users.list` (Bearer token, `customer` or `domain`, `maxResults` paging with
//! `nextPageToken`, users as Google's JSON), answering errors in Google's shapes.
//!
//! Tests change it while it runs: the accounts (rename, suspend), the admin the service
//! account may act for, throttling (429 with `Retry-After: 0`) and a page that keeps
//! failing (503).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use jiff::Timestamp;
use ring::signature::{KeyPair as _, RsaKeyPair};

use crate::error::SimError;
use crate::serving::Serving;

use super::Jws;

/// The stand-in service account's key: made for the stand-in only, never for Google.
const STANDIN_KEY_PEM: &str = include_str!("data/standin-service-account.pem");
/// Another key of the same service account, one the stand-in does not accept (as if
/// deleted in the Cloud console).
const REVOKED_KEY_PEM: &str = include_str!("data/revoked-service-account.pem");

/// The stand-in service account.
pub const STANDIN_CLIENT_EMAIL: &str = "rostersync@standin-project.iam.gserviceaccount.com";
pub const STANDIN_CLIENT_ID: &str = "104200000000000000001";
pub const STANDIN_KEY_ID: &str = "5f0c3b1e7a9d2c4b6e8f0a1b2c3d4e5f6a7b8c9d";
/// The admin the service account may act for unless [`RunningGoogle::require_admin`]
/// says another.
pub const STANDIN_ADMIN: &str = "admin@district.example";
/// The Workspace customer's domain and id.
pub const STANDIN_DOMAIN: &str = "district.example";
pub const STANDIN_CUSTOMER_ID: &str = "C03standin";
/// The only scope delegated to the service account.
pub const DIRECTORY_READONLY_SCOPE: &str =
    "https://www.googleapis.com/auth/admin.directory.user.readonly";

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const UNAUTHORIZED_CLIENT: &str = "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.";
const DEFAULT_MAX_RESULTS: usize = 100;
const MAX_RESULTS: usize = 500;

/// A key-file JSON of the stand-in service account whose `token_uri` is `token_uri`.
pub fn standin_key_file(token_uri: &str) -> String {
    key_file(token_uri, STANDIN_KEY_ID, STANDIN_KEY_PEM)
}

/// A key file of the same service account with a key the stand-in refuses (a deleted
/// key), for tests of a refused signature.
pub fn revoked_key_file(token_uri: &str) -> String {
    key_file(
        token_uri,
        "0badc0ffee0badc0ffee0badc0ffee0badc0ffee",
        REVOKED_KEY_PEM,
    )
}

fn key_file(token_uri: &str, key_id: &str, pem: &str) -> String {
    serde_json::json!({
        "type": "service_account",
        "project_id": "standin-project",
        "private_key_id": key_id,
        "private_key": pem,
        "client_email": STANDIN_CLIENT_EMAIL,
        "client_id": STANDIN_CLIENT_ID,
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": format!("https://www.googleapis.com/robot/v1/metadata/x509/{STANDIN_CLIENT_EMAIL}"),
        "universe_domain": "googleapis.com"
    })
    .to_string()
}

/// One Workspace account as the stand-in serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoogleAccount {
    pub id: String,
    pub primary_email: String,
    pub given_name: String,
    pub family_name: String,
    pub aliases: Vec<String>,
    pub non_editable_aliases: Vec<String>,
    pub suspended: bool,
    pub archived: bool,
    pub org_unit_path: String,
    /// Served as an `externalIds` entry of type `organization`.
    pub external_id: Option<String>,
    pub creation_time: Timestamp,
    /// `None` for never (served as Google does: the epoch).
    pub last_login_time: Option<Timestamp>,
}

impl GoogleAccount {
    /// An active account in `/`, created 2024-01-01, never signed in.
    pub fn new(id: &str, primary_email: &str, given_name: &str, family_name: &str) -> Self {
        GoogleAccount {
            id: id.to_owned(),
            primary_email: primary_email.to_owned(),
            given_name: given_name.to_owned(),
            family_name: family_name.to_owned(),
            aliases: Vec::new(),
            non_editable_aliases: Vec::new(),
            suspended: false,
            archived: false,
            org_unit_path: "/".to_owned(),
            external_id: None,
            creation_time: Timestamp::from_second(1_704_067_200).unwrap_or(Timestamp::UNIX_EPOCH),
            last_login_time: None,
        }
    }

    /// The `users` resource as the Directory API serves it with `projection=full`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut user = serde_json::json!({
            "kind": "admin#directory#user",
            "id": self.id,
            "etag": format!("\"standin-{}\"", self.id),
            "primaryEmail": self.primary_email,
            "name": {
                "givenName": self.given_name,
                "familyName": self.family_name,
                "fullName": format!("{} {}", self.given_name, self.family_name),
            },
            "isAdmin": false,
            "isDelegatedAdmin": false,
            "lastLoginTime": google_time(self.last_login_time.unwrap_or(Timestamp::UNIX_EPOCH)),
            "creationTime": google_time(self.creation_time),
            "agreedToTerms": self.last_login_time.is_some(),
            "suspended": self.suspended,
            "archived": self.archived,
            "changePasswordAtNextLogin": false,
            "ipWhitelisted": false,
            "emails": [{ "address": self.primary_email, "primary": true }],
            "customerId": STANDIN_CUSTOMER_ID,
            "orgUnitPath": self.org_unit_path,
            "isMailboxSetup": true,
            "isEnrolledIn2Sv": false,
            "isEnforcedIn2Sv": false,
            "includeInGlobalAddressList": true,
        });
        if self.suspended {
            user["suspensionReason"] = "ADMIN".into();
        }
        if !self.aliases.is_empty() {
            user["aliases"] = self.aliases.clone().into();
        }
        if !self.non_editable_aliases.is_empty() {
            user["nonEditableAliases"] = self.non_editable_aliases.clone().into();
        }
        if let Some(value) = &self.external_id {
            user["externalIds"] = serde_json::json!([{ "value": value, "type": "organization" }]);
        }
        user
    }
}

/// Google's timestamps: RFC 3339 in UTC with milliseconds.
fn google_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

struct GoogleState {
    accounts: RwLock<Vec<GoogleAccount>>,
    /// The accounts' places by primary email (what `orderBy=email` serves), made by the
    /// first such read after a change and kept until the next: a domain of a million
    /// accounts is read in thousands of pages, each of which sorting again took seconds.
    /// Cleared under the accounts' write lock, so no read finds one of other accounts.
    by_email: Mutex<Option<Arc<Vec<u32>>>>,
    admin: RwLock<String>,
    public_key: Vec<u8>,
    token_url: String,
    /// Each access token issued with the `users.list` requests it may still serve.
    tokens: Mutex<HashMap<String, u32>>,
    token_uses: AtomicU32,
    issued: AtomicU64,
    throttle: AtomicU32,
    failing_page: AtomicU32,
    deny_reads: AtomicBool,
    requests: AtomicU64,
}

impl GoogleState {
    fn admin(&self) -> String {
        match self.admin.read() {
            Ok(a) => a.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// The district's students and staff with an email, every `every`th of them (1: all), as
/// Workspace accounts: each one's address `email` (what the SIS gives, mapped as the
/// domain names it), in `/Students` or `/Staff`, ids in order from
/// `100000000000000000000`. Guardians have none.
pub fn district_accounts(
    district: &crate::District,
    every: usize,
    email: impl Fn(&str) -> String,
) -> Vec<GoogleAccount> {
    let mut accounts = Vec::new();
    super::each_district_person(district, every, |p| {
        let mut account = GoogleAccount::new(
            &format!("1{:020}", accounts.len()),
            &email(&p.email),
            &p.given_name,
            &p.family_name,
        );
        account.org_unit_path = if p.staff { "/Staff" } else { "/Students" }.into();
        accounts.push(account);
    });
    accounts
}

/// Starts Google stand-ins.
#[derive(Debug)]
pub struct GoogleStandIn;

impl GoogleStandIn {
    /// Serves `accounts` on 127.0.0.1 (any free port) from the current tokio runtime.
    pub async fn start(accounts: Vec<GoogleAccount>) -> Result<RunningGoogle, SimError> {
        let bind_error = |source| SimError::Bind { port: 0, source };
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        let base_url = format!("http://{addr}");
        let key = pem_key(STANDIN_KEY_PEM)
            .ok_or_else(|| SimError::Task("the stand-in's own key does not load".into()))?;
        let state = Arc::new(GoogleState {
            accounts: RwLock::new(accounts),
            by_email: Mutex::new(None),
            admin: RwLock::new(STANDIN_ADMIN.to_owned()),
            public_key: key.public_key().as_ref().to_vec(),
            token_url: format!("{base_url}/token"),
            tokens: Mutex::new(HashMap::new()),
            token_uses: AtomicU32::new(u32::MAX),
            issued: AtomicU64::new(0),
            throttle: AtomicU32::new(0),
            failing_page: AtomicU32::new(0),
            deny_reads: AtomicBool::new(false),
            requests: AtomicU64::new(0),
        });
        let router = Router::new()
            .route("/token", post(token))
            .route("/admin/directory/v1/users", get(users))
            .with_state(Arc::clone(&state));
        let serving = Serving::start(listener, router, "Google stand-in");
        tracing::info!(%base_url, "Google stand-in listening");
        Ok(RunningGoogle {
            addr,
            base_url,
            state,
            serving,
        })
    }
}

/// A Google stand-in serving in the background; it stops when dropped.
pub struct RunningGoogle {
    addr: SocketAddr,
    base_url: String,
    state: Arc<GoogleState>,
    serving: Serving,
}

impl std::fmt::Debug for RunningGoogle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningGoogle")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl RunningGoogle {
    /// The API root (`api_url` of the reader), e.g. `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The token endpoint (the key file's `token_uri`).
    pub fn token_url(&self) -> &str {
        &self.state.token_url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A key file of the stand-in service account pointing at this stand-in.
    pub fn key_file(&self) -> String {
        standin_key_file(&self.state.token_url)
    }

    /// Replaces the accounts served.
    pub fn set_accounts(&self, accounts: Vec<GoogleAccount>) {
        self.update_accounts(|served| *served = accounts);
    }

    /// Changes the accounts served in place (rename, suspend, remove).
    pub fn update_accounts(&self, change: impl FnOnce(&mut Vec<GoogleAccount>)) {
        let mut served = match self.state.accounts.write() {
            Ok(served) => served,
            Err(poisoned) => poisoned.into_inner(),
        };
        change(&mut served);
        match self.state.by_email.lock() {
            Ok(mut order) => *order = None,
            Err(poisoned) => *poisoned.into_inner() = None,
        }
    }

    /// The accounts served now.
    pub fn accounts(&self) -> Vec<GoogleAccount> {
        match self.state.accounts.read() {
            Ok(served) => served.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Delegation is granted for this admin only (others get `unauthorized_client`).
    pub fn require_admin(&self, subject: &str) {
        match self.state.admin.write() {
            Ok(mut admin) => *admin = subject.to_owned(),
            Err(poisoned) => *poisoned.into_inner() = subject.to_owned(),
        }
    }

    /// Answers the next `n` requests (token or users) with 429 and `Retry-After: 0`.
    pub fn throttle_next(&self, n: u32) {
        self.state.throttle.store(n, Ordering::SeqCst);
    }

    /// Answers page `page` (1 = the first) of `users.list` with 503 every time; 0 fails none.
    pub fn fail_page(&self, page: u32) {
        self.state.failing_page.store(page, Ordering::SeqCst);
    }

    /// Access tokens issued from now on serve `requests` pages of `users.list`, then are
    /// refused with 401 as an expired token is (the one-hour lifetime, made countable).
    pub fn token_lifetime(&self, requests: u32) {
        self.state.token_uses.store(requests, Ordering::SeqCst);
    }

    /// Answers `users.list` with 403 as Google does when the admin impersonated lacks
    /// the privilege to read users (`true`), or serves it again (`false`).
    pub fn deny_user_reads(&self, deny: bool) {
        self.state.deny_reads.store(deny, Ordering::SeqCst);
    }

    /// Requests served so far, throttled and failed ones included.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Stops serving and waits for the server task to end.
    pub async fn stop(self) {
        self.serving.stop().await;
    }
}

fn pem_key(pem: &str) -> Option<RsaKeyPair> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()?;
    RsaKeyPair::from_pkcs8(&der).ok()
}

/// Counts the request; a throttled one gets its 429 here.
fn throttled(state: &GoogleState) -> Option<Response> {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let took = state
        .throttle
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    took.then(|| {
        let body = api_error(
            429,
            "Quota exceeded for quota metric 'Queries'.",
            "rateLimitExceeded",
        );
        (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "0")],
            axum::Json(body),
        )
            .into_response()
    })
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = serde_json::json!({ "error": error, "error_description": description });
    (status, axum::Json(body)).into_response()
}

/// Google's API error body.
fn api_error(code: u16, message: &str, reason: &str) -> serde_json::Value {
    serde_json::json!({
        "error": {
            "code": code,
            "message": message,
            "errors": [{ "message": message, "domain": "global", "reason": reason }],
        }
    })
}

fn api_error_response(code: StatusCode, message: &str, reason: &str) -> Response {
    (code, axum::Json(api_error(code.as_u16(), message, reason))).into_response()
}

/// `POST /token`: the JWT-bearer grant.
async fn token(State(state): State<Arc<GoogleState>>, body: Bytes) -> Response {
    if let Some(refused) = throttled(&state) {
        return refused;
    }
    let form: Vec<(String, String)> = form_pairs(&body);
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if field("grant_type") != Some(GRANT_TYPE) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Invalid grant_type: ",
        );
    }
    let Some(assertion) = field("assertion") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: assertion",
        );
    };
    let claims = match verify(&state, assertion) {
        Ok(claims) => claims,
        Err(description) => {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description);
        }
    };
    let text = |name: &str| claims.get(name).and_then(|v| v.as_str()).unwrap_or("");
    if text("iss") != STANDIN_CLIENT_EMAIL {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Invalid grant: account not found",
        );
    }
    if text("aud") != state.token_url {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Invalid JWT: Failed audience check.",
        );
    }
    let now = Timestamp::now().as_second();
    let number = |name: &str| claims.get(name).and_then(|v| v.as_i64());
    let (Some(iat), Some(exp)) = (number("iat"), number("exp")) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
        );
    };
    if exp <= now || iat > now + 300 || exp - iat > 3600 {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
        );
    }
    let scopes: Vec<&str> = text("scope").split_whitespace().collect();
    if text("sub") != state.admin() || scopes != [DIRECTORY_READONLY_SCOPE] {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized_client",
            UNAUTHORIZED_CLIENT,
        );
    }
    let n = state.issued.fetch_add(1, Ordering::SeqCst);
    let access_token = format!("ya29.standin-{n}");
    if let Ok(mut tokens) = state.tokens.lock() {
        tokens.insert(
            access_token.clone(),
            state.token_uses.load(Ordering::SeqCst),
        );
    }
    axum::Json(serde_json::json!({
        "access_token": access_token,
        "expires_in": 3599,
        "token_type": "Bearer",
    }))
    .into_response()
}

fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    crate::server::query::parse_pairs(&text)
}

/// The claims of an assertion whose header and RS256 signature are right, or Google's
/// description of what is wrong.
fn verify(
    state: &GoogleState,
    assertion: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, &'static str> {
    let object = |json: Option<serde_json::Value>| match json {
        Some(serde_json::Value::Object(map)) => Some(map),
        _ => None,
    };
    let jws = Jws::split(assertion).ok_or("Invalid JWT: not three dot-separated parts.")?;
    let header_json = object(jws.header_json()).ok_or("Invalid JWT header.")?;
    if header_json.get("alg").and_then(|v| v.as_str()) != Some("RS256") {
        return Err("Invalid JWT: the algorithm must be RS256.");
    }
    if !jws.signed_by(&state.public_key) {
        return Err("Invalid JWT Signature.");
    }
    object(jws.claims_json()).ok_or("Invalid JWT claims.")
}

/// `GET /admin/directory/v1/users`: `users.list`.
async fn users(
    State(state): State<Arc<GoogleState>>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    if let Some(refused) = throttled(&state) {
        return refused;
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let known = bearer.is_some_and(|t| {
        state
            .tokens
            .lock()
            .is_ok_and(|mut tokens| match tokens.get_mut(t) {
                Some(uses) if *uses > 0 => {
                    *uses -= 1;
                    true
                }
                _ => false,
            })
    });
    if !known {
        return api_error_response(
            StatusCode::UNAUTHORIZED,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
            "authError",
        );
    }
    if state.deny_reads.load(Ordering::SeqCst) {
        return api_error_response(
            StatusCode::FORBIDDEN,
            "Not Authorized to access this resource/api",
            "forbidden",
        );
    }
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    match (param("customer"), param("domain")) {
        (Some(c), _) if c == "my_customer" || c == STANDIN_CUSTOMER_ID => {}
        (Some(_), _) => {
            return api_error_response(StatusCode::BAD_REQUEST, "Bad Request", "badRequest");
        }
        (None, Some(d)) if d.eq_ignore_ascii_case(STANDIN_DOMAIN) => {}
        (None, Some(_)) => {
            return api_error_response(StatusCode::NOT_FOUND, "Domain not found.", "notFound");
        }
        (None, None) => {
            return api_error_response(StatusCode::BAD_REQUEST, "Bad Request", "badRequest");
        }
    }
    let max = param("maxResults")
        .and_then(|m| m.parse::<usize>().ok())
        .unwrap_or(DEFAULT_MAX_RESULTS)
        .clamp(1, MAX_RESULTS);
    let offset = match param("pageToken") {
        None => 0,
        Some(t) => match page_offset(t) {
            Some(o) => o,
            None => {
                return api_error_response(StatusCode::BAD_REQUEST, "Invalid Input", "invalid");
            }
        },
    };
    let page = u32::try_from(offset / max + 1).unwrap_or(u32::MAX);
    if state.failing_page.load(Ordering::SeqCst) == page {
        return api_error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is currently unavailable.",
            "backendError",
        );
    }
    let keep = match param("query").map(search_filter) {
        None => None,
        Some(Some(keep)) => Some(keep),
        Some(None) => {
            return api_error_response(StatusCode::BAD_REQUEST, "Invalid Input", "invalid");
        }
    };
    let served = match state.accounts.read() {
        Ok(a) => a,
        Err(poisoned) => poisoned.into_inner(),
    };
    let order = (param("orderBy") == Some("email")).then(|| email_order(&state, &served));
    let places: Box<dyn Iterator<Item = usize> + '_> = match &order {
        Some(order) => Box::new(order.iter().map(|&i| i as usize)),
        None => Box::new(0..served.len()),
    };
    let mut matching = places
        .filter_map(|i| served.get(i))
        .filter(|a| keep.as_ref().is_none_or(|keep| keep(a)));
    let users: Vec<serde_json::Value> = matching
        .by_ref()
        .skip(offset)
        .take(max)
        .map(GoogleAccount::to_json)
        .collect();
    let more = matching.next().is_some();
    let mut body = serde_json::json!({
        "kind": "admin#directory#users",
        "etag": "\"standin\"",
    });
    if !users.is_empty() {
        body["users"] = users.into();
    }
    if more {
        body["nextPageToken"] = page_token(offset + max).into();
    }
    axum::Json(body).into_response()
}

/// The places of `served` (the accounts, read-locked) by primary email, stable: kept in
/// `state` until the accounts change.
fn email_order(state: &GoogleState, served: &[GoogleAccount]) -> Arc<Vec<u32>> {
    let mut kept = match state.by_email.lock() {
        Ok(kept) => kept,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some(order) = kept.as_ref().filter(|o| o.len() == served.len()) {
        return Arc::clone(order);
    }
    let mut order: Vec<u32> = (0..served.len() as u32).collect();
    order.sort_by(|a, b| {
        served[*a as usize]
            .primary_email
            .cmp(&served[*b as usize].primary_email)
    });
    let order = Arc::new(order);
    *kept = Some(Arc::clone(&order));
    order
}

/// The part of the `query` search language the stand-in understands: clauses joined by
/// blanks, each `isSuspended=true|false`, `orgUnitPath='/Path'` (the unit and those
/// under it) or `email:prefix*`; `None` for anything else (Google's `Invalid Input`).
fn search_filter(search: &str) -> Option<impl Fn(&GoogleAccount) -> bool> {
    let mut clauses = Vec::new();
    for clause in search.split_whitespace() {
        clauses.push(if let Some(v) = clause.strip_prefix("isSuspended=") {
            Clause::Suspended(v.parse().ok()?)
        } else if let Some(v) = clause.strip_prefix("orgUnitPath=") {
            Clause::OrgUnit(v.trim_matches('\'').trim_end_matches('/').to_owned())
        } else if let Some(v) = clause.strip_prefix("email:") {
            Clause::EmailPrefix(v.strip_suffix('*')?.to_lowercase())
        } else {
            return None;
        });
    }
    Some(move |a: &GoogleAccount| clauses.iter().all(|c| c.keeps(a)))
}

/// One clause of a `query` search.
enum Clause {
    Suspended(bool),
    /// The unit's path without its trailing `/` (empty: the root, every account).
    OrgUnit(String),
    EmailPrefix(String),
}

impl Clause {
    fn keeps(&self, a: &GoogleAccount) -> bool {
        match self {
            Clause::Suspended(want) => a.suspended == *want,
            Clause::OrgUnit(unit) => {
                unit.is_empty()
                    || a.org_unit_path == *unit
                    || a.org_unit_path.starts_with(&format!("{unit}/"))
            }
            Clause::EmailPrefix(prefix) => a.primary_email.to_lowercase().starts_with(prefix),
        }
    }
}

fn page_token(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("offset:{offset}"))
}

fn page_offset(token: &str) -> Option<usize> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    String::from_utf8(raw)
        .ok()?
        .strip_prefix("offset:")?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_load_and_differ() {
        let standin = pem_key(STANDIN_KEY_PEM).unwrap();
        let revoked = pem_key(REVOKED_KEY_PEM).unwrap();
        assert_ne!(standin.public_key().as_ref(), revoked.public_key().as_ref());
    }

    #[test]
    fn accounts_serve_as_google_json() {
        let mut a = GoogleAccount::new("1", "ann@district.example", "Ann", "Lee");
        a.external_id = Some("S1".into());
        a.aliases = vec!["a.lee@district.example".into()];
        let json = a.to_json();
        assert_eq!(json["lastLoginTime"], "1970-01-01T00:00:00.000Z");
        assert_eq!(json["creationTime"], "2024-01-01T00:00:00.000Z");
        assert_eq!(json["externalIds"][0]["type"], "organization");
        assert_eq!(json["aliases"][0], "a.lee@district.example");
        assert!(json.get("nonEditableAliases").is_none());
    }

    #[test]
    fn searches_filter_the_accounts() {
        let mut a = GoogleAccount::new("1", "ann@district.example", "Ann", "Lee");
        a.org_unit_path = "/Students/North".into();
        let mut b = GoogleAccount::new("2", "bob@district.example", "Bob", "Ray");
        b.org_unit_path = "/Staff".into();
        b.suspended = true;
        let both = [a, b];
        let ids = |search: &str| -> Vec<String> {
            let keep = search_filter(search).unwrap();
            both.iter()
                .filter(|x| keep(x))
                .map(|x| x.id.clone())
                .collect()
        };
        assert_eq!(ids("orgUnitPath='/Students'"), ["1"]);
        assert_eq!(ids("isSuspended=true"), ["2"]);
        assert_eq!(ids("email:ann* isSuspended=false"), ["1"]);
        assert_eq!(ids("orgUnitPath=/"), ["1", "2"]);
        assert!(search_filter("name:'Ann'").is_none());
    }

    #[test]
    fn page_tokens_round_trip() {
        assert_eq!(page_offset(&page_token(1500)), Some(1500));
        assert_eq!(page_offset("nonsense"), None);
    }

    fn assertion(pem: &str, claims: serde_json::Value) -> String {
        let b64 = &base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = serde_json::json!({ "alg": "RS256", "typ": "JWT" });
        let signed = format!(
            "{}.{}",
            b64.encode(header.to_string()),
            b64.encode(claims.to_string())
        );
        let key = pem_key(pem).unwrap();
        let mut signature = vec![0u8; key.public().modulus_len()];
        key.sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            signed.as_bytes(),
            &mut signature,
        )
        .unwrap();
        format!("{signed}.{}", b64.encode(signature))
    }

    async fn grant(google: &RunningGoogle, assertion: &str) -> (u16, serde_json::Value) {
        let answer = reqwest::Client::new()
            .post(google.token_url())
            .form(&[("grant_type", GRANT_TYPE), ("assertion", assertion)])
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        let body = answer.bytes().await.unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn the_token_endpoint_checks_signature_and_claims() {
        let google = GoogleStandIn::start(Vec::new()).await.unwrap();
        let now = Timestamp::now().as_second();
        let claims = |scope: &str, sub: &str, aud: &str| {
            serde_json::json!({
                "iss": STANDIN_CLIENT_EMAIL, "sub": sub, "scope": scope, "aud": aud,
                "iat": now, "exp": now + 3600,
            })
        };
        let url = google.token_url().to_owned();
        let good = claims(DIRECTORY_READONLY_SCOPE, STANDIN_ADMIN, &url);
        let (status, body) = grant(&google, &assertion(STANDIN_KEY_PEM, good.clone())).await;
        assert_eq!(status, 200, "{body}");
        assert!(body["access_token"].as_str().is_some());

        let (status, body) = grant(&google, &assertion(REVOKED_KEY_PEM, good)).await;
        assert_eq!(
            (status, body["error_description"].as_str()),
            (400, Some("Invalid JWT Signature."))
        );

        let wider = claims(
            "https://www.googleapis.com/auth/admin.directory.user",
            STANDIN_ADMIN,
            &url,
        );
        let (status, body) = grant(&google, &assertion(STANDIN_KEY_PEM, wider)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("unauthorized_client"))
        );
        assert_eq!(body["error_description"], UNAUTHORIZED_CLIENT);

        let other = claims(DIRECTORY_READONLY_SCOPE, "teacher@district.example", &url);
        let (status, body) = grant(&google, &assertion(STANDIN_KEY_PEM, other)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("unauthorized_client"))
        );

        let elsewhere = claims(
            DIRECTORY_READONLY_SCOPE,
            STANDIN_ADMIN,
            "https://oauth2.googleapis.com/token",
        );
        let (status, body) = grant(&google, &assertion(STANDIN_KEY_PEM, elsewhere)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant"))
        );

        let mut stale = claims(DIRECTORY_READONLY_SCOPE, STANDIN_ADMIN, &url);
        stale["exp"] = (now - 10).into();
        let (status, body) = grant(&google, &assertion(STANDIN_KEY_PEM, stale)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant"))
        );

        let answer = reqwest::Client::new()
            .get(format!(
                "{}/admin/directory/v1/users?customer=my_customer",
                google.base_url()
            ))
            .bearer_auth("ya29.made-up")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 401);
    }
}
