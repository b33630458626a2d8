//! Microsoft Entra ID: the tenant's users read through Microsoft Graph v1.0, with an app
//! registration's client credentials (application permission `User.Read.All`, admin
//! consent granted): a client secret, or a certificate ([`Certificate`]: the token
//! request carries an RS256 client assertion naming the certificate by its SHA-1
//! thumbprint, `x5t`).
//!
//! Two reads: [`read_all`] lists `/v1.0/users`; [`read_delta`] walks `/v1.0/users/delta`
//! (a full read the first time, returning a delta link; the changes since that link
//! after). Both follow `@odata.nextLink`, only to the `graph_url` host: the access token
//! never goes elsewhere.
//!
//! Delta entries: this reader does not send `Prefer: return=minimal`, so, as Microsoft's
//! `user: delta` documentation says, a changed user comes back with every selected
//! property that has a value (the unchanged ones with their old value), and a property
//! left out has never been set. So a delta entry maps to a whole [`IdpAccount`], like a
//! list entry: a consumer replaces its copy of the account with it. A removed user
//! comes back as its id and `@removed` (reason `changed`: in the recycle bin for 30
//! days; `deleted`: gone for good): both go to [`AccountRead::removed`].
//!
//! An expired or unknown delta link fails with an error [`is_resync_needed`] recognises:
//! the caller then runs [`read_delta`] without a link (a full read).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use jiff::Timestamp;
use ring::rand::SecureRandom as _;
use ring::signature::RsaKeyPair;
use serde::Deserialize;
use serde_json::Value;
use sha1::Digest as _;

use crate::http::{Answer, Http, Retry};
use crate::{AccountRead, IdpAccount, IdpError, Provider};

/// Graph's host.
pub const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com";
/// The largest `$top` Graph accepts for users.
pub const MAX_PAGE_SIZE: u32 = 999;
/// The properties read of each user.
pub const SELECT: &str = "id,userPrincipalName,mail,otherMails,proxyAddresses,givenName,surname,accountEnabled,employeeId,createdDateTime,userType";
/// How every message of an error [`is_resync_needed`] recognises starts.
pub const RESYNC_NEEDED: &str = "Entra delta link no longer valid";

const SCOPE: &str = "https://graph.microsoft.com/.default";
const TIMEOUT: Duration = Duration::from_secs(100);

/// Where and how to read a tenant.
#[derive(Clone)]
pub struct EntraSettings {
    /// The Directory (tenant) ID, or the tenant's domain (`district.onmicrosoft.com`).
    pub tenant: String,
    /// The app registration's Application (client) ID.
    pub client_id: String,
    /// The client secret's value (never shown: not in `Debug`, not in messages); empty
    /// when a certificate is the credential.
    pub client_secret: String,
    /// The certificate credential, used instead of the secret when set.
    pub certificate: Option<Certificate>,
    /// `None`: `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`.
    pub token_url: Option<String>,
    /// Graph's root, without `/v1.0`.
    pub graph_url: String,
    pub policy: oneroster::net::AddressPolicy,
    /// `$top` of a users page (1 to 999).
    pub page_size: u32,
    pub retry: Retry,
}

impl EntraSettings {
    /// Settings for the public cloud: Microsoft's token URL and Graph host, public
    /// addresses only, pages of 999, the default retries.
    pub fn new(tenant: &str, client_id: &str, client_secret: &str) -> EntraSettings {
        EntraSettings {
            tenant: tenant.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            certificate: None,
            token_url: None,
            graph_url: DEFAULT_GRAPH_URL.to_owned(),
            policy: oneroster::net::AddressPolicy::PUBLIC_ONLY,
            page_size: MAX_PAGE_SIZE,
            retry: Retry::default(),
        }
    }

    /// The token URL these settings use.
    pub fn token_url(&self) -> String {
        match &self.token_url {
            Some(url) => url.clone(),
            None => format!(
                "https://login.microsoftonline.com/{}/oauth2/v2.0/token",
                self.tenant.trim()
            ),
        }
    }
}

