//! What a read accepts but reports: values read leniently, required fields left blank and
//! references to records the source does not hold, counted per collection by `inspect`
//! — from CSV packages (`tests/data/packages/v11-bulk-loose` holds one of each) and from
//! REST JSON — without failing or spoiling the read.

use std::collections::BTreeMap;

use axum::response::IntoResponse;
use oneroster::inspect::{Inspection, inspect};
use oneroster::report::{Example, Tally};
use oneroster::rest::{Auth, RestConfig};
use oneroster::source::Source;
use serde_json::{Value, json};

use crate::csv_package::sample;

fn inspect_csv(path: &std::path::Path) -> Inspection {
    let mut source = Source::open_csv(path).unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(inspect(&mut source))
        .unwrap()
}

fn example(sourced_id: &str, field: &str, value: &str, read_as: Option<&str>) -> Example {
    Example {
        sourced_id: sourced_id.into(),
        field: field.into(),
        value: value.into(),
        read_as: read_as.map(Into::into),
    }
}

/// `{field: count}` of a tally.
fn fields(t: &Tally) -> BTreeMap<&str, u64> {
    t.fields.iter().map(|(f, n)| (f.as_str(), *n)).collect()
}

/// `{target: count}` of a collection's dangling references.
fn dangling(i: &Inspection, collection: &str) -> BTreeMap<&'static str, u64> {
    i.collections[collection]
        .dangling
        .iter()
        .map(|(t, tally)| (*t, tally.count))
        .collect()
}

