//! The committed OpenAPI document (docs/openapi.json) lists exactly the router's API
//! routes, and the server serves that very document.

use std::collections::BTreeSet;

use server::routes::{protected_routes, public_routes};

#[test]
fn the_committed_document_matches_the_router() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/openapi.json"
    ))
    .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], "/api/v1");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), format!("/api/v1{path}")));
        }
    }
    let routed: BTreeSet<(String, String)> = public_routes()
        .into_iter()
        .chain(protected_routes())
        .filter(|r| r.path.starts_with("/api/v1/"))
        .map(|r| (r.method.to_string(), r.path.to_owned()))
        .collect();
    let missing: Vec<_> = routed.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&routed).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "docs/openapi.json and the router disagree.\nrouted but not documented: {missing:?}\ndocumented but not routed: {stale:?}"
    );
    assert_eq!(
        server::OPENAPI,
        text,
        "the server serves the committed document"
    );
}