impl std::fmt::Debug for EntraSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntraSettings")
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("certificate", &self.certificate)
            .field("token_url", &self.token_url)
            .field("graph_url", &self.graph_url)
            .field("policy", &self.policy)
            .field("page_size", &self.page_size)
            .field("retry", &self.retry)
            .finish()
    }
}

/// The `client_assertion_type` of a certificate credential.
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long a client assertion is good for, in seconds.
const ASSERTION_LIFETIME_SECONDS: i64 = 600;

/// An app registration's certificate credential: the private key that signs the client
/// assertion, and the SHA-1 thumbprint (`x5t`) by which Entra finds the certificate
/// uploaded under *Certificates & secrets*. The key is never shown.
#[derive(Clone)]
pub struct Certificate {
    key: Arc<RsaKeyPair>,
    thumbprint: String,
}

impl Certificate {
    /// From a PEM holding the private key (PKCS#8, `BEGIN PRIVATE KEY`) and the certificate
    /// (`BEGIN CERTIFICATE`), in one text — as `openssl req -x509 -newkey rsa:2048 -nodes
    /// -keyout key.pem -out cert.pem` makes them, concatenated.
    pub fn parse(pem: &str) -> Result<Certificate, IdpError> {
        let bad = |why: String| {
            IdpError::Config(format!(
                "the certificate file {why}: give a PEM file with the certificate's private key (BEGIN PRIVATE KEY) and the certificate (BEGIN CERTIFICATE)"
            ))
        };
        let key = crate::jwt::signing_key(pem).map_err(bad)?;
        let der = crate::jwt::pem_block(pem, "CERTIFICATE").map_err(bad)?;
        let thumbprint =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(&der));
        Ok(Certificate {
            key: Arc::new(key),
            thumbprint,
        })
    }

    /// The certificate's SHA-1 thumbprint, base64url (the assertion's `x5t`).
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// The signed client assertion for `client_id` at the token endpoint `audience`.
    fn assertion(&self, client_id: &str, audience: &str, now: i64) -> Result<String, IdpError> {
        let mut jti = [0u8; 16];
        ring::rand::SystemRandom::new()
            .fill(&mut jti)
            .map_err(|_| IdpError::Config("no random bytes for a client assertion".into()))?;
        let header = serde_json::json!({ "alg": "RS256", "typ": "JWT", "x5t": self.thumbprint });
        let claims = serde_json::json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": jti.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "nbf": now,
            "exp": now + ASSERTION_LIFETIME_SECONDS,
        });
        crate::jwt::sign_rs256(&self.key, &header, &claims).ok_or_else(|| {
            IdpError::Config(
                "cannot sign with the certificate's private key: make a new certificate".into(),
            )
        })
    }
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("thumbprint", &self.thumbprint)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// Whether `error` says a delta link expired or is unknown to Graph: read again with
/// [`read_delta`] and no link (a full read).
pub fn is_resync_needed(error: &IdpError) -> bool {
    matches!(error, IdpError::Protocol(m) if m.starts_with(RESYNC_NEEDED))
}

/// Every user of the tenant, through `/v1.0/users`.
pub async fn read_all(settings: &EntraSettings) -> Result<AccountRead, IdpError> {
    let mut reader = Reader::new(settings)?;
    let first = format!(
        "{}/v1.0/users?$select={SELECT}&$top={}",
        reader.graph,
        settings.page_size.clamp(1, MAX_PAGE_SIZE)
    );
    reader.walk(first, Kind::List).await
}

