//! One person, one account, in the planner: no plan gives two active accounts one email
//! or username (case aside) — not two new people of one run, not a new person and an
//! account an update renames, not an admin's *make a new account* — and a pair an admin
//! kept apart is not asked about again, while the value still stays where it is.

use oneroster::Role;
use rostersync_core::directory::*;
use rostersync_core::memory::MemoryDirectory;
use rostersync_core::plan::*;
use rostersync_core::settings::Config;
use rostersync_core::sis::SisPerson;
use rostersync_core::view::Decision;

use crate::planner::{config, now, person, run};

fn item<'a>(p: &'a Plan, sourced_id: &str) -> &'a PlanItem {
    p.items
        .iter()
        .find(|i| i.sourced_id == sourced_id)
        .unwrap_or_else(|| panic!("no item for {sourced_id}: {p:#?}"))
}

fn with_username(mut p: SisPerson, username: &str) -> SisPerson {
    p.edit(|f| f.username = username.into());
    p
}

fn account(dir: &mut MemoryDirectory, email: Option<&str>, username: Option<&str>) -> AccountId {
    let mut u = Account::blank(AccountId(0));
    u.email = email.map(str::to_owned);
    u.username = username.map(str::to_owned);
    u.provider = Some("google".into());
    dir.add_user(u)
}

/// No two active accounts share an email or a username, compared case-insensitively.
fn assert_identities_unique(dir: &MemoryDirectory) {
    for field in [Field::Email, Field::Username] {
        let mut values: Vec<MatchKey> = dir
            .users
            .values()
            .filter(|u| u.active && u.merged_into.is_none())
            .filter_map(|u| u.get(field).map(MatchKey::new))
            .collect();
        let all = values.len();
        values.sort();
        values.dedup();
        assert_eq!(values.len(), all, "two active accounts share a {field}");
    }
}

#[test]
fn two_new_people_never_share_a_username_or_an_email() {
    let cfg = config("");
    let mut dir = MemoryDirectory::default();
    let people = vec![
        with_username(
            person("s1", Role::Student, "Jo", "Doe", Some("jo.doe@x.org")),
            "jdoe",
        ),
        with_username(
            person("s2", Role::Student, "Jay", "Doe", Some("jay.doe@x.org")),
            "JDoe",
        ),
        person("s3", Role::Student, "Al", "Poe", Some("Same@x.org")),
        person("s4", Role::Student, "Bo", "Ek", Some("same@X.org")),
    ];
    let p = run(&cfg, &dir, &people);
    assert_eq!(item(&p, "s1").outcome, Outcome::Created);
    assert_eq!(item(&p, "s3").outcome, Outcome::Created);
    let s2 = item(&p, "s2");
    assert_eq!(
        (s2.outcome, &s2.reason),
        (
            Outcome::Skipped,
            &Reason::IdentityTakenInRun(Box::new(TakenInRun {
                field: Field::Username,
                value: "JDoe".into(),
                sourced_id: "s1".into()
            }))
        )
    );
    assert_eq!(s2.reason.code(), "identity_taken");
    assert!(s2.reason.needs_review(), "a review case asks");
    assert!(
        s2.reason.to_string().contains("SIS person s1"),
        "{}",
        s2.reason
    );
    assert!(
        matches!(&item(&p, "s4").reason, Reason::IdentityTakenInRun(t) if t.field == Field::Email && t.sourced_id == "s3"),
        "{:?}",
        item(&p, "s4")
    );
    assert_eq!(p.counts.created, 2);
    dir.apply(&p, now());
    assert_identities_unique(&dir);

    // The next run: the first person's account has the username now, by its id.
    let jo = dir.links[&("sis".to_owned(), "s1".to_owned())].user_id;
    let again = run(&cfg, &dir, &people);
    assert_eq!(
        item(&again, "s2").reason,
        Reason::IdentityTaken {
            field: Field::Username,
            value: "JDoe".into(),
            user: jo
        }
    );
}

/// A directory where teacher Mo Lee (`m1`, mo.lee@x.org) is synced, and Mo as the SIS has
/// them.
fn directory_with_mo(cfg: &Config) -> (MemoryDirectory, SisPerson) {
    let mut dir = MemoryDirectory::default();
    let mo = person("m1", Role::Teacher, "Mo", "Lee", Some("mo.lee@x.org"));
    let first = run(cfg, &dir, std::slice::from_ref(&mo));
    dir.apply(&first, now());
    (dir, mo)
}

