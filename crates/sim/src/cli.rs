//! `rostersync sim …`: the simulator's command line, for the binary to mount as a
//! subcommand. Flags are parsed here into the library's validated configurations
//! ([`SimConfig`], [`DistrictConfig`], [`ExportOptions`]); everything else is the library.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::csv_export::{ExportOptions, export_csv};
use crate::diff::diff_days;
use crate::idp::entra::{self, EntraStandIn};
use crate::idp::google::{self, GoogleStandIn};
use crate::model::{District, DistrictConfig, Shape};
use crate::records::Version;
use crate::server::{
    AuthMode, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Faults, Server, SimConfig,
};

#[derive(clap::Subcommand, Clone)]
pub enum SimCommand {
    /// Serve a simulated district over OneRoster REST (Infinite Campus layout) until killed.
    /// Prints one JSON line: {"base_url": …, "token_url": …|null}.
    #[command(disable_version_flag = true)]
    Serve(ServeArgs),
    /// Write the district as a OneRoster CSV zip (bulk, or delta with --delta-from).
    #[command(disable_version_flag = true)]
    ExportCsv(ExportArgs),
    /// Report what changed in the district between two days.
    Diff(DiffArgs),
    /// Serve the district's students and staff as a Google Workspace domain (the stand-in
    /// of the Admin SDK's Directory API) until killed: an account source at a district's
    /// size. Writes the stand-in service account's key file to --key-file; prints one JSON
    /// line: {"api_url": …, "subject": …, "key_file": …, "accounts": N}.
    #[command(disable_version_flag = true)]
    ServeGoogle(ServeGoogleArgs),
    /// Serve the district's students and staff as a Microsoft Entra ID tenant (the stand-in
    /// of Microsoft Graph's users and delta, with its token endpoint) until killed. Writes
    /// the stand-in app's client secret to --secret-file; prints one JSON line:
    /// {"graph_url": …, "token_url": …, "tenant": …, "client_id": …, "secret_file": …,
    /// "accounts": N}.
    #[command(disable_version_flag = true)]
    ServeEntra(ServeEntraArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct DistrictArgs {
    /// People in the district on day 0 (students, staff and guardians), 50 to 3000000.
    #[arg(long, default_value_t = 1000)]
    pub users: u32,
    /// Random seed: the same seed, size and day give byte-identical data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The mix of roles and schedules: default, or nyc (at 3000000 people about 1 M
    /// students, 150 k staff, 1.9 M guardians and 8 M enrollments).
    #[arg(long, default_value = "default")]
    pub shape: Shape,
}

impl DistrictArgs {
    fn config(&self, day: u32) -> DistrictConfig {
        DistrictConfig {
            users: self.users,
            seed: self.seed,
            day,
            shape: self.shape,
            ..DistrictConfig::default()
        }
    }
}

#[derive(clap::Args, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub district: DistrictArgs,
    /// Days of churn since day 0 (2026-08-01).
    #[arg(long, default_value_t = 0)]
    pub day: u32,
    /// Port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// OneRoster version to speak: 1.1 or 1.2.
    #[arg(long, default_value = "1.1")]
    pub version: Version,
    /// oauth2, oauth1-sha256, oauth1-sha1 or none.
    #[arg(long, default_value = "oauth2")]
    pub auth: AuthMode,
    /// OAuth 2 client id / OAuth 1.0a consumer key clients must present.
    #[arg(long, default_value = DEFAULT_CLIENT_ID)]
    pub client_id: String,
    /// OAuth 2 client secret / OAuth 1.0a consumer secret.
    #[arg(long, default_value = DEFAULT_CLIENT_SECRET)]
    pub client_secret: String,
    /// Silently cap `limit` at this page size.
    #[arg(long)]
    pub max_page_size: Option<u32>,
    /// Faults to inject, e.g. 'latency=20ms,rate429=0.05,cap_page=250' (see docs/sim.md).
    #[arg(long, default_value = "")]
    pub faults: Faults,
    /// Serve withdrawn people and other removals as status=tobedeleted instead of
    /// letting them vanish (Infinite Campus lets them vanish).
    #[arg(long)]
    pub tobedeleted: bool,
}

#[derive(clap::Args, Debug, Clone)]
pub struct ExportArgs {
    /// Where to write the zip.
    pub out: PathBuf,
    #[command(flatten)]
    pub district: DistrictArgs,
    /// Days of churn since day 0 (2026-08-01).
    #[arg(long, default_value_t = 0)]
    pub day: u32,
    /// OneRoster version of the package: 1.1 or 1.2.
    #[arg(long, default_value = "1.1")]
    pub version: Version,
    /// Write a delta of everything changed after this day (removals as tobedeleted rows).
    #[arg(long)]
    pub delta_from: Option<u32>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct ServeGoogleArgs {
    #[command(flatten)]
    pub district: DistrictArgs,
    /// Days of churn since day 0 (2026-08-01).
    #[arg(long, default_value_t = 0)]
    pub day: u32,
    /// Where to write the service account's key file (a google-workspace source's
    /// `key_file`).
    #[arg(long)]
    pub key_file: PathBuf,
    /// One in this many students and staff with an email has an account (1: all).
    #[arg(long, default_value_t = 1)]
    pub every: usize,
}

#[derive(clap::Args, Debug, Clone)]
pub struct ServeEntraArgs {
    #[command(flatten)]
    pub district: DistrictArgs,
    /// Days of churn since day 0 (2026-08-01).
    #[arg(long, default_value_t = 0)]
    pub day: u32,
    /// Where to write the app's client secret (an entra-id source's `client_secret`).
    #[arg(long)]
    pub secret_file: PathBuf,
    /// One in this many students and staff with an email has an account (1: all).
    #[arg(long, default_value_t = 1)]
    pub every: usize,
}

#[derive(clap::Args, Debug, Clone)]
pub struct DiffArgs {
    /// The earlier day.
    #[arg(long)]
    pub from: u32,
    /// The later day.
    #[arg(long)]
    pub to: u32,
    #[command(flatten)]
    pub district: DistrictArgs,
    /// Print the counts as one JSON object (the stable interface).
    #[arg(long)]
    pub json: bool,
}

/// Runs one `sim` subcommand.
pub async fn run(command: SimCommand) -> anyhow::Result<()> {
    match command {
        SimCommand::Serve(args) => serve(args).await,
        SimCommand::ExportCsv(args) => export(args).await,
        SimCommand::Diff(args) => diff(args).await,
        SimCommand::ServeGoogle(args) => serve_google(args).await,
        SimCommand::ServeEntra(args) => serve_entra(args).await,
    }
}

async fn serve_google(args: ServeGoogleArgs) -> anyhow::Result<()> {
    let every = args.every;
    let accounts = from_district(args.district.config(args.day), move |district| {
        google::district_accounts(district, every, str::to_owned)
    })
    .await?;
    let count = accounts.len();
    let running = GoogleStandIn::start(accounts)
        .await
        .context("starting the Google stand-in")?;
    write_private(&args.key_file, running.key_file().as_bytes())
        .with_context(|| format!("writing the key file {}", args.key_file.display()))?;
    print_then_serve(serde_json::json!({
        "api_url": running.base_url(),
        "subject": google::STANDIN_ADMIN,
        "key_file": args.key_file,
        "accounts": count,
    }))
    .await
}

/// Writes a credential file, then makes it owner-only: the stand-ins' credentials are
/// public test values (built into this binary), but a file a district copies this from
/// should end so.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

async fn serve_entra(args: ServeEntraArgs) -> anyhow::Result<()> {
    let every = args.every;
    let users = from_district(args.district.config(args.day), move |district| {
        entra::district_users(district, every)
    })
    .await?;
    let count = users.len();
    let running = EntraStandIn::start(users)
        .await
        .context("starting the Entra stand-in")?;
    write_private(&args.secret_file, entra::CLIENT_SECRET.as_bytes())
        .with_context(|| format!("writing the secret file {}", args.secret_file.display()))?;
    print_then_serve(serde_json::json!({
        "graph_url": running.base_url(),
        "token_url": running.token_url(),
        "tenant": entra::TENANT,
        "client_id": entra::CLIENT_ID,
        "secret_file": args.secret_file,
        "accounts": count,
    }))
    .await
}

/// What `make` makes of the district `config` describes, generated off the runtime's
/// threads (a large district takes a while).
async fn from_district<T: Send + 'static>(
    config: DistrictConfig,
    make: impl FnOnce(&District) -> T + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(move || -> anyhow::Result<T> {
        Ok(make(&District::generate(&config)?))
    })
    .await
    .context("the generating task failed")?
}

/// Prints a server's one JSON line, then serves until SIGINT/SIGTERM.
async fn print_then_serve(line: serde_json::Value) -> anyhow::Result<()> {
    #[allow(clippy::print_stdout)]
    {
        println!("{line}");
    }
    wait_for_shutdown_signal().await
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = SimConfig {
        district: args.district.config(args.day),
        version: args.version,
        auth: args.auth,
        client_id: args.client_id,
        client_secret: args.client_secret,
        port: args.port,
        max_page_size: args.max_page_size,
        faults: args.faults,
        flag_deletions: args.tobedeleted,
        ..SimConfig::default()
    };
    let running = Server::start(config)
        .await
        .context("starting the simulated OneRoster provider")?;
    print_then_serve(serde_json::json!({
        "base_url": running.base_url(),
        "token_url": running.token_url(),
    }))
    .await?;
    running.stop().await;
    Ok(())
}

#[cfg(unix)]
async fn wait_for_shutdown_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    tokio::select! {
        interrupted = tokio::signal::ctrl_c() => interrupted.context("listening for Ctrl-C")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}

#[cfg(not(unix))]
async fn wait_for_shutdown_signal() -> anyhow::Result<()> {
    tokio::signal::ctrl_c()
        .await
        .context("listening for Ctrl-C")
}

async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let config = args.district.config(args.day);
    let options = ExportOptions {
        version: args.version,
        delta_from: args.delta_from,
    };
    let out = args.out.clone();
    let summary = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let district = District::generate(&config)?;
        Ok(export_csv(&district, &out, &options)?)
    })
    .await
    .context("the export task failed")?
    .with_context(|| format!("exporting the district to {}", args.out.display()))?;
    let line = serde_json::json!({
        "path": args.out,
        "version": args.version.as_str(),
        "mode": if args.delta_from.is_some() { "delta" } else { "bulk" },
        "day": args.day,
        "delta_from": args.delta_from,
        "rows": summary.rows,
    });
    #[allow(clippy::print_stdout)]
    {
        println!("{line}");
    }
    Ok(())
}

