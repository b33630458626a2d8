//! The view scoped to a run's people (`load_scoped_view`): it reaches every account each
//! kind of key can (a link, an email after Translate Email and case-insensitively,
//! username@Append domain, an identifier, an email or username alias), with the links,
//! refusals and decisions planning reads, and the whole source's count of active linked
//! accounts (its schools counted when a plan takes people from them); planning a
//! delta or a single-user sync against it gives the plan the whole view gives. A full
//! pull's view (`load_links_view` and `load_accounts`) holds every link and only the
//! accounts its changed, new and missing people reach, and plans the same too.

use oneroster::Role;
use rostersync_core::directory::{AccountId, AliasKind, MatchKey};
use rostersync_core::guard::{Pulled, guard, guard_counting, updates};
use rostersync_core::plan::{Plan, PlanInput, SyncKind};
use rostersync_core::planner::{self, plan, view_keys};
use rostersync_core::settings::Config;
use rostersync_core::sis::SisPerson;
use rostersync_core::view::{Decision, DirectoryView, ViewKeys};
use store::{Accounts, Store};

use crate::harness::{TestDb, config, conformance, later, now, person, plan_kind, sso_row, sync};

fn id_of(s: &Store, email: &str) -> AccountId {
    s.find_user(email).unwrap().unwrap().user.id
}

fn mapping() -> Config {
    config(
        "[source.user_mapping]\ntranslate_email = [{ from = \"students.district.k12.us\", to = \"district.k12.us\" }]\n\
         append_domain = \"district.k12.us\"\nmatch_by_identifier = true\n",
    )
}

fn code<'a>(p: &'a Plan, sourced_id: &str) -> &'a str {
    p.items
        .iter()
        .find(|i| i.sourced_id == sourced_id)
        .map_or("(no item)", |i| i.reason.code())
}

/// Plans and guards `people` on `scoped` as the engine does (the schools a plan takes
/// people from counted by the store), and on `full`: the same plan, the same trips.
fn same_plans(
    s: &Store,
    cfg: &Config,
    full: &DirectoryView,
    mut scoped: DirectoryView,
    people: &[SisPerson],
) -> Plan {
    let kind = if people.len() == 1 {
        SyncKind::User
    } else {
        SyncKind::Delta
    };
    let want = plan_kind(cfg, full, people, kind, None, later(60));
    let got = plan_kind(cfg, &scoped, people, kind, None, later(60));
    assert_eq!(got, want);
    let source = &cfg.sources[0];
    let counts = |schools: &[&str]| s.school_counts("sis", schools);
    assert_eq!(
        guard_counting(
            &got,
            updates(&got),
            &mut scoped,
            source,
            &Pulled::of(people),
            counts
        )
        .unwrap(),
        guard(&want, full, source, &Pulled::of(people))
    );
    got
}

