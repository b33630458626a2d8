//! The discovery documents of RFC 7644 §4 / RFC 7643 §5–7: `ServiceProviderConfig`,
//! `ResourceTypes` (User only: groups come later, read-only) and `Schemas`, the last
//! generated from the [`crate::schema`] table. Every document takes the endpoint's base
//! URL (e.g. `https://host/scim/v2`) for its `meta.location`.
//!
//! What rostersync supports: PATCH yes; bulk no; filter yes, up to the caller's
//! `max_results`; changePassword no (rostersync keeps no passwords); sort no
//! ([`SORT_SUPPORTED`]: results come in the store's order and `sortBy` is ignored);
//! ETags yes ([`ETAG_SUPPORTED`]: `meta.version` is the weak entity tag, sent as the
//! `ETag` header and checked against `If-Match`).

use serde_json::{Value, json};

use crate::list::{ListResponse, Page};
use crate::schema::{self, SchemaDef};

/// The schema URN of the ServiceProviderConfig document.
pub const SERVICE_PROVIDER_CONFIG_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
/// The schema URN of a ResourceType document.
pub const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
/// The schema URN of a Schema document.
pub const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// Entity tags are supported: a resource's `meta.version` (a weak ETag, `W/"…"`) is
/// its `ETag` header, and `If-Match` is checked against it.
pub const ETAG_SUPPORTED: bool = true;
/// Sorting is not supported: `sortBy`/`sortOrder` are ignored.
pub const SORT_SUPPORTED: bool = false;

fn base(base_url: &str) -> &str {
    base_url.trim_end_matches('/')
}

/// The `ServiceProviderConfig` document; `max_results` is the most resources a filtered
/// list answers with.
pub fn service_provider_config(base_url: &str, max_results: usize) -> Value {
    service_provider_config_for(base_url, max_results, ETAG_SUPPORTED)
}

/// The `ServiceProviderConfig` document of a SCIM service that supports what rostersync's
/// does (PATCH, filters up to `max_results`, bearer tokens), with or without entity tags:
/// the simulated help desk, which has none, says so with the same document.
pub fn service_provider_config_for(base_url: &str, max_results: usize, etag: bool) -> Value {
    json!({
        "schemas": [SERVICE_PROVIDER_CONFIG_SCHEMA],
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": max_results},
        "changePassword": {"supported": false},
        "sort": {"supported": SORT_SUPPORTED},
        "etag": {"supported": etag},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication with a bearer token in the Authorization header",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{}/ServiceProviderConfig", base(base_url)),
        },
    })
}

/// The `User` ResourceType document.
pub fn user_resource_type(base_url: &str) -> Value {
    let extensions: Vec<Value> = schema::USER_EXTENSIONS
        .iter()
        .map(|ext| json!({"schema": ext.id, "required": false}))
        .collect();
    json!({
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "description": "User Account",
        "schema": schema::USER_SCHEMA,
        "schemaExtensions": extensions,
        "meta": {
            "resourceType": "ResourceType",
            "location": format!("{}/ResourceTypes/User", base(base_url)),
        },
    })
}

/// The answer to `GET /ResourceTypes`: a ListResponse of the resource types.
pub fn resource_types(base_url: &str) -> Value {
    let types = vec![user_resource_type(base_url)];
    list(types)
}

fn schema_document(def: &SchemaDef, base_url: &str) -> Value {
    let attributes: Vec<Value> = def.attributes.iter().map(|attr| attr.to_json()).collect();
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": def.id,
        "name": def.name,
        "description": def.description,
        "attributes": attributes,
        "meta": {
            "resourceType": "Schema",
            "location": format!("{}/Schemas/{}", base(base_url), def.id),
        },
    })
}

fn all_schemas() -> impl Iterator<Item = &'static SchemaDef> {
    std::iter::once(&schema::CORE_USER).chain(schema::USER_EXTENSIONS)
}

/// The Schema document with URN `id` (ignoring case), if the server has it.
pub fn schema(base_url: &str, id: &str) -> Option<Value> {
    all_schemas()
        .find(|def| def.id.eq_ignore_ascii_case(id))
        .map(|def| schema_document(def, base_url))
}

/// The answer to `GET /Schemas`: a ListResponse of the Schema documents.
pub fn schemas(base_url: &str) -> Value {
    list(
        all_schemas()
            .map(|def| schema_document(def, base_url))
            .collect(),
    )
}

fn list(resources: Vec<Value>) -> Value {
    let page = Page {
        start_index: 1,
        count: resources.len(),
    };
    ListResponse::new(resources.len(), &page, resources).to_json()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_provider_config_says_what_is_supported() {
        let config = service_provider_config("https://x/scim/v2/", 200);
        assert_eq!(config["patch"]["supported"], true);
        assert_eq!(config["bulk"]["supported"], false);
        assert_eq!(config["filter"]["maxResults"], 200);
        assert_eq!(config["sort"]["supported"], false);
        assert_eq!(config["etag"]["supported"], true);
        assert_eq!(
            config["meta"]["location"],
            "https://x/scim/v2/ServiceProviderConfig"
        );
    }

    #[test]
    fn resource_types_list_only_users() {
        let types = resource_types("https://x/scim/v2");
        assert_eq!(types["totalResults"], 1);
        assert_eq!(
            types["Resources"][0]["schemaExtensions"][0]["schema"],
            schema::ENTERPRISE_USER_SCHEMA
        );
    }

    #[test]
    fn schemas_come_from_the_table() {
        let core = schema("https://x", "URN:ietf:params:scim:schemas:core:2.0:user").unwrap();
        let names: Vec<&str> = core["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|attr| attr["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["userName", "name", "displayName", "emails", "active"]
        );
        assert!(schema("https://x", "urn:example:none").is_none());
        assert_eq!(schemas("https://x")["totalResults"], 2);
    }
}
