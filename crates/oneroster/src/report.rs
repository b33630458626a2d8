//! What a pull of one collection proved about itself.
//!
//! Only a *complete* pull may ever be used to deactivate people who are absent from it, so
//! completeness is earned, never assumed: every page fetched, the server's total matched,
//! no failure status hidden in a 200. Whatever spoils it is written down in `problems`.
//!
//! Beside it, what the pull accepted without complaint but should be told: values read
//! leniently and required fields left blank ([`Tally`]: counts, and a few examples).

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Serialize;

use crate::model::{Base, Collection, Finding, FindingKind};

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
    /// Values read leniently (`TRUE`, `Scheduled`, `inactive`, a date-time without `T`).
    pub lenient: Tally,
    /// Required fields empty once read.
    pub blank_required: Tally,
    /// The newest `dateLastModified` seen: the next delta's watermark.
    pub newest_modified: Option<Timestamp>,
}

/// How many examples a [`Tally`] keeps.
pub const SAMPLE_FINDINGS: usize = 5;

/// Findings of one kind in one collection: how many, how many per field, and at most
/// [`SAMPLE_FINDINGS`] examples — as many different fields among them as there are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub count: u64,
    /// By field (column or key, as the source names it).
    pub fields: BTreeMap<String, u64>,
    pub examples: Vec<Example>,
}

/// One finding, with the record it is on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Example {
    pub sourced_id: String,
    pub field: String,
    /// As sent (empty for a blank).
    pub value: String,
    /// What it was read as: `true`, `scheduled`, the default a blank took; `null` when
    /// nothing was made of it (a blank, a reference).
    pub read_as: Option<String>,
}

impl Tally {
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Counts one finding of which there is no example to give.
    pub fn count_without_example(&mut self, field: &str) {
        self.count += 1;
        self.count_field(field);
    }

    fn count_field(&mut self, field: &str) {
        match self.fields.get_mut(field) {
            Some(n) => *n += 1,
            None => {
                self.fields.insert(field.to_owned(), 1);
            }
        }
    }

    /// Counts one finding; keeps it as an example while there is room, or in place of an
    /// example of a field shown twice when its own field is not shown yet.
    pub fn add(&mut self, sourced_id: &str, field: &str, value: &str, read_as: Option<&str>) {
        self.count_without_example(field);
        let slot = if self.examples.len() < SAMPLE_FINDINGS {
            None
        } else if self.examples.iter().any(|e| e.field == field) {
            return;
        } else {
            let shown_twice = |i: usize| {
                let f = &self.examples[i].field;
                self.examples.iter().filter(|e| &e.field == f).count() > 1
            };
            match (0..self.examples.len()).rev().find(|i| shown_twice(*i)) {
                Some(i) => Some(i),
                None => return,
            }
        };
        let example = Example {
            sourced_id: sourced_id.to_owned(),
            field: field.to_owned(),
            value: value.to_owned(),
            read_as: read_as.map(str::to_owned),
        };
        match slot {
            Some(i) => self.examples[i] = example,
            None => self.examples.push(example),
        }
    }
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
            lenient: Tally::default(),
            blank_required: Tally::default(),
            newest_modified: None,
        }
    }

    /// Accounts for one record.
    pub fn saw(&mut self, base: &Base, prefix: impl FnOnce() -> String) {
        self.records += 1;
        if let Some(t) = base.date_last_modified
            && self.newest_modified.is_none_or(|n| t > n)
        {
            self.newest_modified = Some(t);
        }
        if !base.findings.is_empty() {
            self.note_findings(base);
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

    /// Counts the findings on a record (or on a row folded into others, such as a row of
    /// 1.2 `roles.csv`).
    pub fn note_findings(&mut self, base: &Base) {
        for f in &base.findings {
            let Finding {
                kind,
                field,
                value,
                read_as,
            } = f;
            let tally = match kind {
                FindingKind::Lenient => &mut self.lenient,
                FindingKind::BlankRequired => &mut self.blank_required,
            };
            let read_as = (!read_as.is_empty()).then(|| read_as.as_str());
            tally.add(&base.sourced_id, field.as_str(), value.as_str(), read_as);
        }
    }

    /// A row or record that could not be read at all: skipped, and a problem (the
    /// collection is not complete without it).
    pub fn skip(&mut self, p: impl Into<String>) {
        self.skipped += 1;
        self.problem(p);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_counts_everything_and_keeps_a_few_varied_examples() {
        let mut t = Tally::default();
        for i in 0..100 {
            t.add(&format!("u{i}"), "enabledUser", "TRUE", Some("true"));
        }
        t.add("u100", "role", "Teacher", Some("teacher"));
        t.count_without_example("role");
        assert_eq!(t.count, 102);
        assert_eq!(t.fields["enabledUser"], 100);
        assert_eq!(t.fields["role"], 2);
        assert_eq!(t.examples.len(), SAMPLE_FINDINGS);
        let fields: Vec<&str> = t.examples.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "enabledUser",
                "enabledUser",
                "enabledUser",
                "enabledUser",
                "role"
            ],
            "a field not shown yet takes the place of one shown twice"
        );
        assert_eq!(t.examples[4].sourced_id, "u100");
        assert_eq!(t.examples[4].read_as.as_deref(), Some("teacher"));
    }

    #[test]
    fn a_report_sorts_a_records_findings_by_kind() {
        let mut report = CollectionReport::new(Collection::Users, Coverage::Full);
        let mut base = Base {
            sourced_id: "u1".into(),
            ..Base::default()
        };
        report.saw(&base, String::new);
        assert!(report.lenient.is_empty() && report.blank_required.is_empty());
        base.findings
            .push(Finding::lenient("enabledUser", "1", true));
        base.findings.push(Finding::blank("givenName", ""));
        report.saw(&base, String::new);
        assert_eq!(report.records, 2);
        assert_eq!(report.lenient.count, 1);
        assert_eq!(
            report.lenient.examples[0],
            Example {
                sourced_id: "u1".into(),
                field: "enabledUser".into(),
                value: "1".into(),
                read_as: Some("true".into()),
            }
        );
        assert_eq!(report.blank_required.count, 1);
        assert_eq!(report.blank_required.examples[0].read_as, None);
        assert_eq!(report.blank_required.examples[0].value, "");
        assert!(report.warnings().is_empty(), "findings are not warnings");
    }
}
