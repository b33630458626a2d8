//! Google Workspace reader tests, against the simulator's stand-in (`sim::idp::google`):
//! paging, the mapping of users to accounts, the signed assertion, delegation refused,
//! throttling, a page that keeps failing, and the private key kept out of every message.

use std::time::Duration;

use idp::google::{GoogleSettings, KeyFile, SCOPE, read_all};
use idp::http::Retry;
use idp::{IdpError, Provider};
use oneroster::net::AddressPolicy;
use sim::idp::google::{
    GoogleAccount, GoogleStandIn, RunningGoogle, STANDIN_ADMIN, STANDIN_CLIENT_ID,
    STANDIN_CUSTOMER_ID, STANDIN_DOMAIN, revoked_key_file, standin_key_file,
};

const FAST: Retry = Retry {
    attempts: 3,
    base: Duration::from_millis(1),
    max_wait: Duration::from_millis(20),
};

fn people(n: usize) -> Vec<GoogleAccount> {
    (0..n)
        .map(|i| {
            GoogleAccount::new(
                &format!("1000{i}"),
                &format!("user{i:02}@{STANDIN_DOMAIN}"),
                &format!("Given{i}"),
                &format!("Family{i}"),
            )
        })
        .rev()
        .collect()
}

fn settings(google: &RunningGoogle) -> GoogleSettings {
    let key = KeyFile::parse(&google.key_file()).unwrap();
    let mut s = GoogleSettings::new(key, STANDIN_ADMIN);
    s.api_url = google.base_url().to_owned();
    s.policy = AddressPolicy::OPERATOR;
    s.retry = FAST;
    s
}

fn standin_pem_lines() -> Vec<String> {
    let json: serde_json::Value =
        serde_json::from_str(&standin_key_file("http://x/token")).unwrap();
    json["private_key"]
        .as_str()
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 20)
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn reads_every_page_in_email_order() {
    let google = GoogleStandIn::start(people(7)).await.unwrap();
    let mut s = settings(&google);
    s.page_size = 3;
    let read = read_all(&s).await.unwrap();
    assert!(read.complete && read.full);
    assert!(read.warnings.is_empty(), "{:?}", read.warnings);
    let logins: Vec<_> = read.accounts.iter().map(|a| a.login.as_str()).collect();
    let expected: Vec<String> = (0..7)
        .map(|i| format!("user{i:02}@{STANDIN_DOMAIN}"))
        .collect();
    assert_eq!(logins, expected);
    assert_eq!(read.requests, 1 + 3, "a token and three pages");
    assert_eq!(google.requests(), 4);
    assert!(read.accounts.iter().all(|a| a.provider == Provider::Google));
}

