//! *Validate* results: a writer's POST reads the SIS and keeps what it found; a page
//! (any reader) only shows the kept result, so looking at Settings never makes the
//! server contact the SIS. Validations of one source are spaced out ([`Throttle`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use oneroster::inspect::{Findings, Inspection};
use serde::{Deserialize, Serialize};

use crate::ApiError;

/// The store's meta key of a source's last validation.
pub fn key(source: &str) -> String {
    format!("validation:{source}")
}

/// The last validation of a source, as the settings page shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Stored {
    pub at: String,
    pub summary: String,
    /// (collection, records, pages, the server's total, complete)
    pub collections: Vec<(String, u64, u64, String, String)>,
    pub roles: String,
    pub warnings: Vec<String>,
    /// Per collection: what was read leniently, left blank or points at a record the
    /// SIS did not send (none in a result kept before these were counted).
    #[serde(default)]
    pub findings: Vec<Findings>,
}

impl Stored {
    pub fn new(result: &Result<Inspection, ApiError>, at: Timestamp) -> Stored {
        let at = at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string();
        match result {
            Ok(i) => Stored {
                at,
                summary: if i.collections.contains_key("accounts") {
                    // An account source (Google Workspace, Entra ID): one collection.
                    format!(
                        "{} source, {}: {}",
                        i.kind,
                        i.version,
                        if i.complete() {
                            "every account read"
                        } else {
                            "read, but not completely (see the warnings)"
                        }
                    )
                } else {
                    format!(
                        "{} source, OneRoster {}: {}",
                        i.kind,
                        i.version,
                        if i.complete() {
                            "every collection read completely"
                        } else {
                            "read, but not completely (see the warnings)"
                        }
                    )
                },
                collections: i
                    .collections
                    .iter()
                    .map(|(name, c)| {
                        (
                            (*name).to_owned(),
                            c.records,
                            c.pages,
                            c.expected
                                .map(|e| e.to_string())
                                .unwrap_or_else(|| "-".into()),
                            if c.complete { "yes" } else { "NO" }.to_owned(),
                        )
                    })
                    .collect(),
                roles: i
                    .roles
                    .iter()
                    .map(|(r, n)| format!("{r} {n}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                warnings: i.warnings.clone(),
                findings: i.findings(),
            },
            Err(e) => Stored {
                at,
                summary: format!("Validation failed: {}", e.message),
                ..Stored::default()
            },
        }
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// `None` for a missing or unreadable record (a page then shows none).
    pub fn decode(text: &str) -> Option<Stored> {
        serde_json::from_str(text).ok()
    }
}

/// When each source was last validated in this process, and with which settings.
#[derive(Debug, Default)]
pub struct Throttle {
    last: Mutex<HashMap<String, (Instant, u64)>>,
}

impl Throttle {
    /// `Some(wait)` when `source` was validated less than `every` ago with the same
    /// settings (`fingerprint`); otherwise records this validation and answers `None`.
    /// Changed settings, from any door, may be validated at once.
    pub fn too_soon(&self, source: &str, fingerprint: u64, every: Duration) -> Option<Duration> {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, seen)) = last.get(source) {
            let since = now.duration_since(*at);
            if since < every && *seen == fingerprint {
                return Some(every - since);
            }
        }
        last.insert(source.to_owned(), (now, fingerprint));
        None
    }
}

/// A fingerprint of what a validation reads with: the source's settings and its stored
/// secret (as stored, encrypted).
pub fn fingerprint(settings: &impl Serialize, secret: Option<&[u8]>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(settings)
        .unwrap_or_default()
        .hash(&mut h);
    secret.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_validation_per_source_and_settings_per_interval() {
        let t = Throttle::default();
        let every = Duration::from_secs(60);
        assert_eq!(t.too_soon("a", 1, every), None);
        assert!(t.too_soon("a", 1, every).is_some());
        assert_eq!(t.too_soon("b", 1, every), None, "sources are counted apart");
        assert_eq!(
            t.too_soon("a", 2, every),
            None,
            "new settings, new validation"
        );
        assert!(t.too_soon("a", 2, every).is_some());
        assert_eq!(t.too_soon("a", 2, Duration::ZERO), None);
        assert_ne!(
            fingerprint(&"settings", Some(b"one")),
            fingerprint(&"settings", Some(b"two"))
        );
        assert_ne!(fingerprint(&"settings", None), fingerprint(&"other", None));
    }

    #[test]
    fn a_result_kept_before_findings_were_counted_still_reads() {
        let old = r#"{"at":"2026-01-01 00:00:00 UTC","summary":"csv source","collections":[],"roles":"","warnings":[]}"#;
        let s = Stored::decode(old).unwrap();
        assert!(s.findings.is_empty());
        assert_eq!(s.summary, "csv source");
    }

    #[test]
    fn a_failure_is_kept_with_its_message() {
        let failed: Result<Inspection, ApiError> = Err(ApiError::bad_request("could not connect"));
        let s = Stored::new(&failed, Timestamp::UNIX_EPOCH);
        assert_eq!(s.summary, "Validation failed: could not connect");
        assert_eq!(Stored::decode(&s.encode()), Some(s));
        assert_eq!(Stored::decode("not json"), None);
    }
}
