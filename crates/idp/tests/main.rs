//! The readers against the simulator's stand-ins of the providers' APIs (`sim::idp`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod entra;
mod google;
mod scim_target;
