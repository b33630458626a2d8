//! Any bytes, as a page (and a single object) of every record type: records or an error,
//! never a panic, never a record without its `sourcedId`, and never a page lost to one
//! field's value.
//!
//! The last check is the lenient reader's promise: when the bytes are valid JSON, the
//! only type errors a page may end with are about the page's or a record's shape, or a
//! missing `sourcedId`; an odd value in a known field must become a warning.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oneroster::json::{parse_page, parse_single};
use oneroster::{AcademicSession, Class, Course, Demographic, Enrollment, Org, Record, User};
use serde_json::error::Category;

/// Type errors about the page or a record as a whole, which fail the page by design.
const SHAPE_ERRORS: &[&str] = &[
    "without a sourcedId",
    "expected a OneRoster",
    "expected a JSON object with",
    "expected a sequence",
];

fn check<T: Record + for<'de> serde::Deserialize<'de>>(data: &[u8]) {
    match parse_page::<T>(data) {
        Ok(page) => {
            for r in &page.records {
                assert!(
                    !r.sourced_id().is_empty(),
                    "a {} without a sourcedId",
                    T::COLLECTION
                );
            }
        }
        Err(e) if e.classify() == Category::Data => {
            let msg = e.to_string();
            assert!(
                SHAPE_ERRORS.iter().any(|s| msg.contains(s)),
                "a {} page failed on a field value: {msg}",
                T::COLLECTION
            );
        }
        Err(_) => {}
    }
    if let Ok(r) = parse_single::<T>(data) {
        assert!(
            !r.sourced_id().is_empty(),
            "a single {} without a sourcedId",
            T::COLLECTION
        );
    }
}

fuzz_target!(|data: &[u8]| {
    check::<User>(data);
    check::<Org>(data);
    check::<AcademicSession>(data);
    check::<Course>(data);
    check::<Class>(data);
    check::<Enrollment>(data);
    check::<Demographic>(data);
});
