//! What a source holds, read end to end: records, pages and completeness per collection,
//! people per role, and every warning. `rostersync inspect` prints it and the console's
//! *Validate* button shows it, so both answer "do these settings work?" the same way.
//!
//! It also says what the read accepted without failing but an admin should hear of, per
//! collection: values read leniently and required fields left blank (counted by the
//! readers, [`Tally`]), and references to records the source does not hold (counted
//! here). Each is a count with a few examples, so a district of millions costs the same
//! few lines. References are looked up only in collections read in full: a delta, or a
//! collection the source lacks, proves nothing about what exists.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::IdHashes;
use crate::report::{CollectionReport, Coverage, Tally};
use crate::source::{Entity, Source, SourceError};
use crate::{
    AcademicSession, Class, Collection, Course, Enrollment, FieldName, Format, Org, Record, Status,
    User, Version,
};

/// One collection's read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CollectionSummary {
    pub records: u64,
    pub pages: u64,
    /// The server's `X-Total-Count` (none for CSV or when the server sends none).
    pub expected: Option<u64>,
    /// Every page fetched, totals matched, no record twice, no failure hidden in a 200.
    pub complete: bool,
    /// Values read leniently: `TRUE` as true, `Scheduled` as scheduled, status
    /// `inactive` as tobedeleted, `2026-01-02 03:04:05` as an instant.
    pub lenient: Tally,
    /// Required fields empty once read (blank, missing, or unreadable).
    pub blank_required: Tally,
    /// References to records the source does not hold, by the collection they point into
    /// (`orgs`, `users`, …); only collections read in full are looked into.
    pub dangling: BTreeMap<&'static str, Tally>,
}

/// The `inspect --json` document.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// `csv` or `rest`.
    pub kind: &'static str,
    pub version: &'static str,
    /// Only the collections the source has.
    pub collections: BTreeMap<&'static str, CollectionSummary>,
    /// Users by primary role, spelled as the source spells it.
    pub roles: BTreeMap<String, u64>,
    /// Problems that did not stop the read.
    pub warnings: Vec<String>,
}

/// Reads every rostering collection (orgs, academicSessions, courses, classes, users,
/// enrollments) and reports what came back. Fails on a configuration, authentication,
/// network or parse failure.
pub async fn inspect(source: &mut Source) -> Result<Inspection, SourceError> {
    let mut inspection = Inspection {
        kind: source.kind(),
        version: source.version().as_str(),
        collections: BTreeMap::new(),
        roles: BTreeMap::new(),
        warnings: Vec::new(),
    };
    let format = match source {
        Source::Csv(_) => Format::Csv,
        Source::Rest(_) => Format::Json,
    };
    let mut refs = References::new(format, source.version());
    let mut roles: BTreeMap<String, u64> = BTreeMap::new();
    // Referred-to collections first: every reference but one to the same collection
    // points at a collection already read.
    read::<Org>(source, &mut inspection, &mut refs, |_| {}).await?;
    read::<AcademicSession>(source, &mut inspection, &mut refs, |_| {}).await?;
    read::<Course>(source, &mut inspection, &mut refs, |_| {}).await?;
    read::<Class>(source, &mut inspection, &mut refs, |_| {}).await?;
    read::<User>(source, &mut inspection, &mut refs, |u: &User| {
        let role = u.primary_role().map_or("(none)", |r| r.as_str());
        *roles.entry(role.to_owned()).or_default() += 1;
    })
    .await?;
    read::<Enrollment>(source, &mut inspection, &mut refs, |_| {}).await?;
    inspection.roles = roles;
    let mut warnings = source.warnings();
    warnings.append(&mut inspection.warnings);
    inspection.warnings = warnings;
    Ok(inspection)
}

impl Inspection {
    /// Whether every collection read came back complete.
    pub fn complete(&self) -> bool {
        self.collections.values().all(|c| c.complete)
    }

    /// One line per collection with something read leniently, left blank or pointing
    /// nowhere, with its examples: what `inspect` prints and *Validate* shows.
    pub fn findings(&self) -> Vec<Findings> {
        let blank = if self.kind == "csv" { "cell" } else { "field" };
        self.collections
            .iter()
            .filter_map(|(name, c)| c.findings(name, blank))
            .collect()
    }
}

