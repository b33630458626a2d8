//! A simulated help desk that receives SCIM pushes: the `/scim/v2/Users` endpoint of a
//! SCIM 2.0 service provider (RFC 7643/7644), held in memory, for the push tests and
//! `rostersync demo`.
//!
//! It answers as a real help desk does: ListResponse with filters (`userName eq`,
//! `externalId eq`, `emails[type eq "work"].value eq`, …, evaluated by [`scim::Filter`])
//! and `startIndex`/`count` paging; create (201, `id` and `meta` added; 409 `uniqueness`
//! when the `userName` is taken, ignoring case; 400 `invalidValue` without one); replace;
//! PATCH (applied by [`scim::PatchRequest`]); delete; a minimal `ServiceProviderConfig`.
//! Every request needs `Authorization: Bearer {token}`; errors are SCIM error messages.
//!
//! Tests read what it holds and every request it received, and turn on faults while it
//! runs: a 429 storm with `Retry-After`, and a target that starts failing (503) after a
//! number of requests until healed. Faults are checked before authentication, as a
//! gateway in front of the service would; every request is logged, refused ones too.

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jiff::{SignedDuration, Timestamp};
use scim::{Filter, ListResponse, Page, PatchRequest, ScimError, ScimType};
use serde_json::{Map, Value, json};

use crate::serving::Serving;

/// The most resources one list answer holds (`filter.maxResults`).
pub const MAX_RESULTS: usize = 200;
/// The core User schema URN, given to created users that name no schema.
const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const SCIM_CONTENT_TYPE: &str = "application/scim+json";

/// What the server task and the test share.
struct HelpdeskState {
    token: String,
    /// `http://host:port/scim/v2`.
    base_url: String,
    /// The users held, by id (ids sort in creation order).
    users: BTreeMap<String, Value>,
    created: u64,
    version: u64,
    last_modified: Timestamp,
    requests: Vec<(String, String)>,
    throttle: u32,
    retry_after_secs: u64,
    /// `Some(n)`: n more requests are served, then every one answers 503.
    fail_after: Option<u32>,
    /// A fault gate in front of another SCIM server ([`Helpdesk::front`]): every request
    /// that passes the faults goes there (its base URL); the token is that server's to check.
    upstream: Option<(String, reqwest::Client)>,
}

type Shared = Arc<Mutex<HelpdeskState>>;

fn lock(shared: &Shared) -> MutexGuard<'_, HelpdeskState> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A help desk's SCIM endpoint serving in the background; it stops when dropped.
pub struct Helpdesk {
    addr: SocketAddr,
    state: Shared,
    /// Held for its drop, which stops serving.
    _serving: Serving,
}

