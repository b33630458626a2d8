//! The district as a OneRoster CSV package (zip), bulk or delta, 1.1 or 1.2.
//!
//! Rows are streamed straight into the zip entry as they are rendered, so a million-person
//! export needs no more memory than the district itself. Columns are exactly the standard
//! sets, in the standard order (see `docs/sim.md`); multi-value cells are comma lists that
//! the CSV writer quotes.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zip::write::SimpleFileOptions;

use crate::calendar::{session_dates, stamp_string};
use crate::error::SimError;
use crate::model::{District, Role, SessionKind, grade_code};
use crate::records::{
    Collection, Version, class_terms, class_texts, course_code_title, course_subject,
    enrollment_dates, org_identifier, record_count, record_state, session_title, session_type,
};

pub const ORGS_HEADER: &[&str] = &[
    "sourcedId",
    "status",
    "dateLastModified",
    "name",
    "type",
    "identifier",
    "parentSourcedId",
];
pub const ACADEMIC_SESSIONS_HEADER: &[&str] = &[
    "sourcedId",
    "status",
    "dateLastModified",
    "title",
    "type",
    "startDate",
    "endDate",
    "parentSourcedId",
    "schoolYear",
];
pub const COURSES_HEADER: &[&str] = &[
    "sourcedId",
    "status",
    "dateLastModified",
    "schoolYearSourcedId",
    "title",
    "courseCode",
    "grades",
    "orgSourcedId",
    "subjects",
    "subjectCodes",
];
pub const CLASSES_HEADER: &[&str] = &[
    "sourcedId",
    "status",
    "dateLastModified",
    "title",
    "grades",
    "courseSourcedId",
    "classCode",
    "classType",
    "location",
    "schoolSourcedId",
    "termSourcedIds",
    "subjects",
    "subjectCodes",
    "periods",
];
pub const ENROLLMENTS_HEADER: &[&str] = &[
    "sourcedId",
    "status",
    "dateLastModified",
    "classSourcedId",
    "schoolSourcedId",
    "userSourcedId",
    "role",
    "primary",
    "beginDate",
    "endDate",
];
pub const USERS_HEADER_V1P1: &[&str] = &[
    "sourcedId",
    "status",
    "dateLastModified",
    "enabledUser",
    "orgSourcedIds",
    "role",
    "username",
    "userIds",
    "givenName",
    "familyName",
    "middleName",
    "identifier",
    "email",
    "sms",
    "phone",
    "agentSourcedIds",
    "grades",
    "password",
];
pub const USERS_HEADER_V1P2: &[&str] = &[
    "sourcedId",
    "status",
    "dateLastModified",
    "enabledUser",
    "username",
    "userIds",
    "givenName",
    "familyName",
    "middleName",
    "identifier",
    "email",
    "sms",
    "phone",
    "agentSourcedIds",
    "grades",
    "password",
    "userMasterIdentifier",
    "preferredGivenName",
    "preferredMiddleName",
    "preferredFamilyName",
    "primaryOrgSourcedId",
    "pronouns",
];
pub const ROLES_HEADER: &[&str] = &[
    "sourcedId",
    "status",
    "dateLastModified",
    "userSourcedId",
    "roleType",
    "role",
    "beginDate",
    "endDate",
    "orgSourcedId",
    "userProfileSourcedId",
];

/// Files a manifest lists as `absent` (everything the simulator does not produce).
const ABSENT_V1P1: &[&str] = &[
    "categories",
    "classResources",
    "courseResources",
    "demographics",
    "lineItems",
    "resources",
    "results",
];
const ABSENT_V1P2: &[&str] = &[
    "categories",
    "classResources",
    "courseResources",
    "demographics",
    "lineItemLearningObjectiveIds",
    "lineItemScoreScales",
    "lineItems",
    "resources",
    "resultLearningObjectiveIds",
    "resultScoreScales",
    "results",
    "scoreScales",
    "userProfiles",
    "userResources",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportOptions {
    pub version: Version,
    /// `Some(D0)`: a delta package of everything changed after day D0 (removals as
    /// `tobedeleted` rows); `None`: a bulk package of every active record.
    pub delta_from: Option<u32>,
}

/// Rows written per file (without headers).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportSummary {
    pub rows: BTreeMap<String, u64>,
}

