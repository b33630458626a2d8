//! PATCH (RFC 7644 §3.5.2): [`PatchRequest`] read leniently from JSON and [`apply`] to a
//! resource as JSON.
//!
//! Leniency, for what identity providers really send: `op` in any case (Entra sends
//! `"Replace"`, `"Add"`, `"Remove"`); `Operations` also as `operations`; `schemas` may be
//! missing (but if given it must name the PatchOp URN); boolean attributes (`active`,
//! `emails.primary`) take the strings `"True"`/`"False"`. Without a `path`, `value` is an
//! object whose keys are attribute names, dotted sub-attribute names (`name.givenName`),
//! URN-prefixed names or a schema-extension URN holding an object of its attributes; a
//! `schemas` key there is ignored (the server keeps `schemas` in step with the extension
//! objects present). A `path` may also be a bare extension URN.
//!
//! Semantics, per the RFC unless marked *decision*:
//! - the request is atomic: if any operation fails the resource is left unchanged;
//! - `add` appends to multi-valued attributes (skipping values already there), merges
//!   into complex ones and sets single-valued ones; `replace` replaces a multi-valued
//!   attribute's whole list, merges into a complex value and sets the rest; a `null` or
//!   `[]` value unassigns the attribute (RFC 7643 §2.5);
//! - value filters select elements: `replace`/`add` change the matching elements (or
//!   their sub-attribute); `remove` removes them (or their sub-attribute);
//! - *decision* (Entra): when a value filter made only of `eq` terms
//!   (`emails[type eq "work"].value`) matches nothing, `add` and `replace` create the
//!   element from those terms instead of answering `noTarget`; other filters that match
//!   nothing answer `400 noTarget` as §3.5.2.3 says;
//! - at most one value of a multi-valued attribute stays `primary` (RFC 7643 §2.4): when
//!   an operation sets a new primary value, the others lose the flag;
//! - `remove` without a path answers `400 noTarget` (§3.5.2.2); `remove` of a
//!   multi-valued attribute with a `value` list (Entra's group-member removal) removes
//!   those values only;
//! - *decision*: readOnly attributes (`id`, `meta`) are never changed; §3.5.2 says an
//!   operation incompatible with mutability SHALL fail, so touching them answers
//!   `400 mutability`, except that setting one to the value it already has is a no-op
//!   (clients that echo the resource back do that);
//! - *decision*: removing (or unassigning) a required attribute (`userName`) answers
//!   `400 mutability`: the RFC's code for a change the attribute's characteristics forbid;
//! - an unknown `op` answers `400 invalidSyntax`, a malformed path `400 invalidPath`.

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::error::{ScimError, ScimType};
use crate::filter::{AttrPath, Path};
use crate::json::{get_ci, key_ci, lenient_bool, member_ci};
use crate::schema::{self, AttributeDef, AttributeType, Mutability};

/// The schema URN of a PATCH request.
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// A PATCH operation's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchOp {
    /// `add`.
    Add,
    /// `replace`.
    Replace,
    /// `remove`.
    Remove,
}

impl<'de> Deserialize<'de> for PatchOp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.to_ascii_lowercase().as_str() {
            "add" => Ok(Self::Add),
            "replace" => Ok(Self::Replace),
            "remove" => Ok(Self::Remove),
            _ => Err(serde::de::Error::custom(format!(
                "unknown op \"{text}\": expected add, replace or remove"
            ))),
        }
    }
}

/// Keeps an explicit `null` value apart from a missing one.
fn given<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// One PATCH operation.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PatchOperation {
    /// What to do.
    pub op: PatchOp,
    /// Where; `None` means the value is an object of attributes.
    #[serde(default)]
    pub path: Option<String>,
    /// The value, any JSON (`Some(Value::Null)` when given as `null`).
    #[serde(default, deserialize_with = "given")]
    pub value: Option<Value>,
}

