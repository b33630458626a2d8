//! Fault injection: the ways real OneRoster providers misbehave, on demand.
//!
//! A sync engine must survive slow pages, rate limits, 500s, hung responses, bodies cut
//! mid-JSON, silently capped pages, a school missing from the export, an empty users
//! collection served as a success, and totals that drift during a pull. Each fault is a key
//! in `--faults`; random ones are drawn per request from the seed, so a run is repeatable.

use std::str::FromStr;
use std::time::Duration;

use crate::error::SimError;
use crate::rng::{Rng, Stream};

/// What `--faults` asked for. The default is a well-behaved provider.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    /// `latency=20ms`: every response is delayed this long.
    pub latency: Option<Duration>,
    /// `rate429=0.05`: share of API requests answered 429 with `Retry-After: 1`.
    pub rate429: f64,
    /// `error500=0.02`: share answered 500 with an imsx error body.
    pub error500: f64,
    /// `timeout=0.01`: share that hang (no response for [`HANG`], or until shutdown).
    pub timeout: f64,
    /// `truncate=0.01`: share whose 200 body is cut in half (mid-JSON).
    pub truncate: f64,
    /// `token_ttl=60s`: OAuth 2 tokens expire after this (default one hour).
    pub token_ttl: Option<Duration>,
    /// `cap_page=250`: pages silently hold at most this many records.
    pub cap_page: Option<u32>,
    /// `drop_school=org-3`: people whose primary org is this school are missing from
    /// every users endpoint (their enrollments and the school itself are still served).
    pub drop_school: Option<String>,
    /// `empty_users=1`: every users endpoint answers 200 with an empty list and
    /// `X-Total-Count: 0`, and a single user's endpoint 404 (the SIS lost everyone).
    pub empty_users: bool,
    /// `total_drift=1`: `X-Total-Count` is the true total plus the page number (0 on the
    /// first page, 1 on the second …), so the total changes during a pull.
    pub total_drift: bool,
    /// `advance_mid_users=N`: the first time a users page past the first is asked for,
    /// the district moves N days forward before answering (withdrawals and arrivals
    /// while a client pages through users: the offsets shift under it).
    pub advance_mid_users: u32,
}

/// How long a `timeout` fault holds a request before giving up on it.
pub const HANG: Duration = Duration::from_secs(600);

/// What to do with one API request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RequestFault {
    None,
    Hang,
    TooManyRequests,
    ServerError,
    Truncate,
}

impl Faults {
    /// Draws the fault for the `n`th API request from the seed.
    pub(crate) fn draw(&self, seed: u64, n: u64) -> RequestFault {
        let bands = [
            (self.timeout, RequestFault::Hang),
            (self.rate429, RequestFault::TooManyRequests),
            (self.error500, RequestFault::ServerError),
            (self.truncate, RequestFault::Truncate),
        ];
        if bands.iter().all(|(p, _)| *p <= 0.0) {
            return RequestFault::None;
        }
        let roll = Rng::new(seed, Stream::Faults, n).unit();
        let mut upper = 0.0;
        for (probability, fault) in bands {
            upper += probability;
            if roll < upper {
                return fault;
            }
        }
        RequestFault::None
    }

    pub fn is_empty(&self) -> bool {
        *self == Faults::default()
    }
}

fn parse_duration(text: &str) -> Option<Duration> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((text, ""), |at| text.split_at(at));
    let value: f64 = number.parse().ok()?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return None,
    };
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

