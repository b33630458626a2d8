//! Every route, in two tables: the few public ones, and the protected ones behind
//! [`crate::auth::require`]. The router is built from these tables, and the tests walk
//! them (every protected route is refused without a session or token; the API's routes
//! equal the committed OpenAPI document's), so the three cannot drift apart.

use axum::Router;
use axum::http::Method;
use axum::middleware;
use axum::routing::{MethodRouter, delete, get, post, put};

use crate::{Shared, api, confirm, pages, people, security, targets};

/// A route as the tests see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub method: Method,
    pub path: &'static str,
}

type Table = Vec<(Method, &'static str, MethodRouter<Shared>)>;

fn public() -> Table {
    vec![
        (Method::GET, "/login", get(pages::login_form)),
        (Method::POST, "/login", post(pages::login)),
        (Method::GET, "/healthz", get(api::healthz)),
        (Method::GET, "/readyz", get(api::readyz)),
        (Method::GET, "/assets/htmx.min.js", get(pages::htmx_js)),
        (Method::GET, "/assets/console.css", get(pages::console_css)),
        (Method::GET, "/assets/console.js", get(pages::console_js)),
        (Method::GET, "/assets/favicon.svg", get(pages::favicon)),
        (Method::GET, "/favicon.ico", get(pages::favicon)),
        (Method::GET, "/api/v1/openapi.json", get(api::openapi)),
    ]
}

fn protected() -> Table {
    vec![
        // console pages
        (Method::GET, "/", get(pages::overview)),
        (Method::POST, "/logout", post(pages::logout)),
        (Method::GET, "/settings", get(pages::settings)),
        (Method::POST, "/settings/sources", post(pages::add_source)),
        (
            Method::POST,
            "/settings/{source}/validate",
            post(pages::validate),
        ),
        (
            Method::POST,
            "/settings/{source}/{section}",
            post(pages::save_section),
        ),
        (Method::GET, "/locations", get(pages::locations)),
        (
            Method::POST,
            "/locations/{source}",
            post(pages::save_locations),
        ),
        (
            Method::POST,
            "/locations/{source}/preview",
            post(crate::locations::preview),
        ),
        (Method::GET, "/groups", get(crate::overview::groups)),
        (Method::GET, "/runs", get(pages::runs)),
        (Method::GET, "/runs/{id}", get(pages::run)),
        (Method::GET, "/runs/{id}/approve", get(confirm::approve)),
        (Method::POST, "/runs/{id}/approve", post(pages::approve_run)),
        (Method::GET, "/runs/{id}/discard", get(confirm::discard)),
        (Method::GET, "/runs/{id}/undo", get(confirm::undo)),
        (Method::POST, "/runs/{id}/discard", post(pages::discard_run)),
        (Method::POST, "/runs/{id}/undo", post(pages::undo_run)),
        (Method::POST, "/sync", post(pages::start_sync)),
        (Method::GET, "/sync/{source}/progress", get(pages::progress)),
        (
            Method::POST,
            "/targets/{target}/push",
            post(targets::console_push),
        ),
        (Method::GET, "/users", get(crate::user_list::users)),
        (Method::GET, "/users.csv", get(crate::user_list::users_csv)),
        (
            Method::POST,
            "/users/views",
            post(crate::user_list::save_view),
        ),
        (
            Method::POST,
            "/users/views/{id}/delete",
            post(crate::user_list::delete_view),
        ),
        (Method::GET, "/users/{id}", get(pages::user)),
        (Method::POST, "/users/{id}/sync", post(pages::user_sync)),
        (Method::GET, "/users/{id}/unlink", get(confirm::unlink)),
        (Method::POST, "/users/{id}/unlink", post(pages::user_unlink)),
        (Method::POST, "/users/{id}/relink", post(pages::user_relink)),
        (Method::POST, "/users/{id}/link", post(pages::user_link)),
        (Method::POST, "/users/{id}/merge", post(pages::merge_user)),
        (Method::GET, "/review", get(pages::review)),
        (Method::POST, "/review/{id}/resolve", post(pages::resolve)),
        (Method::GET, "/reports", get(pages::reports)),
        (Method::GET, "/models", get(pages::models)),
        (Method::POST, "/models", post(pages::save_models)),
        (Method::GET, "/audit", get(pages::audit)),
        (Method::GET, "/metrics", get(api::metrics)),
        // JSON API
        (Method::GET, "/api/v1/overview", get(api::overview)),
        (
            Method::GET,
            "/api/v1/users",
            get(crate::user_list::api_users),
        ),
        (
            Method::GET,
            "/api/v1/user-views",
            get(crate::user_list::api_views),
        ),
        (
            Method::POST,
            "/api/v1/user-views",
            post(crate::user_list::api_save_view),
        ),
        (
            Method::DELETE,
            "/api/v1/user-views/{id}",
            delete(crate::user_list::api_delete_view),
        ),
        (Method::GET, "/api/v1/users/{id}", get(api::user)),
        (Method::GET, "/api/v1/users/{id}/sis", get(api::user_sis)),
        (
            Method::POST,
            "/api/v1/users/{id}/sync",
            post(api::user_sync),
        ),
        (
            Method::POST,
            "/api/v1/users/{id}/link",
            post(api::user_link),
        ),
        (
            Method::POST,
            "/api/v1/users/{id}/unlink",
            post(api::user_unlink),
        ),
        (
            Method::POST,
            "/api/v1/users/{id}/relink",
            post(api::user_relink),
        ),
        (Method::GET, "/api/v1/runs", get(api::runs)),
        (Method::GET, "/api/v1/runs/{id}", get(api::run)),
        (Method::GET, "/api/v1/runs/{id}/items", get(api::run_items)),
        (
            Method::POST,
            "/api/v1/runs/{id}/approve",
            post(api::approve_run),
        ),
        (
            Method::POST,
            "/api/v1/runs/{id}/discard",
            post(api::discard_run),
        ),
        (Method::POST, "/api/v1/runs/{id}/undo", post(api::undo_run)),
        (Method::GET, "/api/v1/review", get(api::review)),
        (
            Method::POST,
            "/api/v1/review/{id}/resolve",
            post(api::resolve),
        ),
        (
            Method::POST,
            "/api/v1/users/{id}/merge",
            post(api::merge_user),
        ),
        (Method::GET, "/api/v1/reports/{kind}", get(api::report)),
        (
            Method::GET,
            "/api/v1/sources/{source}/sync",
            get(api::sync_status),
        ),
        (
            Method::POST,
            "/api/v1/sources/{source}/sync",
            post(api::start_sync),
        ),
        (
            Method::POST,
            "/api/v1/sources/{source}/validate",
            post(api::validate),
        ),
        (
            Method::GET,
            "/api/v1/sources/{source}/locations",
            get(api::locations),
        ),
        (
            Method::PUT,
            "/api/v1/sources/{source}/locations",
            put(api::put_locations),
        ),
        (
            Method::GET,
            "/api/v1/sources/{source}/people",
            get(people::api_search),
        ),
        (Method::GET, "/api/v1/targets", get(targets::api_targets)),
        (
            Method::POST,
            "/api/v1/targets/{target}/push",
            post(targets::api_push),
        ),
        (Method::GET, "/api/v1/settings", get(api::settings)),
        (Method::PUT, "/api/v1/settings", put(api::put_settings)),
        (Method::GET, "/api/v1/audit", get(api::audit_log)),
    ]
}

fn specs(t: Table) -> Vec<RouteSpec> {
    t.into_iter()
        .map(|(method, path, _)| RouteSpec { method, path })
        .collect()
}

/// Routes anyone may call.
pub fn public_routes() -> Vec<RouteSpec> {
    specs(public())
}

/// Routes that need a session or a token.
pub fn protected_routes() -> Vec<RouteSpec> {
    specs(protected())
}

fn add(router: Router<Shared>, table: Table) -> Router<Shared> {
    table
        .into_iter()
        .fold(router, |r, (_, path, handler)| r.route(path, handler))
}

pub fn build(state: Shared) -> Router {
    let guarded = add(Router::new(), protected()).route_layer(middleware::from_fn_with_state(
        state.clone(),
        crate::auth::require,
    ));
    add(Router::new(), public())
        .merge(guarded)
        .merge(crate::scim::routes(state.clone()))
        .fallback(pages::not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security::headers,
        ))
        .with_state(state)
}
