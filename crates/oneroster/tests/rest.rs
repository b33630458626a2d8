//! The REST client against an in-process OneRoster server that misbehaves on request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use oneroster::oauth1::{self, OAuthHeader, SignatureMethod};
use oneroster::rest::{
    Auth, CredentialStyle, Filter, Query, RestClient, RestConfig, RestError, RetryPolicy,
};
use oneroster::*;

/// How pages say where the end is.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Paging {
    /// `X-Total-Count` and `Link` headers.
    LinkAndTotal,
    /// `X-Total-Count` only.
    TotalOnly,
    /// Neither: the client must stop on a short (or empty) page.
    Bare,
    /// `X-Total-Count`, and a `Link` header naming the next page by a page number (a
    /// cursor, to the client): not the next offset.
    LinkByPageNumber,
}

#[derive(Clone)]
enum ServerAuth {
    None,
    OAuth1 {
        key: &'static str,
        secret: &'static str,
    },
    OAuth2 {
        id: &'static str,
        secret: &'static str,
        require_app_name: bool,
    },
}

struct Behaviour {
    users: usize,
    paging: Paging,
    cap_page: Option<usize>,
    auth: ServerAuth,
    /// Statuses to answer with before serving normally (status, Retry-After).
    failures: Vec<(u16, Option<u64>)>,
    /// Answer 500 to every data request.
    always_500: bool,
    /// Sleep this long on the first data request.
    first_request_delay: Option<Duration>,
    /// Data requests (counted from 1) whose body is cut short.
    truncate_requests: Vec<u32>,
    /// Tokens stop working after this many data requests.
    token_uses: Option<u32>,
    /// Add this to X-Total-Count on every page after the first.
    total_drift: u64,
    /// Serve page 2 shifted by this many records (records move under offset paging).
    shift_second_page: usize,
    /// Put a failure status beside the records.
    failure_in_200: bool,
    /// Serve the page at this offset this many records short (the total unchanged).
    short_page: Option<(usize, usize)>,
    /// Pad every page with this many bytes (its length declared).
    padding: Option<usize>,
    /// Answer every data request with a body that never ends (no length declared).
    endless_body: bool,
    /// Send the headers and the start of the body, then nothing, on every data request.
    stall_body: bool,
    /// Never answer a data request.
    hang: bool,
    /// Take this long over every data request (requests in flight are counted).
    page_delay: Option<Duration>,
    /// Data requests (counted from 1) answered 500.
    fail_requests: Vec<u32>,
    /// Take this long over the data request for this offset.
    slow_offset: Option<(usize, Duration)>,
    /// Send each page's body in 64 KiB chunks, counting the bodies sent to the end.
    chunked: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            users: 2500,
            paging: Paging::LinkAndTotal,
            cap_page: None,
            auth: ServerAuth::None,
            failures: Vec::new(),
            always_500: false,
            first_request_delay: None,
            truncate_requests: Vec::new(),
            token_uses: None,
            total_drift: 0,
            shift_second_page: 0,
            failure_in_200: false,
            short_page: None,
            padding: None,
            endless_body: false,
            stall_body: false,
            hang: false,
            page_delay: None,
            fail_requests: Vec::new(),
            slow_offset: None,
            chunked: false,
        }
    }
}

#[derive(Default)]
struct Log {
    data_requests: u32,
    token_requests: u32,
    tokens: HashMap<String, u32>,
    next_token: u32,
    queries: Vec<String>,
    verified_signatures: u32,
    /// Data requests being answered now, and the most there ever were.
    in_flight: u32,
    most_in_flight: u32,
    /// Chunked bodies whose last chunk the connection took (the client read the rest).
    bodies_sent: u32,
}

struct Server {
    behaviour: Behaviour,
    log: Mutex<Log>,
}

async fn start(behaviour: Behaviour) -> (String, Arc<Server>) {
    let server = Arc::new(Server {
        behaviour,
        log: Mutex::new(Log::default()),
    });
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), server)
}

