//! Step 1 of a run: read the source into a snapshot of what the rules need, and whether
//! the read proved itself complete.

use std::path::Path;

use jiff::Timestamp;
use oneroster::oauth1::SignatureMethod;
use oneroster::report::{CollectionReport, Coverage};
use oneroster::rest::{Auth, CredentialStyle, RestConfig};
use oneroster::source::{Source, SourceError};
use oneroster::{Org, User, Version};
use rostersync_core::settings::{AuthMethod, Secret, SourceConfig, SourceKind};
use rostersync_core::sis::SisPerson;

use crate::{EngineError, Progress};

/// What one pull saw.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub people: Vec<SisPerson>,
    pub orgs: Vec<Org>,
    pub reports: Vec<CollectionReport>,
    /// Every collection read completely, and as a full set.
    pub complete: bool,
    /// Why not complete, and the source's own warnings.
    pub warnings: Vec<String>,
}

/// Opens the source a setting describes.
pub fn open_source(cfg: &SourceConfig, secret: Option<&Secret>) -> Result<Source, EngineError> {
    match cfg.kind {
        SourceKind::OneRosterCsv => {
            let path = cfg.path.as_deref().unwrap_or_default();
            Ok(Source::open_csv(Path::new(path))?)
        }
        SourceKind::OneRosterApi => {
            let url = cfg.url.clone().unwrap_or_default();
            let need = |v: &Option<String>, what: &str| {
                v.clone().ok_or_else(|| {
                    EngineError::Config(format!("source {}: {what} is not set", cfg.name))
                })
            };
            let secret = || {
                secret.map(|s| s.expose().to_owned()).ok_or_else(|| {
                    EngineError::Config(format!(
                        "source {}: the client secret is not set",
                        cfg.name
                    ))
                })
            };
            let auth = match cfg.auth_method() {
                AuthMethod::None => Auth::None,
                m @ (AuthMethod::OAuth1Sha256 | AuthMethod::OAuth1Sha1) => Auth::OAuth1 {
                    consumer_key: need(&cfg.client_id, "client_id")?,
                    consumer_secret: secret()?,
                    method: if m == AuthMethod::OAuth1Sha1 {
                        SignatureMethod::HmacSha1
                    } else {
                        SignatureMethod::HmacSha256
                    },
                },
                AuthMethod::OAuth2 => Auth::OAuth2 {
                    token_url: need(&cfg.token_url, "token_url")?,
                    client_id: need(&cfg.client_id, "client_id")?,
                    client_secret: secret()?,
                    scope: cfg.scope.clone(),
                    credentials: if cfg.form_credentials {
                        CredentialStyle::Form
                    } else {
                        CredentialStyle::Basic
                    },
                },
            };
            let mut rest = RestConfig::new(url, auth);
            if let Some(v) = cfg.version.as_deref().and_then(Version::parse) {
                rest.version = v;
            }
            if let Some(p) = cfg.page_size {
                rest.page_size = p;
            }
            if let Some(c) = cfg.concurrency {
                rest.concurrency = c;
            }
            if let Some(a) = cfg.retry_attempts {
                rest.retry.attempts = a;
            }
            Ok(Source::open_rest(rest)?)
        }
    }
}

/// How often a pull reports progress.
const PROGRESS_EVERY: u64 = 10_000;

/// Reads orgs and users. `modified_after` makes it a delta pull.
pub async fn pull(
    source: &mut Source,
    modified_after: Option<Timestamp>,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Snapshot, SourceError> {
    let mut snap = Snapshot::default();

    let mut orgs = Vec::new();
    if let Some(r) = source
        .read::<Org>(modified_after, |o: &Org| orgs.push(o.clone()))
        .await?
    {
        progress(Progress::Pulled {
            collection: "orgs",
            records: r.records,
            complete: r.complete,
        });
        snap.reports.push(r);
    }
    snap.orgs = orgs;

    let mut people = Vec::new();
    let report = source
        .read::<User>(modified_after, |u: &User| {
            people.push(SisPerson::from_user(u));
            let n = people.len() as u64;
            if n.is_multiple_of(PROGRESS_EVERY) {
                progress(Progress::Pulling {
                    collection: "users",
                    records: n,
                });
            }
        })
        .await?;
    match report {
        Some(r) => {
            progress(Progress::Pulled {
                collection: "users",
                records: r.records,
                complete: r.complete,
            });
            snap.reports.push(r);
        }
        None => snap
            .warnings
            .push("the source has no users collection".to_owned()),
    }
    snap.people = people;

    snap.warnings.extend(source.warnings());
    let has_users = snap
        .reports
        .iter()
        .any(|r| r.collection == oneroster::Collection::Users);
    snap.complete = has_users
        && snap
            .reports
            .iter()
            .all(|r| r.complete && r.coverage == Coverage::Full);
    for r in &snap.reports {
        for p in &r.problems {
            snap.warnings.push(format!("{}: {p}", r.collection));
        }
        if r.coverage == Coverage::Delta {
            snap.warnings
                .push(format!("{}: the source sent changes only", r.collection));
        }
    }
    Ok(snap)
}
