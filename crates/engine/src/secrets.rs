//! Client secrets: the one place a source's secret is encrypted for the store, forgotten
//! when the credentials' destination moves, and decrypted for a run. Settings saved from
//! a file (`config import`) and from the console or the API both go through
//! [`seal_secrets`]; every run reads them through [`client_secret`].

use rostersync_core::settings::{Config, Secret, SourceConfig};

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
/// an empty one is no secret) for the store, and forgets the stored secret, or drops the
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
        let given = s
            .client_secret
            .as_ref()
            .filter(|secret| !secret.expose().is_empty());
        if let Some(secret) = given {
            let Some(keyring) = ctx.keyring else {
                return Err(EngineError::Config(
                    "no master key is loaded, so a client secret cannot be stored".into(),
                ));
            };
            sealed.secrets.push((
                s.name.clone(),
                Some(keyring.encrypt(secret.expose().as_bytes())),
            ));
            sealed
                .notes
                .push(format!("source {}: client secret replaced", s.name));
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
            sealed.notes.push(format!(
                "source {}: client secret removed, because the credentials' destination changed: enter the secret again",
                s.name
            ));
        }
        if from == SettingsFrom::Console && s.client_secret_env.take().is_some() {
            sealed.notes.push(format!(
                "source {}: client_secret_env removed, because the credentials' destination changed: enter the secret",
                s.name
            ));
        }
    }
    Ok(sealed)
}

/// The client secret of a source: from the environment variable it names, else the
/// encrypted copy in the store.
pub fn client_secret(
    ctx: &Context<'_>,
    source: &SourceConfig,
) -> Result<Option<Secret>, EngineError> {
    if let Some(var) = &source.client_secret_env {
        return match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(Some(Secret::new(v))),
            _ => Err(EngineError::Config(format!(
                "source {}: the environment variable {var} (client_secret_env) is not set",
                source.name
            ))),
        };
    }
    let Some(blob) = ctx.store.source_secret(&source.name)? else {
        return Ok(None);
    };
    let Some(keyring) = ctx.keyring else {
        return Err(EngineError::Config(
            "the client secret is stored encrypted but no master key was loaded".into(),
        ));
    };
    let plain = keyring.decrypt(&blob).map_err(|e| {
        EngineError::Config(format!(
            "source {}: cannot decrypt the client secret: {e}",
            source.name
        ))
    })?;
    let text = String::from_utf8(plain).map_err(|_| {
        EngineError::Config(format!(
            "source {}: the stored client secret is not text",
            source.name
        ))
    })?;
    Ok(Some(Secret::new(text)))
}
