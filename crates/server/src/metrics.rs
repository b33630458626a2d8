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
        let mut out = Exposition::default();
        let runs = "rostersync_runs_total";
        out.family(
            runs,
            "counter",
            "Sync runs this process finished, by status.",
        );
        for ((s, k, st), n) in &i.runs {
            out.sample(runs, &[("source", s), ("kind", k), ("status", st)], n);
        }
        let took = "rostersync_run_duration_seconds";
        out.family(took, "summary", "Wall time of finished runs.");
        for ((s, k), (sum, n)) in &i.run_seconds {
            out.summary(took, &[("source", s), ("kind", k)], sum, n);
        }
        let records = "rostersync_records_total";
        out.family(records, "counter", "People processed by runs, by outcome.");
        for ((s, o), n) in &i.records {
            out.sample(records, &[("source", s), ("outcome", o)], n);
        }
        let pulls = "rostersync_source_pull_seconds";
        out.family(
            pulls,
            "summary",
            "Time spent reading the source (a whole pull).",
        );
        for (s, (sum, n)) in &i.pull_seconds {
            out.summary(pulls, &[("source", s)], sum, n);
        }
        let waits = "rostersync_source_request_seconds";
        out.family(
            waits,
            "summary",
            "Time waiting for the SIS's answers, per request (retries and token requests included).",
        );
        for (s, (n, _, sum)) in &i.source_requests {
            out.summary(waits, &[("source", s)], sum, n);
        }
        let failures = "rostersync_source_request_failures_total";
        out.family(
            failures,
            "counter",
            "Requests to the SIS answered with an error status or not answered.",
        );
        for (s, (_, failed, _)) in &i.source_requests {
            out.sample(failures, &[("source", s)], failed);
        }
        let errors = "rostersync_source_errors_total";
        out.family(
            errors,
            "counter",
            "Runs that failed reading the source or its settings.",
        );
        for (s, n) in &i.source_errors {
            out.sample(errors, &[("source", s)], n);
        }
        let requests = "rostersync_http_requests_total";
        out.family(
            requests,
            "counter",
            "HTTP requests answered, by route and status.",
        );
        for ((m, r, st), (n, _)) in &i.http {
            let st = st.to_string();
            out.sample(requests, &[("method", m), ("route", r), ("status", &st)], n);
        }
        let answering = "rostersync_http_request_seconds_sum";
        out.family(answering, "counter", "Time spent answering, by route.");
        for ((m, r, st), (_, sum)) in &i.http {
            let st = st.to_string();
            out.sample(
                answering,
                &[("method", m), ("route", r), ("status", &st)],
                sum,
            );
        }
        let leader = "rostersync_scheduler_leader";
        out.family(leader, "gauge", "1 when this process runs the schedules.");
        out.sample(leader, &[], u8::from(self.leader.load(Ordering::Relaxed)));
        if let Some(u) = users {
            let directory = "rostersync_directory_users";
            out.family(directory, "gauge", "Accounts in the directory.");
            for (state, n) in [
                ("all", u.users),
                ("active", u.active),
                ("linked", u.linked),
                ("unlinked_active", u.unlinked_active),
            ] {
                out.sample(directory, &[("state", state)], n);
            }
            out.sample("rostersync_directory_groups", &[], u.groups);
        }
        out.0
    }
}

