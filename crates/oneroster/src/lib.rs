//! The OneRoster wire protocol, as real servers speak it.
//!
//! This crate knows OneRoster and nothing else: no database, no sync rules. It reads a
//! district's roster from a REST server (1.1 or 1.2, OAuth 1.0a or 2) or a CSV package
//! (zip or folder) and hands every record to the caller in one normalised, lenient shape
//! ([`model`]), with a completeness report per collection.

pub mod csv;
mod ids;
pub mod inspect;
pub mod json;
pub mod lenient;
pub mod model;
pub mod net;
pub mod oauth1;
pub mod report;
pub mod rest;
pub mod source;
pub mod status;

pub use model::*;
