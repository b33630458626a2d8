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

use crate::lenient::Read;

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
        Status::read(s).map(|r| r.value)
    }

    /// [`Status::parse`], saying whether it was `active` or `tobedeleted` as spelt.
    pub fn read(s: &str) -> Option<Read<Status>> {
        let s = crate::lenient::trim(s);
        match s {
            "active" => return Some(Read::standard(Status::Active)),
            "tobedeleted" => return Some(Read::standard(Status::ToBeDeleted)),
            _ => {}
        }
        if s.eq_ignore_ascii_case("active") {
            Some(Read::lenient(Status::Active))
        } else if ["tobedeleted", "inactive", "deleted"]
            .iter()
            .any(|d| s.eq_ignore_ascii_case(d))
        {
            Some(Read::lenient(Status::ToBeDeleted))
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

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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
            /// The standard values, in the order declared.
            pub const STANDARD: &'static [$name] = &[$($name::$variant),+];

            pub fn parse(s: &str) -> $name {
                $name::read(s).value
            }

            /// [`Self::parse`], saying whether a standard value came in its standard
            /// case (a value outside the list is kept as sent: standard).
            pub fn read(s: &str) -> Read<$name> {
                let s = $crate::lenient::trim(s);
                $(if s.eq_ignore_ascii_case($text) {
                    return Read { value: $name::$variant, standard: s == $text };
                })+
                Read::standard($name::Other(s.to_owned()))
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
    /// Values read leniently and required fields left blank (empty for a clean record).
    pub findings: Vec<Finding>,
}

/// What a reader noticed in one field of a record that it read all the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    pub kind: FindingKind,
    /// The column (CSV) or key (JSON), as the source names it.
    pub field: ShortText,
    /// The value as sent (empty for a blank one).
    pub value: ShortText,
    /// What the value was read as; empty when nothing was made of it.
    pub read_as: ShortText,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingKind {
    /// Accepted in a spelling the standard does not use: `TRUE`, `Scheduled`, `inactive`,
    /// `2026-01-02 03:04:05`.
    Lenient,
    /// A field the standard requires, empty once read (blank, missing, or unreadable —
    /// then a warning says why).
    BlankRequired,
}

impl Finding {
    pub fn lenient(field: &str, value: &str, read_as: impl std::fmt::Display) -> Finding {
        Finding {
            kind: FindingKind::Lenient,
            field: ShortText::new(field),
            value: ShortText::new(value),
            read_as: ShortText::display(read_as),
        }
    }

    /// A required field found empty; `read_as` is the default it took, if any.
    pub fn blank(field: &str, read_as: &str) -> Finding {
        Finding {
            kind: FindingKind::BlankRequired,
            field: ShortText::new(field),
            value: ShortText::default(),
            read_as: ShortText::new(read_as),
        }
    }
}

/// Text of at most [`ShortText::CAPACITY`] bytes held inline, so noting a finding on a
/// record costs no allocation; longer text is cut on a character boundary and ends in `…`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ShortText {
    len: u8,
    cut: bool,
    bytes: [u8; ShortText::CAPACITY],
}

impl Default for ShortText {
    fn default() -> Self {
        ShortText {
            len: 0,
            cut: false,
            bytes: [0; ShortText::CAPACITY],
        }
    }
}

impl ShortText {
    pub const CAPACITY: usize = 40;

    pub fn new(s: &str) -> ShortText {
        let mut t = ShortText::default();
        t.push(s);
        t
    }

    /// A value's `Display` text, written in place.
    pub fn display(value: impl std::fmt::Display) -> ShortText {
        use std::fmt::Write as _;
        let mut t = ShortText::default();
        // Writing to a `ShortText` never fails: it cuts instead.
        let _ = write!(t, "{value}");
        t
    }

    pub fn as_str(&self) -> &str {
        // Only whole characters are ever copied in.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn push(&mut self, s: &str) {
        const ELLIPSIS: &str = "…";
        if self.cut {
            return;
        }
        let used = usize::from(self.len);
        if s.len() <= Self::CAPACITY - used {
            self.bytes[used..used + s.len()].copy_from_slice(s.as_bytes());
            self.len = (used + s.len()) as u8;
            return;
        }
        // What fits, on character boundaries, with room left for the ellipsis.
        self.cut = true;
        let room = Self::CAPACITY - ELLIPSIS.len();
        let mut end = used.min(room);
        while !self.as_str().is_char_boundary(end) {
            end -= 1;
        }
        let mut keep = (room - end).min(s.len());
        while !s.is_char_boundary(keep) {
            keep -= 1;
        }
        let text_end = end + keep;
        self.bytes[end..text_end].copy_from_slice(&s.as_bytes()[..keep]);
        self.bytes[text_end..text_end + ELLIPSIS.len()].copy_from_slice(ELLIPSIS.as_bytes());
        self.len = (text_end + ELLIPSIS.len()) as u8;
    }
}

impl std::fmt::Write for ShortText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.push(s);
        Ok(())
    }
}

