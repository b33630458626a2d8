//! The push planner: which accounts a SCIM target is sent, what changed since the last
//! push (by hash), and the resource and PATCH operations a target receives.

use rostersync_core::directory::{Access, Account, AccountId, Field, UserType};
use rostersync_core::guard::guard_push;
use rostersync_core::push::{
    Action, Held, Pushed, changes, classify, correlation_keys, desired, operations, resource,
};
use rostersync_core::settings::{Config, Safeguards};
use rostersync_core::target::TargetConfig;
use serde_json::json;

fn target(extra: &str) -> TargetConfig {
    let text = format!(
        "[[target]]\nname = \"helpdesk\"\nkind = \"scim\"\nurl = \"https://helpdesk.example/scim/v2\"\n{extra}"
    );
    Config::from_toml(&text).unwrap().targets.remove(0)
}

fn student(id: i64) -> Account {
    Account {
        id: AccountId(id),
        username: Some(format!("s{id}")),
        email: Some(format!("s{id}@district.k12.us")),
        first_name: Some("Ana".into()),
        middle_name: None,
        last_name: Some("Diaz".into()),
        preferred_name: None,
        user_type: UserType::Student,
        access: Access::Requestor,
        active: true,
        grade: Some("07".into()),
        identifier: Some(format!("ID{id}")),
        phone: Some("555-0100".into()),
        location: Some("Lincoln Middle".into()),
        homeroom: None,
        provider: Some("sis".into()),
        merged_into: None,
        revision: 1,
        provenance: Default::default(),
    }
}

fn held(p: &Pushed) -> Held {
    Held {
        hash: p.hash(),
        active: p.active,
        remote: true,
    }
}

#[test]
fn a_student_becomes_a_scim_user_with_the_allowed_fields_only() {
    let t = target("");
    let p = desired(&student(7), true, &t).unwrap().unwrap();
    let r = resource(&p, &t);
    assert_eq!(r["userName"], "s7@district.k12.us");
    assert_eq!(r["externalId"], "7");
    assert_eq!(r["displayName"], "Ana Diaz");
    assert_eq!(r["name"], json!({"givenName": "Ana", "familyName": "Diaz"}));
    assert_eq!(
        r["emails"],
        json!([{"value": "s7@district.k12.us", "type": "work", "primary": true}])
    );
    assert_eq!(r["userType"], "student");
    assert_eq!(r["active"], true);
    let ext = &r["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"];
    assert_eq!(ext["employeeNumber"], "ID7");
    assert_eq!(ext["department"], "Lincoln Middle");
    // Not on the default allow-list: phone, grade (no attribute configured).
    assert!(r.get("phoneNumbers").is_none(), "{r}");
    assert!(r.get("title").is_none(), "{r}");
    assert_eq!(
        r["schemas"],
        json!([
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        ])
    );
}

