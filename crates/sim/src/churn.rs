//! Days of life: what changes in the district from one day to the next.
//!
//! Each day draws its events from its own random stream (seed, day), so the district on
//! day `D` is the same whether it was generated with `--day D` or advanced there while
//! serving. Events only ever move forward (nobody is re-admitted under an old sourcedId, a
//! role change is never undone), so "changed between two days" by content and by
//! `dateLastModified` agree. See `docs/sim.md` for the calendar in prose.

use crate::calendar::{
    Clock, FIRST_ROLLOVER_DAY, KINDERGARTEN_EMAIL_CHANGE_DAY, ROLLOVER_INTERVAL, SCHOOL_RENAME_DAY,
    SEMESTER_START_DAYS, is_rollover_day,
};
use crate::model::{
    Band, District, EnrollmentRole, FLAG_NO_EMAIL, FLAG_USERNAME_EMAIL, Household, KINDERGARTEN,
    NONE, Person, Removable, Role, TWELFTH_GRADE, remove_all,
};
use crate::names::LAST_NAMES;
use crate::rng::{Rng, Stream};

/// Daily event rates, as a share of the day-0 population they apply to.
const WITHDRAWALS_PER_STUDENT: f64 = 0.0003;
const ENROLMENTS_PER_STUDENT: f64 = 0.0003;
const TRANSFERS_PER_STUDENT: f64 = 0.0001;
const SCHEDULE_CHANGES_PER_STUDENT_PEAK: f64 = 0.002;
const SCHEDULE_CHANGES_PER_STUDENT: f64 = 0.0003;
const DEPARTURES_PER_STAFF: f64 = 0.0002;
const ROLE_CHANGES_PER_STAFF: f64 = 0.0002;
const NAME_CHANGES_PER_STAFF: f64 = 0.0001;
const GUARDIAN_LINK_CHANGES_PER_HOUSEHOLD: f64 = 0.0002;
const GUARDIAN_CONTACT_CHANGES_PER_HOUSEHOLD: f64 = 0.0003;
const ROOM_CHANGES_PER_CLASS: f64 = 0.0005;
/// How many random draws to try when looking for a record that fits an event.
const PICK_TRIES: usize = 64;

impl District {
    /// Moves the district forward `days` days.
    pub fn advance(&mut self, days: u32) {
        let target = self.day.saturating_add(days);
        self.advance_to(target);
    }

    pub(crate) fn advance_to(&mut self, day: u32) {
        while self.day < day {
            self.live_one_day();
        }
    }

    fn live_one_day(&mut self) {
        let day = self.day + 1;
        self.day = day;
        let mut rng = Rng::new(self.config.seed, Stream::Day, u64::from(day));
        if is_rollover_day(day) {
            self.rollover(&mut rng, day);
        }
        let mut clock = Clock::starting_at(day, 6);
        if day == KINDERGARTEN_EMAIL_CHANGE_DAY {
            self.kindergarten_email_change(clock.now());
        }
        if day == SCHOOL_RENAME_DAY {
            self.rename_first_school(clock.now());
        }

        let students = f64::from(self.base_students);
        let staff = f64::from(self.base_staff);
        let households = f64::from(self.base_households);
        let classes = (self.classes.len() as u32 - self.year_first_class) as f64;
        let day_of_year = (day + ROLLOVER_INTERVAL - SEMESTER_START_DAYS[0]) % ROLLOVER_INTERVAL;
        let semester_offset = SEMESTER_START_DAYS[1] - SEMESTER_START_DAYS[0];
        let peak =
            day_of_year < 30 || (semester_offset..semester_offset + 30).contains(&day_of_year);
        let schedule_rate = if peak {
            SCHEDULE_CHANGES_PER_STUDENT_PEAK
        } else {
            SCHEDULE_CHANGES_PER_STUDENT
        };

        for _ in 0..rng.count(students * WITHDRAWALS_PER_STUDENT) {
            if let Some(student) = self.pick_student(&mut rng, 0) {
                self.withdraw_student(student, clock.now());
            }
        }
        for _ in 0..rng.count(students * ENROLMENTS_PER_STUDENT) {
            let grade = rng.below(13) as u8;
            self.enrol_new_student(&mut rng, grade, day, clock.now());
        }
        for _ in 0..rng.count(students * TRANSFERS_PER_STUDENT) {
            self.transfer_student(&mut rng, day, clock.now());
        }
        for _ in 0..rng.count(students * schedule_rate) {
            self.change_schedule(&mut rng, day, clock.now());
        }
        for _ in 0..rng.count(staff * DEPARTURES_PER_STAFF) {
            self.staff_departure(&mut rng, day, clock.now());
        }
        for _ in 0..rng.count(staff * ROLE_CHANGES_PER_STAFF) {
            self.staff_role_change(&mut rng, day, clock.now());
        }
        for _ in 0..rng.count(staff * NAME_CHANGES_PER_STAFF) {
            self.staff_name_change(&mut rng, clock.now());
        }
        for _ in 0..rng.count(households * GUARDIAN_LINK_CHANGES_PER_HOUSEHOLD) {
            self.guardian_link_change(&mut rng, clock.now());
        }
        for _ in 0..rng.count(households * GUARDIAN_CONTACT_CHANGES_PER_HOUSEHOLD) {
            self.guardian_contact_change(&mut rng, clock.now());
        }
        for _ in 0..rng.count(classes * ROOM_CHANGES_PER_CLASS) {
            self.room_change(&mut rng, clock.now());
        }
    }

