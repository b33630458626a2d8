//! Parsing single OneRoster values the way real servers send them.
//!
//! The standard says `"true"`, servers send `true`, `"TRUE"` or `1`; it says ISO-8601 UTC,
//! servers drop the `T`, the `Z` or the time. These functions accept every spelling we have
//! seen and return `None` for what they cannot read, so callers can record a warning
//! instead of failing a whole page over one odd cell. JSON and CSV share them.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::Offset;

/// `true`/`false` in any case, `1`/`0`, `yes`/`no`, `t`/`f`, `y`/`n`.
pub fn parse_bool(s: &str) -> Option<bool> {
    let s = s.trim();
    const TRUE: [&str; 5] = ["true", "1", "yes", "t", "y"];
    const FALSE: [&str; 5] = ["false", "0", "no", "f", "n"];
    if TRUE.iter().any(|t| s.eq_ignore_ascii_case(t)) {
        Some(true)
    } else if FALSE.iter().any(|f| s.eq_ignore_ascii_case(f)) {
        Some(false)
    } else {
        None
    }
}

/// An instant. Accepts RFC 3339 with any offset and optional fractions, and — read as
/// UTC — date-times without an offset (`T` or space separated) and bare dates.
pub fn parse_timestamp(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(ts) = s.parse::<Timestamp>() {
        return Some(ts);
    }
    if let Ok(dt) = s.parse::<DateTime>() {
        return Offset::UTC.to_timestamp(dt).ok();
    }
    let date = s.parse::<Date>().ok()?;
    Offset::UTC
        .to_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
        .ok()
}

/// A calendar date, `YYYY-MM-DD`; a full date-time is accepted and its date part kept.
pub fn parse_date(s: &str) -> Option<Date> {
    let s = s.trim();
    if let Ok(d) = s.parse::<Date>() {
        return Some(d);
    }
    if let Ok(dt) = s.parse::<DateTime>() {
        return Some(dt.date());
    }
    s.parse::<Timestamp>()
        .ok()
        .map(|ts| Offset::UTC.to_datetime(ts).date())
}

/// Formats an instant the way OneRoster writes it: `2026-01-01T00:00:00Z` (fractions kept
/// when present).
pub fn format_timestamp(ts: Timestamp) -> String {
    ts.to_string()
}

/// A comma-separated list (`"09,10,11"`), trimmed, empty items dropped.
pub fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A trimmed, non-empty string or `None`.
pub fn non_empty(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

/// The CSV spelling of `userIds`: `{LDAP:12},{Fed:34}`. Braces are optional; a pair
/// without a colon becomes an identifier with an empty type.
pub fn parse_user_ids(s: &str) -> Vec<crate::model::UserId> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let (item, tail) = if let Some(body) = rest.strip_prefix('{') {
            match body.find('}') {
                Some(end) => (&body[..end], body[end + 1..].trim_start_matches([',', ' '])),
                None => (body, ""),
            }
        } else {
            match rest.find(',') {
                Some(end) => (&rest[..end], &rest[end + 1..]),
                None => (rest, ""),
            }
        };
        let item = item.trim();
        if !item.is_empty() {
            let (kind, identifier) = item.split_once(':').unwrap_or(("", item));
            out.push(crate::model::UserId {
                kind: kind.trim().to_owned(),
                identifier: identifier.trim().to_owned(),
            });
        }
        rest = tail.trim_start();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_in_every_spelling() {
        for t in ["true", "TRUE", "True", " 1", "yes", "Y"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["false", "FALSE", "0", "no", "N "] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        for bad in ["", "maybe", "2", "truee"] {
            assert_eq!(parse_bool(bad), None, "{bad}");
        }
    }

    #[test]
    fn timestamps_with_and_without_t_z_and_fractions() {
        let want: Timestamp = "2026-01-02T03:04:05Z".parse().unwrap();
        for s in [
            "2026-01-02T03:04:05Z",
            "2026-01-02T03:04:05",
            "2026-01-02 03:04:05",
            "2026-01-02T03:04:05+00:00",
            "2026-01-01T22:04:05-05:00",
            " 2026-01-02T03:04:05.000Z ",
        ] {
            assert_eq!(parse_timestamp(s), Some(want), "{s}");
        }
        assert_eq!(
            parse_timestamp("2026-01-02T03:04:05.123Z").map(|t| t.subsec_millisecond()),
            Some(123)
        );
        assert_eq!(
            parse_timestamp("2026-01-02"),
            Some("2026-01-02T00:00:00Z".parse().unwrap())
        );
        for bad in ["", "1/05/2023", "yesterday", "2026-13-01"] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn dates() {
        let want = Date::new(2026, 8, 15).unwrap();
        assert_eq!(parse_date("2026-08-15"), Some(want));
        assert_eq!(parse_date("2026-08-15T00:00:00Z"), Some(want));
        assert_eq!(parse_date("2026-08-15 10:00:00"), Some(want));
        assert_eq!(parse_date("8/15/2026"), None);
    }

    #[test]
    fn lists_and_user_ids() {
        assert_eq!(split_list(" 09, 10 ,,11"), ["09", "10", "11"]);
        assert!(split_list("").is_empty());
        let ids = parse_user_ids("{LDAP:12},{Fed:34}");
        assert_eq!(ids.len(), 2);
        assert_eq!(
            (ids[0].kind.as_str(), ids[0].identifier.as_str()),
            ("LDAP", "12")
        );
        assert_eq!(
            (ids[1].kind.as_str(), ids[1].identifier.as_str()),
            ("Fed", "34")
        );
        let ids = parse_user_ids("LDAP:12, 99");
        assert_eq!(ids.len(), 2);
        assert_eq!(ids[1].kind, "");
        assert_eq!(ids[1].identifier, "99");
        assert!(parse_user_ids(" ").is_empty());
    }
}
