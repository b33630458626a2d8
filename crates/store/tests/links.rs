//! Links by hand: `link_user`, `unlink_user`, `relink_user` — what they write (link,
//! refusal, `sis_link` revision, audit), every refusal and its message, and what the next
//! sync makes of them.

use oneroster::Role;
use rostersync_core::directory::{Access, AccountId, MatchRule};
use rostersync_core::plan::Outcome;
use store::{Store, StoreError};

use crate::harness::{TestDb, config, conformance, later, now, person, sso_row, sync};
use crate::lifecycle::item;

fn id_of(s: &Store, email: &str) -> AccountId {
    s.find_user(email).unwrap().unwrap().user.id
}

fn conflict(e: StoreError) -> String {
    match e {
        StoreError::Conflict(m) => m,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

fn not_found(e: StoreError) -> String {
    match e {
        StoreError::NotFound(m) => m,
        other => panic!("expected not found, got {other:?}"),
    }
}

fn link_unlink_and_relink(db: &mut TestDb) {
    let s = db.store();
    let cfg = config("");
    s.save_config(&cfg, &[], "owner", now()).unwrap();
    s.import_accounts(
        &[
            sso_row("ana.personal@gmail.com", "Ana", "Li"),
            sso_row("merged@x.org", "Old", "Account"),
        ],
        "google",
        now(),
    )
    .unwrap();
    let ana = id_of(s, "ana.personal@gmail.com");
    let old = id_of(s, "merged@x.org");
    sync(
        s,
        &cfg,
        &[person("s1", Role::Student, "Bo", "Ek", Some("bo@x.org"))],
        now(),
    );
    let bo = id_of(s, "bo@x.org");
    db.exec(&format!(
        "UPDATE users SET merged_into = {bo} WHERE id = {old}"
    ));

    // Link Ana's sign-on account to a person the SIS has not sent yet.
    s.link_user("sis", "s9", ana, "alice", later(1)).unwrap();
    let view = s.load_view("sis").unwrap();
    let links = s.stored_links("sis").unwrap();
    let l = links.iter().find(|l| l.sourced_id == "s9").unwrap();
    assert_eq!(
        (
            l.user_id,
            l.rule,
            l.record_hash,
            l.synced_revision,
            l.linked_at,
            l.misses
        ),
        (ana, MatchRule::Manual, 0, 0, later(1), 0)
    );
    assert_eq!(view.user(ana).unwrap().revision, 2, "the link is a write");
    let rev = s.user_revisions(ana).unwrap().pop().unwrap();
    assert_eq!(
        (
            rev.field.as_str(),
            rev.old.as_deref(),
            rev.new.as_deref(),
            rev.writer.as_str(),
            rev.run
        ),
        ("sis_link", None, Some("sis:s9"), "admin:alice", None)
    );
    let audit = s.audit_log(1).unwrap().pop().unwrap();
    assert_eq!(
        (audit.actor.as_str(), audit.action.as_str()),
        ("alice", "user.link")
    );
    assert!(
        audit.detail.contains("s9") && audit.detail.contains(&format!("#{ana}")),
        "{}",
        audit.detail
    );
    let revisions = db.count("revisions");
    s.link_user("sis", "s9", ana, "alice", later(2)).unwrap();
    assert_eq!(
        db.count("revisions"),
        revisions,
        "linking again changes nothing"
    );

    // Every refusal, named.
    let err = conflict(
        s.link_user("sis", "s1", ana, "alice", later(2))
            .unwrap_err(),
    );
    assert_eq!(
        err,
        format!(
            "SIS person s1 of source sis is already linked to account #{bo} Bo Ek (bo@x.org): \
             remove that link first (unlink {bo})"
        )
    );
    let err = conflict(
        s.link_user("sis", "s2", ana, "alice", later(2))
            .unwrap_err(),
    );
    assert_eq!(
        err,
        format!(
            "account #{ana} Ana Li (ana.personal@gmail.com) is already linked to SIS person s9 of source sis: \
             change it with relink (Change SIS user), or unlink it first"
        )
    );
    let err = conflict(
        s.link_user("sis", "s3", old, "alice", later(2))
            .unwrap_err(),
    );
    assert_eq!(
        err,
        format!(
            "account #{old} Old Account (merged@x.org) was merged into account #{bo}: link the surviving account instead"
        )
    );
    let err = not_found(
        s.link_user("sis", "s3", AccountId(424_242), "alice", later(2))
            .unwrap_err(),
    );
    assert_eq!(err, "account #424242 does not exist");
    let err = not_found(
        s.link_user("campus", "s3", ana, "alice", later(2))
            .unwrap_err(),
    );
    assert!(err.contains("no source named campus"), "{err}");
    let err = conflict(s.link_user("sis", " ", ana, "alice", later(2)).unwrap_err());
    assert!(err.contains("sourcedId is empty"), "{err}");
    assert_eq!(db.count("sis_links"), 2, "refused links write nothing");

    // The next sync writes the account from the SIS record, keeping the manual rule.
    let (_, p, _) = sync(
        s,
        &cfg,
        &[
            person("s1", Role::Student, "Bo", "Ek", Some("bo@x.org")),
            person("s9", Role::Student, "Ana", "Li", Some("ana.li@x.org")),
        ],
        later(3),
    );
    let i = item(&p, "s9");
    assert_eq!((i.outcome, i.user_id), (Outcome::Updated, Some(ana)));
    assert!(i.changes.iter().any(|c| c.new == Some("ana.li@x.org")));
    assert_eq!(
        s.load_view("sis").unwrap().link("s9").unwrap().rule,
        MatchRule::Manual
    );

    // Unlink: the link goes, a refusal stays, the sync does not link them again.
    let removed = s.unlink_user(ana, None, "alice", later(4)).unwrap();
    assert_eq!(removed, [("sis".to_owned(), "s9".to_owned())]);
    let view = s.load_view("sis").unwrap();
    assert!(view.link("s9").is_none());
    assert!(view.refused("s9", ana));
    assert!(!view.refused("s9", bo));
    let rev = s.user_revisions(ana).unwrap().pop().unwrap();
    assert_eq!(
        (
            rev.field.as_str(),
            rev.old.as_deref(),
            rev.new.as_deref(),
            rev.writer.as_str()
        ),
        ("sis_link", Some("sis:s9"), None, "admin:alice")
    );
    assert_eq!(s.audit_log(1).unwrap()[0].action, "user.unlink");
    let err = not_found(s.unlink_user(ana, None, "alice", later(4)).unwrap_err());
    assert_eq!(
        err,
        format!("account #{ana} Ana Li (ana.li@x.org) has no SIS link")
    );
    let err = not_found(
        s.unlink_user(bo, Some("campus"), "alice", later(4))
            .unwrap_err(),
    );
    assert!(err.ends_with("has no link to source campus"), "{err}");
    let (_, p, _) = sync(
        s,
        &cfg,
        &[
            person("s1", Role::Student, "Bo", "Ek", Some("bo@x.org")),
            person("s9", Role::Student, "Ana", "Li", Some("ana.li@x.org")),
        ],
        later(5),
    );
    assert_eq!(item(&p, "s9").reason.code(), "link_refused");
    assert_eq!(db.count("users"), 3, "and no new account either");

    // Linking by hand again lifts the refusal.
    s.link_user("sis", "s9", ana, "alice", later(6)).unwrap();
    assert!(!s.load_view("sis").unwrap().refused("s9", ana));

    // Change SIS user: Bo's account moves from s1 to s7; s1 is refused for it.
    let was = s.relink_user(bo, "sis", "s7", "bob", later(7)).unwrap();
    assert_eq!(was, "s1");
    let view = s.load_view("sis").unwrap();
    assert_eq!(view.link("s7").unwrap().user_id, bo);
    assert_eq!(view.link("s7").unwrap().rule, MatchRule::Manual);
    assert!(view.link("s1").is_none());
    assert!(view.refused("s1", bo));
    let rev = s.user_revisions(bo).unwrap().pop().unwrap();
    assert_eq!(
        (rev.old.as_deref(), rev.new.as_deref(), rev.writer.as_str()),
        (Some("sis:s1"), Some("sis:s7"), "admin:bob")
    );
    let audit = s.audit_log(1).unwrap().pop().unwrap();
    assert_eq!(
        (audit.actor.as_str(), audit.action.as_str()),
        ("bob", "user.relink")
    );
    assert_eq!(
        s.relink_user(bo, "sis", "s7", "bob", later(8)).unwrap(),
        "s7",
        "no change"
    );
    let err = conflict(s.relink_user(bo, "sis", "s9", "bob", later(8)).unwrap_err());
    assert!(
        err.starts_with("SIS person s9 of source sis is already linked to account #"),
        "{err}"
    );
    let x = s
        .import_accounts(&[sso_row("x@x.org", "X", "Y")], "local", later(8))
        .unwrap();
    assert_eq!(x.created, 1);
    let x = id_of(s, "x@x.org");
    let err = not_found(s.relink_user(x, "sis", "s5", "bob", later(8)).unwrap_err());
    assert!(err.contains("has no link to source sis to change"), "{err}");
    let err = conflict(
        s.relink_user(old, "sis", "s5", "bob", later(8))
            .unwrap_err(),
    );
    assert!(err.contains("was merged into"), "{err}");
    let actions: Vec<String> = s
        .audit_log(0)
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .collect();
    assert_eq!(
        actions,
        [
            "user.relink",
            "user.link",
            "user.unlink",
            "user.link",
            "config.import"
        ]
    );
}

fn unlinking_every_source_refuses_each_pair(db: &mut TestDb) {
    let s = db.store();
    let two = config("[[source]]\nname = \"hr\"\nkind = \"oneroster-csv\"\npath = \"y\"\n");
    s.save_config(&two, &[], "owner", now()).unwrap();
    let mut sis = two.clone();
    sis.sources.truncate(1);
    let mut hr = two.clone();
    hr.sources.remove(0);
    sync(
        s,
        &sis,
        &[person("s1", Role::Teacher, "Bo", "Ek", Some("bo@x.org"))],
        now(),
    );
    sync(
        s,
        &hr,
        &[person("h1", Role::Teacher, "Bo", "Ek", Some("bo@x.org"))],
        later(1),
    );
    let bo = id_of(s, "bo@x.org");
    assert_eq!(db.count("sis_links"), 2);
    let removed = s.unlink_user(bo, None, "alice", later(2)).unwrap();
    assert_eq!(
        removed,
        [
            ("hr".to_owned(), "h1".to_owned()),
            ("sis".to_owned(), "s1".to_owned())
        ]
    );
    assert_eq!(db.count("sis_links"), 0);
    assert_eq!(db.count("link_refusals"), 2);
    assert!(s.load_view("hr").unwrap().refused("h1", bo));
    assert!(s.load_view("sis").unwrap().refused("s1", bo));
    let revs = s.user_revisions(bo).unwrap();
    let last: Vec<_> = revs[revs.len() - 2..]
        .iter()
        .map(|r| r.old.clone())
        .collect();
    assert_eq!(last, [Some("hr:h1".to_owned()), Some("sis:s1".to_owned())]);
}

fn an_admin_sets_the_access_level(db: &mut TestDb) {
    let s = db.store();
    let cfg = config("");
    let teacher = [person("t1", Role::Teacher, "Bo", "Ek", Some("bo@x.org"))];
    sync(s, &cfg, &teacher, now());
    let bo = id_of(s, "bo@x.org");
    s.set_access(bo, Access::Agent, "alice", later(1)).unwrap();
    let u = s.find_user("bo@x.org").unwrap().unwrap().user;
    assert_eq!((u.access, u.revision), (Access::Agent, 2));
    let rev = s.user_revisions(bo).unwrap().pop().unwrap();
    assert_eq!(
        (
            rev.field.as_str(),
            rev.old.as_deref(),
            rev.new.as_deref(),
            rev.writer.as_str(),
            rev.run
        ),
        (
            "access",
            Some("requestor"),
            Some("agent"),
            "admin:alice",
            None
        )
    );
    let audit = s.audit_log(1).unwrap().pop().unwrap();
    assert_eq!(
        (audit.actor.as_str(), audit.action.as_str()),
        ("alice", "user.access")
    );
    assert!(
        audit.detail.contains("requestor → agent"),
        "{}",
        audit.detail
    );
    let revisions = db.count("revisions");
    s.set_access(bo, Access::Agent, "alice", later(2)).unwrap();
    assert_eq!(
        db.count("revisions"),
        revisions,
        "the same level changes nothing"
    );
    assert!(matches!(
        s.set_access(AccountId(424_242), Access::Agent, "alice", later(2)),
        Err(StoreError::NotFound(_))
    ));

    // The sync keeps the agent's access.
    let (_, p, _) = sync(s, &cfg, &teacher, later(3));
    assert_eq!(item(&p, "t1").access, None);
    assert_eq!(
        s.find_user("bo@x.org").unwrap().unwrap().user.access,
        Access::Agent
    );
}

conformance!(
    link_unlink_and_relink,
    unlinking_every_source_refuses_each_pair,
    an_admin_sets_the_access_level,
);
