//! The compact district model.
//!
//! A district of three million people must fit comfortably in memory and be cloned and
//! advanced a day at a time in well under a second per day, so every record here is a
//! small fixed-size struct of integers: names are indexes into [`crate::names`], references
//! are indexes into sibling vectors, and text (emails, titles, sourcedIds) is derived only
//! when a record is rendered. Records are never deleted from the vectors: a removal sets
//! `removed` and stamps `modified`, so indexes (and so sourcedIds) are stable across days
//! and two days of the same district can be compared index by index.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::names::{FIRST_NAMES, GUARDIAN_EMAIL_DOMAINS, LAST_NAMES, PREFERRED_NAMES, PRONOUNS};

/// "No such record" in an index field.
pub(crate) const NONE: u32 = u32::MAX;
/// "No name" in a name-index field.
pub(crate) const NO_NAME: u16 = u16::MAX;
/// Adults have no grade.
pub(crate) const NO_GRADE: u8 = u8::MAX;
/// Kindergarten in the `grade` field; grades 1–12 are themselves.
pub(crate) const KINDERGARTEN: u8 = 0;
pub(crate) const TWELFTH_GRADE: u8 = 12;

/// Person flag: the person has no email address (some young students, some guardians).
pub(crate) const FLAG_NO_EMAIL: u8 = 1;
/// Person flag: the email is `username@domain` rather than `first.last@domain`.
pub(crate) const FLAG_USERNAME_EMAIL: u8 = 2;
/// Person flag: the SIS holds the email with capitals (`John.Smith@…`).
pub(crate) const FLAG_MIXED_CASE: u8 = 4;

/// Who a person is in the district. One variant per OneRoster 1.2 role the simulator
/// produces; [`Role::v1p1`] folds them onto the 1.1 vocabulary as Infinite Campus does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    Student,
    Teacher,
    Aide,
    Counselor,
    Principal,
    SiteAdministrator,
    DistrictAdministrator,
    Parent,
    Guardian,
    Relative,
}

impl Role {
    pub const ALL: [Role; 10] = [
        Role::Student,
        Role::Teacher,
        Role::Aide,
        Role::Counselor,
        Role::Principal,
        Role::SiteAdministrator,
        Role::DistrictAdministrator,
        Role::Parent,
        Role::Guardian,
        Role::Relative,
    ];

    /// The OneRoster 1.1 role: principals, site and district administrators and counselors
    /// are all `administrator` (1.1 has no finer vocabulary).
    pub fn v1p1(self) -> &'static str {
        match self {
            Role::Student => "student",
            Role::Teacher => "teacher",
            Role::Aide => "aide",
            Role::Counselor
            | Role::Principal
            | Role::SiteAdministrator
            | Role::DistrictAdministrator => "administrator",
            Role::Parent => "parent",
            Role::Guardian => "guardian",
            Role::Relative => "relative",
        }
    }

    /// The OneRoster 1.2 role.
    pub fn v1p2(self) -> &'static str {
        match self {
            Role::Student => "student",
            Role::Teacher => "teacher",
            Role::Aide => "aide",
            Role::Counselor => "counselor",
            Role::Principal => "principal",
            Role::SiteAdministrator => "siteAdministrator",
            Role::DistrictAdministrator => "districtAdministrator",
            Role::Parent => "parent",
            Role::Guardian => "guardian",
            Role::Relative => "relative",
        }
    }

    pub fn is_guardian(self) -> bool {
        matches!(self, Role::Parent | Role::Guardian | Role::Relative)
    }

    pub fn is_staff(self) -> bool {
        !self.is_guardian() && self != Role::Student
    }
}

/// The grade bands schools are organised by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Band {
    Elementary,
    Middle,
    High,
}

impl Band {
    pub(crate) const ALL: [Band; 3] = [Band::Elementary, Band::Middle, Band::High];

    pub(crate) fn of_grade(grade: u8) -> Band {
        match grade {
            0..=5 => Band::Elementary,
            6..=8 => Band::Middle,
            _ => Band::High,
        }
    }