/// The text format being written: each family's `# HELP` and `# TYPE` lines, then its
/// samples, every label value escaped.
#[derive(Default)]
struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    /// `name{label="value",…} value` (no braces without labels).
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.0.push_str(name);
        for (n, (label, v)) in labels.iter().enumerate() {
            let open = if n == 0 { '{' } else { ',' };
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            let _ = write!(self.0, "{open}{label}=\"{v}\"");
        }
        if !labels.is_empty() {
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    /// A summary's two samples: `name_sum` and `name_count`.
    fn summary(&mut self, name: &str, labels: &[(&str, &str)], sum: &f64, count: &u64) {
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every family with a sample or two, the source and route labels needing escapes.
    fn filled() -> Metrics {
        let m = Metrics::default();
        let odd = "campus \"west\"\\\nside";
        m.http("GET", "/users/{id}", 200, Duration::from_millis(1500));
        m.http("BREW", "unmatched", 404, Duration::from_millis(250));
        m.http("GET", "/a\"b", 500, Duration::from_millis(125));
        let counts = Counts {
            seen: 10,
            created: 2,
            updated: 3,
            errors: 1,
            ..Counts::default()
        };
        m.run_finished(
            odd,
            "full",
            "succeeded",
            Duration::from_millis(2500),
            &counts,
        );
        m.run_finished(
            "sis",
            "delta",
            "failed",
            Duration::from_secs(1),
            &Counts::default(),
        );
        m.run_finished(
            "sis",
            "delta",
            "failed",
            Duration::from_secs(2),
            &Counts::default(),
        );
        m.pull_finished(odd, Duration::from_millis(750));
        m.pull_finished("sis", Duration::from_secs(3));
        let stats = oneroster::rest::RequestStats {
            requests: 7,
            failures: 2,
            seconds: 0.5,
        };
        m.source_requests(odd, &stats);
        m.source_requests("sis", &stats);
        m.source_error(odd);
        m.source_error("sis");
        m.source_error("sis");
        m.leader.store(true, Ordering::Relaxed);
        m
    }

    #[test]
    fn the_text_format_is_written_as_before() {
        let m = filled();
        let users = store::UserCounts {
            users: 9,
            active: 8,
            linked: 7,
            unlinked_active: 1,
            groups: 4,
        };
        let with_users = m.render(Some(users));
        assert_eq!(with_users, FILLED);
        let without = m.render(None);
        assert_eq!(
            Some(without.as_str()),
            FILLED.split("# HELP rostersync_directory_users").next()
        );
    }

    #[test]
    fn an_empty_scrape_has_every_family_header() {
        assert_eq!(Metrics::default().render(None), EMPTY);
    }

    const FILLED: &str = r#"# HELP rostersync_runs_total Sync runs this process finished, by status.
# TYPE rostersync_runs_total counter
rostersync_runs_total{source="campus \"west\"\\\nside",kind="full",status="succeeded"} 1
rostersync_runs_total{source="sis",kind="delta",status="failed"} 2
# HELP rostersync_run_duration_seconds Wall time of finished runs.
# TYPE rostersync_run_duration_seconds summary
rostersync_run_duration_seconds_sum{source="campus \"west\"\\\nside",kind="full"} 2.5
rostersync_run_duration_seconds_count{source="campus \"west\"\\\nside",kind="full"} 1
rostersync_run_duration_seconds_sum{source="sis",kind="delta"} 3
rostersync_run_duration_seconds_count{source="sis",kind="delta"} 2
# HELP rostersync_records_total People processed by runs, by outcome.
# TYPE rostersync_records_total counter
rostersync_records_total{source="campus \"west\"\\\nside",outcome="created"} 2
rostersync_records_total{source="campus \"west\"\\\nside",outcome="deactivated"} 0
rostersync_records_total{source="campus \"west\"\\\nside",outcome="error"} 1
rostersync_records_total{source="campus \"west\"\\\nside",outcome="linked"} 0
rostersync_records_total{source="campus \"west\"\\\nside",outcome="reactivated"} 0
rostersync_records_total{source="campus \"west\"\\\nside",outcome="seen"} 10
rostersync_records_total{source="campus \"west\"\\\nside",outcome="skipped"} 0
rostersync_records_total{source="campus \"west\"\\\nside",outcome="unchanged"} 0
rostersync_records_total{source="campus \"west\"\\\nside",outcome="updated"} 3
rostersync_records_total{source="sis",outcome="created"} 0
rostersync_records_total{source="sis",outcome="deactivated"} 0
rostersync_records_total{source="sis",outcome="error"} 0
rostersync_records_total{source="sis",outcome="linked"} 0
rostersync_records_total{source="sis",outcome="reactivated"} 0
rostersync_records_total{source="sis",outcome="seen"} 0
rostersync_records_total{source="sis",outcome="skipped"} 0
rostersync_records_total{source="sis",outcome="unchanged"} 0
rostersync_records_total{source="sis",outcome="updated"} 0
# HELP rostersync_source_pull_seconds Time spent reading the source (a whole pull).
# TYPE rostersync_source_pull_seconds summary
rostersync_source_pull_seconds_sum{source="campus \"west\"\\\nside"} 0.75
rostersync_source_pull_seconds_count{source="campus \"west\"\\\nside"} 1
rostersync_source_pull_seconds_sum{source="sis"} 3
rostersync_source_pull_seconds_count{source="sis"} 1
# HELP rostersync_source_request_seconds Time waiting for the SIS's answers, per request (retries and token requests included).
# TYPE rostersync_source_request_seconds summary
rostersync_source_request_seconds_sum{source="campus \"west\"\\\nside"} 0.5
rostersync_source_request_seconds_count{source="campus \"west\"\\\nside"} 7
rostersync_source_request_seconds_sum{source="sis"} 0.5
rostersync_source_request_seconds_count{source="sis"} 7
# HELP rostersync_source_request_failures_total Requests to the SIS answered with an error status or not answered.
# TYPE rostersync_source_request_failures_total counter
rostersync_source_request_failures_total{source="campus \"west\"\\\nside"} 2
rostersync_source_request_failures_total{source="sis"} 2
# HELP rostersync_source_errors_total Runs that failed reading the source or its settings.
# TYPE rostersync_source_errors_total counter
rostersync_source_errors_total{source="campus \"west\"\\\nside"} 1
rostersync_source_errors_total{source="sis"} 2
# HELP rostersync_http_requests_total HTTP requests answered, by route and status.
# TYPE rostersync_http_requests_total counter
rostersync_http_requests_total{method="GET",route="/a\"b",status="500"} 1
rostersync_http_requests_total{method="GET",route="/users/{id}",status="200"} 1
rostersync_http_requests_total{method="other",route="unmatched",status="404"} 1
# HELP rostersync_http_request_seconds_sum Time spent answering, by route.
# TYPE rostersync_http_request_seconds_sum counter
rostersync_http_request_seconds_sum{method="GET",route="/a\"b",status="500"} 0.125
rostersync_http_request_seconds_sum{method="GET",route="/users/{id}",status="200"} 1.5
rostersync_http_request_seconds_sum{method="other",route="unmatched",status="404"} 0.25
# HELP rostersync_scheduler_leader 1 when this process runs the schedules.
# TYPE rostersync_scheduler_leader gauge
rostersync_scheduler_leader 1
# HELP rostersync_directory_users Accounts in the directory.
# TYPE rostersync_directory_users gauge
rostersync_directory_users{state="all"} 9
rostersync_directory_users{state="active"} 8
rostersync_directory_users{state="linked"} 7
rostersync_directory_users{state="unlinked_active"} 1
rostersync_directory_groups 4
"#;

    const EMPTY: &str = r#"# HELP rostersync_runs_total Sync runs this process finished, by status.
# TYPE rostersync_runs_total counter
# HELP rostersync_run_duration_seconds Wall time of finished runs.
# TYPE rostersync_run_duration_seconds summary
# HELP rostersync_records_total People processed by runs, by outcome.
# TYPE rostersync_records_total counter
# HELP rostersync_source_pull_seconds Time spent reading the source (a whole pull).
# TYPE rostersync_source_pull_seconds summary
# HELP rostersync_source_request_seconds Time waiting for the SIS's answers, per request (retries and token requests included).
# TYPE rostersync_source_request_seconds summary
# HELP rostersync_source_request_failures_total Requests to the SIS answered with an error status or not answered.
# TYPE rostersync_source_request_failures_total counter
# HELP rostersync_source_errors_total Runs that failed reading the source or its settings.
# TYPE rostersync_source_errors_total counter
# HELP rostersync_http_requests_total HTTP requests answered, by route and status.
# TYPE rostersync_http_requests_total counter
# HELP rostersync_http_request_seconds_sum Time spent answering, by route.
# TYPE rostersync_http_request_seconds_sum counter
# HELP rostersync_scheduler_leader 1 when this process runs the schedules.
# TYPE rostersync_scheduler_leader gauge
rostersync_scheduler_leader 0
"#;
}
