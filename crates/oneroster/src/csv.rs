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
//! column and value; the rest of the row is kept. A missing required column is an error.
//!
//! Policy on broken rows: a row the reader cannot trust is skipped — never handed on —
//! and marks its collection *incomplete* (a problem naming file, line and what is
//! wrong), so the people in it are neither updated nor, being absent, deactivated. That
//! covers a cell holding a line break (no OneRoster column may: it is the mark of a quote
//! left open, which swallows the rows after it), a row whose cell count differs from the
//! header's, a second row with a `sourcedId` already seen, a row without one, two header
//! columns of one name that disagree, and a kept cell with a control character or longer
//! than [`CsvLimits::max_cell_chars`]. Skipping rather than dropping the one field keeps
//! a bad cell from blanking a name in the directory. An unknown (extension) column's bad
//! cell is only left out, with a warning: the sync does not read extensions.
//!
//! Policy on size: every read is bounded ([`CsvLimits`]): bytes per file, bytes per row
//! (a line that never ends, or a quote that swallows the rest of the file, stops at the
//! limit instead of growing one row without end), characters per cell. Past a file or
//! row limit the read stops with an error naming the limit and the setting that raises
//! it.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde_json::value::RawValue;

use crate::ids::IdHashes;
use crate::lenient::{self, non_empty};
use crate::model::*;
use crate::report::{CollectionReport, Coverage};

/// The default cap on bytes read from one file (uncompressed, for a zip entry): 8 GiB.
/// A district of a million students writes about 1–2 GB of enrollments, so this is
/// several times the largest real file, and it stops a zip bomb long before the disk or
/// the clock suffer.
pub const DEFAULT_MAX_UNCOMPRESSED: u64 = 8 << 30;

/// Bounds on what a package can make the reader hold or hand on; see
/// `docs/cli.md` (*CSV packages: limits*) for the figures and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvLimits {
    /// Bytes read from one file (uncompressed, for a zip entry). Past it: an error.
    pub max_file_bytes: u64,
    /// Bytes of one row. Past it: an error (a line that never ends, a quote left open
    /// that swallows the rest of the file, a zip of NULs).
    pub max_record_bytes: u64,
    /// Characters in one kept cell (one item, for a list cell such as
    /// `orgSourcedIds`). Past it the row is skipped. No name, email, id or title comes
    /// near 1 024 characters (an email is at most 254); a longer cell is damage.
    pub max_cell_chars: usize,
}

impl Default for CsvLimits {
    fn default() -> Self {
        CsvLimits {
            max_file_bytes: DEFAULT_MAX_UNCOMPRESSED,
            max_record_bytes: 1 << 20,
            max_cell_chars: 1024,
        }
    }
}

/// The largest `manifest.csv` read: it holds a few dozen short lines.
const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// Columns holding a comma-separated list: their cells may be long (a district
/// administrator in every school), so the cell limit applies to each item.
const LIST_COLUMNS: &[&str] = &[
    "orgSourcedIds",
    "agentSourcedIds",
    "grades",
    "userIds",
    "termSourcedIds",
    "subjects",
    "subjectCodes",
    "periods",
    "resourceSourcedIds",
];

/// The settings that raise the limits, as the errors name them.
const FILE_LIMIT_HINT: &str = "if the file is genuine, raise `max_file_mb` under [source.limits]";
const RECORD_LIMIT_HINT: &str =
    "if the row is genuine, raise `max_record_kb` under [source.limits]";

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
    #[error("{file}: more than {} uncompressed; refusing to read further ({hint})", human_size(*.limit))]
    TooLarge {
        file: String,
        limit: u64,
        hint: &'static str,
    },
    #[error(
        "{file} line {line}: a row longer than {}: the file is damaged, or a quote left open swallowed the lines after it; refusing to read further ({hint})",
        human_size(*.limit)
    )]
    RowTooLong {
        file: String,
        line: u64,
        limit: u64,
        hint: &'static str,
    },
}