    pub(crate) fn grades(self) -> std::ops::RangeInclusive<u8> {
        match self {
            Band::Elementary => 0..=5,
            Band::Middle => 6..=8,
            Band::High => 9..=12,
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    pub(crate) fn school_word(self) -> &'static str {
        match self {
            Band::Elementary => "Elementary School",
            Band::Middle => "Middle School",
            Band::High => "High School",
        }
    }
}

/// The CEDS grade code (`KG`, `01` … `12`).
pub(crate) fn grade_code(grade: u8) -> &'static str {
    const CODES: [&str; 13] = [
        "KG", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12",
    ];
    CODES.get(usize::from(grade)).copied().unwrap_or("Other")
}

#[derive(Clone, Debug)]
pub(crate) struct Person {
    pub role: Role,
    pub grade: u8,
    pub removed: bool,
    pub flags: u8,
    /// Guardians: bumped when they change email/phone, which picks a new email domain.
    pub contact_version: u8,
    /// 0 = none, else `PRONOUNS[n - 1]`.
    pub pronouns: u8,
    pub first: u16,
    pub middle: u16,
    pub last: u16,
    pub preferred: u16,
    /// Ordinal among everyone who had this first+last name when they got it (0 = first),
    /// which is what keeps emails unique despite duplicate names.
    pub dup: u32,
    /// Student number, employee number or guardian person number.
    pub serial: u32,
    /// Primary org: a school, or the district (0) for district staff and guardians.
    pub school: u32,
    /// Itinerant teachers also work at a second school (a secondary role in 1.2).
    pub second_school: u32,
    pub household: u32,
    pub next_in_household: u32,
    pub first_enrollment: u32,
    pub modified: u32,
}

#[derive(Clone, Debug)]
pub(crate) struct Household {
    pub first_member: u32,
    /// Where the family lives, 0..=65535: decides the school of each grade band.
    pub zone: u16,
    pub last: u16,
}

#[derive(Clone, Debug)]
pub(crate) struct Org {
    /// `None` for the district itself.
    pub band: Option<Band>,
    pub name: String,
    pub number: u32,
    pub modified: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SessionKind {
    SchoolYear,
    Semester,
    GradingPeriod,
}

#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub kind: SessionKind,
    /// The school year's ending calendar year (2027 for 2026–27).
    pub year: u16,
    /// Semester 1–2 or grading period 1–4; 0 for the year.
    pub part: u8,
    pub parent: u32,
    pub removed: bool,
    pub modified: u32,
}

#[derive(Clone, Debug)]
pub(crate) struct Course {
    pub school: u32,
    pub year_session: u32,
    /// Index into the band's course catalogue (0 = homeroom).
    pub catalog: u8,
    pub grade: u8,
    pub removed: bool,
    pub modified: u32,
}

#[derive(Clone, Debug)]
pub(crate) struct Class {
    pub course: u32,
    pub school: u32,
    pub year_session: u32,
    pub section: u16,
    pub room: u16,
    pub period: u8,
    pub catalog: u8,
    pub grade: u8,
    pub removed: bool,
    pub first_enrollment: u32,
    pub modified: u32,
}

