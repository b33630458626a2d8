//! `/scim/v2`: SCIM 2.0 (RFC 7643/7644) for identity providers pushing accounts in —
//! Microsoft Entra ID, Okta, JumpCloud, OneLogin.
//!
//! Each connection is a source of `kind = "scim"`; its bearer token (scope `scim`, named
//! after the source) opens this and nothing else, and nothing else's token opens this.
//! The resources are the directory's accounts (`id` is the account id; `externalId` the
//! connection's key of its link to the account): an IdP that looks a user up before it
//! creates one finds the account the SIS made. Every write is one run of the connection
//! through [`engine::scim_write`] — correlation, field rules with provenance, review
//! cases, history, undo. `DELETE` deactivates by the connection's `deactivate` rule and
//! hides the account from the connection (a later `GET` answers 404); nothing is removed.
//! Groups are not served. The protocol (filters, PATCH, JSON shapes, errors) is the
//! `scim` crate's.
//!
//! A connection is answered with its own view of the users it wrote: for an account
//! linked to it, the resource it last wrote (kept per connection and identity in the
//! store's `scim_resources`, after its PATCHes), with the account's `id` and `meta`;
//! an account it never wrote is answered from the account's fields. The account itself
//! follows the field rules, so what a SIS owns stays the SIS's while the provider reads
//! back what it wrote (and does not re-send it every cycle). Filters and `attributes`
//! apply to the resource as answered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use engine::{EngineError, ScimChange};
use rostersync_core::accounts::Identity;
use rostersync_core::directory::{AccountId, display_name};
use rostersync_core::settings::SourceKind;
use scim::{
    Email, EnterpriseUser, Filter, ListResponse, Meta, Name, Page, Projection, ScimError, ScimType,
    User,
};
use serde_json::Value;
use store::{RunStatus, Store, TokenScope, UserQuery, UserRecord};

use crate::Shared;
use crate::auth::{random_secret, sha256_hex};

/// Where the endpoint is mounted.
pub const BASE: &str = "/scim/v2";
/// The largest page `GET /Users` answers.
pub const MAX_RESULTS: usize = 200;
/// The media type of every answer.
const MEDIA: &str = "application/scim+json";
/// The prefix of the link keys the endpoint makes for a POST without `externalId` (never
/// shown as an `externalId`).
const MADE_HERE: &str = "rostersync-";

/// The connection a request's token belongs to.
#[derive(Debug, Clone)]
struct Connection(String);

/// The endpoint's routes, behind the connection-token check.
pub fn routes(state: Shared) -> Router<Shared> {
    Router::new()
        .route(
            "/scim/v2/ServiceProviderConfig",
            get(service_provider_config),
        )
        .route("/scim/v2/ResourceTypes", get(resource_types))
        .route("/scim/v2/ResourceTypes/{id}", get(resource_type))
        .route("/scim/v2/Schemas", get(schemas))
        .route("/scim/v2/Schemas/{id}", get(schema))
        .route("/scim/v2/Users", get(list_users).post(create_user))
        .route("/scim/v2/Users/.search", post(search_users))
        .route("/scim/v2/.search", post(search_users))
        .route(
            "/scim/v2/Users/{id}",
            get(get_user)
                .put(replace_user)
                .patch(patch_user)
                .delete(delete_user),
        )
        .route("/scim/v2/{*rest}", any(not_found))
        .route_layer(middleware::from_fn_with_state(state, require_connection))
}

/// A SCIM answer: the JSON body with the SCIM media type.
fn answer(status: StatusCode, body: Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA));
    response
}

fn error(e: ScimError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = answer(status, e.to_json());
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"rostersync SCIM\""),
        );
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    }
    response
}

fn internal(detail: impl Into<String>) -> ScimError {
    ScimError::new(500, None, detail)
}

fn from_store(e: store::StoreError) -> ScimError {
    tracing::error!(error = %e, "SCIM: the store failed");
    internal("the directory's database failed; try again later")
}

