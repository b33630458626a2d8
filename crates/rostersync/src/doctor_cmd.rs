//! `rostersync doctor [--json]`: checks an installation and says what to do about each
//! finding — the data directory's permissions, the master key against the database, the
//! schema, each source's files, credentials and their expiry, each target's token, API
//! tokens near expiry, the scheduler leader, the last backup's age, work waiting for a
//! person, and (`--counts`) the counts the database keeps against a recount. It never
//! fails itself: a check that cannot run is a `problem` finding that says why. Exit 0
//! when all is well, 1 with warnings, 2 with problems.

use std::path::Path;

use clap::Args;
use jiff::{SignedDuration, Timestamp};
use rostersync_core::schedule::Spec;
use rostersync_core::settings::{Config, SourceConfig, SourceKind};
use serde::Serialize;
use store::Store;
use store::keyring::CHECK_META_KEY;

use crate::env::StateArgs;
use crate::{Failure, output};

/// The meta key holding when the last `rostersync backup` finished (RFC 3339).
const LAST_BACKUP_AT: &str = "last_backup_at";
/// The meta key holding the file the last backup went to.
const LAST_BACKUP_FILE: &str = "last_backup_file";
/// Credentials and tokens expiring within this many days are warned about.
const EXPIRY_WARNING_DAYS: i64 = 30;
/// A last backup older than this many days is warned about.
const BACKUP_MAX_AGE_DAYS: i64 = 7;
/// How long `--online` waits for a source or target to answer.
const ONLINE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Args)]
pub struct DoctorArgs {
    /// Print one JSON object: the findings and the overall status.
    #[arg(long)]
    json: bool,
    /// Also connect to each REST source's and SCIM target's URL (a few seconds at most
    /// each): any HTTP answer is reachable.
    #[arg(long)]
    online: bool,
    /// Also count every account and link again and compare with the counts the database
    /// keeps for the console and the safeguards (seconds at a million accounts).
    #[arg(long)]
    counts: bool,
    /// Count every account and link again, replacing the kept counts (the mend when
    /// `--counts` finds a difference), then compare them as `--counts` does.
    #[arg(long)]
    recount: bool,
}

/// How bad a finding is; the worst one decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Warning,
    Problem,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Problem => "problem",
        }
    }

    fn exit_code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Problem => 2,
        }
    }
}

/// One line of the report: what was checked, how it is, and what to do (empty when ok).
#[derive(Debug, Serialize)]
struct Finding {
    check: String,
    status: Status,
    detail: String,
    action: String,
}

/// The findings as they are made.
#[derive(Default)]
struct Report {
    findings: Vec<Finding>,
}

impl Report {
    fn add(&mut self, check: &str, status: Status, detail: String, action: &str) {
        self.findings.push(Finding {
            check: check.to_owned(),
            status,
            detail,
            action: action.to_owned(),
        });
    }

    fn ok(&mut self, check: &str, detail: String) {
        self.add(check, Status::Ok, detail, "");
    }

    fn warning(&mut self, check: &str, detail: String, action: &str) {
        self.add(check, Status::Warning, detail, action);
    }

    fn problem(&mut self, check: &str, detail: String, action: &str) {
        self.add(check, Status::Problem, detail, action);
    }

    fn status(&self) -> Status {
        self.findings
            .iter()
            .map(|f| f.status)
            .max()
            .unwrap_or(Status::Ok)
    }
}

/// Records a finished backup in `meta`, for `doctor` to report its age. Best effort: the
/// backup itself was written.
pub fn record_backup(store: &Store, file: &Path) {
    let file = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let recorded = store
        .meta_set(LAST_BACKUP_AT, &Timestamp::now().to_string())
        .and_then(|()| store.meta_set(LAST_BACKUP_FILE, &file.display().to_string()));
    if let Err(e) = recorded {
        tracing::warn!(error = %e, "could not record the backup's time: `rostersync doctor` will not see it");
    }
}

