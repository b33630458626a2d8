//! The SCIM push client (`idp::scim_target`): against a real third-party SCIM server
//! (PyPI's `scim2-server`, through `test_kit::ScimServer`: create, find, patch, replace,
//! delete, refusals), and against scripted answers on a local socket (retries, what each
//! status means, paging, the token kept out of every message).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use idp::IdpError;
use idp::http::Retry;
use idp::scim_target::{FIND_MAX_PAGES, FIND_PAGE_SIZE, ScimTarget, TargetError, TargetUser};
use oneroster::net::AddressPolicy;
use scim::Request;
use serde_json::{Value, json};
use test_kit::ScimServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const FAST: Retry = Retry {
    attempts: 3,
    base: Duration::from_millis(1),
    max_wait: Duration::from_millis(20),
};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const TOKEN: &str = "s3cr3t-push-token";

fn client(base: &str, token: &str) -> ScimTarget {
    ScimTarget::new(
        base,
        token,
        AddressPolicy::OPERATOR,
        Duration::from_secs(10),
        FAST,
    )
    .unwrap()
}

fn on(server: &ScimServer) -> ScimTarget {
    client(&server.url(), server.token())
}

fn ann() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "userName": "ann.lee@district.example",
        "externalId": "S-1001",
        "active": true,
        "name": {"givenName": "Ann", "familyName": "Lee"},
        "displayName": "Ann Lee",
        "emails": [{"value": "ann.lee@district.example", "type": "work", "primary": true}],
        ENTERPRISE: {"employeeNumber": "1001", "department": "Grade 7", "organization": "North High"},
    })
}

fn user(name: &str) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name})
}

fn refusal(result: Result<Option<TargetUser>, TargetError>) -> (u16, Option<String>, String) {
    match result {
        Err(TargetError::Refused(r)) => (r.status, r.scim_type, r.detail),
        other => panic!("a refusal expected: {other:?}"),
    }
}

async fn the_one(target: &ScimTarget, attribute: &str, value: &str) -> TargetUser {
    let found = target
        .find(&Request::find_eq(attribute, value))
        .await
        .unwrap();
    let [one] = found.as_slice() else {
        panic!("{attribute} eq {value:?}: one user expected: {found:?}");
    };
    one.clone()
}

// --- against scim2-server ---------------------------------------------------------------

