//! Changing settings from the console or the API: what changed (for the audit log),
//! whether a protected setting is among it (owner only), and saving with the client
//! secret encrypted and never echoed.

use std::path::Path;

use rostersync_core::settings::{Config, ImportOptions, UserMapping};
use serde_json::Value;
use store::ConsoleRole;

use crate::auth::Principal;
use crate::{ApiError, Shared};

/// `import` keys only the owner may change.
pub const PROTECTED_IMPORT: [&str; 10] = [
    "students",
    "teachers",
    "administrators",
    "other_users",
    "include_inactive",
    "deactivate_users",
    "allow_role_downgrades",
    "skip_relationships",
    "relink_grace_days",
    "deactivate_after_misses",
];

fn json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Every leaf that differs, each in words (see `in_words`).
pub fn diff(path: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    let empty = Value::Object(serde_json::Map::new());
    // A table appearing or going away: each of its leaves changed.
    let (old, new) = match (old, new) {
        (Value::Null, Value::Object(_)) => (&empty, new),
        (Value::Object(_), Value::Null) => (old, &empty),
        _ => (old, new),
    };
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                diff(
                    &p,
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (a, b) if a != b => out.push(in_words(path, a, b)),
        _ => {}
    }
}

/// A setting's value as people read it: `not set`, `on`/`off`, a string unquoted.
fn plain(v: &Value) -> String {
    let s = match v {
        Value::Null => "not set".to_owned(),
        Value::Bool(true) => "on".to_owned(),
        Value::Bool(false) => "off".to_owned(),
        Value::String(s) if s.is_empty() => "empty".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s
    }
}

/// One changed setting in words, e.g. `Field homeroom now updates only if empty (source
/// sis)`. `path` is `[source NAME(.|: )]key.key…` as [`diff`] builds it.
fn in_words(path: &str, old: &Value, new: &Value) -> String {
    let (source, key) = match path.strip_prefix("source ") {
        Some(rest) => match rest.find(['.', ':']) {
            Some(i) => (
                Some(&rest[..i]),
                rest[i + 1..].trim_start_matches([':', ' ']),
            ),
            None => (Some(rest), ""),
        },
        None => (None, path),
    };
    let parts: Vec<&str> = key.split('.').collect();
    let now_was = |what: &str| format!("{what} is now {} (was {})", plain(new), plain(old));
    // A switch's new state: `on` when it is now true, else `off`.
    let turned = |on: &'static str, off: &'static str| {
        if new == &Value::Bool(true) { on } else { off }
    };
    let sentence = match parts.as_slice() {
        ["fields", f, "enabled"] | ["fields", f] => {
            if new.pointer("/enabled").unwrap_or(new) == &Value::Bool(false) {
                format!("Field {f} is no longer written by any source")
            } else {
                format!("Field {f} is written by the sources")
            }
        }
        ["field_priority", f] => match new.as_str() {
            Some("if-not-set") => format!("Field {f} now updates only if empty"),
            _ => format!("Field {f} now always updates"),
        },
        ["import", k] => match (
            crate::pages::settings_form::IMPORT_OPTIONS
                .iter()
                .find(|(key, _, _)| key == k),
            new.as_bool(),
        ) {
            (Some((_, label, _)), Some(on)) => {
                format!("“{label}” ({k}) turned {}", if on { "on" } else { "off" })
            }
            _ => now_was(&format!("Import option {}", k.replace('_', " "))),
        },
        ["network", "allow_loopback"] => format!(
            "Loopback addresses (this machine) are now {}",
            turned("allowed", "refused")
        ),
        ["network", "allow_private"] => format!(
            "Private-network addresses are now {}",
            turned("allowed", "refused")
        ),
        ["schedule", "full"] => now_was("The full sync schedule"),
        ["schedule", "delta"] => now_was("The delta sync schedule"),
        ["features", "guardian_logins"] => {
            format!("Parent/guardian logins turned {}", turned("on", "off"))
        }
        _ => now_was(&key.replace(['_', '.'], " ")),
    };
    match source {
        Some(name) if !key.is_empty() => format!("{sentence} (source {name})"),
        _ => sentence,
    }
}

/// The changes from `old` to `new`, by source, in words.
pub fn changes(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    diff("fields", &json(&old.fields), &json(&new.fields), &mut out);
    for s in &new.sources {
        let Some(before) = old.source(&s.name) else {
            out.push(format!("source {}: added", s.name));
            continue;
        };
        diff(
            &format!("source {}", s.name),
            &audit_json(before),
            &audit_json(s),
            &mut out,
        );
        if before.webhook_url != s.webhook_url {
            // A capability URL: the log says that it changed, never what it is.
            out.push(format!("source {}: webhook_url changed", s.name));
        }
    }
    removed_and_network(old, new, &mut out);
    out
}