pub fn run(
    state: &StateArgs,
    args: DoctorArgs,
    runtime: &tokio::runtime::Runtime,
) -> Result<u8, Failure> {
    let mut report = Report::default();
    let now = Timestamp::now();
    check_data_dir(state, &mut report);
    if let Some(store) = open_store(state, &mut report) {
        check_master_key(state, &store, &mut report);
        check_schema(&store, &mut report);
        match store.load_config() {
            Ok(config) => {
                check_sources(&store, &config, now, &mut report);
                check_targets(&store, &config, &mut report);
                check_tokens(&store, now, &mut report);
                check_scheduler(&store, &config, now, &mut report);
                if args.online {
                    runtime.block_on(check_reachable(&config, &mut report));
                }
            }
            Err(e) => report.problem(
                "settings",
                format!("cannot read the settings: {e}"),
                "check the database, then run `rostersync doctor` again",
            ),
        }
        check_backup(&store, now, &mut report);
        check_waiting(&store, &mut report);
        if args.counts || args.recount {
            check_counts(&store, args.recount, &mut report);
        }
    }
    let status = report.status();
    if args.json {
        output::json(&serde_json::json!({
            "findings": report.findings,
            "status": status,
        }));
    } else {
        for f in &report.findings {
            let mut line = format!("{:<8} {:<10} {}", f.status.as_str(), f.check, f.detail);
            if !f.action.is_empty() {
                line.push_str(" — ");
                line.push_str(&f.action);
            }
            output::line(&line);
        }
    }
    Ok(status.exit_code())
}

/// Group or other permission bits of a file (unix); 0 elsewhere.
fn open_bits(path: &Path) -> std::io::Result<u32> {
    let meta = std::fs::metadata(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        Ok(meta.permissions().mode() & 0o777)
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        Ok(0o700)
    }
}

fn check_data_dir(state: &StateArgs, report: &mut Report) {
    let dir = &state.data_dir;
    let shown = dir.display();
    match std::fs::metadata(dir) {
        Err(e) => report.problem(
            "data_dir",
            format!("{shown}: {e}"),
            "run `rostersync init`, or pass --data-dir for the installation's directory",
        ),
        Ok(meta) if !meta.is_dir() => report.problem(
            "data_dir",
            format!("{shown} is not a directory"),
            "pass --data-dir for the installation's directory",
        ),
        Ok(_) => match open_bits(dir) {
            Ok(mode) if mode & 0o077 == 0 => {
                report.ok("data_dir", format!("{shown} is private ({mode:04o})"));
            }
            Ok(mode) => report.warning(
                "data_dir",
                format!("{shown} is open to other users of this machine ({mode:04o})"),
                &format!("chmod 700 {shown}"),
            ),
            Err(e) => report.problem(
                "data_dir",
                format!("cannot read the permissions of {shown}: {e}"),
                "check the directory",
            ),
        },
    }
    let key = dir.join("master.key");
    if key.exists() {
        let shown = key.display();
        match open_bits(&key) {
            Ok(mode) if mode & 0o077 == 0 => {
                report.ok("key_file", format!("{shown} is private ({mode:04o})"));
            }
            Ok(mode) => report.warning(
                "key_file",
                format!("{shown} is readable by other users ({mode:04o})"),
                &format!("chmod 600 {shown}"),
            ),
            Err(e) => report.problem(
                "key_file",
                format!("cannot read the permissions of {shown}: {e}"),
                "check the file",
            ),
        }
    }
}

/// The database, without creating one: `None` (and a problem finding) when it cannot be
/// opened. Opening migrates an older schema.
fn open_store(state: &StateArgs, report: &mut Report) -> Option<Store> {
    let database = match &state.database {
        Some(url) => url.clone(),
        None => {
            let path = state.data_dir.join("rostersync.db");
            if !path.exists() {
                report.problem(
                    "schema",
                    format!("no database at {}", path.display()),
                    "run `rostersync init` (or pass --data-dir / --database)",
                );
                return None;
            }
            path.display().to_string()
        }
    };
    match store::open(&database) {
        Ok(store) => Some(store),
        Err(e) => {
            let action = if e.is_unavailable() {
                "start the database or fix --database, then run `rostersync doctor` again"
            } else {
                "use the rostersync release that matches this database, or fix --database"
            };
            report.problem(
                "schema",
                format!("cannot open the database at {}: {e}", state.describe()),
                action,
            );
            None
        }
    }
}

