//! The simulator's integration tests: one binary, one module per feature.
// Helpers outside `#[test]` functions panic on purpose too: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sim;