impl Class {
    pub(crate) fn is_homeroom(&self) -> bool {
        self.catalog == 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EnrollmentRole {
    Student,
    Teacher,
}

impl EnrollmentRole {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EnrollmentRole::Student => "student",
            EnrollmentRole::Teacher => "teacher",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Enrollment {
    pub user: u32,
    pub class: u32,
    pub next_of_user: u32,
    pub next_of_class: u32,
    pub modified: u32,
    /// Day number (since the epoch) the enrollment begins.
    pub begin_day: u16,
    pub role: EnrollmentRole,
    pub primary: bool,
    pub removed: bool,
}

/// The mix of people and schedules a district is built with.
///
/// `Default` is the shape of a typical Infinite Campus district (see `docs/sim.md`); its
/// output never changes. `Nyc` is the largest US district, for benchmarks at scale: at
/// 3 000 000 people about 1 M students, 150 k staff (one teacher per 13 students, many
/// aides and assistant principals), 1.9 M guardians (up to four per household) and some
/// 8 M enrollments (elementary students take every special, and every grade has extra
/// "General" courses: `GEN-…` in the course codes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    #[default]
    Default,
    Nyc,
}

impl Shape {
    pub fn as_str(self) -> &'static str {
        match self {
            Shape::Default => "default",
            Shape::Nyc => "nyc",
        }
    }
}

impl std::str::FromStr for Shape {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "default" => Ok(Shape::Default),
            "nyc" => Ok(Shape::Nyc),
            other => Err(format!(
                "unknown district shape `{other}`: use default or nyc"
            )),
        }
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to build a district. `users` is the number of people on day 0 (students, staff and
/// guardians together); at very small sizes the minimum staff of three schools may push the
/// real count a little above it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistrictConfig {
    pub users: u32,
    pub seed: u64,
    /// Days of life after the initial state (churn is applied for days 1..=day).
    pub day: u32,
    /// Staff email domain (`first.last@…`).
    pub staff_domain: String,
    /// Student email domain.
    pub student_domain: String,
    pub district_name: String,
    /// The mix of roles and schedules.
    #[serde(default)]
    pub shape: Shape,
}

impl Default for DistrictConfig {
    fn default() -> Self {
        DistrictConfig {
            users: 1000,
            seed: 1,
            day: 0,
            staff_domain: "district.k12.us".to_owned(),
            student_domain: "students.district.k12.us".to_owned(),
            district_name: "Springfield Unified School District".to_owned(),
            shape: Shape::Default,
        }
    }
}

/// Smallest and largest district the generator accepts (people on day 0).
pub const MIN_USERS: u32 = 50;
pub const MAX_USERS: u32 = 3_000_000;

/// A record that can leave the district. It is kept, marked `removed` (deltas and
/// `tobedeleted` still show it), and its removal is its last change.
pub(crate) trait Removable {
    fn is_removed(&self) -> bool;
    fn remove(&mut self, stamp: u32);
}

macro_rules! removable {
    ($($ty:ty),+) => {$(
        impl Removable for $ty {
            fn is_removed(&self) -> bool {
                self.removed
            }
            fn remove(&mut self, stamp: u32) {
                self.removed = true;
                self.modified = stamp;
            }
        }
    )+};
}

removable!(Person, Session, Course, Class, Enrollment);

/// Removes every record of `records` not removed yet.
pub(crate) fn remove_all<T: Removable>(records: &mut [T], stamp: u32) {
    for record in records.iter_mut().filter(|r| !r.is_removed()) {
        record.remove(stamp);
    }
}

/// The whole district on one day. Cheap to clone relative to generating it; see
/// [`District::generate`] and [`District::advance`].
#[derive(Clone, Debug)]
pub struct District {
    pub(crate) config: DistrictConfig,
    pub(crate) day: u32,
    /// The school year in session (ending calendar year).
    pub(crate) year: u16,
    pub(crate) orgs: Vec<Org>,
    /// Per band: (upper zone bound, school org) sorted by bound.
    pub(crate) band_zones: [Vec<(u16, u32)>; 3],
    pub(crate) sessions: Vec<Session>,
    pub(crate) courses: Vec<Course>,
    pub(crate) classes: Vec<Class>,
    pub(crate) people: Vec<Person>,
    pub(crate) households: Vec<Household>,
    pub(crate) enrollments: Vec<Enrollment>,
    /// Per org: the classes of the school year in session.
    pub(crate) school_classes: Vec<Vec<u32>>,
    /// Per org: the people who ever taught there (check `removed`/`role` before use).
    pub(crate) school_teachers: Vec<Vec<u32>>,
    /// Everyone who was ever staff, for picking churn targets.
    pub(crate) staff_ids: Vec<u32>,
    /// Per (first, last) name pair: how many people got that name so far.
    pub(crate) name_counts: Vec<u32>,
    pub(crate) next_student_number: u32,
    pub(crate) next_employee_number: u32,
    pub(crate) next_guardian_number: u32,
    /// Day-0 sizes, which set the churn rates for every later day.
    pub(crate) base_students: u32,
    pub(crate) base_staff: u32,
    pub(crate) base_households: u32,
    /// First class index of the school year in session.
    pub(crate) year_first_class: u32,
}

/// Lower-case ASCII letters and digits only: how names become email local parts.
pub(crate) fn slug(out: &mut String, name: &str) {
    out.extend(
        name.chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase()),
    );
}