/// Runs store work off the async runtime, SCIM errors out.
async fn blocking<T, F>(state: &Shared, f: F) -> Result<T, ScimError>
where
    T: Send + 'static,
    F: FnOnce(&Store) -> Result<T, ScimError> + Send + 'static,
{
    crate::off_runtime(state, f, internal).await
}

/// Lets through requests carrying a live token of scope `scim` whose name is a
/// configured SCIM connection; answers 401 in SCIM's shape otherwise.
async fn require_connection(
    State(state): State<Shared>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned());
    let refused = || {
        error(ScimError::new(
            401,
            None,
            "a SCIM connection's bearer token is needed (rostersync token create --scope scim --name CONNECTION)",
        ))
    };
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return refused();
    };
    let now = state.now();
    let hash = sha256_hex(&token);
    let found = blocking(&state, move |store| {
        let Some(t) = store.api_token(&hash).map_err(from_store)? else {
            return Ok(None);
        };
        if t.scope != TokenScope::Scim || t.revoked_at.is_some() || t.expired(now) {
            return Ok(None);
        }
        let config = store.load_config().map_err(from_store)?;
        if !config
            .source(&t.name)
            .is_some_and(|s| s.kind == SourceKind::Scim)
        {
            return Ok(None);
        }
        if t.last_used
            .is_none_or(|u| now - u > crate::auth::TOUCH_EVERY)
        {
            store.touch_api_token(t.id, now).map_err(from_store)?;
        }
        Ok(Some(Connection(t.name)))
    })
    .await;
    match found {
        Ok(Some(connection)) => {
            request.extensions_mut().insert(connection);
            next.run(request).await
        }
        Ok(None) => refused(),
        Err(e) => error(e),
    }
}

async fn not_found() -> Response {
    error(ScimError::not_found(
        "no such SCIM endpoint: this server serves /Users, /Schemas, /ResourceTypes and /ServiceProviderConfig",
    ))
}

async fn service_provider_config() -> Response {
    answer(
        StatusCode::OK,
        scim::discovery::service_provider_config(BASE, MAX_RESULTS),
    )
}

async fn resource_types() -> Response {
    answer(StatusCode::OK, scim::discovery::resource_types(BASE))
}

async fn resource_type(Path(id): Path<String>) -> Response {
    if id == "User" {
        answer(StatusCode::OK, scim::discovery::user_resource_type(BASE))
    } else {
        error(ScimError::not_found(format!(
            "no resource type {id}: only User is served"
        )))
    }
}

async fn schemas() -> Response {
    answer(StatusCode::OK, scim::discovery::schemas(BASE))
}

async fn schema(Path(id): Path<String>) -> Response {
    match scim::discovery::schema(BASE, &id) {
        Some(s) => answer(StatusCode::OK, s),
        None => error(ScimError::not_found(format!("no schema {id}"))),
    }
}

/// The connection's link to an account: its key (the `externalId`, or one made here) and
/// its misses (one after a `DELETE`).
type LinkKey = (String, u32);

/// An account as a connection sees it: the account, the connection's link to it, and
/// what the connection last wrote for that link (`None`: it never wrote it, or wrote it
/// before schema v9 kept what it wrote).
struct Seen {
    record: UserRecord,
    link: Option<LinkKey>,
    said: Option<Value>,
}

impl Seen {
    /// The account with the connection's link and what it last wrote for it.
    fn of(store: &Store, connection: &str, record: UserRecord) -> Result<Seen, ScimError> {
        let link = store
            .links_of(connection, &[record.user.id])
            .map_err(from_store)?
            .remove(&record.user.id);
        let said = match &link {
            Some((key, _)) => store
                .scim_resources(connection, Some(std::slice::from_ref(key)))
                .map_err(from_store)?
                .remove(key),
            None => None,
        };
        Ok(Seen { record, link, said })
    }

