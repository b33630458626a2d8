//! One sync run, end to end: pull a source into a snapshot, plan (pure, in the core
//! crate), apply in one transaction, record. The CLI and the server both call [`sync`];
//! neither knows how a run is put together.
//!
//! Synchronous on purpose: the store is blocking, so a run owns a plain thread and uses
//! the given tokio handle only for the network pull.

mod pull;

pub use pull::{Snapshot, open_source, pull_delta, pull_full};

use jiff::Timestamp;
use oneroster::report::Coverage;
use oneroster::source::{Source, SourceError};
use rostersync_core::directory::UserId;
use rostersync_core::guard::{Trip, guard};
use rostersync_core::plan::{self, Counts, Plan, PlanInput, SyncKind};
use rostersync_core::roster::{ClassInfo, ClassKind, Enroll, EnrollRole, Roster};
use rostersync_core::settings::{Config, Secret, SourceConfig, SourceKind};
use rostersync_core::sis::SisPerson;
use serde::Serialize;
use store::keyring::Keyring;
use store::{NewRun, RunFinish, RunId, RunStatus, Store, StoreError, Trigger};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Something an admin fixes in the settings.
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl EngineError {
    /// Whether the failure is the settings' or the source's (exit 2), as opposed to ours.
    pub fn is_configuration(&self) -> bool {
        match self {
            EngineError::Config(_) => true,
            EngineError::Source(_) => true,
            EngineError::Store(_) => false,
        }
    }
}

/// What the caller asks for.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    pub source: String,
    pub kind: SyncKind,
    pub dry_run: bool,
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
    Planning {
        people: u64,
    },
    Applying {
        writes: u64,
    },
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
    /// The plan, kept for a dry run's report.
    #[serde(skip)]
    pub plan: Option<Plan>,
    /// Why the pull is not complete, and other notes worth showing.
    pub warnings: Vec<String>,
    /// The safeguards the plan tripped: the run is held (a dry run says it would be).
    pub hold: Vec<Trip>,
}

impl SyncOutcome {
    /// 0 succeeded cleanly; 1 held or finished with record errors; 2 failed.
    pub fn exit_code(&self) -> u8 {
        match self.status {
            RunStatus::Succeeded if self.counts.errors == 0 => 0,
            RunStatus::Succeeded | RunStatus::Held => 1,
            _ => 2,
        }
    }
}

/// Everything a run needs from around it.
pub struct Context<'a> {
    pub store: &'a dyn Store,
    pub keyring: Option<&'a Keyring>,
    pub runtime: &'a tokio::runtime::Handle,
    pub progress: &'a (dyn Fn(Progress) + Sync),
}

/// The client secret of a source: from the environment variable it names, else the
/// encrypted copy in the store.
pub fn client_secret(
    ctx: &Context<'_>,
    source: &SourceConfig,
) -> Result<Option<Secret>, EngineError> {
    if let Some(var) = &source.client_secret_env {
        return match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(Some(Secret::new(v))),
            _ => Err(EngineError::Config(format!(
                "source {}: the environment variable {var} (client_secret_env) is not set",
                source.name
            ))),
        };
    }
    let Some(blob) = ctx.store.source_secret(&source.name)? else {
        return Ok(None);
    };
    let Some(keyring) = ctx.keyring else {
        return Err(EngineError::Config(
            "the client secret is stored encrypted but no master key was loaded".into(),
        ));
    };
    let plain = keyring.decrypt(&blob).map_err(|e| {
        EngineError::Config(format!(
            "source {}: cannot decrypt the client secret: {e}",
            source.name
        ))
    })?;
    let text = String::from_utf8(plain).map_err(|_| {
        EngineError::Config(format!(
            "source {}: the stored client secret is not text",
            source.name
        ))
    })?;
    Ok(Some(Secret::new(text)))
}

/// How far before the watermark a delta starts: records written while the last pull ran
/// can carry a slightly older `dateLastModified` than the newest one it saw.
pub const DELTA_OVERLAP_SECONDS: i64 = 300;

/// Runs one sync: pull, plan, apply (unless a dry run), record.
///
/// A failed pull or apply leaves the directory exactly as it was and records the run as
/// failed with the error (a dry run records nothing at all).
pub fn sync(ctx: &Context<'_>, req: &SyncRequest) -> Result<SyncOutcome, EngineError> {
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
    // A CSV package says itself whether it is complete or changes only.
    let opened = open_for(ctx, &source).and_then(|handle| {
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
    let started = match (&opened, req.dry_run) {
        (Ok(_), false) => {
            let run = ctx.store.start_run(&NewRun {
                source: source.name.clone(),
                kind,
                trigger: req.trigger,
                started_at: Timestamp::now(),
            })?;
            (ctx.progress)(Progress::Started { run });
            Some(run)
        }
        _ => None,
    };
    let pulled = opened.and_then(|mut handle| {
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
            _ => ctx.runtime.block_on(pull::pull_full(&mut handle, ctx.progress)),
        };
        // What the SIS's requests cost, whether or not the pull succeeded.
        if let Some(stats) = handle.request_stats() {
            (ctx.progress)(Progress::SourceRequests { stats });
        }
        Ok(snapshot?)
    });
    run_and_record(
        ctx,
        &config,
        &source,
        kind,
        req.dry_run,
        req.trigger,
        req.approved,
        started,
        pulled,
    )
}

/// Syncs one account from its SIS person: fetches that person and their classes, plans
/// and applies for that account only (a run of kind `user`). No one is deactivated for
/// being absent: a single person missing is not proof.
pub fn sync_user(
    ctx: &Context<'_>,
    user: UserId,
    trigger: Trigger,
) -> Result<SyncOutcome, EngineError> {
    let config = ctx.store.load_config()?;
    let record = ctx
        .store
        .find_user(&user.to_string())?
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
    let sourced_id = sis.sourced_id.clone();
    let fetched = open_for(ctx, &source).and_then(|mut handle| {
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
        })
    });
    run_and_record(
        ctx,
        &config,
        &source,
        SyncKind::User,
        false,
        trigger,
        false,
        None,
        fetched,
    )
}

