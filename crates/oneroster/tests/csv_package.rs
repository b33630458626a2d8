//! The CSV package reader against the project's sample packages (`tests/data/packages/`)
//! and hand-made edge cases.

use std::io::Write;
use std::path::{Path, PathBuf};

use oneroster::csv::{CsvPackage, PackageError};
use oneroster::report::{CollectionReport, Coverage};
use oneroster::*;

/// A sample package from `tests/data/packages/`, as the folder it is committed as and as a
/// zip of that folder (how packages usually arrive). The zip lives as long as the `Dir`.
pub(crate) fn sample(name: &str) -> (tempdir::Dir, [PathBuf; 2]) {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/packages")
        .join(name);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", folder.display());
    let entries: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let dir = zip_of(&entries);
    let zip = dir.path().join("p.zip");
    (dir, [folder, zip])
}

pub(crate) fn read_all<T: oneroster::csv::CsvRecord>(
    pkg: &mut CsvPackage,
) -> (Vec<T>, CollectionReport) {
    let mut out = Vec::new();
    let report = pkg.read::<T>(|r| out.push(r)).unwrap();
    (out, report)
}

fn find<'a, T: Record>(records: &'a [T], id: &str) -> &'a T {
    records
        .iter()
        .find(|r| r.base().sourced_id == id)
        .unwrap_or_else(|| panic!("no record {id}"))
}

#[test]
fn full_v11_sample_reads_with_exact_counts() {
    let (_zip, paths) = sample("v11-bulk-full");
    for path in paths {
        let at = path.display().to_string();
        let mut pkg = CsvPackage::open(&path).unwrap();
        assert_eq!(pkg.version(), Version::V1_1, "{at}");
        assert_eq!(pkg.coverage(Collection::Users), Some(Coverage::Full));
        assert_eq!(
            pkg.coverage(Collection::Courses),
            None,
            "listed as absent in the manifest"
        );
        assert_eq!(
            pkg.manifest().source_system_name,
            None,
            "`absent` as a value"
        );
        assert!(pkg.warnings().is_empty(), "{at}: {:?}", pkg.warnings());

        let (users, report) = read_all::<User>(&mut pkg);
        assert_eq!(users.len(), 3, "{at}");
        assert!(report.complete);
        assert_eq!(report.records, 3);
        assert_eq!(
            report.records_with_warnings, 0,
            "{:?}",
            report.sample_warnings
        );
        let (orgs, _) = read_all::<Org>(&mut pkg);
        assert_eq!(orgs.len(), 1);
        let (classes, _) = read_all::<Class>(&mut pkg);
        assert_eq!(classes.len(), 2);
        let (enrollments, _) = read_all::<Enrollment>(&mut pkg);
        assert_eq!(enrollments.len(), 4);
        // Read for the roster: the same people, classes and roles, nothing dropped.
        let (cores, report) = read_all::<EnrollmentCore>(&mut pkg);
        assert!(report.complete, "{at}");
        assert_eq!(cores.len(), enrollments.len(), "{at}");
        for (c, e) in cores.iter().zip(&enrollments) {
            assert_eq!(
                (
                    &c.base.sourced_id,
                    &c.base.status,
                    &c.user,
                    &c.class,
                    &c.role
                ),
                (
                    &e.base.sourced_id,
                    &e.base.status,
                    &e.user,
                    &e.class,
                    &e.role
                ),
                "{at}"
            );
        }
        let (sessions, _) = read_all::<AcademicSession>(&mut pkg);
        assert_eq!(sessions.len(), 4);

        let teacher = find(&users, "usr-t-101");
        assert_eq!(teacher.username, "r.okafor");
        assert_eq!(
            teacher.email.as_deref(),
            Some("r.okafor@aldercreek.example")
        );
        assert_eq!(teacher.primary_role(), Some(&Role::Teacher));
        assert_eq!(teacher.orgs, ["org-dept-sci"]);
        assert_eq!(teacher.primary_org.as_deref(), Some("org-dept-sci"));
        assert!(
            teacher.base.date_last_modified.is_some(),
            "a bare date (2024-08-20) is a timestamp at midnight UTC"
        );
        assert!(teacher.user_ids.is_empty());
        let student = find(&users, "usr-s-201");
        assert_eq!(
            student.base.status,
            Status::Active,
            "a blank status reads as active"
        );
        assert!(student.base.date_last_modified.is_none());
        assert_eq!(student.user_ids[0].kind, "LDAP");
        assert_eq!(student.user_ids[0].identifier, "s201");
        assert_eq!(student.agents, ["usr-p-301"]);
        assert_eq!(student.grades, ["10"]);
        let parent = find(&users, "usr-p-301");
        assert_eq!(parent.primary_role(), Some(&Role::Parent));
        assert_eq!(parent.given_name, "Zoë");
        assert_eq!(
            parent
                .user_ids
                .iter()
                .map(|id| (id.kind.as_str(), id.identifier.as_str()))
                .collect::<Vec<_>>(),
            [("LDAP", "p301"), ("LTI", "88"), ("Fed", "p-301")]
        );
        assert_eq!(parent.agents, ["usr-s-201"]);

        let department = &orgs[0];
        assert_eq!(department.org_type, Some(OrgType::Department));
        assert_eq!(
            department.parent.as_deref(),
            Some("org-sch-alder"),
            "kept though the parent is not in the package"
        );

        let homeroom = find(&classes, "cls-hr-12");
        assert_eq!(homeroom.base.status, Status::ToBeDeleted);
        assert_eq!(homeroom.class_type, Some(ClassType::Homeroom));
        assert_eq!(homeroom.terms, ["as-2025-t1", "as-2025-t2"]);
        assert_eq!(homeroom.periods, ["1", "2", "3"]);
        let chemistry = find(&classes, "cls-chem-1");
        assert_eq!(chemistry.grades, ["09", "10", "11"]);
        assert_eq!(
            chemistry.class_type,
            Some(ClassType::Scheduled),
            "`Scheduled` matches case-insensitively"
        );
        assert_eq!(chemistry.subjects, ["Science", "Chemistry"]);
        assert_eq!(chemistry.subject_codes, ["SCI200", "CHM101"]);

        let taught = find(&enrollments, "enr-chem-t101");
        assert_eq!(taught.primary, Some(true));
        assert_eq!(taught.role, Some(Role::Teacher));
        assert_eq!(
            taught.begin_date,
            Some(jiff::civil::date(2024, 8, 26)),
            "{at}"
        );
        assert_eq!(find(&enrollments, "enr-chem-s201").primary, Some(false));

        let marking = find(&sessions, "as-2025-mp1");
        assert_eq!(
            marking.base.status,
            Status::ToBeDeleted,
            "`inactive` means tobedeleted"
        );
        assert_eq!(marking.session_type, Some(SessionType::GradingPeriod));
        assert_eq!(marking.parent.as_deref(), Some("as-2025-t1"));
        assert_eq!(
            find(&sessions, "as-2025").session_type,
            Some(SessionType::SchoolYear)
        );
    }
}

