//! The simulator's error type: what went wrong and which flag or input fixes it.

use std::path::PathBuf;

use crate::model::{MAX_USERS, MIN_USERS};

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(
        "--users {0} is out of range: the simulator builds districts of {MIN_USERS} to {MAX_USERS} people"
    )]
    UsersOutOfRange(u32),
    #[error("cannot diff day {from} against day {to}: --from must not be after --to")]
    DiffBackwards { from: u32, to: u32 },
    #[error(
        "cannot diff two different districts (seed/users/domains differ): generate both from one DistrictConfig"
    )]
    DiffOfDifferentDistricts,
    #[error("--faults `{spec}`: {reason}")]
    FaultSpec { spec: String, reason: String },
    #[error("--delta-from {from} must be before --day {day}")]
    DeltaNotBefore { from: u32, day: u32 },
    #[error("writing {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing the CSV zip {path}: {source}")]
    Zip {
        path: PathBuf,
        source: zip::result::ZipError,
    },
    #[error("writing {file} in {path}: {source}")]
    Csv {
        path: PathBuf,
        file: &'static str,
        source: csv::Error,
    },
    #[error(
        "cannot listen on 127.0.0.1:{port}: {source} (pick another --port, or 0 for any free port)"
    )]
    Bind { port: u16, source: std::io::Error },
    #[error("the simulator's background task failed: {0}")]
    Task(String),
}
