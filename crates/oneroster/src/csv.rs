//! Reading a OneRoster CSV package: a zip, or a folder of CSV files.
//!
//! Rows are streamed to the caller one at a time, so a million-row `users.csv` never sits
//! in memory. Columns are found by header name (real exports reorder and add columns).
//! Zip entries are read in place, never extracted to disk, and the bytes read are capped
//! so a zip bomb stops with an error instead of filling the machine.
//!
//! Policy on text encoding: files must be UTF-8 (a byte-order mark is fine). A cell that is
//! not valid UTF-8 stops the read with its file, line and column, and asks for a UTF-8
//! export: silently guessing a code page would corrupt names, which are what we sync.
//!
//! Policy on bad cells: a value that cannot be read (a date like `1/05/2023`, a boolean
//! like `maybe`) is left out of the record and reported as a warning with file, line,
//! column and value; the rest of the row is kept. A row without a `sourcedId` is skipped
//! and marks the collection incomplete. A missing required column is an error.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde_json::value::RawValue;

use crate::lenient::{self, non_empty};
use crate::model::*;
use crate::report::{CollectionReport, Coverage};

/// The default cap on uncompressed bytes read from one zip entry: 32 GiB, several times
/// the largest district's enrollments file.
pub const DEFAULT_MAX_UNCOMPRESSED: u64 = 32 << 30;

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path}: not a readable zip file ({detail}); give a OneRoster CSV zip or a folder")]
    Zip { path: String, detail: String },
    #[error(
        "{path}: no OneRoster files found (looked for manifest.csv and users.csv at the top level or in one folder)"
    )]
    NotAPackage { path: String },
    #[error("{file}: listed as `{mode}` in manifest.csv but missing from the package")]
    MissingFile { file: String, mode: String },
    #[error("{file}: required column `{column}` is missing (the header has: {found})")]
    MissingColumn {
        file: String,
        column: String,
        found: String,
    },
    #[error("{file} line {line}: {detail}")]
    Malformed {
        file: String,
        line: u64,
        detail: String,
    },
    #[error(
        "{file} line {line}, column `{column}`: not valid UTF-8 (byte {offset} of the cell); export the file as UTF-8"
    )]
    NotUtf8 {
        file: String,
        line: u64,
        column: String,
        offset: usize,
    },
    #[error(
        "{file}: more than {limit} bytes uncompressed; refusing to read further (raise the limit if this package is genuine)"
    )]
    TooLarge { file: String, limit: u64 },
}

/// `file.<name>` in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileMode {
    Absent,
    Bulk,
    Delta,
}

impl FileMode {
    fn as_str(self) -> &'static str {
        match self {
            FileMode::Absent => "absent",
            FileMode::Bulk => "bulk",
            FileMode::Delta => "delta",
        }
    }
}

/// What `manifest.csv` says (or what we inferred when it was missing).
#[derive(Debug, Clone)]
pub struct Manifest {
    pub manifest_version: Option<String>,
    pub oneroster_version: Version,
    /// `file.<name>` → mode, keyed by file name without `.csv`.
    pub files: HashMap<String, FileMode>,
    pub source_system_name: Option<String>,
    pub source_system_code: Option<String>,
}

/// File names the standard defines (1.1 and 1.2), without `.csv`.
const KNOWN_FILES: &[&str] = &[
    "manifest",
    "orgs",
    "academicSessions",
    "courses",
    "classes",
    "users",
    "enrollments",
    "demographics",
    "roles",
    "userProfiles",
    "userResources",
    "categories",
    "lineItems",
    "results",
    "resources",
    "classResources",
    "courseResources",
    "scoreScales",
    "lineItemScoreScales",
    "resultScoreScales",
    "lineItemLearningObjectiveIds",
    "resultLearningObjectiveIds",
];

enum Storage {
    Dir(PathBuf),
    /// Entry names (full paths inside the zip) by their file name.
    Zip {
        path: PathBuf,
        entries: HashMap<String, String>,
    },
}

/// An opened package. Cheap to keep: files are opened again for each read.
pub struct CsvPackage {
    display: String,
    storage: Storage,
    manifest: Manifest,
    warnings: Vec<String>,
    max_uncompressed: u64,
}

impl std::fmt::Debug for CsvPackage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvPackage")
            .field("path", &self.display)
            .field("version", &self.manifest.oneroster_version)
            .finish()
    }
}

impl CsvPackage {
    pub fn open(path: &Path) -> Result<CsvPackage, PackageError> {
        CsvPackage::open_with_limit(path, DEFAULT_MAX_UNCOMPRESSED)
    }