struct Package<'a> {
    district: &'a District,
    version: Version,
    /// Stamps at or after this are in a delta; `None` for bulk.
    changed_since: Option<u32>,
    path: PathBuf,
}

impl Package<'_> {
    /// Whether a record goes in the package: with which status, and its last change.
    fn include(&self, collection: Collection, index: u32) -> Option<(&'static str, u32)> {
        let (removed, modified) = record_state(self.district, collection, index)?;
        let status = match self.changed_since {
            None => (!removed).then_some("active")?,
            Some(since) if modified >= since => {
                if removed {
                    "tobedeleted"
                } else {
                    "active"
                }
            }
            Some(_) => return None,
        };
        Some((status, modified))
    }

    fn csv_error(&self, file: &'static str) -> impl Fn(csv::Error) -> SimError + '_ {
        move |source| SimError::Csv {
            path: self.path.clone(),
            file,
            source,
        }
    }
}

/// Writes the district as a OneRoster CSV zip at `out`.
pub fn export_csv(
    district: &District,
    out: &Path,
    options: &ExportOptions,
) -> Result<ExportSummary, SimError> {
    if let Some(from) = options.delta_from
        && from >= district.day
    {
        return Err(SimError::DeltaNotBefore {
            from,
            day: district.day,
        });
    }
    let io_error = |source| SimError::Io {
        path: out.to_path_buf(),
        source,
    };
    let zip_error = |source| SimError::Zip {
        path: out.to_path_buf(),
        source,
    };
    let file = File::create(out).map_err(io_error)?;
    let mut zip = zip::ZipWriter::new(BufWriter::with_capacity(1 << 20, file));
    let entry = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default());
    let package = Package {
        district,
        version: options.version,
        changed_since: options.delta_from.map(|d| (d + 1) * 86_400),
        path: out.to_path_buf(),
    };
    let mode = if options.delta_from.is_some() {
        "delta"
    } else {
        "bulk"
    };
    let files = record_files(options.version);
    let roles = options.version == Version::V1p2;
    let absent = match options.version {
        Version::V1p1 => ABSENT_V1P1,
        Version::V1p2 => ABSENT_V1P2,
    };

    zip.start_file("manifest.csv", entry).map_err(zip_error)?;
    {
        let mut manifest = csv::Writer::from_writer(&mut zip);
        let mut rows: Vec<(String, &str)> = vec![
            ("manifest.version".to_owned(), "1.0"),
            ("oneroster.version".to_owned(), options.version.as_str()),
        ];
        let mut entries: Vec<(String, &str)> = files
            .iter()
            .map(|f| f.collection.plural())
            .chain(roles.then_some("roles"))
            .map(|f| (format!("file.{f}"), mode))
            .chain(absent.iter().map(|f| (format!("file.{f}"), "absent")))
            .collect();
        entries.sort();
        rows.extend(entries);
        rows.push(("source.systemName".to_owned(), "rostersync-sim"));
        rows.push(("source.systemCode".to_owned(), "sim"));
        let fail = package.csv_error("manifest.csv");
        manifest
            .write_record(["propertyName", "value"])
            .map_err(&fail)?;
        for (name, value) in rows {
            manifest
                .write_record([name.as_str(), value])
                .map_err(&fail)?;
        }
        manifest.flush().map_err(|e| fail(e.into()))?;
    }

    let mut summary = ExportSummary::default();
    let mut write_entry = |name: &'static str,
                           write: &dyn Fn(&mut Csv<'_>) -> Result<u64, SimError>|
     -> Result<(), SimError> {
        zip.start_file(name, entry).map_err(zip_error)?;
        let sink: &mut dyn Write = &mut zip;
        let rows = write(&mut csv::Writer::from_writer(sink))?;
        summary.rows.insert(name.to_owned(), rows);
        Ok(())
    };
    for file in &files {
        let name = file.collection.wire().csv_file();
        write_entry(name, &|writer| write_records(&package, writer, name, file))?;
    }
    if roles {
        write_entry("roles.csv", &|writer| {
            write_roles(&package, writer, "roles.csv")
        })?;
    }
    let mut inner = zip.finish().map_err(zip_error)?;
    inner.flush().map_err(io_error)?;
    Ok(summary)
}

/// CSV rows go straight into the open zip entry.
type Csv<'w> = csv::Writer<&'w mut dyn Write>;