impl FromStr for Faults {
    type Err = SimError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let fail = |reason: String| SimError::FaultSpec {
            spec: spec.to_owned(),
            reason,
        };
        let mut faults = Faults::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| fail(format!("`{item}` is not key=value")))?;
            let (key, value) = (key.trim(), value.trim());
            let duration = || {
                parse_duration(value).ok_or_else(|| {
                    fail(format!(
                        "{key}={value}: expected a duration like 20ms, 2s or 1m"
                    ))
                })
            };
            let probability = || {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|p| (0.0..=1.0).contains(p))
                    .ok_or_else(|| {
                        fail(format!("{key}={value}: expected a probability from 0 to 1"))
                    })
            };
            let switch = || match value {
                "1" | "true" | "on" => Ok(true),
                "0" | "false" | "off" => Ok(false),
                _ => Err(fail(format!("{key}={value}: expected 1 or 0"))),
            };
            match key {
                "latency" => faults.latency = Some(duration()?),
                "rate429" => faults.rate429 = probability()?,
                "error500" => faults.error500 = probability()?,
                "timeout" => faults.timeout = probability()?,
                "truncate" => faults.truncate = probability()?,
                "token_ttl" => faults.token_ttl = Some(duration()?),
                "cap_page" => {
                    let cap = value
                        .parse::<u32>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| {
                            fail(format!("cap_page={value}: expected a positive page size"))
                        })?;
                    faults.cap_page = Some(cap);
                }
                "drop_school" => faults.drop_school = Some(value.to_owned()),
                "empty_users" => faults.empty_users = switch()?,
                "total_drift" => faults.total_drift = switch()?,
                "advance_mid_users" => {
                    faults.advance_mid_users = value
                        .parse::<u32>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| {
                            fail(format!(
                                "advance_mid_users={value}: expected a number of days"
                            ))
                        })?;
                }
                other => {
                    return Err(fail(format!(
                        "unknown key `{other}`; known: latency, rate429, error500, timeout, truncate, token_ttl, cap_page, drop_school, empty_users, total_drift, advance_mid_users"
                    )));
                }
            }
        }
        let total = faults.rate429 + faults.error500 + faults.timeout + faults.truncate;
        if total > 1.0 {
            return Err(fail(format!(
                "rate429 + error500 + timeout + truncate add up to {total}, more than 1"
            )));
        }
        Ok(faults)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let faults: Faults = "latency=20ms,rate429=0.05,error500=0.02,timeout=0.01,truncate=0.01,token_ttl=60s,cap_page=250,drop_school=org-3,empty_users=1,total_drift=1,advance_mid_users=14"
            .parse()
            .unwrap();
        assert_eq!(faults.latency, Some(Duration::from_millis(20)));
        assert_eq!(faults.token_ttl, Some(Duration::from_secs(60)));
        assert_eq!(faults.cap_page, Some(250));
        assert_eq!(faults.drop_school.as_deref(), Some("org-3"));
        assert!(faults.empty_users && faults.total_drift);
        assert_eq!(faults.advance_mid_users, 14);
        assert!((faults.rate429 - 0.05).abs() < 1e-9);
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        assert!("nope=1".parse::<Faults>().is_err());
        assert!("rate429=2".parse::<Faults>().is_err());
        assert!("latency=20".parse::<Faults>().is_err());
        assert!("cap_page=0".parse::<Faults>().is_err());
        assert!("advance_mid_users=0".parse::<Faults>().is_err());
        assert!("rate429=0.6,error500=0.6".parse::<Faults>().is_err());
        assert!("".parse::<Faults>().unwrap().is_empty());
    }

    #[test]
    fn draws_are_deterministic_and_roughly_proportional() {
        let faults: Faults = "rate429=0.2,error500=0.1".parse().unwrap();
        let draws: Vec<RequestFault> = (0..5000).map(|n| faults.draw(9, n)).collect();
        let again: Vec<RequestFault> = (0..5000).map(|n| faults.draw(9, n)).collect();
        assert_eq!(draws, again);
        let busy = draws
            .iter()
            .filter(|f| **f == RequestFault::TooManyRequests)
            .count();
        let broken = draws
            .iter()
            .filter(|f| **f == RequestFault::ServerError)
            .count();
        assert!((850..1150).contains(&busy), "{busy}");
        assert!((400..600).contains(&broken), "{broken}");
    }
}
