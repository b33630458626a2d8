//! The simulated help desk answers SCIM pushes as RFC 7644 says, and its faults
//! (throttling, failing after n requests) and request log work as documented.

use std::time::Duration;

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use sim::helpdesk::Helpdesk;

use super::helpers::http;

const TOKEN: &str = "helpdesk-secret";

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

/// Sends `body` (if any) with `token` (if any) to `path` under the SCIM base URL.
async fn call_as(
    desk: &Helpdesk,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Answer {
    let mut request = http().request(method, format!("{}{path}", desk.url()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/scim+json")
            .body(body.to_string());
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
    };
    Answer {
        status,
        headers,
        body,
    }
}

async fn call(desk: &Helpdesk, method: Method, path: &str, body: Option<Value>) -> Answer {
    call_as(desk, Some(TOKEN), method, path, body).await
}

fn ann() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "ann.lee@district.example",
        "externalId": "S100",
        "name": {"givenName": "Ann", "familyName": "Lee"},
        "emails": [{"value": "ann.lee@district.example", "type": "work", "primary": true}],
        "active": true,
    })
}

fn bob() -> Value {
    json!({
        "userName": "bob.ray@district.example",
        "externalId": "T200",
        "emails": [
            {"value": "bob.home@mail.example", "type": "home"},
            {"value": "bob.ray@district.example", "type": "work"},
        ],
        "active": true,
    })
}

fn assert_scim_error(answer: &Answer, status: u16, scim_type: Option<&str>) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(
        answer.body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
    );
    assert_eq!(answer.body["status"], status.to_string());
    assert_eq!(
        answer.body["scimType"].as_str(),
        scim_type,
        "{}",
        answer.body
    );
}

fn ids(list: &Value) -> Vec<String> {
    list["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn creates_users_with_an_id_and_meta() {
    let desk = Helpdesk::start(TOKEN).await.unwrap();
    assert!(desk.url().starts_with("http://127.0.0.1:"));
    assert!(desk.url().ends_with("/scim/v2"));

    let created = call(&desk, Method::POST, "/Users", Some(ann())).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        created.headers.get("content-type").unwrap(),
        "application/scim+json"
    );
    let user = &created.body;
    let id = user["id"].as_str().unwrap();
    assert!(!id.is_empty());
    assert_eq!(user["userName"], "ann.lee@district.example");
    assert_eq!(user["name"]["givenName"], "Ann");
    assert_eq!(user["meta"]["resourceType"], "User");
    assert_eq!(user["meta"]["created"], user["meta"]["lastModified"]);
    assert!(
        user["meta"]["version"]
            .as_str()
            .unwrap()
            .starts_with("W/\"")
    );
    let location = format!("{}/Users/{id}", desk.url());
    assert_eq!(user["meta"]["location"], location.as_str());
    assert_eq!(created.headers.get("location").unwrap(), location.as_str());

    let fetched = call(&desk, Method::GET, &format!("/Users/{id}"), None).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(&fetched.body, user);
    assert_eq!(desk.users(), vec![user.clone()]);

    // A client-sent id is not kept; a user without schemas gets the core one.
    let mut bob = bob();
    bob["id"] = "mine".into();
    let second = call(&desk, Method::POST, "/Users", Some(bob)).await;
    assert_eq!(second.status, 201);
    assert_ne!(second.body["id"], "mine");
    assert_eq!(
        second.body["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:User"])
    );
    let held: Vec<Value> = desk.users().iter().map(|u| u["id"].clone()).collect();
    assert_eq!(held, [user["id"].clone(), second.body["id"].clone()]);
}

