//! Tests of the lenient JSON decoding: records, pages and single-object responses.

use super::page::CAREFUL;
use super::*;
use crate::model::*;

fn user(json: &str) -> User {
    serde_json::from_str(json).unwrap()
}

#[test]
fn v11_user_with_every_quirk() {
    let u = user(
        r#"{"sourcedId":"u1","status":"inactive","dateLastModified":"2026-01-02 03:04:05",
               "enabledUser":"TRUE","username":" jdoe ","givenName":"Jane","familyName":"Doe",
               "role":"Teacher","orgs":[{"href":"../orgs/s1","sourcedId":"s1","type":"school"},
               {"sourcedId":"s2","type":"wrong"}],"grades":"09, 10","email":"Jane.Doe@X.org",
               "userIds":[{"type":"LDAP","identifier":"12"}],"agents":[],"password":"hunter2",
               "metadata":{"ext:x":1},"vendorField":{"a":[1,2]}}"#,
    );
    assert_eq!(u.base.sourced_id, "u1");
    assert_eq!(u.base.status, Status::ToBeDeleted);
    assert!(u.base.date_last_modified.is_some());
    assert!(u.enabled_user);
    assert_eq!(u.username, "jdoe");
    assert_eq!(u.primary_role(), Some(&Role::Teacher));
    assert_eq!(u.orgs, ["s1", "s2"]);
    assert_eq!(u.primary_org.as_deref(), Some("s1"));
    assert_eq!(u.grades, ["09", "10"]);
    assert_eq!(u.user_ids[0].identifier, "12");
    assert_eq!(u.base.metadata.as_ref().unwrap().get(), r#"{"ext:x":1}"#);
    assert_eq!(u.base.extensions.len(), 1);
    assert_eq!(u.base.extensions[0].0, "vendorField");
    assert!(u.base.warnings.is_empty(), "{:?}", u.base.warnings);
}

#[test]
fn v12_user() {
    let u = user(
        r#"{"sourcedId":"u2","status":"active","enabledUser":"false","username":"k",
               "givenName":"Kim","familyName":"Lee","preferredFirstName":"Kimmy","pronouns":"they/them",
               "roles":[{"roleType":"secondary","role":"aide","org":{"sourcedId":"s9"}},
                        {"roleType":"primary","role":"ext:coach","org":{"sourcedId":"s1"}}],
               "primaryOrg":{"sourcedId":"s1"},"grades":["KG"],"enabledUser":0}"#,
    );
    assert!(!u.enabled_user);
    assert_eq!(u.preferred_first_name.as_deref(), Some("Kimmy"));
    assert_eq!(u.primary_role(), Some(&Role::Other("ext:coach".into())));
    assert_eq!(u.orgs, ["s1", "s9"]);
    assert_eq!(u.primary_org.as_deref(), Some("s1"));
}

#[test]
fn wrong_kinds_become_warnings_not_failures() {
    let u = user(
        r#"{"sourcedId":"u3","enabledUser":"maybe","givenName":{"x":1},"grades":true,
               "orgs":"s1,s2","dateLastModified":"1/05/2023","status":"retired","agents":[{"href":"x"}]}"#,
    );
    assert!(u.enabled_user, "unreadable enabledUser keeps the default");
    assert_eq!(u.given_name, "");
    assert_eq!(u.orgs, ["s1", "s2"]);
    assert_eq!(u.base.status, Status::Active);
    assert_eq!(u.base.warnings.len(), 6, "{:#?}", u.base.warnings);
    assert!(
        u.base
            .warnings
            .iter()
            .any(|w| w.contains("`dateLastModified`: '1/05/2023'"))
    );
}

/// A record's findings as `(kind, field, value, read as)`.
fn findings(base: &Base) -> Vec<(FindingKind, &str, &str, &str)> {
    base.findings
        .iter()
        .map(|f| {
            (
                f.kind,
                f.field.as_str(),
                f.value.as_str(),
                f.read_as.as_str(),
            )
        })
        .collect()
}

