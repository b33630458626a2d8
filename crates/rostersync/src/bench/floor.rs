//! The floor of a sync: the cheapest honest pass over the bytes a full pull reads, timed by
//! `rostersync bench --floor` beside the real phases.
//!
//! The floor makes the requests the engine's full pull makes (OAuth 2 client credentials,
//! then orgs, academicSessions, courses, classes, users and enrollments, `limit` = the page
//! size, the first page alone and the rest [`IN_FLIGHT`] at a time by offset), parses each
//! page with serde into borrowed structs that hold only the fields the sync keeps, and then
//! either inserts them, with a content hash, into tables that have only their primary keys
//! (one writer thread, one transaction: [`first_import`]), or hashes them and compares the
//! hashes with those the import stored ([`no_change`]). Nothing is validated, normalised,
//! derived or planned. The parsers read the simulator's OneRoster 1.1 JSON, whose strings
//! never carry escapes, as `&str`: a page that did would fail to parse, loudly.
//!
//! With `bench --csv` the floor reads the CSV package the sync reads instead
//! ([`super::floor_csv`]): one thread unzips and splits each file into rows, handed on in
//! batches as pages are, and the records go where a page's go.

use std::collections::{HashMap, VecDeque};
use std::io::Write as _;
use std::sync::mpsc;
use std::time::Instant;

use rostersync_core::sis::Fnv;
use serde::Deserialize;

use super::floor_csv;
use crate::Failure;
use oneroster::Collection;

/// Requests in flight after the first page of a collection.
pub const IN_FLIGHT: usize = 4;

/// Where the floor reads the district: the simulator's REST API, or a CSV package it wrote.
pub enum Input {
    Rest(Endpoint),
    Csv(std::path::PathBuf),
}

/// Where the simulated district is served, and how to ask it.
pub struct Endpoint {
    pub base_url: String,
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub page_size: u32,
}

/// Where the floor's tables live: a SQLite file, or a PostgreSQL URL whose search path is
/// a fresh schema.
#[derive(Clone)]
pub enum Database {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

/// What one floor pass took and saw.
#[derive(Debug, Default)]
pub struct Pass {
    pub wall_s: f64,
    /// Start to the last page received (first import), or to the last page fetched,
    /// parsed and compared as far as the hashes had loaded (no-change).
    pub pull_s: f64,
    /// What loading the stored hashes, beside the pull, added after it (no-change only).
    pub load_s: f64,
    /// From the last page received to the commit (first import only).
    pub apply_s: f64,
    /// Records per collection, in [`Collection::ROSTER`] order.
    pub records: [u64; 6],
    /// Records whose hash matched the stored one (no-change only).
    pub unchanged: u64,
    /// Records whose hash differed or that were not stored (no-change only).
    pub changed: u64,
}

impl Pass {
    pub fn users(&self) -> u64 {
        self.records[Collection::Users as usize]
    }
}

/// A floor table: where one collection's records go, and the fields kept of each, in the
/// order [`Record::cells`] gives them (the hash follows).
struct Table {
    name: &'static str,
    columns: &'static [&'static str],
}

/// The floor's tables, one for each collection of [`Collection::ROSTER`], in that order:
/// a collection's is `TABLES[kind as usize]`.
const TABLES: [Table; 6] = [
    Table {
        name: "floor_orgs",
        columns: &["status", "name", "org_type"],
    },
    Table {
        name: "floor_sessions",
        columns: &[
            "status",
            "title",
            "session_type",
            "start_date",
            "end_date",
            "parent",
        ],
    },
    Table {
        name: "floor_courses",
        columns: &["status", "title"],
    },
    Table {
        name: "floor_classes",
        columns: &[
            "status",
            "title",
            "class_type",
            "location",
            "school",
            "course",
        ],
    },
    Table {
        name: "floor_users",
        columns: &[
            "status",
            "modified",
            "enabled",
            "role",
            "username",
            "email",
            "given_name",
            "family_name",
            "middle_name",
            "preferred_first_name",
            "identifier",
            "phone",
            "sms",
            "grade",
            "orgs",
            "agents",
        ],
    },
    Table {
        name: "floor_enrollments",
        columns: &["status", "role", "user_id", "class_id"],
    },
];

impl Table {
    /// The table of `kind`, one of [`Collection::ROSTER`].
    fn of(kind: Collection) -> Result<&'static Table, Failure> {
        TABLES
            .get(kind as usize)
            .ok_or_else(|| Failure::config(format!("floor: no table for {kind}")))
    }

    fn create_sql(&self) -> String {
        let mut sql = format!("CREATE TABLE {} (sourced_id TEXT PRIMARY KEY", self.name);
        for c in self.columns {
            sql.push_str(&format!(", {c} TEXT"));
        }
        sql.push_str(", hash BIGINT NOT NULL)");
        sql
    }

    fn insert_sql(&self) -> String {
        let n = self.columns.len() + 2;
        let marks: Vec<String> = (1..=n).map(|i| format!("?{i}")).collect();
        format!(
            "INSERT INTO {} (sourced_id, {}, hash) VALUES ({})",
            self.name,
            self.columns.join(", "),
            marks.join(", ")
        )
    }

    fn copy_sql(&self) -> String {
        format!(
            "COPY {} (sourced_id, {}, hash) FROM STDIN",
            self.name,
            self.columns.join(", ")
        )
    }
}

