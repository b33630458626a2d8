//! SCIM connections' resources: kept per connection and identity, replaced whole,
//! found by what they hold (a superset, ignoring ASCII case, LIKE wildcards taken
//! literally), moved with their link by `rekey_link`, forgotten by `remove_scim_resource`.

use oneroster::Role;
use serde_json::json;
use store::StoreError;

use crate::harness::{TestDb, config, conformance, later, now, person, sync};

fn kept_replaced_found_and_forgotten(db: &mut TestDb) {
    let s = db.store();
    let ann =
        json!({"userName": "Ann.Li@x.org", "emails": [{"value": "ann@home.org", "type": "home"}]});
    let bo = json!({"userName": "bo_50%@x.org", "name": {"givenName": "Bo"}});
    s.put_scim_resource("entra", "e-ann", &ann, now()).unwrap();
    s.put_scim_resource("entra", "e-bo", &bo, now()).unwrap();
    s.put_scim_resource("okta", "e-ann", &json!({"userName": "other"}), now())
        .unwrap();

    let all = s.scim_resources("entra", None).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all["e-ann"], ann);
    let some = s
        .scim_resources("entra", Some(&["e-bo".to_owned(), "e-none".to_owned()]))
        .unwrap();
    assert_eq!(some.keys().collect::<Vec<_>>(), ["e-bo"]);
    assert!(s.scim_resources("entra", Some(&[])).unwrap().is_empty());

    // Found by what they hold, ignoring ASCII case; wildcards are literal.
    let found = |text: &str| {
        let mut ids: Vec<String> = s
            .scim_resources_mentioning("entra", text)
            .unwrap()
            .into_keys()
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(found("ann.li@X.ORG"), ["e-ann"]);
    assert_eq!(found("ann@home.org"), ["e-ann"]);
    assert_eq!(found("bo_50%@x.org"), ["e-bo"]);
    assert!(found("bo_5%").is_empty(), "% is not a wildcard");
    assert!(found("b__50").is_empty(), "_ is not a wildcard");
    assert!(found("nobody").is_empty());
    assert_eq!(
        found("\"x"),
        ["e-ann", "e-bo"],
        "text JSON escapes reads them all"
    );

    // Replaced whole.
    let ann2 = json!({"userName": "ann2@x.org"});
    s.put_scim_resource("entra", "e-ann", &ann2, later(1))
        .unwrap();
    assert_eq!(s.scim_resources("entra", None).unwrap()["e-ann"], ann2);
    assert!(found("ann@home.org").is_empty());

    // Forgotten, for that connection only.
    assert!(s.remove_scim_resource("entra", "e-ann").unwrap());
    assert!(!s.remove_scim_resource("entra", "e-ann").unwrap());
    assert_eq!(s.scim_resources("entra", None).unwrap().len(), 1);
    assert_eq!(s.scim_resources("okta", None).unwrap().len(), 1);
}

fn a_rekey_moves_the_resource_with_the_link(db: &mut TestDb) {
    let s = db.store();
    let cfg = config("");
    s.save_config(&cfg, &[], "owner", now()).unwrap();
    sync(
        s,
        &cfg,
        &[
            person("s1", Role::Student, "Bo", "Ek", Some("bo@x.org")),
            person("s2", Role::Student, "Cy", "Fu", Some("cy@x.org")),
        ],
        now(),
    );
    let bo = json!({"userName": "bo@x.org", "externalId": "s1"});
    s.put_scim_resource("sis", "s1", &bo, now()).unwrap();
    // A resource no link has any more, left under the new key, gives way.
    s.put_scim_resource("sis", "s9", &json!({"userName": "old"}), now())
        .unwrap();

    s.rekey_link("sis", "s1", "s9").unwrap();
    let kept = s.scim_resources("sis", None).unwrap();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept["s9"], bo);
    assert_eq!(
        s.linked_account("sis", "s9").unwrap(),
        s.find_user("bo@x.org").unwrap().map(|r| r.user.id)
    );

    // A refused rekey moves nothing.
    let e = s.rekey_link("sis", "s9", "s2").unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
    assert_eq!(s.scim_resources("sis", None).unwrap()["s9"], bo);
}

conformance!(
    kept_replaced_found_and_forgotten,
    a_rekey_moves_the_resource_with_the_link,
);
