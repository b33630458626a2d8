//! The users list: the console page (filters that ignore spelling and case, the number
//! of matches, sortable columns, keyset pages), its CSV export, saved views (the page's
//! forms and the API), and the API's list.
//!
//! One set of parameters drives all of them — `search`, `type`, `linked`, `active`,
//! `grade`, `homeroom`, `location`, `sort` ([`ListSpec`]) and the page cursor `after`
//! ([`ListCursor`]) — so a page's URL, its CSV link, a saved view and an API call list
//! the same accounts in the same order. Reading (the page, the CSV, opening a view) is
//! for everyone signed in; saving and deleting views is for admins (the middleware
//! refuses an unsafe method to a viewer).

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use rostersync_core::directory::{AccountId, UserType};
use rostersync_core::user_list::{ListCursor, ListSpec, SortColumn, UserSort};
use serde::Deserialize;
use serde_json::{Value, json};
use store::{SavedView, SavedViewId, Store, UserQuery, UserRecord};

use crate::auth::Principal;
use crate::pages::{Flash, Nav, PAGE, Page, back, enc, fail, opt, render, ts};
use crate::{ApiError, Shared, blocking, blocking_as};

/// Query or form pairs, as sent.
struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn spec(&self) -> Result<ListSpec, ApiError> {
        ListSpec::from_params(self.0.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(ApiError::bad_request)
    }

    fn cursor(&self) -> Result<Option<ListCursor>, ApiError> {
        match self.get("after").map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => ListCursor::parse(s)
                .map(Some)
                .map_err(ApiError::bad_request),
        }
    }
}

