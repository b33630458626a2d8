//! The server's one integration-test binary: authorisation over every route, the API on
//! SQLite and PostgreSQL, secrets and escaping, the scheduler on a moved clock, the
//! OpenAPI document against the router, the hard cases (held runs, undo, review, merges,
//! reports), sign-in under attack, messages after a redirect, and a real browser (Debian
//! chromium).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    clippy::print_stdout
)]

mod harness;

mod access;
mod account_sources;
mod api;
mod browser;
mod browser_runs;
mod credentials;
mod escaping;
mod flash;
mod hard_cases;
mod hardening;
mod identities;
mod keep_apart_walk;
mod openapi;
mod overview;
mod overview_browser;
mod people;
mod pushes;
mod run_clock;
mod run_pages;
mod scheduler;
mod scim;
mod secrets;
mod sign_in;
mod sign_out;
mod user_list;
mod user_list_walk;
mod validate_browser;
