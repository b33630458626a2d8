//! `rostersync backup FILE` and `rostersync restore FILE`: the whole directory to one
//! portable, checksummed file and back into an empty installation, on either backend
//! (the format and the rules are the store's; see docs/cli.md).

use std::fs::File;
use std::io::{BufReader, BufWriter, IsTerminal};
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use jiff::Timestamp;
use store::{BackupInfo, BackupProgress};

use crate::env::{StateArgs, store_failure};
use crate::{Failure, output};

/// Read and write buffers for the backup file.
const BUFFER: usize = 1 << 20;

#[derive(Args)]
pub struct BackupArgs {
    /// The file to write (refused when it exists, unless --force).
    file: PathBuf,
    /// Replace FILE when it exists.
    #[arg(long)]
    force: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct RestoreArgs {
    /// A file `rostersync backup` wrote.
    file: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// The progress line on a terminal, the log otherwise.
fn progress_reporter() -> (bool, impl FnMut(&BackupProgress<'_>)) {
    let show = std::io::stderr().is_terminal();
    (show, move |p: &BackupProgress<'_>| {
        if show {
            output::progress(&p.to_string());
        } else {
            tracing::info!("{p}");
        }
    })
}

fn megabytes(bytes: u64) -> String {
    let mb = bytes as f64 / 1_000_000.0;
    format!("{mb:.1} MB")
}

/// `FILE.partial`, where a backup is written before it is renamed into place.
fn partial_of(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Creates `path` new and owner-only: a backup holds student data and password hashes.
/// Whatever was at `path` (a partial file an earlier backup left, or a link) is removed
/// first, never opened: a file made beforehand by someone else, or a link to one, would
/// keep its owner and mode, and the finished backup is this file renamed.
fn create_private(path: &Path) -> std::io::Result<File> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)
}

pub fn backup(state_args: &StateArgs, args: BackupArgs) -> Result<u8, Failure> {
    if args.file.exists() && !args.force {
        return Err(Failure::config(format!(
            "{} exists: choose another file, or pass --force to replace it",
            args.file.display()
        )));
    }
    let state = state_args.open()?;
    let started = Instant::now();
    let partial = partial_of(&args.file);
    let write_failed =
        |e: std::io::Error| Failure::config(format!("cannot write {}: {e}", partial.display()));
    let file = create_private(&partial).map_err(write_failed)?;
    let (shown, mut progress) = progress_reporter();
    let mut out = BufWriter::with_capacity(BUFFER, file);
    let written = state
        .store
        .backup(&mut out, Timestamp::now(), &mut progress)
        .map_err(store_failure)
        .and_then(|summary| {
            let file = out.into_inner().map_err(|e| write_failed(e.into_error()))?;
            file.sync_all().map_err(write_failed)?;
            std::fs::rename(&partial, &args.file).map_err(|e| {
                Failure::config(format!(
                    "cannot rename {} to {}: {e}",
                    partial.display(),
                    args.file.display()
                ))
            })?;
            Ok(summary)
        });
    if shown {
        output::progress_done();
    }
    let summary = match written {
        Ok(s) => s,
        Err(f) => {
            let _ = std::fs::remove_file(&partial);
            return Err(f);
        }
    };
    crate::doctor_cmd::record_backup(&state.store, &args.file);
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        output::json(&output::with_fields(
            &summary,
            [
                ("file", args.file.display().to_string().into()),
                ("seconds", seconds.into()),
            ],
        ));
    } else {
        output::line(&format!(
            "backed up {} rows of {} tables to {} ({}) in {seconds:.1}s",
            summary.rows,
            summary.tables,
            args.file.display(),
            megabytes(summary.bytes)
        ));
        if let Some(f) = &summary.key_fingerprint {
            output::line(&format!(
                "its secrets need this installation's master key (fingerprint {f}): keep a copy of the key apart from the backup"
            ));
        }
    }
    Ok(0)
}

pub fn restore(state_args: &StateArgs, args: RestoreArgs) -> Result<u8, Failure> {
    let started = Instant::now();
    let file = File::open(&args.file).map_err(|e| {
        Failure::config(format!(
            "cannot open the backup {}: {e}",
            args.file.display()
        ))
    })?;
    let mut input = BufReader::with_capacity(BUFFER, file);
    let (shown, mut progress) = progress_reporter();
    let finish = |shown: bool| {
        if shown {
            output::progress_done();
        }
    };
    // The whole file is checked, and the key against it, before anything is made; the
    // restore then reads it a second (and last) time.
    let info: BackupInfo = store::verify_backup(&mut input, &mut progress).map_err(|e| {
        finish(shown);
        store_failure(e)
    })?;
    match (state_args.given_key()?, info.header.key_fingerprint()) {
        (Some(key), _) => info.header.check_key(&key).map_err(|e| {
            finish(shown);
            store_failure(e)
        })?,
        (None, Some(fingerprint)) => {
            finish(shown);
            return Err(Failure::config(format!(
                "no master key: this backup's secrets are sealed with the master key of the installation it came from (fingerprint {fingerprint}): copy that installation's master.key to {}, or set ROSTERSYNC_MASTER_KEY, then restore again",
                state_args.data_dir.join("master.key").display()
            )));
        }
        // A database never initialised with a key: `init` makes one.
        (None, None) => {}
    }
    // The data directory, the database (empty) and the key's check value, as `init` makes
    // them, without its first console owner: the backup brings the console accounts.
    let (state, _) = state_args.init()?;
    let restored = state
        .store
        .restore_checked(&info, input, Some(&state.keyring), &mut progress);
    finish(shown);
    let summary = restored.map_err(store_failure)?;
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        output::json(&output::with_fields(
            &summary,
            [
                ("file", args.file.display().to_string().into()),
                ("database", state_args.describe().into()),
                ("seconds", seconds.into()),
            ],
        ));
    } else {
        output::line(&format!(
            "restored {} rows of {} tables from {} ({}, taken {} from {}, schema version {}) into {} in {seconds:.1}s",
            summary.rows,
            summary.tables,
            args.file.display(),
            megabytes(summary.bytes),
            summary.created_at,
            summary.from_backend,
            summary.schema_version,
            state_args.describe()
        ));
    }
    Ok(0)
}
