//! Broken CSV packages, as the reliability review found them: a quote left open, rows
//! of the wrong width, a header or a `sourcedId` twice, control characters, huge cells,
//! lines that never end. Every one either skips the rows it spoils and marks the
//! collection incomplete (so nobody is deactivated for being absent), or stops the read
//! with an error naming the limit and the setting that raises it. Nothing grows without
//! bound: the size tests use small limits, never gigabytes.

use std::fmt::Write as _;

use oneroster::csv::{CsvLimits, CsvPackage, PackageError};
use oneroster::*;
use proptest::prelude::*;

use crate::csv_package::{MANIFEST_11, folder, read_all, zip_of};

const HEADER: &str = "sourcedId,role,orgSourcedIds,username,givenName,familyName\n";

/// Reads `users.csv` (after [`HEADER`] unless `rows` brings its own header) from a folder.
fn users(rows: &str) -> (Vec<User>, report::CollectionReport, Vec<String>) {
    let body = if rows.starts_with("sourcedId") {
        rows.to_owned()
    } else {
        format!("{HEADER}{rows}")
    };
    let dir = folder(&[("manifest.csv", MANIFEST_11), ("users.csv", &body)]);
    let mut pkg = CsvPackage::open(dir.path()).unwrap();
    let (u, report) = read_all::<User>(&mut pkg);
    (u, report, pkg.warnings().to_vec())
}

fn ids(users: &[User]) -> Vec<&str> {
    users.iter().map(|u| u.base.sourced_id.as_str()).collect()
}

#[test]
fn a_quote_left_open_skips_the_rows_it_swallowed_and_spoils_completeness() {
    // The quote opened before `Bob` closes at the quoted list on line 5: three lines
    // read as one row, whose given name would be 50 characters of raw CSV.
    let (u, report, _) = users(
        "u1,student,s1,a,Ann,Lee\n\
         u2,student,s1,b,\"Bob,Ray\n\
         u3,student,s1,c,Cy,Doe\n\
         u4,student,\"s1,s2\",d,Di,Fox\n\
         u5,student,s1,e,Ed,Gray\n",
    );
    assert_eq!(ids(&u), ["u1", "u5"]);
    assert!(!report.complete);
    assert_eq!(report.skipped, 1);
    assert_eq!(
        report.problems,
        [
            "users.csv lines 3–5: column `givenName` runs over several lines: a quote was probably left open and swallowed the rows after it; those lines are skipped"
        ]
    );
    assert!(u.iter().all(|u| u.given_name.len() < 10), "{u:?}");
    assert_eq!(
        report.warnings()[0],
        "users: incomplete: users.csv lines 3–5: column `givenName` runs over several lines: a quote was probably left open and swallowed the rows after it; those lines are skipped",
        "what inspect and sync print"
    );
}

#[test]
fn a_quote_left_open_to_the_end_of_the_file_skips_the_rest() {
    let (u, report, _) = users(
        "u1,student,s1,a,Ann,Lee\n\
         u2,student,s1,b,Bob,Ray\n\
         u3,student,s1,c,Cy,Doe\n\
         u4,student,s1,d,\"Di,Fox\n\
         u5,student,s1,e,Ed,Gray\n\
         u6,student,s1,f,Flo,Hu\n",
    );
    assert_eq!(ids(&u), ["u1", "u2", "u3"]);
    assert!(!report.complete);
    assert_eq!(
        report.problems,
        [
            "users.csv lines 5–7: column `givenName` runs over several lines: a quote was probably left open and swallowed the rows after it; those lines are skipped"
        ]
    );
}

#[test]
fn a_line_break_inside_a_value_skips_the_row_and_one_at_its_end_is_trimmed() {
    let (u, report, _) = users(
        "u1,student,s1,a,\"Ann\nMarie\",Lee\n\
         u2,student,s1,b,\"Bob\r\n\",Ray\n\
         u3,student,s1,c,Cy,Doe\n",
    );
    assert_eq!(ids(&u), ["u2", "u3"]);
    assert_eq!(u[0].given_name, "Bob");
    assert_eq!(
        report.problems,
        [
            "users.csv lines 2–3: column `givenName` holds a line break, which no OneRoster column may; row skipped"
        ]
    );
    assert!(!report.complete);
}