#[test]
fn minimal_v11_sample_reads_with_exact_counts() {
    let (_zip, paths) = sample("v11-bulk-minimal");
    for path in paths {
        let at = path.display().to_string();
        let mut pkg = CsvPackage::open(&path).unwrap();
        assert!(pkg.warnings().is_empty(), "{at}: {:?}", pkg.warnings());
        let (users, report) = read_all::<User>(&mut pkg);
        assert_eq!(users.len(), 3, "{at}");
        assert!(report.complete);
        assert_eq!(
            report.records_with_warnings, 0,
            "blank cells are not warnings: {:?}",
            report.sample_warnings
        );
        assert_eq!(report.newest_modified, None);
        for u in &users {
            assert_eq!(u.base.status, Status::Active, "{}", u.base.sourced_id);
            assert!(u.base.date_last_modified.is_none());
            assert!(u.enabled_user);
            assert!(u.email.is_none() && u.identifier.is_none() && u.middle_name.is_none());
            assert!(u.user_ids.is_empty() && u.agents.is_empty() && u.grades.is_empty());
            assert_eq!(u.orgs, ["org-dept-sci"]);
        }
        assert_eq!(
            find(&users, "usr-s-201").primary_role(),
            Some(&Role::Student)
        );

        let (orgs, _) = read_all::<Org>(&mut pkg);
        assert_eq!(orgs.len(), 1);
        assert_eq!(orgs[0].identifier, None);
        assert_eq!(orgs[0].parent, None);
        let (classes, report) = read_all::<Class>(&mut pkg);
        assert_eq!(classes.len(), 2);
        assert_eq!(report.records_with_warnings, 0);
        let homeroom = find(&classes, "cls-hr-12");
        assert_eq!(homeroom.class_type, Some(ClassType::Homeroom));
        assert_eq!(homeroom.terms, ["as-2025-t1", "as-2025-t2"]);
        assert!(homeroom.periods.is_empty() && homeroom.location.is_none());
        let (enrollments, _) = read_all::<Enrollment>(&mut pkg);
        assert_eq!(enrollments.len(), 4);
        assert!(
            enrollments
                .iter()
                .all(|e| e.primary.is_none() && e.begin_date.is_none())
        );
        let (sessions, _) = read_all::<AcademicSession>(&mut pkg);
        assert_eq!(sessions.len(), 4);
        assert!(sessions.iter().all(|s| s.base.status == Status::Active));
    }
}

