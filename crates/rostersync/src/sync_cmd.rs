//! `rostersync sync`: one run against one source.

use clap::Args;
use engine::{Progress, SyncRequest};
use rostersync_core::plan::{Outcome, SyncKind};
use store::Trigger;

use crate::env::{StateArgs, engine_failure, store_failure};
use crate::{Failure, output};

#[derive(Args)]
pub struct SyncArgs {
    /// The source to sync (may be left out when only one is configured).
    #[arg(long)]
    source: Option<String>,
    /// A full sync: pull everything (the default). Only a complete full pull may
    /// deactivate people by their absence.
    #[arg(long, conflicts_with = "delta")]
    full: bool,
    /// A delta sync: pull only what changed since the last successful pull (never
    /// deactivates anyone by absence; homerooms and groups wait for the next full sync).
    #[arg(long)]
    delta: bool,
    /// Compute and report the plan; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(
    state_args: &StateArgs,
    args: SyncArgs,
    runtime: &tokio::runtime::Runtime,
) -> Result<u8, Failure> {
    let state = state_args.open()?;
    let config = state.store.load_config().map_err(store_failure)?;
    let source = crate::links::which_source(&config, args.source.as_deref())?;
    let reporter = output::Progress::new();
    let progress = |p: Progress| reporter.show(&p);
    let ctx = state.context(runtime.handle(), &progress);
    let req = SyncRequest {
        source,
        kind: if args.delta {
            SyncKind::Delta
        } else {
            SyncKind::Full
        },
        dry_run: args.dry_run,
        trigger: Trigger::Cli,
        approved: false,
    };
    // The engine takes the source's lock: one run per source at a time, with `serve` and
    // other CLI runs (a dry run takes none: it writes nothing).
    let outcome = engine::sync(&ctx, &req, None).map_err(engine_failure)?;
    // The targets that follow the source are pushed after a sync that applied.
    let pushes = if !args.dry_run && outcome.status == store::RunStatus::Succeeded {
        engine::push_followers(&ctx, &req.source, Trigger::Cli).map_err(engine_failure)?
    } else {
        Vec::new()
    };
    reporter.finish();
    let pushes = FollowerPushes::new(&pushes);
    if args.json {
        output::json(&json_doc(&outcome, pushes.field()));
    } else {
        report(&outcome, false);
        pushes.print();
    }
    Ok(outcome.exit_code().max(pushes.exit))
}

/// The follow-up pushes of a sync (or of an approved run), as `sync` and `runs approve`
/// report them.
pub struct FollowerPushes {
    /// A JSON document each.
    docs: Vec<serde_json::Value>,
    /// A line each.
    lines: Vec<String>,
    /// The exit code they ask for: at least 1 when one did not go cleanly (the sync
    /// applied, but a target is behind).
    pub exit: u8,
}

impl FollowerPushes {
    pub fn new(pushes: &[engine::FollowerPush]) -> FollowerPushes {
        let mut docs = Vec::new();
        let mut lines = Vec::new();
        let mut code = 0;
        for (target, result) in pushes {
            let (doc, line, exit) = match result {
                Ok(p) => (
                    output::to_value(p),
                    format!(
                        "push to target {target}: {} {} · {}",
                        output::run_label(p.run_id),
                        p.status.as_str(),
                        output::counts_line(&p.counts)
                    ),
                    p.exit_code(),
                ),
                Err(e) => (
                    serde_json::json!({"target": target, "error": e.to_string()}),
                    format!("push to target {target} failed: {e}"),
                    2,
                ),
            };
            docs.push(doc);
            lines.push(line);
            code = code.max(exit.min(1));
        }
        FollowerPushes {
            docs,
            lines,
            exit: code,
        }
    }

    /// The `pushes` field of a `--json` result (none when nothing was pushed).
    pub fn field(&self) -> Option<(&'static str, serde_json::Value)> {
        (!self.docs.is_empty()).then(|| ("pushes", serde_json::Value::Array(self.docs.clone())))
    }

    /// Prints a line each.
    pub fn print(&self) {
        for line in &self.lines {
            output::line(line);
        }
    }
}

/// A run's outcome as the `sync --json` document (a dry run's items included), with
/// `more` (the follow-up pushes).
fn json_doc(
    outcome: &engine::SyncOutcome,
    more: Option<(&'static str, serde_json::Value)>,
) -> serde_json::Value {
    let items = outcome
        .plan
        .as_ref()
        .map(|plan| ("items", output::to_value(&items_json(plan))));
    output::with_fields(outcome, items.into_iter().chain(more))
}

/// Prints a run's outcome (the `sync` and `sync-user` result).
pub fn report(outcome: &engine::SyncOutcome, json: bool) {
    if json {
        output::json(&json_doc(outcome, None));
    } else {
        let c = &outcome.counts;
        let run = output::run_label(outcome.run_id);
        output::line(&format!(
            "{run} · {} · {} · {} · {}",
            outcome.source,
            outcome.kind.as_str(),
            outcome.status.as_str(),
            if outcome.complete {
                "complete pull"
            } else {
                "INCOMPLETE pull"
            }
        ));
        output::line(&output::counts_line(c));
        if let Some(e) = &outcome.error {
            output::line(&format!("error: {e}"));
        }
        for w in &outcome.warnings {
            output::line(&format!("warning: {w}"));
        }
        output::hold_lines(
            &outcome.hold,
            outcome.dry_run,
            outcome.status,
            outcome.run_id,
            "applied",
        );
        if let Some(plan) = &outcome.plan {
            output::first_lines(&plan.items, |item| {
                format!(
                    "  {:<11} {:<20} {}",
                    item.outcome.as_str(),
                    item.sourced_id,
                    item.reason
                )
            });
        }
    }
}

fn items_json(plan: &rostersync_core::plan::Plan) -> Vec<serde_json::Value> {
    plan.items
        .iter()
        .filter(|i| i.outcome != Outcome::Unchanged || !i.changes.is_empty())
        .map(|i| {
            serde_json::json!({
                "sourced_id": i.sourced_id,
                "user_id": i.user_id,
                "outcome": i.outcome.as_str(),
                "reason_code": i.reason.code(),
                "reason": i.reason.to_string(),
                "changes": i.changes,
            })
        })
        .collect()
}