#[test]
fn a_line_break_in_a_column_that_is_not_kept_still_skips_the_row() {
    // A quote left open in `password` swallows rows as surely as one in a name.
    let (u, report, _) = users(
        "sourcedId,role,orgSourcedIds,username,givenName,familyName,password\n\
         u1,student,s1,a,Ann,Lee,\"pw\n\
         u2,student,s1,b,Bob,Ray,pw\"\n\
         u3,student,s1,c,Cy,Doe,pw\n",
    );
    assert_eq!(ids(&u), ["u3"]);
    assert!(report.problems[0].starts_with("users.csv lines 2–3: column `password` runs over"));
}

#[test]
fn rows_of_the_wrong_width_are_skipped() {
    let (u, report, _) = users(
        "u1,student,s1,a,Ann,Lee\n\
         u2,student,s1\n\
         u3,student,s1,c,Smith, Jr,Doe\n\
         u4,student,s1,d,Di,Fox\n",
    );
    assert_eq!(ids(&u), ["u1", "u4"]);
    assert_eq!(report.skipped, 2);
    assert_eq!(
        report.problems,
        [
            "users.csv line 3: 3 cells where the header has 6 (the row is cut short); row skipped",
            "users.csv line 4: 7 cells where the header has 6 (probably a value with a comma that is not quoted); row skipped",
        ]
    );
}

#[test]
fn empty_names_at_the_end_of_the_header_may_be_left_out_of_rows() {
    let (u, report, _) = users(
        "sourcedId,role,orgSourcedIds,username,givenName,familyName,,\n\
         u1,student,s1,a,Ann,Lee\n\
         u2,student,s1,b,Bob,Ray,,\n",
    );
    assert_eq!(ids(&u), ["u1", "u2"]);
    assert!(report.complete, "{:?}", report.problems);
}

#[test]
fn a_header_twice_spoils_completeness_and_skips_rows_where_the_two_differ() {
    let (u, report, _) = users(
        "sourcedId,role,orgSourcedIds,username,givenName,familyName,givenName\n\
         u1,student,s1,a,Ann,Lee,Ann\n\
         u2,student,s1,b,Bob,Ray,Robert\n\
         u3,student,s1,c, Cy,Doe,Cy\n",
    );
    assert_eq!(ids(&u), ["u1", "u3"]);
    assert_eq!(u[1].given_name, "Cy");
    assert!(!report.complete);
    assert_eq!(
        report.problems,
        [
            "users.csv line 1: column `givenName` appears twice (columns 5 and 7); rows whose two `givenName` cells differ are skipped",
            "users.csv line 3: the two `givenName` columns hold different values; row skipped",
        ]
    );
}

#[test]
fn a_sourced_id_twice_keeps_the_first_row_and_spoils_completeness() {
    let (u, report, _) = users(
        "u1,student,s1,a,Ann,Lee\n\
         u2,student,s1,b,Bob,Ray\n\
         u1,teacher,s1,x,Impostor,Row\n",
    );
    assert_eq!(ids(&u), ["u1", "u2"]);
    assert_eq!(u[0].given_name, "Ann");
    assert_eq!(
        report.problems,
        [
            "users.csv line 4: sourcedId `u1` is on an earlier row too; row skipped (the earlier row is kept)"
        ]
    );
    assert!(!report.complete);
}

