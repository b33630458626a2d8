//! The one attribute table of the User resource (RFC 7643 §3.1 common attributes, §4.1
//! core User, §4.3 enterprise extension), with each attribute's characteristics
//! (RFC 7643 §2.2). The filter evaluator and PATCH read their case and type rules from
//! it, projection reads `returned`, and the discovery `Schemas` document is generated
//! from it, so they cannot disagree.
//!
//! Only the attributes rostersync keeps are listed. Case rules follow RFC 7643: `id`
//! and `externalId` are `caseExact` (§3.1 says so for both), as are `meta.resourceType`,
//! `meta.location` and `meta.version`; every User and enterprise attribute is not.
//! The common attributes (`id`, `externalId`, `meta`) are left out of the `Schemas`
//! document, as §3.1 says they belong to every resource and use no schema URI.

use serde_json::{Map, Value, json};

use crate::filter::AttrPath;

/// The core User schema URN.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The enterprise User extension URN.
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// An attribute's data type (RFC 7643 §2.3), for the types this table uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeType {
    /// A Unicode string.
    String,
    /// `true` or `false`.
    Boolean,
    /// An `xsd:dateTime` instant, e.g. `2026-01-01T00:00:00Z`.
    DateTime,
    /// A URI.
    Reference,
    /// An attribute made of sub-attributes.
    Complex,
}

impl AttributeType {
    /// The type as written in a schema document.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Boolean => "boolean",
            Self::DateTime => "dateTime",
            Self::Reference => "reference",
            Self::Complex => "complex",
        }
    }
}

/// Whether and how clients may change an attribute (RFC 7643 §2.2), for the values used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    /// Set by the service provider; clients never change it.
    ReadOnly,
    /// Clients may change it.
    ReadWrite,
}

impl Mutability {
    /// The value as written in a schema document.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadOnly => "readOnly",
            Self::ReadWrite => "readWrite",
        }
    }
}

/// When an attribute is returned (RFC 7643 §2.2), for the values used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    /// Always, whatever `attributes`/`excludedAttributes` say.
    Always,
    /// By default, unless excluded.
    Default,
}

impl Returned {
    /// The value as written in a schema document.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::Default => "default",
        }
    }
}

/// How unique an attribute's value is (RFC 7643 §2.2), for the values used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uniqueness {
    /// No uniqueness.
    None,
    /// Unique within this service provider.
    Server,
}

impl Uniqueness {
    /// The value as written in a schema document.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Server => "server",
        }
    }
}

/// One attribute and its characteristics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttributeDef {
    /// The attribute's name as the RFC spells it.
    pub name: &'static str,
    /// Its data type.
    pub kind: AttributeType,
    /// Whether it holds a list of values.
    pub multi_valued: bool,
    /// What it is, for the schema document.
    pub description: &'static str,
    /// Whether a resource must have it.
    pub required: bool,
    /// Whether string comparison is case-sensitive.
    pub case_exact: bool,
    /// Whether clients may change it.
    pub mutability: Mutability,
    /// Whether rostersync makes it from other attributes (`displayName` and
    /// `name.formatted`, from the name): read-only, and a client's value for it is
    /// dropped, not refused ([`drop_derived`]).
    pub derived: bool,
    /// When it is returned.
    pub returned: Returned,
    /// How unique its value is.
    pub uniqueness: Uniqueness,
    /// Suggested values (e.g. `work` for `emails.type`).
    pub canonical_values: &'static [&'static str],
    /// For references, what they point at.
    pub reference_types: &'static [&'static str],
    /// For complex attributes, their sub-attributes.
    pub sub_attributes: &'static [AttributeDef],
}

impl AttributeDef {
    /// The sub-attribute named `name`, ignoring case.
    pub fn sub_attribute(&self, name: &str) -> Option<&'static AttributeDef> {
        self.sub_attributes
            .iter()
            .find(|def| def.name.eq_ignore_ascii_case(name))
    }

    /// The attribute as an RFC 7643 §7 schema attribute object.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("name".into(), json!(self.name));
        out.insert("type".into(), json!(self.kind.as_str()));
        out.insert("multiValued".into(), json!(self.multi_valued));
        out.insert("description".into(), json!(self.description));
        out.insert("required".into(), json!(self.required));
        if self.kind != AttributeType::Complex {
            out.insert("caseExact".into(), json!(self.case_exact));
        }
        if !self.canonical_values.is_empty() {
            out.insert("canonicalValues".into(), json!(self.canonical_values));
        }
        if self.kind == AttributeType::Reference {
            out.insert("referenceTypes".into(), json!(self.reference_types));
        }
        out.insert("mutability".into(), json!(self.mutability.as_str()));
        out.insert("returned".into(), json!(self.returned.as_str()));
        out.insert("uniqueness".into(), json!(self.uniqueness.as_str()));
        if self.kind == AttributeType::Complex {
            let subs: Vec<Value> = self.sub_attributes.iter().map(Self::to_json).collect();
            out.insert("subAttributes".into(), Value::Array(subs));
        }
        Value::Object(out)
    }
}