fn imsx(status: StatusCode, minor: &str, description: &str) -> Response {
    let body = serde_json::json!({"statusInfoSet": [{"imsx_codeMajor": "failure", "imsx_severity": "error",
        "imsx_codeMinor": minor, "imsx_description": description}]});
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn handle(
    State(s): State<Arc<Server>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let b = &s.behaviour;
    let path = uri.path();
    let query: HashMap<String, String> = uri
        .query()
        .map(|q| oauth1::form_params(q).into_iter().collect())
        .unwrap_or_default();

    if path.ends_with("/oauth2/token") {
        let ServerAuth::OAuth2 {
            id,
            secret,
            require_app_name,
        } = b.auth
        else {
            return StatusCode::NOT_FOUND.into_response();
        };
        if require_app_name && !query.contains_key("appName") {
            return (
                StatusCode::BAD_REQUEST,
                r#"{"error":"invalid_request","error_description":"appName required"}"#,
            )
                .into_response();
        }
        let form: HashMap<String, String> =
            oauth1::form_params(std::str::from_utf8(&body).unwrap())
                .into_iter()
                .collect();
        assert_eq!(
            form.get("grant_type").map(String::as_str),
            Some("client_credentials")
        );
        let creds = match headers.get("authorization").and_then(|v| v.to_str().ok()) {
            Some(basic) => {
                use base64::Engine;
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(basic.trim_start_matches("Basic "))
                    .unwrap();
                let text = String::from_utf8(raw).unwrap();
                let (i, p) = text.split_once(':').unwrap();
                (i.to_owned(), p.to_owned())
            }
            None => (
                form.get("client_id").cloned().unwrap_or_default(),
                form.get("client_secret").cloned().unwrap_or_default(),
            ),
        };
        if creds != (id.to_owned(), secret.to_owned()) {
            // As a careless token service might: the secret presented, echoed back.
            let echoed = serde_json::json!({
                "error": "invalid_client",
                "error_description": format!("no client {} with secret {}", creds.0, creds.1),
            });
            return (StatusCode::UNAUTHORIZED, echoed.to_string()).into_response();
        }
        let mut log = s.log.lock().unwrap();
        log.token_requests += 1;
        log.next_token += 1;
        let token = format!("tok{}", log.next_token);
        log.tokens.insert(token.clone(), 0);
        return (
            [("content-type", "application/json")],
            format!(r#"{{"access_token":"{token}","token_type":"bearer","expires_in":3600}}"#),
        )
            .into_response();
    }

    // Authentication of data requests.
    match b.auth {
        ServerAuth::None => {}
        ServerAuth::OAuth2 { .. } => {
            let token = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("")
                .to_owned();
            let mut log = s.log.lock().unwrap();
            let Some(uses) = log.tokens.get_mut(&token) else {
                return imsx(
                    StatusCode::UNAUTHORIZED,
                    "unauthorisedrequest",
                    "unknown token",
                );
            };
            *uses += 1;
            if b.token_uses.is_some_and(|max| *uses > max) {
                return imsx(
                    StatusCode::UNAUTHORIZED,
                    "unauthorisedrequest",
                    "token expired",
                );
            }
        }
        ServerAuth::OAuth1 { key, secret } => {
            let value = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let Ok(h) = OAuthHeader::parse(value) else {
                return imsx(
                    StatusCode::UNAUTHORIZED,
                    "unauthorisedrequest",
                    "no OAuth header",
                );
            };
            let host = headers.get("host").unwrap().to_str().unwrap();
            let url = format!("http://{host}{}", uri.path_and_query().unwrap());
            if h.consumer_key != key || oauth1::verify(method.as_str(), &url, &h, secret).is_err() {
                return imsx(
                    StatusCode::UNAUTHORIZED,
                    "unauthorisedrequest",
                    "bad signature",
                );
            }
            s.log.lock().unwrap().verified_signatures += 1;
        }
    }

    let request_no = {
        let mut log = s.log.lock().unwrap();
        log.data_requests += 1;
        log.queries.push(uri.query().unwrap_or("").to_owned());
        log.data_requests
    };
    if let Some(d) = b.page_delay {
        {
            let mut log = s.log.lock().unwrap();
            log.in_flight += 1;
            log.most_in_flight = log.most_in_flight.max(log.in_flight);
        }
        tokio::time::sleep(d).await;
        s.log.lock().unwrap().in_flight -= 1;
    }
    if b.always_500 || b.fail_requests.contains(&request_no) {
        return imsx(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_server_error",
            "database is down",
        );
    }
    if let Some((status, retry_after)) = b.failures.get(request_no as usize - 1) {
        let mut r = imsx(
            StatusCode::from_u16(*status).unwrap(),
            "server_busy",
            "try later",
        );
        if let Some(secs) = retry_after {
            r.headers_mut()
                .insert("retry-after", secs.to_string().parse().unwrap());
        }
        return r;
    }
    if request_no == 1
        && let Some(d) = b.first_request_delay
    {
        tokio::time::sleep(d).await;
    }
    if b.hang {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    if b.endless_body {
        let chunk = Bytes::from(vec![b' '; 64 * 1024]);
        let endless =
            futures_util::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
        return Response::new(axum::body::Body::from_stream(endless));
    }
    if b.stall_body {
        use futures_util::StreamExt as _;
        let start = futures_util::stream::once(async {
            Ok::<_, std::io::Error>(Bytes::from_static(b"{\"users\":["))
        });
        return Response::new(axum::body::Body::from_stream(
            start.chain(futures_util::stream::pending()),
        ));
    }

    // Under /maintenance/, a maintenance page served with 200.
    if path.contains("/maintenance/") {
        return (
            [("content-type", "text/html")],
            "<!DOCTYPE html><html><head><title>Down for maintenance</title></head><body>Back soon</body></html>",
        )
            .into_response();
    }
    // A base URL under /wrong/ is one the server does not have (a mistyped API URL).
    if path.contains("/wrong/") {
        return StatusCode::NOT_FOUND.into_response();
    }
    let Some(endpoint) = path.rsplit('/').next() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if endpoint != "users" {
        return imsx(StatusCode::NOT_FOUND, "unknownobject", "no such collection");
    }
    let limit: usize = query
        .get("limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let limit = b.cap_page.map_or(limit, |c| limit.min(c));
    let mut offset: usize = match query.get("page") {
        Some(page) => page.parse::<usize>().unwrap() * limit,
        None => query
            .get("offset")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    };
    if let Some((slow, d)) = b.slow_offset
        && slow == offset
    {
        tokio::time::sleep(d).await;
    }
    if offset > 0 {
        offset = offset.saturating_sub(b.shift_second_page);
    }
    let mut end = (offset + limit).min(b.users);
    if let Some((at, short)) = b.short_page
        && at == offset
    {
        end = end.saturating_sub(short).max(offset);
    }
    let users: Vec<serde_json::Value> = (offset.min(end)..end)
        .map(|i| {
            serde_json::json!({"sourcedId": format!("u{i}"), "status": "active",
                "dateLastModified": "2026-01-01T00:00:00.000Z", "enabledUser": "true",
                "username": format!("user{i}"), "givenName": "Given", "familyName": "Family",
                "role": "student", "orgs": [{"href": "/orgs/s1", "sourcedId": "s1", "type": "org"}],
                "email": format!("user{i}@x.org"), "grades": ["05"]})
        })
        .collect();
    let mut body = serde_json::json!({ "users": users });
    if let Some(n) = b.padding {
        body["padding"] = serde_json::Value::String(" ".repeat(n));
    }
    if b.failure_in_200 {
        body["statusInfoSet"] = serde_json::json!([{"imsx_codeMajor":"failure","imsx_severity":"error",
            "imsx_description":"partial data: replica lagging"}]);
    }
    let mut text = body.to_string();
    if b.truncate_requests.contains(&request_no) {
        text.truncate(text.len() / 2);
    }
    let mut resp = if b.chunked {
        use futures_util::StreamExt as _;
        let chunks: Vec<Result<Bytes, std::io::Error>> = text
            .into_bytes()
            .chunks(64 << 10)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let server = s.clone();
        let end = futures_util::stream::once(async move {
            server.log.lock().unwrap().bodies_sent += 1;
            Ok(Bytes::new())
        });
        let mut r = Response::new(axum::body::Body::from_stream(
            futures_util::stream::iter(chunks).chain(end),
        ));
        r.headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
        r
    } else {
        ([("content-type", "application/json")], text).into_response()
    };
    let h = resp.headers_mut();
    if b.paging != Paging::Bare {
        let drift = if offset > 0 { b.total_drift } else { 0 };
        h.insert(
            "x-total-count",
            (b.users as u64 + drift).to_string().parse().unwrap(),
        );
    }
    if b.paging == Paging::LinkAndTotal && end < b.users {
        let next = format!("<{path}?limit={limit}&offset={end}>; rel=\"next\"");
        h.insert("link", next.parse().unwrap());
    }
    if b.paging == Paging::LinkByPageNumber && end < b.users {
        let next = format!("<{path}?page={}&limit={limit}>; rel=\"next\"", end / limit);
        h.insert("link", next.parse().unwrap());
    }
    resp
}

fn config(base: &str, auth: Auth) -> RestConfig {
    let mut c = RestConfig::new(format!("{base}/ims/oneroster/v1p1"), auth);
    c.retry = RetryPolicy {
        attempts: 4,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(5),
        max_elapsed: Duration::from_secs(30),
    };
    c
}

async fn pull_users(client: &Arc<RestClient>) -> (Vec<User>, oneroster::report::CollectionReport) {
    let mut users = Vec::new();
    let report = client
        .pull::<User>(&Query::default(), |u| users.push(u))
        .await
        .unwrap();
    (users, report)
}

fn assert_all_users(users: &[User], n: usize) {
    assert_eq!(users.len(), n);
    let mut ids: Vec<&str> = users.iter().map(|u| u.base.sourced_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "every user exactly once");
}

#[tokio::test]
async fn pages_by_link_header() {
    let (base, server) = start(Behaviour::default()).await;
    let client = RestClient::new(config(&base, Auth::None)).unwrap();
    let (users, report) = pull_users(&client).await;
    assert_all_users(&users, 2500);
    assert!(report.complete, "{:?}", report.problems);
    assert_eq!(
        (report.pages, report.records, report.expected),
        (3, 2500, Some(2500))
    );
    assert_eq!(server.log.lock().unwrap().data_requests, 3);
}

#[tokio::test]
async fn pages_by_total_count() {
    let (base, server) = start(Behaviour {
        paging: Paging::TotalOnly,
        ..Behaviour::default()
    })
    .await;
    let client = RestClient::new(config(&base, Auth::None)).unwrap();
    let (users, report) = pull_users(&client).await;
    assert_all_users(&users, 2500);
    assert!(report.complete);
    assert_eq!(server.log.lock().unwrap().data_requests, 3);
}

#[tokio::test]
async fn pages_by_short_page() {
    let (base, server) = start(Behaviour {
        paging: Paging::Bare,
        ..Behaviour::default()
    })
    .await;
    let client = RestClient::new(config(&base, Auth::None)).unwrap();
    let (users, report) = pull_users(&client).await;
    assert_all_users(&users, 2500);
    assert!(report.complete);
    assert_eq!(report.expected, None);
    assert_eq!(
        server.log.lock().unwrap().data_requests,
        3,
        "1000 + 1000 + 500, stop on the short page"
    );
}

#[tokio::test]
async fn silently_capped_page_size_with_total() {
    let (base, server) = start(Behaviour {
        paging: Paging::TotalOnly,
        cap_page: Some(300),
        ..Behaviour::default()
    })
    .await;
    let client = RestClient::new(config(&base, Auth::None)).unwrap();
    let (users, report) = pull_users(&client).await;
    assert_all_users(&users, 2500);
    assert!(report.complete, "{:?}", report.problems);
    assert_eq!(server.log.lock().unwrap().data_requests, 9);
}

#[tokio::test]
async fn silently_capped_page_size_without_total_or_link() {
    let (base, _server) = start(Behaviour {
        paging: Paging::Bare,
        cap_page: Some(300),
        ..Behaviour::default()
    })
    .await;
    let client = RestClient::new(config(&base, Auth::None)).unwrap();
    let (users, report) = pull_users(&client).await;
    assert_all_users(&users, 2500);
    assert!(report.complete);
}

/// Several pages in flight (`concurrency` above 1, a total known) come out in order. A
/// server that pages by offset is asked for several at once, whether it sends no `Link`
/// header or one naming the next offset; one whose `Link` names pages some other way (a
/// page number, a cursor) is followed a page at a time whatever the setting.
#[tokio::test]
async fn several_pages_in_flight_arrive_in_order_where_the_server_pages_by_offset() {
    for (paging, several) in [
        (Paging::TotalOnly, true),
        (Paging::LinkAndTotal, true),
        (Paging::LinkByPageNumber, false),
    ] {
        let (base, server) = start(Behaviour {
            paging,
            users: 10_050,
            page_delay: Some(Duration::from_millis(20)),
            ..Behaviour::default()
        })
        .await;
        let mut c = config(&base, Auth::None);
        c.page_size = 500;
        c.concurrency = 4;
        let client = RestClient::new(c).unwrap();
        let (users, report) = pull_users(&client).await;
        assert_all_users(&users, 10_050);
        assert!(users.windows(2).all(|w| {
            let n = |u: &User| u.base.sourced_id[1..].parse::<usize>().unwrap();
            n(&w[0]) + 1 == n(&w[1])
        }));
        assert!(report.complete, "{paging:?}: {:?}", report.problems);
        let log = server.log.lock().unwrap();
        assert_eq!(log.data_requests, 21, "{paging:?}: {:?}", log.queries);
        if several {
            assert!(log.most_in_flight > 1, "{paging:?}: {}", log.most_in_flight);
        } else {
            assert_eq!(log.most_in_flight, 1, "{paging:?}");
        }
    }
}

/// A page asked for ahead is read to its end while the records of the page before are
/// handed out, however long that takes: its request runs as a task of its own. Were it
/// polled only by the pull, the connection would stop reading a body nobody takes and the
/// server, its socket full, would stop writing, so the next page would still be on its way
/// when the pull wanted it. Each page here is padded to 32 MiB, far more than the sockets
/// hold; the pull's thread is blocked (as by a long parse) until the server has sent the
/// pages in flight to their end: one request at a time, the second page while the first's
/// records come out; three at a time (after the first page, read alone), the third and
/// fourth while the second's do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_asked_for_ahead_is_read_while_the_page_before_is_handed_out() {
    for (concurrency, at_record, sent) in [(1, 1, 2), (3, 1001, 4)] {
        let (base, server) = start(Behaviour {
            users: 4000,
            padding: Some(32 << 20),
            chunked: true,
            ..Behaviour::default()
        })
        .await;
        let mut c = config(&base, Auth::None);
        c.page_size = 1000;
        c.concurrency = concurrency;
        let client = RestClient::new(c).unwrap();
        let mut read_ahead = None;
        let mut n = 0;
        let report = client
            .pull::<User>(&Query::default(), |_| {
                n += 1;
                if n == at_record {
                    let started = std::time::Instant::now();
                    while server.log.lock().unwrap().bodies_sent < sent
                        && started.elapsed() < Duration::from_secs(20)
                    {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    read_ahead = Some(server.log.lock().unwrap().bodies_sent >= sent);
                }
            })
            .await
            .unwrap();
        assert_eq!(n, 4000);
        assert!(report.complete, "{:?}", report.problems);
        assert_eq!(
            read_ahead,
            Some(true),
            "concurrency {concurrency}: the pages in flight were not read while record {at_record} was handed out"
        );
    }
}

/// The server makes the next page while the client reads this one, and still sees one
/// request at a time (the default `concurrency`): the next is sent once this one's body
/// is in, before its records are handed out (and awaited only after them). What is
/// asserted is the order the client asks in; whether the request is on the wire before
/// the records come out depends on the connection (one still being made is made when the
/// request is awaited), and the overlap is what `rostersync inspect` measures.
#[tokio::test]
async fn the_next_page_is_asked_for_while_this_one_is_read_one_request_at_a_time() {
    for (paging, expected) in [
        (Paging::LinkAndTotal, [2, 3, 4, 5, 5]),
        // By the total alone, once a page proved the page size is not capped.
        (Paging::TotalOnly, [1, 3, 4, 5, 5]),
    ] {
        let (base, server) = start(Behaviour {
            paging,
            users: 5000,
            page_delay: Some(Duration::from_millis(20)),
            ..Behaviour::default()
        })
        .await;
        let mut c = config(&base, Auth::None);
        c.page_size = 1000;
        let client = RestClient::new(c).unwrap();
        let mut users = Vec::new();
        // The data requests the client had sent when each page's first record came out.
        let mut asked = Vec::new();
        let report = client
            .pull::<User>(&Query::default(), |u| {
                if users.len() % 1000 == 0 {
                    asked.push(client.requests_sent());
                }
                users.push(u);
            })
            .await
            .unwrap();
        assert_all_users(&users, 5000);
        assert!(report.complete, "{:?}", report.problems);
        assert_eq!(asked, expected);
        let log = server.log.lock().unwrap();
        assert_eq!(
            log.data_requests, 5,
            "no page asked for twice or past the end"
        );
        assert_eq!(log.most_in_flight, 1);
    }
}

#[tokio::test]
async fn retries_429_with_retry_after_then_succeeds() {
    let (base, server) = start(Behaviour {
        failures: vec![(429, Some(1)), (503, None)],
        ..Behaviour::default()
    })
    .await;
    let client = RestClient::new(config(&base, Auth::None)).unwrap();
    let started = std::time::Instant::now();
    let (users, report) = pull_users(&client).await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
    assert_all_users(&users, 2500);
    assert!(report.complete);
    assert_eq!(server.log.lock().unwrap().data_requests, 5);
    // The metrics see every request, the two refused ones as failures, and the wait.
    let stats = client.request_stats();
    assert_eq!((stats.requests, stats.failures), (5, 2), "{stats:?}");
    assert!(stats.seconds > 0.0, "{stats:?}");
}

#[tokio::test]
async fn retries_500_then_succeeds() {
    let (base, _server) = start(Behaviour {
        failures: vec![(500, None), (500, None)],
        ..Behaviour::default()
    })
    .await;
    let client = RestClient::new(config(&base, Auth::None)).unwrap();
    let (users, report) = pull_users(&client).await;
    assert_all_users(&users, 2500);
    assert!(report.complete);
}

#[tokio::test]
async fn a_500_that_never_clears_is_a_clear_error() {
    let (base, server) = start(Behaviour {
        always_500: true,
        ..Behaviour::default()
    })
    .await;
    let client = RestClient::new(config(&base, Auth::None)).unwrap();
    let err = client
        .pull::<User>(&Query::default(), |_| {})
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err,
            RestError::Http {
                status: 500,
                attempts: 4,
                ..
            }
        ),
        "{text}"
    );
    assert!(
        text.starts_with("HTTP 500 from http://127.0.0.1:"),
        "{text}"
    );
    assert!(
        text.ends_with("/ims/oneroster/v1p1/users?limit=1000&offset=0 after 4 attempt(s): failure/internal_server_error: database is down"),
        "{text}"
    );
    assert!(!err.is_configuration());
    assert_eq!(server.log.lock().unwrap().data_requests, 4);
    let stats = client.request_stats();
    assert_eq!((stats.requests, stats.failures), (4, 4), "{stats:?}");
}

#[tokio::test]
async fn a_hung_response_times_out_and_is_retried() {
    let (base, _server) = start(Behaviour {
        first_request_delay: Some(Duration::from_secs(5)),
        ..Behaviour::default()
    })
    .await;
    let mut c = config(&base, Auth::None);
    c.timeout = Duration::from_millis(400);
    let client = RestClient::new(c).unwrap();
    let (users, report) = pull_users(&client).await;
    assert_all_users(&users, 2500);
    assert!(report.complete);
}

#[tokio::test]
async fn a_body_cut_mid_json_is_fetched_again() {
    let (base, server) = start(Behaviour {
        truncate_requests: vec![1],
        ..Behaviour::default()
    })
    .await;
    let client = RestClient::new(config(&base, Auth::None)).unwrap();
    let (users, report) = pull_users(&client).await;
    assert_all_users(&users, 2500);
    assert!(report.complete);
    assert_eq!(server.log.lock().unwrap().data_requests, 4);
}

#[tokio::test]
async fn a_total_that_moves_makes_the_pull_incomplete() {
    let (base, _server) = start(Behaviour {
        paging: Paging::TotalOnly,
        total_drift: 7,
        ..Behaviour::default()
    })
    .await;
    let client = RestClient::new(config(&base, Auth::None)).unwrap();
    let (_, report) = pull_users(&client).await;
    assert!(!report.complete);
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("X-Total-Count changed during the pull (2500 then 2507")),
        "{:?}",
        report.problems
    );
}

