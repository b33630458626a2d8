//! Step 1 of a run: read the source into a snapshot of what the rules need, and whether
//! the read proved itself complete.
//!
//! Records are lent by the readers and turned at once into the compact shapes the planner
//! uses (`SisPerson`, the `Roster`'s integers), so a district's 8 M enrollments cost a few
//! bytes each, not a parsed record each.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use foldhash::fast::RandomState;
use jiff::Timestamp;
use oneroster::csv::CsvLimits;
use oneroster::oauth1::SignatureMethod;
use oneroster::report::{CollectionReport, Coverage};
use oneroster::rest::{Auth, CredentialStyle, RestConfig};
use oneroster::source::{Source, SourceError};
use oneroster::{
    AcademicSession, Class, ClassType, Collection, Course, EnrollmentCore, Org, OrgType, Role,
    Status, User, Version,
};
use rostersync_core::planner::PeopleAhead;
use rostersync_core::roster::{
    ClassInfo, ClassKind, Enroll, EnrollRole, OrgInfo, Roster, SessionInfo,
};
use rostersync_core::settings::{Network, RestAuth, Secret, SourceAccess, SourceConfig};
use rostersync_core::sis::{PeopleById, SisPerson};
use serde::{Deserialize, Serialize};

use crate::{EngineError, Progress};

/// What one pull saw.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub people: Vec<SisPerson>,
    /// `None` for a delta pull: homerooms, groups and calendars are left alone.
    pub roster: Option<Roster>,
    pub reports: Vec<CollectionReport>,
    /// Every collection read completely, and as a full set.
    pub complete: bool,
    /// The newest `dateLastModified` seen (the server's clock).
    pub newest_modified: Option<Timestamp>,
    /// Why not complete, and the source's own warnings: everything `inspect` would say
    /// about the same read.
    pub warnings: Vec<String>,
    /// A full pull's people ordered and hashed while the enrollments were read.
    pub ahead: Option<PeopleAhead>,
}

/// Opens the source a setting describes; its requests reach only the addresses
/// `network` allows.
pub fn open_source(
    cfg: &SourceConfig,
    network: &Network,
    secret: Option<&Secret>,
) -> Result<Source, EngineError> {
    let access = cfg
        .access()
        .map_err(|problem| EngineError::Config(format!("source {}: {problem}", cfg.name)))?;
    match access {
        SourceAccess::Csv { path } => {
            let mut limits = CsvLimits::default();
            let l = &cfg.limits;
            if let Some(mb) = l.max_file_mb {
                limits.max_file_bytes = mb.saturating_mul(1 << 20);
            }
            if let Some(kb) = l.max_record_kb {
                limits.max_record_bytes = kb.saturating_mul(1 << 10);
            }
            if let Some(n) = l.max_cell_chars {
                limits.max_cell_chars = usize::try_from(n).unwrap_or(usize::MAX);
            }
            Ok(Source::open_csv_with(Path::new(path), limits)?)
        }
        SourceAccess::Rest { url, auth } => {
            let secret = || {
                secret.map(|s| s.expose().to_owned()).ok_or_else(|| {
                    EngineError::Config(format!(
                        "source {}: the client secret is not set",
                        cfg.name
                    ))
                })
            };
            let auth = match auth {
                RestAuth::None => Auth::None,
                RestAuth::OAuth1 { client_id, sha1 } => Auth::OAuth1 {
                    consumer_key: client_id.to_owned(),
                    consumer_secret: secret()?,
                    method: if sha1 {
                        SignatureMethod::HmacSha1
                    } else {
                        SignatureMethod::HmacSha256
                    },
                },
                RestAuth::OAuth2 {
                    client_id,
                    token_url,
                    scope,
                    form_credentials,
                } => Auth::OAuth2 {
                    token_url: token_url.to_owned(),
                    client_id: client_id.to_owned(),
                    client_secret: secret()?,
                    scope: scope.map(str::to_owned),
                    credentials: if form_credentials {
                        CredentialStyle::Form
                    } else {
                        CredentialStyle::Basic
                    },
                },
            };
            let mut rest = RestConfig::new(url.to_owned(), auth);
            rest.address_policy = crate::address_policy(network);
            if let Some(v) = cfg.version.as_deref().and_then(Version::parse) {
                rest.version = v;
            }
            if let Some(p) = cfg.page_size {
                rest.page_size = p;
            }
            if let Some(c) = cfg.concurrency {
                rest.concurrency = c;
            }
            if let Some(a) = cfg.retry_attempts {
                rest.retry.attempts = a;
            }
            if let Some(mb) = cfg.limits.max_response_mb {
                rest.max_response_bytes = mb.saturating_mul(1 << 20);
            }
            Ok(Source::open_rest(rest)?)
        }
        SourceAccess::Google { .. } | SourceAccess::Entra { .. } | SourceAccess::Scim => {
            Err(EngineError::Config(format!(
                "source {}: kind = \"{}\" is an account source, not a OneRoster one",
                cfg.name,
                cfg.kind.as_str(),
            )))
        }
    }
}

