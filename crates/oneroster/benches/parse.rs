//! How fast the typed readers are next to the cheapest read of the same bytes.
//!
//! Synthesises OneRoster 1.1 users (GUID ids, names, email, GUIDRef orgs and agents with
//! href and type, grades, userIds, metadata) as JSON pages of 1 000 and as one `users.csv`,
//! then times, best of 3, side by side:
//! - JSON: `json::parse_page::<User>` against `serde_json::from_slice::<Value>` (the floor
//!   the issue names) and against `IgnoredAny` (serde_json only checking the syntax);
//! - CSV: `CsvPackage::read::<User>` (a new record per row) and `read_each::<User>` (one
//!   record lent and refilled in place) against a bare `csv::Reader::read_byte_record` loop
//!   over the same file.
//!
//! `PARSE_BENCH_USERS` sets the number of users (default 200 000), `PARSE_BENCH_ONLY=json`
//! or `csv` runs one half (for a profiler). Run with
//! `cargo bench -p oneroster --bench parse`.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oneroster::User;
use oneroster::csv::CsvPackage;
use oneroster::json::parse_page;
use serde_json::json;

const PAGE_SIZE: usize = 1_000;
const ROUNDS: usize = 3;

/// A small deterministic generator: the same data on every run and machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn guid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | (b >> 48) & 0x3fff,
            b & 0xffff_ffff_ffff
        )
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const GIVEN: &[&str] = &[
    "Jane",
    "John",
    "María José",
    "Nguyễn",
    "Aiyana",
    "Oluwaseun",
    "Chloé",
    "Liam",
    "Zoë",
    "Muhammad",
    "Sofía",
    "Wei",
    "Ava",
    "Noah",
    "Isabella",
    "Mateo",
];
const FAMILY: &[&str] = &[
    "Doe",
    "Smith",
    "García López",
    "O'Neil",
    "Tran",
    "Okafor",
    "Müller",
    "Johnson",
    "Williams",
    "Brown",
    "Hernández",
    "Chen",
    "Jones",
    "Miller",
    "Davis",
    "Wilson",
];
const GRADES: &[&str] = &[
    "KG", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12",
];
const HOST: &str = "https://sis.example-district.k12.us/ims/oneroster/v1p1";

/// One user in both spellings: the REST object and the CSV row.
struct SynthUser {
    json: Option<serde_json::Value>,
    csv: Vec<String>,
}

const CSV_HEADER: &[&str] = &[
    "sourcedId",
    "status",
    "dateLastModified",
    "enabledUser",
    "orgSourcedIds",
    "role",
    "username",
    "userIds",
    "givenName",
    "familyName",
    "middleName",
    "identifier",
    "email",
    "sms",
    "phone",
    "agentSourcedIds",
    "grades",
    "password",
];

fn synth_user(rng: &mut Rng, n: usize, schools: &[String], with_json: bool) -> SynthUser {
    let id = rng.guid();
    let given = rng.pick(GIVEN);
    let family = rng.pick(FAMILY);
    let student = rng.below(10) != 0;
    let role = if student { "student" } else { "teacher" };
    let username = format!(
        "{}.{}{n}",
        given.to_lowercase().replace(' ', ""),
        family.to_lowercase().replace([' ', '\''], "")
    );
    let email = format!("{username}@example-district.k12.us");
    let number = format!("{}", 100_000 + n);
    let school = schools[rng.below(schools.len())].clone();
    let agents: Vec<String> = (0..if student { 1 + rng.below(2) } else { 0 })
        .map(|_| rng.guid())
        .collect();
    let grade = if student { rng.pick(GRADES) } else { "" };
    let modified = format!(
        "2026-0{}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        1 + rng.below(9),
        1 + rng.below(28),
        rng.below(24),
        rng.below(60),
        rng.below(60),
        rng.below(1000)
    );
    let ldap = rng.guid();
    let json = with_json.then(|| json!({
        "sourcedId": id,
        "status": "active",
        "dateLastModified": modified,
        "metadata": {"ext:studentNumber": number, "ext:homeroom": format!("R{}", rng.below(40))},
        "username": username,
        "userIds": [{"type": "LDAP", "identifier": ldap}, {"type": "SIS", "identifier": number}],
        "enabledUser": "true",
        "givenName": given,
        "familyName": family,
        "middleName": "",
        "role": role,
        "identifier": number,
        "email": email,
        "sms": "",
        "phone": "",
        "agents": agents
            .iter()
            .map(|a| json!({"href": format!("{HOST}/users/{a}"), "sourcedId": a, "type": "user"}))
            .collect::<Vec<_>>(),
        "orgs": [{"href": format!("{HOST}/orgs/{school}"), "sourcedId": school, "type": "org"}],
        "grades": if student { vec![grade] } else { Vec::new() },
    }));
    let csv = vec![
        id,
        "active".into(),
        modified,
        "true".into(),
        school,
        role.into(),
        username,
        format!("{{LDAP:{ldap}}},{{SIS:{number}}}"),
        given.into(),
        family.into(),
        String::new(),
        number,
        email,
        String::new(),
        String::new(),
        agents.join(","),
        grade.into(),
        String::new(),
    ];
    SynthUser { json, csv }
}

