//! Runs the server starts (console, API, scheduler): syncs of sources and pushes to SCIM
//! targets, one at a time per source or target, each on a plain thread of its own (the
//! engine and the store are blocking), with its progress kept in memory for the
//! console's live view and its end counted in the metrics. A sync that succeeds is
//! followed, on its thread, by the pushes to the targets that follow its source.
//!
//! "One at a time" is the store's named lock `source:NAME`, not this process's memory:
//! a second `serve` node or a CLI `sync` or `push` on the same database is kept out the
//! same way (targets and sources are named apart: one namespace). Approving, discarding
//! and undoing a run take the same lock: they change what a run of the source or target
//! reads and writes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};

use engine::{Approval, Context, Progress, SyncRequest};
use jiff::Timestamp;
use rostersync_core::directory::AccountId;
use rostersync_core::plan::{Counts, SyncKind};
use serde::Serialize;
use store::{RunId, RunRecord, RunStatus, Trigger, UndoSummary};

use crate::{ApiError, Shared};

/// A run's state as the console shows it.
#[derive(Debug, Clone, Serialize)]
pub struct LiveRun {
    pub source: String,
    pub kind: SyncKind,
    pub trigger: Trigger,
    pub actor: String,
    pub started_at: Timestamp,
    /// Known once the run is recorded (right after the source is opened).
    pub run_id: Option<RunId>,
    /// What it is doing now, in words.
    pub phase: String,
    pub finished: bool,
    pub status: Option<RunStatus>,
    pub counts: Option<Counts>,
    pub error: Option<String>,
    /// The held run this is the approval of (its plan applied, or re-planned as `run_id`).
    pub approval_of: Option<RunId>,
}

impl LiveRun {
    /// The run has finished as the engine recorded it.
    fn finish(
        &mut self,
        run_id: Option<RunId>,
        status: RunStatus,
        counts: Counts,
        error: Option<String>,
    ) {
        self.finished = true;
        self.run_id = run_id;
        self.status = Some(status);
        self.counts = Some(counts);
        self.error = error;
        self.phase = "finished".to_owned();
    }

    /// A run of `source` (or target) that has only just been started.
    fn starting(
        source: &str,
        kind: SyncKind,
        trigger: Trigger,
        actor: &str,
        started_at: Timestamp,
    ) -> LiveRun {
        LiveRun {
            source: source.to_owned(),
            kind,
            trigger,
            actor: actor.to_owned(),
            started_at,
            run_id: None,
            phase: "starting".to_owned(),
            finished: false,
            status: None,
            counts: None,
            error: None,
            approval_of: None,
        }
    }
}

/// The last run the server started, per source.
#[derive(Debug)]
pub struct Live {
    runs: Mutex<HashMap<String, LiveRun>>,
    /// Bumped whenever a run's state changes, so a request waiting for a run to reach a
    /// point (recorded, finished) wakes when it does instead of checking on a timer.
    changes: watch::Sender<u64>,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            runs: Mutex::default(),
            changes: watch::Sender::new(0),
        }
    }
}

impl Live {
    pub fn get(&self, source: &str) -> Option<LiveRun> {
        self.lock().get(source).cloned()
    }

    /// The runs this process started that have not finished.
    pub fn unfinished(&self) -> Vec<LiveRun> {
        self.lock()
            .values()
            .filter(|r| !r.finished)
            .cloned()
            .collect()
    }