/// What one collection's read accepted but should be told: a line, and its examples.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Findings {
    /// `users: 3 values read leniently (enabledUser `TRUE` → true …), 1 blank required
    /// cell (givenName 1), 2 references to missing orgs (orgSourcedIds `org-9` …)`
    pub line: String,
    /// `usr-1: enabledUser `TRUE` read as true`, at most a few per kind.
    pub examples: Vec<String>,
}

impl CollectionSummary {
    fn findings(&self, name: &str, blank: &str) -> Option<Findings> {
        let mut parts = Vec::new();
        let mut examples = Vec::new();
        if !self.lenient.is_empty() {
            parts.push(format!(
                "{} read leniently ({})",
                counted(self.lenient.count, "value", "values"),
                first(&self.lenient, |e| format!(
                    "{} `{}` → {}",
                    e.field,
                    e.value,
                    e.read_as.as_deref().unwrap_or("?")
                ))
            ));
            examples.extend(self.lenient.examples.iter().map(|e| {
                format!(
                    "{}: {} `{}` read as {}",
                    e.sourced_id,
                    e.field,
                    e.value,
                    e.read_as.as_deref().unwrap_or("nothing")
                )
            }));
        }
        if !self.blank_required.is_empty() {
            let fields: Vec<String> = self
                .blank_required
                .fields
                .iter()
                .map(|(f, n)| format!("{f} {n}"))
                .collect();
            parts.push(format!(
                "{} ({})",
                counted(
                    self.blank_required.count,
                    &format!("blank required {blank}"),
                    &format!("blank required {blank}s")
                ),
                fields.join(", ")
            ));
            examples.extend(
                self.blank_required
                    .examples
                    .iter()
                    .map(|e| match &e.read_as {
                        Some(default) => {
                            format!("{}: {} blank, read as {default}", e.sourced_id, e.field)
                        }
                        None => format!("{}: {} blank", e.sourced_id, e.field),
                    }),
            );
        }
        for (target, tally) in &self.dangling {
            parts.push(format!(
                "{} to missing {target} ({})",
                counted(tally.count, "reference", "references"),
                first(tally, |e| format!("{} `{}`", e.field, e.value))
            ));
            examples.extend(tally.examples.iter().map(|e| {
                format!(
                    "{}: {} `{}` is not among the {target}",
                    e.sourced_id, e.field, e.value
                )
            }));
        }
        (!parts.is_empty()).then(|| Findings {
            line: format!("{name}: {}", parts.join(", ")),
            examples,
        })
    }
}

/// `1 value`, `3 values`.
fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The first example as `show` writes it, then `…` when there are more findings.
fn first(tally: &Tally, show: impl Fn(&crate::report::Example) -> String) -> String {
    match tally.examples.first() {
        Some(e) if tally.count > 1 => format!("{} …", show(e)),
        Some(e) => show(e),
        None => "…".to_owned(),
    }
}

async fn read<T: Entity + Refers>(
    source: &mut Source,
    inspection: &mut Inspection,
    refs: &mut References,
    mut sink: impl FnMut(&T),
) -> Result<(), SourceError> {
    let collection = T::COLLECTION;
    refs.start();
    let report: Option<CollectionReport> = source
        .read::<T>(None, |r: &T| {
            refs.record(r);
            sink(r);
        })
        .await?;
    let dangling = refs.finish(collection, report.as_ref().map(|r| r.coverage));
    if let Some(r) = report {
        inspection.warnings.extend(r.warnings());
        inspection.collections.insert(
            collection.endpoint(),
            CollectionSummary {
                records: r.records,
                pages: r.pages,
                expected: r.expected,
                complete: r.complete,
                lenient: r.lenient,
                blank_required: r.blank_required,
                dangling,
            },
        );
    }
    Ok(())
}

/// A record's references to other records: `each(field, collection, sourcedId)`.
trait Refers: Record {
    fn references(&self, each: &mut impl FnMut(FieldName, Collection, &str));
}

impl Refers for Org {
    fn references(&self, each: &mut impl FnMut(FieldName, Collection, &str)) {
        if let Some(p) = &self.parent {
            each(Org::PARENT, Collection::Orgs, p);
        }
    }
}

