//! Rendering the compact model as OneRoster records: JSON objects (1.1 and 1.2 shapes),
//! field values for `filter`/`sort`, and sourcedIds.
//!
//! JSON is written straight into a byte buffer, one record at a time, so a page of 50 000
//! users costs one buffer and no intermediate `serde_json::Value`. The `fields` selection is
//! applied as each key is written.

use crate::calendar::{date_of_day, session_dates, write_stamp};
use crate::generate::catalogue;
use crate::model::{Band, District, EnrollmentRole, NONE, Role, SessionKind, grade_code};
use crate::names::subject_for;

/// Which OneRoster version's wire shapes to speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Version {
    #[serde(rename = "1.1")]
    V1p1,
    #[serde(rename = "1.2")]
    V1p2,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V1p1 => "1.1",
            Version::V1p2 => "1.2",
        }
    }
}

impl std::str::FromStr for Version {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "1.1" | "v1p1" => Ok(Version::V1p1),
            "1.2" | "v1p2" => Ok(Version::V1p2),
            other => Err(format!(
                "unknown OneRoster version `{other}`: use 1.1 or 1.2"
            )),
        }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The OneRoster base types the simulator holds (`/schools` is a view of orgs, `/students`
/// of users, `/terms` and `/gradingPeriods` of academic sessions).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub enum Collection {
    Orgs,
    AcademicSessions,
    Courses,
    Classes,
    Users,
    Enrollments,
}

impl Collection {
    pub const ALL: [Collection; 6] = [
        Collection::Orgs,
        Collection::AcademicSessions,
        Collection::Courses,
        Collection::Classes,
        Collection::Users,
        Collection::Enrollments,
    ];

    /// The same collection in the protocol crate, which holds its wire names.
    pub fn wire(self) -> oneroster::Collection {
        match self {
            Collection::Orgs => oneroster::Collection::Orgs,
            Collection::AcademicSessions => oneroster::Collection::AcademicSessions,
            Collection::Courses => oneroster::Collection::Courses,
            Collection::Classes => oneroster::Collection::Classes,
            Collection::Users => oneroster::Collection::Users,
            Collection::Enrollments => oneroster::Collection::Enrollments,
        }
    }

    /// The envelope key of a list response and the URL segment.
    pub fn plural(self) -> &'static str {
        self.wire().endpoint()
    }

    /// The envelope key of a single-object response, and the GUIDRef `type`.
    pub fn singular(self) -> &'static str {
        self.wire().singular()
    }

    fn id_prefix(self) -> &'static str {
        match self {
            Collection::Orgs => "org-",
            Collection::AcademicSessions => "as-",
            Collection::Courses => "crs-",
            Collection::Classes => "cls-",
            Collection::Users => "usr-",
            Collection::Enrollments => "enr-",
        }
    }

    /// The sourcedId of record `index`.
    pub fn sourced_id(self, index: u32) -> String {
        format!("{}{index}", self.id_prefix())
    }

    /// The index behind a sourcedId of this collection, if it has the right shape.
    pub fn parse_sourced_id(self, id: &str) -> Option<u32> {
        let digits = id.strip_prefix(self.id_prefix())?;
        if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
            return None;
        }
        digits.parse().ok()
    }
}

/// A field's value for filtering and sorting.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FieldValue {
    Text(String),
    Many(Vec<String>),
    /// A `dateLastModified`, compared as an instant.
    Stamp(u32),
    Missing,
}

/// Everything needed to render records of one district for one version.
#[derive(Clone, Copy)]
pub(crate) struct Renderer<'a> {
    pub district: &'a District,
    pub version: Version,
    /// The API root path hrefs hang off, e.g. `/campus/oneroster/APP/ims/oneroster/v1p1`.
    pub href_base: &'a str,
}

/// Writes one JSON object key by key, skipping keys outside a `fields` selection.
pub(crate) struct JsonObject<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
    fields: Option<&'a [String]>,
}

