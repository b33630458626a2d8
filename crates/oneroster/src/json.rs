//! Lenient JSON decoding of OneRoster records and pages.
//!
//! Hand-written visitors rather than `#[derive(Deserialize)]`: a derive cannot keep unknown
//! fields without `#[serde(flatten)]` (which buffers every record and costs several times
//! the parse), and it fails the whole page on one odd value. Here every known field goes
//! through a forgiving reader that records a warning instead, unknown fields are kept as
//! raw JSON, and keys are matched without allocating.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess,
    Visitor,
};
use serde_json::value::RawValue;

use crate::lenient::{self, Read, split_list};
use crate::model::*;

/// A value of any JSON kind, decoded just far enough to be read leniently.
enum Loose {
    Null,
    Bool(bool),
    Number(String),
    Str(String),
    Array,
    Object,
}

impl Loose {
    /// The value as text, if it is a scalar.
    fn into_text(self) -> Result<Option<String>, &'static str> {
        match self {
            Loose::Null => Ok(None),
            Loose::Bool(b) => Ok(Some(b.to_string())),
            Loose::Number(n) => Ok(Some(n)),
            Loose::Str(s) => Ok(Some(s)),
            Loose::Array => Err("an array"),
            Loose::Object => Err("an object"),
        }
    }
}

