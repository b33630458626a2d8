//! Backup and restore: a directory with something in every corner is backed up and
//! restored into a fresh database of the other backend (the same one when PostgreSQL is
//! not here), and every table compares equal row by row; truncated, damaged, newer and
//! wrong-key backups and a non-empty target are refused with nothing written; an older
//! backup without a column restores it with its default, and a column the database lacks
//! is named.

use std::io::Cursor;

use base64::Engine as _;
use oneroster::Role;
use rostersync_core::directory::AccountId;
use store::keyring::Keyring;
use store::{BackupStep, CaseResolution, ConsoleRole, NewSession, Store, StoreError, TokenScope};
use test_kit::{PgSchema, TempDir};

use crate::harness::{
    DERIVED, TABLES, TestDb, conformance, district_config, later, now, person, plan_store, sso_row,
    start, sync,
};

conformance!(
    a_directory_restores_into_the_other_backend_identical,
    a_backup_is_one_snapshot_while_another_process_writes,
    bad_backups_and_busy_targets_are_refused_with_nothing_written,
    an_older_backup_restores_and_a_foreign_column_is_named,
    people_keys_are_carried_or_computed_again,
);

fn key(byte: u8) -> Keyring {
    Keyring::from_base64(&base64::engine::general_purpose::STANDARD.encode([byte; 32])).unwrap()
}

fn id_of(s: &Store, email: &str) -> AccountId {
    s.find_user(email).unwrap().unwrap().user.id
}

/// Accounts, links, runs and items, a held run, review cases (one resolved), a merge
/// whose survivor is the later account, settings with a sealed secret, console accounts,
/// a session, a token, audit entries.
fn fill(s: &Store) {
    let k = key(7);
    s.meta_set("master_key_check", &k.check_value()).unwrap();
    let cfg = district_config();
    s.save_config(
        &cfg,
        &[("sis".into(), Some(k.encrypt(b"s3cret")))],
        "owner",
        now(),
    )
    .unwrap();
    s.import_accounts(
        &[
            sso_row("twin@x.org", "Tw", "In"),
            sso_row("old@x.org", "Ol", "D"),
            sso_row("new@x.org", "Ne", "W"),
        ],
        "google",
        now(),
    )
    .unwrap();
    let mut people = vec![
        person("p1", Role::Student, "Tw", "In", Some("twin@x.org")),
        person("p2", Role::Student, "Tw", "In", Some("twin@x.org")),
        person("s1", Role::Student, "Ana", "Li", Some("ana@x.org")),
        person("t1", Role::Teacher, "Ben", "Öz", Some("ben@x.org")),
    ];
    people[3].edit(|f| f.grade = None);
    sync(s, &cfg, &people, now());
    people[2].edit(|f| f.given_name = "Anna".into());
    sync(s, &cfg, &people, later(1));
    let p = plan_store(s, &cfg, &people[..2]);
    s.hold_run(start(s, "sis"), p, &[], &["a warning".into()], later(2))
        .unwrap();
    let case = s
        .review_cases(Some("open"), None, 0)
        .unwrap()
        .into_iter()
        .find(|c| c.sourced_id == "p2")
        .unwrap();
    s.resolve_case(case.id, CaseResolution::Ignore, "alice", later(3))
        .unwrap();
    let (old, new) = (id_of(s, "old@x.org"), id_of(s, "new@x.org"));
    assert!(old < new);
    s.merge_accounts(old, new, "alice", later(4), false)
        .unwrap();
    let admin = s
        .create_console_account(
            "admin",
            ConsoleRole::Owner,
            "$argon2id$h",
            "cli:root",
            now(),
        )
        .unwrap();
    s.create_console_account("zed", ConsoleRole::Viewer, "$argon2id$z", "cli:root", now())
        .unwrap();
    s.create_session(&NewSession {
        id_hash: "h-sess".into(),
        account: admin,
        csrf: "tok".into(),
        created_at: now(),
        expires_at: later(720),
    })
    .unwrap();
    s.create_api_token(
        "ci",
        TokenScope::Write,
        "sha-1",
        Some(later(9)),
        "cli:root",
        now(),
    )
    .unwrap();
    s.audit(
        "admin:zoë",
        "user.edit",
        "\"quoted\" \\ tab\there\nline",
        later(5),
    )
    .unwrap();
}