/// Ids out of order are looked up in a set from the first one out of order; ids in
/// order are only listed, and the first id again breaks the order.
#[test]
fn a_sourced_id_again_is_found_whether_the_ids_come_in_order_or_not() {
    let (u, report, _) = users(
        "u3,student,s1,c,Cy,Doe\n\
         u1,student,s1,a,Ann,Lee\n\
         u2,student,s1,b,Bob,Ray\n\
         u3,teacher,s1,x,Impostor,Row\n",
    );
    assert_eq!(ids(&u), ["u3", "u1", "u2"]);
    assert_eq!(
        report.problems,
        [
            "users.csv line 5: sourcedId `u3` is on an earlier row too; row skipped (the earlier row is kept)"
        ]
    );
    let (u, report, _) = users(
        "usr-9,student,s1,a,Ann,Lee\n\
         usr-10,student,s1,b,Bob,Ray\n\
         usr-11,student,s1,c,Cy,Doe\n\
         usr-9,teacher,s1,x,Impostor,Row\n\
         usr-12,student,s1,d,Di,Fox\n\
         usr-10,teacher,s1,y,Impostor,Two\n",
    );
    assert_eq!(ids(&u), ["usr-9", "usr-10", "usr-11", "usr-12"]);
    assert_eq!(
        report.problems,
        [
            "users.csv line 5: sourcedId `usr-9` is on an earlier row too; row skipped (the earlier row is kept)",
            "users.csv line 7: sourcedId `usr-10` is on an earlier row too; row skipped (the earlier row is kept)",
        ]
    );
}

#[test]
fn control_characters_in_a_kept_cell_skip_the_row() {
    for (cell, code, at) in [
        ("Bo\0b", "0000", 3),
        ("\u{1b}[31mBob", "001B", 1),
        ("Bob\u{7f}", "007F", 4),
        ("Bo\rb", "000D", 3),
    ] {
        let (u, report, _) = users(&format!(
            "u1,student,s1,a,Ann,Lee\nu2,student,s1,b,{cell},Ray\n"
        ));
        assert_eq!(ids(&u), ["u1"], "{cell:?}");
        assert_eq!(
            report.problems,
            [format!(
                "users.csv line 3, column `givenName`: a control character (U+{code}) at character {at}; row skipped"
            )],
            "{cell:?}"
        );
    }
    // A tab is text.
    let (u, report, _) = users("u1,student,s1,a,Ann\tMarie,Lee\n");
    assert_eq!(u[0].given_name, "Ann\tMarie");
    assert!(report.complete);
}

#[test]
fn a_cell_longer_than_the_limit_skips_the_row() {
    let long = "x".repeat(2000);
    let at_limit = "é".repeat(1024); // 2 048 bytes, 1 024 characters: allowed
    let (u, report, _) = users(&format!(
        "u1,student,s1,a,{at_limit},Lee\nu2,student,s1,b,{long},Ray\n"
    ));
    assert_eq!(ids(&u), ["u1"]);
    assert_eq!(u[0].given_name.chars().count(), 1024);
    assert_eq!(
        report.problems,
        [
            "users.csv line 3, column `givenName`: a value of 2000 characters, more than the 1024 allowed (`max_cell_chars` under [source.limits]); row skipped"
        ]
    );
}

#[test]
fn a_long_list_is_fine_but_not_a_long_item_in_it() {
    // A district administrator in a hundred schools.
    let schools: Vec<String> = (0..100)
        .map(|i| format!("{i:08}-aaaa-bbbb-cccc-dddddddddddd"))
        .collect();
    let (u, report, _) = users(&format!(
        "u1,administrator,\"{}\",a,Ann,Lee\nu2,student,\"s1,{}\",b,Bob,Ray\n",
        schools.join(","),
        "y".repeat(1025)
    ));
    assert_eq!(ids(&u), ["u1"]);
    assert_eq!(u[0].orgs.len(), 100);
    assert_eq!(
        report.problems,
        [
            "users.csv line 3, column `orgSourcedIds`: an item of 1025 characters, more than the 1024 allowed (`max_cell_chars` under [source.limits]); row skipped"
        ]
    );
}

