//! What changed between two days of one district: counts by kind for `sim diff`, and the
//! sourcedIds behind them so tests elsewhere can build an exact oracle ("a sync of day D1
//! after day D0 must create these users, deactivate those …").
//!
//! Records are compared index by index (indexes are stable across days). A record is
//! *changed* when it is alive on both days and its `dateLastModified` differs, which is
//! exactly what a delta pull filtered on `dateLastModified>'{end of day D0}'` returns.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::error::SimError;
use crate::model::{District, DistrictConfig, Role};
use crate::records::{Collection, record_count, record_state};

/// Added / removed / changed records of one kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    pub added: u64,
    pub removed: u64,
    pub changed: u64,
}

/// `sim diff --json`: counts by kind between two days.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffCounts {
    pub from_day: u32,
    pub to_day: u32,
    pub orgs: Changes,
    pub academic_sessions: Changes,
    pub courses: Changes,
    pub classes: Changes,
    pub enrollments: Changes,
    pub users: Changes,
    /// Users by OneRoster 1.2 role (the role on `to_day`; on `from_day` for removals).
    pub users_by_role: BTreeMap<String, Changes>,
    /// Users on both days whose email differs (including gaining or losing one).
    pub email_changes: u64,
    /// Users on both days whose role differs.
    pub role_changes: u64,
    /// Users on both days whose primary org (school) differs.
    pub school_changes: u64,
    /// Students on both days whose grade differs.
    pub grade_changes: u64,
    /// Users on both days whose given, middle or family name differs.
    pub name_changes: u64,
    pub username_changes: u64,
    /// Users on both days whose `agents` (guardian ↔ student links) differ.
    pub guardian_link_changes: u64,
    /// Student–guardian pairs that exist on `to_day` but not `from_day`, and the reverse.
    pub guardian_links_added: u64,
    pub guardian_links_removed: u64,
}

/// The sourcedIds behind [`Changes`], each list sorted by index.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangedIds {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

impl ChangedIds {
    /// Added and changed: what a delta pull of a provider that lets removals vanish returns.
    pub fn added_or_changed(&self) -> BTreeSet<String> {
        self.added.iter().chain(&self.changed).cloned().collect()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diff {
    pub counts: DiffCounts,
    pub ids: BTreeMap<Collection, ChangedIds>,
}

impl Diff {
    pub fn ids(&self, collection: Collection) -> &ChangedIds {
        static EMPTY: ChangedIds = ChangedIds {
            added: Vec::new(),
            removed: Vec::new(),
            changed: Vec::new(),
        };
        self.ids.get(&collection).unwrap_or(&EMPTY)
    }
}

fn same_district(a: &DistrictConfig, b: &DistrictConfig) -> bool {
    a.users == b.users
        && a.seed == b.seed
        && a.staff_domain == b.staff_domain
        && a.student_domain == b.student_domain
        && a.district_name == b.district_name
}

/// Compares two days of one district (`from.day() <= to.day()`).
pub fn diff(from: &District, to: &District) -> Result<Diff, SimError> {
    if !same_district(&from.config, &to.config) {
        return Err(SimError::DiffOfDifferentDistricts);
    }
    if from.day > to.day {
        return Err(SimError::DiffBackwards {
            from: from.day,
            to: to.day,
        });
    }
    let mut result = Diff {
        counts: DiffCounts {
            from_day: from.day,
            to_day: to.day,
            ..DiffCounts::default()
        },
        ids: BTreeMap::new(),
    };
    for collection in Collection::ALL {
        let mut changes = Changes::default();
        let mut ids = ChangedIds::default();
        for index in 0..record_count(to, collection) as u32 {
            let before = record_state(from, collection, index);
            let Some((removed_now, modified_now)) = record_state(to, collection, index) else {
                continue;
            };
            let alive_before = before.is_some_and(|(removed, _)| !removed);
            let kind = match (alive_before, !removed_now) {
                (true, false) => 0,
                (false, true) => 1,
                (true, true) if before.map(|(_, m)| m) != Some(modified_now) => 2,
                _ => continue,
            };
            let id = collection.sourced_id(index);
            match kind {
                0 => {
                    changes.removed += 1;
                    ids.removed.push(id);
                }
                1 => {
                    changes.added += 1;
                    ids.added.push(id);
                }
                _ => {
                    changes.changed += 1;
                    ids.changed.push(id);
                }
            }
            if collection == Collection::Users {
                let role_day = if kind == 0 { from } else { to };
                if let Some(person) = role_day.people.get(index as usize) {
                    let entry = result
                        .counts
                        .users_by_role
                        .entry(person.role.v1p2().to_owned())
                        .or_default();
                    match kind {
                        0 => entry.removed += 1,
                        1 => entry.added += 1,
                        _ => entry.changed += 1,
                    }
                }
                user_field_changes(
                    &mut result.counts,
                    from,
                    to,
                    index,
                    alive_before,
                    !removed_now,
                );
            }
        }
        let slot = match collection {
            Collection::Orgs => &mut result.counts.orgs,
            Collection::AcademicSessions => &mut result.counts.academic_sessions,
            Collection::Courses => &mut result.counts.courses,
            Collection::Classes => &mut result.counts.classes,
            Collection::Users => &mut result.counts.users,
            Collection::Enrollments => &mut result.counts.enrollments,
        };
        *slot = changes;
        result.ids.insert(collection, ids);
    }
    Ok(result)
}

/// Field-level counts for one user touched between the two days.
fn user_field_changes(
    counts: &mut DiffCounts,
    from: &District,
    to: &District,
    index: u32,
    before: bool,
    after: bool,
) {
    let old = from.people.get(index as usize).filter(|_| before);
    let new = to.people.get(index as usize).filter(|_| after);
    // Guardian links are counted from the student side, where every change touches the record.
    let is_student = new.or(old).is_some_and(|p| p.role == Role::Student);
    if is_student {
        let old_agents: BTreeSet<u32> = old
            .map(|_| from.agents(index).into_iter().collect())
            .unwrap_or_default();
        let new_agents: BTreeSet<u32> = new
            .map(|_| to.agents(index).into_iter().collect())
            .unwrap_or_default();
        counts.guardian_links_added += new_agents.difference(&old_agents).count() as u64;
        counts.guardian_links_removed += old_agents.difference(&new_agents).count() as u64;
    }
    let (Some(old), Some(new)) = (old, new) else {
        return;
    };
    if from.email(old) != to.email(new) {
        counts.email_changes += 1;
    }
    if old.role != new.role {
        counts.role_changes += 1;
    }
    if old.school != new.school {
        counts.school_changes += 1;
    }
    if old.role == Role::Student && new.role == Role::Student && old.grade != new.grade {
        counts.grade_changes += 1;
    }
    if (old.first, old.middle, old.last) != (new.first, new.middle, new.last) {
        counts.name_changes += 1;
    }
    if from.username(old) != to.username(new) {
        counts.username_changes += 1;
    }
    if from.agents(index) != to.agents(index) {
        counts.guardian_link_changes += 1;
    }
}

/// Generates the district on `from` and `to` (reusing the first to reach the second) and
/// compares them.
pub fn diff_days(config: &DistrictConfig, from: u32, to: u32) -> Result<Diff, SimError> {
    if from > to {
        return Err(SimError::DiffBackwards { from, to });
    }
    let earlier = District::generate(&DistrictConfig {
        day: from,
        ..config.clone()
    })?;
    let mut later = earlier.clone();
    later.advance(to - from);
    diff(&earlier, &later)
}
