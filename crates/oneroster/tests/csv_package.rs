//! The CSV package reader against the public sample packages and hand-made edge cases.

use std::io::Write;
use std::path::{Path, PathBuf};

use oneroster::csv::{CsvPackage, PackageError};
use oneroster::report::{CollectionReport, Coverage};
use oneroster::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/oneroster-csv")
        .join(name)
}

fn read_all<T: oneroster::csv::CsvRecord>(pkg: &mut CsvPackage) -> (Vec<T>, CollectionReport) {
    let mut out = Vec::new();
    let report = pkg.read::<T>(|r| out.push(r)).unwrap();
    (out, report)
}

#[test]
fn full_v11_sample_reads_with_exact_counts() {
    let mut pkg = CsvPackage::open(&fixture("Test_full_data_set.zip")).unwrap();
    assert_eq!(pkg.version(), Version::V1_1);
    assert_eq!(pkg.coverage(Collection::Users), Some(Coverage::Full));
    assert_eq!(pkg.coverage(Collection::Courses), None);
    let (users, report) = read_all::<User>(&mut pkg);
    assert_eq!(users.len(), 6);
    assert!(report.complete);
    assert_eq!(report.records, 6);
    let (orgs, _) = read_all::<Org>(&mut pkg);
    assert_eq!(orgs.len(), 1);
    let (classes, _) = read_all::<Class>(&mut pkg);
    assert_eq!(classes.len(), 2);
    let (enrollments, _) = read_all::<Enrollment>(&mut pkg);
    assert_eq!(enrollments.len(), 6);
    let (sessions, _) = read_all::<AcademicSession>(&mut pkg);
    assert_eq!(sessions.len(), 5);

    let john = users
        .iter()
        .find(|u| u.base.sourced_id == "usr-222-123456")
        .unwrap();
    assert_eq!(john.username, "john.doe");
    assert_eq!(john.email.as_deref(), Some("john.doe@myschool.com"));
    assert_eq!(john.primary_role(), Some(&Role::Teacher));
    assert_eq!(john.orgs, ["org-sch-222-456"]);
    assert!(john.base.date_last_modified.is_some());
    let mary = users
        .iter()
        .find(|u| u.base.sourced_id == "usr-222-66778899")
        .unwrap();
    assert_eq!(
        mary.base.status,
        Status::Active,
        "a blank status reads as active"
    );
    assert!(mary.base.date_last_modified.is_none());
    assert_eq!(mary.user_ids[0].kind, "LDAP");
    assert_eq!(mary.agents, ["usr-222-123456"]);

    let history = classes
        .iter()
        .find(|c| c.base.sourced_id == "cls-222-123478")
        .unwrap();
    assert_eq!(history.base.status, Status::ToBeDeleted);
    assert_eq!(history.class_type, Some(ClassType::Homeroom));
    assert_eq!(history.terms, ["as-trm-222-1234", "as-trm-222-1235"]);
    assert_eq!(history.periods, ["1", "2", "3"]);
    let physics = classes
        .iter()
        .find(|c| c.base.sourced_id == "cls-222-123456")
        .unwrap();
    assert_eq!(physics.grades, ["09", "10", "11"]);
    assert_eq!(
        physics.class_type,
        Some(ClassType::Scheduled),
        "`Scheduled` matches case-insensitively"
    );
}

#[test]
fn minimal_v11_sample_reads_with_exact_counts() {
    let mut pkg = CsvPackage::open(&fixture("Test_minimal_data_set.zip")).unwrap();
    let (users, report) = read_all::<User>(&mut pkg);
    assert_eq!(users.len(), 6);
    assert!(report.complete);
    assert_eq!(read_all::<Org>(&mut pkg).0.len(), 1);
    assert_eq!(read_all::<Class>(&mut pkg).0.len(), 2);
    assert_eq!(read_all::<Enrollment>(&mut pkg).0.len(), 6);
    assert_eq!(read_all::<AcademicSession>(&mut pkg).0.len(), 5);
}

#[test]
fn v12_delta_sample_joins_roles_to_users() {
    let mut pkg = CsvPackage::open(&fixture("oneroster_test_data.zip")).unwrap();
    assert_eq!(pkg.version(), Version::V1_2);
    assert_eq!(pkg.coverage(Collection::Users), Some(Coverage::Delta));
    let (users, report) = read_all::<User>(&mut pkg);
    assert_eq!(report.coverage, Coverage::Delta);
    assert_eq!(users.len(), 1);
    let bruce = &users[0];
    assert_eq!(bruce.username, "brucewayne");
    assert_eq!(bruce.primary_role(), Some(&Role::Student));
    assert_eq!(bruce.primary_org.as_deref(), Some("ORG_1"));
    assert_eq!(read_all::<Course>(&mut pkg).0.len(), 1);
    assert_eq!(read_all::<Demographic>(&mut pkg).0.len(), 1);
    assert_eq!(read_all::<Enrollment>(&mut pkg).0.len(), 1);
    assert_eq!(read_all::<Org>(&mut pkg).0.len(), 1);
    assert_eq!(read_all::<Class>(&mut pkg).0.len(), 1);
    assert_eq!(read_all::<AcademicSession>(&mut pkg).0.len(), 1);
}

