//! `rostersync bench`: sync a simulated district and print what it cost, phase by phase,
//! side by side for SQLite and PostgreSQL, and with `--floor` beside the cheapest honest
//! pass over the same bytes ([`floor`]).
//!
//! The district is served by a child `rostersync sim serve` process, so its memory is not
//! counted in the sync's peak RSS; the sync itself runs in this process through the same
//! engine the CLI uses. A phase that errors or a run that is held ends that district and
//! backend (the later phases build on it) and makes `bench` exit 1 once the rest has run.
//!
//! With `--csv` the sync (and the floor) read the district from a OneRoster CSV package
//! instead, written by a child `rostersync sim export-csv` before the phases that read it
//! (the whole district at day 0, again after the churn, and a delta package for the
//! delta); the simulator still serves the counts and keeps the days.

mod floor;
mod floor_csv;
mod store_floor;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use clap::Args;
use engine::{Context, Progress, SyncRequest};
use jiff::Timestamp;
use rostersync_core::plan::{Counts, SyncKind};
use rostersync_core::settings::Config;
use serde::{Deserialize, Serialize};
use sim::Shape;
use store::RunStatus;
use store::Trigger;
use store::keyring::Keyring;

use crate::{Failure, output};

#[derive(Args)]
pub struct BenchArgs {
    /// District sizes (people), comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [10_000u32, 100_000])]
    users: Vec<u32>,
    /// Backends to measure: sqlite, postgres.
    #[arg(long, value_delimiter = ',', default_values_t = ["sqlite".to_owned(), "postgres".to_owned()])]
    backends: Vec<String>,
    /// PostgreSQL admin URL; each run gets a fresh schema. Default: $ROSTERSYNC_TEST_POSTGRES.
    #[arg(long, env = "ROSTERSYNC_BENCH_POSTGRES", hide_env_values = true)]
    postgres: Option<String>,
    /// Records per page asked of the simulated server.
    #[arg(long, default_value_t = 5000)]
    page_size: u32,
    /// Requests in flight to the simulated server (the source's `concurrency`, 1 to 5). The
    /// default is the floor's four, so the sync and its floor make the same requests; the
    /// product's default is 1.
    #[arg(long, default_value_t = floor::IN_FLIGHT as u8, value_parser = clap::value_parser!(u8).range(1..=5))]
    concurrency: u8,
    /// The simulated district's mix of roles: default, or nyc (at 3000000 people about 1 M
    /// students, 150 k staff, 1.9 M guardians and 8 M enrollments).
    #[arg(long, default_value = "default")]
    shape: Shape,
    /// Also time the floor: the same requests (4 in flight) parsed into borrowed structs
    /// and inserted with their hashes into primary-key-only tables, then the same fetch
    /// hashed and compared against them; and, after the first import, the store's floor:
    /// the database alone copying the directory it made into an empty one of the same
    /// schema.
    #[arg(long)]
    floor: bool,
    /// Read the district from a OneRoster CSV package (`sim export-csv`, written before
    /// the phases that read it and not timed) instead of over REST; the floor reads the
    /// same package.
    #[arg(long)]
    csv: bool,
    /// How many times the no-change re-sync (and with `--floor` its floor) runs, the two
    /// taking turns after the first import; each is reported by its run of median wall
    /// time, with every run's wall time beside it (JSON `round_walls_s`). On a shared
    /// machine one run of each can differ by a sixth from the next.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=9))]
    rounds: u8,
    /// After the SIS phases, also read an account source of the same district at its
    /// last day (`sim serve-google` or `sim serve-entra` in a child process: every
    /// student and staff member with an email), its first sync (linking each account to
    /// the person's) and a no-change re-sync.
    #[arg(long)]
    accounts: Option<AccountSource>,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

/// An account source the bench reads (`--accounts`).
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum AccountSource {
    Google,
    Entra,
}

impl AccountSource {
    fn as_str(self) -> &'static str {
        match self {
            AccountSource::Google => "google",
            AccountSource::Entra => "entra",
        }
    }
}