impl std::fmt::Display for ShortText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for ShortText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
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

/// An enrollment as a full sync's roster reads it: whose it is, of which class, in what
/// role, and its [`Base`] — read from the same `enrollments` collection as [`Enrollment`].
/// The school, `primary` and the two dates, which no roster reads, are passed over
/// unread: their values are not checked and a blank school is not noted (`inspect` reads
/// whole enrollments). A district's enrollments outnumber its people several times over,
/// and a full sync reads every one of them.
#[derive(Debug, Clone, Default)]
pub struct EnrollmentCore {
    pub base: Base,
    pub user: Option<String>,
    pub class: Option<String>,
    pub role: Option<Role>,
}

#[derive(Debug, Clone, Default)]
pub struct Demographic {
    pub base: Base,
    pub birth_date: Option<Date>,
    pub sex: Option<String>,
}

/// Anything with a [`Base`]: every record type.
pub trait Record: Sized + 'static {
    const COLLECTION: Collection;
    /// The fields the standard requires besides `sourcedId` (`enabledUser`, which always
    /// holds a value once read, is checked by the readers).
    const REQUIRED: &'static [Required<Self>] = &[];
    fn base(&self) -> &Base;
    fn base_mut(&mut self) -> &mut Base;
    fn sourced_id(&self) -> &str {
        &self.base().sourced_id
    }
}

/// A field the standard requires: what it is called, and the test of it being empty
/// once read.
pub struct Required<T> {
    pub name: FieldName,
    empty: fn(&T) -> bool,
}

impl<T> Required<T> {
    const fn new(name: FieldName, empty: fn(&T) -> bool) -> Self {
        Required { name, empty }
    }
}

/// Where a record came from, for the names its fields go by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
}

/// What a field is called in CSV 1.1, CSV 1.2, JSON 1.1 and JSON 1.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldName([&'static str; 4]);

impl FieldName {
    /// One name everywhere.
    pub const fn same(name: &'static str) -> FieldName {
        FieldName([name; 4])
    }

    /// A reference: `…SourcedId(s)` in CSV, the plain name in JSON.
    pub const fn csv_json(csv: &'static str, json: &'static str) -> FieldName {
        FieldName([csv, csv, json, json])
    }

    pub const fn each(
        csv_1_1: &'static str,
        csv_1_2: &'static str,
        json_1_1: &'static str,
        json_1_2: &'static str,
    ) -> FieldName {
        FieldName([csv_1_1, csv_1_2, json_1_1, json_1_2])
    }

    pub fn get(self, format: Format, version: Version) -> &'static str {
        let i = match (format, version) {
            (Format::Csv, Version::V1_1) => 0,
            (Format::Csv, Version::V1_2) => 1,
            (Format::Json, Version::V1_1) => 2,
            (Format::Json, Version::V1_2) => 3,
        };
        self.0[i]
    }
}

/// Notes, on the record, each required field it has empty. A record being deleted needs
/// none of them (blanks a reader noted on it are dropped). A few tests per record,
/// nothing allocated for a whole one.
pub(crate) fn note_blank_required<T: Record>(record: &mut T, format: Format, version: Version) {
    let base = record.base_mut();
    if base.status == Status::ToBeDeleted {
        if !base.findings.is_empty() {
            base.findings
                .retain(|f| f.kind != FindingKind::BlankRequired);
        }
        return;
    }
    for r in T::REQUIRED {
        if (r.empty)(record) {
            record
                .base_mut()
                .findings
                .push(Finding::blank(r.name.get(format, version), ""));
        }
    }
}