    fn pick_student(&self, rng: &mut Rng, min_grade: u8) -> Option<u32> {
        (0..PICK_TRIES).find_map(|_| {
            let index = rng.below(self.people.len());
            let person = self.people.get(index)?;
            (!person.removed && person.role == Role::Student && person.grade >= min_grade)
                .then_some(index as u32)
        })
    }

    fn pick_staff(&self, rng: &mut Rng, wanted: impl Fn(&Person) -> bool) -> Option<u32> {
        (0..PICK_TRIES).find_map(|_| {
            let index = *rng.pick(&self.staff_ids)?;
            let person = self.people.get(index as usize)?;
            (!person.removed && wanted(person)).then_some(index)
        })
    }

    /// A household with at least one enrolled child and one guardian.
    fn pick_household(&self, rng: &mut Rng) -> Option<u32> {
        (0..PICK_TRIES).find_map(|_| {
            let index = rng.below(self.households.len()) as u32;
            let (children, guardians) = self.household_members(index);
            (!children.is_empty() && !guardians.is_empty()).then_some(index)
        })
    }

    /// The alive (children, guardians) of a household.
    pub(crate) fn household_members(&self, household: u32) -> (Vec<u32>, Vec<u32>) {
        let mut children = Vec::new();
        let mut guardians = Vec::new();
        for (index, member) in self.household_chain(household) {
            if !member.removed {
                if member.role == Role::Student {
                    children.push(index);
                } else {
                    guardians.push(index);
                }
            }
        }
        (children, guardians)
    }

    fn touch_person(&mut self, index: u32, stamp: u32) {
        if let Some(person) = self.people.get_mut(index as usize) {
            person.modified = stamp;
        }
    }

    fn remove_person(&mut self, index: u32, stamp: u32) {
        if let Some(person) = self.people.get_mut(index as usize) {
            person.remove(stamp);
        }
    }

    /// Ends every alive enrollment of a person; returns the classes they were in.
    fn drop_enrollments(&mut self, user: u32, stamp: u32) -> Vec<u32> {
        let alive: Vec<u32> = self
            .user_enrollments(user)
            .filter(|(_, enrollment)| !enrollment.removed)
            .map(|(index, _)| index)
            .collect();
        let mut classes = Vec::new();
        for index in alive {
            if let Some(enrollment) = self.enrollments.get_mut(index as usize) {
                enrollment.remove(stamp);
                classes.push(enrollment.class);
            }
        }
        classes
    }

    /// Guardians see their students in `agents`: when the children of a household change,
    /// so do the guardians' records; when none are left, the guardians leave too.
    fn children_changed(&mut self, household: u32, stamp: u32) {
        let (children, guardians) = self.household_members(household);
        for guardian in guardians {
            if children.is_empty() {
                self.remove_person(guardian, stamp);
            } else {
                self.touch_person(guardian, stamp);
            }
        }
    }

    fn withdraw_student(&mut self, student: u32, stamp: u32) {
        self.remove_person(student, stamp);
        self.drop_enrollments(student, stamp);
        let household = self
            .people
            .get(student as usize)
            .map_or(NONE, |p| p.household);
        self.children_changed(household, stamp);
    }

