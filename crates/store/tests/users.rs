//! Accounts: sign-on imports, listing with filters and paging, lookup, groups, counts,
//! and text that must survive every path (quotes, Unicode, tabs, backslashes).

use oneroster::Role;
use rostersync_core::directory::{Access, AccountId, Field, UserType, Writer};
use store::{NewAccountRow, UserQuery};

use crate::harness::{TestDb, config, conformance, district_config, now, person, sso_row, sync};

fn import_accounts_skips_existing_emails(db: &mut TestDb) {
    let s = db.store();
    let first = s
        .import_accounts(
            &[
                NewAccountRow {
                    email: " Ana@X.org ".into(),
                    first_name: Some("Ana".into()),
                    last_name: Some(" ".into()),
                    username: Some("ana".into()),
                },
                sso_row("bo@x.org", "Bo", "Ek"),
            ],
            "microsoft",
            now(),
        )
        .unwrap();
    assert_eq!(first.created, 2);
    assert!(first.existing.is_empty());

    let second = s
        .import_accounts(
            &[
                sso_row("ANA@x.ORG", "A", "B"),
                sso_row("cy@x.org", "Cy", "Do"),
                sso_row("Cy@x.org", "Cy", "Again"),
            ],
            "google",
            now(),
        )
        .unwrap();
    assert_eq!(second.created, 1);
    assert_eq!(second.existing, ["ANA@x.ORG", "Cy@x.org"]);
    assert_eq!(db.count("users"), 3);
    assert_eq!(db.count("revisions"), 3, "one `created` revision each");
    assert_eq!(db.count("field_provenance"), 0);

    let ana = s.find_user("ana@x.org").unwrap().unwrap();
    assert_eq!(
        ana.user.email.as_deref(),
        Some("Ana@X.org"),
        "kept as given, trimmed"
    );
    assert_eq!(ana.user.last_name, None, "blank is no value");
    assert_eq!(ana.user.provider.as_deref(), Some("microsoft"));
    assert_eq!(ana.user.user_type, UserType::Other);
    assert_eq!(ana.user.access, Access::Requestor);
    assert!(ana.user.active);
    assert_eq!(ana.user.revision, 1);
    assert_eq!(ana.sis, None);
    assert_eq!(ana.created_at, now());
    let ms = Writer::SignOn("microsoft".into());
    assert_eq!(
        ana.user.provenance,
        vec![
            (Field::Username, ms.clone()),
            (Field::Email, ms.clone()),
            (Field::FirstName, ms)
        ]
        .into()
    );
    let revs = s.user_revisions(ana.user.id).unwrap();
    assert_eq!(revs[0].field, "created");
    assert_eq!(revs[0].writer, "sso:microsoft");
    assert_eq!(revs[0].run, None);

    let err = s
        .import_accounts(&[sso_row("x@x.org", "X", "Y")], "okta", now())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("'okta'") && err.contains("google, microsoft, local"),
        "{err}"
    );
    let err = s
        .import_accounts(&[sso_row(" ", "X", "Y")], "local", now())
        .unwrap_err()
        .to_string();
    assert!(err.contains("email is empty"), "{err}");
    assert_eq!(db.count("users"), 3, "refused imports write nothing");
}

/// An import larger than the store writes at a time (10 000 accounts) makes every
/// account and revision once, and still finds a repeat across the batches.
fn a_large_import_is_written_in_batches_and_whole(db: &mut TestDb) {
    let s = db.store();
    let n: usize = 25_001;
    let mut rows: Vec<NewAccountRow> = (0..n)
        .map(|i| NewAccountRow {
            email: format!("a{i}@x.org"),
            first_name: Some(format!("F{i}")),
            last_name: Some("L".into()),
            username: Some(format!("u{i}")),
        })
        .collect();
    // In the last batch: the first row's email again, and the second row's username.
    rows.push(sso_row("A0@x.org", "Again", "L"));
    rows.push(NewAccountRow {
        username: Some("U1".into()),
        ..sso_row("other@x.org", "O", "L")
    });
    let summary = s.import_accounts(&rows, "google", now()).unwrap();
    assert_eq!(summary.created, n as u64);
    assert_eq!(summary.existing, ["A0@x.org"]);
    assert_eq!(summary.skipped.len(), 1);
    assert_eq!(summary.skipped[0].row, n + 2);
    assert_eq!(summary.skipped[0].earlier_row, Some(2));
    assert_eq!(db.count("users"), n as i64);
    assert_eq!(
        db.count("revisions"),
        n as i64,
        "one `created` revision each"
    );
    let last = s.find_user(&format!("a{}@x.org", n - 1)).unwrap().unwrap();
    assert_eq!(
        last.user.username.as_deref(),
        Some(format!("u{}", n - 1).as_str())
    );
    assert_eq!(s.user_revisions(last.user.id).unwrap().len(), 1);
}

