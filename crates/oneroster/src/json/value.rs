//! Lenient readers of JSON field values: scalars, lists, GUIDRefs, `userIds` and 1.2
//! `roles`, and the [`FieldReader`] that files each value or a warning about it.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess,
    Visitor,
};
use serde_json::value::RawValue;

use crate::lenient::{self, Read, split_list};
use crate::model::*;

/// A value of any JSON kind, decoded just far enough to be read leniently. Its text is
/// borrowed from the page when it can be (no escapes in it): most values are read (a
/// date, a status, a role) and dropped, and a district's pull has tens of millions.
enum Loose<'de> {
    Null,
    Bool(bool),
    Number(String),
    Str(Cow<'de, str>),
    Array,
    Object,
}

impl<'de> Loose<'de> {
    /// The value as text, if it is a scalar.
    fn into_str(self) -> Result<Option<Cow<'de, str>>, &'static str> {
        match self {
            Loose::Null => Ok(None),
            Loose::Bool(b) => Ok(Some(Cow::Owned(b.to_string()))),
            Loose::Number(n) => Ok(Some(Cow::Owned(n))),
            Loose::Str(s) => Ok(Some(s)),
            Loose::Array => Err("an array"),
            Loose::Object => Err("an object"),
        }
    }

    /// [`Loose::into_str`], owned.
    fn into_text(self) -> Result<Option<String>, &'static str> {
        Ok(self.into_str()?.map(Cow::into_owned))
    }

    fn into_owned(self) -> Loose<'static> {
        match self {
            Loose::Null => Loose::Null,
            Loose::Bool(b) => Loose::Bool(b),
            Loose::Number(n) => Loose::Number(n),
            Loose::Str(s) => Loose::Str(Cow::Owned(s.into_owned())),
            Loose::Array => Loose::Array,
            Loose::Object => Loose::Object,
        }
    }
}

/// A [`Loose`] that owns its text: read from a value taken raw first (`careful`).
struct OwnedLoose(Loose<'static>);

impl<'de> Deserialize<'de> for OwnedLoose {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Loose::deserialize(d).map(|l| OwnedLoose(l.into_owned()))
    }
}

impl<'de> Deserialize<'de> for Loose<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Loose<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Loose<'de>, E> {
                Ok(Loose::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Loose<'de>, E> {
                Ok(Loose::Number(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Loose<'de>, E> {
                Ok(Loose::Number(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Loose<'de>, E> {
                Ok(Loose::Number(v.to_string()))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Loose<'de>, E> {
                Ok(Loose::Str(Cow::Borrowed(v.trim())))
            }
            fn visit_str<E>(self, v: &str) -> Result<Loose<'de>, E> {
                Ok(Loose::Str(Cow::Owned(v.trim().to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Loose<'de>, E> {
                Ok(Loose::Str(Cow::Owned(if v.trim().len() == v.len() {
                    v
                } else {
                    v.trim().to_owned()
                })))
            }
            fn visit_unit<E>(self) -> Result<Loose<'de>, E> {
                Ok(Loose::Null)
            }
            fn visit_none<E>(self) -> Result<Loose<'de>, E> {
                Ok(Loose::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Loose<'de>, D::Error> {
                Loose::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Loose<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Loose::Array)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Loose<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Loose::Object)
            }
        }
        d.deserialize_any(V)
    }
}

/// A map key, borrowed from the input when it can be.
pub(super) struct Key<'de>(pub(super) Cow<'de, str>);

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
pub(super) struct FieldReader<'w> {
    pub(super) warnings: &'w mut Vec<String>,
    pub(super) findings: &'w mut Vec<Finding>,
    /// Read each value as raw JSON first (see `with_careful_retry` in the `page` module).
    pub(super) careful: bool,
}

impl FieldReader<'_> {
    pub(super) fn bad(&mut self, key: &str, what: impl fmt::Display, expected: &str) {
        self.warnings
            .push(format!("`{key}`: {what} is not {expected}; ignored"));
    }

    /// The value of a known field, read as `X`; `None` (and a warning) when it cannot be
    /// read at all. Read carefully, the value is first taken as raw JSON, which serde_json
    /// only checks, so a value it cannot decode (a number out of range such as `1e400`)
    /// costs this field, not the page.
    pub(super) fn value<'de, A: MapAccess<'de>, X: DeserializeOwned>(
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

    pub(super) fn text<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<Option<String>, A::Error> {
        Ok(self.str(key, map)?.map(Cow::into_owned))
    }

    /// [`FieldReader::text`], borrowed from the page when it can be: for a value that is
    /// read, not kept.
    fn str<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<Option<Cow<'de, str>>, A::Error> {
        let value = if self.careful {
            self.value::<_, OwnedLoose>(key, map)?.map(|l| l.0)
        } else {
            Some(map.next_value::<Loose<'de>>()?)
        };
        let Some(value) = value else {
            return Ok(None);
        };
        match value.into_str() {
            Ok(Some(s)) if !s.is_empty() => Ok(Some(s)),
            Ok(_) => Ok(None),
            Err(kind) => {
                self.bad(key, kind, "text");
                Ok(None)
            }
        }
    }

    /// Text, or empty when absent.
    pub(super) fn string<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<String, A::Error> {
        Ok(self.text(key, map)?.unwrap_or_default())
    }

    /// Text read by `read`; unreadable text becomes a warning and `None`.
    pub(super) fn parsed<'de, A: MapAccess<'de>, T: fmt::Display>(
        &mut self,
        key: &str,
        map: &mut A,
        expected: &str,
        read: impl FnOnce(&str) -> Option<Read<T>>,
    ) -> Result<Option<T>, A::Error> {
        let Some(text) = self.str(key, map)? else {
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
    pub(super) fn open<'de, A: MapAccess<'de>, T: fmt::Display>(
        &mut self,
        key: &str,
        map: &mut A,
        read: impl FnOnce(&str) -> Read<T>,
    ) -> Result<Option<T>, A::Error> {
        let Some(text) = self.str(key, map)? else {
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

    pub(super) fn list<'de, A: MapAccess<'de>>(
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

    pub(super) fn reference<'de, A: MapAccess<'de>>(
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

    pub(super) fn references<'de, A: MapAccess<'de>>(
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

    pub(super) fn boolean<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<Option<bool>, A::Error> {
        self.parsed(key, map, "a boolean", lenient::read_bool)
    }

    pub(super) fn date<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<Option<jiff::civil::Date>, A::Error> {
        self.parsed(key, map, "a date (YYYY-MM-DD)", lenient::read_date)
    }
}

/// `userIds`: an array of `{type, identifier}`, or the CSV spelling in one string.
pub(super) struct UserIds(pub(super) Result<Vec<UserId>, &'static str>);

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
pub(super) struct RoleList(
    pub(super) Vec<RoleAssignment>,
    pub(super) Vec<String>,
    pub(super) Vec<Finding>,
);

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