    fn new_household(&mut self, rng: &mut Rng, stamp: u32) -> u32 {
        let household = self.households.len() as u32;
        self.households.push(Household {
            first_member: NONE,
            zone: rng.below(1 << 16) as u16,
            last: rng.below(LAST_NAMES.len()) as u16,
        });
        self.add_guardian(rng, household, stamp);
        if rng.chance(0.6) {
            self.add_guardian(rng, household, stamp);
        }
        household
    }

    /// The household of a student new to the district: a younger sibling's known family
    /// (its guardians' records change), or a family new to the district.
    fn new_student_household(&mut self, rng: &mut Rng, stamp: u32) -> u32 {
        let sibling_of = if rng.chance(0.35) {
            self.pick_household(rng)
        } else {
            None
        };
        match sibling_of {
            Some(household) => {
                let (_, guardians) = self.household_members(household);
                for guardian in guardians {
                    self.touch_person(guardian, stamp);
                }
                household
            }
            None => self.new_household(rng, stamp),
        }
    }

    /// A new student: a younger sibling in a known family, or a family new to the district.
    fn enrol_new_student(&mut self, rng: &mut Rng, grade: u8, day: u32, stamp: u32) -> u32 {
        let household = self.new_student_household(rng, stamp);
        let student = self.add_student(rng, household, grade, stamp);
        self.schedule_student(rng, student, day, stamp);
        student
    }

    fn transfer_student(&mut self, rng: &mut Rng, day: u32, stamp: u32) {
        let Some(student) = self.pick_student(rng, 0) else {
            return;
        };
        let Some(person) = self.people.get(student as usize) else {
            return;
        };
        let (grade, from) = (person.grade, person.school);
        let schools = &self.band_zones[Band::of_grade(grade).index()];
        let Some(&(_, to)) = rng.pick(schools) else {
            return;
        };
        if to == from {
            return;
        }
        self.drop_enrollments(student, stamp);
        if let Some(person) = self.people.get_mut(student as usize) {
            person.school = to;
            person.modified = stamp;
        }
        self.schedule_student(rng, student, day, stamp);
    }

