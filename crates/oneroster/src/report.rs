//! What a pull of one collection proved about itself.
//!
//! Only a *complete* pull may ever be used to deactivate people who are absent from it, so
//! completeness is earned, never assumed: every page fetched, the server's total matched,
//! no failure status hidden in a 200. Whatever spoils it is written down in `problems`.

use jiff::Timestamp;

use crate::model::Collection;

/// How much of a collection a pull holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// Every record the source has (a REST full pull, a CSV `bulk` file).
    Full,
    /// Changes only (a filtered REST pull, a CSV `delta` file).
    Delta,
}

#[derive(Debug, Clone)]
pub struct CollectionReport {
    pub collection: Collection,
    pub coverage: Coverage,
    pub pages: u64,
    pub records: u64,
    /// The server's `X-Total-Count`, when it sent one.
    pub expected: Option<u64>,
    pub complete: bool,
    /// Why the pull is not complete (empty when it is): the first [`SAMPLE_PROBLEMS`].
    pub problems: Vec<String>,
    /// Problems past the first [`SAMPLE_PROBLEMS`], counted but not kept (a file broken
    /// on every row must not hold a message per row).
    pub problems_not_shown: u64,
    /// Records the reader refused and did not hand on (malformed CSV rows).
    pub skipped: u64,
    /// How many records carried values that could not be read.
    pub records_with_warnings: u64,
    /// The first warnings, for display (all of them are on the records).
    pub sample_warnings: Vec<String>,
    /// The newest `dateLastModified` seen: the next delta's watermark.
    pub newest_modified: Option<Timestamp>,
}

/// How many warnings a report keeps as a sample.
pub const SAMPLE_WARNINGS: usize = 20;

/// How many problems a report keeps word for word.
pub const SAMPLE_PROBLEMS: usize = 20;

impl CollectionReport {
    pub fn new(collection: Collection, coverage: Coverage) -> Self {
        CollectionReport {
            collection,
            coverage,
            pages: 0,
            records: 0,
            expected: None,
            complete: false,
            problems: Vec::new(),
            problems_not_shown: 0,
            skipped: 0,
            records_with_warnings: 0,
            sample_warnings: Vec::new(),
            newest_modified: None,
        }
    }

    /// Accounts for one record.
    pub fn saw(&mut self, base: &crate::model::Base, prefix: impl FnOnce() -> String) {
        self.records += 1;
        if let Some(t) = base.date_last_modified
            && self.newest_modified.is_none_or(|n| t > n)
        {
            self.newest_modified = Some(t);
        }
        if !base.warnings.is_empty() {
            self.records_with_warnings += 1;
            if self.sample_warnings.len() < SAMPLE_WARNINGS {
                let p = prefix();
                for w in &base.warnings {
                    if self.sample_warnings.len() < SAMPLE_WARNINGS {
                        self.sample_warnings.push(format!("{p}{w}"));
                    }
                }
            }
        }
    }

    pub fn problem(&mut self, p: impl Into<String>) {
        if self.problems.len() < SAMPLE_PROBLEMS {
            self.problems.push(p.into());
        } else {
            self.problems_not_shown += 1;
        }
        self.complete = false;
    }

    /// What a person reading the pull should hear about it, one line each: why it is
    /// incomplete, then the values that could not be read. `inspect` and `sync` print
    /// the same lines, so a warning one shows the other shows too. Bounded: at most
    /// [`SAMPLE_PROBLEMS`] problems and [`SAMPLE_WARNINGS`] warnings, with counts of the rest.
    pub fn warnings(&self) -> Vec<String> {
        let collection = self.collection.endpoint();
        let mut out = Vec::new();
        for p in &self.problems {
            out.push(format!("{collection}: incomplete: {p}"));
        }
        if self.problems_not_shown > 0 {
            out.push(format!(
                "{collection}: incomplete: {} more problem(s) not shown",
                self.problems_not_shown
            ));
        }
        if self.records_with_warnings > 0 {
            out.push(format!(
                "{collection}: {} record(s) had values that could not be read",
                self.records_with_warnings
            ));
        }
        out.extend(self.sample_warnings.iter().cloned());
        out
    }
}