fn check_master_key(state: &StateArgs, store: &Store, report: &mut Report) {
    let check = match store.meta_get(CHECK_META_KEY) {
        Ok(c) => c,
        Err(e) => {
            report.problem(
                "master_key",
                format!("cannot read the key's check value: {e}"),
                "check the database",
            );
            return;
        }
    };
    let Some(check) = check else {
        report.warning(
            "master_key",
            "the database is not initialised (no master key check value)".into(),
            "run `rostersync init`",
        );
        return;
    };
    let from = if std::env::var("ROSTERSYNC_MASTER_KEY").is_ok() {
        "ROSTERSYNC_MASTER_KEY".to_owned()
    } else {
        state.data_dir.join("master.key").display().to_string()
    };
    match state.given_key() {
        Err(f) => report.problem("master_key", f.message, "restore the key from your backup"),
        Ok(None) => report.problem(
            "master_key",
            format!("no master key at {from}"),
            "restore the key from your backup (or set ROSTERSYNC_MASTER_KEY)",
        ),
        Ok(Some(key)) if key.verify(&check) => {
            report.ok(
                "master_key",
                format!("the key in {from} matches the database"),
            );
        }
        Ok(Some(_)) => report.problem(
            "master_key",
            format!("the key in {from} does not match this database"),
            "restore the key from your backup",
        ),
    }
}

fn check_schema(store: &Store, report: &mut Report) {
    match store.meta_get("schema_version") {
        Ok(Some(v)) if v == store::SCHEMA_VERSION.to_string() => report.ok(
            "schema",
            format!("{} database, schema version {v}", store.backend()),
        ),
        Ok(v) => report.problem(
            "schema",
            format!(
                "schema version {} where this rostersync expects {}",
                v.as_deref().unwrap_or("(none)"),
                store::SCHEMA_VERSION
            ),
            "use the rostersync release that matches this database",
        ),
        Err(e) => report.problem(
            "schema",
            format!("cannot read the schema version: {e}"),
            "check the database",
        ),
    }
}

fn check_sources(store: &Store, config: &Config, now: Timestamp, report: &mut Report) {
    // As the console's overview counts days: in UTC.
    let today = now.to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
    if config.sources.is_empty() {
        report.warning(
            "sources",
            "no source is configured".into(),
            "add one: rostersync config import FILE.toml",
        );
    }
    for source in &config.sources {
        let check = format!("source:{}", source.name);
        if source.kind == SourceKind::OneRosterCsv {
            check_csv_path(&check, source, report);
        }
        check_secret(store, &check, source, report);
        check_expiry(&check, source, today, report);
    }
}

fn check_csv_path(check: &str, source: &SourceConfig, report: &mut Report) {
    let Some(path) = &source.path else {
        report.problem(
            check,
            "no path is set".into(),
            "set the source's path to the CSV package",
        );
        return;
    };
    let p = Path::new(path);
    let readable = if p.is_dir() {
        std::fs::read_dir(p).map(|_| ())
    } else {
        std::fs::File::open(p).map(|_| ())
    };
    match readable {
        Ok(()) => report.ok(check, format!("{path} is readable")),
        Err(e) => report.problem(
            check,
            format!("cannot read {path}: {e}"),
            "fix the path or its permissions",
        ),
    }
}

fn check_secret(store: &Store, check: &str, source: &SourceConfig, report: &mut Report) {
    if let Some(var) = &source.client_secret_env {
        match std::env::var(var) {
            Ok(v) if !v.is_empty() => {
                report.ok(check, format!("the secret comes from {var}"));
            }
            _ => report.problem(
                check,
                format!("the environment variable {var} (client_secret_env) is not set"),
                &format!("set {var} where rostersync runs"),
            ),
        }
        return;
    }
    if !source.needs_secret() {
        return;
    }
    match store.source_secret(&source.name) {
        Ok(Some(_)) => report.ok(check, "a secret is stored".into()),
        Ok(None) => report.problem(
            check,
            "it needs a secret and none is stored".into(),
            "enter it in the console, or import the settings with client_secret or client_secret_env",
        ),
        Err(e) => report.problem(
            check,
            format!("cannot read its stored secret: {e}"),
            "check the database",
        ),
    }
}

fn check_expiry(check: &str, source: &SourceConfig, today: jiff::civil::Date, report: &mut Report) {
    let has_credentials = source.needs_secret() || source.client_secret_env.is_some();
    match source.credential_expires {
        None if has_credentials => report.ok(
            check,
            "credentials' expiry unknown: set credential_expires".into(),
        ),
        None => {}
        Some(date) => {
            let days = (date - today).get_days();
            if days < 0 {
                report.problem(
                    check,
                    format!("its credentials expired on {date}"),
                    "renew them with the SIS, store the new secret and set credential_expires",
                );
            } else if i64::from(days) <= EXPIRY_WARNING_DAYS {
                report.warning(
                    check,
                    format!("its credentials expire on {date} (in {days} days)"),
                    "renew them with the SIS before then",
                );
            } else {
                report.ok(check, format!("its credentials expire on {date}"));
            }
        }
    }
}

