//! `rostersync sync`: one run against one source.

use clap::Args;
use engine::{Progress, SyncRequest};
use rostersync_core::plan::{Outcome, PlanItem, SyncKind};
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
        trigger: Trigger::Cli,
        approved: false,
    };
    if args.dry_run {
        return dry_run(&ctx, &req, args.json, &reporter);
    }
    // The engine takes the source's lock: one run per source at a time, with `serve` and
    // other CLI runs.
    let outcome = engine::sync(&ctx, &req, None).map_err(engine_failure)?;
    // The targets that follow the source are pushed after a sync that applied.
    let pushes = if outcome.status == store::RunStatus::Succeeded {
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

/// A run's outcome as the `sync --json` document, with `more` (the follow-up pushes).
fn json_doc(
    outcome: &engine::SyncOutcome,
    more: Option<(&'static str, serde_json::Value)>,
) -> serde_json::Value {
    output::with_fields(outcome, more)
}

/// `sync --dry-run`: the plan's items as the engine hands them out, then the outcome.
/// Whatever the district's size, at most `engine::MAX_PLAN_ITEMS` items are held at once:
/// the text keeps the first lines and counts the rest; `--json` writes each item as it
/// comes (the document's `items` first, then the outcome's fields).
fn dry_run(
    ctx: &engine::Context<'_>,
    req: &SyncRequest,
    json: bool,
    reporter: &output::Progress,
) -> Result<u8, Failure> {
    if !json {
        let mut lines = output::FirstLines::default();
        let outcome = engine::preview(ctx, req, &mut |item| lines.take(|| item_line(&item)));
        reporter.finish();
        let outcome = outcome.map_err(engine_failure)?;
        report(&outcome, false);
        lines.print();
        return Ok(outcome.exit_code());
    }
    // The progress line ends before the document starts (both may be one terminal).
    let begin = || {
        reporter.finish();
        output::List::inside("{\"items\":", "}")
    };
    let mut items: Option<output::List> = None;
    let outcome = engine::preview(ctx, req, &mut |item| {
        if let Some(doc) = item_json(&item) {
            items.get_or_insert_with(begin).item(&doc);
        }
    });
    if items.is_none() {
        reporter.finish();
    }
    let (rest, code) = match outcome {
        Ok(outcome) => (json_doc(&outcome, None), outcome.exit_code()),
        Err(e) if items.is_none() => return Err(engine_failure(e)),
        // Items are handed out once nothing is left to fail; a document begun is still
        // ended, with the error.
        Err(e) => {
            let failure = engine_failure(e);
            (
                serde_json::json!({ "error": failure.message }),
                failure.code,
            )
        }
    };
    let text = serde_json::to_string_pretty(&rest).unwrap_or_default();
    // `{"a": …}` after the items: `,"a": …}`.
    let suffix = match text.strip_prefix('{') {
        Some(fields) if fields.trim() != "}" => format!(",{fields}"),
        _ => "}".to_owned(),
    };
    items.unwrap_or_else(begin).finish_with(&suffix);
    Ok(code)
}

/// A dry run's item as a line of text.
fn item_line(item: &PlanItem) -> String {
    format!(
        "  {:<11} {:<20} {}",
        item.outcome.as_str(),
        item.sourced_id,
        item.reason
    )
}

/// A dry run's item in its `--json` document; `None` for an unchanged person (a link
/// refreshed, nothing else).
fn item_json(i: &PlanItem) -> Option<serde_json::Value> {
    (i.outcome != Outcome::Unchanged || !i.changes.is_empty()).then(|| {
        serde_json::json!({
            "sourced_id": i.sourced_id,
            "user_id": i.user_id,
            "outcome": i.outcome.as_str(),
            "reason_code": i.reason.code(),
            "reason": i.reason.to_string(),
            "changes": i.changes,
        })
    })
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
    }
}
