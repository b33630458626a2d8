//! The CSV export: a valid OneRoster package whose active records are exactly what REST
//! serves for the same seed and day, and whose delta is exactly the day's changes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

use sim::{Collection, District, ExportOptions, Version, diff_days, export_csv};

use super::generator::tempdir;
use super::helpers::{by_id, district, get, open_config, pull, start};

/// Every file of the zip as (header, rows).
fn read_package(path: &Path) -> BTreeMap<String, (Vec<String>, Vec<Vec<String>>)> {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut files = BTreeMap::new();
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).unwrap();
        let name = entry.name().unwrap().to_string();
        let mut text = String::new();
        entry.read_to_string(&mut text).unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_owned)
            .collect();
        let rows: Vec<Vec<String>> = reader
            .records()
            .map(|r| r.unwrap().iter().map(str::to_owned).collect())
            .collect();
        files.insert(name, (header, rows));
    }
    files
}

fn header(text: &str) -> Vec<String> {
    text.split(',').map(str::to_owned).collect()
}

const USERS_V1P1: &str = "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password";
const USERS_V1P2: &str = "sourcedId,status,dateLastModified,enabledUser,username,userIds,givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password,userMasterIdentifier,preferredGivenName,preferredMiddleName,preferredFamilyName,primaryOrgSourcedId,pronouns";
const ROLES: &str = "sourcedId,status,dateLastModified,userSourcedId,roleType,role,beginDate,endDate,orgSourcedId,userProfileSourcedId";
const ORGS: &str = "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId";
const SESSIONS: &str =
    "sourcedId,status,dateLastModified,title,type,startDate,endDate,parentSourcedId,schoolYear";
const COURSES: &str = "sourcedId,status,dateLastModified,schoolYearSourcedId,title,courseCode,grades,orgSourcedId,subjects,subjectCodes";
const CLASSES: &str = "sourcedId,status,dateLastModified,title,grades,courseSourcedId,classCode,classType,location,schoolSourcedId,termSourcedIds,subjects,subjectCodes,periods";
const ENROLLMENTS: &str = "sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role,primary,beginDate,endDate";

