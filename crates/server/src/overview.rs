//! The Overview page: what needs a person first (held runs, open review cases, credentials
//! about to expire), then per source its Authentication summary and what its last runs
//! changed (a table and a small server-rendered SVG chart), the directory's counts and
//! *Start Sync*, and the SCIM targets the directory is pushed to (what each holds, its
//! last push, its held pushes, *Push now*). Every count is a link to the list it counts.
//!
//! A run's status and counts come from one place, the stored run: the live progress box
//! ([`progress_view`]) shows the stored record once there is one, so the page can never
//! say `running` in one spot and `held` in another. The live state is read *before* the
//! store: a run is recorded finished before its live state says so, so the store is
//! never the older of the two.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Extension, Query, State};
use rostersync_core::settings::{AuthMethod, SourceConfig, SourceKind};
use store::{RunId, RunRecord, RunStatus, UserCounts};

use crate::auth::Principal;
use crate::pages::{Flash, Nav, Page, ProgressView, enc, fail, render, settings_form, ts};
use crate::runner::LiveRun;
use crate::{Shared, blocking};

/// How many runs the chart draws, and how many the table lists.
const CHART_RUNS: u32 = 30;
const TABLE_RUNS: usize = 10;

/// The progress box of a run this server started: its status and counts from the stored
/// run when there is one (`record`), the live phase only while the store says it is still
/// going (or this server is approving it).
pub(crate) fn progress_view(live: &LiveRun, record: Option<&RunRecord>) -> ProgressView {
    let approving = !live.finished && live.approval_of.is_some();
    let stored_end = record.filter(|r| r.status != RunStatus::Running && !approving);
    let (finished, status, counts, error) = match stored_end {
        Some(r) => (
            true,
            r.status.as_str().to_owned(),
            Some(r.counts),
            r.error.clone().or_else(|| live.error.clone()),
        ),
        None if record.is_some() && !approving => (false, String::new(), None, None),
        None => (
            live.finished,
            live.status
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            live.counts,
            live.error.clone(),
        ),
    };
    ProgressView {
        source: live.source.clone(),
        kind: record
            .map(|r| r.kind)
            .unwrap_or(live.kind)
            .as_str()
            .to_owned(),
        actor: live.actor.clone(),
        finished,
        status,
        counts: counts
            .map(|c| {
                format!(
                    "seen {}, created {}, updated {}, linked {}, skipped {}, deactivated {}, reactivated {}",
                    c.seen, c.created, c.updated, c.linked, c.skipped, c.deactivated, c.reactivated
                )
            })
            .unwrap_or_default(),
        error: error.unwrap_or_default(),
        run_id: record.map(|r| r.id).or(live.run_id),
        phase: if finished {
            String::new()
        } else if live.finished {
            // Stored as running, though this server's thread is done: another process
            // (an approval elsewhere) or a record about to be settled.
            "running (Sync History follows it)".to_owned()
        } else {
            live.phase.clone()
        },
    }
}

/// The stored runs of live entries, by id.
pub(crate) fn live_records(
    store: &store::Store,
    live: &[LiveRun],
) -> Result<HashMap<RunId, RunRecord>, crate::ApiError> {
    let mut out = HashMap::new();
    for id in live.iter().filter_map(|l| l.run_id) {
        if let Some(r) = store.get_run(id)? {
            out.insert(id, r);
        }
    }
    Ok(out)
}

/// A number on the page and the list it counts.
pub struct Count {
    pub id: &'static str,
    pub n: u64,
    pub label: &'static str,
    pub href: String,
}

/// One segment of a bar: an outcome's share of a run's changes.
pub struct Segment {
    pub y: f64,
    pub height: f64,
    pub outcome: &'static str,
}

/// One run in the chart.
pub struct Bar {
    pub x: u32,
    pub href: String,
    /// The run in words (the bar's tooltip and part of the text alternative).
    pub label: String,
    /// Nothing of the run was applied (held, discarded, failed…): drawn hollow.
    pub applied: bool,
    pub segments: Vec<Segment>,
    /// The bar's full height (for the hollow outline).
    pub y: f64,
    pub height: f64,
}

