//! The JSON API under `/api/v1` (documented in `docs/openapi.json`), plus the health,
//! readiness and metrics endpoints. Shapes follow the CLI's `--json` output where the
//! CLI has one (users, runs, sync outcomes), so scripts can move between the two.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use rostersync_core::directory::AccountId;
use rostersync_core::plan::{Outcome, SyncKind};
use rostersync_core::settings::{Config, NoSource, SourceConfig};
use serde::Deserialize;
use serde_json::{Value, json};
use store::{ReviewCaseId, RunId, RunRecord, Store, Trigger, UserRecord};

use crate::auth::Principal;
use crate::{ApiError, Shared, blocking, blocking_as, runner, settings_edit};

type ApiResult = Result<Response, ApiError>;

fn ok(v: Value) -> ApiResult {
    Ok(Json(v).into_response())
}

pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Anonymous: a failure is answered generically (its detail may name the database's
/// host, user and name) and logged at error level with a reference.
pub async fn readyz(State(state): State<Shared>) -> Response {
    let checked = blocking(&state, |store| {
        Ok(store.meta_get("schema_version").map_err(|e| e.to_string()))
    })
    .await;
    let answer = match checked {
        Ok(Ok(_)) => return "ready\n".into_response(),
        Ok(Err(detail)) => {
            let reference = crate::error::reference();
            tracing::error!(reference = %reference, error = %detail, "not ready: the database does not answer");
            format!("not ready (reference {reference})\n")
        }
        // Already generic, and logged under its reference.
        Err(e) => format!("not ready: {}\n", e.message),
    };
    (StatusCode::SERVICE_UNAVAILABLE, answer).into_response()
}

/// The committed OpenAPI document (`docs/openapi.json`).
pub const OPENAPI: &str = include_str!("../../../docs/openapi.json");

pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

pub async fn metrics(State(state): State<Shared>) -> Response {
    let users = blocking(&state, |store| Ok(store.count_users()?))
        .await
        .ok();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(users),
    )
        .into_response()
}

/// The overview's numbers: directory counts, the last run, live runs, credential expiry.
pub fn overview_json(store: &Store, now: Timestamp) -> Result<Value, ApiError> {
    let counts = store.count_users()?;
    let last = store.list_runs(1)?.into_iter().next();
    let config = store.load_config()?;
    let today = now.to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
    let sources: Vec<Value> = config
        .sources
        .iter()
        .map(|s| {
            let days = s
                .credential_expires
                .and_then(|d| today.until(d).ok())
                .map(|span| i64::from(span.get_days()));
            json!({
                "name": s.name,
                "kind": s.kind,
                "credential_expires": s.credential_expires,
                "credential_days_left": days,
                "credential_warning": days.is_some_and(|d| d <= 30),
            })
        })
        .collect();
    Ok(json!({
        "users": counts.users,
        "active": counts.active,
        "linked": counts.linked,
        "unlinked_active": counts.unlinked_active,
        "groups": counts.groups,
        "last_run": last,
        "sources": sources,
    }))
}

pub async fn overview(State(state): State<Shared>) -> ApiResult {
    let now = state.now();
    let mut v = blocking(&state, move |store| overview_json(store, now)).await?;
    if let Some(o) = v.as_object_mut() {
        o.insert("live".into(), json!(state.live.all()));
    }
    ok(v)
}

// `GET /api/v1/users` is [`crate::user_list::api_users`].

/// The account `id`, or a 404 that names it.
pub(crate) fn account(store: &Store, id: AccountId) -> Result<UserRecord, ApiError> {
    store
        .get_user(id)?
        .ok_or_else(|| ApiError::not_found(format!("no account #{id}")))
}

/// The run `id`, or a 404 that names it.
pub(crate) fn run_record(store: &Store, id: RunId) -> Result<RunRecord, ApiError> {
    store
        .get_run(id)?
        .ok_or_else(|| ApiError::not_found(format!("no run {id}")))
}