#[tokio::test]
async fn bulk_package_matches_rest_for_the_same_day() {
    const USERS: u32 = 2_000;
    const DAY: u32 = 20;
    for version in [Version::V1p1, Version::V1p2] {
        let dir = tempdir();
        let path = dir.join("roster.zip");
        let generated = District::generate(&district(USERS, 7, DAY)).unwrap();
        let summary = export_csv(
            &generated,
            &path,
            &ExportOptions {
                version,
                delta_from: None,
            },
        )
        .unwrap();
        let files = read_package(&path);

        let manifest: BTreeMap<String, String> = files["manifest.csv"]
            .1
            .iter()
            .map(|row| (row[0].clone(), row[1].clone()))
            .collect();
        assert_eq!(files["manifest.csv"].0, header("propertyName,value"));
        assert_eq!(manifest["oneroster.version"], version.as_str());
        assert_eq!(manifest["manifest.version"], "1.0");
        for file in [
            "academicSessions",
            "classes",
            "courses",
            "enrollments",
            "orgs",
            "users",
        ] {
            assert_eq!(manifest[&format!("file.{file}")], "bulk", "{file}");
        }
        assert_eq!(manifest["file.demographics"], "absent");
        let expected_files: BTreeSet<String> = manifest
            .iter()
            .filter(|(k, v)| k.starts_with("file.") && *v != "absent")
            .map(|(k, _)| format!("{}.csv", &k[5..]))
            .chain(["manifest.csv".to_owned()])
            .collect();
        assert_eq!(
            files.keys().cloned().collect::<BTreeSet<_>>(),
            expected_files
        );

        let users_header = if version == Version::V1p1 {
            USERS_V1P1
        } else {
            USERS_V1P2
        };
        for (file, expected) in [
            ("users.csv", users_header),
            ("orgs.csv", ORGS),
            ("academicSessions.csv", SESSIONS),
            ("courses.csv", COURSES),
            ("classes.csv", CLASSES),
            ("enrollments.csv", ENROLLMENTS),
        ] {
            assert_eq!(files[file].0, header(expected), "{file} header ({version})");
            assert!(
                files[file]
                    .1
                    .iter()
                    .all(|row| row.len() == files[file].0.len()),
                "{file}: every column present"
            );
            assert_eq!(summary.rows[file], files[file].1.len() as u64);
        }

        let served = start(open_config(USERS, DAY, version)).await;
        for (file, endpoint) in [
            ("users.csv", "users"),
            ("orgs.csv", "orgs"),
            ("academicSessions.csv", "academicSessions"),
            ("courses.csv", "courses"),
            ("classes.csv", "classes"),
            ("enrollments.csv", "enrollments"),
        ] {
            let total = get(&served, &format!("/{endpoint}?limit=1"))
                .await
                .total()
                .unwrap();
            assert_eq!(
                files[file].1.len(),
                total,
                "{file} rows vs REST {endpoint} ({version})"
            );
        }
        let rest_users = by_id(pull(&served, "users", "users", "").await);
        let csv_users: BTreeMap<&str, &Vec<String>> = files["users.csv"]
            .1
            .iter()
            .map(|r| (r[0].as_str(), r))
            .collect();
        assert_eq!(
            csv_users
                .keys()
                .map(|k| k.to_string())
                .collect::<BTreeSet<_>>(),
            rest_users.keys().cloned().collect::<BTreeSet<_>>()
        );
        let column = |name: &str| files["users.csv"].0.iter().position(|h| h == name).unwrap();
        for (id, row) in csv_users.iter().take(300) {
            let rest = &rest_users[*id];
            assert_eq!(row[column("email")], rest["email"].as_str().unwrap());
            assert_eq!(row[column("username")], rest["username"].as_str().unwrap());
            assert_eq!(
                row[column("dateLastModified")],
                rest["dateLastModified"].as_str().unwrap()
            );
            let agents: Vec<&str> = rest["agents"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["sourcedId"].as_str().unwrap())
                .collect();
            assert_eq!(row[column("agentSourcedIds")], agents.join(","));
        }
        // Multi-value cells survive quoting.
        let terms = files["classes.csv"]
            .0
            .iter()
            .position(|h| h == "termSourcedIds")
            .unwrap();
        assert!(
            files["classes.csv"]
                .1
                .iter()
                .any(|row| row[terms].split(',').count() == 2)
        );

        if version == Version::V1p2 {
            let (roles_header, roles) = &files["roles.csv"];
            assert_eq!(*roles_header, header(ROLES));
            let primaries = roles.iter().filter(|r| r[4] == "primary").count();
            assert_eq!(primaries, rest_users.len(), "one primary role per user");
            let secondaries: usize = rest_users
                .values()
                .map(|u| u["roles"].as_array().unwrap().len() - 1)
                .sum();
            assert_eq!(roles.len(), primaries + secondaries);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn delta_package_holds_exactly_the_changes() {
    const USERS: u32 = 2_000;
    let (from, to) = (15, 45);
    let dir = tempdir();
    let path = dir.join("delta.zip");
    let generated = District::generate(&district(USERS, 7, to)).unwrap();
    let options = ExportOptions {
        version: Version::V1p1,
        delta_from: Some(from),
    };
    export_csv(&generated, &path, &options).unwrap();
    let files = read_package(&path);
    let manifest: BTreeMap<String, String> = files["manifest.csv"]
        .1
        .iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    assert_eq!(manifest["file.users"], "delta");

    let diff = diff_days(&district(USERS, 7, from), from, to).unwrap();
    for (file, collection) in [
        ("users.csv", Collection::Users),
        ("enrollments.csv", Collection::Enrollments),
        ("classes.csv", Collection::Classes),
    ] {
        let rows: BTreeMap<&str, &str> = files[file]
            .1
            .iter()
            .map(|r| (r[0].as_str(), r[1].as_str()))
            .collect();
        let ids = diff.ids(collection);
        for id in ids.added.iter().chain(&ids.changed) {
            assert_eq!(rows.get(id.as_str()), Some(&"active"), "{file} {id}");
        }
        for id in &ids.removed {
            assert_eq!(rows.get(id.as_str()), Some(&"tobedeleted"), "{file} {id}");
        }
        let listed = ids.added.len() + ids.changed.len() + ids.removed.len();
        let extra: Vec<_> = rows
            .iter()
            .filter(|(id, _)| {
                !ids.added
                    .iter()
                    .chain(&ids.changed)
                    .chain(&ids.removed)
                    .any(|x| x == *id)
            })
            .collect();
        assert!(
            extra.iter().all(|(_, status)| **status == "tobedeleted"),
            "{file}: only created-then-removed extras"
        );
        assert_eq!(rows.len(), listed + extra.len());
    }
    assert!(!files["users.csv"].1.is_empty());
    assert!(
        export_csv(
            &generated,
            &dir.join("bad.zip"),
            &ExportOptions {
                version: Version::V1p1,
                delta_from: Some(to)
            }
        )
        .is_err()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
