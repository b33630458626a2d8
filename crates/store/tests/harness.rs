//! A fresh database per test, on SQLite and on PostgreSQL, and the fixtures the tests
//! share.
//!
//! [`conformance!`] turns each listed `fn(&mut TestDb)` into two tests, `sqlite::NAME`
//! and `postgres::NAME`. PostgreSQL tests read an admin URL from
//! `ROSTERSYNC_TEST_POSTGRES` (`scripts/pg-test-cluster start` prints one) and run in a
//! schema of their own, dropped afterwards. Without the variable they fail under
//! `CI=true` and otherwise say loudly that they were skipped (`test_kit`'s rules).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use jiff::Timestamp;
use oneroster::{Role, Status};
use rostersync_core::directory::{Account, AccountId, AccountState, Field, Link, Writer};
use rostersync_core::memory::MemoryDirectory;
use rostersync_core::plan::{Plan, PlanInput, SyncKind};
use rostersync_core::planner::plan;
use rostersync_core::roster::Roster;
use rostersync_core::settings::Config;
use rostersync_core::sis::{PersonFields, SisPerson};
use store::{ApplySummary, NewRun, RunId, Store, StoreError, Trigger};
use test_kit::{Backend, PgSchema, TempDir};

/// Every table of the schema.
pub const TABLES: [&str; 41] = [
    "meta",
    "locations",
    "runs",
    "held_plan_parts",
    "users",
    "field_provenance",
    "sis_links",
    "aliases",
    "groups",
    "group_members",
    "sources",
    "settings",
    "run_items",
    "revisions",
    "audit_log",
    "link_refusals",
    "source_state",
    "guardian_relationships",
    "calendars",
    "sis_orgs",
    "sis_people",
    "rooms",
    "console_accounts",
    "console_sessions",
    "api_tokens",
    "run_locks",
    "match_decisions",
    "review_cases",
    "kept_apart",
    "saved_views",
    "targets",
    "push_state",
    "push_groups",
    "scim_resources",
    "listed_skips",
    "account_counts",
    "location_counts",
    "run_item_counts",
    "duplicate_keys",
    "duplicate_key_counts",
    "unlinked_accounts",
];

/// The tables a backup leaves out but for `run_locks`: counts and keys derived from other
/// tables, which a restore makes again (migrations 0011, 0012, 0014, 0015), and the skips
/// earlier runs listed, which the next full sync makes again (0018).
pub const DERIVED: [&str; 7] = [
    "account_counts",
    "location_counts",
    "run_item_counts",
    "duplicate_keys",
    "duplicate_key_counts",
    "unlinked_accounts",
    "listed_skips",
];

enum Place {
    Sqlite {
        dir: TempDir,
        file: PathBuf,
        /// How many scratch databases the test asked for.
        scratch: usize,
    },
    Postgres {
        schema: PgSchema,
        /// More empty databases the test asked for.
        scratch: Vec<PgSchema>,
    },
}

/// One test's database. Fields drop in order: the store's connections close before the
/// folder or the schemas go, even when the test panics.
pub struct TestDb {
    store: Store,
    place: Place,
}

/// Runs `test` on a fresh database of `backend`, unless that backend is skipped here.
pub fn run(backend: Backend, test: fn(&mut TestDb)) {
    match backend {
        Backend::Sqlite => on_sqlite(test),
        Backend::Postgres => on_postgres(test),
    }
}

pub fn on_sqlite(test: fn(&mut TestDb)) {
    let dir = TempDir::new("rostersync_store_test");
    let file = dir.join("rostersync.db");
    let store = store::open(&format!("sqlite:{}", file.display())).unwrap();
    test(&mut TestDb {
        store,
        place: Place::Sqlite {
            dir,
            file,
            scratch: 0,
        },
    });
}

pub fn on_postgres(test: fn(&mut TestDb)) {
    let Some(schema) = PgSchema::create("rs_test") else {
        return;
    };
    let store = store::open(schema.url()).unwrap();
    test(&mut TestDb {
        store,
        place: Place::Postgres {
            schema,
            scratch: Vec::new(),
        },
    });
}

