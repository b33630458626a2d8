//! The User resource as rostersync keeps it: core schema attributes (`id`, `externalId`,
//! `userName`, `name`, `displayName`, `emails`, `active`, `meta`) and the enterprise
//! extension (`employeeNumber`, `department`, `organization`), as the typed [`User`]
//! read leniently from JSON and written back; and [`Projection`], the `attributes` /
//! `excludedAttributes` selection of RFC 7644 §3.9 over any resource as JSON.
//!
//! Reading is lenient the way identity providers need: attribute names in any case,
//! `active` and `emails.primary` also as the strings `"True"`/`"False"`, every attribute
//! but `userName` optional, `null` the same as absent, unknown attributes ignored.
//! `meta` is read as given (a stored resource's); a server sets `id` and `meta` itself
//! when it creates or replaces a resource, as RFC 7643 §3.1 requires.
//!
//! Projection: the attributes whose `returned` is `always` in the [`crate::schema`]
//! table (`id`, `meta.resourceType`) and `schemas` are always kept, as §3.9 says;
//! *decision*: `schemas` is always kept because a resource cannot be read without it,
//! and `meta.resourceType` because it says what the resource is (RFC 7643 leaves
//! `meta`'s `returned` open). When both parameters are given, `attributes` wins
//! (*decision*: §3.9 does not say; the narrower answer is the safer one).

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::error::{ScimError, ScimType};
use crate::filter::AttrPath;
use crate::json::{get_ci, key_ci, lenient_bool};
use crate::schema::{self, AttributeDef, ENTERPRISE_USER_SCHEMA, Returned, USER_SCHEMA};

/// The components of a user's name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Name {
    /// `givenName`.
    pub given_name: Option<String>,
    /// `familyName`.
    pub family_name: Option<String>,
    /// `middleName`.
    pub middle_name: Option<String>,
    /// `formatted`.
    pub formatted: Option<String>,
}

/// One email address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Email {
    /// The address.
    pub value: String,
    /// `work`, `home`, `other`, …
    pub kind: Option<String>,
    /// Whether it is the primary address.
    pub primary: bool,
}

/// Resource metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    /// `User`.
    pub resource_type: String,
    /// When the resource was created.
    pub created: Option<Timestamp>,
    /// When it last changed.
    pub last_modified: Option<Timestamp>,
    /// Its URL.
    pub location: Option<String>,
    /// Its version, the weak ETag (`W/"…"`).
    pub version: Option<String>,
}

/// The enterprise extension attributes rostersync keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnterpriseUser {
    /// `employeeNumber`.
    pub employee_number: Option<String>,
    /// `department`.
    pub department: Option<String>,
    /// `organization`.
    pub organization: Option<String>,
}

/// A SCIM User.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    /// The service provider's identifier.
    pub id: Option<String>,
    /// The provisioning client's identifier.
    pub external_id: Option<String>,
    /// The sign-in name (required, unique).
    pub user_name: String,
    /// The name's components.
    pub name: Option<Name>,
    /// The name for display.
    pub display_name: Option<String>,
    /// Email addresses.
    pub emails: Vec<Email>,
    /// Whether the account is active (`None` when not given).
    pub active: Option<bool>,
    /// Metadata.
    pub meta: Option<Meta>,
    /// The enterprise extension, when any of its attributes is set.
    pub enterprise: Option<EnterpriseUser>,
}

fn present<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    get_ci(object, name).filter(|value| !value.is_null())
}

fn string(
    object: &Map<String, Value>,
    name: &str,
    path: &str,
) -> Result<Option<String>, ScimError> {
    match present(object, name) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(ScimError::bad_request(
            ScimType::InvalidValue,
            format!("{path} must be a string"),
        )),
    }
}

fn boolean(object: &Map<String, Value>, name: &str, path: &str) -> Result<Option<bool>, ScimError> {
    match present(object, name) {
        None => Ok(None),
        Some(value) => lenient_bool(value).map(Some).ok_or_else(|| {
            ScimError::bad_request(
                ScimType::InvalidValue,
                format!("{path} must be a boolean (true or false)"),
            )
        }),
    }
}