/// Another database to restore into, dropped after its store.
struct Other {
    store: Store,
    url: String,
    _place: (Option<TempDir>, Option<PgSchema>),
}

/// A fresh database of the other backend (the same one when there is no PostgreSQL).
fn other_backend(db: &mut TestDb) -> Other {
    if db.is_postgres() {
        let dir = TempDir::new("rostersync_backup_target");
        let url = dir.join("target.db").display().to_string();
        return Other {
            store: store::open(&url).unwrap(),
            url,
            _place: (Some(dir), None),
        };
    }
    match PgSchema::create("rs_backup") {
        Some(schema) => {
            let url = schema.url().to_owned();
            Other {
                store: store::open(&url).unwrap(),
                url,
                _place: (None, Some(schema)),
            }
        }
        None => {
            let url = db.scratch();
            Other {
                store: store::open(&url).unwrap(),
                url,
                _place: (None, None),
            }
        }
    }
}

/// Every row of a table, each as (column, value as text) sorted by column, the rows
/// sorted: booleans as 0/1, blobs in hex, whatever the backend.
fn dump(url: &str, table: &str) -> Vec<Vec<(String, Option<String>)>> {
    let sql = format!("SELECT * FROM {table}");
    let mut rows: Vec<Vec<(String, Option<String>)>> = if url.starts_with("postgres") {
        use ::postgres::types::Type;
        test_kit::connect(url)
            .query(&sql, &[])
            .unwrap()
            .iter()
            .map(|r| {
                r.columns()
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let v = match *c.type_() {
                            Type::INT8 => r.get::<_, Option<i64>>(i).map(|v| v.to_string()),
                            Type::INT4 => r.get::<_, Option<i32>>(i).map(|v| v.to_string()),
                            Type::BOOL => r
                                .get::<_, Option<bool>>(i)
                                .map(|b| i64::from(b).to_string()),
                            Type::BYTEA => r.get::<_, Option<Vec<u8>>>(i).map(|b| hex(&b)),
                            _ => r.get::<_, Option<String>>(i),
                        };
                        (c.name().to_owned(), v)
                    })
                    .collect()
            })
            .collect()
    } else {
        use rusqlite::types::Value;
        let c = rusqlite::Connection::open(url).unwrap();
        let mut stmt = c.prepare(&sql).unwrap();
        let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
        stmt.query_map([], |r| {
            Ok(names
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    let v = match r.get::<_, Value>(i).unwrap() {
                        Value::Null => None,
                        Value::Integer(v) => Some(v.to_string()),
                        Value::Real(v) => Some(v.to_string()),
                        Value::Text(s) => Some(s),
                        Value::Blob(b) => Some(hex(&b)),
                    };
                    (n.clone(), v)
                })
                .collect())
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    };
    for r in &mut rows {
        r.sort();
    }
    rows.sort();
    rows
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Rows in every table but `meta`.
fn directory_rows(url: &str) -> usize {
    TABLES
        .iter()
        .filter(|t| **t != "meta")
        .map(|t| dump(url, t).len())
        .sum()
}

fn backup_of(s: &Store) -> Vec<u8> {
    let mut out = Vec::new();
    s.backup(&mut out, later(10), &mut |_| {}).unwrap();
    out
}

fn restore(
    s: &Store,
    file: &[u8],
    k: Option<&Keyring>,
) -> Result<store::RestoreSummary, StoreError> {
    s.restore(Cursor::new(file), k, &mut |_| {})
}