/// `k=v&…` of a spec, URL-encoded.
fn query_string(spec: &ListSpec) -> String {
    spec.params()
        .iter()
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `/users?…` (or `/users`) for a spec.
fn list_href(spec: &ListSpec) -> String {
    let q = query_string(spec);
    if q.is_empty() {
        "/users".to_owned()
    } else {
        format!("/users?{q}")
    }
}

/// `1 234`: thousands apart, as the count reads on the page.
pub(crate) fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// "1 234 users match", "1 user matches", "No users match".
fn count_line(n: u64) -> String {
    match n {
        0 => "No users match".to_owned(),
        1 => "1 user matches".to_owned(),
        n => format!("{} users match", grouped(n)),
    }
}

/// A page of the list and, when asked, how many match in all.
struct Listed {
    items: Vec<UserRecord>,
    /// Where the next page starts, when there may be one.
    next: Option<ListCursor>,
    total: Option<u64>,
}

fn list(
    store: &Store,
    spec: &ListSpec,
    after: Option<ListCursor>,
    limit: u32,
    count: bool,
) -> Result<Listed, ApiError> {
    let query = UserQuery::from_spec(spec, limit).starting_after(after);
    let items = store.list_users(&query)?;
    let next = crate::api::next_key(&items, limit, |r| ListCursor::after(spec.sort, &r.user));
    let total = if count {
        Some(store.count_listed_users(&query)?)
    } else {
        None
    };
    Ok(Listed { items, next, total })
}

// ----- the console page

pub struct UserRow {
    pub id: AccountId,
    pub name: String,
    pub email: String,
    pub username: String,
    pub user_type: String,
    pub grade: String,
    pub homeroom: String,
    pub location: String,
    pub active: &'static str,
    pub sis: String,
}

/// A column header: a link that sorts by it (again: the other way round).
pub struct Header {
    pub label: &'static str,
    pub href: String,
    /// `ascending` or `descending` on the column the list is sorted by, else empty.
    pub aria_sort: &'static str,
    pub arrow: &'static str,
    pub id: String,
}

pub struct FilterView {
    pub search: String,
    pub linked: String,
    pub active: String,
    pub grade: String,
    pub homeroom: String,
    pub location: String,
}

pub struct ViewRow {
    pub id: SavedViewId,
    pub name: String,
    pub href: String,
    pub description: String,
    /// Who saved it, when.
    pub saved: String,
    /// The list shows this view's filters and sort right now.
    pub current: bool,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    nav: Nav,
    f: FilterView,
    types: Vec<(&'static str, bool)>,
    headers: Vec<Header>,
    users: Vec<UserRow>,
    count: String,
    next: String,
    first: String,
    csv: String,
    views: Vec<ViewRow>,
    /// The list's parameters, for the Save view form.
    params: Vec<(&'static str, String)>,
    sorted_by: String,
}

fn headers(spec: &ListSpec) -> Vec<Header> {
    [
        ("Id", SortColumn::Id),
        ("Name", SortColumn::Name),
        ("Email", SortColumn::Email),
        ("Username", SortColumn::Username),
        ("Type", SortColumn::Type),
        ("Grade", SortColumn::Grade),
        ("Homeroom", SortColumn::Homeroom),
        ("Location", SortColumn::Location),
        ("Active", SortColumn::Status),
    ]
    .into_iter()
    .map(|(label, column)| {
        let current = spec.sort.column == column;
        let mut target = spec.clone();
        target.sort = UserSort {
            column,
            descending: current && !spec.sort.descending,
        };
        let (aria_sort, arrow) = match (current, spec.sort.descending) {
            (false, _) => ("", ""),
            (true, false) => ("ascending", " ▲"),
            (true, true) => ("descending", " ▼"),
        };
        Header {
            label,
            href: list_href(&target),
            aria_sort,
            arrow,
            id: format!("sort-{}", column.as_str()),
        }
    })
    .collect()
}

fn user_row(r: &UserRecord) -> UserRow {
    UserRow {
        id: r.user.id,
        name: r.user.display_name(),
        email: opt(&r.user.email),
        username: opt(&r.user.username),
        user_type: r.user.user_type.as_str().to_owned(),
        grade: opt(&r.user.grade),
        homeroom: opt(&r.user.homeroom),
        location: opt(&r.user.location),
        active: if r.user.active { "yes" } else { "no" },
        sis: r
            .sis
            .as_ref()
            .map(|s| format!("{}: {}", s.source, s.sourced_id))
            .unwrap_or_default(),
    }
}

/// `GET /users`: the list, its count, its saved views.
pub async fn users(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Query(pairs): Query<Vec<(String, String)>>,
    flash: Flash,
) -> Page {
    let p = Params(pairs);
    let spec = p.spec().map_err(fail)?;
    let after = p.cursor().map_err(fail)?;
    let on_first_page = after.is_none();
    let wanted = spec.clone();
    let (listed, views) = blocking(&state, move |store| {
        Ok((
            list(store, &wanted, after, PAGE, true)?,
            store.saved_views()?,
        ))
    })
    .await
    .map_err(fail)?;
    let href = list_href(&spec);
    let join = if href.contains('?') { '&' } else { '?' };
    let params = spec.params();
    let views = views
        .iter()
        .map(|v| {
            let (href, description, current) = match v.spec() {
                Ok(s) => (list_href(&s), s.describe(), s == spec),
                Err(e) => ("/users".to_owned(), e.to_string(), false),
            };
            ViewRow {
                id: v.id,
                name: v.name.clone(),
                href,
                description,
                saved: format!("saved by {} at {}", v.saved_by, ts(v.saved_at)),
                current,
            }
        })
        .collect();
    let total = listed.total.unwrap_or(0);
    Ok(render(&UsersPage {
        nav: Nav::new(&who, "Users", "users", &flash),
        f: FilterView {
            search: opt(&spec.search),
            linked: spec.linked.map(|b| b.to_string()).unwrap_or_default(),
            active: spec.active.map(|b| b.to_string()).unwrap_or_default(),
            grade: opt(&spec.grade),
            homeroom: opt(&spec.homeroom),
            location: opt(&spec.location),
        },
        types: UserType::ALL
            .iter()
            .map(|t| (t.as_str(), spec.user_type == Some(*t)))
            .collect(),
        headers: headers(&spec),
        users: listed.items.iter().map(user_row).collect(),
        count: count_line(total),
        next: listed
            .next
            .map(|c| format!("{href}{join}after={}", enc(&c.to_string())))
            .unwrap_or_default(),
        first: if on_first_page {
            String::new()
        } else {
            href.clone()
        },
        csv: {
            let q = query_string(&spec);
            if q.is_empty() {
                "/users.csv".to_owned()
            } else {
                format!("/users.csv?{q}")
            }
        },
        views,
        params: params.clone(),
        sorted_by: if spec.sort.is_default() {
            String::new()
        } else {
            format!(
                "sorted by {}{}",
                spec.sort.column.as_str(),
                if spec.sort.descending {
                    ", descending"
                } else {
                    ""
                }
            )
        },
    }))
}

// ----- CSV

/// The export's columns.
const CSV_COLUMNS: [&str; 15] = [
    "id",
    "first_name",
    "last_name",
    "preferred_name",
    "email",
    "username",
    "type",
    "access",
    "active",
    "grade",
    "homeroom",
    "location",
    "identifier",
    "sis_source",
    "sis_sourced_id",
];

/// A CSV cell: a value a spreadsheet would run as a formula (starting with `=`, `+`, `-`,
/// `@`, a tab or a carriage return) gets a leading `'`, so it shows as text; a value with a
/// comma, quote or line break is quoted (RFC 4180).
pub fn csv_cell(value: &str) -> String {
    let guarded = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

/// One account as a CSV line (CRLF-terminated), in [`CSV_COLUMNS`] order.
pub fn csv_line(r: &UserRecord) -> String {
    let u = &r.user;
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    let cells = [
        u.id.to_string(),
        o(&u.first_name),
        o(&u.last_name),
        o(&u.preferred_name),
        o(&u.email),
        o(&u.username),
        u.user_type.as_str().to_owned(),
        u.access.as_str().to_owned(),
        u.active.to_string(),
        o(&u.grade),
        o(&u.homeroom),
        o(&u.location),
        o(&u.identifier),
        r.sis.as_ref().map(|s| s.source.clone()).unwrap_or_default(),
        r.sis
            .as_ref()
            .map(|s| s.sourced_id.clone())
            .unwrap_or_default(),
    ];
    let mut line = cells
        .iter()
        .map(|c| csv_cell(c))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

/// The CSV's first line.
pub fn csv_header() -> String {
    format!("{}\r\n", CSV_COLUMNS.join(","))
}

/// Accounts read per store call while exporting.
const EXPORT_PAGE: u32 = 1000;

/// `GET /users.csv`: every account the list's filters match, in its order, streamed a
/// page at a time (memory stays bounded at a million accounts). Audited
/// (`users.export`), since it carries people's details out.
pub async fn users_csv(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, Response> {
    let spec = Params(pairs).spec().map_err(fail)?;
    let wanted = spec.clone();
    // The first page before the answer, so a failing database is an error page rather
    // than a cut download.
    let first = blocking_as(&state, &who, move |store, actor, now| {
        store.audit(actor, "users.export", &wanted.describe(), now)?;
        list(store, &wanted, None, EXPORT_PAGE, false)
    })
    .await
    .map_err(fail)?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let store = Arc::clone(&state.store);
    tokio::task::spawn_blocking(move || export(store.as_ref(), &spec, first, &tx));
    let body = Body::from_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"users.csv\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response())
}

/// Sends the CSV, page after page, until the list ends or the client leaves. A store
/// failure midway ends the body with an error (the client sees a cut download) and is
/// logged.
fn export(
    store: &Store,
    spec: &ListSpec,
    first: Listed,
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let mut chunk = csv_header();
    let mut page = first;
    loop {
        for r in &page.items {
            chunk.push_str(&csv_line(r));
        }
        if tx
            .blocking_send(Ok(Bytes::from(std::mem::take(&mut chunk))))
            .is_err()
        {
            return;
        }
        let Some(next) = page.next.take() else {
            return;
        };
        page = match list(store, spec, Some(next), EXPORT_PAGE, false) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e.message, "the users CSV export stopped: a page could not be read");
                let _ = tx.blocking_send(Err(std::io::Error::other(
                    "the export stopped: the database could not be read",
                )));
                return;
            }
        };
    }
}

// ----- saved views: console forms

/// `POST /users/views`: saves the list's filters and sort (the form's hidden fields)
/// under the typed name, and shows the list again.
pub async fn save_view(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let p = Params(pairs);
    let spec = match p.spec() {
        Ok(s) => s,
        Err(e) => return back("/users", Err(e)),
    };
    let name = p.get("name").unwrap_or_default().to_owned();
    let to = list_href(&spec);
    let result = blocking_as(&state, &who, move |store, actor, now| {
        let (view, replaced) = store.save_view(&name, &spec, actor, now)?;
        Ok(if replaced {
            format!(
                "saved view '{}' (it replaced the view of that name)",
                view.name
            )
        } else {
            format!("saved view '{}'", view.name)
        })
    })
    .await;
    back(&to, result)
}

/// `POST /users/views/{id}/delete`.
pub async fn delete_view(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(id): Path<SavedViewId>,
) -> Response {
    let result = blocking_as(&state, &who, move |store, actor, now| {
        let name = store.delete_view(id, actor, now)?;
        Ok(format!("deleted view '{name}'"))
    })
    .await;
    back("/users", result)
}

// ----- the API

/// An account as the API and `users list --json` show it.
fn items_json(items: &[UserRecord]) -> Vec<Value> {
    items.iter().map(store::UserRecord::to_json).collect()
}

/// `GET /api/v1/users`: a page of the list. `after` takes the previous page's
/// `next_cursor` (or, in the id order, its `next_after`); `count=true` adds `total`.
pub async fn api_users(
    State(state): State<Shared>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let p = Params(pairs);
    let spec = p.spec()?;
    let after = p.cursor()?;
    let limit = match p.get("limit").map(str::trim).filter(|s| !s.is_empty()) {
        None => 100,
        Some(l) => l
            .parse::<u32>()
            .map_err(|_| {
                ApiError::bad_request(format!("limit is '{l}': use a number from 1 to 1000"))
            })?
            .clamp(1, 1000),
    };
    let count = match p.get("count").map(str::trim) {
        None | Some("" | "false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "count is '{other}': use true or false"
            )));
        }
    };
    let sort = spec.sort;
    let listed = blocking(&state, move |store| list(store, &spec, after, limit, count)).await?;
    let mut v = json!({
        "items": items_json(&listed.items),
        "next_after": if sort.column == SortColumn::Id { listed.next.as_ref().map(|c| c.id) } else { None },
        "next_cursor": listed.next.as_ref().map(ToString::to_string),
    });
    if let (Some(total), Some(o)) = (listed.total, v.as_object_mut()) {
        o.insert("total".into(), json!(total));
    }
    Ok(Json(v).into_response())
}