impl Refers for AcademicSession {
    fn references(&self, each: &mut impl FnMut(FieldName, Collection, &str)) {
        if let Some(p) = &self.parent {
            each(AcademicSession::PARENT, Collection::AcademicSessions, p);
        }
    }
}

impl Refers for Course {
    fn references(&self, each: &mut impl FnMut(FieldName, Collection, &str)) {
        if let Some(o) = &self.org {
            each(Course::ORG, Collection::Orgs, o);
        }
        if let Some(y) = &self.school_year {
            each(Course::SCHOOL_YEAR, Collection::AcademicSessions, y);
        }
    }
}

impl Refers for Class {
    fn references(&self, each: &mut impl FnMut(FieldName, Collection, &str)) {
        if let Some(c) = &self.course {
            each(Class::COURSE, Collection::Courses, c);
        }
        if let Some(s) = &self.school {
            each(Class::SCHOOL, Collection::Orgs, s);
        }
        for t in &self.terms {
            each(Class::TERMS, Collection::AcademicSessions, t);
        }
    }
}

impl Refers for User {
    fn references(&self, each: &mut impl FnMut(FieldName, Collection, &str)) {
        for o in &self.orgs {
            each(User::ORGS, Collection::Orgs, o);
        }
        if let Some(p) = &self.primary_org
            && !self.orgs.contains(p)
        {
            each(User::PRIMARY_ORG, Collection::Orgs, p);
        }
        for a in &self.agents {
            each(User::AGENTS, Collection::Users, a);
        }
    }
}

impl Refers for Enrollment {
    fn references(&self, each: &mut impl FnMut(FieldName, Collection, &str)) {
        if let Some(u) = &self.user {
            each(Enrollment::USER, Collection::Users, u);
        }
        if let Some(c) = &self.class {
            each(Enrollment::CLASS, Collection::Classes, c);
        }
        if let Some(s) = &self.school {
            each(Enrollment::SCHOOL, Collection::Orgs, s);
        }
    }
}

/// How many references into the collection being read, not found in it yet, keep their
/// record and value for the examples at a time (the rest are counted by hash alone).
const PENDING_SAMPLES: usize = 1_000;

/// A reference into the collection being read that it had not shown yet when it came.
struct Pending {
    /// The id, as `References::reading` hashes it.
    hash: u64,
    field: &'static str,
    /// The record and the value, for an example (the first [`PENDING_SAMPLES`] only).
    sample: Option<Box<(String, String)>>,
}

/// The references check: the ids of each collection read in full so far (8-byte hashes),
/// and what points nowhere.
struct References {
    format: Format,
    version: Version,
    /// Collections read in full, by what they hold.
    read: BTreeMap<Collection, IdHashes>,
    /// The collection being read: its ids so far.
    reading: IdHashes,
    /// References into the collection being read that it had not shown yet when they
    /// came (a user's agent listed further down). Those found since leave at each
    /// compaction, when the list has doubled: the list holds what is still unresolved,
    /// and the samples go to references that may yet be examples.
    pending: Vec<Pending>,
    /// How many of `pending` carry a sample.
    samples: usize,
    /// The length of `pending` at which it is compacted next.
    compact_at: usize,
    /// References of the collection being read that point nowhere, by target.
    dangling: BTreeMap<&'static str, Tally>,
}

impl References {
    fn new(format: Format, version: Version) -> References {
        References {
            format,
            version,
            read: BTreeMap::new(),
            reading: IdHashes::default(),
            pending: Vec::new(),
            samples: 0,
            compact_at: 2 * PENDING_SAMPLES,
            dangling: BTreeMap::new(),
        }
    }

    fn start(&mut self) {
        self.reading = IdHashes::default();
        self.pending.clear();
        self.samples = 0;
        self.compact_at = 2 * PENDING_SAMPLES;
        self.dangling.clear();
    }

    /// Drops the pending references found since they came.
    fn compact(&mut self) {
        let reading = &self.reading;
        self.pending.retain(|p| !reading.contains_hash(p.hash));
        self.samples = self.pending.iter().filter(|p| p.sample.is_some()).count();
        self.compact_at = (2 * self.pending.len()).max(2 * PENDING_SAMPLES);
    }