/// One kept value of a record.
#[derive(Clone, Copy, Debug)]
pub enum Cell<'r> {
    Text(&'r str),
    Opt(Option<&'r str>),
    /// The sourcedIds of a list of references, stored joined by commas.
    Refs(&'r [Ref<'r>]),
}

/// A record as the floor keeps it.
pub trait Record {
    fn sourced_id(&self) -> &str;
    /// The kept values, in the order of its [`Table`]'s columns.
    fn cells(&self, each: &mut dyn FnMut(Cell<'_>));
}

/// The content hash of a record: FNV-1a over its sourcedId and kept values, as the
/// sync's own record hashes are.
pub fn content_hash(rec: &dyn Record) -> u64 {
    let mut h = Fnv::new();
    h.str(rec.sourced_id());
    rec.cells(&mut |c| match c {
        Cell::Text(s) => h.str(s),
        Cell::Opt(s) => h.opt(s),
        Cell::Refs(refs) => {
            for r in refs {
                h.str(r.sourced_id);
            }
            h.u64(0xff);
        }
    });
    h.finish()
}

/// The key of a sourcedId in the no-change pass's maps.
fn id_key(id: &str) -> u64 {
    let mut h = Fnv::new();
    h.str(id);
    h.finish()
}

/// A GUIDRef: only its sourcedId is kept.
#[derive(Debug, Deserialize)]
pub struct Ref<'a> {
    #[serde(rename = "sourcedId")]
    pub sourced_id: &'a str,
}

/// Also a row of `orgs.csv`, whose columns bear the same names; the other collections'
/// rows name their references otherwise and are made into these structs
/// ([`super::floor_csv`]).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Org<'a> {
    pub(super) sourced_id: &'a str,
    pub(super) status: &'a str,
    pub(super) name: &'a str,
    #[serde(rename = "type", default)]
    pub(super) org_type: Option<&'a str>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Session<'a> {
    pub(super) sourced_id: &'a str,
    pub(super) status: &'a str,
    pub(super) title: &'a str,
    #[serde(rename = "type", default)]
    pub(super) session_type: Option<&'a str>,
    #[serde(default)]
    pub(super) start_date: Option<&'a str>,
    #[serde(default)]
    pub(super) end_date: Option<&'a str>,
    #[serde(borrow, default)]
    pub(super) parent: Option<Ref<'a>>,
}

/// Also a row of `courses.csv`, whose columns bear the same names.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Course<'a> {
    pub(super) sourced_id: &'a str,
    pub(super) status: &'a str,
    pub(super) title: &'a str,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Class<'a> {
    pub(super) sourced_id: &'a str,
    pub(super) status: &'a str,
    pub(super) title: &'a str,
    #[serde(default)]
    pub(super) class_type: Option<&'a str>,
    #[serde(default)]
    pub(super) location: Option<&'a str>,
    #[serde(borrow, default)]
    pub(super) school: Option<Ref<'a>>,
    #[serde(borrow, default)]
    pub(super) course: Option<Ref<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct User<'a> {
    pub(super) sourced_id: &'a str,
    pub(super) status: &'a str,
    #[serde(default)]
    pub(super) date_last_modified: Option<&'a str>,
    #[serde(default = "enabled")]
    pub(super) enabled_user: bool,
    #[serde(default)]
    pub(super) role: Option<&'a str>,
    pub(super) username: &'a str,
    #[serde(default)]
    pub(super) email: Option<&'a str>,
    pub(super) given_name: &'a str,
    pub(super) family_name: &'a str,
    #[serde(default)]
    pub(super) middle_name: Option<&'a str>,
    #[serde(default)]
    pub(super) preferred_first_name: Option<&'a str>,
    #[serde(default)]
    pub(super) identifier: Option<&'a str>,
    #[serde(default)]
    pub(super) phone: Option<&'a str>,
    #[serde(default)]
    pub(super) sms: Option<&'a str>,
    #[serde(borrow, default)]
    pub(super) grades: Vec<&'a str>,
    #[serde(borrow, default)]
    pub(super) orgs: Vec<Ref<'a>>,
    #[serde(borrow, default)]
    pub(super) agents: Vec<Ref<'a>>,
}

fn enabled() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Enrollment<'a> {
    pub(super) sourced_id: &'a str,
    pub(super) status: &'a str,
    #[serde(default)]
    pub(super) role: Option<&'a str>,
    #[serde(borrow)]
    pub(super) user: Ref<'a>,
    #[serde(borrow)]
    pub(super) class: Ref<'a>,
}