/// A PATCH request body.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PatchRequest {
    /// The message schemas (`PATCH_OP_SCHEMA`).
    #[serde(default)]
    pub schemas: Vec<String>,
    /// The operations, applied in order.
    #[serde(rename = "Operations", alias = "operations")]
    pub operations: Vec<PatchOperation>,
}

impl PatchRequest {
    /// Reads a request body; malformed bodies and unknown ops answer `400 invalidSyntax`.
    pub fn from_json(body: &Value) -> Result<PatchRequest, ScimError> {
        let request = PatchRequest::deserialize(body).map_err(|error| {
            ScimError::bad_request(
                ScimType::InvalidSyntax,
                format!("invalid PATCH request: {error}"),
            )
        })?;
        let names_patch_op = request
            .schemas
            .iter()
            .any(|urn| urn.eq_ignore_ascii_case(PATCH_OP_SCHEMA));
        if !request.schemas.is_empty() && !names_patch_op {
            return Err(ScimError::bad_request(
                ScimType::InvalidSyntax,
                format!("invalid PATCH request: schemas must be [\"{PATCH_OP_SCHEMA}\"]"),
            ));
        }
        Ok(request)
    }

    /// Drops what rostersync makes itself ([`schema::is_derived`]: `displayName`,
    /// `name.formatted`, read-only in its `Schemas`) instead of refusing the whole request
    /// (Entra sends `displayName` with every change): operations whose path names one, and
    /// such attributes in the value of an operation without a path.
    pub fn drop_derived(&mut self) {
        self.operations.retain_mut(|op| match op.path.as_deref() {
            Some(path) => !schema::is_derived(path),
            None => {
                if let Some(Value::Object(values)) = op.value.as_mut() {
                    schema::drop_derived(values);
                }
                true
            }
        });
    }

    /// Applies the operations to `resource` under rostersync's rules (see [`apply`]).
    pub fn apply(&self, resource: &mut Value) -> Result<(), ScimError> {
        apply(resource, &self.operations, Derived::ReadOnly)
    }

    /// Applies the operations to `resource`, the derived attributes as `derived` says.
    pub fn apply_with(&self, resource: &mut Value, derived: Derived) -> Result<(), ScimError> {
        apply(resource, &self.operations, derived)
    }
}

/// What a PATCH may do to the attributes rostersync derives from others
/// ([`AttributeDef::derived`]: `displayName`, `name.formatted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Derived {
    /// Read-only, as in rostersync's own `/scim/v2`, which makes them from the name.
    ReadOnly,
    /// Plain read-write attributes, as in a help desk that keeps what clients write.
    Writable,
}

/// Applies `operations` in order to `resource` (a JSON object), all or nothing.
pub fn apply(
    resource: &mut Value,
    operations: &[PatchOperation],
    derived: Derived,
) -> Result<(), ScimError> {
    let Value::Object(original) = resource else {
        return Err(ScimError::new(
            500,
            None,
            "the resource to patch is not an object",
        ));
    };
    let mut working = original.clone();
    for operation in operations {
        let before = working.clone();
        apply_operation(&mut working, operation, derived)?;
        single_primary(&before, &mut working);
    }
    sync_schemas(&mut working);
    *original = working;
    Ok(())
}

fn invalid_value(detail: impl Into<String>) -> ScimError {
    ScimError::bad_request(ScimType::InvalidValue, detail)
}

fn apply_operation(
    resource: &mut Map<String, Value>,
    operation: &PatchOperation,
    derived: Derived,
) -> Result<(), ScimError> {
    let op = operation.op;
    let value = operation.value.as_ref();
    let Some(path) = operation.path.as_deref().map(str::trim) else {
        if op == PatchOp::Remove {
            return Err(ScimError::bad_request(
                ScimType::NoTarget,
                "a remove operation needs a path",
            ));
        }
        let Some(Value::Object(members)) = value else {
            return Err(invalid_value(
                "an operation without a path needs an object of attributes as its value",
            ));
        };
        for (key, member) in members {
            apply_key(resource, op, key, member, derived)?;
        }
        return Ok(());
    };
    if let Some(extension) = schema::extension(path) {
        return apply_extension(resource, op, extension.id, value, derived);
    }
    let path = Path::parse(path)?;
    apply_path(resource, op, &path, value, derived)
}