#[test]
fn misspelled_v12_sample_reads_with_warnings_naming_each_problem() {
    let mut pkg = CsvPackage::open(&fixture("v1p2_full_dataset.zip")).unwrap();
    let (users, report) = read_all::<User>(&mut pkg);
    assert_eq!(users.len(), 6);
    let warnings = pkg.warnings().join("\n");
    assert!(
        warnings.contains("userprofiles.csv: not a OneRoster file"),
        "{warnings}"
    );
    assert!(
        warnings.contains("did you mean userProfiles.csv"),
        "{warnings}"
    );
    assert!(
        warnings.contains("unknown column `prefferedGivenName` kept as an extension (did you mean `preferredGivenName`?)"),
        "{warnings}"
    );
    assert!(warnings.contains("`dataLastModified`"), "{warnings}");
    assert!(
        report
            .sample_warnings
            .iter()
            .any(|w| w.starts_with("users.csv line 2: column `dateLastModified`: '1/05/2023'")),
        "{:?}",
        report.sample_warnings
    );
    // Roles come from roles.csv even though its header is misspelled.
    let john = users
        .iter()
        .find(|u| u.base.sourced_id == "usr-222-123456")
        .unwrap();
    assert_eq!(john.primary_role(), Some(&Role::Teacher));
    assert_eq!(john.pronouns.as_deref(), Some("he/him/his"));
    assert!(
        john.preferred_first_name.is_none(),
        "misspelled columns are not guessed into fields"
    );
    assert!(
        john.base
            .extensions
            .iter()
            .any(|(k, v)| k == "prefferedMiddleName" && v.get() == "\"Mick\"")
    );
}

/// Writes a package folder from (file, contents) pairs.
fn folder(files: &[(&str, &str)]) -> tempdir::Dir {
    let dir = tempdir::Dir::new();
    for (name, body) in files {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    dir
}

fn zip_of(files: &[(&str, &[u8])]) -> tempdir::Dir {
    let dir = tempdir::Dir::new();
    let f = std::fs::File::create(dir.path().join("p.zip")).unwrap();
    let mut z = zip::ZipWriter::new(f);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, body) in files {
        z.start_file(*name, opts).unwrap();
        z.write_all(body).unwrap();
    }
    z.finish().unwrap();
    dir
}

const MANIFEST_11: &str =
    "propertyName,value\nmanifest.version,1.0\noneroster.version,1.1\nfile.users,bulk\n";

#[test]
fn columns_by_name_bom_crlf_quotes_and_extra_columns() {
    let users = "\u{feff}username,sourcedId,role,orgSourcedIds,givenName,familyName,vendorNote,grades,enabledUser\r\n\
                 ana,u1,student,\"s1,s2\",Ana,\"O'Neil, Jr.\",hello,\"09,10\",0\r\n\
                 \r\n\
                 bo,u2,teacher,s1,Bo,\"Multi\nLine\",,,\r\n";
    let dir = folder(&[("manifest.csv", MANIFEST_11), ("users.csv", users)]);
    let mut pkg = CsvPackage::open(dir.path()).unwrap();
    let (u, report) = read_all::<User>(&mut pkg);
    assert_eq!(u.len(), 2, "the blank line is skipped");
    assert!(report.complete);
    assert_eq!(u[0].base.sourced_id, "u1");
    assert_eq!(u[0].family_name, "O'Neil, Jr.");
    assert_eq!(u[0].orgs, ["s1", "s2"]);
    assert_eq!(u[0].grades, ["09", "10"]);
    assert!(!u[0].enabled_user);
    assert_eq!(u[0].base.extensions[0].0, "vendorNote");
    assert_eq!(u[1].family_name, "Multi\nLine");
    assert!(u[1].enabled_user);
    assert!(
        pkg.warnings()
            .iter()
            .any(|w| w.contains("unknown column `vendorNote`"))
    );
}

#[test]
fn a_zip_of_a_folder_is_read_too() {
    let users = "sourcedId,role,orgSourcedIds,username,givenName,familyName\nu1,student,s1,a,A,B\n";
    let dir = zip_of(&[
        ("district/manifest.csv", MANIFEST_11.as_bytes()),
        ("district/users.csv", users.as_bytes()),
    ]);
    let mut pkg = CsvPackage::open(&dir.path().join("p.zip")).unwrap();
    assert_eq!(read_all::<User>(&mut pkg).0.len(), 1);
}

#[test]
fn missing_required_column_names_file_and_column() {
    let dir = folder(&[
        ("manifest.csv", MANIFEST_11),
        (
            "users.csv",
            "sourcedId,username,givenName,familyName,orgSourcedIds\nu1,a,A,B,s1\n",
        ),
    ]);
    let mut pkg = CsvPackage::open(dir.path()).unwrap();
    let err = pkg.read::<User>(|_| {}).unwrap_err();
    assert!(matches!(err, PackageError::MissingColumn { .. }));
    assert_eq!(
        err.to_string(),
        "users.csv: required column `role` is missing (the header has: sourcedId,username,givenName,familyName,orgSourcedIds)"
    );
}