impl Record for Org<'_> {
    fn sourced_id(&self) -> &str {
        self.sourced_id
    }
    fn cells(&self, each: &mut dyn FnMut(Cell<'_>)) {
        each(Cell::Text(self.status));
        each(Cell::Text(self.name));
        each(Cell::Opt(self.org_type));
    }
}

impl Record for Session<'_> {
    fn sourced_id(&self) -> &str {
        self.sourced_id
    }
    fn cells(&self, each: &mut dyn FnMut(Cell<'_>)) {
        each(Cell::Text(self.status));
        each(Cell::Text(self.title));
        each(Cell::Opt(self.session_type));
        each(Cell::Opt(self.start_date));
        each(Cell::Opt(self.end_date));
        each(Cell::Opt(self.parent.as_ref().map(|p| p.sourced_id)));
    }
}

impl Record for Course<'_> {
    fn sourced_id(&self) -> &str {
        self.sourced_id
    }
    fn cells(&self, each: &mut dyn FnMut(Cell<'_>)) {
        each(Cell::Text(self.status));
        each(Cell::Text(self.title));
    }
}

impl Record for Class<'_> {
    fn sourced_id(&self) -> &str {
        self.sourced_id
    }
    fn cells(&self, each: &mut dyn FnMut(Cell<'_>)) {
        each(Cell::Text(self.status));
        each(Cell::Text(self.title));
        each(Cell::Opt(self.class_type));
        each(Cell::Opt(self.location));
        each(Cell::Opt(self.school.as_ref().map(|r| r.sourced_id)));
        each(Cell::Opt(self.course.as_ref().map(|r| r.sourced_id)));
    }
}

impl Record for User<'_> {
    fn sourced_id(&self) -> &str {
        self.sourced_id
    }
    fn cells(&self, each: &mut dyn FnMut(Cell<'_>)) {
        each(Cell::Text(self.status));
        each(Cell::Opt(self.date_last_modified));
        each(Cell::Text(if self.enabled_user { "1" } else { "0" }));
        each(Cell::Opt(self.role));
        each(Cell::Text(self.username));
        each(Cell::Opt(self.email));
        each(Cell::Text(self.given_name));
        each(Cell::Text(self.family_name));
        each(Cell::Opt(self.middle_name));
        each(Cell::Opt(self.preferred_first_name));
        each(Cell::Opt(self.identifier));
        each(Cell::Opt(self.phone));
        each(Cell::Opt(self.sms));
        each(Cell::Opt(self.grades.first().copied()));
        each(Cell::Refs(&self.orgs));
        each(Cell::Refs(&self.agents));
    }
}

impl Record for Enrollment<'_> {
    fn sourced_id(&self) -> &str {
        self.sourced_id
    }
    fn cells(&self, each: &mut dyn FnMut(Cell<'_>)) {
        each(Cell::Text(self.status));
        each(Cell::Opt(self.role));
        each(Cell::Text(self.user.sourced_id));
        each(Cell::Text(self.class.sourced_id));
    }
}

/// A page: the records under the collection's key (`{"users": […]}`); the rest of the
/// envelope is skipped.
#[derive(Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
struct Page<T> {
    #[serde(
        alias = "orgs",
        alias = "academicSessions",
        alias = "courses",
        alias = "classes",
        alias = "users",
        alias = "enrollments"
    )]
    records: Vec<T>,
}

fn parse_each<'a, T>(body: &'a [u8], each: &mut dyn FnMut(&dyn Record)) -> serde_json::Result<u64>
where
    T: Record + Deserialize<'a>,
{
    // UTF-8 checked once for the page, as the sync's reader does, not once a string.
    let page: Page<T> = match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str(text)?,
        Err(_) => serde_json::from_slice(body)?,
    };
    for rec in &page.records {
        each(rec);
    }
    Ok(page.records.len() as u64)
}

/// Parses one page of `kind` and lends each record to `each`; the number of records.
pub fn parse_page(
    kind: Collection,
    body: &[u8],
    each: &mut dyn FnMut(&dyn Record),
) -> serde_json::Result<u64> {
    match kind {
        Collection::Orgs => parse_each::<Org>(body, each),
        Collection::AcademicSessions => parse_each::<Session>(body, each),
        Collection::Courses => parse_each::<Course>(body, each),
        Collection::Classes => parse_each::<Class>(body, each),
        Collection::Users => parse_each::<User>(body, each),
        Collection::Enrollments => parse_each::<Enrollment>(body, each),
        Collection::Demographics => {
            Err(serde::de::Error::custom("the floor reads no demographics"))
        }
    }
}

