//! The reports on a small directory built by hand: unlinked accounts with scored
//! suggestions, duplicate groups with their evidence, stale accounts with the reason.

use oneroster::Role;
use rostersync_core::directory::AccountId;
use rostersync_core::reports::EvidenceKind;
use store::Store;

use crate::harness::{TestDb, config, conformance, later, now, person, sso_row, sync};

fn id_of(s: &Store, email: &str) -> AccountId {
    s.find_user(email).unwrap().unwrap().user.id
}

fn kinds(e: &[rostersync_core::reports::Evidence]) -> Vec<EvidenceKind> {
    e.iter().map(|e| e.kind).collect()
}

fn unlinked_accounts_come_with_scored_suggestions(db: &mut TestDb) {
    let s = db.store();
    s.import_accounts(
        &[
            sso_row("jane.doe@district.k12.us", "Jane", "Doe"),
            sso_row("kim@x.org", "Kim", "Lee"),
            sso_row("kim.lee@x.org", "Kim", "Lee"),
            sso_row("nobody@x.org", "No", "Body"),
            sso_row("gone@x.org", "Jane", "Doe"),
        ],
        "google",
        now(),
    )
    .unwrap();
    let (jane, kim, kim2, nobody, gone) = (
        id_of(s, "jane.doe@district.k12.us"),
        id_of(s, "kim@x.org"),
        id_of(s, "kim.lee@x.org"),
        id_of(s, "nobody@x.org"),
        id_of(s, "gone@x.org"),
    );
    db.exec(&format!(
        "UPDATE users SET email = 'kim@x.org', email_lc = 'kim@x.org' WHERE id = {kim2}; \
         UPDATE users SET grade = '5' WHERE id = {jane}; \
         UPDATE users SET active = FALSE WHERE id = {gone}"
    ));
    // Jane's SIS record has her student address: no email match, so the sync made her a
    // second account. Kim matches two accounts: a review case.
    sync(
        s,
        &config(""),
        &[
            person(
                "s1",
                Role::Student,
                "Jane",
                "Doe",
                Some("jane.doe@students.district.k12.us"),
            ),
            person("s2", Role::Student, "Kim", "Lee", Some("kim@x.org")),
            person("s3", Role::Student, "Jo", "Doe", Some("jo@x.org")),
        ],
        now(),
    );
    let made = id_of(s, "jane.doe@students.district.k12.us");
    let case = s.review_cases(Some("open"), None, 0).unwrap()[0].id;

    let report = s.report_unlinked(None, 0).unwrap();
    let ids: Vec<AccountId> = report.iter().map(|a| a.id).collect();
    assert_eq!(ids, [jane, kim, kim2, nobody], "active, unlinked, by id");
    let j = &report[0];
    assert_eq!(
        (j.name.as_str(), j.provider.as_deref()),
        ("Jane Doe", Some("google"))
    );
    assert_eq!(j.suggestions.len(), 1, "{j:#?}");
    let sug = &j.suggestions[0];
    assert_eq!(
        (sug.source.as_str(), sug.sourced_id.as_str()),
        ("sis", "s1")
    );
    assert_eq!(sug.score, 40 + 35 + 10, "name, email local part, grade");
    assert_eq!(
        kinds(&sug.evidence),
        [
            EvidenceKind::SameName,
            EvidenceKind::EmailLocalPart,
            EvidenceKind::SameGrade
        ]
    );
    assert_eq!(
        sug.linked_to,
        Some(made),
        "already linked: a merge, not a link"
    );
    assert_eq!(sug.review_case, None);

    for k in &report[1..3] {
        assert_eq!(k.suggestions.len(), 1, "{k:#?}");
        let sug = &k.suggestions[0];
        assert_eq!(sug.sourced_id, "s2", "from the review case's evidence");
        assert_eq!(sug.review_case, Some(case));
        assert_eq!(sug.linked_to, None);
        assert_eq!(sug.score, 75);
        assert_eq!(sug.email.as_deref(), Some("kim@x.org"));
    }
    assert!(report[3].suggestions.is_empty());
    assert_eq!(s.report_unlinked(None, 2).unwrap().len(), 2, "limit");
    let next: Vec<_> = s
        .report_unlinked(Some(report[1].id), 0)
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    let rest: Vec<_> = report[2..].iter().map(|a| a.id).collect();
    assert_eq!(next, rest, "paged by id");
}