    /// The User resource the connection is answered with: what it last wrote, with the
    /// account's `id` and `meta`; the account's own fields when it wrote nothing.
    fn resource(&self) -> Value {
        let Some(said) = &self.said else {
            return from_account(&self.record, self.link.as_ref());
        };
        match User::from_json(said) {
            Ok(user) => as_said(&self.record, user),
            Err(e) => {
                tracing::error!(
                    account = %self.record.user.id,
                    error = %e.detail,
                    "SCIM: a kept resource does not read; answering from the account"
                );
                from_account(&self.record, self.link.as_ref())
            }
        }
    }
}

/// The account `id` names, as the connection may see it: `None` for no account, a
/// merged one, or one whose identity the connection deleted.
fn visible(store: &Store, connection: &str, id: &str) -> Result<Option<Seen>, ScimError> {
    let Ok(n) = id.parse::<i64>() else {
        return Ok(None);
    };
    let Some(record) = store.get_user(AccountId(n)).map_err(from_store)? else {
        return Ok(None);
    };
    if record.user.merged_into.is_some() {
        return Ok(None);
    }
    let seen = Seen::of(store, connection, record)?;
    if seen.link.as_ref().is_some_and(|(_, misses)| *misses > 0) {
        return Ok(None);
    }
    Ok(Some(seen))
}

/// The account's `meta`: its creation, last change, location and version.
fn meta(record: &UserRecord) -> Meta {
    Meta {
        resource_type: "User".to_owned(),
        created: Some(record.created_at),
        last_modified: Some(record.updated_at),
        location: Some(format!("{BASE}/Users/{}", record.user.id)),
        version: Some(version(record.user.revision)),
    }
}

/// The account as a SCIM User resource, from its own fields (an account the connection
/// never wrote).
fn from_account(record: &UserRecord, link: Option<&LinkKey>) -> Value {
    let u = &record.user;
    let name = Name {
        given_name: u.first_name.clone(),
        family_name: u.last_name.clone(),
        middle_name: u.middle_name.clone(),
        // Made from the parts, not kept: not shown (displayName says it).
        formatted: None,
    };
    User {
        id: Some(u.id.to_string()),
        external_id: link
            .map(|(key, _)| key.clone())
            .filter(|k| !k.starts_with(MADE_HERE)),
        user_name: u
            .username
            .clone()
            .or_else(|| u.email.clone())
            .unwrap_or_else(|| u.id.to_string()),
        name: Some(name),
        display_name: Some(u.display_name()),
        emails: u
            .email
            .iter()
            .map(|e| Email {
                value: e.clone(),
                kind: Some("work".to_owned()),
                primary: true,
            })
            .collect(),
        active: Some(u.active),
        meta: Some(meta(record)),
        enterprise: u.identifier.as_ref().map(|id| EnterpriseUser {
            employee_number: Some(id.clone()),
            department: None,
            organization: None,
        }),
    }
    .to_json()
}

/// What the connection wrote, answered: its attributes as it wrote them, `displayName`
/// made from its name, `id` and `meta` the account's.
fn as_said(record: &UserRecord, mut user: User) -> Value {
    let name = user.name.clone().unwrap_or_default();
    let email = user
        .emails
        .iter()
        .find(|e| e.primary)
        .or_else(|| user.emails.first())
        .map(|e| e.value.clone());
    user.display_name = Some(display_name(
        record.user.id,
        name.given_name.as_deref(),
        name.family_name.as_deref(),
        Some(&user.user_name),
        email.as_deref(),
    ));
    user.id = Some(record.user.id.to_string());
    user.meta = Some(meta(record));
    user.to_json()
}

/// What a connection wrote, as kept: the User without what the server sets (`id`,
/// `meta`) or makes itself (the derived attributes).
fn as_written(user: &User) -> Value {
    let mut json = User {
        id: None,
        meta: None,
        ..user.clone()
    }
    .to_json();
    if let Value::Object(members) = &mut json {
        scim::schema::drop_derived(members);
    }
    json
}

/// The weak ETag of an account's revision.
fn version(revision: i64) -> String {
    format!("W/\"{revision}\"")
}

