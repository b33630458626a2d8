//! The scheduler: per source, a full and a delta schedule ([`rostersync_core::schedule`])
//! in the district's time zone, pause windows, at most one run per source. It runs on a
//! plain thread inside `serve` and looks at its [`Clock`] every tick; tests give it a
//! [`ManualClock`] and move time instead of waiting for 02:00.
//!
//! Several `serve` processes on one PostgreSQL database elect one leader with the
//! `scheduler` lock (an advisory lock held by the leader's connection); the others keep
//! trying, so a new leader takes over within a tick when the old one goes away. Missed
//! times are not caught up after a restart: the next scheduled time runs.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use jiff::Timestamp;
use rostersync_core::plan::SyncKind;
use rostersync_core::settings::{Config, SourceKind};
use store::{StoreLock, Trigger};

use crate::Shared;

// The clocks are the engine's (it takes every time it records from the one it is
// handed); re-exported so `server::{Clock, ManualClock, SystemClock}` keep working.
pub use engine::{Clock, ManualClock, SystemClock};

/// The running scheduler; [`SchedulerHandle::stop`] ends it (blocking).
pub struct SchedulerHandle {
    stop: mpsc::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SchedulerHandle {
    pub fn stop(mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn spawn(state: Shared) -> SchedulerHandle {
    let (stop, stopped) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("scheduler".into())
        .spawn(move || run(state, stopped))
        .ok();
    if thread.is_none() {
        tracing::error!("cannot start the scheduler thread: nothing will run by schedule");
    }
    SchedulerHandle { stop, thread }
}

/// The next due times per source and kind, computed from when the scheduler last looked.
#[derive(Default)]
struct Due {
    next: HashMap<(String, &'static str), Option<Timestamp>>,
    /// The settings each entry was computed under (recomputed when they change).
    spec: HashMap<String, String>,
}

fn run(state: Shared, stopped: mpsc::Receiver<()>) {
    let mut leader: Option<StoreLock> = None;
    let mut due = Due::default();
    loop {
        if leader.is_none() {
            match state
                .store
                .try_lock("scheduler", &state.holder, state.now())
            {
                Ok(Some(lock)) => {
                    tracing::info!(holder = %state.holder, "this process now runs the schedules");
                    state.metrics.leader.store(true, Ordering::Relaxed);
                    leader = Some(lock);
                    due = Due::default();
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot take the scheduler lock"),
            }
        }
        if leader.is_some()
            && let Err(e) = tick(&state, &mut due)
        {
            tracing::warn!(error = %e, "the scheduler could not read the settings");
        }
        match stopped.recv_timeout(state.options.scheduler_tick) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => break,
        }
    }
    state.metrics.leader.store(false, Ordering::Relaxed);
    drop(leader);
}

fn tick(state: &Shared, due: &mut Due) -> Result<(), store::StoreError> {
    let now = state.now();
    let config: Config = state.store.load_config()?;
    // A SCIM connection is pushed to, never read: it has nothing to schedule.
    for source in config.sources.iter().filter(|s| s.kind != SourceKind::Scim) {
        let s = &source.schedule;
        let fingerprint = serde_json::to_string(s).unwrap_or_default();
        if due.spec.get(&source.name) != Some(&fingerprint) {
            due.spec.insert(source.name.clone(), fingerprint);
            due.next.remove(&(source.name.clone(), "full"));
            due.next.remove(&(source.name.clone(), "delta"));
        }
        let tz = match s.zone() {
            Ok(tz) => tz,
            Err(e) => {
                tracing::warn!(source = %source.name, error = %e.to_string().escape_debug(), "schedule skipped");
                continue;
            }
        };
        let mut fire: Option<SyncKind> = None;
        for (kind, spec) in [(SyncKind::Full, &s.full), (SyncKind::Delta, &s.delta)] {
            let key = (source.name.clone(), kind.as_str());
            let next = *due
                .next
                .entry(key.clone())
                .or_insert_with(|| spec.next_after(now, &tz));
            if let Some(at) = next
                && at <= now
            {
                due.next.insert(key, spec.next_after(now, &tz));
                if s.paused(at, &tz) {
                    tracing::info!(source = %source.name, kind = kind.as_str(), "scheduled run skipped: in a pause window");
                    continue;
                }
                // A full and a delta due together: the full covers the delta.
                if fire.is_none() {
                    fire = Some(kind);
                }
            }
        }
        let Some(mut kind) = fire else { continue };
        // A CSV package says itself whether it holds changes only: sync it as it is.
        // Google Workspace has no changes-only read (the engine refuses a delta of it),
        // so its delta schedule runs full syncs: the schedule still says how often the
        // admin wants the accounts read. Entra ID reads Graph's delta: its deltas stay.
        if matches!(
            source.kind,
            SourceKind::OneRosterCsv | SourceKind::GoogleWorkspace
        ) {
            kind = SyncKind::Full;
        }
        let state2 = Arc::clone(state);
        let name = source.name.clone();
        let started = state.runtime.block_on(async move {
            crate::runner::start_sync(
                &state2,
                &name,
                kind,
                Trigger::Schedule,
                "scheduler",
                Duration::ZERO,
            )
            .await
        });
        match started {
            Ok(_) => {
                tracing::info!(source = %source.name, kind = kind.as_str(), "scheduled run started")
            }
            Err(e) => {
                tracing::warn!(source = %source.name, kind = kind.as_str(), error = %e.message.escape_debug(), "scheduled run not started")
            }
        }
    }
    Ok(())
}