fn duplicates_are_grouped_with_the_evidence(db: &mut TestDb) {
    let s = db.store();
    // The district's settings: people of unmapped schools go to District Office.
    let cfg = config("[source.locations]\ndefault = \"District Office\"\n");
    s.save_config(&cfg, &[], "test", now()).unwrap();
    s.import_accounts(
        &[
            sso_row("jane.doe@district.k12.us", "Jane", "Doe"),
            sso_row("sam1@x.org", "Sam", "Roe"),
            sso_row("sam2@x.org", "Sam", "Roe"),
            sso_row("al.poe@x.org", "Al", "Poe"),
            sso_row("al.poe@y.org", "AL", " Poe "),
            sso_row("bo.ek@x.org", "Bo", "Ek"),
            sso_row("bo.ek@y.org", "Bo", "Ek"),
            sso_row("old.jane@x.org", "Jane", "Doe"),
            sso_row("ana.li@x.org", "Ana", "Li"),
            sso_row("ana.lee@x.org", "Ana", "Lee"),
        ],
        "google",
        now(),
    )
    .unwrap();
    let (jane, al1, al2, bo1, bo2, old_jane, ana_li, ana_lee) = (
        id_of(s, "jane.doe@district.k12.us"),
        id_of(s, "al.poe@x.org"),
        id_of(s, "al.poe@y.org"),
        id_of(s, "bo.ek@x.org"),
        id_of(s, "bo.ek@y.org"),
        id_of(s, "old.jane@x.org"),
        id_of(s, "ana.li@x.org"),
        id_of(s, "ana.lee@x.org"),
    );
    // Al and Al, Bo and Bo: same grade and location; Ana Lee was Ana Li (an alias), and an
    // old single sign-on account still has that address.
    db.exec(&format!(
        "INSERT INTO locations (name) VALUES ('District Office'), ('Lincoln'); \
         UPDATE users SET grade = '05', location_id = 1 WHERE id IN ({al1}, {al2}); \
         UPDATE users SET grade = '05', location_id = 2 WHERE id = {bo1}; \
         UPDATE users SET grade = '5', location_id = 2 WHERE id = {bo2}; \
         UPDATE users SET merged_into = {jane}, active = FALSE WHERE id = {old_jane}; \
         INSERT INTO aliases (user_id, kind, value_lc) VALUES ({ana_lee}, 'email', 'ana.li@x.org')"
    ));
    // Jane's SIS record has her student address: no email match, so the sync made her a
    // second account. Kim Lee the teacher and Kim Lee the student are two SIS people with
    // one name and one local part: never a group (the merge refuses them).
    sync(
        s,
        &cfg,
        &[
            person(
                "s1",
                Role::Student,
                "Jane",
                "Doe",
                Some("jane.doe@students.district.k12.us"),
            ),
            person(
                "t1",
                Role::Teacher,
                "Kim",
                "Lee",
                Some("kim.lee@district.k12.us"),
            ),
            person(
                "s2",
                Role::Student,
                "Kim",
                "Lee",
                Some("kim.lee@students.district.k12.us"),
            ),
        ],
        now(),
    );
    let made = id_of(s, "jane.doe@students.district.k12.us");

    let groups = s.report_duplicates(None, 0).unwrap();
    let members: Vec<Vec<AccountId>> = groups
        .iter()
        .map(|g| g.accounts.iter().map(|a| a.id).collect())
        .collect();
    let mut jane_pair = vec![jane, made];
    jane_pair.sort_unstable();
    assert_eq!(
        members,
        [
            jane_pair,
            vec![al1, al2],
            vec![bo1, bo2],
            vec![ana_li, ana_lee]
        ],
        "Sam and Sam share only a name, the Kim Lees are two SIS people: {groups:#?}"
    );
    assert_eq!(
        kinds(&groups[0].evidence),
        [
            EvidenceKind::EmailLocalPart,
            EvidenceKind::SameName,
            EvidenceKind::OneLinked
        ]
    );
    assert_eq!(
        groups[0].evidence[0].detail,
        "the same local part jane.doe on different domains: email jane.doe@district.k12.us and email jane.doe@students.district.k12.us"
    );
    assert_eq!(
        groups[0].evidence[2].detail,
        format!("#{made} is linked to the SIS (sis: s1) and #{jane} is not")
    );
    let linked = groups[0].accounts.iter().find(|a| a.id == made).unwrap();
    assert_eq!(linked.sis.as_ref().unwrap().sourced_id, "s1");
    assert_eq!(
        kinds(&groups[1].evidence),
        [EvidenceKind::EmailLocalPart, EvidenceKind::SameName],
        "the default location is no evidence"
    );
    assert_eq!(
        groups[1].accounts[0].location.as_deref(),
        Some("District Office")
    );
    assert_eq!(
        kinds(&groups[2].evidence),
        [
            EvidenceKind::EmailLocalPart,
            EvidenceKind::SameName,
            EvidenceKind::SameSchool
        ]
    );
    assert!(
        groups[2].evidence[2].detail.contains("Lincoln"),
        "{:?}",
        groups[2].evidence
    );
    assert_eq!(kinds(&groups[3].evidence), [EvidenceKind::Alias]);
    assert_eq!(
        groups[3].evidence[0].detail,
        format!("#{ana_li}'s email ana.li@x.org is an old email or username of #{ana_lee}")
    );
    assert_eq!(s.report_duplicates(None, 1).unwrap().len(), 1, "limit");
    let first = groups[0].accounts[0].id;
    assert_eq!(
        s.report_duplicates(Some(first), 0).unwrap(),
        groups[1..].to_vec(),
        "paged by the first account's id"
    );

    // Merged, they are no longer duplicates.
    s.merge_accounts(made, jane, "alice", later(1), false)
        .unwrap();
    let left = s.report_duplicates(None, 0).unwrap();
    assert_eq!(left, groups[1..].to_vec());
}

