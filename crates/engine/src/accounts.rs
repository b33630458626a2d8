//! An account source's read: Google Workspace or Microsoft Entra ID, through the `idp`
//! readers, into the [`Identity`] records the account planner
//! ([`rostersync_core::accounts`]) takes. The run around it (record, plan, guard, hold or
//! apply) is the SIS run's (`crate::sync`).

use rostersync_core::accounts::Identity;
use rostersync_core::plan::SyncKind;
use rostersync_core::settings::{Network, Secret, SourceAccess, SourceConfig};

use idp::{AccountRead, IdpAccount, IdpError};

use crate::{Context, EngineError, Progress};

/// What one read of an identity provider gave.
pub(crate) struct Read {
    pub identities: Vec<Identity>,
    pub removed: Vec<String>,
    pub complete: bool,
    /// The read was of every account (a delta that fell back to a full read is one).
    pub full: bool,
    /// Where Graph's next changes-only read starts.
    pub next_delta: Option<String>,
    pub warnings: Vec<String>,
}

/// The `meta` key of an Entra source's delta link.
pub(crate) fn delta_key(source: &str) -> String {
    format!("delta:{source}")
}

/// Reads the provider `source` names. `delta_link`: an Entra changes-only read from
/// there (`None`: every account). A delta link Graph no longer knows makes the read a
/// full one, said in the warnings.
pub(crate) fn read(
    ctx: &Context<'_>,
    source: &SourceConfig,
    network: &Network,
    secret: Option<&Secret>,
    kind: SyncKind,
    delta_link: Option<&str>,
) -> Result<Read, EngineError> {
    let access = source
        .access()
        .map_err(|problem| EngineError::Config(format!("source {}: {problem}", source.name)))?;
    let policy = crate::address_policy(network);
    let retry = || {
        let mut r = idp::http::Retry::default();
        if let Some(a) = source.retry_attempts {
            r.attempts = a;
        }
        r
    };
    let secret = secret.map(Secret::expose).ok_or_else(|| {
        EngineError::Config(format!(
            "source {}: {} is not set: import the settings with it (rostersync config import FILE.toml)",
            source.name,
            match access {
                SourceAccess::Google { .. } => "the service account's key file (key_file)",
                _ => "the client secret or certificate (client_secret, client_secret_env or certificate_file)",
            }
        ))
    })?;
    let failed = |e: IdpError| EngineError::Provider(format!("source {}: {e}", source.name));
    let mut warnings = Vec::new();
    let read: AccountRead = match access {
        SourceAccess::Google {
            subject,
            customer,
            domain,
            query,
            api_url,
        } => {
            if kind == SyncKind::Delta {
                return Err(EngineError::Config(format!(
                    "source {}: Google Workspace has no changes-only read: run a full sync",
                    source.name
                )));
            }
            let key = idp::google::KeyFile::parse(secret).map_err(|e| {
                EngineError::Config(format!(
                    "source {}: the stored key file is not usable ({e}): import the settings with a new key_file",
                    source.name
                ))
            })?;
            let mut settings = idp::google::GoogleSettings::new(key, subject);
            settings.customer = customer.map(str::to_owned);
            settings.domain = domain.map(str::to_owned);
            settings.query = query.map(str::to_owned);
            if let Some(url) = api_url {
                settings.api_url = url.to_owned();
            }
            settings.policy = policy;
            settings.retry = retry();
            ctx.runtime
                .block_on(idp::google::read_all(&settings))
                .map_err(failed)?
        }
        SourceAccess::Entra {
            tenant,
            client_id,
            token_url,
            graph_url,
        } => {
            // The stored secret is a client secret, or a certificate file's PEM (a client
            // secret never holds a PEM block).
            let mut settings = if secret.contains("-----BEGIN PRIVATE KEY-----") {
                let certificate = idp::entra::Certificate::parse(secret).map_err(|e| {
                    EngineError::Config(format!(
                        "source {}: the stored certificate is not usable ({e}): import the settings with a new certificate_file",
                        source.name
                    ))
                })?;
                idp::entra::EntraSettings {
                    certificate: Some(certificate),
                    ..idp::entra::EntraSettings::new(tenant, client_id, "")
                }
            } else {
                idp::entra::EntraSettings::new(tenant, client_id, secret)
            };
            settings.token_url = token_url.map(str::to_owned);
            if let Some(url) = graph_url {
                settings.graph_url = url.to_owned();
            }
            settings.policy = policy;
            settings.retry = retry();
            let link = match kind {
                SyncKind::Delta => Some(delta_link.ok_or_else(|| {
                    EngineError::Config(format!(
                        "source {}: no full sync has been applied yet to start a delta from: run a full sync first",
                        source.name
                    ))
                })?),
                _ => None,
            };
            match ctx
                .runtime
                .block_on(idp::entra::read_delta(&settings, link))
            {
                Err(e) if link.is_some() && idp::entra::is_resync_needed(&e) => {
                    warnings.push(
                        "Microsoft Graph no longer knows the last delta link: this run read every account"
                            .to_owned(),
                    );
                    ctx.runtime
                        .block_on(idp::entra::read_delta(&settings, None))
                        .map_err(failed)?
                }
                other => other.map_err(failed)?,
            }
        }
        SourceAccess::Csv { .. } | SourceAccess::Rest { .. } | SourceAccess::Scim => {
            return Err(EngineError::Config(format!(
                "source {} is not an account source that is read (Google Workspace, Entra ID)",
                source.name
            )));
        }
    };
    (ctx.progress)(Progress::Pulled {
        collection: "accounts",
        records: read.accounts.len() as u64,
        complete: read.complete,
    });
    warnings.extend(read.warnings);
    if !read.complete {
        warnings.push(
            "the read of the provider is incomplete: nobody is deactivated for being absent this run"
                .to_owned(),
        );
    }
    Ok(Read {
        identities: read.accounts.into_iter().map(identity).collect(),
        removed: read.removed,
        complete: read.complete,
        full: read.full,
        next_delta: read.next_delta,
        warnings,
    })
}

/// The account as the planner reads it, its strings moved (a district's read holds
/// hundreds of thousands of accounts: a copy would hold them twice).
fn identity(a: IdpAccount) -> Identity {
    Identity {
        id: a.id,
        login: a.login,
        email: a.email,
        aliases: a.aliases,
        given_name: a.given_name,
        middle_name: None,
        family_name: a.family_name,
        suspended: a.suspended,
        guest: a.guest,
        org_unit: a.org_unit,
        school_id: a.school_id,
        last_sign_in: a.last_sign_in,
    }
}