impl<'de> Deserialize<'de> for Loose {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Loose;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Loose, E> {
                Ok(Loose::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Loose, E> {
                Ok(Loose::Number(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Loose, E> {
                Ok(Loose::Number(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Loose, E> {
                Ok(Loose::Number(v.to_string()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Loose, E> {
                Ok(Loose::Str(trimmed(v)))
            }
            fn visit_string<E>(self, v: String) -> Result<Loose, E> {
                Ok(Loose::Str(if v.trim().len() == v.len() {
                    v
                } else {
                    v.trim().to_owned()
                }))
            }
            fn visit_unit<E>(self) -> Result<Loose, E> {
                Ok(Loose::Null)
            }
            fn visit_none<E>(self) -> Result<Loose, E> {
                Ok(Loose::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Loose, D::Error> {
                Loose::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Loose, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Loose::Array)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Loose, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Loose::Object)
            }
        }
        d.deserialize_any(V)
    }
}

fn trimmed(v: &str) -> String {
    v.trim().to_owned()
}

/// A map key, borrowed from the input when it can be.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A list of strings: a JSON array of scalars, or one comma-separated string.
struct List(Result<Vec<String>, &'static str>);

impl<'de> Deserialize<'de> for List {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = List;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list")
            }
            fn visit_str<E>(self, v: &str) -> Result<List, E> {
                Ok(List(Ok(split_list(v))))
            }
            fn visit_unit<E>(self) -> Result<List, E> {
                Ok(List(Ok(Vec::new())))
            }
            fn visit_none<E>(self) -> Result<List, E> {
                Ok(List(Ok(Vec::new())))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<List, D::Error> {
                List::deserialize(d)
            }
            fn visit_bool<E>(self, _: bool) -> Result<List, E> {
                Ok(List(Err("a boolean")))
            }
            fn visit_i64<E>(self, v: i64) -> Result<List, E> {
                Ok(List(Ok(vec![v.to_string()])))
            }
            fn visit_u64<E>(self, v: u64) -> Result<List, E> {
                Ok(List(Ok(vec![v.to_string()])))
            }
            fn visit_f64<E>(self, v: f64) -> Result<List, E> {
                Ok(List(Ok(vec![v.to_string()])))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List, A::Error> {
                let mut out = Vec::new();
                let mut bad = None;
                while let Some(item) = seq.next_element::<Loose>()? {
                    match item.into_text() {
                        Ok(Some(s)) if !s.is_empty() => out.push(s),
                        Ok(_) => {}
                        Err(kind) => bad = Some(kind),
                    }
                }
                Ok(List(match bad {
                    Some(kind) => Err(kind),
                    None => Ok(out),
                }))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<List, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(List(Err("an object")))
            }
        }
        d.deserialize_any(V)
    }
}

/// A GUIDRef: `{href, sourcedId, type}` keyed on `sourcedId` only, or a bare id string.
struct Ref(Result<Option<String>, &'static str>);

impl<'de> Deserialize<'de> for Ref {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ref;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a reference")
            }
            fn visit_str<E>(self, v: &str) -> Result<Ref, E> {
                Ok(Ref(Ok(lenient::non_empty(v))))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Ref, E> {
                Ok(Ref(Ok(Some(v.to_string()))))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Ref, E> {
                Ok(Ref(Ok(Some(v.to_string()))))
            }
            fn visit_unit<E>(self) -> Result<Ref, E> {
                Ok(Ref(Ok(None)))
            }
            fn visit_none<E>(self) -> Result<Ref, E> {
                Ok(Ref(Ok(None)))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Ref, D::Error> {
                Ref::deserialize(d)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Ref, E> {
                Ok(Ref(Err("a boolean")))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Ref, E> {
                Ok(Ref(Err("a fraction")))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ref, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Ref(Err("an array")))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ref, A::Error> {
                let mut id = None;
                while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
                    if k == "sourcedId" {
                        id = map.next_value::<Loose>()?.into_text().ok().flatten();
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Ref(match id {
                    Some(id) if !id.is_empty() => Ok(Some(id)),
                    _ => Err("a reference without a sourcedId"),
                }))
            }
        }
        d.deserialize_any(V)
    }
}

/// A list of GUIDRefs (or of bare ids, or one comma-separated string of ids).
struct Refs(Result<Vec<String>, &'static str>);

impl<'de> Deserialize<'de> for Refs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Refs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of references")
            }
            fn visit_str<E>(self, v: &str) -> Result<Refs, E> {
                Ok(Refs(Ok(split_list(v))))
            }
            fn visit_unit<E>(self) -> Result<Refs, E> {
                Ok(Refs(Ok(Vec::new())))
            }
            fn visit_none<E>(self) -> Result<Refs, E> {
                Ok(Refs(Ok(Vec::new())))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Refs, D::Error> {
                Refs::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Refs, A::Error> {
                let mut out = Vec::new();
                let mut bad = None;
                while let Some(Ref(r)) = seq.next_element::<Ref>()? {
                    match r {
                        Ok(Some(id)) => out.push(id),
                        Ok(None) => {}
                        Err(kind) => bad = Some(kind),
                    }
                }
                Ok(Refs(match bad {
                    Some(kind) => Err(kind),
                    None => Ok(out),
                }))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Refs, A::Error> {
                // A single GUIDRef where a list was expected: read it as a list of one.
                let Ref(r) = Ref::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Refs(r.map(|id| id.into_iter().collect())))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Refs, E> {
                Ok(Refs(Err("a boolean")))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Refs, E> {
                Ok(Refs(Ok(vec![v.to_string()])))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Refs, E> {
                Ok(Refs(Ok(vec![v.to_string()])))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Refs, E> {
                Ok(Refs(Err("a fraction")))
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads one field's value and files it, or files a warning naming the field and value;
/// a value read leniently is filed as a finding.
struct FieldReader<'w> {
    warnings: &'w mut Vec<String>,
    findings: &'w mut Vec<Finding>,
    /// Read each value as raw JSON first (see [`with_careful_retry`]).
    careful: bool,
}

impl FieldReader<'_> {
    fn bad(&mut self, key: &str, what: impl fmt::Display, expected: &str) {
        self.warnings
            .push(format!("`{key}`: {what} is not {expected}; ignored"));
    }

    /// The value of a known field, read as `X`; `None` (and a warning) when it cannot be
    /// read at all. Read carefully, the value is first taken as raw JSON, which serde_json
    /// only checks, so a value it cannot decode (a number out of range such as `1e400`)
    /// costs this field, not the page.
    fn value<'de, A: MapAccess<'de>, X: DeserializeOwned>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<Option<X>, A::Error> {
        if !self.careful {
            return map.next_value().map(Some);
        }
        let raw: Box<RawValue> = map.next_value()?;
        match serde_json::from_str(raw.get()) {
            Ok(x) => Ok(Some(x)),
            Err(e) => {
                let reason = e.to_string();
                // Positions are within the value, which the warning shows anyway.
                let reason = reason.split(" at line ").next().unwrap_or_default();
                // A long value (a whole list) is cut short in the warning.
                let shown = match raw.get().char_indices().nth(80) {
                    Some(_) => format!("{}...", raw.get().chars().take(77).collect::<String>()),
                    None => raw.get().to_owned(),
                };
                self.warnings.push(format!(
                    "`{key}`: {shown} cannot be read ({reason}); ignored"
                ));
                Ok(None)
            }
        }
    }

    fn text<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<Option<String>, A::Error> {
        let Some(value) = self.value::<_, Loose>(key, map)? else {
            return Ok(None);
        };
        match value.into_text() {
            Ok(Some(s)) if !s.is_empty() => Ok(Some(s)),
            Ok(_) => Ok(None),
            Err(kind) => {
                self.bad(key, kind, "text");
                Ok(None)
            }
        }
    }

    /// Text, or empty when absent.
    fn string<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<String, A::Error> {
        Ok(self.text(key, map)?.unwrap_or_default())
    }

    /// Text read by `read`; unreadable text becomes a warning and `None`.
    fn parsed<'de, A: MapAccess<'de>, T: fmt::Display>(
        &mut self,
        key: &str,
        map: &mut A,
        expected: &str,
        read: impl FnOnce(&str) -> Option<Read<T>>,
    ) -> Result<Option<T>, A::Error> {
        let Some(text) = self.text(key, map)? else {
            return Ok(None);
        };
        match read(&text) {
            Some(r) => Ok(Some(self.noted(key, &text, r))),
            None => {
                self.bad(key, format_args!("'{text}'"), expected);
                Ok(None)
            }
        }
    }

    /// An open enum's text, kept whatever it says.
    fn open<'de, A: MapAccess<'de>, T: fmt::Display>(
        &mut self,
        key: &str,
        map: &mut A,
        read: impl FnOnce(&str) -> Read<T>,
    ) -> Result<Option<T>, A::Error> {
        let Some(text) = self.text(key, map)? else {
            return Ok(None);
        };
        let r = read(&text);
        Ok(Some(self.noted(key, &text, r)))
    }

    /// The value, filed as a finding when it was read leniently.
    fn noted<T: fmt::Display>(&mut self, key: &str, text: &str, r: Read<T>) -> T {
        if !r.standard {
            self.findings.push(Finding::lenient(key, text, &r.value));
        }
        r.value
    }

    fn list<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<Vec<String>, A::Error> {
        let Some(List(r)) = self.value(key, map)? else {
            return Ok(Vec::new());
        };
        Ok(r.unwrap_or_else(|kind| {
            self.bad(key, kind, "a list");
            Vec::new()
        }))
    }

    fn reference<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<Option<String>, A::Error> {
        let Some(Ref(r)) = self.value(key, map)? else {
            return Ok(None);
        };
        Ok(r.unwrap_or_else(|kind| {
            self.bad(key, kind, "a reference");
            None
        }))
    }

    fn references<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<Vec<String>, A::Error> {
        let Some(Refs(r)) = self.value(key, map)? else {
            return Ok(Vec::new());
        };
        Ok(r.unwrap_or_else(|kind| {
            self.bad(key, kind, "a list of references");
            Vec::new()
        }))
    }

    fn boolean<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<Option<bool>, A::Error> {
        self.parsed(key, map, "a boolean", lenient::read_bool)
    }

    fn date<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<Option<jiff::civil::Date>, A::Error> {
        self.parsed(key, map, "a date (YYYY-MM-DD)", lenient::read_date)
    }
}

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
                        let raw: Box<RawValue> = map.next_value()?;
                        extensions.push((key.into_owned(), raw));
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

impl JsonRecord for Org {
    const NAME: &'static str = "org";
    type Pending = ();

    fn field<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
        r: &mut FieldReader<'_>,
        _: &mut (),
    ) -> Result<bool, A::Error> {
        match key {
            "name" => self.name = r.string(key, map)?,
            "type" => self.org_type = r.open(key, map, OrgType::read)?,
            "identifier" => self.identifier = r.text(key, map)?,
            "parent" => self.parent = r.reference(key, map)?,
            "children" => self.children = r.references(key, map)?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl JsonRecord for AcademicSession {
    const NAME: &'static str = "academicSession";
    type Pending = ();

    fn field<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
        r: &mut FieldReader<'_>,
        _: &mut (),
    ) -> Result<bool, A::Error> {
        match key {
            "title" => self.title = r.string(key, map)?,
            "type" => self.session_type = r.open(key, map, SessionType::read)?,
            "startDate" => self.start_date = r.date(key, map)?,
            "endDate" => self.end_date = r.date(key, map)?,
            "parent" => self.parent = r.reference(key, map)?,
            "children" => self.children = r.references(key, map)?,
            "schoolYear" => self.school_year = r.text(key, map)?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl JsonRecord for Course {
    const NAME: &'static str = "course";
    type Pending = ();

    fn field<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
        r: &mut FieldReader<'_>,
        _: &mut (),
    ) -> Result<bool, A::Error> {
        match key {
            "title" => self.title = r.string(key, map)?,
            "courseCode" => self.course_code = r.text(key, map)?,
            "schoolYear" => self.school_year = r.reference(key, map)?,
            "grades" => self.grades = r.list(key, map)?,
            "subjects" => self.subjects = r.list(key, map)?,
            "subjectCodes" => self.subject_codes = r.list(key, map)?,
            "org" => self.org = r.reference(key, map)?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl JsonRecord for Class {
    const NAME: &'static str = "class";
    type Pending = ();

    fn field<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
        r: &mut FieldReader<'_>,
        _: &mut (),
    ) -> Result<bool, A::Error> {
        match key {
            "title" => self.title = r.string(key, map)?,
            "classCode" => self.class_code = r.text(key, map)?,
            "classType" => self.class_type = r.open(key, map, ClassType::read)?,
            "location" => self.location = r.text(key, map)?,
            "grades" => self.grades = r.list(key, map)?,
            "subjects" => self.subjects = r.list(key, map)?,
            "subjectCodes" => self.subject_codes = r.list(key, map)?,
            "course" => self.course = r.reference(key, map)?,
            "school" => self.school = r.reference(key, map)?,
            "terms" => self.terms = r.references(key, map)?,
            "periods" => self.periods = r.list(key, map)?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl JsonRecord for Enrollment {
    const NAME: &'static str = "enrollment";
    type Pending = ();

    fn field<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
        r: &mut FieldReader<'_>,
        _: &mut (),
    ) -> Result<bool, A::Error> {
        match key {
            "user" => self.user = r.reference(key, map)?,
            "class" => self.class = r.reference(key, map)?,
            "school" => self.school = r.reference(key, map)?,
            "role" => self.role = r.open(key, map, Role::read)?,
            "primary" => self.primary = r.boolean(key, map)?,
            "beginDate" => self.begin_date = r.date(key, map)?,
            "endDate" => self.end_date = r.date(key, map)?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl JsonRecord for Demographic {
    const NAME: &'static str = "demographics";
    type Pending = ();

    fn field<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
        r: &mut FieldReader<'_>,
        _: &mut (),
    ) -> Result<bool, A::Error> {
        match key {
            "birthDate" => self.birth_date = r.date(key, map)?,
            "sex" => self.sex = r.text(key, map)?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// `userIds`: an array of `{type, identifier}`, or the CSV spelling in one string.
struct UserIds(Result<Vec<UserId>, &'static str>);

impl<'de> Deserialize<'de> for UserIds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UserIds;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("userIds")
            }
            fn visit_str<E>(self, v: &str) -> Result<UserIds, E> {
                Ok(UserIds(Ok(lenient::parse_user_ids(v))))
            }
            fn visit_unit<E>(self) -> Result<UserIds, E> {
                Ok(UserIds(Ok(Vec::new())))
            }
            fn visit_none<E>(self) -> Result<UserIds, E> {
                Ok(UserIds(Ok(Vec::new())))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<UserIds, D::Error> {
                UserIds::deserialize(d)
            }
            fn visit_bool<E>(self, _: bool) -> Result<UserIds, E> {
                Ok(UserIds(Err("a boolean")))
            }
            fn visit_i64<E>(self, _: i64) -> Result<UserIds, E> {
                Ok(UserIds(Err("a number")))
            }
            fn visit_u64<E>(self, _: u64) -> Result<UserIds, E> {
                Ok(UserIds(Err("a number")))
            }
            fn visit_f64<E>(self, _: f64) -> Result<UserIds, E> {
                Ok(UserIds(Err("a number")))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<UserIds, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<UserIdItem>()? {
                    if let Some(id) = item.0 {
                        out.push(id);
                    }
                }
                Ok(UserIds(Ok(out)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UserIds, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(UserIds(Err("an object")))
            }
        }
        d.deserialize_any(V)
    }
}

struct UserIdItem(Option<UserId>);

impl<'de> Deserialize<'de> for UserIdItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UserIdItem;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a userId")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UserIdItem, A::Error> {
                let (mut kind, mut identifier) = (String::new(), None);
                while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
                    match &*k {
                        "type" => {
                            kind = map
                                .next_value::<Loose>()?
                                .into_text()
                                .ok()
                                .flatten()
                                .unwrap_or_default()
                        }
                        "identifier" => {
                            identifier = map.next_value::<Loose>()?.into_text().ok().flatten()
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(UserIdItem(
                    identifier.map(|identifier| UserId { kind, identifier }),
                ))
            }
            fn visit_str<E>(self, v: &str) -> Result<UserIdItem, E> {
                Ok(UserIdItem(lenient::parse_user_ids(v).into_iter().next()))
            }
            fn visit_unit<E>(self) -> Result<UserIdItem, E> {
                Ok(UserIdItem(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<UserIdItem, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(UserIdItem(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<UserIdItem, E> {
                Ok(UserIdItem(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<UserIdItem, E> {
                Ok(UserIdItem(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<UserIdItem, E> {
                Ok(UserIdItem(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<UserIdItem, E> {
                Ok(UserIdItem(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// 1.2 `roles`: an array of `{roleType, role, org, userProfile, beginDate, endDate}`, with
/// the problems found in it and the values read leniently.
struct RoleList(Vec<RoleAssignment>, Vec<String>, Vec<Finding>);

impl<'de> Deserialize<'de> for RoleList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RoleList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of roles")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RoleList, A::Error> {
                let mut roles = Vec::new();
                let mut problems = Vec::new();
                let mut findings = Vec::new();
                while let Some(item) =
                    seq.next_element_seed(RoleSeed(&mut problems, &mut findings))?
                {
                    roles.extend(item);
                }
                Ok(RoleList(roles, problems, findings))
            }
            fn visit_unit<E>(self) -> Result<RoleList, E> {
                Ok(RoleList(Vec::new(), Vec::new(), Vec::new()))
            }
            fn visit_none<E>(self) -> Result<RoleList, E> {
                Ok(RoleList(Vec::new(), Vec::new(), Vec::new()))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RoleList, D::Error> {
                RoleList::deserialize(d)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RoleList, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(RoleList(
                    Vec::new(),
                    vec!["`roles`: an object is not a list; ignored".into()],
                    Vec::new(),
                ))
            }
            fn visit_str<E>(self, v: &str) -> Result<RoleList, E> {
                Ok(RoleList(
                    Vec::new(),
                    vec![format!("`roles`: '{v}' is not a list; ignored")],
                    Vec::new(),
                ))
            }
            fn visit_bool<E>(self, v: bool) -> Result<RoleList, E> {
                Ok(not_a_list(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<RoleList, E> {
                Ok(not_a_list(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<RoleList, E> {
                Ok(not_a_list(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<RoleList, E> {
                Ok(not_a_list(v))
            }
        }
        fn not_a_list(v: impl fmt::Display) -> RoleList {
            RoleList(
                Vec::new(),
                vec![format!("`roles`: {v} is not a list; ignored")],
                Vec::new(),
            )
        }
        d.deserialize_any(V)
    }
}

struct RoleSeed<'p>(&'p mut Vec<String>, &'p mut Vec<Finding>);

impl RoleSeed<'_> {
    fn not_a_role(self) -> Option<RoleAssignment> {
        self.0
            .push("`roles`: an entry that is not an object; ignored".into());
        None
    }
}

impl<'de> DeserializeSeed<'de> for RoleSeed<'_> {
    type Value = Option<RoleAssignment>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RoleSeed<'_> {
    type Value = Option<RoleAssignment>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a role")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // A role list read carefully is read from its raw JSON as a whole.
        let mut r = FieldReader {
            warnings: self.0,
            findings: self.1,
            careful: false,
        };
        let mut role_type = RoleType::Primary;
        let mut role = None;
        let mut org = None;
        let mut user_profile = None;
        let (mut begin_date, mut end_date) = (None, None);
        while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
            match &*k {
                "roleType" => {
                    if let Some(t) = r.open("roles.roleType", &mut map, RoleType::read)? {
                        role_type = t;
                    }
                }
                "role" => role = r.open("roles.role", &mut map, Role::read)?,
                "org" => org = r.reference("roles.org", &mut map)?,
                "userProfile" => user_profile = r.reference("roles.userProfile", &mut map)?,
                "beginDate" => begin_date = r.date("roles.beginDate", &mut map)?,
                "endDate" => end_date = r.date("roles.endDate", &mut map)?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let Some(role) = role else {
            r.warnings
                .push("`roles`: an entry without a role; ignored".into());
            return Ok(None);
        };
        Ok(Some(RoleAssignment {
            role_type,
            role,
            org,
            user_profile,
            begin_date,
            end_date,
        }))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(self.not_a_role())
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(self.not_a_role())
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(self.not_a_role())
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(self.not_a_role())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(self.not_a_role())
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        // A bare role name: some servers flatten the list.
        let role = Role::read(v);
        if !role.standard {
            self.1.push(Finding::lenient("roles", v, &role.value));
        }
        Ok(Some(RoleAssignment {
            role_type: RoleType::Primary,
            role: role.value,
            org: None,
            user_profile: None,
            begin_date: None,
            end_date: None,
        }))
    }
}

/// One page of a collection: the records, and any status information the server put
/// beside them (a 200 can carry warnings, or an error it should have sent as a 4xx).
#[derive(Debug)]
pub struct Page<T> {
    pub records: Vec<T>,
    /// The envelope key the records came under.
    pub envelope: Option<String>,
    pub status: Vec<crate::status::StatusInfo>,
}

/// Envelope keys accepted for a collection: the base type, then endpoint names some
/// servers use instead.
pub fn envelope_keys(collection: Collection) -> &'static [&'static str] {
    match collection {
        Collection::Orgs => &["orgs", "schools"],
        Collection::AcademicSessions => &["academicSessions", "terms", "gradingPeriods"],
        Collection::Courses => &["courses"],
        Collection::Classes => &["classes"],
        Collection::Users => &["users", "students", "teachers"],
        Collection::Enrollments => &["enrollments"],
        Collection::Demographics => &["demographics"],
    }
}

struct PageVisitor<T>(PhantomData<T>);

impl<'de, T: Record + Deserialize<'de>> Visitor<'de> for PageVisitor<T> {
    type Value = Page<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a JSON object with a `{}` array",
            T::COLLECTION.endpoint()
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Page<T>, A::Error> {
        let keys = envelope_keys(T::COLLECTION);
        let mut page = Page {
            records: Vec::new(),
            envelope: None,
            status: Vec::new(),
        };
        // 1.2 servers may put a status object's fields at the top level of the page.
        let mut top_level_status = serde_json::Map::new();
        while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
            if page.envelope.is_none() && keys.contains(&&*k) {
                page.records = map.next_value::<NullableVec<T>>()?.0;
                page.envelope = Some(k.into_owned());
            } else if crate::status::is_status_key(&k) {
                let v: serde_json::Value = map.next_value()?;
                page.status
                    .extend(crate::status::StatusInfo::from_value(&v));
            } else if k.starts_with("imsx_") {
                top_level_status.insert(k.into_owned(), map.next_value()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        if !top_level_status.is_empty() {
            let v = serde_json::Value::Object(top_level_status);
            page.status
                .extend(crate::status::StatusInfo::from_value(&v));
        }
        Ok(page)
    }
}

/// An array, where `null` means empty.
struct NullableVec<T>(Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for NullableVec<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(NullableVec(
            Option::<Vec<T>>::deserialize(d)?.unwrap_or_default(),
        ))
    }
}

/// Parses one page of `T` records. A value serde_json cannot decode in a record's known
/// field (a number out of range such as `1e400`) becomes a warning on that record.
pub fn parse_page<T: Record + for<'de> Deserialize<'de>>(
    body: &[u8],
) -> Result<Page<T>, serde_json::Error> {
    with_careful_retry(|| {
        let mut de = serde_json::Deserializer::from_slice(body);
        let page = de.deserialize_map(PageVisitor::<T>(PhantomData))?;
        de.end()?;
        Ok(page)
    })
}

/// Parses a single-object response (`{"user":{…}}`), accepting the collection name or the
/// bare object too.
pub fn parse_single<T: Record + for<'de> Deserialize<'de>>(
    body: &[u8],
) -> Result<T, serde_json::Error> {
    with_careful_retry(|| {
        // Raw values: the envelope is only looked into, not decoded.
        let v: std::collections::HashMap<String, Box<RawValue>> = serde_json::from_slice(body)?;
        let singular = T::COLLECTION.singular();
        let inner = v
            .get(singular)
            .or_else(|| envelope_keys(T::COLLECTION).iter().find_map(|k| v.get(*k)));
        match inner {
            Some(obj) => serde_json::from_str(obj.get()),
            None => serde_json::from_slice(body),
        }
    })
}

thread_local! {
    /// Set while [`with_careful_retry`] reads a body the second time.
    static CAREFUL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `parse`, and when it fails on the JSON itself, runs it once more reading every
/// known field's value as raw JSON first. serde_json fails the whole body on a number it
/// cannot hold (`1e400` is "number out of range"), where skipping over the value, as raw
/// JSON does, only checks it: the careful read turns such a value into a warning on its
/// record. Only a failed body pays for the second read. When the careful read fails too,
/// its error is returned: what is wrong even when odd values are forgiven.
fn with_careful_retry<R>(
    parse: impl Fn() -> Result<R, serde_json::Error>,
) -> Result<R, serde_json::Error> {
    match parse() {
        Err(e) if e.classify() == serde_json::error::Category::Syntax => {}
        done => return done,
    }
    /// Puts the flag back however the careful read ends.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            CAREFUL.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(CAREFUL.with(|c| c.replace(true)));
    parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(json: &str) -> User {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn v11_user_with_every_quirk() {
        let u = user(
            r#"{"sourcedId":"u1","status":"inactive","dateLastModified":"2026-01-02 03:04:05",
               "enabledUser":"TRUE","username":" jdoe ","givenName":"Jane","familyName":"Doe",
               "role":"Teacher","orgs":[{"href":"../orgs/s1","sourcedId":"s1","type":"school"},
               {"sourcedId":"s2","type":"wrong"}],"grades":"09, 10","email":"Jane.Doe@X.org",
               "userIds":[{"type":"LDAP","identifier":"12"}],"agents":[],"password":"hunter2",
               "metadata":{"ext:x":1},"vendorField":{"a":[1,2]}}"#,
        );
        assert_eq!(u.base.sourced_id, "u1");
        assert_eq!(u.base.status, Status::ToBeDeleted);
        assert!(u.base.date_last_modified.is_some());
        assert!(u.enabled_user);
        assert_eq!(u.username, "jdoe");
        assert_eq!(u.primary_role(), Some(&Role::Teacher));
        assert_eq!(u.orgs, ["s1", "s2"]);
        assert_eq!(u.primary_org.as_deref(), Some("s1"));
        assert_eq!(u.grades, ["09", "10"]);
        assert_eq!(u.user_ids[0].identifier, "12");
        assert_eq!(u.base.metadata.as_ref().unwrap().get(), r#"{"ext:x":1}"#);
        assert_eq!(u.base.extensions.len(), 1);
        assert_eq!(u.base.extensions[0].0, "vendorField");
        assert!(u.base.warnings.is_empty(), "{:?}", u.base.warnings);
    }

    #[test]
    fn v12_user() {
        let u = user(
            r#"{"sourcedId":"u2","status":"active","enabledUser":"false","username":"k",
               "givenName":"Kim","familyName":"Lee","preferredFirstName":"Kimmy","pronouns":"they/them",
               "roles":[{"roleType":"secondary","role":"aide","org":{"sourcedId":"s9"}},
                        {"roleType":"primary","role":"ext:coach","org":{"sourcedId":"s1"}}],
               "primaryOrg":{"sourcedId":"s1"},"grades":["KG"],"enabledUser":0}"#,
        );
        assert!(!u.enabled_user);
        assert_eq!(u.preferred_first_name.as_deref(), Some("Kimmy"));
        assert_eq!(u.primary_role(), Some(&Role::Other("ext:coach".into())));
        assert_eq!(u.orgs, ["s1", "s9"]);
        assert_eq!(u.primary_org.as_deref(), Some("s1"));
    }

    #[test]
    fn wrong_kinds_become_warnings_not_failures() {
        let u = user(
            r#"{"sourcedId":"u3","enabledUser":"maybe","givenName":{"x":1},"grades":true,
               "orgs":"s1,s2","dateLastModified":"1/05/2023","status":"retired","agents":[{"href":"x"}]}"#,
        );
        assert!(u.enabled_user, "unreadable enabledUser keeps the default");
        assert_eq!(u.given_name, "");
        assert_eq!(u.orgs, ["s1", "s2"]);
        assert_eq!(u.base.status, Status::Active);
        assert_eq!(u.base.warnings.len(), 6, "{:#?}", u.base.warnings);
        assert!(
            u.base
                .warnings
                .iter()
                .any(|w| w.contains("`dateLastModified`: '1/05/2023'"))
        );
    }

    /// A record's findings as `(kind, field, value, read as)`.
    fn findings(base: &Base) -> Vec<(FindingKind, &str, &str, &str)> {
        base.findings
            .iter()
            .map(|f| {
                (
                    f.kind,
                    f.field.as_str(),
                    f.value.as_str(),
                    f.read_as.as_str(),
                )
            })
            .collect()
    }

    #[test]
    fn lenient_values_are_noted_with_what_they_became() {
        use FindingKind::*;
        let u = user(
            r#"{"sourcedId":"u1","status":"Active","dateLastModified":"2026-01-02 03:04:05",
               "enabledUser":"TRUE","username":"jdoe","givenName":"Jane","familyName":"Doe",
               "role":"Teacher","orgs":[{"sourcedId":"s1"}]}"#,
        );
        assert_eq!(
            findings(&u.base),
            [
                (Lenient, "status", "Active", "active"),
                (
                    Lenient,
                    "dateLastModified",
                    "2026-01-02 03:04:05",
                    "2026-01-02T03:04:05Z"
                ),
                (Lenient, "enabledUser", "TRUE", "true"),
                (Lenient, "role", "Teacher", "teacher"),
            ]
        );
        assert!(u.base.warnings.is_empty());

        // The standard's spellings (and JSON booleans) are nothing to report.
        let u = user(
            r#"{"sourcedId":"u2","status":"active","dateLastModified":"2026-01-02T03:04:05.000Z",
               "enabledUser":true,"username":"k","givenName":"Kim","familyName":"Lee",
               "role":"teacher","orgs":[{"sourcedId":"s1"}]}"#,
        );
        assert!(u.base.findings.is_empty(), "{:?}", u.base.findings);

        let c: Class = serde_json::from_str(
            r#"{"sourcedId":"c1","status":"inactive","title":"Chemistry","classType":"Scheduled"}"#,
        )
        .unwrap();
        assert_eq!(
            findings(&c.base),
            [
                (Lenient, "status", "inactive", "tobedeleted"),
                (Lenient, "classType", "Scheduled", "scheduled"),
            ],
            "a class being deleted needs no course, school or terms"
        );

        let e: Enrollment = serde_json::from_str(
            r#"{"sourcedId":"e1","user":{"sourcedId":"u1"},"class":{"sourcedId":"c1"},
               "school":{"sourcedId":"s1"},"role":"Student","primary":1,
               "beginDate":"2026-08-17T00:00:00Z","endDate":"2027-06-04"}"#,
        )
        .unwrap();
        assert_eq!(
            findings(&e.base),
            [
                (Lenient, "role", "Student", "student"),
                (Lenient, "primary", "1", "true"),
                (Lenient, "beginDate", "2026-08-17T00:00:00Z", "2026-08-17"),
            ]
        );
    }

    #[test]
    fn blank_required_fields_are_noted_in_the_shape_the_record_has() {
        use FindingKind::*;
        // 1.1: no enabledUser (read as true), a blank username, no role and no orgs.
        let u = user(r#"{"sourcedId":"u1","username":"","givenName":"Jane","familyName":"Doe"}"#);
        assert_eq!(
            findings(&u.base),
            [
                (BlankRequired, "enabledUser", "", "true"),
                (BlankRequired, "username", "", ""),
                (BlankRequired, "role", "", ""),
                (BlankRequired, "orgs", "", ""),
            ]
        );
        // An unreadable enabledUser is a warning, not a blank.
        let u = user(
            r#"{"sourcedId":"u2","enabledUser":"maybe","username":"k","givenName":"K",
               "familyName":"L","role":"student","orgs":[{"sourcedId":"s1"}]}"#,
        );
        assert!(u.base.findings.is_empty(), "{:?}", u.base.findings);
        assert_eq!(u.base.warnings.len(), 1);
        // 1.2: a role whose type and role are in capitals, and no org.
        let u = user(
            r#"{"sourcedId":"u3","enabledUser":"true","username":"k","givenName":"K",
               "familyName":"L","roles":[{"roleType":"Primary","role":"Aide"}]}"#,
        );
        assert_eq!(
            findings(&u.base),
            [
                (Lenient, "roles.roleType", "Primary", "primary"),
                (Lenient, "roles.role", "Aide", "aide"),
                (BlankRequired, "roles.org", "", ""),
            ]
        );
    }

    #[test]
    fn missing_sourced_id_is_an_error() {
        let err = serde_json::from_str::<User>(r#"{"username":"x"}"#).unwrap_err();
        assert!(err.to_string().contains("without a sourcedId"), "{err}");
    }

    #[test]
    fn page_envelopes_and_status() {
        let p: Page<Org> = parse_page(
            br#"{"statusInfoSet":[{"imsx_codeMajor":"success","imsx_severity":"warning",
                 "imsx_description":"sort field ignored","imsx_codeMinor":"invalid_sort_field"}],
                 "orgs":[{"sourcedId":"o1","name":"HS","type":"school","parent":{"sourcedId":"d"}}]}"#,
        )
        .unwrap();
        assert_eq!(p.records.len(), 1);
        assert_eq!(p.records[0].parent.as_deref(), Some("d"));
        assert_eq!(p.records[0].org_type, Some(OrgType::School));
        assert_eq!(p.status.len(), 1);
        assert_eq!(
            p.status[0].code_minor.as_deref(),
            Some("invalid_sort_field")
        );

        let p: Page<User> = parse_page(br#"{"students":[{"sourcedId":"a"}]}"#).unwrap();
        assert_eq!(p.envelope.as_deref(), Some("students"));
        let p: Page<User> = parse_page(br#"{"users":null}"#).unwrap();
        assert!(p.records.is_empty());
        let p: Page<User> = parse_page(br#"{"something":[]}"#).unwrap();
        assert!(p.envelope.is_none());
        assert!(parse_page::<User>(br#"{"users":[{"sourcedId":"a"}"#).is_err());
    }

    #[test]
    fn numbers_out_of_range_are_warnings_not_failed_pages() {
        // serde_json cannot hold 1e400 and fails the whole body on it.
        assert!(serde_json::from_str::<serde_json::Value>("1e400").is_err());
        let p: Page<User> = parse_page(
            br#"{"users":[
                {"sourcedId":"a","givenName":"Ann","enabledUser":1e400,"identifier":-2e308,
                 "grades":[1e999,"05"],"orgs":[{"sourcedId":"s1"}],"role":"student"},
                {"sourcedId":"b","givenName":"Bob","orgs":[{"sourcedId":"s2"}],"vendor":1e400,
                 "metadata":{"x":1e400}}]}"#,
        )
        .unwrap();
        assert_eq!(p.records.len(), 2);
        let a = &p.records[0];
        assert_eq!(a.given_name, "Ann");
        assert!(
            a.enabled_user,
            "an unreadable enabledUser keeps the default"
        );
        assert_eq!(a.identifier, None);
        assert!(a.grades.is_empty());
        assert_eq!(a.orgs, ["s1"]);
        assert_eq!(a.primary_role(), Some(&Role::Student));
        assert_eq!(a.base.warnings.len(), 3, "{:#?}", a.base.warnings);
        assert_eq!(
            a.base.warnings[0],
            "`enabledUser`: 1e400 cannot be read (number out of range); ignored"
        );
        assert!(a.base.warnings[1].starts_with("`identifier`: -2e308 cannot be read"));
        assert!(a.base.warnings[2].starts_with(r#"`grades`: [1e999,"05"] cannot be read"#));
        // Outside the known fields the value is kept raw, as ever.
        let b = &p.records[1];
        assert!(b.base.warnings.is_empty(), "{:?}", b.base.warnings);
        assert_eq!(b.orgs, ["s2"]);
        assert_eq!(b.base.extensions[0].1.get(), "1e400");
        assert_eq!(b.base.metadata.as_ref().unwrap().get(), r#"{"x":1e400}"#);

        let u: User = parse_single(br#"{"user":{"sourcedId":"c","sms":1e400}}"#).unwrap();
        assert_eq!(u.sms, None);
        assert_eq!(u.base.warnings.len(), 1);

        // The careful second read ends with the call: a broken page still fails, with
        // what is wrong besides the number, and the next page is read the fast way.
        let err = parse_page::<User>(br#"{"users":[{"sourcedId":"a","sms":1e400}"#).unwrap_err();
        assert!(err.is_eof(), "{err}");
        assert!(!CAREFUL.with(std::cell::Cell::get));
        let p: Page<User> = parse_page(br#"{"users":[{"sourcedId":"d","sms":12}]}"#).unwrap();
        assert_eq!(p.records[0].sms.as_deref(), Some("12"));
    }

    #[test]
    fn single_object_responses() {
        let c: Class = parse_single(
            br#"{"class":{"sourcedId":"c1","title":"Algebra","classType":"homeroom","terms":[{"sourcedId":"t1"}],"periods":"1,2"}}"#,
        )
        .unwrap();
        assert_eq!(c.class_type, Some(ClassType::Homeroom));
        assert_eq!(c.terms, ["t1"]);
        assert_eq!(c.periods, ["1", "2"]);
    }
}