    /// Opens a zip or folder, reading only `manifest.csv` (and listing the files).
    pub fn open_with_limit(path: &Path, max_uncompressed: u64) -> Result<CsvPackage, PackageError> {
        let display = path.display().to_string();
        let io_err = |source| PackageError::Io {
            path: display.clone(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io_err)?;
        let mut warnings = Vec::new();
        let (storage, names) = if meta.is_dir() {
            let mut names = Vec::new();
            for entry in std::fs::read_dir(path).map_err(io_err)? {
                let entry = entry.map_err(io_err)?;
                if let Some(n) = entry.file_name().to_str() {
                    names.push(n.to_owned());
                }
            }
            (Storage::Dir(path.to_owned()), names)
        } else {
            let file = File::open(path).map_err(io_err)?;
            let zip = zip::ZipArchive::new(file).map_err(|e| PackageError::Zip {
                path: display.clone(),
                detail: e.to_string(),
            })?;
            let names: Vec<String> = zip
                .file_names_raw()
                .filter_map(|n| std::str::from_utf8(n).ok().map(str::to_owned))
                .collect();
            let entries = zip_entries(names.iter().map(String::as_str), &mut warnings);
            let names = entries.keys().cloned().collect();
            (
                Storage::Zip {
                    path: path.to_owned(),
                    entries,
                },
                names,
            )
        };
        let mut pkg = CsvPackage {
            display: display.clone(),
            storage,
            manifest: Manifest {
                manifest_version: None,
                oneroster_version: Version::V1_1,
                files: HashMap::new(),
                source_system_name: None,
                source_system_code: None,
            },
            warnings,
            max_uncompressed,
        };
        let csv_names: Vec<&str> = names
            .iter()
            .filter_map(|n| n.strip_suffix(".csv"))
            .collect();
        if !csv_names.iter().any(|n| *n == "manifest" || *n == "users") {
            return Err(PackageError::NotAPackage { path: display });
        }
        for n in &csv_names {
            if !KNOWN_FILES.contains(n) {
                let hint = KNOWN_FILES
                    .iter()
                    .find(|k| k.eq_ignore_ascii_case(n))
                    .map(|k| format!(" (file names are case-sensitive: did you mean {k}.csv?)"))
                    .unwrap_or_default();
                pkg.warnings
                    .push(format!("{n}.csv: not a OneRoster file; ignored{hint}"));
            }
        }
        pkg.manifest = if csv_names.contains(&"manifest") {
            pkg.read_manifest(&csv_names)?
        } else {
            pkg.warnings.push(
                "manifest.csv is missing: every file present is read as bulk, and the version is taken from users.csv"
                    .into(),
            );
            pkg.infer_manifest(&csv_names)?
        };
        Ok(pkg)
    }

    pub fn version(&self) -> Version {
        self.manifest.oneroster_version
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Problems with the package as a whole (unknown files, manifest gaps, unknown columns
    /// are added as files are read).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Whether the package holds a collection, and as what; `None` when absent.
    pub fn coverage(&self, collection: Collection) -> Option<Coverage> {
        let name = collection.csv_file().trim_end_matches(".csv");
        match self.manifest.files.get(name) {
            Some(FileMode::Bulk) => Some(Coverage::Full),
            Some(FileMode::Delta) => Some(Coverage::Delta),
            Some(FileMode::Absent) | None => None,
        }
    }

    /// Streams every record of `T`'s file to `sink`, each as its own value. Warnings about
    /// the file's header are added to [`CsvPackage::warnings`].
    pub fn read<T: CsvRecord>(
        &mut self,
        mut sink: impl FnMut(T),
    ) -> Result<CollectionReport, PackageError> {
        self.read_each::<T>(|r| sink(r.clone()))
    }

    /// Like [`CsvPackage::read`], lending each record instead of giving it: one record is
    /// refilled in place row after row, so a steady read allocates next to nothing. The
    /// fastest way through a big file when the caller keeps only part of each record.
    pub fn read_each<T: CsvRecord>(
        &mut self,
        mut sink: impl FnMut(&T),
    ) -> Result<CollectionReport, PackageError> {
        let file = T::COLLECTION.csv_file();
        let coverage = self
            .coverage(T::COLLECTION)
            .ok_or_else(|| PackageError::MissingFile {
                file: file.to_owned(),
                mode: "absent".into(),
            })?;
        let mut context = T::load_context(self)?;
        let mut report = CollectionReport::new(T::COLLECTION, coverage);
        report.pages = 1;
        let version = self.version();
        let mut header_warnings = Vec::new();
        self.rows::<T>(
            file,
            T::required_columns(version),
            T::COLUMNS,
            &mut header_warnings,
            |row| match row {
                Row::Record {
                    line,
                    record,
                    pending,
                } => {
                    record.finish(pending, &mut context);
                    report.saw(record.base(), || format!("{file} line {line}: "));
                    sink(record);
                }
                Row::Skipped { line, why } => {
                    report.problem(format!("{file} line {line}: {why}; row skipped"))
                }
            },
        )?;
        self.warnings.extend(header_warnings);
        report.complete = report.problems.is_empty();
        Ok(report)
    }

    /// Runs `f` over the bytes of `file`, or returns `None` when the package lacks it.
    fn with_entry<R>(
        &self,
        file: &str,
        f: impl FnOnce(&mut dyn Read) -> Result<R, PackageError>,
    ) -> Result<Option<R>, PackageError> {
        let io_err = |source| PackageError::Io {
            path: format!("{}/{file}", self.display),
            source,
        };
        match &self.storage {
            Storage::Dir(dir) => match File::open(dir.join(file)) {
                Ok(fh) => f(&mut Capped::new(fh, self.max_uncompressed)).map(Some),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(io_err(e)),
            },
            Storage::Zip { path, entries } => {
                let Some(entry) = entries.get(file) else {
                    return Ok(None);
                };
                let fh = File::open(path).map_err(io_err)?;
                let zip_err = |e: zip::result::ZipError| PackageError::Zip {
                    path: self.display.clone(),
                    detail: format!("{file}: {e}"),
                };
                let mut zip = zip::ZipArchive::new(fh).map_err(zip_err)?;
                let mut entry = zip.by_name(entry).map_err(zip_err)?;
                if entry.size() > self.max_uncompressed {
                    return Err(PackageError::TooLarge {
                        file: file.to_owned(),
                        limit: self.max_uncompressed,
                    });
                }
                // The declared size can lie: cap what is actually inflated too.
                f(&mut Capped::new(&mut entry, self.max_uncompressed)).map(Some)
            }
        }
    }

    fn read_manifest(&mut self, csv_names: &[&str]) -> Result<Manifest, PackageError> {
        let mut props: Vec<(u64, String, String)> = Vec::new();
        let mut warnings = Vec::new();
        self.raw_rows("manifest.csv", &mut warnings, |line, cells| {
            let name = cells.first().map(|s| s.trim()).unwrap_or("");
            let value = cells.get(1).map(|s| s.trim()).unwrap_or("");
            if line > 1 && !name.is_empty() {
                props.push((line, name.to_owned(), value.to_owned()));
            }
        })?;
        self.warnings.extend(warnings);
        let mut m = Manifest {
            manifest_version: None,
            oneroster_version: Version::V1_1,
            files: HashMap::new(),
            source_system_name: None,
            source_system_code: None,
        };
        let mut version_seen = false;
        for (line, name, value) in props {
            let absent_word = |v: &str| v.is_empty() || v.eq_ignore_ascii_case("absent");
            match name.as_str() {
                "manifest.version" => m.manifest_version = non_empty(&value),
                "oneroster.version" => match Version::parse(&value) {
                    Some(v) => {
                        m.oneroster_version = v;
                        version_seen = true;
                    }
                    None => self.warnings.push(format!(
                        "manifest.csv line {line}: oneroster.version '{value}' is not 1.0, 1.1 or 1.2"
                    )),
                },
                "source.systemName" if !absent_word(&value) => m.source_system_name = Some(value),
                "source.systemCode" if !absent_word(&value) => m.source_system_code = Some(value),
                "source.systemName" | "source.systemCode" => {}
                n => match n.strip_prefix("file.") {
                    Some(file) => {
                        let mode = match value.to_ascii_lowercase().as_str() {
                            "bulk" => FileMode::Bulk,
                            "delta" => FileMode::Delta,
                            "absent" => FileMode::Absent,
                            other => {
                                self.warnings.push(format!(
                                    "manifest.csv line {line}: {n} is '{other}', expected bulk, delta or absent; read as absent"
                                ));
                                FileMode::Absent
                            }
                        };
                        m.files.insert(file.to_owned(), mode);
                    }
                    None => self
                        .warnings
                        .push(format!("manifest.csv line {line}: unknown property `{n}`; ignored")),
                },
            }
        }
        if !version_seen {
            m.oneroster_version = self.guess_version(csv_names)?;
            self.warnings.push(format!(
                "manifest.csv has no oneroster.version; read as {} from the files present",
                m.oneroster_version
            ));
        }
        for name in csv_names.iter().filter(|n| **n != "manifest") {
            match m.files.get(*name) {
                None if KNOWN_FILES.contains(name) => {
                    self.warnings.push(format!(
                        "{name}.csv is in the package but not in manifest.csv; read as bulk"
                    ));
                    m.files.insert((*name).to_owned(), FileMode::Bulk);
                }
                Some(FileMode::Absent) if KNOWN_FILES.contains(name) => self.warnings.push(
                    format!("{name}.csv is in the package but manifest.csv says absent; ignored"),
                ),
                _ => {}
            }
        }
        for c in Collection::ROSTER {
            let name = c.csv_file().trim_end_matches(".csv");
            if let Some(mode @ (FileMode::Bulk | FileMode::Delta)) = m.files.get(name)
                && !csv_names.contains(&name)
            {
                return Err(PackageError::MissingFile {
                    file: c.csv_file().to_owned(),
                    mode: mode.as_str().to_owned(),
                });
            }
        }
        Ok(m)
    }

    fn infer_manifest(&mut self, csv_names: &[&str]) -> Result<Manifest, PackageError> {
        let files = csv_names
            .iter()
            .filter(|n| KNOWN_FILES.contains(n) && **n != "manifest")
            .map(|n| ((*n).to_owned(), FileMode::Bulk))
            .collect();
        Ok(Manifest {
            manifest_version: None,
            oneroster_version: self.guess_version(csv_names)?,
            files,
            source_system_name: None,
            source_system_code: None,
        })
    }

    /// 1.2 has `roles.csv` and no `role` column in `users.csv`.
    fn guess_version(&self, csv_names: &[&str]) -> Result<Version, PackageError> {
        if csv_names.contains(&"roles") {
            return Ok(Version::V1_2);
        }
        let mut header = Vec::new();
        let mut ignored = Vec::new();
        if csv_names.contains(&"users") {
            self.raw_rows("users.csv", &mut ignored, |line, cells| {
                if line == 1 {
                    header = cells.iter().map(|c| c.to_string()).collect();
                }
            })?;
        }
        Ok(if header.iter().any(|h| h == "role") || header.is_empty() {
            Version::V1_1
        } else {
            Version::V1_2
        })
    }

    /// Every row of a small file as strings (the manifest), with its line number.
    fn raw_rows(
        &self,
        file: &str,
        warnings: &mut Vec<String>,
        mut each: impl FnMut(u64, &[&str]),
    ) -> Result<(), PackageError> {
        self.with_entry(file, |reader| {
            let mut rdr = csv_reader(reader);
            let mut rec = csv::ByteRecord::new();
            loop {
                match rdr.read_byte_record(&mut rec) {
                    Ok(false) => break,
                    Ok(true) => {}
                    Err(e) => return Err(csv_error(file, e)),
                }
                let line = rec.position().map_or(0, |p| p.line());
                let mut cells: Vec<&str> = Vec::with_capacity(rec.len());
                for (i, raw) in rec.iter().enumerate() {
                    let raw = if line == 1 && i == 0 {
                        strip_bom(raw)
                    } else {
                        raw
                    };
                    match std::str::from_utf8(raw) {
                        Ok(s) => cells.push(s.trim_end_matches('\r')),
                        Err(e) => {
                            return Err(PackageError::NotUtf8 {
                                file: file.to_owned(),
                                line,
                                column: format!("#{}", i + 1),
                                offset: e.valid_up_to(),
                            });
                        }
                    }
                }
                each(line, &cells);
            }
            Ok(())
        })?;
        let _ = warnings;
        Ok(())
    }

    /// Streams typed rows of one file, refilling one record in place.
    fn rows<T: CsvRecord>(
        &self,
        file: &str,
        required: &[&str],
        known: &'static [&'static str],
        warnings: &mut Vec<String>,
        mut each: impl FnMut(Row<'_, T>),
    ) -> Result<(), PackageError> {
        let read = self.with_entry(file, |reader| {
            let mut rdr = csv_reader(reader);
            let mut row = csv::ByteRecord::new();
            match rdr.read_byte_record(&mut row) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(PackageError::Malformed {
                        file: file.to_owned(),
                        line: 1,
                        detail: "the file is empty (no header row)".into(),
                    });
                }
                Err(e) => return Err(csv_error(file, e)),
            }
            let header: Option<Vec<&str>> = row_text(&row).and_then(|text| {
                (0..row.len())
                    .map(|i| row.range(i).and_then(|r| text.get(r)))
                    .collect()
            });
            let Some(header) = header else {
                let line = row.position().map_or(1, |p| p.line());
                return Err(not_utf8(file, line, &row, &[]));
            };
            let mut columns: Vec<Column<T>> = Vec::with_capacity(header.len());
            let mut header_names = Vec::with_capacity(header.len());
            for (i, raw) in header.iter().enumerate() {
                let name = if i == 0 {
                    raw.trim_start_matches('\u{feff}')
                } else {
                    raw
                }
                .trim();
                header_names.push(name.to_owned());
                let field = known
                    .iter()
                    .find(|k| **k == name)
                    .and_then(|k| T::setter(k).map(|f| (*k, f)));
                columns.push(if name.is_empty() {
                    Column::Ignored
                } else if let Some((k, f)) = common_setter::<T>(name) {
                    Column::Field(k, f)
                } else if let Some((k, f)) = field {
                    Column::Field(k, f)
                } else if known.contains(&name) {
                    // A standard column this type does not keep (`password`).
                    Column::Ignored
                } else {
                    if !name.starts_with("metadata.") {
                        let hint = COMMON_COLUMNS
                            .iter()
                            .chain(known)
                            .find(|k| close_enough(k, name))
                            .map(|k| format!(" (did you mean `{k}`?)"))
                            .unwrap_or_default();
                        warnings.push(format!(
                            "{file}: unknown column `{name}` kept as an extension{hint}"
                        ));
                    }
                    Column::Extension(name.to_owned())
                });
            }
            for req in required {
                if !header_names.iter().any(|h| h == req) {
                    return Err(PackageError::MissingColumn {
                        file: file.to_owned(),
                        column: (*req).to_owned(),
                        found: header_names.join(","),
                    });
                }
            }
            let named = columns
                .iter()
                .filter(|c| !matches!(c, Column::Ignored))
                .count();
            // The columns a row is read through: the record's own, then extensions.
            let mut fields: Vec<(usize, &'static str, Setter<T>)> = Vec::new();
            let mut extension_columns: Vec<(usize, &str)> = Vec::new();
            let mut ignored_columns: Vec<usize> = Vec::new();
            for (i, column) in columns.iter().enumerate() {
                match column {
                    Column::Field(name, set) => fields.push((i, name, *set)),
                    Column::Extension(name) => extension_columns.push((i, name)),
                    Column::Ignored => ignored_columns.push(i),
                }
            }
            let mut record = T::default();
            loop {
                match rdr.read_byte_record(&mut row) {
                    Ok(false) => break,
                    Ok(true) => {}
                    Err(e) => return Err(csv_error(file, e)),
                }
                let line = row.position().map_or(0, |p| p.line());
                // Checked as UTF-8 once per row, not once per cell (what `StringRecord`
                // does when a row is not pure ASCII).
                let Some(text) = row_text(&row) else {
                    return Err(not_utf8(file, line, &row, &header_names));
                };
                if row.len() == 1 && text.trim().is_empty() {
                    continue; // a blank line (its one cell is the whole text)
                }
                // Every cell is cut out once, which checks it starts and ends on a
                // character boundary (see `row_text`); a missing cell is empty.
                let cell = |i: usize| match row.range(i) {
                    Some(r) => text
                        .get(r)
                        .ok_or_else(|| not_utf8(file, line, &row, &header_names)),
                    None => Ok(""),
                };
                let mut pending = T::Pending::default();
                let mut record_warnings = std::mem::take(&mut record.base_mut().warnings);
                record_warnings.clear();
                let mut extensions = std::mem::take(&mut record.base_mut().extensions);
                extensions.clear();
                // Every field is visited, empty or missing cells too: the record is reused,
                // so each setter writes its field whatever the cell holds.
                for (i, name, set) in &fields {
                    let mut c = Cell {
                        column: name,
                        value: lenient::trim(cell(*i)?),
                        warnings: &mut record_warnings,
                    };
                    set(&mut record, &mut c, &mut pending);
                }
                for (i, name) in &extension_columns {
                    let value = cell(*i)?.trim_end_matches('\r');
                    if !value.is_empty() {
                        extensions.push(((*name).to_owned(), json_string(value)));
                    }
                }
                for i in &ignored_columns {
                    cell(*i)?;
                }
                // Cells past the header's: each still checked, and ignored.
                let mut extra = false;
                for i in columns.len()..row.len() {
                    extra |= !cell(i)?.trim().is_empty();
                }
                let rec_len = row.len();
                if extra {
                    record_warnings.push(format!(
                        "the row has {} cells, the header {}; the extra cells are ignored",
                        rec_len,
                        columns.len()
                    ));
                } else if rec_len < named
                    && columns
                        .iter()
                        .take(named)
                        .skip(rec_len)
                        .any(|c| matches!(c, Column::Field(..)))
                {
                    record_warnings.push(format!(
                        "the row has {} cells, the header {}; the missing cells are read as empty",
                        rec_len,
                        columns.len()
                    ));
                }
                let base = record.base_mut();
                base.warnings = record_warnings;
                base.extensions = extensions;
                if base.sourced_id.is_empty() {
                    each(Row::Skipped {
                        line,
                        why: "no sourcedId".into(),
                    });
                    continue;
                }
                each(Row::Record {
                    line,
                    record: &mut record,
                    pending,
                });
            }
            Ok(())
        })?;
        read.ok_or_else(|| PackageError::MissingFile {
            file: file.to_owned(),
            mode: "bulk".into(),
        })
    }
}

enum Row<'r, T: CsvRecord> {
    Record {
        line: u64,
        record: &'r mut T,
        pending: T::Pending,
    },
    Skipped {
        line: u64,
        why: String,
    },
}

enum Column<T: CsvRecord> {
    /// A column of the record type, with the function that reads it.
    Field(&'static str, Setter<T>),
    Extension(String),
    Ignored,
}

const COMMON_COLUMNS: &[&str] = &["sourcedId", "status", "dateLastModified"];

/// The reader of a column every record has (`sourcedId`, `status`, `dateLastModified`).
fn common_setter<T: CsvRecord>(column: &str) -> Option<(&'static str, Setter<T>)> {
    Some(match column {
        "sourcedId" => ("sourcedId", |s, c, _| {
            c.text_into(&mut s.base_mut().sourced_id)
        }),
        "status" => ("status", |s, c, _| {
            s.base_mut().status = c
                .parsed("a status (active, tobedeleted)", Status::parse)
                .unwrap_or_default();
        }),
        "dateLastModified" => ("dateLastModified", |s, c, _| {
            s.base_mut().date_last_modified =
                c.parsed("an ISO-8601 date-time", lenient::parse_timestamp);
        }),
        _ => return None,
    })
}

/// A row's cells as one string, checked as UTF-8 in one pass instead of cell by cell;
/// `None` when it is not UTF-8. A cell is then `text.get(row.range(i))`, which also checks
/// the cell starts and ends on a character boundary: the one way a cell can be invalid in
/// a valid whole (a multi-byte character split across two cells).
fn row_text(row: &csv::ByteRecord) -> Option<&str> {
    std::str::from_utf8(row.as_slice()).ok()
}

/// The error for a row [`row_text`] or a cell refused: the first cell that is not UTF-8.
fn not_utf8(file: &str, line: u64, row: &csv::ByteRecord, header: &[String]) -> PackageError {
    let (field, offset) = row
        .iter()
        .enumerate()
        .find_map(|(i, cell)| {
            std::str::from_utf8(cell)
                .err()
                .map(|e| (i, e.valid_up_to()))
        })
        .unwrap_or((0, 0));
    PackageError::NotUtf8 {
        file: file.to_owned(),
        line,
        column: header
            .get(field)
            .cloned()
            .unwrap_or_else(|| format!("#{}", field + 1)),
        offset,
    }
}

/// One non-empty cell being read, and where its problems go.
pub struct Cell<'a> {
    column: &'static str,
    value: &'a str,
    warnings: &'a mut Vec<String>,
}

impl Cell<'_> {
    /// Writes the cell into a string, reusing its buffer.
    fn text_into(&self, out: &mut String) {
        out.clear();
        out.push_str(self.value);
    }