fn a_directory_restores_into_the_other_backend_identical(db: &mut TestDb) {
    fill(db.store());
    let mut steps = Vec::new();
    let mut file = Vec::new();
    let summary = db
        .store()
        .backup(&mut file, later(10), &mut |p| {
            steps.push((p.step, p.table.to_owned()))
        })
        .unwrap();
    assert_eq!(summary.bytes, file.len() as u64);
    assert_eq!(
        summary.tables,
        TABLES.len() - 1 - DERIVED.len(),
        "every table but run_locks and the derived ones"
    );
    assert!(steps.iter().all(|(s, _)| *s == BackupStep::Backup));
    assert_eq!(steps.first().unwrap().1, "meta");
    let text = String::from_utf8(file.clone()).unwrap();
    let header: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(header["format"], "rostersync-backup");
    assert_eq!(header["version"], 1);
    assert_eq!(header["schema_version"], store::SCHEMA_VERSION);
    assert_eq!(header["backend"], db.store().backend());
    assert_eq!(header["created_at"], "2026-09-01T02:10:00.000000000Z");
    assert!(key(7).verify(header["key_check"].as_str().unwrap()));
    assert!(!text.contains("s3cret"), "secrets stay sealed");
    let end: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(end["end"], true);
    assert_eq!(end["rows"], summary.rows);
    let info = store::verify_backup(&mut Cursor::new(&file), &mut |_| {}).unwrap();
    assert_eq!(info.rows, summary.rows);
    assert_eq!(
        info.header.key_fingerprint(),
        summary.key_fingerprint,
        "the fingerprint names the key check"
    );

    for table in [
        "users",
        "field_provenance",
        "sis_links",
        "runs",
        "run_items",
        "revisions",
        "sources",
        "settings",
        "audit_log",
        "sis_people",
        "review_cases",
        "match_decisions",
        "console_accounts",
        "console_sessions",
        "api_tokens",
    ] {
        assert!(
            !dump(&db.url(), table).is_empty(),
            "the fixture fills {table}"
        );
    }

    let target = other_backend(db);
    let restored = restore(&target.store, &file, Some(&key(7))).unwrap();
    assert_eq!(restored.rows, summary.rows);
    assert_eq!(restored.from_backend, db.store().backend());
    for table in TABLES.iter().filter(|t| !DERIVED.contains(t)) {
        assert_eq!(dump(&db.url(), table), dump(&target.url, table), "{table}");
    }
    // The derived tables, filled again by the restore's inserts, count the same.
    assert_eq!(
        format!("{:?}", db.store().count_users().unwrap()),
        format!("{:?}", target.store.count_users().unwrap())
    );
    // The restored store reads as the original: secrets open with the same key, merged
    // accounts point to their survivor, new ids follow the restored ones.
    let secret = target.store.source_secret("sis").unwrap().unwrap();
    assert_eq!(key(7).decrypt(&secret).unwrap(), b"s3cret");
    let old = db.store().find_user("old@x.org").unwrap();
    assert!(old.as_ref().unwrap().user.merged_into.is_some());
    assert_eq!(
        old.map(|u| u.user.merged_into),
        target
            .store
            .find_user("old@x.org")
            .unwrap()
            .map(|u| u.user.merged_into)
    );
    let max = dump(&target.url, "users")
        .iter()
        .flat_map(|r| r.iter().filter(|(c, _)| c == "id"))
        .filter_map(|(_, v)| v.as_deref()?.parse::<i64>().ok())
        .max()
        .unwrap();
    target
        .store
        .import_accounts(&[sso_row("later@x.org", "La", "Ter")], "google", later(20))
        .unwrap();
    assert_eq!(id_of(&target.store, "later@x.org").0, max + 1);
}

fn a_backup_is_one_snapshot_while_another_process_writes(db: &mut TestDb) {
    fill(db.store());
    let other = db.reopen().unwrap();
    let mut file = Vec::new();
    let mut wrote = false;
    db.store()
        .backup(&mut file, later(10), &mut |p| {
            // The backup is past `meta` and `runs`, not yet at `users` and `audit_log`.
            if p.table == "users" && !wrote {
                other
                    .import_accounts(
                        &[sso_row("during@x.org", "Du", "Ring")],
                        "google",
                        later(11),
                    )
                    .unwrap();
                other
                    .audit("cli:root", "test", "written during the backup", later(11))
                    .unwrap();
                wrote = true;
            }
        })
        .unwrap();
    assert!(wrote);
    assert!(
        db.store().find_user("during@x.org").unwrap().is_some(),
        "committed"
    );
    let text = String::from_utf8(file).unwrap();
    assert!(!text.contains("during@x.org"), "not in the snapshot");
    assert!(!text.contains("written during the backup"));
}