impl std::fmt::Debug for Helpdesk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Helpdesk")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Helpdesk {
    /// Serves on 127.0.0.1 (any free port) from the current tokio runtime; requests need
    /// `Authorization: Bearer {token}` (a 401 SCIM error otherwise).
    pub async fn start(token: &str) -> io::Result<Helpdesk> {
        Helpdesk::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), token).await
    }

    /// Serves on `addr` from the current tokio runtime (the demo's help desk).
    pub async fn start_on(addr: SocketAddr, token: &str) -> io::Result<Helpdesk> {
        Helpdesk::serve(addr, token, None).await
    }

    /// The same faults (and request log) in front of another SCIM server at `upstream`
    /// (its base URL): every request that passes them is forwarded there as it came, and
    /// answered as that server answers. Tests put a third-party server behind it.
    pub async fn front(upstream: &str) -> io::Result<Helpdesk> {
        let client = reqwest::Client::builder()
            .build()
            .map_err(io::Error::other)?;
        Helpdesk::serve(
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            "",
            Some((upstream.trim_end_matches('/').to_owned(), client)),
        )
        .await
    }

    async fn serve(
        addr: SocketAddr,
        token: &str,
        upstream: Option<(String, reqwest::Client)>,
    ) -> io::Result<Helpdesk> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let proxy = upstream.is_some();
        let state = Arc::new(Mutex::new(HelpdeskState {
            token: token.to_owned(),
            base_url: format!("http://{addr}/scim/v2"),
            users: BTreeMap::new(),
            created: 0,
            version: 0,
            last_modified: Timestamp::UNIX_EPOCH,
            requests: Vec::new(),
            throttle: 0,
            retry_after_secs: 0,
            fail_after: None,
            upstream,
        }));
        let router = if proxy {
            Router::new()
                .fallback(forward)
                .layer(middleware::from_fn_with_state(Arc::clone(&state), gate))
                .with_state(Arc::clone(&state))
        } else {
            Router::new()
                .route("/scim/v2/Users", get(list).post(create))
                .route(
                    "/scim/v2/Users/{id}",
                    get(fetch).put(replace).patch(patch).delete(delete),
                )
                .route(
                    "/scim/v2/ServiceProviderConfig",
                    get(service_provider_config),
                )
                .fallback(unknown)
                .layer(middleware::from_fn_with_state(Arc::clone(&state), gate))
                .with_state(Arc::clone(&state))
        };
        let serving = Serving::start(listener, router, "help desk");
        tracing::info!(url = %format!("http://{addr}/scim/v2"), "help desk listening");
        Ok(Helpdesk {
            addr,
            state,
            _serving: serving,
        })
    }

    /// The SCIM base URL, `http://127.0.0.1:PORT/scim/v2`.
    pub fn url(&self) -> String {
        lock(&self.state).base_url.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every user resource held, sorted by id.
    pub fn users(&self) -> Vec<Value> {
        lock(&self.state).users.values().cloned().collect()
    }

    /// Adds a user the help desk already had (it gets an `id` and `meta`, no uniqueness
    /// check); returns its id.
    pub fn insert(&self, user: Value) -> String {
        let mut state = lock(&self.state);
        let fields = match user {
            Value::Object(fields) => fields,
            _ => Map::new(),
        };
        state.store_new(fields)["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Every request received, in order: method and path with query.
    pub fn requests(&self) -> Vec<(String, String)> {
        lock(&self.state).requests.clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.state).requests.clear();
    }

    /// Answers the next `n` requests with 429 and `Retry-After: {retry_after_secs}`.
    pub fn throttle(&self, n: u32, retry_after_secs: u64) {
        let mut state = lock(&self.state);
        state.throttle = n;
        state.retry_after_secs = retry_after_secs;
    }

    /// Serves `n` more requests (throttled ones do not count), then answers every one
    /// with 503 (no `Retry-After`) until [`Helpdesk::heal`].
    pub fn fail_after(&self, n: u32) {
        lock(&self.state).fail_after = Some(n);
    }

    /// Ends [`Helpdesk::fail_after`] (and a throttle still running).
    pub fn heal(&self) {
        let mut state = lock(&self.state);
        state.fail_after = None;
        state.throttle = 0;
    }

    /// Stops serving: the listener closes, open connections close once their request
    /// is answered, and the server task ends.
    pub fn stop(self) {
        drop(self);
    }
}

impl HelpdeskState {
    /// A `lastModified` later than every one given before (the clock, or 1 ms past).
    fn tick(&mut self) -> Timestamp {
        let now = Timestamp::now();
        self.last_modified = if now > self.last_modified {
            now
        } else {
            self.last_modified
                .checked_add(SignedDuration::from_millis(1))
                .unwrap_or(now)
        };
        self.last_modified
    }

    /// Sets `id` and a fresh `meta` (`created` kept when given, else now).
    fn stamp(&mut self, id: &str, fields: &mut Map<String, Value>, created: Option<Value>) {
        let now = Value::from(self.tick().to_string());
        self.version += 1;
        fields
            .retain(|key, _| !key.eq_ignore_ascii_case("id") && !key.eq_ignore_ascii_case("meta"));
        fields.insert("id".into(), id.into());
        fields.insert(
            "meta".into(),
            json!({
                "resourceType": "User",
                "created": created.unwrap_or_else(|| now.clone()),
                "lastModified": now,
                "version": format!("W/\"{}\"", self.version),
                "location": format!("{}/Users/{id}", self.base_url),
            }),
        );
    }

    /// Stores a new user under a new id; returns the stored resource.
    fn store_new(&mut self, mut fields: Map<String, Value>) -> Value {
        self.created += 1;
        let id = format!("00000000-0000-4000-8000-{:012x}", self.created);
        if !fields.keys().any(|k| k.eq_ignore_ascii_case("schemas")) {
            fields.insert("schemas".into(), json!([USER_SCHEMA]));
        }
        self.stamp(&id, &mut fields, None);
        let user = Value::Object(fields);
        self.users.insert(id, user.clone());
        user
    }

    /// Stores `fields` as the new state of user `id`, keeping its `id` and `created`.
    fn store_over(&mut self, id: &str, mut fields: Map<String, Value>) -> Value {
        let created = self
            .users
            .get(id)
            .and_then(|u| u.get("meta"))
            .and_then(|m| m.get("created"))
            .cloned();
        self.stamp(id, &mut fields, created);
        let user = Value::Object(fields);
        self.users.insert(id.to_owned(), user.clone());
        user
    }

    fn get(&self, id: &str) -> Result<&Value, ScimError> {
        self.users
            .get(id)
            .ok_or_else(|| ScimError::not_found(format!("Resource {id} not found")))
    }

    /// Checks that `user` has a `userName` no other user (but `except`) has, ignoring case.
    fn check_user_name(
        &self,
        user: &Map<String, Value>,
        except: Option<&str>,
    ) -> Result<(), ScimError> {
        let Some(name) = user_name(user).filter(|n| !n.trim().is_empty()) else {
            return Err(ScimError::bad_request(
                ScimType::InvalidValue,
                "Attribute 'userName' is required",
            ));
        };
        let name = name.to_lowercase();
        let taken = self.users.iter().any(|(id, other)| {
            Some(id.as_str()) != except
                && other
                    .as_object()
                    .and_then(user_name)
                    .is_some_and(|n| n.to_lowercase() == name)
        });
        if taken {
            return Err(ScimError::uniqueness(format!(
                "userName {name} is already in use"
            )));
        }
        Ok(())
    }
}

/// The `userName` member, its name in any case.
fn user_name(user: &Map<String, Value>) -> Option<&str> {
    user.iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("userName"))
        .and_then(|(_, value)| value.as_str())
}

