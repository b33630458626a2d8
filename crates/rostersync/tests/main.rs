//! The CLI end to end, as an admin types it: the built binary against real SQLite and
//! real PostgreSQL, CSV packages and the simulated district over REST.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod account_settings;
mod account_sync;
mod backup;
mod bad_input;
mod bench;
mod console;
mod doctor;
mod errors;
mod hardening;
mod harness;
mod identities;
mod inspect;
mod manual_links;
mod policies;
mod push;
mod safeguards;
mod sync;
mod user_list;