impl TestDb {
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.place, Place::Postgres { .. })
    }

    /// What `store::open` takes for this database.
    pub fn url(&self) -> String {
        match &self.place {
            Place::Sqlite { file, .. } => file.display().to_string(),
            Place::Postgres { schema, .. } => schema.url().to_owned(),
        }
    }

    /// Opens the same database again, as a second process would.
    pub fn reopen(&self) -> Result<Store, StoreError> {
        store::open(&self.url())
    }

    /// Runs SQL behind the store's back (the same text must work on both engines).
    pub fn exec(&self, sql: &str) {
        exec_at(&self.url(), sql);
    }

    /// Takes migration 14 (the duplicates report's keys) away behind the store's back,
    /// for the tests that set a database back to an older schema.
    pub fn undo_duplicate_keys(&self) {
        let on = if self.is_postgres() { " ON users" } else { "" };
        self.exec(&format!(
            "DROP TRIGGER duplicate_keys_user_insert{on}; DROP TRIGGER duplicate_keys_user_update{on}; \
             DROP TRIGGER duplicate_keys_user_delete{on}; DROP TABLE duplicate_keys; \
             DROP TABLE duplicate_key_counts; ALTER TABLE users DROP COLUMN dupkey_email; \
             ALTER TABLE users DROP COLUMN dupkey_username; \
             ALTER TABLE users DROP COLUMN dupkey_identifier; \
             DELETE FROM meta WHERE key = 'duplicate_keys'"
        ));
    }

    /// Another empty database of the same engine, dropped with this one: what
    /// `store::open` takes for it.
    pub fn scratch(&mut self) -> String {
        match &mut self.place {
            Place::Sqlite { dir, scratch, .. } => {
                // Counted, so a second scratch database is another file.
                let path = dir.join(format!("scratch-{scratch}.db"));
                *scratch += 1;
                path.display().to_string()
            }
            Place::Postgres { schema, scratch } => {
                let more = PgSchema::create_in(schema.admin(), "rs_scratch");
                let url = more.url().to_owned();
                scratch.push(more);
                url
            }
        }
    }

    pub fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        match &self.place {
            Place::Sqlite { file, .. } => {
                let c = rusqlite::Connection::open(file).unwrap();
                c.query_row(&sql, [], |r| r.get(0)).unwrap()
            }
            Place::Postgres { schema, .. } => test_kit::connect(schema.url())
                .query_one(&sql, &[])
                .unwrap()
                .get(0),
        }
    }

    /// Every row of a query whose columns are all text (`CAST(x AS TEXT)` works on both).
    pub fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        match &self.place {
            Place::Sqlite { file, .. } => {
                let c = rusqlite::Connection::open(file).unwrap();
                let mut stmt = c.prepare(sql).unwrap();
                let n = stmt.column_count();
                stmt.query_map([], |r| (0..n).map(|i| r.get(i)).collect())
                    .unwrap()
                    .map(Result::unwrap)
                    .collect()
            }
            Place::Postgres { schema, .. } => test_kit::connect(schema.url())
                .query(sql, &[])
                .unwrap()
                .iter()
                .map(|r| (0..r.len()).map(|i| r.get(i)).collect())
                .collect(),
        }
    }

    /// The aliases the store keeps equal the reference's: (account, kind, match key).
    pub fn assert_same_aliases(&self, mem: &MemoryDirectory) {
        let got: BTreeSet<(String, String, String)> = self
            .rows("SELECT CAST(user_id AS TEXT), kind, value_lc FROM aliases")
            .into_iter()
            .map(|r| {
                let mut r = r.into_iter().map(Option::unwrap);
                (r.next().unwrap(), r.next().unwrap(), r.next().unwrap())
            })
            .collect();
        let want: BTreeSet<(String, String, String)> = mem
            .aliases
            .iter()
            .map(|(u, k, v)| (u.to_string(), k.as_str().to_owned(), v.to_string()))
            .collect();
        assert_eq!(got, want, "aliases");
    }

    /// Rows in every table, by table.
    pub fn row_counts(&self) -> Vec<(&'static str, i64)> {
        TABLES.iter().map(|t| (*t, self.count(t))).collect()
    }
}

