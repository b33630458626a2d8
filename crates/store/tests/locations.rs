//! What the Overview and the Location Mappings preview read: the directory's locations,
//! a source's active linked accounts counted by school, location and who wrote it (the
//! creator's bit, or a later provenance row), one source's runs or one status's, and the
//! number of review cases of a status.

use oneroster::Role;
use rostersync_core::relocation::AccountsAt;
use store::{RunStatus, StoreError};

use crate::harness::{TestDb, config, conformance, days, person, start, sync};

fn at(org: &str, location: &str, writer: &str, accounts: u64) -> AccountsAt {
    AccountsAt {
        org: Some(org.into()),
        location: Some(location.into()),
        writer: Some(writer.into()),
        accounts,
    }
}

fn sorted(mut v: Vec<AccountsAt>) -> Vec<AccountsAt> {
    v.sort_by(|a, b| (&a.org, &a.location, &a.writer).cmp(&(&b.org, &b.location, &b.writer)));
    v
}

fn accounts_are_counted_by_school_location_and_writer(db: &mut TestDb) {
    let s = db.store();
    assert!(s.location_names().unwrap().is_empty());
    let cfg = config(
        "[source.locations]\ndefault = \"District Office\"\nmap = { \"school-1\" = \"Lincoln\" }\n",
    );
    let a = person("s1", Role::Student, "Ana", "Li", Some("ana@x.org"));
    let b = person("s2", Role::Student, "Bo", "Ek", Some("bo@x.org"));
    let mut c = person("s3", Role::Student, "Cy", "Do", Some("cy@x.org"));
    c.edit(|f| {
        f.primary_org = Some("school-2".into());
        f.orgs = vec!["school-2".into()];
    });
    let mut d = person("s4", Role::Student, "Di", "Ma", Some("di@x.org"));
    d.edit(|f| {
        f.primary_org = Some("school-2".into());
        f.orgs = vec!["school-2".into()];
    });
    sync(s, &cfg, &[a, b, c, d], days(1));
    assert_eq!(s.location_names().unwrap(), ["District Office", "Lincoln"]);
    // The first import wrote every location (the creator's bit, no provenance rows).
    assert_eq!(
        sorted(s.accounts_by_location("sis").unwrap()),
        [
            at("school-1", "Lincoln", "source:sis", 2),
            at("school-2", "District Office", "source:sis", 2),
        ]
    );
    // An admin moved Bo (a provenance row wins over the creator); Di left (inactive).
    let id = |email: &str| s.find_user(email).unwrap().unwrap().user.id;
    let (bo, di) = (id("bo@x.org"), id("di@x.org"));
    db.exec(&format!(
        "UPDATE users SET location_id = (SELECT id FROM locations WHERE name = 'District Office') WHERE id = {bo}; \
         INSERT INTO field_provenance (user_id, field, writer, run_id, written_at) \
         VALUES ({bo}, 'location', 'admin:alice', NULL, '2026-09-02T00:00:00Z'); \
         UPDATE users SET active = FALSE WHERE id = {di}"
    ));
    assert_eq!(
        sorted(s.accounts_by_location("sis").unwrap()),
        [
            at("school-1", "District Office", "admin:alice", 1),
            at("school-1", "Lincoln", "source:sis", 1),
            at("school-2", "District Office", "source:sis", 1),
        ]
    );
    assert!(s.accounts_by_location("other").unwrap().is_empty());
}

fn runs_are_listed_by_source_and_status(db: &mut TestDb) {
    let s = db.store();
    let one = start(s, "sis");
    let two = start(s, "other");
    let three = start(s, "sis");
    let ids = |v: Vec<store::RunRecord>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(s.runs_of(Some("sis"), None, 0).unwrap()), [three, one]);
    assert_eq!(ids(s.runs_of(Some("sis"), None, 1).unwrap()), [three]);
    assert_eq!(ids(s.runs_of(None, None, 0).unwrap()), [three, two, one]);
    assert_eq!(
        ids(s.runs_of(None, Some(RunStatus::Running), 0).unwrap()),
        [three, two, one]
    );
    assert!(
        s.runs_of(None, Some(RunStatus::Held), 0)
            .unwrap()
            .is_empty()
    );
    assert!(
        s.runs_of(Some("other"), Some(RunStatus::Held), 0)
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.count_review_cases("open").unwrap(), 0);
    assert!(matches!(
        s.count_review_cases("pending"),
        Err(StoreError::Conflict(_))
    ));
}

conformance!(
    accounts_are_counted_by_school_location_and_writer,
    runs_are_listed_by_source_and_status
);
