//! What a push batch records: a run item per account or group, and what the target now
//! holds of each (`push_state`, `push_groups`) for a record sent, failed or forgotten.

use std::collections::{BTreeMap, BTreeSet};

use oneroster::Role;
use rostersync_core::directory::AccountId;
use rostersync_core::plan::{Counts, Outcome, PushFailure, Reason};
use rostersync_core::push::{Pushed, PushedGroup};
use store::{GroupRecord, GroupWrite, PushRecord, PushWrite, Store};

use crate::harness::{
    TestDb, assert_item_counts_true, config, conformance, later, now, person, start, sync,
};

conformance!(a_push_batch_records_what_the_target_holds);

const TARGET: &str = "desk";

fn id_of(s: &Store, email: &str) -> AccountId {
    s.find_user(email).unwrap().unwrap().user.id
}

fn pushed(name: &str, active: bool) -> Pushed {
    Pushed {
        attrs: BTreeMap::from([("userName".to_owned(), name.to_owned())]),
        active,
    }
}

fn account(account: AccountId, state: PushWrite) -> PushRecord {
    let target = TARGET.to_owned();
    let (outcome, reason) = match &state {
        PushWrite::Failed { error } => (
            Outcome::Error,
            Reason::PushFailed(Box::new(PushFailure {
                target,
                detail: error.clone(),
            })),
        ),
        _ => (Outcome::Created, Reason::PushedNew { target }),
    };
    PushRecord {
        account,
        outcome,
        reason,
        changes: Vec::new(),
        state,
    }
}

fn group(group: i64, state: GroupWrite) -> GroupRecord {
    GroupRecord {
        group,
        outcome: Outcome::Created,
        reason: Reason::PushedNew {
            target: TARGET.to_owned(),
        },
        state,
    }
}

fn sent(remote: &str, name: &str, active: bool) -> PushWrite {
    PushWrite::Sent {
        remote_id: remote.to_owned(),
        pushed: pushed(name, active),
    }
}

fn sent_group(remote: &str, members: &[&str]) -> GroupWrite {
    GroupWrite::Sent {
        remote_id: remote.to_owned(),
        pushed: PushedGroup {
            name: "Algebra".to_owned(),
            members: members
                .iter()
                .map(|m| (*m).to_owned())
                .collect::<BTreeSet<_>>(),
        },
    }
}

fn failed(error: &str) -> PushWrite {
    PushWrite::Failed {
        error: error.to_owned(),
    }
}

