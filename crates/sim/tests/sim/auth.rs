//! Each auth mode, the happy path and the refusals: OAuth 2 client credentials (Basic and
//! form), OAuth 1.0a HMAC-SHA256 and HMAC-SHA1 (signed with the project's own signer), none.

use std::time::{SystemTime, UNIX_EPOCH};

use oneroster::oauth1::{SignRequest, SignatureMethod, authorization_header};
use serde_json::Value;
use sim::{AuthMode, RunningSim, SimConfig, Version};

use super::helpers::{district, http, start};

fn config(auth: AuthMode, version: Version) -> SimConfig {
    SimConfig {
        district: district(300, 3, 0),
        version,
        auth,
        client_id: "site-123".to_owned(),
        client_secret: "s3cret".to_owned(),
        ..SimConfig::default()
    }
}

async fn token_response(
    url: &str,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let body: Vec<String> = form.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut request = http()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.join("&"));
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (
        status,
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap(),
    )
}

async fn api_status(sim: &RunningSim, authorization: Option<&str>) -> (u16, Value, Option<String>) {
    let mut request = http().get(format!("{}/users?limit=2", sim.base_url()));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (
        status,
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap(),
        challenge,
    )
}

#[tokio::test]
async fn oauth2_client_credentials() {
    for version in [Version::V1p1, Version::V1p2] {
        let served = start(config(AuthMode::OAuth2, version)).await;
        let token_url = served.token_url().unwrap().to_owned();
        assert!(token_url.ends_with("/campus/oauth2/token?appName=district"));

        let grant = [("grant_type", "client_credentials")];
        let (status, basic) =
            token_response(&token_url, Some(("site-123", "s3cret")), &grant).await;
        assert_eq!(status, 200, "{basic}");
        assert_eq!(basic["token_type"], "Bearer");
        assert_eq!(basic["expires_in"], 3600);
        let token = basic["access_token"].as_str().unwrap();
        let (status, body, _) = api_status(&served, Some(&format!("Bearer {token}"))).await;
        assert_eq!(status, 200);
        assert_eq!(body["users"].as_array().unwrap().len(), 2);

        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", "site-123"),
            ("client_secret", "s3cret"),
        ];
        let (status, by_form) = token_response(&token_url, None, &form).await;
        assert_eq!(status, 200);
        assert_ne!(by_form["access_token"], basic["access_token"]);

        let (status, refused) =
            token_response(&token_url, Some(("site-123", "wrong")), &grant).await;
        assert_eq!(
            (status, refused["error"].as_str()),
            (401, Some("invalid_client"))
        );
        let (status, _) =
            token_response(&token_url, Some(("someone-else", "s3cret")), &grant).await;
        assert_eq!(status, 401);
        let no_app = token_url.split('?').next().unwrap().to_owned();
        let (status, refused) = token_response(&no_app, Some(("site-123", "s3cret")), &grant).await;
        assert_eq!(
            status, 401,
            "Campus refuses a token URL without appName: {refused}"
        );
        let (status, _) = token_response(
            &format!("{no_app}?appName=other"),
            Some(("site-123", "s3cret")),
            &grant,
        )
        .await;
        assert_eq!(status, 401);
        let (status, refused) = token_response(
            &token_url,
            Some(("site-123", "s3cret")),
            &[("grant_type", "password")],
        )
        .await;
        assert_eq!(
            (status, refused["error"].as_str()),
            (400, Some("unsupported_grant_type"))
        );

        let (status, body, challenge) = api_status(&served, None).await;
        assert_eq!(status, 401);
        assert!(challenge.unwrap().starts_with("Bearer"));
        let minor = match version {
            Version::V1p1 => body["statusInfoSet"][0]["imsx_codeMinor"].clone(),
            Version::V1p2 => {
                body["imsx_CodeMinor"]["imsx_codeMinorField"][0]["imsx_codeMinorFieldValue"].clone()
            }
        };
        assert_eq!(minor, "unauthorisedrequest");
        let (status, _, _) = api_status(&served, Some("Bearer made-up")).await;
        assert_eq!(status, 401);
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

struct Signed<'a> {
    key: &'a str,
    secret: &'a str,
    method: SignatureMethod,
    nonce: &'a str,
    timestamp: u64,
}