#[tokio::test]
async fn maps_aliases_suspension_org_unit_and_school_id() {
    let mut ann = GoogleAccount::new("1", "Ann.Lee@district.example", "Ann", "Lee");
    ann.aliases = vec![
        "A.Lee@district.example".into(),
        "ann.lee@district.example".into(),
    ];
    ann.non_editable_aliases = vec![
        "ann.lee@district.test-google-a.com".into(),
        "a.lee@district.example".into(),
    ];
    ann.org_unit_path = "/Students/North High".into();
    ann.external_id = Some("S-4711".into());
    ann.last_login_time = Some("2025-09-02T08:15:00Z".parse().unwrap());
    let mut bob = GoogleAccount::new("2", "bob@district.example", "Bob", "Ray");
    bob.suspended = true;
    let mut cy = GoogleAccount::new("3", "cy@district.example", "Cy", "Fox");
    cy.archived = true;
    let google = GoogleStandIn::start(vec![ann, bob, cy]).await.unwrap();
    let read = read_all(&settings(&google)).await.unwrap();
    let [a, b, c] = read.accounts.as_slice() else {
        panic!("three accounts expected: {:?}", read.accounts);
    };
    assert_eq!(a.id, "1");
    assert_eq!(a.login, "Ann.Lee@district.example");
    assert_eq!(a.email.as_deref(), Some("Ann.Lee@district.example"));
    assert_eq!(
        a.aliases,
        [
            "a.lee@district.example",
            "ann.lee@district.test-google-a.com"
        ],
        "lower-cased, sorted, each once, without the login"
    );
    assert_eq!(a.given_name.as_deref(), Some("Ann"));
    assert_eq!(a.family_name.as_deref(), Some("Lee"));
    assert_eq!(a.org_unit.as_deref(), Some("/Students/North High"));
    assert_eq!(a.school_id.as_deref(), Some("S-4711"));
    assert!(!a.suspended);
    assert_eq!(
        a.last_sign_in.map(|t| t.to_string()).as_deref(),
        Some("2025-09-02T08:15:00Z")
    );
    assert_eq!(
        a.created_at.map(|t| t.to_string()).as_deref(),
        Some("2024-01-01T00:00:00Z")
    );
    assert!(b.suspended, "suspended");
    assert!(c.suspended, "archived counts as suspended");
    assert_eq!(b.last_sign_in, None, "never signed in");
    assert_eq!(b.school_id, None);
    assert!(b.aliases.is_empty());
}

#[tokio::test]
async fn changes_while_running_show_in_the_next_read() {
    let google = GoogleStandIn::start(people(2)).await.unwrap();
    let s = settings(&google);
    assert!(
        read_all(&s)
            .await
            .unwrap()
            .accounts
            .iter()
            .all(|a| !a.suspended)
    );
    google.update_accounts(|accounts| {
        for a in accounts.iter_mut().filter(|a| a.id == "10000") {
            a.aliases.push(a.primary_email.clone());
            a.primary_email = format!("renamed@{STANDIN_DOMAIN}");
            a.suspended = true;
        }
    });
    let read = read_all(&s).await.unwrap();
    let renamed = read.accounts.iter().find(|a| a.id == "10000").unwrap();
    assert_eq!(renamed.login, format!("renamed@{STANDIN_DOMAIN}"));
    assert_eq!(renamed.aliases, [format!("user00@{STANDIN_DOMAIN}")]);
    assert!(renamed.suspended);
    google.set_accounts(Vec::new());
    let read = read_all(&s).await.unwrap();
    assert!(read.accounts.is_empty() && read.complete);
}

#[tokio::test]
async fn customer_id_and_domain_are_accepted_and_wrong_ones_named() {
    let google = GoogleStandIn::start(people(2)).await.unwrap();
    let mut s = settings(&google);
    s.customer = Some(STANDIN_CUSTOMER_ID.into());
    assert_eq!(read_all(&s).await.unwrap().accounts.len(), 2);
    s.customer = Some("C0wrong".into());
    let e = read_all(&s).await.unwrap_err().to_string();
    assert!(
        e.contains("customer 'C0wrong'") && e.contains("my_customer"),
        "{e}"
    );
    s.customer = None;
    s.domain = Some(STANDIN_DOMAIN.into());
    assert_eq!(read_all(&s).await.unwrap().accounts.len(), 2);
    s.domain = Some("elsewhere.example".into());
    let e = read_all(&s).await.unwrap_err().to_string();
    assert!(e.contains("domain 'elsewhere.example'"), "{e}");
    s.customer = Some(STANDIN_CUSTOMER_ID.into());
    assert!(
        matches!(read_all(&s).await, Err(IdpError::Config(_))),
        "both set"
    );
}

#[tokio::test]
async fn a_key_the_stand_in_does_not_know_is_refused() {
    let google = GoogleStandIn::start(people(1)).await.unwrap();
    let mut s = settings(&google);
    s.key = KeyFile::parse(&revoked_key_file(google.token_url())).unwrap();
    let e = read_all(&s).await.unwrap_err();
    assert!(matches!(e, IdpError::Auth(_)), "{e:?}");
    let e = e.to_string();
    assert!(e.contains("Invalid JWT Signature"), "{e}");
    assert!(
        e.contains("revoked") && e.contains(&s.key.private_key_id),
        "{e}"
    );
    for line in standin_pem_lines() {
        assert!(!e.contains(&line));
    }
}

