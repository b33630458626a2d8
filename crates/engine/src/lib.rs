//! One sync run, end to end: pull a source into a snapshot (the `pull` module:
//! [`open_source`], [`pull_full`], [`pull_delta`]), plan (pure, in the core crate), hold
//! it when a safeguard trips, else apply in one transaction, and record. The CLI and the
//! server both call [`sync`]; neither knows how a run is put together.
//!
//! The other ways a source's runs change go through here too: [`sync_user`] (one person,
//! now), [`approve`] and [`discard`] (a held run), [`undo`] (an applied run), each
//! holding the source's lock (one run of a source at a time, across processes: taken
//! inside, or handed over by a caller that took it with [`lock_source`]), and
//! [`settle_interrupted_runs`] (runs a stopped process left `running`). [`inspect`] and [`find_sis_person`] read the SIS and write nothing. Every
//! time written comes from the [`Clock`] in the [`Context`], so tests move a clock.
//!
//! Synchronous on purpose: the store is blocking, so a run owns a plain thread and uses
//! the given tokio handle only for the network pull.

mod accounts;
mod clock;
mod pull;
mod push;
mod scim;
mod secrets;

pub use clock::{Clock, ManualClock, SystemClock};
pub use pull::{PullSizes, Snapshot, open_source, pull_delta, pull_full};
pub use push::{FollowerPush, PushOutcome, PushRequest, push, push_followers};
pub use scim::{ScimChange, ScimWrite, scim_write};
pub use secrets::{SealedSecrets, SettingsFrom, client_secret, seal_secrets};

use jiff::Timestamp;
use oneroster::net::AddressPolicy;
use oneroster::report::Coverage;
use oneroster::source::{Source, SourceError};
use rostersync_core::accounts::{AccountsInput, Identity, plan_accounts_into};
use rostersync_core::directory::AccountId;
use rostersync_core::guard::{self, Trip, guard_counting};
use rostersync_core::plan::{Counts, Outcome, Plan, PlanInput, PlanItem, SisRecord, SyncKind};
use rostersync_core::planner;
use rostersync_core::roster::{ClassInfo, ClassKind, Enroll, EnrollRole, Roster};
use rostersync_core::settings::{Config, Network, SourceConfig, SourceKind};
use rostersync_core::sis::SisPerson;
use rostersync_core::view::{DirectoryView, ViewKeys};
use serde::Serialize;
use store::keyring::Keyring;
use store::{
    NewRun, PageCache, RunFinish, RunId, RunStatus, Store, StoreError, Trigger, WriteSize,
};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Something an admin fixes in the settings.
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Source(#[from] SourceError),
    /// An identity provider refused or failed a read (the message says which setting or
    /// admin-console step to fix).
    #[error("{0}")]
    Provider(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another run of the source holds its lock.
    #[error(
        "source {0} is already running a sync (in `rostersync serve` or another command): wait for it to finish"
    )]
    Busy(String),
}

impl EngineError {
    /// Whether the failure is the settings' or the source's (exit 2), as opposed to ours.
    pub fn is_configuration(&self) -> bool {
        match self {
            EngineError::Config(_) => true,
            EngineError::Source(_) => true,
            EngineError::Provider(_) => true,
            EngineError::Busy(_) => true,
            EngineError::Store(_) => false,
        }
    }
}

/// What the caller asks for.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    pub source: String,
    pub kind: SyncKind,
    pub trigger: Trigger,
    /// An admin approved this run's changes up front (re-planning an approved held run):
    /// the mass-change safeguards do not hold it.
    pub approved: bool,
}

/// Where a long run is, for a progress bar.
#[derive(Debug, Clone)]
pub enum Progress {
    /// The run is recorded (before the pull): its id.
    Started {
        run: RunId,
    },
    Pulling {
        collection: &'static str,
        records: u64,
    },
    Pulled {
        collection: &'static str,
        records: u64,
        complete: bool,
    },
    /// The pull is over (or failed): what its HTTP requests to the SIS cost.
    SourceRequests {
        stats: oneroster::rest::RequestStats,
    },
    /// A complete full pull asks the source about the people it did not see.
    ConfirmingAbsence {
        people: u64,
    },
    Planning {
        people: u64,
        /// So many people changed that their accounts are read this many people at a
        /// time ([`Context::account_chunk`]), each chunk's let go before the next.
        account_chunk: Option<u64>,
    },
    /// The plan holds more items than a run keeps at once ([`Context::max_plan_items`]):
    /// counted and judged by a first pass, it is made again as its `writes` changes are
    /// applied (or held, or handed out by a dry run).
    MadeAgain {
        writes: u64,
    },
    Applying {
        writes: u64,
    },
}

/// One line for a person watching the run (CLI progress, the console's live box).
impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Progress::Started { run } => write!(f, "run {run} started"),
            Progress::Pulling {
                collection,
                records,
            } => write!(f, "reading {collection}: {records}"),
            Progress::Pulled {
                collection,
                records,
                complete,
            } => write!(
                f,
                "read {collection}: {records}{}",
                if *complete { "" } else { " (incomplete)" }
            ),
            Progress::SourceRequests { stats } => write!(
                f,
                "read the source in {} request(s) ({} failed, retried or not), {:.1} s waiting",
                stats.requests, stats.failures, stats.seconds
            ),
            Progress::ConfirmingAbsence { people } => {
                write!(f, "asking the source about {people} people it did not list")
            }
            Progress::Planning {
                people,
                account_chunk: None,
            } => write!(f, "planning {people} people"),
            Progress::Planning {
                people,
                account_chunk: Some(chunk),
            } => write!(
                f,
                "planning {people} people, their accounts read {chunk} people at a time"
            ),
            Progress::MadeAgain { writes } => write!(
                f,
                "{writes} changes, more than a run holds at once: the plan is made again as they are applied"
            ),
            Progress::Applying { writes } => write!(f, "applying {writes} changes"),
        }
    }
}

/// What a run did: the `sync --json` document.
#[derive(Debug, Clone, Serialize)]
pub struct SyncOutcome {
    pub run_id: Option<RunId>,
    pub source: String,
    pub kind: SyncKind,
    pub dry_run: bool,
    pub status: RunStatus,
    pub complete: bool,
    pub counts: Counts,
    pub error: Option<String>,
    /// Why the pull is not complete, and other notes worth showing.
    pub warnings: Vec<String>,
    /// The safeguards the plan tripped: the run is held (a dry run says it would be).
    pub hold: Vec<Trip>,
}

/// A push's outcome in a sync's shape (the target's name as the source): what
/// [`approve`] answers for a held push.
impl From<PushOutcome> for SyncOutcome {
    fn from(p: PushOutcome) -> SyncOutcome {
        SyncOutcome {
            run_id: p.run_id,
            source: p.target,
            kind: p.kind,
            dry_run: p.dry_run,
            status: p.status,
            complete: p.complete,
            counts: p.counts,
            error: p.error,
            warnings: p.warnings,
            hold: p.hold,
        }
    }
}

impl SyncOutcome {
    /// 0 succeeded cleanly; 1 held or finished with record errors; 2 failed.
    /// As [`exit_code`], and 2 for a run that ended in an error whatever its status (an
    /// approval that failed leaves its run held).
    pub fn exit_code(&self) -> u8 {
        if self.error.is_some() {
            2
        } else {
            exit_code(self.status, self.counts.errors)
        }
    }
}

/// A run's exit code: 0 succeeded cleanly; 1 held or finished with `errors` (records or
/// accounts that failed); 2 failed.
fn exit_code(status: RunStatus, errors: u64) -> u8 {
    match status {
        RunStatus::Succeeded if errors == 0 => 0,
        RunStatus::Succeeded | RunStatus::Held => 1,
        _ => 2,
    }
}

/// Everything a run needs from around it.
pub struct Context<'a> {
    pub store: &'a Store,
    pub keyring: Option<&'a Keyring>,
    pub runtime: &'a tokio::runtime::Handle,
    pub progress: &'a (dyn Fn(Progress) + Sync),
    /// Where every time the engine records comes from (run start and finish, apply,
    /// hold, approve, discard, audit): [`SystemClock`] in the CLI, the server's clock in
    /// `serve`, a [`ManualClock`] in tests.
    pub clock: &'a dyn Clock,
    /// Who takes the source locks a run holds (`cli:USER@HOST`, the server's holder).
    pub holder: &'a str,
    /// The most items of a plan a run holds at once ([`MAX_PLAN_ITEMS`]); a larger plan
    /// is applied as it is made.
    pub max_plan_items: usize,
    /// How many people's accounts a plan reads at once when so many changed that it would
    /// read every account ([`ACCOUNT_CHUNK`]); a directory of no more accounts is read
    /// whole.
    pub account_chunk: usize,
}

/// How far before the watermark a delta starts: records written while the last pull ran
/// can carry a slightly older `dateLastModified` than the newest one it saw.
pub const DELTA_OVERLAP_SECONDS: i64 = 300;

