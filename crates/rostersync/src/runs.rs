//! `rostersync runs list|show`: what every run did to every person.

use clap::Subcommand;
use rostersync_core::plan::Outcome;
use store::{RunId, Trigger};

use crate::env::{StateArgs, engine_failure, store_failure};
use crate::{Failure, listing, output};

#[derive(Subcommand)]
pub enum RunsCommand {
    /// Apply a held run's plan (re-planned if the directory changed since).
    Approve {
        run: RunId,
        #[arg(long)]
        json: bool,
    },
    /// Discard a held run: nothing of it is applied.
    Discard { run: RunId },
    /// Revert an applied run from its revisions (refused, with a list, where later
    /// changes conflict).
    Undo {
        run: RunId,
        /// Say what would be reverted; change nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Runs, newest first: every one, unless --limit says how many.
    List {
        /// At most this many (0: every run, the default); stderr says when more are left.
        #[arg(long)]
        limit: Option<u32>,
        /// Only runs older than this one (paging).
        #[arg(long)]
        before: Option<RunId>,
        #[arg(long)]
        json: bool,
    },
    /// One run and the people it touched, with the reason for each.
    Show {
        run: RunId,
        /// Only items with this outcome: created, updated, linked, skipped, deactivated, reactivated, error.
        #[arg(long, value_parser = parse_outcome)]
        items: Option<Outcome>,
        /// At most this many items (0: every one, the default); stderr says when more are left.
        #[arg(long)]
        limit: Option<u32>,
        /// Skip this many items first.
        #[arg(long, default_value_t = 0)]
        offset: u64,
        /// Only items after this sourcedId (paging).
        #[arg(long, conflicts_with = "offset")]
        after: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

fn parse_outcome(s: &str) -> Result<Outcome, String> {
    Outcome::parse(s).ok_or_else(|| {
        format!("'{s}' is not an outcome: created, updated, linked, skipped, deactivated, reactivated, error")
    })
}

pub fn run(
    state_args: &StateArgs,
    cmd: RunsCommand,
    runtime: &tokio::runtime::Runtime,
) -> Result<u8, Failure> {
    let state = state_args.open()?;
    let actor = crate::config_cmd::cli_actor();
    match cmd {
        RunsCommand::Approve { run, json } => {
            let ctx = state.quiet_context(runtime.handle());
            let approval = engine::approve(&ctx, run, &actor, None).map_err(engine_failure)?;
            // An approved sync that applied pushes the targets that follow its source.
            let pushes = if approval.outcome.kind != rostersync_core::plan::SyncKind::Push
                && approval.outcome.status == store::RunStatus::Succeeded
            {
                engine::push_followers(&ctx, &approval.outcome.source, Trigger::Cli)
                    .map_err(engine_failure)?
            } else {
                Vec::new()
            };
            let pushes = crate::sync_cmd::FollowerPushes::new(&pushes);
            if json {
                output::json(&output::with_fields(&approval, pushes.field()));
            } else {
                if approval.outcome.error.is_some() && approval.applied_as_held {
                    output::line(&format!("run {run} approved, but nothing was applied"));
                } else if approval.applied_as_held {
                    output::line(&format!("run {run} approved and applied"));
                } else {
                    output::line(&format!(
                        "run {run}: {} account(s) changed since it was planned ({}); re-planned and applied as a new run",
                        approval.stale.len(),
                        approval
                            .stale
                            .iter()
                            .take(10)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                crate::sync_cmd::report(&approval.outcome, false);
                pushes.print();
            }
            Ok(approval.outcome.exit_code().max(pushes.exit))
        }
        RunsCommand::Discard { run } => {
            engine::discard(&state.quiet_context(runtime.handle()), run, &actor, None)
                .map_err(engine_failure)?;
            output::line(&format!("run {run} discarded: nothing of it was applied"));
            Ok(0)
        }
        RunsCommand::Undo { run, dry_run, json } => {
            let summary = engine::undo(
                &state.quiet_context(runtime.handle()),
                run,
                &actor,
                dry_run,
                None,
            )
            .map_err(engine_failure)?;
            if json {
                output::json(&summary);
            } else {
                output::line(&format!(
                    "{} run {run}: {}",
                    if dry_run { "would undo" } else { "undid" },
                    serde_json::to_string(&summary).unwrap_or_default()
                ));
            }
            Ok(0)
        }
        RunsCommand::List {
            limit,
            before,
            json,
        } => {
            let limit = listing::limit(limit);
            let mut list = output::List::new(json);
            if !json {
                list.line(&format!(
                    "{:>6}  {:<12} {:<6} {:<9} {:<11} {:<25} {:>8} {:>8} {:>8} {:>8} {:>8}",
                    "run",
                    "source",
                    "kind",
                    "trigger",
                    "status",
                    "started",
                    "seen",
                    "created",
                    "updated",
                    "skipped",
                    "deact."
                ));
            }
            let printed = listing::print_pages(
                limit,
                listing::PAGE,
                before,
                |before, n| {
                    state
                        .store
                        .list_runs_before(before.copied(), n)
                        .map_err(store_failure)
                },
                |r| r.id,
                |r| {
                    if json {
                        list.item(r);
                    } else {
                        let c = &r.counts;
                        list.line(&format!(
                            "{:>6}  {:<12} {:<6} {:<9} {:<11} {:<25} {:>8} {:>8} {:>8} {:>8} {:>8}",
                            r.id,
                            r.source,
                            r.kind.as_str(),
                            r.trigger.as_str(),
                            r.status.as_str(),
                            r.started_at.to_string(),
                            c.seen,
                            c.created,
                            c.updated,
                            c.skipped,
                            c.deactivated
                        ));
                    }
                },
            )?;
            list.finish();
            if let Some(last) = printed.cut_after {
                listing::note_cut(
                    printed.rows,
                    "runs",
                    &format!(
                        "rostersync runs list --before {last} --limit {}",
                        limit.unwrap_or(0)
                    ),
                );
            }
            Ok(0)
        }
        RunsCommand::Show {
            run,
            items,
            limit,
            offset,
            after,
            json,
        } => {
            let record = state
                .store
                .get_run(run)
                .map_err(store_failure)?
                .ok_or_else(|| Failure::config(format!("no run {run}")))?;
            // `--offset N` starts after the Nth item; pages go on by sourcedId from there.
            let start = match (after, offset) {
                (Some(a), _) => Some(Some(a)),
                (None, 0) => Some(None),
                (None, n) => state
                    .store
                    .run_items(run, items, 1, n - 1)
                    .map_err(store_failure)?
                    .pop()
                    .map(|i| Some(i.sourced_id)),
            };
            let mut list = if json {
                // The run's document with its items streamed into it.
                let head = serde_json::to_string(&record).map_err(|e| {
                    Failure::config(format!("cannot encode run {run} as JSON: {e}"))
                })?;
                let head = head.strip_suffix('}').unwrap_or(&head);
                let sep = if head.ends_with('{') { "" } else { "," };
                output::List::inside(&format!("{head}{sep}\"items\":"), "}")
            } else {
                output::List::new(false)
            };
            if !json {
                for l in run_head(&record) {
                    list.line(&l);
                }
            }
            let limit = listing::limit(limit);
            let printed = match start {
                // `--offset` past the last item.
                None => listing::Printed {
                    rows: 0,
                    cut_after: None,
                },
                Some(start) => listing::print_pages(
                    limit,
                    listing::PAGE,
                    start,
                    |after, n| {
                        state
                            .store
                            .run_items_after(run, items, after.map(String::as_str), n)
                            .map_err(store_failure)
                    },
                    |i| i.sourced_id.clone(),
                    |i| {
                        if json {
                            list.item(i);
                        } else {
                            list.line(&item_line(i));
                        }
                    },
                )?,
            };
            list.finish();
            if let Some(last) = printed.cut_after {
                listing::note_cut(
                    printed.rows,
                    "items",
                    &format!(
                        "rostersync runs show {run}{} --after {last} --limit {}",
                        items.map_or(String::new(), |o| format!(" --items {}", o.as_str())),
                        limit.unwrap_or(0)
                    ),
                );
            }
            Ok(0)
        }
    }
}

/// The text head of `runs show`: the run, its counts, error, safeguards, note and the
/// pull's warnings.
fn run_head(record: &store::RunRecord) -> Vec<String> {
    let c = &record.counts;
    let mut lines = vec![
        format!(
            "run {} · {} · {} · {} · {}{}",
            record.id,
            record.source,
            record.kind.as_str(),
            record.status.as_str(),
            record.started_at,
            record
                .finished_at
                .map_or(String::new(), |f| format!(" → {f}"))
        ),
        crate::output::counts_line(c),
    ];
    if let Some(e) = &record.error {
        lines.push(format!("error: {e}"));
    }
    for trip in &record.hold {
        lines.push(format!("held: {}", trip.detail));
    }
    if let Some(note) = &record.note {
        lines.push(format!("note: {note}"));
    }
    for w in &record.warnings {
        lines.push(format!("warning: {w}"));
    }
    lines
}

/// One item of `runs show` as text.
fn item_line(i: &store::RunItemRecord) -> String {
    let changes: Vec<String> = i
        .changes
        .iter()
        .map(|c| {
            format!(
                "{}: {} → {}",
                c.field,
                c.old.as_deref().unwrap_or("∅"),
                c.new.as_deref().unwrap_or("∅")
            )
        })
        .collect();
    format!(
        "  {:<11} {:<20} {:>8}  {}{}",
        i.outcome.as_str(),
        i.sourced_id,
        i.user_id.map_or("-".to_owned(), |u| format!("#{u}")),
        i.reason,
        if changes.is_empty() {
            String::new()
        } else {
            format!(" [{}]", changes.join("; "))
        }
    )
}