#[tokio::test]
async fn records_served_twice_make_the_pull_incomplete() {
    let (base, _server) = start(Behaviour {
        paging: Paging::TotalOnly,
        shift_second_page: 10,
        ..Behaviour::default()
    })
    .await;
    let client = RestClient::new(config(&base, Auth::None)).unwrap();
    let (_, report) = pull_users(&client).await;
    assert!(!report.complete);
    assert!(
        report.problems.iter().any(|p| p.contains("came twice")),
        "{:?}",
        report.problems
    );
}

#[tokio::test]
async fn a_short_page_before_the_end_makes_the_pull_incomplete() {
    let (base, server) = start(Behaviour {
        paging: Paging::TotalOnly,
        short_page: Some((1000, 3)),
        ..Behaviour::default()
    })
    .await;
    let client = RestClient::new(config(&base, Auth::None)).unwrap();
    let (users, report) = pull_users(&client).await;
    assert!(!report.complete);
    assert!(
        report.problems.iter().any(|p| p.contains("fewer than")),
        "{:?}",
        report.problems
    );
    // Every record once: the page asked for ahead of the short one (offset 2000, as if
    // it had been full) is dropped, and the one after it asked for where it ended.
    assert_all_users(&users, 2500);
    let log = server.log.lock().unwrap();
    let offsets: Vec<&str> = log
        .queries
        .iter()
        .filter_map(|q| q.split('&').find_map(|p| p.strip_prefix("offset=")))
        .collect();
    // The guess is dropped unanswered, so whether it reached the server first is a race.
    let asked: Vec<&str> = offsets.iter().copied().filter(|o| *o != "2000").collect();
    assert_eq!(asked, ["0", "1000", "1997"], "{offsets:?}");
    assert!(offsets.len() - asked.len() <= 1, "{offsets:?}");
}

