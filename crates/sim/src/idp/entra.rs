//! A stand-in of Microsoft Entra ID for tests: the v2.0 token endpoint
//! (`/{tenant}/oauth2/v2.0/token`, client credentials, with AAD's error JSON and
//! `AADSTS` codes) and Microsoft Graph v1.0's `/v1.0/users` (`$top` paging through
//! absolute `@odata.nextLink`s) and `/v1.0/users/delta` (skip and delta tokens,
//! `@removed` entries, 410 for an unknown or expired token), following Microsoft's
//! public documentation. Tests change the accounts while it runs and turn on faults:
//! a withheld `User.Read.All` (403 `Authorization_RequestDenied`), throttling (429 with
//! `Retry-After: 0`), a page that answers 503 forever.
//!
//! Delta rounds: a round (a first delta call, or a call with a delta token) fixes the
//! list of changed ids when it starts; its pages then serve each id as it is when the
//! page is read (the user, or `{"id", "@removed"}` once it is gone). Changes made
//! during a round also show up in the next one. As Graph does by default (no
//! `Prefer: return=minimal`), a changed user carries every selected property that has a
//! value; properties never set are left out.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::error::SimError;
use crate::serving::Serving;

use super::Jws;

/// The stand-in's tenant (directory) id.
pub const TENANT: &str = "6c1f3b2a-4d5e-4f60-8a71-92b3c4d5e6f7";
/// The tenant's primary domain, accepted in place of its id as Entra does.
pub const TENANT_DOMAIN: &str = "district.onmicrosoft.com";
/// The registered app's Application (client) id.
pub const CLIENT_ID: &str = "0a1b2c3d-4e5f-4061-8273-94a5b6c7d8e9";
/// The app's client secret value.
pub const CLIENT_SECRET: &str = "Sb8Q~standin.secret-value_0123456789abcdef";
/// The only scope a client-credentials request may ask for.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
/// Entries per delta page unless [`EntraStandIn::set_delta_page_size`] says otherwise.
pub const DEFAULT_DELTA_PAGE_SIZE: usize = 100;

/// A user as the stand-in holds it; served as Graph's `user` JSON.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EntraUser {
    pub id: String,
    pub user_principal_name: String,
    pub mail: Option<String>,
    pub other_mails: Vec<String>,
    /// `SMTP:primary@…` and `smtp:secondary@…` entries, as Exchange writes them.
    pub proxy_addresses: Vec<String>,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub account_enabled: bool,
    pub employee_id: Option<String>,
    /// `Member` (the default) or `Guest` (someone from outside the tenant).
    pub user_type: Option<String>,
    /// `createdDateTime`, e.g. `2024-08-01T12:00:00Z`.
    pub created: Option<String>,
}

impl EntraUser {
    /// An enabled user with a mailbox at its sign-in name.
    pub fn new(id: &str, upn: &str, given: &str, surname: &str) -> EntraUser {
        EntraUser {
            id: id.to_owned(),
            user_principal_name: upn.to_owned(),
            mail: Some(upn.to_owned()),
            other_mails: Vec::new(),
            proxy_addresses: vec![format!("SMTP:{upn}")],
            given_name: Some(given.to_owned()),
            surname: Some(surname.to_owned()),
            account_enabled: true,
            employee_id: None,
            user_type: Some("Member".to_owned()),
            created: Some("2024-08-01T12:00:00Z".to_owned()),
        }
    }

    /// Graph's JSON for the user: unset properties as `null` (a list), or left out
    /// (`omit_unset`, a delta entry).
    pub fn to_graph_json(&self, omit_unset: bool) -> Value {
        let mut object = serde_json::Map::new();
        let mut put = |key: &str, value: Value| {
            if !(omit_unset && value.is_null()) {
                object.insert(key.to_owned(), value);
            }
        };
        put("id", json!(self.id));
        put("userPrincipalName", json!(self.user_principal_name));
        put("mail", json!(self.mail));
        put("otherMails", json!(self.other_mails));
        put("proxyAddresses", json!(self.proxy_addresses));
        put("givenName", json!(self.given_name));
        put("surname", json!(self.surname));
        put("accountEnabled", json!(self.account_enabled));
        put("employeeId", json!(self.employee_id));
        put("userType", json!(self.user_type));
        put("createdDateTime", json!(self.created));
        Value::Object(object)
    }
}