#[tokio::test]
async fn creates_finds_patches_replaces_and_deletes_on_scim2_server() {
    let Some(server) = ScimServer::start() else {
        return;
    };
    let target = on(&server);
    let created = target
        .write(&Request::create(ann()))
        .await
        .unwrap()
        .unwrap();
    assert!(!created.id.is_empty());
    assert_eq!(created.resource["userName"], "ann.lee@district.example");
    assert_eq!(created.resource[ENTERPRISE]["employeeNumber"], "1001");

    for (attribute, value) in [
        ("userName", "ann.lee@district.example"),
        ("userName", "ANN.LEE@district.example"),
        ("externalId", "S-1001"),
        ("emails.value", "ann.lee@district.example"),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
            "1001",
        ),
    ] {
        assert_eq!(the_one(&target, attribute, value).await.id, created.id);
    }
    assert!(
        target
            .find(&Request::find_eq("externalId", "s-1001"))
            .await
            .unwrap()
            .is_empty(),
        "externalId is case-exact"
    );

    let patched = target
        .write(&Request::patch(
            &created.id,
            json!([
                {"op": "replace", "path": "active", "value": false},
                {"op": "replace", "path": "name.givenName", "value": "Anne"},
                {"op": "replace", "value": {"displayName": "Anne Lee"}},
                {"op": "replace", "path": format!("{ENTERPRISE}:department"), "value": "Grade 8"},
            ]),
        ))
        .await
        .unwrap();
    assert_eq!(patched, None, "scim2-server answers a PATCH 204");
    let read = the_one(&target, "userName", "ann.lee@district.example").await;
    assert_eq!(read.resource["active"], false);
    assert_eq!(read.resource["name"]["givenName"], "Anne");
    assert_eq!(read.resource["name"]["familyName"], "Lee");
    assert_eq!(read.resource["displayName"], "Anne Lee");
    assert_eq!(read.resource[ENTERPRISE]["department"], "Grade 8");
    assert_eq!(read.resource[ENTERPRISE]["employeeNumber"], "1001");

    let mut replacement = ann();
    replacement["name"]["givenName"] = json!("Annie");
    replacement["active"] = json!(true);
    let replaced = target
        .write(&Request::replace(&created.id, replacement))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(replaced.id, created.id);
    assert_eq!(replaced.resource["name"]["givenName"], "Annie");
    assert_eq!(replaced.resource["active"], true);
    assert_eq!(replaced.resource[ENTERPRISE]["department"], "Grade 7");
    assert_eq!(server.users().len(), 1);

    assert_eq!(
        target.write(&Request::delete(&created.id)).await.unwrap(),
        None
    );
    assert!(server.users().is_empty());
    assert_eq!(
        target.write(&Request::delete(&created.id)).await.unwrap(),
        None,
        "a DELETE answered 404 counts as done"
    );
    assert!(
        target
            .find(&Request::find_eq("userName", "ann.lee@district.example"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        target.requests(),
        1 + 6 + 1 + 1 + 1 + 2 + 1,
        "one attempt each"
    );
}

#[tokio::test]
async fn scim2_server_refuses_a_taken_user_name_and_a_bad_path() {
    let Some(server) = ScimServer::start() else {
        return;
    };
    let target = on(&server);
    let ann = target
        .write(&Request::create(ann()))
        .await
        .unwrap()
        .unwrap();
    let mut twin = self::ann();
    twin["userName"] = json!("Ann.Lee@District.example");
    twin["externalId"] = json!("S-2002");
    let (status, scim_type, detail) = refusal(target.write(&Request::create(twin)).await);
    assert_eq!(
        (status, scim_type.as_deref()),
        (409, Some("uniqueness")),
        "userName is unique, ignoring case: {detail}"
    );
    assert!(!detail.is_empty());

    let (status, scim_type, _) = refusal(
        target
            .write(&Request::patch(
                &ann.id,
                json!([{"op": "replace", "path": "noSuchAttribute", "value": 1}]),
            ))
            .await,
    );
    assert_eq!((status, scim_type.as_deref()), (400, Some("invalidPath")));

    let (status, _, detail) = refusal(
        target
            .write(&Request::patch(
                "no-such-id",
                json!([{"op": "replace", "path": "active", "value": false}]),
            ))
            .await,
    );
    assert_eq!(status, 404, "{detail}");
    assert_eq!(server.users().len(), 1, "nothing else created");
}

#[tokio::test]
async fn scim2_server_finds_values_with_quotes_and_backslashes() {
    let Some(server) = ScimServer::start() else {
        return;
    };
    let target = on(&server);
    let odd = r#"o"brien\x & co+1@district.example"#;
    let created = target
        .write(&Request::create(user(odd)))
        .await
        .unwrap()
        .unwrap();
    target
        .write(&Request::create(user("obrien@district.example")))
        .await
        .unwrap();
    let found = the_one(&target, "userName", odd).await;
    assert_eq!(found.id, created.id);
    assert_eq!(found.resource["userName"], odd);
}

#[tokio::test]
async fn scim2_server_pages_are_followed() {
    let Some(server) = ScimServer::start() else {
        return;
    };
    let target = on(&server);
    for i in 0..FIND_PAGE_SIZE + 30 {
        let mut u = user(&format!("user{i:03}@district.example"));
        u["externalId"] = json!("shared");
        target.write(&Request::create(u)).await.unwrap();
    }
    let found = target
        .find(&Request::find_eq("externalId", "shared"))
        .await
        .unwrap();
    assert_eq!(found.len(), FIND_PAGE_SIZE + 30);
    let mut ids: Vec<_> = found.iter().map(|u| u.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), FIND_PAGE_SIZE + 30, "each user once");
    assert_eq!(server.users().len(), FIND_PAGE_SIZE + 30);
}

#[tokio::test]
async fn scim2_server_refusing_the_token_stops_the_push() {
    let Some(server) = ScimServer::start() else {
        return;
    };
    let wrong = client(&server.url(), TOKEN);
    let before = wrong.requests();
    match wrong.write(&Request::create(ann())).await {
        Err(TargetError::Unreachable(message)) => {
            assert!(message.contains("401"), "{message}");
            assert!(message.contains("bearer token"), "{message}");
            assert!(!message.contains(TOKEN), "{message}");
            assert!(!message.contains(server.token()), "{message}");
        }
        other => panic!("unreachable expected: {other:?}"),
    }
    assert_eq!(wrong.requests() - before, 1, "a 401 is not retried");
    assert!(server.users().is_empty());
}

