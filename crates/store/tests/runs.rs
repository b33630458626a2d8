//! Runs: started, finished, listed newest first.

use rostersync_core::plan::{Counts, SyncKind};
use store::{NewRun, RunFinish, RunStatus, StoreError, Trigger};

use crate::harness::{TestDb, conformance, later, now};

fn runs_start_finish_and_list(db: &mut TestDb) {
    let s = db.store();
    assert!(s.list_runs(10).unwrap().is_empty());
    let first = s
        .start_run(&NewRun {
            source: "campus".into(),
            kind: SyncKind::Full,
            trigger: Trigger::Schedule,
            started_at: now(),
        })
        .unwrap();
    let second = s
        .start_run(&NewRun {
            source: "campus".into(),
            kind: SyncKind::User,
            trigger: Trigger::Console,
            started_at: later(1),
        })
        .unwrap();
    assert!(second > first);
    let running = s.get_run(second).unwrap().unwrap();
    assert_eq!(running.status, RunStatus::Running);
    assert_eq!(running.kind, SyncKind::User);
    assert_eq!(running.trigger, Trigger::Console);
    assert_eq!(running.finished_at, None);
    assert!(!running.complete);
    assert_eq!(running.counts, Counts::default());

    let counts = Counts {
        seen: 10,
        errors: 1,
        ..Counts::default()
    };
    s.finish_run(
        first,
        &RunFinish {
            status: RunStatus::Failed,
            complete: false,
            counts,
            error: Some("401 from the token URL: check the client secret — «expired»".into()),
            finished_at: later(2),
        },
    )
    .unwrap();
    let failed = s.get_run(first).unwrap().unwrap();
    assert_eq!(failed.status, RunStatus::Failed);
    assert_eq!(failed.counts, counts);
    assert_eq!(failed.finished_at, Some(later(2)));
    assert_eq!(failed.started_at, now());
    assert_eq!(failed.source, "campus");
    assert_eq!(
        failed.error.as_deref(),
        Some("401 from the token URL: check the client secret — «expired»")
    );

    let listed: Vec<i64> = s.list_runs(0).unwrap().iter().map(|r| r.id).collect();
    assert_eq!(listed, [second, first], "newest first");
    assert_eq!(s.list_runs(1).unwrap().len(), 1);
    assert!(s.get_run(second + 100).unwrap().is_none());
    let err = s
        .finish_run(
            second + 100,
            &RunFinish {
                status: RunStatus::Held,
                complete: true,
                counts,
                error: None,
                finished_at: later(3),
            },
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
}

conformance!(runs_start_finish_and_list);
