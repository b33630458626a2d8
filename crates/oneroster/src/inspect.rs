//! What a source holds, read end to end: records, pages and completeness per collection,
//! people per role, and every warning. `rostersync inspect` prints it and the console's
//! *Validate* button shows it, so both answer "do these settings work?" the same way.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::report::CollectionReport;
use crate::source::{Entity, Source, SourceError};
use crate::{AcademicSession, Class, Course, Enrollment, Org, User};

/// One collection's read.
#[derive(Debug, Clone, Serialize)]
pub struct CollectionSummary {
    pub records: u64,
    pub pages: u64,
    /// The server's `X-Total-Count` (none for CSV or when the server sends none).
    pub expected: Option<u64>,
    /// Every page fetched, totals matched, no record twice, no failure hidden in a 200.
    pub complete: bool,
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
    let mut roles: BTreeMap<String, u64> = BTreeMap::new();
    read::<Org>(source, &mut inspection, |_| {}).await?;
    read::<AcademicSession>(source, &mut inspection, |_| {}).await?;
    read::<Course>(source, &mut inspection, |_| {}).await?;
    read::<Class>(source, &mut inspection, |_| {}).await?;
    read::<User>(source, &mut inspection, |u: &User| {
        let role = u.primary_role().map_or("(none)", |r| r.as_str());
        *roles.entry(role.to_owned()).or_default() += 1;
    })
    .await?;
    read::<Enrollment>(source, &mut inspection, |_| {}).await?;
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
}

async fn read<T: Entity>(
    source: &mut Source,
    inspection: &mut Inspection,
    sink: impl FnMut(&T),
) -> Result<(), SourceError> {
    let collection = T::COLLECTION.endpoint();
    let report: Option<CollectionReport> = source.read::<T>(None, sink).await?;
    if let Some(r) = report {
        inspection.warnings.extend(r.warnings());
        inspection.collections.insert(
            collection,
            CollectionSummary {
                records: r.records,
                pages: r.pages,
                expected: r.expected,
                complete: r.complete,
            },
        );
    }
    Ok(())
}