#[derive(Serialize)]
struct Row {
    backend: String,
    people: u32,
    phase: String,
    wall_s: f64,
    records_per_s: f64,
    peak_rss_mb: f64,
    /// Resident when the phase began. The kernel's peak counter restarts from what is
    /// resident, so a phase that stays below what the previous one left reports that as
    /// its peak: `peak_rss_mb` equal to this says so.
    start_rss_mb: f64,
    /// A sync's peak by stage (0 for a floor's rows and a stage the run did not reach):
    /// up to planning (the pull, with the links view read beside it), planning (to the
    /// apply, or to the plan made again), and the apply (with a large plan's second
    /// planning pass). `peak_rss_mb` is the largest.
    peak_pull_mb: f64,
    peak_plan_mb: f64,
    peak_apply_mb: f64,
    /// Where the wall time went: reading the source, loading the directory, planning (with
    /// the safeguards), applying and recording.
    pull_s: f64,
    /// CPU the simulated server spent in the phase (it shares the machine's cores, so
    /// part of `pull_s` is the server making pages, not the sync reading them).
    sim_cpu_s: f64,
    load_s: f64,
    plan_s: f64,
    apply_s: f64,
    counts: Counts,
    /// Active enrollments the simulated district served in the phase.
    enrollments: u64,
    people_by_role: PeopleByRole,
    /// This row's wall time ÷ its floor's (first import and no-change re-sync, with
    /// `--floor`).
    #[serde(skip_serializing_if = "Option::is_none")]
    floor_ratio: Option<f64>,
    /// A phase run several times (`--rounds`): each run's wall time, in the order run;
    /// the row is the run of median wall time.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    round_walls_s: Vec<f64>,
}

/// Of one phase's runs (not none), the run of median wall time, with every run's wall
/// time.
fn median_run(mut runs: Vec<Row>) -> Option<Row> {
    let walls: Vec<f64> = runs.iter().map(|r| r.wall_s).collect();
    runs.sort_by(|a, b| a.wall_s.total_cmp(&b.wall_s));
    let mut median = runs.into_iter().nth(walls.len() / 2)?;
    if walls.len() > 1 {
        median.round_walls_s = walls;
    }
    Some(median)
}

/// Active people of the simulated district by role.
#[derive(Debug, Default, Clone, Copy, Serialize)]
struct PeopleByRole {
    students: u64,
    /// Teachers, aides, counselors and administrators (teachers included).
    staff: u64,
    teachers: u64,
    /// Parents, guardians and relatives.
    guardians: u64,
}

/// What `/_sim/status` says the district holds.
#[derive(Debug, Deserialize)]
struct SimStatus {
    counts: sim::Counts,
}

impl SimStatus {
    fn people(&self) -> PeopleByRole {
        let c = &self.counts;
        PeopleByRole {
            students: c.students,
            staff: c.users.saturating_sub(c.students + c.guardians),
            teachers: c.teachers,
            guardians: c.guardians,
        }
    }
}

/// When each step of a run began, from the engine's progress events.
#[derive(Default)]
struct Steps {
    last_pull: Option<Instant>,
    planning: Option<Instant>,
    applying: Option<Instant>,
    /// The peak of each stage that ended (the kernel's counter is reset as each begins).
    peak_pull_mb: f64,
    peak_plan_mb: f64,
}

impl Steps {
    /// Each stage's peak, the one running now (what the counter says) included.
    fn peaks(&self) -> [f64; 3] {
        let now = peak_rss_mb();
        match (self.planning, self.applying) {
            (_, Some(_)) => [self.peak_pull_mb, self.peak_plan_mb, now],
            (Some(_), None) => [self.peak_pull_mb, now, 0.0],
            (None, None) => [now, 0.0, 0.0],
        }
    }
}

/// A child `rostersync sim …` process, killed on drop.
struct Spawned(Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `rostersync sim serve` child and where it serves.
struct SimProcess {
    child: Spawned,
    base_url: String,
    token_url: String,
}

/// Starts this program with `args` (a `sim serve…`): the child, and the JSON line it
/// printed once it serves.
fn spawn_serving(args: &[&str]) -> Result<(Spawned, serde_json::Value), Failure> {
    let exe = std::env::current_exe()
        .map_err(|e| Failure::config(format!("cannot find this program: {e}")))?;
    let mut child = Spawned(
        Command::new(exe)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| Failure::config(format!("cannot start the simulator: {e}")))?,
    );
    let stdout = child
        .0
        .stdout
        .take()
        .ok_or_else(|| Failure::config("the simulator has no stdout"))?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| Failure::config(format!("the simulator did not start: {e}")))?;
    let v = serde_json::from_str(&line).map_err(|e| {
        Failure::config(format!("the simulator printed '{}': {e}", line.trim_end()))
    })?;
    Ok((child, v))
}

fn start_sim(users: u32, shape: Shape) -> Result<SimProcess, Failure> {
    let users = users.to_string();
    let (child, v) = spawn_serving(&[
        "sim",
        "serve",
        "--users",
        &users,
        "--seed",
        "1",
        "--auth",
        "oauth2",
        "--shape",
        shape.as_str(),
    ])?;
    let text = |k: &str| v[k].as_str().map(str::to_owned).unwrap_or_default();
    Ok(SimProcess {
        base_url: text("base_url"),
        token_url: text("token_url"),
        child,
    })
}

