//! The engine's one integration-test binary: its public API driven directly (no CLI, no
//! server) on the repository's CSV fixtures, against a real store on SQLite and on
//! PostgreSQL, with a [`engine::ManualClock`] so run times are known.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    clippy::print_stdout
)]

mod harness;

mod account_runs;
mod csv_runs;
mod pushes;
mod scim_writes;
