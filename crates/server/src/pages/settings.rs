//! The settings pages' handlers: showing a source's settings one section a page,
//! saving a section, adding a source, validating one against its SIS, and the location
//! mappings ([`crate::locations`]). What a form means is [`super::settings_form`]; here
//! the settings are loaded, saved ([`settings_edit`]) and answered.

use std::collections::BTreeSet;

use askama::Template;
use axum::Form;
use axum::extract::{Extension, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use jiff::Timestamp;
use rostersync_core::settings::SourceConfig;
use serde::Deserialize;

use super::settings_form::{
    self, FormData, ImportOption, Refusal, SettingsView, SourceView, Viewer,
};
use super::{Flash, Nav, Page, back, enc, fail, render};
use crate::api;
use crate::auth::Principal;
use crate::{ApiError, Shared, blocking, settings_edit};

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    nav: Nav,
    sources: Vec<(String, bool)>,
    source: Option<SourceView>,
    auth_methods: Vec<(&'static str, bool)>,
    import_options: Vec<ImportOption>,
    fields: Vec<(&'static str, bool, bool)>,
    validation: Option<crate::validation::Stored>,
    network: rostersync_core::settings::Network,
    import_dir: String,
    server_zone: String,
    /// The section this page shows (one form a page), and every section: (key, title).
    section: String,
    sections: Vec<(&'static str, &'static str)>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SettingsQuery {
    pub source: Option<String>,
    /// One of [`settings_form::SECTIONS`] or `add` (add a source); Authentication when
    /// absent.
    pub section: Option<String>,
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> ApiError {
        match r {
            Refusal::OwnerOnly(m) => ApiError::forbidden(m),
            Refusal::Invalid(m) => ApiError::bad_request(m),
            Refusal::Unknown(m) => ApiError::not_found(m),
            Refusal::Exists(m) => ApiError::conflict(m),
        }
    }
}

/// The source's next scheduled runs in words, in its time zone (the server's when it
/// names none, which is why this is not in the pure [`settings_form`]).
fn next_runs(s: &SourceConfig, now: Timestamp) -> String {
    s.schedule
        .zone()
        .ok()
        .map(|tz| {
            let mut parts = Vec::new();
            if let Some(t) = s.schedule.full.next_after(now, &tz) {
                parts.push(format!(
                    "full {}",
                    t.to_zoned_datetime(tz.clone())
                        .strftime("%a %Y-%m-%d %H:%M %Z")
                ));
            }
            if let Some(t) = s.schedule.delta.next_after(now, &tz) {
                parts.push(format!(
                    "delta {}",
                    t.to_zoned_datetime(tz.clone())
                        .strftime("%a %Y-%m-%d %H:%M %Z")
                ));
            }
            parts.join(" · ")
        })
        .unwrap_or_default()
}

pub async fn settings(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Query(q): Query<SettingsQuery>,
    flash: Flash,
) -> Page {
    let wanted = q.source.clone();
    let (config, secrets, current, validation) = blocking(&state, move |store| {
        let config = store.load_config()?;
        let mut set = BTreeSet::new();
        for s in &config.sources {
            if store.source_secret(&s.name)?.is_some() {
                set.insert(s.name.clone());
            }
        }
        let current = wanted
            .or_else(|| config.sources.first().map(|s| s.name.clone()))
            .unwrap_or_default();
        // The last Validate's result: showing it never contacts the SIS.
        let validation = store
            .meta_get(&crate::validation::key(&current))?
            .and_then(|t| crate::validation::Stored::decode(&t));
        Ok((config, set, current, validation))
    })
    .await
    .map_err(fail)?;
    let src = config.source(&current);
    let validation = validation.filter(|_| src.is_some());
    let now = state.now();
    let SettingsView {
        sources,
        source,
        auth_methods,
        import_options,
        fields,
        section,
        sections,
    } = settings_form::settings_view(
        &config,
        &current,
        q.section.as_deref(),
        secrets.contains(&current),
        src.map(|s| next_runs(s, now)).unwrap_or_default(),
        Viewer {
            can_write: who.role.can_write(),
            is_owner: who.role.is_owner(),
        },
    );
    Ok(render(&SettingsPage {
        nav: Nav::new(&who, "Settings", "settings", &flash),
        sections,
        section,
        sources,
        source,
        auth_methods,
        import_options,
        fields,
        validation,
        network: config.network,
        import_dir: state
            .options
            .import_dir
            .as_ref()
            .map(|d| d.display().to_string())
            .unwrap_or_default(),
        server_zone: jiff::tz::TimeZone::system()
            .iana_name()
            .unwrap_or("UTC")
            .to_owned(),
    }))
}

pub async fn validate(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(source): Path<String>,
) -> Response {
    let result = api::inspect_source(&state, &source).await;
    let detail = format!(
        "{source}: {}",
        match &result {
            Ok(_) => "read".to_owned(),
            Err(e) => e.message.clone(),
        }
    );
    let _ = api::audit(&state, &who, "source.validate", detail).await;
    // A refused validation (too soon) is said as a problem; any other result, good or
    // bad, is kept and shown by the settings page.
    let to = format!("/settings?source={}", enc(&source));
    match result {
        Err(e) if e.status == axum::http::StatusCode::TOO_MANY_REQUESTS => back(&to, Err(e)),
        _ => Redirect::to(&format!("{to}#validation")).into_response(),
    }
}

pub async fn save_section(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path((source, section)): Path<(String, String)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let form = FormData(pairs);
    let result = async {
        let changed = settings_edit::edit(&state, &who, |config| {
            settings_form::apply_section(config, &source, &section, &form, who.role.is_owner())?;
            Ok(())
        })
        .await?;
        Ok(if changed.is_empty() {
            "nothing changed".to_owned()
        } else {
            format!("saved: {}", changed.join("; "))
        })
    }
    .await;
    let to = if section == "delete" && result.is_ok() {
        "/settings".to_owned()
    } else {
        let page = if section == "delete" {
            "remove"
        } else {
            section.as_str()
        };
        format!("/settings?source={}&section={}", enc(&source), enc(page))
    };
    back(&to, result)
}

pub async fn add_source(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let f = FormData(pairs);
    let name = f.text("name").unwrap_or_default();
    let result = async {
        settings_edit::edit(&state, &who, |config| {
            let source = settings_form::new_source(config, &name, &f)?;
            config.sources.push(source);
            Ok(())
        })
        .await?;
        Ok(format!(
            "source {name} added: fill in its authentication below"
        ))
    }
    .await;
    back(&format!("/settings?source={}", enc(&name)), result)
}

// ----- location mappings: [`crate::locations`]

pub async fn locations(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Query(q): Query<SettingsQuery>,
    flash: Flash,
) -> Page {
    crate::locations::page(&state, &who, q, &flash).await
}

pub async fn save_locations(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(source): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    crate::locations::save(&state, &who, source, pairs).await
}