fn scoped_view_reaches_accounts_by_every_key(db: &mut TestDb) {
    let s = db.store();
    let cfg = mapping();
    s.save_config(&cfg, &[], "owner", now()).unwrap();
    s.import_accounts(
        &[
            sso_row("Ana.Li@District.K12.us", "Ana", "Li"),
            sso_row("boek@district.k12.us", "Bo", "Ek"),
            sso_row("dee.old@x.org", "Dee", "Old"),
            sso_row("dee@x.org", "Dee", "New"),
            sso_row("eve@x.org", "Eve", "Old"),
            sso_row("gus@x.org", "Gus", "Ho"),
            sso_row("hal@x.org", "Hal", "Ma"),
            sso_row("zed@x.org", "Zed", "Far"),
        ],
        "google",
        now(),
    )
    .unwrap();
    let [ana, bo, dee_old, dee, eve, gus, hal, zed] = [
        "ana.li@district.k12.us",
        "boek@district.k12.us",
        "dee.old@x.org",
        "dee@x.org",
        "eve@x.org",
        "gus@x.org",
        "hal@x.org",
        "zed@x.org",
    ]
    .map(|e| id_of(s, e));

    let mut ivy = person("s8", Role::Teacher, "Ivy", "Ng", Some("ivy@x.org"));
    ivy.edit(|f| f.primary_org = Some("school-2".into()));
    let mut first = vec![
        person("s1", Role::Student, "Cy", "Do", Some("cy@x.org")),
        person("s7", Role::Student, "Gus", "Ho", Some("gus@x.org")),
        ivy,
        person("s9", Role::Student, "Jo", "Pa", Some("jo@x.org")),
    ];
    sync(s, &cfg, &first, now());
    // Jo leaves: a linked account that is not active, which the population leaves out.
    first[3].edit(|f| {
        f.enabled = false;
        f.enabled = false;
    });
    sync(s, &cfg, &first, later(1));
    let cy = id_of(s, "cy@x.org");
    assert_eq!(
        s.find_user("gus@x.org")
            .unwrap()
            .unwrap()
            .sis
            .unwrap()
            .sourced_id,
        "s7"
    );
    s.unlink_user(gus, Some("sis"), "alice", later(2)).unwrap();
    s.merge_accounts(dee_old, dee, "alice", later(3), false)
        .unwrap();
    db.exec(&format!(
        "INSERT INTO aliases (user_id, kind, value_lc) VALUES ({eve}, 'username', 'eveold');
         INSERT INTO link_refusals (source, sourced_id, user_id, refused_at, actor)
             VALUES ('sis', '*', {hal}, '2026-09-01T03:00:00.000000000Z', 'sync');
         INSERT INTO match_decisions (source, sourced_id, decision, actor, decided_at)
             VALUES ('sis', 'd1', 'ignore', 'alice', '2026-09-01T03:00:00.000000000Z');"
    ));

    let none = |mut p: SisPerson| {
        p.edit(|f| f.email = None);
        p
    };
    let mut cy_again = person("s1", Role::Student, "Cy", "Do", Some("cy@x.org"));
    cy_again.edit(|f| f.grade = Some("06".into()));
    let mut x2 = none(person("x2", Role::Student, "Xi", "Two", None));
    x2.edit(|f| f.identifier = Some("ID-s1".into()));
    let delta = vec![
        cy_again,
        person(
            "n1",
            Role::Student,
            "Ana",
            "Li",
            Some("ana.li@STUDENTS.district.k12.us"),
        ),
        none(person("n2", Role::Teacher, "Bo", "Ek", None)),
        person("n3", Role::Student, "Dee", "Old", Some("Dee.Old@X.org")),
        none(person("n4", Role::Student, "Eve", "Old", None)),
        x2,
        person("s7", Role::Student, "Gus", "Ho", Some("gus@x.org")),
        person("h1", Role::Student, "Hal", "Ma", Some("HAL@x.org")),
        person("d1", Role::Student, "Di", "Fo", Some("di@x.org")),
    ];
    let keys = view_keys(&cfg.sources[0], &delta);
    let scoped = s.load_scoped_view("sis", &keys).unwrap();
    let full = s.load_view("sis").unwrap();

    // Reached, by each kind of key.
    assert_eq!(scoped.link("s1").map(|l| l.user_id), Some(cy));
    assert_eq!(
        scoped.by_email(&MatchKey::new("ana.li@district.k12.us")),
        [ana],
        "translated, any case"
    );
    assert_eq!(
        scoped.by_email(&MatchKey::new("boek@district.k12.us")),
        [bo],
        "append domain"
    );
    assert_eq!(scoped.by_identifier("ID-s1"), [cy]);
    assert_eq!(scoped.linked_sourced_id(cy), Some("s1"));
    assert_eq!(
        scoped.by_alias(AliasKind::Email, &MatchKey::new("dee.old@x.org")),
        [dee]
    );
    assert!(
        scoped
            .user(dee_old)
            .is_some_and(|u| u.merged_into == Some(dee))
    );
    assert!(
        scoped.by_email(&MatchKey::new("dee.old@x.org")).is_empty(),
        "a tombstone never matches"
    );
    assert_eq!(
        scoped.by_alias(AliasKind::Username, &MatchKey::new("eveold")),
        [eve]
    );
    assert!(scoped.refused("s7", gus));
    assert!(scoped.refused("h1", hal), "retired for everyone");
    assert_eq!(scoped.decision("d1"), Some(Decision::Ignore));
    assert!(!scoped.user(cy).unwrap().provenance.is_empty());
    assert_eq!(scoped.user(cy), full.user(cy));
    // Not reached: nothing of the run leads to them.
    assert!(scoped.user(zed).is_none());
    assert!(scoped.link("s8").is_none() && scoped.link("s9").is_none());
    // The safeguards' figures are the whole source's: the count of its active linked
    // accounts, and a school's only when asked (the schools a plan takes people from).
    let population = scoped.population();
    assert_eq!(population.active, full.population().active);
    assert_eq!(
        population.active, 2,
        "Cy and Ivy; Jo is inactive, Gus unlinked"
    );
    assert!(population.by_school.is_empty() && population.by_role.is_empty());
    let whole = full.population();
    assert_eq!(
        (
            whole.by_school.get("school-2"),
            whole.by_role.get("teacher")
        ),
        (Some(&1), Some(&1))
    );
    let counts = s
        .school_counts("sis", &["school-2", "school-1", "nowhere"])
        .unwrap();
    assert_eq!(counts.get("school-2"), Some(&1), "Ivy");
    assert_eq!(counts.get("school-1"), Some(&1), "Cy; Jo is inactive");
    assert_eq!(
        counts.len(),
        2,
        "a school with nobody is left out: {counts:?}"
    );

    let p = same_plans(s, &cfg, &full, scoped, &delta);
    for (sourced_id, want) in [
        ("s1", "fields_changed"),
        ("n1", "matched"),
        ("n2", "matched"),
        ("n3", "matched"),
        ("n4", "matched"),
        ("x2", "linked_to_another"),
        ("s7", "link_refused"),
        ("h1", "link_refused"),
        ("d1", "ignored_by_admin"),
    ] {
        assert_eq!(code(&p, sourced_id), want, "{sourced_id}");
    }
    // The same people as a complete full pull: every link, and the accounts it needs,
    // by key and by a scan of every account (which these changes call for at a low
    // enough bar).
    let lean = s.load_links_view("sis").unwrap();
    let input = full_pull(&cfg, &delta, later(60));
    assert!(
        planner::intake(&input)
            .accounts_needed_up_to(&lean, 0)
            .everyone
    );
    same_full_plans(s, &cfg, &delta);
    // An identifier alone reaches its account by a scan too: X2 has no link and no
    // email, and an incomplete pull reaches no absent person's account.
    let x2 = [delta[5].clone()];
    let input = PlanInput {
        complete: false,
        ..full_pull(&cfg, &x2, later(60))
    };
    let scan = planner::intake(&input).accounts_needed_up_to(&lean, 0);
    let (users, _) = s.load_accounts("sis", &scan).unwrap();
    assert_eq!(users.iter().map(|u| u.id).collect::<Vec<_>>(), [cy]);
    // A single-user sync, person by person.
    for one in &delta {
        let people = std::slice::from_ref(one);
        let keys = view_keys(&cfg.sources[0], people);
        same_plans(
            s,
            &cfg,
            &full,
            s.load_scoped_view("sis", &keys).unwrap(),
            people,
        );
    }
}