/// What both [`changes`] and [`protected_changes`] end with: each source removed, then
/// the network settings that differ.
fn removed_and_network(old: &Config, new: &Config, out: &mut Vec<String>) {
    for s in &old.sources {
        if new.source(&s.name).is_none() {
            out.push(format!("source {}: removed", s.name));
        }
    }
    diff("network", &json(&old.network), &json(&new.network), out);
}

/// A source as the audit log may compare it: the webhook URL left out.
fn audit_json(s: &rostersync_core::settings::SourceConfig) -> Value {
    let mut v = json(s);
    if let Some(o) = v.as_object_mut() {
        o.remove("webhook_url");
    }
    v
}

/// The protected settings `new` changes, in words (empty when none).
pub fn protected_changes(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let default_mapping = json(&UserMapping::default());
    let default_import = json(&ImportOptions::default());
    for s in &new.sources {
        let (mapping, import) = match old.source(&s.name) {
            Some(o) => (json(&o.user_mapping), json(&o.import)),
            None => (default_mapping.clone(), default_import.clone()),
        };
        diff(
            &format!("source {}: user_mapping", s.name),
            &mapping,
            &json(&s.user_mapping),
            &mut out,
        );
        let new_import = json(&s.import);
        for key in PROTECTED_IMPORT {
            diff(
                &format!("source {}: import.{key}", s.name),
                import.get(key).unwrap_or(&Value::Null),
                new_import.get(key).unwrap_or(&Value::Null),
                &mut out,
            );
        }
    }
    removed_and_network(old, new, &mut out);
    out
}

/// Validates and saves new settings for `who`: owner-only changes refused for others,
/// what only the operator may set refused for everyone, client secrets given in `new`
/// encrypted (and never in any answer), a stored secret forgotten when its destination
/// moves, the change written to the audit log. Returns what changed.
pub async fn save(
    state: &Shared,
    who: &Principal,
    mut new: Config,
) -> Result<Vec<String>, ApiError> {
    new.validate().map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_settings",
            e.to_string(),
        )
    })?;
    let app = std::sync::Arc::clone(state);
    let import_dir = state.options.import_dir.clone();
    let role = who.role;
    crate::blocking_as(state, who, move |store, actor, now| {
        let old = store.load_config()?;
        let protected = protected_changes(&old, &new);
        if !protected.is_empty() && role != ConsoleRole::Owner {
            return Err(ApiError::forbidden(format!(
                "only an owner may change protected settings: {}",
                protected.join("; ")
            )));
        }
        operator_only(&old, &new)?;
        confine_paths(&old, &mut new, import_dir.as_deref())?;
        let quiet = |_| {};
        let sealed = engine::seal_secrets(
            &app.context(&quiet),
            &old,
            &mut new,
            engine::SettingsFrom::Console,
        )
        .map_err(|e| match e {
            engine::EngineError::Store(e) => ApiError::from(e),
            e => ApiError::internal(e.to_string()),
        })?;
        let mut changed = changes(&old, &new);
        changed.extend(sealed.notes);
        if changed.is_empty() {
            return Ok(changed);
        }
        store.save_settings_change(&new, &sealed.secrets, actor, &changed.join("; "), now)?;
        Ok(changed)
    })
    .await
}

/// Loads the settings, lets `change` make its change, and saves the result as [`save`]
/// does. Returns what changed.
pub async fn edit(
    state: &Shared,
    who: &Principal,
    change: impl FnOnce(&mut Config) -> Result<(), ApiError>,
) -> Result<Vec<String>, ApiError> {
    let mut config = crate::blocking(state, |store| Ok(store.load_config()?)).await?;
    change(&mut config)?;
    save(state, who, config).await
}