/// Runs one sync: pull, plan, apply (unless a dry run), record.
///
/// A failed pull or apply leaves the directory exactly as it was and records the run as
/// failed with the error (a dry run records nothing at all).
///
/// The run holds its source's lock (a dry run none): `lock` when the caller took it
/// already with [`lock_source`] (the server does, to answer "busy" before it starts a
/// thread), else it is taken here (`Busy` when another run of the source holds it).
pub fn sync(
    ctx: &Context<'_>,
    req: &SyncRequest,
    lock: Option<SourceLock>,
) -> Result<SyncOutcome, EngineError> {
    let _lock = hold(ctx, &req.source, lock)?;
    sync_locked(ctx, req, None)
}

/// A dry run of `req`: pulls, plans and judges the safeguards as [`sync`] would, hands
/// every item of the plan to `items` in the plan's order, and writes nothing (not even a
/// run). A SIS source's preview, like a run that applies, holds at most
/// [`Context::max_plan_items`] items at once: a larger plan is counted and judged first,
/// then made again as it is handed out (an account source's plan is made whole, as its
/// runs make it). Made again by chunks, it reads the accounts again, and fails, after
/// handing out some of its items, if they cannot be read or count otherwise than the first
/// time (the directory changed meanwhile). Takes no lock.
pub fn preview(
    ctx: &Context<'_>,
    req: &SyncRequest,
    items: &mut dyn FnMut(PlanItem),
) -> Result<SyncOutcome, EngineError> {
    sync_locked(ctx, req, Some(items))
}

/// Where a dry run's items go, as they are made ([`preview`]); `None` for a run that
/// applies.
type Preview<'r, 'p> = Option<&'r mut (dyn FnMut(PlanItem) + 'p)>;

/// [`sync`] by a caller that holds the source's lock, or a dry run (`preview` is `Some`),
/// which needs none.
fn sync_locked(
    ctx: &Context<'_>,
    req: &SyncRequest,
    preview: Preview<'_, '_>,
) -> Result<SyncOutcome, EngineError> {
    let dry_run = preview.is_some();
    let config = ctx.store.load_config()?;
    let source = config
        .source(&req.source)
        .ok_or_else(|| unknown_source(&config, &req.source))?
        .clone();
    let mut kind = req.kind;
    if kind == SyncKind::User {
        return Err(EngineError::Config(
            "a single-user sync needs an account: use sync_user".into(),
        ));
    }
    if source.kind.is_account_source() {
        return sync_accounts(ctx, &config, &source, req, preview);
    }
    // A CSV package says itself whether it is complete or changes only.
    let opened = open_for(ctx, &config, &source).and_then(|handle| {
        if let Source::Csv(p) = &handle {
            match (p.coverage(oneroster::Collection::Users), kind) {
                (Some(Coverage::Delta), _) => kind = SyncKind::Delta,
                (Some(Coverage::Full), SyncKind::Delta) => {
                    return Err(EngineError::Config(format!(
                        "source {}: the package's users.csv is a bulk export (the whole district): run a full sync",
                        source.name
                    )));
                }
                _ => {}
            }
        }
        Ok(handle)
    });
    // The run is recorded before the pull (which can take a long time), so the console
    // and the API show it, with its id, while it runs.
    let started = match (&opened, dry_run) {
        (Ok(_), false) => {
            let run = ctx.store.start_run(&NewRun {
                source: source.name.clone(),
                kind,
                trigger: req.trigger,
                started_at: ctx.clock.now(),
            })?;
            (ctx.progress)(Progress::Started { run });
            Some(run)
        }
        _ => None,
    };
    let mut kept = None;
    let mut pull = |handle: Result<Source, EngineError>| {
        handle.and_then(|mut handle| {
        let since = if kind == SyncKind::Delta && matches!(handle, Source::Rest(_)) {
            let watermark = ctx.store.watermark(&source.name)?.ok_or_else(|| {
                EngineError::Config(format!(
                    "source {}: no successful pull yet to start a delta from: run a full sync first",
                    source.name
                ))
            })?;
            Some(Timestamp::from_second(watermark.as_second() - DELTA_OVERLAP_SECONDS).unwrap_or(watermark))
        } else {
            None
        };
        let snapshot = match kind {
            SyncKind::Delta => ctx.runtime.block_on(pull::pull_delta(
                &mut handle,
                since.unwrap_or(Timestamp::UNIX_EPOCH),
                ctx.progress,
            )),
            _ => {
                let last = pull_sizes(ctx, &source.name);
                let fingerprint = planner::settings_fingerprint(&config, &source);
                let pulled = ctx.runtime.block_on(pull::pull_full(
                    &mut handle,
                    last,
                    fingerprint,
                    ctx.progress,
                ));
                if let Ok(snap) = &pulled {
                    record_pull_sizes(ctx, &source.name, last, PullSizes::of(snap));
                }
                pulled
            }
        };
        // What the SIS's requests cost, whether or not the pull succeeded.
        if let Some(stats) = handle.request_stats() {
            (ctx.progress)(Progress::SourceRequests { stats });
        }
        record_token(ctx, &source.name, &handle);
        let snapshot = snapshot?;
        kept = Some(handle);
        Ok(snapshot)
    })
    };
    // A full pull plans against every link, which the store reads meanwhile: the pull
    // mostly waits on the SIS (or, a simulator on this machine, shares the cores with
    // it), the read on the database. A pull that fails waits for the read to end.
    let (pulled, loaded) = if kind == SyncKind::Full && opened.is_ok() {
        let store = ctx.store;
        std::thread::scope(|s| {
            let loading = s.spawn(|| store.load_links_view(&source.name));
            let pulled = pull(opened);
            let loaded = loading
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (pulled, Some(loaded.map_err(EngineError::from)))
        })
    } else {
        (pull(opened), None)
    };
    run_and_record(
        ctx,
        &config,
        &source,
        kind,
        preview,
        req.trigger,
        req.approved,
        started,
        pulled,
        kept.as_ref(),
        loaded,
    )
}

/// Syncs one account from its SIS person: fetches that person and their classes, plans
/// and applies for that account only (a run of kind `user`). No one is deactivated for
/// being absent: a single person missing is not proof. Holds the source's lock as
/// [`sync`] does.
pub fn sync_user(
    ctx: &Context<'_>,
    user: AccountId,
    trigger: Trigger,
    lock: Option<SourceLock>,
) -> Result<SyncOutcome, EngineError> {
    let config = ctx.store.load_config()?;
    let record = ctx
        .store
        .get_user(user)?
        .ok_or_else(|| EngineError::Config(format!("no account #{user}")))?;
    let sis = record.sis.ok_or_else(|| {
        EngineError::Config(format!(
            "account #{user} is not linked to a SIS person: link it first (rostersync link USER --sis SOURCEDID)"
        ))
    })?;
    let source = config
        .source(&sis.source)
        .ok_or_else(|| unknown_source(&config, &sis.source))?
        .clone();
    let _lock = hold(ctx, &source.name, lock)?;
    let sourced_id = sis.sourced_id.clone();
    let fetched = open_for(ctx, &config, &source).and_then(|mut handle| {
        let found = ctx.runtime.block_on(handle.person(&sourced_id));
        if let Some(stats) = handle.request_stats() {
            (ctx.progress)(Progress::SourceRequests { stats });
        }
        let found = found?;
        let Some((person, classes)) = found else {
            return Err(EngineError::Config(format!(
                "SIS person {sourced_id} (source {}) was not found: a full sync decides what happens to accounts whose person is gone",
                source.name
            )));
        };
        let mut roster = Roster {
            has_enrollments: true,
            ..Roster::default()
        };
        let role = match person.primary_role() {
            Some(oneroster::Role::Teacher) => EnrollRole::Teacher,
            Some(oneroster::Role::Student) => EnrollRole::Student,
            _ => EnrollRole::Other,
        };
        for (i, c) in classes.iter().enumerate() {
            roster.classes.push(ClassInfo {
                sourced_id: c.base.sourced_id.clone(),
                title: c.title.clone(),
                kind: match c.class_type {
                    Some(oneroster::ClassType::Homeroom) => ClassKind::Homeroom,
                    Some(oneroster::ClassType::Scheduled) => ClassKind::Scheduled,
                    _ => ClassKind::Other,
                },
                location: c.location.clone(),
                school: c.school.clone(),
                course: None,
            });
            roster.enrollments.push(Enroll {
                person: 0,
                class: i as u32,
                role,
            });
        }
        Ok(Snapshot {
            people: vec![SisPerson::from_user(&person)],
            roster: Some(roster),
            reports: Vec::new(),
            complete: false,
            newest_modified: None,
            warnings: Vec::new(),
            ahead: None,
        })
    });
    run_and_record(
        ctx,
        &config,
        &source,
        SyncKind::User,
        None,
        trigger,
        false,
        None,
        fetched,
        None,
        None,
    )
}

/// Opens a configured source with its secret, under the settings' network rules.
fn open_for(
    ctx: &Context<'_>,
    config: &Config,
    source: &SourceConfig,
) -> Result<Source, EngineError> {
    let secret = match source.kind {
        SourceKind::OneRosterCsv => None,
        _ => client_secret(ctx, source)?,
    };
    open_source(source, &config.network, secret.as_ref())
}

