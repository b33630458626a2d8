//! Lenient JSON decoding of OneRoster records and pages.
//!
//! Hand-written visitors rather than `#[derive(Deserialize)]`: a derive cannot keep unknown
//! fields without `#[serde(flatten)]` (which buffers every record and costs several times
//! the parse), and it fails the whole page on one odd value. Here every known field goes
//! through a forgiving reader that records a warning instead, unknown fields are kept as
//! raw JSON, and keys are matched without allocating.

mod page;
mod record;
#[cfg(test)]
mod tests;
mod value;

pub use page::{Page, envelope_keys, parse_page, parse_page_of, parse_single};