/// Where the next page of a list paged by key starts: the key of `page`'s last row
/// when the page is full (`limit` rows, or more), else none.
pub(crate) fn next_key<T, K>(page: &[T], limit: u32, key: impl FnOnce(&T) -> K) -> Option<K> {
    page.last()
        .filter(|_| page.len() >= limit as usize)
        .map(key)
}

/// `users show --json`: the account with its history, groups, aliases, relationships
/// and SIS cards.
pub fn user_detail(store: &Store, id: AccountId) -> Result<Value, ApiError> {
    let r = account(store, id)?;
    let mut v = UserRecord::to_json(&r);
    let g = store.guardianships(id)?;
    if let Some(o) = v.as_object_mut() {
        o.insert("revisions".into(), json!(store.user_revisions(id)?));
        o.insert("groups".into(), json!(store.user_groups(id)?));
        o.insert("aliases".into(), json!(store.user_aliases(id)?));
        o.insert("students".into(), json!(g.students));
        o.insert("guardians".into(), json!(g.guardians));
        o.insert("sis_cards".into(), json!(store.sis_card(id)?));
    }
    Ok(v)
}

pub async fn user(State(state): State<Shared>, Path(id): Path<AccountId>) -> ApiResult {
    ok(blocking(&state, move |store| user_detail(store, id)).await?)
}

pub async fn user_sis(State(state): State<Shared>, Path(id): Path<AccountId>) -> ApiResult {
    let cards = blocking(&state, move |store| {
        account(store, id)?;
        Ok(store.sis_card(id)?)
    })
    .await?;
    ok(json!(cards))
}

/// A sync outcome as `sync --json` prints it.
pub fn outcome_json(o: &engine::SyncOutcome) -> Value {
    serde_json::to_value(o).unwrap_or(Value::Null)
}

/// What the audit log says of a single-user sync: `#12: run 7 (succeeded)`.
pub fn user_sync_detail(id: AccountId, o: &engine::SyncOutcome) -> String {
    match o.run_id {
        Some(run) => format!("#{id}: run {run} ({})", o.status.as_str()),
        None => format!("#{id}: no run recorded ({})", o.status.as_str()),
    }
}

/// Syncs one account now for `who`, and writes it to the audit log (`user.sync`).
pub(crate) async fn sync_user_audited(
    state: &Shared,
    who: &Principal,
    id: AccountId,
    trigger: Trigger,
) -> Result<engine::SyncOutcome, ApiError> {
    let outcome = runner::sync_user(state, id, trigger).await?;
    audit(state, who, "user.sync", user_sync_detail(id, &outcome)).await?;
    Ok(outcome)
}

pub async fn user_sync(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(id): Path<AccountId>,
) -> ApiResult {
    let outcome = sync_user_audited(&state, &who, id, Trigger::Api).await?;
    ok(outcome_json(&outcome))
}