pub(crate) fn write_json_string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    for &byte in text.as_bytes() {
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(byte >> 4)]);
                out.push(HEX[usize::from(byte & 0xf)]);
            }
            _ => out.push(byte),
        }
    }
    out.push(b'"');
}

impl<'a> JsonObject<'a> {
    pub(crate) fn open(out: &'a mut Vec<u8>, fields: Option<&'a [String]>) -> Self {
        out.push(b'{');
        JsonObject {
            out,
            first: true,
            fields,
        }
    }

    pub(crate) fn close(self) {
        self.out.push(b'}');
    }

    fn key(&mut self, name: &str) -> bool {
        if let Some(fields) = self.fields
            && !fields.iter().any(|f| f == name)
        {
            return false;
        }
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        write_json_string(self.out, name);
        self.out.push(b':');
        true
    }

    fn str(&mut self, name: &str, value: &str) {
        if self.key(name) {
            write_json_string(self.out, value);
        }
    }

    fn stamp(&mut self, name: &str, stamp: u32) {
        if self.key(name) {
            self.out.push(b'"');
            write_stamp(self.out, stamp);
            self.out.push(b'"');
        }
    }

    /// 1.1 servers send JSON booleans, 1.2 the strings "true"/"false".
    fn boolean(&mut self, name: &str, value: bool, version: Version) {
        if self.key(name) {
            let text: &[u8] = match (version, value) {
                (Version::V1p1, true) => b"true",
                (Version::V1p1, false) => b"false",
                (Version::V1p2, true) => b"\"true\"",
                (Version::V1p2, false) => b"\"false\"",
            };
            self.out.extend_from_slice(text);
        }
    }

    fn strings<'s>(&mut self, name: &str, values: impl IntoIterator<Item = &'s str>) {
        if self.key(name) {
            self.out.push(b'[');
            for (position, value) in values.into_iter().enumerate() {
                if position > 0 {
                    self.out.push(b',');
                }
                write_json_string(self.out, value);
            }
            self.out.push(b']');
        }
    }

    fn null(&mut self, name: &str) {
        if self.key(name) {
            self.out.extend_from_slice(b"null");
        }
    }
}