// --- against scripted answers -----------------------------------------------------------

/// A local socket that answers each connection with the next scripted HTTP answer (the
/// last one again once the script is spent) and keeps each request's text.
struct Scripted {
    base: String,
    seen: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Scripted {
    async fn start(answers: Vec<String>) -> Scripted {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/scim/v2", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            let mut next = 0;
            while let Ok((mut socket, _)) = listener.accept().await {
                let request = read_request(&mut socket).await;
                log.lock().unwrap().push(request);
                let answer = &answers[next.min(answers.len() - 1)];
                next += 1;
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        });
        Scripted { base, seen, task }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// One request's head and body (by its `Content-Length`).
async fn read_request(socket: &mut tokio::net::TcpStream) -> String {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&data).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return text;
            }
        }
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&data).into_owned(),
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
}

fn answer(status: u16, headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status} Scripted\r\nContent-Length: {}\r\nContent-Type: application/scim+json\r\n\
         Connection: close\r\n{headers}\r\n{body}",
        body.len()
    )
}

fn scim_error(status: u16, scim_type: &str, detail: &str) -> String {
    answer(
        status,
        "",
        &json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "status": status.to_string(),
            "scimType": scim_type,
            "detail": detail,
        })
        .to_string(),
    )
}

fn list(total: usize, ids: impl Iterator<Item = String>) -> String {
    let resources: Vec<Value> = ids.map(|id| json!({"id": id, "userName": id})).collect();
    answer(
        200,
        "",
        &json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": total,
            "Resources": resources,
        })
        .to_string(),
    )
}

fn request_line(request: &str) -> &str {
    request.lines().next().unwrap_or("")
}