async fn signed_get(sim: &RunningSim, path_and_query: &str, signed: &Signed<'_>) -> u16 {
    let url = format!("{}{path_and_query}", sim.base_url());
    let header = authorization_header(&SignRequest {
        method: "GET",
        url: &url,
        consumer_key: signed.key,
        consumer_secret: signed.secret,
        signature_method: signed.method,
        nonce: signed.nonce,
        timestamp: signed.timestamp,
    });
    let response = http()
        .get(&url)
        .header("authorization", header)
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

#[tokio::test]
async fn oauth1_signatures_and_refusals() {
    for (mode, method, other) in [
        (
            AuthMode::OAuth1Sha256,
            SignatureMethod::HmacSha256,
            SignatureMethod::HmacSha1,
        ),
        (
            AuthMode::OAuth1Sha1,
            SignatureMethod::HmacSha1,
            SignatureMethod::HmacSha256,
        ),
    ] {
        let served = start(config(mode, Version::V1p1)).await;
        assert_eq!(served.token_url(), None);
        // One timestamp for every request: a nonce is unique per timestamp (RFC 5849
        // 3.3), so a replay must carry the same one, even across a second's turn.
        let at = now();
        let good = |nonce: &'static str| Signed {
            key: "site-123",
            secret: "s3cret",
            method,
            nonce,
            timestamp: at,
        };
        // A query with characters that must be encoded, so the signature covers it exactly.
        let query = "/users?limit=3&filter=role%3D%27teacher%27%20OR%20role%3D%27aide%27";
        assert_eq!(
            signed_get(&served, query, &good("n-1")).await,
            200,
            "{mode:?}"
        );
        assert_eq!(signed_get(&served, "/orgs", &good("n-2")).await, 200);

        assert_eq!(
            signed_get(&served, "/orgs", &good("n-2")).await,
            401,
            "replayed nonce"
        );
        let wrong_secret = Signed {
            secret: "guess",
            ..good("n-3")
        };
        assert_eq!(
            signed_get(&served, "/orgs", &wrong_secret).await,
            401,
            "bad signature"
        );
        let unknown = Signed {
            key: "nobody",
            ..good("n-4")
        };
        assert_eq!(
            signed_get(&served, "/orgs", &unknown).await,
            401,
            "unknown key"
        );
        let stale = Signed {
            timestamp: now() - 11 * 60,
            ..good("n-5")
        };
        assert_eq!(
            signed_get(&served, "/orgs", &stale).await,
            401,
            "stale timestamp"
        );
        let future = Signed {
            timestamp: now() + 11 * 60,
            ..good("n-6")
        };
        assert_eq!(
            signed_get(&served, "/orgs", &future).await,
            401,
            "timestamp from the future"
        );
        let slightly_off = Signed {
            timestamp: now() - 5 * 60,
            ..good("n-7")
        };
        assert_eq!(
            signed_get(&served, "/orgs", &slightly_off).await,
            200,
            "within ±10 minutes"
        );
        let other_method = Signed {
            method: other,
            ..good("n-8")
        };
        assert_eq!(
            signed_get(&served, "/orgs", &other_method).await,
            401,
            "the other HMAC"
        );
        let (status, _, challenge) = api_status(&served, None).await;
        assert_eq!(status, 401);
        assert!(challenge.unwrap().starts_with("OAuth"));
        let (status, _, _) = api_status(&served, Some("OAuth garbage")).await;
        assert_eq!(status, 401);

        // Signing a different query than the one sent fails.
        let url = format!("{}/users?limit=3", served.base_url());
        let header = authorization_header(&SignRequest {
            method: "GET",
            url: &url,
            consumer_key: "site-123",
            consumer_secret: "s3cret",
            signature_method: method,
            nonce: "n-9",
            timestamp: now(),
        });
        let tampered = http()
            .get(format!("{}/users?limit=4", served.base_url()))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(
            tampered.status().as_u16(),
            401,
            "query changed after signing"
        );
    }
}

#[tokio::test]
async fn no_auth_mode_needs_no_credentials() {
    let served = start(config(AuthMode::None, Version::V1p2)).await;
    let (status, body, _) = api_status(&served, None).await;
    assert_eq!(status, 200);
    assert_eq!(body["users"].as_array().unwrap().len(), 2);
}