    /// An empty cell is `None`; otherwise the buffer already there is reused.
    fn opt_into(&self, out: &mut Option<String>) {
        if self.value.is_empty() {
            *out = None;
        } else if let Some(s) = out {
            self.text_into(s);
        } else {
            *out = Some(self.value.to_owned());
        }
    }

    /// A comma-separated cell into a list, reusing the strings already in it.
    fn list_into(&self, out: &mut Vec<String>) {
        let mut n = 0;
        for item in lenient::list_items(self.value) {
            match out.get_mut(n) {
                Some(s) => {
                    s.clear();
                    s.push_str(item);
                }
                None => out.push(item.to_owned()),
            }
            n += 1;
        }
        out.truncate(n);
    }

    /// `{LDAP:12},{Fed:34}` into a list, reusing the strings already in it.
    fn user_ids_into(&self, out: &mut Vec<UserId>) {
        let mut n = 0;
        for (kind, identifier) in lenient::user_id_pairs(self.value) {
            match out.get_mut(n) {
                Some(id) => {
                    id.kind.clear();
                    id.kind.push_str(kind);
                    id.identifier.clear();
                    id.identifier.push_str(identifier);
                }
                None => out.push(UserId {
                    kind: kind.to_owned(),
                    identifier: identifier.to_owned(),
                }),
            }
            n += 1;
        }
        out.truncate(n);
    }