/// The district's students and staff with an email, every `every`th of them (1: all), as
/// Entra users: each one's sign-in name and mailbox the email the SIS gives, their school
/// id as `employeeId`, ids GUID-shaped in order from `00000000-0000-4000-8000-000000000000`.
/// Guardians have none.
pub fn district_users(district: &crate::District, every: usize) -> Vec<EntraUser> {
    let mut users = Vec::new();
    super::each_district_person(district, every, |p| {
        let id = format!("00000000-0000-4000-8000-{:012}", users.len());
        let mut user = EntraUser::new(&id, &p.email, &p.given_name, &p.family_name);
        user.employee_id = p.identifier;
        users.push(user);
    });
    users
}

/// One delta round in progress: the ids it reports and the version its delta link ends at.
struct Round {
    ids: Vec<String>,
    upto: u64,
}

#[derive(Default)]
struct Inner {
    users: BTreeMap<String, EntraUser>,
    /// The version at which each id (present or removed) last changed.
    changed: HashMap<String, u64>,
    version: u64,
    /// Delta tokens older than this are expired.
    oldest_token: u64,
    rounds: HashMap<u64, Round>,
    next_round: u64,
    tokens: HashSet<String>,
    withhold_user_read_all: bool,
    throttle: u32,
    /// Graph requests still answered before the access tokens issued so far expire.
    tokens_expire_after: Option<u32>,
    failing_page: Option<usize>,
    delta_page_size: usize,
}

impl Inner {
    fn touch(&mut self, id: &str) {
        self.version += 1;
        self.changed.insert(id.to_owned(), self.version);
    }
}

struct Shared {
    inner: Mutex<Inner>,
    base: String,
    requests: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The stand-in serving on 127.0.0.1 in the background; it stops when dropped.
pub struct EntraStandIn {
    shared: Arc<Shared>,
    /// Held for its drop, which stops serving.
    _serving: Serving,
}

impl std::fmt::Debug for EntraStandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntraStandIn")
            .field("base_url", &self.shared.base)
            .finish_non_exhaustive()
    }
}

impl EntraStandIn {
    /// Serves `accounts` on a free port of 127.0.0.1 from the current tokio runtime.
    pub async fn start(accounts: Vec<EntraUser>) -> Result<EntraStandIn, SimError> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(|source| SimError::Bind { port: 0, source })?;
        let addr: SocketAddr = listener
            .local_addr()
            .map_err(|source| SimError::Bind { port: 0, source })?;
        let mut inner = Inner {
            delta_page_size: DEFAULT_DELTA_PAGE_SIZE,
            ..Inner::default()
        };
        for user in accounts {
            inner.touch(&user.id);
            inner.users.insert(user.id.clone(), user);
        }
        let shared = Arc::new(Shared {
            inner: Mutex::new(inner),
            base: format!("http://{addr}"),
            requests: AtomicU64::new(0),
        });
        let router = Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(token))
            .route("/v1.0/users", get(users))
            .route("/v1.0/users/delta", get(delta))
            .fallback(not_found)
            .with_state(Arc::clone(&shared));
        let serving = Serving::start(listener, router, "Entra stand-in");
        Ok(EntraStandIn {
            shared,
            _serving: serving,
        })
    }

    /// `http://127.0.0.1:PORT`: both the login host and the Graph host.
    pub fn base_url(&self) -> &str {
        &self.shared.base
    }

    /// The token URL for [`TENANT`].
    pub fn token_url(&self) -> String {
        format!("{}/{TENANT}/oauth2/v2.0/token", self.shared.base)
    }

    /// Requests answered so far (token requests included).
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Adds the user, or replaces the one with its id.
    pub fn upsert(&self, user: EntraUser) {
        let mut inner = self.shared.lock();
        inner.touch(&user.id);
        inner.users.insert(user.id.clone(), user);
    }

    /// Serves exactly `accounts` from now on: the others are deleted, these added or
    /// replaced (each counts as a change for delta, as in Graph after a bulk update).
    pub fn set_accounts(&self, accounts: Vec<EntraUser>) {
        let mut inner = self.shared.lock();
        let keep: HashSet<&str> = accounts.iter().map(|u| u.id.as_str()).collect();
        let gone: Vec<String> = inner
            .users
            .keys()
            .filter(|id| !keep.contains(id.as_str()))
            .cloned()
            .collect();
        for id in gone {
            inner.users.remove(&id);
            inner.touch(&id);
        }
        for user in accounts {
            inner.touch(&user.id);
            inner.users.insert(user.id.clone(), user);
        }
    }

    /// Changes the user with `id` in place; false when there is none.
    pub fn update(&self, id: &str, change: impl FnOnce(&mut EntraUser)) -> bool {
        let mut inner = self.shared.lock();
        let Some(user) = inner.users.get_mut(id) else {
            return false;
        };
        change(user);
        inner.touch(id);
        true
    }

    /// Deletes the user with `id`; false when there is none.
    pub fn remove(&self, id: &str) -> bool {
        let mut inner = self.shared.lock();
        let removed = inner.users.remove(id).is_some();
        if removed {
            inner.touch(id);
        }
        removed
    }

    /// Answers Graph requests 403 `Authorization_RequestDenied`, as when the app lacks
    /// `User.Read.All` with admin consent.
    pub fn withhold_user_read_all(&self, withhold: bool) {
        self.shared.lock().withhold_user_read_all = withhold;
    }

    /// Answers the next `n` Graph requests 429 with `Retry-After: 0`.
    pub fn throttle_next(&self, n: u32) {
        self.shared.lock().throttle = n;
    }

    /// Lets the access tokens issued so far work for `n` more Graph requests, then
    /// expires them (401 `InvalidAuthenticationToken`), as an hour-long token does
    /// during a long read.
    pub fn expire_access_tokens_after(&self, n: u32) {
        self.shared.lock().tokens_expire_after = Some(n);
    }

    /// Answers page `index` (0 = the first) of every users list and delta round 503,
    /// for as long as it is set.
    pub fn fail_page(&self, index: Option<usize>) {
        self.shared.lock().failing_page = index;
    }

    /// Entries per delta page.
    pub fn set_delta_page_size(&self, size: usize) {
        self.shared.lock().delta_page_size = size.max(1);
    }

    /// Expires every delta and skip token issued so far (they answer 410 from now on).
    pub fn expire_delta_tokens(&self) {
        let mut inner = self.shared.lock();
        inner.oldest_token = inner.version + 1;
        inner.rounds.clear();
    }
}