#[derive(Debug, Deserialize)]
pub struct LinkBody {
    pub source: Option<String>,
    pub sourced_id: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct UnlinkBody {
    pub source: Option<String>,
}

/// The source a request means: the one given, else the only one (404 for a source that
/// is not configured).
pub fn one_source(config: &Config, given: Option<String>) -> Result<String, ApiError> {
    match config.which_source(given.as_deref()) {
        Ok(s) => Ok(s.name.clone()),
        Err(no @ NoSource::Unknown { .. }) => Err(ApiError::not_found(no.describe(""))),
        Err(no @ NoSource::NoneConfigured) => Err(ApiError::conflict(no.describe(""))),
        Err(no @ NoSource::Several(_)) => {
            Err(ApiError::bad_request(no.describe("give \"source\"")))
        }
    }
}

/// Writes `who`'s `action` to the audit log, now.
pub(crate) async fn audit(
    state: &Shared,
    who: &Principal,
    action: &'static str,
    detail: String,
) -> Result<(), ApiError> {
    blocking_as(state, who, move |store, actor, now| {
        Ok(store.audit(actor, action, &detail, now)?)
    })
    .await
}

pub async fn user_link(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(id): Path<AccountId>,
    Json(body): Json<LinkBody>,
) -> ApiResult {
    let linked = crate::people::checked_link(
        &state,
        who.actor(),
        id,
        body.source,
        Some(body.sourced_id),
        false,
    )
    .await?;
    let mut v = blocking(&state, move |store| user_detail(store, id)).await?;
    if let Some(o) = v.as_object_mut() {
        o.insert("sis_check".into(), linked.check_json());
    }
    ok(v)
}

pub async fn user_unlink(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(id): Path<AccountId>,
    body: Option<Json<UnlinkBody>>,
) -> ApiResult {
    let source = body.and_then(|b| b.0.source);
    let removed = blocking_as(&state, &who, move |store, actor, now| {
        account(store, id)?;
        Ok(store.unlink_user(id, source.as_deref(), actor, now)?)
    })
    .await?;
    let removed: Vec<Value> = removed
        .into_iter()
        .map(|(source, sourced_id)| json!({"source": source, "sourced_id": sourced_id}))
        .collect();
    ok(json!({"removed": removed}))
}

pub async fn user_relink(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(id): Path<AccountId>,
    Json(body): Json<LinkBody>,
) -> ApiResult {
    let linked = crate::people::checked_link(
        &state,
        who.actor(),
        id,
        body.source,
        Some(body.sourced_id),
        true,
    )
    .await?;
    ok(json!({
        "source": linked.source,
        "old_sourced_id": linked.old,
        "sourced_id": linked.sourced_id,
        "sis_check": linked.check_json(),
    }))
}

#[derive(Debug, Deserialize)]
pub struct Limit {
    pub limit: Option<u32>,
}

pub async fn runs(State(state): State<Shared>, Query(q): Query<Limit>) -> ApiResult {
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    let list = blocking(&state, move |store| Ok(store.list_runs(limit)?)).await?;
    ok(json!(list))
}

pub async fn run(State(state): State<Shared>, Path(id): Path<RunId>) -> ApiResult {
    let run = blocking(&state, move |store| run_record(store, id)).await?;
    ok(json!(run))
}

#[derive(Debug, Deserialize)]
pub struct ItemsQuery {
    pub outcome: Option<String>,
    pub limit: Option<u32>,
    pub offset: Option<u64>,
}

pub fn parse_outcome(s: Option<&str>) -> Result<Option<Outcome>, ApiError> {
    match s.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(o) => Outcome::parse(o).map(Some).ok_or_else(|| {
            ApiError::bad_request(format!(
                "outcome '{o}' is not one of created, updated, linked, skipped, deactivated, reactivated, error"
            ))
        }),
    }
}

pub async fn run_items(
    State(state): State<Shared>,
    Path(id): Path<RunId>,
    Query(q): Query<ItemsQuery>,
) -> ApiResult {
    let outcome = parse_outcome(q.outcome.as_deref())?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let offset = q.offset.unwrap_or(0);
    let items = blocking(&state, move |store| {
        run_record(store, id)?;
        Ok(store.run_items(id, outcome, limit, offset)?)
    })
    .await?;
    ok(json!(items))
}

