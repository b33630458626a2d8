//! Planner scenarios: each sync rule, on and off, with the reason it gives.

use jiff::Timestamp;
use oneroster::{Role, Status};
use rostersync_core::directory::*;
use rostersync_core::memory::MemoryDirectory;
use rostersync_core::plan::*;
use rostersync_core::planner::plan;
use rostersync_core::settings::*;
use rostersync_core::sis::{PersonFields, SisPerson};

pub fn now() -> Timestamp {
    "2026-09-01T02:00:00Z".parse().unwrap()
}

pub fn person(id: &str, role: Role, given: &str, family: &str, email: Option<&str>) -> SisPerson {
    SisPerson::new(PersonFields {
        sourced_id: id.into(),
        status: Status::Active,
        enabled: true,
        role: Some(role),
        username: format!("{}{}", given.to_lowercase(), family.to_lowercase()),
        email: email.map(str::to_owned),
        given_name: given.into(),
        family_name: family.into(),
        middle_name: None,
        preferred_first_name: None,
        identifier: Some(format!("ID-{id}")),
        phone: Some("555-0100".into()),
        grade: Some("05".into()),
        primary_org: Some("school-1".into()),
        orgs: vec!["school-1".into()],
        agents: vec![],
        modified: None,
    })
}

pub fn config(extra: &str) -> Config {
    Config::from_toml(&format!(
        "[[source]]\nname = \"sis\"\nkind = \"oneroster-csv\"\npath = \"x\"\n{extra}"
    ))
    .unwrap()
}

/// A complete full pull of `people` under `cfg`'s first source, now.
pub fn full_pull<'a>(cfg: &'a Config, people: &'a [SisPerson]) -> PlanInput<'a> {
    PlanInput {
        config: cfg,
        source: &cfg.sources[0],
        kind: SyncKind::Full,
        complete: true,
        people,
        roster: None,
        now: now(),
    }
}

pub fn run(cfg: &Config, dir: &MemoryDirectory, people: &[SisPerson]) -> Plan {
    plan(&full_pull(cfg, people), &dir.view("sis"))
}

fn sso(dir: &mut MemoryDirectory, email: &str, first: &str, last: &str) -> AccountId {
    let mut u = Account::blank(AccountId(0));
    u.email = Some(email.into());
    u.first_name = Some(first.into());
    u.last_name = Some(last.into());
    u.provider = Some("google".into());
    u.provenance = vec![
        (Field::Email, Writer::SignOn("google".into())),
        (Field::FirstName, Writer::SignOn("google".into())),
        (Field::LastName, Writer::SignOn("google".into())),
    ]
    .into();
    dir.add_user(u)
}

fn item<'a>(p: &'a Plan, sourced_id: &str) -> &'a PlanItem {
    p.items.iter().find(|i| i.sourced_id == sourced_id).unwrap()
}

#[test]
fn first_import_creates_then_nothing_to_do() {
    let cfg = config("");
    let mut dir = MemoryDirectory::default();
    let people = vec![
        person(
            "s1",
            Role::Student,
            "Ana",
            "Li",
            Some("Ana.Li@students.district.k12.us"),
        ),
        person(
            "t1",
            Role::Teacher,
            "Bo",
            "Ek",
            Some("bo.ek@district.k12.us"),
        ),
        person(
            "a1",
            Role::Counselor,
            "Cy",
            "Do",
            Some("cy.do@district.k12.us"),
        ),
    ];
    let p = run(&cfg, &dir, &people);
    assert_eq!(p.counts.created, 3);
    assert_eq!(p.counts.seen, 3);
    let ana = item(&p, "s1");
    assert_eq!(ana.reason, Reason::NewPerson);
    assert_eq!(
        ana.new_account.as_ref().unwrap().user_type,
        UserType::Student
    );
    let email = ana
        .changes
        .iter()
        .find(|c| c.field == Field::Email)
        .unwrap();
    assert_eq!(
        email.new,
        Some("ana.li@students.district.k12.us"),
        "emails are lower-cased"
    );
    assert_eq!(
        item(&p, "a1").new_account.as_ref().unwrap().user_type,
        UserType::Staff
    );
    dir.apply(&p, now());
    assert_eq!(dir.users.len(), 3);

    let again = run(&cfg, &dir, &people);
    assert!(again.is_empty(), "{:#?}", again.items);
    assert_eq!(again.counts.unchanged, 3);
    assert!(again.items.is_empty(), "unchanged people are only counted");
}