fn open_for(ctx: &Context<'_>, source: &SourceConfig) -> Result<Source, EngineError> {
    let secret = match source.kind {
        SourceKind::OneRosterApi => client_secret(ctx, source)?,
        SourceKind::OneRosterCsv => None,
    };
    open_source(source, secret.as_ref())
}

/// Records the run, plans from the snapshot (or records the failure), applies.
#[allow(clippy::too_many_arguments)]
fn run_and_record(
    ctx: &Context<'_>,
    config: &Config,
    source: &SourceConfig,
    kind: SyncKind,
    dry_run: bool,
    trigger: Trigger,
    approved: bool,
    started: Option<RunId>,
    snapshot: Result<Snapshot, EngineError>,
) -> Result<SyncOutcome, EngineError> {
    let run_id = if dry_run {
        None
    } else if let Some(run) = started {
        Some(run)
    } else {
        Some(ctx.store.start_run(&NewRun {
            source: source.name.clone(),
            kind,
            trigger,
            started_at: Timestamp::now(),
        })?)
    };
    let mut outcome = SyncOutcome {
        run_id,
        source: source.name.clone(),
        kind,
        dry_run,
        status: RunStatus::Succeeded,
        complete: false,
        counts: Counts::default(),
        error: None,
        plan: None,
        warnings: Vec::new(),
        hold: Vec::new(),
    };
    let planned = snapshot.and_then(|snap| {
        let input = PlanInput {
            config,
            source,
            kind,
            complete: snap.complete,
            people: &snap.people,
            roster: snap.roster.as_ref(),
            now: Timestamp::now(),
        };
        // A full pull reads every link, then only the accounts of people who changed, are
        // new or went missing; a delta or a single-user sync reads what its people reach.
        let (prepared, view) = match kind {
            SyncKind::Full => {
                let mut view = ctx.store.load_links_view(&source.name)?;
                let prepared = plan::prepare(&input);
                let (users, aliases) = ctx
                    .store
                    .load_accounts(&source.name, &prepared.accounts_needed(&view))?;
                view.add_accounts(users, aliases);
                (prepared, view)
            }
            SyncKind::Delta | SyncKind::User => {
                let view = ctx
                    .store
                    .load_scoped_view(&source.name, &plan::view_keys(source, &snap.people))?;
                (plan::prepare(&input), view)
            }
        };
        (ctx.progress)(Progress::Planning {
            people: snap.people.len() as u64,
        });
        let mut plan = prepared.plan(&view);
        plan.watermark = snap.newest_modified.filter(|_| kind != SyncKind::User);
        let trips = if approved || kind == SyncKind::User {
            Vec::new()
        } else {
            guard(&plan, &view, source, &snap.people)
        };
        Ok((plan, trips, snap.warnings))
    });
    match planned {
        Ok((plan, trips, warnings)) => {
            outcome.complete = plan.complete;
            outcome.counts = plan.counts;
            outcome.warnings = warnings;
            outcome.hold = trips;
            match run_id {
                None => outcome.plan = Some(plan),
                Some(run) if !outcome.hold.is_empty() => {
                    // Too much at once: keep the plan for a person to approve, apply nothing.
                    match ctx
                        .store
                        .hold_run(run, &plan, &outcome.hold, Timestamp::now())
                    {
                        Ok(()) => {
                            outcome.status = RunStatus::Held;
                            notify(ctx, source, &outcome);
                        }
                        Err(e) => {
                            let message =
                                format!("holding the run failed, nothing was changed: {e}");
                            fail_run(ctx, run, &plan.counts, plan.complete, &message);
                            outcome.status = RunStatus::Failed;
                            outcome.error = Some(message);
                            notify(ctx, source, &outcome);
                        }
                    }
                }
                Some(run) => apply(ctx, source, run, &plan, &mut outcome),
            }
            Ok(outcome)
        }
        Err(e) => {
            let message = e.to_string();
            match run_id {
                Some(run) => fail_run(ctx, run, &Counts::default(), false, &message),
                None => return Err(e),
            }
            outcome.status = RunStatus::Failed;
            outcome.error = Some(message);
            notify(ctx, source, &outcome);
            Ok(outcome)
        }
    }
}

