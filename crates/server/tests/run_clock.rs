//! The engine takes its time from the server's clock: a sync started while the test's
//! [`server::ManualClock`] stands at a fixed date records that date as the run's start
//! and finish, and the API shows it.

use jiff::Timestamp;
use store::RunId;

use crate::harness::{App, Auth, Options};
use crate::on_both;

/// A small simulated district and a clock standing at a date far from today.
pub fn fixed_date() -> Options {
    Options {
        sim_users: Some(200),
        clock: "2031-02-03T04:05:06Z".parse().unwrap(),
        ..Options::default()
    }
}

fn a_sync_records_the_clocks_date(app: App) {
    let fixed: Timestamp = "2031-02-03T04:05:06Z".parse().unwrap();
    let done = app.full_sync();
    let run_id = RunId(
        done["run_id"]
            .as_i64()
            .expect("the finished sync names its run"),
    );
    let run = app
        .store
        .get_run(run_id)
        .unwrap()
        .expect("the run is recorded");
    assert_eq!(
        run.started_at, fixed,
        "started at the clock's time: {run:?}"
    );
    assert_eq!(
        run.finished_at,
        Some(fixed),
        "finished at the clock's time: {run:?}"
    );
    let shown = app
        .get(
            &format!("/api/v1/runs/{run_id}"),
            &Auth::Bearer(app.read_token.clone()),
        )
        .json();
    assert_eq!(
        shown["started_at"]
            .as_str()
            .map(|s| s.parse::<Timestamp>().unwrap()),
        Some(fixed),
        "{shown}"
    );

    // The clock moves on: the next run starts when it says.
    let later: Timestamp = "2031-02-04T00:00:00Z".parse().unwrap();
    app.clock.set(later);
    let again = app.full_sync();
    let second = app
        .store
        .get_run(RunId(again["run_id"].as_i64().unwrap()))
        .unwrap()
        .unwrap();
    assert_eq!(second.started_at, later, "{second:?}");
}

on_both!(run_clock, crate::run_clock::fixed_date; a_sync_records_the_clocks_date);