fn list_users_filters_and_pages(db: &mut TestDb) {
    let s = db.store();
    let cfg = district_config();
    s.import_accounts(
        &[
            sso_row("Ana.Li@district.k12.us", "Ana", "Li"),
            sso_row("guest@x.org", "Gus", "Tee"),
        ],
        "google",
        now(),
    )
    .unwrap();
    let mut zoe = person("s3", Role::Student, "Zoë", "Ærø", Some("zoe@x.org"));
    zoe.edit(|f| f.enabled = false);
    let people = [
        person(
            "s1",
            Role::Student,
            "Ana",
            "Li",
            Some("ana.li@students.district.k12.us"),
        ),
        person("t1", Role::Teacher, "Bo", "Ek", Some("bo@x.org")),
        person("t2", Role::Teacher, "Cy", "100%_Do", Some("cy@x.org")),
        zoe,
    ];
    let cfg_inactive = {
        let mut c = cfg.clone();
        c.sources[0].import.include_inactive = true;
        c
    };
    sync(s, &cfg_inactive, &people, now());
    let all = s.list_users(&UserQuery::default()).unwrap();
    assert_eq!(all.len(), 5);
    assert!(
        all.windows(2).all(|w| w[0].user.id < w[1].user.id),
        "ordered by id"
    );

    let ids = |q: UserQuery| -> Vec<String> {
        s.list_users(&q)
            .unwrap()
            .into_iter()
            .map(|u| u.user.email.unwrap_or_default())
            .collect()
    };
    assert_eq!(
        ids(UserQuery {
            linked: Some(false),
            ..Default::default()
        }),
        ["guest@x.org"]
    );
    // The Overview's "unlinked and active", read from the kept unlinked accounts.
    assert_eq!(
        ids(UserQuery {
            linked: Some(false),
            active: Some(true),
            ..Default::default()
        }),
        ["guest@x.org"]
    );
    assert_eq!(
        s.count_listed_users(&UserQuery {
            linked: Some(false),
            active: Some(true),
            ..Default::default()
        })
        .unwrap(),
        s.count_users().unwrap().unlinked_active,
        "the list has as many entries as the Overview's count"
    );
    assert_eq!(
        ids(UserQuery {
            linked: Some(true),
            ..Default::default()
        })
        .len(),
        4
    );
    assert_eq!(
        ids(UserQuery {
            active: Some(false),
            ..Default::default()
        }),
        ["zoe@x.org"]
    );
    assert_eq!(
        ids(UserQuery {
            user_type: Some(UserType::Faculty),
            ..Default::default()
        }),
        ["bo@x.org", "cy@x.org"]
    );
    let search = |text: &str| {
        ids(UserQuery {
            search: Some(text.into()),
            ..Default::default()
        })
    };
    assert_eq!(
        search("ZOË"),
        ["zoe@x.org"],
        "Unicode case-insensitive, by name"
    );
    assert_eq!(search("ærø"), ["zoe@x.org"]);
    assert_eq!(search("GUEST@"), ["guest@x.org"], "by email");
    assert_eq!(search("boek"), ["bo@x.org"], "by username");
    assert_eq!(search("100%_"), ["cy@x.org"], "wildcards are literal");
    assert!(
        search("_x").is_empty(),
        "`_` is no wildcard: would match every @x.org"
    );
    assert_eq!(search("  ").len(), 5, "blank search is no filter");
    assert_eq!(
        ids(UserQuery {
            linked: Some(true),
            active: Some(true),
            user_type: Some(UserType::Student),
            ..Default::default()
        }),
        ["Ana.Li@district.k12.us"]
    );

    // Paging by id visits everyone once, in order.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s
            .list_users(&UserQuery {
                after,
                limit: 2,
                ..Default::default()
            })
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        after = page.last().map(|u| u.user.id);
        seen.extend(page.into_iter().map(|u| u.user.id));
    }
    assert_eq!(seen, all.iter().map(|u| u.user.id).collect::<Vec<_>>());

    let counts = s.count_users().unwrap();
    assert_eq!(
        (
            counts.users,
            counts.active,
            counts.linked,
            counts.unlinked_active
        ),
        (5, 4, 4, 1)
    );
}

