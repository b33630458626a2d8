//! The OneRoster query language as the simulator accepts it: `filter`, `sort`/`orderBy`,
//! `fields`, `limit`/`offset`, plus URL decoding of query strings and form bodies.
//!
//! Filters follow the standard: `field<op>'value'` with `= != > >= < <= ~` (contains,
//! case-insensitive), joined by ` AND ` or ` OR ` (one kind of joiner per expression).
//! `dateLastModified` is compared as an instant, so `2026-08-01T00:00:00Z`,
//! `2026-08-01T00:00:00.000Z` and `2026-08-01` all mean the same moment.

use std::cmp::Ordering;

use jiff::Timestamp;

use crate::records::FieldValue;

/// Why a query was refused, with the imsx minor code that goes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueryError {
    pub code_minor: &'static str,
    pub description: String,
}

impl QueryError {
    pub(crate) fn new(code_minor: &'static str, description: impl Into<String>) -> Self {
        QueryError {
            code_minor,
            description: description.into(),
        }
    }
}

/// `%XX` and `+` decoding of one query-string or form component.
pub(crate) fn url_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(at + 1..at + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(decoded) => {
                        out.push(decoded);
                        at += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        at += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// RFC 3986 encoding (unreserved characters kept), for the URLs in `Link` headers.
pub(crate) fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3 / 2);
    for &byte in text.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Decoded `key=value` pairs of a query string or form body, in order.
pub(crate) fn parse_pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            (url_decode(key), url_decode(value))
        })
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Contains,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Predicate {
    pub field: String,
    pub op: Op,
    pub value: String,
    /// The value as an instant (nanoseconds since the Unix epoch), when it reads as one.
    pub instant: Option<i128>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Join {
    And,
    Or,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Filter {
    pub predicates: Vec<Predicate>,
    pub join: Join,
}

/// Reads a date or date-time leniently: with or without `T`, `Z`, fractions, or a time.
pub(crate) fn parse_instant(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if let Ok(instant) = text.parse::<Timestamp>() {
        return Some(instant);
    }
    let civil = text.trim_end_matches('Z').replace(' ', "T");
    if let Ok(datetime) = civil.parse::<jiff::civil::DateTime>() {
        return jiff::tz::TimeZone::UTC.to_timestamp(datetime).ok();
    }
    let date = civil.parse::<jiff::civil::Date>().ok()?;
    jiff::tz::TimeZone::UTC
        .to_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
        .ok()
}

fn parse_predicate(text: &str) -> Result<Predicate, QueryError> {
    let text = text.trim();
    let invalid =
        |why: &str| QueryError::new("invalid_filter_field", format!("filter `{text}`: {why}"));
    let field_end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_'))
        .ok_or_else(|| invalid("expected field<op>'value'"))?;
    let (field, rest) = text.split_at(field_end);
    if field.is_empty() {
        return Err(invalid("missing field name"));
    }
    let rest = rest.trim_start();
    let (op, rest) = [
        ("!=", Op::Ne),
        (">=", Op::Ge),
        ("<=", Op::Le),
        ("=", Op::Eq),
        (">", Op::Gt),
        ("<", Op::Lt),
        ("~", Op::Contains),
    ]
    .iter()
    .find_map(|(token, op)| rest.strip_prefix(token).map(|r| (*op, r)))
    .ok_or_else(|| invalid("unknown operator (use = != > >= < <= ~)"))?;
    let rest = rest.trim();
    let value = rest
        .strip_prefix('\'')
        .and_then(|r| r.strip_suffix('\''))
        .ok_or_else(|| invalid("the value must be in single quotes"))?;
    Ok(Predicate {
        field: field.to_owned(),
        op,
        value: value.to_owned(),
        instant: parse_instant(value).map(|t| t.as_nanosecond()),
    })
}

/// Splits on a joiner that is outside single quotes.
fn split_outside_quotes<'a>(text: &'a str, joiner: &str) -> Vec<&'a str> {
    let mut parts = Vec::new();
    let mut in_quotes = false;
    let mut start = 0;
    let mut at = 0;
    let bytes = text.as_bytes();
    while at < bytes.len() {
        if bytes.get(at) == Some(&b'\'') {
            in_quotes = !in_quotes;
        } else if !in_quotes && text.get(at..).is_some_and(|rest| rest.starts_with(joiner)) {
            parts.push(text.get(start..at).unwrap_or(""));
            at += joiner.len();
            start = at;
            continue;
        }
        at += 1;
    }
    parts.push(text.get(start..).unwrap_or(""));
    parts
}

pub(crate) fn parse_filter(text: &str) -> Result<Filter, QueryError> {
    let and_parts = split_outside_quotes(text, " AND ");
    let or_parts = split_outside_quotes(text, " OR ");
    let (parts, join) = match (and_parts.len() > 1, or_parts.len() > 1) {
        (true, true) => {
            return Err(QueryError::new(
                "invalid_filter_field",
                format!("filter `{text}`: AND and OR cannot be mixed"),
            ));
        }
        (true, false) => (and_parts, Join::And),
        (false, _) => (or_parts, Join::Or),
    };
    let predicates = parts
        .into_iter()
        .map(parse_predicate)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Filter { predicates, join })
}

