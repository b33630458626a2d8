//! `rostersync push`: one push of the directory to a SCIM target.

use clap::Args;
use engine::{Progress, PushRequest};
use store::Trigger;

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
        output::json(&output::to_value(&outcome));
        return Ok(outcome.exit_code());
    }
    let run = output::run_label(outcome.run_id);
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
    output::hold_lines(
        &outcome.hold,
        outcome.dry_run,
        outcome.status,
        outcome.run_id,
        "sent",
    );
    output::first_lines(&outcome.requests, |r| format!("  would send {r}"));
    Ok(outcome.exit_code())
}
