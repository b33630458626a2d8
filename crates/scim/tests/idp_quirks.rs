//! What real identity providers send (Microsoft Entra ID, Okta), one test per quirk.

use scim::{Filter, PatchRequest, ScimType, User};
use serde_json::{Value, json};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "2819c223",
        "externalId": "ann-ext",
        "userName": "ann@school.example",
        "name": {"givenName": "Anne", "familyName": "Smith"},
        "emails": [{"value": "ann@home.example", "type": "home", "primary": false}],
        "active": true,
        "meta": {"resourceType": "User", "lastModified": "2026-03-01T10:00:00Z"},
    })
}

fn patch(resource: &mut Value, operations: Value) {
    let request = PatchRequest::from_json(&json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": operations,
    }))
    .expect("request");
    request.apply(resource).expect("apply");
}

#[test]
fn entra_capitalised_replace_op() {
    let mut resource = user();
    patch(
        &mut resource,
        json!([{"op": "Replace", "path": "name.familyName", "value": "Smith-Jones"}]),
    );
    assert_eq!(resource["name"]["familyName"], "Smith-Jones");
}

#[test]
fn entra_capitalised_add_op() {
    let mut resource = user();
    patch(
        &mut resource,
        json!([{"op": "Add", "path": "name.middleName", "value": "Q"}]),
    );
    assert_eq!(resource["name"]["middleName"], "Q");
    assert_eq!(resource["name"]["givenName"], "Anne");
}

#[test]
fn entra_active_false_as_a_string_in_patch() {
    let mut resource = user();
    patch(
        &mut resource,
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    );
    assert_eq!(resource["active"], false);
}

#[test]
fn entra_active_false_as_a_string_in_a_created_user() {
    let user = User::from_json(&json!({"userName": "bob", "active": "False"})).expect("user");
    assert_eq!(user.active, Some(false));
}

#[test]
fn entra_boolean_strings_in_filters() {
    let resource = user();
    assert!(
        Filter::parse("active eq \"True\"")
            .unwrap()
            .matches(&resource)
    );
    assert!(
        !Filter::parse("active eq \"False\"")
            .unwrap()
            .matches(&resource)
    );
    let stored_as_string = json!({"active": "False"});
    assert!(
        Filter::parse("active eq false")
            .unwrap()
            .matches(&stored_as_string)
    );
}

#[test]
fn patch_without_path_replaces_from_a_value_object() {
    let mut resource = user();
    patch(
        &mut resource,
        json!([{"op": "Replace", "value": {"active": false}}]),
    );
    assert_eq!(resource["active"], false);
    assert_eq!(resource["userName"], "ann@school.example");
}

#[test]
fn patch_without_path_takes_dotted_keys() {
    let mut resource = user();
    patch(
        &mut resource,
        json!([{"op": "Replace", "value": {"name.givenName": "Ann", "name.familyName": "Smyth"}}]),
    );
    assert_eq!(
        resource["name"],
        json!({"givenName": "Ann", "familyName": "Smyth"})
    );
}

#[test]
fn entra_patch_without_path_takes_urn_prefixed_keys() {
    let mut resource = user();
    patch(
        &mut resource,
        json!([{"op": "Add", "value": {
            format!("{ENTERPRISE}:employeeNumber"): "701",
            ENTERPRISE: {"department": "Science"},
        }}]),
    );
    assert_eq!(resource[ENTERPRISE]["employeeNumber"], "701");
    assert_eq!(resource[ENTERPRISE]["department"], "Science");
    assert!(
        resource["schemas"]
            .as_array()
            .unwrap()
            .contains(&json!(ENTERPRISE))
    );
}

#[test]
fn entra_replace_of_the_work_email_creates_it_when_missing() {
    let mut resource = user();
    patch(
        &mut resource,
        json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "ann@school.example"}]),
    );
    let emails = resource["emails"].as_array().unwrap();
    assert_eq!(emails.len(), 2);
    assert_eq!(
        emails[1],
        json!({"type": "work", "value": "ann@school.example"})
    );
}

#[test]
fn entra_replace_of_the_work_email_changes_it_when_present() {
    let mut resource = user();
    patch(
        &mut resource,
        json!([{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "old@school.example"}]),
    );
    patch(
        &mut resource,
        json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@school.example"}]),
    );
    let emails = resource["emails"].as_array().unwrap();
    assert_eq!(emails.len(), 2);
    assert_eq!(emails[1]["value"], "new@school.example");
    assert_eq!(emails[0]["value"], "ann@home.example");
}

#[test]
fn entra_primary_as_a_string_in_a_value_path() {
    let mut resource = user();
    patch(
        &mut resource,
        json!([{"op": "Replace", "path": "emails[type eq \"home\"].primary", "value": "True"}]),
    );
    assert_eq!(resource["emails"][0]["primary"], true);
}

#[test]
fn work_email_value_path_in_a_filter() {
    let resource = json!({"emails": [
        {"type": "home", "value": "ann@home.example"},
        {"type": "work", "value": "Ann@School.example"},
    ]});
    let filter = Filter::parse("emails[type eq \"work\"].value eq \"ann@school.example\"").unwrap();
    assert!(filter.matches(&resource));
    let wrong_type =
        Filter::parse("emails[type eq \"home\"].value eq \"ann@school.example\"").unwrap();
    assert!(!wrong_type.matches(&resource));
    assert!(
        Filter::parse("emails[type eq \"work\" and value ew \"school.example\"]")
            .unwrap()
            .matches(&resource)
    );
}

#[test]
fn entra_validation_probe_filter() {
    let filter = Filter::parse("userName eq \"5b1f35a6-7b1c-4f3f-9a64-02f0c7e7c0de\"").unwrap();
    let (path, value) = filter.as_equality().expect("a simple equality");
    assert!(path.is("userName"));
    assert_eq!(value, "5b1f35a6-7b1c-4f3f-9a64-02f0c7e7c0de");
    assert!(!path.case_exact());
    assert!(!filter.matches(&user()));
}

#[test]
fn external_id_lookup_is_case_exact() {
    let filter = Filter::parse("externalId eq \"ANN-EXT\"").unwrap();
    let (path, _) = filter.as_equality().expect("a simple equality");
    assert!(path.is("externalId"));
    assert!(path.case_exact());
    assert!(!filter.matches(&user()));
    assert!(
        Filter::parse("externalId eq \"ann-ext\"")
            .unwrap()
            .matches(&user())
    );
}

#[test]
fn okta_patch_of_active_only() {
    let mut resource = user();
    let before = resource.clone();
    patch(
        &mut resource,
        json!([{"op": "replace", "value": {"active": false}}]),
    );
    let mut expected = before;
    expected["active"] = json!(false);
    assert_eq!(resource, expected);
}

#[test]
fn entra_remove_with_an_unknown_op_is_invalid_syntax() {
    let error = PatchRequest::from_json(&json!({
        "Operations": [{"op": "Delete", "path": "displayName"}],
    }))
    .unwrap_err();
    assert_eq!(error.scim_type, Some(ScimType::InvalidSyntax));
    assert_eq!(error.status, 400);
}

#[test]
fn entra_new_primary_email_takes_the_flag() {
    let mut resource = user();
    resource["emails"][0]["primary"] = json!(true);
    patch(
        &mut resource,
        json!([{"op": "Add", "path": "emails", "value": [{"value": "ann@school.example", "type": "work", "primary": "True"}]}]),
    );
    assert_eq!(resource["emails"][0]["primary"], false);
    assert_eq!(resource["emails"][1]["primary"], true);
}
