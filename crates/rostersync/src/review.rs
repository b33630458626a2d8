//! The hard cases: the review queue, merges, and the reports that find what to merge.

use clap::{Args, Subcommand};
use jiff::Timestamp;
use store::CaseResolution;

use crate::config_cmd::cli_actor;
use crate::env::{StateArgs, store_failure};
use crate::links::find;
use crate::{Failure, output};

#[derive(Subcommand)]
pub enum ReviewCommand {
    /// Matches a person must decide: several candidates, or a known email on a new
    /// sourcedId while the old link is still active.
    List {
        /// open (default), resolved, closed, or all.
        #[arg(long, default_value = "open")]
        status: String,
        #[arg(long, default_value_t = 200)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Decide a case: link the person to an account, make them a new one, or ignore them.
    /// The decision sticks on every later sync.
    Resolve(ResolveArgs),
}

#[derive(Args)]
#[command(group = clap::ArgGroup::new("how").required(true).args(["link", "create", "ignore"]))]
pub struct ResolveArgs {
    case: i64,
    /// Link the person to this account (id, email or username).
    #[arg(long)]
    link: Option<String>,
    /// Make a new account for the person.
    #[arg(long)]
    create: bool,
    /// Leave the person alone.
    #[arg(long)]
    ignore: bool,
}

#[derive(Args)]
pub struct MergeArgs {
    /// The account that goes (kept as a tombstone pointing at the survivor).
    loser: String,
    /// The account that stays.
    #[arg(long)]
    into: String,
    #[arg(long)]
    dry_run: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
pub enum ReportCommand {
    /// Active accounts with no SIS link, with suggested SIS people and a score.
    Unlinked {
        #[arg(long, default_value_t = 500)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Groups of accounts that are probably one person, with the evidence.
    Duplicates {
        #[arg(long, default_value_t = 500)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Active accounts whose SIS person is inactive or gone.
    Stale {
        #[arg(long, default_value_t = 500)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
}

/// Prints rows as JSON, or one compact JSON line per row for people.
fn rows<T: serde::Serialize>(items: &[T], json: bool, empty: &str) {
    if json {
        output::json(&items);
        return;
    }
    if items.is_empty() {
        output::line(empty);
    }
    for item in items {
        output::line(&serde_json::to_string(item).unwrap_or_default());
    }
}

pub fn review(state_args: &StateArgs, cmd: ReviewCommand) -> Result<u8, Failure> {
    let state = state_args.open()?;
    match cmd {
        ReviewCommand::List {
            status,
            limit,
            json,
        } => {
            let filter = match status.as_str() {
                "all" => None,
                s @ ("open" | "resolved" | "closed") => Some(s),
                other => {
                    return Err(Failure::config(format!(
                        "--status '{other}': use open, resolved, closed or all"
                    )));
                }
            };
            let cases = state
                .store
                .review_cases(filter, None, limit)
                .map_err(store_failure)?;
            rows(&cases, json, "no review cases");
            Ok(0)
        }
        ReviewCommand::Resolve(args) => {
            let resolution = match (&args.link, args.create, args.ignore) {
                (Some(user), _, _) => {
                    CaseResolution::Link(find(state.store.as_ref(), user)?.user.id)
                }
                (None, true, _) => CaseResolution::Create,
                (None, false, true) => CaseResolution::Ignore,
                _ => {
                    return Err(Failure::config(
                        "say how: --link USER, --create or --ignore",
                    ));
                }
            };
            state
                .store
                .resolve_case(args.case, resolution, &cli_actor(), Timestamp::now())
                .map_err(store_failure)?;
            output::line(&format!(
                "case {} resolved; later syncs keep the decision",
                args.case
            ));
            Ok(0)
        }
    }
}

pub fn merge(state_args: &StateArgs, args: MergeArgs) -> Result<u8, Failure> {
    let state = state_args.open()?;
    let store = state.store.as_ref();
    let loser = find(store, &args.loser)?.user.id;
    let survivor = find(store, &args.into)?.user.id;
    let summary = store
        .merge_accounts(
            loser,
            survivor,
            &cli_actor(),
            Timestamp::now(),
            args.dry_run,
        )
        .map_err(store_failure)?;
    if args.json {
        output::json(&summary);
    } else {
        output::line(&format!(
            "{} account #{loser} into #{survivor}: {}",
            if args.dry_run {
                "would merge"
            } else {
                "merged"
            },
            serde_json::to_string(&summary).unwrap_or_default()
        ));
    }
    Ok(0)
}

pub fn report(state_args: &StateArgs, cmd: ReportCommand) -> Result<u8, Failure> {
    let state = state_args.open()?;
    let store = state.store.as_ref();
    match cmd {
        ReportCommand::Unlinked { limit, json } => rows(
            &store.report_unlinked(None, limit).map_err(store_failure)?,
            json,
            "no unlinked active accounts",
        ),
        ReportCommand::Duplicates { limit, json } => rows(
            &store
                .report_duplicates(None, limit)
                .map_err(store_failure)?,
            json,
            "no likely duplicates",
        ),
        ReportCommand::Stale { limit, json } => rows(
            &store.report_stale(None, limit).map_err(store_failure)?,
            json,
            "no stale accounts",
        ),
    }
    Ok(0)
}