#[test]
fn a_loose_package_is_read_completely_and_says_what_it_accepted() {
    let (_zip, paths) = sample("v11-bulk-loose");
    for path in paths {
        let at = path.display().to_string();
        let i = inspect_csv(&path);
        assert!(i.complete(), "{at}: findings never spoil completeness");
        assert_eq!(i.collections["users"].records, 4, "{at}");
        assert_eq!(i.collections["enrollments"].records, 6, "{at}");
        assert_eq!(
            i.warnings,
            [
                "users: 1 record(s) had values that could not be read",
                "users.csv line 2: column `dateLastModified`: '1/08/2026' is not an ISO-8601 date-time; ignored"
            ],
            "{at}: an unreadable value stays a warning"
        );

        let orgs = &i.collections["orgs"];
        assert_eq!(
            orgs.lenient.examples,
            [example("org-d", "type", "District", Some("district"))]
        );
        assert_eq!(
            orgs.blank_required.examples,
            [example("org-s2", "name", "", None)]
        );
        assert_eq!(
            orgs.dangling["orgs"].examples,
            [example("org-s2", "parentSourcedId", "org-region-9", None)],
            "{at}: a parent not in the package (checked once every org is read)"
        );

        let sessions = &i.collections["academicSessions"];
        assert_eq!(
            sessions.lenient.examples,
            [
                example("as-t1", "type", "Term", Some("term")),
                example(
                    "as-t1",
                    "startDate",
                    "2026-08-17T00:00:00Z",
                    Some("2026-08-17")
                ),
            ]
        );
        assert_eq!(fields(&sessions.blank_required), [("schoolYear", 1)].into());
        assert!(sessions.dangling.is_empty(), "{at}");

        let courses = &i.collections["courses"];
        assert!(courses.lenient.is_empty());
        assert_eq!(fields(&courses.blank_required), [("title", 1)].into());
        assert_eq!(
            dangling(&i, "courses"),
            [("academicSessions", 1), ("orgs", 1)].into()
        );
        assert_eq!(
            courses.dangling["academicSessions"].examples,
            [example("crs-2", "schoolYearSourcedId", "as-2019", None)]
        );

        let classes = &i.collections["classes"];
        assert_eq!(
            classes.lenient.examples,
            [example(
                "cls-1",
                "classType",
                "Scheduled",
                Some("scheduled")
            )]
        );
        assert!(classes.blank_required.is_empty());
        assert_eq!(
            dangling(&i, "classes"),
            [("academicSessions", 1), ("courses", 1)].into()
        );
        assert_eq!(
            classes.dangling["academicSessions"].examples,
            [example("cls-2", "termSourcedIds", "as-gone", None)]
        );

        let users = &i.collections["users"];
        assert_eq!(users.lenient.count, 6, "{at}: {:#?}", users.lenient);
        assert_eq!(
            fields(&users.lenient),
            [
                ("dateLastModified", 1),
                ("enabledUser", 3),
                ("role", 1),
                ("status", 1)
            ]
            .into()
        );
        assert!(users.lenient.examples.contains(&example(
            "u-p1",
            "dateLastModified",
            "2026-08-01 07:30:00",
            Some("2026-08-01T07:30:00Z")
        )));
        assert!(users.lenient.examples.contains(&example(
            "u-t1",
            "enabledUser",
            "TRUE",
            Some("true")
        )));
        assert_eq!(
            users.blank_required.examples,
            [
                example("u-s2", "enabledUser", "", Some("true")),
                example("u-s2", "givenName", "", None),
            ]
        );
        assert_eq!(dangling(&i, "users"), [("orgs", 1), ("users", 1)].into());
        assert_eq!(
            users.dangling["orgs"].examples,
            [example("u-s2", "orgSourcedIds", "org-zz", None)]
        );
        assert_eq!(
            users.dangling["users"].examples,
            [example("u-s2", "agentSourcedIds", "u-gone", None)],
            "{at}: u-s1's agent u-p1 comes later in the file and is found"
        );

        let enrollments = &i.collections["enrollments"];
        assert_eq!(
            enrollments.lenient.examples,
            [
                example("e-1", "primary", "False", Some("false")),
                example("e-2", "role", "Teacher", Some("teacher")),
                example(
                    "e-4",
                    "beginDate",
                    "2026-08-17 00:00:00",
                    Some("2026-08-17")
                ),
            ]
        );
        assert_eq!(
            enrollments.blank_required.examples,
            [example("e-5", "userSourcedId", "", None)]
        );
        assert_eq!(
            dangling(&i, "enrollments"),
            [("classes", 1), ("users", 1)].into(),
            "{at}: the deleted enrollment e-6 points at nothing and is not counted"
        );

        // The line each collection gets, as inspect prints it and Validate shows it.
        let lines: Vec<String> = i.findings().into_iter().map(|f| f.line).collect();
        assert_eq!(
            lines,
            [
                "academicSessions: 2 values read leniently (type `Term` → term …), 1 blank required cell (schoolYear 1)",
                "classes: 1 value read leniently (classType `Scheduled` → scheduled), 1 reference to missing academicSessions (termSourcedIds `as-gone`), 1 reference to missing courses (courseSourcedId `crs-missing`)",
                "courses: 1 blank required cell (title 1), 1 reference to missing academicSessions (schoolYearSourcedId `as-2019`), 1 reference to missing orgs (orgSourcedId `org-gone`)",
                "enrollments: 3 values read leniently (primary `False` → false …), 1 blank required cell (userSourcedId 1), 1 reference to missing classes (classSourcedId `cls-nope`), 1 reference to missing users (userSourcedId `u-missing`)",
                "orgs: 1 value read leniently (type `District` → district), 1 blank required cell (name 1), 1 reference to missing orgs (parentSourcedId `org-region-9`)",
                "users: 6 values read leniently (enabledUser `TRUE` → true …), 2 blank required cells (enabledUser 1, givenName 1), 1 reference to missing orgs (orgSourcedIds `org-zz`), 1 reference to missing users (agentSourcedIds `u-gone`)",
            ],
            "{at}"
        );
        let users_findings = i
            .findings()
            .into_iter()
            .find(|f| f.line.starts_with("users:"))
            .unwrap();
        for line in [
            "u-t1: enabledUser `TRUE` read as true",
            "u-s2: enabledUser blank, read as true",
            "u-s2: givenName blank",
            "u-s2: orgSourcedIds `org-zz` is not among the orgs",
        ] {
            assert!(
                users_findings.examples.iter().any(|e| e == line),
                "{at}: {line:?} in {:#?}",
                users_findings.examples
            );
        }

        // The JSON document carries it all.
        let doc = serde_json::to_value(&i).unwrap();
        let u = &doc["collections"]["users"];
        assert_eq!(u["lenient"]["count"], 6);
        assert_eq!(u["lenient"]["fields"]["enabledUser"], 3);
        assert_eq!(u["blank_required"]["count"], 2);
        assert_eq!(u["dangling"]["orgs"]["count"], 1);
        assert_eq!(
            u["dangling"]["users"]["examples"][0],
            json!({"sourced_id": "u-s2", "field": "agentSourcedIds", "value": "u-gone", "read_as": null})
        );
    }
}