fn apply_key(
    resource: &mut Map<String, Value>,
    op: PatchOp,
    key: &str,
    value: &Value,
    derived: Derived,
) -> Result<(), ScimError> {
    if key.eq_ignore_ascii_case("schemas") {
        return Ok(());
    }
    if let Some(extension) = schema::extension(key) {
        return apply_extension(resource, op, extension.id, Some(value), derived);
    }
    let attr = AttrPath::parse(key)?;
    let path = Path {
        attr,
        filter: None,
        sub_attribute: None,
    };
    apply_path(resource, op, &path, Some(value), derived)
}

fn apply_extension(
    resource: &mut Map<String, Value>,
    op: PatchOp,
    urn: &str,
    value: Option<&Value>,
    derived: Derived,
) -> Result<(), ScimError> {
    if op == PatchOp::Remove {
        if let Some(key) = key_ci(resource, urn) {
            resource.remove(&key);
        }
        return Ok(());
    }
    let Some(Value::Object(members)) = value else {
        return Err(invalid_value(format!(
            "the value for {urn} must be an object of its attributes"
        )));
    };
    for (name, member) in members {
        let path = Path {
            attr: AttrPath::parse(&format!("{urn}:{name}"))?,
            filter: None,
            sub_attribute: None,
        };
        apply_path(resource, op, &path, Some(member), derived)?;
    }
    Ok(())
}

/// The object that holds `attr`: the resource, or its extension object (created for
/// add/replace).
fn container<'a>(
    resource: &'a mut Map<String, Value>,
    attr: &AttrPath,
    create: bool,
) -> Result<Option<&'a mut Map<String, Value>>, ScimError> {
    let urn = match attr.schema.as_deref() {
        Some(urn) if !schema::is_core_schema(urn) => urn,
        _ => return Ok(Some(resource)),
    };
    let key = match key_ci(resource, urn) {
        Some(key) => key,
        None if create => {
            let canonical = schema::extension(urn).map_or(urn, |ext| ext.id).to_owned();
            resource.insert(canonical.clone(), Value::Object(Map::new()));
            canonical
        }
        None => return Ok(None),
    };
    match resource.get_mut(&key) {
        Some(Value::Object(members)) => Ok(Some(members)),
        _ => Err(invalid_value(format!(
            "{key} is not an object of attributes"
        ))),
    }
}

fn check_writable(
    def: Option<&AttributeDef>,
    derived: Derived,
    path: &Path,
    current: Option<&Value>,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let writable = |def: &AttributeDef| def.derived && derived == Derived::Writable;
    if def.is_some_and(|def| def.mutability == Mutability::ReadOnly && !writable(def)) {
        let unchanged = path.filter.is_none() && value.is_some() && current == value;
        if !unchanged {
            return Err(ScimError::bad_request(
                ScimType::Mutability,
                format!("{} is read-only", path.attr),
            ));
        }
    }
    Ok(())
}

fn refuse_required(def: Option<&AttributeDef>, name: &str) -> Result<(), ScimError> {
    if def.is_some_and(|def| def.required) {
        return Err(ScimError::bad_request(
            ScimType::Mutability,
            format!("{name} is required and cannot be removed"),
        ));
    }
    Ok(())
}