fn object<'a>(
    parent: &'a Map<String, Value>,
    name: &str,
    path: &str,
) -> Result<Option<&'a Map<String, Value>>, ScimError> {
    match present(parent, name) {
        None => Ok(None),
        Some(Value::Object(members)) => Ok(Some(members)),
        Some(_) => Err(ScimError::bad_request(
            ScimType::InvalidValue,
            format!("{path} must be an object"),
        )),
    }
}

fn instant(
    object: &Map<String, Value>,
    name: &str,
    path: &str,
) -> Result<Option<Timestamp>, ScimError> {
    string(object, name, path)?
        .map(|text| {
            text.parse::<Timestamp>().map_err(|error| {
                ScimError::bad_request(
                    ScimType::InvalidValue,
                    format!("{path} must be a date-time such as 2026-01-01T00:00:00Z: {error}"),
                )
            })
        })
        .transpose()
}

impl User {
    /// Reads a User from JSON (lenient; see the module doc). A missing or empty
    /// `userName`, or a value of the wrong type, answers `400 invalidValue`.
    pub fn from_json(value: &Value) -> Result<User, ScimError> {
        let Value::Object(resource) = value else {
            return Err(ScimError::bad_request(
                ScimType::InvalidSyntax,
                "a User must be a JSON object",
            ));
        };
        let user_name = string(resource, "userName", "userName")?
            .filter(|name| !name.trim().is_empty())
            .ok_or_else(|| {
                ScimError::bad_request(ScimType::InvalidValue, "userName is required")
            })?;
        let name = object(resource, "name", "name")?
            .map(|name| -> Result<Name, ScimError> {
                Ok(Name {
                    given_name: string(name, "givenName", "name.givenName")?,
                    family_name: string(name, "familyName", "name.familyName")?,
                    middle_name: string(name, "middleName", "name.middleName")?,
                    formatted: string(name, "formatted", "name.formatted")?,
                })
            })
            .transpose()?;
        let emails = match present(resource, "emails") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .filter(|item| !item.is_null())
                .map(read_email)
                .collect::<Result<Vec<_>, _>>()?,
            Some(single @ Value::Object(_)) => vec![read_email(single)?],
            Some(_) => {
                return Err(ScimError::bad_request(
                    ScimType::InvalidValue,
                    "emails must be a list of objects",
                ));
            }
        };
        let meta = object(resource, "meta", "meta")?
            .map(|meta| -> Result<Meta, ScimError> {
                Ok(Meta {
                    resource_type: string(meta, "resourceType", "meta.resourceType")?
                        .unwrap_or_else(|| "User".into()),
                    created: instant(meta, "created", "meta.created")?,
                    last_modified: instant(meta, "lastModified", "meta.lastModified")?,
                    location: string(meta, "location", "meta.location")?,
                    version: string(meta, "version", "meta.version")?,
                })
            })
            .transpose()?;
        let enterprise = object(resource, ENTERPRISE_USER_SCHEMA, ENTERPRISE_USER_SCHEMA)?
            .map(|ext| -> Result<EnterpriseUser, ScimError> {
                Ok(EnterpriseUser {
                    employee_number: string(ext, "employeeNumber", "employeeNumber")?,
                    department: string(ext, "department", "department")?,
                    organization: string(ext, "organization", "organization")?,
                })
            })
            .transpose()?
            .filter(|ext| ext != &EnterpriseUser::default());
        Ok(User {
            id: string(resource, "id", "id")?,
            external_id: string(resource, "externalId", "externalId")?,
            user_name,
            name,
            display_name: string(resource, "displayName", "displayName")?,
            emails,
            active: boolean(resource, "active", "active")?,
            meta,
            enterprise,
        })
    }

    /// The User as SCIM JSON; absent attributes are left out.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        let mut schemas = vec![json!(USER_SCHEMA)];
        if self.enterprise.is_some() {
            schemas.push(json!(ENTERPRISE_USER_SCHEMA));
        }
        out.insert("schemas".into(), Value::Array(schemas));
        insert_opt(&mut out, "id", self.id.as_deref());
        insert_opt(&mut out, "externalId", self.external_id.as_deref());
        out.insert("userName".into(), json!(self.user_name));
        if let Some(name) = &self.name {
            let mut members = Map::new();
            insert_opt(&mut members, "givenName", name.given_name.as_deref());
            insert_opt(&mut members, "familyName", name.family_name.as_deref());
            insert_opt(&mut members, "middleName", name.middle_name.as_deref());
            insert_opt(&mut members, "formatted", name.formatted.as_deref());
            out.insert("name".into(), Value::Object(members));
        }
        insert_opt(&mut out, "displayName", self.display_name.as_deref());
        if !self.emails.is_empty() {
            let emails = self
                .emails
                .iter()
                .map(|email| {
                    let mut members = Map::new();
                    members.insert("value".into(), json!(email.value));
                    insert_opt(&mut members, "type", email.kind.as_deref());
                    members.insert("primary".into(), json!(email.primary));
                    Value::Object(members)
                })
                .collect();
            out.insert("emails".into(), Value::Array(emails));
        }
        if let Some(active) = self.active {
            out.insert("active".into(), json!(active));
        }
        if let Some(meta) = &self.meta {
            let mut members = Map::new();
            members.insert("resourceType".into(), json!(meta.resource_type));
            let created = meta.created.map(|at| at.to_string());
            insert_opt(&mut members, "created", created.as_deref());
            let last_modified = meta.last_modified.map(|at| at.to_string());
            insert_opt(&mut members, "lastModified", last_modified.as_deref());
            insert_opt(&mut members, "location", meta.location.as_deref());
            insert_opt(&mut members, "version", meta.version.as_deref());
            out.insert("meta".into(), Value::Object(members));
        }
        if let Some(ext) = &self.enterprise {
            let mut members = Map::new();
            insert_opt(
                &mut members,
                "employeeNumber",
                ext.employee_number.as_deref(),
            );
            insert_opt(&mut members, "department", ext.department.as_deref());
            insert_opt(&mut members, "organization", ext.organization.as_deref());
            out.insert(ENTERPRISE_USER_SCHEMA.into(), Value::Object(members));
        }
        Value::Object(out)
    }
}