/// Reads every collection of a configured source and reports what it found, the
/// *Validate* check: nothing is written but the access token's lifetime, when the token
/// service said it ([`token_seen`]).
pub fn inspect(
    ctx: &Context<'_>,
    name: &str,
) -> Result<oneroster::inspect::Inspection, EngineError> {
    let config = ctx.store.load_config()?;
    let source = config
        .source(name)
        .ok_or_else(|| unknown_source(&config, name))?;
    if source.kind.is_account_source() {
        return inspect_accounts(ctx, &config, source);
    }
    let mut opened = open_for(ctx, &config, source)?;
    let inspected = ctx
        .runtime
        .block_on(oneroster::inspect::inspect(&mut opened));
    record_token(ctx, name, &opened);
    Ok(inspected?)
}

/// Of the accounts `view` holds, those a SIS source links: an account source's
/// `deactivate = "unmanaged"` leaves them to the SIS.
fn sis_managed(
    ctx: &Context<'_>,
    config: &Config,
    view: &rostersync_core::view::DirectoryView,
) -> Result<std::collections::HashSet<AccountId>, EngineError> {
    let sis_sources: Vec<String> = config
        .sources
        .iter()
        .filter(|s| !s.kind.is_account_source())
        .map(|s| s.name.clone())
        .collect();
    let ids: Vec<AccountId> = view.users().map(|u| u.id).collect();
    Ok(ctx.store.linked_by(&sis_sources, &ids)?)
}

/// Why a SCIM connection is neither synced nor validated: nothing is read from it.
fn scim_is_pushed(source: &SourceConfig) -> EngineError {
    EngineError::Config(format!(
        "source {0} is a SCIM connection: the identity provider pushes its accounts to /scim/v2 with a token of its own (rostersync token create --scope scim --name {0}); there is nothing to read from here",
        source.name
    ))
}

/// *Validate* of an account source: every account read (nothing written), counted as
/// active or suspended, in the shape a OneRoster inspection has (one collection,
/// `accounts`).
fn inspect_accounts(
    ctx: &Context<'_>,
    config: &Config,
    source: &SourceConfig,
) -> Result<oneroster::inspect::Inspection, EngineError> {
    if source.kind == rostersync_core::settings::SourceKind::Scim {
        return Err(scim_is_pushed(source));
    }
    let secret = client_secret(ctx, source)?;
    let read = accounts::read(
        ctx,
        source,
        &config.network,
        secret.as_ref(),
        SyncKind::Full,
        None,
    )?;
    let suspended = read.identities.iter().filter(|i| i.suspended).count() as u64;
    let records = read.identities.len() as u64;
    let mut collections = std::collections::BTreeMap::new();
    collections.insert(
        "accounts",
        oneroster::inspect::CollectionSummary {
            records,
            pages: 0,
            expected: None,
            complete: read.complete,
            ..Default::default()
        },
    );
    let mut roles = std::collections::BTreeMap::new();
    roles.insert("active".to_owned(), records - suspended);
    roles.insert("suspended".to_owned(), suspended);
    Ok(oneroster::inspect::Inspection {
        kind: source.kind.as_str(),
        version: match source.kind {
            rostersync_core::settings::SourceKind::EntraId => "Microsoft Graph v1.0",
            _ => "Directory API v1",
        },
        collections,
        roles,
        warnings: read.warnings,
    })
}

/// The access token a source's token service last gave, as a sync or a validation saw
/// it: how long it lasts (`expires_in`, seconds) and when it was fetched. The Overview
/// shows it; tokens are renewed on their own, so this says how often, not a deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct TokenSeen {
    pub expires_in: u64,
    pub at: Timestamp,
}

fn token_key(source: &str) -> String {
    format!("token:{source}")
}

/// The last access token seen for `source` (`None`: no run or validation of this version
/// fetched one, or the token service did not say how long it lasts).
pub fn token_seen(store: &Store, source: &str) -> Result<Option<TokenSeen>, StoreError> {
    Ok(store
        .meta_get(&token_key(source))?
        .and_then(|t| serde_json::from_str(&t).ok()))
}

/// Keeps how long the source's last access token lasts. Best effort: a failure to keep
/// it is logged, never the run's failure.
fn record_token(ctx: &Context<'_>, source: &str, handle: &Source) {
    let Some(expires_in) = handle.token_expires_in() else {
        return;
    };
    let seen = TokenSeen {
        expires_in,
        at: ctx.clock.now(),
    };
    keep_in_meta(
        ctx,
        source,
        &token_key(source),
        &seen,
        "the access token's lifetime",
    );
}

/// Keeps `value` as JSON under `key`. Best effort: a failure is logged (as `what` of
/// `source`), never the run's failure.
fn keep_in_meta(ctx: &Context<'_>, source: &str, key: &str, value: &impl Serialize, what: &str) {
    let kept = serde_json::to_string(value)
        .map_err(|e| e.to_string())
        .and_then(|json| ctx.store.meta_set(key, &json).map_err(|e| e.to_string()));
    if let Err(e) = kept {
        tracing::warn!(source, error = %e, "cannot keep {what}");
    }
}

fn pull_sizes_key(source: &str) -> String {
    format!("pull_sizes:{source}")
}

/// How much the source's last full pull read ([`PullSizes`]; none yet: nothing).
pub fn last_pull_sizes(store: &Store, source: &str) -> Result<PullSizes, StoreError> {
    Ok(store
        .meta_get(&pull_sizes_key(source))?
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default())
}

/// [`last_pull_sizes`], or nothing when they cannot be read (a hint: the pull goes on).
fn pull_sizes(ctx: &Context<'_>, source: &str) -> PullSizes {
    match last_pull_sizes(ctx.store, source) {
        Ok(sizes) => sizes,
        Err(e) => {
            tracing::warn!(source, error = %e, "cannot read the last pull's sizes");
            PullSizes::default()
        }
    }
}

/// Keeps how much a full pull read, for the next one's room (best effort), unless the
/// last pull read as much (`last`, as read before this one).
fn record_pull_sizes(ctx: &Context<'_>, source: &str, last: PullSizes, sizes: PullSizes) {
    if last != sizes {
        keep_in_meta(
            ctx,
            source,
            &pull_sizes_key(source),
            &sizes,
            "the pull's sizes",
        );
    }
}

/// The addresses requests may reach under the settings' `[network]`.
pub fn address_policy(network: &Network) -> AddressPolicy {
    AddressPolicy {
        allow_loopback: network.allow_loopback,
        allow_private: network.allow_private,
    }
}

/// Before a complete full pull may deactivate anyone for being absent, the source is
/// asked about the absent people one by one; if it still has any of them, the pull
/// missed people (the roster moved between pages) and is not complete: nobody is
/// deactivated this run, and the warning says why. A failed check proves nothing either.
fn confirm_absence(
    ctx: &Context<'_>,
    handle: &Source,
    view: &rostersync_core::view::DirectoryView,
    snap: &mut Snapshot,
    order: &[u32],
) -> Result<(), EngineError> {
    // The pull's ids in order (`order`, which planning sorts them by too), walked beside
    // the links (in the same order): no set of a million strings, and no sort of its own.
    let active_links = view.links().filter(|l| l.deactivated_at().is_none());
    let mut absent: Vec<&str> = planner::absent_links(&snap.people, order, active_links)
        .map(|l| &*l.sourced_id)
        .collect();
    if absent.is_empty() {
        return Ok(());
    }
    absent.sort_unstable();
    (ctx.progress)(Progress::ConfirmingAbsence {
        people: absent.len() as u64,
    });
    let warning = match ctx.runtime.block_on(pull::confirm_absent(handle, &absent)) {
        Ok(check) if check.still_there.is_empty() => {
            if check.checked < absent.len() {
                snap.warnings.push(format!(
                    "{} people are absent; {} of them, read one by one, are gone from the SIS (the rest were not read)",
                    absent.len(),
                    check.checked
                ));
            }
            return Ok(());
        }
        Ok(check) => format!(
            "the pull missed people the SIS still has ({} of {} absent people read one by one are there, e.g. {}): the roster changed while it was read; nobody is deactivated for being absent this run — sync again",
            check.still_there.len(),
            check.checked,
            check.still_there[..check.still_there.len().min(3)].join(", ")
        ),
        Err(e) => format!(
            "could not confirm that the {} absent people are gone ({e}); nobody is deactivated for being absent this run",
            absent.len()
        ),
    };
    snap.complete = false;
    snap.warnings.push(warning);
    Ok(())
}