#[test]
fn lenient_values_are_noted_with_what_they_became() {
    use FindingKind::*;
    let u = user(
        r#"{"sourcedId":"u1","status":"Active","dateLastModified":"2026-01-02 03:04:05",
               "enabledUser":"TRUE","username":"jdoe","givenName":"Jane","familyName":"Doe",
               "role":"Teacher","orgs":[{"sourcedId":"s1"}]}"#,
    );
    assert_eq!(
        findings(&u.base),
        [
            (Lenient, "status", "Active", "active"),
            (
                Lenient,
                "dateLastModified",
                "2026-01-02 03:04:05",
                "2026-01-02T03:04:05Z"
            ),
            (Lenient, "enabledUser", "TRUE", "true"),
            (Lenient, "role", "Teacher", "teacher"),
        ]
    );
    assert!(u.base.warnings.is_empty());

    // The standard's spellings (and JSON booleans) are nothing to report.
    let u = user(
        r#"{"sourcedId":"u2","status":"active","dateLastModified":"2026-01-02T03:04:05.000Z",
               "enabledUser":true,"username":"k","givenName":"Kim","familyName":"Lee",
               "role":"teacher","orgs":[{"sourcedId":"s1"}]}"#,
    );
    assert!(u.base.findings.is_empty(), "{:?}", u.base.findings);

    let c: Class = serde_json::from_str(
        r#"{"sourcedId":"c1","status":"inactive","title":"Chemistry","classType":"Scheduled"}"#,
    )
    .unwrap();
    assert_eq!(
        findings(&c.base),
        [
            (Lenient, "status", "inactive", "tobedeleted"),
            (Lenient, "classType", "Scheduled", "scheduled"),
        ],
        "a class being deleted needs no course, school or terms"
    );

    let e: Enrollment = serde_json::from_str(
        r#"{"sourcedId":"e1","user":{"sourcedId":"u1"},"class":{"sourcedId":"c1"},
               "school":{"sourcedId":"s1"},"role":"Student","primary":1,
               "beginDate":"2026-08-17T00:00:00Z","endDate":"2027-06-04"}"#,
    )
    .unwrap();
    assert_eq!(
        findings(&e.base),
        [
            (Lenient, "role", "Student", "student"),
            (Lenient, "primary", "1", "true"),
            (Lenient, "beginDate", "2026-08-17T00:00:00Z", "2026-08-17"),
        ]
    );
}

/// An enrollment read for the roster ([`EnrollmentCore`]) holds what a whole one holds
/// of its base, person, class and role; the school, `primary` and the dates are passed
/// over (no warning or finding for their values, no blank school noted, not kept as
/// extensions); keys outside the standard are still kept.
#[test]
fn an_enrollment_read_for_the_roster_passes_over_what_no_roster_reads() {
    use FindingKind::*;
    let json = r#"{"sourcedId":"e1","status":"Active","dateLastModified":"2026-08-01T00:00:00.000Z",
        "user":{"href":"https://x/users/u1","sourcedId":"u1","type":"user"},
        "class":{"sourcedId":"c1"},"school":{"sourcedId":""},"role":"Student",
        "primary":"perhaps","beginDate":"someday","endDate":[1],"x-extra":7}"#;
    let whole: Enrollment = serde_json::from_str(json).unwrap();
    let core: EnrollmentCore = serde_json::from_str(json).unwrap();
    assert_eq!(
        (&core.user, &core.class, &core.role),
        (&whole.user, &whole.class, &whole.role)
    );
    assert_eq!(core.user.as_deref(), Some("u1"));
    assert_eq!(core.base.sourced_id, whole.base.sourced_id);
    assert_eq!(core.base.status, whole.base.status);
    assert_eq!(core.base.date_last_modified, whole.base.date_last_modified);
    assert!(core.base.date_last_modified.is_some());
    assert_eq!(whole.base.warnings.len(), 4, "{:?}", whole.base.warnings);
    assert!(core.base.warnings.is_empty(), "{:?}", core.base.warnings);
    assert_eq!(
        findings(&core.base),
        [
            (Lenient, "status", "Active", "active"),
            (Lenient, "role", "Student", "student"),
        ]
    );
    assert!(
        findings(&whole.base).contains(&(BlankRequired, "school", "", "")),
        "{:?}",
        whole.base.findings
    );
    let keys = |b: &Base| {
        b.extensions
            .iter()
            .map(|(k, _)| k.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&core.base), ["x-extra"]);
    assert_eq!(keys(&core.base), keys(&whole.base));
    // A blank person, class or role is still noted.
    let core: EnrollmentCore =
        serde_json::from_str(r#"{"sourcedId":"e2","class":{"sourcedId":"c1"}}"#).unwrap();
    assert_eq!(
        findings(&core.base),
        [
            (BlankRequired, "user", "", ""),
            (BlankRequired, "role", "", "")
        ]
    );
}