fn aad_error(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    let body = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {description} Trace ID: 00000000-0000-0000-0000-000000000000 Correlation ID: 00000000-0000-0000-0000-000000000000 Timestamp: 2026-01-01 00:00:00Z"),
        "error_codes": [code],
        "timestamp": "2026-01-01 00:00:00Z",
        "trace_id": "00000000-0000-0000-0000-000000000000",
        "correlation_id": "00000000-0000-0000-0000-000000000000",
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    (status, Json(body)).into_response()
}

fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": "2026-01-01T00:00:00",
                "request-id": "00000000-0000-0000-0000-000000000000",
                "client-request-id": "00000000-0000-0000-0000-000000000000"
            }
        }
    });
    (status, Json(body)).into_response()
}

/// `POST /{tenant}/oauth2/v2.0/token`: the client-credentials grant.
async fn token(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
    if tenant != TENANT && !tenant.eq_ignore_ascii_case(TENANT_DOMAIN) {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    }
    if field("grant_type") != "client_credentials" {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        );
    }
    if field("scope").is_empty() {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'scope'.",
        );
    }
    if field("scope") != GRAPH_SCOPE {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            &format!(
                "The provided value for scope {} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).",
                field("scope")
            ),
        );
    }
    if field("client_id") != CLIENT_ID {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.",
                field("client_id")
            ),
        );
    }
    if field("client_assertion_type") == CLIENT_ASSERTION_TYPE {
        let audience = format!("{}/{tenant}/oauth2/v2.0/token", shared.base);
        if let Err(why) = check_assertion(field("client_assertion"), &audience) {
            return aad_error(StatusCode::UNAUTHORIZED, "invalid_client", 700027, why);
        }
    } else if field("client_secret") != CLIENT_SECRET {
        return aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            &format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{CLIENT_ID}'."
            ),
        );
    }
    let mut inner = shared.lock();
    let access_token = format!("standin-access-token-{}", inner.tokens.len() + 1);
    inner.tokens.insert(access_token.clone());
    Json(json!({
        "token_type": "Bearer",
        "expires_in": 3599,
        "ext_expires_in": 3599,
        "access_token": access_token,
    }))
    .into_response()
}

/// The `client_assertion_type` of a certificate credential.
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The certificate credential the stand-in's app has, with its private key (a test-only
/// self-signed certificate committed beside the Google stand-in's key: it opens nothing
/// anywhere else). Give its text to a reader as the certificate file.
pub const STANDIN_CERTIFICATE_PEM: &str = include_str!("data/standin-entra-certificate.pem");