fn a_push_batch_records_what_the_target_holds(db: &mut TestDb) {
    let s = db.store();
    let cfg = config("");
    sync(
        s,
        &cfg,
        &[
            person("s1", Role::Student, "Ana", "Li", Some("ana@x.org")),
            person("s2", Role::Student, "Bo", "Ek", Some("bo@x.org")),
            person("s3", Role::Student, "Cy", "Do", Some("cy@x.org")),
        ],
        now(),
    );
    let (ana, bo, cy) = (
        id_of(s, "ana@x.org"),
        id_of(s, "bo@x.org"),
        id_of(s, "cy@x.org"),
    );

    let first = start(s, &cfg.sources[0].name);
    s.record_push(
        first,
        TARGET,
        &[
            account(ana, sent("r-ana", "ana", true)),
            account(bo, failed("HTTP 500")),
            account(cy, sent("r-cy", "cy", false)),
        ],
        later(1),
    )
    .unwrap();
    s.record_push_groups(
        first,
        TARGET,
        &[
            group(7, sent_group("r-g7", &["r-ana", "r-cy"])),
            group(
                8,
                GroupWrite::Failed {
                    error: "HTTP 409".to_owned(),
                },
            ),
        ],
        later(1),
    )
    .unwrap();

    let held = s.push_held(TARGET).unwrap();
    assert_eq!(held[&ana].0.hash, pushed("ana", true).hash());
    assert!(held[&ana].0.active);
    assert_eq!(held[&ana].1.as_deref(), Some("r-ana"));
    // A user the target never had: a row no hash matches, inactive, no remote id.
    assert_eq!(held[&bo].0.hash, 0);
    assert!(!held[&bo].0.active);
    assert_eq!(held[&bo].1, None);
    assert!(!held[&cy].0.active);
    assert_eq!(
        s.pushed(TARGET, &[ana, bo]).unwrap()[&bo],
        Pushed::default()
    );
    let counts = s.target_counts(TARGET).unwrap();
    assert_eq!((counts.held, counts.active, counts.failing), (2, 1, 1));
    let groups = s.held_groups(TARGET).unwrap();
    assert_eq!(groups[&7].remote_id.as_deref(), Some("r-g7"));
    assert_eq!(groups[&7].hash, groups[&7].pushed.hash());
    assert_eq!(groups[&8].remote_id, None);
    assert_eq!(groups[&8].hash, 0);
    assert_eq!(groups[&8].pushed, PushedGroup::default());

    let items = s.run_items(first, None, 0, 0).unwrap();
    let mut ids: Vec<(String, Option<AccountId>, &str)> = items
        .iter()
        .map(|i| (i.sourced_id.clone(), i.user_id, i.outcome.as_str()))
        .collect();
    ids.sort();
    let mut want = vec![
        (ana.to_string(), Some(ana), "created"),
        (bo.to_string(), Some(bo), "error"),
        (cy.to_string(), Some(cy), "created"),
        ("group:7".to_owned(), None, "created"),
        ("group:8".to_owned(), None, "created"),
    ];
    want.sort();
    assert_eq!(ids, want);

    // A failure keeps what the target held and takes the error; a success clears it; a
    // forgotten user or group is gone.
    let second = start(s, &cfg.sources[0].name);
    s.record_push(
        second,
        TARGET,
        &[
            account(ana, failed("HTTP 503")),
            account(bo, sent("r-bo", "bo", true)),
            account(cy, PushWrite::Forgotten),
        ],
        later(2),
    )
    .unwrap();
    s.record_push_groups(
        second,
        TARGET,
        &[
            group(7, GroupWrite::Forgotten),
            group(8, sent_group("r-g8", &["r-bo"])),
        ],
        later(2),
    )
    .unwrap();
    let held = s.push_held(TARGET).unwrap();
    assert_eq!(held.len(), 2);
    assert_eq!(held[&ana].0.hash, pushed("ana", true).hash());
    assert_eq!(held[&ana].1.as_deref(), Some("r-ana"));
    assert_eq!(held[&bo].1.as_deref(), Some("r-bo"));
    let states = s.push_states(ana).unwrap();
    assert_eq!(states[0].error.as_deref(), Some("HTTP 503"));
    assert_eq!(s.push_states(bo).unwrap()[0].error, None);
    let counts = s.target_counts(TARGET).unwrap();
    assert_eq!((counts.held, counts.active, counts.failing), (2, 2, 1));
    let groups = s.held_groups(TARGET).unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[&8].remote_id.as_deref(), Some("r-g8"));
    assert_eq!(
        db.rows("SELECT error FROM push_groups WHERE group_id = 8"),
        vec![vec![None]]
    );
    assert_item_counts_true(db);

    // A held push: its items counted, cleared before its approval, then recorded.
    let held_run = start(s, &cfg.sources[0].name);
    let would = [
        account(ana, sent("r-ana", "ana", true)),
        account(cy, failed("HTTP 500")),
    ];
    s.hold_push(held_run, &Counts::default(), &[], &would, later(4))
        .unwrap();
    assert_eq!(item_total(s, held_run), 2);
    assert_item_counts_true(db);
    s.clear_run_items(held_run).unwrap();
    assert_eq!(item_total(s, held_run), 0);
    assert_item_counts_true(db);
    s.record_push(held_run, TARGET, &would[..1], later(5))
        .unwrap();
    assert_eq!(item_total(s, held_run), 1);
    assert_item_counts_true(db);
}

fn item_total(s: &Store, run: store::RunId) -> u64 {
    s.run_item_counts(run)
        .unwrap()
        .iter()
        .map(|(_, _, n)| n)
        .sum()
}
