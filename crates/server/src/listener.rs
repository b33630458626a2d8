//! The HTTP listener: accepts connections and serves each with hyper's HTTP/1 server,
//! with the two limits a listener facing the network needs, and stops gracefully.
//!
//! - Header read timeout ([`ServerOptions::header_read_timeout`], 15 s by default): a
//!   client that has not sent a whole request head (request line and headers) by then is
//!   disconnected — a slow client can no longer hold a connection forever. An idle
//!   keep-alive connection is closed after the same time.
//! - Request timeout ([`ServerOptions::request_timeout`], 60 s): from the request's head
//!   to the answer's head, reading the body included; past it the request is answered
//!   503. The slowest answers (an approval waits up to 10 s; progress is polled) fit well
//!   inside; an answer's body, once started, is not limited.
//!
//! axum's own `serve` sets no timer, so hyper's header timeout is off there; hence this
//! loop, which otherwise does what axum's does: the client's address as `ConnectInfo`,
//! accept errors survived, a graceful stop that lets requests in flight finish.
//!
//! [`ServerOptions::header_read_timeout`]: crate::ServerOptions::header_read_timeout
//! [`ServerOptions::request_timeout`]: crate::ServerOptions::request_timeout

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::ApiError;

/// How long a stop waits for requests in flight before it gives up on them.
const DRAIN: Duration = Duration::from_secs(10);

/// Wraps the application in the request timeout.
pub(crate) fn with_request_timeout(app: Router, limit: Duration) -> Router {
    app.layer(middleware::from_fn(move |request: Request, next: Next| {
        deadline(request, next, limit)
    }))
}

async fn deadline(request: Request, next: Next, limit: Duration) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(%method, path, seconds = limit.as_secs_f64(), "request timed out");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!(
                    "the request took longer than {} s and was stopped: try again (a sync it started keeps running; follow its progress)",
                    limit.as_secs()
                ),
            )
            .into_response()
        }
    }
}

/// Resolves when `stop` turns true (or its sender is gone).
async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Serves `app` on `listener` until `stop` turns true, then waits up to [`DRAIN`] for
/// the connections still answering.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    header_read_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    // Every connection holds a receiver; `closed()` resolves when the last one is gone.
    let (open_tx, open_rx) = watch::channel(());
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = stopping(&mut stop) => break,
        };
        let app = app.clone();
        let mut stop = stop.clone();
        let open = open_rx.clone();
        tokio::spawn(async move {
            connection(stream, remote, app, header_read_timeout, &mut stop).await;
            drop(open);
        });
    }
    drop(open_rx);
    if tokio::time::timeout(DRAIN, open_tx.closed()).await.is_err() {
        tracing::warn!(
            "requests still running {} s after the stop were cut off",
            DRAIN.as_secs()
        );
    }
}

async fn connection(
    stream: tokio::net::TcpStream,
    remote: SocketAddr,
    app: Router,
    header_read_timeout: Duration,
    stop: &mut watch::Receiver<bool>,
) {
    let service = TowerToHyperService::new(app);
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(remote));
        hyper::service::Service::call(&service, request)
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = stopping(stop) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        // Timeouts, resets and malformed requests: the client's business, not an error.
        tracing::debug!(%remote, error = %e, "connection ended");
    }
}

/// An accept that failed: a connection that died before it was accepted is skipped; any
/// other failure (no file descriptors left) is logged and accepting pauses a second, as
/// axum does, rather than spinning.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "cannot accept a connection; retrying in a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