#[test]
fn the_public_samples_quirks_are_counted_and_the_minimal_one_lacks_nothing() {
    let (_zip, [folder, _]) = sample("v11-bulk-full");
    let i = inspect_csv(&folder);
    assert!(i.complete());
    let users = &i.collections["users"];
    assert_eq!(
        fields(&users.lenient),
        [("dateLastModified", 2), ("enabledUser", 3)].into(),
        "`TRUE` three times and two bare dates"
    );
    assert!(
        users.blank_required.is_empty(),
        "{:?}",
        users.blank_required
    );
    let sessions = &i.collections["academicSessions"];
    assert_eq!(
        fields(&sessions.lenient),
        [("dateLastModified", 2), ("status", 1)].into(),
        "`inactive` read as tobedeleted"
    );
    assert_eq!(
        i.collections["classes"].lenient.examples,
        [example(
            "cls-chem-1",
            "classType",
            "Scheduled",
            Some("scheduled")
        )]
    );
    assert_eq!(dangling(&i, "orgs"), [("orgs", 1)].into());
    assert!(
        i.collections["classes"].dangling.is_empty(),
        "courses are absent from the package: references to them prove nothing"
    );
    for (name, c) in &i.collections {
        if *name != "orgs" {
            assert!(c.dangling.is_empty(), "{name}: {:?}", c.dangling);
        }
    }

    // The package with only the cells the standard requires lacks none of them.
    let (_zip, [folder, _]) = sample("v11-bulk-minimal");
    let i = inspect_csv(&folder);
    for (name, c) in &i.collections {
        assert!(
            c.blank_required.is_empty(),
            "{name}: {:?}",
            c.blank_required
        );
    }
    assert_eq!(
        i.collections["users"].lenient.count, 3,
        "`TRUE` three times"
    );
}

#[test]
fn a_delta_proves_nothing_about_references() {
    // A delta holds the changes only: what its records point at may be unchanged, so
    // not in it. The tobedeleted enrollment is not checked either.
    let (_zip, [folder, _]) = sample("v12-delta-roles");
    let i = inspect_csv(&folder);
    for (name, c) in &i.collections {
        assert!(c.dangling.is_empty(), "{name}: {:?}", c.dangling);
        assert!(
            c.blank_required.is_empty(),
            "{name}: {:?}",
            c.blank_required
        );
    }
    assert_eq!(
        fields(&i.collections["users"].lenient),
        [("enabledUser", 1)].into()
    );
}

