//! Security headers on every answer, and the request counters `/metrics` shows.
//!
//! The CSP allows nothing inline and nothing from elsewhere: scripts (htmx) and styles are
//! files this binary serves. `form-action 'self'` and `frame-ancestors 'none'` close the
//! remaining ways to post or frame from another site.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::Shared;

pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

pub async fn headers(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let page = !request.uri().path().starts_with("/api/");
    let mut response = next.run(request).await;
    if page {
        response = styled_rejection(response);
    }
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    state.metrics.http(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// A console address or form the extractors refused (`/users/abc`: "Cannot parse `abc`
/// to a `i64`") gets the styled error page in words, with a way back, not the
/// extractor's plain text.
fn styled_rejection(response: Response) -> Response {
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/plain"));
    let status = response.status();
    let rejected = matches!(status.as_u16(), 400 | 415 | 422);
    if !plain || !rejected {
        return response;
    }
    let message = if status == axum::http::StatusCode::BAD_REQUEST {
        "This address does not name anything the console has: accounts and runs are numbered (/users/12, /runs/7). Go back and follow a link instead."
    } else {
        "The console could not read what was sent. Go back, reload the page and try again."
    };
    crate::pages::error_page(&crate::ApiError::new(status, "bad_request", message))
}
