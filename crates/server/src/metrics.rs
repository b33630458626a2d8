//! `/metrics` in the Prometheus text format: what this process saw and can vouch for —
//! the runs it ran (by status, their duration and records), how long their pulls took
//! and how often the source failed, the HTTP requests it answered, whether it leads the
//! scheduler — plus the directory's size read from the store at scrape time.
//!
//! A push to a SCIM target is counted as a run of kind `push` whose `source` label is
//! the target (sources and targets are named apart).
//!
//! The SIS's own side comes from the OneRoster client's request counters: requests sent
//! (token requests and retries included), the ones that failed (an error status or no
//! answer) and the time spent waiting for answers.
//!
//! Labels a client can influence are bounded: the HTTP method is one of a fixed set
//! ([`method_label`]) and the route is the matched route's template or `unmatched`, so an
//! anonymous caller cannot grow the series without end.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rostersync_core::plan::Counts;

#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    pub leader: AtomicBool,
}

#[derive(Debug, Default)]
struct Inner {
    /// (source, kind, status) → runs.
    runs: BTreeMap<(String, String, String), u64>,
    /// (source, kind) → (sum of seconds, count).
    run_seconds: BTreeMap<(String, String), (f64, u64)>,
    /// (source, outcome) → records.
    records: BTreeMap<(String, &'static str), u64>,
    /// source → (sum of pull seconds, pulls).
    pull_seconds: BTreeMap<String, (f64, u64)>,
    /// source → requests to the SIS, failed ones, seconds waited.
    source_requests: BTreeMap<String, (u64, u64, f64)>,
    /// source → failed pulls (configuration, authentication, network).
    source_errors: BTreeMap<String, u64>,
    /// (method, route, status) → (requests, sum of seconds).
    http: BTreeMap<(String, String, u16), (u64, f64)>,
}

/// The `method` label: the standard methods by name, anything else `other`. Anyone may
/// send any method name, and each distinct label would be a new series kept forever.
pub fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one answered request. `route` must be the route's template (`/users/{id}`)
    /// or `unmatched`, never the raw path; the method is folded into [`method_label`].
    pub fn http(&self, method: &str, route: &str, status: u16, took: Duration) {
        let mut i = self.lock();
        let e = i
            .http
            .entry((method_label(method).to_owned(), route.to_owned(), status))
            .or_default();
        e.0 += 1;
        e.1 += took.as_secs_f64();
    }

    pub fn run_finished(
        &self,
        source: &str,
        kind: &str,
        status: &str,
        took: Duration,
        counts: &Counts,
    ) {
        let mut i = self.lock();
        *i.runs
            .entry((source.to_owned(), kind.to_owned(), status.to_owned()))
            .or_default() += 1;
        let e = i
            .run_seconds
            .entry((source.to_owned(), kind.to_owned()))
            .or_default();
        e.0 += took.as_secs_f64();
        e.1 += 1;
        for (outcome, n) in [
            ("seen", counts.seen),
            ("created", counts.created),
            ("updated", counts.updated),
            ("unchanged", counts.unchanged),
            ("skipped", counts.skipped),
            ("linked", counts.linked),
            ("deactivated", counts.deactivated),
            ("reactivated", counts.reactivated),
            ("error", counts.errors),
        ] {
            *i.records.entry((source.to_owned(), outcome)).or_default() += n;
        }
    }

    pub fn pull_finished(&self, source: &str, took: Duration) {
        let mut i = self.lock();
        let e = i.pull_seconds.entry(source.to_owned()).or_default();
        e.0 += took.as_secs_f64();
        e.1 += 1;
    }

    /// A pull's (or a single-user fetch's) requests to the SIS.
    pub fn source_requests(&self, source: &str, stats: &oneroster::rest::RequestStats) {
        let mut i = self.lock();
        let e = i.source_requests.entry(source.to_owned()).or_default();
        e.0 += stats.requests;
        e.1 += stats.failures;
        e.2 += stats.seconds;
    }

    pub fn source_error(&self, source: &str) {
        *self
            .lock()
            .source_errors
            .entry(source.to_owned())
            .or_default() += 1;
    }