#[test]
fn sso_accounts_link_through_email_translation_and_append_domain() {
    let cfg = config(
        "[source.user_mapping]\ntranslate_email = [{ from = \"students.district.k12.us\", to = \"district.k12.us\" }]\nappend_domain = \"district.k12.us\"\n",
    );
    let mut dir = MemoryDirectory::default();
    let ana = sso(&mut dir, "Ana.Li@district.k12.us", "Ana", "Li");
    let kid = sso(&mut dir, "kimlee@district.k12.us", "Kim", "Lee");
    let people = vec![
        person(
            "s1",
            Role::Student,
            "Ana",
            "Li",
            Some("ana.li@STUDENTS.district.k12.us"),
        ),
        person("s2", Role::Student, "Kim", "Lee", None),
    ];
    let p = run(&cfg, &dir, &people);
    assert_eq!(p.counts.linked, 2);
    assert_eq!(p.counts.created, 0);
    let s1 = item(&p, "s1");
    assert_eq!(s1.user_id, Some(ana));
    assert_eq!(
        s1.reason,
        Reason::Matched {
            rule: MatchRule::Email,
            key: "ana.li@district.k12.us".into()
        }
    );
    assert!(
        s1.changes.iter().all(|c| c.field != Field::Email),
        "same email up to case is no change"
    );
    let s2 = item(&p, "s2");
    assert_eq!(s2.user_id, Some(kid));
    assert_eq!(s2.reason.code(), "matched");
    assert!(
        s2.reason
            .to_string()
            .contains("username@domain (kimlee@district.k12.us)")
    );
    dir.apply(&p, now());
    let emails: Vec<_> = dir.users.values().filter_map(|u| u.email.clone()).collect();
    assert_eq!(emails.len(), 2, "no duplicate accounts: {emails:?}");
    assert!(run(&cfg, &dir, &people).is_empty());
}

#[test]
fn several_accounts_with_one_email_are_disputed() {
    let cfg = config("");
    let mut dir = MemoryDirectory::default();
    let a = sso(&mut dir, "ana@x.org", "Ana", "Li");
    let b = sso(&mut dir, "ANA@x.org", "Ana", "Li");
    let p = run(
        &cfg,
        &dir,
        &[person("s1", Role::Student, "Ana", "Li", Some("ana@x.org"))],
    );
    let s1 = item(&p, "s1");
    assert_eq!(s1.outcome, Outcome::Skipped);
    assert_eq!(
        s1.reason,
        Reason::Disputed(Box::new(Dispute {
            rule: MatchRule::Email,
            key: "ana@x.org".into(),
            candidates: vec![a, b]
        }))
    );
    assert_eq!(
        s1.reason.to_string(),
        format!("several accounts match by email (ana@x.org): #{a}, #{b}; link one by hand")
    );
    assert_eq!(p.counts.skipped, 1);
}

#[test]
fn two_people_claiming_one_account_both_wait() {
    let cfg = config("[source.user_mapping]\nmatch_by_identifier = true\n");
    let mut dir = MemoryDirectory::default();
    let mut u = Account::blank(AccountId(0));
    u.identifier = Some("ID-s1".into());
    u.email = Some("dup@x.org".into());
    let id = dir.add_user(u);
    let mut p2 = person("s2", Role::Student, "Zed", "Zo", Some("dup@x.org"));
    p2.edit(|f| f.identifier = None);
    let p1 = person("s1", Role::Student, "Ana", "Li", None);
    let p = run(&cfg, &dir, &[p1, p2]);
    for s in ["s1", "s2"] {
        assert_eq!(
            item(&p, s).reason,
            Reason::ClaimedBySeveral {
                user: id,
                sourced_ids: vec!["s1".into(), "s2".into()]
            }
        );
    }
}

