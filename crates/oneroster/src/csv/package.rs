//! An opened package: its limits, errors, manifest and storage (zip or folder), and the
//! capped reader every file is read through.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::records::CsvRecord;
use super::rows::Row;
use crate::lenient::non_empty;
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
pub(super) const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// The settings that raise the limits, as the errors name them.
pub(super) const FILE_LIMIT_HINT: &str =
    "if the file is genuine, raise `max_file_mb` under [source.limits]";
pub(super) const RECORD_LIMIT_HINT: &str =
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
    pub(super) manifest: Manifest,
    pub(super) warnings: Vec<String>,
    pub(super) limits: CsvLimits,
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
                Row::Skipped(problem) => report.skip(problem),
                Row::Problem(problem) => report.problem(problem),
            },
        )?;
        self.warnings.extend(header_warnings);
        report.complete = report.problems.is_empty();
        Ok(report)
    }

    /// Runs `f` over the bytes of `file`, at most `max_bytes` of them (`hint` says how to
    /// raise that), or returns `None` when the package lacks the file.
    pub(super) fn with_entry<R>(
        &self,
        file: &str,
        max_bytes: u64,
        hint: &'static str,
        f: impl FnOnce(&mut (dyn Read + Send)) -> Result<R, PackageError>,
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
                let mut inflating = Inflating(&mut entry);
                f(&mut Capped::new(&mut inflating, max_bytes, hint)).map(Some)
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
pub(super) struct CapExceeded {
    pub(super) limit: u64,
    pub(super) hint: &'static str,
}

impl std::fmt::Display for CapExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "more than {} bytes", self.limit)
    }
}

impl std::error::Error for CapExceeded {}

/// A zip entry being inflated: an error reading it says what it means for the package.
struct Inflating<R>(R);

impl<R: Read> Read for Inflating<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|e| {
            let said = format!(
                "{e} (the zip could not be inflated: damaged or cut short; export the package again)"
            );
            io::Error::new(e.kind(), said)
        })
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_size(8 << 30), "8 GiB");
        assert_eq!(human_size(1 << 20), "1 MiB");
        assert_eq!(human_size(1536 << 10), "1536 KiB");
        assert_eq!(human_size(1000), "1000 bytes");
    }
}
