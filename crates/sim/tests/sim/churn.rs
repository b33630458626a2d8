//! Days of churn: `diff` agrees with an independent comparison of two pulled days, and a
//! delta pull on the watermark returns exactly the changed records.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use sim::{Collection, RunningSim, Version, diff_days, end_of_day};

use super::helpers::{by_id, district, http, ids_of, open_config, pull, start};

const USERS: u32 = 2_500;

/// Every record of every collection, keyed by sourcedId, with hrefs made port-independent.
async fn snapshot(sim: &RunningSim) -> BTreeMap<Collection, BTreeMap<String, Value>> {
    let host = sim.addr().to_string();
    let mut data = BTreeMap::new();
    for collection in Collection::ALL {
        let name = collection.plural();
        let records = pull(sim, name, name, "").await;
        let records = records
            .into_iter()
            .map(|r| serde_json::from_str(&r.to_string().replace(&host, "HOST")).unwrap())
            .collect();
        data.insert(collection, by_id(records));
    }
    data
}

fn without_stamp(record: &Value) -> Value {
    let mut copy = record.clone();
    copy.as_object_mut().unwrap().remove("dateLastModified");
    copy
}

#[derive(Debug, Default, PartialEq)]
struct Observed {
    added: BTreeSet<String>,
    removed: BTreeSet<String>,
    changed: BTreeSet<String>,
}

fn compare(before: &BTreeMap<String, Value>, after: &BTreeMap<String, Value>) -> Observed {
    let mut observed = Observed::default();
    for (id, record) in after {
        match before.get(id) {
            None => {
                observed.added.insert(id.clone());
            }
            Some(old) => {
                let by_content = without_stamp(old) != without_stamp(record);
                let by_stamp = old["dateLastModified"] != record["dateLastModified"];
                assert_eq!(
                    by_content, by_stamp,
                    "{id}: content changed={by_content} but stamp changed={by_stamp}\n{old}\n{record}"
                );
                if by_content {
                    observed.changed.insert(id.clone());
                }
            }
        }
    }
    observed.removed = before
        .keys()
        .filter(|id| !after.contains_key(*id))
        .cloned()
        .collect();
    observed
}

fn set(ids: &[String]) -> BTreeSet<String> {
    ids.iter().cloned().collect()
}

#[tokio::test]
async fn diff_counts_match_two_pulled_days() {
    // Days 0→60 cross the kindergarten email change; 320→350 crosses the rollover.
    for (from, to) in [(0, 60), (320, 350)] {
        let before = snapshot(&start(open_config(USERS, from, Version::V1p2)).await).await;
        let after = snapshot(&start(open_config(USERS, to, Version::V1p2)).await).await;
        let diff = diff_days(&district(USERS, 7, from), from, to).unwrap();
        let counts = &diff.counts;
        for collection in Collection::ALL {
            let observed = compare(&before[&collection], &after[&collection]);
            let reported = diff.ids(collection);
            assert_eq!(
                observed.added,
                set(&reported.added),
                "{collection:?} added {from}→{to}"
            );
            assert_eq!(
                observed.removed,
                set(&reported.removed),
                "{collection:?} removed {from}→{to}"
            );
            assert_eq!(
                observed.changed,
                set(&reported.changed),
                "{collection:?} changed {from}→{to}"
            );
            let slot = match collection {
                Collection::Orgs => counts.orgs,
                Collection::AcademicSessions => counts.academic_sessions,
                Collection::Courses => counts.courses,
                Collection::Classes => counts.classes,
                Collection::Users => counts.users,
                Collection::Enrollments => counts.enrollments,
            };
            assert_eq!(slot.added as usize, observed.added.len());
            assert_eq!(slot.removed as usize, observed.removed.len());
            assert_eq!(slot.changed as usize, observed.changed.len());
        }

        // Field-level counts, from the pulled records alone.
        let (old_users, new_users) = (&before[&Collection::Users], &after[&Collection::Users]);
        let role = |u: &Value| u["roles"][0]["role"].as_str().unwrap().to_owned();
        let mut emails = 0;
        let mut roles = 0;
        let mut schools = 0;
        let mut grades = 0;
        let mut names = 0;
        let mut links = 0;
        for (id, new) in new_users {
            let Some(old) = old_users.get(id) else {
                continue;
            };
            emails += u64::from(old["email"] != new["email"]);
            roles += u64::from(role(old) != role(new));
            schools += u64::from(old["primaryOrg"] != new["primaryOrg"]);
            grades += u64::from(role(new) == "student" && old["grades"] != new["grades"]);
            names += u64::from(
                old["givenName"] != new["givenName"]
                    || old["familyName"] != new["familyName"]
                    || old["middleName"] != new["middleName"],
            );
            links += u64::from(ids_of(&old["agents"]) != ids_of(&new["agents"]));
        }
        assert_eq!(counts.email_changes, emails, "email changes {from}→{to}");
        assert_eq!(counts.role_changes, roles, "role changes {from}→{to}");
        assert_eq!(counts.school_changes, schools, "school changes {from}→{to}");
        assert_eq!(counts.grade_changes, grades, "grade changes {from}→{to}");
        assert_eq!(counts.name_changes, names, "name changes {from}→{to}");
        assert_eq!(
            counts.guardian_link_changes, links,
            "guardian link changes {from}→{to}"
        );
        let pairs = |users: &BTreeMap<String, Value>| -> BTreeSet<(String, String)> {
            users
                .values()
                .filter(|u| role(u) == "student")
                .flat_map(|u| {
                    let id = u["sourcedId"].as_str().unwrap().to_owned();
                    ids_of(&u["agents"])
                        .into_iter()
                        .map(move |g| (id.clone(), g))
                })
                .collect()
        };
        let (old_pairs, new_pairs) = (pairs(old_users), pairs(new_users));
        assert_eq!(
            counts.guardian_links_added as usize,
            new_pairs.difference(&old_pairs).count()
        );
        assert_eq!(
            counts.guardian_links_removed as usize,
            old_pairs.difference(&new_pairs).count()
        );
        let mut by_role: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
        for id in &diff.ids(Collection::Users).added {
            by_role.entry(role(&new_users[id])).or_default().0 += 1;
        }
        for id in &diff.ids(Collection::Users).removed {
            by_role.entry(role(&old_users[id])).or_default().1 += 1;
        }
        for id in &diff.ids(Collection::Users).changed {
            by_role.entry(role(&new_users[id])).or_default().2 += 1;
        }
        let reported: BTreeMap<String, (u64, u64, u64)> = counts
            .users_by_role
            .iter()
            .map(|(r, c)| (r.clone(), (c.added, c.removed, c.changed)))
            .collect();
        assert_eq!(reported, by_role);

        // The churn the calendar promises actually happened.
        assert!(counts.users.added > 0 && counts.users.removed > 0 && counts.users.changed > 0);
        assert!(counts.enrollments.added > 0 && counts.enrollments.removed > 0);
        assert!(
            counts.email_changes > 0
                && counts.guardian_links_added + counts.guardian_links_removed > 0
        );
        if to >= sim::FIRST_ROLLOVER_DAY && from < sim::FIRST_ROLLOVER_DAY {
            assert!(
                counts.grade_changes as f64 > 0.8 * (USERS as f64 * 0.45),
                "everyone moves up a grade"
            );
            assert_eq!(
                counts.classes.added as usize,
                after[&Collection::Classes].len(),
                "a new year of classes"
            );
            assert!(counts.academic_sessions.removed == 7 && counts.academic_sessions.added == 7);
            assert!(counts.school_changes > 0, "grade 5 and 8 move schools");
        } else {
            assert!(
                counts.email_changes as f64 > 10.0,
                "kindergarten moved to username@ on day 30"
            );
        }
    }
}