/// A SCIM User as the identity the account planner takes. `key` is the connection's key
/// for it: the `externalId` when given, else `fallback`.
fn identity(user: &User, fallback: &str) -> Identity {
    let primary = user
        .emails
        .iter()
        .find(|e| e.primary)
        .or_else(|| {
            user.emails
                .iter()
                .find(|e| e.kind.as_deref() == Some("work"))
        })
        .or_else(|| user.emails.first())
        .map(|e| e.value.trim().to_owned())
        .filter(|e| !e.is_empty())
        .or_else(|| user.user_name.contains('@').then(|| user.user_name.clone()));
    let primary_key = primary.as_deref().map(str::to_lowercase);
    let aliases = user
        .emails
        .iter()
        .map(|e| e.value.trim().to_lowercase())
        .filter(|e| e.contains('@') && Some(e) != primary_key.as_ref())
        .collect();
    let name = user.name.clone().unwrap_or_default();
    Identity {
        id: user
            .external_id
            .clone()
            .filter(|e| !e.trim().is_empty())
            .unwrap_or_else(|| fallback.to_owned()),
        login: user.user_name.trim().to_owned(),
        email: primary,
        aliases,
        given_name: name.given_name,
        middle_name: name.middle_name,
        family_name: name.family_name,
        suspended: user.active == Some(false),
        guest: false,
        org_unit: None,
        school_id: user
            .enterprise
            .as_ref()
            .and_then(|e| e.employee_number.clone()),
        last_sign_in: None,
    }
}

/// One lock per connection: its writes run one at a time in this server (the engine's
/// source lock keeps other processes out).
fn connection_lock(name: &str) -> Arc<Mutex<()>> {
    static LOCKS: std::sync::OnceLock<Mutex<HashMap<String, Arc<Mutex<()>>>>> =
        std::sync::OnceLock::new();
    let locks = LOCKS.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = locks.lock().unwrap_or_else(|p| p.into_inner());
    Arc::clone(map.entry(name.to_owned()).or_default())
}

/// Applies one write and answers with the account as the connection now sees it, or the
/// SCIM error that fits. `said` (the resource the connection wrote, as kept) is kept for
/// the connection's link once the run applied: right after it, holding the connection's
/// lock (not in the run's transaction); a write held for approval keeps nothing.
fn write(
    state: &crate::AppState,
    connection: &str,
    change: ScimChange,
    created: bool,
    said: &Value,
) -> Result<Response, ScimError> {
    let lock = connection_lock(connection);
    let _one = lock.lock().unwrap_or_else(|p| p.into_inner());
    let quiet = |_| {};
    let ctx = state.context(&quiet);
    let done = engine::scim_write(&ctx, connection, change, None).map_err(engine_error)?;
    if let Some(message) = &done.outcome.error {
        return Err(internal(format!(
            "the write failed and changed nothing: {message}"
        )));
    }
    if let Some(item) = &done.item
        && item.reason.needs_review()
    {
        return Err(ScimError::uniqueness(format!(
            "{}: a review case is open in rostersync's console",
            item.reason
        )));
    }
    let Some(account) = done.account else {
        let why = done
            .item
            .map(|i| i.reason.to_string())
            .unwrap_or_else(|| "nothing was planned".to_owned());
        return Err(ScimError::bad_request(
            ScimType::InvalidValue,
            format!("no account: {why}"),
        ));
    };
    if done.outcome.status == RunStatus::Succeeded
        && let Some(key) = state
            .store
            .linked_person(connection, account)
            .map_err(from_store)?
    {
        state
            .store
            .put_scim_resource(connection, &key, said, state.now())
            .map_err(from_store)?;
    }
    let record = state
        .store
        .get_user(account)
        .map_err(from_store)?
        .ok_or_else(|| internal(format!("account #{account} vanished")))?;
    let seen = Seen::of(&state.store, connection, record)?;
    let mut response = answer(
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        seen.resource(),
    );
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&version(seen.record.user.revision)) {
        headers.insert(header::ETAG, v);
    }
    if created && let Ok(v) = HeaderValue::from_str(&format!("{BASE}/Users/{account}")) {
        headers.insert(header::LOCATION, v);
    }
    Ok(response)
}