/// Turns `"True"`/`"False"` into booleans where the table says boolean, recursively.
fn coerce(def: Option<&AttributeDef>, value: &Value) -> Value {
    let Some(def) = def else { return value.clone() };
    match value {
        Value::Array(items) => {
            Value::Array(items.iter().map(|item| coerce(Some(def), item)).collect())
        }
        Value::String(_) if def.kind == AttributeType::Boolean => {
            lenient_bool(value).map_or_else(|| value.clone(), Value::Bool)
        }
        Value::Object(members) if def.kind == AttributeType::Complex => Value::Object(
            members
                .iter()
                .map(|(key, member)| (key.clone(), coerce(def.sub_attribute(key), member)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn is_unassigned(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// The key to use for `name` in `object`: the spelling already there, else the table's.
fn key_for(object: &Map<String, Value>, name: &str, def: Option<&AttributeDef>) -> String {
    key_ci(object, name).unwrap_or_else(|| def.map_or(name, |def| def.name).to_owned())
}

fn apply_path(
    resource: &mut Map<String, Value>,
    op: PatchOp,
    path: &Path,
    value: Option<&Value>,
    derived: Derived,
) -> Result<(), ScimError> {
    let attr = &path.attr;
    let top_def = schema::find(attr.schema.as_deref(), &attr.name);
    let Some(holder) = container(resource, attr, op != PatchOp::Remove)? else {
        return Ok(());
    };
    let key = key_for(holder, &attr.name, top_def);
    match (&attr.sub_attribute, &path.filter) {
        (None, None) => {
            check_writable(top_def, derived, path, holder.get(&key), value)?;
            set_member(holder, &key, top_def, op, value, &path.attr.to_string())
        }
        (Some(sub), None) => {
            let sub_def = top_def.and_then(|def| def.sub_attribute(sub));
            let current = holder.get(&key).and_then(|parent| member_ci(parent, sub));
            check_writable(top_def, derived, path, current, value)?;
            check_writable(sub_def, derived, path, current, value)?;
            let parent = match holder.get_mut(&key) {
                Some(Value::Object(parent)) => parent,
                Some(Value::Array(elements)) => {
                    for element in elements.iter_mut() {
                        if let Value::Object(element) = element {
                            let sub_key = key_for(element, sub, sub_def);
                            set_member(
                                element,
                                &sub_key,
                                sub_def,
                                op,
                                value,
                                &path.attr.to_string(),
                            )?;
                        }
                    }
                    return Ok(());
                }
                None | Some(Value::Null) if op != PatchOp::Remove => {
                    holder.insert(key.clone(), Value::Object(Map::new()));
                    match holder.get_mut(&key) {
                        Some(Value::Object(parent)) => parent,
                        _ => return Ok(()),
                    }
                }
                None | Some(Value::Null) => return Ok(()),
                Some(_) => {
                    return Err(ScimError::bad_request(
                        ScimType::InvalidPath,
                        format!("{} has no sub-attributes", attr.name),
                    ));
                }
            };
            let sub_key = key_for(parent, sub, sub_def);
            set_member(parent, &sub_key, sub_def, op, value, &path.attr.to_string())?;
            if parent.is_empty() {
                holder.remove(&key);
            }
            Ok(())
        }
        (_, Some(_)) => {
            check_writable(top_def, derived, path, None, value)?;
            apply_filtered(holder, &key, top_def, op, path, value)
        }
    }
}

/// add/replace/remove of `object[key]` with no filter.
fn set_member(
    object: &mut Map<String, Value>,
    key: &str,
    def: Option<&AttributeDef>,
    op: PatchOp,
    value: Option<&Value>,
    name: &str,
) -> Result<(), ScimError> {
    if op == PatchOp::Remove {
        return remove_member(object, key, def, value, name);
    }
    let Some(value) = value else {
        return Err(invalid_value(format!(
            "an add or replace of {name} needs a value"
        )));
    };
    let value = coerce(def, value);
    if is_unassigned(&value) {
        refuse_required(def, name)?;
        object.remove(key);
        return Ok(());
    }
    let multi = def.map_or_else(
        || value.is_array() || object.get(key).is_some_and(Value::is_array),
        |def| def.multi_valued,
    );
    let current = object.get_mut(key);
    if multi {
        let new_values = match value {
            Value::Array(items) => items,
            single => vec![single],
        };
        match (op, current) {
            (PatchOp::Add, Some(Value::Array(existing))) => {
                for item in new_values {
                    if !existing.contains(&item) {
                        existing.push(item);
                    }
                }
            }
            _ => {
                object.insert(key.to_owned(), Value::Array(new_values));
            }
        }
        return Ok(());
    }
    match (current, value) {
        (Some(Value::Object(existing)), Value::Object(members)) => {
            for (sub, member) in members {
                let sub_key = key_for(existing, &sub, None);
                if member.is_null() {
                    existing.remove(&sub_key);
                } else {
                    existing.insert(sub_key, member);
                }
            }
        }
        (_, value) => {
            object.insert(key.to_owned(), value);
        }
    }
    Ok(())
}

fn remove_member(
    object: &mut Map<String, Value>,
    key: &str,
    def: Option<&AttributeDef>,
    value: Option<&Value>,
    name: &str,
) -> Result<(), ScimError> {
    if let (Some(Value::Array(existing)), Some(value)) = (object.get_mut(key), value)
        && !is_unassigned(value)
    {
        let listed = match value {
            Value::Array(items) => items.clone(),
            single => vec![single.clone()],
        };
        existing.retain(|item| !listed.iter().any(|gone| same_value(item, gone)));
        if existing.is_empty() {
            object.remove(key);
        }
        return Ok(());
    }
    if object.contains_key(key) {
        refuse_required(def, name)?;
        object.remove(key);
    }
    Ok(())
}

/// Whether two elements of a multi-valued attribute are the same value: equal, or equal
/// in their `value` sub-attribute.
fn same_value(item: &Value, other: &Value) -> bool {
    if item == other {
        return true;
    }
    let value_of = |v: &Value| match v {
        Value::Object(members) => get_ci(members, "value").cloned(),
        other => Some(other.clone()),
    };
    matches!((value_of(item), value_of(other)), (Some(left), Some(right)) if left == right)
}

fn apply_filtered(
    holder: &mut Map<String, Value>,
    key: &str,
    def: Option<&'static AttributeDef>,
    op: PatchOp,
    path: &Path,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let Some(filter) = &path.filter else {
        return Ok(());
    };
    let sub = path.sub_attribute.as_deref();
    let sub_def = sub.and_then(|sub| def.and_then(|def| def.sub_attribute(sub)));
    let name = path.attr.to_string();
    let elements = match holder.get_mut(key) {
        Some(Value::Array(elements)) => elements,
        None | Some(Value::Null) if op == PatchOp::Remove => return Ok(()),
        None | Some(Value::Null) => {
            holder.insert(key.to_owned(), Value::Array(Vec::new()));
            match holder.get_mut(key) {
                Some(Value::Array(elements)) => elements,
                _ => return Ok(()),
            }
        }
        Some(_) => {
            return Err(ScimError::bad_request(
                ScimType::InvalidPath,
                format!("{name} is not multi-valued, so it takes no value filter"),
            ));
        }
    };
    let matching: Vec<usize> = elements
        .iter()
        .enumerate()
        .filter(|(_, element)| filter.matches_element(element, def))
        .map(|(at, _)| at)
        .collect();
    if op == PatchOp::Remove {
        match sub {
            None => {
                let mut at = 0;
                elements.retain(|_| {
                    let keep = !matching.contains(&at);
                    at += 1;
                    keep
                });
            }
            Some(sub) => {
                for &at in &matching {
                    if let Some(Value::Object(element)) = elements.get_mut(at) {
                        let sub_key = key_for(element, sub, sub_def);
                        remove_member(element, &sub_key, sub_def, None, sub)?;
                    }
                }
            }
        }
        if elements.is_empty() {
            holder.remove(key);
        }
        return Ok(());
    }
    let Some(value) = value else {
        return Err(invalid_value(format!(
            "an add or replace of {name} needs a value"
        )));
    };
    if matching.is_empty() {
        let Some(template) = filter.equality_template() else {
            return Err(ScimError::bad_request(
                ScimType::NoTarget,
                format!("no value of {name} matches the filter"),
            ));
        };
        let mut element = Value::Object(template);
        update_element(&mut element, def, sub, sub_def, PatchOp::Add, value)?;
        elements.push(coerce(def, &element));
        return Ok(());
    }
    for at in matching {
        if let Some(element) = elements.get_mut(at) {
            update_element(element, def, sub, sub_def, op, value)?;
        }
    }
    Ok(())
}

fn update_element(
    element: &mut Value,
    def: Option<&'static AttributeDef>,
    sub: Option<&str>,
    sub_def: Option<&'static AttributeDef>,
    op: PatchOp,
    value: &Value,
) -> Result<(), ScimError> {
    match (sub, element) {
        (Some(sub), Value::Object(members)) => {
            let sub_key = key_for(members, sub, sub_def);
            set_member(
                members,
                &sub_key,
                sub_def,
                PatchOp::Replace,
                Some(value),
                sub,
            )
        }
        (None, element) => {
            let value = coerce(def, value);
            match (op, element, value) {
                (PatchOp::Add, Value::Object(members), Value::Object(new_members)) => {
                    members.extend(new_members);
                }
                (_, element, value) => *element = value,
            }
            Ok(())
        }
        (Some(_), _) => Err(invalid_value("the selected values have no sub-attributes")),
    }
}

/// Keeps at most one `primary: true` value per multi-valued attribute (RFC 7643 §2.4):
/// when an operation leaves several, the one it set wins (the last, if it set several).
fn single_primary(before: &Map<String, Value>, after: &mut Map<String, Value>) {
    let with_primary = schema::CORE_USER
        .attributes
        .iter()
        .filter(|def| def.multi_valued && def.sub_attribute("primary").is_some());
    for def in with_primary {
        let Some(key) = key_ci(after, def.name) else {
            continue;
        };
        let is_primary =
            |item: &Value| member_ci(item, "primary").and_then(lenient_bool) == Some(true);
        let old: Vec<Value> = match before.get(&key) {
            Some(Value::Array(items)) => items
                .iter()
                .filter(|item| is_primary(item))
                .cloned()
                .collect(),
            _ => Vec::new(),
        };
        let Some(Value::Array(items)) = after.get_mut(&key) else {
            continue;
        };
        let primaries: Vec<usize> = (0..items.len())
            .filter(|&at| is_primary(&items[at]))
            .collect();
        if primaries.len() < 2 {
            continue;
        }
        let keep = primaries
            .iter()
            .rev()
            .find(|&&at| !old.contains(&items[at]))
            .or(primaries.last())
            .copied();
        for at in primaries.into_iter().filter(|&at| Some(at) != keep) {
            if let Some(Value::Object(members)) = items.get_mut(at)
                && let Some(primary) = key_ci(members, "primary")
            {
                members.insert(primary, Value::Bool(false));
            }
        }
    }
}

/// Keeps `schemas` listing the core schema and exactly the extensions present.
fn sync_schemas(resource: &mut Map<String, Value>) {
    for extension in schema::USER_EXTENSIONS {
        let key = key_ci(resource, extension.id);
        let empty = key
            .as_ref()
            .and_then(|key| resource.get(key))
            .is_some_and(|value| value.is_null() || value.as_object().is_some_and(Map::is_empty));
        if empty && let Some(key) = &key {
            resource.remove(key);
        }
        let present = key.is_some() && !empty;
        let Some(Value::Array(schemas)) = resource.get_mut("schemas") else {
            continue;
        };
        let listed_at = schemas.iter().position(|urn| {
            urn.as_str()
                .is_some_and(|urn| urn.eq_ignore_ascii_case(extension.id))
        });
        match (present, listed_at) {
            (true, None) => schemas.push(Value::from(extension.id)),
            (false, Some(at)) => {
                schemas.remove(at);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(resource: &mut Value, body: Value) -> Result<(), ScimError> {
        PatchRequest::from_json(&body)?.apply(resource)
    }

    fn user() -> Value {
        json!({
            "schemas": [schema::USER_SCHEMA],
            "id": "42",
            "userName": "ann",
            "emails": [{"value": "ann@home.org", "type": "home"}],
            "meta": {"resourceType": "User", "version": "W/\"1\""},
        })
    }

    #[test]
    fn unknown_op_is_invalid_syntax() {
        let error = PatchRequest::from_json(&json!({
            "schemas": [PATCH_OP_SCHEMA],
            "Operations": [{"op": "merge", "path": "displayName", "value": "x"}],
        }))
        .unwrap_err();
        assert_eq!(error.scim_type, Some(ScimType::InvalidSyntax));
        assert!(error.detail.contains("merge"), "{}", error.detail);
    }

    #[test]
    fn wrong_schemas_are_invalid_syntax() {
        let error = PatchRequest::from_json(&json!({
            "schemas": ["urn:example:other"],
            "Operations": [],
        }))
        .unwrap_err();
        assert_eq!(error.scim_type, Some(ScimType::InvalidSyntax));
    }

    #[test]
    fn failed_requests_change_nothing() {
        let mut resource = user();
        let before = resource.clone();
        let error = run(
            &mut resource,
            json!({"Operations": [
                {"op": "replace", "path": "displayName", "value": "Ann"},
                {"op": "remove", "path": "userName"},
            ]}),
        )
        .unwrap_err();
        assert_eq!(error.scim_type, Some(ScimType::Mutability));
        assert_eq!(resource, before);
    }

    #[test]
    fn read_only_attributes_are_refused_unless_unchanged() {
        let mut resource = user();
        let error = run(
            &mut resource,
            json!({"Operations": [{"op": "replace", "path": "id", "value": "43"}]}),
        )
        .unwrap_err();
        assert_eq!(error.scim_type, Some(ScimType::Mutability));
        let error = run(
            &mut resource,
            json!({"Operations": [{"op": "replace", "path": "meta.version", "value": "x"}]}),
        )
        .unwrap_err();
        assert_eq!(error.scim_type, Some(ScimType::Mutability));
        run(
            &mut resource,
            json!({"Operations": [{"op": "replace", "value": {"id": "42", "userName": "ann2"}}]}),
        )
        .unwrap();
        assert_eq!(resource["userName"], "ann2");
        // displayName is made from the name: a client may not set it.
        let error = run(
            &mut resource,
            json!({"Operations": [{"op": "replace", "path": "displayName", "value": "Ann"}]}),
        )
        .unwrap_err();
        assert_eq!(error.scim_type, Some(ScimType::Mutability));
    }

    #[test]
    fn derived_attributes_are_dropped_not_refused() {
        let mut request = PatchRequest::from_json(&json!({"Operations": [
            {"op": "Replace", "path": "displayName", "value": "Ann Li"},
            {"op": "replace", "path": "name.formatted", "value": "Ann Li"},
            {"op": "replace", "value": {
                "displayName": "Ann Li",
                "name": {"givenName": "Ann", "formatted": "Ann Li"},
                "name.familyName": "Li",
            }},
        ]}))
        .unwrap();
        request.drop_derived();
        let mut resource = user();
        request.apply(&mut resource).unwrap();
        assert_eq!(
            resource["name"],
            json!({"givenName": "Ann", "familyName": "Li"})
        );
        assert!(resource.get("displayName").is_none());
    }

    #[test]
    fn derived_attributes_are_refused_or_written_as_told() {
        let request = PatchRequest::from_json(&json!({"Operations": [
            {"op": "replace", "path": "displayName", "value": "Ms Li"},
            {"op": "replace", "path": "name.formatted", "value": "Ann Li"},
        ]}))
        .unwrap();
        let mut resource = user();
        let error = request.apply(&mut resource).unwrap_err();
        assert_eq!(error.scim_type, Some(ScimType::Mutability));
        assert_eq!(resource, user(), "a refused request changes nothing");
        request
            .apply_with(&mut resource, Derived::Writable)
            .unwrap();
        assert_eq!(resource["displayName"], "Ms Li");
        assert_eq!(resource["name"]["formatted"], "Ann Li");
        let remove = PatchRequest::from_json(&json!({"Operations": [
            {"op": "remove", "path": "displayName"},
        ]}))
        .unwrap();
        remove.apply_with(&mut resource, Derived::Writable).unwrap();
        assert!(resource.get("displayName").is_none());
    }

    #[test]
    fn remove_without_path_is_no_target() {
        let mut resource = user();
        let error = run(&mut resource, json!({"Operations": [{"op": "remove"}]})).unwrap_err();
        assert_eq!(error.scim_type, Some(ScimType::NoTarget));
    }

    #[test]
    fn add_appends_and_skips_duplicates() {
        let mut resource = user();
        let email = json!({"value": "ann@work.org", "type": "work"});
        run(
            &mut resource,
            json!({"Operations": [{"op": "add", "path": "emails", "value": [email.clone()]}]}),
        )
        .unwrap();
        run(
            &mut resource,
            json!({"Operations": [{"op": "add", "path": "emails", "value": email}]}),
        )
        .unwrap();
        assert_eq!(resource["emails"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn replace_without_filter_replaces_the_list() {
        let mut resource = user();
        run(
            &mut resource,
            json!({"Operations": [{"op": "replace", "path": "emails", "value": [{"value": "new@x.org"}]}]}),
        )
        .unwrap();
        assert_eq!(resource["emails"], json!([{"value": "new@x.org"}]));
    }

    #[test]
    fn remove_with_filter_removes_matching_values() {
        let mut resource = user();
        run(
            &mut resource,
            json!({"Operations": [{"op": "remove", "path": "emails[type eq \"home\"]"}]}),
        )
        .unwrap();
        assert!(resource.get("emails").is_none());
    }

    #[test]
    fn unmatched_non_equality_filter_is_no_target() {
        let mut resource = user();
        let error = run(
            &mut resource,
            json!({"Operations": [{"op": "replace", "path": "emails[type co \"wor\"].value", "value": "x"}]}),
        )
        .unwrap_err();
        assert_eq!(error.scim_type, Some(ScimType::NoTarget));
    }

    #[test]
    fn bad_path_is_invalid_path() {
        let mut resource = user();
        let error = run(
            &mut resource,
            json!({"Operations": [{"op": "replace", "path": "emails[", "value": 1}]}),
        )
        .unwrap_err();
        assert_eq!(error.scim_type, Some(ScimType::InvalidPath));
    }

    #[test]
    fn extension_attributes_keep_schemas_in_step() {
        let mut resource = user();
        let urn = schema::ENTERPRISE_USER_SCHEMA;
        run(
            &mut resource,
            json!({"Operations": [{"op": "add", "path": format!("{urn}:department"), "value": "Maths"}]}),
        )
        .unwrap();
        assert_eq!(resource[urn]["department"], "Maths");
        assert!(
            resource["schemas"]
                .as_array()
                .unwrap()
                .contains(&json!(urn))
        );
        run(
            &mut resource,
            json!({"Operations": [{"op": "remove", "path": format!("{urn}:department")}]}),
        )
        .unwrap();
        assert!(resource.get(urn).is_none());
        assert_eq!(resource["schemas"], json!([schema::USER_SCHEMA]));
    }

    #[test]
    fn empty_extension_objects_do_not_linger() {
        let mut resource = json!({"userName": "ann"});
        let urn = schema::ENTERPRISE_USER_SCHEMA;
        run(
            &mut resource,
            json!({"Operations": [{"op": "replace", "path": format!("{urn}:department"), "value": null}]}),
        )
        .unwrap();
        assert_eq!(resource, json!({"userName": "ann"}));
    }

    #[test]
    fn remove_with_value_list_removes_those_values() {
        let mut group = json!({"members": [{"value": "a"}, {"value": "b"}]});
        run(
            &mut group,
            json!({"Operations": [{"op": "Remove", "path": "members", "value": [{"value": "a"}]}]}),
        )
        .unwrap();
        assert_eq!(group["members"], json!([{"value": "b"}]));
    }
}