pub async fn sync_status(State(state): State<Shared>, Path(source): Path<String>) -> ApiResult {
    match state.live.get(&source) {
        Some(r) => ok(json!(r)),
        None => Err(ApiError::not_found(format!(
            "this server has not started a sync of {source} (Sync History lists every run)"
        ))),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct SyncBody {
    pub kind: Option<String>,
}

pub fn parse_kind(s: Option<&str>) -> Result<SyncKind, ApiError> {
    match s.unwrap_or("full") {
        "full" => Ok(SyncKind::Full),
        "delta" => Ok(SyncKind::Delta),
        other => Err(ApiError::bad_request(format!(
            "kind '{other}' is not full or delta"
        ))),
    }
}

pub async fn start_sync(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(source): Path<String>,
    body: Option<Json<SyncBody>>,
) -> ApiResult {
    let kind = parse_kind(body.as_ref().and_then(|b| b.0.kind.as_deref()))?;
    let run = start_sync_audited(
        &state,
        &who,
        &source,
        kind,
        Trigger::Api,
        Duration::from_millis(500),
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(json!(run))).into_response())
}

/// Starts a sync of `source` for `who` (see [`runner::start_sync`] for `wait`), and
/// writes it to the audit log (`sync.start`).
pub(crate) async fn start_sync_audited(
    state: &Shared,
    who: &Principal,
    source: &str,
    kind: SyncKind,
    trigger: Trigger,
    wait: Duration,
) -> Result<runner::LiveRun, ApiError> {
    let run = runner::start_sync(state, source, kind, trigger, &who.actor(), wait).await?;
    audit(
        state,
        who,
        "sync.start",
        format!("{source} ({})", kind.as_str()),
    )
    .await?;
    Ok(run)
}

/// Runs *Validate* (`inspect`) against a configured source, its stored secret included,
/// at most once per [`VALIDATE_EVERY`] per source, and keeps the result for the
/// settings page. Only writers reach this (a POST); the caller audits it.
pub async fn inspect_source(
    state: &Shared,
    source: &str,
) -> Result<oneroster::inspect::Inspection, ApiError> {
    let name = source.to_owned();
    let now = state.now();
    let app = state.clone();
    blocking(state, move |store| {
        let config = store.load_config()?;
        let settings = source_of(&config, &name)?;
        let seen = crate::validation::fingerprint(
            &(settings, &config.network),
            store.source_secret(&name)?.as_deref(),
        );
        if let Some(wait) = app.validations.too_soon(&name, seen, VALIDATE_EVERY) {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_validations",
                format!(
                    "source {name} was validated moments ago with the same settings: try again in {} s",
                    wait.as_secs().max(1)
                ),
            ));
        }
        let quiet = |_| {};
        let ctx = app.context(&quiet);
        let result = engine::inspect(&ctx, &name).map_err(|e| match e {
            engine::EngineError::Store(e) => ApiError::from(e),
            e => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "source_failed", e.to_string()),
        });
        let stored = crate::validation::Stored::new(&result, now);
        store.meta_set(&crate::validation::key(&name), &stored.encode())?;
        result
    })
    .await
}

/// The shortest time between two validations of one source.
pub const VALIDATE_EVERY: Duration = Duration::from_secs(10);

pub async fn validate(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(source): Path<String>,
) -> ApiResult {
    let result = inspect_source(&state, &source).await;
    audit(
        &state,
        &who,
        "source.validate",
        format!(
            "{source}: {}",
            match &result {
                Ok(i) if i.complete() => "read completely".to_owned(),
                Ok(_) => "read, incomplete".to_owned(),
                Err(e) => e.message.clone(),
            }
        ),
    )
    .await?;
    ok(json!(result?))
}

fn source_of<'a>(config: &'a Config, name: &str) -> Result<&'a SourceConfig, ApiError> {
    config
        .which_source(Some(name))
        .map_err(|no| ApiError::not_found(no.describe("")))
}

pub async fn locations(State(state): State<Shared>, Path(source): Path<String>) -> ApiResult {
    let v = blocking(&state, move |store| {
        let config = store.load_config()?;
        let s = source_of(&config, &source)?;
        let orgs = store.sis_orgs(&source)?;
        let rows: Vec<Value> = orgs
            .iter()
            .map(|o| {
                json!({
                    "sourced_id": o.sourced_id,
                    "name": o.name,
                    "is_school": o.is_school,
                    "people": o.people,
                    "location": s.locations.map.get(&o.sourced_id),
                })
            })
            .collect();
        Ok(json!({"default": s.locations.default, "map": s.locations.map, "orgs": rows}))
    })
    .await?;
    ok(v)
}

