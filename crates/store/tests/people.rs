//! The SIS people the syncs recorded: one by one with whether the last complete full pull
//! had them, searched by name, email or school id; and the keyset pages of runs and run
//! items the CLI's lists stream through.

use oneroster::Role;
use store::{RunId, StoreError};

use crate::harness::{TestDb, config, conformance, later, now, person, sync};

fn recorded_people_are_found_searched_and_placed_in_the_last_pull(db: &mut TestDb) {
    let s = db.store();
    let cfg = config("");
    let ana = person("s-1", Role::Student, "Ana", "Li", Some("ana.li@x.org"));
    let ben = person("s-2", Role::Student, "Ben", "Okafor", Some("ben@x.org"));
    let gus = person("g-1", Role::Guardian, "Gus", "Li", Some("gus@x.org"));
    assert_eq!(s.last_complete_pull("sis").unwrap(), None);
    assert_eq!(s.sis_person("sis", "s-1").unwrap(), None);

    let (first, _, _) = sync(s, &cfg, &[ana.clone(), ben.clone(), gus], now());
    let last = s.last_complete_pull("sis").unwrap().unwrap();
    assert_eq!(last.run, first);
    let a = s.sis_person("sis", "s-1").unwrap().unwrap();
    assert_eq!(
        (a.given_name.as_str(), a.family_name.as_str()),
        ("Ana", "Li")
    );
    assert_eq!(a.email.as_deref(), Some("ana.li@x.org"));
    assert_eq!(a.identifier.as_deref(), Some("ID-s-1"));
    assert_eq!(a.status, "active");
    assert_eq!(a.school.as_deref(), Some("school-1"));
    assert!(a.linked_user.is_some());
    assert!(a.in_last_pull);
    assert_eq!(
        s.sis_person("sis", "g-1").unwrap(),
        None,
        "a person the sync skipped is not recorded"
    );
    assert_eq!(s.sis_person("other", "s-1").unwrap(), None);

    let ids = |q: &str, limit: u32| -> Vec<String> {
        s.search_sis_people("sis", q, limit)
            .unwrap()
            .into_iter()
            .map(|p| p.sourced_id)
            .collect()
    };
    assert_eq!(ids("ana", 10), ["s-1"]);
    assert_eq!(
        ids("LI ana", 10),
        ["s-1"],
        "every word, any order, any case"
    );
    assert_eq!(ids("id-S-2", 10), ["s-2"], "by school id");
    assert_eq!(
        ids("x.org", 10),
        ["s-1", "s-2"],
        "by family name: Li, Okafor"
    );
    assert_eq!(ids("x.org", 1), ["s-1"]);
    assert!(ids("gus", 10).is_empty());
    assert!(ids("100%_", 10).is_empty(), "wildcards are literal");
    assert!(matches!(
        s.search_sis_people("sis", "  ", 10),
        Err(StoreError::Conflict(_))
    ));

    // Ana is missing from the next complete pull: still recorded, no longer in it.
    let (second, _, _) = sync(s, &cfg, &[ben], later(10));
    assert_eq!(s.last_complete_pull("sis").unwrap().unwrap().run, second);
    let a = s.sis_person("sis", "s-1").unwrap().unwrap();
    assert!(!a.in_last_pull, "{a:?}");
    assert!(s.sis_person("sis", "s-2").unwrap().unwrap().in_last_pull);

    // Runs newest first, paged by id; a run's items paged by sourcedId.
    let ids: Vec<RunId> = s
        .list_runs_before(None, 0)
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, [second, first]);
    assert_eq!(s.list_runs_before(None, 1).unwrap()[0].id, second);
    let older = s.list_runs_before(Some(second), 10).unwrap();
    assert_eq!(older.iter().map(|r| r.id).collect::<Vec<_>>(), [first]);
    let keys = |items: Vec<store::RunItemRecord>| -> Vec<String> {
        items.into_iter().map(|i| i.sourced_id).collect()
    };
    let all = keys(s.run_items_after(first, None, None, 0).unwrap());
    assert_eq!(all, keys(s.run_items(first, None, 0, 0).unwrap()));
    assert_eq!(all.len(), 3, "{all:?}");
    let rest = keys(s.run_items_after(first, None, Some(&all[0]), 0).unwrap());
    assert_eq!(rest, all[1..]);
    let one = keys(s.run_items_after(first, None, Some(&all[0]), 1).unwrap());
    assert_eq!(one, all[1..2]);
}

conformance!(recorded_people_are_found_searched_and_placed_in_the_last_pull);
