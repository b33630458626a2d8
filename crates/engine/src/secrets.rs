//! Client secrets: the one place a source's secret is encrypted for the store, forgotten
//! when the credentials' destination moves, and decrypted for a run. Settings saved from
//! a file (`config import`) and from the console or the API both go through
//! [`seal_secrets`]; every run reads them through [`client_secret`].
//!
//! A Google Workspace source's secret is its service account's whole JSON key file: the
//! operator's settings name it (`key_file`), [`seal_secrets`] reads and checks it and
//! stores it encrypted like a client secret. Its text is never printed.

use rostersync_core::settings::{Config, Secret, SourceConfig, SourceKind};

use crate::{Context, EngineError};

/// Who wrote the settings being saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingsFrom {
    /// The operator's settings file (`config import`): a `client_secret_env` it names is
    /// the operator's word for the source as the file describes it.
    Operator,
    /// The console or the API: a `client_secret_env` there is one the operator set for
    /// the source as it was.
    Console,
}

/// What saving new settings does to the stored client secrets.
#[derive(Debug, Default)]
pub struct SealedSecrets {
    /// Per source: the encrypted secret to store (`Some`) or the stored one to forget
    /// (`None`); a source not named keeps what it has (`Store::save_config`).
    pub secrets: Vec<(String, Option<Vec<u8>>)>,
    /// What happened to secrets, in words for the audit log and the answer ("source sis:
    /// client secret replaced").
    pub notes: Vec<String>,
}

/// Seals the client secrets `new` carries (read from a settings file or typed in a form;
/// an empty one is no secret), and the key file a Google source's `key_file` names (from
/// the operator's file only), for the store, and forgets the stored secret, or drops the
/// `client_secret_env` (from the console only, see [`SettingsFrom`]), of a source whose
/// credentials now go elsewhere (another host or token URL than `old` sent them to): a
/// secret given for one host never follows a URL to another.
pub fn seal_secrets(
    ctx: &Context<'_>,
    old: &Config,
    new: &mut Config,
    from: SettingsFrom,
) -> Result<SealedSecrets, EngineError> {
    let mut sealed = SealedSecrets::default();
    for s in &mut new.sources {
        let words = secret_words(s);
        let key = read_key_file(s, from)?;
        let given = key.as_ref().or(s
            .client_secret
            .as_ref()
            .filter(|secret| !secret.expose().is_empty()));
        if let Some(secret) = given {
            let Some(keyring) = ctx.keyring else {
                return Err(EngineError::Config(format!(
                    "no master key is loaded, so the {words} of source {} cannot be stored",
                    s.name
                )));
            };
            sealed.secrets.push((
                s.name.clone(),
                Some(keyring.encrypt(secret.expose().as_bytes())),
            ));
            sealed
                .notes
                .push(format!("source {}: {words} replaced", s.name));
            continue;
        }
        let Some(before) = old.source(&s.name) else {
            continue;
        };
        if before.credential_destination() == s.credential_destination() {
            continue;
        }
        if ctx.store.source_secret(&s.name)?.is_some() {
            sealed.secrets.push((s.name.clone(), None));
            let again = if s.kind == SourceKind::GoogleWorkspace {
                "import the key_file again (rostersync config import)"
            } else {
                "enter the secret again"
            };
            sealed.notes.push(format!(
                "source {}: {} removed, because the credentials' destination changed: {again}",
                s.name,
                secret_words(s)
            ));
        }
        if from == SettingsFrom::Console && s.client_secret_env.take().is_some() {
            sealed.notes.push(format!(
                "source {}: client_secret_env removed, because the credentials' destination changed: enter the secret",
                s.name
            ));
        }
    }
    seal_target_tokens(ctx, old, new, &mut sealed)?;
    Ok(sealed)
}

/// The targets' bearer tokens: a token given is sealed; the stored one of a target whose
/// URL now points at another host is forgotten (a token given for one help desk never
/// follows a URL to another).
fn seal_target_tokens(
    ctx: &Context<'_>,
    old: &Config,
    new: &mut Config,
    sealed: &mut SealedSecrets,
) -> Result<(), EngineError> {
    for t in &mut new.targets {
        if let Some(token) = t.token.take().filter(|s| !s.expose().trim().is_empty()) {
            let Some(keyring) = ctx.keyring else {
                return Err(EngineError::Config(format!(
                    "no master key is loaded, so the token of target {} cannot be stored",
                    t.name
                )));
            };
            sealed.secrets.push((
                t.name.clone(),
                Some(keyring.encrypt(token.expose().trim().as_bytes())),
            ));
            sealed
                .notes
                .push(format!("target {}: token replaced", t.name));
            continue;
        }
        let Some(before) = old.target(&t.name) else {
            continue;
        };
        if rostersync_core::settings::same_origin(&before.url, &t.url) {
            continue;
        }
        if ctx.store.target_secret(&t.name)?.is_some() {
            sealed.secrets.push((t.name.clone(), None));
            sealed.notes.push(format!(
                "target {}: token removed, because its url now points elsewhere: import the settings with the token again",
                t.name
            ));
        }
    }
    Ok(())
}

