//! Day 0: building a district from its configuration, and the yearly schedule build that
//! both day 0 and every school-year rollover use.
//!
//! The shape follows what districts look like in Infinite Campus exports: ~45 % of people
//! are students in families of one to three children (siblings share one or two guardians),
//! schools are grouped by band (KG–05, 06–08, 09–12) and sized unevenly, every school has a
//! principal, counselors, aides and about one teacher per 15 students, and every student
//! has a homeroom plus scheduled classes (about seven in secondary, 0–2 "specials" in
//! elementary). The `nyc` shape ([`Shape::Nyc`]) changes only the numbers in [`Mix`].

use crate::calendar::{FIRST_SCHOOL_YEAR, KINDERGARTEN_EMAIL_CHANGE_DAY, school_year_start_day};
use crate::error::SimError;
use crate::model::{
    Band, Class, Course, District, DistrictConfig, Enrollment, EnrollmentRole, FLAG_MIXED_CASE,
    FLAG_NO_EMAIL, FLAG_USERNAME_EMAIL, Household, KINDERGARTEN, MAX_USERS, MIN_USERS, NO_GRADE,
    NO_NAME, NONE, Org, Person, Role, Session, SessionKind, Shape,
};
use crate::names::{
    ELEMENTARY_COURSES, FIRST_NAMES, HIGH_COURSES, LAST_NAMES, MIDDLE_COURSES, PREFERRED_NAMES,
    PRONOUNS, SCHOOL_NAMES,
};
use crate::rng::{Rng, Stream, mix};

/// Average school sizes by band.
const SCHOOL_SIZE: [f64; 3] = [450.0, 800.0, 1400.0];
const HOMEROOM_SIZE: [usize; 3] = [22, 25, 25];
const CLASS_SIZE: usize = 25;
const ITINERANT_TEACHER_SHARE: f64 = 0.04;

/// The numbers a [`Shape`] sets: who the people are and how many classes a student takes.
pub(crate) struct Mix {
    /// Share of day-0 people who are students.
    student_share: f64,
    students_per_teacher: usize,
    /// Students per site administrator, per counselor, per elementary aide, per
    /// secondary aide.
    per_site_administrator: usize,
    per_counselor: usize,
    per_aide: [usize; 2],
    /// Guardians one household may have (at least one each).
    max_guardians: usize,
    /// Elementary students take every special instead of 0–2 of them.
    every_special: bool,
    /// "General" courses per grade beyond the band's catalogue, by band.
    extra_courses: [usize; 3],
}

impl Shape {
    pub(crate) fn mix(self) -> Mix {
        match self {
            Shape::Default => Mix {
                student_share: 0.45,
                students_per_teacher: 15,
                per_site_administrator: 500,
                per_counselor: 400,
                per_aide: [120, 250],
                max_guardians: 2,
                every_special: false,
                extra_courses: [0, 0, 0],
            },
            Shape::Nyc => Mix {
                student_share: 0.33,
                students_per_teacher: 13,
                per_site_administrator: 100,
                per_counselor: 250,
                per_aide: [15, 20],
                max_guardians: 4,
                every_special: true,
                extra_courses: [2, 1, 2],
            },
        }
    }
}

impl Mix {
    /// Courses per grade a school of `band` offers: its catalogue, then the extra ones.
    pub(crate) fn courses(&self, band: Band) -> usize {
        catalogue(band).len() + self.extra_courses[band.index()]
    }

    /// Whether catalogue entry `catalog` of `band` is an elementary special, which a
    /// student of the default shape may not take.
    fn is_optional_special(&self, band: Band, catalog: usize) -> bool {
        band == Band::Elementary
            && !self.every_special
            && catalog > 0
            && catalog < catalogue(band).len()
    }
}

pub(crate) fn catalogue(band: Band) -> &'static [(&'static str, &'static str)] {
    match band {
        Band::Elementary => ELEMENTARY_COURSES,
        Band::Middle => MIDDLE_COURSES,
        Band::High => HIGH_COURSES,
    }
}