struct Data {
    pages: Vec<Vec<u8>>,
    dir: PathBuf,
    csv_path: PathBuf,
}

/// The users as JSON pages (unless `with_json` is false: profiling the CSV half) and as
/// a package folder holding `users.csv`.
fn synthesise(users: usize, with_json: bool) -> Data {
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let schools: Vec<String> = (0..20).map(|_| rng.guid()).collect();
    let dir = std::env::temp_dir().join(format!("oneroster-parse-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv_path = dir.join("users.csv");
    std::fs::write(
        dir.join("manifest.csv"),
        "propertyName,value\nmanifest.version,1.0\noneroster.version,1.1\nfile.users,bulk\n",
    )
    .unwrap();
    let mut csv = csv::Writer::from_path(&csv_path).unwrap();
    csv.write_record(CSV_HEADER).unwrap();
    let mut pages = Vec::new();
    let mut page = Vec::with_capacity(PAGE_SIZE);
    for n in 0..users {
        let u = synth_user(&mut rng, n, &schools, with_json);
        csv.write_record(&u.csv).unwrap();
        page.extend(u.json);
        if !page.is_empty() && (page.len() == PAGE_SIZE || n + 1 == users) {
            let body = serde_json::to_vec(&json!({ "users": std::mem::take(&mut page) })).unwrap();
            pages.push(body);
        }
    }
    csv.flush().unwrap();
    Data {
        pages,
        dir,
        csv_path,
    }
}

/// One measured reader: the best of `ROUNDS` runs over all the data.
struct Measure {
    name: &'static str,
    bytes: u64,
    records: u64,
    best: Duration,
}

impl Measure {
    fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.best.as_secs_f64()
    }
    fn records_per_s(&self) -> f64 {
        self.records as f64 / self.best.as_secs_f64()
    }
}

/// Times `run` (which returns the records it saw) `ROUNDS` times and keeps the best.
fn measure(name: &'static str, bytes: u64, mut run: impl FnMut() -> u64) -> Measure {
    let mut best = Duration::MAX;
    let mut records = 0;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        records = black_box(run());
        best = best.min(start.elapsed());
    }
    Measure {
        name,
        bytes,
        records,
        best,
    }
}

fn typed_json(pages: &[Vec<u8>]) -> u64 {
    let mut n = 0;
    for p in pages {
        let page = parse_page::<User>(p).unwrap();
        n += page.records.len() as u64;
        black_box(page);
    }
    n
}

fn value_json(pages: &[Vec<u8>]) -> u64 {
    let mut n = 0;
    for p in pages {
        let v: serde_json::Value = serde_json::from_slice(p).unwrap();
        n += v["users"].as_array().map_or(0, |a| a.len() as u64);
        black_box(v);
    }
    n
}

fn syntax_only_json(pages: &[Vec<u8>]) -> u64 {
    for p in pages {
        let _: serde::de::IgnoredAny = serde_json::from_slice(p).unwrap();
    }
    pages.len() as u64 * PAGE_SIZE as u64
}

fn typed_csv(dir: &Path) -> u64 {
    let mut pkg = CsvPackage::open(dir).unwrap();
    let mut n = 0u64;
    let report = pkg
        .read::<User>(|u| {
            n += 1;
            black_box(u);
        })
        .unwrap();
    assert!(
        report.complete && report.records_with_warnings == 0,
        "{report:?}"
    );
    n
}