#[derive(Debug, Deserialize)]
pub struct LocationsBody {
    pub default: Option<String>,
    #[serde(default)]
    pub map: BTreeMap<String, String>,
}

pub async fn put_locations(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(source): Path<String>,
    Json(body): Json<LocationsBody>,
) -> ApiResult {
    let changed = settings_edit::edit(&state, &who, |config| {
        let s = config
            .sources
            .iter_mut()
            .find(|s| s.name == source)
            .ok_or_else(|| ApiError::not_found(format!("no source named '{source}'")))?;
        s.locations.default = body.default.filter(|d| !d.trim().is_empty());
        s.locations.map = body
            .map
            .into_iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .collect();
        Ok(())
    })
    .await?;
    ok(json!({"changed": changed}))
}

/// The settings as JSON: everything but secrets, and per source whether one is set.
/// Webhook URLs are capabilities: writers see them, readers see only "set".
pub fn settings_json(store: &Store, reader_only: bool) -> Result<Value, ApiError> {
    let mut config = store.load_config()?;
    let mut secrets = serde_json::Map::new();
    for s in &mut config.sources {
        let set = store.source_secret(&s.name)?.is_some();
        secrets.insert(s.name.clone(), json!(if set { "set" } else { "not set" }));
        if reader_only && s.webhook_url.is_some() {
            s.webhook_url = Some("set".into());
        }
    }
    Ok(json!({
        "config": config,
        "client_secrets": secrets,
        "protected": {
            "user_mapping": true,
            "import": settings_edit::PROTECTED_IMPORT,
            "network": true,
        },
        "operator_only": ["client_secret_env", "key_file", "certificate_file"],
    }))
}

pub async fn settings(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
) -> ApiResult {
    let reader_only = !who.role.can_write();
    ok(blocking(&state, move |store| settings_json(store, reader_only)).await?)
}

pub async fn put_settings(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Json(config): Json<Config>,
) -> ApiResult {
    let changed = settings_edit::save(&state, &who, config).await?;
    ok(json!({"changed": changed}))
}

pub async fn audit_log(State(state): State<Shared>, Query(q): Query<Limit>) -> ApiResult {
    let limit = q.limit.unwrap_or(200).clamp(1, 5000);
    let list = blocking(&state, move |store| Ok(store.audit_log(limit)?)).await?;
    ok(json!(list))
}

// ----- the hard cases: held runs, undo, the review queue, merges, reports

/// How long an approval may take before the API answers `202` with its live state.
const APPROVE_WAIT: Duration = Duration::from_secs(10);

pub async fn approve_run(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(id): Path<RunId>,
) -> ApiResult {
    match runner::approve(&state, id, Trigger::Api, &who.actor(), APPROVE_WAIT).await? {
        runner::Approved::Done(a) => ok(json!(a)),
        runner::Approved::Running(r) => Ok((StatusCode::ACCEPTED, Json(json!(r))).into_response()),
    }
}

pub async fn discard_run(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(id): Path<RunId>,
) -> ApiResult {
    ok(json!(runner::discard(&state, id, &who.actor()).await?))
}

#[derive(Debug, Default, Deserialize)]
pub struct DryRunBody {
    #[serde(default)]
    pub dry_run: bool,
}

pub async fn undo_run(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(id): Path<RunId>,
    body: Option<Json<DryRunBody>>,
) -> ApiResult {
    let dry_run = body.is_some_and(|b| b.0.dry_run);
    ok(json!(
        runner::undo(&state, id, &who.actor(), dry_run).await?
    ))
}

/// An account as a request names it: its id, or its email or username.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum AccountKey {
    Id(AccountId),
    Key(String),
}

