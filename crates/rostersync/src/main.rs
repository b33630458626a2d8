//! `rostersync`: the command line. Thin on purpose: it parses flags into validated
//! requests and calls the library crates; every rule lives elsewhere.
//!
//! Exit codes (documented in docs/cli.md): 0 done; 1 finished but with record errors, or
//! held for approval; 2 a configuration, authentication or source failure.

mod accounts;
mod backup_cmd;
mod bench;
mod config_cmd;
mod console_cmd;
mod doctor_cmd;
mod env;
mod inspect;
mod links;
mod listing;
mod locations;
mod output;
mod push_cmd;
mod review;
mod runs;
mod sync_cmd;
mod users;

use std::process::ExitCode;

/// mimalloc instead of the system allocator: a sync makes and frees millions of small
/// strings, and glibc's malloc spent about a third of a run consolidating and unlinking
/// chunks (docs/performance.md). It also stands in for C's `malloc` (the `override`
/// feature), so SQLite's page cache is mimalloc's too: freed after a large apply into
/// glibc's heap, its 256 MiB stayed resident for the rest of a `serve` process.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "rostersync",
    version,
    about = "Keeps a help-desk user directory in step with a district's SIS over OneRoster"
)]
struct Cli {
    #[command(flatten)]
    state: env::StateArgs,
    /// More log output on stderr (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Create the data directory, the master key and the database (safe to run twice);
    /// the first time, also the console owner `admin`, whose password it prints once.
    Init,
    /// A simulated district synced into a fresh data directory, and the console on it.
    Demo(console_cmd::DemoArgs),
    /// Serve the admin console, the JSON API and the scheduler.
    Serve(console_cmd::ServeArgs),
    /// Console accounts.
    #[command(subcommand)]
    Admin(console_cmd::AdminCommand),
    /// API tokens for scripts and the help desk.
    #[command(subcommand)]
    Token(console_cmd::TokenCommand),
    /// Import or export the settings as TOML.
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
    /// Accounts created outside the SIS (single sign-on).
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// Sync a source into the directory.
    Sync(sync_cmd::SyncArgs),
    /// Push the directory to a SCIM target (a help desk, another app).
    Push(push_cmd::PushArgs),
    /// Sync one account from its SIS person.
    SyncUser(links::SyncUserArgs),
    /// Link an account to a SIS person by hand.
    Link(links::LinkArgs),
    /// Remove an account's link to its SIS person (syncs will not link them again).
    Unlink(links::UnlinkArgs),
    /// Link an account to a different SIS person (Change SIS user).
    Relink(links::LinkArgs),
    /// The directory's accounts.
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// Matches a person must decide.
    #[command(subcommand)]
    Review(review::ReviewCommand),
    /// Merge two accounts of one person (the SIS link, groups and history move).
    Merge(review::MergeArgs),
    /// Unlinked, duplicate and stale accounts.
    #[command(subcommand)]
    Report(review::ReportCommand),
    /// SIS schools and their directory locations.
    #[command(subcommand)]
    Locations(locations::LocationsCommand),
    /// Sync history.
    #[command(subcommand)]
    Runs(runs::RunsCommand),
    /// Write the whole directory to one file: a consistent snapshot, while `serve` runs.
    Backup(backup_cmd::BackupArgs),
    /// Check the installation and say what to do about each finding.
    Doctor(doctor_cmd::DoctorArgs),
    /// Restore a backup into an empty installation (either database, not `init`ed).
    Restore(backup_cmd::RestoreArgs),
    /// Read every rostering collection from a source and report what it holds.
    Inspect(inspect::InspectArgs),
    /// Sync a simulated district and print wall time, records/s and peak memory per phase.
    Bench(bench::BenchArgs),
    /// A simulated OneRoster district: serve it, export it as CSV, diff two days.
    #[command(subcommand)]
    Sim(sim::cli::SimCommand),
}

#[derive(Subcommand)]
enum AccountsCommand {
    /// Create accounts from a CSV, as single sign-on would have.
    Import(accounts::AccountsImportArgs),
}

/// A failure with the exit code it deserves.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    /// Configuration, authentication or source failure: exit 2.
    pub fn config(message: impl Into<String>) -> Failure {
        Failure {
            code: 2,
            message: message.into(),
        }
    }
}

fn main() -> ExitCode {
    let wants_json = std::env::args().any(|a| a == "--json");
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            output::error(&format!("cannot start the async runtime: {e}"));
            return ExitCode::from(2);
        }
    };
    let state = &cli.state;
    // Store calls stay off the async runtime (the PostgreSQL client runs its own).
    let result = match cli.command {
        Command::Init => init(state),
        Command::Demo(args) => console_cmd::demo(args, &runtime),
        Command::Serve(args) => console_cmd::serve(state, args, &runtime),
        Command::Admin(cmd) => console_cmd::admin(state, cmd),
        Command::Token(cmd) => console_cmd::token(state, cmd),
        Command::Config(cmd) => config_cmd::run(state, cmd, &runtime),
        Command::Accounts(AccountsCommand::Import(args)) => accounts::run(state, args),
        Command::Sync(args) => sync_cmd::run(state, args, &runtime),
        Command::Push(args) => push_cmd::run(state, args, &runtime),
        Command::SyncUser(args) => links::sync_user(state, args, &runtime),
        Command::Link(args) => links::link(state, args, &runtime),
        Command::Unlink(args) => links::unlink(state, args),
        Command::Relink(args) => links::relink(state, args, &runtime),
        Command::Users(cmd) => users::run(state, cmd),
        Command::Locations(cmd) => locations::run(state, cmd),
        Command::Runs(cmd) => runs::run(state, cmd, &runtime),
        Command::Backup(args) => backup_cmd::backup(state, args),
        Command::Restore(args) => backup_cmd::restore(state, args),
        Command::Doctor(args) => doctor_cmd::run(state, args, &runtime),
        Command::Review(cmd) => review::review(state, cmd),
        Command::Merge(args) => review::merge(state, args),
        Command::Report(cmd) => review::report(state, cmd),
        Command::Inspect(args) => runtime.block_on(inspect::run(args)),
        Command::Bench(args) => bench::run(args, &runtime),
        Command::Sim(cmd) => runtime
            .block_on(sim::cli::run(cmd))
            .map(|()| 0)
            .map_err(|e| Failure::config(format!("{e:#}"))),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            output::error(&f.message);
            // A script that asked for JSON gets JSON, refusals included.
            if wants_json {
                output::json(&serde_json::json!({
                    "error": {"message": f.message, "exit_code": f.code}
                }));
            }
            ExitCode::from(f.code)
        }
    }
}

fn init(state: &env::StateArgs) -> Result<u8, Failure> {
    let (opened, fresh) = state.init()?;
    if fresh {
        output::line(&format!("initialised {}", state.describe()));
    } else {
        output::line(&format!("already initialised: {}", state.describe()));
    }
    if let Some(password) = console_cmd::first_owner(&opened.store)? {
        output::line(&format!(
            "console owner: admin, password {password} (shown once; change it with `rostersync admin passwd admin`)"
        ));
    }
    Ok(0)
}

fn init_logging(verbose: u8, format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