fn view_json(v: &SavedView) -> Value {
    let params: Value = serde_json::from_str(&v.params).unwrap_or_else(|_| json!({}));
    let spec = v.spec();
    json!({
        "id": v.id,
        "name": v.name,
        "params": params,
        "description": spec.as_ref().map(ListSpec::describe).unwrap_or_default(),
        "url": spec.as_ref().map(list_href).unwrap_or_else(|_| "/users".into()),
        "saved_by": v.saved_by,
        "saved_at": v.saved_at,
    })
}

/// `GET /api/v1/user-views`: the saved views, by name.
pub async fn api_views(State(state): State<Shared>) -> Result<Response, ApiError> {
    let views = blocking(&state, |store| Ok(store.saved_views()?)).await?;
    Ok(Json(json!(views.iter().map(view_json).collect::<Vec<_>>())).into_response())
}

#[derive(Debug, Deserialize)]
pub struct ViewBody {
    pub name: String,
    /// The list's parameters (`{"grade": "5", "sort": "-name"}`); unknown ones are refused.
    #[serde(default)]
    pub params: serde_json::Map<String, Value>,
}

/// `POST /api/v1/user-views`: saves a view (replacing one of the same name); 201 with it.
pub async fn api_save_view(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Json(body): Json<ViewBody>,
) -> Result<Response, ApiError> {
    let mut pairs = Vec::new();
    for (k, v) in &body.params {
        if !rostersync_core::user_list::LIST_PARAMS.contains(&k.as_str()) {
            return Err(ApiError::bad_request(format!(
                "params has '{k}', which is no list parameter: use {}",
                rostersync_core::user_list::LIST_PARAMS.join(", ")
            )));
        }
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            other => {
                return Err(ApiError::bad_request(format!(
                    "params.{k} is {other}: give it as text"
                )));
            }
        };
        pairs.push((k.as_str(), text));
    }
    let spec = ListSpec::from_params(pairs.iter().map(|(k, v)| (*k, v.as_str())))
        .map_err(ApiError::bad_request)?;
    rostersync_core::user_list::check_view_name(&body.name).map_err(ApiError::bad_request)?;
    let (view, replaced) = blocking_as(&state, &who, move |store, actor, now| {
        Ok(store.save_view(&body.name, &spec, actor, now)?)
    })
    .await?;
    let mut v = view_json(&view);
    if let Some(o) = v.as_object_mut() {
        o.insert("replaced".into(), json!(replaced));
    }
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

