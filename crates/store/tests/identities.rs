//! One person, one account, in the store: the review case of a new person whose username
//! another new person of the run took names that person's new account; *keep apart* is a
//! stored decision (the case resolves, both accounts' histories say so, later syncs do not
//! ask again and still never write the value); an update whose address waits keeps its
//! case open whatever else it applied.

use oneroster::Role;
use rostersync_core::directory::{AccountId, Field, MatchKey};
use rostersync_core::plan::{Outcome, Reason};
use store::{CaseResolution, CaseStatus, Store, StoreError};

use crate::harness::{TestDb, config, conformance, later, now, person, sso_row, sync};
use crate::lifecycle::item;

fn id_of(s: &Store, key: &str) -> AccountId {
    s.find_user(key)
        .unwrap()
        .unwrap_or_else(|| panic!("no account {key}"))
        .user
        .id
}

fn open_case(s: &Store, sourced_id: &str) -> store::ReviewCase {
    s.review_cases(Some("open"), None, 0)
        .unwrap()
        .into_iter()
        .find(|c| c.sourced_id == sourced_id)
        .unwrap_or_else(|| panic!("no open case for {sourced_id}"))
}

/// No two active accounts share an email or a username, case aside.
fn assert_unique(db: &TestDb) {
    for column in ["email", "username"] {
        let values: Vec<MatchKey> = db
            .rows(&format!(
                "SELECT {column} FROM users WHERE active = TRUE AND merged_into IS NULL AND {column} IS NOT NULL"
            ))
            .into_iter()
            .filter_map(|mut r| r.remove(0))
            .map(|v| MatchKey::new(&v))
            .collect();
        let mut unique = values.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), values.len(), "{column}s: {values:?}");
    }
}

fn two_new_people_with_one_username_open_a_case_kept_apart(db: &mut TestDb) {
    let s = db.store();
    let cfg = config("");
    let mut jo = person("s1", Role::Student, "Jo", "Doe", Some("jo.doe@x.org"));
    jo.edit(|f| f.username = "jdoe".into());
    let mut jay = person("s2", Role::Student, "Jay", "Doe", Some("jay.doe@x.org"));
    jay.edit(|f| f.username = "JDoe".into());
    let people = vec![jo, jay];
    let (_, p, _) = sync(s, &cfg, &people, now());
    assert_eq!(item(&p, "s1").outcome, Outcome::Created);
    assert_eq!(item(&p, "s2").outcome, Outcome::Skipped);
    assert_unique(db);
    let jo_id = id_of(s, "jo.doe@x.org");
    let case = open_case(s, "s2");
    assert_eq!(case.reason_code, "identity_taken");
    assert!(case.reason.contains("SIS person s1"), "{}", case.reason);
    assert_eq!(
        case.candidates.iter().map(|c| c.id).collect::<Vec<_>>(),
        [jo_id],
        "the account the run made for s1"
    );

    // Keep apart: resolved, stored, in both histories; Jay gets an account without it.
    s.resolve_case(case.id, CaseResolution::KeepApart, "alice", later(1))
        .unwrap();
    let resolved = s.review_case(case.id).unwrap().unwrap();
    assert_eq!(resolved.status, CaseStatus::Resolved);
    assert!(
        resolved
            .resolution
            .as_deref()
            .unwrap()
            .starts_with(&format!("kept apart from account #{jo_id}")),
        "{resolved:?}"
    );
    assert_eq!(db.count("kept_apart"), 1);
    assert!(
        s.load_view("sis").unwrap().kept_apart("s2", jo_id),
        "the planner's view has the pair"
    );
    let history = s.user_revisions(jo_id).unwrap();
    let note = history.iter().find(|r| r.field == "kept_apart").unwrap();
    assert_eq!(note.writer, "admin:alice");
    assert_eq!(
        note.new.as_deref(),
        Some(
            format!(
                "SIS person sis: s2: different people (review case {})",
                case.id
            )
            .as_str()
        )
    );

    let (_, p, _) = sync(s, &cfg, &people, later(2));
    let s2 = item(&p, "s2");
    assert_eq!(s2.outcome, Outcome::Created);
    assert_eq!(
        s2.reason,
        Reason::KeptApart {
            field: Field::Username,
            value: "JDoe".into(),
            user: jo_id
        }
    );
    let jay_id = id_of(s, "jay.doe@x.org");
    assert_eq!(
        s.find_user("jay.doe@x.org").unwrap().unwrap().user.username,
        None
    );
    assert!(
        s.review_cases(Some("open"), None, 0).unwrap().is_empty(),
        "no case again for the pair"
    );
    assert_unique(db);
    assert!(
        s.user_revisions(jay_id)
            .unwrap()
            .iter()
            .all(|r| r.field != "username")
    );

    // Keep apart answers only identity_taken cases; and a case only once.
    assert!(matches!(
        s.resolve_case(case.id, CaseResolution::KeepApart, "alice", later(3)),
        Err(StoreError::Conflict(_))
    ));
}

