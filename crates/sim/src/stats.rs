//! Counts of what a district holds: the numbers a pull of the same day must reproduce.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{District, Role, SessionKind};

/// Active records per collection and per role (removed records are not counted).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub day: u32,
    pub orgs: u64,
    pub schools: u64,
    pub academic_sessions: u64,
    /// Semesters (what `/terms` serves).
    pub terms: u64,
    pub grading_periods: u64,
    pub courses: u64,
    pub classes: u64,
    pub enrollments: u64,
    pub users: u64,
    pub students: u64,
    pub teachers: u64,
    /// Parents, guardians and relatives.
    pub guardians: u64,
    /// Users by OneRoster 1.2 role name.
    pub users_by_role: BTreeMap<String, u64>,
    /// Users by OneRoster 1.1 role name.
    pub users_by_role_v1p1: BTreeMap<String, u64>,
}

impl District {
    pub fn counts(&self) -> Counts {
        let mut counts = Counts {
            day: self.day,
            orgs: self.orgs.len() as u64,
            schools: self.orgs.iter().filter(|o| o.band.is_some()).count() as u64,
            ..Counts::default()
        };
        for session in self.sessions.iter().filter(|s| !s.removed) {
            counts.academic_sessions += 1;
            match session.kind {
                SessionKind::Semester => counts.terms += 1,
                SessionKind::GradingPeriod => counts.grading_periods += 1,
                SessionKind::SchoolYear => {}
            }
        }
        counts.courses = self.courses.iter().filter(|c| !c.removed).count() as u64;
        counts.classes = self.classes.iter().filter(|c| !c.removed).count() as u64;
        counts.enrollments = self.enrollments.iter().filter(|e| !e.removed).count() as u64;
        let mut by_role = [0u64; Role::ALL.len()];
        for person in self.people.iter().filter(|p| !p.removed) {
            if let Some(slot) = Role::ALL
                .iter()
                .position(|r| *r == person.role)
                .and_then(|i| by_role.get_mut(i))
            {
                *slot += 1;
            }
        }
        for (role, &count) in Role::ALL.iter().zip(&by_role) {
            counts.users += count;
            if count > 0 {
                *counts
                    .users_by_role
                    .entry(role.v1p2().to_owned())
                    .or_default() += count;
                *counts
                    .users_by_role_v1p1
                    .entry(role.v1p1().to_owned())
                    .or_default() += count;
            }
            match role {
                Role::Student => counts.students += count,
                Role::Teacher => counts.teachers += count,
                role if role.is_guardian() => counts.guardians += count,
                _ => {}
            }
        }
        counts
    }
}

impl District {
    /// The sourcedIds of every active record of a collection, in index order: what a
    /// complete full pull of this day must return.
    pub fn active_ids(&self, collection: crate::records::Collection) -> Vec<String> {
        (0..crate::records::record_count(self, collection) as u32)
            .filter(|&i| {
                crate::records::record_state(self, collection, i)
                    .is_some_and(|(removed, _)| !removed)
            })
            .map(|i| collection.sourced_id(i))
            .collect()
    }

    /// One record as the REST API renders it (hrefs relative to `/`), removed records
    /// included (with `status: tobedeleted`); `None` for an unknown sourcedId.
    pub fn record_json(
        &self,
        collection: crate::records::Collection,
        version: crate::records::Version,
        sourced_id: &str,
    ) -> Option<serde_json::Value> {
        let index = collection.parse_sourced_id(sourced_id)?;
        crate::records::record_state(self, collection, index)?;
        let renderer = crate::records::Renderer {
            district: self,
            version,
            href_base: "",
        };
        let mut out = Vec::with_capacity(1024);
        renderer.write_json(&mut out, collection, index, None);
        serde_json::from_slice(&out).ok()
    }
}
