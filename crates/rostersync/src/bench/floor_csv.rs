//! The floor's read of a OneRoster CSV package (`bench --csv`): the same six files the sync
//! reads, unzipped and split into rows by one thread and handed on in batches, each row
//! then parsed by serde into a borrowed struct of the fields the sync keeps, as a page's
//! records are ([`super::floor`]). Orgs and courses are read by the page's structs (their
//! columns bear the same names); the rows of users, sessions, classes and enrollments name
//! their references `…SourcedId(s)`, lists joined by commas, and are made into the page's
//! structs: what each collection keeps is said once.

use std::io::BufReader;
use std::path::Path;
use std::sync::{Arc, mpsc};

use oneroster::Collection;
use serde::Deserialize;

use super::floor::{
    Chunk, Class, Course, Enrollment, IN_FLIGHT, Org, Record, Ref, Session, User, failure,
};
use crate::Failure;

/// Rows handed on at a time: about a page's worth.
const BATCH: usize = 5000;

/// A batch of one file's rows, with the file's header. Dropped, its rows go back to the
/// reading thread to be filled again (a row's buffers are reused, not made anew).
pub struct Rows {
    headers: Arc<csv::ByteRecord>,
    rows: Vec<csv::ByteRecord>,
    file: Arc<str>,
    back: mpsc::Sender<Vec<csv::ByteRecord>>,
}

impl Drop for Rows {
    fn drop(&mut self) {
        // The reader may have finished: then the rows are simply freed.
        let _ = self.back.send(std::mem::take(&mut self.rows));
    }
}

/// Reads every row of every collection's file of the package at `path`, in
/// [`Collection::ROSTER`] order, handing each batch to `sink` on this thread while the
/// next is unzipped on another.
pub fn read_package(
    path: &Path,
    mut sink: impl FnMut(Collection, Chunk) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let (batches, received) = mpsc::sync_channel(2 * IN_FLIGHT);
    std::thread::scope(|s| {
        s.spawn(move || {
            if let Err(f) = unzip(path, &batches) {
                let _ = batches.send(Err(f));
            }
        });
        // Returning early drops the receiver, which ends the reader at its next send.
        for batch in received {
            let (kind, rows) = batch?;
            sink(kind, Chunk::Rows(rows))?;
        }
        Ok(())
    })
}

type Batch = Result<(Collection, Rows), Failure>;

fn unzip(path: &Path, out: &mpsc::SyncSender<Batch>) -> Result<(), Failure> {
    let where_ = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| failure(&where_)(&e))?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| failure(&where_)(&e))?;
    let (back, returned) = mpsc::channel::<Vec<csv::ByteRecord>>();
    for kind in Collection::ROSTER {
        let name: Arc<str> = format!("{}.csv", kind.endpoint()).into();
        let entry = zip
            .by_name(&name)
            .map_err(|e| failure(&format!("{where_}: {name}"))(&e))?;
        let csv_error = |e: csv::Error| failure(&name)(&e);
        let mut reader = csv::ReaderBuilder::new().from_reader(entry);
        let headers = Arc::new(reader.byte_headers().map_err(csv_error)?.clone());
        loop {
            let mut rows = returned
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(BATCH));
            let mut filled = 0;
            while filled < BATCH {
                if filled == rows.len() {
                    rows.push(csv::ByteRecord::new());
                }
                if !reader
                    .read_byte_record(&mut rows[filled])
                    .map_err(csv_error)?
                {
                    break;
                }
                filled += 1;
            }
            rows.truncate(filled);
            let last = filled < BATCH;
            if filled > 0 {
                let batch = Rows {
                    headers: Arc::clone(&headers),
                    rows,
                    file: Arc::clone(&name),
                    back: back.clone(),
                };
                if out.send(Ok((kind, batch))).is_err() {
                    // The floor stopped reading (its own error says why).
                    return Ok(());
                }
            }
            if last {
                break;
            }
        }
    }
    Ok(())
}

/// A row of `academicSessions.csv`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionRow<'a> {
    sourced_id: &'a str,
    status: &'a str,
    title: &'a str,
    #[serde(rename = "type", default)]
    session_type: Option<&'a str>,
    #[serde(default)]
    start_date: Option<&'a str>,
    #[serde(default)]
    end_date: Option<&'a str>,
    #[serde(default)]
    parent_sourced_id: Option<&'a str>,
}

/// A row of `classes.csv`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClassRow<'a> {
    sourced_id: &'a str,
    status: &'a str,
    title: &'a str,
    #[serde(default)]
    class_type: Option<&'a str>,
    #[serde(default)]
    location: Option<&'a str>,
    #[serde(default)]
    school_sourced_id: Option<&'a str>,
    #[serde(default)]
    course_sourced_id: Option<&'a str>,
}