impl Renderer<'_> {
    fn write_ref(&self, out: &mut Vec<u8>, collection: Collection, index: u32) {
        let id = collection.sourced_id(index);
        out.extend_from_slice(b"{\"href\":");
        write_json_string(
            out,
            &format!("{}/{}/{id}", self.href_base, collection.plural()),
        );
        out.extend_from_slice(b",\"sourcedId\":");
        write_json_string(out, &id);
        out.extend_from_slice(b",\"type\":");
        write_json_string(out, collection.singular());
        out.push(b'}');
    }

    fn reference(
        &self,
        object: &mut JsonObject<'_>,
        name: &str,
        collection: Collection,
        index: u32,
    ) {
        if object.key(name) {
            self.write_ref(object.out, collection, index);
        }
    }

    fn references(
        &self,
        object: &mut JsonObject<'_>,
        name: &str,
        collection: Collection,
        indexes: &[u32],
    ) {
        if object.key(name) {
            object.out.push(b'[');
            for (position, &index) in indexes.iter().enumerate() {
                if position > 0 {
                    object.out.push(b',');
                }
                self.write_ref(object.out, collection, index);
            }
            object.out.push(b']');
        }
    }

    /// Appends record `index` of `collection` as a JSON object.
    pub(crate) fn write_json(
        &self,
        out: &mut Vec<u8>,
        collection: Collection,
        index: u32,
        fields: Option<&[String]>,
    ) {
        let mut object = JsonObject::open(out, fields);
        if let Some((removed, modified)) = record_state(self.district, collection, index) {
            object.str("sourcedId", &collection.sourced_id(index));
            object.str("status", if removed { "tobedeleted" } else { "active" });
            object.stamp("dateLastModified", modified);
            match collection {
                Collection::Orgs => self.org_json(&mut object, index),
                Collection::AcademicSessions => self.session_json(&mut object, index),
                Collection::Courses => self.course_json(&mut object, index),
                Collection::Classes => self.class_json(&mut object, index),
                Collection::Users => self.user_json(&mut object, index),
                Collection::Enrollments => self.enrollment_json(&mut object, index),
            }
        }
        object.close();
    }

    fn org_json(&self, object: &mut JsonObject<'_>, index: u32) {
        let d = self.district;
        let Some(org) = d.orgs.get(index as usize) else {
            return;
        };
        object.str("name", &org.name);
        object.str(
            "type",
            if org.band.is_some() {
                "school"
            } else {
                "district"
            },
        );
        object.str("identifier", &org_identifier(org.number));
        if org.band.is_some() {
            self.reference(object, "parent", Collection::Orgs, 0);
            self.references(object, "children", Collection::Orgs, &[]);
        } else {
            object.null("parent");
            let schools: Vec<u32> = (1..d.orgs.len() as u32).collect();
            self.references(object, "children", Collection::Orgs, &schools);
        }
    }

    fn session_json(&self, object: &mut JsonObject<'_>, index: u32) {
        let d = self.district;
        let Some(session) = d.sessions.get(index as usize) else {
            return;
        };
        object.str(
            "title",
            &session_title(session.kind, session.part, session.year),
        );
        object.str("type", session_type(session.kind));
        let (start, end) = session_dates(session.year, session.kind, session.part);
        object.str("startDate", &start);
        object.str("endDate", &end);
        if session.parent == NONE {
            object.null("parent");
        } else {
            self.reference(
                object,
                "parent",
                Collection::AcademicSessions,
                session.parent,
            );
        }
        let children = session_children(d, index);
        self.references(object, "children", Collection::AcademicSessions, &children);
        object.str("schoolYear", &session.year.to_string());
    }

    fn course_json(&self, object: &mut JsonObject<'_>, index: u32) {
        let d = self.district;
        let Some(course) = d.courses.get(index as usize) else {
            return;
        };
        let (code, title) = course_code_title(d, course.school, course.catalog, course.grade);
        object.str("title", &title);
        self.reference(
            object,
            "schoolYear",
            Collection::AcademicSessions,
            course.year_session,
        );
        object.str("courseCode", &code);
        object.strings("grades", [grade_code(course.grade)]);
        object.strings(
            "subjects",
            [course_subject(d, course.school, course.catalog)],
        );
        self.reference(object, "org", Collection::Orgs, course.school);
    }

    fn class_json(&self, object: &mut JsonObject<'_>, index: u32) {
        let d = self.district;
        let Some(class) = d.classes.get(index as usize) else {
            return;
        };
        let texts = class_texts(d, index);
        object.str("title", &texts.title);
        object.str("classCode", &texts.code);
        object.str(
            "classType",
            if class.is_homeroom() {
                "homeroom"
            } else {
                "scheduled"
            },
        );
        object.str("location", &texts.location);
        object.strings("grades", [grade_code(class.grade)]);
        object.strings("subjects", [course_subject(d, class.school, class.catalog)]);
        self.reference(object, "course", Collection::Courses, class.course);
        self.reference(object, "school", Collection::Orgs, class.school);
        self.references(
            object,
            "terms",
            Collection::AcademicSessions,
            &class_terms(d, index),
        );
        object.strings("periods", [texts.period.as_str()]);
    }

    fn user_json(&self, object: &mut JsonObject<'_>, index: u32) {
        let d = self.district;
        let Some(person) = d.people.get(index as usize) else {
            return;
        };
        let username = d.username(person);
        let identifier = d.identifier(person);
        if self.version == Version::V1p2 {
            object.str("userMasterIdentifier", &identifier);
        }
        object.str("username", &username);
        if object.key("userIds") {
            if person.role.is_guardian() {
                object.out.extend_from_slice(b"[]");
            } else {
                object
                    .out
                    .extend_from_slice(b"[{\"type\":\"LDAP\",\"identifier\":");
                write_json_string(object.out, &username);
                object.out.extend_from_slice(b"}]");
            }
        }
        object.boolean("enabledUser", true, self.version);
        object.str("givenName", d.first_name(person));
        object.str("familyName", d.last_name(person));
        object.str("middleName", d.middle_name(person));
        let orgs = d.person_orgs(person);
        match self.version {
            Version::V1p1 => {
                object.str("role", person.role.v1p1());
            }
            Version::V1p2 => {
                if let Some(preferred) = d.preferred_first_name(person) {
                    object.str("preferredFirstName", preferred);
                }
                if let Some(pronouns) = d.pronouns(person) {
                    object.str("pronouns", pronouns);
                }
                if object.key("roles") {
                    object.out.push(b'[');
                    for (position, &org) in orgs.iter().enumerate() {
                        if position > 0 {
                            object.out.push(b',');
                        }
                        object.out.extend_from_slice(b"{\"roleType\":");
                        write_json_string(
                            object.out,
                            if position == 0 {
                                "primary"
                            } else {
                                "secondary"
                            },
                        );
                        object.out.extend_from_slice(b",\"role\":");
                        write_json_string(object.out, person.role.v1p2());
                        object.out.extend_from_slice(b",\"org\":");
                        self.write_ref(object.out, Collection::Orgs, org);
                        object.out.push(b'}');
                    }
                    object.out.push(b']');
                }
                object.strings("userProfiles", []);
                self.reference(object, "primaryOrg", Collection::Orgs, person.school);
            }
        }
        object.str("identifier", &identifier);
        object.str("email", d.email(person).as_deref().unwrap_or(""));
        object.str("sms", "");
        object.str("phone", d.phone(person).as_deref().unwrap_or(""));
        self.references(object, "agents", Collection::Users, &d.agents(index));
        if self.version == Version::V1p1 {
            self.references(object, "orgs", Collection::Orgs, &orgs);
        }
        if person.role == Role::Student {
            object.strings("grades", [grade_code(person.grade)]);
        } else {
            object.strings("grades", []);
        }
    }

    fn enrollment_json(&self, object: &mut JsonObject<'_>, index: u32) {
        let d = self.district;
        let Some(enrollment) = d.enrollments.get(index as usize) else {
            return;
        };
        object.str("role", enrollment.role.as_str());
        object.boolean("primary", enrollment.primary, self.version);
        self.reference(object, "user", Collection::Users, enrollment.user);
        self.reference(object, "class", Collection::Classes, enrollment.class);
        let school = d
            .classes
            .get(enrollment.class as usize)
            .map_or(0, |c| c.school);
        self.reference(object, "school", Collection::Orgs, school);
        let (begin, end) = enrollment_dates(d, index);
        object.str("beginDate", &begin);
        object.str("endDate", &end);
    }

    /// A field's value for `filter` and `sort`; `None` if the field is unknown here.
    pub(crate) fn field(
        &self,
        collection: Collection,
        index: u32,
        name: &str,
    ) -> Option<FieldValue> {
        let d = self.district;
        let (removed, modified) = record_state(d, collection, index)?;
        let id_of = |c: Collection, i: u32| FieldValue::Text(c.sourced_id(i));
        let ids_of = |c: Collection, indexes: Vec<u32>| {
            FieldValue::Many(indexes.into_iter().map(|i| c.sourced_id(i)).collect())
        };
        let text = |s: &str| FieldValue::Text(s.to_owned());
        match name {
            "sourcedId" => return Some(id_of(collection, index)),
            "status" => return Some(text(if removed { "tobedeleted" } else { "active" })),
            "dateLastModified" => return Some(FieldValue::Stamp(modified)),
            _ => {}
        }
        let value = match collection {
            Collection::Orgs => {
                let org = d.orgs.get(index as usize)?;
                match name {
                    "name" => text(&org.name),
                    "type" => text(if org.band.is_some() {
                        "school"
                    } else {
                        "district"
                    }),
                    "identifier" => FieldValue::Text(org_identifier(org.number)),
                    "parent.sourcedId" | "parent" => {
                        if org.band.is_some() {
                            id_of(Collection::Orgs, 0)
                        } else {
                            FieldValue::Missing
                        }
                    }
                    _ => return None,
                }
            }
            Collection::AcademicSessions => {
                let session = d.sessions.get(index as usize)?;
                let (start, end) = session_dates(session.year, session.kind, session.part);
                match name {
                    "title" => {
                        FieldValue::Text(session_title(session.kind, session.part, session.year))
                    }
                    "type" => text(session_type(session.kind)),
                    "startDate" => FieldValue::Text(start),
                    "endDate" => FieldValue::Text(end),
                    "schoolYear" => FieldValue::Text(session.year.to_string()),
                    "parent.sourcedId" | "parent" if session.parent != NONE => {
                        id_of(Collection::AcademicSessions, session.parent)
                    }
                    "parent.sourcedId" | "parent" => FieldValue::Missing,
                    _ => return None,
                }
            }
            Collection::Courses => {
                let course = d.courses.get(index as usize)?;
                let (code, title) =
                    course_code_title(d, course.school, course.catalog, course.grade);
                match name {
                    "title" => FieldValue::Text(title),
                    "courseCode" => FieldValue::Text(code),
                    "grades" => FieldValue::Many(vec![grade_code(course.grade).to_owned()]),
                    "subjects" => text(course_subject(d, course.school, course.catalog)),
                    "schoolYear.sourcedId" | "schoolYear" => {
                        id_of(Collection::AcademicSessions, course.year_session)
                    }
                    "org.sourcedId" | "org" => id_of(Collection::Orgs, course.school),
                    _ => return None,
                }
            }
            Collection::Classes => {
                let class = d.classes.get(index as usize)?;
                let texts = class_texts(d, index);
                match name {
                    "title" => FieldValue::Text(texts.title),
                    "classCode" => FieldValue::Text(texts.code),
                    "classType" => text(if class.is_homeroom() {
                        "homeroom"
                    } else {
                        "scheduled"
                    }),
                    "location" => FieldValue::Text(texts.location),
                    "grades" => FieldValue::Many(vec![grade_code(class.grade).to_owned()]),
                    "periods" => FieldValue::Many(vec![texts.period]),
                    "course.sourcedId" | "course" => id_of(Collection::Courses, class.course),
                    "school.sourcedId" | "school" => id_of(Collection::Orgs, class.school),
                    "terms.sourcedId" | "terms" => {
                        ids_of(Collection::AcademicSessions, class_terms(d, index))
                    }
                    _ => return None,
                }
            }
            Collection::Users => {
                let person = d.people.get(index as usize)?;
                match name {
                    "username" => FieldValue::Text(d.username(person)),
                    "givenName" => text(d.first_name(person)),
                    "familyName" => text(d.last_name(person)),
                    "middleName" => text(d.middle_name(person)),
                    "identifier" | "userMasterIdentifier" => FieldValue::Text(d.identifier(person)),
                    "email" => d
                        .email(person)
                        .map_or(FieldValue::Missing, FieldValue::Text),
                    "phone" => d
                        .phone(person)
                        .map_or(FieldValue::Missing, FieldValue::Text),
                    "sms" => FieldValue::Missing,
                    "enabledUser" => text("true"),
                    "role" => text(match self.version {
                        Version::V1p1 => person.role.v1p1(),
                        Version::V1p2 => person.role.v1p2(),
                    }),
                    "roles.role" => text(person.role.v1p2()),
                    "preferredFirstName" => d
                        .preferred_first_name(person)
                        .map_or(FieldValue::Missing, text),
                    "pronouns" => d.pronouns(person).map_or(FieldValue::Missing, text),
                    "grades" if person.role == Role::Student => {
                        FieldValue::Many(vec![grade_code(person.grade).to_owned()])
                    }
                    "grades" => FieldValue::Many(Vec::new()),
                    "orgs.sourcedId" | "orgs" | "roles.org.sourcedId" => {
                        ids_of(Collection::Orgs, d.person_orgs(person))
                    }
                    "primaryOrg.sourcedId" | "primaryOrg" => id_of(Collection::Orgs, person.school),
                    "agents.sourcedId" | "agents" => ids_of(Collection::Users, d.agents(index)),
                    _ => return None,
                }
            }
            Collection::Enrollments => {
                let enrollment = d.enrollments.get(index as usize)?;
                let (begin, end) = enrollment_dates(d, index);
                match name {
                    "role" => text(enrollment.role.as_str()),
                    "primary" => text(if enrollment.primary { "true" } else { "false" }),
                    "beginDate" => FieldValue::Text(begin),
                    "endDate" => FieldValue::Text(end),
                    "user.sourcedId" | "user" => id_of(Collection::Users, enrollment.user),
                    "class.sourcedId" | "class" => id_of(Collection::Classes, enrollment.class),
                    "school.sourcedId" | "school" => id_of(
                        Collection::Orgs,
                        d.classes
                            .get(enrollment.class as usize)
                            .map_or(0, |c| c.school),
                    ),
                    _ => return None,
                }
            }
        };
        Some(value)
    }
}

