//! The guard between planning and applying: a plan that would change too much at once is
//! held for a person to approve, because the likeliest cause of a mass change is a bad
//! SIS day (an outage, a half-finished export, a school dropped from the feed), not a
//! real one.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::plan::{Outcome, Plan, PlanItem, SyncKind};
use crate::settings::{Safeguards, SourceConfig};
use crate::sis::SisPerson;
use crate::view::DirectoryView;

/// The schools and roles a read holds anyone of: a full pull without a school or a role
/// its links count is an outage until proved otherwise. An account source's read has its
/// org units as schools, and no roles.
#[derive(Debug, Default)]
pub struct Pulled<'a> {
    schools: HashSet<&'a str>,
    roles: HashSet<&'a str>,
}

impl<'a> Pulled<'a> {
    /// The schools and roles of a SIS pull's people.
    pub fn of(people: &'a [SisPerson]) -> Pulled<'a> {
        let mut pulled = Pulled::default();
        for p in people {
            pulled.schools.extend(p.primary_org());
            pulled.roles.extend(p.role().map(|r| r.as_str()));
        }
        pulled
    }

    /// The schools of a read whose people have no role (an account source's).
    pub fn of_schools(schools: impl IntoIterator<Item = &'a str>) -> Pulled<'a> {
        Pulled {
            schools: schools.into_iter().collect(),
            roles: HashSet::new(),
        }
    }
}

/// Which safeguard a plan tripped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TripKind {
    Deactivations,
    SchoolLoss,
    SchoolVanished,
    RoleVanished,
    Creations,
    Updates,
}

impl TripKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TripKind::Deactivations => "deactivations",
            TripKind::SchoolLoss => "school_loss",
            TripKind::SchoolVanished => "school_vanished",
            TripKind::RoleVanished => "role_vanished",
            TripKind::Creations => "creations",
            TripKind::Updates => "updates",
        }
    }
}

/// A tripped safeguard, in words an admin can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trip {
    pub kind: TripKind,
    pub detail: String,
}

/// The safeguard of a SCIM connection, whose writes arrive one at a time: the
/// deactivations it made in the last hour (`recent`) and the `more` this write would make,
/// against the deactivation limits of its `[source.safeguards]` (shares of `active`, its
/// active linked accounts, once it has `min_population`). `Some` holds the write.
pub fn scim_burst(recent: u64, more: u64, active: u64, g: &Safeguards) -> Option<Trip> {
    let total = recent + more;
    trips_deactivations(total, active, g).then(|| Trip {
            kind: TripKind::Deactivations,
            detail: format!(
                "{total} deactivations pushed within an hour ({recent} applied, {more} now), {:.1}% of {active} active linked accounts (limits: {}% or {})",
                pct(total, active),
                g.max_deactivations_percent,
                g.max_deactivations
            ),
        })
}

/// The safeguards a push to a SCIM target trips: its `deactivations`, `creations` and
/// `updates` against the limits of the target's `[target.safeguards]`, shares taken of
/// `active_held` (the users the target holds active) once it holds `min_population`.
/// A target's first push (nothing held yet) is judged by counts only.
pub fn guard_push(
    deactivations: u64,
    creations: u64,
    updates: u64,
    active_held: u64,
    g: &Safeguards,
) -> Vec<Trip> {
    let mut trips = Vec::new();
    let established = active_held >= g.min_population;
    if trips_deactivations(deactivations, active_held, g) {
        trips.push(Trip {
            kind: TripKind::Deactivations,
            detail: format!(
                "{deactivations} users would be deactivated on the target, {:.1}% of the {active_held} it holds active (limits: {}% or {})",
                pct(deactivations, active_held),
                g.max_deactivations_percent,
                g.max_deactivations
            ),
        });
    }
    if established && over(creations, active_held, g.max_creations_percent) {
        trips.push(Trip {
            kind: TripKind::Creations,
            detail: format!(
                "{creations} users would be created on the target, {:.1}% of the {active_held} it holds active (limit: {}%)",
                pct(creations, active_held),
                g.max_creations_percent
            ),
        });
    }
    if trips_updates(updates, active_held, g) {
        trips.push(Trip {
            kind: TripKind::Updates,
            detail: format!(
                "{updates} users would be changed on the target, {:.1}% of the {active_held} it holds active (limit: {}%)",
                pct(updates, active_held),
                g.max_updates_percent
            ),
        });
    }
    trips
}

