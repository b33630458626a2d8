//! When a source syncs by itself: a full and a delta schedule in the district's time zone,
//! with pause windows (summer). Pure: the server's scheduler passes the time in and asks
//! when the next run is due, so tests move a clock instead of waiting hours.
//!
//! A spec is deliberately smaller than cron — `off`, `hourly :MM`, `daily HH:MM`,
//! `weekly DAY[,DAY…] HH:MM` — because those are the schedules districts use, and a
//! spec an admin can read at a glance is one they get right.

use std::fmt;

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

/// A source's schedules. Defaults: full weekly on Sunday at 02:00, delta daily at 02:00
/// (when both fall together, the full runs), in the server's time zone unless
/// `time_zone` names one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    #[serde(default = "default_full")]
    pub full: Spec,
    #[serde(default = "default_delta")]
    pub delta: Spec,
    /// An IANA zone (`America/Chicago`); the server's own zone when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Dates (in the zone, both ends included) on which nothing runs by schedule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pause: Vec<PauseWindow>,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            full: default_full(),
            delta: default_delta(),
            time_zone: None,
            pause: Vec::new(),
        }
    }
}

fn default_full() -> Spec {
    Spec::Weekly {
        days: vec![Weekday::Sunday],
        at: Time::constant(2, 0, 0, 0),
    }
}

fn default_delta() -> Spec {
    Spec::Daily {
        at: Time::constant(2, 0, 0, 0),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PauseWindow {
    pub from: Date,
    pub to: Date,
}

/// When a kind of run is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    Off,
    /// Every hour at this minute.
    Hourly {
        minute: i8,
    },
    Daily {
        at: Time,
    },
    Weekly {
        days: Vec<Weekday>,
        at: Time,
    },
}

const DAYS: [(Weekday, &str); 7] = [
    (Weekday::Monday, "mon"),
    (Weekday::Tuesday, "tue"),
    (Weekday::Wednesday, "wed"),
    (Weekday::Thursday, "thu"),
    (Weekday::Friday, "fri"),
    (Weekday::Saturday, "sat"),
    (Weekday::Sunday, "sun"),
];

fn parse_time(s: &str) -> Option<Time> {
    let (h, m) = s.split_once(':')?;
    let h: i8 = h.parse().ok()?;
    let m: i8 = m.parse().ok()?;
    Time::new(h, m, 0, 0).ok()
}

impl Spec {
    pub fn parse(text: &str) -> Result<Spec, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let bad = || {
            format!(
                "schedule '{text}' is not one of: off, hourly :MM, daily HH:MM, weekly DAY[,DAY…] HH:MM (e.g. weekly sun 02:00)"
            )
        };
        match words.as_slice() {
            ["off"] => Ok(Spec::Off),
            ["hourly", m] => {
                let minute: i8 = m.trim_start_matches(':').parse().map_err(|_| bad())?;
                if !(0..60).contains(&minute) {
                    return Err(bad());
                }
                Ok(Spec::Hourly { minute })
            }
            ["daily", t] => Ok(Spec::Daily {
                at: parse_time(t).ok_or_else(bad)?,
            }),
            ["weekly", days, t] => {
                let mut list = Vec::new();
                for d in days.split(',') {
                    let d = d.trim().to_ascii_lowercase();
                    let day = DAYS
                        .iter()
                        .find(|(_, n)| d.starts_with(n))
                        .map(|(w, _)| *w)
                        .ok_or_else(bad)?;
                    if !list.contains(&day) {
                        list.push(day);
                    }
                }
                Ok(Spec::Weekly {
                    days: list,
                    at: parse_time(t).ok_or_else(bad)?,
                })
            }
            _ => Err(bad()),
        }
    }

    /// The first time strictly after `after` this spec fires in `tz`; `None` when off.
    pub fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let local = after.to_zoned_datetime(tz.clone());
        match self {
            Spec::Off => None,
            Spec::Hourly { minute } => {
                let hour_start = local
                    .datetime()
                    .with()
                    .minute(0)
                    .second(0)
                    .subsec_nanosecond(0)
                    .build()
                    .ok()?;
                // Two days of hours is more than any DST gap needs.
                for h in 0..48i64 {
                    let dt = hour_start
                        .checked_add(h.hours())
                        .ok()?
                        .with()
                        .minute(*minute)
                        .build()
                        .ok()?;
                    let t = dt.to_zoned_datetime(tz.clone()).ok()?.timestamp();
                    if t > after {
                        return Some(t);
                    }
                }
                None
            }
            Spec::Daily { at } => first_on_days(local.date(), *at, tz, after, |_| true),
            Spec::Weekly { days, at } => first_on_days(local.date(), *at, tz, after, |d| {
                days.contains(&d.weekday())
            }),
        }
    }
}