/// Reads a request body that must be a JSON object.
fn object(body: &[u8]) -> Result<Map<String, Value>, ScimError> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(ScimError::bad_request(
            ScimType::InvalidSyntax,
            "The request body must be a JSON object",
        )),
        Err(error) => Err(ScimError::bad_request(
            ScimType::InvalidSyntax,
            format!("The request body is not JSON: {error}"),
        )),
    }
}

fn scim_json(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, SCIM_CONTENT_TYPE)],
        body.to_string(),
    )
        .into_response()
}

fn error_response(error: &ScimError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    scim_json(status, &error.to_json())
}

fn respond(result: Result<(StatusCode, Value), ScimError>) -> Response {
    match result {
        Ok((status, body)) => scim_json(status, &body),
        Err(error) => error_response(&error),
    }
}

/// Logs every request, then answers faults (429, 503) and missing credentials (401).
async fn gate(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let target = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_owned(),
        |pq| pq.as_str().to_owned(),
    );
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    {
        let mut state = lock(&shared);
        state.requests.push((method, target));
        if state.throttle > 0 {
            state.throttle -= 1;
            let error = ScimError::new(429, None, "Too many requests");
            let mut answer = error_response(&error);
            answer
                .headers_mut()
                .insert(header::RETRY_AFTER, state.retry_after_secs.into());
            return answer;
        }
        match state.fail_after {
            Some(0) => {
                let error = ScimError::new(503, None, "Service unavailable");
                return error_response(&error);
            }
            Some(n) => state.fail_after = Some(n - 1),
            None => {}
        }
        if state.upstream.is_none() && bearer.as_deref() != Some(state.token.as_str()) {
            let error = ScimError::new(
                401,
                None,
                "Authorization failure: a valid bearer token is required",
            );
            let mut answer = error_response(&error);
            answer.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"scim\""),
            );
            return answer;
        }
    }
    next.run(request).await
}