    /// The cell read by `parse`; an empty cell is `None` without a warning.
    fn parsed<T>(&mut self, expected: &str, parse: impl FnOnce(&str) -> Option<T>) -> Option<T> {
        if self.value.is_empty() {
            return None;
        }
        let v = parse(self.value);
        if v.is_none() {
            self.warnings.push(format!(
                "column `{}`: '{}' is not {expected}; ignored",
                self.column, self.value
            ));
        }
        v
    }

    fn boolean(&mut self) -> Option<bool> {
        self.parsed("a boolean", lenient::parse_bool)
    }

    fn date(&mut self) -> Option<jiff::civil::Date> {
        self.parsed("a date (YYYY-MM-DD)", lenient::parse_date)
    }

    /// An open enum: kept whatever it says, `None` when empty.
    fn open<T>(&self, parse: impl FnOnce(&str) -> T) -> Option<T> {
        (!self.value.is_empty()).then(|| parse(self.value))
    }
}

/// A record type with a file in the package.
pub trait CsvRecord: Record + Default + Clone {
    /// Columns this type reads, besides `sourcedId`, `status`, `dateLastModified`.
    const COLUMNS: &'static [&'static str];
    /// Per-row state kept until the row is complete.
    type Pending: Default;
    /// Package-wide state loaded before the rows (1.2 users need `roles.csv`).
    type Context;

    fn required_columns(version: Version) -> &'static [&'static str];
    fn load_context(pkg: &mut CsvPackage) -> Result<Self::Context, PackageError>;
    /// The function that reads a column into the record, looked up once per file so a
    /// row costs one call per cell, not a string match.
    fn setter(column: &str) -> Option<Setter<Self>>;
    fn finish(&mut self, _pending: Self::Pending, _context: &mut Self::Context) {}
}