/// The period a class meets. Secondary sections rotate so a student who takes section `s`
/// of every course never has two classes in one period; homerooms meet in period 0.
pub(crate) fn period_of(band: Band, catalog: u8, section: u16) -> u8 {
    if catalog == 0 {
        return 0;
    }
    match band {
        Band::Elementary => catalog,
        Band::Middle | Band::High => {
            let periods = catalogue(band).len() - 1;
            ((usize::from(catalog) - 1 + usize::from(section)) % periods + 1) as u8
        }
    }
}

/// How many specials (0–2) an elementary student takes: fixed per student so it does not
/// change from one day to the next.
fn specials_taken(seed: u64, person: u32) -> usize {
    (mix(seed, u64::from(person)) % 3) as usize
}

struct PlannedFamily {
    grades: Vec<u8>,
    zone: u16,
    last: u16,
}

impl District {
    /// Builds the district as it is on `config.day`.
    pub fn generate(config: &DistrictConfig) -> Result<District, SimError> {
        let mut district = District::initial(config)?;
        district.advance_to(config.day);
        Ok(district)
    }

    fn initial(config: &DistrictConfig) -> Result<District, SimError> {
        if !(MIN_USERS..=MAX_USERS).contains(&config.users) {
            return Err(SimError::UsersOutOfRange(config.users));
        }
        let mut rng = Rng::new(config.seed, Stream::Generate, 0);
        let people_target = config.users as usize;
        let mix = config.shape.mix();
        let student_target = ((people_target as f64 * mix.student_share).round() as usize).max(12);

        let families = plan_families(&mut rng, student_target);

        let mut district = District {
            config: config.clone(),
            day: 0,
            year: FIRST_SCHOOL_YEAR,
            orgs: vec![Org {
                band: None,
                name: config.district_name.clone(),
                number: 1,
                modified: 0,
            }],
            band_zones: [Vec::new(), Vec::new(), Vec::new()],
            sessions: Vec::new(),
            courses: Vec::new(),
            classes: Vec::new(),
            people: Vec::with_capacity(people_target + people_target / 20),
            households: Vec::with_capacity(families.len()),
            enrollments: Vec::new(),
            school_classes: Vec::new(),
            school_teachers: Vec::new(),
            staff_ids: Vec::new(),
            name_counts: vec![0; FIRST_NAMES.len() * LAST_NAMES.len()],
            next_student_number: 100_001,
            next_employee_number: 10_001,
            next_guardian_number: 500_001,
            base_students: 0,
            base_staff: 0,
            base_households: 0,
            year_first_class: 0,
        };

        district.create_schools(&mut rng, &families);
        let mut students_per_school = vec![0usize; district.orgs.len()];
        for family in &families {
            for &grade in &family.grades {
                let school = district.school_for_zone(Band::of_grade(grade), family.zone);
                if let Some(count) = students_per_school.get_mut(school as usize) {
                    *count += 1;
                }
            }
        }
        let stamp = 0;
        district.create_staff(&mut rng, &students_per_school, stamp);

        let student_count: usize = families.iter().map(|f| f.grades.len()).sum();
        let staff_count = district.people.len();
        let household_count = families.len();
        let guardian_count = people_target
            .saturating_sub(student_count + staff_count)
            .clamp(household_count, mix.max_guardians * household_count);
        let extra_guardians = guardian_count - household_count;
        for (index, family) in families.iter().enumerate() {
            // Spread the extra guardians evenly so the total is exact.
            let guardians = 1 + (index + 1) * extra_guardians / household_count
                - index * extra_guardians / household_count;
            district.create_family(&mut rng, family, guardians, stamp);
        }

        district.base_students = student_count as u32;
        district.base_staff = staff_count as u32;
        district.base_households = household_count as u32;
        district.build_school_year(&mut rng, stamp, 0);
        Ok(district)
    }