fn first_on_days(
    start: Date,
    at: Time,
    tz: &TimeZone,
    after: Timestamp,
    wanted: impl Fn(Date) -> bool,
) -> Option<Timestamp> {
    for d in 0..9i64 {
        let date = start.checked_add(d.days()).ok()?;
        if !wanted(date) {
            continue;
        }
        // A time a DST jump skips runs just after the jump (jiff's "compatible" rule).
        let t = date
            .to_datetime(at)
            .to_zoned_datetime(tz.clone())
            .ok()?
            .timestamp();
        if t > after {
            return Some(t);
        }
    }
    None
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Spec::Off => f.write_str("off"),
            Spec::Hourly { minute } => write!(f, "hourly :{minute:02}"),
            Spec::Daily { at } => write!(f, "daily {:02}:{:02}", at.hour(), at.minute()),
            Spec::Weekly { days, at } => {
                let names: Vec<&str> = days
                    .iter()
                    .filter_map(|d| DAYS.iter().find(|(w, _)| w == d).map(|(_, n)| *n))
                    .collect();
                write!(
                    f,
                    "weekly {} {:02}:{:02}",
                    names.join(","),
                    at.hour(),
                    at.minute()
                )
            }
        }
    }
}

impl Serialize for Spec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Spec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Spec::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Schedule {
    /// The zone the schedule runs in; an unknown name is an error naming it.
    pub fn zone(&self) -> Result<TimeZone, String> {
        match &self.time_zone {
            None => Ok(TimeZone::system()),
            Some(name) => TimeZone::get(name).map_err(|e| {
                format!("time_zone '{name}' is not a known time zone (e.g. America/Chicago): {e}")
            }),
        }
    }

    /// Whether `at` falls in a pause window (by its date in `tz`).
    pub fn paused(&self, at: Timestamp, tz: &TimeZone) -> bool {
        let date = at.to_zoned_datetime(tz.clone()).date();
        self.pause.iter().any(|w| w.from <= date && date <= w.to)
    }

    pub fn validate(&self) -> Result<(), String> {
        self.zone()?;
        for w in &self.pause {
            if w.to < w.from {
                return Err(format!(
                    "pause window {} to {} ends before it starts",
                    w.from, w.to
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn specs_parse_and_print_back() {
        for text in [
            "off",
            "hourly :15",
            "daily 02:00",
            "weekly sun 02:00",
            "weekly mon,wed 23:30",
        ] {
            assert_eq!(Spec::parse(text).unwrap().to_string(), text);
        }
        assert!(Spec::parse("daily 25:00").is_err());
        assert!(
            Spec::parse("weekly funday 02:00")
                .unwrap_err()
                .contains("weekly sun 02:00")
        );
        assert!(Spec::parse("0 2 * * *").is_err());
    }

    #[test]
    fn next_runs_in_the_zone() {
        let chicago = TimeZone::get("America/Chicago").unwrap();
        let daily = Spec::parse("daily 02:00").unwrap();
        // 2026-09-01 is a Tuesday; 02:00 CDT is 07:00 UTC.
        assert_eq!(
            daily.next_after(ts("2026-09-01T06:00:00Z"), &chicago),
            Some(ts("2026-09-01T07:00:00Z"))
        );
        assert_eq!(
            daily.next_after(ts("2026-09-01T07:00:00Z"), &chicago),
            Some(ts("2026-09-02T07:00:00Z"))
        );
        let weekly = Schedule::default().full;
        assert_eq!(
            weekly.next_after(ts("2026-09-01T06:00:00Z"), &chicago),
            Some(ts("2026-09-06T07:00:00Z"))
        );
        let hourly = Spec::parse("hourly :30").unwrap();
        assert_eq!(
            hourly.next_after(ts("2026-09-01T06:31:00Z"), &chicago),
            Some(ts("2026-09-01T07:30:00Z"))
        );
        assert_eq!(
            Spec::Off.next_after(ts("2026-09-01T06:00:00Z"), &chicago),
            None
        );
    }

    #[test]
    fn a_time_skipped_by_dst_runs_after_the_jump() {
        let chicago = TimeZone::get("America/Chicago").unwrap();
        let daily = Spec::parse("daily 02:30").unwrap();
        // 2027-03-14: clocks jump from 02:00 CST to 03:00 CDT; 02:30 does not exist.
        let t = daily
            .next_after(ts("2027-03-14T06:00:00Z"), &chicago)
            .unwrap();
        assert_eq!(t, ts("2027-03-14T08:30:00Z"));
    }

    #[test]
    fn pause_windows_cover_whole_dates() {
        let utc = TimeZone::UTC;
        let s = Schedule {
            pause: vec![PauseWindow {
                from: "2027-06-10".parse().unwrap(),
                to: "2027-08-15".parse().unwrap(),
            }],
            ..Schedule::default()
        };
        assert!(s.paused(ts("2027-06-10T00:00:00Z"), &utc));
        assert!(s.paused(ts("2027-08-15T23:59:00Z"), &utc));
        assert!(!s.paused(ts("2027-08-16T00:00:00Z"), &utc));
        let bad = Schedule {
            time_zone: Some("Mars/Olympus".into()),
            ..Schedule::default()
        };
        assert!(bad.validate().unwrap_err().contains("Mars/Olympus"));
    }
}
