//! The OneRoster rostering endpoints: collections, single objects, relations, the query
//! parameters, paging headers and imsx errors, plus the `/_sim` control endpoints.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::faults::{HANG, RequestFault};
use super::query::{Filter, QueryError, SortKey, parse_filter, parse_pairs, url_encode};
use crate::model::{District, EnrollmentRole, Role, SessionKind};
use crate::records::{
    Collection, Renderer, Version, class_members, record_count, record_state, user_classes,
};

/// An imsx status payload: 1.1 sends a flat `statusInfoSet`, 1.2 a nested `imsx_CodeMinor`.
pub(crate) fn imsx_error(
    version: Version,
    status: StatusCode,
    code_minor: &str,
    description: &str,
) -> Response {
    let body = match version {
        Version::V1p1 => serde_json::json!({
            "statusInfoSet": [{
                "imsx_codeMajor": "failure",
                "imsx_severity": "error",
                "imsx_messageRefIdentifier": null,
                "imsx_operationRefIdentifier": null,
                "imsx_description": description,
                "imsx_codeMinor": code_minor,
            }]
        }),
        Version::V1p2 => serde_json::json!({
            "imsx_codeMajor": "failure",
            "imsx_severity": "error",
            "imsx_description": description,
            "imsx_CodeMinor": {
                "imsx_codeMinorField": [{
                    "imsx_codeMinorFieldName": "TargetEndSystem",
                    "imsx_codeMinorFieldValue": code_minor,
                }]
            }
        }),
    };
    (status, axum::Json(body)).into_response()
}

impl QueryError {
    /// The refusal as a 400 imsx status payload.
    fn response(&self, version: Version) -> Response {
        imsx_error(
            version,
            StatusCode::BAD_REQUEST,
            self.code_minor,
            &self.description,
        )
    }
}

/// Which records of a base type an endpoint shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Subset {
    All,
    Schools,
    Terms,
    GradingPeriods,
    Students,
    Teachers,
}

/// The records a list endpoint starts from, before `filter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    All(Subset),
    SchoolUsers(u32, Subset),
    SchoolClasses(u32),
    SchoolEnrollments(u32),
    SchoolCourses(u32),
    ClassUsers(u32, EnrollmentRole),
    UserClasses(u32),
    CourseClasses(u32),
}

enum Endpoint {
    List(Collection, Scope),
    Single(Collection, u32),
}

fn endpoint_name(name: &str) -> Option<(Collection, Subset)> {
    Some(match name {
        "academicSessions" => (Collection::AcademicSessions, Subset::All),
        "terms" => (Collection::AcademicSessions, Subset::Terms),
        "gradingPeriods" => (Collection::AcademicSessions, Subset::GradingPeriods),
        "orgs" => (Collection::Orgs, Subset::All),
        "schools" => (Collection::Orgs, Subset::Schools),
        "users" => (Collection::Users, Subset::All),
        "students" => (Collection::Users, Subset::Students),
        "teachers" => (Collection::Users, Subset::Teachers),
        "classes" => (Collection::Classes, Subset::All),
        "courses" => (Collection::Courses, Subset::All),
        "enrollments" => (Collection::Enrollments, Subset::All),
        _ => return None,
    })
}

fn in_subset(d: &District, collection: Collection, subset: Subset, index: u32) -> bool {
    let i = index as usize;
    match (collection, subset) {
        (_, Subset::All) => true,
        (Collection::Orgs, Subset::Schools) => d.orgs.get(i).is_some_and(|o| o.band.is_some()),
        (Collection::AcademicSessions, Subset::Terms) => d
            .sessions
            .get(i)
            .is_some_and(|s| s.kind == SessionKind::Semester),
        (Collection::AcademicSessions, Subset::GradingPeriods) => d
            .sessions
            .get(i)
            .is_some_and(|s| s.kind == SessionKind::GradingPeriod),
        (Collection::Users, Subset::Students) => {
            d.people.get(i).is_some_and(|p| p.role == Role::Student)
        }
        (Collection::Users, Subset::Teachers) => {
            d.people.get(i).is_some_and(|p| p.role == Role::Teacher)
        }
        _ => false,
    }
}

struct NotFound(String);