/// Parses one chunk of `kind` and lends each record to `each`; the number of records.
fn parse_chunk(
    kind: Collection,
    chunk: &Chunk,
    each: &mut dyn FnMut(&dyn Record),
) -> Result<u64, Failure> {
    match chunk {
        Chunk::Page(body) => {
            parse_page(kind, (**body).as_ref(), each).map_err(|e| failure(kind.endpoint())(&e))
        }
        Chunk::Rows(rows) => floor_csv::parse_rows(kind, rows, each),
    }
}

pub(super) fn failure(what: &str) -> impl Fn(&dyn std::fmt::Display) -> Failure + '_ {
    move |e| Failure::config(format!("floor: {what}: {e}"))
}

/// A page's body as it came.
pub type Body = Box<dyn AsRef<[u8]> + Send>;

/// What the floor parses at a time: a page as it came, or a batch of a CSV file's rows.
pub enum Chunk {
    Page(Body),
    Rows(floor_csv::Rows),
}

/// Reads every chunk of every collection from `input`, in [`Collection::ROSTER`] order,
/// handing each to `sink` on this thread.
fn read_all(
    input: &Input,
    runtime: &tokio::runtime::Runtime,
    mut sink: impl FnMut(Collection, Chunk) -> Result<(), Failure>,
) -> Result<(), Failure> {
    match input {
        Input::Rest(ep) => {
            runtime.block_on(fetch_all(ep, |kind, body| sink(kind, Chunk::Page(body))))
        }
        Input::Csv(path) => floor_csv::read_package(path, sink),
    }
}

#[derive(Deserialize)]
struct Token {
    access_token: String,
}

/// The OAuth 2 client-credentials token, as the engine's client asks for it.
async fn token(http: &reqwest::Client, ep: &Endpoint) -> Result<String, Failure> {
    let resp = http
        .post(&ep.token_url)
        .header(reqwest::header::ACCEPT, "application/json")
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .basic_auth(&ep.client_id, Some(&ep.client_secret))
        .body("grant_type=client_credentials")
        .send()
        .await
        .map_err(|e| failure(&ep.token_url)(&e))?;
    if !resp.status().is_success() {
        return Err(Failure::config(format!(
            "floor: {}: HTTP {}",
            ep.token_url,
            resp.status()
        )));
    }
    let t: Token = resp.json().await.map_err(|e| failure(&ep.token_url)(&e))?;
    Ok(t.access_token)
}

/// One GET with the bearer token: `X-Total-Count`, and the body.
async fn get(
    http: reqwest::Client,
    token: String,
    url: String,
) -> Result<(Option<u64>, Body), Failure> {
    let resp = http
        .get(&url)
        .header(reqwest::header::ACCEPT, "application/json")
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| failure(&url)(&e))?;
    if !resp.status().is_success() {
        return Err(Failure::config(format!(
            "floor: {url}: HTTP {}",
            resp.status()
        )));
    }
    let total = resp
        .headers()
        .get("x-total-count")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let body = resp.bytes().await.map_err(|e| failure(&url)(&e))?;
    Ok((total, Box::new(body)))
}

/// Fetches every page of every collection, the first page alone and the rest
/// [`IN_FLIGHT`] at a time by offset, handing each body to `sink` in order.
async fn fetch_all(
    ep: &Endpoint,
    mut sink: impl FnMut(Collection, Body) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let http = reqwest::Client::new();
    let token = token(&http, ep).await?;
    let limit = u64::from(ep.page_size.max(1));
    for kind in Collection::ROSTER {
        let url = |offset: u64| {
            format!(
                "{}/{}?limit={limit}&offset={offset}",
                ep.base_url,
                kind.endpoint()
            )
        };
        let (total, body) = get(http.clone(), token.clone(), url(0)).await?;
        sink(kind, body)?;
        let total = total.ok_or_else(|| {
            Failure::config(format!(
                "floor: {} sent no X-Total-Count, which the floor pages by",
                url(0)
            ))
        })?;
        let mut offsets = (limit..total).step_by(limit as usize);
        let mut in_flight = VecDeque::with_capacity(IN_FLIGHT);
        loop {
            while in_flight.len() < IN_FLIGHT {
                let Some(offset) = offsets.next() else { break };
                in_flight.push_back(tokio::spawn(get(http.clone(), token.clone(), url(offset))));
            }
            let Some(next) = in_flight.pop_front() else {
                break;
            };
            let (_, body) = next
                .await
                .map_err(|e| Failure::config(format!("floor: a request task failed: {e}")))??;
            sink(kind, body)?;
        }
    }
    Ok(())
}

