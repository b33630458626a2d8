//! Record decoding: the [`JsonRecord`] trait, the one visitor every record type shares,
//! and each type's own fields.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::page::CAREFUL;
use super::value::{FieldReader, Key, RoleList, UserIds};
use crate::lenient;
use crate::model::*;

/// What a record type contributes to the shared visitor: its own fields.
trait JsonRecord: Record + Default {
    const NAME: &'static str;
    /// State a record needs between fields and the end (1.1's `role` for users).
    type Pending: Default;

    /// The version the record's shape is from, as far as it matters to the names of
    /// its required fields.
    fn version(_pending: &Self::Pending) -> Version {
        Version::V1_1
    }

    /// Reads the value of `key` if it is one of this type's fields; returns `false`,
    /// without consuming the value, otherwise.
    fn field<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
        r: &mut FieldReader<'_>,
        pending: &mut Self::Pending,
    ) -> Result<bool, A::Error>;

    fn finish(&mut self, _pending: Self::Pending) {}

    /// Fields of the standard this type passes over unread: neither checked nor kept as
    /// extensions.
    const UNREAD: &'static [&'static str] = &[];
}

struct RecordVisitor<T>(PhantomData<T>);

impl<'de, T: JsonRecord> Visitor<'de> for RecordVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a OneRoster {} object", T::NAME)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let mut rec = T::default();
        let mut pending = T::Pending::default();
        let mut warnings = Vec::new();
        let mut findings = Vec::new();
        let mut extensions = Vec::new();
        let mut seen_id = false;
        let careful = CAREFUL.with(std::cell::Cell::get);
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let mut r = FieldReader {
                warnings: &mut warnings,
                findings: &mut findings,
                careful,
            };
            match &*key {
                "sourcedId" => {
                    seen_id = true;
                    rec.base_mut().sourced_id = r.string("sourcedId", &mut map)?;
                }
                "status" => {
                    rec.base_mut().status = r
                        .parsed(
                            "status",
                            &mut map,
                            "a status (active, tobedeleted)",
                            Status::read,
                        )?
                        .unwrap_or_default();
                }
                "dateLastModified" => {
                    rec.base_mut().date_last_modified = r.parsed(
                        "dateLastModified",
                        &mut map,
                        "an ISO-8601 date-time",
                        lenient::read_timestamp,
                    )?;
                }
                "metadata" => {
                    let raw: Box<RawValue> = map.next_value()?;
                    if raw.get() != "null" {
                        rec.base_mut().metadata = Some(raw);
                    }
                }
                k => {
                    if !rec.field(k, &mut map, &mut r, &mut pending)? {
                        if T::UNREAD.contains(&k) {
                            map.next_value::<IgnoredAny>()?;
                        } else {
                            let raw: Box<RawValue> = map.next_value()?;
                            extensions.push((key.into_owned(), raw));
                        }
                    }
                }
            }
        }
        if !seen_id || rec.base().sourced_id.is_empty() {
            return Err(de::Error::custom(format_args!(
                "a {} without a sourcedId",
                T::NAME
            )));
        }
        let version = T::version(&pending);
        let base = rec.base_mut();
        base.warnings = warnings;
        base.findings = findings;
        base.extensions = extensions;
        rec.finish(pending);
        note_blank_required(&mut rec, Format::Json, version);
        Ok(rec)
    }
}

macro_rules! deserialize_via_record_visitor {
    ($($ty:ty),+) => {$(
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_map(RecordVisitor::<$ty>(PhantomData))
            }
        }
    )+};
}

deserialize_via_record_visitor!(
    User,
    Org,
    AcademicSession,
    Course,
    Class,
    Enrollment,
    EnrollmentCore,
    Demographic
);

/// What a user object says besides its fields.
struct UserPending {
    /// 1.1's `role`.
    legacy_role: Option<Role>,
    /// 1.2's `roles` was there.
    roles: bool,
    /// `enabledUser` was absent, null or empty (unreadable is a warning, not a blank).
    enabled_user_blank: bool,
}

impl Default for UserPending {
    fn default() -> Self {
        UserPending {
            legacy_role: None,
            roles: false,
            enabled_user_blank: true,
        }
    }
}

impl JsonRecord for User {
    const NAME: &'static str = "user";
    type Pending = UserPending;

    fn version(pending: &UserPending) -> Version {
        if pending.roles {
            Version::V1_2
        } else {
            Version::V1_1
        }
    }

