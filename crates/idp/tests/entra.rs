//! The Entra ID reader against the simulator's stand-in of Entra's token endpoint and
//! Microsoft Graph (`sim::idp::entra`): paging, the mapping of Graph's user, delta
//! rounds, the errors that name what to fix, throttling and pages that keep failing.

use std::time::Duration;

use idp::entra::{self, EntraSettings};
use idp::http::Retry;
use idp::{IdpError, Provider};
use oneroster::net::AddressPolicy;
use sim::idp::entra::{CLIENT_ID, CLIENT_SECRET, EntraStandIn, EntraUser, TENANT};

fn users(n: usize) -> Vec<EntraUser> {
    (0..n)
        .map(|i| {
            EntraUser::new(
                &format!("id-{i:03}"),
                &format!("student{i:03}@district.example"),
                "Student",
                &format!("Number{i}"),
            )
        })
        .collect()
}

fn settings(standin: &EntraStandIn) -> EntraSettings {
    EntraSettings {
        token_url: Some(standin.token_url()),
        graph_url: standin.base_url().to_owned(),
        policy: AddressPolicy::OPERATOR,
        page_size: 4,
        retry: Retry {
            attempts: 3,
            base: Duration::from_millis(1),
            max_wait: Duration::from_millis(20),
        },
        ..EntraSettings::new(TENANT, CLIENT_ID, CLIENT_SECRET)
    }
}

async fn start(accounts: Vec<EntraUser>) -> EntraStandIn {
    match EntraStandIn::start(accounts).await {
        Ok(standin) => standin,
        Err(e) => panic!("the stand-in did not start: {e}"),
    }
}

fn auth_message(result: Result<idp::AccountRead, IdpError>) -> String {
    match result {
        Err(IdpError::Auth(message)) => {
            assert!(
                !message.contains(CLIENT_SECRET),
                "the secret leaked: {message}"
            );
            message
        }
        other => panic!("expected an Auth error, got {other:?}"),
    }
}

#[tokio::test]
async fn full_read_follows_next_links_over_several_pages() {
    let standin = start(users(10)).await;
    let read = entra::read_all(&settings(&standin)).await.expect("read");
    assert!(read.complete && read.full);
    assert_eq!(read.accounts.len(), 10);
    assert!(read.warnings.is_empty(), "{:?}", read.warnings);
    assert_eq!(read.requests, 4, "one token and three pages of 4");
    let first = &read.accounts[0];
    assert_eq!(first.provider, Provider::Microsoft);
    assert_eq!(first.id, "id-000");
    assert_eq!(first.login, "student000@district.example");
    assert!(read.next_delta.is_none());
}

#[tokio::test]
async fn graph_users_map_to_accounts() {
    let mut plain = EntraUser::new("a", "ana@district.onmicrosoft.com", "Ana", "Ruiz");
    plain.mail = None;
    plain.proxy_addresses = vec![
        "SMTP:Ana.Ruiz@district.example".into(),
        "smtp:ARUIZ@district.example".into(),
        "smtp:ana@district.onmicrosoft.com".into(),
        "SIP:ana@district.example".into(),
    ];
    plain.other_mails = vec!["ana@home.example".into(), "Ana@Home.example".into()];
    plain.account_enabled = false;
    plain.employee_id = Some("S-1001".into());
    plain.created = Some("2024-08-01T12:00:00Z".into());
    let mut bare = EntraUser::new("b", "ben@district.example", "", "");
    bare.given_name = None;
    bare.surname = None;
    bare.proxy_addresses.clear();
    bare.created = None;
    let nameless = EntraUser {
        id: "c".into(),
        ..EntraUser::default()
    };
    let standin = start(vec![plain, bare, nameless]).await;
    let read = entra::read_all(&settings(&standin)).await.expect("read");
    assert_eq!(read.accounts.len(), 2);
    assert_eq!(read.warnings.len(), 1, "{:?}", read.warnings);
    assert!(read.warnings[0].contains("user c has no userPrincipalName"));

    let ana = &read.accounts[0];
    assert_eq!(ana.email.as_deref(), Some("Ana.Ruiz@district.example"));
    assert_eq!(ana.aliases, ["ana@home.example", "aruiz@district.example"]);
    assert!(ana.suspended);
    assert_eq!(ana.school_id.as_deref(), Some("S-1001"));
    assert_eq!(ana.given_name.as_deref(), Some("Ana"));
    assert_eq!(ana.family_name.as_deref(), Some("Ruiz"));
    assert_eq!(
        ana.created_at,
        Some("2024-08-01T12:00:00Z".parse().expect("timestamp"))
    );
    assert!(ana.org_unit.is_none() && ana.last_sign_in.is_none());

    let ben = &read.accounts[1];
    assert_eq!(ben.email.as_deref(), Some("ben@district.example"));
    assert!(ben.aliases.is_empty());
    assert!(!ben.suspended);
    assert!(ben.given_name.is_none() && ben.school_id.is_none() && ben.created_at.is_none());
}