#[test]
fn the_cell_limit_is_a_setting() {
    let dir = folder(&[
        ("manifest.csv", MANIFEST_11),
        (
            "users.csv",
            &format!("{HEADER}u1,student,s1,a,{},Lee\n", "x".repeat(2000)),
        ),
    ]);
    let limits = CsvLimits {
        max_cell_chars: 4096,
        ..CsvLimits::default()
    };
    let mut pkg = CsvPackage::open_with(dir.path(), limits).unwrap();
    let (u, report) = read_all::<User>(&mut pkg);
    assert_eq!(u[0].given_name.len(), 2000);
    assert!(report.complete);
}

#[test]
fn a_bad_cell_in_an_unknown_column_is_left_out_and_the_row_kept() {
    let (u, report, _) = users(&format!(
        "sourcedId,role,orgSourcedIds,username,givenName,familyName,note\n\
         u1,student,s1,a,Ann,Lee,a\0b\n\
         u2,student,s1,b,Bob,Ray,{}\n\
         u3,student,s1,c,Cy,Doe,fine\n",
        "n".repeat(5000)
    ));
    assert_eq!(ids(&u), ["u1", "u2", "u3"]);
    assert!(report.complete, "the sync does not read extensions");
    assert!(u[0].base.extensions.is_empty() && u[1].base.extensions.is_empty());
    assert_eq!(u[2].base.extensions.len(), 1);
    assert_eq!(
        report.sample_warnings,
        [
            "users.csv line 2: column `note`: a control character (U+0000) at character 2; value left out",
            "users.csv line 3: column `note`: 5000 characters, more than the 1024 allowed; value left out",
        ]
    );
}

#[test]
fn a_broken_roles_csv_spoils_the_users_collection() {
    let manifest = "propertyName,value\noneroster.version,1.2\nfile.users,bulk\nfile.roles,bulk\n";
    let users = "sourcedId,username,givenName,familyName\nu1,a,Ann,Lee\nu2,b,Bob,Ray\n";
    let roles = "sourcedId,userSourcedId,roleType,role,orgSourcedId\n\
                 r1,u1,primary,student,s1\n\
                 r2,u2,primary\n";
    let dir = folder(&[
        ("manifest.csv", manifest),
        ("users.csv", users),
        ("roles.csv", roles),
    ]);
    let mut pkg = CsvPackage::open(dir.path()).unwrap();
    let (u, report) = read_all::<User>(&mut pkg);
    assert_eq!(u.len(), 2);
    assert!(!report.complete, "u2 lost its role");
    assert_eq!(
        report.problems,
        ["roles.csv line 3: 3 cells where the header has 5 (the row is cut short); row skipped"]
    );
}

#[test]
fn problems_are_kept_word_for_word_up_to_a_bound_and_counted_after() {
    let mut rows = String::new();
    for i in 0..100 {
        writeln!(rows, "u{i},student").unwrap();
    }
    let (u, report, _) = users(&rows);
    assert!(u.is_empty());
    assert_eq!(report.skipped, 100);
    assert_eq!(report.problems.len(), report::SAMPLE_PROBLEMS);
    assert_eq!(report.problems_not_shown, 80);
    let lines = report.warnings();
    assert_eq!(lines.len(), 21);
    assert_eq!(lines[20], "users: incomplete: 80 more problem(s) not shown");
}

// ----- bounded reads

