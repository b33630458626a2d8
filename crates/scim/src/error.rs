//! SCIM errors (RFC 7644 §3.12): [`ScimError`] carries the HTTP status, the optional
//! [`ScimType`] detail code and a human-readable detail, and renders itself as the
//! RFC's error message (`urn:ietf:params:scim:api:messages:2.0:Error`, with `status` as
//! a string, as the RFC's examples and Microsoft Entra ID expect).

use serde_json::{Value, json};

/// The schema URN of a SCIM error message.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// The `scimType` detail codes of RFC 7644 §3.12 (table 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    /// The filter syntax was invalid or the filter is not supported.
    InvalidFilter,
    /// The filter yields more results than the server will answer with.
    TooMany,
    /// A value is already in use by another resource (e.g. `userName`).
    Uniqueness,
    /// The change is not compatible with the attribute's mutability (or its required-ness).
    Mutability,
    /// The request body was not a valid SCIM message.
    InvalidSyntax,
    /// A PATCH `path` was malformed.
    InvalidPath,
    /// A PATCH `path` matched nothing (or was missing where one is needed).
    NoTarget,
    /// A value was missing or of the wrong type.
    InvalidValue,
    /// The protocol version is not supported.
    InvalidVers,
    /// The request carried sensitive data in the URL, or asked for something forbidden.
    Sensitive,
}

impl ScimType {
    /// The code as written in the `scimType` member (`"invalidFilter"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidFilter => "invalidFilter",
            Self::TooMany => "tooMany",
            Self::Uniqueness => "uniqueness",
            Self::Mutability => "mutability",
            Self::InvalidSyntax => "invalidSyntax",
            Self::InvalidPath => "invalidPath",
            Self::NoTarget => "noTarget",
            Self::InvalidValue => "invalidValue",
            Self::InvalidVers => "invalidVers",
            Self::Sensitive => "sensitive",
        }
    }
}

/// A SCIM error answer: HTTP status, optional `scimType` and detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SCIM error {status}: {detail}")]
pub struct ScimError {
    /// The HTTP status code of the answer.
    pub status: u16,
    /// The RFC 7644 §3.12 detail code, given with most 400 answers.
    pub scim_type: Option<ScimType>,
    /// What went wrong, for a human.
    pub detail: String,
}

impl ScimError {
    /// An error with any status.
    pub fn new(status: u16, scim_type: Option<ScimType>, detail: impl Into<String>) -> Self {
        Self {
            status,
            scim_type,
            detail: detail.into(),
        }
    }

    /// A 400 answer with a `scimType`.
    pub fn bad_request(scim_type: ScimType, detail: impl Into<String>) -> Self {
        Self::new(400, Some(scim_type), detail)
    }

    /// A 404 answer: the resource does not exist.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, None, detail)
    }

    /// A 409 answer with `scimType: uniqueness`: the value is taken.
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(409, Some(ScimType::Uniqueness), detail)
    }

    /// A 412 answer: the `If-Match` version is not the resource's current one.
    pub fn precondition_failed(detail: impl Into<String>) -> Self {
        Self::new(412, None, detail)
    }

    /// The error in the RFC's JSON shape, `status` as a string.
    pub fn to_json(&self) -> Value {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let (Some(scim_type), Value::Object(map)) = (self.scim_type, &mut body) {
            map.insert("scimType".into(), Value::from(scim_type.as_str()));
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_status_as_string_with_scim_type() {
        let error = ScimError::bad_request(ScimType::InvalidFilter, "bad");
        assert_eq!(
            error.to_json(),
            json!({
                "schemas": [ERROR_SCHEMA],
                "status": "400",
                "scimType": "invalidFilter",
                "detail": "bad",
            })
        );
    }

    #[test]
    fn leaves_out_scim_type_when_absent() {
        let body = ScimError::not_found("no such user").to_json();
        assert_eq!(body["status"], "404");
        assert!(body.get("scimType").is_none());
    }

    #[test]
    fn names_every_code_as_the_rfc_spells_it() {
        let codes = [
            (ScimType::InvalidFilter, "invalidFilter"),
            (ScimType::TooMany, "tooMany"),
            (ScimType::Uniqueness, "uniqueness"),
            (ScimType::Mutability, "mutability"),
            (ScimType::InvalidSyntax, "invalidSyntax"),
            (ScimType::InvalidPath, "invalidPath"),
            (ScimType::NoTarget, "noTarget"),
            (ScimType::InvalidValue, "invalidValue"),
            (ScimType::InvalidVers, "invalidVers"),
            (ScimType::Sensitive, "sensitive"),
        ];
        for (code, text) in codes {
            assert_eq!(code.as_str(), text);
        }
        assert_eq!(ScimError::uniqueness("taken").status, 409);
        assert_eq!(ScimError::precondition_failed("stale").status, 412);
    }
}
