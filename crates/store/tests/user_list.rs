//! The users list: grade and homeroom filters that ignore spelling and case (and the keys
//! a database from before them gains on open), counts, every sort paged by its keyset
//! cursor without skipping or repeating anyone, and saved views.

use oneroster::Role;
use rostersync_core::directory::AccountId;
use rostersync_core::sis::SisPerson;
use rostersync_core::user_list::{ListCursor, ListSpec, SortColumn, UserSort};
use store::{StoreError, UserQuery, UserRecord};

use crate::harness::{TestDb, config, conformance, now, person, sso_row, sync};

/// A district whose SIS spells grades every which way, two schools (one unmapped: no
/// location), and sign-on accounts with neither grade, name nor location.
fn seed(db: &TestDb) {
    let s = db.store();
    let mut cfg = config(
        "[source.locations]\nmap = { \"school-1\" = \"Lincoln\", \"school-2\" = \"Adams\" }\n",
    );
    cfg.sources[0].import.include_inactive = true;
    let spelled = [
        ("s1", "Ana", "Li", Some("5"), "school-1", Some("ana@x.org")),
        ("s2", "Bo", "Ek", Some("05"), "school-2", Some("bo@x.org")),
        ("s3", "Cy", "Do", Some("Grade 5"), "school-1", None),
        ("s4", "Di", "Fo", Some("K"), "school-2", Some("di@x.org")),
        ("s5", "Ed", "Go", Some("KG"), "school-3", Some("ed@x.org")),
        ("s6", "Flo", "Hu", Some("Kindergarten"), "school-1", None),
        (
            "s7",
            "Gus",
            "Ito",
            Some("10"),
            "school-2",
            Some("gus@x.org"),
        ),
        ("s8", "Hal", "Jo", None, "school-3", Some("hal@x.org")),
        ("s9", "Ivy", "Ko", Some("PK"), "school-1", Some("Ivy@X.org")),
    ];
    let people: Vec<SisPerson> = spelled
        .iter()
        .map(|(id, given, family, grade, org, email)| {
            let mut p = person(id, Role::Student, given, family, *email);
            p.edit(|f| {
                f.grade = grade.map(str::to_owned);
                f.primary_org = Some((*org).to_owned());
                f.orgs = vec![(*org).to_owned()];
            });
            // One inactive account, so the status sort has both values.
            p.edit(|f| f.enabled = *id != "s8");
            p
        })
        .collect();
    let mut teacher = person("t1", Role::Teacher, "Zed", "Abe", Some("zed@x.org"));
    teacher.edit(|f| f.grade = None);
    let mut people = people;
    people.push(teacher);
    sync(s, &cfg, &people, now());
    s.import_accounts(
        &[
            sso_row("guest@x.org", "", ""),
            sso_row("aaron@x.org", "Aaron", "Zu"),
        ],
        "google",
        now(),
    )
    .unwrap();
}

fn names(list: &[UserRecord]) -> Vec<String> {
    let mut v: Vec<String> = list
        .iter()
        .map(|r| r.user.first_name.clone().unwrap_or_default())
        .collect();
    v.sort();
    v
}