/// Records the run, plans from the snapshot (or records the failure), applies.
#[allow(clippy::too_many_arguments)]
fn run_and_record(
    ctx: &Context<'_>,
    config: &Config,
    source: &SourceConfig,
    kind: SyncKind,
    mut preview: Preview<'_, '_>,
    trigger: Trigger,
    approved: bool,
    started: Option<RunId>,
    snapshot: Result<Snapshot, EngineError>,
    handle: Option<&Source>,
    loaded: Option<Result<DirectoryView, EngineError>>,
) -> Result<SyncOutcome, EngineError> {
    let run_id = run_for(ctx, source, kind, preview.is_some(), trigger, started)?;
    let mut settle_with = |planned| {
        settle(
            ctx,
            config,
            source,
            kind,
            preview.as_deref_mut(),
            run_id,
            planned,
        )
    };
    let mut snap = match snapshot {
        Ok(snap) => snap,
        Err(e) => return settle_with(Err(e)),
    };
    // The people by sourcedId, sorted once for the absence check and planning (by a full
    // pull as it read the enrollments).
    let ahead = snap.ahead.take().unwrap_or_else(|| {
        planner::PeopleAhead::new(&snap.people, planner::settings_fingerprint(config, source))
    });
    let links = match links_view(ctx, source, kind, handle, &mut snap, ahead.order(), loaded) {
        Ok(links) => links,
        Err(e) => return settle_with(Err(e)),
    };
    // The input without the pull, which both planning passes plan from.
    let settings = PlanInput {
        config,
        source,
        kind,
        complete: snap.complete,
        people: &[],
        roster: None,
        now: ctx.clock.now(),
    };
    let input = PlanInput {
        people: &snap.people,
        roster: snap.roster.as_ref(),
        ..settings
    };
    let (intake, mut view, by_chunks) = match take_in(ctx, &input, links, ahead) {
        Ok(taken) => taken,
        Err(e) => return settle_with(Err(e)),
    };
    // The page cache of a large apply: a plan made by chunks against many links holds the
    // pull and every link through it, and a wide change applies as fast with a quarter of
    // the cache; one that creates most of its people (a first import, into a directory
    // single sign-on filled or not) needs the large one, and holds few links.
    let cache = if by_chunks && view.link_count() > ctx.account_chunk {
        PageCache::Lean
    } else {
        PageCache::Large
    };
    (ctx.progress)(Progress::Planning {
        people: snap.people.len() as u64,
        account_chunk: by_chunks.then_some(ctx.account_chunk as u64),
    });
    // A run holds at most `max_plan_items` of its plan's items: past that, the plan is
    // made once to count and guard it, and again as it is applied (or, a dry run, handed
    // out).
    let most = ctx.max_plan_items;
    // With nobody linked yet (a first import) nearly everyone gets an item and a record:
    // room for them at once, as doubling's last copy would hold both halves.
    let room = if view.links().next().is_none() {
        snap.people.len().min(most)
    } else {
        0
    };
    let mut first = FirstPass::new(most, room);
    let take = |item, record| first.take(item, record);
    let mut plan = match plan_pass(ctx, &source.name, intake, &mut view, by_chunks, take) {
        Ok(plan) => plan,
        Err(e) => return settle_with(Err(e.into())),
    };
    let (writes, updates) = (first.writes, first.updates);
    let streamed;
    (plan.items, plan.sis_records, streamed) = first.into_parts();
    let watermark = snap.newest_modified.filter(|_| kind != SyncKind::User);
    plan.watermark = watermark;
    let trips = if approved || kind == SyncKind::User {
        Vec::new()
    } else {
        let pulled = guard::Pulled::of(&snap.people);
        match guard_plan(ctx, &plan, updates, &mut view, source, &pulled) {
            Ok(trips) => trips,
            Err(e) => return settle_with(Err(e)),
        }
    };
    let warnings = std::mem::take(&mut snap.warnings);
    if streamed {
        // The first pass's deactivations and roster are not needed again: the outcome
        // reads the counts.
        plan.items = Vec::new();
        plan.roster = None;
    }
    if streamed {
        // The second pass owns the pull and the view, and lets them go once the last item
        // is handed over: the roster, the records and the review cases are written (or
        // held, when a safeguard tripped) without them.
        let counted = plan.counts;
        (ctx.progress)(Progress::MadeAgain {
            writes: writes as u64,
        });
        let again = move |sink: &mut Sink<'_>| {
            let input = PlanInput {
                people: &snap.people,
                roster: snap.roster.as_ref(),
                ..settings
            };
            let intake = planner::intake(&input);
            let mut rest = plan_pass(ctx, &source.name, intake, &mut view, by_chunks, sink)?;
            // Read again by chunks, the accounts may have changed since the first pass (on
            // PostgreSQL even during this one): what is written must be what the
            // safeguards judged.
            if by_chunks && rest.counts != counted {
                return Err(StoreError::Conflict(format!(
                    "the directory changed while the run was planned (first counted {}, then {}): sync again",
                    in_words(&counted),
                    in_words(&rest.counts)
                )));
            }
            drop(view);
            drop(snap);
            rest.watermark = watermark;
            Ok(rest)
        };
        let apply = Apply::Again {
            writes,
            cache,
            plan: Box::new(again),
        };
        let planned = Planned {
            plan,
            trips,
            warnings,
            apply,
        };
        return settle(ctx, config, source, kind, preview, run_id, Ok(planned));
    }
    // The plan holds what the apply needs: the pull and the view go first.
    drop(view);
    drop(snap);
    let planned = Planned {
        plan,
        trips,
        warnings,
        apply: Apply::Whole,
    };
    settle(ctx, config, source, kind, preview, run_id, Ok(planned))
}

/// The view of every link a full pull (or a delta that holds much of the source) plans
/// against, the absence of the people a complete pull misses confirmed; `None` for a run
/// whose view is read by its people's keys. `loaded` is the view read while the pull ran.
fn links_view(
    ctx: &Context<'_>,
    source: &SourceConfig,
    kind: SyncKind,
    handle: Option<&Source>,
    snap: &mut Snapshot,
    order: &[u32],
    loaded: Option<Result<DirectoryView, EngineError>>,
) -> Result<Option<DirectoryView>, EngineError> {
    // A full pull reads every link, then only the accounts of people who changed, are
    // new or went missing. So does a delta that holds much of the source (the SIS
    // touched every record, or stamped a whole import alike): asked for person by
    // person its view would cost more than every link. A smaller delta or a
    // single-user sync reads what its people reach.
    let every_link = match kind {
        SyncKind::Full => true,
        SyncKind::Delta => {
            snap.people.len() as u64 > ctx.store.active_linked(&source.name)? / planner::WIDE_SHARE
        }
        SyncKind::User | SyncKind::Scim | SyncKind::Push => false,
    };
    if !every_link {
        return Ok(None);
    }
    let view = match loaded {
        Some(view) => view?,
        None => ctx.store.load_links_view(&source.name)?,
    };
    if kind == SyncKind::Full
        && snap.complete
        && let Some(handle) = handle
    {
        confirm_absence(ctx, handle, &view, snap, order)?;
    }
    Ok(Some(view))
}

/// The planner's intake of `input` (with what was worked out `ahead` of it), the view it
/// plans against (`links` with the accounts the intake needs, or, no links view, what its
/// people's keys reach), and whether the plan reads its accounts a chunk of people at a
/// time instead ([`planner::Intake::plan_by_chunks`]): when so many people changed that
/// the view would read every account ([`planner::Intake::accounts_needed`]), it holds
/// none, and each chunk reads what its people reach. A directory of no more accounts than
/// a chunk is read whole, as before.
fn take_in<'a>(
    ctx: &Context<'_>,
    input: &'a PlanInput<'a>,
    links: Option<DirectoryView>,
    ahead: planner::PeopleAhead,
) -> Result<(planner::Intake<'a>, DirectoryView, bool), EngineError> {
    let source = input.source;
    Ok(match links {
        Some(mut view) => {
            let intake = planner::intake_ahead(input, ahead);
            let keys = intake.accounts_needed(&view);
            if keys.everyone
                && view.account_count() > ctx.account_chunk as u64
                && ctx.store.reads_beside_writes()
            {
                return Ok((intake, view, true));
            }
            let (users, aliases) = ctx.store.load_accounts(&source.name, &keys)?;
            view.add_accounts(users, aliases);
            (intake, view, false)
        }
        None => {
            let view = ctx
                .store
                .load_scoped_view(&source.name, &planner::view_keys(source, input.people))?;
            (planner::intake_ahead(input, ahead), view, false)
        }
    })
}

/// One planning pass of `intake`, each item that is not just "unchanged" handed to `sink`:
/// a chunk of people at a time, each chunk reading the accounts its people reach, when
/// [`take_in`] said so (`by_chunks`), else against the accounts `view` holds.
fn plan_pass(
    ctx: &Context<'_>,
    source: &str,
    intake: planner::Intake<'_>,
    view: &mut DirectoryView,
    by_chunks: bool,
    sink: impl FnMut(PlanItem, Option<SisRecord>),
) -> Result<Plan, StoreError> {
    if by_chunks {
        let mut load = |keys: &ViewKeys| ctx.store.load_accounts(source, keys);
        intake.plan_by_chunks(view, ctx.account_chunk, &mut load, sink)
    } else {
        Ok(intake.plan_into(view, sink))
    }
}

/// How many people a plan made by chunks ([`planner::Intake::plan_by_chunks`]) reads the
/// accounts of at once: ~0.6 KiB an account read whole and ~0.3 KiB of keys a person,
/// some 100 MB.
pub const ACCOUNT_CHUNK: usize = 100_000;

/// The most plan items a run holds at once ([`Context::max_plan_items`]): at ~300 bytes
/// an item with its changes and SIS record, ~30 MB. A larger plan (a first import, a
/// settings change that rewrites everyone) is applied, or held when a safeguard trips, as
/// it is made, or, a dry run ([`preview`]), handed out as it is made.
pub const MAX_PLAN_ITEMS: usize = 100_000;

