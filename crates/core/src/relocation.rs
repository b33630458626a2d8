//! What a change of a source's location mappings would do at the next sync, before it is
//! saved: how many accounts move from which location to which, and whether the sync
//! would be held for approval by the mass-update safeguard.
//!
//! The store counts the source's active linked accounts by (primary school as last
//! pulled, current location, who last wrote the location); [`preview`] applies the
//! planner's location rules to those counts. It is an estimate in one respect only: the
//! planner falls back to a person's other orgs when the primary one is not mapped, and
//! the store keeps only the primary one.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::directory::{Field, Writer};
use crate::guard::trips_updates;
use crate::settings::{Config, LocationMapping, Priority, SourceConfig};

/// Active accounts linked to the source, alike in what decides their location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountsAt {
    /// The person's primary org (sourcedId) as last pulled.
    pub org: Option<String>,
    /// The account's location now.
    pub location: Option<String>,
    /// Who last wrote the location (`source:NAME`, `admin:NAME`, `sso:PROVIDER`), when
    /// anyone did.
    pub writer: Option<String>,
    pub accounts: u64,
}

/// Accounts that move from one location to another (`None`: no location).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Move {
    pub from: Option<String>,
    pub to: Option<String>,
    pub accounts: u64,
}

/// Why nothing moves whatever the mapping says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unmanaged {
    /// The Location field is switched off for every source (Field Mapping).
    FieldDisabled,
    /// The new mapping is empty: the sync stops writing locations, accounts keep theirs.
    NoMapping,
}

/// What the next sync would do to locations under a new mapping.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Relocation {
    /// Largest first, then by names.
    pub moves: Vec<Move>,
    /// Accounts whose location changes (the sum of `moves`).
    pub moving: u64,
    /// The source's active linked accounts: the safeguards' yardstick.
    pub population: u64,
    /// The share of updated accounts above which a sync is held.
    pub limit_percent: f64,
    /// The population from which shares are judged (the safeguards' `min_population`).
    pub min_population: u64,
    /// The source's population is large enough for shares to be judged.
    pub established: bool,
    /// The moves alone trip the mass-update safeguard: the next sync will be held.
    pub held: bool,
    pub unmanaged: Option<Unmanaged>,
}

impl Relocation {
    /// The moves as a share of the population, in percent.
    pub fn percent(&self) -> f64 {
        if self.population == 0 {
            0.0
        } else {
            self.moving as f64 * 100.0 / self.population as f64
        }
    }
}

fn same(a: Option<&str>, b: Option<&str>) -> bool {
    a.filter(|s| !s.is_empty()) == b.filter(|s| !s.is_empty())
}

fn location_of<'a>(m: &'a LocationMapping, org: Option<&str>) -> Option<&'a str> {
    org.and_then(|o| m.map.get(o))
        .or(m.default.as_ref())
        .map(String::as_str)
}

fn manages(m: &LocationMapping) -> bool {
    m.default.is_some() || !m.map.is_empty()
}