/// (removed, modified) of a record, or `None` past the end of its collection.
pub(crate) fn record_state(
    d: &District,
    collection: Collection,
    index: u32,
) -> Option<(bool, u32)> {
    let i = index as usize;
    match collection {
        Collection::Orgs => d.orgs.get(i).map(|o| (false, o.modified)),
        Collection::AcademicSessions => d.sessions.get(i).map(|s| (s.removed, s.modified)),
        Collection::Courses => d.courses.get(i).map(|c| (c.removed, c.modified)),
        Collection::Classes => d.classes.get(i).map(|c| (c.removed, c.modified)),
        Collection::Users => d.people.get(i).map(|p| (p.removed, p.modified)),
        Collection::Enrollments => d.enrollments.get(i).map(|e| (e.removed, e.modified)),
    }
}

/// How many records (alive or not) a collection holds: the range of valid indexes.
pub(crate) fn record_count(d: &District, collection: Collection) -> usize {
    match collection {
        Collection::Orgs => d.orgs.len(),
        Collection::AcademicSessions => d.sessions.len(),
        Collection::Courses => d.courses.len(),
        Collection::Classes => d.classes.len(),
        Collection::Users => d.people.len(),
        Collection::Enrollments => d.enrollments.len(),
    }
}

pub(crate) fn org_identifier(number: u32) -> String {
    format!("{number:04}")
}

