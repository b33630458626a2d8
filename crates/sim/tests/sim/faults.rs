//! Every `--faults` key makes the provider misbehave as documented in docs/sim.md.

use std::time::{Duration, Instant};

use sim::{AuthMode, Faults, RunningSim, SimConfig, Version};

use super::helpers::{by_id, district, get, http, open_config, pull, start};

async fn with_faults(spec: &str, version: Version) -> RunningSim {
    let mut config: SimConfig = open_config(800, 0, version);
    config.faults = spec.parse::<Faults>().unwrap();
    start(config).await
}

#[tokio::test]
async fn latency_delays_every_response() {
    let served = with_faults("latency=300ms", Version::V1p1).await;
    let started = Instant::now();
    assert_eq!(get(&served, "/orgs").await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn rate429_answers_too_many_requests_with_retry_after() {
    let served = with_faults("rate429=1", Version::V1p1).await;
    let page = get(&served, "/users").await;
    assert_eq!(page.status, 429);
    assert_eq!(page.headers.get("retry-after").unwrap(), "1");
    assert_eq!(
        page.json()["statusInfoSet"][0]["imsx_codeMinor"],
        "server_busy"
    );

    // A share of requests, the same ones for the same seed.
    let statuses = |sim: RunningSim| async move {
        let mut out = Vec::new();
        for _ in 0..60 {
            out.push(get(&sim, "/orgs").await.status);
        }
        out
    };
    let first = statuses(with_faults("rate429=0.3", Version::V1p1).await).await;
    let second = statuses(with_faults("rate429=0.3", Version::V1p1).await).await;
    assert_eq!(first, second, "faults are drawn from the seed");
    let busy = first.iter().filter(|s| **s == 429).count();
    assert!((8..=30).contains(&busy), "{busy} of 60");
    assert!(first.iter().all(|s| *s == 429 || *s == 200));
}

#[tokio::test]
async fn error500_answers_with_an_imsx_body() {
    let served = with_faults("error500=1", Version::V1p2).await;
    let page = get(&served, "/classes").await;
    assert_eq!(page.status, 500);
    let body = page.json();
    assert_eq!(body["imsx_codeMajor"], "failure");
    assert_eq!(
        body["imsx_CodeMinor"]["imsx_codeMinorField"][0]["imsx_codeMinorFieldValue"],
        "internal_server_error"
    );
}

#[tokio::test]
async fn timeout_hangs_until_the_client_gives_up() {
    let served = with_faults("timeout=1", Version::V1p1).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(700))
        .build()
        .unwrap();
    let started = Instant::now();
    let outcome = client
        .get(format!("{}/users", served.base_url()))
        .send()
        .await;
    assert!(outcome.unwrap_err().is_timeout());
    assert!(started.elapsed() >= Duration::from_millis(700));
    // Stopping the server ends the hung request too.
    tokio::time::timeout(Duration::from_secs(10), served.stop())
        .await
        .unwrap();
}

#[tokio::test]
async fn truncate_cuts_a_200_body_mid_json() {
    let served = with_faults("truncate=1", Version::V1p1).await;
    let page = get(&served, "/users?limit=50").await;
    assert_eq!(page.status, 200);
    assert!(page.body.starts_with(b"{\"users\":["));
    assert!(serde_json::from_slice::<serde_json::Value>(&page.body).is_err());
    let whole = get(&with_faults("", Version::V1p1).await, "/users?limit=50").await;
    assert_eq!(page.body.len(), whole.body.len() / 2);
}

#[tokio::test]
async fn token_ttl_expires_tokens() {
    let mut config = SimConfig {
        district: district(200, 1, 0),
        auth: AuthMode::OAuth2,
        ..SimConfig::default()
    };
    config.faults = "token_ttl=1s".parse().unwrap();
    let served = start(config).await;
    let response = http()
        .post(served.token_url().unwrap())
        .basic_auth(sim::DEFAULT_CLIENT_ID, Some(sim::DEFAULT_CLIENT_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    let token: serde_json::Value =
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(token["expires_in"], 1);
    let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());
    let call = || {
        http()
            .get(format!("{}/orgs", served.base_url()))
            .header("authorization", bearer.clone())
            .send()
    };
    assert_eq!(call().await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    assert_eq!(call().await.unwrap().status(), 401);
}

#[tokio::test]
async fn cap_page_silently_caps_the_page_size() {
    let served = with_faults("cap_page=25", Version::V1p1).await;
    let page = get(&served, "/users?limit=100").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.json()["users"].as_array().unwrap().len(), 25);
    assert_eq!(page.total(), Some(served.counts().users as usize));
}

#[tokio::test]
async fn drop_school_leaves_one_schools_people_out() {
    let served = with_faults("drop_school=org-2", Version::V1p2).await;
    let full = start(open_config(800, 0, Version::V1p2)).await;
    let all = by_id(pull(&full, "users", "users", "").await);
    let served_users = by_id(pull(&served, "users", "users", "").await);
    let at_school: Vec<&String> = all
        .iter()
        .filter(|(_, u)| u["primaryOrg"]["sourcedId"] == "org-2")
        .map(|(id, _)| id)
        .collect();
    assert!(!at_school.is_empty());
    assert_eq!(served_users.len(), all.len() - at_school.len());
    assert!(at_school.iter().all(|id| !served_users.contains_key(*id)));
    assert_eq!(
        get(&served, &format!("/users/{}", at_school[0]))
            .await
            .status,
        404
    );
    assert_eq!(
        get(&served, "/schools/org-2").await.status,
        200,
        "the school itself is still there"
    );
    let students = pull(&served, "schools/org-2/students", "users", "").await;
    assert!(students.is_empty());
}

#[tokio::test]
async fn empty_users_returns_an_empty_success() {
    let served = with_faults("empty_users=1", Version::V1p1).await;
    for endpoint in ["users", "students", "teachers"] {
        let page = get(&served, &format!("/{endpoint}")).await;
        assert_eq!(page.status, 200);
        assert_eq!(
            page.json()["users"].as_array().unwrap().len(),
            0,
            "{endpoint}"
        );
        assert_eq!(page.total(), Some(0));
    }
    assert!(
        get(&served, "/enrollments?limit=1").await.total().unwrap() > 0,
        "other collections still served"
    );
}

#[tokio::test]
async fn total_drift_changes_the_total_during_a_pull() {
    let served = with_faults("total_drift=1", Version::V1p1).await;
    let truth = served.counts().users as usize;
    let totals: Vec<usize> = {
        let mut out = Vec::new();
        for offset in [0, 100, 200] {
            out.push(
                get(&served, &format!("/users?limit=100&offset={offset}"))
                    .await
                    .total()
                    .unwrap(),
            );
        }
        out
    };
    assert_eq!(totals, vec![truth, truth + 1, truth + 2]);
}