fn over(part: u64, whole: u64, percent: f64) -> bool {
    whole > 0 && (part as f64) * 100.0 > percent * whole as f64
}

/// Whether `updated` accounts changed at once trips the mass-update safeguard, out of
/// `active_linked` (the source's active linked accounts): only once the source is
/// established, and only above the share the safeguards allow. [`guard`] and the location
/// mappings' preview ([`crate::relocation`]) both ask this, so they cannot disagree.
pub fn trips_updates(updated: u64, active_linked: u64, g: &Safeguards) -> bool {
    active_linked >= g.min_population && over(updated, active_linked, g.max_updates_percent)
}

/// Whether `deactivated` accounts at once trips the mass-deactivation safeguard, out of
/// `active` (the accounts the limits are shares of): above the count the safeguards allow,
/// or, once `active` is established, above their share. A sync, a push and a SCIM
/// connection's burst all ask this.
fn trips_deactivations(deactivated: u64, active: u64, g: &Safeguards) -> bool {
    deactivated > g.max_deactivations
        || (active >= g.min_population && over(deactivated, active, g.max_deactivations_percent))
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// The schools `plan` deactivates active people of, as each person's link remembers
/// their school, and how many it deactivates at each: the only schools whose loss limit
/// the plan can trip (a view scoped to the plan's people counts just these; see
/// [`crate::view::LinkedPopulation`]).
pub fn losing_schools<'a>(plan: &Plan, dir: &'a DirectoryView) -> HashMap<&'a str, u64> {
    let mut losses: HashMap<&str, u64> = HashMap::new();
    for item in plan
        .items
        .iter()
        .filter(|i| i.outcome == Outcome::Deactivated)
    {
        let org = dir
            .link(&item.sourced_id)
            .filter(|l| dir.link_account(l).is_some_and(|a| a.active))
            .and_then(|l| dir.link_org(l));
        if let Some(org) = org {
            *losses.entry(org).or_default() += 1;
        }
    }
    losses
}

/// Whether the safeguards count the item as an update: it changes an existing account's
/// fields (a rekey's field changes are the same people re-keyed, not a mass update).
pub fn counts_as_update(item: &PlanItem) -> bool {
    !item.changes.is_empty() && item.replaces.is_none() && item.user_id.is_some()
}

/// How many of the plan's items the safeguards count as updates ([`counts_as_update`]).
pub fn updates(plan: &Plan) -> u64 {
    plan.items.iter().filter(|i| counts_as_update(i)).count() as u64
}

/// The safeguards `plan` trips on `view`, first counting with `school_counts` (the
/// store's, or the reference's) the schools the plan takes people from that the view has
/// not counted: a view scoped to a run's people counts only the total. The engine's way
/// to guard; [`guard`] alone is right for a view of every link, which counts every school
/// with an active person (and so every school a plan can take one from).
///
/// Of the plan's items it reads only the deactivations, and `updates` is how many of its
/// items update an account ([`updates`]): a plan too large to hold is judged by a first
/// pass that kept its deactivations and counted its updates.
pub fn guard_counting<E>(
    plan: &Plan,
    updates: u64,
    view: &mut DirectoryView,
    source: &SourceConfig,
    pulled: &Pulled<'_>,
    school_counts: impl FnOnce(&[&str]) -> Result<BTreeMap<String, u64>, E>,
) -> Result<Vec<Trip>, E> {
    let counted = &view.population().by_school;
    let schools: Vec<&str> = losing_schools(plan, view)
        .into_keys()
        .filter(|s| !counted.contains_key(*s))
        .collect();
    if !schools.is_empty() {
        let counts = school_counts(&schools)?;
        view.add_school_counts(counts);
    }
    Ok(guard_with(plan, updates, view, source, pulled))
}