/// Creates the floor's tables: primary keys, nothing else. Done before the timed pass, as
/// the store's migrations are.
pub fn create_tables(db: &Database) -> Result<(), Failure> {
    let sql: Vec<String> = TABLES.iter().map(Table::create_sql).collect();
    match db {
        Database::Sqlite(path) => {
            let conn = open_sqlite(path)?;
            conn.execute_batch(&sql.join(";\n"))
                .map_err(|e| failure("creating the tables")(&e))
        }
        Database::Postgres(url) => connect_postgres(url)?
            .batch_execute(&sql.join(";\n"))
            .map_err(|e| failure("creating the tables")(&e)),
    }
}

/// A connection set up as the store sets up its writer: WAL, `synchronous = NORMAL`, and
/// the page cache the store gives a large apply.
fn open_sqlite(path: &std::path::Path) -> Result<rusqlite::Connection, Failure> {
    let err = failure("SQLite");
    let conn = rusqlite::Connection::open(path).map_err(|e| err(&e))?;
    let _: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(|e| err(&e))?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(|e| err(&e))?;
    conn.pragma_update(None, "cache_size", -256 * 1024)
        .map_err(|e| err(&e))?;
    Ok(conn)
}

fn connect_postgres(url: &str) -> Result<postgres::Client, Failure> {
    postgres::Client::connect(url, postgres::NoTls).map_err(|e| failure("PostgreSQL")(&e))
}

/// The first-import floor: fetch and parse every page, insert every record with its hash.
/// The writer thread parses and inserts while the next pages are fetched.
pub fn first_import(
    input: &Input,
    db: &Database,
    runtime: &tokio::runtime::Runtime,
) -> Result<Pass, Failure> {
    let started = Instant::now();
    let (pages, received) = mpsc::sync_channel::<(Collection, Chunk)>(2 * IN_FLIGHT);
    let target = db.clone();
    let writer = std::thread::spawn(move || match target {
        Database::Sqlite(path) => write_sqlite(&path, received),
        Database::Postgres(url) => write_postgres(&url, received),
    });
    let fetched = read_all(input, runtime, |kind, chunk| {
        pages
            .send((kind, chunk))
            .map_err(|_| Failure::config("floor: the writer stopped"))
    });
    let last_page = Instant::now();
    drop(pages);
    let written = writer
        .join()
        .map_err(|_| Failure::config("floor: the writer panicked"))?;
    let ended = Instant::now();
    // The writer's own error says why a send failed.
    let records = written?;
    fetched?;
    Ok(Pass {
        wall_s: ended.duration_since(started).as_secs_f64(),
        pull_s: last_page.duration_since(started).as_secs_f64(),
        apply_s: ended.duration_since(last_page).as_secs_f64(),
        records,
        ..Pass::default()
    })
}

/// Appends the sourcedIds of `refs`, joined by commas.
fn join_refs(out: &mut String, refs: &[Ref<'_>]) {
    for (i, r) in refs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r.sourced_id);
    }
}

fn write_sqlite(
    path: &std::path::Path,
    pages: mpsc::Receiver<(Collection, Chunk)>,
) -> Result<[u64; 6], Failure> {
    let err = failure("SQLite insert");
    let mut conn = open_sqlite(path)?;
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| err(&e))?;
    let mut records = [0u64; 6];
    {
        let mut statements = Vec::with_capacity(TABLES.len());
        for table in &TABLES {
            statements.push(tx.prepare(&table.insert_sql()).map_err(|e| err(&e))?);
        }
        let mut joined = String::new();
        for (kind, chunk) in pages {
            let Some(stmt) = statements.get_mut(kind as usize) else {
                continue;
            };
            let mut failed: Option<rusqlite::Error> = None;
            let n = parse_chunk(kind, &chunk, &mut |rec| {
                if failed.is_some() {
                    return;
                }
                let mut at = 2;
                let mut bound = stmt.raw_bind_parameter(1, rec.sourced_id());
                rec.cells(&mut |c| {
                    let r = match c {
                        Cell::Text(s) => stmt.raw_bind_parameter(at, s),
                        Cell::Opt(s) => stmt.raw_bind_parameter(at, s),
                        Cell::Refs(refs) => {
                            joined.clear();
                            join_refs(&mut joined, refs);
                            stmt.raw_bind_parameter(at, joined.as_str())
                        }
                    };
                    if bound.is_ok() {
                        bound = r;
                    }
                    at += 1;
                });
                let done = bound
                    .and_then(|()| stmt.raw_bind_parameter(at, content_hash(rec) as i64))
                    .and_then(|()| stmt.raw_execute().map(drop));
                if let Err(e) = done {
                    failed = Some(e);
                }
            })?;
            if let Some(e) = failed {
                return Err(err(&e));
            }
            if let Some(slot) = records.get_mut(kind as usize) {
                *slot += n;
            }
        }
    }
    tx.commit().map_err(|e| err(&e))?;
    Ok(records)
}

