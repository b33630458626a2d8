//! The requests the push client sends a SCIM target (RFC 7644 §3), as data: [`Request`]
//! holds the method, the path under the target's base URL (`/Users/{id}`, query
//! included, percent-encoded) and the JSON body. A dry run prints them (as JSON, or as
//! one line with [`std::fmt::Display`]); the `idp` crate's SCIM target sends them.

use std::fmt;

use serde::Serialize;
use serde_json::{Value, json};

use crate::patch::PATCH_OP_SCHEMA;

/// The path of the Users endpoint under a target's base URL.
pub const USERS_PATH: &str = "/Users";
/// The Groups endpoint, under the base URL.
pub const GROUPS_PATH: &str = "/Groups";

/// An HTTP method of the SCIM protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    /// The method as HTTP spells it (`"POST"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One request to a SCIM target: serialised as
/// `{"method":"POST","path":"/Users","body":{…}}` (no `body` member when there is none).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Request {
    pub method: Method,
    /// The path under the target's base URL, starting with `/`, percent-encoded, with
    /// its query if any.
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

impl Request {
    /// `POST /Users`: creates the User `resource`.
    pub fn create(resource: Value) -> Request {
        Request {
            method: Method::Post,
            path: USERS_PATH.to_owned(),
            body: Some(resource),
        }
    }

    /// `PUT /Users/{id}`: replaces the User `id` with `resource`.
    pub fn replace(id: &str, resource: Value) -> Request {
        Request {
            method: Method::Put,
            path: user_path(id),
            body: Some(resource),
        }
    }

    /// `PATCH /Users/{id}`: applies `operations` (the `Operations` array) to the User `id`,
    /// sent as a PatchOp message.
    pub fn patch(id: &str, operations: Value) -> Request {
        Request {
            method: Method::Patch,
            path: user_path(id),
            body: Some(json!({
                "schemas": [PATCH_OP_SCHEMA],
                "Operations": operations,
            })),
        }
    }

    /// `DELETE /Users/{id}`.
    pub fn delete(id: &str) -> Request {
        Request {
            method: Method::Delete,
            path: user_path(id),
            body: None,
        }
    }

    /// `GET /Users?filter=…`: the Users whose `attribute` (a path such as `userName`,
    /// `emails.value` or an extension's URN-prefixed attribute, written as given) equals
    /// `value`. The value is written as a JSON string (RFC 7644 §3.4.2.2: quotes and
    /// backslashes escaped), and the whole filter percent-encoded in the query.
    pub fn find_eq(attribute: &str, value: &str) -> Request {
        let filter = format!("{attribute} eq {}", Value::from(value));
        Request {
            method: Method::Get,
            path: format!("{USERS_PATH}?filter={}", percent_encode(&filter)),
            body: None,
        }
    }
}

/// The same requests for Groups (`/Groups`): a target's class and school groups.
impl Request {
    /// `POST /Groups`: creates the Group `resource`.
    pub fn create_group(resource: Value) -> Request {
        Request {
            path: GROUPS_PATH.to_owned(),
            ..Request::create(resource)
        }
    }

    /// `PATCH /Groups/{id}`.
    pub fn patch_group(id: &str, operations: Value) -> Request {
        Request {
            path: format!("{GROUPS_PATH}/{}", percent_encode(id)),
            ..Request::patch(id, operations)
        }
    }

    /// `DELETE /Groups/{id}`.
    pub fn delete_group(id: &str) -> Request {
        Request {
            path: format!("{GROUPS_PATH}/{}", percent_encode(id)),
            ..Request::delete(id)
        }
    }

    /// `GET /Groups?filter=…`, as [`Request::find_eq`].
    pub fn find_group_eq(attribute: &str, value: &str) -> Request {
        let users = Request::find_eq(attribute, value);
        Request {
            path: users.path.replacen(USERS_PATH, GROUPS_PATH, 1),
            ..users
        }
    }
}

/// One line: `POST /Users {"userName":…}`, the body as compact JSON, left out when none.
impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)?;
        if let Some(body) = &self.body {
            write!(f, " {body}")?;
        }
        Ok(())
    }
}

/// `/Users/{id}`, the id percent-encoded.
fn user_path(id: &str) -> String {
    format!("{USERS_PATH}/{}", percent_encode(id))
}

/// `text` with every byte but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`)
/// percent-encoded: safe in a path segment and in a query value.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
