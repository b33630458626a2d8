//! The district's settings as code: the TOML an admin imports and exports, parsed once
//! into a validated [`Config`] that everything after trusts.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::directory::Field;
use crate::target::TargetConfig;

/// A secret value: never printed, never serialised.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(set)")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// The whole settings file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Global switches: a disabled field is written by no source.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<Field, FieldSwitch>,
    #[serde(default, rename = "source")]
    pub sources: Vec<SourceConfig>,
    /// Where the directory is pushed (`[[target]]`).
    #[serde(default, rename = "target", skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetConfig>,
    /// Which internal networks sources and webhooks may reach (owner only).
    #[serde(default, skip_serializing_if = "Network::is_default")]
    pub network: Network,
}

/// The internal address ranges the server may send requests to. Link-local and
/// metadata addresses (169.254.0.0/16, fe80::/10) are never reached, whatever this says;
/// public addresses always may be.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// 127.0.0.0/8 and ::1: this machine.
    #[serde(default)]
    pub allow_loopback: bool,
    /// 10/8, 172.16/12, 192.168/16, 100.64/10 and fc00::/7: a SIS on the district's own
    /// network.
    #[serde(default)]
    pub allow_private: bool,
}

impl Network {
    pub fn is_default(&self) -> bool {
        *self == Network::default()
    }
}

/// Where a source's credentials go: they may be sent only where they were given for.
/// Two sources' destinations differ when the kind, the auth method, or the scheme, host
/// or port of the API or token URL differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialDestination {
    kind: SourceKind,
    auth: AuthMethod,
    url: Option<String>,
    token_url: Option<String>,
}

/// `scheme://host:port` of a URL, lower-cased, the default port filled in; the whole
/// text when it does not parse (so any change of it counts).
fn origin(url: &str) -> String {
    let lower = url.trim().to_ascii_lowercase();
    let Some((scheme, rest)) = lower.split_once("://") else {
        return lower;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    // `host:443` or `[::1]:443` (an IPv6 address's own colons end in `]`).
    let has_port = host_port
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if has_port {
        format!("{scheme}://{host_port}")
    } else {
        let port = match scheme {
            "https" => 443,
            "http" => 80,
            _ => 0,
        };
        format!("{scheme}://{host_port}:{port}")
    }
}

/// Whether two URLs have the same scheme, host and port (a credential given for one may
/// be sent to the other).
pub fn same_origin(a: &str, b: &str) -> bool {
    origin(a) == origin(b)
}

/// Whether a URL carries `user:password@`.
fn has_userinfo(url: &str) -> bool {
    url.split_once("://").is_some_and(|(_, rest)| {
        rest.split(['/', '?', '#'])
            .next()
            .is_some_and(|authority| authority.contains('@'))
    })
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FieldSwitch {
    pub enabled: bool,
}

/// What a source is: a SIS (OneRoster over REST or in a CSV package), or an account
/// source, an identity provider whose accounts the directory links (Google Workspace and
/// Microsoft Entra ID, read; a SCIM connection, pushed to `/scim/v2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceKind {
    #[serde(rename = "oneroster-api")]
    OneRosterApi,
    #[serde(rename = "oneroster-csv")]
    OneRosterCsv,
    #[serde(rename = "google-workspace")]
    GoogleWorkspace,
    #[serde(rename = "entra-id")]
    EntraId,
    #[serde(rename = "scim")]
    Scim,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthMethod {
    #[serde(rename = "oauth2")]
    OAuth2,
    #[serde(rename = "oauth1-sha256")]
    OAuth1Sha256,
    #[serde(rename = "oauth1-sha1")]
    OAuth1Sha1,
    #[serde(rename = "none")]
    None,
}

impl SourceKind {
    /// How the settings spell it (`kind = "…"`).
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::OneRosterApi => "oneroster-api",
            SourceKind::OneRosterCsv => "oneroster-csv",
            SourceKind::GoogleWorkspace => "google-workspace",
            SourceKind::EntraId => "entra-id",
            SourceKind::Scim => "scim",
        }
    }

    /// Every kind, SIS kinds first.
    pub const ALL: [SourceKind; 5] = [
        SourceKind::OneRosterApi,
        SourceKind::OneRosterCsv,
        SourceKind::GoogleWorkspace,
        SourceKind::EntraId,
        SourceKind::Scim,
    ];

    /// The kind the settings spell `s`.
    pub fn parse(s: &str) -> Option<SourceKind> {
        SourceKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// An identity provider's accounts (not a SIS's people): its links are sign-in
    /// identities, and it never makes an account "linked to the SIS".
    pub fn is_account_source(self) -> bool {
        matches!(
            self,
            SourceKind::GoogleWorkspace | SourceKind::EntraId | SourceKind::Scim
        )
    }
}

/// What an account source does to a directory account whose identity is suspended in
/// the provider or gone from a complete read (`deactivate = "…"`). The identity's state is
/// recorded whatever this says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountDeactivation {
    /// Deactivate only accounts no SIS source links: the SIS decides for its people.
    #[default]
    #[serde(rename = "unmanaged")]
    Unmanaged,
    /// Never deactivate: record the provider's state only.
    #[serde(rename = "never")]
    Never,
    /// Deactivate whoever the account belongs to.
    #[serde(rename = "always")]
    Always,
}

impl AccountDeactivation {
    pub fn is_default(&self) -> bool {
        *self == AccountDeactivation::default()
    }
}

impl AuthMethod {
    /// Every method, in the order forms list them.
    pub const ALL: [AuthMethod; 4] = [
        AuthMethod::OAuth2,
        AuthMethod::OAuth1Sha256,
        AuthMethod::OAuth1Sha1,
        AuthMethod::None,
    ];

    /// How the settings, forms and the command line spell it (`auth = "…"`).
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::OAuth2 => "oauth2",
            AuthMethod::OAuth1Sha256 => "oauth1-sha256",
            AuthMethod::OAuth1Sha1 => "oauth1-sha1",
            AuthMethod::None => "none",
        }
    }

    /// The method spelled `s`.
    pub fn parse(s: &str) -> Option<AuthMethod> {
        AuthMethod::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

impl std::str::FromStr for AuthMethod {
    type Err = String;

    fn from_str(s: &str) -> Result<AuthMethod, String> {
        AuthMethod::parse(s).ok_or_else(|| {
            format!("'{s}' is not an auth method: use oauth2, oauth1-sha256, oauth1-sha1 or none")
        })
    }
}

/// How a source is reached, read from its settings once and trusted after: a CSV
/// package's path, or a REST base URL with everything its auth method needs (no field
/// the method needs is missing). [`SourceConfig::access`] makes it; settings that cannot
/// make one do not validate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceAccess<'a> {
    /// A CSV zip or folder.
    Csv { path: &'a str },
    /// A OneRoster REST base URL (http or https, the part before `/users`).
    Rest { url: &'a str, auth: RestAuth<'a> },
    /// Google Workspace's Directory API, as a service account acting for `subject` (the
    /// key file is the source's stored secret).
    Google {
        subject: &'a str,
        /// `None`: `my_customer`, the subject's own account.
        customer: Option<&'a str>,
        domain: Option<&'a str>,
        query: Option<&'a str>,
        /// `None`: Google's.
        api_url: Option<&'a str>,
    },
    /// Microsoft Graph, with an app registration's client credentials (the secret stored
    /// or named by `client_secret_env`).
    Entra {
        tenant: &'a str,
        client_id: &'a str,
        /// `None`: the tenant's token endpoint at Microsoft.
        token_url: Option<&'a str>,
        /// `None`: Microsoft's Graph.
        graph_url: Option<&'a str>,
    },
    /// A SCIM connection: nothing is reached; the identity provider pushes to
    /// `/scim/v2` with a token of scope `scim` named after the source.
    Scim,
}

/// A REST source's credentials, as its auth method needs them. The secret is not here:
/// it is stored encrypted (or named by `client_secret_env`) and handed over at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestAuth<'a> {
    None,
    OAuth1 {
        client_id: &'a str,
        /// HMAC-SHA1 (old servers) instead of HMAC-SHA256.
        sha1: bool,
    },
    OAuth2 {
        client_id: &'a str,
        token_url: &'a str,
        scope: Option<&'a str>,
        /// Credentials as form fields instead of HTTP Basic.
        form_credentials: bool,
    },
}

