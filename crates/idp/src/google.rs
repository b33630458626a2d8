//! Google Workspace: the Admin SDK Directory API (`users.list`) read with a service
//! account's key and domain-wide delegation.
//!
//! The reader signs a JWT with the service account's key (RS256) naming the admin it acts
//! for, trades it at the key's `token_uri` for an access token (the JWT-bearer grant),
//! then pages through `GET /admin/directory/v1/users`. A refused token or page is told in
//! terms of what to fix: the delegation in the admin console, the admin impersonated, the
//! customer or domain setting.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use oneroster::net::{AddressPolicy, short_remote_text};
use ring::signature::RsaKeyPair;

use crate::jwt::signing_key;
use serde::Deserialize;

use crate::http::{Answer, Http, Retry};
use crate::{AccountRead, IdpAccount, IdpError, Provider};

/// The one scope asked for: reading users, nothing else.
pub const SCOPE: &str = "https://www.googleapis.com/auth/admin.directory.user.readonly";
/// Where the Directory API lives.
pub const DEFAULT_API_URL: &str = "https://admin.googleapis.com";
/// The customer alias meaning "the account of the admin impersonated".
pub const DEFAULT_CUSTOMER: &str = "my_customer";
/// The largest page `users.list` serves.
pub const MAX_PAGE_SIZE: u32 = 500;
/// How long each request may take to answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const TOKEN_LIFETIME_SECONDS: i64 = 3600;
/// What Google sends as `lastLoginTime` for an account that never signed in.
const NEVER: &str = "1970-01-01T00:00:00.000Z";
const DELEGATION_PATH: &str = "Admin console → Security → Access and data control → API controls → Manage Domain Wide Delegation";

/// A service account's JSON key file, as the Google Cloud console downloads it. The
/// private key is held only as a signing key and never shown (see the `Debug`).
#[derive(Clone)]
pub struct KeyFile {
    pub client_email: String,
    pub client_id: String,
    pub private_key_id: String,
    pub token_uri: String,
    key: Arc<RsaKeyPair>,
}

impl fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyFile")
            .field("client_email", &self.client_email)
            .field("client_id", &self.client_id)
            .field("private_key_id", &self.private_key_id)
            .field("token_uri", &self.token_uri)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

impl KeyFile {
    /// Reads a key file. Errors name the field that is missing or wrong and never quote
    /// the private key.
    pub fn parse(json: &str) -> Result<KeyFile, IdpError> {
        let value: serde_json::Value = serde_json::from_str(json).map_err(|e| {
            IdpError::Config(format!(
                "the Google service-account key file is not JSON (line {}, column {}): download the key again as JSON (Google Cloud console → IAM & Admin → Service accounts → Keys → Add key)",
                e.line(),
                e.column()
            ))
        })?;
        let Some(fields) = value.as_object() else {
            return Err(IdpError::Config(
                "the Google service-account key file is not a JSON object".into(),
            ));
        };
        let field = |name: &str| -> Result<String, IdpError> {
            match fields.get(name).and_then(|v| v.as_str()).map(str::trim) {
                Some(v) if !v.is_empty() => Ok(v.to_owned()),
                _ => Err(IdpError::Config(format!(
                    "the Google service-account key file has no `{name}`: use the JSON key file of the service account as downloaded"
                ))),
            }
        };
        let kind = field("type")?;
        if kind != "service_account" {
            return Err(IdpError::Config(format!(
                "the Google key file is of type `{kind}`, not `service_account`: create a service account key (not an OAuth client or user credential)"
            )));
        }
        let client_email = field("client_email")?;
        let client_id = field("client_id")?;
        let private_key_id = field("private_key_id")?;
        let token_uri = field("token_uri")?;
        let pem = field("private_key")?;
        let key = signing_key(&pem).map_err(|why| {
            IdpError::Config(format!(
                "the `private_key` of the Google key file for {client_email} {why}: download a new key"
            ))
        })?;
        Ok(KeyFile {
            client_email,
            client_id,
            private_key_id,
            token_uri,
            key: Arc::new(key),
        })
    }

