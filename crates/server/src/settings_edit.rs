//! Changing settings from the console or the API: what changed (for the audit log),
//! whether a protected setting is among it (owner only), and saving with the client
//! secret encrypted and never echoed.

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

/// Every leaf that differs, as `path: old → new`.
pub fn diff(path: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
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
        (a, b) if a != b => {
            let show = |v: &Value| {
                let s = v.to_string();
                if s.chars().count() > 80 {
                    format!("{}…", s.chars().take(80).collect::<String>())
                } else {
                    s
                }
            };
            out.push(format!("{path}: {} → {}", show(a), show(b)));
        }
        _ => {}
    }
}

/// The changes from `old` to `new`, by source, in words.
pub fn changes(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    diff("fields", &json(&old.fields), &json(&new.fields), &mut out);
    for s in &new.sources {
        let before = old.source(&s.name).map(json).unwrap_or(Value::Null);
        if before.is_null() {
            out.push(format!("source {}: added", s.name));
            continue;
        }
        diff(&format!("source {}", s.name), &before, &json(s), &mut out);
    }
    for s in &old.sources {
        if new.source(&s.name).is_none() {
            out.push(format!("source {}: removed", s.name));
        }
    }
    out
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
    for s in &old.sources {
        if new.source(&s.name).is_none() {
            out.push(format!("source {}: removed", s.name));
        }
    }
    out
}

/// Validates and saves new settings for `who`: owner-only changes refused for others,
/// client secrets given in `new` encrypted (and never in any answer), the change written
/// to the audit log. Returns what changed.
pub async fn save(state: &Shared, who: &Principal, new: Config) -> Result<Vec<String>, ApiError> {
    new.validate().map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_settings",
            e.to_string(),
        )
    })?;
    let keyring = state.keyring.clone();
    let role = who.role;
    let actor = who.actor();
    let now = state.now();
    crate::blocking(state, move |store| {
        let old = store.load_config()?;
        let protected = protected_changes(&old, &new);
        if !protected.is_empty() && role != ConsoleRole::Owner {
            return Err(ApiError::forbidden(format!(
                "only an owner may change protected settings: {}",
                protected.join("; ")
            )));
        }
        let mut secrets = Vec::new();
        for s in &new.sources {
            if let Some(secret) = &s.client_secret {
                if secret.expose().is_empty() {
                    continue;
                }
                let Some(k) = &keyring else {
                    return Err(ApiError::internal(
                        "no master key is loaded, so a client secret cannot be stored",
                    ));
                };
                secrets.push((s.name.clone(), k.encrypt(secret.expose().as_bytes())));
            }
        }
        let mut changed = changes(&old, &new);
        for (name, _) in &secrets {
            changed.push(format!("source {name}: client secret replaced"));
        }
        if changed.is_empty() {
            return Ok(changed);
        }
        store.save_config(&new, &secrets, &actor, now)?;
        store.audit(&actor, "settings.change", &changed.join("; "), now)?;
        Ok(changed)
    })
    .await
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
            ["source sis.import.add_rooms: true → false"]
        );
        let inactive = config("[source.import]\ninclude_inactive = true\n");
        assert_eq!(
            protected_changes(&old, &inactive),
            ["source sis: import.include_inactive: false → true"]
        );
        let mapping = config("[source.user_mapping]\nappend_domain = \"x.org\"\n");
        assert_eq!(protected_changes(&old, &mapping).len(), 1);
        let none = Config::default();
        assert_eq!(protected_changes(&old, &none), ["source sis: removed"]);
        // A new source with default protected values is an admin's to add.
        assert!(protected_changes(&none, &old).is_empty());
        assert!(!protected_changes(&none, &inactive).is_empty());
    }
}