fn read_email(item: &Value) -> Result<Email, ScimError> {
    let Value::Object(members) = item else {
        return Err(ScimError::bad_request(
            ScimType::InvalidValue,
            "each email must be an object with a value",
        ));
    };
    Ok(Email {
        value: string(members, "value", "emails.value")?.ok_or_else(|| {
            ScimError::bad_request(ScimType::InvalidValue, "emails.value is required")
        })?,
        kind: string(members, "type", "emails.type")?,
        primary: boolean(members, "primary", "emails.primary")?.unwrap_or(false),
    })
}

fn insert_opt(object: &mut Map<String, Value>, key: &str, value: Option<&str>) {
    if let Some(value) = value {
        object.insert(key.into(), json!(value));
    }
}

/// The `attributes` / `excludedAttributes` selection of RFC 7644 §3.9.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Projection {
    /// Neither parameter: the resource as is.
    All,
    /// `attributes`: only these (and the always-returned ones).
    Only(Vec<AttrPath>),
    /// `excludedAttributes`: all but these (the always-returned ones stay).
    Except(Vec<AttrPath>),
}

fn parse_list(text: &str) -> Result<Vec<AttrPath>, ScimError> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(AttrPath::parse)
        .collect()
}

/// The top-level key of `resource` holding `path`'s attribute, and the object it is in:
/// a bare extension URN (`urn:…:enterprise:2.0:User`) names the extension object itself.
enum Target {
    Whole(String),
    Member { holder: Option<String>, key: String },
}

fn target(resource: &Map<String, Value>, path: &AttrPath) -> Option<Target> {
    match path.schema.as_deref() {
        Some(urn) if !schema::is_core_schema(urn) => {
            let whole = format!("{urn}:{}", path.name);
            if path.sub_attribute.is_none()
                && let Some(key) = key_ci(resource, &whole)
            {
                return Some(Target::Whole(key));
            }
            let holder = key_ci(resource, urn)?;
            let key = resource
                .get(&holder)?
                .as_object()
                .and_then(|ext| key_ci(ext, &path.name))?;
            Some(Target::Member {
                holder: Some(holder),
                key,
            })
        }
        _ => Some(Target::Member {
            holder: None,
            key: key_ci(resource, &path.name)?,
        }),
    }
}

