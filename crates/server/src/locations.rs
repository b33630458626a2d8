//! Location Mappings: each SIS org to a directory location, chosen from the locations
//! that exist; a new one only by choosing *New location…* and confirming, on the preview,
//! that the next sync will create it.
//!
//! Saving goes through a preview (a POST that renders a confirmation page carrying the
//! resolved mapping in hidden fields, so it works without JavaScript): how many accounts
//! the next sync would move from where to where, and whether that alone would hold the
//! sync for approval ([`rostersync_core::relocation`], judged by the guard's own rule).

use std::collections::{BTreeMap, BTreeSet};

use askama::Template;
use axum::Form;
use axum::extract::{Extension, Path, State};
use axum::response::Response;
use rostersync_core::relocation::{self, Relocation, Unmanaged};
use rostersync_core::settings::{Config, LocationMapping};

use crate::auth::Principal;
use crate::pages::{Flash, Nav, Page, SettingsQuery, back, enc, fail, render};
use crate::{ApiError, Shared, blocking, settings_edit};

/// The choice of the location select that means "the name typed beside it".
pub const NEW_CHOICE: &str = "+new";
/// The form field of the default location (an org's is `map.SOURCEDID`), and of the name
/// typed for a new one (an org's is `new.SOURCEDID`).
const DEFAULT: &str = "default";
const DEFAULT_NEW: &str = "default_new";
/// Set by the preview's checkbox: the admin agreed new locations will be created.
const CONFIRM_NEW: &str = "confirm_new";
/// How many moves the preview spells out one by one.
const MOVES_SHOWN: usize = 20;

/// The names a mapping may use without a confirmation: the directory's locations, and
/// those the saved mappings of any source name already (created by their next sync).
fn known_names(config: &Config, existing: Vec<String>) -> BTreeSet<String> {
    let mut known: BTreeSet<String> = existing.into_iter().collect();
    for s in &config.sources {
        known.extend(s.locations.map.values().cloned());
        known.extend(s.locations.default.clone());
    }
    known
}

/// A mapping change as the form asked for it.
struct Proposal {
    mapping: LocationMapping,
    /// Names that are no location yet, sorted.
    new_names: Vec<String>,
}

/// Reads the form: per org `map.ORG` (a location, empty for "not mapped", or
/// [`NEW_CHOICE`]) and `new.ORG` (a typed name, which wins when given), the same for the
/// default. A typed name that differs from a known one only in case is the known one.
fn proposal(
    pairs: &[(String, String)],
    current: &LocationMapping,
    known: &BTreeSet<String>,
) -> Result<Proposal, ApiError> {
    let typed: BTreeMap<&str, &str> = pairs
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("new.").map(|org| (org, v.trim())))
        .collect();
    let field = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.trim())
    };
    let resolve = |chosen: &str, typed: &str, what: &str| -> Result<Option<String>, ApiError> {
        let name = if !typed.is_empty() {
            typed
        } else if chosen == NEW_CHOICE {
            return Err(ApiError::bad_request(format!(
                "{what}: 'New location…' is chosen but no name is typed beside it: type the new location's name, or choose an existing one"
            )));
        } else {
            chosen
        };
        if name.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            known
                .iter()
                .find(|k| k.eq_ignore_ascii_case(name))
                .cloned()
                .unwrap_or_else(|| name.to_owned()),
        ))
    };
    let mut mapping = current.clone();
    if let Some(chosen) = field(DEFAULT) {
        mapping.default = resolve(
            chosen,
            field(DEFAULT_NEW).unwrap_or(""),
            "the default location",
        )?;
    }
    for (k, v) in pairs {
        if let Some(org) = k.strip_prefix("map.") {
            let what = format!("org {org}");
            match resolve(v.trim(), typed.get(org).copied().unwrap_or(""), &what)? {
                Some(name) => {
                    mapping.map.insert(org.to_owned(), name);
                }
                None => {
                    mapping.map.remove(org);
                }
            }
        }
    }
    let new_names: BTreeSet<String> = mapping
        .map
        .values()
        .chain(mapping.default.iter())
        .filter(|n| !known.contains(*n))
        .cloned()
        .collect();
    Ok(Proposal {
        mapping,
        new_names: new_names.into_iter().collect(),
    })
}