/// `DELETE /api/v1/user-views/{id}`.
pub async fn api_delete_view(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(id): Path<SavedViewId>,
) -> Result<Response, ApiError> {
    let name = blocking_as(&state, &who, move |store, actor, now| {
        Ok(store.delete_view(id, actor, now)?)
    })
    .await?;
    Ok(Json(json!({"deleted": id, "name": name})).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused_and_cells_quoted() {
        for (raw, cell) in [
            (
                "=HYPERLINK(\"http://x\")",
                "\"'=HYPERLINK(\"\"http://x\"\")\"",
            ),
            ("+1", "'+1"),
            ("-2", "'-2"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("a,b", "\"a,b\""),
            ("line\nbreak", "\"line\nbreak\""),
            ("Zoë O'Brien", "Zoë O'Brien"),
            ("a=b", "a=b"),
            ("", ""),
        ] {
            assert_eq!(csv_cell(raw), cell, "{raw:?}");
        }
    }

    #[test]
    fn counts_read_naturally() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1234), "1 234");
        assert_eq!(grouped(1_234_567), "1 234 567");
        assert_eq!(count_line(0), "No users match");
        assert_eq!(count_line(1), "1 user matches");
        assert_eq!(count_line(1234), "1 234 users match");
    }

    #[test]
    fn headers_toggle_the_direction_of_the_sorted_column() {
        let spec = ListSpec::from_params([("grade", "5"), ("sort", "name")]).unwrap();
        let h = headers(&spec);
        let name = h.iter().find(|h| h.label == "Name").unwrap();
        assert_eq!(name.href, "/users?grade=5&sort=-name");
        assert_eq!(name.aria_sort, "ascending");
        let email = h.iter().find(|h| h.label == "Email").unwrap();
        assert_eq!(email.href, "/users?grade=5&sort=email");
        assert_eq!(email.aria_sort, "");
        let id = h.iter().find(|h| h.label == "Id").unwrap();
        assert_eq!(
            id.href, "/users?grade=5",
            "the default order needs no parameter"
        );
    }
}