impl AccountKey {
    /// From a form field: digits are an id.
    pub fn parse(s: &str) -> AccountKey {
        let s = s.trim();
        match s.parse::<AccountId>() {
            Ok(id) => AccountKey::Id(id),
            Err(_) => AccountKey::Key(s.to_owned()),
        }
    }

    pub fn find(&self, store: &Store) -> Result<AccountId, ApiError> {
        match self {
            AccountKey::Id(id) => Ok(account(store, *id)?.user.id),
            AccountKey::Key(k) if k.trim().is_empty() => Err(ApiError::bad_request(
                "name the account: its id, email or username",
            )),
            AccountKey::Key(k) => store
                .find_user(k.trim())?
                .map(|r| r.user.id)
                .ok_or_else(|| {
                    ApiError::not_found(format!("no account with the email or username '{k}'"))
                }),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ReviewQuery {
    pub status: Option<String>,
    pub after: Option<ReviewCaseId>,
    pub limit: Option<u32>,
}

/// The status filter of the review queue: `open` by default, `all` for every case.
pub fn case_status(s: Option<&str>) -> Result<Option<&'static str>, ApiError> {
    match s.filter(|s| !s.is_empty()).unwrap_or("open") {
        "all" => Ok(None),
        other => store::CaseStatus::parse(other)
            .map(|c| Some(c.as_str()))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "status '{other}' is not one of open, resolved, closed, all"
                ))
            }),
    }
}

pub async fn review(State(state): State<Shared>, Query(q): Query<ReviewQuery>) -> ApiResult {
    let status = case_status(q.status.as_deref())?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let cases = blocking(&state, move |store| {
        Ok(store.review_cases(status, q.after, limit)?)
    })
    .await?;
    let next = next_key(&cases, limit, |c| c.id);
    ok(json!({"items": cases, "next_after": next}))
}

#[derive(Debug, Deserialize)]
pub struct ResolveBody {
    /// `link`, `create`, `ignore`, or `keep_apart` (an `identity_taken` case only).
    pub resolution: String,
    /// For `link`: the account.
    pub user: Option<AccountKey>,
}

/// A review case's resolution from its parts, the account found.
pub fn resolution(
    store: &Store,
    how: &str,
    user: Option<&AccountKey>,
) -> Result<store::CaseResolution, ApiError> {
    match how {
        "link" => {
            let user = user.ok_or_else(|| {
                ApiError::bad_request(
                    "to link, name the account (\"user\": its id, email or username)",
                )
            })?;
            Ok(store::CaseResolution::Link(user.find(store)?))
        }
        "create" => Ok(store::CaseResolution::Create),
        "ignore" => Ok(store::CaseResolution::Ignore),
        "keep_apart" => Ok(store::CaseResolution::KeepApart),
        other => Err(ApiError::bad_request(format!(
            "resolution '{other}' is not one of link, create, ignore, keep_apart"
        ))),
    }
}

/// Resolves a case (audited by the store) and answers it as it is now.
pub fn resolve_case(
    store: &Store,
    id: ReviewCaseId,
    how: &str,
    user: Option<&AccountKey>,
    actor: &str,
    now: Timestamp,
) -> Result<store::ReviewCase, ApiError> {
    let case = |store: &Store| {
        store
            .review_case(id)?
            .ok_or_else(|| ApiError::not_found(format!("no review case {id}")))
    };
    case(store)?;
    let r = resolution(store, how, user)?;
    store.resolve_case(id, r, actor, now)?;
    case(store)
}

pub async fn resolve(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(id): Path<ReviewCaseId>,
    Json(body): Json<ResolveBody>,
) -> ApiResult {
    let case = blocking_as(&state, &who, move |store, actor, now| {
        resolve_case(store, id, &body.resolution, body.user.as_ref(), actor, now)
    })
    .await?;
    ok(json!(case))
}