    /// The text format; `users` are the directory's counts when the store answered.
    pub fn render(&self, users: Option<store::UserCounts>) -> String {
        let i = self.lock();
        let mut out = String::new();
        let esc = |s: &str| {
            s.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        };
        let _ = writeln!(
            out,
            "# HELP rostersync_runs_total Sync runs this process finished, by status."
        );
        let _ = writeln!(out, "# TYPE rostersync_runs_total counter");
        for ((s, k, st), n) in &i.runs {
            let _ = writeln!(
                out,
                "rostersync_runs_total{{source=\"{}\",kind=\"{k}\",status=\"{st}\"}} {n}",
                esc(s)
            );
        }
        let _ = writeln!(
            out,
            "# HELP rostersync_run_duration_seconds Wall time of finished runs."
        );
        let _ = writeln!(out, "# TYPE rostersync_run_duration_seconds summary");
        for ((s, k), (sum, n)) in &i.run_seconds {
            let _ = writeln!(
                out,
                "rostersync_run_duration_seconds_sum{{source=\"{}\",kind=\"{k}\"}} {sum}",
                esc(s)
            );
            let _ = writeln!(
                out,
                "rostersync_run_duration_seconds_count{{source=\"{}\",kind=\"{k}\"}} {n}",
                esc(s)
            );
        }
        let _ = writeln!(
            out,
            "# HELP rostersync_records_total People processed by runs, by outcome."
        );
        let _ = writeln!(out, "# TYPE rostersync_records_total counter");
        for ((s, o), n) in &i.records {
            let _ = writeln!(
                out,
                "rostersync_records_total{{source=\"{}\",outcome=\"{o}\"}} {n}",
                esc(s)
            );
        }
        let _ = writeln!(
            out,
            "# HELP rostersync_source_pull_seconds Time spent reading the source (a whole pull)."
        );
        let _ = writeln!(out, "# TYPE rostersync_source_pull_seconds summary");
        for (s, (sum, n)) in &i.pull_seconds {
            let _ = writeln!(
                out,
                "rostersync_source_pull_seconds_sum{{source=\"{}\"}} {sum}",
                esc(s)
            );
            let _ = writeln!(
                out,
                "rostersync_source_pull_seconds_count{{source=\"{}\"}} {n}",
                esc(s)
            );
        }
        let _ = writeln!(
            out,
            "# HELP rostersync_source_request_seconds Time waiting for the SIS's answers, per request (retries and token requests included)."
        );
        let _ = writeln!(out, "# TYPE rostersync_source_request_seconds summary");
        for (s, (n, _, sum)) in &i.source_requests {
            let _ = writeln!(
                out,
                "rostersync_source_request_seconds_sum{{source=\"{}\"}} {sum}",
                esc(s)
            );
            let _ = writeln!(
                out,
                "rostersync_source_request_seconds_count{{source=\"{}\"}} {n}",
                esc(s)
            );
        }
        let _ = writeln!(
            out,
            "# HELP rostersync_source_request_failures_total Requests to the SIS answered with an error status or not answered."
        );
        let _ = writeln!(
            out,
            "# TYPE rostersync_source_request_failures_total counter"
        );
        for (s, (_, failed, _)) in &i.source_requests {
            let _ = writeln!(
                out,
                "rostersync_source_request_failures_total{{source=\"{}\"}} {failed}",
                esc(s)
            );
        }
        let _ = writeln!(
            out,
            "# HELP rostersync_source_errors_total Runs that failed reading the source or its settings."
        );
        let _ = writeln!(out, "# TYPE rostersync_source_errors_total counter");
        for (s, n) in &i.source_errors {
            let _ = writeln!(
                out,
                "rostersync_source_errors_total{{source=\"{}\"}} {n}",
                esc(s)
            );
        }
        let _ = writeln!(
            out,
            "# HELP rostersync_http_requests_total HTTP requests answered, by route and status."
        );
        let _ = writeln!(out, "# TYPE rostersync_http_requests_total counter");
        for ((m, r, st), (n, _)) in &i.http {
            let _ = writeln!(
                out,
                "rostersync_http_requests_total{{method=\"{m}\",route=\"{}\",status=\"{st}\"}} {n}",
                esc(r)
            );
        }
        let _ = writeln!(
            out,
            "# HELP rostersync_http_request_seconds_sum Time spent answering, by route."
        );
        let _ = writeln!(out, "# TYPE rostersync_http_request_seconds_sum counter");
        for ((m, r, st), (_, sum)) in &i.http {
            let _ = writeln!(
                out,
                "rostersync_http_request_seconds_sum{{method=\"{m}\",route=\"{}\",status=\"{st}\"}} {sum}",
                esc(r)
            );
        }
        let _ = writeln!(
            out,
            "# HELP rostersync_scheduler_leader 1 when this process runs the schedules."
        );
        let _ = writeln!(out, "# TYPE rostersync_scheduler_leader gauge");
        let _ = writeln!(
            out,
            "rostersync_scheduler_leader {}",
            u8::from(self.leader.load(Ordering::Relaxed))
        );
        if let Some(u) = users {
            let _ = writeln!(
                out,
                "# HELP rostersync_directory_users Accounts in the directory."
            );
            let _ = writeln!(out, "# TYPE rostersync_directory_users gauge");
            for (state, n) in [
                ("all", u.users),
                ("active", u.active),
                ("linked", u.linked),
                ("unlinked_active", u.unlinked_active),
            ] {
                let _ = writeln!(out, "rostersync_directory_users{{state=\"{state}\"}} {n}");
            }
            let _ = writeln!(out, "rostersync_directory_groups {}", u.groups);
        }
        out
    }
}