    /// A secondary student swaps one section of a course for another.
    fn change_schedule(&mut self, rng: &mut Rng, day: u32, stamp: u32) {
        let Some(student) = self.pick_student(rng, 6) else {
            return;
        };
        let scheduled: Vec<u32> = self
            .user_enrollments(student)
            .filter(|(_, enrollment)| {
                let homeroom = self
                    .classes
                    .get(enrollment.class as usize)
                    .is_none_or(|c| c.is_homeroom());
                !enrollment.removed && !homeroom
            })
            .map(|(index, _)| index)
            .collect();
        let Some(&dropped) = rng.pick(&scheduled) else {
            return;
        };
        let Some(old_class) = self.enrollments.get(dropped as usize).map(|e| e.class) else {
            return;
        };
        let Some(class) = self.classes.get(old_class as usize) else {
            return;
        };
        let (course, school) = (class.course, class.school);
        let alternatives: Vec<u32> = self
            .school_classes
            .get(school as usize)
            .map(|list| {
                list.iter()
                    .copied()
                    .filter(|&c| {
                        c != old_class
                            && self
                                .classes
                                .get(c as usize)
                                .is_some_and(|x| !x.removed && x.course == course)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let Some(&new_class) = rng.pick(&alternatives) else {
            return;
        };
        if let Some(enrollment) = self.enrollments.get_mut(dropped as usize) {
            enrollment.remove(stamp);
        }
        self.add_enrollment(student, new_class, EnrollmentRole::Student, day, stamp);
    }

    /// Hands a leaving teacher's classes to a new hire at the same school.
    fn replace_teacher(
        &mut self,
        rng: &mut Rng,
        classes: &[u32],
        school: u32,
        day: u32,
        stamp: u32,
    ) {
        if classes.is_empty() {
            return;
        }
        let hire = self.hire(rng, Role::Teacher, school, stamp);
        for &class in classes {
            self.add_enrollment(hire, class, EnrollmentRole::Teacher, day, stamp);
        }
    }

    fn staff_departure(&mut self, rng: &mut Rng, day: u32, stamp: u32) {
        let Some(leaver) = self.pick_staff(rng, |_| true) else {
            return;
        };
        let Some(person) = self.people.get(leaver as usize) else {
            return;
        };
        let (role, school) = (person.role, person.school);
        self.remove_person(leaver, stamp);
        let classes = self.drop_enrollments(leaver, stamp);
        let replacement = self.hire(rng, role, school, stamp);
        for class in classes {
            self.add_enrollment(replacement, class, EnrollmentRole::Teacher, day, stamp);
        }
    }

    /// A teacher becomes an assistant principal (their classes go to a new hire), or an
    /// aide becomes a teacher.
    fn staff_role_change(&mut self, rng: &mut Rng, day: u32, stamp: u32) {
        let Some(index) = self.pick_staff(rng, |p| matches!(p.role, Role::Teacher | Role::Aide))
        else {
            return;
        };
        let Some(person) = self.people.get_mut(index as usize) else {
            return;
        };
        person.modified = stamp;
        let school = person.school;
        if person.role == Role::Teacher {
            person.role = Role::SiteAdministrator;
            person.second_school = NONE;
            let classes = self.drop_enrollments(index, stamp);
            self.replace_teacher(rng, &classes, school, day, stamp);
        } else {
            person.role = Role::Teacher;
            if let Some(list) = self.school_teachers.get_mut(school as usize) {
                list.push(index);
            }
        }
    }

    /// A staff member changes family name, and with it username and email.
    fn staff_name_change(&mut self, rng: &mut Rng, stamp: u32) {
        let Some(index) = self.pick_staff(rng, |_| true) else {
            return;
        };
        let Some(person) = self.people.get(index as usize) else {
            return;
        };
        let first = person.first;
        let mut last = rng.below(LAST_NAMES.len()) as u16;
        if last == person.last {
            last = (last + 1) % LAST_NAMES.len() as u16;
        }
        let dup = self.take_name_ordinal(first, last);
        if let Some(person) = self.people.get_mut(index as usize) {
            person.last = last;
            person.dup = dup;
            person.modified = stamp;
        }
    }

    /// A household gains a guardian (one-guardian families) or loses one (two or more).
    fn guardian_link_change(&mut self, rng: &mut Rng, stamp: u32) {
        let Some(household) = self.pick_household(rng) else {
            return;
        };
        let (children, guardians) = self.household_members(household);
        if guardians.len() <= 1 {
            self.add_guardian(rng, household, stamp);
        } else if let Some(&leaving) = guardians.first() {
            self.remove_person(leaving, stamp);
        }
        for child in children {
            self.touch_person(child, stamp);
        }
    }

    fn guardian_contact_change(&mut self, rng: &mut Rng, stamp: u32) {
        let Some(household) = self.pick_household(rng) else {
            return;
        };
        let (_, guardians) = self.household_members(household);
        let Some(&guardian) = rng.pick(&guardians) else {
            return;
        };
        if let Some(person) = self.people.get_mut(guardian as usize) {
            person.contact_version = person.contact_version.wrapping_add(1);
            person.flags &= !FLAG_NO_EMAIL;
            person.modified = stamp;
        }
    }

    fn room_change(&mut self, rng: &mut Rng, stamp: u32) {
        let first = self.year_first_class as usize;
        let count = self.classes.len().saturating_sub(first);
        if count == 0 {
            return;
        }
        let index = first + rng.below(count);
        let room = 100 + rng.below(400) as u16;
        if let Some(class) = self.classes.get_mut(index)
            && !class.removed
            && class.room != room
        {
            class.room = room;
            class.modified = stamp;
        }
    }

    fn kindergarten_email_change(&mut self, stamp: u32) {
        for person in &mut self.people {
            if !person.removed
                && person.role == Role::Student
                && person.grade == KINDERGARTEN
                && person.flags & (FLAG_NO_EMAIL | FLAG_USERNAME_EMAIL) == 0
            {
                person.flags |= FLAG_USERNAME_EMAIL;
                person.modified = stamp;
            }
        }
    }

    fn rename_first_school(&mut self, stamp: u32) {
        if let Some(org) = self.orgs.get_mut(1) {
            org.name = org.name.replace("Elementary School", "STEM Academy");
            org.modified = stamp;
        }
    }

    /// End of the school year: the old year's sessions, courses, classes and enrollments
    /// go; students move up a grade (and to the next band's school), seniors graduate,
    /// a new kindergarten cohort arrives, and next year's schedule is built.
    fn rollover(&mut self, rng: &mut Rng, day: u32) {
        let stamp = Clock::starting_at(day, 2).now();
        remove_all(&mut self.sessions, stamp);
        remove_all(&mut self.courses, stamp);
        remove_all(&mut self.classes, stamp);
        remove_all(&mut self.enrollments, stamp);

        let mut graduated_households = Vec::new();
        for index in 0..self.people.len() {
            let Some(person) = self.people.get(index) else {
                continue;
            };
            if person.removed || person.role != Role::Student {
                continue;
            }
            let household = person.household;
            if person.grade >= TWELFTH_GRADE {
                self.remove_person(index as u32, stamp);
                graduated_households.push(household);
                continue;
            }
            let grade = person.grade + 1;
            let moves_band = Band::of_grade(grade) != Band::of_grade(person.grade);
            let zone = self
                .households
                .get(household as usize)
                .map_or(0, |h| h.zone);
            let school = if moves_band {
                self.school_for_zone(Band::of_grade(grade), zone)
            } else {
                person.school
            };
            if let Some(person) = self.people.get_mut(index) {
                person.grade = grade;
                person.school = school;
                person.modified = stamp;
            }
        }
        graduated_households.sort_unstable();
        graduated_households.dedup();
        for household in graduated_households {
            self.children_changed(household, stamp);
        }

        let cohort = rng.count(f64::from(self.base_students) / 13.0);
        for _ in 0..cohort {
            let household = self.new_student_household(rng, stamp);
            self.add_student(rng, household, KINDERGARTEN, stamp);
        }

        self.year += 1;
        self.build_school_year(rng, stamp, day);
    }

    /// Day of the first rollover at or after `day`.
    pub fn next_rollover_day(day: u32) -> u32 {
        if day <= FIRST_ROLLOVER_DAY {
            FIRST_ROLLOVER_DAY
        } else {
            FIRST_ROLLOVER_DAY
                + (day - FIRST_ROLLOVER_DAY).div_ceil(ROLLOVER_INTERVAL) * ROLLOVER_INTERVAL
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DistrictConfig;

    fn small(day: u32) -> District {
        let config = DistrictConfig {
            users: 3000,
            seed: 11,
            day,
            ..DistrictConfig::default()
        };
        District::generate(&config).unwrap()
    }

    #[test]
    fn advancing_equals_generating_at_the_later_day() {
        let mut advanced = small(3);
        advanced.advance(40);
        let direct = small(43);
        assert_eq!(advanced.people.len(), direct.people.len());
        assert_eq!(advanced.enrollments.len(), direct.enrollments.len());
        let same =
            advanced.people.iter().zip(&direct.people).all(|(a, b)| {
                a.modified == b.modified && a.removed == b.removed && a.last == b.last
            });
        assert!(same);
    }

    #[test]
    fn kindergarten_switches_to_username_emails_on_its_day() {
        let before = small(KINDERGARTEN_EMAIL_CHANGE_DAY - 1);
        let after = small(KINDERGARTEN_EMAIL_CHANGE_DAY);
        let switched = before
            .people
            .iter()
            .zip(&after.people)
            .filter(|(a, b)| {
                a.flags & FLAG_USERNAME_EMAIL == 0 && b.flags & FLAG_USERNAME_EMAIL != 0
            })
            .count();
        assert!(switched > 10, "{switched}");
    }

    #[test]
    fn rollover_promotes_and_graduates() {
        let before = small(FIRST_ROLLOVER_DAY - 1);
        let after = small(FIRST_ROLLOVER_DAY);
        let seniors = before
            .people
            .iter()
            .filter(|p| !p.removed && p.role == Role::Student && p.grade == 12)
            .count();
        let graduated = before
            .people
            .iter()
            .zip(&after.people)
            .filter(|(a, b)| !a.removed && a.role == Role::Student && a.grade == 12 && b.removed)
            .count();
        assert_eq!(seniors, graduated);
        assert_eq!(after.year, before.year + 1);
        assert!(
            after
                .people
                .iter()
                .any(|p| !p.removed && p.grade == KINDERGARTEN)
        );
        assert_eq!(District::next_rollover_day(336), 700);
    }
}
