//! The scheduler fires a delta on time, in the district's time zone, against a simulated
//! district whose days move on (`/_sim/advance`); the clock is moved, not waited for.
//! A pause window keeps it quiet.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use store::{RunRecord, Trigger};

use crate::harness::{App, Options, poll};
use crate::on_both;

pub fn at_night() -> Options {
    Options {
        sim_users: Some(200),
        scheduler: true,
        // Tuesday 2026-09-01, 01:58 in Chicago (CDT, UTC-5).
        clock: "2026-09-01T06:58:00Z".parse().unwrap(),
        ..Options::default()
    }
}

fn scheduled(app: &App) -> Vec<RunRecord> {
    app.store
        .list_runs(0)
        .unwrap()
        .into_iter()
        .filter(|r| r.trigger == Trigger::Schedule)
        .collect()
}

fn wait_for_scheduled(app: &App, n: usize) -> Vec<RunRecord> {
    poll(60, &format!("{n} scheduled runs to finish"), || {
        let runs = scheduled(app);
        if runs.len() >= n && runs.iter().all(|r| r.finished_at.is_some()) {
            Ok(runs)
        } else {
            Err(format!("{runs:?}"))
        }
    })
}

fn a_delta_fires_on_time(mut app: App) {
    app.configure_sim(
        "[source.schedule]\nfull = \"weekly sun 02:00\"\ndelta = \"daily 02:00\"\ntime_zone = \"America/Chicago\"\npause = [{ from = \"2026-09-02\", to = \"2026-09-02\" }]\n",
    );
    app.full_sync();
    // The district lives a day.
    let sim = app.sim.as_ref().unwrap();
    let advanced = app.runtime.block_on(async {
        reqwest::Client::new()
            .post(format!("http://{}/_sim/advance?days=1", sim.addr()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert!(advanced.contains("\"day\":1"), "{advanced}");

    // 01:59:30 — not yet.
    app.clock
        .set("2026-09-01T06:59:30Z".parse::<Timestamp>().unwrap());
    std::thread::sleep(Duration::from_millis(600));
    assert!(scheduled(&app).is_empty(), "nothing before 02:00");

    // 02:00:01 Chicago time — the delta runs.
    app.clock
        .set("2026-09-01T07:00:01Z".parse::<Timestamp>().unwrap());
    let runs = wait_for_scheduled(&app, 1);
    let r = &runs[0];
    assert_eq!(r.kind.as_str(), "delta", "{r:?}");
    assert_eq!(r.status.as_str(), "succeeded", "{r:?}");
    assert!(r.counts.seen > 0, "the day's changes were pulled: {r:?}");

    // The next night falls in the pause window: nothing runs.
    app.clock
        .set("2026-09-02T07:00:01Z".parse::<Timestamp>().unwrap());
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(scheduled(&app).len(), 1, "paused on 2026-09-02");
    // The night after, it runs again.
    app.clock
        .set("2026-09-03T07:00:01Z".parse::<Timestamp>().unwrap());
    let runs = wait_for_scheduled(&app, 2);
    assert_eq!(runs[0].kind.as_str(), "delta");
}

on_both!(scheduler, crate::scheduler::at_night; a_delta_fires_on_time);

/// Two `serve` processes on one database: one leads the scheduler; when it stops, the
/// other takes over.
fn one_scheduler_leader(app: App) {
    use std::sync::atomic::Ordering;
    let start = |app: &App| {
        let mut options = server::ServerOptions::new("127.0.0.1:0".parse().unwrap());
        options.scheduler = true;
        options.scheduler_tick = Duration::from_millis(50);
        app.runtime
            .block_on(server::start(
                std::sync::Arc::clone(&app.store),
                Some(app.keyring.clone()),
                options,
            ))
            .unwrap()
    };
    let a = start(&app);
    let b = start(&app);
    let leaders = |servers: &[&server::RunningServer]| {
        servers
            .iter()
            .filter(|s| s.state.metrics.leader.load(Ordering::Relaxed))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while leaders(&[&a, &b]) == 0 {
        assert!(Instant::now() < deadline, "nobody leads");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(leaders(&[&a, &b]), 1, "exactly one leader");
    let (leader, other) = if a.state.metrics.leader.load(Ordering::Relaxed) {
        (a, b)
    } else {
        (b, a)
    };
    app.runtime.block_on(leader.stop());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !other.state.metrics.leader.load(Ordering::Relaxed) {
        assert!(
            Instant::now() < deadline,
            "the other server never took over"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    app.runtime.block_on(other.stop());
}

on_both!(leader, crate::harness::plain; one_scheduler_leader);
