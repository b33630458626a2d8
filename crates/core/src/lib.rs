//! The sync rules, pure: no I/O, no clock, no database — functions from data to data
//! (the time is an argument), so the hard logic is tested without a server. The `store`
//! persists what this crate decides; the `engine` fetches, plans ([`planner::intake`], then
//! [`planner::Intake::plan`] on the part of the directory it names) and applies; the
//! `server` and the CLI show what it computes.
//!
//! - The model: [`directory`] (accounts, field ownership, links), [`sis`] (a SIS person as
//!   the rules read one), [`roster`] (schools, classes, enrollments, compact), [`view`]
//!   (the part of the directory a plan reads) and [`settings`] (the validated district
//!   configuration).
//! - Deciding: [`planner`] turns a snapshot and the directory into a [`plan::Plan`] ([`accounts`]
//!   does for an account source's read of an identity provider), [`guard`]
//!   holds a plan that changes too much at once, and [`memory`] is the reference meaning
//!   of applying one, the oracle the tests and the stores are checked against.
//! - Around the sync: [`schedule`] (when a source syncs by itself), [`reports`] (the
//!   unlinked and duplicates judgements), [`relocation`] (what a change of location
//!   mappings would move, before it is saved) and [`user_list`] (the users list's
//!   matching, sorting and saved views).

pub mod accounts;
pub mod directory;
pub mod guard;
mod hash_index;
mod instant;
pub mod memory;
pub mod plan;
pub mod planner;
pub mod push;
pub mod relocation;
pub mod reports;
pub mod roster;
pub mod schedule;
pub mod settings;
pub mod sis;
pub mod target;
mod texts;
pub mod user_list;
pub mod view;
