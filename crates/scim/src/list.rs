//! List answers (RFC 7644 §3.4.2): the `ListResponse` message and the `startIndex` /
//! `count` paging parameters ([`Page`]). Per §3.4.2.4, `startIndex` is 1-based and a
//! value below 1 means 1; a negative `count` means 0; *decision*: a missing `count`, or
//! one above the caller's maximum page size, means that maximum, and a value that is not
//! an integer answers `400 invalidValue`.

use serde_json::{Value, json};

use crate::error::{ScimError, ScimType};

/// The schema URN of a list answer.
pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// A requested page: 1-based start index and page size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// The 1-based index of the first result.
    pub start_index: usize,
    /// How many results at most.
    pub count: usize,
}

fn integer(name: &str, text: &str) -> Result<i64, ScimError> {
    text.trim().parse::<i64>().map_err(|_| {
        ScimError::bad_request(
            ScimType::InvalidValue,
            format!("{name} must be an integer, got \"{text}\""),
        )
    })
}

impl Page {
    /// Reads the query values; `max_count` is the largest page the server answers.
    pub fn parse(
        start_index: Option<&str>,
        count: Option<&str>,
        max_count: usize,
    ) -> Result<Page, ScimError> {
        let start_index = match start_index {
            Some(text) => {
                usize::try_from(integer("startIndex", text)?.max(1)).unwrap_or(usize::MAX)
            }
            None => 1,
        };
        let count = match count {
            Some(text) => usize::try_from(integer("count", text)?.max(0))
                .unwrap_or(usize::MAX)
                .min(max_count),
            None => max_count,
        };
        Ok(Page { start_index, count })
    }

    /// The 0-based offset of the first result.
    pub fn offset(&self) -> usize {
        self.start_index - 1
    }

    /// This page of `items`.
    pub fn slice<'a, T>(&self, items: &'a [T]) -> &'a [T] {
        let start = self.offset().min(items.len());
        let end = start.saturating_add(self.count).min(items.len());
        &items[start..end]
    }
}

/// A `ListResponse`.
#[derive(Debug, Clone, PartialEq)]
pub struct ListResponse {
    /// How many resources match in all.
    pub total_results: usize,
    /// The 1-based index of the first resource here.
    pub start_index: usize,
    /// The resources on this page.
    pub resources: Vec<Value>,
}

impl ListResponse {
    /// The answer for `page`, given the total and this page's resources.
    pub fn new(total_results: usize, page: &Page, resources: Vec<Value>) -> ListResponse {
        ListResponse {
            total_results,
            start_index: page.start_index,
            resources,
        }
    }

    /// The message as JSON; `itemsPerPage` is the number of resources on the page.
    pub fn to_json(&self) -> Value {
        json!({
            "schemas": [LIST_RESPONSE_SCHEMA],
            "totalResults": self.total_results,
            "startIndex": self.start_index,
            "itemsPerPage": self.resources.len(),
            "Resources": self.resources,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_to_the_first_full_page() {
        assert_eq!(
            Page::parse(None, None, 100).unwrap(),
            Page {
                start_index: 1,
                count: 100
            }
        );
    }

    #[test]
    fn clamps_per_rfc() {
        let page = Page::parse(Some("0"), Some("-5"), 100).unwrap();
        assert_eq!(
            page,
            Page {
                start_index: 1,
                count: 0
            }
        );
        assert_eq!(
            Page::parse(Some("-3"), Some("500"), 100).unwrap().count,
            100
        );
    }

    #[test]
    fn rejects_non_integers() {
        let error = Page::parse(Some("one"), None, 10).unwrap_err();
        assert_eq!(error.scim_type, Some(ScimType::InvalidValue));
        assert!(Page::parse(None, Some("1.5"), 10).is_err());
    }

    #[test]
    fn slices_pages() {
        let items = [1, 2, 3, 4, 5];
        let page = Page::parse(Some("4"), Some("10"), 10).unwrap();
        assert_eq!(page.slice(&items), &[4, 5]);
        assert!(
            Page::parse(Some("9"), None, 10)
                .unwrap()
                .slice(&items)
                .is_empty()
        );
    }
}
