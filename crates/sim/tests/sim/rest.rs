//! The REST provider: URL layout, 1.1 and 1.2 shapes, collections, single objects,
//! relations, filters, sort, fields, paging and imsx errors.

use std::collections::BTreeSet;

use serde_json::Value;
use sim::{SimConfig, Version};

use super::helpers::{get, get_url, ids_of, open_config, pull, start};

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn campus_url_layout_and_version_shapes() {
    let v11 = start(open_config(1_500, 0, Version::V1p1)).await;
    let v12 = start(open_config(1_500, 0, Version::V1p2)).await;
    assert!(
        v11.base_url()
            .ends_with("/campus/oneroster/district/ims/oneroster/v1p1")
    );
    assert!(
        v12.base_url()
            .ends_with("/campus/api/oneroster/v1p2/district/ims/oneroster/rostering/v1p2")
    );
    assert_eq!(v11.token_url(), None, "no token URL without oauth2");

    let student11 = &get(&v11, "/students?limit=1").await.json()["users"][0];
    let student12 = &get(&v12, "/students?limit=1").await.json()["users"][0];
    assert_eq!(student11["role"], "student");
    assert_eq!(student11["orgs"].as_array().unwrap().len(), 1);
    assert_eq!(student11["enabledUser"], true, "1.1 sends JSON booleans");
    assert!(student11.get("roles").is_none() && student11.get("primaryOrg").is_none());
    assert!(student12.get("role").is_none() && student12.get("orgs").is_none());
    assert_eq!(student12["roles"][0]["roleType"], "primary");
    assert_eq!(student12["roles"][0]["role"], "student");
    assert_eq!(
        student12["roles"][0]["org"]["sourcedId"],
        student12["primaryOrg"]["sourcedId"]
    );
    assert_eq!(student12["enabledUser"], "true");
    assert_eq!(student11["sourcedId"], student12["sourcedId"]);
    let href = student12["primaryOrg"]["href"].as_str().unwrap();
    assert!(href.ends_with(&format!(
        "/orgs/{}",
        student12["primaryOrg"]["sourcedId"].as_str().unwrap()
    )));

    let enrollment11 = &get(&v11, "/enrollments?limit=1").await.json()["enrollments"][0];
    let enrollment12 = &get(&v12, "/enrollments?limit=1").await.json()["enrollments"][0];
    assert!(enrollment11["primary"].is_boolean());
    assert!(enrollment12["primary"] == "true" || enrollment12["primary"] == "false");

    // Envelopes use the base type; single objects the singular.
    for (path, key) in [
        ("/schools", "orgs"),
        ("/students", "users"),
        ("/teachers", "users"),
        ("/terms", "academicSessions"),
        ("/gradingPeriods", "academicSessions"),
    ] {
        let page = get(&v12, path).await;
        assert!(page.json()[key].is_array(), "{path} → {key}");
    }
    let id = student12["sourcedId"].as_str().unwrap();
    assert_eq!(
        get(&v12, &format!("/users/{id}")).await.json()["user"]["sourcedId"],
        id
    );
    assert_eq!(
        get(&v12, &format!("/students/{id}")).await.json()["user"]["sourcedId"],
        id
    );
    let school = student12["primaryOrg"]["sourcedId"].as_str().unwrap();
    assert_eq!(
        get(&v12, &format!("/schools/{school}")).await.json()["org"]["type"],
        "school"
    );
    let class = enrollment12["class"]["sourcedId"].as_str().unwrap();
    assert!(get(&v12, &format!("/classes/{class}")).await.json()["class"]["title"].is_string());
}

#[tokio::test]
async fn collections_count_what_the_district_holds() {
    let served = start(open_config(3_000, 12, Version::V1p1)).await;
    let counts = served.counts();
    for (endpoint, expected) in [
        ("orgs", counts.orgs),
        ("schools", counts.schools),
        ("academicSessions", counts.academic_sessions),
        ("terms", counts.terms),
        ("gradingPeriods", counts.grading_periods),
        ("courses", counts.courses),
        ("classes", counts.classes),
        ("users", counts.users),
        ("students", counts.students),
        ("teachers", counts.teachers),
        ("enrollments", counts.enrollments),
    ] {
        let page = get(&served, &format!("/{endpoint}?limit=1")).await;
        assert_eq!(page.status, 200);
        assert_eq!(page.total(), Some(expected as usize), "{endpoint}");
    }
    let demographics = get(&served, "/demographics").await;
    assert_eq!(demographics.status, 403);
    assert_eq!(
        demographics.json()["statusInfoSet"][0]["imsx_codeMinor"],
        "forbidden"
    );
}