/// The new people planned before and after Mo (`a1`, `z1`) are skipped, for `why`.
fn assert_new_people_skipped(p: &Plan, why: impl Fn(&Reason) -> bool) {
    for id in ["a1", "z1"] {
        let i = item(p, id);
        assert_eq!(i.outcome, Outcome::Skipped, "{i:?}");
        assert!(why(&i.reason), "{i:?}");
    }
}

#[test]
fn a_new_person_never_takes_a_username_an_update_gives_away() {
    let cfg = config("");
    let (mut dir, kept) = directory_with_mo(&cfg);
    let mo = dir.links[&("sis".to_owned(), "m1".to_owned())].user_id;

    // The SIS renames Mo to `mlee`; a new person, planned before and after Mo by
    // sourcedId, wants the same username.
    let people = vec![
        with_username(kept, "mlee"),
        with_username(
            person("a1", Role::Student, "Max", "Lee", Some("max@x.org")),
            "MLee",
        ),
        with_username(
            person("z1", Role::Student, "Mia", "Lee", Some("mia@x.org")),
            "mlee",
        ),
    ];
    let p = run(&cfg, &dir, &people);
    assert_eq!(item(&p, "m1").outcome, Outcome::Updated);
    assert_new_people_skipped(
        &p,
        |r| matches!(r, Reason::IdentityTaken { field: Field::Username, user, .. } if *user == mo),
    );
    dir.apply(&p, now());
    assert_identities_unique(&dir);
}

#[test]
fn a_new_person_never_takes_an_email_an_update_gives_away() {
    let cfg = config("");
    let (mut dir, kept) = directory_with_mo(&cfg);

    // The SIS gives Mo a new email; a new person, planned before and after Mo by
    // sourcedId, has the same one (case aside).
    let mut renamed = kept;
    renamed.edit(|f| f.email = Some("m.lee@x.org".into()));
    let people = vec![
        renamed,
        person("a1", Role::Student, "Max", "Lee", Some("M.Lee@x.org")),
        person("z1", Role::Student, "Mia", "Lee", Some("m.lee@x.org")),
    ];
    let p = run(&cfg, &dir, &people);
    assert_eq!(item(&p, "m1").outcome, Outcome::Updated);
    assert_new_people_skipped(
        &p,
        |r| matches!(r, Reason::EmailInUse(t) if t.email == "m.lee@x.org"),
    );
    dir.apply(&p, now());
    assert_identities_unique(&dir);
}

#[test]
fn a_pair_kept_apart_is_not_asked_again_and_still_never_shares() {
    let cfg = config("");
    let mut dir = MemoryDirectory::default();
    let people = vec![person(
        "s1",
        Role::Student,
        "Ana",
        "Li",
        Some("ana.li@x.org"),
    )];
    let first = run(&cfg, &dir, &people);
    dir.apply(&first, now());
    let ana = dir.links[&("sis".to_owned(), "s1".to_owned())].user_id;
    let other = account(&mut dir, Some("ali@x.org"), Some("ali"));

    let mut renamed = people.clone();
    renamed[0].edit(|f| f.email = Some("ALI@x.org".into()));
    let p = run(&cfg, &dir, &renamed);
    assert_eq!(item(&p, "s1").outcome, Outcome::Skipped);
    assert!(item(&p, "s1").reason.needs_review());

    // Keep apart: no case, and the address still stays with the other account.
    dir.kept_apart.push(("sis".into(), "s1".into(), other));
    let p = run(&cfg, &dir, &renamed);
    let i = item(&p, "s1");
    assert_eq!(
        i.reason,
        Reason::KeptApart {
            field: Field::Email,
            value: "ali@x.org".into(),
            user: other
        }
    );
    assert!(!i.reason.needs_review());
    assert_ne!(i.outcome, Outcome::Skipped, "nothing waits for anyone");
    assert!(i.changes.iter().all(|c| c.field != Field::Email), "{i:?}");
    // Other changes still apply; the pair stays apart.
    renamed[0].edit(|f| f.grade = Some("06".into()));
    let p = run(&cfg, &dir, &renamed);
    let i = item(&p, "s1");
    assert_eq!(i.outcome, Outcome::Updated);
    assert!(matches!(i.reason, Reason::KeptApart { .. }), "{i:?}");
    dir.apply(&p, now());
    assert_eq!(dir.users[&ana].grade.as_deref(), Some("06"));
    assert_eq!(dir.users[&ana].email.as_deref(), Some("ana.li@x.org"));
    assert_identities_unique(&dir);
    let settled = run(&cfg, &dir, &renamed);
    assert!(settled.is_empty(), "{settled:#?}");

    // Another account with the address is another question: a case again.
    dir.kept_apart.clear();
    dir.kept_apart
        .push(("sis".into(), "s1".into(), AccountId(ana.0 + 1000)));
    renamed[0].edit(|f| f.grade = Some("07".into()));
    let p = run(&cfg, &dir, &renamed);
    assert!(item(&p, "s1").reason.needs_review());
}