impl Projection {
    /// Reads the two query parameters; a malformed name answers `400 invalidPath`.
    pub fn parse(
        attributes: Option<&str>,
        excluded_attributes: Option<&str>,
    ) -> Result<Projection, ScimError> {
        if let Some(list) = attributes
            .map(parse_list)
            .transpose()?
            .filter(|list| !list.is_empty())
        {
            return Ok(Projection::Only(list));
        }
        match excluded_attributes.map(parse_list).transpose()? {
            Some(list) if !list.is_empty() => Ok(Projection::Except(list)),
            _ => Ok(Projection::All),
        }
    }

    /// The resource with the selection applied.
    pub fn apply(&self, resource: &Value) -> Value {
        let Value::Object(source) = resource else {
            return resource.clone();
        };
        match self {
            Self::All => resource.clone(),
            Self::Only(paths) => {
                let mut out = Map::new();
                keep_always(source, &mut out);
                for path in paths {
                    copy(source, &mut out, path);
                }
                prune_empty_elements(&mut out, paths);
                Value::Object(out)
            }
            Self::Except(paths) => {
                let mut out = source.clone();
                for path in paths {
                    if !always_returned(path) {
                        drop_path(&mut out, path);
                    }
                }
                keep_always(source, &mut out);
                Value::Object(out)
            }
        }
    }
}

fn always_returned(path: &AttrPath) -> bool {
    path.definition()
        .is_some_and(|def| def.returned == Returned::Always)
        || (path.schema.is_none() && path.name.eq_ignore_ascii_case("schemas"))
}

fn always_defs() -> impl Iterator<Item = &'static AttributeDef> {
    schema::COMMON_ATTRIBUTES
        .iter()
        .chain(schema::CORE_USER.attributes)
}

