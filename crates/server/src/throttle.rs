//! Sign-in throttling, and a cap on the password checks running at once.
//!
//! Failed sign-ins slow further attempts down; they never lock an account.
//!
//! - **Counted before the check.** [`Throttle::begin`] counts the attempt under the lock,
//!   before its password is checked, so many attempts sent at once cannot all pass a limit
//!   that none of them has counted yet. A correct password gives its count back.
//! - **Per account name and client address** (the pair): [`PAIR`] attempts freely, then
//!   each further one must wait 1 s, 2 s, 4 s … (at most 15 minutes) after the one before.
//!   Someone guessing a password from one address slows down only that name from that
//!   address: the account's owner, signing in from anywhere else, is not held up.
//! - **Per client address** (every name): [`ADDRESS`] attempts freely, then 1 s, 2 s … (at
//!   most a minute): trying many names from one address (password spraying) slows it down.
//!   Everyone behind that address waits too, which is why a reverse proxy must be named
//!   with `--trusted-proxy` (see [`crate::proxy`]): otherwise every client is the proxy.
//! - An attempt refused for waiting is not counted: hammering does not lengthen the wait.
//!   A key is forgotten an hour after its last attempt; a success forgets its pair.
//! - **At most [`CHECKS_AT_ONCE`] argon2 checks run at once** (each takes ~19 MiB and tens
//!   of milliseconds of CPU): others wait their turn up to [`BUSY_WAIT`], then are told to
//!   try again (503). [`Throttle::checks`] counts the checks made.
//!
//! Time is the server's clock ([`crate::Clock`]), so tests move it instead of waiting.
//!
//! What it does not do: an attacker with many addresses gets a few quick attempts per
//! account from each. There the passwords are the defence (generated ones hold 120 random
//! bits, chosen ones at least 12 characters) together with the cap on checks. The counts
//! live in this process's memory: several `serve` processes each keep their own, and a
//! restart forgets them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use store::ConsoleAccount;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// When attempts start to wait, and how long at most.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Attempts that need no wait.
    pub free: u32,
    /// The wait after the first attempt beyond `free`; each further one doubles it.
    pub first: Duration,
    pub max: Duration,
}

impl Rule {
    /// How long after the last of `attempts` attempts the next one may start.
    pub fn delay(&self, attempts: u32) -> Duration {
        if attempts < self.free {
            return Duration::ZERO;
        }
        let doublings = attempts - self.free;
        self.first
            .saturating_mul(2u32.saturating_pow(doublings))
            .min(self.max)
    }
}

/// One account name from one client address.
pub const PAIR: Rule = Rule {
    free: 5,
    first: Duration::from_secs(1),
    max: Duration::from_secs(15 * 60),
};

/// One client address, whatever the names.
pub const ADDRESS: Rule = Rule {
    free: 30,
    first: Duration::from_secs(1),
    max: Duration::from_secs(60),
};

/// A key is forgotten this long after its last attempt.
const FORGET: Duration = Duration::from_secs(60 * 60);
/// Above this many keys, forgotten ones are dropped; above [`MOST`], keys that do not make
/// anyone wait are dropped too.
const PRUNE_AT: usize = 10_000;
const MOST: usize = 100_000;
/// Only this much of an account name is a key (no account name is longer).
const NAME_KEY: usize = 128;

/// Argon2 checks allowed to run at the same time.
pub const CHECKS_AT_ONCE: usize = 4;
/// How long a sign-in waits for its turn to be checked before it is told to try again.
pub const BUSY_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Pair { name: String, addr: String },
    Address(String),
}