/// Appends one value in PostgreSQL's COPY text format.
fn copy_text(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

/// One record as a line of `COPY … FROM STDIN` text.
fn copy_row(out: &mut Vec<u8>, rec: &dyn Record, joined: &mut String) {
    copy_text(out, rec.sourced_id());
    rec.cells(&mut |c| {
        out.push(b'\t');
        match c {
            Cell::Text(s) | Cell::Opt(Some(s)) => copy_text(out, s),
            Cell::Opt(None) => out.extend_from_slice(b"\\N"),
            Cell::Refs(refs) => {
                joined.clear();
                join_refs(joined, refs);
                copy_text(out, joined);
            }
        }
    });
    let _ = writeln!(out, "\t{}", content_hash(rec) as i64);
}

fn write_postgres(
    url: &str,
    pages: mpsc::Receiver<(Collection, Chunk)>,
) -> Result<[u64; 6], Failure> {
    let err = failure("PostgreSQL COPY");
    let mut client = connect_postgres(url)?;
    let mut tx = client.transaction().map_err(|e| err(&e))?;
    let mut records = [0u64; 6];
    let mut line = Vec::with_capacity(1 << 20);
    let mut joined = String::new();
    let mut pages = pages.into_iter().peekable();
    while let Some(&(kind, _)) = pages.peek() {
        let mut copy = tx
            .copy_in(&Table::of(kind)?.copy_sql())
            .map_err(|e| err(&e))?;
        while let Some((_, chunk)) = pages.next_if(|(k, _)| *k == kind) {
            line.clear();
            let n = parse_chunk(kind, &chunk, &mut |rec| {
                copy_row(&mut line, rec, &mut joined);
            })?;
            copy.write_all(&line).map_err(|e| err(&e))?;
            if let Some(slot) = records.get_mut(kind as usize) {
                *slot += n;
            }
        }
        copy.finish().map_err(|e| err(&e))?;
    }
    tx.commit().map_err(|e| err(&e))?;
    Ok(records)
}

/// The stored hashes of each collection, by the hash of the sourcedId.
fn load_hashes(db: &Database) -> Result<Vec<HashMap<u64, u64>>, Failure> {
    let err = failure("loading the hashes");
    let mut maps = Vec::with_capacity(TABLES.len());
    match db {
        Database::Sqlite(path) => {
            let conn = open_sqlite(path)?;
            for table in &TABLES {
                let mut map = HashMap::new();
                let mut stmt = conn
                    .prepare(&format!("SELECT sourced_id, hash FROM {}", table.name))
                    .map_err(|e| err(&e))?;
                let mut rows = stmt.query([]).map_err(|e| err(&e))?;
                while let Some(row) = rows.next().map_err(|e| err(&e))? {
                    let id = row
                        .get_ref(0)
                        .and_then(|v| v.as_str().map_err(Into::into))
                        .map_err(|e| err(&e))?;
                    let hash: i64 = row.get(1).map_err(|e| err(&e))?;
                    map.insert(id_key(id), hash as u64);
                }
                maps.push(map);
            }
        }
        Database::Postgres(url) => {
            use postgres::fallible_iterator::FallibleIterator as _;
            let mut client = connect_postgres(url)?;
            for table in &TABLES {
                let mut map = HashMap::new();
                let sql = format!("SELECT sourced_id, hash FROM {}", table.name);
                let mut rows = client
                    .query_raw(sql.as_str(), std::iter::empty::<i64>())
                    .map_err(|e| err(&e))?;
                while let Some(row) = rows.next().map_err(|e| err(&e))? {
                    let id: &str = row.try_get(0).map_err(|e| err(&e))?;
                    let hash: i64 = row.try_get(1).map_err(|e| err(&e))?;
                    map.insert(id_key(id), hash as u64);
                }
                maps.push(map);
            }
        }
    }
    Ok(maps)
}

/// The no-change floor: every record fetched, parsed and hashed while the stored hashes
/// load beside it (as the sync reads its links while it pulls), and compared. A page
/// that comes before the hashes keeps its records' (id, hash) pairs until they do.
pub fn no_change(
    input: &Input,
    db: &Database,
    runtime: &tokio::runtime::Runtime,
) -> Result<Pass, Failure> {
    let started = Instant::now();
    let mut pass = Pass::default();
    let mut waiting: Vec<Vec<(u64, u64)>> = vec![Vec::new(); TABLES.len()];
    let fetched = std::thread::scope(|s| {
        let mut loading = Some(s.spawn(|| load_hashes(db)));
        let mut stored = None;
        read_all(input, runtime, |kind, chunk| {
            if stored.is_none() && loading.as_ref().is_some_and(|l| l.is_finished()) {
                stored = loading.take().map(joined).transpose()?;
            }
            let n = parse_chunk(kind, &chunk, &mut |rec| {
                let (key, hash) = (id_key(rec.sourced_id()), content_hash(rec));
                match &stored {
                    Some(maps) => tally(&mut pass, maps, kind as usize, key, hash),
                    None => {
                        if let Some(w) = waiting.get_mut(kind as usize) {
                            w.push((key, hash));
                        }
                    }
                }
            })?;
            if let Some(slot) = pass.records.get_mut(kind as usize) {
                *slot += n;
            }
            Ok(())
        })?;
        let fetched = Instant::now();
        let maps = match stored {
            Some(maps) => maps,
            None => loading.take().map(joined).transpose()?.unwrap_or_default(),
        };
        for (kind, pairs) in waiting.iter().enumerate() {
            for &(key, hash) in pairs {
                tally(&mut pass, &maps, kind, key, hash);
            }
        }
        Ok::<_, Failure>(fetched)
    })?;
    let ended = Instant::now();
    pass.wall_s = ended.duration_since(started).as_secs_f64();
    pass.pull_s = fetched.duration_since(started).as_secs_f64();
    pass.load_s = ended.duration_since(fetched).as_secs_f64();
    Ok(pass)
}

/// The hashes' loading thread's result.
fn joined(
    loading: std::thread::ScopedJoinHandle<'_, Result<Vec<HashMap<u64, u64>>, Failure>>,
) -> Result<Vec<HashMap<u64, u64>>, Failure> {
    loading
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Counts one record of collection `kind` as unchanged when its stored hash is `hash`.
fn tally(pass: &mut Pass, maps: &[HashMap<u64, u64>], kind: usize, key: u64, hash: u64) {
    let Some(map) = maps.get(kind) else { return };
    if map.get(&key) == Some(&hash) {
        pass.unchanged += 1;
    } else {
        pass.changed += 1;
    }
}

/// A record's cells as text (`NULL` for none, references joined by commas), for tests.
#[cfg(test)]
pub(super) fn cell_texts(rec: &dyn Record) -> Vec<String> {
    let mut cells = Vec::new();
    rec.cells(&mut |c| {
        cells.push(match c {
            Cell::Text(s) => s.to_owned(),
            Cell::Opt(s) => s.map_or_else(|| "NULL".to_owned(), str::to_owned),
            Cell::Refs(refs) => {
                let mut joined = String::new();
                join_refs(&mut joined, refs);
                joined
            }
        });
    });
    cells
}

#[cfg(test)]
mod tests {
    use super::*;

    const USERS: &str = r#"{"users":[
        {"sourcedId":"usr-1","status":"active","dateLastModified":"2026-08-01T00:00:00.000Z",
         "username":"ana.li","userIds":[{"type":"LDAP","identifier":"ana.li"}],"enabledUser":true,
         "givenName":"Ana","familyName":"Li","middleName":"","role":"student","identifier":"100001",
         "email":"ana.li@students.example","sms":"","phone":"",
         "agents":[{"href":"/users/usr-7","sourcedId":"usr-7","type":"user"}],
         "orgs":[{"href":"/orgs/org-1","sourcedId":"org-1","type":"org"},{"href":"/orgs/org-2","sourcedId":"org-2","type":"org"}],
         "grades":["05"]},
        {"sourcedId":"usr-2","status":"active","username":"bo","enabledUser":false,
         "givenName":"Bo","familyName":"O'Neil","role":"teacher","orgs":[],"agents":[],"grades":[]}
    ]}"#;

    /// Every record of a page: its sourcedId, its cells as text, its hash.
    fn records(kind: Collection, body: &str) -> Vec<(String, Vec<String>, u64)> {
        let mut out = Vec::new();
        let n = parse_page(kind, body.as_bytes(), &mut |rec| {
            let cells = cell_texts(rec);
            out.push((rec.sourced_id().to_owned(), cells, content_hash(rec)));
        })
        .unwrap();
        assert_eq!(n as usize, out.len());
        out
    }

    #[test]
    fn a_users_page_keeps_the_fields_the_sync_keeps() {
        let users = records(Collection::Users, USERS);
        assert_eq!(users.len(), 2);
        let (id, cells, _) = &users[0];
        assert_eq!(id, "usr-1");
        let columns = TABLES[Collection::Users as usize].columns;
        assert_eq!(cells.len(), columns.len());
        let cell = |name: &str| {
            let i = columns.iter().position(|c| *c == name).unwrap();
            cells[i].as_str()
        };
        assert_eq!(cell("role"), "student");
        assert_eq!(cell("enabled"), "1");
        assert_eq!(cell("grade"), "05");
        assert_eq!(cell("orgs"), "org-1,org-2");
        assert_eq!(cell("agents"), "usr-7");
        assert_eq!(cell("preferred_first_name"), "NULL");
        let (_, cells, _) = &users[1];
        assert_eq!(cells[2], "0", "enabledUser false");
        assert_eq!(cells[7], "O'Neil");
    }

    #[test]
    fn every_collection_parses_under_its_own_key() {
        let pages = [
            (
                Collection::Orgs,
                r#"{"orgs":[{"sourcedId":"org-1","status":"active","name":"Lincoln","type":"school","parent":null}]}"#,
            ),
            (
                Collection::AcademicSessions,
                r#"{"academicSessions":[{"sourcedId":"as-1","status":"active","title":"S1","type":"semester","startDate":"2026-08-17","endDate":"2026-12-18","parent":{"sourcedId":"as-0"}}]}"#,
            ),
            (
                Collection::Courses,
                r#"{"courses":[{"sourcedId":"crs-1","status":"active","title":"Art"}]}"#,
            ),
            (
                Collection::Classes,
                r#"{"classes":[{"sourcedId":"cls-1","status":"active","title":"Art - A","classType":"scheduled","location":"Room 1","course":{"sourcedId":"crs-1"},"school":{"sourcedId":"org-1"}}]}"#,
            ),
            (
                Collection::Enrollments,
                r#"{"enrollments":[{"sourcedId":"enr-1","status":"active","role":"student","user":{"sourcedId":"usr-1"},"class":{"sourcedId":"cls-1"}}]}"#,
            ),
        ];
        for (kind, body) in pages {
            let recs = records(kind, body);
            assert_eq!(recs.len(), 1, "{kind:?}");
            assert_eq!(
                recs[0].1.len(),
                TABLES[kind as usize].columns.len(),
                "{kind:?}"
            );
        }
        let (_, cells, _) = &records(Collection::Enrollments, pages[4].1)[0];
        assert_eq!(cells, &["active", "student", "usr-1", "cls-1"]);
        let (_, cells, _) = &records(Collection::AcademicSessions, pages[1].1)[0];
        assert_eq!(cells[5], "as-0");
    }

    #[test]
    fn the_hash_is_stable_and_sees_every_kept_field() {
        let base = records(Collection::Users, USERS)[0].2;
        assert_eq!(records(Collection::Users, USERS)[0].2, base, "stable");
        for (from, to) in [
            ("\"givenName\":\"Ana\"", "\"givenName\":\"Anna\""),
            ("\"grades\":[\"05\"]", "\"grades\":[\"06\"]"),
            ("\"enabledUser\":true", "\"enabledUser\":false"),
            ("\"sourcedId\":\"org-2\"", "\"sourcedId\":\"org-3\""),
            ("\"middleName\":\"\"", "\"middleName\":null"),
        ] {
            let changed = USERS.replacen(from, to, 1);
            assert_ne!(changed, USERS);
            assert_ne!(
                records(Collection::Users, &changed)[0].2,
                base,
                "{from} → {to}"
            );
        }
        // What the sync does not keep does not change the hash.
        let changed = USERS.replacen("\"identifier\":\"ana.li\"", "\"identifier\":\"x\"", 1);
        assert_eq!(
            records(Collection::Users, &changed)[0].2,
            base,
            "userIds are not kept"
        );
    }

    #[test]
    fn copy_rows_escape_and_mark_nulls() {
        // A JSON escape cannot be borrowed as `&str`: the page fails, loudly.
        let body = r#"{"courses":[{"sourcedId":"crs-1","status":"active","title":"A\\B"}]}"#;
        let mut line = Vec::new();
        let mut joined = String::new();
        parse_page(Collection::Courses, body.as_bytes(), &mut |rec| {
            copy_row(&mut line, rec, &mut joined);
        })
        .unwrap_err();
        let body = r#"{"orgs":[{"sourcedId":"org-1","status":"active","name":"Lincoln"}]}"#;
        let mut hash = 0;
        parse_page(Collection::Orgs, body.as_bytes(), &mut |rec| {
            copy_row(&mut line, rec, &mut joined);
            hash = content_hash(rec);
        })
        .unwrap();
        let mut text = Vec::new();
        copy_text(&mut text, "a\tb\\c\nd");
        assert_eq!(text, b"a\\tb\\\\c\\nd");
        assert_eq!(
            String::from_utf8(line).unwrap(),
            format!("org-1\tactive\tLincoln\t\\N\t{}\n", hash as i64)
        );
    }

    #[test]
    fn statements_name_every_column() {
        for (i, kind) in Collection::ROSTER.into_iter().enumerate() {
            assert_eq!(kind as usize, i, "{kind:?} is where its table is");
            let table = Table::of(kind).unwrap();
            let n = table.columns.len() + 2;
            assert!(table.insert_sql().contains(&format!("?{n})")), "{kind:?}");
            assert!(table.create_sql().starts_with(&format!(
                "CREATE TABLE {} (sourced_id TEXT PRIMARY KEY",
                table.name
            )));
        }
        assert!(Table::of(Collection::Demographics).is_err());
        parse_page(Collection::Demographics, b"{}", &mut |_| {}).unwrap_err();
    }
}