fn bad_backups_and_busy_targets_are_refused_with_nothing_written(db: &mut TestDb) {
    fill(db.store());
    let file = backup_of(db.store());
    let target = other_backend(db);
    let refused = |f: &[u8], k: Option<&Keyring>| -> String {
        let e = restore(&target.store, f, k).unwrap_err();
        assert!(
            !e.is_unavailable(),
            "a refusal, not a database failure: {e}"
        );
        assert_eq!(directory_rows(&target.url), 0, "nothing written");
        e.to_string()
    };

    let e = refused(&file[..file.len() - 20], None);
    assert!(e.contains("truncated"), "{e}");
    let e = refused(&file[..file.len() / 2], None);
    assert!(e.contains("truncated"), "{e}");

    let mut flipped = file.clone();
    let at = file.len() / 2
        + file[file.len() / 2..]
            .iter()
            .position(u8::is_ascii_alphabetic)
            .unwrap();
    flipped[at] ^= 0x20;
    let e = refused(&flipped, None);
    assert!(e.contains("damaged") && e.contains("checksum"), "{e}");

    let newer =
        String::from_utf8(file.clone())
            .unwrap()
            .replacen("\"version\":1", "\"version\":2", 1);
    let e = refused(newer.as_bytes(), None);
    assert!(
        e.contains("written by a newer rostersync (backup format 2)")
            && e.contains("use that release or newer"),
        "{e}"
    );
    let newer_schema = String::from_utf8(file.clone()).unwrap().replacen(
        &format!("\"schema_version\":{}", store::SCHEMA_VERSION),
        "\"schema_version\":99",
        1,
    );
    let e = refused(newer_schema.as_bytes(), None);
    assert!(e.contains("schema version 99"), "{e}");
    let e = refused(b"not a backup\n", None);
    assert!(e.contains("not a rostersync backup"), "{e}");

    let e = refused(&file, Some(&key(8)));
    assert!(
        e.contains("sealed with another master key (fingerprint "),
        "{e}"
    );
    let info = store::verify_backup(&mut Cursor::new(&file), &mut |_| {}).unwrap();
    assert!(e.contains(&info.header.key_fingerprint().unwrap()), "{e}");

    // A non-empty target: the source itself, and the target once restored.
    let e = restore(db.store(), &file, None).unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e}");
    assert!(e.to_string().contains("is not empty ("), "{e}");
    restore(&target.store, &file, Some(&key(7))).unwrap();
    let before = directory_rows(&target.url);
    let e = restore(&target.store, &file, None).unwrap_err().to_string();
    assert!(e.contains("is not empty"), "{e}");
    assert_eq!(directory_rows(&target.url), before);
}

/// Rewrites a backup: `edit` changes each table's columns and rows; the checksum is made
/// again.
fn rewrite(
    file: &[u8],
    mut edit: impl FnMut(&str, &mut Vec<String>, Option<&mut Vec<serde_json::Value>>),
) -> Vec<u8> {
    let text = String::from_utf8(file.to_vec()).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.pop();
    let mut out = String::new();
    let mut table = String::new();
    let mut columns: Vec<String> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        if i > 0 && v.get("table").is_some() {
            table = v["table"].as_str().unwrap().to_owned();
            columns = serde_json::from_value(v["columns"].clone()).unwrap();
            let mut edited = columns.clone();
            edit(&table, &mut edited, None);
            v["columns"] = serde_json::json!(edited);
        } else if let Some(row) = v.as_array_mut() {
            let mut c = columns.clone();
            edit(&table, &mut c, Some(row));
        }
        out.push_str(&serde_json::to_string(&v).unwrap());
        out.push('\n');
    }
    let rows = out.lines().filter(|l| l.starts_with('[')).count();
    let sha = ring::digest::digest(&ring::digest::SHA256, out.as_bytes());
    out.push_str(&format!(
        "{{\"end\":true,\"rows\":{rows},\"sha256\":\"{}\"}}\n",
        hex(sha.as_ref())
    ));
    out.into_bytes()
}