macro_rules! impl_record {
    ($($ty:ty => $coll:expr, $required:expr;)+) => {$(
        impl Record for $ty {
            const COLLECTION: Collection = $coll;
            const REQUIRED: &'static [Required<Self>] = $required;
            fn base(&self) -> &Base { &self.base }
            fn base_mut(&mut self) -> &mut Base { &mut self.base }
        }
    )+};
}

// As OneRoster 1.1 and 1.2 list them (CSV and REST agree but for names).
impl_record! {
    User => Collection::Users, &[
        Required::new(FieldName::same("username"), |u: &User| u.username.is_empty()),
        Required::new(FieldName::same("givenName"), |u: &User| u.given_name.is_empty()),
        Required::new(FieldName::same("familyName"), |u: &User| u.family_name.is_empty()),
        // 1.2 CSV: a row of roles.csv; 1.2 JSON: an entry of `roles`.
        Required::new(FieldName::each("role", "role", "role", "roles"), |u: &User| {
            u.roles.is_empty()
        }),
        Required::new(User::ORGS, |u: &User| u.orgs.is_empty()),
    ];
    Org => Collection::Orgs, &[
        Required::new(FieldName::same("name"), |o: &Org| o.name.is_empty()),
        Required::new(FieldName::same("type"), |o: &Org| o.org_type.is_none()),
    ];
    AcademicSession => Collection::AcademicSessions, &[
        Required::new(FieldName::same("title"), |s: &AcademicSession| s.title.is_empty()),
        Required::new(FieldName::same("type"), |s: &AcademicSession| s.session_type.is_none()),
        Required::new(FieldName::same("startDate"), |s: &AcademicSession| s.start_date.is_none()),
        Required::new(FieldName::same("endDate"), |s: &AcademicSession| s.end_date.is_none()),
        Required::new(FieldName::same("schoolYear"), |s: &AcademicSession| {
            s.school_year.is_none()
        }),
    ];
    Course => Collection::Courses, &[
        Required::new(FieldName::same("title"), |c: &Course| c.title.is_empty()),
        Required::new(Course::ORG, |c: &Course| c.org.is_none()),
    ];
    Class => Collection::Classes, &[
        Required::new(FieldName::same("title"), |c: &Class| c.title.is_empty()),
        Required::new(Class::COURSE, |c: &Class| c.course.is_none()),
        Required::new(FieldName::same("classType"), |c: &Class| c.class_type.is_none()),
        Required::new(Class::SCHOOL, |c: &Class| c.school.is_none()),
        Required::new(Class::TERMS, |c: &Class| c.terms.is_empty()),
    ];
    Enrollment => Collection::Enrollments, &[
        Required::new(Enrollment::CLASS, |e: &Enrollment| e.class.is_none()),
        Required::new(Enrollment::SCHOOL, |e: &Enrollment| e.school.is_none()),
        Required::new(Enrollment::USER, |e: &Enrollment| e.user.is_none()),
        Required::new(FieldName::same("role"), |e: &Enrollment| e.role.is_none()),
    ];
    EnrollmentCore => Collection::Enrollments, &[
        Required::new(Enrollment::CLASS, |e: &EnrollmentCore| e.class.is_none()),
        Required::new(Enrollment::USER, |e: &EnrollmentCore| e.user.is_none()),
        Required::new(FieldName::same("role"), |e: &EnrollmentCore| e.role.is_none()),
    ];
    Demographic => Collection::Demographics, &[];
}

/// The names of the references between records (`inspect` looks each one up).
impl User {
    /// 1.2: the orgs of the roles (roles.csv, `roles[].org`).
    pub const ORGS: FieldName =
        FieldName::each("orgSourcedIds", "orgSourcedId", "orgs", "roles.org");
    pub const PRIMARY_ORG: FieldName = FieldName::csv_json("primaryOrgSourcedId", "primaryOrg");
    pub const AGENTS: FieldName = FieldName::csv_json("agentSourcedIds", "agents");
}

impl Org {
    pub const PARENT: FieldName = FieldName::csv_json("parentSourcedId", "parent");
}

impl AcademicSession {
    pub const PARENT: FieldName = FieldName::csv_json("parentSourcedId", "parent");
}

impl Course {
    pub const ORG: FieldName = FieldName::csv_json("orgSourcedId", "org");
    pub const SCHOOL_YEAR: FieldName = FieldName::csv_json("schoolYearSourcedId", "schoolYear");
}

