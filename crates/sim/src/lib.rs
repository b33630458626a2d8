//! `sim`: a OneRoster provider simulator.
//!
//! Nothing public gives a realistic school district to sync against, and every later
//! capability of rostersync (the demo, end-to-end and fault tests, benchmarks at a million
//! students) needs one. This crate builds a seeded, deterministic synthetic district of any
//! size ([`District`]), lets it live day by day (churn, school-year rollover), serves it
//! over the OneRoster REST API the way Infinite Campus does ([`Server`]), exports it as a
//! OneRoster CSV zip ([`export_csv`]) and reports what changed between two days ([`diff`]).
//! Beside the district it holds stand-ins of the services around rostersync: the identity
//! providers' APIs ([`idp`]) and a help desk that receives SCIM pushes ([`helpdesk`]).
//!
//! The district is held as a compact model (integers and interned names); JSON and CSV are
//! encoded a page or a row at a time, so a three-million-person district serves in bounded
//! memory. See `docs/sim.md` for the district's shape, the churn calendar and the faults.

mod calendar;
mod churn;
pub mod cli;
mod csv_export;
mod diff;
mod error;
mod generate;
pub mod helpdesk;
pub mod idp;
mod model;
mod names;
mod records;
mod rng;
mod server;
mod serving;
mod stats;

pub use calendar::{
    EPOCH, FIRST_ROLLOVER_DAY, FIRST_SCHOOL_YEAR, KINDERGARTEN_EMAIL_CHANGE_DAY, ROLLOVER_INTERVAL,
    SCHOOL_RENAME_DAY, end_of_day, is_rollover_day, timestamp_of,
};
pub use csv_export::{
    ACADEMIC_SESSIONS_HEADER, CLASSES_HEADER, COURSES_HEADER, ENROLLMENTS_HEADER, ExportOptions,
    ExportSummary, ORGS_HEADER, ROLES_HEADER, USERS_HEADER_V1P1, USERS_HEADER_V1P2, export_csv,
};
pub use diff::{ChangedIds, Changes, Diff, DiffCounts, diff, diff_days};
pub use error::SimError;
pub use model::{District, DistrictConfig, MAX_USERS, MIN_USERS, Role, Shape};
pub use records::{Collection, Version};
pub use server::faults::HANG;
pub use server::{
    AuthMode, DEFAULT_APP_NAME, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_PAGE_SIZE,
    DEFAULT_TOKEN_TTL, Faults, RunningSim, Server, SimConfig,
};
pub use stats::Counts;