/// A page asked for ahead that proves not to be the next (the page before it was short) is
/// dropped without waiting for its answer: a server slow to make it holds nothing up.
#[tokio::test]
async fn a_page_asked_for_ahead_in_vain_is_not_waited_for() {
    let (base, _server) = start(Behaviour {
        paging: Paging::TotalOnly,
        short_page: Some((1000, 3)),
        slow_offset: Some((2000, Duration::from_secs(60))),
        ..Behaviour::default()
    })
    .await;
    let client = RestClient::new(config(&base, Auth::None)).unwrap();
    let pulled = tokio::time::timeout(Duration::from_secs(20), pull_users(&client)).await;
    let (users, report) = pulled.expect("the pull waited for the page it did not need");
    assert_all_users(&users, 2500);
    assert!(!report.complete, "the short page is still reported");
}

/// A page asked for ahead that fails, or whose body comes cut short, is fetched again like
/// any other, and the pull completes; the server still sees one request at a time (a page
/// cut short is fetched again once the page asked for after it is answered).
#[tokio::test]
async fn a_page_asked_for_ahead_that_fails_is_fetched_again() {
    // The second request fails: pages 0, 1000 (answered 500, then again), 2000; or its body
    // is cut short: pages 0, 1000 (cut short), 2000 (asked for ahead), 1000 again.
    let cut = Behaviour {
        truncate_requests: vec![2],
        ..Behaviour::default()
    };
    let failed = Behaviour {
        fail_requests: vec![2],
        ..Behaviour::default()
    };
    for (behaviour, again) in [(failed, 2), (cut, 3)] {
        let (base, server) = start(Behaviour {
            page_delay: Some(Duration::from_millis(20)),
            ..behaviour
        })
        .await;
        let client = RestClient::new(config(&base, Auth::None)).unwrap();
        let (users, report) = pull_users(&client).await;
        assert_all_users(&users, 2500);
        assert!(report.complete, "{:?}", report.problems);
        let log = server.log.lock().unwrap();
        assert_eq!(log.data_requests, 4);
        assert_eq!(log.queries[1], log.queries[again], "{:?}", log.queries);
        assert_eq!(log.most_in_flight, 1, "one request at a time");
    }
}

