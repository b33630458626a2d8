//! SCIM 2.0 (RFC 7643 and RFC 7644) as data, with no server and no database: the User
//! resource (core schema and the enterprise extension), filters, PATCH, list answers and
//! errors. The `/scim/v2` endpoint and the push client share it.
//!
//! - [`schema`]: the one attribute table (types, case rules, mutability, …);
//! - [`filter`]: the filter language and PATCH paths, parsed and evaluated;
//! - [`patch`]: PATCH requests applied to a resource as JSON;
//! - [`user`]: the typed User and `attributes`/`excludedAttributes` projection;
//! - [`list`]: `ListResponse` and paging parameters;
//! - [`discovery`]: `ServiceProviderConfig`, `ResourceTypes` and `Schemas`;
//! - [`request`]: the requests the push client sends a target;
//! - [`error`]: SCIM error answers.

pub mod discovery;
pub mod error;
pub mod filter;
mod json;
pub mod list;
pub mod patch;
pub mod request;
pub mod schema;
pub mod user;

pub use error::{ScimError, ScimType};
pub use filter::{AttrPath, CompareOp, Filter, Path};
pub use list::{ListResponse, Page};
pub use patch::{Derived, PatchOp, PatchOperation, PatchRequest, apply};
pub use request::{Method, Request};
pub use user::{Email, EnterpriseUser, Meta, Name, Projection, User};