fn check_targets(store: &Store, config: &Config, report: &mut Report) {
    for target in &config.targets {
        let check = format!("target:{}", target.name);
        if let Some(var) = &target.token_env {
            match std::env::var(var) {
                Ok(v) if !v.is_empty() => report.ok(&check, format!("the token comes from {var}")),
                _ => report.warning(
                    &check,
                    format!("the environment variable {var} (token_env) is not set here"),
                    &format!("set {var} where `rostersync serve` and `push` run"),
                ),
            }
            continue;
        }
        match store.target_secret(&target.name) {
            Ok(Some(_)) => report.ok(&check, "a token is stored".into()),
            Ok(None) => report.problem(
                &check,
                "no token is stored and no token_env is set".into(),
                "import the settings with token = \"…\" (rostersync config import FILE.toml) or name token_env",
            ),
            Err(e) => report.problem(
                &check,
                format!("cannot read its stored token: {e}"),
                "check the database",
            ),
        }
    }
}

fn check_tokens(store: &Store, now: Timestamp, report: &mut Report) {
    let tokens = match store.api_tokens() {
        Ok(t) => t,
        Err(e) => {
            report.problem(
                "tokens",
                format!("cannot list the API tokens: {e}"),
                "check the database",
            );
            return;
        }
    };
    let soon = now
        .checked_add(SignedDuration::from_hours(EXPIRY_WARNING_DAYS * 24))
        .unwrap_or(now);
    let mut active = 0;
    for t in tokens.iter().filter(|t| t.revoked_at.is_none()) {
        let check = format!("token:{}", t.name);
        match t.expires_at {
            Some(at) if t.expired(now) => report.warning(
                &check,
                format!("API token #{} expired at {at}", t.id),
                &format!("revoke it: rostersync token revoke {}", t.id),
            ),
            Some(at) if at <= soon => report.warning(
                &check,
                format!("API token #{} expires at {at}", t.id),
                "make a new one (rostersync token create) and give it to its user before then",
            ),
            _ => active += 1,
        }
    }
    if active > 0 {
        report.ok(
            "tokens",
            format!("{active} API token(s) valid for more than {EXPIRY_WARNING_DAYS} days"),
        );
    }
}

/// Whether any source runs by schedule (a SCIM connection is pushed to, never scheduled).
fn schedules_anything(config: &Config) -> bool {
    config.sources.iter().any(|s| {
        s.kind != SourceKind::Scim
            && (s.schedule.full != Spec::Off || s.schedule.delta != Spec::Off)
    })
}

/// Whether a `serve` leads the scheduler: the `scheduler` lock is tried (and released at
/// once when free). On SQLite a held lock is a `run_locks` row of a live process, which
/// names its holder; on PostgreSQL an advisory lock of a connected session, which does
/// not.
fn check_scheduler(store: &Store, config: &Config, now: Timestamp, report: &mut Report) {
    match store.try_lock("scheduler", "doctor", now) {
        Ok(None) => {
            let who = match store.lock_holder("scheduler") {
                Ok(Some((holder, pid))) => format!("{holder} (process {pid})"),
                _ => "a running `serve`".to_owned(),
            };
            report.ok(
                "scheduler",
                format!("{who} holds the scheduler lock: scheduled syncs run"),
            );
        }
        Ok(Some(lock)) => {
            drop(lock);
            if schedules_anything(config) {
                report.warning(
                    "scheduler",
                    "no `serve` holds it: scheduled syncs are not running".into(),
                    "start `rostersync serve` (as a service)",
                );
            } else {
                report.ok(
                    "scheduler",
                    "no `serve` holds it, and nothing is scheduled".into(),
                );
            }
        }
        Err(e) => report.problem(
            "scheduler",
            format!("cannot check the scheduler lock: {e}"),
            "check the database",
        ),
    }
}