#[tokio::test]
async fn a_failure_status_in_a_200_makes_the_pull_incomplete() {
    let (base, _server) = start(Behaviour {
        users: 10,
        failure_in_200: true,
        ..Behaviour::default()
    })
    .await;
    let client = RestClient::new(config(&base, Auth::None)).unwrap();
    let (users, report) = pull_users(&client).await;
    assert_eq!(users.len(), 10);
    assert!(!report.complete);
    assert!(
        report.problems[0]
            .contains("came with a failure status: failure: partial data: replica lagging"),
        "{:?}",
        report.problems
    );
}

fn oauth2(base: &str, secret: &str, style: CredentialStyle) -> Auth {
    Auth::OAuth2 {
        token_url: format!("{base}/campus/oauth2/token?appName=district"),
        client_id: "site1-client".into(),
        client_secret: secret.into(),
        scope: Some("https://purl.imsglobal.org/spec/or/v1p2/scope/roster-core.readonly".into()),
        credentials: style,
    }
}

#[tokio::test]
async fn oauth2_token_is_cached_and_refreshed_once_when_it_expires_mid_pull() {
    let (base, server) = start(Behaviour {
        auth: ServerAuth::OAuth2 {
            id: "site1-client",
            secret: "s3cret",
            require_app_name: true,
        },
        token_uses: Some(2),
        ..Behaviour::default()
    })
    .await;
    let mut c = config(&base, oauth2(&base, "s3cret", CredentialStyle::Basic));
    c.base_url = format!("{base}/campus/oneroster/district/ims/oneroster/v1p1");
    let client = RestClient::new(c).unwrap();
    let (users, report) = pull_users(&client).await;
    assert_all_users(&users, 2500);
    assert!(report.complete);
    let log = server.log.lock().unwrap();
    assert_eq!(
        log.token_requests, 2,
        "one token, then one refresh after the 401"
    );
    assert_eq!(log.data_requests, 3);
}

