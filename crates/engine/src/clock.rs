//! Where the engine's time comes from. Every run, apply, lock, settle and audit entry
//! takes its time from the [`Clock`] in the [`crate::Context`] it is handed: the CLI
//! passes [`SystemClock`], the server its state's clock, and tests a [`ManualClock`]
//! they move instead of waiting.

use std::sync::Mutex;

use jiff::Timestamp;

/// Where the time comes from.
pub trait Clock: Send + Sync {
    /// The current time by this clock.
    fn now(&self) -> Timestamp;
}

/// The operating system's time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock tests set by hand: it stands still until [`ManualClock::set`] moves it.
#[derive(Debug)]
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    /// A clock standing at `at`.
    pub fn new(at: Timestamp) -> ManualClock {
        ManualClock(Mutex::new(at))
    }

    /// Moves the clock to `at` (backwards too).
    pub fn set(&self, at: Timestamp) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