fn resolve(d: &District, rest: &str) -> Result<Endpoint, NotFound> {
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let unknown = || NotFound(format!("no such endpoint: /{rest}"));
    let find = |collection: Collection, subset: Subset, id: &str| -> Result<u32, NotFound> {
        collection
            .parse_sourced_id(id)
            .filter(|&i| {
                (i as usize) < record_count(d, collection) && in_subset(d, collection, subset, i)
            })
            .ok_or_else(|| NotFound(format!("no {} with sourcedId {id}", collection.singular())))
    };
    match segments.as_slice() {
        [name] => {
            let (collection, subset) = endpoint_name(name).ok_or_else(unknown)?;
            Ok(Endpoint::List(collection, Scope::All(subset)))
        }
        [name, id] => {
            let (collection, subset) = endpoint_name(name).ok_or_else(unknown)?;
            Ok(Endpoint::Single(collection, find(collection, subset, id)?))
        }
        [parent, id, child] => {
            let (parent_collection, parent_subset) = endpoint_name(parent).ok_or_else(unknown)?;
            // Which parents a child list hangs off, and the scope it makes of the parent.
            let (parent_subset, scope): (Subset, fn(u32) -> Scope) =
                match (parent_collection, *child) {
                    (Collection::Orgs, "students") => {
                        (Subset::Schools, |i| Scope::SchoolUsers(i, Subset::Students))
                    }
                    (Collection::Orgs, "teachers") => {
                        (Subset::Schools, |i| Scope::SchoolUsers(i, Subset::Teachers))
                    }
                    (Collection::Orgs, "classes") => (Subset::Schools, Scope::SchoolClasses),
                    (Collection::Orgs, "enrollments") => {
                        (Subset::Schools, Scope::SchoolEnrollments)
                    }
                    (Collection::Orgs, "courses") => (Subset::Schools, Scope::SchoolCourses),
                    (Collection::Classes, "students") => (Subset::All, |i| {
                        Scope::ClassUsers(i, EnrollmentRole::Student)
                    }),
                    (Collection::Classes, "teachers") => (Subset::All, |i| {
                        Scope::ClassUsers(i, EnrollmentRole::Teacher)
                    }),
                    (Collection::Users, "classes") => (parent_subset, Scope::UserClasses),
                    (Collection::Courses, "classes") => (Subset::All, Scope::CourseClasses),
                    _ => return Err(unknown()),
                };
            let scope = scope(find(parent_collection, parent_subset, id)?);
            let collection = match scope {
                Scope::SchoolUsers(..) | Scope::ClassUsers(..) => Collection::Users,
                Scope::SchoolEnrollments(_) => Collection::Enrollments,
                Scope::SchoolCourses(_) => Collection::Courses,
                _ => Collection::Classes,
            };
            Ok(Endpoint::List(collection, scope))
        }
        _ => Err(unknown()),
    }
}

/// The query parameters of a list request, validated.
struct ListQuery {
    filter: Option<(String, Filter)>,
    sort: Option<(String, bool)>,
    fields: Option<Vec<String>>,
    limit: u32,
    offset: usize,
    others: Vec<(String, String)>,
}

fn parse_list_query(pairs: Vec<(String, String)>) -> Result<ListQuery, QueryError> {
    let mut query = ListQuery {
        filter: None,
        sort: None,
        fields: None,
        limit: super::DEFAULT_PAGE_SIZE,
        offset: 0,
        others: Vec::new(),
    };
    let mut order_by_desc = false;
    let mut sort_field = None;
    for (key, value) in pairs {
        match key.as_str() {
            "filter" if !value.trim().is_empty() => {
                query.filter = Some((value.clone(), parse_filter(&value)?))
            }
            "sort" if !value.trim().is_empty() => sort_field = Some(value.trim().to_owned()),
            "orderBy" => {
                order_by_desc = match value.as_str() {
                    "asc" => false,
                    "desc" => true,
                    other => {
                        return Err(QueryError::new(
                            "invalid_sort_field",
                            format!("orderBy `{other}`: use asc or desc"),
                        ));
                    }
                };
            }
            "fields" if !value.trim().is_empty() => {
                query.fields = Some(
                    value
                        .split(',')
                        .map(|f| f.trim().to_owned())
                        .filter(|f| !f.is_empty())
                        .collect(),
                );
            }
            "limit" => {
                query.limit = value.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    QueryError::new(
                        "invalid_selection_field",
                        format!("limit `{value}`: expected a positive integer"),
                    )
                })?;
            }
            "offset" => {
                query.offset = value.parse().map_err(|_| {
                    QueryError::new(
                        "invalid_selection_field",
                        format!("offset `{value}`: expected an integer ≥ 0"),
                    )
                })?;
            }
            _ => {}
        }
        if !matches!(key.as_str(), "limit" | "offset") {
            query.others.push((key, value));
        }
    }
    query.sort = sort_field.map(|f| (f, order_by_desc));
    Ok(query)
}