fn name_at(table: &'static [&'static str], index: u16) -> &'static str {
    if index == NO_NAME {
        ""
    } else {
        table.get(usize::from(index)).copied().unwrap_or("")
    }
}

/// Follows a chain of indexes into `items` (each item names the next, [`NONE`] ends it):
/// every item on it with its index, alive or not.
fn chain<'a, T>(
    items: &'a [T],
    first: u32,
    next: impl Fn(&T) -> u32 + 'a,
) -> impl Iterator<Item = (u32, &'a T)> + 'a {
    let mut cursor = first;
    std::iter::from_fn(move || {
        let index = cursor;
        let item = items.get(index as usize)?;
        cursor = next(item);
        Some((index, item))
    })
}

impl District {
    /// The people of a household, alive or not, with their indexes.
    pub(crate) fn household_chain(&self, household: u32) -> impl Iterator<Item = (u32, &Person)> {
        let first = self
            .households
            .get(household as usize)
            .map_or(NONE, |h| h.first_member);
        chain(&self.people, first, |p| p.next_in_household)
    }

    /// A person's enrollments, alive or not, with their indexes.
    pub(crate) fn user_enrollments(&self, user: u32) -> impl Iterator<Item = (u32, &Enrollment)> {
        let first = self
            .people
            .get(user as usize)
            .map_or(NONE, |p| p.first_enrollment);
        chain(&self.enrollments, first, |e| e.next_of_user)
    }

    /// A class's enrollments, alive or not, with their indexes.
    pub(crate) fn class_enrollments(&self, class: u32) -> impl Iterator<Item = (u32, &Enrollment)> {
        let first = self
            .classes
            .get(class as usize)
            .map_or(NONE, |c| c.first_enrollment);
        chain(&self.enrollments, first, |e| e.next_of_class)
    }

    pub fn config(&self) -> &DistrictConfig {
        &self.config
    }

    /// Days of churn applied since the initial state.
    pub fn day(&self) -> u32 {
        self.day
    }

    pub(crate) fn first_name(&self, person: &Person) -> &'static str {
        name_at(FIRST_NAMES, person.first)
    }

    pub(crate) fn middle_name(&self, person: &Person) -> &'static str {
        name_at(FIRST_NAMES, person.middle)
    }

    pub(crate) fn last_name(&self, person: &Person) -> &'static str {
        name_at(LAST_NAMES, person.last)
    }

    pub(crate) fn preferred_first_name(&self, person: &Person) -> Option<&'static str> {
        (person.preferred != NO_NAME).then(|| name_at(PREFERRED_NAMES, person.preferred))
    }

    pub(crate) fn pronouns(&self, person: &Person) -> Option<&'static str> {
        PRONOUNS
            .get(usize::from(person.pronouns).checked_sub(1)?)
            .copied()
    }

    /// `first.last` plus the duplicate ordinal (`john.smith`, `john.smith2`, …).
    fn dotted_name(&self, out: &mut String, person: &Person) {
        slug(out, self.first_name(person));
        out.push('.');
        slug(out, self.last_name(person));
        if person.dup > 0 {
            let _ = write!(out, "{}", person.dup + 1);
        }
    }

    pub(crate) fn username(&self, person: &Person) -> String {
        let mut out = String::with_capacity(24);
        match person.role {
            Role::Student => {
                if let Some(initial) = self.first_name(person).chars().next() {
                    out.push(initial.to_ascii_lowercase());
                }
                slug(&mut out, self.last_name(person));
                let _ = write!(out, "{}", person.serial);
            }
            role if role.is_guardian() => {
                slug(&mut out, self.first_name(person));
                out.push('.');
                slug(&mut out, self.last_name(person));
                let _ = write!(out, ".{}", person.serial);
            }
            _ => self.dotted_name(&mut out, person),
        }
        out
    }

    pub(crate) fn identifier(&self, person: &Person) -> String {
        match person.role {
            Role::Student => person.serial.to_string(),
            role if role.is_guardian() => format!("P{}", person.serial),
            _ => format!("E{:05}", person.serial),
        }
    }

    pub(crate) fn email(&self, person: &Person) -> Option<String> {
        if person.flags & FLAG_NO_EMAIL != 0 {
            return None;
        }
        let mut local = String::with_capacity(32);
        let domain: &str = match person.role {
            Role::Student => {
                if person.flags & FLAG_USERNAME_EMAIL != 0 {
                    local = self.username(person);
                } else {
                    self.dotted_name(&mut local, person);
                }
                &self.config.student_domain
            }
            role if role.is_guardian() => {
                slug(&mut local, self.first_name(person));
                slug(&mut local, self.last_name(person));
                let _ = write!(local, "{}", person.serial % 1000);
                let domains = GUARDIAN_EMAIL_DOMAINS;
                let pick =
                    (person.serial as usize + usize::from(person.contact_version)) % domains.len();
                domains.get(pick).copied().unwrap_or("example.com")
            }
            _ => {
                self.dotted_name(&mut local, person);
                &self.config.staff_domain
            }
        };
        if person.flags & FLAG_MIXED_CASE != 0 {
            local = capitalise_parts(&local);
        }
        Some(format!("{local}@{domain}"))
    }

    pub(crate) fn phone(&self, person: &Person) -> Option<String> {
        if !person.role.is_guardian() {
            return None;
        }
        let n = crate::rng::mix(u64::from(person.serial), u64::from(person.contact_version));
        Some(format!(
            "555-{:03}-{:04}",
            200 + n % 800,
            (n >> 20) % 10_000
        ))
    }

    /// The guardians (for a student) or students (for a guardian) linked to a person.
    pub(crate) fn agents(&self, index: u32) -> Vec<u32> {
        let Some(person) = self.people.get(index as usize) else {
            return Vec::new();
        };
        let want_guardians = person.role == Role::Student;
        self.household_chain(person.household)
            .filter(|&(member_index, member)| {
                !member.removed
                    && member.role.is_guardian() == want_guardians
                    && member_index != index
            })
            .map(|(member_index, _)| member_index)
            .collect()
    }

    /// Orgs a person belongs to, primary first.
    pub(crate) fn person_orgs(&self, person: &Person) -> Vec<u32> {
        let mut orgs = vec![person.school];
        if person.second_school != NONE {
            orgs.push(person.second_school);
        }
        orgs
    }

    pub(crate) fn school_for_zone(&self, band: Band, zone: u16) -> u32 {
        let zones = &self.band_zones[band.index()];
        let at = zones.partition_point(|(upper, _)| *upper <= zone);
        zones
            .get(at)
            .or(zones.last())
            .map_or(0, |(_, school)| *school)
    }

    pub(crate) fn name_slot(first: u16, last: u16) -> usize {
        usize::from(first) * LAST_NAMES.len() + usize::from(last)
    }

    /// Gives a person the next duplicate ordinal for their current name.
    pub(crate) fn take_name_ordinal(&mut self, first: u16, last: u16) -> u32 {
        let slot = Self::name_slot(first, last);
        if self.name_counts.len() <= slot {
            self.name_counts
                .resize(FIRST_NAMES.len() * LAST_NAMES.len(), 0);
        }
        match self.name_counts.get_mut(slot) {
            Some(count) => {
                let ordinal = *count;
                *count += 1;
                ordinal
            }
            None => 0,
        }
    }
}

/// `john.smith2` → `John.Smith2`: how some SIS records hold emails.
fn capitalise_parts(local: &str) -> String {
    let mut out = String::with_capacity(local.len());
    let mut start = true;
    for c in local.chars() {
        if start {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c);
        }
        start = c == '.';
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capitalises_each_dotted_part() {
        assert_eq!(capitalise_parts("john.smith2"), "John.Smith2");
    }

    #[test]
    fn slug_drops_punctuation_and_spaces() {
        let mut out = String::new();
        slug(&mut out, "O'Brien De La Cruz");
        assert_eq!(out, "obriendelacruz");
    }

    #[test]
    fn role_vocabularies() {
        assert_eq!(Role::Counselor.v1p1(), "administrator");
        assert_eq!(Role::Counselor.v1p2(), "counselor");
        assert!(Role::Relative.is_guardian());
        assert!(Role::Aide.is_staff());
        assert!(!Role::Student.is_staff());
    }
}