/// `8 GiB`, `1 MiB`, `512 KiB`, or bytes.
fn human_size(bytes: u64) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{} {unit}", bytes >> shift);
        }
    }
    format!("{bytes} bytes")
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
    limits: CsvLimits,
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
        CsvPackage::open_with(path, CsvLimits::default())
    }

    /// [`CsvPackage::open_with`] with the default limits but bytes per file.
    pub fn open_with_limit(path: &Path, max_uncompressed: u64) -> Result<CsvPackage, PackageError> {
        CsvPackage::open_with(
            path,
            CsvLimits {
                max_file_bytes: max_uncompressed,
                ..CsvLimits::default()
            },
        )
    }

    /// Opens a zip or folder, reading only `manifest.csv` (and listing the files); every
    /// later read stays within `limits`.
    pub fn open_with(path: &Path, limits: CsvLimits) -> Result<CsvPackage, PackageError> {
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
            limits,
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
        let mut report = CollectionReport::new(T::COLLECTION, coverage);
        report.pages = 1;
        let mut context = T::load_context(self, &mut report)?;
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
                    note_blank_required(record, Format::Csv, version);
                    report.saw(record.base(), || format!("{file} line {line}: "));
                    sink(record);
                }
                Row::Skipped(problem) => {
                    report.skipped += 1;
                    report.problem(problem);
                }
                Row::Problem(problem) => report.problem(problem),
            },
        )?;
        self.warnings.extend(header_warnings);
        report.complete = report.problems.is_empty();
        Ok(report)
    }

    /// Runs `f` over the bytes of `file`, at most `max_bytes` of them (`hint` says how to
    /// raise that), or returns `None` when the package lacks the file.
    fn with_entry<R>(
        &self,
        file: &str,
        max_bytes: u64,
        hint: &'static str,
        f: impl FnOnce(&mut dyn Read) -> Result<R, PackageError>,
    ) -> Result<Option<R>, PackageError> {
        let io_err = |source| PackageError::Io {
            path: format!("{}/{file}", self.display),
            source,
        };
        let too_large = || PackageError::TooLarge {
            file: file.to_owned(),
            limit: max_bytes,
            hint,
        };
        match &self.storage {
            Storage::Dir(dir) => match File::open(dir.join(file)) {
                Ok(fh) => {
                    if fh.metadata().map_err(io_err)?.len() > max_bytes {
                        return Err(too_large());
                    }
                    f(&mut Capped::new(fh, max_bytes, hint)).map(Some)
                }
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
                if entry.size() > max_bytes {
                    return Err(too_large());
                }
                // The declared size can lie: cap what is actually inflated too.
                f(&mut Capped::new(&mut entry, max_bytes, hint)).map(Some)
            }
        }
    }

    fn read_manifest(&mut self, csv_names: &[&str]) -> Result<Manifest, PackageError> {
        let mut props: Vec<(u64, String, String)> = Vec::new();
        self.raw_rows("manifest.csv", MAX_MANIFEST_BYTES, |line, cells| {
            let name = cells.first().map(|s| s.trim()).unwrap_or("");
            let value = cells.get(1).map(|s| s.trim()).unwrap_or("");
            if line > 1 && !name.is_empty() {
                props.push((line, name.to_owned(), value.to_owned()));
            }
            true
        })?;
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
        if csv_names.contains(&"users") {
            // The header alone: the first row.
            self.raw_rows("users.csv", self.limits.max_file_bytes, |_, cells| {
                header = cells.iter().map(|c| c.to_string()).collect();
                false
            })?;
        }
        Ok(if header.iter().any(|h| h == "role") || header.is_empty() {
            Version::V1_1
        } else {
            Version::V1_2
        })
    }

    /// Every row of a small file as strings (the manifest), with its line number, until
    /// `each` answers `false`.
    fn raw_rows(
        &self,
        file: &str,
        max_bytes: u64,
        mut each: impl FnMut(u64, &[&str]) -> bool,
    ) -> Result<(), PackageError> {
        let hint = if max_bytes == MAX_MANIFEST_BYTES {
            "a manifest holds a few dozen short lines: is this the right file?"
        } else {
            FILE_LIMIT_HINT
        };
        let max_record = self.limits.max_record_bytes;
        self.with_entry(file, max_bytes, hint, |reader| {
            let mut rdr = csv_reader(RowBudget::new(reader, max_record));
            let mut rec = csv::ByteRecord::new();
            loop {
                if !next_row(&mut rdr, &mut rec, file, max_record)? {
                    break;
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
                if !each(line, &cells) {
                    break;
                }
            }
            Ok(())
        })?;
        Ok(())
    }

    /// Streams typed rows of one file, refilling one record in place. A row that cannot
    /// be trusted comes as [`Row::Skipped`], a problem with the file as a whole as
    /// [`Row::Problem`] (see the module's policy on broken rows).
    fn rows<T: CsvRecord>(
        &self,
        file: &str,
        required: &[&str],
        known: &'static [&'static str],
        warnings: &mut Vec<String>,
        mut each: impl FnMut(Row<'_, T>),
    ) -> Result<(), PackageError> {
        let limits = self.limits;
        let read = self.with_entry(file, limits.max_file_bytes, FILE_LIMIT_HINT, |reader| {
            let mut rdr = csv_reader(RowBudget::new(reader, limits.max_record_bytes));
            let mut row = csv::ByteRecord::new();
            if !next_row(&mut rdr, &mut row, file, limits.max_record_bytes)? {
                return Err(PackageError::Malformed {
                    file: file.to_owned(),
                    line: 1,
                    detail: "the file is empty (no header row)".into(),
                });
            }
            let header_line = row.position().map_or(1, |p| p.line());
            let header: Option<Vec<&str>> = row_text(&row).and_then(|text| {
                (0..row.len())
                    .map(|i| row.range(i).and_then(|r| text.get(r)))
                    .collect()
            });
            let Some(header) = header else {
                return Err(not_utf8(file, header_line, &row, &[]));
            };
            let mut columns: Vec<Column<T>> = Vec::with_capacity(header.len());
            let mut header_names = Vec::with_capacity(header.len());
            let mut first_of: HashMap<String, usize> = HashMap::with_capacity(header.len());
            for (i, raw) in header.iter().enumerate() {
                let name = if i == 0 {
                    raw.trim_start_matches('\u{feff}')
                } else {
                    raw
                }
                .trim();
                header_names.push(name.to_owned());
                if !name.is_empty() {
                    if let Some(&first) = first_of.get(name) {
                        // Which of the two is right cannot be known: rows where they
                        // differ are skipped, and the collection is not complete.
                        each(Row::Problem(format!(
                            "{file} line {header_line}: column `{name}` appears twice (columns {} and {}); rows whose two `{name}` cells differ are skipped",
                            first + 1,
                            i + 1
                        )));
                        columns.push(match columns.get(first) {
                            Some(Column::Ignored) | None => Column::Ignored,
                            Some(_) => Column::Duplicate(first),
                        });
                        continue;
                    }
                    first_of.insert(name.to_owned(), i);
                }
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
            drop(first_of);
            for req in required {
                if !header_names.iter().any(|h| h == req) {
                    return Err(PackageError::MissingColumn {
                        file: file.to_owned(),
                        column: (*req).to_owned(),
                        found: header_names.join(","),
                    });
                }
            }
            let width = columns.len();
            // A header may end in empty names (`…,orgSourcedId,,`) that its rows leave
            // out: a row needs cells up to the last named column, and no more than the
            // header has.
            let needed = header_names
                .iter()
                .rposition(|h| !h.is_empty())
                .map_or(0, |i| i + 1);
            // The columns a row is read through: the record's own (and whether each
            // holds a list), then extensions, then second copies of a column.
            let mut fields: Vec<(usize, &'static str, Setter<T>, bool)> = Vec::new();
            let mut extension_columns: Vec<(usize, &str)> = Vec::new();
            let mut duplicates: Vec<(usize, usize)> = Vec::new();
            for (i, column) in columns.iter().enumerate() {
                match column {
                    Column::Field(name, set) => {
                        fields.push((i, name, *set, LIST_COLUMNS.contains(name)))
                    }
                    Column::Extension(name) => extension_columns.push((i, name)),
                    Column::Duplicate(first) => duplicates.push((i, *first)),
                    Column::Ignored => {}
                }
            }
            let column_name = |i: usize| -> String {
                header_names
                    .get(i)
                    .filter(|h| !h.is_empty())
                    .cloned()
                    .unwrap_or_else(|| format!("#{}", i + 1))
            };
            let mut record = T::default();
            let mut ids = IdHashes::default();
            // Extension cells left out of the current row.
            let mut dropped: Vec<usize> = Vec::new();
            loop {
                if !next_row(&mut rdr, &mut row, file, limits.max_record_bytes)? {
                    break;
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
                // Every cell is cut out, which checks it starts and ends on a character
                // boundary (see `row_text`); a missing cell is empty.
                let cell = |i: usize| match row.range(i) {
                    Some(r) => text
                        .get(r)
                        .ok_or_else(|| not_utf8(file, line, &row, &header_names)),
                    None => Ok(""),
                };
                for i in 0..row.len() {
                    cell(i)?;
                }

                // A line break inside a value (one at either end is trimmed like a
                // blank): no OneRoster column holds one, so it is a quote left open that
                // swallowed the lines after it into this row, whatever column it is in.
                if text.as_bytes().contains(&b'\n')
                    && let Some((at, value)) = (0..row.len()).find_map(|i| {
                        let value = lenient::trim(cell(i).ok()?);
                        value.contains('\n').then_some((i, value))
                    })
                {
                    // Line breaks at the very end (a quote left open to the end of the
                    // file) start no line of their own.
                    let last =
                        line + text.trim_end().bytes().filter(|b| *b == b'\n').count() as u64;
                    let swallowed = value
                        .split_once('\n')
                        .is_some_and(|(_, after)| after.contains(','));
                    each(Row::Skipped(if swallowed {
                        format!(
                            "{file} lines {line}–{last}: column `{}` runs over several lines: a quote was probably left open and swallowed the rows after it; those lines are skipped",
                            column_name(at)
                        )
                    } else {
                        format!(
                            "{file} lines {line}–{last}: column `{}` holds a line break, which no OneRoster column may; row skipped",
                            column_name(at)
                        )
                    }));
                    continue;
                }
                if row.len() < needed || row.len() > width {
                    let why = if row.len() < needed {
                        "the row is cut short"
                    } else {
                        "probably a value with a comma that is not quoted"
                    };
                    each(Row::Skipped(format!(
                        "{file} line {line}: {} cells where the header has {width} ({why}); row skipped",
                        row.len()
                    )));
                    continue;
                }

                let mut record_warnings = std::mem::take(&mut record.base_mut().warnings);
                record_warnings.clear();
                let mut record_findings = std::mem::take(&mut record.base_mut().findings);
                record_findings.clear();
                let mut extensions = std::mem::take(&mut record.base_mut().extensions);
                extensions.clear();
                dropped.clear();
                let mut pending = T::Pending::default();
                let mut refused: Option<String> = None;

                // Control characters, looked for in the whole row at once (a CRLF row
                // ends in `\r`), then cell by cell when there is one.
                let body = text.strip_suffix('\r').unwrap_or(text);
                if has_control(body.as_bytes()) {
                    for (i, column) in columns.iter().enumerate().take(row.len()) {
                        let Some((at, c)) = first_control(lenient::trim(cell(i)?)) else {
                            continue;
                        };
                        let what =
                            format!("a control character (U+{:04X}) at character {at}", c as u32);
                        match column {
                            Column::Field(name, _) => {
                                refused = Some(format!(
                                    "{file} line {line}, column `{name}`: {what}; row skipped"
                                ));
                                break;
                            }
                            Column::Extension(name) => {
                                dropped.push(i);
                                record_warnings
                                    .push(format!("column `{name}`: {what}; value left out"));
                            }
                            Column::Duplicate(_) | Column::Ignored => {}
                        }
                    }
                }
                if refused.is_none() {
                    refused = duplicates.iter().find_map(|(i, first)| {
                        let (a, b) = (cell(*i).ok()?, cell(*first).ok()?);
                        (lenient::trim(a) != lenient::trim(b)).then(|| {
                            format!(
                                "{file} line {line}: the two `{}` columns hold different values; row skipped",
                                column_name(*first)
                            )
                        })
                    });
                }
                // Every field is visited, empty or missing cells too: the record is reused,
                // so each setter writes its field whatever the cell holds. A refused row
                // leaves the record half-written; the next row overwrites all of it.
                if refused.is_none() {
                    for (i, name, set, list) in &fields {
                        let value = lenient::trim(cell(*i)?);
                        if let Some(n) = too_long(value, *list, limits.max_cell_chars) {
                            refused = Some(format!(
                                "{file} line {line}, column `{name}`: {} of {n} characters, more than the {} allowed (`max_cell_chars` under [source.limits]); row skipped",
                                if *list { "an item" } else { "a value" },
                                limits.max_cell_chars
                            ));
                            break;
                        }
                        let mut c = Cell {
                            column: name,
                            value,
                            warnings: &mut record_warnings,
                            findings: &mut record_findings,
                        };
                        set(&mut record, &mut c, &mut pending);
                    }
                }
                if let Some(problem) = refused {
                    each(Row::Skipped(problem));
                    continue;
                }
                for (i, name) in &extension_columns {
                    let value = cell(*i)?.trim_end_matches('\r');
                    if value.is_empty() || dropped.contains(i) {
                        continue;
                    }
                    if let Some(n) = too_long(value, false, limits.max_cell_chars) {
                        record_warnings.push(format!(
                            "column `{name}`: {n} characters, more than the {} allowed; value left out",
                            limits.max_cell_chars
                        ));
                        continue;
                    }
                    extensions.push(((*name).to_owned(), json_string(value)));
                }
                let base = record.base_mut();
                base.warnings = record_warnings;
                base.findings = record_findings;
                base.extensions = extensions;
                if base.sourced_id.is_empty() {
                    each(Row::Skipped(format!(
                        "{file} line {line}: no sourcedId; row skipped"
                    )));
                    continue;
                }
                if !ids.insert(&base.sourced_id) {
                    each(Row::Skipped(format!(
                        "{file} line {line}: sourcedId `{}` is on an earlier row too; row skipped (the earlier row is kept)",
                        base.sourced_id
                    )));
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
    /// A row not handed on, and why (file and line included): the collection is not
    /// complete.
    Skipped(String),
    /// A problem with the file that spoils completeness without skipping a row here.
    Problem(String),
}

enum Column<T: CsvRecord> {
    /// A column of the record type, with the function that reads it.
    Field(&'static str, Setter<T>),
    Extension(String),
    /// A second column of the name of the column at this index.
    Duplicate(usize),
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
                .parsed("a status (active, tobedeleted)", Status::read)
                .unwrap_or_default();
        }),
        "dateLastModified" => ("dateLastModified", |s, c, _| {
            s.base_mut().date_last_modified =
                c.parsed("an ISO-8601 date-time", lenient::read_timestamp);
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

/// One cell being read, and where its problems and findings go.
pub struct Cell<'a> {
    column: &'static str,
    value: &'a str,
    warnings: &'a mut Vec<String>,
    findings: &'a mut Vec<Finding>,
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

    /// The cell read by `read`; an empty cell is `None` without a warning, an unreadable
    /// one `None` with one, a lenient one is noted.
    fn parsed<T: std::fmt::Display>(
        &mut self,
        expected: &str,
        read: impl FnOnce(&str) -> Option<lenient::Read<T>>,
    ) -> Option<T> {
        if self.value.is_empty() {
            return None;
        }
        match read(self.value) {
            Some(r) => Some(self.noted(r)),
            None => {
                self.warnings.push(format!(
                    "column `{}`: '{}' is not {expected}; ignored",
                    self.column, self.value
                ));
                None
            }
        }
    }

    /// The value, noting it when it was read leniently.
    fn noted<T: std::fmt::Display>(&mut self, r: lenient::Read<T>) -> T {
        if !r.standard {
            self.findings
                .push(Finding::lenient(self.column, self.value, &r.value));
        }
        r.value
    }

    fn boolean(&mut self) -> Option<bool> {
        self.parsed("a boolean", lenient::read_bool)
    }

    /// A boolean the standard requires: a blank cell is noted and takes `default`.
    fn required_boolean(&mut self, default: bool) -> bool {
        if self.value.is_empty() {
            self.findings.push(Finding::blank(
                self.column,
                if default { "true" } else { "false" },
            ));
        }
        self.boolean().unwrap_or(default)
    }

    fn date(&mut self) -> Option<jiff::civil::Date> {
        self.parsed("a date (YYYY-MM-DD)", lenient::read_date)
    }

    /// An open enum: kept whatever it says, `None` when empty.
    fn open<T: std::fmt::Display>(
        &mut self,
        read: impl FnOnce(&str) -> lenient::Read<T>,
    ) -> Option<T> {
        if self.value.is_empty() {
            return None;
        }
        let r = read(self.value);
        Some(self.noted(r))
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
    /// Loads the context; problems in the files it reads (a broken `roles.csv`) spoil
    /// `report`, the completeness of this type's collection.
    fn load_context(
        pkg: &mut CsvPackage,
        report: &mut CollectionReport,
    ) -> Result<Self::Context, PackageError>;
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

    fn load_context(
        pkg: &mut CsvPackage,
        report: &mut CollectionReport,
    ) -> Result<Self::Context, PackageError> {
        let mut roles: HashMap<String, Vec<RoleAssignment>> = HashMap::new();
        let has_roles = matches!(
            pkg.manifest.files.get("roles"),
            Some(FileMode::Bulk | FileMode::Delta)
        );
        if pkg.version() == Version::V1_2 && has_roles {
            let mut warnings = Vec::new();
            pkg.rows::<RoleRow>(
                "roles.csv",
                &["userSourcedId", "role"],
                RoleRow::COLUMNS,
                &mut warnings,
                |row| match row {
                    Row::Record { record: r, .. } => {
                        report.note_findings(&r.base);
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
                    // A role row lost is a user with the wrong roles, or none: the
                    // users collection is not complete.
                    Row::Skipped(problem) => {
                        report.skipped += 1;
                        report.problem(problem);
                    }
                    Row::Problem(problem) => report.problem(problem),
                },
            )?;
            pkg.warnings.extend(warnings);
        }
        Ok(roles)
    }

    fn setter(column: &str) -> Option<Setter<Self>> {
        let f: Setter<Self> = match column {
            "enabledUser" => |s, c, _| s.enabled_user = c.required_boolean(true),
            "orgSourcedIds" => |s, c, p| {
                c.list_into(&mut s.orgs);
                p.orgs_column = true;
            },
            "role" => |_, c, p| p.legacy_role = c.open(Role::read),
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
    fn load_context(_: &mut CsvPackage, _: &mut CollectionReport) -> Result<(), PackageError> {
        Ok(())
    }
    fn setter(column: &str) -> Option<Setter<Self>> {
        let f: Setter<Self> = match column {
            "userSourcedId" => |s, c, _| c.opt_into(&mut s.user),
            "roleType" => |s, c, _| s.role_type = c.open(RoleType::read),
            "role" => |s, c, _| s.role = c.open(Role::read),
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
            fn load_context(_: &mut CsvPackage, _: &mut CollectionReport) -> Result<(), PackageError> {
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
    "type" => |s, c| s.org_type = c.open(OrgType::read),
    "identifier" => |s, c| c.opt_into(&mut s.identifier),
    "parentSourcedId" => |s, c| c.opt_into(&mut s.parent),
});

simple_csv_record!(AcademicSession, required: &["sourcedId", "title", "type"], {
    "title" => |s, c| c.text_into(&mut s.title),
    "type" => |s, c| s.session_type = c.open(SessionType::read),
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
    "classType" => |s, c| s.class_type = c.open(ClassType::read),
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
    "role" => |s, c| s.role = c.open(Role::read),
    "primary" => |s, c| s.primary = c.boolean(),
    "beginDate" => |s, c| s.begin_date = c.date(),
    "endDate" => |s, c| s.end_date = c.date(),
});

simple_csv_record!(Demographic, required: &["sourcedId"], {
    "birthDate" => |s, c| s.birth_date = c.date(),
    "sex" => |s, c| c.opt_into(&mut s.sex),
});

/// What the csv reader buffers at once.
const READ_BUFFER: usize = 256 * 1024;

fn csv_reader<R: Read>(r: R) -> csv::Reader<R> {
    // `\n` alone ends a record: with CRLF the csv crate reports the line *before* each
    // record, and our errors must point at the right line. The `\r` left at the end of
    // the last cell is trimmed with the rest of the white space.
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .terminator(csv::Terminator::Any(b'\n'))
        // The csv reader buffers on its own: no BufReader (a second copy of every byte).
        .buffer_capacity(READ_BUFFER)
        .from_reader(r)
}

/// Reads the next row into `row`; `false` at the end of the file. A row longer than
/// `max_row` bytes is an error, whether [`RowBudget`] stopped it on the way in or it
/// arrived whole.
fn next_row<R: Read>(
    rdr: &mut csv::Reader<RowBudget<R>>,
    row: &mut csv::ByteRecord,
    file: &str,
    max_row: u64,
) -> Result<bool, PackageError> {
    let starts = rdr.position().line();
    let more = rdr
        .read_byte_record(row)
        .map_err(|e| csv_error(file, starts, e))?;
    rdr.get_mut().used = 0;
    if more && row.as_slice().len() as u64 > max_row {
        return Err(PackageError::RowTooLong {
            file: file.to_owned(),
            line: row.position().map_or(starts, |p| p.line()),
            limit: max_row,
            hint: RECORD_LIMIT_HINT,
        });
    }
    Ok(more)
}

/// The error for a failed read of the row starting at `line`.
fn csv_error(file: &str, line: u64, e: csv::Error) -> PackageError {
    let line = e.position().map_or(line, |p| p.line());
    match e.into_kind() {
        csv::ErrorKind::Io(source) => {
            let inner = source.get_ref();
            if let Some(c) = inner.and_then(|i| i.downcast_ref::<CapExceeded>()) {
                return PackageError::TooLarge {
                    file: file.to_owned(),
                    limit: c.limit,
                    hint: c.hint,
                };
            }
            if let Some(r) = inner.and_then(|i| i.downcast_ref::<RowTooLong>()) {
                return PackageError::RowTooLong {
                    file: file.to_owned(),
                    line,
                    limit: r.0,
                    hint: RECORD_LIMIT_HINT,
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

/// C0 control bytes but tab, and DEL: never in a name, an id or a date. (Line breaks
/// are found first, as the sign of a quote left open.)
#[inline]
fn is_control(b: u8) -> bool {
    // `&` and `|`, not `&&` and `||`: no branches, so `has_control` vectorises.
    ((b < 0x20) & (b != b'\t')) | (b == 0x7f)
}

/// Whether `bytes` hold a byte [`is_control`] refuses. Every row is scanned: in blocks,
/// without a branch per byte, it costs a fraction of what a byte-at-a-time loop did.
fn has_control(bytes: &[u8]) -> bool {
    bytes
        .chunks(64)
        .any(|block| block.iter().fold(false, |found, &b| found | is_control(b)))
}

/// The first control character of a cell: its position (from 1) and itself.
fn first_control(s: &str) -> Option<(usize, char)> {
    if !has_control(s.as_bytes()) {
        return None;
    }
    s.chars()
        .enumerate()
        .find(|(_, c)| c.is_ascii() && is_control(*c as u8))
        .map(|(i, c)| (i + 1, c))
}

/// The characters of a cell (of its longest item, for a list) when more than `max`.
fn too_long(value: &str, list: bool, max: usize) -> Option<usize> {
    // A character is at least one byte: most cells are decided without counting.
    if value.len() <= max {
        return None;
    }
    let count = |s: &str| s.chars().count();
    let n = if list {
        lenient::list_items(value).map(count).max().unwrap_or(0)
    } else {
        count(value)
    };
    (n > max).then_some(n)
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
struct CapExceeded {
    limit: u64,
    hint: &'static str,
}

impl std::fmt::Display for CapExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "more than {} bytes", self.limit)
    }
}

impl std::error::Error for CapExceeded {}

/// A reader that fails once more than `limit` bytes have come through.
struct Capped<R> {
    inner: R,
    left: u64,
    limit: u64,
    hint: &'static str,
}

impl<R> Capped<R> {
    fn new(inner: R, limit: u64, hint: &'static str) -> Self {
        Capped {
            inner,
            left: limit,
            limit,
            hint,
        }
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(io::Error::other(CapExceeded {
                limit: self.limit,
                hint: self.hint,
            }));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// The error a [`RowBudget`] raises: the row limit it enforces.
#[derive(Debug)]
struct RowTooLong(u64);

impl std::fmt::Display for RowTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a row longer than {} bytes", self.0)
    }
}

impl std::error::Error for RowTooLong {}

/// Counts the bytes the csv reader pulls while it reads one row ([`next_row`] resets
/// the count after each), and fails once they pass the row limit plus one buffer of
/// look-ahead. The csv crate grows a row for as long as it lasts, so a line that never
/// ends — a zip of NULs, a quote left open at the top of a big file — would otherwise
/// take all the memory there is.
struct RowBudget<R> {
    inner: R,
    used: u64,
    allowed: u64,
    limit: u64,
}

impl<R> RowBudget<R> {
    fn new(inner: R, limit: u64) -> Self {
        RowBudget {
            inner,
            used: 0,
            allowed: limit.saturating_add(READ_BUFFER as u64),
            limit,
        }
    }
}

impl<R: Read> Read for RowBudget<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.used += n as u64;
        if self.used > self.allowed {
            return Err(io::Error::other(RowTooLong(self.limit)));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_block_scan_finds_what_a_byte_loop_finds() {
        for b in 0..=255u8 {
            let refused = (b < 0x20 && b != b'\t') || b == 0x7f;
            assert_eq!(is_control(b), refused, "{b:#04x}");
            for at in [0, 5, 63, 64, 100] {
                let mut bytes = vec![b'a'; 130];
                bytes[at] = b;
                assert_eq!(has_control(&bytes), refused, "{b:#04x} at {at}");
            }
        }
        assert!(!has_control(b""));
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_size(8 << 30), "8 GiB");
        assert_eq!(human_size(1 << 20), "1 MiB");
        assert_eq!(human_size(1536 << 10), "1536 KiB");
        assert_eq!(human_size(1000), "1000 bytes");
    }

    #[test]
    fn cells_are_measured_in_characters_and_lists_by_item() {
        assert_eq!(too_long(&"é".repeat(10), false, 10), None);
        assert_eq!(too_long(&"é".repeat(11), false, 10), Some(11));
        let list = format!("{},{}", "a".repeat(10), "b".repeat(10));
        assert_eq!(too_long(&list, true, 10), None);
        assert_eq!(too_long(&list, false, 10), Some(21));
    }
}