fn compare_text(actual: &str, op: Op, expected: &str) -> bool {
    match op {
        Op::Eq => actual == expected,
        Op::Ne => actual != expected,
        Op::Gt => actual > expected,
        Op::Ge => actual >= expected,
        Op::Lt => actual < expected,
        Op::Le => actual <= expected,
        Op::Contains => actual.to_lowercase().contains(&expected.to_lowercase()),
    }
}

fn compare_ordering(ordering: Ordering, op: Op) -> bool {
    match op {
        Op::Eq => ordering == Ordering::Equal,
        Op::Ne => ordering != Ordering::Equal,
        Op::Gt => ordering == Ordering::Greater,
        Op::Ge => ordering != Ordering::Less,
        Op::Lt => ordering == Ordering::Less,
        Op::Le => ordering != Ordering::Greater,
        Op::Contains => false,
    }
}

impl Predicate {
    pub(crate) fn matches(&self, value: &FieldValue) -> Result<bool, QueryError> {
        Ok(match value {
            FieldValue::Stamp(stamp) => {
                if self.op == Op::Contains {
                    let text = crate::calendar::stamp_string(*stamp);
                    return Ok(compare_text(&text, Op::Contains, &self.value));
                }
                let expected = self.instant.ok_or_else(|| {
                    QueryError::new(
                        "invalid_filter_field",
                        format!(
                            "filter on {}: `{}` is not a date-time",
                            self.field, self.value
                        ),
                    )
                })?;
                let actual = crate::calendar::timestamp_of(*stamp).as_nanosecond();
                compare_ordering(actual.cmp(&expected), self.op)
            }
            FieldValue::Text(text) => compare_text(text, self.op, &self.value),
            FieldValue::Missing => compare_text("", self.op, &self.value),
            FieldValue::Many(values) => match self.op {
                Op::Ne => values.iter().all(|v| v != &self.value),
                op => values.iter().any(|v| compare_text(v, op, &self.value)),
            },
        })
    }
}

/// A sortable rendering of a field value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum SortKey {
    Number(u32),
    Text(String),
}

impl From<FieldValue> for SortKey {
    fn from(value: FieldValue) -> Self {
        match value {
            FieldValue::Stamp(stamp) => SortKey::Number(stamp),
            FieldValue::Text(text) => SortKey::Text(text),
            FieldValue::Many(values) => SortKey::Text(values.join(",")),
            FieldValue::Missing => SortKey::Text(String::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_encodes_urls() {
        assert_eq!(url_decode("a%20b+c%27%3E"), "a b c'>");
        assert_eq!(
            url_encode("dateLastModified>'x y'"),
            "dateLastModified%3E%27x%20y%27"
        );
        assert_eq!(
            parse_pairs("limit=5&filter=role%3D%27student%27"),
            vec![
                ("limit".to_owned(), "5".to_owned()),
                ("filter".to_owned(), "role='student'".to_owned())
            ]
        );
    }

    #[test]
    fn parses_two_predicates_and_quoted_joiners() {
        let filter = parse_filter("role='student' AND familyName~'Smith'").unwrap();
        assert_eq!(filter.join, Join::And);
        assert_eq!(filter.predicates.len(), 2);
        assert_eq!(filter.predicates[1].op, Op::Contains);
        let quoted = parse_filter("title='Art AND Music'").unwrap();
        assert_eq!(quoted.predicates.len(), 1);
        assert_eq!(quoted.predicates[0].value, "Art AND Music");
        assert!(parse_filter("a='1' AND b='2' OR c='3'").is_err());
        assert!(parse_filter("role=student").is_err());
        assert!(parse_filter("role=='x'").is_err());
    }

    #[test]
    fn dates_compare_as_instants() {
        let filter = parse_filter("dateLastModified>'2026-08-01T00:00:00.000Z'").unwrap();
        let predicate = &filter.predicates[0];
        assert!(predicate.matches(&FieldValue::Stamp(1)).unwrap());
        assert!(!predicate.matches(&FieldValue::Stamp(0)).unwrap());
        let date_only = parse_filter("dateLastModified>='2026-08-01'").unwrap();
        assert!(
            date_only.predicates[0]
                .matches(&FieldValue::Stamp(0))
                .unwrap()
        );
        let no_zone = parse_filter("dateLastModified<'2026-08-01 00:00:01'").unwrap();
        assert!(
            no_zone.predicates[0]
                .matches(&FieldValue::Stamp(0))
                .unwrap()
        );
    }

    #[test]
    fn many_valued_fields_match_any_element() {
        let predicate = parse_predicate("grades='05'").unwrap();
        assert!(
            predicate
                .matches(&FieldValue::Many(vec!["04".into(), "05".into()]))
                .unwrap()
        );
        let negated = parse_predicate("grades!='05'").unwrap();
        assert!(
            !negated
                .matches(&FieldValue::Many(vec!["05".into()]))
                .unwrap()
        );
    }
}