/// The users through `/v1.0/users/delta`: without `delta_link`, every user (`full`) and
/// the link for the next read (`next_delta`); with one, only the users changed since
/// (`full: false`) and the ids removed. `next_delta` is `None` when the read is not
/// `complete`: keep the link you had and read from it again.
pub async fn read_delta(
    settings: &EntraSettings,
    delta_link: Option<&str>,
) -> Result<AccountRead, IdpError> {
    let mut reader = Reader::new(settings)?;
    match delta_link {
        None => {
            let first = format!("{}/v1.0/users/delta?$select={SELECT}", reader.graph);
            reader.walk(first, Kind::Delta { full: true }).await
        }
        Some(link) => {
            reader.check_link("the delta link", link)?;
            reader
                .walk(link.to_owned(), Kind::Delta { full: false })
                .await
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    List,
    Delta { full: bool },
}

struct Reader<'a> {
    settings: &'a EntraSettings,
    http: Http,
    /// `graph_url` without a trailing slash.
    graph: String,
    /// Scheme, host and port of `graph_url`: the only origin paging links may point at.
    origin: (String, Option<String>, Option<u16>),
    token: Option<String>,
}

impl<'a> Reader<'a> {
    fn new(settings: &'a EntraSettings) -> Result<Reader<'a>, IdpError> {
        let tenant = settings.tenant.trim();
        if tenant.is_empty()
            || !tenant
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(IdpError::Config(format!(
                "tenant '{tenant}' is not a tenant id or domain: set `tenant` to the Directory (tenant) ID on the app's Overview page in the Entra admin center"
            )));
        }
        if settings.client_id.trim().is_empty() {
            return Err(IdpError::Config(
                "client_id is empty: set it to the app registration's Application (client) ID"
                    .into(),
            ));
        }
        if settings.client_secret.is_empty() && settings.certificate.is_none() {
            return Err(IdpError::Config(
                "client_secret is empty: set it to the Value of a secret under App registrations → the app → Certificates & secrets (or give certificate_file)".into(),
            ));
        }
        settings
            .policy
            .check_url("token_url", &settings.token_url())
            .map_err(IdpError::Config)?;
        let graph = settings.graph_url.trim().trim_end_matches('/').to_owned();
        let parsed = settings
            .policy
            .check_url("graph_url", &graph)
            .map_err(IdpError::Config)?;
        let origin = origin_of(&parsed);
        let mut http = Http::new(settings.policy, TIMEOUT)?;
        http.retry = settings.retry;
        Ok(Reader {
            settings,
            http,
            graph,
            origin,
            token: None,
        })
    }

    /// A paging or delta link must be on `graph_url`'s origin (it carries the token).
    fn check_link(&self, what: &str, link: &str) -> Result<(), IdpError> {
        let parsed = self
            .settings
            .policy
            .check_url(what, link)
            .map_err(IdpError::Config)?;
        if origin_of(&parsed) != self.origin {
            return Err(IdpError::Protocol(format!(
                "{what} '{}' is not on graph_url '{}': refusing to send the access token there",
                oneroster::net::redact_url(link),
                self.graph
            )));
        }
        Ok(())
    }

    /// An access token, asked for once per read (tokens last about an hour).
    async fn token(&mut self, renew: bool) -> Result<String, IdpError> {
        if let Some(token) = self.token.as_ref().filter(|_| !renew) {
            return Ok(token.clone());
        }
        let settings = self.settings;
        let url = settings.token_url();
        let client_id = settings.client_id.trim();
        let mut form: Vec<(&str, String)> = vec![
            ("client_id", client_id.to_owned()),
            ("scope", SCOPE.to_owned()),
            ("grant_type", "client_credentials".to_owned()),
        ];
        match &settings.certificate {
            Some(certificate) => {
                form.push(("client_assertion_type", CLIENT_ASSERTION_TYPE.to_owned()));
                form.push((
                    "client_assertion",
                    certificate.assertion(client_id, &url, Timestamp::now().as_second())?,
                ));
            }
            None => form.push(("client_secret", settings.client_secret.clone())),
        }
        let answer = self
            .http
            .send("Entra token request", |client| {
                client.post(&url).form(&form)
            })
            .await?;
        if !answer.is_success() {
            return Err(token_error(settings, &answer));
        }
        #[derive(Deserialize)]
        struct TokenAnswer {
            access_token: String,
        }
        let token = answer
            .json::<TokenAnswer>("Entra token request")
            .map_err(|e| scrub(settings, e))?
            .access_token;
        self.token = Some(token.clone());
        Ok(token)
    }

    /// One page: its JSON, after renewing the token once if Graph refused it.
    async fn page(&mut self, url: &str, what: &str) -> Result<Page, IdpError> {
        let mut renewed = false;
        loop {
            let token = self.token(renewed).await?;
            let answer = self
                .http
                .send(what, |client| client.get(url).bearer_auth(&token))
                .await?;
            if answer.status == 401 && !renewed {
                renewed = true;
                continue;
            }
            if !answer.is_success() {
                return Err(graph_error(self.settings, &answer, what));
            }
            return answer.json::<Page>(what);
        }
    }

    async fn walk(&mut self, first: String, kind: Kind) -> Result<AccountRead, IdpError> {
        let mut read = AccountRead {
            complete: true,
            full: kind != Kind::Delta { full: false },
            ..AccountRead::default()
        };
        let mut next = Some(first);
        let mut number = 0u32;
        let noun = if kind == Kind::List {
            "Graph users page"
        } else {
            "Graph users delta page"
        };
        while let Some(url) = next.take() {
            number += 1;
            let what = format!("{noun} {number}");
            let page = match self.page(&url, &what).await {
                Ok(page) => page,
                Err(e) if number == 1 => return Err(e),
                Err(e) => {
                    read.complete = false;
                    read.warnings.push(format!(
                        "the read stopped at page {number}, the {} accounts before it kept: {e}",
                        read.accounts.len()
                    ));
                    break;
                }
            };
            for entry in page.value {
                take_entry(&mut read, entry);
            }
            match (page.next_link, page.delta_link) {
                (Some(link), _) => match self.check_link("@odata.nextLink", &link) {
                    Ok(()) => next = Some(link),
                    Err(e) => {
                        read.complete = false;
                        read.warnings.push(e.to_string());
                    }
                },
                (None, Some(link)) if matches!(kind, Kind::Delta { .. }) => {
                    read.next_delta = Some(link);
                }
                (None, _) if matches!(kind, Kind::Delta { .. }) => {
                    read.complete = false;
                    read.warnings.push(format!(
                        "{what} ended the delta round with neither @odata.nextLink nor @odata.deltaLink"
                    ));
                }
                (None, _) => {}
            }
        }
        read.requests = self.http.requests();
        Ok(read)
    }
}

/// A page of users or of delta entries.
#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    value: Vec<Value>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink")]
    delta_link: Option<String>,
}