/// Reads one cell into a record.
pub type Setter<T> = fn(&mut T, &mut Cell<'_>, &mut <T as CsvRecord>::Pending);

impl CsvRecord for User {
    const COLUMNS: &'static [&'static str] = &[
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
        "userMasterIdentifier",
        "resourceSourcedIds",
        "preferredGivenName",
        "preferredMiddleName",
        "preferredFamilyName",
        "primaryOrgSourcedId",
        "pronouns",
    ];
    type Pending = UserPending;
    /// Roles by user, from `roles.csv`.
    type Context = HashMap<String, Vec<RoleAssignment>>;

    fn required_columns(version: Version) -> &'static [&'static str] {
        match version {
            Version::V1_1 => &[
                "sourcedId",
                "username",
                "givenName",
                "familyName",
                "role",
                "orgSourcedIds",
            ],
            Version::V1_2 => &["sourcedId", "username", "givenName", "familyName"],
        }
    }

    fn load_context(pkg: &mut CsvPackage) -> Result<Self::Context, PackageError> {
        let mut roles: HashMap<String, Vec<RoleAssignment>> = HashMap::new();
        let has_roles = matches!(
            pkg.manifest.files.get("roles"),
            Some(FileMode::Bulk | FileMode::Delta)
        );
        if pkg.version() == Version::V1_2 && has_roles {
            let mut warnings = Vec::new();
            let mut skipped = Vec::new();
            pkg.rows::<RoleRow>(
                "roles.csv",
                &["userSourcedId", "role"],
                RoleRow::COLUMNS,
                &mut warnings,
                |row| match row {
                    Row::Record { record: r, .. } => {
                        if r.base.status == Status::Active
                            && let (Some(user), Some(role)) = (&r.user, &r.role)
                        {
                            roles.entry(user.clone()).or_default().push(RoleAssignment {
                                role_type: r.role_type.clone().unwrap_or(RoleType::Primary),
                                role: role.clone(),
                                org: r.org.clone(),
                                user_profile: r.user_profile.clone(),
                                begin_date: r.begin_date,
                                end_date: r.end_date,
                            });
                        }
                    }
                    Row::Skipped { line, why } => {
                        skipped.push(format!("roles.csv line {line}: {why}; row skipped"))
                    }
                },
            )?;
            pkg.warnings.extend(warnings);
            pkg.warnings.extend(skipped);
        }
        Ok(roles)
    }

    fn setter(column: &str) -> Option<Setter<Self>> {
        let f: Setter<Self> = match column {
            "enabledUser" => |s, c, _| s.enabled_user = c.boolean().unwrap_or(true),
            "orgSourcedIds" => |s, c, p| {
                c.list_into(&mut s.orgs);
                p.orgs_column = true;
            },
            "role" => |_, c, p| p.legacy_role = c.open(Role::parse),
            "username" => |s, c, _| c.text_into(&mut s.username),
            "userIds" => |s, c, _| c.user_ids_into(&mut s.user_ids),
            "givenName" => |s, c, _| c.text_into(&mut s.given_name),
            "familyName" => |s, c, _| c.text_into(&mut s.family_name),
            "middleName" => |s, c, _| c.opt_into(&mut s.middle_name),
            "identifier" => |s, c, _| c.opt_into(&mut s.identifier),
            "email" => |s, c, _| c.opt_into(&mut s.email),
            "sms" => |s, c, _| c.opt_into(&mut s.sms),
            "phone" => |s, c, _| c.opt_into(&mut s.phone),
            "agentSourcedIds" => |s, c, _| c.list_into(&mut s.agents),
            "grades" => |s, c, _| c.list_into(&mut s.grades),
            "userMasterIdentifier" => |s, c, _| c.opt_into(&mut s.user_master_identifier),
            "preferredGivenName" => |s, c, _| c.opt_into(&mut s.preferred_first_name),
            "preferredMiddleName" => |s, c, _| c.opt_into(&mut s.preferred_middle_name),
            "preferredFamilyName" => |s, c, _| c.opt_into(&mut s.preferred_last_name),
            "primaryOrgSourcedId" => |s, c, p| {
                c.opt_into(&mut s.primary_org);
                p.primary_org_column = true;
            },
            "pronouns" => |s, c, _| c.opt_into(&mut s.pronouns),
            // `password` is never kept; `resourceSourcedIds` is not rostering.
            _ => return None,
        };
        Some(f)
    }

    fn finish(&mut self, pending: UserPending, roles: &mut Self::Context) {
        // The record is reused row after row: what the previous row derived is replaced,
        // in place where it can be.
        if !pending.orgs_column {
            self.orgs.clear();
        }
        let from_roles_csv = if roles.is_empty() {
            None
        } else {
            roles.remove(&self.base.sourced_id)
        };
        let derive_primary_org = !pending.primary_org_column;
        match (from_roles_csv, pending.legacy_role) {
            (Some(r), _) => {
                self.roles = r;
                if derive_primary_org {
                    self.primary_org = None;
                }
            }
            (None, Some(role)) => {
                if derive_primary_org {
                    // 1.1: the first org is the primary one.
                    let first = self.orgs.first().map(String::as_str);
                    crate::model::fill_opt(&mut self.primary_org, first);
                }
                self.set_legacy_roles(role);
            }
            (None, None) => {
                self.roles.clear();
                if derive_primary_org {
                    self.primary_org = None;
                }
            }
        }
        self.finish_roles();
    }
}