/// A schema: its URN, name, description and attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaDef {
    /// The schema URN.
    pub id: &'static str,
    /// A short name.
    pub name: &'static str,
    /// What it describes.
    pub description: &'static str,
    /// Its attributes.
    pub attributes: &'static [AttributeDef],
}

impl SchemaDef {
    /// The attribute named `name`, ignoring case.
    pub fn attribute(&self, name: &str) -> Option<&'static AttributeDef> {
        self.attributes
            .iter()
            .find(|def| def.name.eq_ignore_ascii_case(name))
    }
}

const fn attr(name: &'static str, kind: AttributeType, description: &'static str) -> AttributeDef {
    AttributeDef {
        name,
        kind,
        multi_valued: false,
        description,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        derived: false,
        returned: Returned::Default,
        uniqueness: Uniqueness::None,
        canonical_values: &[],
        reference_types: &[],
        sub_attributes: &[],
    }
}

const fn read_only(def: AttributeDef) -> AttributeDef {
    AttributeDef {
        mutability: Mutability::ReadOnly,
        case_exact: true,
        ..def
    }
}

const META_SUB_ATTRIBUTES: &[AttributeDef] = &[
    AttributeDef {
        returned: Returned::Always,
        ..read_only(attr(
            "resourceType",
            AttributeType::String,
            "The name of the resource type of the resource.",
        ))
    },
    AttributeDef {
        case_exact: false,
        ..read_only(attr(
            "created",
            AttributeType::DateTime,
            "When the resource was added to the service provider.",
        ))
    },
    AttributeDef {
        case_exact: false,
        ..read_only(attr(
            "lastModified",
            AttributeType::DateTime,
            "When the resource was last changed.",
        ))
    },
    AttributeDef {
        reference_types: &["uri"],
        ..read_only(attr(
            "location",
            AttributeType::Reference,
            "The URI of the resource.",
        ))
    },
    read_only(attr(
        "version",
        AttributeType::String,
        "The version of the resource, the same as its weak entity tag.",
    )),
];

/// The common attributes of every resource (RFC 7643 §3.1).
pub const COMMON_ATTRIBUTES: &[AttributeDef] = &[
    AttributeDef {
        returned: Returned::Always,
        uniqueness: Uniqueness::Server,
        ..read_only(attr(
            "id",
            AttributeType::String,
            "Unique identifier of the resource, assigned by the service provider.",
        ))
    },
    AttributeDef {
        case_exact: true,
        ..attr(
            "externalId",
            AttributeType::String,
            "Identifier of the resource assigned by the provisioning client.",
        )
    },
    AttributeDef {
        sub_attributes: META_SUB_ATTRIBUTES,
        case_exact: false,
        ..read_only(attr("meta", AttributeType::Complex, "Resource metadata."))
    },
];

/// An attribute rostersync derives (from the name it keeps) and never takes from a client.
const fn derived(def: AttributeDef) -> AttributeDef {
    AttributeDef {
        mutability: Mutability::ReadOnly,
        derived: true,
        ..def
    }
}

const NAME_SUB_ATTRIBUTES: &[AttributeDef] = &[
    derived(attr(
        "formatted",
        AttributeType::String,
        "The full name, formatted for display (read-only: made from the parts).",
    )),
    attr(
        "familyName",
        AttributeType::String,
        "The family name, or last name.",
    ),
    attr(
        "givenName",
        AttributeType::String,
        "The given name, or first name.",
    ),
    attr("middleName", AttributeType::String, "The middle name."),
];

const EMAIL_SUB_ATTRIBUTES: &[AttributeDef] = &[
    attr("value", AttributeType::String, "The email address."),
    AttributeDef {
        canonical_values: &["work", "home", "other"],
        ..attr(
            "type",
            AttributeType::String,
            "The kind of address, e.g. 'work'.",
        )
    },
    attr(
        "primary",
        AttributeType::Boolean,
        "Whether this is the user's primary address.",
    ),
];

/// The core User schema as rostersync keeps it (RFC 7643 §4.1).
pub const CORE_USER: SchemaDef = SchemaDef {
    id: USER_SCHEMA,
    name: "User",
    description: "User Account",
    attributes: &[
        AttributeDef {
            required: true,
            uniqueness: Uniqueness::Server,
            ..attr(
                "userName",
                AttributeType::String,
                "Unique identifier the user signs in with.",
            )
        },
        AttributeDef {
            sub_attributes: NAME_SUB_ATTRIBUTES,
            ..attr(
                "name",
                AttributeType::Complex,
                "The components of the user's name.",
            )
        },
        derived(attr(
            "displayName",
            AttributeType::String,
            "The name of the user, for display (read-only: made from the name).",
        )),
        AttributeDef {
            multi_valued: true,
            sub_attributes: EMAIL_SUB_ATTRIBUTES,
            ..attr(
                "emails",
                AttributeType::Complex,
                "Email addresses of the user.",
            )
        },
        attr(
            "active",
            AttributeType::Boolean,
            "Whether the user's account is active.",
        ),
    ],
};