/// In front of another server: the request, as it came, sent on under `/scim/v2`'s
/// place in the upstream's base URL; its answer returned (a 502 when it cannot be reached).
async fn forward(State(shared): State<Shared>, request: Request) -> Response {
    let Some((base, client)) = lock(&shared).upstream.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("", |pq| pq.as_str());
    let url = format!("{base}{}", path.strip_prefix("/scim/v2").unwrap_or(path));
    let Ok(body) = axum::body::to_bytes(body, 16 << 20).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let mut sent = client.request(parts.method, url).body(body);
    for name in [header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT] {
        if let Some(v) = parts.headers.get(&name) {
            sent = sent.header(name, v);
        }
    }
    match sent.send().await {
        Ok(answer) => {
            let status = answer.status();
            let kind = answer.headers().get(header::CONTENT_TYPE).cloned();
            let body = answer.bytes().await.unwrap_or_default();
            let mut response = (status, body).into_response();
            if let Some(kind) = kind {
                response.headers_mut().insert(header::CONTENT_TYPE, kind);
            }
            response
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

/// `GET /Users`: a ListResponse, filtered and paged.
async fn list(
    State(shared): State<Shared>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let answer = || -> Result<(StatusCode, Value), ScimError> {
        let filter = param("filter").map(Filter::parse).transpose()?;
        let page = Page::parse(param("startIndex"), param("count"), MAX_RESULTS)?;
        let state = lock(&shared);
        let matching: Vec<Value> = state
            .users
            .values()
            .filter(|u| filter.as_ref().is_none_or(|f| f.matches(u)))
            .cloned()
            .collect();
        let list = ListResponse::new(matching.len(), &page, page.slice(&matching).to_vec());
        Ok((StatusCode::OK, list.to_json()))
    };
    respond(answer())
}

/// `GET /Users/{id}`.
async fn fetch(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    let state = lock(&shared);
    respond(state.get(&id).map(|user| (StatusCode::OK, user.clone())))
}

/// `POST /Users`: 201 with the stored resource and its `Location`.
async fn create(State(shared): State<Shared>, body: Bytes) -> Response {
    let mut state = lock(&shared);
    let created = object(&body).and_then(|fields| {
        state.check_user_name(&fields, None)?;
        Ok(state.store_new(fields))
    });
    match created {
        Ok(user) => {
            let location = user["meta"]["location"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let mut answer = scim_json(StatusCode::CREATED, &user);
            if let Ok(value) = header::HeaderValue::from_str(&location) {
                answer.headers_mut().insert(header::LOCATION, value);
            }
            answer
        }
        Err(error) => error_response(&error),
    }
}

/// `PUT /Users/{id}`: replaces the resource (its `id` and `created` kept).
async fn replace(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> Response {
    let mut state = lock(&shared);
    let replaced = state
        .get(&id)
        .and_then(|_| object(&body))
        .and_then(|fields| {
            state.check_user_name(&fields, Some(&id))?;
            Ok((StatusCode::OK, state.store_over(&id, fields)))
        });
    respond(replaced)
}

/// `PATCH /Users/{id}`: applies a PatchOp request; 200 with the resource.
async fn patch(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> Response {
    let mut state = lock(&shared);
    let patched = state.get(&id).cloned().and_then(|mut user| {
        let request = PatchRequest::from_json(&Value::Object(object(&body)?))?;
        // A help desk keeps the displayName clients write (rostersync's own `/scim/v2`
        // makes it from the name and refuses it).
        request.apply_with(&mut user, scim::Derived::Writable)?;
        let Value::Object(fields) = user else {
            return Err(ScimError::new(
                500,
                None,
                "The stored user is not an object",
            ));
        };
        state.check_user_name(&fields, Some(&id))?;
        Ok((StatusCode::OK, state.store_over(&id, fields)))
    });
    respond(patched)
}

/// `DELETE /Users/{id}`: 204.
async fn delete(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    match lock(&shared).users.remove(&id) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => error_response(&ScimError::not_found(format!("Resource {id} not found"))),
    }
}

/// `GET /ServiceProviderConfig`: PATCH and filters supported, nothing else.
async fn service_provider_config(State(shared): State<Shared>) -> Response {
    let base_url = lock(&shared).base_url.clone();
    let body = scim::discovery::service_provider_config_for(&base_url, MAX_RESULTS, false);
    scim_json(StatusCode::OK, &body)
}

/// Any other path: a 404 SCIM error.
async fn unknown() -> Response {
    error_response(&ScimError::not_found("No such endpoint"))
}