fn visible(state: &AppState, d: &District, collection: Collection, index: u32) -> bool {
    record_state(d, collection, index)
        .is_some_and(|(removed, _)| !removed || state.config.flag_deletions)
}

/// The record indexes a list request matches, in response order (cached per query).
fn select(
    state: &AppState,
    d: &District,
    renderer: &Renderer<'_>,
    collection: Collection,
    scope: Scope,
    query: &ListQuery,
) -> Result<Arc<Vec<u32>>, QueryError> {
    let key = format!(
        "{}|{collection:?}|{scope:?}|{:?}|{:?}",
        state.generation.load(Ordering::SeqCst),
        query.filter.as_ref().map(|(raw, _)| raw),
        query.sort,
    );
    if let Some(ids) = state.cached_list(&key) {
        return Ok(ids);
    }
    let count = record_count(d, collection) as u32;
    let probe = (count > 0).then_some(0);
    if let (Some((_, filter)), Some(probe)) = (&query.filter, probe) {
        for predicate in &filter.predicates {
            if renderer
                .field(collection, probe, &predicate.field)
                .is_none()
            {
                return Err(QueryError::new(
                    "invalid_filter_field",
                    format!(
                        "cannot filter {} on unknown field `{}`",
                        collection.plural(),
                        predicate.field
                    ),
                ));
            }
        }
    }
    if let (Some((field, _)), Some(probe)) = (&query.sort, probe)
        && renderer.field(collection, probe, field).is_none()
    {
        return Err(QueryError::new(
            "invalid_sort_field",
            format!(
                "cannot sort {} on unknown field `{field}`",
                collection.plural()
            ),
        ));
    }

    let dropped_school = state
        .config
        .faults
        .drop_school
        .as_deref()
        .and_then(|id| Collection::Orgs.parse_sourced_id(id));
    let candidates: Vec<u32> = match scope {
        Scope::All(subset) => (0..count)
            .filter(|&i| in_subset(d, collection, subset, i))
            .collect(),
        Scope::SchoolUsers(school, subset) => indexes_where(&d.people, |p| {
            let role_fits = match subset {
                Subset::Students => p.role == Role::Student,
                _ => p.role == Role::Teacher,
            };
            role_fits && (p.school == school || p.second_school == school)
        }),
        Scope::SchoolClasses(school) => indexes_where(&d.classes, |c| c.school == school),
        Scope::SchoolEnrollments(school) => indexes_where(&d.enrollments, |e| {
            d.classes
                .get(e.class as usize)
                .is_some_and(|c| c.school == school)
        }),
        Scope::SchoolCourses(school) => indexes_where(&d.courses, |c| c.school == school),
        Scope::ClassUsers(class, role) => class_members(d, class, role),
        Scope::UserClasses(user) => user_classes(d, user),
        Scope::CourseClasses(course) => indexes_where(&d.classes, |c| c.course == course),
    };
    let mut ids = Vec::with_capacity(candidates.len());
    for index in candidates {
        if !visible(state, d, collection, index) {
            continue;
        }
        if collection == Collection::Users
            && let Some(dropped) = dropped_school
            && d.people
                .get(index as usize)
                .is_some_and(|p| p.school == dropped)
        {
            continue;
        }
        if let Some((_, filter)) = &query.filter {
            let mut verdicts = filter.predicates.iter().map(|p| {
                let value = renderer
                    .field(collection, index, &p.field)
                    .unwrap_or(crate::records::FieldValue::Missing);
                p.matches(&value)
            });
            let keep = match filter.join {
                super::query::Join::And => verdicts.try_fold(true, |all, v| v.map(|v| all && v))?,
                super::query::Join::Or => verdicts.try_fold(false, |any, v| v.map(|v| any || v))?,
            };
            if !keep {
                continue;
            }
        }
        ids.push(index);
    }
    if let Some((field, descending)) = &query.sort {
        let mut keyed: Vec<(SortKey, u32)> = ids
            .iter()
            .map(|&i| {
                let value = renderer
                    .field(collection, i, field)
                    .unwrap_or(crate::records::FieldValue::Missing);
                (SortKey::from(value), i)
            })
            .collect();
        if *descending {
            keyed.sort_by(|a, b| b.0.cmp(&a.0));
        } else {
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
        }
        ids = keyed.into_iter().map(|(_, i)| i).collect();
    }
    let ids = Arc::new(ids);
    state.cache_list(key, Arc::clone(&ids));
    Ok(ids)
}

/// The indexes of the records `keep` accepts.
fn indexes_where<T>(records: &[T], keep: impl Fn(&T) -> bool) -> Vec<u32> {
    records
        .iter()
        .enumerate()
        .filter(|(_, record)| keep(record))
        .map(|(i, _)| i as u32)
        .collect()
}