#[tokio::test]
async fn oauth2_form_credentials() {
    let (base, server) = start(Behaviour {
        auth: ServerAuth::OAuth2 {
            id: "site1-client",
            secret: "s3cret",
            require_app_name: true,
        },
        users: 5,
        ..Behaviour::default()
    })
    .await;
    let client = RestClient::new(config(
        &base,
        oauth2(&base, "s3cret", CredentialStyle::Form),
    ))
    .unwrap();
    let (users, _) = pull_users(&client).await;
    assert_eq!(users.len(), 5);
    assert_eq!(server.log.lock().unwrap().token_requests, 1);
}

#[tokio::test]
async fn oauth2_wrong_secret_names_the_token_url_and_never_the_secret() {
    let (base, _server) = start(Behaviour {
        auth: ServerAuth::OAuth2 {
            id: "site1-client",
            secret: "s3cret",
            require_app_name: true,
        },
        ..Behaviour::default()
    })
    .await;
    let client = RestClient::new(config(
        &base,
        oauth2(&base, "wrong-Secret-123", CredentialStyle::Basic),
    ))
    .unwrap();
    let err = client
        .pull::<User>(&Query::default(), |_| {})
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(err.is_configuration());
    assert!(
        text.starts_with("HTTP 401 from the token URL http://"),
        "{text}"
    );
    assert!(
        text.contains("invalid_client: no client site1-client with secret [redacted]; check the client id and client secret"),
        "{text}"
    );
    assert!(!text.contains("wrong-Secret-123"));
}

