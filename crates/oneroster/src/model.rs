//! One normalised shape for OneRoster 1.1 and 1.2 records.
//!
//! REST (either version) and CSV packages all produce these types, so nothing downstream
//! cares where a record came from. The shape is lenient on purpose: unknown enum values
//! are kept as [`Role::Other`] and friends, references keep only their `sourcedId`, unknown
//! fields and `metadata` are kept raw, and values that could not be read are reported in
//! [`Base::warnings`] instead of failing the page.

use jiff::Timestamp;
use jiff::civil::Date;
use serde_json::value::RawValue;

/// The rostering collections a sync reads, in the order a pull wants them: the ones
/// others refer to first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Collection {
    Orgs,
    AcademicSessions,
    Courses,
    Classes,
    Users,
    Enrollments,
    Demographics,
}

impl Collection {
    /// Every collection a full pull reads (demographics are optional and not included).
    pub const ROSTER: [Collection; 6] = [
        Collection::Orgs,
        Collection::AcademicSessions,
        Collection::Courses,
        Collection::Classes,
        Collection::Users,
        Collection::Enrollments,
    ];

    /// The REST endpoint and JSON envelope key (`/users` → `{"users":[…]}`).
    pub fn endpoint(self) -> &'static str {
        match self {
            Collection::Orgs => "orgs",
            Collection::AcademicSessions => "academicSessions",
            Collection::Courses => "courses",
            Collection::Classes => "classes",
            Collection::Users => "users",
            Collection::Enrollments => "enrollments",
            Collection::Demographics => "demographics",
        }
    }

    /// The file in a CSV package.
    pub fn csv_file(self) -> &'static str {
        match self {
            Collection::Orgs => "orgs.csv",
            Collection::AcademicSessions => "academicSessions.csv",
            Collection::Courses => "courses.csv",
            Collection::Classes => "classes.csv",
            Collection::Users => "users.csv",
            Collection::Enrollments => "enrollments.csv",
            Collection::Demographics => "demographics.csv",
        }
    }

    /// The singular key of a single-object response (`/users/1` → `{"user":{…}}`).
    pub fn singular(self) -> &'static str {
        match self {
            Collection::Orgs => "org",
            Collection::AcademicSessions => "academicSession",
            Collection::Courses => "course",
            Collection::Classes => "class",
            Collection::Users => "user",
            Collection::Enrollments => "enrollment",
            Collection::Demographics => "demographics",
        }
    }
}

impl std::fmt::Display for Collection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.endpoint())
    }
}