/// Graph's `user`, the selected properties.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct GraphUser {
    id: Option<String>,
    user_principal_name: Option<String>,
    mail: Option<String>,
    other_mails: Option<Vec<String>>,
    proxy_addresses: Option<Vec<String>>,
    given_name: Option<String>,
    surname: Option<String>,
    account_enabled: Option<bool>,
    employee_id: Option<String>,
    created_date_time: Option<String>,
    user_type: Option<String>,
}

fn take_entry(read: &mut AccountRead, entry: Value) {
    if entry.get("@removed").is_some() {
        match entry.get("id").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => read.removed.push(id.to_owned()),
            _ => read
                .warnings
                .push("a removed entry without an id was skipped".into()),
        }
        return;
    }
    let user = match serde_json::from_value::<GraphUser>(entry) {
        Ok(user) => user,
        Err(e) => {
            read.warnings.push(format!(
                "a user Graph sent could not be read and was skipped: {e}"
            ));
            return;
        }
    };
    match map_user(user) {
        Ok(account) => read.accounts.push(account),
        Err(warning) => read.warnings.push(warning),
    }
}

fn non_empty(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

/// A Graph user as an [`IdpAccount`], or why it was skipped.
fn map_user(user: GraphUser) -> Result<IdpAccount, String> {
    let id = non_empty(user.id);
    let login = non_empty(user.user_principal_name);
    let (id, login) = match (id, login) {
        (Some(id), Some(login)) => (id, login),
        (None, login) => {
            return Err(format!(
                "a user without an id was skipped (userPrincipalName {})",
                login.as_deref().unwrap_or("none")
            ));
        }
        (Some(id), None) => {
            return Err(format!(
                "user {id} has no userPrincipalName and was skipped"
            ));
        }
    };
    let proxies = user.proxy_addresses.unwrap_or_default();
    let smtp: Vec<(bool, String)> = proxies
        .iter()
        .filter_map(|p| {
            let (prefix, address) = p.split_once(':')?;
            prefix
                .eq_ignore_ascii_case("smtp")
                .then(|| (prefix == "SMTP", address.trim().to_owned()))
        })
        .filter(|(_, address)| !address.is_empty())
        .collect();
    let email = non_empty(user.mail).or_else(|| {
        smtp.iter()
            .find(|(primary, _)| *primary)
            .map(|(_, address)| address.clone())
    });
    let mut aliases: Vec<String> = user
        .other_mails
        .unwrap_or_default()
        .into_iter()
        .chain(smtp.into_iter().map(|(_, address)| address))
        .map(|a| a.trim().to_lowercase())
        .filter(|a| !a.is_empty())
        .filter(|a| *a != login.to_lowercase())
        .filter(|a| email.as_ref().is_none_or(|e| *a != e.to_lowercase()))
        .collect();
    aliases.sort();
    aliases.dedup();
    Ok(IdpAccount {
        provider: Provider::Microsoft,
        id,
        login,
        email,
        aliases,
        given_name: non_empty(user.given_name),
        family_name: non_empty(user.surname),
        suspended: user.account_enabled == Some(false),
        guest: user
            .user_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("guest")),
        org_unit: None,
        school_id: non_empty(user.employee_id),
        created_at: user
            .created_date_time
            .and_then(|t| t.parse::<Timestamp>().ok()),
        last_sign_in: None,
    })
}