/// Runs SQL on a database given as `TestDb::url` or `TestDb::scratch` give it.
/// How many different (outcome, reason code) pairs a run's items have: the rows of
/// `run_item_counts` it writes.
pub fn kinds_of_items(db: &TestDb, run: RunId) -> i64 {
    let rows = db.rows(&format!(
        "SELECT CAST(COUNT(*) AS TEXT) FROM (SELECT DISTINCT outcome, reason_code FROM run_items WHERE run_id = {}) k",
        run.0
    ));
    rows[0][0].as_deref().unwrap().parse().unwrap()
}

/// Every run's item counts as the store keeps them are those of its items, counted.
pub fn assert_item_counts_true(db: &TestDb) {
    let runs = db.rows(
        "SELECT CAST(run_id AS TEXT) FROM run_items UNION SELECT CAST(run_id AS TEXT) FROM run_item_counts",
    );
    assert!(!runs.is_empty(), "runs with items to compare");
    for row in runs {
        let run: i64 = row[0].as_deref().unwrap().parse().unwrap();
        let mut kept: Vec<(String, String, u64)> = db.store().run_item_counts(RunId(run)).unwrap();
        kept.sort();
        let mut counted: Vec<(String, String, u64)> = db
            .rows(&format!(
                "SELECT outcome, reason_code, CAST(COUNT(*) AS TEXT) FROM run_items WHERE run_id = {run} \
                 GROUP BY outcome, reason_code"
            ))
            .into_iter()
            .map(|r| {
                (
                    r[0].clone().unwrap(),
                    r[1].clone().unwrap(),
                    r[2].as_deref().unwrap().parse().unwrap(),
                )
            })
            .collect();
        counted.sort();
        assert_eq!(kept, counted, "the item counts of run {run}");
    }
}

pub fn exec_at(url: &str, sql: &str) {
    if url.starts_with("postgres") {
        test_kit::connect(url).batch_execute(sql).unwrap();
    } else {
        let c = rusqlite::Connection::open(url).unwrap();
        c.execute_batch(sql).unwrap();
    }
}

/// Lists test functions to run on both backends.
macro_rules! conformance {
    ($($name:ident),+ $(,)?) => {
        test_kit::on_both!($crate::harness::run; $($name),+);
    };
}
pub(crate) use conformance;

// ----- fixtures

pub fn now() -> Timestamp {
    "2026-09-01T02:00:00Z".parse().unwrap()
}

pub fn later(minutes: i64) -> Timestamp {
    now() + jiff::SignedDuration::from_mins(minutes)
}

pub fn days(n: i64) -> Timestamp {
    now() + jiff::SignedDuration::from_hours(24 * n)
}

pub fn person(id: &str, role: Role, given: &str, family: &str, email: Option<&str>) -> SisPerson {
    SisPerson::new(PersonFields {
        sourced_id: id.into(),
        status: Status::Active,
        enabled: true,
        role: Some(role),
        username: format!("{}{}", given.to_lowercase(), family.to_lowercase()),
        email: email.map(str::to_owned),
        given_name: given.into(),
        family_name: family.into(),
        middle_name: None,
        preferred_first_name: None,
        identifier: Some(format!("ID-{id}")),
        phone: Some("555-0100".into()),
        grade: Some("05".into()),
        primary_org: Some("school-1".into()),
        orgs: vec!["school-1".into()],
        agents: vec![],
        modified: None,
    })
}

/// Settings with one CSV source named `sis`, plus `extra` TOML for it.
pub fn config(extra: &str) -> Config {
    Config::from_toml(&format!(
        "[[source]]\nname = \"sis\"\nkind = \"oneroster-csv\"\npath = \"x\"\n{extra}"
    ))
    .unwrap()
}

