//! The generated district: deterministic, referentially whole, and shaped like a district.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use sim::{District, ExportOptions, Version, export_csv};

use super::helpers::{by_id, district, get, ids_of, open_config, pull, start};

fn export_bytes(config: &sim::DistrictConfig, version: Version) -> Vec<u8> {
    let dir = tempdir();
    let path = dir.join("out.zip");
    let generated = District::generate(config).unwrap();
    export_csv(
        &generated,
        &path,
        &ExportOptions {
            version,
            delta_from: None,
        },
    )
    .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    bytes
}

pub fn tempdir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "sim-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn same_seed_size_and_day_give_byte_identical_output() {
    let config = district(1500, 42, 45);
    for version in [Version::V1p1, Version::V1p2] {
        let first = export_bytes(&config, version);
        let second = export_bytes(&config, version);
        assert!(
            first == second,
            "two exports of the same district differ ({version})"
        );
    }
    let other_seed = export_bytes(&district(1500, 43, 45), Version::V1p1);
    assert!(other_seed != export_bytes(&config, Version::V1p1));
    let other_day = export_bytes(&district(1500, 42, 46), Version::V1p1);
    assert!(other_day != export_bytes(&config, Version::V1p1));
}

#[tokio::test]
async fn same_district_serves_byte_identical_pages() {
    let a = start(open_config(1200, 20, Version::V1p2)).await;
    let b = start(open_config(1200, 20, Version::V1p2)).await;
    for path in [
        "/users?limit=700&offset=100",
        "/enrollments?limit=900",
        "/classes?limit=50",
    ] {
        let (pa, pb) = (get(&a, path).await, get(&b, path).await);
        assert_eq!(pa.status, 200);
        // hrefs carry the port, which differs between the two servers.
        let strip = |p: &super::helpers::Page, sim: &sim::RunningSim| {
            String::from_utf8(p.body.clone())
                .unwrap()
                .replace(&sim.addr().to_string(), "HOST")
        };
        assert_eq!(strip(&pa, &a), strip(&pb, &b), "{path}");
    }
}

#[tokio::test]
async fn oracle_api_matches_what_is_served() {
    let served = start(open_config(900, 33, Version::V1p2)).await;
    let district = served.district();
    let rest = by_id(pull(&served, "users", "users", "").await);
    let ids = district.active_ids(sim::Collection::Users);
    assert_eq!(
        ids.iter().cloned().collect::<BTreeSet<_>>(),
        rest.keys().cloned().collect::<BTreeSet<_>>()
    );
    let some = &ids[ids.len() / 2];
    let record = district
        .record_json(sim::Collection::Users, Version::V1p2, some)
        .unwrap();
    assert_eq!(record["email"], rest[some]["email"]);
    assert_eq!(record["roles"][0]["role"], rest[some]["roles"][0]["role"]);
    assert!(
        district
            .record_json(sim::Collection::Users, Version::V1p2, "usr-999999")
            .is_none()
    );
}

#[test]
fn users_is_the_day_zero_head_count() {
    for users in [2_000, 20_000] {
        let counts = District::generate(&district(users, 5, 0)).unwrap().counts();
        assert_eq!(counts.users, u64::from(users));
    }
    assert!(District::generate(&district(49, 1, 0)).is_err());
    assert!(District::generate(&district(3_000_001, 1, 0)).is_err());
}