#[tokio::test]
async fn refuses_a_taken_user_name_ignoring_case_and_a_missing_one() {
    let desk = Helpdesk::start(TOKEN).await.unwrap();
    assert_eq!(
        call(&desk, Method::POST, "/Users", Some(ann()))
            .await
            .status,
        201
    );

    let mut shouting = bob();
    shouting["userName"] = "ANN.Lee@District.Example".into();
    let taken = call(&desk, Method::POST, "/Users", Some(shouting)).await;
    assert_scim_error(&taken, 409, Some("uniqueness"));

    let mut nameless = bob();
    nameless.as_object_mut().unwrap().remove("userName");
    let missing = call(&desk, Method::POST, "/Users", Some(nameless)).await;
    assert_scim_error(&missing, 400, Some("invalidValue"));

    let garbage = http()
        .post(format!("{}/Users", desk.url()))
        .bearer_auth(TOKEN)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status().as_u16(), 400);
    let body: Value = serde_json::from_slice(&garbage.bytes().await.unwrap()).unwrap();
    assert_eq!(body["scimType"], "invalidSyntax");

    assert_eq!(desk.users().len(), 1);
}

#[tokio::test]
async fn finds_users_by_each_filter_and_pages() {
    let desk = Helpdesk::start(TOKEN).await.unwrap();
    let ann_id = desk.insert(ann());
    let bob_id = desk.insert(bob());
    let find = |filter: &str| {
        let query = format!("/Users?filter={}", percent_encode(filter));
        let desk = &desk;
        async move { call(desk, Method::GET, &query, None).await }
    };

    let cases = [
        (
            r#"userName eq "ANN.LEE@district.example""#,
            vec![ann_id.clone()],
        ),
        (r#"externalId eq "T200""#, vec![bob_id.clone()]),
        (r#"externalId eq "t200""#, vec![]),
        (
            r#"emails.value eq "bob.home@mail.example""#,
            vec![bob_id.clone()],
        ),
        (
            r#"emails[type eq "work"].value eq "bob.ray@district.example""#,
            vec![bob_id.clone()],
        ),
        (
            r#"emails[type eq "work"].value eq "bob.home@mail.example""#,
            vec![],
        ),
        (r#"active eq true"#, vec![ann_id.clone(), bob_id.clone()]),
    ];
    for (filter, want) in cases {
        let list = find(filter).await;
        assert_eq!(list.status, 200, "{filter}: {}", list.body);
        assert_eq!(
            list.body["schemas"],
            json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
        );
        assert_eq!(list.body["totalResults"], want.len(), "{filter}");
        assert_eq!(ids(&list.body), want, "{filter}");
    }

    let bad = find("userName eq").await;
    assert_scim_error(&bad, 400, Some("invalidFilter"));

    let all = call(&desk, Method::GET, "/Users", None).await;
    assert_eq!(all.body["totalResults"], 2);
    assert_eq!(ids(&all.body), [ann_id.clone(), bob_id.clone()]);
    let second = call(&desk, Method::GET, "/Users?startIndex=2&count=1", None).await;
    assert_eq!(second.body["totalResults"], 2);
    assert_eq!(second.body["startIndex"], 2);
    assert_eq!(second.body["itemsPerPage"], 1);
    assert_eq!(ids(&second.body), [bob_id]);
    let bad_count = call(&desk, Method::GET, "/Users?count=many", None).await;
    assert_scim_error(&bad_count, 400, Some("invalidValue"));

    let missing = call(&desk, Method::GET, "/Users/no-such-id", None).await;
    assert_scim_error(&missing, 404, None);
}

/// Percent-encodes a query value (everything but unreserved characters).
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn patch_deactivates_and_renames() {
    let desk = Helpdesk::start(TOKEN).await.unwrap();
    let id = desk.insert(ann());
    let before = desk.users()[0].clone();

    let patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "replace", "path": "name.familyName", "value": "Lee-Park"},
            {"op": "replace", "value": {"name.givenName": "Anne"}},
        ],
    });
    let patched = call(&desk, Method::PATCH, &format!("/Users/{id}"), Some(patch)).await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let user = &patched.body;
    assert_eq!(user["active"], false);
    assert_eq!(
        user["name"],
        json!({"givenName": "Anne", "familyName": "Lee-Park"})
    );
    assert_eq!(user["id"], id.as_str());
    assert_eq!(user["userName"], before["userName"]);
    assert_eq!(user["meta"]["created"], before["meta"]["created"]);
    assert_ne!(user["meta"]["lastModified"], before["meta"]["lastModified"]);
    assert_ne!(user["meta"]["version"], before["meta"]["version"]);
    assert_eq!(desk.users(), vec![user.clone()]);

    let bad_op = json!({"Operations": [{"op": "frobnicate", "path": "active", "value": true}]});
    let refused = call(&desk, Method::PATCH, &format!("/Users/{id}"), Some(bad_op)).await;
    assert_scim_error(&refused, 400, Some("invalidSyntax"));
    assert_eq!(
        desk.users(),
        vec![user.clone()],
        "a refused PATCH changes nothing"
    );

    let other = desk.insert(bob());
    let rename = json!({"Operations": [{"op": "replace", "path": "userName", "value": "Ann.Lee@district.example"}]});
    let clash = call(
        &desk,
        Method::PATCH,
        &format!("/Users/{other}"),
        Some(rename),
    )
    .await;
    assert_scim_error(&clash, 409, Some("uniqueness"));

    let deactivate = json!({"Operations": [{"op": "replace", "path": "active", "value": false}]});
    let unknown = call(&desk, Method::PATCH, "/Users/no-such-id", Some(deactivate)).await;
    assert_scim_error(&unknown, 404, None);
}