/// What a users.csv row says besides its fields.
#[derive(Debug, Default)]
pub struct UserPending {
    /// 1.1's `role`.
    legacy_role: Option<Role>,
    orgs_column: bool,
    primary_org_column: bool,
}

/// A row of 1.2 `roles.csv`, folded into its user.
#[derive(Debug, Default, Clone)]
struct RoleRow {
    base: Base,
    user: Option<String>,
    role_type: Option<RoleType>,
    role: Option<Role>,
    org: Option<String>,
    user_profile: Option<String>,
    begin_date: Option<jiff::civil::Date>,
    end_date: Option<jiff::civil::Date>,
}

impl Record for RoleRow {
    const COLLECTION: Collection = Collection::Users;
    fn base(&self) -> &Base {
        &self.base
    }
    fn base_mut(&mut self) -> &mut Base {
        &mut self.base
    }
}

impl CsvRecord for RoleRow {
    const COLUMNS: &'static [&'static str] = &[
        "userSourcedId",
        "roleType",
        "role",
        "beginDate",
        "endDate",
        "orgSourcedId",
        "userProfileSourcedId",
    ];
    type Pending = ();
    type Context = ();

    fn required_columns(_: Version) -> &'static [&'static str] {
        &["userSourcedId", "role"]
    }
    fn load_context(_: &mut CsvPackage) -> Result<(), PackageError> {
        Ok(())
    }
    fn setter(column: &str) -> Option<Setter<Self>> {
        let f: Setter<Self> = match column {
            "userSourcedId" => |s, c, _| c.opt_into(&mut s.user),
            "roleType" => |s, c, _| s.role_type = c.open(RoleType::parse),
            "role" => |s, c, _| s.role = c.open(Role::parse),
            "beginDate" => |s, c, _| s.begin_date = c.date(),
            "endDate" => |s, c, _| s.end_date = c.date(),
            "orgSourcedId" => |s, c, _| c.opt_into(&mut s.org),
            "userProfileSourcedId" => |s, c, _| c.opt_into(&mut s.user_profile),
            _ => return None,
        };
        Some(f)
    }
}

