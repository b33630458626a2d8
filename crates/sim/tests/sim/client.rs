//! The project's own OneRoster client against the simulator: every collection, every auth
//! mode, both versions, CSV and REST agreeing, and the client's reading of each fault.

use std::collections::BTreeSet;

use oneroster::csv::CsvPackage;
use oneroster::oauth1::SignatureMethod;
use oneroster::rest::{Auth, CredentialStyle, Query, RestClient, RestConfig};
use oneroster::{AcademicSession, Class, Course, Enrollment, Org, Record, User};
use sim::{AuthMode, Collection, ExportOptions, Faults, RunningSim, SimConfig, Version};

use super::helpers::{district, start};

fn client_for(sim: &RunningSim, auth: AuthMode, page_size: u32) -> std::sync::Arc<RestClient> {
    let (id, secret) = (
        sim::DEFAULT_CLIENT_ID.to_owned(),
        sim::DEFAULT_CLIENT_SECRET.to_owned(),
    );
    let auth = match auth {
        AuthMode::None => Auth::None,
        AuthMode::OAuth2 => Auth::OAuth2 {
            token_url: sim.token_url().unwrap().to_owned(),
            client_id: id,
            client_secret: secret,
            scope: None,
            credentials: CredentialStyle::Basic,
        },
        AuthMode::OAuth1Sha256 | AuthMode::OAuth1Sha1 => Auth::OAuth1 {
            consumer_key: id,
            consumer_secret: secret,
            method: if auth == AuthMode::OAuth1Sha1 {
                SignatureMethod::HmacSha1
            } else {
                SignatureMethod::HmacSha256
            },
        },
    };
    let mut config = RestConfig::new(sim.base_url(), auth);
    config.page_size = page_size;
    config.retry.base_delay = std::time::Duration::from_millis(5);
    RestClient::new(config).unwrap()
}

async fn ids<T: Record + for<'de> serde::Deserialize<'de> + Send + 'static>(
    client: &std::sync::Arc<RestClient>,
) -> (BTreeSet<String>, bool) {
    let mut out = BTreeSet::new();
    let report = client
        .pull::<T>(&Query::default(), |r: T| {
            assert!(
                out.insert(r.sourced_id().to_owned()),
                "served twice: {}",
                r.sourced_id()
            );
        })
        .await
        .unwrap();
    (out, report.complete)
}

fn expected(sim: &RunningSim, c: Collection) -> BTreeSet<String> {
    sim.district().active_ids(c).into_iter().collect()
}

async fn pulls_everything(auth: AuthMode, version: Version) {
    let sim = start(SimConfig {
        district: district(600, 11, 40),
        version,
        auth,
        ..SimConfig::default()
    })
    .await;
    let client = client_for(&sim, auth, 173);
    let counts = sim.counts();
    let (orgs, c1) = ids::<Org>(&client).await;
    let (sessions, c2) = ids::<AcademicSession>(&client).await;
    let (courses, c3) = ids::<Course>(&client).await;
    let (classes, c4) = ids::<Class>(&client).await;
    let (users, c5) = ids::<User>(&client).await;
    let (enrollments, c6) = ids::<Enrollment>(&client).await;
    assert!(c1 && c2 && c3 && c4 && c5 && c6, "every pull complete");
    assert_eq!(orgs.len() as u64, counts.orgs);
    assert_eq!(sessions.len() as u64, counts.academic_sessions);
    assert_eq!(courses.len() as u64, counts.courses);
    assert_eq!(classes.len() as u64, counts.classes);
    assert_eq!(users.len() as u64, counts.users);
    assert_eq!(enrollments.len() as u64, counts.enrollments);
    assert_eq!(users, expected(&sim, Collection::Users));
    assert_eq!(enrollments, expected(&sim, Collection::Enrollments));

    // Roles come through the 1.1 and 1.2 shapes alike.
    let mut by_role = std::collections::BTreeMap::<String, u64>::new();
    client
        .pull::<User>(&Query::default(), |u| {
            *by_role
                .entry(u.primary_role().unwrap().as_str().to_owned())
                .or_default() += 1;
        })
        .await
        .unwrap();
    let want = match version {
        Version::V1p1 => &counts.users_by_role_v1p1,
        Version::V1p2 => &counts.users_by_role,
    };
    assert_eq!(&by_role, want);
}

#[tokio::test]
async fn oauth2_v11() {
    pulls_everything(AuthMode::OAuth2, Version::V1p1).await;
}

#[tokio::test]
async fn oauth2_v12() {
    pulls_everything(AuthMode::OAuth2, Version::V1p2).await;
}

#[tokio::test]
async fn oauth1_sha256_v11() {
    pulls_everything(AuthMode::OAuth1Sha256, Version::V1p1).await;
}

#[tokio::test]
async fn oauth1_sha1_v12() {
    pulls_everything(AuthMode::OAuth1Sha1, Version::V1p2).await;
}

