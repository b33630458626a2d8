//! Time in the simulated district: the epoch, the churn calendar and date formatting.
//!
//! Every record carries `modified` as seconds since [`EPOCH`]. A change made on day `D`
//! is stamped inside that day (from 06:00 UTC for ordinary churn, 02:00 for the school-year
//! rollover), so "everything changed after day `D0`" is exactly
//! `dateLastModified > end_of_day(D0)`: that is what makes delta pulls exact.

use jiff::Timestamp;

/// Day 0 of every simulated district: 2026-08-01T00:00:00Z.
pub const EPOCH: &str = "2026-08-01T00:00:00Z";
const EPOCH_UNIX_DAYS: i64 = 20_666;
const SECONDS_PER_DAY: u32 = 86_400;

/// Kindergarten students move from `first.last@` to `username@` on this day (and every
/// kindergarten student enrolled afterwards gets `username@`).
pub const KINDERGARTEN_EMAIL_CHANGE_DAY: u32 = 30;
/// The first elementary school is renamed on this day (an org change).
pub const SCHOOL_RENAME_DAY: u32 = 120;
/// The first school-year rollover (2027-07-02): promotion, graduation, a new kindergarten
/// cohort, and a new year of sessions, courses, classes and enrollments.
pub const FIRST_ROLLOVER_DAY: u32 = 335;
/// Later rollovers follow every 365 days (700, 1065, …).
pub const ROLLOVER_INTERVAL: u32 = 365;
/// The school year in session on day 0 (named by its ending calendar year).
pub const FIRST_SCHOOL_YEAR: u16 = 2027;
/// Semesters start here (day numbers within a school year) and schedule changes peak in
/// the 30 days after.
pub(crate) const SEMESTER_START_DAYS: [u32; 2] = [16, 157];

pub fn is_rollover_day(day: u32) -> bool {
    day >= FIRST_ROLLOVER_DAY && (day - FIRST_ROLLOVER_DAY).is_multiple_of(ROLLOVER_INTERVAL)
}

/// The instant a stamp stands for.
pub fn timestamp_of(stamp: u32) -> Timestamp {
    let seconds = EPOCH_UNIX_DAYS * i64::from(SECONDS_PER_DAY) + i64::from(stamp);
    Timestamp::from_second(seconds).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The last second of a simulated day: a delta pull after a full pull of day `D` filters
/// on `dateLastModified>'{end_of_day(D)}'`.
pub fn end_of_day(day: u32) -> Timestamp {
    timestamp_of(day.saturating_mul(SECONDS_PER_DAY) + SECONDS_PER_DAY - 1)
}

/// Hands out the modification stamps of one simulated day, one second apart, so events
/// on the same day are ordered and every stamp stays inside the day.
#[derive(Debug)]
pub(crate) struct Clock {
    day: u32,
    tick: u32,
}

impl Clock {
    pub(crate) fn starting_at(day: u32, hour: u32) -> Clock {
        Clock {
            day,
            tick: hour * 3600,
        }
    }

    pub(crate) fn now(&mut self) -> u32 {
        let stamp = self.day * SECONDS_PER_DAY + self.tick.min(SECONDS_PER_DAY - 1);
        self.tick += 1;
        stamp
    }
}

/// Proleptic Gregorian (year, month, day) from days since 1970-01-01 (H. Hinnant).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Appends `YYYY-MM-DDTHH:MM:SS.000Z` for a stamp; hot on every page, so no allocation.
pub(crate) fn write_stamp(out: &mut Vec<u8>, stamp: u32) {
    let (year, month, day) = civil_from_days(EPOCH_UNIX_DAYS + i64::from(stamp / SECONDS_PER_DAY));
    let seconds = stamp % SECONDS_PER_DAY;
    write_digits(out, year.unsigned_abs() as u32, 4);
    out.push(b'-');
    write_digits(out, month, 2);
    out.push(b'-');
    write_digits(out, day, 2);
    out.push(b'T');
    write_digits(out, seconds / 3600, 2);
    out.push(b':');
    write_digits(out, seconds / 60 % 60, 2);
    out.push(b':');
    write_digits(out, seconds % 60, 2);
    out.extend_from_slice(b".000Z");
}

pub(crate) fn stamp_string(stamp: u32) -> String {
    let mut out = Vec::with_capacity(24);
    write_stamp(&mut out, stamp);
    String::from_utf8_lossy(&out).into_owned()
}

fn write_digits(out: &mut Vec<u8>, value: u32, width: u32) {
    let mut divisor = 10u32.pow(width - 1);
    while divisor > 0 {
        out.push(b'0' + (value / divisor % 10) as u8);
        divisor /= 10;
    }
}

/// `YYYY-MM-DD` of a simulated day.
pub(crate) fn date_of_day(day: u32) -> String {
    let (year, month, date) = civil_from_days(EPOCH_UNIX_DAYS + i64::from(day));
    format!("{year:04}-{month:02}-{date:02}")
}

/// The first day of school year `year` as a day number (may precede the epoch's year).
pub(crate) fn school_year_start_day(year: u16) -> u32 {
    let offset = u32::from(year.saturating_sub(FIRST_SCHOOL_YEAR));
    16 + offset * ROLLOVER_INTERVAL
}

/// Start and end dates of a session: the school year runs 08-17 … 06-04, semester 1 ends
/// 12-18, semester 2 starts 01-05, grading periods split each semester.
pub(crate) fn session_dates(
    year: u16,
    kind: crate::model::SessionKind,
    part: u8,
) -> (String, String) {
    use crate::model::SessionKind;
    let fall = year - 1;
    let (start, end) = match (kind, part) {
        (SessionKind::SchoolYear, _) => ((fall, "08-17"), (year, "06-04")),
        (SessionKind::Semester, 1) => ((fall, "08-17"), (fall, "12-18")),
        (SessionKind::Semester, _) => ((year, "01-05"), (year, "06-04")),
        (SessionKind::GradingPeriod, 1) => ((fall, "08-17"), (fall, "10-16")),
        (SessionKind::GradingPeriod, 2) => ((fall, "10-19"), (fall, "12-18")),
        (SessionKind::GradingPeriod, 3) => ((year, "01-05"), (year, "03-12")),
        (SessionKind::GradingPeriod, _) => ((year, "03-15"), (year, "06-04")),
    };
    (
        format!("{}-{}", start.0, start.1),
        format!("{}-{}", end.0, end.1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_and_rollover_dates() {
        assert_eq!(timestamp_of(0).to_string(), EPOCH);
        assert_eq!(date_of_day(FIRST_ROLLOVER_DAY), "2027-07-02");
        assert_eq!(date_of_day(KINDERGARTEN_EMAIL_CHANGE_DAY), "2026-08-31");
        assert!(is_rollover_day(335) && is_rollover_day(700) && !is_rollover_day(336));
    }

    #[test]
    fn stamps_format_like_jiff() {
        for stamp in [0, 59, 86_399, 86_400 * 200 + 21_601, 86_400 * 1500 + 7_200] {
            let ours = stamp_string(stamp);
            let theirs = timestamp_of(stamp)
                .strftime("%Y-%m-%dT%H:%M:%S.000Z")
                .to_string();
            assert_eq!(ours, theirs);
        }
        assert_eq!(end_of_day(0).to_string(), "2026-08-01T23:59:59Z");
    }

    #[test]
    fn clock_stays_inside_its_day() {
        let mut clock = Clock::starting_at(3, 23);
        let stamps: Vec<u32> = (0..5000).map(|_| clock.now()).collect();
        assert!(stamps.iter().all(|s| s / 86_400 == 3));
    }
}
