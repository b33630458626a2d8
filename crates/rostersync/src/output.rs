//! The one place the CLI writes to the terminal.
#![allow(clippy::print_stdout, clippy::print_stderr)]

/// A line on stdout (the command's result).
pub fn line(s: &str) {
    println!("{s}");
}

/// A pretty-enough JSON document on stdout.
pub fn json<T: serde::Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("error: cannot encode the result as JSON: {e}"),
    }
}

/// A note for a person, on stderr (stdout stays the command's result).
pub fn note(message: &str) {
    eprintln!("{message}");
}

/// An error for a person, on stderr.
pub fn error(message: &str) {
    eprintln!("error: {message}");
}

/// A progress line on stderr, rewritten in place.
pub fn progress(message: &str) {
    use std::io::Write;
    let mut err = std::io::stderr();
    let _ = write!(err, "\r\x1b[2K{message}");
    let _ = err.flush();
}

/// Ends the progress line.
pub fn progress_done() {
    eprint!("\r\x1b[2K");
}
