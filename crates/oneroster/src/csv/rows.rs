//! Rows of a package file: streaming them through the csv crate, the header's columns,
//! and the checks that skip a row the reader cannot trust.

use std::collections::HashMap;
use std::io::{self, Read};

use serde_json::value::RawValue;

use super::package::{
    CapExceeded, CsvPackage, FILE_LIMIT_HINT, MAX_MANIFEST_BYTES, PackageError, RECORD_LIMIT_HINT,
};
use super::records::{COMMON_COLUMNS, Cell, CsvRecord, Setter, common_setter};
use crate::ids::FirstIds;
use crate::lenient;

impl CsvPackage {
    /// Every row of a small file as strings (the manifest), with its line number, until
    /// `each` answers `false`.
    pub(super) fn raw_rows(
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
    pub(super) fn rows<T: CsvRecord>(
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
            let mut ids = FirstIds::default();
            // Extension cells left out of the current row.
            let mut dropped: Vec<usize> = Vec::new();
            std::thread::scope(|s| {
                let (batches, used) = split_on_a_thread(s, rdr, file, limits.max_record_bytes);
                for batch in batches {
                    let batch = batch?;
                    for row in &batch.rows[..batch.len] {
                        let line = row.position().map_or(0, |p| p.line());
                        // Checked as UTF-8 once per row, not once per cell (what `StringRecord`
                        // does when a row is not pure ASCII).
                        let Some(text) = row_text(row) else {
                            return Err(not_utf8(file, line, row, &header_names));
                        };
                        if row.len() == 1 && text.trim().is_empty() {
                            continue; // a blank line (its one cell is the whole text)
                        }
                        // Every cell is cut out, which checks it starts and ends on a character
                        // boundary (see `row_text`); a missing cell is empty.
                        let cell = |i: usize| match row.range(i) {
                            Some(r) => text
                                .get(r)
                                .ok_or_else(|| not_utf8(file, line, row, &header_names)),
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
                    // The splitting thread refills it; gone once the file is split.
                    let _ = used.send(batch);
                }
                Ok(())
            })
        })?;
        read.ok_or_else(|| PackageError::MissingFile {
            file: file.to_owned(),
            mode: "bulk".into(),
        })
    }
}

pub(super) enum Row<'r, T: CsvRecord> {
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

/// What the csv reader buffers at once.
const READ_BUFFER: usize = 256 * 1024;

/// Rows handed over at once: a channel's cost paid once per many rows, and few enough
/// that the two threads stay close.
const BATCH_ROWS: usize = 1024;

/// Rows split off a file: the first `len` of `rows` (the rest are storage to refill).
struct Batch {
    rows: Vec<csv::ByteRecord>,
    len: usize,
}

/// Splits the rest of a file into rows on a thread of its own and hands them over in
/// batches, whose storage comes back (the second channel) to be refilled: unzipping and
/// splitting are a quarter of reading the enrollments, and the second core is idle once
/// a full pull's links are read. The thread stops at the file's end, at its first error
/// (handed over last), or when the rows stop being taken (the receiver dropped).
fn split_on_a_thread<'scope, R: Read + Send + 'scope>(
    s: &'scope std::thread::Scope<'scope, '_>,
    mut rdr: csv::Reader<RowBudget<R>>,
    file: &'scope str,
    max_row: u64,
) -> (
    std::sync::mpsc::Receiver<Result<Batch, PackageError>>,
    std::sync::mpsc::Sender<Batch>,
) {
    let (full, batches) = std::sync::mpsc::sync_channel(2);
    let (used, refill) = std::sync::mpsc::channel::<Batch>();
    s.spawn(move || {
        loop {
            let mut batch = refill.try_recv().unwrap_or(Batch {
                rows: Vec::new(),
                len: 0,
            });
            batch.len = 0;
            let mut end = false;
            while batch.len < BATCH_ROWS {
                if batch.rows.len() == batch.len {
                    batch.rows.push(csv::ByteRecord::new());
                }
                match next_row(&mut rdr, &mut batch.rows[batch.len], file, max_row) {
                    Ok(true) => batch.len += 1,
                    Ok(false) => {
                        end = true;
                        break;
                    }
                    Err(e) => {
                        let _ = full.send(Err(e));
                        return;
                    }
                }
            }
            if (batch.len > 0 && full.send(Ok(batch)).is_err()) || end {
                return;
            }
        }
    });
    (batches, used)
}

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
    fn cells_are_measured_in_characters_and_lists_by_item() {
        assert_eq!(too_long(&"é".repeat(10), false, 10), None);
        assert_eq!(too_long(&"é".repeat(11), false, 10), Some(11));
        let list = format!("{},{}", "a".repeat(10), "b".repeat(10));
        assert_eq!(too_long(&list, true, 10), None);
        assert_eq!(too_long(&list, false, 10), Some(21));
    }
}