#[test]
fn non_utf8_is_an_error_with_line_and_column() {
    let mut users = b"sourcedId,role,orgSourcedIds,username,givenName,familyName\nu1,student,s1,a,A,B\nu2,student,s1,b,Jos".to_vec();
    users.extend_from_slice(&[0xE9]); // Latin-1 é
    users.extend_from_slice(b",C\n");
    let dir = zip_of(&[
        ("manifest.csv", MANIFEST_11.as_bytes()),
        ("users.csv", &users),
    ]);
    let mut pkg = CsvPackage::open(&dir.path().join("p.zip")).unwrap();
    let mut seen = 0;
    let err = pkg.read::<User>(|_| seen += 1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "users.csv line 3, column `givenName`: not valid UTF-8 (byte 3 of the cell); export the file as UTF-8"
    );
}

#[test]
fn a_character_split_across_cells_is_not_utf8() {
    // Each row is valid UTF-8 as a whole (the reader checks rows in one pass), but not
    // cell by cell: `\xC3` ends one cell and `\xA9` (together, é) starts the next.
    let header = "sourcedId,role,orgSourcedIds,username,givenName,familyName,password\n";
    for (row, want) in [
        (
            &b"u1,student,s1,a,\"Jos\xC3\",\xA9,pw\n"[..],
            "users.csv line 2, column `givenName`: not valid UTF-8 (byte 3 of the cell); export the file as UTF-8",
        ),
        // In a column that is never kept, and in a cell past the header's.
        (
            b"u1,student,s1,a,A,B,\"pw\xC3\",\xA9\n",
            "users.csv line 2, column `password`: not valid UTF-8 (byte 2 of the cell); export the file as UTF-8",
        ),
    ] {
        let mut users = header.as_bytes().to_vec();
        users.extend_from_slice(row);
        let dir = zip_of(&[
            ("manifest.csv", MANIFEST_11.as_bytes()),
            ("users.csv", &users),
        ]);
        let mut pkg = CsvPackage::open(&dir.path().join("p.zip")).unwrap();
        let err = pkg.read_each::<User>(|_| {}).unwrap_err();
        assert_eq!(err.to_string(), want);
    }
}

#[test]
fn rows_without_sourced_id_are_skipped_and_spoil_completeness() {
    let dir = folder(&[
        ("manifest.csv", MANIFEST_11),
        (
            "users.csv",
            "sourcedId,role,orgSourcedIds,username,givenName,familyName\n,student,s1,a,A,B\nu2,student,s1,b,B,C\n",
        ),
    ]);
    let mut pkg = CsvPackage::open(dir.path()).unwrap();
    let (u, report) = read_all::<User>(&mut pkg);
    assert_eq!(u.len(), 1);
    assert!(!report.complete);
    assert_eq!(
        report.problems,
        ["users.csv line 2: no sourcedId; row skipped"]
    );
}

#[test]
fn zip_bomb_is_stopped_by_the_cap() {
    let mut users = b"sourcedId,role,orgSourcedIds,username,givenName,familyName\n".to_vec();
    for i in 0..20_000 {
        users.extend_from_slice(format!("u{i},student,s1,user{i},Given,Family\n").as_bytes());
    }
    let dir = zip_of(&[
        ("manifest.csv", MANIFEST_11.as_bytes()),
        ("users.csv", &users),
    ]);
    let mut pkg = CsvPackage::open_with_limit(&dir.path().join("p.zip"), 100_000).unwrap();
    let err = pkg.read::<User>(|_| {}).unwrap_err();
    assert!(matches!(err, PackageError::TooLarge { .. }), "{err}");
    let mut pkg = CsvPackage::open_with_limit(&dir.path().join("p.zip"), 10_000_000).unwrap();
    assert_eq!(read_all::<User>(&mut pkg).0.len(), 20_000);
}

#[test]
fn manifest_listing_a_missing_file_is_an_error() {
    let dir = folder(&[
        (
            "manifest.csv",
            "propertyName,value\noneroster.version,1.1\nfile.users,bulk\nfile.orgs,bulk\n",
        ),
        (
            "users.csv",
            "sourcedId,role,orgSourcedIds,username,givenName,familyName\n",
        ),
    ]);
    let err = CsvPackage::open(dir.path()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "orgs.csv: listed as `bulk` in manifest.csv but missing from the package"
    );
}

#[test]
fn not_a_package() {
    let dir = folder(&[("readme.txt", "hello")]);
    assert!(matches!(
        CsvPackage::open(dir.path()).unwrap_err(),
        PackageError::NotAPackage { .. }
    ));
    let f = dir.path().join("readme.txt");
    assert!(matches!(
        CsvPackage::open(&f).unwrap_err(),
        PackageError::Zip { .. }
    ));
}

/// A throwaway directory removed on drop (no extra dependency for one helper).
mod tempdir {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU32, Ordering};

    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new() -> Dir {
            static N: AtomicU32 = AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "oneroster-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