fn find_user_by_id_email_or_username(db: &mut TestDb) {
    let s = db.store();
    let cfg = config("");
    s.import_accounts(
        &[NewAccountRow {
            email: "Numbers@x.org".into(),
            first_name: None,
            last_name: None,
            username: Some("20250001".into()),
        }],
        "local",
        now(),
    )
    .unwrap();
    sync(
        s,
        &cfg,
        &[person(
            "s1",
            Role::Student,
            "Ana",
            "Li",
            Some("Ana.Li@X.org"),
        )],
        now(),
    );
    let ana = s.find_user("ANA.LI@x.org").unwrap().unwrap();
    assert_eq!(ana.user.email.as_deref(), Some("ana.li@x.org"));
    assert_eq!(
        ana.sis,
        Some(store::SisRef {
            source: "sis".into(),
            sourced_id: "s1".into()
        })
    );
    assert_eq!(
        s.find_user(&ana.user.id.to_string()).unwrap().unwrap().user,
        ana.user
    );
    assert_eq!(
        s.find_user(" AnaLi ").unwrap().unwrap().user.id,
        ana.user.id,
        "by username"
    );
    let numbers = s.find_user("20250001").unwrap().unwrap();
    assert_eq!(
        numbers.user.email.as_deref(),
        Some("Numbers@x.org"),
        "digits that are no id: a username"
    );
    assert_eq!(s.find_user("1").unwrap().unwrap().user.id, AccountId(1));
    assert!(s.find_user("nobody@x.org").unwrap().is_none());
    assert!(s.find_user("").unwrap().is_none());
    assert!(s.find_user("99999999999999999999999").unwrap().is_none());
}

fn user_groups_are_listed_by_name(db: &mut TestDb) {
    let s = db.store();
    s.import_accounts(&[sso_row("ana@x.org", "Ana", "Li")], "google", now())
        .unwrap();
    let id = s.find_user("ana@x.org").unwrap().unwrap().user.id;
    assert!(s.user_groups(id).unwrap().is_empty());
    db.exec(&format!(
        "INSERT INTO groups (name, kind, created_at) VALUES ('Room 101', 'class', '2026-09-01T02:00:00.000000000Z'); \
         INSERT INTO groups (name, kind, created_at) VALUES ('Lincoln Elementary', 'school', '2026-09-01T02:00:00.000000000Z'); \
         INSERT INTO group_members (group_id, user_id) SELECT id, {id} FROM groups;"
    ));
    assert_eq!(
        s.user_groups(id).unwrap(),
        ["Lincoln Elementary", "Room 101"]
    );
}

fn text_survives_every_path(db: &mut TestDb) {
    let s = db.store();
    let nasty = "O'Brien \"Q\" \\back\tslash\nnew ?$1 Zoë 李 😀";
    s.import_accounts(
        &[NewAccountRow {
            email: "nasty@x.org".into(),
            first_name: Some(nasty.into()),
            last_name: Some("'; DROP TABLE users; --".into()),
            username: None,
        }],
        "local",
        now(),
    )
    .unwrap();
    let u = s.find_user("nasty@x.org").unwrap().unwrap();
    assert_eq!(u.user.first_name.as_deref(), Some(nasty));
    assert_eq!(u.user.last_name.as_deref(), Some("'; DROP TABLE users; --"));

    let cfg = config("");
    let mut p = person("s-'\"\\\t?", Role::Student, "Zoë", "李", Some("zoe@x.org"));
    p.edit(|f| {
        f.middle_name = Some(nasty.into());
        f.identifier = Some("ID\\N".into());
    });
    sync(s, &cfg, &[p], now());
    let z = s.find_user("zoe@x.org").unwrap().unwrap();
    assert_eq!(z.user.middle_name.as_deref(), Some(nasty));
    assert_eq!(
        z.user.identifier.as_deref(),
        Some("ID\\N"),
        "not COPY's NULL"
    );
    assert_eq!(z.sis.unwrap().sourced_id, "s-'\"\\\t?");
    let view = s.load_view("sis").unwrap();
    assert!(view.link("s-'\"\\\t?").is_some());
    assert_eq!(
        s.list_users(&UserQuery {
            search: Some("李".into()),
            ..Default::default()
        })
        .unwrap()
        .len(),
        2
    );
}

conformance!(
    import_accounts_skips_existing_emails,
    a_large_import_is_written_in_batches_and_whole,
    list_users_filters_and_pages,
    find_user_by_id_email_or_username,
    user_groups_are_listed_by_name,
    text_survives_every_path,
);