/// One SIS org's row: its location now and the choices.
pub struct OrgRow {
    pub name: String,
    pub sourced_id: String,
    pub is_school: bool,
    pub people: u64,
    pub location: String,
}

#[derive(Template)]
#[template(path = "locations.html")]
struct LocationsPage {
    nav: Nav,
    sources: Vec<(String, bool)>,
    current: String,
    default_location: String,
    orgs: Vec<OrgRow>,
    /// Every location that may be chosen, by name.
    known: Vec<String>,
    new_choice: &'static str,
}

/// `GET /locations`.
pub async fn page(state: &Shared, who: &Principal, q: SettingsQuery, flash: &Flash) -> Page {
    let wanted = q.source.clone();
    let (config, current, orgs, existing) = blocking(state, move |store| {
        let config = store.load_config()?;
        let current = wanted
            .or_else(|| config.sources.first().map(|s| s.name.clone()))
            .unwrap_or_default();
        let orgs = if config.source(&current).is_some() {
            store.sis_orgs(&current)?
        } else {
            Vec::new()
        };
        Ok((config, current, orgs, store.location_names()?))
    })
    .await
    .map_err(fail)?;
    let src = config.source(&current);
    let known = known_names(&config, existing);
    Ok(render(&LocationsPage {
        nav: Nav::new(who, "Location Mappings", "locations", flash),
        sources: config
            .sources
            .iter()
            .map(|s| (s.name.clone(), s.name == current))
            .collect(),
        current: current.clone(),
        default_location: src
            .and_then(|s| s.locations.default.clone())
            .unwrap_or_default(),
        orgs: orgs
            .into_iter()
            .map(|o| OrgRow {
                location: src
                    .and_then(|s| s.locations.map.get(&o.sourced_id).cloned())
                    .unwrap_or_default(),
                name: o.name,
                sourced_id: o.sourced_id,
                is_school: o.is_school,
                people: o.people,
            })
            .collect(),
        known: known.into_iter().collect(),
        new_choice: NEW_CHOICE,
    }))
}

/// A mapping that changes: (what, before, after), in words.
pub struct Change {
    pub what: String,
    pub before: String,
    pub after: String,
}

#[derive(Template)]
#[template(path = "locations_preview.html")]
struct PreviewPage {
    nav: Nav,
    source: String,
    changes: Vec<Change>,
    /// "412 accounts move from Cedar Campus to District Office", the largest first.
    moves: Vec<String>,
    more_moves: String,
    summary: String,
    /// Why the next sync will be held, in words (empty: it will not be, for this).
    hold: String,
    note: String,
    new_names: Vec<String>,
    /// The resolved mapping as hidden fields: (name, value).
    fields: Vec<(String, String)>,
}

fn place(name: &Option<String>) -> String {
    name.clone().unwrap_or_else(|| "no location".to_owned())
}

fn accounts(n: u64) -> String {
    if n == 1 {
        "1 account".to_owned()
    } else {
        format!("{n} accounts")
    }
}

/// The preview's words for a relocation.
fn words(r: &Relocation, source: &str) -> (Vec<String>, String, String, String, String) {
    let moves: Vec<String> = r
        .moves
        .iter()
        .take(MOVES_SHOWN)
        .map(|m| {
            format!(
                "{} {} from {} to {}",
                accounts(m.accounts),
                if m.accounts == 1 { "moves" } else { "move" },
                place(&m.from),
                place(&m.to)
            )
        })
        .collect();
    let rest: u64 = r.moves.iter().skip(MOVES_SHOWN).map(|m| m.accounts).sum();
    let more = if rest > 0 {
        format!(
            "and {} in {} other move(s)",
            accounts(rest),
            r.moves.len() - MOVES_SHOWN
        )
    } else {
        String::new()
    };
    let summary = format!(
        "The next sync of {source} would change the location of {} of its {} active linked account{} ({:.1} %).",
        r.moving,
        r.population,
        if r.population == 1 { "" } else { "s" },
        r.percent()
    );
    let hold = if r.held {
        format!(
            "The next sync will be held for approval because it changes more than {} % of the {} active linked accounts ({} of them, {:.1} %): nothing of it is applied until someone approves it in Sync History.",
            r.limit_percent,
            r.population,
            r.moving,
            r.percent()
        )
    } else {
        String::new()
    };
    let note = match r.unmanaged {
        Some(Unmanaged::FieldDisabled) => "The Location field is switched off for every source (Settings → Field Mapping): the sync writes no one's location, whatever the mapping says.".to_owned(),
        Some(Unmanaged::NoMapping) => "With no school mapped and no default, the sync stops managing locations: accounts keep the location they have.".to_owned(),
        None if !r.established && r.moving > 0 => format!(
            "The safeguards judge shares only once the source has {} or more active linked accounts; it has {}, so this does not hold the next sync.",
            r.min_population, r.population
        ),
        None => String::new(),
    };
    (moves, more, summary, hold, note)
}