/// The SCIM error for an engine's refusal.
fn engine_error(e: EngineError) -> ScimError {
    match e {
        EngineError::Busy(_) => ScimError::new(
            503,
            None,
            "another process is writing to this connection: try again in a moment",
        ),
        EngineError::Store(e) => from_store(e),
        e => ScimError::bad_request(ScimType::InvalidValue, e.to_string()),
    }
}

/// Reads a request body as a JSON object.
fn body_json(body: &Bytes) -> Result<Value, ScimError> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| {
            ScimError::bad_request(ScimType::InvalidSyntax, "the body must be a JSON object")
        })
}

/// The resource a `PUT`, `PATCH` or `DELETE` changes: visible to the connection (404
/// otherwise) and at the version `If-Match` names, if it names one (412 otherwise).
fn to_change(
    store: &Store,
    connection: &str,
    id: &str,
    headers: &HeaderMap,
) -> Result<Seen, ScimError> {
    let seen =
        visible(store, connection, id)?.ok_or_else(|| ScimError::not_found("no such user"))?;
    check_if_match(headers, &seen.record)?;
    Ok(seen)
}

/// Refuses a write whose `If-Match` names another version than the account's.
fn check_if_match(headers: &HeaderMap, record: &UserRecord) -> Result<(), ScimError> {
    let Some(want) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let have = version(record.user.revision);
    let matches = want.split(',').map(str::trim).any(|w| {
        w == "*" || w == have || w.trim_start_matches("W/") == have.trim_start_matches("W/")
    });
    if matches {
        Ok(())
    } else {
        Err(ScimError::precondition_failed(format!(
            "the account changed: its version is {have}, not {want}"
        )))
    }
}

/// A `POST /Users/.search` body (RFC 7644 §3.4.3): the query's parameters as JSON.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchRequest {
    filter: Option<String>,
    start_index: Option<Value>,
    count: Option<Value>,
    attributes: Option<Vec<String>>,
    excluded_attributes: Option<Vec<String>>,
}

