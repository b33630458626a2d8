//! The store's one integration-test binary: the conformance suite. Every test runs on
//! SQLite and on PostgreSQL (see `harness`), so the two backends cannot drift apart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod harness;

mod apply;
mod backup;
mod bench;
mod config;
mod console;
mod files;
mod held;
mod identities;
mod lifecycle;
mod links;
mod locations;
mod merge;
mod people;
mod person_keys;
mod push;
mod reports;
mod review;
mod roster;
mod runs;
mod schema;
mod scim_resources;
mod scoped;
mod summaries;
mod undo;
mod user_list;
mod users;
