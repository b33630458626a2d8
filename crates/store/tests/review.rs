//! The review queue: cases opened and refreshed by applied plans (never by held ones),
//! closed when the SIS settles them or a complete pull no longer has the person, resolved by an admin three ways, and the decisions
//! honoured by the next plan.

use oneroster::Role;
use rostersync_core::directory::AccountId;
use rostersync_core::plan::{Outcome, SyncKind};
use rostersync_core::view::Decision;
use store::{CaseResolution, CaseStatus, ReviewCaseId, Store, StoreError};

use crate::harness::{
    TestDb, config, conformance, later, now, person, plan_kind, plan_store, sso_row, start, sync,
};
use crate::lifecycle::item;

fn id_of(s: &Store, email: &str) -> AccountId {
    s.find_user(email).unwrap().unwrap().user.id
}

/// Two sign-on accounts sharing one email (as after a hand edit): the ids.
fn twins(db: &TestDb, email: &str, first: &str) -> (AccountId, AccountId) {
    let s = db.store();
    let other = format!("other-{email}");
    s.import_accounts(
        &[sso_row(email, first, "One"), sso_row(&other, first, "Two")],
        "google",
        now(),
    )
    .unwrap();
    let (a, b) = (id_of(s, email), id_of(s, &other));
    db.exec(&format!(
        "UPDATE users SET email = '{email}', email_lc = '{email}' WHERE id = {b}"
    ));
    (a, b)
}

fn case_of(s: &Store, sourced_id: &str) -> store::ReviewCase {
    s.review_cases(None, None, 0)
        .unwrap()
        .into_iter()
        .rev()
        .find(|c| c.sourced_id == sourced_id)
        .unwrap_or_else(|| panic!("no case for {sourced_id}"))
}