#[test]
fn a_row_past_the_row_limit_stops_the_read_naming_the_setting() {
    // 2 MiB on one row, the limit 1 MiB (the default).
    let dir = folder(&[
        ("manifest.csv", MANIFEST_11),
        (
            "users.csv",
            &format!(
                "{HEADER}u1,student,s1,a,Ann,Lee\nu2,student,s1,b,{},Ray\n",
                "x".repeat(2 << 20)
            ),
        ),
    ]);
    let mut pkg = CsvPackage::open(dir.path()).unwrap();
    let err = pkg.read_each::<User>(|_| {}).unwrap_err();
    assert!(
        matches!(err, PackageError::RowTooLong { line: 3, .. }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "users.csv line 3: a row longer than 1 MiB: the file is damaged, or a quote left open swallowed the lines after it; refusing to read further (if the row is genuine, raise `max_record_kb` under [source.limits])"
    );
}

#[test]
fn a_zip_of_nuls_with_no_line_end_stops_at_the_row_limit() {
    // 2 MiB of NULs deflate to a few KiB: what a zip bomb of one endless line looks like.
    let mut users = HEADER.as_bytes().to_vec();
    users.extend(std::iter::repeat_n(0u8, 2 << 20));
    let dir = zip_of(&[
        ("manifest.csv", MANIFEST_11.as_bytes()),
        ("users.csv", &users),
    ]);
    let zip = dir.path().join("p.zip");
    assert!(std::fs::metadata(&zip).unwrap().len() < 64 << 10);
    let limits = CsvLimits {
        max_record_bytes: 256 << 10,
        ..CsvLimits::default()
    };
    let mut pkg = CsvPackage::open_with(&zip, limits).unwrap();
    let err = pkg.read_each::<User>(|_| {}).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("users.csv line 2: a row longer than 256 KiB"),
        "{err}"
    );
    // `inspect` reads through the same path: the same error, not gigabytes.
    let mut source = source::Source::open_csv_with(&zip, limits).unwrap();
    let err = futures_executor(inspect::inspect(&mut source)).unwrap_err();
    assert!(
        err.to_string().contains("a row longer than 256 KiB"),
        "{err}"
    );
}

#[test]
fn a_quote_left_open_at_the_top_of_a_big_file_stops_at_the_row_limit() {
    let mut rows = String::from("u0,student,s1,a,\"Ann,Lee\n");
    for i in 1..20_000 {
        writeln!(rows, "u{i},student,s1,user{i},Given,Family").unwrap();
    }
    let dir = folder(&[
        ("manifest.csv", MANIFEST_11),
        ("users.csv", &format!("{HEADER}{rows}")),
    ]);
    let limits = CsvLimits {
        max_record_bytes: 64 << 10,
        ..CsvLimits::default()
    };
    let mut pkg = CsvPackage::open_with(dir.path(), limits).unwrap();
    let err = pkg.read_each::<User>(|_| {}).unwrap_err();
    assert!(
        err.to_string().starts_with(
            "users.csv line 2: a row longer than 64 KiB: the file is damaged, or a quote left open swallowed the lines after it"
        ),
        "{err}"
    );
}

#[test]
fn a_file_past_the_file_limit_is_refused_by_its_declared_size_and_its_bytes() {
    let mut users = HEADER.as_bytes().to_vec();
    for i in 0..40_000 {
        users.extend_from_slice(format!("u{i},student,s1,user{i},Given,Family\n").as_bytes());
    }
    assert!(users.len() > 1 << 20);
    let limits = CsvLimits {
        max_file_bytes: 1 << 20,
        ..CsvLimits::default()
    };
    let zipped = zip_of(&[
        ("manifest.csv", MANIFEST_11.as_bytes()),
        ("users.csv", &users),
    ]);
    let plain = folder(&[
        ("manifest.csv", MANIFEST_11),
        ("users.csv", std::str::from_utf8(&users).unwrap()),
    ]);
    for path in [zipped.path().join("p.zip"), plain.path().to_owned()] {
        let mut pkg = CsvPackage::open_with(&path, limits).unwrap();
        let err = pkg.read_each::<User>(|_| {}).unwrap_err();
        assert_eq!(
            err.to_string(),
            "users.csv: more than 1 MiB uncompressed; refusing to read further (if the file is genuine, raise `max_file_mb` under [source.limits])"
        );
    }
}