/// The account source `--accounts` names, served by a child `rostersync sim serve-google`
/// or `serve-entra` with the district on `day`: the child (killed on drop), the settings
/// of a source named `accounts` that reads it, and that source's secret (the key file,
/// the client secret) to store encrypted.
fn start_accounts(
    kind: AccountSource,
    users: u32,
    shape: Shape,
    day: u32,
    dir: &std::path::Path,
) -> Result<(Spawned, String, String), Failure> {
    let (users, day) = (users.to_string(), day.to_string());
    let district = [
        "--users",
        &users,
        "--seed",
        "1",
        "--shape",
        shape.as_str(),
        "--day",
        &day,
    ];
    let (command, secret_arg, secret_path) = match kind {
        AccountSource::Google => ("serve-google", "--key-file", dir.join("sa.json")),
        AccountSource::Entra => ("serve-entra", "--secret-file", dir.join("entra-secret")),
    };
    let path = secret_path.display().to_string();
    let mut args = vec!["sim", command];
    args.extend(district);
    args.extend([secret_arg, &path]);
    let (served, v) = spawn_serving(&args)?;
    let text = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    let toml = match kind {
        AccountSource::Google => format!(
            "[[source]]\nname = \"accounts\"\nkind = \"google-workspace\"\nsubject = \"{}\"\napi_url = \"{}\"\n",
            text("subject"),
            text("api_url")
        ),
        AccountSource::Entra => format!(
            "[[source]]\nname = \"accounts\"\nkind = \"entra-id\"\ntenant = \"{}\"\nclient_id = \"{}\"\ntoken_url = \"{}\"\ngraph_url = \"{}\"\n",
            text("tenant"),
            text("client_id"),
            text("token_url"),
            text("graph_url")
        ),
    };
    let secret = std::fs::read_to_string(&secret_path).map_err(|e| {
        Failure::config(format!(
            "cannot read the stand-in's secret {}: {e}",
            secret_path.display()
        ))
    })?;
    Ok((served, toml, secret))
}

/// Writes the simulated district as the CSV package at `path`, in a child `rostersync sim
/// export-csv` (its memory is not the bench's): the whole district on `day`, or with
/// `delta_from` what changed after that day.
fn export_package(
    users: u32,
    shape: Shape,
    day: u32,
    delta_from: Option<u32>,
    path: &std::path::Path,
) -> Result<(), Failure> {
    let exe = std::env::current_exe()
        .map_err(|e| Failure::config(format!("cannot find this program: {e}")))?;
    let mut cmd = Command::new(exe);
    cmd.args(["sim", "export-csv", "--users", &users.to_string()])
        .args(["--seed", "1", "--shape", shape.as_str()])
        .args(["--day", &day.to_string()]);
    if let Some(from) = delta_from {
        cmd.args(["--delta-from", &from.to_string()]);
    }
    let status = cmd
        .arg(path)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| Failure::config(format!("cannot start the CSV export: {e}")))?;
    if !status.success() {
        return Err(Failure::config(format!(
            "the CSV export of day {day} to {} failed ({status})",
            path.display()
        )));
    }
    Ok(())
}

/// Writes back to the disk what the phases before left in the OS's page cache, before the
/// next phase's clock starts: every file in the bench's directory is flushed (`fsync`), and
/// PostgreSQL vacuumed and asked for a checkpoint. Phases run back to back here, where a district's
/// syncs run hours apart; without this, a short phase after a wide one (the delta after the
/// churn re-sync and the floor store write) measures the write-back of what came before
/// its commits (at 1 M the same delta took 8.7–9.4 s straight after a large write and
/// 4.6–4.8 s on a settled disk).
fn settle(dir: &std::path::Path, pg_admin: Option<&str>) -> Result<(), Failure> {
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        Failure::config(format!("settling the disk between phases: {what}: {e}"))
    };
    let entries = std::fs::read_dir(dir).map_err(|e| failed(&dir.display().to_string(), &e))?;
    for entry in entries {
        let path = entry
            .map_err(|e| failed(&dir.display().to_string(), &e))?
            .path();
        if !path.is_file() {
            continue;
        }
        // A file SQLite removed between the listing and here (its WAL on a close) is fine.
        match std::fs::File::open(&path) {
            Ok(file) => file
                .sync_all()
                .map_err(|e| failed(&path.display().to_string(), &e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(failed(&path.display().to_string(), &e)),
        }
    }
    if let Some(admin) = pg_admin {
        let mut client = postgres::Client::connect(admin, postgres::NoTls)
            .map_err(|e| failed("connecting to PostgreSQL", &e))?;
        // What autovacuum would have done by the next sync (after a wide write: every
        // page it filled read again to set its visibility), done before the clock starts
        // rather than on the second core during the phase. A table the role does not own
        // is skipped with a warning; a failure (a table dropped meanwhile by another
        // user of the database) leaves it to autovacuum, as before.
        let _ = client.batch_execute("VACUUM");
        // Needs a superuser or `pg_checkpoint`; without, PostgreSQL writes back on its own
        // schedule and the phase may pay for it.
        let _ = client.batch_execute("CHECKPOINT");
    }
    Ok(())
}

/// Resets the kernel's peak-RSS counter for this process (Linux ≥ 4.0), so each phase
/// reports its own peak; returns what is resident now, where the counter starts again.
fn reset_peak_rss() -> f64 {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    status_mb("VmRSS:")
}

/// CPU seconds (user and system) a process has used, from `/proc/PID/stat`, in the
/// kernel's user-visible clock ticks (USER_HZ, 100 on Linux); 0 where unavailable.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => (user + system) / 100.0,
        _ => 0.0,
    }
}