/// Applies a plan under a run, filling the outcome (failure included).
fn apply(
    ctx: &Context<'_>,
    source: &SourceConfig,
    run: RunId,
    plan: &Plan,
    outcome: &mut SyncOutcome,
) {
    (ctx.progress)(Progress::Applying {
        writes: plan.writes().count() as u64,
    });
    match ctx.store.apply_plan(run, plan, Timestamp::now()) {
        Ok(summary) => {
            outcome.counts = summary.counts;
            outcome.status = RunStatus::Succeeded;
        }
        Err(e) => {
            let message = format!("applying the plan failed, nothing was changed: {e}");
            fail_run(ctx, run, &plan.counts, plan.complete, &message);
            outcome.status = RunStatus::Failed;
            outcome.error = Some(message);
            notify(ctx, source, outcome);
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
/// and undos of one source take turns, whichever process starts them. Callers take it
/// ([`Store::try_lock`]) around [`sync`], [`approve`], [`discard`] and `Store::undo_run`.
pub fn source_lock_name(source: &str) -> String {
    format!("source:{source}")
}

/// Approves a held run: applies its stored plan when the directory has not changed since,
/// else supersedes it and runs the sync again with the safeguards waived (the admin
/// approved the change), and says so. `NotFound` for an unknown run, `Conflict` for one
/// that is not held. The caller holds the source's lock ([`source_lock_name`]).
pub fn approve(ctx: &Context<'_>, run: RunId, actor: &str) -> Result<Approval, EngineError> {
    let record = ctx
        .store
        .get_run(run)?
        .ok_or_else(|| StoreError::NotFound(format!("no run {run}")))?;
    if record.status != RunStatus::Held {
        return Err(StoreError::Conflict(format!(
            "run {run} is {}, not held: only a held run can be approved",
            record.status.as_str()
        ))
        .into());
    }
    let (plan, trips) = ctx
        .store
        .held_plan(run)?
        .ok_or_else(|| StoreError::Conflict(format!("run {run} has no stored plan")))?;
    let config = ctx.store.load_config()?;
    let source = config
        .source(&plan.source)
        .ok_or_else(|| unknown_source(&config, &plan.source))?
        .clone();
    let stale = ctx.store.stale_items(&plan)?;
    if stale.is_empty() {
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
            plan: None,
            warnings: Vec::new(),
            hold: trips,
        };
        apply(ctx, &source, run, &plan, &mut outcome);
        let detail = match &outcome.error {
            None => format!("run {run} of source {} approved and applied", source.name),
            Some(e) => format!("run {run} of source {} approved; {e}", source.name),
        };
        ctx.store
            .audit(actor, "run.approve", &detail, Timestamp::now())?;
        return Ok(Approval {
            held_run: run,
            applied_as_held: true,
            stale,
            outcome,
        });
    }
    let outcome = sync(
        ctx,
        &SyncRequest {
            source: source.name.clone(),
            kind: plan.kind,
            dry_run: false,
            trigger: record.trigger,
            approved: true,
        },
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
        Timestamp::now(),
    )?;
    Ok(Approval {
        held_run: run,
        applied_as_held: false,
        stale,
        outcome,
    })
}

/// Discards a held run: nothing of it is applied, ever. `NotFound` for an unknown run,
/// `Conflict` for one that is not held. The caller holds the source's lock.
pub fn discard(ctx: &Context<'_>, run: RunId, actor: &str) -> Result<(), EngineError> {
    let record = ctx
        .store
        .get_run(run)?
        .ok_or_else(|| StoreError::NotFound(format!("no run {run}")))?;
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
        Timestamp::now(),
    )?;
    Ok(())
}

/// Tells the source's webhook about a held or failed run. Best effort: a webhook that is
/// down is logged, never fails the run.
fn notify(ctx: &Context<'_>, source: &SourceConfig, outcome: &SyncOutcome) {
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
        "at": Timestamp::now(),
    });
    let url = url.clone();
    let sent = ctx.runtime.block_on(async move {
        reqwest::Client::new()
            .post(&url)
            .timeout(std::time::Duration::from_secs(10))
            .json(&body)
            .send()
            .await
            .and_then(|r| r.error_for_status())
    });
    if let Err(e) = sent {
        tracing::warn!(source = %source.name, error = %e, "the webhook could not be told about the run");
    }
}

fn fail_run(ctx: &Context<'_>, run: RunId, counts: &Counts, complete: bool, message: &str) {
    let finish = RunFinish {
        status: RunStatus::Failed,
        complete,
        counts: *counts,
        error: Some(message.to_owned()),
        finished_at: Timestamp::now(),
    };
    if let Err(e) = ctx.store.finish_run(run, &finish) {
        tracing::error!(run, error = %e, "could not record the run as failed");
    }
}

fn unknown_source(config: &Config, name: &str) -> EngineError {
    let names: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
    EngineError::Config(if names.is_empty() {
        format!(
            "no source named '{name}': no sources are configured (rostersync config import FILE.toml)"
        )
    } else {
        format!("no source named '{name}'; configured: {}", names.join(", "))
    })
}