#[test]
fn grade_goes_to_the_configured_attribute_and_the_allow_list_is_obeyed() {
    let t = target(
        "fields = [\"email\", \"first_name\", \"last_name\"]\ngrade_attribute = \"title\"\nuser_name = \"username\"\n",
    );
    let r = resource(&desired(&student(3), true, &t).unwrap().unwrap(), &t);
    assert_eq!(r["title"], "07");
    assert_eq!(r["userName"], "s3");
    assert!(r.get("userType").is_none(), "{r}");
    assert!(
        r.get("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
            .is_none(),
        "{r}"
    );
}

#[test]
fn the_selection_leaves_out_guardians_merged_other_locations_and_unlinked() {
    let t = target("locations = [\"Lincoln Middle\"]\nlinked_only = true\n");
    assert!(desired(&student(1), true, &t).is_some());
    assert!(desired(&student(1), false, &t).is_none(), "not linked");
    let mut g = student(2);
    g.user_type = UserType::Guardian;
    assert!(
        desired(&g, true, &t).is_none(),
        "guardians are not pushed by default"
    );
    let mut m = student(3);
    m.merged_into = Some(AccountId(1));
    assert!(desired(&m, true, &t).is_none(), "merged");
    let mut elsewhere = student(4);
    elsewhere.location = Some("Adams High".into());
    assert!(desired(&elsewhere, true, &t).is_none(), "another location");
    let mut nameless = student(5);
    nameless.email = None;
    nameless.username = None;
    assert!(desired(&nameless, true, &t).unwrap().is_err());
}

#[test]
fn classify_sends_only_what_changed() {
    let t = target("");
    let p = desired(&student(7), true, &t).unwrap().unwrap();
    assert_eq!(classify(Some(&p), None), Some(Action::Create));
    assert_eq!(classify(Some(&p), Some(&held(&p))), Some(Action::Unchanged));
    let mut renamed = student(7);
    renamed.last_name = Some("Díaz".into());
    let q = desired(&renamed, true, &t).unwrap().unwrap();
    assert_eq!(classify(Some(&q), Some(&held(&p))), Some(Action::Update));
    let off = p.clone().deactivated();
    assert_eq!(
        classify(Some(&off), Some(&held(&p))),
        Some(Action::Deactivate)
    );
    assert_eq!(
        classify(Some(&p), Some(&held(&off))),
        Some(Action::Reactivate)
    );
    assert_eq!(
        classify(None, Some(&held(&p))),
        Some(Action::Deactivate),
        "left the selection"
    );
    assert_eq!(classify(None, Some(&held(&off))), Some(Action::Unchanged));
    assert_eq!(
        classify(Some(&off), None),
        None,
        "an inactive account is not created"
    );
    // A create that failed (no remote user yet) is tried again.
    let failed = Held {
        hash: 0,
        active: false,
        remote: false,
    };
    assert_eq!(classify(Some(&p), Some(&failed)), Some(Action::Create));
}

#[test]
fn operations_replace_changed_remove_dropped_and_flip_active() {
    let t = target("");
    let old = desired(&student(7), true, &t).unwrap().unwrap();
    let mut a = student(7);
    a.last_name = Some("Díaz".into());
    a.location = None;
    a.active = false;
    let new = desired(&a, true, &t).unwrap().unwrap();
    let ops = operations(Some(&old), &new, &t);
    assert_eq!(
        ops,
        vec![
            json!({"op": "replace", "path": "displayName", "value": "Ana Díaz"}),
            json!({"op": "replace", "path": "name.familyName", "value": "Díaz"}),
            json!({"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"}),
            json!({"op": "replace", "path": "active", "value": false}),
        ]
    );
    let ch = changes(Some(&old), &new);
    assert_eq!(
        ch.iter().map(|c| c.field).collect::<Vec<_>>(),
        vec![Field::LastName, Field::Location]
    );
    assert!(operations(Some(&old), &old, &t).is_empty());
    // Adoption replaces every attribute and the state.
    let adopt = operations(None, &old, &t);
    assert_eq!(adopt.len(), old.attrs.len() + 1, "{adopt:?}");
    assert!(adopt.iter().all(|op| op["op"] == "replace"));
    assert!(
        adopt
            .contains(&json!({"op": "replace", "path": "userName", "value": "s7@district.k12.us"}))
    );
    assert!(adopt.contains(&json!({"op": "replace", "path": "active", "value": true})));
}

#[test]
fn correlation_tries_external_id_user_name_then_email() {
    let t = target("user_name = \"username\"\n");
    let p = desired(&student(7), true, &t).unwrap().unwrap();
    assert_eq!(
        correlation_keys(&p),
        vec![
            ("externalId", "7"),
            ("userName", "s7"),
            ("emails.value", "s7@district.k12.us")
        ]
    );
    let t = target("");
    let p = desired(&student(7), true, &t).unwrap().unwrap();
    assert_eq!(
        correlation_keys(&p),
        vec![
            ("externalId", "7"),
            ("userName", "s7@district.k12.us"),
            ("emails.value", "s7@district.k12.us")
        ],
        "the target's user may have another userName than its email"
    );
}

#[test]
fn the_push_guard_holds_mass_deactivations_but_not_a_first_push() {
    let g = Safeguards::default();
    assert!(
        guard_push(0, 100_000, 0, 0, &g).is_empty(),
        "a first push creates everyone"
    );
    assert_eq!(guard_push(501, 0, 0, 100_000, &g).len(), 1);
    assert_eq!(guard_push(60, 0, 0, 1_000, &g).len(), 1, "6% of 1000");
    assert!(guard_push(40, 0, 0, 1_000, &g).is_empty());
    assert_eq!(guard_push(0, 0, 600, 1_000, &g).len(), 1, "60% updated");
}

#[test]
fn target_settings_are_validated_with_their_place_named() {
    let bad = |extra: &str| {
        Config::from_toml(&format!(
            "[[source]]\nname = \"sis\"\nkind = \"oneroster-csv\"\npath = \"x.zip\"\n[[target]]\nname = \"helpdesk\"\nkind = \"scim\"\n{extra}"
        ))
        .unwrap_err()
        .to_string()
    };
    assert!(bad("url = \"ftp://x\"").contains("[[target]] #1 (helpdesk): url"));
    assert!(bad("url = \"https://a:b@x/scim/v2\"").contains("user name or password"));
    assert!(bad("url = \"https://x/scim/v2\"\nfollows = [\"nope\"]").contains("follows 'nope'"));
    assert!(bad("url = \"https://x/scim/v2\"\nfields = [\"grade\"]").contains("grade_attribute"));
    assert!(
        bad("url = \"https://x/scim/v2\"\ngrade_attribute = \"userName\"")
            .contains("is not one of")
    );
    assert!(
        bad("url = \"https://x/scim/v2\"\ntoken_env = \"ROSTERSYNC_KEY\"").contains("ROSTERSYNC_")
    );
    let same = Config::from_toml(
        "[[source]]\nname = \"sis\"\nkind = \"oneroster-csv\"\npath = \"x.zip\"\n[[target]]\nname = \"sis\"\nkind = \"scim\"\nurl = \"https://x/scim/v2\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(same.contains("a source has the same name"), "{same}");
    // The token is read from a file, never written back out.
    let c = Config::from_toml(
        "[[target]]\nname = \"helpdesk\"\nkind = \"scim\"\nurl = \"https://x/scim/v2\"\ntoken = \"s3cret\"\n",
    )
    .unwrap();
    assert!(!c.to_toml().contains("s3cret"));
    assert_eq!(
        Config::from_toml(&c.to_toml()).unwrap().targets[0].token,
        None
    );
}
