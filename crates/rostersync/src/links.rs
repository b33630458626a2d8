//! The hard cases by hand: `sync-user`, `link`, `unlink`, `relink` (the User History
//! page's *Sync User*, *Remove link to SIS user* and *Change SIS user*).
//!
//! `link` and `relink` first ask the source whether it has the person
//! ([`engine::find_sis_person`]): a sourcedId the SIS does not know, or a person it is
//! removing, is refused before anything changes, and the message says who vouched for
//! the person (the SIS, or the last pull when the SIS could not be asked).

use clap::Args;
use jiff::Timestamp;
use rostersync_core::settings::Config;
use store::{Store, Trigger, UserRecord};

use crate::config_cmd::cli_actor;
use crate::env::{StateArgs, engine_failure, store_failure};
use crate::{Failure, output};

#[derive(Args)]
pub struct SyncUserArgs {
    /// An account: id, email or username.
    user: String,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct LinkArgs {
    /// An account: id, email or username.
    user: String,
    /// The SIS person's sourcedId.
    #[arg(long)]
    sis: String,
    /// The source (may be left out when only one is configured).
    #[arg(long)]
    source: Option<String>,
}

#[derive(Args)]
pub struct UnlinkArgs {
    /// An account: id, email or username.
    user: String,
    /// Only this source's link (default: every link of the account).
    #[arg(long)]
    source: Option<String>,
}

pub fn find(store: &Store, key: &str) -> Result<UserRecord, Failure> {
    store.find_user(key).map_err(store_failure)?.ok_or_else(|| {
        Failure::config(format!(
            "no account matches '{key}' (give an id, email or username)"
        ))
    })
}

/// The source a command means: `--source NAME`, else the only one configured.
pub fn which_source(config: &Config, given: Option<&str>) -> Result<String, Failure> {
    config
        .which_source(given)
        .map(|s| s.name.clone())
        .map_err(|no| Failure::config(no.describe("pass --source NAME")))
}

fn one_source(store: &Store, given: Option<String>) -> Result<String, Failure> {
    let config = store.load_config().map_err(store_failure)?;
    which_source(&config, given.as_deref())
}

pub fn sync_user(
    state_args: &StateArgs,
    args: SyncUserArgs,
    runtime: &tokio::runtime::Runtime,
) -> Result<u8, Failure> {
    let state = state_args.open()?;
    let user = find(&state.store, &args.user)?;
    let outcome = engine::sync_user(
        &state.quiet_context(runtime.handle()),
        user.user.id,
        Trigger::Cli,
        None,
    )
    .map_err(engine_failure)?;
    crate::sync_cmd::report(&outcome, args.json);
    Ok(outcome.exit_code())
}

/// Asks the source whether it has the person; refuses (exit 2) when it does not.
fn confirm(
    state: &crate::env::State,
    runtime: &tokio::runtime::Runtime,
    source: &str,
    sourced_id: &str,
) -> Result<engine::Found, Failure> {
    let found = engine::find_sis_person(&state.quiet_context(runtime.handle()), source, sourced_id)
        .map_err(engine_failure)?;
    match found.refusal() {
        Some(why) => Err(Failure::config(why)),
        None => Ok(found),
    }
}

/// `name (email)` of a confirmed person, for the message.
fn who(found: &engine::Found) -> String {
    match &found.person {
        Some(p) => match &p.email {
            Some(e) => format!(" ({}, {e})", p.name),
            None => format!(" ({})", p.name),
        },
        None => String::new(),
    }
}

/// What `link` and `relink` act on: the account `USER` names, the source, and the SIS
/// person `--sis` names, confirmed by the source.
struct Pairing {
    state: crate::env::State,
    user: UserRecord,
    source: String,
    found: engine::Found,
}

fn pairing(
    state_args: &StateArgs,
    args: LinkArgs,
    runtime: &tokio::runtime::Runtime,
) -> Result<Pairing, Failure> {
    let state = state_args.open()?;
    let user = find(&state.store, &args.user)?;
    let source = one_source(&state.store, args.source)?;
    let found = confirm(&state, runtime, &source, &args.sis)?;
    Ok(Pairing {
        state,
        user,
        source,
        found,
    })
}

pub fn link(
    state_args: &StateArgs,
    args: LinkArgs,
    runtime: &tokio::runtime::Runtime,
) -> Result<u8, Failure> {
    let Pairing {
        state,
        user,
        source,
        found,
    } = pairing(state_args, args, runtime)?;
    state
        .store
        .link_user(
            &source,
            &found.sourced_id,
            user.user.id,
            &cli_actor(),
            Timestamp::now(),
        )
        .map_err(store_failure)?;
    output::line(&format!(
        "linked account #{} to SIS person {}{} ({source}; {}); the next sync (or `rostersync sync-user {}`) updates its fields",
        user.user.id,
        found.sourced_id,
        who(&found),
        found.confirmation(),
        user.user.id
    ));
    Ok(0)
}

pub fn unlink(state_args: &StateArgs, args: UnlinkArgs) -> Result<u8, Failure> {
    let state = state_args.open()?;
    let store = &state.store;
    let user = find(store, &args.user)?;
    let removed = store
        .unlink_user(
            user.user.id,
            args.source.as_deref(),
            &cli_actor(),
            Timestamp::now(),
        )
        .map_err(store_failure)?;
    for (source, sourced_id) in removed {
        output::line(&format!(
            "removed the link from account #{} to SIS person {sourced_id} ({source}); syncs will not link them again until you do",
            user.user.id
        ));
    }
    Ok(0)
}

pub fn relink(
    state_args: &StateArgs,
    args: LinkArgs,
    runtime: &tokio::runtime::Runtime,
) -> Result<u8, Failure> {
    let Pairing {
        state,
        user,
        source,
        found,
    } = pairing(state_args, args, runtime)?;
    let old = state
        .store
        .relink_user(
            user.user.id,
            &source,
            &found.sourced_id,
            &cli_actor(),
            Timestamp::now(),
        )
        .map_err(store_failure)?;
    output::line(&format!(
        "account #{} now links to SIS person {}{} instead of {old} ({source}; {})",
        user.user.id,
        found.sourced_id,
        who(&found),
        found.confirmation()
    ));
    Ok(0)
}