#[tokio::test]
async fn no_auth() {
    pulls_everything(AuthMode::None, Version::V1p1).await;
}

#[tokio::test]
async fn csv_export_and_rest_hold_the_same_active_records() {
    for version in [Version::V1p1, Version::V1p2] {
        let sim = start(SimConfig {
            district: district(500, 3, 12),
            version,
            auth: AuthMode::None,
            ..SimConfig::default()
        })
        .await;
        let dir =
            std::env::temp_dir().join(format!("sim-client-{}-{version:?}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let zip = dir.join("district.zip");
        sim::export_csv(
            &sim.district(),
            &zip,
            &ExportOptions {
                version,
                delta_from: None,
            },
        )
        .unwrap();
        let mut pkg = CsvPackage::open(&zip).unwrap();
        let client = client_for(&sim, AuthMode::None, 1000);

        let mut csv_users = Vec::new();
        pkg.read::<User>(|u| csv_users.push(u)).unwrap();
        let mut rest_users = Vec::new();
        client
            .pull::<User>(&Query::default(), |u| rest_users.push(u))
            .await
            .unwrap();
        csv_users.sort_by(|a, b| a.base.sourced_id.cmp(&b.base.sourced_id));
        rest_users.sort_by(|a, b| a.base.sourced_id.cmp(&b.base.sourced_id));
        assert_eq!(csv_users.len(), rest_users.len());
        for (c, r) in csv_users.iter().zip(&rest_users) {
            assert_eq!(c.base.sourced_id, r.base.sourced_id);
            assert_eq!(
                (&c.username, &c.email, &c.given_name, &c.family_name),
                (&r.username, &r.email, &r.given_name, &r.family_name)
            );
            assert_eq!(c.primary_role(), r.primary_role(), "{}", c.base.sourced_id);
            assert_eq!(
                (&c.orgs, &c.agents, &c.grades),
                (&r.orgs, &r.agents, &r.grades),
                "{}",
                c.base.sourced_id
            );
            assert_eq!(c.enabled_user, r.enabled_user);
            assert_eq!(c.base.date_last_modified, r.base.date_last_modified);
        }
        let mut csv_enrollments = BTreeSet::new();
        pkg.read::<Enrollment>(|e| {
            csv_enrollments.insert(e.base.sourced_id);
        })
        .unwrap();
        let (rest_enrollments, _) = ids::<Enrollment>(&client).await;
        assert_eq!(csv_enrollments, rest_enrollments);
        let mut csv_classes = BTreeSet::new();
        pkg.read::<Class>(|c| {
            csv_classes.insert(c.base.sourced_id);
        })
        .unwrap();
        assert_eq!(csv_classes, ids::<Class>(&client).await.0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

async fn with_faults(spec: &str) -> (RunningSim, std::sync::Arc<RestClient>) {
    let sim = start(SimConfig {
        district: district(800, 5, 0),
        auth: AuthMode::None,
        faults: spec.parse::<Faults>().unwrap(),
        ..SimConfig::default()
    })
    .await;
    let client = client_for(&sim, AuthMode::None, 100);
    (sim, client)
}

#[tokio::test]
async fn a_silent_page_cap_still_gives_a_complete_pull() {
    let (sim, client) = with_faults("cap_page=37").await;
    let (users, complete) = ids::<User>(&client).await;
    assert!(complete);
    assert_eq!(users, expected(&sim, Collection::Users));
}

#[tokio::test]
async fn a_drifting_total_makes_the_pull_incomplete() {
    let (_sim, client) = with_faults("total_drift=1").await;
    let report = client
        .pull::<User>(&Query::default(), |_| {})
        .await
        .unwrap();
    assert!(!report.complete);
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("X-Total-Count changed")),
        "{:?}",
        report.problems
    );
}

#[tokio::test]
async fn truncated_bodies_and_500s_are_retried_to_a_complete_pull() {
    let (sim, client) = with_faults("truncate=0.2,error500=0.2,rate429=0.05").await;
    let (users, complete) = ids::<User>(&client).await;
    assert!(complete);
    assert_eq!(users, expected(&sim, Collection::Users));
}

#[tokio::test]
async fn an_empty_users_collection_reads_as_complete_and_empty() {
    // The client reports what the server proved; telling an outage from a real empty
    // district is the sync's safeguard, not the client's.
    let (_sim, client) = with_faults("empty_users=1").await;
    let (users, complete) = ids::<User>(&client).await;
    assert!(users.is_empty());
    assert!(complete);
}

#[tokio::test]
async fn a_dropped_school_is_missing_from_users() {
    let (sim, client) = with_faults("drop_school=org-3").await;
    let (users, _) = ids::<User>(&client).await;
    let all = expected(&sim, Collection::Users);
    assert!(users.len() < all.len());
    assert!(users.is_subset(&all));
}
