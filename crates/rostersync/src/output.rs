//! The one place the CLI writes to the terminal.
//!
//! Results go to stdout through a locked handle, never `println!` (which panics when the
//! reader has gone: `rostersync users list --json | head`). A closed pipe ends the
//! process at once, quietly, with exit code 0 — as ripgrep does: the reader took what it
//! wanted, and a shell with `pipefail` should not see a failure. Any other write failure
//! (a full disk) is an error on stderr and exit code 2. Notes and errors on stderr are best
//! effort: when stderr is gone there is nobody to tell.

use std::io::Write;

/// A line on stdout (the command's result).
pub fn line(s: &str) {
    let mut out = std::io::stdout().lock();
    let written = out
        .write_all(s.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    if let Err(e) = written {
        stdout_failed(&e);
    }
}

/// A pretty-enough JSON document on stdout, written as it is encoded.
pub fn json<T: serde::Serialize>(value: &T) {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if let Err(e) = serde_json::to_writer_pretty(&mut out, value) {
        if e.is_io() {
            stdout_failed(&std::io::Error::from(e));
        }
        error(&format!("cannot encode the result as JSON: {e}"));
        return;
    }
    if let Err(e) = out.write_all(b"\n").and_then(|()| out.flush()) {
        stdout_failed(&e);
    }
}

/// Ends the process after a failed write to stdout: quietly with 0 when the reader is
/// gone, else with the reason and exit code 2.
fn stdout_failed(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    error(&format!(
        "cannot write the result to standard output: {e} (check the disk or the file it goes to)"
    ));
    std::process::exit(2);
}

/// Best effort: a line on stderr.
fn to_stderr(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

/// A note for a person, on stderr (stdout stays the command's result).
pub fn note(message: &str) {
    to_stderr(&format!("{message}\n"));
}

/// An error for a person, on stderr.
pub fn error(message: &str) {
    to_stderr(&format!("error: {message}\n"));
}

/// A progress line on stderr, rewritten in place.
pub fn progress(message: &str) {
    to_stderr(&format!("\r\x1b[2K{message}"));
}

/// Ends the progress line.
pub fn progress_done() {
    to_stderr("\r\x1b[2K");
}

/// How a long command reports an engine's progress: a line on stderr rewritten in place
/// when stderr is a terminal, else log lines. [`Progress::finish`] ends the line.
pub struct Progress {
    terminal: bool,
}

impl Progress {
    pub fn new() -> Progress {
        Progress {
            terminal: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        }
    }

    /// Shows one step.
    pub fn show(&self, p: &engine::Progress) {
        if self.terminal {
            progress(&p.to_string());
        } else {
            tracing::info!("{p}");
        }
    }

    /// Ends the progress line (when there is one).
    pub fn finish(&self) {
        if self.terminal {
            progress_done();
        }
    }
}

/// A list on stdout written row by row through one buffer: a JSON array (one element at
/// a time, so a list of any length costs the memory of one row) or lines of text.
pub struct List {
    out: std::io::BufWriter<std::io::StdoutLock<'static>>,
    json: bool,
    first: bool,
    /// What closes the document after the array (`}` when the array is a field).
    suffix: &'static str,
}

impl List {
    /// Starts the list (`[` for JSON).
    pub fn new(json: bool) -> List {
        let mut list = List {
            out: std::io::BufWriter::new(std::io::stdout().lock()),
            json,
            first: true,
            suffix: "",
        };
        if json {
            list.write(b"[");
        }
        list
    }

    /// A JSON array inside a document: `prefix` (the document up to the array, such as
    /// `{"id":1,"items":`), the array, then `suffix` (`}`).
    pub fn inside(prefix: &str, suffix: &'static str) -> List {
        let mut list = List {
            out: std::io::BufWriter::new(std::io::stdout().lock()),
            json: true,
            first: true,
            suffix,
        };
        list.write(prefix.as_bytes());
        list.write(b"[");
        list
    }

    fn write(&mut self, bytes: &[u8]) {
        if let Err(e) = self.out.write_all(bytes) {
            stdout_failed(&e);
        }
    }

    /// One element of the JSON array.
    pub fn item<T: serde::Serialize>(&mut self, value: &T) {
        let sep: &[u8] = if self.first { b"\n" } else { b",\n" };
        self.first = false;
        self.write(sep);
        if let Err(e) = serde_json::to_writer_pretty(&mut self.out, value) {
            if e.is_io() {
                stdout_failed(&std::io::Error::from(e));
            }
            error(&format!("cannot encode the result as JSON: {e}"));
        }
    }

    /// One line of text.
    pub fn line(&mut self, s: &str) {
        self.write(s.as_bytes());
        self.write(b"\n");
    }

    /// Ends the list (`]` for JSON) and flushes it.
    pub fn finish(self) {
        let suffix = self.suffix;
        self.finish_with(suffix);
    }

    /// [`List::finish`], the document closed by `suffix` (known only once the list is
    /// written) instead of the one it was started with.
    pub fn finish_with(mut self, suffix: &str) {
        if self.json {
            let end: &[u8] = if self.first { b"]" } else { b"\n]" };
            self.write(end);
            self.write(suffix.as_bytes());
            self.write(b"\n");
        }
        if let Err(e) = self.out.flush() {
            stdout_failed(&e);
        }
    }
}

/// A run's counts on one line, as `sync` and `runs show` print them.
pub fn counts_line(c: &rostersync_core::plan::Counts) -> String {
    let before = match c.skipped_listed_before {
        0 => String::new(),
        n => format!(" ({n} as before, listed by an earlier run)"),
    };
    format!(
        "seen {}  created {}  updated {}  unchanged {}  skipped {}{before}  linked {}  deactivated {}  reactivated {}  errors {}",
        c.seen,
        c.created,
        c.updated,
        c.unchanged,
        c.skipped,
        c.linked,
        c.deactivated,
        c.reactivated,
        c.errors
    )
}

/// `value` as JSON (`null` in the unlikely case it cannot be encoded: a map with
/// non-string keys).
pub fn to_value<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}

/// A `--json` result: `value` serialised, with `fields` added when it is an object (as
/// every result is).
pub fn with_fields<T: serde::Serialize + ?Sized>(
    value: &T,
    fields: impl IntoIterator<Item = (&'static str, serde_json::Value)>,
) -> serde_json::Value {
    let mut doc = to_value(value);
    if let Some(obj) = doc.as_object_mut() {
        for (key, field) in fields {
            obj.insert(key.into(), field);
        }
    }
    doc
}

/// How a result names a run: `run 12`, or `dry run` when none was recorded.
pub fn run_label(run_id: Option<store::RunId>) -> String {
    run_id.map_or("dry run".to_owned(), |id| format!("run {id}"))
}

/// The safeguard trips of a sync's or push's outcome, a line each, then, for a held run,
/// how to approve or discard it (`not_done`: what the held run did not do, `applied` or
/// `sent`).
pub fn hold_lines(
    hold: &[rostersync_core::guard::Trip],
    dry_run: bool,
    status: store::RunStatus,
    run_id: Option<store::RunId>,
    not_done: &str,
) {
    for trip in hold {
        line(&format!(
            "{}: {}",
            if dry_run {
                "would be held"
            } else {
                match status {
                    store::RunStatus::Held => "held for approval",
                    // An approved run applied what the safeguard had stopped.
                    store::RunStatus::Succeeded => "approved past the safeguard",
                    // Holding or the approval failed: nothing was applied.
                    _ => "safeguard tripped",
                }
            },
            trip.detail
        ));
    }
    if status == store::RunStatus::Held
        && let Some(run) = run_id
    {
        line(&format!(
            "nothing was {not_done}: review it with `rostersync runs show {run}`, then `rostersync runs approve {run}` or `rostersync runs discard {run}`"
        ));
    }
}

/// The first lines of a long list (a plan's items, a dry push's requests), then how many
/// more `--json` shows.
pub fn first_lines<T>(items: &[T], show: impl Fn(&T) -> String) {
    let mut lines = FirstLines::default();
    for item in items {
        lines.take(|| show(item));
    }
    lines.print();
}

/// [`first_lines`] of a list that comes an item at a time and is never held whole (a dry
/// run's plan): the first lines kept, the rest counted.
#[derive(Default)]
pub struct FirstLines {
    lines: Vec<String>,
    more: u64,
}

impl FirstLines {
    const SHOWN: usize = 50;

    /// The next item, shown by `show` if it is among the first.
    pub fn take(&mut self, show: impl FnOnce() -> String) {
        if self.lines.len() < Self::SHOWN {
            self.lines.push(show());
        } else {
            self.more += 1;
        }
    }

    pub fn print(&self) {
        for l in &self.lines {
            line(l);
        }
        if self.more > 0 {
            line(&format!("  … and {} more (use --json for all)", self.more));
        }
    }
}