fn a_renamed_address_kept_apart_is_not_asked_again(db: &mut TestDb) {
    let s = db.store();
    let cfg = config("");
    let mut people = vec![person(
        "s1",
        Role::Student,
        "Ana",
        "Li",
        Some("ana.li@x.org"),
    )];
    sync(s, &cfg, &people, now());
    let ana = id_of(s, "ana.li@x.org");
    s.import_accounts(&[sso_row("ali@x.org", "Ana", "Li")], "google", now())
        .unwrap();
    let sso = id_of(s, "ali@x.org");

    // The SIS renames Ana to the single sign-on account's address, and her grade changes:
    // the grade is written, the address waits, and the case stays open while it waits.
    people[0].edit(|f| {
        f.email = Some("ALI@x.org".into());
        f.grade = Some("06".into());
    });
    let (_, p, _) = sync(s, &cfg, &people, later(1));
    assert_eq!(item(&p, "s1").outcome, Outcome::Updated);
    let case = open_case(s, "s1");
    assert_eq!(case.candidates[0].id, sso);
    people[0].edit(|f| f.grade = Some("07".into()));
    let (_, p, _) = sync(s, &cfg, &people, later(2));
    assert_eq!(item(&p, "s1").outcome, Outcome::Updated);
    assert_eq!(
        open_case(s, "s1").id,
        case.id,
        "an update that applied its other changes does not close its own case"
    );

    // Not every case can be kept apart: two SIS people claim one account.
    s.import_accounts(&[sso_row("al@x.org", "Al", "Poe")], "google", now())
        .unwrap();
    for (id, username) in [("s8", "al8"), ("s9", "al9")] {
        let mut p = person(id, Role::Student, "Al", "Poe", Some("al@x.org"));
        p.edit(|f| f.username = username.into());
        people.push(p);
    }
    sync(s, &cfg, &people, later(3));
    let disputed = open_case(s, "s9");
    assert_eq!(disputed.reason_code, "claimed_by_several");
    let err = s
        .resolve_case(disputed.id, CaseResolution::KeepApart, "alice", later(3))
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("keep apart answers only")),
        "{err:?}"
    );

    s.resolve_case(case.id, CaseResolution::KeepApart, "alice", later(4))
        .unwrap();
    for (user, other) in [(ana, sso), (sso, ana)] {
        let note = s
            .user_revisions(user)
            .unwrap()
            .into_iter()
            .find(|r| r.field == "kept_apart")
            .unwrap_or_else(|| panic!("no kept_apart revision on #{user}"));
        assert!(
            note.new.as_deref().unwrap().contains(&format!("#{other}")),
            "{note:?}"
        );
    }
    // The next syncs: nothing asks again, the grade still follows the SIS, the address
    // stays with the account that has it.
    let (_, p, _) = sync(s, &cfg, &people, later(5));
    assert!(
        matches!(item(&p, "s1").reason, Reason::KeptApart { user, .. } if user == sso),
        "{:?}",
        item(&p, "s1")
    );
    people[0].edit(|f| f.grade = Some("08".into()));
    assert_eq!(people[0].sourced_id(), "s1");
    sync(s, &cfg, &people, later(6));
    let open: Vec<String> = s
        .review_cases(Some("open"), None, 0)
        .unwrap()
        .into_iter()
        .map(|c| c.sourced_id)
        .collect();
    assert_eq!(open, ["s8", "s9"], "only the unrelated dispute");
    let now_ana = s.find_user(&ana.to_string()).unwrap().unwrap().user;
    assert_eq!(
        (now_ana.email.as_deref(), now_ana.grade.as_deref()),
        (Some("ana.li@x.org"), Some("08"))
    );
    assert_unique(db);
}

conformance!(
    two_new_people_with_one_username_open_a_case_kept_apart,
    a_renamed_address_kept_apart_is_not_asked_again,
);