/// A person whose role the source does not import is skipped, and their match claims no
/// account: one the run imports has it, and no account is read for them.
#[test]
fn a_person_not_imported_claims_no_account() {
    let cfg = config("");
    let mut dir = MemoryDirectory::default();
    let pat = sso(&mut dir, "pat@x.org", "Pat", "Li");
    let guardian = person("g1", Role::Parent, "Pat", "Li", Some("pat@x.org"));
    let student = person("s1", Role::Student, "Pat", "Li", Some("pat@x.org"));
    let p = run(&cfg, &dir, &[guardian.clone(), student]);
    assert_eq!(item(&p, "g1").outcome, Outcome::Skipped);
    assert_eq!(item(&p, "g1").user_id, None);
    let s1 = item(&p, "s1");
    assert_eq!((s1.outcome, s1.user_id), (Outcome::Linked, Some(pat)));

    // Alone, the guardian needs no account read.
    let people = [guardian];
    let input = full_pull(&cfg, &people);
    let keys = rostersync_core::planner::intake(&input).accounts_needed(&dir.links_view("sis"));
    assert_eq!(keys, Default::default());
}

#[test]
fn identifier_matching_is_off_by_default() {
    let mut dir = MemoryDirectory::default();
    let mut u = Account::blank(AccountId(0));
    u.identifier = Some("ID-s1".into());
    let id = dir.add_user(u);
    let people = [person("s1", Role::Student, "Ana", "Li", Some("ana@x.org"))];
    assert_eq!(
        item(&run(&config(""), &dir, &people), "s1").outcome,
        Outcome::Created
    );
    let on = run(
        &config("[source.user_mapping]\nmatch_by_identifier = true\n"),
        &dir,
        &people,
    );
    assert_eq!(item(&on, "s1").user_id, Some(id));
    assert_eq!(item(&on, "s1").outcome, Outcome::Linked);
}

#[test]
fn if_not_set_leaves_values_other_writers_set() {
    let cfg = config(
        "[source.field_priority]\nfirst_name = \"if-not-set\"\nlast_name = \"if-not-set\"\nphone = \"if-not-set\"\n",
    );
    let mut dir = MemoryDirectory::default();
    let mut u = Account::blank(AccountId(0));
    u.email = Some("ana@x.org".into());
    u.first_name = Some("Annie".into());
    u.last_name = Some("Old".into());
    u.provenance = vec![
        (Field::FirstName, Writer::Admin("alice".into())),
        (Field::LastName, Writer::Source("sis".into())),
    ]
    .into();
    dir.add_user(u);
    let p = run(
        &cfg,
        &dir,
        &[person("s1", Role::Student, "Ana", "Li", Some("ana@x.org"))],
    );
    let s1 = item(&p, "s1");
    let fields: Vec<Field> = s1.changes.iter().map(|c| c.field).collect();
    assert!(
        !fields.contains(&Field::FirstName),
        "an admin wrote it: kept"
    );
    assert!(
        fields.contains(&Field::LastName),
        "this source wrote it: updated"
    );
    assert!(fields.contains(&Field::Phone), "empty: filled");
}