/// A first planning pass's items: all of them up to a limit; past it only the
/// deactivations (the safeguards' per-school losses), with how many items write and how
/// many update an account ([`guard::updates`]).
struct FirstPass {
    most: usize,
    items: Vec<PlanItem>,
    records: Vec<SisRecord>,
    /// Whether the plan outgrew `most`.
    over: bool,
    writes: usize,
    updates: u64,
}

impl FirstPass {
    /// Room for `room` items and records at once.
    fn new(most: usize, room: usize) -> FirstPass {
        FirstPass {
            most,
            items: Vec::with_capacity(room),
            records: Vec::with_capacity(room),
            over: false,
            writes: 0,
            updates: 0,
        }
    }

    fn take(&mut self, item: PlanItem, record: Option<SisRecord>) {
        self.writes += usize::from(item.writes());
        self.updates += u64::from(guard::counts_as_update(&item));
        if !self.over && self.items.len() >= self.most {
            self.over = true;
            self.items.retain(|i| i.outcome == Outcome::Deactivated);
            self.items.shrink_to_fit();
            self.records = Vec::new();
        }
        if !self.over {
            self.items.push(item);
            self.records.extend(record);
        } else if item.outcome == Outcome::Deactivated {
            self.items.push(item);
        }
    }

    /// The items and records kept, and whether the plan outgrew the limit (its items are
    /// then only its deactivations, its records none).
    fn into_parts(self) -> (Vec<PlanItem>, Vec<SisRecord>, bool) {
        (self.items, self.records, self.over)
    }
}

/// The safeguards `plan` trips, the schools a scoped view does not count read from the
/// store (`guard_counting`); `updates` of its items update an account.
fn guard_plan(
    ctx: &Context<'_>,
    plan: &Plan,
    updates: u64,
    view: &mut DirectoryView,
    source: &SourceConfig,
    pulled: &guard::Pulled<'_>,
) -> Result<Vec<Trip>, EngineError> {
    let counts = |schools: &[&str]| ctx.store.school_counts(&source.name, schools);
    Ok(guard_counting(plan, updates, view, source, pulled, counts)?)
}

/// A run's plan, the safeguards it tripped, what the read warned of, and how it is
/// applied.
struct Planned<'a> {
    plan: Plan,
    trips: Vec<Trip>,
    warnings: Vec<String>,
    apply: Apply<'a>,
}

/// How a plan is applied.
enum Apply<'a> {
    /// As it is held.
    Whole,
    /// A held run's, read from the store a part at a time: the plan held is its stored
    /// head, without items. `writes` is how many of its items write.
    Held { writes: usize },
    /// Made again as it is written (or, a dry run, handed out): the plan held is a first
    /// pass's, without items (its counts are whole). `writes` is how many of the plan's
    /// items write; `cache` the page cache the write takes (lean when the plan is made by
    /// chunks against more links than a chunk: the pull and every link are held through
    /// it).
    Again {
        writes: usize,
        cache: PageCache,
        plan: Box<MakeAgain<'a>>,
    },
}

/// A plan's counts in a sentence's words (an error message's).
fn in_words(c: &Counts) -> String {
    format!(
        "{} created, {} updated, {} linked, {} deactivated, {} reactivated, {} skipped",
        c.created, c.updated, c.linked, c.deactivated, c.reactivated, c.skipped
    )
}

/// Where a plan made again sends each item, with a linked person's SIS record.
type Sink<'s> = dyn FnMut(PlanItem, Option<SisRecord>) + 's;

/// Makes a plan again, handing its items to the sink, and returns the rest of it; a plan
/// that reads its accounts by chunks may fail to read them.
type MakeAgain<'a> = dyn FnOnce(&mut Sink<'_>) -> Result<Plan, StoreError> + 'a;

/// A dry run's items, in the plan's order, to `items`: a whole plan's, or a plan's made
/// again (which may fail to read its accounts).
fn hand_out(plan: Plan, how: Apply<'_>, items: &mut dyn FnMut(PlanItem)) -> Result<(), StoreError> {
    match how {
        Apply::Whole => plan.items.into_iter().for_each(items),
        Apply::Again { plan: again, .. } => {
            again(&mut |item, _| items(item))?;
        }
        Apply::Held { .. } => {
            debug_assert!(
                false,
                "only an approval applies a held plan, never a dry run"
            );
        }
    }
    Ok(())
}

/// The run a sync records under: the one started before the read, else a new one (a dry
/// run records none).
fn run_for(
    ctx: &Context<'_>,
    source: &SourceConfig,
    kind: SyncKind,
    dry_run: bool,
    trigger: Trigger,
    started: Option<RunId>,
) -> Result<Option<RunId>, EngineError> {
    Ok(if dry_run {
        None
    } else if let Some(run) = started {
        Some(run)
    } else {
        Some(ctx.store.start_run(&NewRun {
            source: source.name.clone(),
            kind,
            trigger,
            started_at: ctx.clock.now(),
        })?)
    })
}

/// Holds, applies or fails the run with what planning gave; a dry run hands its items out.
fn settle(
    ctx: &Context<'_>,
    config: &Config,
    source: &SourceConfig,
    kind: SyncKind,
    preview: Preview<'_, '_>,
    run_id: Option<RunId>,
    planned: Result<Planned<'_>, EngineError>,
) -> Result<SyncOutcome, EngineError> {
    let mut outcome = SyncOutcome {
        run_id,
        source: source.name.clone(),
        kind,
        dry_run: preview.is_some(),
        status: RunStatus::Succeeded,
        complete: false,
        counts: Counts::default(),
        error: None,
        warnings: Vec::new(),
        hold: Vec::new(),
    };
    match planned {
        Ok(Planned {
            plan,
            trips,
            warnings,
            apply: how,
        }) => {
            outcome.complete = plan.complete;
            outcome.counts = plan.counts;
            outcome.warnings = warnings;
            outcome.hold = trips;
            match run_id {
                None => {
                    if let Some(items) = preview {
                        hand_out(plan, how, items)?;
                    }
                }
                Some(run) if !outcome.hold.is_empty() => {
                    // Too much at once: keep the plan for a person to approve, apply nothing.
                    let (hold, warnings, now) = (&outcome.hold, &outcome.warnings, ctx.clock.now());
                    let held = match how {
                        Apply::Whole => ctx.store.hold_run(run, plan, hold, warnings, now),
                        Apply::Again { plan: again, .. } => ctx.store.hold_streamed(
                            run,
                            hold,
                            warnings,
                            ctx.max_plan_items,
                            now,
                            |feed| again(&mut |item, record| feed.push(item, record)),
                        ),
                        Apply::Held { .. } => Err(StoreError::Conflict(format!(
                            "run {run}: a held plan being approved is not held again"
                        ))),
                    };
                    match held {
                        Ok(()) => {
                            outcome.status = RunStatus::Held;
                            notify(ctx, &config.network, source, &outcome);
                        }
                        Err(e) => {
                            let message =
                                format!("holding the run failed, nothing was changed: {e}");
                            fail_run_with(
                                ctx,
                                run,
                                &outcome.counts,
                                outcome.complete,
                                &outcome.warnings,
                                &message,
                            );
                            outcome.status = RunStatus::Failed;
                            outcome.error = Some(message);
                            notify(ctx, &config.network, source, &outcome);
                        }
                    }
                }
                Some(run) => apply(ctx, &config.network, source, run, &plan, how, &mut outcome),
            }
            Ok(outcome)
        }
        Err(e) => {
            let message = e.to_string();
            match run_id {
                Some(run) => fail_run_with(ctx, run, &Counts::default(), false, &[], &message),
                None => return Err(e),
            }
            outcome.status = RunStatus::Failed;
            outcome.error = Some(message);
            notify(ctx, &config.network, source, &outcome);
            Ok(outcome)
        }
    }
}