#[tokio::test]
async fn delegation_not_granted_names_the_client_id_scope_and_console_path() {
    let google = GoogleStandIn::start(people(1)).await.unwrap();
    google.require_admin("super@district.example");
    let e = read_all(&settings(&google)).await.unwrap_err();
    assert!(matches!(e, IdpError::Auth(_)), "{e:?}");
    let e = e.to_string();
    assert!(e.contains("unauthorized_client"), "{e}");
    assert!(e.contains(STANDIN_CLIENT_ID), "{e}");
    assert!(e.contains(SCOPE), "{e}");
    assert!(
        e.contains(
            "Security → Access and data control → API controls → Manage Domain Wide Delegation"
        ),
        "{e}"
    );
    google.require_admin(STANDIN_ADMIN);
    assert!(read_all(&settings(&google)).await.is_ok());
}

#[tokio::test]
async fn throttling_is_waited_out_and_counted() {
    let google = GoogleStandIn::start(people(4)).await.unwrap();
    let mut s = settings(&google);
    s.page_size = 2;
    s.retry.attempts = 4;
    google.throttle_next(3);
    let read = read_all(&s).await.unwrap();
    assert!(read.complete);
    assert_eq!(read.accounts.len(), 4);
    assert_eq!(
        read.requests,
        3 + 1 + 2,
        "three throttled, a token, two pages"
    );
    assert_eq!(google.requests(), read.requests);
}

#[tokio::test]
async fn a_page_that_keeps_failing_ends_the_read_incomplete() {
    let google = GoogleStandIn::start(people(5)).await.unwrap();
    let mut s = settings(&google);
    s.page_size = 2;
    google.fail_page(2);
    let read = read_all(&s).await.unwrap();
    assert!(!read.complete && read.full);
    assert_eq!(read.accounts.len(), 2, "page 1 is kept");
    assert_eq!(read.warnings.len(), 1, "{:?}", read.warnings);
    assert!(read.warnings[0].contains("page 2"), "{}", read.warnings[0]);
    assert!(read.warnings[0].contains("503"), "{}", read.warnings[0]);
    assert_eq!(read.requests, 1 + 1 + u64::from(FAST.attempts));

    google.fail_page(1);
    let e = read_all(&s).await.unwrap_err();
    assert!(matches!(e, IdpError::Unreachable(_)), "{e:?}");
    assert!(e.to_string().contains("page 1"), "{e}");
}

#[test]
fn key_file_errors_name_the_field_and_never_the_key() {
    let full: serde_json::Value =
        serde_json::from_str(&standin_key_file("https://oauth2.googleapis.com/token")).unwrap();
    let key = KeyFile::parse(&full.to_string()).unwrap();
    let shown = format!("{key:?}");
    assert!(
        shown.contains("<redacted>") && shown.contains(STANDIN_CLIENT_ID),
        "{shown}"
    );
    let settings = GoogleSettings::new(key, STANDIN_ADMIN);
    let mut shown_all = vec![shown, format!("{settings:?}")];
    for field in [
        "type",
        "client_email",
        "private_key",
        "token_uri",
        "client_id",
        "private_key_id",
    ] {
        let mut partial = full.clone();
        partial.as_object_mut().unwrap().remove(field);
        let e = KeyFile::parse(&partial.to_string())
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("`{field}`")), "{field}: {e}");
        shown_all.push(e);
    }
    let mut other = full.clone();
    other["type"] = "authorized_user".into();
    let e = KeyFile::parse(&other.to_string()).unwrap_err().to_string();
    assert!(e.contains("authorized_user"), "{e}");
    let mut broken = full.clone();
    let pem = full["private_key"].as_str().unwrap();
    broken["private_key"] = pem.replacen('M', "*", 3).into();
    let e = KeyFile::parse(&broken.to_string()).unwrap_err().to_string();
    assert!(
        e.contains("`private_key`") && e.contains("download a new key"),
        "{e}"
    );
    shown_all.push(e);
    let e = KeyFile::parse("{ not json").unwrap_err().to_string();
    assert!(e.contains("not JSON"), "{e}");
    for shown in &shown_all {
        for line in standin_pem_lines() {
            assert!(!shown.contains(&line), "the key shows in: {shown}");
        }
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    }
}