/// Settings only the operator sets (`rostersync config import`): `client_secret_env`
/// names a variable of the server's environment, so from the console or the API it may
/// only be kept as it is or removed; `key_file` and `certificate_file` name files of the
/// server's, never read from here.
fn operator_only(old: &Config, new: &Config) -> Result<(), ApiError> {
    for s in &new.sources {
        for (setting, given) in [
            ("key_file", s.key_file.is_some()),
            ("certificate_file", s.certificate_file.is_some()),
        ] {
            if given {
                return Err(ApiError::forbidden(format!(
                    "source {}: {setting} names a file on the server, so only the operator sets it (rostersync config import FILE.toml)",
                    s.name
                )));
            }
        }
        let before = old
            .source(&s.name)
            .and_then(|o| o.client_secret_env.as_ref());
        if s.client_secret_env.is_some() && s.client_secret_env.as_ref() != before {
            return Err(ApiError::forbidden(format!(
                "source {}: client_secret_env names an environment variable of the server, so only the operator sets it (rostersync config import); enter the client secret instead",
                s.name
            )));
        }
    }
    Ok(())
}

/// A CSV package path set or changed from the console or the API must lie inside the
/// import directory the operator gave `serve` (`--import-dir`); a relative path is taken
/// inside it. Paths the operator imported stay as they are. The check is on the path's
/// words (no `..`), so its answer never says whether a file exists.
fn confine_paths(old: &Config, new: &mut Config, dir: Option<&Path>) -> Result<(), ApiError> {
    for s in &mut new.sources {
        let Some(path) = s.path.clone() else {
            continue;
        };
        let before = old.source(&s.name).and_then(|o| o.path.as_deref());
        if before == Some(path.as_str()) {
            continue;
        }
        let Some(dir) = dir else {
            return Err(ApiError::forbidden(format!(
                "source {}: CSV packages can be chosen from the console only inside an import directory, and none is set: start the server with --import-dir DIR, or set the path with rostersync config import",
                s.name
            )));
        };
        let p = Path::new(&path);
        let inside = if p.is_absolute() {
            p.strip_prefix(dir).ok()
        } else {
            Some(p)
        };
        let Some(rel) = inside.filter(|r| {
            r.components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
        }) else {
            return Err(ApiError::forbidden(format!(
                "source {}: the CSV package must be inside the import directory {} (a name in it, without '..')",
                s.name,
                dir.display()
            )));
        };
        s.path = Some(dir.join(rel).to_string_lossy().into_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        Config::from_toml(&format!(
            "[[source]]\nname = \"sis\"\nkind = \"oneroster-csv\"\npath = \"x\"\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn protected_changes_are_named_and_others_are_not() {
        let old = config("");
        assert!(protected_changes(&old, &old).is_empty());
        let rooms = config("[source.import]\nadd_rooms = false\n");
        assert!(
            protected_changes(&old, &rooms).is_empty(),
            "add_rooms is an admin's"
        );
        assert_eq!(
            changes(&old, &rooms),
            ["“Add rooms (homeroom) to users” (add_rooms) turned off (source sis)"]
        );
        let inactive = config("[source.import]\ninclude_inactive = true\n");
        assert_eq!(
            protected_changes(&old, &inactive),
            ["“Include inactive users” (include_inactive) turned on (source sis)"]
        );
        let priority = config("[source.field_priority]\nhomeroom = \"if-not-set\"\n");
        assert_eq!(
            changes(&old, &priority),
            ["Field homeroom now updates only if empty (source sis)"]
        );
        let schedule = config("[source.schedule]\nfull = \"daily 02:00\"\n");
        let said = changes(&old, &schedule);
        assert!(
            said.iter().any(
                |c| c.starts_with("The full sync schedule is now daily 02:00 (was ")
                    && c.ends_with("(source sis)")
            ),
            "{said:?}"
        );
        assert!(said.iter().all(|c| !c.contains('"')), "no JSON: {said:?}");
        let mapping = config("[source.user_mapping]\nappend_domain = \"x.org\"\n");
        assert_eq!(protected_changes(&old, &mapping).len(), 1);
        let none = Config::default();
        assert_eq!(protected_changes(&old, &none), ["source sis: removed"]);
        // A new source with default protected values is an admin's to add.
        assert!(protected_changes(&none, &old).is_empty());
        assert!(!protected_changes(&none, &inactive).is_empty());
    }

    #[test]
    fn a_key_file_is_the_operators_alone() {
        let old = Config::from_toml(
            "[[source]]\nname = \"google\"\nkind = \"google-workspace\"\nsubject = \"admin@district.example\"\n",
        )
        .unwrap();
        assert!(operator_only(&old, &old).is_ok());
        let mut new = old.clone();
        new.sources[0].key_file = Some("/etc/shadow".into());
        let e = operator_only(&old, &new).unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::FORBIDDEN);
        assert!(
            e.message.contains("key_file names a file on the server")
                && e.message.contains("rostersync config import"),
            "{}",
            e.message
        );
    }
}