#[test]
fn v12_delta_sample_joins_roles_to_users() {
    let (_zip, paths) = sample("v12-delta-roles");
    for path in paths {
        let at = path.display().to_string();
        let mut pkg = CsvPackage::open(&path).unwrap();
        assert_eq!(pkg.version(), Version::V1_2, "{at}");
        assert_eq!(pkg.coverage(Collection::Users), Some(Coverage::Delta));
        assert_eq!(
            pkg.manifest().source_system_name.as_deref(),
            Some("Harbor SIS")
        );
        assert_eq!(pkg.manifest().source_system_code.as_deref(), Some("HSIS"));
        assert!(pkg.warnings().is_empty(), "{at}: {:?}", pkg.warnings());

        let (users, report) = read_all::<User>(&mut pkg);
        assert_eq!(report.coverage, Coverage::Delta);
        assert!(report.complete);
        assert!(report.newest_modified.is_some());
        assert_eq!(users.len(), 1, "{at}");
        let kestrel = &users[0];
        assert_eq!(kestrel.username, "kestrel.ames");
        assert_eq!(kestrel.primary_role(), Some(&Role::Student));
        assert_eq!(
            kestrel.primary_org.as_deref(),
            Some("sch-harbor"),
            "the primary org comes from the primary role when the column is blank"
        );
        assert_eq!(kestrel.orgs, ["sch-harbor"]);
        assert_eq!(kestrel.roles.len(), 1);
        assert_eq!(kestrel.roles[0].user_profile.as_deref(), Some("prof-0042"));
        assert_eq!(kestrel.preferred_first_name.as_deref(), Some("Kes"));
        assert!(kestrel.base.extensions.is_empty(), "every column is known");

        let (courses, _) = read_all::<Course>(&mut pkg);
        assert_eq!(courses.len(), 1);
        assert_eq!(courses[0].org.as_deref(), Some("sch-harbor"));
        let (demographics, _) = read_all::<Demographic>(&mut pkg);
        assert_eq!(demographics.len(), 1);
        assert_eq!(
            demographics[0].birth_date,
            Some(jiff::civil::date(2011, 2, 14))
        );
        let (enrollments, report) = read_all::<Enrollment>(&mut pkg);
        assert_eq!(report.coverage, Coverage::Delta);
        assert_eq!(enrollments.len(), 2);
        assert_eq!(
            find(&enrollments, "enr-tides-0042").base.status,
            Status::ToBeDeleted,
            "a delta's one explicit delete"
        );
        assert_eq!(read_all::<Org>(&mut pkg).0.len(), 1);
        assert_eq!(read_all::<Class>(&mut pkg).0.len(), 1);
        assert_eq!(read_all::<AcademicSession>(&mut pkg).0.len(), 1);
    }
}