/// A REST server answering each collection in one page, with the records given.
async fn serve(collections: Value) -> String {
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let collections = collections.clone();
        async move {
            let name = uri.path().rsplit('/').next().unwrap_or_default().to_owned();
            match collections.get(&name) {
                Some(records) => {
                    let n = records.as_array().map_or(0, Vec::len);
                    (
                        [
                            ("content-type", "application/json".to_owned()),
                            ("x-total-count", n.to_string()),
                        ],
                        Value::Object([(name, records.clone())].into_iter().collect()).to_string(),
                    )
                        .into_response()
                }
                None => axum::http::StatusCode::NOT_FOUND.into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/ims/oneroster/v1p1")
}

fn guid(id: &str) -> Value {
    json!({"href": format!("/x/{id}"), "sourcedId": id, "type": "x"})
}

#[tokio::test]
async fn rest_json_findings_use_the_json_names() {
    let stamp = "2026-08-01T00:00:00.000Z";
    let base = serve(json!({
        "orgs": [
            {"sourcedId": "d", "status": "active", "dateLastModified": stamp, "name": "District", "type": "district"},
            {"sourcedId": "s1", "status": "active", "dateLastModified": stamp, "name": "High", "type": "School", "parent": guid("d")},
        ],
        "academicSessions": [
            {"sourcedId": "y", "status": "active", "dateLastModified": stamp, "title": "2026-27", "type": "schoolYear",
             "startDate": "2026-08-17", "endDate": "2027-06-04", "schoolYear": "2027"},
        ],
        "courses": [
            {"sourcedId": "c", "status": "active", "dateLastModified": stamp, "title": "Chemistry", "org": guid("s1"), "schoolYear": guid("y")},
        ],
        "classes": [
            {"sourcedId": "k1", "status": "active", "dateLastModified": stamp, "title": "Chem 1", "classType": "Scheduled",
             "course": guid("c"), "school": guid("s1"), "terms": [guid("y")]},
        ],
        "users": [
            {"sourcedId": "u1", "status": "active", "dateLastModified": "2026-08-01 00:00:00", "enabledUser": "TRUE",
             "username": "ann", "givenName": "Ann", "familyName": "Lee", "role": "student", "orgs": [guid("s1")],
             "agents": [guid("g1")]},
            {"sourcedId": "u2", "status": "inactive", "dateLastModified": stamp, "enabledUser": 1,
             "username": "bo", "givenName": "Bo", "familyName": "Lee", "role": "student", "orgs": [guid("s9")]},
            {"sourcedId": "t1", "status": "active", "dateLastModified": stamp, "enabledUser": true,
             "username": "tia", "givenName": "", "familyName": "Park", "role": "teacher", "orgs": [guid("s1")],
             "primaryOrg": guid("s2")},
        ],
        "enrollments": [
            {"sourcedId": "e1", "status": "active", "dateLastModified": stamp, "user": guid("u1"), "class": guid("k1"),
             "school": guid("s1"), "role": "student", "primary": "false"},
            {"sourcedId": "e2", "status": "active", "dateLastModified": stamp, "user": guid("u3"), "class": guid("k1"),
             "school": guid("s1"), "role": "student"},
        ],
    }))
    .await;
    let mut source = Source::open_rest(RestConfig::new(base, Auth::None)).unwrap();
    let i = inspect(&mut source).await.unwrap();
    assert_eq!(i.kind, "rest");
    assert!(i.complete(), "{:#?}", i.warnings);
    let users = &i.collections["users"];
    assert_eq!(
        fields(&users.lenient),
        [("dateLastModified", 1), ("enabledUser", 2), ("status", 1)].into()
    );
    assert!(users.lenient.examples.contains(&example(
        "u2",
        "status",
        "inactive",
        Some("tobedeleted")
    )));
    assert!(
        users
            .lenient
            .examples
            .contains(&example("u2", "enabledUser", "1", Some("true")))
    );
    assert_eq!(
        users.blank_required.examples,
        [example("t1", "givenName", "", None)]
    );
    assert_eq!(dangling(&i, "users"), [("orgs", 1), ("users", 1)].into());
    assert_eq!(
        users.dangling["orgs"].examples,
        [example("t1", "primaryOrg", "s2", None)],
        "u2 is being deleted: its org s9 is not looked up"
    );
    assert_eq!(
        users.dangling["users"].examples,
        [example("u1", "agents", "g1", None)]
    );
    assert_eq!(
        i.collections["enrollments"].dangling["users"].examples,
        [example("e2", "user", "u3", None)]
    );
    assert_eq!(
        i.collections["classes"].lenient.examples,
        [example("k1", "classType", "Scheduled", Some("scheduled"))]
    );
    assert_eq!(
        i.collections["orgs"].lenient.examples,
        [example("s1", "type", "School", Some("school"))]
    );
    let lines: Vec<String> = i.findings().into_iter().map(|f| f.line).collect();
    assert!(
        lines.contains(&"enrollments: 1 reference to missing users (user `u3`)".to_owned()),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("users: ") && l.contains("1 blank required field (givenName 1)")),
        "REST says fields, not cells: {lines:#?}"
    );
}