/// How often a pull reports progress.
const PROGRESS_EVERY: u64 = 10_000;

/// Counts records for the progress bar.
struct Ticker<'a> {
    collection: &'static str,
    n: u64,
    progress: &'a (dyn Fn(Progress) + Sync),
}

impl Ticker<'_> {
    fn tick(&mut self) {
        self.n += 1;
        if self.n.is_multiple_of(PROGRESS_EVERY) {
            (self.progress)(Progress::Pulling {
                collection: self.collection,
                records: self.n,
            });
        }
    }
}

struct Pull<'a> {
    snap: Snapshot,
    progress: &'a (dyn Fn(Progress) + Sync),
}

impl Pull<'_> {
    fn record(&mut self, report: Option<CollectionReport>) -> bool {
        let Some(r) = report else { return false };
        (self.progress)(Progress::Pulled {
            collection: r.collection.endpoint(),
            records: r.records,
            complete: r.complete,
        });
        if let Some(t) = r.newest_modified
            && self.snap.newest_modified.is_none_or(|n| t > n)
        {
            self.snap.newest_modified = Some(t);
        }
        self.snap.reports.push(r);
        true
    }

    fn finish(mut self, source: &Source) -> Snapshot {
        let snap = &mut self.snap;
        snap.warnings.extend(source.warnings());
        let has_users = snap
            .reports
            .iter()
            .any(|r| r.collection == Collection::Users);
        if !has_users {
            snap.warnings
                .push("the source has no users collection".to_owned());
        }
        snap.complete = has_users
            && snap
                .reports
                .iter()
                .all(|r| r.complete && r.coverage == Coverage::Full);
        for r in &snap.reports {
            // The lines `inspect` prints: why incomplete, and the values that could not
            // be read (each list bounded, with a count of the rest).
            snap.warnings.extend(r.warnings());
            if r.coverage == Coverage::Delta {
                snap.warnings
                    .push(format!("{}: the source sent changes only", r.collection));
            }
        }
        self.snap
    }
}

fn session_info(s: &AcademicSession) -> SessionInfo {
    SessionInfo {
        sourced_id: s.base.sourced_id.clone(),
        title: s.title.clone(),
        kind: s
            .session_type
            .as_ref()
            .map_or_else(String::new, |t| t.as_str().to_owned()),
        start: s.start_date,
        end: s.end_date,
        parent: s.parent.clone(),
    }
}

fn class_kind(c: &Class) -> ClassKind {
    match c.class_type {
        Some(ClassType::Homeroom) => ClassKind::Homeroom,
        Some(ClassType::Scheduled) => ClassKind::Scheduled,
        _ => ClassKind::Other,
    }
}

fn enroll_role(role: Option<&Role>) -> EnrollRole {
    match role {
        Some(Role::Student) => EnrollRole::Student,
        Some(Role::Teacher) => EnrollRole::Teacher,
        _ => EnrollRole::Other,
    }
}

/// How many people and enrollments a source's last full pull read. The next pull makes
/// room for about as many at once: grown by doubling, 3 M people of 96 bytes were copied
/// at every step and then once more into a vector of their size (0.7 GB of fresh memory,
/// a second of a 3 M no-change's CPU on a machine that zeroes its pages as it hands them
/// out); 8 M enrollments alike. A hint only: more are grown into, far fewer trimmed to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullSizes {
    pub people: usize,
    pub enrollments: usize,
}

