//! Small helpers over `serde_json` objects for SCIM's case-insensitive attribute names
//! (RFC 7643 §2.1): look a member up, or find the spelling a resource already uses.

use serde_json::{Map, Value};

/// The key of `object` that names `name`, ignoring ASCII case.
pub(crate) fn key_ci(object: &Map<String, Value>, name: &str) -> Option<String> {
    object
        .keys()
        .find(|key| key.eq_ignore_ascii_case(name))
        .cloned()
}

/// The member of `object` named `name`, ignoring ASCII case.
pub(crate) fn get_ci<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
}

/// The member named `name` if `value` is an object that has it, ignoring ASCII case.
pub(crate) fn member_ci<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    value.as_object().and_then(|object| get_ci(object, name))
}

/// A boolean, or the strings `"True"`/`"False"` in any case, as Microsoft Entra ID sends them.
pub(crate) fn lenient_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(flag) => Some(*flag),
        Value::String(text) if text.eq_ignore_ascii_case("true") => Some(true),
        Value::String(text) if text.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_members_ignoring_case() {
        let value = json!({"userName": "ann"});
        let object = value.as_object().unwrap();
        assert_eq!(key_ci(object, "USERNAME").as_deref(), Some("userName"));
        assert_eq!(get_ci(object, "username"), Some(&json!("ann")));
        assert_eq!(member_ci(&value, "missing"), None);
        assert_eq!(member_ci(&json!("text"), "userName"), None);
    }

    #[test]
    fn reads_booleans_and_their_strings() {
        assert_eq!(lenient_bool(&json!(true)), Some(true));
        assert_eq!(lenient_bool(&json!("False")), Some(false));
        assert_eq!(lenient_bool(&json!("TRUE")), Some(true));
        assert_eq!(lenient_bool(&json!("yes")), None);
        assert_eq!(lenient_bool(&json!(1)), None);
    }
}
