//! Settings as code, kept in the database: the global `[fields]` switches in `settings`,
//! one `sources` row per source (its settings as JSON, never the secret; the encrypted
//! secret in its own column), plus the `meta` key-value table and the audit log.

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;
use rostersync_core::directory::Field;
use rostersync_core::settings::{Config, FieldSwitch, Network, SourceConfig};
use rostersync_core::target::TargetConfig;

use crate::sql::{Tx, Value, encode, query_opt, query_vec, ts};
use crate::{AuditRecord, Result, StoreError};

pub(crate) fn meta_get(tx: &mut dyn Tx, key: &str) -> Result<Option<String>> {
    query_opt(
        tx,
        "SELECT value FROM meta WHERE key = ?",
        &[key.into()],
        |r| r.text(0),
    )
}

pub(crate) fn meta_set(tx: &mut dyn Tx, key: &str, value: &str) -> Result<()> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[key.into(), value.into()],
    )?;
    Ok(())
}

pub(crate) fn load_config(tx: &mut dyn Tx) -> Result<Config> {
    let fields: BTreeMap<Field, FieldSwitch> = load_setting(tx, "fields")?;
    let network: Network = load_setting(tx, "network")?;
    let sources = query_vec(
        tx,
        "SELECT name, settings FROM sources ORDER BY position, id",
        &[],
        |r| {
            let name = r.text(0)?;
            serde_json::from_str::<SourceConfig>(&r.text(1)?)
                .map_err(|e| StoreError::Corrupt(format!("stored settings of source {name}: {e}")))
        },
    )?;
    let targets = query_vec(
        tx,
        "SELECT name, settings FROM targets ORDER BY position, name",
        &[],
        |r| {
            let name = r.text(0)?;
            serde_json::from_str::<TargetConfig>(&r.text(1)?)
                .map_err(|e| StoreError::Corrupt(format!("stored settings of target {name}: {e}")))
        },
    )?;
    Ok(Config {
        fields,
        sources,
        targets,
        network,
    })
}

/// One `[table]` of the settings, its default when it was never saved.
fn load_setting<T: serde::de::DeserializeOwned + Default>(tx: &mut dyn Tx, key: &str) -> Result<T> {
    match query_opt(
        tx,
        "SELECT value FROM settings WHERE key = ?",
        &[key.into()],
        |r| r.text(0),
    )? {
        Some(json) => serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("stored [{key}] settings: {e}"))),
        None => Ok(T::default()),
    }
}

pub(crate) fn save_config(
    tx: &mut dyn Tx,
    config: &Config,
    secrets: &[(String, Option<Vec<u8>>)],
    actor: &str,
    now: Timestamp,
) -> Result<()> {
    let detail = describe(config, secrets);
    save_settings(tx, config, secrets, actor, ("config.import", &detail), now)
}

/// [`save_config`] audited as `entry` (action, detail): a console or API change says
/// what changed (`settings.change`), an import what it imported.
pub(crate) fn save_settings(
    tx: &mut dyn Tx,
    config: &Config,
    secrets: &[(String, Option<Vec<u8>>)],
    actor: &str,
    entry: (&str, &str),
    now: Timestamp,
) -> Result<()> {
    for (name, _) in secrets {
        if config.source(name).is_none() && config.target(name).is_none() {
            return Err(StoreError::Conflict(format!(
                "a secret was given for {name}, which is no source or target of the settings"
            )));
        }
    }
    let now_s = ts(now);
    let existing: HashMap<String, i64> = query_vec(tx, "SELECT name, id FROM sources", &[], |r| {
        Ok((r.text(0)?, r.i64(1)?))
    })?
    .into_iter()
    .collect();
    for name in existing.keys() {
        if config.source(name).is_none() {
            tx.execute("DELETE FROM sources WHERE name = ?", &[name.into()])?;
            // What its runs listed says nothing of a source added later under the name.
            tx.execute("DELETE FROM listed_skips WHERE source = ?", &[name.into()])?;
        }
    }
    for (position, s) in config.sources.iter().enumerate() {
        // `client_secret` is never serialised: the JSON holds everything but the secret.
        let settings = encode("source settings", s)?;
        let kind = serde_json::to_value(s.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let position = Value::Int(i64::try_from(position).unwrap_or(i64::MAX));
        let secret = secrets
            .iter()
            .find(|(n, _)| *n == s.name)
            .map(|(_, b)| b.clone());
        if existing.contains_key(&s.name) {
            tx.execute(
                "UPDATE sources SET position = ?, kind = ?, settings = ?, updated_at = ? WHERE name = ?",
                &[position, kind.into(), settings.into(), now_s.as_str().into(), s.name.as_str().into()],
            )?;
            if let Some(secret) = secret {
                tx.execute(
                    "UPDATE sources SET secret = ? WHERE name = ?",
                    &[secret.into(), s.name.as_str().into()],
                )?;
            }
        } else {
            tx.execute(
                "INSERT INTO sources (name, position, kind, settings, secret, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
                &[
                    s.name.as_str().into(),
                    position,
                    kind.into(),
                    settings.into(),
                    secret.flatten().into(),
                    now_s.as_str().into(),
                    now_s.as_str().into(),
                ],
            )?;
        }
    }
    save_targets(tx, config, secrets, &now_s)?;
    for (key, value) in [
        ("fields", encode("[fields] settings", &config.fields)?),
        ("network", encode("[network] settings", &config.network)?),
    ] {
        tx.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[key.into(), value.into()],
        )?;
    }
    audit(tx, actor, entry.0, entry.1, now)
}