impl PullSizes {
    /// The most room a hint makes (virtual until used: far more than the largest
    /// district, not enough to be refused).
    const MOST: usize = 16_000_000;

    /// What `snap` read.
    pub fn of(snap: &Snapshot) -> PullSizes {
        PullSizes {
            people: snap.people.len(),
            enrollments: snap.roster.as_ref().map_or(0, |r| r.enrollments.len()),
        }
    }

    /// Room for `n` and a little over (a district grows between pulls).
    fn room(n: usize) -> usize {
        let n = n.min(Self::MOST);
        n + n / 32
    }
}

/// A full pull: every person, and the roster around them, with room made for `sizes`.
/// While the enrollments are read, the people are ordered and hashed under the settings
/// `fingerprint` on another thread ([`Snapshot::ahead`]): the read leaves a core idle
/// part of the time, and planning would otherwise do it after.
pub async fn pull_full(
    source: &mut Source,
    sizes: PullSizes,
    fingerprint: u64,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Snapshot, SourceError> {
    let mut pull = Pull {
        snap: Snapshot::default(),
        progress,
    };
    let mut roster = Roster::default();

    let mut orgs = Vec::new();
    let r = source
        .read::<Org>(None, |o: &Org| {
            if o.base.status == Status::Active {
                orgs.push(OrgInfo {
                    sourced_id: o.base.sourced_id.clone(),
                    name: o.name.clone(),
                    is_school: o.org_type == Some(OrgType::School),
                });
            }
        })
        .await?;
    pull.record(r);
    orgs.sort_by(|a, b| a.sourced_id.cmp(&b.sourced_id));
    roster.orgs = orgs;

    let mut sessions = Vec::new();
    let r = source
        .read::<AcademicSession>(None, |s: &AcademicSession| {
            if s.base.status == Status::Active {
                sessions.push(session_info(s));
            }
        })
        .await?;
    pull.record(r);
    roster.sessions = sessions;

    let mut courses: HashMap<String, String> = HashMap::new();
    let r = source
        .read::<Course>(None, |c: &Course| {
            courses.insert(c.base.sourced_id.clone(), c.title.clone());
        })
        .await?;
    pull.record(r);

    // Every enrollment looks up its person and its class: millions of lookups, where
    // SipHash's defence against chosen keys (the SIS's own ids, read once) costs more
    // than the map's probing. foldhash is seeded per process.
    let mut class_index: HashMap<String, u32, RandomState> = HashMap::default();
    let r = source
        .read::<Class>(None, |c: &Class| {
            if c.base.status == Status::Active {
                class_index.insert(c.base.sourced_id.clone(), roster.classes.len() as u32);
                roster.classes.push(ClassInfo {
                    sourced_id: c.base.sourced_id.clone(),
                    title: c.title.clone(),
                    kind: class_kind(c),
                    location: c.location.clone(),
                    school: c.school.clone(),
                    course: c.course.as_ref().and_then(|id| courses.get(id).cloned()),
                });
            }
        })
        .await?;
    let has_classes = pull.record(r);
    drop(courses);
    // Grown by doubling: up to half again as many classes' room, held through the run.
    roster.classes = exact(roster.classes);

    let mut people = Vec::with_capacity(PullSizes::room(sizes.people));
    let mut ticker = Ticker {
        collection: "users",
        n: 0,
        progress,
    };
    let r = source
        .read::<User>(None, |u: &User| {
            people.push(SisPerson::from_user(u));
            ticker.tick();
        })
        .await?;
    pull.record(r);
    let people = Arc::new(exact(people));
    let ahead = std::thread::spawn({
        let people = Arc::clone(&people);
        move || PeopleAhead::on_one_thread(&people, fingerprint)
    });
    let person_index = PeopleById::new(&people);

    let mut ticker = Ticker {
        collection: "enrollments",
        n: 0,
        progress,
    };
    let mut enrollments = Vec::with_capacity(PullSizes::room(sizes.enrollments));
    // Of each enrollment, only what the roster reads (`EnrollmentCore`).
    let r = source
        .read::<EnrollmentCore>(None, |e: &EnrollmentCore| {
            ticker.tick();
            if e.base.status != Status::Active {
                return;
            }
            let (Some(user), Some(class)) = (e.user.as_deref(), e.class.as_deref()) else {
                return;
            };
            if let (Some(person), Some(&class)) =
                (person_index.find(&people, user), class_index.get(class))
            {
                enrollments.push(Enroll {
                    person,
                    class,
                    role: enroll_role(e.role.as_ref()),
                });
            }
        })
        .await?;
    let has_enrollments = pull.record(r);
    drop(person_index);
    roster.enrollments = exact(enrollments);
    roster.has_enrollments = has_classes && has_enrollments;

    let ahead = ahead
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    // The thread let its share go as it ended: the people are the pull's alone, not
    // copied.
    pull.snap.people = Arc::unwrap_or_clone(people);
    pull.snap.ahead = Some(ahead);
    pull.snap.roster = Some(roster);
    Ok(pull.finish(source))
}

/// `items` in a vector of about their size. Grown by doubling (or made for a larger
/// pull), it may hold room for a third as many again (a million unused slots of 96 bytes
/// at three million people) for the whole run; the people's one copy is made before the
/// enrollments, the roster's bulk, are read.
fn exact<T>(mut items: Vec<T>) -> Vec<T> {
    if items.capacity() - items.len() <= items.len() / 16 {
        return items;
    }
    let mut exact = Vec::with_capacity(items.len());
    exact.append(&mut items);
    exact
}

/// A delta pull: the people changed since `since` (tobedeleted included). The roster is
/// left for the next full pull.
pub async fn pull_delta(
    source: &mut Source,
    since: Timestamp,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Snapshot, SourceError> {
    let mut pull = Pull {
        snap: Snapshot::default(),
        progress,
    };
    let mut people = Vec::new();
    let mut ticker = Ticker {
        collection: "users",
        n: 0,
        progress,
    };
    let r = source
        .read::<User>(Some(since), |u: &User| {
            people.push(SisPerson::from_user(u));
            ticker.tick();
        })
        .await?;
    pull.record(r);
    pull.snap.people = people;
    Ok(pull.finish(source))
}

/// The most absent people a full pull confirms one by one; more are sampled evenly.
pub const ABSENCE_CHECKS: usize = 1000;

/// What the single-record reads of the absent people found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AbsenceCheck {
    /// People read one by one.
    pub checked: usize,
    /// Of those, the ones the source still has (not `tobedeleted`): the pull missed them.
    pub still_there: Vec<String>,
}

/// Asks a REST source, one record at a time, whether the people a complete full pull did
/// not see are really gone: a withdrawn person answers 404 or `tobedeleted`. Paging by
/// offset can skip people when the roster changes between two pages, with the totals
/// still matching; this is what proves it did not. A CSV package is one file read whole:
/// nothing to confirm. At most [`ABSENCE_CHECKS`] people are read, spread evenly over
/// `absent` (sorted by the caller for a repeatable sample).
pub async fn confirm_absent(source: &Source, absent: &[&str]) -> Result<AbsenceCheck, SourceError> {
    let Source::Rest(client) = source else {
        return Ok(AbsenceCheck::default());
    };
    let step = absent.len().div_ceil(ABSENCE_CHECKS).max(1);
    let mut check = AbsenceCheck::default();
    for id in absent.iter().step_by(step) {
        check.checked += 1;
        if let Some(user) = client.get::<User>(id).await?
            && user.base.status != Status::ToBeDeleted
        {
            check.still_there.push((*id).to_owned());
        }
    }
    Ok(check)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_is_made_for_a_little_more_than_the_last_pull_and_trimmed_when_far_too_much() {
        assert_eq!(PullSizes::room(0), 0);
        assert_eq!(PullSizes::room(3_200_000), 3_300_000);
        assert_eq!(
            PullSizes::room(usize::MAX),
            PullSizes::room(PullSizes::MOST),
            "a hint past the most makes the most"
        );
        // About full: kept as it is; a sixteenth or more unused: copied into its size.
        let mut v: Vec<u32> = Vec::with_capacity(1_000);
        v.extend(0..950);
        let kept = exact(v);
        assert_eq!(kept.capacity(), 1_000);
        let mut v: Vec<u32> = Vec::with_capacity(1_000);
        v.extend(0..900);
        let trimmed = exact(v);
        assert_eq!((trimmed.len(), trimmed.capacity()), (900, 900));
        assert!(trimmed.iter().copied().eq(0..900));
    }
}
