//! What a read of an identity provider returns: its accounts in one shape whatever the
//! provider, and how complete the read was.

use jiff::Timestamp;
use serde::Serialize;

/// Which identity provider an account lives in (the directory's `provider`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Google,
    Microsoft,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Google => "google",
            Provider::Microsoft => "microsoft",
        }
    }
}

/// One account as its provider holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdpAccount {
    pub provider: Provider,
    /// The provider's stable id (Google's `id`, Entra's object `id`).
    pub id: String,
    /// The sign-in name: Google's `primaryEmail`, Entra's `userPrincipalName`.
    pub login: String,
    /// The mailbox: Google's `primaryEmail`, Entra's `mail` (else the primary `SMTP:` of
    /// `proxyAddresses`); `None` when the account has none.
    pub email: Option<String>,
    /// Other addresses that reach the account (Google's `aliases` and
    /// `nonEditableAliases`; Entra's `otherMails` and secondary `smtp:` proxy addresses),
    /// without the login and the email, lower-cased, sorted, each once.
    pub aliases: Vec<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// Suspended or archived (Google), sign-in blocked (`accountEnabled = false`, Entra).
    pub suspended: bool,
    /// A guest of the tenant (Entra's `userType` `Guest`): someone from outside the
    /// district, never one of its people. Always false for Google.
    pub guest: bool,
    /// Google's `orgUnitPath` (`/Students/North High`); `None` for Entra.
    pub org_unit: Option<String>,
    /// The school's id for the person: Google's `externalIds` of type `organization`,
    /// Entra's `employeeId`.
    pub school_id: Option<String>,
    pub created_at: Option<Timestamp>,
    /// Google's `lastLoginTime` (Graph needs another permission for it: `None`).
    pub last_sign_in: Option<Timestamp>,
}

/// A read of every account (or of the changes since the last read, for Entra's delta).
#[derive(Debug, Clone, Default, Serialize)]
pub struct AccountRead {
    pub accounts: Vec<IdpAccount>,
    /// Ids the provider says were removed since the last read (Entra's delta `@removed`).
    pub removed: Vec<String>,
    /// Every page was read. An incomplete read deactivates no one.
    pub complete: bool,
    /// A read of every account (not only the changes since a delta link).
    pub full: bool,
    /// Where the next changes-only read starts (Entra's `@odata.deltaLink`).
    pub next_delta: Option<String>,
    /// What the read could not use, in words (a record without an id, a page that failed).
    pub warnings: Vec<String>,
    /// HTTP requests made, token requests included.
    pub requests: u64,
}

/// Why a read failed. Each message names the setting or the admin-console step to fix.
#[derive(Debug, thiserror::Error)]
pub enum IdpError {
    /// A setting is wrong or missing (a key file that is not one, a URL not allowed).
    #[error("{0}")]
    Config(String),
    /// The provider refused the credentials or the permission (delegation not granted,
    /// wrong tenant, admin consent missing).
    #[error("{0}")]
    Auth(String),
    /// The provider could not be reached or kept failing after the retries.
    #[error("{0}")]
    Unreachable(String),
    /// The provider answered with something this reader cannot use.
    #[error("{0}")]
    Protocol(String),
}