    fn record<T: Refers>(&mut self, r: &T) {
        let own = T::COLLECTION;
        let id = r.sourced_id();
        // Nobody points at an enrollment.
        if own != Collection::Enrollments {
            self.reading.insert(id);
        }
        // A record being deleted may point at what is already gone.
        if r.base().status == Status::ToBeDeleted {
            return;
        }
        let (format, version) = (self.format, self.version);
        r.references(&mut |name, target, to| {
            let field = name.get(format, version);
            if target == own {
                if !self.reading.contains(to) {
                    let sample = (self.samples < PENDING_SAMPLES).then(|| {
                        self.samples += 1;
                        Box::new((id.to_owned(), to.to_owned()))
                    });
                    self.pending.push(Pending {
                        hash: self.reading.hash(to),
                        field,
                        sample,
                    });
                    if self.pending.len() >= self.compact_at {
                        self.compact();
                    }
                }
            } else if let Some(ids) = self.read.get(&target)
                && !ids.contains(to)
            {
                self.dangling
                    .entry(target.endpoint())
                    .or_default()
                    .add(id, field, to, None);
            }
        });
    }

    /// Ends the read of `collection` (`None`: the source lacks it) and answers the
    /// references of its records that point nowhere.
    fn finish(
        &mut self,
        collection: Collection,
        coverage: Option<Coverage>,
    ) -> BTreeMap<&'static str, Tally> {
        let reading = std::mem::take(&mut self.reading);
        if coverage == Some(Coverage::Full) {
            for p in self.pending.drain(..) {
                if reading.contains_hash(p.hash) {
                    continue;
                }
                let tally = self.dangling.entry(collection.endpoint()).or_default();
                match p.sample {
                    Some(s) => tally.add(&s.0, p.field, &s.1, None),
                    None => tally.count_without_example(p.field),
                }
            }
            if collection != Collection::Enrollments {
                self.read.insert(collection, reading);
            }
        }
        std::mem::take(&mut self.dangling)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, agents: &[String]) -> User {
        User {
            base: crate::Base {
                sourced_id: id.to_owned(),
                ..crate::Base::default()
            },
            agents: agents.to_vec(),
            ..User::default()
        }
    }

    #[test]
    fn references_ahead_in_the_collection_are_resolved_at_its_end() {
        let mut refs = References::new(Format::Csv, Version::V1_1);
        refs.start();
        // Students first, each with a guardian listed further down: all found in the end.
        // Then more references to nobody than samples are kept: all counted, five shown.
        let n = PENDING_SAMPLES + 500;
        for i in 0..n {
            refs.record(&user(&format!("s{i}"), &[format!("g{i}")]));
        }
        for i in 0..n {
            refs.record(&user(&format!("g{i}"), &[format!("s{i}")]));
        }
        for i in 0..n {
            refs.record(&user(&format!("x{i}"), &[format!("nobody{i}")]));
        }
        assert!(
            refs.pending.len() < 2 * n,
            "the students' references left once their guardians came"
        );
        let dangling = refs.finish(Collection::Users, Some(Coverage::Full));
        let users = &dangling["users"];
        assert_eq!(users.count, n as u64, "only the references to nobody");
        assert_eq!(users.fields["agentSourcedIds"], n as u64);
        assert_eq!(
            users.examples.len(),
            crate::report::SAMPLE_FINDINGS,
            "the samples the students held went to references that stayed unresolved"
        );
        assert!(users.examples.iter().all(|e| e.value.starts_with("nobody")));

        // A delta proves nothing about what exists.
        refs.start();
        refs.record(&user("a", &["nobody".to_owned()]));
        assert!(
            refs.finish(Collection::Users, Some(Coverage::Delta))
                .is_empty()
        );

        // The samples keep the first references still unresolved at the end.
        refs.start();
        refs.record(&user("b", &["nobody".to_owned(), "c".to_owned()]));
        refs.record(&user("c", &[]));
        let dangling = refs.finish(Collection::Users, Some(Coverage::Full));
        assert_eq!(dangling["users"].count, 1);
        assert_eq!(dangling["users"].examples[0].sourced_id, "b");
        assert_eq!(dangling["users"].examples[0].value, "nobody");
    }
}