/// Checks every GUIDRef in a pulled district resolves, and the per-person invariants.
fn check_integrity(data: &BTreeMap<&str, BTreeMap<String, Value>>, version: Version) {
    let orgs = &data["orgs"];
    let sessions = &data["academicSessions"];
    let courses = &data["courses"];
    let classes = &data["classes"];
    let users = &data["users"];
    let enrollments = &data["enrollments"];
    let resolves = |set: &BTreeMap<String, Value>, value: &Value, what: &str| {
        let id = value["sourcedId"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: no sourcedId in {value}"));
        assert!(set.contains_key(id), "{what}: dangling reference {id}");
    };
    for org in orgs.values() {
        if org["type"] == "school" {
            resolves(orgs, &org["parent"], "org.parent");
        }
        for child in org["children"].as_array().unwrap() {
            resolves(orgs, child, "org.children");
        }
    }
    for session in sessions.values() {
        if !session["parent"].is_null() {
            resolves(sessions, &session["parent"], "session.parent");
        }
    }
    for course in courses.values() {
        resolves(orgs, &course["org"], "course.org");
        resolves(sessions, &course["schoolYear"], "course.schoolYear");
    }
    for class in classes.values() {
        resolves(courses, &class["course"], "class.course");
        resolves(orgs, &class["school"], "class.school");
        for term in class["terms"].as_array().unwrap() {
            resolves(sessions, term, "class.terms");
        }
        assert!(!class["location"].as_str().unwrap().is_empty());
        assert_eq!(class["periods"].as_array().unwrap().len(), 1);
    }
    let mut homeroom_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for enrollment in enrollments.values() {
        resolves(users, &enrollment["user"], "enrollment.user");
        resolves(classes, &enrollment["class"], "enrollment.class");
        resolves(orgs, &enrollment["school"], "enrollment.school");
        let class = &classes[enrollment["class"]["sourcedId"].as_str().unwrap()];
        assert_eq!(
            class["school"]["sourcedId"],
            enrollment["school"]["sourcedId"]
        );
        if class["classType"] == "homeroom" && enrollment["role"] == "student" {
            homeroom_of
                .entry(enrollment["user"]["sourcedId"].as_str().unwrap().to_owned())
                .or_default()
                .push(class["school"]["sourcedId"].as_str().unwrap().to_owned());
        }
    }
    let role_of = |user: &Value| -> String {
        match version {
            Version::V1p1 => user["role"].as_str().unwrap().to_owned(),
            Version::V1p2 => user["roles"][0]["role"].as_str().unwrap().to_owned(),
        }
    };
    let school_of = |user: &Value| -> String {
        match version {
            Version::V1p1 => user["orgs"][0]["sourcedId"].as_str().unwrap().to_owned(),
            Version::V1p2 => user["primaryOrg"]["sourcedId"].as_str().unwrap().to_owned(),
        }
    };
    for (id, user) in users {
        for agent in user["agents"].as_array().unwrap() {
            resolves(users, agent, "user.agents");
            let other = &users[agent["sourcedId"].as_str().unwrap()];
            assert!(
                ids_of(&other["agents"]).contains(id),
                "agent link {id} ↔ {} is one-sided",
                other["sourcedId"]
            );
        }
        let orgs_field = if version == Version::V1p1 {
            &user["orgs"]
        } else {
            &user["roles"]
        };
        for entry in orgs_field.as_array().unwrap() {
            let reference = if version == Version::V1p1 {
                entry
            } else {
                &entry["org"]
            };
            resolves(orgs, reference, "user org");
        }
        let role = role_of(user);
        match role.as_str() {
            "student" => {
                let school = school_of(user);
                assert_eq!(
                    orgs[&school]["type"], "school",
                    "student {id} has no school"
                );
                assert_eq!(
                    user["grades"].as_array().unwrap().len(),
                    1,
                    "student {id} has no grade"
                );
                assert_eq!(
                    homeroom_of.get(id),
                    Some(&vec![school]),
                    "student {id} needs one homeroom at their school"
                );
                let guardians = user["agents"].as_array().unwrap().len();
                assert!(
                    (1..=2).contains(&guardians),
                    "student {id} has {guardians} guardians"
                );
            }
            "parent" | "guardian" | "relative" => {
                assert!(
                    !user["agents"].as_array().unwrap().is_empty(),
                    "guardian {id} has no student"
                );
            }
            _ => {}
        }
    }
}

async fn pull_everything(sim: &sim::RunningSim) -> BTreeMap<&'static str, BTreeMap<String, Value>> {
    let mut data = BTreeMap::new();
    for name in [
        "orgs",
        "academicSessions",
        "courses",
        "classes",
        "users",
        "enrollments",
    ] {
        data.insert(name, by_id(pull(sim, name, name, "").await));
    }
    data
}

#[tokio::test]
async fn every_reference_resolves_before_and_after_rollover() {
    for (day, version) in [
        (0, Version::V1p1),
        (sim::FIRST_ROLLOVER_DAY + 20, Version::V1p2),
    ] {
        let served = start(open_config(2500, day, version)).await;
        let data = pull_everything(&served).await;
        check_integrity(&data, version);
    }
}