#[tokio::test]
async fn delta_reports_only_changes_and_removals() {
    let standin = start(users(7)).await;
    standin.set_delta_page_size(3);
    let settings = settings(&standin);

    let first = entra::read_delta(&settings, None).await.expect("first");
    assert!(first.full && first.complete);
    assert_eq!(first.accounts.len(), 7);
    let link = first.next_delta.expect("a delta link");

    let quiet = entra::read_delta(&settings, Some(&link))
        .await
        .expect("quiet");
    assert!(!quiet.full && quiet.complete);
    assert!(quiet.accounts.is_empty() && quiet.removed.is_empty());
    let link = quiet.next_delta.expect("a delta link");

    assert!(standin.update("id-001", |u| {
        u.user_principal_name = "renamed@district.example".into();
        u.mail = Some("renamed@district.example".into());
        u.surname = Some("Renamed".into());
    }));
    assert!(standin.update("id-002", |u| u.account_enabled = false));
    assert!(standin.remove("id-003"));
    standin.upsert(EntraUser::new(
        "id-100",
        "new@district.example",
        "New",
        "Kid",
    ));

    let changes = entra::read_delta(&settings, Some(&link))
        .await
        .expect("changes");
    assert!(!changes.full && changes.complete);
    let ids: Vec<&str> = changes.accounts.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["id-001", "id-002", "id-100"]);
    assert_eq!(changes.removed, ["id-003"]);
    let renamed = &changes.accounts[0];
    assert_eq!(renamed.login, "renamed@district.example");
    assert_eq!(renamed.family_name.as_deref(), Some("Renamed"));
    assert!(changes.accounts[1].suspended);
    assert!(!changes.accounts[2].suspended);
    assert!(changes.next_delta.is_some_and(|next| next != link));
}

#[tokio::test]
async fn replacing_every_account_shows_as_changes_and_removals() {
    let standin = start(users(4)).await;
    let settings = settings(&standin);
    let first = entra::read_delta(&settings, None).await.expect("first");
    let link = first.next_delta.expect("a delta link");
    let mut kept = users(4);
    kept.truncate(2);
    kept[1].employee_id = Some("S-2".into());
    standin.set_accounts(kept);
    let changes = entra::read_delta(&settings, Some(&link))
        .await
        .expect("changes");
    assert_eq!(changes.removed, ["id-002", "id-003"]);
    let school_ids: Vec<Option<&str>> = changes
        .accounts
        .iter()
        .map(|a| a.school_id.as_deref())
        .collect();
    assert_eq!(school_ids, [None, Some("S-2")]);
}

#[tokio::test]
async fn an_expired_delta_link_asks_for_a_full_read() {
    let standin = start(users(3)).await;
    let settings = settings(&standin);
    let first = entra::read_delta(&settings, None).await.expect("first");
    let link = first.next_delta.expect("a delta link");
    standin.expire_delta_tokens();
    let error = entra::read_delta(&settings, Some(&link))
        .await
        .expect_err("expired");
    assert!(entra::is_resync_needed(&error), "{error}");
    let again = entra::read_delta(&settings, None).await.expect("full read");
    assert!(again.full && again.complete && again.accounts.len() == 3);

    let ordinary = IdpError::Protocol("Graph users page 1: answered 400".into());
    assert!(!entra::is_resync_needed(&ordinary));
}

#[tokio::test]
async fn a_delta_link_elsewhere_is_refused() {
    let standin = start(users(1)).await;
    let error = entra::read_delta(
        &settings(&standin),
        Some("http://127.0.0.2:9/v1.0/users/delta?$deltatoken=1"),
    )
    .await
    .expect_err("refused");
    assert!(error.to_string().contains("not on graph_url"), "{error}");
    assert_eq!(standin.requests(), 0, "no token was sent anywhere");
}

