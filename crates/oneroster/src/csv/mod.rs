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

mod package;
mod records;
mod rows;

pub use package::{
    CsvLimits, CsvPackage, DEFAULT_MAX_UNCOMPRESSED, FileMode, Manifest, PackageError,
};
pub use records::{Cell, CsvRecord, Setter, UserPending};
