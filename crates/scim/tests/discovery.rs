//! The discovery documents, list answers and error shapes as a server sends them.

use scim::discovery::{self, ETAG_SUPPORTED};
use scim::{ListResponse, Page, ScimError, ScimType};
use serde_json::json;

#[test]
fn user_schema_marks_user_name_server_unique_and_case_insensitive() {
    let core = discovery::schema(
        "https://x/scim/v2",
        "urn:ietf:params:scim:schemas:core:2.0:User",
    )
    .unwrap();
    let user_name = &core["attributes"][0];
    assert_eq!(user_name["name"], "userName");
    assert_eq!(user_name["uniqueness"], "server");
    assert_eq!(user_name["caseExact"], false);
    assert_eq!(user_name["required"], true);
    assert_eq!(user_name["mutability"], "readWrite");
    assert_eq!(user_name["returned"], "default");
    let primary = &core["attributes"][3]["subAttributes"][2];
    assert_eq!(primary["name"], "primary");
    assert_eq!(primary["type"], "boolean");
    assert_eq!(
        core["meta"]["location"],
        "https://x/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User"
    );
}

#[test]
fn enterprise_schema_lists_its_attributes() {
    let ext = discovery::schema(
        "https://x/scim/v2",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    )
    .unwrap();
    let names: Vec<_> = ext["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|attr| attr["name"].clone())
        .collect();
    assert_eq!(names, [json!("employeeNumber")]);
}

#[test]
fn service_provider_config_matches_the_etag_constant() {
    let config = discovery::service_provider_config("https://x/scim/v2", 100);
    assert_eq!(config["etag"]["supported"], ETAG_SUPPORTED);
    assert_eq!(config["changePassword"]["supported"], false);
    assert_eq!(
        config["authenticationSchemes"][0]["type"],
        "oauthbearertoken"
    );
}

#[test]
fn list_response_shape() {
    let page = Page::parse(Some("3"), Some("2"), 50).unwrap();
    let items: Vec<_> = (1..=10).map(|n| json!({"id": n.to_string()})).collect();
    let body = ListResponse::new(items.len(), &page, page.slice(&items).to_vec()).to_json();
    assert_eq!(
        body,
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": 10,
            "startIndex": 3,
            "itemsPerPage": 2,
            "Resources": [{"id": "3"}, {"id": "4"}],
        })
    );
}

#[test]
fn error_shape() {
    let body = ScimError::bad_request(ScimType::Mutability, "id is read-only").to_json();
    assert_eq!(
        body,
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "status": "400",
            "scimType": "mutability",
            "detail": "id is read-only",
        })
    );
}
