//! The sync rules, pure: the directory model, settings, the SIS person, correlation and
//! planning. No I/O, no clock, no database: functions from data to data, so the hard
//! logic is tested without a server. The `store` persists what this crate decides; the
//! `engine` fetches, calls [`plan::plan`], and applies.

pub mod directory;
pub mod guard;
pub mod memory;
pub mod plan;
pub mod planner;
pub mod relocation;
pub mod reports;
pub mod roster;
pub mod schedule;
pub mod settings;
pub mod sis;
pub mod user_list;
pub mod view;
