//! `rostersync push`: one push of the directory to a SCIM target.

use clap::Args;
use engine::{Progress, PushRequest};
use store::{RunStatus, Trigger};

use crate::env::{StateArgs, engine_failure};
use crate::{Failure, output};

#[derive(Args)]
pub struct PushArgs {
    /// The target to push to (a `[[target]]` of the settings).
    #[arg(long)]
    target: String,
    /// Read the target (to find users it already has) and list the writes a push would
    /// send; send and record nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(
    state_args: &StateArgs,
    args: PushArgs,
    runtime: &tokio::runtime::Runtime,
) -> Result<u8, Failure> {
    let state = state_args.open()?;
    let reporter = output::Progress::new();
    let progress = |p: Progress| reporter.show(&p);
    let ctx = state.context(runtime.handle(), &progress);
    let req = PushRequest {
        target: args.target,
        dry_run: args.dry_run,
        trigger: Trigger::Cli,
    };
    let outcome = engine::push(&ctx, &req, None).map_err(engine_failure)?;
    reporter.finish();
    if args.json {
        output::json(&serde_json::to_value(&outcome).unwrap_or_default());
        return Ok(outcome.exit_code());
    }
    let run = outcome
        .run_id
        .map_or("dry run".to_owned(), |id| format!("run {id}"));
    output::line(&format!(
        "{run} · target {} · push · {}{}",
        outcome.target,
        outcome.status.as_str(),
        if outcome.complete {
            ""
        } else {
            " · INCOMPLETE"
        }
    ));
    output::line(&output::counts_line(&outcome.counts));
    output::line(&format!(
        "{} HTTP request(s) to the target",
        outcome.http_requests
    ));
    if let Some(e) = &outcome.error {
        output::line(&format!("error: {e}"));
    }
    for trip in &outcome.hold {
        output::line(&format!(
            "{}: {}",
            if outcome.dry_run {
                "would be held"
            } else {
                "held for approval"
            },
            trip.detail
        ));
    }
    if outcome.status == RunStatus::Held
        && let Some(run) = outcome.run_id
    {
        output::line(&format!(
            "nothing was sent: review it with `rostersync runs show {run}`, then `rostersync runs approve {run}` or `rostersync runs discard {run}`"
        ));
    }
    const SHOWN: usize = 50;
    for r in outcome.requests.iter().take(SHOWN) {
        output::line(&format!("  would send {r}"));
    }
    if outcome.requests.len() > SHOWN {
        output::line(&format!(
            "  … and {} more (use --json for all)",
            outcome.requests.len() - SHOWN
        ));
    }
    Ok(outcome.exit_code())
}
