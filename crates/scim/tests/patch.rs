//! PATCH end to end: multi-valued attributes, value filters, required and read-only
//! attributes, atomicity.

use scim::{PatchRequest, ScimError, ScimType};
use serde_json::{Value, json};

fn group() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "g1",
        "displayName": "Staff",
        "members": [{"value": "u1"}, {"value": "u2"}, {"value": "u3"}],
    })
}

fn user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "u1",
        "userName": "ann",
        "emails": [
            {"value": "a@home.example", "type": "home"},
            {"value": "a@work.example", "type": "work"},
        ],
        "meta": {"resourceType": "User"},
    })
}

fn run(resource: &mut Value, operations: Value) -> Result<(), ScimError> {
    PatchRequest::from_json(&json!({"Operations": operations}))?.apply(resource)
}

#[test]
fn remove_members_by_filter() {
    let mut resource = group();
    run(
        &mut resource,
        json!([{"op": "remove", "path": "members[value eq \"u2\"]"}]),
    )
    .unwrap();
    assert_eq!(
        resource["members"],
        json!([{"value": "u1"}, {"value": "u3"}])
    );
}

#[test]
fn add_members_appends() {
    let mut resource = group();
    run(
        &mut resource,
        json!([{"op": "Add", "path": "members", "value": [{"value": "u4"}]}]),
    )
    .unwrap();
    assert_eq!(resource["members"].as_array().unwrap().len(), 4);
}

#[test]
fn remove_a_sub_attribute_of_matching_values() {
    let mut resource = user();
    run(
        &mut resource,
        json!([{"op": "remove", "path": "emails[type eq \"work\"].type"}]),
    )
    .unwrap();
    assert_eq!(resource["emails"][1], json!({"value": "a@work.example"}));
}

#[test]
fn replace_whole_matching_values() {
    let mut resource = user();
    run(
        &mut resource,
        json!([{"op": "replace", "path": "emails[type eq \"home\"]", "value": {"value": "b@home.example", "type": "home"}}]),
    )
    .unwrap();
    assert_eq!(resource["emails"][0]["value"], "b@home.example");
}

#[test]
fn removing_user_name_is_refused() {
    let mut resource = user();
    let error = run(&mut resource, json!([{"op": "remove", "path": "userName"}])).unwrap_err();
    assert_eq!(error.scim_type, Some(ScimType::Mutability));
    let error = run(
        &mut resource,
        json!([{"op": "replace", "path": "userName", "value": null}]),
    )
    .unwrap_err();
    assert_eq!(error.scim_type, Some(ScimType::Mutability));
}

#[test]
fn meta_is_never_changed() {
    let mut resource = user();
    let error = run(
        &mut resource,
        json!([{"op": "add", "path": "meta.lastModified", "value": "2026-01-01T00:00:00Z"}]),
    )
    .unwrap_err();
    assert_eq!(error.scim_type, Some(ScimType::Mutability));
    let error = run(
        &mut resource,
        json!([{"op": "replace", "value": {"meta": {"resourceType": "Group"}}}]),
    )
    .unwrap_err();
    assert_eq!(error.scim_type, Some(ScimType::Mutability));
    assert_eq!(resource, user());
}

#[test]
fn operations_are_all_or_nothing() {
    let mut resource = user();
    let result = run(
        &mut resource,
        json!([
            {"op": "replace", "path": "displayName", "value": "Ann"},
            {"op": "replace", "path": "id", "value": "u2"},
        ]),
    );
    assert!(result.is_err());
    assert_eq!(resource, user());
}

#[test]
fn remove_of_an_absent_attribute_is_a_no_op() {
    let mut resource = user();
    run(
        &mut resource,
        json!([{"op": "remove", "path": "name.middleName"}, {"op": "remove", "path": "name.givenName"}]),
    )
    .unwrap();
    assert_eq!(resource, user());
}

#[test]
fn bare_extension_urn_path() {
    let urn = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let mut resource = user();
    run(
        &mut resource,
        json!([{"op": "add", "path": urn, "value": {"department": "Arts", "organization": "District"}}]),
    )
    .unwrap();
    assert_eq!(resource[urn]["organization"], "District");
    run(&mut resource, json!([{"op": "remove", "path": urn}])).unwrap();
    assert!(resource.get(urn).is_none());
    assert_eq!(resource["schemas"], user()["schemas"]);
}

#[test]
fn lowercase_operations_key_is_accepted() {
    let request = PatchRequest::from_json(&json!({
        "operations": [{"op": "remove", "path": "emails"}],
    }))
    .unwrap();
    let mut resource = user();
    request.apply(&mut resource).unwrap();
    assert!(resource.get("emails").is_none());
}

#[test]
fn add_without_value_is_invalid_value() {
    let mut resource = user();
    let error = run(&mut resource, json!([{"op": "add", "path": "userName"}])).unwrap_err();
    assert_eq!(error.scim_type, Some(ScimType::InvalidValue));
}