impl Key {
    fn rule(&self) -> Rule {
        match self {
            Key::Pair { .. } => PAIR,
            Key::Address(_) => ADDRESS,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Record {
    attempts: u32,
    last: Timestamp,
}

impl Record {
    /// How long from `now` until the next attempt may start under `rule`.
    fn wait(&self, rule: Rule, now: Timestamp) -> Duration {
        rule.delay(self.attempts)
            .saturating_sub(since(self.last, now))
    }
}

/// The time from `then` to `now`; none when the clock went back.
fn since(then: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(now.duration_since(then)).unwrap_or(Duration::ZERO)
}

/// A counted sign-in attempt, from [`Throttle::begin`].
#[derive(Debug)]
pub struct Attempt {
    pair: Key,
    address: Key,
}

/// Sign-in attempts in memory, and the turns of the password checks.
#[derive(Debug)]
pub struct Throttle {
    keys: Mutex<HashMap<Key, Record>>,
    turns: Arc<Semaphore>,
    checked: Arc<AtomicU64>,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            keys: Mutex::new(HashMap::new()),
            turns: Arc::new(Semaphore::new(CHECKS_AT_ONCE)),
            checked: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Throttle {
    /// Counts an attempt of `name` from `addr` (a [`crate::proxy::throttle_key`]) at `now`,
    /// or says how long to wait before the next may start (nothing is counted then).
    pub fn begin(&self, name: &str, addr: &str, now: Timestamp) -> Result<Attempt, Duration> {
        let attempt = Attempt {
            pair: Key::Pair {
                name: name.to_lowercase().chars().take(NAME_KEY).collect(),
                addr: addr.to_owned(),
            },
            address: Key::Address(addr.to_owned()),
        };
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if keys.len() > PRUNE_AT {
            prune(&mut keys, now);
        }
        let mut wait = Duration::ZERO;
        for key in [&attempt.pair, &attempt.address] {
            if let Some(r) = keys.get(key)
                && since(r.last, now) < FORGET
            {
                wait = wait.max(r.wait(key.rule(), now));
            }
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        for key in [&attempt.pair, &attempt.address] {
            let r = keys.entry(key.clone()).or_insert(Record {
                attempts: 0,
                last: now,
            });
            if since(r.last, now) >= FORGET {
                r.attempts = 0;
            }
            r.attempts = r.attempts.saturating_add(1);
            r.last = now;
        }
        Ok(attempt)
    }

    /// The password was right: the pair starts afresh, and the address gets its count
    /// back.
    pub fn succeeded(&self, attempt: &Attempt) {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.remove(&attempt.pair);
        if let Some(r) = keys.get_mut(&attempt.address) {
            r.attempts = r.attempts.saturating_sub(1);
        }
    }

    /// The password was never checked (the server was busy): the attempt does not count.
    /// The wait it started, if any, stays.
    pub fn refund(&self, attempt: &Attempt) {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        for key in [&attempt.pair, &attempt.address] {
            if let Some(r) = keys.get_mut(key) {
                r.attempts = r.attempts.saturating_sub(1);
            }
        }
    }

    /// Waits for a turn to check a password: `None` when none came in [`BUSY_WAIT`].
    pub async fn turn(&self) -> Option<Turn> {
        let permit = tokio::time::timeout(BUSY_WAIT, Arc::clone(&self.turns).acquire_owned())
            .await
            .ok()?
            .ok()?;
        Some(Turn {
            _permit: permit,
            checked: Arc::clone(&self.checked),
        })
    }

    /// Password checks (argon2 verifications) made since the server started.
    pub fn checks(&self) -> u64 {
        self.checked.load(Ordering::Relaxed)
    }
}

fn prune(keys: &mut HashMap<Key, Record>, now: Timestamp) {
    keys.retain(|_, r| since(r.last, now) < FORGET);
    if keys.len() > MOST {
        keys.retain(|k, r| !r.wait(k.rule(), now).is_zero());
    }
}

/// The right to run one password check; held until the check is done (it moves into the
/// blocking task, so a client that goes away does not free it early).
#[derive(Debug)]
pub struct Turn {
    _permit: OwnedSemaphorePermit,
    checked: Arc<AtomicU64>,
}

impl Turn {
    /// Checks a sign-in's password: against the account's hash, or — for no account or a
    /// disabled one — against a dummy hash, so every answer costs the same time.
    pub fn check(self, account: Option<&ConsoleAccount>, password: &str) -> bool {
        let ok = crate::auth::check_sign_in(account, password);
        self.checked.fetch_add(1, Ordering::Relaxed);
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADDR: &str = "192.0.2.1";

    #[test]
    fn waits_double_after_the_free_attempts() {
        assert_eq!(PAIR.delay(0), Duration::ZERO);
        assert_eq!(PAIR.delay(4), Duration::ZERO);
        assert_eq!(PAIR.delay(5), Duration::from_secs(1));
        assert_eq!(PAIR.delay(6), Duration::from_secs(2));
        assert_eq!(PAIR.delay(8), Duration::from_secs(8));
        assert_eq!(PAIR.delay(40), PAIR.max);
        assert_eq!(PAIR.delay(u32::MAX), PAIR.max);
        assert_eq!(ADDRESS.delay(29), Duration::ZERO);
        assert_eq!(ADDRESS.delay(100), ADDRESS.max);
    }

    #[test]
    fn attempts_count_before_the_check_and_slow_down_the_pair_only() {
        let t = Throttle::default();
        let t0 = Timestamp::now();
        // Five attempts begin before any of them is decided: the sixth already waits.
        let five: Vec<Attempt> = (0..5)
            .map(|_| t.begin("Olivia", ADDR, t0).unwrap())
            .collect();
        assert_eq!(five.len(), 5);
        assert_eq!(
            t.begin("olivia", ADDR, t0).unwrap_err(),
            Duration::from_secs(1)
        );
        // Any case of the name is the same account.
        assert!(t.begin("OLIVIA", ADDR, t0).is_err());
        // Another address, or another name, is not held up.
        assert!(t.begin("olivia", "198.51.100.7", t0).is_ok());
        assert!(t.begin("adam", ADDR, t0).is_ok());
        // Refused attempts do not lengthen the wait; after it, one more; then 2 s.
        for _ in 0..10 {
            assert!(t.begin("olivia", ADDR, t0).is_err());
        }
        let t1 = t0 + Duration::from_secs(1);
        assert!(t.begin("olivia", ADDR, t1).is_ok());
        assert_eq!(
            t.begin("olivia", ADDR, t1).unwrap_err(),
            Duration::from_secs(2)
        );
        let t2 = t1 + Duration::from_secs(2);
        let right = t.begin("olivia", ADDR, t2).unwrap();
        // A success starts the pair afresh.
        t.succeeded(&right);
        for _ in 0..5 {
            assert!(t.begin("olivia", ADDR, t2).is_ok());
        }
        assert!(t.begin("olivia", ADDR, t2).is_err());
        // An hour later all is forgotten.
        assert!(t.begin("olivia", ADDR, t2 + FORGET).is_ok());
    }

    #[test]
    fn many_names_from_one_address_slow_that_address() {
        let t = Throttle::default();
        let t0 = Timestamp::now();
        for i in 0..ADDRESS.free {
            assert!(t.begin(&format!("name{i}"), ADDR, t0).is_ok());
        }
        assert_eq!(
            t.begin("someone-new", ADDR, t0).unwrap_err(),
            Duration::from_secs(1)
        );
        assert!(t.begin("someone-new", "198.51.100.7", t0).is_ok());
        // A refunded attempt (never checked) gives its count back.
        let t1 = t0 + Duration::from_secs(1);
        let a = t.begin("someone-new", ADDR, t1).unwrap();
        t.refund(&a);
        let t2 = t1 + Duration::from_secs(1);
        assert!(t.begin("someone-new", ADDR, t2).is_ok());
    }

    #[test]
    fn the_map_stays_bounded() {
        let t = Throttle::default();
        let t0 = Timestamp::now();
        for i in 0..=PRUNE_AT {
            let _ = t.begin("x", &format!("a{i}"), t0);
        }
        let later = t0 + FORGET;
        let _ = t.begin("x", "fresh", later);
        let keys = t.keys.lock().unwrap();
        assert_eq!(keys.len(), 2, "forgotten keys pruned");
    }

    #[tokio::test]
    async fn checks_take_turns_and_are_counted() {
        let t = Throttle::default();
        let mut turns = Vec::new();
        for _ in 0..CHECKS_AT_ONCE {
            turns.push(t.turn().await.unwrap());
        }
        assert_eq!(t.turns.available_permits(), 0, "every turn taken");
        assert!(
            tokio::time::timeout(Duration::from_millis(50), t.turn())
                .await
                .is_err(),
            "one more waits"
        );
        let first = turns.pop().unwrap();
        assert!(!first.check(None, "guess"), "no account: refused");
        assert_eq!(t.checks(), 1, "the check ran and was counted");
        assert_eq!(t.turns.available_permits(), 1, "its turn is free again");
    }
}