/// Pushes the cells of record `index`'s row that follow its sourcedId, status and
/// dateLastModified.
type Cells = fn(&District, Version, u32, &mut Vec<String>);

/// A file of one row per record of a collection.
struct RecordFile {
    collection: Collection,
    header: &'static [&'static str],
    cells: Cells,
}

/// The package's record files, in the order they are written.
fn record_files(version: Version) -> [RecordFile; 6] {
    let file = |collection, header, cells| RecordFile {
        collection,
        header,
        cells,
    };
    [
        file(Collection::Orgs, ORGS_HEADER, org_cells),
        file(
            Collection::AcademicSessions,
            ACADEMIC_SESSIONS_HEADER,
            session_cells,
        ),
        file(Collection::Courses, COURSES_HEADER, course_cells),
        file(Collection::Classes, CLASSES_HEADER, class_cells),
        file(
            Collection::Users,
            match version {
                Version::V1p1 => USERS_HEADER_V1P1,
                Version::V1p2 => USERS_HEADER_V1P2,
            },
            user_cells,
        ),
        file(
            Collection::Enrollments,
            ENROLLMENTS_HEADER,
            enrollment_cells,
        ),
    ]
}

fn write_records(
    package: &Package<'_>,
    writer: &mut Csv<'_>,
    file: &'static str,
    records: &RecordFile,
) -> Result<u64, SimError> {
    let fail = package.csv_error(file);
    writer.write_record(records.header).map_err(&fail)?;
    let mut cells = Vec::with_capacity(records.header.len());
    let mut rows = 0;
    for index in 0..record_count(package.district, records.collection) as u32 {
        let Some((status, modified)) = package.include(records.collection, index) else {
            continue;
        };
        cells.clear();
        cells.push(records.collection.sourced_id(index));
        cells.push(status.to_owned());
        cells.push(stamp_string(modified));
        (records.cells)(package.district, package.version, index, &mut cells);
        writer.write_record(&cells).map_err(&fail)?;
        rows += 1;
    }
    writer.flush().map_err(|e| fail(e.into()))?;
    Ok(rows)
}

fn org_cells(d: &District, _: Version, index: u32, cells: &mut Vec<String>) {
    let Some(org) = d.orgs.get(index as usize) else {
        return;
    };
    cells.push(org.name.clone());
    cells.push(
        if org.band.is_some() {
            "school"
        } else {
            "district"
        }
        .to_owned(),
    );
    cells.push(org_identifier(org.number));
    cells.push(if org.band.is_some() {
        Collection::Orgs.sourced_id(0)
    } else {
        String::new()
    });
}

fn session_cells(d: &District, _: Version, index: u32, cells: &mut Vec<String>) {
    let Some(session) = d.sessions.get(index as usize) else {
        return;
    };
    let (start, end) = session_dates(session.year, session.kind, session.part);
    cells.push(session_title(session.kind, session.part, session.year));
    cells.push(session_type(session.kind).to_owned());
    cells.push(start);
    cells.push(end);
    cells.push(if session.kind == SessionKind::SchoolYear {
        String::new()
    } else {
        Collection::AcademicSessions.sourced_id(session.parent)
    });
    cells.push(session.year.to_string());
}

fn course_cells(d: &District, _: Version, index: u32, cells: &mut Vec<String>) {
    let Some(course) = d.courses.get(index as usize) else {
        return;
    };
    let (code, title) = course_code_title(d, course.school, course.catalog, course.grade);
    cells.push(Collection::AcademicSessions.sourced_id(course.year_session));
    cells.push(title);
    cells.push(code);
    cells.push(grade_code(course.grade).to_owned());
    cells.push(Collection::Orgs.sourced_id(course.school));
    cells.push(course_subject(d, course.school, course.catalog).to_owned());
    cells.push(String::new());
}

fn class_cells(d: &District, _: Version, index: u32, cells: &mut Vec<String>) {
    let Some(class) = d.classes.get(index as usize) else {
        return;
    };
    let texts = class_texts(d, index);
    cells.push(texts.title);
    cells.push(grade_code(class.grade).to_owned());
    cells.push(Collection::Courses.sourced_id(class.course));
    cells.push(texts.code);
    cells.push(
        if class.is_homeroom() {
            "homeroom"
        } else {
            "scheduled"
        }
        .to_owned(),
    );
    cells.push(texts.location);
    cells.push(Collection::Orgs.sourced_id(class.school));
    cells.push(id_list(
        Collection::AcademicSessions,
        &class_terms(d, index),
    ));
    cells.push(course_subject(d, class.school, class.catalog).to_owned());
    cells.push(String::new());
    cells.push(texts.period);
}