impl Class {
    pub const COURSE: FieldName = FieldName::csv_json("courseSourcedId", "course");
    pub const SCHOOL: FieldName = FieldName::csv_json("schoolSourcedId", "school");
    pub const TERMS: FieldName = FieldName::csv_json("termSourcedIds", "terms");
}

impl Enrollment {
    pub const CLASS: FieldName = FieldName::csv_json("classSourcedId", "class");
    pub const SCHOOL: FieldName = FieldName::csv_json("schoolSourcedId", "school");
    pub const USER: FieldName = FieldName::csv_json("userSourcedId", "user");
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
    fn values_in_another_case_or_spelling_are_read_leniently() {
        assert_eq!(
            ClassType::read("scheduled"),
            Read::standard(ClassType::Scheduled)
        );
        assert_eq!(
            ClassType::read("Scheduled"),
            Read::lenient(ClassType::Scheduled)
        );
        assert_eq!(Role::read("Teacher"), Read::lenient(Role::Teacher));
        assert_eq!(
            Role::read("districtadministrator"),
            Read::lenient(Role::DistrictAdministrator)
        );
        assert_eq!(
            Role::read("ext:coach"),
            Read::standard(Role::Other("ext:coach".into())),
            "a value outside the list is kept as sent, not coerced"
        );
        assert_eq!(Status::read("active"), Some(Read::standard(Status::Active)));
        assert_eq!(
            Status::read("tobedeleted"),
            Some(Read::standard(Status::ToBeDeleted))
        );
        for lenient in ["Active", "toBeDeleted", "inactive", "deleted"] {
            assert_eq!(
                Status::read(lenient).map(|r| r.standard),
                Some(false),
                "{lenient}"
            );
        }
        assert_eq!(Status::read("gone"), None);
    }

    #[test]
    fn short_text_is_cut_on_a_character_boundary() {
        assert_eq!(ShortText::new("TRUE").as_str(), "TRUE");
        assert!(ShortText::new("").is_empty());
        let exact = "x".repeat(ShortText::CAPACITY);
        assert_eq!(ShortText::new(&exact).as_str(), exact);
        let long = "é".repeat(40);
        let cut = ShortText::new(&long);
        assert!(cut.as_str().ends_with('…'), "{cut}");
        assert!(cut.as_str().len() <= ShortText::CAPACITY);
        assert!(cut.as_str().trim_end_matches('…').chars().all(|c| c == 'é'));
        // Written in pieces, as `Display` does.
        let ts: Timestamp = "2026-01-02T03:04:05.123456789Z".parse().unwrap();
        assert_eq!(
            ShortText::display(ts).as_str(),
            "2026-01-02T03:04:05.123456789Z"
        );
        let pieces = ShortText::display(format_args!("{}{}", "a".repeat(30), "b".repeat(30)));
        assert_eq!(
            pieces.as_str(),
            format!("{}{}…", "a".repeat(30), "b".repeat(7))
        );
    }

    #[test]
    fn blank_required_fields_are_noted_by_the_name_each_format_uses() {
        let mut e = Enrollment {
            role: Some(Role::Student),
            user: Some("u1".into()),
            ..Enrollment::default()
        };
        note_blank_required(&mut e, Format::Csv, Version::V1_1);
        let names: Vec<&str> = e.base.findings.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(names, ["classSourcedId", "schoolSourcedId"]);
        assert!(
            e.base
                .findings
                .iter()
                .all(|f| f.kind == FindingKind::BlankRequired)
        );

        let mut u = User {
            username: "k".into(),
            given_name: "Kim".into(),
            family_name: "Lee".into(),
            ..User::default()
        };
        note_blank_required(&mut u, Format::Json, Version::V1_2);
        let names: Vec<&str> = u.base.findings.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(names, ["roles", "roles.org"]);

        // A record being deleted needs nothing, and loses the blanks noted on it.
        u.base.findings.clear();
        u.base.findings.push(Finding::blank("enabledUser", "true"));
        u.base
            .findings
            .push(Finding::lenient("role", "Teacher", "teacher"));
        u.base.status = Status::ToBeDeleted;
        note_blank_required(&mut u, Format::Csv, Version::V1_1);
        assert_eq!(u.base.findings.len(), 1);
        assert_eq!(u.base.findings[0].kind, FindingKind::Lenient);
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