async fn delta_ids(
    sim: &RunningSim,
    endpoint: &str,
    envelope: &str,
    watermark: &str,
) -> BTreeMap<String, Value> {
    let filter = format!(
        "&filter={}",
        urlencode(&format!("dateLastModified>'{watermark}'"))
    );
    by_id(pull(sim, endpoint, envelope, &filter).await)
}

fn urlencode(text: &str) -> String {
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
async fn delta_pull_after_advancing_returns_exactly_the_changes() {
    let (from, days) = (10, 25);
    let served = start(open_config(USERS, from, Version::V1p1)).await;
    let response = http()
        .post(format!("http://{}/_sim/advance?days={days}", served.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json_or_panic().await;
    assert_eq!(body["day"], from + days);
    assert_eq!(served.day(), from + days);

    let diff = diff_days(&district(USERS, 7, from), from, from + days).unwrap();
    assert!(
        diff.counts.users.changed > 0 && diff.counts.enrollments.added > 0,
        "{:?}",
        diff.counts
    );
    let watermark = end_of_day(from).to_string();
    for collection in Collection::ALL {
        let name = collection.plural();
        let delta = delta_ids(&served, name, name, &watermark).await;
        let expected = diff.ids(collection).added_or_changed();
        assert_eq!(
            delta.keys().cloned().collect::<BTreeSet<_>>(),
            expected,
            "{name}"
        );
    }
    // The same watermark with a different spelling of the instant.
    let spelled = end_of_day(from)
        .strftime("%Y-%m-%dT%H:%M:%S.000Z")
        .to_string();
    let users = delta_ids(&served, "users", "users", &spelled).await;
    assert_eq!(
        users.len(),
        diff.ids(Collection::Users).added_or_changed().len()
    );
}

#[tokio::test]
async fn flagged_deletions_show_up_in_the_delta() {
    let (from, to) = (5, 40);
    let mut config = open_config(USERS, to, Version::V1p2);
    config.flag_deletions = true;
    let served = start(config).await;
    let diff = diff_days(&district(USERS, 7, from), from, to).unwrap();
    let watermark = end_of_day(from).to_string();
    let delta = delta_ids(&served, "users", "users", &watermark).await;
    let reported = diff.ids(Collection::Users);
    assert!(!reported.removed.is_empty());
    for id in &reported.removed {
        assert_eq!(delta[id]["status"], "tobedeleted", "{id}");
    }
    for id in reported.added.iter().chain(&reported.changed) {
        assert_eq!(delta[id]["status"], "active", "{id}");
    }
    let known: BTreeSet<&String> = reported
        .added
        .iter()
        .chain(&reported.changed)
        .chain(&reported.removed)
        .collect();
    for (id, record) in &delta {
        if !known.contains(id) {
            // Created and withdrawn between the two days: a tombstone the client never saw.
            assert_eq!(record["status"], "tobedeleted", "{id}");
        }
    }
    // Without the flag the same removals simply vanish.
    let vanished = start(open_config(USERS, to, Version::V1p2)).await;
    let all = by_id(pull(&vanished, "users", "users", "").await);
    assert!(reported.removed.iter().all(|id| !all.contains_key(id)));
}

trait JsonOrPanic {
    async fn json_or_panic(self) -> Value;
}

impl JsonOrPanic for reqwest::Response {
    async fn json_or_panic(self) -> Value {
        let bytes = self.bytes().await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }
}
