//! The hard cases: the review queue, merges, and the reports that find what to merge.

use clap::{Args, Subcommand};
use jiff::Timestamp;
use rostersync_core::directory::AccountId;
use store::{CaseResolution, ReviewCaseId};

use crate::config_cmd::cli_actor;
use crate::env::{StateArgs, store_failure};
use crate::links::find;
use crate::{Failure, listing, output};

#[derive(Subcommand)]
pub enum ReviewCommand {
    /// Matches a person must decide: several candidates, or a known email on a new
    /// sourcedId while the old link is still active.
    List {
        /// open (default), resolved, closed, or all.
        #[arg(long, default_value = "open")]
        status: String,
        /// At most this many cases (0: every one, the default); stderr says when more are left.
        #[arg(long)]
        limit: Option<u32>,
        /// Only cases after this id (paging).
        #[arg(long)]
        after: Option<ReviewCaseId>,
        #[arg(long)]
        json: bool,
    },
    /// Decide a case: link the person to an account, make them a new one, ignore them, or
    /// (an email or username another account has) keep the two apart. The decision sticks
    /// on every later sync.
    Resolve(ResolveArgs),
}

#[derive(Args)]
#[command(group = clap::ArgGroup::new("how").required(true).args(["link", "create", "ignore", "keep_apart"]))]
pub struct ResolveArgs {
    case: ReviewCaseId,
    /// Link the person to this account (id, email or username).
    #[arg(long)]
    link: Option<String>,
    /// Make a new account for the person.
    #[arg(long)]
    create: bool,
    /// Leave the person alone.
    #[arg(long)]
    ignore: bool,
    /// An email or username another account has (`identity_taken`): the two are different
    /// people. Later syncs still never give the person's account that value, and do not
    /// ask again.
    #[arg(long)]
    keep_apart: bool,
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
    Unlinked(ReportArgs),
    /// Groups of accounts that are probably one person, with the evidence.
    Duplicates(ReportArgs),
    /// Active accounts whose SIS person is inactive or gone.
    Stale(ReportArgs),
}

#[derive(Args)]
pub struct ReportArgs {
    /// At most this many rows (0: every one, the default); stderr says when more are left.
    #[arg(long)]
    limit: Option<u32>,
    /// Only accounts after this id (paging; a duplicates group by its first account).
    #[arg(long)]
    after: Option<AccountId>,
    #[arg(long)]
    json: bool,
}

/// Rows a report reads at a time: each page of some reports reads every SIS person or
/// every account's name once, so pages are large.
const REPORT_PAGE: u32 = 5000;

/// Prints a keyed list as a JSON array, or one compact JSON line per row for people, page
/// by page ([`listing::print_pages`]); a note on stderr when the limit cut it.
#[allow(clippy::too_many_arguments)]
fn rows<T: serde::Serialize, K: PartialEq + Clone + std::fmt::Display>(
    limit: Option<u32>,
    page: u32,
    after: Option<K>,
    json: bool,
    empty: &str,
    what: &str,
    next: &str,
    fetch: impl FnMut(Option<&K>, u32) -> Result<Vec<T>, Failure>,
    key: impl Fn(&T) -> K,
) -> Result<(), Failure> {
    let limit = listing::limit(limit);
    let mut list = output::List::new(json);
    let printed = listing::print_pages(limit, page, after, fetch, key, |row| {
        if json {
            list.item(row);
        } else {
            list.line(&serde_json::to_string(row).unwrap_or_default());
        }
    })?;
    if !json && printed.rows == 0 {
        list.line(empty);
    }
    list.finish();
    if let Some(last) = printed.cut_after {
        listing::note_cut(
            printed.rows,
            what,
            &format!("{next} --after {last} --limit {}", limit.unwrap_or(0)),
        );
    }
    Ok(())
}

pub fn review(state_args: &StateArgs, cmd: ReviewCommand) -> Result<u8, Failure> {
    let state = state_args.open()?;
    match cmd {
        ReviewCommand::List {
            status,
            limit,
            after,
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
            rows(
                limit,
                listing::PAGE,
                after,
                json,
                "no review cases",
                "review cases",
                &format!("rostersync review list --status {status}"),
                |after, n| {
                    state
                        .store
                        .review_cases(filter, after.copied(), n)
                        .map_err(store_failure)
                },
                |c| c.id,
            )?;
            Ok(0)
        }
        ReviewCommand::Resolve(args) => {
            let resolution = match (&args.link, args.create, args.ignore, args.keep_apart) {
                (Some(user), _, _, _) => CaseResolution::Link(find(&state.store, user)?.user.id),
                (None, true, _, _) => CaseResolution::Create,
                (None, false, true, _) => CaseResolution::Ignore,
                (None, false, false, true) => CaseResolution::KeepApart,
                _ => {
                    return Err(Failure::config(
                        "say how: --link USER, --create, --ignore or --keep-apart",
                    ));
                }
            };
            state
                .store
                .resolve_case(args.case, resolution, &cli_actor(), Timestamp::now())
                .map_err(store_failure)?;
            let words = state
                .store
                .review_case(args.case)
                .map_err(store_failure)?
                .and_then(|c| c.resolution)
                .unwrap_or_default();
            output::line(&format!(
                "case {} resolved: {words}; later syncs keep the decision",
                args.case
            ));
            Ok(0)
        }
    }
}

pub fn merge(state_args: &StateArgs, args: MergeArgs) -> Result<u8, Failure> {
    let state = state_args.open()?;
    let store = &state.store;
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
    let store = &state.store;
    match cmd {
        ReportCommand::Unlinked(a) => rows(
            a.limit,
            REPORT_PAGE,
            a.after,
            a.json,
            "no unlinked active accounts",
            "accounts",
            "rostersync report unlinked",
            |after, n| {
                store
                    .report_unlinked(after.copied(), n)
                    .map_err(store_failure)
            },
            |a| a.id,
        )?,
        ReportCommand::Duplicates(a) => rows(
            a.limit,
            REPORT_PAGE,
            a.after,
            a.json,
            "no likely duplicates",
            "groups",
            "rostersync report duplicates",
            |after, n| {
                store
                    .report_duplicates(after.copied(), n)
                    .map_err(store_failure)
            },
            |g| g.accounts.first().map_or(AccountId(0), |a| a.id),
        )?,
        ReportCommand::Stale(a) => rows(
            a.limit,
            REPORT_PAGE,
            a.after,
            a.json,
            "no stale accounts",
            "rows",
            "rostersync report stale",
            |after, n| store.report_stale(after.copied(), n).map_err(store_failure),
            |a| a.id,
        )?,
    }
    Ok(0)
}