/// A complete full pull of `people`.
fn full_pull<'a>(cfg: &'a Config, people: &'a [SisPerson], at: jiff::Timestamp) -> PlanInput<'a> {
    PlanInput {
        config: cfg,
        source: &cfg.sources[0],
        kind: SyncKind::Full,
        complete: true,
        people,
        roster: None,
        now: at,
    }
}

/// A full pull on every link and the accounts its changed, new and missing people reach
/// plans and guards like the whole view; `people` must be sorted out of changes only.
fn same_full_plans(s: &Store, cfg: &Config, people: &[SisPerson]) -> Plan {
    let full = s.load_view("sis").unwrap();
    let input = full_pull(cfg, people, later(60));
    let want = plan(&input, &full);
    let intake = planner::intake(&input);
    let mut lean = s.load_links_view("sis").unwrap();
    // A scan of every account keeps what the keys reach by lookup (no two keys here
    // share a hash): the same accounts, the same aliases.
    let by_key = intake.accounts_needed_up_to(&lean, u64::MAX);
    let scan = intake.accounts_needed_up_to(&lean, 0);
    let ids = |(users, mut aliases): Accounts| {
        let mut ids: Vec<AccountId> = users.iter().map(|u| u.id).collect();
        ids.sort_unstable();
        aliases.sort_by(|a, b| {
            (a.0, a.1.as_str(), a.2.as_str()).cmp(&(b.0, b.1.as_str(), b.2.as_str()))
        });
        (ids, aliases)
    };
    let reached = ids(s.load_accounts("sis", &by_key).unwrap());
    if scan.everyone {
        assert!(scan.scan.is_some());
        assert_eq!(ids(s.load_accounts("sis", &scan).unwrap()), reached);
    }
    let (users, aliases) = s
        .load_accounts("sis", &intake.accounts_needed(&lean))
        .unwrap();
    lean.add_accounts(users, aliases);
    assert_eq!(lean.population(), full.population());
    assert_eq!(lean.source_state(), full.source_state());
    let got = intake.plan(&lean);
    assert_eq!(got, want);
    let source = &cfg.sources[0];
    assert_eq!(
        guard(&got, &lean, source, &Pulled::of(people)),
        guard(&want, &full, source, &Pulled::of(people))
    );
    got
}