    /// The signed assertion of the JWT-bearer grant, asking `scope` for `subject`.
    fn assertion(&self, subject: &str, scope: &str, now: i64) -> Result<String, IdpError> {
        let header =
            serde_json::json!({ "alg": "RS256", "typ": "JWT", "kid": self.private_key_id });
        let claims = serde_json::json!({
            "iss": self.client_email,
            "sub": subject,
            "scope": scope,
            "aud": self.token_uri,
            "iat": now,
            "exp": now + TOKEN_LIFETIME_SECONDS,
        });
        crate::jwt::sign_rs256(&self.key, &header, &claims).ok_or_else(|| {
            IdpError::Config(format!(
                "cannot sign with the key of {}: download a new key",
                self.client_email
            ))
        })
    }
}

/// What a Google Workspace read needs.
#[derive(Debug, Clone)]
pub struct GoogleSettings {
    pub key: KeyFile,
    /// The admin the service account acts for (domain-wide delegation needs one).
    pub subject: String,
    /// The customer id (`C0…`); `None` means `my_customer`, the subject's own account.
    pub customer: Option<String>,
    /// Read one domain's users instead of the customer's.
    pub domain: Option<String>,
    /// A `users.list` search (`orgUnitPath='/Students'`), as the API documents it.
    pub query: Option<String>,
    pub api_url: String,
    pub policy: AddressPolicy,
    /// Users per page, at most [`MAX_PAGE_SIZE`].
    pub page_size: u32,
    pub retry: Retry,
    pub timeout: Duration,
}

