//! The typed User round trip and `attributes`/`excludedAttributes` projection.

use scim::user::{Email, EnterpriseUser, Name};
use scim::{Projection, User};
use serde_json::json;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn full() -> serde_json::Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "id": "u1",
        "externalId": "e1",
        "userName": "ann@school.example",
        "name": {"givenName": "Ann", "familyName": "Smith", "middleName": "Q", "formatted": "Ann Q Smith"},
        "displayName": "Ann Smith",
        "emails": [{"value": "ann@school.example", "type": "work", "primary": true}],
        "active": true,
        "meta": {
            "resourceType": "User",
            "created": "2026-01-01T00:00:00Z",
            "lastModified": "2026-02-01T12:30:00Z",
            "location": "https://x/scim/v2/Users/u1",
            "version": "W/\"3\"",
        },
        ENTERPRISE: {"employeeNumber": "701", "department": "Science", "organization": "District"},
    })
}

#[test]
fn round_trips_every_attribute() {
    let user = User::from_json(&full()).unwrap();
    assert_eq!(
        user.name,
        Some(Name {
            given_name: Some("Ann".into()),
            family_name: Some("Smith".into()),
            middle_name: Some("Q".into()),
            formatted: Some("Ann Q Smith".into()),
        })
    );
    assert_eq!(
        user.emails,
        vec![Email {
            value: "ann@school.example".into(),
            kind: Some("work".into()),
            primary: true,
        }]
    );
    assert_eq!(
        user.enterprise,
        Some(EnterpriseUser {
            employee_number: Some("701".into()),
            department: Some("Science".into()),
            organization: Some("District".into()),
        })
    );
    assert_eq!(user.to_json(), full());
}

#[test]
fn missing_optional_attributes_are_left_out() {
    let user = User::from_json(&json!({"userName": "bob", "displayName": null})).unwrap();
    assert_eq!(
        user.to_json(),
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "bob"})
    );
}

#[test]
fn attributes_keep_only_those_and_the_always_returned() {
    let projection = Projection::parse(Some("userName,name.givenName,emails.value"), None).unwrap();
    assert_eq!(
        projection.apply(&full()),
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
            "id": "u1",
            "meta": {"resourceType": "User"},
            "userName": "ann@school.example",
            "name": {"givenName": "Ann"},
            "emails": [{"value": "ann@school.example"}],
        })
    );
}

#[test]
fn attributes_take_extension_attributes_and_whole_extensions() {
    let one = Projection::parse(Some(&format!("{ENTERPRISE}:department")), None).unwrap();
    assert_eq!(
        one.apply(&full())[ENTERPRISE],
        json!({"department": "Science"})
    );
    let whole = Projection::parse(Some(ENTERPRISE), None).unwrap();
    assert_eq!(whole.apply(&full())[ENTERPRISE], full()[ENTERPRISE]);
}

#[test]
fn excluded_attributes_cannot_drop_the_always_returned() {
    let projection = Projection::parse(
        None,
        Some("id,schemas,meta,emails,name.familyName,USERNAME"),
    )
    .unwrap();
    let out = projection.apply(&full());
    assert_eq!(out["id"], "u1");
    assert_eq!(out["meta"], json!({"resourceType": "User"}));
    assert!(out.get("emails").is_none());
    assert!(out.get("userName").is_none());
    assert_eq!(out["name"]["givenName"], "Ann");
    assert!(out["name"].get("familyName").is_none());
    assert_eq!(out["schemas"], full()["schemas"]);
}

#[test]
fn excluding_the_extension_drops_its_schema() {
    let projection = Projection::parse(None, Some(ENTERPRISE)).unwrap();
    let out = projection.apply(&full());
    assert!(out.get(ENTERPRISE).is_none());
    assert_eq!(
        out["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:User"])
    );
}

#[test]
fn attributes_select_several_sub_attributes_of_a_list() {
    let resource = json!({
        "id": "u1",
        "emails": [{"type": "home"}, {"value": "b@x.example", "type": "work", "primary": true}],
    });
    let projection = Projection::parse(Some("emails.value,emails.type"), None).unwrap();
    assert_eq!(
        projection.apply(&resource)["emails"],
        json!([{"type": "home"}, {"value": "b@x.example", "type": "work"}])
    );
    let values_only = Projection::parse(Some("emails.value"), None).unwrap();
    assert_eq!(
        values_only.apply(&resource)["emails"],
        json!([{"value": "b@x.example"}])
    );
}