fn json_response(body: Vec<u8>) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn page_url(
    host: &str,
    path: &str,
    others: &[(String, String)],
    limit: u32,
    offset: usize,
) -> String {
    let mut url = format!("http://{host}{path}?");
    for (key, value) in others {
        url.push_str(&url_encode(key));
        url.push('=');
        url.push_str(&url_encode(value));
        url.push('&');
    }
    url.push_str(&format!("limit={limit}&offset={offset}"));
    url
}

/// Builds the response to one API GET (runs on a blocking thread: pages can be large).
fn respond(state: &AppState, rest: &str, uri: &Uri, host: &str) -> Response {
    let version = state.config.version;
    let d = state.district();
    let renderer = Renderer {
        district: &d,
        version,
        href_base: &state.api_root,
    };
    if rest.split('/').next() == Some("demographics") {
        return imsx_error(
            version,
            StatusCode::FORBIDDEN,
            "forbidden",
            "demographics are not shared with this application (roster-core scope only)",
        );
    }
    let endpoint = match resolve(&d, rest) {
        Ok(endpoint) => endpoint,
        Err(NotFound(why)) => {
            return imsx_error(version, StatusCode::NOT_FOUND, "unknownobject", &why);
        }
    };
    let query = match parse_list_query(parse_pairs(uri.query().unwrap_or(""))) {
        Ok(query) => query,
        Err(e) => return e.response(version),
    };
    let (collection, scope) = match endpoint {
        Endpoint::Single(collection, index) => {
            let dropped = collection == Collection::Users
                && state
                    .config
                    .faults
                    .drop_school
                    .as_deref()
                    .is_some_and(|id| {
                        Collection::Orgs.parse_sourced_id(id)
                            == d.people.get(index as usize).map(|p| p.school)
                    });
            let emptied = collection == Collection::Users && state.config.faults.empty_users;
            if !visible(state, &d, collection, index) || dropped || emptied {
                let id = collection.sourced_id(index);
                return imsx_error(
                    version,
                    StatusCode::NOT_FOUND,
                    "unknownobject",
                    &format!("no {} with sourcedId {id}", collection.singular()),
                );
            }
            let mut body = Vec::with_capacity(2048);
            body.extend_from_slice(b"{\"");
            body.extend_from_slice(collection.singular().as_bytes());
            body.extend_from_slice(b"\":");
            renderer.write_json(&mut body, collection, index, query.fields.as_deref());
            body.push(b'}');
            return json_response(body);
        }
        Endpoint::List(collection, scope) => (collection, scope),
    };

    let ids = if collection == Collection::Users && state.config.faults.empty_users {
        Arc::new(Vec::new())
    } else {
        match select(state, &d, &renderer, collection, scope, &query) {
            Ok(ids) => ids,
            Err(e) => return e.response(version),
        }
    };
    let mut limit = query.limit;
    for cap in [state.config.max_page_size, state.config.faults.cap_page]
        .into_iter()
        .flatten()
    {
        limit = limit.min(cap);
    }
    let total = ids.len();
    let page = ids
        .get(query.offset.min(total)..(query.offset.saturating_add(limit as usize)).min(total))
        .unwrap_or(&[]);

    let mut body = Vec::with_capacity(64 + page.len() * 700);
    body.extend_from_slice(b"{\"");
    body.extend_from_slice(collection.plural().as_bytes());
    body.extend_from_slice(b"\":[");
    for (position, &index) in page.iter().enumerate() {
        if position > 0 {
            body.push(b',');
        }
        renderer.write_json(&mut body, collection, index, query.fields.as_deref());
    }
    body.extend_from_slice(b"]}");

    let mut response = json_response(body);
    let page_number = query.offset / limit as usize;
    let reported_total = if state.config.faults.total_drift {
        total + page_number
    } else {
        total
    };
    let limit_usize = limit as usize;
    let path = uri.path();
    let mut links = Vec::new();
    if query.offset + limit_usize < total {
        links.push(format!(
            "<{}>; rel=\"next\"",
            page_url(host, path, &query.others, limit, query.offset + limit_usize)
        ));
    }
    let last = if total == 0 {
        0
    } else {
        (total - 1) / limit_usize * limit_usize
    };
    links.push(format!(
        "<{}>; rel=\"last\"",
        page_url(host, path, &query.others, limit, last)
    ));
    links.push(format!(
        "<{}>; rel=\"first\"",
        page_url(host, path, &query.others, limit, 0)
    ));
    if query.offset > 0 {
        let previous = query.offset.saturating_sub(limit_usize);
        links.push(format!(
            "<{}>; rel=\"prev\"",
            page_url(host, path, &query.others, limit, previous)
        ));
    }
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&reported_total.to_string()) {
        headers.insert("x-total-count", value);
    }
    if let Ok(value) = HeaderValue::from_str(&links.join(", ")) {
        headers.insert(header::LINK, value);
    }
    response
}