#[test]
fn a_zip_damaged_in_the_middle_of_a_file_stops_the_read() {
    // Megabytes of rows that do not deflate to nothing, inflated a chunk at a time on a
    // thread of its own: the damage must end the read with an error, not as the file's end.
    let mut users = HEADER.as_bytes().to_vec();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..60_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        users.extend_from_slice(format!("u{i},student,s1,user{x:x},G{x:o},F{i}\n").as_bytes());
    }
    assert!(users.len() > 3 << 20);
    let dir = zip_of(&[
        ("manifest.csv", MANIFEST_11.as_bytes()),
        ("users.csv", &users),
    ]);
    let zip = dir.path().join("p.zip");
    let whole = CsvPackage::open(&zip)
        .unwrap()
        .read_each::<User>(|_| {})
        .unwrap();
    assert_eq!(whole.records, 60_000);
    let mut bytes = std::fs::read(&zip).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 64] {
        *b = !*b;
    }
    std::fs::write(&zip, &bytes).unwrap();
    let mut read = 0;
    let err = CsvPackage::open(&zip)
        .unwrap()
        .read_each::<User>(|_| read += 1)
        .unwrap_err();
    assert!(
        err.to_string().starts_with("users.csv: ")
            && err
                .to_string()
                .contains("damaged or cut short; export the package again"),
        "{err}"
    );
    assert!(read < 60_000, "{read} rows before the damage was found");
}

#[test]
fn a_manifest_of_a_megabyte_is_not_a_manifest() {
    let mut manifest = String::from(MANIFEST_11);
    while manifest.len() <= 1 << 20 {
        manifest.push_str("source.systemName,absent\n");
    }
    let dir = folder(&[("manifest.csv", &manifest), ("users.csv", HEADER)]);
    let err = CsvPackage::open(dir.path()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("manifest.csv: more than 1 MiB uncompressed"),
        "{err}"
    );
}

/// Runs a future to completion on a fresh current-thread runtime.
fn futures_executor<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

// ----- the property: a refused character anywhere in a kept value costs exactly its row

fn refused() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["\0", "\u{1}", "\u{1b}", "\u{7f}", "\r", "\n"])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_refused_character_inside_a_value_skips_exactly_its_row(
        rows in 1usize..30,
        bad_row in any::<prop::sample::Index>(),
        column in 0usize..4,
        split in 1usize..4,
        bad in refused(),
        crlf in any::<bool>(),
    ) {
        let bad_row = bad_row.index(rows);
        let end = if crlf { "\r\n" } else { "\n" };
        let mut body = HEADER.replace('\n', end);
        let mut bad_line = 0;
        let mut line = 2;
        for i in 0..rows {
            let mut cells = [format!("user{i}"), format!("Given{i}"), format!("Family{i}"), "s1".to_owned()];
            if i == bad_row {
                let c = &mut cells[column];
                c.insert_str(split.min(c.len() - 1), bad);
                bad_line = line;
            }
            let [username, given, family, org] = &cells;
            let quoted = |s: &str| format!("\"{s}\"");
            write!(body, "u{i},student,{},{},{},{}{end}", quoted(org), quoted(username), quoted(given), quoted(family)).unwrap();
            line += 1 + usize::from(i == bad_row && bad == "\n");
        }
        let dir = folder(&[("manifest.csv", MANIFEST_11), ("users.csv", &body)]);
        let mut pkg = CsvPackage::open(dir.path()).unwrap();
        let (u, report) = read_all::<User>(&mut pkg);
        let expected: Vec<String> = (0..rows).filter(|i| *i != bad_row).map(|i| format!("u{i}")).collect();
        prop_assert_eq!(ids(&u), expected.iter().map(String::as_str).collect::<Vec<_>>());
        prop_assert!(!report.complete);
        prop_assert_eq!(report.skipped, 1);
        prop_assert_eq!(report.problems.len(), 1);
        let at_line = format!("users.csv line {bad_line}");
        let at_lines = format!("users.csv lines {bad_line}–");
        prop_assert!(
            report.problems[0].starts_with(&at_line) || report.problems[0].starts_with(&at_lines),
            "{:?} (expected line {})", report.problems, bad_line
        );
        for user in &u {
            for value in [&user.username, &user.given_name, &user.family_name] {
                prop_assert!(!value.chars().any(|c| c.is_control()), "{:?}", value);
            }
        }
    }
}