/// What a source's stored secret is, in words.
fn secret_words(s: &SourceConfig) -> &'static str {
    if s.kind == SourceKind::GoogleWorkspace {
        "service-account key"
    } else if s.certificate_file.is_some() {
        "certificate"
    } else {
        "client secret"
    }
}

/// The key file a source names — a Google Workspace service-account key (`key_file`), an
/// Entra ID certificate with its private key (`certificate_file`); a path the caller has
/// made absolute — read and checked; `None` when it names none. Only the operator's
/// settings file may name one: a path from the console or the API would read the
/// server's files. The setting is taken out, as the store never keeps it.
fn read_key_file(s: &mut SourceConfig, from: SettingsFrom) -> Result<Option<Secret>, EngineError> {
    let (setting, path, what) = match (s.key_file.take(), s.certificate_file.take()) {
        (Some(p), _) => ("key_file", p, "the service account's JSON key"),
        (None, Some(p)) => (
            "certificate_file",
            p,
            "a PEM file with the app's certificate and its private key",
        ),
        (None, None) => return Ok(None),
    };
    if path.trim().is_empty() {
        return Ok(None);
    }
    if from == SettingsFrom::Console {
        return Err(EngineError::Config(format!(
            "source {}: {setting} is read only from the operator's settings file: use rostersync config import",
            s.name
        )));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| {
        EngineError::Config(format!(
            "source {}: cannot read {setting} {path}: {e}: give the path of {what} (a relative path is taken from the settings file's folder)",
            s.name
        ))
    })?;
    let checked = match setting {
        "key_file" => idp::google::KeyFile::parse(&text).map(|_| ()),
        _ => idp::entra::Certificate::parse(&text).map(|_| ()),
    };
    checked
        .map_err(|e| EngineError::Config(format!("source {}: {setting} {path}: {e}", s.name)))?;
    Ok(Some(Secret::new(text)))
}

/// The client secret of a source: from the environment variable it names, else the
/// encrypted copy in the store.
pub fn client_secret(
    ctx: &Context<'_>,
    source: &SourceConfig,
) -> Result<Option<Secret>, EngineError> {
    let owner = format!("source {}", source.name);
    let stored = Stored {
        owner: &owner,
        what: secret_words(source),
        env: source.client_secret_env.as_deref(),
        env_setting: "client_secret_env",
    };
    stored.read(ctx, ctx.store.source_secret(&source.name)?)
}

/// A secret a run needs: from the environment variable the settings name, or stored
/// encrypted under the master key. The one reader of both kinds of secret, a source's
/// (its client secret, certificate or key) and a SCIM target's (its bearer token).
pub(crate) struct Stored<'a> {
    /// Whose secret, as errors name it: `source NAME`, `target NAME`.
    pub owner: &'a str,
    /// What the secret is, as errors name it: `client secret`, `token`.
    pub what: &'a str,
    /// The environment variable the settings name instead of a stored secret.
    pub env: Option<&'a str>,
    /// The setting that names it, as errors name it: `client_secret_env`, `token_env`.
    pub env_setting: &'a str,
}

impl Stored<'_> {
    /// The secret: the environment variable's value when one is named (an error when it is
    /// unset or empty), else the stored `blob` decrypted; `None` when neither exists.
    pub fn read(
        &self,
        ctx: &Context<'_>,
        blob: Option<Vec<u8>>,
    ) -> Result<Option<Secret>, EngineError> {
        let Stored {
            owner,
            what,
            env,
            env_setting,
        } = self;
        if let Some(var) = env {
            return match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(Some(Secret::new(v))),
                _ => Err(EngineError::Config(format!(
                    "{owner}: the environment variable {var} ({env_setting}) is not set"
                ))),
            };
        }
        let Some(blob) = blob else {
            return Ok(None);
        };
        let Some(keyring) = ctx.keyring else {
            return Err(EngineError::Config(format!(
                "{owner}: the {what} is stored encrypted but no master key was loaded"
            )));
        };
        let plain = keyring
            .decrypt(&blob)
            .map_err(|e| EngineError::Config(format!("{owner}: cannot decrypt the {what}: {e}")))?;
        let text = String::from_utf8(plain)
            .map_err(|_| EngineError::Config(format!("{owner}: the stored {what} is not text")))?;
        Ok(Some(Secret::new(text)))
    }
}