impl GoogleSettings {
    /// The settings with every default: the subject's customer, the public API, public
    /// addresses only, pages of 500.
    pub fn new(key: KeyFile, subject: impl Into<String>) -> GoogleSettings {
        GoogleSettings {
            key,
            subject: subject.into(),
            customer: None,
            domain: None,
            query: None,
            api_url: DEFAULT_API_URL.to_owned(),
            policy: AddressPolicy::PUBLIC_ONLY,
            page_size: MAX_PAGE_SIZE,
            retry: Retry::default(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    fn users_url(&self) -> Result<reqwest::Url, IdpError> {
        let base = format!(
            "{}/admin/directory/v1/users",
            self.api_url.trim_end_matches('/')
        );
        let mut url = self
            .policy
            .check_url("the Google api_url", &base)
            .map_err(IdpError::Config)?;
        let subject = self.subject.trim();
        if subject.is_empty() {
            return Err(IdpError::Config(
                "the Google subject is empty: name an admin of the domain for the service account to act for".into(),
            ));
        }
        {
            let mut q = url.query_pairs_mut();
            match (&self.customer, &self.domain) {
                (Some(_), Some(_)) => {
                    return Err(IdpError::Config(
                        "set either the Google customer or the Google domain, not both".into(),
                    ));
                }
                (_, Some(domain)) => q.append_pair("domain", domain),
                (customer, None) => {
                    q.append_pair("customer", customer.as_deref().unwrap_or(DEFAULT_CUSTOMER))
                }
            };
            q.append_pair(
                "maxResults",
                &self.page_size.clamp(1, MAX_PAGE_SIZE).to_string(),
            );
            q.append_pair("projection", "full");
            q.append_pair("orderBy", "email");
            if let Some(query) = self.query.as_deref().filter(|q| !q.trim().is_empty()) {
                q.append_pair("query", query);
            }
        }
        Ok(url)
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
}

#[derive(Deserialize, Default)]
struct OAuthError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

/// Gets an access token for the subject with the JWT-bearer grant.
async fn access_token(http: &Http, settings: &GoogleSettings) -> Result<String, IdpError> {
    let key = &settings.key;
    let token_url = settings
        .policy
        .check_url("the Google key file's token_uri", &key.token_uri)
        .map_err(IdpError::Config)?;
    let assertion = key.assertion(&settings.subject, SCOPE, Timestamp::now().as_second())?;
    let form = [
        ("grant_type", GRANT_TYPE),
        ("assertion", assertion.as_str()),
    ];
    let answer = http
        .send("Google token", |c| c.post(token_url.clone()).form(&form))
        .await?;
    if answer.is_success() {
        let token: TokenAnswer = answer.json("Google token")?;
        return Ok(token.access_token);
    }
    let refused: OAuthError = serde_json::from_slice(&answer.body).unwrap_or_default();
    let said = if refused.error_description.is_empty() {
        refused.error.clone()
    } else {
        format!("{}: {}", refused.error, refused.error_description)
    };
    Err(match refused.error.as_str() {
        "unauthorized_client" => IdpError::Auth(format!(
            "Google refused a token for {} ({said}): domain-wide delegation is not granted to the service account {} with client id {} for the scope {SCOPE}; grant it in the {DELEGATION_PATH} (add the client id {} with that scope)",
            settings.subject, key.client_email, key.client_id, key.client_id
        )),
        "invalid_grant" => IdpError::Auth(format!(
            "Google refused a token for {} ({said}): check that the subject {} is an admin of the domain, that the key {} of {} is not deleted or revoked (Google Cloud console → IAM & Admin → Service accounts → Keys), and that this machine's clock is right",
            settings.subject, settings.subject, key.private_key_id, key.client_email
        )),
        "invalid_client" => IdpError::Auth(format!(
            "Google does not know the service account {} ({said}): it may be deleted or disabled; download a key of an existing service account",
            key.client_email
        )),
        "" => IdpError::Auth(format!(
            "Google's token URL {} answered {}: {}",
            key.token_uri,
            answer.status,
            short_remote_text(&String::from_utf8_lossy(&answer.body))
        )),
        _ => IdpError::Auth(format!(
            "Google refused a token for {} ({})",
            settings.subject,
            short_remote_text(&said)
        )),
    })
}

#[derive(Deserialize)]
struct UsersPage {
    #[serde(default)]
    users: Vec<serde_json::Value>,
    #[serde(default, rename = "nextPageToken")]
    next_page_token: Option<String>,
}

/// One `users` resource, the fields read.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct User {
    id: Option<String>,
    primary_email: Option<String>,
    name: Option<UserName>,
    aliases: Vec<String>,
    non_editable_aliases: Vec<String>,
    suspended: bool,
    archived: bool,
    org_unit_path: Option<String>,
    external_ids: Vec<ExternalId>,
    creation_time: Option<String>,
    last_login_time: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct UserName {
    given_name: Option<String>,
    family_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ExternalId {
    value: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// Reads every account of the customer (or domain).
pub async fn read_all(settings: &GoogleSettings) -> Result<AccountRead, IdpError> {
    let url = settings.users_url()?;
    let mut http = Http::new(settings.policy, settings.timeout)?;
    http.retry = settings.retry;
    let mut token = access_token(&http, settings).await?;
    let mut read = AccountRead {
        full: true,
        complete: true,
        ..AccountRead::default()
    };
    let mut page_token: Option<String> = None;
    let mut page = 0u32;
    loop {
        page += 1;
        let what = format!("Google users page {page}");
        let mut page_url = url.clone();
        if let Some(t) = &page_token {
            page_url.query_pairs_mut().append_pair("pageToken", t);
        }
        let mut fetched = fetch_page(&http, &what, &page_url, &token).await;
        if matches!(&fetched, Ok(a) if a.status == 401) {
            // The token expired during a long read: one new one, then the page again.
            fetched = match access_token(&http, settings).await {
                Ok(t) => {
                    token = t;
                    fetch_page(&http, &what, &page_url, &token).await
                }
                Err(e) => Err(e),
            };
        }
        let parsed = fetched.and_then(|answer| users_page(settings, &what, &answer));
        let body = match parsed {
            Ok(body) => body,
            Err(e) if page == 1 => return Err(e),
            Err(e) => {
                tracing::warn!(page, error = %e, "Google read stopped early");
                read.warnings.push(format!(
                    "the read stopped at page {page} ({e}); the {} accounts read before it are kept and no one is deactivated",
                    read.accounts.len()
                ));
                read.complete = false;
                break;
            }
        };
        for raw in body.users {
            match account(raw) {
                Ok(a) => read.accounts.push(a),
                Err(warning) => {
                    tracing::warn!(page, %warning, "Google user skipped");
                    read.warnings.push(warning);
                }
            }
        }
        match body.next_page_token.filter(|t| !t.is_empty()) {
            Some(next) if page_token.as_deref() == Some(next.as_str()) => {
                read.warnings.push(format!(
                    "Google gave page {page} the same nextPageToken as the page before; the read stopped there"
                ));
                read.complete = false;
                break;
            }
            Some(next) => page_token = Some(next),
            None => break,
        }
    }
    read.requests = http.requests();
    Ok(read)
}

async fn fetch_page(
    http: &Http,
    what: &str,
    url: &reqwest::Url,
    token: &str,
) -> Result<Answer, IdpError> {
    http.send(what, |c| c.get(url.clone()).bearer_auth(token))
        .await
}

/// Whether a 403 says the API is not enabled in the caller's Cloud project (Google's
/// reasons `accessNotConfigured` and `SERVICE_DISABLED`), not that the admin lacks a
/// privilege.
fn api_disabled(body: &str) -> bool {
    [
        "accessNotConfigured",
        "SERVICE_DISABLED",
        "has not been used in project",
    ]
    .iter()
    .any(|t| body.contains(t))
}

/// A page's users, or what the refusal means.
fn users_page(
    settings: &GoogleSettings,
    what: &str,
    answer: &Answer,
) -> Result<UsersPage, IdpError> {
    if answer.is_success() {
        return answer.json(what);
    }
    let message = google_message(&answer.body);
    let subject = &settings.subject;
    Err(match answer.status {
        401 => IdpError::Auth(format!(
            "{what}: Google refused the access token twice ({message})"
        )),
        403 if api_disabled(&String::from_utf8_lossy(&answer.body)) => IdpError::Config(format!(
            "the Admin SDK API is not enabled in the service account's Google Cloud project ({message}): enable it in the Google Cloud console → APIs & Services → Library → Admin SDK API, wait a few minutes, and run again"
        )),
        403 => {
            let domain = match &settings.domain {
                Some(d) => format!(", or the domain '{d}' is not one of this Workspace account's"),
                None => String::new(),
            };
            IdpError::Auth(format!(
                "the admin {subject} lacks the privilege to read users ({message}): give {subject} a role with Users → Read in the Admin console → Account → Admin roles, or set subject to a super admin{domain}"
            ))
        }
        400 if settings.query.is_some() && message.contains("Invalid Input") => {
            IdpError::Config(format!(
                "Google refused the query '{}' ({message}): write it as the Directory API's user search documents (e.g. orgUnitPath='/Students' isSuspended=false), or leave it out",
                settings.query.as_deref().unwrap_or_default()
            ))
        }
        400 | 404 => match (&settings.domain, &settings.customer) {
            (Some(domain), _) => IdpError::Config(format!(
                "Google does not know the domain '{domain}' ({message}): set domain to a domain of the Workspace account (Admin console → Account → Domains), or leave it out to read the whole customer"
            )),
            (None, customer) => IdpError::Config(format!(
                "Google does not know the customer '{}' ({message}): set customer to my_customer or to the customer id shown in Admin console → Account → Account settings",
                customer.as_deref().unwrap_or(DEFAULT_CUSTOMER)
            )),
        },
        status => IdpError::Protocol(format!("{what}: Google answered {status} ({message})")),
    })
}

/// The `error.message` of a Google API error, else the body in short.
fn google_message(body: &[u8]) -> String {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
        });
    short_remote_text(&message.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned()))
}

/// One user as an account, or the warning saying why it is skipped.
fn account(raw: serde_json::Value) -> Result<IdpAccount, String> {
    let user: User = serde_json::from_value(raw.clone()).map_err(|e| {
        format!(
            "a Google user was skipped: its record is not the shape expected ({e}): {}",
            short_remote_text(&raw.to_string())
        )
    })?;
    let id = user.id.filter(|v| !v.trim().is_empty());
    let email = user.primary_email.filter(|v| !v.trim().is_empty());
    let (Some(id), Some(login)) = (id, email) else {
        return Err(format!(
            "a Google user without an id or primaryEmail was skipped: {}",
            short_remote_text(&raw.to_string())
        ));
    };
    let lower_login = login.to_lowercase();
    let mut aliases: Vec<String> = user
        .aliases
        .iter()
        .chain(&user.non_editable_aliases)
        .map(|a| a.trim().to_lowercase())
        .filter(|a| !a.is_empty() && *a != lower_login)
        .collect();
    aliases.sort();
    aliases.dedup();
    let name = user.name.unwrap_or_default();
    let school_id = user
        .external_ids
        .into_iter()
        .find(|e| e.kind.as_deref() == Some("organization"))
        .and_then(|e| e.value)
        .filter(|v| !v.trim().is_empty());
    Ok(IdpAccount {
        provider: Provider::Google,
        id,
        email: Some(login.clone()),
        login,
        aliases,
        given_name: name.given_name.filter(|v| !v.is_empty()),
        family_name: name.family_name.filter(|v| !v.is_empty()),
        suspended: user.suspended || user.archived,
        guest: false,
        org_unit: user.org_unit_path.filter(|v| !v.is_empty()),
        school_id,
        created_at: user.creation_time.as_deref().and_then(time),
        last_sign_in: user
            .last_login_time
            .as_deref()
            .filter(|t| *t != NEVER)
            .and_then(time)
            .filter(|t| t.as_second() > 0),
    })
}

fn time(text: &str) -> Option<Timestamp> {
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_maps_to_an_account() {
        let raw = serde_json::json!({
            "id": "1",
            "primaryEmail": "Ann@d.example",
            "name": { "givenName": "Ann", "familyName": "Lee" },
            "aliases": ["b@d.example", "ann@d.example"],
            "nonEditableAliases": ["A@d.test.example", "b@d.example"],
            "archived": true,
            "orgUnitPath": "/Students",
            "externalIds": [{ "value": "x", "type": "custom" }, { "value": "42", "type": "organization" }],
            "creationTime": "2024-08-01T10:00:00.000Z",
            "lastLoginTime": NEVER
        });
        let a = account(raw).unwrap();
        assert_eq!(a.aliases, ["a@d.test.example", "b@d.example"]);
        assert!(a.suspended);
        assert_eq!(a.school_id.as_deref(), Some("42"));
        assert_eq!(a.last_sign_in, None);
        assert_eq!(a.created_at.map(|t| t.as_second()), Some(1_722_506_400));
        assert!(account(serde_json::json!({ "id": "2" })).is_err());
    }

    #[test]
    fn a_disabled_api_is_told_from_a_missing_privilege() {
        // The shapes Google documents for the two 403s of users.list.
        let disabled = r#"{"error":{"code":403,"message":"Admin SDK API has not been used in project 123 before or it is disabled.","errors":[{"domain":"usageLimits","reason":"accessNotConfigured"}],"status":"PERMISSION_DENIED"}}"#;
        let forbidden = r#"{"error":{"code":403,"message":"Not Authorized to access this resource/api","errors":[{"domain":"global","reason":"forbidden"}]}}"#;
        assert!(api_disabled(disabled));
        assert!(!api_disabled(forbidden));
    }
}