#[tokio::test]
async fn campus_token_url_without_app_name_is_refused() {
    let (base, _server) = start(Behaviour {
        auth: ServerAuth::OAuth2 {
            id: "site1-client",
            secret: "s3cret",
            require_app_name: true,
        },
        ..Behaviour::default()
    })
    .await;
    let mut auth = oauth2(&base, "s3cret", CredentialStyle::Basic);
    if let Auth::OAuth2 { token_url, .. } = &mut auth {
        *token_url = format!("{base}/campus/oauth2/token");
    }
    let client = RestClient::new(config(&base, auth)).unwrap();
    let err = client
        .pull::<User>(&Query::default(), |_| {})
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("invalid_request: appName required"),
        "{err}"
    );
}

async fn oauth1_pull(method: SignatureMethod) {
    let (base, server) = start(Behaviour {
        auth: ServerAuth::OAuth1 {
            key: "ck",
            secret: "cs&+ /secret",
        },
        users: 1200,
        ..Behaviour::default()
    })
    .await;
    let auth = Auth::OAuth1 {
        consumer_key: "ck".into(),
        consumer_secret: "cs&+ /secret".into(),
        method,
    };
    let client = RestClient::new(config(&base, auth)).unwrap();
    // A filter whose value has spaces, quotes and a plus: all must be signed as sent.
    let q = Query {
        filter: Some(
            Filter::new("givenName", "!=", "O'Brien +1 x").and(Filter::new("role", "=", "student")),
        ),
        ..Query::default()
    };
    let mut n = 0;
    let report = client.pull::<User>(&q, |_| n += 1).await.unwrap();
    assert_eq!(n, 1200);
    assert!(report.complete);
    let log = server.log.lock().unwrap();
    assert_eq!(log.verified_signatures, 2);
    assert!(
        log.queries[0].contains(
            "filter=givenName%21%3D%27O%27%27Brien%20%2B1%20x%27%20AND%20role%3D%27student%27"
        ),
        "{}",
        log.queries[0]
    );
}

#[tokio::test]
async fn oauth1_hmac_sha256_signatures_verify_on_the_server() {
    oauth1_pull(SignatureMethod::HmacSha256).await;
}

#[tokio::test]
async fn oauth1_hmac_sha1_signatures_verify_on_the_server() {
    oauth1_pull(SignatureMethod::HmacSha1).await;
}

#[tokio::test]
async fn oauth1_wrong_secret_says_what_to_check() {
    let (base, _server) = start(Behaviour {
        auth: ServerAuth::OAuth1 {
            key: "ck",
            secret: "right",
        },
        ..Behaviour::default()
    })
    .await;
    let auth = Auth::OAuth1 {
        consumer_key: "ck".into(),
        consumer_secret: "wrong".into(),
        method: SignatureMethod::HmacSha256,
    };
    let client = RestClient::new(config(&base, auth)).unwrap();
    let err = client
        .pull::<User>(&Query::default(), |_| {})
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(err.is_configuration());
    assert!(text.contains("401 from http://"), "{text}");
    assert!(
        text.contains("unauthorisedrequest: bad signature. check the consumer key and secret"),
        "{text}"
    );
}

#[tokio::test]
async fn single_gets_and_404() {
    let (base, _server) = start(Behaviour::default()).await;
    let client = RestClient::new(config(&base, Auth::None)).unwrap();
    let none = client.get::<Org>("missing").await.unwrap();
    assert!(none.is_none());
}

// ----- bounded reads: a response's size, a request's time

#[tokio::test]
async fn a_body_that_never_ends_stops_at_the_response_limit() {
    let (base, server) = start(Behaviour {
        endless_body: true,
        ..Behaviour::default()
    })
    .await;
    let mut c = config(&base, Auth::None);
    c.max_response_bytes = 1 << 20;
    let client = RestClient::new(c).unwrap();
    let started = std::time::Instant::now();
    let err = client
        .pull::<User>(&Query::default(), |_| {})
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, RestError::TooLarge { .. }), "{text}");
    assert!(
        text.ends_with("/users?limit=1000&offset=0: the response is larger than 1 MiB; refusing to read further (lower `page_size`, or if the server is sound raise `max_response_mb` under [source.limits])"),
        "{text}"
    );
    assert!(err.is_configuration(), "a setting fixes it, not waiting");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        server.log.lock().unwrap().data_requests,
        1,
        "not retried: the same answer would come again"
    );
}