/// What the next sync of `source` would do to locations if its mapping became `new`:
/// only the moves this change causes (an account whose school maps to the same place
/// before and after is not counted, whatever it has now), under the Location field's
/// switch and this source's priority for it, judged by the same rule as the guard.
pub fn preview(
    config: &Config,
    source: &SourceConfig,
    new: &LocationMapping,
    groups: &[AccountsAt],
) -> Relocation {
    let g = &source.safeguards;
    let population: u64 = groups.iter().map(|a| a.accounts).sum();
    let unmanaged = if !config.field_enabled(Field::Location) {
        Some(Unmanaged::FieldDisabled)
    } else if !manages(new) {
        Some(Unmanaged::NoMapping)
    } else {
        None
    };
    let mut moves: BTreeMap<(Option<String>, Option<String>), u64> = BTreeMap::new();
    if unmanaged.is_none() {
        let old = &source.locations;
        let me = Writer::Source(source.name.clone()).encode();
        for a in groups {
            let org = a.org.as_deref();
            let to = location_of(new, org);
            if manages(old) && same(location_of(old, org), to) {
                continue;
            }
            let now = a.location.as_deref();
            if same(now, to) {
                continue;
            }
            let may_write = match source.priority(Field::Location) {
                Priority::Always => true,
                Priority::IfNotSet => {
                    now.is_none_or(str::is_empty) || a.writer.as_deref() == Some(me.as_str())
                }
            };
            if may_write {
                let key = (
                    now.filter(|s| !s.is_empty()).map(str::to_owned),
                    to.map(str::to_owned),
                );
                *moves.entry(key).or_default() += a.accounts;
            }
        }
    }
    let mut moves: Vec<Move> = moves
        .into_iter()
        .map(|((from, to), accounts)| Move { from, to, accounts })
        .collect();
    moves.sort_by_key(|m| std::cmp::Reverse(m.accounts));
    let moving = moves.iter().map(|m| m.accounts).sum();
    Relocation {
        moves,
        moving,
        population,
        limit_percent: g.max_updates_percent,
        min_population: g.min_population,
        established: population >= g.min_population,
        held: trips_updates(moving, population, g),
        unmanaged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::FieldSwitch;

    fn source(map: &[(&str, &str)], default: Option<&str>) -> SourceConfig {
        let mut s = Config::from_toml(
            "[[source]]\nname = \"campus\"\nkind = \"oneroster-csv\"\npath = \"district.zip\"\n",
        )
        .unwrap()
        .sources
        .remove(0);
        s.locations.map = map
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        s.locations.default = default.map(str::to_owned);
        s
    }

    fn at(org: &str, location: Option<&str>, writer: Option<&str>, n: u64) -> AccountsAt {
        AccountsAt {
            org: Some(org.to_owned()),
            location: location.map(str::to_owned),
            writer: writer.map(str::to_owned),
            accounts: n,
        }
    }

    fn mapping(map: &[(&str, &str)], default: Option<&str>) -> LocationMapping {
        source(map, default).locations
    }

    #[test]
    fn moves_are_counted_from_where_accounts_are_to_where_the_new_mapping_puts_them() {
        let config = Config::default();
        let old = source(&[("org-1", "Cedar Campus")], Some("District Office"));
        let groups = [
            at("org-1", Some("Cedar Campus"), Some("source:campus"), 412),
            at("org-2", Some("District Office"), Some("source:campus"), 288),
        ];
        let new = mapping(&[("org-1", "District Office")], Some("District Office"));
        let r = preview(&config, &old, &new, &groups);
        assert_eq!(
            r.moves,
            vec![Move {
                from: Some("Cedar Campus".into()),
                to: Some("District Office".into()),
                accounts: 412
            }]
        );
        assert_eq!((r.moving, r.population), (412, 700));
        assert!(r.established);
        assert!(r.held, "412 of 700 is over 50 %");
        assert!((r.percent() - 58.857).abs() < 0.01);

        // A small change is not held.
        let groups = [
            at("org-1", Some("Cedar Campus"), None, 40),
            at("org-2", Some("District Office"), None, 660),
        ];
        let r = preview(&config, &old, &new, &groups);
        assert_eq!(r.moving, 40);
        assert!(!r.held);
    }

    #[test]
    fn an_unchanged_school_is_not_counted_and_a_first_mapping_counts_everyone() {
        let config = Config::default();
        // org-2 keeps its place (the default) though its accounts sit elsewhere today.
        let old = source(&[("org-1", "Cedar Campus")], Some("District Office"));
        let groups = [
            at("org-1", Some("Cedar Campus"), None, 10),
            at("org-2", Some("Somewhere Else"), None, 5),
        ];
        let new = mapping(&[("org-1", "Elm Campus")], Some("District Office"));
        let r = preview(&config, &old, &new, &groups);
        assert_eq!(r.moving, 10);
        // No mapping before: the sync did not manage locations, so all that differ move.
        let old = source(&[], None);
        let r = preview(&config, &old, &new, &groups);
        assert_eq!(r.moving, 15);
        assert!(
            !r.established,
            "15 accounts are below the 50 the shares need"
        );
        assert!(!r.held);
    }

    #[test]
    fn the_field_switch_the_priority_and_an_empty_mapping_are_honoured() {
        let old = source(&[("org-1", "Cedar Campus")], None);
        let groups = [
            at("org-1", Some("Cedar Campus"), Some("source:campus"), 3),
            at("org-1", Some("Cedar Campus"), Some("admin:alice"), 2),
            at("org-1", None, None, 1),
        ];
        let new = mapping(&[("org-1", "Elm Campus")], None);
        let mut config = Config::default();
        assert_eq!(preview(&config, &old, &new, &groups).moving, 6);

        let mut only_if_unset = old.clone();
        only_if_unset
            .field_priority
            .insert(Field::Location, Priority::IfNotSet);
        let r = preview(&config, &only_if_unset, &new, &groups);
        assert_eq!(r.moving, 4, "the admin's 2 keep their location");

        let r = preview(&config, &old, &LocationMapping::default(), &groups);
        assert_eq!((r.moving, r.unmanaged), (0, Some(Unmanaged::NoMapping)));

        config
            .fields
            .insert(Field::Location, FieldSwitch { enabled: false });
        let r = preview(&config, &old, &new, &groups);
        assert_eq!((r.moving, r.unmanaged), (0, Some(Unmanaged::FieldDisabled)));
    }

    #[test]
    fn unmapping_a_school_without_a_default_clears_the_location() {
        let config = Config::default();
        let old = source(&[("org-1", "Cedar Campus"), ("org-2", "Elm Campus")], None);
        let groups = [at("org-1", Some("Cedar Campus"), None, 7)];
        let new = mapping(&[("org-2", "Elm Campus")], None);
        let r = preview(&config, &old, &new, &groups);
        assert_eq!(
            r.moves,
            vec![Move {
                from: Some("Cedar Campus".into()),
                to: None,
                accounts: 7
            }]
        );
    }
}