/// A full pull reads the links whole and only the accounts it needs: none when nothing
/// changed; the changed, the new and the missing person's otherwise. When more than an
/// eighth of the directory changed, every account is read and those the keys reach are
/// kept; past three quarters, all are kept.
fn full_pull_reads_only_the_accounts_it_needs(db: &mut TestDb) {
    let s = db.store();
    let cfg = mapping();
    s.save_config(&cfg, &[], "owner", now()).unwrap();
    let others: Vec<(String, String)> = (0..60)
        .map(|i| (format!("other{i}@x.org"), format!("Other{i}")))
        .collect();
    let mut rows = vec![sso_row("Ana.Li@District.K12.us", "Ana", "Li")];
    rows.extend(others.iter().map(|(e, n)| sso_row(e, n, "Else")));
    s.import_accounts(&rows, "google", now()).unwrap();
    let ana = id_of(s, "ana.li@district.k12.us");
    let mut people = vec![
        person("s1", Role::Student, "Cy", "Do", Some("cy@x.org")),
        person("s2", Role::Student, "Jo", "Pa", Some("jo@x.org")),
        person("t1", Role::Teacher, "Ivy", "Ng", Some("ivy@x.org")),
    ];
    sync(s, &cfg, &people, now());
    let lean = s.load_links_view("sis").unwrap();
    assert_eq!(lean.links().count(), 3);
    assert_eq!(lean.users().count(), 0);
    assert_eq!(lean.population().active, 3);
    let input = full_pull(&cfg, &people, later(1));
    assert_eq!(
        planner::intake(&input).accounts_needed(&lean),
        Default::default()
    );
    assert_eq!(same_full_plans(s, &cfg, &people).counts.unchanged, 3);

    // Cy changes, Jo leaves, Ana arrives from the SIS: exactly their accounts are read.
    people[0].edit(|f| f.grade = Some("07".into()));
    people.remove(1);
    people.push(person(
        "n1",
        Role::Student,
        "Ana",
        "Li",
        Some("ana.li@students.district.k12.us"),
    ));
    let input = full_pull(&cfg, &people, later(1));
    let keys = planner::intake(&input).accounts_needed(&lean);
    let (users, _) = s.load_accounts("sis", &keys).unwrap();
    let mut read: Vec<AccountId> = users.iter().map(|u| u.id).collect();
    read.sort_unstable();
    let mut want = vec![id_of(s, "cy@x.org"), id_of(s, "jo@x.org"), ana];
    want.sort_unstable();
    assert_eq!(read, want);
    // Many changed people for the directory's size: every account, in one pass.
    let everyone = ViewKeys {
        everyone: true,
        ..Default::default()
    };
    let all = s.load_accounts("sis", &everyone).unwrap().0;
    assert_eq!(all.len(), 64);
    assert_eq!(lean.account_count(), 64);
    // By id (a plan made by chunks reads linked people's accounts so): a run of ids close
    // together is read as one range, the ids between left out, the rest one by one;
    // each account whole, as the read of every account has it, and an id nobody has
    // reaches nothing.
    let mut ids: Vec<AccountId> = all.iter().map(|u| u.id).collect();
    ids.sort_unstable();
    let nobody = AccountId(ids[ids.len() - 1].0 + 1_000);
    let wanted: std::collections::BTreeSet<AccountId> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 7 != 3)
        .map(|(_, id)| *id)
        .take(40)
        .chain([ids[ids.len() - 1], nobody])
        .collect();
    let by_id = ViewKeys {
        accounts: wanted.clone(),
        ..Default::default()
    };
    let by_id_sorted = |mut users: Vec<rostersync_core::directory::Account>| {
        users.sort_by_key(|u| u.id);
        users
    };
    let want = by_id_sorted(all.into_iter().filter(|u| wanted.contains(&u.id)).collect());
    assert_eq!(want.len(), 41);
    assert_eq!(
        by_id_sorted(s.load_accounts("sis", &by_id).unwrap().0),
        want
    );
    let many: Vec<SisPerson> = (0..9)
        .map(|i| person(&format!("x{i}"), Role::Student, "Xi", "Many", None))
        .collect();
    let input = PlanInput {
        people: &many,
        ..input
    };
    // Nine of 64: every account is read, those the keys reach kept. Past three
    // quarters (a settings change rewriting everyone): every account kept, unhashed.
    let keys = planner::intake(&input).accounts_needed(&lean);
    assert!(keys.everyone && keys.scan.is_some());
    let crowd: Vec<SisPerson> = (0..49)
        .map(|i| person(&format!("y{i}"), Role::Student, "Yu", "Crowd", None))
        .collect();
    let keys = planner::intake(&PlanInput {
        people: &crowd,
        ..input
    })
    .accounts_needed(&lean);
    assert!(keys.everyone && keys.scan.is_none());
    let p = same_full_plans(s, &cfg, &people);
    assert_eq!(code(&p, "s1"), "fields_changed");
    assert_eq!(code(&p, "n1"), "matched");
    assert_eq!(p.counts.deactivated, 1, "Jo, absent from a complete pull");
}