/// A row of `users.csv` (1.1's columns, and 1.2's `preferredFirstName`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserRow<'a> {
    sourced_id: &'a str,
    status: &'a str,
    #[serde(default)]
    date_last_modified: Option<&'a str>,
    #[serde(default)]
    enabled_user: Option<&'a str>,
    #[serde(default)]
    role: Option<&'a str>,
    username: &'a str,
    #[serde(default)]
    email: Option<&'a str>,
    given_name: &'a str,
    family_name: &'a str,
    #[serde(default)]
    middle_name: Option<&'a str>,
    #[serde(default)]
    preferred_first_name: Option<&'a str>,
    #[serde(default)]
    identifier: Option<&'a str>,
    #[serde(default)]
    phone: Option<&'a str>,
    #[serde(default)]
    sms: Option<&'a str>,
    #[serde(default)]
    grades: &'a str,
    #[serde(default)]
    org_sourced_ids: &'a str,
    #[serde(default)]
    agent_sourced_ids: &'a str,
}

/// A row of `enrollments.csv`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnrollmentRow<'a> {
    sourced_id: &'a str,
    status: &'a str,
    #[serde(default)]
    role: Option<&'a str>,
    user_sourced_id: &'a str,
    class_sourced_id: &'a str,
}

fn reference(sourced_id: &str) -> Ref<'_> {
    Ref { sourced_id }
}

/// The items of a cell of values joined by commas.
fn items(cell: &str) -> impl Iterator<Item = &str> {
    cell.split(',').filter(|item| !item.is_empty())
}

impl<'a> SessionRow<'a> {
    fn record(self) -> Session<'a> {
        Session {
            sourced_id: self.sourced_id,
            status: self.status,
            title: self.title,
            session_type: self.session_type,
            start_date: self.start_date,
            end_date: self.end_date,
            parent: self.parent_sourced_id.map(reference),
        }
    }
}

impl<'a> ClassRow<'a> {
    fn record(self) -> Class<'a> {
        Class {
            sourced_id: self.sourced_id,
            status: self.status,
            title: self.title,
            class_type: self.class_type,
            location: self.location,
            school: self.school_sourced_id.map(reference),
            course: self.course_sourced_id.map(reference),
        }
    }
}

impl<'a> UserRow<'a> {
    fn record(self) -> User<'a> {
        User {
            sourced_id: self.sourced_id,
            status: self.status,
            date_last_modified: self.date_last_modified,
            enabled_user: !self
                .enabled_user
                .is_some_and(|v| v.eq_ignore_ascii_case("false")),
            role: self.role,
            username: self.username,
            email: self.email,
            given_name: self.given_name,
            family_name: self.family_name,
            middle_name: self.middle_name,
            preferred_first_name: self.preferred_first_name,
            identifier: self.identifier,
            phone: self.phone,
            sms: self.sms,
            grades: items(self.grades).collect(),
            orgs: items(self.org_sourced_ids).map(reference).collect(),
            agents: items(self.agent_sourced_ids).map(reference).collect(),
        }
    }
}

impl<'a> EnrollmentRow<'a> {
    fn record(self) -> Enrollment<'a> {
        Enrollment {
            sourced_id: self.sourced_id,
            status: self.status,
            role: self.role,
            user: reference(self.user_sourced_id),
            class: reference(self.class_sourced_id),
        }
    }
}

/// Parses each row as `R`, makes it the record a page holds, and lends it to `each`.
fn parse_each<'r, R, T>(
    rows: &'r Rows,
    record: fn(R) -> T,
    each: &mut dyn FnMut(&dyn Record),
) -> Result<u64, Failure>
where
    R: Deserialize<'r>,
    T: Record,
{
    for row in &rows.rows {
        let parsed: R = row.deserialize(Some(&*rows.headers)).map_err(|e| {
            let line = row.position().map_or(0, |p| p.line());
            Failure::config(format!("floor: {} line {line}: {e}", rows.file))
        })?;
        each(&record(parsed));
    }
    Ok(rows.rows.len() as u64)
}