/// `POST /Users/.search` (and `/.search`: Users are the only resources): the same answer
/// as `GET /Users` with these parameters.
async fn search_users(
    state: State<Shared>,
    connection: axum::Extension<Connection>,
    body: Bytes,
) -> Response {
    let request: SearchRequest = match body_json(&body).and_then(|v| {
        serde_json::from_value(v).map_err(|e| {
            ScimError::bad_request(ScimType::InvalidSyntax, format!("not a SearchRequest: {e}"))
        })
    }) {
        Ok(r) => r,
        Err(e) => return error(e),
    };
    let text = |v: Option<Value>| {
        v.map(|v| match v {
            Value::String(s) => s,
            other => other.to_string(),
        })
    };
    let params = ListParams {
        filter: request.filter,
        start_index: text(request.start_index),
        count: text(request.count),
        attributes: request.attributes.map(|a| a.join(",")),
        excluded_attributes: request.excluded_attributes.map(|a| a.join(",")),
    };
    list_users(state, connection, Query(params)).await
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListParams {
    filter: Option<String>,
    start_index: Option<String>,
    count: Option<String>,
    attributes: Option<String>,
    excluded_attributes: Option<String>,
}

async fn list_users(
    State(state): State<Shared>,
    axum::Extension(Connection(connection)): axum::Extension<Connection>,
    Query(q): Query<ListParams>,
) -> Response {
    let result = (|| {
        let page = Page::parse(q.start_index.as_deref(), q.count.as_deref(), MAX_RESULTS)?;
        let projection =
            Projection::parse(q.attributes.as_deref(), q.excluded_attributes.as_deref())?;
        let filter = q
            .filter
            .as_deref()
            .filter(|f| !f.trim().is_empty())
            .map(Filter::parse)
            .transpose()?;
        Ok::<_, ScimError>((page, projection, filter))
    })();
    let (page, projection, filter) = match result {
        Ok(v) => v,
        Err(e) => return error(e),
    };
    let found = blocking(&state, move |store| {
        let candidates = candidates(store, &connection, filter.as_ref())?;
        let ids: Vec<AccountId> = candidates.iter().map(|r| r.user.id).collect();
        let links = store.links_of(&connection, &ids).map_err(from_store)?;
        let keys: Vec<String> = links
            .values()
            .filter(|(_, misses)| *misses == 0)
            .map(|(key, _)| key.clone())
            .collect();
        let mut said = store
            .scim_resources(&connection, Some(&keys))
            .map_err(from_store)?;
        let mut matching = Vec::new();
        for record in candidates {
            let link = links.get(&record.user.id).cloned();
            if record.user.merged_into.is_some() || link.as_ref().is_some_and(|(_, m)| *m > 0) {
                continue;
            }
            let seen = Seen {
                said: link.as_ref().and_then(|(key, _)| said.remove(key)),
                record,
                link,
            };
            let json = seen.resource();
            if filter.as_ref().is_none_or(|f| f.matches(&json)) {
                matching.push(json);
            }
        }
        let total = matching.len();
        let shown: Vec<Value> = page
            .slice(&matching)
            .iter()
            .map(|r| projection.apply(r))
            .collect();
        Ok(ListResponse::new(total, &page, shown).to_json())
    })
    .await;
    match found {
        Ok(body) => answer(StatusCode::OK, body),
        Err(e) => error(e),
    }
}

/// The accounts a filter can match: found through an index for `userName`, `emails`,
/// `externalId` and `id` equality, else every account, by id. `userName` and `emails`
/// also find the accounts whose connection's resource has the value (what the connection
/// wrote may not be the account's).
fn candidates(
    store: &Store,
    connection: &str,
    filter: Option<&Filter>,
) -> Result<Vec<UserRecord>, ScimError> {
    if let Some(filter) = filter
        && let Some((path, value)) = filter.as_equality()
    {
        let one = |id: Option<AccountId>| -> Result<Vec<UserRecord>, ScimError> {
            Ok(match id {
                Some(id) => store
                    .get_user(id)
                    .map_err(from_store)?
                    .into_iter()
                    .collect(),
                None => Vec::new(),
            })
        };
        if path.is("userName") || path.is("emails") || path.canonical() == "emails.value" {
            let mut found: Vec<UserRecord> = store
                .find_user(value)
                .map_err(from_store)?
                .into_iter()
                .collect();
            let said = store
                .scim_resources_mentioning(connection, value)
                .map_err(from_store)?;
            for (key, resource) in said {
                if !filter.matches(&resource) {
                    continue;
                }
                if let Some(id) = store.linked_account(connection, &key).map_err(from_store)?
                    && !found.iter().any(|r| r.user.id == id)
                {
                    found.extend(one(Some(id))?);
                }
            }
            return Ok(found);
        }
        if path.is("externalId") {
            return one(store
                .linked_account(connection, value)
                .map_err(from_store)?);
        }
        if path.is("id") {
            return one(value.parse::<i64>().ok().map(AccountId));
        }
    }
    store.list_users(&UserQuery::default()).map_err(from_store)
}

async fn get_user(
    State(state): State<Shared>,
    axum::Extension(Connection(connection)): axum::Extension<Connection>,
    Path(id): Path<String>,
    Query(q): Query<ListParams>,
) -> Response {
    let projection =
        match Projection::parse(q.attributes.as_deref(), q.excluded_attributes.as_deref()) {
            Ok(p) => p,
            Err(e) => return error(e),
        };
    let found = blocking(&state, move |store| visible(store, &connection, &id)).await;
    match found {
        Ok(Some(seen)) => {
            let mut response = answer(StatusCode::OK, projection.apply(&seen.resource()));
            if let Ok(v) = HeaderValue::from_str(&version(seen.record.user.revision)) {
                response.headers_mut().insert(header::ETAG, v);
            }
            response
        }
        Ok(None) => error(ScimError::not_found("no such user")),
        Err(e) => error(e),
    }
}

async fn create_user(
    State(state): State<Shared>,
    axum::Extension(Connection(connection)): axum::Extension<Connection>,
    body: Bytes,
) -> Response {
    let user = match body_json(&body).and_then(|v| User::from_json(&v)) {
        Ok(u) => u,
        Err(e) => return error(e),
    };
    let key = match random_secret() {
        Ok(s) => format!("{MADE_HERE}{}", &s[..16.min(s.len())]),
        Err(e) => return error(internal(e.message)),
    };
    let state2 = Arc::clone(&state);
    let done = blocking(&state, move |_| {
        write(
            &state2,
            &connection,
            ScimChange::Create(identity(&user, &key)),
            true,
            &as_written(&user),
        )
    })
    .await;
    done.unwrap_or_else(error)
}

async fn replace_user(
    State(state): State<Shared>,
    axum::Extension(Connection(connection)): axum::Extension<Connection>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let user = match body_json(&body).and_then(|v| User::from_json(&v)) {
        Ok(u) => u,
        Err(e) => return error(e),
    };
    let state2 = Arc::clone(&state);
    let done = blocking(&state, move |store| {
        let seen = to_change(store, &connection, &id, &headers)?;
        update(&state2, &connection, &seen, &user)
    })
    .await;
    done.unwrap_or_else(error)
}

/// A `PUT` or `PATCH`: the connection's resource becomes `user` (what the provider has
/// now), and the account follows it under the field rules. A `user` without `active`
/// leaves the account active or not as it is.
fn update(
    state: &crate::AppState,
    connection: &str,
    seen: &Seen,
    user: &User,
) -> Result<Response, ScimError> {
    let record = &seen.record;
    let key = seen.link.as_ref().map_or_else(
        || format!("{MADE_HERE}{}", record.user.id),
        |(k, _)| k.clone(),
    );
    let mut identity = identity(user, &key);
    if user.active.is_none() {
        identity.suspended = !record.user.active;
    }
    write(
        state,
        connection,
        ScimChange::Update {
            account: record.user.id,
            external_id: user.external_id.clone(),
            identity,
        },
        false,
        &as_written(user),
    )
}

async fn patch_user(
    State(state): State<Shared>,
    axum::Extension(Connection(connection)): axum::Extension<Connection>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut request = match body_json(&body).and_then(|v| scim::PatchRequest::from_json(&v)) {
        Ok(r) => r,
        Err(e) => return error(e),
    };
    request.drop_derived();
    let state2 = Arc::clone(&state);
    let done = blocking(&state, move |store| {
        let seen = to_change(store, &connection, &id, &headers)?;
        let mut json = seen.resource();
        request.apply(&mut json)?;
        update(&state2, &connection, &seen, &User::from_json(&json)?)
    })
    .await;
    done.unwrap_or_else(error)
}

async fn delete_user(
    State(state): State<Shared>,
    axum::Extension(Connection(connection)): axum::Extension<Connection>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let state2 = Arc::clone(&state);
    let done = blocking(&state, move |store| {
        let seen = to_change(store, &connection, &id, &headers)?;
        let account = seen.record.user.id;
        if seen.link.is_none() {
            // An account the IdP found but never wrote: linked first (as it is), then
            // removed.
            let user = User::from_json(&seen.resource())?;
            update(&state2, &connection, &seen, &user)?;
        }
        let lock = connection_lock(&connection);
        let _one = lock.lock().unwrap_or_else(|p| p.into_inner());
        let key = store
            .linked_person(&connection, account)
            .map_err(from_store)?;
        let quiet = |_| {};
        let ctx = state2.context(&quiet);
        let done = engine::scim_write(&ctx, &connection, ScimChange::Remove { account }, None)
            .map_err(engine_error)?;
        if let Some(message) = done.outcome.error {
            return Err(internal(format!(
                "the delete failed and changed nothing: {message}"
            )));
        }
        // The identity is gone for the connection: what it wrote goes with it (a held
        // delete keeps it until it applies; a later POST writes it anew).
        if done.outcome.status == RunStatus::Succeeded
            && let Some(key) = key
        {
            store
                .remove_scim_resource(&connection, &key)
                .map_err(from_store)?;
        }
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await;
    done.unwrap_or_else(error)
}