/// Per field, per source: overwrite whatever is there, or fill only empty values (and
/// values this same source wrote).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Priority {
    #[default]
    #[serde(rename = "always")]
    Always,
    #[serde(rename = "if-not-set")]
    IfNotSet,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub name: String,
    pub kind: SourceKind,
    /// REST base URL (the part before `/users`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// CSV zip or folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Only read from a file being imported; stored encrypted, never written back out.
    #[serde(default, skip_serializing)]
    pub client_secret: Option<Secret>,
    /// Name of an environment variable holding the secret, read at sync time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthMethod>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Send OAuth 2 credentials as form fields rather than HTTP Basic.
    #[serde(default, skip_serializing_if = "is_false")]
    pub form_credentials: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    /// Attempts per request (the first included) before a pull gives up; default 6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_attempts: Option<u32>,
    /// When the SIS credentials expire (the console warns ahead of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_expires: Option<jiff::civil::Date>,
    #[serde(default)]
    pub user_mapping: UserMapping,
    #[serde(default)]
    pub import: ImportOptions,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub field_priority: BTreeMap<Field, Priority>,
    #[serde(default)]
    pub features: Features,
    #[serde(default)]
    pub locations: LocationMapping,
    #[serde(default)]
    pub safeguards: Safeguards,
    /// Where to send a JSON event when a run is held or fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// Whether the help desk offers this source as a ticketable item (the Models tab).
    #[serde(default = "yes")]
    pub available_for_tickets: bool,
    /// When `rostersync serve` syncs the source by itself (full and delta).
    #[serde(default)]
    pub schedule: crate::schedule::Schedule,
    /// Bounds on what one read of the source may hold (`[source.limits]`).
    #[serde(default, skip_serializing_if = "SourceLimits::is_default")]
    pub limits: SourceLimits,
    /// Google Workspace: a service-account key file (JSON), read by `config import` and
    /// stored encrypted as the source's secret; never written back out.
    #[serde(default, skip_serializing)]
    pub key_file: Option<String>,
    /// Entra ID: a PEM file with the app's certificate and its private key, read by
    /// `config import` and stored encrypted as the source's secret (instead of a client
    /// secret); never written back out.
    #[serde(default, skip_serializing)]
    pub certificate_file: Option<String>,
    /// Google Workspace: the admin the service account acts for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Google Workspace: the customer id (default `my_customer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// Google Workspace: read one domain's users instead of the customer's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Google Workspace: a `users.list` search, e.g. `orgUnitPath='/Students'`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Google Workspace: the Admin SDK's base URL (default Google's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// Entra ID: the Directory (tenant) ID or the tenant's domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Entra ID: Graph's base URL (default Microsoft's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph_url: Option<String>,
    /// Account sources: what a suspended or vanished identity does to its account.
    #[serde(default, skip_serializing_if = "AccountDeactivation::is_default")]
    pub deactivate: AccountDeactivation,
}

/// Raised (or lowered) bounds on a source's reads; what is left out keeps the reader's
/// default (docs/cli.md, *Limits*).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SourceLimits {
    /// The largest REST response body, in MiB (default 256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_response_mb: Option<u64>,
    /// The largest CSV file, uncompressed, in MiB (default 8 192).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_file_mb: Option<u64>,
    /// The longest CSV row, in KiB (default 1 024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_record_kb: Option<u64>,
    /// The longest CSV cell (list item), in characters (default 1 024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cell_chars: Option<u64>,
}

impl SourceLimits {
    pub fn is_default(&self) -> bool {
        *self == SourceLimits::default()
    }
}

/// Optional capabilities of a source.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Features {
    /// Guardians get requestor access (and see their students); otherwise their
    /// accounts exist without access.
    #[serde(default)]
    pub guardian_logins: bool,
}

/// Mass-change thresholds: a run that would cross one is held for approval, nothing
/// applied. Shares are of the source's active linked accounts (of one school for
/// `max_school_loss_percent`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Safeguards {
    #[serde(default = "five")]
    pub max_deactivations_percent: f64,
    #[serde(default = "five_hundred")]
    pub max_deactivations: u64,
    /// Any one school losing more than this share of its people.
    #[serde(default = "twenty")]
    pub max_school_loss_percent: f64,
    #[serde(default = "half")]
    pub max_creations_percent: f64,
    #[serde(default = "half")]
    pub max_updates_percent: f64,
    /// District-wide shares apply only once the source has this many active linked
    /// accounts (a first import, or a tiny test district, is not judged by share).
    #[serde(default = "fifty")]
    pub min_population: u64,
    /// Schools and roles smaller than this are not judged (a school of 3 losing one
    /// person is not an outage).
    #[serde(default = "ten")]
    pub min_school_size: u64,
}

fn five() -> f64 {
    5.0
}

fn five_hundred() -> u64 {
    500
}

fn twenty() -> f64 {
    20.0
}

fn half() -> f64 {
    50.0
}

fn ten() -> u64 {
    10
}

fn fifty() -> u64 {
    50
}

impl Default for Safeguards {
    fn default() -> Self {
        Safeguards {
            max_deactivations_percent: five(),
            max_deactivations: five_hundred(),
            max_school_loss_percent: twenty(),
            max_creations_percent: half(),
            max_updates_percent: half(),
            min_population: fifty(),
            min_school_size: ten(),
        }
    }
}

/// SIS schools → directory locations.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LocationMapping {
    /// For people whose school is not mapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// Org sourcedId → location name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub map: BTreeMap<String, String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UserMapping {
    /// SIS email domain → directory domain, first matching rule wins.
    #[serde(default)]
    pub translate_email: Vec<EmailTranslation>,
    /// For people with no SIS email: email = username@this domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub append_domain: Option<String>,
    /// Link existing accounts by email (and username@domain). Off: only existing links
    /// and aliases match.
    #[serde(default = "yes")]
    pub match_by_email: bool,
    /// Link existing accounts by the school id number.
    #[serde(default)]
    pub match_by_identifier: bool,
}