#[tokio::test]
async fn district_shape_at_several_sizes() {
    for users in [50, 2_000, 12_000] {
        let served = start(open_config(users, 0, Version::V1p2)).await;
        let counts = served.counts();
        let data = pull_everything(&served).await;
        let people = &data["users"];
        assert_eq!(people.len() as u64, counts.users);
        let role = |u: &Value| u["roles"][0]["role"].as_str().unwrap().to_owned();
        let mut by_role: BTreeMap<String, u64> = BTreeMap::new();
        for user in people.values() {
            *by_role.entry(role(user)).or_default() += 1;
        }
        assert_eq!(
            by_role, counts.users_by_role,
            "{users}: roles served vs counted"
        );
        for needed in [
            "student",
            "teacher",
            "principal",
            "counselor",
            "aide",
            "districtAdministrator",
            "parent",
        ] {
            assert!(by_role.contains_key(needed), "{users}: no {needed}");
        }
        let schools: BTreeSet<&str> = data["orgs"]
            .values()
            .filter(|o| o["type"] == "school")
            .map(|o| o["name"].as_str().unwrap())
            .collect();
        assert!(
            schools.iter().any(|n| n.contains("Elementary"))
                && schools.iter().any(|n| n.contains("Middle"))
        );
        assert!(schools.iter().any(|n| n.contains("High")));
        assert_eq!(
            data["academicSessions"].len(),
            7,
            "a school year, two semesters, four grading periods"
        );

        // Enrollments per student by band.
        let mut per_student: BTreeMap<&str, usize> = BTreeMap::new();
        for enrollment in data["enrollments"]
            .values()
            .filter(|e| e["role"] == "student")
        {
            *per_student
                .entry(enrollment["user"]["sourcedId"].as_str().unwrap())
                .or_default() += 1;
        }
        let (mut elementary, mut secondary) = (Vec::new(), Vec::new());
        for user in people.values().filter(|u| role(u) == "student") {
            let grade = user["grades"][0].as_str().unwrap();
            let count = per_student
                .get(user["sourcedId"].as_str().unwrap())
                .copied()
                .unwrap_or(0);
            if grade == "KG" || grade.as_bytes()[1] <= b'5' && grade.starts_with('0') {
                elementary.push(count);
            } else {
                secondary.push(count);
            }
        }
        assert!(
            elementary.iter().all(|c| (1..=3).contains(c)),
            "{users}: elementary {elementary:?}"
        );
        assert!(
            secondary.iter().all(|c| (7..=8).contains(c)),
            "{users}: secondary {secondary:?}"
        );
        if users >= 2_000 {
            let ratio = counts.students as f64 / counts.teachers as f64;
            assert!(
                (11.0..=16.0).contains(&ratio),
                "{users}: {ratio} students per teacher"
            );
            let mean = secondary.iter().sum::<usize>() as f64 / secondary.len() as f64;
            assert!(
                (7.0..=8.0).contains(&mean),
                "{users}: {mean} enrollments per secondary student"
            );
            for needed in ["guardian", "relative", "siteAdministrator"] {
                assert!(
                    by_role.contains_key(needed) || users < 12_000,
                    "{users}: no {needed}"
                );
            }
            assert!(by_role.contains_key("guardian") && by_role.contains_key("relative"));
        }
    }
}

#[tokio::test]
async fn data_looks_like_a_real_sis() {
    let served = start(open_config(6_000, 0, Version::V1p2)).await;
    let users: Vec<Value> = pull(&served, "users", "users", "").await;
    let role = |u: &Value| u["roles"][0]["role"].as_str().unwrap().to_owned();
    let email = |u: &Value| u["email"].as_str().unwrap().to_owned();
    let students: Vec<&Value> = users.iter().filter(|u| role(u) == "student").collect();
    let staff: Vec<&Value> = users
        .iter()
        .filter(|u| !["student", "parent", "guardian", "relative"].contains(&role(u).as_str()))
        .collect();
    assert!(
        staff
            .iter()
            .all(|u| email(u).to_lowercase().ends_with("@district.k12.us"))
    );
    assert!(students.iter().filter(|u| !email(u).is_empty()).all(|u| {
        email(u)
            .to_lowercase()
            .ends_with("@students.district.k12.us")
    }));
    let young_without_email = students
        .iter()
        .filter(|u| email(u).is_empty())
        .all(|u| ["KG", "01"].contains(&u["grades"][0].as_str().unwrap()));
    assert!(young_without_email && students.iter().any(|u| email(u).is_empty()));
    assert!(
        users.iter().any(|u| email(u) != email(u).to_lowercase()),
        "some mixed-case emails"
    );
    let mut names = BTreeSet::new();
    let duplicate = users.iter().any(|u| {
        !names.insert((
            u["givenName"].as_str().unwrap(),
            u["familyName"].as_str().unwrap(),
        ))
    });
    assert!(duplicate, "some duplicate names");
    let all_emails: Vec<String> = users
        .iter()
        .map(email)
        .filter(|e| !e.is_empty())
        .map(|e| e.to_lowercase())
        .collect();
    let unique: BTreeSet<&String> = all_emails.iter().collect();
    assert_eq!(unique.len(), all_emails.len(), "emails are unique");
    assert!(
        students
            .iter()
            .all(|u| u["identifier"].as_str().unwrap().parse::<u32>().is_ok()),
        "student numbers"
    );
    assert!(
        users
            .iter()
            .all(|u| !u["username"].as_str().unwrap().is_empty())
    );
    assert!(users.iter().any(|u| u.get("preferredFirstName").is_some()));
    assert!(users.iter().any(|u| u.get("pronouns").is_some()));
    assert!(
        users.iter().all(|u| u["enabledUser"] == "true"),
        "1.2 booleans are strings"
    );
    let relations: BTreeSet<String> = users
        .iter()
        .map(role)
        .filter(|r| ["parent", "guardian", "relative"].contains(&r.as_str()))
        .collect();
    assert_eq!(relations.len(), 3);
}
