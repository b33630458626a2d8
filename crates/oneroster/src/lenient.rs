//! Parsing single OneRoster values the way real servers send them.
//!
//! The standard says `"true"`, servers send `true`, `"TRUE"` or `1`; it says ISO-8601 UTC,
//! servers drop the `T`, the `Z` or the time. These functions accept every spelling we have
//! seen and return `None` for what they cannot read, so callers can record a warning
//! instead of failing a whole page over one odd cell. JSON and CSV share them.
//!
//! The `read_*` forms also say whether the text was the standard spelling ([`Read`]), so a
//! reader can count what it accepted leniently (`TRUE`, `2026-01-02 03:04:05`) and
//! `inspect` can show it. Deciding costs one comparison on the standard spelling.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::Offset;

/// `str::trim`, skipped for the usual value that starts and ends with a visible ASCII
/// character (no white space can end there); the Unicode-aware trim is a measurable share
/// of a CSV row otherwise. Same result as `str::trim` for every input.
#[inline]
pub(crate) fn trim(s: &str) -> &str {
    match s.as_bytes() {
        [] => s,
        [first, .., last] | [first @ last]
            if first.is_ascii_graphic() && last.is_ascii_graphic() =>
        {
            s
        }
        _ => s.trim(),
    }
}

/// A value read from text, and whether the text was the standard's spelling of it
/// (surrounding white space aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read<T> {
    pub value: T,
    /// `false` when the value was read leniently: `TRUE`, `1`, `Teacher`, `inactive`, a
    /// date-time without its `T` or `Z`, a date-time where a date belongs.
    pub standard: bool,
}

impl<T> Read<T> {
    pub fn standard(value: T) -> Read<T> {
        Read {
            value,
            standard: true,
        }
    }

    pub fn lenient(value: T) -> Read<T> {
        Read {
            value,
            standard: false,
        }
    }
}

/// `true`/`false` in any case, `1`/`0`, `yes`/`no`, `t`/`f`, `y`/`n`.
pub fn parse_bool(s: &str) -> Option<bool> {
    read_bool(s).map(|r| r.value)
}

/// [`parse_bool`], saying whether it was `true` or `false` as the standard writes them.
pub fn read_bool(s: &str) -> Option<Read<bool>> {
    let s = trim(s);
    match s {
        "true" => return Some(Read::standard(true)),
        "false" => return Some(Read::standard(false)),
        _ => {}
    }
    const TRUE: [&str; 5] = ["true", "1", "yes", "t", "y"];
    const FALSE: [&str; 5] = ["false", "0", "no", "f", "n"];
    if TRUE.iter().any(|t| s.eq_ignore_ascii_case(t)) {
        Some(Read::lenient(true))
    } else if FALSE.iter().any(|f| s.eq_ignore_ascii_case(f)) {
        Some(Read::lenient(false))
    } else {
        None
    }
}

/// An instant. Accepts RFC 3339 with any offset and optional fractions, and — read as
/// UTC — date-times without an offset (`T` or space separated) and bare dates.
pub fn parse_timestamp(s: &str) -> Option<Timestamp> {
    read_timestamp(s).map(|r| r.value)
}

/// [`parse_timestamp`], saying whether it was ISO-8601 UTC as the standard writes it
/// (`2026-01-02T03:04:05Z`, any fraction): another offset, no offset, a space for the
/// `T` or a bare date is lenient.
pub fn read_timestamp(s: &str) -> Option<Read<Timestamp>> {
    let s = trim(s);
    if s.is_empty() {
        return None;
    }
    if let Some(ts) = canonical_timestamp(s) {
        return Some(Read::standard(ts));
    }
    if let Ok(ts) = s.parse::<Timestamp>() {
        let b = s.as_bytes();
        let utc_with_t = b.get(10) == Some(&b'T') && b.last() == Some(&b'Z');
        return Some(Read {
            value: ts,
            standard: utc_with_t,
        });
    }
    if let Ok(dt) = s.parse::<DateTime>() {
        return Offset::UTC.to_timestamp(dt).ok().map(Read::lenient);
    }
    let date = s.parse::<Date>().ok()?;
    Offset::UTC
        .to_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
        .ok()
        .map(Read::lenient)
}