impl Default for UserMapping {
    fn default() -> Self {
        UserMapping {
            translate_email: Vec::new(),
            append_domain: None,
            match_by_email: true,
            match_by_identifier: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EmailTranslation {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ImportOptions {
    #[serde(default = "yes")]
    pub students: bool,
    #[serde(default = "yes")]
    pub teachers: bool,
    /// Administrators, principals, counselors, aides, proctors.
    #[serde(default = "yes")]
    pub administrators: bool,
    /// Guardians, parents, relatives.
    #[serde(default)]
    pub other_users: bool,
    /// Create accounts for people the SIS marks disabled or `tobedeleted` (inactive).
    #[serde(default)]
    pub include_inactive: bool,
    /// Deactivate linked accounts whose person is disabled, `tobedeleted`, or absent from
    /// complete full pulls.
    #[serde(default = "yes")]
    pub deactivate_users: bool,
    /// Let the sync lower an agent's or admin's access (and deactivate them).
    #[serde(default)]
    pub allow_role_downgrades: bool,
    /// Do not sync guardian ↔ student relationships.
    #[serde(default)]
    pub skip_relationships: bool,
    /// Set each person's homeroom room from their homeroom class.
    #[serde(default = "yes")]
    pub add_rooms: bool,
    /// Do not sync academic sessions as calendars.
    #[serde(default)]
    pub skip_calendars: bool,
    /// Consecutive complete full pulls a linked person must be missing from before their
    /// account is deactivated.
    #[serde(default = "one")]
    pub deactivate_after_misses: u32,
    /// Days after deactivation within which a returning person gets the same account back.
    #[serde(default = "year")]
    pub relink_grace_days: u32,
}

fn one() -> u32 {
    1
}

fn year() -> u32 {
    365
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            students: true,
            teachers: true,
            administrators: true,
            other_users: false,
            include_inactive: false,
            deactivate_users: true,
            allow_role_downgrades: false,
            skip_relationships: false,
            add_rooms: true,
            skip_calendars: false,
            deactivate_after_misses: 1,
            relink_grace_days: 365,
        }
    }
}

/// A TOML error in the admin's words: the line, the setting as written, and what was
/// expected in plain terms ("a date like 2026-09-30", "a whole number"), not the
/// parser's.
fn plain_toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim();
    let expected = if message.contains("as year")
        || message.contains("invalid date")
        || message.contains("expected month")
        || message.contains("expected day")
        || message.contains("civil date")
    {
        "expected a date like 2026-09-30 (YYYY-MM-DD)".to_owned()
    } else if [
        "expected u8",
        "expected u16",
        "expected u32",
        "expected u64",
        "expected usize",
    ]
    .iter()
    .any(|t| message.contains(t))
    {
        "expected a whole number, without quotes".to_owned()
    } else if message.contains("expected f64") || message.contains("expected f32") {
        "expected a number, without quotes".to_owned()
    } else if message.contains("expected a boolean") || message.contains("expected bool") {
        "expected true or false, without quotes".to_owned()
    } else {
        message.to_owned()
    };
    let Some(span) = e.span() else {
        return expected;
    };
    let line_no = text[..span.start.min(text.len())].matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
    // A setting that may hold a secret is named, never quoted: its value is hidden in the
    // line and in the parser's words, which can repeat it.
    if let Some((key, value)) = line.split_once('=')
        && oneroster::net::names_a_credential(key)
    {
        let key = key.trim();
        let mut expected = expected;
        for v in [value.trim(), value.trim().trim_matches(['"', '\'']).trim()] {
            // A value this short would garble the parser's words, and hides little.
            if v.len() >= 4 {
                expected = expected.replace(v, "…");
            }
        }
        return format!("line {line_no} (`{key} = …`, value hidden): {expected}");
    }
    let shown: String = line.chars().take(80).collect();
    format!("line {line_no} (`{shown}`): {expected}")
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("a mistake in the settings: {0}")]
    Parse(String),
    #[error("[[source]] #{index} ({name}): {problem}")]
    Source {
        index: usize,
        name: String,
        problem: String,
    },
    #[error("[[target]] #{index} ({name}): {problem}")]
    Target {
        index: usize,
        name: String,
        problem: String,
    },
}

/// Why a request names no usable source ([`Config::which_source`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoSource {
    /// The source named is not configured; `configured` are the names that are.
    Unknown {
        name: String,
        configured: Vec<String>,
    },
    /// None was named and none is configured.
    NoneConfigured,
    /// None was named and several are configured (by name): the request must say which.
    Several(Vec<String>),
}

impl NoSource {
    /// The sentence, with `how` saying how to name one (`pass --source NAME`, `give
    /// "source"`).
    pub fn describe(&self, how: &str) -> String {
        match self {
            NoSource::Unknown { name, configured } if configured.is_empty() => format!(
                "no source named '{name}': no sources are configured (rostersync config import FILE.toml)"
            ),
            NoSource::Unknown { name, configured } => format!(
                "no source named '{name}'; configured: {}",
                configured.join(", ")
            ),
            NoSource::NoneConfigured => {
                "no sources are configured: rostersync config import FILE.toml".to_owned()
            }
            NoSource::Several(names) => format!(
                "several sources are configured ({}): {how}",
                names.join(", ")
            ),
        }
    }
}

impl Config {
    /// The source a request means: the one it names (an empty name is none), else the
    /// only one configured. The one rule the CLI, the API and the engine use.
    pub fn which_source(&self, given: Option<&str>) -> Result<&SourceConfig, NoSource> {
        let names = || self.sources.iter().map(|s| s.name.clone()).collect();
        match given.filter(|g| !g.is_empty()) {
            Some(name) => self.source(name).ok_or_else(|| NoSource::Unknown {
                name: name.to_owned(),
                configured: names(),
            }),
            None => match self.sources.as_slice() {
                [one] => Ok(one),
                [] => Err(NoSource::NoneConfigured),
                _ => Err(NoSource::Several(names())),
            },
        }
    }

