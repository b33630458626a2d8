//! `rostersync config import FILE.toml | config export`: the settings as code.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use jiff::Timestamp;
use rostersync_core::settings::{Config, SourceKind};

use crate::env::{StateArgs, engine_failure, store_failure};
use crate::{Failure, output};

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Replace the settings with a TOML file (client secrets in it, and the key files it
    /// names, are stored encrypted).
    Import {
        file: PathBuf,
        /// Remove the configured sources the file leaves out (with their stored secrets).
        #[arg(long)]
        replace: bool,
    },
    /// Print the settings as TOML (client secrets are never printed).
    Export,
}

/// Who the audit log says acted from the command line.
pub fn cli_actor() -> String {
    match std::env::var("USER").or_else(|_| std::env::var("LOGNAME")) {
        Ok(u) if !u.is_empty() => format!("cli:{u}"),
        _ => "cli".to_owned(),
    }
}

pub fn run(
    state_args: &StateArgs,
    cmd: ConfigCommand,
    runtime: &tokio::runtime::Runtime,
) -> Result<u8, Failure> {
    let state = state_args.open()?;
    match cmd {
        ConfigCommand::Import { file, replace } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Failure::config(format!("cannot read {}: {e}", file.display())))?;
            let mut config = Config::from_toml(&text)
                .map_err(|e| Failure::config(format!("{}: {e}", file.display())))?;
            let current = state.store.load_config().map_err(store_failure)?;
            let dropped: Vec<&str> = current
                .sources
                .iter()
                .filter(|s| config.source(&s.name).is_none())
                .map(|s| s.name.as_str())
                .collect();
            if !dropped.is_empty() && !replace {
                return Err(Failure::config(format!(
                    "{} leaves out the configured source(s) {}: importing it would remove them and their stored client secrets. Add them to the file (rostersync config export prints them), or pass --replace to remove them",
                    file.display(),
                    dropped.join(", ")
                )));
            }
            let base = file.parent().unwrap_or(Path::new("."));
            for s in &mut config.sources {
                if s.kind == SourceKind::OneRosterCsv
                    && let Some(p) = &s.path
                {
                    s.path = Some(resolve(base, p));
                }
                // Read (and sealed) by `seal_secrets`, from the settings file's folder.
                if let Some(p) = &s.key_file {
                    s.key_file = Some(resolve(base, p));
                }
                if let Some(p) = &s.certificate_file {
                    s.certificate_file = Some(resolve(base, p));
                }
            }
            let sealed = engine::seal_secrets(
                &state.quiet_context(runtime.handle()),
                &current,
                &mut config,
                engine::SettingsFrom::Operator,
            )
            .map_err(|e| match e {
                engine::EngineError::Config(m) => {
                    Failure::config(format!("{}: {m}", file.display()))
                }
                e => engine_failure(e),
            })?;
            for s in &config.sources {
                let kept = sealed
                    .secrets
                    .iter()
                    .find(|(name, _)| *name == s.name)
                    .map(|(_, secret)| secret.is_some());
                let stored = match kept {
                    Some(given) => given,
                    None => state
                        .store
                        .source_secret(&s.name)
                        .map_err(store_failure)?
                        .is_some(),
                };
                if s.needs_secret() && s.client_secret_env.is_none() && !stored {
                    let why = if kept == Some(false) {
                        "the stored one was for another host, which the file changed"
                    } else {
                        "none is stored yet"
                    };
                    let needs = match s.kind {
                        SourceKind::GoogleWorkspace => {
                            "key_file = \"…\" (the path of the service account's JSON key, stored encrypted)"
                        }
                        SourceKind::EntraId => {
                            "client_secret, client_secret_env or certificate_file = \"…\" (a PEM file with the app's certificate and its private key, stored encrypted)"
                        }
                        _ => "client_secret or client_secret_env",
                    };
                    return Err(Failure::config(format!(
                        "{}: source {} needs {needs} ({why})",
                        file.display(),
                        s.name
                    )));
                }
            }
            for note in &sealed.notes {
                output::note(note);
            }
            state
                .store
                .save_config(&config, &sealed.secrets, &state.actor, Timestamp::now())
                .map_err(store_failure)?;
            let names: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
            output::line(&format!(
                "imported settings from {}: {} source(s){}{}",
                file.display(),
                names.len(),
                if names.is_empty() { "" } else { ": " },
                names.join(", ")
            ));
            Ok(0)
        }
        ConfigCommand::Export => {
            let config = state.store.load_config().map_err(store_failure)?;
            let mut text = String::from(
                "# rostersync settings. Client secrets and service-account keys are never exported: a\n# source that has one keeps it when this file is imported again without it.\n",
            );
            for s in &config.sources {
                if state
                    .store
                    .source_secret(&s.name)
                    .map_err(store_failure)?
                    .is_some()
                {
                    let what = if s.kind == SourceKind::GoogleWorkspace {
                        "service-account key (key_file) is stored"
                    } else {
                        "client secret is set"
                    };
                    text.push_str(&format!("# source {}: {what}\n", s.name));
                }
            }
            text.push('\n');
            text.push_str(&config.to_toml());
            output::line(text.trim_end());
            Ok(0)
        }
    }
}

/// A CSV path or key file from a settings file, made absolute against the file's folder
/// so the setting means the same thing whatever directory it is read from.
fn resolve(base: &Path, p: &str) -> String {
    let path = Path::new(p);
    let joined = if path.is_absolute() {
        path.to_owned()
    } else {
        base.join(path)
    };
    std::fs::canonicalize(&joined)
        .unwrap_or(joined)
        .display()
        .to_string()
}