fn origin_of(url: &reqwest::Url) -> (String, Option<String>, Option<u16>) {
    (
        url.scheme().to_owned(),
        url.host_str().map(str::to_ascii_lowercase),
        url.port_or_known_default(),
    )
}

/// A remote text or message with the client secret blanked out, whatever echoed it.
fn redact(settings: &EntraSettings, text: &str) -> String {
    if settings.client_secret.len() >= 4 {
        text.replace(settings.client_secret.as_str(), "[redacted]")
    } else {
        text.to_owned()
    }
}

fn scrub(settings: &EntraSettings, error: IdpError) -> IdpError {
    match error {
        IdpError::Config(m) => IdpError::Config(redact(settings, &m)),
        IdpError::Auth(m) => IdpError::Auth(redact(settings, &m)),
        IdpError::Unreachable(m) => IdpError::Unreachable(redact(settings, &m)),
        IdpError::Protocol(m) => IdpError::Protocol(redact(settings, &m)),
    }
}

/// What a refused token request means, in the terms of the setting to fix.
fn token_error(settings: &EntraSettings, answer: &Answer) -> IdpError {
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct AadError {
        error: String,
        error_description: String,
        error_codes: Vec<u64>,
    }
    let Ok(aad) = serde_json::from_slice::<AadError>(&answer.body) else {
        return IdpError::Protocol(redact(
            settings,
            &format!(
                "Entra token request to '{}' answered {} with something that is not AAD's error JSON: {}; check `token_url` and `tenant`",
                oneroster::net::redact_url(&settings.token_url()),
                answer.status,
                oneroster::net::short_remote_text(&String::from_utf8_lossy(&answer.body))
            ),
        ));
    };
    let has = |code: u64| {
        aad.error_codes.contains(&code)
            || aad.error_description.starts_with(&format!("AADSTS{code}:"))
    };
    let tenant = settings.tenant.trim();
    let client_id = settings.client_id.trim();
    let message = if has(90002) {
        format!(
            "Entra tenant '{tenant}' was not found (AADSTS90002): set `tenant` to the Directory (tenant) ID shown on the app's Overview page in the Entra admin center, or to the tenant's primary domain"
        )
    } else if has(700016) {
        format!(
            "no app with client id '{client_id}' in Entra tenant '{tenant}' (AADSTS700016): set `client_id` to the Application (client) ID on the Overview page of the app registration in that tenant (Entra admin center → App registrations)"
        )
    } else if settings.certificate.is_some() && (has(700027) || has(700024)) {
        format!(
            "Entra did not accept the certificate of app '{client_id}' (AADSTS{}): upload the certificate (its public part) under App registrations → the app → Certificates & secrets → Certificates, make sure certificate_file holds that certificate with its private key, and check this machine's clock",
            if has(700024) { 700024 } else { 700027 }
        )
    } else if has(7000215) || has(7000222) {
        format!(
            "Entra rejected the client secret of app '{client_id}' (AADSTS{}): it may have expired, or be the secret's ID instead of its value. Make a new one under App registrations → the app → Certificates & secrets and set `client_secret` to its Value",
            if has(7000222) { 7000222 } else { 7000215 }
        )
    } else {
        format!(
            "Entra token request refused ({}): {}: {}",
            answer.status,
            oneroster::net::short_remote_text(&aad.error),
            oneroster::net::short_remote_text(&aad.error_description)
        )
    };
    IdpError::Auth(redact(settings, &message))
}

