//! An optional instant packed for the records a sync holds by the million (a person's
//! `dateLastModified`, a link's deactivation).

use jiff::Timestamp;

/// An `Option<Timestamp>` as its seconds and nanoseconds, [`PackedTime::NONE`]
/// nanoseconds for none: 16 bytes where the option takes 24, and no padding the
/// holder's small fields could not use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PackedTime {
    second: i64,
    nanosecond: i32,
}

impl PackedTime {
    /// The nanoseconds of no instant (a real one's are never negative).
    const NONE: i32 = i32::MIN;

    pub(crate) fn new(at: Option<Timestamp>) -> PackedTime {
        match at {
            Some(t) => PackedTime {
                second: t.as_second(),
                nanosecond: t.subsec_nanosecond(),
            },
            None => PackedTime {
                second: 0,
                nanosecond: PackedTime::NONE,
            },
        }
    }

    pub(crate) fn get(self) -> Option<Timestamp> {
        if self.nanosecond == PackedTime::NONE {
            return None;
        }
        // Always valid: the parts came from a timestamp.
        Timestamp::new(self.second, self.nanosecond).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_comes_back_as_it_was_packed() {
        let instants = [
            None,
            Some(Timestamp::UNIX_EPOCH),
            Some(Timestamp::MIN),
            Some(Timestamp::MAX),
            "1969-12-31T23:59:59.999999999Z".parse().ok(),
            "2026-08-01T07:30:00.5Z".parse().ok(),
        ];
        for at in instants {
            assert_eq!(PackedTime::new(at).get(), at, "{at:?}");
        }
        assert!(Timestamp::MIN.subsec_nanosecond() > PackedTime::NONE);
        assert_ne!(
            PackedTime::new(None),
            PackedTime::new(Some(Timestamp::UNIX_EPOCH))
        );
    }
}