/// The boilerplate of a record type whose rows need no package-wide state.
macro_rules! simple_csv_record {
    ($ty:ty, required: $req:expr, { $($col:literal => |$s:ident, $c:ident| $set:expr),+ $(,)? }) => {
        impl CsvRecord for $ty {
            const COLUMNS: &'static [&'static str] = &[$($col),+];
            type Pending = ();
            type Context = ();
            fn required_columns(_: Version) -> &'static [&'static str] {
                $req
            }
            fn load_context(_: &mut CsvPackage) -> Result<(), PackageError> {
                Ok(())
            }
            fn setter(column: &str) -> Option<Setter<Self>> {
                let f: Setter<Self> = match column {
                    $($col => |$s, $c, _| { $set; },)+
                    _ => return None,
                };
                Some(f)
            }
        }
    };
}

simple_csv_record!(Org, required: &["sourcedId", "name", "type"], {
    "name" => |s, c| c.text_into(&mut s.name),
    "type" => |s, c| s.org_type = c.open(OrgType::parse),
    "identifier" => |s, c| c.opt_into(&mut s.identifier),
    "parentSourcedId" => |s, c| c.opt_into(&mut s.parent),
});

simple_csv_record!(AcademicSession, required: &["sourcedId", "title", "type"], {
    "title" => |s, c| c.text_into(&mut s.title),
    "type" => |s, c| s.session_type = c.open(SessionType::parse),
    "startDate" => |s, c| s.start_date = c.date(),
    "endDate" => |s, c| s.end_date = c.date(),
    "parentSourcedId" => |s, c| c.opt_into(&mut s.parent),
    "schoolYear" => |s, c| c.opt_into(&mut s.school_year),
});

simple_csv_record!(Course, required: &["sourcedId", "title"], {
    "schoolYearSourcedId" => |s, c| c.opt_into(&mut s.school_year),
    "title" => |s, c| c.text_into(&mut s.title),
    "courseCode" => |s, c| c.opt_into(&mut s.course_code),
    "grades" => |s, c| c.list_into(&mut s.grades),
    "orgSourcedId" => |s, c| c.opt_into(&mut s.org),
    "subjects" => |s, c| c.list_into(&mut s.subjects),
    "subjectCodes" => |s, c| c.list_into(&mut s.subject_codes),
});