/// The safeguards a plan trips (none: apply it).
pub fn guard(
    plan: &Plan,
    dir: &DirectoryView,
    source: &SourceConfig,
    pulled: &Pulled<'_>,
) -> Vec<Trip> {
    guard_with(plan, updates(plan), dir, source, pulled)
}

/// [`guard`], told how many of the plan's items update an account.
fn guard_with(
    plan: &Plan,
    updated: u64,
    dir: &DirectoryView,
    source: &SourceConfig,
    pulled: &Pulled<'_>,
) -> Vec<Trip> {
    let g = &source.safeguards;
    let mut trips = Vec::new();

    // The population: this source's linked accounts that are active now.
    let population = dir.population();
    let active_linked = population.active;
    let established = active_linked >= g.min_population;

    let deactivations = plan.counts.deactivated;
    if trips_deactivations(deactivations, active_linked, g) {
        trips.push(Trip {
            kind: TripKind::Deactivations,
            detail: format!(
                "{deactivations} deactivations, {:.1}% of {active_linked} active linked accounts (limits: {}% or {})",
                pct(deactivations, active_linked),
                g.max_deactivations_percent,
                g.max_deactivations
            ),
        });
    }

    let losses = losing_schools(plan, dir);
    let schools = &population.by_school;
    for (school, size) in schools {
        let lost = losses.get(school.as_str()).copied().unwrap_or(0);
        if *size >= g.min_school_size && over(lost, *size, g.max_school_loss_percent) {
            trips.push(Trip {
                kind: TripKind::SchoolLoss,
                detail: format!(
                    "school {school} would lose {lost} of its {size} people ({:.0}%, limit {}%)",
                    pct(lost, *size),
                    g.max_school_loss_percent
                ),
            });
        }
    }

    // A school or a role missing entirely from a full pull is an outage until proved
    // otherwise.
    if plan.kind == SyncKind::Full {
        for (school, size) in schools {
            if *size >= g.min_school_size && !pulled.schools.contains(school.as_str()) {
                trips.push(Trip {
                    kind: TripKind::SchoolVanished,
                    detail: format!(
                        "school {school} ({size} linked people) is missing from the pull entirely"
                    ),
                });
            }
        }
        for (role, size) in &population.by_role {
            if *size >= g.min_school_size && !pulled.roles.contains(role.as_str()) {
                trips.push(Trip {
                    kind: TripKind::RoleVanished,
                    detail: format!("no {role} at all in the pull ({size} linked)"),
                });
            }
        }
    }

    if established {
        let created = plan.counts.created;
        if over(created, active_linked, g.max_creations_percent) {
            trips.push(Trip {
                kind: TripKind::Creations,
                detail: format!(
                    "{created} new accounts, {:.0}% of the {active_linked} linked (limit {}%)",
                    pct(created, active_linked),
                    g.max_creations_percent
                ),
            });
        }
        if trips_updates(updated, active_linked, g) {
            trips.push(Trip {
                kind: TripKind::Updates,
                detail: format!(
                    "{updated} accounts updated, {:.0}% of the {active_linked} linked (limit {}%)",
                    pct(updated, active_linked),
                    g.max_updates_percent
                ),
            });
        }
    }
    trips
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_pushed_deactivations_is_held_past_the_limits() {
        let g = Safeguards::default();
        // A small connection: only the count limit (500) applies.
        assert!(scim_burst(0, 1, 10, &g).is_none());
        assert!(scim_burst(499, 1, 10, &g).is_none());
        let trip = scim_burst(500, 1, 10, &g).expect("501 > 500");
        assert_eq!(trip.kind, TripKind::Deactivations);
        assert!(trip.detail.contains("501 deactivations"), "{}", trip.detail);
        // An established one: 5 % of 1 000 active.
        assert!(scim_burst(49, 1, 1000, &g).is_none());
        assert!(scim_burst(50, 1, 1000, &g).is_some());
    }
}