/// The lending read: one `User` refilled in place, as the sync's pull uses it.
fn typed_csv_each(dir: &Path) -> u64 {
    let mut pkg = CsvPackage::open(dir).unwrap();
    let mut n = 0u64;
    let report = pkg
        .read_each::<User>(|u| {
            n += 1;
            black_box(u);
        })
        .unwrap();
    assert!(
        report.complete && report.records_with_warnings == 0,
        "{report:?}"
    );
    n
}

fn byte_records_csv(path: &Path) -> u64 {
    let mut rdr = csv::Reader::from_path(path).unwrap();
    let mut rec = csv::ByteRecord::new();
    let mut n = 0;
    while rdr.read_byte_record(&mut rec).unwrap() {
        n += 1;
        black_box(&rec);
    }
    n
}

fn print_row(m: &Measure) {
    println!(
        "| {:<36} | {:>7.1} | {:>8} | {:>7.3} | {:>7.1} | {:>10.0} |",
        m.name,
        m.bytes as f64 / 1e6,
        m.records,
        m.best.as_secs_f64(),
        m.mb_per_s(),
        m.records_per_s()
    );
}

fn print_ratio(name: &str, typed: &Measure, floor: &Measure) {
    println!(
        "| {:<36} | {:>7} | {:>8} | {:>7} | {:>6.0}% | {:>10} |",
        name,
        "",
        "",
        "",
        100.0 * typed.mb_per_s() / floor.mb_per_s(),
        ""
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let users: usize = std::env::var("PARSE_BENCH_USERS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(200_000);
    // `PARSE_BENCH_ONLY=json` or `csv` runs one half, e.g. under a profiler.
    let only = std::env::var("PARSE_BENCH_ONLY").ok();
    let only = only.as_deref();
    let started = Instant::now();
    let data = synthesise(users, only != Some("csv"));
    let json_bytes: u64 = data.pages.iter().map(|p| p.len() as u64).sum();
    let csv_bytes = std::fs::metadata(&data.csv_path).unwrap().len();
    println!(
        "{users} users: {} JSON pages, {:.1} MB JSON, {:.1} MB users.csv (synthesised in {:.1} s); best of {ROUNDS}",
        data.pages.len(),
        json_bytes as f64 / 1e6,
        csv_bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    println!();
    println!(
        "| {:<36} | {:>7} | {:>8} | {:>7} | {:>7} | {:>10} |",
        "reader", "MB", "records", "best s", "MB/s", "records/s"
    );
    println!(
        "|{:-<38}|{:->9}|{:->10}|{:->9}|{:->9}|{:->12}|",
        "", "", "", "", "", ""
    );

    if only != Some("csv") {
        let typed = measure("JSON parse_page::<User>", json_bytes, || {
            typed_json(&data.pages)
        });
        let value = measure("JSON from_slice::<Value> (floor)", json_bytes, || {
            value_json(&data.pages)
        });
        let syntax = measure("JSON from_slice::<IgnoredAny>", json_bytes, || {
            syntax_only_json(&data.pages)
        });
        assert_eq!(typed.records, value.records);
        print_row(&typed);
        print_row(&value);
        print_row(&syntax);
        print_ratio("JSON typed / Value (floor)", &typed, &value);
        print_ratio("JSON typed / IgnoredAny", &typed, &syntax);
    }
    if only != Some("json") {
        let typed = measure("CSV CsvPackage::read::<User>", csv_bytes, || {
            typed_csv(&data.dir)
        });
        let each = measure("CSV CsvPackage::read_each::<User>", csv_bytes, || {
            typed_csv_each(&data.dir)
        });
        let floor = measure("CSV read_byte_record (floor)", csv_bytes, || {
            byte_records_csv(&data.csv_path)
        });
        assert_eq!(typed.records, floor.records);
        assert_eq!(each.records, floor.records);
        print_row(&typed);
        print_row(&each);
        print_row(&floor);
        print_ratio(
            "CSV typed (owned) / read_byte_record (floor)",
            &typed,
            &floor,
        );
        print_ratio("CSV typed (lent) / read_byte_record (floor)", &each, &floor);
    }

    let _ = std::fs::remove_dir_all(&data.dir);
}