/// What a Graph error answer means.
fn graph_error(settings: &EntraSettings, answer: &Answer, what: &str) -> IdpError {
    let error: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    let code = error["error"]["code"].as_str().unwrap_or("");
    let remote = error["error"]["message"]
        .as_str()
        .map(oneroster::net::short_remote_text)
        .unwrap_or_else(|| {
            oneroster::net::short_remote_text(&String::from_utf8_lossy(&answer.body))
        });
    let message = match (answer.status, code) {
        (403, _) => IdpError::Auth(format!(
            "{what}: Microsoft Graph refused to list users ({code}): app '{}' lacks the Microsoft Graph application permission User.Read.All with admin consent. In the Entra admin center → App registrations → the app → API permissions, add Microsoft Graph → Application permissions → User.Read.All, then Grant admin consent",
            settings.client_id.trim()
        )),
        (401, _) => IdpError::Auth(format!(
            "{what}: Microsoft Graph refused the access token twice ({code}: {remote}); check that `token_url` and `graph_url` belong to the same cloud"
        )),
        (410, _)
        | (
            400,
            "syncStateNotFound"
            | "resyncRequired"
            | "syncStateInvalid"
            | "Directory_ExpiredPageToken",
        ) => IdpError::Protocol(format!(
            "{RESYNC_NEEDED} ({what}: {} {code}: {remote}): run a full read (read_delta without a link)",
            answer.status
        )),
        (status, _) => IdpError::Protocol(format!(
            "{what}: Microsoft Graph answered {status} {code}: {remote}"
        )),
    };
    scrub(settings, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(json: Value) -> Result<IdpAccount, String> {
        map_user(serde_json::from_value(json).expect("user json"))
    }

    #[test]
    fn email_falls_back_to_the_primary_smtp_proxy() {
        let account = user(serde_json::json!({
            "id": "1", "userPrincipalName": "ana@d.onmicrosoft.com", "mail": null,
            "proxyAddresses": ["smtp:Ana.Old@d.org", "SMTP:ana@d.org", "SIP:ana@d.org"],
            "otherMails": ["ANA@home.example", "ana@home.example"]
        }))
        .expect("mapped");
        assert_eq!(account.email.as_deref(), Some("ana@d.org"));
        assert_eq!(account.aliases, ["ana.old@d.org", "ana@home.example"]);
        assert!(!account.suspended, "accountEnabled absent is not a block");
    }

    #[test]
    fn records_without_id_or_upn_are_refused() {
        assert!(user(serde_json::json!({"userPrincipalName": "a@b"})).is_err());
        assert!(user(serde_json::json!({"id": "1"})).is_err());
    }

    #[test]
    fn debug_hides_the_secret() {
        let settings = EntraSettings::new("t", "c", "very-secret-value");
        assert!(!format!("{settings:?}").contains("very-secret-value"));
    }

    #[test]
    fn resync_is_recognised_by_prefix() {
        assert!(is_resync_needed(&IdpError::Protocol(format!(
            "{RESYNC_NEEDED} (x)"
        ))));
        assert!(!is_resync_needed(&IdpError::Protocol("other".into())));
    }
}