#[test]
fn a_new_person_kept_apart_gets_an_account_without_the_taken_value() {
    let cfg = config("");
    let mut dir = MemoryDirectory::default();
    let holder = account(&mut dir, Some("jdoe@other.org"), Some("jdoe"));
    let people = vec![
        with_username(
            person("s1", Role::Student, "Jo", "Doe", Some("jo.doe@x.org")),
            "jdoe",
        ),
        with_username(person("s2", Role::Student, "Jay", "Doe", None), "JDOE"),
    ];
    let p = run(&cfg, &dir, &people);
    for id in ["s1", "s2"] {
        assert!(
            matches!(item(&p, id).reason, Reason::IdentityTaken { user, .. } if user == holder),
            "{:?}",
            item(&p, id)
        );
    }
    dir.kept_apart.push(("sis".into(), "s1".into(), holder));
    dir.kept_apart.push(("sis".into(), "s2".into(), holder));
    let p = run(&cfg, &dir, &people);
    let s1 = item(&p, "s1");
    assert_eq!(s1.outcome, Outcome::Created);
    assert!(matches!(
        s1.reason,
        Reason::KeptApart {
            field: Field::Username,
            ..
        }
    ));
    assert!(
        s1.changes.iter().all(|c| c.field != Field::Username),
        "{s1:?}"
    );
    assert!(s1.changes.iter().any(|c| c.field == Field::Email));
    let s2 = item(&p, "s2");
    assert_eq!(
        (s2.outcome, s2.reason.needs_review()),
        (Outcome::Skipped, false),
        "nothing left to make an account from, and nothing to ask: {s2:?}"
    );
    dir.apply(&p, now());
    assert_identities_unique(&dir);
}

#[test]
fn make_a_new_account_never_copies_an_email_another_account_has() {
    let cfg = config("");
    let mut dir = MemoryDirectory::default();
    let a = account(&mut dir, Some("ana@x.org"), None);
    let b = account(&mut dir, Some("ANA@x.org"), None);
    let ana = person("s1", Role::Student, "Ana", "Li", Some("ana@x.org"));
    let p = run(&cfg, &dir, std::slice::from_ref(&ana));
    assert!(matches!(item(&p, "s1").reason, Reason::Disputed(_)));
    dir.decisions
        .insert(("sis".into(), "s1".into()), Decision::Create);
    let p = run(&cfg, &dir, std::slice::from_ref(&ana));
    let i = item(&p, "s1");
    assert_eq!(i.outcome, Outcome::Created);
    assert!(i.changes.iter().all(|c| c.field != Field::Email), "{i:?}");
    assert!(
        i.changes
            .iter()
            .any(|c| c.field == Field::Username && c.new == Some("anali"))
    );
    assert!(matches!(i.reason, Reason::CreatedByDecision));
    dir.apply(&p, now());
    // The two old accounts share the address already (made before this rule); the new
    // one adds no third.
    let with_it = dir
        .users
        .values()
        .filter(|u| u.email.as_deref().map(MatchKey::new) == Some(MatchKey::new("ana@x.org")))
        .count();
    assert_eq!(with_it, 2, "{a} and {b} only");
}
