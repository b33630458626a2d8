//! The console's static files: htmx, its own script and style sheet, and its icon,
//! compiled into the binary and served with a cache lifetime.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// A compiled-in file of type `kind`, which browsers may keep for `max_age` seconds.
fn cached(kind: &'static str, max_age: u32, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind.to_owned()),
            (header::CACHE_CONTROL, format!("public, max-age={max_age}")),
        ],
        body,
    )
        .into_response()
}

pub async fn htmx_js() -> Response {
    cached(
        "text/javascript; charset=utf-8",
        86400,
        include_str!("../../assets/htmx.min.js"),
    )
}

/// The console's own small script: a warning before leaving unsaved edits.
pub async fn console_js() -> Response {
    cached(
        "text/javascript; charset=utf-8",
        3600,
        include_str!("../../assets/console.js"),
    )
}

/// The console's icon, also at `/favicon.ico` (browsers ask there first).
pub async fn favicon() -> Response {
    cached(
        "image/svg+xml",
        86400,
        include_str!("../../assets/favicon.svg"),
    )
}

pub async fn console_css() -> Response {
    cached(
        "text/css; charset=utf-8",
        3600,
        include_str!("../../assets/console.css"),
    )
}