fn enrollment_cells(d: &District, _: Version, index: u32, cells: &mut Vec<String>) {
    let Some(enrollment) = d.enrollments.get(index as usize) else {
        return;
    };
    let school = d
        .classes
        .get(enrollment.class as usize)
        .map_or(0, |c| c.school);
    let (begin, end) = enrollment_dates(d, index);
    cells.push(Collection::Classes.sourced_id(enrollment.class));
    cells.push(Collection::Orgs.sourced_id(school));
    cells.push(Collection::Users.sourced_id(enrollment.user));
    cells.push(enrollment.role.as_str().to_owned());
    cells.push(if enrollment.primary { "true" } else { "false" }.to_owned());
    cells.push(begin);
    cells.push(end);
}

fn id_list(collection: Collection, indexes: &[u32]) -> String {
    indexes
        .iter()
        .map(|&i| collection.sourced_id(i))
        .collect::<Vec<_>>()
        .join(",")
}

fn user_cells(d: &District, version: Version, index: u32, cells: &mut Vec<String>) {
    let Some(person) = d.people.get(index as usize) else {
        return;
    };
    let username = d.username(person);
    let identifier = d.identifier(person);
    cells.push("true".to_owned());
    if version == Version::V1p1 {
        cells.push(id_list(Collection::Orgs, &d.person_orgs(person)));
        cells.push(person.role.v1p1().to_owned());
    }
    let user_ids = if person.role.is_guardian() {
        String::new()
    } else {
        format!("{{LDAP:{username}}}")
    };
    cells.push(username);
    cells.push(user_ids);
    cells.push(d.first_name(person).to_owned());
    cells.push(d.last_name(person).to_owned());
    cells.push(d.middle_name(person).to_owned());
    cells.push(identifier.clone());
    cells.push(d.email(person).unwrap_or_default());
    cells.push(String::new());
    cells.push(d.phone(person).unwrap_or_default());
    cells.push(id_list(Collection::Users, &d.agents(index)));
    cells.push(if person.role == Role::Student {
        grade_code(person.grade).to_owned()
    } else {
        String::new()
    });
    cells.push(String::new());
    if version == Version::V1p2 {
        cells.push(identifier);
        cells.push(
            d.preferred_first_name(person)
                .unwrap_or_default()
                .to_owned(),
        );
        cells.push(String::new());
        cells.push(String::new());
        cells.push(Collection::Orgs.sourced_id(person.school));
        cells.push(d.pronouns(person).unwrap_or_default().to_owned());
    }
}

/// 1.2 `roles.csv`: one row per (user, org) role, sourcedId `{user}-role-{n}`.
fn write_roles(
    package: &Package<'_>,
    writer: &mut Csv<'_>,
    file: &'static str,
) -> Result<u64, SimError> {
    let d = package.district;
    let fail = package.csv_error(file);
    writer.write_record(ROLES_HEADER).map_err(&fail)?;
    let mut rows = 0;
    for index in 0..d.people.len() as u32 {
        let Some((status, modified)) = package.include(Collection::Users, index) else {
            continue;
        };
        let Some(person) = d.people.get(index as usize) else {
            continue;
        };
        let user = Collection::Users.sourced_id(index);
        for (position, org) in d.person_orgs(person).into_iter().enumerate() {
            let modified = stamp_string(modified);
            let role_id = format!("{user}-role-{position}");
            let role_type = if position == 0 {
                "primary"
            } else {
                "secondary"
            };
            let org_id = Collection::Orgs.sourced_id(org);
            writer
                .write_record([
                    role_id.as_str(),
                    status,
                    modified.as_str(),
                    user.as_str(),
                    role_type,
                    person.role.v1p2(),
                    "",
                    "",
                    org_id.as_str(),
                    "",
                ])
                .map_err(&fail)?;
            rows += 1;
        }
    }
    writer.flush().map_err(|e| fail(e.into()))?;
    Ok(rows)
}