#[test]
fn blank_required_fields_are_noted_in_the_shape_the_record_has() {
    use FindingKind::*;
    // 1.1: no enabledUser (read as true), a blank username, no role and no orgs.
    let u = user(r#"{"sourcedId":"u1","username":"","givenName":"Jane","familyName":"Doe"}"#);
    assert_eq!(
        findings(&u.base),
        [
            (BlankRequired, "enabledUser", "", "true"),
            (BlankRequired, "username", "", ""),
            (BlankRequired, "role", "", ""),
            (BlankRequired, "orgs", "", ""),
        ]
    );
    // An unreadable enabledUser is a warning, not a blank.
    let u = user(
        r#"{"sourcedId":"u2","enabledUser":"maybe","username":"k","givenName":"K",
               "familyName":"L","role":"student","orgs":[{"sourcedId":"s1"}]}"#,
    );
    assert!(u.base.findings.is_empty(), "{:?}", u.base.findings);
    assert_eq!(u.base.warnings.len(), 1);
    // 1.2: a role whose type and role are in capitals, and no org.
    let u = user(
        r#"{"sourcedId":"u3","enabledUser":"true","username":"k","givenName":"K",
               "familyName":"L","roles":[{"roleType":"Primary","role":"Aide"}]}"#,
    );
    assert_eq!(
        findings(&u.base),
        [
            (Lenient, "roles.roleType", "Primary", "primary"),
            (Lenient, "roles.role", "Aide", "aide"),
            (BlankRequired, "roles.org", "", ""),
        ]
    );
}

