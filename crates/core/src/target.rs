//! A SCIM target's settings (`[[target]]`): where the directory is pushed, which of its
//! accounts, which of their fields, and the safeguards of a push. Parsed with the rest of
//! the settings ([`crate::settings::Config`]) and validated there, once.

use serde::{Deserialize, Serialize};

use crate::directory::{Field, UserType};
use crate::roster::GroupKind;
use crate::settings::{Safeguards, Secret};

/// What a target speaks. Only SCIM 2.0 today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TargetKind {
    #[serde(rename = "scim")]
    Scim,
}

/// Which account field becomes the target's `userName`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserNameFrom {
    /// The email (the username when an account has none): what help desks sign in with.
    #[default]
    Email,
    /// The username (the email when an account has none).
    Username,
}

/// One `[[target]]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub name: String,
    pub kind: TargetKind,
    /// The SCIM base URL (the part before `/Users`).
    pub url: String,
    /// The bearer token: only read from a file being imported; stored encrypted, never
    /// written back out.
    #[serde(default, skip_serializing)]
    pub token: Option<Secret>,
    /// Name of an environment variable holding the token, read at push time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    /// Sources after whose successful sync `rostersync serve` pushes (none: on demand only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub follows: Vec<String>,
    /// The account types pushed (default: every type but guardians).
    #[serde(default = "default_types")]
    pub types: Vec<UserType>,
    /// Only accounts at these locations (none: every location).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<String>,
    /// Only accounts a SIS source links.
    #[serde(default, skip_serializing_if = "is_false")]
    pub linked_only: bool,
    #[serde(default)]
    pub user_name: UserNameFrom,
    /// The fields sent (an allow-list); `grade` and `homeroom` need their attribute below.
    #[serde(default = "default_fields")]
    pub fields: Vec<Field>,
    /// The SCIM attribute the grade goes to (one of [`CONFIGURABLE_ATTRIBUTES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grade_attribute: Option<String>,
    /// The SCIM attribute the homeroom goes to (one of [`CONFIGURABLE_ATTRIBUTES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homeroom_attribute: Option<String>,
    /// The kinds of groups pushed as SCIM Groups with their members (`class`,
    /// `school_role`; none by default).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupKind>,
    /// Deactivate by `DELETE` instead of `active: false` (the target forgets the user).
    #[serde(default, skip_serializing_if = "is_false")]
    pub delete: bool,
    /// A push that would deactivate, create or change too much is held for approval
    /// (shares are of the accounts the target holds active).
    #[serde(default)]
    pub safeguards: Safeguards,
    /// Attempts per request (the first included) on 429, 5xx and network errors; default 6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_attempts: Option<u32>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn default_types() -> Vec<UserType> {
    vec![
        UserType::Student,
        UserType::Faculty,
        UserType::Staff,
        UserType::Other,
    ]
}

fn default_fields() -> Vec<Field> {
    vec![
        Field::Username,
        Field::Email,
        Field::FirstName,
        Field::LastName,
        Field::PreferredName,
        Field::Type,
        Field::Identifier,
        Field::Location,
    ]
}

/// The string attributes a grade or homeroom may be sent as: core attributes no other
/// field uses, and the enterprise extension's free ones.
pub const CONFIGURABLE_ATTRIBUTES: &[&str] = &[
    "title",
    "locale",
    "preferredLanguage",
    "profileUrl",
    "timezone",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:organization",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:division",
];

impl TargetConfig {
    /// Everything wrong with the target alone, in words (the names of sources it follows
    /// are checked by [`crate::settings::Config::validate`]).
    pub fn problem(&self) -> Option<String> {
        let url = self.url.trim();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Some(format!(
                "url = \"{url}\" must be the target's SCIM base URL (https://…/scim/v2)"
            ));
        }
        if url.split_once("://").is_some_and(|(_, rest)| {
            rest.split(['/', '?', '#'])
                .next()
                .is_some_and(|a| a.contains('@'))
        }) {
            return Some("url must not carry a user name or password: give the token as token = \"…\" or token_env".into());
        }
        if self
            .token_env
            .as_deref()
            .is_some_and(|v| v.trim().is_empty())
        {
            return Some(
                "token_env is empty: name the environment variable holding the token".into(),
            );
        }
        if self.types.is_empty() {
            return Some("types is empty: name the account types to push (student, faculty, staff, guardian, other)".into());
        }
        if self.retry_attempts == Some(0) {
            return Some("retry_attempts must be at least 1".into());
        }
        for (field, attribute, key) in [
            (Field::Grade, &self.grade_attribute, "grade_attribute"),
            (
                Field::Homeroom,
                &self.homeroom_attribute,
                "homeroom_attribute",
            ),
        ] {
            match attribute {
                Some(a) if !CONFIGURABLE_ATTRIBUTES.contains(&a.as_str()) => {
                    return Some(format!(
                        "{key} = \"{a}\" is not one of: {}",
                        CONFIGURABLE_ATTRIBUTES.join(", ")
                    ));
                }
                None if self.fields.contains(&field) => {
                    return Some(format!(
                        "fields names {field} but {key} is not set: say which SCIM attribute it goes to ({})",
                        CONFIGURABLE_ATTRIBUTES.join(", ")
                    ));
                }
                _ => {}
            }
        }
        if self.grade_attribute.is_some() && self.grade_attribute == self.homeroom_attribute {
            return Some("grade_attribute and homeroom_attribute are the same attribute".into());
        }
        None
    }

    /// Whether the target is sent this field.
    pub fn sends(&self, f: Field) -> bool {
        match f {
            Field::Grade => self.grade_attribute.is_some(),
            Field::Homeroom => self.homeroom_attribute.is_some(),
            _ => self.fields.contains(&f),
        }
    }
}
