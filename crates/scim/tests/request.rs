//! The push client's requests: methods and paths, ids and filter values encoded, the
//! PatchOp message, and the JSON and one-line forms a dry run prints.

use scim::{Filter, Method, PatchRequest, Request};
use serde_json::json;

/// The query value `name` of a path, percent-decoded.
fn query_value(path: &str, name: &str) -> String {
    let (_, query) = path.split_once('?').unwrap();
    let encoded = query
        .split('&')
        .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
        .unwrap();
    let bytes = encoded.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn each_request_has_its_method_and_path() {
    let user = json!({"userName": "ann"});
    let create = Request::create(user.clone());
    assert_eq!(
        (create.method, create.path.as_str(), create.body),
        (Method::Post, "/Users", Some(user.clone()))
    );
    let replace = Request::replace("abc-1", user.clone());
    assert_eq!(
        (replace.method, replace.path.as_str(), replace.body),
        (Method::Put, "/Users/abc-1", Some(user))
    );
    let delete = Request::delete("abc-1");
    assert_eq!(
        (delete.method, delete.path.as_str(), delete.body),
        (Method::Delete, "/Users/abc-1", None)
    );
    let find = Request::find_eq("userName", "ann");
    assert_eq!(find.method, Method::Get);
    assert!(find.body.is_none());
    assert_eq!(
        find.path, "/Users?filter=userName%20eq%20%22ann%22",
        "spaces and quotes encoded"
    );
}

#[test]
fn methods_are_spelled_as_http_spells_them() {
    let all = [
        (Method::Get, "GET"),
        (Method::Post, "POST"),
        (Method::Put, "PUT"),
        (Method::Patch, "PATCH"),
        (Method::Delete, "DELETE"),
    ];
    for (method, text) in all {
        assert_eq!(method.as_str(), text);
        assert_eq!(method.to_string(), text);
        assert_eq!(serde_json::to_value(method).unwrap(), json!(text));
    }
}

#[test]
fn ids_are_percent_encoded_in_paths() {
    assert_eq!(
        Request::delete("a/b c?d#e%f").path,
        "/Users/a%2Fb%20c%3Fd%23e%25f"
    );
    assert_eq!(
        Request::patch("Ünï", json!([])).path,
        "/Users/%C3%9Cn%C3%AF",
        "UTF-8 bytes each encoded"
    );
    assert_eq!(
        Request::replace("A-z_0.9~", json!({})).path,
        "/Users/A-z_0.9~",
        "unreserved characters kept"
    );
}

#[test]
fn patch_sends_a_patch_op_message() {
    let operations = json!([{"op": "replace", "path": "active", "value": false}]);
    let request = Request::patch("abc-1", operations.clone());
    assert_eq!(
        (request.method, request.path.as_str()),
        (Method::Patch, "/Users/abc-1")
    );
    let body = request.body.unwrap();
    assert_eq!(
        body,
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": operations,
        })
    );
    let parsed = PatchRequest::from_json(&body).unwrap();
    assert_eq!(parsed.operations.len(), 1, "our own endpoint reads it");
}

#[test]
fn filter_values_are_json_strings_that_parse_back() {
    let values = [
        "ann@school.example",
        r#"o"brien"#,
        r"back\slash",
        r#"both \" at once"#,
        "tab\there, new\nline",
        "Zoë & Łukasz + 100% = ?#/",
    ];
    for value in values {
        let request = Request::find_eq("emails.value", value);
        assert!(
            request.path.starts_with("/Users?filter="),
            "{}",
            request.path
        );
        let query = request.path.split_once('?').unwrap().1;
        assert!(
            query["filter=".len()..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)),
            "{query}: only unreserved characters and escapes"
        );
        let filter_text = query_value(&request.path, "filter");
        let filter =
            Filter::parse(&filter_text).unwrap_or_else(|error| panic!("{filter_text}: {error}"));
        let (path, parsed) = filter.as_equality().unwrap();
        assert!(path.is("emails.value"), "{filter_text}");
        assert_eq!(parsed, value, "{filter_text}");
    }
    assert_eq!(
        query_value(&Request::find_eq("userName", r#"a"b\c"#).path, "filter"),
        r#"userName eq "a\"b\\c""#
    );
}

#[test]
fn extension_attributes_are_written_as_given() {
    let urn = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber";
    let request = Request::find_eq(urn, "701");
    assert_eq!(
        query_value(&request.path, "filter"),
        format!("{urn} eq \"701\"")
    );
}

#[test]
fn serialises_for_a_dry_run() {
    let create = Request::create(json!({"userName": "ann", "active": true}));
    assert_eq!(
        serde_json::to_value(&create).unwrap(),
        json!({"method": "POST", "path": "/Users", "body": {"userName": "ann", "active": true}})
    );
    assert_eq!(
        serde_json::to_value(Request::delete("x")).unwrap(),
        json!({"method": "DELETE", "path": "/Users/x"}),
        "no body member without a body"
    );
}

#[test]
fn displays_as_one_line() {
    let create = Request::create(json!({"name": {"givenName": "Ann"}}));
    assert_eq!(
        create.to_string(),
        r#"POST /Users {"name":{"givenName":"Ann"}}"#
    );
    assert_eq!(Request::delete("x").to_string(), "DELETE /Users/x");
    let multi_line = Request::replace("x", json!({"displayName": "a\nb"})).to_string();
    assert!(!multi_line.contains('\n'), "{multi_line}");
}