    fn field<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
        r: &mut FieldReader<'_>,
        pending: &mut UserPending,
    ) -> Result<bool, A::Error> {
        match key {
            "username" => self.username = r.string(key, map)?,
            "userIds" => match r.value::<_, UserIds>(key, map)? {
                Some(UserIds(Ok(ids))) => self.user_ids = ids,
                Some(UserIds(Err(kind))) => r.bad(key, kind, "a list of userIds"),
                None => {}
            },
            "enabledUser" => {
                let warned = r.warnings.len();
                let value = r.boolean(key, map)?;
                pending.enabled_user_blank = value.is_none() && r.warnings.len() == warned;
                self.enabled_user = value.unwrap_or(true);
            }
            "givenName" => self.given_name = r.string(key, map)?,
            "familyName" => self.family_name = r.string(key, map)?,
            "middleName" => self.middle_name = r.text(key, map)?,
            // REST says preferredFirstName, CSV preferredGivenName; some servers mix them.
            "preferredFirstName" | "preferredGivenName" => {
                self.preferred_first_name = r.text(key, map)?
            }
            "preferredMiddleName" => self.preferred_middle_name = r.text(key, map)?,
            "preferredLastName" | "preferredFamilyName" => {
                self.preferred_last_name = r.text(key, map)?
            }
            "pronouns" => self.pronouns = r.text(key, map)?,
            "role" => pending.legacy_role = r.open(key, map, Role::read)?,
            "roles" => {
                pending.roles = true;
                if let Some(RoleList(roles, problems, findings)) = r.value(key, map)? {
                    self.roles = roles;
                    r.warnings.extend(problems);
                    r.findings.extend(findings);
                }
            }
            "primaryOrg" => self.primary_org = r.reference(key, map)?,
            "orgs" => self.orgs = r.references(key, map)?,
            "identifier" => self.identifier = r.text(key, map)?,
            "userMasterIdentifier" => self.user_master_identifier = r.text(key, map)?,
            "email" => self.email = r.text(key, map)?,
            "sms" => self.sms = r.text(key, map)?,
            "phone" => self.phone = r.text(key, map)?,
            "agents" => self.agents = r.references(key, map)?,
            "grades" => self.grades = r.list(key, map)?,
            // Never kept: a roster sync has no business holding passwords.
            "password" => {
                map.next_value::<IgnoredAny>()?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn finish(&mut self, pending: UserPending) {
        if pending.enabled_user_blank {
            self.base
                .findings
                .push(Finding::blank("enabledUser", "true"));
        }
        self.normalise(pending.legacy_role);
    }
}

/// A record type whose fields need no state between them: each key read by one
/// [`FieldReader`] method into one field, and the fields of the standard it leaves unread
/// ([`JsonRecord::UNREAD`]), if any.
macro_rules! plain_json_record {
    ($ty:ty, $name:literal $(unread [$($unread:literal),+])? { $($key:literal => $field:ident: $read:ident $(($arg:expr))?,)+ }) => {
        impl JsonRecord for $ty {
            const NAME: &'static str = $name;
            type Pending = ();
            $(const UNREAD: &'static [&'static str] = &[$($unread),+];)?

            fn field<'de, A: MapAccess<'de>>(
                &mut self,
                key: &str,
                map: &mut A,
                r: &mut FieldReader<'_>,
                _: &mut (),
            ) -> Result<bool, A::Error> {
                match key {
                    $($key => self.$field = r.$read(key, map $(, $arg)?)?,)+
                    _ => return Ok(false),
                }
                Ok(true)
            }
        }
    };
}

plain_json_record!(Org, "org" {
    "name" => name: string,
    "type" => org_type: open(OrgType::read),
    "identifier" => identifier: text,
    "parent" => parent: reference,
    "children" => children: references,
});

plain_json_record!(AcademicSession, "academicSession" {
    "title" => title: string,
    "type" => session_type: open(SessionType::read),
    "startDate" => start_date: date,
    "endDate" => end_date: date,
    "parent" => parent: reference,
    "children" => children: references,
    "schoolYear" => school_year: text,
});

plain_json_record!(Course, "course" {
    "title" => title: string,
    "courseCode" => course_code: text,
    "schoolYear" => school_year: reference,
    "grades" => grades: list,
    "subjects" => subjects: list,
    "subjectCodes" => subject_codes: list,
    "org" => org: reference,
});

plain_json_record!(Class, "class" {
    "title" => title: string,
    "classCode" => class_code: text,
    "classType" => class_type: open(ClassType::read),
    "location" => location: text,
    "grades" => grades: list,
    "subjects" => subjects: list,
    "subjectCodes" => subject_codes: list,
    "course" => course: reference,
    "school" => school: reference,
    "terms" => terms: references,
    "periods" => periods: list,
});

plain_json_record!(Enrollment, "enrollment" {
    "user" => user: reference,
    "class" => class: reference,
    "school" => school: reference,
    "role" => role: open(Role::read),
    "primary" => primary: boolean,
    "beginDate" => begin_date: date,
    "endDate" => end_date: date,
});

plain_json_record!(EnrollmentCore, "enrollment" unread ["school", "primary", "beginDate", "endDate"] {
    "user" => user: reference,
    "class" => class: reference,
    "role" => role: open(Role::read),
});

plain_json_record!(Demographic, "demographics" {
    "birthDate" => birth_date: date,
    "sex" => sex: text,
});
