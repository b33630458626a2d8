//! The filter language end to end: precedence, grouping, dates, case rules and errors.

use scim::{Filter, ScimType};
use serde_json::{Value, json};

fn resource() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "Abc-1",
        "userName": "Ann@School.example",
        "title": "Teacher",
        "active": true,
        "emails": [
            {"value": "ann@home.example", "type": "home"},
            {"value": "ann@school.example", "type": "work", "primary": true},
        ],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701"},
        "meta": {"resourceType": "User", "lastModified": "2026-03-01T10:00:00+01:00"},
        "loginCount": 12,
    })
}

fn matches(filter: &str) -> bool {
    Filter::parse(filter)
        .unwrap_or_else(|error| panic!("{filter}: {error}"))
        .matches(&resource())
}

#[test]
fn and_binds_tighter_than_or() {
    // false and false or true  =>  (false and false) or true  =>  true
    assert!(matches(
        "title eq \"x\" and userName eq \"x\" or active eq true"
    ));
    // true or false and false  =>  true or (false and false)  =>  true
    assert!(matches(
        "active eq true or title eq \"x\" and userName eq \"x\""
    ));
}

#[test]
fn parentheses_group() {
    assert!(!matches(
        "(active eq true or title eq \"x\") and userName eq \"x\""
    ));
    assert!(matches(
        "(title eq \"x\" or title eq \"teacher\") and (active eq true)"
    ));
}

#[test]
fn not_binds_tightest() {
    assert!(!matches("not (active eq true) or title eq \"x\""));
    assert!(matches("not (title eq \"x\") and active eq true"));
    assert!(matches("not(title eq \"x\")"));
}

#[test]
fn last_modified_compares_as_an_instant() {
    assert!(matches("meta.lastModified gt \"2026-01-01T00:00:00Z\""));
    assert!(!matches("meta.lastModified gt \"2026-03-01T09:00:00Z\""));
    assert!(matches("meta.lastModified ge \"2026-03-01T09:00:00Z\""));
    assert!(matches("meta.lastModified eq \"2026-03-01T09:00:00Z\""));
    assert!(matches("meta.lastModified lt \"2026-03-01T09:00:01.5Z\""));
}

#[test]
fn numbers_compare_numerically() {
    assert!(matches("loginCount gt 9"));
    assert!(matches("loginCount le 12.0"));
    assert!(!matches("loginCount lt 2"));
}

#[test]
fn attribute_names_and_strings_ignore_case() {
    assert!(matches("USERNAME eq \"ann@school.EXAMPLE\""));
    assert!(matches("username sw \"ANN\""));
    assert!(matches("name.givenName pr or title co \"EACH\""));
}

#[test]
fn id_is_case_exact() {
    assert!(matches("id eq \"Abc-1\""));
    assert!(!matches("id eq \"abc-1\""));
}

#[test]
fn multi_valued_attributes_match_any_value() {
    assert!(matches("emails.value ew \"school.example\""));
    assert!(matches("emails.type eq \"work\""));
    assert!(matches("emails[primary eq true and type eq \"work\"]"));
    assert!(!matches("emails[primary eq true and type eq \"home\"]"));
}

#[test]
fn present_means_a_non_empty_value() {
    let resource =
        json!({"title": "", "nickName": null, "emails": [], "name": {"givenName": null}});
    for attr in ["title", "nickName", "emails", "name", "missing"] {
        let filter = Filter::parse(&format!("{attr} pr")).unwrap();
        assert!(!filter.matches(&resource), "{attr}");
    }
    assert!(matches("emails pr"));
}

#[test]
fn schema_prefixed_paths() {
    assert!(matches(
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq \"701\""
    ));
    assert!(matches(
        "urn:ietf:params:scim:schemas:core:2.0:User:userName sw \"ann\""
    ));
}

fn error(filter: &str) -> String {
    let error = Filter::parse(filter).expect_err(filter);
    assert_eq!(error.status, 400);
    assert_eq!(error.scim_type, Some(ScimType::InvalidFilter));
    error.detail
}

#[test]
fn bad_filters_name_the_position_and_what_was_expected() {
    let detail = error("userName xx \"a\"");
    assert!(detail.contains("position 10"), "{detail}");
    assert!(detail.contains("expected an operator"), "{detail}");

    let detail = error("userName eq");
    assert!(detail.contains("position 12"), "{detail}");
    assert!(detail.contains("expected a value"), "{detail}");

    let detail = error("(userName eq \"a\"");
    assert!(detail.contains("position 17"), "{detail}");
    assert!(detail.contains("\")\""), "{detail}");

    let detail = error("userName eq \"a");
    assert!(detail.contains("position 13"), "{detail}");

    let detail = error("userName eq \"a\" title eq \"b\"");
    assert!(detail.contains("position 17"), "{detail}");
    assert!(detail.contains("\"and\", \"or\""), "{detail}");

    let detail = error("");
    assert!(detail.contains("position 1"), "{detail}");

    let detail = error("userName eq bare");
    assert!(detail.contains("position 13"), "{detail}");

    let detail = error("emails[type eq \"work\"");
    assert!(detail.contains("\"]\""), "{detail}");
}