pub(crate) fn session_type(kind: SessionKind) -> &'static str {
    match kind {
        SessionKind::SchoolYear => "schoolYear",
        SessionKind::Semester => "semester",
        SessionKind::GradingPeriod => "gradingPeriod",
    }
}

pub(crate) fn session_title(kind: SessionKind, part: u8, year: u16) -> String {
    let span = format!("{}-{year}", year - 1);
    match kind {
        SessionKind::SchoolYear => span,
        SessionKind::Semester => format!("Semester {part} {span}"),
        SessionKind::GradingPeriod => format!("Quarter {part} {span}"),
    }
}

pub(crate) fn session_children(d: &District, index: u32) -> Vec<u32> {
    let Some(session) = d.sessions.get(index as usize) else {
        return Vec::new();
    };
    // Sessions of a year are stored together: year, 2 semesters, 4 grading periods.
    let year_start = match session.kind {
        SessionKind::SchoolYear => index,
        SessionKind::Semester => session.parent,
        SessionKind::GradingPeriod => return Vec::new(),
    };
    (year_start..year_start + 7)
        .filter(|&i| {
            d.sessions
                .get(i as usize)
                .is_some_and(|s| s.parent == index)
        })
        .collect()
}

fn band_of(d: &District, school: u32) -> Band {
    d.orgs
        .get(school as usize)
        .and_then(|o| o.band)
        .unwrap_or(Band::High)
}