/// The hidden fields that carry a resolved mapping to the save.
fn hidden_fields(
    m: &LocationMapping,
    before: &LocationMapping,
    orgs: &[String],
) -> Vec<(String, String)> {
    let mut fields = vec![(DEFAULT.to_owned(), m.default.clone().unwrap_or_default())];
    let every: BTreeSet<&String> = orgs
        .iter()
        .chain(m.map.keys())
        .chain(before.map.keys())
        .collect();
    for org in every {
        fields.push((
            format!("map.{org}"),
            m.map.get(org).cloned().unwrap_or_default(),
        ));
    }
    fields
}

/// `POST /locations/{source}/preview`: what the change would do, with Confirm / Cancel.
pub async fn preview(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(source): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Page {
    let name = source.clone();
    let loaded = blocking(&state, move |store| {
        let config = store.load_config()?;
        if config.source(&name).is_none() {
            return Err(ApiError::not_found(format!(
                "no source named '{name}' (Settings lists the sources)"
            )));
        }
        Ok((
            store.location_names()?,
            store.sis_orgs(&name)?,
            store.accounts_by_location(&name)?,
            config,
        ))
    })
    .await;
    let (existing, orgs, groups, config) = match loaded {
        Ok(l) => l,
        Err(e) => return Err(back(&format!("/locations?source={}", enc(&source)), Err(e))),
    };
    let Some(s) = config.source(&source) else {
        return Err(fail(ApiError::not_found(format!(
            "no source named '{source}'"
        ))));
    };
    let known = known_names(&config, existing);
    let p = match proposal(&pairs, &s.locations, &known) {
        Ok(p) => p,
        Err(e) => return Err(back(&format!("/locations?source={}", enc(&source)), Err(e))),
    };
    let r = relocation::preview(&config, s, &p.mapping, &groups);
    let names: BTreeMap<&str, &str> = orgs
        .iter()
        .map(|o| (o.sourced_id.as_str(), o.name.as_str()))
        .collect();
    let mut changes = Vec::new();
    if s.locations.default != p.mapping.default {
        changes.push(Change {
            what: "Default location".to_owned(),
            before: place(&s.locations.default),
            after: place(&p.mapping.default),
        });
    }
    let orgs_seen: BTreeSet<&String> = s.locations.map.keys().chain(p.mapping.map.keys()).collect();
    for org in orgs_seen {
        let (before, after) = (s.locations.map.get(org), p.mapping.map.get(org));
        if before != after {
            changes.push(Change {
                what: match names.get(org.as_str()) {
                    Some(n) => format!("{n} ({org})"),
                    None => org.clone(),
                },
                before: before.cloned().unwrap_or_else(|| "not mapped".to_owned()),
                after: after.cloned().unwrap_or_else(|| "not mapped".to_owned()),
            });
        }
    }
    let (moves, more_moves, summary, hold, note) = words(&r, &source);
    let org_ids: Vec<String> = orgs.iter().map(|o| o.sourced_id.clone()).collect();
    Ok(render(&PreviewPage {
        nav: Nav::new(
            &who,
            format!("Location Mappings of {source}: preview"),
            "locations",
            &Flash::default(),
        ),
        fields: hidden_fields(&p.mapping, &s.locations, &org_ids),
        source,
        changes,
        moves,
        more_moves,
        summary,
        hold,
        note,
        new_names: p.new_names,
    }))
}

/// `POST /locations/{source}`: saves a previewed mapping. A name that is no location yet
/// needs the preview's confirmation that the next sync will create it.
pub async fn save(
    state: &Shared,
    who: &Principal,
    source: String,
    pairs: Vec<(String, String)>,
) -> Response {
    let result = async {
        let name = source.clone();
        let (config, existing, groups) = blocking(state, move |store| {
            Ok((
                store.load_config()?,
                store.location_names()?,
                store.accounts_by_location(&name)?,
            ))
        })
        .await?;
        let known = known_names(&config, existing);
        let s = config
            .source(&source)
            .ok_or_else(|| ApiError::not_found(format!("no source named '{source}'")))?;
        let p = proposal(&pairs, &s.locations, &known)?;
        let confirmed = pairs
            .iter()
            .any(|(k, v)| k == CONFIRM_NEW && !v.is_empty());
        if !p.new_names.is_empty() && !confirmed {
            return Err(ApiError::bad_request(format!(
                "{} {} no location yet: preview the change and tick the box that confirms the next sync will create {}",
                p.new_names
                    .iter()
                    .map(|n| format!("'{n}'"))
                    .collect::<Vec<_>>()
                    .join(", "),
                if p.new_names.len() == 1 { "is" } else { "are" },
                if p.new_names.len() == 1 { "it" } else { "them" },
            )));
        }
        let r = relocation::preview(&config, s, &p.mapping, &groups);
        let mut new_config = config.clone();
        if let Some(target) = new_config.sources.iter_mut().find(|t| t.name == source) {
            target.locations = p.mapping;
        }
        let changed = settings_edit::save(state, who, new_config).await?;
        Ok(if changed.is_empty() {
            "nothing changed".to_owned()
        } else if r.held {
            format!(
                "location mappings saved: the next sync applies them, and will be held for approval ({} of {} active linked accounts move)",
                r.moving, r.population
            )
        } else {
            "location mappings saved: the next sync applies them".to_owned()
        })
    }
    .await;
    back(&format!("/locations?source={}", enc(&source)), result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_typed_name_wins_and_matches_a_known_one_whatever_its_case() {
        let known: BTreeSet<String> = ["Cedar Campus".to_owned()].into();
        let current = LocationMapping::default();
        let p = proposal(
            &pairs(&[
                ("default", ""),
                ("default_new", "cedar campus"),
                ("map.org-1", "Cedar Campus"),
                ("map.org-2", NEW_CHOICE),
                ("new.org-2", " Oak Campus "),
                ("map.org-3", ""),
            ]),
            &current,
            &known,
        )
        .unwrap();
        assert_eq!(p.mapping.default.as_deref(), Some("Cedar Campus"));
        assert_eq!(p.mapping.map["org-1"], "Cedar Campus");
        assert_eq!(p.mapping.map["org-2"], "Oak Campus");
        assert!(!p.mapping.map.contains_key("org-3"));
        assert_eq!(p.new_names, ["Oak Campus"]);
    }

    #[test]
    fn new_without_a_name_is_refused_with_what_to_do() {
        let e = proposal(
            &pairs(&[("map.org-2", NEW_CHOICE), ("new.org-2", " ")]),
            &LocationMapping::default(),
            &BTreeSet::new(),
        )
        .err()
        .unwrap();
        assert!(e.message.contains("org org-2"), "{}", e.message);
        assert!(
            e.message.contains("type the new location's name"),
            "{}",
            e.message
        );
    }

    #[test]
    fn the_preview_says_how_many_move_and_why_it_is_held() {
        let r = Relocation {
            moves: vec![relocation::Move {
                from: Some("Cedar Campus".into()),
                to: Some("District Office".into()),
                accounts: 412,
            }],
            moving: 412,
            population: 700,
            limit_percent: 50.0,
            min_population: 50,
            established: true,
            held: true,
            unmanaged: None,
        };
        let (moves, more, summary, hold, note) = words(&r, "campus");
        assert_eq!(
            moves,
            ["412 accounts move from Cedar Campus to District Office"]
        );
        assert!(more.is_empty() && note.is_empty());
        assert!(
            summary.contains("location of 412 of its 700 active linked accounts (58.9 %)"),
            "{summary}"
        );
        assert!(
            hold.starts_with(
                "The next sync will be held for approval because it changes more than 50 %"
            ),
            "{hold}"
        );
    }
}
