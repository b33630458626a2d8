//! The settings form without the web around it: which section a settings page shows and
//! what it shows of a source, and how a posted section (or the add-a-source form) changes
//! the [`Config`], each refusal in words. Plain values in, plain values out: no store, no
//! I/O, no HTTP; [`super::settings`](mod@super::settings) loads, saves and answers.
//!
//! The client secret is write-only: a view says only whether it is set, and an empty
//! secret box keeps the stored one.

use rostersync_core::directory::Field;
use rostersync_core::schedule::{PauseWindow, Spec};
use rostersync_core::settings::{
    AccountDeactivation, AuthMethod, Config, EmailTranslation, FieldSwitch, Priority, Secret,
    SourceConfig, SourceKind,
};

use super::opt;

pub struct SourceView {
    pub name: String,
    pub kind: String,
    /// An account source's settings, (label, value), none of them secret; empty for a
    /// SIS. They are changed only with `rostersync config import`.
    pub account: Vec<(&'static str, String)>,
    pub url: String,
    pub path: String,
    pub client_id: String,
    pub secret_state: String,
    pub credential_expires: String,
    pub version: String,
    pub auth: String,
    pub token_url: String,
    pub translate_email: String,
    pub append_domain: String,
    pub match_by_email: bool,
    pub match_by_identifier: bool,
    pub guardian_logins: bool,
    pub deactivate_after_misses: u32,
    pub relink_grace_days: u32,
    pub schedule_full: String,
    pub schedule_delta: String,
    pub time_zone: String,
    pub pause: String,
    pub next_runs: String,
}

pub struct ImportOption {
    pub key: &'static str,
    pub label: &'static str,
    pub on: bool,
    pub protected: bool,
    pub locked: bool,
}

/// What the settings page shows besides its layout, the last Validate and the server's
/// own settings (network, import folder, time zone).
pub struct SettingsView {
    /// Every source: (name, is the one shown).
    pub sources: Vec<(String, bool)>,
    pub source: Option<SourceView>,
    /// Every auth method: (name, the source's).
    pub auth_methods: Vec<(&'static str, bool)>,
    pub import_options: Vec<ImportOption>,
    /// Every field: (name, written by the sources, updated only if empty).
    pub fields: Vec<(&'static str, bool, bool)>,
    /// The section shown (one form a page), and the sections this viewer may open.
    pub section: String,
    pub sections: Vec<(&'static str, &'static str)>,
}

/// Who is looking at the settings page, as far as it cares.
#[derive(Debug, Clone, Copy)]
pub struct Viewer {
    pub can_write: bool,
    pub is_owner: bool,
}

/// Why a posted form changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The change is an owner's to make.
    OwnerOnly(String),
    /// A field's value is not one its setting takes.
    Invalid(String),
    /// No such source or section.
    Unknown(String),
    /// A source of that name exists already.
    Exists(String),
}

/// The settings sections, one a page: (key in the URL, title).
pub const SECTIONS: [(&str, &str); 8] = [
    ("authentication", "Authentication"),
    ("import", "Import Options"),
    ("fields", "Field Mapping"),
    ("mapping", "User Mapping"),
    ("features", "Available Features"),
    ("schedule", "Schedule"),
    ("network", "Network"),
    ("remove", "Remove"),
];

/// (form key, label, protected)
pub(crate) const IMPORT_OPTIONS: [(&str, &str, bool); 10] = [
    ("add_rooms", "Add rooms (homeroom) to users", false),
    ("skip_calendars", "Skip import of calendars", false),
    ("students", "Import students", true),
    ("teachers", "Import teachers", true),
    (
        "administrators",
        "Import administrators (principals, counselors, aides, proctors)",
        true,
    ),
    (
        "other_users",
        "Import other users (guardians, parents, relatives)",
        true,
    ),
    ("include_inactive", "Include inactive users", true),
    ("deactivate_users", "Deactivate users", true),
    (
        "allow_role_downgrades",
        "Allow non-agent role downgrades",
        true,
    ),
    (
        "skip_relationships",
        "Skip import of user relationships",
        true,
    ),
];

/// The settings page for `current` (a source's name; none shown when no source has it):
/// the `section` asked for (one of [`SECTIONS`] or `add`; Authentication otherwise).
/// `secret_set`: the source's client secret is stored; `next_runs`: its next scheduled
/// runs in words.
pub fn settings_view(
    config: &Config,
    current: &str,
    section: Option<&str>,
    secret_set: bool,
    next_runs: String,
    who: Viewer,
) -> SettingsView {
    let section = section
        .filter(|x| *x == "add" || SECTIONS.iter().any(|(k, _)| k == x))
        .unwrap_or("authentication")
        .to_owned();
    let src = config.source(current);
    SettingsView {
        sections: SECTIONS
            .into_iter()
            .filter(|(k, _)| *k != "remove" || who.is_owner)
            .collect(),
        section,
        sources: config
            .sources
            .iter()
            .map(|s| (s.name.clone(), s.name == current))
            .collect(),
        source: src.map(|s| source_view(s, secret_set, next_runs)),
        auth_methods: AuthMethod::ALL
            .into_iter()
            .map(|a| (a.as_str(), src.and_then(|s| s.auth) == Some(a)))
            .collect(),
        import_options: src
            .map(|s| {
                IMPORT_OPTIONS
                    .iter()
                    .map(|(key, label, protected)| ImportOption {
                        key,
                        label,
                        on: import_value(s, key),
                        protected: *protected,
                        locked: !who.can_write || (*protected && !who.is_owner),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        fields: src
            .map(|s| {
                Field::ALL
                    .iter()
                    .map(|f| {
                        (
                            f.as_str(),
                            config.field_enabled(*f),
                            s.priority(*f) == Priority::IfNotSet,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// An account source's kind in words (`None` for a SIS).
pub fn account_kind_words(kind: SourceKind) -> Option<&'static str> {
    match kind {
        SourceKind::GoogleWorkspace => Some("Google Workspace (accounts)"),
        SourceKind::EntraId => Some("Microsoft Entra ID (accounts)"),
        SourceKind::Scim => Some("SCIM connection (accounts pushed to /scim/v2)"),
        SourceKind::OneRosterApi | SourceKind::OneRosterCsv => None,
    }
}

/// An account source's settings as the console shows them, (label, value): never its
/// key or secret, only whether one is stored. Empty for a SIS. The Settings page and
/// the Overview both show these.
pub fn account_facts(s: &SourceConfig, secret_set: bool) -> Vec<(&'static str, String)> {
    let or = |v: &Option<String>, default: &str| {
        v.as_deref()
            .filter(|v| !v.is_empty())
            .map_or_else(|| default.to_owned(), str::to_owned)
    };
    let deactivate = match s.deactivate {
        AccountDeactivation::Unmanaged => {
            "accounts no SIS source links, when suspended or gone in the provider (unmanaged)"
        }
        AccountDeactivation::Never => "never: the provider's state is only recorded (never)",
        AccountDeactivation::Always => {
            "every account whose identity is suspended or gone in the provider (always)"
        }
    };
    let mut facts = Vec::new();
    match s.kind {
        SourceKind::GoogleWorkspace => {
            facts.push(("Admin acted for (subject)", or(&s.subject, "")));
            match s.domain.as_deref().filter(|d| !d.is_empty()) {
                Some(d) => facts.push(("Domain", d.to_owned())),
                None => facts.push((
                    "Customer",
                    or(&s.customer, "my_customer (the admin's own account)"),
                )),
            }
            if let Some(q) = s.query.as_deref().filter(|q| !q.is_empty()) {
                facts.push(("Query", q.to_owned()));
            }
            facts.push((
                "Directory API URL",
                or(&s.api_url, "Google's (https://admin.googleapis.com)"),
            ));
            facts.push((
                "Service-account key",
                if secret_set {
                    "stored (write-only)".to_owned()
                } else {
                    "not stored: import the settings with key_file".to_owned()
                },
            ));
        }
        SourceKind::EntraId => {
            facts.push(("Tenant", or(&s.tenant, "")));
            facts.push(("Application (client) id", or(&s.client_id, "")));
            facts.push((
                "Client secret",
                match &s.client_secret_env {
                    Some(var) => format!("from ${var}"),
                    None if secret_set => "stored (write-only)".to_owned(),
                    None => "not stored: import the settings with client_secret".to_owned(),
                },
            ));
            facts.push(("Token URL", or(&s.token_url, "Microsoft's, for the tenant")));
            facts.push((
                "Graph URL",
                or(&s.graph_url, "Microsoft's (https://graph.microsoft.com)"),
            ));
        }
        SourceKind::Scim => {
            facts.push((
                "Endpoint",
                "/scim/v2 on this server, with a token of scope scim named after the source"
                    .to_owned(),
            ));
        }
        SourceKind::OneRosterApi | SourceKind::OneRosterCsv => return facts,
    }
    facts.push(("Deactivates", deactivate.to_owned()));
    facts
}

fn source_view(s: &SourceConfig, secret_set: bool, next_runs: String) -> SourceView {
    SourceView {
        name: s.name.clone(),
        kind: s.kind.as_str().to_owned(),
        account: account_facts(s, secret_set),
        url: opt(&s.url),
        path: opt(&s.path),
        client_id: opt(&s.client_id),
        secret_state: if s.client_secret_env.is_some() {
            format!(
                "from ${}",
                s.client_secret_env.as_deref().unwrap_or_default()
            )
        } else if secret_set {
            "set".to_owned()
        } else {
            "not set".to_owned()
        },
        credential_expires: s
            .credential_expires
            .map(|d| d.to_string())
            .unwrap_or_default(),
        version: opt(&s.version),
        auth: s
            .auth
            .map(AuthMethod::as_str)
            .unwrap_or_default()
            .to_owned(),
        token_url: opt(&s.token_url),
        translate_email: s
            .user_mapping
            .translate_email
            .iter()
            .map(|t| format!("{} -> {}", t.from, t.to))
            .collect::<Vec<_>>()
            .join("\n"),
        append_domain: opt(&s.user_mapping.append_domain),
        match_by_email: s.user_mapping.match_by_email,
        match_by_identifier: s.user_mapping.match_by_identifier,
        guardian_logins: s.features.guardian_logins,
        deactivate_after_misses: s.import.deactivate_after_misses,
        relink_grace_days: s.import.relink_grace_days,
        schedule_full: s.schedule.full.to_string(),
        schedule_delta: s.schedule.delta.to_string(),
        time_zone: opt(&s.schedule.time_zone),
        pause: s
            .schedule
            .pause
            .iter()
            .map(|w| format!("{} {}", w.from, w.to))
            .collect::<Vec<_>>()
            .join("\n"),
        next_runs,
    }
}

fn import_value(s: &SourceConfig, key: &str) -> bool {
    let i = &s.import;
    match key {
        "add_rooms" => i.add_rooms,
        "skip_calendars" => i.skip_calendars,
        "students" => i.students,
        "teachers" => i.teachers,
        "administrators" => i.administrators,
        "other_users" => i.other_users,
        "include_inactive" => i.include_inactive,
        "deactivate_users" => i.deactivate_users,
        "allow_role_downgrades" => i.allow_role_downgrades,
        "skip_relationships" => i.skip_relationships,
        _ => false,
    }
}

fn set_import(s: &mut SourceConfig, key: &str, v: bool) {
    let i = &mut s.import;
    match key {
        "add_rooms" => i.add_rooms = v,
        "skip_calendars" => i.skip_calendars = v,
        "students" => i.students = v,
        "teachers" => i.teachers = v,
        "administrators" => i.administrators = v,
        "other_users" => i.other_users = v,
        "include_inactive" => i.include_inactive = v,
        "deactivate_users" => i.deactivate_users = v,
        "allow_role_downgrades" => i.allow_role_downgrades = v,
        "skip_relationships" => i.skip_relationships = v,
        _ => {}
    }
}

/// A posted form as pairs.
pub struct FormData(pub Vec<(String, String)>);

impl FormData {
    /// The value as sent (the first, when a key comes more than once).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A text box: trimmed, and absent when empty.
    pub fn text(&self, key: &str) -> Option<String> {
        self.get(key)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }

    /// A check box: sent (other than `off` or `false`) is ticked.
    pub fn checked(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| v != "off" && v != "false")
    }

    /// A number box: a whole number, absent when empty.
    pub fn number(&self, key: &str) -> Result<Option<u32>, Refusal> {
        self.text(key)
            .map(|v| {
                v.parse::<u32>()
                    .map_err(|_| Refusal::Invalid(format!("{key}: '{v}' is not a whole number")))
            })
            .transpose()
    }
}

/// Applies one posted settings section of `source` to `config` (`delete` removes the
/// source); `owner`: the person posting is an owner. On a refusal `config` may be half
/// changed: it is then thrown away.
pub fn apply_section(
    config: &mut Config,
    source: &str,
    section: &str,
    f: &FormData,
    owner: bool,
) -> Result<(), Refusal> {
    if section == "fields" {
        let s = config
            .sources
            .iter()
            .find(|s| s.name == source)
            .ok_or_else(|| Refusal::Unknown(format!("no source named '{source}'")))?;
        let mut priorities = s.field_priority.clone();
        // What the source does when the setting names nothing (`always` for a SIS,
        // `if-not-set` for an account source): only the other choice is written down.
        let default = if s.kind.is_account_source() {
            Priority::IfNotSet
        } else {
            Priority::Always
        };
        for field in Field::ALL {
            let enabled = f.checked(&format!("enabled.{}", field.as_str()));
            if enabled {
                config.fields.remove(field);
            } else {
                config.fields.insert(*field, FieldSwitch { enabled: false });
            }
            let chosen = match f.get(&format!("priority.{}", field.as_str())) {
                Some("if-not-set") => Some(Priority::IfNotSet),
                Some(_) => Some(Priority::Always),
                None => None,
            };
            match chosen {
                Some(p) if p == default => {
                    priorities.remove(field);
                }
                Some(p) => {
                    priorities.insert(*field, p);
                }
                None => {}
            }
        }
        if let Some(s) = config.sources.iter_mut().find(|s| s.name == source) {
            s.field_priority = priorities;
        }
        return Ok(());
    }
    if section == "network" {
        if !owner {
            return Err(Refusal::OwnerOnly(
                "only an owner may change which networks the server may reach".to_owned(),
            ));
        }
        config.network.allow_private = f.checked("allow_private");
        config.network.allow_loopback = f.checked("allow_loopback");
        return Ok(());
    }
    if section == "delete" {
        if !owner {
            return Err(Refusal::OwnerOnly(
                "only an owner may remove a source".to_owned(),
            ));
        }
        if f.get("confirm").map(str::trim) != Some(source) {
            return Err(Refusal::Invalid(format!(
                "type the source's name ({source}) to confirm its removal"
            )));
        }
        config.sources.retain(|s| s.name != source);
        return Ok(());
    }
    let s = config
        .sources
        .iter_mut()
        .find(|s| s.name == source)
        .ok_or_else(|| Refusal::Unknown(format!("no source named '{source}'")))?;
    match section {
        "authentication" => {
            // An account source's settings (and its key) come from the operator's file:
            // this form has none of them, so saving it would wipe them.
            if s.kind.is_account_source() {
                return Err(Refusal::Invalid(format!(
                    "source {source} is a {} source: its settings are changed in its settings file with `rostersync config import FILE.toml`, not on this form",
                    s.kind.as_str()
                )));
            }
            if let Some(kind) = f.get("kind") {
                s.kind = SourceKind::parse(kind).unwrap_or(SourceKind::OneRosterApi);
                if s.kind.is_account_source() {
                    return Err(Refusal::Invalid(format!(
                        "a source becomes a {} source only with `rostersync config import FILE.toml` (its key or secret is read from the file)",
                        s.kind.as_str()
                    )));
                }
            }
            s.url = f.text("url");
            s.path = f.text("path");
            s.client_id = f.text("client_id");
            if let Some(secret) = f.text("client_secret") {
                s.client_secret = Some(Secret::new(secret));
                s.client_secret_env = None;
            }
            s.credential_expires = match f.text("credential_expires") {
                None => None,
                Some(d) => Some(d.parse().map_err(|_| {
                    Refusal::Invalid(format!(
                        "credential expiration date '{d}' is not YYYY-MM-DD"
                    ))
                })?),
            };
            s.version = f.text("version");
            s.auth =
                match f.text("auth").as_deref() {
                    None => None,
                    Some(name) => Some(AuthMethod::parse(name).ok_or_else(|| {
                        Refusal::Invalid(format!("auth method '{name}' is unknown"))
                    })?),
                };
            s.token_url = f.text("token_url");
        }
        "mapping" => {
            if !owner {
                return Err(Refusal::OwnerOnly(
                    "only an owner may change the user mapping".to_owned(),
                ));
            }
            let mut rules = Vec::new();
            for line in f.get("translate_email").unwrap_or("").lines() {
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                let (from, to) = line.split_once("->").ok_or_else(|| {
                    Refusal::Invalid(format!(
                        "Translate Email rule '{line}' must look like sis.domain -> directory.domain"
                    ))
                })?;
                rules.push(EmailTranslation {
                    from: from.trim().to_owned(),
                    to: to.trim().to_owned(),
                });
            }
            s.user_mapping.translate_email = rules;
            s.user_mapping.append_domain = f.text("append_domain");
            s.user_mapping.match_by_email = f.checked("match_by_email");
            s.user_mapping.match_by_identifier = f.checked("match_by_identifier");
        }
        "import" => {
            for (key, _, protected) in IMPORT_OPTIONS {
                // An admin's form has the protected boxes disabled (not sent): keep them.
                if protected && !owner {
                    continue;
                }
                set_import(s, key, f.checked(key));
            }
            if owner {
                if let Some(n) = f.number("deactivate_after_misses")? {
                    s.import.deactivate_after_misses = n;
                }
                if let Some(n) = f.number("relink_grace_days")? {
                    s.import.relink_grace_days = n;
                }
            }
        }
        "features" => s.features.guardian_logins = f.checked("guardian_logins"),
        "schedule" => {
            s.schedule.full =
                Spec::parse(f.get("full").unwrap_or("off").trim()).map_err(Refusal::Invalid)?;
            s.schedule.delta =
                Spec::parse(f.get("delta").unwrap_or("off").trim()).map_err(Refusal::Invalid)?;
            s.schedule.time_zone = f.text("time_zone");
            let mut pause = Vec::new();
            for line in f.get("pause").unwrap_or("").lines() {
                let words: Vec<&str> = line.split_whitespace().collect();
                match words.as_slice() {
                    [] => {}
                    [from, to] => pause.push(PauseWindow {
                        from: from.parse().map_err(|_| {
                            Refusal::Invalid(format!("pause window '{line}': dates are YYYY-MM-DD"))
                        })?,
                        to: to.parse().map_err(|_| {
                            Refusal::Invalid(format!("pause window '{line}': dates are YYYY-MM-DD"))
                        })?,
                    }),
                    _ => {
                        return Err(Refusal::Invalid(format!(
                            "pause window '{line}' must be two dates: FROM TO"
                        )));
                    }
                }
            }
            s.schedule.pause = pause;
        }
        other => {
            return Err(Refusal::Unknown(format!("no settings section '{other}'")));
        }
    }
    Ok(())
}

/// The source the add-a-source form describes, named `name` (its `kind`, and its
/// `location`: the API's URL or the CSV package's path); refused when `config` has a
/// source of that name.
pub fn new_source(config: &Config, name: &str, f: &FormData) -> Result<SourceConfig, Refusal> {
    if config.source(name).is_some() {
        return Err(Refusal::Exists(format!(
            "a source named '{name}' exists already"
        )));
    }
    let location = f.text("location").unwrap_or_default();
    let kind = f
        .get("kind")
        .and_then(SourceKind::parse)
        .unwrap_or(SourceKind::OneRosterApi);
    let doc = match kind {
        SourceKind::OneRosterCsv => {
            serde_json::json!({"name": name, "kind": kind.as_str(), "path": location})
        }
        SourceKind::OneRosterApi => {
            serde_json::json!({"name": name, "kind": kind.as_str(), "url": location})
        }
        SourceKind::GoogleWorkspace | SourceKind::EntraId | SourceKind::Scim => {
            return Err(Refusal::Invalid(format!(
                "a {} source is added with `rostersync config import FILE.toml` (its key or secret is read from the file): see docs/account-sources.md",
                kind.as_str()
            )));
        }
    };
    serde_json::from_value(doc)
        .map_err(|e| Refusal::Invalid(format!("the new source is not valid: {e}")))
}

#[cfg(test)]
mod tests {
    use rostersync_core::directory::Field;
    use rostersync_core::settings::{
        AuthMethod, Config, Priority, Secret, SourceConfig, SourceKind,
    };
    use serde_json::json;

    use super::{
        FormData, IMPORT_OPTIONS, Refusal, SettingsView, Viewer, apply_section, new_source,
        settings_view,
    };

    const OWNER: Viewer = Viewer {
        can_write: true,
        is_owner: true,
    };
    const ADMIN: Viewer = Viewer {
        can_write: true,
        is_owner: false,
    };
    const READER: Viewer = Viewer {
        can_write: false,
        is_owner: false,
    };
    const SECRET: &str = "s3cr3t-never-shown";

    /// One source with a value in every field the settings page shows.
    fn config() -> Config {
        let mut source: SourceConfig = serde_json::from_value(json!({
            "name": "sis",
            "kind": "oneroster-api",
            "url": "https://sis.example/ims/oneroster/v1p1",
            "client_id": "key",
            "auth": "oauth1-sha256",
            "token_url": "https://sis.example/token",
            "version": "1.1",
            "credential_expires": "2027-06-30",
            "user_mapping": {
                "translate_email": [{"from": "students.example", "to": "example.org"}],
                "append_domain": "example.org",
                "match_by_email": true,
                "match_by_identifier": true
            },
            "import": {"other_users": true, "skip_calendars": true, "deactivate_after_misses": 3},
            "features": {"guardian_logins": true},
            "schedule": {
                "full": "weekly sat,sun 03:30",
                "delta": "hourly :15",
                "time_zone": "America/Chicago",
                "pause": [{"from": "2026-12-20", "to": "2027-01-03"}]
            }
        }))
        .unwrap();
        source.client_secret = Some(Secret::new(SECRET));
        source
            .field_priority
            .insert(Field::ALL[1], Priority::IfNotSet);
        let mut config = Config {
            sources: vec![source],
            ..Config::default()
        };
        config.fields.insert(
            Field::ALL[0],
            rostersync_core::settings::FieldSwitch { enabled: false },
        );
        config.network.allow_private = true;
        config
    }

    fn form(pairs: &[(&str, &str)]) -> FormData {
        FormData(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    fn view(config: &Config, who: Viewer) -> SettingsView {
        settings_view(config, "sis", None, true, String::new(), who)
    }

    /// The form of `section` as the settings page fills it in for `who`.
    fn form_as_shown(config: &Config, section: &str, who: Viewer) -> FormData {
        let v = view(config, who);
        let s = v.source.unwrap();
        let mut pairs: Vec<(String, String)> = vec![("csrf".into(), "token".into())];
        let mut put = |k: &str, v: &str| pairs.push((k.to_owned(), v.to_owned()));
        let tick = |on: bool| if on { Some("on") } else { None };
        match section {
            "authentication" => {
                put("kind", &s.kind);
                put("url", &s.url);
                put("path", &s.path);
                put("client_id", &s.client_id);
                put("client_secret", "");
                put("credential_expires", &s.credential_expires);
                put("version", &s.version);
                put("auth", &s.auth);
                put("token_url", &s.token_url);
            }
            "import" => {
                for o in &v.import_options {
                    if let (false, Some(x)) = (o.locked, tick(o.on)) {
                        put(o.key, x);
                    }
                }
                if who.is_owner {
                    put(
                        "deactivate_after_misses",
                        &s.deactivate_after_misses.to_string(),
                    );
                    put("relink_grace_days", &s.relink_grace_days.to_string());
                }
            }
            "fields" => {
                for (name, enabled, if_not_set) in &v.fields {
                    if let Some(x) = tick(*enabled) {
                        put(&format!("enabled.{name}"), x);
                    }
                    put(
                        &format!("priority.{name}"),
                        if *if_not_set { "if-not-set" } else { "always" },
                    );
                }
            }
            "mapping" => {
                put("translate_email", &s.translate_email);
                put("append_domain", &s.append_domain);
                if let Some(x) = tick(s.match_by_email) {
                    put("match_by_email", x);
                }
                if let Some(x) = tick(s.match_by_identifier) {
                    put("match_by_identifier", x);
                }
            }
            "features" => {
                if let Some(x) = tick(s.guardian_logins) {
                    put("guardian_logins", x);
                }
            }
            "schedule" => {
                put("full", &s.schedule_full);
                put("delta", &s.schedule_delta);
                put("time_zone", &s.time_zone);
                put("pause", &s.pause);
            }
            "network" => {
                if let Some(x) = tick(config.network.allow_private) {
                    put("allow_private", x);
                }
                if let Some(x) = tick(config.network.allow_loopback) {
                    put("allow_loopback", x);
                }
            }
            other => panic!("no form for {other}"),
        }
        FormData(pairs)
    }

    fn refusal(section: &str, pairs: &[(&str, &str)], owner: bool) -> Refusal {
        let mut c = config();
        apply_section(&mut c, "sis", section, &form(pairs), owner).unwrap_err()
    }

    fn invalid(section: &str, pairs: &[(&str, &str)]) -> String {
        match refusal(section, pairs, true) {
            Refusal::Invalid(m) => m,
            other => panic!("expected an invalid value, got {other:?}"),
        }
    }

    fn source(c: &Config) -> &SourceConfig {
        c.source("sis").unwrap()
    }

    fn applied(section: &str, pairs: &[(&str, &str)]) -> Config {
        let mut c = config();
        apply_section(&mut c, "sis", section, &form(pairs), true).unwrap();
        c
    }

    #[test]
    fn a_form_posted_as_shown_changes_nothing() {
        for section in [
            "authentication",
            "import",
            "fields",
            "mapping",
            "features",
            "schedule",
            "network",
        ] {
            for who in [OWNER, ADMIN] {
                if !who.is_owner && matches!(section, "mapping" | "network") {
                    continue;
                }
                let before = config();
                let mut after = before.clone();
                let f = form_as_shown(&before, section, who);
                apply_section(&mut after, "sis", section, &f, who.is_owner).unwrap();
                assert_eq!(after, before, "{section} as {who:?}");
            }
        }
    }

    #[test]
    fn each_invalid_value_is_refused_in_words() {
        assert_eq!(
            invalid("import", &[("deactivate_after_misses", "three")]),
            "deactivate_after_misses: 'three' is not a whole number"
        );
        assert_eq!(
            invalid("import", &[("relink_grace_days", "-1")]),
            "relink_grace_days: '-1' is not a whole number"
        );
        assert_eq!(
            invalid("authentication", &[("credential_expires", "30/06/2027")]),
            "credential expiration date '30/06/2027' is not YYYY-MM-DD"
        );
        assert_eq!(
            invalid("authentication", &[("auth", "kerberos")]),
            "auth method 'kerberos' is unknown"
        );
        assert_eq!(
            invalid(
                "mapping",
                &[("translate_email", "a.example -> b.example\nc.example")]
            ),
            "Translate Email rule 'c.example' must look like sis.domain -> directory.domain"
        );
        assert_eq!(
            invalid("schedule", &[("full", "fortnightly"), ("delta", "off")]),
            rostersync_core::schedule::Spec::parse("fortnightly").unwrap_err()
        );
        assert_eq!(
            invalid("schedule", &[("full", "off"), ("delta", "daily 25:00")]),
            rostersync_core::schedule::Spec::parse("daily 25:00").unwrap_err()
        );
        assert_eq!(
            invalid("schedule", &[("pause", "2026-12-20 soon")]),
            "pause window '2026-12-20 soon': dates are YYYY-MM-DD"
        );
        assert_eq!(
            invalid("schedule", &[("pause", "someday 2026-12-20")]),
            "pause window 'someday 2026-12-20': dates are YYYY-MM-DD"
        );
        assert_eq!(
            invalid("schedule", &[("pause", "2026-12-20")]),
            "pause window '2026-12-20' must be two dates: FROM TO"
        );
        assert_eq!(
            invalid("delete", &[("confirm", "other")]),
            "type the source's name (sis) to confirm its removal"
        );
    }

    #[test]
    fn owner_only_sections_are_refused_to_admins() {
        assert_eq!(
            refusal("network", &[("allow_loopback", "on")], false),
            Refusal::OwnerOnly(
                "only an owner may change which networks the server may reach".into()
            )
        );
        assert_eq!(
            refusal("delete", &[("confirm", "sis")], false),
            Refusal::OwnerOnly("only an owner may remove a source".into())
        );
        assert_eq!(
            refusal("mapping", &[], false),
            Refusal::OwnerOnly("only an owner may change the user mapping".into())
        );
    }

    #[test]
    fn unknown_sources_and_sections_are_not_found() {
        for section in ["fields", "authentication"] {
            let mut c = config();
            assert_eq!(
                apply_section(&mut c, "nope", section, &form(&[]), true),
                Err(Refusal::Unknown("no source named 'nope'".into()))
            );
        }
        assert_eq!(
            refusal("colours", &[], true),
            Refusal::Unknown("no settings section 'colours'".into())
        );
    }

    #[test]
    fn text_boxes_are_trimmed_and_empty_ones_clear_the_setting() {
        let c = applied(
            "authentication",
            &[("url", "  https://new.example/v1p2 "), ("client_id", "   ")],
        );
        let s = source(&c);
        assert_eq!(s.url.as_deref(), Some("https://new.example/v1p2"));
        assert_eq!(s.client_id, None);
        assert_eq!(s.version, None);
        assert_eq!(s.token_url, None);
        let c = applied("schedule", &[("time_zone", " Europe/Paris ")]);
        assert_eq!(
            source(&c).schedule.time_zone.as_deref(),
            Some("Europe/Paris")
        );
    }

    #[test]
    fn check_boxes_are_on_only_when_sent_and_not_off() {
        for (sent, on) in [
            (Some("on"), true),
            (Some("yes"), true),
            (Some("off"), false),
            (Some("false"), false),
            (None, false),
        ] {
            let pairs: Vec<(&str, &str)> =
                sent.map(|v| ("guardian_logins", v)).into_iter().collect();
            assert_eq!(
                source(&applied("features", &pairs))
                    .features
                    .guardian_logins,
                on,
                "{sent:?}"
            );
        }
    }

    #[test]
    fn selects_set_the_kind_and_the_auth_method() {
        let c = applied("authentication", &[("kind", "oneroster-csv")]);
        assert_eq!(source(&c).kind, SourceKind::OneRosterCsv);
        // Anything else is the REST API; no kind sent keeps the kind.
        let c = applied("authentication", &[("kind", "ldap")]);
        assert_eq!(source(&c).kind, SourceKind::OneRosterApi);
        let mut csv = config();
        csv.sources[0].kind = SourceKind::OneRosterCsv;
        apply_section(&mut csv, "sis", "authentication", &form(&[]), true).unwrap();
        assert_eq!(source(&csv).kind, SourceKind::OneRosterCsv);
        for (name, method) in [
            ("oauth2", Some(AuthMethod::OAuth2)),
            ("oauth1-sha256", Some(AuthMethod::OAuth1Sha256)),
            ("oauth1-sha1", Some(AuthMethod::OAuth1Sha1)),
            ("none", Some(AuthMethod::None)),
            ("", None),
        ] {
            let c = applied("authentication", &[("auth", name)]);
            assert_eq!(source(&c).auth, method, "{name}");
        }
    }

    #[test]
    fn dates_numbers_and_line_lists_are_read() {
        let c = applied("authentication", &[("credential_expires", "2028-01-31")]);
        assert_eq!(
            source(&c)
                .credential_expires
                .map(|d| d.to_string())
                .as_deref(),
            Some("2028-01-31")
        );
        let c = applied(
            "import",
            &[
                ("deactivate_after_misses", " 5 "),
                ("relink_grace_days", ""),
            ],
        );
        assert_eq!(source(&c).import.deactivate_after_misses, 5);
        assert_eq!(
            source(&c).import.relink_grace_days,
            source(&config()).import.relink_grace_days
        );
        let c = applied(
            "mapping",
            &[(
                "translate_email",
                "\n a.example->b.example \n\nc.example -> d.example\n",
            )],
        );
        let rules: Vec<(String, String)> = source(&c)
            .user_mapping
            .translate_email
            .iter()
            .map(|r| (r.from.clone(), r.to.clone()))
            .collect();
        assert_eq!(
            rules,
            [
                ("a.example".to_owned(), "b.example".to_owned()),
                ("c.example".to_owned(), "d.example".to_owned())
            ]
        );
        let c = applied(
            "schedule",
            &[
                ("full", " daily 04:00 "),
                ("pause", "2027-07-01 2027-08-15\n\n2027-12-24   2027-12-26"),
            ],
        );
        let s = source(&c);
        assert_eq!(s.schedule.full.to_string(), "daily 04:00");
        // A schedule left out is off.
        assert_eq!(s.schedule.delta.to_string(), "off");
        let windows: Vec<String> = s
            .schedule
            .pause
            .iter()
            .map(|w| format!("{} {}", w.from, w.to))
            .collect();
        assert_eq!(windows, ["2027-07-01 2027-08-15", "2027-12-24 2027-12-26"]);
    }

    #[test]
    fn field_switches_and_priorities() {
        let name = Field::ALL[0].as_str();
        let enabled = format!("enabled.{name}");
        let priority = format!("priority.{name}");
        let c = applied("fields", &[(&enabled, "on"), (&priority, "if-not-set")]);
        assert!(c.field_enabled(Field::ALL[0]));
        assert_eq!(source(&c).priority(Field::ALL[0]), Priority::IfNotSet);
        // Every field not ticked is switched off; a priority not sent is kept.
        assert!(!c.field_enabled(Field::ALL[1]));
        assert_eq!(source(&c).priority(Field::ALL[1]), Priority::IfNotSet);
        let other = format!("priority.{}", Field::ALL[1].as_str());
        let c = applied("fields", &[(&other, "always")]);
        assert_eq!(source(&c).priority(Field::ALL[1]), Priority::default());
    }

    #[test]
    fn admins_keep_the_protected_import_options() {
        let before = config();
        let mut after = before.clone();
        // Every box sent, numbers too: only the unprotected ones change.
        let mut pairs: Vec<(&str, &str)> =
            IMPORT_OPTIONS.iter().map(|(k, _, _)| (*k, "on")).collect();
        pairs.push(("deactivate_after_misses", "9"));
        apply_section(&mut after, "sis", "import", &form(&pairs), false).unwrap();
        let (b, a) = (&source(&before).import, &source(&after).import);
        assert!(a.add_rooms && a.skip_calendars);
        assert_eq!(
            (a.other_users, a.include_inactive, a.deactivate_after_misses),
            (b.other_users, b.include_inactive, b.deactivate_after_misses)
        );
        // An owner's form sets them all.
        let mut owned = before.clone();
        apply_section(&mut owned, "sis", "import", &form(&pairs), true).unwrap();
        let o = &source(&owned).import;
        assert!(o.include_inactive && o.allow_role_downgrades && o.skip_relationships);
        assert_eq!(o.deactivate_after_misses, 9);
    }

    #[test]
    fn the_secret_is_write_only() {
        let v = view(&config(), OWNER);
        let s = v.source.unwrap();
        assert_eq!(s.secret_state, "set");
        let shown = [
            &s.name,
            &s.kind,
            &s.url,
            &s.path,
            &s.client_id,
            &s.secret_state,
            &s.credential_expires,
            &s.version,
            &s.auth,
            &s.token_url,
            &s.translate_email,
            &s.append_domain,
            &s.schedule_full,
            &s.schedule_delta,
            &s.time_zone,
            &s.pause,
            &s.next_runs,
        ];
        assert!(shown.iter().all(|t| !t.contains(SECRET)));
        let unset = settings_view(&config(), "sis", None, false, String::new(), OWNER);
        assert_eq!(unset.source.unwrap().secret_state, "not set");
        let mut env = config();
        env.sources[0].client_secret_env = Some("SIS_SECRET".into());
        assert_eq!(
            view(&env, OWNER).source.unwrap().secret_state,
            "from $SIS_SECRET"
        );
        // An empty box keeps the secret; a typed one replaces it and the variable.
        let c = applied("authentication", &[("client_secret", "  ")]);
        assert_eq!(source(&c).client_secret, Some(Secret::new(SECRET)));
        apply_section(
            &mut env,
            "sis",
            "authentication",
            &form(&[("client_secret", " new ")]),
            true,
        )
        .unwrap();
        assert_eq!(source(&env).client_secret, Some(Secret::new("new")));
        assert_eq!(source(&env).client_secret_env, None);
    }

    #[test]
    fn each_section_shows_its_values() {
        let v = view(&config(), OWNER);
        assert_eq!(v.section, "authentication");
        assert_eq!(v.sources, [("sis".to_owned(), true)]);
        let s = v.source.unwrap();
        assert_eq!(
            (s.kind.as_str(), s.auth.as_str(), s.version.as_str()),
            ("oneroster-api", "oauth1-sha256", "1.1")
        );
        assert_eq!(s.credential_expires, "2027-06-30");
        assert_eq!(s.translate_email, "students.example -> example.org");
        assert!(s.match_by_email && s.match_by_identifier && s.guardian_logins);
        assert_eq!((s.deactivate_after_misses, s.relink_grace_days), (3, 365));
        assert_eq!(
            (s.schedule_full.as_str(), s.schedule_delta.as_str()),
            ("weekly sat,sun 03:30", "hourly :15")
        );
        assert_eq!(s.pause, "2026-12-20 2027-01-03");
        let chosen: Vec<&str> = v.auth_methods.iter().filter(|a| a.1).map(|a| a.0).collect();
        assert_eq!(chosen, ["oauth1-sha256"]);
        assert_eq!(v.auth_methods.len(), 4);
        let on: Vec<&str> = v
            .import_options
            .iter()
            .filter(|o| o.on)
            .map(|o| o.key)
            .collect();
        assert_eq!(
            on,
            [
                "add_rooms",
                "skip_calendars",
                "students",
                "teachers",
                "administrators",
                "other_users",
                "deactivate_users"
            ]
        );
        assert_eq!(v.fields.len(), Field::ALL.len());
        assert_eq!(v.fields[0], (Field::ALL[0].as_str(), false, false));
        assert_eq!(v.fields[1], (Field::ALL[1].as_str(), true, true));
        // No source of that name: nothing of one is shown.
        let none = settings_view(&config(), "gone", None, false, String::new(), OWNER);
        assert!(none.source.is_none() && none.import_options.is_empty() && none.fields.is_empty());
        assert!(none.auth_methods.iter().all(|a| !a.1));
        assert_eq!(none.sources, [("sis".to_owned(), false)]);
    }

    #[test]
    fn the_section_shown_and_who_may_open_which() {
        for (asked, shown) in [
            (None, "authentication"),
            (Some("schedule"), "schedule"),
            (Some("add"), "add"),
            (Some("remove"), "remove"),
            (Some("<script>"), "authentication"),
        ] {
            let v = settings_view(&config(), "sis", asked, false, String::new(), READER);
            assert_eq!(v.section, shown);
        }
        let keys =
            |who| -> Vec<&str> { view(&config(), who).sections.iter().map(|s| s.0).collect() };
        assert_eq!(keys(OWNER).len(), 8);
        assert!(!keys(ADMIN).contains(&"remove"));
        assert!(!keys(READER).contains(&"remove"));
        let locked = |who| -> Vec<bool> {
            view(&config(), who)
                .import_options
                .iter()
                .map(|o| o.locked)
                .collect()
        };
        assert!(locked(OWNER).iter().all(|l| !l));
        assert!(locked(READER).iter().all(|l| *l));
        let admin: Vec<bool> = IMPORT_OPTIONS.iter().map(|o| o.2).collect();
        assert_eq!(locked(ADMIN), admin);
    }

    #[test]
    fn removing_a_source_needs_its_name() {
        let c = applied("delete", &[("confirm", " sis ")]);
        assert!(c.sources.is_empty());
    }

    #[test]
    fn a_new_source_is_a_rest_api_or_a_csv_package() {
        let empty = Config::default();
        let api = new_source(
            &empty,
            "north",
            &form(&[("location", " https://n.example ")]),
        )
        .unwrap();
        assert_eq!(
            (api.kind, api.url.as_deref(), api.path.as_deref()),
            (SourceKind::OneRosterApi, Some("https://n.example"), None)
        );
        let csv = new_source(
            &empty,
            "south",
            &form(&[("kind", "oneroster-csv"), ("location", "south.zip")]),
        )
        .unwrap();
        assert_eq!(
            (csv.kind, csv.url.as_deref(), csv.path.as_deref()),
            (SourceKind::OneRosterCsv, None, Some("south.zip"))
        );
        assert_eq!(
            new_source(&config(), "sis", &form(&[])).map(|s| s.name),
            Err(Refusal::Exists(
                "a source named 'sis' exists already".into()
            ))
        );
    }

    fn account_config() -> Config {
        Config::from_toml(
            "[[source]]\nname = \"google\"\nkind = \"google-workspace\"\nsubject = \"admin@district.example\"\ndomain = \"district.example\"\nquery = \"orgUnitPath='/Students'\"\ndeactivate = \"never\"\n\n[[source]]\nname = \"entra\"\nkind = \"entra-id\"\ntenant = \"district.onmicrosoft.com\"\nclient_id = \"app-1\"\nclient_secret = \"3ntra-s3cret\"\n",
        )
        .unwrap()
    }

    #[test]
    fn account_sources_show_their_settings_and_never_a_secret() {
        let c = account_config();
        let google = settings_view(&c, "google", None, true, String::new(), OWNER)
            .source
            .unwrap();
        assert_eq!(google.kind, "google-workspace");
        let facts: Vec<(&str, &str)> = google
            .account
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        assert_eq!(
            facts,
            [
                ("Admin acted for (subject)", "admin@district.example"),
                ("Domain", "district.example"),
                ("Query", "orgUnitPath='/Students'"),
                (
                    "Directory API URL",
                    "Google's (https://admin.googleapis.com)"
                ),
                ("Service-account key", "stored (write-only)"),
                (
                    "Deactivates",
                    "never: the provider's state is only recorded (never)"
                ),
            ]
        );
        let unset = settings_view(&c, "google", None, false, String::new(), OWNER)
            .source
            .unwrap();
        assert!(unset.account.contains(&(
            "Service-account key",
            "not stored: import the settings with key_file".into()
        )));
        let entra = settings_view(&c, "entra", None, true, String::new(), READER)
            .source
            .unwrap();
        assert!(
            entra
                .account
                .iter()
                .all(|(_, v)| !v.contains("3ntra-s3cret"))
        );
        assert!(
            entra
                .account
                .contains(&("Tenant", "district.onmicrosoft.com".into()))
        );
        assert!(
            entra
                .account
                .contains(&("Client secret", "stored (write-only)".into()))
        );
        assert!(
            entra
                .account
                .contains(&("Token URL", "Microsoft's, for the tenant".into()))
        );
        // A SIS has none of these.
        assert!(view(&config(), OWNER).source.unwrap().account.is_empty());
    }

    #[test]
    fn the_authentication_form_never_wipes_an_account_source() {
        let mut c = account_config();
        let before = c.clone();
        for name in ["google", "entra"] {
            let refused = apply_section(
                &mut c,
                name,
                "authentication",
                &form(&[("kind", "oneroster-api"), ("url", "https://sis.example")]),
                true,
            );
            let Err(Refusal::Invalid(m)) = refused else {
                panic!("{refused:?}");
            };
            assert!(m.starts_with(&format!("source {name} is a ")), "{m}");
            assert!(m.contains("rostersync config import FILE.toml"), "{m}");
        }
        assert_eq!(c, before);
        // Their other sections save as a SIS's do.
        apply_section(
            &mut c,
            "google",
            "schedule",
            &form(&[("full", "daily 03:00")]),
            true,
        )
        .unwrap();
        assert_eq!(
            c.source("google").unwrap().schedule.full.to_string(),
            "daily 03:00"
        );
        assert_eq!(
            c.source("google").unwrap().subject,
            before.source("google").unwrap().subject
        );
        // A SIS does not become an account source from the form.
        assert_eq!(
            invalid("authentication", &[("kind", "google-workspace")]),
            "a source becomes a google-workspace source only with `rostersync config import FILE.toml` (its key or secret is read from the file)"
        );
    }

    #[test]
    fn an_account_source_is_not_added_from_the_console() {
        for kind in ["google-workspace", "entra-id"] {
            let refused = new_source(
                &Config::default(),
                "idp",
                &form(&[("kind", kind), ("location", "https://x.example")]),
            );
            let Err(Refusal::Invalid(m)) = refused else {
                panic!("{refused:?}");
            };
            assert!(
                m.contains(&format!(
                    "a {kind} source is added with `rostersync config import"
                )),
                "{m}"
            );
        }
    }
}