/// Copies `schemas` and the always-returned attributes (and sub-attributes) into `out`.
fn keep_always(source: &Map<String, Value>, out: &mut Map<String, Value>) {
    if let Some(key) = key_ci(source, "schemas") {
        out.entry(key.clone())
            .or_insert_with(|| source[&key].clone());
    }
    for def in always_defs() {
        let Some(key) = key_ci(source, def.name) else {
            continue;
        };
        if def.returned == Returned::Always {
            out.insert(key.clone(), source[&key].clone());
            continue;
        }
        let Some(members) = source[&key].as_object() else {
            continue;
        };
        for sub in def
            .sub_attributes
            .iter()
            .filter(|sub| sub.returned == Returned::Always)
        {
            if let Some(sub_key) = key_ci(members, sub.name) {
                let entry = out
                    .entry(key.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(kept) = entry {
                    kept.insert(sub_key.clone(), members[&sub_key].clone());
                }
            }
        }
    }
}

fn copy(source: &Map<String, Value>, out: &mut Map<String, Value>, path: &AttrPath) {
    let (holder, key) = match target(source, path) {
        Some(Target::Whole(key)) => {
            out.insert(key.clone(), source[&key].clone());
            return;
        }
        Some(Target::Member { holder, key }) => (holder, key),
        None => return,
    };
    let (from, into) = match &holder {
        Some(holder) => {
            let Some(from) = source.get(holder).and_then(Value::as_object) else {
                return;
            };
            let entry = out
                .entry(holder.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(into) = entry else { return };
            (from, into)
        }
        None => (source, out),
    };
    let value = &from[&key];
    let Some(sub) = &path.sub_attribute else {
        into.insert(key, value.clone());
        return;
    };
    match value {
        Value::Object(members) => {
            if let Some(sub_key) = key_ci(members, sub) {
                let entry = into.entry(key).or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(kept) = entry {
                    kept.insert(sub_key.clone(), members[&sub_key].clone());
                }
            }
        }
        Value::Array(elements) => {
            let entry = into
                .entry(key)
                .or_insert_with(|| Value::Array(vec![Value::Object(Map::new()); elements.len()]));
            if let Value::Array(kept) = entry {
                for (element, slot) in elements.iter().zip(kept.iter_mut()) {
                    let found = element.as_object().and_then(|members| {
                        key_ci(members, sub)
                            .map(|sub_key| (sub_key.clone(), members[&sub_key].clone()))
                    });
                    if let (Some((sub_key, value)), Value::Object(slot)) = (found, slot) {
                        slot.insert(sub_key, value);
                    }
                }
            }
        }
        _ => {}
    }
}

/// Drops the elements left empty by sub-attribute selections (`emails.value` of an
/// email without a value), once every selection has been copied.
fn prune_empty_elements(out: &mut Map<String, Value>, paths: &[AttrPath]) {
    for path in paths.iter().filter(|path| path.sub_attribute.is_some()) {
        let Some(Target::Member { holder, key }) = target(out, path) else {
            continue;
        };
        let into = match holder {
            Some(holder) => out.get_mut(&holder).and_then(Value::as_object_mut),
            None => Some(&mut *out),
        };
        if let Some(Value::Array(kept)) = into.and_then(|into| into.get_mut(&key)) {
            kept.retain(|slot| slot.as_object().is_none_or(|members| !members.is_empty()));
        }
    }
}

fn drop_path(out: &mut Map<String, Value>, path: &AttrPath) {
    let (holder, key) = match target(out, path) {
        Some(Target::Whole(key)) => {
            out.remove(&key);
            if let Some(Value::Array(schemas)) = out.get_mut("schemas") {
                schemas.retain(|urn| {
                    urn.as_str()
                        .is_none_or(|urn| !urn.eq_ignore_ascii_case(&key))
                });
            }
            return;
        }
        Some(Target::Member { holder, key }) => (holder, key),
        None => return,
    };
    let into = match &holder {
        Some(holder) => match out.get_mut(holder) {
            Some(Value::Object(into)) => into,
            _ => return,
        },
        None => out,
    };
    let Some(sub) = &path.sub_attribute else {
        into.remove(&key);
        return;
    };
    match into.get_mut(&key) {
        Some(Value::Object(members)) => {
            if let Some(sub_key) = key_ci(members, sub) {
                members.remove(&sub_key);
            }
        }
        Some(Value::Array(elements)) => {
            for element in elements.iter_mut() {
                if let Value::Object(members) = element
                    && let Some(sub_key) = key_ci(members, sub)
                {
                    members.remove(&sub_key);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_minimal_user() {
        let user = User::from_json(&json!({"userName": "ann"})).unwrap();
        assert_eq!(user.user_name, "ann");
        assert_eq!(user.active, None);
        assert!(user.emails.is_empty());
    }

    #[test]
    fn requires_user_name() {
        let error = User::from_json(&json!({"displayName": "Ann"})).unwrap_err();
        assert_eq!(error.scim_type, Some(ScimType::InvalidValue));
        assert!(User::from_json(&json!({"userName": ""})).is_err());
        assert!(User::from_json(&json!({"userName": 5})).is_err());
    }

    #[test]
    fn reads_names_in_any_case() {
        let user = User::from_json(&json!({"USERNAME": "ann", "Active": "TRUE"})).unwrap();
        assert_eq!(user.user_name, "ann");
        assert_eq!(user.active, Some(true));
    }

    #[test]
    fn rejects_bad_dates_in_meta() {
        let error = User::from_json(&json!({"userName": "a", "meta": {"created": "yesterday"}}))
            .unwrap_err();
        assert!(error.detail.contains("meta.created"));
    }

    #[test]
    fn projection_parses_lists() {
        assert_eq!(Projection::parse(None, None).unwrap(), Projection::All);
        assert_eq!(
            Projection::parse(Some(" , "), None).unwrap(),
            Projection::All
        );
        assert!(matches!(
            Projection::parse(Some("userName"), Some("emails")).unwrap(),
            Projection::Only(_)
        ));
        let error = Projection::parse(Some("bad name"), None).unwrap_err();
        assert_eq!(error.scim_type, Some(ScimType::InvalidPath));
    }
}