    /// Parses and validates a settings file.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config =
            toml::from_str(text).map_err(|e| ConfigError::Parse(plain_toml_error(text, &e)))?;
        config.validate()?;
        Ok(config)
    }

    /// The same settings as TOML, secrets left out.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot encode settings: {e}\n"))
    }

    pub fn source(&self, name: &str) -> Option<&SourceConfig> {
        self.sources.iter().find(|s| s.name == name)
    }

    /// Whether any source may write this field.
    pub fn field_enabled(&self, f: Field) -> bool {
        self.fields.get(&f).is_none_or(|s| s.enabled)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        for (i, s) in self.sources.iter().enumerate() {
            let fail = |problem: String| ConfigError::Source {
                index: i + 1,
                name: s.name.clone(),
                problem,
            };
            if s.name.is_empty()
                || !s
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(fail(format!(
                    "name '{}' must be letters, digits, '-' or '_'",
                    s.name
                )));
            }
            if self.sources[..i].iter().any(|o| o.name == s.name) {
                return Err(fail("another source has the same name".into()));
            }
            s.settings_of_its_kind().map_err(fail)?;
            s.access().map_err(fail)?;
            if let Some(v) = &s.version
                && oneroster::Version::parse(v).is_none()
            {
                return Err(fail(format!(
                    "version = \"{v}\" must be \"1.1\" or \"1.2\""
                )));
            }
            if let Err(problem) = s.schedule.validate() {
                return Err(fail(format!("[source.schedule]: {problem}")));
            }
            if s.page_size == Some(0) {
                return Err(fail("page_size must be at least 1".into()));
            }
            if s.import.deactivate_after_misses == 0 {
                return Err(fail("deactivate_after_misses must be at least 1".into()));
            }
            if matches!(s.retry_attempts, Some(0) | Some(11..)) {
                return Err(fail("retry_attempts must be 1 to 10".into()));
            }
            let l = &s.limits;
            for (name, value) in [
                ("max_response_mb", l.max_response_mb),
                ("max_file_mb", l.max_file_mb),
                ("max_record_kb", l.max_record_kb),
                ("max_cell_chars", l.max_cell_chars),
            ] {
                if value == Some(0) {
                    return Err(fail(format!("[source.limits] {name} must be at least 1")));
                }
            }
            if matches!(s.concurrency, Some(0) | Some(6..)) {
                return Err(fail("concurrency must be 1 to 5".into()));
            }
            for t in &s.user_mapping.translate_email {
                for d in [&t.from, &t.to] {
                    if !is_domain(d) {
                        return Err(fail(format!(
                            "translate_email domain '{d}' must be a bare domain like district.k12.us"
                        )));
                    }
                }
            }
            if let Some(url) = &s.webhook_url
                && !(url.starts_with("https://") || url.starts_with("http://"))
            {
                return Err(fail("webhook_url must be an http(s) URL".into()));
            }
            if s.webhook_url.as_deref().is_some_and(has_userinfo) {
                return Err(fail(
                    "webhook_url carries a user name or password, which rostersync will not send: use the address the service gave, whose path is its secret".into(),
                ));
            }
            for (key, url) in [("url", &s.url), ("token_url", &s.token_url)] {
                if url.as_deref().is_some_and(has_userinfo) {
                    return Err(fail(format!(
                        "{key} carries a user name or password: put credentials in client_id and client_secret, not in the URL"
                    )));
                }
            }
            if let Some(var) = &s.client_secret_env
                && (var.to_ascii_uppercase().starts_with("ROSTERSYNC_") || var.is_empty())
            {
                return Err(fail(
                    "client_secret_env may not name a ROSTERSYNC_* variable: those hold rostersync's own keys; use a name of your own, e.g. SIS_CLIENT_SECRET".into(),
                ));
            }
            let g = &s.safeguards;
            for (name, v) in [
                ("max_deactivations_percent", g.max_deactivations_percent),
                ("max_school_loss_percent", g.max_school_loss_percent),
                ("max_creations_percent", g.max_creations_percent),
                ("max_updates_percent", g.max_updates_percent),
            ] {
                if !(0.0..=100.0).contains(&v) {
                    return Err(fail(format!("safeguards.{name} must be between 0 and 100")));
                }
            }
            if let Some(d) = &s.user_mapping.append_domain
                && !is_domain(d)
            {
                return Err(fail(format!(
                    "append_domain '{d}' must be a bare domain like district.k12.us"
                )));
            }
        }
        self.validate_targets()
    }

    fn validate_targets(&self) -> Result<(), ConfigError> {
        for (i, t) in self.targets.iter().enumerate() {
            let fail = |problem: String| ConfigError::Target {
                index: i + 1,
                name: t.name.clone(),
                problem,
            };
            if t.name.is_empty()
                || !t
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(fail(format!(
                    "name '{}' must be letters, digits, '-' or '_'",
                    t.name
                )));
            }
            if self.targets[..i].iter().any(|o| o.name == t.name) {
                return Err(fail("another target has the same name".into()));
            }
            // Runs, locks and history name a target like a source: one namespace.
            if self.source(&t.name).is_some() {
                return Err(fail(
                    "a source has the same name: targets and sources are named apart".into(),
                ));
            }
            for followed in &t.follows {
                match self.source(followed) {
                    None => {
                        return Err(fail(format!(
                            "follows '{followed}', which is not a source of these settings"
                        )));
                    }
                    Some(s) if s.kind == SourceKind::Scim => {
                        return Err(fail(format!(
                            "follows '{followed}', a SCIM connection, which has no syncs to follow"
                        )));
                    }
                    Some(_) => {}
                }
            }
            if let Some(var) = &t.token_env
                && var.to_ascii_uppercase().starts_with("ROSTERSYNC_")
            {
                return Err(fail(
                    "token_env may not name a ROSTERSYNC_* variable: those hold rostersync's own keys; use a name of your own, e.g. HELPDESK_SCIM_TOKEN".into(),
                ));
            }
            let g = &t.safeguards;
            for (name, v) in [
                ("max_deactivations_percent", g.max_deactivations_percent),
                ("max_creations_percent", g.max_creations_percent),
                ("max_updates_percent", g.max_updates_percent),
            ] {
                if !(0.0..=100.0).contains(&v) {
                    return Err(fail(format!("safeguards.{name} must be between 0 and 100")));
                }
            }
            if let Some(problem) = t.problem() {
                return Err(fail(problem));
            }
        }
        Ok(())
    }

    pub fn target(&self, name: &str) -> Option<&TargetConfig> {
        self.targets.iter().find(|t| t.name == name)
    }
}

/// Settings only OneRoster sources (REST or CSV) read.
const ONEROSTER_ONLY: &str = "OneRoster sources (oneroster-api, oneroster-csv)";