fn stale_accounts_say_why(db: &mut TestDb) {
    let s = db.store();
    sync(
        s,
        &config(""),
        &[
            person("s1", Role::Student, "Ana", "Li", Some("ana@x.org")),
            person("s2", Role::Student, "Bo", "Ek", Some("bo@x.org")),
            person("s3", Role::Student, "Cy", "Do", Some("cy@x.org")),
            person("s4", Role::Student, "Di", "Fu", Some("di@x.org")),
            person("s5", Role::Student, "Ed", "Go", Some("ed@x.org")),
        ],
        now(),
    );
    let (bo, cy, di, ed) = (
        id_of(s, "bo@x.org"),
        id_of(s, "cy@x.org"),
        id_of(s, "di@x.org"),
        id_of(s, "ed@x.org"),
    );
    // As a sync with deactivation turned off would leave them: Bo `tobedeleted`, Cy
    // disabled, Di missing from two pulls; Ed inactive in the SIS and deactivated already.
    db.exec(&format!(
        "UPDATE sis_people SET status = 'tobedeleted' WHERE sourced_id IN ('s2', 's5'); \
         UPDATE sis_people SET enabled = FALSE WHERE sourced_id = 's3'; \
         UPDATE sis_links SET misses = 2 WHERE sourced_id = 's4'; \
         UPDATE users SET active = FALSE WHERE id = {ed}"
    ));
    let stale = s.report_stale(None, 0).unwrap();
    let got: Vec<(AccountId, &str, &str)> = stale
        .iter()
        .map(|a| (a.id, a.sourced_id.as_str(), a.reason_code.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (bo, "s2", "inactive_in_sis"),
            (cy, "s3", "inactive_in_sis"),
            (di, "s4", "missing_from_pulls")
        ]
    );
    assert!(
        stale[0].reason.starts_with("tobedeleted in the SIS"),
        "{}",
        stale[0].reason
    );
    assert!(
        stale[1].reason.contains("enabledUser = false"),
        "{}",
        stale[1].reason
    );
    assert!(
        stale[2].reason.contains("missing from the last 2"),
        "{}",
        stale[2].reason
    );
    assert_eq!(
        (stale[0].name.as_str(), stale[0].source.as_str()),
        ("Bo Ek", "sis")
    );
    assert_eq!(s.report_stale(None, 1).unwrap().len(), 1, "limit");
    let after_first: Vec<_> = stale
        .iter()
        .filter(|r| r.id > stale[0].id)
        .cloned()
        .collect();
    assert_eq!(
        s.report_stale(Some(stale[0].id), 0).unwrap(),
        after_first,
        "paged by account"
    );
}

/// Paged a group at a time (or three), the duplicates report is the whole report: every
/// group once, in order, even where a name's accounts lie on both sides of a page's start.
fn duplicate_pages_join_up_to_the_whole_report(db: &mut TestDb) {
    let s = db.store();
    let names = [("Al", "Poe"), ("Bo", "Ek"), ("Cy", "Do"), ("Di", "Fo")];
    let mut rows = Vec::new();
    // Round robin, so each name's accounts spread over the whole id range; the same
    // local part on several domains is evidence, a numbered one is not.
    for k in 0..6 {
        for (n, (g, f)) in names.iter().enumerate() {
            let local = if (k + n) % 3 == 0 {
                format!("{}.{}{k}", g.to_lowercase(), f.to_lowercase())
            } else {
                format!("{}.{}", g.to_lowercase(), f.to_lowercase())
            };
            rows.push(sso_row(&format!("{local}@d{k}.org"), g, f));
        }
    }
    s.import_accounts(&rows, "google", now()).unwrap();
    let whole = s.report_duplicates(None, 0).unwrap();
    assert_eq!(whole.len(), names.len(), "{whole:#?}");
    for limit in [1, 3] {
        let mut paged = Vec::new();
        let mut after = None;
        loop {
            let page = s.report_duplicates(after, limit).unwrap();
            assert!(page.len() <= limit as usize);
            let Some(last) = page.last() else { break };
            after = Some(last.accounts[0].id);
            paged.extend(page);
        }
        assert_eq!(paged, whole, "limit {limit}");
    }
    // A page starting inside the first group never shows a part of it.
    let first = &whole[0].accounts;
    let rest = s.report_duplicates(Some(first[1].id), 0).unwrap();
    assert!(
        rest.iter().all(|g| g
            .accounts
            .iter()
            .all(|a| !first.iter().any(|b| b.id == a.id))),
        "{rest:#?}"
    );
}

conformance!(
    unlinked_accounts_come_with_scored_suggestions,
    duplicates_are_grouped_with_the_evidence,
    duplicate_pages_join_up_to_the_whole_report,
    stale_accounts_say_why,
);