async fn diff(args: DiffArgs) -> anyhow::Result<()> {
    let config = args.district.config(args.from);
    let (from, to) = (args.from, args.to);
    let diff = tokio::task::spawn_blocking(move || diff_days(&config, from, to))
        .await
        .context("the diff task failed")??;
    let counts = diff.counts;
    #[allow(clippy::print_stdout)]
    if args.json {
        println!("{}", serde_json::to_string(&counts)?);
    } else {
        println!(
            "district changes from day {} to day {}",
            counts.from_day, counts.to_day
        );
        let kinds = [
            ("orgs", counts.orgs),
            ("academicSessions", counts.academic_sessions),
            ("courses", counts.courses),
            ("classes", counts.classes),
            ("users", counts.users),
            ("enrollments", counts.enrollments),
        ];
        println!(
            "{:<18} {:>9} {:>9} {:>9}",
            "", "added", "removed", "changed"
        );
        for (name, c) in kinds {
            println!(
                "{name:<18} {:>9} {:>9} {:>9}",
                c.added, c.removed, c.changed
            );
        }
        for (role, c) in &counts.users_by_role {
            println!(
                "  {role:<16} {:>9} {:>9} {:>9}",
                c.added, c.removed, c.changed
            );
        }
        println!(
            "email changes {}, role changes {}, school changes {}, grade changes {}, name changes {}, guardian links +{} -{}",
            counts.email_changes,
            counts.role_changes,
            counts.school_changes,
            counts.grade_changes,
            counts.name_changes,
            counts.guardian_links_added,
            counts.guardian_links_removed
        );
    }
    Ok(())
}