fn check_backup(store: &Store, now: Timestamp, report: &mut Report) {
    let at = match store.meta_get(LAST_BACKUP_AT) {
        Ok(at) => at,
        Err(e) => {
            report.problem(
                "backup",
                format!("cannot read when the last backup was: {e}"),
                "check the database",
            );
            return;
        }
    };
    let Some(at) = at else {
        report.warning(
            "backup",
            "no backup recorded".into(),
            "rostersync backup FILE",
        );
        return;
    };
    let file = store
        .meta_get(LAST_BACKUP_FILE)
        .ok()
        .flatten()
        .unwrap_or_default();
    let Ok(when) = at.parse::<Timestamp>() else {
        report.warning(
            "backup",
            format!("the last backup's time '{at}' is unreadable"),
            "rostersync backup FILE",
        );
        return;
    };
    let hours = now.duration_since(when).as_hours().max(0);
    let days = hours / 24;
    let age = if days > 0 {
        format!("{days} day(s) ago")
    } else {
        format!("{hours} hour(s) ago")
    };
    if days >= BACKUP_MAX_AGE_DAYS {
        report.warning(
            "backup",
            format!("the last backup ({file}) was {age}"),
            "rostersync backup FILE (and schedule it daily)",
        );
    } else {
        report.ok("backup", format!("last backup {age}: {file}"));
    }
}

fn check_waiting(store: &Store, report: &mut Report) {
    match store.runs_of(None, Some(store::RunStatus::Held), 0) {
        Ok(held) if held.is_empty() => report.ok("held_runs", "no run is held".into()),
        Ok(held) => report.warning(
            "held_runs",
            format!("{} run(s) held for approval", held.len()),
            "look at them: rostersync runs list, then runs approve or runs discard",
        ),
        Err(e) => report.problem(
            "held_runs",
            format!("cannot count the held runs: {e}"),
            "check the database",
        ),
    }
    match store.count_review_cases("open") {
        Ok(0) => report.ok("review", "no open review case".into()),
        Ok(n) => report.warning(
            "review",
            format!("{n} open review case(s)"),
            "decide them: rostersync review list",
        ),
        Err(e) => report.problem(
            "review",
            format!("cannot count the open review cases: {e}"),
            "check the database",
        ),
    }
}

/// `--counts`: the counts the database keeps (the Overview's, the Location Mappings
/// page's, and each school's population the safeguards weigh a sync's losses against)
/// against a recount; `--recount` counts again first.
fn check_counts(store: &Store, recount: bool, report: &mut Report) {
    if recount && let Err(e) = store.recount() {
        report.problem(
            "counts",
            format!("cannot count the accounts again: {e}"),
            "check the database",
        );
        return;
    }
    match store.check_counts() {
        Ok(check) if check.differing.is_empty() => report.ok(
            "counts",
            format!(
                "the kept counts match a recount ({} rows){}",
                check.rows,
                if recount { ", counted again" } else { "" }
            ),
        ),
        Ok(check) => {
            let first = &check.differing[0];
            report.problem(
                "counts",
                format!(
                    "{} of {} kept counts differ from a recount (the console's figures and the safeguards' population of each school read them), e.g. {} {}: kept {}, counted {}",
                    check.differing.len(),
                    check.rows,
                    first.table,
                    first.key,
                    first.kept,
                    first.counted
                ),
                "count again: rostersync doctor --recount",
            );
        }
        Err(e) => report.problem(
            "counts",
            format!("cannot compare the kept counts with a recount: {e}"),
            "check the database",
        ),
    }
}

/// `--online`: each REST source's and SCIM target's URL, fetched once under the settings'
/// network policy. Any HTTP answer (a 401 included) means it is reachable.
async fn check_reachable(config: &Config, report: &mut Report) {
    let policy = engine::address_policy(&config.network);
    let client = match policy.client_builder().timeout(ONLINE_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            report.problem(
                "online",
                format!("cannot make an HTTP client: {e}"),
                "check the machine's TLS setup",
            );
            return;
        }
    };
    let sources = config
        .sources
        .iter()
        .filter(|s| s.kind == SourceKind::OneRosterApi)
        .filter_map(|s| Some((format!("source:{}", s.name), s.url.as_deref()?)));
    let targets = config
        .targets
        .iter()
        .map(|t| (format!("target:{}", t.name), t.url.as_str()));
    for (check, url) in sources.chain(targets) {
        let shown = oneroster::net::redact_url(url);
        let parsed = match policy.check_url("the URL", url) {
            Ok(u) => u,
            Err(e) => {
                report.problem(&check, e, "fix the URL, or the [network] settings");
                continue;
            }
        };
        match client.get(parsed).send().await {
            Ok(resp) => report.ok(
                &check,
                format!("{shown} answered (HTTP {})", resp.status().as_u16()),
            ),
            Err(e) => report.problem(
                &check,
                format!(
                    "cannot reach {shown}: {e}{}",
                    oneroster::net::error_causes(&e)
                ),
                "check the URL, DNS and firewalls between this machine and it",
            ),
        }
    }
}
