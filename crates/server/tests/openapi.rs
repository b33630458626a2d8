//! The committed OpenAPI document (docs/openapi.json) lists exactly the router's API
//! routes, and the server serves that very document; the shape it gives *Validate*'s
//! answer names every key a real answer has.

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

fn openapi_document() -> serde_json::Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/openapi.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Walks `value` along `schema` (following `$ref`s into `doc`): every key of an object with
/// documented properties must be documented, and every documented one present.
fn check_shape(
    doc: &serde_json::Value,
    schema: &serde_json::Value,
    value: &serde_json::Value,
    at: &str,
    wrong: &mut Vec<String>,
) {
    let schema = match schema["$ref"].as_str() {
        Some(r) => doc.pointer(r.trim_start_matches('#')).unwrap(),
        None => schema,
    };
    match value {
        serde_json::Value::Object(map) => {
            if let Some(props) = schema["properties"].as_object() {
                for (k, v) in map {
                    match props.get(k) {
                        Some(s) => check_shape(doc, s, v, &format!("{at}.{k}"), wrong),
                        None => wrong.push(format!("{at}.{k} is not documented")),
                    }
                }
                for k in props.keys().filter(|k| !map.contains_key(*k)) {
                    wrong.push(format!("{at}.{k} is documented but absent"));
                }
            } else if schema["additionalProperties"].is_object() {
                for (k, v) in map {
                    let s = &schema["additionalProperties"];
                    check_shape(doc, s, v, &format!("{at}[{k}]"), wrong);
                }
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                check_shape(doc, &schema["items"], v, &format!("{at}[{i}]"), wrong);
            }
        }
        _ => {}
    }
}

#[test]
fn the_inspection_schema_names_every_key_of_a_validation() {
    // A package with every kind of finding, so no part of the answer is empty.
    let package = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../oneroster/tests/data/packages/v11-bulk-loose");
    let mut source = oneroster::source::Source::open_csv(&package).unwrap();
    let inspection = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(oneroster::inspect::inspect(&mut source))
        .unwrap();
    let value = serde_json::to_value(&inspection).unwrap();
    let doc = openapi_document();
    let mut wrong = Vec::new();
    check_shape(
        &doc,
        &doc["components"]["schemas"]["Inspection"],
        &value,
        "Inspection",
        &mut wrong,
    );
    assert!(wrong.is_empty(), "docs/openapi.json: {wrong:#?}");
}