    pub fn all(&self) -> Vec<LiveRun> {
        let mut v: Vec<LiveRun> = self.lock().values().cloned().collect();
        v.sort_by(|a, b| a.source.cmp(&b.source));
        v
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, LiveRun>> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update(&self, source: &str, f: impl FnOnce(&mut LiveRun)) {
        if let Some(r) = self.lock().get_mut(source) {
            f(r);
        }
        self.changed();
    }

    fn insert(&self, run: LiveRun) {
        self.lock().insert(run.source.clone(), run);
        self.changed();
    }

    /// Marks `source`'s run failed with `error` (the engine gave no outcome).
    fn failed(&self, source: &str, error: String) {
        self.update(source, |r| {
            r.finished = true;
            r.status = Some(RunStatus::Failed);
            r.error = Some(error);
            r.phase = "failed".to_owned();
        });
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Waits until every run this process started has finished, or `deadline` passes;
    /// returns the ones still unfinished then.
    pub async fn settle(&self, deadline: tokio::time::Instant) -> Vec<LiveRun> {
        let mut changes = self.changes.subscribe();
        loop {
            let unfinished = self.unfinished();
            if unfinished.is_empty() {
                return unfinished;
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return self.unfinished(),
            }
        }
    }

    /// Waits until `source`'s run satisfies `done` or `deadline` passes, and returns its
    /// state then (`fallback` when the server holds none for the source).
    async fn wait_for(
        &self,
        source: &str,
        fallback: &LiveRun,
        deadline: tokio::time::Instant,
        done: impl Fn(&LiveRun) -> bool,
    ) -> LiveRun {
        // Subscribed before the first look, so a change between the look and the wait
        // still wakes it.
        let mut changes = self.changes.subscribe();
        loop {
            let now = self.get(source).unwrap_or_else(|| fallback.clone());
            if done(&now) {
                return now;
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                // The deadline passed (or, never while `self` lives, the sender went).
                Ok(Err(_)) | Err(_) => {
                    return self.get(source).unwrap_or_else(|| fallback.clone());
                }
            }
        }
    }
}

/// What a lock is taken for: a source's sync, a target's push, or a run of either (an
/// approval, a discard, an undo: the run names its source or target). Sources and
/// targets are named apart, so one name is never both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lockable {
    Source,
    Target,
    Either,
}

/// The message when a source or target is busy.
fn already_running(state: &Shared, name: &str, target: bool) -> ApiError {
    let detail = state
        .live
        .get(name)
        .filter(|r| !r.finished)
        .map(|r| {
            let what = if r.kind == SyncKind::Push {
                "push".to_owned()
            } else {
                format!("{} sync", r.kind.as_str())
            };
            format!(" (a {what} started by {} at {})", r.actor, r.started_at)
        })
        .unwrap_or_default();
    let message = if target {
        format!(
            "target {name} is already being pushed to{detail}: wait for it to finish (Sync History shows it)"
        )
    } else {
        format!(
            "source {name} is already running a sync{detail}: wait for it to finish (Sync History shows it)"
        )
    };
    ApiError::new(axum::http::StatusCode::CONFLICT, "already_running", message)
}

/// Takes the run lock of `name` (`404` when the settings name no such `of`, `409
/// already_running` when it is held, here or in another process).
async fn take_lock(
    state: &Shared,
    name: &str,
    of: Lockable,
) -> Result<engine::SourceLock, ApiError> {
    let holder = state.holder.clone();
    let clock = Arc::clone(&state.options.clock);
    let exists = name.to_owned();
    let (lock, target) = crate::blocking(state, move |store| {
        let config = store.load_config()?;
        let target = config.target(&exists).is_some();
        let known = match of {
            Lockable::Source => config.source(&exists).is_some(),
            Lockable::Target => target,
            Lockable::Either => target || config.source(&exists).is_some(),
        };
        if !known {
            return Err(ApiError::not_found(match of {
                Lockable::Source => {
                    format!("no source named '{exists}' (Settings lists the sources)")
                }
                Lockable::Target => format!(
                    "no target named '{exists}' (the Overview and GET /api/v1/targets list the targets)"
                ),
                Lockable::Either => format!(
                    "no source or target named '{exists}' any more (the settings name the run's own)"
                ),
            }));
        }
        match engine::lock_source(store, &exists, &holder, clock.as_ref()) {
            Ok(lock) => Ok((Some(lock), target)),
            Err(engine::EngineError::Busy(_)) => Ok((None, target)),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    lock.ok_or_else(|| already_running(state, name, target))
}

/// Takes the run lock of `name` and shows its run as starting in the live view: the lock
/// and the entry shown (what a wait for the run falls back on).
async fn begin(
    state: &Shared,
    name: &str,
    of: Lockable,
    kind: SyncKind,
    trigger: Trigger,
    actor: &str,
) -> Result<(engine::SourceLock, LiveRun), ApiError> {
    let lock = take_lock(state, name, of).await?;
    let entry = LiveRun::starting(name, kind, trigger, actor, state.now());
    state.live.insert(entry.clone());
    Ok((lock, entry))
}

/// The answer when the thread of `name`'s `what` (run, push, approval) could not be
/// started; its live state says so.
fn not_started(state: &Shared, name: &str, what: &str, e: &std::io::Error) -> ApiError {
    state.live.update(name, |r| {
        r.finished = true;
        r.status = Some(RunStatus::Failed);
        r.error = Some(format!("cannot start a thread for the {what}: {e}"));
    });
    ApiError::internal(format!("cannot start the {what}: {e}"))
}

/// Starts a full or delta sync of a source on a thread of its own. Answers once the run
/// has an id (recorded as soon as the source is open), has finished, or `wait` passed.
/// `409 already_running` when the source is busy, here or in another process.
pub async fn start_sync(
    state: &Shared,
    source: &str,
    kind: SyncKind,
    trigger: Trigger,
    actor: &str,
    wait: Duration,
) -> Result<LiveRun, ApiError> {
    let (lock, entry) = begin(state, source, Lockable::Source, kind, trigger, actor).await?;
    let thread_state = Arc::clone(state);
    let req = SyncRequest {
        source: source.to_owned(),
        kind,
        trigger,
        approved: false,
    };
    let spawned = std::thread::Builder::new()
        .name(format!("sync-{source}"))
        .spawn(move || run_thread(thread_state, req, lock));
    if let Err(e) = spawned {
        return Err(not_started(state, source, "run", &e));
    }
    let deadline = tokio::time::Instant::now() + wait;
    Ok(state
        .live
        .wait_for(source, &entry, deadline, |r| {
            r.run_id.is_some() || r.finished
        })
        .await)
}

fn run_thread(state: Shared, req: SyncRequest, lock: engine::SourceLock) {
    let source = req.source.clone();
    let started = Instant::now();
    let pulled = Mutex::new(None::<Duration>);
    let progress = |p: Progress| {
        if let Progress::SourceRequests { stats } = &p {
            state.metrics.source_requests(&source, stats);
        }
        if matches!(p, Progress::Planning { .. }) {
            let mut g = pulled.lock().unwrap_or_else(|p| p.into_inner());
            if g.is_none() {
                *g = Some(started.elapsed());
            }
        }
        let phase = p.to_string();
        let run = match p {
            Progress::Started { run } => Some(run),
            _ => None,
        };
        state.live.update(&source, |r| {
            r.phase = phase;
            if run.is_some() {
                r.run_id = run;
            }
        });
    };
    // The engine frees the source when it returns, before the run is said to have
    // finished: whoever sees it finished may start the next one.
    let result = engine::sync(&state.context(&progress), &req, Some(lock));
    let took = started.elapsed();
    if let Some(d) = *pulled.lock().unwrap_or_else(|p| p.into_inner()) {
        state.metrics.pull_finished(&source, d);
    }
    match result {
        Ok(outcome) => {
            if outcome.status == RunStatus::Failed && outcome.counts.seen == 0 {
                state.metrics.source_error(&source);
            }
            state.metrics.run_finished(
                &source,
                outcome.kind.as_str(),
                outcome.status.as_str(),
                took,
                &outcome.counts,
            );
            tracing::info!(source, run = ?outcome.run_id.map(|r| r.0), status = outcome.status.as_str(), "run finished");
            state.live.update(&source, |r| {
                r.kind = outcome.kind;
                r.finish(
                    outcome.run_id,
                    outcome.status,
                    outcome.counts,
                    outcome.error.clone(),
                );
            });
            // After the source is said to be free: the pushes hold only their targets.
            if outcome.status == RunStatus::Succeeded {
                push_followers(&state, &source, req.trigger);
            }
        }
        Err(e) => {
            state.metrics.source_error(&source);
            state.metrics.run_finished(
                &source,
                req.kind.as_str(),
                "failed",
                took,
                &Counts::default(),
            );
            tracing::warn!(source, error = %e.to_string().escape_debug(), "run failed before it was recorded");
            state.live.failed(&source, e.to_string());
        }
    }
}

/// The pushes that follow a successful sync of `source` ([`engine::push_followers`]),
/// on the sync's thread once the source is free (each push holds only its target's
/// lock): each logged and counted in the metrics as a run of kind `push` of its target.
/// A push that fails fails nothing else; a target another push holds is pushed after
/// the next sync.
fn push_followers(state: &Shared, source: &str, trigger: Trigger) {
    // When each push's run started: its duration runs to the next one's start (they
    // run one after another), the last one's to the end.
    let starts = Mutex::new(Vec::<(RunId, Instant)>::new());
    let progress = |p: Progress| {
        if let Progress::Started { run } = p {
            starts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((run, Instant::now()));
        }
    };
    let results = match engine::push_followers(&state.context(&progress), source, trigger) {
        Ok(results) => results,
        Err(e) => {
            tracing::warn!(source, error = %e.to_string().escape_debug(), "the pushes following the sync could not start");
            return;
        }
    };
    let end = Instant::now();
    let starts = starts.into_inner().unwrap_or_else(|p| p.into_inner());
    let took = |run: Option<RunId>| {
        let i = starts.iter().position(|(r, _)| Some(*r) == run)?;
        let to = starts.get(i + 1).map_or(end, |(_, at)| *at);
        Some(to.saturating_duration_since(starts[i].1))
    };
    for (target, result) in results {
        match result {
            Ok(o) => {
                state.metrics.run_finished(
                    &target,
                    SyncKind::Push.as_str(),
                    o.status.as_str(),
                    took(o.run_id).unwrap_or_default(),
                    &o.counts,
                );
                tracing::info!(
                    source,
                    target,
                    run = ?o.run_id.map(|r| r.0),
                    status = o.status.as_str(),
                    created = o.counts.created,
                    updated = o.counts.updated,
                    deactivated = o.counts.deactivated,
                    errors = o.counts.errors,
                    error = o.error.as_deref().unwrap_or_default().escape_debug().to_string(),
                    "follow-up push finished"
                );
            }
            Err(engine::EngineError::Busy(_)) => {
                tracing::info!(
                    source,
                    target,
                    "follow-up push skipped: another push to the target is running; the next sync pushes again"
                );
            }
            Err(e) => {
                state.metrics.run_finished(
                    &target,
                    SyncKind::Push.as_str(),
                    RunStatus::Failed.as_str(),
                    Duration::ZERO,
                    &Counts::default(),
                );
                tracing::warn!(source, target, error = %e.to_string().escape_debug(), "follow-up push failed before it was recorded");
            }
        }
    }
}

/// What a push started by [`push`] came to.
#[derive(Debug)]
pub enum Pushed {
    /// It finished within the wait (a dry run always does).
    Done(Box<engine::PushOutcome>),
    /// Still sending: its live state, which the target's last push and the run's page
    /// follow.
    Running(Box<LiveRun>),
}

/// An engine failure of a push as an answer: what the settings or the target must fix
/// is `422 push_failed`.
fn push_error(e: engine::EngineError) -> ApiError {
    match e {
        engine::EngineError::Store(s) => s.into(),
        busy @ engine::EngineError::Busy(_) => ApiError::from(busy),
        other => ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "push_failed",
            other.to_string(),
        ),
    }
}

/// The audit line of a push (`push.run`).
fn push_detail(target: &str, result: &Result<engine::PushOutcome, engine::EngineError>) -> String {
    match result {
        Ok(o) if o.dry_run => format!(
            "{target}: dry run, {} write(s) it would send{}",
            o.requests.len(),
            if o.hold.is_empty() {
                ""
            } else {
                ", would be held"
            }
        ),
        Ok(o) => {
            let c = &o.counts;
            format!(
                "{target}: run {} ({}; created {}, adopted {}, updated {}, deactivated {}, reactivated {}, errors {})",
                o.run_id.map_or_else(|| "?".to_owned(), |r| r.to_string()),
                o.status.as_str(),
                c.created,
                c.linked,
                c.updated,
                c.deactivated,
                c.reactivated,
                c.errors
            )
        }
        Err(e) => format!("{target}: not pushed: {e}"),
    }
}

/// Pushes the directory to a target now ([`engine::push`]), audited as `push.run`. A
/// real push runs on a thread of its own under the target's lock (`409 already_running`
/// when another push holds it, here or in another process) with its live state kept like
/// a sync's, and is answered when done or `wait` passed; a dry run takes no lock, records
/// no run and is answered when done. `404` for a target the settings do not name.
pub async fn push(
    state: &Shared,
    target: &str,
    dry_run: bool,
    trigger: Trigger,
    actor: &str,
    wait: Duration,
) -> Result<Pushed, ApiError> {
    let req = engine::PushRequest {
        target: target.to_owned(),
        dry_run,
        trigger,
    };
    if dry_run {
        let name = target.to_owned();
        let known = crate::blocking(state, move |store| {
            Ok(store.load_config()?.target(&name).is_some())
        })
        .await?;
        if !known {
            return Err(ApiError::not_found(format!(
                "no target named '{target}' (the Overview and GET /api/v1/targets list the targets)"
            )));
        }
        let who = actor.to_owned();
        let outcome = with_context(state, None, move |ctx, _| {
            let result = engine::push(ctx, &req, None);
            ctx.store.audit(
                &who,
                "push.run",
                &push_detail(&req.target, &result),
                ctx.clock.now(),
            )?;
            result.map_err(push_error)
        })
        .await?;
        return Ok(Pushed::Done(Box::new(outcome)));
    }
    let (lock, entry) = begin(
        state,
        target,
        Lockable::Target,
        SyncKind::Push,
        trigger,
        actor,
    )
    .await?;
    let thread_state = Arc::clone(state);
    let who = actor.to_owned();
    let name = target.to_owned();
    let answered = on_own_thread(
        state,
        target,
        "push",
        format!("push-{target}"),
        wait,
        move |done| {
            let state = thread_state;
            let started = Instant::now();
            let progress = |p: Progress| {
                let phase = p.to_string();
                state.live.update(&name, |r| {
                    r.phase = phase;
                    if let Progress::Started { run } = p {
                        r.run_id = Some(run);
                    }
                });
            };
            let result = engine::push(&state.context(&progress), &req, Some(lock));
            let took = started.elapsed();
            if let Err(e) = state
                .store
                .audit(&who, "push.run", &push_detail(&name, &result), state.now())
            {
                tracing::error!(target = %name, error = %e, "could not audit a push");
            }
            match &result {
                Ok(o) => {
                    state.metrics.run_finished(
                        &name,
                        SyncKind::Push.as_str(),
                        o.status.as_str(),
                        took,
                        &o.counts,
                    );
                    tracing::info!(target = %name, run = ?o.run_id.map(|r| r.0), status = o.status.as_str(), "push finished");
                    state.live.update(&name, |r| {
                        r.finish(o.run_id, o.status, o.counts, o.error.clone());
                    });
                }
                Err(e) => {
                    state.metrics.run_finished(
                        &name,
                        SyncKind::Push.as_str(),
                        RunStatus::Failed.as_str(),
                        took,
                        &Counts::default(),
                    );
                    tracing::warn!(target = %name, error = %e.to_string().escape_debug(), "push failed before it was recorded");
                    state.live.failed(&name, e.to_string());
                }
            }
            let _ = done.send(result);
        },
    )
    .await?;
    match answered {
        Some(result) => result
            .map(|o| Pushed::Done(Box::new(o)))
            .map_err(push_error),
        None => Ok(Pushed::Running(Box::new(
            state.live.get(target).unwrap_or(entry),
        ))),
    }
}

/// Runs `work` on a thread of its own named `thread`, and answers what it sends when
/// that comes within `wait`, else `None` (still at work). `what` names the work of
/// `name` if the thread cannot start or ends without sending anything.
async fn on_own_thread<T: Send + 'static>(
    state: &Shared,
    name: &str,
    what: &str,
    thread: String,
    wait: Duration,
    work: impl FnOnce(oneshot::Sender<T>) + Send + 'static,
) -> Result<Option<T>, ApiError> {
    let (done, answer) = oneshot::channel();
    if let Err(e) = std::thread::Builder::new()
        .name(thread)
        .spawn(move || work(done))
    {
        return Err(not_started(state, name, what, &e));
    }
    match tokio::time::timeout(wait, answer).await {
        Ok(Ok(sent)) => Ok(Some(sent)),
        Ok(Err(_)) => Err(ApiError::internal(format!(
            "the {what} stopped without an answer"
        ))),
        Err(_) => Ok(None),
    }
}

/// Syncs one account now (under its source's lock), returning the `sync-user` document.
pub async fn sync_user(
    state: &Shared,
    user: AccountId,
    trigger: Trigger,
) -> Result<engine::SyncOutcome, ApiError> {
    let source = crate::blocking(state, move |store| {
        let record = crate::api::account(store, user)?;
        record.sis.map(|s| s.source).ok_or_else(|| {
            ApiError::conflict(format!(
                "account #{user} is not linked to a SIS person: link it first"
            ))
        })
    })
    .await?;
    let lock = take_lock(state, &source, Lockable::Source).await?;
    let thread_state = Arc::clone(state);
    tokio::task::spawn_blocking(move || {
        let metrics = |p: Progress| {
            if let Progress::SourceRequests { stats } = &p {
                thread_state.metrics.source_requests(&source, stats);
            }
        };
        let out = engine::sync_user(&thread_state.context(&metrics), user, trigger, Some(lock));
        // Not found and conflicts stay what they are; only the database's own failures
        // become a generic "internal error" with a reference.
        out.map_err(ApiError::from)
    })
    .await
    .map_err(|e| ApiError::internal(format!("the sync task failed: {e}")))?
}

/// A run by id: `404` when there is none.
async fn find_run(state: &Shared, run: RunId) -> Result<RunRecord, ApiError> {
    crate::blocking(state, move |store| {
        store
            .get_run(run)?
            .ok_or_else(|| ApiError::not_found(format!("no run {run} (Sync History lists them)")))
    })
    .await
}

/// Runs `f` with an engine context on a blocking thread, then releases `lock` there (a
/// PostgreSQL lock is let go with a blocking call).
async fn with_context<T, F>(
    state: &Shared,
    lock: Option<engine::SourceLock>,
    f: F,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Context<'_>, Option<engine::SourceLock>) -> Result<T, ApiError> + Send + 'static,
{
    let s = Arc::clone(state);
    tokio::task::spawn_blocking(move || {
        let quiet = |_| {};
        f(&s.context(&quiet), lock)
    })
    .await
    .map_err(|e| ApiError::internal(format!("a background task failed: {e}")))?
}

/// What approving a held run came to.
#[derive(Debug)]
pub enum Approved {
    /// It finished within the wait.
    Done(Box<Approval>),
    /// Still applying (or re-planning): its live state, which the source's progress and
    /// the run's page follow.
    Running(Box<LiveRun>),
}

/// Approves a held run on a thread of its own, under its source's lock (`409
/// already_running` when the source is busy): the stored plan is applied when nothing it
/// touches changed since, else the source is synced again with the safeguards waived
/// ([`engine::approve`]). Answers when it is done or `wait` passed.
pub async fn approve(
    state: &Shared,
    run: RunId,
    trigger: Trigger,
    actor: &str,
    wait: Duration,
) -> Result<Approved, ApiError> {
    let record = find_run(state, run).await?;
    if record.status != RunStatus::Held {
        return Err(ApiError::conflict(format!(
            "run {run} is {}, not held: only a held run can be approved",
            record.status.as_str()
        )));
    }
    let source = record.source.clone();
    let lock = take_lock(state, &source, Lockable::Either).await?;
    let entry = LiveRun {
        run_id: Some(run),
        phase: format!("approving held run {run}"),
        approval_of: Some(run),
        ..LiveRun::starting(&source, record.kind, trigger, actor, state.now())
    };
    state.live.insert(entry.clone());
    let thread_state = Arc::clone(state);
    let who = actor.to_owned();
    let name = source.clone();
    let answered = on_own_thread(
        state,
        &source,
        "approval",
        format!("approve-{run}"),
        wait,
        move |done| {
            let state = thread_state;
            let progress = |p: Progress| {
                if let Progress::SourceRequests { stats } = &p {
                    state.metrics.source_requests(&name, stats);
                }
                let phase = format!("approving held run {run}: {p}");
                state.live.update(&name, |r| {
                    r.phase = phase;
                    if let Progress::Started { run: new } = p {
                        r.run_id = Some(new);
                    }
                });
            };
            let result = engine::approve(&state.context(&progress), run, &who, Some(lock));
            match &result {
                Ok(a) => {
                    tracing::info!(
                        run = run.0,
                        applied_as_held = a.applied_as_held,
                        status = a.outcome.status.as_str(),
                        "held run approved"
                    );
                    let o = &a.outcome;
                    state.live.update(&name, |r| {
                        r.finish(o.run_id, o.status, o.counts, o.error.clone());
                    });
                }
                Err(e) => {
                    tracing::warn!(run = run.0, error = %e.to_string().escape_debug(), "approving a held run failed");
                    state.live.failed(&name, e.to_string());
                }
            }
            // An approved sync that applied is followed by its targets' pushes, as a
            // sync is (after the answer: the approval does not wait for them).
            let follow = matches!(&result, Ok(a) if a.outcome.kind != SyncKind::Push
                && a.outcome.status == RunStatus::Succeeded);
            let _ = done.send(result);
            if follow {
                push_followers(&state, &name, trigger);
            }
        },
    )
    .await?;
    match answered {
        Some(result) => result
            .map(|a| Approved::Done(Box::new(a)))
            .map_err(ApiError::from),
        None => Ok(Approved::Running(Box::new(
            state.live.get(&source).unwrap_or(entry),
        ))),
    }
}

/// Whether this server is approving the held run now.
pub fn approving(state: &Shared, run: RunId) -> bool {
    state
        .live
        .all()
        .iter()
        .any(|r| r.approval_of == Some(run) && !r.finished)
}

/// Discards a held run under its source's lock: nothing of it is ever applied.
pub async fn discard(state: &Shared, run: RunId, actor: &str) -> Result<RunRecord, ApiError> {
    let record = find_run(state, run).await?;
    let lock = take_lock(state, &record.source, Lockable::Either).await?;
    let who = actor.to_owned();
    with_context(state, Some(lock), move |ctx, lock| {
        engine::discard(ctx, run, &who, lock)?;
        crate::api::run_record(ctx.store, run)
    })
    .await
}

/// Undoes an applied run under its source's lock (a dry run takes no lock: it writes
/// nothing). Refused with each conflict listed (`409`, `conflicts`).
pub async fn undo(
    state: &Shared,
    run: RunId,
    actor: &str,
    dry_run: bool,
) -> Result<UndoSummary, ApiError> {
    let record = find_run(state, run).await?;
    let lock = if dry_run {
        None
    } else {
        Some(take_lock(state, &record.source, Lockable::Either).await?)
    };
    let who = actor.to_owned();
    with_context(state, lock, move |ctx, lock| {
        Ok(engine::undo(ctx, run, &who, dry_run, lock)?)
    })
    .await
}
