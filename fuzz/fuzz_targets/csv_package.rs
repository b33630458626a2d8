//! Any bytes, as a CSV package: opening it and reading every collection returns records
//! or an error, never panics, and what it returns is consistent.
//!
//! Input format (so seeds can be written by hand and the fuzzer can recombine files):
//! - starting with `PK`: the bytes are a zip file, read as the package;
//! - otherwise the first byte picks the storage (odd: a zip built in memory, even: a
//!   folder), and the rest is split into files at lines starting with `@@ `, which name
//!   the file that follows (`@@ users.csv`). Folder file names are restricted to plain
//!   names; zip entry names are taken as given (`../x.csv`, `district/users.csv`).
#![no_main]

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use oneroster::csv::{CsvPackage, CsvRecord};
use oneroster::{AcademicSession, Class, Course, Demographic, Enrollment, Org, User};

/// Decompressed bytes allowed per file: keeps a zip bomb in the input quick.
const LIMIT: u64 = 1 << 20;

fn split_files(body: &[u8]) -> Vec<(String, &[u8])> {
    let mut files = Vec::new();
    let mut current: Option<(String, usize)> = None;
    let mut at = 0;
    while at < body.len() {
        let end = body[at..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(body.len(), |i| at + i + 1);
        let line = &body[at..end];
        if let Some(name) = line.strip_prefix(b"@@ ") {
            if let Some((n, start)) = current.take() {
                files.push((n, &body[start..at]));
            }
            let name = String::from_utf8_lossy(name)
                .trim_end_matches(['\r', '\n'])
                .to_owned();
            current = Some((name, end));
        }
        at = end;
    }
    if let Some((n, start)) = current {
        files.push((n, &body[start..]));
    }
    files
}

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("oneroster-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_package(dir: &Path, data: &[u8]) -> Option<PathBuf> {
    if data.starts_with(b"PK") {
        let path = dir.join("package.zip");
        std::fs::write(&path, data).unwrap();
        return Some(path);
    }
    let (&flags, body) = data.split_first()?;
    let files = split_files(body);
    if flags & 1 == 1 {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, contents) in files {
            // Duplicate names are refused by the writer; the first one wins.
            if zip.start_file(name, opts).is_ok() {
                zip.write_all(contents).unwrap();
            }
        }
        let bytes = zip.finish().unwrap().into_inner();
        let path = dir.join("package.zip");
        std::fs::write(&path, bytes).unwrap();
        Some(path)
    } else {
        let plain = |n: &str| {
            !n.is_empty()
                && n.len() <= 64
                && n != "."
                && n != ".."
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        };
        for (name, contents) in files.into_iter().filter(|(n, _)| plain(n)) {
            std::fs::write(dir.join(name), contents).unwrap();
        }
        Some(dir.to_owned())
    }
}

fn read_every_record<T: CsvRecord>(pkg: &mut CsvPackage) {
    let mut seen = 0u64;
    if let Ok(report) = pkg.read::<T>(|r| {
        assert!(
            !r.sourced_id().is_empty(),
            "a {} without a sourcedId",
            T::COLLECTION
        );
        seen += 1;
    }) {
        assert_eq!(report.records, seen, "{report:?}");
        assert!(report.records_with_warnings <= seen, "{report:?}");
        assert_eq!(report.complete, report.problems.is_empty(), "{report:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let dir = scratch_dir();
    let Some(path) = write_package(&dir, data) else {
        return;
    };
    if let Ok(mut pkg) = CsvPackage::open_with_limit(&path, LIMIT) {
        let _ = pkg.manifest();
        read_every_record::<User>(&mut pkg);
        read_every_record::<Org>(&mut pkg);
        read_every_record::<AcademicSession>(&mut pkg);
        read_every_record::<Course>(&mut pkg);
        read_every_record::<Class>(&mut pkg);
        read_every_record::<Enrollment>(&mut pkg);
        read_every_record::<Demographic>(&mut pkg);
    }
});
