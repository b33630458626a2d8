//! Accounts where they live: readers of the identity providers districts sign in with,
//! Google Workspace (Admin SDK Directory API, [`google`]) and Microsoft Entra ID
//! (Microsoft Graph, [`entra`]), and the client that pushes accounts to help desks over
//! SCIM 2.0 ([`scim_target`]). Each read returns the provider's accounts as
//! [`IdpAccount`]s in an [`AccountRead`] that says whether it was complete; each push
//! request is a [`scim::Request`] the target answers. What the directory reads or pushes
//! is the sync rules' business, not this crate's.
//!
//! Like the `oneroster` crate: no database, no sync rules; requests reach only the
//! addresses an [`oneroster::net::AddressPolicy`] allows, retry 429 and 5xx answers
//! honouring `Retry-After` ([`http`]), and errors say which setting to fix.

pub mod entra;
pub mod google;
pub mod http;
mod jwt;
mod model;
pub mod scim_target;

pub use model::{AccountRead, IdpAccount, IdpError, Provider};