#[tokio::test]
async fn addresses_the_policy_refuses_are_not_contacted() {
    let google = GoogleStandIn::start(people(1)).await.unwrap();
    let mut s = settings(&google);
    s.policy = AddressPolicy::PUBLIC_ONLY;
    let e = read_all(&s).await.unwrap_err();
    assert!(matches!(e, IdpError::Config(_)), "{e:?}");
    assert!(e.to_string().contains("loopback"), "{e}");
    assert_eq!(google.requests(), 0);
}

#[tokio::test]
async fn an_admin_without_the_privilege_is_named() {
    let google = GoogleStandIn::start(people(1)).await.unwrap();
    google.deny_user_reads(true);
    let e = read_all(&settings(&google)).await.unwrap_err();
    assert!(matches!(e, IdpError::Auth(_)), "{e:?}");
    let e = e.to_string();
    assert!(
        e.contains(&format!(
            "the admin {STANDIN_ADMIN} lacks the privilege to read users"
        )),
        "{e}"
    );
    assert!(
        e.contains("Not Authorized to access this resource/api"),
        "{e}"
    );
}

#[tokio::test]
async fn a_query_narrows_the_read_and_a_bad_one_is_named() {
    let mut accounts = people(4);
    for a in accounts
        .iter_mut()
        .filter(|a| a.id == "10001" || a.id == "10003")
    {
        a.org_unit_path = "/Students/North High".into();
    }
    let google = GoogleStandIn::start(accounts).await.unwrap();
    let mut s = settings(&google);
    s.query = Some("orgUnitPath='/Students'".into());
    let read = read_all(&s).await.unwrap();
    let ids: Vec<_> = read.accounts.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["10001", "10003"]);
    s.query = Some("nonsense".into());
    let e = read_all(&s).await.unwrap_err().to_string();
    assert!(e.contains("query 'nonsense'"), "{e}");
}

#[tokio::test]
async fn a_user_without_an_id_is_skipped_with_a_warning() {
    let mut accounts = people(3);
    accounts[1].id = String::new();
    let google = GoogleStandIn::start(accounts).await.unwrap();
    let read = read_all(&settings(&google)).await.unwrap();
    assert_eq!(read.accounts.len(), 2);
    assert!(
        read.complete,
        "a skipped record does not make the read incomplete"
    );
    assert_eq!(read.warnings.len(), 1, "{:?}", read.warnings);
    assert!(
        read.warnings[0].contains("without an id"),
        "{}",
        read.warnings[0]
    );
}

#[tokio::test]
async fn a_token_expiring_mid_read_is_renewed_once() {
    let google = GoogleStandIn::start(people(5)).await.unwrap();
    let mut s = settings(&google);
    s.page_size = 2;
    google.token_lifetime(2);
    let read = read_all(&s).await.unwrap();
    assert!(read.complete);
    assert_eq!(read.accounts.len(), 5);
    assert_eq!(
        read.requests, 6,
        "token, two pages, 401, token, the page again"
    );

    google.token_lifetime(0);
    let e = read_all(&s).await.unwrap_err();
    assert!(matches!(e, IdpError::Auth(_)), "{e:?}");
    assert!(e.to_string().contains("refused the access token"), "{e}");
}