/// The enterprise User extension as rostersync keeps it (RFC 7643 §4.3).
pub const ENTERPRISE_USER: SchemaDef = SchemaDef {
    id: ENTERPRISE_USER_SCHEMA,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attributes: &[attr(
        "employeeNumber",
        AttributeType::String,
        "Identifier of the user in the organization, e.g. a student or staff number.",
    )],
};

/// The schema extensions a User may carry, as objects under their URN.
pub const USER_EXTENSIONS: &[SchemaDef] = &[ENTERPRISE_USER];

/// Whether `urn` names the core User schema, ignoring case.
pub fn is_core_schema(urn: &str) -> bool {
    urn.eq_ignore_ascii_case(USER_SCHEMA)
}

/// The User extension named `urn`, ignoring case.
pub fn extension(urn: &str) -> Option<&'static SchemaDef> {
    USER_EXTENSIONS
        .iter()
        .find(|schema| schema.id.eq_ignore_ascii_case(urn))
}

/// The top-level attribute `name` of the schema `schema` (none or the core URN: the
/// common and core User attributes; an extension URN: that extension's).
pub fn find(schema: Option<&str>, name: &str) -> Option<&'static AttributeDef> {
    match schema {
        Some(urn) if !is_core_schema(urn) => extension(urn)?.attribute(name),
        _ => COMMON_ATTRIBUTES
            .iter()
            .find(|def| def.name.eq_ignore_ascii_case(name))
            .or_else(|| CORE_USER.attribute(name)),
    }
}

/// Whether the attribute path `path` (`displayName`, `name.formatted`, in any case, with
/// or without the core schema URN) names a derived attribute; a path that does not parse
/// names none.
pub fn is_derived(path: &str) -> bool {
    let Ok(path) = AttrPath::parse(path) else {
        return false;
    };
    let Some(def) = find(path.schema.as_deref(), &path.name) else {
        return false;
    };
    match &path.sub_attribute {
        None => def.derived,
        Some(sub) => def.sub_attribute(sub).is_some_and(|sub| sub.derived),
    }
}

/// Drops the derived attributes from `members` — a resource, or a PATCH value without a
/// path (whose keys may be dotted or URN-prefixed): keys that name one
/// ([`is_derived`]), and derived sub-attributes of the complex values left.
pub fn drop_derived(members: &mut Map<String, Value>) {
    members.retain(|key, _| !is_derived(key));
    for (key, value) in members.iter_mut() {
        let (Value::Object(subs), Ok(path)) = (value, AttrPath::parse(key)) else {
            continue;
        };
        if path.sub_attribute.is_some() {
            continue;
        }
        if let Some(def) = find(path.schema.as_deref(), &path.name) {
            subs.retain(|sub, _| def.sub_attribute(sub).is_none_or(|sub| !sub.derived));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_attributes_ignoring_case_and_core_prefix() {
        assert_eq!(find(None, "USERNAME").map(|d| d.name), Some("userName"));
        assert_eq!(
            find(Some(USER_SCHEMA), "emails").map(|d| d.name),
            Some("emails")
        );
        assert_eq!(
            find(Some(ENTERPRISE_USER_SCHEMA), "employeenumber").map(|d| d.name),
            Some("employeeNumber")
        );
        assert!(find(Some("urn:example:unknown"), "x").is_none());
        assert!(find(None, "employeeNumber").is_none());
    }

    #[test]
    fn case_rules_follow_rfc_7643() {
        let case_exact = |name: &str| find(None, name).map(|d| d.case_exact);
        assert_eq!(case_exact("id"), Some(true));
        assert_eq!(case_exact("externalId"), Some(true));
        assert_eq!(case_exact("userName"), Some(false));
        let meta = find(None, "meta").unwrap();
        assert!(meta.sub_attribute("version").unwrap().case_exact);
        assert!(
            !find(None, "name")
                .unwrap()
                .sub_attribute("givenName")
                .unwrap()
                .case_exact
        );
    }

    #[test]
    fn schema_attribute_json_has_the_characteristics() {
        let user_name = find(None, "userName").unwrap().to_json();
        assert_eq!(user_name["uniqueness"], "server");
        assert_eq!(user_name["required"], true);
        assert_eq!(user_name["caseExact"], false);
        let emails = find(None, "emails").unwrap().to_json();
        assert_eq!(emails["multiValued"], true);
        assert_eq!(emails["subAttributes"].as_array().unwrap().len(), 3);
        assert!(emails.get("caseExact").is_none());
    }

    #[test]
    fn derived_attributes_are_the_name_made_ones() {
        assert!(is_derived("displayName"));
        assert!(is_derived("NAME.FORMATTED"));
        assert!(is_derived(&format!("{USER_SCHEMA}:displayName")));
        assert!(!is_derived("name.givenName"));
        assert!(!is_derived("id"), "read-only, but not derived");
        assert!(!is_derived("not a path"));
        let mut resource = json!({
            "userName": "ann",
            "displayName": "Ann Li",
            "name": {"givenName": "Ann", "Formatted": "Ann Li"},
            "name.formatted": "Ann Li",
        });
        drop_derived(resource.as_object_mut().unwrap());
        assert_eq!(
            resource,
            json!({"userName": "ann", "name": {"givenName": "Ann"}})
        );
    }
}