/// An account source's run: read the identity provider, plan its identities against the
/// directory ([`rostersync_core::accounts`]), then hold, apply and record as a SIS run. A
/// successful Entra read's delta link is kept for the next `--delta` run once the run
/// applied.
fn sync_accounts(
    ctx: &Context<'_>,
    config: &Config,
    source: &SourceConfig,
    req: &SyncRequest,
    preview: Preview<'_, '_>,
) -> Result<SyncOutcome, EngineError> {
    if source.kind == rostersync_core::settings::SourceKind::Scim {
        return Err(scim_is_pushed(source));
    }
    let provider = source.provider().unwrap_or_default();
    let secret = client_secret(ctx, source)?;
    let delta_link = match req.kind {
        SyncKind::Delta => ctx.store.meta_get(&accounts::delta_key(&source.name))?,
        _ => None,
    };
    let run_id = run_for(ctx, source, req.kind, preview.is_some(), req.trigger, None)?;
    if let Some(run) = run_id {
        (ctx.progress)(Progress::Started { run });
    }
    let mut next_delta = None;
    let planned = accounts::read(
        ctx,
        source,
        &config.network,
        secret.as_ref(),
        req.kind,
        delta_link.as_deref(),
    )
    .and_then(|read| {
        let kind = if read.full {
            SyncKind::Full
        } else {
            SyncKind::Delta
        };
        next_delta = read.next_delta.clone();
        let accounts::Read {
            identities,
            removed,
            complete,
            warnings,
            ..
        } = read;
        let now = ctx.clock.now();
        let unmanaged = std::collections::HashSet::new();
        let input = AccountsInput {
            config,
            source,
            provider: &provider,
            kind,
            complete,
            identities: &identities,
            removed: &removed,
            managed: &unmanaged,
            now,
        };
        let mut view = match kind {
            SyncKind::Full => {
                let mut view = ctx.store.load_links_view(&source.name)?;
                let keys = rostersync_core::accounts::accounts_needed(&input, &view);
                let (users, aliases) = ctx.store.load_accounts(&source.name, &keys)?;
                view.add_accounts(users, aliases);
                view
            }
            _ => {
                let all: Vec<&Identity> = identities.iter().collect();
                let keys = rostersync_core::accounts::account_view_keys(source, &all, &removed);
                ctx.store.load_scoped_view(&source.name, &keys)?
            }
        };
        let managed = sis_managed(ctx, config, &view)?;
        let input = AccountsInput {
            managed: &managed,
            ..input
        };
        (ctx.progress)(Progress::Planning {
            people: identities.len() as u64,
            account_chunk: None,
        });
        // As a SIS run's: past `max_plan_items` the plan is made once to count and guard
        // it, and again as it is applied (a district's first read links a million).
        let mut first = FirstPass::new(ctx.max_plan_items, 0);
        let mut plan = plan_accounts_into(&input, &view, |item, record| first.take(item, record));
        let (writes, updates) = (first.writes, first.updates);
        let streamed;
        (plan.items, plan.sis_records, streamed) = first.into_parts();
        let trips = if req.approved {
            Vec::new()
        } else {
            let pulled =
                guard::Pulled::of_schools(identities.iter().filter_map(|i| i.org_unit.as_deref()));
            guard_plan(ctx, &plan, updates, &mut view, source, &pulled)?
        };
        if !streamed {
            return Ok(Planned {
                plan,
                trips,
                warnings,
                apply: Apply::Whole,
            });
        }
        // The first pass's deactivations are not needed again: the outcome reads the
        // counts.
        plan.items = Vec::new();
        (ctx.progress)(Progress::MadeAgain {
            writes: writes as u64,
        });
        let provider = &provider;
        let counted = plan.counts;
        let again = move |sink: &mut Sink<'_>| {
            let input = AccountsInput {
                config,
                source,
                provider,
                kind,
                complete,
                identities: &identities,
                removed: &removed,
                managed: &managed,
                now,
            };
            let rest = plan_accounts_into(&input, &view, sink);
            // The same read against the same view: what is written must be what the
            // safeguards judged.
            if rest.counts != counted {
                return Err(StoreError::Conflict(format!(
                    "the plan made again differs from the one counted (first {}, then {}): sync again",
                    in_words(&counted),
                    in_words(&rest.counts)
                )));
            }
            Ok(rest)
        };
        Ok(Planned {
            plan,
            trips,
            warnings,
            apply: Apply::Again {
                writes,
                cache: PageCache::Large,
                plan: Box::new(again),
            },
        })
    });
    let outcome = settle(ctx, config, source, req.kind, preview, run_id, planned)?;
    if outcome.run_id.is_some()
        && outcome.status == RunStatus::Succeeded
        && let Some(link) = next_delta
        && let Err(e) = ctx
            .store
            .meta_set(&accounts::delta_key(&source.name), &link)
    {
        tracing::warn!(source = %source.name, error = %e, "cannot keep the delta link");
    }
    Ok(outcome)
}

/// Applies a plan under a run, filling the outcome (failure included).
fn apply(
    ctx: &Context<'_>,
    network: &Network,
    source: &SourceConfig,
    run: RunId,
    plan: &Plan,
    how: Apply<'_>,
    outcome: &mut SyncOutcome,
) {
    let writes = match &how {
        Apply::Whole => plan.writes().count(),
        Apply::Again { writes, .. } | Apply::Held { writes } => *writes,
    };
    (ctx.progress)(Progress::Applying {
        writes: writes as u64,
    });
    // Applying finishes the run; the pull's warnings go with it first (best effort).
    if !outcome.warnings.is_empty()
        && let Err(e) = ctx.store.set_run_warnings(run, &outcome.warnings)
    {
        tracing::error!(run = run.0, error = %e, "could not record the run's warnings");
    }
    let now = ctx.clock.now();
    let approving = matches!(how, Apply::Held { .. });
    let applied = match how {
        Apply::Whole => ctx.store.apply_plan(run, plan, now),
        Apply::Again {
            writes,
            cache,
            plan: again,
        } => ctx.store.apply_streamed(
            run,
            &source.name,
            WriteSize { writes, cache },
            ctx.max_plan_items,
            now,
            |feed| again(&mut |item, record| feed.push(item, record)),
        ),
        Apply::Held { writes } => ctx.store.apply_held(run, writes, ctx.max_plan_items, now),
    };
    match applied {
        Ok(summary) => {
            outcome.counts = summary.counts;
            outcome.status = RunStatus::Succeeded;
        }
        Err(e) if approving => {
            // Nothing was applied and the plan is still stored: held again, to be approved
            // (once what failed is mended) or discarded.
            let message = format!(
                "approving the held plan failed, nothing was changed: {e}; the run is held again"
            );
            match ctx.store.rehold(run, &message) {
                Ok(true) => outcome.status = RunStatus::Held,
                other => {
                    if let Err(held) = other {
                        tracing::error!(run = run.0, error = %held, "could not hold the run again");
                    }
                    fail_run(ctx, run, plan, &outcome.warnings, &message);
                    outcome.status = RunStatus::Failed;
                }
            }
            outcome.error = Some(message);
        }
        Err(e) => {
            let message = format!("applying the plan failed, nothing was changed: {e}");
            fail_run(ctx, run, plan, &outcome.warnings, &message);
            outcome.status = RunStatus::Failed;
            outcome.error = Some(message);
            notify(ctx, network, source, outcome);
        }
    }
}

/// What `approve` did with a held run.
#[derive(Debug, Clone, Serialize)]
pub struct Approval {
    pub held_run: RunId,
    /// The held plan applied as it was (`true`), or re-planned because the directory
    /// changed underneath (`false`, see `outcome.run_id`).
    pub applied_as_held: bool,
    /// People whose accounts changed since the plan was made.
    pub stale: Vec<String>,
    pub outcome: SyncOutcome,
}

/// The named store lock a source's runs hold (`source:NAME`): syncs, approvals, discards
/// and undos of one source take turns, whichever process starts them. [`sync`],
/// [`sync_user`], [`approve`], [`discard`] and [`undo`] take it, or are handed it.
pub fn source_lock_name(source: &str) -> String {
    format!("source:{source}")
}

/// A source's run lock, held while this lives.
#[derive(Debug)]
pub struct SourceLock {
    source: String,
    _lock: store::StoreLock,
    /// Runs a stopped process had left `running`, settled when the lock was taken.
    pub settled: Vec<(RunId, RunStatus)>,
}

/// Takes the source's run lock for `holder` (`Busy` when another run of the source holds
/// it, in this process or another), then settles the runs a stopped process left
/// `running`: holding the lock proves none of them still runs.
/// Times come from `clock`.
pub fn lock_source(
    store: &Store,
    source: &str,
    holder: &str,
    clock: &dyn Clock,
) -> Result<SourceLock, EngineError> {
    let lock = store
        .try_lock(&source_lock_name(source), holder, clock.now())?
        .ok_or_else(|| EngineError::Busy(source.to_owned()))?;
    let settled = store.settle_interrupted(source, clock.now())?;
    for (run, status) in &settled {
        tracing::warn!(
            run = run.0,
            source,
            status = status.as_str(),
            "a run left running by a process that stopped was settled"
        );
    }
    Ok(SourceLock {
        source: source.to_owned(),
        _lock: lock,
        settled,
    })
}

/// The source's lock for a write: the one the caller took, checked to be this source's,
/// else taken now for `ctx.holder`.
fn hold(
    ctx: &Context<'_>,
    source: &str,
    lock: Option<SourceLock>,
) -> Result<SourceLock, EngineError> {
    match lock {
        Some(lock) if lock.source == source => Ok(lock),
        Some(lock) => Err(EngineError::Config(format!(
            "the lock of source {} was handed to a run of source {source}",
            lock.source
        ))),
        None => lock_source(ctx.store, source, ctx.holder, ctx.clock),
    }
}

/// The run `run`, `NotFound` when there is none.
fn find_run(ctx: &Context<'_>, run: RunId) -> Result<store::RunRecord, EngineError> {
    Ok(ctx
        .store
        .get_run(run)?
        .ok_or_else(|| StoreError::NotFound(format!("no run {run}")))?)
}