#[tokio::test]
async fn a_declared_length_past_the_limit_is_refused_and_one_under_it_read() {
    let (base, _server) = start(Behaviour {
        users: 10,
        padding: Some(2 << 20),
        ..Behaviour::default()
    })
    .await;
    let mut c = config(&base, Auth::None);
    c.max_response_bytes = 1 << 20;
    let client = RestClient::new(c).unwrap();
    let err = client
        .pull::<User>(&Query::default(), |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(err, RestError::TooLarge { limit, .. } if limit == 1 << 20),
        "{err}"
    );

    let (base, _server) = start(Behaviour {
        users: 10,
        padding: Some(512 << 10),
        ..Behaviour::default()
    })
    .await;
    let mut c = config(&base, Auth::None);
    c.max_response_bytes = 1 << 20;
    let client = RestClient::new(c).unwrap();
    let (users, report) = pull_users(&client).await;
    assert_eq!(users.len(), 10);
    assert!(report.complete);
}

#[tokio::test]
async fn a_body_that_stalls_after_the_headers_times_out_within_the_budget() {
    let (base, server) = start(Behaviour {
        stall_body: true,
        ..Behaviour::default()
    })
    .await;
    let mut c = config(&base, Auth::None);
    c.timeout = Duration::from_millis(500);
    c.retry.attempts = 10;
    c.retry.max_elapsed = Duration::from_secs(2);
    let client = RestClient::new(c).unwrap();
    let started = std::time::Instant::now();
    let err = client
        .pull::<User>(&Query::default(), |_| {})
        .await
        .unwrap_err();
    let took = started.elapsed();
    let text = err.to_string();
    assert!(matches!(err, RestError::Transport { .. }), "{text}");
    assert!(text.contains("timed out"), "{text}");
    assert!(
        text.contains("one request may take at most 2 s, retries included"),
        "{text}"
    );
    assert!(took < Duration::from_secs(4), "took {took:?}: {text}");
    let requests = server.log.lock().unwrap().data_requests;
    assert!(
        (2..10).contains(&requests),
        "retried, but only within the budget: {requests}"
    );
}

#[tokio::test]
async fn a_server_that_never_answers_fails_within_the_budget() {
    let (base, server) = start(Behaviour {
        hang: true,
        ..Behaviour::default()
    })
    .await;
    let mut c = config(&base, Auth::None);
    c.timeout = Duration::from_secs(1);
    c.retry.attempts = 6;
    c.retry.max_elapsed = Duration::from_millis(2500);
    let client = RestClient::new(c).unwrap();
    let started = std::time::Instant::now();
    let err = client.get::<User>("u1").await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, RestError::Transport { .. }), "{err}");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(4),
        "took {took:?}: {err}"
    );
    assert!(server.log.lock().unwrap().data_requests < 6, "{err}");
}

/// A server that says nothing fails an attempt after the idle timeout, long before the
/// whole request's: a silent SIS fails within two minutes by default (two silent
/// attempts of 60 s), however large a page may legitimately take to arrive.
#[tokio::test]
async fn silence_fails_an_attempt_after_the_idle_timeout() {
    let (base, _server) = start(Behaviour {
        hang: true,
        ..Behaviour::default()
    })
    .await;
    let mut c = config(&base, Auth::None);
    c.timeout = Duration::from_secs(30);
    c.idle_timeout = Duration::from_millis(300);
    c.retry.attempts = 2;
    c.retry.max_elapsed = Duration::from_secs(30);
    let client = RestClient::new(c).unwrap();
    let started = std::time::Instant::now();
    let err = client.get::<User>("u1").await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, RestError::Transport { .. }), "{err}");
    assert!(took < Duration::from_secs(5), "took {took:?}: {err}");
}

#[test]
fn a_request_gives_up_within_two_minutes_by_default() {
    let c = RestConfig::new("https://sis.example/ims/oneroster/v1p1", Auth::None);
    assert_eq!(c.timeout, Duration::from_secs(120));
    assert_eq!(c.idle_timeout, Duration::from_secs(60));
    assert_eq!(c.retry.max_elapsed, Duration::from_secs(120));
    assert_eq!(c.max_response_bytes, 256 << 20);
}

#[tokio::test]
async fn https_to_a_plain_http_port_says_so() {
    let (base, _server) = start(Behaviour::default()).await;
    let mut c = config(&base.replace("http://", "https://"), Auth::None);
    c.retry.attempts = 1;
    let client = RestClient::new(c).unwrap();
    let e = client.get::<User>("u1").await.unwrap_err().to_string();
    assert!(e.contains("does not speak TLS"), "{e}");
}

#[tokio::test]
async fn a_missing_users_collection_is_a_wrong_url_not_an_empty_district() {
    let (base, _server) = start(Behaviour::default()).await;
    let config = RestConfig::new(format!("{base}/wrong/ims/oneroster/v1p1"), Auth::None);
    let mut source = oneroster::source::Source::open_rest(config).unwrap();
    let e = source
        .read::<User>(None, |_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("answered 404 Not Found"), "{e}");
    assert!(e.contains("the API URL is probably wrong"), "{e}");
}

#[tokio::test]
async fn an_html_page_with_200_is_called_one() {
    let (base, _server) = start(Behaviour::default()).await;
    let client = RestClient::new(config(&format!("{base}/maintenance"), Auth::None)).unwrap();
    let e = pull_users_err(&client).await;
    assert!(e.contains("an HTML page"), "{e}");
    assert!(!e.contains("Back soon"), "the page is not echoed: {e}");
}

async fn pull_users_err(client: &Arc<RestClient>) -> String {
    client
        .pull::<User>(&Query::default(), |_| {})
        .await
        .unwrap_err()
        .to_string()
}