/// Checks a client assertion as Entra does: RS256, `x5t` the thumbprint of the app's
/// certificate, signed by its key, issued by and for the app, for this token endpoint, not
/// expired; AAD's words for what is wrong.
fn check_assertion(assertion: &str, audience: &str) -> Result<(), &'static str> {
    use base64::Engine as _;
    use ring::signature::{KeyPair as _, RsaKeyPair};
    use sha1::Digest as _;
    let block = |label: &str| -> Option<Vec<u8>> {
        let begin = format!("-----BEGIN {label}-----");
        let body: String = STANDIN_CERTIFICATE_PEM
            .lines()
            .skip_while(|l| l.trim() != begin)
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .collect();
        base64::engine::general_purpose::STANDARD.decode(body).ok()
    };
    let invalid = "AADSTS700027: Client assertion contains an invalid signature.";
    let key = block("PRIVATE KEY")
        .and_then(|der| RsaKeyPair::from_pkcs8(&der).ok())
        .ok_or("AADSTS700027: the stand-in's own certificate does not load.")?;
    let thumbprint = block("CERTIFICATE")
        .map(|der| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(&der))
        })
        .ok_or("AADSTS700027: the stand-in's own certificate does not load.")?;
    let malformed = "AADSTS50027: JWT token is invalid or malformed.";
    let jws = Jws::split(assertion).ok_or(malformed)?;
    let (Some(header_json), Some(claims_json)) = (jws.header_json(), jws.claims_json()) else {
        return Err(malformed);
    };
    if header_json["alg"] != "RS256" || header_json["x5t"] != thumbprint.as_str() {
        return Err(
            "AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application.",
        );
    }
    if !jws.signed_by(key.public_key().as_ref()) {
        return Err(invalid);
    }
    let now = jiff::Timestamp::now().as_second();
    let valid = claims_json["iss"] == CLIENT_ID
        && claims_json["sub"] == CLIENT_ID
        && claims_json["aud"] == audience
        && claims_json["exp"].as_i64().is_some_and(|exp| exp > now)
        && claims_json["nbf"]
            .as_i64()
            .is_none_or(|nbf| nbf <= now + 60);
    if valid {
        Ok(())
    } else {
        Err(
            "AADSTS700024: Client assertion is not within its valid time range, or names another app or audience.",
        )
    }
}

/// What every Graph request goes through first (the count, throttling, the bearer
/// token and the permission): the answer when it stops there.
fn refusal(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let mut inner = shared.lock();
    if inner.throttle > 0 {
        inner.throttle -= 1;
        let mut response = graph_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Too many requests.",
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("0"));
        return Some(response);
    }
    match inner.tokens_expire_after {
        Some(0) => {
            inner.tokens.clear();
            inner.tokens_expire_after = None;
        }
        Some(n) => inner.tokens_expire_after = Some(n - 1),
        None => {}
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match bearer {
        None => {
            return Some(graph_error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "Access token is empty.",
            ));
        }
        Some(token) if !inner.tokens.contains(token) => {
            return Some(graph_error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "Lifetime validation failed, the token is expired.",
            ));
        }
        Some(_) => {}
    }
    if inner.withhold_user_read_all {
        return Some(graph_error(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        ));
    }
    None
}

fn page_failure(inner: &Inner, page: usize) -> Option<Response> {
    (inner.failing_page == Some(page)).then(|| {
        graph_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "serviceNotAvailable",
            "The service is temporarily unavailable.",
        )
    })
}

/// `GET /v1.0/users?$top=N[&$skiptoken=OFFSET]`.
async fn users(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(refused) = refusal(&shared, &headers) {
        return refused;
    }
    let top = match query.get("$top").map(|t| t.parse::<usize>()) {
        None => 100,
        Some(Ok(top)) if (1..=999).contains(&top) => top,
        Some(_) => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "Request_UnsupportedQuery",
                "Invalid page size specified: must be between 1 and 999 inclusive.",
            );
        }
    };
    let offset = match query.get("$skiptoken").map(|t| t.parse::<usize>()) {
        None => 0,
        Some(Ok(offset)) => offset,
        Some(Err(_)) => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "Directory_ExpiredPageToken",
                "The specified page token value has expired and can no longer be included in your request.",
            );
        }
    };
    let inner = shared.lock();
    if let Some(failure) = page_failure(&inner, offset.div_ceil(top)) {
        return failure;
    }
    let value: Vec<Value> = inner
        .users
        .values()
        .skip(offset)
        .take(top)
        .map(|u| u.to_graph_json(false))
        .collect();
    let mut body = json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users",
        "value": value,
    });
    if offset + top < inner.users.len() {
        body["@odata.nextLink"] = json!(format!(
            "{}/v1.0/users?$top={top}&$skiptoken={}",
            shared.base,
            offset + top
        ));
    }
    Json(body).into_response()
}