/// Settles every source's runs left `running` by processes that are gone (each source's
/// lock taken in turn; a source whose lock is held is really running and left alone).
/// Run at the start of a process: Sync History then never shows a dead run as running.
pub fn settle_interrupted_runs(
    store: &Store,
    holder: &str,
    clock: &dyn Clock,
) -> Result<Vec<(RunId, RunStatus)>, EngineError> {
    let mut all = Vec::new();
    for source in store.sources_running()? {
        match lock_source(store, &source, holder, clock) {
            Ok(lock) => all.extend(lock.settled.iter().copied()),
            Err(EngineError::Busy(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(all)
}

/// Approves a held run: applies its stored plan when the directory has not changed since,
/// else supersedes it and runs the sync again with the safeguards waived (the admin
/// approved the change), and says so. `NotFound` for an unknown run, `Conflict` for one
/// that is not held. Holds the source's lock as [`sync`] does.
pub fn approve(
    ctx: &Context<'_>,
    run: RunId,
    actor: &str,
    lock: Option<SourceLock>,
) -> Result<Approval, EngineError> {
    let _lock = hold(ctx, &find_run(ctx, run)?.source, lock)?;
    // Read again under the lock: another process may have approved it meanwhile.
    let record = find_run(ctx, run)?;
    if record.status != RunStatus::Held {
        return Err(StoreError::Conflict(format!(
            "run {run} is {}, not held: only a held run can be approved",
            record.status.as_str()
        ))
        .into());
    }
    if record.kind == SyncKind::Push {
        let outcome = push::approve_push(ctx, run, actor)?;
        return Ok(Approval {
            held_run: run,
            applied_as_held: outcome.status != RunStatus::Held,
            stale: Vec::new(),
            outcome: outcome.into(),
        });
    }
    // The stored plan is checked, then applied, a part at a time: a plan of millions of
    // people is never held whole.
    let store::HeldCheck {
        head: plan,
        trips,
        stale,
        writes,
    } = ctx
        .store
        .check_held(run)?
        .ok_or_else(|| StoreError::Conflict(format!("run {run} has no stored plan")))?;
    let config = ctx.store.load_config()?;
    let source = config
        .source(&plan.source)
        .ok_or_else(|| unknown_source(&config, &plan.source))?
        .clone();
    // A SCIM write cannot be planned again (nothing is read from the connection): it is
    // applied as held, its items whose account changed meanwhile refused one by one.
    if stale.is_empty() || plan.kind == SyncKind::Scim {
        ctx.store.reopen_held(run)?;
        let mut outcome = SyncOutcome {
            run_id: Some(run),
            source: source.name.clone(),
            kind: plan.kind,
            dry_run: false,
            status: RunStatus::Running,
            complete: plan.complete,
            counts: plan.counts,
            error: None,
            warnings: record.warnings.clone(),
            hold: trips,
        };
        apply(
            ctx,
            &config.network,
            &source,
            run,
            &plan,
            Apply::Held { writes },
            &mut outcome,
        );
        let detail = match &outcome.error {
            None => format!("run {run} of source {} approved and applied", source.name),
            Some(e) => format!("run {run} of source {} approved; {e}", source.name),
        };
        ctx.store
            .audit(actor, "run.approve", &detail, ctx.clock.now())?;
        return Ok(Approval {
            held_run: run,
            applied_as_held: true,
            stale,
            outcome,
        });
    }
    let outcome = sync_locked(
        ctx,
        &SyncRequest {
            source: source.name.clone(),
            kind: plan.kind,
            trigger: record.trigger,
            approved: true,
        },
        None,
    )?;
    let note = format!(
        "approved by {actor}, but {} account(s) changed since it was planned: re-planned as run {}",
        stale.len(),
        outcome
            .run_id
            .map_or_else(|| "?".to_owned(), |r| r.to_string())
    );
    ctx.store.set_run_status(
        run,
        RunStatus::Superseded,
        Some(&note),
        actor,
        ctx.clock.now(),
    )?;
    Ok(Approval {
        held_run: run,
        applied_as_held: false,
        stale,
        outcome,
    })
}

/// Discards a held run: nothing of it is applied, ever. `NotFound` for an unknown run,
/// `Conflict` for one that is not held. Holds the source's lock as [`sync`] does.
pub fn discard(
    ctx: &Context<'_>,
    run: RunId,
    actor: &str,
    lock: Option<SourceLock>,
) -> Result<(), EngineError> {
    let _lock = hold(ctx, &find_run(ctx, run)?.source, lock)?;
    let record = find_run(ctx, run)?;
    if record.status != RunStatus::Held {
        return Err(StoreError::Conflict(format!(
            "run {run} is {}, not held: only a held run can be discarded",
            record.status.as_str()
        ))
        .into());
    }
    ctx.store.set_run_status(
        run,
        RunStatus::Discarded,
        Some(&format!("discarded by {actor}")),
        actor,
        ctx.clock.now(),
    )?;
    Ok(())
}

/// Undoes an applied run (`Store::undo_run`): every field, link and account state it
/// changed goes back, or nothing does and each conflict is listed. Holds the source's
/// lock as [`sync`] does; a dry run takes none and writes nothing.
pub fn undo(
    ctx: &Context<'_>,
    run: RunId,
    actor: &str,
    dry_run: bool,
    lock: Option<SourceLock>,
) -> Result<store::UndoSummary, EngineError> {
    let record = find_run(ctx, run)?;
    if record.kind == SyncKind::Push {
        return Err(EngineError::Config(format!(
            "run {run} is a push to target {}: what a target was sent cannot be taken back; change the directory (or the target's settings) and push again",
            record.source
        )));
    }
    let _lock = if dry_run {
        None
    } else {
        Some(hold(ctx, &record.source, lock)?)
    };
    Ok(ctx.store.undo_run(run, actor, ctx.clock.now(), dry_run)?)
}

/// Tells the source's webhook about a held or failed run. Best effort: a webhook that is
/// down is logged, never fails the run.
fn notify(ctx: &Context<'_>, network: &Network, source: &SourceConfig, outcome: &SyncOutcome) {
    let Some(url) = &source.webhook_url else {
        return;
    };
    let event = match outcome.status {
        RunStatus::Held => "run.held",
        RunStatus::Failed => "run.failed",
        _ => return,
    };
    let body = serde_json::json!({
        "event": event,
        "run_id": outcome.run_id,
        "source": outcome.source,
        "kind": outcome.kind,
        "status": outcome.status,
        "complete": outcome.complete,
        "counts": outcome.counts,
        "hold": outcome.hold,
        "error": outcome.error,
        "at": ctx.clock.now(),
    });
    let policy = address_policy(network);
    // The webhook URL is a capability: a refusal says why without it.
    let checked = policy
        .check_url("webhook_url", url)
        .map_err(|e| e.replace(&oneroster::net::redact_url(url), "(address hidden)"));
    let sent = checked.and_then(|url| {
        ctx.runtime
            .block_on(async move {
                policy
                    .client_builder()
                    .timeout(std::time::Duration::from_secs(10))
                    .build()?
                    .post(url)
                    .json(&body)
                    .send()
                    .await?
                    .error_for_status()
            })
            .map(drop)
            .map_err(|e| e.without_url().to_string())
    });
    if let Err(error) = sent {
        // The webhook URL is a capability: never logged.
        tracing::warn!(source = %source.name, %error, "the webhook could not be told about the run");
    }
}

fn fail_run(ctx: &Context<'_>, run: RunId, plan: &Plan, warnings: &[String], message: &str) {
    fail_run_with(ctx, run, &plan.counts, plan.complete, warnings, message);
}

fn fail_run_with(
    ctx: &Context<'_>,
    run: RunId,
    counts: &Counts,
    complete: bool,
    warnings: &[String],
    message: &str,
) {
    let finish = RunFinish {
        status: RunStatus::Failed,
        complete,
        counts: *counts,
        error: Some(message.to_owned()),
        finished_at: ctx.clock.now(),
        warnings: warnings.to_vec(),
    };
    if let Err(e) = ctx.store.finish_run(run, &finish) {
        tracing::error!(run = run.0, error = %e, "could not record the run as failed");
    }
}

fn unknown_source(config: &Config, name: &str) -> EngineError {
    let no = rostersync_core::settings::NoSource::Unknown {
        name: name.to_owned(),
        configured: config.sources.iter().map(|s| s.name.clone()).collect(),
    };
    EngineError::Config(no.describe(""))
}

// ----- links made by hand: does the SIS have the person?

/// How long a link check waits for the SIS before it falls back to the last pull.
pub const PERSON_LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// A SIS person as a link check saw them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FoundPerson {
    pub name: String,
    pub email: Option<String>,
    pub role: Option<String>,
    /// `active` or `tobedeleted`.
    pub status: String,
    pub enabled: bool,
    pub identifier: Option<String>,
}

/// Who answered a link check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FoundBy {
    /// The SIS itself, just now: `GET /users/{sourcedId}`, or a scan of the CSV package.
    Sis,
    /// The SIS could not answer (`reason`), so the records of the source's last complete
    /// full pull (`run`, finished `at`) did; `run` is `None` when no complete full pull
    /// was applied yet (nothing can be confirmed then).
    LastPull {
        run: Option<RunId>,
        at: Option<Timestamp>,
        reason: String,
    },
}

/// What [`find_sis_person`] learnt of a sourcedId.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Found {
    pub source: String,
    pub sourced_id: String,
    /// The person; `None` when whoever answered does not have them.
    pub person: Option<FoundPerson>,
    pub confirmed_by: FoundBy,
}

impl Found {
    /// Why an account may not be linked to the person (nobody has them, or the SIS is
    /// removing them), as a sentence that says what to do; `None` when it may.
    pub fn refusal(&self) -> Option<String> {
        let (source, id) = (&self.source, &self.sourced_id);
        match (&self.person, &self.confirmed_by) {
            (Some(p), _) if p.status == oneroster::Status::ToBeDeleted.as_str() => Some(format!(
                "SIS person {id} ({}) is marked tobedeleted in source {source} ({}): the SIS is removing them and the next sync would deactivate the account; nothing was changed — link the person's current record instead",
                p.name,
                self.confirmation()
            )),
            (Some(_), _) => None,
            (None, FoundBy::Sis) => Some(format!(
                "the SIS has no person {id} in source {source} (asked just now): nothing was changed; check the sourcedId (the console's user page searches the SIS people by name, email or school id)"
            )),
            (
                None,
                FoundBy::LastPull {
                    run: Some(run),
                    at,
                    reason,
                },
            ) => Some(format!(
                "SIS person {id} could not be confirmed: the SIS could not be asked ({reason}) and the last complete pull of source {source} (run {run}{}) did not have them; nothing was changed — check the sourcedId, or try again when the SIS answers",
                at.map(|t| format!(", {}", utc_minutes(t)))
                    .unwrap_or_default()
            )),
            (
                None,
                FoundBy::LastPull {
                    run: None, reason, ..
                },
            ) => Some(format!(
                "SIS person {id} could not be confirmed: the SIS could not be asked ({reason}) and no complete full pull of source {source} was applied yet to check against; nothing was changed — try again when the SIS answers"
            )),
        }
    }

    /// Who vouched for the person, for the success message: `confirmed by the SIS`, or
    /// `confirmed by the last pull (run 12, …), not by the SIS: …`.
    pub fn confirmation(&self) -> String {
        match &self.confirmed_by {
            FoundBy::Sis => "confirmed by the SIS".to_owned(),
            FoundBy::LastPull { run, at, reason } => format!(
                "confirmed by the last pull (run {}{}), not by the SIS, which could not be asked: {reason}",
                run.map_or_else(|| "?".to_owned(), |r| r.to_string()),
                at.map(|t| format!(", {}", utc_minutes(t)))
                    .unwrap_or_default()
            ),
        }
    }
}

fn utc_minutes(t: Timestamp) -> String {
    jiff::fmt::strtime::format("%Y-%m-%d %H:%M UTC", t).unwrap_or_else(|_| t.to_string())
}

/// What asking the source came to.
enum Asked {
    Has(FoundPerson),
    HasNot,
    /// The source could not say (down, refused, timed out, a delta package): why.
    CannotSay(String),
}

/// Whether `source` has the SIS person `sourced_id`, for a link made by hand: a
/// single-record read of the SIS (REST `GET /users/{sourcedId}`, at most
/// [`PERSON_LOOKUP_TIMEOUT`]; a scan of a CSV package's users), opened the way a sync
/// opens it. When the SIS cannot answer, the records of the source's last complete full
/// pull do ([`Store::sis_person`]), and [`Found::confirmed_by`] says so. Refuse the link
/// when [`Found::refusal`] says why. Errors: an unknown source, an empty sourcedId, the
/// database.
pub fn find_sis_person(
    ctx: &Context<'_>,
    source: &str,
    sourced_id: &str,
) -> Result<Found, EngineError> {
    let config = ctx.store.load_config()?;
    let settings = config
        .source(source)
        .ok_or_else(|| unknown_source(&config, source))?;
    let sourced_id = sourced_id.trim();
    if sourced_id.is_empty() {
        return Err(EngineError::Config(
            "give the SIS person's sourcedId".to_owned(),
        ));
    }
    let asked = match open_for(ctx, &config, settings) {
        Ok(mut handle) => ask_source(ctx, &mut handle, sourced_id),
        Err(EngineError::Store(e)) => return Err(e.into()),
        Err(e) => Asked::CannotSay(e.to_string()),
    };
    let (person, confirmed_by) = match asked {
        Asked::Has(p) => (Some(p), FoundBy::Sis),
        Asked::HasNot => (None, FoundBy::Sis),
        Asked::CannotSay(reason) => {
            tracing::warn!(source, sourced_id, %reason, "the SIS could not confirm a person: using the last pull");
            let last = ctx.store.last_complete_pull(source)?;
            let kept = match last {
                Some(_) => ctx
                    .store
                    .sis_person(source, sourced_id)?
                    .filter(|k| k.in_last_pull),
                None => None,
            };
            let person = kept.map(|k| FoundPerson {
                name: format!("{} {}", k.given_name.trim(), k.family_name.trim())
                    .trim()
                    .to_owned(),
                email: k.email,
                role: k.role,
                status: k.status,
                enabled: k.enabled,
                identifier: k.identifier,
            });
            (
                person,
                FoundBy::LastPull {
                    run: last.map(|l| l.run),
                    at: last.map(|l| l.finished_at.unwrap_or(l.started_at)),
                    reason,
                },
            )
        }
    };
    Ok(Found {
        source: source.to_owned(),
        sourced_id: sourced_id.to_owned(),
        person,
        confirmed_by,
    })
}

fn ask_source(ctx: &Context<'_>, handle: &mut Source, sourced_id: &str) -> Asked {
    let found = |u: &oneroster::User| FoundPerson {
        name: format!("{} {}", u.given_name.trim(), u.family_name.trim())
            .trim()
            .to_owned(),
        email: u.email.clone().filter(|e| !e.trim().is_empty()),
        role: u.primary_role().map(|r| r.as_str().to_owned()),
        status: u.base.status.as_str().to_owned(),
        enabled: u.enabled_user,
        identifier: u.identifier.clone().filter(|i| !i.trim().is_empty()),
    };
    match handle {
        Source::Rest(client) => {
            let read = ctx.runtime.block_on(async {
                tokio::time::timeout(
                    PERSON_LOOKUP_TIMEOUT,
                    client.get::<oneroster::User>(sourced_id),
                )
                .await
            });
            match read {
                Ok(Ok(Some(u))) => Asked::Has(found(&u)),
                Ok(Ok(None)) => Asked::HasNot,
                Ok(Err(e)) => Asked::CannotSay(e.to_string()),
                Err(_) => Asked::CannotSay(format!(
                    "it did not answer within {} s",
                    PERSON_LOOKUP_TIMEOUT.as_secs()
                )),
            }
        }
        Source::Csv(package) => {
            let delta = package.coverage(oneroster::Collection::Users) == Some(Coverage::Delta);
            let mut hit = None;
            let read = package.read_each::<oneroster::User>(|u| {
                if hit.is_none() && u.base.sourced_id == sourced_id {
                    hit = Some(found(u));
                }
            });
            match (read, hit) {
                (Err(e), _) => Asked::CannotSay(e.to_string()),
                (Ok(_), Some(p)) => Asked::Has(p),
                (Ok(_), None) if delta => Asked::CannotSay(
                    "the CSV package's users.csv holds changes only (a delta), so it cannot say who is missing"
                        .to_owned(),
                ),
                (Ok(_), None) => Asked::HasNot,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rostersync_core::directory::Field;
    use rostersync_core::plan::{FieldChange, LinkWrite, Reason, RecordFields};

    use super::*;

    fn item(id: &str, outcome: Outcome, user: Option<i64>) -> PlanItem {
        PlanItem::new(id, user.map(AccountId), outcome, Reason::NoChange)
    }

    fn record(id: &str) -> SisRecord {
        SisRecord::new(RecordFields {
            sourced_id: id.into(),
            ..Default::default()
        })
    }

    /// Up to its limit a first pass keeps every item and record; past it, the
    /// deactivations only, but it counts every item that writes and every update, as the
    /// guard and the apply read them.
    #[test]
    fn a_first_pass_past_its_limit_keeps_the_deactivations_and_counts_the_rest() {
        let mut renamed = item("b", Outcome::Updated, Some(2));
        renamed.changes.push(FieldChange {
            field: Field::FirstName,
            old: Some("Al".into()),
            new: Some("Alan".into()),
        });
        let mut created = item("a", Outcome::Created, None);
        created.link = Some(LinkWrite::created(7));

        let mut at_limit = FirstPass::new(2, 0);
        at_limit.take(created.clone(), Some(record("a")));
        at_limit.take(renamed.clone(), None);
        let (items, records, over) = at_limit.into_parts();
        assert!(!over, "two items fit a limit of two");
        assert_eq!((items.len(), records.len()), (2, 1));

        let mut past = FirstPass::new(2, 2);
        past.take(created.clone(), Some(record("a")));
        past.take(renamed.clone(), None);
        past.take(item("c", Outcome::Deactivated, Some(3)), None);
        past.take(renamed, None);
        past.take(created, Some(record("a")));
        let (writes, updates) = (past.writes, past.updates);
        let (items, records, over) = past.into_parts();
        assert!(over, "five items outgrow a limit of two");
        let kept: Vec<&str> = items.iter().map(|i| i.sourced_id.as_str()).collect();
        assert_eq!(kept, ["c"], "only the deactivation is kept");
        assert!(records.is_empty());
        assert_eq!((writes, updates), (5, 2));
    }
}