#[tokio::test]
async fn retries_throttling_and_server_errors_then_sends_the_headers() {
    let script = Scripted::start(vec![
        answer(429, "Retry-After: 0\r\n", ""),
        answer(503, "", "down for a moment"),
        answer(201, "", r#"{"id":"u-1","userName":"ann"}"#),
    ])
    .await;
    let target = client(&format!("{}/", script.base), TOKEN);
    let created = target
        .write(&Request::create(json!({"userName": "ann"})))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(created.id, "u-1");
    assert_eq!(target.requests(), 3);
    let seen = script.seen();
    assert_eq!(seen.len(), 3);
    let last = &seen[2];
    assert_eq!(request_line(last), "POST /scim/v2/Users HTTP/1.1");
    let head = last.to_ascii_lowercase();
    assert!(head.contains(&format!(
        "authorization: bearer {}",
        TOKEN.to_ascii_lowercase()
    )));
    assert!(
        head.contains("content-type: application/scim+json\r\n"),
        "{last}"
    );
    assert!(
        head.contains("accept: application/scim+json, application/json\r\n"),
        "{last}"
    );
    assert!(last.ends_with(r#"{"userName":"ann"}"#), "{last}");
}

#[tokio::test]
async fn spent_retries_stop_the_push_without_the_token_in_the_message() {
    let script = Scripted::start(vec![answer(503, "", &format!("Bearer {TOKEN} broke"))]).await;
    let target = client(&script.base, TOKEN);
    match target.write(&Request::delete("u-1")).await {
        Err(TargetError::Unreachable(message)) => {
            assert!(message.contains("503"), "{message}");
            assert!(!message.contains(TOKEN), "{message}");
        }
        other => panic!("unreachable expected: {other:?}"),
    }
    assert_eq!(target.requests(), u64::from(FAST.attempts));
    assert!(
        script
            .seen()
            .iter()
            .all(|r| !r.to_ascii_lowercase().contains("content-type")),
        "no body, no Content-Type"
    );
}

#[tokio::test]
async fn a_refused_token_or_a_redirect_stops_the_push() {
    for status in [401, 403] {
        let script = Scripted::start(vec![scim_error(status, "", "nope")]).await;
        let target = client(&script.base, TOKEN);
        match target.find(&Request::find_eq("userName", "ann")).await {
            Err(TargetError::Unreachable(message)) => {
                assert!(message.contains(&status.to_string()), "{message}");
                assert!(message.contains("bearer token"), "{message}");
            }
            other => panic!("{status}: unreachable expected: {other:?}"),
        }
        assert_eq!(target.requests(), 1, "{status} is not retried");
    }
    let script = Scripted::start(vec![answer(
        302,
        "Location: https://login.example/\r\n",
        "",
    )])
    .await;
    let target = client(&script.base, TOKEN);
    assert!(matches!(
        target.write(&Request::delete("u-1")).await,
        Err(TargetError::Unreachable(_))
    ));
}

#[tokio::test]
async fn refusals_carry_the_scim_error_or_a_short_text() {
    let script = Scripted::start(vec![
        scim_error(409, "uniqueness", "userName ann is taken"),
        answer(400, "", "<!DOCTYPE html><html><body>Bad</body></html>"),
        answer(422, "", &format!("token {TOKEN} is not welcome here")),
        answer(404, "", ""),
        answer(404, "", ""),
    ])
    .await;
    let target = client(&script.base, TOKEN);
    let (status, scim_type, detail) = refusal(target.write(&Request::create(user("ann"))).await);
    assert_eq!(
        (status, scim_type.as_deref(), detail.as_str()),
        (409, Some("uniqueness"), "userName ann is taken")
    );
    let (status, scim_type, detail) = refusal(target.write(&Request::create(user("bob"))).await);
    assert_eq!((status, scim_type), (400, None));
    assert!(detail.contains("HTML page"), "{detail}");
    let refused = target.write(&Request::replace("u-1", user("cy"))).await;
    let Err(TargetError::Refused(r)) = &refused else {
        panic!("{refused:?}");
    };
    assert_eq!(r.status, 422);
    assert!(!r.detail.contains(TOKEN), "{}", r.detail);
    assert!(!refused.unwrap_err().to_string().contains(TOKEN));
    let (status, _, detail) = refusal(
        target
            .write(&Request::patch(
                "u-1",
                json!([{"op": "remove", "path": "title"}]),
            ))
            .await,
    );
    assert_eq!((status, detail.as_str()), (404, "(an empty answer)"));
    assert_eq!(
        target.write(&Request::delete("u-1")).await.unwrap(),
        None,
        "a DELETE answered 404 counts as done"
    );
    assert_eq!(target.requests(), 5, "4xx answers are not retried");
}

#[tokio::test]
async fn answers_that_are_not_scim_are_protocol_errors() {
    let script = Scripted::start(vec![
        answer(201, "", "created!"),
        answer(201, "", r#"{"userName":"ann"}"#),
        answer(201, "", ""),
        answer(200, "", r#"{"Resources": {"id": "x"}}"#),
    ])
    .await;
    let target = client(&script.base, TOKEN);
    for what in ["not JSON", "without an id", "without the created resource"] {
        match target.write(&Request::create(user("ann"))).await {
            Err(TargetError::Protocol(message)) => assert!(message.contains(what), "{message}"),
            other => panic!("{what}: a protocol error expected: {other:?}"),
        }
    }
    assert!(matches!(
        target.find(&Request::find_eq("userName", "ann")).await,
        Err(TargetError::Protocol(_))
    ));
}

#[tokio::test]
async fn patch_and_replace_answers_with_or_without_the_resource() {
    let script = Scripted::start(vec![
        answer(204, "", ""),
        answer(200, "", r#"{"id":"u-1","active":false}"#),
        answer(200, "", r#"{"id":"u-1","userName":"ann"}"#),
        answer(204, "", ""),
    ])
    .await;
    let target = client(&script.base, TOKEN);
    let ops = json!([{"op": "replace", "path": "active", "value": false}]);
    assert_eq!(
        target
            .write(&Request::patch("u 1", ops.clone()))
            .await
            .unwrap(),
        None
    );
    let patched = target
        .write(&Request::patch("u 1", ops))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (patched.id.as_str(), &patched.resource["active"]),
        ("u-1", &json!(false))
    );
    let replaced = target
        .write(&Request::replace("u-1", user("ann")))
        .await
        .unwrap();
    assert_eq!(replaced.map(|u| u.id).as_deref(), Some("u-1"));
    assert_eq!(
        target
            .write(&Request::replace("u-1", user("ann")))
            .await
            .unwrap(),
        None
    );
    let seen = script.seen();
    assert_eq!(
        request_line(&seen[0]),
        "PATCH /scim/v2/Users/u%201 HTTP/1.1"
    );
    assert!(seen[0].contains(r#""Operations""#), "{}", seen[0]);
    assert_eq!(request_line(&seen[2]), "PUT /scim/v2/Users/u-1 HTTP/1.1");
}

#[tokio::test]
async fn find_follows_start_index_paging() {
    let total = FIND_PAGE_SIZE + 50;
    let script = Scripted::start(vec![
        list(total, (0..FIND_PAGE_SIZE).map(|i| format!("u{i}"))),
        list(total, (FIND_PAGE_SIZE..total).map(|i| format!("u{i}"))),
    ])
    .await;
    let target = client(&script.base, TOKEN);
    let found = target
        .find(&Request::find_eq("externalId", "x"))
        .await
        .unwrap();
    assert_eq!(found.len(), total);
    assert_eq!(found[total - 1].id, format!("u{}", total - 1));
    let seen = script.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        request_line(&seen[0]),
        format!(
            "GET /scim/v2/Users?filter=externalId%20eq%20%22x%22&startIndex=1&count={FIND_PAGE_SIZE} HTTP/1.1"
        )
    );
    assert!(
        request_line(&seen[1]).contains(&format!("&startIndex={}&", FIND_PAGE_SIZE + 1)),
        "{}",
        seen[1]
    );
}

#[tokio::test]
async fn find_stops_when_the_target_ignores_start_index_or_has_too_many() {
    let script = Scripted::start(vec![list(
        1000,
        (0..FIND_PAGE_SIZE).map(|i| format!("u{i}")),
    )])
    .await;
    let target = client(&script.base, TOKEN);
    let found = target
        .find(&Request::find_eq("externalId", "x"))
        .await
        .unwrap();
    assert_eq!(found.len(), FIND_PAGE_SIZE, "the same page twice: stop");
    assert_eq!(target.requests(), 2);

    let total = FIND_PAGE_SIZE * FIND_MAX_PAGES + 1;
    let pages = (0..FIND_MAX_PAGES)
        .map(|p| list(total, (0..FIND_PAGE_SIZE).map(move |i| format!("p{p}-{i}"))))
        .collect();
    let script = Scripted::start(pages).await;
    let target = client(&script.base, TOKEN);
    match target.find(&Request::find_eq("externalId", "x")).await {
        Err(TargetError::Protocol(message)) => {
            assert!(message.contains("more than"), "{message}");
        }
        other => panic!("a protocol error expected: {other:?}"),
    }
    assert_eq!(target.requests(), FIND_MAX_PAGES as u64);

    let script = Scripted::start(vec![answer(
        200,
        "",
        r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":0}"#,
    )])
    .await;
    let found = client(&script.base, TOKEN)
        .find(&Request::find_eq("userName", "nobody"))
        .await
        .unwrap();
    assert!(found.is_empty(), "no Resources member: none found");
}

#[test]
fn settings_are_checked_without_showing_the_token() {
    let make = |base: &str, token: &str| {
        ScimTarget::new(
            base,
            token,
            AddressPolicy::PUBLIC_ONLY,
            Duration::from_secs(1),
            FAST,
        )
    };
    assert!(make("https://helpdesk.example/scim/v2/", TOKEN).is_ok());
    for (base, token, expect) in [
        ("https://helpdesk.example/scim/v2", "", "empty"),
        ("https://helpdesk.example/scim/v2", "a\nb", "line break"),
        (
            "https://user:pw@helpdesk.example/scim/v2",
            TOKEN,
            "password",
        ),
        ("http://169.254.169.254/scim/v2", TOKEN, "link-local"),
        ("http://127.0.0.1:8080/scim/v2", TOKEN, "loopback"),
        ("https://helpdesk.example/scim/v2?tenant=1", TOKEN, "query"),
        ("ftp://helpdesk.example/scim", TOKEN, "https://"),
        ("not a url", TOKEN, "not a URL"),
    ] {
        match make(base, token) {
            Err(IdpError::Config(message)) => {
                assert!(message.contains(expect), "{base}: {message}");
                assert!(!message.contains(TOKEN), "{message}");
            }
            other => panic!("{base}: a settings error expected: {other:?}"),
        }
    }
}