#[test]
fn a_disabled_field_is_written_by_no_source() {
    let cfg = config("");
    let mut disabled = cfg.clone();
    disabled
        .fields
        .insert(Field::Phone, FieldSwitch { enabled: false });
    let dir = MemoryDirectory::default();
    let people = [person("s1", Role::Student, "Ana", "Li", Some("ana@x.org"))];
    let on = run(&cfg, &dir, &people);
    assert!(
        item(&on, "s1")
            .changes
            .iter()
            .any(|c| c.field == Field::Phone)
    );
    let off = run(&disabled, &dir, &people);
    assert!(
        item(&off, "s1")
            .changes
            .iter()
            .all(|c| c.field != Field::Phone)
    );

    let mut dir = MemoryDirectory::default();
    dir.apply(&off, now());
    let mut changed = people[0].clone();
    changed.edit(|f| f.phone = Some("555-9999".into()));
    let p = run(&disabled, &dir, &[changed]);
    assert!(
        p.is_empty()
            || item(&p, "s1")
                .changes
                .iter()
                .all(|c| c.field != Field::Phone)
    );
}

#[test]
fn import_categories_and_inactive_people() {
    let people = [
        person("g1", Role::Parent, "Pat", "Li", Some("pat@x.org")),
        person(
            "x1",
            Role::Other("ext:coach".into()),
            "Co",
            "Ch",
            Some("co@x.org"),
        ),
        SisPerson::new(PersonFields {
            enabled: false,
            ..person("s9", Role::Student, "Old", "Kid", Some("old@x.org")).fields()
        }),
    ];
    let dir = MemoryDirectory::default();
    let p = run(&config(""), &dir, &people);
    assert_eq!(item(&p, "g1").reason.code(), "category_not_imported");
    assert_eq!(
        item(&p, "g1").reason.to_string(),
        "role parent: importing other users is turned off"
    );
    assert_eq!(
        item(&p, "x1").reason.to_string(),
        "role ext:coach is not one rostersync imports"
    );
    assert_eq!(item(&p, "s9").reason, Reason::InactiveNotImported);
    assert_eq!(p.counts.skipped, 3);

    let p = run(
        &config("[source.import]\nother_users = true\ninclude_inactive = true\n"),
        &dir,
        &people,
    );
    assert_eq!(item(&p, "g1").outcome, Outcome::Created);
    assert_eq!(
        item(&p, "g1").new_account.as_ref().unwrap().user_type,
        UserType::Guardian
    );
    let s9 = item(&p, "s9");
    assert_eq!(s9.outcome, Outcome::Created);
    assert!(
        !s9.new_account.as_ref().unwrap().active,
        "imported as an inactive account"
    );
}