fn applies_open_refresh_and_close_cases(db: &mut TestDb) {
    let s = db.store();
    let cfg = config("");
    let (a, b) = twins(db, "dup@x.org", "Dup");
    s.import_accounts(&[sso_row("twin@x.org", "Tw", "In")], "google", now())
        .unwrap();
    let twin = id_of(s, "twin@x.org");
    let mut people = vec![
        person("x1", Role::Student, "Dup", "Three", Some("dup@x.org")),
        person("p1", Role::Student, "Tw", "In", Some("twin@x.org")),
        person("p2", Role::Student, "Tw", "In", Some("twin@x.org")),
        person("s1", Role::Student, "Ana", "Li", Some("ana@x.org")),
    ];

    // A held plan has not happened: no case.
    let p = plan_store(s, &cfg, &people);
    assert!(
        p.review.iter().any(|r| r.sourced_id() == "x1"),
        "the plan carries the evidence"
    );
    let held = start(s, "sis");
    s.hold_run(held, p.clone(), &[], &[], now()).unwrap();
    assert!(s.review_cases(None, None, 0).unwrap().is_empty());

    let (run1, _, _) = sync(s, &cfg, &people, now());
    let open = s.review_cases(Some("open"), None, 0).unwrap();
    assert_eq!(
        open.iter()
            .map(|c| c.sourced_id.as_str())
            .collect::<Vec<_>>(),
        ["p1", "p2", "x1"]
    );
    let x1 = case_of(s, "x1");
    assert_eq!(x1.status, CaseStatus::Open);
    assert_eq!(x1.source, "sis");
    assert_eq!(x1.reason_code, "disputed");
    assert!(
        x1.reason.contains("several accounts match by email"),
        "{}",
        x1.reason
    );
    let candidates: Vec<(AccountId, &str, Option<&str>, Option<&str>)> = x1
        .candidates
        .iter()
        .map(|c| {
            (
                c.id,
                c.name.as_str(),
                c.email.as_deref(),
                c.linked_to.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        candidates,
        [
            (a, "Dup One", Some("dup@x.org"), None),
            (b, "Dup Two", Some("dup@x.org"), None)
        ]
    );
    let e = &x1.evidence;
    assert_eq!(
        (
            e.name.as_str(),
            e.email.as_deref(),
            e.username.as_deref(),
            e.identifier.as_deref(),
            e.role.as_deref(),
            e.grade.as_deref(),
            e.school.as_deref()
        ),
        (
            "Dup Three",
            Some("dup@x.org"),
            Some("dupthree"),
            Some("ID-x1"),
            Some("student"),
            Some("05"),
            Some("school-1")
        )
    );
    assert_eq!((x1.opened_run, x1.last_run), (Some(run1), Some(run1)));
    assert_eq!((x1.opened_at, x1.updated_at), (now(), now()));
    assert_eq!(
        (&x1.resolution, &x1.resolved_by, x1.resolved_at),
        (&None, &None, None)
    );
    let p1 = case_of(s, "p1");
    assert_eq!(p1.reason_code, "claimed_by_several");
    assert_eq!(p1.candidates[0].id, twin);
    assert_eq!(s.review_case(x1.id).unwrap().unwrap(), x1);
    assert_eq!(s.review_case(ReviewCaseId(x1.id.0 + 100)).unwrap(), None);

    // The next run refreshes the same cases.
    let (run2, _, _) = sync(s, &cfg, &people, later(1));
    let again = case_of(s, "x1");
    assert_eq!(again.id, x1.id);
    assert_eq!((again.opened_run, again.last_run), (Some(run1), Some(run2)));
    assert_eq!((again.opened_at, again.updated_at), (now(), later(1)));
    assert_eq!(
        s.review_cases(None, None, 0).unwrap().len(),
        3,
        "no second case"
    );

    // The SIS settles two of them: x1's twin gets another email, p2 leaves the SIS's twin
    // email behind. The person is linked by the sync: the case closes.
    db.exec(&format!(
        "UPDATE users SET email = 'dup-2@x.org', email_lc = 'dup-2@x.org' WHERE id = {b}"
    ));
    people[2].edit(|f| f.email = Some("p2@x.org".into()));
    // Its own username too: p1's account has `twin` now, and two active accounts never
    // share one.
    people[2].edit(|f| f.username = "twin2".into());
    let (run3, p, _) = sync(s, &cfg, &people, later(2));
    assert_eq!(item(&p, "x1").outcome, Outcome::Linked);
    assert_eq!(item(&p, "p1").outcome, Outcome::Linked);
    let closed = case_of(s, "x1");
    assert_eq!(closed.status, CaseStatus::Closed);
    assert_eq!(closed.resolution.as_deref(), Some("resolved by the SIS"));
    assert_eq!(closed.resolved_by.as_deref(), Some("source:sis"));
    assert_eq!(closed.resolved_at, Some(later(2)));
    assert_eq!(
        closed.last_run,
        Some(run2),
        "last seen disputed in run 2, not {run3}"
    );
    assert_eq!(closed.candidates[0].linked_to.as_deref(), Some("sis:x1"));
    assert_eq!(case_of(s, "p1").status, CaseStatus::Closed);
    assert_eq!(
        case_of(s, "p2").status,
        CaseStatus::Closed,
        "p2 was created"
    );
    assert!(s.review_cases(Some("open"), None, 0).unwrap().is_empty());
    assert_eq!(
        s.review_cases(Some("closed"), None, 2).unwrap().len(),
        2,
        "limit"
    );
    let closed = s.review_cases(Some("closed"), None, 0).unwrap();
    assert_eq!(
        s.review_cases(Some("closed"), Some(closed[0].id), 0)
            .unwrap(),
        closed[1..].to_vec(),
        "paged by id"
    );

    // A new dispute: a new case, the closed ones kept.
    twins(db, "eve@x.org", "Eve");
    people.push(person("s9", Role::Student, "Eve", "Li", Some("eve@x.org")));
    sync(s, &cfg, &people, later(3));
    let s9 = case_of(s, "s9");
    assert_eq!(s9.reason_code, "disputed", "{s9:?}");
    assert_eq!(s.review_cases(None, None, 0).unwrap().len(), 4);

    // The person leaves the SIS. A delta does not know that: the case stays open. A
    // complete full pull does: the case closes, nothing left to decide.
    people.pop();
    let view = s.load_view("sis").unwrap();
    let delta = plan_kind(&cfg, &view, &people, SyncKind::Delta, None, later(4));
    assert!(delta.gone_cases.is_empty());
    let (_, p, _) = sync(s, &cfg, &people, later(4));
    assert_eq!(p.gone_cases, ["s9"]);
    let gone = case_of(s, "s9");
    assert_eq!(gone.status, CaseStatus::Closed);
    assert_eq!(
        gone.resolution.as_deref(),
        Some("the person is gone from the SIS")
    );
    assert_eq!(gone.resolved_by.as_deref(), Some("source:sis"));
    assert!(s.review_cases(Some("open"), None, 0).unwrap().is_empty());
    let (_, again, _) = sync(s, &cfg, &people, later(5));
    assert!(again.gone_cases.is_empty(), "closed once");
}

fn cases_resolve_three_ways_and_decisions_stick(db: &mut TestDb) {
    let s = db.store();
    let cfg = config("");
    s.save_config(&cfg, &[], "owner", now()).unwrap();
    let (ann, _) = twins(db, "ann@x.org", "Ann");
    twins(db, "ben@x.org", "Ben");
    twins(db, "cal@x.org", "Cal");
    let (_, dee2) = twins(db, "dee@x.org", "Dee");
    let people = vec![
        person("pa", Role::Student, "Ann", "Ek", Some("ann@x.org")),
        person("pb", Role::Student, "Ben", "Ek", Some("ben@x.org")),
        person("pc", Role::Student, "Cal", "Ek", Some("cal@x.org")),
        person("pd", Role::Student, "Dee", "Ek", Some("dee@x.org")),
        person("s1", Role::Student, "Bo", "Ro", Some("bo@x.org")),
    ];
    sync(s, &cfg, &people, now());
    assert_eq!(s.review_cases(Some("open"), None, 0).unwrap().len(), 4);
    let bo = id_of(s, "bo@x.org");

    s.resolve_case(
        case_of(s, "pa").id,
        CaseResolution::Link(ann),
        "alice",
        later(1),
    )
    .unwrap();
    s.resolve_case(
        case_of(s, "pb").id,
        CaseResolution::Create,
        "alice",
        later(1),
    )
    .unwrap();
    s.resolve_case(case_of(s, "pc").id, CaseResolution::Ignore, "bob", later(2))
        .unwrap();
    let pa = case_of(s, "pa");
    assert_eq!(pa.status, CaseStatus::Resolved);
    assert!(
        pa.resolution
            .as_deref()
            .unwrap()
            .starts_with(&format!("linked to account #{ann}")),
        "{pa:?}"
    );
    assert_eq!(
        (pa.resolved_by.as_deref(), pa.resolved_at),
        (Some("admin:alice"), Some(later(1)))
    );
    let pc = case_of(s, "pc");
    assert_eq!(
        pc.resolution.as_deref(),
        Some("ignored by every later sync")
    );
    assert_eq!(pc.resolved_by.as_deref(), Some("admin:bob"));
    let audit = s.audit_log(0).unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|a| a.action == "review.resolve")
            .count(),
        3
    );
    assert!(
        audit.iter().any(|a| a.action == "user.link"),
        "the link is link_user's"
    );

    // A link the rules refuse leaves the case open: a merged account, an account already
    // linked to another person.
    let pd = case_of(s, "pd").id;
    db.exec(&format!(
        "UPDATE users SET merged_into = {bo} WHERE id = {dee2}"
    ));
    let err = s
        .resolve_case(pd, CaseResolution::Link(dee2), "alice", later(3))
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(ref m) if m.contains("merged")),
        "{err}"
    );
    let err = s
        .resolve_case(pd, CaseResolution::Link(bo), "alice", later(3))
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(ref m) if m.contains("already linked to SIS person s1")),
        "{err}"
    );
    assert_eq!(case_of(s, "pd").status, CaseStatus::Open);
    db.exec(&format!(
        "UPDATE users SET merged_into = NULL WHERE id = {dee2}"
    ));

    // Only open cases are resolved; unknown ones are not found.
    let err = s
        .resolve_case(pa.id, CaseResolution::Ignore, "alice", later(4))
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(ref m) if m.contains("is resolved already") && m.contains("admin:alice")),
        "{err}"
    );
    assert!(matches!(
        s.resolve_case(
            ReviewCaseId(9_999),
            CaseResolution::Create,
            "alice",
            later(4)
        )
        .unwrap_err(),
        StoreError::NotFound(_)
    ));
    assert!(matches!(
        s.review_cases(Some("pending"), None, 0).unwrap_err(),
        StoreError::Conflict(ref m) if m.contains("open, resolved or closed")
    ));

    // The next plan honours every decision.
    let view = s.load_view("sis").unwrap();
    assert_eq!(view.decision("pb"), Some(Decision::Create));
    assert_eq!(view.decision("pc"), Some(Decision::Ignore));
    assert_eq!(view.link("pa").unwrap().user_id, ann);
    let (_, p, _) = sync(s, &cfg, &people, later(5));
    assert_eq!(item(&p, "pa").user_id, Some(ann));
    assert_ne!(item(&p, "pa").outcome, Outcome::Created);
    assert_eq!(item(&p, "pb").outcome, Outcome::Created);
    assert_eq!(item(&p, "pb").reason.code(), "created_by_decision");
    assert_eq!(item(&p, "pc").outcome, Outcome::Skipped);
    assert_eq!(item(&p, "pc").reason.code(), "ignored_by_admin");
    assert_eq!(p.counts.created, 1);
    let open: Vec<String> = s
        .review_cases(Some("open"), None, 0)
        .unwrap()
        .into_iter()
        .map(|c| c.sourced_id)
        .collect();
    assert_eq!(open, ["pd"], "no case reopened");
    assert_eq!(s.review_cases(Some("resolved"), None, 0).unwrap().len(), 3);
    let (_, p, _) = sync(s, &cfg, &people, later(6));
    assert_eq!(
        item(&p, "pc").reason.code(),
        "ignored_by_admin",
        "it sticks"
    );
    assert_eq!(p.counts.created, 0);
}

conformance!(
    applies_open_refresh_and_close_cases,
    cases_resolve_three_ways_and_decisions_stick,
);