/// The district's usual mapping: student emails translated, append-domain for the rest.
pub fn district_config() -> Config {
    config(
        "[source.user_mapping]\ntranslate_email = [{ from = \"students.district.k12.us\", to = \"district.k12.us\" }]\n\
         append_domain = \"district.k12.us\"\n",
    )
}

pub fn plan_on(
    cfg: &Config,
    view: &rostersync_core::view::DirectoryView,
    people: &[SisPerson],
) -> Plan {
    plan_full(cfg, view, people, None, now())
}

/// A complete full pull's plan, with the rest of the roster when given.
pub fn plan_full(
    cfg: &Config,
    view: &rostersync_core::view::DirectoryView,
    people: &[SisPerson],
    roster: Option<&Roster>,
    at: Timestamp,
) -> Plan {
    plan_kind(cfg, view, people, SyncKind::Full, roster, at)
}

pub fn plan_kind(
    cfg: &Config,
    view: &rostersync_core::view::DirectoryView,
    people: &[SisPerson],
    kind: SyncKind,
    roster: Option<&Roster>,
    at: Timestamp,
) -> Plan {
    plan(
        &PlanInput {
            config: cfg,
            source: &cfg.sources[0],
            kind,
            complete: true,
            people,
            roster,
            now: at,
        },
        view,
    )
}

/// Plans against what the store holds.
pub fn plan_store(store: &Store, cfg: &Config, people: &[SisPerson]) -> Plan {
    plan_on(cfg, &store.load_view(&cfg.sources[0].name).unwrap(), people)
}

pub fn start(store: &Store, source: &str) -> RunId {
    store
        .start_run(&NewRun {
            source: source.into(),
            kind: SyncKind::Full,
            trigger: Trigger::Cli,
            started_at: now(),
        })
        .unwrap()
}

/// Plan, start a run, apply: a whole sync.
pub fn sync(
    store: &Store,
    cfg: &Config,
    people: &[SisPerson],
    at: Timestamp,
) -> (RunId, Plan, ApplySummary) {
    let p = plan_store(store, cfg, people);
    let run = start(store, &cfg.sources[0].name);
    let summary = store.apply_plan(run, &p, at).unwrap();
    (run, p, summary)
}

/// A sign-on account as `import_accounts` makes it, for the memory directory.
pub fn sso_user(email: &str, first: &str, last: &str) -> Account {
    let mut u = Account::blank(AccountId(0));
    u.email = Some(email.into());
    u.first_name = Some(first.into());
    u.last_name = Some(last.into());
    u.provider = Some("google".into());
    u.provenance = vec![
        (Field::Email, Writer::SignOn("google".into())),
        (Field::FirstName, Writer::SignOn("google".into())),
        (Field::LastName, Writer::SignOn("google".into())),
    ]
    .into();
    u
}

pub fn sso_row(email: &str, first: &str, last: &str) -> store::NewAccountRow {
    store::NewAccountRow {
        email: email.into(),
        first_name: Some(first.into()),
        last_name: Some(last.into()),
        username: None,
    }
}

/// The store's directory equals the memory directory's: every account with every field,
/// revision and provenance, and this source's links.
pub fn assert_same_directory(store: &Store, mem: &MemoryDirectory, source: &str) {
    let view = store.load_view(source).unwrap();
    let mut got: Vec<Account> = view.users().cloned().collect();
    got.sort_by_key(|u| u.id);
    let want: Vec<Account> = mem.users.values().cloned().collect();
    assert_eq!(got.len(), want.len(), "number of accounts");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w, "account #{}", w.id);
    }
    let got_links = store.stored_links(source).unwrap();
    let want_links: Vec<Link> = mem
        .links
        .iter()
        .filter(|((s, _), _)| s == source)
        .map(|(_, l)| l.clone())
        .collect();
    assert_eq!(got_links, want_links, "links");
    // The view holds each as a full pull reads it: with its account's revision and active
    // flag, and its person's org and role.
    assert_eq!(view.links().count(), want_links.len(), "links in the view");
    for (v, l) in view.links().zip(&want_links) {
        let account = mem.users.get(&l.user_id).map(|u| AccountState {
            revision: u.revision,
            active: u.active,
        });
        assert_eq!(
            (
                &*v.sourced_id,
                v.user_id,
                v.rule,
                v.record_hash,
                v.synced_revision
            ),
            (
                l.sourced_id.as_str(),
                l.user_id,
                l.rule,
                l.record_hash,
                l.synced_revision
            ),
            "link {}",
            l.sourced_id
        );
        assert_eq!(
            (v.misses, v.deactivated_at(), v.previous_access, v.account()),
            (l.misses, l.deactivated_at, l.previous_access, account),
            "link {}",
            l.sourced_id
        );
        assert_eq!(
            view.link_org(v),
            l.org.as_deref(),
            "org of {}",
            l.sourced_id
        );
        assert_eq!(
            view.link_role(v),
            l.role.as_deref(),
            "role of {}",
            l.sourced_id
        );
    }
}