pub(crate) fn course_code_title(
    d: &District,
    school: u32,
    catalog: u8,
    grade: u8,
) -> (String, String) {
    let (stem, title) = catalogue(band_of(d, school))
        .get(usize::from(catalog))
        .copied()
        .unwrap_or(("GEN", "General"));
    let code = grade_code(grade);
    let label = if grade == 0 {
        "Kindergarten".to_owned()
    } else {
        format!("Grade {grade}")
    };
    (format!("{stem}-{code}"), format!("{title} {label}"))
}

pub(crate) fn course_subject(d: &District, school: u32, catalog: u8) -> &'static str {
    let stem = catalogue(band_of(d, school))
        .get(usize::from(catalog))
        .map_or("", |(s, _)| *s);
    subject_for(stem)
}

pub(crate) struct ClassTexts {
    pub title: String,
    pub code: String,
    pub location: String,
    pub period: String,
}

pub(crate) fn class_texts(d: &District, index: u32) -> ClassTexts {
    let Some(class) = d.classes.get(index as usize) else {
        return ClassTexts {
            title: String::new(),
            code: String::new(),
            location: String::new(),
            period: String::new(),
        };
    };
    let (code, title) = course_code_title(d, class.school, class.catalog, class.grade);
    let letter = char::from(b'A' + (class.section % 26) as u8);
    let round = class.section / 26;
    let section = if round == 0 {
        letter.to_string()
    } else {
        format!("{letter}{}", round + 1)
    };
    ClassTexts {
        title: format!("{title} - {section}"),
        code: format!("{code}-{section}"),
        location: format!("Room {}", class.room),
        period: if class.is_homeroom() {
            "HR".to_owned()
        } else {
            class.period.to_string()
        },
    }
}