impl SourceConfig {
    /// Refuses a setting of another kind of source (`subject` on an Entra source, `url`
    /// on a Google one, `deactivate` on a SIS), saying which kind it is for, and the
    /// account settings that contradict each other.
    fn settings_of_its_kind(&self) -> Result<(), String> {
        fn set(v: &Option<String>) -> bool {
            v.as_deref().is_some_and(|v| !v.trim().is_empty())
        }
        let google = SourceKind::GoogleWorkspace.as_str();
        let entra = SourceKind::EntraId.as_str();
        // (setting, written, the kinds it is for in words, whether this kind takes it)
        let oneroster = !self.kind.is_account_source();
        let is_google = self.kind == SourceKind::GoogleWorkspace;
        let is_entra = self.kind == SourceKind::EntraId;
        let google_only = format!("{google} sources");
        let entra_only = format!("{entra} sources");
        let rest_or_entra = format!("oneroster-api and {entra} sources");
        // A Google service account's are in its key file; a SCIM connection has none.
        let takes_credentials = !is_google && self.kind != SourceKind::Scim;
        let checks: [(&str, bool, &str, bool); 19] = [
            ("key_file", set(&self.key_file), &google_only, is_google),
            ("subject", set(&self.subject), &google_only, is_google),
            ("customer", set(&self.customer), &google_only, is_google),
            ("domain", set(&self.domain), &google_only, is_google),
            ("query", set(&self.query), &google_only, is_google),
            ("api_url", set(&self.api_url), &google_only, is_google),
            ("tenant", set(&self.tenant), &entra_only, is_entra),
            ("graph_url", set(&self.graph_url), &entra_only, is_entra),
            (
                "certificate_file",
                set(&self.certificate_file),
                &entra_only,
                is_entra,
            ),
            ("url", set(&self.url), ONEROSTER_ONLY, oneroster),
            ("path", set(&self.path), ONEROSTER_ONLY, oneroster),
            ("auth", self.auth.is_some(), ONEROSTER_ONLY, oneroster),
            ("scope", set(&self.scope), ONEROSTER_ONLY, oneroster),
            (
                "form_credentials",
                self.form_credentials,
                ONEROSTER_ONLY,
                oneroster,
            ),
            ("version", set(&self.version), ONEROSTER_ONLY, oneroster),
            (
                "client_id",
                set(&self.client_id),
                &rest_or_entra,
                takes_credentials,
            ),
            (
                "client_secret",
                self.client_secret
                    .as_ref()
                    .is_some_and(|s| !s.expose().is_empty()),
                &rest_or_entra,
                takes_credentials,
            ),
            (
                "client_secret_env",
                self.client_secret_env.is_some(),
                &rest_or_entra,
                takes_credentials,
            ),
            (
                "token_url",
                set(&self.token_url),
                &rest_or_entra,
                takes_credentials,
            ),
        ];
        for (key, written, kinds, takes) in checks {
            if written && !takes {
                let instead = if is_google && kinds == rest_or_entra {
                    ": a Google service account's credentials are all in its key_file"
                } else {
                    ""
                };
                return Err(format!(
                    "{key} is a setting of {kinds}, not of kind = \"{}\"{instead}",
                    self.kind.as_str()
                ));
            }
        }
        if !self.deactivate.is_default() && !self.kind.is_account_source() {
            return Err(format!(
                "deactivate is a setting of account sources ({google}, {entra}), not of kind = \"{}\": a SIS source deactivates with [source.import] deactivate_users",
                self.kind.as_str()
            ));
        }
        if set(&self.certificate_file)
            && (self
                .client_secret
                .as_ref()
                .is_some_and(|s| !s.expose().is_empty())
                || self.client_secret_env.is_some())
        {
            return Err(
                "certificate_file and a client secret (client_secret, client_secret_env) are two credentials: give one"
                    .into(),
            );
        }
        if set(&self.customer) && set(&self.domain) {
            return Err(
                "set customer or domain, not both: customer reads every user of the Workspace account, domain the users of one of its domains".into(),
            );
        }
        if let Some(d) = self.domain.as_deref().filter(|d| !d.trim().is_empty())
            && !is_domain(d)
        {
            return Err(format!(
                "domain = \"{d}\" must be a bare domain like district.k12.us"
            ));
        }
        Ok(())
    }
}

/// An optional URL setting: absent, or http(s).
fn http_url<'a>(key: &str, url: Option<&'a str>) -> Result<Option<&'a str>, String> {
    match url {
        Some(u) if !(u.starts_with("https://") || u.starts_with("http://")) => {
            Err(format!("{key} = \"{u}\" must be an http(s) URL"))
        }
        _ => Ok(url),
    }
}

