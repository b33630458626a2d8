//! One sync run, end to end: pull a source into a snapshot, plan (pure, in the core
//! crate), apply in one transaction, record. The CLI and the server both call [`sync`];
//! neither knows how a run is put together.
//!
//! Synchronous on purpose: the store is blocking, so a run owns a plain thread and uses
//! the given tokio handle only for the network pull.

mod pull;

pub use pull::{Snapshot, open_source, pull};

use jiff::Timestamp;
use oneroster::source::SourceError;
use rostersync_core::plan::{self, Counts, Plan, PlanInput, SyncKind};
use rostersync_core::settings::{Config, Secret, SourceConfig, SourceKind};
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
}

/// Where a long run is, for a progress bar.
#[derive(Debug, Clone)]
pub enum Progress {
    Pulling {
        collection: &'static str,
        records: u64,
    },
    Pulled {
        collection: &'static str,
        records: u64,
        complete: bool,
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
}

impl SyncOutcome {
    /// 0 succeeded cleanly; 1 held or finished with record errors; 2 failed.
    pub fn exit_code(&self) -> u8 {
        match self.status {
            RunStatus::Succeeded if self.counts.errors == 0 => 0,
            RunStatus::Succeeded | RunStatus::Held => 1,
            RunStatus::Failed | RunStatus::Running => 2,
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
    if req.kind != SyncKind::Full {
        return Err(EngineError::Config(format!(
            "{} syncs are not available yet: run a full sync",
            req.kind.as_str()
        )));
    }

    let run_id = if req.dry_run {
        None
    } else {
        Some(ctx.store.start_run(&NewRun {
            source: source.name.clone(),
            kind: req.kind,
            trigger: req.trigger,
            started_at: Timestamp::now(),
        })?)
    };

    match pull_and_plan(ctx, &config, &source, req) {
        Ok((plan, warnings)) => {
            let mut outcome = SyncOutcome {
                run_id,
                source: source.name.clone(),
                kind: req.kind,
                dry_run: req.dry_run,
                status: RunStatus::Succeeded,
                complete: plan.complete,
                counts: plan.counts,
                error: None,
                plan: None,
                warnings,
            };
            match run_id {
                None => outcome.plan = Some(plan),
                Some(run) => {
                    (ctx.progress)(Progress::Applying {
                        writes: plan.writes().count() as u64,
                    });
                    match ctx.store.apply_plan(run, &plan, Timestamp::now()) {
                        Ok(summary) => outcome.counts = summary.counts,
                        Err(e) => {
                            let message =
                                format!("applying the plan failed, nothing was changed: {e}");
                            fail_run(ctx, run, &plan.counts, plan.complete, &message);
                            outcome.status = RunStatus::Failed;
                            outcome.error = Some(message);
                        }
                    }
                }
            }
            Ok(outcome)
        }
        Err(e) => {
            let message = e.to_string();
            if let Some(run) = run_id {
                fail_run(ctx, run, &Counts::default(), false, &message);
            }
            if req.dry_run {
                return Err(e);
            }
            Ok(SyncOutcome {
                run_id,
                source: source.name.clone(),
                kind: req.kind,
                dry_run: req.dry_run,
                status: RunStatus::Failed,
                complete: false,
                counts: Counts::default(),
                error: Some(message),
                plan: None,
                warnings: Vec::new(),
            })
        }
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

fn pull_and_plan(
    ctx: &Context<'_>,
    config: &Config,
    source: &SourceConfig,
    req: &SyncRequest,
) -> Result<(Plan, Vec<String>), EngineError> {
    let secret = match source.kind {
        SourceKind::OneRosterApi => client_secret(ctx, source)?,
        SourceKind::OneRosterCsv => None,
    };
    let mut handle = open_source(source, secret.as_ref())?;
    let snapshot = ctx
        .runtime
        .block_on(pull(&mut handle, None, ctx.progress))?;
    let view = ctx.store.load_view(&source.name)?;
    (ctx.progress)(Progress::Planning {
        people: snapshot.people.len() as u64,
    });
    let plan = plan::plan(
        &PlanInput {
            config,
            source,
            kind: req.kind,
            complete: snapshot.complete,
            people: &snapshot.people,
        },
        &view,
    );
    Ok((plan, snapshot.warnings))
}
