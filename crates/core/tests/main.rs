//! The one integration-test binary of the core crate: the planner, scenario by scenario
//! and by property.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod identities;
mod planner;
mod policies;
mod properties;
mod push;
mod safeguards;
mod scoped;