/// Homerooms run the whole year; scheduled classes list both semesters.
pub(crate) fn class_terms(d: &District, index: u32) -> Vec<u32> {
    match d.classes.get(index as usize) {
        Some(class) if class.is_homeroom() => vec![class.year_session],
        Some(class) => vec![class.year_session + 1, class.year_session + 2],
        None => Vec::new(),
    }
}

pub(crate) fn enrollment_dates(d: &District, index: u32) -> (String, String) {
    let Some(enrollment) = d.enrollments.get(index as usize) else {
        return (String::new(), String::new());
    };
    let year = d
        .classes
        .get(enrollment.class as usize)
        .and_then(|c| d.sessions.get(c.year_session as usize))
        .map_or(d.year, |s| s.year);
    let (_, end) = session_dates(year, SessionKind::SchoolYear, 0);
    (date_of_day(u32::from(enrollment.begin_day)), end)
}

/// Students and teachers of a class via its enrollments.
pub(crate) fn class_members(d: &District, class: u32, role: EnrollmentRole) -> Vec<u32> {
    let mut out: Vec<u32> = d
        .class_enrollments(class)
        .filter(|(_, enrollment)| !enrollment.removed && enrollment.role == role)
        .map(|(_, enrollment)| enrollment.user)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Classes of a user via their enrollments.
pub(crate) fn user_classes(d: &District, user: u32) -> Vec<u32> {
    let mut out: Vec<u32> = d
        .user_enrollments(user)
        .filter(|(_, enrollment)| !enrollment.removed)
        .map(|(_, enrollment)| enrollment.class)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sourced_ids_round_trip_and_reject_lookalikes() {
        assert_eq!(Collection::Users.sourced_id(42), "usr-42");
        assert_eq!(Collection::Users.parse_sourced_id("usr-42"), Some(42));
        assert_eq!(Collection::Users.parse_sourced_id("usr-042"), None);
        assert_eq!(Collection::Users.parse_sourced_id("org-42"), None);
        assert_eq!(Collection::Users.parse_sourced_id("usr-"), None);
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut out = Vec::new();
        write_json_string(&mut out, "a\"b\\c\u{1}");
        let back: String = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, "a\"b\\c\u{1}");
    }

    #[test]
    fn fields_selection_skips_other_keys() {
        let mut out = Vec::new();
        let fields = vec!["b".to_owned()];
        let mut object = JsonObject::open(&mut out, Some(&fields));
        object.str("a", "1");
        object.str("b", "2");
        object.close();
        assert_eq!(out, br#"{"b":"2"}"#);
    }
}