#[test]
fn a_skip_by_the_import_settings_is_listed_once() {
    let cfg = config("");
    let mut dir = MemoryDirectory::default();
    let inactive = |p: SisPerson| {
        SisPerson::new(PersonFields {
            enabled: false,
            ..p.fields()
        })
    };
    let mut people = vec![
        person("g1", Role::Parent, "Pat", "Li", Some("pat@x.org")),
        person("g2", Role::Guardian, "Sam", "Li", Some("sam@x.org")),
        person("s1", Role::Student, "Ana", "Li", Some("ana@x.org")),
        inactive(person("s9", Role::Student, "Old", "Kid", Some("old@x.org"))),
    ];
    let first = run(&cfg, &dir, &people);
    assert_eq!(first.counts.skipped, 3);
    assert_eq!(first.counts.skipped_listed_before, 0);
    assert_eq!(first.items.len(), 4, "every skip listed the first time");
    dir.apply(&first, now());
    // The keys kept are the keys of the items listed (made from the person, or from the
    // item): the guardians', and the inactive student's.
    let kept = &dir.listed_skips["sis"];
    assert_eq!(kept.len(), 3);
    for i in first.items.iter().filter(|i| i.outcome == Outcome::Skipped) {
        assert!(
            kept.contains(i.listed_skip_key().unwrap()),
            "{}",
            i.sourced_id
        );
    }

    // The same skips again: counted, not listed.
    let again = run(&cfg, &dir, &people);
    assert_eq!(again.counts.skipped, 3);
    assert_eq!(again.counts.skipped_listed_before, 3);
    assert!(again.items.is_empty(), "{:#?}", again.items);
    assert!(
        again.listed_skips.is_none(),
        "the same skips: nothing to keep anew"
    );
    dir.apply(&again, now());

    // A delta lists every skip it meets, and leaves what the full pulls listed.
    let delta = plan(
        &PlanInput {
            kind: SyncKind::Delta,
            complete: false,
            ..full_pull(&cfg, &people)
        },
        &dir.view("sis"),
    );
    assert_eq!(delta.counts.skipped_listed_before, 0);
    assert_eq!(delta.items.len(), 3);
    assert!(delta.listed_skips.is_none());

    // Another role, another reason and a newcomer are listed; g2's same skip is not.
    people[0] = person(
        "g1",
        Role::Other("ext:coach".into()),
        "Pat",
        "Li",
        Some("pat@x.org"),
    );
    people.push(person("g3", Role::Parent, "Kim", "Li", None));
    people[3] = person("s9", Role::Student, "Old", "Kid", Some("old@x.org"));
    let changed = run(&cfg, &dir, &people);
    let listed: Vec<(&str, &str)> = changed
        .items
        .iter()
        .map(|i| (i.sourced_id.as_str(), i.reason.code()))
        .collect();
    assert_eq!(
        listed,
        [
            ("g1", "no_importable_role"),
            ("g3", "category_not_imported"),
            ("s9", "new_person")
        ]
    );
    assert_eq!(changed.counts.skipped, 3);
    assert_eq!(changed.counts.skipped_listed_before, 1, "g2 alone");
    dir.apply(&changed, now());

    // A pull that is not complete lists what the last complete one did not, and keeps
    // that one's list.
    let partial = plan(
        &PlanInput {
            complete: false,
            ..full_pull(&cfg, &people)
        },
        &dir.view("sis"),
    );
    assert_eq!(partial.counts.skipped_listed_before, 3);
    assert!(partial.items.is_empty(), "{:#?}", partial.items);
    assert!(partial.listed_skips.is_none());

    // Students no longer imported: the linked ones are listed once, with their accounts.
    let off = config("[source.import]\nstudents = false\n");
    let p = run(&off, &dir, &people);
    let s1 = item(&p, "s1");
    assert_eq!(
        (s1.outcome, s1.reason.code()),
        (Outcome::Skipped, "category_not_imported")
    );
    assert!(s1.user_id.is_some());
    dir.apply(&p, now());
    let p = run(&off, &dir, &people);
    assert!(
        p.items.iter().all(|i| i.sourced_id != "s1"),
        "{:#?}",
        p.items
    );
    assert_eq!(p.counts.skipped, p.counts.skipped_listed_before);
}

#[test]
fn listed_skips_find_every_key_they_hold_and_no_other() {
    // Keys as the planner makes them (well mixed) and as they may come (runs of neighbours).
    let mixed: Vec<u64> = (1..=5_000u64)
        .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .collect();
    let close: Vec<u64> = (0..5_000u64).map(|i| 1_000 + 3 * i).collect();
    for keys in [mixed, close] {
        let held: Vec<u64> = keys.iter().copied().step_by(2).collect();
        let skips = ListedSkips::new(held.iter().rev().copied().chain(held.clone()).collect());
        assert_eq!(skips.len(), held.len(), "each key once");
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(skips.contains(*k), i % 2 == 0, "key {k}");
        }
        assert!(!skips.contains(0) && !skips.contains(u64::MAX));
        let back = ListedSkips::from_bytes(&skips.to_bytes()).unwrap();
        assert_eq!(back, skips);
    }
    assert!(!ListedSkips::default().contains(7));
    assert!(
        ListedSkips::from_bytes(&[1, 2, 3]).is_none(),
        "not whole keys"
    );
}