#[test]
fn misspelled_v12_sample_reads_with_warnings_naming_each_problem() {
    let (_zip, paths) = sample("v12-bulk-misspelt");
    for path in paths {
        let at = path.display().to_string();
        let mut pkg = CsvPackage::open(&path).unwrap();
        assert_eq!(pkg.version(), Version::V1_2, "{at}");
        assert_eq!(
            pkg.coverage(Collection::Users),
            Some(Coverage::Full),
            "{at}"
        );
        let (users, report) = read_all::<User>(&mut pkg);
        assert_eq!(users.len(), 3, "{at}");
        assert!(
            report.complete,
            "bad dates cost a field, not the collection"
        );
        let warnings = pkg.warnings().join("\n");
        for expected in [
            "userprofiles.csv: not a OneRoster file; ignored (file names are case-sensitive: did you mean userProfiles.csv?)",
            "file.userProfiles is '', expected bulk, delta or absent; read as absent",
            "users.csv: unknown column `prefferedGivenName` kept as an extension (did you mean `preferredGivenName`?)",
            "users.csv: unknown column `prefferedMiddleName` kept as an extension (did you mean `preferredMiddleName`?)",
            "roles.csv: unknown column `dataLastModified` kept as an extension (did you mean `dateLastModified`?)",
        ] {
            assert!(warnings.contains(expected), "{at}: {expected}\n{warnings}");
        }
        assert_eq!(
            report.records_with_warnings, 2,
            "{:?}",
            report.sample_warnings
        );
        assert!(
            report.sample_warnings[0]
                .starts_with("users.csv line 2: column `dateLastModified`: '3/09/2024'"),
            "{:?}",
            report.sample_warnings
        );
        assert!(
            report.sample_warnings[1]
                .starts_with("users.csv line 4: column `dateLastModified`: '21/08/2024'"),
            "{:?}",
            report.sample_warnings
        );

        // Roles come from roles.csv even though its header is misspelled.
        let marisol = find(&users, "bh-t-11");
        assert_eq!(
            marisol.username, "m.castellanos",
            "the row is kept without its date"
        );
        assert!(marisol.base.date_last_modified.is_none());
        assert_eq!(marisol.primary_role(), Some(&Role::Teacher));
        assert_eq!(
            marisol
                .roles
                .iter()
                .map(|r| (&r.role_type, &r.role))
                .collect::<Vec<_>>(),
            [
                (&RoleType::Primary, &Role::Teacher),
                (&RoleType::Secondary, &Role::Guardian)
            ],
            "the primary role first, whatever the file's order"
        );
        assert_eq!(marisol.pronouns.as_deref(), Some("she/her"));
        assert_eq!(marisol.middle_name.as_deref(), Some("Inés"));
        assert!(
            marisol.preferred_first_name.is_none() && marisol.preferred_middle_name.is_none(),
            "misspelled columns are not guessed into fields"
        );
        let extension = |name: &str| {
            marisol
                .base
                .extensions
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.get().to_owned())
        };
        assert_eq!(extension("prefferedGivenName").as_deref(), Some("\"Mari\""));
        assert_eq!(
            extension("prefferedMiddleName").as_deref(),
            Some("\"Ness\"")
        );
        assert_eq!(
            extension("prefferedFamilyName"),
            None,
            "empty cells are not kept"
        );
        let theo = find(&users, "bh-s-21");
        assert_eq!(theo.base.status, Status::Active);
        assert_eq!(theo.primary_role(), Some(&Role::Student));
        assert_eq!(theo.agents, ["bh-t-11"]);
        let dario = find(&users, "bh-a-31");
        assert_eq!(
            dario.primary_role(),
            Some(&Role::SiteAdministrator),
            "with no primary role, the first one"
        );
        assert_eq!(dario.user_ids.len(), 2);
    }
}

/// Writes a package folder from (file, contents) pairs.
pub(crate) fn folder(files: &[(&str, &str)]) -> tempdir::Dir {
    let dir = tempdir::Dir::new();
    for (name, body) in files {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    dir
}

pub(crate) fn zip_of(files: &[(&str, &[u8])]) -> tempdir::Dir {
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

pub(crate) const MANIFEST_11: &str =
    "propertyName,value\nmanifest.version,1.0\noneroster.version,1.1\nfile.users,bulk\n";

#[test]
fn columns_by_name_bom_crlf_quotes_and_extra_columns() {
    let users = "\u{feff}username,sourcedId,role,orgSourcedIds,givenName,familyName,vendorNote,grades,enabledUser\r\n\
                 ana,u1,student,\"s1,s2\",Ana,\"O'Neil, Jr.\",hello,\"09,10\",0\r\n\
                 \r\n\
                 bo,u2,teacher,s1,Bo,\"Line\r\n\",,,\r\n";
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
    assert_eq!(
        u[1].family_name, "Line",
        "a line break at the end of a quoted cell is trimmed like a blank"
    );
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
pub(crate) mod tempdir {
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
