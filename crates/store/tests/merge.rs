//! Merges: the survivor takes the loser's links, groups, relationships, history and match
//! keys; the loser stays as a tombstone; the next sync keeps the link and creates nothing.
//! Refusals, and a dry run that writes nothing.

use oneroster::Role;
use rostersync_core::directory::{Access, AccountId, MatchKey};
use rostersync_core::plan::Outcome;
use store::{AliasRow, SisRef, Store, StoreError};

use crate::harness::{TestDb, config, conformance, later, now, person, plan_store, sso_row, sync};
use crate::lifecycle::item;

const AT: &str = "'2026-09-01T02:00:00.000000000Z'";

fn id_of(s: &Store, email: &str) -> AccountId {
    s.find_user(email).unwrap().unwrap().user.id
}

fn conflict(e: StoreError) -> String {
    match e {
        StoreError::Conflict(m) => m,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

/// Ana's sign-on account (the survivor) and the account the sync made for her under her
/// old email (the loser), with groups, a guardian and an old alias: (loser, survivor,
/// guardian).
fn two_anas(db: &TestDb) -> (AccountId, AccountId, AccountId) {
    let s = db.store();
    s.import_accounts(
        &[
            sso_row("ana.new@x.org", "Ana", "Li"),
            sso_row("pat@x.org", "Pat", "Li"),
        ],
        "google",
        now(),
    )
    .unwrap();
    let (survivor, guardian) = (id_of(s, "ana.new@x.org"), id_of(s, "pat@x.org"));
    sync(
        s,
        &config(""),
        &[person(
            "s1",
            Role::Student,
            "Ana",
            "Li",
            Some("ana.old@x.org"),
        )],
        now(),
    );
    let loser = id_of(s, "ana.old@x.org");
    db.exec(&format!(
        "INSERT INTO groups (name, kind, source, group_key, created_at) VALUES ('Math 5', 'class', 'sis', 'class:m', {AT}); \
         INSERT INTO groups (name, kind, created_at) VALUES ('Chess club', 'club', {AT}); \
         INSERT INTO group_members (group_id, user_id) VALUES (1, {loser}); \
         INSERT INTO group_members (group_id, user_id) VALUES (2, {loser}); \
         INSERT INTO group_members (group_id, user_id) VALUES (2, {survivor}); \
         INSERT INTO guardian_relationships (source, guardian_id, student_id) VALUES ('sis', {guardian}, {loser}); \
         INSERT INTO aliases (user_id, kind, value_lc) VALUES ({loser}, 'email', 'ana.older@x.org');"
    ));
    (loser, survivor, guardian)
}

fn a_merge_carries_everything_and_the_next_sync_creates_nothing(db: &mut TestDb) {
    let (loser, survivor, guardian) = two_anas(db);
    let s = db.store();
    let loser_history = s.user_revisions(loser).unwrap().len() as u64;
    let before = db.row_counts();
    let users_before = s.list_users(&store::UserQuery::default()).unwrap();

    let preview = s
        .merge_accounts(loser, survivor, "alice", later(1), true)
        .unwrap();
    assert!(preview.dry_run);
    assert_eq!(db.row_counts(), before, "a dry run writes nothing");
    let users_after = s.list_users(&store::UserQuery::default()).unwrap();
    assert_eq!(
        users_before
            .iter()
            .map(|u| (&u.user, &u.sis))
            .collect::<Vec<_>>(),
        users_after
            .iter()
            .map(|u| (&u.user, &u.sis))
            .collect::<Vec<_>>()
    );

    let m = s
        .merge_accounts(loser, survivor, "alice", later(1), false)
        .unwrap();
    assert_eq!(
        m,
        store::MergeSummary {
            dry_run: false,
            ..preview.clone()
        },
        "the dry run said what the merge does"
    );
    assert_eq!((m.loser, m.survivor), (loser, survivor));
    assert_eq!(
        m.moved_links,
        [SisRef {
            source: "sis".into(),
            sourced_id: "s1".into()
        }]
    );
    assert_eq!(
        m.groups_moved, 1,
        "the club the survivor was in already is not counted"
    );
    assert_eq!(m.relationships_moved, 1);
    assert_eq!(m.revisions_moved, loser_history);
    let alias = |kind: &str, value: &str| AliasRow {
        kind: kind.parse().unwrap(),
        value: MatchKey::new(value),
    };
    assert_eq!(
        m.aliases_added,
        [
            alias("email", "ana.older@x.org"),
            alias("email", "ana.old@x.org"),
            alias("username", "anali")
        ]
    );

    // The survivor has it all; the loser is a tombstone.
    let view = s.load_view("sis").unwrap();
    assert_eq!(view.link("s1").unwrap().user_id, survivor);
    let l = view.user(loser).unwrap();
    assert_eq!(
        (l.merged_into, l.active, l.access),
        (Some(survivor), false, Access::NoAccess)
    );
    assert_eq!(s.user_groups(survivor).unwrap(), ["Chess club", "Math 5"]);
    assert!(s.user_groups(loser).unwrap().is_empty());
    let students: Vec<AccountId> = s
        .guardianships(guardian)
        .unwrap()
        .students
        .iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(students, [survivor]);
    let aliases: Vec<String> = s
        .user_aliases(survivor)
        .unwrap()
        .into_iter()
        .map(|a| a.value.into_string())
        .collect();
    assert_eq!(aliases, ["ana.older@x.org", "ana.old@x.org", "anali"]);
    assert!(s.user_aliases(loser).unwrap().is_empty());
    let history = s.user_revisions(survivor).unwrap();
    assert!(
        history
            .iter()
            .any(|r| r.field == "created" && r.writer == "source:sis"),
        "moved"
    );
    let merged = history.iter().find(|r| r.field == "merged").unwrap();
    assert_eq!(merged.writer, "admin:alice");
    assert!(
        merged
            .new
            .as_deref()
            .unwrap()
            .contains(&format!("#{loser}")),
        "{merged:?}"
    );
    assert!(
        history
            .iter()
            .any(|r| r.field == "sis_link" && r.new.as_deref() == Some("sis:s1"))
    );
    let tomb: Vec<(String, Option<String>)> = s
        .user_revisions(loser)
        .unwrap()
        .into_iter()
        .map(|r| (r.field, r.new))
        .collect();
    assert_eq!(
        tomb,
        [
            ("merged_into".to_owned(), Some(format!("#{survivor}"))),
            ("active".to_owned(), Some("false".to_owned())),
            ("access".to_owned(), Some("no-access".to_owned()))
        ]
    );
    let audit = &s.audit_log(1).unwrap()[0];
    assert_eq!(
        (audit.actor.as_str(), audit.action.as_str()),
        ("alice", "user.merge")
    );
    assert!(audit.detail.contains("sis:s1"), "{audit:?}");
    let counts = s.count_users().unwrap();
    assert_eq!(counts.users, 2, "the tombstone is not counted");

    // The next sync, planned by the core planner on the store's view, keeps the link and
    // creates nothing — with the SIS's old email, and after it changes to the new one.
    let cfg = config("");
    for email in ["ana.old@x.org", "ana.new@x.org"] {
        let people = [person("s1", Role::Student, "Ana", "Li", Some(email))];
        let p = plan_store(s, &cfg, &people);
        assert_eq!(p.counts.created, 0, "{:#?}", p.items);
        assert_eq!(item(&p, "s1").user_id, Some(survivor));
        assert_ne!(item(&p, "s1").outcome, Outcome::Created);
        sync(s, &cfg, &people, later(2));
        assert!(plan_store(s, &cfg, &people).is_empty());
    }
    assert_eq!(
        s.find_user(&survivor.to_string())
            .unwrap()
            .unwrap()
            .user
            .email
            .as_deref(),
        Some("ana.new@x.org")
    );
}

fn merges_are_refused_with_the_reason(db: &mut TestDb) {
    let s = db.store();
    let cfg = config("");
    // Two SIS people of one name, each with their own username (two new people never
    // share one).
    let mut s2 = person("s2", Role::Student, "Ana", "Li", Some("ana.li@x.org"));
    s2.edit(|f| f.username = "ana.li2".into());
    sync(
        s,
        &cfg,
        &[
            person("s1", Role::Student, "Ana", "Li", Some("ana@x.org")),
            s2,
        ],
        now(),
    );
    let (a, b) = (id_of(s, "ana@x.org"), id_of(s, "ana.li@x.org"));
    let before = db.row_counts();
    let err = conflict(
        s.merge_accounts(a, b, "alice", later(1), false)
            .unwrap_err(),
    );
    assert_eq!(
        err,
        format!(
            "account #{a} is linked to sis:s1 and #{b} to sis:s2: they are different people in the SIS; unlink one first"
        )
    );
    let err = conflict(s.merge_accounts(a, b, "alice", later(1), true).unwrap_err());
    assert!(
        err.contains("different people"),
        "a dry run refuses alike: {err}"
    );
    let err = conflict(
        s.merge_accounts(a, a, "alice", later(1), false)
            .unwrap_err(),
    );
    assert!(err.contains("into itself"), "{err}");
    assert!(matches!(
        s.merge_accounts(a, AccountId(9_999), "alice", later(1), false).unwrap_err(),
        StoreError::NotFound(ref m) if m.contains("#9999")
    ));
    assert_eq!(db.row_counts(), before, "refusals write nothing");

    // Linked in different sources: one person known to two systems, merged.
    s.import_accounts(&[sso_row("bo@x.org", "Bo", "Ek")], "google", now())
        .unwrap();
    let bo = id_of(s, "bo@x.org");
    let mut hr = config("");
    hr.sources[0].name = "hr".into();
    // Its own username: a new account never takes one another account has.
    let mut h1 = person("h1", Role::Teacher, "Ana", "Li", Some("ana.hr@x.org"));
    h1.edit(|f| f.username = "ana.li.hr".into());
    sync(s, &hr, &[h1], later(2));
    let c = id_of(s, "ana.hr@x.org");
    let m = s.merge_accounts(c, a, "alice", later(3), false).unwrap();
    assert_eq!(
        m.moved_links,
        [SisRef {
            source: "hr".into(),
            sourced_id: "h1".into()
        }]
    );
    let cards: Vec<String> = s
        .sis_card(a)
        .unwrap()
        .into_iter()
        .map(|c| format!("{}:{}", c.source, c.sourced_id))
        .collect();
    assert_eq!(cards, ["hr:h1", "sis:s1"]);

    // Merged accounts are done with.
    let err = conflict(
        s.merge_accounts(c, bo, "alice", later(4), false)
            .unwrap_err(),
    );
    assert!(
        err.contains(&format!("was already merged into account #{a}")),
        "{err}"
    );
    let err = conflict(
        s.merge_accounts(bo, c, "alice", later(4), false)
            .unwrap_err(),
    );
    assert!(err.contains(&format!("merge into #{a} instead")), "{err}");
}

conformance!(
    a_merge_carries_everything_and_the_next_sync_creates_nothing,
    merges_are_refused_with_the_reason,
);