#[test]
fn new_people_never_take_an_email_in_use() {
    let cfg = config("[source.user_mapping]\nmatch_by_email = false\n");
    let mut dir = MemoryDirectory::default();
    let owner = sso(&mut dir, "ana@x.org", "Ana", "Li");
    let p = run(
        &cfg,
        &dir,
        &[
            person("s1", Role::Student, "Ana", "Li", Some("ana@x.org")),
            person("s2", Role::Student, "Bo", "Ek", Some("same@x.org")),
            person("s3", Role::Student, "Cy", "Do", Some("SAME@x.org")),
        ],
    );
    assert_eq!(
        item(&p, "s1").reason,
        Reason::EmailInUse(Box::new(EmailTaken {
            email: "ana@x.org".into(),
            user: Some(owner),
            sourced_id: None
        }))
    );
    assert_eq!(item(&p, "s2").outcome, Outcome::Created);
    let s3 = item(&p, "s3");
    assert_eq!(
        (s3.outcome, &s3.reason),
        (
            Outcome::Skipped,
            &Reason::IdentityTakenInRun(Box::new(TakenInRun {
                field: Field::Email,
                value: "same@x.org".into(),
                sourced_id: "s2".into()
            }))
        ),
        "the second new person with that address waits for a review case"
    );
    assert!(s3.reason.needs_review());
}

/// The kindergarten email change: the SIS renames a linked student to an address an
/// unlinked single-sign-on account already has. Two active accounts must never share it.
#[test]
fn an_update_never_gives_an_active_account_someone_elses_email() {
    let cfg = config("");
    let mut dir = MemoryDirectory::default();
    let people = vec![
        person("s1", Role::Student, "Ana", "Li", Some("ana.li@x.org")),
        person("s2", Role::Student, "Bo", "Ek", Some("bo@x.org")),
        person("s3", Role::Student, "Cy", "Do", Some("cy@x.org")),
    ];
    let first = run(&cfg, &dir, &people);
    dir.apply(&first, now());
    let id_of = |dir: &MemoryDirectory, email: &str| {
        dir.users
            .values()
            .find(|u| u.email.as_deref() == Some(email))
            .unwrap()
            .id
    };
    let ana = id_of(&dir, "ana.li@x.org");
    let bo = id_of(&dir, "bo@x.org");
    let sso_ana = sso(&mut dir, "ali@x.org", "Ana", "Li");
    let gone = sso(&mut dir, "cdo@x.org", "Cy", "Do");
    dir.users.get_mut(&gone).unwrap().active = false;

    let mut renamed = people.clone();
    renamed[0].edit(|f| {
        f.email = Some("ALI@x.org".into()); // the SSO account's address
        f.grade = Some("06".into());
    });
    renamed[1].edit(|f| f.email = Some("fresh@x.org".into())); // nobody's: Bo takes it…
    renamed[2].edit(|f| f.email = Some("fresh@x.org".into())); // … so Cy cannot in the same run
    let p = run(&cfg, &dir, &renamed);

    let a = item(&p, "s1");
    assert_eq!(
        a.reason,
        Reason::IdentityTaken {
            field: Field::Email,
            value: "ali@x.org".into(),
            user: sso_ana
        }
    );
    assert_eq!(a.outcome, Outcome::Updated, "the grade still changes");
    assert!(a.changes.iter().all(|c| c.field != Field::Email), "{a:?}");
    assert!(a.changes.iter().any(|c| c.field == Field::Grade));
    assert!(
        a.reason.needs_review(),
        "a review case asks: merge or keep apart"
    );
    assert_eq!(item(&p, "s2").outcome, Outcome::Updated);
    let c = item(&p, "s3");
    assert_eq!(c.outcome, Outcome::Skipped, "nothing else changed for Cy");
    assert!(
        matches!(&c.reason, Reason::IdentityTaken { field: Field::Email, user, .. } if *user == bo),
        "{c:?}"
    );
    // An old, inactive account keeps its address too, until an admin merges or edits it.
    let mut to_old = people.clone();
    to_old[2].edit(|f| f.email = Some("cdo@x.org".into()));
    let q = run(&cfg, &dir, &to_old);
    assert!(
        matches!(&item(&q, "s3").reason, Reason::IdentityTaken { user, .. } if *user == gone),
        "{:?}",
        item(&q, "s3")
    );
    dir.apply(&p, now());
    let mut active_emails: Vec<String> = dir
        .users
        .values()
        .filter(|u| u.active)
        .filter_map(|u| u.email.clone())
        .map(|e| e.to_lowercase())
        .collect();
    let all = active_emails.len();
    active_emails.sort();
    active_emails.dedup();
    assert_eq!(
        active_emails.len(),
        all,
        "no two active accounts share an email"
    );
    assert_eq!(dir.users[&ana].email.as_deref(), Some("ana.li@x.org"));
}