/// The `[[target]]`s: a target left out is removed (with what it was pushed: its push
/// state); a secret given (the bearer token, encrypted) replaces the stored one, `None`
/// forgets it.
fn save_targets(
    tx: &mut dyn Tx,
    config: &Config,
    secrets: &[(String, Option<Vec<u8>>)],
    now: &str,
) -> Result<()> {
    let existing: Vec<String> = query_vec(tx, "SELECT name FROM targets", &[], |r| r.text(0))?;
    for name in &existing {
        if config.target(name).is_none() {
            tx.execute("DELETE FROM push_state WHERE target = ?", &[name.into()])?;
            tx.execute("DELETE FROM push_groups WHERE target = ?", &[name.into()])?;
            tx.execute("DELETE FROM targets WHERE name = ?", &[name.into()])?;
        }
    }
    for (position, t) in config.targets.iter().enumerate() {
        // `token` is never serialised: the JSON holds everything but the token.
        let settings = encode("target settings", t)?;
        let position = Value::Int(i64::try_from(position).unwrap_or(i64::MAX));
        tx.execute(
            "INSERT INTO targets (name, position, settings, updated_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET position = excluded.position, settings = excluded.settings, \
             updated_at = excluded.updated_at",
            &[t.name.as_str().into(), position, settings.into(), now.into()],
        )?;
        if let Some((_, secret)) = secrets.iter().find(|(n, _)| *n == t.name) {
            tx.execute(
                "UPDATE targets SET secret = ? WHERE name = ?",
                &[secret.clone().into(), t.name.as_str().into()],
            )?;
        }
    }
    Ok(())
}

pub(crate) fn target_secret(tx: &mut dyn Tx, target: &str) -> Result<Option<Vec<u8>>> {
    Ok(query_opt(
        tx,
        "SELECT secret FROM targets WHERE name = ?",
        &[target.into()],
        |r| r.opt_blob(0),
    )?
    .flatten())
}

/// What an import changed, in words; names sources and fields, never a secret.
fn describe(config: &Config, secrets: &[(String, Option<Vec<u8>>)]) -> String {
    let names: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
    let targets: Vec<&str> = config.targets.iter().map(|t| t.name.as_str()).collect();
    let off: Vec<&str> = config
        .fields
        .iter()
        .filter(|(_, s)| !s.enabled)
        .map(|(f, _)| f.as_str())
        .collect();
    let with_secret: Vec<&str> = secrets
        .iter()
        .filter(|(_, b)| b.is_some())
        .map(|(n, _)| n.as_str())
        .collect();
    let cleared: Vec<&str> = secrets
        .iter()
        .filter(|(_, b)| b.is_none())
        .map(|(n, _)| n.as_str())
        .collect();
    let list = |v: &[&str]| {
        if v.is_empty() {
            "none".to_owned()
        } else {
            v.join(", ")
        }
    };
    format!(
        "sources: {}; targets: {}; disabled fields: {}; secrets replaced: {}{}",
        list(&names),
        list(&targets),
        list(&off),
        list(&with_secret),
        if cleared.is_empty() {
            String::new()
        } else {
            format!("; secrets removed: {}", cleared.join(", "))
        }
    )
}

pub(crate) fn source_secret(tx: &mut dyn Tx, source: &str) -> Result<Option<Vec<u8>>> {
    Ok(query_opt(
        tx,
        "SELECT secret FROM sources WHERE name = ?",
        &[source.into()],
        |r| r.opt_blob(0),
    )?
    .flatten())
}

pub(crate) fn audit(
    tx: &mut dyn Tx,
    actor: &str,
    action: &str,
    detail: &str,
    now: Timestamp,
) -> Result<()> {
    tx.execute(
        "INSERT INTO audit_log (at, actor, action, detail) VALUES (?, ?, ?, ?)",
        &[ts(now).into(), actor.into(), action.into(), detail.into()],
    )?;
    Ok(())
}

/// Newest first; `limit` 0 means all.
pub(crate) fn audit_log(tx: &mut dyn Tx, limit: u32) -> Result<Vec<AuditRecord>> {
    let mut params = Vec::new();
    let sql = format!(
        "SELECT at, actor, action, detail FROM audit_log ORDER BY id DESC{}",
        tx.dialect().limit_offset(limit, 0, &mut params)
    );
    query_vec(tx, &sql, &params, |r| {
        Ok(AuditRecord {
            at: r.ts(0)?,
            actor: r.text(1)?,
            action: r.text(2)?,
            detail: r.text(3)?,
        })
    })
}