#[tokio::test]
async fn relations_follow_the_links() {
    let served = start(open_config(2_000, 0, Version::V1p1)).await;
    let schools = pull(&served, "schools", "orgs", "").await;
    let school = schools[0]["sourcedId"].as_str().unwrap();
    let students = pull(&served, &format!("schools/{school}/students"), "users", "").await;
    assert!(!students.is_empty());
    assert!(
        students
            .iter()
            .all(|u| u["role"] == "student" && u["orgs"][0]["sourcedId"] == school)
    );
    let teachers = pull(&served, &format!("schools/{school}/teachers"), "users", "").await;
    assert!(
        teachers
            .iter()
            .all(|u| u["role"] == "teacher" && ids_of(&u["orgs"]).contains(&school.to_owned()))
    );
    let classes = pull(&served, &format!("schools/{school}/classes"), "classes", "").await;
    assert!(classes.iter().all(|c| c["school"]["sourcedId"] == school));
    let enrollments = pull(
        &served,
        &format!("schools/{school}/enrollments"),
        "enrollments",
        "",
    )
    .await;
    assert!(
        enrollments
            .iter()
            .all(|e| e["school"]["sourcedId"] == school)
    );

    let class = classes
        .iter()
        .find(|c| c["classType"] == "scheduled")
        .unwrap();
    let class_id = class["sourcedId"].as_str().unwrap();
    let roster: BTreeSet<String> = pull(
        &served,
        &format!("classes/{class_id}/students"),
        "users",
        "",
    )
    .await
    .iter()
    .map(|u| u["sourcedId"].as_str().unwrap().to_owned())
    .collect();
    let expected: BTreeSet<String> = enrollments
        .iter()
        .filter(|e| e["class"]["sourcedId"] == class_id && e["role"] == "student")
        .map(|e| e["user"]["sourcedId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(roster, expected);
    let class_teachers = pull(
        &served,
        &format!("classes/{class_id}/teachers"),
        "users",
        "",
    )
    .await;
    assert_eq!(class_teachers.len(), 1);

    let student = roster.iter().next().unwrap();
    let their_classes = pull(&served, &format!("users/{student}/classes"), "classes", "").await;
    assert!(their_classes.iter().any(|c| c["sourcedId"] == class_id));
    let same = pull(
        &served,
        &format!("students/{student}/classes"),
        "classes",
        "",
    )
    .await;
    assert_eq!(their_classes, same);

    let missing = get(&served, "/users/usr-99999999").await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.json()["statusInfoSet"][0]["imsx_codeMinor"],
        "unknownobject"
    );
    let teacher = teachers[0]["sourcedId"].as_str().unwrap();
    assert_eq!(
        get(&served, &format!("/students/{teacher}")).await.status,
        404,
        "a teacher is not a student"
    );
    assert_eq!(get(&served, "/nonsense").await.status, 404);
}

#[tokio::test]
async fn filters_sort_and_fields() {
    let served = start(open_config(2_000, 0, Version::V1p1)).await;
    let everyone = pull(&served, "users", "users", "").await;
    let count = |pred: &dyn Fn(&Value) -> bool| everyone.iter().filter(|u| pred(u)).count();

    let filtered = |filter: &str| format!("&filter={}", encode(filter));
    let teachers = pull(&served, "users", "users", &filtered("role='teacher'")).await;
    assert_eq!(teachers.len(), count(&|u| u["role"] == "teacher"));
    let sons = pull(&served, "users", "users", &filtered("familyName~'SON'")).await;
    assert_eq!(
        sons.len(),
        count(&|u| u["familyName"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("son"))
    );
    assert!(!sons.is_empty());
    let both = pull(
        &served,
        "users",
        "users",
        &filtered("role='student' AND familyName~'son'"),
    )
    .await;
    assert_eq!(
        both.len(),
        count(&|u| u["role"] == "student" && u["familyName"].as_str().unwrap().contains("son"))
    );
    let either = pull(
        &served,
        "users",
        "users",
        &filtered("role='aide' OR role='teacher'"),
    )
    .await;
    assert_eq!(
        either.len(),
        count(&|u| u["role"] == "aide" || u["role"] == "teacher")
    );
    let not_students = pull(&served, "users", "users", &filtered("role!='student'")).await;
    assert_eq!(not_students.len(), count(&|u| u["role"] != "student"));
    let all_dates = pull(
        &served,
        "users",
        "users",
        &filtered("dateLastModified>='2026-08-01'"),
    )
    .await;
    assert_eq!(all_dates.len(), everyone.len());
    let none_after = pull(
        &served,
        "users",
        "users",
        &filtered("dateLastModified>'2026-08-01T00:00:00Z'"),
    )
    .await;
    assert!(
        none_after.is_empty(),
        "day 0 records are stamped at the epoch"
    );
    let grade = pull(&served, "users", "users", &filtered("grades='05'")).await;
    assert_eq!(
        grade.len(),
        count(&|u| u["grades"].as_array().unwrap().iter().any(|g| g == "05"))
    );

    for bad in [
        "nosuchfield='x'",
        "role=student",
        "role='a' AND role='b' OR role='c'",
    ] {
        let page = get(&served, &format!("/users?{}", &filtered(bad)[1..])).await;
        assert_eq!(page.status, 400, "{bad}");
        assert_eq!(
            page.json()["statusInfoSet"][0]["imsx_codeMinor"],
            "invalid_filter_field"
        );
    }

    let ascending = get(&served, "/users?sort=familyName&orderBy=asc&limit=5000")
        .await
        .json();
    let names: Vec<&str> = ascending["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["familyName"].as_str().unwrap())
        .collect();
    assert!(names.windows(2).all(|w| w[0] <= w[1]));
    let descending = get(&served, "/users?sort=familyName&orderBy=desc&limit=5000")
        .await
        .json();
    let names: Vec<&str> = descending["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["familyName"].as_str().unwrap())
        .collect();
    assert!(names.windows(2).all(|w| w[0] >= w[1]));
    assert_eq!(get(&served, "/users?sort=nosuchfield").await.status, 400);
    assert_eq!(
        get(&served, "/users?sort=familyName&orderBy=sideways")
            .await
            .status,
        400
    );

    let slim = get(&served, "/users?fields=sourcedId,email&limit=3")
        .await
        .json();
    for user in slim["users"].as_array().unwrap() {
        let keys: BTreeSet<&str> = user
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, BTreeSet::from(["sourcedId", "email"]));
    }
}

#[tokio::test]
async fn paging_headers_and_page_caps() {
    let mut config: SimConfig = open_config(1_000, 0, Version::V1p2);
    config.max_page_size = Some(50);
    let served = start(config).await;
    let total = served.counts().users as usize;

    let first = get(&served, "/users?limit=7").await;
    assert_eq!(first.json()["users"].as_array().unwrap().len(), 7);
    assert_eq!(first.total(), Some(total));
    let links = first.links();
    assert!(
        links.contains_key("next") && links.contains_key("last") && links.contains_key("first")
    );
    assert!(!links.contains_key("prev"));
    assert!(links["last"].ends_with(&format!("limit=7&offset={}", (total - 1) / 7 * 7)));

    let mut seen = BTreeSet::new();
    let mut next = Some(format!(
        "{}/users?limit=7&sort=sourcedId",
        served.base_url()
    ));
    let mut pages = 0;
    while let Some(url) = next {
        let page = get_url(&url).await;
        for user in page.json()["users"].as_array().unwrap() {
            assert!(
                seen.insert(user["sourcedId"].as_str().unwrap().to_owned()),
                "a record on two pages"
            );
        }
        pages += 1;
        if pages > 1 {
            assert!(page.links().contains_key("prev"));
        }
        next = page.links().get("next").cloned();
    }
    assert_eq!(seen.len(), total);
    assert_eq!(pages, total.div_ceil(7));

    let default = get(&served, "/users").await.json();
    assert_eq!(
        default["users"].as_array().unwrap().len(),
        50,
        "default 100, capped at --max-page-size 50"
    );
    let capped = get(&served, "/users?limit=1000").await;
    assert_eq!(capped.json()["users"].as_array().unwrap().len(), 50);
    assert_eq!(capped.total(), Some(total));
    assert!(capped.links()["next"].contains("limit=50&offset=50"));

    let beyond = get(&served, &format!("/users?offset={}", total + 10)).await;
    assert_eq!(beyond.json()["users"].as_array().unwrap().len(), 0);
    let bad = get(&served, "/users?limit=zero").await;
    assert_eq!(bad.status, 400);
    let error = bad.json();
    assert_eq!(error["imsx_codeMajor"], "failure");
    assert_eq!(
        error["imsx_CodeMinor"]["imsx_codeMinorField"][0]["imsx_codeMinorFieldValue"],
        "invalid_selection_field"
    );
}

#[tokio::test]
async fn status_endpoint_reports_day_and_counts() {
    let served = start(open_config(500, 3, Version::V1p1)).await;
    let status: Value = serde_json::from_slice(
        &super::helpers::http()
            .get(format!("http://{}/_sim/status", served.addr()))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(status["day"], 3);
    assert_eq!(status["counts"]["users"], served.counts().users);
    assert_eq!(served.advance(2).await.unwrap(), 5);
}