    fn create_schools(&mut self, rng: &mut Rng, families: &[PlannedFamily]) {
        let mut per_band = [0usize; 3];
        for family in families {
            for &grade in &family.grades {
                per_band[Band::of_grade(grade).index()] += 1;
            }
        }
        for band in Band::ALL {
            let students = per_band[band.index()] as f64;
            let schools = ((students / SCHOOL_SIZE[band.index()]).round() as usize).max(1);
            let weights: Vec<f64> = (0..schools).map(|_| 0.6 + 0.8 * rng.unit()).collect();
            let total: f64 = weights.iter().sum();
            let mut cumulative = 0.0;
            let mut zones = Vec::with_capacity(schools);
            for (ordinal, weight) in weights.iter().enumerate() {
                cumulative += weight;
                let upper = if ordinal + 1 == schools {
                    u16::MAX
                } else {
                    ((cumulative / total) * 65_535.0) as u16
                };
                let org = self.orgs.len() as u32;
                let base = SCHOOL_NAMES
                    .get(ordinal % SCHOOL_NAMES.len())
                    .copied()
                    .unwrap_or("Central");
                let name = if ordinal < SCHOOL_NAMES.len() {
                    format!("{base} {}", band.school_word())
                } else {
                    format!(
                        "{base} {} {}",
                        band.school_word(),
                        ordinal / SCHOOL_NAMES.len() + 1
                    )
                };
                self.orgs.push(Org {
                    band: Some(band),
                    name,
                    number: 100 + org,
                    modified: 0,
                });
                zones.push((upper, org));
            }
            self.band_zones[band.index()] = zones;
        }
        self.school_classes = vec![Vec::new(); self.orgs.len()];
        self.school_teachers = vec![Vec::new(); self.orgs.len()];
    }

    fn create_staff(&mut self, rng: &mut Rng, students_per_school: &[usize], stamp: u32) {
        let mix = self.config.shape.mix();
        let schools = self.orgs.len() - 1;
        for _ in 0..(schools / 8).max(2) {
            self.hire(rng, Role::DistrictAdministrator, 0, stamp);
        }
        for school in 1..self.orgs.len() as u32 {
            let students = students_per_school
                .get(school as usize)
                .copied()
                .unwrap_or(0);
            let elementary =
                self.orgs.get(school as usize).and_then(|o| o.band) == Some(Band::Elementary);
            let plan = [
                (Role::Principal, 1),
                (
                    Role::SiteAdministrator,
                    students / mix.per_site_administrator,
                ),
                (Role::Counselor, (students / mix.per_counselor).max(1)),
                (
                    Role::Aide,
                    (students / mix.per_aide[usize::from(!elementary)]).max(1),
                ),
                (
                    Role::Teacher,
                    students.div_ceil(mix.students_per_teacher).max(1),
                ),
            ];
            for (role, count) in plan {
                for _ in 0..count {
                    self.hire(rng, role, school, stamp);
                }
            }
        }
        // A few teachers also work at a second school of the same band.
        for band in Band::ALL {
            let schools: Vec<u32> = self.band_zones[band.index()]
                .iter()
                .map(|(_, s)| *s)
                .collect();
            if schools.len() < 2 {
                continue;
            }
            for &school in &schools {
                let teachers = self
                    .school_teachers
                    .get(school as usize)
                    .cloned()
                    .unwrap_or_default();
                for teacher in teachers {
                    if rng.chance(ITINERANT_TEACHER_SHARE) {
                        let other = schools
                            .get(rng.below(schools.len()))
                            .copied()
                            .unwrap_or(school);
                        if other != school
                            && let Some(person) = self.people.get_mut(teacher as usize)
                        {
                            person.second_school = other;
                        }
                    }
                }
            }
        }
    }

    /// Adds a staff member (used on day 0, for replacements and at rollover).
    pub(crate) fn hire(&mut self, rng: &mut Rng, role: Role, school: u32, stamp: u32) -> u32 {
        let index = self.new_person(rng, role, school, NO_GRADE, None, NONE, stamp);
        self.staff_ids.push(index);
        if role == Role::Teacher
            && let Some(list) = self.school_teachers.get_mut(school as usize)
        {
            list.push(index);
        }
        index
    }

    fn create_family(
        &mut self,
        rng: &mut Rng,
        family: &PlannedFamily,
        guardians: usize,
        stamp: u32,
    ) {
        let household = self.households.len() as u32;
        self.households.push(Household {
            first_member: NONE,
            zone: family.zone,
            last: family.last,
        });
        for _ in 0..guardians {
            self.add_guardian(rng, household, stamp);
        }
        for &grade in &family.grades {
            self.add_student(rng, household, grade, stamp);
        }
    }