/// The spelling nearly every server sends, `2026-01-02T03:04:05Z`, or with one to nine
/// digits of a second's fraction before the `Z` (`.123`, or `.123456789` as the store
/// writes its times), read without the general parser (it is most of a CSV row's parse
/// otherwise). `None` for any other spelling, which [`parse_timestamp`] may still read.
pub fn canonical_timestamp(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    let fraction = match b.len() {
        20 => None,
        22..=30 if b[19] == b'.' => Some(&b[20..b.len() - 1]),
        _ => return None,
    };
    if b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[b.len() - 1] != b'Z'
    {
        return None;
    }
    let num = |r: &[u8]| -> Option<i64> {
        r.iter().try_fold(0i64, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let (y, mo, d) = (num(&b[0..4])?, num(&b[5..7])?, num(&b[8..10])?);
    let (h, mi, sec) = (num(&b[11..13])?, num(&b[14..16])?, num(&b[17..19])?);
    let nanos = match fraction {
        Some(f) => num(f)? * 10i64.pow(9 - f.len() as u32),
        None => 0,
    };
    let days_in_month = match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => return None,
    };
    if d < 1 || d > days_in_month || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    // Days from 1970-01-01 to the civil date (H. Hinnant's algorithm).
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec;
    Timestamp::new(secs, nanos as i32).ok()
}

/// A calendar date, `YYYY-MM-DD`; a full date-time is accepted and its date part kept.
pub fn parse_date(s: &str) -> Option<Date> {
    read_date(s).map(|r| r.value)
}

/// [`parse_date`], saying whether it was `YYYY-MM-DD` as the standard writes it.
pub fn read_date(s: &str) -> Option<Read<Date>> {
    let s = trim(s);
    if let Ok(d) = s.parse::<Date>() {
        let b = s.as_bytes();
        let standard = b.len() == 10 && b[4] == b'-' && b[7] == b'-';
        return Some(Read { value: d, standard });
    }
    if let Ok(dt) = s.parse::<DateTime>() {
        return Some(Read::lenient(dt.date()));
    }
    s.parse::<Timestamp>()
        .ok()
        .map(|ts| Read::lenient(Offset::UTC.to_datetime(ts).date()))
}

/// Formats an instant the way OneRoster writes it: `2026-01-01T00:00:00Z` (fractions kept
/// when present).
pub fn format_timestamp(ts: Timestamp) -> String {
    ts.to_string()
}

/// A comma-separated list (`"09,10,11"`), trimmed, empty items dropped.
pub fn split_list(s: &str) -> Vec<String> {
    list_items(s).map(str::to_owned).collect()
}

/// The items of a comma-separated list, trimmed, empty items dropped, borrowed.
pub fn list_items(s: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        loop {
            let (item, tail) = split_at_byte(rest?, b',');
            rest = tail;
            let item = trim(item);
            if !item.is_empty() {
                return Some(item);
            }
        }
    })
}

/// `s` up to the first `byte` (an ASCII one), and what follows it if it occurs.
#[inline]
fn split_at_byte(s: &str, byte: u8) -> (&str, Option<&str>) {
    match find_byte(s.as_bytes(), byte) {
        // An ASCII byte is always a character boundary: `get` cannot fail here.
        Some(i) => (s.get(..i).unwrap_or(s), s.get(i + 1..)),
        None => (s, None),
    }
}

