//! `rostersync locations list`: the SIS's schools, where each maps, and how many people.

use clap::Subcommand;
use serde::Serialize;

use crate::env::{StateArgs, store_failure};
use crate::{Failure, output};

#[derive(Subcommand)]
pub enum LocationsCommand {
    /// SIS orgs of a source with their directory location and head count.
    List {
        #[arg(long)]
        source: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Serialize)]
struct Row {
    source: String,
    sourced_id: String,
    name: String,
    school: bool,
    /// The directory location people of this org get.
    location: Option<String>,
    /// Whether that comes from the mapping (else the default, or none).
    mapped: bool,
    people: u64,
}

pub fn run(state_args: &StateArgs, cmd: LocationsCommand) -> Result<u8, Failure> {
    let state = state_args.open()?;
    let LocationsCommand::List { source, json } = cmd;
    let config = state.store.load_config().map_err(store_failure)?;
    let mut rows = Vec::new();
    for s in config
        .sources
        .iter()
        .filter(|s| source.as_deref().is_none_or(|n| n == s.name))
    {
        for org in state.store.sis_orgs(&s.name).map_err(store_failure)? {
            let mapped = s.locations.map.get(&org.sourced_id).cloned();
            rows.push(Row {
                source: s.name.clone(),
                mapped: mapped.is_some(),
                location: mapped.or_else(|| s.locations.default.clone()),
                sourced_id: org.sourced_id,
                name: org.name,
                school: org.is_school,
                people: org.people,
            });
        }
    }
    if let Some(name) = &source
        && config.source(name).is_none()
    {
        return Err(Failure::config(format!("no source named '{name}'")));
    }
    if json {
        output::json(&rows);
    } else {
        output::line(&format!(
            "{:<10} {:<22} {:<34} {:<7} {:<28} {:>7}",
            "source", "org", "name", "school", "location", "people"
        ));
        for r in &rows {
            output::line(&format!(
                "{:<10} {:<22} {:<34} {:<7} {:<28} {:>7}",
                r.source,
                r.sourced_id,
                r.name,
                if r.school { "yes" } else { "no" },
                match (&r.location, r.mapped) {
                    (Some(l), true) => l.clone(),
                    (Some(l), false) => format!("{l} (default)"),
                    (None, _) => "— (unmapped, no default)".to_owned(),
                },
                r.people
            ));
        }
        if rows.is_empty() {
            output::line("no SIS orgs yet: run a full sync first");
        }
    }
    Ok(0)
}