/// `GET /v1.0/users/delta[?$deltatoken=V | ?$skiptoken=ROUND.PAGE]`.
async fn delta(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(refused) = refusal(&shared, &headers) {
        return refused;
    }
    let expired = || {
        graph_error(
            StatusCode::GONE,
            "syncStateNotFound",
            "The sync state generation is not found. Delta tokens may have expired; start a full synchronization.",
        )
    };
    let mut inner = shared.lock();
    let (round, page) = if let Some(skip) = query.get("$skiptoken") {
        let parsed = skip
            .split_once('.')
            .and_then(|(r, p)| Some((r.parse::<u64>().ok()?, p.parse::<usize>().ok()?)));
        match parsed {
            Some((round, page)) if inner.rounds.contains_key(&round) => (round, page),
            _ => return expired(),
        }
    } else {
        let since = match query.get("$deltatoken").map(|t| t.parse::<u64>()) {
            None => None,
            Some(Ok(v)) if v >= inner.oldest_token && v <= inner.version => Some(v),
            Some(_) => return expired(),
        };
        let ids = match since {
            None => inner.users.keys().cloned().collect(),
            Some(since) => {
                let mut ids: Vec<String> = inner
                    .changed
                    .iter()
                    .filter(|(_, v)| **v > since)
                    .map(|(id, _)| id.clone())
                    .collect();
                ids.sort();
                ids
            }
        };
        let round = inner.next_round;
        inner.next_round += 1;
        let upto = inner.version;
        inner.rounds.insert(round, Round { ids, upto });
        (round, 0)
    };
    if let Some(failure) = page_failure(&inner, page) {
        return failure;
    }
    let size = inner.delta_page_size;
    let Some(state) = inner.rounds.get(&round) else {
        return expired();
    };
    let value: Vec<Value> = state
        .ids
        .iter()
        .skip(page * size)
        .take(size)
        .map(|id| match inner.users.get(id) {
            Some(user) => user.to_graph_json(true),
            None => json!({ "id": id, "@removed": { "reason": "changed" } }),
        })
        .collect();
    let mut body = json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users",
        "value": value,
    });
    if (page + 1) * size < state.ids.len() {
        body["@odata.nextLink"] = json!(format!(
            "{}/v1.0/users/delta?$skiptoken={round}.{}",
            shared.base,
            page + 1
        ));
    } else {
        body["@odata.deltaLink"] = json!(format!(
            "{}/v1.0/users/delta?$deltatoken={}",
            shared.base, state.upto
        ));
        inner.rounds.remove(&round);
    }
    Json(body).into_response()
}

async fn not_found(State(shared): State<Arc<Shared>>) -> Response {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    graph_error(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        "Resource not found for the segment.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_json_nulls_in_lists_and_omits_in_delta() {
        let mut user = EntraUser::new("u1", "ana@district.example", "Ana", "Ruiz");
        user.employee_id = None;
        let list = user.to_graph_json(false);
        assert_eq!(list["employeeId"], Value::Null);
        assert!(
            list.as_object()
                .is_some_and(|o| o.contains_key("employeeId"))
        );
        let delta = user.to_graph_json(true);
        assert!(
            delta
                .as_object()
                .is_some_and(|o| !o.contains_key("employeeId"))
        );
        assert_eq!(delta["userPrincipalName"], "ana@district.example");
        assert_eq!(delta["accountEnabled"], true);
    }

    #[tokio::test]
    async fn token_errors_use_aad_codes() {
        let standin = EntraStandIn::start(Vec::new()).await.expect("start");
        let client = reqwest::Client::new();
        let ask = |tenant: &str, id: &str, secret: &str| {
            client
                .post(format!("{}/{tenant}/oauth2/v2.0/token", standin.base_url()))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(format!(
                    "client_id={id}&client_secret={secret}&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default&grant_type=client_credentials"
                ))
                .send()
        };
        let codes = [
            (ask("nowhere", CLIENT_ID, CLIENT_SECRET).await, 400, 90002),
            (ask(TENANT, "nobody", CLIENT_SECRET).await, 400, 700016),
            (ask(TENANT, CLIENT_ID, "wrong").await, 401, 7000215),
        ];
        for (answer, status, code) in codes {
            let answer = answer.expect("answer");
            assert_eq!(answer.status().as_u16(), status);
            let body: Value =
                serde_json::from_slice(&answer.bytes().await.expect("body")).expect("json");
            assert_eq!(body["error_codes"][0], code);
        }
        let ok = ask(TENANT_DOMAIN, CLIENT_ID, CLIENT_SECRET)
            .await
            .expect("answer");
        assert_eq!(ok.status().as_u16(), 200);
    }
}