    pub(crate) fn add_guardian(&mut self, rng: &mut Rng, household: u32, stamp: u32) -> u32 {
        let roll = rng.unit();
        let role = if roll < 0.8 {
            Role::Parent
        } else if roll < 0.92 {
            Role::Guardian
        } else {
            Role::Relative
        };
        let family_last = self
            .households
            .get(household as usize)
            .map_or(0, |h| h.last);
        let last = if rng.chance(0.15) {
            rng.below(LAST_NAMES.len()) as u16
        } else {
            family_last
        };
        self.new_person(rng, role, 0, NO_GRADE, Some(last), household, stamp)
    }

    /// Adds a student to a household, at the school the family's zone gives for the grade.
    /// The caller enrolls them in classes.
    pub(crate) fn add_student(
        &mut self,
        rng: &mut Rng,
        household: u32,
        grade: u8,
        stamp: u32,
    ) -> u32 {
        let (zone, last) = self
            .households
            .get(household as usize)
            .map_or((0, 0), |h| (h.zone, h.last));
        let school = self.school_for_zone(Band::of_grade(grade), zone);
        self.new_person(
            rng,
            Role::Student,
            school,
            grade,
            Some(last),
            household,
            stamp,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn new_person(
        &mut self,
        rng: &mut Rng,
        role: Role,
        school: u32,
        grade: u8,
        last: Option<u16>,
        household: u32,
        stamp: u32,
    ) -> u32 {
        let index = self.people.len() as u32;
        let first = rng.below(FIRST_NAMES.len()) as u16;
        let last = last.unwrap_or_else(|| rng.below(LAST_NAMES.len()) as u16);
        let middle = if rng.chance(0.6) {
            rng.below(FIRST_NAMES.len()) as u16
        } else {
            NO_NAME
        };
        let (no_email, mixed_case, preferred, pronouns) = match role {
            Role::Student => (
                grade <= 1 && rng.chance(0.35),
                rng.chance(0.01),
                rng.chance(0.04),
                rng.chance(0.03),
            ),
            role if role.is_guardian() => (rng.chance(0.2), rng.chance(0.06), false, false),
            _ => (false, rng.chance(0.04), rng.chance(0.03), rng.chance(0.02)),
        };
        let mut flags = 0;
        if no_email {
            flags |= FLAG_NO_EMAIL;
        }
        if mixed_case {
            flags |= FLAG_MIXED_CASE;
        }
        if role == Role::Student
            && grade == KINDERGARTEN
            && self.day >= KINDERGARTEN_EMAIL_CHANGE_DAY
        {
            flags |= FLAG_USERNAME_EMAIL;
        }
        let preferred = if preferred {
            rng.below(PREFERRED_NAMES.len()) as u16
        } else {
            NO_NAME
        };
        let pronouns = if pronouns {
            1 + rng.below(PRONOUNS.len()) as u8
        } else {
            0
        };
        let serial = match role {
            Role::Student => &mut self.next_student_number,
            role if role.is_guardian() => &mut self.next_guardian_number,
            _ => &mut self.next_employee_number,
        };
        let number = *serial;
        *serial += 1;
        let dup = self.take_name_ordinal(first, last);
        let next_in_household = match self.households.get_mut(household as usize) {
            Some(h) => std::mem::replace(&mut h.first_member, index),
            None => NONE,
        };
        self.people.push(Person {
            role,
            grade,
            removed: false,
            flags,
            contact_version: 0,
            pronouns,
            first,
            middle: if middle == first { NO_NAME } else { middle },
            last,
            preferred,
            dup,
            serial: number,
            school,
            second_school: NONE,
            household,
            next_in_household,
            first_enrollment: NONE,
            modified: stamp,
        });
        index
    }

    pub(crate) fn add_enrollment(
        &mut self,
        user: u32,
        class: u32,
        role: EnrollmentRole,
        begin_day: u32,
        stamp: u32,
    ) -> u32 {
        let index = self.enrollments.len() as u32;
        let next_of_user = match self.people.get_mut(user as usize) {
            Some(p) => std::mem::replace(&mut p.first_enrollment, index),
            None => NONE,
        };
        let next_of_class = match self.classes.get_mut(class as usize) {
            Some(c) => std::mem::replace(&mut c.first_enrollment, index),
            None => NONE,
        };
        self.enrollments.push(Enrollment {
            user,
            class,
            next_of_user,
            next_of_class,
            modified: stamp,
            begin_day: begin_day.min(u32::from(u16::MAX)) as u16,
            role,
            primary: role == EnrollmentRole::Teacher,
            removed: false,
        });
        index
    }

    /// The alive teachers whose primary school is `school`.
    pub(crate) fn teachers_of(&self, school: u32) -> Vec<u32> {
        self.school_teachers
            .get(school as usize)
            .map(|list| {
                list.iter()
                    .copied()
                    .filter(|&t| {
                        self.people.get(t as usize).is_some_and(|p| {
                            !p.removed && p.role == Role::Teacher && p.school == school
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Creates the sessions, courses, classes and enrollments of the school year in
    /// `self.year` for every alive student, hiring teachers where a school is short.
    pub(crate) fn build_school_year(&mut self, rng: &mut Rng, stamp: u32, begin_day: u32) {
        let year = self.year;
        let year_session = self.sessions.len() as u32;
        let session = |kind, part, parent| Session {
            kind,
            year,
            part,
            parent,
            removed: false,
            modified: stamp,
        };
        self.sessions
            .push(session(SessionKind::SchoolYear, 0, NONE));
        self.sessions
            .push(session(SessionKind::Semester, 1, year_session));
        self.sessions
            .push(session(SessionKind::Semester, 2, year_session));
        for part in 1..=4u8 {
            let semester = year_session + if part <= 2 { 1 } else { 2 };
            self.sessions
                .push(session(SessionKind::GradingPeriod, part, semester));
        }
        let begin_day = begin_day.max(school_year_start_day(year));
        let mix = self.config.shape.mix();

        let orgs = self.orgs.len();
        let mut buckets: Vec<Vec<u32>> = vec![Vec::new(); orgs * 13];
        for (index, person) in self.people.iter().enumerate() {
            if !person.removed && person.role == Role::Student {
                let slot = person.school as usize * 13 + usize::from(person.grade);
                if let Some(bucket) = buckets.get_mut(slot) {
                    bucket.push(index as u32);
                }
            }
        }
        for list in &mut self.school_classes {
            list.clear();
        }
        self.year_first_class = self.classes.len() as u32;

        for school in 1..orgs as u32 {
            let Some(band) = self.orgs.get(school as usize).and_then(|o| o.band) else {
                continue;
            };
            let students: usize = band
                .grades()
                .map(|g| {
                    buckets
                        .get(school as usize * 13 + usize::from(g))
                        .map_or(0, Vec::len)
                })
                .sum();
            let mut teachers = self.teachers_of(school);
            while teachers.len() < students.div_ceil(mix.students_per_teacher).max(1) {
                teachers.push(self.hire(rng, Role::Teacher, school, stamp));
            }
            let mut round_robin = 0usize;
            let mut next_room = 100u16;
            for grade in band.grades() {
                let roster = buckets
                    .get_mut(school as usize * 13 + usize::from(grade))
                    .map(std::mem::take)
                    .unwrap_or_default();
                for catalog in 0..mix.courses(band) {
                    let optional = mix.is_optional_special(band, catalog);
                    let catalog = catalog as u8;
                    let course = self.courses.len() as u32;
                    self.courses.push(Course {
                        school,
                        year_session,
                        catalog,
                        grade,
                        removed: false,
                        modified: stamp,
                    });
                    let size = if catalog == 0 {
                        HOMEROOM_SIZE[band.index()]
                    } else {
                        CLASS_SIZE
                    };
                    let sections = roster.len().div_ceil(size).max(1);
                    let mut section_classes = Vec::with_capacity(sections);
                    for section in 0..sections as u16 {
                        let class = self.classes.len() as u32;
                        self.classes.push(Class {
                            course,
                            school,
                            year_session,
                            section,
                            room: next_room,
                            period: period_of(band, catalog, section),
                            catalog,
                            grade,
                            removed: false,
                            first_enrollment: NONE,
                            modified: stamp,
                        });
                        next_room = next_room.wrapping_add(1);
                        if let Some(list) = self.school_classes.get_mut(school as usize) {
                            list.push(class);
                        }
                        let teacher = teachers
                            .get(round_robin % teachers.len().max(1))
                            .copied()
                            .unwrap_or(NONE);
                        round_robin += 1;
                        if teacher != NONE {
                            self.add_enrollment(
                                teacher,
                                class,
                                EnrollmentRole::Teacher,
                                begin_day,
                                stamp,
                            );
                        }
                        section_classes.push(class);
                    }
                    for (position, &student) in roster.iter().enumerate() {
                        if optional {
                            let taken = specials_taken(self.config.seed, student);
                            if (usize::from(catalog) - 1 + position) % 3 >= taken {
                                continue;
                            }
                        }
                        let class = section_classes
                            .get(position % sections)
                            .copied()
                            .unwrap_or(NONE);
                        self.add_enrollment(
                            student,
                            class,
                            EnrollmentRole::Student,
                            begin_day,
                            stamp,
                        );
                    }
                }
            }
        }
    }

    /// Enrolls one student (new or transferred) in a homeroom and classes at their school,
    /// choosing sections at random.
    pub(crate) fn schedule_student(
        &mut self,
        rng: &mut Rng,
        student: u32,
        begin_day: u32,
        stamp: u32,
    ) {
        let Some(person) = self.people.get(student as usize) else {
            return;
        };
        let (school, grade) = (person.school, person.grade);
        let Some(band) = self.orgs.get(school as usize).and_then(|o| o.band) else {
            return;
        };
        let mix = self.config.shape.mix();
        let courses = mix.courses(band);
        let mut by_catalog: Vec<Vec<u32>> = vec![Vec::new(); courses];
        for &class in self
            .school_classes
            .get(school as usize)
            .map_or(&[][..], Vec::as_slice)
        {
            if let Some(c) = self.classes.get(class as usize)
                && !c.removed
                && c.grade == grade
                && let Some(list) = by_catalog.get_mut(usize::from(c.catalog))
            {
                list.push(class);
            }
        }
        let section_pick = rng.below(1 << 16);
        let taken = specials_taken(self.config.seed, student);
        for (catalog, sections) in by_catalog.iter().enumerate() {
            if sections.is_empty() {
                continue;
            }
            if mix.is_optional_special(band, catalog) && (catalog - 1 + section_pick) % 3 >= taken {
                continue;
            }
            let class = if catalog == 0 {
                sections.get(rng.below(sections.len()))
            } else {
                sections.get(section_pick % sections.len())
            };
            if let Some(&class) = class {
                self.add_enrollment(student, class, EnrollmentRole::Student, begin_day, stamp);
            }
        }
    }
}

fn plan_families(rng: &mut Rng, students: usize) -> Vec<PlannedFamily> {
    let mut families = Vec::with_capacity(students * 2 / 3 + 1);
    let mut placed = 0;
    while placed < students {
        let roll = rng.unit();
        let children = if roll < 0.55 {
            1
        } else if roll < 0.88 {
            2
        } else {
            3
        };
        let children = children.min(students - placed);
        let mut grades: Vec<u8> = Vec::with_capacity(children);
        while grades.len() < children {
            let grade = rng.below(13) as u8;
            if !grades.contains(&grade) {
                grades.push(grade);
            }
        }
        placed += children;
        families.push(PlannedFamily {
            grades,
            zone: rng.below(1 << 16) as u16,
            last: rng.below(LAST_NAMES.len()) as u16,
        });
    }
    families
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secondary_sections_never_share_a_period() {
        for band in [Band::Middle, Band::High] {
            for section in 0..10u16 {
                let mut periods: Vec<u8> = (1..catalogue(band).len() as u8)
                    .map(|c| period_of(band, c, section))
                    .collect();
                periods.sort_unstable();
                periods.dedup();
                assert_eq!(periods.len(), catalogue(band).len() - 1);
            }
        }
    }

    #[test]
    fn families_hold_exactly_the_planned_students() {
        let mut rng = Rng::new(3, Stream::Generate, 0);
        let families = plan_families(&mut rng, 1000);
        assert_eq!(families.iter().map(|f| f.grades.len()).sum::<usize>(), 1000);
        assert!(families.iter().all(|f| (1..=3).contains(&f.grades.len())));
    }
}