#[tokio::test]
async fn credential_errors_name_what_to_fix() {
    let standin = start(users(1)).await;

    let mut wrong_tenant = settings(&standin);
    wrong_tenant.tenant = "nowhere.example".into();
    wrong_tenant.token_url = Some(format!(
        "{}/nowhere.example/oauth2/v2.0/token",
        standin.base_url()
    ));
    let message = auth_message(entra::read_all(&wrong_tenant).await);
    assert!(
        message.contains("AADSTS90002") && message.contains("`tenant`"),
        "{message}"
    );

    let mut unknown_app = settings(&standin);
    unknown_app.client_id = "11111111-2222-3333-4444-555555555555".into();
    let message = auth_message(entra::read_all(&unknown_app).await);
    assert!(
        message.contains("AADSTS700016") && message.contains("`client_id`"),
        "{message}"
    );

    let mut bad_secret = settings(&standin);
    bad_secret.client_secret = "not-the-secret-value".into();
    let message = auth_message(entra::read_all(&bad_secret).await);
    assert!(
        message.contains("AADSTS7000215")
            && message.contains("Certificates & secrets")
            && !message.contains("not-the-secret-value"),
        "{message}"
    );

    standin.withhold_user_read_all(true);
    let message = auth_message(entra::read_all(&settings(&standin)).await);
    assert!(
        message.contains("User.Read.All") && message.contains("Grant admin consent"),
        "{message}"
    );
    let message = auth_message(entra::read_delta(&settings(&standin), None).await);
    assert!(message.contains("User.Read.All"), "{message}");
}

#[tokio::test]
async fn throttling_is_waited_out() {
    let standin = start(users(5)).await;
    standin.throttle_next(2);
    let read = entra::read_all(&settings(&standin)).await.expect("read");
    assert!(read.complete);
    assert_eq!(read.accounts.len(), 5);
    assert_eq!(read.requests, 5, "a token, two 429s and two pages");
}

#[tokio::test]
async fn an_access_token_expiring_mid_read_is_renewed() {
    let standin = start(users(10)).await;
    standin.expire_access_tokens_after(1);
    let read = entra::read_all(&settings(&standin)).await.expect("read");
    assert!(read.complete, "{:?}", read.warnings);
    assert_eq!(read.accounts.len(), 10);
    assert_eq!(read.requests, 6, "token, page, 401, token, two pages");
}

#[tokio::test]
async fn a_page_failing_after_the_first_leaves_the_read_incomplete() {
    let standin = start(users(10)).await;
    standin.fail_page(Some(1));
    let read = entra::read_all(&settings(&standin)).await.expect("read");
    assert!(!read.complete);
    assert_eq!(read.accounts.len(), 4, "the first page is kept");
    assert_eq!(read.warnings.len(), 1);
    assert!(read.warnings[0].contains("page 2"), "{:?}", read.warnings);

    standin.set_delta_page_size(4);
    let delta = entra::read_delta(&settings(&standin), None)
        .await
        .expect("delta");
    assert!(!delta.complete && delta.next_delta.is_none());
    assert_eq!(delta.accounts.len(), 4);

    standin.fail_page(Some(0));
    let error = entra::read_all(&settings(&standin))
        .await
        .expect_err("first page");
    assert!(matches!(error, IdpError::Unreachable(_)), "{error}");
}

#[tokio::test]
async fn a_certificate_signs_the_token_request_instead_of_a_secret() {
    let standin = start(vec![EntraUser::new(
        "u1",
        "ann@district.example",
        "Ann",
        "Lee",
    )])
    .await;
    let certificate = idp::entra::Certificate::parse(sim::idp::entra::STANDIN_CERTIFICATE_PEM)
        .expect("the stand-in's certificate");
    assert_eq!(certificate.thumbprint().len(), 27, "base64url of 20 bytes");
    assert!(
        !format!("{certificate:?}").contains("PRIVATE"),
        "the key is never shown"
    );
    let with = |certificate| EntraSettings {
        client_secret: String::new(),
        certificate: Some(certificate),
        ..settings(&standin)
    };
    let read = idp::entra::read_all(&with(certificate))
        .await
        .expect("read");
    assert_eq!(read.accounts.len(), 1);
    assert!(read.complete);
    // A key that is not the certificate's (another test key beside the right certificate)
    // is refused, in words that say where to look.
    let key = sim::idp::google::revoked_key_file("http://127.0.0.1:9/token");
    let revoked: serde_json::Value = serde_json::from_str(&key).unwrap();
    let cert_block: String = sim::idp::entra::STANDIN_CERTIFICATE_PEM
        .split("-----END PRIVATE KEY-----")
        .nth(1)
        .unwrap()
        .to_owned();
    let mixed = format!("{}{}", revoked["private_key"].as_str().unwrap(), cert_block);
    let wrong = idp::entra::Certificate::parse(&mixed).expect("a key and a certificate");
    let e = idp::entra::read_all(&with(wrong)).await.unwrap_err();
    let e = e.to_string();
    assert!(e.contains("AADSTS700027"), "{e}");
    assert!(e.contains("Certificates & secrets"), "{e}");
    // Not a certificate file at all: said, not quoted.
    let e = idp::entra::Certificate::parse("just text")
        .unwrap_err()
        .to_string();
    assert!(e.contains("BEGIN PRIVATE KEY"), "{e}");
}