/// The chart of a source's last runs: bars oldest to newest, stacked by outcome.
pub struct Chart {
    pub width: u32,
    pub height: u32,
    pub bar_width: u32,
    pub bars: Vec<Bar>,
    pub baseline: f64,
    /// The text alternative: every run's numbers in words.
    pub description: String,
    pub most: u64,
}

/// A row of the data-changes table: each number opens the run's items with that outcome.
pub struct ChangeRow {
    pub id: RunId,
    pub started: String,
    pub kind: String,
    pub trigger: String,
    pub status: String,
    /// (outcome, count)
    pub numbers: Vec<(&'static str, u64)>,
}

/// What the Overview says of one source.
pub struct SourceSummary {
    pub name: String,
    pub kind: &'static str,
    pub csv: bool,
    /// An account source's settings, (label, value), none secret; empty for a SIS.
    pub account: Vec<(&'static str, String)>,
    /// The API URL without any `user:password@`.
    pub url: String,
    pub path: String,
    pub client_id: String,
    pub secret: String,
    pub auth: &'static str,
    pub token_url: String,
    pub credentials: String,
    pub credentials_warn: bool,
    pub token: String,
    pub validation: String,
    pub validation_failed: bool,
    pub rows: Vec<ChangeRow>,
    pub chart: Option<Chart>,
    pub settings_href: String,
}

/// A target's last push, as its row shows it.
pub struct LastPush {
    pub id: RunId,
    pub when: String,
    pub status: String,
    pub created: u64,
    pub adopted: u64,
    pub updated: u64,
    pub deactivated: u64,
    pub errors: u64,
}

/// What the Overview says of one SCIM target.
pub struct TargetSummary {
    pub name: String,
    pub host: String,
    /// The sources it follows, in words.
    pub follows: String,
    /// No token is stored or named: its pushes fail.
    pub token_missing: bool,
    pub last: Option<LastPush>,
    /// Users the target holds, of them active, and accounts whose last push failed.
    pub held_users: u64,
    pub active: u64,
    pub failing: u64,
    /// Its pushes held for approval.
    pub held_runs: Vec<RunId>,
}

fn target_summary(t: &crate::targets::TargetFacts) -> TargetSummary {
    TargetSummary {
        name: t.config.name.clone(),
        host: crate::targets::host(&t.config.url),
        follows: if t.config.follows.is_empty() {
            "none: pushed on demand".to_owned()
        } else {
            t.config.follows.join(", ")
        },
        token_missing: t.token == "missing",
        last: t.last.as_ref().map(|r| LastPush {
            id: r.id,
            when: ts(r.started_at),
            status: r.status.as_str().to_owned(),
            created: r.counts.created,
            adopted: r.counts.linked,
            updated: r.counts.updated + r.counts.reactivated,
            deactivated: r.counts.deactivated,
            errors: r.counts.errors,
        }),
        held_users: t.counts.held,
        active: t.counts.active,
        failing: t.counts.failing,
        held_runs: t.held.iter().map(|r| r.id).collect(),
    }
}

/// A held run, at the top of the page.
pub struct HeldView {
    pub id: RunId,
    pub source: String,
    pub why: String,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    nav: Nav,
    warnings: Vec<String>,
    held: Vec<HeldView>,
    open_cases: u64,
    counts: Vec<Count>,
    summaries: Vec<SourceSummary>,
    targets: Vec<TargetSummary>,
    live: Vec<ProgressView>,
    sources: Vec<String>,
}

/// The outcomes the Overview counts, in the table's order.
fn numbers(r: &RunRecord) -> [(&'static str, u64); 5] {
    let c = &r.counts;
    [
        ("created", c.created),
        ("updated", c.updated),
        ("deactivated", c.deactivated),
        ("linked", c.linked),
        ("reactivated", c.reactivated),
    ]
}

fn applied(status: RunStatus) -> bool {
    matches!(status, RunStatus::Succeeded | RunStatus::Undone)
}

/// The bar chart of `runs` (newest first, as the store lists them), or `None` without
/// runs. Bars are scaled to the run that changed the most; a run that changed nothing
/// is a flat mark on the baseline.
pub(crate) fn chart(source: &str, runs: &[RunRecord]) -> Option<Chart> {
    if runs.is_empty() {
        return None;
    }
    const BAR: u32 = 12;
    const GAP: u32 = 4;
    const TOP: f64 = 4.0;
    const PLOT: f64 = 72.0;
    let oldest_first: Vec<&RunRecord> = runs.iter().rev().collect();
    let most = oldest_first
        .iter()
        .map(|r| numbers(r).iter().map(|(_, n)| n).sum::<u64>())
        .max()
        .unwrap_or(0);
    let baseline = TOP + PLOT;
    let mut bars = Vec::new();
    let mut words = Vec::new();
    for (i, r) in oldest_first.iter().enumerate() {
        let nums = numbers(r);
        let total: u64 = nums.iter().map(|(_, n)| n).sum();
        let said = nums
            .iter()
            .map(|(o, n)| format!("{n} {o}"))
            .collect::<Vec<_>>()
            .join(", ");
        let label = format!(
            "run {} ({} {}, {}): {said}",
            r.id,
            r.kind.as_str(),
            r.status.as_str(),
            ts(r.started_at)
        );
        let mut y = baseline;
        let mut segments = Vec::new();
        for (outcome, n) in nums {
            if n == 0 || most == 0 {
                continue;
            }
            // At least a pixel, so a single change is seen beside thousands.
            let h = (n as f64 * PLOT / most as f64).max(1.0);
            y -= h;
            segments.push(Segment {
                y,
                height: h,
                outcome,
            });
        }
        let height = (baseline - y).max(1.0);
        bars.push(Bar {
            x: u32::try_from(i).unwrap_or(0) * (BAR + GAP),
            href: format!("/runs/{}", r.id),
            applied: applied(r.status),
            segments,
            y: baseline - height,
            height,
            label: label.clone(),
        });
        words.push(if total == 0 {
            format!("run {} ({}): no changes", r.id, r.status.as_str())
        } else {
            label
        });
    }
    let n = u32::try_from(bars.len()).unwrap_or(0);
    Some(Chart {
        width: n * (BAR + GAP),
        height: (TOP + PLOT + 2.0) as u32,
        bar_width: BAR,
        baseline,
        description: format!(
            "Changes made by the last {n} run(s) of {source}, oldest first: {}.",
            words.join("; ")
        ),
        bars,
        most,
    })
}

fn auth_words(a: AuthMethod) -> &'static str {
    match a {
        AuthMethod::OAuth2 => "OAuth 2 client credentials",
        AuthMethod::OAuth1Sha256 => "OAuth 1.0a, HMAC-SHA256",
        AuthMethod::OAuth1Sha1 => "OAuth 1.0a, HMAC-SHA1",
        AuthMethod::None => "none",
    }
}

/// How long a token lasts, in words: `1 h`, `20 min`, `45 s`.
fn lifetime(secs: u64) -> String {
    if secs >= 3600 && secs.is_multiple_of(3600) {
        format!("{} h", secs / 3600)
    } else if secs >= 60 && secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

/// The credentials' expiry in words, and whether it needs attention (30 days or less).
fn credentials_words(s: &SourceConfig, today: jiff::civil::Date) -> (String, bool) {
    match s.credential_expires {
        // An account source's settings are the operator's file's, not the console's.
        None if s.kind.is_account_source() => (
            "unknown: no expiry date is set (credential_expires, with rostersync config import)"
                .to_owned(),
            false,
        ),
        None => (
            "unknown: no expiry date is entered (Settings → Authentication)".to_owned(),
            false,
        ),
        Some(d) => {
            let days = today
                .until(d)
                .map(|sp| i64::from(sp.get_days()))
                .unwrap_or(0);
            if days < 0 {
                (format!("{d}: expired {} day(s) ago", -days), true)
            } else {
                (format!("{d} ({days} day(s) left)"), days <= 30)
            }
        }
    }
}

/// A SCIM connection's activity: when its identity provider last called, its tokens, and
/// the writes of its last runs that failed or wait for approval.
fn scim_facts(
    tokens: &[store::ApiTokenRecord],
    runs: &[RunRecord],
    now: jiff::Timestamp,
) -> Vec<(&'static str, String)> {
    let live: Vec<&store::ApiTokenRecord> = tokens
        .iter()
        .filter(|t| t.revoked_at.is_none() && !t.expired(now))
        .collect();
    let last = tokens.iter().filter_map(|t| t.last_used).max();
    let mut facts = vec![
        ("Last request", last.map_or_else(|| "never".to_owned(), ts)),
        (
            "Tokens",
            match live.as_slice() {
                [] => {
                    "none that works: rostersync token create --scope scim --name THIS-CONNECTION"
                        .to_owned()
                }
                live => live
                    .iter()
                    .map(|t| match t.expires_at {
                        Some(at) => format!("#{} until {}", t.id, ts(at)),
                        None => format!("#{} (never expires)", t.id),
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            },
        ),
    ];
    let failed = runs
        .iter()
        .filter(|r| r.status == RunStatus::Failed)
        .count();
    let held = runs.iter().filter(|r| r.status == RunStatus::Held).count();
    facts.push((
        "Last writes",
        format!(
            "of the last {}: {failed} failed, {held} held for approval",
            runs.len()
        ),
    ));
    facts
}

/// What the Overview reads of one source.
struct SourceFacts {
    /// Newest first.
    runs: Vec<RunRecord>,
    secret_set: bool,
    validation: Option<crate::validation::Stored>,
    token: Option<engine::TokenSeen>,
    /// A SCIM connection's tokens (scope `scim`, named after it).
    scim_tokens: Vec<store::ApiTokenRecord>,
}

struct Loaded {
    counts: UserCounts,
    config: rostersync_core::settings::Config,
    held: Vec<RunRecord>,
    open_cases: u64,
    /// In the order of the settings' sources.
    sources: Vec<SourceFacts>,
    /// In the order of the settings' targets.
    targets: Vec<crate::targets::TargetFacts>,
    records: HashMap<RunId, RunRecord>,
}

fn summary(
    s: &SourceConfig,
    runs: &[RunRecord],
    secret_set: bool,
    validation: Option<&crate::validation::Stored>,
    token: Option<&engine::TokenSeen>,
    today: jiff::civil::Date,
) -> SourceSummary {
    let csv = s.kind == SourceKind::OneRosterCsv;
    let (credentials, credentials_warn) = credentials_words(s, today);
    let auth = s.auth_method();
    SourceSummary {
        name: s.name.clone(),
        kind: match settings_form::account_kind_words(s.kind) {
            Some(words) => words,
            None if csv => "OneRoster CSV package",
            None => "OneRoster API (REST)",
        },
        csv,
        account: settings_form::account_facts(s, secret_set),
        url: s
            .url
            .as_deref()
            .map(oneroster::net::redact_url)
            .unwrap_or_default(),
        path: s.path.clone().unwrap_or_default(),
        client_id: s.client_id.clone().unwrap_or_default(),
        secret: if secret_set {
            "set".to_owned()
        } else if let Some(var) = &s.client_secret_env {
            format!("read from the environment variable {var}")
        } else if s.needs_secret() {
            "not set".to_owned()
        } else {
            "not needed".to_owned()
        },
        auth: auth_words(auth),
        token_url: if auth == AuthMethod::OAuth2 {
            s.token_url
                .as_deref()
                .map(oneroster::net::redact_url)
                .unwrap_or_default()
        } else {
            String::new()
        },
        credentials,
        credentials_warn,
        token: match (auth, token) {
            (AuthMethod::OAuth2, Some(t)) => format!(
                "each access token lasts {} ({} s), as the token service said at {}; a new one is fetched when it runs out",
                lifetime(t.expires_in),
                t.expires_in,
                ts(t.at)
            ),
            (AuthMethod::OAuth2, None) => {
                "unknown: no sync or validation has fetched one since this version".to_owned()
            }
            _ => "none: this source signs each request instead".to_owned(),
        },
        validation: validation
            .map(|v| format!("{}: {}", v.at, v.summary))
            .unwrap_or_else(|| "never validated".to_owned()),
        validation_failed: validation.is_some_and(|v| v.summary.starts_with("Validation failed")),
        rows: runs
            .iter()
            .take(TABLE_RUNS)
            .map(|r| ChangeRow {
                id: r.id,
                started: ts(r.started_at),
                kind: r.kind.as_str().to_owned(),
                trigger: r.trigger.as_str().to_owned(),
                status: r.status.as_str().to_owned(),
                numbers: numbers(r).to_vec(),
            })
            .collect(),
        chart: chart(&s.name, runs),
        settings_href: format!("/settings?source={}&section=authentication", enc(&s.name)),
    }
}

fn held_view(r: &RunRecord) -> HeldView {
    HeldView {
        id: r.id,
        source: r.source.clone(),
        why: r
            .hold
            .iter()
            .map(|t| t.detail.clone())
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// The directory's counts, each with the list it counts.
fn counts(c: &UserCounts, open_cases: u64, held: &[RunRecord]) -> Vec<Count> {
    vec![
        Count {
            id: "count-users",
            n: c.active,
            label: "active users",
            href: "/users?active=true".into(),
        },
        Count {
            id: "count-linked",
            n: c.linked,
            label: "linked to the SIS",
            href: "/users?linked=true".into(),
        },
        Count {
            id: "count-unlinked",
            n: c.unlinked_active,
            label: "unlinked (active)",
            href: "/users?linked=false&active=true".into(),
        },
        Count {
            id: "count-groups",
            n: c.groups,
            label: "groups",
            href: "/groups".into(),
        },
        Count {
            id: "count-cases",
            n: open_cases,
            label: "open review cases",
            href: "/review?status=open".into(),
        },
        Count {
            id: "count-held",
            n: held.len() as u64,
            label: "held runs",
            href: match held {
                [one] => format!("/runs/{}", one.id),
                _ => "/runs?status=held".into(),
            },
        },
    ]
}

pub(crate) async fn page(state: &Shared, who: &Principal, flash: &Flash) -> Page {
    let now = state.now();
    // Live first, then the store (see the module's doc).
    let live = state.live.all();
    let live_copy = live.clone();
    let loaded = blocking(state, move |store| {
        let config = store.load_config()?;
        let tokens = store.api_tokens()?;
        let mut sources = Vec::new();
        for s in &config.sources {
            let runs = store.runs_of(Some(&s.name), None, CHART_RUNS)?;
            let secret = store.source_secret(&s.name)?.is_some();
            let validation = store
                .meta_get(&crate::validation::key(&s.name))?
                .and_then(|t| crate::validation::Stored::decode(&t));
            let token = engine::token_seen(store, &s.name)?;
            let scim_tokens = tokens
                .iter()
                .filter(|t| t.scope == store::TokenScope::Scim && t.name == s.name)
                .cloned()
                .collect();
            sources.push(SourceFacts {
                runs,
                secret_set: secret,
                validation,
                token,
                scim_tokens,
            });
        }
        Ok(Loaded {
            counts: store.count_users()?,
            held: store.runs_of(None, Some(RunStatus::Held), 0)?,
            open_cases: store.count_review_cases("open")?,
            records: live_records(store, &live_copy)?,
            targets: crate::targets::load(store)?,
            config,
            sources,
        })
    })
    .await
    .map_err(fail)?;
    let today = now.to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
    let mut warnings = Vec::new();
    for s in &loaded.config.sources {
        if let Some(d) = s.credential_expires {
            let days = today
                .until(d)
                .map(|sp| i64::from(sp.get_days()))
                .unwrap_or(0);
            if days < 0 {
                warnings.push(format!(
                    "The SIS credentials of {} expired on {d}: syncs will fail until new ones are entered in Settings.",
                    s.name
                ));
            } else if days <= 30 {
                warnings.push(format!(
                    "The SIS credentials of {} expire on {d} ({days} day(s) left): ask the SIS for new ones.",
                    s.name
                ));
            }
        }
    }
    let live: Vec<ProgressView> = live
        .iter()
        .map(|l| progress_view(l, l.run_id.and_then(|id| loaded.records.get(&id))))
        .collect();
    let summaries: Vec<SourceSummary> = loaded
        .config
        .sources
        .iter()
        .zip(&loaded.sources)
        .map(|(s, f)| {
            let mut summary = summary(
                s,
                &f.runs,
                f.secret_set,
                f.validation.as_ref(),
                f.token.as_ref(),
                today,
            );
            if s.kind == SourceKind::Scim {
                summary
                    .account
                    .extend(scim_facts(&f.scim_tokens, &f.runs, now));
            }
            summary
        })
        .collect();
    let mut nav = Nav::new(who, "Overview", "overview", flash);
    nav.refresh = live.iter().any(|l| !l.finished)
        || loaded
            .sources
            .iter()
            .any(|f| f.runs.iter().any(|r| r.status == RunStatus::Running))
        || loaded.targets.iter().any(|t| {
            t.last
                .as_ref()
                .is_some_and(|r| r.status == RunStatus::Running)
        });
    Ok(render(&OverviewPage {
        nav,
        warnings,
        held: loaded.held.iter().map(held_view).collect(),
        open_cases: loaded.open_cases,
        counts: counts(&loaded.counts, loaded.open_cases, &loaded.held),
        summaries,
        targets: loaded.targets.iter().map(target_summary).collect(),
        live,
        sources: loaded
            .config
            .sources
            .iter()
            .map(|s| s.name.clone())
            .collect(),
    }))
}

// ----- the groups list (the Overview's group count opens it)

/// The most groups the list shows.
const GROUPS_SHOWN: u32 = 1000;

pub struct GroupView {
    pub name: String,
    pub kind: String,
    pub source: String,
    pub detail: String,
    pub members: u64,
}

#[derive(Template)]
#[template(path = "groups.html")]
struct GroupsPage {
    nav: Nav,
    total: u64,
    shown: u32,
    groups: Vec<GroupView>,
    source: String,
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct GroupsQuery {
    pub source: Option<String>,
}

/// `/groups`: every group by name (the first [`GROUPS_SHOWN`]), with its kind, source
/// and members.
pub async fn groups(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Query(q): Query<GroupsQuery>,
    flash: Flash,
) -> Page {
    let source = q.source.clone().filter(|s| !s.is_empty());
    let wanted = source.clone();
    let (total, list) = blocking(&state, move |store| {
        let list = store.groups(wanted.as_deref(), GROUPS_SHOWN + 1)?;
        let total = if wanted.is_none() {
            store.count_users()?.groups
        } else {
            list.len() as u64
        };
        Ok((total, list))
    })
    .await
    .map_err(fail)?;
    Ok(render(&GroupsPage {
        nav: Nav::new(&who, "Groups", "overview", &flash),
        total,
        shown: GROUPS_SHOWN,
        groups: list
            .into_iter()
            .take(GROUPS_SHOWN as usize)
            .map(|g| GroupView {
                name: g.name,
                kind: g.kind,
                source: g.source.unwrap_or_default(),
                detail: g.detail.unwrap_or_default(),
                members: g.members,
            })
            .collect(),
        source: source.unwrap_or_default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;
    use rostersync_core::plan::{Counts, SyncKind};
    use store::Trigger;

    fn run(id: RunId, status: RunStatus, created: u64, updated: u64) -> RunRecord {
        RunRecord {
            id,
            source: "campus".into(),
            kind: SyncKind::Full,
            trigger: Trigger::Console,
            status,
            complete: true,
            started_at: Timestamp::UNIX_EPOCH,
            finished_at: None,
            counts: Counts {
                created,
                updated,
                ..Counts::default()
            },
            error: None,
            hold: Vec::new(),
            note: None,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn the_chart_draws_oldest_first_scaled_to_the_largest_run() {
        let runs = [
            run(RunId(3), RunStatus::Held, 0, 0),
            run(RunId(2), RunStatus::Succeeded, 10, 10),
            run(RunId(1), RunStatus::Succeeded, 100, 0),
        ];
        let c = chart("campus", &runs).unwrap();
        assert_eq!(c.most, 100);
        assert_eq!(
            c.bars.iter().map(|b| b.href.as_str()).collect::<Vec<_>>(),
            ["/runs/1", "/runs/2", "/runs/3"]
        );
        assert_eq!(c.bars[0].segments.len(), 1);
        assert!(
            (c.bars[0].height - 72.0).abs() < 1e-9,
            "the largest fills the plot"
        );
        assert!((c.bars[1].height - 14.4).abs() < 1e-9);
        assert!(!c.bars[2].applied && c.bars[1].applied);
        assert!(
            c.description.contains("run 3 (held): no changes"),
            "{}",
            c.description
        );
        assert!(
            c.description.contains("10 created, 10 updated"),
            "{}",
            c.description
        );
        assert!(chart("campus", &[]).is_none());
    }

    #[test]
    fn token_lifetimes_read_naturally() {
        assert_eq!(lifetime(3600), "1 h");
        assert_eq!(lifetime(1200), "20 min");
        assert_eq!(lifetime(45), "45 s");
        assert_eq!(lifetime(3599), "3599 s");
    }
}