/// A group as compared: key, name, kind, detail, member count.
type GroupLine = (Option<String>, String, String, Option<String>, u64);

/// The store's roster equals the memory directory's for a source: the state the planner
/// reads (group hashes, relationships and calendars hashes, refusals), every group with
/// its members resolved through the links, and every account's groups and guardianships.
pub fn assert_same_roster(store: &Store, mem: &MemoryDirectory, source: &str) {
    let view = store.load_view(source).unwrap();
    let want_view = mem.view(source);
    assert_eq!(
        view.source_state(),
        want_view.source_state(),
        "source state"
    );
    for (s, sourced_id, user) in &mem.refused {
        if s == source {
            assert!(
                view.refused(sourced_id, *user),
                "refusal of {sourced_id} / #{user}"
            );
        }
    }

    let account = |sourced_id: &str| -> Option<AccountId> {
        mem.links
            .get(&(source.to_owned(), sourced_id.to_owned()))
            .map(|l| l.user_id)
    };
    // Groups: key, name, kind, detail, member count.
    let mut want_groups: Vec<GroupLine> = Vec::new();
    let mut want_user_groups: BTreeMap<AccountId, Vec<String>> = BTreeMap::new();
    for ((s, key), g) in &mem.groups {
        if s != source {
            continue;
        }
        let members: BTreeSet<AccountId> = g.members.iter().filter_map(&account).collect();
        for u in &members {
            want_user_groups.entry(*u).or_default().push(g.name.clone());
        }
        want_groups.push((
            Some(key.clone()),
            g.name.clone(),
            g.kind.as_str().to_owned(),
            g.detail.clone(),
            members.len() as u64,
        ));
    }
    let mut got_groups: Vec<GroupLine> = store
        .groups(Some(source), 0)
        .unwrap()
        .into_iter()
        .map(|g| (g.key, g.name, g.kind, g.detail, g.members))
        .collect();
    got_groups.sort();
    want_groups.sort();
    assert_eq!(got_groups, want_groups, "groups");

    // Relationships, both directions.
    let mut students: BTreeMap<AccountId, BTreeSet<AccountId>> = BTreeMap::new();
    let mut guardians: BTreeMap<AccountId, BTreeSet<AccountId>> = BTreeMap::new();
    for (g, s) in mem.relationships.get(source).into_iter().flatten() {
        if let (Some(g), Some(s)) = (account(g), account(s)) {
            students.entry(g).or_default().insert(s);
            guardians.entry(s).or_default().insert(g);
        }
    }
    for id in mem.users.keys() {
        let mut names = want_user_groups.remove(id).unwrap_or_default();
        names.sort();
        assert_eq!(store.user_groups(*id).unwrap(), names, "groups of #{id}");
        let got = store.guardianships(*id).unwrap();
        let ids = |v: &[store::UserRef]| v.iter().map(|u| u.id).collect::<BTreeSet<_>>();
        assert_eq!(
            ids(&got.students),
            students.remove(id).unwrap_or_default(),
            "students of #{id}"
        );
        assert_eq!(
            ids(&got.guardians),
            guardians.remove(id).unwrap_or_default(),
            "guardians of #{id}"
        );
    }
}