/// OneRoster versions this crate speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Version {
    #[default]
    V1_1,
    V1_2,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V1_1 => "1.1",
            Version::V1_2 => "1.2",
        }
    }

    /// `1.1`, `v1p1`, `1.2`, `v1p2` (and `1.0`, read as 1.1: the shapes are compatible).
    pub fn parse(s: &str) -> Option<Version> {
        match s.trim().to_ascii_lowercase().as_str() {
            "1.0" | "1.1" | "v1p1" | "v1p0" => Some(Version::V1_1),
            "1.2" | "v1p2" => Some(Version::V1_2),
            _ => None,
        }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `active` or not. `inactive` and `deleted`, seen in the wild, mean `tobedeleted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Status {
    #[default]
    Active,
    ToBeDeleted,
}

impl Status {
    pub fn parse(s: &str) -> Option<Status> {
        let s = crate::lenient::trim(s);
        if s.eq_ignore_ascii_case("active") {
            Some(Status::Active)
        } else if ["tobedeleted", "inactive", "deleted"]
            .iter()
            .any(|d| s.eq_ignore_ascii_case(d))
        {
            Some(Status::ToBeDeleted)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::ToBeDeleted => "tobedeleted",
        }
    }
}

/// Declares a string enum that keeps values it does not know (`ext:…` or a vendor's own)
/// instead of failing. Matching is case-insensitive; `as_str` gives the standard spelling.
macro_rules! open_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)+
            /// A value outside the standard list, kept as sent.
            Other(String),
        }

        impl $name {
            pub fn parse(s: &str) -> $name {
                let s = $crate::lenient::trim(s);
                $(if s.eq_ignore_ascii_case($text) { return $name::$variant; })+
                $name::Other(s.to_owned())
            }

            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)+
                    $name::Other(s) => s,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

open_enum! {
    /// A person's role, 1.1 and 1.2 values together.
    Role {
        Administrator = "administrator",
        Aide = "aide",
        Counselor = "counselor",
        DistrictAdministrator = "districtAdministrator",
        Guardian = "guardian",
        Parent = "parent",
        Principal = "principal",
        Proctor = "proctor",
        Relative = "relative",
        SiteAdministrator = "siteAdministrator",
        Student = "student",
        SystemAdministrator = "systemAdministrator",
        Teacher = "teacher",
    }
}

open_enum! {
    /// `primary` or `secondary` in a 1.2 role list.
    RoleType { Primary = "primary", Secondary = "secondary" }
}

open_enum! {
    OrgType {
        District = "district",
        School = "school",
        Department = "department",
        Local = "local",
        State = "state",
        National = "national",
    }
}

open_enum! {
    ClassType { Homeroom = "homeroom", Scheduled = "scheduled" }
}

open_enum! {
    SessionType {
        SchoolYear = "schoolYear",
        Semester = "semester",
        Term = "term",
        GradingPeriod = "gradingPeriod",
    }
}

/// Fields every record has, plus what the lenient reader kept aside.
#[derive(Debug, Clone, Default)]
pub struct Base {
    pub sourced_id: String,
    pub status: Status,
    pub date_last_modified: Option<Timestamp>,
    /// `metadata`, as sent.
    pub metadata: Option<Box<RawValue>>,
    /// Fields this model does not know, as sent (CSV cells become JSON strings).
    pub extensions: Vec<(String, Box<RawValue>)>,
    /// Values that could not be read, e.g. `enabledUser: "maybe" is not a boolean`.
    pub warnings: Vec<String>,
}

/// One of a user's roles. 1.1's single `role` + `orgs` becomes one of these per org, the
/// first primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleAssignment {
    pub role_type: RoleType,
    pub role: Role,
    pub org: Option<String>,
    pub user_profile: Option<String>,
    pub begin_date: Option<Date>,
    pub end_date: Option<Date>,
}

/// An entry of `userIds`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserId {
    pub kind: String,
    pub identifier: String,
}

#[derive(Debug, Clone)]
pub struct User {
    pub base: Base,
    pub username: String,
    pub user_ids: Vec<UserId>,
    pub enabled_user: bool,
    pub given_name: String,
    pub family_name: String,
    pub middle_name: Option<String>,
    pub preferred_first_name: Option<String>,
    pub preferred_middle_name: Option<String>,
    pub preferred_last_name: Option<String>,
    pub pronouns: Option<String>,
    /// Every role; the primary one first when the source says which.
    pub roles: Vec<RoleAssignment>,
    pub primary_org: Option<String>,
    /// Every org the person belongs to (1.1 `orgs`, or the orgs of the 1.2 roles).
    pub orgs: Vec<String>,
    pub identifier: Option<String>,
    pub user_master_identifier: Option<String>,
    pub email: Option<String>,
    pub sms: Option<String>,
    pub phone: Option<String>,
    pub agents: Vec<String>,
    pub grades: Vec<String>,
}

impl Default for User {
    fn default() -> Self {
        User {
            base: Base::default(),
            username: String::new(),
            user_ids: Vec::new(),
            // The standard's default: a user is enabled unless the source says otherwise.
            enabled_user: true,
            given_name: String::new(),
            family_name: String::new(),
            middle_name: None,
            preferred_first_name: None,
            preferred_middle_name: None,
            preferred_last_name: None,
            pronouns: None,
            roles: Vec::new(),
            primary_org: None,
            orgs: Vec::new(),
            identifier: None,
            user_master_identifier: None,
            email: None,
            sms: None,
            phone: None,
            agents: Vec::new(),
            grades: Vec::new(),
        }
    }
}

impl User {
    /// The primary role, else the first one.
    pub fn primary_role(&self) -> Option<&Role> {
        self.roles
            .iter()
            .find(|r| r.role_type == RoleType::Primary)
            .or_else(|| self.roles.first())
            .map(|r| &r.role)
    }

    /// Brings 1.1 (`role` + `orgs`) and 1.2 (`roles` + `primaryOrg`) to one shape. Called
    /// by every reader once a record is complete.
    pub(crate) fn normalise(&mut self, legacy_role: Option<Role>) {
        if self.roles.is_empty()
            && let Some(role) = legacy_role
        {
            self.set_legacy_roles(role);
        }
        self.finish_roles();
    }

    /// 1.1's single `role` becomes one role per org (the primary org's, else the first,
    /// primary), written over whatever `roles` held so a reused record does not
    /// allocate again.
    pub(crate) fn set_legacy_roles(&mut self, role: Role) {
        let n = self.orgs.len().max(1);
        // One primary: the primary org's first place in the list, else the first org.
        let primary_index = self
            .primary_org
            .as_ref()
            .and_then(|p| self.orgs.iter().position(|o| o == p))
            .unwrap_or(0);
        for i in 0..n {
            let org = self.orgs.get(i).or(self.primary_org.as_ref());
            let is_primary = i == primary_index;
            let role_type = if is_primary {
                RoleType::Primary
            } else {
                RoleType::Secondary
            };
            match self.roles.get_mut(i) {
                Some(r) => {
                    r.role_type = role_type;
                    r.role.clone_from(&role);
                    fill_opt(&mut r.org, org.map(String::as_str));
                    r.user_profile = None;
                    r.begin_date = None;
                    r.end_date = None;
                }
                None => self.roles.push(RoleAssignment {
                    role_type,
                    role: role.clone(),
                    org: org.cloned(),
                    user_profile: None,
                    begin_date: None,
                    end_date: None,
                }),
            }
        }
        self.roles.truncate(n);
    }

    /// Primary role first; every role's org in `orgs`; a primary org when none was given.
    pub(crate) fn finish_roles(&mut self) {
        if !self
            .roles
            .is_sorted_by_key(|r| u8::from(r.role_type != RoleType::Primary))
        {
            self.roles
                .sort_by_key(|r| u8::from(r.role_type != RoleType::Primary));
        }
        for r in &self.roles {
            if let Some(org) = &r.org
                && !self.orgs.contains(org)
            {
                self.orgs.push(org.clone());
            }
        }
        if self.primary_org.is_none() {
            self.primary_org = self
                .roles
                .first()
                .and_then(|r| r.org.clone())
                .or_else(|| self.orgs.first().cloned());
        }
    }
}

/// Writes `src` into `dst`, reusing the string already there.
pub(crate) fn fill_opt(dst: &mut Option<String>, src: Option<&str>) {
    match (dst.as_mut(), src) {
        (Some(d), Some(s)) => {
            d.clear();
            d.push_str(s);
        }
        (None, Some(s)) => *dst = Some(s.to_owned()),
        (_, None) => *dst = None,
    }
}

#[derive(Debug, Clone, Default)]
pub struct Org {
    pub base: Base,
    pub name: String,
    pub org_type: Option<OrgType>,
    pub identifier: Option<String>,
    pub parent: Option<String>,
    pub children: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct AcademicSession {
    pub base: Base,
    pub title: String,
    pub session_type: Option<SessionType>,
    pub start_date: Option<Date>,
    pub end_date: Option<Date>,
    pub parent: Option<String>,
    pub children: Vec<String>,
    pub school_year: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Course {
    pub base: Base,
    pub title: String,
    pub course_code: Option<String>,
    pub school_year: Option<String>,
    pub grades: Vec<String>,
    pub subjects: Vec<String>,
    pub subject_codes: Vec<String>,
    pub org: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Class {
    pub base: Base,
    pub title: String,
    pub class_code: Option<String>,
    pub class_type: Option<ClassType>,
    pub location: Option<String>,
    pub grades: Vec<String>,
    pub subjects: Vec<String>,
    pub subject_codes: Vec<String>,
    pub course: Option<String>,
    pub school: Option<String>,
    pub terms: Vec<String>,
    pub periods: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Enrollment {
    pub base: Base,
    pub user: Option<String>,
    pub class: Option<String>,
    pub school: Option<String>,
    pub role: Option<Role>,
    pub primary: Option<bool>,
    pub begin_date: Option<Date>,
    /// Exclusive in 1.2.
    pub end_date: Option<Date>,
}

#[derive(Debug, Clone, Default)]
pub struct Demographic {
    pub base: Base,
    pub birth_date: Option<Date>,
    pub sex: Option<String>,
}

/// Anything with a [`Base`]: every record type.
pub trait Record {
    const COLLECTION: Collection;
    fn base(&self) -> &Base;
    fn base_mut(&mut self) -> &mut Base;
    fn sourced_id(&self) -> &str {
        &self.base().sourced_id
    }
}

macro_rules! impl_record {
    ($($ty:ty => $coll:expr),+ $(,)?) => {$(
        impl Record for $ty {
            const COLLECTION: Collection = $coll;
            fn base(&self) -> &Base { &self.base }
            fn base_mut(&mut self) -> &mut Base { &mut self.base }
        }
    )+};
}

impl_record! {
    User => Collection::Users,
    Org => Collection::Orgs,
    AcademicSession => Collection::AcademicSessions,
    Course => Collection::Courses,
    Class => Collection::Classes,
    Enrollment => Collection::Enrollments,
    Demographic => Collection::Demographics,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_enum_values_are_kept() {
        assert_eq!(Role::parse("Student"), Role::Student);
        assert_eq!(
            Role::parse("districtadministrator"),
            Role::DistrictAdministrator
        );
        assert_eq!(
            Role::parse("ext:coach"),
            Role::Other("ext:coach".to_owned())
        );
        assert_eq!(Role::parse("ext:coach").as_str(), "ext:coach");
        assert_eq!(Status::parse("inactive"), Some(Status::ToBeDeleted));
        assert_eq!(Status::parse("Active"), Some(Status::Active));
        assert_eq!(Status::parse("gone"), None);
    }

    #[test]
    fn legacy_role_with_orgs_becomes_one_role_per_org() {
        let mut u = User {
            orgs: vec!["s1".into(), "s2".into()],
            ..User::default()
        };
        u.normalise(Some(Role::Teacher));
        assert_eq!(u.roles.len(), 2);
        assert_eq!(u.roles[0].role_type, RoleType::Primary);
        assert_eq!(u.roles[0].org.as_deref(), Some("s1"));
        assert_eq!(u.roles[1].role_type, RoleType::Secondary);
        assert_eq!(u.primary_org.as_deref(), Some("s1"));
        assert_eq!(u.primary_role(), Some(&Role::Teacher));
    }

    #[test]
    fn v12_roles_fill_orgs_and_primary_org() {
        let mut u = User {
            roles: vec![
                RoleAssignment {
                    role_type: RoleType::Secondary,
                    role: Role::Aide,
                    org: Some("s2".into()),
                    user_profile: None,
                    begin_date: None,
                    end_date: None,
                },
                RoleAssignment {
                    role_type: RoleType::Primary,
                    role: Role::Teacher,
                    org: Some("s1".into()),
                    user_profile: None,
                    begin_date: None,
                    end_date: None,
                },
            ],
            ..User::default()
        };
        u.normalise(None);
        assert_eq!(u.primary_role(), Some(&Role::Teacher));
        assert_eq!(u.roles[0].role, Role::Teacher);
        assert_eq!(u.orgs, ["s1", "s2"]);
        assert_eq!(u.primary_org.as_deref(), Some("s1"));
    }
}