#[tokio::test]
async fn put_replaces_keeping_id_and_created() {
    let desk = Helpdesk::start(TOKEN).await.unwrap();
    let id = desk.insert(ann());
    desk.insert(bob());
    let before = desk.users()[0].clone();

    let replacement = json!({
        "userName": "Ann.Lee@district.example",
        "externalId": "S100",
        "displayName": "Ann Lee",
        "active": false,
    });
    let put = call(
        &desk,
        Method::PUT,
        &format!("/Users/{id}"),
        Some(replacement),
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let user = &put.body;
    assert_eq!(user["id"], id.as_str());
    assert_eq!(
        user["userName"], "Ann.Lee@district.example",
        "its own name in another case is fine"
    );
    assert_eq!(user["displayName"], "Ann Lee");
    assert!(
        user.get("name").is_none(),
        "PUT replaces the whole resource"
    );
    assert!(user.get("emails").is_none());
    assert_eq!(user["meta"]["created"], before["meta"]["created"]);
    assert_ne!(user["meta"]["lastModified"], before["meta"]["lastModified"]);
    assert_eq!(desk.users()[0], *user);

    let taken = json!({"userName": "BOB.RAY@district.example"});
    let clash = call(&desk, Method::PUT, &format!("/Users/{id}"), Some(taken)).await;
    assert_scim_error(&clash, 409, Some("uniqueness"));
    let nameless = json!({"displayName": "Nobody"});
    let missing = call(&desk, Method::PUT, &format!("/Users/{id}"), Some(nameless)).await;
    assert_scim_error(&missing, 400, Some("invalidValue"));
    let unknown = call(&desk, Method::PUT, "/Users/no-such-id", Some(ann())).await;
    assert_scim_error(&unknown, 404, None);
    assert_eq!(desk.users()[0], *user);
}

#[tokio::test]
async fn delete_then_not_found() {
    let desk = Helpdesk::start(TOKEN).await.unwrap();
    let id = desk.insert(ann());
    let keep = desk.insert(bob());

    let deleted = call(&desk, Method::DELETE, &format!("/Users/{id}"), None).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(deleted.body, Value::Null);
    let gone = call(&desk, Method::GET, &format!("/Users/{id}"), None).await;
    assert_scim_error(&gone, 404, None);
    let again = call(&desk, Method::DELETE, &format!("/Users/{id}"), None).await;
    assert_scim_error(&again, 404, None);
    let held: Vec<Value> = desk.users().iter().map(|u| u["id"].clone()).collect();
    assert_eq!(held, [Value::from(keep)]);
}

#[tokio::test]
async fn refuses_requests_without_the_right_token() {
    let desk = Helpdesk::start(TOKEN).await.unwrap();
    desk.insert(ann());
    for token in [None, Some("wrong-token")] {
        let refused = call_as(&desk, token, Method::GET, "/Users", None).await;
        assert_scim_error(&refused, 401, None);
        assert!(refused.headers.get("www-authenticate").is_some());
        let create = call_as(&desk, token, Method::POST, "/Users", Some(bob())).await;
        assert_scim_error(&create, 401, None);
    }
    assert_eq!(desk.users().len(), 1);
    assert_eq!(call(&desk, Method::GET, "/Users", None).await.status, 200);
}

#[tokio::test]
async fn throttles_exactly_n_requests_with_retry_after() {
    let desk = Helpdesk::start(TOKEN).await.unwrap();
    desk.throttle(3, 7);
    for _ in 0..3 {
        let busy = call(&desk, Method::POST, "/Users", Some(ann())).await;
        assert_scim_error(&busy, 429, None);
        assert_eq!(busy.headers.get("retry-after").unwrap(), "7");
    }
    assert!(desk.users().is_empty(), "throttled requests change nothing");
    let served = call(&desk, Method::POST, "/Users", Some(ann())).await;
    assert_eq!(served.status, 201);
    assert!(served.headers.get("retry-after").is_none());
    assert_eq!(call(&desk, Method::GET, "/Users", None).await.status, 200);
    assert_eq!(desk.requests().len(), 5);
}

#[tokio::test]
async fn fails_after_n_requests_until_healed() {
    let desk = Helpdesk::start(TOKEN).await.unwrap();
    desk.fail_after(2);
    assert_eq!(
        call(&desk, Method::POST, "/Users", Some(ann()))
            .await
            .status,
        201
    );
    assert_eq!(call(&desk, Method::GET, "/Users", None).await.status, 200);
    for _ in 0..3 {
        let down = call(&desk, Method::POST, "/Users", Some(bob())).await;
        assert_scim_error(&down, 503, None);
        assert!(down.headers.get("retry-after").is_none());
    }
    assert_eq!(desk.users().len(), 1);
    desk.heal();
    assert_eq!(
        call(&desk, Method::POST, "/Users", Some(bob()))
            .await
            .status,
        201
    );
    assert_eq!(desk.users().len(), 2);
}

#[tokio::test]
async fn logs_every_request_in_order() {
    let desk = Helpdesk::start(TOKEN).await.unwrap();
    let id = desk.insert(ann());
    call(
        &desk,
        Method::GET,
        "/Users?filter=userName%20eq%20%22x%22&count=5",
        None,
    )
    .await;
    call(&desk, Method::GET, &format!("/Users/{id}"), None).await;
    call_as(&desk, None, Method::DELETE, &format!("/Users/{id}"), None).await;
    let config = call(&desk, Method::GET, "/ServiceProviderConfig", None).await;
    assert_eq!(config.status, 200);
    assert_eq!(config.body["patch"]["supported"], true);
    assert_eq!(
        config.body["filter"],
        json!({"supported": true, "maxResults": 200})
    );
    let elsewhere = call(&desk, Method::GET, "/Groups", None).await;
    assert_scim_error(&elsewhere, 404, None);

    let expected = [
        (
            "GET",
            "/scim/v2/Users?filter=userName%20eq%20%22x%22&count=5".to_owned(),
        ),
        ("GET", format!("/scim/v2/Users/{id}")),
        ("DELETE", format!("/scim/v2/Users/{id}")),
        ("GET", "/scim/v2/ServiceProviderConfig".to_owned()),
        ("GET", "/scim/v2/Groups".to_owned()),
    ];
    let expected: Vec<(String, String)> = expected
        .into_iter()
        .map(|(m, p)| (m.to_owned(), p))
        .collect();
    assert_eq!(desk.requests(), expected);
    desk.clear_requests();
    assert!(desk.requests().is_empty());
    assert_eq!(
        desk.users().len(),
        1,
        "the unauthenticated DELETE did nothing"
    );
}

#[tokio::test]
async fn stops_serving_when_stopped() {
    let desk = Helpdesk::start(TOKEN).await.unwrap();
    let url = format!("{}/Users", desk.url());
    assert_eq!(call(&desk, Method::GET, "/Users", None).await.status, 200);
    desk.stop();
    let mut refused = false;
    for _ in 0..50 {
        if http().get(&url).bearer_auth(TOKEN).send().await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "the help desk still answers after stop");
}