#[derive(Debug, Deserialize)]
pub struct MergeBody {
    /// The account that stays.
    pub into: AccountKey,
    #[serde(default)]
    pub dry_run: bool,
}

/// Merges `loser` into the account `into` names (a dry run writes nothing); the store
/// audits a real merge.
pub fn merge(
    store: &Store,
    loser: AccountId,
    into: &AccountKey,
    dry_run: bool,
    actor: &str,
    now: Timestamp,
) -> Result<store::MergeSummary, ApiError> {
    account(store, loser)?;
    let survivor = into.find(store)?;
    Ok(store.merge_accounts(loser, survivor, actor, now, dry_run)?)
}

pub async fn merge_user(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(id): Path<AccountId>,
    Json(body): Json<MergeBody>,
) -> ApiResult {
    let summary = blocking_as(&state, &who, move |store, actor, now| {
        merge(store, id, &body.into, body.dry_run, actor, now)
    })
    .await?;
    ok(json!(summary))
}

/// The three reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    Unlinked,
    Duplicates,
    Stale,
}

impl ReportKind {
    pub const ALL: [ReportKind; 3] = [
        ReportKind::Unlinked,
        ReportKind::Duplicates,
        ReportKind::Stale,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Unlinked => "unlinked",
            ReportKind::Duplicates => "duplicates",
            ReportKind::Stale => "stale",
        }
    }

    pub fn parse(s: &str) -> Result<ReportKind, ApiError> {
        ReportKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "no report '{s}': the reports are unlinked, duplicates and stale"
                ))
            })
    }
}

/// One page of a report.
#[derive(Debug)]
pub enum ReportPage {
    Unlinked(Vec<store::UnlinkedAccount>),
    Duplicates(Vec<store::DuplicateGroup>),
    Stale(Vec<store::StaleAccount>),
}

impl ReportPage {
    /// Where the next page starts (an account id), when this one is full.
    pub fn next_after(&self, limit: u32) -> Option<AccountId> {
        match self {
            ReportPage::Unlinked(v) => next_key(v, limit, |a| a.id),
            ReportPage::Duplicates(v) => {
                next_key(v, limit, |g| g.accounts.first().map(|a| a.id)).flatten()
            }
            ReportPage::Stale(v) => next_key(v, limit, |a| a.id),
        }
    }

    fn items(&self) -> Value {
        match self {
            ReportPage::Unlinked(v) => json!(v),
            ReportPage::Duplicates(v) => json!(v),
            ReportPage::Stale(v) => json!(v),
        }
    }
}

/// Most rows a report page holds (a page of the stale report may end with a few more:
/// every row of its last account).
pub const REPORT_MAX: u32 = 500;

pub fn report_page(
    store: &Store,
    kind: ReportKind,
    after: Option<AccountId>,
    limit: u32,
) -> Result<ReportPage, ApiError> {
    Ok(match kind {
        ReportKind::Unlinked => ReportPage::Unlinked(store.report_unlinked(after, limit)?),
        ReportKind::Duplicates => ReportPage::Duplicates(store.report_duplicates(after, limit)?),
        ReportKind::Stale => ReportPage::Stale(store.report_stale(after, limit)?),
    })
}

#[derive(Debug, Default, Deserialize)]
pub struct ReportQuery {
    pub after: Option<AccountId>,
    pub limit: Option<u32>,
}

pub async fn report(
    State(state): State<Shared>,
    Path(kind): Path<String>,
    Query(q): Query<ReportQuery>,
) -> ApiResult {
    let kind = ReportKind::parse(&kind)?;
    let limit = q.limit.unwrap_or(100).clamp(1, REPORT_MAX);
    let page = blocking(&state, move |store| {
        report_page(store, kind, q.after, limit)
    })
    .await?;
    ok(json!({
        "kind": kind.as_str(),
        "items": page.items(),
        "next_after": page.next_after(limit),
    }))
}