#[test]
fn missing_sourced_id_is_an_error() {
    let err = serde_json::from_str::<User>(r#"{"username":"x"}"#).unwrap_err();
    assert!(err.to_string().contains("without a sourcedId"), "{err}");
}

#[test]
fn page_envelopes_and_status() {
    let p: Page<Org> = parse_page(
        br#"{"statusInfoSet":[{"imsx_codeMajor":"success","imsx_severity":"warning",
                 "imsx_description":"sort field ignored","imsx_codeMinor":"invalid_sort_field"}],
                 "orgs":[{"sourcedId":"o1","name":"HS","type":"school","parent":{"sourcedId":"d"}}]}"#,
    )
    .unwrap();
    assert_eq!(p.records.len(), 1);
    assert_eq!(p.records[0].parent.as_deref(), Some("d"));
    assert_eq!(p.records[0].org_type, Some(OrgType::School));
    assert_eq!(p.status.len(), 1);
    assert_eq!(
        p.status[0].code_minor.as_deref(),
        Some("invalid_sort_field")
    );

    let p: Page<User> = parse_page(br#"{"students":[{"sourcedId":"a"}]}"#).unwrap();
    assert_eq!(p.envelope.as_deref(), Some("students"));
    let p: Page<User> = parse_page(br#"{"users":null}"#).unwrap();
    assert!(p.records.is_empty());
    let p: Page<User> = parse_page(br#"{"something":[]}"#).unwrap();
    assert!(p.envelope.is_none());
    assert!(parse_page::<User>(br#"{"users":[{"sourcedId":"a"}"#).is_err());
}

#[test]
fn a_page_of_the_size_asked_for_has_room_made_for_its_records_at_once() {
    let body: String = (0..100)
        .map(|i| format!(r#"{{"sourcedId":"e{i}","role":"student"}}"#))
        .collect::<Vec<_>>()
        .join(",");
    let body = format!(r#"{{"enrollments":[{body}]}}"#);
    let p: Page<Enrollment> = parse_page_of(body.as_bytes(), 100).unwrap();
    assert_eq!(p.records.len(), 100);
    assert_eq!(p.records.capacity(), 100, "one allocation, no doubling");
    assert_eq!(p.records[99].base.sourced_id, "e99");
    // Room for no more records than the body can hold, whatever was asked for.
    let p: Page<Enrollment> = parse_page_of(br#"{"enrollments":[]}"#, 100_000).unwrap();
    assert!(p.records.is_empty() && p.records.capacity() <= 1);
    let p: Page<Enrollment> = parse_page_of(br#"{"enrollments":null}"#, 100).unwrap();
    assert!(p.records.is_empty());
    let e = parse_page_of::<Enrollment>(br#"{"enrollments":{"sourcedId":"e1"}}"#, 100)
        .unwrap_err()
        .to_string();
    assert!(e.contains("expected an array of records"), "{e}");
}

#[test]
fn numbers_out_of_range_are_warnings_not_failed_pages() {
    // serde_json cannot hold 1e400 and fails the whole body on it.
    assert!(serde_json::from_str::<serde_json::Value>("1e400").is_err());
    let p: Page<User> = parse_page(
        br#"{"users":[
                {"sourcedId":"a","givenName":"Ann","enabledUser":1e400,"identifier":-2e308,
                 "grades":[1e999,"05"],"orgs":[{"sourcedId":"s1"}],"role":"student"},
                {"sourcedId":"b","givenName":"Bob","orgs":[{"sourcedId":"s2"}],"vendor":1e400,
                 "metadata":{"x":1e400}}]}"#,
    )
    .unwrap();
    assert_eq!(p.records.len(), 2);
    let a = &p.records[0];
    assert_eq!(a.given_name, "Ann");
    assert!(
        a.enabled_user,
        "an unreadable enabledUser keeps the default"
    );
    assert_eq!(a.identifier, None);
    assert!(a.grades.is_empty());
    assert_eq!(a.orgs, ["s1"]);
    assert_eq!(a.primary_role(), Some(&Role::Student));
    assert_eq!(a.base.warnings.len(), 3, "{:#?}", a.base.warnings);
    assert_eq!(
        a.base.warnings[0],
        "`enabledUser`: 1e400 cannot be read (number out of range); ignored"
    );
    assert!(a.base.warnings[1].starts_with("`identifier`: -2e308 cannot be read"));
    assert!(a.base.warnings[2].starts_with(r#"`grades`: [1e999,"05"] cannot be read"#));
    // Outside the known fields the value is kept raw, as ever.
    let b = &p.records[1];
    assert!(b.base.warnings.is_empty(), "{:?}", b.base.warnings);
    assert_eq!(b.orgs, ["s2"]);
    assert_eq!(b.base.extensions[0].1.get(), "1e400");
    assert_eq!(b.base.metadata.as_ref().unwrap().get(), r#"{"x":1e400}"#);

    let u: User = parse_single(br#"{"user":{"sourcedId":"c","sms":1e400}}"#).unwrap();
    assert_eq!(u.sms, None);
    assert_eq!(u.base.warnings.len(), 1);

    // The careful second read ends with the call: a broken page still fails, with
    // what is wrong besides the number, and the next page is read the fast way.
    let err = parse_page::<User>(br#"{"users":[{"sourcedId":"a","sms":1e400}"#).unwrap_err();
    assert!(err.is_eof(), "{err}");
    assert!(!CAREFUL.with(std::cell::Cell::get));
    let p: Page<User> = parse_page(br#"{"users":[{"sourcedId":"d","sms":12}]}"#).unwrap();
    assert_eq!(p.records[0].sms.as_deref(), Some("12"));
}

#[test]
fn single_object_responses() {
    let c: Class = parse_single(
        br#"{"class":{"sourcedId":"c1","title":"Algebra","classType":"homeroom","terms":[{"sourcedId":"t1"}],"periods":"1,2"}}"#,
    )
    .unwrap();
    assert_eq!(c.class_type, Some(ClassType::Homeroom));
    assert_eq!(c.terms, ["t1"]);
    assert_eq!(c.periods, ["1", "2"]);
}

#[test]
fn a_page_that_is_not_utf8_says_where() {
    // Read as text when it is UTF-8 (checked once, as a whole), as bytes when it is not:
    // both read the same page, and bytes that are not UTF-8 fail with their place.
    let good = r#"{"users":[{"sourcedId":"u1","givenName":"Zoë","familyName":"O\u2019Neil"}]}"#;
    let page = parse_page::<User>(good.as_bytes()).unwrap();
    assert_eq!(page.records[0].given_name, "Zoë");
    assert_eq!(page.records[0].family_name, "O\u{2019}Neil");

    let mut bad = good.as_bytes().to_vec();
    let at = good.find("Zo").unwrap() + 2;
    bad.splice(at..at + 2, [0xff, b'e']);
    let err = parse_page::<User>(&bad).unwrap_err();
    assert_eq!((err.line(), err.column()), (1, at + 1), "{err}");
    assert!(err.to_string().contains("invalid unicode"), "{err}");
}
