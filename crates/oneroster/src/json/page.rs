//! Page and single-object responses: envelopes, status beside the records, and the
//! careful second read of a body serde_json refused.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::value::Key;
use crate::model::*;

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

/// Reads a page whose records array has room made for `capacity` records at once.
struct PageVisitor<T> {
    capacity: usize,
    records: PhantomData<T>,
}

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
                page.records = map.next_value_seed(Records::<T> {
                    capacity: self.capacity,
                    records: PhantomData,
                })?;
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

/// A page's records: an array, where `null` means empty, with room made for `capacity`
/// records at once.
struct Records<T> {
    capacity: usize,
    records: PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Records<T> {
    type Value = Vec<T>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<T>, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for Records<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_none<E>(self) -> Result<Vec<T>, E> {
        Ok(Vec::new())
    }

    fn visit_unit<E>(self) -> Result<Vec<T>, E> {
        Ok(Vec::new())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Vec<T>, D::Error> {
        d.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut records = Vec::with_capacity(self.capacity);
        while let Some(r) = seq.next_element()? {
            records.push(r);
        }
        Ok(records)
    }
}

/// Parses one page of `T` records. A value serde_json cannot decode in a record's known
/// field (a number out of range such as `1e400`) becomes a warning on that record.
///
/// A body of UTF-8 (every body a server should send) is checked as UTF-8 once, as a
/// whole, and its strings are then read without each being checked again (a page of a
/// thousand records holds some twenty thousand strings); a body that is not UTF-8 is read
/// as bytes, so that its error says where.
pub fn parse_page<T: Record + for<'de> Deserialize<'de>>(
    body: &[u8],
) -> Result<Page<T>, serde_json::Error> {
    parse_page_of(body, 0)
}

/// [`parse_page`] of a page that should hold `expected` records (the page size asked
/// for): room is made for them at once, as many as a body this long can hold. Grown by
/// doubling, a page's records were copied once more over, a few hundred bytes each.
pub fn parse_page_of<T: Record + for<'de> Deserialize<'de>>(
    body: &[u8],
    expected: usize,
) -> Result<Page<T>, serde_json::Error> {
    // No record is shorter than `{"sourcedId":""}`.
    let capacity = expected.min(body.len() / 16);
    match std::str::from_utf8(body) {
        Ok(text) => {
            with_careful_retry(|| page_from(serde_json::Deserializer::from_str(text), capacity))
        }
        Err(_) => {
            with_careful_retry(|| page_from(serde_json::Deserializer::from_slice(body), capacity))
        }
    }
}

fn page_from<'de, R, T>(
    mut de: serde_json::Deserializer<R>,
    capacity: usize,
) -> Result<Page<T>, serde_json::Error>
where
    R: serde_json::de::Read<'de>,
    T: Record + Deserialize<'de>,
{
    let page = de.deserialize_map(PageVisitor::<T> {
        capacity,
        records: PhantomData,
    })?;
    de.end()?;
    Ok(page)
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
    pub(super) static CAREFUL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
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