fn grades_and_homerooms_match_any_spelling(db: &mut TestDb) {
    seed(db);
    let s = db.store();
    let q = |grade: &str| UserQuery {
        grade: Some(grade.into()),
        ..Default::default()
    };
    for five in ["5", "05", "grade 5", " 5th "] {
        let found = s.list_users(&q(five)).unwrap();
        assert_eq!(names(&found), ["Ana", "Bo", "Cy"], "grade {five:?}");
        assert_eq!(s.count_listed_users(&q(five)).unwrap(), 3, "{five:?}");
    }
    for k in ["K", "kg", "Kindergarten", "0"] {
        assert_eq!(
            names(&s.list_users(&q(k)).unwrap()),
            ["Di", "Ed", "Flo"],
            "grade {k:?}"
        );
    }
    assert_eq!(names(&s.list_users(&q("pre-k")).unwrap()), ["Ivy"]);
    assert_eq!(names(&s.list_users(&q("10")).unwrap()), ["Gus"]);
    assert!(s.list_users(&q("1")).unwrap().is_empty(), "1 is not 10");
    let stored = s.list_users(&q("5")).unwrap();
    assert!(
        stored
            .iter()
            .any(|r| r.user.grade.as_deref() == Some("Grade 5")),
        "the grade is shown as the SIS spells it"
    );

    // Locations: case-insensitive; an unknown one matches nobody, and counts 0.
    let at = |name: &str| UserQuery {
        location: Some(name.into()),
        ..Default::default()
    };
    assert_eq!(
        names(&s.list_users(&at("  lincoln ")).unwrap()),
        ["Ana", "Cy", "Flo", "Ivy", "Zed"]
    );
    assert_eq!(s.count_listed_users(&at("LINCOLN")).unwrap(), 5);
    assert!(s.list_users(&at("Nowhere")).unwrap().is_empty());
    assert_eq!(s.count_listed_users(&at("Nowhere")).unwrap(), 0);
    assert_eq!(
        s.count_listed_users(&UserQuery::default()).unwrap(),
        12,
        "every account"
    );
    assert_eq!(
        s.count_listed_users(&UserQuery {
            grade: Some("k".into()),
            location: Some("adams".into()),
            limit: 1,
            ..Default::default()
        })
        .unwrap(),
        1,
        "filters combine; the limit does not cut the count"
    );

    // A database from before the keys (or from an older rule): homerooms written
    // straight into the table, keys gone; reopening computes them.
    db.exec(
        "UPDATE users SET homeroom = 'Room  4', grade_key = NULL, homeroom_lc = NULL \
         WHERE email_lc IN ('ana@x.org', 'bo@x.org')",
    );
    db.exec("UPDATE users SET grade_key = NULL");
    db.exec("DELETE FROM meta WHERE key = 'user_list_keys'");
    let again = db.reopen().unwrap();
    let room = |h: &str| UserQuery {
        homeroom: Some(h.into()),
        ..Default::default()
    };
    for spelling in ["room 4", "ROOM 4", " Room   4 "] {
        assert_eq!(
            names(&again.list_users(&room(spelling)).unwrap()),
            ["Ana", "Bo"],
            "homeroom {spelling:?}"
        );
    }
    assert!(again.list_users(&room("Room 40")).unwrap().is_empty());
    assert_eq!(
        again.count_listed_users(&q("5")).unwrap(),
        3,
        "grade keys recomputed on open"
    );
}

/// The order a sort promises: accounts with a value by (value, id), then those without
/// by id, each the other way round when descending.
fn expected(all: &[UserRecord], sort: UserSort) -> Vec<AccountId> {
    let mut with: Vec<(String, AccountId)> = Vec::new();
    let mut without: Vec<AccountId> = Vec::new();
    for r in all {
        match sort.key_of(&r.user) {
            Some(k) if sort.column != SortColumn::Id => with.push((k, r.user.id)),
            _ => without.push(r.user.id),
        }
    }
    with.sort();
    without.sort();
    if sort.descending {
        with.reverse();
        without.reverse();
    }
    with.into_iter().map(|(_, id)| id).chain(without).collect()
}