/// The first `byte` in `s`, eight bytes at a time. The cells searched are short, where
/// `str::find`'s set-up costs more than the search, and a byte loop is slow.
fn find_byte(s: &[u8], byte: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pattern = LO * u64::from(byte);
    let mut chunks = s.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        // Bytes equal to `byte` become zero; the lowest flagged byte is the first zero.
        let x = u64::from_le_bytes(word) ^ pattern;
        let zero = x.wrapping_sub(LO) & !x & HI;
        if zero != 0 {
            return Some(offset + (zero.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|b| *b == byte)
        .map(|i| offset + i)
}

/// A trimmed, non-empty string or `None`.
pub fn non_empty(s: &str) -> Option<String> {
    let t = trim(s);
    (!t.is_empty()).then(|| t.to_owned())
}

/// The CSV spelling of `userIds`: `{LDAP:12},{Fed:34}`. Braces are optional; a pair
/// without a colon becomes an identifier with an empty type.
pub fn parse_user_ids(s: &str) -> Vec<crate::model::UserId> {
    user_id_pairs(s)
        .map(|(kind, identifier)| crate::model::UserId {
            kind: kind.to_owned(),
            identifier: identifier.to_owned(),
        })
        .collect()
}

/// The `(type, identifier)` pairs of a `userIds` cell, borrowed.
pub fn user_id_pairs(s: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut rest = trim(s);
    std::iter::from_fn(move || {
        loop {
            if rest.is_empty() {
                return None;
            }
            let (item, tail) = if let Some(body) = rest.strip_prefix('{') {
                let (item, tail) = split_at_byte(body, b'}');
                (item, tail.unwrap_or("").trim_start_matches([',', ' ']))
            } else {
                let (item, tail) = split_at_byte(rest, b',');
                (item, tail.unwrap_or(""))
            };
            rest = match tail.as_bytes().first() {
                Some(b) if b.is_ascii_graphic() => tail,
                _ => tail.trim_start(),
            };
            let item = trim(item);
            if !item.is_empty() {
                let (kind, identifier) = match split_at_byte(item, b':') {
                    (kind, Some(identifier)) => (kind, identifier),
                    (_, None) => ("", item),
                };
                return Some((trim(kind), trim(identifier)));
            }
        }
    })
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
    fn the_canonical_fast_path_agrees_with_the_general_parser() {
        for s in [
            "1970-01-01T00:00:00Z",
            "2000-02-29T23:59:59Z",
            "2026-12-31T12:34:56.789Z",
            "1999-03-01T00:00:00.000Z",
            "2100-02-28T01:02:03Z",
            "1901-07-15T10:00:00Z",
            "2026-12-06T01:23:45.5Z",
            "2026-12-06T01:23:45.123456Z",
            "2026-12-06T01:23:45.123456789Z",
            "2026-12-06T01:23:45.000000001Z",
            "1969-12-31T23:59:59.999999999Z",
        ] {
            let fast = canonical_timestamp(s);
            assert!(fast.is_some(), "{s}");
            assert_eq!(fast, s.parse::<Timestamp>().ok(), "{s}");
        }
        for bad in [
            "2001-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01 00:00:00Z",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00.1234567890Z",
            "2026-01-01T00:00:00.12a4Z",
            "2026-01-01T00:00:00,123Z",
            "2026-01-01T00:00:00.123+00:00",
        ] {
            assert_eq!(canonical_timestamp(bad), None, "{bad}");
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
    fn standard_spellings_are_told_from_lenient_ones() {
        let standard = |r: Option<Read<_>>| r.map(|r| r.standard);
        assert_eq!(read_bool("true"), Some(Read::standard(true)));
        assert_eq!(read_bool(" false "), Some(Read::standard(false)));
        for lenient in ["TRUE", "True", "1", "yes", "Y", "t"] {
            assert_eq!(read_bool(lenient), Some(Read::lenient(true)), "{lenient}");
        }
        assert_eq!(read_bool("0"), Some(Read::lenient(false)));
        assert_eq!(read_bool("maybe"), None);

        for s in [
            "2026-01-02T03:04:05Z",
            "2026-01-02T03:04:05.123Z",
            "2026-01-02T03:04:05.123456Z",
        ] {
            assert_eq!(standard(read_timestamp(s)), Some(true), "{s}");
        }
        for s in [
            "2026-01-02 03:04:05",
            "2026-01-02T03:04:05",
            "2026-01-02T03:04:05+00:00",
            "2026-01-01T22:04:05-05:00",
            "2026-01-02",
        ] {
            assert_eq!(standard(read_timestamp(s)), Some(false), "{s}");
        }
        assert_eq!(read_timestamp("1/05/2023"), None);

        assert_eq!(read_date("2026-08-15").map(|r| r.standard), Some(true));
        for s in ["2026-08-15T00:00:00Z", "2026-08-15 10:00:00"] {
            assert_eq!(
                read_date(s),
                Some(Read::lenient(Date::new(2026, 8, 15).unwrap())),
                "{s}"
            );
        }
        assert_eq!(read_date("8/15/2026"), None);
    }

    #[test]
    fn find_byte_agrees_with_position() {
        let text = b"0123456789abcdef,ghij}klmnop:qrstuvwxyz\xc3\xa9,";
        for len in 0..text.len() {
            for start in 0..len {
                let s = &text[start..len];
                for b in [b',', b'}', b':', b'0', b'z', 0x80, 0xc3] {
                    assert_eq!(find_byte(s, b), s.iter().position(|c| *c == b), "{s:?} {b}");
                }
            }
        }
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
