//! The one integration-test binary of the `oneroster` crate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod csv_bad_input;
mod csv_package;
mod findings;
mod proptests;
mod rest;