fn every_sort_pages_without_skips_or_repeats(db: &mut TestDb) {
    seed(db);
    let s = db.store();
    let all = s.list_users(&UserQuery::default()).unwrap();
    assert_eq!(all.len(), 12);
    for column in SortColumn::ALL {
        for descending in [false, true] {
            let sort = UserSort {
                column: *column,
                descending,
            };
            let want = expected(&all, sort);
            let whole: Vec<AccountId> = s
                .list_users(&UserQuery {
                    sort,
                    ..Default::default()
                })
                .unwrap()
                .iter()
                .map(|r| r.user.id)
                .collect();
            assert_eq!(whole, want, "sort {sort}");
            for size in [1, 3, 5] {
                let mut seen = Vec::new();
                let mut cursor: Option<ListCursor> = None;
                for _ in 0..20 {
                    let page = s
                        .list_users(
                            &UserQuery {
                                sort,
                                limit: size,
                                ..Default::default()
                            }
                            .starting_after(cursor.clone()),
                        )
                        .unwrap();
                    assert!(page.len() <= size as usize);
                    let Some(last) = page.last() else { break };
                    cursor = Some(ListCursor::after(sort, &last.user));
                    seen.extend(page.iter().map(|r| r.user.id));
                }
                assert_eq!(seen, want, "sort {sort}, pages of {size}");
            }
        }
    }

    // Sorted and filtered: grade 5 by name, descending.
    let spec = ListSpec::from_params([("grade", "5"), ("sort", "-name")]).unwrap();
    let page = s.list_users(&UserQuery::from_spec(&spec, 0)).unwrap();
    let firsts: Vec<_> = page
        .iter()
        .filter_map(|r| r.user.first_name.clone())
        .collect();
    assert_eq!(firsts, ["Cy", "Bo", "Ana"]);
    // Grades sort in grade order (pre-K, K, 5, 10), not as text.
    let by_grade = s
        .list_users(&UserQuery {
            sort: UserSort::parse("grade").unwrap(),
            ..Default::default()
        })
        .unwrap();
    let grades: Vec<_> = by_grade
        .iter()
        .filter_map(|r| r.user.grade.clone())
        .collect();
    assert_eq!(
        grades,
        ["PK", "K", "KG", "Kindergarten", "5", "05", "Grade 5", "10"]
    );
    // A cursor without its value in a column everyone has one for is looked up.
    let by_type = UserSort::parse("type").unwrap();
    let typed = expected(&all, by_type);
    let rest = s
        .list_users(&UserQuery {
            sort: by_type,
            after: Some(typed[3]),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        rest.iter().map(|r| r.user.id).collect::<Vec<_>>(),
        typed[4..]
    );
}

fn saved_views_are_kept_replaced_and_deleted(db: &mut TestDb) {
    let s = db.store();
    assert!(s.saved_views().unwrap().is_empty());
    let grade5 = ListSpec::from_params([("grade", "5"), ("sort", "-name")]).unwrap();
    let (v, replaced) = s
        .save_view(" Grade 5 by name ", &grade5, "console:adam", now())
        .unwrap();
    assert!(!replaced);
    assert_eq!(v.name, "Grade 5 by name");
    assert_eq!(v.saved_by, "console:adam");
    assert_eq!(v.spec().unwrap(), grade5);
    assert_eq!(v.params, r#"{"grade":"5","sort":"-name"}"#);
    let students = ListSpec::from_params([("type", "student"), ("active", "true")]).unwrap();
    s.save_view("Active students", &students, "console:adam", now())
        .unwrap();
    let listed = s.saved_views().unwrap();
    assert_eq!(
        listed.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(),
        ["Active students", "Grade 5 by name"],
        "by name"
    );
    // The same name in another case replaces it.
    let (again, replaced) = s
        .save_view("GRADE 5 BY NAME", &students, "token:#2 ci", now())
        .unwrap();
    assert!(replaced);
    assert_eq!(again.id, v.id);
    assert_eq!(again.name, "GRADE 5 BY NAME");
    assert_eq!(again.spec().unwrap(), students);
    assert_eq!(s.saved_views().unwrap().len(), 2);
    assert!(matches!(
        s.save_view("  ", &students, "console:adam", now()),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.saved_view(v.id).unwrap().unwrap().name, "GRADE 5 BY NAME");
    assert_eq!(
        s.delete_view(v.id, "console:olivia", now()).unwrap(),
        "GRADE 5 BY NAME"
    );
    assert!(matches!(
        s.delete_view(v.id, "console:olivia", now()),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(s.saved_views().unwrap().len(), 1);
    let log = s.audit_log(10).unwrap();
    let actions: Vec<_> = log
        .iter()
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(
        actions[..4],
        [
            ("view.delete", "console:olivia"),
            ("view.save", "token:#2 ci"),
            ("view.save", "console:adam"),
            ("view.save", "console:adam"),
        ]
    );
    assert!(log[1].detail.contains("(replaced)"), "{}", log[1].detail);
    assert!(
        log[3]
            .detail
            .contains("grade 5, sorted by name, descending"),
        "{}",
        log[3].detail
    );
}

conformance!(
    grades_and_homerooms_match_any_spelling,
    every_sort_pages_without_skips_or_repeats,
    saved_views_are_kept_replaced_and_deleted,
);