/// `GET {api root}/{*rest}`: every rostering endpoint.
pub(crate) async fn collection(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(rest): Path<String>,
) -> Response {
    if let Some(latency) = state.config.faults.latency {
        tokio::time::sleep(latency).await;
    }
    if let Err(refusal) = super::auth::authorize(&state, &method, &uri, &headers) {
        return *refusal;
    }
    let version = state.config.version;
    let n = state.requests.fetch_add(1, Ordering::SeqCst);
    let fault = state.config.faults.draw(state.config.district.seed, n);
    match fault {
        RequestFault::Hang => {
            let mut shutdown = state.shutdown.clone();
            tokio::select! {
                () = tokio::time::sleep(HANG) => {}
                _ = shutdown.wait_for(|stopped| *stopped) => {}
            }
            return imsx_error(
                version,
                StatusCode::GATEWAY_TIMEOUT,
                "server_busy",
                "the request hung (timeout fault)",
            );
        }
        RequestFault::TooManyRequests => {
            let mut response = imsx_error(
                version,
                StatusCode::TOO_MANY_REQUESTS,
                "server_busy",
                "too many requests: retry after the Retry-After delay",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
        RequestFault::ServerError => {
            return imsx_error(
                version,
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_server_error",
                "the SIS failed to answer (error500 fault)",
            );
        }
        RequestFault::None | RequestFault::Truncate => {}
    }
    let days = state.config.faults.advance_mid_users;
    if days > 0
        && rest.trim_end_matches('/').ends_with("users")
        && parse_pairs(uri.query().unwrap_or(""))
            .iter()
            .any(|(k, v)| k == "offset" && v != "0")
        && !state.advanced_mid_users.swap(true, Ordering::SeqCst)
        && let Err(error) = state.advance(days).await
    {
        return imsx_error(
            version,
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_server_error",
            &error.to_string(),
        );
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    let worker_state = Arc::clone(&state);
    let built =
        tokio::task::spawn_blocking(move || respond(&worker_state, &rest, &uri, &host)).await;
    let response = match built {
        Ok(response) => response,
        Err(error) => {
            return imsx_error(
                version,
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_server_error",
                &error.to_string(),
            );
        }
    };
    if fault == RequestFault::Truncate && response.status() == StatusCode::OK {
        return truncate(response).await;
    }
    response
}

/// Cuts a response body in half: a 200 whose JSON ends mid-record.
async fn truncate(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let cut = bytes.slice(..bytes.len() / 2);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(cut))
}

/// `POST /_sim/advance?days=N` (loopback only): moves the district forward N days (default 1).
pub(crate) async fn advance(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
) -> Response {
    let version = state.config.version;
    if !peer.ip().is_loopback() {
        return imsx_error(
            version,
            StatusCode::FORBIDDEN,
            "forbidden",
            "/_sim/advance only answers loopback clients",
        );
    }
    let pairs = parse_pairs(uri.query().unwrap_or(""));
    let days = match pairs.iter().find(|(k, _)| k == "days") {
        None => 1,
        Some((_, value)) => match value.parse::<u32>() {
            Ok(days) if days <= 3650 => days,
            _ => {
                return imsx_error(
                    version,
                    StatusCode::BAD_REQUEST,
                    "invalid_selection_field",
                    "days must be an integer from 0 to 3650",
                );
            }
        },
    };
    match state.advance(days).await {
        Ok(district) => axum::Json(serde_json::json!({ "day": district.day() })).into_response(),
        Err(error) => imsx_error(
            version,
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_server_error",
            &error.to_string(),
        ),
    }
}

/// `GET /_sim/status`: the served day and what each collection holds.
pub(crate) async fn status(State(state): State<Arc<AppState>>) -> Response {
    let district = state.district();
    axum::Json(serde_json::json!({
        "day": district.day(),
        "version": state.config.version.as_str(),
        "counts": district.counts(),
    }))
    .into_response()
}

pub(crate) async fn not_found(State(state): State<Arc<AppState>>, uri: Uri) -> Response {
    imsx_error(
        state.config.version,
        StatusCode::NOT_FOUND,
        "unknownobject",
        &format!(
            "no such endpoint: {} (the API lives under {})",
            uri.path(),
            state.api_root
        ),
    )
}