simple_csv_record!(Class, required: &["sourcedId", "title", "schoolSourcedId"], {
    "title" => |s, c| c.text_into(&mut s.title),
    "grades" => |s, c| c.list_into(&mut s.grades),
    "courseSourcedId" => |s, c| c.opt_into(&mut s.course),
    "classCode" => |s, c| c.opt_into(&mut s.class_code),
    "classType" => |s, c| s.class_type = c.open(ClassType::parse),
    "location" => |s, c| c.opt_into(&mut s.location),
    "schoolSourcedId" => |s, c| c.opt_into(&mut s.school),
    "termSourcedIds" => |s, c| c.list_into(&mut s.terms),
    "subjects" => |s, c| c.list_into(&mut s.subjects),
    "subjectCodes" => |s, c| c.list_into(&mut s.subject_codes),
    "periods" => |s, c| c.list_into(&mut s.periods),
});

simple_csv_record!(Enrollment, required: &["sourcedId", "classSourcedId", "userSourcedId", "role"], {
    "classSourcedId" => |s, c| c.opt_into(&mut s.class),
    "schoolSourcedId" => |s, c| c.opt_into(&mut s.school),
    "userSourcedId" => |s, c| c.opt_into(&mut s.user),
    "role" => |s, c| s.role = c.open(Role::parse),
    "primary" => |s, c| s.primary = c.boolean(),
    "beginDate" => |s, c| s.begin_date = c.date(),
    "endDate" => |s, c| s.end_date = c.date(),
});

simple_csv_record!(Demographic, required: &["sourcedId"], {
    "birthDate" => |s, c| s.birth_date = c.date(),
    "sex" => |s, c| c.opt_into(&mut s.sex),
});

fn csv_reader<R: Read>(r: R) -> csv::Reader<R> {
    // `\n` alone ends a record: with CRLF the csv crate reports the line *before* each
    // record, and our errors must point at the right line. The `\r` left at the end of
    // the last cell is trimmed with the rest of the white space.
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .terminator(csv::Terminator::Any(b'\n'))
        // The csv reader buffers on its own: no BufReader (a second copy of every byte).
        .buffer_capacity(256 * 1024)
        .from_reader(r)
}

fn csv_error(file: &str, e: csv::Error) -> PackageError {
    let line = e.position().map_or(0, |p| p.line());
    match e.into_kind() {
        csv::ErrorKind::Io(source) => {
            if let Some(limit) = source
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<CapExceeded>())
                .map(|c| c.0)
            {
                return PackageError::TooLarge {
                    file: file.to_owned(),
                    limit,
                };
            }
            PackageError::Io {
                path: file.to_owned(),
                source,
            }
        }
        other => PackageError::Malformed {
            file: file.to_owned(),
            line,
            detail: format!("{other:?}"),
        },
    }
}

fn strip_bom(b: &[u8]) -> &[u8] {
    b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b)
}

fn json_string(s: &str) -> Box<RawValue> {
    // A JSON string literal is always valid raw JSON.
    let quoted = serde_json::to_string(s).unwrap_or_else(|_| "null".to_owned());
    RawValue::from_string(quoted).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

/// Names one or two edits apart (case ignored): likely typos of a standard column.
fn close_enough(known: &str, name: &str) -> bool {
    let (a, b) = (known.to_ascii_lowercase(), name.to_ascii_lowercase());
    if a == b {
        return true;
    }
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > 2 {
        return false;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()] <= 2
}

/// Maps file names to zip entry names. Files may sit at the top level or, when someone
/// zipped a folder, inside one folder; names with other paths are ignored.
fn zip_entries<'a>(
    names: impl Iterator<Item = &'a str>,
    warnings: &mut Vec<String>,
) -> HashMap<String, String> {
    let all: Vec<&str> = names.filter(|n| !n.ends_with('/')).collect();
    let top: Vec<&str> = all.iter().copied().filter(|n| !n.contains('/')).collect();
    let chosen: Vec<(&str, &str)> = if top.iter().any(|n| n.ends_with(".csv")) {
        top.iter().map(|n| (*n, *n)).collect()
    } else {
        // One folder holding the files (`district/users.csv`).
        let mut folders: Vec<&str> = all
            .iter()
            .filter_map(|n| n.split_once('/').map(|(d, _)| d))
            .collect();
        folders.sort_unstable();
        folders.dedup();
        match folders.as_slice() {
            [one] => all
                .iter()
                .filter_map(|n| {
                    let rest = n.strip_prefix(one)?.strip_prefix('/')?;
                    (!rest.contains('/')).then_some((rest, *n))
                })
                .collect(),
            _ => Vec::new(),
        }
    };
    let mut out = HashMap::new();
    for (file, entry) in chosen {
        if file.contains("..") || file.starts_with('\\') {
            warnings.push(format!("zip entry `{entry}` has an unsafe name; ignored"));
            continue;
        }
        out.insert(file.to_owned(), entry.to_owned());
    }
    out
}

/// The error a [`Capped`] reader raises, so it can be told apart from other I/O errors.
#[derive(Debug)]
struct CapExceeded(u64);

impl std::fmt::Display for CapExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "more than {} bytes", self.0)
    }
}

impl std::error::Error for CapExceeded {}

/// A reader that fails once more than `limit` bytes have come through.
struct Capped<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R> Capped<R> {
    fn new(inner: R, limit: u64) -> Self {
        Capped {
            inner,
            left: limit,
            limit,
        }
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(io::Error::other(CapExceeded(self.limit)));
        }
        self.left -= n as u64;
        Ok(n)
    }
}