fn is_domain(d: &str) -> bool {
    !d.is_empty()
        && !d.contains('@')
        && !d.starts_with('.')
        && d.contains('.')
        && d.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

impl SourceConfig {
    /// How the source is reached, or what its settings lack (`kind = "oneroster-api"
    /// needs url = …`). The one place these rules live: validation calls it, and so does
    /// everything that opens a source.
    pub fn access(&self) -> Result<SourceAccess<'_>, String> {
        fn given(v: &Option<String>) -> Option<&str> {
            v.as_deref().filter(|v| !v.is_empty())
        }
        match self.kind {
            SourceKind::OneRosterCsv => match given(&self.path) {
                Some(path) => Ok(SourceAccess::Csv { path }),
                None => {
                    Err("kind = \"oneroster-csv\" needs path = \"…\" (a zip or a folder)".into())
                }
            },
            SourceKind::OneRosterApi => {
                let url = given(&self.url)
                    .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
                    .ok_or(
                        "kind = \"oneroster-api\" needs url = \"https://…\" (the part before /users)",
                    )?;
                let method = self.auth_method();
                let client_id = || {
                    given(&self.client_id)
                        .ok_or_else(|| format!("auth = \"{}\" needs client_id", method.as_str()))
                };
                let auth = match method {
                    AuthMethod::None => RestAuth::None,
                    AuthMethod::OAuth1Sha256 | AuthMethod::OAuth1Sha1 => RestAuth::OAuth1 {
                        client_id: client_id()?,
                        sha1: method == AuthMethod::OAuth1Sha1,
                    },
                    AuthMethod::OAuth2 => RestAuth::OAuth2 {
                        client_id: client_id()?,
                        token_url: given(&self.token_url)
                            .ok_or("auth = \"oauth2\" needs token_url")?,
                        scope: given(&self.scope),
                        form_credentials: self.form_credentials,
                    },
                };
                Ok(SourceAccess::Rest { url, auth })
            }
            SourceKind::GoogleWorkspace => {
                let subject = given(&self.subject).ok_or(
                    "kind = \"google-workspace\" needs subject = \"admin@…\" (the admin the service account acts for)",
                )?;
                if !subject.contains('@') {
                    return Err(format!(
                        "subject = \"{subject}\" must be an admin's email address"
                    ));
                }
                let api_url = http_url("api_url", given(&self.api_url))?;
                Ok(SourceAccess::Google {
                    subject,
                    customer: given(&self.customer),
                    domain: given(&self.domain),
                    query: given(&self.query),
                    api_url,
                })
            }
            SourceKind::EntraId => {
                let tenant = given(&self.tenant).ok_or(
                    "kind = \"entra-id\" needs tenant = \"…\" (the Directory (tenant) ID)",
                )?;
                let client_id = given(&self.client_id).ok_or(
                    "kind = \"entra-id\" needs client_id = \"…\" (the app registration's Application (client) ID)",
                )?;
                Ok(SourceAccess::Entra {
                    tenant,
                    client_id,
                    token_url: http_url("token_url", given(&self.token_url))?,
                    graph_url: http_url("graph_url", given(&self.graph_url))?,
                })
            }
            SourceKind::Scim => Ok(SourceAccess::Scim),
        }
    }

    /// Where this source's credentials go (see [`CredentialDestination`]).
    pub fn credential_destination(&self) -> CredentialDestination {
        let auth = self.auth_method();
        let (url, token_url) = match self.kind {
            SourceKind::OneRosterApi | SourceKind::OneRosterCsv => (
                self.url.as_deref().map(origin),
                match auth {
                    AuthMethod::OAuth2 => self.token_url.as_deref().map(origin),
                    _ => None,
                },
            ),
            // The key file names its own token URL; the API gets the tokens it gives.
            SourceKind::GoogleWorkspace => (self.api_url.as_deref().map(origin), None),
            // Nothing is sent anywhere: the identity provider calls in.
            SourceKind::Scim => (None, None),
            // The client secret goes to the tenant's token endpoint: a new tenant is a new
            // destination even at the same host.
            SourceKind::EntraId => (
                self.graph_url.as_deref().map(origin),
                Some(match &self.token_url {
                    Some(t) => t.trim().to_owned(),
                    None => format!("tenant:{}", self.tenant.as_deref().unwrap_or("").trim()),
                }),
            ),
        };
        CredentialDestination {
            kind: self.kind,
            auth,
            url,
            token_url,
        }
    }

    /// Whether the source needs a stored secret: a REST source's client secret (but with
    /// `auth = "none"`), a Google key file, an Entra client secret.
    pub fn needs_secret(&self) -> bool {
        match self.kind {
            SourceKind::OneRosterApi => self.auth_method() != AuthMethod::None,
            SourceKind::OneRosterCsv | SourceKind::Scim => false,
            SourceKind::GoogleWorkspace | SourceKind::EntraId => true,
        }
    }

    /// The sign-in provider an account source's accounts get: `google`, `microsoft`, or
    /// `scim:NAME` for a SCIM connection; `None` for a SIS.
    pub fn provider(&self) -> Option<String> {
        match self.kind {
            SourceKind::GoogleWorkspace => Some("google".to_owned()),
            SourceKind::EntraId => Some("microsoft".to_owned()),
            SourceKind::Scim => Some(format!("scim:{}", self.name)),
            SourceKind::OneRosterApi | SourceKind::OneRosterCsv => None,
        }
    }

    /// The auth method, defaulting as `inspect` does: oauth2 with a token URL or for 1.2,
    /// oauth1-sha256 for 1.1 with a client id, none otherwise.
    pub fn auth_method(&self) -> AuthMethod {
        if let Some(a) = self.auth {
            return a;
        }
        let v12 = self.version.as_deref() == Some("1.2")
            || self.url.as_deref().is_some_and(|u| u.contains("v1p2"));
        match (&self.client_id, &self.token_url) {
            (None, _) => AuthMethod::None,
            (Some(_), Some(_)) => AuthMethod::OAuth2,
            (Some(_), None) if v12 => AuthMethod::OAuth2,
            (Some(_), None) => AuthMethod::OAuth1Sha256,
        }
    }

    /// Whether this source overwrites field `f` or fills it only when empty: the
    /// setting, else `always` for a SIS and `if-not-set` for an account source (the SIS
    /// stays the authority for the people it has).
    pub fn priority(&self, f: Field) -> Priority {
        self.field_priority
            .get(&f)
            .copied()
            .unwrap_or(if self.kind.is_account_source() {
                Priority::IfNotSet
            } else {
                Priority::Always
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_source_is_the_named_one_else_the_only_one() {
        let two = Config::from_toml(
            "[[source]]\nname = \"north\"\nkind = \"oneroster-csv\"\npath = \"n.zip\"\n\n[[source]]\nname = \"south\"\nkind = \"oneroster-csv\"\npath = \"s.zip\"\n",
        )
        .unwrap();
        assert_eq!(two.which_source(Some("south")).unwrap().name, "south");
        let several = two.which_source(None).unwrap_err();
        assert_eq!(
            several.describe("pass --source NAME"),
            "several sources are configured (north, south): pass --source NAME"
        );
        assert_eq!(two.which_source(Some("")).unwrap_err(), several);
        assert_eq!(
            two.which_source(Some("east")).unwrap_err().describe(""),
            "no source named 'east'; configured: north, south"
        );
        let one = Config {
            sources: two.sources[..1].to_vec(),
            ..two.clone()
        };
        assert_eq!(one.which_source(None).unwrap().name, "north");
        let none = Config::default();
        assert_eq!(
            none.which_source(None).unwrap_err(),
            NoSource::NoneConfigured
        );
        assert!(
            none.which_source(Some("x"))
                .unwrap_err()
                .describe("")
                .contains("no sources are configured")
        );
    }

    #[test]
    fn each_kind_and_auth_method_has_one_spelling() {
        for m in AuthMethod::ALL {
            assert_eq!(serde_json::to_value(m).unwrap(), m.as_str());
            assert_eq!(AuthMethod::parse(m.as_str()), Some(m));
            assert_eq!(m.as_str().parse::<AuthMethod>(), Ok(m));
        }
        for k in [SourceKind::OneRosterApi, SourceKind::OneRosterCsv] {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
            assert_eq!(SourceKind::parse(k.as_str()), Some(k));
        }
        assert!(AuthMethod::parse("OAuth2").is_none());
        assert!(
            "basic"
                .parse::<AuthMethod>()
                .unwrap_err()
                .contains("oauth1-sha256")
        );
    }

    #[test]
    fn access_carries_what_the_auth_method_needs() {
        let s = api_source("scope = \"roster\"\nform_credentials = true");
        assert_eq!(
            s.access(),
            Ok(SourceAccess::Rest {
                url: "https://sis.example/ims/oneroster/v1p1",
                auth: RestAuth::OAuth2 {
                    client_id: "k",
                    token_url: "https://sis.example/oauth2/token",
                    scope: Some("roster"),
                    form_credentials: true,
                },
            })
        );
        let mut s = api_source("");
        s.auth = Some(AuthMethod::OAuth1Sha1);
        assert_eq!(
            s.access().map(|a| match a {
                SourceAccess::Rest { auth, .. } => auth,
                _ => RestAuth::None,
            }),
            Ok(RestAuth::OAuth1 {
                client_id: "k",
                sha1: true
            })
        );
        // An empty value is no value: the rule says what is missing.
        s.client_id = Some(String::new());
        assert_eq!(
            s.access(),
            Err("auth = \"oauth1-sha1\" needs client_id".to_owned())
        );
        s.kind = SourceKind::OneRosterCsv;
        assert!(s.access().unwrap_err().contains("needs path"));
        s.path = Some("district.zip".into());
        assert_eq!(
            s.access(),
            Ok(SourceAccess::Csv {
                path: "district.zip"
            })
        );
    }

    fn api_source(extra: &str) -> SourceConfig {
        let c = Config::from_toml(&format!(
            "[[source]]\nname = \"sis\"\nkind = \"oneroster-api\"\nurl = \"https://sis.example/ims/oneroster/v1p1\"\nauth = \"oauth2\"\nclient_id = \"k\"\ntoken_url = \"https://sis.example/oauth2/token\"\n{extra}"
        ))
        .unwrap();
        c.sources[0].clone()
    }

    #[test]
    fn credential_destination_changes_with_host_port_scheme_auth_or_kind() {
        let base = api_source("");
        let same = |f: &dyn Fn(&mut SourceConfig)| {
            let mut s = base.clone();
            f(&mut s);
            s.credential_destination() == base.credential_destination()
        };
        // A path, a query or the case of the host moves nothing.
        assert!(same(
            &|s| s.url = Some("https://SIS.example:443/other/path?x=1".into())
        ));
        assert!(same(
            &|s| s.token_url = Some("https://sis.example/oauth2/token?appName=b".into())
        ));
        assert!(same(&|s| s.client_id = Some("another".into())));
        // Host, port, scheme, auth, kind and the token URL's host each move it.
        assert!(!same(
            &|s| s.url = Some("https://evil.example/ims/oneroster/v1p1".into())
        ));
        assert!(!same(
            &|s| s.url = Some("https://sis.example:8443/ims".into())
        ));
        assert!(!same(&|s| s.url = Some("http://sis.example/ims".into())));
        assert!(!same(
            &|s| s.url = Some("https://sis.example@evil.example/ims".into())
        ));
        assert!(!same(
            &|s| s.token_url = Some("https://evil.example/token".into())
        ));
        assert!(!same(&|s| s.auth = Some(AuthMethod::OAuth1Sha256)));
        assert!(!same(&|s| s.kind = SourceKind::OneRosterCsv));
        assert_eq!(origin("http://[::1]:8080/x"), "http://[::1]:8080");
        assert_eq!(origin("https://[::1]/x"), "https://[::1]:443");
    }

    #[test]
    fn toml_mistakes_are_said_in_plain_words() {
        let err = |value: &str| {
            Config::from_toml(&format!(
                "[[source]]\nname = \"a\"\nkind = \"oneroster-csv\"\npath = \"x\"\n{value}\n"
            ))
            .unwrap_err()
            .to_string()
        };
        for bad in [
            "credential_expires = \"next june\"",
            "credential_expires = 2026-13-01",
        ] {
            let e = err(bad);
            assert!(e.contains("line 5"), "{e}");
            assert!(
                e.contains("expected a date like 2026-09-30 (YYYY-MM-DD)"),
                "{e}"
            );
            assert!(!e.contains("four digit integer"), "{e}");
        }
        let e = err("page_size = \"big\"");
        assert!(
            e.contains("line 5 (`page_size = \"big\"`): expected a whole number"),
            "{e}"
        );
        let e = err("form_credentials = \"yes\"");
        assert!(e.contains("expected true or false"), "{e}");
        let e = err("colour = \"red\"");
        assert!(e.contains("unknown field `colour`"), "{e}");
        // A setting that may hold a secret is named, its value never repeated.
        for (bad, key) in [
            ("client_secret = s3cret-raw", "client_secret"),
            ("client_secret = \"s3cret\\q\"", "client_secret"),
            ("client_secret = 's3cret-quote", "client_secret"),
            ("webhook_url = 53cret", "webhook_url"),
        ] {
            let e = err(bad);
            assert!(
                e.contains(&format!("line 5 (`{key} = …`, value hidden)")),
                "{e}"
            );
            assert!(!e.contains("3cret"), "{bad}: {e}");
        }
    }

    #[test]
    fn urls_with_credentials_and_rostersync_variables_are_refused() {
        let bad = |extra: &str| {
            Config::from_toml(&format!(
                "[[source]]\nname = \"sis\"\nkind = \"oneroster-api\"\nurl = \"https://u:p@sis.example/ims\"\nauth = \"none\"\n{extra}"
            ))
            .and_then(|c| c.validate().map(|_| c))
            .unwrap_err()
            .to_string()
        };
        let e = bad("");
        assert!(
            e.contains("user name or password") && !e.contains("u:p"),
            "{e}"
        );
        let e = Config::from_toml(
            "[[source]]\nname = \"sis\"\nkind = \"oneroster-api\"\nurl = \"https://sis.example/ims\"\nauth = \"oauth2\"\nclient_id = \"k\"\ntoken_url = \"https://sis.example/t\"\nclient_secret_env = \"ROSTERSYNC_MASTER_KEY\"\n",
        )
        .and_then(|c| c.validate().map(|_| c))
        .unwrap_err()
        .to_string();
        assert!(e.contains("ROSTERSYNC_*"), "{e}");
        let e = Config::from_toml(
            "[[source]]\nname = \"sis\"\nkind = \"oneroster-csv\"\npath = \"x\"\nwebhook_url = \"https://hook:s3cret@hooks.example/T1\"\n",
        )
        .and_then(|c| c.validate().map(|_| c))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("webhook_url carries a user name or password") && !e.contains("s3cret"),
            "{e}"
        );
        let c = Config::from_toml("[network]\nallow_private = true\n").unwrap();
        assert!(c.network.allow_private && !c.network.allow_loopback);
        assert!(Config::from_toml("[network]\nallow_everything = true\n").is_err());
    }

    const EXAMPLE: &str = r#"
[fields]
phone = { enabled = false }

[[source]]
name = "campus"
kind = "oneroster-api"
url = "https://sis.example/campus/oneroster/district/ims/oneroster/v1p1"
client_id = "site1-abc"
client_secret = "s3cret"
auth = "oauth2"
token_url = "https://sis.example/campus/oauth2/token?appName=district"
version = "1.1"

[source.user_mapping]
translate_email = [{ from = "students.district.k12.us", to = "district.k12.us" }]
append_domain = "district.k12.us"

[source.import]
students = true
teachers = true
administrators = true
other_users = false
include_inactive = false

[source.field_priority]
first_name = "always"
grade = "if-not-set"
"#;

    #[test]
    fn the_documented_example_parses() {
        let c = Config::from_toml(EXAMPLE).unwrap();
        assert!(!c.field_enabled(Field::Phone));
        assert!(c.field_enabled(Field::Email));
        let s = c.source("campus").unwrap();
        assert_eq!(s.client_secret.as_ref().unwrap().expose(), "s3cret");
        assert_eq!(s.priority(Field::Grade), Priority::IfNotSet);
        assert_eq!(s.priority(Field::LastName), Priority::Always);
        assert_eq!(s.auth_method(), AuthMethod::OAuth2);
        assert!(s.user_mapping.match_by_email);
    }

    #[test]
    fn export_leaves_the_secret_out_and_reimports_the_rest() {
        let c = Config::from_toml(EXAMPLE).unwrap();
        let out = c.to_toml();
        assert!(!out.contains("s3cret"), "{out}");
        assert!(!format!("{c:?}").contains("s3cret"));
        let mut back = Config::from_toml(&out.replace(
            "client_id = \"site1-abc\"",
            "client_id = \"site1-abc\"\nclient_secret = \"s3cret\"",
        ))
        .unwrap();
        assert_eq!(back, c);
        back.sources[0].client_secret = None;
        assert_ne!(back, c);
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::from_toml(
            "[[source]]\nname = \"a\"\nkind = \"oneroster-csv\"\npath = \"x\"\nschedules = 1\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field `schedules`"), "{err}");
        let err = Config::from_toml("[fields]\nphones = { enabled = false }\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("phones"), "{err}");
        let err = Config::from_toml("[[source]]\nname = \"a\"\nkind = \"oneroster-csv\"\npath = \"x\"\n[source.import]\nstudent = true\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `student`"), "{err}");
    }

    #[test]
    fn validation_names_the_source_and_the_problem() {
        let cases = [
            (
                "name = \"a b\"\nkind = \"oneroster-csv\"\npath = \"x\"",
                "name 'a b' must be",
            ),
            ("name = \"a\"\nkind = \"oneroster-api\"", "needs url"),
            (
                "name = \"a\"\nkind = \"oneroster-api\"\nurl = \"https://x\"\nauth = \"oauth2\"\nclient_id = \"c\"\nclient_secret = \"s\"",
                "needs token_url",
            ),
            ("name = \"a\"\nkind = \"oneroster-csv\"", "needs path"),
            (
                "name = \"a\"\nkind = \"oneroster-csv\"\npath = \"x\"\nversion = \"2\"",
                "version = \"2\"",
            ),
            (
                "name = \"a\"\nkind = \"oneroster-csv\"\npath = \"x\"\nconcurrency = 9",
                "concurrency must be 1 to 5",
            ),
            (
                "name = \"a\"\nkind = \"oneroster-csv\"\npath = \"x\"\n[source.user_mapping]\nappend_domain = \"@x.org\"",
                "append_domain '@x.org'",
            ),
        ];
        for (body, want) in cases {
            let err = Config::from_toml(&format!("[[source]]\n{body}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("[[source]] #1 ("), "{err}");
            assert!(err.contains(want), "{body}: {err}");
        }
        let dup = "[[source]]\nname = \"a\"\nkind = \"oneroster-csv\"\npath = \"x\"\n";
        let err = Config::from_toml(&format!("{dup}{dup}"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("#2 (a): another source has the same name"),
            "{err}"
        );
    }

    fn refusal(body: &str) -> String {
        Config::from_toml(&format!("[[source]]\nname = \"a\"\n{body}\n"))
            .unwrap_err()
            .to_string()
    }

    const GOOGLE: &str = "kind = \"google-workspace\"\nsubject = \"admin@district.example\"";
    const ENTRA: &str = "kind = \"entra-id\"\ntenant = \"t-1\"\nclient_id = \"app\"";

    #[test]
    fn account_sources_parse_with_their_own_settings() {
        let c = Config::from_toml(&format!(
            "[[source]]\nname = \"google\"\n{GOOGLE}\nkey_file = \"sa.json\"\ndomain = \"district.example\"\nquery = \"orgUnitPath='/Students'\"\napi_url = \"http://127.0.0.1:9/\"\ndeactivate = \"never\"\npage_size = 200\n\n[[source]]\nname = \"entra\"\n{ENTRA}\nclient_secret_env = \"ENTRA_SECRET\"\ntoken_url = \"https://login.example/t\"\ngraph_url = \"https://graph.example\"\ndeactivate = \"always\"\n"
        ))
        .unwrap();
        assert_eq!(c.sources[0].deactivate, AccountDeactivation::Never);
        assert_eq!(c.sources[1].deactivate, AccountDeactivation::Always);
        assert!(c.sources.iter().all(SourceConfig::needs_secret));
        // The key file's path is the import's business: never exported.
        let out = c.to_toml();
        assert!(
            !out.contains("key_file") && !out.contains("sa.json"),
            "{out}"
        );
        assert!(out.contains("deactivate = \"never\""), "{out}");
        let back = Config::from_toml(&out).unwrap();
        assert_eq!(back.sources[1], c.sources[1]);
        // The default is left out.
        let plain = Config::from_toml(&format!("[[source]]\nname = \"g\"\n{GOOGLE}\n")).unwrap();
        assert_eq!(plain.sources[0].deactivate, AccountDeactivation::Unmanaged);
        assert!(!plain.to_toml().contains("deactivate ="));
        for k in SourceKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
            assert_eq!(SourceKind::parse(k.as_str()), Some(k));
        }
    }

    #[test]
    fn a_setting_of_another_kind_is_refused_naming_its_kind() {
        let csv = "kind = \"oneroster-csv\"\npath = \"x.zip\"";
        let api = "kind = \"oneroster-api\"\nurl = \"https://sis.example/ims\"\nauth = \"none\"";
        let cases: [(String, &str); 17] = [
            (
                format!("{csv}\nsubject = \"a@b.example\""),
                "subject is a setting of google-workspace sources, not of kind = \"oneroster-csv\"",
            ),
            (
                format!("{api}\nkey_file = \"sa.json\""),
                "key_file is a setting of google-workspace sources, not of kind = \"oneroster-api\"",
            ),
            (
                format!("{api}\ncustomer = \"C0\""),
                "customer is a setting of google-workspace sources",
            ),
            (
                format!("{api}\napi_url = \"https://a.example\""),
                "api_url is a setting of google-workspace sources",
            ),
            (
                format!("{csv}\ntenant = \"t\""),
                "tenant is a setting of entra-id sources, not of kind = \"oneroster-csv\"",
            ),
            (
                format!("{api}\ngraph_url = \"https://g.example\""),
                "graph_url is a setting of entra-id sources",
            ),
            (
                format!("{ENTRA}\nsubject = \"a@b.example\""),
                "subject is a setting of google-workspace sources, not of kind = \"entra-id\"",
            ),
            (
                format!("{ENTRA}\nquery = \"x\""),
                "query is a setting of google-workspace sources, not of kind = \"entra-id\"",
            ),
            (
                format!("{GOOGLE}\ntenant = \"t\""),
                "tenant is a setting of entra-id sources, not of kind = \"google-workspace\"",
            ),
            (
                format!("{GOOGLE}\nurl = \"https://sis.example\""),
                "url is a setting of OneRoster sources (oneroster-api, oneroster-csv), not of kind = \"google-workspace\"",
            ),
            (
                format!("{ENTRA}\npath = \"x.zip\""),
                "path is a setting of OneRoster sources",
            ),
            (
                format!("{ENTRA}\nauth = \"oauth2\""),
                "auth is a setting of OneRoster sources",
            ),
            (
                format!("{ENTRA}\nversion = \"1.1\""),
                "version is a setting of OneRoster sources",
            ),
            (
                format!("{GOOGLE}\nclient_secret = \"s3cret\""),
                "client_secret is a setting of oneroster-api and entra-id sources, not of kind = \"google-workspace\": a Google service account's credentials are all in its key_file",
            ),
            (
                format!("{GOOGLE}\nclient_id = \"c\""),
                "client_id is a setting of oneroster-api and entra-id sources",
            ),
            (
                format!("{api}\ndeactivate = \"always\""),
                "deactivate is a setting of account sources (google-workspace, entra-id), not of kind = \"oneroster-api\"",
            ),
            (
                format!("{GOOGLE}\ncustomer = \"C0\"\ndomain = \"district.example\""),
                "set customer or domain, not both",
            ),
        ];
        for (body, want) in cases {
            let err = refusal(&body);
            assert!(err.starts_with("[[source]] #1 (a): "), "{err}");
            assert!(err.contains(want), "{body}\n{err}");
            assert!(!err.contains("s3cret"), "{err}");
        }
        assert!(
            refusal(&format!("{GOOGLE}\ndomain = \"@district.example\""))
                .contains("must be a bare domain")
        );
        // What each kind needs is said as before.
        assert!(refusal("kind = \"google-workspace\"").contains("needs subject"));
        assert!(refusal("kind = \"entra-id\"\nclient_id = \"c\"").contains("needs tenant"));
        assert!(refusal("kind = \"entra-id\"\ntenant = \"t\"").contains("needs client_id"));
        assert!(
            refusal("kind = \"google-workspace\"\nsubject = \"admin\"").contains("email address")
        );
        assert!(refusal(&format!("{ENTRA}\ngraph_url = \"graph.example\"")).contains("graph_url"));
        // An empty value is no value, whatever the kind.
        assert!(
            Config::from_toml(&format!(
                "[[source]]\nname = \"a\"\n{ENTRA}\nsubject = \"\"\n"
            ))
            .is_ok()
        );
        // A SIS keeps its settings; an Entra source its client secret and token URL.
        assert!(Config::from_toml(&format!("[[source]]\nname = \"a\"\n{ENTRA}\nclient_secret = \"s\"\ntoken_url = \"https://t.example/token\"\n")).is_ok());
    }

    #[test]
    fn defaults() {
        let c =
            Config::from_toml("[[source]]\nname = \"a\"\nkind = \"oneroster-csv\"\npath = \"x\"\n")
                .unwrap();
        let s = &c.sources[0];
        assert_eq!(s.import, ImportOptions::default());
        assert!(s.import.students && s.import.teachers && s.import.administrators);
        assert!(!s.import.other_users && !s.import.include_inactive);
        assert_eq!(s.auth_method(), AuthMethod::None);
        assert!(!s.user_mapping.match_by_identifier);
    }
}