/// Parses a batch of `kind`'s rows and lends each record to `each`; the number of rows.
pub fn parse_rows(
    kind: Collection,
    rows: &Rows,
    each: &mut dyn FnMut(&dyn Record),
) -> Result<u64, Failure> {
    match kind {
        Collection::Orgs => parse_each(rows, |o: Org| o, each),
        Collection::AcademicSessions => parse_each(rows, SessionRow::record, each),
        Collection::Courses => parse_each(rows, |c: Course| c, each),
        Collection::Classes => parse_each(rows, ClassRow::record, each),
        Collection::Users => parse_each(rows, UserRow::record, each),
        Collection::Enrollments => parse_each(rows, EnrollmentRow::record, each),
        Collection::Demographics => Err(Failure::config("floor: the floor reads no demographics")),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::super::floor::{cell_texts, content_hash, parse_page};
    use super::*;

    /// A package of the six files, each with its header and `rows` lines.
    fn package(dir: &Path, files: &[(&str, &str)]) -> std::path::PathBuf {
        let path = dir.join("package.zip");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        for (name, text) in files {
            zip.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            zip.write_all(text.as_bytes()).unwrap();
        }
        zip.finish().unwrap();
        path
    }

    const FILES: [(&str, &str); 6] = [
        (
            "orgs.csv",
            "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId\norg-1,active,2026-08-01T00:00:00.000Z,Lincoln,school,0101,org-0\n",
        ),
        (
            "academicSessions.csv",
            "sourcedId,status,dateLastModified,title,type,startDate,endDate,parentSourcedId,schoolYear\nas-1,active,,S1,semester,2026-08-17,2026-12-18,as-0,2027\n",
        ),
        (
            "courses.csv",
            "sourcedId,status,dateLastModified,schoolYearSourcedId,title\ncrs-1,active,,as-0,Art\n",
        ),
        (
            "classes.csv",
            "sourcedId,status,dateLastModified,title,grades,courseSourcedId,classCode,classType,location,schoolSourcedId,termSourcedIds\ncls-1,active,,Art - A,05,crs-1,ART-A,scheduled,Room 1,org-1,as-1\n",
        ),
        (
            "users.csv",
            "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password\n\
             usr-1,active,2026-08-01T00:00:00.000Z,true,\"org-1,org-2\",student,ana.li,{LDAP:ana.li},Ana,Li,,100001,ana.li@students.example,555,,usr-7,\"05,06\",\n\
             usr-2,active,2026-08-01T00:00:00.000Z,false,org-1,teacher,bo,,Bo,O'Neil,,,,,,,,\n",
        ),
        (
            "enrollments.csv",
            "sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role,primary,beginDate,endDate\nenr-1,active,,cls-1,org-1,usr-1,student,false,,\n",
        ),
    ];

    /// Every record of the package, by collection: its sourcedId, cells and hash.
    fn read(path: &Path) -> Vec<(Collection, String, Vec<String>, u64)> {
        let mut out = Vec::new();
        read_package(path, |kind, chunk| {
            let Chunk::Rows(rows) = &chunk else {
                panic!("a package reads as rows")
            };
            let n = parse_rows(kind, rows, &mut |rec| {
                let cells = cell_texts(rec);
                out.push((kind, rec.sourced_id().to_owned(), cells, content_hash(rec)));
            })?;
            assert_eq!(n, 1 + u64::from(kind == Collection::Users));
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn a_package_reads_the_fields_a_page_does_and_hashes_them_alike() {
        let dir = test_kit::TempDir::new("floor-csv");
        let recs = read(&package(&dir, &FILES));
        let kinds: Vec<Collection> = recs.iter().map(|r| r.0).collect();
        assert_eq!(
            kinds,
            [
                Collection::Orgs,
                Collection::AcademicSessions,
                Collection::Courses,
                Collection::Classes,
                Collection::Users,
                Collection::Users,
                Collection::Enrollments
            ]
        );
        let user = &recs[4];
        assert_eq!(user.1, "usr-1");
        assert_eq!(
            user.2,
            [
                "active",
                "2026-08-01T00:00:00.000Z",
                "1",
                "student",
                "ana.li",
                "ana.li@students.example",
                "Ana",
                "Li",
                "NULL",
                "NULL",
                "100001",
                "NULL",
                "555",
                "05",
                "org-1,org-2",
                "usr-7"
            ]
        );
        assert_eq!(recs[5].2[2], "0", "enabledUser false");
        assert_eq!(recs[6].2, ["active", "student", "usr-1", "cls-1"]);
        assert_eq!(recs[3].2[4..], ["org-1", "crs-1"]);
        assert_eq!(recs[1].2[5], "as-0");

        // The same person on a page hashes as the row does: what is kept is the same.
        let page = r#"{"users":[{"sourcedId":"usr-1","status":"active","dateLastModified":"2026-08-01T00:00:00.000Z",
            "enabledUser":true,"role":"student","username":"ana.li","givenName":"Ana","familyName":"Li",
            "identifier":"100001","email":"ana.li@students.example","sms":"555",
            "orgs":[{"sourcedId":"org-1"},{"sourcedId":"org-2"}],"agents":[{"sourcedId":"usr-7"}],"grades":["05","06"]}]}"#;
        let mut hashes = Vec::new();
        parse_page(Collection::Users, page.as_bytes(), &mut |rec| {
            hashes.push(content_hash(rec));
        })
        .unwrap();
        assert_eq!(hashes, [user.3]);
    }

    #[test]
    fn a_bad_row_names_its_file_and_line_and_a_missing_file_its_name() {
        let dir = test_kit::TempDir::new("floor-csv");
        let mut files = FILES;
        files[5].1 = "sourcedId,status,dateLastModified,classSourcedId\nenr-1,active,,cls-1\n";
        let path = package(&dir, &files);
        let err = read_package(&path, |kind, chunk| {
            let Chunk::Rows(rows) = &chunk else {
                panic!("rows")
            };
            parse_rows(kind, rows, &mut |_| {}).map(drop)
        })
        .unwrap_err();
        assert!(
            err.message.contains("enrollments.csv line 2") && err.message.contains("userSourcedId"),
            "{}",
            err.message
        );
        let path = package(&dir, &files[..4]);
        let err = read_package(&path, |_, _| Ok(())).unwrap_err();
        assert!(err.message.contains("users.csv"), "{}", err.message);
    }
}
