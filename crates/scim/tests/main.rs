//! The scim crate's one integration-test binary: filters, PATCH, the User and its
//! projection, discovery and list documents, and what real identity providers send.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod discovery;
mod filter;
mod idp_quirks;
mod patch;
mod request;
mod user;