/// A full pull's links view reads each person's school and role beside the links (one
/// walk of the people in sourcedId order), a scoped view through a join: the same for
/// every link, whatever the order the people came in, and the population counted from
/// them.
fn links_view_reads_each_persons_school_and_role(db: &mut TestDb) {
    let s = db.store();
    let cfg = mapping();
    let mut people = vec![
        person("p-3", Role::Teacher, "Ivy", "Ng", Some("ivy@x.org")),
        person("p-10", Role::Student, "Jo", "Pa", Some("jo@x.org")),
        person("p-1", Role::Student, "Cy", "Do", Some("cy@x.org")),
        person("p-20", Role::Guardian, "Al", "Do", Some("al@x.org")),
        person("p-2", Role::Student, "Bo", "Ek", Some("bo@x.org")),
    ];
    people[1].edit(|f| f.primary_org = Some("school-2".into()));
    // A guardian, whom these settings do not import: no link.
    people[3].edit(|f| f.primary_org = None);
    people[4].edit(|f| f.primary_org = None);
    sync(s, &cfg, &people, now());
    let as_read = |v: &DirectoryView| -> Vec<(String, Option<String>, Option<String>)> {
        let mut links: Vec<_> = v
            .links()
            .map(|l| {
                let name = |n: Option<&str>| n.map(str::to_owned);
                (
                    l.sourced_id.to_string(),
                    name(v.link_org(l)),
                    name(v.link_role(l)),
                )
            })
            .collect();
        links.sort();
        links
    };
    let lean = s.load_links_view("sis").unwrap();
    let joined = s
        .load_scoped_view("sis", &view_keys(&cfg.sources[0], &people))
        .unwrap();
    let got = as_read(&lean);
    assert_eq!(got, as_read(&joined));
    let link = |id: &str, org: Option<&str>, role: &str| {
        (id.to_owned(), org.map(str::to_owned), Some(role.to_owned()))
    };
    assert_eq!(
        got,
        [
            link("p-1", Some("school-1"), "student"),
            link("p-10", Some("school-2"), "student"),
            link("p-2", None, "student"),
            link("p-3", Some("school-1"), "teacher"),
        ]
    );
    let population = lean.population();
    assert_eq!(population.active, 4);
    let counted = |m: &std::collections::BTreeMap<String, u64>| -> Vec<(String, u64)> {
        m.iter().map(|(k, n)| (k.clone(), *n)).collect()
    };
    assert_eq!(
        counted(&population.by_school),
        [("school-1".to_owned(), 2), ("school-2".to_owned(), 1)]
    );
    assert_eq!(
        counted(&population.by_role),
        [("student".to_owned(), 3), ("teacher".to_owned(), 1)]
    );
}

/// No key reaches nothing, and an empty run still carries the population.
fn scoped_view_of_nobody(db: &mut TestDb) {
    let s = db.store();
    let cfg = mapping();
    sync(
        s,
        &cfg,
        &[person("s1", Role::Student, "Cy", "Do", Some("cy@x.org"))],
        now(),
    );
    let scoped = s
        .load_scoped_view("sis", &view_keys(&cfg.sources[0], &[]))
        .unwrap();
    assert_eq!(scoped.users().count(), 0);
    assert_eq!(scoped.links().count(), 0);
    assert_eq!(scoped.population().active, 1);
}

conformance!(
    scoped_view_reaches_accounts_by_every_key,
    scoped_view_of_nobody,
    full_pull_reads_only_the_accounts_it_needs,
    links_view_reads_each_persons_school_and_role
);