fn peak_rss_mb() -> f64 {
    status_mb("VmHWM:")
}

/// A memory line of `/proc/self/status` (`VmHWM:`, `VmRSS:`) in MB; 0 where unavailable.
fn status_mb(key: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Days of simulated churn after which about 1 % of the people were added, removed or
/// changed in the SIS (not all of them change the directory: guardians are not imported
/// by default, and removals are a full sync's deactivation, not an update).
fn days_for_one_percent(users: u32, shape: Shape) -> Result<u32, Failure> {
    let config = sim::DistrictConfig {
        users,
        seed: 1,
        shape,
        ..sim::DistrictConfig::default()
    };
    for days in 1..=60 {
        let d = sim::diff_days(&config, 0, days).map_err(|e| Failure::config(e.to_string()))?;
        let u = &d.counts.users;
        if (u.added + u.removed + u.changed) as f64 >= f64::from(users) * 0.01 {
            return Ok(days);
        }
    }
    Ok(60)
}

pub fn run(args: BenchArgs, runtime: &tokio::runtime::Runtime) -> Result<u8, Failure> {
    let pg_admin = args
        .postgres
        .clone()
        .or_else(|| std::env::var("ROSTERSYNC_TEST_POSTGRES").ok());
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for &users in &args.users {
        let churn_days = days_for_one_percent(users, args.shape)?;
        for backend in &args.backends {
            let database = match backend.as_str() {
                "sqlite" => None,
                "postgres" => match &pg_admin {
                    Some(url) => Some(url.clone()),
                    None => {
                        output::error(
                            "skipping postgres: pass --postgres URL or set ROSTERSYNC_TEST_POSTGRES",
                        );
                        continue;
                    }
                },
                other => {
                    return Err(Failure::config(format!(
                        "unknown backend '{other}': sqlite or postgres"
                    )));
                }
            };
            let (measured, failed) = bench_one(
                users,
                backend,
                database.as_deref(),
                churn_days,
                &args,
                runtime,
            );
            rows.extend(measured);
            if let Some(f) = failed {
                failures.push(format!("{backend}, {users} people: {}", f.message));
            }
        }
    }
    if args.json {
        output::json(&rows);
    } else {
        print_table(&rows);
    }
    for f in &failures {
        output::error(&format!("bench: {f}"));
    }
    Ok(u8::from(!failures.is_empty()))
}

fn print_table(rows: &[Row]) {
    output::line(&format!(
        "{:<9} {:>8}  {:<32} {:>8} {:>7} {:>8} {:>7} {:>7} {:>7} {:>11} {:>9} {:>15} {:>9} {:>8} {:>8} {:>8} {:>10} {:>11} {:>9} {:>8} {:>9} {:>7}",
        "backend",
        "people",
        "phase",
        "wall s",
        "pull",
        "sim cpu",
        "load",
        "plan",
        "apply",
        "records/s",
        "peak MB",
        "pull/plan/apply",
        "start MB",
        "created",
        "linked",
        "updated",
        "unchanged",
        "enrollments",
        "students",
        "staff",
        "guardians",
        "÷ floor"
    ));
    for r in rows {
        output::line(&format!(
            "{:<9} {:>8}  {:<32} {:>8.2} {:>7.2} {:>8.2} {:>7.2} {:>7.2} {:>7.2} {:>11.0} {:>9.0} {:>15} {:>9.0} {:>8} {:>8} {:>8} {:>10} {:>11} {:>9} {:>8} {:>9} {:>7}",
            r.backend,
            r.people,
            r.phase,
            r.wall_s,
            r.pull_s,
            r.sim_cpu_s,
            r.load_s,
            r.plan_s,
            r.apply_s,
            r.records_per_s,
            r.peak_rss_mb,
            stage_peaks(r),
            r.start_rss_mb,
            r.counts.created,
            r.counts.linked,
            r.counts.updated,
            r.counts.unchanged,
            r.enrollments,
            r.people_by_role.students,
            r.people_by_role.staff,
            r.people_by_role.guardians,
            r.floor_ratio
                .map_or_else(String::new, |x| format!("{x:.2}"))
        ));
    }
}

/// A sync row's peaks by stage as `pull/plan/apply` MB (empty for a floor's rows).
fn stage_peaks(r: &Row) -> String {
    let stages = [r.peak_pull_mb, r.peak_plan_mb, r.peak_apply_mb];
    if stages.iter().all(|&mb| mb == 0.0) {
        return String::new();
    }
    let shown: Vec<String> = stages.iter().map(|mb| format!("{mb:.0}")).collect();
    shown.join("/")
}

/// Sets each real phase's `floor_ratio` from the floor row of the same phase.
fn set_floor_ratios(rows: &mut [Row]) {
    for (real, floor) in [
        ("first import", "floor first import"),
        ("no-change re-sync", "floor no-change re-sync"),
    ] {
        let Some(floor_wall) = rows.iter().find(|r| r.phase == floor).map(|r| r.wall_s) else {
            continue;
        };
        if let Some(r) = rows.iter_mut().find(|r| r.phase == real) {
            r.floor_ratio = Some(r.wall_s / floor_wall.max(1e-9));
        }
    }
}

/// What the simulated district holds now (`GET /_sim/status`).
fn sim_status(base_url: &str, runtime: &tokio::runtime::Runtime) -> Result<SimStatus, Failure> {
    let url = format!("{}/_sim/status", sim_origin(base_url)?);
    runtime.block_on(async move {
        sim_call(reqwest::Method::GET, &url)
            .await?
            .json::<SimStatus>()
            .await
            .map_err(|e| Failure::config(format!("{url}: {e}")))
    })
}

/// Calls one of the simulator's `/_sim` endpoints: its answer, when it is a success.
async fn sim_call(method: reqwest::Method, url: &str) -> Result<reqwest::Response, Failure> {
    let resp = reqwest::Client::new()
        .request(method, url)
        .send()
        .await
        .map_err(|e| Failure::config(format!("{url}: {e}")))?;
    if !resp.status().is_success() {
        return Err(Failure::config(format!("{url}: HTTP {}", resp.status())));
    }
    Ok(resp)
}

/// One district size on one backend: the floor phases (with `--floor`), then the real
/// ones. The rows measured, and the failure that ended it early, if one did.
fn bench_one(
    users: u32,
    backend: &str,
    pg_admin: Option<&str>,
    churn_days: u32,
    args: &BenchArgs,
    runtime: &tokio::runtime::Runtime,
) -> (Vec<Row>, Option<Failure>) {
    let sim = match start_sim(users, args.shape) {
        Ok(sim) => sim,
        Err(f) => return (Vec::new(), Some(f)),
    };
    let sim_pid = sim.child.0.id();
    let dir = std::env::temp_dir().join(format!(
        "rostersync-bench-{}-{backend}-{users}",
        std::process::id()
    ));
    let schema = format!("bench_{}_{users}", std::process::id());
    let floor_schema = format!("bench_floor_{}_{users}", std::process::id());
    let store_floor_schema = format!("bench_store_floor_{}_{users}", std::process::id());
    let with_schema = |admin: &str, schema: &str| {
        let sep = if admin.contains('?') { '&' } else { '?' };
        format!("{admin}{sep}options=-c%20search_path%3D{schema}")
    };
    // Made new and owner-only (its database holds a master key's work and password
    // hashes, if of a made-up district): one already there is someone else's, and is
    // neither used nor removed.
    let mut private = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        private.mode(0o700);
    }
    if let Err(e) = private.create(&dir) {
        let failure = Failure::config(format!(
            "cannot create the bench's directory {}: {e} (remove what is there)",
            dir.display()
        ));
        return (Vec::new(), Some(failure));
    }
    let mut rows = Vec::new();
    let result = (|| {
        let (database, floor_db) = match pg_admin {
            None => (
                dir.join("rostersync.db").display().to_string(),
                floor::Database::Sqlite(dir.join("floor.db")),
            ),
            Some(admin) => {
                let mut client = postgres::Client::connect(admin, postgres::NoTls)
                    .map_err(|e| Failure::config(format!("cannot connect to PostgreSQL: {e}")))?;
                client
                    .batch_execute(&format!(
                        "CREATE SCHEMA {schema}; CREATE SCHEMA {floor_schema}; CREATE SCHEMA {store_floor_schema}"
                    ))
                    .map_err(|e| Failure::config(e.to_string()))?;
                (
                    with_schema(admin, &schema),
                    floor::Database::Postgres(with_schema(admin, &floor_schema)),
                )
            }
        };
        let row = |name: &str, status: &SimStatus| Row {
            backend: backend.to_owned(),
            people: users,
            phase: name.to_owned(),
            wall_s: 0.0,
            records_per_s: 0.0,
            peak_rss_mb: 0.0,
            start_rss_mb: 0.0,
            peak_pull_mb: 0.0,
            peak_plan_mb: 0.0,
            peak_apply_mb: 0.0,
            pull_s: 0.0,
            sim_cpu_s: 0.0,
            load_s: 0.0,
            plan_s: 0.0,
            apply_s: 0.0,
            counts: Counts::default(),
            enrollments: status.counts.enrollments,
            people_by_role: status.people(),
            floor_ratio: None,
            round_walls_s: Vec::new(),
        };

        // The package the sync reads with `--csv`: the whole district on the day the
        // simulator is at, rewritten before the phases after it moves.
        let package = dir.join("district.zip");
        let mut day = 0;
        if args.csv {
            export_package(users, args.shape, day, None, &package)?;
        }
        let floor_input = if args.csv {
            floor::Input::Csv(package.clone())
        } else {
            floor::Input::Rest(floor::Endpoint {
                base_url: sim.base_url.clone(),
                token_url: sim.token_url.clone(),
                client_id: sim::DEFAULT_CLIENT_ID.to_owned(),
                client_secret: sim::DEFAULT_CLIENT_SECRET.to_owned(),
                page_size: args.page_size,
            })
        };
        // One floor pass: the first import into the floor's tables, or the no-change
        // re-sync against what it stored.
        let floor_pass = |import: bool| -> Result<Row, Failure> {
            let name = if import {
                "floor first import"
            } else {
                "floor no-change re-sync"
            };
            let status = sim_status(&sim.base_url, runtime)?;
            settle(&dir, pg_admin)?;
            let start_rss_mb = reset_peak_rss();
            let sim_cpu_before = cpu_seconds(sim_pid);
            let pass = if import {
                floor::first_import(&floor_input, &floor_db, runtime)
            } else {
                floor::no_change(&floor_input, &floor_db, runtime)
            }
            .map_err(|f| Failure::config(format!("{name}: {}", f.message)))?;
            if !import && pass.changed > 0 {
                return Err(Failure::config(format!(
                    "{name}: {} of {} records hashed differently from what the floor's import stored",
                    pass.changed,
                    pass.unchanged + pass.changed
                )));
            }
            let users_seen = pass.users();
            Ok(Row {
                wall_s: pass.wall_s,
                records_per_s: users_seen as f64 / pass.wall_s.max(1e-9),
                peak_rss_mb: peak_rss_mb(),
                start_rss_mb,
                pull_s: pass.pull_s,
                sim_cpu_s: cpu_seconds(sim_pid) - sim_cpu_before,
                load_s: pass.load_s,
                apply_s: pass.apply_s,
                counts: Counts {
                    seen: users_seen,
                    created: if import { users_seen } else { 0 },
                    unchanged: pass.unchanged,
                    updated: pass.changed,
                    ..Counts::default()
                },
                ..row(name, &status)
            })
        };
        if args.floor {
            floor::create_tables(&floor_db)?;
            rows.push(floor_pass(true)?);
        }

        let store = store::open(&database).map_err(|e| Failure::config(e.to_string()))?;
        let keyring =
            Keyring::create(&dir.join("master.key")).map_err(|e| Failure::config(e.to_string()))?;
        let reach = if args.csv {
            "kind = \"oneroster-csv\"\npath = \"set below\"\n".to_owned()
        } else {
            format!(
                "kind = \"oneroster-api\"\nurl = \"{}\"\nauth = \"oauth2\"\ntoken_url = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"set below\"\npage_size = {}\nconcurrency = {}\n",
                sim.base_url,
                sim.token_url,
                sim::DEFAULT_CLIENT_ID,
                args.page_size,
                args.concurrency
            )
        };
        // Opened wide: a bench measures what a run costs, not what would hold it.
        let open = "[source.safeguards]\nmax_deactivations = 100000000\nmax_deactivations_percent = 100.0\nmax_school_loss_percent = 100.0\nmax_creations_percent = 100.0\nmax_updates_percent = 100.0\n";
        let toml = format!(
            "[network]\nallow_loopback = true\n[[source]]\nname = \"bench\"\n{reach}[source.import]\nother_users = true\n{open}"
        );
        // The settings `toml` and `more` (another source's) say, the secrets sealed with
        // the master key as `config import` stores them.
        let configure = |more: &str, secrets: Vec<(String, Option<Vec<u8>>)>| {
            let mut config = Config::from_toml(&format!("{toml}{more}"))
                .map_err(|e| Failure::config(e.to_string()))?;
            config.sources[0].client_secret = None;
            if args.csv {
                config.sources[0].path = Some(package.display().to_string());
            }
            let bench = (!args.csv).then(|| keyring.encrypt(sim::DEFAULT_CLIENT_SECRET.as_bytes()));
            let mut sealed = vec![("bench".to_owned(), bench)];
            sealed.extend(secrets);
            store
                .save_config(&config, &sealed, "bench", Timestamp::now())
                .map_err(|e| Failure::config(e.to_string()))
        };
        configure("", Vec::new())?;
        let steps = std::sync::Mutex::new(Steps::default());
        let record = |p: Progress| {
            let now = Instant::now();
            if let Ok(mut s) = steps.lock() {
                match p {
                    Progress::Pulling { .. } | Progress::Pulled { .. } => s.last_pull = Some(now),
                    Progress::Planning { .. } => {
                        s.planning = Some(now);
                        s.peak_pull_mb = peak_rss_mb();
                        reset_peak_rss();
                    }
                    Progress::Applying { .. } => {
                        s.applying = Some(now);
                        s.peak_plan_mb = peak_rss_mb();
                        reset_peak_rss();
                    }
                    Progress::Started { .. }
                    | Progress::SourceRequests { .. }
                    | Progress::ConfirmingAbsence { .. }
                    | Progress::MadeAgain { .. } => {}
                }
            }
        };
        let ctx = Context {
            store: &store,
            keyring: Some(&keyring),
            runtime: runtime.handle(),
            progress: &record,
            clock: &engine::SystemClock,
            holder: "bench",
            max_plan_items: engine::MAX_PLAN_ITEMS,
            account_chunk: engine::ACCOUNT_CHUNK,
        };
        // One run of `source`, `pid` the simulator that serves it.
        let phase_of =
            |name: String, source: &str, kind: SyncKind, pid: u32| -> Result<Row, Failure> {
                let status = sim_status(&sim.base_url, runtime)?;
                settle(&dir, pg_admin)?;
                let start_rss_mb = reset_peak_rss();
                if let Ok(mut s) = steps.lock() {
                    *s = Steps::default();
                }
                let sim_cpu_before = cpu_seconds(pid);
                let started = Instant::now();
                let outcome = engine::sync(
                    &ctx,
                    &SyncRequest {
                        source: source.into(),
                        kind,
                        trigger: Trigger::Cli,
                        approved: false,
                    },
                    None,
                )
                .map_err(|e| Failure::config(format!("{name}: {e}")))?;
                let ended = Instant::now();
                let wall = ended.duration_since(started).as_secs_f64();
                let peaks = steps.lock().map_or([0.0; 3], |s| s.peaks());
                let (pull_s, load_s, plan_s, apply_s) = match steps.lock() {
                    Ok(s) => {
                        let pulled = s.last_pull.unwrap_or(started);
                        let planning = s.planning.unwrap_or(pulled);
                        let applying = s.applying.unwrap_or(ended);
                        let secs =
                            |a: Instant, b: Instant| b.saturating_duration_since(a).as_secs_f64();
                        (
                            secs(started, pulled),
                            secs(pulled, planning),
                            secs(planning, applying),
                            secs(applying, ended),
                        )
                    }
                    Err(_) => (0.0, 0.0, 0.0, 0.0),
                };
                if let Some(e) = outcome.error {
                    return Err(Failure::config(format!("{name}: the run failed: {e}")));
                }
                // A held run applies nothing and keeps the watermark: its figures would mislead
                // (the safeguards are opened wide above, so this is a bug if it happens).
                if outcome.status != RunStatus::Succeeded {
                    return Err(Failure::config(format!(
                        "{name}: the run ended {:?}, not succeeded: {:?}",
                        outcome.status, outcome.hold
                    )));
                }
                let [peak_pull_mb, peak_plan_mb, peak_apply_mb] = peaks;
                Ok(Row {
                    wall_s: wall,
                    records_per_s: outcome.counts.seen as f64 / wall.max(1e-9),
                    peak_rss_mb: peaks.into_iter().fold(0.0, f64::max),
                    start_rss_mb,
                    peak_pull_mb,
                    peak_plan_mb,
                    peak_apply_mb,
                    pull_s,
                    sim_cpu_s: cpu_seconds(pid) - sim_cpu_before,
                    load_s,
                    plan_s,
                    apply_s,
                    counts: outcome.counts,
                    ..row(&name, &status)
                })
            };
        let phase = |name: String, kind: SyncKind| phase_of(name, "bench", kind, sim_pid);
        rows.push(phase("first import".into(), SyncKind::Full)?);
        // The no-change re-sync and its floor take turns, so that a machine slower for a
        // while slows both.
        let (mut floor_runs, mut runs) = (Vec::new(), Vec::new());
        for _ in 0..args.rounds {
            if args.floor {
                floor_runs.push(floor_pass(false)?);
            }
            runs.push(phase("no-change re-sync".into(), SyncKind::Full)?);
        }
        rows.extend(median_run(floor_runs));
        rows.extend(median_run(runs));
        // The database alone writing the directory the first import wrote, timed after
        // the no-change re-sync: run before it, its copy of the directory filled the OS's
        // page cache and left the re-sync a cold file to read, which the floor's no-change
        // pass (reading the hashes its first import had just written) is not.
        if args.floor {
            let status = sim_status(&sim.base_url, runtime)?;
            let copy = match pg_admin {
                None => store_floor::Copy::Sqlite {
                    from: dir.join("rostersync.db"),
                    to: dir.join("store-floor.db"),
                },
                Some(admin) => store_floor::Copy::Postgres {
                    from_schema: schema.clone(),
                    to: with_schema(admin, &store_floor_schema),
                },
            };
            settle(&dir, pg_admin)?;
            let start_rss_mb = reset_peak_rss();
            let written = store_floor::run(&copy)?;
            rows.push(Row {
                wall_s: written.wall_s,
                records_per_s: written.accounts as f64 / written.wall_s.max(1e-9),
                peak_rss_mb: peak_rss_mb(),
                start_rss_mb,
                apply_s: written.wall_s,
                counts: Counts {
                    created: written.accounts,
                    ..Counts::default()
                },
                ..row("floor store write", &status)
            });
        }
        let advanced = reqwest_advance(&sim.base_url, churn_days, runtime)?;
        day += advanced;
        if args.csv {
            export_package(users, args.shape, day, None, &package)?;
        }
        rows.push(phase(
            format!("full re-sync after {advanced} day(s) churn"),
            SyncKind::Full,
        )?);
        // The delta starts from the newest change the last pull saw (day-0 records all
        // share one timestamp, so a delta straight after the first import would re-read them).
        // A package's delta holds what changed after the day of the last whole package.
        let advanced = reqwest_advance(&sim.base_url, churn_days, runtime)?;
        if args.csv {
            export_package(users, args.shape, day + advanced, Some(day), &package)?;
        }
        rows.push(phase(
            format!("delta after {advanced} more day(s)"),
            SyncKind::Delta,
        )?);
        // The district's accounts where single sign-on keeps them, as they are on its last
        // day: the first read links each to the person the SIS made it for.
        if let Some(kind) = args.accounts {
            let (served, more, secret) =
                start_accounts(kind, users, args.shape, day + advanced, &dir)?;
            let sealed = keyring.encrypt(secret.as_bytes());
            configure(
                &format!("{more}{open}"),
                vec![("accounts".to_owned(), Some(sealed))],
            )?;
            let pid = served.0.id();
            for name in ["first sync", "no-change re-sync"] {
                let name = format!("{} {name}", kind.as_str());
                rows.push(phase_of(name, "accounts", SyncKind::Full, pid)?);
            }
        }
        Ok(())
    })();
    if let Some(admin) = pg_admin
        && let Ok(mut client) = postgres::Client::connect(admin, postgres::NoTls)
    {
        let _ = client.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; DROP SCHEMA IF EXISTS {floor_schema} CASCADE; \
             DROP SCHEMA IF EXISTS {store_floor_schema} CASCADE"
        ));
    }
    let _ = std::fs::remove_dir_all(&dir);
    set_floor_ratios(&mut rows);
    (rows, result.err())
}

/// The simulator's origin (scheme, host and port), where its `/_sim` endpoints live.
fn sim_origin(base_url: &str) -> Result<String, Failure> {
    base_url
        .split("/campus/")
        .next()
        .map(str::to_owned)
        .ok_or_else(|| Failure::config("unexpected simulator URL"))
}

/// Moves the simulated district forward (its `/_sim/advance` endpoint).
fn reqwest_advance(
    base_url: &str,
    days: u32,
    runtime: &tokio::runtime::Runtime,
) -> Result<u32, Failure> {
    let url = format!("{}/_sim/advance?days={days}", sim_origin(base_url)?);
    runtime.block_on(sim_call(reqwest::Method::POST, &url))?;
    Ok(days)
}