#[test]
fn an_admin_edit_is_repaired_when_the_source_always_wins() {
    let cfg = config("");
    let mut dir = MemoryDirectory::default();
    let people = [person("s1", Role::Student, "Ana", "Li", Some("ana@x.org"))];
    dir.apply(&run(&cfg, &dir, &people), now());
    let user = dir.users.values_mut().next().unwrap();
    user.first_name = Some("Typo".into());
    user.revision += 1;
    user.provenance
        .set(Field::FirstName, Writer::Admin("alice".into()));
    let p = run(&cfg, &dir, &people);
    let s1 = item(&p, "s1");
    assert_eq!(s1.outcome, Outcome::Updated);
    assert_eq!(
        s1.changes,
        vec![FieldChange {
            field: Field::FirstName,
            old: Some("Typo".into()),
            new: Some("Ana".into())
        }]
    );
    dir.apply(&p, now());
    assert!(run(&cfg, &dir, &people).is_empty());
}

#[test]
fn an_alias_links_after_a_rename() {
    let cfg = config("");
    let mut dir = MemoryDirectory::default();
    let id = sso(&mut dir, "ana.li@x.org", "Ana", "Li");
    dir.aliases
        .push((id, AliasKind::Email, MatchKey::new("ana.old@x.org")));
    let p = run(
        &cfg,
        &dir,
        &[person(
            "s1",
            Role::Student,
            "Ana",
            "Li",
            Some("Ana.Old@x.org"),
        )],
    );
    let s1 = item(&p, "s1");
    assert_eq!(s1.user_id, Some(id));
    assert_eq!(
        s1.reason,
        Reason::Matched {
            rule: MatchRule::Alias,
            key: "ana.old@x.org".into()
        }
    );
    assert!(
        s1.changes
            .iter()
            .any(|c| c.field == Field::Email && c.new == Some("ana.old@x.org"))
    );
}

#[test]
fn an_account_linked_to_someone_else_is_not_taken() {
    let cfg = config("");
    let mut dir = MemoryDirectory::default();
    dir.apply(
        &run(
            &cfg,
            &dir,
            &[person("s1", Role::Student, "Ana", "Li", Some("ana@x.org"))],
        ),
        now(),
    );
    let id = *dir.users.keys().next().unwrap();
    let p = run(
        &cfg,
        &dir,
        &[
            person("s1", Role::Student, "Ana", "Li", Some("ana@x.org")),
            person("s1-new", Role::Student, "Ana", "Li", Some("ana@x.org")),
        ],
    );
    assert_eq!(
        item(&p, "s1-new").reason,
        Reason::LinkedToAnother {
            user: id,
            sourced_id: "s1".into()
        }
    );
}

#[test]
fn plans_are_data() {
    let cfg = config("");
    let p = run(
        &cfg,
        &MemoryDirectory::default(),
        &[person("s1", Role::Student, "Ana", "Li", Some("a@x.org"))],
    );
    let json = serde_json::to_string(&p).unwrap();
    assert!(json.contains("\"code\":\"new_person\""), "{json}");
    let back: Plan = serde_json::from_str(&json).unwrap();
    // All but the skips it lists, which a held plan does not keep.
    assert_eq!(
        back,
        Plan {
            listed_skips: None,
            ..p
        }
    );
}
