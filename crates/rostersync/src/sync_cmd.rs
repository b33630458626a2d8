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
    let (docs, lines, exit) = describe_pushes(&pushes);
    if args.json {
        let mut doc = json_doc(&outcome);
        if let Some(obj) = doc.as_object_mut()
            && !docs.is_empty()
        {
            obj.insert("pushes".into(), serde_json::Value::Array(docs));
        }
        output::json(&doc);
    } else {
        report(&outcome, false);
        for line in &lines {
            output::line(line);
        }
    }
    Ok(outcome.exit_code().max(exit))
}

/// The follow-up pushes of a sync, as JSON documents and lines, and the exit code they
/// ask for: at least 1 when one did not go cleanly (the sync applied, but a target is
/// behind).
pub fn describe_pushes(
    pushes: &[engine::FollowerPush],
) -> (Vec<serde_json::Value>, Vec<String>, u8) {
    let mut docs = Vec::new();
    let mut lines = Vec::new();
    let mut code = 0;
    for (target, result) in pushes {
        let (doc, line, exit) = match result {
            Ok(p) => (
                serde_json::to_value(p).unwrap_or_default(),
                format!(
                    "push to target {target}: {} {} · {}",
                    p.run_id
                        .map_or("dry run".to_owned(), |r| format!("run {r}")),
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
    (docs, lines, code)
}

/// A run's outcome as the `sync --json` document (a dry run's items included).
fn json_doc(outcome: &engine::SyncOutcome) -> serde_json::Value {
    let mut doc = serde_json::to_value(outcome).unwrap_or_default();
    if let (Some(plan), Some(obj)) = (&outcome.plan, doc.as_object_mut()) {
        obj.insert(
            "items".into(),
            serde_json::to_value(items_json(plan)).unwrap_or_default(),
        );
    }
    doc
}

/// Prints a run's outcome (the `sync` and `sync-user` result).
pub fn report(outcome: &engine::SyncOutcome, json: bool) {
    if json {
        output::json(&json_doc(outcome));
    } else {
        let c = &outcome.counts;
        let run = outcome
            .run_id
            .map_or("dry run".to_owned(), |id| format!("run {id}"));
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
        for trip in &outcome.hold {
            output::line(&format!(
                "{}: {}",
                if outcome.dry_run {
                    "would be held"
                } else if outcome.status == store::RunStatus::Held {
                    "held for approval"
                } else {
                    // An approved run applied what the safeguard had stopped.
                    "approved past the safeguard"
                },
                trip.detail
            ));
        }
        if outcome.status == store::RunStatus::Held
            && let Some(run) = outcome.run_id
        {
            output::line(&format!(
                "nothing was applied: review it with `rostersync runs show {run}`, then `rostersync runs approve {run}` or `rostersync runs discard {run}`"
            ));
        }
        if let Some(plan) = &outcome.plan {
            const SHOWN: usize = 50;
            for item in plan.items.iter().take(SHOWN) {
                output::line(&format!(
                    "  {:<11} {:<20} {}",
                    item.outcome.as_str(),
                    item.sourced_id,
                    item.reason
                ));
            }
            if plan.items.len() > SHOWN {
                output::line(&format!(
                    "  … and {} more (use --json for all)",
                    plan.items.len() - SHOWN
                ));
            }
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