fn an_older_backup_restores_and_a_foreign_column_is_named(db: &mut TestDb) {
    fill(db.store());
    let file = backup_of(db.store());
    // A backup from before runs had warnings: the restored runs have none.
    let older = rewrite(&file, |table, columns, row| {
        if table == "runs" {
            let i = columns.iter().position(|c| c == "warnings").unwrap();
            columns.remove(i);
            if let Some(row) = row {
                row.remove(i);
            }
        }
    });
    let target = other_backend(db);
    restore(&target.store, &older, None).unwrap();
    let runs = dump(&target.url, "runs");
    assert!(!runs.is_empty());
    assert!(
        runs.iter()
            .all(|r| r.iter().any(|(c, v)| c == "warnings" && v.is_none()))
    );
    assert!(
        dump(&db.url(), "runs")
            .iter()
            .any(|r| r.iter().any(|(c, v)| c == "warnings" && v.is_some()))
    );

    let foreign = rewrite(&file, |table, columns, row| {
        if table == "users" {
            columns.push("shoe_size".into());
            if let Some(row) = row {
                row.push(serde_json::json!(42));
            }
        }
    });
    let empty = other_backend(db);
    let e = restore(&empty.store, &foreign, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("users.shoe_size"), "{e}");
    assert_eq!(directory_rows(&empty.url), 0);
}

/// Every SIS person's stored match keys: (source, sourcedId, name, email, username).
fn person_keys(url: &str) -> Vec<Vec<Option<String>>> {
    let mut out: Vec<Vec<Option<String>>> = dump(url, "sis_people")
        .into_iter()
        .map(|r| {
            [
                "source",
                "sourced_id",
                "name_key",
                "email_key",
                "username_key",
            ]
            .iter()
            .map(|c| r.iter().find(|(n, _)| n == c).unwrap().1.clone())
            .collect()
        })
        .collect();
    out.sort();
    out
}

/// A backup of schema v13 carries the SIS people's keys, and its meta says which rule
/// made them: they are restored as they are. One from before (no such columns, no such
/// meta) or of another rule's version has them computed.
fn people_keys_are_carried_or_computed_again(db: &mut TestDb) {
    fill(db.store());
    let want = person_keys(&db.url());
    assert!(
        want.iter().any(|r| r[2].as_deref() == Some("anna li")),
        "{want:?}"
    );
    assert!(
        want.iter().any(|r| r[2].as_deref() == Some("ben oz")),
        "{want:?}"
    );
    assert!(want.iter().all(|r| r[3].is_some()), "{want:?}");
    let file = backup_of(db.store());

    // Carried: a key the backup says is the current rule's is not computed again.
    let tampered = rewrite(&file, |table, columns, row| {
        if table == "sis_people"
            && let Some(row) = row
        {
            let i = columns.iter().position(|c| c == "name_key").unwrap();
            row[i] = serde_json::json!("carried");
        }
    });
    let target = other_backend(db);
    restore(&target.store, &tampered, Some(&key(7))).unwrap();
    assert!(
        person_keys(&target.url)
            .iter()
            .all(|r| r[2].as_deref() == Some("carried"))
    );
    let target = other_backend(db);
    restore(&target.store, &file, Some(&key(7))).unwrap();
    assert_eq!(person_keys(&target.url), want);

    // From before schema v13: no key columns, no rule version.
    let older = rewrite(&file, |table, columns, mut row| {
        if table == "sis_people" {
            for c in ["username_key", "email_key", "name_key"] {
                let i = columns.iter().position(|x| x == c).unwrap();
                columns.remove(i);
                if let Some(row) = row.as_deref_mut() {
                    row.remove(i);
                }
            }
        } else if table == "meta"
            && let Some(row) = row
            && row[0] == "sis_people_keys"
        {
            // (A row cannot be left out here: another key says nothing of this rule.)
            row[0] = serde_json::json!("a_later_setting");
        }
    });
    assert!(!String::from_utf8_lossy(&older).contains("name_key"));
    assert!(!String::from_utf8_lossy(&older).contains("sis_people_keys"));
    let target = other_backend(db);
    restore(&target.store, &older, Some(&key(7))).unwrap();
    assert_eq!(person_keys(&target.url), want);
    assert_eq!(
        target.store.meta_get("sis_people_keys").unwrap().as_deref(),
        Some("1")
    );
}
